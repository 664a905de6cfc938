/* SPDX-License-Identifier: MIT */
/*
 * test_config.c: the arena's configuration and life cycle, through the
 * public API only (include/mova.h): the documented defaults, validation of
 * every field (EINVAL, and a message naming the field), a NULL
 * configuration, exhaustion of a small arena (ENOMEM, recovery after
 * frees, statistics that add up), and several arenas in one process.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mova.h"
#include "../common/capture.h"
#include "../common/probe.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

Test(config, defaults)
{
	mova_config cfg;
	memset(&cfg, 0xa5, sizeof cfg);
	mova_config_init(&cfg);
	cr_assert_eq(cfg.reserve_bytes, 0, "0 means no limit: sections are mapped as needed");
	cr_assert_eq(cfg.pageblock_order, 9);
	cr_assert_eq(cfg.kcompactd, 1);
	cr_assert_eq(cfg.proactiveness, 20);
	cr_assert_eq(cfg.extfrag_threshold, 500);
	cr_assert_eq(cfg.kcompactd_cpu_budget, 10);
	cr_assert_eq(cfg.kcompactd_interval_ms, 500);
	cr_assert_eq(cfg.retain_bytes, 0, "0 means the default: sized from resident memory");
	cr_assert_eq(cfg.cma_bytes, 0);
	cr_assert_eq(cfg.max_handles, 0, "0 means the default, reserve_bytes / 64");
	cr_assert_eq(cfg.thp, MOVA_THP_MADVISE, "huge pages for dense pageblocks by default");
	const char *msg = "unchanged";
	cr_assert_eq(mova_config_check(&cfg, &msg), 0);
	cr_assert_null(msg, "a valid configuration has no message");
	cr_assert_eq(mova_config_check(&cfg, NULL), 0);
	cr_assert_eq(mova_config_check(NULL, &msg), 0, "NULL means the defaults");
}

/* ------------------------------------------------------------ bad fields */

enum field {
	F_PBO,
	F_PROACTIVENESS,
	F_KCOMPACTD,
	F_EXTFRAG,
	F_BUDGET,
	F_INTERVAL,
	F_RESERVE,
	F_CMA,
	F_HANDLES,
	F_THP,
};

struct bad {
	enum field f;
	size_t value;
	size_t reserve; /* 0: leave the default */
	unsigned pbo;   /* 0: leave the default */
	const char *name;
};

static void apply(mova_config *cfg, const struct bad *b)
{
	if (b->reserve)
		cfg->reserve_bytes = b->reserve;
	if (b->pbo)
		cfg->pageblock_order = b->pbo;
	switch (b->f) {
	case F_PBO: cfg->pageblock_order = (unsigned)b->value; break;
	case F_PROACTIVENESS: cfg->proactiveness = (unsigned)b->value; break;
	case F_KCOMPACTD: cfg->kcompactd = (int)b->value; break;
	case F_EXTFRAG: cfg->extfrag_threshold = (unsigned)b->value; break;
	case F_BUDGET: cfg->kcompactd_cpu_budget = (unsigned)b->value; break;
	case F_INTERVAL: cfg->kcompactd_interval_ms = (unsigned)b->value; break;
	case F_RESERVE: cfg->reserve_bytes = b->value; break;
	case F_CMA: cfg->cma_bytes = b->value; break;
	case F_HANDLES: cfg->max_handles = b->value; break;
	case F_THP: cfg->thp = (unsigned)b->value; break;
	}
}

