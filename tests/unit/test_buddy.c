/* SPDX-License-Identifier: MIT */
/*
 * test_buddy.c: the zone's buddy allocator (lib/buddy.c) against a
 * reference model. Random sequences of mv_buddy_alloc, mv_buddy_alloc_exact,
 * mv_buddy_free and mv_buddy_free_range, with fixed seeds, checked after
 * every step: no page handed out twice, blocks aligned to their order and
 * inside the populated part of the zone, the descriptor of the head says
 * what was handed out, "zeroed" only when the pages read as zeros, an
 * allocation fails only when no free block and no growth could satisfy it,
 * the counters agree with the model, and mv_zone_verify holds. At the end
 * everything is freed and the zone must be free and fully merged.
 * Also exhaustion of a zone of four pageblocks.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "os.h"

#define MiB ((size_t)1 << 20)
#define NONE ((size_t)MV_PFN_NONE)
#define TAG 0x6d6f76615f706721ull /* written at the start and end of each held page */

/* cr_assert formats nothing on success, but keep the hot checks cheap anyway */
#define CHECK(cond, ...)                             \
	do {                                         \
		if (!(cond))                         \
			cr_assert_fail(__VA_ARGS__); \
	} while (0)

struct run {
	uint32_t pfn, nr;
	uint8_t mt;
};

struct model {
	struct mv_zone z;
	struct mv_vmstat vm;
	uint8_t *held; /* 1 per page we hold */
	struct run *runs;
	size_t nruns, held_pages;
	uint64_t rng;
	/* what happened, to make sure the sequences exercise every path */
	size_t nr_alloc, nr_exact, nr_fail, nr_free, nr_partial;
	unsigned small_pct; /* how often orders 0..3 are asked for */
	size_t exact_max;   /* largest mv_buddy_alloc_exact */
};

