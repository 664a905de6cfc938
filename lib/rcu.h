/* SPDX-License-Identifier: MIT */
/*
 * rcu.h: mova's RCU glue over liburcu's bulletproof flavour (urcu-bp).
 * rcu.c is the only file that includes liburcu; docs/DESIGN.md says why
 * this flavour. What it offers the rest of mova:
 *  - read-side sections for mova_read_lock/unlock (any thread, no
 *    registration: bp registers a thread on its first read lock from an
 *    mmap'd registry, without malloc);
 *  - deferred reclamation of memory objects leave (hfree, migration), one
 *    grace period per batch of slots, never one per object: a batch goes
 *    to mova's grace-period thread (rcu.c), which runs its callback after
 *    the next grace period, within about a millisecond;
 *  - mv_rcu_readers_ever(): false until some thread has entered a read
 *    section; until then no reader can hold an object's old address, so
 *    freed memory is reused at once (see handle.c for the ordering).
 */
#ifndef MV_RCU_H
#define MV_RCU_H

#include "internal.h"

struct mv_heap;

#define MV_RCU_BATCH 250

struct mv_rcu_batch {
	struct mv_rcu_batch *gp_next; /* on the grace-period queue (rcu.c) */
	struct mv_heap *heap;
	void (*fn)(struct mv_rcu_batch *b); /* runs after a grace period */
	void *owner;                        /* the fn's: where the batch goes back (tcache.c) */
	struct mv_rcu_batch *next;          /* on the owner's list of batches back */
	uint32_t n;
	void *slot[MV_RCU_BATCH];
};

extern _Atomic int mv_rcu_readers_flag;
static inline bool mv_rcu_readers_ever(void)
{
	return atomic_load_explicit(&mv_rcu_readers_flag, memory_order_seq_cst) != 0;
}

/* Is the calling thread inside a read section? It must not then wait for a
 * grace period (it would wait for itself). */
bool mv_rcu_in_reader(void);
void mv_rcu_read_lock(void);
void mv_rcu_read_unlock(void);
/* Run b->fn(b) after a grace period, on the grace-period thread. Call
 * without any mova lock held: it may start that thread, which allocates. */
void mv_rcu_defer(struct mv_rcu_batch *b);
/* Batches deferred and not yet run (process-wide). A barrier waits a grace
 * period at least (10 ms and more while a reader lingers: liburcu-bp polls
 * then), so callers check this first. */
extern _Atomic size_t mv_rcu_inflight;
static inline bool mv_rcu_batches_inflight(void)
{
	return atomic_load_explicit(&mv_rcu_inflight, memory_order_acquire) != 0;
}
/* Wait for every deferred batch queued so far to have run. No lock held. */
void mv_rcu_barrier(void);
void mv_rcu_synchronize(void);
/* fork handling (fork.c) */
void mv_rcu_fork_prepare(void);
void mv_rcu_fork_parent(void);
void mv_rcu_fork_child(void);

#endif