static const struct bad bad_cases[] = {
    {F_PBO, 3, 0, 0, "pageblock_order"},
    {F_PBO, 5, 0, 0, "pageblock_order"},
    {F_PBO, 11, 0, 0, "pageblock_order"},
    {F_PROACTIVENESS, 101, 0, 0, "proactiveness"},
    {F_KCOMPACTD, 2, 0, 0, "kcompactd"},
    {F_KCOMPACTD, (size_t)-1, 0, 0, "kcompactd"},
    {F_EXTFRAG, 1001, 0, 0, "extfrag_threshold"},
    {F_BUDGET, 0, 0, 0, "kcompactd_cpu_budget"},
    {F_BUDGET, 101, 0, 0, "kcompactd_cpu_budget"},
    {F_INTERVAL, 5, 0, 0, "kcompactd_interval_ms"},
    {F_INTERVAL, 60001, 0, 0, "kcompactd_interval_ms"},
    /* four pageblocks of 256 KiB, less a page */
    {F_RESERVE, 4 * 256 * KiB - 4096, 0, 6, "reserve_bytes"},
    /* four default (2 MiB) pageblocks, less a byte */
    {F_RESERVE, 8 * MiB - 1, 0, 0, "reserve_bytes"},
    {F_RESERVE, 512 * GiB + 4096, 0, 0, "reserve_bytes"},
    {F_RESERVE, SIZE_MAX, 0, 0, "reserve_bytes"},
    {F_CMA, 32 * MiB + 4096, 64 * MiB, 6, "cma_bytes"},
    {F_CMA, 257 * GiB, 0, 0, "cma_bytes"}, /* over half of the most an arena can map */
    {F_HANDLES, 5, 0, 0, "max_handles"},
    {F_HANDLES, 1023, 0, 0, "max_handles"},
    {F_THP, 3, 0, 0, "thp"},
    {F_THP, UINT32_MAX, 0, 0, "thp"},
};

Test(config, bad_fields_rejected)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad *b = &bad_cases[i];
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = 0;
		apply(&cfg, b);
		const char *msg = NULL;
		cr_assert_eq(mova_config_check(&cfg, &msg), EINVAL, "case %zu (%s = %zu) accepted",
			     i, b->name, b->value);
		cr_assert_not_null(msg, "case %zu: no message", i);
		cr_assert_not_null(strstr(msg, b->name), "case %zu: message '%s' does not name %s",
				   i, msg, b->name);
		cr_assert_eq(mova_config_check(&cfg, NULL), EINVAL);
		errno = 0;
		mova_arena *a = mova_arena_create(&cfg);
		int err = errno;
		cr_assert_null(a, "case %zu (%s = %zu): arena created", i, b->name, b->value);
		cr_assert_eq(err, EINVAL, "case %zu: errno %d, want EINVAL", i, err);
	}
}

/* the edges of every range are accepted */
static const struct bad good_cases[] = {
    {F_PBO, 0, 0, 0, "pageblock_order"},
    {F_PBO, 6, 4 * 256 * KiB, 0, "pageblock_order"},
    {F_PBO, 10, 16 * MiB, 0, "pageblock_order"},
    {F_PROACTIVENESS, 0, 16 * MiB, 6, "proactiveness"},
    {F_PROACTIVENESS, 100, 16 * MiB, 6, "proactiveness"},
    {F_KCOMPACTD, 1, 16 * MiB, 6, "kcompactd"},
    {F_EXTFRAG, 0, 16 * MiB, 6, "extfrag_threshold"},
    {F_EXTFRAG, 1000, 16 * MiB, 6, "extfrag_threshold"},
    {F_BUDGET, 1, 16 * MiB, 6, "kcompactd_cpu_budget"},
    {F_BUDGET, 100, 16 * MiB, 6, "kcompactd_cpu_budget"},
    {F_INTERVAL, 10, 16 * MiB, 6, "kcompactd_interval_ms"},
    {F_INTERVAL, 60000, 16 * MiB, 6, "kcompactd_interval_ms"},
    {F_RESERVE, 8 * MiB, 0, 0, "reserve_bytes"},
    {F_RESERVE, 1 * MiB, 0, 6, "reserve_bytes"},
    {F_CMA, 8 * MiB, 16 * MiB, 6, "cma_bytes"},
    {F_HANDLES, 1024, 16 * MiB, 6, "max_handles"},
    {F_THP, MOVA_THP_MADVISE, 16 * MiB, 6, "thp"},
    {F_THP, MOVA_THP_NEVER, 16 * MiB, 0, "thp"},
    {F_THP, MOVA_THP_ALWAYS, 16 * MiB, 0, "thp"},
};

