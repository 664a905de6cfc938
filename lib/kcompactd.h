/* SPDX-License-Identifier: MIT */
/*
 * kcompactd.h: the per-arena background compaction thread (mm/compaction.c's
 * kcompactd), started lazily: the first time the arena has work for it
 * (mv_arena_housekeep decides). It sleeps on a condition variable with a
 * timeout; allocations that fell back or failed wake it
 * (mova_kcompactd_wakeup, as wakeup_kcompactd); the timeout drives
 * proactive compaction when the fragmentation score passes the watermark
 * set by proactiveness, and the decay that gives free memory back to the
 * OS once nobody needed it for decay_ms. It keeps to a CPU budget.
 */
#ifndef MV_KCOMPACTD_H
#define MV_KCOMPACTD_H

#include "arena.h"

/* at arena creation: the state, no thread yet */
/* a thread's raw slabs holding this much more than its live data are
 * asked to decay (mv_heap_ask_decay) every decay_ms */
#define MV_OWNER_DECAY_MIN ((size_t)1 << 20)

void mv_kcompactd_init(struct mova_arena *a);
/* Start the thread unless it runs (or is being started: a pthread_create
 * that allocates comes back here and returns at once). Called when the
 * arena has work for it, with no mova lock held. True if it runs. */
bool mv_kcompactd_ensure(struct mova_arena *a);
bool mv_kcompactd_started(const struct mova_arena *a);
/* wake a thread asleep for a whole interval: free memory is above the
 * floor and should start to decay */
void mv_kcompactd_kick(struct mova_arena *a);
/* start the thread now, whatever the work (kcompactd_run); 0 or errno */
int mv_kcompactd_run(struct mova_arena *a);
/* stop it and wait for it (kcompactd_stop); idempotent */
void mv_kcompactd_stop(struct mova_arena *a);
/* fork: the child has no kcompactd thread; forget it (fork.c); the child's
 * own work starts a new one */
void mv_kcompactd_forget(struct mova_arena *a);
/* would a proactive pass find work now? (cheap, no compaction: the slow
 * path asks before it starts the thread) */
bool mv_kcompactd_proactive_wanted(struct mova_arena *a);
/* free backed pages the decay leaves alone (retain_bytes) */
size_t mv_kcompactd_floor_pages(const struct mova_arena *a);

/* Free pageblocks kept backed for reuse: retain_bytes when set, else
 * 1/MV_RETAIN_DIV of the resident pageblocks, MV_RETAIN_MIN_PB ..
 * MV_RETAIN_MAX_PB of them. A fixed amount either bloats a small process
 * (8 pageblocks were 16 MiB, and twice that before anything went back:
 * sqlite's peak RSS was 6% over jemalloc's) or makes a large one
 * give back and fault in again pages it is about to reuse. */
#define MV_RETAIN_DIV 32
#define MV_RETAIN_MIN_PB 2
#define MV_RETAIN_MAX_PB 16
size_t mv_kcompactd_retain_pageblocks(const struct mova_arena *a);

#endif
