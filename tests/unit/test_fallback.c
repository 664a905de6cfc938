/* SPDX-License-Identifier: MIT */
/*
 * test_fallback.c: the kernel's rules for falling back to another
 * migratetype (mm/page_alloc.c v6.10, see /work/shared/KERNEL.md section 2):
 * the fallbacks table, can_steal_fallback, find_suitable_fallback, and
 * steal_suitable_fallback's choice between claiming the whole pageblock
 * (free + alike pages >= half a pageblock, or a free block of at least
 * pageblock order) and stealing only the block needed. Each case builds a
 * zone precisely (pageblock order 6: 64 pages a pageblock) and forbids
 * growth (MV_ALLOC_NOGROW) where the request must fall back.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "buddy.h"

#define MiB ((size_t)1 << 20)
#define NONE ((size_t)MV_PFN_NONE)
#define PBO 6u
#define PBN ((size_t)1 << PBO)
#define HALF (PBN / 2)

static struct mv_zone z;
static struct mv_vmstat vm;

static void zone_up(void)
{
	memset(&vm, 0, sizeof vm);
	cr_assert_eq(mv_zone_init(&z, 64 * MiB, PBO, &vm), 0);
	cr_assert_not(z.page_group_by_mobility_disabled);
}

static void zone_down(void)
{
	mv_zone_destroy(&z);
}

TestSuite(fallback, .init = zone_up, .fini = zone_down);

static uint64_t ev(enum mv_vm_item i)
{
	return atomic_load(&vm.ev[i]);
}

static int block_mt(size_t pfn)
{
	return mv_get_pfnblock_migratetype(&z, pfn);
}

static size_t free_mt(int mt)
{
	return z.nr_free_pages_mt[mt];
}

static size_t populated(void)
{
	return atomic_load(&z.populated_pfn);
}

static void verify(const char *when)
{
	const char *err = mv_zone_verify(&z);
	cr_assert_null(err, "%s: mv_zone_verify: %s", when, err);
}

static size_t get(unsigned order, int mt, unsigned flags)
{
	size_t pfn = mv_buddy_alloc(&z, order, mt, flags, NULL);
	cr_assert_neq(pfn, NONE, "order %u type %d flags %#x failed", order, mt, flags);
	cr_assert_eq(pfn % ((size_t)1 << order), 0);
	verify("alloc");
	return pfn;
}

static void put(size_t pfn, size_t nr)
{
	mv_buddy_free_range(&z, pfn, nr);
	verify("free");
}

/* Bring in a new pageblock and allocate all of it, page by page, as mt:
 * the first allocation must grow the zone, the others come from it. */
static size_t fill_block(int mt)
{
	uint64_t grow = ev(MV_VM_pageblock_grow);
	size_t first = get(0, mt, 0);
	cr_assert_eq(ev(MV_VM_pageblock_grow), grow + 1, "the first allocation must grow");
	size_t start = mv_pageblock_start_pfn(&z, first);
	cr_assert_eq(block_mt(start), mt, "a new pageblock takes the type that asked for it");
	static uint8_t seen[PBN];
	memset(seen, 0, sizeof seen);
	seen[first - start] = 1;
	for (size_t i = 1; i < PBN; i++) {
		size_t pfn = get(0, mt, MV_ALLOC_NOGROW);
		cr_assert_eq(mv_pageblock_start_pfn(&z, pfn), start, "page %zu left the block",
			     pfn);
		cr_assert_not(seen[pfn - start], "page %zu handed out twice", pfn);
		seen[pfn - start] = 1;
	}
	cr_assert_eq(free_mt(mt), 0);
	return start;
}

/* ------------------------------------------------------------ the rules themselves */

Test(fallback, table_is_the_kernels)
{
	static const int want[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1] = {
	    [MIGRATE_UNMOVABLE] = {MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE},
	    [MIGRATE_MOVABLE] = {MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE},
	    [MIGRATE_RECLAIMABLE] = {MIGRATE_UNMOVABLE, MIGRATE_MOVABLE},
	};
	for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++)
		for (int i = 0; i < MIGRATE_PCPTYPES - 1; i++)
			cr_assert_eq(mv_fallbacks[mt][i], want[mt][i],
				     "fallbacks[%d][%d] = %d, want %d", mt, i, mv_fallbacks[mt][i],
				     want[mt][i]);
}

