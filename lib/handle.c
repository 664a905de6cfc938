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
#include "handle.h"

#include <errno.h>
#include <string.h>

#include "large.h"
#include "os.h"

#define NONE32 UINT32_MAX

/* ------------------------------------------------------------ the table */

#define HT_DIR_BYTES (MV_HT_DIR_ENTRIES * sizeof(void *))
#define HT_CHUNK_BYTES (MV_HT_CHUNK_ENTRIES * sizeof(uint64_t))

int mv_htable_init(struct mv_htable *t, uint32_t base, size_t max)
{
	memset(t, 0, sizeof *t);
	mv_mutex_init(&t->lock, MV_RANK_HANDLES);
	/* index UINT32_MAX is the free lists' end marker: never handed out */
	t->max = MV_MIN(max, (size_t)UINT32_MAX - base);
	t->base = base;
	t->next = base;
	atomic_store_explicit(&t->committed, base, memory_order_relaxed);
	/* readable throughout: an absent chunk reads as NULL (see handle.h) */
	t->dir = mv_os_reserve_readable(HT_DIR_BYTES, MV_PAGE_SIZE);
	t->free_head = NONE32;
	return t->dir ? 0 : ENOMEM;
}

void mv_htable_destroy(struct mv_htable *t)
{
	if (t->dir) {
		for (size_t i = 0; i < MV_HT_DIR_ENTRIES && t->nr_chunks; i++) {
			_Atomic uint64_t *c =
			    atomic_load_explicit(&t->dir[i], memory_order_relaxed);
			if (c) {
				mv_os_release(c, HT_CHUNK_BYTES);
				t->nr_chunks--;
			}
		}
		mv_os_release(t->dir, HT_DIR_BYTES);
		t->dir = NULL;
	}
	mv_mutex_destroy(&t->lock);
}

/* Make MV_HT_COMMIT_ENTRIES more entries (or up to the capacity) usable:
 * a new chunk when the next entry starts one, readable throughout and
 * published in the directory only once it is mapped; then commit. */
static bool grow_locked(struct mv_htable *t)
{
	size_t c = mv_relaxed_load(&t->committed);
	if (c - t->base >= t->max)
		return false;
	size_t ci = c >> MV_HT_CHUNK_SHIFT;
	_Atomic uint64_t *chunk = atomic_load_explicit(&t->dir[ci], memory_order_relaxed);
	if (!chunk) {
		chunk = mv_os_reserve_readable(HT_CHUNK_BYTES, MV_PAGE_SIZE);
		if (!chunk)
			return false;
		/* the directory's page becomes writable with its first chunk */
		char *dpage = (char *)mv_align_down((uintptr_t)&t->dir[ci], MV_PAGE_SIZE);
		if (mv_os_commit(dpage, MV_PAGE_SIZE)) {
			mv_os_release(chunk, HT_CHUNK_BYTES);
			return false;
		}
		atomic_store_explicit(&t->dir[ci], chunk, memory_order_release);
		t->nr_chunks++;
	}
	size_t in = c & (MV_HT_CHUNK_ENTRIES - 1);
	size_t n = MV_MIN((size_t)MV_HT_COMMIT_ENTRIES - (in & (MV_HT_COMMIT_ENTRIES - 1)),
			  t->base + t->max - c);
	size_t from = mv_align_down(in * 8, MV_PAGE_SIZE),
	       to = mv_align_up((in + n) * 8, MV_PAGE_SIZE);
	if (mv_os_commit((char *)chunk + from, to - from))
		return false;
	atomic_store_explicit(&t->committed, c + n, memory_order_release);
	return true;
}

bool mv_htable_refill(struct mv_htable *t, struct mv_tcache *tc)
{
	mv_lock(&t->lock);
	while (tc->nhidx < MV_HCACHE / 2) {
		uint32_t idx;
		if (t->free_head != NONE32) {
			idx = t->free_head;
			uint64_t w =
			    atomic_load_explicit(mv_htable_entry(t, idx), memory_order_relaxed);
			t->free_head = (uint32_t)MV_H_LOC(w);
			t->nr_free--;
		} else if (t->next < mv_relaxed_load(&t->committed)) {
			idx = (uint32_t)t->next++;
		} else if (!grow_locked(t)) {
			break;
		} else {
			continue;
		}
		tc->hidx[tc->nhidx] = idx;
		mv_rstore(tc->nhidx, tc->nhidx + 1);
	}
	mv_unlock(&t->lock);
	return tc->nhidx > 0;
}

