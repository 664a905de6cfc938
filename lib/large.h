/* SPDX-License-Identifier: MIT */
/*
 * large.h: objects larger than the largest size class, as runs of whole
 * pages: up to a max-order block through the buddy allocator (allocate the
 * order, give back the tail, as alloc_pages_exact), beyond that as runs of
 * whole pageblocks. The head page's descriptor says PG_LARGE with the
 * run's length and the bytes asked for; a movable object's handle index
 * sits in the second page's descriptor. Pageblock starts inside a run
 * longer than a pageblock say PG_TAIL, so scanners starting there know.
 */
#ifndef MV_LARGE_H
#define MV_LARGE_H

#include "tcache.h"

/* align: 0 or a power of two; mt: UNMOVABLE or MOVABLE; NULL with errno ENOMEM */
void *mv_large_alloc(struct mv_heap *h, struct mv_tcache *tc, size_t size, size_t align, int mt,
		     bool zero);
/* make pages [pfn, pfn+nr) the caller holds a large object of size bytes */
void mv_large_set_run(struct mv_zone *z, size_t pfn, size_t nr, int mt, size_t size);
void mv_large_free(struct mv_heap *h, struct mv_tcache *tc, void *p);
/* The fast paths of objects of MV_PCP_RUN_MIN..MV_PCP_RUN_MAX pages, on the
 * calling thread's cached runs (pcp.h) and nothing else: no zone lock, no
 * lock, no housekeeping. The object, or NULL (no run of its size cached:
 * take mv_large_alloc); true if p went onto the runs (else mv_large_free). */
static inline void *mv_large_alloc_cached(struct mv_heap *h, struct mv_tcache *tc, size_t size,
					  int mt)
{
	struct mv_zone *z = &h->zone;
	size_t nr = (size + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT;
	if (!mv_pcp_run_size(nr))
		return NULL;
	size_t pfn = mv_pcp_run_take(z, &tc->pcp, nr, mt);
	if (pfn == MV_PFN_NONE)
		return NULL;
	/* no tails: a cached run lies in one pageblock (pcp.c) */
	struct mv_page *hd = mv_pfn_to_page(z, pfn);
	mv_pg_store(hd->x, (uint32_t)nr);
	mv_pg_store(hd->priv, (uint64_t)size);
	mv_pg_store(hd->mt, (uint8_t)mt);
	/* type and order in one store: free's first load reads both
	 * (type_order), and a load spanning two byte stores waits for them
	 * to leave the store buffer, where one store would be forwarded (a
	 * malloc+free pair of 64 KiB spent a third of its time there) */
	mv_pg_store(hd->type_order, (uint16_t)PG_LARGE);
	return mv_zone_addr(z, pfn);
}
/* p's head descriptor is hd */
static inline bool mv_large_free_cached(struct mv_heap *h, struct mv_tcache *tc, void *p,
					struct mv_page *hd)
{
	struct mv_zone *z = &h->zone;
	size_t nr = mv_pg_load(hd->x);
	/* a run crossing a pageblock has tails to clear: not for the lists,
	 * which take no such run (mv_pcp_run_put says false) */
	return mv_pcp_run_size(nr) && mv_pcp_run_put(z, &tc->pcp, mv_zone_pfn(z, p), nr);
}
/* Grow or shrink in place; false when the pages beyond are not free. A
 * growth to 64 pages or more takes up to an eighth more than asked where
 * they are free (mv_large_pages then says more than size needs). */
bool mv_large_resize(struct mv_heap *h, struct mv_tcache *tc, void *p, size_t size);
/* realloc of the unmovable large object p to size bytes in a new run (its
 * neighbours are taken): its pages moved there when the run's pages were
 * never backed (see large.c), else copied; p is freed. The new object, or
 * NULL with errno ENOMEM and p untouched. No reclaim (slowpath.c's). */
void *mv_large_realloc_move(struct mv_heap *h, struct mv_tcache *tc, void *p, size_t size);

static inline size_t mv_large_pages(const struct mv_page *head)
{
	return mv_pg_load(head->x);
}
static inline size_t mv_large_size(const struct mv_page *head)
{
	return mv_pg_load(head->priv);
}
static inline int mv_large_mt(const struct mv_page *head)
{
	return mv_pg_load(head->mt);
}

/*
 * The movable operations of page runs (the kernel's movable_operations, as
 * slab.h's mv_slab_isolate/putback/new_isolated for slabs). A run has no
 * list to leave: what isolates it is its entry's freeze (hentry.h), which
 * no free can get past, so isolation here is choosing a candidate, the
 * destination is a run made on pages the caller took, and putback is
 * nothing (a run that could not move stays where it is, whole).
 */
/* The run whose head is pfn (PG_LARGE): its pages in *nr (at least 1);
 * true if compaction may move it: movable, or reclaimable when clearing a
 * range (contig), and no longer than a max-order block (a destination must
 * come from one free block). Racy, for scanners: the freeze checks again. */
static inline bool mv_large_isolate(const struct mv_zone *z, size_t pfn, bool contig, size_t *nr)
{
	const struct mv_page *head = mv_pfn_to_page(z, pfn);
	*nr = MV_MAX(mv_large_pages(head), 1u);
	int mt = mv_large_mt(head);
	return (is_migrate_movable(mt) || (mt == MIGRATE_RECLAIMABLE && contig)) &&
	       *nr <= ((size_t)1 << MV_MAX_PAGE_ORDER);
}
/* The destination run for an object of size bytes, on pages [pfn, pfn+nr)
 * the caller took off the free lists. */
static inline void *mv_large_new_isolated(struct mv_zone *z, size_t pfn, size_t nr, int mt,
					  size_t size)
{
	mv_large_set_run(z, pfn, nr, mt, size);
	return mv_zone_addr(z, pfn);
}
/* pfn says PG_TAIL (a pageblock start inside a run): the first pfn past
 * the run, or pfn + 1 when the run changed under a racy scanner. */
static inline size_t mv_large_tail_end(const struct mv_zone *z, size_t pfn)
{
	size_t head = mv_pg_load(mv_pfn_to_page(z, pfn)->x);
	size_t nr = mv_large_pages(mv_pfn_to_page(z, head));
	return head + nr > pfn ? head + nr : pfn + 1;
}

/* The back-reference of a movable run at pfn (its handle entry index), in
 * its second page's descriptor: written when an object is placed there
 * (halloc, migration), read racily by scanners, which check the entry. */
static inline uint32_t mv_large_backref(const struct mv_zone *z, size_t pfn)
{
	return (uint32_t)mv_pg_load(mv_pfn_to_page(z, pfn + 1)->priv);
}
static inline void mv_large_set_backref(struct mv_zone *z, size_t pfn, uint32_t idx)
{
	mv_pg_store(mv_pfn_to_page(z, pfn + 1)->priv, (uint64_t)idx);
}

#endif
