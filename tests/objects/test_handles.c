/* SPDX-License-Identifier: MIT */
/*
 * test_handles.c: the handle API of include/mova.h, case by case, on a
 * private arena without kcompactd (1 GiB reserve): halloc/hcalloc at every
 * size class boundary and large sizes, hsize, pin/unpin (stable address,
 * nesting, release from another thread, the pin limit), hfree (pinned,
 * twice), stale, forged and foreign handles, absurd sizes, a NULL arena,
 * and deref inside a read section. Every object carries a pattern derived
 * from a seed, so any overlap, move that loses data or stray write shows.
 */
#ifdef MV_CR_STANDALONE /* ThreadSanitizer builds: see ../common/cr_standalone.c */
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mova.h"
#include "../common/pattern.h"

/* To forge handles: the encoding tag:17 | gen:15 | index:32 that mova.h's
 * inline mova_deref reads (MOVA_ABI 2 and 3). Not part of the contract: written
 * out here so that this test needs nothing but the public header. */
_Static_assert(MOVA_ABI == 2 || MOVA_ABI == 3, "the handle encoding below is MOVA_ABI 2 and 3's");
static inline mova_handle forge_handle(uint32_t tag, uint32_t gen, uint32_t idx)
{
	return ((uint64_t)tag << 47) | ((uint64_t)(gen & 0x7fff) << 32) | idx;
}
static inline uint32_t handle_tag(mova_handle h)
{
	return (uint32_t)(h >> 47);
}
static inline uint32_t handle_gen(mova_handle h)
{
	return (uint32_t)((h >> 32) & 0x7fff);
}
static inline uint32_t handle_index(mova_handle h)
{
	return (uint32_t)h;
}

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

static mova_arena *arena;

static void setup(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = GiB;
	arena = mova_arena_create(&cfg);
	cr_assert_not_null(arena, "mova_arena_create: errno %d", errno);
}

static void teardown(void)
{
	mova_arena_destroy(arena);
	arena = NULL;
}

