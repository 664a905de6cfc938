/* SPDX-License-Identifier: MIT */
/*
 * test_large.c: large objects (lib/large.h), runs of whole pages, on a
 * heap made by hand (unit_heap.h). Without a thread cache (tc NULL) every
 * page comes from and goes back to the zone itself, so the pages in use
 * (populated less free) count exactly what a run holds.
 *  - a run is the size rounded up to pages, no more: whatever order or
 *    run of pageblocks it was carved from, the rest went back;
 *  - the head descriptor says PG_LARGE with the run's length, the size
 *    asked for and the migratetype; pageblock starts inside say PG_TAIL;
 *  - alignment is of the address, up to and beyond a max-order block;
 *  - free gives every page back, and the zone's invariants hold;
 *  - zeroing; resize shrinks in place, grows in place when the pages
 *    beyond are free and refuses (changing nothing) when they are not;
 *    a growth of 64 pages or more takes room to grow again, an eighth
 *    more where it is free;
 *  - realloc's move to a new run (with an eighth more room) moves the
 *    pages (no copy) when the new run was never backed, copies when it
 *    was or the move fails, and the old run's pages go back unbacked;
 *  - absurd sizes fail with ENOMEM.
 *  - a run never grows into a slot mapped apart from its own.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "large.h"
#include "os.h"
#include "unit_heap.h"

TestSuite(large, .timeout = 60);

#define PBO 6u /* 64-page (256 KiB) pageblocks: runs past a max-order block stay small */

static struct mv_heap *h;

static void setup(void)
{
	h = uh_create(64 * MiB, PBO);
}

static void teardown(void)
{
	uh_destroy(h);
}

static size_t in_use(void)
{
	return uh_populated(h) - uh_free(h);
}

static size_t pages_for(size_t size)
{
	return size ? (size + MV_PAGE_SIZE - 1) / MV_PAGE_SIZE : 1;
}

static const struct mv_page *head_of(const void *p)
{
	return mv_pfn_to_page(&h->zone, mv_zone_pfn(&h->zone, p));
}

/* the descriptors of a live run of nr pages at p */
static void check_run(const void *p, size_t size, size_t nr, int mt)
{
	size_t pfn = mv_zone_pfn(&h->zone, p);
	const struct mv_page *hd = head_of(p);
	cr_assert_eq(hd->type, PG_LARGE);
	cr_assert_eq(mv_large_pages(hd), nr, "run of %zu pages for %zu bytes", mv_large_pages(hd),
		     size);
	cr_assert_eq(mv_large_size(hd), size);
	cr_assert_eq(hd->mt, mt);
	size_t pbn = h->zone.pageblock_nr_pages;
	for (size_t q = mv_align_up(pfn + 1, pbn); q < pfn + nr; q += pbn) {
		const struct mv_page *pg = mv_pfn_to_page(&h->zone, q);
		cr_assert_eq(pg->type, PG_TAIL, "pageblock start %zu inside the run", q);
		cr_assert_eq(pg->x, pfn, "a tail names its head");
	}
}

static void check_gone(size_t pfn, size_t nr)
{
	cr_assert_neq(mv_pfn_to_page(&h->zone, pfn)->type, PG_LARGE);
	for (size_t q = pfn + 1; q < pfn + nr; q++)
		cr_assert_neq(mv_pfn_to_page(&h->zone, q)->type, PG_TAIL, "pfn %zu", q);
}

Test(large, run_is_size_rounded_to_pages, .init = setup, .fini = teardown)
{
	const size_t sizes[] = {
	    16385,
	    20000,
	    32768,
	    65536,
	    100000,
	    1 << 20,
	    (4 << 20) - 1,
	    /* past a max-order block (4 MiB): whole pageblocks, tail given back */
	    (4 << 20) + 1,
	    (5 << 20) + 12345,
	    9 << 20,
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i], nr = pages_for(size), before = in_use();
		char *p = mv_large_alloc(h, NULL, size, 0, MIGRATE_UNMOVABLE, false);
		cr_assert_not_null(p, "%zu bytes", size);
		cr_assert_eq(((uintptr_t)p) % MV_PAGE_SIZE, 0);
		cr_assert(mv_heap_owns(h, p) && mv_heap_owns(h, p + nr * MV_PAGE_SIZE - 1));
		cr_assert_eq(in_use(), before + nr, "%zu bytes hold %zu pages, not %zu", size,
			     in_use() - before, nr);
		check_run(p, size, nr, MIGRATE_UNMOVABLE);
		memset(p, 0x5a, size); /* all of it is ours */
		uh_verify(h);
		size_t pfn = mv_zone_pfn(&h->zone, p);
		mv_large_free(h, NULL, p);
		cr_assert_eq(in_use(), before, "free gives back all %zu pages", nr);
		check_gone(pfn, nr);
		uh_verify(h);
	}
	cr_assert_eq(uh_free(h), uh_populated(h));
}

