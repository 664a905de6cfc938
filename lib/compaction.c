/* SPDX-License-Identifier: MIT */
/*
 * compaction.c: see compaction.h. The kernel functions each part follows
 * are named where they start. Packing is pack.c's, kcompactd's work
 * kcompactd.c's; both use what this file exports. Slabs are taken and
 * given back through slab.h's movable operations (mv_slab_isolate,
 * mv_slab_putback, mv_slab_new_isolated): nothing here writes a slab's
 * fields. What may run at once:
 *
 *   compaction vs allocation   a thread allocates only from its frozen
 *                              slab; compaction takes only shared slabs
 *                              (isolated under the bin lock: owner = the
 *                              compactor's cache), so they never meet
 *   compaction vs hfree        per object, on the entry word (migrate.h);
 *                              frees of slots in isolated slabs go to xlist
 *   compaction vs pin / deref  pins wait on MIGRATING; readers keep the old
 *                              copy until the grace period that ends each
 *                              batch
 *   compaction vs compaction   compact->lock: one at a time per arena
 */
#include "compaction.h"

#include <errno.h>
#include <string.h>

#include "arena.h"
#include "large.h"
#include "os.h"
#include "pack.h"

/* after a full compaction, free blocks from this order up go back to the
 * OS: all of them (slabs of any page count leave small tails) */
#define MV_RETURN_MIN_ORDER 0

/* ------------------------------------------------------------ state */

unsigned mv_fragmentation_score_wmark(unsigned proactiveness, bool low)
{
	unsigned wmark_low = 100 - proactiveness;
	if (wmark_low < 5)
		wmark_low = 5;
	return low ? wmark_low : MV_MIN(wmark_low + 10, 100u);
}

void mv_compact_state_init(struct mova_arena *a)
{
	struct mv_compact_state *cs = &a->compact;
	mv_mutex_init(&cs->lock, MV_RANK_COMPACT);
	cs->compact_order_failed = MV_MAX_PAGE_ORDER + 1;
	cs->compact_cached_migrate_pfn[0] = cs->compact_cached_migrate_pfn[1] = 0;
	cs->compact_cached_free_pfn = SIZE_MAX;
	/* the compactor's cache: never on the arena's list, owns no pages */
	static const struct mv_tcache zero;
	cs->ctc = mv_meta_alloc(&a->heap.meta, sizeof zero);
	if (cs->ctc) {
		for (unsigned i = 0; i < MV_NR_MOV_CLASSES; i++)
			cs->ctc->mov_cur[i] = &mv_slab_empty;
		cs->ctc->dead = 1;
	}
}

/* defer_compaction */
void mv_defer_compaction(struct mova_arena *a, int order)
{
	struct mv_compact_state *cs = &a->compact;
	cs->compact_considered = 0;
	cs->compact_defer_shift++;
	if (order < cs->compact_order_failed)
		cs->compact_order_failed = order;
	if (cs->compact_defer_shift > COMPACT_MAX_DEFER_SHIFT)
		cs->compact_defer_shift = COMPACT_MAX_DEFER_SHIFT;
}

/* compaction_deferred */
bool mv_compaction_deferred(struct mova_arena *a, int order)
{
	struct mv_compact_state *cs = &a->compact;
	unsigned long defer_limit = 1UL << cs->compact_defer_shift;
	if (order < cs->compact_order_failed)
		return false;
	if (++cs->compact_considered >= defer_limit) {
		cs->compact_considered = (unsigned)defer_limit;
		return false;
	}
	return true;
}

/* compaction_defer_reset */
void mv_compaction_defer_reset(struct mova_arena *a, int order, bool alloc_success)
{
	struct mv_compact_state *cs = &a->compact;
	if (alloc_success) {
		cs->compact_considered = 0;
		cs->compact_defer_shift = 0;
	}
	if (order >= cs->compact_order_failed)
		cs->compact_order_failed = order + 1;
}

/* compaction_restarting */
bool mv_compaction_restarting(struct mova_arena *a, int order)
{
	struct mv_compact_state *cs = &a->compact;
	if (order < cs->compact_order_failed)
		return false;
	return cs->compact_defer_shift == COMPACT_MAX_DEFER_SHIFT &&
	       cs->compact_considered >= 1UL << cs->compact_defer_shift;
}