TestSuite(handles, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ helpers */

/* The sizes around every movable size class boundary (16-byte steps to
 * 1 KiB, then 16 classes per doubling to 16 KiB), plus the small oddities
 * and the first large size. Returns how many were written. */
static size_t boundary_sizes(size_t *out, size_t max)
{
	size_t n = 0;
	const size_t first[] = {0, 1, 2, 7, 8, 15, 16, 17};
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		out[n++] = first[i];
	for (size_t s = 32; s <= 1024; s += 16) {
		out[n++] = s - 1;
		out[n++] = s;
		out[n++] = s + 1;
	}
	for (size_t base = 1024; base < 16384; base *= 2)
		for (size_t k = 1; k <= 16; k++) {
			size_t s = base + k * (base / 16);
			out[n++] = s - 1;
			out[n++] = s;
			out[n++] = s + 1;
		}
	cr_assert_leq(n, max);
	return n;
}

static const size_t large_sizes[] = {
    16 * KiB + 1, 20000,   64 * KiB, 100 * KiB,   1 * MiB,
    1 * MiB + 1,  4 * MiB, 5 * MiB,  5 * MiB + 3, 9 * MiB - 1,
};
#define NR_LARGE (sizeof large_sizes / sizeof large_sizes[0])

static uint64_t seed_of(mova_handle h, size_t size)
{
	return mix64(h ^ (size << 1));
}

/* allocate, pin, fill, unpin: a handle whose object carries seed_of(h, size) */
static mova_handle make_obj(size_t size)
{
	mova_handle h = mova_halloc(arena, size);
	cr_assert_neq(h, MOVA_NULL, "mova_halloc(%zu): errno %d", size, errno);
	void *p = mova_pin(arena, h);
	cr_assert_not_null(p, "mova_pin of a fresh handle (size %zu): errno %d", size, errno);
	fill(p, size, seed_of(h, size));
	cr_assert_eq(mova_unpin(arena, h), 0);
	return h;
}

/* pin and verify size and contents, then unpin */
static void verify_obj(mova_handle h, size_t size)
{
	cr_assert_eq(mova_hsize(arena, h), size, "hsize %zu, expected %zu", mova_hsize(arena, h),
		     size);
	void *p = mova_pin(arena, h);
	cr_assert_not_null(p, "mova_pin of a live handle (size %zu): errno %d", size, errno);
	size_t bad = check(p, size, seed_of(h, size));
	cr_assert_eq(bad, size, "object of %zu bytes corrupt at byte %zu", size, bad);
	cr_assert_eq(mova_unpin(arena, h), 0);
}

static void stats(mova_stats *st)
{
	mova_stats_get(arena, st);
}

/* every operation refuses h as not live */
static void assert_refused(mova_handle h, const char *what)
{
	errno = 0;
	cr_assert_null(mova_pin(arena, h), "%s: pin accepted %#llx", what, (unsigned long long)h);
	cr_assert_eq(errno, EINVAL, "%s: pin errno %d", what, errno);
	cr_assert_eq(mova_unpin(arena, h), EINVAL, "%s: unpin", what);
	cr_assert_eq(mova_hsize(arena, h), 0, "%s: hsize", what);
	cr_assert_eq(mova_hfree(arena, h), EINVAL, "%s: hfree", what);
	mova_read_lock();
	errno = 0;
	const void *q = mova_deref(arena, h);
	int err = errno;
	mova_read_unlock();
	cr_assert_null(q, "%s: deref accepted %#llx", what, (unsigned long long)h);
	cr_assert_eq(err, EINVAL, "%s: deref errno %d", what, err);
}

/* ------------------------------------------------------------ allocation */

Test(handles, halloc_every_size)
{
	size_t sizes[1024];
	size_t n = boundary_sizes(sizes, 1024 - NR_LARGE);
	for (size_t i = 0; i < NR_LARGE; i++)
		sizes[n++] = large_sizes[i];
	mova_handle *hs = calloc(n, sizeof *hs);
	cr_assert_not_null(hs);
	size_t total = 0;
	mova_stats st0;
	stats(&st0);
	/* all live at once: neighbours must not overlap */
	for (size_t i = 0; i < n; i++) {
		hs[i] = make_obj(sizes[i]);
		total += sizes[i];
		for (size_t j = 0; j < i; j++)
			cr_assert_neq(hs[i], hs[j], "handle handed out twice");
		cr_assert_eq(mova_hsize(arena, hs[i]), sizes[i]);
		void *p = mova_pin(arena, hs[i]);
		cr_assert_not_null(p);
		cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0,
			     "object of %zu bytes at %p is not aligned for max_align_t", sizes[i],
			     p);
		cr_assert_eq(mova_unpin(arena, hs[i]), 0);
	}
	mova_stats st;
	stats(&st);
	cr_assert_eq(st.live_handles - st0.live_handles, n, "live_handles %zu, expected %zu",
		     st.live_handles - st0.live_handles, n);
	cr_assert_eq(st.live_bytes - st0.live_bytes, total, "live_bytes %zu, expected %zu",
		     st.live_bytes - st0.live_bytes, total);
	for (size_t i = 0; i < n; i++)
		verify_obj(hs[i], sizes[i]);
	/* and again after a full compaction, which may move any of them */
	cr_assert_eq(mova_compact(arena, -1), 0);
	for (size_t i = 0; i < n; i++)
		verify_obj(hs[i], sizes[i]);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mova_hfree(arena, hs[i]), 0, "hfree of size %zu", sizes[i]);
	stats(&st);
	cr_assert_eq(st.live_handles, st0.live_handles);
	cr_assert_eq(st.live_bytes, st0.live_bytes);
	free(hs);
}

Test(handles, hcalloc_zeroes)
{
	size_t sizes[1024];
	size_t n = boundary_sizes(sizes, 1024 - NR_LARGE);
	for (size_t i = 0; i < NR_LARGE; i++)
		sizes[n++] = large_sizes[i];
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < n; i++) {
			size_t size = sizes[i];
			/* dirty memory of this size first, so a reuse would show */
			mova_handle d[4];
			for (int k = 0; k < 4; k++) {
				d[k] = mova_halloc(arena, size);
				cr_assert_neq(d[k], MOVA_NULL);
				void *p = mova_pin(arena, d[k]);
				cr_assert_not_null(p);
				memset(p, 0xa5, size);
				cr_assert_eq(mova_unpin(arena, d[k]), 0);
			}
			for (int k = 0; k < 4; k++)
				cr_assert_eq(mova_hfree(arena, d[k]), 0);
			for (int k = 0; k < 4; k++) {
				d[k] = mova_hcalloc(arena, size);
				cr_assert_neq(d[k], MOVA_NULL, "hcalloc(%zu): errno %d", size,
					      errno);
				cr_assert_eq(mova_hsize(arena, d[k]), size);
				void *p = mova_pin(arena, d[k]);
				cr_assert_not_null(p);
				size_t bad = check_zero(p, size);
				cr_assert_eq(bad, size, "hcalloc(%zu): byte %zu not zero", size,
					     bad);
				memset(p, 0x5a, size);
				cr_assert_eq(mova_unpin(arena, d[k]), 0);
			}
			for (int k = 0; k < 4; k++)
				cr_assert_eq(mova_hfree(arena, d[k]), 0);
		}
		/* the second round with grace-period reuse (a reader existed) */
		mova_read_lock();
		mova_read_unlock();
	}
}

