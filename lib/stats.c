/* SPDX-License-Identifier: MIT */
/*
 * stats.c: mova_stats_get and mova_stats_print, in the formats of the
 * kernel's /proc/buddyinfo, /proc/pagetypeinfo and /proc/vmstat
 * (mm/vmstat.c: frag_show_print, pagetypeinfo_showfree_print,
 * pagetypeinfo_showblockcount_print). Takes the zone lock for a snapshot of
 * the free lists and the threads lock to sum per-thread counters; never
 * allocates, so it is safe from the preload library's exit handler.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "diag.h"
#include "os.h"

static const char *const migratetype_names[MIGRATE_TYPES] = {
    "Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate",
};

static const char *const vm_names[MV_NR_VM_ITEMS] = {
#define MV_VM_NAME(name) #name,
    MOVA_VMSTAT_ITEMS(MV_VM_NAME)
#undef MV_VM_NAME
};

/* The process's AnonHugePages: reading smaps_rollup walks the page tables
 * of the whole process (10 ms under ThreadSanitizer's shadow), so it is
 * read at most every 100 ms, and never where the system has no huge
 * pages. */
static size_t anon_huge_bytes(void)
{
	static _Atomic uint64_t last_ns;
	static _Atomic size_t last;
	if (mv_os_thp_system() == MOVA_THP_NEVER)
		return 0;
	uint64_t now = mv_os_now_ns(), t = mv_relaxed_load(&last_ns);
	if (t && now - t < 100000000u)
		return mv_relaxed_load(&last);
	size_t v = mv_os_anon_huge_bytes();
	mv_relaxed_store(&last, v);
	mv_relaxed_store(&last_ns, now | 1);
	return v;
}

void mova_stats_get(mova_arena *a, mova_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!a)
		return;
	struct mv_zone *z = &a->heap.zone;
	st->page_size = MV_PAGE_SIZE;
	st->pageblock_order = z->pageblock_order;
	st->reserved_bytes = mv_relaxed_load(&z->mapped_bytes);
	st->max_bytes = z->reserve_bytes;
	st->nr_sections = mv_relaxed_load(&z->nr_sections);
	mv_lock(&z->lock);
	st->populated_bytes = 0;
	for (size_t p = 0; p < mv_relaxed_load(&z->populated_pfn); p += MV_SECTION_PAGES)
		if (mv_zone_pfn_valid(z, p))
			st->populated_bytes +=
			    MV_MIN(MV_SECTION_PAGES, mv_relaxed_load(&z->populated_pfn) - p)
			    << MV_PAGE_SHIFT;
	for (int o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		st->nr_free[o] = z->free_area[o].nr_free;
		for (int mt = 0; mt < MIGRATE_TYPES; mt++)
			st->nr_free_mt[mt][o] = z->free_area[o].nr_free_mt[mt];
	}
	for (int mt = 0; mt < MIGRATE_TYPES; mt++)
		st->nr_pageblocks[mt] = mv_relaxed_load(&z->nr_pageblocks_mt[mt]);
	for (size_t b = 0; b < mv_relaxed_load(&z->populated_pfn); b += z->pageblock_nr_pages)
		if (mv_zone_pfn_valid(z, b))
			st->nr_pageblocks_unbacked +=
			    !mv_zone_any_backed(z, b, z->pageblock_nr_pages);
	st->free_bytes = mv_relaxed_load(&z->nr_free_pages) << MV_PAGE_SHIFT;
	st->fragmentation_score = mv_fragmentation_score(z);
	size_t desc_bytes = mv_zone_desc_resident_bytes(z) + mv_zone_bitmaps_resident_bytes(z);
	mv_unlock(&z->lock);

	st->metadata_bytes = desc_bytes + mv_htable_resident_bytes(&a->heap.htab) +
			     mv_relaxed_load(&a->heap.meta.mapped_bytes) +
			     mv_align_up(sizeof *a, MV_PAGE_SIZE);
	st->resident_bytes =
	    (mv_relaxed_load(&z->resident_pages) << MV_PAGE_SHIFT) + st->metadata_bytes;

	int64_t live =
	    mv_relaxed_load(&a->heap.dead_live_bytes) + mv_relaxed_load(&a->heap.large_live_bytes);
	size_t cached = 0;
	mv_lock(&a->heap.threads_lock);
	for (struct mv_tcache *tc = a->heap.tcaches; tc; tc = tc->tnext) {
		live += mv_relaxed_load(&tc->live_bytes);
		cached += mv_rload(tc->nhidx);
		st->nr_thread_caches++;
	}
	st->live_handles = mv_htable_live(&a->heap.htab, cached);
	mv_unlock(&a->heap.threads_lock);
	st->live_bytes = live > 0 ? (size_t)live : 0;
#define MV_VM_COPY(name) st->name = mv_relaxed_load(&a->heap.vm.ev[MV_VM_##name]);
	MOVA_VMSTAT_ITEMS(MV_VM_COPY)
