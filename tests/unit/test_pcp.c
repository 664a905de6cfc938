/* SPDX-License-Identifier: MIT */
/*
 * test_pcp.c: per-thread page lists (lib/pcp.h) on one zone. Two threads
 * allocate and free pages through their own struct mv_pcp (and now and
 * then drain the other's, as compaction and isolation do from any thread)
 * while a third thread drains both lists over and over; a shared owner map
 * catches any page handed out twice. Afterwards, with both lists drained,
 * the zone must verify and be entirely free and merged.
 * Also single-threaded checks of the lists' accounting.
 */
#ifdef MV_CR_STANDALONE /* ThreadSanitizer builds: see ../common/cr_standalone.c */
#include "../common/cr_standalone.c"
#else
#include <criterion/criterion.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pcp.h"

#define MiB ((size_t)1 << 20)
#define NONE ((size_t)MV_PFN_NONE)
#define PBO 6u

static struct mv_zone z;
static struct mv_vmstat vm;

static size_t populated(void)
{
	return atomic_load(&z.populated_pfn);
}

/* the pages on the order lists and on the run lists, walked */
static size_t pcp_pages(const struct mv_pcp *pcp)
{
	size_t n = 0;
	for (unsigned i = 0; i < MV_NR_PCP_LISTS; i++)
		n += (size_t)pcp->lists[i].n << (i / MIGRATE_PCPTYPES);
	for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++)
		for (unsigned i = 0; i < MV_PCP_RUN_BINS; i++)
			for (uint32_t p = pcp->runs[mt][i]; p != MV_PFN_NONE;
			     p = mv_pfn_to_page(&z, p)->lru.next) {
				const struct mv_page *pg = mv_pfn_to_page(&z, p);
				cr_assert(pg->type == PG_ALLOC && pg->x == MV_PCP_RUN_MIN + i,
					  "a run on the lists says PG_ALLOC and its length");
				cr_assert_eq(p % ((size_t)1 << mv_order_for_pages(pg->x)), 0,
					     "a run on the lists is aligned to its order");
				n += MV_PCP_RUN_MIN + i;
			}
	return n;
}

/* everything free, verified, and merged into the largest aligned blocks */
static void check_all_free(void)
{
	const char *err = mv_zone_verify(&z);
	cr_assert_null(err, "mv_zone_verify: %s", err);
	size_t pop = populated();
	cr_assert_eq(atomic_load(&z.nr_free_pages), pop, "%zu free of %zu populated",
		     atomic_load(&z.nr_free_pages), pop);
	for (size_t p = 0; p < pop;) {
		unsigned want = p ? (unsigned)__builtin_ctzl(p) : MV_MAX_PAGE_ORDER;
		want = MV_MIN(want, mv_ilog2(pop - p));
		want = MV_MIN(want, (unsigned)MV_MAX_PAGE_ORDER);
		const struct mv_page *pg = mv_pfn_to_page(&z, p);
		cr_assert(pg->type == PG_BUDDY && pg->order == want,
			  "at pfn %zu want a free block of order %u, have (type %u, order %u)", p,
			  want, pg->type, pg->order);
		p += (size_t)1 << want;
	}
}

/* ------------------------------------------------------------ single thread */

