/* SPDX-License-Identifier: MIT */
/*
 * mova-demo: the allocator at work, in numbers and pictures.
 *
 *   1. fill      movable objects (handles) of 16 B .. 8 KiB, with some raw
 *                (unmovable) allocations mixed in, as a long-running cache
 *   2. churn     80% of the objects freed at random: memory fragments
 *   3. contig    a contiguous allocation cleared by migration
 *   4. kcompactd the background thread alone, for a few seconds
 *   5. compact   mova_compact(a, -1): pack, migrate, give memory back
 *
 * Each phase prints resident and live memory and a map of the arena's
 * pageblocks; the maps also go to an SVG file (--svg FILE). Uses only the
 * public API. Options: --objects N, --seconds S, --svg FILE, --quiet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <mova.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned long long next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* log-uniform between lo and hi */
static size_t rand_size(size_t lo, size_t hi)
{
	double u = (double)(next_rand() >> 11) / 9007199254740992.0;
	return (size_t)exp(log((double)lo) + u * (log((double)hi) - log((double)lo)));
}

static double mib(size_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- pictures */

static const char *legend =
    "  each cell is a pageblock (2 MiB):  movable ' ' returned  '.' free  "
    "'\u2591' <25%  '\u2592' <50%  '\u2593' <75%  '\u2588' full\n"
    "                                      unmovable 'u' sparse 'U' dense   "
    "CMA 'c'/'C'   isolated 'I'\n"
    "  ':' separates the 64 MiB sections; '~' a section given back whole (unmapped)\n";

static const char *cell(const mova_pageblock_info *pi, unsigned pages)
{
	unsigned used = pi->movable_pages + pi->unmovable_pages;
	if (pi->absent)
		return "~";
	if (pi->migratetype == MOVA_MIGRATE_ISOLATE)
		return "I";
	if (pi->unmovable_pages && pi->unmovable_pages * 2 >= used)
		return used * 2 >= pages ? "U" : "u";
	if (pi->migratetype == MOVA_MIGRATE_CMA && used)
		return used * 2 >= pages ? "C" : "c";
	if (!used)
		return pi->backed_pages ? "." : " ";
	unsigned q = used * 4 / pages;
	static const char *shade[] = {"\u2591", "\u2592", "\u2593", "\u2588", "\u2588"};
	return shade[q];
}

#define MAP_MAX 4096
static mova_pageblock_info map[MAP_MAX];

struct svg {
	FILE *f;
	int y;
};

/* pageblocks per 64 MiB section */
static size_t per_section(unsigned pages)
{
	return ((size_t)64 << 20) / ((size_t)pages << 12);
}

static void svg_map(struct svg *svg, const char *title, size_t n, unsigned pages)
{
	if (!svg->f)
		return;
	const int w = 10, cols = 64;
	fprintf(svg->f, "<text x='10' y='%d' font-family='monospace' font-size='14'>%s</text>\n",
		svg->y + 14, title);
	svg->y += 22;
	for (size_t i = 0; i < n; i++) {
		const mova_pageblock_info *pi = &map[i];
		unsigned used = pi->movable_pages + pi->unmovable_pages;
		const char *color;
		char buf[48];
		if (pi->absent)
			color = "#fdf6e3"; /* a section given back */
		else if (pi->migratetype == MOVA_MIGRATE_ISOLATE)
			color = "#d62728";
		else if (pi->unmovable_pages && pi->unmovable_pages * 2 >= used)
			color = "#ff7f0e";
		else if (!used)
			color = pi->backed_pages ? "#e8e8e8" : "#ffffff";
		else {
			int shade = 230 - (int)(200.0 * used / pages);
			snprintf(buf, sizeof buf, "rgb(%d,%d,255)", shade, shade);
			color = buf;
		}
		fprintf(svg->f,
			"<rect x='%zu' y='%zu' width='%d' height='%d' fill='%s' stroke='#999' "
			"stroke-width='0.5'/>\n",
			10 + (i % cols) * w, svg->y + (i / cols) * w, w, w, color);
	}
	/* the sections' boundaries */
	size_t ps = per_section(pages);
	for (size_t i = 0; ps && i < n; i += ps)
		fprintf(svg->f,
			"<line x1='%zu' y1='%zu' x2='%zu' y2='%zu' stroke='#444' "
			"stroke-width='1.5'/>\n",
			10 + (i % cols) * w, svg->y + (i / cols) * w, 10 + (i % cols) * w,
			svg->y + (i / cols) * w + (size_t)w * ((ps + cols - 1) / cols));
	svg->y += (int)((n + cols - 1) / cols) * w + 16;
}

static void show(mova_arena *a, const char *title, struct svg *svg, int quiet)
{
	mova_stats st;
	mova_stats_get(a, &st);
	size_t n = mova_pageblocks(a, map, MAP_MAX);
	if (n > MAP_MAX)
		n = MAP_MAX;
	unsigned pages = 1u << st.pageblock_order;
	printf("\n== %s\n", title);
	printf("   resident %8.1f MiB   live %8.1f MiB   resident/live %5.2f   "
	       "fragmentation score %u\n",
	       mib(st.resident_bytes), mib(st.live_bytes),
	       st.live_bytes ? (double)st.resident_bytes / (double)st.live_bytes : 0.0,
	       st.fragmentation_score);
	size_t present = 0;
	for (size_t i = 0; i < n; i++)
		present += !map[i].absent;
	printf("   pageblocks: %zu populated (%lu unmovable, %lu movable, %lu CMA), %lu unbacked\n",
	       present, (unsigned long)st.nr_pageblocks[MOVA_MIGRATE_UNMOVABLE],
	       (unsigned long)st.nr_pageblocks[MOVA_MIGRATE_MOVABLE],
	       (unsigned long)st.nr_pageblocks[MOVA_MIGRATE_CMA],
	       (unsigned long)st.nr_pageblocks_unbacked);
	printf("   sections: %zu of 64 MiB mapped (%.0f MiB), %lu mapped and %lu given back whole "
	       "so far\n",
	       st.nr_sections, mib(st.reserved_bytes), (unsigned long)st.section_add,
	       (unsigned long)st.section_remove);
	printf("   buddyinfo  ");
	for (int o = 0; o < MOVA_NR_PAGE_ORDERS; o++)
		printf("%6lu ", (unsigned long)st.nr_free[o]);
	printf("\n   migrated %lu objects, compaction stalls %lu, kcompactd wakes %lu, "
	       "pages given back %lu\n",
	       (unsigned long)st.pgmigrate_success, (unsigned long)st.compact_stall,
	       (unsigned long)st.compact_daemon_wake, (unsigned long)st.pages_returned);
	if (!quiet) {
		printf("   +");
		for (int i = 0; i < 64; i++)
			printf("-");
		printf("+\n");
		size_t ps = per_section(pages);
		for (size_t i = 0; i < n; i += 64) {
			printf("   |");
			for (size_t j = i; j < i + 64; j++) {
				if (j > i && ps && j % ps == 0)
					printf(":");
				printf("%s", j < n ? cell(&map[j], pages) : " ");
			}
			printf("|\n");
		}
		printf("   +");
		for (int i = 0; i < 64; i++)
			printf("-");
		printf("+\n");
	}
	svg_map(svg, title, n, pages);
}

/* ---------------------------------------------------------------- the demo */

int main(int argc, char **argv)
{
	size_t nobj = 600000;
	double seconds = 3.0;
	const char *svgpath = NULL;
	int quiet = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--objects") && i + 1 < argc)
			nobj = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--svg") && i + 1 < argc)
			svgpath = argv[++i];
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else {
			fprintf(stderr,
				"usage: %s [--objects N] [--seconds S] [--svg FILE] [--quiet]\n",
				argv[0]);
			return 2;
		}
	}
	struct svg svg = {NULL, 10};
	if (svgpath) {
		svg.f = fopen(svgpath, "w");
		if (!svg.f)
			perror(svgpath);
		else
			fprintf(svg.f, "<svg xmlns='http://www.w3.org/2000/svg' width='680' "
				       "height='__HEIGHT__'>\n<rect width='100%%' height='100%%' "
				       "fill='white'/>\n");
	}

	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)4 << 30;
	cfg.kcompactd = 1;
	cfg.proactiveness = 100;
	cfg.kcompactd_interval_ms = 200;
	cfg.kcompactd_cpu_budget = 50;
	cfg.cma_bytes = (size_t)16 << 20;
	mova_arena *a = mova_arena_create(&cfg);
	if (!a) {
		fprintf(stderr, "mova-demo: cannot create an arena: %s\n", strerror(errno));
		return 1;
	}
	printf("mova demo: an arena of 2 MiB pageblocks (4 GiB reserved, 16 MiB of it CMA),\n"
	       "kcompactd running at proactiveness 100\n%s",
	       legend);

	mova_handle *h = calloc(nobj, sizeof *h);
	void **raw = calloc(nobj / 20 + 1, sizeof *raw);
	size_t nraw = 0;
	if (!h || !raw)
		return 1;
	/* 1. fill: a cache of objects, with unmovable allocations mixed in (the
	 * arena's raw memory comes from the contiguous allocator here, as a
	 * driver's buffers would) */
	double t0 = now();
	for (size_t i = 0; i < nobj; i++) {
		size_t sz = rand_size(16, 8192);
		h[i] = mova_halloc(a, sz);
		if (!h[i]) {
			fprintf(stderr, "mova-demo: halloc: %s\n", strerror(errno));
			return 1;
		}
		unsigned char *p = mova_pin(a, h[i]);
		memset(p, (int)(i & 0xff), sz);
		mova_unpin(a, h[i]);
		if (i % 40000 == 39999 && nraw < nobj / 20)
			raw[nraw++] = mova_alloc_contig(a, 4);
	}
	char title[160];
	snprintf(title, sizeof title, "1. fill: %zu objects of 16 B .. 8 KiB in %.2f s", nobj,
		 now() - t0);
	show(a, title, &svg, quiet);

	/* 2. churn */
	size_t freed = 0;
	for (size_t i = 0; i < nobj; i++)
		if (next_rand() % 5) {
			mova_hfree(a, h[i]);
			h[i] = MOVA_NULL;
			freed++;
		}
	snprintf(title, sizeof title, "2. churn: %zu objects (80%%) freed at random", freed);
	show(a, title, &svg, quiet);

	mova_stats st;
	mova_stats_get(a, &st);
	/* 3. contiguous allocation in the fragmented arena */
	uint64_t before = st.pgmigrate_success;
	t0 = now();
	void *big = mova_alloc_contig(a, 4096);
	mova_stats_get(a, &st);
	snprintf(title, sizeof title,
		 "3. mova_alloc_contig(16 MiB): %s in %.3f s, %lu objects migrated for it",
		 big ? "ok" : "failed", now() - t0, (unsigned long)(st.pgmigrate_success - before));
	show(a, title, &svg, quiet);
	if (big)
		mova_free_contig(a, big, 4096);

	/* 4. kcompactd alone */
	printf("\n== 4. kcompactd alone for %.0f s: resident MiB over time\n   ", seconds);
	t0 = now();
	while (now() - t0 < seconds) {
		struct timespec ts = {0, 250000000};
		nanosleep(&ts, NULL);
		mova_stats_get(a, &st);
		printf("%.0f ", mib(st.resident_bytes));
		fflush(stdout);
	}
	printf("\n");
	show(a, "4. after kcompactd", &svg, quiet);

	/* 5. explicit compaction */
	t0 = now();
	int r = mova_compact(a, -1);
	snprintf(title, sizeof title, "5. mova_compact(a, -1) returned %d in %.3f s", r,
		 now() - t0);
	show(a, title, &svg, quiet);

	/* check every surviving object */
	size_t bad = 0, alive = 0;
	for (size_t i = 0; i < nobj; i++) {
		if (!h[i])
			continue;
		alive++;
		const unsigned char *p = mova_pin(a, h[i]);
		size_t sz = mova_hsize(a, h[i]);
		for (size_t k = 0; k < sz; k++)
			bad += p[k] != (unsigned char)(i & 0xff);
		mova_unpin(a, h[i]);
	}
	printf("   checked %zu surviving objects after migration: %zu corrupt bytes\n", alive, bad);

	if (!quiet) {
		printf("\n== the arena as /proc would show it\n");
		mova_stats_print(a, stdout);
	}
	for (size_t i = 0; i < nraw; i++)
		if (raw[i])
			mova_free_contig(a, raw[i], 4);
	for (size_t i = 0; i < nobj; i++)
		if (h[i])
			mova_hfree(a, h[i]);
	mova_arena_destroy(a);
	free(h);
	free(raw);
	if (svg.f) {
		fprintf(svg.f, "</svg>\n");
		long end = ftell(svg.f);
		fclose(svg.f);
		/* patch the height in */
		FILE *f = fopen(svgpath, "r+");
		if (f) {
			char *buf = malloc((size_t)end + 1);
			if (buf && fread(buf, 1, (size_t)end, f) == (size_t)end) {
				buf[end] = 0;
				char *hp = strstr(buf, "__HEIGHT__");
				if (hp) {
					char num[16];
					snprintf(num, sizeof num, "%-10d", svg.y + 10);
					memcpy(hp, num, 10);
				}
				rewind(f);
				fwrite(buf, 1, (size_t)end, f);
			}
			free(buf);
			fclose(f);
		}
		printf("\npictures: %s\n", svgpath);
	}
	return bad ? 1 : 0;
}