/* __reset_isolation_suitable: clear every skip bit */
static void reset_isolation_suitable(struct mova_arena *a)
{
	struct mv_zone *z = &a->heap.zone;
	size_t end = mv_relaxed_load(&z->populated_pfn);
	for (size_t p = 0; p < end; p += z->pageblock_nr_pages)
		if (mv_zone_pfn_valid(z, p))
			mv_zone_clear_pb_skip(z, p);
	a->compact.compact_blockskip_flush = false;
}

static size_t top_block(struct mv_zone *z)
{
	size_t end = mv_relaxed_load(&z->populated_pfn);
	return end ? end - z->pageblock_nr_pages : 0;
}

static void reset_cached_positions(struct mova_arena *a)
{
	a->compact.compact_cached_migrate_pfn[0] = a->compact.compact_cached_migrate_pfn[1] = 0;
	a->compact.compact_cached_free_pfn = top_block(&a->heap.zone);
}

bool mv_compaction_suitable(struct mova_arena *a, int order)
{
	struct mv_zone *z = &a->heap.zone;
	if (order < 0)
		return true;
	/* __compaction_suitable: room to migrate into (compact_gap) */
	if (mv_relaxed_load(&z->nr_free_pages) < (2UL << order))
		return false;
	if (order > MV_PAGE_ALLOC_COSTLY_ORDER) {
		mv_lock(&z->lock);
		int fragindex = mv_fragmentation_index(z, (unsigned)order);
		mv_unlock(&z->lock);
		if (fragindex >= 0 && fragindex <= (int)a->cfg.extfrag_threshold)
			return false;
	}
	return true;
}

/* is a free block of order (or more) available? (__compact_finished's check) */
static bool free_block_available(struct mova_arena *a, int order, int mt)
{
	struct mv_zone *z = &a->heap.zone;
	bool ok = false;
	mv_lock(&z->lock);
	for (int o = order; o < MV_NR_PAGE_ORDERS && !ok; o++) {
		struct mv_free_area *area = &z->free_area[o];
		if (area->free_list[mt] != MV_PFN_NONE)
			ok = true;
		else if (mt == MIGRATE_MOVABLE && area->free_list[MIGRATE_CMA] != MV_PFN_NONE)
			ok = true;
		else {
			bool can_steal;
			ok = mv_find_suitable_fallback(z, (unsigned)o, mt, true, &can_steal) != -1;
		}
	}
	mv_unlock(&z->lock);
	return ok;
}

/* ------------------------------------------------------------ isolation */

/* Take a shared movable slab for compaction (mv_slab_isolate); false if
 * it is frozen, gone or (ASYNC) its bin is contended. */
static bool isolate_slab(struct compact_control *cc, size_t pfn, uint8_t cls, struct mv_slab *s)
{
	int r = mv_slab_isolate(&cc->a->heap, s, pfn, cls, cc->ctc, cc->mode == MIGRATE_ASYNC);
	if (r == -EAGAIN)
		cc->contended = true;
	return r == 0;
}

/* does this compaction need the pages it frees right away? */
static bool flush_each_batch(const struct compact_control *cc)
{
	return (cc->order >= 0 && !cc->proactive_compaction) || !mv_rcu_readers_ever();
}

static bool compact_scanners_met(const struct compact_control *cc)
{
	unsigned o = cc->a->heap.zone.pageblock_order;
	return (cc->free_pfn >> o) <= (cc->migrate_pfn >> o);
}

/* ------------------------------------------------------------ the free scanner */

static bool suitable_migration_target(struct compact_control *cc, size_t pfn)
{
	struct mv_zone *z = &cc->a->heap.zone;
	int mt = mv_get_pfnblock_migratetype(z, pfn);
	if (mt != MIGRATE_MOVABLE && mt != MIGRATE_CMA)
		return false;
	if (mt == MIGRATE_CMA && cc->alloc_contig)
		return false;
	if (cc->alloc_contig && pfn >= mv_pageblock_start_pfn(z, cc->range_start) &&
	    pfn < cc->range_end)
		return false;
	/* a wholly free pageblock is not a target: filling it helps nobody */
	const struct mv_page *pg = mv_pfn_to_page(z, pfn);
	if (mv_pg_load(pg->type) == PG_BUDDY && mv_pg_load(pg->order) >= z->pageblock_order)
		return false;
	return true;
}

