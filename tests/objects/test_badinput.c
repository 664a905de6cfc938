/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c: the bad inputs of docs/RELIABILITY.md §1 that no other
 * test asserted, through the public API only (include/mova.h):
 *
 *   - mova_compact: an order above MOVA_MAX_PAGE_ORDER, orders below -1,
 *     calls inside a read section;
 *   - mova_alloc_contig / mova_free_contig: nr_pages 0, a NULL arena, a
 *     read section, more than 64 pageblocks, another arena's range and
 *     pointers in no arena;
 *   - mova_realloc / mova_usable_size of pointers realloc must refuse: not
 *     from mova, interior pointers of small and large blocks, freed blocks
 *     (NULL with errno EINVAL, 0, the first report's message, and the block
 *     left as it was);
 *   - mova_config_check: the exact message of every bad field;
 *   - MOVA_CONF: the default arena is configured once per process, so each
 *     setting is tried in a child process, conf_probe (built next to this
 *     program), whose stderr must hold exactly the expected warnings and
 *     whose stdout reports what the default arena became.
 *
 * Arenas are small (256 MiB, 1 MiB pageblocks, no kcompactd) so that the
 * whole program takes a few seconds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mova.h"
#include "../common/statstext.h"
#include "../common/pattern.h"
#include "../common/capture.h"
#include "../common/probe.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

TestSuite(badinput, .timeout = 60);

/* ------------------------------------------------------------ helpers */

/* 256 MiB reserved, 1 MiB pageblocks, no kcompactd */
static mova_arena *small_arena(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 256 * MiB;
	cfg.pageblock_order = 8;
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create: %s", strerror(errno));
	return a;
}

static mova_stats stats(mova_arena *a)
{
	mova_stats st;
	mova_stats_get(a, &st);
	return st;
}

/* pageblocks holding movable objects */
static size_t occupied_pageblocks(mova_arena *a)
{
	static mova_pageblock_info info[256];
	size_t n = mova_pageblocks(a, info, 256), k = 0;
	cr_assert_leq(n, 256);
	for (size_t b = 0; b < n; b++)
		k += info[b].movable_pages > 0;
	return k;
}

/* Fragment an arena: n objects of OBJ_SIZE bytes, each holding its
 * pattern, then all but every fourth freed; h gets the survivors, and
 * their number is returned. */
#define OBJ_SIZE 512
static size_t fragment(mova_arena *a, mova_handle *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h[i] = mova_halloc(a, OBJ_SIZE);
		cr_assert_neq(h[i], MOVA_NULL, "halloc #%zu: errno %d", i, errno);
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 4) {
			cr_assert_eq(mova_hfree(a, h[i]), 0);
			continue;
		}
		void *p = mova_pin(a, h[i]);
		cr_assert_not_null(p);
		fill(p, OBJ_SIZE, h[i]);
		cr_assert_eq(mova_unpin(a, h[i]), 0);
		h[kept++] = h[i];
	}
	return kept;
}

static void verify_objects(mova_arena *a, const mova_handle *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const void *p = mova_pin(a, h[i]);
		cr_assert_not_null(p, "object %zu lost: errno %d", i, errno);
		size_t bad = check(p, OBJ_SIZE, h[i]);
		cr_assert_eq(bad, OBJ_SIZE, "object %zu corrupt at byte %zu", i, bad);
		cr_assert_eq(mova_unpin(a, h[i]), 0);
	}
}

static void free_objects(mova_arena *a, const mova_handle *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mova_hfree(a, h[i]), 0);
}

/* ------------------------------------------------------------ mova_compact */

Test(badinput, compact_order_above_max_is_einval)
{
	mova_arena *a = small_arena();
	static mova_handle h[8192];
	size_t n = fragment(a, h, 8192);
	mova_stats st0 = stats(a);
	const int orders[] = {MOVA_MAX_PAGE_ORDER + 1, MOVA_MAX_PAGE_ORDER + 2, 64, INT_MAX};
	for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
		cr_assert_eq(mova_compact(a, orders[i]), EINVAL, "order %d", orders[i]);
	/* refused before anything ran */
	mova_stats st1 = stats(a);
	cr_assert_eq(st1.compact_stall, st0.compact_stall);
	cr_assert_eq(st1.pgmigrate_success, st0.pgmigrate_success);
	cr_assert_eq(st1.compact_migrate_scanned, st0.compact_migrate_scanned);
	/* the highest valid order is not refused */
	int rc = mova_compact(a, MOVA_MAX_PAGE_ORDER);
	cr_assert(rc >= 0 && rc <= MOVA_COMPACT_CONTENDED, "order %d: %d", MOVA_MAX_PAGE_ORDER, rc);
	verify_objects(a, h, n);
	free_objects(a, h, n);
	mova_arena_destroy(a);
}

