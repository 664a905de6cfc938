/* SPDX-License-Identifier: MIT */
/*
 * giveback.c: free memory back to the OS, after mm/page_reporting.c: free
 * blocks holding backed pages are taken off the lists in batches, given
 * back (MADV_DONTNEED, where the kernel reports them to the hypervisor)
 * with zone->lock dropped, and freed again, unbacked. Callers: kcompactd's
 * decay (mv_zone_return_pages, mv_zone_free_backed_low); compaction,
 * malloc_trim, reclaim and placement (every free block); the slow path
 * after large frees (whole pageblocks beyond a reserve). See buddy.h.
 */
#include "buddy.h"

#include "diag.h"
#include "os.h"

#define RETURN_BATCH 64

/* Free a block that was just given back (free_block), and give back the
 * descriptors of the unbacked block it merged into: only blocks that went
 * back become wholly unbacked, so this is the one place to do it. */
static void free_given_back(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t n = order <= z->pageblock_order ? 1 : (size_t)1 << (order - z->pageblock_order);
	unsigned o1 = MV_MIN(order, z->pageblock_order);
	/* as take_backed left it */
	MV_ASSERT(mv_pg_load(mv_pfn_to_page(z, pfn)->type) == PG_ALLOC &&
		  mv_pg_load(mv_pfn_to_page(z, pfn)->x) == (size_t)1 << order);
	for (size_t i = 0; i < n; i++) {
		size_t p = pfn + (i << o1);
		unsigned o;
		size_t head = mv_free_one_page(z, p, o1, mv_get_pfnblock_migratetype(z, p), &o);
		if (o >= z->pageblock_order && !mv_zone_any_backed(z, head, (size_t)1 << o))
			mv_zone_desc_release(z, head, o);
	}
}

/* Take up to RETURN_BATCH backed free blocks of order min_order or more
 * off the lists, the largest first (the smallest first for decay), while
 * *excess (pageblocks, or pages when by_pages) says more should go. Lists without a backed block are
 * skipped, and a list's walk ends once it has seen all its backed blocks,
 * which sit at the head (add_to_free_list): free pageblocks that were never
 * backed (CMA reserved at creation, the arena's grown top) cost nothing. */
/*
 * How many free pages a huge page may carry: a collapse makes them
 * resident, and keeping a huge page whole keeps them so. The dial trades
 * the share of live bytes on huge pages after compaction against resident
 * / live, the product's first promise (the fragmentation workload, issue 16:
 * a collapse of pageblocks up to 1/4 free and a giving back that keeps
 * huge pages up to 1/2 free give 99.6% on huge pages and resident / live
 * 1.24 where main had 1.135; 1/16 gives 21% and 1.149; 1/32 1.137).
 * Compaction leaves slab tails and gaps of 10-110 free pages in each packed
 * pageblock, so both cannot hold until slabs fill those holes. So:
 * mova_compact(a, -1), asked for memory, collapses only pageblocks at most
 * 1/MV_THP_FREE_DIV free and keeps no huge page whole; kcompactd, in the
 * background, collapses up to 1/MV_THP_FREE_DIV_BG free (a few a pass) and
 * its decay keeps huge pages less than half free whole.
 */
#define MV_THP_FREE_DIV 32
#define MV_THP_FREE_DIV_BG 4

/* Is the free block at pfn (of an order below the pageblock's) in a huge
 * page worth keeping whole? Temeraire's give-back: a huge page is not
 * broken to return a few 4 KiB pages of it unless memory is short (a
 * budget) or the pageblock is mostly free (compaction empties sparse
 * ones, and they go back whole). Without this every mova_compact split
 * each huge page the last one collapsed, for its few free pages, and
 * collapsed it again. *last and *keep remember the last pageblock asked. */
static bool keep_in_huge_page(struct mv_zone *z, size_t pfn, size_t *last, bool *keep)
{
	size_t pb = mv_pageblock_start_pfn(z, pfn);
	if (pb != *last) {
		size_t free_pages, movable_pages;
		*last = pb;
		*keep = false;
		if (mv_zone_thp_advised(z, pb)) {
			mv_prep_move_freepages_block(z, pb, &free_pages, &movable_pages);
			*keep = free_pages < z->pageblock_nr_pages / 2;
		}
	}
	return *keep;
}