Test(handles, absurd_sizes)
{
	const size_t absurd[] = {
	    SIZE_MAX,         SIZE_MAX - 1,     SIZE_MAX - 4095,        SIZE_MAX / 2,
	    SIZE_MAX / 2 + 1, (size_t)1 << 63,  (size_t)1 << 40,        2 * GiB,
	    GiB + MiB,        SIZE_MAX - 16384, ((size_t)1 << 35) * 16,
	};
	mova_handle keep = make_obj(100);
	mova_stats st0, st;
	stats(&st0);
	for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
		errno = 0;
		mova_handle h = mova_halloc(arena, absurd[i]);
		cr_assert_eq(h, MOVA_NULL, "halloc(%#zx) succeeded", absurd[i]);
		cr_assert_eq(errno, ENOMEM, "halloc(%#zx): errno %d", absurd[i], errno);
		errno = 0;
		h = mova_hcalloc(arena, absurd[i]);
		cr_assert_eq(h, MOVA_NULL, "hcalloc(%#zx) succeeded", absurd[i]);
		cr_assert_eq(errno, ENOMEM, "hcalloc(%#zx): errno %d", absurd[i], errno);
	}
	stats(&st);
	cr_assert_eq(st.live_handles, st0.live_handles, "failed allocations leaked handles");
	cr_assert_eq(st.live_bytes, st0.live_bytes, "failed allocations counted as live");
	/* the arena still works */
	verify_obj(keep, 100);
	mova_handle h = make_obj(5 * MiB);
	verify_obj(h, 5 * MiB);
	cr_assert_eq(mova_hfree(arena, h), 0);
	cr_assert_eq(mova_hfree(arena, keep), 0);
}

/* Large objects freed and reallocated in a loop: only one is live at a
 * time, so the 1 GiB arena must never run out, whether or not a reader
 * ever existed (memory freed under possible readers comes back after a
 * grace period). */
static void large_churn(void)
{
	for (int i = 0; i < 300; i++) {
		mova_handle h = mova_halloc(arena, 8 * MiB);
		cr_assert_neq(h, MOVA_NULL,
			      "halloc(8 MiB) #%d failed (errno %d) with at most one object live in "
			      "a 1 GiB arena: freed large objects are not coming back",
			      i, errno);
		void *p = mova_pin(arena, h);
		cr_assert_not_null(p);
		memset(p, i, 4096);
		cr_assert_eq(mova_unpin(arena, h), 0);
		cr_assert_eq(mova_hfree(arena, h), 0);
	}
}

Test(handles, large_churn_no_reader)
{
	large_churn();
}

Test(handles, large_churn_after_reader)
{
	mova_read_lock();
	mova_read_unlock();
	large_churn();
}

/* ------------------------------------------------------------ pins */

Test(handles, pin_is_stable_and_writable)
{
	enum { N = 3000 };
	static mova_handle hs[N];
	static size_t sz[N];
	uint64_t r = 42;
	for (int i = 0; i < N; i++) {
		r = mix64(r);
		sz[i] = r % 3 == 0 ? (size_t)(r >> 8) % 16385 : (size_t)(r >> 8) % 600;
		hs[i] = make_obj(sz[i]);
	}
	/* pin a few and hold them across frees and compactions */
	enum { P = 16 };
	void *addr[P];
	for (int k = 0; k < P; k++) {
		addr[k] = mova_pin(arena, hs[k * 97]);
		cr_assert_not_null(addr[k]);
	}
	for (int i = 0; i < N; i += 2)
		if (i % 97 || i / 97 >= P) {
			cr_assert_eq(mova_hfree(arena, hs[i]), 0);
			hs[i] = MOVA_NULL;
		}
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(mova_compact(arena, -1), 0);
		for (int k = 0; k < P; k++) {
			int i = k * 97;
			/* the pinned address is where the object stays; writes through it land */
			size_t bad = check(addr[k], sz[i], seed_of(hs[i], sz[i]) + (uint64_t)round);
			cr_assert_eq(bad, sz[i], "pinned object %d changed at byte %zu", i, bad);
			void *again = mova_pin(arena, hs[i]);
			cr_assert_eq(again, addr[k], "a pinned object moved: %p then %p", addr[k],
				     again);
			cr_assert_eq(mova_unpin(arena, hs[i]), 0);
			fill(addr[k], sz[i], seed_of(hs[i], sz[i]) + (uint64_t)round + 1);
		}
	}
	for (int k = 0; k < P; k++) {
		int i = k * 97;
		cr_assert_eq(mova_unpin(arena, hs[i]), 0);
		/* contents survive unpin, compaction, pin */
		cr_assert_eq(mova_compact(arena, -1), 0);
		void *p = mova_pin(arena, hs[i]);
		cr_assert_not_null(p);
		size_t bad = check(p, sz[i], seed_of(hs[i], sz[i]) + 3);
		cr_assert_eq(bad, sz[i], "object %d lost its last write at byte %zu", i, bad);
		fill(p, sz[i], seed_of(hs[i], sz[i]));
		cr_assert_eq(mova_unpin(arena, hs[i]), 0);
	}
	for (int i = 0; i < N; i++)
		if (hs[i]) {
			verify_obj(hs[i], sz[i]);
			cr_assert_eq(mova_hfree(arena, hs[i]), 0);
		}
}

