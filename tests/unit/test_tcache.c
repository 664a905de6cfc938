/* SPDX-License-Identifier: MIT */
/*
 * test_tcache.c: thread caches (lib/tcache.h) on a heap made by hand
 * (unit_heap.h).
 *  - a thread's cache is made on first use and put on the heap's list;
 *    when the thread exits, its cache gives everything back: no cache left
 *    on the list, every page in the zone (once the kept empty movable slab
 *    is trimmed);
 *  - a thread that exits holding objects abandons its raw slabs to the
 *    bins, and another cache adopts them: exactly their free slots are
 *    used before any new slab;
 *  - batches: remote frees are gathered per destination slab and pushed
 *    MV_RBUF_BATCH at a time, the rest by mv_raw_rbuf_flush_all; slots
 *    freed after a grace period wait in a batch of MV_RCU_BATCH;
 *  - bounds: the empty raw slabs a cache keeps stay within mv_kept_max;
 *    a thread keeps caches for at most 16 heaps and evicts the least
 *    recently used;
 *  - mv_tcache_flush gives back the frozen slabs, the kept slabs, the page
 *    lists and the buffered remote frees;
 *  - page runs (pcp.h): a thread's freed runs of 5..64 pages are reused
 *    without the zone, what they hold stays within mv_pcp_run_high, and
 *    they all go back at thread exit, on a drain from another thread
 *    (compaction's and isolation's mv_heap_drain_all_pcp) while the owner
 *    keeps using its lists, and on decay once the owner left them idle.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "large.h"
#include "unit_heap.h"

TestSuite(tcache, .timeout = 60);

static struct mv_heap *h;

static void setup(void)
{
	h = uh_create(16 * MiB, 6);
}

static void teardown(void)
{
	uh_destroy(h);
}

static size_t slab_count(unsigned cls)
{
	return (size_t)atomic_load(&h->bins[cls].nr_slabs);
}

/* ------------------------------------------------------------ thread exit */

struct work {
	unsigned raw_n, mov_n; /* objects to allocate */
	unsigned keep;         /* raw objects left allocated at exit */
	void **raw;
	struct mv_tcache *tc;
	size_t nr_tcaches_inside;
};

static void *thread_work(void *arg)
{
	struct work *w = arg;
	struct mv_tcache *tc = mv_tcache_of(h);
	cr_assert_not_null(tc);
	w->tc = tc;
	cr_assert_eq(mv_tcache_of(h), tc, "one cache per heap and thread");
	cr_assert_eq(mv_tcache_peek(h), tc);
	cr_assert(mv_tcache_is_mine(tc));
	cr_assert_eq(tc->heap, h);
	size_t n = 0;
	mv_lock(&h->threads_lock);
	for (struct mv_tcache *t = h->tcaches; t; t = t->tnext)
		n++;
	mv_unlock(&h->threads_lock);
	w->nr_tcaches_inside = n;

	unsigned rc = mv_raw_class(64), mc = mv_mov_class(64);
	for (unsigned i = 0; i < w->raw_n; i++) {
		w->raw[i] = mv_raw_alloc_slow(h, tc, rc);
		cr_assert_not_null(w->raw[i]);
	}
	void **mov = calloc(w->mov_n + 1, sizeof *mov);
	for (unsigned i = 0; i < w->mov_n; i++) {
		mov[i] = mv_mov_alloc_slow(h, tc, mc);
		cr_assert_not_null(mov[i]);
	}
	for (unsigned i = w->keep; i < w->raw_n; i++)
		mv_raw_free_local_slow(h, tc, mv_slab_of(&h->zone, w->raw[i]), w->raw[i]);
	for (unsigned i = 0; i < w->mov_n; i++)
		mv_mov_free_slots(h, tc, &mov[i], 1);
	free(mov);
	return NULL;
}

static void run_thread(struct work *w)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, thread_work, w), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