static unsigned take_backed(struct mv_zone *z, unsigned min_order, bool whole, bool by_pages,
			    size_t *excess, size_t *batch_pfn, unsigned *batch_order)
{
	/* huge pages are kept whole by the background giving back only
	 * (kcompactd's decay, by pages): an explicit one (mova_compact,
	 * malloc_trim, reclaim, a policy change) is asked for the memory, and
	 * resident / live is the product's first promise (MV_THP_FREE_DIV) */
	bool thp = by_pages && z->thp == MV_THP_MADVISE && mv_relaxed_load(&z->thp_advised_now) &&
		   !mv_relaxed_load(&z->limit_pages);
	size_t last = MV_PFN_NONE;
	bool keep = false;
	/* decay (by_pages) gives back the smallest blocks first: the memory
	 * left idle is mostly fragments, and a large block kept backed is what
	 * the next large request reuses without faulting (largest first, a
	 * 4-thread realloc churn faulted 36 times per realloc, 2.5 so) */
	bool smallest_first = by_pages;
	unsigned n = 0;
	for (int i = 0; i <= MV_MAX_PAGE_ORDER - (int)min_order && *excess && n < RETURN_BATCH;
	     i++) {
		int o = smallest_first ? (int)min_order + i : MV_MAX_PAGE_ORDER - i;
		struct mv_free_area *area = &z->free_area[o];
		for (int mt = 0; mt < MIGRATE_TYPES && *excess && n < RETURN_BATCH; mt++) {
			if (mt == MIGRATE_ISOLATE || !area->nr_backed_mt[mt])
				continue;
			uint64_t steps = area->nr_free_mt[mt], want = area->nr_backed_mt[mt];
			uint32_t pfn = area->free_list[mt];
			while (steps-- && want && *excess && n < RETURN_BATCH) {
				/* unlinking pfn leaves next valid: the list is circular
				 * and steps bounds the walk */
				uint32_t next = mv_pfn_to_page(z, pfn)->lru.next;
				size_t nr = (size_t)1 << o;
				size_t bp = nr - mv_zone_count_unbacked(z, pfn, nr);
				if (bp && thp && o < (int)z->pageblock_order &&
				    keep_in_huge_page(z, pfn, &last, &keep)) {
					want--;
					pfn = next;
					continue;
				}
				if (bp) {
					want--;
					size_t nb = mv_zone_backed_pageblocks(z, pfn, (unsigned)o);
					mv_del_page_from_free_list(z, pfn, (unsigned)o, mt);
					/* off the lists and unmergeable while the lock is dropped */
					mv_pg_store(mv_pfn_to_page(z, pfn)->type,
						    (uint8_t)PG_ALLOC);
					mv_pg_store(mv_pfn_to_page(z, pfn)->x, (uint32_t)nr);
					batch_pfn[n] = pfn;
					batch_order[n] = (unsigned)o;
					n++;
					if (by_pages)
						*excess = *excess > bp ? *excess - bp : 0;
					else if (whole)
						*excess = *excess > nb ? *excess - nb : 0;
				}
				pfn = next;
			}
		}
	}
	return n;
}

/* Is slot i wholly free (its populated part: all of it but at the
 * frontier), unbacked, and of the three mergeable types (CMA is a
 * reservation, HIGHATOMIC a reserve, ISOLATE someone's range)? Then it is
 * free blocks end to end, MAX_PAGE_ORDER ones but near the frontier:
 * sixteen loads. */
static bool section_removable(const struct mv_zone *z, size_t i)
{
	size_t start = i << MV_SECTION_PAGES_SHIFT;
	size_t end = MV_MIN(start + MV_SECTION_PAGES, mv_relaxed_load(&z->populated_pfn));
	if (!z->sec[i].base || end <= start)
		return false;
	for (size_t p = start; p < end;) {
		const struct mv_page *pg = mv_pfn_to_page(z, p);
		if (mv_pg_load(pg->type) != PG_BUDDY ||
		    !migratetype_is_mergeable(mv_pg_load(pg->mt)))
			return false;
		p += (size_t)1 << mv_pg_load(pg->order);
	}
	return !mv_zone_any_backed(z, start, end - start);
}

/* Sections that hold nothing go back to the OS whole (memory hot-remove),
 * the highest first, so the pfn space shrinks with them. The lowest
 * section stays: a process that allocates again soon does not map and
 * fault its metadata anew. Caller holds zone->lock. */
