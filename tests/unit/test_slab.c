/* SPDX-License-Identifier: MIT */
/*
 * test_slab.c: slabs (lib/slab.h) through their own interface, on a heap
 * made by hand (unit_heap.h), with thread caches made by
 * mv_tcache_transient so that no thread record is involved.
 *  - a new slab's geometry and page descriptors; slots handed out to
 *    capacity, each once, inside the slab; push and pop; destroy gives the
 *    pages back to the page allocator;
 *  - raw slabs (thread-owned): a full slab is parked on the owner's full
 *    list and asks to hear of remote frees; a local free brings it back;
 *    freed slots are reused; an emptied slab is kept within the budget and
 *    retired by mv_raw_release_kept;
 *  - remote frees from another thread: on xfree while the owner does not
 *    wait for them, on the owner's delayed list once it parked the slab;
 *    both delivered, every slot once;
 *  - movable slabs (SLUB's frozen slab): full, partial by fullness, empty
 *    lists of the bin; frees to a frozen slab by others on xlist; the
 *    fullest partial slab is taken first, then an empty one, then a new
 *    one; an empty slab beyond the one kept goes back to the page
 *    allocator, and mv_bins_trim gives back the kept one;
 *  - free-list corruption is caught (MV_SECURE 1): a plain pointer written
 *    into a free slot, a link to another slab, a cycle.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "unit_heap.h"

TestSuite(slab, .timeout = 60);

static struct mv_heap *h;
static struct mv_tcache *tc;

static void setup(void)
{
	h = uh_create(16 * MiB, 6);
	tc = mv_tcache_transient(h);
	cr_assert_not_null(tc);
}

static void teardown(void)
{
	mv_tcache_destroy(h, tc);
	uh_destroy(h);
}

/* pages held by someone: populated, not on the zone's free lists, not on tc's page lists */
static size_t used_pages(void)
{
	return uh_populated(h) - uh_free(h) - tc->pcp.count;
}

static bool in_slab(const struct mv_slab *s, const void *p)
{
	const char *c = p;
	return c >= s->addr && c < s->addr + (size_t)s->nregs * s->usize &&
	       (size_t)(c - s->addr) % s->usize == 0;
}

/* ------------------------------------------------------------ creation */

