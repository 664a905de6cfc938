/* SPDX-License-Identifier: MIT */
/* pcp.c: see pcp.h. After rmqueue_pcplist / free_unref_page / free_pcppages_bulk. */
#include "pcp.h"

#include "os.h"

#if defined(__SANITIZE_THREAD__)
#define PCP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PCP_TSAN 1
#endif
#endif
#ifndef PCP_TSAN
#define PCP_TSAN 0
#endif

/* ------------------------------------------------------------ holding a pcp */

/* membarrier(2) registered: the owner's busy mark is a plain store, the
 * drain pays the barrier. Decided once, before any pcp is in use; a fork
 * child decides again while it is single-threaded. ThreadSanitizer does
 * not know membarrier: seq_cst marks there, which it does understand. */
static _Atomic bool mb_ok;
static pthread_once_t mb_once = PTHREAD_ONCE_INIT;

static void mb_init(void)
{
	mv_relaxed_store(&mb_ok, !PCP_TSAN && mv_os_membarrier_register());
}

void mv_pcp_fork_child(void)
{
	if (mv_relaxed_load(&mb_ok))
		mv_relaxed_store(&mb_ok, mv_os_membarrier_register());
}

/* The owner takes its pcp: true when lockless (busy marked, no drain under
 * way), false when it took pcp->lock because a drain was. */
static inline bool pcp_enter(struct mv_pcp *pcp)
{
	if (likely(mv_relaxed_load(&mb_ok))) {
		mv_relaxed_store(&pcp->busy, 1u);
		atomic_signal_fence(
		    memory_order_seq_cst); /* the drain's membarrier does the rest */
	} else {
		atomic_store_explicit(&pcp->busy, 1u, memory_order_seq_cst);
	}
	if (likely(!atomic_load_explicit(&pcp->draining, memory_order_seq_cst)))
		return true;
	atomic_store_explicit(&pcp->busy, 0u, memory_order_release);
	mv_lock(&pcp->lock);
	return false;
}

static inline void pcp_leave(struct mv_pcp *pcp, bool fast)
{
	if (likely(fast))
		atomic_store_explicit(&pcp->busy, 0u, memory_order_release);
	else
		mv_unlock(&pcp->lock);
}

void mv_pcp_quiesce(struct mv_pcp *pcp)
{
	atomic_store_explicit(&pcp->draining, 1u, memory_order_seq_cst);
	if (mv_relaxed_load(&mb_ok) && mv_os_membarrier() != 0)
		mv_fatal("membarrier failed after it was registered");
	for (unsigned spins = 0; atomic_load_explicit(&pcp->busy, memory_order_seq_cst); spins++) {
		if (spins < 64)
			mv_cpu_relax();
		else
			mv_os_yield(); /* the owner was preempted inside an operation */
	}
}

void mv_pcp_unquiesce(struct mv_pcp *pcp)
{
	atomic_store_explicit(&pcp->draining, 0u, memory_order_release);
}

void mv_pcp_init(struct mv_pcp *pcp)
{
	pthread_once(&mb_once, mb_init);
	mv_mutex_init(&pcp->lock, MV_RANK_PCP);
	mv_relaxed_store(&pcp->busy, 0u);
	mv_relaxed_store(&pcp->draining, 0u);
	mv_relaxed_store(&pcp->count, 0u);
	mv_relaxed_store(&pcp->run_pages, 0u);
	mv_relaxed_store(&pcp->ops, 0u);
	pcp->ops_seen = 0;
	for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++) {
		pcp->run_mask[mt] = 0;
		for (unsigned i = 0; i < MV_PCP_RUN_BINS; i++)
			pcp->runs[mt][i] = MV_PFN_NONE;
	}
	for (int i = 0; i < MV_NR_PCP_LISTS; i++)
		pcp->lists[i].n = 0;
}

/* ------------------------------------------------------------ the order lists */

static inline unsigned pcp_index(unsigned order, int mt)
{
	return MIGRATE_PCPTYPES * order + (unsigned)mt;
}

