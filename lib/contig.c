/* SPDX-License-Identifier: MIT */
/*
 * contig.c: contiguous allocation (alloc_contig_range, cma_alloc). A range
 * of pageblocks is isolated (MIGRATE_ISOLATE: allocations stop using its
 * free pages, and pages freed in it stay out of reach), the movable
 * objects in it are migrated out (MR_CONTIG_RANGE), the now free pages are
 * taken, and the pageblocks get their type back; any failure undoes the
 * isolation and leaves the range as it was. CMA pageblocks, reserved at
 * arena creation, serve movable objects until a request claims them.
 *
 * Locks: zone->lock per pageblock for isolation; compaction's lock around
 * the migration, so one contiguous request or compaction runs at a time.
 */
#include <errno.h>

#include "compaction.h"
#include "large.h"
#include "slowpath.h"

#define CONTIG_MIGRATE_TRIES 5

/* has_unmovable_pages: anything in the pageblock that cannot be migrated? */
static bool has_unmovable_pages(struct mova_arena *a, size_t block)
{
	struct mv_zone *z = &a->heap.zone;
	size_t end = block + z->pageblock_nr_pages;
	for (size_t pfn = block; pfn < end;) {
		struct mv_page *pg = mv_pfn_to_page(z, pfn);
		switch (mv_pg_load(pg->type)) {
		case PG_BUDDY:
		case PG_PCP: pfn += (size_t)1 << mv_pg_load(pg->order); break;
		case PG_SLAB: {
			uint8_t cls = mv_pg_load(pg->cls);
			if (!mv_is_handle_class(cls))
				return true;
			pfn++;
			break;
		}
		case PG_LARGE:
			if (!is_migrate_movable(mv_pg_load(pg->mt)))
				return true;
			pfn += MV_MAX(mv_pg_load(pg->x), 1u);
			break;
		case PG_TAIL: {
			struct mv_page *h = mv_pfn_to_page(z, mv_pg_load(pg->x));
			if (mv_pg_load(h->type) != PG_LARGE ||
			    !is_migrate_movable(mv_pg_load(h->mt)))
				return true;
			pfn = mv_pg_load(pg->x) + MV_MAX(mv_pg_load(h->x), 1u);
			break;
		}
		case PG_NONE: pfn++; break;
		default: return true; /* PG_ALLOC, PG_CONTIG */
		}
	}
	return false;
}

static void undo_isolate(struct mova_arena *a, size_t start, size_t end, const int *old_mt)
{
	struct mv_zone *z = &a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	for (size_t b = mv_pageblock_start_pfn(z, start), i = 0; b < end; b += pbn, i++)
		mv_zone_unisolate_pageblock(z, b, old_mt[i]);
}

/* alloc_contig_range: 0, EBUSY (something in the way), ENOMEM */
static int alloc_contig_range(struct mova_arena *a, size_t start, size_t end, int mt)
{
	struct mv_zone *z = &a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	size_t first = mv_pageblock_start_pfn(z, start);
	size_t nblocks = (end - first + pbn - 1) / pbn;
	int old_mt[64];
	if (nblocks > 64)
		return EBUSY; /* callers split larger requests by pageblock runs */
	/* start_isolate_page_range */
	size_t done = 0;
	for (size_t b = first; b < end; b += pbn, done++) {
		old_mt[done] = mv_get_pfnblock_migratetype(z, b);
		if (old_mt[done] == MIGRATE_ISOLATE || has_unmovable_pages(a, b) ||
		    mv_zone_isolate_pageblock(z, b)) {
			undo_isolate(a, start, b, old_mt);
			return EBUSY;
		}
		if (old_mt[done] != MIGRATE_CMA)
			old_mt[done] = mt == MIGRATE_CMA ? MIGRATE_MOVABLE : mt;
	}
	/* __alloc_contig_migrate_range, a few tries */
	int err = 0;
	bool ok = false;
	for (int tries = 0; tries < CONTIG_MIGRATE_TRIES && !ok; tries++) {
		err = mv_migrate_range(a, first, first + nblocks * pbn, MR_CONTIG_RANGE);
		if (err)
			break;
		mv_heap_drain_all_pcp(&a->heap);
		/* test_pages_isolated + isolate_freepages_range (strict) */
		ok = mv_buddy_claim_range(z, start, end - start, true);
	}
	undo_isolate(a, start, end, old_mt);
	if (!ok)
		return err ? err : EBUSY;
	struct mv_page *h = mv_pfn_to_page(z, start);
	mv_pg_store(h->x, (uint32_t)(end - start));
	mv_pg_store(h->mt, (uint8_t)mt);
	mv_pg_store(h->type, (uint8_t)PG_CONTIG);
	return 0;
}

