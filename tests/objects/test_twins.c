/* SPDX-License-Identifier: MIT */
/*
 * test_twins.c (issue 15): objects held in two adjacent free slots of the
 * class of half their size ("twins", lib/slab.h), so that a refill with
 * larger objects takes the holes a random deletion left among smaller
 * ones, as a coalescing malloc does (redis-server: 200-byte values, 80%
 * deleted, refilled with 400-byte ones). Through the public API only; each
 * case runs in a thread of its own, whose caches start empty.
 *  - refill_takes_twin_slots: 200 B objects, 80% freed at random, then
 *    400 B ones: most of them are twins (twin_alloc), resident memory
 *    grows by much less than they take, and every byte of every object,
 *    old and new, is as written;
 *  - twin_second_slot_is_an_interior_pointer: free, realloc and
 *    usable_size of a twin's second slot are refused, nothing changes; the
 *    twin frees whole, a second free of it is reported;
 *  - calloc_twin_is_zeroed: a calloc'd twin (past 1 KiB, the slow path's
 *    zeroing) reads zero though its slots held data;
 *  - twins_freed_by_another_thread: twins freed remotely release both
 *    slots (live bytes back where they were, no free reported);
 *  - churn_turns_twins_off: a malloc/free loop of the larger size beside
 *    the sparse slabs (every twin on the slow paths, 1 us a pair against
 *    46 ns) takes at most a few hundred twins, then a slab of its own;
 *  - exiting_thread_returns_reserved_pairs: a thread that reserved pairs
 *    for twins and then freed everything leaves no slab behind (before,
 *    reserved slots would have counted as live in an abandoned slab).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MV_CR_STANDALONE
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif

#include "mova.h"
#include "../common/pattern.h"
#include "../common/statstext.h"
#include "../common/capture.h"

#define SMALL 200 /* the 208-byte class */
#define LARGE 400 /* the 416-byte class: twice 208 */
#define NS 30000
#define NL 20000

TestSuite(twins, .timeout = 120);

static mova_stats stats(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st;
}

static void run_in_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

static char *small[NS], *large[NL];

/* NS small objects with their patterns, then 4 in 5 freed at random (a
 * fixed seed): returns how many live, kept first in small[] */
static size_t small_size = SMALL;

static size_t fill_and_thin(void)
{
	for (size_t i = 0; i < NS; i++) {
		small[i] = mova_malloc(small_size);
		cr_assert_not_null(small[i]);
		fill(small[i], small_size, (uint64_t)(uintptr_t)small[i]);
	}
	uint32_t seed = 12345;
	size_t live = 0;
	for (size_t i = 0; i < NS; i++) {
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) % 5)
			mova_free(small[i]);
		else
			small[live++] = small[i];
	}
	return live;
}

static void check_and_free_small(size_t live)
{
	for (size_t i = 0; i < live; i++) {
		size_t bad = check(small[i], small_size, (uint64_t)(uintptr_t)small[i]);
		cr_assert_eq(bad, small_size, "small object %zu changed at byte %zu", i, bad);
		mova_free(small[i]);
	}
}

static void *refill_body(void *arg)
{
	(void)arg;
	size_t live = fill_and_thin();
	mova_stats s0 = stats();
	for (size_t i = 0; i < NL; i++) {
		large[i] = mova_malloc(LARGE);
		cr_assert_not_null(large[i]);
		cr_assert_geq(mova_usable_size(large[i]), LARGE);
		fill(large[i], LARGE, (uint64_t)(uintptr_t)large[i]);
	}
	mova_stats s1 = stats();
	uint64_t twins = s1.twin_alloc - s0.twin_alloc;
	/* 80% of 30,000 208-byte slots free: about 10,000 pairs */
	cr_assert_geq(twins, NL / 3, "only %llu of %d objects in twin slots",
		      (unsigned long long)twins, NL);
	size_t grew =
	    s1.resident_bytes > s0.resident_bytes ? s1.resident_bytes - s0.resident_bytes : 0;
	cr_assert_lt(grew, (size_t)NL * 416 * 3 / 4,
		     "resident grew by %zu for %d x 416 B, %llu of them twins", grew, NL,
		     (unsigned long long)twins);
	/* no object overlaps another: every pattern is intact */
	for (size_t i = 0; i < NL; i++) {
		size_t bad = check(large[i], LARGE, (uint64_t)(uintptr_t)large[i]);
		cr_assert_eq(bad, LARGE, "large object %zu changed at byte %zu", i, bad);
	}
	check_and_free_small(live);
	for (size_t i = 0; i < NL; i++)
		mova_free(large[i]);
	return NULL;
}

