/* SPDX-License-Identifier: MIT */
/*
 * hentry.h: the handle entry's state machine, the protocol by which
 * threads reach movable objects while the allocator moves them. Every
 * transition of an entry is one CAS (or, for halloc, a release store by
 * the entry's owner) on its one word, and exactly one party wins; this
 * file holds all of them. docs/MIGRATION.md gives the invariants, the
 * memory-order arguments and the model (tests/model/handle.pml).
 *
 *   transition  function              from (in the word the CAS expects)        to                         order
 *   halloc      mv_hentry_make_live   FREE, owned by the caller                 LIVE|gen|loc (store)       release
 *   pin         mv_hentry_pin         LIVE, gen, !MIGRATING, pins < max         pins + 1                   acquire
 *   unpin       mv_hentry_unpin       LIVE, gen, pins > 0                       pins - 1                   release
 *   hfree       mv_hentry_free        LIVE, gen, !MIGRATING, pins == 0          gen + 1, not LIVE          seq_cst
 *   freeze      mv_hentry_freeze      LIVE, loc == src, !MIGRATING, pins == 0   | MIGRATING                acq_rel
 *   publish     mv_hentry_publish     MIGRATING (owned by the migrator)         loc := dst, ~MIGRATING     seq_cst
 *   abort       mv_hentry_publish     MIGRATING (owned)                         ~MIGRATING, loc kept       seq_cst
 *   deref       mv_hentry_matches     (a load: LIVE and gen; MIGRATING too)     -                          acquire
 *   lookup      mv_hentry_at          (a load: LIVE and loc, for scanners)      -                          acquire
 *
 * Which may run at once on one entry: any number of pins, unpins and
 * derefs; hfree against freeze: one wins (hfree that finds MIGRATING waits
 * in mv_hentry_wait for the publish and frees the new copy; a freeze that
 * finds the entry freed or elsewhere gives -ENOENT, pinned -EAGAIN); pin
 * against freeze: the pin waits, or freeze gets -EAGAIN. On different
 * entries, anything. Waiting (mv_hentry_wait) spins briefly, then sleeps on
 * the heap's migrate_seq futex with a timeout; the migrator bumps it after
 * publishing (mv_hentry_wake) and the waiter reads it before re-checking,
 * so no wake-up is lost. No lock is held by any of these, and none waits
 * for a grace period.
 */
#ifndef MV_HENTRY_H
#define MV_HENTRY_H

#include <errno.h>

#include "heap.h"

/* A LIVE word of the handle's generation: the object of that handle. */
static inline bool mv_hentry_matches(uint64_t w, mova_handle h)
{
	return (w & MV_H_LIVE) && MV_H_GEN(w) == mv_handle_gen(h);
}

/* The address in a word, and the loc of an address. A loc is the
 * object's place in the zone's pfn space in 16-byte units: its slot, then
 * its offset in the slot's 64 MiB. */
#define MV_H_LOC_SLOT_SHIFT (MV_SECTION_SHIFT - 4)
static inline void *mv_hentry_addr(const struct mv_heap *hp, uint64_t w)
{
	uint64_t loc = MV_H_LOC(w);
	return hp->zone.sec[loc >> MV_H_LOC_SLOT_SHIFT].base + ((loc << 4) & (MV_SECTION_SIZE - 1));
}
/* The address in a word and its page's descriptor, from one slot table
 * entry (no section map lookup): for hfree. */
static inline void *mv_hentry_obj(const struct mv_heap *hp, uint64_t w, struct mv_page **pg)
{
	uint64_t loc = MV_H_LOC(w);
	const struct mv_secref *r = &hp->zone.sec[loc >> MV_H_LOC_SLOT_SHIFT];
	size_t off = (size_t)(loc << 4) & (MV_SECTION_SIZE - 1);
	*pg = mv_section_desc(r->s) + (off >> MV_PAGE_SHIFT);
	return r->base + off;
}
/* the pfn of the object in a word (a loc is the pfn's 16-byte units) */
static inline size_t mv_hentry_pfn(uint64_t w)
{
	return (size_t)(MV_H_LOC(w) >> (MV_PAGE_SHIFT - 4));
}
/* the loc of the object at p in the page run starting at pfn, whose first
 * byte is base: no section map lookup (halloc knows its slab) */
static inline uint64_t mv_hentry_loc_in(size_t pfn, const char *base, const void *p)
{
	return ((uint64_t)pfn << (MV_PAGE_SHIFT - 4)) + ((uint64_t)((const char *)p - base) >> 4);
}
static inline uint64_t mv_hentry_loc(const struct mv_heap *hp, const void *p)
{
	(void)hp;
	const struct mv_section *s = mv_section_of(p);
	return ((uint64_t)s->nr << MV_H_LOC_SLOT_SHIFT) |
	       (((uintptr_t)p & (MV_SECTION_SIZE - 1)) >> 4);
}

/* Does entry idx hold the object at p? (LIVE, its loc p; MIGRATING or not.)
 * For scanners that found idx in a back-reference, racily: idx may name no
 * entry at all, or one that has moved on. */
