/* SPDX-License-Identifier: MIT */
/*
 * buddy.h: the zone and its buddy allocator (mm/page_alloc.c). One zone per
 * arena: the reservation, the page descriptors, the pageblock flags, and
 * free_area[order].free_list[migratetype] under zone->lock.
 *
 * Invariants (checked by mv_zone_verify):
 *  - every free block is on exactly one list, free_list[desc.mt] of its
 *    order, and its head descriptor says PG_BUDDY with that order;
 *  - no free block has a free buddy of the same order that it could merge
 *    with (same type, or both mergeable below pageblock_order);
 *  - below pageblock_order a free block's list is its pageblock's
 *    migratetype; nr_free and the page counts match the lists.
 *
 * Locks: zone->lock (rank MV_RANK_ZONE) for everything here but the
 * lockless readers (mv_zone_pfn_valid, descriptor and flag loads).
 * Callers on the allocation path go through the per-thread page lists
 * (pcp.h) and reach this file only to refill or drain them.
 */
#ifndef MV_BUDDY_H
#define MV_BUDDY_H

#include "lock.h"
#include "page.h"
#include "pageblock.h"
#include "vmstat.h"

struct mv_free_area {
	uint32_t free_list[MIGRATE_TYPES]; /* head pfn of a circular list (head.prev = tail) */
	uint64_t nr_free;                  /* blocks of this order, every type */
	uint64_t nr_free_mt[MIGRATE_TYPES];
	/* of those, blocks holding a backed page: giving back walks only the
	 * lists that have some, and stops once it has seen them all */
	uint64_t nr_backed_mt[MIGRATE_TYPES];
};

/* alloc_flags */
#define MV_ALLOC_NOFRAGMENT 0x1 /* fall back only by claiming whole pageblocks */
#define MV_ALLOC_CMA 0x2        /* may use MIGRATE_CMA pageblocks (movable requests) */
#define MV_ALLOC_NOGROW 0x4     /* do not bring new pageblocks into the arena */

/* The descriptor array starts this far into its page-aligned mapping. A
 * page's first slot and that page's descriptor would otherwise share their
 * offset within a 4 KiB page whenever the pfn is a multiple of 256, pfn 0
 * (the first slab of a process) included. A store to the slot followed by a
 * load of the descriptor, the shape of every malloc/free pair, then
 * false-aliases in the load/store unit (4K aliasing). At half a page the
 * descriptors of pfn 0, 256, ... sit at offset 2048, away from the slots
 * that are handed out first. */
#define MV_DESC_COLOR 2048

struct mv_zone {
	mv_mutex lock;
	char *base; /* pageblock-aligned reservation */
	size_t reserve_bytes;
	struct mv_page *desc;         /* descriptor array, one per page of the reservation */
	char *desc_map;               /* its reservation: desc sits MV_DESC_COLOR bytes in */
	size_t desc_bytes;            /* of desc_map */
	struct mv_pageblock_flags pb; /* 4 bits per pageblock */
	size_t pb_words_bytes;
	uint64_t *backed; /* a bit per page: backed by the OS since last handed
	                                 out (cleared when given back), under lock */
	unsigned pageblock_order;
	size_t pageblock_nr_pages;
	size_t nr_pages_max;          /* pages in the reservation */
	_Atomic size_t populated_pfn; /* pfns below are populated (descriptors committed) */
	size_t desc_committed_bytes;  /* descriptors committed so far, under lock */
	/* descriptor pages given back to the OS (a bit each): those wholly
	 * inside a free, unbacked block of pageblock order or more, but for
	 * the page of its head; they read as zeros (PG_NONE), which is what
	 * every descriptor inside a free block says. Under lock. */
	uint64_t *desc_released;
	_Atomic size_t desc_released_pages;
	bool page_group_by_mobility_disabled;

	struct mv_free_area free_area[MV_NR_PAGE_ORDERS];
	size_t nr_free_pages_mt[MIGRATE_TYPES]; /* free pages per list type */
	_Atomic size_t nr_free_pages;           /* ISOLATE excluded (account_freepages) */
	_Atomic size_t resident_pages;          /* pages with their backed bit set */
	_Atomic size_t free_pb_backed;          /* wholly free pageblocks with a backed page */
	_Atomic size_t free_backed_pages;       /* free pages (on the lists) the OS backs */
	_Atomic size_t free_backed_low;         /* its lowest value since mv_zone_free_backed_low */
	_Atomic size_t nr_pageblocks_mt[MIGRATE_TYPES];
	size_t nr_isolate_pageblock;
	_Atomic int wake_order; /* highest order that fell back or failed, for kcompactd */
	struct mv_vmstat *vm;

