/* SPDX-License-Identifier: MIT */
/* migrate.c: see migrate.h and docs/MIGRATION.md. */
#include "migrate.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "large.h"
#include "os.h"

_Atomic uint64_t mv_migrate_reason_count[MR_TYPES];

bool mv_object_entry(struct mv_heap *h, void *src, uint32_t *idx, size_t *size, unsigned *cls)
{
	struct mv_zone *z = &h->zone;
	size_t pfn = mv_zone_pfn(z, src);
	struct mv_page *pg = mv_pfn_to_page(z, pfn);
	uint8_t type = __atomic_load_n(&pg->type, __ATOMIC_ACQUIRE);
	if (type == PG_SLAB) {
		struct mv_slab *s = mv_pg_load(pg->slab);
		uint64_t br = mv_rload(mv_slab_backrefs(s)[mv_slab_slot(s, src)]);
		*idx = (uint32_t)br;
		*size = (size_t)(br >> 32);
		*cls = s->cls;
	} else if (type == PG_LARGE) {
		*idx = (uint32_t)mv_pg_load(mv_pfn_to_page(z, pfn + 1)->priv);
		*size = mv_large_size(pg);
		*cls = MV_NR_CLASSES;
	} else {
		return false;
	}
	/* idx was read racily: it may name no entry at all */
	_Atomic uint64_t *e = mv_htable_entry(&h->htab, *idx);
	if (!e)
		return false;
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	return (w & MV_H_LIVE) && MV_H_LOC(w) == (uint64_t)((char *)src - z->base) >> 4;
}

/* Move one frozen object; the destination's back-reference first. */
static void move_object(struct mv_heap *h, uint32_t idx, void *src, void *dst, size_t size,
			unsigned cls)
{
	memcpy(dst, src, size);
	struct mv_zone *z = &h->zone;
	if (cls < MV_NR_CLASSES) {
		struct mv_slab *d = mv_slab_of(z, dst);
		mv_rstore(mv_slab_backrefs(d)[mv_slab_slot(d, dst)],
			  (uint64_t)idx | ((uint64_t)size << 32));
	} else {
		mv_pg_store(mv_pfn_to_page(z, mv_zone_pfn(z, dst) + 1)->priv, (uint64_t)idx);
	}
	mv_hentry_publish(h, idx, mv_hentry_loc(h, dst));
}

int mv_migrate_pages(struct mv_heap *h, void **srcs, unsigned n, mv_new_object_fn get_new,
		     mv_put_old_fn put_old, void *priv, enum migrate_mode mode,
		     enum migrate_reason reason, unsigned *nr_succeeded)
{
	unsigned done = 0, failed = 0, retry = 0;
	int passes = mode == MIGRATE_ASYNC ? NR_MAX_MIGRATE_PAGES_RETRY
					   : NR_MAX_MIGRATE_ASYNC_RETRY + NR_MAX_MIGRATE_SYNC_RETRY;
	int ret = 0;
	for (int pass = 0; pass < passes; pass++) {
		retry = 0;
		for (unsigned i = 0; i < n; i++) {
			void *src = srcs[i];
			if (!src)
				continue;
			uint32_t idx;
			size_t size;
			unsigned cls;
			if (!mv_object_entry(h, src, &idx, &size, &cls)) {
				srcs[i] = NULL; /* freed meanwhile: nothing to move */
				continue;
			}
			uint64_t w;
			int r = mv_hentry_freeze(h, src, idx, &w);
			if (r == -ENOENT) {
				srcs[i] = NULL;
				continue;
			}
			if (r == -EAGAIN) {
				retry++;
				continue;
			}
			/* frozen: nothing can free or replace the object now, so read
			 * what it is again; between the first look and the freeze a
			 * large run may have been freed and its pages reused */
			uint32_t idx2;
			size_t size2;
			unsigned cls2;
			if (!mv_object_entry(h, src, &idx2, &size2, &cls2) || idx2 != idx ||
			    (cls == MV_NR_CLASSES) != (cls2 == MV_NR_CLASSES)) {
				mv_hentry_publish(h, idx, MV_H_LOC(w));
				srcs[i] = NULL;
				continue;
			}
			size = size2;
			cls = cls2;
			void *dst = get_new(h, cls, size, priv);
			if (!dst) {
				/* -ENOMEM: thaw and stop the batch */
				mv_hentry_publish(h, idx, MV_H_LOC(w));
				ret = -ENOMEM;
				retry = 0;
				goto out;
			}
			move_object(h, idx, src, dst, size, cls);
			put_old(h, src, priv);
			srcs[i] = NULL;
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
		failed += srcs[i] != NULL;
	return (int)failed;
}