void *mova_alloc_contig(mova_arena *a, size_t nr_pages)
{
	if (!a || !nr_pages) {
		errno = EINVAL;
		return NULL;
	}
	/* migration waits for grace periods: never inside our own read section */
	if (mv_rcu_readers_ever() && mv_rcu_in_reader()) {
		errno = EDEADLK;
		return NULL;
	}
	struct mv_zone *z = &a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	if (nr_pages > 64 * pbn || nr_pages > z->nr_pages_max) {
		errno = ENOMEM;
		return NULL;
	}
	/* the caller's own caches would pin pages of the range */
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (tc)
		mv_tcache_flush(&a->heap, tc);
	size_t span = mv_align_up(nr_pages, pbn);
	size_t populated = mv_relaxed_load(&z->populated_pfn);
	/* cma_alloc: the CMA area first, at each pageblock offset */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t b = 0; b + span <= populated; b += pbn) {
			if (!mv_zone_pfn_valid(z, b) || !mv_zone_contiguous(z, b, span))
				continue;
			bool cma = mv_get_pfnblock_migratetype(z, b) == MIGRATE_CMA;
			if (cma != (pass == 0))
				continue;
			bool usable = true;
			for (size_t p = b; p < b + span && usable; p += pbn) {
				int mt = mv_get_pfnblock_migratetype(z, p);
				usable = pass == 0 ? mt == MIGRATE_CMA : (mt == MIGRATE_MOVABLE);
			}
			if (!usable)
				continue;
			if (alloc_contig_range(a, b, b + nr_pages,
					       pass == 0 ? MIGRATE_CMA : MIGRATE_MOVABLE) == 0) {
				mv_count(&a->heap.vm, MV_VM_pgalloc, 1);
				return mv_zone_addr(z, b);
			}
		}
	}
	/* no movable range could be cleared: wholly free or new pageblocks */
	size_t pfn = mv_buddy_alloc_pageblocks(z, span / pbn, MIGRATE_MOVABLE, NULL);
	if (pfn == MV_PFN_NONE) {
		errno = ENOMEM;
		return NULL;
	}
	if (span > nr_pages)
		mv_buddy_free_range(z, pfn + nr_pages, span - nr_pages);
	struct mv_page *h = mv_pfn_to_page(z, pfn);
	mv_pg_store(h->x, (uint32_t)nr_pages);
	mv_pg_store(h->type, (uint8_t)PG_CONTIG);
	return mv_zone_addr(z, pfn);
}

int mova_free_contig(mova_arena *a, void *p, size_t nr_pages)
{
	if (!a || !p || !mv_arena_owns(a, p) || ((uintptr_t)p & MV_PAGE_MASK))
		return EINVAL;
	struct mv_zone *z = &a->heap.zone;
	size_t pfn = mv_zone_pfn(z, p);
	if (!mv_zone_pfn_valid(z, pfn))
		return EINVAL;
	struct mv_page *h = mv_pfn_to_page(z, pfn);
	if (mv_pg_load(h->type) != PG_CONTIG || mv_pg_load(h->x) != nr_pages)
		return EINVAL;
	mv_pg_store(h->type, (uint8_t)PG_NONE);
	mv_buddy_free_range(z, pfn, nr_pages);
	mv_slowpath_maybe_return(a);
	return 0;
}