static void check_can_steal(unsigned pbo)
{
	struct mv_zone zz;
	struct mv_vmstat v = {0};
	cr_assert_eq(mv_zone_init(&zz, 64 * MiB, pbo, &v), 0);
	cr_assert_not(zz.page_group_by_mobility_disabled);
	for (unsigned order = 0; order <= MV_MAX_PAGE_ORDER; order++)
		for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++) {
			bool want = order >= pbo || order >= pbo / 2 || mt == MIGRATE_UNMOVABLE ||
				    mt == MIGRATE_RECLAIMABLE;
			cr_assert_eq(
			    mv_can_steal_fallback(&zz, order, mt), want,
			    "pageblock order %u: can_steal_fallback(order %u, type %d) != %d", pbo,
			    order, mt, want);
		}
	/* the edges, spelled out */
	cr_assert(mv_can_steal_fallback(&zz, pbo, MIGRATE_MOVABLE));
	cr_assert(mv_can_steal_fallback(&zz, pbo / 2, MIGRATE_MOVABLE));
	cr_assert_not(mv_can_steal_fallback(&zz, pbo / 2 - 1, MIGRATE_MOVABLE));
	cr_assert_not(mv_can_steal_fallback(&zz, 0, MIGRATE_MOVABLE));
	cr_assert(mv_can_steal_fallback(&zz, 0, MIGRATE_UNMOVABLE));
	cr_assert(mv_can_steal_fallback(&zz, 0, MIGRATE_RECLAIMABLE));
	/* without grouping by mobility anything may steal */
	zz.page_group_by_mobility_disabled = true;
	for (unsigned order = 0; order <= MV_MAX_PAGE_ORDER; order++)
		cr_assert(mv_can_steal_fallback(&zz, order, MIGRATE_MOVABLE));
	zz.page_group_by_mobility_disabled = false;
	mv_zone_destroy(&zz);
}

Test(fallback, can_steal_fallback_pbo9)
{
	check_can_steal(9);
}

Test(fallback, can_steal_fallback_pbo6)
{
	check_can_steal(6);
}

/* build_all_zonelists: grouping is off below pageblock_nr_pages * MIGRATE_TYPES */
Test(fallback, mobility_grouping_threshold)
{
	for (size_t blocks = 4; blocks <= 8; blocks++) {
		struct mv_zone zz;
		struct mv_vmstat v = {0};
		cr_assert_eq(mv_zone_init(&zz, blocks * PBN * MV_PAGE_SIZE, PBO, &v), 0);
		cr_assert_eq(zz.page_group_by_mobility_disabled, blocks < MIGRATE_TYPES,
			     "%zu pageblocks: page_group_by_mobility_disabled %d", blocks,
			     zz.page_group_by_mobility_disabled);
		mv_zone_destroy(&zz);
	}
}

/* Without grouping by mobility (the kernel's gfp_migratetype then asks for
 * UNMOVABLE whatever the caller wanted) every pageblock stays UNMOVABLE and
 * every free block must stay on the lists of its pageblock's type. */
Test(fallback, mobility_disabled_zone_stays_consistent)
{
	struct mv_zone zz;
	struct mv_vmstat v = {0};
	cr_assert_eq(mv_zone_init(&zz, 4 * PBN * MV_PAGE_SIZE, PBO, &v), 0);
	cr_assert(zz.page_group_by_mobility_disabled);
	static const int order_mt[][2] = {
	    {0, MIGRATE_MOVABLE}, {2, MIGRATE_RECLAIMABLE}, {0, MIGRATE_UNMOVABLE},
	    {6, MIGRATE_MOVABLE}, {1, MIGRATE_MOVABLE},     {3, MIGRATE_RECLAIMABLE},
	};
	size_t pfns[MV_ARRAY_SIZE(order_mt)];
	for (size_t i = 0; i < MV_ARRAY_SIZE(order_mt); i++) {
		pfns[i] = mv_buddy_alloc(&zz, (unsigned)order_mt[i][0], order_mt[i][1], 0, NULL);
		cr_assert_neq(pfns[i], NONE);
		const char *err = mv_zone_verify(&zz);
		cr_assert_null(err,
			       "grouping disabled, after allocating order %d type %d: "
			       "mv_zone_verify: %s",
			       order_mt[i][0], order_mt[i][1], err);
		for (size_t p = 0; p < atomic_load(&zz.populated_pfn); p += PBN)
			cr_assert_eq(mv_get_pfnblock_migratetype(&zz, p), MIGRATE_UNMOVABLE);
		cr_assert_eq(zz.nr_free_pages_mt[MIGRATE_MOVABLE], 0,
			     "free pages on MOVABLE lists with grouping disabled");
		cr_assert_eq(zz.nr_free_pages_mt[MIGRATE_RECLAIMABLE], 0,
			     "free pages on RECLAIMABLE lists with grouping disabled");
	}
	for (size_t i = 0; i < MV_ARRAY_SIZE(order_mt); i++)
		mv_buddy_free(&zz, pfns[i], (unsigned)order_mt[i][0]);
	cr_assert_null(mv_zone_verify(&zz));
	cr_assert_eq(atomic_load(&zz.nr_free_pages), atomic_load(&zz.populated_pfn));
	mv_zone_destroy(&zz);
}

