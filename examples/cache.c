/* SPDX-License-Identifier: MIT */
/*
 * cache.c: a cache under a memory budget, built on reclaimable objects and
 * a shrinker.
 *
 * A string-keyed cache (a hash table of keys, an LRU list) keeps every
 * value as a RECLAIMABLE object in a mova arena that has a memory budget
 * (mova_config.limit_bytes). The cache never decides when to evict: when
 * an allocation would take the arena past its budget, the allocator calls
 * the cache's shrinker, as the Linux kernel calls a filesystem's shrinker
 * under memory pressure, and the shrinker frees the coldest entries.
 *
 *   allocate a value:  h = mova_halloc_flags(a, len, MOVA_HF_RECLAIMABLE);
 *   the shrinker:      mova_shrinker_register(a, count, scan, cache, seeks);
 *                      count says how many entries could go, scan frees
 *                      up to sc->nr_to_scan of them with mova_hfree
 *   read a value:      mova_read_lock(); v = mova_deref(a, h); ...;
 *                      mova_read_unlock();
 *   keep one alive:    p = mova_pin(a, h): the shrinker's mova_hfree gets
 *                      EBUSY and skips it until mova_unpin
 *
 * The program runs phases whose working set (distinct keys, values of
 * 100..2000 bytes derived from the key) grows from a quarter of the budget
 * to four times it, with a Zipf-distributed access pattern from a
 * fixed-seed generator. A miss rebuilds the value and inserts it; a hit
 * checks the value against the key. It prints, per phase, the hit rate
 * and the arena's resident memory, and checks that:
 *   - resident memory never exceeds the budget by more than one pageblock,
 *   - the hit rate is ~100% while everything fits and declines gracefully
 *     (staying far above zero) once it does not,
 *   - no lookup ever returns wrong data,
 *   - an entry pinned across a phase survives it, although it is the
 *     coldest entry in the cache.
 * Then it halves the budget at run time (mova_set_limit) and drops the
 * whole cache on demand (mova_shrink), as drop_caches does.
 *
 * Build: cc cache.c $(pkg-config --cflags --libs mova) -lpthread -lm.
 * Run:   ./cache          (a million lookups, a few seconds)
 *        ./cache --quick  (all four times smaller: 4 MiB budget, for valgrind)
 * Exits 0 when every check passes, 1 otherwise.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mova.h>

#define CHECK(cond)                                                                               \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "cache: check failed at line %d: %s\n", __LINE__, #cond); \
			exit(1);                                                                  \
		}                                                                                 \
	} while (0)

#define MiB ((size_t)1 << 20)

/* ================================================================ the cache */

/*
 * The index (hash chains and LRU list) lives in ordinary malloc memory;
 * only the values live in the arena and count against its budget. While
 * the cache runs, entries are freed in one place only, the shrinker, which
 * is what keeps the locking simple. The shrinker's callbacks use malloc's
 * free for the index and never allocate from the arena (mova.h forbids it).
 */
/* a circular doubly linked list, as the kernel's list_head */
struct list {
	struct list *prev, *next;
};

struct entry {
	struct entry *hnext; /* hash chain */
	struct list lru;     /* place in the LRU list */
	mova_handle value;   /* a RECLAIMABLE object in the arena */
	size_t len;          /* the value's length */
	uint64_t hash;
	char key[]; /* NUL-terminated */
};

struct cache {
	mova_arena *arena;
	/* Protects everything below. The shrinker runs inside mova_halloc_flags,
	 * in whichever thread allocates, and takes this lock; so the cache never
	 * allocates from the arena while holding it (that would deadlock). */
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	struct list lru; /* LRU list: lru.next is the hottest entry, lru.prev the coldest */
	size_t nr_entries;
	mova_shrinker *shrinker;
	/* what the shrinker did */
	uint64_t evicted;    /* entries it freed */
	uint64_t busy_skips; /* pinned entries it had to pass over (mova_hfree: EBUSY) */
};

