/* SPDX-License-Identifier: MIT */
/*
 * handle.c: the handle table and the handle API (halloc, hfree, pin,
 * unpin, hsize, deref). The protocol, its invariants and its model are in
 * docs/MIGRATION.md; in short, every transition of an entry is one CAS on
 * its word, and exactly one party wins:
 *
 *   operation   from                                   to
 *   halloc      (owned by the caller: free entry)      LIVE|gen|loc (release store)
 *   pin         LIVE, gen, !MIGRATING, pins < max      pins + 1
 *   unpin       LIVE, gen, pins > 0                    pins - 1
 *   hfree       LIVE, gen, !MIGRATING, pins == 0       gen + 1, not LIVE
 *   migrate     LIVE, !MIGRATING, pins == 0            | MIGRATING, then loc' and ~MIGRATING
 *   deref       (a load: LIVE and gen, any pins or MIGRATING)
 *
 * Which may run at once: any of them on different entries; on one entry,
 * any number of pins, unpins and derefs; hfree and migrate race and one
 * loses (hfree waits for the copy to be published, then frees the new
 * copy; a migration that finds the object pinned or freed skips it).
 * A pin or hfree that finds MIGRATING waits: spins briefly, then sleeps on
 * the arena's migrate_seq futex, which migration bumps when it publishes.
 *
 * Memory an object leaves is reused only after an RCU grace period, so a
 * reader inside mova_read_lock keeps valid contents; until some thread has
 * entered a read section (mv_rcu_readers_ever) it is reused at once. The
 * flag is read after the hfree CAS and written (with a full fence) before
 * a reader's first load of an entry, so a reader that could have loaded
 * the old address is always seen.
 */
#include "hentry.h"
#include "slowpath.h"

#include <errno.h>
#include <string.h>

#include "large.h"

#define NONE32 UINT32_MAX

_Static_assert(offsetof(struct mova_arena, head) == 0, "the arena starts with its head");

/* ------------------------------------------------------------ decoding */

/* The entry a handle names, or NULL for another arena's (or no arena's)
 * handle, or an index no chunk holds. Any 32-bit index may be looked up
 * (handle.h); an entry never committed reads as zero, which is not LIVE,
 * and nothing writes an entry before its word has been seen LIVE (or owns
 * it, as halloc does), so no bound check is needed here. */
static inline _Atomic uint64_t *entry_of(struct mova_arena *a, mova_handle h)
{
	if (unlikely(mv_handle_tag(h) != a->tag))
		return NULL;
	return mv_htable_entry(&a->heap.htab, mv_handle_index(h));
}

/* ------------------------------------------------------------ allocation */

/* an entry back into the thread's cache */
static inline void hidx_put(struct mova_arena *a, struct mv_tcache *tc, uint32_t idx)
{
	if (unlikely(tc->nhidx == MV_HCACHE))
		mv_htable_drain(&a->heap.htab, tc->hidx, &tc->nhidx, MV_HCACHE / 2);
	tc->hidx[tc->nhidx] = idx;
	mv_rstore(tc->nhidx, tc->nhidx + 1); /* read by mv_htable_live */
}

/* the object at p is entry idx's: make the entry LIVE and count it */
static inline mova_handle entry_publish(struct mova_arena *a, struct mv_tcache *tc, uint32_t idx,
					uint64_t loc, size_t size)
{
	uint32_t gen = mv_hentry_make_live(mv_htable_entry(&a->heap.htab, idx), loc);
	mv_owner_add(&tc->live_bytes, (int64_t)size);
	return mv_handle_make(a->tag, gen, idx);
}

static mova_handle halloc_with(struct mova_arena *a, struct mv_tcache *tc, size_t size, bool zero,
			       bool rcl);

