/* SPDX-License-Identifier: MIT */
/*
 * test_lifecycle.c: arenas and threads coming and going (issue 17).
 *  - many_arenas_one_thread: a thread that uses more arenas than it keeps
 *    caches for (16) evicts the least recently used cache, never the
 *    default arena's, which the malloc fast path reaches without looking;
 *    evicting it left mova_malloc on freed memory (item 6);
 *  - many_arenas_two_threads: the same in two threads at once, every
 *    block patterned and checked: no two threads ever share a cache;
 *  - destroy_in_read_section_refuses: mova_arena_destroy inside a read
 *    section destroys nothing (item 10);
 *  - dead_arena_handles_never_reach_a_new_one: a handle of a destroyed
 *    arena is refused by every arena created after it, even when arena
 *    tags wrap (item 9; a tag made to come back at once through
 *    arena.c's test hook is ../unit/test_arena.c).
 * Only mova.h: these are the contract's behaviours.
 */
#ifdef MV_CR_STANDALONE /* ThreadSanitizer builds: see ../common/cr_standalone.c */
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mova.h"

TestSuite(lifecycle, .timeout = 240);

static mova_arena *small_arena(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = (size_t)64 << 20;
	return mova_arena_create(&cfg);
}

/* ------------------------------------------------------------ item 6 */

#define NR_ARENAS 24

static _Atomic unsigned long errors;

static void *use_many_arenas(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	mova_arena *ar[NR_ARENAS];
	mova_handle h[NR_ARENAS];
	for (int i = 0; i < NR_ARENAS; i++) {
		ar[i] = small_arena();
		if (!ar[i]) {
			atomic_fetch_add(&errors, 1);
			return NULL;
		}
		h[i] = MOVA_NULL;
	}
	enum { NB = 64 };
	unsigned char *blk[NB] = {0};
	size_t bsz[NB] = {0};
	for (int round = 0; round < 60; round++) {
		for (int i = 0; i < NR_ARENAS; i++) {
			/* a handle in arena i, then raw memory: every switch of
			 * arena may evict a cache, and malloc must still work */
			if (h[i])
				mova_hfree(ar[i], h[i]);
			h[i] = mova_halloc(ar[i], 24 + (size_t)(i * 8));
			unsigned char *q = mova_pin(ar[i], h[i]);
			if (!q) {
				atomic_fetch_add(&errors, 1);
				continue;
			}
			memset(q, (int)(seed + (unsigned)i), 24);
			mova_unpin(ar[i], h[i]);

			unsigned k = (unsigned)(round * NR_ARENAS + i) % NB;
			if (blk[k]) {
				for (size_t j = 0; j < bsz[k]; j++)
					if (blk[k][j] != (unsigned char)(seed ^ k ^ j)) {
						atomic_fetch_add(&errors, 1);
						break;
					}
				mova_free(blk[k]);
			}
			void *z = mova_malloc(0);
			if (!z)
				atomic_fetch_add(&errors, 1);
			mova_free(z);
			bsz[k] = 1 + (size_t)((round * 37 + i * 11) % 300);
			blk[k] = mova_malloc(bsz[k]);
			if (!blk[k]) {
				atomic_fetch_add(&errors, 1);
				continue;
			}
			for (size_t j = 0; j < bsz[k]; j++)
				blk[k][j] = (unsigned char)(seed ^ k ^ j);
		}
	}
	for (int i = 0; i < NR_ARENAS; i++) {
		const unsigned char *q = mova_pin(ar[i], h[i]);
		if (!q || q[0] != (unsigned char)(seed + (unsigned)i))
			atomic_fetch_add(&errors, 1);
		mova_unpin(ar[i], h[i]);
	}
	for (unsigned k = 0; k < NB; k++)
		mova_free(blk[k]);
	for (int i = 0; i < NR_ARENAS; i++)
		mova_arena_destroy(ar[i]);
	return NULL;
}

Test(lifecycle, many_arenas_one_thread)
{
	atomic_store(&errors, 0);
	use_many_arenas((void *)(uintptr_t)7);
	cr_assert_eq(atomic_load(&errors), 0, "%lu wrong blocks or failed calls",
		     atomic_load(&errors));
}

Test(lifecycle, many_arenas_two_threads)
{
	atomic_store(&errors, 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(
		    pthread_create(&t[i], NULL, use_many_arenas, (void *)(uintptr_t)(i * 91 + 3)),
		    0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&errors), 0, "%lu wrong blocks or failed calls",
		     atomic_load(&errors));
}

/* ------------------------------------------------------------ item 10 */

Test(lifecycle, destroy_in_read_section_refuses)
{
	mova_arena *a = small_arena();
	cr_assert_not_null(a);
	mova_handle h = mova_halloc(a, 100);
	cr_assert_neq(h, MOVA_NULL);
	/* an hfree with readers around defers the slot to a grace period: the
	 * batch that would run on a destroyed arena */
	mova_handle g = mova_halloc(a, 100);
	mova_read_lock();
	cr_assert_eq(mova_hfree(a, g), 0);
	mova_arena_destroy(a); /* refused: reported on stderr */
	/* the arena is whole: the object is still there */
	cr_assert_not_null(mova_deref(a, h));
	mova_read_unlock();
	char *p = mova_pin(a, h);
	cr_assert_not_null(p);
	memset(p, 1, 100);
	cr_assert_eq(mova_unpin(a, h), 0);
	cr_assert_eq(mova_hfree(a, h), 0);
	mova_arena_destroy(a); /* outside the section: destroyed */
}

/* ------------------------------------------------------------ item 9 */

Test(lifecycle, dead_arena_handles_never_reach_a_new_one)
{
	mova_arena *a = small_arena();
	cr_assert_not_null(a);
	mova_handle stale[4];
	for (int i = 0; i < 4; i++)
		stale[i] = mova_halloc(a, 64);
	mova_arena_destroy(a);
	unsigned long reached = 0;
	for (unsigned r = 0; r < 400; r++) {
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = 0;
		cfg.reserve_bytes = (size_t)8 << 20;
		cfg.pageblock_order = 6;
		mova_arena *b = mova_arena_create(&cfg);
		cr_assert_not_null(b, "arena %u: %s", r, strerror(errno));
		mova_handle fresh[4];
		for (int i = 0; i < 4; i++)
			fresh[i] = mova_halloc(b, 64);
		for (int i = 0; i < 4; i++) {
			if (mova_pin(b, stale[i])) {
				reached++;
				mova_unpin(b, stale[i]);
			}
			if (mova_hsize(b, stale[i]))
				reached++;
		}
		for (int i = 0; i < 4; i++)
			mova_hfree(b, fresh[i]);
		mova_arena_destroy(b);
	}
	cr_assert_eq(reached, 0, "a dead arena's handle reached a live object %lu times", reached);
}
