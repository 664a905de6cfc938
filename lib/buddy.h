/* SPDX-License-Identifier: MIT */
/*
 * buddy.h: the zone's interface. The zone itself (reservation, growth,
 * descriptors, backed pages) is zone.h's; here is what works on its free
 * lists, free_area[order].free_list[migratetype]: the buddy allocator
 * (buddy.c, mm/page_alloc.c), pageblock isolation (isolation.c), giving
 * free memory back to the OS (giveback.c), the fragmentation index
 * (fragstat.c) and the verifier (zone_verify.c).
 *
 * Invariants (checked by mv_zone_verify):
 *  - every free block is on exactly one list, free_list[desc.mt] of its
 *    order, and its head descriptor says PG_BUDDY with that order;
 *  - no free block has a free buddy of the same order that it could merge
 *    with (any two below pageblock_order; from it up, the same type or
 *    both mergeable, but two isolated pageblocks may stay apart: isolation
 *    moves free pageblocks to the ISOLATE lists without merging them, and
 *    its undo merges each anew);
 *  - below pageblock_order a free block's list is its pageblock's
 *    migratetype; nr_free and the page counts match the lists.
 *
 * Locks: zone->lock (rank MV_RANK_ZONE) for everything here but the
 * lockless readers (zone.h). Callers on the allocation path go through
 * the per-thread page lists (pcp.h) and reach this file only to refill or
 * drain them.
 */
#ifndef MV_BUDDY_H
#define MV_BUDDY_H

#include "zone.h"

/* ---- buddy.c: the page allocator */

/* alloc_flags */
#define MV_ALLOC_NOFRAGMENT 0x1 /* fall back only by claiming whole pageblocks */
#define MV_ALLOC_CMA 0x2        /* may use MIGRATE_CMA pageblocks (movable requests) */
#define MV_ALLOC_NOGROW 0x4     /* do not bring new pageblocks into the arena */

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
/* Free n runs, nrs[i] pages from pfns[i], under one hold of the lock. */
void mv_buddy_free_runs(struct mv_zone *z, const uint32_t *pfns, const uint32_t *nrs, unsigned n);
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

/* As mv_buddy_claim_range for [pfn, pfn+n) with min_nr <= n <= max_nr, n
 * as large as the free pages there allow (realloc's growth in place with
 * room to grow again). Returns n, or 0 and nothing changed. */
size_t mv_buddy_claim_upto(struct mv_zone *z, size_t pfn, size_t min_nr, size_t max_nr);

/* A run of nr_pageblocks contiguous, wholly free pageblocks, typed mt and
 * handed out as one PG_ALLOC run (for objects larger than the largest
 * order). MV_PFN_NONE if the arena has no such run. Takes zone->lock. */
size_t mv_buddy_alloc_pageblocks(struct mv_zone *z, size_t nr_pageblocks, int mt, bool *zeroed);

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

/* The kernel's fallback order: the types each pcp type falls back to. */
extern const int mv_fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1];
bool mv_can_steal_fallback(const struct mv_zone *z, unsigned order, int start_mt);
/* find_suitable_fallback: caller holds zone->lock. */
int mv_find_suitable_fallback(const struct mv_zone *z, unsigned order, int mt, bool only_stealable,
			      bool *can_steal);

/* __del_page_from_free_list and __free_one_page (merging as far as the
 * rules allow; the head of the merged block is returned, its order in
 * *out_order if not NULL), for isolation.c and giveback.c. Caller holds
 * zone->lock. */
void mv_del_page_from_free_list(struct mv_zone *z, size_t pfn, unsigned order, int mt);
size_t mv_free_one_page(struct mv_zone *z, size_t pfn, unsigned order, int mt, unsigned *out_order);

/* A pageblock advised MADV_HUGEPAGE: its first touch (or a collapse)
 * faults all of it in, so its free blocks count as backed from now on
 * (off the lists and back, the counts exact). Caller holds zone->lock. */
void mv_buddy_back_pageblock(struct mv_zone *z, size_t pb);

/* ---- isolation.c */

/* Isolation for contiguous allocation (set_migratetype_isolate and undo). */
int mv_zone_isolate_pageblock(struct mv_zone *z, size_t pfn);
void mv_zone_unisolate_pageblock(struct mv_zone *z, size_t pfn, int mt);

/* ---- giveback.c */

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
/* Huge pages for pageblocks compaction filled (thp=madvise): up to max
 * movable pageblocks at least 3/4 in use by movable objects (the rest
 * free: slab carving leaves a few pages between slabs), and not advised,
 * are advised MADV_HUGEPAGE, their free pages counted backed, and
 * collapsed now
 * (MADV_COLLAPSE, with zone->lock dropped), counted in thp_collapse or
 * thp_collapse_failed (an older kernel, no huge page to be had: nothing
 * else happens). Returns how many were tried. For kcompactd, within its
 * CPU budget. */
unsigned mv_zone_thp_collapse(struct mv_zone *z, unsigned max);
/* The same over the whole zone, in batches (mova_compact(a, -1): the
 * pageblocks it packed get their huge pages before it returns). Returns
 * how many were tried. */
unsigned mv_zone_thp_collapse_all(struct mv_zone *z);
/* Give back whole the sections that hold nothing, neither allocated nor
 * backed (every giving back above ends with this): the highest first; the
 * lowest stays. Returns how many went. Takes zone->lock. */
size_t mv_zone_remove_free_sections(struct mv_zone *z);
/* The lowest free_backed_pages seen since the last call (the free memory
 * nobody needed meanwhile); starts the next interval at the current value.
 * Takes zone->lock. */
size_t mv_zone_free_backed_low(struct mv_zone *z);

/* ---- fragstat.c */

/* Fragmentation (mm/vmstat.c): caller holds zone->lock or accepts a racy answer. */
int mv_fragmentation_index(const struct mv_zone *z, unsigned order); /* -1000, or 0..1000 */
/* the unusable free index at pageblock_order (extfrag_for_order): 0..100 */
unsigned mv_fragmentation_score(const struct mv_zone *z);

/* ---- zone_verify.c */

/* Check every invariant above; NULL when they hold, else a description in
 * a static buffer. Takes zone->lock. For tests and debug builds. */
const char *mv_zone_verify(struct mv_zone *z);
/* For MV_ASSERT_EXPENSIVE: mv_zone_verify, and when it finds something, a
 * warning naming it and when (the assertion then fails). */
bool mv_zone_verified(struct mv_zone *z, const char *when);

#endif
