/* SPDX-License-Identifier: MIT */
/*
 * pcp.h: per-thread page lists, the kernel's per_cpu_pages. Each thread
 * cache (tcache.h) holds one: blocks of order 0..PAGE_ALLOC_COSTLY_ORDER
 * for each of the MIGRATE_PCPTYPES types, kept off the zone's free lists so
 * that slab creation and small large objects rarely take zone->lock.
 * Refilled in batches (rmqueue_bulk) and drained in batches
 * (free_pcppages_bulk) when the list holds more than `high` pages.
 *
 * Locks: pcp->lock (rank MV_RANK_PCP) is taken by the owning thread around
 * each operation and by mv_pcp_drain from any thread (compaction,
 * isolation, thread exit), as the kernel's pcp->lock is; it is never
 * contended on the owner's path except during a drain. It nests outside
 * zone->lock.
 */
#ifndef MV_PCP_H
#define MV_PCP_H

#include "buddy.h"

#define MV_NR_PCP_ORDERS (MV_PAGE_ALLOC_COSTLY_ORDER + 1)
#define MV_NR_PCP_LISTS (MIGRATE_PCPTYPES * MV_NR_PCP_ORDERS)
#define MV_PCP_LIST_MAX 64u /* blocks per list */
#define MV_PCP_HIGH 512u    /* pages held before a drain, at most */
#define MV_PCP_BATCH 32u    /* pages per refill or drain */

/* The pages a list may hold before a drain: 1/64 of the zone's resident
 * pages, between two batches and MV_PCP_HIGH. The kernel sizes pcp->high
 * from the zone's low watermark per CPU (zone_highsize) because its free
 * pages cost nothing; mova's pcp pages are backed, so what they hold is
 * the process's RSS: a small process must not keep 2 MiB per thread. */
static inline uint32_t mv_pcp_high(const struct mv_zone *z)
{
	size_t r = mv_relaxed_load(&z->resident_pages) / 64;
	return (uint32_t)MV_MIN(MV_MAX(r, (size_t)(2 * MV_PCP_BATCH)), (size_t)MV_PCP_HIGH);
}

struct mv_pcp {
	mv_mutex lock;
	uint32_t count; /* pages held */
	struct {
		uint32_t n;
		uint32_t pfn[MV_PCP_LIST_MAX];
	} lists[MV_NR_PCP_LISTS];
};

void mv_pcp_init(struct mv_pcp *pcp);

/* Allocate 2^order pages of mt: from the list when order is small, else
 * from the zone. Returns the head pfn (PG_ALLOC, nr = 2^order) or
 * MV_PFN_NONE. */
size_t mv_pcp_alloc(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt, bool *zeroed);
/* Exactly nr pages (alloc_pages_exact), through the lists when small. */
size_t mv_pcp_alloc_exact(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool *zeroed);
/* Free nr pages at pfn, any alignment; small aligned pieces go to the lists. */
void mv_pcp_free_range(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr);
/* Give every block back to the zone (drain_pages_zone). Any thread. */
void mv_pcp_drain(struct mv_zone *z, struct mv_pcp *pcp);

#endif
