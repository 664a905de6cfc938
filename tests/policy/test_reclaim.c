/* SPDX-License-Identifier: MIT */
/*
 * test_reclaim.c: RECLAIMABLE objects and shrinkers under a memory budget
 * (include/mova.h: mova_halloc_flags, mova_shrinker_register and
 * _unregister, mova_shrink, mova_set_limit, mova_config.limit_bytes, the
 * counters allocstall, slabs_scanned and shrink_reclaimed):
 *
 *  - a cache far bigger than the budget, with a shrinker that frees its
 *    oldest entries: resident memory stays within the budget (and one
 *    pageblock) after every allocation, allocations keep succeeding;
 *  - pinned entries survive (the shrinker gets EBUSY and skips them);
 *    handles the shrinker freed are refused afterwards;
 *  - without a shrinker, or with one that cannot make progress, the budget
 *    makes allocation fail with ENOMEM, and holds;
 *  - mova_shrink and mova_set_limit, and their refusals;
 *  - registering and unregistering shrinkers from several threads while
 *    others allocate under pressure: no callback after its unregister
 *    returned; unregister waits for a running callback, refuses itself
 *    from within its own callback, and refuses strangers;
 *  - under pressure, what other threads' caches hold comes back: they are
 *    asked, and answer on their next slow path;
 *  - reclaimable objects live in RECLAIMABLE pageblocks.
 *
 * The test's cache is what an owner of reclaimable objects would write: a
 * FIFO of handles under a mutex that the shrinker takes too. The owner
 * never holds it while allocating (the shrinker runs inside allocations).
 */

#include "../migration/mig_util.h"

#define PB_ORDER 8
#define PB_BYTES ((size_t)MOVA_PAGE_SIZE << PB_ORDER)
#define LIMIT (8 * MiB)
#define MAX_PB 512

/* ------------------------------------------------------------ arenas */

static mova_config rcl_config(size_t limit)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 512 * MiB;
	cfg.pageblock_order = PB_ORDER;
	cfg.kcompactd = 0;
	cfg.limit_bytes = limit;
	return cfg;
}

static mova_arena *rcl_arena(size_t limit)
{
	mova_config cfg = rcl_config(limit);
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create(limit %zu): errno %d", limit, errno);
	return a;
}

static mova_stats stats_of(mova_arena *a)
{
	mova_stats st;
	mova_stats_get(a, &st);
	return st;
}

static size_t resident(mova_arena *a)
{
	return stats_of(a).resident_bytes;
}

/* sizes of cache entries: small ones of several classes, and every 16th a
 * large one (beyond the 16 KiB of slabs) */
static size_t entry_size(unsigned i)
{
	static const size_t small[] = {64, 200, 512, 1500, 4000, 9000};
	if (i % 16 == 15)
		return i % 32 == 15 ? 20000 : 70000;
	return small[i % (sizeof small / sizeof small[0])];
}

/* ------------------------------------------------------------ the cache */

struct entry {
	mova_handle h;
	size_t size;
	uint64_t tag;
};

struct cache {
	mova_arena *a;
	pthread_mutex_t lock;
	struct entry *ring; /* FIFO: ring[head % cap] is the oldest */
	size_t cap, head, tail;
	_Atomic uint64_t next_tag;
	_Atomic int stop; /* the shrinker answers MOVA_SHRINK_STOP */
	/* what the shrinker did */
	_Atomic size_t count_calls, scan_calls, scanned, freed, busy;
	/* the first handles the shrinker freed */
	mova_handle *freed_log;
	size_t nfreed_log, freed_log_cap;
};

static void cache_init(struct cache *c, mova_arena *a, size_t cap)
{
	memset(c, 0, sizeof *c);
	c->a = a;
	pthread_mutex_init(&c->lock, NULL);
	c->cap = cap;
	c->ring = calloc(cap, sizeof *c->ring);
	c->freed_log_cap = 4096;
	c->freed_log = calloc(c->freed_log_cap, sizeof *c->freed_log);
	cr_assert(c->ring && c->freed_log);
}

static size_t cache_len(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->tail - c->head;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* a new reclaimable entry of size bytes holding version 0 of a new tag;
 * MOVA_NULL (errno set) when the arena refuses */
static mova_handle cache_add(struct cache *c, size_t size)
{
	mova_handle h = mova_halloc_flags(c->a, size, MOVA_HF_RECLAIMABLE);
	if (h == MOVA_NULL)
		return h;
	uint64_t tag = atomic_fetch_add(&c->next_tag, 1);
	void *p = mova_pin(c->a, h);
	if (!p) {
		mig_fail("pin of a new handle: errno %d", errno);
		return h;
	}
	mig_fill(p, size, tag, 0);
	if (mova_unpin(c->a, h))
		mig_fail("unpin of a new handle failed");
	pthread_mutex_lock(&c->lock);
	if (c->tail - c->head == c->cap)
		mig_fail("the test's cache is full");
	else
		c->ring[c->tail++ % c->cap] = (struct entry){h, size, tag};
	pthread_mutex_unlock(&c->lock);
	return h;
}

/* the entry at position i from the oldest (caller holds the lock) */
static struct entry *cache_at(struct cache *c, size_t i)
{
	return &c->ring[(c->head + i) % c->cap];
}

/* the owner drops its oldest entry itself; false when empty */
static bool cache_drop_oldest(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->head == c->tail) {
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	struct entry e = c->ring[c->head++ % c->cap];
	pthread_mutex_unlock(&c->lock);
	int rc = mova_hfree(c->a, e.h);
	if (rc)
		mig_fail("owner: hfree of its own entry: %d", rc);
	return true;
}

/* count: the entries the cache holds */
static size_t cache_count(mova_arena *a, void *priv)
{
	struct cache *c = priv;
	if (a != c->a)
		mig_fail("count called with another arena");
	atomic_fetch_add(&c->count_calls, 1);
	return cache_len(c);
}

/* scan: free the oldest entries, skipping pinned ones (EBUSY: to the back) */
static size_t cache_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct cache *c = priv;
	if (a != c->a)
		mig_fail("scan called with another arena");
	atomic_fetch_add(&c->scan_calls, 1);
	if (sc->nr_scanned != sc->nr_to_scan)
		mig_fail("nr_scanned %zu, nr_to_scan %zu on entry", sc->nr_scanned, sc->nr_to_scan);
	if (sc->nr_to_scan == 0)
		mig_fail("asked to scan nothing");
	if (atomic_load(&c->stop))
		return MOVA_SHRINK_STOP;
	size_t looked = 0, freed = 0;
	pthread_mutex_lock(&c->lock);
	size_t n = c->tail - c->head;
	while (looked < sc->nr_to_scan && looked < n) {
		struct entry e = c->ring[c->head++ % c->cap];
		looked++;
		int rc = mova_hfree(a, e.h);
		if (rc == 0) {
			freed++;
			if (c->nfreed_log < c->freed_log_cap)
				c->freed_log[c->nfreed_log++] = e.h;
		} else if (rc == EBUSY) {
			atomic_fetch_add(&c->busy, 1);
			c->ring[c->tail++ % c->cap] = e;
		} else {
			mig_fail("shrinker: hfree of a cached handle returned %d", rc);
		}
	}
	pthread_mutex_unlock(&c->lock);
	sc->nr_scanned = looked;
	atomic_fetch_add(&c->scanned, looked);
	atomic_fetch_add(&c->freed, freed);
	return freed;
}

/* every entry holds what it was given (version ver of its tag) */
static void cache_verify(struct cache *c, const char *what)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->tail - c->head; i++) {
		const struct entry *e = cache_at(c, i);
		const unsigned char *p = mova_pin(c->a, e->h);
		if (!p) {
			mig_fail("%s: pin of cached entry %llu: errno %d", what,
				 (unsigned long long)e->tag, errno);
			break;
		}
		long bad = mig_check(p, e->size, e->tag, 0);
		if (bad >= 0)
			mig_fail("%s: entry %llu (size %zu) wrong at offset %ld", what,
				 (unsigned long long)e->tag, e->size, bad);
		if (mova_hsize(c->a, e->h) != e->size)
			mig_fail("%s: hsize of entry %llu", what, (unsigned long long)e->tag);
		mova_unpin(c->a, e->h);
	}
	pthread_mutex_unlock(&c->lock);
	mig_assert_no_errors();
}

