/* SPDX-License-Identifier: MIT */
/*
 * fragstat.c: external fragmentation of the zone, after mm/vmstat.c
 * (fill_contig_page_info, __fragmentation_index, extfrag_for_order) and
 * the fragmentation score of mm/compaction.c. Read from free_area's
 * counts alone: callers hold zone->lock or accept a racy answer.
 */
#include "buddy.h"

struct mv_contig_page_info {
	size_t free_pages, free_blocks_total, free_blocks_suitable;
};

static void fill_contig_page_info(const struct mv_zone *z, unsigned order,
				  struct mv_contig_page_info *info)
{
	info->free_pages = info->free_blocks_total = info->free_blocks_suitable = 0;
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		uint64_t blocks = z->free_area[o].nr_free;
		info->free_blocks_total += blocks;
		info->free_pages += blocks << o;
		if (o >= order)
			info->free_blocks_suitable += blocks << (o - order);
	}
}

int mv_fragmentation_index(const struct mv_zone *z, unsigned order)
{
	struct mv_contig_page_info info;
	fill_contig_page_info(z, order, &info);
	if (!info.free_blocks_total)
		return 0;
	if (info.free_blocks_suitable)
		return -1000;
	return (int)(1000 - (1000 + info.free_pages * 1000 / ((size_t)1 << order)) /
				info.free_blocks_total);
}

static unsigned extfrag_for_order(const struct mv_zone *z, unsigned order)
{
	struct mv_contig_page_info info;
	fill_contig_page_info(z, order, &info);
	if (!info.free_pages)
		return 0;
	return (unsigned)((info.free_pages - (info.free_blocks_suitable << order)) * 100 /
			  info.free_pages);
}

unsigned mv_fragmentation_score(const struct mv_zone *z)
{
	return extfrag_for_order(z, z->pageblock_order);
}