Test(handles, pins_nest)
{
	mova_handle h = make_obj(48);
	void *p1 = mova_pin(arena, h);
	void *p2 = mova_pin(arena, h);
	cr_assert_not_null(p1);
	cr_assert_eq(p1, p2, "nested pins gave different addresses");
	cr_assert_eq(mova_hfree(arena, h), EBUSY);
	cr_assert_eq(mova_unpin(arena, h), 0);
	cr_assert_eq(mova_hfree(arena, h), EBUSY, "hfree with one pin left must be EBUSY");
	cr_assert_eq(mova_compact(arena, -1), 0);
	cr_assert_eq(mova_pin(arena, h), p1, "still pinned once: must not have moved");
	cr_assert_eq(mova_unpin(arena, h), 0);
	cr_assert_eq(mova_unpin(arena, h), 0);
	cr_assert_eq(mova_unpin(arena, h), EINVAL, "third unpin of two pins");
	cr_assert_eq(mova_unpin(arena, h), EINVAL);
	verify_obj(h, 48);
	cr_assert_eq(mova_hfree(arena, h), 0);
}

Test(handles, pin_limit)
{
	mova_handle h = make_obj(32);
	void *p = NULL;
	for (int i = 0; i < MOVA_MAX_PINS; i++) {
		void *q = mova_pin(arena, h);
		cr_assert_not_null(q, "pin #%d failed: errno %d", i, errno);
		if (!p)
			p = q;
		cr_assert_eq(q, p);
	}
	errno = 0;
	cr_assert_null(mova_pin(arena, h), "pin beyond MOVA_MAX_PINS");
	cr_assert_eq(errno, EOVERFLOW);
	/* the failed pin did not disturb the count or the object */
	cr_assert_eq(mova_hsize(arena, h), 32);
	for (int i = 0; i < MOVA_MAX_PINS; i++)
		cr_assert_eq(mova_unpin(arena, h), 0, "unpin #%d", i);
	cr_assert_eq(mova_unpin(arena, h), EINVAL);
	verify_obj(h, 32);
	cr_assert_eq(mova_hfree(arena, h), 0);
}

struct unpin_arg {
	mova_handle h;
	int rc;
	int rc2;
};

static void *unpin_thread(void *v)
{
	struct unpin_arg *u = v;
	u->rc = mova_unpin(arena, u->h);
	u->rc2 = mova_unpin(arena, u->h);
	return NULL;
}

Test(handles, unpin_from_another_thread)
{
	mova_handle h = make_obj(200);
	char *p = mova_pin(arena, h);
	cr_assert_not_null(p);
	fill(p, 200, 777);
	struct unpin_arg u = {h, -1, -1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, unpin_thread, &u), 0);
	pthread_join(t, NULL);
	cr_assert_eq(u.rc, 0, "unpin from another thread: %d", u.rc);
	cr_assert_eq(u.rc2, EINVAL, "second unpin from another thread: %d", u.rc2);
	/* now unpinned: free works, after the contents were kept */
	p = mova_pin(arena, h);
	cr_assert_not_null(p);
	cr_assert_eq(check(p, 200, 777), 200);
	cr_assert_eq(mova_unpin(arena, h), 0);
	cr_assert_eq(mova_hfree(arena, h), 0);
}

/* ------------------------------------------------------------ hfree */

