/* SPDX-License-Identifier: MIT */
/*
 * pcp.h: per-thread page lists, the kernel's per_cpu_pages. Each thread
 * cache (tcache.h) holds one: blocks of order 0..PAGE_ALLOC_COSTLY_ORDER
 * for each of the MIGRATE_PCPTYPES types, kept off the zone's free lists so
 * that slab creation and small large objects rarely take zone->lock.
 * Refilled in batches (rmqueue_bulk) and drained in batches
 * (free_pcppages_bulk) when the list holds more than `high` pages.
 *
 * Runs. Past the order lists, up to MV_PCP_RUN_MAX pages (256 KiB), a
 * thread also keeps the exact runs it freed (mv_pcp_free_range of 5..64
 * pages: large objects past the slab classes, slabs of odd page counts),
 * one list per page count and type, as tcmalloc's and mimalloc's caches
 * keep spans of those sizes. An exact allocation takes a run of its size
 * before it goes to the order lists or the zone. Runs are aligned to
 * their order, as alloc_pages_exact hands them out.
 * What the runs hold is bounded by mv_pcp_run_high (backed pages are the
 * process's RSS); a free past it gives the largest runs back first. A run
 * on a list is a run the buddy allocator handed out: its head says
 * PG_ALLOC with its length, so every scanner steps over it as over any
 * allocated run; the list links through the head's lru.next.
 *
 * Locks. The owning thread takes no lock: it marks the pcp busy for the
 * operation and checks that no drain is under way (the kernel's pcp is
 * per CPU with preemption off; a thread may be preempted anywhere, so
 * this is a Dekker handshake). A drain from any thread (compaction,
 * isolation, thread exit, decay, fork) takes pcp->lock (rank MV_RANK_PCP,
 * outside zone->lock), says it is draining, makes the owner's mark visible
 * with membarrier(2) (the owner's side is a plain store: the expedited
 * barrier is the drainer's price, as in liburcu's membarrier flavour) and
 * waits until the owner is not busy. An owner that finds a drain under
 * way takes pcp->lock instead. Without membarrier (an old kernel, a
 * sandbox) and under ThreadSanitizer, the owner's mark is a seq_cst store.
 */
#ifndef MV_PCP_H
#define MV_PCP_H

#include "buddy.h"

#define MV_NR_PCP_ORDERS (MV_PAGE_ALLOC_COSTLY_ORDER + 1)
#define MV_NR_PCP_LISTS (MIGRATE_PCPTYPES * MV_NR_PCP_ORDERS)
#define MV_PCP_LIST_MAX 64u /* blocks per list */
#define MV_PCP_HIGH 512u    /* pages held before a drain, at most */
#define MV_PCP_BATCH 32u    /* pages per refill or drain */

#define MV_PCP_RUN_MIN ((1u << (MV_PAGE_ALLOC_COSTLY_ORDER - 1)) + 1) /* 5 pages */
#define MV_PCP_RUN_MAX 64u                                            /* pages: 256 KiB */
#define MV_PCP_RUN_BINS (MV_PCP_RUN_MAX - MV_PCP_RUN_MIN + 1)
#define MV_PCP_RUN_HIGH 256u /* pages the runs may hold, at most */
_Static_assert(MV_PCP_RUN_BINS <= 64, "one bit per run list");

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

/* The pages the runs may hold: 1/64 of the zone's resident pages, between
 * two of the largest runs (a loop of one size must not give its run back
 * each time) and MV_PCP_RUN_HIGH (1 MiB: beside the order lists' 2 MiB,
 * what a thread's runs hold is backed memory no other thread and no other
 * size can use, which realloc loops over many sizes fault in anew). */
static inline uint32_t mv_pcp_run_high(const struct mv_zone *z)
{
	size_t r = mv_relaxed_load(&z->resident_pages) / 64;
	return (uint32_t)MV_MIN(MV_MAX(r, (size_t)(2 * MV_PCP_RUN_MAX)), (size_t)MV_PCP_RUN_HIGH);
}

