/* SPDX-License-Identifier: MIT */
/*
 * malloc.c: the malloc family on the default arena (raw, unmovable memory).
 *
 * Fast paths (one branch each to the slow path, mimalloc-style):
 *  - mova_malloc(size <= 1024): the thread's current slab for the size,
 *    through tc->direct[], pops its free list;
 *  - mova_free(p): a range check against the default arena, the page
 *    descriptor gives the slab, and when the calling thread owns the slab
 *    and p is a slot it handed out, a push on the slab's local free list.
 * Everything else (first use of a thread, full slabs, large sizes, frees
 * to other threads' slabs, bad pointers) goes to the *_slow functions.
 *
 * A freed slot's second word holds a per-process key mixed with its
 * address (glibc's tcache does the same): a free that finds the key
 * already there is a double free, reported and ignored. Pointers mova did
 * not hand out are reported once and left alone; they never reach a list.
 * The link in a free slot's first word is encoded and checked when popped
 * (slab.h, MV_SECURE): a corrupt one is reported and the process aborts.
 */
#include <errno.h>
#include <string.h>

#include "large.h"
#include "slowpath.h"

static inline uint64_t dfkey(const void *p)
{
	return mv_slot_key(p);
}

/* ------------------------------------------------------------ allocation */

static void *malloc_with(struct mova_arena *a, struct mv_tcache *tc, size_t size, bool zero);

/* Count bytes of large objects coming or going: in the calling thread's
 * own counter when it has a cache (stats sum them; a free by another
 * thread than the allocating one leaves one negative, the sum right), in
 * the heap's shared one otherwise. The shared counter's locked add on
 * every large malloc and free cost more than the rest of the pair. */
static inline void large_live_add(struct mova_arena *a, struct mv_tcache *tc, int64_t d)
{
	if (tc && !tc->dead)
		mv_owner_add(&tc->live_bytes, d);
	else
		mv_relaxed_add(&a->heap.large_live_bytes, d);
}
/* for a dead thread's one call: out of line, so that malloc_slow keeps
 * malloc_with inlined (when gcc stopped inlining it, every allocation
 * past 1 KiB paid a call: 7.0 -> 8.5 ns a malloc/free pair of 4 KiB) */
static MV_NOINLINE void *malloc_with_cold(struct mova_arena *a, struct mv_tcache *tc, size_t size,
					  bool zero)
{
	return malloc_with(a, tc, size, zero);
}

static MV_NOINLINE void *malloc_slow(size_t size, bool zero)
{
	struct mova_arena *a = mv_default ? mv_default : mv_default_arena_slow();
	if (unlikely(!a)) {
		errno = ENOMEM;
		return NULL;
	}
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (unlikely(!tc)) {
		if (!mv_thread_dead) {
			errno = ENOMEM;
			return NULL;
		}
		/* past this thread's destructor (tcache.c): a cache for this
		 * one call, torn down after it (its slabs go to the bins);
		 * rare: glibc's freeres frees, it does not allocate */
		tc = mv_tcache_transient(&a->heap);
		if (!tc) {
			errno = ENOMEM;
			return NULL;
		}
		void *p = malloc_with_cold(a, tc, size, zero);
		mv_tcache_destroy(&a->heap, tc);
		return p;
	}
	mv_fstat(tc, malloc_slow);
	if (size <= 1024) {
		/* kcompactd asks for decay by pointing the direct entries away */
		mv_tcache_answer_decay(&a->heap, tc);
		/* kcompactd may point the entry away after an answer (see
		 * mv_heap_ask_decay): put it back, or every malloc of this
		 * size would come here (a slab change below sets it too) */
		struct mv_slab *cur = tc->raw_cur[mv_raw_class(size)];
		if (mv_rload(tc->direct[(size + 15) >> 4]) != cur)
			mv_rstore(tc->direct[(size + 15) >> 4], cur);
	}
	return malloc_with(a, tc, size, zero);
}