#undef MV_VM_COPY
	st->thp_mode = mv_zone_thp_mode(z);
	st->thp_system = mv_os_thp_system();
	st->thp_advised = mv_relaxed_load(&z->thp_advised);
	st->thp_unadvised = mv_relaxed_load(&z->thp_unadvised);
	st->thp_advised_pageblocks = mv_relaxed_load(&z->thp_advised_now);
	st->thp_collapse = mv_relaxed_load(&z->thp_collapse);
	st->thp_collapse_failed = mv_relaxed_load(&z->thp_collapse_failed);
	st->thp_anon_huge_bytes = anon_huge_bytes();
}

void mova_stats_print(mova_arena *a, FILE *f)
{
	mova_stats st;
	mova_stats_get(a, &st);
	if (!a || !f)
		return;
	fprintf(f, "buddyinfo:\nNode %d, zone %8s ", 0, "Normal");
	for (int o = 0; o < MV_NR_PAGE_ORDERS; o++)
		fprintf(f, "%6lu ", (unsigned long)st.nr_free[o]);
	fprintf(f, "\n\npagetypeinfo:\nPage block order: %u\nPages per block:  %lu\n\n",
		st.pageblock_order, 1ul << st.pageblock_order);
	fprintf(f, "%-43s ", "Free pages count per migrate type at order");
	for (int o = 0; o < MV_NR_PAGE_ORDERS; o++)
		fprintf(f, "%6d ", o);
	fprintf(f, "\n");
	for (int mt = 0; mt < MIGRATE_TYPES; mt++) {
		fprintf(f, "Node %4d, zone %8s, type %12s ", 0, "Normal", migratetype_names[mt]);
		for (int o = 0; o < MV_NR_PAGE_ORDERS; o++)
			fprintf(f, "%6lu ", (unsigned long)st.nr_free_mt[mt][o]);
		fprintf(f, "\n");
	}
	fprintf(f, "\n%-23s", "Number of blocks type ");
	for (int mt = 0; mt < MIGRATE_TYPES; mt++)
		fprintf(f, "%12s ", migratetype_names[mt]);
	fprintf(f, "\nNode %d, zone %8s ", 0, "Normal");
	for (int mt = 0; mt < MIGRATE_TYPES; mt++)
		fprintf(f, "%12lu ", (unsigned long)st.nr_pageblocks[mt]);
	fprintf(f, "\n\nvmstat:\n");
	fprintf(f, "nr_free_pages %zu\n", st.free_bytes / MV_PAGE_SIZE);
	fprintf(f, "nr_resident_pages %zu\n", st.resident_bytes / MV_PAGE_SIZE);
	fprintf(f, "nr_populated_pages %zu\n", st.populated_bytes / MV_PAGE_SIZE);
	fprintf(f, "nr_sections %zu\n", st.nr_sections);
	fprintf(f, "mapped_bytes %zu\n", st.reserved_bytes);
	fprintf(f, "nr_unbacked_pageblocks %lu\n", (unsigned long)st.nr_pageblocks_unbacked);
	fprintf(f, "live_bytes %zu\n", st.live_bytes);
	fprintf(f, "live_handles %zu\n", st.live_handles);
	fprintf(f, "metadata_bytes %zu\n", st.metadata_bytes);
	fprintf(f, "fragmentation_score %u\n", st.fragmentation_score);
	fprintf(f, "nr_thread_caches %zu\n", st.nr_thread_caches);
	/* process-wide: frees and reallocs of pointers mova never handed out or
	 * already took back (diag.c reports the first, counts the rest) */
	fprintf(f, "invalid_frees %lu\n", (unsigned long)mv_diag_invalid_count());
	const uint64_t *ev = &st.pgalloc;
	for (int i = 0; i < MV_NR_VM_ITEMS; i++)
		fprintf(f, "%s %lu\n", vm_names[i], (unsigned long)ev[i]);
	static const char *const thp_names[] = {"madvise", "never", "always"};
	fprintf(f, "thp_mode %s\nthp_system %s\n", thp_names[st.thp_mode % 3],
		thp_names[st.thp_system % 3]);
	fprintf(f, "thp_advised %lu\nthp_unadvised %lu\nthp_advised_pageblocks %lu\n",
		(unsigned long)st.thp_advised, (unsigned long)st.thp_unadvised,
		(unsigned long)st.thp_advised_pageblocks);
	fprintf(f, "thp_collapse %lu\nthp_collapse_failed %lu\n", (unsigned long)st.thp_collapse,
		(unsigned long)st.thp_collapse_failed);
	/* process-wide, as the kernel counts it */
	fprintf(f, "anon_huge_bytes %zu\n", st.thp_anon_huge_bytes);
#if MV_STAT
	static const char *const fstat_names[MV_NR_FSTAT] = {
#define MV_FS_NAME(name) #name,
	    MV_FSTAT_ITEMS(MV_FS_NAME)
#undef MV_FS_NAME
	};
	uint64_t fs[MV_NR_FSTAT];
	for (int i = 0; i < MV_NR_FSTAT; i++)
		fs[i] = mv_relaxed_load(&a->heap.dead_fstat[i]);
	mv_lock(&a->heap.threads_lock);
	for (struct mv_tcache *tc = a->heap.tcaches; tc; tc = tc->tnext)
		for (int i = 0; i < MV_NR_FSTAT; i++)
			fs[i] += mv_relaxed_load(&tc->fstat[i]);
	mv_unlock(&a->heap.threads_lock);
	fprintf(f, "\nfast paths (MV_STAT):\n");
	for (int i = 0; i < MV_NR_FSTAT; i++)
		fprintf(f, "%s %lu\n", fstat_names[i], (unsigned long)fs[i]);
#endif
}

