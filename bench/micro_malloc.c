/* SPDX-License-Identifier: MIT */
/*
 * micro_malloc.c: the malloc-family micro benchmarks, built once per
 * allocator (alloc.h). Every benchmark reports items_per_second, one item
 * being one operation (a malloc+free pair, a realloc step, ...), so
 * 1e9 / items_per_second is the time of one operation in nanoseconds.
 *
 *   malloc_free/SIZE          pairs, one thread, batched loop
 *   malloc_free/SIZE/threads:2  the same in two threads at once (real time)
 *   batch_{lifo,fifo,random}/SIZE  1024 objects allocated, then freed in
 *                             reverse, the same or a random order
 *   prodcons/SIZE             thread 0 allocates, thread 1 frees (remote
 *                             frees through a ring; real time)
 *   realloc_growth/MAX        one buffer grown in 256 steps up to MAX
 *   aligned_alloc/ALIGN/SIZE  aligned_alloc+free pairs
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"

#define BATCH 64 /* operations per gb_keep_running_batch call */

static void bm_malloc_free(gb_state *st, void *arg)
{
	(void)arg;
	size_t n = (size_t)gb_state_arg(st, 0);
	while (gb_keep_running_batch(st, BATCH))
		for (int i = 0; i < BATCH; i++) {
			void *p = BM_MALLOC(n);
			gb_do_not_optimize(p);
			BM_FREE(p);
		}
	gb_set_items_processed(st, gb_state_iterations(st));
}

/* ------------------------------------------------------------ batches */

enum order { LIFO, FIFO, RANDOM };
#define NBATCH 1024

static void bm_batch(gb_state *st, void *arg)
{
	enum order order = (enum order)(uintptr_t)arg;
	size_t n = (size_t)gb_state_arg(st, 0);
	void *objs[NBATCH];
	unsigned perm[NBATCH];
	struct bm_rng rng = {42};
	for (unsigned i = 0; i < NBATCH; i++)
		perm[i] = order == LIFO ? NBATCH - 1 - i : i;
	if (order == RANDOM)
		for (unsigned i = NBATCH - 1; i > 0; i--) {
			unsigned j = (unsigned)bm_rand_below(&rng, i + 1), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
	while (gb_keep_running_batch(st, NBATCH)) {
		for (unsigned i = 0; i < NBATCH; i++) {
			objs[i] = BM_MALLOC(n);
			gb_do_not_optimize(objs[i]);
		}
		for (unsigned i = 0; i < NBATCH; i++)
			BM_FREE(objs[perm[i]]);
	}
	gb_set_items_processed(st, gb_state_iterations(st));
}

/* ------------------------------------------------------------ producer/consumer */

#define RING 1024 /* a power of two */
static struct {
	_Alignas(64) _Atomic size_t head; /* written by the producer */
	_Alignas(64) _Atomic size_t tail; /* written by the consumer */
	_Alignas(64) void *slot[RING];
} ring;

static inline void spin_wait(unsigned *spins)
{
	if (++*spins < 1024) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} else {
		*spins = 0;
		sched_yield(); /* two cores and noisy neighbours: let the other side run */
	}
}

static void bm_prodcons(gb_state *st, void *arg)
{
	(void)arg;
	size_t n = (size_t)gb_state_arg(st, 0);
	/* Both threads run the same number of iterations (the library gives each
	 * thread the same count), so the consumer frees exactly what the producer
	 * allocated and the ring is empty between runs. */
	if (gb_thread_index(st) == 0) {
		size_t h = atomic_load_explicit(&ring.head, memory_order_relaxed);
		while (gb_keep_running_batch(st, BATCH))
			for (int i = 0; i < BATCH; i++) {
				void *p = BM_MALLOC(n);
				gb_do_not_optimize(p);
				unsigned spins = 0;
				while (h - atomic_load_explicit(&ring.tail, memory_order_acquire) ==
				       RING)
					spin_wait(&spins);
				ring.slot[h & (RING - 1)] = p;
				atomic_store_explicit(&ring.head, ++h, memory_order_release);
			}
		gb_set_items_processed(st, gb_state_iterations(st));
	} else {
		size_t t = atomic_load_explicit(&ring.tail, memory_order_relaxed);
		while (gb_keep_running_batch(st, BATCH))
			for (int i = 0; i < BATCH; i++) {
				unsigned spins = 0;
				while (atomic_load_explicit(&ring.head, memory_order_acquire) == t)
					spin_wait(&spins);
				void *p = ring.slot[t & (RING - 1)];
				atomic_store_explicit(&ring.tail, ++t, memory_order_release);
				BM_FREE(p);
			}
	}
}

/* ------------------------------------------------------------ realloc, aligned */

#define GROWTH_STEPS 256

static void bm_realloc_growth(gb_state *st, void *arg)
{
	(void)arg;
	size_t max = (size_t)gb_state_arg(st, 0), step = max / GROWTH_STEPS;
	while (gb_keep_running_batch(st, GROWTH_STEPS)) {
		char *p = BM_MALLOC(step);
		p[step - 1] = 1;
		for (size_t s = 2 * step; s <= max; s += step) {
			p = BM_REALLOC(p, s);
			p[s - 1] = 1; /* as a growing buffer would */
		}
		gb_do_not_optimize(p);
		BM_FREE(p);
	}
	gb_set_items_processed(st, gb_state_iterations(st));
}

static void bm_aligned(gb_state *st, void *arg)
{
	(void)arg;
	size_t align = (size_t)gb_state_arg(st, 0), n = (size_t)gb_state_arg(st, 1);
	while (gb_keep_running_batch(st, BATCH))
		for (int i = 0; i < BATCH; i++) {
			void *p = BM_ALIGNED(align, n);
			gb_do_not_optimize(p);
			BM_FREE(p);
		}
	gb_set_items_processed(st, gb_state_iterations(st));
}

/* ------------------------------------------------------------ registration */

static const int64_t pair_sizes[] = {16,    32,    48,     64,     96,     128,    192,
				     256,   512,   1024,   2048,   4096,   8192,   16384,
				     32768, 65536, 131072, 262144, 524288, 1048576};

void bm_register_micro_malloc(void)
{
	gb_benchmark *b = gb_register("malloc_free", bm_malloc_free, NULL);
	for (size_t i = 0; i < sizeof pair_sizes / sizeof pair_sizes[0]; i++)
		gb_arg(b, pair_sizes[i]);
	b = gb_register("malloc_free", bm_malloc_free, NULL);
	gb_use_real_time(gb_threads(gb_arg(gb_arg(b, 64), 256), 2));

	static const char *const names[] = {"batch_lifo", "batch_fifo", "batch_random"};
	for (int o = LIFO; o <= RANDOM; o++) {
		b = gb_register(names[o], bm_batch, (void *)(uintptr_t)o);
		gb_arg(gb_arg(gb_arg(gb_arg(b, 16), 64), 256), 4096);
	}

	b = gb_register("prodcons", bm_prodcons, NULL);
	gb_use_real_time(gb_threads(gb_arg(gb_arg(gb_arg(gb_arg(b, 16), 64), 256), 4096), 2));

	b = gb_register("realloc_growth", bm_realloc_growth, NULL);
	gb_arg(gb_arg(gb_arg(b, 4096), 65536), 1 << 20);

	b = gb_register("aligned_alloc", bm_aligned, NULL);
	gb_args2(gb_args2(gb_args2(gb_args2(b, 64, 64), 64, 256), 256, 1024), 4096, 4096);
}