static inline bool mv_hentry_at(const struct mv_heap *hp, uint32_t idx, const void *p)
{
	_Atomic uint64_t *e = mv_htable_entry(&hp->htab, idx);
	if (!e)
		return false;
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	return (w & MV_H_LIVE) && MV_H_LOC(w) == mv_hentry_loc(hp, p);
}

/* halloc: the free entry e, owned by the caller, now holds the object at p
 * (release: the object's set-up happens before anyone finds it). Returns
 * the entry's generation. */
static inline uint32_t mv_hentry_make_live(_Atomic uint64_t *e, uint64_t loc)
{
	uint32_t gen = MV_H_GEN(atomic_load_explicit(e, memory_order_relaxed));
	atomic_store_explicit(e, mv_entry_live(gen, loc), memory_order_release);
	return gen;
}

/* Wait until a migration in flight publishes; *w is reloaded. */
void mv_hentry_wait(struct mv_heap *hp, _Atomic uint64_t *e, uint64_t *w);

/* pin: the object's address, stable until unpinned, or NULL with errno
 * EINVAL (not live) or EOVERFLOW (MOVA_MAX_PINS). The fast path is one
 * load, the checks and one CAS, with nothing spilled; the loop (waiting
 * out a migration, a lost race) is mv_hentry_pin_slow's. */
void *mv_hentry_pin_slow(struct mv_heap *hp, _Atomic uint64_t *e, mova_handle h);
static inline void *mv_hentry_pin(struct mv_heap *hp, _Atomic uint64_t *e, mova_handle h)
{
	if (likely(e)) {
		uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
		if (likely(mv_hentry_matches(w, h) && !(w & MV_H_MIGRATING) &&
			   MV_H_PINS(w) < MOVA_MAX_PINS &&
			   atomic_compare_exchange_strong_explicit(e, &w, w + MV_H_PIN_ONE,
								   memory_order_acquire,
								   memory_order_relaxed)))
			return mv_hentry_addr(hp, w);
	}
	return mv_hentry_pin_slow(hp, e, h);
}

/* unpin: 0, or EINVAL when the handle is not live or not pinned. */
int mv_hentry_unpin_slow(_Atomic uint64_t *e, mova_handle h);
static inline int mv_hentry_unpin(_Atomic uint64_t *e, mova_handle h)
{
	if (likely(e)) {
		uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
		if (likely(mv_hentry_matches(w, h) && MV_H_PINS(w) &&
			   atomic_compare_exchange_strong_explicit(e, &w, w - MV_H_PIN_ONE,
								   memory_order_release,
								   memory_order_relaxed)))
			return 0;
	}
	return mv_hentry_unpin_slow(e, h);
}

/* The word hfree leaves: the next incarnation's generation, not LIVE; an
 * entry whose generation would wrap retires (MV_H_RETIRED) and is never
 * handed out again, so no stale handle can ever match a new object. */
static inline uint64_t mv_hentry_free_word(mova_handle h)
{
	uint32_t ngen = (mv_handle_gen(h) + 1) & MV_H_GEN_MASK;
	return ngen ? (uint64_t)ngen << MV_H_GEN_SHIFT : MV_H_RETIRED;
}

/* hfree's claim: the word replaced (LIVE, so never 0), after which the
 * object and the entry are the caller's to give back; or 0 with *err set
 * (EINVAL: not live, EBUSY: pinned). A migration in flight is waited out
 * and the new copy is the one claimed. */
uint64_t mv_hentry_free_slow(struct mv_heap *hp, _Atomic uint64_t *e, mova_handle h, int *err);
static inline uint64_t mv_hentry_free(struct mv_heap *hp, _Atomic uint64_t *e, mova_handle h,
				      int *err)
{
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	if (likely(mv_hentry_matches(w, h) && !(w & (MV_H_PIN_MASK | MV_H_MIGRATING)) &&
		   atomic_compare_exchange_strong_explicit(
		       e, &w, mv_hentry_free_word(h), memory_order_seq_cst, memory_order_acquire)))
		return w;
	return mv_hentry_free_slow(hp, e, h, err);
}

/* freeze (folio_ref_freeze): the migrator takes the object at src of entry
 * idx. 0 and *w the frozen word; -EAGAIN (pinned or being migrated: retry
 * later); -ENOENT (freed, or no longer at src: skip). */
int mv_hentry_freeze(struct mv_heap *hp, void *src, uint32_t idx, uint64_t *w);
/* publish (remove_migration_ptes): clear MIGRATING keeping every other
 * bit, loc becoming newloc (the same loc to abort). Never a plain store:
 * docs/MIGRATION.md, trap 1. Wakes waiters when there are any. */
void mv_hentry_publish(struct mv_heap *hp, uint32_t idx, uint64_t newloc);
/* Wake everything waiting in mv_hentry_wait on hp (end of a batch). */
void mv_hentry_wake(struct mv_heap *hp);

#endif