static mova_handle halloc(struct mova_arena *a, size_t size, bool zero, bool rcl)
{
	if (unlikely(!a)) {
		errno = EINVAL;
		return MOVA_NULL;
	}
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (unlikely(!tc) && mv_thread_dead) {
		/* past this thread's destructor (tcache.c): a cache for this
		 * one call, torn down after it; its slabs go to the bins */
		tc = mv_tcache_transient(&a->heap);
		if (!tc) {
			errno = ENOMEM;
			return MOVA_NULL;
		}
		mova_handle h = halloc_with(a, tc, size, zero, rcl);
		mv_tcache_destroy(&a->heap, tc);
		return h;
	}
	return halloc_with(a, tc, size, zero, rcl);
}

static mova_handle halloc_with(struct mova_arena *a, struct mv_tcache *tc, size_t size, bool zero,
			       bool rcl)
{
	if (unlikely(!tc) ||
	    (unlikely(!tc->nhidx) && !mv_htable_refill(&a->heap.htab, tc->hidx, &tc->nhidx))) {
		errno = ENOMEM;
		return MOVA_NULL;
	}
	/* taken now: the slow paths below may reclaim, and shrinkers free
	 * handles into this very cache */
	mv_fstat(tc, halloc_slow);
	uint32_t n = tc->nhidx - 1;
	uint32_t idx = tc->hidx[n];
	mv_rstore(tc->nhidx, n); /* read by mv_htable_live */
	void *p;
	if (likely(size <= MV_SMALL_MAX)) {
		unsigned cls = unlikely(rcl) ? mv_rcl_class(size) : mv_mov_class(size);
		struct mv_slab *s = tc->mov_cur[cls - MV_MOV_CLASS0];
		p = s->free;
		if (likely(p)) {
			mv_slab_pop(s);
		} else {
			p = mv_slowpath_mov(a, tc, cls);
			if (unlikely(!p)) {
				hidx_put(a, tc, idx);
				return MOVA_NULL;
			}
			s = tc->mov_cur[cls - MV_MOV_CLASS0];
		}
		mv_slab_set_backref(s, p, idx, size);
		if (zero)
			memset(p, 0, size);
		return entry_publish(a, tc, idx, mv_hentry_loc_in(s->pfn, s->addr, p), size);
	} else {
		p = mv_slowpath_large(a, tc, size, 0, rcl ? MIGRATE_RECLAIMABLE : MIGRATE_MOVABLE,
				      zero);
		if (unlikely(!p)) {
			hidx_put(a, tc, idx);
			return MOVA_NULL;
		}
		size_t pfn = mv_zone_pfn(&a->heap.zone, p);
		mv_large_set_backref(&a->heap.zone, pfn, idx);
		return entry_publish(a, tc, idx, mv_hentry_loc_in(pfn, p, p), size);
	}
}

/* halloc's common case, with nothing to save and restore: the thread's
 * cache for a is the one it used last, an entry is cached, and the current
 * slab of the class has a free slot. Anything else is halloc's. */
mova_handle mova_halloc(mova_arena *a, size_t size)
{
	if (likely(a && size <= MV_SMALL_MAX && mv_tls_last.h == &a->heap &&
		   mv_tls_last.epoch == a->heap.epoch)) {
		struct mv_tcache *tc = mv_tls_last.tc;
		uint32_t n = tc->nhidx;
		struct mv_slab *s = tc->mov_cur[mv_mov_class(size) - MV_MOV_CLASS0];
		void *p = s->free;
		if (likely(n && p)) {
			uint32_t idx = tc->hidx[n - 1];
			mv_rstore(tc->nhidx, n - 1); /* read by mv_htable_live */
			s->free = mv_fl_next(s, p);
			s->used++;
			mv_slab_set_backref(s, p, idx, size);
			mv_fstat(tc, halloc_fast);
			return entry_publish(a, tc, idx, mv_hentry_loc_in(s->pfn, s->addr, p),
					     size);
		}
	}
	return halloc(a, size, false, false);
}
mova_handle mova_hcalloc(mova_arena *a, size_t size)
{
	return halloc(a, size, true, false);
}
mova_handle mova_halloc_flags(mova_arena *a, size_t size, unsigned flags)
{
	if (unlikely(flags & ~(unsigned)(MOVA_HF_ZERO | MOVA_HF_RECLAIMABLE))) {
		errno = EINVAL;
		return MOVA_NULL;
	}
	return halloc(a, size, flags & MOVA_HF_ZERO, flags & MOVA_HF_RECLAIMABLE);
}