	/* the memory budget (reclaim.h): resident pages, plus what extra_pages
	 * reports (metadata outside the zone), kept at most limit_pages; an
	 * allocation that would back pages beyond it is refused, and the
	 * largest such request is noted in limit_want for the reclaimer */
	_Atomic size_t limit_pages; /* 0: no budget */
	_Atomic size_t limit_want;
	size_t (*extra_pages)(void *arg);
	void *extra_arg;
	/* placement (mempolicy.h): called under the lock with the index of a
	 * pageblock about to get its first backed page, before it is touched */
	void (*place)(void *arg, size_t pageblock);
	void *place_arg;
};

/* Reserve the arena and its metadata. 0 or errno (ENOMEM). */
int mv_zone_init(struct mv_zone *z, size_t reserve_bytes, unsigned pageblock_order,
		 struct mv_vmstat *vm);
void mv_zone_destroy(struct mv_zone *z);

static inline size_t mv_zone_pfn(const struct mv_zone *z, const void *p)
{
	return (size_t)((const char *)p - z->base) >> MV_PAGE_SHIFT;
}
static inline void *mv_zone_addr(const struct mv_zone *z, size_t pfn)
{
	return z->base + (pfn << MV_PAGE_SHIFT);
}
static inline struct mv_page *mv_pfn_to_page(const struct mv_zone *z, size_t pfn)
{
	return &z->desc[pfn];
}
/* true when pfn is populated; lockless */
static inline bool mv_zone_pfn_valid(const struct mv_zone *z, size_t pfn)
{
	return pfn < atomic_load_explicit(&z->populated_pfn, memory_order_acquire);
}
static inline size_t mv_pageblock_start_pfn(const struct mv_zone *z, size_t pfn)
{
	return pfn & ~(z->pageblock_nr_pages - 1);
}
static inline int mv_get_pfnblock_migratetype(const struct mv_zone *z, size_t pfn)
{
	return mv_get_pageblock_migratetype(&z->pb, pfn);
}

/* Racy descriptor accessors (relaxed atomics): for readers that do not hold
 * the page, and for owners writing fields such readers look at. */
#define mv_pg_load(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define mv_pg_store(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

/*
 * Allocate a block of 2^order pages of migratetype mt: __rmqueue_smallest,
 * then whole free pageblocks of other types, then a new pageblock, then
 * stealing (__rmqueue_fallback), as alloc_flags allow. Returns the head pfn
 * (descriptor PG_ALLOC, nr = 2^order, mt) or MV_PFN_NONE. *zeroed tells
 * whether the pages are known to read as zeros. Takes zone->lock.
 */
size_t mv_buddy_alloc(struct mv_zone *z, unsigned order, int mt, unsigned alloc_flags,
		      bool *zeroed);
/* Exactly nr pages (alloc_pages_exact): the order above, the tail freed. */
size_t mv_buddy_alloc_exact(struct mv_zone *z, size_t nr, int mt, unsigned alloc_flags,
			    bool *zeroed);
/* Free a block of 2^order pages starting at pfn (aligned). Takes zone->lock. */
void mv_buddy_free(struct mv_zone *z, size_t pfn, unsigned order);
/* Free nr pages from pfn, any alignment (free_pages_exact, free_contig_range). */
void mv_buddy_free_range(struct mv_zone *z, size_t pfn, size_t nr);
/* Up to count blocks of order and mt for a per-thread list (rmqueue_bulk):
 * their pfns in out[]; returns how many. Descriptors say PG_PCP. */
unsigned mv_buddy_rmqueue_bulk(struct mv_zone *z, unsigned order, int mt, unsigned count,
			       uint32_t *out, bool *zeroed);
/* Free blocks coming back from a per-thread list (free_pcppages_bulk). */
void mv_buddy_free_bulk(struct mv_zone *z, const uint32_t *pfns, unsigned n, unsigned order);

/* Take exactly the pages [pfn, pfn+nr) if every one of them is free (for
 * growing an allocation in place and for contiguous ranges): true and the
 * pages are handed out, or false and nothing changed. Takes zone->lock. */
bool mv_buddy_claim_range(struct mv_zone *z, size_t pfn, size_t nr, bool isolated_ok);

/* A run of nr_pageblocks contiguous, wholly free pageblocks, typed mt and
 * handed out as one PG_ALLOC run (for objects larger than the largest
 * order). MV_PFN_NONE if the arena has no such run. Takes zone->lock. */