static void freepages_add(struct compact_control *cc, size_t pfn, unsigned order)
{
	struct mv_page *pg = mv_pfn_to_page(&cc->a->heap.zone, pfn);
	pg->lru.next = cc->freepages[order];
	cc->freepages[order] = (uint32_t)pfn;
	cc->nr_freepages += (size_t)1 << order;
}

/* isolate_freepages: walk down from free_pfn to the migrate scanner (for
 * a contiguous range: the whole arena but the range) */
static void isolate_freepages(struct compact_control *cc)
{
	struct mv_zone *z = &cc->a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	size_t populated = mv_relaxed_load(&z->populated_pfn);
	size_t low = cc->alloc_contig ? 0 : mv_pageblock_start_pfn(z, cc->migrate_pfn) + pbn;
	uint32_t pfns[512];
	uint8_t orders[512];
	if (!populated || cc->free_exhausted) {
		cc->free_exhausted = true;
		return;
	}
	size_t block = mv_pageblock_start_pfn(z, MV_MIN(cc->free_pfn, populated - 1));
	for (;;) {
		if (block < low) {
			cc->free_exhausted = true;
			return;
		}
		if (mv_zone_pfn_valid(z, block) &&
		    (cc->ignore_skip_hint || !mv_zone_pb_skip(z, block)) &&
		    suitable_migration_target(cc, block)) {
			size_t scanned = 0;
			unsigned got = mv_buddy_isolate_freepages_block(
			    z, block, z->pageblock_order, pfns, orders, 512, &scanned);
			cc->total_free_scanned += scanned;
			for (unsigned i = 0; i < got; i++)
				freepages_add(cc, pfns[i], orders[i]);
			if (!got && !cc->no_set_skip_hint)
				mv_zone_set_pb_skip(z, block);
		}
		if (block < pbn) {
			cc->free_pfn = 0;
			cc->free_exhausted = true;
			return;
		}
		block -= pbn;
		cc->free_pfn = block;
		if (cc->nr_freepages >= MV_MAX(cc->nr_migratepages, (size_t)COMPACT_CLUSTER_MAX))
			return;
	}
}

/* Take nr contiguous pages from the isolated free blocks, splitting a
 * larger block (compaction_alloc's split of freepages[order]). */
static size_t take_free(struct compact_control *cc, size_t nr)
{
	struct mv_zone *z = &cc->a->heap.zone;
	unsigned need = mv_order_for_pages(nr);
	for (;;) {
		for (unsigned o = need; o < MV_NR_PAGE_ORDERS; o++) {
			uint32_t pfn = cc->freepages[o];
			if (pfn == MV_PFN_NONE)
				continue;
			cc->freepages[o] = mv_pfn_to_page(z, pfn)->lru.next;
			cc->nr_freepages -= (size_t)1 << o;
			size_t p = pfn + nr, end = pfn + ((size_t)1 << o);
			while (p < end) {
				unsigned po =
				    MV_MIN((unsigned)__builtin_ctzl(p), mv_ilog2(end - p));
				freepages_add(cc, p, po);
				p += (size_t)1 << po;
			}
			return pfn;
		}
		if (cc->free_exhausted || (!cc->alloc_contig && compact_scanners_met(cc)))
			break;
		isolate_freepages(cc);
	}
	return MV_PFN_NONE;
}

static void release_freepages(struct compact_control *cc)
{
	struct mv_zone *z = &cc->a->heap.zone;
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		uint32_t pfn = cc->freepages[o];
		while (pfn != MV_PFN_NONE) {
			uint32_t next = mv_pfn_to_page(z, pfn)->lru.next;
			mv_buddy_free(z, pfn, o);
			pfn = next;
		}
		cc->freepages[o] = MV_PFN_NONE;
	}
	cc->nr_freepages = 0;
}