/* free what is left (nothing may be pinned) and the cache itself */
static void cache_destroy(struct cache *c)
{
	for (size_t i = c->head; i != c->tail; i++)
		cr_assert_eq(mova_hfree(c->a, c->ring[i % c->cap].h), 0);
	free(c->ring);
	free(c->freed_log);
	pthread_mutex_destroy(&c->lock);
}

static mova_shrinker *cache_register(struct cache *c)
{
	mova_shrinker *s =
	    mova_shrinker_register(c->a, cache_count, cache_scan, c, MOVA_DEFAULT_SEEKS);
	cr_assert_not_null(s, "mova_shrinker_register: errno %d", errno);
	return s;
}

/* ================================================================ the budget */

Test(reclaim, budget_holds_under_pressure, .timeout = 120)
{
	mova_arena *a = rcl_arena(LIMIT);
	/* 12 budgets' worth (5 under sanitizers) */
	size_t goal = (MIG_SANITIZED ? 5 : 12) * LIMIT;
	struct cache c;
	cache_init(&c, a, 100000);
	mova_shrinker *s = cache_register(&c);
	size_t total = 0, max_res = 0;
	unsigned n = 0;
	for (unsigned i = 0; total < goal; i++, n++) {
		size_t size = entry_size(i);
		mova_handle h = cache_add(&c, size);
		cr_assert_neq(h, MOVA_NULL, "allocation %u (%zu bytes) failed: errno %d", i, size,
			      errno);
		total += size;
		size_t res = resident(a);
		max_res = res > max_res ? res : max_res;
		cr_assert_leq(res, LIMIT + PB_BYTES,
			      "after allocation %u: resident %zu past the budget %zu + a pageblock",
			      i, res, LIMIT);
	}
	mig_assert_no_errors();
	mova_stats st = stats_of(a);
	size_t live = cache_len(&c);
	cr_log_info(
	    "budget %zu MiB: %zu MiB allocated, %zu entries live, resident at most %zu KiB; "
	    "allocstall %llu slabs_scanned %llu shrink_reclaimed %llu",
	    LIMIT / MiB, total / MiB, live, max_res / KiB, (unsigned long long)st.allocstall,
	    (unsigned long long)st.slabs_scanned, (unsigned long long)st.shrink_reclaimed);
	cr_assert_geq(total, 4 * LIMIT, "the test allocated only %zu bytes", total);
	cr_assert_gt(st.allocstall, 0);
	cr_assert_gt(st.slabs_scanned, 0);
	cr_assert_gt(st.shrink_reclaimed, 0);
	/* the counters are what the one shrinker did */
	cr_assert_eq(st.shrink_reclaimed, atomic_load(&c.freed));
	cr_assert_eq(st.slabs_scanned, atomic_load(&c.scanned));
	cr_assert_eq(st.live_handles, live);
	cr_assert_eq(live + atomic_load(&c.freed), n);
	cr_assert_eq(atomic_load(&c.busy), 0, "nothing was pinned");
	cr_assert_lt(live, n / 2, "the shrinker freed too little");
	cache_verify(&c, "after the pressure");
	/* more than the whole budget can never fit: ENOMEM, the budget holds,
	 * and the next allocation is served (the cache may have been dropped
	 * trying: logged, not asserted) */
	errno = 0;
	cr_assert_eq(cache_add(&c, 2 * LIMIT), MOVA_NULL, "an object larger than the budget");
	cr_assert_eq(errno, ENOMEM);
	cr_log_info("a request of twice the budget: %zu of %zu entries dropped for it",
		    live - cache_len(&c), live);
	cr_assert_leq(resident(a), LIMIT + PB_BYTES);
	cr_assert_neq(cache_add(&c, 5000), MOVA_NULL);
	cache_verify(&c, "after a request larger than the budget");
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cache_destroy(&c);
	mova_arena_destroy(a);
}

Test(reclaim, pinned_entries_survive, .timeout = 120)
{
	mova_arena *a = rcl_arena(LIMIT);
	unsigned n = MIG_SANITIZED ? 6000 : 16000;
	struct cache c;
	cache_init(&c, a, n + 128);
	mova_shrinker *s = cache_register(&c);
	/* the oldest entries, every fourth pinned and rewritten through the pin */
	enum { FIRST = 64, NPIN = FIRST / 4 };
	struct entry first[FIRST];
	for (unsigned i = 0; i < FIRST; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL);
		first[i] = *cache_at(&c, i);
	}
	struct entry pinned[NPIN];
	unsigned char *pp[NPIN];
	for (unsigned k = 0; k < NPIN; k++) {
		pinned[k] = *cache_at(&c, 4 * k);
		pp[k] = mova_pin(a, pinned[k].h);
		cr_assert_not_null(pp[k]);
		mig_fill(pp[k], pinned[k].size, pinned[k].tag, 1);
	}
	for (unsigned i = FIRST; i < n; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL, "allocation %u: errno %d", i,
			      errno);
		if (i % 8 == 0)
			cr_assert_leq(resident(a), LIMIT + PB_BYTES, "after allocation %u", i);
	}
	mig_assert_no_errors();
	size_t busy = atomic_load(&c.busy), freed = atomic_load(&c.freed);
	cr_log_info("pinned: %zu EBUSY answers, %zu entries freed, %zu live", busy, freed,
		    cache_len(&c));
	cr_assert_gt(busy, 0, "the shrinker never met a pinned entry");
	cr_assert_geq(freed, FIRST, "the shrinker freed only %zu", freed);
	/* the pinned entries: live, same address, contents as written */
	for (unsigned k = 0; k < NPIN; k++) {
		cr_assert_eq(mig_check(pp[k], pinned[k].size, pinned[k].tag, 1), -1,
			     "pinned entry %u lost its contents", k);
		cr_assert_eq(mova_hsize(a, pinned[k].h), pinned[k].size);
		void *again = mova_pin(a, pinned[k].h);
		cr_assert_eq(again, pp[k], "a pinned entry moved");
		cr_assert_eq(mova_unpin(a, pinned[k].h), 0);
	}
	/* the unpinned ones among the oldest were freed: their handles are dead */
	for (unsigned i = 0; i < FIRST; i++)
		if (i % 4)
			cr_assert_eq(mova_hsize(a, first[i].h), 0, "old entry %u survived", i);
	size_t nlog = c.nfreed_log;
	cr_assert_gt(nlog, 0);
	for (size_t i = 0; i < nlog; i++) {
		mova_handle h = c.freed_log[i];
		errno = 0;
		cr_assert_null(mova_pin(a, h), "a freed handle was pinned");
		cr_assert_eq(errno, EINVAL, "pin of a freed handle: errno %d", errno);
		cr_assert_eq(mova_hfree(a, h), EINVAL, "a freed handle was freed again");
		cr_assert_eq(mova_hsize(a, h), 0);
		cr_assert_eq(mova_unpin(a, h), EINVAL);
		mova_read_lock();
		const void *d = mova_deref(a, h);
		mova_read_unlock();
		cr_assert_null(d, "a freed handle was dereferenced");
	}
	/* pinned entries are refused to mova_shrink too, until unpinned */
	size_t before = atomic_load(&c.freed), f = 0;
	cr_assert_eq(mova_shrink(a, SIZE_MAX, &f), 0);
	cr_assert_eq(cache_len(&c), NPIN, "%zu entries left, %d pinned", cache_len(&c), NPIN);
	cr_assert_eq(f, atomic_load(&c.freed) - before);
	for (unsigned k = 0; k < NPIN; k++) {
		cr_assert_eq(mig_check(pp[k], pinned[k].size, pinned[k].tag, 1), -1);
		cr_assert_eq(mova_unpin(a, pinned[k].h), 0);
	}
	cr_assert_eq(mova_shrink(a, SIZE_MAX, &f), 0);
	cr_assert_eq(f, NPIN);
	cr_assert_eq(cache_len(&c), 0);
	cr_assert_eq(stats_of(a).live_handles, 0);
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cache_destroy(&c);
	mova_arena_destroy(a);
}