Test(tcache, thread_exit_returns_everything, .init = setup, .fini = teardown)
{
	cr_assert_null(mv_tcache_peek(h), "this thread never made a cache");
	struct work w = {.raw_n = 1000, .mov_n = 300, .keep = 0};
	w.raw = calloc(w.raw_n, sizeof *w.raw);
	run_thread(&w);
	cr_assert_eq(w.nr_tcaches_inside, 1, "the cache was on the heap's list");
	cr_assert_null(h->tcaches, "the exited thread's cache is off the list");
	unsigned rc = mv_raw_class(64), mc = mv_mov_class(64);
	cr_assert_eq(slab_count(rc), 0, "every raw slab went back");
	cr_assert_null(h->bins[rc].abandoned);
	/* the frozen movable slab was unfrozen; empty, it is the one kept */
	cr_assert_leq(slab_count(mc), 1);
	cr_assert_eq(h->bins[mc].nr_partial_free, 0);
	mv_bins_trim(h);
	cr_assert_eq(slab_count(mc), 0);
	cr_assert_eq(uh_free(h), uh_populated(h),
		     "every page back in the zone, none on page lists");
	cr_assert_eq(uh_ev(h, MV_VM_slab_alloc), uh_ev(h, MV_VM_slab_free));
	uh_verify(h);
	free(w.raw);
}

Test(tcache, thread_exit_abandons_slabs_another_cache_adopts, .init = setup, .fini = teardown)
{
	unsigned rc = mv_raw_class(64), nregs = mv_classes[rc].nregs;
	struct work w = {.raw_n = nregs + 10, .mov_n = 0, .keep = nregs + 10};
	w.raw = calloc(w.raw_n, sizeof *w.raw);
	run_thread(&w);
	cr_assert_null(h->tcaches);
	cr_assert_eq(slab_count(rc), 2, "slabs holding objects outlive their thread");
	struct mv_bin *bin = &h->bins[rc];
	unsigned n = 0;
	for (struct mv_slab *s = bin->abandoned; s; s = s->next, n++) {
		cr_assert_eq(s->list, MV_SL_ABANDONED);
		cr_assert_null(atomic_load(&s->owner));
		cr_assert_null(s->fast_owner);
		cr_assert_eq(MV_XF_STATE(atomic_load(&s->xfree)), MV_NEVER_DELAYED);
	}
	cr_assert_eq(n, 2, "both slabs on the bin's abandoned list");

	/* frees to an abandoned slab (nobody owns it) go on its xfree */
	struct mv_slab *A = mv_slab_of(&h->zone, w.raw[0]);
	for (unsigned i = 0; i < 5; i++)
		mv_raw_free_remote(h, A, w.raw[i]);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), 5);

	/* another cache adopts them: their free slots come before a new slab */
	struct mv_tcache *tc = mv_tcache_transient(h);
	cr_assert_not_null(tc);
	unsigned want = 5 + (nregs - 10), got = 0;
	while (slab_count(rc) == 2) {
		void *p = mv_raw_alloc_slow(h, tc, rc);
		cr_assert_not_null(p);
		got++;
		cr_assert_leq(got, want + 1);
	}
	cr_assert_eq(got - 1, want, "%u slots reused before a new slab, %u were free", got - 1,
		     want);
	cr_assert_null(bin->abandoned, "both adopted");
	cr_assert_eq(atomic_load(&A->owner), tc);
	mv_tcache_destroy(h, tc);
	free(w.raw);
}

/* ------------------------------------------------------------ batches */

