/* SPDX-License-Identifier: MIT */
/*
 * macro_frag.c: the fragmentation workload of BENCH.md, with resident
 * memory sampled over time.
 *
 * Two worker threads (the workload's threads stay alive until the last
 * measurement: jemalloc purges an exiting thread's arena and glibc's
 * malloc_trim does not shrink non-main arenas, so measuring after joins
 * would flatter one and hide the other) go through five phases, the main
 * thread measuring between them:
 *   1 alloc     a million objects (quick and full scale) of 16 B..8 KiB,
 *               log-distributed, about 640 MiB live, each written whole
 *   2 free      80% of them freed at random
 *   3 give back the allocator's give-back call (alloc.h), made by every
 *               worker (mimalloc's works per thread); for mova every
 *               worker flushes its caches (mova_thread_flush) and one
 *               compacts; the kcompactd variant makes no call and waits
 *               5 s instead
 *   4 refill    objects of 32 B..16 KiB until live bytes are back at the peak
 *   5 end       everything freed
 * Resident memory is anonymous resident memory above the baseline taken
 * before the first allocation; the workload's bookkeeping (mmap) is in the
 * baseline. Counters: resident / live at the end of each phase
 * (rss_over_live_*), the peak, the give-back call's time.
 *
 * Variants: frag/malloc (every executable: its malloc family), and in the
 * mova executable frag/handles (mova_halloc on a private arena plus
 * mova_compact(a, -1)) and frag/handles_kcompactd (a private arena with
 * the default configuration, kcompactd on, no explicit call).
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "macro.h"

#define MAX_WORKERS 8
enum phase { P_START, P_ALLOC, P_FREE, P_GIVE_BACK, P_REFILL, P_END };

struct frag;

struct worker {
	struct frag *f;
	unsigned id;
	pthread_t thread;
	uint64_t *obj;
	uint32_t *size;
	size_t n;
	struct bm_rng rng;
	int64_t peak_live;
	uint64_t give_back_ns;
	unsigned give_backs; /* calls of give_back so far */
	bool failed;
};

struct frag {
	const struct bm_ops *ops;
	unsigned nworkers;
	struct bm_barrier bar;
	_Atomic unsigned flushed; /* thread_flush calls made, all phases */
	_Alignas(64) _Atomic int64_t live[MAX_WORKERS];
	struct worker w[MAX_WORKERS];
};

static void add_live(struct worker *w, int64_t d)
{
	atomic_fetch_add_explicit(&w->f->live[w->id], d, memory_order_relaxed);
}

static bool fill(struct worker *w, size_t i, size_t lo, size_t hi)
{
	const struct bm_ops *o = w->f->ops;
	size_t size = bm_frag_size(&w->rng, lo, hi);
	uint64_t obj = o->alloc(o->ctx, size);
	if (!obj)
		return false;
	o->write(o->ctx, obj, size, (int)i);
	w->obj[i] = obj;
	w->size[i] = (uint32_t)size;
	add_live(w, (int64_t)size);
	return true;
}

static void give_back(struct worker *w)
{
	const struct bm_ops *o = w->f->ops;
	uint64_t t0 = bm_now_ns();
	w->give_backs++;
	if (o->thread_flush) {
		o->thread_flush(o->ctx);
		atomic_fetch_add(&w->f->flushed, 1);
	}
	if (!o->give_back || (o->give_back_once && w->id != 0))
		return;
	if (o->thread_flush) /* the one call comes after every thread's flush */
		while (atomic_load(&w->f->flushed) < w->give_backs * w->f->nworkers)
			sched_yield();
	o->give_back(o->ctx);
	w->give_back_ns = bm_now_ns() - t0;
}

