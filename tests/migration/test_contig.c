/* SPDX-License-Identifier: MIT */
/*
 * test_contig.c: mova_alloc_contig in an arena whose pageblocks all hold
 * movable objects (alloc_contig_range: isolate, migrate out with
 * MR_CONTIG_RANGE, take the range), and with CMA pageblocks that movable
 * objects used first. Every range must be page-aligned, writable, of the
 * size asked for; every object must keep its contents, also while writers
 * pin and write them during the allocations (docs/MIGRATION.md, I1, I2);
 * the migrations must show in pgmigrate_success.
 */
#include "mig_util.h"

#define CT_SIZE 512

struct objs {
	mova_handle *h;
	uint64_t *count;
	unsigned n;
};

/* Fill at least min_bytes with objects of CT_SIZE, then free every other
 * one: every slab keeps half its objects, so no pageblock is free. */
static struct objs fill_half(mova_arena *a, size_t min_bytes)
{
	unsigned total = (unsigned)(min_bytes / CT_SIZE);
	struct objs o = {malloc(sizeof(mova_handle) * total / 2 + 8),
			 calloc(total / 2 + 1, sizeof(uint64_t)), 0};
	cr_assert(o.h && o.count);
	mova_handle *odd = malloc(sizeof(mova_handle) * total / 2 + 8);
	cr_assert_not_null(odd);
	unsigned nodd = 0;
	for (unsigned k = 0; k < total; k++) {
		if (k % 2 == 0) {
			o.h[o.n] = mig_new(a, CT_SIZE, o.n);
			o.n++;
		} else {
			odd[nodd] = mova_halloc(a, CT_SIZE);
			cr_assert_neq(odd[nodd], MOVA_NULL);
			nodd++;
		}
	}
	for (unsigned k = 0; k < nodd; k++)
		cr_assert_eq(mova_hfree(a, odd[k]), 0);
	free(odd);
	mig_assert_no_errors();
	return o;
}

static void verify_all(mova_arena *a, struct objs *o, const char *what)
{
	for (unsigned i = 0; i < o->n; i++)
		mig_verify(a, o->h[i], CT_SIZE, i, o->count[i], what);
	mig_assert_no_errors();
}

static void free_all(mova_arena *a, struct objs *o)
{
	for (unsigned i = 0; i < o->n; i++)
		cr_assert_eq(mova_hfree(a, o->h[i]), 0);
	free(o->h);
	free(o->count);
}

/* allocate nr pages contiguously, check the range and write it */
static unsigned char *contig_new(mova_arena *a, size_t nr, int byte)
{
	unsigned char *p = mova_alloc_contig(a, nr);
	cr_assert_not_null(p, "mova_alloc_contig(%zu): errno %d", nr, errno);
	cr_assert_eq((uintptr_t)p % MOVA_PAGE_SIZE, 0, "%p is not page-aligned", (void *)p);
	memset(p, byte, nr * MOVA_PAGE_SIZE);
	return p;
}

static void contig_check(const unsigned char *p, size_t nr, int byte)
{
	size_t bytes = nr * MOVA_PAGE_SIZE;
	for (size_t i = 0; i < bytes; i += 509)
		cr_assert_eq(p[i], (unsigned char)byte, "range %p changed at %zu", (void *)p, i);
	cr_assert_eq(p[bytes - 1], (unsigned char)byte);
}

/* free a range, after checking that wrong frees of it are refused */
static void contig_free(mova_arena *a, unsigned char *p, size_t nr)
{
	cr_assert_eq(mova_free_contig(a, p, nr + 1), EINVAL, "a wrong size must be refused");
	if (nr > 1)
		cr_assert_eq(mova_free_contig(a, p + MOVA_PAGE_SIZE, nr - 1), EINVAL,
			     "an interior pointer must be refused");
	cr_assert_eq(mova_free_contig(a, p, nr), 0);
	cr_assert_eq(mova_free_contig(a, p, nr), EINVAL, "a second free must be refused");
}