Test(twins, refill_takes_twin_slots)
{
	run_in_thread(refill_body, NULL);
}

/* a LARGE object that is a twin (the first after the thinning) */
static char *one_twin(void)
{
	uint64_t t0 = stats().twin_alloc;
	char *p = mova_malloc(LARGE);
	cr_assert_not_null(p);
	cr_assert_eq(stats().twin_alloc, t0 + 1, "the refill's first object is not a twin");
	return p;
}

static void *interior_body(void *arg)
{
	(void)arg;
	size_t live = fill_and_thin();
	char *p = one_twin();
	cr_assert_eq(mova_usable_size(p), 416);
	fill(p, 416, 77);
	char *second = p + 208; /* a slot boundary of the small objects' slab */
	char *before = stats_text();
	struct capture c;
	capture_begin(&c);
	mova_free(second);
	char msg[512];
	capture_end(&c, msg, sizeof msg);
	char *after = stats_text();
	/* only a process's first report is printed (the rest are counted) */
	cr_assert(!*msg || strstr(msg, "inside an object"), "the report: '%s'", msg);
	cr_assert_eq(stat_value(after, "invalid_frees"), stat_value(before, "invalid_frees") + 1);
	free(before);
	free(after);
	cr_assert_eq(mova_usable_size(second), 0, "the second slot is inside an object");
	errno = 0;
	cr_assert_null(mova_realloc(second, 100));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(check(p, 416, 77), 416, "the refused free changed the twin");
	cr_assert_eq(mova_usable_size(p), 416);

	/* the twin frees whole: both slots come back, each once */
	int64_t live0 = (int64_t)stats().live_bytes;
	mova_free(p);
	cr_assert_eq((int64_t)stats().live_bytes, live0 - 416);
	before = stats_text();
	mova_free(p);
	after = stats_text();
	cr_assert_eq(stat_value(after, "invalid_frees"), stat_value(before, "invalid_frees") + 1,
		     "a second free of a twin was taken");
	free(before);
	free(after);
	cr_assert_eq((int64_t)stats().live_bytes, live0 - 416, "the double free counted");
	/* the small objects' slots are whole again: taking many, none twice */
	enum { M = 4000 };
	static char *again[M];
	for (size_t i = 0; i < M; i++) {
		again[i] = mova_malloc(SMALL);
		cr_assert_not_null(again[i]);
		fill(again[i], SMALL, (uint64_t)(uintptr_t)again[i]);
	}
	for (size_t i = 0; i < M; i++) {
		size_t bad = check(again[i], SMALL, (uint64_t)(uintptr_t)again[i]);
		cr_assert_eq(bad, SMALL, "small object %zu handed out twice?", i);
		mova_free(again[i]);
	}
	check_and_free_small(live);
	return NULL;
}

Test(twins, twin_second_slot_is_an_interior_pointer)
{
	run_in_thread(interior_body, NULL);
}

/* calloc past 1 KiB zeroes the whole usable size on the slow path (one
 * that zeroed the half class's size left half of a twin as it was) */
static void *calloc_body(void *arg)
{
	(void)arg;
	small_size = 570; /* the 576-byte class, half of 1152 */
	size_t live = fill_and_thin();
	uint64_t t0 = stats().twin_alloc;
	enum { M = 1000 };
	static char *z[M];
	for (size_t i = 0; i < M; i++) {
		z[i] = mova_calloc(1, 1100);
		cr_assert_not_null(z[i]);
		for (size_t k = 0; k < 1100; k++)
			cr_assert_eq(z[i][k], 0, "calloc'd object %zu: byte %zu", i, k);
		memset(z[i], 0x5a, 1100);
	}
	cr_assert_gt(stats().twin_alloc, t0, "no calloc took twin slots");
	for (size_t i = 0; i < M; i++)
		mova_free(z[i]);
	check_and_free_small(live);
	small_size = SMALL;
	return NULL;
}

