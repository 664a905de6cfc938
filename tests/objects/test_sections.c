/* SPDX-License-Identifier: MIT */
/*
 * test_sections.c (issue 14): an arena that grows in 64 MiB sections
 * mapped as needed, gives emptied sections back whole, and has no ceiling
 * but the one the user sets.
 *  - nothing_mapped_up_front: a new arena maps no section; the first
 *    allocation maps one;
 *  - big_blocks_come_and_go: 200 blocks of 1 GiB (never touched) in one
 *    arena, freed, twice: VmSize grows by 200 GiB and comes back near its
 *    start after the frees (before sections, an arena held 64 GiB at most);
 *  - hole_goes_back_and_refills: with objects left in the first and last
 *    sections, the sections between go back (holes in mova_pageblocks),
 *    and growth fills the holes before it maps anything above;
 *  - limit_is_a_ceiling: reserve_bytes caps what the arena maps, and
 *    allocation past it fails with ENOMEM, nothing else;
 *  - many_arenas: 10,000 arenas created and destroyed, then 5,000 alive
 *    at once with small use: address space and threads back to baseline;
 *  - concurrent_growth_and_removal: threads allocate and free large and
 *    small objects across sections while others give memory back (which
 *    removes empty sections) and compact; every object keeps its bytes.
 *    Runs under ThreadSanitizer too (the concurrency suite).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "../common/pinned.h"

#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)
#define SECTION (64 * MiB)

/* a /proc/self/status field, in KiB (Threads: a count) */
static long proc_status(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

static mova_arena *arena_no_kcompactd(size_t reserve)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = reserve;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert(a, "mova_arena_create: errno %d", errno);
	return a;
}

#ifndef MV_CR_STANDALONE

Test(sections, nothing_mapped_up_front)
{
	mova_arena *a = arena_no_kcompactd(0);
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.reserved_bytes, 0, "mapped before any allocation: %zu", st.reserved_bytes);
	cr_assert_eq(st.nr_sections, 0);
	cr_assert_eq(st.max_bytes, 512 * GiB, "no limit but the handle word's");
	mova_handle h = mova_halloc(a, 100);
	cr_assert(h);
	mova_stats_get(a, &st);
	cr_assert_eq(st.nr_sections, 1);
	cr_assert_eq(st.reserved_bytes, SECTION);
	cr_assert_eq(st.section_add, 1);
	mova_arena_destroy(a);
}

Test(sections, big_blocks_come_and_go, .timeout = 120)
{
	mova_arena *a = arena_no_kcompactd(0);
	mova_handle first = mova_halloc(a, 100);
	cr_assert(first);
	pin_fill(a, first, 5);
	long start = proc_status("VmSize");
	static mova_handle b[200];
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 200; i++) {
			b[i] = mova_halloc(a, GiB);
			cr_assert(b[i], "round %d: block %d of 1 GiB: errno %d", round, i, errno);
		}
		long full = proc_status("VmSize");
		cr_assert_geq(full - start, 200L << 20, "200 GiB mapped: VmSize grew %ld KiB",
			      full - start);
		for (int i = 0; i < 200; i++)
			cr_assert_eq(mova_hfree(a, b[i]), 0);
		cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
		long after = proc_status("VmSize");
		mova_stats st;
		mova_stats_get(a, &st);
		/* what stays: one section and the sections' metadata (descriptors,
		 * kept mapped for lockless readers and reused: 0.4%) */
		cr_assert_leq(after - start, 1L << 20,
			      "round %d: VmSize %ld KiB at the start, %ld KiB after the frees",
			      round, start, after);
		cr_assert_eq(st.nr_sections, 1, "round %d: %zu sections left", round,
			     st.nr_sections);
		cr_assert_geq(st.section_remove, 3200 * (round + 1));
	}
	pin_expect(a, first, 5, 97);
	mova_arena_destroy(a);
}

/* the 64 MiB piece of the address space a handle's object is in */
static uintptr_t piece(mova_arena *a, mova_handle h)
{
	uintptr_t p = (uintptr_t)mova_pin(a, h);
	mova_unpin(a, h);
	return p / SECTION;
}