Test(badinput, compact_order_below_minus_one_compacts_whole_arena)
{
	/* two arenas fragmented alike: -1 and -7 must leave them alike */
	static mova_handle h1[16384], h7[16384];
	mova_arena *a1 = small_arena(), *a7 = small_arena();
	size_t n1 = fragment(a1, h1, 16384), n7 = fragment(a7, h7, 16384);
	cr_assert_eq(n1, n7);
	size_t occ0 = occupied_pageblocks(a7);
	mova_stats st0 = stats(a7);
	cr_assert_eq(mova_compact(a1, -1), 0);
	cr_assert_eq(mova_compact(a7, -7), 0, "order -7 is a whole-arena compaction");
	mova_stats st1 = stats(a7);
	size_t occ1 = occupied_pageblocks(a7);
	cr_log_info("order -7: %zu -> %zu pageblocks hold objects, %llu migrated, %llu pages "
		    "returned",
		    occ0, occ1, (unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success),
		    (unsigned long long)(st1.pages_returned - st0.pages_returned));
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success, "nothing migrated");
	cr_assert_lt(occ1, occ0, "no pageblock emptied (%zu -> %zu)", occ0, occ1);
	cr_assert_eq(occ1, occupied_pageblocks(a1), "order -7 packed differently from order -1");
	verify_objects(a7, h7, n7);
	/* any order below zero: 0 */
	const int orders[] = {-2, -100, INT_MIN};
	for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
		cr_assert_eq(mova_compact(a7, orders[i]), 0, "order %d", orders[i]);
	verify_objects(a7, h7, n7);
	free_objects(a1, h1, n1);
	free_objects(a7, h7, n7);
	mova_arena_destroy(a1);
	mova_arena_destroy(a7);
}

Test(badinput, compact_in_read_section_is_edeadlk)
{
	mova_arena *a = small_arena();
	static mova_handle h[8192];
	size_t n = fragment(a, h, 8192);
	mova_read_lock();
	const void *p = mova_deref(a, h[0]);
	cr_assert_not_null(p);
	mova_stats st0 = stats(a);
	const int orders[] = {-1, 3, 0, MOVA_MAX_PAGE_ORDER, -7};
	for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
		cr_assert_eq(mova_compact(a, orders[i]), EDEADLK, "order %d in a read section",
			     orders[i]);
	/* nested sections too */
	mova_read_lock();
	cr_assert_eq(mova_compact(a, -1), EDEADLK);
	cr_assert_eq(mova_compact(a, 3), EDEADLK);
	mova_read_unlock();
	cr_assert_eq(mova_compact(a, 3), EDEADLK, "still inside the outer section");
	/* an order out of range is refused as such first */
	cr_assert_eq(mova_compact(a, MOVA_MAX_PAGE_ORDER + 1), EINVAL);
	mova_stats st1 = stats(a);
	cr_assert_eq(st1.compact_stall, st0.compact_stall);
	cr_assert_eq(st1.pgmigrate_success, st0.pgmigrate_success, "moved inside a section");
	cr_assert_eq(mova_deref(a, h[0]), p);
	cr_assert_eq(check(p, OBJ_SIZE, h[0]), OBJ_SIZE);
	mova_read_unlock();
	/* outside the section both work */
	int rc = mova_compact(a, 3);
	cr_assert(rc >= 0 && rc <= MOVA_COMPACT_CONTENDED, "order 3: %d", rc);
	cr_assert_eq(mova_compact(a, -1), 0);
	verify_objects(a, h, n);
	free_objects(a, h, n);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ contiguous */

Test(badinput, alloc_contig_bad_arguments)
{
	mova_arena *a = small_arena();
	uint64_t pgalloc0 = stats(a).pgalloc;
	errno = 0;
	cr_assert_null(mova_alloc_contig(a, 0));
	cr_assert_eq(errno, EINVAL, "nr_pages 0: errno %d", errno);
	const size_t nrs[] = {0, 1, 256, SIZE_MAX};
	for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
		errno = 0;
		cr_assert_null(mova_alloc_contig(NULL, nrs[i]));
		cr_assert_eq(errno, EINVAL, "NULL arena, %zu pages: errno %d", nrs[i], errno);
	}
	/* the arena is untouched and works */
	cr_assert_eq(stats(a).pgalloc, pgalloc0, "pages were taken by a refused request");
	void *p = mova_alloc_contig(a, 3);
	cr_assert_not_null(p, "errno %d", errno);
	memset(p, 0x5a, 3 * MOVA_PAGE_SIZE);
	cr_assert_eq(mova_free_contig(a, p, 3), 0);
	mova_arena_destroy(a);
}

