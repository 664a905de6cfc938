/* SPDX-License-Identifier: MIT */
/*
 * micro_page.c: the page allocator on its own (bench-page; mova only, it
 * links the library's internals). Blocks of order 0 and order 3 (the
 * largest the per-thread lists keep) are allocated and freed in batches
 * of 32, by one thread and by two, through two paths:
 *
 *   page/pcp/ORDER     the per-thread page lists (rmqueue_pcplist,
 *                      free_unref_page): the zone lock only on refills
 *                      and drains, what slabs and large objects use
 *   page/buddy/ORDER   the zone itself (__rmqueue_smallest,
 *                      __free_one_page) under the zone lock, every time
 *
 * items_per_second counts allocate+free pairs. Each run starts from an
 * arena already grown, so no run measures mmap/mprotect.
 */
#include <stdio.h>
#include <stdlib.h>

#include "arena.h"
#include "gbench.h"

#define BATCH 32

static mova_arena *arena(void)
{
	static mova_arena *a;
	if (!a) {
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = 0;
		cfg.reserve_bytes = (size_t)4 << 30;
		a = mova_arena_create(&cfg);
		if (!a)
			return NULL;
		/* grow it once: 64 MiB of pageblocks, handed back at once */
		size_t pfn = mv_buddy_alloc_pageblocks(&a->heap.zone, 32, MIGRATE_UNMOVABLE, NULL);
		if (pfn != MV_PFN_NONE)
			mv_buddy_free_range(&a->heap.zone, pfn,
					    32 * a->heap.zone.pageblock_nr_pages);
	}
	return a;
}

static void bm_pages(gb_state *st, void *arg)
{
	bool pcp = arg != NULL;
	unsigned order = (unsigned)gb_state_arg(st, 0);
	mova_arena *a = arena();
	if (!a) {
		gb_skip_with_error(st, "mova_arena_create failed");
		return;
	}
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	struct mv_zone *z = &a->heap.zone;
	size_t pfns[BATCH];
	while (gb_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			pfns[i] = pcp ? mv_pcp_alloc(z, &tc->pcp, order, MIGRATE_UNMOVABLE, NULL)
				      : mv_buddy_alloc(z, order, MIGRATE_UNMOVABLE, 0, NULL);
			if (pfns[i] == MV_PFN_NONE) {
				gb_skip_with_error(st, "out of pages");
				return;
			}
		}
		gb_clobber_memory();
		for (int i = 0; i < BATCH; i++) {
			if (pcp)
				mv_pcp_free_range(z, &tc->pcp, pfns[i], (size_t)1 << order);
			else
				mv_buddy_free(z, pfns[i], order);
		}
	}
	gb_set_items_processed(st, gb_state_iterations(st));
	/* leave nothing on this thread's lists for the next run */
	mv_pcp_drain(z, &tc->pcp);
}

int main(int argc, char **argv)
{
	static int on = 1;
	const char *names[] = {"order"};
	for (int path = 0; path < 2; path++) {
		gb_benchmark *b = gb_register(path ? "page/pcp" : "page/buddy", bm_pages,
					      path ? (void *)&on : NULL);
		gb_arg_names(b, names, 1);
		gb_arg(b, 0);
		gb_arg(b, 3);
		gb_threads(b, 1);
		gb_threads(b, 2);
		gb_use_real_time(b);
	}
	gb_add_context("mova", "page allocator");
	return gb_main(argc, argv);
}
