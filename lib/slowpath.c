/* SPDX-License-Identifier: MIT */
/*
 * slowpath.c: the one slow path above the allocators (see slowpath.h),
 * after the kernel's __alloc_pages_slowpath and mimalloc's
 * _mi_malloc_generic. The slab, large and page allocators below never
 * reclaim, compact or wake the daemon: they fail upward with NULL, and
 * here it is decided to drain caches, run the budget's reclaim, pack
 * sparse slabs, retry once, wake kcompactd, or fail. It is also where the
 * arena's housekeeping is paced: every MV_HOUSEKEEP_EVERY slow paths of a
 * thread ask whether kcompactd has work (and start it if need be), with
 * no mova lock held.
 */
#include "slowpath.h"

#include "pack.h"
#include "kcompactd.h"
#include "large.h"

bool mv_slowpath_reclaim(struct mova_arena *a, struct mv_tcache *tc)
{
	/* refused by the budget: reclaim to fit it (reclaim.c) */
	if (mv_relaxed_load(&a->heap.zone.limit_want) || mv_budget_room(a) < MV_SWAP_CLUSTER_MAX)
		if (mv_relaxed_load(&a->heap.zone.limit_pages))
			return mv_reclaim_for_budget(a, tc);
	size_t before = mv_relaxed_load(&a->heap.zone.nr_free_pages);
	if (tc && !tc->dead)
		mv_tcache_release_now(&a->heap, tc);
	/* grace-period batches queued by every thread: wait for them to run
	 * (backpressure on deferred frees), unless we are a reader ourselves */
	if (mv_rcu_readers_ever() && !mv_rcu_in_reader())
		mv_rcu_barrier();
	mv_heap_recycle_all(&a->heap);
	mv_bins_trim(&a->heap);
	mv_heap_drain_all_pcp(&a->heap);
	/* and, as the kernel compacts before failing, pack sparse slabs */
	if (mv_relaxed_load(&a->heap.zone.nr_free_pages) == before && !mv_rcu_in_reader())
		mv_compact_pack(a, MIGRATE_SYNC_LIGHT);
	return mv_relaxed_load(&a->heap.zone.nr_free_pages) > before;
}

/* ------------------------------------------------------------ housekeeping */

__thread uint32_t mv_slowpath_ticks __attribute__((tls_model("initial-exec")));

/*
 * Does the arena have work for kcompactd? Asked on slow paths only (every
 * MV_HOUSEKEEP_EVERY of a thread's, and after large frees), never on a
 * fast path, and with no mova lock held, so the thread can be started from
 * here. Work is what the kernel wakes kcompactd for, and the give-back:
 *  - an allocation fell back (stole from another type) or failed: demand
 *    at wake_order;
 *  - free backed memory more than a pageblock above the floor
 *    (retain_bytes): it should decay back to the OS;
 *  - fragmentation worth a proactive pass (mv_kcompactd_proactive_wanted,
 *    the watermarks proactiveness sets), which needs two free pageblocks.
 * A process that allocates a little never gets the thread.
 */
/* the calling thread's slabs hold much more than its live data: their
 * idle pages should decay (mv_heap_ask_decay), which is kcompactd's work */
static bool owner_decay_wanted(struct mova_arena *a)
{
	struct mv_tcache *tc = mv_tcache_peek(&a->heap);
	return tc && !tc->dead && mv_tcache_raw_surplus(tc) > 4 * MV_OWNER_DECAY_MIN;
}

void mv_slowpath_housekeep(struct mova_arena *a)
{
	if (!a->cfg.kcompactd)
		return;
	if (atomic_load_explicit(&a->heap.zone.wake_order, memory_order_relaxed) > 0) {
		mv_slowpath_check_wakeup(a);
		return;
	}
	size_t free_backed = mv_relaxed_load(&a->heap.zone.free_backed_pages);
	bool give_back =
	    free_backed > mv_kcompactd_floor_pages(a) + a->heap.zone.pageblock_nr_pages;
	if (mv_kcompactd_started(a)) {
		if (give_back)
			mv_kcompactd_kick(a);
		return;
	}
	if (give_back || owner_decay_wanted(a) || mv_kcompactd_proactive_wanted(a))
		mv_kcompactd_ensure(a);
}

void mv_slowpath_thinning(struct mova_arena *a)
{
	static __thread uint32_t ticks __attribute__((tls_model("initial-exec")));
	if (!a->cfg.kcompactd || mv_kcompactd_started(a))
		return;
	if ((++ticks & (MV_HOUSEKEEP_EVERY - 1)) == 0 && owner_decay_wanted(a))
		mv_kcompactd_ensure(a);
}