Test(pcp, refill_and_drain_accounting)
{
	cr_assert_eq(mv_zone_init(&z, 16 * MiB, PBO, &vm), 0);
	static struct mv_pcp pcp;
	mv_pcp_init(&pcp);
	size_t pfns[3][64];
	for (unsigned order = 0; order <= MV_PAGE_ALLOC_COSTLY_ORDER; order++) {
		for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++) {
			uint64_t refills = atomic_load(&vm.ev[MV_VM_pcp_refill]);
			for (int i = 0; i < 3; i++) {
				pfns[mt][i] = mv_pcp_alloc(&z, &pcp, order, mt, NULL);
				cr_assert_neq(pfns[mt][i], NONE);
				cr_assert_eq(pfns[mt][i] % ((size_t)1 << order), 0);
				const struct mv_page *pg = mv_pfn_to_page(&z, pfns[mt][i]);
				cr_assert(pg->type == PG_ALLOC && pg->x == 1u << order &&
					  pg->mt == mt);
				cr_assert_eq(mv_get_pfnblock_migratetype(&z, pfns[mt][i]), mt,
					     "the lists hold blocks of their own type");
			}
			cr_assert_eq(atomic_load(&vm.ev[MV_VM_pcp_refill]), refills + 1,
				     "three blocks of order %u must come from one refill", order);
			cr_assert_eq(mv_pcp_held(&pcp), pcp_pages(&pcp), "held %zu, lists hold %zu",
				     mv_pcp_held(&pcp), pcp_pages(&pcp));
			const char *err = mv_zone_verify(&z);
			cr_assert_null(err, "%s", err);
			for (int i = 0; i < 3; i++)
				mv_pcp_free_range(&z, &pcp, pfns[mt][i], (size_t)1 << order);
			cr_assert_eq(mv_pcp_held(&pcp), pcp_pages(&pcp));
		}
		/* zone + lists = everything */
		cr_assert_eq(atomic_load(&z.nr_free_pages) + mv_pcp_held(&pcp), populated());
	}
	/* an exact allocation frees its tail through the lists */
	size_t pfn = mv_pcp_alloc_exact(&z, &pcp, 5, MIGRATE_MOVABLE, NULL);
	cr_assert_neq(pfn, NONE);
	cr_assert_eq(mv_pfn_to_page(&z, pfn)->x, 5);
	cr_assert_eq(atomic_load(&z.nr_free_pages) + mv_pcp_held(&pcp) + 5, populated());
	mv_pcp_free_range(&z, &pcp, pfn, 5);
	/* orders above the lists' come from the zone; past the runs' sizes
	 * they go straight back */
	unsigned big = mv_order_for_pages(MV_PCP_RUN_MAX) + 1;
	size_t before = mv_pcp_held(&pcp);
	pfn = mv_pcp_alloc(&z, &pcp, big, MIGRATE_UNMOVABLE, NULL);
	cr_assert_neq(pfn, NONE);
	cr_assert_eq(mv_pcp_held(&pcp), before);
	mv_pcp_free_range(&z, &pcp, pfn, (size_t)1 << big);
	cr_assert_eq(mv_pcp_held(&pcp), before);
	mv_pcp_drain(&z, &pcp);
	cr_assert_eq(mv_pcp_held(&pcp), 0);
	cr_assert_eq(pcp_pages(&pcp), 0);
	check_all_free();
	mv_zone_destroy(&z);
}

/* freeing more than `high` pages through the lists drains them in batches */
Test(pcp, high_watermark_drains)
{
	cr_assert_eq(mv_zone_init(&z, 16 * MiB, PBO, &vm), 0);
	static struct mv_pcp pcp;
	mv_pcp_init(&pcp);
	enum { N = 600 };
	static struct {
		size_t pfn;
		unsigned order;
	} blocks[N];
	uint64_t seed = 12345;
	size_t pages = 0;
	for (int i = 0; i < N; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		blocks[i].order = (unsigned)(seed >> 60) % (MV_PAGE_ALLOC_COSTLY_ORDER + 1);
		int mt = (int)((seed >> 40) % MIGRATE_PCPTYPES);
		blocks[i].pfn = mv_buddy_alloc(&z, blocks[i].order, mt, 0, NULL);
		cr_assert_neq(blocks[i].pfn, NONE);
		pages += (size_t)1 << blocks[i].order;
	}
	cr_assert_gt(pages, 2 * MV_PCP_HIGH);
	for (int i = 0; i < N; i++) {
		mv_pcp_free_range(&z, &pcp, blocks[i].pfn, (size_t)1 << blocks[i].order);
		cr_assert_lt(pcp.count, MV_PCP_HIGH, "the lists grew to %u pages, high is %u",
			     pcp.count, MV_PCP_HIGH);
		cr_assert_leq(pcp.run_pages, mv_pcp_run_high(&z), "the runs grew to %u pages",
			      pcp.run_pages);
		cr_assert_eq(mv_pcp_held(&pcp), pcp_pages(&pcp));
		for (unsigned l = 0; l < MV_NR_PCP_LISTS; l++)
			cr_assert_leq(pcp.lists[l].n, MV_PCP_LIST_MAX);
		const char *err = mv_zone_verify(&z);
		cr_assert_null(err, "%s", err);
	}
	cr_assert_gt(atomic_load(&vm.ev[MV_VM_pcp_drain]), 0);
	cr_assert_eq(atomic_load(&z.nr_free_pages) + mv_pcp_held(&pcp), populated());
	mv_pcp_drain(&z, &pcp);
	check_all_free();
	mv_zone_destroy(&z);
}

