/* SPDX-License-Identifier: MIT */
/* large.c: see large.h. */
#include "large.h"

#include "os.h"

#include <errno.h>
#include <string.h>

/*
 * Moved runs. realloc moves a large object whose neighbours are taken to a
 * new run; when that run's pages were never backed, a copy would fault
 * each of them in (11-40 us a page on this project's virtual machine,
 * against 0.2 us for the copy), so from MV_LARGE_MOVE_MIN_PAGES on the
 * pages themselves are moved (mv_os_move_pages, mremap): no fault, no
 * copy, and the old run's pages go to the new one instead of staying
 * behind as free backed memory. The kernel makes the moved range a mapping
 * of its own (its page offsets no longer follow its neighbours'): up to two
 * more entries in the process's map count each time, which nothing takes
 * back until the slot is unmapped. So every MV_LARGE_MOVE_CHECK moves the
 * map count is read (/proc/self/maps); past a quarter of vm.max_map_count,
 * realloc copies (and looks again after as many more attempts).
 */
#define MV_LARGE_MOVE_MIN_PAGES 64 /* 256 KiB */
#define MV_LARGE_MOVE_CHECK 1024u

/* may this move be made? (counts it) */
static bool move_allowed(struct mv_heap *h)
{
	uint32_t n = mv_relaxed_add(&h->large_moved, 1u) + 1;
	if (n % MV_LARGE_MOVE_CHECK)
		return !(n & 0x80000000u); /* the high bit: refused until the next look */
	long maps = mv_os_map_count(), max = mv_os_max_map_count();
	bool ok = maps >= 0 && maps < max / 4;
	atomic_store_explicit(&h->large_moved, ok ? 0u : 0x80000000u, memory_order_relaxed);
	return ok;
}

static void mark_tails(struct mv_zone *z, size_t pfn, size_t nr, uint8_t type)
{
	size_t pbn = z->pageblock_nr_pages;
	for (size_t p = mv_align_up(pfn + 1, pbn); p < pfn + nr; p += pbn) {
		struct mv_page *pg = mv_pfn_to_page(z, p);
		mv_pg_store(pg->x, (uint32_t)pfn);
		mv_pg_store(pg->type, type);
	}
}

void mv_large_set_run(struct mv_zone *z, size_t pfn, size_t nr, int mt, size_t size)
{
	struct mv_page *hd = mv_pfn_to_page(z, pfn);
	mv_pg_store(hd->x, (uint32_t)nr);
	mv_pg_store(hd->priv, (uint64_t)size);
	mv_pg_store(hd->mt, (uint8_t)mt);
	mv_pg_store(hd->type, (uint8_t)PG_LARGE);
	mark_tails(z, pfn, nr, PG_TAIL);
}

/* the pages of a large run: an order with the tail given back, or whole
 * pageblocks past a max-order block */
