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
/* Grow or shrink in place; false when the pages beyond are not free. */
bool mv_large_resize(struct mv_heap *h, struct mv_tcache *tc, void *p, size_t size);

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