/* fill the budget with objects nothing can reclaim: ENOMEM, and the budget
 * holds; freeing makes room again */
static void fill_until_enomem(unsigned flags, bool readers)
{
	/* once a read section has existed, frees wait for a grace period */
	if (readers) {
		mova_read_lock();
		mova_read_unlock();
	}
	mova_arena *a = rcl_arena(LIMIT);
	enum { CAP = 100000, SIZE = 1000 };
	mova_handle *h = calloc(CAP, sizeof *h);
	cr_assert_not_null(h);
	unsigned n = 0;
	for (; n < CAP; n++) {
		h[n] = mova_halloc_flags(a, SIZE, flags);
		if (h[n] == MOVA_NULL)
			break;
		void *p = mova_pin(a, h[n]);
		cr_assert_not_null(p);
		mig_fill(p, SIZE, n, 0);
		cr_assert_eq(mova_unpin(a, h[n]), 0);
		if (n % 4 == 0)
			cr_assert_leq(resident(a), LIMIT + PB_BYTES, "after allocation %u", n);
	}
	int err = errno;
	cr_assert_lt(n, CAP, "the budget never refused an allocation");
	cr_assert_eq(err, ENOMEM, "errno %d after a refused allocation", err);
	mova_stats st = stats_of(a);
	cr_log_info("flags %#x: %u objects of %d bytes fit a budget of %zu MiB, resident %zu KiB",
		    flags, n, SIZE, LIMIT / MiB, st.resident_bytes / KiB);
	cr_assert_geq((size_t)n * SIZE, LIMIT / 2, "only %u objects fit", n);
	cr_assert_leq(st.resident_bytes, LIMIT + PB_BYTES);
	cr_assert_gt(st.allocstall, 0);
	cr_assert_eq(st.live_handles, n);
	/* refused again, small and large, and the budget still holds */
	for (int k = 0; k < 8; k++) {
		errno = 0;
		cr_assert_eq(mova_halloc_flags(a, k % 2 ? SIZE : 100000, flags), MOVA_NULL);
		cr_assert_eq(errno, ENOMEM);
	}
	errno = 0;
	cr_assert_eq(mova_halloc_flags(a, 2 * LIMIT, flags), MOVA_NULL, "more than the budget");
	cr_assert_eq(errno, ENOMEM);
	cr_assert_leq(resident(a), LIMIT + PB_BYTES);
	cr_assert_eq(stats_of(a).live_handles, n);
	/* every other one freed: room for a quarter of them again */
	for (unsigned i = 0; i < n; i += 2) {
		cr_assert_eq(mova_hfree(a, h[i]), 0);
		h[i] = MOVA_NULL;
	}
	unsigned again = 0;
	for (unsigned i = 0; i < n && again < n / 4; i += 2, again++) {
		h[i] = mova_halloc_flags(a, SIZE, flags);
		cr_assert_neq(h[i], MOVA_NULL, "allocation %u after freeing: errno %d", again,
			      errno);
		void *p = mova_pin(a, h[i]);
		cr_assert_not_null(p);
		mig_fill(p, SIZE, i, 0);
		cr_assert_eq(mova_unpin(a, h[i]), 0);
		cr_assert_leq(resident(a), LIMIT + PB_BYTES);
	}
	for (unsigned i = 0; i < n; i++) {
		if (h[i] == MOVA_NULL)
			continue;
		const void *p = mova_pin(a, h[i]);
		cr_assert_not_null(p);
		cr_assert_eq(mig_check(p, SIZE, i, 0), -1, "object %u", i);
		cr_assert_eq(mova_unpin(a, h[i]), 0);
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	}
	free(h);
	mova_arena_destroy(a);
}

Test(reclaim, enomem_without_shrinker_movable, .timeout = 120)
{
	fill_until_enomem(0, false);
}

Test(reclaim, enomem_without_shrinker_reclaimable, .timeout = 120)
{
	fill_until_enomem(MOVA_HF_RECLAIMABLE, false);
}

/* BUG (policy tests): with RCU readers in the process, the slots freed
 * after ENOMEM came back only after a grace period; the allocation that
 * reclaimed (and waited for it) did not look at them again, because its
 * budget reclaim said no new slab would fit, and failed with ENOMEM
 * (lib/slab.c mv_mov_alloc_slow). */
Test(reclaim, enomem_then_free_with_readers, .timeout = 120)
{
	fill_until_enomem(0, true);
	fill_until_enomem(MOVA_HF_RECLAIMABLE, true);
}

/* a shrinker that answers MOVA_SHRINK_STOP frees nothing: ENOMEM; once it
 * makes progress again, allocations succeed */
Test(reclaim, enomem_with_stopped_shrinker, .timeout = 120)
{
	mova_arena *a = rcl_arena(LIMIT);
	struct cache c;
	cache_init(&c, a, 100000);
	atomic_store(&c.stop, 1);
	mova_shrinker *s = cache_register(&c);
	unsigned n = 0;
	while (n < 100000 && cache_add(&c, 1000) != MOVA_NULL)
		n++;
	int err = errno;
	cr_assert_lt(n, 100000);
	cr_assert_eq(err, ENOMEM, "errno %d", err);
	mova_stats st = stats_of(a);
	cr_log_info("stopped shrinker: %u entries, %zu count and %zu scan calls", n,
		    atomic_load(&c.count_calls), atomic_load(&c.scan_calls));
	cr_assert_gt(atomic_load(&c.scan_calls), 0, "the shrinker was never asked");
	cr_assert_eq(atomic_load(&c.freed), 0);
	cr_assert_eq(st.shrink_reclaimed, 0);
	cr_assert_eq(st.live_handles, n);
	cr_assert_eq(cache_len(&c), n);
	cr_assert_leq(st.resident_bytes, LIMIT + PB_BYTES);
	atomic_store(&c.stop, 0);
	for (unsigned i = 0; i < 200; i++)
		cr_assert_neq(cache_add(&c, 1000), MOVA_NULL, "with the shrinker going again");
	cr_assert_gt(atomic_load(&c.freed), 0);
	cr_assert_leq(resident(a), LIMIT + PB_BYTES);
	cache_verify(&c, "after the stop");
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cache_destroy(&c);
	mova_arena_destroy(a);
}

/* ================================================================ others' caches */

/* A thread that keeps a current slab in every class, whose objects this
 * thread frees: the slabs are empty, but they are still the holder's, and
 * only the holder may give them back. Under pressure, reclaim asks every
 * thread for its cache (drain_all_pages' part) and the holder answers on
 * its next slow path. Without that, the budget stays short by a slab per
 * class and the filler gets ENOMEM early. */
struct holder {
	mova_arena *a;
	mova_handle h[256];
	unsigned n;
	_Atomic int phase; /* 1: objects made; 2: stop */
	_Atomic unsigned long slow_paths;
};