Test(large, alignment_honoured_without_waste, .init = setup, .fini = teardown)
{
	const size_t aligns[] = {8192, 65536, 1 << 20, 4 << 20, 8 << 20};
	const size_t sizes[] = {4096, 20000, 300000, (5 << 20) + 1};
	char *keep = mv_large_alloc(h, NULL, 3 * 4096, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(keep); /* so that the zone's first page is taken */
	for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
			size_t size = sizes[s], align = aligns[a], nr = pages_for(size);
			size_t before = in_use();
			char *p = mv_large_alloc(h, NULL, size, align, MIGRATE_UNMOVABLE, false);
			cr_assert_not_null(p, "%zu bytes aligned to %zu", size, align);
			cr_assert_eq((uintptr_t)p % align, 0, "%p: %zu bytes aligned to %zu",
				     (void *)p, size, align);
			cr_assert_eq(in_use(), before + nr,
				     "%zu bytes aligned to %zu: %zu pages held, %zu wanted", size,
				     align, in_use() - before, nr);
			check_run(p, size, nr, MIGRATE_UNMOVABLE);
			mv_large_free(h, NULL, p);
			cr_assert_eq(in_use(), before);
			uh_verify(h);
		}
	}
	mv_large_free(h, NULL, keep);
	cr_assert_eq(uh_free(h), uh_populated(h));
}

Test(large, movable_and_through_page_lists, .init = setup, .fini = teardown)
{
	struct mv_tcache *tc = mv_tcache_transient(h);
	cr_assert_not_null(tc);
	void *p = mv_large_alloc(h, tc, 5 * 4096, 0, MIGRATE_MOVABLE, false);
	cr_assert_not_null(p);
	check_run(p, 5 * 4096, 5, MIGRATE_MOVABLE);
	cr_assert_eq(mv_get_pfnblock_migratetype(&h->zone, mv_zone_pfn(&h->zone, p)),
		     MIGRATE_MOVABLE, "a movable run sits in a movable pageblock");
	cr_assert_eq(in_use() - mv_pcp_held(&tc->pcp), 5,
		     "the tail of the order went to the page lists");
	mv_large_free(h, tc, p);
	cr_assert_eq(in_use(), mv_pcp_held(&tc->pcp), "freed to the page lists");
	cr_assert_eq(atomic_load(&tc->pcp.run_pages), 5, "as a run of its size");
	mv_pcp_drain(&h->zone, &tc->pcp);
	cr_assert_eq(uh_free(h), uh_populated(h));
	mv_tcache_destroy(h, tc);
}

/* A shrink's tail goes to the zone, not to the thread's page runs, with a
 * thread cache too: it is the room the block grows back into in place (a
 * run on the lists reads as allocated; a realloc loop that shrank and grew
 * moved its block every time: realloc_churn 4.2 page faults an operation
 * against 2.4). 16 pages aligned to 16, shrunk to 8: the 8-page tail is
 * aligned to its order, a run the lists would take. */
