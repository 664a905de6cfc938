/* SPDX-License-Identifier: MIT */
/* reclaim.c: see reclaim.h. The kernel functions each part follows are
 * named where they start. */
#include "reclaim.h"

#include <errno.h>
#include <limits.h>

#include "arena.h"
#include "pack.h"
#include "os.h"
#include "rcu.h"

/* what the calling thread is doing: a reclaimer's nested allocations do
 * not reclaim (PF_MEMALLOC), and a callback may not unregister itself */
static __thread struct {
	int in_reclaim;
	struct mova_shrinker *running;
} self __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------ the budget */

/* metadata outside the zone, counted against the budget as stats count it */
static size_t extra_pages(void *arg)
{
	struct mova_arena *a = arg;
	size_t bytes = mv_zone_desc_resident_bytes(&a->heap.zone) +
		       mv_zone_bitmaps_resident_bytes(&a->heap.zone) +
		       mv_htable_resident_bytes(&a->heap.htab) +
		       mv_relaxed_load(&a->heap.meta.mapped_bytes) +
		       mv_align_up(sizeof *a, MV_PAGE_SIZE);
	return bytes >> MV_PAGE_SHIFT;
}

long mv_budget_room(const struct mova_arena *a)
{
	size_t lim = mv_relaxed_load(&a->heap.zone.limit_pages);
	if (!lim)
		return LONG_MAX;
	return (long)lim - (long)mv_zone_charged_pages(&a->heap.zone);
}

void mv_reclaim_init(struct mova_arena *a)
{
	struct mv_reclaim *r = &a->reclaim;
	mv_mutex_init(&r->lock, MV_RANK_SHRINKERS);
	r->next_id = 1;
	a->heap.zone.extra_arg = a;
	a->heap.zone.extra_pages = extra_pages;
	mv_relaxed_store(&a->heap.zone.limit_pages, a->cfg.limit_bytes >> MV_PAGE_SHIFT);
}

void mv_reclaim_destroy(struct mova_arena *a)
{
	struct mv_reclaim *r = &a->reclaim;
	for (struct mova_shrinker *s = r->head, *next; s; s = next) {
		next = s->next;
		mv_meta_free(&a->heap.meta, s, sizeof *s);
	}
	r->head = r->tail = NULL;
	mv_mutex_destroy(&r->lock);
}

/* ------------------------------------------------------------ shrinkers */

mova_shrinker *mova_shrinker_register(mova_arena *a, mova_count_objects_fn count,
				      mova_scan_objects_fn scan, void *priv, unsigned seeks)
{
	if (!a || !count || !scan) {
		errno = EINVAL;
		return NULL;
	}
	struct mova_shrinker *s = mv_meta_alloc(&a->heap.meta, sizeof *s);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->count = count;
	s->scan = scan;
	s->priv = priv;
	s->seeks = seeks;
	atomic_init(&s->nr_deferred, 0);
	atomic_init(&s->refs, 0);
	s->dead = false;
	struct mv_reclaim *r = &a->reclaim;
	mv_lock(&r->lock);
	s->id = r->next_id++;
	s->next = NULL;
	s->prev = r->tail;
	if (r->tail)
		r->tail->next = s;
	else
		r->head = s;
	r->tail = s;
	mv_unlock(&r->lock);
	return s;
}

int mova_shrinker_unregister(mova_arena *a, mova_shrinker *s)
{
	if (!a || !s)
		return EINVAL;
	if (self.running == s)
		return EDEADLK;
	struct mv_reclaim *r = &a->reclaim;
	mv_lock(&r->lock);
	struct mova_shrinker *t = r->head;
	while (t && t != s) /* only pointers compared: a stranger is refused, never followed */
		t = t->next;
	if (!t) {
		mv_unlock(&r->lock);
		return EINVAL;
	}
	s->dead = true;
	if (s->prev)
		s->prev->next = s->next;
	else
		r->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		r->tail = s->prev;
	/* wait for the walks calling it (shrinker_free's wait_for_completion) */
	while (atomic_load(&s->refs)) {
		uint32_t seq = atomic_load(&r->put_seq);
		mv_unlock(&r->lock);
		if (atomic_load(&s->refs))
			mv_os_futex_wait(&r->put_seq, seq, 1000000);
		mv_lock(&r->lock);
	}
	mv_unlock(&r->lock);
	mv_meta_free(&a->heap.meta, s, sizeof *s);
	return 0;
}

