/* SPDX-License-Identifier: MIT */
/*
 * unit_heap.h: a struct mv_heap (lib/heap.h) made by hand, without an
 * arena, for the unit tests of the modules below the arena (slab, tcache,
 * large): a zone, the bins' locks, a handle table, a metadata pool, and a
 * place in the heap registry (thread exit tears a cache down only if its
 * heap is registered). Nothing above heap.h is involved: no compaction, no
 * reclaim, no kcompactd, no slow path that retries.
 */
#ifndef MV_UNIT_HEAP_H
#define MV_UNIT_HEAP_H

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "sizeclass.h"
#include "slab.h"
#include "tcache.h"

#define MiB ((size_t)1 << 20)

static struct mv_heap *uh_create(size_t reserve, unsigned pageblock_order)
{
	mv_sizeclass_init();
	mv_slab_init_secrets();
	struct mv_heap *h = aligned_alloc(MV_CACHELINE, mv_align_up(sizeof *h, MV_CACHELINE));
	cr_assert_not_null(h);
	memset(h, 0, sizeof *h);
	mv_meta_init(&h->meta);
	cr_assert_eq(mv_zone_init(&h->zone, reserve, pageblock_order, &h->vm), 0, "mv_zone_init");
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_mutex_init(&h->bins[c].lock, MV_RANK_BIN);
	mv_mutex_init(&h->threads_lock, MV_RANK_THREADS);
	mv_lock(&mv_heap_registry_lock);
	cr_assert_eq(mv_htable_init(&h->htab, 0, (size_t)1 << 20), 0, "mv_htable_init");
	cr_assert_eq(mv_heap_register(h), 0, "mv_heap_register");
	mv_unlock(&mv_heap_registry_lock);
	return h;
}

static void uh_destroy(struct mv_heap *h)
{
	mv_lock(&mv_heap_registry_lock);
	mv_heap_unregister(h);
	mv_unlock(&mv_heap_registry_lock);
	if (mv_tls_last.h == h)
		mv_tls_last.h = NULL;
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_mutex_destroy(&h->bins[c].lock);
	mv_mutex_destroy(&h->threads_lock);
	mv_zone_destroy(&h->zone);
	mv_htable_destroy(&h->htab);
	mv_meta_destroy(&h->meta);
	free(h);
}

/* pages of the zone that are populated */
static inline size_t uh_populated(const struct mv_heap *h)
{
	return atomic_load(&h->zone.populated_pfn);
}

/* pages on the zone's free lists */
static inline size_t uh_free(const struct mv_heap *h)
{
	return atomic_load(&h->zone.nr_free_pages);
}

static inline uint64_t uh_ev(const struct mv_heap *h, enum mv_vm_item item)
{
	return atomic_load(&h->vm.ev[item]);
}

/* the zone's invariants hold */
static inline void uh_verify(struct mv_heap *h)
{
	const char *err = mv_zone_verify(&h->zone);
	cr_assert_null(err, "mv_zone_verify: %s", err);
}

#endif
