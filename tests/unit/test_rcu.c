/* SPDX-License-Identifier: MIT */
/*
 * test_rcu.c: mova's RCU glue (lib/rcu.h) over liburcu-bp.
 *  - read sections nest; mv_rcu_in_reader follows the outermost one;
 *    the first one marks the process as having readers;
 *  - mv_rcu_synchronize waits for a reader in another thread, nested or
 *    not, to leave its outermost section, and not for one that left;
 *  - a deferred batch runs only after the grace period: not while a
 *    reader that was inside when it was deferred stays inside; every
 *    batch runs once, and mv_rcu_barrier waits for them all;
 *  - the thread caches' deferred slots (mv_tcache_defer_slot) stay
 *    allocated while such a reader is inside, and are freed after.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "rcu.h"
#include "unit_heap.h"

TestSuite(rcu, .timeout = 60);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Test(rcu, read_sections_nest)
{
	cr_assert_not(mv_rcu_readers_ever(), "no reader yet in this process");
	cr_assert_not(mv_rcu_in_reader());
	mv_rcu_read_lock();
	cr_assert(mv_rcu_readers_ever(), "the first read section marks the process");
	cr_assert(mv_rcu_in_reader());
	mv_rcu_read_lock();
	mv_rcu_read_lock();
	cr_assert(mv_rcu_in_reader());
	mv_rcu_read_unlock();
	mv_rcu_read_unlock();
	cr_assert(mv_rcu_in_reader(), "still inside the outermost section");
	mv_rcu_read_unlock();
	cr_assert_not(mv_rcu_in_reader());
	cr_assert(mv_rcu_readers_ever(), "for good");
}

/* ------------------------------------------------------------ a reader */

#define HOLD_MS 300

static _Atomic int inside, released;
static int nest_depth;

/* enters a section nest_depth deep (leaving all but the outermost), says
 * so, holds it HOLD_MS, marks released, then leaves */
static void *reader(void *arg)
{
	(void)arg;
	for (int i = 0; i < nest_depth; i++)
		mv_rcu_read_lock();
	for (int i = 1; i < nest_depth; i++)
		mv_rcu_read_unlock();
	atomic_store(&inside, 1);
	usleep(HOLD_MS * 1000);
	atomic_store(&released, 1);
	mv_rcu_read_unlock();
	return NULL;
}

static pthread_t start_reader(int depth)
{
	nest_depth = depth;
	atomic_store(&inside, 0);
	atomic_store(&released, 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, reader, NULL), 0);
	while (!atomic_load(&inside))
		usleep(1000);
	return t;
}

static void synchronize_waits(int depth)
{
	pthread_t t = start_reader(depth);
	double t0 = now();
	mv_rcu_synchronize();
	double waited = now() - t0;
	cr_assert(atomic_load(&released),
		  "synchronize returned after %.3f s while a reader (depth %d) was inside", waited,
		  depth);
	cr_assert_geq(waited, (HOLD_MS - 100) / 1000.0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	/* nobody inside now: no wait for the reader that left */
	t0 = now();
	mv_rcu_synchronize();
	cr_assert_lt(now() - t0, 2.0, "synchronize waited for a reader that had left");
}

Test(rcu, synchronize_waits_for_reader_in_another_thread)
{
	synchronize_waits(1);
}

Test(rcu, synchronize_waits_for_outermost_of_nested_section)
{
	synchronize_waits(3);
}

/* ------------------------------------------------------------ deferral */

static _Atomic int nr_ran, ran_early;

static void batch_fn(struct mv_rcu_batch *b)
{
	(void)b;
	if (!atomic_load(&released))
		atomic_fetch_add(&ran_early, 1);
	atomic_fetch_add(&nr_ran, 1);
}

Test(rcu, deferred_batch_runs_after_grace_period)
{
	static struct mv_rcu_batch b[16];
	pthread_t t = start_reader(1);
	for (int i = 0; i < 16; i++) {
		b[i].fn = batch_fn;
		mv_rcu_defer(&b[i]);
	}
	cr_assert(mv_rcu_batches_inflight());
	usleep(HOLD_MS * 1000 / 2);
	cr_assert_eq(atomic_load(&nr_ran), 0, "a batch ran while the reader was inside");
	cr_assert(mv_rcu_batches_inflight());
	mv_rcu_barrier();
	cr_assert(atomic_load(&released), "the barrier returned before the reader left");
	cr_assert_eq(atomic_load(&nr_ran), 16, "every batch once");
	cr_assert_eq(atomic_load(&ran_early), 0);
	cr_assert_not(mv_rcu_batches_inflight());
	cr_assert_eq(pthread_join(t, NULL), 0);
}

Test(rcu, tcache_deferred_slots_freed_after_readers_leave)
{
	struct mv_heap *h = uh_create(16 * MiB, 6);
	struct mv_tcache *tc = mv_tcache_transient(h);
	unsigned mc = mv_mov_class(64);
	void *s[MV_RCU_BATCH];
	for (unsigned i = 0; i < MV_RCU_BATCH; i++)
		s[i] = mv_mov_alloc_slow(h, tc, mc);
	uint64_t slabs0 = atomic_load(&h->bins[mc].nr_slabs);
	cr_assert_gt(slabs0, 1);

	pthread_t t = start_reader(1);
	cr_assert(mv_rcu_readers_ever());
	for (unsigned i = 0; i < MV_RCU_BATCH; i++)
		mv_tcache_defer_slot(h, tc, s[i]);
	cr_assert_null(tc->pending, "the full batch went to call_rcu");
	usleep(HOLD_MS * 1000 / 2);
	/* still allocated: the slots of the current slab, and the full ones */
	struct mv_slab *cur = tc->mov_cur[mc - MV_MOV_CLASS0];
	cr_assert_eq(cur->used, MV_RCU_BATCH - cur->nregs * (unsigned)(slabs0 - 1),
		     "slots freed inside a grace period");
	cr_assert_not_null(h->bins[mc].full, "slabs emptied inside a grace period");
	cr_assert_eq(uh_ev(h, MV_VM_rcu_batches), 0);
	mv_rcu_barrier();
	cr_assert(atomic_load(&released));
	cr_assert_eq(uh_ev(h, MV_VM_rcu_batches), 1, "one batch, one grace period");
	/* freed by the worker (no cache): to the frozen slab's xlist, the rest emptied */
	cr_assert_eq(cur->used - cur->nxlist, 0);
	cr_assert_null(h->bins[mc].full);
	cr_assert_eq(pthread_join(t, NULL), 0);
	mv_tcache_destroy(h, tc);
	uh_destroy(h);
}
