/* SPDX-License-Identifier: MIT */
/*
 * slab.h: slabs, runs of pages holding objects of one size class, and the
 * arena's per-class bins. A slab's header lives outside it (meta pool); its
 * pages' descriptors say PG_SLAB and point at the header, so any object's
 * slab is found by address arithmetic: desc[(p - base) >> 12].slab.
 *
 * Two ownership schemes, one structure:
 *
 * Raw (unmovable) slabs follow mimalloc: a slab belongs to one thread
 * cache for its whole life. The owner allocates from `free` and frees into
 * `local_free` with plain loads and stores; other threads push onto the
 * atomic `xfree` list, a tagged word {count:16 | pointer | delayed:2}. When
 * the owner parks a full slab it asks (MV_USE_DELAYED) to be told of the
 * next remote free, which then goes to the owner's `xdelayed` list instead
 * (mimalloc's delayed free). At thread exit the slabs are abandoned
 * (MV_NEVER_DELAYED) to the bin; another thread adopts them on demand.
 *
 * Movable slabs follow SLUB: a thread freezes only its current slab per
 * class (owner set) and allocates from it without locks; every other slab
 * is shared on the bin's lists, by fullness, under the bin lock. Frees to
 * a frozen slab from anyone but its owner go on `xlist` under the bin
 * lock; the owner collects them on its slow path. Compaction takes shared
 * slabs only (MV_SLAB_ISOLATED), never a frozen one.
 *
 * Locks: bin->lock (rank MV_RANK_BIN) for the bin's lists and for every
 * field of a shared slab; pcp and zone locks nest inside it.
 */
#ifndef MV_SLAB_H
#define MV_SLAB_H

#include "heap.h"
#include "pcp.h"

struct mv_heap;
struct mv_tcache;

/* states of the delayed-free protocol, in xfree's low bits */
enum { MV_NO_DELAYED = 0, MV_USE_DELAYED = 1, MV_DELAYING = 2, MV_NEVER_DELAYED = 3 };
#define MV_XF_STATE(w) ((unsigned)((w)&3))
#define MV_XF_PTR(w) ((void *)(uintptr_t)((w) & ((((uint64_t)1) << 48) - 16)))
#define MV_XF_COUNT(w) ((uint32_t)((w) >> 48))
#define MV_XF_MAKE(p, count, state) ((uint64_t)(uintptr_t)(p) | ((uint64_t)(count) << 48) | (state))

/* slab->list: which list of its bin (or of its owner) it is on */
enum mv_slab_list {
	MV_SL_NONE = 0,
	MV_SL_OWNED,      /* raw: on its owner's class queue; movable: frozen */
	MV_SL_OWNED_FULL, /* raw: on its owner's full list */
	MV_SL_PARTIAL,    /* movable: shared, bin->partial[fullness] */
	MV_SL_FULL,       /* movable: shared, bin->full */
	MV_SL_EMPTY,      /* movable: shared, bin->empty (kept for reuse) */
	MV_SL_ABANDONED,  /* raw: bin->abandoned */
	MV_SL_ISOLATED,   /* movable: taken by compaction */
};

