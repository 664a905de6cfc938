/* SPDX-License-Identifier: MIT */
/*
 * zone.c: the zone itself, after mm/mm_init.c (the zone's setup and
 * mem_map) and mm/memory_hotplug.c (online_pages: here the zone grows a
 * pageblock at a time into its reservation). See zone.h.
 *
 * Where mova differs from the kernel: a free page may or may not be backed
 * by the OS, so the zone keeps a bit per page (set when pages are handed
 * out, cleared when they are given back, giveback.c); resident_bytes and
 * the memory budget are counted from it. The descriptors inside a large
 * free, unbacked block are given back too, and read as zeros (PG_NONE).
 */
#include "zone.h"

#include <errno.h>
#include <string.h>

#include "diag.h"
#include "os.h"

int mv_zone_init(struct mv_zone *z, size_t reserve_bytes, unsigned pageblock_order,
		 struct mv_vmstat *vm)
{
	memset(z, 0, sizeof *z);
	mv_mutex_init(&z->lock, MV_RANK_ZONE);
	z->vm = vm;
	z->pageblock_order = pageblock_order;
	z->pageblock_nr_pages = (size_t)1 << pageblock_order;
	z->reserve_bytes = reserve_bytes;
	z->nr_pages_max = reserve_bytes >> MV_PAGE_SHIFT;
	size_t nr_blocks = z->nr_pages_max >> pageblock_order;
	/* aligned to the largest block, so buddy arithmetic never leaves it */
	size_t align = MV_MAX(MV_PAGE_SIZE << MV_MAX_PAGE_ORDER, MV_PAGE_SIZE << pageblock_order);
	z->base = mv_os_reserve(reserve_bytes, align);
	if (!z->base)
		goto fail;
	z->desc_bytes =
	    mv_align_up(MV_DESC_COLOR + z->nr_pages_max * sizeof(struct mv_page), MV_PAGE_SIZE);
	/* readable throughout: free() may look up a pointer anywhere in the
	 * reservation and must find PG_NONE, not a fault */
	z->desc_map = mv_os_reserve_readable(z->desc_bytes, MV_PAGE_SIZE);
	if (!z->desc_map)
		goto fail;
	z->desc = (struct mv_page *)(void *)(z->desc_map + MV_DESC_COLOR);
	z->pb.order = pageblock_order;
	z->pb.nr_blocks = nr_blocks;
	size_t bitmap_words = (z->nr_pages_max + 63) / 64;
	size_t desc_pages_words = (z->desc_bytes / MV_PAGE_SIZE + 63) / 64;
	z->pb_words_bytes = mv_align_up(
	    (mv_pageblock_words(nr_blocks) + bitmap_words + desc_pages_words) * sizeof(uint64_t),
	    MV_PAGE_SIZE);
	/* mapped, not committed page by page: untouched parts cost nothing */
	z->pb.words = mv_os_map(z->pb_words_bytes);
	if (!z->pb.words)
		goto fail;
	z->backed = (uint64_t *)(z->pb.words + mv_pageblock_words(nr_blocks));
	z->desc_released = z->backed + bitmap_words;
	for (int o = 0; o < MV_NR_PAGE_ORDERS; o++)
		for (int t = 0; t < MIGRATE_TYPES; t++)
			z->free_area[o].free_list[t] = MV_PFN_NONE;
	/* page_group_by_mobility_disabled: too small to group (build_all_zonelists) */
	z->page_group_by_mobility_disabled = nr_blocks < MIGRATE_TYPES;
	return 0;
fail:;
	int err = errno ? errno : ENOMEM;
	mv_zone_destroy(z);
	return err;
}

void mv_zone_destroy(struct mv_zone *z)
{
	mv_os_release(z->base, z->reserve_bytes);
	if (z->desc_map)
		mv_os_release(z->desc_map, z->desc_bytes);
	z->desc_map = NULL;
	mv_os_release(z->pb.words, z->pb_words_bytes);
	z->base = NULL;
	z->desc = NULL;
	z->pb.words = NULL;
	mv_mutex_destroy(&z->lock);
}

bool mv_zone_populate(struct mv_zone *z, size_t end, int mt)
{
	size_t start = mv_relaxed_load(&z->populated_pfn);
	if (end > z->nr_pages_max || end < start)
		return false;
	MV_ASSERT(!(end & (z->pageblock_nr_pages - 1)) && mt >= 0 && mt < MIGRATE_TYPES);
	size_t dend = mv_align_up(MV_DESC_COLOR + end * sizeof(struct mv_page), MV_PAGE_SIZE);
	if (dend > z->desc_committed_bytes) {
		if (mv_os_commit(z->desc_map + z->desc_committed_bytes,
				 dend - z->desc_committed_bytes))
			return false;
		mv_rstore(z->desc_committed_bytes, dend);
	}
	if (mv_os_commit(mv_zone_addr(z, start), (end - start) << MV_PAGE_SHIFT))
		return false;
	for (size_t p = start; p < end; p += z->pageblock_nr_pages) {
		/* a fresh pageblock's flags are zero: UNMOVABLE, counted as such */
		mv_relaxed_add(&z->nr_pageblocks_mt[MIGRATE_UNMOVABLE], 1);
		mv_zone_set_pageblock_type(z, p, mt);
		mv_count(z->vm, MV_VM_pageblock_grow, 1);
	}
	atomic_store_explicit(&z->populated_pfn, end, memory_order_release);
	return true;
}

