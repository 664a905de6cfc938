/* SPDX-License-Identifier: MIT */
/* pcp.c: see pcp.h. After rmqueue_pcplist / free_unref_page / free_pcppages_bulk. */
#include "pcp.h"

void mv_pcp_init(struct mv_pcp *pcp)
{
	mv_mutex_init(&pcp->lock, MV_RANK_PCP);
	pcp->count = 0;
	for (int i = 0; i < MV_NR_PCP_LISTS; i++)
		pcp->lists[i].n = 0;
}

static inline unsigned pcp_index(unsigned order, int mt)
{
	return MIGRATE_PCPTYPES * order + (unsigned)mt;
}

/* free the oldest blocks of a list to the zone; caller holds pcp->lock */
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
	pcp->count -= n << order;
	mv_count(z->vm, MV_VM_pcp_drain, 1);
}

/* free_pcppages_bulk when over high: drain a batch from the fullest lists */
static void drain_high(struct mv_zone *z, struct mv_pcp *pcp)
{
	uint32_t high = mv_pcp_high(z);
	while (pcp->count > high - MV_PCP_BATCH) {
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

size_t mv_pcp_alloc(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt, bool *zeroed)
{
	if (order > MV_PAGE_ALLOC_COSTLY_ORDER || mt >= MIGRATE_PCPTYPES || !pcp)
		return mv_buddy_alloc(z, order, mt, mt == MIGRATE_MOVABLE ? MV_ALLOC_CMA : 0,
				      zeroed);
	unsigned idx = pcp_index(order, mt);
	bool zero = false;
	mv_lock(&pcp->lock);
	if (!pcp->lists[idx].n) {
		unsigned want =
		    MV_MAX(1u, MV_MIN((unsigned)MV_PCP_LIST_MAX, MV_PCP_BATCH >> order));
		unsigned got =
		    mv_buddy_rmqueue_bulk(z, order, mt, want, pcp->lists[idx].pfn, &zero);
		/* take from the top of the stack: reverse so the lowest pfn comes first */
		for (unsigned i = 0; i < got / 2; i++) {
			uint32_t t = pcp->lists[idx].pfn[i];
			pcp->lists[idx].pfn[i] = pcp->lists[idx].pfn[got - 1 - i];
			pcp->lists[idx].pfn[got - 1 - i] = t;
		}
		pcp->lists[idx].n = got;
		pcp->count += got << order;
		if (got)
			mv_count(z->vm, MV_VM_pcp_refill, 1);
	}
	size_t pfn = MV_PFN_NONE;
	if (pcp->lists[idx].n) {
		pfn = pcp->lists[idx].pfn[--pcp->lists[idx].n];
		pcp->count -= 1u << order;
	}
	mv_unlock(&pcp->lock);
	if (pfn != MV_PFN_NONE) {
		struct mv_page *pg = mv_pfn_to_page(z, pfn);
		mv_pg_store(pg->x, (uint32_t)1 << order);
		mv_pg_store(pg->mt, (uint8_t)mt);
		mv_pg_store(pg->order, (uint8_t)0);
		mv_pg_store(pg->type, (uint8_t)PG_ALLOC);
	}
	if (zeroed)
		*zeroed = false; /* blocks on the lists may have been used */
	(void)zero;
	return pfn;
}

static void pcp_free_block(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, unsigned order)
{
	int mt = mv_get_pfnblock_migratetype(z, pfn);
	if (!pcp || order > MV_PAGE_ALLOC_COSTLY_ORDER || mt == MIGRATE_ISOLATE) {
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
	mv_lock(&pcp->lock);
	if (pcp->lists[idx].n == MV_PCP_LIST_MAX)
		drain_list(z, pcp, order, mt, MV_PCP_LIST_MAX / 2);
	pcp->lists[idx].pfn[pcp->lists[idx].n++] = (uint32_t)pfn;
	pcp->count += 1u << order;
	if (pcp->count >= mv_pcp_high(z))
		drain_high(z, pcp);
	mv_unlock(&pcp->lock);
}

void mv_pcp_free_range(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr)
{
	if (!pcp || nr > ((size_t)1 << MV_PAGE_ALLOC_COSTLY_ORDER)) {
		mv_buddy_free_range(z, pfn, nr);
		return;
	}
	while (nr) {
		unsigned order = pfn ? (unsigned)__builtin_ctzl(pfn) : MV_MAX_PAGE_ORDER;
		order = MV_MIN(order, mv_ilog2(nr));
		pcp_free_block(z, pcp, pfn, order);
		pfn += (size_t)1 << order;
		nr -= (size_t)1 << order;
	}
}

size_t mv_pcp_alloc_exact(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool *zeroed)
{
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

void mv_pcp_drain(struct mv_zone *z, struct mv_pcp *pcp)
{
	mv_lock(&pcp->lock);
	for (unsigned i = 0; i < MV_NR_PCP_LISTS; i++)
		drain_list(z, pcp, i / MIGRATE_PCPTYPES, (int)(i % MIGRATE_PCPTYPES),
			   MV_PCP_LIST_MAX);
	mv_unlock(&pcp->lock);
}
