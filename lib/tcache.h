/* SPDX-License-Identifier: MIT */
/*
 * tcache.h: a thread's cache for one arena: its current slab per class
 * (raw and movable), its owned raw slabs, its page lists (pcp), its cache
 * of free handle entries and its batch of slots waiting for a grace
 * period. Only the owning thread touches it, except the pcp (its own lock)
 * and xdelayed (atomic). The arena keeps every tcache on a list for
 * drains, statistics and teardown.
 *
 * Thread state: one record per thread (struct mv_thread) maps arenas to
 * tcaches; the default arena's tcache sits in an initial-exec TLS pointer
 * for the malloc fast path. A pthread key's destructor returns a thread's
 * caches when it exits: raw slabs are abandoned to the bins, frozen
 * movable slabs are unfrozen, pages and handle entries go back.
 */
#ifndef MV_TCACHE_H
#define MV_TCACHE_H

#include "htable.h"
#include "rcu.h"
#include "slab.h"

/* empty raw slabs a thread keeps instead of giving back at once, so a
 * loop that fills and empties slabs does not make and destroy them each
 * round (mimalloc's delayed page retire) */
#define MV_KEPT_PAGES 256

/* ... at most: 1/64 of the arena's resident pages, 16 at least (each kept
 * page is backed: RSS a small process should not carry) */
#define mv_kept_max(z)                                                                    \
	((uint32_t)MV_MIN(MV_MAX(mv_relaxed_load(&(z)->resident_pages) / 64, (size_t)16), \
			  (size_t)MV_KEPT_PAGES))

#define MV_RBUF_SLOTS 8
#define MV_RBUF_BATCH 32

/* remote frees to one slab, waiting to be pushed as a chain */
struct mv_rbuf {
	struct mv_slab *s;
	void *head, *tail;
	uint32_t n;
};

struct mv_slabq {
	struct mv_slab *first, *last;
};

struct mv_tcache {
	/* the fast paths */
	struct mv_slab *direct[65]; /* raw current slab by (size + 15) >> 4, size <= 1024 */
	struct mv_slab *raw_cur[MV_NR_RAW_CLASSES];
	struct mv_slab *mov_cur[MV_NR_MOV_CLASSES];
	_Atomic int64_t live_bytes; /* owner-written (mv_owner_add), read by stats */
	struct mv_heap *heap;
	uint32_t nhidx; /* owner-written (mv_rstore), read by stats (mv_htable_live) */
	uint32_t hidx[MV_HCACHE];
	struct mv_rcu_batch *pending; /* slots freed, waiting for a grace period */
	struct mv_rcu_sink *sink;     /* where batches come back after theirs (tcache.c) */
	int sync_frees; /* reclaiming: full batches wait for their grace period here */
	/* raw slabs this thread owns */
	struct mv_slabq rawq[MV_NR_RAW_CLASSES];
	struct mv_slabq rawfull;
	/* twin slots, by the half class: the slab whose reserved pairs the
	 * next twins come from, and where the search for one goes on (a slab
	 * of rawq[class], or NULL). Owner's; slab.c clears them as slabs go. */
	struct mv_slab *twinsrc[MV_NR_RAW_CLASSES];
	struct mv_slab *twincur[MV_NR_RAW_CLASSES];
	/* twins are for refills: a window of TWIN_WINDOW twin allocations
	 * that saw as many twin frees (the arena's) is churn, which the fast
	 * path serves better: then no twins till twin_off + TWIN_OFF slow
	 * paths have passed, or the next decay */
	uint32_t twin_allocs;
	uint32_t twin_off; /* slow_count when twins were switched off, | 1; 0: on */
	uint64_t twin_frees0;
	_Atomic(void *) xdelayed;
	struct mv_rbuf rbuf[MV_RBUF_SLOTS];
	uint32_t slow_count; /* slow paths taken, to pace periodic work */
	uint32_t kept_pages; /* pages of empty raw slabs kept for reuse (MV_KEPT_PAGES at most) */
	int dead;            /* torn down: no longer on the arena's list */
	_Atomic uint32_t flush_seen; /* the arena's flush_gen this cache last answered */
	uint32_t decay_seen;         /* the arena's decay_gen this cache last answered */
	uint32_t decay_tick;         /* decays answered (mv_slab.tick) */
	_Atomic uint32_t raw_pages;  /* pages of the raw slabs it owns (owner-written) */
	struct mv_pcp pcp;
	struct mv_tcache *tnext, *tprev; /* arena->tcaches, under arena->threads_lock */
#if MV_STAT
	_Atomic uint64_t fstat[MV_NR_FSTAT]; /* owner-written; summed by stats */
#endif
};