/* FNV-1a: the key's hash, also the seed of its value's contents */
static uint64_t hash_key(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

#define lru_entry(l) ((struct entry *)(void *)((char *)(l)-offsetof(struct entry, lru)))

static void lru_unlink(struct entry *e)
{
	e->lru.prev->next = e->lru.next;
	e->lru.next->prev = e->lru.prev;
}

/* make e the most recently used */
static void lru_push_front(struct cache *c, struct entry *e)
{
	e->lru.prev = &c->lru;
	e->lru.next = c->lru.next;
	c->lru.next->prev = &e->lru;
	c->lru.next = &e->lru;
}

/* under c->lock */
static struct entry *find(struct cache *c, const char *key, uint64_t hash)
{
	for (struct entry *e = c->buckets[hash & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* under c->lock: take e out of the index (its value is already freed) */
static void remove_entry(struct cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	c->nr_entries--;
	free(e);
}

/*
 * The shrinker's count: how many entries could be freed now. It may run in
 * any thread that allocates from the arena, concurrently with everything
 * else, so it takes the lock like every other user of the index.
 */
static size_t cache_count(mova_arena *a, void *priv)
{
	(void)a;
	struct cache *c = priv;
	pthread_mutex_lock(&c->lock);
	size_t n = c->nr_entries;
	pthread_mutex_unlock(&c->lock);
	return n ? n : MOVA_SHRINK_EMPTY;
}

/*
 * The shrinker's scan: look at up to sc->nr_to_scan entries from the cold
 * end of the LRU list and free them. A pinned value refuses to be freed
 * (EBUSY): it goes back to the hot end, as list_lru's LRU_ROTATE, and the
 * scan carries on. Returns how many entries were freed; sc->nr_scanned
 * says how many were looked at.
 */
static size_t cache_scan(mova_arena *a, mova_shrink_control *sc, void *priv)
{
	struct cache *c = priv;
	size_t scanned = 0, freed = 0;
	pthread_mutex_lock(&c->lock);
	while (scanned < sc->nr_to_scan && c->lru.prev != &c->lru) {
		struct entry *e = lru_entry(c->lru.prev); /* the coldest */
		scanned++;
		int err = mova_hfree(a, e->value);
		if (err == EBUSY) { /* pinned: in use, cannot go now */
			lru_unlink(e);
			lru_push_front(c, e);
			c->busy_skips++;
			continue;
		}
		CHECK(err == 0); /* anything else would be a bug in the cache */
		remove_entry(c, e);
		freed++;
	}
	c->evicted += freed;
	pthread_mutex_unlock(&c->lock);
	sc->nr_scanned = scanned;
	return freed;
}

static struct cache *cache_create(mova_arena *a, size_t nbuckets)
{
	struct cache *c = calloc(1, sizeof *c);
	CHECK(c != NULL);
	c->arena = a;
	CHECK(pthread_mutex_init(&c->lock, NULL) == 0);
	c->nbuckets = nbuckets;
	c->buckets = calloc(nbuckets, sizeof *c->buckets);
	CHECK(c->buckets != NULL);
	c->lru.next = c->lru.prev = &c->lru;
	/* From now on, allocations that would break the budget call us. */
	c->shrinker = mova_shrinker_register(a, cache_count, cache_scan, c, MOVA_DEFAULT_SEEKS);
	CHECK(c->shrinker != NULL);
	return c;
}

/* Free everything. No value may be pinned any more. */
static void cache_destroy(struct cache *c)
{
	/* first: no shrinker call may run (or start) while we tear down; this
	 * waits for calls in flight in other threads */
	CHECK(mova_shrinker_unregister(c->arena, c->shrinker) == 0);
	while (c->lru.next != &c->lru) {
		struct entry *e = lru_entry(c->lru.next);
		CHECK(mova_hfree(c->arena, e->value) == 0);
		remove_entry(c, e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

/*
 * Look key up. On a hit, copy its value into buf (which has room for cap
 * bytes) and return the value's length; on a miss, return 0.
 *
 * Two things keep the value readable while we copy it: the cache lock
 * keeps the shrinker from freeing it, and the read section keeps its
 * address valid even if the arena migrates the object meanwhile (reclaim
 * packs sparse slabs by moving what is in them). The lock is taken first
 * and the read section nested inside it, never the other way round.
 */
static size_t cache_get(struct cache *c, const char *key, void *buf, size_t cap)
{
	uint64_t hash = hash_key(key);
	size_t n = 0;
	pthread_mutex_lock(&c->lock);
	struct entry *e = find(c, key, hash);
	if (e) {
		lru_unlink(e); /* now the most recently used */
		lru_push_front(c, e);
		mova_read_lock();
		const void *v = mova_deref(c->arena, e->value);
		CHECK(v != NULL); /* live: only the shrinker frees, under the lock */
		n = e->len < cap ? e->len : cap;
		memcpy(buf, v, n);
		mova_read_unlock();
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/*
 * Insert key -> value. 0, or ENOMEM when the arena could not make room
 * within its budget (nothing left to reclaim): the value is then simply
 * not cached.
 */
static int cache_put(struct cache *c, const char *key, const void *val, size_t len)
{
	/* 1. The allocation, outside the lock: this is where the budget is
	 *    enforced and where our own shrinker may be called back. */
	mova_handle h = mova_halloc_flags(c->arena, len, MOVA_HF_RECLAIMABLE);
	if (h == MOVA_NULL)
		return errno;
	/* 2. Fill it in: writers pin (unpinned, the object may be moved at any
	 *    time by reclaim or compaction in another thread). */
	void *p = mova_pin(c->arena, h);
	CHECK(p != NULL);
	memcpy(p, val, len);
	CHECK(mova_unpin(c->arena, h) == 0);

	size_t klen = strlen(key) + 1;
	struct entry *e = malloc(sizeof *e + klen);
	CHECK(e != NULL);
	e->value = h;
	e->len = len;
	e->hash = hash_key(key);
	memcpy(e->key, key, klen);

	/* 3. Publish it under the lock; another thread may have inserted the
	 *    same key meanwhile, and then its entry stays and ours goes. */
	pthread_mutex_lock(&c->lock);
	if (find(c, key, e->hash)) {
		pthread_mutex_unlock(&c->lock);
		CHECK(mova_hfree(c->arena, h) == 0);
		free(e);
		return 0;
	}
	struct entry **bucket = &c->buckets[e->hash & (c->nbuckets - 1)];
	e->hnext = *bucket;
	*bucket = e;
	lru_push_front(c, e);
	c->nr_entries++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * Pin key's value: the address returned stays valid, and the shrinker
 * cannot free the entry, until cache_unpin(c, *hp). NULL on a miss.
 */
static const void *cache_pin(struct cache *c, const char *key, mova_handle *hp, size_t *len)
{
	const void *p = NULL;
	pthread_mutex_lock(&c->lock);
	struct entry *e = find(c, key, hash_key(key));
	if (e) {
		p = mova_pin(c->arena, e->value); /* under the lock: not freed meanwhile */
		CHECK(p != NULL);
		*hp = e->value;
		*len = e->len;
	}
	pthread_mutex_unlock(&c->lock);
	return p;
}

static void cache_unpin(struct cache *c, mova_handle h)
{
	CHECK(mova_unpin(c->arena, h) == 0);
}

static size_t cache_entries(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->nr_entries;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ========================================================= the workload */

/* splitmix64: a small generator with a fixed seed, so every run is the same */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define VALUE_MIN 100
#define VALUE_MAX 2000

static void key_name(uint32_t id, char out[32])
{
	snprintf(out, 32, "user:%08u", (unsigned)id);
}

/* The value of a key, as an expensive backend would compute it: 100..2000
 * bytes, all derived from the key (its name first, then pseudo-random
 * bytes seeded by its hash), so that any lookup can be checked. */
static size_t value_len(const char *key)
{
	return VALUE_MIN + hash_key(key) % (VALUE_MAX - VALUE_MIN + 1);
}

static size_t make_value(const char *key, char *out)
{
	uint64_t s = hash_key(key);
	size_t len = value_len(key);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = splitmix64(&s);
		memcpy(out + i, &r, len - i < 8 ? len - i : 8);
	}
	memcpy(out, key, strlen(key) + 1);
	return len;
}

/* Zipf(s) over ranks 0..n-1: P(rank k) proportional to 1 / (k + 1)^s, by
 * binary search in the cumulative distribution. */
struct zipf {
	double *cdf;
	uint32_t n;
};

static void zipf_init(struct zipf *z, uint32_t n, double s)
{
	z->n = n;
	z->cdf = malloc(n * sizeof *z->cdf);
	CHECK(z->cdf != NULL);
	double sum = 0;
	for (uint32_t k = 0; k < n; k++) {
		sum += 1.0 / pow(k + 1.0, s);
		z->cdf[k] = sum;
	}
	for (uint32_t k = 0; k < n; k++)
		z->cdf[k] /= sum;
}

static uint32_t zipf_next(const struct zipf *z, uint64_t *rng)
{
	double u = (double)(splitmix64(rng) >> 11) * 0x1p-53; /* [0, 1) */
	uint32_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ========================================================= the program */

#define PAGEBLOCK_ORDER 8 /* 1 MiB pageblocks */
#define ZIPF_S 0.99       /* YCSB's default skew */
#define SAMPLE_EVERY 256  /* operations between two looks at the statistics */

struct run {
	mova_arena *a;
	struct cache *c;
	size_t peak_resident; /* over all samples of all phases */
	uint64_t verified;    /* hits whose value was checked against the key */
	uint64_t nomem;       /* values that could not be cached */
};

/* Look at the arena's memory; return its resident bytes. */
static size_t sample(struct run *r, mova_stats *st)
{
	mova_stats_get(r->a, st);
	if (st->resident_bytes > r->peak_resident)
		r->peak_resident = st->resident_bytes;
	return st->resident_bytes;
}

/* One lookup: hit and check, or miss and rebuild. True on a hit. */
static bool lookup(struct run *r, uint32_t id)
{
	char key[32], got[VALUE_MAX], want[VALUE_MAX];
	key_name(id, key);
	size_t n = cache_get(r->c, key, got, sizeof got);
	size_t len = make_value(key, want); /* a hit is checked against this */
	if (n) {
		if (n != len || memcmp(got, want, len) != 0) { /* never acceptable */
			fprintf(stderr, "cache: WRONG DATA for %s (%zu bytes, want %zu)\n", key, n,
				len);
			exit(1);
		}
		r->verified++;
		return true;
	}
	if (cache_put(r->c, key, want, len) != 0)
		r->nomem++;
	return false;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	if (argc > 1 && !quick) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* An arena with a budget: resident memory (metadata included) is kept
	 * at most the budget, within one pageblock, by reclaiming before an
	 * allocation fails. */
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)1 << 30; /* address space only */
	cfg.pageblock_order = PAGEBLOCK_ORDER;
	cfg.kcompactd = 0; /* reclaim compacts what it needs; no background thread */
	const size_t budget = quick ? 4 * MiB : 16 * MiB;
	cfg.limit_bytes = budget;
	const char *why = NULL;
	if (mova_config_check(&cfg, &why) != 0) {
		fprintf(stderr, "cache: bad configuration: %s\n", why);
		return 1;
	}
	struct run r = {0};
	r.a = mova_arena_create(&cfg);
	CHECK(r.a != NULL);
	r.c = cache_create(r.a, (size_t)1 << 16);
	const size_t pageblock = (size_t)MOVA_PAGE_SIZE << PAGEBLOCK_ORDER;

	/* The phases: working sets of 1/4, 1/2, 1, 2 and 4 times the budget, in
	 * keys of ~1050 bytes on average. Each phase warms up with as many
	 * lookups as it then measures (keys stay cached from phase to phase). */
	static const double ws_times_budget[] = {0.25, 0.5, 1, 2, 4};
	enum { NPHASES = sizeof ws_times_budget / sizeof ws_times_budget[0] };
	const uint32_t ops = quick ? 25000 : 100000;
	const unsigned pinned_phase = NPHASES - 1; /* the largest */
	double hit_rate[NPHASES];
	uint64_t rng = 42;

	printf("budget %zu MiB, %zu KiB pageblocks, Zipf(%.2f) lookups, %u measured per phase\n\n",
	       budget / MiB, pageblock >> 10, ZIPF_S, ops);
	printf("phase     keys  working set  ws/budget   hit %%  peak resident   resident"
	       "       live  entries  reclaimed  allocstall     ms\n");

	mova_handle pinned_h = MOVA_NULL;
	const char *pinned_p = NULL;
	size_t pinned_len = 0;
	char pinned_key[32];
	uint64_t skips_before = 0;

	for (unsigned ph = 0; ph < NPHASES; ph++) {
		uint32_t nkeys = (uint32_t)(ws_times_budget[ph] * (double)budget / 1050);
		size_t ws = 0;
		for (uint32_t id = 0; id < nkeys; id++) {
			char key[32];
			key_name(id, key);
			ws += value_len(key);
		}
		struct zipf z;
		zipf_init(&z, nkeys, ZIPF_S);

		if (ph == pinned_phase) {
			/* Pin the value of a key outside the workload's range: nobody
			 * looks it up during the phase, so it sinks to the cold end of
			 * the LRU list, where every pass of the shrinker finds it.
			 * mova_hfree refuses (EBUSY), the scan passes over it, and the
			 * entry and its address survive the phase. */
			key_name(999999, pinned_key);
			char v[VALUE_MAX];
			CHECK(cache_put(r.c, pinned_key, v, make_value(pinned_key, v)) == 0);
			pinned_p = cache_pin(r.c, pinned_key, &pinned_h, &pinned_len);
			CHECK(pinned_p != NULL);
			skips_before = r.c->busy_skips;
		}

		mova_stats st0, st;
		sample(&r, &st0);
		struct timespec tp;
		clock_gettime(CLOCK_MONOTONIC, &tp);
		size_t phase_peak = 0;
		uint64_t hits = 0;
		for (uint32_t i = 0; i < 2 * ops; i++) {
			bool hit = lookup(&r, zipf_next(&z, &rng));
			if (i >= ops)
				hits += hit; /* the second half is measured */
			if (i % SAMPLE_EVERY == 0) {
				size_t res = sample(&r, &st);
				phase_peak = res > phase_peak ? res : phase_peak;
			}
		}
		size_t res = sample(&r, &st);
		phase_peak = res > phase_peak ? res : phase_peak;
		hit_rate[ph] = 100.0 * (double)hits / ops;
		printf("%5u %8u %8.2f MiB %9.2f %7.2f %10.2f MiB %6.2f MiB %6.2f MiB %8zu %10llu "
		       "%11llu %6.0f\n",
		       ph + 1, nkeys, (double)ws / MiB, (double)ws / budget, hit_rate[ph],
		       (double)phase_peak / MiB, (double)st.resident_bytes / MiB,
		       (double)st.live_bytes / MiB, cache_entries(r.c),
		       (unsigned long long)(st.shrink_reclaimed - st0.shrink_reclaimed),
		       (unsigned long long)(st.allocstall - st0.allocstall), ms_since(&tp));
		free(z.cdf);

		if (ph == pinned_phase) {
			char want[VALUE_MAX];
			size_t len = make_value(pinned_key, want);
			uint64_t skips = r.c->busy_skips - skips_before;
			/* the pinned address still holds the value ... */
			CHECK(pinned_len == len && memcmp(pinned_p, want, len) == 0);
			/* ... and the cache still has the entry */
			char got[VALUE_MAX];
			CHECK(cache_get(r.c, pinned_key, got, sizeof got) == len);
			CHECK(memcmp(got, want, len) == 0);
			printf("\npinned %s across phase %u: survived, the shrinker passed over it "
			       "%llu times (EBUSY)\n",
			       pinned_key, ph + 1, (unsigned long long)skips);
			CHECK(skips > 0);
			cache_unpin(r.c, pinned_h);
		}
	}

	mova_stats st;
	sample(&r, &st);
	printf("\npeak resident %.2f MiB, allowed %.2f MiB (budget + one pageblock); "
	       "shrinker: %llu objects scanned, %llu freed\n",
	       (double)r.peak_resident / MiB, (double)(budget + pageblock) / MiB,
	       (unsigned long long)st.slabs_scanned, (unsigned long long)st.shrink_reclaimed);
	printf("%llu hits, every value checked against its key: none wrong\n",
	       (unsigned long long)r.verified);

	/* The checks the table is meant to show (a wrong value has already
	 * ended the program). */
	CHECK(r.nomem == 0);
	CHECK(r.peak_resident <= budget + pageblock);
	CHECK(hit_rate[0] >= 99.0);                 /* fits: (almost) every lookup hits */
	CHECK(hit_rate[NPHASES - 1] < hit_rate[0]); /* does not fit: it declines ... */
	CHECK(hit_rate[NPHASES - 1] >= 50.0);       /* ... gracefully */
	for (unsigned ph = 1; ph < NPHASES; ph++)   /* and never rises with the set */
		CHECK(hit_rate[ph] <= hit_rate[ph - 1] + 0.5);
	CHECK(r.c->evicted == st.shrink_reclaimed); /* ours is the only shrinker */

	/* A lower budget at run time: reclaim runs at once. */
	size_t entries = cache_entries(r.c);
	CHECK(mova_set_limit(r.a, budget / 2) == 0);
	sample(&r, &st);
	printf("mova_set_limit(%zu MiB): resident %.2f MiB, entries %zu -> %zu\n", budget / 2 / MiB,
	       (double)st.resident_bytes / MiB, entries, cache_entries(r.c));
	CHECK(st.resident_bytes <= budget / 2 + pageblock);

	/* Drop the whole cache on demand, as echo 2 > /proc/sys/vm/drop_caches. */
	size_t freed = 0;
	CHECK(mova_shrink(r.a, SIZE_MAX, &freed) == 0);
	sample(&r, &st);
	printf("mova_shrink(everything): %zu entries freed, %zu left, resident %.2f MiB, live %zu "
	       "bytes\n",
	       freed, cache_entries(r.c), (double)st.resident_bytes / MiB, st.live_bytes);
	CHECK(cache_entries(r.c) == 0 && st.live_bytes == 0);

	cache_destroy(r.c);
	mova_stats_get(r.a, &st);
	CHECK(st.live_handles == 0 && st.live_bytes == 0);
	mova_arena_destroy(r.a);
	printf("ok (%.0f ms)\n", ms_since(&t0));
	return 0;
}