/* compaction_alloc: a destination for an object of class cls */
static void *compaction_alloc(struct mv_heap *h, unsigned cls, size_t size, void *priv)
{
	struct mova_arena *a = mv_arena_of(h);
	struct compact_control *cc = priv;
	if (cls < MV_NR_CLASSES) {
		unsigned mi = cls - MV_MOV_CLASS0;
		struct mv_slab *s = cc->dst[mi];
		void *p = s ? mv_slab_alloc_isolated(s, cls) : NULL;
		if (p)
			return p;
		if (s) {
			/* full: back to its bin at once */
			cc->dst[mi] = NULL;
			mv_slab_putback(&a->heap, s);
		}
		/* reclaimable objects stay in reclaimable pageblocks: not on the
		 * free scanner's (movable) pages */
		int mt = mv_classes[cls].mt;
		size_t pfn =
		    mt == MIGRATE_MOVABLE ? take_free(cc, mv_classes[cls].npages) : MV_PFN_NONE;
		if (pfn == MV_PFN_NONE && cc->alloc_contig)
			pfn = mv_buddy_alloc_exact(&a->heap.zone, mv_classes[cls].npages, mt, 0,
						   NULL);
		if (pfn == MV_PFN_NONE)
			return NULL;
		s = mv_slab_new_isolated(&a->heap, cls, pfn, cc->ctc);
		if (!s) {
			mv_buddy_free_range(&a->heap.zone, pfn, mv_classes[cls].npages);
			return NULL;
		}
		cc->dst[mi] = s;
		return mv_slab_alloc_isolated(s, cls);
	}
	size_t nr = (size + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT;
	/* a reclaimable large object stays reclaimable, in a reclaimable pageblock */
	int mt = cc->large_mt == MIGRATE_RECLAIMABLE ? MIGRATE_RECLAIMABLE : MIGRATE_MOVABLE;
	size_t pfn = mt == MIGRATE_MOVABLE ? take_free(cc, nr) : MV_PFN_NONE;
	if (pfn == MV_PFN_NONE && cc->alloc_contig)
		pfn = mv_buddy_alloc_exact(&a->heap.zone, nr, mt, 0, NULL);
	if (pfn == MV_PFN_NONE)
		return NULL;
	return mv_large_new_isolated(&a->heap.zone, pfn, nr, mt, size);
}

/* ------------------------------------------------------------ the migrate scanner */

enum isolate_result { ISOLATE_ABORT, ISOLATE_NONE, ISOLATE_SUCCESS };

static bool suitable_migration_source(struct compact_control *cc, size_t pfn)
{
	int mt = mv_get_pfnblock_migratetype(&cc->a->heap.zone, pfn);
	if (mt == MIGRATE_ISOLATE && !cc->alloc_contig)
		return false;
	/* async direct compaction: only blocks of the requested type */
	if (cc->mode == MIGRATE_ASYNC && cc->direct_compaction)
		return mt == cc->migratetype ||
		       (cc->migratetype == MIGRATE_MOVABLE && mt == MIGRATE_CMA);
	return true;
}

/* isolate_migratepages_block over [pfn, end): returns pages isolated */
static size_t isolate_migratepages_block(struct compact_control *cc, size_t pfn, size_t end,
					 size_t *stop)
{
	struct mv_zone *z = &cc->a->heap.zone;
	size_t isolated = 0, scanned = 0;
	while (pfn < end) {
		struct mv_page *pg = mv_pfn_to_page(z, pfn);
		/* acquire: pairs with slab_setup's release of PG_SLAB */
		uint8_t type = __atomic_load_n(&pg->type, __ATOMIC_ACQUIRE);
		scanned++;
		if (type == PG_BUDDY || type == PG_PCP) {
			pfn += (size_t)1
			       << MV_MIN(mv_pg_load(pg->order), (uint8_t)MV_MAX_PAGE_ORDER);
			continue;
		}
		if (type == PG_SLAB) {
			struct mv_slab *s = mv_pg_load(pg->slab);
			uint8_t cls = mv_pg_load(pg->cls);
			size_t head = mv_pg_load(pg->x);
			size_t npages = mv_classes[cls].npages;
			if (head != pfn) { /* started inside a slab */
				pfn = head + npages > pfn ? head + npages : pfn + 1;
				continue;
			}
			/* reclaimable slabs are freed by shrinkers, not migrated,
			 * except to clear a range (contig, memory policy) */
			if (mv_is_handle_class(cls) &&
			    (mv_classes[cls].mt == MIGRATE_MOVABLE || cc->alloc_contig) &&
			    cc->nr_src_slabs < CC_SRC_MAX && isolate_slab(cc, pfn, cls, s)) {
				cc->src_slabs[cc->nr_src_slabs++] = s;
				isolated += npages;
			}
			pfn += npages;
		} else if (type == PG_LARGE) {
			size_t nr;
			/* reclaimable ones too when clearing a range, as slabs */
			if (mv_large_isolate(z, pfn, cc->alloc_contig, &nr) &&
			    cc->nr_src_large < CC_SRC_MAX) {
				cc->src_large[cc->nr_src_large++] = mv_zone_addr(z, pfn);
				isolated += nr;
			}
			pfn += nr;
		} else if (type == PG_TAIL) {
			pfn = mv_large_tail_end(z, pfn);
		} else if (type == PG_ALLOC || type == PG_CONTIG) {
			pfn += MV_MAX(mv_pg_load(pg->x), 1u);
		} else {
			pfn++;
		}
		if (isolated >= COMPACT_CLUSTER_MAX && !cc->finish_pageblock)
			break;
		if (cc->contended)
			break;
	}
	cc->total_migrate_scanned += scanned;
	*stop = pfn;
	return isolated;
}

/* isolate_migratepages: the next pageblocks from migrate_pfn */
static enum isolate_result isolate_migratepages(struct compact_control *cc)
{
	struct mv_zone *z = &cc->a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	size_t pfn = cc->migrate_pfn;
	size_t limit = cc->alloc_contig ? cc->range_end : cc->free_pfn;
	cc->nr_migratepages = 0;
	while (pfn < limit) {
		size_t block = mv_pageblock_start_pfn(z, pfn), block_end = block + pbn;
		/* only blocks wholly below the free scanner */
		if (!cc->alloc_contig && block_end > limit)
			break;
		if (cc->alloc_contig && block_end > cc->range_end)
			block_end = cc->range_end;
		if (!mv_zone_pfn_valid(z, block) ||
		    (!cc->ignore_skip_hint && pfn == block && mv_zone_pb_skip(z, block)) ||
		    !suitable_migration_source(cc, block)) {
			pfn = block + pbn;
			continue;
		}
		size_t stop;
		size_t got = isolate_migratepages_block(cc, pfn, block_end, &stop);
		cc->nr_migratepages += got;
		if (cc->contended && cc->mode == MIGRATE_ASYNC) {
			cc->migrate_pfn = stop;
			return ISOLATE_ABORT;
		}
		/* a fully scanned block with nothing isolated gets the skip bit */
		if (!got && pfn == block && stop >= block + pbn && !cc->no_set_skip_hint)
			mv_zone_set_pb_skip(z, block);
		pfn = stop;
		if (got) {
			cc->migrate_pfn = pfn;
			return ISOLATE_SUCCESS;
		}
	}
	cc->migrate_pfn = pfn;
	return ISOLATE_NONE;
}

/* Migrate the live objects of everything isolated; old copies wait for a
 * grace period in cc->old, and so do the source slabs, which then go back
 * to their bins (those now empty to the buddy allocator). migrate_pages
 * with compaction_alloc. */
static int migrate_isolated(struct compact_control *cc)
{
	struct mova_arena *a = cc->a;
	int err = 0;
	for (unsigned i = 0; i < cc->nr_src_slabs && !err; i++) {
		int r = mv_migrate_slab(&a->heap, cc->src_slabs[i], compaction_alloc, cc, &cc->old,
					cc->mode, cc->reason);
		if (r < 0)
			err = r;
	}
	for (unsigned i = 0; i < cc->nr_src_large && !err; i++) {
		struct mv_migrate_obj o;
		if (!mv_object_entry(&a->heap, cc->src_large[i], &o))
			continue; /* freed meanwhile: nothing to move */
		struct mv_zone *z = &a->heap.zone;
		cc->large_mt = mv_large_mt(mv_pfn_to_page(z, mv_zone_pfn(z, o.src)));
		int r = mv_migrate_pages(&a->heap, &o, 1, compaction_alloc, cc, &cc->old, cc->mode,
					 cc->reason, NULL);
		if (r < 0)
			err = r;
	}
	cc->nr_src_large = 0;
	for (unsigned i = 0; i < cc->nr_src_slabs; i++)
		mv_migrate_old_add_slab(&cc->old, cc->src_slabs[i]);
	cc->nr_src_slabs = 0;
	if (flush_each_batch(cc))
		mv_migrate_old_flush(&cc->old);
	return err;
}

static void putback_destinations(struct compact_control *cc)
{
	for (unsigned mi = 0; mi < MV_NR_MOV_CLASSES; mi++) {
		if (cc->dst[mi])
			mv_slab_putback(&cc->a->heap, cc->dst[mi]);
		cc->dst[mi] = NULL;
	}
}

/* ------------------------------------------------------------ compact_zone */

/* __compact_finished */
static enum compact_result compact_finished(struct compact_control *cc)
{
	struct mova_arena *a = cc->a;
	if (cc->contended)
		return COMPACT_CONTENDED;
	if (compact_scanners_met(cc)) {
		reset_cached_positions(a);
		if (cc->direct_compaction)
			a->compact.compact_blockskip_flush = true;
		return cc->whole_zone ? COMPACT_COMPLETE : COMPACT_PARTIAL_SKIPPED;
	}
	if (cc->proactive_compaction) {
		unsigned wmark_low = mv_fragmentation_score_wmark(a->cfg.proactiveness, true);
		mv_lock(&a->heap.zone.lock);
		unsigned score = mv_fragmentation_score(&a->heap.zone);
		mv_unlock(&a->heap.zone.lock);
		return score > wmark_low ? COMPACT_CONTINUE : COMPACT_SUCCESS;
	}
	if (cc->order < 0)
		return COMPACT_CONTINUE;
	if (cc->migrate_pfn & (a->heap.zone.pageblock_nr_pages - 1))
		return COMPACT_CONTINUE; /* a pageblock is always finished */
	if (free_block_available(a, cc->order, cc->migratetype))
		return COMPACT_SUCCESS;
	return COMPACT_CONTINUE; /* COMPACT_NO_SUITABLE_PAGE */
}

struct compact_control *mv_cc_new(struct mova_arena *a)
{
	if (!a->compact.ctc)
		return NULL;
	struct compact_control *cc = mv_meta_alloc(&a->heap.meta, sizeof *cc);
	if (!cc)
		return NULL;
	if (!mv_migrate_old_init(&cc->old, &a->heap)) {
		mv_meta_free(&a->heap.meta, cc, sizeof *cc);
		return NULL;
	}
	cc->a = a;
	cc->ctc = a->compact.ctc;
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++)
		cc->freepages[o] = MV_PFN_NONE;
	cc->migratetype = MIGRATE_MOVABLE;
	cc->reason = MR_COMPACTION;
	return cc;
}

