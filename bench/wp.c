/* SPDX-License-Identifier: MIT */
/*
 * wp.c: whole-program allocation workloads, one per process, for
 * bench/wp.sh to run under every allocator through LD_PRELOAD (plain
 * malloc and free: the program does not know who serves it). Each is our
 * own version of a kind of program the public allocator suites use, with
 * a fixed amount of work so that wall time and peak RSS compare:
 *
 *   tight T         T threads, each a tight loop of small malloc/free with
 *                   a short window of live objects (glibc's bench-malloc-thread),
 *                   sizes 16-256 B (16 size classes, about one live object each)
 *   tight1 T        the same with one size (48 B): tight / tight1 shows what
 *                   spreading the window over classes costs (slots of every
 *                   class at one page offset share an L1 set)
 *   mixed T         a pool of live objects replaced at random, sizes mostly
 *                   small with a tail to 16 KiB (alloc-test), T threads
 *   larson T        server threads replace random slots of a shared-nothing
 *                   array, then hand the array to a new thread and exit (larson)
 *   prodcons T      T/2 producers allocate and pass objects through queues to
 *                   T/2 consumers that free them; a large working set in flight
 *   lifetimes T     objects of random lifetimes, a share freed by other
 *                   threads (mstress / rptest)
 *   falseshare T    objects allocated by one thread, handed to T threads that
 *                   write them hard (cache-scratch: an allocator that packs
 *                   them on one line makes the writers fight)
 *   largechurn T    blocks of 1-8 MiB allocated, written, freed (T threads)
 *   randstep        a pool of 4,096 objects; each step frees a random one and
 *                   allocates 16-256 B, touching its first and last byte
 *   tlb             TLB-bound (one thread): 128 MiB in objects of 64-256 B,
 *                   each written, then 10 million reads of random objects
 *                   (a byte at each end); the allocation is timed too (SCALE
 *                   8: 1 GiB and 80 million reads). Huge pages under the
 *                   objects save most of the reads' TLB misses
 *
 * usage: bench-wp NAME [THREADS] [SCALE]   (SCALE multiplies the work, 1 = about a second
 * on one core under glibc). Prints one line: name, threads, a checksum.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double scale = 1;
static int nthreads = 2;

static inline uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: cheap, deterministic per thread */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "bench-wp: malloc(%zu) failed\n", n);
		exit(1);
	}
	return p;
}

static void run_threads(void *(*fn)(void *), int n)
{
	pthread_t *t = xmalloc(sizeof *t * (size_t)n);
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i)) {
			fprintf(stderr, "bench-wp: pthread_create failed\n");
			exit(1);
		}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
}

static _Atomic uint64_t checksum;

/* ------------------------------------------------------------ tight */

static int tight_one_size;
static void *tight_thread(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)((intptr_t)arg + 1);
	enum { WIN = 16 };
	void *win[WIN] = {0};
	long iters = (long)(50e6 * scale);
	uint64_t sum = 0;
	for (long i = 0; i < iters; i++) {
		unsigned k = (unsigned)i & (WIN - 1);
		free(win[k]);
		size_t sz = tight_one_size ? 48 : 16 + (rnd(&seed) & 0xf0);
		char *p = xmalloc(sz);
		p[0] = (char)i;
		sum += (uintptr_t)p & 0xff0;
		win[k] = p;
	}
	for (int k = 0; k < WIN; k++)
		free(win[k]);
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

/* ------------------------------------------------------------ mixed */

static size_t mixed_size(uint64_t *seed)
{
	uint64_t r = rnd(seed);
	unsigned c = (unsigned)(r % 100);
	if (c < 70)
		return 8 + (r >> 8) % 120; /* small */
	if (c < 95)
		return 128 + (r >> 8) % 896; /* medium */
	return 1024 + (r >> 8) % 15360;      /* to 16 KiB */
}

