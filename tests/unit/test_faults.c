/* SPDX-License-Identifier: MIT */
/*
 * test_faults: mova under faults. A reservation too small for the load;
 * mmap, mprotect and madvise failures injected through the OS layer's
 * test-only hook (mv_os_fault_hook); kcompactd stopped and restarted
 * under load (fork while kcompactd runs is fork_kcompactd.c: Criterion's
 * runner does not survive a test that forks). Each time: allocation fails with
 * ENOMEM and nothing else, frees keep working, the zone's invariants hold
 * (mv_zone_verify), objects keep their contents, and the arena can be
 * compacted and used again once the fault is gone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef MV_CR_STANDALONE /* ThreadSanitizer builds: see ../common/cr_standalone.c */
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif

#include "arena.h"
#include "buddy.h"
#include "kcompactd.h"
#include "os.h"
#include "rcu.h"
#include "../common/pinned.h"

static mova_arena *small_arena(unsigned nr_pageblocks, int kcompactd)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.pageblock_order = 6;
	cfg.reserve_bytes = (size_t)nr_pageblocks << (6 + 12);
	cfg.kcompactd = kcompactd;
	cfg.max_handles = 1 << 16;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a, "arena of %u pageblocks: errno %d", nr_pageblocks, errno);
	return a;
}

static void consistent(mova_arena *a)
{
	const char *why = mv_zone_verify(&a->heap.zone);
	cr_assert(!why, "zone: %s", why);
}

/* --------------------------------------------------- a reservation too small */

Test(faults, reservation_too_small)
{
	mova_arena *a = small_arena(8, 0); /* 2 MiB */
	enum { MAX = 20000 };
	static mova_handle h[MAX];
	unsigned n = 0;
	for (; n < MAX; n++) {
		size_t size = 64 + (n * 131) % 3000;
		h[n] = mova_halloc(a, size);
		if (!h[n])
			break;
		pin_fill(a, h[n], (unsigned char)n);
	}
	cr_assert(n > 0 && n < MAX, "the arena never filled (%u objects)", n);
	cr_assert_eq(errno, ENOMEM);
	/* raw memory too: the default arena is not this one, so use large objects */
	cr_assert_eq(mova_halloc(a, (size_t)4 << 20), MOVA_NULL);
	cr_assert_eq(errno, ENOMEM);
	consistent(a);
	/* frees still work; every other object goes */
	for (unsigned i = 0; i < n; i += 2)
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	consistent(a);
	/* the arena can be compacted, and serves again */
	cr_assert_eq(mova_compact(a, -1), 0);
	consistent(a);
	for (unsigned i = 1; i < n; i += 2)
		pin_expect(a, h[i], (unsigned char)i, 1);
	for (unsigned i = 0; i < n; i += 2) {
		h[i] = mova_halloc(a, 200);
		cr_assert(h[i], "after freeing half, allocation %u failed", i);
		pin_fill(a, h[i], 0x5a);
	}
	for (unsigned i = 1; i < n; i += 2)
		pin_expect(a, h[i], (unsigned char)i, 1);
	mova_arena_destroy(a);
}

/* --------------------------------------------------- injected OS failures */

static _Atomic int fail_op = -1, fail_after, fail_count;

static int inject(enum mv_os_op op, size_t len)
{
	(void)len;
	if ((int)op != atomic_load(&fail_op))
		return 0;
	if (atomic_fetch_sub(&fail_after, 1) > 0)
		return 0;
	atomic_fetch_add(&fail_count, 1);
	return ENOMEM;
}

static void inject_on(enum mv_os_op op, int after)
{
	atomic_store(&fail_count, 0);
	atomic_store(&fail_after, after);
	atomic_store(&fail_op, (int)op);
	atomic_store(&mv_os_fault_hook, inject);
}

static void inject_off(void)
{
	atomic_store(&mv_os_fault_hook, (mv_os_fault_fn)NULL);
	atomic_store(&fail_op, -1);
}