static size_t absent_pageblocks(mova_arena *a)
{
	static mova_pageblock_info pi[4096];
	size_t n = mova_pageblocks(a, pi, 4096), absent = 0;
	for (size_t i = 0; i < n && i < 4096; i++)
		absent += pi[i].absent;
	return absent;
}

Test(sections, hole_goes_back_and_refills)
{
	mova_arena *a = arena_no_kcompactd(0);
	enum { N = 300 }; /* 1 MiB each: about five sections */
	static mova_handle h[N];
	for (int i = 0; i < N; i++) {
		h[i] = mova_halloc(a, MiB);
		cr_assert(h[i]);
		pin_fill(a, h[i], (unsigned char)i);
	}
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_geq(st.nr_sections, 4, "%zu sections for 300 MiB", st.nr_sections);
	/* keep the objects of the first and the last piece, free the rest */
	uintptr_t lo = piece(a, h[0]), hi = piece(a, h[N - 1]);
	size_t kept = 0;
	for (int i = 0; i < N; i++) {
		uintptr_t pc = piece(a, h[i]);
		if (pc == lo || pc == hi) {
			kept++;
			continue;
		}
		cr_assert_eq(mova_hfree(a, h[i]), 0);
		h[i] = 0;
	}
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
	mova_stats_get(a, &st);
	size_t holes = absent_pageblocks(a);
	cr_assert_geq(st.section_remove, 1, "no section went back");
	cr_assert_gt(holes, 0, "no hole in the pageblock map");
	cr_assert_eq(holes % 32, 0, "holes come in whole sections (32 pageblocks)");
	size_t sections = st.nr_sections, added = st.section_add;
	/* growth fills the holes before it maps above the top */
	size_t refill = holes / 32;
	static mova_handle g[N];
	for (size_t i = 0; i < 60 * refill; i++) {
		g[i] = mova_halloc(a, MiB);
		cr_assert(g[i]);
		pin_fill(a, g[i], 0xee);
	}
	mova_stats_get(a, &st);
	cr_assert_eq(absent_pageblocks(a), 0, "holes left after refilling");
	cr_assert_eq(st.section_add, added + refill);
	cr_assert_eq(st.nr_sections, sections + refill);
	for (int i = 0; i < N; i++)
		if (h[i])
			pin_expect(a, h[i], (unsigned char)i, 97);
	for (size_t i = 0; i < 60 * refill; i++)
		pin_expect(a, g[i], 0xee, 97);
	(void)kept;
	mova_arena_destroy(a);
}

Test(sections, limit_is_a_ceiling)
{
	mova_arena *a = arena_no_kcompactd(96 * MiB);
	size_t got = 0;
	static mova_handle h[200];
	for (int i = 0; i < 200; i++) {
		errno = 0;
		h[i] = mova_halloc(a, MiB);
		if (!h[i]) {
			cr_assert_eq(errno, ENOMEM);
			break;
		}
		got++;
	}
	cr_assert_geq(got, 80, "only %zu MiB of a 96 MiB arena", got);
	cr_assert_lt(got, 97);
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_leq(st.reserved_bytes, 96 * MiB, "mapped %zu past the limit", st.reserved_bytes);
	cr_assert_eq(st.max_bytes, 96 * MiB);
	mova_arena_destroy(a);
}

