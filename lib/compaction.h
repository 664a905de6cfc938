/* SPDX-License-Identifier: MIT */
/*
 * compaction.h: compaction (mm/compaction.c) over an arena. Two goals,
 * two passes:
 *  - packing (zs_compact): per movable class, move objects from the
 *    emptiest shared slabs into the fullest, so emptied slabs go back to
 *    the buddy allocator and resident memory approaches live bytes;
 *  - compact_zone: a migrate scanner walks pageblocks up from the bottom,
 *    isolating movable slabs and large objects no thread is allocating
 *    from, and a free scanner walks down from the top isolating free
 *    pages to build destination slabs; done when they meet or when the
 *    requested order is free. Emptied pageblocks merge and go to the OS.
 * Deferral, skip bits, ASYNC / SYNC_LIGHT / SYNC, result codes and the
 * compact_* counters follow the kernel (docs/COMPACTION.md).
 *
 * Locks: compact->lock (rank COMPACT) for the whole of a compaction, so
 * one compactor runs per arena; bins, zone and pcp locks inside, in short
 * holds. Never called with a bin or zone lock held.
 */
#ifndef MV_COMPACTION_H
#define MV_COMPACTION_H

#include "migrate.h"

enum compact_result {
	COMPACT_NOT_SUITABLE_ZONE,
	COMPACT_SKIPPED,
	COMPACT_DEFERRED,
	COMPACT_NO_SUITABLE_PAGE,
	COMPACT_CONTINUE,
	COMPACT_COMPLETE,
	COMPACT_PARTIAL_SKIPPED,
	COMPACT_CONTENDED,
	COMPACT_SUCCESS,
};

enum compact_priority {
	COMPACT_PRIO_SYNC_FULL,
	MIN_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_FULL,
	COMPACT_PRIO_SYNC_LIGHT,
	MIN_COMPACT_COSTLY_PRIORITY = COMPACT_PRIO_SYNC_LIGHT,
	DEF_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_LIGHT,
	COMPACT_PRIO_ASYNC,
	INIT_COMPACT_PRIORITY = COMPACT_PRIO_ASYNC
};

#define COMPACT_CLUSTER_MAX 32 /* pages isolated per migrate batch */

/* deferral (defer_compaction and friends), under compact->lock or racy */
void mv_defer_compaction(struct mova_arena *a, int order);
bool mv_compaction_deferred(struct mova_arena *a, int order);
void mv_compaction_defer_reset(struct mova_arena *a, int order, bool alloc_success);
bool mv_compaction_restarting(struct mova_arena *a, int order);
/* compaction_suitable: enough free memory, and fragmentation (not lack of
 * memory) is the problem (extfrag index above extfrag_threshold). */
bool mv_compaction_suitable(struct mova_arena *a, int order);

/* One compact_zone run; for tests and the kcompactd paths. */
enum compact_result mv_compact_zone_order(struct mova_arena *a, int order,
					  enum compact_priority prio, bool proactive);
/* Packing pass over every movable class; returns slabs emptied. */
size_t mv_compact_pack(struct mova_arena *a, enum migrate_mode mode);
/* Fraction (0..100) of movable slab memory that holds no object. */
unsigned mv_pack_waste_percent(struct mova_arena *a);

/* kcompactd's work */
void mv_kcompactd_do_work(struct mova_arena *a, int order);
/* -1: nothing called for; 0: tried and gained nothing (back off); 1: gained */
int mv_kcompactd_proactive(struct mova_arena *a);
/* would it find work now? (cheap, no compaction) */
bool mv_kcompactd_proactive_wanted(struct mova_arena *a);

/* contiguous ranges (contig.c) use the same isolation and migration */
struct compact_control;
int mv_migrate_range(struct mova_arena *a, size_t start_pfn, size_t end_pfn,
		     enum migrate_reason reason);

/* fragmentation_score_wmark: the proactive watermarks for proactiveness */
unsigned mv_fragmentation_score_wmark(unsigned proactiveness, bool low);

#endif