void mv_cc_free(struct compact_control *cc)
{
	mv_migrate_old_destroy(&cc->old);
	mv_meta_free(&cc->a->heap.meta, cc, sizeof *cc);
}

void mv_compact_count_scans(struct compact_control *cc, bool daemon)
{
	struct mova_arena *a = cc->a;
	mv_count(&a->heap.vm, MV_VM_compact_migrate_scanned, cc->total_migrate_scanned);
	mv_count(&a->heap.vm, MV_VM_compact_free_scanned, cc->total_free_scanned);
	if (daemon) {
		mv_count(&a->heap.vm, MV_VM_compact_daemon_migrate_scanned,
			 cc->total_migrate_scanned);
		mv_count(&a->heap.vm, MV_VM_compact_daemon_free_scanned, cc->total_free_scanned);
	}
}

/* compact_zone; caller holds compact->lock */
enum compact_result mv_compact_zone(struct compact_control *cc)
{
	struct mova_arena *a = cc->a;
	struct mv_zone *z = &a->heap.zone;
	enum compact_result ret;
	if (cc->order >= 0 && !cc->proactive_compaction) {
		/* compaction_suit_allocation_order */
		if (free_block_available(a, cc->order, cc->migratetype))
			return COMPACT_SUCCESS;
		if (!mv_compaction_suitable(a, cc->order))
			return COMPACT_SKIPPED;
	}
	if (mv_compaction_restarting(a, cc->order) || a->compact.compact_blockskip_flush)
		reset_isolation_suitable(a);
	size_t top = top_block(z);
	int sync = cc->mode != MIGRATE_ASYNC;
	if (cc->whole_zone) {
		cc->migrate_pfn = 0;
		cc->free_pfn = top;
	} else {
		cc->migrate_pfn = a->compact.compact_cached_migrate_pfn[sync];
		cc->free_pfn = a->compact.compact_cached_free_pfn;
		if (cc->free_pfn > top || cc->free_pfn < cc->migrate_pfn) {
			cc->free_pfn = top;
			a->compact.compact_cached_free_pfn = top;
		}
		if (cc->migrate_pfn >= top) {
			cc->migrate_pfn = 0;
			a->compact.compact_cached_migrate_pfn[sync] = 0;
		}
		if (!cc->migrate_pfn && cc->free_pfn == top)
			cc->whole_zone = true;
	}
	/* drain_all_pages: free pages on per-thread lists go back to the zone */
	mv_heap_drain_all_pcp(&a->heap);
	while ((ret = compact_finished(cc)) == COMPACT_CONTINUE) {
		enum isolate_result ir = isolate_migratepages(cc);
		if (ir == ISOLATE_ABORT) {
			ret = COMPACT_CONTENDED;
			migrate_isolated(cc);
			break;
		}
		if (ir == ISOLATE_NONE)
			continue;
		mv_count(&a->heap.vm, MV_VM_compact_isolated, cc->nr_migratepages);
		int err = migrate_isolated(cc);
		if (err == -ENOMEM && !compact_scanners_met(cc)) {
			/* the free scanner found no more room */
			ret = COMPACT_CONTENDED;
			break;
		}
		if (err == -ENOMEM)
			break;
	}
	mv_migrate_old_flush(&cc->old);
	putback_destinations(cc);
	release_freepages(cc);
	if (!cc->whole_zone || cc->order >= 0) {
		a->compact.compact_cached_migrate_pfn[sync] = cc->migrate_pfn;
		a->compact.compact_cached_free_pfn = cc->free_pfn;
	}
	if (ret == COMPACT_CONTINUE)
		ret = COMPACT_PARTIAL_SKIPPED;
	return ret;
}