Test(tcache, remote_frees_pushed_in_batches, .init = setup, .fini = teardown)
{
	struct mv_tcache *owner = mv_tcache_transient(h), *other = mv_tcache_transient(h);
	cr_assert(owner && other);
	unsigned rc = mv_raw_class(64), nregs = mv_classes[rc].nregs;
	cr_assert_geq(nregs, MV_RBUF_BATCH + 5);
	void **a = calloc(nregs, sizeof *a);
	for (unsigned i = 0; i < nregs; i++)
		a[i] = mv_raw_alloc_slow(h, owner, rc);
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]);
	for (unsigned i = 0; i < MV_RBUF_BATCH - 1; i++)
		mv_raw_free_remote_buffered(other, A, a[i]);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), 0, "held in the freeing cache");
	mv_raw_free_remote_buffered(other, A, a[MV_RBUF_BATCH - 1]);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), MV_RBUF_BATCH, "one batch pushed");
	for (unsigned i = MV_RBUF_BATCH; i < MV_RBUF_BATCH + 5; i++)
		mv_raw_free_remote_buffered(other, A, a[i]);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), MV_RBUF_BATCH);
	mv_raw_rbuf_flush_all(other);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), MV_RBUF_BATCH + 5, "the rest flushed");
	for (unsigned i = 0; i < MV_RBUF_SLOTS; i++)
		cr_assert_eq(other->rbuf[i].n, 0);

	/* the owner's own frees through the same path are local */
	mv_raw_free_remote_buffered(owner, A, a[nregs - 1]);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), MV_RBUF_BATCH + 5);
	cr_assert_eq(A->free, a[nregs - 1]);

	/* every one of them is handed out again, each once, before a new slab */
	unsigned want = MV_RBUF_BATCH + 5 + 1;
	for (unsigned k = 0; k < want; k++) {
		void *p = mv_raw_alloc_slow(h, owner, rc);
		cr_assert_eq(mv_slab_of(&h->zone, p), A, "allocation %u of %u", k, want);
	}
	cr_assert_eq(A->used, nregs);
	cr_assert_eq(slab_count(rc), 1);
	mv_tcache_destroy(h, other);
	mv_tcache_destroy(h, owner);
	free(a);
}

Test(tcache, deferred_slots_wait_for_a_full_batch, .init = setup, .fini = teardown)
{
	cr_assert_not(mv_rcu_readers_ever(), "no reader in this process: freed at once");
	struct mv_tcache *tc = mv_tcache_transient(h);
	unsigned mc = mv_mov_class(16);
	void **s = calloc(MV_RCU_BATCH + 1, sizeof *s);
	for (unsigned i = 0; i < MV_RCU_BATCH + 1; i++)
		s[i] = mv_mov_alloc_slow(h, tc, mc);
	uint64_t live0 = 0;
	struct mv_slab *slabs[8] = {0};
	unsigned ns = 0;
	for (unsigned i = 0; i < MV_RCU_BATCH + 1; i++) {
		struct mv_slab *x = mv_slab_of(&h->zone, s[i]);
		unsigned k = 0;
		while (k < ns && slabs[k] != x)
			k++;
		if (k == ns)
			slabs[ns++] = x;
	}
	for (unsigned k = 0; k < ns; k++)
		live0 += slabs[k]->used;
	cr_assert_eq(live0, MV_RCU_BATCH + 1);
	for (unsigned i = 0; i < MV_RCU_BATCH - 1; i++)
		mv_tcache_defer_slot(h, tc, s[i]);
	cr_assert_not_null(tc->pending);
	cr_assert_eq(tc->pending->n, MV_RCU_BATCH - 1);
	uint64_t live = 0;
	for (unsigned k = 0; k < ns; k++)
		live += slabs[k]->used;
	cr_assert_eq(live, live0, "nothing freed before the batch is full");
	mv_tcache_defer_slot(h, tc, s[MV_RCU_BATCH - 1]);
	cr_assert_null(tc->pending, "a full batch is sent");
	live = 0;
	for (unsigned k = 0; k < ns; k++)
		live += slabs[k]->used + slabs[k]->nxlist;
	cr_assert_eq(live, 1, "the batch's %u slots freed", MV_RCU_BATCH);
	/* a partial batch goes with a flush */
	mv_tcache_defer_slot(h, tc, s[MV_RCU_BATCH]);
	cr_assert_eq(tc->pending->n, 1);
	mv_tcache_flush_pending(h, tc);
	cr_assert_null(tc->pending);
	mv_tcache_flush(h, tc);
	mv_bins_trim(h);
	cr_assert_eq(uh_ev(h, MV_VM_slab_free), ns, "every slab emptied and given back");
	cr_assert_eq(slab_count(mc), 0);
	mv_pcp_drain(&h->zone, &tc->pcp);
	cr_assert_eq(uh_free(h), uh_populated(h));
	mv_tcache_destroy(h, tc);
	free(s);
}

