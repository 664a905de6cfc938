/* SPDX-License-Identifier: MIT */
/*
 * macro.h: what the macro workloads share: a way of allocating (the
 * malloc family of the allocator measured, or mova's handles), a sampler
 * of resident memory over time, and the size distributions.
 */
#ifndef MOVA_BENCH_MACRO_H
#define MOVA_BENCH_MACRO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "alloc.h"

/* A way of allocating. Objects are named by a 64-bit token (a pointer or a
 * handle); write fills an object the way a program would. */
struct bm_ops {
	const char *name; /* "malloc", "handles", ... */
	uint64_t (*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, uint64_t obj);
	void (*write)(void *ctx, uint64_t obj, size_t size, int byte);
	void (*give_back)(void *ctx); /* called by each worker thread, or NULL */
	bool give_back_once;          /* one thread's call is enough */
	/* called by each worker thread before give_back, or NULL: hands the
	 * thread's caches to the allocator (mova_thread_flush), as mi_collect
	 * does for mimalloc; the one give_back call waits for all of them */
	void (*thread_flush)(void *ctx);
	const char *give_back_name;
	void *ctx;
};

/* The allocator's malloc family (BM_MALLOC, ...) and bm_give_back. */
extern const struct bm_ops bm_malloc_ops;
#ifdef BENCH_MOVA
/* mova's handles on the arena a: pin, write, unpin; give back with
 * mova_compact(a, -1) unless compact is false. */
struct bm_ops bm_handle_ops(mova_arena *a, bool compact);
#endif

/* ------------------------------------------------------------ sampler */

struct bm_sample {
	double t_ms;
	unsigned phase;
	uint64_t rss;  /* anonymous resident bytes above the baseline */
	uint64_t live; /* bytes the workload holds */
};

#define BM_MAX_PHASES 16

struct bm_sampler {
	pthread_t thread;
	pthread_mutex_t lock; /* the samples, the phase */
	_Atomic bool stop;
	unsigned phase;
	_Atomic int64_t *live; /* the workload's live byte counters, summed */
	unsigned nlive;
	uint64_t t0, period_ns;
	double phase_start_ms[BM_MAX_PHASES], stop_ms;
	size_t baseline, peak;
	struct bm_sample *s;
	size_t n, cap;
};

/* Start sampling every period_ms; the baseline is taken now. */
void bm_sampler_start(struct bm_sampler *sm, _Atomic int64_t *live, unsigned nlive,
		      unsigned period_ms);
/* Resident bytes above the baseline, and live bytes, now (exact). */
size_t bm_sampler_rss(struct bm_sampler *sm);
int64_t bm_sampler_live(struct bm_sampler *sm);
/* Phases are numbered upwards from the first; a sample is taken at each change. */
void bm_sampler_phase(struct bm_sampler *sm, unsigned phase);
/* The end of the series (call while the workload's threads are still alive). */
void bm_sampler_stop(struct bm_sampler *sm);
/* Write the series to BENCH_SERIES_DIR/<file>, one sample a line: seconds, resident
 * MiB, live MiB, phase, and x: the phase (from 0) plus the fraction of it elapsed. */
void bm_sampler_write(struct bm_sampler *sm, const char *file);
void bm_sampler_free(struct bm_sampler *sm);

/* ------------------------------------------------------------ sizes */

/* The fragmentation workload's sizes: from lo to hi bytes, log-distributed
 * with an exponent that puts the mean near 640 B for 16 B..8 KiB. */
size_t bm_frag_size(struct bm_rng *r, size_t lo, size_t hi);

/* A barrier that spins then sleeps (pthread_barrier is fine too; this one
 * is reusable across phases without reinitialisation). */
struct bm_barrier {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n, waiting, gen;
};
void bm_barrier_init(struct bm_barrier *b, unsigned n);
void bm_barrier_wait(struct bm_barrier *b);
void bm_barrier_destroy(struct bm_barrier *b);

void bm_register_macro_frag(void);
void bm_register_macro_server(void);
void bm_register_macro_latency(void);

#endif
