/* SPDX-License-Identifier: MIT */
/* migrate.c: see migrate.h and docs/MIGRATION.md. */
#include "migrate.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "large.h"
#include "os.h"
#include "rcu.h"

#define MV_OLD_MAX 8000
#define MV_DONE_MAX 4096

_Atomic uint64_t mv_migrate_reason_count[MR_TYPES];

/* ------------------------------------------------------------ old copies */

bool mv_migrate_old_init(struct mv_migrate_old *o, struct mv_heap *h)
{
	o->h = h;
	o->nr_old = o->nr_done = 0;
	o->old = mv_meta_alloc(&h->meta, MV_OLD_MAX * sizeof(void *));
	o->done = mv_meta_alloc(&h->meta, MV_DONE_MAX * sizeof(void *));
	if (!o->old || !o->done) {
		mv_meta_free(&h->meta, o->old, MV_OLD_MAX * sizeof(void *));
		mv_meta_free(&h->meta, o->done, MV_DONE_MAX * sizeof(void *));
		return false;
	}
	return true;
}

void mv_migrate_old_destroy(struct mv_migrate_old *o)
{
	mv_migrate_old_flush(o);
	mv_meta_free(&o->h->meta, o->done, MV_DONE_MAX * sizeof(void *));
	mv_meta_free(&o->h->meta, o->old, MV_OLD_MAX * sizeof(void *));
}

void mv_migrate_old_flush(struct mv_migrate_old *o)
{
	if (!o->nr_old && !o->nr_done)
		return;
	if (o->nr_old && mv_rcu_readers_ever())
		mv_rcu_synchronize();
	mv_mov_free_slots(o->h, NULL, o->old, o->nr_old);
	o->nr_old = 0;
	for (unsigned i = 0; i < o->nr_done; i++)
		mv_slab_putback(o->h, o->done[i]);
	o->nr_done = 0;
}

static void old_add(struct mv_migrate_old *o, void *p)
{
	if (o->nr_old == MV_OLD_MAX)
		mv_migrate_old_flush(o);
	o->old[o->nr_old++] = p;
}

void mv_migrate_old_add_slab(struct mv_migrate_old *o, struct mv_slab *s)
{
	if (o->nr_done == MV_DONE_MAX)
		mv_migrate_old_flush(o);
	o->done[o->nr_done++] = s;
}

/* ------------------------------------------------------------ objects */

/* What the object at src is by its descriptors: the entry its
 * back-reference names, its size and class (MV_NR_CLASSES: a large run).
 * Racy unless the object is frozen. */
static bool object_of(struct mv_heap *h, void *src, uint32_t *idx, size_t *size, unsigned *cls)
{
	struct mv_zone *z = &h->zone;
	size_t pfn = mv_zone_pfn(z, src);
	struct mv_page *pg = mv_pfn_to_page(z, pfn);
	uint8_t type = __atomic_load_n(&pg->type, __ATOMIC_ACQUIRE);
	if (type == PG_SLAB) {
		struct mv_slab *s = mv_pg_load(pg->slab);
		uint64_t br = mv_slab_backref(s, src);
		*idx = mv_backref_idx(br);
		*size = mv_backref_size(br);
		*cls = s->cls;
		return true;
	}
	if (type == PG_LARGE) {
		*idx = mv_large_backref(z, pfn);
		*size = mv_large_size(pg);
		*cls = MV_NR_CLASSES;
		return true;
	}
	return false;
}

bool mv_object_entry(struct mv_heap *h, void *src, struct mv_migrate_obj *obj)
{
	size_t size;
	unsigned cls;
	obj->src = src;
	if (!object_of(h, src, &obj->idx, &size, &cls))
		return false;
	obj->large = cls == MV_NR_CLASSES;
	return mv_hentry_at(h, obj->idx, src);
}

/* Move one frozen object; the destination's back-reference first. */
static void move_object(struct mv_heap *h, uint32_t idx, void *src, void *dst, size_t size,
			unsigned cls)
{
	memcpy(dst, src, size);
	struct mv_zone *z = &h->zone;
	if (cls < MV_NR_CLASSES)
		mv_slab_set_backref(mv_slab_of(z, dst), dst, idx, size);
	else
		mv_large_set_backref(z, mv_zone_pfn(z, dst), idx);
	mv_hentry_publish(h, idx, mv_hentry_loc(h, dst));
}