Test(handles, hfree_pinned_is_ebusy)
{
	const size_t sizes[] = {0, 16, 1000, 16384, 100 * KiB};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		mova_handle h = make_obj(size);
		void *p = mova_pin(arena, h);
		cr_assert_not_null(p);
		cr_assert_eq(mova_hfree(arena, h), EBUSY, "hfree of a pinned object (%zu)", size);
		cr_assert_eq(mova_hsize(arena, h), size, "EBUSY hfree changed hsize");
		cr_assert_eq(check(p, size, seed_of(h, size)), size, "EBUSY hfree touched it");
		/* the arena goes on: allocations do not land on the pinned object */
		mova_handle o[8];
		for (int k = 0; k < 8; k++)
			o[k] = make_obj(size);
		cr_assert_eq(check(p, size, seed_of(h, size)), size);
		cr_assert_eq(mova_unpin(arena, h), 0);
		verify_obj(h, size);
		cr_assert_eq(mova_hfree(arena, h), 0);
		for (int k = 0; k < 8; k++) {
			verify_obj(o[k], size);
			cr_assert_eq(mova_hfree(arena, o[k]), 0);
		}
	}
}

Test(handles, hfree_twice)
{
	mova_handle keep = make_obj(64);
	mova_handle h = make_obj(64);
	cr_assert_eq(mova_hfree(arena, h), 0);
	cr_assert_eq(mova_hfree(arena, h), EINVAL, "second hfree");
	cr_assert_eq(mova_hfree(arena, h), EINVAL, "third hfree");
	assert_refused(h, "freed handle");
	mova_handle big = make_obj(300 * KiB);
	cr_assert_eq(mova_hfree(arena, big), 0);
	cr_assert_eq(mova_hfree(arena, big), EINVAL, "second hfree of a large object");
	verify_obj(keep, 64);
	/* the double frees did not put anything on a free list twice */
	mova_handle a[64];
	for (int i = 0; i < 64; i++)
		a[i] = make_obj(64);
	for (int i = 0; i < 64; i++)
		for (int j = 0; j < i; j++) {
			cr_assert_neq(a[i], a[j]);
			void *pi = mova_pin(arena, a[i]), *pj = mova_pin(arena, a[j]);
			cr_assert_neq(pi, pj, "two live objects at one address");
			mova_unpin(arena, a[i]);
			mova_unpin(arena, a[j]);
		}
	for (int i = 0; i < 64; i++) {
		verify_obj(a[i], 64);
		cr_assert_eq(mova_hfree(arena, a[i]), 0);
	}
	cr_assert_eq(mova_hfree(arena, keep), 0);
}

/* ------------------------------------------------------------ stale, forged, foreign */

/* Free h, then allocate until a new handle has h's index (a new generation
 * of the same entry); returns it, with every handle allocated meanwhile in
 * extra[] (*n of them). */
static mova_handle reuse_index(mova_handle h, size_t size, mova_handle *extra, size_t *n,
			       size_t max)
{
	cr_assert_eq(mova_hfree(arena, h), 0);
	*n = 0;
	for (size_t i = 0; i < max; i++) {
		mova_handle x = make_obj(size);
		if (handle_index(x) == handle_index(h)) {
			cr_assert_neq(x, h, "a reused entry kept its generation");
			return x;
		}
		extra[(*n)++] = x;
	}
	cr_assert_fail("entry %u never reused in %zu allocations", handle_index(h), max);
	return MOVA_NULL;
}

static void stale_case(size_t size)
{
	enum { MAX = 20000 };
	static mova_handle extra[MAX];
	size_t n;
	mova_handle h = make_obj(size);
	void *old = mova_pin(arena, h);
	cr_assert_not_null(old);
	cr_assert_eq(mova_unpin(arena, h), 0);
	mova_handle x = reuse_index(h, size, extra, &n, MAX);
	assert_refused(h, "stale handle");
	/* the new incarnation is untouched by all of that */
	verify_obj(x, size);
	for (size_t i = 0; i < n; i++)
		verify_obj(extra[i], size);
	/* and the stale handle stays refused after the new one dies too */
	cr_assert_eq(mova_hfree(arena, x), 0);
	assert_refused(h, "stale handle, entry free again");
	assert_refused(x, "freed handle");
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mova_hfree(arena, extra[i]), 0);
}

Test(handles, stale_handle_small)
{
	stale_case(64);
}

Test(handles, stale_handle_large)
{
	stale_case(64 * KiB);
}

Test(handles, stale_handle_with_readers)
{
	/* slot memory now comes back only after a grace period */
	mova_read_lock();
	mova_read_unlock();
	stale_case(64);
	stale_case(3000);
}