struct mv_pcp {
	mv_mutex lock;
	_Atomic uint32_t busy;     /* the owner is inside an operation (owner-written) */
	_Atomic uint32_t draining; /* a drain holds lock and waits for !busy */
	/* pages held on the order lists and on the run lists: written by
	 * whoever holds the pcp (owner or drain), read racily by drains
	 * (nothing held: nothing to do) and statistics */
	_Atomic uint32_t count;
	_Atomic uint32_t run_pages;
	_Atomic uint32_t ops; /* operations on the runs (owner-written): decay sees idle */
	uint32_t ops_seen;    /* ops at the last decay (the decayer's, under threads_lock) */
	uint64_t run_mask[MIGRATE_PCPTYPES];              /* bit i: runs[mt][i] is not empty */
	uint32_t runs[MIGRATE_PCPTYPES][MV_PCP_RUN_BINS]; /* head pfn of runs of MIN + i pages */
	struct {
		uint32_t n;
		uint32_t pfn[MV_PCP_LIST_MAX];
	} lists[MV_NR_PCP_LISTS];
};

void mv_pcp_init(struct mv_pcp *pcp);

/* Allocate 2^order pages of mt: from the list when order is small, else
 * from the zone. Returns the head pfn (PG_ALLOC, nr = 2^order) or
 * MV_PFN_NONE. Only the owning thread passes its pcp (or NULL). */
size_t mv_pcp_alloc(struct mv_zone *z, struct mv_pcp *pcp, unsigned order, int mt, bool *zeroed);
/* Exactly nr pages (alloc_pages_exact), through the lists when small and
 * from the runs up to MV_PCP_RUN_MAX pages. */
size_t mv_pcp_alloc_exact(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt, bool *zeroed);
/* Free nr pages at pfn, any alignment; small aligned pieces go to the
 * lists, runs up to MV_PCP_RUN_MAX pages to the run lists. */
void mv_pcp_free_range(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr);
/* The run fast path of large objects (large.c): a run of exactly nr pages
 * (MV_PCP_RUN_MIN..MV_PCP_RUN_MAX) of mt off the run lists, its head
 * descriptor left for the caller to write, or MV_PFN_NONE; and a run the
 * caller holds onto them, false (nothing done) when it may not go there
 * (its size, its alignment, an isolated pageblock). Owner only. */
size_t mv_pcp_run_take(struct mv_zone *z, struct mv_pcp *pcp, size_t nr, int mt);
bool mv_pcp_run_put(struct mv_zone *z, struct mv_pcp *pcp, size_t pfn, size_t nr);
static inline bool mv_pcp_run_size(size_t nr)
{
	return nr - MV_PCP_RUN_MIN <= MV_PCP_RUN_MAX - MV_PCP_RUN_MIN;
}
/* Give every block and run back to the zone (drain_pages_zone). Any thread. */
void mv_pcp_drain(struct mv_zone *z, struct mv_pcp *pcp);
/* Decay: drain pcp if it holds runs and its owner has not used them since
 * the last call (caller serialises calls per pcp). True if it drained. */
bool mv_pcp_decay(struct mv_zone *z, struct mv_pcp *pcp);
/* pages held, racy (statistics, decay) */
static inline size_t mv_pcp_held(const struct mv_pcp *pcp)
{
	return (size_t)mv_relaxed_load(&pcp->count) + mv_relaxed_load(&pcp->run_pages);
}
/* Fork: stop every owner's lockless operations on pcp (the caller holds
 * pcp->lock; the owners then wait for it), and let them go again. */
void mv_pcp_quiesce(struct mv_pcp *pcp);
void mv_pcp_unquiesce(struct mv_pcp *pcp);
/* in a fork child, single-threaded: register membarrier for the new process */
void mv_pcp_fork_child(void);

#endif
