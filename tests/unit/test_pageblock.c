/* SPDX-License-Identifier: MIT */
/*
 * test_pageblock.c: the pageblock flags (lib/pageblock.h), 4 bits per
 * pageblock, 16 pageblocks to a 64-bit word. Single-threaded: migratetype
 * and skip bit are independent, neighbours are untouched, bits outside the
 * mask are ignored. Concurrent: threads that own different pageblocks of the
 * same words set their flags many times at once and no update is lost
 * (set_pfnblock_flags_mask is a compare-and-swap loop on the masked bits).
 */
#ifdef MV_CR_STANDALONE /* ThreadSanitizer builds: see ../common/cr_standalone.c */
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pageblock.h"

#define PBO 9u
#define NR_BLOCKS 64 /* four words */

static _Atomic uint64_t words[NR_BLOCKS / MV_PB_PER_WORD];
static struct mv_pageblock_flags pb = {words, PBO, NR_BLOCKS};

static size_t pfn_of(size_t blk, size_t off)
{
	return (blk << PBO) + off;
}

static void reset(void)
{
	for (size_t i = 0; i < MV_ARRAY_SIZE(words); i++)
		atomic_store(&words[i], 0);
}

Test(pageblock, layout)
{
	cr_assert_eq(MV_PB_PER_WORD, 16);
	cr_assert_eq(mv_pageblock_words(1), 1);
	cr_assert_eq(mv_pageblock_words(16), 1);
	cr_assert_eq(mv_pageblock_words(17), 2);
	cr_assert_eq(MIGRATETYPE_MASK, 7u);
	cr_assert_eq(PB_SKIP_MASK, 8u);
	reset();
	/* block 5 lives in bits 20..23 of word 0; every pfn of it reads the same */
	mv_set_pageblock_migratetype(&pb, pfn_of(5, 0), MIGRATE_RECLAIMABLE);
	mv_set_pageblock_skip(&pb, pfn_of(5, 100));
	cr_assert_eq(atomic_load(&words[0]), (uint64_t)(MIGRATE_RECLAIMABLE | 8) << 20);
	for (size_t off = 0; off < ((size_t)1 << PBO); off += 37) {
		cr_assert_eq(mv_get_pageblock_migratetype(&pb, pfn_of(5, off)),
			     MIGRATE_RECLAIMABLE);
		cr_assert(mv_get_pageblock_skip(&pb, pfn_of(5, off)));
	}
	/* block 17 is in the second word */
	mv_set_pageblock_migratetype(&pb, pfn_of(17, 3), MIGRATE_ISOLATE);
	cr_assert_eq(atomic_load(&words[1]), (uint64_t)MIGRATE_ISOLATE << 4);
}

Test(pageblock, migratetype_and_skip_are_independent)
{
	reset();
	for (size_t blk = 0; blk < NR_BLOCKS; blk++) {
		size_t pfn = pfn_of(blk, blk * 7 % ((size_t)1 << PBO));
		for (int mt = 0; mt < MIGRATE_TYPES; mt++) {
			for (int skip = 0; skip < 2; skip++) {
				mv_set_pageblock_migratetype(&pb, pfn, mt);
				if (skip)
					mv_set_pageblock_skip(&pb, pfn);
				else
					mv_clear_pageblock_skip(&pb, pfn);
				cr_assert_eq(mv_get_pageblock_migratetype(&pb, pfn), mt);
				cr_assert_eq(mv_get_pageblock_skip(&pb, pfn), skip);
				/* changing the type keeps the skip bit */
				int other = (mt + 3) % MIGRATE_TYPES;
				mv_set_pageblock_migratetype(&pb, pfn, other);
				cr_assert_eq(mv_get_pageblock_skip(&pb, pfn), skip,
					     "setting the migratetype changed the skip bit");
				mv_set_pageblock_migratetype(&pb, pfn, mt);
				/* changing the skip bit keeps the type */
				if (skip)
					mv_clear_pageblock_skip(&pb, pfn);
				else
					mv_set_pageblock_skip(&pb, pfn);
				cr_assert_eq(mv_get_pageblock_migratetype(&pb, pfn), mt,
					     "setting the skip bit changed the migratetype");
				cr_assert_eq(mv_get_pageblock_skip(&pb, pfn), !skip);
				cr_assert_eq(mv_get_pfnblock_flags_mask(&pb, pfn, 0xf),
					     (unsigned)mt | (!skip ? PB_SKIP_MASK : 0));
			}
		}
		mv_set_pageblock_migratetype(&pb, pfn, (int)(blk % MIGRATE_TYPES));
		if (blk % 3 == 0)
			mv_set_pageblock_skip(&pb, pfn);
		else
			mv_clear_pageblock_skip(&pb, pfn);
	}
	/* every block kept what was last written to it: neighbours untouched */
	for (size_t blk = 0; blk < NR_BLOCKS; blk++) {
		cr_assert_eq(mv_get_pageblock_migratetype(&pb, pfn_of(blk, 1)),
			     (int)(blk % MIGRATE_TYPES), "block %zu", blk);
		cr_assert_eq(mv_get_pageblock_skip(&pb, pfn_of(blk, 2)), blk % 3 == 0, "block %zu",
			     blk);
	}
}

