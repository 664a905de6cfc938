/* SPDX-License-Identifier: MIT */
/*
 * slab.c: slab creation and death, and the slow paths of both ownership
 * schemes described in slab.h (mimalloc's thread-owned pages for raw
 * slabs, SLUB's frozen current slab for movable ones).
 *
 * Concurrency of a raw slab, by field:
 *   free, local_free, used, nbump    the owner only (after abandon: bin lock)
 *   xfree                            atomic; remote freers push, owner takes
 *   owner, fast_owner                written by the owner (or an adopter under
 *                                    the bin lock), read racily by freers
 * A movable slab's fields belong to its owner while frozen (owner set) and
 * to whoever holds the bin lock otherwise; xlist is always under the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "large.h"
#include "os.h"

struct mv_slab mv_slab_empty;

/* ------------------------------------------------------------ free slots */

uint64_t mv_fl_secret;
uint64_t mv_slot_secret;

static void make_secrets(void)
{
	uint64_t k[2] = {0, 0};
	if (getrandom(k, sizeof k, GRND_NONBLOCK) != sizeof k) {
		/* no entropy yet (early boot): the clock and the address space
		 * layout, better than nothing */
		uint64_t x = (uint64_t)(uintptr_t)&k ^ mv_os_now_ns();
		k[0] = x * 0x9e3779b97f4a7c15ull;
		k[1] = (x ^ (uint64_t)(uintptr_t)&make_secrets) * 0xbf58476d1ce4e5b9ull;
	}
	mv_fl_secret = k[0] | 1;
	mv_slot_secret = k[1] | 1;
}

void mv_slab_init_secrets(void)
{
	/* they never change once a slot has been encoded with them */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, make_secrets);
}

void mv_slab_corrupt(const struct mv_slab *s, const void *slot, const void *next, const char *list)
{
	mv_fatal("corrupt %s: free slot %p links to %p, not a free slot of its slab "
		 "(size class %u, %u-byte slots at %p..%p, pfn %u): "
		 "a write after free or an overflow into a free slot",
		 list, slot, next, (unsigned)s->cls, s->usize, (void *)s->addr,
		 (void *)(s->addr + (size_t)s->span16 * 16), s->pfn);
}

void mv_slab_splice(struct mv_slab *s, void *head, const char *list)
{
	/* a list of s holds at most nregs slots: a longer walk is a cycle
	 * (a slot pushed twice), which would hand the slot out twice */
	void *tail = head;
	for (uint32_t n = 1;; n++) {
		void *next = mv_fl_get(tail);
		if (!next)
			break;
		if (unlikely(mv_fl_bad(s, next) || n >= s->nregs))
			mv_slab_corrupt(s, tail, next, list);
		tail = next;
	}
	mv_fl_set(tail, s->free);
	s->free = head;
}

static void mark_purged(struct mv_heap *h, struct mv_slab *s, uint32_t pages, uint8_t v);
static void unkeep(struct mv_tcache *tc, struct mv_slab *s);

/* ------------------------------------------------------------ creation */

static void slab_setup(struct mv_heap *h, struct mv_slab *s, unsigned cls, size_t pfn)
{
	const struct mv_class *c = &mv_classes[cls];
	int mt = c->mt;
	s->addr = mv_zone_addr(&h->zone, pfn);
	s->pfn = (uint32_t)pfn;
	s->span16 = (uint32_t)(((size_t)c->nregs * c->size) >> 4);
	s->purged = 0;
	s->refault = 0;
	s->twinscan = 0;
	s->cur = 0;
	if (!c->movable)
		mv_rstore(s->twins, (struct mv_twins *)NULL);
	s->cls = (uint8_t)cls;
	s->usize = c->size;
	s->magic = c->magic;
	s->nregs = c->nregs;
	/* handle objects' back-references live at the slab's end, after the
	 * slots: they die with it, and the metadata pool does not fragment */
	s->backref = c->movable ? (uint64_t *)(void *)(s->addr + (size_t)c->nregs * c->size) : NULL;
	for (unsigned i = 0; i < c->npages; i++) {
		struct mv_page *pg = mv_pfn_to_page(&h->zone, pfn + i);
		mv_pg_store(pg->slab, s);
		mv_pg_store(pg->x, (uint32_t)pfn);
		mv_pg_store(pg->cls, (uint8_t)cls);
		mv_pg_store(pg->mt, (uint8_t)mt);
		mv_pg_store(pg->order, (uint8_t)0); /* not purged (free's compare) */
		/* release: a scanner that sees PG_SLAB sees the header's fields */
		__atomic_store_n(&pg->type, (uint8_t)PG_SLAB, __ATOMIC_RELEASE);
	}
	mv_relaxed_add(&h->bins[cls].nr_slabs, 1);
	mv_count(&h->vm, MV_VM_slab_alloc, 1);
}

static struct mv_slab *slab_header(struct mv_heap *h, unsigned cls)
{
	(void)cls;
	struct mv_slab *s = mv_meta_alloc(&h->meta, sizeof *s);
	if (!s)
		errno = ENOMEM;
	return s;
}

static void slab_header_free(struct mv_heap *h, struct mv_slab *s)
{
	mv_meta_free(&h->meta, s, sizeof *s);
}

struct mv_slab *mv_slab_new(struct mv_heap *h, struct mv_tcache *tc, unsigned cls)
{
	const struct mv_class *c = &mv_classes[cls];
	int mt = c->mt;
	struct mv_slab *s = slab_header(h, cls);
	if (!s)
		return NULL;
	size_t pfn = mv_pcp_alloc_exact(&h->zone, tc ? &tc->pcp : NULL, c->npages, mt, NULL);
	if (pfn == MV_PFN_NONE) {
		slab_header_free(h, s);
		errno = ENOMEM;
		return NULL;
	}
	/* owned before the descriptors publish it: compaction's scanner can
	 * find the slab from then on, and must see it frozen */
	s->list = MV_SL_OWNED;
	atomic_store_explicit(&s->owner, tc, memory_order_relaxed);
	if (tc && !mv_classes[cls].movable)
		s->fast_owner = tc;
	slab_setup(h, s, cls, pfn);
	return s;
}

void mv_slab_destroy(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s)
{
	const struct mv_class *c = &mv_classes[s->cls];
	struct mv_twins *tw = c->movable ? NULL : s->twins;
	if (s->purged || tw) /* its pages go back to the buddy allocator as they are */
		mark_purged(h, s, tw ? (uint32_t)(((uint64_t)1 << c->npages) - 1) : s->purged, 0);
	if (tw)
		mv_meta_free(&h->meta, tw, sizeof *tw + tw->words * sizeof(uint64_t));
	for (unsigned i = 0; i < c->npages; i++) {
		struct mv_page *pg = mv_pfn_to_page(&h->zone, s->pfn + i);
		mv_pg_store(pg->type, (uint8_t)PG_NONE);
		mv_pg_store(pg->slab, (struct mv_slab *)NULL);
	}
	mv_pcp_free_range(&h->zone, tc ? &tc->pcp : NULL, s->pfn, c->npages);
	mv_relaxed_add(&h->bins[s->cls].nr_slabs, (uint64_t)-1);
	slab_header_free(h, s);
	mv_count(&h->vm, MV_VM_slab_free, 1);
}

