/* SPDX-License-Identifier: MIT */
/*
 * mig_util.h: what the migration tests share (see docs/MIGRATION.md): the
 * test framework (Criterion, or tests/common/cr_standalone.c where
 * Criterion cannot run: ThreadSanitizer), failures recorded by worker
 * threads, object patterns, arenas, threads, clocks and statistics.
 * Worker threads never call the framework's asserts: they record the first
 * failure, which the main thread reports with mig_assert_no_errors().
 * Everything here is static (inline), included by one test program each.
 */
#ifndef MIG_UTIL_H
#define MIG_UTIL_H

#ifdef MV_CR_STANDALONE
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mova.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MIG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MIG_SANITIZED 1
#endif
#endif
#ifndef MIG_SANITIZED
#define MIG_SANITIZED 0
#endif

/* ------------------------------------------------------------ failures */

static _Atomic unsigned long mig_nr_errors;
static char mig_first_error[512];

__attribute__((format(printf, 1, 2))) static inline void mig_fail(const char *fmt, ...)
{
	if (atomic_fetch_add(&mig_nr_errors, 1) != 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(mig_first_error, sizeof mig_first_error, fmt, ap);
	va_end(ap);
}

static inline unsigned long mig_errors(void)
{
	return atomic_load(&mig_nr_errors);
}

#define mig_assert_no_errors()                                                         \
	cr_assert_eq(mig_errors(), 0, "%lu failures in worker threads; the first: %s", \
		     mig_errors(), mig_first_error)

/* ------------------------------------------------------------ time, randomness */

static inline uint64_t mig_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void mig_sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* how long a concurrent phase runs: MOVA_MIG_MS, or ms */
static inline unsigned mig_phase_ms(unsigned ms)
{
	const char *e = getenv("MOVA_MIG_MS");
	if (e && atoi(e) > 0)
		return (unsigned)atoi(e);
	return ms;
}

static inline uint64_t mig_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static inline uint64_t mig_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ------------------------------------------------------------ objects */

/* Every test object starts with this header; the rest is a pattern that
 * depends on (tag, ver) and on the offset, so a torn copy, a lost write,
 * another object's bytes or reused memory all show. */
struct mig_obj {
	uint64_t tag;  /* which object */
	uint64_t ver;  /* which version of it */
	uint64_t size; /* the size asked for */
};
#define MIG_MIN_SIZE sizeof(struct mig_obj)

static inline void mig_fill(void *p, size_t size, uint64_t tag, uint64_t ver)
{
	struct mig_obj *o = p;
	o->tag = tag;
	o->ver = ver;
	o->size = size;
	unsigned char *b = p;
	uint64_t w = mig_mix(tag * 0x100000001b3ull + ver);
	for (size_t off = sizeof *o; off < size; off++)
		b[off] = (unsigned char)(w >> ((off & 7) * 8)) ^ (unsigned char)(off >> 3);
}

/* -1 if p holds version ver of object tag of size bytes, else the offset of
 * the first wrong byte */
static inline long mig_check(const void *p, size_t size, uint64_t tag, uint64_t ver)
{
	const struct mig_obj *o = p;
	if (o->tag != tag)
		return 0;
	if (o->ver != ver)
		return 8;
	if (o->size != size)
		return 16;
	const unsigned char *b = p;
	uint64_t w = mig_mix(tag * 0x100000001b3ull + ver);
	for (size_t off = sizeof *o; off < size; off++)
		if (b[off] != ((unsigned char)(w >> ((off & 7) * 8)) ^ (unsigned char)(off >> 3)))
			return (long)off;
	return -1;
}

/* ------------------------------------------------------------ arenas, stats */

static inline mova_arena *mig_arena(int kcompactd, unsigned proactiveness, size_t cma_bytes)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 1024 * MiB;
	cfg.kcompactd = kcompactd;
	cfg.proactiveness = proactiveness;
	cfg.cma_bytes = cma_bytes;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create: errno %d", errno);
	return a;
}

static inline mova_stats mig_stats(mova_arena *a)
{
	mova_stats st;
	mova_stats_get(a, &st);
	return st;
}

/* a new object of size bytes holding version 0 of tag */
static inline mova_handle mig_new(mova_arena *a, size_t size, uint64_t tag)
{
	mova_handle h = mova_halloc(a, size);
	if (h == MOVA_NULL) {
		mig_fail("halloc(%zu): errno %d", size, errno);
		return h;
	}
	void *p = mova_pin(a, h);
	if (!p) {
		mig_fail("pin of a new handle: errno %d", errno);
		return h;
	}
	mig_fill(p, size, tag, 0);
	if (mova_unpin(a, h))
		mig_fail("unpin of a new handle failed");
	return h;
}

/* pin h, check that it holds (tag, ver) of size bytes, unpin */
static inline void mig_verify(mova_arena *a, mova_handle h, size_t size, uint64_t tag, uint64_t ver,
			      const char *what)
{
	const unsigned char *p = mova_pin(a, h);
	if (!p) {
		mig_fail("%s: pin of a live handle failed: errno %d", what, errno);
		return;
	}
	long bad = mig_check(p, size, tag, ver);
	if (bad >= 0)
		mig_fail("%s: object %llu (size %zu, version %llu) wrong at offset %ld", what,
			 (unsigned long long)tag, size, (unsigned long long)ver, bad);
	size_t hs = mova_hsize(a, h);
	if (hs != size)
		mig_fail("%s: hsize %zu, asked for %zu", what, hs, size);
	if (mova_unpin(a, h))
		mig_fail("%s: unpin failed", what);
}

/* ------------------------------------------------------------ threads */

static inline void mig_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(t, NULL, fn, arg);
	cr_assert_eq(rc, 0, "pthread_create: %d", rc);
}

static inline void mig_join(pthread_t t)
{
	int rc = pthread_join(t, NULL);
	cr_assert_eq(rc, 0, "pthread_join: %d", rc);
}

/* The compactor: full compactions (pack, migrate scanner against free
 * scanner, give back) and direct compactions for some orders, until told
 * to stop. */
struct mig_compactor {
	mova_arena *a;
	_Atomic int stop;
	_Atomic unsigned long rounds;
	int orders_only; /* only mova_compact(a, order >= 0) */
};

static inline void *mig_compactor_main(void *arg)
{
	struct mig_compactor *c = arg;
	static const int orders[] = {2, 4, 6, 9};
	unsigned k = 0;
	while (!atomic_load(&c->stop)) {
		if (!c->orders_only) {
			int r = mova_compact(c->a, -1);
			if (r != 0)
				mig_fail("mova_compact(-1) returned %d", r);
		}
		int o = orders[k++ % (sizeof orders / sizeof orders[0])];
		int r = mova_compact(c->a, o);
		if (r < 0 || r > MOVA_COMPACT_CONTENDED)
			mig_fail("mova_compact(%d) returned %d", o, r);
		atomic_fetch_add(&c->rounds, 1);
	}
	return NULL;
}

#endif