size_t mova_pageblocks(mova_arena *a, mova_pageblock_info *out, size_t max)
{
	if (!a)
		return 0;
	struct mv_zone *z = &a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	mv_lock(&z->lock);
	size_t populated = mv_relaxed_load(&z->populated_pfn), n = populated / pbn;
	for (size_t b = 0; b < n && b < max; b++) {
		mova_pageblock_info *pi = &out[b];
		size_t start = b * pbn, end = start + pbn;
		memset(pi, 0, sizeof *pi);
		if (!mv_zone_pfn_valid(z, start)) {
			pi->absent = 1;
			pi->node = 0xff;
			continue;
		}
		pi->migratetype = (uint8_t)mv_get_pfnblock_migratetype(z, start);
		pi->skip = mv_zone_pb_skip(z, start);
		pi->backed_pages = (uint16_t)(pbn - mv_zone_count_unbacked(z, start, pbn));
		int node = mv_numa_pageblock_node(a, start);
		pi->node = node < 0 ? 0xff : (uint8_t)node;
		/* descriptors of allocated pages change without the zone lock
		 * (slabs, large runs): every field read once, atomically */
		for (size_t p = start; p < end;) {
			const struct mv_page *pg = mv_pfn_to_page(z, p);
			uint8_t type = mv_pg_load(pg->type);
			size_t step = 1;
			switch (type) {
			case PG_BUDDY:
				step = (size_t)1
				       << MV_MIN(mv_pg_load(pg->order), MV_MAX_PAGE_ORDER);
				pi->free_pages += (uint16_t)MV_MIN(step, end - p);
				break;
			case PG_SLAB: {
				uint8_t cls = mv_pg_load(pg->cls);
				if (mv_classes[cls].mt == MIGRATE_RECLAIMABLE)
					pi->reclaimable_pages++;
				else if (mv_classes[cls].movable)
					pi->movable_pages++;
				else
					pi->unmovable_pages++;
				break;
			}
			case PG_LARGE:
			case PG_CONTIG:
			case PG_ALLOC: {
				uint8_t mt = mv_pg_load(pg->mt);
				step = MV_MAX(mv_pg_load(pg->x), 1u);
				if (type == PG_LARGE && is_migrate_movable(mt))
					pi->movable_pages += (uint16_t)MV_MIN(step, end - p);
				else if (type == PG_LARGE && mt == MIGRATE_RECLAIMABLE)
					pi->reclaimable_pages += (uint16_t)MV_MIN(step, end - p);
				else
					pi->unmovable_pages += (uint16_t)MV_MIN(step, end - p);
				break;
			}
			case PG_TAIL: {
				size_t head = mv_pg_load(pg->x);
				if (head > p) /* changed under us: not a tail any more */
					break;
				const struct mv_page *h = mv_pfn_to_page(z, head);
				uint8_t htype = mv_pg_load(h->type), hmt = mv_pg_load(h->mt);
				size_t hend = head + MV_MAX(mv_pg_load(h->x), 1u);
				step = hend > p ? hend - p : 1;
				if (htype == PG_LARGE && is_migrate_movable(hmt))
					pi->movable_pages += (uint16_t)MV_MIN(step, end - p);
				else if (htype == PG_LARGE && hmt == MIGRATE_RECLAIMABLE)
					pi->reclaimable_pages += (uint16_t)MV_MIN(step, end - p);
				else
					pi->unmovable_pages += (uint16_t)MV_MIN(step, end - p);
				break;
			}
			case PG_PCP:
				step = (size_t)1
				       << MV_MIN(mv_pg_load(pg->order), MV_MAX_PAGE_ORDER);
				break;
			default: break;
			}
			p += step;
		}
	}
	mv_unlock(&z->lock);
	return n;
}

/* ------------------------------------------------------------ at exit */

/* stats_print's output goes to a duplicate of stderr taken at start: a
 * program may close stderr before exit (coreutils' close_stdout does) */
static int stats_fd = -1;
static struct mova_arena *stats_arena;

static void stats_print_now(void)
{
	if (!stats_arena || stats_fd < 0)
		return;
	FILE *f = fdopen(stats_fd, "w");
	if (!f)
		return;
	mova_stats_print(stats_arena, f);
	fclose(f);
	stats_fd = -1;
}

void mv_stats_print_at_exit(struct mova_arena *a)
{
	if (stats_arena)
		return;
	stats_arena = a;
	stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	atexit(stats_print_now);
}