/* do_shrink_slab: returns the objects freed; counts what was scanned */
static size_t do_shrink_slab(struct mova_arena *a, struct mova_shrinker *s, int priority)
{
	self.running = s;
	size_t freeable = s->count(a, s->priv);
	if (freeable == 0 || freeable == MOVA_SHRINK_EMPTY) {
		self.running = NULL;
		return 0;
	}
	/* the work left over by earlier passes, taken over by this one */
	size_t nr = atomic_exchange(&s->nr_deferred, 0);
	size_t delta = s->seeks ? (freeable >> priority) * 4 / s->seeks : freeable / 2;
	size_t total_scan = (nr >> priority) + delta;
	if (total_scan > 2 * freeable)
		total_scan = 2 * freeable;
	size_t freed = 0, scanned = 0;
	while (total_scan >= MV_SHRINK_BATCH || total_scan >= freeable) {
		mova_shrink_control sc;
		sc.nr_to_scan = MV_MIN((size_t)MV_SHRINK_BATCH, total_scan);
		sc.nr_scanned = sc.nr_to_scan;
		size_t ret = s->scan(a, &sc, s->priv);
		if (ret == MOVA_SHRINK_STOP)
			break;
		freed += ret;
		size_t done = MV_MIN(sc.nr_scanned, total_scan);
		if (!done)
			break; /* no progress to count: do not spin */
		mv_count(&a->heap.vm, MV_VM_slabs_scanned, done);
		total_scan -= done;
		scanned += done;
	}
	self.running = NULL;
	/* what was not done is deferred to the next pass, at most 2x freeable */
	size_t next = (nr > scanned ? nr - scanned : 0) + total_scan;
	if (next > 2 * freeable)
		next = 2 * freeable;
	if (next)
		atomic_fetch_add(&s->nr_deferred, next);
	mv_count(&a->heap.vm, MV_VM_shrink_reclaimed, freed);
	return freed;
}

/* shrink_slab: every live shrinker once, in registration order. Each one
 * is referenced under the lock and called without it; a walk holds a
 * reference only on the shrinker it is calling (shrinker_try_get and
 * shrinker_put around do_shrink_slab), so that a callback may unregister
 * any other shrinker without waiting for this very walk. */
static size_t shrink_slab(struct mova_arena *a, int priority)
{
	struct mv_reclaim *r = &a->reclaim;
	uint64_t after = 0;
	size_t freed = 0;
	for (;;) {
		struct mova_shrinker *s;
		mv_lock(&r->lock);
		for (s = r->head; s && (s->id <= after || s->dead); s = s->next)
			;
		if (s)
			atomic_fetch_add(&s->refs, 1);
		mv_unlock(&r->lock);
		if (!s)
			break;
		freed += do_shrink_slab(a, s, priority);
		after = s->id;
		mv_lock(&r->lock);
		bool wake = atomic_fetch_sub(&s->refs, 1) == 1 && s->dead;
		if (wake)
			atomic_fetch_add(&r->put_seq, 1);
		mv_unlock(&r->lock);
		if (wake)
			mv_os_futex_wake(&r->put_seq, INT32_MAX);
	}
	return freed;
}

/* ------------------------------------------------------------ reclaim */

/* Make what was freed count: the freeing thread's own deferred frees
 * (after a grace period it waits for itself, microseconds), with others'
 * batches (an rcu_barrier: ~10 ms, so only when asked and some are in
 * flight), empty slabs to the page allocator, sparse slabs packed until a
 * pass empties nothing (each pass uses a source slab once, so one pass
 * leaves work), page lists drained, and free pages back to the OS. */
