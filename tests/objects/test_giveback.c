/* SPDX-License-Identifier: MIT */
/*
 * test_giveback.c (issue 17 item 11): memory a live thread freed goes back
 * to the OS. One thread allocates 120 MiB of 48-byte blocks and frees them
 * all; it stays alive. With c0c0fa9, 121 MiB stayed resident with 0 live
 * bytes until the thread exited: its frees to its own slabs parked full
 * went to their remote lists and counted as used until it allocated from
 * them again, and nothing took them in.
 *  - flush_and_compact: mova_thread_flush then mova_compact(a, -1) bring
 *    resident memory down to live memory plus metadata;
 *  - idle: the thread does nothing more; kcompactd's decay (decay_ms,
 *    default 1 s) brings resident memory down to the floor (retain_bytes,
 *    4 MiB here) within a few seconds.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#ifdef MV_CR_STANDALONE
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif

#include "mova.h"

#define MiB ((size_t)1 << 20)
#define TOTAL (120 * MiB)
#define SIZE 48

struct job {
	int flush;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, leave;
};

static void *worker(void *arg)
{
	struct job *j = arg;
	size_t n = TOTAL / (SIZE + 16);
	void **v = mova_malloc(n * sizeof *v);
	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = mova_malloc(SIZE);
		cr_assert_not_null(v[i]);
		memset(v[i], (int)i, SIZE);
	}
	for (size_t i = 0; i < n; i++)
		mova_free(v[i]);
	mova_free(v);
	if (j->flush) {
		mova_thread_flush(mova_default_arena());
		cr_assert_eq(mova_compact(mova_default_arena(), -1), 0);
	}
	/* stay alive, doing nothing, until told */
	pthread_mutex_lock(&j->lock);
	j->done = 1;
	pthread_cond_broadcast(&j->cond);
	while (!j->leave)
		pthread_cond_wait(&j->cond, &j->lock);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static mova_stats stats(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st;
}

static void run(int flush, size_t limit, unsigned wait_ms)
{
	struct job j = {.flush = flush};
	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, worker, &j), 0);
	pthread_mutex_lock(&j.lock);
	while (!j.done)
		pthread_cond_wait(&j.cond, &j.lock);
	pthread_mutex_unlock(&j.lock);
	mova_stats st = stats();
	for (unsigned ms = 0; ms < wait_ms && st.resident_bytes > st.live_bytes + limit; ms += 50) {
		usleep(50000);
		st = stats();
	}
	cr_assert_leq(st.resident_bytes, st.live_bytes + limit,
		      "a live thread freed %zu MiB: resident %zu KiB, live %zu KiB %s", TOTAL / MiB,
		      st.resident_bytes >> 10, st.live_bytes >> 10,
		      flush ? "after mova_thread_flush and mova_compact" : "after idling");
	pthread_mutex_lock(&j.lock);
	j.leave = 1;
	pthread_cond_broadcast(&j.cond);
	pthread_mutex_unlock(&j.lock);
	pthread_join(t, NULL);
}

Test(giveback, flush_and_compact, .timeout = 120)
{
	/* metadata (the meta pool, descriptors) and nothing else */
	run(1, 4 * MiB, 0);
}

Test(giveback, idle, .timeout = 120)
{
	/* the floor (retain_bytes: 2 pageblocks here), the thread's page
	 * lists and kept slabs, metadata; within 6 s (decay_ms 1000) */
	run(0, 12 * MiB, 6000);
}
