/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c: the object layer across threads.
 *  - malloc_pairs: producers allocate at every raw size class (and large
 *    sizes), consumers free, through lock-protected queues; every block is
 *    patterned from its address and size and checked before its free;
 *  - handle_pairs: the same with handles on a private arena (halloc, pin,
 *    fill, unpin; consumer pins, checks, unpins, hfree), while a third
 *    thread compacts the arena;
 *  - exit_holding_nothing / exit_while_others_free: threads that exit
 *    empty-handed, and threads that exit while others still hold and free
 *    their blocks and newcomers adopt their slabs: nothing lost, nothing
 *    handed out twice, and the arena does not grow from round to round;
 *  - rcu_readers: readers deref under mova_read_lock while writers hfree
 *    and halloc and a compactor migrates: a reader sees NULL or the whole
 *    object of the handle it dereferenced, until its section ends;
 *  - live_bytes_count_every_thread: live_bytes stays exact with another
 *    thread alive and idle, across remote frees and that thread's exit.
 * Worker threads never call Criterion's asserts; they record the first
 * failure, which the main thread reports.
 */
#ifdef MV_CR_STANDALONE /* ThreadSanitizer builds: see ../common/cr_standalone.c */
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mova.h"
#include "../common/pattern.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

TestSuite(threads, .timeout = 120);

/* ------------------------------------------------------------ failures */

static _Atomic unsigned long nr_errors;
static char first_error[512];

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	if (atomic_fetch_add(&nr_errors, 1) != 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(first_error, sizeof first_error, fmt, ap);
	va_end(ap);
}

static void assert_no_errors(void)
{
	unsigned long n = atomic_load(&nr_errors);
	cr_assert_eq(n, 0, "%lu failures in worker threads; the first: %s", n, first_error);
}

static void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(t, NULL, fn, arg);
	cr_assert_eq(rc, 0, "pthread_create: %d", rc);
}

/* ------------------------------------------------------------ patterns */

static uint64_t pseed(const void *p, size_t size)
{
	return mix64((uint64_t)(uintptr_t)p ^ (size << 40));
}

static uint64_t hseed(mova_handle h, size_t size)
{
	return mix64(h ^ (size << 1) ^ 0x5555);
}

/* raw classes: 16-byte steps to 256 B, then 8 per doubling to 16 KiB */
static size_t raw_sizes(size_t *out)
{
	size_t n = 0;
	out[n++] = 0;
	out[n++] = 1;
	for (size_t s = 16; s <= 256; s += 16) {
		out[n++] = s - 7;
		out[n++] = s;
	}
	for (size_t base = 256; base < 16384; base *= 2)
		for (size_t k = 1; k <= 8; k++) {
			out[n++] = base + k * (base / 8) - 5;
			out[n++] = base + k * (base / 8);
		}
	out[n++] = 16 * KiB + 1;
	out[n++] = 50 * KiB;
	out[n++] = 300 * KiB;
	return n;
}

/* movable classes: 16-byte steps to 1 KiB, then 16 per doubling to 16 KiB */
static size_t mov_sizes(size_t *out)
{
	size_t n = 0;
	out[n++] = 0;
	out[n++] = 1;
	for (size_t s = 16; s <= 1024; s += 16)
		out[n++] = s - (s & 31 ? 3 : 0);
	for (size_t base = 1024; base < 16384; base *= 2)
		for (size_t k = 1; k <= 16; k++)
			out[n++] = base + k * (base / 16) - (k & 1);
	out[n++] = 16 * KiB + 1;
	out[n++] = 40 * KiB;
	out[n++] = 200 * KiB;
	return n;
}

/* ------------------------------------------------------------ a set of live pointers */

/* Linear probing with backward-shift deletion, striped by hash into
 * independently locked tables. add fails when the key is already there:
 * a block handed out twice while live. */
#define STRIPES 64
#define STRIPE_BITS 12
#define STRIPE_SIZE ((size_t)1 << STRIPE_BITS)
static struct stripe {
	pthread_mutex_t lock;
	uintptr_t key[STRIPE_SIZE];
	size_t n;
} live_set[STRIPES];

static void set_init(void)
{
	for (int i = 0; i < STRIPES; i++) {
		pthread_mutex_init(&live_set[i].lock, NULL);
		memset(live_set[i].key, 0, sizeof live_set[i].key);
		live_set[i].n = 0;
	}
}

static size_t set_home(uint64_t hash)
{
	return (size_t)(hash >> (64 - STRIPE_BITS));
}