Test(config, range_edges_accepted, .timeout = 60)
{
	for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
		const struct bad *b = &good_cases[i];
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = 0;
		apply(&cfg, b);
		const char *msg = "unchanged";
		cr_assert_eq(mova_config_check(&cfg, &msg), 0, "case %zu (%s = %zu) rejected: %s",
			     i, b->name, b->value, msg);
		cr_assert_null(msg);
		mova_arena *a = mova_arena_create(&cfg);
		cr_assert_not_null(a, "case %zu (%s = %zu): %s", i, b->name, b->value,
				   strerror(errno));
		mova_handle h = mova_halloc(a, 100);
		cr_assert_neq(h, MOVA_NULL, "case %zu: cannot allocate", i);
		cr_assert_eq(mova_hfree(a, h), 0);
		mova_stats st;
		mova_stats_get(a, &st);
		cr_assert_eq(st.pageblock_order, cfg.pageblock_order ? cfg.pageblock_order : 9);
		/* the limit bounds what is mapped: here one section, or the limit */
		cr_assert_gt(st.reserved_bytes, 0);
		if (cfg.reserve_bytes)
			cr_assert_leq(st.reserved_bytes, cfg.reserve_bytes);
		else
			cr_assert_leq(st.reserved_bytes, 64 * MiB);
		mova_arena_destroy(a);
	}
}

Test(config, null_config_means_defaults, .timeout = 60)
{
	mova_arena *a = mova_arena_create(NULL);
	cr_assert_not_null(a, "mova_arena_create(NULL): %s", strerror(errno));
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.reserved_bytes, 0, "nothing mapped before the first allocation");
	cr_assert_eq(st.pageblock_order, 9);
	cr_assert_eq(st.page_size, 4096);
	mova_handle h = mova_hcalloc(a, 1000);
	cr_assert_neq(h, MOVA_NULL);
	const unsigned char *p = mova_pin(a, h);
	cr_assert_not_null(p);
	for (size_t i = 0; i < 1000; i++)
		cr_assert_eq(p[i], 0, "mova_hcalloc: byte %zu not zero", i);
	cr_assert_eq(mova_unpin(a, h), 0);
	cr_assert_eq(mova_hfree(a, h), 0);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ exhaustion */

#define MAX_LIVE 65536

struct live {
	mova_handle h;
	size_t size;
	unsigned char byte; /* every byte of the object */
};

static struct live live[MAX_LIVE];
static size_t nlive, nmade;

static bool try_alloc(mova_arena *a, size_t size)
{
	errno = 0;
	mova_handle h = mova_halloc(a, size);
	if (h == MOVA_NULL) {
		cr_assert_eq(errno, ENOMEM, "mova_halloc(%zu) failed with errno %d, want ENOMEM",
			     size, errno);
		return false;
	}
	cr_assert_lt(nlive, MAX_LIVE);
	cr_assert_eq(mova_hsize(a, h), size);
	unsigned char *p = mova_pin(a, h);
	cr_assert_not_null(p);
	unsigned char byte = (unsigned char)(++nmade * 131 + 7);
	memset(p, byte, size);
	cr_assert_eq(mova_unpin(a, h), 0);
	live[nlive++] = (struct live){h, size, byte};
	return true;
}

static void check_live(mova_arena *a)
{
	size_t bytes = 0;
	for (size_t i = 0; i < nlive; i++) {
		cr_assert_eq(mova_hsize(a, live[i].h), live[i].size);
		const unsigned char *p = mova_pin(a, live[i].h);
		cr_assert_not_null(p);
		for (size_t j = 0; j < live[i].size; j += 61)
			cr_assert_eq(p[j], live[i].byte,
				     "object %zu (%zu bytes) overwritten at %zu", i, live[i].size,
				     j);
		if (live[i].size)
			cr_assert_eq(p[live[i].size - 1], live[i].byte);
		cr_assert_eq(mova_unpin(a, live[i].h), 0);
		bytes += live[i].size;
	}
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.live_handles, nlive, "live_handles %zu, %zu live", st.live_handles, nlive);
	cr_assert_eq(st.live_bytes, bytes, "live_bytes %zu, live objects hold %zu", st.live_bytes,
		     bytes);
	cr_assert_leq(st.populated_bytes, st.reserved_bytes);
	cr_assert_leq(st.free_bytes, st.populated_bytes);
}

static void free_live(mova_arena *a, size_t i)
{
	cr_assert_eq(mova_hfree(a, live[i].h), 0);
	cr_assert_eq(mova_hfree(a, live[i].h), EINVAL, "double free accepted");
	live[i] = live[--nlive];
}

/* Growing objects, from small slab sizes to several pages, until the arena
 * is full; then small ones until even they fail. */
static void fill_arena(mova_arena *a)
{
	nlive = nmade = 0;
	size_t size = 8;
	while (try_alloc(a, size)) {
		size += size / 3 + 8;
		if (size > 96 * KiB)
			size = 8;
	}
	check_live(a);
	while (try_alloc(a, 24))
		;
	check_live(a);
}

