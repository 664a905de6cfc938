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
 *  - refill_takes_backed_holes_first: after the purge, allocations take
 *    the free slots that lie wholly on backed pages, in every slab, before
 *    any purged page is taken back (a refill that refaulted the current
 *    slab's purged pages first, or handed out a slot reaching into one,
 *    left the frag workload 1.18x its live data, not 1.14x);
 *  - double_free_of_a_parked_slot (8 KiB) and ..._straddling (3 KiB,
 *    slots across page boundaries, parked while their first page stays):
 *    freeing a slot that is parked is reported and ignored: the next
 *    allocations never return one block twice;
 *  - abandoned_slabs_purge_on_trim: slabs of an exited thread are purged
 *    by the trim (mova_compact) under their bin's lock;
 *  - idle_slabs_decay_without_a_call: a thread that thinned out what it
 *    holds and then only allocates now and then (a server's timer) gives
 *    the free pages back within a few decay periods, with no call of any
 *    kind: kcompactd asks, the thread answers on its next small malloc.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef MV_CR_STANDALONE
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif

#include "mova.h"
#include "../common/statstext.h"

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

/* fill with objects of size_even and size_odd bytes (by index), then free
 * 80% at random, the freed blocks' addresses to dead[] if given; returns
 * how many live */
static size_t fill_and_thin_sized(unsigned seed, size_t size_even, size_t size_odd, void **dead,
				  size_t *nd)
{
	for (size_t i = 0; i < N; i++) {
		sz[i] = i % 2 ? size_odd : size_even;
		obj[i] = mova_malloc(sz[i]);
		cr_assert(obj[i]);
		memset(obj[i], (int)(i & 0xff), sz[i]);
	}
	size_t live = 0;
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) % 5) {
			mova_free(obj[i]);
			if (dead)
				dead[(*nd)++] = obj[i];
			obj[i] = NULL;
		} else {
			live++;
		}
	}
	return live;
}