static bool set_add(uintptr_t key)
{
	uint64_t hash = mix64(key);
	struct stripe *s = &live_set[hash % STRIPES];
	bool ok = true;
	pthread_mutex_lock(&s->lock);
	if (s->n >= STRIPE_SIZE - 1) {
		pthread_mutex_unlock(&s->lock);
		fail("live set stripe full");
		return true;
	}
	size_t i = set_home(hash);
	for (; s->key[i]; i = (i + 1) & (STRIPE_SIZE - 1))
		if (s->key[i] == key) {
			ok = false;
			break;
		}
	if (ok) {
		s->key[i] = key;
		s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static bool set_del(uintptr_t key)
{
	uint64_t hash = mix64(key);
	struct stripe *s = &live_set[hash % STRIPES];
	pthread_mutex_lock(&s->lock);
	size_t i = set_home(hash);
	for (; s->key[i] != key; i = (i + 1) & (STRIPE_SIZE - 1))
		if (!s->key[i]) {
			pthread_mutex_unlock(&s->lock);
			return false;
		}
	/* backward shift: pull later members of the cluster into the hole */
	size_t j = i;
	for (;;) {
		s->key[i] = 0;
		for (;;) {
			j = (j + 1) & (STRIPE_SIZE - 1);
			if (!s->key[j])
				goto done;
			size_t k = set_home(mix64(s->key[j]));
			/* k cyclically in (i, j]: it stays */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		s->key[i] = s->key[j];
		i = j;
	}
done:
	s->n--;
	pthread_mutex_unlock(&s->lock);
	return true;
}

/* ------------------------------------------------------------ a queue */

#define QCAP 128
struct item {
	void *p;
	mova_handle h;
	size_t size;
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	struct item buf[QCAP];
	unsigned head, n;
	bool closed;
};

static void q_init(struct queue *q)
{
	memset(q, 0, sizeof *q);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	pthread_cond_init(&q->nonfull, NULL);
}

static void q_destroy(struct queue *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->nonempty);
	pthread_cond_destroy(&q->nonfull);
}

static void q_push(struct queue *q, struct item it)
{
	pthread_mutex_lock(&q->lock);
	while (q->n == QCAP)
		pthread_cond_wait(&q->nonfull, &q->lock);
	q->buf[(q->head + q->n++) % QCAP] = it;
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

static void q_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

static bool q_pop(struct queue *q, struct item *it)
{
	pthread_mutex_lock(&q->lock);
	while (!q->n && !q->closed)
		pthread_cond_wait(&q->nonempty, &q->lock);
	bool got = q->n > 0;
	if (got) {
		*it = q->buf[q->head];
		q->head = (q->head + 1) % QCAP;
		q->n--;
		pthread_cond_signal(&q->nonfull);
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

/* ------------------------------------------------------------ raw blocks */

/* allocate size bytes, record and pattern them; NULL after a failure */
static void *raw_make(size_t size)
{
	void *p = mova_malloc(size);
	if (!p) {
		fail("mova_malloc(%zu): errno %d", size, errno);
		return NULL;
	}
	size_t u = mova_usable_size(p);
	if (u < size)
		fail("usable_size %zu < %zu", u, size);
	if (!set_add((uintptr_t)p))
		fail("mova_malloc(%zu) handed out %p, which is live", size, p);
	fill(p, size, pseed(p, size));
	return p;
}

static void raw_check_free(void *p, size_t size)
{
	size_t bad = check(p, size, pseed(p, size));
	if (bad != size)
		fail("block %p of %zu bytes corrupt at byte %zu", p, size, bad);
	if (!set_del((uintptr_t)p))
		fail("block %p not in the live set", p);
	mova_free(p);
}

static size_t default_live_bytes(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st.live_bytes;
}

static size_t default_populated(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st.populated_bytes;
}

/* ------------------------------------------------------------ malloc pairs */

#define NPAIRS 4

struct pair {
	struct queue q;
	mova_arena *a; /* handle pairs */
	int rounds;
	unsigned id;
};

static void *malloc_producer(void *v)
{
	struct pair *pr = v;
	size_t sizes[256];
	size_t n = raw_sizes(sizes);
	for (int r = 0; r < pr->rounds; r++)
		for (size_t i = 0; i < n; i++) {
			/* each producer walks the classes from a different start */
			size_t size = sizes[(i + pr->id * 37 + (size_t)r) % n];
			void *p = raw_make(size);
			if (p)
				q_push(&pr->q, (struct item){p, MOVA_NULL, size});
		}
	q_close(&pr->q);
	return NULL;
}

static void *malloc_consumer(void *v)
{
	struct pair *pr = v;
	struct item it;
	unsigned k = 0;
	void *mine[16] = {0};
	size_t mysz[16] = {0};
	while (q_pop(&pr->q, &it)) {
		raw_check_free(it.p, it.size);
		/* a little local traffic too, on the slabs this thread owns */
		unsigned s = k++ % 16;
		if (mine[s])
			raw_check_free(mine[s], mysz[s]);
		mysz[s] = it.size % 2048;
		mine[s] = raw_make(mysz[s]);
	}
	for (unsigned s = 0; s < 16; s++)
		if (mine[s])
			raw_check_free(mine[s], mysz[s]);
	return NULL;
}

static void run_malloc_pairs(int rounds)
{
	static struct pair pairs[NPAIRS];
	pthread_t prod[NPAIRS], cons[NPAIRS];
	for (unsigned i = 0; i < NPAIRS; i++) {
		q_init(&pairs[i].q);
		pairs[i].rounds = rounds;
		pairs[i].id = i;
		spawn(&cons[i], malloc_consumer, &pairs[i]);
		spawn(&prod[i], malloc_producer, &pairs[i]);
	}
	for (unsigned i = 0; i < NPAIRS; i++) {
		pthread_join(prod[i], NULL);
		pthread_join(cons[i], NULL);
		q_destroy(&pairs[i].q);
	}
}

Test(threads, malloc_pairs)
{
	set_init();
	size_t live0 = default_live_bytes();
	run_malloc_pairs(20);
	assert_no_errors();
	size_t pop1 = default_populated();
	for (int run = 0; run < 4; run++)
		run_malloc_pairs(20);
	assert_no_errors();
	cr_assert_eq(default_live_bytes(), live0,
		     "live_bytes %zu after every block was freed, %zu before", default_live_bytes(),
		     live0);
	size_t pop2 = default_populated();
	cr_log_info("malloc_pairs: populated %zu KiB after one run, %zu KiB after five", pop1 >> 10,
		    pop2 >> 10);
	cr_assert_leq(
	    pop2, pop1 + 32 * MiB,
	    "the arena keeps growing: populated %zu MiB after one run, %zu MiB after five",
	    pop1 >> 20, pop2 >> 20);
}

/* ------------------------------------------------------------ handle pairs */

static _Atomic int stop_compactor;
static _Atomic unsigned long compactions; /* full compactions done */

static void *compactor(void *v)
{
	mova_arena *a = v;
	unsigned i = 0;
	while (!atomic_load(&stop_compactor)) {
		bool full = i++ % 4 == 0;
		int rc = mova_compact(a, full ? -1 : (int)(i % 5));
		if (rc < 0 || rc > MOVA_COMPACT_CONTENDED)
			fail("mova_compact: %d", rc);
		if (full)
			atomic_fetch_add(&compactions, 1);
		sched_yield();
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Workers do at least `floor` steps; then they go on to `min` steps and
 * until the compactor has run MIN_COMPACTIONS full compactions alongside
 * them, for at most MAX_SECONDS: migration is exercised at any speed, and
 * slow sanitizer builds stay within their time. */
#define MIN_COMPACTIONS 40
#define MAX_SECONDS 4.0

static bool keep_going(int done, int floor, int min, double t0)
{
	if (done < floor)
		return true;
	if (now() - t0 >= MAX_SECONDS)
		return false;
	return done < min || atomic_load(&compactions) < MIN_COMPACTIONS;
}

static void *handle_producer(void *v)
{
	struct pair *pr = v;
	size_t sizes[256];
	size_t n = mov_sizes(sizes);
	double t0 = now();
	for (int r = 0; keep_going(r, 2, pr->rounds, t0); r++)
		for (size_t i = 0; i < n; i++) {
			size_t size = sizes[(i + pr->id * 53 + (size_t)r) % n];
			mova_handle h =
			    r & 1 ? mova_hcalloc(pr->a, size) : mova_halloc(pr->a, size);
			if (!h) {
				fail("mova_halloc(%zu): errno %d", size, errno);
				continue;
			}
			if (!set_add(h))
				fail("handle %#llx handed out twice", (unsigned long long)h);
			void *p = mova_pin(pr->a, h);
			if (!p) {
				fail("pin of a fresh handle: errno %d", errno);
				continue;
			}
			fill(p, size, hseed(h, size));
			if (mova_unpin(pr->a, h))
				fail("unpin of a fresh handle");
			q_push(&pr->q, (struct item){NULL, h, size});
		}
	q_close(&pr->q);
	return NULL;
}

/* pin, check, unpin, hfree (which must be refused while pinned and twice) */
static void handle_check_free(mova_arena *a, struct item it)
{
	size_t hs = mova_hsize(a, it.h);
	if (hs != it.size)
		fail("hsize %zu, expected %zu", hs, it.size);
	void *p = mova_pin(a, it.h);
	if (!p) {
		fail("pin of a live handle: errno %d", errno);
		return;
	}
	size_t bad = check(p, it.size, hseed(it.h, it.size));
	if (bad != it.size)
		fail("object of %zu bytes corrupt at byte %zu", it.size, bad);
	if (mova_hfree(a, it.h) != EBUSY)
		fail("hfree of a pinned object was not EBUSY");
	if (mova_unpin(a, it.h))
		fail("unpin");
	if (!set_del(it.h))
		fail("handle not in the live set");
	int rc = mova_hfree(a, it.h);
	if (rc)
		fail("hfree: %d", rc);
	if (mova_hfree(a, it.h) != EINVAL)
		fail("second hfree was not EINVAL");
}

static void *handle_consumer(void *v)
{
	struct pair *pr = v;
	struct item it;
	/* a reservoir of objects kept a while and dropped at random: it leaves
	 * sparse slabs behind, which the compactor migrates */
	enum { RES = 256 };
	struct item res[RES];
	memset(res, 0, sizeof res);
	uint64_t r = pr->id + 1;
	while (q_pop(&pr->q, &it)) {
		r = mix64(r);
		struct item *slot = &res[r % RES];
		if (slot->h)
			handle_check_free(pr->a, *slot);
		if (r & 0x100000) {
			*slot = it;
		} else {
			slot->h = MOVA_NULL;
			handle_check_free(pr->a, it);
		}
	}
	for (unsigned k = 0; k < RES; k++)
		if (res[k].h)
			handle_check_free(pr->a, res[k]);
	return NULL;
}

static void handle_pairs(int kcompactd)
{
	set_init();
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = kcompactd;
	cfg.reserve_bytes = (size_t)1 << 30;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a);
	static struct pair pairs[NPAIRS];
	pthread_t prod[NPAIRS], cons[NPAIRS], comp;
	atomic_store(&stop_compactor, 0);
	atomic_store(&compactions, 0);
	spawn(&comp, compactor, a);
	for (unsigned i = 0; i < NPAIRS; i++) {
		q_init(&pairs[i].q);
		pairs[i].a = a;
		pairs[i].rounds = 6;
		pairs[i].id = i;
		spawn(&cons[i], handle_consumer, &pairs[i]);
		spawn(&prod[i], handle_producer, &pairs[i]);
	}
	for (unsigned i = 0; i < NPAIRS; i++) {
		pthread_join(prod[i], NULL);
		pthread_join(cons[i], NULL);
		q_destroy(&pairs[i].q);
	}
	atomic_store(&stop_compactor, 1);
	pthread_join(comp, NULL);
	assert_no_errors();
	mova_stats st;
	mova_stats_get(a, &st);
	cr_log_info("handle_pairs: %llu objects migrated in %lu full compactions",
		    (unsigned long long)st.pgmigrate_success, atomic_load(&compactions));
	cr_assert_eq(st.live_handles, 0, "live_handles %zu after every hfree", st.live_handles);
	cr_assert_eq(st.live_bytes, 0, "live_bytes %zu after every hfree", st.live_bytes);
	mova_arena_destroy(a);
}

Test(threads, handle_pairs)
{
	handle_pairs(0);
}

Test(threads, handle_pairs_kcompactd)
{
	handle_pairs(1);
}

/* ------------------------------------------------------------ thread exit */

static void *alloc_free_all(void *v)
{
	unsigned id = (unsigned)(uintptr_t)v;
	enum { N = 1500 };
	void *p[N];
	size_t sz[N];
	uint64_t r = id * 7919 + 1;
	for (int i = 0; i < N; i++) {
		r = mix64(r);
		sz[i] = r % 8 == 0 ? (size_t)(r >> 16) % (64 * KiB) : (size_t)(r >> 16) % 3000;
		p[i] = raw_make(sz[i]);
	}
	/* free in an order unlike the allocation order */
	for (int i = 0; i < N; i++) {
		int k = (i * 7) % N;
		if (p[k])
			raw_check_free(p[k], sz[k]);
	}
	return NULL;
}

Test(threads, exit_holding_nothing)
{
	enum { WAVES = 16, PER = 4 };
	set_init();
	size_t live0 = default_live_bytes(), pop2 = 0;
	for (unsigned w = 0; w < WAVES; w++) {
		pthread_t t[PER];
		for (unsigned i = 0; i < PER; i++)
			spawn(&t[i], alloc_free_all, (void *)(uintptr_t)(w * PER + i));
		for (unsigned i = 0; i < PER; i++)
			pthread_join(t[i], NULL);
		if (w == 1)
			pop2 = default_populated();
	}
	assert_no_errors();
	cr_assert_eq(default_live_bytes(), live0);
	size_t pop = default_populated();
	cr_log_info("exit_holding_nothing: populated %zu KiB after 2 waves, %zu KiB after %d",
		    pop2 >> 10, pop >> 10, WAVES);
	cr_assert_leq(pop, pop2 + 32 * MiB,
		      "threads that exit holding nothing leave memory behind: populated %zu MiB "
		      "after 2 waves, %zu MiB after %d",
		      pop2 >> 20, pop >> 20, WAVES);
}

/* Threads that die holding blocks; freers free them while newcomers (who
 * adopt the dead threads' slabs) allocate. */
#define DEAD 4
#define PER_DEAD 2500
static void *dead_blocks[DEAD][PER_DEAD];
static size_t dead_sizes[DEAD][PER_DEAD];

static void *allocate_and_die(void *v)
{
	unsigned id = (unsigned)(uintptr_t)v;
	size_t sizes[256];
	size_t n = raw_sizes(sizes);
	for (unsigned i = 0; i < PER_DEAD; i++) {
		size_t size = sizes[(i * 13 + id) % n];
		if (size > 16 * KiB)
			size = i % 97 == 0 ? size : 100;
		dead_sizes[id][i] = size;
		dead_blocks[id][i] = raw_make(size);
	}
	return NULL;
}

static void *free_dead(void *v)
{
	unsigned id = (unsigned)(uintptr_t)v;
	/* freer id takes every DEAD-th block of every dead thread */
	for (unsigned i = id; i < PER_DEAD; i += DEAD)
		for (unsigned d = 0; d < DEAD; d++)
			if (dead_blocks[d][i]) {
				raw_check_free(dead_blocks[d][i], dead_sizes[d][i]);
				dead_blocks[d][i] = NULL;
			}
	return NULL;
}

#define NEWC 4
#define PER_NEW 3000
static void *new_blocks[NEWC][PER_NEW];
static size_t new_sizes[NEWC][PER_NEW];

static void *newcomer(void *v)
{
	unsigned id = (unsigned)(uintptr_t)v;
	size_t sizes[256];
	size_t n = raw_sizes(sizes);
	for (unsigned i = 0; i < PER_NEW; i++) {
		size_t size = sizes[(i * 7 + id * 3) % n];
		if (size > 16 * KiB)
			size = 64;
		new_sizes[id][i] = size;
		new_blocks[id][i] = raw_make(size);
		/* free some right away, so adopted slabs get local frees too */
		if (i % 3 == 2) {
			unsigned k = i - 1;
			if (new_blocks[id][k]) {
				raw_check_free(new_blocks[id][k], new_sizes[id][k]);
				new_blocks[id][k] = NULL;
			}
		}
	}
	return NULL;
}

Test(threads, exit_while_others_free)
{
	set_init();
	size_t live0 = default_live_bytes(), pop1 = 0;
	for (int round = 0; round < 4; round++) {
		pthread_t d[DEAD], f[DEAD], nc[NEWC];
		for (unsigned i = 0; i < DEAD; i++)
			spawn(&d[i], allocate_and_die, (void *)(uintptr_t)i);
		for (unsigned i = 0; i < DEAD; i++)
			pthread_join(d[i], NULL);
		/* the owners are gone; their blocks are freed by others while
		 * newcomers allocate */
		for (unsigned i = 0; i < DEAD; i++)
			spawn(&f[i], free_dead, (void *)(uintptr_t)i);
		for (unsigned i = 0; i < NEWC; i++)
			spawn(&nc[i], newcomer, (void *)(uintptr_t)i);
		for (unsigned i = 0; i < DEAD; i++)
			pthread_join(f[i], NULL);
		for (unsigned i = 0; i < NEWC; i++)
			pthread_join(nc[i], NULL);
		/* the newcomers died holding blocks too: the main thread frees them */
		for (unsigned i = 0; i < NEWC; i++)
			for (unsigned k = 0; k < PER_NEW; k++)
				if (new_blocks[i][k]) {
					raw_check_free(new_blocks[i][k], new_sizes[i][k]);
					new_blocks[i][k] = NULL;
				}
		assert_no_errors();
		if (round == 0)
			pop1 = default_populated();
	}
	cr_assert_eq(default_live_bytes(), live0, "live_bytes %zu, %zu before",
		     default_live_bytes(), live0);
	size_t pop = default_populated();
	cr_log_info("exit_while_others_free: populated %zu KiB after one round, %zu KiB after four",
		    pop1 >> 10, pop >> 10);
	cr_assert_leq(pop, pop1 + 32 * MiB,
		      "memory of exited threads is not reused: populated %zu MiB after one round, "
		      "%zu MiB after four",
		      pop1 >> 20, pop >> 20);
}

/* ------------------------------------------------------------ RCU readers */

#define NSLOTS 512
#define NWRITERS 2
#define NREADERS 2
#define HDR 24
#define MAXOBJ (200 * KiB)

static mova_arena *rcu_arena;
static _Atomic mova_handle slots[NSLOTS];
static _Atomic int writers_done;
static _Atomic unsigned long reads_valid, reads_null;

static uint64_t hdr_check(mova_handle h, uint64_t size)
{
	return mix64(h * 31 + size + 0xabcdef);
}

/* allocate an object that names its own handle; NULL handle on failure */
static mova_handle rcu_make(size_t size)
{
	mova_handle h = mova_halloc(rcu_arena, size);
	if (!h) {
		fail("halloc(%zu): errno %d", size, errno);
		return MOVA_NULL;
	}
	unsigned char *p = mova_pin(rcu_arena, h);
	if (!p) {
		fail("pin of a fresh handle: errno %d", errno);
		return MOVA_NULL;
	}
	uint64_t hdr[3] = {h, size, hdr_check(h, size)};
	memcpy(p, hdr, HDR);
	fill(p + HDR, size - HDR, hseed(h, size));
	if (mova_unpin(rcu_arena, h))
		fail("unpin");
	return h;
}

/* 0 when o is the whole object of h */
static int rcu_validate(const unsigned char *o, mova_handle h, char *why, size_t whylen)
{
	uint64_t hdr[3];
	memcpy(hdr, o, HDR);
	if (hdr[0] != h) {
		snprintf(why, whylen, "object names handle %#llx, dereferenced %#llx",
			 (unsigned long long)hdr[0], (unsigned long long)h);
		return -1;
	}
	if (hdr[1] < HDR || hdr[1] > MAXOBJ || hdr[2] != hdr_check(h, hdr[1])) {
		snprintf(why, whylen, "object of %#llx has a bad header (size %llu)",
			 (unsigned long long)h, (unsigned long long)hdr[1]);
		return -1;
	}
	size_t n = (size_t)hdr[1] - HDR;
	size_t bad = check(o + HDR, n, hseed(h, (size_t)hdr[1]));
	if (bad != n) {
		snprintf(why, whylen, "object of %#llx (%llu bytes) differs at byte %zu",
			 (unsigned long long)h, (unsigned long long)hdr[1], bad + HDR);
		return -1;
	}
	return 0;
}

static size_t rcu_size(uint64_t r)
{
	switch (r % 16) {
	case 0: return 16 * KiB + 1 + (size_t)(r >> 8) % (MAXOBJ - 16 * KiB - 1);
	case 1:
	case 2: return HDR + (size_t)(r >> 8) % (16 * KiB - HDR);
	default: return HDR + (size_t)(r >> 8) % 1000;
	}
}

static void *rcu_writer(void *v)
{
	unsigned id = (unsigned)(uintptr_t)v;
	uint64_t r = id + 100;
	for (unsigned i = id; i < NSLOTS; i += NWRITERS) {
		r = mix64(r);
		atomic_store(&slots[i], rcu_make(rcu_size(r)));
	}
	double t0 = now();
	for (int it = 0; keep_going(it, 300, 6000, t0); it++) {
		r = mix64(r);
		unsigned i = (unsigned)(r % (NSLOTS / NWRITERS)) * NWRITERS + id;
		mova_handle old = atomic_load(&slots[i]);
		size_t size = rcu_size(r >> 13);
		int rc;
		if (r & (1u << 30)) {
			/* free first: readers may hold the old value meanwhile */
			rc = old ? mova_hfree(rcu_arena, old) : 0;
			atomic_store(&slots[i], rcu_make(size));
		} else {
			atomic_store(&slots[i], rcu_make(size));
			rc = old ? mova_hfree(rcu_arena, old) : 0;
		}
		if (rc)
			fail("hfree of a live handle: %d", rc);
	}
	return NULL;
}

static void *rcu_reader(void *v)
{
	unsigned id = (unsigned)(uintptr_t)v;
	uint64_t r = id * 1000003 + 7;
	char why[200];
	unsigned long valid = 0, null = 0;
	while (!atomic_load(&writers_done)) {
		enum { KEEP = 8 };
		const unsigned char *kept[KEEP];
		mova_handle kh[KEEP];
		unsigned nk = 0;
		mova_read_lock();
		for (int j = 0; j < 16; j++) {
			r = mix64(r);
			mova_handle h = atomic_load(&slots[r % NSLOTS]);
			if (!h)
				continue;
			errno = 0;
			const unsigned char *o = mova_deref(rcu_arena, h);
			if (!o) {
				if (errno != EINVAL)
					fail("deref NULL with errno %d", errno);
				null++;
				continue;
			}
			if (rcu_validate(o, h, why, sizeof why)) {
				fail("reader: %s", why);
				continue;
			}
			valid++;
			if (nk < KEEP) {
				kept[nk] = o;
				kh[nk++] = h;
			}
		}
		/* let writers and the compactor run while we still hold them */
		for (int y = 0; y < 3; y++)
			sched_yield();
		for (unsigned k = 0; k < nk; k++)
			if (rcu_validate(kept[k], kh[k], why, sizeof why))
				fail("reader, later in the same section: %s", why);
		mova_read_unlock();
	}
	atomic_fetch_add(&reads_valid, valid);
	atomic_fetch_add(&reads_null, null);
	return NULL;
}

Test(threads, rcu_readers)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = (size_t)1 << 30;
	rcu_arena = mova_arena_create(&cfg);
	cr_assert_not_null(rcu_arena);
	pthread_t w[NWRITERS], rd[NREADERS], comp;
	atomic_store(&stop_compactor, 0);
	atomic_store(&compactions, 0);
	for (unsigned i = 0; i < NREADERS; i++)
		spawn(&rd[i], rcu_reader, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < NWRITERS; i++)
		spawn(&w[i], rcu_writer, (void *)(uintptr_t)i);
	spawn(&comp, compactor, rcu_arena);
	for (unsigned i = 0; i < NWRITERS; i++)
		pthread_join(w[i], NULL);
	atomic_store(&writers_done, 1);
	for (unsigned i = 0; i < NREADERS; i++)
		pthread_join(rd[i], NULL);
	atomic_store(&stop_compactor, 1);
	pthread_join(comp, NULL);
	assert_no_errors();
	cr_assert_gt(atomic_load(&reads_valid), 0, "readers never saw an object");
	/* every survivor is intact, then freed */
	char why[200];
	for (unsigned i = 0; i < NSLOTS; i++) {
		mova_handle h = atomic_load(&slots[i]);
		if (!h)
			continue;
		mova_read_lock();
		const unsigned char *o = mova_deref(rcu_arena, h);
		cr_assert_not_null(o);
		int bad = rcu_validate(o, h, why, sizeof why);
		mova_read_unlock();
		cr_assert_eq(bad, 0, "%s", why);
		cr_assert_eq(mova_hfree(rcu_arena, h), 0);
	}
	mova_stats st;
	mova_stats_get(rcu_arena, &st);
	cr_log_info("rcu_readers: %lu valid derefs, %lu refused, %llu objects migrated in %lu "
		    "full compactions",
		    atomic_load(&reads_valid), atomic_load(&reads_null),
		    (unsigned long long)st.pgmigrate_success, atomic_load(&compactions));
	cr_assert_eq(st.live_handles, 0);
	mova_arena_destroy(rcu_arena);
}

/* ------------------------------------------------------------ live_bytes */

/* live_bytes is the exact sum of the usable sizes of live blocks, counted
 * per thread: while another thread is alive and idle with blocks in its
 * current slabs, after this thread frees that thread's blocks (remote frees,
 * counted by the freeing thread), after that thread frees the rest and after
 * it exits. A cheaper counting that missed any of these cases (a scheme
 * that left the fast paths' slots in the slabs' own counts was tried and
 * measured) fails here. */

#define LB_N 3000

static const size_t lb_sizes[] = {16, 24, 100, 500, 1000, 3000, 200};

struct lb_helper {
	pthread_mutex_t m;
	pthread_cond_t c;
	int step, done;
	void *p[LB_N];
	size_t usable; /* sum of the live blocks' usable sizes */
};

static void lb_wait(struct lb_helper *h, int step)
{
	pthread_mutex_lock(&h->m);
	while (h->step < step)
		pthread_cond_wait(&h->c, &h->m);
	pthread_mutex_unlock(&h->m);
}

static void lb_signal(struct lb_helper *h, int *field, int v)
{
	pthread_mutex_lock(&h->m);
	*field = v;
	pthread_cond_broadcast(&h->c);
	pthread_mutex_unlock(&h->m);
}

static void lb_wait_done(struct lb_helper *h, int v)
{
	pthread_mutex_lock(&h->m);
	while (h->done < v)
		pthread_cond_wait(&h->c, &h->m);
	pthread_mutex_unlock(&h->m);
}

static void *lb_helper_main(void *v)
{
	struct lb_helper *h = v;
	for (unsigned i = 0; i < LB_N; i++) {
		h->p[i] = mova_malloc(lb_sizes[i % 7]);
		if (!h->p[i]) {
			fail("helper: mova_malloc(%zu) failed", lb_sizes[i % 7]);
			return NULL;
		}
		h->usable += mova_usable_size(h->p[i]);
	}
	lb_signal(h, &h->done, 1);
	/* idle, holding its current slabs, while the main thread looks */
	lb_wait(h, 1);
	/* free its own odd blocks (the main thread took the even ones) */
	for (unsigned i = 1; i < LB_N; i += 2) {
		h->usable -= mova_usable_size(h->p[i]);
		mova_free(h->p[i]);
		h->p[i] = NULL;
	}
	lb_signal(h, &h->done, 2);
	lb_wait(h, 2);
	return NULL;
}

Test(threads, live_bytes_count_every_thread)
{
	set_init();
	size_t live0 = default_live_bytes();
	static void *mine[LB_N];
	size_t usable = 0;
	for (unsigned i = 0; i < LB_N; i++) {
		mine[i] = mova_malloc(lb_sizes[(i * 3) % 7]);
		cr_assert_not_null(mine[i]);
		usable += mova_usable_size(mine[i]);
	}
	cr_assert_eq(default_live_bytes() - live0, usable, "after %d mallocs: %zu, expected %zu",
		     LB_N, default_live_bytes() - live0, usable);
	/* every third block: some in the current slabs, most not */
	for (unsigned i = 0; i < LB_N; i += 3) {
		usable -= mova_usable_size(mine[i]);
		mova_free(mine[i]);
		mine[i] = NULL;
	}
	cr_assert_eq(default_live_bytes() - live0, usable, "after frees: %zu, expected %zu",
		     default_live_bytes() - live0, usable);

	static struct lb_helper h = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
	pthread_t t;
	spawn(&t, lb_helper_main, &h);
	lb_wait_done(&h, 1);
	assert_no_errors();
	cr_assert_eq(default_live_bytes() - live0, usable + h.usable,
		     "with an idle helper: %zu, expected %zu + %zu", default_live_bytes() - live0,
		     usable, h.usable);
	/* the helper's even blocks, freed here (remote frees to its slabs) */
	for (unsigned i = 0; i < LB_N; i += 2) {
		h.usable -= mova_usable_size(h.p[i]);
		mova_free(h.p[i]);
		h.p[i] = NULL;
	}
	cr_assert_eq(default_live_bytes() - live0, usable + h.usable,
		     "after remote frees: %zu, expected %zu + %zu", default_live_bytes() - live0,
		     usable, h.usable);
	lb_signal(&h, &h.step, 1);
	lb_wait_done(&h, 2);
	cr_assert_eq(h.usable, 0);
	cr_assert_eq(default_live_bytes() - live0, usable,
		     "after the helper freed the rest: %zu, expected %zu",
		     default_live_bytes() - live0, usable);
	lb_signal(&h, &h.step, 2);
	pthread_join(t, NULL);
	assert_no_errors();
	cr_assert_eq(default_live_bytes() - live0, usable,
		     "after the helper exited: %zu, expected %zu", default_live_bytes() - live0,
		     usable);
	for (unsigned i = 0; i < LB_N; i++)
		mova_free(mine[i]);
	cr_assert_eq(default_live_bytes(), live0, "everything freed: %zu, %zu before",
		     default_live_bytes(), live0);
}

/* Large objects count in the allocating thread's own counter and leave
 * from the freeing thread's (malloc.c's large_live_add): the sum stays
 * right when one thread frees what another allocated, and when either
 * exits. */
#define LL_N 64
static void *ll_obj[LL_N];
static const size_t ll_size[4] = {20000, 40000, 100000, 300000};

static void *ll_alloc(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < LL_N; i++) {
		ll_obj[i] = mova_malloc(ll_size[i % 4]);
		if (ll_obj[i])
			memset(ll_obj[i], (int)i, ll_size[i % 4]);
	}
	return NULL;
}

static void *ll_free_half(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < LL_N; i += 2)
		mova_free(ll_obj[i]);
	return NULL;
}

Test(threads, large_live_bytes_across_threads)
{
	size_t live0 = default_live_bytes(), sum = 0;
	for (unsigned i = 0; i < LL_N; i++)
		sum += ll_size[i % 4];
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, ll_alloc, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0); /* the allocating thread exited */
	for (unsigned i = 0; i < LL_N; i++)
		cr_assert(ll_obj[i]);
	cr_assert_eq(default_live_bytes() - live0, sum, "after the allocations: %zu, expected %zu",
		     default_live_bytes() - live0, sum);
	cr_assert_eq(pthread_create(&t, NULL, ll_free_half, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	for (unsigned i = 0; i < LL_N; i += 2)
		sum -= ll_size[i % 4];
	cr_assert_eq(default_live_bytes() - live0, sum, "after another thread freed half: %zu, %zu",
		     default_live_bytes() - live0, sum);
	for (unsigned i = 1; i < LL_N; i += 2)
		mova_free(ll_obj[i]);
	cr_assert_eq(default_live_bytes(), live0, "everything freed: %zu, %zu before",
		     default_live_bytes(), live0);
}

/* A thread that only frees what another allocated (a consumer) makes a
 * cache of its own after a few dozen frees (malloc.c's free_cache), so
 * that its frees take the buffered remote path and not free_slow's
 * unbuffered push and shared counter: prodcons/16 went from 16 ns a pair
 * to 150-300 ns when frees stopped making caches (81514f3). A thread that
 * frees a handful and exits makes none (thread pools: preload-thread-churn). */
#define FO_N 1000
static void *fo_obj[FO_N];
struct fo_work {
	unsigned from, to;
	size_t caches; /* nr_thread_caches, read by the thread after its frees */
};

static void *fo_free(void *arg)
{
	struct fo_work *w = arg;
	for (unsigned i = w->from; i < w->to; i++)
		mova_free(fo_obj[i]);
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	w->caches = st.nr_thread_caches;
	return NULL;
}

Test(threads, a_thread_that_only_frees_gets_a_cache_after_a_few_dozen_frees)
{
	for (unsigned i = 0; i < FO_N; i++) {
		fo_obj[i] = mova_malloc(32);
		cr_assert_not_null(fo_obj[i]);
		memset(fo_obj[i], 0x5a, 32);
	}
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	size_t c0 = st.nr_thread_caches, live0 = st.live_bytes;
	struct fo_work few = {0, 8, 0}, many = {8, FO_N, 0};
	pthread_t t;
	spawn(&t, fo_free, &few);
	pthread_join(t, NULL);
	cr_assert_eq(few.caches, c0, "8 frees made a cache (%zu caches, %zu before)", few.caches,
		     c0);
	spawn(&t, fo_free, &many);
	pthread_join(t, NULL);
	cr_assert_eq(many.caches, c0 + 1, "%u frees: %zu caches, %zu before", FO_N - 8, many.caches,
		     c0);
	mova_stats_get(mova_default_arena(), &st);
	cr_assert_eq(st.nr_thread_caches, c0, "the consumer's cache outlived it");
	cr_assert_eq(live0 - st.live_bytes, (size_t)FO_N * 32, "live bytes: %zu before, %zu after",
		     live0, st.live_bytes);
	assert_no_errors();
}