Test(slab, new_slab_slots_to_capacity_and_destroy, .init = setup, .fini = teardown)
{
	unsigned cls = mv_raw_class(64);
	const struct mv_class *c = &mv_classes[cls];
	size_t used0 = used_pages();
	struct mv_slab *s = mv_slab_new(h, tc, cls);
	cr_assert_not_null(s);
	cr_assert_eq(used_pages(), used0 + c->npages, "a slab holds exactly its class's pages");
	cr_assert_eq(s->cls, cls);
	cr_assert_eq(s->usize, c->size);
	cr_assert_eq(s->nregs, c->nregs);
	cr_assert_eq(s->used, 0);
	cr_assert_null(s->free);
	cr_assert_eq(s->list, MV_SL_OWNED);
	cr_assert_eq(atomic_load(&s->owner), tc);
	cr_assert_eq(s->fast_owner, tc, "a raw slab has a fast owner");
	cr_assert_eq(s->addr, mv_zone_addr(&h->zone, s->pfn));
	cr_assert_eq((size_t)s->pfn % c->npages, 0, "slabs are aligned buddy blocks");
	for (unsigned i = 0; i < c->npages; i++) {
		const struct mv_page *pg = mv_pfn_to_page(&h->zone, s->pfn + i);
		cr_assert_eq(pg->type, PG_SLAB, "page %u of the slab", i);
		cr_assert_eq(pg->slab, s);
		cr_assert_eq(pg->cls, cls);
		cr_assert_eq(mv_slab_of(&h->zone, s->addr + i * MV_PAGE_SIZE + 17), s);
	}
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 1);
	cr_assert_eq(uh_ev(h, MV_VM_slab_alloc), 1);

	/* every slot once: extend a page's worth at a time, pop */
	uint8_t *seen = calloc(s->nregs, 1);
	void **slots = calloc(s->nregs, sizeof *slots);
	unsigned n = 0;
	cr_assert(mv_slab_extend(s));
	cr_assert_eq(s->nbump, MV_MAX(1u, 4096u / s->usize), "extend hands out a page's worth");
	for (;;) {
		if (!s->free && !mv_slab_extend(s))
			break;
		void *p = mv_slab_pop(s);
		cr_assert(in_slab(s, p), "slot %p outside the slab or misaligned", p);
		uint32_t i = mv_slab_slot(s, p);
		cr_assert_eq((char *)p, s->addr + (size_t)i * s->usize);
		cr_assert_eq(seen[i], 0, "slot %u handed out twice", i);
		seen[i] = 1;
		memset(p, (int)(i & 0xff), s->usize);
		slots[n++] = p;
	}
	cr_assert_eq(n, s->nregs, "%u slots handed out, the class has %u", n, s->nregs);
	cr_assert_eq(s->used, s->nregs);
	cr_assert_eq(s->nbump, s->nregs);
	cr_assert_not(mv_slab_extend(s), "nothing left to extend");
	for (unsigned k = 0; k < n; k++) {
		uint32_t i = mv_slab_slot(s, slots[k]);
		for (unsigned b = 0; b < s->usize; b++)
			cr_assert_eq(((uint8_t *)slots[k])[b], i & 0xff, "slot %u overlaps another",
				     i);
	}
	/* push them all back: they come out again, each once */
	for (unsigned k = 0; k < n; k++) {
		mv_slab_push(s, slots[k]);
		s->used--;
	}
	cr_assert_eq(s->used, 0);
	memset(seen, 0, s->nregs);
	for (unsigned k = 0; k < n; k++) {
		void *p = mv_slab_pop(s);
		cr_assert_eq(p, slots[n - 1 - k], "the free list is LIFO");
		cr_assert_eq(seen[mv_slab_slot(s, p)]++, 0);
	}
	cr_assert_null(s->free);

	size_t pfn = s->pfn;
	mv_slab_destroy(h, tc, s);
	for (unsigned i = 0; i < c->npages; i++)
		cr_assert_neq(mv_pfn_to_page(&h->zone, pfn + i)->type, PG_SLAB);
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 0);
	cr_assert_eq(uh_ev(h, MV_VM_slab_free), 1);
	cr_assert_eq(used_pages(), used0, "the slab's pages went back");
	mv_pcp_drain(&h->zone, &tc->pcp);
	cr_assert_eq(uh_free(h), uh_populated(h), "everything free in the zone");
	uh_verify(h);
	free(seen);
	free(slots);
}

/* ------------------------------------------------------------ raw slabs */

