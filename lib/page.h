/* SPDX-License-Identifier: MIT */
/*
 * page.h: the page descriptor, mova's struct page. One 16-byte descriptor
 * per 4 KiB page of the arena, out of band, in an array indexed by pfn
 * (page frame number: (addr - base) >> 12). The array is reserved with the
 * arena and committed per pageblock as the arena grows, as SPARSEMEM
 * populates mem_map per section.
 *
 * Who writes a descriptor: the buddy allocator, under the zone lock, while
 * the page is free (PG_BUDDY) or on a per-thread list (PG_PCP); the owner
 * of an allocation (slab or large object code) while it holds the pages.
 * Readers that do not own the page (compaction's scanners, free() checking
 * a pointer) read racily and re-check under the right lock, as the
 * kernel's PageBuddy() checks do.
 */
#ifndef MV_PAGE_H
#define MV_PAGE_H

#include "internal.h"

enum mv_page_type {
	PG_NONE = 0, /* inside a free or per-thread block, or never populated */
	PG_BUDDY,    /* head of a free block on free_area[order].free_list[mt] */
	PG_PCP,      /* head of a block of order on a per-thread page list */
	PG_ALLOC,    /* head of a run of nr pages handed out by the buddy, not yet typed */
	PG_SLAB,     /* any page of a slab: slab and cls are set */
	PG_LARGE,    /* head of a large object: nr pages, the object's size in priv */
	PG_TAIL,     /* a later page of a large object: head gives the head pfn */
	PG_CONTIG,   /* head of a range handed out by mova_alloc_contig */
	PG_TYPES
};

#define MV_PFN_NONE UINT32_MAX

struct mv_slab;

struct mv_page {
	union {
		struct {
			uint8_t type;  /* enum mv_page_type */
			uint8_t order; /* PG_BUDDY, PG_PCP: the block's order; PG_SLAB (raw):
			                  1 when the page was given back (slab.c purge) */
		};
		uint16_t type_order; /* both, for free's one compare (little-endian) */
	};
	uint8_t mt; /* PG_BUDDY: the list it is on; otherwise the migratetype it was allocated as */
	uint8_t cls; /* PG_SLAB: size class (family in the high bit) */
	uint32_t x;  /* PG_ALLOC, PG_LARGE, PG_CONTIG: nr pages; PG_SLAB, PG_TAIL: head pfn */
	union {
		struct {
			uint32_t next, prev; /* PG_BUDDY, PG_PCP: list links (pfns) */
		} lru;
		struct mv_slab *slab; /* PG_SLAB */
		uint64_t priv;        /* PG_LARGE: bytes asked for (low 40 bits) and handle index */
	};
};
_Static_assert(sizeof(struct mv_page) == 16, "page descriptor must stay 16 bytes");

#endif
