/* SPDX-License-Identifier: MIT */
/*
 * macro.c: the pieces the macro workloads share (macro.h): ways of
 * allocating, the resident-memory sampler, sizes, a barrier.
 */
#include "macro.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ malloc */

static uint64_t malloc_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return (uint64_t)(uintptr_t)BM_MALLOC(size);
}

static void malloc_free(void *ctx, uint64_t obj)
{
	(void)ctx;
	BM_FREE((void *)(uintptr_t)obj);
}

static void malloc_write(void *ctx, uint64_t obj, size_t size, int byte)
{
	(void)ctx;
	memset((void *)(uintptr_t)obj, byte, size);
}

static void malloc_give_back(void *ctx)
{
	(void)ctx;
	bm_give_back();
}

#ifdef BENCH_MOVA
static void malloc_thread_flush(void *ctx)
{
	(void)ctx;
	mova_thread_flush(mova_default_arena());
}
#endif

const struct bm_ops bm_malloc_ops = {
    .name = "malloc",
    .alloc = malloc_alloc,
    .free = malloc_free,
    .write = malloc_write,
    .give_back = malloc_give_back,
#ifdef BENCH_MOVA
    .give_back_once = true,
    .thread_flush = malloc_thread_flush,
#else
    .give_back_once = false, /* mi_collect works on the calling thread's heap */
#endif
};

/* ------------------------------------------------------------ handles */

#ifdef BENCH_MOVA
static uint64_t handle_alloc(void *ctx, size_t size)
{
	return mova_halloc(ctx, size);
}

static void handle_free(void *ctx, uint64_t obj)
{
	mova_hfree(ctx, obj);
}

static void handle_write(void *ctx, uint64_t obj, size_t size, int byte)
{
	void *p = mova_pin(ctx, obj);
	if (p) {
		memset(p, byte, size);
		mova_unpin(ctx, obj);
	}
}

static void handle_compact(void *ctx)
{
	mova_compact(ctx, -1);
}

static void handle_thread_flush(void *ctx)
{
	mova_thread_flush(ctx);
}

struct bm_ops bm_handle_ops(mova_arena *a, bool compact)
{
	struct bm_ops o = {
	    .name = "handles",
	    .alloc = handle_alloc,
	    .free = handle_free,
	    .write = handle_write,
	    .give_back = compact ? handle_compact : NULL,
	    .give_back_once = true,
	    .thread_flush = compact ? handle_thread_flush : NULL,
	    .give_back_name = compact ? "mova_thread_flush(a) in every worker thread, then "
					"mova_compact(a, -1)"
				      : "none (kcompactd only)",
	    .ctx = a,
	};
	return o;
}
#endif

/* ------------------------------------------------------------ sampler */

/* under sm->lock */
static void take_sample(struct bm_sampler *sm)
{
	size_t r = bm_rss_anon(), rss = r > sm->baseline ? r - sm->baseline : 0;
	if (rss > sm->peak)
		sm->peak = rss;
	if (sm->n == sm->cap)
		return;
	struct bm_sample *s = &sm->s[sm->n++];
	s->t_ms = (double)(bm_now_ns() - sm->t0) / 1e6;
	s->phase = sm->phase;
	s->rss = rss;
	s->live = (uint64_t)bm_sampler_live(sm);
}