/* ------------------------------------------------------------ bounds */

Test(tcache, kept_empty_slabs_within_budget, .init = setup, .fini = teardown)
{
	struct mv_tcache *tc = mv_tcache_transient(h);
	unsigned rc = mv_raw_class(16384), nregs = mv_classes[rc].nregs, np = mv_classes[rc].npages;
	enum { NSLABS = 12 };
	unsigned n = NSLABS * nregs;
	void **a = calloc(n + 1, sizeof *a);
	for (unsigned i = 0; i < n; i++)
		a[i] = mv_raw_alloc_slow(h, tc, rc);
	a[n] = mv_raw_alloc_slow(h, tc, rc); /* a current slab apart from the twelve */
	cr_assert_eq(slab_count(rc), NSLABS + 1);
	uint32_t kmax = mv_kept_max(&h->zone);
	cr_assert_geq(kmax, 16);
	for (unsigned i = 0; i < n; i++) {
		mv_raw_free_local_slow(h, tc, mv_slab_of(&h->zone, a[i]), a[i]);
		cr_assert_leq(tc->kept_pages, mv_kept_max(&h->zone), "after %u frees", i + 1);
	}
	uint64_t retired = uh_ev(h, MV_VM_slab_free);
	cr_assert_eq(tc->kept_pages, (NSLABS - retired) * np,
		     "kept %u pages, %u slabs of %u emptied, %lu retired", tc->kept_pages, NSLABS,
		     np, (unsigned long)retired);
	cr_assert_geq(retired, NSLABS - kmax / np, "the budget is %u pages", kmax);
	cr_assert_eq(slab_count(rc), NSLABS + 1 - retired);
	mv_raw_release_kept(h, tc);
	cr_assert_eq(tc->kept_pages, 0);
	cr_assert_eq(slab_count(rc), 1, "only the slab holding an object");
	mv_tcache_destroy(h, tc);
	free(a);
}

#define NR_HEAPS 17 /* one more than a thread keeps caches for */

static void *use_many_heaps(void *arg)
{
	struct mv_heap **hs = arg;
	struct mv_tcache *tcs[NR_HEAPS];
	for (unsigned i = 0; i < NR_HEAPS - 1; i++) {
		tcs[i] = mv_tcache_of(hs[i]);
		cr_assert_not_null(tcs[i]);
	}
	for (unsigned i = 0; i < NR_HEAPS - 1; i++)
		cr_assert_eq(hs[i]->tcaches, tcs[i]);
	/* use heap 0 again: heap 1 becomes the least recently used */
	cr_assert_eq(mv_tcache_of(hs[0]), tcs[0]);
	tcs[NR_HEAPS - 1] = mv_tcache_of(hs[NR_HEAPS - 1]);
	cr_assert_not_null(tcs[NR_HEAPS - 1]);
	cr_assert_null(hs[1]->tcaches, "the least recently used cache was evicted");
	cr_assert_null(mv_tcache_peek(hs[1]));
	cr_assert_eq(hs[0]->tcaches, tcs[0], "the recently used one was kept");
	for (unsigned i = 2; i < NR_HEAPS; i++)
		cr_assert_eq(mv_tcache_peek(hs[i]), tcs[i]);
	return NULL;
}

Test(tcache, at_most_16_heaps_per_thread, .init = setup, .fini = teardown)
{
	struct mv_heap *hs[NR_HEAPS];
	hs[0] = h;
	for (unsigned i = 1; i < NR_HEAPS; i++)
		hs[i] = uh_create(4 * MiB, 6);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, use_many_heaps, hs), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	for (unsigned i = 0; i < NR_HEAPS; i++)
		cr_assert_null(hs[i]->tcaches, "heap %u: the thread's exit took its cache", i);
	for (unsigned i = 1; i < NR_HEAPS; i++)
		uh_destroy(hs[i]);
}

/* ------------------------------------------------------------ flush */

