/* SPDX-License-Identifier: MIT */
/*
 * kcompactd.c: the background thread (see kcompactd.h), after
 * mm/compaction.c's kcompactd(): wait_event_freezable_timeout on
 * kcompactd_work_requested(), demand work at kcompactd_max_order
 * (kcompactd_do_work), proactive work when the fragmentation score passes
 * wmark_high, with back-off when a pass gains nothing. Between passes it
 * gives free memory back to the OS as it decays (decay_step). The work
 * itself runs compaction.c's compact_zone and pack.c's packing.
 *
 * The thread is started lazily, by mv_kcompactd_ensure, the first time an
 * arena has work for it (the kernel wakes kcompactd, it does not poll from
 * boot): a process that allocates little never has a second thread, so it
 * can still unshare(CLONE_NEWUSER) or change its credentials alone. The
 * start runs inside an allocation's slow path: pthread_create allocates
 * (the new thread's dtv), which comes back into malloc, so the state goes
 * OFF -> STARTING by one CAS, and whoever finds STARTING does nothing.
 */
#define _GNU_SOURCE
#include "kcompactd.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

#include "compaction.h"
#include "os.h"
#include "pack.h"

/* a failed start (EAGAIN under RLIMIT_NPROC, a sandbox without clone) is
 * tried again no sooner than this */
#define MV_KCD_RETRY_NS 1000000000ull
/* huge pages collapsed after a compaction pass, at most (mv_zone_thp_collapse) */
#define MV_KCD_COLLAPSE_MAX 2

static void init_sync(struct mv_kcompactd *k)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wait, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k->lock, NULL);
}

void mv_kcompactd_init(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	init_sync(k);
	atomic_store(&k->state, MV_KCD_OFF);
}

void mova_kcompactd_wakeup(mova_arena *a, int order)
{
	if (!a || order <= 0)
		return;
	/* a request is work: start the thread if it is not there yet */
	if (!mv_kcompactd_ensure(a))
		return;
	struct mv_kcompactd *k = &a->kcompactd;
	pthread_mutex_lock(&k->lock);
	if (order > k->max_order)
		k->max_order = order;
	if (k->sleeping)
		pthread_cond_signal(&k->wait);
	pthread_mutex_unlock(&k->lock);
}

void mv_kcompactd_kick(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	if (!atomic_load_explicit(&k->idle_sleep, memory_order_relaxed))
		return;
	pthread_mutex_lock(&k->lock);
	if (k->sleeping)
		pthread_cond_signal(&k->wait);
	pthread_mutex_unlock(&k->lock);
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	return ts;
}