Test(config, small_arena_exhaustion, .timeout = 120)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 4 * 256 * KiB;
	cfg.pageblock_order = 6;
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "%s", strerror(errno));
	fill_arena(a);
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_geq(st.live_bytes, cfg.reserve_bytes / 4,
		      "the arena of %zu bytes failed with only %zu bytes live", cfg.reserve_bytes,
		      st.live_bytes);
	cr_assert_eq(st.populated_bytes, cfg.reserve_bytes);
	/* impossible sizes fail the same way */
	errno = 0;
	cr_assert_eq(mova_halloc(a, 2 * MiB), MOVA_NULL);
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_eq(mova_halloc(a, SIZE_MAX / 2), MOVA_NULL);
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_eq(mova_hcalloc(a, SIZE_MAX), MOVA_NULL);
	cr_assert_eq(errno, ENOMEM);
	check_live(a);

	/* free the objects of 2 KiB and more: allocation works again, at least
	 * for a small object and for objects of the sizes just freed that live
	 * in slabs (their slots are free; large ones may need compaction) */
	size_t freed_bytes = 0, nfreed = 0, freed_sizes[64];
	for (size_t i = 0; i < nlive;) {
		if (live[i].size >= 2048) {
			freed_bytes += live[i].size;
			if (live[i].size <= 16 * KiB && nfreed < 64)
				freed_sizes[nfreed++] = live[i].size;
			free_live(a, i);
		} else {
			i++;
		}
	}
	cr_assert_gt(nfreed, 0);
	check_live(a);
	cr_assert(try_alloc(a, 24), "a small object after freeing %zu bytes", freed_bytes);
	for (size_t i = 0; i < nfreed; i++)
		cr_assert(try_alloc(a, freed_sizes[i]),
			  "freed an object of %zu bytes, cannot allocate one", freed_sizes[i]);
	check_live(a);

	/* everything back: the statistics return to zero and it all works again */
	while (nlive)
		free_live(a, nlive - 1);
	check_live(a);
	for (size_t i = 0; i < nfreed; i++)
		cr_assert(try_alloc(a, freed_sizes[i]), "all freed, cannot allocate %zu bytes",
			  freed_sizes[i]);
	check_live(a);
	while (nlive)
		free_live(a, nlive - 1);
	cr_assert_eq(mova_hfree(a, MOVA_NULL), EINVAL);
	mova_arena_destroy(a);
}

/* Until a thread has entered a read section, memory an object leaves is
 * reused at once (handle.c): freeing large objects of a full arena must make
 * room for the next allocation. */
Test(config, freed_large_objects_are_reusable, .timeout = 60)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 4 * 256 * KiB;
	cfg.pageblock_order = 6;
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a);
	enum { SIZE = 100000 };
	mova_handle hs[16];
	int n = 0;
	while (n < 16 && (hs[n] = mova_halloc(a, SIZE)) != MOVA_NULL)
		n++;
	cr_assert(n >= 6 && n < 16, "%d objects of %d bytes in a 1 MiB arena", n, SIZE);
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq(mova_hfree(a, hs[--n]), 0);
	mova_handle h = mova_halloc(a, SIZE);
	cr_assert_neq(h, MOVA_NULL, "freed a %d-byte object, cannot allocate one: errno %d", SIZE,
		      errno);
	hs[n++] = h;
	while (n)
		cr_assert_eq(mova_hfree(a, hs[--n]), 0);
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.live_bytes, 0);
	cr_assert_eq(st.live_handles, 0);
	h = mova_halloc(a, 8 * SIZE / 2);
	cr_assert_neq(h, MOVA_NULL, "everything freed, cannot allocate %d bytes: errno %d",
		      8 * SIZE / 2, errno);
	cr_assert_eq(mova_hfree(a, h), 0);
	mova_arena_destroy(a);
}

/* An arena whose objects are all freed is whole again: the pages behind
 * empty slabs and per-thread lists must be usable by a large object (as
 * SLUB discards empty slabs and the page allocator drains its per-cpu
 * lists before failing). */