Test(handles, stale_handle_after_many_reuses)
{
	/* A handle stays refused however many times its entry is reused: the
	 * generation must not come round to a stale handle's again (or an entry
	 * whose generation would wrap must be retired). */
	mova_handle h0 = make_obj(16);
	mova_handle keep = make_obj(16);
	cr_assert_eq(mova_hfree(arena, h0), 0);
	for (long i = 0; i < 70000; i++) {
		mova_handle h = mova_halloc(arena, 16);
		cr_assert_neq(h, MOVA_NULL);
		cr_assert_neq(h, h0,
			      "handle %#llx handed out again after %ld reuses of its entry: the "
			      "stale copy now reaches another object",
			      (unsigned long long)h0, i);
		if (i % 4096 == 0)
			assert_refused(h0, "stale handle");
		cr_assert_eq(mova_hfree(arena, h), 0);
	}
	assert_refused(h0, "stale handle");
	verify_obj(keep, 16);
	cr_assert_eq(mova_hfree(arena, keep), 0);
}

struct free_all {
	size_t n;
	const mova_handle *hs;
	int errors;
};

static void *free_all_thread(void *v)
{
	struct free_all *fa = v;
	for (size_t i = 0; i < fa->n; i++)
		if (mova_hfree(arena, fa->hs[i]) != 0)
			fa->errors++;
	return NULL;
}

Test(handles, stale_handle_freed_by_another_thread)
{
	/* entries and slots freed by a thread that then exits (handing its
	 * entry cache back) are reused by this thread's allocations */
	enum { N = 3000, MAX = 20000 };
	static mova_handle hs[N], extra[MAX];
	for (int i = 0; i < N; i++)
		hs[i] = make_obj(24);
	mova_handle victim = hs[N / 3];
	struct free_all fa = {N, hs, 0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, free_all_thread, &fa), 0);
	pthread_join(t, NULL);
	cr_assert_eq(fa.errors, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(mova_hsize(arena, hs[i]), 0, "freed handle still live");
	size_t n = 0;
	mova_handle x = MOVA_NULL;
	for (size_t i = 0; i < MAX && !x; i++) {
		mova_handle y = make_obj(24);
		if (handle_index(y) == handle_index(victim))
			x = y;
		else
			extra[n++] = y;
	}
	cr_assert_neq(x, MOVA_NULL, "entry never reused");
	cr_assert_neq(x, victim);
	assert_refused(victim, "stale handle freed by another thread");
	for (int i = 0; i < N; i++)
		if (hs[i] != victim)
			assert_refused(hs[i], "freed handle");
	verify_obj(x, 24);
	for (size_t i = 0; i < n; i++)
		verify_obj(extra[i], 24);
	cr_assert_eq(mova_hfree(arena, x), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mova_hfree(arena, extra[i]), 0);
}

static int cmp_handle(const void *a, const void *b)
{
	mova_handle x = *(const mova_handle *)a, y = *(const mova_handle *)b;
	return x < y ? -1 : x > y;
}

Test(handles, forged_handles)
{
	enum { N = 200 };
	mova_handle live[N], sorted[N];
	size_t sz[N];
	for (int i = 0; i < N; i++) {
		sz[i] = (size_t)(i * 37) % 5000;
		live[i] = make_obj(sz[i]);
		sorted[i] = live[i];
	}
	/* a few freed ones, so the table has free entries too */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(mova_hfree(arena, make_obj(100)), 0);
	qsort(sorted, N, sizeof sorted[0], cmp_handle);
	mova_stats st0, st;
	stats(&st0);

	assert_refused(MOVA_NULL, "MOVA_NULL");
	uint32_t tag = handle_tag(live[0]), gen = handle_gen(live[0]);
	const mova_handle beyond[] = {
	    forge_handle(tag, gen, UINT32_MAX),        forge_handle(tag, gen, UINT32_MAX - 1),
	    forge_handle(tag, gen, (uint32_t)1 << 31), forge_handle(tag, 0, (uint32_t)1 << 24),
	    forge_handle(tag, gen, 1000000),           forge_handle(tag, 0, 8192 * 64),
	};
	for (size_t i = 0; i < sizeof beyond / sizeof beyond[0]; i++)
		assert_refused(beyond[i], "index beyond the table");
	/* right index, wrong generation */
	for (int i = 0; i < N; i++) {
		uint32_t g = handle_gen(live[i]), idx = handle_index(live[i]);
		const uint32_t wrong[] = {g + 1, g - 1, g ^ 0x4000, g ^ 0x7fff, g + 2};
		for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++)
			assert_refused(forge_handle(tag, wrong[k], idx), "wrong generation");
		/* right index and generation, wrong tag */
		assert_refused(forge_handle(tag ^ 1, g, idx), "wrong tag");
		assert_refused(forge_handle(tag + 7, g, idx), "wrong tag");
		assert_refused(live[i] ^ ((uint64_t)1 << 63), "top bit flipped");
	}
	/* random values: anything, our tag with any index, our tag with a small index */
	uint64_t r = 12345;
	for (int i = 0; i < 150000; i++) {
		r = mix64(r);
		mova_handle h;
		switch (i % 3) {
		case 0: h = r; break;
		case 1: h = ((uint64_t)tag << 47) | (r & ((((uint64_t)1) << 47) - 1)); break;
		default: h = forge_handle(tag, (uint32_t)(r >> 32), (uint32_t)r % 4096); break;
		}
		if (bsearch(&h, sorted, N, sizeof sorted[0], cmp_handle))
			continue; /* happened to be a live handle */
		assert_refused(h, "random value");
	}
	stats(&st);
	cr_assert_eq(st.live_handles, st0.live_handles, "forged handles changed live_handles");
	cr_assert_eq(st.live_bytes, st0.live_bytes, "forged handles changed live_bytes");
	for (int i = 0; i < N; i++)
		verify_obj(live[i], sz[i]);
	for (int i = 0; i < N; i++)
		cr_assert_eq(mova_hfree(arena, live[i]), 0);
}