Test(badinput, alloc_contig_in_read_section_is_edeadlk)
{
	mova_arena *a = small_arena();
	static mova_handle h[4096];
	size_t n = fragment(a, h, 4096);
	mova_stats st0 = stats(a);
	mova_read_lock();
	const size_t nrs[] = {1, 37, 256, 1024};
	for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
		errno = 0;
		cr_assert_null(mova_alloc_contig(a, nrs[i]), "%zu pages in a read section", nrs[i]);
		cr_assert_eq(errno, EDEADLK, "%zu pages: errno %d", nrs[i], errno);
	}
	mova_read_lock();
	errno = 0;
	cr_assert_null(mova_alloc_contig(a, 1));
	cr_assert_eq(errno, EDEADLK, "nested section: errno %d", errno);
	mova_read_unlock();
	mova_read_unlock();
	mova_stats st1 = stats(a);
	cr_assert_eq(st1.pgmigrate_success, st0.pgmigrate_success);
	cr_assert_eq(st1.pgalloc, st0.pgalloc, "pages were taken by a refused request");
	void *p = mova_alloc_contig(a, 37);
	cr_assert_not_null(p, "outside the section: errno %d", errno);
	memset(p, 0x33, 37 * MOVA_PAGE_SIZE);
	verify_objects(a, h, n);
	cr_assert_eq(mova_free_contig(a, p, 37), 0);
	free_objects(a, h, n);
	mova_arena_destroy(a);
}

static void contig_limit(unsigned pageblock_order, size_t reserve)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = reserve;
	cfg.pageblock_order = pageblock_order;
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create: %s", strerror(errno));
	size_t pb = (size_t)1 << pageblock_order;
	const size_t nrs[] = {64 * pb + 1, 65 * pb, 128 * pb, SIZE_MAX / MOVA_PAGE_SIZE, SIZE_MAX};
	for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
		errno = 0;
		cr_assert_null(mova_alloc_contig(a, nrs[i]), "order %u: %zu pages", pageblock_order,
			       nrs[i]);
		cr_assert_eq(errno, ENOMEM, "order %u: %zu pages: errno %d", pageblock_order,
			     nrs[i], errno);
	}
	/* exactly 64 pageblocks is the limit, not past it */
	unsigned char *p = mova_alloc_contig(a, 64 * pb);
	cr_assert_not_null(p, "order %u: 64 pageblocks: errno %d", pageblock_order, errno);
	p[0] = 1;
	p[64 * pb * MOVA_PAGE_SIZE - 1] = 2;
	cr_assert_eq(mova_free_contig(a, p, 64 * pb), 0);
	mova_arena_destroy(a);
}

Test(badinput, alloc_contig_over_64_pageblocks_is_enomem)
{
	contig_limit(8, 256 * MiB); /* 16,385 pages */
	contig_limit(9, 256 * MiB); /* 32,769 pages */
}

Test(badinput, free_contig_foreign_range_is_einval)
{
	mova_arena *a = small_arena(), *b = small_arena();
	unsigned char *pa = mova_alloc_contig(a, 5);
	unsigned char *pb = mova_alloc_contig(b, 5);
	cr_assert_not_null(pa);
	cr_assert_not_null(pb);
	memset(pa, 0xa1, 5 * MOVA_PAGE_SIZE);
	memset(pb, 0xb2, 5 * MOVA_PAGE_SIZE);
	/* each arena refuses the other's range, in every shape */
	cr_assert_eq(mova_free_contig(b, pa, 5), EINVAL, "b freed a's range");
	cr_assert_eq(mova_free_contig(a, pb, 5), EINVAL, "a freed b's range");
	cr_assert_eq(mova_free_contig(b, pa + MOVA_PAGE_SIZE, 4), EINVAL);
	cr_assert_eq(mova_free_contig(a, pb, 1), EINVAL);
	/* the default arena's range too */
	unsigned char *pd = mova_alloc_contig(mova_default_arena(), 2);
	cr_assert_not_null(pd);
	cr_assert_eq(mova_free_contig(a, pd, 2), EINVAL);
	/* pointers in no arena */
	static _Alignas(4096) unsigned char data[2 * 4096];
	_Alignas(4096) unsigned char on_stack[4096];
	void *g = aligned_alloc(4096, 4096);
	cr_assert_not_null(g);
	memset(g, 0x77, 4096);
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	void *const outside[] = {
	    data, on_stack, g, m, NULL, (void *)(uintptr_t)4096, (void *)(uintptr_t)-4096};
	for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
		for (size_t nr = 1; nr <= 2; nr++) {
			cr_assert_eq(mova_free_contig(a, outside[i], nr), EINVAL, "%p, %zu pages",
				     outside[i], nr);
			cr_assert_eq(mova_free_contig(mova_default_arena(), outside[i], nr), EINVAL,
				     "default arena: %p, %zu pages", outside[i], nr);
		}
	for (size_t i = 0; i < 4096; i++)
		cr_assert_eq(((unsigned char *)g)[i], 0x77, "glibc block written");
	free(g);
	munmap(m, 4096);
	/* the ranges are still allocated, with their bytes: their own arena frees them */
	for (size_t i = 0; i < 5 * MOVA_PAGE_SIZE; i += 511) {
		cr_assert_eq(pa[i], 0xa1);
		cr_assert_eq(pb[i], 0xb2);
	}
	cr_assert_eq(mova_free_contig(a, pa, 5), 0);
	cr_assert_eq(mova_free_contig(b, pb, 5), 0);
	cr_assert_eq(mova_free_contig(mova_default_arena(), pd, 2), 0);
	mova_arena_destroy(a);
	mova_arena_destroy(b);
}