Test(slab, raw_full_parked_reused_and_retired, .init = setup, .fini = teardown)
{
	unsigned cls = mv_raw_class(64);
	unsigned nregs = mv_classes[cls].nregs, np = mv_classes[cls].npages;
	void **a = calloc(nregs, sizeof *a), **b = calloc(nregs, sizeof *b);
	for (unsigned i = 0; i < nregs; i++) {
		a[i] = mv_raw_alloc_slow(h, tc, cls);
		cr_assert_not_null(a[i]);
		for (unsigned k = 0; k < i; k++)
			cr_assert_neq(a[k], a[i], "slot handed out twice");
	}
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]);
	for (unsigned i = 0; i < nregs; i++)
		cr_assert_eq(mv_slab_of(&h->zone, a[i]), A, "one slab fills before the next");
	cr_assert_eq(A->used, nregs);
	cr_assert_eq(tc->raw_cur[cls], A);
	cr_assert(A->cur);
	cr_assert_eq(tc->direct[(64 + 15) >> 4], A, "the direct table follows the current slab");
	cr_assert_eq(A->list, MV_SL_OWNED);

	/* full: the next allocation parks A and takes a new slab */
	b[0] = mv_raw_alloc_slow(h, tc, cls);
	struct mv_slab *B = mv_slab_of(&h->zone, b[0]);
	cr_assert_neq(B, A);
	cr_assert_eq(A->list, MV_SL_OWNED_FULL);
	cr_assert_eq(tc->rawfull.first, A);
	cr_assert_null(A->fast_owner, "a parked slab has no fast owner");
	cr_assert_eq(MV_XF_STATE(atomic_load(&A->xfree)), MV_USE_DELAYED,
		     "a parked slab asks to hear of its next remote free");
	cr_assert_eq(tc->raw_cur[cls], B);
	cr_assert(B->cur && !A->cur, "the current flag follows raw_cur (free's fast test)");
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 2);

	/* a local free to the parked slab brings it back to the class queue */
	mv_raw_free_local_slow(h, tc, A, a[5]);
	cr_assert_eq(A->list, MV_SL_OWNED);
	cr_assert_eq(A->fast_owner, tc);
	cr_assert_eq(MV_XF_STATE(atomic_load(&A->xfree)), MV_NO_DELAYED);
	cr_assert_null(tc->rawfull.first);
	cr_assert_eq(A->used, nregs - 1);

	/* a free to the current slab is reused at once */
	mv_raw_free_local_slow(h, tc, B, b[0]);
	cr_assert_eq(mv_raw_alloc_slow(h, tc, cls), b[0], "the freed slot comes back first");

	/* fill B: A's freed slot, on a backed page, is taken as soon as B's
	 * listed slots run out, before B's untouched (bump) slots; no third
	 * slab is made */
	unsigned nb = 1, seen_a5 = 0;
	for (unsigned i = 0; i < nregs; i++) {
		void *p = mv_raw_alloc_slow(h, tc, cls);
		if (p == a[5]) {
			seen_a5++;
			cr_assert_lt(B->nbump, nregs, "A's slot came after B's bump slots");
			continue;
		}
		cr_assert_eq(mv_slab_of(&h->zone, p), B);
		b[nb++] = p;
	}
	cr_assert_eq(seen_a5, 1, "A's freed slot, before any new slab");
	cr_assert_eq(nb, nregs);
	cr_assert_eq(A->list, MV_SL_OWNED_FULL, "A, full again, was parked");
	cr_assert_eq(tc->raw_cur[cls], B);
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 2, "no third slab");
	/* the slot back to A once more, and taken: B, full, is parked */
	mv_raw_free_local_slow(h, tc, A, a[5]);
	cr_assert_eq(mv_raw_alloc_slow(h, tc, cls), a[5]);
	cr_assert_eq(B->list, MV_SL_OWNED_FULL);
	cr_assert_eq(tc->raw_cur[cls], A);
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 2, "no third slab");

	/* empty B (not current): kept for reuse, within the budget */
	for (unsigned i = 0; i < nregs; i++)
		mv_raw_free_local_slow(h, tc, B, b[i]);
	cr_assert_eq(B->used, 0);
	cr_assert_eq(B->kept, 1, "an emptied slab is kept");
	cr_assert_eq(tc->kept_pages, np);
	cr_assert_leq(tc->kept_pages, mv_kept_max(&h->zone));
	cr_assert_eq(uh_ev(h, MV_VM_slab_free), 0);

	/* released: B goes back to the page allocator; A still holds objects */
	size_t before = used_pages();
	mv_raw_release_kept(h, tc);
	cr_assert_eq(uh_ev(h, MV_VM_slab_free), 1);
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 1);
	cr_assert_eq(tc->kept_pages, 0);
	cr_assert_eq(used_pages(), before - np);
	cr_assert_eq(mv_slab_of(&h->zone, a[0]), A);

	/* empty A too, the current slab: release takes it as well */
	for (unsigned i = 0; i < nregs; i++)
		mv_raw_free_local_slow(h, tc, A, a[i]);
	mv_raw_release_kept(h, tc);
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 0);
	cr_assert_eq(tc->raw_cur[cls], &mv_slab_empty);
	mv_pcp_drain(&h->zone, &tc->pcp);
	cr_assert_eq(uh_free(h), uh_populated(h), "every page back in the zone");
	uh_verify(h);
	free(a);
	free(b);
}

/* ------------------------------------------------------------ remote frees */

struct remote {
	struct mv_slab *s;
	void **slots;
	unsigned n;
};

