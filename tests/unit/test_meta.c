/* SPDX-License-Identifier: MIT */
/*
 * test_meta.c: the metadata pool (lib/meta.h), a small slab allocator of
 * its own, on pools made by the test.
 *  - blocks are 64-byte aligned, zeroed, of the documented sizes (64-byte
 *    steps to 2 KiB, 256-byte steps to 16 KiB), carved in order from one
 *    128 KiB chunk per size;
 *  - a freed block is the next one handed out, zeroed again;
 *  - a chunk fills, the next block comes from a new chunk; a chunk whose
 *    blocks are all free goes back to the OS (mapped_bytes) and is reused
 *    for any size;
 *  - extents of address space are reserved as chunks are needed;
 *  - blocks beyond 16 KiB are mapped directly and unmapped on free;
 *  - two threads at once: no block handed out twice, and once everything
 *    is freed nothing stays mapped.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

TestSuite(meta, .timeout = 60);

static struct mv_meta_pool pool;

static void setup(void)
{
	mv_meta_init(&pool);
}

static void teardown(void)
{
	mv_meta_destroy(&pool);
}

static size_t mapped(void)
{
	return atomic_load(&pool.mapped_bytes);
}

static uintptr_t chunk_of(const void *p)
{
	return (uintptr_t)p & ~(MV_META_CHUNK - 1);
}

static void assert_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(c[i], 0, "byte %zu of %zu not zero", i, n);
}

Test(meta, block_sizes_and_alignment, .init = setup, .fini = teardown)
{
	cr_assert_eq(mapped(), 0, "nothing reserved or backed up front");
	cr_assert_eq(pool.nr_extents, 0);
	const struct {
		size_t ask, block;
	} cases[] = {{1, 64},      {64, 64},     {65, 128},    {1000, 1024},
		     {2048, 2048}, {2049, 2304}, {5000, 5120}, {16384, 16384}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *a = mv_meta_alloc(&pool, cases[i].ask);
		char *b = mv_meta_alloc(&pool, cases[i].ask);
		cr_assert(a && b);
		cr_assert_eq((uintptr_t)a % 64, 0);
		cr_assert_eq(chunk_of(a), chunk_of(b), "one chunk per size");
		cr_assert_eq((size_t)(b - a), cases[i].block, "%zu bytes: blocks of %zu, not %zu",
			     cases[i].ask, (size_t)(b - a), cases[i].block);
		cr_assert_eq(((uintptr_t)a - chunk_of(a) - 64) % cases[i].block, 0,
			     "blocks follow the chunk's header, in order");
		assert_zero(a, cases[i].ask);
		assert_zero(b, cases[i].ask);
		memset(a, 0xa5, cases[i].ask);
		memset(b, 0x5a, cases[i].ask);
	}
	cr_assert_eq(mapped(), 7 * MV_META_CHUNK, "a chunk per size (1 and 64 bytes share one)");
	cr_assert_eq(pool.nr_extents, 1);
}

Test(meta, freed_block_reused_zeroed, .init = setup, .fini = teardown)
{
	char *a = mv_meta_alloc(&pool, 200);
	char *b = mv_meta_alloc(&pool, 200);
	memset(a, 0xff, 200);
	memset(b, 0xff, 200);
	mv_meta_free(&pool, a, 200);
	char *c = mv_meta_alloc(&pool, 200);
	cr_assert_eq(c, a, "the freed block first");
	assert_zero(c, 256);
	char *d = mv_meta_alloc(&pool, 200);
	cr_assert_eq(d, b + 256, "then the never used ones, in order");
	for (size_t i = 0; i < 200; i++)
		cr_assert_eq((unsigned char)b[i], 0xff, "a neighbour's bytes were touched");
}

Test(meta, chunk_fills_empties_and_is_reused, .init = setup, .fini = teardown)
{
	size_t nblocks = (MV_META_CHUNK - 64) / 64;
	void **p = calloc(nblocks, sizeof *p);
	for (size_t i = 0; i < nblocks; i++) {
		p[i] = mv_meta_alloc(&pool, 64);
		cr_assert_not_null(p[i]);
		cr_assert_eq((uintptr_t)p[i], chunk_of(p[0]) + 64 + 64 * i, "block %zu", i);
		memset(p[i], 0x77, 64);
	}
	cr_assert_eq(mapped(), MV_META_CHUNK);
	void *q = mv_meta_alloc(&pool, 64);
	cr_assert_neq(chunk_of(q), chunk_of(p[0]), "a full chunk gives no more");
	cr_assert_eq(mapped(), 2 * MV_META_CHUNK);
	/* all of the first chunk's blocks free: it goes back */
	for (size_t i = 0; i < nblocks; i++)
		mv_meta_free(&pool, p[i], 64);
	cr_assert_eq(mapped(), MV_META_CHUNK, "a wholly free chunk is given back");
	/* and is reused, for another size, zeroed */
	char *r = mv_meta_alloc(&pool, 1000);
	cr_assert_eq(chunk_of(r), chunk_of(p[0]), "the empty chunk reused for another size");
	cr_assert_eq(mapped(), 2 * MV_META_CHUNK);
	assert_zero(r, 1024);
	char *r2 = mv_meta_alloc(&pool, 1000);
	cr_assert_eq(r2, r + 1024);
	assert_zero(r2, 1024);
	/* the 64-byte class continues in q's chunk */
	void *q2 = mv_meta_alloc(&pool, 64);
	cr_assert_eq(chunk_of(q2), chunk_of(q));
	free(p);
}