bool mv_slab_extend(struct mv_slab *s)
{
	uint32_t bump = s->nbump, left = s->nregs - bump;
	if (!left)
		return false;
	/* a page's worth at a time, as mimalloc's extend: touch memory lazily */
	uint32_t take = MV_MAX(1u, 4096u / s->usize);
	if (take > left)
		take = left;
	char *first = s->addr + (size_t)bump * s->usize;
	char *p = first;
	/* raw slots get the double-free key: a free of one never handed out
	 * is then refused like a double free (without it, it was pushed a
	 * second time and handed out twice). Handle slots are never freed by
	 * address, and their memory reaches the caller uncleared: no key. */
	bool key = !mv_classes[s->cls].movable;
	for (uint32_t i = 1; i < take; i++) {
		mv_fl_set(p, p + s->usize);
		if (key)
			((uint64_t *)(void *)p)[1] = mv_slot_key(p);
		p += s->usize;
	}
	mv_fl_set(p, s->free);
	if (key)
		((uint64_t *)(void *)p)[1] = mv_slot_key(p);
	s->free = first;
	mv_rstore(s->nbump, bump + take);
	return true;
}

/* ------------------------------------------------------------ slab queues */

static void q_remove(struct mv_slabq *q, struct mv_slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		q->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		q->last = s->prev;
	s->next = s->prev = NULL;
}

static void q_push_front(struct mv_slabq *q, struct mv_slab *s)
{
	s->prev = NULL;
	s->next = q->first;
	if (q->first)
		q->first->prev = s;
	else
		q->last = s;
	q->first = s;
}

static void q_push_back(struct mv_slabq *q, struct mv_slab *s)
{
	s->next = NULL;
	s->prev = q->last;
	if (q->last)
		q->last->next = s;
	else
		q->first = s;
	q->last = s;
}

/* ------------------------------------------------------------ raw slabs */

/* Take the remote frees off xfree: their list (NULL if none). Owner only. */
static void **raw_take_xfree(struct mv_slab *s)
{
	uint64_t old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
	for (;;) {
		if (!MV_XF_PTR(old))
			return NULL;
		if (MV_XF_STATE(old) == MV_DELAYING) {
			mv_cpu_relax();
			old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			&s->xfree, &old, MV_XF_MAKE(NULL, 0, MV_XF_STATE(old)),
			memory_order_acquire, memory_order_relaxed))
			break;
	}
	s->used -= MV_XF_COUNT(old);
	return MV_XF_PTR(old);
}

/* Refill an empty `free` from one source, without walking a list (as
 * mimalloc's collect): the owner's own frees first, else the remote ones. */
static void raw_collect(struct mv_slab *s)
{
	if (s->local_free) {
		s->free = s->local_free;
		s->local_free = NULL;
		return;
	}
	s->free = raw_take_xfree(s);
}

/* Every free slot into `free` (abandoning a slab). */
static void raw_collect_all(struct mv_slab *s)
{
	void *local = s->local_free, *remote = raw_take_xfree(s);
	s->local_free = NULL;
	if (local)
		mv_slab_splice(s, local, "local free list");
	if (remote)
		mv_slab_splice(s, remote, "remote free list");
}

/* Set the delayed state from `from` to `to`, waiting out a notifier. */
static bool raw_set_delayed(struct mv_slab *s, unsigned from_mask, unsigned to, bool need_empty)
{
	uint64_t old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
	for (;;) {
		unsigned st = MV_XF_STATE(old);
		if (st == MV_DELAYING) {
			mv_cpu_relax();
			old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
			continue;
		}
		if (!(from_mask & (1u << st)))
			return true; /* already elsewhere: nothing to do */
		if (need_empty && MV_XF_PTR(old))
			return false;
		uint64_t nw = (old & ~(uint64_t)3) | to;
		if (atomic_compare_exchange_weak_explicit(&s->xfree, &old, nw, memory_order_acq_rel,
							  memory_order_relaxed))
			return true;
	}
}

/* ------------------------------------------------------------ page purge
 *
 * Pages of a live raw slab that hold only free slots go back to the OS
 * (MADV_DONTNEED), as glibc's malloc_trim and jemalloc's page-granular
 * purge do (issue 15). A free slot touching a purged page is parked, off
 * every list, until the owner runs out of free slots on backed pages and
 * takes pages back (raw_unpurge: they refault as zeros). A page is purged
 * only when every slot touching it is free, and a parked slot is never
 * handed out, so no live slot touches a purged page: the free slots are
 * those listed and those parked. (Listing a slot that starts on a kept
 * page and reaches into a purged one, as this first did, made a refill
 * refault that page for a slot that looked free of cost.) A free slot's
 * link and double-free key live in its first 16 bytes; the purged page's
 * descriptor says it is purged (order 1), so a free of a parked slot
 * whose key went with its first page (a double free) is caught by free's
 * one compare and reported; one whose first page stayed keeps its key.
 * Owner only: the owning thread, or the bin lock for abandoned slabs,
 * with every list collected into s->free. */
#define RAW_BM_WORDS ((MV_SLAB_MAX_PAGES * 4096 / 16 + 63) / 64)

/* the pages slot i of s touches, a bit each */
static uint32_t slot_pages(const struct mv_slab *s, uint32_t i)
{
	size_t lo = ((size_t)i * s->usize) >> MV_PAGE_SHIFT;
	size_t hi = ((size_t)(i + 1) * s->usize - 1) >> MV_PAGE_SHIFT;
	return (uint32_t)((((uint64_t)2 << hi) - 1) & ~(((uint64_t)1 << lo) - 1));
}

static bool slot_parked(const struct mv_slab *s, uint32_t i)
{
	return s->purged & slot_pages(s, i);
}

/* the free slots of s: on s->free (walked, checked) or parked; their count */
static uint32_t raw_free_bitmap(const struct mv_slab *s, uint64_t *bm)
{
	memset(bm, 0, RAW_BM_WORDS * sizeof *bm);
	uint32_t n = 0;
	for (void *p = s->free; p; p = mv_fl_next(s, p)) {
		uint32_t i = mv_slab_slot(s, p);
		if ((bm[i / 64] >> (i % 64) & 1) || n >= s->nregs)
			mv_slab_corrupt(s, p, p, "free list (a slot twice)");
		bm[i / 64] |= (uint64_t)1 << (i % 64);
		n++;
	}
	for (uint32_t i = 0; s->purged && i < s->nbump; i++)
		if (slot_parked(s, i) && !(bm[i / 64] >> (i % 64) & 1)) {
			bm[i / 64] |= (uint64_t)1 << (i % 64);
			n++;
		}
	return n;
}

/* s->free := the free slots of bm, but those parked under skip */
static void raw_rebuild(struct mv_slab *s, const uint64_t *bm, uint32_t skip)
{
	void *head = NULL;
	for (uint32_t i = s->nbump; i-- > 0;) {
		if (!(bm[i / 64] >> (i % 64) & 1) || (skip & slot_pages(s, i)))
			continue;
		char *p = s->addr + (size_t)i * s->usize;
		mv_fl_set(p, head);
		head = p;
	}
	s->free = head;
}

static void mark_purged(struct mv_heap *h, struct mv_slab *s, uint32_t pages, uint8_t v)
{
	for (unsigned k = 0; k < 32; k++)
		if (pages >> k & 1)
			mv_pg_store(mv_pfn_to_page(&h->zone, s->pfn + k)->order, v);
}