/* ------------------------------------------------------------ realloc */

Test(badinput, realloc_foreign_pointer_is_einval)
{
	char on_stack[64];
	memset(on_stack, 0x22, sizeof on_stack);
	char expect[256];
	snprintf(expect, sizeof expect,
		 "mova: realloc: pointer %p was not handed out by mova or was already freed; "
		 "left alone (further reports are counted, not printed)\n",
		 (void *)on_stack);
	/* the first bad pointer of the process (each Criterion test runs in a
	 * process of its own) is reported on stderr */
	struct capture c;
	capture_begin(&c);
	errno = 0;
	void *q = mova_realloc(on_stack, 100);
	int err = errno;
	char got[1024];
	capture_end(&c, got, sizeof got);
	cr_assert_null(q, "realloc of a stack pointer succeeded");
	cr_assert_eq(err, EINVAL, "errno %d", err);
	cr_assert_str_eq(got, expect);
	cr_assert_eq(mova_usable_size(on_stack), 0);
	for (size_t i = 0; i < sizeof on_stack; i++)
		cr_assert_eq(on_stack[i], 0x22);
	/* glibc's heap and static data: refused the same way, silently now */
	char *g = malloc(100);
	cr_assert_not_null(g);
	memset(g, 0x11, 100);
	static char data[256];
	void *const foreign[] = {on_stack + 16, g, g + 16, data, data + 16};
	const size_t sizes[] = {1, 100, 100 * KiB};
	for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			capture_begin(&c);
			errno = 0;
			q = mova_realloc(foreign[i], sizes[k]);
			err = errno;
			capture_end(&c, got, sizeof got);
			cr_assert_null(q, "realloc(%p, %zu) succeeded", foreign[i], sizes[k]);
			cr_assert_eq(err, EINVAL, "realloc(%p, %zu): errno %d", foreign[i],
				     sizes[k], err);
			cr_assert_str_empty(got, "a second report was printed: %s", got);
			cr_assert_eq(mova_usable_size(foreign[i]), 0);
		}
	for (int i = 0; i < 100; i++)
		cr_assert_eq(g[i], 0x11, "mova_realloc wrote into a glibc block");
	free(g);
}

Test(badinput, realloc_interior_of_large_block_is_einval)
{
	const size_t sizes[] = {16 * KiB + 1, 100 * KiB, 3 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		char *p = mova_malloc(size);
		cr_assert_not_null(p);
		fill(p, size, size);
		size_t u = mova_usable_size(p);
		cr_assert_geq(u, size);
		const size_t offs[] = {1, 16, 4096, 8192, size / 2, size - 1};
		for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
			char *ip = p + offs[k];
			cr_assert_eq(mova_usable_size(ip), 0, "usable_size(p + %zu) of %zu B",
				     offs[k], size);
			const size_t to[] = {8, size / 2, size, 2 * size};
			for (size_t t = 0; t < sizeof to / sizeof to[0]; t++) {
				errno = 0;
				void *q = mova_realloc(ip, to[t]);
				cr_assert_null(q, "realloc(p + %zu, %zu) of %zu B = %p", offs[k],
					       to[t], size, q);
				cr_assert_eq(errno, EINVAL, "realloc(p + %zu, %zu): errno %d",
					     offs[k], to[t], errno);
			}
		}
		cr_assert_eq(mova_usable_size(p), u, "the block changed");
		cr_assert_eq(check(p, size, size), size, "the block's bytes changed");
		char *q = mova_realloc(p, size + 4096);
		cr_assert_not_null(q, "the block itself can still be resized");
		cr_assert_eq(check(q, size, size), size);
		mova_free(q);
	}
}

Test(badinput, realloc_interior_of_small_block_is_einval)
{
	const size_t sizes[] = {16, 48, 64, 100, 1000, 5000, 16 * KiB};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		/* the block between two neighbours of its class */
		char *b[3];
		for (int k = 0; k < 3; k++) {
			b[k] = mova_malloc(size);
			cr_assert_not_null(b[k]);
			fill(b[k], mova_usable_size(b[k]), (uint64_t)(uintptr_t)b[k]);
		}
		char *p = b[1];
		size_t u = mova_usable_size(p);
		cr_assert_geq(u, size);
		const size_t offs[] = {1, 8, 16, u / 2, u - 1};
		for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
			if (offs[k] == 0 || offs[k] >= u)
				continue;
			char *ip = p + offs[k];
			cr_assert_eq(mova_usable_size(ip), 0, "usable_size(p + %zu) of %zu B",
				     offs[k], size);
			/* what fitted the slot used to be handed back as it was */
			const size_t to[] = {1, u - offs[k], u, 2 * u + 1};
			for (size_t t = 0; t < sizeof to / sizeof to[0]; t++) {
				errno = 0;
				void *q = mova_realloc(ip, to[t]);
				cr_assert_null(q, "realloc(p + %zu, %zu) of %zu B = %p", offs[k],
					       to[t], size, q);
				cr_assert_eq(errno, EINVAL, "realloc(p + %zu, %zu): errno %d",
					     offs[k], to[t], errno);
			}
		}
		for (int k = 0; k < 3; k++) {
			size_t uk = mova_usable_size(b[k]);
			cr_assert_eq(check(b[k], uk, (uint64_t)(uintptr_t)b[k]), uk,
				     "%zu B: block %d changed", size, k);
		}
		cr_assert_eq(mova_usable_size(p), u);
		char *q = mova_realloc(p, 3 * u);
		cr_assert_not_null(q);
		cr_assert_eq(check(q, u, (uint64_t)(uintptr_t)p), u);
		mova_free(q);
		mova_free(b[0]);
		mova_free(b[2]);
	}
	/* an aligned block's interior, at the alignment */
	char *al = mova_aligned_alloc(64, 100);
	cr_assert_not_null(al);
	cr_assert_eq(mova_usable_size(al + 64), 0);
	errno = 0;
	cr_assert_null(mova_realloc(al + 64, 60));
	cr_assert_eq(errno, EINVAL);
	mova_free(al);
}