void mv_compact_prepare(struct compact_control *cc, int order, enum compact_priority prio)
{
	cc->order = order;
	cc->mode = prio == COMPACT_PRIO_ASYNC ? MIGRATE_ASYNC : MIGRATE_SYNC_LIGHT;
	if (prio == COMPACT_PRIO_SYNC_FULL) {
		cc->whole_zone = true;
		cc->ignore_skip_hint = true;
	}
}

/* ------------------------------------------------------------ entry points */

static int result_code(enum compact_result r)
{
	switch (r) {
	case COMPACT_SUCCESS: return 0;
	case COMPACT_DEFERRED: return MOVA_COMPACT_DEFERRED;
	case COMPACT_SKIPPED:
	case COMPACT_NOT_SUITABLE_ZONE: return MOVA_COMPACT_SKIPPED;
	case COMPACT_CONTENDED: return MOVA_COMPACT_CONTENDED;
	default: return MOVA_COMPACT_NO_PROGRESS;
	}
}

/* compact_node(pgdat, false): what writing 1 to compact_memory does */
static void compact_node(struct mova_arena *a)
{
	mv_compact_pack(a, MIGRATE_SYNC);
	struct compact_control *cc = mv_cc_new(a);
	if (cc) {
		cc->order = -1;
		cc->mode = MIGRATE_SYNC;
		cc->whole_zone = true;
		cc->ignore_skip_hint = true;
		mv_lock(&a->compact.lock);
		mv_compact_zone(cc);
		mv_unlock(&a->compact.lock);
		mv_compact_count_scans(cc, false);
		mv_cc_free(cc);
	}
}

