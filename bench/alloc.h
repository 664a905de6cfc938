/* SPDX-License-Identifier: MIT */
/*
 * alloc.h: which allocator a benchmark executable measures, and the
 * helpers every benchmark shares.
 *
 * Every allocator gets its own executables built from the same C sources
 * (bench/meson.build), so that each peer runs as it really runs: linked so
 * that it replaces malloc in the whole process. BM_MALLOC and friends are
 * mova_malloc and friends in the mova build (-DBENCH_MOVA, libmova.so; the
 * process's own malloc stays glibc's), and plain malloc elsewhere (glibc,
 * or jemalloc, mimalloc, tcmalloc linked in; or anything under LD_PRELOAD).
 *
 * The allocator actually in charge is found at run time (dladdr on
 * malloc), and so is its give-back call (dlsym), as BENCH.md says:
 *   jemalloc  mallctl("arena.4096.purge")   (MALLCTL_ARENAS_ALL)
 *   mimalloc  mi_collect(true)              (the calling thread's heap only)
 *   tcmalloc  MallocExtension_ReleaseFreeMemory()
 *   glibc     malloc_trim(0)
 *   mova      mova_compact(mova_default_arena(), -1)
 */
#ifndef MOVA_BENCH_ALLOC_H
#define MOVA_BENCH_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "gbench.h"

#ifdef BENCH_MOVA
#include <mova.h>
#define BM_MALLOC(n) mova_malloc(n)
#define BM_FREE(p) mova_free(p)
#define BM_REALLOC(p, n) mova_realloc((p), (n))
#define BM_ALIGNED(al, n) mova_aligned_alloc((al), (n))
#else
#define BM_MALLOC(n) malloc(n)
#define BM_FREE(p) free(p)
#define BM_REALLOC(p, n) realloc((p), (n))
#define BM_ALIGNED(al, n) aligned_alloc((al), (n))
#endif

#ifndef BENCH_ALLOC_NAME
#error "BENCH_ALLOC_NAME names the allocator this executable is built for"
#endif

/* The allocator measured ("mova", "glibc", "jemalloc", ...): the build's,
 * or the one found in charge of malloc when it was preloaded. */
const char *bm_allocator(void);
/* Check that the allocator in charge is the one this executable was built
 * for (or a preloaded one), and record both in the benchmark context.
 * Exits with a message when a peer failed to replace malloc. */
void bm_init(void);

/* The allocator's give-back call, made by the calling thread. */
void bm_give_back(void);
const char *bm_give_back_name(void);

/* ------------------------------------------------------------ helpers */

/* How long the workloads run: BENCH_SCALE=smoke|quick|full (default quick). */
enum bm_scale { BM_SMOKE, BM_QUICK, BM_FULL };
enum bm_scale bm_scale(void);
/* Pick by scale. */
#define BM_BY_SCALE(smoke, quick, full) \
	(bm_scale() == BM_SMOKE ? (smoke) : bm_scale() == BM_QUICK ? (quick) : (full))

/* Where the macro workloads write their time series (BENCH_SERIES_DIR),
 * or NULL for nowhere. */
const char *bm_series_dir(void);

/* Anonymous resident memory of the process, in bytes: statm's resident
 * minus shared (file-backed) pages. Cheap (no page walk). */
size_t bm_rss_anon(void);
/* The same from /proc/self/smaps_rollup (Anonymous:), exact but slower. */
size_t bm_rss_anon_exact(void);

static inline uint64_t bm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Bookkeeping memory outside every allocator (mmap), zeroed and touched,
 * so that it sits in the baseline of resident memory. */
void *bm_map(size_t bytes);
void bm_unmap(void *p, size_t bytes);

/* splitmix64: a fast, decent generator; one per thread. */
struct bm_rng {
	uint64_t s;
};
static inline uint64_t bm_rand(struct bm_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
/* uniform in [0, n) */
static inline uint64_t bm_rand_below(struct bm_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)bm_rand(r) * n) >> 64);
}
/* uniform in [0, 1) */
static inline double bm_rand01(struct bm_rng *r)
{
	return (double)(bm_rand(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------ suites */

void bm_register_micro_malloc(void);
#ifdef BENCH_MOVA
void bm_register_micro_handle(void);
#endif

#endif
