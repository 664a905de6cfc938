/* SPDX-License-Identifier: MIT */
/*
 * isolation.c: pageblock isolation, after mm/page_isolation.c
 * (set_migratetype_isolate, unset_migratetype_isolate): an isolated
 * pageblock's free pages sit on the MIGRATE_ISOLATE lists, where no
 * allocation takes them and pages freed into it stay, until the undo
 * retypes the block and lets it merge again. For contiguous ranges
 * (contig.c) and placement (mempolicy.c).
 */
#include "buddy.h"

#include <errno.h>

#include "diag.h"

int mv_zone_isolate_pageblock(struct mv_zone *z, size_t pfn)
{
	mv_lock(&z->lock);
	if (mv_get_pfnblock_migratetype(z, pfn) == MIGRATE_ISOLATE) {
		mv_unlock(&z->lock);
		return EBUSY;
	}
	mv_move_freepages_block(z, pfn, MIGRATE_ISOLATE);
	z->nr_isolate_pageblock++;
	mv_unlock(&z->lock);
	return 0;
}

void mv_zone_unisolate_pageblock(struct mv_zone *z, size_t pfn, int mt)
{
	MV_ASSERT(mt >= 0 && mt < MIGRATE_TYPES && mt != MIGRATE_ISOLATE);
	mv_lock(&z->lock);
	size_t start = mv_pageblock_start_pfn(z, pfn);
	if (mv_get_pfnblock_migratetype(z, start) != MIGRATE_ISOLATE) {
		mv_unlock(&z->lock);
		return;
	}
	mv_move_freepages_block(z, start, mt);
	MV_ASSERT(z->nr_isolate_pageblock > 0);
	z->nr_isolate_pageblock--;
	/* a wholly free pageblock may now merge with its neighbours */
	struct mv_page *pg = mv_pfn_to_page(z, start);
	if (mv_pg_load(pg->type) == PG_BUDDY && mv_pg_load(pg->order) == z->pageblock_order) {
		mv_del_page_from_free_list(z, start, z->pageblock_order, mv_pg_load(pg->mt));
		mv_free_one_page(z, start, z->pageblock_order, mt, NULL);
	}
	mv_unlock(&z->lock);
	MV_ASSERT_EXPENSIVE(mv_zone_verified(z, "after undoing isolation"));
}