/* free the oldest blocks of a list to the zone; caller holds the pcp */
static void drain_list(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt, unsigned n)
{
	unsigned idx = pcp_index(order, mt);
	n = MV_MIN(n, pcp->lists[idx].n);
	if (!n)
		return;
	mv_buddy_free_bulk(z, pcp->lists[idx].pfn, n, order);
	pcp->lists[idx].n -= n;
	for (unsigned i = 0; i < pcp->lists[idx].n; i++)
		pcp->lists[idx].pfn[i] = pcp->lists[idx].pfn[i + n];
	mv_owner_add(&pcp->count, -(n << order));
	mv_count(z->vm, MV_VM_pcp_drain, 1);
}

/* free_pcppages_bulk when over high: drain a batch from the fullest lists */
static void drain_high(struct mv_zone *z, struct mv_pcp *pcp)
{
	uint32_t high = mv_pcp_high(z);
	while (mv_relaxed_load(&pcp->count) > high - MV_PCP_BATCH) {
		unsigned best = 0, best_pages = 0;
		for (unsigned i = 0; i < MV_NR_PCP_LISTS; i++) {
			unsigned pages = pcp->lists[i].n << (i / MIGRATE_PCPTYPES);
			if (pages > best_pages) {
				best_pages = pages;
				best = i;
			}
		}
		if (!best_pages)
			break;
		unsigned order = best / MIGRATE_PCPTYPES;
		drain_list(z, pcp, order, (int)(best % MIGRATE_PCPTYPES),
			   MV_MAX(1u, (MV_PCP_BATCH >> order)));
	}
}

/* a block of the list (idx), refilled from the zone when empty; caller
 * holds the pcp */
static size_t list_take(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt)
{
	unsigned idx = pcp_index(order, mt);
	if (!pcp->lists[idx].n) {
		unsigned want =
		    MV_MAX(1u, MV_MIN((unsigned)MV_PCP_LIST_MAX, MV_PCP_BATCH >> order));
		bool zero;
		unsigned got =
		    mv_buddy_rmqueue_bulk(z, order, mt, want, pcp->lists[idx].pfn, &zero);
		/* take from the top of the stack: reverse so the lowest pfn comes first */
		for (unsigned i = 0; i < got / 2; i++) {
			uint32_t t = pcp->lists[idx].pfn[i];
			pcp->lists[idx].pfn[i] = pcp->lists[idx].pfn[got - 1 - i];
			pcp->lists[idx].pfn[got - 1 - i] = t;
		}
		pcp->lists[idx].n = got;
		mv_owner_add(&pcp->count, got << order);
		if (got)
			mv_count(z->vm, MV_VM_pcp_refill, 1);
	}
	if (!pcp->lists[idx].n)
		return MV_PFN_NONE;
	mv_owner_add(&pcp->count, -(1u << order));
	return pcp->lists[idx].pfn[--pcp->lists[idx].n];
}

/* list_take, holding the pcp for it */
static size_t list_take_locked(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt)
{
	bool fast = pcp_enter(pcp);
	mv_owner_add(&pcp->ops, 1u);
	size_t pfn = list_take(z, pcp, order, mt);
	pcp_leave(pcp, fast);
	return pfn;
}

static inline void set_alloc(struct mv_zone *z, size_t pfn, size_t nr, int mt)
{
	struct mv_page *pg = mv_pfn_to_page(z, pfn);
	mv_pg_store(pg->x, (uint32_t)nr);
	mv_pg_store(pg->mt, (uint8_t)mt);
	mv_pg_store(pg->order, (uint8_t)0);
	mv_pg_store(pg->type, (uint8_t)PG_ALLOC);
}

static size_t retry_drained(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool exact,
			    bool *zeroed);

size_t mv_pcp_alloc(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt, bool *zeroed)
{
	if (order > MV_PAGE_ALLOC_COSTLY_ORDER || mt >= MIGRATE_PCPTYPES || !pcp)
		return mv_buddy_alloc(z, order, mt, mt == MIGRATE_MOVABLE ? MV_ALLOC_CMA : 0,
				      zeroed);
	size_t pfn = list_take_locked(z, pcp, order, mt);
	if (pfn != MV_PFN_NONE)
		set_alloc(z, pfn, (size_t)1 << order, mt);
	else if (mv_pcp_held(pcp))
		pfn = retry_drained(z, pcp, (size_t)1 << order, mt, false, zeroed);
	if (zeroed)
		*zeroed = false; /* blocks on the lists may have been used */
	return pfn;
}

