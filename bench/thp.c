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
 *   frag          the fragmentation churn of bench/macro_frag.c, smaller and
 *                 in one thread: 200000 movable objects of 16 B..8 KiB
 *                 (log-distributed, about 250 MiB), each written; 80% freed
 *                 at random; mova_compact(a, -1). Timed: the fill. Printed
 *                 besides: the share of the live bytes on huge pages after
 *                 the compaction (each object's address, asked of the
 *                 kernel by PAGEMAP_SCAN's PAGE_IS_HUGE; "n/a" where the
 *                 kernel lacks it) and resident / live then (the process's
 *                 anonymous resident memory above a baseline taken before
 *                 the arena was made, over the live objects' bytes), and
 *                 the time mova_compact took (the last round's)
 *   tlb           TLB-bound: 256 MiB of movable objects of 64-256 B, each
 *                 written, half freed at random, mova_compact(a, -1), then
 *                 20 million reads of random live objects (mova_deref in a
 *                 read section, a byte at each end). Timed: the reads
 *
 * usage: bench-thp [ROUNDS] [SCALE] [WORKLOADS]   (3 rounds; SCALE 1.0 = the
 * sizes above; WORKLOADS: a comma-separated list of names, all by default)
 * The raw malloc family uses the default arena, configured by MOVA_CONF
 * (thp:never to compare), so it is not measured here.
 */
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

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

/* PAGEMAP_SCAN (Linux 6.7, <linux/fs.h>; Debian 12's headers lack it) */
struct pm_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PM_PAGE_IS_HUGE (1u << 6)
#define PM_PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)

/* 1: [p, p + 2 MiB) (2 MiB aligned) is mapped by a huge page; 0: not;
 * -1: the kernel cannot say */
static int huge_mapped(int fd, uintptr_t p)
{
	struct pm_region r[4];
	struct pm_scan_arg arg = {.size = sizeof arg,
				  .start = p,
				  .end = p + 2 * MiB,
				  .vec = (uintptr_t)r,
				  .vec_len = 4,
				  .category_mask = PM_PAGE_IS_HUGE,
				  .return_mask = PM_PAGE_IS_HUGE};
	long n = ioctl(fd, PM_PAGEMAP_SCAN, &arg);
	if (n < 0)
		return -1;
	size_t huge = 0;
	for (long i = 0; i < n; i++)
		huge += r[i].end - r[i].start;
	return huge == 2 * MiB;
}

/* anonymous resident bytes of the process (smaps_rollup) */
static size_t anon_resident(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	size_t kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Anonymous: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
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

/* what frag measured last: share of live bytes on huge pages (-1: n/a),
 * resident / live after the compaction */
static double frag_share[2], frag_ratio[2], frag_compact_s[2];

static size_t frag_size(unsigned *seed)
{
	/* log-distributed in [16, 8192] */
	*seed = *seed * 1103515245u + 12345u;
	double u = (double)((*seed >> 8) & 0xffffff) / (double)0x1000000;
	return (size_t)(16.0 * exp(u * log(8192.0 / 16.0)));
}

static double frag(unsigned thp, size_t *huge)
{
	size_t n = (size_t)(200000 * scale);
	mova_handle *h = malloc(n * sizeof *h);
	uint32_t *sz = malloc(n * sizeof *sz);
	if (!h || !sz)
		exit(1);
	memset(h, 0, n * sizeof *h);
	memset(sz, 0, n * sizeof *sz);
	size_t base = anon_resident();
	mova_arena *a = arena(thp);
	unsigned seed = 7;
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		sz[i] = (uint32_t)frag_size(&seed);
		h[i] = must_alloc(a, sz[i]);
		write_object(a, h[i], sz[i], (int)i);
	}
	double t = now() - t0;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 8) % 10 < 8) {
			mova_hfree(a, h[i]);
			h[i] = 0;
		}
	}
	double c0 = now();
	mova_compact(a, -1);
	frag_compact_s[thp == MOVA_THP_NEVER] = now() - c0;
	/* the live bytes, each object's counted on the huge page it sits on */
	int fd = open("/proc/self/pagemap", O_RDONLY);
	size_t live = 0, on_huge = 0;
	uintptr_t last_pb = 0;
	int last = -1;
	bool known = fd >= 0;
	for (size_t i = 0; i < n && known; i++) {
		if (!h[i])
			continue;
		uintptr_t p = (uintptr_t)mova_pin(a, h[i]);
		mova_unpin(a, h[i]);
		for (uintptr_t q = p; q < p + sz[i];) {
			uintptr_t pb = q & ~(2 * MiB - 1), end = pb + 2 * MiB;
			size_t len = (end < p + sz[i] ? end : p + sz[i]) - q;
			if (pb != last_pb) {
				last_pb = pb;
				last = huge_mapped(fd, pb);
			}
			known = last >= 0;
			on_huge += last > 0 ? len : 0;
			q += len;
		}
		live += sz[i];
	}
	if (fd >= 0)
		close(fd);
	size_t res = anon_resident() - base;
	frag_share[thp == MOVA_THP_NEVER] = known && live ? (double)on_huge / (double)live : -1;
	frag_ratio[thp == MOVA_THP_NEVER] = live ? (double)res / (double)live : 0;
	mova_stats st;
	mova_stats_get(a, &st);
	*huge = st.thp_anon_huge_bytes;
	for (size_t i = 0; i < n; i++)
		if (h[i])
			mova_hfree(a, h[i]);
	mova_arena_destroy(a);
	free(h);
	free(sz);
	return t;
}