struct mv_slab {
	/* first cache line: the owner's fast path, and what a freeing thread
	 * reads to check a pointer (written only by the owner) */
	void *free;
	uint32_t used;  /* slots handed out and not known to be free */
	uint32_t usize; /* slot size */
	void *local_free;
	char *addr;     /* first slot */
	uint32_t magic; /* the class's division magic */
	uint32_t nbump; /* slots [nbump, nregs) never handed out */
	struct mv_tcache
	    *fast_owner; /* raw: the owner while the slab is on its class queue, else NULL */
	_Atomic(struct mv_tcache *) owner;
	uint8_t cls;
	uint8_t list;     /* enum mv_slab_list */
	uint8_t fullness; /* MV_SL_PARTIAL: index into bin->partial */
	uint8_t kept;     /* raw: empty, kept by its owner for reuse (tc->kept_pages) */
	uint32_t span16;  /* the slots span [addr, addr + 16 * span16): links are checked */
	/* second cache line: what other threads write, so that remote frees
	 * do not bounce the owner's line */
	_Alignas(MV_CACHELINE) _Atomic uint64_t xfree;
	struct mv_slab *next, *prev;
	union {
		void *xlist; /* movable: frees to a frozen slab by others, under bin lock */
		struct mv_twins *twins; /* raw: objects held in two slots (below), or NULL */
	};
	uint32_t nxlist;
	uint32_t nregs;
	uint64_t *backref; /* handle classes: {handle index, size} per slot, at the slab's end */
	uint32_t pfn;
	/* raw: pages given back to the OS while the slab lives (a bit each,
	 * MV_SLAB_MAX_PAGES <= 32). Their free slots are parked: off every
	 * list until the owner takes them back (mv_raw_unpurge). Owner's. */
	uint32_t purged;
	/* raw: at the back of its class queue with no free slot on a backed
	 * page, to be taken up only when no slab has one (mv_raw_alloc_slow) */
	uint8_t refault;
	/* raw: the owner's decay_tick (low byte) when a search for twin
	 * slots last found none here (raw_twin_source skips it till then) */
	uint8_t twinscan;
	/* raw: its owner's current slab of the class (raw_cur), so that a
	 * free that empties it skips mv_raw_slab_idle (owner's) */
	uint8_t cur;
	/* raw: the owner's decay_tick when the slab was last made current
	 * (a slab current since the last decay is in use: left alone) */
	uint32_t tick;
};
_Static_assert(sizeof(struct mv_slab) <= 128, "a slab header is two cache lines");

/* An always-empty slab: thread caches point at it before they own one, so
 * the fast path's single "no free slot" branch covers every slow case. */
extern struct mv_slab mv_slab_empty;

/*
 * Free slots. A free slot's first word links it to the next free slot of
 * its list (free, local_free, a remote chain, xfree, xdelayed, xlist); a
 * free raw slot's second word holds the double-free key, mv_slot_key(p),
 * which a free that finds it reports and ignores. mv_slab_extend puts the
 * key in the slots it threads too, so freeing one never handed out is
 * caught the same way.
 *
 * At MV_SECURE 1 (meson -Dsecure=1, the default; see docs/DESIGN.md) the
 * link is stored encoded, as glibc's safe-linking (PROTECT_PTR) and
 * mimalloc's MI_SECURE free lists do: xored with a mask made of a
 * per-process secret and the slot's own address, so a link copied to
 * another slot decodes elsewhere. A pop decodes it and checks the result
 * is NULL or a 16-byte aligned address within the same slab; anything else
 * (an 8-byte write after free, an overflow into a free neighbour) ends in
 * mv_slab_corrupt, which reports and aborts, instead of handing out an
 * address the attacker chose. At MV_SECURE 0 links are plain pointers and
 * unchecked.
 */
extern uint64_t mv_fl_secret;   /* odd: multiplying by it is a bijection */
extern uint64_t mv_slot_secret; /* the double-free key's */
/* make the secrets, once, before any slab exists (arena creation) */
void mv_slab_init_secrets(void);

static inline uint64_t mv_slot_key(const void *p)
{
	return mv_slot_secret ^ (uint64_t)(uintptr_t)p;
}
/* the mask of slot's link: the slot index times the secret spreads the
 * address over all 64 bits; it costs a shift and a multiply that run
 * beside the load of the link, not after it */
MV_INLINE uint64_t mv_fl_mask(const void *slot)
{
	return MV_SECURE ? ((uint64_t)(uintptr_t)slot >> 4) * mv_fl_secret : 0;
}
MV_INLINE void mv_fl_set(void *slot, const void *next)
{
	*(uint64_t *)slot = (uint64_t)(uintptr_t)next ^ mv_fl_mask(slot);
}
/* the decoded link, unchecked (the caller checks it) */
MV_INLINE void *mv_fl_get(const void *slot)
{
	return (void *)(uintptr_t)(*(const uint64_t *)slot ^ mv_fl_mask(slot));
}
/* may next follow a slot of s on a list? NULL, or 16-byte aligned inside
 * s's slots: one rotate puts misaligned and out-of-range in one compare */