static size_t remove_free_sections(struct mv_zone *z)
{
	size_t removed = 0;
	if (mv_relaxed_load(&z->nr_sections) < 2)
		return 0;
	size_t top = mv_relaxed_load(&z->populated_pfn);
	for (size_t i = mv_pfn_section(top + MV_SECTION_PAGES - 1);
	     i-- > 0 && mv_relaxed_load(&z->nr_sections) > 1;) {
		if (!section_removable(z, i))
			continue;
		size_t start = i << MV_SECTION_PAGES_SHIFT;
		size_t end = MV_MIN(start + MV_SECTION_PAGES, mv_relaxed_load(&z->populated_pfn));
		for (size_t p = start; p < end;) {
			const struct mv_page *pg = mv_pfn_to_page(z, p);
			unsigned o = mv_pg_load(pg->order);
			mv_del_page_from_free_list(z, p, o, mv_pg_load(pg->mt));
			p += (size_t)1 << o;
		}
		mv_zone_unmap_section(z, i);
		removed++;
	}
	return removed;
}

size_t mv_zone_remove_free_sections(struct mv_zone *z)
{
	mv_lock(&z->lock);
	size_t n = remove_free_sections(z);
	mv_unlock(&z->lock);
	MV_ASSERT_EXPENSIVE(!n || mv_zone_verified(z, "after removing sections"));
	return n;
}

static size_t return_free(struct mv_zone *z, size_t keep, unsigned min_order, size_t max_pages)
{
	size_t batch_pfn[RETURN_BATCH];
	unsigned batch_order[RETURN_BATCH];
	bool ok[RETURN_BATCH];
	bool by_pages = max_pages != SIZE_MAX;
	bool whole = !by_pages && min_order >= z->pageblock_order;
	size_t returned = 0;
	/* At most what was resident when the call began: the lock is dropped
	 * around every batch of madvise calls, and pages other threads free
	 * meanwhile (allocated, backed, freed) are the next call's. Without
	 * this bound a call went on while any backed free block remained, so
	 * threads freeing faster than madvise returns kept it looping for as
	 * long as they ran (docs/MIGRATION.md section 9, item 7). */
	size_t budget = mv_relaxed_load(&z->resident_pages);
	bool took = false;
	for (;;) {
		mv_lock(&z->lock);
		size_t excess;
		if (by_pages) {
			excess = max_pages > returned ? max_pages - returned : 0;
		} else if (whole) {
			size_t fpb = mv_relaxed_load(&z->free_pb_backed);
			excess = fpb > keep ? fpb - keep : 0;
		} else {
			excess = SIZE_MAX;
		}
		/* taking blocks off the lists is no dip in demand: the low
		 * mark goes back to what it was, or to what is left */
		size_t low = mv_relaxed_load(&z->free_backed_low);
		unsigned n =
		    take_backed(z, min_order, whole, by_pages, &excess, batch_pfn, batch_order);
		mv_relaxed_store(&z->free_backed_low, low);
		/* no longer dense: no huge page for khugepaged to rebuild from
		 * what is left. Before the pages go, so that a collapse
		 * (mv_zone_thp_collapse) racing with the giving back fails
		 * rather than fault them in again. */
		for (unsigned i = 0; i < n; i++)
			mv_zone_thp_unadvise(z, batch_pfn[i], (size_t)1 << batch_order[i]);
		mv_unlock(&z->lock);
		if (!n)
			break;
		took = true;
		for (unsigned i = 0; i < n; i++)
			ok[i] = !mv_os_decommit(mv_zone_addr(z, batch_pfn[i]),
						((size_t)1 << batch_order[i]) << MV_PAGE_SHIFT);
		size_t done = 0;
		mv_lock(&z->lock);
		for (unsigned i = 0; i < n; i++) {
			if (ok[i]) {
				size_t cleared = mv_zone_set_backed(
				    z, batch_pfn[i], (size_t)1 << batch_order[i], false);
				MV_ASSERT(cleared <= mv_relaxed_load(&z->resident_pages));
				mv_relaxed_add(&z->resident_pages, -cleared);
				done += cleared;
			}
			free_given_back(z, batch_pfn[i], batch_order[i]);
		}
		mv_relaxed_store(&z->free_backed_low,
				 MV_MIN(mv_relaxed_load(&z->free_backed_low),
					mv_relaxed_load(&z->free_backed_pages)));
		mv_unlock(&z->lock);
		mv_count(z->vm, MV_VM_pages_returned, done);
		returned += done;
		if (!done) /* the OS refused: do not spin */
			break;
		if (returned >= budget)
			break;
	}
	MV_ASSERT_EXPENSIVE(!took || mv_zone_verified(z, "after giving back"));
	/* what went back may have emptied sections */
	if (mv_relaxed_load(&z->nr_sections) > 1)
		mv_zone_remove_free_sections(z);
	return returned;
}