static void *remote_free(void *arg)
{
	struct remote *r = arg;
	for (unsigned i = 0; i < r->n; i++)
		mv_raw_free_remote(h, r->s, r->slots[i]);
	return NULL;
}

static void run_remote(struct remote *r)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, remote_free, r), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

Test(slab, remote_free_delivered_to_owner, .init = setup, .fini = teardown)
{
	unsigned cls = mv_raw_class(64), nregs = mv_classes[cls].nregs;
	void **a = calloc(nregs, sizeof *a);
	for (unsigned i = 0; i < nregs; i++)
		a[i] = mv_raw_alloc_slow(h, tc, cls);
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]);
	cr_assert_eq(A->used, nregs);

	/* another thread frees ten of them: on xfree, counted */
	void *mine[10];
	for (unsigned i = 0; i < 10; i++)
		mine[i] = a[3 + 7 * i];
	struct remote r = {A, mine, 10};
	run_remote(&r);
	uint64_t w = atomic_load(&A->xfree);
	cr_assert_eq(MV_XF_COUNT(w), 10, "ten remote frees counted");
	cr_assert_not_null(MV_XF_PTR(w));
	cr_assert_eq(A->used, nregs, "the owner has not taken them yet");

	/* the owner's next ten allocations are exactly those ten */
	unsigned got = 0;
	for (unsigned k = 0; k < 10; k++) {
		void *p = mv_raw_alloc_slow(h, tc, cls);
		for (unsigned i = 0; i < 10; i++)
			if (mine[i] == p) {
				mine[i] = NULL;
				got++;
			}
	}
	cr_assert_eq(got, 10, "every remote free delivered, each once");
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), 0);
	cr_assert_eq(A->used, nregs);
	cr_assert_eq(atomic_load(&h->bins[cls].nr_slabs), 1);
	void *p = mv_raw_alloc_slow(h, tc, cls);
	cr_assert_neq(mv_slab_of(&h->zone, p), A, "then a new slab");
	free(a);
}

Test(slab, remote_free_to_parked_slab_goes_to_delayed_list, .init = setup, .fini = teardown)
{
	unsigned cls = mv_raw_class(64), nregs = mv_classes[cls].nregs;
	void **a = calloc(nregs, sizeof *a);
	for (unsigned i = 0; i < nregs; i++)
		a[i] = mv_raw_alloc_slow(h, tc, cls);
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]);
	(void)mv_raw_alloc_slow(h, tc, cls); /* parks A: USE_DELAYED */
	cr_assert_eq(MV_XF_STATE(atomic_load(&A->xfree)), MV_USE_DELAYED);

	struct remote r = {A, &a[3], 1};
	run_remote(&r);
	uint64_t w = atomic_load(&A->xfree);
	cr_assert_eq(MV_XF_STATE(w), MV_NO_DELAYED, "the notifier ended its notification");
	cr_assert_null(MV_XF_PTR(w), "the slot went to the owner, not to xfree");
	cr_assert_eq(atomic_load(&tc->xdelayed), a[3], "on the owner's delayed list");
	cr_assert_eq(A->list, MV_SL_OWNED_FULL);

	/* a second remote free now lands on xfree (no longer asked to notify) */
	r.slots = &a[4];
	run_remote(&r);
	cr_assert_eq(MV_XF_COUNT(atomic_load(&A->xfree)), 1);

	/* the owner collects: A leaves the full list, the slot is free in it */
	mv_raw_collect_delayed(h, tc);
	cr_assert_null(atomic_load(&tc->xdelayed));
	cr_assert_eq(A->list, MV_SL_OWNED);
	cr_assert_eq(A->used, nregs - 1);
	cr_assert_eq(A->free, a[3]);
	free(a);
}

/* ------------------------------------------------------------ movable slabs */

static unsigned mov_cls(void)
{
	return mv_mov_class(64);
}