Test(badinput, realloc_freed_small_block_is_einval)
{
	const size_t sizes[] = {16, 48, 64, 100, 1000, 5000, 16 * KiB};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		/* a live neighbour keeps the slab */
		char *keep = mova_malloc(size);
		cr_assert_not_null(keep);
		fill(keep, size, 41);
		char *p = mova_malloc(size);
		cr_assert_not_null(p);
		size_t u = mova_usable_size(p);
		fill(p, u, 42);
		mova_free(p);
		cr_assert_eq(mova_usable_size(p), 0, "usable_size of a freed %zu B block", size);
		const size_t to[] = {1, size, u, 2 * u + 1};
		for (size_t t = 0; t < sizeof to / sizeof to[0]; t++) {
			errno = 0;
			void *q = mova_realloc(p, to[t]);
			cr_assert_null(q, "realloc(freed %zu B block, %zu) = %p", size, to[t], q);
			cr_assert_eq(errno, EINVAL, "realloc(freed %zu B, %zu): errno %d", size,
				     to[t], errno);
		}
		/* the slot was not freed again: blocks of its class come back once each */
		enum { N = 16 };
		char *n[N];
		for (int k = 0; k < N; k++) {
			n[k] = mova_malloc(size);
			cr_assert_not_null(n[k]);
			for (int j = 0; j < k; j++)
				cr_assert_neq(n[j], n[k], "%zu B: %p handed out twice", size,
					      (void *)n[k]);
			fill(n[k], size, (uint64_t)k);
		}
		for (int k = 0; k < N; k++) {
			cr_assert_eq(check(n[k], size, (uint64_t)k), size);
			mova_free(n[k]);
		}
		cr_assert_eq(check(keep, size, 41), size);
		mova_free(keep);
	}
}

Test(badinput, realloc_freed_large_block_is_einval)
{
	const size_t sizes[] = {16 * KiB + 1, 100 * KiB, 300 * KiB, 3 * MiB};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		char *keep = mova_malloc(size);
		cr_assert_not_null(keep);
		fill(keep, size, 43);
		char *p = mova_malloc(size);
		cr_assert_not_null(p);
		mova_free(p);
		cr_assert_eq(mova_usable_size(p), 0, "usable_size of a freed %zu B block", size);
		const size_t to[] = {100, size, 2 * size};
		for (size_t t = 0; t < sizeof to / sizeof to[0]; t++) {
			errno = 0;
			void *q = mova_realloc(p, to[t]);
			cr_assert_null(q, "realloc(freed %zu B block, %zu) = %p", size, to[t], q);
			cr_assert_eq(errno, EINVAL, "realloc(freed %zu B, %zu): errno %d", size,
				     to[t], errno);
		}
		cr_assert_eq(check(keep, size, 43), size);
		mova_free(keep);
	}
}

/* ------------------------------------------------------------ configuration */

enum field {
	F_RESERVE,
	F_PBO,
	F_KCOMPACTD,
	F_PROACTIVENESS,
	F_EXTFRAG,
	F_BUDGET,
	F_INTERVAL,
	F_CMA,
	F_HANDLES,
	F_LIMIT,
	F_MPOL,
	F_NUMA,
};

struct bad_field {
	enum field f;
	uint64_t value;
	uint64_t nodes;   /* mempolicy_nodes, for F_MPOL */
	unsigned pbo;     /* 0: the default */
	size_t reserve;   /* 0: the default */
	const char *says; /* the whole message */
};