static void settle(struct mova_arena *a, struct mv_tcache *tc, bool pack, bool barrier)
{
	bool may_wait = !(mv_rcu_readers_ever() && mv_rcu_in_reader());
	if (tc && !tc->dead)
		mv_tcache_release_now(&a->heap, tc);
	if (barrier && may_wait && mv_rcu_readers_ever() && mv_rcu_batches_inflight())
		mv_rcu_barrier();
	/* batches past their grace period wait for their owners: take them */
	mv_heap_recycle_all(&a->heap);
	mv_bins_trim(&a->heap);
	if (pack && may_wait)
		for (int pass = 0; pass < 8 && mv_compact_pack(a, MIGRATE_SYNC_LIGHT); pass++)
			;
	mv_heap_drain_all_pcp(&a->heap);
	mv_zone_return_free(&a->heap.zone, 0, 0);
}

/* drain_all_pages, for what only its owner may touch: another thread's
 * current slabs (and the frees other threads pushed onto them), its
 * pending frees, its kept slabs. The kernel sends each CPU work to do;
 * a thread cannot be interrupted, so each is asked (flush_gen) and
 * answers on its next slow path (mv_tcache_answer_flush), and this waits
 * a bounded time: until the request fits, every other cache has
 * answered, or MV_FLUSH_WAIT_NS passed. A thread that sleeps holding
 * its cache costs that wait once per failing reclaim, not a failure of
 * its own. No lock held. */
#define MV_FLUSH_WAIT_NS 20000000ull
#define MV_FLUSH_POLL_NS 250000l

static bool others_answered(struct mova_arena *a, struct mv_tcache *tc, uint32_t gen)
{
	bool all = true;
	mv_lock(&a->heap.threads_lock);
	for (struct mv_tcache *t = a->heap.tcaches; t && all; t = t->tnext)
		if (t != tc &&
		    (int32_t)(atomic_load_explicit(&t->flush_seen, memory_order_acquire) - gen) < 0)
			all = false;
	mv_unlock(&a->heap.threads_lock);
	return all;
}

static bool flush_others(struct mova_arena *a, struct mv_tcache *tc, long want)
{
	uint32_t gen = atomic_fetch_add(&a->heap.flush_gen, 1) + 1;
	mv_count(&a->heap.vm, MV_VM_flush_requests, 1);
	uint64_t t0 = mv_os_now_ns();
	for (;;) {
		bool all = others_answered(a, tc, gen);
		/* settle ourselves, and so answer any request made meanwhile (two
		 * reclaimers must not wait for each other) */
		uint32_t now = atomic_load(&a->heap.flush_gen);
		settle(a, tc, all, all);
		if (tc && !tc->dead)
			atomic_store_explicit(&tc->flush_seen, now, memory_order_release);
		if (mv_budget_room(a) >= want || all)
			break;
		if (mv_os_now_ns() - t0 >= MV_FLUSH_WAIT_NS) {
			settle(a, tc, true, true);
			break;
		}
		struct timespec ts = {0, MV_FLUSH_POLL_NS};
		nanosleep(&ts, NULL);
	}
	return mv_budget_room(a) >= want;
}

/* the room to leave once reclaim runs, so that allocations do not each
 * reclaim: a few page-list refills, or 1/16 of the budget (the gap
 * between the kernel's low and high watermarks, in spirit) */
static long reclaim_goal(const struct mova_arena *a, size_t want)
{
	size_t lim = mv_relaxed_load(&a->heap.zone.limit_pages);
	return (long)(want + MV_MAX((size_t)(4 * MV_PCP_BATCH), lim / 16));
}

/* shrink_node's loop over priorities: shrink until the charged pages are
 * at most target_charged, or, drop_all, until nothing more comes free */