/* a block to its list; caller holds the pcp */
static void list_put(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, unsigned order, int mt)
{
	if (mt == MIGRATE_ISOLATE) {
		mv_buddy_free(z, pfn, order);
		return;
	}
	if (mt >= MIGRATE_PCPTYPES) /* HIGHATOMIC and CMA go on the movable list */
		mt = MIGRATE_MOVABLE;
	unsigned idx = pcp_index(order, mt);
	struct mv_page *pg = mv_pfn_to_page(z, pfn);
	mv_pg_store(pg->order, (uint8_t)order);
	mv_pg_store(pg->mt, (uint8_t)mt);
	mv_pg_store(pg->type, (uint8_t)PG_PCP);
	if (pcp->lists[idx].n == MV_PCP_LIST_MAX)
		drain_list(z, pcp, order, mt, MV_PCP_LIST_MAX / 2);
	pcp->lists[idx].pfn[pcp->lists[idx].n++] = (uint32_t)pfn;
	mv_owner_add(&pcp->count, 1u << order);
	if (mv_relaxed_load(&pcp->count) >= mv_pcp_high(z))
		drain_high(z, pcp);
}

/* nr <= 2^COSTLY_ORDER pages as aligned blocks on the lists; caller holds the pcp */
static void lists_put_range(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr)
{
	while (nr) {
		unsigned order = pfn ? (unsigned)__builtin_ctzl(pfn) : MV_MAX_PAGE_ORDER;
		order = MV_MIN(order, mv_ilog2(nr));
		list_put(z, pcp, pfn, order, mv_get_pfnblock_migratetype(z, pfn));
		pfn += (size_t)1 << order;
		nr -= (size_t)1 << order;
	}
}

/* ------------------------------------------------------------ the runs */

static inline struct mv_page *run_head(struct mv_zone *z, size_t pfn)
{
	return mv_pfn_to_page(z, pfn);
}

/* unlink the first run of list i; caller holds the pcp */
static size_t run_pop(struct mv_zone *z, struct mv_pcp *pcp, int mt, unsigned i)
{
	size_t pfn = pcp->runs[mt][i];
	uint32_t next = mv_pg_load(run_head(z, pfn)->lru.next);
	pcp->runs[mt][i] = next;
	if (next == MV_PFN_NONE)
		pcp->run_mask[mt] &= ~((uint64_t)1 << i);
	mv_owner_add(&pcp->run_pages, -(uint32_t)(MV_PCP_RUN_MIN + i));
	return pfn;
}

/* a run of MIN..MAX pages onto its list; caller holds the pcp */
static void run_push(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr, int mt)
{
	unsigned i = (unsigned)(nr - MV_PCP_RUN_MIN);
	struct mv_page *pg = run_head(z, pfn);
	/* an allocated run to every scanner (PG_ALLOC, nr pages) */
	mv_pg_store(pg->x, (uint32_t)nr);
	mv_pg_store(pg->mt, (uint8_t)mt);
	mv_pg_store(pg->order, (uint8_t)0);
	mv_pg_store(pg->lru.next, pcp->runs[mt][i]);
	mv_pg_store(pg->type, (uint8_t)PG_ALLOC);
	pcp->runs[mt][i] = (uint32_t)pfn;
	pcp->run_mask[mt] |= (uint64_t)1 << i;
	mv_owner_add(&pcp->run_pages, (uint32_t)nr);
}

#define RUN_BATCH 32

/* give runs back to the zone, the largest first, until the runs hold at
 * most keep pages; caller holds the pcp */
