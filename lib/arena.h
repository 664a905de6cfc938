/* SPDX-License-Identifier: MIT */
/*
 * arena.h: struct mova_arena, the node of this design (pglist_data with one
 * zone): the zone and its buddy allocator, the bins of every size class,
 * the handle table, the thread caches, the counters, and the compaction
 * and kcompactd state. Also the process-wide registry of arenas (for
 * thread exit and fork) and the default arena.
 *
 * Lock ranks, outermost first (lock.h): registry (GLOBAL), compaction
 * (COMPACT), threads list (THREADS), bins (BIN), pcp, zone, handle table,
 * meta pools. Nothing here is taken on a fast path.
 */
#ifndef MV_ARENA_H
#define MV_ARENA_H

#include <pthread.h>

#include "compact.h"
#include "mempolicy.h"
#include "reclaim.h"
#include "meta.h"
#include "tcache.h"

struct mova_arena {
	/* first: what mova.h's inline fast paths read (mova_arena_head_) */
	struct mova_arena_head_ head;
	struct mv_heap heap; /* what the allocators below the arena see (heap.h) */
	mova_config cfg;     /* resolved: every default filled in */
	uint32_t tag;        /* handle tag, non-zero */

	struct mv_compact_state compact;
	struct mv_kcompactd kcompactd;
	struct mv_reclaim reclaim; /* budget and shrinkers */
	struct mv_numa numa;       /* memory policy */
};

static inline struct mova_arena *mv_arena_of(struct mv_heap *h)
{
	return (struct mova_arena *)(void *)((char *)h - offsetof(struct mova_arena, heap));
}

/* every live arena, under mv_heap_registry_lock (fork.c) */
void mv_arena_foreach(void (*fn)(struct mova_arena *a, void *arg), void *arg);

/* the default arena; its zone's section map entries are tagged
 * (MV_SECMAP_DFLT), mova_free's ownership test */
extern struct mova_arena *mv_default;
struct mova_arena *mv_default_arena_slow(void);

static inline bool mv_arena_owns(const struct mova_arena *a, const void *p)
{
	return mv_heap_owns(&a->heap, p);
}

/* The calling thread's cache for a (created on first use). */
static inline struct mv_tcache *mv_arena_tcache(struct mova_arena *a)
{
	return mv_tcache_of(&a->heap);
}

/* an allocation failed: if the reservation was cut short by RLIMIT_AS,
 * say so once, with what to do */
void mv_arena_full_warn(struct mova_arena *a);

/* stats.c: MOVA_CONF stats_print:1, print a's statistics at exit */
void mv_stats_print_at_exit(struct mova_arena *a);

#endif