/* The empty tcache every thread starts with: all its current slabs are
 * mv_slab_empty, so the first allocation takes the slow path, which makes
 * a real one. */
extern struct mv_tcache mv_tcache_empty;

/* count a fast-path event (MV_STAT builds only; mv_tcache_empty is shared
 * and read-only, so it counts nothing) */
#if MV_STAT
#define mv_fstat(tc, item)                                           \
	do {                                                         \
		if ((tc) != &mv_tcache_empty)                        \
			mv_owner_add(&(tc)->fstat[MV_FS_##item], 1); \
	} while (0)
#else
#define mv_fstat(tc, item) ((void)0)
#endif

/* The calling thread's tcache for the default arena (initial-exec TLS). */
extern __thread struct mv_tcache *mv_tc_default __attribute__((tls_model("initial-exec")));

/* The calling thread is past its key destructor (see tcache.c): it has no
 * cache and never makes one again. */
extern __thread bool mv_thread_dead __attribute__((tls_model("initial-exec")));

/* The calling thread's tcache for h, created on first use; NULL with errno
 * ENOMEM if it cannot be made, and in a dead thread. */
struct mv_tcache *mv_tcache_get_slow(struct mv_heap *h);
/* The calling thread's tcache for a if it has one; never makes one (the
 * free paths, which need none). */
struct mv_tcache *mv_tcache_peek(struct mv_heap *h);
/* A cache for one call of a thread that may not keep one (a dead thread),
 * on the arena's list like any other; the caller tears it down with
 * mv_tcache_destroy before returning. NULL with errno ENOMEM. */
struct mv_tcache *mv_tcache_transient(struct mv_heap *h);

/* Give everything back; the tcache is then off the arena's list and
 * freed. Called at thread exit and for eviction. */
void mv_tcache_destroy(struct mv_heap *h, struct mv_tcache *tc);
/* In a fork child, a cache of a thread that does not exist there: take
 * back its page lists and counters, unlink it, leave its slabs alone
 * (see fork.c). Caller holds threads_lock. */
void mv_tcache_retire_orphan(struct mv_heap *h, struct mv_tcache *tc);
/* Give back what can be given without tearing down (compaction's drain
 * of the calling thread, before stats and compaction). */
void mv_tcache_flush(struct mv_heap *h, struct mv_tcache *tc);
/* For reclaim, on the calling thread's own cache: its buffered remote
 * frees, its deferred frees past their grace period now, its frozen
 * movable slabs and its empty raw slabs back; its page lists stay. */
void mv_tcache_release_now(struct mv_heap *h, struct mv_tcache *tc);
/* Answer a reclaimer's request (the arena's flush_gen reached gen): give
 * back all mv_tcache_flush does, with the pending frees past their grace
 * period now, then record gen (release) for the reclaimer to see. */
void mv_tcache_flush_asked(struct mv_heap *h, struct mv_tcache *tc, uint32_t gen);
/* Queue a movable slot for freeing after a grace period. */
void mv_tcache_defer_slot(struct mv_heap *h, struct mv_tcache *tc, void *slot);
/* Send the pending batch on its way now (to call_rcu when readers exist). */
void mv_tcache_flush_pending(struct mv_heap *h, struct mv_tcache *tc);
/* Free the pending batch before returning, waiting for readers if any. */
void mv_tcache_flush_pending_now(struct mv_heap *h, struct mv_tcache *tc);
/*
 * Grace-period batches go back to the thread that deferred them. The
 * call_rcu worker pushes a batch whose grace period ended onto its owner's
 * sink (one CAS, where it used to free the slots itself, taking the bin
 * locks the owner's halloc takes: 18% of a hfree+halloc step went to
 * those locks' contention), and the owner frees the slots on its own slow
 * paths, most onto slabs it owns, and reuses the batch. A sink outlives
 * its cache while batches are in flight (refs); once the owner is gone
 * its stack reads MV_SINK_CLOSED and the worker frees the slots instead.
 */
struct mv_rcu_sink {
	_Atomic(struct mv_rcu_batch *) ready; /* Treiber stack, or MV_SINK_CLOSED */
	_Atomic uint32_t refs;                /* the cache's, and one per batch in flight */
};
#define MV_SINK_CLOSED ((struct mv_rcu_batch *)(uintptr_t)1)

/* Free the slots of the batches back from their grace period (the owner's
 * slow paths; one load when there are none). */
void mv_tcache_recycle_slow(struct mv_heap *h, struct mv_tcache *tc);
static inline void mv_tcache_recycle(struct mv_heap *h, struct mv_tcache *tc)
{
	struct mv_rcu_sink *k = tc->sink;
	if (unlikely(k && atomic_load_explicit(&k->ready, memory_order_relaxed)))
		mv_tcache_recycle_slow(h, tc);
}
/* Free the slots of every cache's batches back (after an rcu_barrier, so
 * that a reclaimer gets what the grace periods let through). */
void mv_heap_recycle_all(struct mv_heap *h);

/* update a tcache's current raw slab for a class (and its direct entries) */
void mv_tcache_set_raw_cur(struct mv_tcache *tc, unsigned cls, struct mv_slab *s);

/* does tc belong to the calling thread? (fork's child handler) */
bool mv_tcache_is_mine(const struct mv_tcache *tc);

/* per-thread teardown of all of this thread's tcaches (key destructor) */
void mv_thread_exit(void *unused);

/* The calling thread's tcache for h (created on first use). */
extern __thread struct mv_tls_last {
	struct mv_heap *h;
	uint64_t epoch;
	struct mv_tcache *tc;
} mv_tls_last __attribute__((tls_model("initial-exec")));

static inline struct mv_tcache *mv_tcache_of(struct mv_heap *h)
{
	if (likely(mv_tls_last.h == h && mv_tls_last.epoch == h->epoch))
		return mv_tls_last.tc;
	return mv_tcache_get_slow(h);
}

/* A reclaimer asked every thread to flush its cache (flush_gen): the
 * owner does so here, on a slow path, the only place it may. */
static inline void mv_tcache_answer_flush(struct mv_heap *h, struct mv_tcache *tc)
{
	uint32_t gen = atomic_load_explicit(&h->flush_gen, memory_order_relaxed);
	if (unlikely(gen != atomic_load_explicit(&tc->flush_seen, memory_order_relaxed)))
		mv_tcache_flush_asked(h, tc, gen);
}

/* Decay of what threads own (kcompactd, every decay_ms): bump decay_gen,
 * and point the malloc fast path's direct entries of every cache whose
 * raw slabs hold more than min_surplus bytes beyond its live data at
 * mv_slab_empty, so that its next small malloc takes the slow path, which
 * answers (mv_tcache_answer_decay) and puts them back. The owner alone may
 * touch its slabs; a thread that never allocates again keeps them until
 * it flushes (mova_thread_flush, malloc_trim) or exits. */
void mv_heap_ask_decay(struct mv_heap *h, size_t min_surplus);
/* bytes of raw slabs tc owns beyond its live data (racy, for pacing) */
size_t mv_tcache_raw_surplus(const struct mv_tcache *tc);
void mv_tcache_decay(struct mv_heap *h, struct mv_tcache *tc, uint32_t gen);
static inline void mv_tcache_answer_decay(struct mv_heap *h, struct mv_tcache *tc)
{
	uint32_t gen = atomic_load_explicit(&h->decay_gen, memory_order_relaxed);
	if (unlikely(gen != tc->decay_seen))
		mv_tcache_decay(h, tc, gen);
}

/* the page lists of every thread that has not used them since the last
 * call back to the zone (kcompactd, every decay_ms: the kernel's
 * vmstat_update draining idle CPUs' lists) */
void mv_heap_decay_pcp(struct mv_heap *h);
/* every live thread's page lists back to the zone (drain_all_pages) */
void mv_heap_drain_all_pcp(struct mv_heap *h);

#endif
