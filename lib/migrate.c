/* SPDX-License-Identifier: MIT */
/* migrate.c: see migrate.h and docs/MIGRATION.md. */
#include "migrate.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "large.h"
#include "os.h"

_Atomic uint64_t mv_migrate_reason_count[MR_TYPES];

bool mv_object_entry(struct mova_arena *a, void *src, uint32_t *idx, size_t *size, unsigned *cls)
{
	struct mv_zone *z = &a->zone;
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
	_Atomic uint64_t *e = mv_htable_entry(&a->htab, *idx);
	if (!e)
		return false;
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	return (w & MV_H_LIVE) && MV_H_LOC(w) == (uint64_t)((char *)src - z->base) >> 4;
}

/* freeze: 0, -EAGAIN (pinned or being migrated), -ENOENT (not a live object) */
static int freeze(struct mova_arena *a, void *src, uint32_t idx, uint64_t *wout)
{
	_Atomic uint64_t *e = mv_htable_entry(&a->htab, idx);
	uint64_t loc = (uint64_t)((char *)src - a->zone.base) >> 4;
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	for (;;) {
		if (!(w & MV_H_LIVE) || MV_H_LOC(w) != loc)
			return -ENOENT;
		if ((w & MV_H_MIGRATING) || MV_H_PINS(w))
			return -EAGAIN;
		/* acquire: the writes of the last pin holder (released by its unpin) are copied */
		if (atomic_compare_exchange_weak_explicit(
			e, &w, w | MV_H_MIGRATING, memory_order_acq_rel, memory_order_acquire)) {
			*wout = w | MV_H_MIGRATING;
			return 0;
		}
	}
}

/* Clear MIGRATING keeping every other bit; loc becomes newloc. Never a
 * plain store: see docs/MIGRATION.md, trap 1. */
static void publish(struct mova_arena *a, uint32_t idx, uint64_t newloc)
{
	_Atomic uint64_t *e = mv_htable_entry(&a->htab, idx);
	uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
	uint64_t nw;
	do
		nw = (w & ~(MV_H_LOC_MASK | MV_H_MIGRATING)) | newloc;
	/* seq_cst, not just release: the waiter count and readers flag read
	 * after it form store-load pairs with pin's and the reader's side */
	while (!atomic_compare_exchange_weak_explicit(e, &w, nw, memory_order_seq_cst,
						      memory_order_relaxed));
}

void mv_migrate_wake(struct mova_arena *a)
{
	atomic_fetch_add(&a->migrate_seq, 1);
	if (atomic_load(&a->migrate_waiters))
		mv_os_futex_wake(&a->migrate_seq, INT32_MAX);
}

/* Move one frozen object; the destination's back-reference first. */
static void move_object(struct mova_arena *a, uint32_t idx, void *src, void *dst, size_t size,
			unsigned cls)
{
	memcpy(dst, src, size);
	struct mv_zone *z = &a->zone;
	if (cls < MV_NR_CLASSES) {
		struct mv_slab *d = mv_slab_of(z, dst);
		mv_rstore(mv_slab_backrefs(d)[mv_slab_slot(d, dst)],
			  (uint64_t)idx | ((uint64_t)size << 32));
	} else {
		mv_pg_store(mv_pfn_to_page(z, mv_zone_pfn(z, dst) + 1)->priv, (uint64_t)idx);
	}
	publish(a, idx, (uint64_t)((char *)dst - z->base) >> 4);
	if (atomic_load_explicit(&a->migrate_waiters, memory_order_seq_cst))
		mv_migrate_wake(a);
}

int mv_migrate_pages(struct mova_arena *a, void **srcs, unsigned n, mv_new_object_fn get_new,
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
			if (!mv_object_entry(a, src, &idx, &size, &cls)) {
				srcs[i] = NULL; /* freed meanwhile: nothing to move */
				continue;
			}
			uint64_t w;
			int r = freeze(a, src, idx, &w);
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
			if (!mv_object_entry(a, src, &idx2, &size2, &cls2) || idx2 != idx ||
			    (cls == MV_NR_CLASSES) != (cls2 == MV_NR_CLASSES)) {
				publish(a, idx, MV_H_LOC(w));
				srcs[i] = NULL;
				continue;
			}
			size = size2;
			cls = cls2;
			void *dst = get_new(a, cls, size, priv);
			if (!dst) {
				/* -ENOMEM: thaw and stop the batch */
				publish(a, idx, MV_H_LOC(w));
				ret = -ENOMEM;
				retry = 0;
				goto out;
			}
			move_object(a, idx, src, dst, size, cls);
			put_old(a, src, priv);
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
	mv_migrate_wake(a);
	mv_count(&a->vm, MV_VM_pgmigrate_success, done);
	mv_count(&a->vm, MV_VM_pgmigrate_fail, failed);
	mv_relaxed_add(&mv_migrate_reason_count[reason], done);
	if (reason == MR_MEMPOLICY_MBIND || reason == MR_NUMA_MISPLACED)
		mv_count(&a->vm, MV_VM_mempolicy_migrated, done);
	if (nr_succeeded)
		*nr_succeeded = done;
	if (ret)
		return ret;
	failed = 0;
	for (unsigned i = 0; i < n; i++)
		failed += srcs[i] != NULL;
	return (int)failed;
}