/* The size asked for of the object at p (its slot or large head). The
 * caller owns the object (hfree) or re-checks the entry afterwards
 * (hsize): a racing free may leave a descriptor or slab header in any
 * state, so everything read is checked before it is followed, and a
 * nonsense answer is 0. */
static size_t object_size(struct mova_arena *a, void *p)
{
	(void)a;
	struct mv_page *pg = mv_zone_page_of(p);
	uint8_t type = mv_pg_load(pg->type);
	if (type == PG_SLAB) {
		struct mv_slab *s = mv_pg_load(pg->slab);
		if (!s)
			return 0;
		uint8_t cls = mv_rload(s->cls);
		uint64_t *br = mv_rload(s->backref);
		char *addr = mv_rload(s->addr);
		if (!mv_is_handle_class(cls) || !br || (char *)p < addr)
			return 0;
		uint32_t slot = mv_class_slot(&mv_classes[cls], (size_t)((char *)p - addr));
		if (slot >= mv_classes[cls].nregs)
			return 0;
		return mv_backref_size(mv_rload(br[slot]));
	}
	return type == PG_LARGE ? mv_large_size(pg) : 0;
}

/* the entry of h is free now (w is the word it had): give back the object
 * and the entry, in every case */
static MV_NOINLINE int hfree_finish(struct mova_arena *a, _Atomic uint64_t *e, mova_handle h,
				    uint64_t w)
{
	void *p = mv_hentry_addr(&a->heap, w);
	bool retired = MV_H_GEN(w) == MV_H_GEN_MASK;
	if (unlikely(retired))
		mv_relaxed_add(&a->heap.htab.nr_retired, 1);
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (tc)
		mv_fstat(tc, hfree_slow);
	/* the object is ours now (the CAS above), so its slab or large run
	 * is what the entry said: no re-checks as object_size makes */
	struct mv_page *pg = mv_pfn_to_page(&a->heap.zone, mv_hentry_pfn(w));
	struct mv_slab *s = NULL;
	size_t size;
	if (likely(mv_pg_load(pg->type) == PG_SLAB)) {
		s = mv_pg_load(pg->slab);
		size = mv_backref_size(mv_slab_backref(s, p));
	} else {
		size = object_size(a, p);
	}
	if (unlikely(!tc)) {
		/* no thread cache (out of memory): the slow, cache-less way */
		if (!retired) {
			mv_lock(&a->heap.htab.lock);
			atomic_store_explicit(e,
					      (atomic_load_explicit(e, memory_order_relaxed) &
					       (MV_H_GEN_MASK << MV_H_GEN_SHIFT)) |
						  a->heap.htab.free_head,
					      memory_order_relaxed);
			a->heap.htab.free_head = mv_handle_index(h);
			a->heap.htab.nr_free++;
			mv_unlock(&a->heap.htab.lock);
		}
		mv_relaxed_add(&a->heap.dead_live_bytes, -(int64_t)size);
		if (!mv_rcu_readers_ever()) {
			mv_mov_free_slots(&a->heap, NULL, &p, 1);
		} else if (!mv_rcu_in_reader()) {
			mv_rcu_synchronize();
			mv_mov_free_slots(&a->heap, NULL, &p, 1);
		} else {
			/* no cache, no memory for a batch, and we may not wait for
			 * readers inside our own section: the slot is lost */
			static _Atomic int warned;
			mv_warn_once(&warned,
				     "hfree: out of memory inside a read section; "
				     "%zu bytes of arena memory are lost",
				     size);
		}
		return 0;
	}
	if (likely(!retired))
		hidx_put(a, tc, mv_handle_index(h));
	mv_owner_add(&tc->live_bytes, -(int64_t)size);
	mv_slowpath_tick(a); /* frees make work for kcompactd too */
	if (likely(!mv_rcu_readers_ever())) {
		/* nobody can hold the old address: reuse at once */
		if (s && atomic_load_explicit(&s->owner, memory_order_relaxed) == tc) {
			mv_slab_push(s, p);
			s->used--;
		} else {
			mv_mov_free_slots(&a->heap, tc, &p, 1);
		}
		return 0;
	}
	mv_tcache_defer_slot(&a->heap, tc, p);
	return 0;
}