static const struct bad_field bad_fields[] = {
    {F_PBO, 3, 0, 0, 0, "pageblock_order must be 0 (default) or 6 .. 10"},
    {F_PBO, 5, 0, 0, 0, "pageblock_order must be 0 (default) or 6 .. 10"},
    {F_PBO, 11, 0, 0, 0, "pageblock_order is out of range (0 .. 10)"},
    {F_PROACTIVENESS, 101, 0, 0, 0, "proactiveness is out of range (0 .. 100)"},
    {F_KCOMPACTD, 2, 0, 0, 0, "kcompactd is out of range (0 .. 1)"},
    {F_KCOMPACTD, (uint64_t)-1, 0, 0, 0, "kcompactd is out of range (0 .. 1)"},
    {F_EXTFRAG, 1001, 0, 0, 0, "extfrag_threshold is out of range (0 .. 1000)"},
    {F_BUDGET, 0, 0, 0, 0, "kcompactd_cpu_budget is out of range (1 .. 100)"},
    {F_BUDGET, 101, 0, 0, 0, "kcompactd_cpu_budget is out of range (1 .. 100)"},
    {F_INTERVAL, 5, 0, 0, 0, "kcompactd_interval_ms is out of range (10 .. 60000)"},
    {F_INTERVAL, 60001, 0, 0, 0, "kcompactd_interval_ms is out of range (10 .. 60000)"},
    {F_RESERVE, 8 * MiB - 1, 0, 0, 0, "reserve_bytes must hold at least 4 pageblocks"},
    {F_RESERVE, 1 * MiB - 4096, 0, 6, 0, "reserve_bytes must hold at least 4 pageblocks"},
    {F_RESERVE, 512 * GiB + 4096, 0, 0, 0, "reserve_bytes is out of range (0 .. 549755813888)"},
    {F_RESERVE, SIZE_MAX, 0, 0, 0, "reserve_bytes is out of range (0 .. 549755813888)"},
    {F_CMA, 32 * MiB + 4096, 0, 6, 64 * MiB, "cma_bytes must be at most half of reserve_bytes"},
    {F_CMA, 257 * GiB, 0, 0, 0, "cma_bytes must be at most half of reserve_bytes"},
    {F_CMA, 513 * GiB, 0, 0, 0, "cma_bytes is out of range (0 .. 549755813888)"},
    {F_HANDLES, 5, 0, 0, 0, "max_handles must be 0 (default) or at least 1024"},
    {F_HANDLES, 1023, 0, 0, 0, "max_handles must be 0 (default) or at least 1024"},
    {F_HANDLES, UINT32_MAX, 0, 0, 0, "max_handles is out of range (0 .. 4294967294)"},
    {F_HANDLES, SIZE_MAX, 0, 0, 0, "max_handles is out of range (0 .. 4294967294)"},
    {F_LIMIT, 2 * 2 * MiB - 1, 0, 0, 0,
     "limit_bytes must be 0 (no budget) or at least two pageblocks"},
    {F_MPOL, (uint64_t)-1, 0, 0, 0, "mempolicy is out of range (0 .. 65535)"},
    {F_MPOL, 7, 1, 0, 0, "mempolicy/mempolicy_nodes: unknown mode"},
    {F_MPOL, 100, 1, 0, 0, "mempolicy/mempolicy_nodes: unknown mode"},
    {F_MPOL, MOVA_MPOL_BIND, 0, 0, 0,
     "mempolicy/mempolicy_nodes: the mode needs at least one node"},
    {F_MPOL, MOVA_MPOL_DEFAULT, 1, 0, 0, "mempolicy/mempolicy_nodes: MPOL_DEFAULT takes no nodes"},
    {F_NUMA, 65, 0, 0, 0, "numa_nodes is out of range (0 .. 64)"},
    {F_NUMA, 1000, 0, 0, 0, "numa_nodes is out of range (0 .. 64)"},
};

static void set_field(mova_config *cfg, const struct bad_field *b)
{
	if (b->pbo)
		cfg->pageblock_order = b->pbo;
	if (b->reserve)
		cfg->reserve_bytes = b->reserve;
	switch (b->f) {
	case F_RESERVE: cfg->reserve_bytes = (size_t)b->value; break;
	case F_PBO: cfg->pageblock_order = (unsigned)b->value; break;
	case F_KCOMPACTD: cfg->kcompactd = (int)b->value; break;
	case F_PROACTIVENESS: cfg->proactiveness = (unsigned)b->value; break;
	case F_EXTFRAG: cfg->extfrag_threshold = (unsigned)b->value; break;
	case F_BUDGET: cfg->kcompactd_cpu_budget = (unsigned)b->value; break;
	case F_INTERVAL: cfg->kcompactd_interval_ms = (unsigned)b->value; break;
	case F_CMA: cfg->cma_bytes = (size_t)b->value; break;
	case F_HANDLES: cfg->max_handles = (size_t)b->value; break;
	case F_LIMIT: cfg->limit_bytes = (size_t)b->value; break;
	case F_MPOL:
		cfg->mempolicy = (int)b->value;
		cfg->mempolicy_nodes = b->nodes;
		break;
	case F_NUMA: cfg->numa_nodes = (unsigned)b->value; break;
	}
}