Test(slab, movable_full_partial_empty_lists, .init = setup, .fini = teardown)
{
	unsigned cls = mov_cls(), nregs = mv_classes[cls].nregs, mi = cls - MV_MOV_CLASS0;
	struct mv_bin *bin = &h->bins[cls];
	void **a = calloc(nregs, sizeof *a), **b = calloc(nregs, sizeof *b);
	for (unsigned i = 0; i < nregs; i++)
		a[i] = mv_mov_alloc_slow(h, tc, cls);
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]);
	cr_assert_eq(A->list, MV_SL_OWNED, "frozen");
	cr_assert_eq(atomic_load(&A->owner), tc);
	cr_assert_eq(tc->mov_cur[mi], A);
	cr_assert_eq(A->used, nregs);
	cr_assert_null(A->fast_owner, "movable slabs have no fast owner");
	cr_assert_not_null(A->backref, "handle slabs carry back-references");

	/* full: unfrozen onto the bin's full list, a new slab frozen */
	b[0] = mv_mov_alloc_slow(h, tc, cls);
	struct mv_slab *B = mv_slab_of(&h->zone, b[0]);
	cr_assert_neq(B, A);
	cr_assert_eq(A->list, MV_SL_FULL);
	cr_assert_eq(bin->full, A);
	cr_assert_null(atomic_load(&A->owner));
	cr_assert_eq(tc->mov_cur[mi], B);

	/* frees from another cache (none here): partial, by fullness */
	for (unsigned i = 0; i < nregs; i++) {
		mv_mov_free_slots(h, NULL, &a[i], 1);
		unsigned used = nregs - 1 - i;
		if (used == 0)
			break;
		unsigned f = MV_MIN(MV_NR_FULLNESS - 1, used * MV_NR_FULLNESS / nregs);
		cr_assert_eq(A->list, MV_SL_PARTIAL, "after %u frees", i + 1);
		cr_assert_eq(A->used, used);
		cr_assert_eq(A->fullness, f, "used %u of %u", used, nregs);
		cr_assert_eq(bin->partial[f], A);
		cr_assert_eq(bin->nr_partial_free, nregs - used);
		cr_assert_null(bin->full);
	}
	/* empty: kept on the bin's empty list (one is kept) */
	cr_assert_eq(A->list, MV_SL_EMPTY);
	cr_assert_eq(bin->empty, A);
	cr_assert_eq(bin->nr_empty, 1);
	cr_assert_eq(bin->nr_partial_free, 0);
	for (unsigned f = 0; f < MV_NR_FULLNESS; f++)
		cr_assert_null(bin->partial[f]);
	cr_assert_eq(uh_ev(h, MV_VM_slab_free), 0);

	/* a free to the frozen B by another cache goes on B's xlist */
	for (unsigned i = 1; i < nregs; i++)
		b[i] = mv_mov_alloc_slow(h, tc, cls);
	cr_assert_eq(B->used, nregs);
	mv_mov_free_slots(h, NULL, &b[7], 1);
	cr_assert_eq(B->nxlist, 1);
	cr_assert_eq(B->xlist, b[7]);
	cr_assert_eq(B->used, nregs, "counted when the owner takes it");
	cr_assert_eq(B->list, MV_SL_OWNED, "still frozen");
	/* the owner's slow path takes the xlist first */
	cr_assert_eq(mv_mov_alloc_slow(h, tc, cls), b[7]);
	cr_assert_null(B->xlist);
	cr_assert_eq(B->used, nregs);
	/* B full again: the empty A is taken before a new slab */
	void *p = mv_mov_alloc_slow(h, tc, cls);
	cr_assert_eq(mv_slab_of(&h->zone, p), A, "the empty slab reused");
	cr_assert_eq(bin->nr_empty, 0);
	cr_assert_eq(A->list, MV_SL_OWNED);
	cr_assert_eq(B->list, MV_SL_FULL);
	cr_assert_eq(atomic_load(&bin->nr_slabs), 2);

	/* empty B: kept (nothing on the empty list) */
	for (unsigned i = 0; i < nregs; i++)
		mv_mov_free_slots(h, NULL, &b[i], 1);
	cr_assert_eq(B->list, MV_SL_EMPTY);
	/* unfreeze A and empty it: one empty slab is kept already, so A goes
	 * back to the page allocator */
	mv_mov_unfreeze_all(h, tc);
	cr_assert_eq(tc->mov_cur[mi], &mv_slab_empty);
	cr_assert_eq(A->list, MV_SL_PARTIAL);
	cr_assert_eq(A->used, 1);
	mv_mov_free_slots(h, NULL, &p, 1);
	cr_assert_eq(uh_ev(h, MV_VM_slab_free), 1);
	cr_assert_eq(atomic_load(&bin->nr_slabs), 1);
	cr_assert_eq(bin->empty, B);
	/* trim: the kept empty slab goes back too */
	cr_assert_eq(mv_bins_trim(h), 1);
	cr_assert_eq(atomic_load(&bin->nr_slabs), 0);
	cr_assert_null(bin->empty);
	mv_pcp_drain(&h->zone, &tc->pcp);
	cr_assert_eq(uh_free(h), uh_populated(h), "every page back in the zone");
	uh_verify(h);
	free(a);
	free(b);
}