static void *mixed_thread(void *arg)
{
	uint64_t seed = 0xdeadbeefULL * (uint64_t)((intptr_t)arg + 7);
	enum { POOL = 8192 };
	char **pool = calloc(POOL, sizeof *pool);
	long iters = (long)(10e6 * scale / nthreads);
	uint64_t sum = 0;
	for (long i = 0; i < iters; i++) {
		unsigned k = (unsigned)(rnd(&seed) % POOL);
		if (pool[k]) {
			sum += (unsigned char)pool[k][0];
			free(pool[k]);
		}
		size_t sz = mixed_size(&seed);
		pool[k] = xmalloc(sz);
		pool[k][0] = (char)sz;
		pool[k][sz - 1] = 1;
	}
	for (unsigned k = 0; k < POOL; k++)
		free(pool[k]);
	free(pool);
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

/* ------------------------------------------------------------ larson */

enum { LARSON_SLOTS = 4096, LARSON_ROUNDS = 40000 };
struct larson_arg {
	char **slots;
	uint64_t seed;
};

static void *larson_thread(void *argp)
{
	struct larson_arg *a = argp;
	uint64_t sum = 0;
	for (int r = 0; r < LARSON_ROUNDS; r++) {
		unsigned k = (unsigned)(rnd(&a->seed) % LARSON_SLOTS);
		if (a->slots[k]) {
			sum += (unsigned char)a->slots[k][0];
			free(a->slots[k]);
		}
		size_t sz = 16 + rnd(&a->seed) % 496;
		a->slots[k] = xmalloc(sz);
		memset(a->slots[k], (int)r, sz < 64 ? sz : 64);
	}
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

/* one server slot array per root thread; each generation is a new thread
 * that frees what the previous (exited) one allocated */
static void *larson_root(void *arg)
{
	struct larson_arg a = {calloc(LARSON_SLOTS, sizeof(char *)),
			       0x1234567ULL * (uint64_t)((intptr_t)arg + 3)};
	int gens = (int)(240 * scale / nthreads) + 1;
	for (int g = 0; g < gens; g++) {
		pthread_t t;
		if (pthread_create(&t, NULL, larson_thread, &a)) {
			fprintf(stderr, "bench-wp: pthread_create failed\n");
			exit(1);
		}
		pthread_join(t, NULL);
	}
	for (unsigned k = 0; k < LARSON_SLOTS; k++)
		free(a.slots[k]);
	free(a.slots);
	return NULL;
}

/* ------------------------------------------------------------ prodcons */

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void **ring;
	size_t head, tail, cap;
	int closed;
};

static void q_push(struct queue *q, void **batch, size_t n)
{
	pthread_mutex_lock(&q->lock);
	while (q->tail - q->head + n > q->cap)
		pthread_cond_wait(&q->cond, &q->lock);
	for (size_t i = 0; i < n; i++)
		q->ring[q->tail++ % q->cap] = batch[i];
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static size_t q_pop(struct queue *q, void **batch, size_t max)
{
	pthread_mutex_lock(&q->lock);
	while (q->tail == q->head && !q->closed)
		pthread_cond_wait(&q->cond, &q->lock);
	size_t n = 0;
	while (n < max && q->head != q->tail)
		batch[n++] = q->ring[q->head++ % q->cap];
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return n;
}

static struct queue *queues;

static void *producer(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct queue *q = &queues[i];
	uint64_t seed = 0xabcdefULL * (uint64_t)(i + 1);
	long n = (long)(1.6e6 * scale / (nthreads / 2));
	enum { B = 64 };
	void *batch[B];
	for (long k = 0; k < n; k += B) {
		for (int j = 0; j < B; j++) {
			size_t sz = 16 + rnd(&seed) % 1008;
			char *p = xmalloc(sz);
			p[0] = (char)j;
			p[sz - 1] = (char)j;
			batch[j] = p;
		}
		q_push(q, batch, B);
	}
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void *consumer(void *arg)
{
	struct queue *q = &queues[(intptr_t)arg];
	void *batch[64];
	uint64_t sum = 0;
	size_t n;
	while ((n = q_pop(q, batch, 64)) > 0)
		for (size_t j = 0; j < n; j++) {
			sum += (unsigned char)((char *)batch[j])[0];
			free(batch[j]);
		}
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

static void *prodcons_thread(void *arg)
{
	int i = (int)(intptr_t)arg;
	return i % 2 == 0 ? producer((void *)(intptr_t)(i / 2))
			  : consumer((void *)(intptr_t)(i / 2));
}

/* ------------------------------------------------------------ lifetimes */

/* each thread keeps objects in a ring with a random lifetime each; every
 * 8th object is instead pushed to a shared exchange and freed by whichever
 * thread takes it next */
enum { EXCH = 1024 };
static _Atomic(void *) exchange[EXCH];

static void *lifetimes_thread(void *arg)
{
	uint64_t seed = 0x51ed27ULL * (uint64_t)((intptr_t)arg + 11);
	enum { RING = 1 << 15 };
	void **ring = calloc(RING, sizeof *ring);
	long iters = (long)(3.5e6 * scale / nthreads);
	uint64_t sum = 0;
	for (long i = 0; i < iters; i++) {
		uint64_t r = rnd(&seed);
		size_t sz = (r & 7) == 0 ? 256 + (r >> 8) % 3840 : 16 + (r >> 8) % 240;
		char *p = xmalloc(sz);
		p[0] = 1;
		if ((r >> 40) % 8 == 0) {
			void *old = atomic_exchange(&exchange[(r >> 20) % EXCH], p);
			free(old); /* another thread's, usually */
			continue;
		}
		/* lifetime: a random distance ahead in the ring */
		size_t at = ((size_t)i + 1 + (size_t)((r >> 24) % (RING - 1))) % RING;
		if (ring[at]) {
			sum += (unsigned char)((char *)ring[at])[0];
			free(ring[at]);
		}
		ring[at] = p;
	}
	for (size_t k = 0; k < RING; k++)
		free(ring[k]);
	free(ring);
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

/* ------------------------------------------------------------ falseshare */

static char **fs_objs;
static void *falseshare_thread(void *arg)
{
	int i = (int)(intptr_t)arg;
	/* free the object main made for us, then allocate our own and write
	 * it hard: an allocator that puts neighbours' objects on one cache
	 * line makes these writes fight */
	free(fs_objs[i]);
	long rounds = (long)(20000 * scale);
	uint64_t sum = 0;
	for (long r = 0; r < rounds; r++) {
		volatile char *p = xmalloc(8);
		for (int k = 0; k < 20000; k++)
			p[k & 7] = (char)(p[k & 7] + 1);
		sum += (unsigned char)p[0];
		free((void *)p);
	}
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

/* ------------------------------------------------------------ largechurn */

static void *largechurn_thread(void *arg)
{
	uint64_t seed = 0x77ULL * (uint64_t)((intptr_t)arg + 5);
	enum { LIVE = 4 };
	char *live[LIVE] = {0};
	long iters = (long)(120 * scale / nthreads);
	if (iters < 8)
		iters = 8; /* a smoke run still churns */
	uint64_t sum = 0;
	for (long i = 0; i < iters; i++) {
		unsigned k = (unsigned)i % LIVE;
		free(live[k]);
		size_t sz = ((size_t)1 << 20) + (size_t)(rnd(&seed) % (7u << 20));
		char *p = xmalloc(sz);
		/* written, as programs write what they allocate: every 4th page */
		for (size_t off = 0; off < sz; off += 16384)
			p[off] = (char)i;
		sum += (unsigned char)p[0];
		live[k] = p;
	}
	for (int k = 0; k < LIVE; k++)
		free(live[k]);
	atomic_fetch_add(&checksum, sum);
	return NULL;
}

/* ------------------------------------------------------------ randstep */

static void randstep(void)
{
	enum { POOL = 4096 };
	char **pool = calloc(POOL, sizeof *pool);
	uint64_t seed = 42, sum = 0;
	for (unsigned k = 0; k < POOL; k++) {
		pool[k] = xmalloc(16 + rnd(&seed) % 241);
		pool[k][0] = 1;
	}
	long steps = (long)(40e6 * scale);
	for (long i = 0; i < steps; i++) {
		uint64_t r = rnd(&seed);
		unsigned k = (unsigned)(r % POOL);
		free(pool[k]);
		size_t sz = 16 + (r >> 32) % 241;
		char *p = xmalloc(sz);
		p[0] = (char)i;
		p[sz - 1] = (char)i;
		sum += (unsigned char)p[0];
		pool[k] = p;
	}
	for (unsigned k = 0; k < POOL; k++)
		free(pool[k]);
	free(pool);
	atomic_fetch_add(&checksum, sum);
}

/* ------------------------------------------------------------ tlb */

static void tlb(void)
{
	size_t total = (size_t)((double)(128u << 20) * scale), n = total / 160;
	if (n < 1024)
		n = 1024;
	char **obj = xmalloc(n * sizeof *obj);
	uint16_t *len = xmalloc(n * sizeof *len);
	uint64_t seed = 0x7157, sum = 0;
	for (size_t i = 0; i < n; i++) {
		size_t sz = 64 + rnd(&seed) % 193;
		obj[i] = xmalloc(sz);
		memset(obj[i], (int)i, sz);
		len[i] = (uint16_t)sz;
	}
	long reads = (long)(10e6 * scale);
	for (long r = 0; r < reads; r++) {
		size_t i = rnd(&seed) % n;
		sum += (unsigned char)obj[i][0] + (unsigned char)obj[i][len[i] - 1];
	}
	for (size_t i = 0; i < n; i++)
		free(obj[i]);
	free(obj);
	free(len);
	atomic_fetch_add(&checksum, sum);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench-wp NAME [THREADS] [SCALE]\n"
				"  NAME: tight tight1 mixed larson prodcons lifetimes falseshare "
				"largechurn randstep tlb\n");
		return 2;
	}
	const char *name = argv[1];
	if (argc > 2)
		nthreads = atoi(argv[2]);
	if (argc > 3)
		scale = atof(argv[3]);
	if (nthreads < 1 || nthreads > 1024 || !(scale > 0)) {
		fprintf(stderr, "bench-wp: bad THREADS or SCALE\n");
		return 2;
	}
	if (!strcmp(name, "tight"))
		run_threads(tight_thread, nthreads);
	else if (!strcmp(name, "tight1")) {
		tight_one_size = 1;
		run_threads(tight_thread, nthreads);
	} else if (!strcmp(name, "mixed"))
		run_threads(mixed_thread, nthreads);
	else if (!strcmp(name, "larson"))
		run_threads(larson_root, nthreads);
	else if (!strcmp(name, "prodcons")) {
		if (nthreads < 2)
			nthreads = 2;
		nthreads &= ~1;
		queues = calloc((size_t)nthreads / 2, sizeof *queues);
		for (int i = 0; i < nthreads / 2; i++) {
			pthread_mutex_init(&queues[i].lock, NULL);
			pthread_cond_init(&queues[i].cond, NULL);
			queues[i].cap = 1 << 16; /* up to 64k objects in flight per pair */
			queues[i].ring = xmalloc(sizeof(void *) * queues[i].cap);
		}
		run_threads(prodcons_thread, nthreads);
	} else if (!strcmp(name, "lifetimes")) {
		run_threads(lifetimes_thread, nthreads);
		for (int k = 0; k < EXCH; k++)
			free(atomic_load(&exchange[k]));
	} else if (!strcmp(name, "falseshare")) {
		fs_objs = xmalloc(sizeof *fs_objs * (size_t)nthreads);
		for (int i = 0; i < nthreads; i++)
			fs_objs[i] = xmalloc(8);
		run_threads(falseshare_thread, nthreads);
	} else if (!strcmp(name, "largechurn"))
		run_threads(largechurn_thread, nthreads);
	else if (!strcmp(name, "randstep"))
		randstep();
	else if (!strcmp(name, "tlb"))
		tlb();
	else {
		fprintf(stderr, "bench-wp: unknown workload %s\n", name);
		return 2;
	}
	printf("%s %d %lu\n", name, nthreads, (unsigned long)atomic_load(&checksum));
	return 0;
}
