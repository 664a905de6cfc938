/* SPDX-License-Identifier: MIT */
/*
 * bench/thp.c: transparent huge pages (mova_config.thp), measured side by
 * side in one process: each workload runs in a fresh arena with thp=never
 * and with the default (madvise), the two interleaved round by round, and
 * the medians are printed with never / default. Huge pages save page
 * faults, so what is measured is memory touched for the first time:
 *
 *   fill-handles  256-byte movable objects, 512 MiB of them, each written
 *   fill-large    4 MiB movable objects, 512 MiB of them, each written
 *   large-churn   64 live objects of 1 to 8 MiB, one replaced at a time
 *                 and written whole; every 64 replacements mova_compact
 *                 gives the free memory back, so the next ones fault again
 *
 * usage: bench-thp [ROUNDS] [SCALE]   (3 rounds; SCALE 1.0 = the sizes above)
 * The raw malloc family uses the default arena, configured by MOVA_CONF
 * (thp:never to compare), so it is not measured here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mova.h"

#define MiB ((size_t)1 << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double scale = 1.0;

static mova_arena *arena(unsigned thp)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.thp = thp;
	cfg.kcompactd = 0; /* no background work in the timings */
	mova_arena *a = mova_arena_create(&cfg);
	if (!a) {
		perror("mova_arena_create");
		exit(1);
	}
	return a;
}

static void write_object(mova_arena *a, mova_handle h, size_t size, int v)
{
	char *p = mova_pin(a, h);
	if (!p) {
		fprintf(stderr, "mova_pin failed\n");
		exit(1);
	}
	memset(p, v, size);
	mova_unpin(a, h);
}

static mova_handle must_alloc(mova_arena *a, size_t size)
{
	mova_handle h = mova_halloc(a, size);
	if (!h) {
		fprintf(stderr, "mova_halloc(%zu) failed\n", size);
		exit(1);
	}
	return h;
}

/* each returns seconds; *huge gets the AnonHugePages seen at the peak */
static double fill(unsigned thp, size_t size, size_t *huge)
{
	mova_arena *a = arena(thp);
	size_t n = (size_t)((double)(512 * MiB) * scale) / size;
	mova_handle *h = malloc(n * sizeof *h);
	if (!h)
		exit(1);
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		h[i] = must_alloc(a, size);
		write_object(a, h[i], size, (int)i);
	}
	double t = now() - t0;
	mova_stats st;
	mova_stats_get(a, &st);
	*huge = st.thp_anon_huge_bytes;
	for (size_t i = 0; i < n; i++)
		mova_hfree(a, h[i]);
	free(h);
	mova_arena_destroy(a);
	return t;
}

static double fill_handles(unsigned thp, size_t *huge)
{
	return fill(thp, 256, huge);
}

static double fill_large(unsigned thp, size_t *huge)
{
	return fill(thp, 4 * MiB, huge);
}

static double large_churn(unsigned thp, size_t *huge)
{
	enum { LIVE = 64 };
	mova_arena *a = arena(thp);
	mova_handle h[LIVE];
	size_t sz[LIVE];
	unsigned seed = 42, steps = (unsigned)(1024 * scale);
	*huge = 0;
	double t0 = now();
	for (unsigned i = 0; i < LIVE; i++) {
		seed = seed * 1103515245u + 12345u;
		sz[i] = (1 + (seed >> 16) % 8) * MiB;
		h[i] = must_alloc(a, sz[i]);
		write_object(a, h[i], sz[i], (int)i);
	}
	for (unsigned s = 0; s < steps; s++) {
		seed = seed * 1103515245u + 12345u;
		unsigned k = (seed >> 8) % LIVE;
		mova_hfree(a, h[k]);
		seed = seed * 1103515245u + 12345u;
		sz[k] = (1 + (seed >> 16) % 8) * MiB;
		h[k] = must_alloc(a, sz[k]);
		write_object(a, h[k], sz[k], (int)s);
		if (s % 64 == 63) {
			if (s == 63) {
				mova_stats st;
				mova_stats_get(a, &st);
				*huge = st.thp_anon_huge_bytes;
			}
			mova_compact(a, -1);
		}
	}
	double t = now() - t0;
	for (unsigned i = 0; i < LIVE; i++)
		mova_hfree(a, h[i]);
	mova_arena_destroy(a);
	return t;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 3;
	if (argc > 2)
		scale = atof(argv[2]);
	if (rounds < 1 || rounds > 100 || !(scale > 0 && scale <= 16)) {
		fprintf(stderr, "usage: bench-thp [ROUNDS 1..100] [SCALE]\n");
		return 2;
	}
	static const struct {
		const char *name;
		double (*fn)(unsigned thp, size_t *huge);
	} w[] = {{"fill-handles", fill_handles},
		 {"fill-large", fill_large},
		 {"large-churn", large_churn}};
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	static const char *const names[] = {"madvise", "never", "always"};
	printf("system THP setting: %s; %d rounds, scale %.2f\n", names[st.thp_system % 3], rounds,
	       scale);
	printf("%-14s %12s %12s %14s %16s %16s\n", "workload", "never (s)", "default (s)",
	       "never/default", "huge MiB never", "huge MiB default");
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		double tn[100], td[100];
		size_t hn = 0, hd = 0;
		for (int r = 0; r < rounds; r++) {
			/* alternate which goes first */
			if (r % 2) {
				td[r] = w[i].fn(MOVA_THP_MADVISE, &hd);
				tn[r] = w[i].fn(MOVA_THP_NEVER, &hn);
			} else {
				tn[r] = w[i].fn(MOVA_THP_NEVER, &hn);
				td[r] = w[i].fn(MOVA_THP_MADVISE, &hd);
			}
		}
		double mn = median(tn, rounds), md = median(td, rounds);
		printf("%-14s %12.3f %12.3f %14.2f %16zu %16zu\n", w[i].name, mn, md, mn / md,
		       hn / MiB, hd / MiB);
	}
	return 0;
}
