/* SPDX-License-Identifier: MIT */
/*
 * kcompactd.c: the background thread (see kcompactd.h), after
 * mm/compaction.c's kcompactd(): wait_event_freezable_timeout on
 * kcompactd_work_requested(), demand work at kcompactd_max_order
 * (kcompactd_do_work), proactive work when the fragmentation score passes
 * wmark_high, with back-off when a pass gains nothing. Every pass also
 * gives free pageblocks back to the OS past the retained amount.
 */
#define _GNU_SOURCE
#include "kcompactd.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

#include "compaction.h"
#include "os.h"

unsigned mv_fragmentation_score_wmark(unsigned proactiveness, bool low)
{
	unsigned wmark_low = 100 - proactiveness;
	if (wmark_low < 5)
		wmark_low = 5;
	return low ? wmark_low : MV_MIN(wmark_low + 10, 100u);
}

void mova_kcompactd_wakeup(mova_arena *a, int order)
{
	if (!a || order <= 0)
		return;
	struct mv_kcompactd *k = &a->kcompactd;
	if (!k->running)
		return;
	pthread_mutex_lock(&k->lock);
	if (order > k->max_order)
		k->max_order = order;
	if (k->sleeping)
		pthread_cond_signal(&k->wait);
	pthread_mutex_unlock(&k->lock);
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
	uint64_t sleep_ns = want - wall_ns;
	struct mv_kcompactd *k = &a->kcompactd;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t until = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + sleep_ns;
	ts.tv_sec = (time_t)(until / 1000000000u);
	ts.tv_nsec = (long)(until % 1000000000u);
	pthread_mutex_lock(&k->lock);
	while (!k->stop && pthread_cond_timedwait(&k->wait, &k->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&k->lock);
}

static void *kcompactd(void *arg)
{
	struct mova_arena *a = arg;
	struct mv_kcompactd *k = &a->kcompactd;
	uint64_t interval_ns = (uint64_t)a->cfg.kcompactd_interval_ms * 1000000u;
	for (;;) {
		pthread_mutex_lock(&k->lock);
		if (!k->stop && !k->max_order && !k->proactive_trigger) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t until =
			    (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + interval_ns;
			ts.tv_sec = (time_t)(until / 1000000000u);
			ts.tv_nsec = (long)(until % 1000000000u);
			k->sleeping = true;
			pthread_cond_timedwait(&k->wait, &k->lock, &ts);
			k->sleeping = false;
		}
		bool stop = k->stop;
		int order = k->max_order;
		k->max_order = 0;
		k->proactive_trigger = false;
		pthread_mutex_unlock(&k->lock);
		if (stop)
			break;
		uint64_t c0 = mv_os_thread_cpu_ns(), t0 = mv_os_now_ns();
		if (order > 0) {
			mv_kcompactd_do_work(a, order);
		} else {
			/* the timeout: proactive compaction (kcompactd's else branch).
			 * A pass that tried and gained nothing backs off for
			 * interval << COMPACT_MAX_DEFER_SHIFT, as the kernel's does,
			 * unless free memory changed by a sixteenth of the arena since:
			 * the kernel's zone is fixed, an arena's free memory is not. */
			size_t free_pages = mv_relaxed_load(&a->zone.nr_free_pages);
			size_t populated = mv_relaxed_load(&a->zone.populated_pfn);
			size_t delta = free_pages > k->backoff_free_pages
					   ? free_pages - k->backoff_free_pages
					   : k->backoff_free_pages - free_pages;
			if (t0 >= k->backoff_until_ns || delta > populated / 16) {
				int r = mv_kcompactd_proactive(a);
				k->backoff_until_ns =
				    r == 0 ? t0 + (interval_ns << COMPACT_MAX_DEFER_SHIFT) : 0;
				k->backoff_free_pages = mv_relaxed_load(&a->zone.nr_free_pages);
			}
		}
		mv_kcompactd_give_back(a);
		uint64_t cpu = mv_os_thread_cpu_ns() - c0, wall = mv_os_now_ns() - t0;
		k->cpu_ns_used += cpu;
		keep_budget(a, cpu, wall);
	}
	return NULL;
}

int mv_kcompactd_run(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wait, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k->lock, NULL);
	k->stop = false;
	/* the thread must not take signals meant for the program */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&k->thread, NULL, kcompactd, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	k->running = true;
#ifdef __GLIBC__
	pthread_setname_np(k->thread, "kcompactd");
#endif
	return 0;
}

void mv_kcompactd_stop(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	if (!k->running)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->wait);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	k->running = false;
}

void mv_kcompactd_forget(struct mova_arena *a)
{
	struct mv_kcompactd *k = &a->kcompactd;
	k->running = false;
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wait, &ca);
	pthread_condattr_destroy(&ca);
}
