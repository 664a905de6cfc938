/* SPDX-License-Identifier: MIT */
/* large.c: see large.h. */
#include "large.h"

#include <errno.h>
#include <string.h>

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
	if (nr_new < nr) {
		mark_tails(z, pfn, nr, PG_NONE);
		mv_pg_store(hd->x, (uint32_t)nr_new);
		mark_tails(z, pfn, nr_new, PG_TAIL);
		mv_pcp_free_range(z, tc ? &tc->pcp : NULL, pfn + nr_new, nr - nr_new);
	} else if (nr_new > nr) {
		if (!mv_buddy_claim_range(z, pfn + nr, nr_new - nr, false))
			return false;
		/* The claim checks that its own pages are one stretch of address
		 * space, not that they follow the run's: a run ending at a
		 * slot's end grew into the next slot mapped elsewhere, and the
		 * program's writes past the end landed in whatever slot sat
		 * after it in the address space (realloc_churn: slabs at the
		 * bottom of a slot corrupted). Checked once the pages are ours:
		 * a slot holding them cannot be unmapped or mapped anew. */
		if (!mv_zone_contiguous(z, pfn, nr_new)) {
			mv_buddy_free_range(z, pfn + nr, nr_new - nr);
			return false;
		}
		mv_pg_store(hd->x, (uint32_t)nr_new);
		mark_tails(z, pfn, nr_new, PG_TAIL);
	}
	mv_pg_store(hd->priv, (uint64_t)size);
	return true;
}
