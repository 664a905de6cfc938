/* SPDX-License-Identifier: MIT */
/*
 * sizeclass.h: the size classes of small objects and the geometry of their
 * slabs. Two families:
 *  - raw (unmovable, malloc): 16-byte steps to 256 B, then 8 classes per
 *    doubling to 16 KiB: at most 12.5% internal waste (64 classes);
 *  - movable (handle objects): 16-byte steps to 1 KiB, then 16 classes per
 *    doubling to 16 KiB: at most 6.25% (128 classes). Finer, because
 *    compaction packs movable slabs and the resident/live target leaves
 *    little room for rounding.
 * A slab is a power of two pages, 1 to 16, chosen per class for little
 * tail waste: aligned buddy blocks keep the page allocator tidy and give
 * compaction destinations it can find. Where no power of two wastes 1/64
 * or less (classes of a few KiB), any count up to 32 pages that does. A
 * handle object's slab ends with an array of back-references, one 8-byte
 * {handle index, size asked for} per slot, so migration finds the handle
 * that owns any slot; they live and die with the slab (out of band, in
 * the metadata pool, they fragmented it: 3.6 MiB of 5.8 after a churn).
 * A third family, reclaimable (cache entries a shrinker can free), has
 * the raw geometry and the handle machinery but takes its slabs from
 * RECLAIMABLE pageblocks. Class ids share one space that fits the
 * descriptors' byte: raw [0, 64), movable [64, 192), reclaimable
 * [192, 256); "handle classes" are [64, 256). The
 * table is computed once (mv_sizeclass_init) and read-only.
 */
#ifndef MV_SIZECLASS_H
#define MV_SIZECLASS_H

#include "internal.h"

#define MV_NR_RAW_CLASSES 64
#define MV_NR_MOVABLE_CLASSES 128
#define MV_NR_RCL_CLASSES 64
/* handle classes: movable and reclaimable, indexed from MV_MOV_CLASS0 */
#define MV_NR_MOV_CLASSES (MV_NR_MOVABLE_CLASSES + MV_NR_RCL_CLASSES)
#define MV_NR_CLASSES (MV_NR_RAW_CLASSES + MV_NR_MOV_CLASSES)
#define MV_MOV_CLASS0 MV_NR_RAW_CLASSES
#define MV_RCL_CLASS0 (MV_MOV_CLASS0 + MV_NR_MOVABLE_CLASSES)
_Static_assert(MV_NR_CLASSES <= 256, "class ids fit a descriptor byte");
#define MV_SMALL_MAX 16384   /* larger objects take whole pages */
#define MV_SLAB_MAX_ORDER 4  /* power-of-two slabs: up to 16 pages */
#define MV_SLAB_MAX_PAGES 32 /* any page count up to this when that wastes less */
#define MV_BACKREF_BYTES 8

struct mv_class {
	uint32_t size;   /* slot size */
	uint32_t magic;  /* ceil(2^32 / size): offset / size for multiples of size */
	uint16_t npages; /* pages per slab: a power of two, or what wastes least */
	uint16_t nregs;  /* slots per slab */
	uint8_t order;   /* the buddy order a slab is carved from (npages rounded up) */
	uint8_t movable; /* handle objects (movable or reclaimable family) */
	uint8_t mt;      /* migratetype of its slabs' pages */
};

extern struct mv_class mv_classes[MV_NR_CLASSES];
extern uint8_t mv_raw_class_lut[65]; /* (size + 15) >> 4 -> raw class, size <= 1024 */

void mv_sizeclass_init(void);

static inline unsigned mv_raw_class(size_t size)
{
	if (size <= 1024)
		return mv_raw_class_lut[(size + 15) >> 4];
	unsigned b = mv_ilog2(size - 1);
	return 16 + (b - 8) * 8 + (unsigned)(((size - 1) >> (b - 3)) & 7);
}

static inline unsigned mv_mov_class(size_t size)
{
	if (size <= 1024)
		return MV_MOV_CLASS0 + (size ? (unsigned)((size + 15) >> 4) - 1 : 0);
	unsigned b = mv_ilog2(size - 1);
	return MV_MOV_CLASS0 + 64 + (b - 10) * 16 + (unsigned)(((size - 1) >> (b - 4)) & 15);
}

/* the reclaimable family: the raw geometry, ids from MV_RCL_CLASS0 */
static inline unsigned mv_rcl_class(size_t size)
{
	return MV_RCL_CLASS0 + mv_raw_class(size ? size : 1);
}

/* is cls a class of handle objects (movable or reclaimable)? */
static inline bool mv_is_handle_class(unsigned cls)
{
	return cls >= MV_MOV_CLASS0 && cls < MV_NR_CLASSES;
}

/* slot index of offset off (a multiple of the class size) */
static inline uint32_t mv_class_slot(const struct mv_class *c, size_t off)
{
	return (uint32_t)(((uint64_t)off * c->magic) >> 32);
}

#endif