Test(twins, calloc_twin_is_zeroed)
{
	run_in_thread(calloc_body, NULL);
}

static size_t nremote;

static void *remote_free_body(void *arg)
{
	(void)arg;
	for (size_t i = 0; i < nremote; i++)
		mova_free(large[i]);
	return NULL;
}

static void *remote_body(void *arg)
{
	(void)arg;
	size_t live = fill_and_thin();
	int64_t live0 = (int64_t)stats().live_bytes;
	uint64_t t0 = stats().twin_alloc;
	nremote = 5000;
	for (size_t i = 0; i < nremote; i++) {
		large[i] = mova_malloc(LARGE);
		cr_assert_not_null(large[i]);
		fill(large[i], LARGE, i);
	}
	cr_assert_geq(stats().twin_alloc - t0, nremote / 2);
	char *before = stats_text();
	run_in_thread(remote_free_body, NULL);
	char *after = stats_text();
	cr_assert_eq(stat_value(after, "invalid_frees"), stat_value(before, "invalid_frees"),
		     "a remote free of a twin was refused");
	free(before);
	free(after);
	cr_assert_eq((int64_t)stats().live_bytes, live0, "a twin's remote free lost bytes");
	/* the slots are taken in and reused: new objects, all distinct */
	for (size_t i = 0; i < nremote; i++) {
		large[i] = mova_malloc(LARGE);
		cr_assert_not_null(large[i]);
		fill(large[i], LARGE, (uint64_t)(uintptr_t)large[i]);
	}
	for (size_t i = 0; i < nremote; i++) {
		cr_assert_eq(check(large[i], LARGE, (uint64_t)(uintptr_t)large[i]), LARGE);
		mova_free(large[i]);
	}
	check_and_free_small(live);
	return NULL;
}

Test(twins, twins_freed_by_another_thread)
{
	run_in_thread(remote_body, NULL);
}

static void *exiting_body(void *arg)
{
	(void)arg;
	size_t live = fill_and_thin();
	uint64_t t0 = stats().twin_alloc;
	/* one twin: the rest of its slab's pairs stay reserved */
	char *p = mova_malloc(LARGE);
	cr_assert_not_null(p);
	cr_assert_eq(stats().twin_alloc, t0 + 1);
	mova_free(p);
	check_and_free_small(live);
	return NULL;
}

Test(twins, exiting_thread_returns_reserved_pairs)
{
	mova_stats s0 = stats();
	run_in_thread(exiting_body, NULL);
	mova_stats s1 = stats();
	/* every slab the thread made went back when it exited: none was
	 * left behind with reserved slots counted as live */
	cr_assert_geq(s1.slab_free - s0.slab_free, s1.slab_alloc - s0.slab_alloc,
		      "%llu slabs made, %llu freed",
		      (unsigned long long)(s1.slab_alloc - s0.slab_alloc),
		      (unsigned long long)(s1.slab_free - s0.slab_free));
}

static void *churn_body(void *arg)
{
	(void)arg;
	size_t live = fill_and_thin();
	uint64_t t0 = stats().twin_alloc;
	char *w[16] = {0};
	for (size_t i = 0; i < 200000; i++) {
		size_t k = i % 16;
		mova_free(w[k]);
		w[k] = mova_malloc(LARGE);
		cr_assert_not_null(w[k]);
		w[k][LARGE - 1] = 1;
	}
	uint64_t twins = stats().twin_alloc - t0;
	cr_assert_gt(twins, 0, "the loop started on twins");
	cr_assert_leq(twins, 600, "%llu of 200000 allocations were twins",
		      (unsigned long long)twins);
	for (size_t k = 0; k < 16; k++)
		mova_free(w[k]);
	check_and_free_small(live);
	return NULL;
}

Test(twins, churn_turns_twins_off)
{
	run_in_thread(churn_body, NULL);
}