/* Give back the pages of s holding only free slots; how many went. */
static unsigned raw_purge(struct mv_heap *h, struct mv_slab *s)
{
	const struct mv_class *c = &mv_classes[s->cls];
	if (c->movable || c->npages < 2 || !s->used)
		return 0;
	uint64_t bm[RAW_BM_WORDS];
	uint32_t nfree = raw_free_bitmap(s, bm), want = 0;
	for (unsigned k = 0; k < c->npages; k++) {
		if (s->purged >> k & 1)
			continue;
		size_t lo = (size_t)k << MV_PAGE_SHIFT, hi = lo + MV_PAGE_SIZE;
		uint32_t first = (uint32_t)(lo / s->usize), last = (uint32_t)((hi - 1) / s->usize);
		if (last >= s->nbump) /* the bump region: never touched, or partly */
			continue;
		bool all = true;
		for (uint32_t i = first; i <= last && all; i++)
			all = bm[i / 64] >> (i % 64) & 1;
		if (all)
			want |= 1u << k;
	}
	if (!want)
		return 0;
	raw_rebuild(s, bm, s->purged | want);
	s->used = s->nbump - nfree;
	mark_purged(h, s, want, MV_PG_PURGED);
	for (unsigned k = 0; k < c->npages;) {
		if (!(want >> k & 1)) {
			k++;
			continue;
		}
		unsigned e = k;
		while (e < c->npages && (want >> e & 1))
			e++;
		if (!mv_os_decommit(s->addr + ((size_t)k << MV_PAGE_SHIFT), (size_t)(e - k)
										<< MV_PAGE_SHIFT))
			mv_zone_held_unbacked(&h->zone, s->pfn + k, e - k);
		k = e;
	}
	s->purged |= want;
	mv_count(&h->vm, MV_VM_pages_returned, (uint64_t)mv_popcount64(want));
	return (unsigned)mv_popcount64(want);
}

/* Take the purged pages `pages` of s back, s having no free slot listed:
 * the parked slots that touch them and no other purged page become its
 * free list. They are free (no live slot touches a purged page), so
 * s->used stays; only the slots over those pages are visited. */
static void raw_unpurge(struct mv_heap *h, struct mv_slab *s, uint32_t pages)
{
	pages &= s->purged;
	if (!pages)
		return;
	MV_ASSERT(!s->free);
	unsigned lo = (unsigned)__builtin_ctz(pages), hi = 31u - (unsigned)__builtin_clz(pages);
	for (unsigned k = lo; k <= hi; k++)
		if (pages >> k & 1)
			mv_zone_held_backed(&h->zone, s->pfn + k, 1);
	mark_purged(h, s, pages, s->twins ? MV_PG_TWINS : 0);
	s->purged &= ~pages;
	uint32_t first = (uint32_t)(((size_t)lo << MV_PAGE_SHIFT) / s->usize);
	uint32_t last = (uint32_t)(((((size_t)hi + 1) << MV_PAGE_SHIFT) - 1) / s->usize);
	if (last >= s->nbump)
		last = s->nbump - 1;
	void *head = NULL;
	for (uint32_t i = last + 1; i-- > first;) {
		uint32_t sp = slot_pages(s, i);
		if (!(sp & pages) || (sp & s->purged))
			continue;
		char *p = s->addr + (size_t)i * s->usize;
		/* a slot whose first page refaults (as zeros) gets its
		 * double-free key back */
		if (pages >> (((size_t)i * s->usize) >> MV_PAGE_SHIFT) & 1)
			((uint64_t *)(void *)p)[1] = mv_slot_key(p);
		mv_fl_set(p, head);
		head = p;
	}
	s->free = head;
}

/* ------------------------------------------------------------ twin slots
 *
 * (slab.h has what twins are.) When a class has no free slot on a backed
 * page, its slow path takes a reserved pair of a sparse slab of the half
 * class before it faults any page in: free memory among small objects
 * then takes a refill of objects twice their size. The pairs are found a
 * slab at a time (raw_twin_take), on backed pages, and counted as used
 * while reserved, so that nothing else (the purge, the decay, retirement)
 * needs to know of them; they go back to the free list when the owner
 * decays, flushes or exits (raw_twin_return). The search goes round the
 * half class's queue from where it stopped, a few slabs a call, skipping
 * those found without a pair since the owner's last decay. Owner only.
 */
#define TWIN_MAX 4096       /* the largest class twins hold */
#define TWIN_SEARCH 16      /* slabs looked at in one search */
#define TWIN_WINDOW 256     /* twin allocations between checks for churn */
#define TWIN_OFF (1u << 16) /* slow paths without twins after churn */

/* the class whose twin slots hold an object of cls, or MV_NR_RAW_CLASSES:
 * past 256 B every raw class is twice one, and a power of two is left out
 * (aligned_alloc relies on those classes' natural alignment) */
static unsigned twin_half(unsigned cls)
{
	uint32_t sz = mv_classes[cls].size;
	if (sz <= 256 || sz > TWIN_MAX || !(sz & (sz - 1)))
		return MV_NR_RAW_CLASSES;
	unsigned hc = mv_raw_class(sz / 2);
	return mv_classes[hc].size * 2 == sz ? hc : MV_NR_RAW_CLASSES;
}