static mova_handle make_in(mova_arena *a, size_t size, uint64_t seed)
{
	mova_handle h = mova_halloc(a, size);
	cr_assert_neq(h, MOVA_NULL);
	void *p = mova_pin(a, h);
	cr_assert_not_null(p);
	fill(p, size, seed);
	cr_assert_eq(mova_unpin(a, h), 0);
	return h;
}

static void check_in(mova_arena *a, mova_handle h, size_t size, uint64_t seed)
{
	cr_assert_eq(mova_hsize(a, h), size);
	void *p = mova_pin(a, h);
	cr_assert_not_null(p);
	cr_assert_eq(check(p, size, seed), size, "object in its own arena corrupt");
	cr_assert_eq(mova_unpin(a, h), 0);
}

Test(handles, foreign_arena)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = 64 * MiB;
	mova_arena *b = mova_arena_create(&cfg);
	cr_assert_not_null(b);
	/* same sizes, same order: same indices and generations, only the arena differs */
	mova_handle ha[32], hb[32];
	for (int i = 0; i < 32; i++) {
		ha[i] = make_in(arena, 100 + (size_t)i, 1000 + (uint64_t)i);
		hb[i] = make_in(b, 100 + (size_t)i, 2000 + (uint64_t)i);
	}
	for (int i = 0; i < 32; i++) {
		cr_assert_neq(ha[i], hb[i]);
		assert_refused(hb[i], "handle of another arena");
		errno = 0;
		cr_assert_null(mova_pin(b, ha[i]));
		cr_assert_eq(errno, EINVAL);
		cr_assert_eq(mova_unpin(b, ha[i]), EINVAL);
		cr_assert_eq(mova_hsize(b, ha[i]), 0);
		cr_assert_eq(mova_hfree(b, ha[i]), EINVAL);
		mova_read_lock();
		cr_assert_null(mova_deref(b, ha[i]));
		mova_read_unlock();
	}
	for (int i = 0; i < 32; i++) {
		check_in(arena, ha[i], 100 + (size_t)i, 1000 + (uint64_t)i);
		check_in(b, hb[i], 100 + (size_t)i, 2000 + (uint64_t)i);
	}
	/* the default arena refuses them too */
	mova_arena *d = mova_default_arena();
	cr_assert_not_null(d);
	cr_assert_eq(mova_hfree(d, ha[0]), EINVAL);
	cr_assert_null(mova_pin(d, hb[0]));
	/* b dies: its handles stay refused here, and by an arena made after it */
	mova_arena_destroy(b);
	for (int i = 0; i < 32; i++)
		assert_refused(hb[i], "handle of a destroyed arena");
	mova_arena *c = mova_arena_create(&cfg);
	cr_assert_not_null(c);
	mova_handle hc = make_in(c, 100, 3000);
	for (int i = 0; i < 32; i++) {
		cr_assert_eq(mova_hfree(c, hb[i]), EINVAL,
			     "a new arena took a dead arena's handle");
		cr_assert_eq(mova_hfree(c, ha[i]), EINVAL);
	}
	check_in(c, hc, 100, 3000);
	mova_arena_destroy(c);
	for (int i = 0; i < 32; i++) {
		check_in(arena, ha[i], 100 + (size_t)i, 1000 + (uint64_t)i);
		cr_assert_eq(mova_hfree(arena, ha[i]), 0);
	}
}