Test(faults, mmap_fails_at_creation)
{
	for (int op = MV_OS_RESERVE; op <= MV_OS_MAP; op++) {
		if (op == MV_OS_COMMIT || op == MV_OS_DECOMMIT)
			continue;
		inject_on((enum mv_os_op)op, 0);
		errno = 0;
		mova_arena *a = mova_arena_create(NULL);
		inject_off();
		cr_assert(!a, "arena created although op %d failed", op);
		cr_assert_eq(errno, ENOMEM);
	}
	mova_arena *a = small_arena(16, 0);
	mova_handle h = mova_halloc(a, 100);
	cr_assert(h);
	mova_arena_destroy(a);
}

Test(faults, growth_fails)
{
	/* two sections' worth: the second must be mapped to grow past 64 MiB */
	mova_arena *a = small_arena(512, 0);
	mova_handle keep = mova_halloc(a, 1000);
	cr_assert(keep);
	pin_fill(a, keep, 7);
	/* every further section map fails: the arena cannot grow */
	inject_on(MV_OS_RESERVE, 0);
	unsigned failed = 0, got = 0;
	static mova_handle h[24000];
	for (unsigned i = 0; i < 24000; i++) {
		h[i] = mova_halloc(a, 4000);
		if (h[i])
			got++;
		else {
			cr_assert_eq(errno, ENOMEM);
			failed++;
		}
	}
	inject_off();
	cr_assert(failed > 0, "no allocation failed while the arena could not grow");
	cr_assert(got > 0, "the first section's memory was not used");
	cr_assert(atomic_load(&fail_count) > 0);
	consistent(a);
	pin_expect(a, keep, 7, 1);
	for (unsigned i = 0; i < 24000; i++)
		if (h[i])
			cr_assert_eq(mova_hfree(a, h[i]), 0);
	/* the fault is gone: growth works again, into a second section */
	for (unsigned i = 0; i < 20000; i++) {
		h[i] = mova_halloc(a, 4000);
		cr_assert(h[i], "allocation %u failed after the fault cleared", i);
	}
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_geq(st.section_add, 2, "sections mapped: %lu", (unsigned long)st.section_add);
	consistent(a);
	mova_arena_destroy(a);
}

Test(faults, give_back_fails)
{
	mova_arena *a = small_arena(64, 0);
	static mova_handle h[3000];
	for (unsigned i = 0; i < 3000; i++) {
		h[i] = mova_halloc(a, 1000 + i % 500);
		cr_assert(h[i]);
		pin_fill(a, h[i], (unsigned char)i);
	}
	for (unsigned i = 0; i < 3000; i++)
		if (i % 4)
			mova_hfree(a, h[i]);
	mova_stats before, after;
	mova_stats_get(a, &before);
	inject_on(MV_OS_DECOMMIT, 0);
	cr_assert_eq(mova_compact(a, -1), 0);
	inject_off();
	mova_stats_get(a, &after);
	cr_assert(atomic_load(&fail_count) > 0, "compaction never tried to give memory back");
	cr_assert_eq(after.pages_returned, before.pages_returned, "pages counted as returned");
	consistent(a);
	for (unsigned i = 0; i < 3000; i += 4)
		pin_expect(a, h[i], (unsigned char)i, 1);
	/* with the fault gone the memory goes back */
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, &after);
	cr_assert_gt(after.pages_returned, before.pages_returned);
	cr_assert_lt(after.resident_bytes, before.resident_bytes);
	consistent(a);
	mova_arena_destroy(a);
}

/* --------------------------------------------------- huge page advice refused */

/* madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE) failing (an older kernel's
 * EINVAL, vm.max_map_count's ENOMEM) only means no huge pages: the arena
 * works, nothing is counted as advised, and nothing is left half done. */
