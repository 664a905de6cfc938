/* SPDX-License-Identifier: MIT */
/*
 * kcompactd.h: the per-arena background compaction thread (mm/compaction.c's
 * kcompactd). It sleeps on a condition variable with a timeout; allocations
 * that fell back or failed wake it (mova_kcompactd_wakeup, as
 * wakeup_kcompactd); the timeout drives proactive compaction when the
 * fragmentation score passes the watermark set by proactiveness, and the
 * return of free pageblocks to the OS. It keeps to a CPU budget.
 */
#ifndef MV_KCOMPACTD_H
#define MV_KCOMPACTD_H

#include "arena.h"

/* start the thread (kcompactd_run); 0 or errno */
int mv_kcompactd_run(struct mova_arena *a);
/* stop it and wait for it (kcompactd_stop); idempotent */
void mv_kcompactd_stop(struct mova_arena *a);
/* fork: the child has no kcompactd thread; forget it (fork.c) */
void mv_kcompactd_forget(struct mova_arena *a);

/* fragmentation_score_wmark: the proactive watermarks for proactiveness */
unsigned mv_fragmentation_score_wmark(unsigned proactiveness, bool low);

#endif