void mv_htable_drain(struct mv_htable *t, struct mv_tcache *tc, unsigned keep)
{
	if (tc->nhidx <= keep)
		return;
	mv_lock(&t->lock);
	while (tc->nhidx > keep) {
		mv_rstore(tc->nhidx, tc->nhidx - 1);
		uint32_t idx = tc->hidx[tc->nhidx];
		_Atomic uint64_t *e = mv_htable_entry(t, idx);
		uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
		/* not LIVE: readers refuse it; loc carries the free-list link */
		atomic_store_explicit(e, (w & (MV_H_GEN_MASK << MV_H_GEN_SHIFT)) | t->free_head,
				      memory_order_relaxed);
		t->free_head = idx;
		t->nr_free++;
	}
	mv_unlock(&t->lock);
}

size_t mv_htable_live(struct mv_htable *t, size_t cached)
{
	mv_lock(&t->lock);
	size_t out = t->nr_free + mv_relaxed_load(&t->nr_retired) + cached;
	size_t used = t->next - t->base;
	size_t live = used > out ? used - out : 0;
	mv_unlock(&t->lock);
	return live;
}

size_t mv_htable_resident_bytes(struct mv_htable *t)
{
	/* committed entries, and a directory page per chunk at most */
	size_t c = mv_relaxed_load(&t->committed) - t->base;
	return mv_align_up(c * 8, MV_PAGE_SIZE) + mv_rload(t->nr_chunks) * MV_PAGE_SIZE;
}

/* mova.h's inline deref hard-codes this encoding */
_Static_assert(MV_HANDLE_TAG_SHIFT == 47 && MV_HT_CHUNK_SHIFT == 16 && MV_H_LOC_BITS == 35 &&
		   MV_H_GEN_SHIFT == 49 && MV_H_LIVE == ((uint64_t)1 << 48) &&
		   MV_H_GEN_MASK == 0x7fff,
	       "include/mova.h's mova_deref_inline_ must change with the encoding");
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
	return mv_htable_entry(&a->htab, mv_handle_index(h));
}

static inline bool entry_matches(uint64_t w, mova_handle h)
{
	return (w & MV_H_LIVE) && MV_H_GEN(w) == mv_handle_gen(h);
}

static inline void *entry_addr(struct mova_arena *a, uint64_t w)
{
	return a->zone.base + (MV_H_LOC(w) << 4);
}

/* Wait until a migration in flight publishes; *w is reloaded. Bounded
 * spinning, then a futex sleep with a timeout: never spins forever. */
static MV_NOINLINE void migrate_wait(struct mova_arena *a, _Atomic uint64_t *e, uint64_t *w)
{
	for (int i = 0; i < 256; i++) {
		mv_cpu_relax();
		*w = atomic_load_explicit(e, memory_order_acquire);
		if (!(*w & MV_H_MIGRATING))
			return;
	}
	for (;;) {
		uint32_t seq = atomic_load(&a->migrate_seq);
		atomic_fetch_add(&a->migrate_waiters, 1);
		*w = atomic_load(e);
		if (!(*w & MV_H_MIGRATING)) {
			atomic_fetch_sub(&a->migrate_waiters, 1);
			return;
		}
		mv_os_futex_wait(&a->migrate_seq, seq, 1000000);
		atomic_fetch_sub(&a->migrate_waiters, 1);
		*w = atomic_load_explicit(e, memory_order_acquire);
		if (!(*w & MV_H_MIGRATING))
			return;
	}
}

/* ------------------------------------------------------------ allocation */

/* an entry back into the thread's cache */
static inline void hidx_put(struct mova_arena *a, struct mv_tcache *tc, uint32_t idx)
{
	if (unlikely(tc->nhidx == MV_HCACHE))
		mv_htable_drain(&a->htab, tc, MV_HCACHE / 2);
	tc->hidx[tc->nhidx] = idx;
	mv_rstore(tc->nhidx, tc->nhidx + 1); /* read by mv_htable_live */
}