Test(badinput, config_bad_field_messages)
{
	for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
		const struct bad_field *b = &bad_fields[i];
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = 0;
		set_field(&cfg, b);
		const char *msg = NULL;
		cr_assert_eq(mova_config_check(&cfg, &msg), EINVAL, "case %zu (%s) accepted", i,
			     b->says);
		cr_assert_not_null(msg, "case %zu: no message", i);
		cr_assert_str_eq(msg, b->says, "case %zu", i);
		errno = 0;
		cr_assert_null(mova_arena_create(&cfg), "case %zu (%s): arena created", i, b->says);
		cr_assert_eq(errno, EINVAL, "case %zu: errno %d", i, errno);
	}
}

Test(badinput, config_max_handles_uint32_max)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = 256 * MiB;
	cfg.pageblock_order = 8;
	cfg.max_handles = UINT32_MAX;
	const char *msg = NULL;
	cr_assert_eq(mova_config_check(&cfg, &msg), EINVAL);
	cr_assert_str_eq(msg, "max_handles is out of range (0 .. 4294967294)");
	errno = 0;
	cr_assert_null(mova_arena_create(&cfg));
	cr_assert_eq(errno, EINVAL);
	/* the edge is accepted, and an arena with it works */
	cfg.max_handles = UINT32_MAX - 1;
	msg = "unchanged";
	cr_assert_eq(mova_config_check(&cfg, &msg), 0);
	cr_assert_null(msg);
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "max_handles UINT32_MAX - 1: %s", strerror(errno));
	mova_handle h = mova_halloc(a, 100);
	cr_assert_neq(h, MOVA_NULL);
	cr_assert_eq(mova_hfree(a, h), 0);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ MOVA_CONF */

struct probe {
	char err[2048];
	size_t reserved;
	unsigned pageblock_order;
	unsigned long long cma_pageblocks;
	int kcompactd_threads;
};

/* Run conf_probe with MOVA_CONF set to conf (unset for NULL). */
static void run_probe(const char *conf, struct probe *r)
{
	char outbuf[512];
	conf_probe_run(conf, outbuf, sizeof outbuf, r->err, sizeof r->err);
	int got =
	    sscanf(outbuf,
		   "reserved_bytes=%zu pageblock_order=%u cma_pageblocks=%llu "
		   "kcompactd_threads=%d",
		   &r->reserved, &r->pageblock_order, &r->cma_pageblocks, &r->kcompactd_threads);
	cr_assert_eq(got, 4, "conf_probe printed '%s'", outbuf);
}

/* conf_probe's stderr must be exactly err, and the default arena as given */
static void expect_probe(const char *conf, const char *err, size_t reserved, unsigned pbo,
			 unsigned long long cma_pageblocks, int kcompactd_threads)
{
	struct probe r;
	run_probe(conf, &r);
	cr_assert_str_eq(r.err, err, "MOVA_CONF=%s", conf);
	cr_assert_eq(r.reserved, reserved, "MOVA_CONF=%s: reserved %zu, want %zu", conf, r.reserved,
		     reserved);
	cr_assert_eq(r.pageblock_order, pbo, "MOVA_CONF=%s: pageblock order %u, want %u", conf,
		     r.pageblock_order, pbo);
	cr_assert_eq(r.cma_pageblocks, cma_pageblocks, "MOVA_CONF=%s: %llu CMA pageblocks", conf,
		     r.cma_pageblocks);
	cr_assert_eq(r.kcompactd_threads, kcompactd_threads,
		     "MOVA_CONF=%s: %d kcompactd threads, want %d", conf, r.kcompactd_threads,
		     kcompactd_threads);
}

#define BYTES_WANT "(want bytes, with an optional k/M/G/T suffix, in 0 .. 549755813888)"

Test(badinput, conf_valid_settings_apply)
{
	/* the baseline, and that the probe sees each setting it reports */
	expect_probe(NULL, "", 512 * GiB, 9, 0, 1);
	expect_probe("", "", 512 * GiB, 9, 0, 1);
	expect_probe("reserve_bytes:1G,pageblock_order:8,cma_bytes:256M,kcompactd:0", "", 1 * GiB,
		     8, 256, 0);
}

Test(badinput, conf_empty_items_are_skipped)
{
	expect_probe(",,reserve_bytes:2G,", "", 2 * GiB, 9, 0, 1);
	expect_probe(",,,", "", 512 * GiB, 9, 0, 1);
	expect_probe("kcompactd:0,,pageblock_order:8", "", 512 * GiB, 8, 0, 0);
}

Test(badinput, conf_unknown_key_and_out_of_range_value)
{
	expect_probe("nosuchkey:1,reserve_bytes:2G",
		     "mova: MOVA_CONF: unknown key 'nosuchkey'; ignored\n", 2 * GiB, 9, 0, 1);
	expect_probe("proactiveness:900,reserve_bytes:2G",
		     "mova: MOVA_CONF: bad value '900' for proactiveness (want a number in 0 .. "
		     "100); ignored\n",
		     2 * GiB, 9, 0, 1);
	expect_probe("reserve_bytes:1T,pageblock_order:8",
		     "mova: MOVA_CONF: bad value '1T' for reserve_bytes " BYTES_WANT "; ignored\n",
		     512 * GiB, 8, 0, 1);
	expect_probe("max_handles:4294967295,reserve_bytes:2G",
		     "mova: MOVA_CONF: bad value '4294967295' for max_handles (want a number in 0 "
		     ".. 4294967294); ignored\n",
		     2 * GiB, 9, 0, 1);
}