static size_t large_pages(struct mv_heap *h, struct mv_tcache *tc, size_t nr, size_t align_pages,
			  int mt, bool *zeroed)
{
	struct mv_zone *z = &h->zone;
	size_t pfn;
	*zeroed = false;
	if (nr <= ((size_t)1 << MV_MAX_PAGE_ORDER) &&
	    align_pages <= ((size_t)1 << MV_MAX_PAGE_ORDER)) {
		/* a block of an order is aligned to its size relative to the
		 * base, which is aligned to a max-order block: up to that, to
		 * its size in the address space too */
		if (align_pages > 1) {
			unsigned order = MV_MAX(mv_order_for_pages(nr), mv_ilog2(align_pages));
			pfn = mv_buddy_alloc(z, order, mt, mt == MIGRATE_MOVABLE ? MV_ALLOC_CMA : 0,
					     zeroed);
			if (pfn != MV_PFN_NONE && ((size_t)1 << order) > nr)
				mv_buddy_free_range(z, pfn + nr, ((size_t)1 << order) - nr);
		} else {
			pfn = mv_pcp_alloc_exact(z, tc ? &tc->pcp : NULL, nr, mt, zeroed);
		}
		return pfn;
	}
	/* Alignment is of the address, not of the pfn: a slot is aligned to
	 * 64 MiB, so past that a pfn aligned relative to the zone is
	 * misaligned wherever the slot landed. The run is whole pageblocks in
	 * one stretch of address space, so a pageblock-aligned start needs at
	 * most align_pages - pbn pages of slack to reach an aligned address. */
	size_t pbn = z->pageblock_nr_pages;
	size_t extra = align_pages > pbn ? align_pages / pbn - 1 : 0;
	size_t nr_pb = (nr + pbn - 1) / pbn + extra;
	pfn = mv_buddy_alloc_pageblocks(z, nr_pb, mt, zeroed);
	if (pfn != MV_PFN_NONE) {
		uintptr_t addr = (uintptr_t)mv_zone_addr(z, pfn);
		size_t start = pfn + ((mv_align_up(addr, align_pages << MV_PAGE_SHIFT) - addr) >>
				      MV_PAGE_SHIFT);
		size_t end = pfn + nr_pb * pbn;
		if (start > pfn)
			mv_buddy_free_range(z, pfn, start - pfn);
		if (start + nr < end)
			mv_buddy_free_range(z, start + nr, end - (start + nr));
		pfn = start;
	}
	return pfn;
}

