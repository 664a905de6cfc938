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

/* kcompactd's life (state): started lazily, when an arena first has work
 * for it, never from a constructor; again in a forked child */
enum { MV_KCD_OFF, MV_KCD_STARTING, MV_KCD_RUNNING, MV_KCD_STOPPING, MV_KCD_FAILED };

/* the decay window is kept as this many intervals of decay_ms / MV_DECAY_SLOTS */
#define MV_DECAY_SLOTS 8

struct mv_kcompactd {
	pthread_t thread;
	_Atomic int state;         /* MV_KCD_* */
	_Atomic uint64_t retry_ns; /* FAILED: no new attempt before this */
	pthread_mutex_t lock;
	pthread_cond_t wait;
	int max_order; /* kcompactd_max_order: 0 = no demand */
	bool stop;
	bool proactive_trigger;
	bool sleeping;
	_Atomic bool idle_sleep;   /* asleep for a whole interval: no decay under way */
	uint64_t cpu_ns_used;      /* CPU time spent, for the budget */
	uint64_t backoff_until_ns; /* a proactive pass that gained nothing backs off until then */
	size_t backoff_free_pages; /* ... unless free memory changed much since */
	/* decay: the lowest free backed pages of each of the last slots,
	 * newest first (decay_n of them known), and when the last one ended */
	size_t decay_low[MV_DECAY_SLOTS];
	unsigned decay_n;
	uint64_t decay_last_ns;
	uint64_t owner_decay_ns; /* when threads were last asked to decay */
};

struct mova_arena;
void mv_compact_state_init(struct mova_arena *a);

#endif