int mova_compact(mova_arena *a, int order)
{
	if (!a)
		return EINVAL;
	if (order > MV_MAX_PAGE_ORDER)
		return EINVAL;
	/* compaction waits for grace periods: never inside our own read section */
	if (mv_rcu_readers_ever() && mv_rcu_in_reader())
		return EDEADLK;
	/* the caller's own caches first: its frozen slabs, page lists, pending frees */
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (tc)
		mv_tcache_flush(&a->heap, tc);
	if (order < 0) {
		mv_bins_trim(&a->heap);
		compact_node(a);
		mv_bins_trim(&a->heap);
		mv_zone_return_free(&a->heap.zone, 0, MV_RETURN_MIN_ORDER);
		/* the pageblocks now dense: huge pages (issue 16) */
		mv_zone_thp_collapse_all(&a->heap.zone);
		return 0;
	}
	/* __alloc_pages_direct_compact: try_to_compact_pages, async then sync-light */
	mv_count(&a->heap.vm, MV_VM_compact_stall, 1);
	mv_lock(&a->compact.lock);
	bool deferred = mv_compaction_deferred(a, order);
	mv_unlock(&a->compact.lock);
	if (deferred) {
		mv_count(&a->heap.vm, MV_VM_compact_fail, 1);
		return MOVA_COMPACT_DEFERRED;
	}
	enum compact_result r = COMPACT_SKIPPED;
	enum compact_priority prios[] = {COMPACT_PRIO_ASYNC, DEF_COMPACT_PRIORITY};
	for (unsigned i = 0; i < MV_ARRAY_SIZE(prios); i++) {
		struct compact_control *cc = mv_cc_new(a);
		if (!cc)
			break;
		mv_compact_prepare(cc, order, prios[i]);
		cc->direct_compaction = true;
		mv_lock(&a->compact.lock);
		r = mv_compact_zone(cc);
		if (r == COMPACT_SUCCESS)
			mv_compaction_defer_reset(a, order, true);
		else if (prios[i] != COMPACT_PRIO_ASYNC &&
			 (r == COMPACT_COMPLETE || r == COMPACT_PARTIAL_SKIPPED))
			mv_defer_compaction(a, order);
		mv_unlock(&a->compact.lock);
		mv_compact_count_scans(cc, false);
		mv_cc_free(cc);
		if (r == COMPACT_SUCCESS || r == COMPACT_SKIPPED)
			break;
	}
	mv_count(&a->heap.vm, r == COMPACT_SUCCESS ? MV_VM_compact_success : MV_VM_compact_fail, 1);
	return result_code(r);
}