/* ------------------------------------------------------------ which type first */

/* A block of 8 free pages at the same offset in pageblocks of two other
 * types: the request must fall back in the table's order. */
static void check_preference(int start_mt)
{
	int first = mv_fallbacks[start_mt][0], second = mv_fallbacks[start_mt][1];
	size_t b2 = fill_block(second), b1 = fill_block(first);
	put(b2 + 8, 8);
	put(b1 + 8, 8);
	mv_lock(&z.lock);
	bool can_steal = false;
	int fmt = mv_find_suitable_fallback(&z, 3, start_mt, false, &can_steal);
	cr_assert_eq(fmt, first, "find_suitable_fallback(3, %d) = %d, want %d", start_mt, fmt,
		     first);
	cr_assert(can_steal, "order 3 >= pageblock_order / 2 may steal");
	cr_assert_eq(mv_find_suitable_fallback(&z, 0, start_mt, false, &can_steal), -1,
		     "no free block of order 0");
	mv_unlock(&z.lock);
	size_t pfn = get(0, start_mt, MV_ALLOC_NOGROW);
	cr_assert_eq(mv_pageblock_start_pfn(&z, pfn), b1,
		     "type %d fell back to the pageblock of type %d, want type %d", start_mt,
		     block_mt(pfn), first);
}

Test(fallback, unmovable_prefers_reclaimable)
{
	check_preference(MIGRATE_UNMOVABLE);
}

Test(fallback, movable_prefers_reclaimable)
{
	check_preference(MIGRATE_MOVABLE);
}

Test(fallback, reclaimable_prefers_unmovable)
{
	check_preference(MIGRATE_RECLAIMABLE);
}

Test(fallback, find_suitable_fallback_only_stealable)
{
	size_t b = fill_block(MIGRATE_UNMOVABLE);
	put(b + 4, 1); /* an order-0 UNMOVABLE block */
	mv_lock(&z.lock);
	bool can_steal = true;
	int fmt = mv_find_suitable_fallback(&z, 0, MIGRATE_MOVABLE, false, &can_steal);
	cr_assert_eq(fmt, MIGRATE_UNMOVABLE);
	cr_assert_not(can_steal, "a movable order-0 request may not steal the block");
	cr_assert_eq(mv_find_suitable_fallback(&z, 0, MIGRATE_MOVABLE, true, &can_steal), -1,
		     "only_stealable: nothing stealable for a small movable request");
	fmt = mv_find_suitable_fallback(&z, 0, MIGRATE_RECLAIMABLE, true, &can_steal);
	cr_assert_eq(fmt, MIGRATE_UNMOVABLE);
	cr_assert(can_steal);
	mv_unlock(&z.lock);
}

/* ------------------------------------------------------------ claim or steal */

struct outcome {
	size_t pfn;
	uint64_t claims, steals, grows;
};

/* one allocation that must fall back; counts what it did */
static struct outcome fall_back(unsigned order, int mt)
{
	uint64_t c = ev(MV_VM_pageblock_claim), s = ev(MV_VM_pageblock_steal),
		 g = ev(MV_VM_pageblock_grow);
	size_t pop = populated();
	struct outcome o;
	o.pfn = get(order, mt, MV_ALLOC_NOGROW);
	o.claims = ev(MV_VM_pageblock_claim) - c;
	o.steals = ev(MV_VM_pageblock_steal) - s;
	o.grows = ev(MV_VM_pageblock_grow) - g;
	cr_assert_eq(o.grows, 0, "MV_ALLOC_NOGROW grew the zone");
	cr_assert_eq(populated(), pop, "MV_ALLOC_NOGROW grew the zone");
	cr_assert_eq(o.claims + o.steals, 1, "a fallback is one claim or one steal (%lu, %lu)",
		     (unsigned long)o.claims, (unsigned long)o.steals);
	cr_assert_eq(mv_pfn_to_page(&z, o.pfn)->mt, mt);
	return o;
}

