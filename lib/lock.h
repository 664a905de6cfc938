/* SPDX-License-Identifier: MIT */
/*
 * lock.h: mova's mutex, a pthread mutex with a rank. Locks must be taken in
 * increasing rank; debug builds (MV_DEBUG_LEVEL >= 1) check it per thread,
 * as jemalloc's witness does. The fork handler (fork.c) takes every lock in
 * rank order, so the ranks are also the fork order.
 */
#ifndef MV_LOCK_H
#define MV_LOCK_H

#include <pthread.h>

#include "diag.h"

enum mv_lock_rank {
	MV_RANK_NONE = 0,
	MV_RANK_GLOBAL,    /* the registry of arenas */
	MV_RANK_COMPACT,   /* one compactor per arena at a time */
	MV_RANK_THREADS,   /* an arena's list of thread caches */
	MV_RANK_BIN,       /* a size class's shared slab lists */
	MV_RANK_PCP,       /* a thread's page lists (taken by drains from other threads) */
	MV_RANK_ZONE,      /* the buddy allocator's free lists */
	MV_RANK_HANDLES,   /* handle table growth and its shared free list */
	MV_RANK_META,      /* metadata pools */
	MV_RANK_SHRINKERS, /* an arena's shrinker list (nothing nests inside) */
	MV_RANK_LEAF,
};

typedef struct mv_mutex {
	pthread_mutex_t m;
	int rank;
} mv_mutex;

void mv_mutex_init(mv_mutex *l, int rank);
void mv_mutex_destroy(mv_mutex *l);
/* In a fork child: the lock was taken by the parent's prepare handler in
 * this (the only) thread; make it unlocked and usable again. */

#if MV_DEBUG_LEVEL >= 1
void mv_witness_lock(const mv_mutex *l);
void mv_witness_unlock(const mv_mutex *l);
#else
static inline void mv_witness_lock(const mv_mutex *l)
{
	(void)l;
}
static inline void mv_witness_unlock(const mv_mutex *l)
{
	(void)l;
}
#endif

static inline void mv_lock(mv_mutex *l)
{
	mv_witness_lock(l);
	pthread_mutex_lock(&l->m);
}
static inline bool mv_trylock(mv_mutex *l)
{
	if (pthread_mutex_trylock(&l->m))
		return false;
	mv_witness_lock(l);
	return true;
}
static inline void mv_unlock(mv_mutex *l)
{
	mv_witness_unlock(l);
	pthread_mutex_unlock(&l->m);
}

#endif
