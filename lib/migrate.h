/* SPDX-License-Identifier: MIT */
/*
 * migrate.h: moving movable objects (mm/migrate.c). An object is a slot of
 * a movable slab or a movable large run; its handle entry is found through
 * the slab's back-reference (or the run's second descriptor). One object
 * moves in three steps, each a single atomic step on its entry:
 *   freeze   CAS: LIVE, loc == src, pins == 0, !MIGRATING  ->  | MIGRATING
 *            (folio_ref_freeze; a pinned object gives -EAGAIN)
 *   copy     memcpy of the bytes asked for, the back-reference of dst
 *   publish  CAS: loc := dst, MIGRATING cleared, every other bit kept
 *            (remove_migration_ptes); waiters on migrate_seq are woken
 * The old copy is reclaimed only after an RCU grace period (one per
 * batch), so readers inside mova_read_lock keep valid contents.
 * mv_migrate_pages retries -EAGAIN objects as the kernel does: ASYNC makes
 * NR_MAX_MIGRATE_PAGES_RETRY passes without waiting; SYNC_LIGHT and SYNC
 * make NR_MAX_MIGRATE_ASYNC_RETRY quick passes and then
 * NR_MAX_MIGRATE_SYNC_RETRY passes that wait a little between tries.
 */
#ifndef MV_MIGRATE_H
#define MV_MIGRATE_H

#include "hentry.h"
#include "slab.h"

enum migrate_mode { MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT, MIGRATE_SYNC };

enum migrate_reason {
	MR_COMPACTION,
	MR_MEMORY_FAILURE,
	MR_MEMORY_HOTPLUG,
	MR_SYSCALL,
	MR_MEMPOLICY_MBIND,
	MR_NUMA_MISPLACED,
	MR_CONTIG_RANGE,
	MR_LONGTERM_PIN,
	MR_DEMOTION,
	MR_DAMON,
	MR_TYPES
};

#define NR_MAX_MIGRATE_PAGES_RETRY 10
#define NR_MAX_MIGRATE_ASYNC_RETRY 3
#define NR_MAX_MIGRATE_SYNC_RETRY 7

/* Where an object of size bytes and class cls (or MV_NR_CLASSES for a
 * large run) goes; NULL when there is no room (-ENOMEM). */
typedef void *(*mv_new_object_fn)(struct mv_heap *h, unsigned cls, size_t size, void *priv);
/* Told of each old location once its object has moved: the caller frees
 * it after a grace period. */
typedef void (*mv_put_old_fn)(struct mv_heap *h, void *old, void *priv);

/* The handle entry and size of the object at src, if src holds a live
 * object; false for a free slot. */
bool mv_object_entry(struct mv_heap *h, void *src, uint32_t *idx, size_t *size, unsigned *cls);

/* Migrate the objects at srcs[0..n): returns how many were not migrated
 * (left in place, pinned through every pass), or -ENOMEM when get_new ran
 * out (the rest stay). srcs[i] becomes NULL for each object that moved
 * (put_old was told) or turned out not to be live. *nr_succeeded counts
 * the moves. Counts pgmigrate_success and pgmigrate_fail (objects). */
int mv_migrate_pages(struct mv_heap *h, void **srcs, unsigned n, mv_new_object_fn get_new,
		     mv_put_old_fn put_old, void *priv, enum migrate_mode mode,
		     enum migrate_reason reason, unsigned *nr_succeeded);

/* Per-reason success counts, for stats and tests. */
extern _Atomic uint64_t mv_migrate_reason_count[MR_TYPES];

#endif