/* slot p of slab s now holds the object of entry idx, of size bytes */
static inline void backref_set(struct mv_slab *s, void *p, uint32_t idx, size_t size)
{
	uint32_t slot = (uint32_t)(((uint64_t)((char *)p - s->addr) * s->magic) >> 32);
	mv_rstore(mv_slab_backrefs(s)[slot], (uint64_t)idx | ((uint64_t)size << 32));
}

/* the object at p is entry idx's: make the entry LIVE (release: the
 * object's set-up happens before anyone finds it) and count it */
static inline mova_handle entry_publish(struct mova_arena *a, struct mv_tcache *tc, uint32_t idx,
					void *p, size_t size)
{
	_Atomic uint64_t *e = mv_htable_entry(&a->htab, idx);
	uint32_t gen = MV_H_GEN(atomic_load_explicit(e, memory_order_relaxed));
	atomic_store_explicit(e, mv_entry_live(gen, (uint64_t)((char *)p - a->zone.base) >> 4),
			      memory_order_release);
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
	struct mv_tcache *tc = mv_tcache_of(a);
	if (unlikely(!tc) && mv_thread_dead) {
		/* past this thread's destructor (tcache.c): a cache for this
		 * one call, torn down after it; its slabs go to the bins */
		tc = mv_tcache_transient(a);
		if (!tc) {
			errno = ENOMEM;
			return MOVA_NULL;
		}
		mova_handle h = halloc_with(a, tc, size, zero, rcl);
		mv_tcache_destroy(a, tc);
		return h;
	}
	return halloc_with(a, tc, size, zero, rcl);
}

static mova_handle halloc_with(struct mova_arena *a, struct mv_tcache *tc, size_t size, bool zero,
			       bool rcl)
{
	if (unlikely(!tc) || (unlikely(!tc->nhidx) && !mv_htable_refill(&a->htab, tc))) {
		errno = ENOMEM;
		return MOVA_NULL;
	}
	/* taken now: the slow paths below may reclaim, and shrinkers free
	 * handles into this very cache */
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
			p = mv_mov_alloc_slow(a, tc, cls);
			if (unlikely(!p)) {
				hidx_put(a, tc, idx);
				mv_arena_check_wakeup(a);
				errno = ENOMEM;
				return MOVA_NULL;
			}
			s = tc->mov_cur[cls - MV_MOV_CLASS0];
		}
		backref_set(s, p, idx, size);
		if (zero)
			memset(p, 0, size);
	} else {
		p = mv_large_alloc(a, tc, size, 0, rcl ? MIGRATE_RECLAIMABLE : MIGRATE_MOVABLE,
				   zero);
		if (unlikely(!p)) {
			hidx_put(a, tc, idx);
			return MOVA_NULL;
		}
		mv_pg_store(mv_pfn_to_page(&a->zone, mv_zone_pfn(&a->zone, p) + 1)->priv,
			    (uint64_t)idx);
	}
	return entry_publish(a, tc, idx, p, size);
}

/* halloc's common case, with nothing to save and restore: the thread's
 * cache for a is the one it used last, an entry is cached, and the current
 * slab of the class has a free slot. Anything else is halloc's. */
mova_handle mova_halloc(mova_arena *a, size_t size)
{
	if (likely(a && size <= MV_SMALL_MAX && mv_tls_last.a == a &&
		   mv_tls_last.epoch == a->epoch)) {
		struct mv_tcache *tc = mv_tls_last.tc;
		uint32_t n = tc->nhidx;
		struct mv_slab *s = tc->mov_cur[mv_mov_class(size) - MV_MOV_CLASS0];
		void *p = s->free;
		if (likely(n && p)) {
			uint32_t idx = tc->hidx[n - 1];
			mv_rstore(tc->nhidx, n - 1); /* read by mv_htable_live */
			s->free = mv_fl_next(s, p);
			s->used++;
			backref_set(s, p, idx, size);
			return entry_publish(a, tc, idx, p, size);
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
	struct mv_page *pg = mv_pfn_to_page(&a->zone, mv_zone_pfn(&a->zone, p));
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
		return (size_t)(mv_rload(br[slot]) >> 32);
	}
	return type == PG_LARGE ? mv_large_size(pg) : 0;
}

/* the word hfree leaves: the next incarnation's generation, not LIVE; an
 * entry whose generation would wrap retires (MV_H_RETIRED) and is never
 * handed out again, so no stale handle can ever match a new object */
static inline uint64_t hfree_word(mova_handle h)
{
	uint32_t ngen = (mv_handle_gen(h) + 1) & MV_H_GEN_MASK;
	return ngen ? (uint64_t)ngen << MV_H_GEN_SHIFT : MV_H_RETIRED;
}

/* hfree's transition when the fast path's one try did not do it: wait out
 * a migration, retry a lost race, or report. The word replaced, or 0 with
 * *err set (a replaced word is LIVE, never 0). */
static MV_NOINLINE uint64_t hfree_claim_slow(struct mova_arena *a, _Atomic uint64_t *e,
					     mova_handle h, int *err)
{
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	for (;;) {
		if (unlikely(!entry_matches(w, h))) {
			*err = EINVAL;
			return 0;
		}
		if (unlikely(MV_H_PINS(w))) {
			*err = EBUSY;
			return 0;
		}
		if (unlikely(w & MV_H_MIGRATING)) {
			migrate_wait(a, e, &w);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			e, &w, hfree_word(h), memory_order_seq_cst, memory_order_acquire))
			return w;
	}
}