Test(config, all_freed_arena_is_whole, .timeout = 60)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 8 * 256 * KiB; /* 8 pageblocks: grouping by mobility on */
	cfg.pageblock_order = 6;
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a);
	fill_arena(a);
	while (nlive)
		free_live(a, nlive - 1);
	check_live(a);
	cr_assert(try_alloc(a, 256 * KiB),
		  "every object of a 2 MiB arena freed, cannot allocate 256 KiB: errno %d", errno);
	free_live(a, 0);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ several arenas */

static mova_arena *small_arena(int kcompactd)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 16 * MiB;
	cfg.pageblock_order = 6;
	cfg.kcompactd = kcompactd;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "%s", strerror(errno));
	return a;
}

Test(config, create_destroy_many, .timeout = 60)
{
	for (int i = 0; i < 12; i++) {
		mova_arena *a = small_arena(i % 2);
		mova_handle hs[64];
		for (int j = 0; j < 64; j++) {
			hs[j] = mova_halloc(a, (size_t)(j + 1) * 100);
			cr_assert_neq(hs[j], MOVA_NULL, "arena %d object %d", i, j);
		}
		mova_stats st;
		mova_stats_get(a, &st);
		cr_assert_eq(st.live_handles, 64);
		cr_assert_eq(st.live_bytes, 100 * 64 * 65 / 2);
		for (int j = 0; j < 64; j += 2)
			cr_assert_eq(mova_hfree(a, hs[j]), 0);
		/* the rest die with the arena */
		mova_arena_destroy(a);
	}
}

Test(config, two_arenas_at_once, .timeout = 60)
{
	mova_arena *a = small_arena(1), *b = small_arena(0);
	cr_assert_neq(a, b);
	enum { N = 200 };
	mova_handle ha[N], hb[N];
	for (int i = 0; i < N; i++) {
		ha[i] = mova_halloc(a, 64 + (size_t)i);
		hb[i] = mova_halloc(b, 5000 + (size_t)i);
		cr_assert(ha[i] != MOVA_NULL && hb[i] != MOVA_NULL);
		memset(mova_pin(a, ha[i]), 'a', 64 + (size_t)i);
		mova_unpin(a, ha[i]);
		memset(mova_pin(b, hb[i]), 'b', 5000 + (size_t)i);
		mova_unpin(b, hb[i]);
	}
	/* a handle belongs to its arena */
	errno = 0;
	cr_assert_null(mova_pin(b, ha[0]), "pinned arena a's handle through arena b");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(mova_hsize(b, ha[1]), 0);
	cr_assert_eq(mova_hfree(b, ha[2]), EINVAL);
	cr_assert_eq(mova_hfree(a, hb[2]), EINVAL);
	mova_stats sa, sb;
	mova_stats_get(a, &sa);
	mova_stats_get(b, &sb);
	cr_assert_eq(sa.live_handles, N);
	cr_assert_eq(sb.live_handles, N);
	cr_assert_eq(sa.live_bytes, N * 64 + N * (N - 1) / 2);
	cr_assert_eq(sb.live_bytes, N * 5000 + N * (N - 1) / 2);
	for (int i = 0; i < N; i++) {
		const char *pa = mova_pin(a, ha[i]), *pb = mova_pin(b, hb[i]);
		cr_assert(pa[0] == 'a' && pa[63 + i] == 'a');
		cr_assert(pb[0] == 'b' && pb[4999 + i] == 'b');
		mova_unpin(a, ha[i]);
		mova_unpin(b, hb[i]);
	}
	mova_arena_destroy(a);
	/* b lives on */
	for (int i = 0; i < N; i += 2)
		cr_assert_eq(mova_hfree(b, hb[i]), 0);
	mova_handle h = mova_halloc(b, 300);
	cr_assert_neq(h, MOVA_NULL);
	mova_arena *c = small_arena(0);
	cr_assert_eq(mova_hfree(c, ha[5]), EINVAL, "a dead arena's handle freed in a new one");
	cr_assert_eq(mova_hfree(c, hb[5]), EINVAL);
	mova_stats_get(b, &sb);
	cr_assert_eq(sb.live_handles, N / 2 + 1);
	mova_arena_destroy(c);
	mova_arena_destroy(b);
}

/* ------------------------------------------------------------ huge pages */

/* Run conf_probe with MOVA_CONF=conf: its stderr into err, and the
 * thp_mode and thp_system it printed. */
