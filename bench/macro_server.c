/* SPDX-License-Identifier: MIT */
/*
 * macro_server.c: a server-like workload in the manner of larson: each of
 * T worker threads holds a table of objects (a server's live sessions and
 * buffers); serving a request frees a random object and allocates a new
 * one of a random size, and touches it. Objects have varying lifetimes:
 * most requests replace a slot among the first eighth of the table (short
 * lived), the rest anywhere (long lived). After a number of requests a
 * worker hands its table to a new thread and exits, as larson's threads
 * do, so objects are freed by threads other than the one that allocated
 * them and thread caches come and go.
 *
 * Reported: requests per second (items_per_second, over real time),
 * resident memory over live bytes sampled while the workers are alive
 * (the last sample before they stop, and the peak), and the series.
 *
 * Variants: server/malloc everywhere; server/handles in the mova
 * executable (mova_halloc on the default arena, writes under a pin).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "macro.h"

#define SLOTS 8192               /* objects per worker */
#define REQUESTS_PER_LIFE 100000 /* requests before a worker hands over */

struct server;

struct table {
	struct server *sv;
	unsigned id;
	uint64_t obj[SLOTS];
	uint32_t size[SLOTS];
	struct bm_rng rng;
};

struct server {
	const struct bm_ops *ops;
	_Atomic bool stop;
	_Atomic uint64_t requests;
	_Atomic unsigned alive;
	_Atomic unsigned threads_started;
	_Atomic bool failed;
	_Alignas(64) _Atomic int64_t live[8];
	struct table *tab[8];
};

static size_t request_size(struct bm_rng *r)
{
	/* mostly small, sometimes a buffer: 16 B .. 4 KiB */
	return bm_frag_size(r, 16, 4096);
}

static void *serve(void *arg)
{
	struct table *t = arg;
	struct server *sv = t->sv;
	const struct bm_ops *o = sv->ops;
	uint64_t n = 0;
	int64_t dlive = 0;
	while (!atomic_load_explicit(&sv->stop, memory_order_relaxed)) {
		for (int k = 0; k < 256; k++, n++) {
			uint64_t r = bm_rand(&t->rng);
			/* 7 in 8 requests touch the short-lived eighth of the table */
			unsigned i = (r & 7) ? (unsigned)((r >> 8) % (SLOTS / 8))
					     : (unsigned)((r >> 8) % SLOTS);
			if (t->obj[i]) {
				o->free(o->ctx, t->obj[i]);
				dlive -= t->size[i];
			}
			size_t size = request_size(&t->rng);
			uint64_t obj = o->alloc(o->ctx, size);
			if (!obj) {
				atomic_store(&sv->failed, true);
				atomic_store(&sv->stop, true);
				t->obj[i] = 0;
				break;
			}
			o->write(o->ctx, obj, size < 64 ? size : 64, (int)k);
			t->obj[i] = obj;
			t->size[i] = (uint32_t)size;
			dlive += (int64_t)size;
		}
		atomic_fetch_add_explicit(&sv->live[t->id], dlive, memory_order_relaxed);
		atomic_fetch_add_explicit(&sv->requests, 256, memory_order_relaxed);
		dlive = 0;
		if (n >= REQUESTS_PER_LIFE && !atomic_load(&sv->stop)) {
			/* hand the table over to a new thread and exit */
			pthread_t next;
			pthread_attr_t attr;
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			atomic_fetch_add(&sv->threads_started, 1);
			if (pthread_create(&next, &attr, serve, t) == 0) {
				pthread_attr_destroy(&attr);
				return NULL;
			}
			pthread_attr_destroy(&attr);
			n = 0;
		}
	}
	/* stopped: free the table, then leave */
	for (unsigned i = 0; i < SLOTS; i++)
		if (t->obj[i]) {
			o->free(o->ctx, t->obj[i]);
			dlive -= t->size[i];
			t->obj[i] = 0;
		}
	atomic_fetch_add_explicit(&sv->live[t->id], dlive, memory_order_relaxed);
	atomic_fetch_sub(&sv->alive, 1);
	return NULL;
}

static void bm_server(gb_state *st, void *arg)
{
	bool handles = arg != NULL;
	unsigned nthreads = (unsigned)gb_state_arg(st, 0);
	double seconds = BM_BY_SCALE(0.2, 1.0, 5.0);
	static struct server sv;
	memset(&sv, 0, sizeof sv);
	struct bm_ops ops = bm_malloc_ops;
	(void)handles;
#ifdef BENCH_MOVA
	if (handles)
		ops = bm_handle_ops(mova_default_arena(), true);
#endif
	sv.ops = &ops;
	for (unsigned i = 0; i < nthreads; i++) {
		sv.tab[i] = bm_map(sizeof(struct table));
		sv.tab[i]->sv = &sv;
		sv.tab[i]->id = i;
		sv.tab[i]->rng.s = 99 + i;
	}
	struct bm_sampler sm;
	bm_sampler_start(&sm, sv.live, nthreads, 5);
	uint64_t t0 = bm_now_ns();
	atomic_store(&sv.alive, nthreads);
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_t th;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_create(&th, &attr, serve, sv.tab[i]);
		pthread_attr_destroy(&attr);
	}
	struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
	/* measured while the workers are alive */
	size_t rss = bm_sampler_rss(&sm);
	int64_t live = bm_sampler_live(&sm);
	uint64_t requests = atomic_load(&sv.requests);
	uint64_t t1 = bm_now_ns();
	bm_sampler_stop(&sm);
	atomic_store(&sv.stop, true);
	while (atomic_load(&sv.alive)) {
		struct timespec w = {0, 1000000};
		nanosleep(&w, NULL);
	}
	while (gb_keep_running(st))
		gb_set_iteration_time(st, (double)(t1 - t0) * 1e-9);
	if (atomic_load(&sv.failed)) {
		gb_skip_with_error(st, "allocation failed");
	} else {
		gb_set_items_processed(st, (int64_t)requests);
		gb_counter(st, "rss_MiB", (double)rss / (1 << 20), 0);
		gb_counter(st, "live_MiB", (double)live / (1 << 20), 0);
		gb_counter(st, "rss_over_live", live > 0 ? (double)rss / (double)live : 0, 0);
		gb_counter(st, "rss_peak_MiB", (double)sm.peak / (1 << 20), 0);
		gb_counter(st, "thread_handovers", (double)atomic_load(&sv.threads_started), 0);
		char file[128];
		snprintf(file, sizeof file, "server-%s-%s.dat", ops.name, bm_allocator());
		bm_sampler_write(&sm, file);
	}
	bm_sampler_free(&sm);
	for (unsigned i = 0; i < nthreads; i++)
		bm_unmap(sv.tab[i], sizeof(struct table));
}

void bm_register_macro_server(void)
{
	gb_benchmark *b = gb_register("server/malloc", bm_server, NULL);
	gb_unit(gb_use_manual_time(gb_iterations(gb_arg_name(gb_arg(b, 2), "threads"), 1)), GB_MS);
#ifdef BENCH_MOVA
	b = gb_register("server/handles", bm_server, (void *)1);
	gb_unit(gb_use_manual_time(gb_iterations(gb_arg_name(gb_arg(b, 2), "threads"), 1)), GB_MS);
#endif
}