MV_INLINE bool mv_fl_bad(const struct mv_slab *s, const void *next)
{
	if (!MV_SECURE)
		return false;
	uint64_t d = (uint64_t)(uintptr_t)next - (uint64_t)(uintptr_t)s->addr;
	return ((d >> 4 | d << 60) >= s->span16) & (next != NULL);
}
/* a corrupt link found in slot, a free slot of s: report and abort */
__attribute__((noreturn, cold)) void mv_slab_corrupt(const struct mv_slab *s, const void *slot,
						     const void *next, const char *list);
/* the checked link of slot, a free slot of s */
MV_INLINE void *mv_fl_next(const struct mv_slab *s, const void *slot)
{
	void *next = mv_fl_get(slot);
	if (unlikely(mv_fl_bad(s, next)))
		mv_slab_corrupt(s, slot, next, "free list");
	return next;
}
/* take the first free slot of s (s->free is not NULL) */
MV_INLINE void *mv_slab_pop(struct mv_slab *s)
{
	void *p = s->free;
	s->free = mv_fl_next(s, p);
	s->used++;
	MV_ASSERT(s->used <= s->nregs);
	return p;
}
/* put p at the head of s->free (used is the caller's) */
MV_INLINE void mv_slab_push(struct mv_slab *s, void *p)
{
	/* a slot of this slab, at a slot boundary, not the head already (the
	 * cheapest double push), and a slab that has slots handed out */
	MV_ASSERT((char *)p >= s->addr &&
		  (size_t)((char *)p - s->addr) < (size_t)s->nregs * s->usize);
	MV_ASSERT((size_t)((char *)p - s->addr) % s->usize == 0);
	MV_ASSERT(p != s->free);
	MV_ASSERT(s->used > 0);
	mv_fl_set(p, s->free);
	s->free = p;
}
/* put a chain of s's free slots (NULL-terminated, walked and checked) at
 * the head of s->free */
void mv_slab_splice(struct mv_slab *s, void *head, const char *list);

/*
 * Twin slots (issue 15). A raw object of class C (a size past 256 B, not a
 * power of two) may be held in two adjacent free slots of the class of
 * half its size, in a slab of that class left sparse by frees: the free
 * space a random deletion leaves among small objects then takes a refill
 * of larger ones, as a coalescing malloc's does, where a segregated one
 * faults in new pages beside the holes (redis-server refilled after an
 * 80% random DEL). A slab that ever held twins has s->twins: the bitmap of
 * its live twins' first slots (atomic: any thread's free clears a bit, the
 * owner sets them), and the pairs reserved for the owner's next twin
 * allocations (counted as used slots). Its pages' descriptors say
 * MV_PG_TWINS in `order`, so free's one compare sends every free of it to
 * the slow path, which frees both slots of a twin, and refuses the second
 * slot of a live twin as the interior pointer it is.
 */
#define MV_PG_PURGED 1 /* PG_SLAB page given back (descriptor `order`) */
#define MV_PG_TWINS 2  /* PG_SLAB page of a slab with twins */
struct mv_twins {
	void *head;     /* reserved pairs: first slots, linked as free slots. Owner's. */
	uint32_t nfree; /* on head */
	uint32_t words;
	_Atomic uint64_t live[]; /* bit i: a twin starts at slot i */
};
/* 1: slot i of s starts a live twin; -1: it is a live twin's second slot */
static inline int mv_twin_kind(const struct mv_slab *s, uint32_t i)
{
	struct mv_twins *tw = mv_rload(s->twins);
	if (!tw)
		return 0;
	if (atomic_load_explicit(&tw->live[i / 64], memory_order_relaxed) >> (i % 64) & 1)
		return 1;
	if (i &&
	    atomic_load_explicit(&tw->live[(i - 1) / 64], memory_order_relaxed) >> ((i - 1) % 64) &
		1)
		return -1;
	return 0;
}
/* end the twin starting at slot i of s: false if there was none (a
 * racing free took it) */