static void expect_claim(struct outcome o, size_t block, int mt, size_t free_after)
{
	cr_assert_eq(o.claims, 1, "expected the pageblock to be claimed, it was stolen from");
	cr_assert_eq(mv_pageblock_start_pfn(&z, o.pfn), block);
	cr_assert_eq(block_mt(block), mt, "claimed pageblock has type %d, want %d", block_mt(block),
		     mt);
	cr_assert_eq(free_mt(mt), free_after, "%zu free pages on the claimer's lists, want %zu",
		     free_mt(mt), free_after);
	for (int t = 0; t < MIGRATE_PCPTYPES; t++)
		if (t != mt)
			cr_assert_eq(free_mt(t), 0, "free pages left on type %d's lists", t);
}

static void expect_steal(struct outcome o, size_t block, int old_mt, size_t free_after)
{
	cr_assert_eq(o.steals, 1, "expected a steal, the pageblock was claimed");
	cr_assert_eq(mv_pageblock_start_pfn(&z, o.pfn), block);
	cr_assert_eq(block_mt(block), old_mt, "a steal must not retype the pageblock (%d -> %d)",
		     old_mt, block_mt(block));
	cr_assert_eq(free_mt(old_mt), free_after,
		     "%zu free pages left on the old type's lists, want %zu", free_mt(old_mt),
		     free_after);
	cr_assert_geq(atomic_load(&z.wake_order), (int)PBO,
		      "a fallback into a mixed pageblock must ask kcompactd for pageblock_order");
}

/* (a) a MOVABLE pageblock mostly free: an UNMOVABLE request claims it */
Test(fallback, claim_mostly_free_block)
{
	size_t b = fill_block(MIGRATE_MOVABLE);
	put(b + 24, PBN - 24); /* 40 free */
	struct outcome o = fall_back(0, MIGRATE_UNMOVABLE);
	expect_claim(o, b, MIGRATE_UNMOVABLE, PBN - 24 - 1);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_UNMOVABLE]), 1);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_MOVABLE]), 0);
	/* the claim took the block's free pages: the next request needs no fallback */
	uint64_t c = ev(MV_VM_pageblock_claim), s = ev(MV_VM_pageblock_steal);
	size_t pfn = get(3, MIGRATE_UNMOVABLE, MV_ALLOC_NOGROW);
	cr_assert_eq(mv_pageblock_start_pfn(&z, pfn), b);
	cr_assert_eq(ev(MV_VM_pageblock_claim) + ev(MV_VM_pageblock_steal), c + s);
}

/* (b) a MOVABLE pageblock mostly allocated as movable: steal one block only */
Test(fallback, steal_from_mostly_movable_block)
{
	size_t b = fill_block(MIGRATE_MOVABLE);
	put(b + 8, 8); /* one order-3 block */
	struct outcome o = fall_back(0, MIGRATE_UNMOVABLE);
	expect_steal(o, b, MIGRATE_MOVABLE, 7);
	cr_assert_eq(o.pfn, b + 8, "the steal takes the largest fallback block");
	cr_assert_eq(free_mt(MIGRATE_UNMOVABLE), 0);
	/* the rest of the split block went back on the MOVABLE lists */
	cr_assert_eq(z.free_area[0].nr_free_mt[MIGRATE_MOVABLE], 1);
	cr_assert_eq(z.free_area[1].nr_free_mt[MIGRATE_MOVABLE], 1);
	cr_assert_eq(z.free_area[2].nr_free_mt[MIGRATE_MOVABLE], 1);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_MOVABLE]), 1);
}

/* The half-pageblock rule at its edge, with the free pages together or
 * scattered one by one (so the fallback block is order 0). */
struct half_case {
	size_t nr_free;
	bool scattered;
};

ParameterizedTestParameters(fallback, half_pageblock_rule)
{
	static struct half_case cases[] = {
	    {HALF - 1, false}, {HALF, false}, {HALF + 1, false}, {HALF - 1, true}, {HALF, true},
	};
	return cr_make_param_array(struct half_case, cases, MV_ARRAY_SIZE(cases));
}

ParameterizedTest(struct half_case *hc, fallback, half_pageblock_rule)
{
	size_t b = fill_block(MIGRATE_MOVABLE);
	for (size_t i = 0; i < hc->nr_free; i++)
		put(hc->scattered ? b + 2 * i : b + PBN - hc->nr_free + i, 1);
	cr_assert_eq(free_mt(MIGRATE_MOVABLE), hc->nr_free);
	struct outcome o = fall_back(0, MIGRATE_UNMOVABLE);
	if (hc->nr_free >= HALF)
		expect_claim(o, b, MIGRATE_UNMOVABLE, hc->nr_free - 1);
	else
		expect_steal(o, b, MIGRATE_MOVABLE, hc->nr_free - 1);
}