/* ------------------------------------------------------------ ranges (alloc_contig) */

int mv_migrate_range(struct mova_arena *a, size_t start_pfn, size_t end_pfn,
		     enum migrate_reason reason)
{
	struct compact_control *cc = mv_cc_new(a);
	if (!cc)
		return ENOMEM;
	cc->order = -1;
	cc->mode = MIGRATE_SYNC;
	cc->reason = reason;
	cc->alloc_contig = true;
	cc->ignore_skip_hint = true;
	cc->no_set_skip_hint = true;
	cc->finish_pageblock = true;
	cc->range_start = start_pfn;
	cc->range_end = end_pfn;
	cc->migrate_pfn = start_pfn;
	cc->free_pfn = top_block(&a->heap.zone);
	int err = 0;
	mv_lock(&a->compact.lock);
	mv_heap_drain_all_pcp(&a->heap);
	while (cc->migrate_pfn < end_pfn) {
		enum isolate_result ir = isolate_migratepages(cc);
		if (ir == ISOLATE_NONE)
			break;
		if (migrate_isolated(cc) < 0) {
			err = ENOMEM;
			break;
		}
	}
	mv_migrate_old_flush(&cc->old);
	putback_destinations(cc);
	release_freepages(cc);
	mv_unlock(&a->compact.lock);
	mv_compact_count_scans(cc, false);
	mv_cc_free(cc);
	return err;
}