/* Each phase: wait for the main thread's go, work, report done. */
static void *worker(void *arg)
{
	struct worker *w = arg;
	struct frag *f = w->f;
	const struct bm_ops *o = f->ops;

	bm_barrier_wait(&f->bar); /* go: alloc */
	for (size_t i = 0; i < w->n && !w->failed; i++)
		w->failed = !fill(w, i, 16, 8192);
	w->peak_live = atomic_load(&f->live[w->id]);
	bm_barrier_wait(&f->bar);

	bm_barrier_wait(&f->bar); /* go: free */
	for (size_t i = 0; i < w->n; i++)
		if (w->obj[i] && bm_rand01(&w->rng) < 0.8) {
			o->free(o->ctx, w->obj[i]);
			add_live(w, -(int64_t)w->size[i]);
			w->obj[i] = 0;
		}
	bm_barrier_wait(&f->bar);

	bm_barrier_wait(&f->bar); /* go: give back */
	give_back(w);
	bm_barrier_wait(&f->bar);

	bm_barrier_wait(&f->bar); /* go: refill with larger objects */
	for (size_t i = 0;
	     i < w->n && !w->failed &&
	     atomic_load_explicit(&f->live[w->id], memory_order_relaxed) < w->peak_live;
	     i++)
		if (!w->obj[i])
			w->failed = !fill(w, i, 32, 16384);
	bm_barrier_wait(&f->bar);

	bm_barrier_wait(&f->bar); /* go: free everything */
	for (size_t i = 0; i < w->n; i++)
		if (w->obj[i]) {
			o->free(o->ctx, w->obj[i]);
			add_live(w, -(int64_t)w->size[i]);
			w->obj[i] = 0;
		}
	give_back(w);
	bm_barrier_wait(&f->bar);
	bm_barrier_wait(&f->bar); /* the main thread has measured: exit */
	return NULL;
}

struct frag_variant {
	const char *name;
	bool handles;
	bool kcompactd; /* no give-back call: wait for kcompactd */
};

static const struct frag_variant variants[] = {
    {"malloc", false, false},
#ifdef BENCH_MOVA
    {"handles", true, false},
    {"handles_kcompactd", true, true},
#endif
};

static void bm_frag(gb_state *st, void *arg)
{
	const struct frag_variant *v = arg;
	unsigned nworkers = (unsigned)gb_state_arg(st, 0);
	size_t nobj = BM_BY_SCALE((size_t)20000, (size_t)1000000, (size_t)1000000);
	double wait_s = BM_BY_SCALE(0.3, 5.0, 5.0);
	static struct frag f;
	memset(&f, 0, sizeof f);
	struct bm_ops ops = bm_malloc_ops;
	ops.give_back_name = bm_give_back_name();
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &f.w[i];
		w->f = &f;
		w->id = i;
		w->n = nobj / nworkers;
		w->obj = bm_map(w->n * sizeof *w->obj);
		w->size = bm_map(w->n * sizeof *w->size);
		w->rng.s = 1234567 + i;
	}
	struct bm_sampler sm;
	bm_sampler_start(&sm, f.live, nworkers, 5);
#ifdef BENCH_MOVA
	mova_arena *a = NULL;
	if (v->handles) {
		/* created after the baseline: its metadata counts as resident */
		mova_config cfg;
		mova_config_init(&cfg);
		if (!v->kcompactd)
			cfg.kcompactd = 0;
		a = mova_arena_create(&cfg);
		if (!a) {
			gb_skip_with_error(st, "mova_arena_create failed");
			bm_sampler_stop(&sm);
			bm_sampler_free(&sm);
			return;
		}
		ops = bm_handle_ops(a, !v->kcompactd);
	}