Test(faults, thp_advice_fails)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.thp = MOVA_THP_MADVISE;
	inject_on(MV_OS_ADVISE, 0);
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a);
	static mova_handle h[40000];
	for (unsigned i = 0; i < 40000; i++) {
		h[i] = mova_halloc(a, i % 100 ? 600 : 3 << 20); /* 24 MiB + 120 MiB */
		cr_assert(h[i], "allocation %u failed", i);
		if (i % 100 == 0)
			pin_fill(a, h[i], (unsigned char)i);
	}
	mova_stats st;
	mova_stats_get(a, &st);
	if (mv_os_thp_system() != MOVA_THP_NEVER)
		cr_assert(atomic_load(&fail_count) > 0, "no advice was tried");
	cr_assert_eq(st.thp_advised, 0);
	cr_assert_eq(st.thp_advised_pageblocks, 0);
	consistent(a);
	for (unsigned i = 0; i < 40000; i += 2)
		mova_hfree(a, h[i]);
	cr_assert_eq(mova_compact(a, -1), 0);
	inject_off();
	consistent(a);
	for (unsigned i = 1; i < 40000; i += 2)
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	/* with the fault gone, large runs are advised */
	if (mv_os_thp_system() != MOVA_THP_NEVER) {
		mova_handle big = mova_halloc(a, 8 << 20);
		cr_assert(big);
		mova_stats_get(a, &st);
		cr_assert_geq(st.thp_advised, 3);
		cr_assert_eq(mova_hfree(a, big), 0);
	}
	mova_arena_destroy(a);
}

/* Pageblocks packed full of movable objects that were never advised (the
 * arena's first ones, below the dense threshold) are collapsed into huge
 * pages after compaction (what kcompactd calls after a pass): each one
 * tried is advised and counted, done or failed, whatever the kernel says. */
Test(faults, thp_collapse_full_movable_pageblocks)
{
	if (mv_os_thp_system() == MOVA_THP_NEVER)
		return; /* no huge pages on this system: nothing to collapse */
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a);
	enum { N = 6000 }; /* 2 KiB each: 12 MiB, six pageblocks */
	static mova_handle h[N];
	for (unsigned i = 0; i < N; i++) {
		h[i] = mova_halloc(a, 2048);
		cr_assert(h[i]);
		pin_fill(a, h[i], (unsigned char)i);
	}
	cr_assert_eq(mova_thread_flush(a), 0);
	mova_stats before, after;
	mova_stats_get(a, &before);
	unsigned n = mv_zone_thp_collapse(&a->heap.zone, 8);
	mova_stats_get(a, &after);
	cr_assert_geq(n, 2, "only %u full movable pageblocks found", n);
	cr_log_info("collapsed %u pageblocks: %llu done, %llu failed", n,
		    (unsigned long long)(after.thp_collapse - before.thp_collapse),
		    (unsigned long long)(after.thp_collapse_failed - before.thp_collapse_failed));
	cr_assert_eq(after.thp_collapse + after.thp_collapse_failed,
		     before.thp_collapse + before.thp_collapse_failed + n);
	cr_assert_eq(after.thp_advised, before.thp_advised + n);
	/* tried once: advised now, not a candidate again */
	cr_assert_eq(mv_zone_thp_collapse(&a->heap.zone, 8), 0);
	consistent(a);
	for (unsigned i = 0; i < N; i++)
		pin_expect(a, h[i], (unsigned char)i, 1);
	/* freed and given back: the advice goes with the memory */
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, &after);
	cr_assert_eq(after.thp_advised_pageblocks, 0);
	consistent(a);
	mova_arena_destroy(a);
}

/* --------------------------------------------------- kcompactd under load */

struct load {
	mova_arena *a;
	atomic_int stop;
	atomic_long bad, ops;
};

static void *churn(void *arg)
{
	struct load *l = arg;
	enum { N = 2048 };
	mova_handle h[N] = {0};
	unsigned seed = 12345;
	while (!atomic_load(&l->stop)) {
		seed = seed * 1103515245 + 12345;
		unsigned k = (seed >> 8) % N;
		if (h[k]) {
			const unsigned char *p = mova_pin(l->a, h[k]);
			size_t n = mova_hsize(l->a, h[k]);
			for (size_t i = 0; p && i < n; i++)
				if (p[i] != (unsigned char)k) {
					atomic_fetch_add(&l->bad, 1);
					break;
				}
			mova_unpin(l->a, h[k]);
			mova_hfree(l->a, h[k]);
			h[k] = MOVA_NULL;
		} else {
			h[k] = mova_halloc(l->a, 16 + (seed >> 16) % 3000);
			if (h[k]) {
				unsigned char *p = mova_pin(l->a, h[k]);
				memset(p, (int)(k & 0xff), mova_hsize(l->a, h[k]));
				mova_unpin(l->a, h[k]);
			}
		}
		atomic_fetch_add(&l->ops, 1);
	}
	for (unsigned k = 0; k < N; k++)
		if (h[k])
			mova_hfree(l->a, h[k]);
	return NULL;
}