int mova_hfree(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (unlikely(!e))
		return EINVAL;
	int err = 0;
	uint64_t w = mv_hentry_free(&a->heap, e, h, &err);
	if (unlikely(!w))
		return err;
	/* the common case, with nothing to save and restore: this thread's
	 * cache, a slab it allocates from, no reader ever, room for the entry */
	struct mv_page *pg;
	char *p = mv_hentry_obj(&a->heap, w, &pg);
	if (likely(mv_tls_last.h == &a->heap && mv_tls_last.epoch == a->heap.epoch &&
		   MV_H_GEN(w) != MV_H_GEN_MASK && mv_pg_load(pg->type) == PG_SLAB)) {
		struct mv_tcache *tc = mv_tls_last.tc;
		struct mv_slab *s = mv_pg_load(pg->slab);
		uint32_t n = tc->nhidx;
		if (likely(n < MV_HCACHE)) {
			struct mv_rcu_batch *b = tc->pending;
			bool readers = mv_rcu_readers_ever();
			if (likely(!readers
				       ? atomic_load_explicit(&s->owner, memory_order_relaxed) == tc
				       : b && b->n < MV_RCU_BATCH - 1)) {
				size_t size = mv_backref_size(mv_slab_backref(s, p));
				tc->hidx[n] = mv_handle_index(h);
				mv_rstore(tc->nhidx, n + 1); /* read by mv_htable_live */
				mv_owner_add(&tc->live_bytes, -(int64_t)size);
				if (!readers) {
					mv_slab_push(s, p);
					s->used--;
				} else {
					/* after a grace period (the batch's last
					 * slot is mv_tcache_defer_slot's: it sends
					 * the batch) */
					b->slot[b->n++] = p;
				}
				mv_fstat(tc, hfree_fast);
				return 0;
			}
		}
	}
	return hfree_finish(a, e, h, w);
}

/* ------------------------------------------------------------ access */

void *mova_pin(mova_arena *a, mova_handle h)
{
	if (unlikely(!a)) {
		errno = EINVAL;
		return NULL;
	}
	return mv_hentry_pin(&a->heap, entry_of(a, h), h);
}

int mova_unpin(mova_arena *a, mova_handle h)
{
	return mv_hentry_unpin(a ? entry_of(a, h) : NULL, h);
}

size_t mova_hsize(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (!e)
		return 0;
	for (;;) {
		uint64_t w = atomic_load_explicit(e, memory_order_acquire);
		if (!mv_hentry_matches(w, h))
			return 0;
		size_t size = object_size(a, mv_hentry_addr(&a->heap, w));
		uint64_t w2 = atomic_load_explicit(e, memory_order_acquire);
		const uint64_t mask = ~(MV_H_PIN_MASK | MV_H_MIGRATING);
		if ((w & mask) == (w2 & mask))
			return size;
	}
}

void mova_read_lock(void)
{
	mv_rcu_read_lock();
}
void mova_read_unlock(void)
{
	mv_rcu_read_unlock();
}

#undef mova_deref
const void *mova_deref(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (likely(e)) {
		uint64_t w = atomic_load_explicit(e, memory_order_acquire);
		if (likely(mv_hentry_matches(w, h)))
			return mv_hentry_addr(&a->heap, w);
	}
	errno = EINVAL;
	return NULL;
}