/* runs of 5..64 pages: reused as they are, bounded, drained */
Test(pcp, runs_reused_bounded_and_drained)
{
	cr_assert_eq(mv_zone_init(&z, 16 * MiB, PBO, &vm), 0);
	static struct mv_pcp pcp;
	mv_pcp_init(&pcp);
	enum { N = MV_PCP_RUN_MAX - MV_PCP_RUN_MIN + 1 };
	static size_t pfns[N];
	for (unsigned i = 0; i < N; i++) {
		pfns[i] = mv_pcp_alloc_exact(&z, &pcp, MV_PCP_RUN_MIN + i, MIGRATE_MOVABLE, NULL);
		cr_assert_neq(pfns[i], NONE);
	}
	for (unsigned i = 0; i < N; i++) {
		mv_pcp_free_range(&z, &pcp, pfns[i], MV_PCP_RUN_MIN + i);
		cr_assert_leq(pcp.run_pages, mv_pcp_run_high(&z), "the runs hold %u pages",
			      pcp.run_pages);
	}
	cr_assert_eq(atomic_load(&z.nr_free_pages) + mv_pcp_held(&pcp), populated());
	cr_assert_eq(mv_pcp_held(&pcp), pcp_pages(&pcp));
	/* the smallest runs stayed (the largest go back first): each comes
	 * back as it was, without the zone */
	size_t zone_free = atomic_load(&z.nr_free_pages);
	size_t pfn = mv_pcp_alloc_exact(&z, &pcp, MV_PCP_RUN_MIN, MIGRATE_MOVABLE, NULL);
	cr_assert_eq(pfn, pfns[0], "the run freed is the run taken");
	cr_assert_eq(atomic_load(&z.nr_free_pages), zone_free, "and the zone was not asked");
	const struct mv_page *pg = mv_pfn_to_page(&z, pfn);
	cr_assert(pg->type == PG_ALLOC && pg->x == MV_PCP_RUN_MIN && pg->mt == MIGRATE_MOVABLE);
	/* another type's runs are not this one's */
	size_t u = mv_pcp_alloc_exact(&z, &pcp, MV_PCP_RUN_MIN, MIGRATE_UNMOVABLE, NULL);
	cr_assert_neq(u, NONE);
	cr_assert_eq(mv_get_pfnblock_migratetype(&z, u), MIGRATE_UNMOVABLE);
	mv_pcp_free_range(&z, &pcp, u, MV_PCP_RUN_MIN);
	mv_pcp_free_range(&z, &pcp, pfn, MV_PCP_RUN_MIN);
	/* runs not aligned to their order (a shrunk run's tail) go to the zone */
	size_t r = mv_pcp_alloc_exact(&z, &pcp, 16, MIGRATE_MOVABLE, NULL);
	cr_assert_neq(r, NONE);
	size_t held = mv_pcp_held(&pcp);
	zone_free = atomic_load(&z.nr_free_pages);
	mv_pcp_free_range(&z, &pcp, r + 1, 9);
	cr_assert_eq(mv_pcp_held(&pcp), held, "the unaligned run did not go onto the lists");
	cr_assert_eq(atomic_load(&z.nr_free_pages), zone_free + 9);
	/* (up to 8 pages, the order lists take it in aligned blocks) */
	mv_pcp_free_range(&z, &pcp, r + 10, 6);
	cr_assert_eq(mv_pcp_held(&pcp), held + 6);
	cr_assert_eq(pcp.run_pages, pcp_pages(&pcp) - pcp.count, "none of it as a run");
	mv_pcp_free_range(&z, &pcp, r, 1);
	cr_assert_eq(mv_pcp_held(&pcp), pcp_pages(&pcp));
	cr_assert_eq(atomic_load(&z.nr_free_pages) + mv_pcp_held(&pcp), populated());
	mv_pcp_drain(&z, &pcp);
	cr_assert_eq(mv_pcp_held(&pcp), 0, "a drain returns every run");
	check_all_free();
	mv_zone_destroy(&z);
}