/* Sleep so that the thread's CPU use stays within budget percent. */
static void keep_budget(struct mova_arena *a, uint64_t cpu_ns, uint64_t wall_ns)
{
	unsigned budget = a->cfg.kcompactd_cpu_budget;
	if (budget >= 100 || !cpu_ns)
		return;
	/* cpu / (wall + sleep) <= budget / 100 */
	uint64_t want = cpu_ns * 100 / budget;
	if (want <= wall_ns)
		return;
	struct mv_kcompactd *k = &a->kcompactd;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts = ns_ts(ts_ns(&ts) + want - wall_ns);
	pthread_mutex_lock(&k->lock);
	while (!k->stop && pthread_cond_timedwait(&k->wait, &k->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&k->lock);
}

/* ------------------------------------------------------------ decay */

size_t mv_kcompactd_floor_pages(const struct mova_arena *a)
{
	return mv_kcompactd_retain_pageblocks(a) << a->heap.zone.pageblock_order;
}

static uint64_t decay_slot_ns(const struct mova_arena *a)
{
	uint64_t ns = (uint64_t)a->cfg.decay_ms * 1000000u / MV_DECAY_SLOTS;
	return MV_MAX(ns, (uint64_t)10000000u); /* 10 ms at least */
}

/* smoothstep: the share of memory idle for s of the MV_DECAY_SLOTS slots
 * that has gone back (jemalloc's decay curve, h(t) = 3t^2 - 2t^3) */
static double decay_gone(unsigned s)
{
	double t = (double)s / MV_DECAY_SLOTS;
	return t >= 1 ? 1 : t * t * (3 - 2 * t);
}

/*
 * Give back free memory that nobody needed for a while, in the spirit of
 * jemalloc's dirty decay. Every slot (decay_ms / MV_DECAY_SLOTS) the zone
 * reports the lowest number of free backed pages it had during the slot:
 * pages above that low mark were reused, pages below it were idle the
 * whole slot. L(s), the minimum over the last s slots, is the memory idle
 * for s slots. Of the memory idle for exactly s slots a share goes back so
 * that, over its life, the share gone follows a smoothstep from 0 (just
 * freed) to 1 (idle for the whole of decay_ms). A busy arena's low mark
 * stays near zero, so what it is about to reuse never goes back; an idle
 * one settles at retain_bytes (its floor) within decay_ms. Returns true
 * while free memory above the floor remains (the next slot matters).
 */
static bool decay_step(struct mova_arena *a, uint64_t now)
{
	struct mv_kcompactd *k = &a->kcompactd;
	struct mv_zone *z = &a->heap.zone;
	size_t floor = mv_kcompactd_floor_pages(a);
	if (now - k->decay_last_ns < decay_slot_ns(a))
		return mv_relaxed_load(&z->free_backed_pages) > floor;
	k->decay_last_ns = now;
	size_t low = mv_zone_free_backed_low(z);
	for (unsigned i = MV_DECAY_SLOTS - 1; i > 0; i--)
		k->decay_low[i] = k->decay_low[i - 1];
	k->decay_low[0] = low;
	if (k->decay_n < MV_DECAY_SLOTS)
		k->decay_n++;
	size_t cur = mv_relaxed_load(&z->free_backed_pages);
	if (cur <= floor)
		return false;
	/* L(s) for s = 1..decay_n; memory idle longer than we have watched
	 * counts as idle for decay_n slots only */
	double give = 0;
	size_t prev = cur;
	size_t l[MV_DECAY_SLOTS + 1];
	for (unsigned s = 1; s <= k->decay_n; s++) {
		prev = MV_MIN(prev, k->decay_low[s - 1]);
		l[s] = prev;
	}
	for (unsigned s = 1; s <= k->decay_n; s++) {
		size_t bucket = l[s] - (s < k->decay_n ? l[s + 1] : 0);
		/* of what has been idle s slots, the share not gone at s - 1
		 * that should be gone at s */
		double before = decay_gone(s - 1), after = decay_gone(s);
		if (a->cfg.decay_ms == 0)
			after = 1;
		give += (double)bucket * (after - before) / (1 - before);
	}
	size_t want = (size_t)give;
	want = MV_MIN(want, cur - floor);
	/* a few pages are not worth the system calls, unless they are all
	 * that is left above the floor */
	if (want < 16 && want < cur - floor)
		return true;
	size_t gone = mv_zone_return_pages(z, want);
	/* what went back was idle in every slot that counted it */
	for (unsigned s = 0; s < k->decay_n; s++)
		k->decay_low[s] = k->decay_low[s] > gone ? k->decay_low[s] - gone : 0;
	return mv_relaxed_load(&z->free_backed_pages) > floor;
}

/* ------------------------------------------------------------ the work */

/* kcompactd_do_work */
static void kcompactd_do_work(struct mova_arena *a, int order)
{
	mv_count(&a->heap.vm, MV_VM_compact_daemon_wake, 1);
	mv_lock(&a->compact.lock);
	bool skip = mv_compaction_deferred(a, order);
	mv_unlock(&a->compact.lock);
	if (skip || !mv_compaction_suitable(a, order))
		return;
	struct compact_control *cc = mv_cc_new(a);
	if (!cc)
		return;
	cc->order = order;
	cc->mode = MIGRATE_SYNC_LIGHT;
	mv_lock(&a->compact.lock);
	enum compact_result r = mv_compact_zone(cc);
	if (r == COMPACT_SUCCESS)
		mv_compaction_defer_reset(a, order, false);
	else if (r == COMPACT_COMPLETE || r == COMPACT_PARTIAL_SKIPPED)
		mv_defer_compaction(a, order);
	mv_unlock(&a->compact.lock);
	if (r == COMPACT_COMPLETE || r == COMPACT_PARTIAL_SKIPPED)
		mv_heap_drain_all_pcp(&a->heap);
	mv_compact_count_scans(cc, true);
	mv_cc_free(cc);
}

/* proactive compaction (should_proactive_compact_node, compact_node(pgdat, true)),
 * and mova's second proactive goal: packing sparse movable slabs when more
 * than max(5, (100 - proactiveness) / 4) percent of movable slab memory is
 * empty slots. */
static int kcompactd_proactive(struct mova_arena *a)
{
	unsigned p = a->cfg.proactiveness;
	if (!p)
		return -1;
	bool tried = false, gained = false;
	unsigned pack_wmark = MV_MAX(5u, (100 - p) / 4);
	if (mv_pack_waste_percent(a) > pack_wmark) {
		mv_count(&a->heap.vm, MV_VM_compact_daemon_wake, 1);
		tried = true;
		gained |= mv_compact_pack(a, MIGRATE_SYNC_LIGHT) > 0;
	}
	mv_lock(&a->heap.zone.lock);
	unsigned before = mv_fragmentation_score(&a->heap.zone);
	mv_unlock(&a->heap.zone.lock);
	/* an arena grows on demand: a score over a sliver of free memory means
	 * nothing, so proactive compaction wants two pageblocks free */
	if (mv_relaxed_load(&a->heap.zone.nr_free_pages) >= 2 * a->heap.zone.pageblock_nr_pages &&
	    before > mv_fragmentation_score_wmark(p, false)) {
		mv_count(&a->heap.vm, MV_VM_compact_daemon_wake, 1);
		tried = true;
		struct compact_control *cc = mv_cc_new(a);
		if (cc) {
			mv_compact_prepare(cc, -1, COMPACT_PRIO_SYNC_LIGHT);
			cc->proactive_compaction = true;
			cc->whole_zone = true;
			cc->ignore_skip_hint = true;
			mv_lock(&a->compact.lock);
			mv_compact_zone(cc);
			mv_unlock(&a->compact.lock);
			mv_compact_count_scans(cc, true);
			mv_cc_free(cc);
		}
		mv_lock(&a->heap.zone.lock);
		unsigned after = mv_fragmentation_score(&a->heap.zone);
		mv_unlock(&a->heap.zone.lock);
		gained |= after < before;
	}
	return !tried ? -1 : gained;
}

/* Would kcompactd_proactive find work? (the same two goals, read
 * without doing anything: the arena's housekeeping asks it before it
 * starts the thread) */
bool mv_kcompactd_proactive_wanted(struct mova_arena *a)
{
	unsigned p = a->cfg.proactiveness;
	if (!p)
		return false;
	/* only movable and reclaimable objects move: an arena of raw memory
	 * alone (every program under the preload library) has nothing a pass
	 * could do, however scattered its free pages */
	if (!mv_relaxed_load(&a->heap.zone.nr_pageblocks_mt[MIGRATE_MOVABLE]) &&
	    !mv_relaxed_load(&a->heap.zone.nr_pageblocks_mt[MIGRATE_RECLAIMABLE]))
		return false;
	if (mv_pack_waste_percent(a) > MV_MAX(5u, (100 - p) / 4))
		return true;
	if (mv_relaxed_load(&a->heap.zone.nr_free_pages) < 2 * a->heap.zone.pageblock_nr_pages)
		return false;
	mv_lock(&a->heap.zone.lock);
	unsigned score = mv_fragmentation_score(&a->heap.zone);
	mv_unlock(&a->heap.zone.lock);
	return score > mv_fragmentation_score_wmark(p, false);
}

/* ------------------------------------------------------------ the thread */

static void *kcompactd(void *arg)
{
	struct mova_arena *a = arg;
	struct mv_kcompactd *k = &a->kcompactd;
#ifdef __GLIBC__
	/* named by itself: prctl, no file descriptor opened inside malloc */
	pthread_setname_np(pthread_self(), "kcompactd");
#endif
	uint64_t interval_ns = (uint64_t)a->cfg.kcompactd_interval_ms * 1000000u;
	uint64_t next_proactive = mv_os_now_ns() + interval_ns;
	bool decaying = true;
	k->decay_last_ns = mv_os_now_ns();
	(void)mv_zone_free_backed_low(&a->heap.zone); /* the first slot starts now */
	for (;;) {
		pthread_mutex_lock(&k->lock);
		if (!k->stop && !k->max_order && !k->proactive_trigger) {
			uint64_t until = next_proactive;
			if (decaying)
				until = MV_MIN(until, k->decay_last_ns + decay_slot_ns(a));
			struct timespec ts = ns_ts(until);
			k->sleeping = true;
			atomic_store_explicit(&k->idle_sleep, !decaying, memory_order_relaxed);
			pthread_cond_timedwait(&k->wait, &k->lock, &ts);
			atomic_store_explicit(&k->idle_sleep, false, memory_order_relaxed);
			k->sleeping = false;
		}
		bool stop = k->stop;
		int order = k->max_order;
		bool forced = k->proactive_trigger;
		k->max_order = 0;
		k->proactive_trigger = false;
		pthread_mutex_unlock(&k->lock);
		if (stop)
			break;
		uint64_t c0 = mv_os_thread_cpu_ns(), t0 = mv_os_now_ns();
		bool compacted = false;
		if (order > 0) {
			kcompactd_do_work(a, order);
			compacted = true;
		} else if (forced || t0 >= next_proactive) {
			next_proactive = t0 + interval_ns;
			/* the timeout: proactive compaction (kcompactd's else branch).
			 * A pass that tried and gained nothing backs off for
			 * interval << COMPACT_MAX_DEFER_SHIFT, as the kernel's does,
			 * unless free memory changed by a sixteenth of the arena since:
			 * the kernel's zone is fixed, an arena's free memory is not. */
			size_t free_pages = mv_relaxed_load(&a->heap.zone.nr_free_pages);
			size_t populated = mv_relaxed_load(&a->heap.zone.populated_pfn);
			size_t delta = free_pages > k->backoff_free_pages
					   ? free_pages - k->backoff_free_pages
					   : k->backoff_free_pages - free_pages;
			if (t0 >= k->backoff_until_ns || delta > populated / 16) {
				int r = kcompactd_proactive(a);
				compacted = true;
				k->backoff_until_ns =
				    r == 0 ? t0 + (interval_ns << COMPACT_MAX_DEFER_SHIFT) : 0;
				k->backoff_free_pages =
				    mv_relaxed_load(&a->heap.zone.nr_free_pages);
			}
			/* slabs nobody owns that emptied: to the buddy allocator */
			mv_bins_trim(&a->heap);
		}
		/* what threads own decays by their own hands, asked once every
		 * decay_ms (jemalloc's decay sees its slabs; ours are owned) */
		uint64_t now = mv_os_now_ns();
		if (now - k->owner_decay_ns >= (uint64_t)a->cfg.decay_ms * 1000000u) {
			k->owner_decay_ns = now;
			mv_heap_ask_decay(&a->heap, MV_OWNER_DECAY_MIN);
			mv_heap_decay_pcp(&a->heap);
		}
		/* pageblocks the pass filled get huge pages: two at most (a
		 * collapse copies 2 MiB), and the time counts in the budget */
		if (compacted)
			mv_zone_thp_collapse(&a->heap.zone, MV_KCD_COLLAPSE_MAX);
		decaying = decay_step(a, mv_os_now_ns());
		uint64_t cpu = mv_os_thread_cpu_ns() - c0, wall = mv_os_now_ns() - t0;
		k->cpu_ns_used += cpu;
		keep_budget(a, cpu, wall);
	}
	return NULL;
}

/* the caller moved state to STARTING */
static int kcompactd_start(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	k->stop = false;
	k->max_order = 0;
	k->decay_n = 0;
	/* the thread takes no signal meant for the program (os.c) */
	int err = mv_os_thread_create(&k->thread, kcompactd, a);
	if (err) {
		atomic_store(&k->retry_ns, mv_os_now_ns() + MV_KCD_RETRY_NS);
		atomic_store_explicit(&k->state, MV_KCD_FAILED, memory_order_release);
		return err;
	}
	atomic_store_explicit(&k->state, MV_KCD_RUNNING, memory_order_release);
	return 0;
}

bool mv_kcompactd_ensure(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	int st = atomic_load_explicit(&k->state, memory_order_acquire);
	if (likely(st == MV_KCD_RUNNING))
		return true;
	if (!a->cfg.kcompactd)
		return false;
	if (st == MV_KCD_FAILED && mv_os_now_ns() < atomic_load(&k->retry_ns))
		return false;
	if ((st != MV_KCD_OFF && st != MV_KCD_FAILED) ||
	    !atomic_compare_exchange_strong(&k->state, &st, MV_KCD_STARTING))
		return false; /* starting (maybe our own pthread_create's malloc), or stopping */
	int saved = errno;
	int err = kcompactd_start(a);
	errno = saved;
	return !err;
}

int mv_kcompactd_run(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	for (;;) {
		int st = atomic_load(&k->state);
		if (st == MV_KCD_RUNNING)
			return 0;
		if (st == MV_KCD_OFF || st == MV_KCD_FAILED) {
			if (atomic_compare_exchange_strong(&k->state, &st, MV_KCD_STARTING))
				return kcompactd_start(a);
			continue;
		}
		sched_yield(); /* another thread is starting or stopping it */
	}
}

bool mv_kcompactd_started(const struct mova_arena *a)
{
	return atomic_load_explicit(&a->kcompactd.state, memory_order_acquire) == MV_KCD_RUNNING;
}

void mv_kcompactd_stop(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	for (;;) {
		int st = atomic_load(&k->state);
		if (st == MV_KCD_STARTING || st == MV_KCD_STOPPING) {
			sched_yield();
			continue;
		}
		if (st != MV_KCD_RUNNING)
			return;
		if (atomic_compare_exchange_strong(&k->state, &st, MV_KCD_STOPPING))
			break;
	}
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->wait);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	k->stop = false;
	atomic_store(&k->state, MV_KCD_OFF);
}

void mv_kcompactd_forget(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	/* the child has no thread: the next work starts one (mv_kcompactd_ensure) */
	init_sync(k);
	k->stop = false;
	k->sleeping = false;
	k->max_order = 0;
	k->proactive_trigger = false;
	atomic_store(&k->idle_sleep, false);
	atomic_store(&k->retry_ns, 0);
	atomic_store(&k->state, MV_KCD_OFF);
}

size_t mv_kcompactd_retain_pageblocks(const struct mova_arena *a)
{
	if (a->cfg.retain_bytes)
		return a->cfg.retain_bytes >> (MV_PAGE_SHIFT + a->cfg.pageblock_order);
	size_t resident_pb =
	    mv_relaxed_load(&a->heap.zone.resident_pages) >> a->cfg.pageblock_order;
	return MV_MIN(MV_MAX(resident_pb / MV_RETAIN_DIV, (size_t)MV_RETAIN_MIN_PB),
		      (size_t)MV_RETAIN_MAX_PB);
}