Test(pageblock, mask_limits_the_write)
{
	reset();
	mv_set_pfnblock_flags_mask(&pb, pfn_of(3, 0), 0xf, MIGRATETYPE_MASK);
	cr_assert_eq(mv_get_pageblock_migratetype(&pb, pfn_of(3, 0)), 7);
	cr_assert_not(mv_get_pageblock_skip(&pb, pfn_of(3, 0)), "a bit outside the mask was set");
	mv_set_pfnblock_flags_mask(&pb, pfn_of(3, 0), 0xf, PB_SKIP_MASK);
	mv_set_pfnblock_flags_mask(&pb, pfn_of(3, 0), 0, 1);
	cr_assert_eq(mv_get_pfnblock_flags_mask(&pb, pfn_of(3, 0), 0xf), 0xeu);
	for (size_t blk = 0; blk < NR_BLOCKS; blk++)
		if (blk != 3)
			cr_assert_eq(mv_get_pfnblock_flags_mask(&pb, pfn_of(blk, 0), 0xf), 0,
				     "block %zu changed", blk);
	/* the last block of the last word, at the top bits */
	mv_set_pfnblock_flags_mask(&pb, pfn_of(NR_BLOCKS - 1, 511), 0xf, 0xf);
	cr_assert_eq(atomic_load(&words[MV_ARRAY_SIZE(words) - 1]), (uint64_t)0xf << 60);
}

/* ------------------------------------------------------------ concurrency */

#define NR_THREADS 4
#define ITERS 200000

struct worker {
	pthread_t tid;
	unsigned id;
	uint64_t rng;
	unsigned lost; /* reads that did not return our own last write */
	uint8_t mt[NR_BLOCKS], skip[NR_BLOCKS];
};

static struct worker workers[NR_THREADS];
static pthread_barrier_t start_line;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* thread id owns blocks id, id + 4, id + 8, ...: four owners in every word */
static void *hammer(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&start_line);
	for (unsigned i = 0; i < ITERS; i++) {
		uint64_t r = xorshift(&w->rng);
		size_t blk = w->id + NR_THREADS * (size_t)(r % (NR_BLOCKS / NR_THREADS));
		size_t pfn = pfn_of(blk, (size_t)(r >> 20) % ((size_t)1 << PBO));
		switch ((r >> 40) % 3) {
		case 0:
			w->mt[blk] = (uint8_t)((r >> 44) % MIGRATE_TYPES);
			mv_set_pageblock_migratetype(&pb, pfn, w->mt[blk]);
			break;
		case 1:
			w->skip[blk] = (r >> 44) & 1;
			if (w->skip[blk])
				mv_set_pageblock_skip(&pb, pfn);
			else
				mv_clear_pageblock_skip(&pb, pfn);
			break;
		default:
			w->mt[blk] = (uint8_t)((r >> 44) % MIGRATE_TYPES);
			w->skip[blk] = (r >> 50) & 1;
			mv_set_pfnblock_flags_mask(&pb, pfn, w->mt[blk] | (w->skip[blk] << 3), 0xf);
			break;
		}
		if (mv_get_pageblock_migratetype(&pb, pfn) != w->mt[blk] ||
		    mv_get_pageblock_skip(&pb, pfn) != w->skip[blk])
			w->lost++;
	}
	return NULL;
}

Test(pageblock, concurrent_writers_share_words, .timeout = 120)
{
	reset();
	pthread_barrier_init(&start_line, NULL, NR_THREADS);
	for (unsigned t = 0; t < NR_THREADS; t++) {
		memset(&workers[t], 0, sizeof workers[t]);
		workers[t].id = t;
		workers[t].rng = 0x9e3779b97f4a7c15ull * (t + 1);
		cr_assert_eq(pthread_create(&workers[t].tid, NULL, hammer, &workers[t]), 0);
	}
	for (unsigned t = 0; t < NR_THREADS; t++)
		pthread_join(workers[t].tid, NULL);
	pthread_barrier_destroy(&start_line);
	for (unsigned t = 0; t < NR_THREADS; t++) {
		cr_assert_eq(workers[t].lost, 0, "thread %u: %u updates lost", t, workers[t].lost);
		for (size_t blk = t; blk < NR_BLOCKS; blk += NR_THREADS) {
			cr_assert_eq(mv_get_pageblock_migratetype(&pb, pfn_of(blk, 0)),
				     workers[t].mt[blk], "thread %u block %zu: migratetype lost", t,
				     blk);
			cr_assert_eq(mv_get_pageblock_skip(&pb, pfn_of(blk, 0)),
				     workers[t].skip[blk], "thread %u block %zu: skip bit lost", t,
				     blk);
		}
	}
}