Test(contig, clears_movable_pageblocks, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	mova_stats st = mig_stats(a);
	size_t pb_pages = (size_t)1 << st.pageblock_order;
	struct objs o = fill_half(a, 10 * (pb_pages * MOVA_PAGE_SIZE));
	/* every populated pageblock holds movable objects: nothing to take as it is */
	mova_pageblock_info info[64];
	size_t nb = mova_pageblocks(a, info, 64);
	unsigned with_objects = 0;
	for (size_t b = 0; b < nb && b < 64; b++)
		with_objects += info[b].movable_pages > 0;
	cr_assert_geq(with_objects, 8, "%u pageblocks hold objects", with_objects);
	/* the ranges are held, so each must clear pageblocks of its own */
	enum { NR = 4 };
	const size_t sizes[NR] = {1, 37, pb_pages, 3 * pb_pages + 5};
	unsigned char *p[NR];
	for (unsigned k = 0; k < NR; k++) {
		mova_stats st0 = mig_stats(a);
		p[k] = contig_new(a, sizes[k], 0x40 + (int)k);
		mova_stats st1 = mig_stats(a);
		fprintf(stderr, "contig: %zu pages at %p: pgmigrate_success +%llu\n", sizes[k],
			(void *)p[k],
			(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success));
		cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success,
			     "%zu pages came without migrating anything", sizes[k]);
		verify_all(a, &o, "after a contiguous allocation");
	}
	for (unsigned k = 0; k < NR; k++) {
		for (unsigned j = 0; j < k; j++)
			cr_assert(p[j] + sizes[j] * MOVA_PAGE_SIZE <= p[k] ||
				      p[k] + sizes[k] * MOVA_PAGE_SIZE <= p[j],
				  "ranges %u and %u overlap", j, k);
		contig_check(p[k], sizes[k], 0x40 + (int)k);
	}
	for (unsigned k = 0; k < NR; k++)
		contig_free(a, p[k], sizes[k]);
	verify_all(a, &o, "after the ranges were freed");
	/* and again, now that free pageblocks exist */
	for (unsigned k = 0; k < NR; k++) {
		p[k] = contig_new(a, sizes[k], 0x50 + (int)k);
		contig_check(p[k], sizes[k], 0x50 + (int)k);
		contig_free(a, p[k], sizes[k]);
	}
	verify_all(a, &o, "at the end");
	free_all(a, &o);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ with writers */

struct ctw {
	mova_arena *a;
	_Atomic int *stop;
	struct objs *o;
	unsigned first, n;
	uint64_t seed;
	unsigned long pins;
};

static void *ct_writer(void *arg)
{
	struct ctw *w = arg;
	while (!atomic_load(w->stop) && !mig_errors()) {
		unsigned i = w->first + (unsigned)(mig_rand(&w->seed) % w->n);
		unsigned char *p = mova_pin(w->a, w->o->h[i]);
		if (!p) {
			mig_fail("writer: pin of a live handle failed: errno %d", errno);
			break;
		}
		long bad = mig_check(p, CT_SIZE, i, w->o->count[i]);
		if (bad >= 0)
			mig_fail("writer: object %u version %llu wrong at offset %ld", i,
				 (unsigned long long)w->o->count[i], bad);
		w->o->count[i]++;
		mig_fill(p, CT_SIZE, i, w->o->count[i]);
		if (mova_unpin(w->a, w->o->h[i]))
			mig_fail("writer: unpin failed");
		w->pins++;
	}
	return NULL;
}