static uint64_t tlb_sum;

static double tlb(unsigned thp, size_t *huge)
{
	size_t n = (size_t)((double)(256 * MiB) * scale) / 160;
	mova_handle *h = malloc(n * sizeof *h);
	uint16_t *sz = malloc(n * sizeof *sz);
	if (!h || !sz)
		exit(1);
	mova_arena *a = arena(thp);
	unsigned seed = 11;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		sz[i] = (uint16_t)(64 + (seed >> 8) % 193);
		h[i] = must_alloc(a, sz[i]);
		write_object(a, h[i], sz[i], (int)i);
	}
	/* half freed; the live ones packed to the front of the array */
	size_t live = 0;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 12) & 1) {
			mova_hfree(a, h[i]);
		} else {
			h[live] = h[i];
			sz[live++] = sz[i];
		}
	}
	mova_compact(a, -1);
	mova_stats st;
	mova_stats_get(a, &st);
	*huge = st.thp_anon_huge_bytes;
	uint64_t sum = 0, x = 0x9e3779b97f4a7c15ull;
	long reads = (long)(20e6 * scale);
	double t0 = now();
	for (long r = 0; r < reads; r++) {
		/* a read section per 1024 reads */
		if (!(r & 1023))
			mova_read_lock();
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		size_t i = (size_t)((x * 0x2545F4914F6CDD1Dull) % live);
		const unsigned char *p = mova_deref(a, h[i]);
		sum += p[0] + p[sz[i] - 1];
		if ((r & 1023) == 1023 || r == reads - 1)
			mova_read_unlock();
	}
	double t = now() - t0;
	tlb_sum += sum;
	for (size_t i = 0; i < live; i++)
		mova_hfree(a, h[i]);
	mova_arena_destroy(a);
	free(h);
	free(sz);
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
		fprintf(stderr, "usage: bench-thp [ROUNDS 1..100] [SCALE] [WORKLOADS]\n");
		return 2;
	}
	static const struct {
		const char *name;
		double (*fn)(unsigned thp, size_t *huge);
	} w[] = {{"fill-handles", fill_handles},
		 {"fill-large", fill_large},
		 {"large-churn", large_churn},
		 {"frag", frag},
		 {"tlb", tlb}};
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	static const char *const names[] = {"madvise", "never", "always"};
	printf("system THP setting: %s; %d rounds, scale %.2f\n", names[st.thp_system % 3], rounds,
	       scale);
	printf("%-14s %12s %12s %14s %16s %16s\n", "workload", "never (s)", "default (s)",
	       "never/default", "huge MiB never", "huge MiB default");
	const char *only = argc > 3 ? argv[3] : NULL;
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		if (only && !strstr(only, w[i].name))
			continue;
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
		if (w[i].fn == frag) {
			char sn[32] = "n/a", sd[32] = "n/a";
			if (frag_share[1] >= 0)
				snprintf(sn, sizeof sn, "%.1f%%", 100 * frag_share[1]);
			if (frag_share[0] >= 0)
				snprintf(sd, sizeof sd, "%.1f%%", 100 * frag_share[0]);
			printf("%-14s live bytes on huge pages: never %s, default %s; "
			       "resident/live: never %.3f, default %.3f; mova_compact: never "
			       "%.3f s, default %.3f s (last round)\n",
			       "  frag", sn, sd, frag_ratio[1], frag_ratio[0], frag_compact_s[1],
			       frag_compact_s[0]);
		}
	}
	if (tlb_sum == 1) /* keeps the reads */
		printf("\n");
	return 0;
}
