/* SPDX-License-Identifier: MIT */
/*
 * macro_latency.c: allocation latency percentiles on a fragmented heap,
 * with and without kcompactd compacting beside the allocating thread.
 *
 * Setup: N objects of 16 B..8 KiB (the fragmentation workload's sizes),
 * 80% freed at random. Then for a fixed time the thread churns: frees a
 * random object, allocates a new one (timed alone, clock_gettime on each
 * side, the timer's own median cost subtracted) and writes its first
 * bytes. Latencies go into a histogram (1 ns buckets to 64 µs, then
 * exact values), from which p50, p99, p99.9 and the maximum come.
 *
 * Variants: latency/malloc everywhere (the allocator as it runs; mova's
 * default arena has its default kcompactd); in the mova executable
 * latency/handles (a private arena, kcompactd off) and
 * latency/handles_kcompactd (kcompactd on, proactiveness 100, checking
 * every 100 ms, CPU budget 100%: it compacts for as much of the window as
 * it finds work). The migrations kcompactd made during the window are
 * reported, so a quiet kcompactd shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define HIST_NS 65536
#define MAX_SLOW (1 << 16)

struct lat_hist {
	uint64_t count[HIST_NS];
	uint32_t slow[MAX_SLOW]; /* values >= HIST_NS, in ns */
	size_t nslow, n;
	uint64_t dropped;
};

static void hist_add(struct lat_hist *h, uint64_t ns)
{
	h->n++;
	if (ns < HIST_NS)
		h->count[ns]++;
	else if (h->nslow < MAX_SLOW)
		h->slow[h->nslow++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	else
		h->dropped++;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* the q-quantile (0..1); slow values must be sorted */
static double hist_quantile(const struct lat_hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)(h->n - 1)), seen = 0;
	for (size_t i = 0; i < HIST_NS; i++) {
		seen += h->count[i];
		if (seen > rank)
			return (double)i;
	}
	size_t k = (size_t)(rank - seen);
	return h->nslow ? (double)h->slow[k < h->nslow ? k : h->nslow - 1] : (double)HIST_NS;
}

static uint64_t timer_cost_ns(void)
{
	uint32_t v[1001];
	for (int i = 0; i < 1001; i++) {
		uint64_t a = bm_now_ns(), b = bm_now_ns();
		v[i] = (uint32_t)(b - a);
	}
	qsort(v, 1001, sizeof v[0], cmp_u32);
	return v[500];
}

struct lat_variant {
	const char *name;
	bool handles;
	bool kcompactd;
};

static const struct lat_variant variants[] = {
    {"malloc", false, false},
#ifdef BENCH_MOVA
    {"handles", true, false},
    {"handles_kcompactd", true, true},
#endif
};

static void bm_latency(gb_state *st, void *arg)
{
	const struct lat_variant *v = arg;
	size_t n = BM_BY_SCALE((size_t)20000, (size_t)300000, (size_t)1000000);
	double seconds = BM_BY_SCALE(0.1, 1.0, 5.0);
	struct bm_ops ops = bm_malloc_ops;
	(void)v;
#ifdef BENCH_MOVA
	mova_arena *a = NULL;
	if (v->handles) {
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = v->kcompactd;
		if (v->kcompactd) {
			cfg.proactiveness = 100;
			cfg.kcompactd_interval_ms = 100;
			cfg.kcompactd_cpu_budget = 100;
		}
		a = mova_arena_create(&cfg);
		if (!a) {
			gb_skip_with_error(st, "mova_arena_create failed");
			return;
		}
		ops = bm_handle_ops(a, false);
	}
#endif
	uint64_t *obj = bm_map(n * sizeof *obj);
	struct lat_hist *h = bm_map(sizeof *h);
	struct bm_rng rng = {777};
	bool failed = false;
	for (size_t i = 0; i < n && !failed; i++) {
		size_t size = bm_frag_size(&rng, 16, 8192);
		obj[i] = ops.alloc(ops.ctx, size);
		failed = !obj[i];
		if (!failed)
			ops.write(ops.ctx, obj[i], size, 1);
	}
	for (size_t i = 0; i < n && !failed; i++)
		if (bm_rand01(&rng) < 0.8) {
			ops.free(ops.ctx, obj[i]);
			obj[i] = 0;
		}
	uint64_t overhead = timer_cost_ns();
#ifdef BENCH_MOVA
	mova_stats s0 = {0}, s1 = {0};
	if (a)
		mova_stats_get(a, &s0);
#endif
	uint64_t end = bm_now_ns() + (uint64_t)(seconds * 1e9), t_start = bm_now_ns();
	while (!failed && bm_now_ns() < end) {
		for (int k = 0; k < 64; k++) {
			size_t i = (size_t)bm_rand_below(&rng, n);
			if (obj[i])
				ops.free(ops.ctx, obj[i]);
			size_t size = bm_frag_size(&rng, 16, 8192);
			uint64_t t0 = bm_now_ns();
			obj[i] = ops.alloc(ops.ctx, size);
			uint64_t t1 = bm_now_ns();
			if (!obj[i]) {
				failed = true;
				break;
			}
			ops.write(ops.ctx, obj[i], size < 64 ? size : 64, k);
			uint64_t d = t1 - t0;
			hist_add(h, d > overhead ? d - overhead : 0);
		}
	}
	uint64_t t_end = bm_now_ns();
#ifdef BENCH_MOVA
	if (a)
		mova_stats_get(a, &s1);
#endif
	qsort(h->slow, h->nslow, sizeof h->slow[0], cmp_u32);
	while (gb_keep_running(st))
		gb_set_iteration_time(st, (double)(t_end - t_start) * 1e-9);
	if (failed) {
		gb_skip_with_error(st, "allocation failed");
	} else {
		gb_set_items_processed(st, (int64_t)h->n);
		gb_counter(st, "p50_ns", hist_quantile(h, 0.5), 0);
		gb_counter(st, "p99_ns", hist_quantile(h, 0.99), 0);
		gb_counter(st, "p999_ns", hist_quantile(h, 0.999), 0);
		gb_counter(st, "max_ns",
			   h->nslow ? (double)h->slow[h->nslow - 1] : hist_quantile(h, 1.0), 0);
		gb_counter(st, "timer_ns", (double)overhead, 0);
		gb_counter(st, "allocations", (double)h->n, 0);
#ifdef BENCH_MOVA
		if (a) {
			gb_counter(st, "kcompactd_migrated",
				   (double)(s1.pgmigrate_success - s0.pgmigrate_success), 0);
			gb_counter(st, "kcompactd_wakes",
				   (double)(s1.compact_daemon_wake - s0.compact_daemon_wake), 0);
		}
#endif
	}
	for (size_t i = 0; i < n; i++)
		if (obj[i])
			ops.free(ops.ctx, obj[i]);
	bm_unmap(obj, n * sizeof *obj);
	bm_unmap(h, sizeof *h);
#ifdef BENCH_MOVA
	if (a)
		mova_arena_destroy(a);
#endif
}

void bm_register_macro_latency(void)
{
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		char name[64];
		snprintf(name, sizeof name, "latency/%s", variants[i].name);
		gb_benchmark *b = gb_register(name, bm_latency, (void *)&variants[i]);
		gb_unit(gb_use_manual_time(gb_iterations(b, 1)), GB_MS);
	}
}