void mv_slowpath_maybe_return(struct mova_arena *a)
{
	if (a->cfg.kcompactd) {
		/* kcompactd gives it back as it decays: not at once, in case it is
		 * about to be reused (a realloc loop freeing and taking megabytes) */
		mv_slowpath_housekeep(a);
		return;
	}
	/* no thread to decay it: hysteresis, past twice the retained amount */
	size_t keep = mv_kcompactd_retain_pageblocks(a);
	if (mv_relaxed_load(&a->heap.zone.free_pb_backed) > 2 * keep + 1)
		mv_zone_return_free(&a->heap.zone, keep, a->heap.zone.pageblock_order);
}

void mv_slowpath_check_wakeup(struct mova_arena *a)
{
	/* called when an allocation failed: was it the cut reservation? */
	if (unlikely(mv_relaxed_load(&a->heap.zone.map_errno)))
		mv_arena_full_warn(a);
	int order = atomic_load_explicit(&a->heap.zone.wake_order, memory_order_relaxed);
	if (order > 0) {
		atomic_store_explicit(&a->heap.zone.wake_order, 0, memory_order_relaxed);
		mova_kcompactd_wakeup(a, order);
	}
}

/* ------------------------------------------------------------ the slow paths */

/* an allocation failed for good: wake kcompactd, say why if we know */
static void failed(struct mova_arena *a)
{
	mv_slowpath_check_wakeup(a);
	errno = ENOMEM;
}

void *mv_slowpath_raw(struct mova_arena *a, struct mv_tcache *tc, unsigned cls)
{
	mv_tcache_answer_flush(&a->heap, tc);
	mv_tcache_answer_decay(&a->heap, tc);
	mv_slowpath_tick(a);
	void *p = mv_raw_alloc_slow(&a->heap, tc, cls);
	if (unlikely(!p) && mv_slowpath_reclaim(a, tc))
		p = mv_raw_alloc_slow(&a->heap, tc, cls);
	if (unlikely(!p))
		failed(a);
	return p;
}

void *mv_slowpath_mov(struct mova_arena *a, struct mv_tcache *tc, unsigned cls)
{
	mv_tcache_answer_flush(&a->heap, tc);
	mv_slowpath_tick(a);
	/* slots back from their grace period first: they may hold this class */
	mv_tcache_recycle(&a->heap, tc);
	void *p = mv_mov_alloc_slow(&a->heap, tc, cls);
	if (unlikely(!p)) {
		/* reclaim may have freed slots of this class (its grace period
		 * lets deferred frees through) even when it says a new slab
		 * still does not fit the budget: look again either way */
		mv_slowpath_reclaim(a, tc);
		p = mv_mov_alloc_slow(&a->heap, tc, cls);
	}
	if (unlikely(!p))
		failed(a);
	return p;
}

void *mv_slowpath_large(struct mova_arena *a, struct mv_tcache *tc, size_t size, size_t align,
			int mt, bool zero)
{
	if (tc && !tc->dead)
		mv_tcache_answer_flush(&a->heap, tc);
	mv_slowpath_tick(a);
	void *p = mv_large_alloc(&a->heap, tc, size, align, mt, zero);
	/* about to fail: give back what is held without need, and try once more */
	if (unlikely(!p) && size <= a->heap.zone.reserve_bytes && mv_slowpath_reclaim(a, tc))
		p = mv_large_alloc(&a->heap, tc, size, align, mt, zero);
	if (unlikely(!p))
		failed(a);
	return p;
}

void *mv_slowpath_large_realloc(struct mova_arena *a, struct mv_tcache *tc, void *p, size_t size)
{
	size_t nr = mv_large_pages(mv_zone_page_of(p));
	if (!tc->dead)
		mv_tcache_answer_flush(&a->heap, tc);
	mv_slowpath_tick(a);
	void *q = mv_large_realloc_move(&a->heap, tc, p, size);
	if (unlikely(!q) && size <= a->heap.zone.reserve_bytes && mv_slowpath_reclaim(a, tc))
		q = mv_large_realloc_move(&a->heap, tc, p, size);
	if (unlikely(!q))
		failed(a);
	else if (nr >= a->heap.zone.pageblock_nr_pages / 2)
		mv_slowpath_maybe_return(a); /* as a free of p would */
	return q;
}

void mv_slowpath_large_free(struct mova_arena *a, struct mv_tcache *tc, void *p)
{
	const struct mv_page *hd = mv_zone_page_of(p);
	size_t nr = mv_large_pages(hd);
	mv_large_free(&a->heap, tc, p);
	if (nr >= a->heap.zone.pageblock_nr_pages / 2)
		mv_slowpath_maybe_return(a);
}
