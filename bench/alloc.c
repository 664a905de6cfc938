/* SPDX-License-Identifier: MIT */
/*
 * alloc.c: the allocator in charge, its give-back call, and the helpers
 * declared in alloc.h (resident memory, bookkeeping memory, scale).
 */
#include "alloc.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *in_charge = "unknown"; /* from the library that defines malloc */
static void (*give_back_fn)(void);
static const char *give_back_what = "none";

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef void (*mi_collect_fn)(bool);

static mallctl_fn je_mallctl;
static mi_collect_fn mi_collect_p;
static void (*tc_release)(void);

static void give_back_jemalloc(void)
{
	je_mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}
static void give_back_mimalloc(void)
{
	mi_collect_p(true);
}
static void give_back_tcmalloc(void)
{
	tc_release();
}
static void give_back_glibc(void)
{
	malloc_trim(0);
}

#ifdef BENCH_MOVA
static void give_back_mova(void)
{
	mova_compact(mova_default_arena(), -1);
}
#else
typedef void *(*mova_default_arena_fn)(void);
typedef int (*mova_compact_fn)(void *, int);
static mova_default_arena_fn pre_default_arena;
static mova_compact_fn pre_compact;
static void give_back_mova_preload(void)
{
	pre_compact(pre_default_arena(), -1);
}
#endif

static const char *name_of_library(const char *path)
{
	static const char *const known[][2] = {
	    {"jemalloc", "jemalloc"}, {"mimalloc", "mimalloc"}, {"tcmalloc", "tcmalloc"},
	    {"mova", "mova-preload"}, {"libc.so", "glibc"},
	};
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strstr(base, known[i][0]))
			return known[i][1];
	return base;
}

void bm_init(void)
{
	Dl_info info;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	if (m && dladdr(m, &info) && info.dli_fname)
		in_charge = name_of_library(info.dli_fname);

	if ((je_mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl"))) {
		give_back_fn = give_back_jemalloc;
		give_back_what = "mallctl(\"arena.4096.purge\")";
	} else if ((mi_collect_p = (mi_collect_fn)dlsym(RTLD_DEFAULT, "mi_collect"))) {
		give_back_fn = give_back_mimalloc;
		give_back_what = "mi_collect(true) in every worker thread";
	} else if ((tc_release =
			(void (*)(void))dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"))) {
		give_back_fn = give_back_tcmalloc;
		give_back_what = "MallocExtension_ReleaseFreeMemory()";
	} else {
		give_back_fn = give_back_glibc;
		give_back_what = "malloc_trim(0)";
	}
#ifdef BENCH_MOVA
	give_back_fn = give_back_mova;
	give_back_what = "mova_thread_flush in every worker thread (macro workloads), then "
			 "mova_compact(mova_default_arena(), -1)";
#else
	if (!strcmp(in_charge, "mova-preload")) {
		pre_default_arena =
		    (mova_default_arena_fn)dlsym(RTLD_DEFAULT, "mova_default_arena");
		pre_compact = (mova_compact_fn)dlsym(RTLD_DEFAULT, "mova_compact");
		if (pre_default_arena && pre_compact) {
			give_back_fn = give_back_mova_preload;
			give_back_what = "mova_compact(mova_default_arena(), -1)";
		}
	}
	const char *preload = getenv("LD_PRELOAD");
	bool preloaded = preload && *preload;
	if (!preloaded && strcmp(in_charge, BENCH_ALLOC_NAME) != 0) {
		fprintf(stderr,
			"bench: built for %s but malloc comes from %s: the peer did not replace "
			"malloc (link order?)\n",
			BENCH_ALLOC_NAME, in_charge);
		exit(2);
	}
#endif
	gb_add_context("allocator", bm_allocator());
	gb_add_context("malloc_from", in_charge);
	gb_add_context("give_back", give_back_what);
	gb_add_context("scale", bm_scale() == BM_SMOKE   ? "smoke"
				: bm_scale() == BM_QUICK ? "quick"
							 : "full");
}

const char *bm_allocator(void)
{
#ifdef BENCH_MOVA
	return BENCH_ALLOC_NAME; /* "mova", or "mova-plain" / "mova-secure" at the other level */
#else
	const char *preload = getenv("LD_PRELOAD");
	return preload && *preload ? in_charge : BENCH_ALLOC_NAME;
#endif
}

void bm_give_back(void)
{
	if (give_back_fn)
		give_back_fn();
}

const char *bm_give_back_name(void)
{
	return give_back_what;
}

enum bm_scale bm_scale(void)
{
	static int scale = -1;
	if (scale < 0) {
		const char *s = getenv("BENCH_SCALE");
		scale = !s                    ? BM_QUICK
			: !strcmp(s, "smoke") ? BM_SMOKE
			: !strcmp(s, "full")  ? BM_FULL
					      : BM_QUICK;
	}
	return (enum bm_scale)scale;
}

const char *bm_series_dir(void)
{
	const char *d = getenv("BENCH_SERIES_DIR");
	return d && *d ? d : NULL;
}

size_t bm_rss_anon(void)
{
	/* read(2) on a kept descriptor: no stdio, no allocation */
	static int fd = -1;
	if (fd < 0)
		fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long size, resident, shared;
	if (sscanf(buf, "%lu %lu %lu", &size, &resident, &shared) != 3)
		return 0;
	return (resident - shared) * (size_t)sysconf(_SC_PAGESIZE);
}

size_t bm_rss_anon_exact(void)
{
	int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bm_rss_anon();
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return bm_rss_anon();
	buf[n] = 0;
	const char *p = strstr(buf, "\nAnonymous:");
	unsigned long kb;
	if (!p || sscanf(p + 11, "%lu", &kb) != 1)
		return bm_rss_anon();
	return (size_t)kb * 1024;
}

void *bm_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		perror("bench: mmap");
		exit(2);
	}
	memset(p, 0, bytes);
	return p;
}

void bm_unmap(void *p, size_t bytes)
{
	munmap(p, bytes);
}
