/* SPDX-License-Identifier: MIT */
/*
 * heap.h: struct mv_heap, the allocation side of an arena: the zone and its
 * buddy allocator, the bins of every size class, the handle table, the
 * metadata pool, the event counters and the threads' caches. The modules
 * below the arena (slab, large, tcache, migrate) take a heap and never see
 * struct mova_arena (arena.h), which adds what only the layers above use:
 * the configuration, compaction's and kcompactd's state, the budget and
 * shrinkers, the memory policy. So no lower module can call compaction,
 * reclaim or the daemon: an allocator that cannot go on fails upward with
 * NULL, and the slow path above it (slowpath.c) decides what to do, as the
 * kernel's __alloc_pages_slowpath does.
 *
 * Locks: threads_lock (rank MV_RANK_THREADS) for the list of caches; each
 * bin's lock (MV_RANK_BIN); the zone, handle table and metadata pool have
 * their own.
 */
#ifndef MV_HEAP_H
#define MV_HEAP_H

#include "buddy.h"
#include "htable.h"
#include "meta.h"
#include "sizeclass.h"
#include "vmstat.h"

struct mv_slab;
struct mv_tcache;

/*
 * MV_STAT (meson -Dstat=1): counters on the fast paths, as mimalloc's
 * MI_STAT. Each thread's cache keeps its own (owner-written, relaxed); a
 * cache torn down adds its counts to the heap's; mova_stats_print sums
 * them. Off (0), every mv_fstat compiles to nothing.
 */
#ifndef MV_STAT
#define MV_STAT 0
#endif
#define MV_FSTAT_ITEMS(X)                                                                              \
	X(malloc_fast) /* mova_malloc served by the thread's current slab */                           \
	X(malloc_slow) /* ... by the slow path (new slab, large run, first call) */                    \
	X(free_local)  /* mova_free to a slab the thread owns */                                       \
	X(free_remote) /* ... onto a raw slab's atomic list (another thread's, or its own full one) */ \
	X(free_slow)   /* ... through the slow path (large, movable, foreign, bad) */                  \
	X(halloc_fast) /* mova_halloc from the last arena's current slab */                            \
	X(halloc_slow) /* ... through halloc (other arena, no entry, new slab, large) */               \
	X(hfree_fast)  /* mova_hfree onto the thread's own slab, no reader ever */                     \
	X(hfree_slow)  /* ... through hfree_finish (grace period, remote, large) */
enum mv_fstat_item {
#define MV_FS_ENUM(name) MV_FS_##name,
	MV_FSTAT_ITEMS(MV_FS_ENUM)
#undef MV_FS_ENUM
	    MV_NR_FSTAT
};

#define MV_NR_FULLNESS 4 /* partial slabs in quarters of use, as zsmalloc's groups */

/* the shared slabs of one size class (kmem_cache_node's lists) */
struct mv_bin {
	mv_mutex lock;
	struct mv_slab *partial[MV_NR_FULLNESS];
	struct mv_slab *full;
	struct mv_slab *empty;
	struct mv_slab *abandoned;
	uint32_t nr_empty;
	uint32_t nr_partial_free; /* free slots in partial slabs (zs_can_compact) */
	_Atomic uint64_t nr_slabs;
} MV_ALIGNED_CL;

struct mv_heap {
	struct mv_zone zone;
	struct mv_bin bins[MV_NR_CLASSES];
	struct mv_htable htab;
	struct mv_vmstat vm;
	struct mv_meta_pool meta;
	uint64_t epoch; /* unique per arena ever created in this process */
	bool is_default;

	mv_mutex threads_lock;
	struct mv_tcache *tcaches;
	_Atomic int64_t dead_live_bytes;  /* counters of thread caches torn down */
	_Atomic int64_t large_live_bytes; /* raw large objects, asked-for bytes */
	/* large objects' pages moved by realloc since the map count was last
	 * looked at (large.c); the high bit: moves refused until the next look */
	_Atomic uint32_t large_moved;
#if MV_STAT
	_Atomic uint64_t dead_fstat[MV_NR_FSTAT]; /* MV_STAT: caches torn down */
#endif

	_Atomic uint32_t
	    migrate_seq; /* bumped (and futex-woken) when a migration batch publishes */
	_Atomic uint32_t migrate_waiters;
	/* bumped by a reclaimer that needs what every thread's cache holds
	 * (drain_all_pages): each thread answers on its next slow path */
	_Atomic uint32_t flush_gen;
	/* bumped by kcompactd every decay_ms: each thread holding free raw
	 * memory gives back what its idle slabs hold (mv_tcache_decay) */
	_Atomic uint32_t decay_gen;
};

/* Is p in the heap's zone? The section map's load, then the section's
 * header: its zone, and p within the memory it maps. */
static inline bool mv_heap_owns(const struct mv_heap *h, const void *p)
{
	const struct mv_section *s = mv_section_of(p);
	return s && s->zone == &h->zone &&
	       ((uintptr_t)p & ~(uintptr_t)(MV_SECTION_SIZE - 1)) == (uintptr_t)mv_rload(s->base) &&
	       ((uintptr_t)p & (MV_SECTION_SIZE - 1)) < mv_rload(s->len);
}

/*
 * The registry of live heaps: thread exit and cache eviction tear down a
 * thread's cache for a heap only if the heap still lives (an arena may
 * have been destroyed meanwhile); fork walks every heap. mv_heap_register
 * gives the heap its epoch. Rank MV_RANK_GLOBAL, outermost of all.
 */
extern mv_mutex mv_heap_registry_lock;
int mv_heap_register(struct mv_heap *h);
void mv_heap_unregister(struct mv_heap *h);
/* caller holds mv_heap_registry_lock */
bool mv_heap_alive(struct mv_heap *h, uint64_t epoch);
/* calls fn on every live heap; caller holds mv_heap_registry_lock */
void mv_heap_foreach(void (*fn)(struct mv_heap *h, void *arg), void *arg);

#endif