static MV_NOINLINE void runs_trim(struct mv_zone *z, struct mv_pcp *pcp, uint32_t keep)
{
	uint32_t pfns[RUN_BATCH], nrs[RUN_BATCH];
	unsigned n = 0;
	while (mv_relaxed_load(&pcp->run_pages) > keep) {
		int best = -1;
		unsigned bi = 0;
		for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++) {
			if (!pcp->run_mask[mt])
				continue;
			unsigned i = 63u - (unsigned)__builtin_clzll(pcp->run_mask[mt]);
			if (best < 0 || i > bi) {
				best = mt;
				bi = i;
			}
		}
		if (best < 0)
			break;
		pfns[n] = (uint32_t)run_pop(z, pcp, best, bi);
		nrs[n++] = MV_PCP_RUN_MIN + bi;
		if (n == RUN_BATCH) {
			mv_buddy_free_runs(z, pfns, nrs, n);
			n = 0;
		}
	}
	if (n) {
		mv_buddy_free_runs(z, pfns, nrs, n);
		mv_count(z->vm, MV_VM_pcp_drain, 1);
	}
}

/* a run of nr pages from the lists, or MV_PFN_NONE; caller holds the pcp */
static inline size_t runs_take(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt)
{
	unsigned i = (unsigned)(nr - MV_PCP_RUN_MIN);
	if (!(pcp->run_mask[mt] & ((uint64_t)1 << i)))
		return MV_PFN_NONE;
	return run_pop(z, pcp, mt, i);
}

/* No run of the size: the zone must be asked, and what the runs hold is
 * backed memory the zone's answer would otherwise fault in anew (a realloc
 * loop over sizes from 1 KiB to 3 MiB faulted 2.57 pages an operation
 * before the runs, 4.54 with runs that only served their own size). So
 * the smallest larger run of the type is split (the head is aligned to
 * the order of nr as to its own; the rest goes to the zone), or, with
 * none, every run goes back to the zone first. Caller: the owner. */
static size_t runs_miss(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt)
{
	unsigned want = (unsigned)(nr - MV_PCP_RUN_MIN);
	size_t pfn = MV_PFN_NONE, rest = 0;
	bool fast = pcp_enter(pcp);
	uint64_t bits = want + 1 < 64 ? pcp->run_mask[mt] >> (want + 1) : 0;
	if (bits) {
		unsigned i = want + 1 + (unsigned)__builtin_ctzll(bits);
		pfn = run_pop(z, pcp, mt, i);
		rest = MV_PCP_RUN_MIN + i - nr;
	} else {
		runs_trim(z, pcp, 0);
	}
	pcp_leave(pcp, fast);
	if (rest)
		mv_buddy_free_range(z, pfn + nr, rest);
	return pfn;
}

/* ------------------------------------------------------------ exact runs */

size_t mv_pcp_run_take(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt)
{
	bool fast = pcp_enter(pcp);
	mv_owner_add(&pcp->ops, 1u);
	size_t pfn = runs_take(z, pcp, nr, mt);
	pcp_leave(pcp, fast);
	return pfn;
}

bool mv_pcp_run_put(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr)
{
	if (!mv_pcp_run_size(nr))
		return false;
	int mt = mv_get_pfnblock_migratetype(z, pfn);
	/* A run on the lists is aligned to its order, as alloc_pages_exact
	 * hands runs out (slabs count on it to keep the buddy allocator tidy),
	 * and lies in one pageblock; a tail a shrink gave back or a run grown
	 * in place may not: those go to the zone. */
	if (mt == MIGRATE_ISOLATE || (pfn & (((size_t)1 << mv_order_for_pages(nr)) - 1)) ||
	    ((pfn ^ (pfn + nr - 1)) & ~(z->pageblock_nr_pages - 1)))
		return false;
	if (mt >= MIGRATE_PCPTYPES) /* HIGHATOMIC and CMA go on the movable list */
		mt = MIGRATE_MOVABLE;
	bool fast = pcp_enter(pcp);
	mv_owner_add(&pcp->ops, 1u);
	uint32_t high = mv_pcp_run_high(z);
	if (mv_relaxed_load(&pcp->run_pages) + nr > high)
		runs_trim(z, pcp, high - (uint32_t)nr);
	run_push(z, pcp, pfn, nr, mt);
	pcp_leave(pcp, fast);
	return true;
}

static size_t alloc_exact(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool *zeroed);