static void *holder_main(void *arg)
{
	struct holder *ho = arg;
	for (size_t size = 24; size <= 16384 && ho->n + 2 <= 256; size = size * 9 / 8 + 8) {
		ho->h[ho->n++] = mova_halloc(ho->a, size);
		ho->h[ho->n++] = mova_halloc_flags(ho->a, size, MOVA_HF_RECLAIMABLE);
		if (ho->h[ho->n - 1] == MOVA_NULL || ho->h[ho->n - 2] == MOVA_NULL)
			mig_fail("holder: halloc(%zu): errno %d", size, errno);
	}
	atomic_store(&ho->phase, 1);
	while (atomic_load(&ho->phase) != 2) {
		/* a large object always takes the slow path (it may be refused
		 * while the filler presses on the budget: that is fine) */
		mova_handle h = mova_halloc(ho->a, 70000);
		if (h != MOVA_NULL && mova_hfree(ho->a, h))
			mig_fail("holder: hfree");
		atomic_fetch_add(&ho->slow_paths, 1);
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static size_t reclaimable_pages(mova_arena *a)
{
	static mova_pageblock_info info[MAX_PB];
	size_t nb = mova_pageblocks(a, info, MAX_PB), pages = 0;
	for (size_t b = 0; b < nb && b < MAX_PB; b++)
		pages += info[b].reclaimable_pages;
	return pages;
}

Test(reclaim, other_threads_give_their_caches, .timeout = 120)
{
	mova_arena *a = rcl_arena(0);
	struct holder ho = {.a = a};
	pthread_t t;
	mig_spawn(&t, holder_main, &ho);
	while (!atomic_load(&ho.phase) && !mig_errors())
		sched_yield();
	mig_assert_no_errors();
	/* freed here: remote frees, onto slabs the holder still has current */
	for (unsigned i = 0; i < ho.n; i++)
		cr_assert_eq(mova_hfree(a, ho.h[i]), 0);
	mova_stats st = stats_of(a);
	size_t held = reclaimable_pages(a);
	/* the holder's own 70000-byte object may be live between its halloc
	 * and its hfree (a TSan run caught it there once): one at most */
	cr_assert_leq(st.live_handles, 1);
	cr_assert_gt(held, 0, "the holder keeps no reclaimable slab");
	cr_assert_eq(mova_set_limit(a, LIMIT), 0);
	/* fill with movable objects of one class until the budget refuses */
	enum { SIZE = 1000, CAP = 2 * LIMIT / SIZE };
	mova_handle *h = calloc(CAP, sizeof *h);
	cr_assert_not_null(h);
	unsigned n = 0;
	while (n < CAP && (h[n] = mova_halloc(a, SIZE)) != MOVA_NULL)
		n++;
	int err = errno;
	st = stats_of(a);
	size_t left = reclaimable_pages(a);
	cr_log_info(
	    "holder's cache: %zu reclaimable pages, %zu after %u objects filled a budget of "
	    "%zu MiB; %llu flush requests, %lu holder slow paths",
	    held, left, n, LIMIT / MiB, (unsigned long long)st.flush_requests,
	    atomic_load(&ho.slow_paths));
	atomic_store(&ho.phase, 2);
	mig_join(t);
	mig_assert_no_errors();
	cr_assert_lt(n, CAP, "the budget never refused");
	cr_assert_eq(err, ENOMEM);
	cr_assert_geq(st.flush_requests, 1, "reclaim never asked other threads");
	cr_assert_eq(left, 0, "the holder kept %zu reclaimable pages through reclaim", left);
	cr_assert_leq(st.resident_bytes, LIMIT + PB_BYTES);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	free(h);
	mova_arena_destroy(a);
}

/* ================================================================ mova_shrink */

Test(reclaim, shrink_on_demand, .timeout = 120)
{
	mova_arena *a = rcl_arena(0);
	/* movable objects, which no shrinker may touch */
	enum { NMOV = 2000, NRCL = 6000, NPIN = 3 };
	mova_handle mov[NMOV];
	for (unsigned i = 0; i < NMOV; i++) {
		mov[i] = mova_halloc(a, 500);
		cr_assert_neq(mov[i], MOVA_NULL);
		void *p = mova_pin(a, mov[i]);
		mig_fill(p, 500, 1000000 + i, 0);
		cr_assert_eq(mova_unpin(a, mov[i]), 0);
	}
	struct cache c;
	cache_init(&c, a, NRCL + 16);
	size_t rcl_bytes = 0;
	for (unsigned i = 0; i < NRCL; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL);
		rcl_bytes += entry_size(i);
	}
	mova_handle pinned[NPIN];
	for (unsigned k = 0; k < NPIN; k++) {
		pinned[k] = cache_at(&c, 1000 * k + 7)->h;
		cr_assert_not_null(mova_pin(a, pinned[k]));
	}
	mova_shrinker *s = cache_register(&c);
	size_t f = 77;
	cr_assert_eq(mova_shrink(NULL, SIZE_MAX, &f), EINVAL);
	cr_assert_eq(f, 0, "freed is set on EINVAL too");
	cr_assert_eq(mova_shrink(NULL, 0, NULL), EINVAL);
	mova_read_lock();
	f = 77;
	int rc = mova_shrink(a, SIZE_MAX, &f);
	mova_read_unlock();
	cr_assert_eq(rc, EDEADLK, "mova_shrink in a read section: %d", rc);
	cr_assert_eq(f, 0);
	cr_assert_eq(cache_len(&c), NRCL, "a refused mova_shrink freed entries");
	cr_assert_eq(atomic_load(&c.scan_calls), 0);

	/* a megabyte: resident drops by at least that */
	size_t res0 = resident(a);
	cr_assert_eq(mova_shrink(a, MiB, &f), 0);
	size_t res1 = resident(a);
	cr_log_info("shrink 1 MiB: %zu entries freed, resident %zu -> %zu KiB", f, res0 / KiB,
		    res1 / KiB);
	cr_assert_gt(f, 0);
	cr_assert_eq(f, atomic_load(&c.freed));
	cr_assert_leq(res1 + MiB, res0);
	cr_assert_gt(cache_len(&c), NPIN, "1 MiB of %zu dropped everything", rcl_bytes);

	/* everything (drop_caches): all but the pinned entries */
	size_t freed_before = atomic_load(&c.freed), len_before = cache_len(&c);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, &f), 0);
	size_t res2 = resident(a);
	cr_log_info("shrink all: %zu entries freed, resident %zu -> %zu KiB", f, res1 / KiB,
		    res2 / KiB);
	cr_assert_eq(cache_len(&c), NPIN, "%zu entries survived", cache_len(&c));
	cr_assert_eq(f, len_before - NPIN);
	cr_assert_eq(f, atomic_load(&c.freed) - freed_before);
	cr_assert_eq(stats_of(a).live_handles, NMOV + NPIN);
	cr_assert_leq(res2 + rcl_bytes / 2, res0, "resident %zu -> %zu after freeing %zu bytes",
		      res0, res2, rcl_bytes);
	for (unsigned i = 0; i < NMOV; i++) {
		const void *p = mova_pin(a, mov[i]);
		cr_assert_not_null(p);
		cr_assert_eq(mig_check(p, 500, 1000000 + i, 0), -1, "movable object %u", i);
		cr_assert_eq(mova_unpin(a, mov[i]), 0);
	}
	/* nothing more to take */
	cr_assert_eq(mova_shrink(a, 256 * MiB, &f), EAGAIN);
	cr_assert_eq(f, 0);
	cr_assert_eq(mova_shrink(a, 0, &f), 0, "nothing asked, nothing to do");
	for (unsigned k = 0; k < NPIN; k++)
		cr_assert_eq(mova_unpin(a, pinned[k]), 0);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
	cr_assert_eq(cache_len(&c), 0);
	cr_assert_eq(stats_of(a).live_handles, NMOV);
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cache_destroy(&c);
	for (unsigned i = 0; i < NMOV; i++)
		cr_assert_eq(mova_hfree(a, mov[i]), 0);
	mova_arena_destroy(a);
}

/* ================================================================ mova_set_limit */