/* the entry of h is free now (w is the word it had): give back the object
 * and the entry, in every case */
static MV_NOINLINE int hfree_finish(struct mova_arena *a, _Atomic uint64_t *e, mova_handle h,
				    uint64_t w)
{
	void *p = entry_addr(a, w);
	bool retired = MV_H_GEN(w) == MV_H_GEN_MASK;
	if (unlikely(retired))
		mv_relaxed_add(&a->htab.nr_retired, 1);
	struct mv_tcache *tc = mv_tcache_of(a);
	/* the object is ours now (the CAS above), so its slab or large run
	 * is what the entry said: no re-checks as object_size makes */
	struct mv_page *pg = mv_pfn_to_page(&a->zone, mv_zone_pfn(&a->zone, p));
	struct mv_slab *s = NULL;
	size_t size;
	if (likely(mv_pg_load(pg->type) == PG_SLAB)) {
		s = mv_pg_load(pg->slab);
		uint32_t slot = (uint32_t)(((uint64_t)((char *)p - s->addr) * s->magic) >> 32);
		size = (size_t)(mv_rload(mv_slab_backrefs(s)[slot]) >> 32);
	} else {
		size = object_size(a, p);
	}
	if (unlikely(!tc)) {
		/* no thread cache (out of memory): the slow, cache-less way */
		if (!retired) {
			mv_lock(&a->htab.lock);
			atomic_store_explicit(e,
					      (atomic_load_explicit(e, memory_order_relaxed) &
					       (MV_H_GEN_MASK << MV_H_GEN_SHIFT)) |
						  a->htab.free_head,
					      memory_order_relaxed);
			a->htab.free_head = mv_handle_index(h);
			a->htab.nr_free++;
			mv_unlock(&a->htab.lock);
		}
		mv_relaxed_add(&a->dead_live_bytes, -(int64_t)size);
		if (!mv_rcu_readers_ever()) {
			mv_mov_free_slots(a, NULL, &p, 1);
		} else if (!mv_rcu_in_reader()) {
			mv_rcu_synchronize();
			mv_mov_free_slots(a, NULL, &p, 1);
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
	mv_arena_tick(a); /* frees make work for kcompactd too */
	if (likely(!mv_rcu_readers_ever())) {
		/* nobody can hold the old address: reuse at once */
		if (s && atomic_load_explicit(&s->owner, memory_order_relaxed) == tc) {
			mv_slab_push(s, p);
			s->used--;
		} else {
			mv_mov_free_slots(a, tc, &p, 1);
		}
		return 0;
	}
	mv_tcache_defer_slot(a, tc, p);
	return 0;
}

int mova_hfree(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (unlikely(!e))
		return EINVAL;
	uint64_t w = atomic_load_explicit(e, memory_order_acquire);
	if (unlikely(!entry_matches(w, h) || (w & (MV_H_PIN_MASK | MV_H_MIGRATING)) ||
		     !atomic_compare_exchange_strong_explicit(
			 e, &w, hfree_word(h), memory_order_seq_cst, memory_order_acquire))) {
		int err = 0;
		w = hfree_claim_slow(a, e, h, &err);
		if (err)
			return err;
	}
	/* the common case, with nothing to save and restore: this thread's
	 * cache, a slab it allocates from, no reader ever, room for the entry */
	char *p = entry_addr(a, w);
	const struct mv_page *pg = mv_pfn_to_page(&a->zone, mv_zone_pfn(&a->zone, p));
	if (likely(mv_tls_last.a == a && mv_tls_last.epoch == a->epoch &&
		   MV_H_GEN(w) != MV_H_GEN_MASK && mv_pg_load(pg->type) == PG_SLAB)) {
		struct mv_tcache *tc = mv_tls_last.tc;
		struct mv_slab *s = mv_pg_load(pg->slab);
		uint32_t n = tc->nhidx;
		if (likely(n < MV_HCACHE && !mv_rcu_readers_ever() &&
			   atomic_load_explicit(&s->owner, memory_order_relaxed) == tc)) {
			uint32_t slot = (uint32_t)(((uint64_t)(p - s->addr) * s->magic) >> 32);
			size_t size = (size_t)(mv_rload(mv_slab_backrefs(s)[slot]) >> 32);
			tc->hidx[n] = mv_handle_index(h);
			mv_rstore(tc->nhidx, n + 1); /* read by mv_htable_live */
			mv_owner_add(&tc->live_bytes, -(int64_t)size);
			mv_slab_push(s, p);
			s->used--;
			return 0;
		}
	}
	return hfree_finish(a, e, h, w);
}

/* ------------------------------------------------------------ access */

/* pin when the fast path's one try did not do: a migration in flight, a
 * lost race, or an error to report */
static MV_NOINLINE void *pin_slow(struct mova_arena *a, _Atomic uint64_t *e, mova_handle h)
{
	if (unlikely(!e)) {
		errno = EINVAL;
		return NULL;
	}
	uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
	for (;;) {
		if (unlikely(!entry_matches(w, h))) {
			errno = EINVAL;
			return NULL;
		}
		if (unlikely(w & MV_H_MIGRATING)) {
			migrate_wait(a, e, &w);
			continue;
		}
		if (unlikely(MV_H_PINS(w) >= MOVA_MAX_PINS)) {
			errno = EOVERFLOW;
			return NULL;
		}
		if (likely(atomic_compare_exchange_weak_explicit(
			e, &w, w + MV_H_PIN_ONE, memory_order_acquire, memory_order_relaxed)))
			return entry_addr(a, w);
	}
}

/* The fast paths of pin and unpin are one load, the checks and one CAS,
 * with nothing spilled: the loops (migrate_wait takes the word's address)
 * live in the slow functions. */
void *mova_pin(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (likely(e)) {
		uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
		if (likely(entry_matches(w, h) && !(w & MV_H_MIGRATING) &&
			   MV_H_PINS(w) < MOVA_MAX_PINS &&
			   atomic_compare_exchange_strong_explicit(e, &w, w + MV_H_PIN_ONE,
								   memory_order_acquire,
								   memory_order_relaxed)))
			return entry_addr(a, w);
	}
	return pin_slow(a, e, h);
}

static MV_NOINLINE int unpin_slow(_Atomic uint64_t *e, mova_handle h)
{
	if (unlikely(!e))
		return EINVAL;
	uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
	for (;;) {
		if (unlikely(!entry_matches(w, h) || !MV_H_PINS(w)))
			return EINVAL;
		if (likely(atomic_compare_exchange_weak_explicit(
			e, &w, w - MV_H_PIN_ONE, memory_order_release, memory_order_relaxed)))
			return 0;
	}
}

int mova_unpin(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (likely(e)) {
		uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
		if (likely(entry_matches(w, h) && MV_H_PINS(w) &&
			   atomic_compare_exchange_strong_explicit(e, &w, w - MV_H_PIN_ONE,
								   memory_order_release,
								   memory_order_relaxed)))
			return 0;
	}
	return unpin_slow(e, h);
}

size_t mova_hsize(mova_arena *a, mova_handle h)
{
	_Atomic uint64_t *e = a ? entry_of(a, h) : NULL;
	if (!e)
		return 0;
	for (;;) {
		uint64_t w = atomic_load_explicit(e, memory_order_acquire);
		if (!entry_matches(w, h))
			return 0;
		size_t size = object_size(a, entry_addr(a, w));
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
		if (likely(entry_matches(w, h)))
			return entry_addr(a, w);
	}
	errno = EINVAL;
	return NULL;
}