static void thp_probe(const char *conf, char *err, size_t errcap, unsigned *mode, unsigned *sys)
{
	char outbuf[512];
	conf_probe_run(conf, outbuf, sizeof outbuf, err, errcap);
	const char *t = strstr(outbuf, "thp_mode=");
	cr_assert_not_null(t, "conf_probe printed '%s'", outbuf);
	cr_assert_eq(sscanf(t, "thp_mode=%u thp_system=%u", mode, sys), 2, "'%s'", outbuf);
}

Test(config, thp_conf_parsed, .timeout = 60)
{
	char err[1024];
	unsigned mode, sys;
	thp_probe("thp:never", err, sizeof err, &mode, &sys);
	cr_assert_str_eq(err, "");
	cr_assert_eq(mode, MOVA_THP_NEVER);
	/* the policy in force: never wherever the system's setting is never */
	bool sys_never = sys == MOVA_THP_NEVER;
	thp_probe("thp:always", err, sizeof err, &mode, &sys);
	cr_assert_str_eq(err, "");
	cr_assert_eq(mode, sys_never ? MOVA_THP_NEVER : MOVA_THP_ALWAYS);
	thp_probe("thp:madvise", err, sizeof err, &mode, &sys);
	cr_assert_str_eq(err, "");
	cr_assert_eq(mode, sys_never ? MOVA_THP_NEVER : MOVA_THP_MADVISE);
	thp_probe("thp:1", err, sizeof err, &mode, &sys);
	cr_assert_str_eq(err, "", "the number of MOVA_THP_NEVER is taken too");
	cr_assert_eq(mode, MOVA_THP_NEVER);
	/* a bad value is named and ignored: the default stays, madvise */
	thp_probe("thp:sometimes", err, sizeof err, &mode, &sys);
	cr_assert_str_eq(err,
			 "mova: MOVA_CONF: bad value 'sometimes' for thp (want never, madvise or "
			 "always); ignored\n");
	cr_assert_eq(mode, sys_never ? MOVA_THP_NEVER : MOVA_THP_MADVISE);
	thp_probe("thp:3,thp:neverr,thp:", err, sizeof err, &mode, &sys);
	cr_assert_str_eq(err,
			 "mova: MOVA_CONF: bad value '3' for thp (want never, madvise or always); "
			 "ignored\n"
			 "mova: MOVA_CONF: bad value 'neverr' for thp (want never, madvise or "
			 "always); ignored\n"
			 "mova: MOVA_CONF: bad value '' for thp (want never, madvise or always); "
			 "ignored\n");
	cr_assert_eq(mode, sys_never ? MOVA_THP_NEVER : MOVA_THP_MADVISE);
}

/* What /proc/self/smaps says of the mappings overlapping [p, p + len):
 * AnonHugePages summed, and whether the one holding p has the VmFlags
 * hg (MADV_HUGEPAGE) or nh (MADV_NOHUGEPAGE). */
struct smaps_range {
	size_t anon_huge;
	bool hg, nh;
};

static struct smaps_range smaps_of(const void *p, size_t len)
{
	struct smaps_range r = {0, false, false};
	FILE *f = fopen("/proc/self/smaps", "r");
	cr_assert_not_null(f);
	char line[512];
	uintptr_t lo = 0, hi = 0, a = (uintptr_t)p;
	bool in = false;
	while (fgets(line, sizeof line, f)) {
		unsigned long s0, e0;
		if (sscanf(line, "%lx-%lx ", &s0, &e0) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			lo = s0;
			hi = e0;
			in = lo < a + len && hi > a;
			continue;
		}
		size_t kb;
		if (in && sscanf(line, "AnonHugePages: %zu kB", &kb) == 1)
			r.anon_huge += kb << 10;
		if (in && lo <= a && a < hi && !strncmp(line, "VmFlags:", 8)) {
			r.hg = strstr(line, " hg") != NULL;
			r.nh = strstr(line, " nh") != NULL;
		}
	}
	fclose(f);
	return r;
}

/* an arena with a large object of 8 MiB (whole pageblocks), touched */
static mova_arena *thp_arena(unsigned thp, mova_handle *h, char **p)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.thp = thp;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a);
	*h = mova_halloc(a, 8 * MiB);
	cr_assert_neq(*h, MOVA_NULL);
	*p = mova_pin(a, *h);
	cr_assert_not_null(*p);
	memset(*p, 0x5a, 8 * MiB);
	return a;
}