static size_t shrink_until(struct mova_arena *a, struct mv_tcache *tc, size_t target_charged,
			   bool drop_all)
{
	size_t freed = 0;
	self.in_reclaim++;
	if (tc)
		tc->sync_frees++;
	for (int prio = MV_DEF_PRIORITY; prio >= 0; prio--) {
		if (mv_zone_charged_pages(&a->heap.zone) <= target_charged && !drop_all)
			break;
		size_t f = shrink_slab(a, prio);
		freed += f;
		if (f)
			settle(a, tc, true, false);
		/* other threads' deferred frees count too, but waiting for them
		 * is dear: once, before the scan gets aggressive */
		if (prio == MV_DEF_PRIORITY / 2 && mv_rcu_batches_inflight())
			settle(a, tc, true, true);
	}
	/* drop_slab: at the lowest priority until a pass frees (almost) nothing */
	while (drop_all) {
		size_t f = shrink_slab(a, 0);
		freed += f;
		settle(a, tc, true, true);
		if (f <= 10)
			break;
	}
	if (tc)
		tc->sync_frees--;
	self.in_reclaim--;
	return freed;
}

bool mv_reclaim_for_budget(struct mova_arena *a, struct mv_tcache *tc)
{
	size_t lim = mv_relaxed_load(&a->heap.zone.limit_pages);
	if (!lim || self.in_reclaim)
		return false;
	size_t want = atomic_exchange(&a->heap.zone.limit_want, 0);
	if (!want)
		want = 1;
	mv_count(&a->heap.vm, MV_VM_allocstall, 1);
	/* first what is held without need: no shrinker involved */
	settle(a, tc, false, false);
	long goal = reclaim_goal(a, want);
	if (mv_budget_room(a) >= goal)
		return true;
	size_t target = lim > (size_t)goal ? lim - (size_t)goal : 0;
	shrink_until(a, tc, target, false);
	if (mv_budget_room(a) < (long)want && mv_rcu_batches_inflight()) {
		self.in_reclaim++;
		settle(a, tc, true, true); /* last resort: others' deferred frees */
		self.in_reclaim--;
	}
	if (mv_budget_room(a) < (long)want) {
		/* what is left is in other threads' caches: ask them for it */
		self.in_reclaim++;
		flush_others(a, tc, (long)want);
		self.in_reclaim--;
	}
	return mv_budget_room(a) >= (long)want;
}

int mova_shrink(mova_arena *a, size_t bytes, size_t *freed)
{
	if (freed)
		*freed = 0;
	if (!a)
		return EINVAL;
	if (mv_rcu_readers_ever() && mv_rcu_in_reader())
		return EDEADLK;
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	settle(a, tc, false, true);
	size_t before = mv_zone_charged_pages(&a->heap.zone);
	size_t pages = bytes == SIZE_MAX ? SIZE_MAX : (bytes + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT;
	size_t target = pages >= before ? 0 : before - pages;
	size_t f = shrink_until(a, tc, target, bytes == SIZE_MAX);
	if (freed)
		*freed = f;
	if (bytes == SIZE_MAX)
		return 0;
	return mv_zone_charged_pages(&a->heap.zone) <= target ? 0 : EAGAIN;
}

int mova_set_limit(mova_arena *a, size_t limit_bytes)
{
	if (!a)
		return EINVAL;
	size_t pb = MV_PAGE_SIZE << a->heap.zone.pageblock_order;
	if (limit_bytes && limit_bytes < 2 * pb)
		return EINVAL;
	mv_relaxed_store(&a->heap.zone.limit_pages, limit_bytes >> MV_PAGE_SHIFT);
	if (!limit_bytes || mv_budget_room(a) >= 0)
		return 0;
	size_t charged = mv_zone_charged_pages(&a->heap.zone);
	size_t over = charged - (limit_bytes >> MV_PAGE_SHIFT);
	int err = mova_shrink(a, over << MV_PAGE_SHIFT, NULL);
	return err == EDEADLK ? EDEADLK : (mv_budget_room(a) >= 0 ? 0 : EAGAIN);
}
