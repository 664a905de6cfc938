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
 * The scan that finds an object reads its entry from the back-reference
 * once (slab.h, large.h) and hands it to mv_migrate_pages with the object.
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

/* An object to migrate: where it is, its handle entry and its kind (a
 * slot or a large run), looked up once, by the scan that found it
 * (mv_object_entry, mv_migrate_slab). */
struct mv_migrate_obj {
	void *src;
	uint32_t idx;
	bool large;
};

/* Where an object of size bytes and class cls (or MV_NR_CLASSES for a
 * large run) goes; NULL when there is no room (-ENOMEM). */
typedef void *(*mv_new_object_fn)(struct mv_heap *h, unsigned cls, size_t size, void *priv);

/*
 * The old copies of moved objects, freed after an RCU grace period, and
 * the source slabs that held them, put back (mv_slab_putback) after it:
 * one grace period for many batches. A grace period can cost 10 ms while
 * a reader is inside a section (liburcu-bp sleeps between polls), so a
 * migrator waits for one only when the arrays fill, at its end, or when
 * it needs the freed pages at once (mv_migrate_old_flush).
 */
struct mv_migrate_old {
	struct mv_heap *h;
	void **old;
	unsigned nr_old;
	struct mv_slab **done;
	unsigned nr_done;
};
/* false (and nothing to destroy) when the metadata pool is exhausted */
bool mv_migrate_old_init(struct mv_migrate_old *o, struct mv_heap *h);
/* flush, then free the arrays */
void mv_migrate_old_destroy(struct mv_migrate_old *o);
/* the isolated slab s is done with as a source: put it back after the
 * grace period (those then empty go to the buddy allocator) */
void mv_migrate_old_add_slab(struct mv_migrate_old *o, struct mv_slab *s);
/* wait for the grace period (when readers exist), free the old copies,
 * put the source slabs back */
void mv_migrate_old_flush(struct mv_migrate_old *o);

/* The live object at src (a slot of a movable slab or a movable large
 * run's head), its entry read from the back-reference: *obj filled in;
 * false for a free slot or anything else. */
bool mv_object_entry(struct mv_heap *h, void *src, struct mv_migrate_obj *obj);

/* Migrate the objects at objs[0..n): returns how many were not migrated
 * (left in place, pinned through every pass), or -ENOMEM when get_new ran
 * out (the rest stay). objs[i].src becomes NULL for each object that
 * moved (its old copy is on old) or turned out not to be live. Only the
 * entries named are frozen; once frozen, an object's descriptors are read
 * again for its size (a large run may have been freed and its pages and
 * entry reused since the scan), and it is given back if its entry or kind
 * changed. *nr_succeeded counts the moves. Counts
 * pgmigrate_success and pgmigrate_fail (objects). */
int mv_migrate_pages(struct mv_heap *h, struct mv_migrate_obj *objs, unsigned n,
		     mv_new_object_fn get_new, void *priv, struct mv_migrate_old *old,
		     enum migrate_mode mode, enum migrate_reason reason, unsigned *nr_succeeded);

/* Migrate every live object of the isolated slab s (mv_slab_isolate): the
 * sum of mv_migrate_pages's results over its batches, or -ENOMEM. The
 * slab itself stays isolated: the caller gives it to old or puts it back. */
int mv_migrate_slab(struct mv_heap *h, struct mv_slab *s, mv_new_object_fn get_new, void *priv,
		    struct mv_migrate_old *old, enum migrate_mode mode, enum migrate_reason reason);

/* Per-reason success counts, for stats and tests. */
extern _Atomic uint64_t mv_migrate_reason_count[MR_TYPES];

#endif
