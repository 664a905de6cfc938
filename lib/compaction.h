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
 * compact_* counters follow the kernel. Packing is pack.h's; kcompactd's
 * work (kcompactd_do_work, proactive compaction) is kcompactd.c's.
 *
 * Locks: compact->lock (rank COMPACT) for the whole of a compaction, so
 * one compactor runs per arena; bins, zone and pcp locks inside, in short
 * holds. Never called with a bin or zone lock held.
 */
#ifndef MV_COMPACTION_H
#define MV_COMPACTION_H

#include "migrate.h"

struct mova_arena;

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

/* Migrate every movable (and reclaimable) object out of the pfn range
 * [start_pfn, end_pfn), with the scanners of compaction (targets outside
 * the range): alloc_contig_range's __alloc_contig_migrate_range for
 * contig.c, and memory policy's migration of misplaced pageblocks
 * (mempolicy.c). 0 or ENOMEM. */
int mv_migrate_range(struct mova_arena *a, size_t start_pfn, size_t end_pfn,
		     enum migrate_reason reason);

/* fragmentation_score_wmark: the proactive watermarks for proactiveness */
unsigned mv_fragmentation_score_wmark(unsigned proactiveness, bool low);

/*
 * One compaction's control (the kernel's struct compact_control, which
 * mm/internal.h shares the same way): kcompactd.c builds its runs with it.
 * A run: mv_cc_new, set order and mode (mv_compact_prepare) or the flags,
 * mv_compact_zone under compact->lock, mv_compact_count_scans, mv_cc_free.
 */
#define CC_SRC_MAX 512

struct compact_control {
	struct mova_arena *a;
	struct mv_tcache *ctc; /* owner of isolated and destination slabs */
	int order;
	int migratetype;
	enum migrate_mode mode;
	enum migrate_reason reason;
	size_t migrate_pfn, free_pfn;
	size_t range_start,
	    range_end; /* alloc_contig: only this range is a source, never a target */
	bool whole_zone, ignore_skip_hint, no_set_skip_hint, direct_compaction,
	    proactive_compaction, alloc_contig, finish_pageblock, contended, free_exhausted;
	size_t total_migrate_scanned, total_free_scanned;
	/* free pages isolated by the free scanner: freepages[order], linked
	 * through the descriptors' lru.next as the kernel's cc->freepages[] */
	uint32_t freepages[MV_NR_PAGE_ORDERS];
	size_t nr_freepages;
	/* sources isolated by the migrate scanner */
	struct mv_slab *src_slabs[CC_SRC_MAX];
	unsigned nr_src_slabs;
	void *src_large[CC_SRC_MAX];
	unsigned nr_src_large;
	int large_mt; /* the migratetype of the large object being migrated */
	size_t nr_migratepages;
	/* destinations */
	struct mv_slab *dst[MV_NR_MOV_CLASSES];
	/* old copies and the source slabs that held them, until a grace period */
	struct mv_migrate_old old;
};

/* NULL when the metadata pool is exhausted */
struct compact_control *mv_cc_new(struct mova_arena *a);
void mv_cc_free(struct compact_control *cc);
/* order, and the mode and scope of a priority (compact_zone_order's set-up) */
void mv_compact_prepare(struct compact_control *cc, int order, enum compact_priority prio);
/* compact_zone; the caller holds compact->lock */
enum compact_result mv_compact_zone(struct compact_control *cc);
/* add the run's scanned pages to the compact_*_scanned counters (and the
 * compact_daemon_* ones for kcompactd's runs) */
void mv_compact_count_scans(struct compact_control *cc, bool daemon);

#endif