/* Pages the zone could not give may sit on the caller's own lists, as
 * runs of other sizes or blocks of other orders: give them back and try
 * once more (__alloc_pages_direct_reclaim's drain_all_pages and retry,
 * for the calling thread's lists; slowpath.c drains everyone's). */
static size_t retry_drained(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool exact,
			    bool *zeroed)
{
	mv_pcp_drain(z, pcp);
	if (exact)
		return alloc_exact(z, pcp, nr, mt, zeroed);
	size_t pfn = list_take_locked(z, pcp, mv_ilog2(nr), mt);
	if (pfn != MV_PFN_NONE)
		set_alloc(z, pfn, nr, mt);
	if (zeroed)
		*zeroed = false;
	return pfn;
}

size_t mv_pcp_alloc_exact(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool *zeroed)
{
	size_t pfn = alloc_exact(z, pcp, nr, mt, zeroed);
	if (unlikely(pfn == MV_PFN_NONE) && pcp && mv_pcp_held(pcp))
		pfn = retry_drained(z, pcp, nr, mt, true, zeroed);
	return pfn;
}

static size_t alloc_exact(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool *zeroed)
{
	if (pcp && mv_pcp_run_size(nr) && mt < MIGRATE_PCPTYPES) {
		size_t pfn = mv_pcp_run_take(z, pcp, nr, mt);
		if (pfn == MV_PFN_NONE && mv_relaxed_load(&pcp->run_pages))
			pfn = runs_miss(z, pcp, nr, mt);
		if (pfn != MV_PFN_NONE) {
			set_alloc(z, pfn, nr, mt);
			if (zeroed)
				*zeroed = false;
			return pfn;
		}
	}
	unsigned order = mv_order_for_pages(nr);
	if (!pcp || order > MV_PAGE_ALLOC_COSTLY_ORDER || mt >= MIGRATE_PCPTYPES)
		return mv_buddy_alloc_exact(z, nr, mt, mt == MIGRATE_MOVABLE ? MV_ALLOC_CMA : 0,
					    zeroed);
	size_t pfn = mv_pcp_alloc(z, pcp, order, mt, zeroed);
	if (pfn == MV_PFN_NONE)
		return pfn;
	size_t full = (size_t)1 << order;
	if (nr < full) {
		mv_pg_store(mv_pfn_to_page(z, pfn)->x, (uint32_t)nr);
		mv_pcp_free_range(z, pcp, pfn + nr, full - nr);
	}
	return pfn;
}

void mv_pcp_free_range(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr)
{
	if (!pcp || nr > MV_PCP_RUN_MAX) {
		mv_buddy_free_range(z, pfn, nr);
		return;
	}
	if (mv_pcp_run_put(z, pcp, pfn, nr))
		return;
	if (nr > ((size_t)1 << MV_PAGE_ALLOC_COSTLY_ORDER)) {
		mv_buddy_free_range(z, pfn, nr);
		return;
	}
	bool fast = pcp_enter(pcp);
	mv_owner_add(&pcp->ops, 1u);
	lists_put_range(z, pcp, pfn, nr);
	pcp_leave(pcp, fast);
}

/* ------------------------------------------------------------ drains */

void mv_pcp_drain(struct mv_zone *z, struct mv_pcp *pcp)
{
	if (!mv_pcp_held(pcp))
		return; /* nothing held now: no lock, no barrier */
	mv_lock(&pcp->lock);
	mv_pcp_quiesce(pcp);
	for (unsigned i = 0; i < MV_NR_PCP_LISTS; i++)
		drain_list(z, pcp, i / MIGRATE_PCPTYPES, (int)(i % MIGRATE_PCPTYPES),
			   MV_PCP_LIST_MAX);
	runs_trim(z, pcp, 0);
	mv_pcp_unquiesce(pcp);
	mv_unlock(&pcp->lock);
}

bool mv_pcp_decay(struct mv_zone *z, struct mv_pcp *pcp)
{
	uint32_t ops = mv_relaxed_load(&pcp->ops);
	if (ops != pcp->ops_seen || !mv_pcp_held(pcp)) {
		pcp->ops_seen = ops;
		return false;
	}
	mv_pcp_drain(z, pcp);
	return true;
}