/* For an UNMOVABLE request from a MOVABLE pageblock, the pages "alike" are
 * the ones neither free nor movable: 12 stolen unmovable pages plus n free
 * movable ones reach half a pageblock at n = 20. */
ParameterizedTestParameters(fallback, alike_unmovable_pages)
{
	static size_t n[] = {HALF - 12 - 1, HALF - 12};
	return cr_make_param_array(size_t, n, MV_ARRAY_SIZE(n));
}

ParameterizedTest(size_t *n, fallback, alike_unmovable_pages)
{
	size_t b = fill_block(MIGRATE_MOVABLE);
	put(b + PBN - 12, 12);
	for (int i = 0; i < 12; i++) {
		struct outcome o = fall_back(0, MIGRATE_UNMOVABLE);
		expect_steal(o, b, MIGRATE_MOVABLE, (size_t)(11 - i));
		cr_assert_geq(o.pfn, b + PBN - 12);
	}
	size_t fp, mp;
	mv_lock(&z.lock);
	mv_prep_move_freepages_block(&z, b, &fp, &mp);
	mv_unlock(&z.lock);
	cr_assert_eq(fp, 0);
	cr_assert_eq(mp, PBN - 12, "movable pages counted %zu, want %zu", mp, PBN - 12);
	put(b, *n);
	mv_lock(&z.lock);
	mv_prep_move_freepages_block(&z, b + 5, &fp, &mp);
	mv_unlock(&z.lock);
	cr_assert_eq(fp, *n);
	cr_assert_eq(mp, PBN - 12 - *n);
	struct outcome o = fall_back(0, MIGRATE_UNMOVABLE);
	if (*n + 12 >= HALF)
		expect_claim(o, b, MIGRATE_UNMOVABLE, *n - 1);
	else
		expect_steal(o, b, MIGRATE_MOVABLE, *n - 1);
}

/* For a MOVABLE request the pages alike are the movable ones: 16 movable
 * pages stolen into an UNMOVABLE pageblock plus n free pages. */
ParameterizedTestParameters(fallback, alike_movable_pages)
{
	static size_t n[] = {HALF - 16 - 1, HALF - 16};
	return cr_make_param_array(size_t, n, MV_ARRAY_SIZE(n));
}

ParameterizedTest(size_t *n, fallback, alike_movable_pages)
{
	size_t b = fill_block(MIGRATE_UNMOVABLE);
	put(b, 16);
	for (int i = 0; i < 16; i++) {
		struct outcome o = fall_back(0, MIGRATE_MOVABLE);
		expect_steal(o, b, MIGRATE_UNMOVABLE, (size_t)(15 - i));
		cr_assert_lt(o.pfn, b + 16);
	}
	put(b + 32, *n); /* its largest block is order 3 or 4: a movable request may steal */
	struct outcome o = fall_back(0, MIGRATE_MOVABLE);
	if (*n + 16 >= HALF)
		expect_claim(o, b, MIGRATE_MOVABLE, *n - 1);
	else
		expect_steal(o, b, MIGRATE_UNMOVABLE, *n - 1);
}

/* (e) a small movable request whose fallback blocks are all smaller than
 * pageblock_order / 2 may not claim, however free the pageblock is: it
 * takes the smallest block instead of breaking up a larger one. */
Test(fallback, small_movable_request_takes_smallest_block)
{
	size_t b = fill_block(MIGRATE_UNMOVABLE);
	for (size_t i = 0; i < PBN; i += 8)
		put(b + i, 4); /* eight order-2 blocks */
	put(b + 5, 1);         /* and one order-0 block: 33 free pages */
	cr_assert_eq(free_mt(MIGRATE_UNMOVABLE), HALF + 1);
	struct outcome o = fall_back(0, MIGRATE_MOVABLE);
	expect_steal(o, b, MIGRATE_UNMOVABLE, HALF);
	cr_assert_eq(o.pfn, b + 5, "took pfn %zu, want the order-0 block at %zu", o.pfn, b + 5);
	cr_assert_eq(z.free_area[2].nr_free_mt[MIGRATE_UNMOVABLE], 8, "an order-2 block was split");
	/* same order as the smallest fallback block: still only a steal */
	o = fall_back(2, MIGRATE_MOVABLE);
	expect_steal(o, b, MIGRATE_UNMOVABLE, HALF - 4);
	/* nothing of order 3 anywhere and no growth: a clean failure */
	size_t pop = populated();
	cr_assert_eq(mv_buddy_alloc(&z, 3, MIGRATE_MOVABLE, MV_ALLOC_NOGROW, NULL), NONE);
	cr_assert_eq(populated(), pop);
	cr_assert_geq(atomic_load(&z.wake_order), 3);
	verify("failed allocation");
}