Test(slab, movable_takes_fullest_partial_first, .init = setup, .fini = teardown)
{
	unsigned cls = mov_cls(), nregs = mv_classes[cls].nregs;
	struct mv_bin *bin = &h->bins[cls];
	void **a = calloc(3 * nregs, sizeof *a);
	for (unsigned i = 0; i < 3 * nregs; i++)
		a[i] = mv_mov_alloc_slow(h, tc, cls);
	struct mv_slab *S0 = mv_slab_of(&h->zone, a[0]), *S1 = mv_slab_of(&h->zone, a[nregs]),
		       *S2 = mv_slab_of(&h->zone, a[2 * nregs]);
	cr_assert(S0 != S1 && S1 != S2 && S0 != S2);
	cr_assert_eq(S0->list, MV_SL_FULL);
	cr_assert_eq(S1->list, MV_SL_FULL);
	/* S0 nearly empty, S1 nearly full */
	mv_mov_free_slots(h, NULL, a, nregs - 2);
	mv_mov_free_slots(h, NULL, a + nregs, 2);
	cr_assert_eq(S0->fullness, 0);
	cr_assert_eq(S1->fullness, MV_NR_FULLNESS - 1);
	cr_assert_eq(bin->nr_partial_free, nregs);
	/* S2 is full and frozen: the next slab is the fullest partial one */
	void *p = mv_mov_alloc_slow(h, tc, cls);
	cr_assert_eq(mv_slab_of(&h->zone, p), S1, "zsmalloc's order: the fullest first");
	cr_assert(p == a[nregs] || p == a[nregs + 1], "one of the two freed slots");
	cr_assert_eq(S2->list, MV_SL_FULL);
	cr_assert_eq(bin->nr_partial_free, nregs - 2);
	free(a);
}

/* ------------------------------------------------------------ hardening */

static sigjmp_buf corrupt_jmp;
static int nr_fatal;

static void on_fatal(void)
{
	nr_fatal++;
	siglongjmp(corrupt_jmp, 1);
}

static void require_secure(void)
{
	if (!MV_SECURE)
		cr_skip_test("free-list links are checked only at MV_SECURE 1 (meson -Dsecure=1)");
}

Test(slab, corrupt_link_plain_pointer_detected, .init = setup, .fini = teardown)
{
	require_secure();
	unsigned cls = mv_raw_class(64);
	void *p0 = mv_raw_alloc_slow(h, tc, cls);
	void *p1 = mv_raw_alloc_slow(h, tc, cls);
	struct mv_slab *s = mv_slab_of(&h->zone, p1);
	mv_raw_free_local_slow(h, tc, s, p1);
	cr_assert_eq(s->free, p1);
	/* a write after free: an address the attacker chose, unencoded */
	*(uint64_t *)p1 = (uint64_t)(uintptr_t)p0;
	mv_diag_set_abort(on_fatal);
	void *volatile got = NULL;
	if (!sigsetjmp(corrupt_jmp, 1)) {
		got = mv_raw_alloc_slow(h, tc, cls); /* pops p1, then follows its link */
		got = mv_raw_alloc_slow(h, tc, cls);
	}
	mv_diag_set_abort(NULL);
	cr_assert_eq(nr_fatal, 1, "the corrupt link was reported");
	cr_assert_neq(got, p0, "the attacker's address was handed out");
}