Test(large, shrink_tail_stays_room_to_grow_back, .init = setup, .fini = teardown)
{
	struct mv_tcache *tc = mv_tcache_transient(h);
	cr_assert_not_null(tc);
	char *p = mv_large_alloc(h, tc, 16 * 4096, 16 * 4096, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(p);
	memset(p, 3, 16 * 4096);
	cr_assert(mv_large_resize(h, tc, p, 8 * 4096));
	cr_assert_eq(atomic_load(&tc->pcp.run_pages), 0, "the tail went to the page runs");
	cr_assert(mv_large_resize(h, tc, p, 16 * 4096), "no growth back in place");
	check_run(p, 16 * 4096, 16, MIGRATE_UNMOVABLE);
	for (size_t i = 0; i < 8 * 4096; i++)
		cr_assert_eq(p[i], 3);
	mv_large_free(h, tc, p);
	mv_pcp_drain(&h->zone, &tc->pcp);
	cr_assert_eq(uh_free(h), uh_populated(h));
	mv_tcache_destroy(h, tc);
}

Test(large, zeroed_when_asked, .init = setup, .fini = teardown)
{
	size_t size = 10 * 4096 + 100;
	for (int round = 0; round < 3; round++) {
		unsigned char *p = mv_large_alloc(h, NULL, size, 0, MIGRATE_UNMOVABLE, true);
		cr_assert_not_null(p);
		for (size_t i = 0; i < size; i++)
			cr_assert_eq(p[i], 0, "round %d: byte %zu not zero", round, i);
		memset(p, 0xff, pages_for(size) * MV_PAGE_SIZE); /* dirty, for the next round */
		mv_large_free(h, NULL, p);
	}
}

Test(large, resize_in_place, .init = setup, .fini = teardown)
{
	struct mv_zone *z = &h->zone;
	size_t before = in_use();
	char *p = mv_large_alloc(h, NULL, 4 * 4096, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(p);
	size_t pfn = mv_zone_pfn(z, p);
	memset(p, 7, 4 * 4096);
	/* shrink: the tail goes back */
	cr_assert(mv_large_resize(h, NULL, p, 2 * 4096 - 5));
	cr_assert_eq(in_use(), before + 2);
	check_run(p, 2 * 4096 - 5, 2, MIGRATE_UNMOVABLE);
	/* grow into the free pages beyond */
	cr_assert(mv_large_resize(h, NULL, p, 6 * 4096));
	cr_assert_eq(in_use(), before + 6);
	check_run(p, 6 * 4096, 6, MIGRATE_UNMOVABLE);
	for (size_t i = 0; i < 2 * 4096 - 5; i++)
		cr_assert_eq(p[i], 7, "resizing kept the bytes");
	/* a page beyond taken by someone else: growing fails and changes nothing */
	cr_assert(mv_buddy_claim_range(z, pfn + 6, 1, false));
	size_t mid = in_use();
	cr_assert_not(mv_large_resize(h, NULL, p, 8 * 4096));
	cr_assert_eq(in_use(), mid);
	check_run(p, 6 * 4096, 6, MIGRATE_UNMOVABLE);
	/* same page count: only the size changes */
	cr_assert(mv_large_resize(h, NULL, p, 6 * 4096 - 100));
	check_run(p, 6 * 4096 - 100, 6, MIGRATE_UNMOVABLE);
	/* the page back: growing works */
	mv_buddy_free_range(z, pfn + 6, 1);
	cr_assert(mv_large_resize(h, NULL, p, 8 * 4096));
	check_run(p, 8 * 4096, 8, MIGRATE_UNMOVABLE);
	cr_assert_eq(in_use(), before + 8);
	/* absurd sizes refused */
	cr_assert_not(mv_large_resize(h, NULL, p, SIZE_MAX));
	cr_assert_not(mv_large_resize(h, NULL, p, z->reserve_bytes + 1));
	check_run(p, 8 * 4096, 8, MIGRATE_UNMOVABLE);
	mv_large_free(h, NULL, p);
	cr_assert_eq(in_use(), before);
	uh_verify(h);
}

Test(large, growth_takes_room_where_free, .init = setup, .fini = teardown)
{
	struct mv_zone *z = &h->zone;
	size_t before = in_use();
	char *p = mv_large_alloc(h, NULL, 64 * 4096, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(p);
	size_t pfn = mv_zone_pfn(z, p);
	memset(p, 3, 64 * 4096);
	/* pages beyond, free (growth claims only pages of the arena) */
	cr_assert_neq(mv_buddy_grow_free(z, 4, MIGRATE_UNMOVABLE), MV_PFN_NONE);
	before = in_use();
	/* a page more asked: 65 pages and an eighth of them (8) */
	cr_assert(mv_large_resize(h, NULL, p, 64 * 4096 + 1));
	check_run(p, 64 * 4096 + 1, 73, MIGRATE_UNMOVABLE);
	cr_assert_eq(in_use(), before + 9);
	/* growing within the room takes nothing */
	cr_assert(mv_large_resize(h, NULL, p, 73 * 4096));
	check_run(p, 73 * 4096, 73, MIGRATE_UNMOVABLE);
	cr_assert_eq(in_use(), before + 9);
	/* a page taken 3 pages beyond: the room stops there */
	cr_assert(mv_buddy_claim_range(z, pfn + 76, 1, false));
	cr_assert(mv_large_resize(h, NULL, p, 74 * 4096));
	check_run(p, 74 * 4096, 76, MIGRATE_UNMOVABLE);
	/* and what was asked does not fit: refused, nothing changed */
	size_t mid = in_use();
	cr_assert_not(mv_large_resize(h, NULL, p, 78 * 4096));
	cr_assert_eq(in_use(), mid);
	check_run(p, 74 * 4096, 76, MIGRATE_UNMOVABLE);
	for (size_t i = 0; i < 64 * 4096; i++)
		cr_assert_eq(p[i], 3, "byte %zu kept", i);
	/* a shrink gives the room back with the rest */
	cr_assert(mv_large_resize(h, NULL, p, 10 * 4096));
	check_run(p, 10 * 4096, 10, MIGRATE_UNMOVABLE);
	mv_buddy_free_range(z, pfn + 76, 1);
	mv_large_free(h, NULL, p);
	cr_assert_eq(in_use(), before - 64);
	uh_verify(h);
}

static int fail_moves(enum mv_os_op op, size_t len)
{
	(void)len;
	return op == MV_OS_MOVE ? ENOMEM : 0;
}

static void fill(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		p[i] = (char)(i / 512 * 31 + seed);
}
static void check_fill(const char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		cr_assert_eq(p[i], (char)(i / 512 * 31 + seed), "byte %zu of %zu lost", i, n);
}

/* A run of 128 pages, the next pages taken: a growth must go elsewhere. */
static char *blocked_run(size_t *blocker)
{
	char *p = mv_large_alloc(h, NULL, 128 * 4096, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(p);
	fill(p, 128 * 4096, 1);
	*blocker = mv_zone_pfn(&h->zone, p) + 128;
	/* free pages beyond, never backed, the first of them taken */
	cr_assert_neq(mv_buddy_grow_free(&h->zone, 16, MIGRATE_UNMOVABLE), MV_PFN_NONE);
	cr_assert(mv_buddy_claim_range(&h->zone, *blocker, 1, false));
	return p;
}

Test(large, realloc_move_moves_pages_onto_fresh_runs, .init = setup, .fini = teardown)
{
	struct mv_zone *z = &h->zone;
	size_t blocker;
	char *p = blocked_run(&blocker);
	size_t before = in_use() - 128 - 1;
	size_t pfn = mv_zone_pfn(z, p);
	cr_assert_not(mv_large_resize(h, NULL, p, 200 * 4096));
	/* the new run is on pages never backed: the pages move */
	char *q = mv_large_realloc_move(h, NULL, p, 200 * 4096);
	cr_assert_not_null(q);
	cr_assert_neq(q, p);
	check_run(q, 200 * 4096, 225, MIGRATE_UNMOVABLE);
	cr_assert_eq(h->large_moved, 1u, "one move counted");
	check_fill(q, 128 * 4096, 1);
	check_gone(pfn, 128);
	cr_assert_not(mv_zone_any_backed(z, pfn, 128), "the old run's pages went with the move");
	cr_assert_eq(p[0], 0, "the old range reads as zeros");
	cr_assert_eq(in_use(), before + 225 + 1, "in use %zu, before %zu", in_use(), before);
	/* moved again */
	size_t qpfn = mv_zone_pfn(z, q), blocker2 = qpfn + 225;
	cr_assert(mv_buddy_claim_range(z, blocker2, 1, false));
	char *r = mv_large_realloc_move(h, NULL, q, 300 * 4096);
	cr_assert_not_null(r);
	check_fill(r, 128 * 4096, 1);
	cr_assert_eq(h->large_moved, 2u);
	cr_assert_not(mv_zone_any_backed(z, qpfn, 225));
	/* a moved run shrinks and is freed as any other */
	cr_assert(mv_large_resize(h, NULL, r, 100 * 4096));
	check_fill(r, 100 * 4096, 1);
	mv_large_free(h, NULL, r);
	mv_buddy_free_range(z, blocker, 1);
	mv_buddy_free_range(z, blocker2, 1);
	cr_assert_eq(in_use(), before);
	uh_verify(h);
}

Test(large, realloc_move_copies_when_it_must, .init = setup, .fini = teardown)
{
	struct mv_zone *z = &h->zone;
	size_t before = in_use(), blocker;
	/* the move refused by the OS: copied, the old pages kept backed */
	char *p = blocked_run(&blocker);
	size_t pfn = mv_zone_pfn(z, p);
	atomic_store(&mv_os_fault_hook, fail_moves);
	char *q = mv_large_realloc_move(h, NULL, p, 200 * 4096);
	atomic_store(&mv_os_fault_hook, (mv_os_fault_fn)NULL);
	cr_assert_not_null(q);
	check_run(q, 200 * 4096, 225, MIGRATE_UNMOVABLE);
	cr_assert_eq(h->large_moved, 1u, "the attempt counted");
	check_fill(q, 128 * 4096, 1);
	cr_assert(mv_zone_any_backed(z, pfn, 128), "a copy leaves the old pages backed");
	/* a copied run moves again */
	size_t qpfn = mv_zone_pfn(z, q);
	cr_assert(mv_buddy_claim_range(z, qpfn + 225, 1, false));
	char *r = mv_large_realloc_move(h, NULL, q, 328 * 4096);
	cr_assert_not_null(r);
	check_fill(r, 128 * 4096, 1);
	/* past a look at the map count that found too many: copied */
	atomic_store(&h->large_moved, 0x80000000u);
	size_t rpfn = mv_zone_pfn(z, r), rnr = mv_large_pages(head_of(r));
	cr_assert(mv_buddy_claim_range(z, rpfn + rnr, 1, false));
	char *t = mv_large_realloc_move(h, NULL, r, 400 * 4096);
	cr_assert_not_null(t);
	check_fill(t, 128 * 4096, 1);
	cr_assert(mv_zone_any_backed(z, rpfn, rnr), "refused: copied");
	/* the next look (every 1024 attempts) finds few mappings: moves again */
	atomic_store(&h->large_moved, 1023u);
	size_t tpfn = mv_zone_pfn(z, t), tnr = mv_large_pages(head_of(t));
	cr_assert(mv_buddy_claim_range(z, tpfn + tnr, 1, false));
	char *u = mv_large_realloc_move(h, NULL, t, 500 * 4096);
	cr_assert_not_null(u);
	check_fill(u, 128 * 4096, 1);
	cr_assert_eq(h->large_moved, 0u, "the count starts again");
	cr_assert_not(mv_zone_any_backed(z, tpfn, tnr), "moved");
	mv_large_free(h, NULL, u);
	mv_buddy_free_range(z, rpfn + rnr, 1);
	mv_buddy_free_range(z, tpfn + tnr, 1);
	mv_buddy_free_range(z, qpfn + 225, 1);
	mv_buddy_free_range(z, blocker, 1);
	cr_assert_eq(in_use(), before);
	uh_verify(h);
}

Test(large, shrink_across_pageblocks_clears_tails, .init = setup, .fini = teardown)
{
	size_t pbn = h->zone.pageblock_nr_pages, before = in_use();
	size_t size = 3 * pbn * MV_PAGE_SIZE;
	char *p = mv_large_alloc(h, NULL, size, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(p);
	size_t pfn = mv_zone_pfn(&h->zone, p);
	check_run(p, size, 3 * pbn, MIGRATE_UNMOVABLE);
	size_t smaller = (pbn + 5) * MV_PAGE_SIZE;
	cr_assert(mv_large_resize(h, NULL, p, smaller));
	check_run(p, smaller, pbn + 5, MIGRATE_UNMOVABLE);
	for (size_t q = mv_align_up(pfn + pbn + 5, pbn); q < pfn + 3 * pbn; q += pbn)
		cr_assert_neq(mv_pfn_to_page(&h->zone, q)->type, PG_TAIL,
			      "pfn %zu: past the run, no longer a tail", q);
	cr_assert_eq(in_use(), before + pbn + 5);
	uh_verify(h);
	mv_large_free(h, NULL, p);
	cr_assert_eq(in_use(), before);
}

Test(large, absurd_sizes_fail_with_enomem, .init = setup, .fini = teardown)
{
	size_t before = in_use();
	errno = 0;
	cr_assert_null(mv_large_alloc(h, NULL, SIZE_MAX, 0, MIGRATE_UNMOVABLE, false));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(
	    mv_large_alloc(h, NULL, h->zone.reserve_bytes + 1, 0, MIGRATE_UNMOVABLE, false));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(mv_large_alloc(h, NULL, 4096, (size_t)1 << 40, MIGRATE_UNMOVABLE, false));
	cr_assert_eq(errno, ENOMEM);
	/* with a page taken, the whole reservation cannot be had: nothing
	 * leaks trying */
	void *one = mv_large_alloc(h, NULL, 4096, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(one);
	errno = 0;
	cr_assert_null(mv_large_alloc(h, NULL, h->zone.reserve_bytes, 0, MIGRATE_UNMOVABLE, false));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq(in_use(), before + 1);
	mv_large_free(h, NULL, one);
	cr_assert_eq(in_use(), before);
	uh_verify(h);
}

/* A run ending at the end of a slot must not grow into the next slot when
 * that slot is mapped elsewhere in the address space: the run's pages would
 * not be one stretch, and writes past the slot's end would land in whatever
 * is mapped there (realloc_churn under the preload library corrupted slabs
 * at the bottom of the slot mapped just above). The claim only checked that
 * the new pages were contiguous among themselves. */
Test(large, grow_refuses_a_slot_mapped_apart)
{
	struct mv_heap *hh = uh_create(256 * MiB, PBO);
	struct mv_zone *z = &hh->zone;
	size_t pbn = z->pageblock_nr_pages;
	cr_assert_neq(mv_buddy_grow_free(z, MV_SECTION_PAGES / pbn, MIGRATE_UNMOVABLE),
		      MV_PFN_NONE);
	/* the address after slot 0 taken (mappings go top-down: it often is
	 * already): slot 1 is mapped somewhere else */
	char *after = z->sec[0].base + MV_SECTION_SIZE;
	void *block = mmap(after, MV_PAGE_SIZE, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (block != (void *)after) {
		cr_assert(block == MAP_FAILED && errno == EEXIST, "the address after slot 0");
		block = NULL;
	}
	cr_assert_neq(mv_buddy_grow_free(z, MV_SECTION_PAGES / pbn, MIGRATE_UNMOVABLE),
		      MV_PFN_NONE);
	cr_assert_not_null(z->sec[1].base);
	cr_assert_neq(z->sec[1].base, after);
	cr_assert_not(mv_zone_contiguous(z, MV_SECTION_PAGES - 1, 2));
	/* all of slot 0 but its last 4 pages in use: a 4-page run lands there */
	cr_assert(mv_buddy_claim_range(z, 0, MV_SECTION_PAGES - 4, false));
	char *p = mv_large_alloc(hh, NULL, 4 * 4096, 0, MIGRATE_UNMOVABLE, false);
	cr_assert_not_null(p);
	cr_assert_eq(mv_zone_pfn(z, p), MV_SECTION_PAGES - 4, "the run ends at slot 0's end");
	size_t free_before = uh_free(hh);
	/* slot 1's first pages are free, but not after the run in memory */
	cr_assert_not(mv_large_resize(hh, NULL, p, 8 * 4096));
	cr_assert_eq(uh_free(hh), free_before, "a refused grow keeps no page");
	cr_assert_eq(mv_large_pages(mv_pfn_to_page(z, MV_SECTION_PAGES - 4)), 4);
	/* within the slot the run still shrinks and grows back */
	cr_assert(mv_large_resize(hh, NULL, p, 2 * 4096));
	cr_assert(mv_large_resize(hh, NULL, p, 4 * 4096));
	uh_verify(hh);
	mv_large_free(hh, NULL, p);
	mv_buddy_free_range(z, 0, MV_SECTION_PAGES - 4);
	uh_verify(hh);
	uh_destroy(hh);
	if (block)
		munmap(block, MV_PAGE_SIZE);
}