MV_INLINE void *malloc_with(struct mova_arena *a, struct mv_tcache *tc, size_t size, bool zero)
{
	if (size <= MV_SMALL_MAX) {
		unsigned cls = mv_raw_class(size);
		struct mv_slab *s = tc->raw_cur[cls];
		uint64_t *p = s->free;
		uint32_t usize;
		if (p) {
			mv_slab_pop(s);
			usize = s->usize;
		} else {
			/* maybe in twin slots (slab.h): the class's size */
			p = mv_slowpath_raw(a, tc, cls);
			if (unlikely(!p))
				return NULL;
			usize = mv_classes[cls].size;
		}
		p[1] = 0;
		mv_owner_add(&tc->live_bytes, (int64_t)usize);
		if (zero)
			memset(p, 0, usize);
		return p;
	}
	/* a run of its size cached by this thread (pcp.h): no lock at all */
	void *p = mv_large_alloc_cached(&a->heap, tc, size, MIGRATE_UNMOVABLE);
	if (p) {
		mv_tcache_answer_flush(&a->heap, tc);
		if (zero)
			memset(p, 0, size);
	} else {
		p = mv_slowpath_large(a, tc, size, 0, MIGRATE_UNMOVABLE, zero);
	}
	if (p)
		large_live_add(a, tc, (int64_t)size);
	return p;
}

void *mova_malloc(size_t size)
{
	struct mv_tcache *tc = mv_tc_default;
	if (likely(size <= 1024)) {
		struct mv_slab *s = mv_rload(tc->direct[(size + 15) >> 4]);
		uint64_t *p = s->free;
		if (likely(p)) {
			/* the one branch to the slow path is above; a corrupt link
			 * goes to the fatal path, never back to the caller */
			void *next = mv_fl_next(s, p);
			s->free = next;
			/* the next malloc's slot: its link is read then, and on a
			 * fragmented heap it is cold (tcmalloc prefetches so) */
			__builtin_prefetch(next, 1, 3);
			s->used++;
			p[1] = 0; /* the double-free key, so a free of p is taken */
			mv_owner_add(&tc->live_bytes, (int64_t)s->usize);
			mv_fstat(tc, malloc_fast);
			return p;
		}
	}
	return malloc_slow(size, false);
}

