/* SPDX-License-Identifier: MIT */
/*
 * slowpath.h: the slow path above the allocators (slowpath.c): what the
 * malloc family and the handle API call when a thread's cache has no
 * free slot, and for every large request. Each entry runs the lower
 * allocator and, when it fails, reclaims and retries once, then wakes
 * kcompactd and fails with errno ENOMEM. No lock held on entry.
 */
#ifndef MV_SLOWPATH_H
#define MV_SLOWPATH_H

#include "arena.h"

/* a slot of raw (unmovable) class cls, or of movable class cls, for tc */
void *mv_slowpath_raw(struct mova_arena *a, struct mv_tcache *tc, unsigned cls);
void *mv_slowpath_mov(struct mova_arena *a, struct mv_tcache *tc, unsigned cls);
/* a page run (large.h); tc may be NULL */
void *mv_slowpath_large(struct mova_arena *a, struct mv_tcache *tc, size_t size, size_t align,
			int mt, bool zero);
/* realloc of the unmovable page run p to size bytes in a new run
 * (mv_large_realloc_move), reclaiming once if need be; tc not NULL. The new
 * object, or NULL with errno ENOMEM and p untouched. */
void *mv_slowpath_large_realloc(struct mova_arena *a, struct mv_tcache *tc, void *p, size_t size);
/* free a page run, and give free pageblocks back when it was large */
void mv_slowpath_large_free(struct mova_arena *a, struct mv_tcache *tc, void *p);

/* An allocation is about to fail: give back what this thread and the bins
 * hold without need (pending frees, kept and empty slabs, page lists) so
 * the caller can retry once, as the kernel drains per-cpu lists and
 * shrinks slabs before failing; under a budget, reclaim to fit it. True if
 * free memory grew. */
bool mv_slowpath_reclaim(struct mova_arena *a, struct mv_tcache *tc);

/* Does the arena have work for kcompactd (start it, wake it)? Slow paths
 * only, no mova lock held. mv_slowpath_tick asks every MV_HOUSEKEEP_EVERY
 * calls of a thread. */
#define MV_HOUSEKEEP_EVERY 64
void mv_slowpath_housekeep(struct mova_arena *a);
extern __thread uint32_t mv_slowpath_ticks __attribute__((tls_model("initial-exec")));
static inline void mv_slowpath_tick(struct mova_arena *a)
{
	if (unlikely((++mv_slowpath_ticks & (MV_HOUSEKEEP_EVERY - 1)) == 0))
		mv_slowpath_housekeep(a);
}
/* a thread freed into one of its full slabs (thinning out what it holds):
 * every MV_HOUSEKEEP_EVERY of those, while kcompactd is not running,
 * start it if the thread's slabs hold far more than its live data, so
 * that they decay (mv_heap_ask_decay). Nothing more on this path: the
 * housekeeping's other work woke kcompactd too often for batch frees. */
void mv_slowpath_thinning(struct mova_arena *a);
/* after a large free: kcompactd's decay will give it back (started if
 * need be); without kcompactd, pageblocks above the retain threshold go
 * back now (hysteresis) */
void mv_slowpath_maybe_return(struct mova_arena *a);
/* an allocation fell back or failed: wake kcompactd at that order */
void mv_slowpath_check_wakeup(struct mova_arena *a);

#endif