size_t mv_zone_return_free(struct mv_zone *z, size_t keep, unsigned min_order)
{
	return return_free(z, keep, min_order, SIZE_MAX);
}

size_t mv_zone_return_pages(struct mv_zone *z, size_t nr_pages)
{
	return nr_pages ? return_free(z, 0, 0, nr_pages) : 0;
}

size_t mv_zone_free_backed_low(struct mv_zone *z)
{
	mv_lock(&z->lock);
	size_t low = mv_relaxed_load(&z->free_backed_low);
	mv_relaxed_store(&z->free_backed_low, mv_relaxed_load(&z->free_backed_pages));
	mv_unlock(&z->lock);
	return low;
}

/* a pageblock worth collapsing: movable, not advised yet, movable objects
 * (slabs and large runs) but for 1/div of it at most, the rest free (the
 * free pages become resident in the huge page) */
static bool collapsible(struct mv_zone *z, size_t pb, unsigned div, unsigned *walks)
{
	size_t free_pages, movable_pages, pbn = z->pageblock_nr_pages;
	if (mv_get_pfnblock_migratetype(z, pb) != MIGRATE_MOVABLE || mv_zone_thp_advised(z, pb) ||
	    mv_zone_count_unbacked(z, pb, pbn) > pbn / div)
		return false;
	(*walks)++;
	mv_prep_move_freepages_block(z, pb, &free_pages, &movable_pages);
	return movable_pages >= pbn - pbn / div && movable_pages + free_pages == pbn;
}

/* collapse up to max pageblocks below *top, walking at most max_walks;
 * *top ends where the walk stopped */
static unsigned thp_collapse_below(struct mv_zone *z, size_t *top, unsigned max, unsigned max_walks,
				   unsigned div)
{
	enum { MAX = 8 };
	size_t pbs[MAX];
	unsigned n = 0, walks = 0;
	max = MV_MIN(max, (unsigned)MAX);
	mv_lock(&z->lock);
	/* from the top down, where compaction's free scanner packs objects */
	size_t pb = MV_MIN(*top, mv_relaxed_load(&z->populated_pfn));
	while (pb >= z->pageblock_nr_pages && n < max && walks < max_walks) {
		pb -= z->pageblock_nr_pages;
		if (!mv_zone_pfn_valid(z, pb) || !collapsible(z, pb, div, &walks))
			continue;
		if (mv_zone_thp_advise_pageblock(z, pb)) {
			mv_buddy_back_pageblock(z, pb);
			pbs[n++] = pb;
		}
	}
	*top = pb < z->pageblock_nr_pages ? 0 : pb;
	mv_unlock(&z->lock);
	/* the sections cannot go meanwhile: their pageblocks are in use */
	for (unsigned i = 0; i < n; i++) {
		int err = mv_os_hugepage(mv_zone_addr(z, pbs[i]),
					 z->pageblock_nr_pages << MV_PAGE_SHIFT, MV_OS_COLLAPSE);
		mv_relaxed_add(err ? &z->thp_collapse_failed : &z->thp_collapse, 1);
	}
	return n;
}

/* under a budget the free pages a collapse makes resident would be
 * charged for nothing */
static bool thp_collapse_allowed(struct mv_zone *z)
{
	return z->thp == MV_THP_MADVISE && !mv_relaxed_load(&z->limit_pages);
}

unsigned mv_zone_thp_collapse(struct mv_zone *z, unsigned max)
{
	size_t top = SIZE_MAX;
	if (!max || !thp_collapse_allowed(z))
		return 0;
	/* the descriptors of this many pageblocks walked at most, under the
	 * lock: a few hundred microseconds */
	return thp_collapse_below(z, &top, max, 64, MV_THP_FREE_DIV_BG);
}

unsigned mv_zone_thp_collapse_all(struct mv_zone *z)
{
	size_t top = SIZE_MAX;
	unsigned n = 0;
	if (!thp_collapse_allowed(z))
		return 0;
	/* eight at a time, the lock dropped between batches */
	while (top)
		n += thp_collapse_below(z, &top, 8, 64, MV_THP_FREE_DIV);
	return n;
}