Test(handles, null_arena)
{
	mova_handle h = make_obj(64);
	errno = 0;
	cr_assert_eq(mova_halloc(NULL, 64), MOVA_NULL);
	cr_assert_eq(errno, EINVAL, "halloc(NULL): errno %d", errno);
	errno = 0;
	cr_assert_eq(mova_hcalloc(NULL, 64), MOVA_NULL);
	cr_assert_eq(errno, EINVAL, "hcalloc(NULL): errno %d", errno);
	cr_assert_eq(mova_hfree(NULL, h), EINVAL);
	cr_assert_eq(mova_hfree(NULL, MOVA_NULL), EINVAL);
	errno = 0;
	cr_assert_null(mova_pin(NULL, h));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(mova_unpin(NULL, h), EINVAL);
	cr_assert_eq(mova_hsize(NULL, h), 0);
	mova_read_lock();
	errno = 0;
	cr_assert_null(mova_deref(NULL, h));
	cr_assert_eq(errno, EINVAL);
	mova_read_unlock();
	cr_assert_eq(mova_compact(NULL, -1), EINVAL);
	cr_assert_eq(mova_compact(NULL, 3), EINVAL);
	mova_kcompactd_wakeup(NULL, 3);
	/* the real arena's object is unaffected */
	verify_obj(h, 64);
	cr_assert_eq(mova_hfree(arena, h), 0);
}

/* ------------------------------------------------------------ deref */

Test(handles, deref_in_read_section)
{
	const size_t sizes[] = {0, 1, 16, 100, 1024, 4000, 16384, 40000, 3 * MiB};
	enum { NS = sizeof sizes / sizeof sizes[0] };
	mova_handle h[NS];
	for (size_t i = 0; i < NS; i++)
		h[i] = make_obj(sizes[i]);
	mova_read_lock();
	for (size_t i = 0; i < NS; i++) {
		const void *p = mova_deref(arena, h[i]);
		cr_assert_not_null(p, "deref of a live handle (%zu)", sizes[i]);
		cr_assert_eq(check(p, sizes[i], seed_of(h[i], sizes[i])), sizes[i]);
		/* nested sections */
		mova_read_lock();
		cr_assert_eq(mova_deref(arena, h[i]), p);
		mova_read_unlock();
		/* deref of a pinned object sees what the pin wrote */
		void *w = mova_pin(arena, h[i]);
		cr_assert_not_null(w);
		fill(w, sizes[i], 99 + i);
		const void *q = mova_deref(arena, h[i]);
		cr_assert_eq(q, w, "deref of a pinned object gave another address");
		cr_assert_eq(check(q, sizes[i], 99 + i), sizes[i]);
		fill(w, sizes[i], seed_of(h[i], sizes[i]));
		cr_assert_eq(mova_unpin(arena, h[i]), 0);
	}
	mova_read_unlock();
	/* objects that moved are still reached */
	cr_assert_eq(mova_compact(arena, -1), 0);
	mova_read_lock();
	for (size_t i = 0; i < NS; i++) {
		const void *p = mova_deref(arena, h[i]);
		cr_assert_not_null(p);
		cr_assert_eq(check(p, sizes[i], seed_of(h[i], sizes[i])), sizes[i]);
	}
	mova_read_unlock();
	for (size_t i = 0; i < NS; i++)
		cr_assert_eq(mova_hfree(arena, h[i]), 0);
}

Test(handles, deref_survives_free_until_unlock)
{
	/* an object freed during the section keeps its contents at the address
	 * deref gave until the section ends, however much is allocated meanwhile */
	const size_t sizes[] = {16, 200, 3000, 16384, 100 * KiB};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		enum { N = 64, M = 600 };
		mova_handle h[N];
		const void *p[N];
		uint64_t seed[N];
		for (int k = 0; k < N; k++) {
			h[k] = make_obj(size);
			seed[k] = seed_of(h[k], size);
		}
		mova_read_lock();
		for (int k = 0; k < N; k++) {
			p[k] = mova_deref(arena, h[k]);
			cr_assert_not_null(p[k]);
		}
		for (int k = 0; k < N; k++)
			cr_assert_eq(mova_hfree(arena, h[k]), 0);
		static mova_handle more[M];
		int m = size > 16384 ? 40 : M;
		for (int k = 0; k < m; k++)
			more[k] = make_obj(size);
		for (int k = 0; k < N; k++) {
			size_t bad = check(p[k], size, seed[k]);
			cr_assert_eq(
			    bad, size,
			    "object of %zu bytes freed in a read section was reused before "
			    "the section ended (byte %zu)",
			    size, bad);
			cr_assert_null(mova_deref(arena, h[k]), "deref of a freed handle");
		}
		mova_read_unlock();
		for (int k = 0; k < m; k++) {
			verify_obj(more[k], size);
			cr_assert_eq(mova_hfree(arena, more[k]), 0);
		}
	}
}
