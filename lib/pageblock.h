/* SPDX-License-Identifier: MIT */
/*
 * pageblock.h: the pageblock flags, 4 bits per pageblock as the kernel's
 * NR_PAGEBLOCK_BITS: 3 bits of migratetype (bits 0-2, MIGRATETYPE_MASK)
 * and the compaction skip bit (bit 3, PB_migrate_skip). Read racily with
 * one load (get_pfnblock_flags_mask) and written with a compare-and-swap
 * loop on the masked bits (set_pfnblock_flags_mask), so writers of
 * different pageblocks sharing a word never lose each other's updates.
 * Callers that must see a stable migratetype hold the zone lock; the skip
 * bit is a hint and is written without it.
 */
#ifndef MV_PAGEBLOCK_H
#define MV_PAGEBLOCK_H

#include "internal.h"

#define PB_migratetype_bits 3
#define PB_migrate_skip 3
#define NR_PAGEBLOCK_BITS 4
#define MIGRATETYPE_MASK ((1u << PB_migratetype_bits) - 1)
#define PB_SKIP_MASK (1u << PB_migrate_skip)
#define MV_PB_PER_WORD (64 / NR_PAGEBLOCK_BITS)

struct mv_pageblock_flags {
	_Atomic uint64_t *words;
	unsigned order; /* pageblock_order */
	size_t nr_blocks;
};

/* words: zeroed storage for nr_blocks (see mv_pageblock_words) */
static inline size_t mv_pageblock_words(size_t nr_blocks)
{
	return (nr_blocks + MV_PB_PER_WORD - 1) / MV_PB_PER_WORD;
}

static inline unsigned mv_get_pfnblock_flags_mask(const struct mv_pageblock_flags *pb, size_t pfn,
						  unsigned mask)
{
	size_t blk = pfn >> pb->order;
	unsigned shift = (unsigned)(blk % MV_PB_PER_WORD) * NR_PAGEBLOCK_BITS;
	uint64_t w = atomic_load_explicit(&pb->words[blk / MV_PB_PER_WORD], memory_order_relaxed);
	return (unsigned)(w >> shift) & mask;
}

static inline void mv_set_pfnblock_flags_mask(struct mv_pageblock_flags *pb, size_t pfn,
					      unsigned flags, unsigned mask)
{
	size_t blk = pfn >> pb->order;
	unsigned shift = (unsigned)(blk % MV_PB_PER_WORD) * NR_PAGEBLOCK_BITS;
	_Atomic uint64_t *w = &pb->words[blk / MV_PB_PER_WORD];
	uint64_t m = (uint64_t)mask << shift, f = ((uint64_t)flags << shift) & m;
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(w, &old, (old & ~m) | f, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static inline int mv_get_pageblock_migratetype(const struct mv_pageblock_flags *pb, size_t pfn)
{
	return (int)mv_get_pfnblock_flags_mask(pb, pfn, MIGRATETYPE_MASK);
}
static inline void mv_set_pageblock_migratetype(struct mv_pageblock_flags *pb, size_t pfn, int mt)
{
	mv_set_pfnblock_flags_mask(pb, pfn, (unsigned)mt, MIGRATETYPE_MASK);
}
static inline bool mv_get_pageblock_skip(const struct mv_pageblock_flags *pb, size_t pfn)
{
	return mv_get_pfnblock_flags_mask(pb, pfn, PB_SKIP_MASK) != 0;
}
static inline void mv_set_pageblock_skip(struct mv_pageblock_flags *pb, size_t pfn)
{
	mv_set_pfnblock_flags_mask(pb, pfn, PB_SKIP_MASK, PB_SKIP_MASK);
}
static inline void mv_clear_pageblock_skip(struct mv_pageblock_flags *pb, size_t pfn)
{
	mv_set_pfnblock_flags_mask(pb, pfn, 0, PB_SKIP_MASK);
}

#endif
