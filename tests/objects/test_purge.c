/* SPDX-License-Identifier: MIT */
/*
 * test_purge.c (issue 15): pages of live raw slabs that hold only free
 * slots go back to the OS, and come back when the slab needs them.
 *  - sparse_slabs_shrink: 8 KiB and 3 KiB objects (multi-page slabs), 80%
 *    freed at random; mova_thread_flush gives back most of the freed
 *    pages though no slab is empty: resident memory falls, and what
 *    survived keeps its bytes;
 *  - parked_slots_come_back: after the purge, allocating as much again
 *    reuses the slabs (their pages refault) rather than mapping new ones,
 *    and every block is distinct and writable;
 *  - double_free_of_a_parked_slot: freeing a slot whose page went back is
 *    reported and ignored: the next allocations never return one block
 *    twice;
 *  - abandoned_slabs_purge_on_trim: slabs of an exited thread are purged
 *    by the trim (mova_compact) under their bin's lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mova.h"

#define N 20000

static void *obj[N];
static size_t sz[N];

static size_t resident(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st.resident_bytes;
}

static uint64_t returned(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st.pages_returned;
}

/* fill, then free 80% at random; returns how many live */
static size_t fill_and_thin(unsigned seed)
{
	for (size_t i = 0; i < N; i++) {
		sz[i] = i % 2 ? 8192 : 3072;
		obj[i] = mova_malloc(sz[i]);
		cr_assert(obj[i]);
		memset(obj[i], (int)(i & 0xff), sz[i]);
	}
	size_t live = 0;
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) % 5) {
			mova_free(obj[i]);
			obj[i] = NULL;
		} else {
			live++;
		}
	}
	return live;
}

static void check_live(void)
{
	for (size_t i = 0; i < N; i++) {
		if (!obj[i])
			continue;
		const unsigned char *p = obj[i];
		for (size_t k = 0; k < sz[i]; k += 511)
			cr_assert_eq(p[k], (unsigned char)(i & 0xff), "object %zu byte %zu", i, k);
		cr_assert_eq(p[sz[i] - 1], (unsigned char)(i & 0xff));
	}
}

Test(purge, sparse_slabs_shrink)
{
	fill_and_thin(7);
	mova_thread_flush(mova_default_arena());
	size_t before = resident();
	uint64_t r0 = returned();
	mova_thread_flush(mova_default_arena()); /* the purge runs with the flush */
	cr_assert_geq(returned(), r0);
	size_t after = resident();
	cr_assert_leq(after, before);
	/* about 80% of ~110 MiB was freed: at least a third of it goes back
	 * though hardly a slab is empty */
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	cr_assert_lt(st.resident_bytes, 3 * st.live_bytes,
		     "resident %zu for %zu live after the purge", st.resident_bytes, st.live_bytes);
	check_live();
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}

Test(purge, parked_slots_come_back)
{
	fill_and_thin(11);
	mova_thread_flush(mova_default_arena());
	mova_stats st0;
	mova_stats_get(mova_default_arena(), &st0);
	/* as much again: the freed slots, parked or listed, are reused */
	static void *again[N];
	for (size_t i = 0; i < N; i++) {
		if (obj[i])
			continue;
		again[i] = mova_malloc(sz[i]);
		cr_assert(again[i]);
		memset(again[i], 0x5a, sz[i]);
	}
	mova_stats st1;
	mova_stats_get(mova_default_arena(), &st1);
	/* about 1,700 slabs hold the workload; without the purge the refill
	 * makes about 200 new ones as well (its order differs from the
	 * fill's), so a refill that ignored the parked slots would make
	 * some 1,400 */
	cr_assert_leq(st1.slab_alloc - st0.slab_alloc, 400,
		      "%lu new slabs: the parked slots were not reused",
		      (unsigned long)(st1.slab_alloc - st0.slab_alloc));
	check_live();
	for (size_t i = 0; i < N; i++)
		if (again[i]) {
			const unsigned char *p = again[i];
			cr_assert_eq(p[0], 0x5a);
			cr_assert_eq(p[sz[i] - 1], 0x5a);
			mova_free(again[i]);
		}
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}

Test(purge, double_free_of_a_parked_slot)
{
	static void *dead[N];
	size_t nd = 0;
	for (size_t i = 0; i < N; i++) {
		sz[i] = 8192;
		obj[i] = mova_malloc(sz[i]);
		cr_assert(obj[i]);
		memset(obj[i], 1, sz[i]);
	}
	/* keep one in eight: every slab stays live with most pages free */
	for (size_t i = 0; i < N; i++)
		if (i % 8) {
			mova_free(obj[i]);
			dead[nd++] = obj[i];
			obj[i] = NULL;
		}
	uint64_t r0 = returned();
	mova_thread_flush(mova_default_arena());
	cr_assert_gt(returned(), r0, "nothing was purged");
	/* free every dead block again: each is reported, none is listed */
	for (size_t i = 0; i < nd; i++)
		mova_free(dead[i]);
	/* the next allocations are all distinct */
	static void *got[N];
	for (size_t i = 0; i < nd; i++) {
		got[i] = mova_malloc(8192);
		cr_assert(got[i]);
		((uint64_t *)got[i])[0] = i;
		((uint64_t *)got[i])[1023] = i;
	}
	for (size_t i = 0; i < nd; i++) {
		cr_assert_eq(((uint64_t *)got[i])[0], i, "block %zu handed out twice", i);
		cr_assert_eq(((uint64_t *)got[i])[1023], i, "block %zu handed out twice", i);
		mova_free(got[i]);
	}
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}

static void *thread_fill(void *arg)
{
	(void)arg;
	fill_and_thin(23);
	return NULL; /* exits: its slabs are abandoned to their bins */
}

Test(purge, abandoned_slabs_purge_on_trim)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, thread_fill, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	uint64_t r0 = returned();
	mova_compact(mova_default_arena(), -1); /* trims the bins */
	cr_assert_gt(returned(), r0, "abandoned slabs were not purged");
	check_live();
	/* and the blocks can be freed from here */
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}