int mv_migrate_pages(struct mv_heap *h, struct mv_migrate_obj *objs, unsigned n,
		     mv_new_object_fn get_new, void *priv, struct mv_migrate_old *old,
		     enum migrate_mode mode, enum migrate_reason reason, unsigned *nr_succeeded)
{
	unsigned done = 0, failed = 0, retry = 0;
	int passes = mode == MIGRATE_ASYNC ? NR_MAX_MIGRATE_PAGES_RETRY
					   : NR_MAX_MIGRATE_ASYNC_RETRY + NR_MAX_MIGRATE_SYNC_RETRY;
	int ret = 0;
	for (int pass = 0; pass < passes; pass++) {
		retry = 0;
		for (unsigned i = 0; i < n; i++) {
			void *src = objs[i].src;
			if (!src)
				continue;
			uint32_t idx = objs[i].idx;
			uint64_t w;
			int r = mv_hentry_freeze(h, src, idx, &w);
			if (r == -ENOENT) {
				objs[i].src = NULL; /* freed meanwhile: nothing to move */
				continue;
			}
			if (r == -EAGAIN) {
				retry++;
				continue;
			}
			/* frozen: nothing can free or replace the object now, so
			 * read what it is; since the scan a large run may have been
			 * freed and its pages reused */
			uint32_t idx2;
			size_t size;
			unsigned cls;
			if (!object_of(h, src, &idx2, &size, &cls) || idx2 != idx ||
			    objs[i].large != (cls == MV_NR_CLASSES)) {
				mv_hentry_publish(h, idx, MV_H_LOC(w));
				objs[i].src = NULL;
				continue;
			}
			void *dst = get_new(h, cls, size, priv);
			if (!dst) {
				/* -ENOMEM: thaw and stop the batch */
				mv_hentry_publish(h, idx, MV_H_LOC(w));
				ret = -ENOMEM;
				retry = 0;
				goto out;
			}
			move_object(h, idx, src, dst, size, cls);
			old_add(old, src);
			objs[i].src = NULL;
			done++;
		}
		if (!retry)
			break;
		if (pass >= NR_MAX_MIGRATE_ASYNC_RETRY - 1 && mode != MIGRATE_ASYNC) {
			/* the sync passes: give pin holders a moment (SYNC waits longer) */
			struct timespec ts = {0, mode == MIGRATE_SYNC ? 1000000 : 100000};
			nanosleep(&ts, NULL);
		}
	}
out:
	failed = retry; /* pinned through every pass */
	mv_hentry_wake(h);
	mv_count(&h->vm, MV_VM_pgmigrate_success, done);
	mv_count(&h->vm, MV_VM_pgmigrate_fail, failed);
	mv_relaxed_add(&mv_migrate_reason_count[reason], done);
	if (reason == MR_MEMPOLICY_MBIND || reason == MR_NUMA_MISPLACED)
		mv_count(&h->vm, MV_VM_mempolicy_migrated, done);
	if (nr_succeeded)
		*nr_succeeded = done;
	if (ret)
		return ret;
	failed = 0;
	for (unsigned i = 0; i < n; i++)
		failed += objs[i].src != NULL;
	return (int)failed;
}

#define MV_MIGRATE_BATCH 256

int mv_migrate_slab(struct mv_heap *h, struct mv_slab *s, mv_new_object_fn get_new, void *priv,
		    struct mv_migrate_old *old, enum migrate_mode mode, enum migrate_reason reason)
{
	struct mv_migrate_obj batch[MV_MIGRATE_BATCH];
	uint32_t nbump = mv_slab_nbump(s);
	int left = 0;
	for (uint32_t first = 0; first < nbump; first += MV_MIGRATE_BATCH) {
		unsigned n = 0;
		for (uint32_t k = first; k < nbump && k < first + MV_MIGRATE_BATCH; k++) {
			void *slot = mv_slab_slot_addr(s, k);
			uint32_t idx = mv_backref_idx(mv_slab_backref(s, slot));
			if (mv_hentry_at(h, idx, slot))
				batch[n++] = (struct mv_migrate_obj){slot, idx, false};
		}
		if (!n)
			continue;
		int r = mv_migrate_pages(h, batch, n, get_new, priv, old, mode, reason, NULL);
		if (r < 0)
			return r;
		left += r;
	}
	return left;
}