/* ------------------------------------------------------------ two threads */

#define NR_THREADS 2
#define STEPS 100000
#define MAX_HELD 512

struct run {
	uint32_t pfn, nr;
};

struct worker {
	pthread_t tid;
	unsigned id;
	uint64_t rng;
	struct mv_pcp pcp;
	struct run held[MAX_HELD];
	unsigned nheld;
	unsigned allocs, fails, frees, drains;
	char err[200]; /* the first problem seen (Criterion asserts only on the main thread) */
};

static struct worker workers[NR_THREADS];
static _Atomic uint8_t *owner; /* per page: 0 free, else worker id + 1 */
static pthread_barrier_t start_line;
static _Atomic int workers_left;
static _Atomic unsigned long drainer_drains;

static uint64_t rnd(struct worker *w)
{
	uint64_t x = (w->rng += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void fail(struct worker *w, const char *what, size_t pfn, size_t nr)
{
	if (!w->err[0])
		snprintf(w->err, sizeof w->err, "thread %u: %s (block %zu+%zu)", w->id, what, pfn,
			 nr);
}

static void claim(struct worker *w, size_t pfn, size_t nr, unsigned align_order)
{
	if (pfn % ((size_t)1 << align_order))
		fail(w, "block not aligned to its order", pfn, nr);
	if (pfn + nr > populated())
		fail(w, "block beyond the populated zone", pfn, nr);
	for (size_t p = pfn; p < pfn + nr; p++) {
		uint8_t prev = atomic_exchange(&owner[p], (uint8_t)(w->id + 1));
		if (prev)
			fail(w,
			     prev == w->id + 1 ? "page handed out twice to one thread"
					       : "page handed out to both threads",
			     p, nr);
	}
	/* the page is ours: write it */
	for (size_t p = pfn; p < pfn + nr; p++)
		*(volatile uint64_t *)mv_zone_addr(&z, p) = ((uint64_t)w->id << 32) | p;
	w->held[w->nheld++] = (struct run){(uint32_t)pfn, (uint32_t)nr};
	w->allocs++;
}

static void release_run(struct worker *w, unsigned i)
{
	struct run r = w->held[i];
	w->held[i] = w->held[--w->nheld];
	for (size_t p = r.pfn; p < r.pfn + r.nr; p++) {
		if (*(volatile uint64_t *)mv_zone_addr(&z, p) != (((uint64_t)w->id << 32) | p))
			fail(w, "a held page was overwritten", p, 1);
		atomic_store(&owner[p], 0);
	}
	mv_pcp_free_range(&z, &w->pcp, r.pfn, r.nr);
	w->frees++;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&start_line);
	for (unsigned s = 0; s < STEPS && !w->err[0]; s++) {
		uint64_t r = rnd(w);
		unsigned pct = (unsigned)(r % 100);
		bool want_alloc = w->nheld < MAX_HELD && pct < ((s / 1000) % 2 ? 40 : 65);
		if (want_alloc) {
			int mt = (int)((r >> 8) % MIGRATE_PCPTYPES);
			unsigned kind = (unsigned)((r >> 16) % 10);
			if (kind < 7) {
				/* orders 0..3 use the lists, 4 and 5 come from the
				 * zone and go back to the runs */
				unsigned order = (unsigned)((r >> 24) % 6);
				size_t pfn = mv_pcp_alloc(&z, &w->pcp, order, mt, NULL);
				if (pfn == NONE)
					w->fails++;
				else
					claim(w, pfn, (size_t)1 << order, order);
			} else {
				size_t nr = 1 + (size_t)((r >> 24) % 12);
				size_t pfn = mv_pcp_alloc_exact(&z, &w->pcp, nr, mt, NULL);
				if (pfn == NONE)
					w->fails++;
				else
					claim(w, pfn, nr, mv_order_for_pages(nr));
			}
		} else if (w->nheld) {
			release_run(w, (unsigned)((r >> 32) % w->nheld));
		}
		if ((r >> 40) % 997 == 0) {
			/* drain_all_pages from another thread */
			mv_pcp_drain(&z, &workers[(w->id + 1) % NR_THREADS].pcp);
			w->drains++;
		} else if ((r >> 40) % 1499 == 1) {
			mv_pcp_drain(&z, &w->pcp);
			w->drains++;
		}
	}
	while (w->nheld)
		release_run(w, w->nheld - 1);
	atomic_fetch_sub(&workers_left, 1);
	return NULL;
}

/* drain_all_pages, over and over, while the owners use their lists */
static void *drainer_main(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start_line);
	while (atomic_load(&workers_left) > 0) {
		for (unsigned t = 0; t < NR_THREADS; t++)
			mv_pcp_drain(&z, &workers[t].pcp);
		atomic_fetch_add(&drainer_drains, 1);
	}
	return NULL;
}

