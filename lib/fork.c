/* SPDX-License-Identifier: MIT */
/* fork.c: see fork.h. */
#include "fork.h"

#include <pthread.h>

#include "arena.h"
#include "kcompactd.h"

static void lock_arena(struct mova_arena *a, void *arg)
{
	(void)arg;
	mv_lock(&a->heap.threads_lock);
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_lock(&a->heap.bins[c].lock);
	for (struct mv_tcache *tc = a->heap.tcaches; tc; tc = tc->tnext) {
		/* and its owner out of its lockless operations (pcp.h) */
		mv_lock(&tc->pcp.lock);
		mv_pcp_quiesce(&tc->pcp);
	}
	mv_lock(&a->heap.zone.lock);
	mv_lock(&a->heap.htab.lock);
	mv_lock(&a->heap.meta.lock);
	mv_lock(&a->reclaim.lock);
}

static void unlock_arena(struct mova_arena *a, void *arg)
{
	(void)arg;
	mv_unlock(&a->reclaim.lock);
	mv_unlock(&a->heap.meta.lock);
	mv_unlock(&a->heap.htab.lock);
	mv_unlock(&a->heap.zone.lock);
	for (struct mv_tcache *tc = a->heap.tcaches; tc; tc = tc->tnext) {
		mv_pcp_unquiesce(&tc->pcp);
		mv_unlock(&tc->pcp.lock);
	}
	for (int c = MV_NR_CLASSES - 1; c >= 0; c--)
		mv_unlock(&a->heap.bins[c].lock);
	mv_unlock(&a->heap.threads_lock);
}

static void lock_compact(struct mova_arena *a, void *arg)
{
	(void)arg;
	mv_lock(&a->compact.lock);
}

static void unlock_compact(struct mova_arena *a, void *arg)
{
	(void)arg;
	mv_unlock(&a->compact.lock);
}

/* glibc's stdio list lock (libio/genops.c), exported since glibc 2.2.5: a
 * recursive lock, reset in the child by glibc itself when the parent was
 * multi-threaded. */
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

static void prepare(void)
{
	/* glibc's fork takes stdio's list lock after the prepare handlers and
	 * its own malloc's locks after that: list, then malloc. We must keep
	 * that order, or a thread in fflush(NULL) (holding the list, waiting
	 * for a FILE) and a thread in getline (holding that FILE, in realloc,
	 * waiting for us) deadlock with the forker (holding us, waiting for
	 * the list). The lock is recursive, so glibc's own take after ours
	 * nests. */
	_IO_list_lock();
	mv_lock(&mv_heap_registry_lock);
	mv_arena_foreach(lock_compact, NULL);
	mv_rcu_fork_prepare();
	mv_arena_foreach(lock_arena, NULL);
	mv_lock(&mv_global_meta()->lock);
}

static void parent(void)
{
	mv_unlock(&mv_global_meta()->lock);
	mv_arena_foreach(unlock_arena, NULL);
	mv_rcu_fork_parent();
	mv_arena_foreach(unlock_compact, NULL);
	mv_unlock(&mv_heap_registry_lock);
	_IO_list_unlock();
}

/* In the child only this thread exists. The caches of the others were
 * owned by threads that may have been anywhere in a lock-free fast path
 * when fork copied them (a slab's free list half moved to local_free, a
 * queue half relinked): walking them could follow a torn list forever
 * (it did: a cycle in raw_collect_all, once in a few hundred forks of
 * tests/preload/stress). So, as jemalloc and mimalloc do, the child
 * retires them as they are: what is under a lock (their page lists, their
 * counters) is taken back, their slabs stay owned by the dead cache
 * (frees to them still work; their free slots are not reused here). */
static void retire_orphans(struct mova_arena *a, void *arg)
{
	(void)arg;
	mv_kcompactd_forget(a);
	/* shrinker calls in flight belonged to threads the child does not have */
	for (struct mova_shrinker *s = a->reclaim.head; s; s = s->next)
		atomic_store(&s->refs, 0);
	mv_lock(&a->heap.threads_lock);
	struct mv_tcache *tc = a->heap.tcaches, *next;
	for (; tc; tc = next) {
		next = tc->tnext;
		if (mv_tcache_is_mine(tc))
			continue;
		mv_tcache_retire_orphan(&a->heap, tc);
	}
	mv_unlock(&a->heap.threads_lock);
}

static void child(void)
{
	mv_pcp_fork_child(); /* a new process: membarrier registered again */
	mv_unlock(&mv_global_meta()->lock);
	mv_arena_foreach(unlock_arena, NULL);
	mv_rcu_fork_child();
	mv_arena_foreach(unlock_compact, NULL);
	mv_unlock(&mv_heap_registry_lock);
	/* glibc resets the list lock in a child of a multi-threaded parent;
	 * of a single-threaded one it does not, and ours is still held */
	_IO_list_resetlock();
	/* alone now: the registry cannot change under us */
	mv_arena_foreach(retire_orphans, NULL);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void do_register(void)
{
	pthread_atfork(prepare, parent, child);
}
void mv_fork_register(void)
{
	pthread_once(&once, do_register);
}