static bool thp_system_never(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	if (st.thp_system == MOVA_THP_NEVER) {
		cr_log_info("transparent huge pages are off on this system: nothing to check");
		return true;
	}
	return false;
}

Test(config, thp_madvise_large_object, .timeout = 60)
{
	if (thp_system_never())
		return;
	mova_handle h;
	char *p;
	mova_arena *a = thp_arena(MOVA_THP_MADVISE, &h, &p);
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.thp_mode, MOVA_THP_MADVISE);
	/* 8 MiB covers at least three whole pageblocks, advised as a run */
	cr_assert_geq(st.thp_advised, 3, "advised %llu", (unsigned long long)st.thp_advised);
	cr_assert_eq(st.thp_advised_pageblocks, st.thp_advised);
	/* the advice is in the kernel's flags of the object's middle */
	struct smaps_range r = smaps_of(p + 4 * MiB, 1);
	cr_assert(r.hg && !r.nh, "the object's mapping is not advised MADV_HUGEPAGE");
	/* huge pages themselves are the kernel's to give (it may fall back) */
	r = smaps_of(p, 8 * MiB);
	cr_log_info("AnonHugePages over the object: %zu KiB", r.anon_huge >> 10);
	cr_assert_eq(mova_unpin(a, h), 0);
	cr_assert_eq(mova_hfree(a, h), 0);
	/* given back: the advice is taken back with it */
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, &st);
	cr_assert_eq(st.thp_advised_pageblocks, 0, "%llu pageblocks still advised",
		     (unsigned long long)st.thp_advised_pageblocks);
	cr_assert_geq(st.thp_unadvised, 3);
	mova_arena_destroy(a);
}

Test(config, thp_never_large_object, .timeout = 60)
{
	if (thp_system_never())
		return;
	mova_handle h;
	char *p;
	mova_arena *a = thp_arena(MOVA_THP_NEVER, &h, &p);
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.thp_mode, MOVA_THP_NEVER);
	cr_assert_eq(st.thp_advised, 0);
	struct smaps_range r = smaps_of(p, 8 * MiB);
	cr_assert(r.nh && !r.hg, "the arena is not advised MADV_NOHUGEPAGE");
	cr_assert_eq(r.anon_huge, 0, "%zu bytes of huge pages under thp=never", r.anon_huge);
	cr_assert_eq(mova_unpin(a, h), 0);
	mova_arena_destroy(a);
}

Test(config, thp_small_arena_not_advised, .timeout = 60)
{
	if (thp_system_never())
		return;
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a);
	/* a few MiB of small objects: no pageblock of it is taken as dense,
	 * so the process is not made to fault 2 MiB at a time for them */
	static mova_handle hs[20000];
	for (size_t i = 0; i < 20000; i++) {
		hs[i] = mova_halloc(a, 100);
		cr_assert_neq(hs[i], MOVA_NULL);
	}
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_eq(st.thp_advised, 0, "%llu pageblocks advised for 2 MiB of objects",
		     (unsigned long long)st.thp_advised);
	for (size_t i = 0; i < 20000; i++)
		cr_assert_eq(mova_hfree(a, hs[i]), 0);
	mova_arena_destroy(a);
}

Test(config, thp_dense_pageblocks_advised, .timeout = 60)
{
	if (thp_system_never())
		return;
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a);
	/* 64 MiB of small objects: past the first pageblocks, each new one is
	 * taken as dense and advised; memory use stays what mova counts */
	size_t n = 64 * MiB / 256;
	mova_handle *hs = malloc(n * sizeof *hs);
	cr_assert_not_null(hs);
	for (size_t i = 0; i < n; i++) {
		hs[i] = mova_halloc(a, 256);
		cr_assert_neq(hs[i], MOVA_NULL);
	}
	mova_stats st;
	mova_stats_get(a, &st);
	cr_assert_geq(st.thp_advised, 16, "only %llu pageblocks advised",
		      (unsigned long long)st.thp_advised);
	cr_assert_leq(st.thp_advised, st.nr_pageblocks[MOVA_MIGRATE_MOVABLE]);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mova_hfree(a, hs[i]), 0);
	free(hs);
	/* everything given back: no advice is left */
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats_get(a, &st);
	cr_assert_eq(st.thp_advised_pageblocks, 0);
	mova_arena_destroy(a);
}
