/* SPDX-License-Identifier: MIT */
/*
 * zone_verify.c: the invariants of buddy.h checked in one walk of every
 * free list under zone->lock, what the kernel's VM_BUG_ONs and
 * CONFIG_DEBUG_VM checks of page_alloc.c test piecemeal. For tests, and
 * at MV_DEBUG_LEVEL 2 after give-back and isolation (mv_zone_verified).
 */
#include "buddy.h"

#include <stdio.h>

#include "diag.h"

const char *mv_zone_verify(struct mv_zone *z)
{
	static char msg[256];
	const char *err = NULL;
	mv_lock(&z->lock);
	size_t pages_mt[MIGRATE_TYPES] = {0}, backed_free = 0, total_nonisolate = 0;
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS && !err; o++) {
		uint64_t blocks = 0;
		for (int mt = 0; mt < MIGRATE_TYPES && !err; mt++) {
			uint64_t n = 0;
			uint32_t head = z->free_area[o].free_list[mt], pfn = head;
			while (pfn != MV_PFN_NONE) {
				const struct mv_page *pg =
				    mv_zone_pfn_valid(z, pfn) ? mv_pfn_to_page(z, pfn) : NULL;
				if (!pg || (pfn & (((size_t)1 << o) - 1)))
					snprintf(msg, sizeof msg,
						 "free block %u order %u out of place", pfn, o),
					    err = msg;
				else if (mv_pg_load(pg->type) != PG_BUDDY ||
					 mv_pg_load(pg->order) != o || mv_pg_load(pg->mt) != mt)
					snprintf(msg, sizeof msg,
						 "free block %u on list (%u,%d) has descriptor "
						 "(%u,%u,%u)",
						 pfn, o, mt, mv_pg_load(pg->type),
						 mv_pg_load(pg->order), mv_pg_load(pg->mt)),
					    err = msg;
				else if (o < z->pageblock_order &&
					 mv_get_pfnblock_migratetype(z, pfn) != mt &&
					 mt != MIGRATE_ISOLATE &&
					 mv_get_pfnblock_migratetype(z, pfn) != MIGRATE_ISOLATE)
					snprintf(msg, sizeof msg,
						 "free block %u order %u on list %d in a pageblock "
						 "of type %d",
						 pfn, o, mt, mv_get_pfnblock_migratetype(z, pfn)),
					    err = msg;
				if (err)
					break;
				/* fully merged? */
				size_t b = pfn ^ ((size_t)1 << o);
				if (o < MV_MAX_PAGE_ORDER && mv_zone_pfn_valid(z, b) &&
				    mv_pg_load(mv_pfn_to_page(z, b)->type) == PG_BUDDY &&
				    mv_pg_load(mv_pfn_to_page(z, b)->order) == o) {
					int bmt = mv_pg_load(mv_pfn_to_page(z, b)->mt);
					/* isolated pageblocks need not be merged
					 * with each other: isolating moves a free
					 * pageblock to the ISOLATE list as it is,
					 * splitting an isolated block larger than a
					 * pageblock leaves its pageblocks apart, and
					 * undoing isolation merges each anew */
					bool can = o < z->pageblock_order ||
						   (bmt == mt && mt != MIGRATE_ISOLATE) ||
						   (migratetype_is_mergeable(mt) &&
						    migratetype_is_mergeable(bmt));
					if (can) {
						snprintf(msg, sizeof msg,
							 "free blocks %u (list %d) and %zu (list "
							 "%d) of order %u not merged",
							 pfn, mt, b, bmt, o);
						err = msg;
						break;
					}
				}
				pages_mt[mt] += (size_t)1 << o;
				backed_free += mv_zone_backed_pageblocks(z, pfn, o);
				n++;
				pfn = pg->lru.next;
				if (pfn == head)
					break;
				if (n > z->nr_pages_max) {
					snprintf(msg, sizeof msg, "list (%u,%d) does not close", o,
						 mt);
					err = msg;
					break;
				}
			}
			if (!err && n != z->free_area[o].nr_free_mt[mt])
				snprintf(msg, sizeof msg,
					 "order %u type %d: %lu blocks listed, %lu counted", o, mt,
					 (unsigned long)n,
					 (unsigned long)z->free_area[o].nr_free_mt[mt]),
				    err = msg;
			blocks += n;
		}
		if (!err && blocks != z->free_area[o].nr_free)
			snprintf(msg, sizeof msg, "order %u: nr_free %lu, lists hold %lu", o,
				 (unsigned long)z->free_area[o].nr_free, (unsigned long)blocks),
			    err = msg;
	}
	for (int mt = 0; mt < MIGRATE_TYPES && !err; mt++) {
		if (pages_mt[mt] != z->nr_free_pages_mt[mt])
			snprintf(msg, sizeof msg, "type %d: %zu free pages listed, %zu counted", mt,
				 pages_mt[mt], z->nr_free_pages_mt[mt]),
			    err = msg;
		if (mt != MIGRATE_ISOLATE)
			total_nonisolate += pages_mt[mt];
	}
	if (!err && total_nonisolate != mv_relaxed_load(&z->nr_free_pages))
		snprintf(msg, sizeof msg, "nr_free_pages %zu, lists hold %zu",
			 mv_relaxed_load(&z->nr_free_pages), total_nonisolate),
		    err = msg;
	if (!err && backed_free != mv_relaxed_load(&z->free_pb_backed))
		snprintf(msg, sizeof msg, "free backed pageblocks: %zu counted, %zu found",
			 mv_relaxed_load(&z->free_pb_backed), backed_free),
		    err = msg;
	mv_unlock(&z->lock);
	return err;
}

bool mv_zone_verified(struct mv_zone *z, const char *when)
{
	const char *err = mv_zone_verify(z);
	if (err)
		mv_warn("zone invalid %s: %s", when, err);
	return !err;
}