size_t mv_buddy_alloc_pageblocks(struct mv_zone *z, size_t nr_pageblocks, int mt, bool *zeroed);

/*
 * Give free memory back to the OS (MADV_DONTNEED), dropping the lock
 * around the calls. With min_order >= pageblock_order, wholly free
 * pageblocks until at most keep_pageblocks of them remain backed (the
 * hysteresis kcompactd and frees use); with a smaller min_order, every
 * free block of that order or more (after compaction). Returns pages
 * given back.
 */
size_t mv_zone_return_free(struct mv_zone *z, size_t keep_pageblocks, unsigned min_order);
/* Give back free blocks, the smallest first (idle memory is mostly
 * fragments; large blocks are what large requests reuse), until about
 * nr_pages backed pages went back (one block more at most). Walks only lists holding
 * backed blocks: what it costs follows what it returns, not the arena's
 * size. Returns pages given back. */
size_t mv_zone_return_pages(struct mv_zone *z, size_t nr_pages);
/* The lowest free_backed_pages seen since the last call (the free memory
 * nobody needed meanwhile); starts the next interval at the current value.
 * Takes zone->lock. */
size_t mv_zone_free_backed_low(struct mv_zone *z);

/* Bring nr_pageblocks new pageblocks of type mt into the arena and free
 * them, unbacked: they cost no memory and no page fault until used (CMA
 * reserved at creation). The first pfn, or MV_PFN_NONE. Takes zone->lock. */
size_t mv_buddy_grow_free(struct mv_zone *z, size_t nr_pageblocks, int mt);

/* The free scanner's isolation (isolate_freepages_block): take the free
 * blocks of the pageblock at pfn, smaller than max_order, off the lists
 * (PG_ALLOC, backed), up to max blocks; their pfns and orders go to the
 * arrays. *scanned counts the pages looked at. Takes zone->lock. */
unsigned mv_buddy_isolate_freepages_block(struct mv_zone *z, size_t pfn, unsigned max_order,
					  uint32_t *pfns, uint8_t *orders, unsigned max,
					  size_t *scanned);

/* Whole-block moves (move_freepages_block): every free block inside the
 * pageblock of pfn goes to new_mt's lists and the block is retyped. Caller
 * holds zone->lock. Returns the free pages moved. */
size_t mv_move_freepages_block(struct mv_zone *z, size_t pfn, int new_mt);
/* Count free and movable pages of a pageblock (prep_move_freepages_block);
 * caller holds zone->lock. */
void mv_prep_move_freepages_block(struct mv_zone *z, size_t pfn, size_t *free_pages,
				  size_t *movable_pages);

/* The kernel's fallback order; -1 terminates. */
extern const int mv_fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1];
bool mv_can_steal_fallback(const struct mv_zone *z, unsigned order, int start_mt);
/* find_suitable_fallback: caller holds zone->lock. */
int mv_find_suitable_fallback(const struct mv_zone *z, unsigned order, int mt, bool only_stealable,
			      bool *can_steal);

/* Isolation for contiguous allocation (set_migratetype_isolate and undo). */
int mv_zone_isolate_pageblock(struct mv_zone *z, size_t pfn);
void mv_zone_unisolate_pageblock(struct mv_zone *z, size_t pfn, int mt);

/* Bytes of descriptors backed by the OS (committed, less those given back). */
size_t mv_zone_desc_resident_bytes(const struct mv_zone *z);
/* Bytes of the pageblock flags and the page bitmaps that are in use. */
size_t mv_zone_bitmaps_resident_bytes(const struct mv_zone *z);

/* The budget's view: pages counted against limit_pages now (resident and
 * extra), lockless and racy. */
size_t mv_zone_charged_pages(const struct mv_zone *z);
/* Does pageblock pfn hold a backed page? Racy without zone->lock. */
bool mv_zone_pageblock_backed(const struct mv_zone *z, size_t pfn);

/* Fragmentation (mm/vmstat.c): caller holds zone->lock or accepts a racy answer. */
int mv_fragmentation_index(const struct mv_zone *z, unsigned order); /* -1000, or 0..1000 */
/* the unusable free index at pageblock_order (extfrag_for_order): 0..100 */
unsigned mv_fragmentation_score(const struct mv_zone *z);

/* Check every invariant above; NULL when they hold, else a description in
 * a static buffer. Takes zone->lock. For tests and debug builds. */
const char *mv_zone_verify(struct mv_zone *z);

#endif