static size_t fill_and_thin(unsigned seed)
{
	return fill_and_thin_sized(seed, 3072, 8192, NULL, NULL);
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

/* are all pages of [p, p + n) resident? */
static bool all_resident(const void *p, size_t n)
{
	uintptr_t lo = (uintptr_t)p & ~(uintptr_t)4095,
		  hi = ((uintptr_t)p + n + 4095) & ~(uintptr_t)4095;
	unsigned char vec[16];
	cr_assert_leq((hi - lo) / 4096, sizeof vec);
	cr_assert_eq(mincore((void *)lo, hi - lo, vec), 0);
	for (size_t k = 0; k < (hi - lo) / 4096; k++)
		if (!(vec[k] & 1))
			return false;
	return true;
}

static int cmp_uintptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

Test(purge, refill_takes_backed_holes_first)
{
	static void *dead[N];
	size_t nd = 0;
	/* four slots in three pages: most straddle two */
	fill_and_thin_sized(5, 3072, 3072, dead, &nd);
	uint64_t r0 = returned();
	mova_thread_flush(mova_default_arena());
	cr_assert_gt(returned(), r0, "nothing was purged");
	/* the holes on backed pages, as the OS sees them, in slabs still
	 * live (a slab of this class is 16 pages, an aligned buddy block;
	 * an emptied one went back to the page allocator) */
	static uintptr_t live_slab[N];
	size_t nl = 0;
	for (size_t j = 0; j < N; j++)
		if (obj[j])
			live_slab[nl++] = (uintptr_t)obj[j] >> 16;
	qsort(live_slab, nl, sizeof *live_slab, cmp_uintptr);
	size_t holes = 0, gone = 0;
	for (size_t i = 0; i < nd; i++) {
		uintptr_t id = (uintptr_t)dead[i] >> 16;
		if (!bsearch(&id, live_slab, nl, sizeof *live_slab, cmp_uintptr))
			continue;
		if (all_resident(dead[i], 3072))
			holes++;
		else
			gone++;
	}
	cr_assert_gt(holes, 100);
	cr_assert_gt(gone, 100);
	size_t res0 = resident();
	static void *got[N];
	for (size_t i = 0; i < holes; i++) {
		got[i] = mova_malloc(3072);
		cr_assert(got[i]);
		cr_assert(all_resident(got[i], 3072),
			  "allocation %zu of %zu holes lies on a purged page", i, holes);
		memset(got[i], 0x77, 3072);
	}
	/* kcompactd's decay may give back more meanwhile (TSan's slowness
	 * lets a decay_ms pass), never less */
	cr_assert_leq(resident(), res0,
		      "pages were taken back while holes were left: %zu -> %zu bytes", res0,
		      resident());
	check_live();
	for (size_t i = 0; i < holes; i++)
		mova_free(got[i]);
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}

/* the process's count of refused frees (mova_stats_print's vmstat) */
static unsigned long invalid_frees(void)
{
	char *text = stats_text();
	unsigned long n = stat_value(text, "invalid_frees");
	free(text);
	return n;
}

/* keep one block in keep_every of `size`, purge, free the others again */
static void double_free_parked(size_t size, unsigned keep_every)
{
	static void *dead[N];
	size_t nd = 0;
	for (size_t i = 0; i < N; i++) {
		sz[i] = size;
		obj[i] = mova_malloc(sz[i]);
		cr_assert(obj[i]);
		memset(obj[i], 1, sz[i]);
	}
	/* every slab stays live with most pages free */
	for (size_t i = 0; i < N; i++)
		if (i % keep_every) {
			mova_free(obj[i]);
			dead[nd++] = obj[i];
			obj[i] = NULL;
		}
	uint64_t r0 = returned();
	mova_thread_flush(mova_default_arena());
	cr_assert_gt(returned(), r0, "nothing was purged");
	unsigned long inv0 = invalid_frees();
	/* free every dead block again: each is reported, none is listed */
	for (size_t i = 0; i < nd; i++)
		mova_free(dead[i]);
	cr_assert_eq(invalid_frees() - inv0, nd, "%lu of %zu double frees reported",
		     invalid_frees() - inv0, nd);
	/* the next allocations are all distinct */
	static void *got[N];
	size_t words = size / 8;
	for (size_t i = 0; i < nd; i++) {
		got[i] = mova_malloc(size);
		cr_assert(got[i]);
		((uint64_t *)got[i])[0] = i;
		((uint64_t *)got[i])[words - 1] = i;
	}
	for (size_t i = 0; i < nd; i++) {
		cr_assert_eq(((uint64_t *)got[i])[0], i, "block %zu handed out twice", i);
		cr_assert_eq(((uint64_t *)got[i])[words - 1], i, "block %zu handed out twice", i);
		mova_free(got[i]);
	}
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}

Test(purge, double_free_of_a_parked_slot)
{
	double_free_parked(8192, 8);
}

Test(purge, double_free_of_a_parked_slot_straddling)
{
	/* one in four kept: the slot at the start of each 3-page run lives,
	 * so its first page stays and the slots straddling into the next
	 * pages are parked with their first bytes on a kept page */
	double_free_parked(3072, 4);
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
	/* counted from before the thread: kcompactd (started by the thread's
	 * thinning) may trim the bins before the call below does */
	uint64_t r0 = returned();
	cr_assert_eq(pthread_create(&t, NULL, thread_fill, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	mova_compact(mova_default_arena(), -1); /* trims the bins */
	cr_assert_gt(returned(), r0, "abandoned slabs were not purged");
	check_live();
	/* and the blocks can be freed from here */
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}

Test(purge, idle_slabs_decay_without_a_call)
{
	fill_and_thin(31);
	size_t before = resident();
	uint64_t r0 = returned();
	/* a timer's worth of work: a small malloc and free every 20 ms, for
	 * at most 8 s (decay_ms is 1 s: kcompactd asks once a second) */
	size_t now = before;
	for (int i = 0; i < 400 && now > before * 3 / 4; i++) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		void *p = mova_malloc(48);
		cr_assert(p);
		mova_free(p);
		now = resident();
	}
	cr_assert_lt(now, before * 3 / 4,
		     "resident %zu -> %zu bytes: the idle slabs did not decay (%lu pages returned)",
		     before, now, (unsigned long)(returned() - r0));
	check_live();
	for (size_t i = 0; i < N; i++)
		mova_free(obj[i]);
}