Test(badinput, conf_bad_values_are_ignored)
{
	/* the bad item is ignored, the good ones in the same string apply */
	expect_probe("kcompactd:yes,reserve_bytes:2G",
		     "mova: MOVA_CONF: bad value 'yes' for kcompactd (want a number in 0 .. 1); "
		     "ignored\n",
		     2 * GiB, 9, 0, 1);
	expect_probe("reserve_bytes:12X,pageblock_order:8",
		     "mova: MOVA_CONF: bad value '12X' for reserve_bytes " BYTES_WANT "; ignored\n",
		     512 * GiB, 8, 0, 1);
	expect_probe(
	    "reserve_bytes:99999999999999999999999,pageblock_order:8",
	    "mova: MOVA_CONF: bad value '99999999999999999999999' for reserve_bytes " BYTES_WANT
	    "; ignored\n",
	    512 * GiB, 8, 0, 1);
	expect_probe("stats_print:2,reserve_bytes:2G",
		     "mova: MOVA_CONF: bad value '2' for stats_print (want a number in 0 .. 1); "
		     "ignored\n",
		     2 * GiB, 9, 0, 1);
	expect_probe("reserve_bytes:,kcompactd:0",
		     "mova: MOVA_CONF: bad value '' for reserve_bytes " BYTES_WANT "; ignored\n",
		     512 * GiB, 9, 0, 0);
	/* each bad item is reported, in order */
	expect_probe("kcompactd:yes,reserve_bytes:12X,stats_print:2,reserve_bytes:2G",
		     "mova: MOVA_CONF: bad value 'yes' for kcompactd (want a number in 0 .. 1); "
		     "ignored\n"
		     "mova: MOVA_CONF: bad value '12X' for reserve_bytes " BYTES_WANT "; ignored\n"
		     "mova: MOVA_CONF: bad value '2' for stats_print (want a number in 0 .. 1); "
		     "ignored\n",
		     2 * GiB, 9, 0, 1);
}

Test(badinput, conf_item_without_colon)
{
	expect_probe("reserve_bytes,pageblock_order:8",
		     "mova: MOVA_CONF: 'reserve_bytes' is not key:value; ignored\n", 512 * GiB, 8,
		     0, 1);
	expect_probe("kcompactd:0,reserve_bytes 2G",
		     "mova: MOVA_CONF: 'reserve_bytes 2G' is not key:value; ignored\n", 512 * GiB,
		     9, 0, 0);
}

Test(badinput, conf_invalid_whole_uses_defaults)
{
	/* each value is in range, the whole is not: every setting is dropped */
	expect_probe("reserve_bytes:1G,cma_bytes:800M",
		     "mova: MOVA_CONF: cma_bytes must be at most half of reserve_bytes; using the "
		     "defaults\n",
		     512 * GiB, 9, 0, 1);
	expect_probe("pageblock_order:3,reserve_bytes:1G,kcompactd:0",
		     "mova: MOVA_CONF: pageblock_order must be 0 (default) or 6 .. 10; using the "
		     "defaults\n",
		     512 * GiB, 9, 0, 1);
	expect_probe("max_handles:5,reserve_bytes:1G",
		     "mova: MOVA_CONF: max_handles must be 0 (default) or at least 1024; using the "
		     "defaults\n",
		     512 * GiB, 9, 0, 1);
	expect_probe(
	    "mempolicy:2,reserve_bytes:1G",
	    "mova: MOVA_CONF: mempolicy/mempolicy_nodes: the mode needs at least one node; "
	    "using the defaults\n",
	    512 * GiB, 9, 0, 1);
}

/* ------------------------------------------------------------ counted, not lost */

/* Only the first bad free is printed: the rest must still be visible
 * somewhere, or a program that frees garbage in a loop looks healthy. With
 * -Dstat=1 the fast-path counters follow and must count what ran. */
Test(badinput, bad_frees_after_the_first_are_counted_in_stats)
{
	char junk[64];
	void *keep[100];
	for (int i = 0; i < 100; i++)
		keep[i] = mova_malloc(48);
	char *before = stats_text();
	unsigned long n0 = stat_value(before, "invalid_frees");
	struct capture c;
	capture_begin(&c);
	for (int i = 0; i < 3; i++)
		mova_free(junk + 16 * i);
	char msg[512];
	capture_end(&c, msg, sizeof msg);
	char *after = stats_text();
	cr_assert_eq(stat_value(after, "invalid_frees"), n0 + 3, "%s", after);
	if (strstr(after, "fast paths (MV_STAT)")) {
		cr_assert_geq(stat_value(after, "malloc_fast") + stat_value(after, "malloc_slow"),
			      100);
		cr_assert_geq(stat_value(after, "free_slow"), 3);
	}
	for (int i = 0; i < 100; i++)
		mova_free(keep[i]);
	free(before);
	free(after);
}
