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
	struct mv_zone zone;
	struct mv_bin bins[MV_NR_CLASSES];
	struct mv_htable htab;
	struct mv_vmstat vm;
	mova_config cfg;  /* resolved: every default filled in */
	bool reserve_cut; /* the zone got less than cfg asked (RLIMIT_AS) */
	uint32_t tag;     /* handle tag, non-zero */
	uint64_t epoch;   /* unique per arena ever created in this process */
	bool is_default;
	struct mv_meta_pool meta;

	mv_mutex threads_lock;
	struct mv_tcache *tcaches;
	_Atomic int64_t dead_live_bytes;  /* counters of thread caches torn down */
	_Atomic int64_t large_live_bytes; /* raw large objects, asked-for bytes */

	_Atomic uint32_t
	    migrate_seq; /* bumped (and futex-woken) when a migration batch publishes */
	_Atomic uint32_t migrate_waiters;
	/* bumped by a reclaimer that needs what every thread's cache holds
	 * (drain_all_pages): each thread answers on its next slow path */
	_Atomic uint32_t flush_gen;

	struct mv_compact_state compact;
	struct mv_kcompactd kcompactd;
	struct mv_reclaim reclaim; /* budget and shrinkers */
	struct mv_numa numa;       /* memory policy */
};

/* the registry of live arenas; thread exit and fork walk it */
extern mv_mutex mv_registry_lock;
bool mv_arena_alive(struct mova_arena *a, uint64_t epoch); /* caller holds mv_registry_lock */
void mv_registry_foreach(void (*fn)(struct mova_arena *a, void *arg),
			 void *arg); /* holds the lock */

/* the default arena's range, for mova_free's one-compare ownership test */
extern struct mova_arena *mv_default;
/* the default arena's range and descriptors, together on one cache line */
extern struct mv_default_range {
	char *base;
	size_t span;
	struct mv_page *desc;
} mv_dflt;
struct mova_arena *mv_default_arena_slow(void);

static inline bool mv_arena_owns(const struct mova_arena *a, const void *p)
{
	return (uintptr_t)p - (uintptr_t)a->zone.base < a->zone.reserve_bytes;
}

/* The calling thread's tcache for a (created on first use). */
extern __thread struct mv_tls_last {
	struct mova_arena *a;
	uint64_t epoch;
	struct mv_tcache *tc;
} mv_tls_last __attribute__((tls_model("initial-exec")));

static inline struct mv_tcache *mv_tcache_of(struct mova_arena *a)
{
	if (likely(mv_tls_last.a == a && mv_tls_last.epoch == a->epoch))
		return mv_tls_last.tc;
	return mv_tcache_get_slow(a);
}

/* Does the arena have work for kcompactd (start it, wake it)? Slow paths
 * only, no mova lock held: see arena.c. mv_arena_tick asks every
 * MV_HOUSEKEEP_EVERY calls of a thread. */
#define MV_HOUSEKEEP_EVERY 64
void mv_arena_housekeep(struct mova_arena *a);
extern __thread uint32_t mv_arena_ticks __attribute__((tls_model("initial-exec")));
static inline void mv_arena_tick(struct mova_arena *a)
{
	if (unlikely((++mv_arena_ticks & (MV_HOUSEKEEP_EVERY - 1)) == 0))
		mv_arena_housekeep(a);
}

/* A reclaimer asked every thread to flush its cache (flush_gen): the
 * owner does so here, on a slow path, the only place it may (tcache.c).
 * Every allocation slow path passes here with no lock held, so it is also
 * where the arena's housekeeping is paced (mv_arena_tick). */
static inline void mv_tcache_answer_flush(struct mova_arena *a, struct mv_tcache *tc)
{
	uint32_t gen = atomic_load_explicit(&a->flush_gen, memory_order_relaxed);
	if (unlikely(gen != atomic_load_explicit(&tc->flush_seen, memory_order_relaxed)))
		mv_tcache_flush_asked(a, tc, gen);
	mv_arena_tick(a);
}

/* The pages behind every live allocation, slab, and free block go back
 * to the buddy or the OS; counters for stats. */
void mv_arena_drain_all_pcp(struct mova_arena *a);
/* An allocation is about to fail: give back what this thread and the bins
 * hold without need (pending frees, kept and empty slabs, page lists) so
 * the caller can retry once, as the kernel drains per-cpu lists and
 * shrinks slabs before failing. True if free memory grew. No lock held. */
bool mv_arena_reclaim(struct mova_arena *a, struct mv_tcache *tc);
/* Free pageblocks kept backed for reuse: retain_bytes when set, else
 * 1/MV_RETAIN_DIV of the resident pageblocks, MV_RETAIN_MIN_PB ..
 * MV_RETAIN_MAX_PB of them. A fixed amount either bloats a small process
 * (8 pageblocks were 16 MiB, and twice that before anything went back:
 * sqlite's peak RSS was 6% over jemalloc's) or makes a large one
 * give back and fault in again pages it is about to reuse. */
#define MV_RETAIN_DIV 32
#define MV_RETAIN_MIN_PB 2
#define MV_RETAIN_MAX_PB 16
size_t mv_arena_retain_pageblocks(const struct mova_arena *a);
/* after a large free: kcompactd's decay will give it back (started if
 * need be); without kcompactd, pageblocks above the retain threshold go
 * back now (hysteresis) */
void mv_arena_maybe_return(struct mova_arena *a);
/* after a slow allocation: wake kcompactd if an allocation fell back or failed */
void mv_arena_check_wakeup(struct mova_arena *a);
/* an allocation failed: if the reservation was cut short by RLIMIT_AS,
 * say so once, with what to do */
void mv_arena_full_warn(struct mova_arena *a);

#endif