Test(sections, many_arenas, .timeout = 240)
{
	/* the first arena maps what stays for the process (the section map,
	 * 16 MiB), and glibc keeps the stacks of exited threads (kcompactd's)
	 * cached: both before the baseline */
	long th0 = proc_status("Threads");
	mova_arena *first = mova_arena_create(NULL);
	cr_assert(first);
	mova_kcompactd_wakeup(first, 1);
	usleep(20000);
	mova_arena_destroy(first);
	long vm0 = proc_status("VmSize");
	for (int i = 0; i < 10000; i++) {
		mova_arena *a = mova_arena_create(NULL);
		cr_assert(a, "arena %d: errno %d", i, errno);
		mova_handle h = mova_halloc(a, 100);
		cr_assert(h);
		if (i % 100 == 0)
			mova_kcompactd_wakeup(a, 1); /* some with their kcompactd started */
		mova_arena_destroy(a);
	}
	long vm1 = proc_status("VmSize");
	static mova_arena *alive[5000];
	for (int i = 0; i < 5000; i++) {
		alive[i] = mova_arena_create(NULL);
		cr_assert(alive[i], "arena %d of 5000 alive: errno %d", i, errno);
		mova_handle h = mova_halloc(alive[i], 100 + i);
		cr_assert(h);
	}
	long vm_alive = proc_status("VmSize");
	for (int i = 0; i < 5000; i++)
		mova_arena_destroy(alive[i]);
	long vm2 = proc_status("VmSize");
	cr_assert_leq(vm1 - vm0, 24L << 10, "VmSize %ld -> %ld KiB after 10,000 arenas", vm0, vm1);
	cr_assert_leq(vm2 - vm0, 24L << 10, "VmSize %ld -> %ld KiB after 5,000 alive", vm0, vm2);
	cr_assert_gt(vm_alive - vm0, 5000L * 64 << 10, "5,000 arenas should map a section each");
	for (int i = 0; i < 100 && proc_status("Threads") != th0; i++)
		usleep(20000);
	cr_assert_eq(proc_status("Threads"), th0, "threads left behind");
}

#endif /* !MV_CR_STANDALONE */

/* ------------------------------------------------------------ concurrency */

#define NTHREADS 3
#define ROUNDS 20

static mova_arena *carena;
static _Atomic int stop;

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
	mova_handle big[8] = {0}, small[64] = {0};
	for (int r = 0; r < ROUNDS; r++) {
		/* large runs, some across sections: 1 .. 40 MiB */
		for (int i = 0; i < 8; i++) {
			seed = seed * 1103515245u + 12345u;
			size_t sz = (i == 0 ? 40 : 1 + (seed >> 16) % 6) * MiB;
			big[i] = mova_halloc(carena, sz);
			if (big[i])
				pin_fill(carena, big[i], (unsigned char)(i + r));
		}
		for (int i = 0; i < 64; i++) {
			small[i] = mova_halloc(carena, 64 + (size_t)i * 16);
			cr_assert(small[i]);
			pin_fill(carena, small[i], (unsigned char)i);
		}
		for (int i = 0; i < 8; i++)
			if (big[i]) {
				pin_expect(carena, big[i], (unsigned char)(i + r), 97);
				cr_assert_eq(mova_hfree(carena, big[i]), 0);
			}
		for (int i = 0; i < 64; i++) {
			pin_expect(carena, small[i], (unsigned char)i, 97);
			cr_assert_eq(mova_hfree(carena, small[i]), 0);
		}
	}
	return NULL;
}

static void *giver(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		mova_shrink(carena, SIZE_MAX, NULL);
		mova_compact(carena, -1);
		mova_stats st;
		mova_stats_get(carena, &st);
		static mova_pageblock_info pi[2048];
		mova_pageblocks(carena, pi, 2048);
		usleep(5000);
	}
	return NULL;
}

Test(sections, concurrent_growth_and_removal, .timeout = 240)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.decay_ms = 10;
	carena = mova_arena_create(&cfg);
	cr_assert(carena);
	atomic_store(&stop, 0);
	pthread_t t[NTHREADS], g;
	cr_assert_eq(pthread_create(&g, NULL, giver, NULL), 0);
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&stop, 1);
	pthread_join(g, NULL);
	mova_stats st;
	mova_shrink(carena, SIZE_MAX, NULL);
	mova_stats_get(carena, &st);
	cr_assert_gt(st.section_add, 2, "sections mapped: %lu", (unsigned long)st.section_add);
	cr_assert_gt(st.section_remove, 0, "no section went back");
	cr_assert_eq(st.live_handles, 0);
	mova_arena_destroy(carena);
}