Test(reclaim, set_limit_reclaims, .timeout = 120)
{
	mova_arena *a = rcl_arena(0);
	struct cache c;
	cache_init(&c, a, 40000);
	mova_shrinker *s = cache_register(&c);
	size_t total = 0;
	for (unsigned i = 0; total < 3 * LIMIT; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL);
		total += entry_size(i);
	}
	size_t res0 = resident(a);
	cr_assert_gt(res0, 2 * LIMIT, "no budget: resident %zu", res0);
	cr_assert_eq(atomic_load(&c.freed), 0, "the shrinker ran without a budget");
	int rc = mova_set_limit(a, LIMIT);
	size_t res1 = resident(a);
	cr_log_info("set_limit %zu MiB: resident %zu -> %zu KiB, %zu entries freed", LIMIT / MiB,
		    res0 / KiB, res1 / KiB, atomic_load(&c.freed));
	cr_assert_eq(rc, 0, "mova_set_limit: %d", rc);
	cr_assert_leq(res1, LIMIT + PB_BYTES);
	cr_assert_gt(atomic_load(&c.freed), 0);
	cr_assert_gt(stats_of(a).shrink_reclaimed, 0);
	cache_verify(&c, "after the limit came down");
	/* and it holds for what comes next */
	for (unsigned i = 0; i < 3000; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL);
		cr_assert_leq(resident(a), LIMIT + PB_BYTES, "allocation %u under the new limit",
			      i);
	}
	/* refusals leave the limit as it is */
	cr_assert_eq(mova_set_limit(a, 2 * PB_BYTES - 1), EINVAL);
	cr_assert_eq(mova_set_limit(a, 1), EINVAL);
	cr_assert_eq(mova_set_limit(a, PB_BYTES), EINVAL);
	cr_assert_eq(mova_set_limit(NULL, LIMIT), EINVAL);
	for (unsigned i = 0; i < 3000; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL);
		cr_assert_leq(resident(a), LIMIT + PB_BYTES, "allocation %u after refusals", i);
	}
	/* raising it reclaims nothing */
	size_t freed = atomic_load(&c.freed);
	cr_assert_eq(mova_set_limit(a, 4 * LIMIT), 0);
	cr_assert_eq(atomic_load(&c.freed), freed);
	/* 0 lifts the budget */
	cr_assert_eq(mova_set_limit(a, 0), 0);
	total = 0;
	for (unsigned i = 0; total < 6 * LIMIT; i++) {
		cr_assert_neq(cache_add(&c, entry_size(i)), MOVA_NULL);
		total += entry_size(i);
	}
	cr_assert_eq(atomic_load(&c.freed), freed, "the shrinker ran without a budget");
	cr_assert_gt(resident(a), 4 * LIMIT);
	cache_verify(&c, "without a budget");
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cache_destroy(&c);
	mova_arena_destroy(a);
}

/* a limit that cannot be reached (everything pinned): EAGAIN, and the limit
 * stays set: allocations are refused until the pins go */
Test(reclaim, set_limit_unreachable, .timeout = 120)
{
	mova_arena *a = rcl_arena(0);
	struct cache c;
	cache_init(&c, a, 40000);
	mova_shrinker *s = cache_register(&c);
	unsigned n = 0;
	for (size_t total = 0; total < 2 * LIMIT; n++) {
		cr_assert_neq(cache_add(&c, 2000), MOVA_NULL);
		total += 2000;
	}
	for (unsigned i = 0; i < n; i++)
		cr_assert_not_null(mova_pin(a, cache_at(&c, i)->h));
	int rc = mova_set_limit(a, LIMIT);
	cr_assert_eq(rc, EAGAIN, "a limit below pinned memory: %d", rc);
	cr_assert_eq(atomic_load(&c.freed), 0);
	cr_assert_gt(atomic_load(&c.busy), 0);
	cr_assert_gt(resident(a), LIMIT + PB_BYTES);
	errno = 0;
	cr_assert_eq(cache_add(&c, 100000), MOVA_NULL, "allocated past a limit that stayed set");
	cr_assert_eq(errno, ENOMEM);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(mova_unpin(a, cache_at(&c, i)->h), 0);
	/* the next allocation that needs memory reclaims down to the limit (one
	 * that fits a free slot of a slab needs none, and reclaims nothing) */
	cr_assert_neq(cache_add(&c, 100000), MOVA_NULL, "after the unpin: errno %d", errno);
	cr_assert_gt(atomic_load(&c.freed), 0);
	cr_assert_leq(resident(a), LIMIT + PB_BYTES);
	for (unsigned i = 0; i < 500; i++) {
		cr_assert_neq(cache_add(&c, 2000), MOVA_NULL, "allocation %u after the unpin", i);
		cr_assert_leq(resident(a), LIMIT + PB_BYTES, "allocation %u after the unpin", i);
	}
	cache_verify(&c, "after the unpin");
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cache_destroy(&c);
	mova_arena_destroy(a);
}

Test(reclaim, config_limit)
{
	mova_config cfg = rcl_config(2 * PB_BYTES - 1);
	const char *msg = NULL;
	cr_assert_eq(mova_config_check(&cfg, &msg), EINVAL);
	cr_assert_not_null(msg);
	cr_assert_not_null(strstr(msg, "limit_bytes"), "the message: %s", msg);
	errno = 0;
	cr_assert_null(mova_arena_create(&cfg));
	cr_assert_eq(errno, EINVAL);
	cfg = rcl_config(PB_BYTES);
	cr_assert_eq(mova_config_check(&cfg, NULL), EINVAL);
	cfg = rcl_config(2 * PB_BYTES);
	cr_assert_eq(mova_config_check(&cfg, &msg), 0);
	cfg = rcl_config(0);
	cr_assert_eq(mova_config_check(&cfg, &msg), 0);
	/* the default has no budget */
	mova_config def;
	mova_config_init(&def);
	cr_assert_eq(def.limit_bytes, 0);
	/* the budget from the configuration holds */
	mova_arena *a = rcl_arena(LIMIT);
	unsigned n = 0;
	while (mova_halloc(a, 4000) != MOVA_NULL)
		n++;
	cr_assert_eq(errno, ENOMEM);
	cr_assert_leq(resident(a), LIMIT + PB_BYTES);
	cr_assert_geq((size_t)n * 4000, LIMIT / 2);
	mova_arena_destroy(a);
}

/* ================================================================ registration */

static size_t count_some(mova_arena *a, void *priv)
{
	(void)a;
	(void)priv;
	return 10;
}

static size_t scan_none(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	(void)a;
	(void)priv;
	(void)sc;
	return 0;
}

Test(reclaim, register_and_unregister_arguments)
{
	mova_arena *a = rcl_arena(0), *b = rcl_arena(0);
	errno = 0;
	cr_assert_null(mova_shrinker_register(a, NULL, scan_none, NULL, 2));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(mova_shrinker_register(a, count_some, NULL, NULL, 2));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(mova_shrinker_register(a, NULL, NULL, NULL, 2));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(mova_shrinker_register(NULL, count_some, scan_none, NULL, 2));
	cr_assert_eq(errno, EINVAL);

	mova_shrinker *s = mova_shrinker_register(a, count_some, scan_none, NULL, 0);
	cr_assert_not_null(s);
	mova_shrinker *t = mova_shrinker_register(b, count_some, scan_none, NULL, 100);
	cr_assert_not_null(t);
	/* a stranger: never registered, NULL, or another arena's */
	int local = 0;
	cr_assert_eq(mova_shrinker_unregister(a, (mova_shrinker *)(void *)&local), EINVAL);
	cr_assert_eq(mova_shrinker_unregister(a, NULL), EINVAL);
	cr_assert_eq(mova_shrinker_unregister(NULL, s), EINVAL);
	cr_assert_eq(mova_shrinker_unregister(a, t), EINVAL, "b's shrinker unregistered from a");
	cr_assert_eq(mova_shrinker_unregister(b, s), EINVAL, "a's shrinker unregistered from b");
	/* twice */
	cr_assert_eq(mova_shrinker_unregister(a, s), 0);
	cr_assert_eq(mova_shrinker_unregister(a, s), EINVAL);
	cr_assert_eq(mova_shrinker_unregister(b, t), 0);
	cr_assert_eq(mova_shrinker_unregister(b, t), EINVAL);
	/* many, unregistered in another order than registered */
	mova_shrinker *many[40];
	for (unsigned i = 0; i < 40; i++) {
		many[i] = mova_shrinker_register(a, count_some, scan_none, NULL, i % 4);
		cr_assert_not_null(many[i]);
	}
	for (unsigned i = 0; i < 40; i += 2)
		cr_assert_eq(mova_shrinker_unregister(a, many[i]), 0);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0, "shrink with 20 shrinkers left");
	for (int i = 39; i > 0; i -= 2)
		cr_assert_eq(mova_shrinker_unregister(a, many[i]), 0);
	for (unsigned i = 0; i < 40; i++)
		cr_assert_eq(mova_shrinker_unregister(a, many[i]), EINVAL);
	/* an arena destroyed with shrinkers still registered */
	cr_assert_not_null(mova_shrinker_register(b, count_some, scan_none, NULL, 2));
	mova_arena_destroy(b);
	mova_arena_destroy(a);
}