static uint64_t rnd(struct model *m)
{
	/* splitmix64 */
	uint64_t x = (m->rng += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static size_t rnd_below(struct model *m, size_t n)
{
	return (size_t)(rnd(m) % n);
}

static void model_init(struct model *m, size_t reserve, unsigned pbo, uint64_t seed)
{
	memset(m, 0, sizeof *m);
	cr_assert_eq(mv_zone_init(&m->z, reserve, pbo, &m->vm), 0, "mv_zone_init failed");
	m->held = calloc(m->z.nr_pages_max, 1);
	m->runs = calloc(m->z.nr_pages_max, sizeof *m->runs);
	cr_assert(m->held && m->runs);
	m->rng = seed;
}

static void model_fini(struct model *m)
{
	mv_zone_destroy(&m->z);
	free(m->held);
	free(m->runs);
}

static size_t populated(const struct model *m)
{
	return atomic_load(&m->z.populated_pfn);
}

static uint64_t *page_word(struct model *m, size_t pfn, bool last)
{
	return (uint64_t *)((char *)mv_zone_addr(&m->z, pfn) + (last ? MV_PAGE_SIZE - 8 : 0));
}

/* The invariants that must hold between any two calls. */
static void check_zone(struct model *m, const char *after)
{
	const char *err = mv_zone_verify(&m->z);
	CHECK(err == NULL, "after %s: mv_zone_verify: %s", after, err);
	size_t pop = populated(m);
	CHECK(pop <= m->z.nr_pages_max && pop % m->z.pageblock_nr_pages == 0,
	      "after %s: populated_pfn %zu", after, pop);
	size_t nfree = atomic_load(&m->z.nr_free_pages);
	CHECK(nfree + m->held_pages == pop,
	      "after %s: %zu free + %zu held pages != %zu populated (pages lost or duplicated)",
	      after, nfree, m->held_pages, pop);
	/* pageblock counters agree with the flags */
	size_t count[MIGRATE_TYPES] = {0};
	for (size_t p = 0; p < pop; p += m->z.pageblock_nr_pages)
		count[mv_get_pfnblock_migratetype(&m->z, p)]++;
	for (int t = 0; t < MIGRATE_TYPES; t++)
		CHECK(count[t] == atomic_load(&m->z.nr_pageblocks_mt[t]),
		      "after %s: %zu pageblocks of type %d, nr_pageblocks_mt says %zu", after,
		      count[t], t, atomic_load(&m->z.nr_pageblocks_mt[t]));
}

static void take(struct model *m, size_t pfn, size_t nr, int mt)
{
	for (size_t p = pfn; p < pfn + nr; p++) {
		m->held[p] = 1;
		*page_word(m, p, false) = TAG ^ p;
		*page_word(m, p, true) = TAG ^ p;
	}
	m->held_pages += nr;
	m->runs[m->nruns++] = (struct run){(uint32_t)pfn, (uint32_t)nr, (uint8_t)mt};
}

/* A block just handed out: where it is, what its descriptor says, whether
 * "zeroed" is true, and that no page of it is already held. */
static void check_new_block(struct model *m, size_t pfn, size_t nr, unsigned order, int mt,
			    bool zeroed, const char *what)
{
	CHECK(pfn % ((size_t)1 << order) == 0, "%s: pfn %zu not aligned to order %u", what, pfn,
	      order);
	CHECK(pfn + nr <= populated(m), "%s: block %zu+%zu beyond populated %zu", what, pfn, nr,
	      populated(m));
	for (size_t p = pfn; p < pfn + nr; p++)
		CHECK(!m->held[p], "%s: page %zu (block %zu+%zu) handed out twice", what, p, pfn,
		      nr);
	const struct mv_page *pg = mv_pfn_to_page(&m->z, pfn);
	CHECK(pg->type == PG_ALLOC && pg->x == nr && pg->mt == mt,
	      "%s: head descriptor (type %u, x %u, mt %u), want (PG_ALLOC, %zu, %d)", what,
	      pg->type, pg->x, pg->mt, nr, mt);
	if (zeroed)
		for (size_t p = pfn; p < pfn + nr; p++)
			CHECK(*page_word(m, p, false) == 0 && *page_word(m, p, true) == 0,
			      "%s: block %zu+%zu said zeroed, page %zu was used", what, pfn, nr, p);
}

/* An allocation of order with flags failed: only right if nothing could
 * have satisfied it (no free block of that order or more on any list a
 * pcp type may use, and no room to grow). */
static void check_failure_legit(struct model *m, unsigned order, unsigned flags)
{
	for (unsigned o = order; o < MV_NR_PAGE_ORDERS; o++)
		for (int t = 0; t < MIGRATE_PCPTYPES; t++)
			CHECK(m->z.free_area[o].free_list[t] == MV_PFN_NONE,
			      "order %u allocation failed with a free block of order %u type %d",
			      order, o, t);
	if (flags & MV_ALLOC_NOGROW)
		return;
	size_t blk = (size_t)1 << MV_MAX(order, m->z.pageblock_order);
	size_t end = mv_align_up(populated(m), blk) + blk;
	CHECK(end > m->z.nr_pages_max,
	      "order %u allocation failed though the zone could grow (populated %zu of %zu)", order,
	      populated(m), m->z.nr_pages_max);
}

static void check_tags(struct model *m, size_t pfn, size_t nr)
{
	for (size_t p = pfn; p < pfn + nr; p++)
		CHECK(*page_word(m, p, false) == (TAG ^ p) && *page_word(m, p, true) == (TAG ^ p),
		      "held page %zu was overwritten while held", p);
}

static void release(struct model *m, size_t pfn, size_t nr)
{
	for (size_t p = pfn; p < pfn + nr; p++) {
		CHECK(m->held[p], "model: freeing page %zu not held", p);
		m->held[p] = 0;
	}
	m->held_pages -= nr;
}

static void drop_run(struct model *m, size_t i)
{
	m->runs[i] = m->runs[--m->nruns];
}

/* as an owner would: the head of a piece we keep describes the piece */
static void set_head(struct model *m, size_t pfn, size_t nr, int mt)
{
	struct mv_page *pg = mv_pfn_to_page(&m->z, pfn);
	mv_pg_store(pg->mt, (uint8_t)mt);
	mv_pg_store(pg->x, (uint32_t)nr);
	mv_pg_store(pg->order, (uint8_t)0);
	mv_pg_store(pg->type, (uint8_t)PG_ALLOC);
}

static unsigned random_order(struct model *m)
{
	unsigned r = (unsigned)rnd_below(m, 100);
	if (r < m->small_pct)
		return (unsigned)rnd_below(m, 4);
	if (r < m->small_pct + (100 - m->small_pct) * 3 / 4)
		return 4 + (unsigned)rnd_below(m, 4);
	return 8 + (unsigned)rnd_below(m, 3);
}

static const unsigned flag_choices[] = {0, 0, MV_ALLOC_NOGROW, MV_ALLOC_NOFRAGMENT};

static void step_alloc(struct model *m)
{
	unsigned order = random_order(m);
	int mt = (int)rnd_below(m, MIGRATE_PCPTYPES);
	unsigned flags = flag_choices[rnd_below(m, MV_ARRAY_SIZE(flag_choices))];
	bool zeroed = false;
	size_t pfn = mv_buddy_alloc(&m->z, order, mt, flags, &zeroed);
	if (pfn == NONE) {
		m->nr_fail++;
		check_failure_legit(m, order, flags);
		return;
	}
	m->nr_alloc++;
	check_new_block(m, pfn, (size_t)1 << order, order, mt, zeroed, "mv_buddy_alloc");
	take(m, pfn, (size_t)1 << order, mt);
}

static void step_alloc_exact(struct model *m)
{
	size_t nr = 1 + rnd_below(m, rnd_below(m, 4) ? MV_MIN(m->exact_max, 40) : m->exact_max);
	unsigned order = mv_order_for_pages(nr);
	int mt = (int)rnd_below(m, MIGRATE_PCPTYPES);
	unsigned flags = flag_choices[rnd_below(m, MV_ARRAY_SIZE(flag_choices))];
	bool zeroed = false;
	size_t pfn = mv_buddy_alloc_exact(&m->z, nr, mt, flags, &zeroed);
	if (pfn == NONE) {
		m->nr_fail++;
		check_failure_legit(m, order, flags);
		return;
	}
	m->nr_exact++;
	check_new_block(m, pfn, nr, order, mt, zeroed, "mv_buddy_alloc_exact");
	take(m, pfn, nr, mt);
}

static void step_free(struct model *m)
{
	if (!m->nruns)
		return;
	size_t i = rnd_below(m, m->nruns);
	struct run r = m->runs[i];
	check_tags(m, r.pfn, r.nr);
	drop_run(m, i);
	release(m, r.pfn, r.nr);
	m->nr_free++;
	if (mv_is_pow2(r.nr) && r.pfn % r.nr == 0 && rnd_below(m, 2))
		mv_buddy_free(&m->z, r.pfn, mv_ilog2(r.nr));
	else
		mv_buddy_free_range(&m->z, r.pfn, r.nr);
}

/* free part of a run, any alignment; keep the pieces on either side */
static void step_free_partial(struct model *m)
{
	if (!m->nruns)
		return;
	size_t i = rnd_below(m, m->nruns);
	struct run r = m->runs[i];
	if (r.nr < 2)
		return;
	size_t a = rnd_below(m, r.nr), b = a + 1 + rnd_below(m, r.nr - a);
	if (a == 0 && b == r.nr)
		b--;
	check_tags(m, r.pfn, r.nr);
	drop_run(m, i);
	release(m, r.pfn + a, b - a);
	if (a) {
		set_head(m, r.pfn, a, r.mt);
		m->runs[m->nruns++] = (struct run){r.pfn, (uint32_t)a, r.mt};
	}
	if (b < r.nr) {
		set_head(m, r.pfn + b, r.nr - b, r.mt);
		m->runs[m->nruns++] =
		    (struct run){(uint32_t)(r.pfn + b), (uint32_t)(r.nr - b), r.mt};
	}
	m->nr_partial++;
	mv_buddy_free_range(&m->z, r.pfn + a, b - a);
}

/* With everything free, the free blocks must be exactly the largest aligned
 * blocks that tile [0, populated): every buddy that could merge has merged. */
static void check_fully_merged(struct model *m)
{
	size_t pop = populated(m);
	cr_assert_eq(atomic_load(&m->z.nr_free_pages), pop,
		     "all freed: %zu free pages, %zu populated", atomic_load(&m->z.nr_free_pages),
		     pop);
	for (size_t p = 0; p < pop;) {
		unsigned want = p ? (unsigned)__builtin_ctzl(p) : MV_MAX_PAGE_ORDER;
		want = MV_MIN(want, mv_ilog2(pop - p));
		want = MV_MIN(want, (unsigned)MV_MAX_PAGE_ORDER);
		const struct mv_page *pg = mv_pfn_to_page(&m->z, p);
		cr_assert(pg->type == PG_BUDDY && pg->order == want,
			  "all freed: at pfn %zu want a free block of order %u, descriptor says "
			  "(type %u, order %u)",
			  p, want, pg->type, pg->order);
		cr_assert(want >= m->z.pageblock_order,
			  "pageblock at %zu not covered by a block of pageblock order", p);
		p += (size_t)1 << want;
	}
	const char *err = mv_zone_verify(&m->z);
	cr_assert_null(err, "all freed: mv_zone_verify: %s", err);
}

static void random_run(size_t reserve, unsigned pbo, uint64_t seed, unsigned steps,
		       unsigned small_pct, size_t exact_max, bool want_steals)
{
	static struct model m;
	model_init(&m, reserve, pbo, seed);
	m.small_pct = small_pct;
	m.exact_max = exact_max;
	check_zone(&m, "init");
	for (unsigned s = 0; s < steps; s++) {
		/* phases of 400 steps that mostly allocate (to exhaustion) or mostly free */
		unsigned alloc_pct = (s / 400) % 2 ? 30 : 75;
		unsigned r = (unsigned)rnd_below(&m, 100);
		const char *what;
		if (r < alloc_pct * 2 / 3) {
			step_alloc(&m);
			what = "mv_buddy_alloc";
		} else if (r < alloc_pct) {
			step_alloc_exact(&m);
			what = "mv_buddy_alloc_exact";
		} else if (r < alloc_pct + (100 - alloc_pct) / 4) {
			step_free_partial(&m);
			what = "mv_buddy_free_range (partial)";
		} else {
			step_free(&m);
			what = "mv_buddy_free";
		}
		check_zone(&m, what);
	}
	uint64_t claims = m.vm.ev[MV_VM_pageblock_claim], steals = m.vm.ev[MV_VM_pageblock_steal];
	cr_assert(m.nr_alloc > 100 && m.nr_exact > 50 && m.nr_free > 100 && m.nr_partial > 20 &&
		      m.nr_fail > 10 && claims > 0 && (steals > 0 || !want_steals),
		  "the sequence did not exercise every path: %zu allocs, %zu exact, %zu frees, "
		  "%zu partial frees, %zu failures, %lu claims, %lu steals",
		  m.nr_alloc, m.nr_exact, m.nr_free, m.nr_partial, m.nr_fail, (unsigned long)claims,
		  (unsigned long)steals);
	cr_assert_eq(populated(&m), m.z.nr_pages_max, "exhaustion phases should fill the zone");
	while (m.nruns) {
		step_free(&m);
		check_zone(&m, "final free");
	}
	check_fully_merged(&m);
	model_fini(&m);
}

Test(buddy, random_pbo6_seed1, .timeout = 120)
{
	random_run(64 * MiB, 6, 1, 10000, 60, 1024, false);
}

Test(buddy, random_pbo6_seed2, .timeout = 120)
{
	random_run(64 * MiB, 6, 0xdeadbeef, 10000, 95, 1024, false);
}

/* small blocks only, in a smaller zone: falls back into mixed pageblocks often */
Test(buddy, random_pbo6_small, .timeout = 120)
{
	random_run(16 * MiB, 6, 99, 10000, 100, 16, true);
}

Test(buddy, random_pbo9, .timeout = 120)
{
	random_run(64 * MiB, 9, 42, 10000, 60, 1024, true);
}

Test(buddy, random_pbo10, .timeout = 120)
{
	random_run(64 * MiB, 10, 7, 6000, 60, 1024, true);
}

/* ------------------------------------------------------------ exhaustion */

/* A zone of a few pageblocks: allocate blocks of order until MV_PFN_NONE,
 * of random types (mt < 0) or all of type mt. */
static void exhaust(unsigned pbo, size_t nr_blocks, unsigned order, int only_mt, uint64_t seed)
{
	static struct model m;
	model_init(&m, (nr_blocks << pbo) * MV_PAGE_SIZE, pbo, seed);
	size_t total = m.z.nr_pages_max, per = (size_t)1 << order;
	cr_assert_eq(total, nr_blocks << pbo);
	/* below MIGRATE_TYPES pageblocks, grouping by mobility is off */
	cr_assert_eq(m.z.page_group_by_mobility_disabled, nr_blocks < MIGRATE_TYPES);
	for (;;) {
		int mt = only_mt >= 0 ? only_mt : (int)rnd_below(&m, MIGRATE_PCPTYPES);
		bool zeroed;
		size_t pfn = mv_buddy_alloc(&m.z, order, mt, 0, &zeroed);
		if (pfn == NONE)
			break;
		check_new_block(&m, pfn, per, order, mt, zeroed, "exhaust");
		take(&m, pfn, per, mt);
		check_zone(&m, "exhaust alloc");
		cr_assert(m.held_pages <= total, "more pages handed out than the zone has");
	}
	cr_assert_eq(m.held_pages, total, "allocation failed with %zu of %zu pages held",
		     m.held_pages, total);
	cr_assert_eq(populated(&m), total);
	check_zone(&m, "exhaustion");
	/* every order fails now, and keeps failing, without damage */
	for (unsigned o = 0; o <= MV_MAX_PAGE_ORDER; o++)
		for (int t = 0; t < MIGRATE_PCPTYPES; t++) {
			cr_assert_eq(mv_buddy_alloc(&m.z, o, t, 0, NULL), NONE,
				     "order %u type %d allocated from a full zone", o, t);
			cr_assert_eq(
			    mv_buddy_alloc_exact(&m.z, ((size_t)1 << o) - (o > 0), t, 0, NULL),
			    NONE);
		}
	cr_assert_eq(mv_buddy_alloc(&m.z, MV_MAX_PAGE_ORDER + 1, MIGRATE_MOVABLE, 0, NULL), NONE);
	check_zone(&m, "failed allocations");
	cr_assert_geq(atomic_load(&m.z.wake_order), (int)order,
		      "a failure must record its order for kcompactd");

	/* give one block back: it, and only it, can be allocated again */
	size_t i = rnd_below(&m, m.nruns);
	struct run r = m.runs[i];
	drop_run(&m, i);
	release(&m, r.pfn, r.nr);
	mv_buddy_free(&m.z, r.pfn, order);
	check_zone(&m, "free one");
	bool zeroed = true;
	size_t pfn = mv_buddy_alloc(&m.z, order, r.mt, 0, &zeroed);
	cr_assert_eq(pfn, r.pfn, "after freeing block %u, got %zu", r.pfn, pfn);
	cr_assert_not(zeroed, "a used block is not zeroed");
	check_new_block(&m, pfn, per, order, r.mt, false, "realloc");
	take(&m, pfn, per, r.mt);
	check_zone(&m, "realloc");
	cr_assert_eq(mv_buddy_alloc(&m.z, 0, MIGRATE_UNMOVABLE, 0, NULL), NONE);

	/* and everything back: one free, merged zone */
	while (m.nruns) {
		step_free(&m);
		check_zone(&m, "final free");
	}
	check_fully_merged(&m);
	model_fini(&m);
}

/* four pageblocks: the smallest arena, where grouping by mobility is off */
Test(buddy, exhaust_4_blocks_order0)
{
	exhaust(6, 4, 0, -1, 11);
}

Test(buddy, exhaust_4_blocks_order2)
{
	exhaust(6, 4, 2, -1, 12);
}

Test(buddy, exhaust_4_blocks_pbo9_order5)
{
	exhaust(9, 4, 5, -1, 13);
}

Test(buddy, exhaust_4_blocks_pageblocks)
{
	exhaust(6, 4, 6, -1, 14);
}

Test(buddy, exhaust_4_blocks_unmovable_only)
{
	exhaust(6, 4, 1, MIGRATE_UNMOVABLE, 15);
}

/* six pageblocks: grouping on */
Test(buddy, exhaust_6_blocks_order0)
{
	exhaust(6, 6, 0, -1, 16);
}

Test(buddy, exhaust_6_blocks_order3)
{
	exhaust(6, 6, 3, -1, 17);
}

Test(buddy, exhaust_6_blocks_pbo9_order4)
{
	exhaust(9, 6, 4, -1, 18);
}

/* An order larger than the whole zone fails cleanly, and the zone still works. */
Test(buddy, order_larger_than_zone)
{
	static struct model m;
	model_init(&m, ((size_t)4 << 6) * MV_PAGE_SIZE, 6, 1);
	for (unsigned o = 9; o <= MV_MAX_PAGE_ORDER; o++)
		cr_assert_eq(mv_buddy_alloc(&m.z, o, MIGRATE_MOVABLE, 0, NULL), NONE);
	cr_assert_eq(mv_buddy_alloc_exact(&m.z, 600, MIGRATE_MOVABLE, 0, NULL), NONE);
	check_zone(&m, "too large");
	bool zeroed = false;
	size_t pfn = mv_buddy_alloc(&m.z, 8, MIGRATE_MOVABLE, 0, &zeroed);
	cr_assert_eq(pfn, 0);
	cr_assert(zeroed, "fresh pages read as zeros and must say so");
	check_new_block(&m, pfn, 256, 8, MIGRATE_MOVABLE, zeroed, "whole zone");
	take(&m, pfn, 256, MIGRATE_MOVABLE);
	check_zone(&m, "whole zone");
	step_free(&m);
	check_zone(&m, "free whole zone");
	check_fully_merged(&m);
	model_fini(&m);
}

/* mova's free pages may be unbacked (never touched, or given back), the
 * kernel's never are: splitting a free block, the allocator hands out its
 * backed half, so reusing memory does not grow the process's RSS. A
 * pageblock whose low half was given back and whose high half is backed
 * and free serves 32 single pages without backing a new one. */
Test(buddy, backed_pages_reused_first)
{
	static struct model m;
	model_init(&m, ((size_t)4 << 6) * MV_PAGE_SIZE, 6, 1);
	size_t pfn[64];
	for (unsigned i = 0; i < 64; i++) {
		pfn[i] = mv_buddy_alloc(&m.z, 0, MIGRATE_UNMOVABLE, 0, NULL);
		cr_assert_neq(pfn[i], NONE);
	}
	size_t base = pfn[0] & ~(size_t)63;
	for (unsigned i = 0; i < 64; i++)
		cr_assert_eq(pfn[i] & ~(size_t)63, base, "the 64 pages fill one pageblock");
	/* the low half freed and given back: unbacked */
	for (unsigned i = 0; i < 64; i++)
		if (pfn[i] - base < 32)
			mv_buddy_free(&m.z, pfn[i], 0);
	mv_zone_return_free(&m.z, 0, 0);
	size_t resident = atomic_load(&m.z.resident_pages);
	/* the high half freed: the pageblock merges, half backed */
	for (unsigned i = 0; i < 64; i++)
		if (pfn[i] - base >= 32)
			mv_buddy_free(&m.z, pfn[i], 0);
	cr_assert_eq(atomic_load(&m.z.resident_pages), resident, "a free does not back pages");
	const char *err = mv_zone_verify(&m.z);
	cr_assert_null(err, "%s", err);
	for (unsigned i = 0; i < 32; i++) {
		bool zeroed = true;
		size_t p = mv_buddy_alloc(&m.z, 0, MIGRATE_UNMOVABLE, 0, &zeroed);
		cr_assert_neq(p, NONE);
		cr_assert(!zeroed, "page %u: a fresh page (pfn %zu) while backed ones were free", i,
			  p);
		cr_assert_geq(p - base, 32, "page %u came from the given-back half", i);
	}
	cr_assert_eq(atomic_load(&m.z.resident_pages), resident,
		     "32 reused pages backed %zu new ones",
		     atomic_load(&m.z.resident_pages) - resident);
	model_fini(&m);
}

/* The same for runs of whole pageblocks (objects past a max-order block):
 * of the free stretches long enough, the one with backed pages is taken,
 * not the lowest (a stretch given back would be faulted in again). */
Test(buddy, backed_pageblock_runs_reused_first)
{
	static struct model m;
	model_init(&m, ((size_t)8 << 6) * MV_PAGE_SIZE, 6, 1);
	bool zeroed;
	size_t x = mv_buddy_alloc_pageblocks(&m.z, 2, MIGRATE_UNMOVABLE, &zeroed);
	size_t y = mv_buddy_alloc_pageblocks(&m.z, 2, MIGRATE_UNMOVABLE, &zeroed);
	cr_assert_neq(x, NONE);
	cr_assert_neq(y, NONE);
	cr_assert_lt(x, y);
	/* x freed and given back (unbacked), then y freed (backed) */
	mv_buddy_free_range(&m.z, x, 128);
	mv_zone_return_free(&m.z, 0, 0);
	mv_buddy_free_range(&m.z, y, 128);
	size_t resident = atomic_load(&m.z.resident_pages);
	size_t r = mv_buddy_alloc_pageblocks(&m.z, 2, MIGRATE_UNMOVABLE, &zeroed);
	cr_assert_eq(r, y, "the backed stretch (pfn %zu), not %zu", y, r);
	cr_assert_not(zeroed);
	cr_assert_eq(atomic_load(&m.z.resident_pages), resident, "no page backed anew");
	mv_buddy_free_range(&m.z, r, 128);
	const char *err = mv_zone_verify(&m.z);
	cr_assert_null(err, "%s", err);
	model_fini(&m);
}

/* Frees that arrive while mv_zone_return_free has the lock dropped (around
 * its madvise calls) are not its business: a call gives back at most what
 * was resident when it began. Before, it looped until it found no backed
 * free block at all, so another thread freeing (or allocating and freeing)
 * pages faster than madvise could return them kept it going for as long as
 * that thread ran: mova_compact(a, -1) in migrate::hfree_races_migration
 * ran into Criterion's 120 s timeout that way (docs/MIGRATION.md section 9,
 * item 7). Here the OS hook stands in for the other thread: every decommit
 * brings a new backed free page, so the old loop never ended by itself (the
 * hook stops after CHASE_LIMIT calls so that it fails instead of hanging). */
#define CHASE_LIMIT 20000
static struct mv_zone *chase_zone;
static _Atomic unsigned chase_calls;

static int chase_hook(enum mv_os_op op, size_t len)
{
	(void)len;
	if (op != MV_OS_DECOMMIT || atomic_fetch_add(&chase_calls, 1) >= CHASE_LIMIT)
		return 0;
	/* a page allocated (backed) and freed by "another thread" meanwhile;
	 * the zone lock is not held around decommits */
	size_t pfn = mv_buddy_alloc(chase_zone, 0, MIGRATE_UNMOVABLE, 0, NULL);
	if (pfn != NONE)
		mv_buddy_free(chase_zone, pfn, 0);
	return 0;
}

Test(buddy, return_free_does_not_chase_concurrent_frees)
{
	static struct model m;
	model_init(&m, ((size_t)4 << 6) * MV_PAGE_SIZE, 6, 1);
	size_t pfn[192];
	for (unsigned i = 0; i < 192; i++) {
		pfn[i] = mv_buddy_alloc(&m.z, 0, MIGRATE_UNMOVABLE, 0, NULL);
		cr_assert_neq(pfn[i], NONE);
	}
	/* every other page free: 96 backed free blocks, more than one batch */
	for (unsigned i = 0; i < 192; i += 2)
		mv_buddy_free(&m.z, pfn[i], 0);
	size_t resident = atomic_load(&m.z.resident_pages);
	chase_zone = &m.z;
	atomic_store(&chase_calls, 0);
	atomic_store(&mv_os_fault_hook, chase_hook);
	size_t returned = mv_zone_return_free(&m.z, 0, 0);
	atomic_store(&mv_os_fault_hook, (mv_os_fault_fn)NULL);
	unsigned calls = atomic_load(&chase_calls);
	cr_assert_lt(calls, CHASE_LIMIT,
		     "mv_zone_return_free chased the frees made during it: %u madvise calls "
		     "(and counting) for %zu resident pages",
		     CHASE_LIMIT, resident);
	/* each call of the hook returned a page, in batches of up to 64 */
	cr_assert_leq(calls, resident + 64, "%u madvise calls for %zu resident pages", calls,
		      resident);
	cr_log_info("%u madvise calls, %zu pages given back, %zu were resident", calls, returned,
		    resident);
	cr_assert_geq(returned, 96, "only %zu of the 96 free pages given back", returned);
	const char *err = mv_zone_verify(&m.z);
	cr_assert_null(err, "%s", err);
	/* with nobody freeing meanwhile, the next call gives back the rest */
	mv_zone_return_free(&m.z, 0, 0);
	cr_assert_eq(atomic_load(&m.z.resident_pages), 96, "the 96 held pages stay, nothing else");
	for (unsigned i = 1; i < 192; i += 2)
		mv_buddy_free(&m.z, pfn[i], 0);
	model_fini(&m);
}

/* Issue 16's give-back policy (lib/giveback.c, take_backed): kcompactd's
 * decay (mv_zone_return_pages, by pages) does not split a huge page for
 * the few free pages of a mostly full pageblock advised MADV_HUGEPAGE
 * (Temeraire's rule); it gives back those of a pageblock that is not
 * advised. An explicit giving back (mv_zone_return_free: mova_compact,
 * malloc_trim, reclaim) is asked for the memory and takes them all, and
 * the pageblock is no longer advised. */
Test(buddy, decay_keeps_huge_pages_whole_explicit_giving_back_does_not)
{
	static struct model m;
	model_init(&m, ((size_t)4 << 9) * MV_PAGE_SIZE, 9, 1);
	mv_zone_set_thp(&m.z, MOVA_THP_MADVISE);
	if (mv_zone_thp_mode(&m.z) != MOVA_THP_MADVISE) {
		cr_log_info("THP disabled on this system: nothing to test");
		model_fini(&m);
		return;
	}
	enum { PBN = 512, N = 2 * PBN, HOLE = PBN / 4 };
	static size_t pfn[N];
	for (unsigned i = 0; i < N; i++) {
		pfn[i] = mv_buddy_alloc(&m.z, 0, MIGRATE_MOVABLE, 0, NULL);
		cr_assert_neq(pfn[i], NONE);
	}
	size_t a = pfn[0] & ~(size_t)(PBN - 1), b = a + PBN;
	for (unsigned i = 0; i < N; i++)
		cr_assert(pfn[i] >= a && pfn[i] < b + PBN, "the pages fill two pageblocks");
	mv_lock(&m.z.lock);
	cr_assert(mv_zone_thp_advise_pageblock(&m.z, a));
	mv_unlock(&m.z.lock);
	/* a quarter of each pageblock freed: backed and free */
	for (unsigned i = 0; i < N; i++)
		if ((pfn[i] & (PBN - 1)) < HOLE) {
			mv_buddy_free(&m.z, pfn[i], 0);
			pfn[i] = NONE;
		}
	size_t resident = atomic_load(&m.z.resident_pages);
	size_t gone = mv_zone_return_pages(&m.z, N);
	cr_assert_eq(gone, HOLE, "decay gave back %zu pages: the %d of the pageblock not advised",
		     gone, HOLE);
	cr_assert_eq(atomic_load(&m.z.resident_pages), resident - HOLE);
	mv_lock(&m.z.lock);
	cr_assert(mv_zone_thp_advised(&m.z, a), "the huge page was split");
	cr_assert_not(mv_zone_thp_advised(&m.z, b));
	mv_unlock(&m.z.lock);
	gone = mv_zone_return_free(&m.z, 0, 0);
	cr_assert_eq(gone, HOLE, "the explicit giving back took %zu pages", gone);
	cr_assert_eq(atomic_load(&m.z.resident_pages), resident - 2 * HOLE);
	mv_lock(&m.z.lock);
	cr_assert_not(mv_zone_thp_advised(&m.z, a), "still advised with pages given back");
	mv_unlock(&m.z.lock);
	const char *err = mv_zone_verify(&m.z);
	cr_assert_null(err, "%s", err);
	for (unsigned i = 0; i < N; i++)
		if (pfn[i] != NONE)
			mv_buddy_free(&m.z, pfn[i], 0);
	model_fini(&m);
}