static inline bool mv_twin_end(struct mv_slab *s, uint32_t i)
{
	uint64_t bit = (uint64_t)1 << (i % 64);
	struct mv_twins *tw = mv_rload(s->twins);
	return atomic_fetch_and_explicit(&tw->live[i / 64], ~bit, memory_order_relaxed) & bit;
}

static inline struct mv_slab *mv_slab_of(const struct mv_zone *z, const void *p)
{
	(void)z;
	return __atomic_load_n(&mv_zone_page_of(p)->slab, __ATOMIC_RELAXED);
}
/* the index of slot p in s (p is a slot of s) */
MV_INLINE uint32_t mv_slab_slot(const struct mv_slab *s, const void *p)
{
	return (uint32_t)(((uint64_t)((const char *)p - s->addr) * s->magic) >> 32);
}
/* slot k of s */
MV_INLINE void *mv_slab_slot_addr(const struct mv_slab *s, uint32_t k)
{
	return s->addr + (size_t)k * s->usize;
}

/*
 * Back-references (handle classes): each slot has a word at the slab's end,
 * {handle entry index:32 | bytes asked for:32}, written when an object is
 * placed in the slot (halloc, migration) and read racily by scanners (a
 * stale word names an entry that no longer holds the slot: the caller
 * checks the entry, mv_hentry_at). Only these functions know the layout.
 */
MV_INLINE uint64_t mv_slab_backref(const struct mv_slab *s, const void *p)
{
	return mv_rload(s->backref[mv_slab_slot(s, p)]);
}
MV_INLINE uint32_t mv_backref_idx(uint64_t br)
{
	return (uint32_t)br;
}
MV_INLINE size_t mv_backref_size(uint64_t br)
{
	return (size_t)(br >> 32);
}
/* slot p of s now holds the object of entry idx, of size bytes */
MV_INLINE void mv_slab_set_backref(struct mv_slab *s, const void *p, uint32_t idx, size_t size)
{
	mv_rstore(s->backref[mv_slab_slot(s, p)], (uint64_t)idx | ((uint64_t)size << 32));
}

/* ---- creation and death (any thread; takes pcp/zone locks) ---- */
/* a new slab, owned (frozen) by tc from the start */
struct mv_slab *mv_slab_new(struct mv_heap *h, struct mv_tcache *tc, unsigned cls);
void mv_slab_destroy(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s);
/* hand out never-used slots: build `free` from the bump region */
bool mv_slab_extend(struct mv_slab *s);

/* ---- raw slabs ---- */
void *mv_raw_alloc_slow(struct mv_heap *h, struct mv_tcache *tc, unsigned cls);
/* a free to a slab this thread owns that the fast path did not take */
/* The owner's decay (mv_tcache_decay): the slabs it owns that were not
 * made current since the last one give back their free pages, the empty
 * ones go back whole (the current slab stays, purged). */
void mv_raw_decay(struct mv_heap *h, struct mv_tcache *tc);
void mv_raw_free_local_slow(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s, void *p);
/* the owner's fast path emptied s: keep it within the thread's budget,
 * give it back otherwise (unless it is current) */
void mv_raw_slab_idle(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s);
/* a free to another thread's raw slab, gathered in the freeing thread's
 * buffer per destination slab and pushed as one chain (one CAS per
 * MV_RBUF_BATCH frees, as jemalloc flushes its tcache in batches) */
void mv_raw_free_remote_buffered(struct mv_tcache *tc, struct mv_slab *s, void *p);
/* push every buffered remote free (thread exit, flushes, before failing) */
void mv_raw_rbuf_flush_all(struct mv_tcache *tc);
/* a free to a slab another thread (or nobody) owns, pushed at once */
void mv_raw_free_remote(struct mv_heap *h, struct mv_slab *s, void *p);
/* process the owner's delayed frees */
void mv_raw_collect_delayed(struct mv_heap *h, struct mv_tcache *tc);
/* give back the empty raw slabs the thread keeps (compaction, trim) */
void mv_raw_release_kept(struct mv_heap *h, struct mv_tcache *tc);
/* in a fork child, before any cache is torn down: end the delayed-free
 * notifications that threads which do not exist here had begun */