#endif
	f.ops = &ops;
	f.nworkers = nworkers;
	bm_barrier_init(&f.bar, nworkers + 1);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_create(&f.w[i].thread, NULL, worker, &f.w[i]);

	static const char *const pname[] = {"start", "alloc", "free", "give_back", "refill", "end"};
	double ratio[P_END + 1] = {0}, ms[P_END + 1] = {0}, rss_mib[P_END + 1] = {0};
	uint64_t total_ns = 0;
	for (int ph = P_ALLOC; ph <= P_END; ph++) {
		bm_sampler_phase(&sm, (unsigned)ph);
		uint64_t t0 = bm_now_ns();
		bm_barrier_wait(&f.bar); /* go */
		if (ph == P_GIVE_BACK && !ops.give_back) {
			struct timespec ts = {(time_t)wait_s,
					      (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
			nanosleep(&ts, NULL);
		}
		bm_barrier_wait(&f.bar); /* done; the workers are alive and idle */
		uint64_t t1 = bm_now_ns();
		ms[ph] = (double)(t1 - t0) / 1e6;
		if (ph != P_GIVE_BACK)
			total_ns += t1 - t0;
		size_t rss = bm_sampler_rss(&sm);
		int64_t live = bm_sampler_live(&sm);
		rss_mib[ph] = (double)rss / (1 << 20);
		ratio[ph] = live > 0 ? (double)rss / (double)live : 0;
	}
	bm_sampler_stop(&sm);
#ifdef BENCH_MOVA
	mova_stats ms_end = {0};
	if (a)
		mova_stats_get(a, &ms_end);
#endif
	bm_barrier_wait(&f.bar); /* let them exit */
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(f.w[i].thread, NULL);

	bool failed = false;
	uint64_t give_back_ns = 0;
	int64_t peak_live = 0;
	for (unsigned i = 0; i < nworkers; i++) {
		failed |= f.w[i].failed;
		if (f.w[i].give_back_ns > give_back_ns)
			give_back_ns = f.w[i].give_back_ns;
		peak_live += f.w[i].peak_live;
	}
	while (gb_keep_running(st))
		gb_set_iteration_time(st, (double)total_ns * 1e-9);
	if (failed) {
		gb_skip_with_error(st, "allocation failed");
	} else {
		gb_counter(st, "live_peak_MiB", (double)peak_live / (1 << 20), 0);
		gb_counter(st, "rss_peak_MiB", (double)sm.peak / (1 << 20), 0);
		for (int ph = P_ALLOC; ph < P_END; ph++) {
			char name[64];
			snprintf(name, sizeof name, "rss_over_live_%s", pname[ph]);
			gb_counter(st, name, ratio[ph], 0);
			snprintf(name, sizeof name, "rss_MiB_%s", pname[ph]);
			gb_counter(st, name, rss_mib[ph], 0);
			snprintf(name, sizeof name, "ms_%s", pname[ph]);
			gb_counter(st, name, ms[ph], 0);
		}
		gb_counter(st, "rss_MiB_end", rss_mib[P_END], 0);
		gb_counter(st, "give_back_call_ms", (double)give_back_ns / 1e6, 0);
		gb_counter(st, "objects", (double)nobj, 0);
		char label[160];
		snprintf(label, sizeof label, "give back: %s",
			 ops.give_back ? ops.give_back_name : "none, waited for kcompactd");
		gb_set_label(st, label);
#ifdef BENCH_MOVA
		if (a) {
			gb_counter(st, "mova_pgmigrate_success", (double)ms_end.pgmigrate_success,
				   0);
			gb_counter(st, "mova_compact_daemon_wake",
				   (double)ms_end.compact_daemon_wake, 0);
		}
#endif
		char file[128];
		snprintf(file, sizeof file, "frag-%s-%s.dat", v->name, bm_allocator());
		bm_sampler_write(&sm, file);
	}
	bm_sampler_free(&sm);
	bm_barrier_destroy(&f.bar);
	for (unsigned i = 0; i < nworkers; i++) {
		bm_unmap(f.w[i].obj, f.w[i].n * sizeof *f.w[i].obj);
		bm_unmap(f.w[i].size, f.w[i].n * sizeof *f.w[i].size);
	}
#ifdef BENCH_MOVA
	if (a)
		mova_arena_destroy(a);
#endif
}

void bm_register_macro_frag(void)
{
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		char name[64];
		snprintf(name, sizeof name, "frag/%s", variants[i].name);
		gb_benchmark *b = gb_register(name, bm_frag, (void *)&variants[i]);
		gb_unit(gb_use_manual_time(gb_iterations(gb_arg_name(gb_arg(b, 2), "threads"), 1)),
			GB_MS);
	}
}