Test(slab, corrupt_link_to_another_slab_detected, .init = setup, .fini = teardown)
{
	require_secure();
	unsigned cls = mv_raw_class(64);
	struct mv_slab *s = mv_slab_new(h, tc, cls), *other = mv_slab_new(h, tc, cls);
	cr_assert(s && other);
	cr_assert(mv_slab_extend(s) && mv_slab_extend(other));
	void *p = mv_slab_pop(s);
	void *foreign = mv_slab_pop(other);
	/* correctly encoded, but pointing out of the slab */
	mv_slab_push(s, p);
	mv_fl_set(p, foreign);
	cr_assert(mv_fl_bad(s, foreign));
	cr_assert_not(mv_fl_bad(other, foreign));
	mv_diag_set_abort(on_fatal);
	if (!sigsetjmp(corrupt_jmp, 1))
		(void)mv_slab_pop(s);
	mv_diag_set_abort(NULL);
	cr_assert_eq(nr_fatal, 1, "a link out of the slab was followed");
}

Test(slab, corrupt_cycle_detected_by_splice, .init = setup, .fini = teardown)
{
	require_secure();
	unsigned cls = mv_raw_class(64);
	struct mv_slab *s = mv_slab_new(h, tc, cls);
	cr_assert(s && mv_slab_extend(s));
	void *p0 = mv_slab_pop(s), *p1 = mv_slab_pop(s), *p2 = mv_slab_pop(s);
	/* p0 -> p1 -> p2 -> NULL splices */
	mv_fl_set(p0, p1);
	mv_fl_set(p1, p2);
	mv_fl_set(p2, NULL);
	void *head = s->free;
	mv_slab_splice(s, p0, "test list");
	cr_assert_eq(s->free, p0);
	cr_assert_eq(mv_fl_get(p2), head, "the chain's tail links to the old list");
	/* a cycle (a slot pushed twice) never ends: refused */
	void *q0 = mv_slab_pop(s), *q1 = mv_slab_pop(s);
	(void)mv_slab_pop(s);
	mv_fl_set(q0, q1);
	mv_fl_set(q1, q0);
	mv_diag_set_abort(on_fatal);
	if (!sigsetjmp(corrupt_jmp, 1))
		mv_slab_splice(s, q0, "test list");
	mv_diag_set_abort(NULL);
	cr_assert_eq(nr_fatal, 1, "a cyclic chain was spliced");
}

/* ------------------------------------------------------------ twin slots */

/* Objects of a class with no free slot take two adjacent free slots of
 * sparse slabs of the half class (lib/slab.h): no page is taken, no slot
 * is handed out twice or overlaps a live one, the slab's pages send frees
 * to free's slow path, and the pairs reserved but not used go back to the
 * free list when the owner flushes. */