void mv_raw_fork_child_fixup(struct mv_tcache *tc);
/* thread exit or tcache teardown: give every raw slab to the bins */
void mv_raw_abandon_all(struct mv_heap *h, struct mv_tcache *tc);

/* ---- movable slabs ---- */
void *mv_mov_alloc_slow(struct mv_heap *h, struct mv_tcache *tc, unsigned cls);
/* free slots whose grace period has passed; any thread (tc may be NULL) */
void mv_mov_free_slots(struct mv_heap *h, struct mv_tcache *tc, void *const *slots, unsigned n);
/* unfreeze every frozen slab of tc (thread exit, compaction's drain) */
void mv_mov_unfreeze_all(struct mv_heap *h, struct mv_tcache *tc);

/*
 * ---- movable slabs under migration (the kernel's movable_operations) ----
 * Compaction and packing move objects out of shared movable slabs only.
 * These take a slab off its bin for that (isolate_page), give it back
 * (putback_page) and make the slabs objects move into (the destination
 * compaction_alloc builds). An isolated slab (MV_SL_ISOLATED) is owned by
 * the compactor's cache `owner`, so frees to it go to its xlist and no
 * thread allocates from it; every list field is written here, under the
 * bin lock. Objects in it are found by mv_slab_nbump, mv_slab_slot_addr
 * and the back-references above.
 */
/* isolate_page: take s, found at pfn as a slab of handle class cls (read
 * racily from the descriptor), off its bin's lists. 0; -EBUSY when it is
 * not a shared slab of cls at pfn any more (frozen by a thread, isolated,
 * gone); -EAGAIN when trylock and the bin lock is contended. */
int mv_slab_isolate(struct mv_heap *h, struct mv_slab *s, size_t pfn, unsigned cls,
		    struct mv_tcache *owner, bool trylock);
/* zs_compact's isolate_src_zspage and isolate_dst_zspage: isolate the
 * emptiest and the fullest partial slabs of handle class cls (looking a
 * little way into each fullness group), src emptier than dst; false, and
 * nothing isolated, when the class has no such pair */
bool mv_slab_isolate_pair(struct mv_heap *h, unsigned cls, struct mv_tcache *owner,
			  struct mv_slab **src, struct mv_slab **dst);
/* zs_can_compact: could a whole slab of cls be emptied into the others? */
static inline bool mv_bin_can_pack(const struct mv_heap *h, unsigned cls)
{
	return mv_rload(h->bins[cls].nr_partial_free) >= mv_classes[cls].nregs;
}
/* putback_page: an isolated slab back to its bin, with the frees that
 * arrived meanwhile; an empty one goes back to the buddy allocator */
void mv_slab_putback(struct mv_heap *h, struct mv_slab *s);
/* the destination: a new isolated slab of cls, owned by owner, on pages
 * [pfn, pfn + npages) the caller holds; NULL (the pages stay the
 * caller's) when no header can be had */
struct mv_slab *mv_slab_new_isolated(struct mv_heap *h, unsigned cls, size_t pfn,
				     struct mv_tcache *owner);
/* a free slot of the isolated slab s for an object of class cls, or NULL
 * when s is of another class or full */
MV_INLINE void *mv_slab_alloc_isolated(struct mv_slab *s, unsigned cls)
{
	if (s->cls != cls || (!s->free && !mv_slab_extend(s)))
		return NULL;
	return mv_slab_pop(s);
}
/* slots [0, nbump) of s have been handed out at some time: where its
 * objects are (read under isolation: only the owner extends a slab) */
MV_INLINE uint32_t mv_slab_nbump(const struct mv_slab *s)
{
	return s->nbump;
}

/* release empty slabs kept for reuse and abandoned empty raw slabs */
size_t mv_bins_trim(struct mv_heap *h);

#endif
