/* SPDX-License-Identifier: MIT */
/*
 * reclaim.h: the memory budget and shrinkers (mm/vmscan.c, mm/shrinker.c).
 *
 * An arena may have a budget (limit_bytes): the zone refuses to back pages
 * beyond it (zone.h, mv_zone_over_limit), and the allocation that was refused
 * reclaims before it fails, as the kernel's direct reclaim does before
 * the OOM path: first the free memory kept backed goes back to the OS,
 * then the shrinkers run, priority DEF_PRIORITY down to 0 (do_shrink_slab:
 * a share of each one's freeable objects that grows as the priority
 * falls, in batches of SHRINK_BATCH), and after each pass the freed
 * memory is settled: grace period, empty slabs freed, sparse slabs packed
 * by migration, free pages returned. It stops once the request fits with
 * some room to spare (so that every allocation does not reclaim).
 *
 * Shrinkers are kept on a list under reclaim.lock, which is never held
 * while a callback runs: a walk takes a reference on each shrinker it
 * calls, and unregistering waits for the references to drop, as the
 * kernel's shrinker_put / wait_for_completion do.
 */
#ifndef MV_RECLAIM_H
#define MV_RECLAIM_H

#include "lock.h"

struct mova_arena;
struct mv_tcache;

struct mova_shrinker {
	mova_count_objects_fn count;
	mova_scan_objects_fn scan;
	void *priv;
	unsigned seeks;
	_Atomic size_t nr_deferred; /* scan work carried over (shrinker->nr_deferred) */
	_Atomic uint32_t refs;      /* walks calling it now */
	bool dead;                  /* unregistered: walks skip it */
	uint64_t id;                /* registration order */
	struct mova_shrinker *next, *prev;
};

struct mv_reclaim {
	mv_mutex lock; /* the list (rank MV_RANK_SHRINKERS); never held in a callback */
	struct mova_shrinker *head, *tail;
	uint64_t next_id;
	_Atomic uint32_t put_seq; /* futex: bumped when a dead shrinker's last reference drops */
};

#define MV_DEF_PRIORITY 12  /* DEF_PRIORITY */
#define MV_SHRINK_BATCH 128 /* SHRINK_BATCH */
#define MV_SWAP_CLUSTER_MAX 32

void mv_reclaim_init(struct mova_arena *a);
void mv_reclaim_destroy(struct mova_arena *a);

/* An allocation was refused by the budget (or may be): reclaim until the
 * zone's limit_want pages fit. True if they do now. No lock held. */
bool mv_reclaim_for_budget(struct mova_arena *a, struct mv_tcache *tc);

/* pages the budget allows beyond what is charged now (negative: over) */
long mv_budget_room(const struct mova_arena *a);

#endif