static bool bm_test(const uint64_t *bm, uint32_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

/* the next pair of s at or below slot i (a free slot i-1, i on backed
 * pages, from the top): its first slot, or UINT32_MAX */
static uint32_t twin_pair_below(const struct mv_slab *s, const uint64_t *bm, uint32_t i)
{
	for (; i >= 1 && i != UINT32_MAX; i--)
		if (bm_test(bm, i) && bm_test(bm, i - 1) && !slot_parked(s, i) &&
		    !slot_parked(s, i - 1))
			return i - 1;
	return UINT32_MAX;
}

/* Reserve the free pairs of s for twins, s being sparse: how many. */
static uint32_t raw_twin_take(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s)
{
	raw_collect_all(s);
	if (s->used * 2 > s->nregs || s->nbump < 2)
		return 0;
	uint64_t bm[RAW_BM_WORDS];
	raw_free_bitmap(s, bm);
	if (twin_pair_below(s, bm, s->nbump - 1) == UINT32_MAX)
		return 0;
	struct mv_twins *tw = s->twins;
	if (!tw) {
		uint32_t words = (s->nregs + 63) / 64;
		tw = mv_meta_alloc(&h->meta, sizeof *tw + words * sizeof(uint64_t));
		if (!tw)
			return 0;
		tw->words = words;
		mv_rstore(s->twins, tw);
		/* from now on every free of s takes free's slow path */
		for (unsigned k = 0; k < mv_classes[s->cls].npages; k++)
			if (!(s->purged >> k & 1))
				mv_pg_store(mv_pfn_to_page(&h->zone, s->pfn + k)->order,
					    (uint8_t)MV_PG_TWINS);
	}
	/* from the top down, so the chain hands out the lowest first */
	uint32_t n = 0;
	void *head = tw->head;
	for (uint32_t i = twin_pair_below(s, bm, s->nbump - 1); i != UINT32_MAX;
	     i = i ? twin_pair_below(s, bm, i - 1) : UINT32_MAX) {
		bm[i / 64] &= ~((uint64_t)1 << (i % 64));
		bm[(i + 1) / 64] &= ~((uint64_t)1 << ((i + 1) % 64));
		char *p = s->addr + (size_t)i * s->usize;
		mv_fl_set(p, head);
		head = p;
		n++;
	}
	raw_rebuild(s, bm, s->purged);
	unkeep(tc, s); /* not empty any more */
	tw->head = head;
	tw->nfree += n;
	s->used += 2 * n;
	return n;
}

/* The reserved pairs of s back to its free list. */
static void raw_twin_return(struct mv_slab *s)
{
	struct mv_twins *tw = s->twins;
	if (!tw || !tw->head)
		return;
	for (void *p = tw->head, *next; p; p = next) {
		next = mv_fl_next(s, p);
		char *q = (char *)p + s->usize;
		mv_fl_set(q, s->free);
		mv_fl_set(p, q);
		s->free = p;
	}
	s->used -= 2 * tw->nfree;
	tw->head = NULL;
	tw->nfree = 0;
}

/* Every reserved pair of tc back to its slab; no search goes on. */
static void raw_twins_return_all(struct mv_tcache *tc)
{
	for (unsigned c = 0; c < MV_NR_RAW_CLASSES; c++) {
		if (tc->twinsrc[c])
			raw_twin_return(tc->twinsrc[c]);
		tc->twinsrc[c] = tc->twincur[c] = NULL;
	}
	tc->twin_off = 0;
}

/* Churn: the last window's twins were freed about as fast as they were
 * made (a malloc/free loop of a size whose class has no slab, beside
 * sparse slabs of its half: every call on the slow paths, 1 us a pair
 * against 46 ns). Twins off, so the class gets a slab of its own. */
static bool raw_twin_churn(struct mv_heap *h, struct mv_tcache *tc)
{
	if (tc->twin_off) {
		if (tc->slow_count - tc->twin_off < TWIN_OFF)
			return true;
		tc->twin_off = 0;
	}
	if (tc->twin_allocs >= TWIN_WINDOW) {
		uint64_t frees = mv_relaxed_load(&h->vm.ev[MV_VM_twin_free]);
		bool churn = frees - tc->twin_frees0 >= tc->twin_allocs / 2;
		tc->twin_allocs = 0;
		tc->twin_frees0 = frees;
		if (churn) {
			raw_twins_return_all(tc);
			tc->twin_off = tc->slow_count | 1;
			return true;
		}
	}
	return false;
}

/* A slab of class hc with reserved pairs, found going round rawq[hc]. */
static struct mv_slab *raw_twin_source(struct mv_heap *h, struct mv_tcache *tc, unsigned hc)
{
	struct mv_slabq *q = &tc->rawq[hc];
	uint8_t mark = (uint8_t)(tc->decay_tick % 255 + 1);
	struct mv_slab *s = tc->twincur[hc];
	bool wrapped = false;
	for (unsigned n = 0; n < TWIN_SEARCH; n++) {
		/* the end of the queue's part with holes: round to its start
		 * (once; a slab parked full meanwhile also ends it) */
		if (!s || s->refault || s->list != MV_SL_OWNED || s->cls != hc) {
			if (wrapped)
				break;
			wrapped = true;
			s = q->first;
			if (!s || s->refault)
				break;
		}
		struct mv_slab *next = s->next;
		if (s != tc->raw_cur[hc] && s->twinscan != mark && s->nregs - s->used >= 4) {
			if (raw_twin_take(h, tc, s)) {
				if (tc->twinsrc[hc] && tc->twinsrc[hc] != s)
					raw_twin_return(tc->twinsrc[hc]);
				tc->twinsrc[hc] = s;
				tc->twincur[hc] = next;
				return s;
			}
			s->twinscan = mark;
		}
		s = next;
	}
	tc->twincur[hc] = s;
	return NULL;
}

/* An object of class cls in twin slots, or NULL. */
static void *raw_twin_alloc(struct mv_heap *h, struct mv_tcache *tc, unsigned cls)
{
	unsigned hc = twin_half(cls);
	if (hc >= MV_NR_RAW_CLASSES || raw_twin_churn(h, tc))
		return NULL;
	struct mv_slab *s = tc->twinsrc[hc];
	if (!s || !s->twins->head) {
		s = raw_twin_source(h, tc, hc);
		if (!s)
			return NULL;
	}
	struct mv_twins *tw = s->twins;
	void *p = tw->head;
	tw->head = mv_fl_next(s, p);
	tw->nfree--;
	uint32_t i = mv_slab_slot(s, p);
	atomic_fetch_or_explicit(&tw->live[i / 64], (uint64_t)1 << (i % 64), memory_order_relaxed);
	mv_count(&h->vm, MV_VM_twin_alloc, 1);
	if (!tc->twin_allocs++)
		tc->twin_frees0 = mv_relaxed_load(&h->vm.ev[MV_VM_twin_free]);
	return p;
}

void mv_tcache_set_raw_cur(struct mv_tcache *tc, unsigned cls, struct mv_slab *s)
{
	struct mv_slab *old = tc->raw_cur[cls];
	if (old != &mv_slab_empty)
		old->cur = 0;
	if (s != &mv_slab_empty)
		s->cur = 1;
	tc->raw_cur[cls] = s;
	if (mv_classes[cls].size <= 1024) {
		for (unsigned q = 0; q <= 64; q++)
			if (mv_raw_class_lut[q] == cls)
				mv_rstore(tc->direct[q], s); /* kcompactd writes it too */
	}
}

static void unkeep(struct mv_tcache *tc, struct mv_slab *s)
{
	if (s->kept) {
		s->kept = 0;
		tc->kept_pages -= mv_classes[s->cls].npages;
	}
}

static void raw_make_current(struct mv_tcache *tc, unsigned cls, struct mv_slab *s)
{
	unkeep(tc, s);
	s->refault = 0;
	s->tick = tc->decay_tick;
	struct mv_slabq *q = &tc->rawq[cls];
	if (q->first != s) {
		q_remove(q, s);
		q_push_front(q, s);
	}
	mv_tcache_set_raw_cur(tc, cls, s);
}

static void raw_retire(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s)
{
	/* A remote freer that notified us (DELAYING) has put its slots on
	 * our delayed list, which may be how this slab became empty, but has
	 * yet to write xfree back to NO_DELAYED: wait it out and shut the
	 * door before the header goes, as mimalloc's page free does (TSan:
	 * the final CAS landed on the next slab's header). */
	raw_set_delayed(s, 0xf, MV_NEVER_DELAYED, false);
	unkeep(tc, s);
	if (tc->twincur[s->cls] == s)
		tc->twincur[s->cls] = NULL;
	if (tc->twinsrc[s->cls] == s)
		tc->twinsrc[s->cls] = NULL; /* empty: no pair reserved */
	q_remove(&tc->rawq[s->cls], s);
	mv_owner_add(&tc->raw_pages, -(uint32_t)mv_classes[s->cls].npages);
	if (tc->raw_cur[s->cls] == s)
		mv_tcache_set_raw_cur(
		    tc, s->cls, tc->rawq[s->cls].first ? tc->rawq[s->cls].first : &mv_slab_empty);
	mv_slab_destroy(h, tc, s);
}

static struct mv_slab *raw_adopt(struct mv_heap *h, struct mv_tcache *tc, unsigned cls)
{
	struct mv_bin *bin = &h->bins[cls];
	if (!mv_rload(bin->abandoned))
		return NULL;
	mv_lock(&bin->lock);
	struct mv_slab *s = bin->abandoned;
	if (s) {
		mv_rstore(bin->abandoned, s->next);
		if (s->next)
			s->next->prev = NULL;
		s->next = s->prev = NULL;
		s->list = MV_SL_OWNED;
		s->refault = 0;
		atomic_store_explicit(&s->owner, tc, memory_order_relaxed);
	}
	mv_unlock(&bin->lock);
	if (s)
		raw_set_delayed(s, 1u << MV_NEVER_DELAYED, MV_NO_DELAYED, false);
	return s;
}

/*
 * The current slab of cls has no free slot. Take one, in this order:
 *   1 a slab of the queue with a free slot on a backed page (collecting
 *     its own and remote frees): reuse costs no memory;
 *   2 a slab that can grow without a new one: its purged pages taken back
 *     (all of them: a page at a time, round the slabs, made the frag
 *     workload's refill 30% slower and left more behind), or its bump
 *     region extended;
 *   3 an abandoned slab of the class, then a new one.
 * Slabs that only (2) can serve are moved to the back of the queue
 * (s->refault), where the walk of (1) stops; full ones are parked on
 * rawfull. A refill after a give-back so fills the holes left in backed
 * pages before it faults any page back in: taking purged pages back first
 * left the frag workload 1.18x its live data after refill.
 */
void *mv_raw_alloc_slow(struct mv_heap *h, struct mv_tcache *tc, unsigned cls)
{
	struct mv_slabq *q = &tc->rawq[cls];
	tc->slow_count++;
	mv_raw_collect_delayed(h, tc);
	for (;;) {
		struct mv_slab *s = q->first;
		while (s && !s->refault) {
			struct mv_slab *next = s->next;
			if (!s->free)
				raw_collect(s);
			if (s->free) {
				raw_make_current(tc, cls, s);
				return mv_slab_pop(s);
			}
			if (s->purged || s->nbump < s->nregs) {
				if (!next || next->refault) {
					/* no slab left to walk: grow this one now
					 * (a fresh slab's every extension came here) */
					if (s->purged)
						raw_unpurge(h, s, s->purged);
					else
						mv_slab_extend(s);
					if (s->free) {
						raw_make_current(tc, cls, s);
						return mv_slab_pop(s);
					}
				}
				/* (2) only: behind the others */
				q_remove(q, s);
				q_push_back(q, s);
				s->refault = 1;
			} else {
				/* full: park it, asking to hear of its next remote free */
				if (!raw_set_delayed(s, 1u << MV_NO_DELAYED, MV_USE_DELAYED, true))
					continue; /* a remote free just arrived: look again */
				q_remove(q, s);
				s->list = MV_SL_OWNED_FULL;
				mv_rstore(s->fast_owner, (struct mv_tcache *)NULL);
				q_push_back(&tc->rawfull, s);
			}
			s = next;
		}
		/* no hole in the class: twin slots in sparse slabs of the
		 * half class cost no page either */
		void *tw = raw_twin_alloc(h, tc, cls);
		if (tw)
			return tw;
		/* what is left of the queue is (2)'s: take the first */
		s = q->first;
		if (s) {
			if (!s->free)
				raw_collect(s);
			if (!s->free && s->purged)
				raw_unpurge(h, s, s->purged);
			if (!s->free)
				mv_slab_extend(s);
			if (s->free) {
				raw_make_current(tc, cls, s);
				return mv_slab_pop(s);
			}
			/* neither: full after all (for example, purged pages whose
			 * slots were all handed out before): walk it again */
			s->refault = 0;
			q_remove(q, s);
			q_push_front(q, s);
			continue;
		}
		s = raw_adopt(h, tc, cls);
		if (!s) {
			s = mv_slab_new(h, tc, cls);
			if (!s) {
				/* fail upward: the slow path above decides whether
				 * to reclaim and retry (slowpath.c) */
				mv_tcache_set_raw_cur(tc, cls, &mv_slab_empty);
				return NULL;
			}
		}
		mv_rstore(s->fast_owner, tc);
		mv_owner_add(&tc->raw_pages, (uint32_t)mv_classes[cls].npages);
		s->tick = tc->decay_tick;
		q_push_front(q, s);
		mv_tcache_set_raw_cur(tc, cls, s);
	}
}

void mv_raw_free_local_slow(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s, void *p)
{
	if (s->list == MV_SL_OWNED_FULL) {
		/* leave the full list; stop asking for notification */
		q_remove(&tc->rawfull, s);
		raw_set_delayed(s, 1u << MV_USE_DELAYED, MV_NO_DELAYED, false);
		q_push_back(&tc->rawq[s->cls], s);
		s->list = MV_SL_OWNED;
		mv_rstore(s->fast_owner, tc);
		s->twinscan = 0; /* it has a hole again: worth a look for twins */
	}
	mv_slab_push(s, p);
	s->used--;
	if (s->used == 0)
		mv_raw_slab_idle(h, tc, s);
}

void mv_raw_slab_idle(struct mv_heap *h, struct mv_tcache *tc, struct mv_slab *s)
{
	if (tc->raw_cur[s->cls] == s || s->kept)
		return;
	unsigned np = mv_classes[s->cls].npages;
	if (tc->kept_pages + np <= mv_kept_max(&h->zone)) {
		s->kept = 1;
		tc->kept_pages += np;
		return;
	}
	raw_retire(h, tc, s);
}

void mv_raw_release_kept(struct mv_heap *h, struct mv_tcache *tc)
{
	/* Every owned slab, not only the kept ones: a slab whose slots all
	 * came back as remote frees (or as the owner's own frees while it was
	 * parked full) still counts them as used until its owner allocates
	 * from it again, which a thread that is done allocating never does.
	 * Take them in, and retire what is empty, the current slab included:
	 * 120 MiB freed by a live thread stayed resident through
	 * mova_thread_flush and mova_compact (issue 17 item 11). */
	raw_twins_return_all(tc);
	for (unsigned c = 0; c < MV_NR_RAW_CLASSES; c++) {
		struct mv_slab *s = tc->rawq[c].first, *next;
		for (; s; s = next) {
			next = s->next;
			raw_collect_all(s);
			if (s->used == 0)
				raw_retire(h, tc, s);
			else
				raw_purge(h, s);
		}
	}
}

void mv_raw_decay(struct mv_heap *h, struct mv_tcache *tc)
{
	uint32_t tick = tc->decay_tick++;
	raw_twins_return_all(tc);
	for (unsigned c = 0; c < MV_NR_RAW_CLASSES; c++) {
		struct mv_slab *s = tc->rawq[c].first, *next;
		for (; s; s = next) {
			next = s->next;
			bool cur = tc->raw_cur[c] == s;
			if (s->tick == tick && !cur)
				continue; /* made current since the last decay: in use */
			raw_collect_all(s);
			if (s->used == 0 && !cur)
				raw_retire(h, tc, s);
			else
				raw_purge(h, s);
		}
	}
}

/* Push a chain head..tail of n slots onto another thread's slab (one CAS),
 * or, when the owner parked the slab as full and asked to be told, onto the
 * owner's delayed list (mimalloc's delayed free). */
static void raw_push_remote(struct mv_slab *s, void *head, void *tail, uint32_t n)
{
	uint64_t old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
	bool notify;
	for (;;) {
		unsigned st = MV_XF_STATE(old);
		uint64_t nw;
		if (st == MV_DELAYING) {
			mv_cpu_relax();
			old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
			continue;
		}
		if (st == MV_USE_DELAYED) {
			nw = (old & ~(uint64_t)3) | MV_DELAYING;
			notify = true;
		} else {
			mv_fl_set(tail, MV_XF_PTR(old));
			nw = MV_XF_MAKE(head, MV_XF_COUNT(old) + n, st);
			notify = false;
		}
		/* acq_rel: taking DELAYING must acquire. The owner that asked to
		 * be told (USE_DELAYED) became the owner before it asked, and
		 * made its cache before that: our load of s->owner below must
		 * see that owner, and our use of its cache must come after the
		 * cache was made. With release alone the load could name the
		 * slab's previous owner, a thread that had exited and whose
		 * cache memory was another thread's by then (TSan caught it in
		 * threads::exit_while_others_free on a loaded machine). */
		if (atomic_compare_exchange_weak_explicit(&s->xfree, &old, nw, memory_order_acq_rel,
							  memory_order_relaxed))
			break;
	}
	if (!notify)
		return;
	/* DELAYING holds the owner: abandoning the slab (thread exit,
	 * mv_raw_abandon_all) first moves it to NEVER_DELAYED, and
	 * raw_set_delayed waits while the state is DELAYING; so the cache
	 * stays alive until our release of NO_DELAYED below, which the
	 * owner's acquiring CAS then reads. */
	struct mv_tcache *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
	void *first = atomic_load_explicit(&owner->xdelayed, memory_order_relaxed);
	do
		mv_fl_set(tail, first);
	while (!atomic_compare_exchange_weak_explicit(&owner->xdelayed, &first, head,
						      memory_order_release, memory_order_relaxed));
	old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&s->xfree, &old,
						      (old & ~(uint64_t)3) | MV_NO_DELAYED,
						      memory_order_release, memory_order_relaxed))
		;
}