Test(faults, kcompactd_stop_and_restart_under_load)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)1 << 30;
	cfg.proactiveness = 100;
	cfg.kcompactd_interval_ms = 10;
	cfg.kcompactd_cpu_budget = 100;
	struct load l = {.a = mova_arena_create(&cfg)};
	cr_assert(l.a);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, &l);
	for (int round = 0; round < 20; round++) {
		usleep(20000);
		mv_kcompactd_stop(l.a);
		/* the churning threads may have started it again since: it is
		 * started lazily, by whoever finds work for it */
		usleep(5000);
		cr_assert_eq(mv_kcompactd_run(l.a), 0);
		mova_kcompactd_wakeup(l.a, 9);
	}
	atomic_store(&l.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&l.bad), 0, "corrupt objects under kcompactd restarts");
	cr_assert_gt(atomic_load(&l.ops), 1000);
	mova_stats st;
	mova_stats_get(l.a, &st);
	cr_assert_gt(st.compact_daemon_wake, 0, "kcompactd never ran");
	consistent(l.a);
	mova_arena_destroy(l.a);
}

/* ------------------------------------------------ no grace-period thread */

/*
 * pthread_create fails (a thread limit, ulimit -u) when the first read
 * section would start the grace-period thread (lib/rcu.c). Deferred
 * batches then wait in the queue, and a barrier (what compaction, reclaim
 * and the out-of-memory path call) runs them in its caller; once threads
 * can be made again (100 ms later at least), the next deferral starts the
 * thread and batches run there.
 */
static _Atomic int gp_ran;
static pthread_t gp_ran_on;

static void gp_batch_fn(struct mv_rcu_batch *b)
{
	(void)b;
	gp_ran_on = pthread_self();
	atomic_fetch_add(&gp_ran, 1);
}

Test(faults, no_grace_period_thread_barrier_runs_the_batches)
{
	if (mv_rcu_readers_ever()) {
		/* one process for every test (the TSan build): the thread exists */
		cr_log_info("a read section was entered before: nothing to test here");
		return;
	}
	inject_on(MV_OS_THREAD, 0);
	mv_rcu_read_lock(); /* would start the thread: it cannot */
	mv_rcu_read_unlock();
	cr_assert_geq(atomic_load(&fail_count), 1, "the thread's creation was not tried");
	static struct mv_rcu_batch b[4];
	for (int i = 0; i < 3; i++) {
		b[i].fn = gp_batch_fn;
		mv_rcu_defer(&b[i]);
	}
	usleep(20000);
	cr_assert_eq(atomic_load(&gp_ran), 0, "a batch ran with no thread and no barrier");
	cr_assert(mv_rcu_batches_inflight());
	mv_rcu_barrier();
	cr_assert_eq(atomic_load(&gp_ran), 3, "the barrier left batches");
	cr_assert(pthread_equal(gp_ran_on, pthread_self()), "not run by the barrier's caller");
	cr_assert_not(mv_rcu_batches_inflight());
	/* threads again: after the retry interval the next deferral starts it */
	inject_off();
	usleep(150000);
	b[3].fn = gp_batch_fn;
	mv_rcu_defer(&b[3]);
	for (int i = 0; i < 2000 && atomic_load(&gp_ran) < 4; i++)
		usleep(1000);
	cr_assert_eq(atomic_load(&gp_ran), 4, "no thread ran the batch after threads came back");
	cr_assert_not(pthread_equal(gp_ran_on, pthread_self()));
	mv_rcu_barrier();
	cr_assert_not(mv_rcu_batches_inflight());
}