Test(slab, twins_from_sparse_half_class_slabs, .init = setup, .fini = teardown)
{
	unsigned hc = mv_raw_class(200), cls = mv_raw_class(400);
	cr_assert_eq(mv_classes[hc].size * 2, mv_classes[cls].size);
	unsigned nregs = mv_classes[hc].nregs, n = 3 * nregs;
	void **a = calloc(n, sizeof *a);
	for (unsigned i = 0; i < n; i++) {
		a[i] = mv_raw_alloc_slow(h, tc, hc);
		cr_assert_not_null(a[i]);
		memset(a[i], 0xa5, mv_classes[hc].size);
	}
	/* the first two slabs keep one slot in four; the third is current */
	unsigned live = 0;
	for (unsigned i = 0; i < 2 * nregs; i++) {
		if (i % 4) {
			mv_raw_free_local_slow(h, tc, mv_slab_of(&h->zone, a[i]), a[i]);
			a[i] = NULL;
		} else
			live++;
	}
	size_t pages0 = used_pages();
	uint64_t slabs0 = uh_ev(h, MV_VM_slab_alloc);
	enum { MAXT = 4096 };
	void **t = calloc(MAXT, sizeof *t);
	unsigned nt = 0;
	while (nt < MAXT) {
		uint64_t tw0 = uh_ev(h, MV_VM_twin_alloc);
		void *p = mv_raw_alloc_slow(h, tc, cls);
		cr_assert_not_null(p);
		if (uh_ev(h, MV_VM_twin_alloc) == tw0) {
			/* no pair left: a slab of the class itself */
			cr_assert_eq(mv_slab_of(&h->zone, p)->cls, cls);
			break;
		}
		struct mv_slab *s = mv_slab_of(&h->zone, p);
		cr_assert_eq(s->cls, hc, "a twin lies in a slab of the half class");
		uint32_t i = mv_slab_slot(s, p);
		cr_assert_eq(mv_twin_kind(s, i), 1);
		cr_assert_eq(mv_twin_kind(s, i + 1), -1, "its second slot is inside it");
		cr_assert_eq(mv_pfn_to_page(&h->zone, s->pfn)->order, MV_PG_TWINS,
			     "the slab's pages send every free to the slow path");
		memset(p, nt & 0xff, mv_classes[cls].size);
		t[nt++] = p;
	}
	/* a pair per two free slots of each run between live ones, in each
	 * of two slabs (slot 4k lives) */
	unsigned pairs = 0;
	for (unsigned i = 0; i < nregs; i += 4)
		pairs += MV_MIN(3u, nregs - 1 - i) / 2;
	cr_assert_eq(nt, 2 * pairs, "%u twins, %u pairs a slab", nt, pairs);
	cr_assert_eq(uh_ev(h, MV_VM_slab_alloc), slabs0 + 1, "one slab, of the class, at the end");
	cr_assert_leq(used_pages(), pages0 + mv_classes[cls].npages);
	/* nothing overlaps: every live small slot and every twin as written */
	for (unsigned i = 0; i < n; i++)
		for (unsigned b = 0; a[i] && b < mv_classes[hc].size; b++)
			cr_assert_eq(((uint8_t *)a[i])[b], 0xa5, "small slot %u overwritten", i);
	for (unsigned k = 0; k < nt; k++)
		for (unsigned b = 0; b < mv_classes[cls].size; b++)
			cr_assert_eq(((uint8_t *)t[k])[b], k & 0xff, "twin %u overwritten", k);

	/* reserved pairs (the last source's, none left here) go back on a
	 * flush, and the slabs' counts stay exact: live slots + 2 per twin */
	mv_raw_release_kept(h, tc);
	unsigned b0 = (nregs + 3) / 4 * 4; /* B's first live slot */
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]), *B = mv_slab_of(&h->zone, a[b0]);
	cr_assert_neq(A, B);
	cr_assert_eq(A->used + B->used, live + 2 * nt);
	cr_assert_eq(A->twins->nfree + B->twins->nfree, 0);
	free(t);
	free(a);
}

/* A thread that reserved pairs and took one gives the others back when it
 * flushes: the slab's count is its live slots and the twin's two. */
Test(slab, reserved_pairs_return_on_flush, .init = setup, .fini = teardown)
{
	unsigned hc = mv_raw_class(200), cls = mv_raw_class(400);
	unsigned nregs = mv_classes[hc].nregs;
	void **a = calloc(2 * nregs, sizeof *a);
	for (unsigned i = 0; i < 2 * nregs; i++)
		a[i] = mv_raw_alloc_slow(h, tc, hc);
	struct mv_slab *A = mv_slab_of(&h->zone, a[0]);
	unsigned live = 0;
	for (unsigned i = 0; i < nregs; i++)
		if (i % 4)
			mv_raw_free_local_slow(h, tc, A, a[i]);
		else
			live++;
	void *p = mv_raw_alloc_slow(h, tc, cls);
	cr_assert_eq(mv_slab_of(&h->zone, p), A);
	cr_assert_gt(A->twins->nfree, 0, "the slab's other pairs are reserved");
	cr_assert_eq(A->used, live + 2 + 2 * A->twins->nfree, "reserved pairs count as used");
	mv_raw_release_kept(h, tc);
	cr_assert_eq(A->twins->nfree, 0);
	cr_assert_eq(A->used, live + 2);
	free(a);
}