Test(contig, while_writers_pin, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	mova_stats st = mig_stats(a);
	size_t pb_pages = (size_t)1 << st.pageblock_order;
	struct objs o = fill_half(a, 10 * (pb_pages * MOVA_PAGE_SIZE));
	_Atomic int stop = 0;
	struct ctw w[2];
	pthread_t tw[2];
	for (unsigned t = 0; t < 2; t++) {
		w[t] = (struct ctw){a, &stop, &o, t * (o.n / 2), o.n / 2, 31 + t, 0};
		mig_spawn(&tw[t], ct_writer, &w[t]);
	}
	mova_stats st0 = mig_stats(a);
	/* the ranges are held, so that each needs pageblocks cleared while the
	 * writers pin and write the objects in them */
	enum { ROUNDS = 6 };
	unsigned char *p[ROUNDS];
	size_t nr[ROUNDS];
	unsigned ok = 0, rounds = ROUNDS;
	for (unsigned r = 0; r < rounds && !mig_errors(); r++) {
		nr[r] = r % 2 ? pb_pages : pb_pages / 2 + r;
		p[r] = mova_alloc_contig(a, nr[r]);
		if (!p[r])
			continue; /* every candidate range had a pinned object through every pass */
		cr_assert_eq((uintptr_t)p[r] % MOVA_PAGE_SIZE, 0);
		memset(p[r], 0x5a + (int)r, nr[r] * MOVA_PAGE_SIZE);
		ok++;
	}
	for (unsigned r = 0; r < rounds; r++) {
		if (!p[r])
			continue;
		contig_check(p[r], nr[r], 0x5a + (int)r);
		cr_assert_eq(mova_free_contig(a, p[r], nr[r]), 0);
	}
	atomic_store(&stop, 1);
	mig_join(tw[0]);
	mig_join(tw[1]);
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	fprintf(stderr, "contig with writers: %u of %u ranges, %lu pins, pgmigrate_success +%llu\n",
		ok, rounds, w[0].pins + w[1].pins,
		(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success));
	cr_assert_geq(ok, rounds / 2, "only %u of %u contiguous allocations succeeded", ok, rounds);
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success);
	verify_all(a, &o, "after contiguous allocations with writers");
	free_all(a, &o);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ CMA */

Test(contig, cma_serves_movable_then_contig, .timeout = 120)
{
	mova_config cfg;
	mova_config_init(&cfg);
	size_t pb_bytes = ((size_t)1 << 9) * MOVA_PAGE_SIZE;
	cfg.reserve_bytes = 1024 * MiB;
	cfg.kcompactd = 0;
	cfg.cma_bytes = 2 * pb_bytes;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create: errno %d", errno);
	mova_stats st = mig_stats(a);
	cr_assert_eq(st.pageblock_order, 9);
	cr_assert_eq(st.nr_pageblocks[MOVA_MIGRATE_CMA], 2, "%llu CMA pageblocks",
		     (unsigned long long)st.nr_pageblocks[MOVA_MIGRATE_CMA]);
	size_t pb_pages = pb_bytes / MOVA_PAGE_SIZE;
	/* movable objects may use CMA pageblocks until a contiguous request comes */
	struct objs o = fill_half(a, 8 * pb_bytes);
	mova_pageblock_info info[64];
	size_t nb = mova_pageblocks(a, info, 64);
	unsigned cma_used = 0;
	for (size_t b = 0; b < nb && b < 64; b++)
		if (info[b].migratetype == MOVA_MIGRATE_CMA)
			cma_used += info[b].movable_pages > 0;
	cr_assert_gt(cma_used, 0, "no movable object went to a CMA pageblock");
	mova_stats st0 = mig_stats(a);
	unsigned char *p = mova_alloc_contig(a, pb_pages);
	cr_assert_not_null(p, "mova_alloc_contig: errno %d", errno);
	cr_assert_eq((uintptr_t)p % MOVA_PAGE_SIZE, 0);
	memset(p, 0x3c, pb_bytes);
	mova_stats st1 = mig_stats(a);
	/* the range is a CMA pageblock that held objects, now wholly the range */
	nb = mova_pageblocks(a, info, 64);
	unsigned cma_taken = 0;
	for (size_t b = 0; b < nb && b < 64; b++)
		if (info[b].migratetype == MOVA_MIGRATE_CMA &&
		    info[b].unmovable_pages == pb_pages && info[b].movable_pages == 0)
			cma_taken++;
	fprintf(stderr,
		"cma: %u CMA pageblocks held objects; contig took %u, pgmigrate_success +%llu\n",
		cma_used, cma_taken,
		(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success));
	cr_assert_eq(cma_taken, 1, "the range did not come from a CMA pageblock");
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success,
		     "the CMA pageblock was cleared without migrating");
	verify_all(a, &o, "after the CMA allocation");
	cr_assert_eq(mova_free_contig(a, p, pb_pages), 0);
	/* given back, the CMA pageblock serves movable objects again */
	mova_stats st2 = mig_stats(a);
	cr_assert_eq(st2.nr_pageblocks[MOVA_MIGRATE_CMA], 2);
	verify_all(a, &o, "after the CMA range was freed");
	free_all(a, &o);
	mova_arena_destroy(a);
}