void *mova_calloc(size_t nmemb, size_t size)
{
	size_t total;
	if (unlikely(__builtin_mul_overflow(nmemb, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	if (likely(total <= 1024)) {
		void *p = mova_malloc(total);
		if (p)
			memset(p, 0, total);
		return p;
	}
	return malloc_slow(total, true);
}

/* ------------------------------------------------------------ free */

/* free_slow's end: the slot p of s, and q after it (a twin) if not NULL */
static void raw_free_slots(struct mova_arena *a, struct mv_tcache *tc, struct mv_slab *s, void *p,
			   void *q)
{
	int64_t bytes = (int64_t)s->usize * (q ? 2 : 1);
	if (tc)
		mv_owner_add(&tc->live_bytes, -bytes);
	else
		mv_relaxed_add(&a->heap.dead_live_bytes, -bytes);
	if (tc && atomic_load_explicit(&s->owner, memory_order_relaxed) == tc) {
		mv_raw_free_local_slow(&a->heap, tc, s, p);
		if (q)
			mv_raw_free_local_slow(&a->heap, tc, s, q);
		mv_slowpath_thinning(a);
	} else {
		mv_raw_free_remote(&a->heap, s, p);
		if (q)
			mv_raw_free_remote(&a->heap, s, q);
	}
}

/* Frees by a thread without a cache (it never allocated) made so far. */
static __thread unsigned nocache_frees __attribute__((tls_model("initial-exec")));

/*
 * The cache a free may use. A thread that only frees (a consumer handed
 * objects by a producer) gets one after MV_FREE_CACHE_AFTER frees: without
 * it every free took this slow path, an unbuffered push onto the slab's
 * remote list and an atomic add on the heap's shared live counter
 * (prodcons/16: 16 ns a pair at 91d1123, 150-300 ns once frees stopped
 * making caches). A thread that frees a few objects and exits (a pool's
 * short task) makes none: a cache is registered, torn down and walked by
 * fork. A thread past its key destructor never makes one (mv_tcache_of
 * answers NULL there: glibc frees its TLS buffers after every destructor).
 */
#define MV_FREE_CACHE_AFTER 64
static struct mv_tcache *free_cache(struct mova_arena *a)
{
	struct mv_tcache *tc = mv_tcache_peek(&a->heap);
	if (likely(tc) || mv_thread_dead || ++nocache_frees < MV_FREE_CACHE_AFTER)
		return tc;
	return mv_tcache_of(&a->heap);
}

static MV_NOINLINE void free_slow(void *p)
{
	struct mova_arena *a = mv_default;
	if (!p)
		return;
	mv_fstat(mv_tc_default, free_slow);
	if (!a || !mv_arena_owns(a, p) ||
	    !mv_zone_pfn_valid(&a->heap.zone, mv_zone_pfn(&a->heap.zone, p))) {
		mv_report_invalid("pointer", "free", p);
		return;
	}
	struct mv_page *pg = mv_zone_page_of(p);
	uint8_t type = mv_pg_load(pg->type);
	struct mv_tcache *tc = free_cache(a);
	if (type == PG_LARGE && ((uintptr_t)p & MV_PAGE_MASK) == 0 &&
	    !is_migrate_movable(mv_pg_load(pg->mt))) {
		large_live_add(a, tc, -(int64_t)mv_large_size(pg));
		if (!tc || !mv_large_free_cached(&a->heap, tc, p, pg))
			mv_slowpath_large_free(a, tc, p);
		return;
	}
	struct mv_slab *s = type == PG_SLAB ? mv_pg_load(pg->slab) : NULL;
	if (!s || mv_classes[s->cls].movable) {
		mv_report_invalid("pointer", "free", p);
		return;
	}
	uint8_t mark = mv_pg_load(pg->order);
	if (unlikely(mark == MV_PG_PURGED)) {
		/* a slot starting on a page its slab gave back: parked, free */
		mv_report_invalid("pointer (double free)", "free", p);
		return;
	}
	size_t off = (size_t)((char *)p - s->addr);
	uint32_t idx = mv_class_slot(&mv_classes[s->cls], off);
	if ((size_t)idx * s->usize != off || idx >= mv_rload(s->nbump)) {
		mv_report_invalid("pointer", "free", p);
		return;
	}
	/* a slab with twins (slab.h): a twin's first slot frees both, its
	 * second is an interior pointer */
	int twin = mark == MV_PG_TWINS ? mv_twin_kind(s, idx) : 0;
	if (twin < 0) {
		mv_report_invalid("pointer (inside an object)", "free", p);
		return;
	}
	uint64_t *w = p;
	if (twin > 0 && mv_twin_end(s, idx)) {
		uint64_t *w2 = (uint64_t *)(void *)((char *)p + s->usize);
		w[1] = dfkey(p);
		w2[1] = dfkey(w2);
		mv_count(&a->heap.vm, MV_VM_twin_free, 1);
		raw_free_slots(a, tc, s, p, w2);
		return;
	}
	if (unlikely(w[1] == dfkey(p))) {
		mv_report_invalid("pointer (double free)", "free", p);
		return;
	}
	w[1] = dfkey(p);
	raw_free_slots(a, tc, s, p, NULL);
}

void mova_free(void *p)
{
	/* the default arena's section: the map entry says so (zone.h) */
	uintptr_t e = mv_secmap_entry(p);
	if (likely(e & MV_SECMAP_DFLT)) {
		const struct mv_section *sec = (const struct mv_section *)(e - MV_SECMAP_DFLT);
		const struct mv_page *pg =
		    mv_section_desc(sec) + (((uintptr_t)p >> MV_PAGE_SHIFT) & MV_SECTION_PAGE_MASK);
		/* a slab page, not given back (purged: order 1) */
		if (likely(mv_pg_load(pg->type_order) == PG_SLAB)) {
			struct mv_slab *s = mv_pg_load(pg->slab);
			struct mv_tcache *tc = mv_tc_default;
			size_t soff = (size_t)((char *)p - s->addr);
			uint32_t idx = (uint32_t)(((uint64_t)soff * s->magic) >> 32);
			uint64_t *w = p;
			if (likely((size_t)idx * s->usize == soff && w[1] != dfkey(p))) {
				if (likely(mv_rload(s->fast_owner) == tc && idx < s->nbump)) {
					/* straight onto the allocation list: a malloc/free
					 * loop then never leaves the fast path */
					/* two 8-byte stores, kept apart: gcc would merge
					 * them into one 16-byte vector store, and the next
					 * malloc's load of the link then waits on a
					 * vector-to-integer store forward (4.4 -> 4.0 ns
					 * a pair at 64 B) */
					w[1] = dfkey(p);
					__asm__("" ::: "memory");
					mv_slab_push(s, p);
					mv_owner_add(&tc->live_bytes, -(int64_t)s->usize);
					mv_fstat(tc, free_local);
					/* an emptied slab that is not current goes
					 * idle. One branch on both: a slab of a few
					 * live objects empties at random (bench-wp
					 * tight: a mispredict every third free when
					 * used == 0 is tested alone, 30 ns a pair
					 * instead of 18), and a random free hits a
					 * current slab at random (randstep: 1.1M
					 * mispredicts per 0.6M frees when !cur is
					 * tested alone, 0.69 s instead of 0.41) */
					s->used--;
					if (unlikely((s->used | s->cur) == 0)) {
						mv_raw_slab_idle(&mv_default->heap, tc, s);
						/* freed pages may be work for kcompactd */
						mv_slowpath_tick(mv_default);
					}
					return;
				}
				/* another thread's raw slab: straight onto its remote list */
				if (likely(!tc->dead && idx < mv_rload(s->nbump) &&
					   mv_pg_load(pg->cls) < MV_NR_RAW_CLASSES)) {
					w[1] = dfkey(p);
					mv_owner_add(&tc->live_bytes, -(int64_t)s->usize);
					mv_fstat(tc, free_remote);
					mv_raw_free_remote_buffered(tc, s, p);
					return;
				}
			}
		}
	}
	free_slow(p);
}

/* ------------------------------------------------------------ the rest */

size_t mova_usable_size(const void *p)
{
	struct mova_arena *a = mv_default;
	if (!p || !a || !mv_arena_owns(a, p) ||
	    !mv_zone_pfn_valid(&a->heap.zone, mv_zone_pfn(&a->heap.zone, p)))
		return 0;
	const struct mv_page *pg = mv_zone_page_of(p);
	uint8_t type = mv_pg_load(pg->type);
	if (type == PG_SLAB) {
		/* only the start of a live slot: an interior or freed pointer is
		 * not something realloc may resize (0, as for foreign pointers) */
		struct mv_slab *s = mv_pg_load(pg->slab);
		if (!s || mv_classes[s->cls].movable)
			return 0;
		size_t off = (size_t)((const char *)p - s->addr);
		uint32_t idx = mv_class_slot(&mv_classes[s->cls], off);
		if ((size_t)idx * s->usize != off || idx >= mv_rload(s->nbump))
			return 0;
		int twin = mv_pg_load(pg->order) == MV_PG_TWINS ? mv_twin_kind(s, idx) : 0;
		if (twin)
			return twin > 0 ? 2 * (size_t)s->usize : 0;
		if (((const uint64_t *)p)[1] == dfkey(p))
			return 0;
		return s->usize;
	}
	if (type == PG_LARGE && ((uintptr_t)p & MV_PAGE_MASK) == 0)
		return mv_large_pages(pg) << MV_PAGE_SHIFT;
	return 0;
}

void *mova_realloc(void *p, size_t size)
{
	if (!p)
		return mova_malloc(size);
	if (size == 0) {
		/* glibc's choice: free and return NULL */
		mova_free(p);
		return NULL;
	}
	size_t usable = mova_usable_size(p);
	if (!usable) {
		mv_report_invalid("pointer", "realloc", p);
		errno = EINVAL;
		return NULL;
	}
	struct mova_arena *a = mv_default;
	const struct mv_page *pg = mv_zone_page_of(p);
	if (mv_pg_load(pg->type) == PG_LARGE) {
		size_t old = mv_large_size(pg);
		struct mv_tcache *tc = mv_tcache_peek(&a->heap);
		if (size > MV_SMALL_MAX && mv_large_resize(&a->heap, tc, p, size)) {
			large_live_add(a, tc, (int64_t)size - (int64_t)old);
			return p;
		}
		if (size > MV_SMALL_MAX && tc && !is_migrate_movable(mv_pg_load(pg->mt))) {
			/* to a new run, by moving the pages where that saves faults */
			void *q = mv_slowpath_large_realloc(a, tc, p, size);
			if (q)
				large_live_add(a, tc, (int64_t)size - (int64_t)old);
			return q;
		}
	} else if (size <= usable && size > usable / 2) {
		return p; /* the slot still fits without wasting half of it */
	}
	void *q = mova_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, MV_MIN(size, usable));
	mova_free(p);
	return q;
}

void *mova_aligned_alloc(size_t alignment, size_t size)
{
	if (!mv_is_pow2(alignment)) {
		errno = EINVAL;
		return NULL;
	}
	if (alignment <= 16)
		return mova_malloc(size);
	if (alignment <= MV_PAGE_SIZE && size <= MV_SMALL_MAX) {
		/* power-of-two classes hold naturally aligned slots (slabs are page-aligned) */
		size_t s = MV_MAX(size, alignment);
		s = (size_t)1 << (mv_ilog2(s - 1) + 1);
		if (s <= MV_SMALL_MAX)
			return malloc_slow(s, false);
	}
	struct mova_arena *a = mv_default ? mv_default : mv_default_arena_slow();
	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	void *p = mv_slowpath_large(a, tc, MV_MAX(size, (size_t)MV_SMALL_MAX + 1), alignment,
				    MIGRATE_UNMOVABLE, false);
	if (p) {
		large_live_add(a, tc, (int64_t)MV_MAX(size, (size_t)MV_SMALL_MAX + 1));
		mv_pg_store(mv_zone_page_of(p)->priv,
			    (uint64_t)MV_MAX(size, (size_t)MV_SMALL_MAX + 1));
	}
	return p;
}

int mova_posix_memalign(void **memptr, size_t alignment, size_t size)
{
	if (!memptr || !mv_is_pow2(alignment) || alignment % sizeof(void *))
		return EINVAL;
	int saved = errno;
	void *p = mova_aligned_alloc(alignment, size);
	if (!p) {
		int err = errno;
		errno = saved;
		return err == EINVAL ? EINVAL : ENOMEM;
	}
	*memptr = p;
	errno = saved;
	return 0;
}

#ifdef MV_PRELOAD
/* The preload library's malloc family: aliases, so a call to malloc is a
 * call to mova_malloc (mimalloc's alias.c does the same). */
#define MV_ALIAS(name, target) \
	__typeof__(target) name __attribute__((alias(#target), visibility("default")))
MV_ALIAS(malloc, mova_malloc);
MV_ALIAS(calloc, mova_calloc);
MV_ALIAS(realloc, mova_realloc);
MV_ALIAS(free, mova_free);
MV_ALIAS(aligned_alloc, mova_aligned_alloc);
MV_ALIAS(posix_memalign, mova_posix_memalign);
MV_ALIAS(malloc_usable_size, mova_usable_size);
#endif
