/* SPDX-License-Identifier: MIT */
/*
 * compact.h: the per-arena state of compaction and kcompactd (the kernel
 * keeps it in struct zone and pglist_data): deferral, cached scanner
 * positions, the skip-bit flush flag, and the background thread.
 */
#ifndef MV_COMPACT_H
#define MV_COMPACT_H

#include <pthread.h>

#include "lock.h"

struct mv_tcache;

#define COMPACT_MAX_DEFER_SHIFT 6

struct mv_compact_state {
	mv_mutex lock; /* one compactor at a time (rank MV_RANK_COMPACT) */
	unsigned compact_considered;
	unsigned compact_defer_shift;
	int compact_order_failed;
	size_t compact_cached_migrate_pfn[2]; /* [ASYNC], [SYNC] */
	size_t compact_cached_free_pfn;
	bool compact_blockskip_flush;
	struct mv_tcache *ctc; /* owner of the slabs compaction holds */
};

struct mv_kcompactd {
	pthread_t thread;
	_Atomic bool running;
	pthread_mutex_t lock;
	pthread_cond_t wait;
	int max_order; /* kcompactd_max_order: 0 = no demand */
	bool stop;
	bool proactive_trigger;
	bool sleeping;
	uint64_t cpu_ns_used;      /* CPU time spent, for the budget */
	uint64_t backoff_until_ns; /* a proactive pass that gained nothing backs off until then */
	size_t backoff_free_pages; /* ... unless free memory changed much since */
	uint64_t last_page_events; /* pgalloc + pgfree at the last pass: is the arena idle? */
};

struct mova_arena;
void mv_compact_state_init(struct mova_arena *a);

#endif