Test(tcache, flush_gives_back_what_it_holds, .init = setup, .fini = teardown)
{
	struct mv_tcache *tc = mv_tcache_transient(h), *other = mv_tcache_transient(h);
	unsigned rc = mv_raw_class(256), mc = mv_mov_class(256), nregs = mv_classes[rc].nregs;
	/* a kept empty raw slab, a frozen movable slab, page lists, buffered remote frees */
	void **a = calloc(2 * nregs + 1, sizeof *a);
	for (unsigned i = 0; i < 2 * nregs + 1; i++)
		a[i] = mv_raw_alloc_slow(h, tc, rc);
	for (unsigned i = 0; i < nregs; i++)
		mv_raw_free_local_slow(h, tc, mv_slab_of(&h->zone, a[i]), a[i]);
	cr_assert_gt(tc->kept_pages, 0);
	void *m = mv_mov_alloc_slow(h, tc, mc);
	struct mv_slab *M = mv_slab_of(&h->zone, m);
	mv_mov_free_slots(h, tc, &m, 1);
	cr_assert_eq(tc->mov_cur[mc - MV_MOV_CLASS0], M);
	struct mv_slab *B = mv_slab_of(&h->zone, a[nregs]);
	mv_raw_free_remote_buffered(other, B, a[nregs]);
	cr_assert_eq(other->rbuf[((uintptr_t)B >> 7) & (MV_RBUF_SLOTS - 1)].n, 1);
	size_t pfn = mv_pcp_alloc(&h->zone, &tc->pcp, 0, MIGRATE_UNMOVABLE, NULL);
	mv_pcp_free_range(&h->zone, &tc->pcp, pfn, 1);
	cr_assert_gt(tc->pcp.count, 0);

	/* B is parked full and asked to hear of remote frees: the pushed
	 * free lands on its owner's delayed list */
	cr_assert_eq(B->list, MV_SL_OWNED_FULL);
	mv_tcache_flush(h, other);
	cr_assert_eq(other->rbuf[((uintptr_t)B >> 7) & (MV_RBUF_SLOTS - 1)].n, 0);
	cr_assert_eq(atomic_load(&tc->xdelayed), a[nregs], "the buffered free was pushed");
	mv_tcache_flush(h, tc);
	cr_assert_null(atomic_load(&tc->xdelayed), "delayed frees collected");
	cr_assert_eq(B->list, MV_SL_OWNED);
	cr_assert_eq(tc->kept_pages, 0, "kept slabs given back");
	for (unsigned i = 0; i < MV_NR_MOV_CLASSES; i++)
		cr_assert_eq(tc->mov_cur[i], &mv_slab_empty, "movable class %u still frozen", i);
	cr_assert_null(atomic_load(&M->owner));
	cr_assert_eq(M->list, MV_SL_EMPTY);
	cr_assert_eq(tc->pcp.count, 0, "page lists drained");
	/* what is left: B, holding nregs objects less the remote free it
	 * took, and the slab of a[2 * nregs] */
	cr_assert_eq(slab_count(rc), 2);
	cr_assert_eq(B->used, nregs - 1);
	mv_tcache_destroy(h, other);
	mv_tcache_destroy(h, tc);
	free(a);
}

/* ------------------------------------------------------------ page runs */

enum { RUN_SIZES = MV_PCP_RUN_MAX - MV_PCP_RUN_MIN + 1 };

struct runs_work {
	pthread_barrier_t *bar; /* when set: wait twice holding runs, then use them again */
	struct mv_tcache *tc;
	size_t held, high, reused_allocs, reused_same;
};

/* large objects of every run size, freed; then each size again */
static void runs_round(struct runs_work *w)
{
	static __thread void *p[RUN_SIZES];
	for (unsigned i = 0; i < RUN_SIZES; i++) {
		p[i] = mv_large_alloc(h, w->tc, (MV_PCP_RUN_MIN + i) * 4096 - 100, 0,
				      MIGRATE_UNMOVABLE, false);
		cr_assert_not_null(p[i]);
	}
	for (unsigned i = 0; i < RUN_SIZES; i++)
		mv_large_free(h, w->tc, p[i]);
	w->held = atomic_load(&w->tc->pcp.run_pages);
	w->high = mv_pcp_run_high(&h->zone);
	/* past the bound the largest runs go back first: the smallest stays */
	uint64_t allocs = uh_ev(h, MV_VM_pgalloc);
	void *q = mv_large_alloc(h, w->tc, MV_PCP_RUN_MIN * 4096, 0, MIGRATE_UNMOVABLE, false);
	w->reused_allocs = uh_ev(h, MV_VM_pgalloc) - allocs;
	w->reused_same = q == p[0];
	mv_large_free(h, w->tc, q);
}