/* (f) a movable request that finds a fallback block of order >= pageblock_order/2
 * applies the half-pageblock rule like the others */
Test(fallback, movable_request_claims_mostly_free_block)
{
	size_t b = fill_block(MIGRATE_UNMOVABLE);
	put(b + HALF, HALF); /* one order-5 block */
	struct outcome o = fall_back(0, MIGRATE_MOVABLE);
	expect_claim(o, b, MIGRATE_MOVABLE, HALF - 1);
}

Test(fallback, movable_request_steals_from_mostly_used_block)
{
	size_t b = fill_block(MIGRATE_UNMOVABLE);
	put(b + HALF, HALF - 8); /* order 4 + order 3: 24 free */
	struct outcome o = fall_back(0, MIGRATE_MOVABLE);
	expect_steal(o, b, MIGRATE_UNMOVABLE, HALF - 8 - 1);
	cr_assert_eq(o.pfn, b + HALF, "the steal takes the largest block");
}

/* (c) a wholly free pageblock of another type is claimed whole, and is
 * preferred to growing the zone */
static void check_whole_block_claim(int owner_mt, int want_mt)
{
	size_t b0 = fill_block(owner_mt);
	size_t b1 = get(PBO, owner_mt, 0); /* grows a second pageblock */
	cr_assert_eq(b1, b0 + PBN);
	put(b1, PBN);
	cr_assert_eq(z.free_area[PBO].nr_free_mt[owner_mt], 1);
	uint64_t c = ev(MV_VM_pageblock_claim), s = ev(MV_VM_pageblock_steal),
		 g = ev(MV_VM_pageblock_grow);
	size_t pop = populated();
	size_t pfn = get(0, want_mt, 0); /* growth allowed, but not needed */
	cr_assert_eq(ev(MV_VM_pageblock_grow), g, "grew instead of claiming a free pageblock");
	cr_assert_eq(populated(), pop);
	cr_assert_eq(ev(MV_VM_pageblock_claim), c + 1);
	cr_assert_eq(ev(MV_VM_pageblock_steal), s);
	cr_assert_eq(mv_pageblock_start_pfn(&z, pfn), b1);
	cr_assert_eq(block_mt(b1), want_mt);
	cr_assert_eq(block_mt(b0), owner_mt);
	cr_assert_eq(free_mt(want_mt), PBN - 1);
	cr_assert_eq(free_mt(owner_mt), 0);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[want_mt]), 1);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[owner_mt]), 1);
}

Test(fallback, whole_free_pageblock_claimed_by_unmovable)
{
	check_whole_block_claim(MIGRATE_MOVABLE, MIGRATE_UNMOVABLE);
}

/* even a small movable request, which could never claim a mixed block */
Test(fallback, whole_free_pageblock_claimed_by_small_movable)
{
	check_whole_block_claim(MIGRATE_UNMOVABLE, MIGRATE_MOVABLE);
}

Test(fallback, whole_free_pageblock_claimed_by_reclaimable)
{
	check_whole_block_claim(MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE);
}

/* a free block of two pageblocks: both are retyped (change_pageblock_range) */
Test(fallback, larger_free_block_claimed_whole)
{
	size_t b = get(PBO + 1, MIGRATE_MOVABLE, 0);
	cr_assert_eq(populated(), 2 * PBN);
	put(b, 2 * PBN);
	cr_assert_eq(z.free_area[PBO + 1].nr_free_mt[MIGRATE_MOVABLE], 1);
	struct outcome o = fall_back(0, MIGRATE_UNMOVABLE);
	cr_assert_eq(o.claims, 1);
	cr_assert_eq(o.pfn, b);
	cr_assert_eq(block_mt(b), MIGRATE_UNMOVABLE);
	cr_assert_eq(block_mt(b + PBN), MIGRATE_UNMOVABLE);
	cr_assert_eq(free_mt(MIGRATE_UNMOVABLE), 2 * PBN - 1);
	cr_assert_eq(free_mt(MIGRATE_MOVABLE), 0);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_UNMOVABLE]), 2);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_MOVABLE]), 0);
}

/* mova's order: own type, whole free pageblocks, growth, and only then a
 * fallback into a mixed pageblock */
