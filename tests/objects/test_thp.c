/* SPDX-License-Identifier: MIT */
/*
 * test_thp.c (issue 16): mova_compact(a, -1) on a fragmented arena leaves
 * the pageblocks it packed dense and on huge pages (advised as they
 * filled and kept, or collapsed before it returns: thp=madvise, the
 * default); with thp=never nothing is advised or collapsed. Whatever the kernel makes of the
 * advice, the counts agree with each other and every object keeps its
 * bytes. Where the system has THP disabled the policy is never whatever
 * was asked, and both cases check that.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../common/pinned.h"
#include "mova.h"

enum { N = 60000 }; /* 256 B..4 KiB each: about 120 MiB, 60 pageblocks */

static mova_handle h[N];

static size_t obj_size(unsigned i)
{
	return (size_t)256 << (i * 2654435761u >> 20) % 5;
}

/* fills the arena, frees 4 objects in 5, compacts; returns the arena */
static mova_arena *fragment_and_compact(unsigned thp, mova_stats *before, mova_stats *after)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0; /* the collapses counted are mova_compact's */
	cfg.thp = thp;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a);
	for (unsigned i = 0; i < N; i++) {
		h[i] = mova_halloc(a, obj_size(i));
		cr_assert(h[i]);
		pin_fill(a, h[i], (unsigned char)i);
	}
	for (unsigned i = 0; i < N; i++)
		if (i % 5) {
			cr_assert_eq(mova_hfree(a, h[i]), 0);
			h[i] = 0;
		}
	mova_stats_get(a, before);
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, after);
	for (unsigned i = 0; i < N; i += 5)
		pin_expect(a, h[i], (unsigned char)i, 64);
	return a;
}

static void consistent(const mova_stats *st)
{
	/* madvise mode: every advice counted when given and when taken back */
	if (st->thp_mode == MOVA_THP_MADVISE)
		cr_assert_eq(st->thp_advised - st->thp_unadvised, st->thp_advised_pageblocks);
	cr_assert_leq(st->thp_advised_pageblocks << st->pageblock_order,
		      st->populated_bytes / st->page_size);
}

static void release(mova_arena *a)
{
	for (unsigned i = 0; i < N; i += 5)
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	mova_arena_destroy(a);
}

/* mova_compact is asked for memory: with huge pages on, it leaves no more
 * resident than with them off (it collapses only the pageblocks it left
 * nearly full, and splits the huge pages of the others for their free
 * pages: giving back keeps huge pages whole only in the background, see
 * lib/giveback.c, MV_THP_FREE_DIV), and a second compaction collapses
 * nothing again: no split-and-collapse cycle, 2 MiB copied each time. */
Test(thp, compaction_gives_memory_back_first, .timeout = 120)
{
	mova_stats nb, na, before, after;
	mova_arena *n = fragment_and_compact(MOVA_THP_NEVER, &nb, &na);
	size_t never = na.resident_bytes;
	release(n);
	mova_arena *a = fragment_and_compact(MOVA_THP_MADVISE, &before, &after);
	consistent(&before);
	consistent(&after);
	if (after.thp_system == MOVA_THP_NEVER) {
		cr_assert_eq(after.thp_mode, MOVA_THP_NEVER);
		cr_assert_eq(after.thp_advised + after.thp_collapse + after.thp_collapse_failed, 0);
		release(a);
		return;
	}
	cr_log_info("resident %zu KiB (thp=never %zu KiB), live %zu KiB; %llu pageblocks advised",
		    after.resident_bytes >> 10, never >> 10, after.live_bytes >> 10,
		    (unsigned long long)after.thp_advised_pageblocks);
	cr_assert_leq(after.resident_bytes, never + never / 64 + (512u << 10),
		      "resident %zu with huge pages, %zu without", after.resident_bytes, never);
	mova_stats again;
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, &again);
	cr_assert_eq(again.thp_collapse + again.thp_collapse_failed,
		     after.thp_collapse + after.thp_collapse_failed, "collapsed again");
	cr_assert_leq(again.resident_bytes, after.resident_bytes + (2u << 20));
	consistent(&again);
	release(a);
}

/* An arena too small for pageblocks to be advised as they fill (8
 * resident at least): mova_compact collapses the ones it leaves full. */
Test(thp, compaction_collapses_full_pageblocks, .timeout = 60)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a);
	enum { M = 3000 }; /* 4 KiB each: 12 MiB, six pageblocks */
	for (unsigned i = 0; i < M; i++) {
		h[i] = mova_halloc(a, 4096);
		cr_assert(h[i]);
		pin_fill(a, h[i], (unsigned char)i);
	}
	mova_stats before, after;
	mova_stats_get(a, &before);
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, &after);
	consistent(&after);
	if (after.thp_mode == MOVA_THP_MADVISE) {
		cr_assert_eq(before.thp_advised, 0);
		uint64_t tried = after.thp_collapse + after.thp_collapse_failed;
		cr_log_info("%llu collapses tried, %llu done", (unsigned long long)tried,
			    (unsigned long long)after.thp_collapse);
		cr_assert_geq(tried, 2);
		cr_assert_eq(after.thp_advised_pageblocks, tried);
	}
	for (unsigned i = 0; i < M; i++) {
		pin_expect(a, h[i], (unsigned char)i, 64);
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	}
	mova_arena_destroy(a);
}

Test(thp, never_advises_nothing, .timeout = 120)
{
	mova_stats before, after;
	mova_arena *a = fragment_and_compact(MOVA_THP_NEVER, &before, &after);
	cr_assert_eq(after.thp_mode, MOVA_THP_NEVER);
	cr_assert_eq(after.thp_advised, 0);
	cr_assert_eq(after.thp_advised_pageblocks, 0);
	cr_assert_eq(after.thp_collapse + after.thp_collapse_failed, 0);
	consistent(&after);
	release(a);
}

/* A raw large allocation (malloc's) is not advised: a program may touch a
 * buffer sparsely, and a huge page faults 2 MiB at its first touch. A
 * handle object of the same size is. */
Test(thp, raw_large_not_advised, .timeout = 60)
{
	mova_stats before, after;
	mova_arena *d = mova_default_arena();
	mova_stats_get(d, &before);
	if (before.thp_mode != MOVA_THP_MADVISE)
		return; /* THP disabled here: nothing is advised anyway */
	enum { SIZE = 16 << 20 };
	char *p = mova_malloc(SIZE);
	cr_assert(p);
	for (size_t i = 0; i < SIZE; i += 4096)
		p[i] = 1;
	mova_stats_get(d, &after);
	cr_assert_eq(after.thp_advised, before.thp_advised, "%llu pageblocks advised for malloc",
		     (unsigned long long)(after.thp_advised - before.thp_advised));
	mova_free(p);

	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a);
	mova_stats_get(a, &before);
	mova_handle h1 = mova_halloc(a, SIZE);
	cr_assert(h1);
	pin_fill(a, h1, 7);
	mova_stats_get(a, &after);
	/* 8 pageblocks, all but the ends covered whole at least */
	cr_assert_geq(after.thp_advised - before.thp_advised, 6);
	consistent(&after);
	cr_assert_eq(mova_hfree(a, h1), 0);
	mova_arena_destroy(a);
}