/* callbacks that unregister their own shrinker: EDEADLK, from count and scan */
struct selfish {
	mova_shrinker *self;
	_Atomic int count_rc, scan_rc;
	_Atomic unsigned count_calls, scan_calls;
	int empty; /* count answers MOVA_SHRINK_EMPTY */
};

static size_t selfish_count(mova_arena *a, void *priv)
{
	struct selfish *x = priv;
	atomic_fetch_add(&x->count_calls, 1);
	atomic_store(&x->count_rc, mova_shrinker_unregister(a, x->self));
	return x->empty ? MOVA_SHRINK_EMPTY : 50;
}

static size_t selfish_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct selfish *x = priv;
	atomic_fetch_add(&x->scan_calls, 1);
	atomic_store(&x->scan_rc, mova_shrinker_unregister(a, x->self));
	sc->nr_scanned = sc->nr_to_scan;
	return 0;
}

Test(reclaim, unregister_self_in_callback)
{
	mova_arena *a = rcl_arena(0);
	struct selfish x = {.count_rc = -1, .scan_rc = -1};
	x.self = mova_shrinker_register(a, selfish_count, selfish_scan, &x, MOVA_DEFAULT_SEEKS);
	cr_assert_not_null(x.self);
	struct selfish e = {.count_rc = -1, .scan_rc = -1, .empty = 1};
	e.self = mova_shrinker_register(a, selfish_count, selfish_scan, &e, MOVA_DEFAULT_SEEKS);
	cr_assert_not_null(e.self);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
	cr_assert_gt(atomic_load(&x.count_calls), 0);
	cr_assert_gt(atomic_load(&x.scan_calls), 0);
	cr_assert_eq(atomic_load(&x.count_rc), EDEADLK, "unregister in count: %d",
		     atomic_load(&x.count_rc));
	cr_assert_eq(atomic_load(&x.scan_rc), EDEADLK, "unregister in scan: %d",
		     atomic_load(&x.scan_rc));
	/* MOVA_SHRINK_EMPTY: count asked, scan never */
	cr_assert_gt(atomic_load(&e.count_calls), 0);
	cr_assert_eq(atomic_load(&e.scan_calls), 0);
	cr_assert_eq(atomic_load(&e.count_rc), EDEADLK);
	/* still registered: called again, and unregistered from outside */
	unsigned calls = atomic_load(&x.count_calls);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
	cr_assert_gt(atomic_load(&x.count_calls), calls);
	cr_assert_eq(mova_shrinker_unregister(a, x.self), 0);
	cr_assert_eq(mova_shrinker_unregister(a, e.self), 0);
	calls = atomic_load(&x.count_calls);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
	cr_assert_eq(atomic_load(&x.count_calls), calls, "called after unregister");
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ one callback
 * unregisters another shrinker. Nothing is calling that one, so its
 * unregister must not wait ("waits until no call into it is running"). */

struct other {
	mova_arena *a;
	mova_shrinker *victim;
	_Atomic int victim_alive;
	_Atomic int rc, done, tried;
};

static size_t victim_count(mova_arena *a, void *priv)
{
	struct other *o = priv;
	(void)a;
	if (!atomic_load(&o->victim_alive))
		mig_fail("the victim's count ran after its unregister returned");
	return 10;
}

static size_t victim_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct other *o = priv;
	(void)a;
	if (!atomic_load(&o->victim_alive))
		mig_fail("the victim's scan ran after its unregister returned");
	sc->nr_scanned = sc->nr_to_scan;
	return 0;
}

static size_t killer_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct other *o = priv;
	if (!atomic_exchange(&o->tried, 1)) {
		int rc = mova_shrinker_unregister(a, o->victim);
		if (rc == 0)
			atomic_store(&o->victim_alive, 0);
		atomic_store(&o->rc, rc);
	}
	sc->nr_scanned = sc->nr_to_scan;
	return 0;
}

static void *shrink_thread(void *arg)
{
	struct other *o = arg;
	int rc = mova_shrink(o->a, SIZE_MAX, NULL);
	if (rc)
		mig_fail("mova_shrink: %d", rc);
	atomic_store(&o->done, 1);
	return NULL;
}

static void unregister_other(bool victim_first)
{
	mova_arena *a = rcl_arena(0);
	struct other o = {.a = a, .victim_alive = 1, .rc = -1};
	mova_shrinker *k = NULL;
	if (!victim_first)
		k = mova_shrinker_register(a, count_some, killer_scan, &o, MOVA_DEFAULT_SEEKS);
	o.victim = mova_shrinker_register(a, victim_count, victim_scan, &o, MOVA_DEFAULT_SEEKS);
	if (victim_first)
		k = mova_shrinker_register(a, count_some, killer_scan, &o, MOVA_DEFAULT_SEEKS);
	cr_assert(k && o.victim);
	pthread_t t;
	mig_spawn(&t, shrink_thread, &o);
	uint64_t t0 = mig_now_ns();
	while (!atomic_load(&o.done) && mig_now_ns() - t0 < 5000000000ull)
		mig_sleep_ms(5);
	/* BUG (policy tests): shrink_slab() in lib/reclaim.c took a reference on
	 * a batch of up to 16 shrinkers before calling the first; a callback
	 * that unregistered another shrinker of the batch waited for a
	 * reference its own walk held, forever. */
	cr_assert(atomic_load(&o.done),
		  "mova_shrink did not return in 5 s: a callback's unregister of another shrinker "
		  "(registered %s it) waits for a reference the walk itself holds",
		  victim_first ? "before" : "after");
	mig_join(t);
	mig_assert_no_errors();
	cr_assert_eq(atomic_load(&o.rc), 0, "unregister of another shrinker in a callback: %d",
		     atomic_load(&o.rc));
	cr_assert_eq(mova_shrinker_unregister(a, o.victim), EINVAL);
	cr_assert_eq(mova_shrink(a, SIZE_MAX, NULL), 0);
	mig_assert_no_errors();
	cr_assert_eq(mova_shrinker_unregister(a, k), 0);
	mova_arena_destroy(a);
}

Test(reclaim, unregister_later_shrinker_in_callback, .timeout = 60)
{
	unregister_other(false);
}

Test(reclaim, unregister_earlier_shrinker_in_callback, .timeout = 60)
{
	unregister_other(true);
}

/* ------------------------------------------------------------ unregister
 * waits for a callback running in another thread */

struct slow {
	mova_arena *a;
	_Atomic int in_scan, finished, slept, done;
};

static size_t slow_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct slow *w = priv;
	(void)a;
	if (!atomic_exchange(&w->slept, 1)) {
		atomic_store(&w->in_scan, 1);
		mig_sleep_ms(200);
		atomic_store(&w->finished, 1);
		atomic_store(&w->in_scan, 0);
	}
	sc->nr_scanned = sc->nr_to_scan;
	return 0;
}

static void *slow_shrink_thread(void *arg)
{
	struct slow *w = arg;
	if (mova_shrink(w->a, SIZE_MAX, NULL))
		mig_fail("mova_shrink failed");
	atomic_store(&w->done, 1);
	return NULL;
}

