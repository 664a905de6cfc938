/* SPDX-License-Identifier: MIT */
/* hentry.c: the slow halves of the handle entry's transitions (hentry.h). */
#include "hentry.h"

#include "os.h"

void mv_hentry_wait(struct mv_heap *hp, _Atomic uint64_t *e, uint64_t *w)
{
	/* a copy of a small object takes well under this */
	for (int i = 0; i < 256; i++) {
		mv_cpu_relax();
		*w = atomic_load_explicit(e, memory_order_acquire);
		if (!(*w & MV_H_MIGRATING))
			return;
	}
	for (;;) {
		/* seq before announcing ourselves and re-checking: either the
		 * re-check sees the publish, or the migrator sees us and bumps
		 * seq after we read it (docs/MIGRATION.md section 6) */
		uint32_t seq = atomic_load(&hp->migrate_seq);
		atomic_fetch_add(&hp->migrate_waiters, 1);
		*w = atomic_load(e);
		if (!(*w & MV_H_MIGRATING)) {
			atomic_fetch_sub(&hp->migrate_waiters, 1);
			return;
		}
		mv_os_futex_wait(&hp->migrate_seq, seq, 1000000);
		atomic_fetch_sub(&hp->migrate_waiters, 1);
		*w = atomic_load_explicit(e, memory_order_acquire);
		if (!(*w & MV_H_MIGRATING))
			return;
	}
}

MV_NOINLINE void *mv_hentry_pin_slow(struct mv_heap *hp, _Atomic uint64_t *e, mova_handle h)
{
	if (unlikely(!e)) {
		errno = EINVAL;
		return NULL;
	}
	uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
	for (;;) {
		if (unlikely(!mv_hentry_matches(w, h))) {
			errno = EINVAL;
			return NULL;
		}
		if (unlikely(w & MV_H_MIGRATING)) {
			mv_hentry_wait(hp, e, &w);
			continue;
		}
		if (unlikely(MV_H_PINS(w) >= MOVA_MAX_PINS)) {
			errno = EOVERFLOW;
			return NULL;
		}
		if (likely(atomic_compare_exchange_weak_explicit(
			e, &w, w + MV_H_PIN_ONE, memory_order_acquire, memory_order_relaxed)))
			return mv_hentry_addr(hp, w);
	}
}

MV_NOINLINE int mv_hentry_unpin_slow(_Atomic uint64_t *e, mova_handle h)
{
	if (unlikely(!e))
		return EINVAL;
	uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
	for (;;) {
		if (unlikely(!mv_hentry_matches(w, h) || !MV_H_PINS(w)))
			return EINVAL;
		if (likely(atomic_compare_exchange_weak_explicit(
			e, &w, w - MV_H_PIN_ONE, memory_order_release, memory_order_relaxed)))
			return 0;
	}
}

MV_NOINLINE uint64_t mv_hentry_free_slow(struct mv_heap *hp, _Atomic uint64_t *e, mova_handle h,
					 int *err)
{
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	for (;;) {
		if (unlikely(!mv_hentry_matches(w, h))) {
			*err = EINVAL;
			return 0;
		}
		if (unlikely(MV_H_PINS(w))) {
			*err = EBUSY;
			return 0;
		}
		if (unlikely(w & MV_H_MIGRATING)) {
			mv_hentry_wait(hp, e, &w);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			e, &w, mv_hentry_free_word(h), memory_order_seq_cst, memory_order_acquire))
			return w;
	}
}

int mv_hentry_freeze(struct mv_heap *hp, void *src, uint32_t idx, uint64_t *wout)
{
	_Atomic uint64_t *e = mv_htable_entry(&hp->htab, idx);
	uint64_t loc = mv_hentry_loc(hp, src);
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	for (;;) {
		if (!(w & MV_H_LIVE) || MV_H_LOC(w) != loc)
			return -ENOENT;
		if ((w & MV_H_MIGRATING) || MV_H_PINS(w))
			return -EAGAIN;
		/* acquire: the writes of the last pin holder (released by its unpin) are copied */
		MV_ASSERT(MV_H_LOC(w) == loc && !(w & MV_H_MIGRATING));
		if (atomic_compare_exchange_weak_explicit(
			e, &w, w | MV_H_MIGRATING, memory_order_acq_rel, memory_order_acquire)) {
			*wout = w | MV_H_MIGRATING;
			return 0;
		}
	}
}

void mv_hentry_publish(struct mv_heap *hp, uint32_t idx, uint64_t newloc)
{
	_Atomic uint64_t *e = mv_htable_entry(&hp->htab, idx);
	uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
	uint64_t nw;
	/* only the migrator that froze the entry publishes it: LIVE, frozen,
	 * unpinned (pins wait while MIGRATING is set) */
	MV_ASSERT((w & MV_H_LIVE) && (w & MV_H_MIGRATING) && MV_H_PINS(w) == 0);
	MV_ASSERT((newloc & ~MV_H_LOC_MASK) == 0);
	do
		nw = (w & ~(MV_H_LOC_MASK | MV_H_MIGRATING)) | newloc;
	/* seq_cst, not just release: the waiter count and readers flag read
	 * after it form store-load pairs with pin's and the reader's side */
	while (!atomic_compare_exchange_weak_explicit(e, &w, nw, memory_order_seq_cst,
						      memory_order_relaxed));
	if (atomic_load_explicit(&hp->migrate_waiters, memory_order_seq_cst))
		mv_hentry_wake(hp);
}

void mv_hentry_wake(struct mv_heap *hp)
{
	atomic_fetch_add(&hp->migrate_seq, 1);
	if (atomic_load(&hp->migrate_waiters))
		mv_os_futex_wake(&hp->migrate_seq, INT32_MAX);
}