static void *runs_thread(void *arg)
{
	struct runs_work *w = arg;
	w->tc = mv_tcache_of(h);
	runs_round(w);
	if (w->bar) {
		pthread_barrier_wait(w->bar); /* holding runs: the main thread drains or decays */
		pthread_barrier_wait(w->bar);
		runs_round(w); /* the owner's lists after a drain from elsewhere */
	}
	return NULL;
}

Test(tcache, page_runs_reused_bounded_and_returned_at_exit, .init = setup, .fini = teardown)
{
	struct runs_work w = {0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, runs_thread, &w), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_gt(w.held, 0, "freed runs are kept by the thread");
	cr_assert_leq(w.held, w.high, "the runs hold %zu pages, over the bound %zu", w.held,
		      w.high);
	cr_assert_lt(w.high, (size_t)RUN_SIZES * (MV_PCP_RUN_MIN + MV_PCP_RUN_MAX) / 2,
		     "the bound is below what was freed: some runs went back");
	cr_assert_eq(w.reused_allocs, 0, "a run of a cached size comes without the zone");
	cr_assert(w.reused_same, "and is the one freed");
	cr_assert_null(h->tcaches);
	cr_assert_eq(uh_free(h), uh_populated(h), "thread exit returned every run");
	uh_verify(h);
}

/* a thread that stops holding its runs, for the main thread to act on them;
 * runs_holder_end lets it go on (a round after) and joins it */
static pthread_t runs_holder(struct runs_work *w, pthread_barrier_t *bar)
{
	pthread_barrier_init(bar, NULL, 2);
	*w = (struct runs_work){.bar = bar};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, runs_thread, w), 0);
	pthread_barrier_wait(bar);
	return t;
}

static void runs_holder_end(pthread_t t, pthread_barrier_t *bar)
{
	pthread_barrier_wait(bar);
	cr_assert_eq(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(bar);
}

Test(tcache, page_runs_drained_by_another_thread, .init = setup, .fini = teardown)
{
	pthread_barrier_t bar;
	struct runs_work w;
	pthread_t t = runs_holder(&w, &bar);
	cr_assert_gt(mv_pcp_held(&w.tc->pcp), 0);
	cr_assert_lt(uh_free(h), uh_populated(h));
	mv_heap_drain_all_pcp(h); /* as compaction and isolation do */
	cr_assert_eq(mv_pcp_held(&w.tc->pcp), 0);
	cr_assert_eq(uh_free(h), uh_populated(h), "every run back in the zone");
	uh_verify(h);
	runs_holder_end(t, &bar);
	cr_assert_gt(w.held, 0, "the owner keeps runs again after the drain");
	cr_assert_eq(uh_free(h), uh_populated(h));
	uh_verify(h);
}

Test(tcache, page_runs_decay_when_idle, .init = setup, .fini = teardown)
{
	pthread_barrier_t bar;
	struct runs_work w;
	pthread_t t = runs_holder(&w, &bar);
	size_t held = mv_pcp_held(&w.tc->pcp);
	cr_assert_gt(held, 0);
	mv_heap_decay_pcp(h); /* used since the last look: kept */
	cr_assert_eq(mv_pcp_held(&w.tc->pcp), held);
	mv_heap_decay_pcp(h); /* idle for a whole period: back to the zone */
	cr_assert_eq(mv_pcp_held(&w.tc->pcp), 0);
	cr_assert_eq(uh_free(h), uh_populated(h));
	runs_holder_end(t, &bar);
	uh_verify(h);
}