void mv_raw_free_remote(struct mv_heap *h, struct mv_slab *s, void *p)
{
	(void)h;
	raw_push_remote(s, p, p, 1);
}

static void rbuf_flush(struct mv_rbuf *rb)
{
	if (rb->n)
		raw_push_remote(rb->s, rb->head, rb->tail, rb->n);
	rb->s = NULL;
	rb->n = 0;
}

void mv_raw_free_remote_buffered(struct mv_tcache *tc, struct mv_slab *s, void *p)
{
	/* the caller's own slab, parked full (no fast owner): a local free,
	 * which takes it off the full list. Sent to the remote list, such
	 * frees were counted as used until the thread next allocated from the
	 * slab, so a thread that freed everything and went idle kept it all
	 * (issue 17 item 11). mimalloc frees to its own full pages locally too. */
	if (atomic_load_explicit(&s->owner, memory_order_relaxed) == tc) {
		mv_raw_free_local_slow(tc->heap, tc, s, p);
		return;
	}
	struct mv_rbuf *rb = &tc->rbuf[((uintptr_t)s >> 7) & (MV_RBUF_SLOTS - 1)];
	if (rb->s != s) {
		rbuf_flush(rb);
		rb->s = s;
		rb->tail = p;
		mv_fl_set(p, NULL);
	} else {
		mv_fl_set(p, rb->head);
	}
	rb->head = p;
	if (++rb->n == MV_RBUF_BATCH)
		rbuf_flush(rb);
}