Test(meta, extents_reserved_as_needed, .init = setup, .fini = teardown)
{
	size_t per_chunk = (MV_META_CHUNK - 64) / 16384; /* 7 */
	size_t chunks_per_extent = MV_META_EXTENT / MV_META_CHUNK;
	size_t n = per_chunk * (chunks_per_extent + 1);
	void **p = calloc(n, sizeof *p);
	for (size_t i = 0; i < n; i++) {
		p[i] = mv_meta_alloc(&pool, 16384);
		cr_assert_not_null(p[i]);
		cr_assert_eq(((uintptr_t)p[i] - 64) % 16384, 0);
		if (i == per_chunk * chunks_per_extent - 1)
			cr_assert_eq(pool.nr_extents, 1, "%zu chunks fit one extent",
				     chunks_per_extent);
	}
	cr_assert_eq(pool.nr_extents, 2, "a second extent for chunk %zu", chunks_per_extent + 1);
	cr_assert_eq(mapped(), (chunks_per_extent + 1) * MV_META_CHUNK);
	for (size_t e = 0; e < pool.nr_extents; e++)
		cr_assert_eq((uintptr_t)pool.extents[e] % MV_META_CHUNK, 0,
			     "extents chunk-aligned");
	for (size_t i = 0; i < n; i++) {
		uintptr_t c = chunk_of(p[i]);
		bool inside = false;
		for (size_t e = 0; e < pool.nr_extents; e++)
			inside |= c >= (uintptr_t)pool.extents[e] &&
				  c + MV_META_CHUNK <= (uintptr_t)pool.extents[e] + MV_META_EXTENT;
		cr_assert(inside, "block %zu outside every extent", i);
	}
	for (size_t i = 0; i < n; i++)
		mv_meta_free(&pool, p[i], 16384);
	cr_assert_eq(mapped(), 0, "all chunks given back");
	free(p);
}

Test(meta, large_blocks_mapped_directly, .init = setup, .fini = teardown)
{
	size_t size = MV_META_MAX_BLOCK + 1;
	char *p = mv_meta_alloc(&pool, size);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % 4096, 0);
	cr_assert_eq(mapped(), mv_align_up(size, 4096));
	cr_assert_eq(pool.nr_extents, 0, "no chunk for a large block");
	assert_zero(p, size);
	memset(p, 1, size);
	mv_meta_free(&pool, p, size);
	cr_assert_eq(mapped(), 0);
	cr_assert_eq(mv_global_meta(), mv_global_meta(), "one process-wide pool");
}

/* ------------------------------------------------------------ threads */

#define LIVE 64

static void *churn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t r = 0x9e3779b97f4a7c15ull * (id + 1);
	struct {
		unsigned char *p;
		size_t n;
		unsigned char tag;
	} live[LIVE] = {{0}};
	for (unsigned it = 0; it < 30000; it++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		unsigned k = (unsigned)(r % LIVE);
		if (live[k].p) {
			for (size_t i = 0; i < live[k].n; i++)
				if (live[k].p[i] != live[k].tag)
					return (void *)1; /* another thread's block overlapped */
			mv_meta_free(&pool, live[k].p, live[k].n);
		}
		size_t n = 1 + (size_t)((r >> 20) % 3000);
		unsigned char *p = mv_meta_alloc(&pool, n);
		if (!p)
			return (void *)2;
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return (void *)3; /* not zeroed */
		unsigned char tag = (unsigned char)(id * 64 + k + 1);
		memset(p, tag, n);
		live[k].p = p;
		live[k].n = n;
		live[k].tag = tag;
	}
	for (unsigned k = 0; k < LIVE; k++)
		if (live[k].p)
			mv_meta_free(&pool, live[k].p, live[k].n);
	return NULL;
}

Test(meta, two_threads_no_block_twice, .init = setup, .fini = teardown)
{
	pthread_t t[2];
	for (uintptr_t i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)i), 0);
	for (int i = 0; i < 2; i++) {
		void *ret;
		cr_assert_eq(pthread_join(t[i], &ret), 0);
		cr_assert_null(ret, "thread %d: %s", i,
			       ret == (void *)1   ? "a block's bytes changed under it"
			       : ret == (void *)2 ? "allocation failed"
						  : "a block was not zeroed");
	}
	cr_assert_eq(mapped(), 0, "everything freed: every chunk given back");
}