Test(reclaim, unregister_waits_for_running_callback, .timeout = 60)
{
	mova_arena *a = rcl_arena(0);
	struct slow w = {.a = a};
	mova_shrinker *s = mova_shrinker_register(a, count_some, slow_scan, &w, MOVA_DEFAULT_SEEKS);
	cr_assert_not_null(s);
	pthread_t t;
	mig_spawn(&t, slow_shrink_thread, &w);
	uint64_t t0 = mig_now_ns();
	while (!atomic_load(&w.in_scan) && mig_now_ns() - t0 < 5000000000ull)
		mig_sleep_ms(1);
	cr_assert(atomic_load(&w.in_scan), "the scan callback never ran");
	uint64_t t1 = mig_now_ns();
	int rc = mova_shrinker_unregister(a, s);
	uint64_t t2 = mig_now_ns();
	int finished = atomic_load(&w.finished);
	cr_log_info("unregister waited %llu ms for the running callback",
		    (unsigned long long)((t2 - t1) / 1000000));
	cr_assert_eq(rc, 0);
	cr_assert(finished, "unregister returned while its callback was still running");
	cr_assert_geq(t2 - t1, 50000000ull, "unregister did not wait");
	mig_join(t);
	cr_assert(atomic_load(&w.done));
	mig_assert_no_errors();
	mova_arena_destroy(a);
}

/* ================================================================ many threads */

#define STORM_THREADS 4
#define STORM_ROUNDS 200
#define STORM_ALLOCATORS 2

struct reg {
	struct cache *c;
	_Atomic int alive;
	_Atomic unsigned calls;
};

static struct reg storm_regs[STORM_THREADS][STORM_ROUNDS];

static size_t reg_count(mova_arena *a, void *priv)
{
	struct reg *r = priv;
	if (!atomic_load(&r->alive))
		mig_fail("a count callback ran after its unregister returned");
	atomic_fetch_add(&r->calls, 1);
	return cache_count(a, r->c);
}

static size_t reg_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct reg *r = priv;
	if (!atomic_load(&r->alive))
		mig_fail("a scan callback ran after its unregister returned");
	unsigned n = atomic_fetch_add(&r->calls, 1);
	if (n % 4 == 1)
		sched_yield(); /* a longer call: unregister has to wait for it */
	size_t freed = cache_scan(a, sc, r->c);
	if (!atomic_load(&r->alive))
		mig_fail("a scan callback ran on after its unregister returned");
	return freed;
}

struct storm {
	mova_arena *a;
	struct cache *c;
	struct reg *keeper;
	_Atomic int stop;
	_Atomic int registrars_left;
	_Atomic size_t max_resident;
};

struct registrar {
	struct storm *st;
	unsigned id;
	uint64_t seed;
};

static void *registrar_main(void *arg)
{
	struct registrar *g = arg;
	for (unsigned i = 0; i < STORM_ROUNDS && !mig_errors(); i++) {
		struct reg *r = &storm_regs[g->id][i];
		r->c = g->st->c;
		atomic_store(&r->alive, 1);
		mova_shrinker *s = mova_shrinker_register(g->st->a, reg_count, reg_scan, r, i % 3);
		if (!s) {
			mig_fail("register: errno %d", errno);
			break;
		}
		/* odd rounds: gone at once, racing walks in progress; even
		 * rounds: kept until a walk has called the keeper (at most 5 ms);
		 * every 16th: this thread walks too (mova_shrink), calling the
		 * other threads' shrinkers while they unregister them */
		unsigned base = atomic_load(&g->st->keeper->calls);
		uint64_t t0 = mig_now_ns();
		if (i % 16 == 8) {
			int src = mova_shrink(g->st->a, 64 * KiB, NULL);
			if (src != 0 && src != EAGAIN)
				mig_fail("mova_shrink from a registrar: %d", src);
		} else if (i % 2 == 0) {
			while (atomic_load(&g->st->keeper->calls) == base &&
			       mig_now_ns() - t0 < 5000000) {
				struct timespec ts = {0,
						      20000 + (long)(mig_rand(&g->seed) % 30000)};
				nanosleep(&ts, NULL);
			}
		}
		int rc = mova_shrinker_unregister(g->st->a, s);
		if (rc) {
			mig_fail("unregister: %d", rc);
			break;
		}
		atomic_store(&r->alive, 0);
	}
	atomic_fetch_sub(&g->st->registrars_left, 1);
	return NULL;
}

struct allocator {
	struct storm *st;
	uint64_t seed;
	unsigned long allocs;
};

/* on until the registrars are done, and a few stalls for the budget (20 s at most) */
static bool allocator_more(struct allocator *w, uint64_t t0)
{
	if (mig_errors())
		return false;
	if (atomic_load(&w->st->registrars_left) > 0 || w->allocs < 3000)
		return true;
	return mig_now_ns() - t0 < 20000000000ull && stats_of(w->st->a).allocstall < 4;
}

static void *allocator_main(void *arg)
{
	struct allocator *w = arg;
	struct storm *st = w->st;
	uint64_t t0 = mig_now_ns();
	while (allocator_more(w, t0)) {
		unsigned r = (unsigned)mig_rand(&w->seed);
		size_t size = entry_size(r);
		if (cache_add(st->c, size) == MOVA_NULL) {
			mig_fail("allocation of %zu under pressure: errno %d", size, errno);
			break;
		}
		w->allocs++;
		if (r % 16 == 0)
			cache_drop_oldest(st->c);
		if (r % 64 == 1) {
			/* an entry, checked under the cache's lock (the shrinker waits) */
			struct cache *c = st->c;
			pthread_mutex_lock(&c->lock);
			size_t n = c->tail - c->head;
			if (n) {
				struct entry *e = cache_at(c, (r >> 8) % n);
				const void *p = mova_pin(c->a, e->h);
				if (!p)
					mig_fail("pin of a cached entry: errno %d", errno);
				else if (mig_check(p, e->size, e->tag, 0) >= 0)
					mig_fail("entry %llu changed", (unsigned long long)e->tag);
				if (p)
					mova_unpin(c->a, e->h);
			}
			pthread_mutex_unlock(&c->lock);
		}
		if (r % 8 == 2) {
			size_t res = resident(st->a);
			size_t m = atomic_load(&st->max_resident);
			while (res > m && !atomic_compare_exchange_weak(&st->max_resident, &m, res))
				;
		}
	}
	return NULL;
}

Test(reclaim, shrinkers_come_and_go_under_pressure, .timeout = 300)
{
	mova_arena *a = rcl_arena(LIMIT);
	struct cache c;
	cache_init(&c, a, 400000);
	/* one shrinker for the whole run, so that reclaim always has one */
	struct reg keeper = {.c = &c, .alive = 1};
	mova_shrinker *ks = mova_shrinker_register(a, reg_count, reg_scan, &keeper, 0);
	cr_assert_not_null(ks);
	memset(storm_regs, 0, sizeof storm_regs);
	struct storm st = {.a = a, .c = &c, .keeper = &keeper, .registrars_left = STORM_THREADS};
	struct allocator al[STORM_ALLOCATORS];
	pthread_t ta[STORM_ALLOCATORS], tr[STORM_THREADS];
	for (unsigned k = 0; k < STORM_ALLOCATORS; k++) {
		al[k] = (struct allocator){&st, 1234 + k, 0};
		mig_spawn(&ta[k], allocator_main, &al[k]);
	}
	struct registrar rg[STORM_THREADS];
	for (unsigned k = 0; k < STORM_THREADS; k++) {
		rg[k] = (struct registrar){&st, k, 99 + k};
		mig_spawn(&tr[k], registrar_main, &rg[k]);
	}
	for (unsigned k = 0; k < STORM_THREADS; k++)
		mig_join(tr[k]);
	for (unsigned k = 0; k < STORM_ALLOCATORS; k++)
		mig_join(ta[k]);
	mig_assert_no_errors();
	unsigned long calls = 0, with_calls = 0;
	for (unsigned k = 0; k < STORM_THREADS; k++)
		for (unsigned i = 0; i < STORM_ROUNDS; i++) {
			calls += atomic_load(&storm_regs[k][i].calls);
			with_calls += atomic_load(&storm_regs[k][i].calls) > 0;
			cr_assert_eq(atomic_load(&storm_regs[k][i].alive), 0);
		}
	mova_stats s = stats_of(a);
	cr_log_info("storm: %lu + %lu allocations; %lu calls into %lu of %d short-lived "
		    "shrinkers, %u into the keeper; %zu entries freed, %zu EBUSY; allocstall %llu; "
		    "resident at most %zu KiB",
		    al[0].allocs, al[1].allocs, calls, with_calls, STORM_THREADS * STORM_ROUNDS,
		    atomic_load(&keeper.calls), atomic_load(&c.freed), atomic_load(&c.busy),
		    (unsigned long long)s.allocstall, atomic_load(&st.max_resident) / KiB);
	cr_assert_geq(s.allocstall, 4);
	cr_assert_gt(atomic_load(&c.freed), 0);
	cr_assert_gt(calls, 0, "no short-lived shrinker was ever called");
	cr_assert_eq(s.shrink_reclaimed, atomic_load(&c.freed));
	cr_assert_leq(atomic_load(&st.max_resident), LIMIT + PB_BYTES,
		      "two threads at once: resident %zu", atomic_load(&st.max_resident));
	cache_verify(&c, "after the storm");
	cr_assert_eq(stats_of(a).live_handles, cache_len(&c));
	cr_assert_eq(mova_shrinker_unregister(a, ks), 0);
	cache_destroy(&c);
	mova_arena_destroy(a);
}