Test(fallback, grows_before_stealing)
{
	size_t b = fill_block(MIGRATE_MOVABLE);
	put(b + 8, 8);
	uint64_t c = ev(MV_VM_pageblock_claim), s = ev(MV_VM_pageblock_steal),
		 g = ev(MV_VM_pageblock_grow);
	size_t pfn = get(0, MIGRATE_UNMOVABLE, 0);
	cr_assert_eq(ev(MV_VM_pageblock_grow), g + 1);
	cr_assert_eq(ev(MV_VM_pageblock_claim), c);
	cr_assert_eq(ev(MV_VM_pageblock_steal), s);
	cr_assert_eq(mv_pageblock_start_pfn(&z, pfn), b + PBN);
	cr_assert_eq(block_mt(b + PBN), MIGRATE_UNMOVABLE);
	cr_assert_eq(free_mt(MIGRATE_MOVABLE), 8, "the mixed pageblock was touched");
}

/* ------------------------------------------------------------ move_freepages_block */

/* (d) every free block of the pageblock moves to the new type's lists, the
 * allocated pages stay as they are, and the block is retyped */
Test(fallback, move_freepages_block)
{
	size_t b = fill_block(MIGRATE_MOVABLE);
	static const size_t runs[][2] = {{0, 8}, {13, 1}, {20, 4}, {32, 16}, {62, 1}};
	size_t nfree = 0;
	for (size_t i = 0; i < MV_ARRAY_SIZE(runs); i++) {
		put(b + runs[i][0], runs[i][1]);
		nfree += runs[i][1];
	}
	uint64_t per_order[MV_NR_PAGE_ORDERS], total[MV_NR_PAGE_ORDERS];
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		per_order[o] = z.free_area[o].nr_free_mt[MIGRATE_MOVABLE];
		total[o] = z.free_area[o].nr_free;
	}
	size_t fp, mp;
	mv_lock(&z.lock);
	mv_prep_move_freepages_block(&z, b + 40, &fp, &mp);
	size_t moved = mv_move_freepages_block(&z, b + 40, MIGRATE_UNMOVABLE);
	mv_unlock(&z.lock);
	cr_assert_eq(fp, nfree, "prep_move counted %zu free pages, want %zu", fp, nfree);
	cr_assert_eq(mp, PBN - nfree, "prep_move counted %zu movable pages", mp);
	cr_assert_eq(moved, nfree, "moved %zu pages, want %zu", moved, nfree);
	verify("move_freepages_block");
	cr_assert_eq(block_mt(b), MIGRATE_UNMOVABLE);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_UNMOVABLE]), 1);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_MOVABLE]), 0);
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		cr_assert_eq(z.free_area[o].nr_free_mt[MIGRATE_UNMOVABLE], per_order[o],
			     "order %u: %lu UNMOVABLE blocks, want %lu", o,
			     (unsigned long)z.free_area[o].nr_free_mt[MIGRATE_UNMOVABLE],
			     (unsigned long)per_order[o]);
		cr_assert_eq(z.free_area[o].nr_free_mt[MIGRATE_MOVABLE], 0);
		cr_assert_eq(z.free_area[o].nr_free, total[o]);
	}
	cr_assert_eq(free_mt(MIGRATE_UNMOVABLE), nfree);
	cr_assert_eq(free_mt(MIGRATE_MOVABLE), 0);
	cr_assert_eq(atomic_load(&z.nr_free_pages), nfree);
	for (size_t i = 0; i < MV_ARRAY_SIZE(runs); i++) {
		const struct mv_page *pg = mv_pfn_to_page(&z, b + runs[i][0]);
		cr_assert(pg->type == PG_BUDDY && pg->mt == MIGRATE_UNMOVABLE);
	}
	const struct mv_page *held = mv_pfn_to_page(&z, b + 8);
	cr_assert(held->type == PG_ALLOC && held->mt == MIGRATE_MOVABLE && held->x == 1);

	/* and to ISOLATE: off the free count, and not allocatable */
	mv_lock(&z.lock);
	moved = mv_move_freepages_block(&z, b, MIGRATE_ISOLATE);
	mv_unlock(&z.lock);
	cr_assert_eq(moved, nfree);
	verify("isolate");
	cr_assert_eq(atomic_load(&z.nr_free_pages), 0, "isolated pages are not free pages");
	cr_assert_eq(free_mt(MIGRATE_ISOLATE), nfree);
	for (int t = 0; t < MIGRATE_PCPTYPES; t++)
		cr_assert_eq(mv_buddy_alloc(&z, 0, t, MV_ALLOC_NOGROW, NULL), NONE,
			     "allocated from an isolated pageblock");
	put(b + 8, 1); /* freed into an isolated block: stays isolated */
	cr_assert_eq(free_mt(MIGRATE_ISOLATE), nfree + 1);
	cr_assert_eq(atomic_load(&z.nr_free_pages), 0);
	mv_lock(&z.lock);
	moved = mv_move_freepages_block(&z, b, MIGRATE_MOVABLE);
	mv_unlock(&z.lock);
	cr_assert_eq(moved, nfree + 1);
	verify("unisolate");
	cr_assert_eq(block_mt(b), MIGRATE_MOVABLE);
	cr_assert_eq(atomic_load(&z.nr_free_pages), nfree + 1);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_ISOLATE]), 0);
	cr_assert_eq(atomic_load(&z.nr_pageblocks_mt[MIGRATE_MOVABLE]), 1);
}