static void *sampler(void *arg)
{
	struct bm_sampler *sm = arg;
	struct timespec ts = {0, (long)sm->period_ns};
	while (!atomic_load(&sm->stop)) {
		pthread_mutex_lock(&sm->lock);
		take_sample(sm);
		pthread_mutex_unlock(&sm->lock);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

void bm_sampler_start(struct bm_sampler *sm, _Atomic int64_t *live, unsigned nlive,
		      unsigned period_ms)
{
	memset(sm, 0, sizeof *sm);
	pthread_mutex_init(&sm->lock, NULL);
	sm->live = live;
	sm->nlive = nlive;
	sm->period_ns = (uint64_t)period_ms * 1000000u;
	sm->cap = 1 << 17;
	sm->s = bm_map(sm->cap * sizeof *sm->s);
	sm->baseline = bm_rss_anon();
	sm->t0 = bm_now_ns();
	pthread_create(&sm->thread, NULL, sampler, sm);
}

size_t bm_sampler_rss(struct bm_sampler *sm)
{
	size_t r = bm_rss_anon();
	return r > sm->baseline ? r - sm->baseline : 0;
}

int64_t bm_sampler_live(struct bm_sampler *sm)
{
	int64_t live = 0;
	for (unsigned i = 0; i < sm->nlive; i++)
		live += atomic_load_explicit(&sm->live[i], memory_order_relaxed);
	return live;
}

void bm_sampler_phase(struct bm_sampler *sm, unsigned phase)
{
	pthread_mutex_lock(&sm->lock);
	take_sample(sm); /* the end of the phase before */
	if (phase < BM_MAX_PHASES)
		sm->phase_start_ms[phase] = (double)(bm_now_ns() - sm->t0) / 1e6;
	sm->phase = phase;
	take_sample(sm);
	pthread_mutex_unlock(&sm->lock);
}

void bm_sampler_stop(struct bm_sampler *sm)
{
	atomic_store(&sm->stop, true);
	pthread_join(sm->thread, NULL);
	pthread_mutex_lock(&sm->lock);
	take_sample(sm);
	sm->stop_ms = (double)(bm_now_ns() - sm->t0) / 1e6;
	pthread_mutex_unlock(&sm->lock);
}

void bm_sampler_write(struct bm_sampler *sm, const char *file)
{
	const char *dir = bm_series_dir();
	if (!dir)
		return;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return;
	}
	/* x: the phase's number (from 0) plus the fraction of it elapsed, so
	 * that the phases of allocators that ran at different speeds line up */
	fprintf(f, "# t_s rss_mib live_mib phase x\n");
	/* phase 0 is the time before the first bm_sampler_phase, if there was one */
	unsigned last = sm->n ? sm->s[sm->n - 1].phase : 0, first = last ? 1 : 0;
	for (size_t i = 0; i < sm->n; i++) {
		const struct bm_sample *s = &sm->s[i];
		if (s->phase < first)
			continue;
		unsigned ph = s->phase < BM_MAX_PHASES ? s->phase : BM_MAX_PHASES - 1;
		double t0 = ph ? sm->phase_start_ms[ph] : 0;
		double t1 = ph == last || ph + 1 >= BM_MAX_PHASES ? sm->stop_ms
								  : sm->phase_start_ms[ph + 1];
		double x = (ph - first) + (t1 > t0 ? (s->t_ms - t0) / (t1 - t0) : 0);
		fprintf(f, "%.4f %.2f %.2f %u %.4f\n", s->t_ms / 1000.0, (double)s->rss / (1 << 20),
			(double)s->live / (1 << 20), s->phase, x);
	}
	fclose(f);
}

void bm_sampler_free(struct bm_sampler *sm)
{
	bm_unmap(sm->s, sm->cap * sizeof *sm->s);
	pthread_mutex_destroy(&sm->lock);
}

/* ------------------------------------------------------------ sizes */

size_t bm_frag_size(struct bm_rng *r, size_t lo, size_t hi)
{
	/* lo * (hi/lo)^(u^2.2): mean 674 B for 16..8192 (643 MiB per million) */
	double u = bm_rand01(r);
	size_t s = (size_t)((double)lo * pow((double)hi / (double)lo, pow(u, 2.2)));
	return s < lo ? lo : s > hi ? hi : s;
}

/* ------------------------------------------------------------ barrier */

void bm_barrier_init(struct bm_barrier *b, unsigned n)
{
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->n = n;
	b->waiting = 0;
	b->gen = 0;
}

void bm_barrier_wait(struct bm_barrier *b)
{
	pthread_mutex_lock(&b->lock);
	unsigned gen = b->gen;
	if (++b->waiting == b->n) {
		b->waiting = 0;
		b->gen++;
		pthread_cond_broadcast(&b->cond);
	} else {
		while (gen == b->gen)
			pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

void bm_barrier_destroy(struct bm_barrier *b)
{
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
}