void mv_raw_rbuf_flush_all(struct mv_tcache *tc)
{
	for (unsigned i = 0; i < MV_RBUF_SLOTS; i++)
		rbuf_flush(&tc->rbuf[i]);
}

void mv_raw_collect_delayed(struct mv_heap *h, struct mv_tcache *tc)
{
	if (!atomic_load_explicit(&tc->xdelayed, memory_order_relaxed))
		return;
	void *p = atomic_exchange_explicit(&tc->xdelayed, NULL, memory_order_acquire);
	while (p) {
		struct mv_slab *s = mv_slab_of(&h->zone, p);
		/* the list runs through several slabs: the next slot must be a
		 * slot of a raw slab of this arena */
		void *next = mv_fl_get(p);
		if (MV_SECURE && next) {
			size_t pfn = mv_zone_pfn(&h->zone, next);
			const struct mv_page *pg = mv_pfn_to_page(&h->zone, pfn);
			struct mv_slab *ns = NULL;
			if (mv_heap_owns(h, next) && mv_zone_pfn_valid(&h->zone, pfn) &&
			    mv_pg_load(pg->type) == PG_SLAB)
				ns = mv_pg_load(pg->slab);
			if (!ns || mv_classes[ns->cls].movable || mv_fl_bad(ns, next))
				mv_slab_corrupt(s, p, next, "delayed-free list");
		}
		mv_raw_free_local_slow(h, tc, s, p);
		p = next;
	}
}

static void raw_abandon_list(struct mv_heap *h, struct mv_tcache *tc, struct mv_slabq *q)
{
	struct mv_slab *s;
	while ((s = q->first)) {
		q_remove(q, s);
		unkeep(tc, s);
		mv_owner_add(&tc->raw_pages, -(uint32_t)mv_classes[s->cls].npages);
		raw_collect_all(s);
		mv_rstore(s->fast_owner, (struct mv_tcache *)NULL);
		if (s->used == 0) {
			mv_slab_destroy(h, tc, s);
			continue;
		}
		struct mv_bin *bin = &h->bins[s->cls];
		mv_lock(&bin->lock);
		atomic_store_explicit(&s->owner, (struct mv_tcache *)NULL, memory_order_relaxed);
		s->list = MV_SL_ABANDONED;
		s->prev = NULL;
		s->next = bin->abandoned;
		if (s->next)
			s->next->prev = s;
		mv_rstore(bin->abandoned, s);
		mv_unlock(&bin->lock);
	}
}

void mv_raw_fork_child_fixup(struct mv_tcache *tc)
{
	/* A thread of the parent that was between DELAYING and NO_DELAYED in
	 * raw_push_remote does not exist here: nobody would ever end its
	 * notification, and the owner would wait for it forever. End it. Its
	 * chain is on the owner's delayed list if it got that far, else lost
	 * (a few slots stay counted as used). */
	struct mv_slabq *qs[MV_NR_RAW_CLASSES + 1];
	for (unsigned c = 0; c < MV_NR_RAW_CLASSES; c++)
		qs[c] = &tc->rawq[c];
	qs[MV_NR_RAW_CLASSES] = &tc->rawfull;
	/* the queues may be torn too: a bounded walk (a slab missed here only
	 * matters if a free reaches it while it is stuck) */
	for (unsigned i = 0; i <= MV_NR_RAW_CLASSES; i++) {
		unsigned steps = 0;
		for (struct mv_slab *s = qs[i]->first; s && steps < 4096; s = s->next, steps++) {
			uint64_t old = atomic_load_explicit(&s->xfree, memory_order_relaxed);
			if (MV_XF_STATE(old) == MV_DELAYING)
				atomic_store_explicit(&s->xfree,
						      (old & ~(uint64_t)3) | MV_NO_DELAYED,
						      memory_order_relaxed);
		}
	}
}