/* Isolating a pageblock inside a larger free block splits the block first
 * (move_freepages_block_isolate); undoing it merges it back. */
Test(fallback, isolate_inside_larger_free_block)
{
	size_t b = get(PBO + 1, MIGRATE_MOVABLE, 0);
	put(b, 2 * PBN);
	cr_assert_eq(mv_zone_isolate_pageblock(&z, b + PBN + 3), 0);
	verify("isolate");
	cr_assert_eq(mv_zone_isolate_pageblock(&z, b + PBN), EBUSY);
	cr_assert_eq(block_mt(b + PBN), MIGRATE_ISOLATE);
	cr_assert_eq(block_mt(b), MIGRATE_MOVABLE);
	cr_assert_eq(z.free_area[PBO + 1].nr_free, 0);
	cr_assert_eq(z.free_area[PBO].nr_free_mt[MIGRATE_ISOLATE], 1);
	cr_assert_eq(z.free_area[PBO].nr_free_mt[MIGRATE_MOVABLE], 1);
	cr_assert_eq(atomic_load(&z.nr_free_pages), PBN);
	cr_assert_eq(z.nr_isolate_pageblock, 1);
	/* the isolated half cannot be handed out */
	size_t pfn = get(PBO, MIGRATE_MOVABLE, MV_ALLOC_NOGROW);
	cr_assert_eq(pfn, b);
	cr_assert_eq(mv_buddy_alloc(&z, 0, MIGRATE_MOVABLE, MV_ALLOC_NOGROW, NULL), NONE);
	put(pfn, PBN);
	mv_zone_unisolate_pageblock(&z, b + PBN, MIGRATE_MOVABLE);
	verify("unisolate");
	cr_assert_eq(z.nr_isolate_pageblock, 0);
	cr_assert_eq(block_mt(b + PBN), MIGRATE_MOVABLE);
	cr_assert_eq(z.free_area[PBO + 1].nr_free_mt[MIGRATE_MOVABLE], 1, "not merged back");
	cr_assert_eq(atomic_load(&z.nr_free_pages), 2 * PBN);
}

/* Isolating one pageblock of a larger free block splits it; the other
 * pageblocks must merge again among themselves (split_large_buddy frees
 * them), not stay pageblock-sized: with the pieces listed as they were,
 * an order-10 block split for pageblock 0 left 128 and 192 (and the rest)
 * as free order-6 buddies on one list, which the verifier rejects and
 * which fragments the zone for good. Found by the fuzzer at debug level 2. */
Test(fallback, isolating_splits_and_the_rest_merges)
{
	cr_assert_neq(mv_buddy_grow_free(&z, 16, MIGRATE_MOVABLE), NONE);
	cr_assert_eq(z.free_area[10].nr_free, 1, "one max-order block to split");
	cr_assert_eq(mv_zone_isolate_pageblock(&z, 0), 0);
	const char *err = mv_zone_verify(&z);
	cr_assert_null(err, "after isolating pageblock 0: %s", err);
	/* 0 alone (isolated), then 64 .. 1023 as one block of each order */
	cr_assert_eq(z.free_area[6].nr_free_mt[MIGRATE_ISOLATE], 1);
	for (unsigned o = 6; o < 10; o++)
		cr_assert_eq(z.free_area[o].nr_free_mt[MIGRATE_MOVABLE], 1,
			     "order %u: %lu movable blocks", o,
			     (unsigned long)z.free_area[o].nr_free_mt[MIGRATE_MOVABLE]);
	mv_zone_unisolate_pageblock(&z, 0, MIGRATE_MOVABLE);
	err = mv_zone_verify(&z);
	cr_assert_null(err, "after the undo: %s", err);
	cr_assert_eq(z.free_area[10].nr_free, 1, "whole again after the undo");
}