Test(pcp, two_threads_one_zone, .timeout = 120)
{
	cr_assert_eq(mv_zone_init(&z, 8 * MiB, PBO, &vm), 0);
	owner = calloc(z.nr_pages_max, 1);
	cr_assert_not_null(owner);
	pthread_barrier_init(&start_line, NULL, NR_THREADS + 1);
	atomic_store(&workers_left, NR_THREADS);
	atomic_store(&drainer_drains, 0);
	for (unsigned t = 0; t < NR_THREADS; t++) {
		struct worker *w = &workers[t];
		memset(w, 0, sizeof *w);
		w->id = t;
		w->rng = 0x1234567ull * (t + 1);
		mv_pcp_init(&w->pcp);
	}
	pthread_t drainer;
	for (unsigned t = 0; t < NR_THREADS; t++)
		cr_assert_eq(pthread_create(&workers[t].tid, NULL, worker_main, &workers[t]), 0);
	cr_assert_eq(pthread_create(&drainer, NULL, drainer_main, NULL), 0);
	for (unsigned t = 0; t < NR_THREADS; t++)
		pthread_join(workers[t].tid, NULL);
	pthread_join(drainer, NULL);
	pthread_barrier_destroy(&start_line);
	cr_assert_gt(atomic_load(&drainer_drains), 10);
	for (unsigned t = 0; t < NR_THREADS; t++) {
		struct worker *w = &workers[t];
		cr_assert_eq(w->err[0], 0, "%s", w->err);
		cr_assert(w->allocs > 1000 && w->frees > 1000 && w->drains > 0,
			  "thread %u did too little: %u allocs, %u frees, %u drains", t, w->allocs,
			  w->frees, w->drains);
		cr_assert_eq(mv_pcp_held(&w->pcp), pcp_pages(&w->pcp),
			     "thread %u: held %zu, lists hold %zu", t, mv_pcp_held(&w->pcp),
			     pcp_pages(&w->pcp));
	}
	for (size_t p = 0; p < z.nr_pages_max; p++)
		cr_assert_eq(atomic_load(&owner[p]), 0);
	/* every page is on the zone's lists or on a thread's list */
	const char *err = mv_zone_verify(&z);
	cr_assert_null(err, "before draining: mv_zone_verify: %s", err);
	size_t listed = mv_pcp_held(&workers[0].pcp) + mv_pcp_held(&workers[1].pcp);
	cr_assert_eq(atomic_load(&z.nr_free_pages) + listed, populated(),
		     "%zu free + %zu on the lists != %zu populated", atomic_load(&z.nr_free_pages),
		     listed, populated());
	for (unsigned t = 0; t < NR_THREADS; t++) {
		mv_pcp_drain(&z, &workers[t].pcp);
		cr_assert_eq(mv_pcp_held(&workers[t].pcp), 0);
	}
	check_all_free();
	free(owner);
	mv_mutex_destroy(&workers[0].pcp.lock);
	mv_mutex_destroy(&workers[1].pcp.lock);
	mv_zone_destroy(&z);
}