void *mv_large_alloc(struct mv_heap *h, struct mv_tcache *tc, size_t size, size_t align, int mt,
		     bool zero)
{
	struct mv_zone *z = &h->zone;
	if (size > z->reserve_bytes || (align && align > z->reserve_bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	size_t nr = (size + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT;
	if (!nr)
		nr = 1;
	size_t align_pages = align > MV_PAGE_SIZE ? align >> MV_PAGE_SHIFT : 1;
	bool zeroed;
	size_t pfn = large_pages(h, tc, nr, align_pages, mt, &zeroed);
	if (pfn == MV_PFN_NONE) {
		/* fail upward: the slow path above decides whether to reclaim
		 * and retry (slowpath.c) */
		errno = ENOMEM;
		return NULL;
	}
	mv_large_set_run(z, pfn, nr, mt, size);
	void *p = mv_zone_addr(z, pfn);
	if (zero && !zeroed)
		memset(p, 0, size);
	return p;
}

void mv_large_free(struct mv_heap *h, struct mv_tcache *tc, void *p)
{
	struct mv_zone *z = &h->zone;
	size_t pfn = mv_zone_pfn(z, p);
	struct mv_page *hd = mv_pfn_to_page(z, pfn);
	size_t nr = mv_pg_load(hd->x);
	mark_tails(z, pfn, nr, PG_NONE);
	mv_pg_store(hd->type, (uint8_t)PG_NONE);
	mv_pcp_free_range(z, tc ? &tc->pcp : NULL, pfn, nr);
}

bool mv_large_resize(struct mv_heap *h, struct mv_tcache *tc, void *p, size_t size)
{
	struct mv_zone *z = &h->zone;
	size_t pfn = mv_zone_pfn(z, p);
	struct mv_page *hd = mv_pfn_to_page(z, pfn);
	if (size > z->reserve_bytes)
		return false; /* and (size + 4095) >> 12 cannot wrap below */
	size_t nr = mv_pg_load(hd->x), nr_new = (size + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT;
	if (!nr_new)
		nr_new = 1;
	if (nr_new > z->nr_pages_max)
		return false;
	/* a growth within the room keeps it; only a smaller size gives back */
	if (nr_new < nr && size < mv_large_size(hd)) {
		mark_tails(z, pfn, nr, PG_NONE);
		mv_pg_store(hd->x, (uint32_t)nr_new);
		mark_tails(z, pfn, nr_new, PG_TAIL);
		/* the tail to the zone, not the thread's page runs (pcp.h): it
		 * is the room this block grows back into in place (a run on the
		 * lists reads as allocated), and a realloc loop that shrinks and
		 * grows moved its block each time instead (realloc_churn: 4.2
		 * page faults an operation and 80 us, against 2.4-3.1 and 41-52) */
		(void)tc;
		mv_pcp_free_range(z, NULL, pfn + nr_new, nr - nr_new);
	} else if (nr_new > nr) {
		/* room to grow again, from 64 pages on: a buffer grown by small
		 * steps (a page at a time, say) then takes the zone lock every
		 * eighth of its size, not every step; the room is free pages
		 * taken as they are, backed or not, and goes back with the object
		 * or a shrink. Smaller runs get none: room on every small
		 * growing block raised git's peak RSS by 0.2-0.3 MiB (18.4) */
		size_t got = mv_buddy_claim_upto(
		    z, pfn + nr, nr_new - nr,
		    MV_MIN(nr_new - nr + (nr_new >= 64 ? nr_new / 8 : 0), z->nr_pages_max - nr));
		if (!got)
			return false;
		nr_new = nr + got;
		/* The claim checks that its own pages are one stretch of address
		 * space, not that they follow the run's: a run ending at a
		 * slot's end grew into the next slot mapped elsewhere, and the
		 * program's writes past the end landed in whatever slot sat
		 * after it in the address space (realloc_churn: slabs at the
		 * bottom of a slot corrupted). Checked once the pages are ours:
		 * a slot holding them cannot be unmapped or mapped anew. */
		if (!mv_zone_contiguous(z, pfn, nr_new)) {
			mv_buddy_free_range(z, pfn + nr, got);
			return false;
		}
		mv_pg_store(hd->x, (uint32_t)nr_new);
		mark_tails(z, pfn, nr_new, PG_TAIL);
	}
	mv_pg_store(hd->priv, (uint64_t)size);
	return true;
}

void *mv_large_realloc_move(struct mv_heap *h, struct mv_tcache *tc, void *p, size_t size)
{
	struct mv_zone *z = &h->zone;
	if (size > z->reserve_bytes) {
		errno = ENOMEM;
		return NULL;
	}
	size_t pfn = mv_zone_pfn(z, p);
	struct mv_page *hd = mv_pfn_to_page(z, pfn);
	size_t nr = mv_large_pages(hd);
	size_t nr_new = MV_MAX((size + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT, (size_t)1);
	/* room to grow in place next time, as mv_large_resize takes */
	size_t nr_want = nr_new;
	if (nr_new > nr)
		nr_new = MV_MIN(nr_new >= 64 ? nr_new + nr_new / 8 : nr_new, z->nr_pages_max);
	bool zeroed;
	size_t npfn = large_pages(h, tc, nr_new, 1, MIGRATE_UNMOVABLE, &zeroed);
	if (npfn == MV_PFN_NONE && nr_new > nr_want) /* no room for the room */
		npfn = large_pages(h, tc, nr_new = nr_want, 1, MIGRATE_UNMOVABLE, &zeroed);
	if (npfn == MV_PFN_NONE) {
		errno = ENOMEM;
		return NULL;
	}
	mv_large_set_run(z, npfn, nr_new, MIGRATE_UNMOVABLE, size);
	void *q = mv_zone_addr(z, npfn);
	size_t n = MV_MIN(nr, nr_new);
	/* onto pages never backed (zeroed): move them rather than fault them in */
	if (zeroed && n >= MV_LARGE_MOVE_MIN_PAGES && move_allowed(h) &&
	    mv_os_move_pages(p, q, n << MV_PAGE_SHIFT) == 0) {
		/* p's range reads as zeros now: its pages are free, not backed */
		mv_zone_held_unbacked(z, pfn, nr);
		mark_tails(z, pfn, nr, PG_NONE);
		mv_pg_store(hd->type, (uint8_t)PG_NONE);
		mv_pcp_free_range(z, tc ? &tc->pcp : NULL, pfn, nr);
		return q;
	}
	/* all of the usable size (malloc_usable_size: the whole pages) */
	memcpy(q, p, MV_MIN(nr << MV_PAGE_SHIFT, size));
	mv_large_free(h, tc, p);
	return q;
}