/* The budget: would backing [pfn, pfn + nr) take the zone past its limit?
 * Caller holds zone->lock, so resident_pages cannot move meanwhile. */
bool mv_zone_over_limit(struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t lim = mv_relaxed_load(&z->limit_pages);
	if (likely(!lim))
		return false;
	size_t fresh = mv_zone_count_unbacked(z, pfn, nr);
	if (!fresh || mv_zone_charged_pages(z) + fresh <= lim)
		return false;
	if (fresh > mv_relaxed_load(&z->limit_want))
		mv_relaxed_store(&z->limit_want, fresh);
	return true;
}

/* Mark [pfn, pfn+nr) backed (the owner will touch it); true if no page of
 * it was backed before, so the pages read as zeros. */
bool mv_zone_mark_backed(struct mv_zone *z, size_t pfn, size_t nr)
{
	/* a pageblock getting its first backed page is placed (mempolicy) */
	if (unlikely(z->place)) {
		for (size_t b = mv_pageblock_start_pfn(z, pfn); b < pfn + nr;
		     b += z->pageblock_nr_pages)
			if (!mv_zone_any_backed(z, b, z->pageblock_nr_pages))
				z->place(z->place_arg, b >> z->pageblock_order);
	}
	size_t n = mv_zone_set_backed(z, pfn, nr, true);
	if (n)
		mv_relaxed_add(&z->resident_pages, n);
	return n == nr;
}

bool mv_zone_pageblock_backed(const struct mv_zone *z, size_t pfn)
{
	return mv_zone_any_backed(z, mv_pageblock_start_pfn(z, pfn), z->pageblock_nr_pages);
}

size_t mv_zone_charged_pages(const struct mv_zone *z)
{
	return mv_relaxed_load(&z->resident_pages) +
	       (z->extra_pages ? z->extra_pages(z->extra_arg) : 0);
}

/* The descriptor pages wholly inside the block [pfn, pfn + 2^order) but
 * for the one holding its head: [*first, *end), page indices. */
static void desc_span(size_t pfn, unsigned order, size_t *first, size_t *end)
{
	const size_t per = MV_PAGE_SIZE / sizeof(struct mv_page);
	pfn += MV_DESC_COLOR / sizeof(struct mv_page); /* desc_map's page index */
	*first = pfn / per + 1;
	*end = (pfn + ((size_t)1 << order)) / per;
	if (*end < *first)
		*end = *first;
}

/* A block leaves the free lists: its descriptors will be written again,
 * so the pages given back (if any) count as backed from now on. */
void mv_zone_desc_unrelease(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t first, end, n = 0;
	MV_ASSERT(order >= z->pageblock_order);
	desc_span(pfn, order, &first, &end);
	for (size_t p = first; p < end; p++) {
		uint64_t bit = (uint64_t)1 << (p % 64);
		if (z->desc_released[p / 64] & bit) {
			z->desc_released[p / 64] &= ~bit;
			n++;
		}
	}
	if (n)
		mv_relaxed_add(&z->desc_released_pages, -n);
}

/* A free block now unbacked: give back the descriptor pages inside it.
 * Caller holds zone->lock and the block is off the lists. */
void mv_zone_desc_release(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t first, end, n = 0;
	MV_ASSERT(order >= z->pageblock_order && !mv_zone_any_backed(z, pfn, (size_t)1 << order));
	desc_span(pfn, order, &first, &end);
	for (size_t p = first; p < end;) {
		size_t q = p;
		while (q < end && !(z->desc_released[q / 64] & ((uint64_t)1 << (q % 64))))
			q++;
		if (q > p &&
		    !mv_os_decommit(z->desc_map + p * MV_PAGE_SIZE, (q - p) * MV_PAGE_SIZE)) {
			for (size_t k = p; k < q; k++)
				z->desc_released[k / 64] |= (uint64_t)1 << (k % 64);
			n += q - p;
		}
		p = q + 1;
	}
	if (n)
		mv_relaxed_add(&z->desc_released_pages, n);
}

size_t mv_zone_desc_resident_bytes(const struct mv_zone *z)
{
	return mv_rload(z->desc_committed_bytes) -
	       (mv_relaxed_load(&z->desc_released_pages) << MV_PAGE_SHIFT);
}

size_t mv_zone_bitmaps_resident_bytes(const struct mv_zone *z)
{
	/* the parts of the flag and bit maps that cover the populated pages */
	size_t pop = mv_relaxed_load(&z->populated_pfn);
	size_t words = mv_pageblock_words(pop >> z->pageblock_order) + (pop + 63) / 64 +
		       (pop * sizeof(struct mv_page) / MV_PAGE_SIZE + 63) / 64;
	return MV_MIN(z->pb_words_bytes,
		      mv_align_up(words * sizeof(uint64_t), MV_PAGE_SIZE) + 2 * MV_PAGE_SIZE);
}