void mv_raw_abandon_all(struct mv_heap *h, struct mv_tcache *tc)
{
	/* 1. no more notifications: every slab to NEVER_DELAYED */
	for (unsigned c = 0; c < MV_NR_RAW_CLASSES; c++)
		for (struct mv_slab *s = tc->rawq[c].first; s; s = s->next)
			raw_set_delayed(s, 0xf, MV_NEVER_DELAYED, false);
	for (struct mv_slab *s = tc->rawfull.first; s; s = s->next)
		raw_set_delayed(s, 0xf, MV_NEVER_DELAYED, false);
	/* 2. the notifications already sent */
	mv_raw_collect_delayed(h, tc);
	raw_twins_return_all(tc);
	/* 3. hand every slab to its bin */
	for (unsigned c = 0; c < MV_NR_RAW_CLASSES; c++) {
		mv_tcache_set_raw_cur(tc, c, &mv_slab_empty);
		raw_abandon_list(h, tc, &tc->rawq[c]);
	}
	raw_abandon_list(h, tc, &tc->rawfull);
}

/* ------------------------------------------------------------ movable slabs */

static void bin_unlink(struct mv_slab **head, struct mv_slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		mv_rstore(*head, s->next); /* list heads are peeked at without the lock */
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static void bin_link(struct mv_slab **head, struct mv_slab *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	mv_rstore(*head, s);
}

static void bin_del(struct mv_bin *bin, struct mv_slab *s)
{
	switch (s->list) {
	case MV_SL_PARTIAL:
		bin_unlink(&bin->partial[s->fullness], s);
		mv_rstore(bin->nr_partial_free, bin->nr_partial_free - (s->nregs - s->used));
		break;
	case MV_SL_FULL: bin_unlink(&bin->full, s); break;
	case MV_SL_EMPTY:
		bin_unlink(&bin->empty, s);
		bin->nr_empty--;
		break;
	case MV_SL_ABANDONED: bin_unlink(&bin->abandoned, s); break;
	default: break;
	}
	s->list = MV_SL_NONE;
}

static void bin_add_shared(struct mv_bin *bin, struct mv_slab *s)
{
	if (s->used == 0) {
		s->list = MV_SL_EMPTY;
		bin_link(&bin->empty, s);
		bin->nr_empty++;
	} else if (s->used >= s->nregs) {
		s->list = MV_SL_FULL;
		bin_link(&bin->full, s);
	} else {
		s->list = MV_SL_PARTIAL;
		s->fullness =
		    (uint8_t)MV_MIN(MV_NR_FULLNESS - 1, s->used * MV_NR_FULLNESS / s->nregs);
		bin_link(&bin->partial[s->fullness], s);
		mv_rstore(bin->nr_partial_free, bin->nr_partial_free + (s->nregs - s->used));
	}
}

/* Movable slab s (under its bin lock): take in the frees other threads
 * left on its xlist while it was frozen or isolated. */
static void take_xlist(struct mv_slab *s)
{
	if (!s->xlist)
		return;
	mv_slab_splice(s, s->xlist, "remote free list");
	s->used -= s->nxlist;
	s->xlist = NULL;
	s->nxlist = 0;
}

#define MV_BIN_EMPTY_KEEP 1

void *mv_mov_alloc_slow(struct mv_heap *h, struct mv_tcache *tc, unsigned cls)
{
	struct mv_bin *bin = &h->bins[cls];
	unsigned mi = cls - MV_MOV_CLASS0;
	tc->slow_count++;
	/* the slow path answered a flush request first (slowpath.c), which
	 * may have unfrozen the current slab: read it now */
	struct mv_slab *s = tc->mov_cur[mi];
	if (s != &mv_slab_empty) {
		if (!s->free && mv_slab_extend(s))
			return mv_slab_pop(s);
		mv_lock(&bin->lock);
		take_xlist(s);
		if (s->free) {
			mv_unlock(&bin->lock);
			return mv_slab_pop(s);
		}
		/* full: give it back to the bin */
		atomic_store_explicit(&s->owner, (struct mv_tcache *)NULL, memory_order_relaxed);
		bin_add_shared(bin, s);
		tc->mov_cur[mi] = &mv_slab_empty;
	} else {
		mv_lock(&bin->lock);
	}
	/* the fullest partial slab first (zsmalloc's find_get_zspage), then an empty one */
	s = NULL;
	for (int f = MV_NR_FULLNESS - 1; f >= 0 && !s; f--)
		s = bin->partial[f];
	if (!s)
		s = bin->empty;
	if (s) {
		/* frozen under the lock: a free that takes the lock next must see
		 * the owner, or it would put the slab back on a list */
		bin_del(bin, s);
		s->list = MV_SL_OWNED;
		atomic_store_explicit(&s->owner, tc, memory_order_relaxed);
	}
	mv_unlock(&bin->lock);
	if (!s) {
		s = mv_slab_new(h, tc, cls);
		if (!s)
			return NULL; /* fail upward (slowpath.c) */
	}
	tc->mov_cur[mi] = s;
	if (!s->free)
		mv_slab_extend(s);
	return mv_slab_pop(s);
}

/* slot p of s, a slab tc does not own, under its bin's lock */
static void mov_free_shared(struct mv_heap *h, struct mv_tcache *tc, struct mv_bin *bin,
			    struct mv_slab *s, void *p)
{
	if (atomic_load_explicit(&s->owner, memory_order_relaxed)) {
		/* another thread's current slab: its owner takes these in */
		mv_fl_set(p, s->xlist);
		s->xlist = p;
		s->nxlist++;
		return;
	}
	bin_del(bin, s);
	mv_slab_push(s, p);
	s->used--;
	if (s->used == 0 && bin->nr_empty >= MV_BIN_EMPTY_KEEP) {
		s->list = MV_SL_NONE;
		mv_slab_destroy(h, tc, s);
		return;
	}
	bin_add_shared(bin, s);
}

/* slot (or large object) p freed where no lock is needed: a large
 * object, or a slot of a slab tc owns; else its slab, for the bin's way */
static inline struct mv_slab *mov_free_unlocked(struct mv_heap *h, struct mv_tcache *tc, void *p)
{
	struct mv_page *pg = mv_zone_page_of(p);
	if (mv_pg_load(pg->type) == PG_LARGE) {
		mv_large_free(h, tc, p);
		return NULL;
	}
	struct mv_slab *s = mv_pg_load(pg->slab);
	if (tc && atomic_load_explicit(&s->owner, memory_order_relaxed) == tc) {
		mv_slab_push(s, p);
		s->used--;
		return NULL;
	}
	return s;
}

#define MV_FREE_CHUNK 256

void mv_mov_free_slots(struct mv_heap *h, struct mv_tcache *tc, void *const *slots, unsigned n)
{
	/* A batch's slots (an hfree's grace period, a migration's sources)
	 * are of every class, in any order: taking the bin lock as the class
	 * changes took it once a slot (272,903 times for 300,000 slots of a
	 * random hfree+halloc loop). Owned slabs' slots and large objects
	 * first, without a lock, then one lock per class present. */
	if (n == 1) {
		/* one slot (an hfree without readers) */
		void *p = slots[0];
		struct mv_slab *s = mov_free_unlocked(h, tc, p);
		if (!s)
			return;
		struct mv_bin *bin = &h->bins[s->cls];
		mv_lock(&bin->lock);
		mov_free_shared(h, tc, bin, s, p);
		mv_unlock(&bin->lock);
		return;
	}
	struct mv_slab *sl[MV_FREE_CHUNK];
	uint16_t next[MV_FREE_CHUNK], head[MV_NR_CLASSES];
	uint64_t present[(MV_NR_CLASSES + 63) / 64];
	for (unsigned base = 0; base < n; base += MV_FREE_CHUNK) {
		unsigned m = MV_MIN(n - base, MV_FREE_CHUNK);
		memset(present, 0, sizeof present);
		for (unsigned i = 0; i < m; i++) {
			struct mv_slab *s = mov_free_unlocked(h, tc, slots[base + i]);
			if (!s)
				continue;
			/* onto its class's list (the class's first one empties it) */
			unsigned cls = s->cls;
			uint64_t m64 = (uint64_t)1 << (cls % 64);
			if (!(present[cls / 64] & m64)) {
				present[cls / 64] |= m64;
				head[cls] = UINT16_MAX;
			}
			sl[i] = s;
			next[i] = head[cls];
			head[cls] = (uint16_t)i;
		}
		for (unsigned w = 0; w < sizeof present / sizeof present[0]; w++)
			while (present[w]) {
				unsigned cls = w * 64 + (unsigned)__builtin_ctzll(present[w]);
				present[w] &= present[w] - 1;
				struct mv_bin *bin = &h->bins[cls];
				mv_lock(&bin->lock);
				for (unsigned i = head[cls]; i != UINT16_MAX; i = next[i])
					mov_free_shared(h, tc, bin, sl[i], slots[base + i]);
				mv_unlock(&bin->lock);
			}
	}
}

void mv_mov_unfreeze_all(struct mv_heap *h, struct mv_tcache *tc)
{
	for (unsigned mi = 0; mi < MV_NR_MOV_CLASSES; mi++) {
		struct mv_slab *s = tc->mov_cur[mi];
		if (s == &mv_slab_empty)
			continue;
		struct mv_bin *bin = &h->bins[MV_MOV_CLASS0 + mi];
		mv_lock(&bin->lock);
		take_xlist(s);
		atomic_store_explicit(&s->owner, (struct mv_tcache *)NULL, memory_order_relaxed);
		if (s->used == 0 && bin->nr_empty >= MV_BIN_EMPTY_KEEP) {
			s->list = MV_SL_NONE;
			mv_slab_destroy(h, tc, s);
		} else {
			bin_add_shared(bin, s);
		}
		mv_unlock(&bin->lock);
		tc->mov_cur[mi] = &mv_slab_empty;
	}
}

/* ------------------------------------------------------------ movable slabs under migration */

int mv_slab_isolate(struct mv_heap *h, struct mv_slab *s, size_t pfn, unsigned cls,
		    struct mv_tcache *owner, bool trylock)
{
	if (!mv_is_handle_class(cls))
		return -EBUSY;
	struct mv_bin *bin = &h->bins[cls];
	if (trylock) {
		if (!mv_trylock(&bin->lock))
			return -EAGAIN;
	} else {
		mv_lock(&bin->lock);
	}
	/* re-checked under the bin lock: movable slabs die only under it */
	struct mv_page *pg = mv_pfn_to_page(&h->zone, pfn);
	bool ok = mv_pg_load(pg->type) == PG_SLAB && mv_pg_load(pg->slab) == s && s->pfn == pfn &&
		  s->cls == cls &&
		  (s->list == MV_SL_PARTIAL || s->list == MV_SL_FULL || s->list == MV_SL_EMPTY);
	if (ok) {
		bin_del(bin, s);
		s->list = MV_SL_ISOLATED;
		atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
	}
	mv_unlock(&bin->lock);
	return ok ? 0 : -EBUSY;
}

bool mv_slab_isolate_pair(struct mv_heap *h, unsigned cls, struct mv_tcache *owner,
			  struct mv_slab **srcp, struct mv_slab **dstp)
{
	struct mv_bin *bin = &h->bins[cls];
	mv_lock(&bin->lock);
	struct mv_slab *src = NULL, *dst = NULL;
	if (mv_bin_can_pack(h, cls)) {
		for (int f = 0; f < MV_NR_FULLNESS && !src; f++) {
			unsigned k = 0;
			for (struct mv_slab *t = bin->partial[f]; t && k < 64; t = t->next, k++)
				if (!src || t->used < src->used)
					src = t;
		}
		for (int f = MV_NR_FULLNESS - 1; f >= 0 && !dst; f--) {
			unsigned k = 0;
			for (struct mv_slab *t = bin->partial[f]; t && k < 64; t = t->next, k++)
				if (t != src && (!dst || t->used > dst->used))
					dst = t;
		}
		if (src && dst && src->used > dst->used) {
			struct mv_slab *t = src;
			src = dst;
			dst = t;
		}
	}
	if (!src || !dst) {
		mv_unlock(&bin->lock);
		return false;
	}
	bin_del(bin, src);
	bin_del(bin, dst);
	src->list = dst->list = MV_SL_ISOLATED;
	atomic_store_explicit(&src->owner, owner, memory_order_relaxed);
	atomic_store_explicit(&dst->owner, owner, memory_order_relaxed);
	mv_unlock(&bin->lock);
	*srcp = src;
	*dstp = dst;
	return true;
}

void mv_slab_putback(struct mv_heap *h, struct mv_slab *s)
{
	struct mv_bin *bin = &h->bins[s->cls];
	mv_lock(&bin->lock);
	take_xlist(s);
	atomic_store_explicit(&s->owner, (struct mv_tcache *)NULL, memory_order_relaxed);
	if (s->used == 0) {
		s->list = MV_SL_NONE;
		mv_slab_destroy(h, NULL, s);
	} else {
		bin_add_shared(bin, s);
	}
	mv_unlock(&bin->lock);
}

struct mv_slab *mv_slab_new_isolated(struct mv_heap *h, unsigned cls, size_t pfn,
				     struct mv_tcache *owner)
{
	struct mv_slab *s = slab_header(h, cls);
	if (!s)
		return NULL;
	/* isolated before the descriptors publish it, as mv_slab_new */
	s->list = MV_SL_ISOLATED;
	atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
	slab_setup(h, s, cls, pfn);
	return s;
}

size_t mv_bins_trim(struct mv_heap *h)
{
	size_t freed = 0;
	for (unsigned c = 0; c < MV_NR_CLASSES; c++) {
		struct mv_bin *bin = &h->bins[c];
		if (!mv_rload(bin->abandoned) && !mv_rload(bin->empty))
			continue;
		mv_lock(&bin->lock);
		struct mv_slab *s = bin->empty, *next;
		for (; s; s = next) {
			next = s->next;
			bin_del(bin, s);
			mv_slab_destroy(h, NULL, s);
			freed++;
		}
		for (s = bin->abandoned; s; s = next) {
			next = s->next;
			/* nobody owns it: take its remote frees */
			uint64_t old = atomic_exchange_explicit(
			    &s->xfree, MV_XF_MAKE(NULL, 0, MV_NEVER_DELAYED), memory_order_acquire);
			void *head = MV_XF_PTR(old);
			if (head) {
				mv_slab_splice(s, head, "remote free list");
				s->used -= MV_XF_COUNT(old);
			}
			if (s->used == 0) {
				bin_del(bin, s);
				mv_slab_destroy(h, NULL, s);
				freed++;
			} else if (c < MV_NR_RAW_CLASSES) {
				raw_purge(h, s);
			}
		}
		mv_unlock(&bin->lock);
	}
	return freed;
}
