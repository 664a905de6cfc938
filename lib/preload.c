/* SPDX-License-Identifier: MIT */
/*
 * preload.c: what libmova-preload.so adds to libmova: the glibc malloc
 * family's other names and hooks (malloc itself, free, calloc, realloc,
 * aligned_alloc, posix_memalign and malloc_usable_size are aliases of the
 * mova_* functions, defined in malloc.c under MV_PRELOAD, so they cost no
 * extra call), and a constructor that, once libc is up, registers the fork
 * handlers and the exit statistics (MOVA_CONF stats_print:1), which may not
 * run inside the first malloc (the first malloc can come from the dynamic
 * loader). It starts nothing: the arena and kcompactd come when needed.
 *
 * Every failure sets errno to ENOMEM; huge valloc/pvalloc requests fail
 * instead of wrapping; pointers mova did not hand out are reported once
 * and left alone.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "fork.h"
#include "kcompactd.h"
#include "options.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(nmemb, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return mova_realloc(p, total);
}

EXPORT void *memalign(size_t alignment, size_t size)
{
	/* glibc rounds a non-power-of-two alignment up */
	if (!mv_is_pow2(alignment)) {
		if (alignment > ((size_t)1 << 62)) {
			errno = EINVAL;
			return NULL;
		}
		alignment = alignment ? (size_t)1 << (mv_ilog2(alignment) + 1) : 1;
	}
	return mova_aligned_alloc(alignment, size);
}

EXPORT void *valloc(size_t size)
{
	return mova_aligned_alloc(MV_PAGE_SIZE, size);
}

EXPORT void *pvalloc(size_t size)
{
	if (size > SIZE_MAX - MV_PAGE_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	return mova_aligned_alloc(MV_PAGE_SIZE, mv_align_up(size ? size : 1, MV_PAGE_SIZE));
}

EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	struct mova_arena *a = mova_default_arena();
	if (!a)
		return 0;
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (tc)
		mv_tcache_flush(&a->heap, tc);
	mv_heap_drain_all_pcp(&a->heap);
	mv_bins_trim(&a->heap);
	return mv_zone_return_free(&a->heap.zone, 0, 0) > 0;
}

EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi = {0};
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	mi.arena = st.populated_bytes;
	mi.uordblks = st.live_bytes;
	mi.fordblks = st.free_bytes;
	for (int o = 0; o < MOVA_NR_PAGE_ORDERS; o++)
		mi.ordblks += st.nr_free[o];
	mi.keepcost = 0;
	return mi;
}

EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi = {0};
	mi.arena = (int)MV_MIN(m2.arena, (size_t)INT32_MAX);
	mi.uordblks = (int)MV_MIN(m2.uordblks, (size_t)INT32_MAX);
	mi.fordblks = (int)MV_MIN(m2.fordblks, (size_t)INT32_MAX);
	mi.ordblks = (int)MV_MIN(m2.ordblks, (size_t)INT32_MAX);
	return mi;
}

EXPORT int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1; /* accepted and ignored: mova has no such knobs */
}

EXPORT void malloc_stats(void)
{
	mova_stats_print(mova_default_arena(), stderr);
}

/* Nothing heavy before the first allocation that needs it: no arena, no
 * thread. The fork handlers are registered here (cheap, and it may not run
 * inside the first malloc); the default arena is made by the first malloc,
 * kcompactd when there is work for it. Only stats_print and verbose, which
 * report on the arena, make it now. */
__attribute__((constructor)) static void mv_preload_init(void)
{
	mv_fork_register();
	const char *conf = getenv("MOVA_CONF");
	if (!conf || (!strstr(conf, "stats_print") && !strstr(conf, "verbose")))
		return;
	if (!mova_default_arena())
		return;
	if (mv_popts.stats_print)
		mv_stats_print_at_exit(mv_default);
	if (mv_popts.verbose)
		mv_warn("preloaded: reserve %zu bytes, pageblock order %u, kcompactd %d, "
			"proactiveness %u, decay %u ms",
			mv_default->cfg.reserve_bytes, mv_default->cfg.pageblock_order,
			mv_default->cfg.kcompactd, mv_default->cfg.proactiveness,
			mv_default->cfg.decay_ms);
}