/* ================================================================ placement */

Test(reclaim, reclaimable_pageblocks)
{
	mova_arena *a = rcl_arena(0);
	static const size_t sizes[] = {100, 700, 3000, 20000, 48};
	enum { N = 4000 };
	mova_handle *mov = calloc(N, sizeof *mov), *rcl = calloc(N, sizeof *rcl);
	cr_assert(mov && rcl);
	for (unsigned i = 0; i < N; i++) {
		size_t size = sizes[i % 5];
		mov[i] = mova_halloc(a, size);
		rcl[i] = mova_halloc_flags(a, size, MOVA_HF_RECLAIMABLE);
		cr_assert(mov[i] != MOVA_NULL && rcl[i] != MOVA_NULL);
		cr_assert_eq(mova_hsize(a, rcl[i]), size);
	}
	static mova_pageblock_info info[MAX_PB];
	size_t nb = mova_pageblocks(a, info, MAX_PB);
	cr_assert_leq(nb, MAX_PB);
	size_t rcl_pages = 0, mov_pages = 0, rcl_blocks = 0;
	for (size_t b = 0; b < nb; b++) {
		const mova_pageblock_info *pi = &info[b];
		rcl_pages += pi->reclaimable_pages;
		mov_pages += pi->movable_pages;
		rcl_blocks += pi->migratetype == MOVA_MIGRATE_RECLAIMABLE;
		if (pi->reclaimable_pages)
			cr_assert_eq(pi->migratetype, MOVA_MIGRATE_RECLAIMABLE,
				     "pageblock %zu (type %u) holds %u reclaimable pages", b,
				     pi->migratetype, pi->reclaimable_pages);
		if (pi->migratetype == MOVA_MIGRATE_MOVABLE)
			cr_assert_eq(pi->reclaimable_pages, 0);
		if (pi->migratetype == MOVA_MIGRATE_RECLAIMABLE)
			cr_assert_eq(pi->movable_pages, 0,
				     "RECLAIMABLE pageblock %zu holds %u movable pages", b,
				     pi->movable_pages);
		cr_assert_eq(pi->unmovable_pages, 0);
		cr_assert_leq((size_t)pi->reclaimable_pages + pi->movable_pages + pi->free_pages,
			      (size_t)1 << PB_ORDER);
	}
	mova_stats st = stats_of(a);
	cr_log_info("%zu pageblocks: %zu RECLAIMABLE; %zu reclaimable pages, %zu movable", nb,
		    rcl_blocks, rcl_pages, mov_pages);
	cr_assert_gt(rcl_pages, 0);
	cr_assert_gt(mov_pages, 0);
	cr_assert_gt(rcl_blocks, 0);
	cr_assert_eq(st.nr_pageblocks[MOVA_MIGRATE_RECLAIMABLE], rcl_blocks);
	/* large ones alone take whole pages: 20000 bytes, 5 pages each */
	cr_assert_geq(rcl_pages, (size_t)(N / 5) * 5);
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(mova_hfree(a, mov[i]), 0);
		cr_assert_eq(mova_hfree(a, rcl[i]), 0);
	}
	free(mov);
	free(rcl);
	mova_arena_destroy(a);
}

Test(reclaim, halloc_flags)
{
	mova_arena *a = rcl_arena(0);
	const unsigned bad[] = {0x4, 0x8, 0x80000000u, ~0u, MOVA_HF_RECLAIMABLE | 0x10};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(mova_halloc_flags(a, 100, bad[i]), MOVA_NULL, "flags %#x", bad[i]);
		cr_assert_eq(errno, EINVAL, "flags %#x: errno %d", bad[i], errno);
	}
	errno = 0;
	cr_assert_eq(mova_halloc_flags(NULL, 100, 0), MOVA_NULL);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(stats_of(a).live_handles, 0, "a refused allocation left a handle");
	/* ZERO zeroes, for both families, small and large, reused memory included */
	static const size_t sizes[] = {1, 16, 100, 1000, 5000, 16384, 16385, 50000, 300000};
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t size = sizes[k];
		for (unsigned fam = 0; fam < 2; fam++) {
			unsigned f = fam ? MOVA_HF_RECLAIMABLE : 0;
			mova_handle dirty[8];
			for (int d = 0; d < 8; d++) {
				dirty[d] = mova_halloc_flags(a, size, f);
				cr_assert_neq(dirty[d], MOVA_NULL);
				memset(mova_pin(a, dirty[d]), 0xa5, size);
				cr_assert_eq(mova_unpin(a, dirty[d]), 0);
			}
			for (int d = 0; d < 8; d++)
				cr_assert_eq(mova_hfree(a, dirty[d]), 0);
			for (int d = 0; d < 8; d++) {
				mova_handle h = mova_halloc_flags(a, size, f | MOVA_HF_ZERO);
				cr_assert_neq(h, MOVA_NULL);
				cr_assert_eq(mova_hsize(a, h), size);
				const unsigned char *p = mova_pin(a, h);
				cr_assert_not_null(p);
				for (size_t i = 0; i < size; i++)
					cr_assert_eq(p[i], 0,
						     "size %zu flags %#x: byte %zu is %#x after "
						     "MOVA_HF_ZERO",
						     size, f, i, p[i]);
				cr_assert_eq(mova_unpin(a, h), 0);
				dirty[d] = h;
			}
			for (int d = 0; d < 8; d++)
				cr_assert_eq(mova_hfree(a, dirty[d]), 0);
		}
	}
	/* flags 0 is mova_halloc; size 0 is allowed */
	mova_handle h0 = mova_halloc_flags(a, 0, MOVA_HF_RECLAIMABLE);
	cr_assert_neq(h0, MOVA_NULL);
	cr_assert_eq(mova_hsize(a, h0), 0);
	cr_assert_not_null(mova_pin(a, h0));
	cr_assert_eq(mova_unpin(a, h0), 0);
	mova_handle h1 = mova_halloc_flags(a, 77, 0);
	cr_assert_neq(h1, MOVA_NULL);
	cr_assert_eq(mova_hsize(a, h1), 77);
	cr_assert_eq(stats_of(a).live_handles, 2);
	/* a reclaimable object is an ordinary handle: pins, reads, frees */
	char *p = mova_pin(a, h0);
	cr_assert_not_null(p);
	cr_assert_eq(mova_unpin(a, h0), 0);
	cr_assert_eq(mova_hfree(a, h0), 0);
	cr_assert_eq(mova_hfree(a, h0), EINVAL);
	cr_assert_eq(mova_hfree(a, h1), 0);
	mova_arena_destroy(a);
}
