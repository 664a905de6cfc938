/* SPDX-License-Identifier: MIT */
/*
 * buddy.c: the zone's buddy allocator, after mm/page_alloc.c (v6.10): free
 * lists per order per migratetype, split (expand) and merge
 * (__free_one_page) by buddy arithmetic, the fallback table, the rule for
 * claiming a whole pageblock versus stealing the pages needed
 * (steal_suitable_fallback), and moving a pageblock's free pages between
 * lists (move_freepages_block). See buddy.h for the invariants.
 *
 * Where mova differs from the kernel, and why:
 *  - The zone grows: the unpopulated top of the reservation behaves as free
 *    pageblocks any type may claim whole. __rmqueue tries its own type,
 *    then whole free pageblocks of other types (ALLOC_NOFRAGMENT), then
 *    grows, and only then steals from mixed pageblocks, as the kernel does
 *    when it retries without ALLOC_NOFRAGMENT after reclaim.
 *  - No watermarks or reclaim: a fallback that steals records
 *    pageblock_order in wake_order, which the arena turns into a kcompactd
 *    wakeup, as boost_watermark -> kswapd -> wakeup_kcompactd does.
 *  - Whole free pageblocks are given back to the OS (mv_zone_return_free)
 *    and a bit per page says whether the OS backs it (resident_bytes).
 *
 * Locking: everything under zone->lock, except descriptor and flag loads
 * by lockless readers, which is why descriptor fields are written through
 * mv_pg_store.
 */
#include "buddy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "os.h"

const int mv_fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1] = {
    [MIGRATE_UNMOVABLE] = {MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE},
    [MIGRATE_MOVABLE] = {MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE},
    [MIGRATE_RECLAIMABLE] = {MIGRATE_UNMOVABLE, MIGRATE_MOVABLE},
};

#define NONE MV_PFN_NONE

/* ------------------------------------------------------------ setup */

int mv_zone_init(struct mv_zone *z, size_t reserve_bytes, unsigned pageblock_order,
		 struct mv_vmstat *vm)
{
	memset(z, 0, sizeof *z);
	mv_mutex_init(&z->lock, MV_RANK_ZONE);
	z->vm = vm;
	z->pageblock_order = pageblock_order;
	z->pageblock_nr_pages = (size_t)1 << pageblock_order;
	z->reserve_bytes = reserve_bytes;
	z->nr_pages_max = reserve_bytes >> MV_PAGE_SHIFT;
	size_t nr_blocks = z->nr_pages_max >> pageblock_order;
	/* aligned to the largest block, so buddy arithmetic never leaves it */
	size_t align = MV_MAX(MV_PAGE_SIZE << MV_MAX_PAGE_ORDER, MV_PAGE_SIZE << pageblock_order);
	z->base = mv_os_reserve(reserve_bytes, align);
	if (!z->base)
		goto fail;
	z->desc_bytes =
	    mv_align_up(MV_DESC_COLOR + z->nr_pages_max * sizeof(struct mv_page), MV_PAGE_SIZE);
	/* readable throughout: free() may look up a pointer anywhere in the
	 * reservation and must find PG_NONE, not a fault */
	z->desc_map = mv_os_reserve_readable(z->desc_bytes, MV_PAGE_SIZE);
	if (!z->desc_map)
		goto fail;
	z->desc = (struct mv_page *)(void *)(z->desc_map + MV_DESC_COLOR);
	z->pb.order = pageblock_order;
	z->pb.nr_blocks = nr_blocks;
	size_t bitmap_words = (z->nr_pages_max + 63) / 64;
	size_t desc_pages_words = (z->desc_bytes / MV_PAGE_SIZE + 63) / 64;
	z->pb_words_bytes = mv_align_up(
	    (mv_pageblock_words(nr_blocks) + bitmap_words + desc_pages_words) * sizeof(uint64_t),
	    MV_PAGE_SIZE);
	/* mapped, not committed page by page: untouched parts cost nothing */
	z->pb.words = mv_os_map(z->pb_words_bytes);
	if (!z->pb.words)
		goto fail;
	z->backed = (uint64_t *)(z->pb.words + mv_pageblock_words(nr_blocks));
	z->desc_released = z->backed + bitmap_words;
	for (int o = 0; o < MV_NR_PAGE_ORDERS; o++)
		for (int t = 0; t < MIGRATE_TYPES; t++)
			z->free_area[o].free_list[t] = NONE;
	/* page_group_by_mobility_disabled: too small to group (build_all_zonelists) */
	z->page_group_by_mobility_disabled = nr_blocks < MIGRATE_TYPES;
	return 0;
fail:;
	int err = errno ? errno : ENOMEM;
	mv_zone_destroy(z);
	return err;
}

void mv_zone_destroy(struct mv_zone *z)
{
	mv_os_release(z->base, z->reserve_bytes);
	if (z->desc_map)
		mv_os_release(z->desc_map, z->desc_bytes);
	z->desc_map = NULL;
	mv_os_release(z->pb.words, z->pb_words_bytes);
	z->base = NULL;
	z->desc = NULL;
	z->pb.words = NULL;
	mv_mutex_destroy(&z->lock);
}

/* ------------------------------------------------------------ free lists */

/* set (or clear) the backed bits of a range; returns how many changed */
static size_t set_backed(struct mv_zone *z, size_t pfn, size_t nr, bool on)
{
	size_t n = 0, end = pfn + nr;
	while (pfn < end) {
		size_t w = pfn / 64, bit = pfn % 64, len = MV_MIN(64 - bit, end - pfn);
		uint64_t mask = len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1) << bit;
		uint64_t old = z->backed[w];
		/* an atomic store: mv_zone_pageblock_backed reads without the lock */
		mv_rstore(z->backed[w], on ? old | mask : old & ~mask);
		n += (size_t)mv_popcount64((on ? ~old : old) & mask);
		pfn += len;
	}
	return n;
}

/* does [pfn, pfn + nr) hold a backed page? (stops at the first) */
static bool any_backed(const struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t end = pfn + nr;
	while (pfn < end) {
		size_t w = pfn / 64, bit = pfn % 64, len = MV_MIN(64 - bit, end - pfn);
		uint64_t mask = len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1) << bit;
		if (mv_rload(z->backed[w]) & mask) /* may run without the lock */
			return true;
		pfn += len;
	}
	return false;
}

/* pages of [pfn, pfn + nr) not backed */
static size_t count_unbacked(const struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t n = 0, end = pfn + nr;
	while (pfn < end) {
		size_t w = pfn / 64, bit = pfn % 64, len = MV_MIN(64 - bit, end - pfn);
		uint64_t mask = len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1) << bit;
		n += (size_t)mv_popcount64(~z->backed[w] & mask);
		pfn += len;
	}
	return n;
}

bool mv_zone_pageblock_backed(const struct mv_zone *z, size_t pfn)
{
	return any_backed(z, mv_pageblock_start_pfn(z, pfn), z->pageblock_nr_pages);
}

size_t mv_zone_charged_pages(const struct mv_zone *z)
{
	return mv_relaxed_load(&z->resident_pages) +
	       (z->extra_pages ? z->extra_pages(z->extra_arg) : 0);
}

/* The budget: would backing [pfn, pfn + nr) take the zone past its limit?
 * Caller holds zone->lock, so resident_pages cannot move meanwhile. */
static bool over_limit(struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t lim = mv_relaxed_load(&z->limit_pages);
	if (likely(!lim))
		return false;
	size_t fresh = count_unbacked(z, pfn, nr);
	if (!fresh || mv_zone_charged_pages(z) + fresh <= lim)
		return false;
	if (fresh > mv_relaxed_load(&z->limit_want))
		mv_relaxed_store(&z->limit_want, fresh);
	return true;
}

/* wholly free pageblocks of a free block that hold a backed page */
static size_t backed_pageblocks(const struct mv_zone *z, size_t pfn, unsigned order)
{
	if (order < z->pageblock_order)
		return 0;
	size_t n = 0, count = (size_t)1 << (order - z->pageblock_order);
	for (size_t i = 0; i < count; i++)
		n += any_backed(z, pfn + i * z->pageblock_nr_pages, z->pageblock_nr_pages);
	return n;
}

/* A block joins (sign 1) or leaves (-1) the free lists; bp of its pages
 * are backed. Its backed bits do not change while it is listed (they are
 * set when it is handed out and cleared when it is given back, both off
 * the lists), so the counts stay exact. */
static void account_free(struct mv_zone *z, size_t pfn, unsigned order, int mt, long sign,
			 size_t bp)
{
	struct mv_free_area *area = &z->free_area[order];
	size_t pages = (size_t)1 << order;
	area->nr_free += (uint64_t)sign;
	area->nr_free_mt[mt] += (uint64_t)sign;
	z->nr_free_pages_mt[mt] += (size_t)sign * pages;
	if (mt != MIGRATE_ISOLATE)
		mv_relaxed_store(&z->nr_free_pages,
				 mv_relaxed_load(&z->nr_free_pages) + (size_t)sign * pages);
	if (!bp)
		return;
	area->nr_backed_mt[mt] += (uint64_t)sign;
	size_t fb = mv_relaxed_load(&z->free_backed_pages) + (size_t)sign * bp;
	mv_relaxed_store(&z->free_backed_pages, fb);
	if (fb < mv_relaxed_load(&z->free_backed_low))
		mv_relaxed_store(&z->free_backed_low, fb);
	size_t nb = backed_pageblocks(z, pfn, order);
	if (nb)
		mv_relaxed_store(&z->free_pb_backed,
				 mv_relaxed_load(&z->free_pb_backed) + (size_t)sign * nb);
}

static void add_to_free_list(struct mv_zone *z, size_t pfn, unsigned order, int mt, bool tail)
{
	struct mv_page *pg = &z->desc[pfn];
	uint32_t *head = &z->free_area[order].free_list[mt];
	size_t bp = ((size_t)1 << order) - count_unbacked(z, pfn, (size_t)1 << order);
	/* a block with no backed page goes to the tail: allocations take
	 * backed blocks from the head (no page fault, no new RSS), and giving
	 * back finds the backed ones first and stops */
	if (!bp)
		tail = true;
	if (*head == NONE) {
		mv_pg_store(pg->lru.next, (uint32_t)pfn);
		mv_pg_store(pg->lru.prev, (uint32_t)pfn);
		*head = (uint32_t)pfn;
	} else {
		struct mv_page *h = &z->desc[*head];
		uint32_t t = h->lru.prev;
		mv_pg_store(pg->lru.next, *head);
		mv_pg_store(pg->lru.prev, t);
		mv_pg_store(z->desc[t].lru.next, (uint32_t)pfn);
		mv_pg_store(h->lru.prev, (uint32_t)pfn);
		if (!tail)
			*head = (uint32_t)pfn;
	}
	mv_pg_store(pg->order, (uint8_t)order);
	mv_pg_store(pg->mt, (uint8_t)mt);
	mv_pg_store(pg->type, (uint8_t)PG_BUDDY);
	account_free(z, pfn, order, mt, 1, bp);
}

/* The descriptor pages wholly inside the block [pfn, pfn + 2^order) but
 * for the one holding its head: [*first, *end), page indices. */
static void desc_span(size_t pfn, unsigned order, size_t *first, size_t *end)
{
	const size_t per = MV_PAGE_SIZE / sizeof(struct mv_page);
	pfn += MV_DESC_COLOR / sizeof(struct mv_page); /* desc_map's page index */
	*first = pfn / per + 1;
	*end = (pfn + ((size_t)1 << order)) / per;
	if (*end < *first)
		*end = *first;
}

/* A block leaves the free lists: its descriptors will be written again,
 * so the pages given back (if any) count as backed from now on. */
static void desc_unrelease(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t first, end, n = 0;
	desc_span(pfn, order, &first, &end);
	for (size_t p = first; p < end; p++) {
		uint64_t bit = (uint64_t)1 << (p % 64);
		if (z->desc_released[p / 64] & bit) {
			z->desc_released[p / 64] &= ~bit;
			n++;
		}
	}
	if (n)
		mv_relaxed_add(&z->desc_released_pages, -n);
}

/* A free block now unbacked: give back the descriptor pages inside it.
 * Caller holds zone->lock and the block is off the lists. */
static void desc_release(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t first, end, n = 0;
	desc_span(pfn, order, &first, &end);
	for (size_t p = first; p < end;) {
		size_t q = p;
		while (q < end && !(z->desc_released[q / 64] & ((uint64_t)1 << (q % 64))))
			q++;
		if (q > p &&
		    !mv_os_decommit(z->desc_map + p * MV_PAGE_SIZE, (q - p) * MV_PAGE_SIZE)) {
			for (size_t k = p; k < q; k++)
				z->desc_released[k / 64] |= (uint64_t)1 << (k % 64);
			n += q - p;
		}
		p = q + 1;
	}
	if (n)
		mv_relaxed_add(&z->desc_released_pages, n);
}

size_t mv_zone_desc_resident_bytes(const struct mv_zone *z)
{
	return mv_rload(z->desc_committed_bytes) -
	       (mv_relaxed_load(&z->desc_released_pages) << MV_PAGE_SHIFT);
}

size_t mv_zone_bitmaps_resident_bytes(const struct mv_zone *z)
{
	/* the parts of the flag and bit maps that cover the populated pages */
	size_t pop = mv_relaxed_load(&z->populated_pfn);
	size_t words = mv_pageblock_words(pop >> z->pageblock_order) + (pop + 63) / 64 +
		       (pop * sizeof(struct mv_page) / MV_PAGE_SIZE + 63) / 64;
	return MV_MIN(z->pb_words_bytes,
		      mv_align_up(words * sizeof(uint64_t), MV_PAGE_SIZE) + 2 * MV_PAGE_SIZE);
}

static void del_from_free_list(struct mv_zone *z, size_t pfn, unsigned order, int mt)
{
	struct mv_page *pg = &z->desc[pfn];
	uint32_t *head = &z->free_area[order].free_list[mt];
	MV_BUG_ON(mv_pg_load(pg->type) != PG_BUDDY || mv_pg_load(pg->order) != order ||
		      mv_pg_load(pg->mt) != mt,
		  "buddy: pfn %zu is not a free block of order %u on list %d", pfn, order, mt);
	if (pg->lru.next == pfn) {
		*head = NONE;
	} else {
		mv_pg_store(z->desc[pg->lru.prev].lru.next, pg->lru.next);
		mv_pg_store(z->desc[pg->lru.next].lru.prev, pg->lru.prev);
		if (*head == pfn)
			*head = pg->lru.next;
	}
	mv_pg_store(pg->type, (uint8_t)PG_NONE);
	account_free(z, pfn, order, mt, -1,
		     ((size_t)1 << order) - count_unbacked(z, pfn, (size_t)1 << order));
	if (order >= z->pageblock_order)
		desc_unrelease(z, pfn, order);
}

static void set_pageblock_type(struct mv_zone *z, size_t pfn, int mt)
{
	int old = mv_get_pfnblock_migratetype(z, pfn);
	if (old == mt)
		return;
	if (z->page_group_by_mobility_disabled && mt < MIGRATE_PCPTYPES)
		mt = MIGRATE_UNMOVABLE;
	mv_set_pageblock_migratetype(&z->pb, pfn, mt);
	mv_relaxed_add(&z->nr_pageblocks_mt[old], (size_t)-1);
	mv_relaxed_add(&z->nr_pageblocks_mt[mt], 1);
}

/* change_pageblock_range */
static void change_pageblock_range(struct mv_zone *z, size_t pfn, unsigned order, int mt)
{
	size_t n = order >= z->pageblock_order ? (size_t)1 << (order - z->pageblock_order) : 1;
	for (size_t i = 0; i < n; i++)
		set_pageblock_type(z, pfn + i * z->pageblock_nr_pages, mt);
}

/* expand: split a block of order high down to low, halves on mt's lists;
 * returns the part to hand out. The kernel keeps the low half each time;
 * mova keeps the half with more backed pages. Its free pages may be
 * unbacked (never touched, or given back to the OS), the kernel's never
 * are: reusing backed ones costs no page fault and adds nothing to the
 * process's RSS, where a fresh one adds a page to it. */
static size_t expand(struct mv_zone *z, size_t pfn, unsigned low, unsigned high, int mt)
{
	size_t size = (size_t)1 << high;
	size_t unbacked = high > low ? count_unbacked(z, pfn, size) : 0;
	while (high > low) {
		high--;
		size >>= 1;
		/* all backed or none: either half will do */
		size_t lo_unbacked =
		    unbacked && unbacked < 2 * size ? count_unbacked(z, pfn, size) : unbacked / 2;
		size_t hi_unbacked = unbacked - lo_unbacked;
		if (hi_unbacked < lo_unbacked) {
			add_to_free_list(z, pfn, high, mt, false);
			pfn += size;
			unbacked = hi_unbacked;
		} else {
			add_to_free_list(z, pfn + size, high, mt, false);
			unbacked = lo_unbacked;
		}
	}
	return pfn;
}

/* buddy_merge_likely: will the block at pfn merge one order higher soon? */
static bool buddy_merge_likely(const struct mv_zone *z, size_t pfn, size_t buddy_pfn,
			       unsigned order)
{
	if (order >= MV_MAX_PAGE_ORDER - 1)
		return false;
	size_t higher = buddy_pfn & pfn;
	size_t higher_buddy = higher ^ ((size_t)1 << (order + 1));
	if (higher_buddy >= mv_relaxed_load(&z->populated_pfn))
		return false;
	const struct mv_page *b = &z->desc[higher_buddy];
	return mv_pg_load(b->type) == PG_BUDDY && mv_pg_load(b->order) == order + 1;
}

/* __free_one_page: merge as far as the rules allow, then list the result */
static size_t free_one_page_at(struct mv_zone *z, size_t pfn, unsigned order, int mt,
			       unsigned *out_order)
{
	size_t populated = mv_relaxed_load(&z->populated_pfn);
	size_t buddy_pfn = 0;
	bool had_buddy = false;
	while (order < MV_MAX_PAGE_ORDER) {
		buddy_pfn = pfn ^ ((size_t)1 << order);
		had_buddy = true;
		if (buddy_pfn >= populated)
			break;
		struct mv_page *b = &z->desc[buddy_pfn];
		if (mv_pg_load(b->type) != PG_BUDDY || mv_pg_load(b->order) != order)
			break;
		int bmt = mv_pg_load(b->mt);
		if (order >= z->pageblock_order && bmt != mt &&
		    (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(bmt)))
			break;
		del_from_free_list(z, buddy_pfn, order, bmt);
		if (order >= z->pageblock_order && bmt != mt)
			change_pageblock_range(z, buddy_pfn, order, mt);
		pfn &= buddy_pfn;
		order++;
		had_buddy = false;
	}
	bool tail = had_buddy && buddy_merge_likely(z, pfn, pfn ^ ((size_t)1 << order), order);
	add_to_free_list(z, pfn, order, mt, tail);
	if (out_order)
		*out_order = order;
	return pfn;
}

static void free_one_page(struct mv_zone *z, size_t pfn, unsigned order, int mt)
{
	free_one_page_at(z, pfn, order, mt, NULL);
}

/* Free a block; a block larger than a pageblock is freed per pageblock,
 * since its pageblocks may have different types (split_large_buddy). */
static void free_block(struct mv_zone *z, size_t pfn, unsigned order)
{
	if (order <= z->pageblock_order) {
		free_one_page(z, pfn, order, mv_get_pfnblock_migratetype(z, pfn));
		return;
	}
	size_t n = (size_t)1 << (order - z->pageblock_order);
	for (size_t i = 0; i < n; i++) {
		size_t p = pfn + i * z->pageblock_nr_pages;
		free_one_page(z, p, z->pageblock_order, mv_get_pfnblock_migratetype(z, p));
	}
}

static void free_range_locked(struct mv_zone *z, size_t pfn, size_t nr)
{
	while (nr) {
		unsigned order = pfn ? (unsigned)__builtin_ctzl(pfn) : MV_MAX_PAGE_ORDER;
		order = MV_MIN(order, mv_ilog2(nr));
		order = MV_MIN(order, (unsigned)MV_MAX_PAGE_ORDER);
		free_block(z, pfn, order);
		pfn += (size_t)1 << order;
		nr -= (size_t)1 << order;
	}
}

/* Mark [pfn, pfn+nr) backed (the owner will touch it); true if no page of
 * it was backed before, so the pages read as zeros. */
static bool mark_backed(struct mv_zone *z, size_t pfn, size_t nr)
{
	/* a pageblock getting its first backed page is placed (mempolicy) */
	if (unlikely(z->place)) {
		for (size_t b = mv_pageblock_start_pfn(z, pfn); b < pfn + nr;
		     b += z->pageblock_nr_pages)
			if (!any_backed(z, b, z->pageblock_nr_pages))
				z->place(z->place_arg, b >> z->pageblock_order);
	}
	size_t n = set_backed(z, pfn, nr, true);
	if (n)
		mv_relaxed_add(&z->resident_pages, n);
	return n == nr;
}

static void prep_new_page(struct mv_zone *z, size_t pfn, size_t nr, int mt, int type, bool *zeroed)
{
	struct mv_page *pg = &z->desc[pfn];
	mv_pg_store(pg->mt, (uint8_t)mt);
	mv_pg_store(pg->x, (uint32_t)nr);
	mv_pg_store(pg->order, (uint8_t)0);
	mv_pg_store(pg->type, (uint8_t)type);
	bool zero = mark_backed(z, pfn, nr);
	if (zeroed)
		*zeroed = zero;
}

/* ------------------------------------------------------------ growth */

/* Bring pageblocks [populated, end) into the arena, typed mt, and free
 * them into the buddy lists. Caller holds zone->lock. */
static bool grow(struct mv_zone *z, int mt, unsigned order)
{
	size_t start = mv_relaxed_load(&z->populated_pfn);
	size_t blk = (size_t)1 << MV_MAX(order, z->pageblock_order);
	size_t end = mv_align_up(start, blk) + blk;
	if (end > z->nr_pages_max || end < start)
		return false;
	size_t dend = mv_align_up(MV_DESC_COLOR + end * sizeof(struct mv_page), MV_PAGE_SIZE);
	if (dend > z->desc_committed_bytes) {
		if (mv_os_commit(z->desc_map + z->desc_committed_bytes,
				 dend - z->desc_committed_bytes))
			return false;
		mv_rstore(z->desc_committed_bytes, dend);
	}
	if (mv_os_commit(mv_zone_addr(z, start), (end - start) << MV_PAGE_SHIFT))
		return false;
	for (size_t p = start; p < end; p += z->pageblock_nr_pages) {
		/* a fresh pageblock's flags are zero: UNMOVABLE, counted as such */
		mv_relaxed_add(&z->nr_pageblocks_mt[MIGRATE_UNMOVABLE], 1);
		set_pageblock_type(z, p, mt);
		mv_count(z->vm, MV_VM_pageblock_grow, 1);
	}
	atomic_store_explicit(&z->populated_pfn, end, memory_order_release);
	for (size_t p = start; p < end; p += z->pageblock_nr_pages)
		free_one_page(z, p, z->pageblock_order, mv_get_pfnblock_migratetype(z, p));
	return true;
}

size_t mv_buddy_grow_free(struct mv_zone *z, size_t nr_pb, int mt)
{
	size_t pbn = z->pageblock_nr_pages;
	mv_lock(&z->lock);
	size_t start = mv_relaxed_load(&z->populated_pfn);
	size_t end = start + nr_pb * pbn;
	if (!nr_pb || nr_pb > z->nr_pages_max / pbn || end > z->nr_pages_max || end < start)
		goto fail;
	size_t dend = mv_align_up(MV_DESC_COLOR + end * sizeof(struct mv_page), MV_PAGE_SIZE);
	if (dend > z->desc_committed_bytes) {
		if (mv_os_commit(z->desc_map + z->desc_committed_bytes,
				 dend - z->desc_committed_bytes))
			goto fail;
		mv_rstore(z->desc_committed_bytes, dend);
	}
	if (mv_os_commit(mv_zone_addr(z, start), (end - start) << MV_PAGE_SHIFT))
		goto fail;
	for (size_t p = start; p < end; p += pbn) {
		mv_relaxed_add(&z->nr_pageblocks_mt[MIGRATE_UNMOVABLE], 1);
		set_pageblock_type(z, p, mt);
		mv_count(z->vm, MV_VM_pageblock_grow, 1);
	}
	atomic_store_explicit(&z->populated_pfn, end, memory_order_release);
	/* never touched: no backed bit is set, nothing is resident. Freed in
	 * max-order blocks where aligned (one type throughout): a descriptor
	 * page is touched per block, not per pageblock (32 GiB of CMA: 8192
	 * page faults instead of 16384 and their merges) */
	size_t max = (size_t)1 << MV_MAX_PAGE_ORDER, p = start;
	while (p < end && (p & (max - 1)))
		p += pbn;
	free_range_locked(z, start, p - start);
	for (; p + max <= end; p += max)
		free_one_page(z, p, MV_MAX_PAGE_ORDER, mt);
	free_range_locked(z, p, end - p);
	mv_unlock(&z->lock);
	return start;
fail:
	mv_unlock(&z->lock);
	return NONE;
}

/* ------------------------------------------------------------ allocation */

/* Of the first few blocks on a free list, one that holds a backed page
 * (see expand), else the first. Frees go to the head, so a backed block
 * is usually first; grown and given-back blocks are not. */
#define MV_BACKED_SCAN 8

static uint32_t pick_backed(const struct mv_zone *z, uint32_t head, unsigned order)
{
	uint32_t pfn = head;
	for (int i = 0; i < MV_BACKED_SCAN; i++) {
		if (any_backed(z, pfn, (size_t)1 << order))
			return pfn;
		pfn = z->desc[pfn].lru.next;
		if (pfn == head)
			break;
	}
	return head;
}

static size_t rmqueue_smallest(struct mv_zone *z, unsigned order, int mt)
{
	for (unsigned o = order; o < MV_NR_PAGE_ORDERS; o++) {
		uint32_t pfn = z->free_area[o].free_list[mt];
		if (pfn == NONE)
			continue;
		pfn = pick_backed(z, pfn, o);
		del_from_free_list(z, pfn, o, mt);
		return expand(z, pfn, order, o, mt);
	}
	return NONE;
}

bool mv_can_steal_fallback(const struct mv_zone *z, unsigned order, int start_mt)
{
	if (order >= z->pageblock_order)
		return true;
	return order >= z->pageblock_order / 2 || start_mt == MIGRATE_RECLAIMABLE ||
	       start_mt == MIGRATE_UNMOVABLE || z->page_group_by_mobility_disabled;
}

int mv_find_suitable_fallback(const struct mv_zone *z, unsigned order, int mt, bool only_stealable,
			      bool *can_steal)
{
	const struct mv_free_area *area = &z->free_area[order];
	if (area->nr_free == 0)
		return -1;
	*can_steal = false;
	for (int i = 0; i < MIGRATE_PCPTYPES - 1; i++) {
		int fmt = mv_fallbacks[mt][i];
		if (area->free_list[fmt] == NONE)
			continue;
		if (mv_can_steal_fallback(z, order, mt))
			*can_steal = true;
		if (!only_stealable || *can_steal)
			return fmt;
	}
	return -1;
}

void mv_prep_move_freepages_block(struct mv_zone *z, size_t pfn, size_t *free_pages,
				  size_t *movable_pages)
{
	size_t start = mv_pageblock_start_pfn(z, pfn), end = start + z->pageblock_nr_pages;
	size_t nfree = 0, nmov = 0;
	for (size_t p = start; p < end;) {
		const struct mv_page *pg = &z->desc[p];
		uint8_t type = mv_pg_load((pg->type));
		if (type == PG_BUDDY) {
			size_t n = (size_t)1 << mv_pg_load(pg->order);
			nfree += n;
			p += n;
			continue;
		}
		if (type == PG_PCP) {
			p += (size_t)1 << mv_pg_load((pg->order));
			continue;
		}
		if (type == PG_SLAB) {
			nmov += is_migrate_movable(mv_pg_load((pg->mt)));
			p++;
			continue;
		}
		if (type == PG_ALLOC || type == PG_LARGE || type == PG_CONTIG) {
			size_t n = MV_MAX(mv_pg_load((pg->x)), 1u);
			if (is_migrate_movable(mv_pg_load((pg->mt))))
				nmov += MV_MIN(n, end - p);
			p += n;
			continue;
		}
		p++;
	}
	*free_pages = nfree;
	*movable_pages = nmov;
}

/* Split a free block larger than a pageblock that covers pfn into
 * pageblock-order blocks on their own pageblocks' lists. */
static void split_large_free_block(struct mv_zone *z, size_t pfn)
{
	for (unsigned o = z->pageblock_order + 1; o < MV_NR_PAGE_ORDERS; o++) {
		size_t head = pfn & ~(((size_t)1 << o) - 1);
		if (head >= mv_relaxed_load(&z->populated_pfn))
			return;
		struct mv_page *pg = &z->desc[head];
		if (mv_pg_load(pg->type) == PG_BUDDY && mv_pg_load(pg->order) == o) {
			del_from_free_list(z, head, o, mv_pg_load(pg->mt));
			size_t n = (size_t)1 << (o - z->pageblock_order);
			for (size_t i = 0; i < n; i++) {
				size_t p = head + i * z->pageblock_nr_pages;
				add_to_free_list(z, p, z->pageblock_order,
						 mv_get_pfnblock_migratetype(z, p), false);
			}
			return;
		}
	}
}

size_t mv_move_freepages_block(struct mv_zone *z, size_t pfn, int new_mt)
{
	size_t start = mv_pageblock_start_pfn(z, pfn), end = start + z->pageblock_nr_pages;
	size_t moved = 0;
	split_large_free_block(z, start);
	for (size_t p = start; p < end;) {
		struct mv_page *pg = &z->desc[p];
		if (mv_pg_load(pg->type) == PG_BUDDY) {
			unsigned o = mv_pg_load(pg->order);
			int old = mv_pg_load(pg->mt);
			del_from_free_list(z, p, o, old);
			add_to_free_list(z, p, o, new_mt, false);
			moved += (size_t)1 << o;
			p += (size_t)1 << o;
			continue;
		}
		if (mv_pg_load(pg->type) == PG_PCP) {
			p += (size_t)1 << mv_pg_load(pg->order);
			continue;
		}
		p++;
	}
	set_pageblock_type(z, start, new_mt);
	return moved;
}

/* steal_suitable_fallback: claim the whole pageblock or take one block */
static size_t steal_suitable_fallback(struct mv_zone *z, size_t pfn, unsigned current_order,
				      unsigned order, int start_type, bool whole_block)
{
	int block_type = mv_get_pfnblock_migratetype(z, pfn);
	int list_type = mv_pg_load(z->desc[pfn].mt);
	if (block_type == MIGRATE_HIGHATOMIC)
		goto single_page;
	if (current_order >= z->pageblock_order) {
		del_from_free_list(z, pfn, current_order, list_type);
		change_pageblock_range(z, pfn, current_order, start_type);
		pfn = expand(z, pfn, order, current_order, start_type);
		mv_count(z->vm, MV_VM_pageblock_claim, 1);
		return pfn;
	}
	/* a fallback into a mixed pageblock: what boost_watermark answers */
	if (atomic_load_explicit(&z->wake_order, memory_order_relaxed) < (int)z->pageblock_order)
		atomic_store_explicit(&z->wake_order, (int)z->pageblock_order,
				      memory_order_relaxed);
	if (!whole_block)
		goto single_page;
	size_t free_pages, movable_pages, alike;
	mv_prep_move_freepages_block(z, pfn, &free_pages, &movable_pages);
	if (start_type == MIGRATE_MOVABLE)
		alike = movable_pages;
	else if (block_type == MIGRATE_MOVABLE)
		alike = z->pageblock_nr_pages - (free_pages + movable_pages);
	else
		alike = 0;
	if (free_pages + alike >= ((size_t)1 << (z->pageblock_order - 1)) ||
	    z->page_group_by_mobility_disabled) {
		mv_move_freepages_block(z, pfn, start_type);
		mv_count(z->vm, MV_VM_pageblock_claim, 1);
		return rmqueue_smallest(z, order, start_type);
	}
single_page:
	del_from_free_list(z, pfn, current_order, list_type);
	pfn = expand(z, pfn, order, current_order, list_type);
	mv_count(z->vm, MV_VM_pageblock_steal, 1);
	return pfn;
}

/* __rmqueue_fallback */
static size_t rmqueue_fallback(struct mv_zone *z, unsigned order, int start_mt, unsigned flags)
{
	unsigned min_order = order;
	bool can_steal = false;
	int fmt = -1;
	int current_order;
	if (order < z->pageblock_order && (flags & MV_ALLOC_NOFRAGMENT))
		min_order = z->pageblock_order;
	for (current_order = MV_MAX_PAGE_ORDER; current_order >= (int)min_order; current_order--) {
		fmt = mv_find_suitable_fallback(z, (unsigned)current_order, start_mt, false,
						&can_steal);
		if (fmt == -1)
			continue;
		/* a movable request that cannot claim the block takes the smallest block */
		if (!can_steal && start_mt == MIGRATE_MOVABLE && (unsigned)current_order > order)
			goto find_smallest;
		goto do_steal;
	}
	return NONE;
find_smallest:
	for (current_order = (int)order; current_order < MV_NR_PAGE_ORDERS; current_order++) {
		fmt = mv_find_suitable_fallback(z, (unsigned)current_order, start_mt, false,
						&can_steal);
		if (fmt != -1)
			break;
	}
	if (current_order >= MV_NR_PAGE_ORDERS)
		return NONE;
do_steal:;
	size_t pfn = z->free_area[current_order].free_list[fmt];
	return steal_suitable_fallback(z, pfn, (unsigned)current_order, order, start_mt, can_steal);
}

static size_t rmqueue(struct mv_zone *z, unsigned order, int mt, unsigned flags)
{
	size_t pfn;
	/* without grouping every request is UNMOVABLE for the lists, as
	 * gfp_migratetype() makes it; the descriptor keeps the caller's type */
	if (z->page_group_by_mobility_disabled && mt < MIGRATE_PCPTYPES)
		mt = MIGRATE_UNMOVABLE;
	bool cma = (flags & MV_ALLOC_CMA) && mt == MIGRATE_MOVABLE;
	if (mt >= MIGRATE_PCPTYPES) /* CMA, HIGHATOMIC, ISOLATE: their own lists only */
		return rmqueue_smallest(z, order, mt);
	/* balance CMA use: take CMA first when it holds over half of the free pages */
	if (cma && z->nr_free_pages_mt[MIGRATE_CMA] > mv_relaxed_load(&z->nr_free_pages) / 2) {
		pfn = rmqueue_smallest(z, order, MIGRATE_CMA);
		if (pfn != NONE)
			return pfn;
	}
	pfn = rmqueue_smallest(z, order, mt);
	if (pfn != NONE)
		return pfn;
	if (cma) {
		pfn = rmqueue_smallest(z, order, MIGRATE_CMA);
		if (pfn != NONE)
			return pfn;
	}
	if (!z->page_group_by_mobility_disabled) {
		pfn = rmqueue_fallback(z, order, mt, flags | MV_ALLOC_NOFRAGMENT);
		if (pfn != NONE)
			return pfn;
	}
	if (!(flags & MV_ALLOC_NOGROW) && grow(z, mt, order)) {
		pfn = rmqueue_smallest(z, order, mt);
		if (pfn != NONE)
			return pfn;
	}
	return rmqueue_fallback(z, order, mt, flags & ~MV_ALLOC_NOFRAGMENT);
}

static void note_failure(struct mv_zone *z, unsigned order)
{
	int cur = atomic_load_explicit(&z->wake_order, memory_order_relaxed);
	while (cur < (int)order &&
	       !atomic_compare_exchange_weak_explicit(&z->wake_order, &cur, (int)order,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

size_t mv_buddy_alloc(struct mv_zone *z, unsigned order, int mt, unsigned alloc_flags, bool *zeroed)
{
	if (order > MV_MAX_PAGE_ORDER)
		return NONE;
	bool limited = false;
	mv_lock(&z->lock);
	size_t pfn = rmqueue(z, order, mt, alloc_flags);
	if (pfn != NONE && over_limit(z, pfn, (size_t)1 << order)) {
		free_block(z, pfn, order);
		pfn = NONE;
		limited = true;
	}
	if (pfn != NONE)
		prep_new_page(z, pfn, (size_t)1 << order, mt, PG_ALLOC, zeroed);
	mv_unlock(&z->lock);
	if (pfn != NONE)
		mv_count(z->vm, MV_VM_pgalloc, 1);
	else if (!limited)
		note_failure(z, order);
	return pfn;
}

size_t mv_buddy_alloc_exact(struct mv_zone *z, size_t nr, int mt, unsigned alloc_flags,
			    bool *zeroed)
{
	unsigned order = mv_order_for_pages(nr);
	if (order > MV_MAX_PAGE_ORDER)
		return NONE;
	bool limited = false;
	mv_lock(&z->lock);
	size_t pfn = rmqueue(z, order, mt, alloc_flags);
	if (pfn != NONE && over_limit(z, pfn, nr)) {
		free_block(z, pfn, order);
		pfn = NONE;
		limited = true;
	}
	if (pfn != NONE) {
		prep_new_page(z, pfn, nr, mt, PG_ALLOC, zeroed);
		free_range_locked(z, pfn + nr, ((size_t)1 << order) - nr);
	}
	mv_unlock(&z->lock);
	if (pfn != NONE)
		mv_count(z->vm, MV_VM_pgalloc, 1);
	else if (!limited)
		note_failure(z, order);
	return pfn;
}

void mv_buddy_free(struct mv_zone *z, size_t pfn, unsigned order)
{
	mv_lock(&z->lock);
	free_block(z, pfn, order);
	mv_unlock(&z->lock);
	mv_count(z->vm, MV_VM_pgfree, 1);
}

void mv_buddy_free_range(struct mv_zone *z, size_t pfn, size_t nr)
{
	mv_lock(&z->lock);
	free_range_locked(z, pfn, nr);
	mv_unlock(&z->lock);
	mv_count(z->vm, MV_VM_pgfree, 1);
}

unsigned mv_buddy_rmqueue_bulk(struct mv_zone *z, unsigned order, int mt, unsigned count,
			       uint32_t *out, bool *zeroed)
{
	unsigned n = 0;
	bool all_zero = true, limited = false;
	mv_lock(&z->lock);
	for (; n < count; n++) {
		size_t pfn = rmqueue(z, order, mt, mt == MIGRATE_MOVABLE ? MV_ALLOC_CMA : 0);
		if (pfn == NONE)
			break;
		if (over_limit(z, pfn, (size_t)1 << order)) {
			free_block(z, pfn, order);
			limited = true;
			break;
		}
		bool zero;
		prep_new_page(z, pfn, (size_t)1 << order, mt, PG_PCP, &zero);
		mv_pg_store(z->desc[pfn].order, (uint8_t)order);
		all_zero &= zero;
		out[n] = (uint32_t)pfn;
	}
	mv_unlock(&z->lock);
	if (zeroed)
		*zeroed = all_zero && n;
	if (n)
		mv_count(z->vm, MV_VM_pgalloc, n);
	else if (!limited)
		note_failure(z, order);
	return n;
}

void mv_buddy_free_bulk(struct mv_zone *z, const uint32_t *pfns, unsigned n, unsigned order)
{
	mv_lock(&z->lock);
	for (unsigned i = 0; i < n; i++)
		free_block(z, pfns[i], order);
	mv_unlock(&z->lock);
	mv_count(z->vm, MV_VM_pgfree, n);
}

/* ------------------------------------------------------------ pageblock runs */

/* The free block covering pfn (head, order), if pfn's pageblock is wholly free. */
static bool pageblock_free_block(const struct mv_zone *z, size_t pfn, size_t *head, unsigned *order)
{
	for (unsigned o = z->pageblock_order; o < MV_NR_PAGE_ORDERS; o++) {
		size_t h = pfn & ~(((size_t)1 << o) - 1);
		const struct mv_page *pg = &z->desc[h];
		if (mv_pg_load(pg->type) == PG_BUDDY && mv_pg_load(pg->order) == o) {
			*head = h;
			*order = o;
			return true;
		}
	}
	return false;
}

static bool pageblock_claimable(const struct mv_zone *z, size_t pfn)
{
	size_t h;
	unsigned o;
	int mt = mv_get_pfnblock_migratetype(z, pfn);
	return migratetype_is_mergeable(mt) && pageblock_free_block(z, pfn, &h, &o);
}

size_t mv_buddy_alloc_pageblocks(struct mv_zone *z, size_t nr_pb, int mt, bool *zeroed)
{
	size_t pbn = z->pageblock_nr_pages, need = nr_pb * pbn;
	if (nr_pb == 0 || nr_pb > z->nr_pages_max / pbn)
		return NONE;
	mv_lock(&z->lock);
	size_t populated = mv_relaxed_load(&z->populated_pfn);
	size_t run_start = 0, run = 0, found = NONE;
	for (size_t p = 0; p < populated; p += pbn) {
		if (pageblock_claimable(z, p)) {
			if (!run)
				run_start = p;
			run += pbn;
			if (run >= need) {
				found = run_start;
				break;
			}
		} else {
			run = 0;
		}
	}
	if (found == NONE) {
		/* extend a free run that reaches the top, or start at the top */
		size_t start = run ? run_start : populated;
		size_t end = start + need;
		if (end > z->nr_pages_max || end < start)
			goto fail;
		size_t dend =
		    mv_align_up(MV_DESC_COLOR + end * sizeof(struct mv_page), MV_PAGE_SIZE);
		if (dend > z->desc_committed_bytes) {
			if (mv_os_commit(z->desc_map + z->desc_committed_bytes,
					 dend - z->desc_committed_bytes))
				goto fail;
			mv_rstore(z->desc_committed_bytes, dend);
		}
		if (mv_os_commit(mv_zone_addr(z, populated), (end - populated) << MV_PAGE_SHIFT))
			goto fail;
		for (size_t p = populated; p < end; p += pbn) {
			mv_relaxed_add(&z->nr_pageblocks_mt[MIGRATE_UNMOVABLE], 1);
			mv_count(z->vm, MV_VM_pageblock_grow, 1);
		}
		atomic_store_explicit(&z->populated_pfn, end, memory_order_release);
		found = start;
		populated = end;
	}
	/* take every free block overlapping the run; give back what sticks out */
	for (size_t p = found; p < found + need && p < populated; p += pbn) {
		size_t head;
		unsigned o;
		if (!pageblock_free_block(z, p, &head, &o))
			continue; /* freshly populated */
		del_from_free_list(z, head, o, mv_pg_load(z->desc[head].mt));
		size_t bend = head + ((size_t)1 << o);
		if (head < found)
			free_range_locked(z, head, found - head);
		if (bend > found + need)
			free_range_locked(z, found + need, bend - (found + need));
	}
	if (over_limit(z, found, need)) {
		free_range_locked(z, found, need);
		mv_unlock(&z->lock);
		return NONE;
	}
	for (size_t p = found; p < found + need; p += pbn)
		set_pageblock_type(z, p, mt);
	prep_new_page(z, found, need, mt, PG_ALLOC, zeroed);
	mv_unlock(&z->lock);
	mv_count(z->vm, MV_VM_pgalloc, 1);
	return found;
fail:
	mv_unlock(&z->lock);
	note_failure(z, MV_MAX_PAGE_ORDER);
	return NONE;
}

/* the free block covering pfn: head and order, or false */
static bool covering_free_block(const struct mv_zone *z, size_t pfn, size_t *head, unsigned *order)
{
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		size_t h = pfn & ~(((size_t)1 << o) - 1);
		const struct mv_page *pg = &z->desc[h];
		if (mv_pg_load(pg->type) == PG_BUDDY && mv_pg_load(pg->order) == o) {
			*head = h;
			*order = o;
			return true;
		}
	}
	return false;
}

bool mv_buddy_claim_range(struct mv_zone *z, size_t pfn, size_t nr, bool isolated_ok)
{
	size_t end = pfn + nr, head;
	unsigned o;
	mv_lock(&z->lock);
	if (end > mv_relaxed_load(&z->populated_pfn) || end < pfn) {
		mv_unlock(&z->lock);
		return false;
	}
	for (size_t p = pfn; p < end; p = head + ((size_t)1 << o)) {
		if (!covering_free_block(z, p, &head, &o) ||
		    (!isolated_ok && mv_get_pfnblock_migratetype(z, p) == MIGRATE_ISOLATE)) {
			mv_unlock(&z->lock);
			return false;
		}
	}
	if (over_limit(z, pfn, nr)) {
		mv_unlock(&z->lock);
		return false;
	}
	for (size_t p = pfn; p < end;) {
		covering_free_block(z, p, &head, &o);
		size_t bend = head + ((size_t)1 << o);
		del_from_free_list(z, head, o, mv_pg_load(z->desc[head].mt));
		if (head < pfn)
			free_range_locked(z, head, pfn - head);
		if (bend > end)
			free_range_locked(z, end, bend - end);
		p = bend;
	}
	mark_backed(z, pfn, nr);
	mv_unlock(&z->lock);
	mv_count(z->vm, MV_VM_pgalloc, 1);
	return true;
}

unsigned mv_buddy_isolate_freepages_block(struct mv_zone *z, size_t pfn, unsigned max_order,
					  uint32_t *pfns, uint8_t *orders, unsigned max,
					  size_t *scanned)
{
	size_t start = mv_pageblock_start_pfn(z, pfn), end = start + z->pageblock_nr_pages;
	unsigned n = 0;
	size_t seen = 0;
	mv_lock(&z->lock);
	for (size_t p = start; p < end && n < max;) {
		struct mv_page *pg = &z->desc[p];
		seen++;
		if (mv_pg_load(pg->type) == PG_BUDDY) {
			unsigned o = mv_pg_load(pg->order);
			if (o < max_order && mv_pg_load(pg->mt) != MIGRATE_ISOLATE) {
				del_from_free_list(z, p, o, mv_pg_load(pg->mt));
				prep_new_page(z, p, (size_t)1 << o,
					      mv_get_pfnblock_migratetype(z, p), PG_ALLOC, NULL);
				pfns[n] = (uint32_t)p;
				orders[n] = (uint8_t)o;
				n++;
			}
			p += (size_t)1 << o;
			continue;
		}
		if (mv_pg_load(pg->type) == PG_PCP) {
			p += (size_t)1 << mv_pg_load(pg->order);
			continue;
		}
		if ((mv_pg_load(pg->type) == PG_ALLOC || mv_pg_load(pg->type) == PG_LARGE ||
		     mv_pg_load(pg->type) == PG_CONTIG) &&
		    mv_pg_load(pg->x)) {
			p += mv_pg_load(pg->x);
			continue;
		}
		p++;
	}
	mv_unlock(&z->lock);
	if (scanned)
		*scanned += seen;
	return n;
}

/* ------------------------------------------------------------ giving back */

#define RETURN_BATCH 64

/* Free a block that was just given back (free_block), and give back the
 * descriptors of the unbacked block it merged into: only blocks that went
 * back become wholly unbacked, so this is the one place to do it. */
static void free_given_back(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t n = order <= z->pageblock_order ? 1 : (size_t)1 << (order - z->pageblock_order);
	unsigned o1 = MV_MIN(order, z->pageblock_order);
	for (size_t i = 0; i < n; i++) {
		size_t p = pfn + (i << o1);
		unsigned o;
		size_t head = free_one_page_at(z, p, o1, mv_get_pfnblock_migratetype(z, p), &o);
		if (o >= z->pageblock_order && !any_backed(z, head, (size_t)1 << o))
			desc_release(z, head, o);
	}
}

/* Take up to RETURN_BATCH backed free blocks of order min_order or more
 * off the lists, the largest first (the smallest first for decay), while *excess (pageblocks, or pages
 * when by_pages) says more should go. Lists without a backed block are
 * skipped, and a list's walk ends once it has seen all its backed blocks,
 * which sit at the head (add_to_free_list): free pageblocks that were never
 * backed (CMA reserved at creation, the arena's grown top) cost nothing. */
static unsigned take_backed(struct mv_zone *z, unsigned min_order, bool whole, bool by_pages,
			    size_t *excess, size_t *batch_pfn, unsigned *batch_order)
{
	/* decay (by_pages) gives back the smallest blocks first: the memory
	 * left idle is mostly fragments, and a large block kept backed is what
	 * the next large request reuses without faulting (largest first, a
	 * 4-thread realloc churn faulted 36 times per realloc, 2.5 so) */
	bool smallest_first = by_pages;
	unsigned n = 0;
	for (int i = 0; i <= MV_MAX_PAGE_ORDER - (int)min_order && *excess && n < RETURN_BATCH;
	     i++) {
		int o = smallest_first ? (int)min_order + i : MV_MAX_PAGE_ORDER - i;
		struct mv_free_area *area = &z->free_area[o];
		for (int mt = 0; mt < MIGRATE_TYPES && *excess && n < RETURN_BATCH; mt++) {
			if (mt == MIGRATE_ISOLATE || !area->nr_backed_mt[mt])
				continue;
			uint64_t steps = area->nr_free_mt[mt], want = area->nr_backed_mt[mt];
			uint32_t pfn = area->free_list[mt];
			while (steps-- && want && *excess && n < RETURN_BATCH) {
				/* unlinking pfn leaves next valid: the list is circular
				 * and steps bounds the walk */
				uint32_t next = z->desc[pfn].lru.next;
				size_t nr = (size_t)1 << o;
				size_t bp = nr - count_unbacked(z, pfn, nr);
				if (bp) {
					want--;
					size_t nb = backed_pageblocks(z, pfn, (unsigned)o);
					del_from_free_list(z, pfn, (unsigned)o, mt);
					/* off the lists and unmergeable while the lock is dropped */
					mv_pg_store(z->desc[pfn].type, (uint8_t)PG_ALLOC);
					mv_pg_store(z->desc[pfn].x, (uint32_t)nr);
					batch_pfn[n] = pfn;
					batch_order[n] = (unsigned)o;
					n++;
					if (by_pages)
						*excess = *excess > bp ? *excess - bp : 0;
					else if (whole)
						*excess = *excess > nb ? *excess - nb : 0;
				}
				pfn = next;
			}
		}
	}
	return n;
}

static size_t return_free(struct mv_zone *z, size_t keep, unsigned min_order, size_t max_pages)
{
	size_t batch_pfn[RETURN_BATCH];
	unsigned batch_order[RETURN_BATCH];
	bool ok[RETURN_BATCH];
	bool by_pages = max_pages != SIZE_MAX;
	bool whole = !by_pages && min_order >= z->pageblock_order;
	size_t returned = 0;
	/* At most what was resident when the call began: the lock is dropped
	 * around every batch of madvise calls, and pages other threads free
	 * meanwhile (allocated, backed, freed) are the next call's. Without
	 * this bound a call went on while any backed free block remained, so
	 * threads freeing faster than madvise returns kept it looping for as
	 * long as they ran (docs/MIGRATION.md section 9, item 7). */
	size_t budget = mv_relaxed_load(&z->resident_pages);
	for (;;) {
		mv_lock(&z->lock);
		size_t excess;
		if (by_pages) {
			excess = max_pages > returned ? max_pages - returned : 0;
		} else if (whole) {
			size_t fpb = mv_relaxed_load(&z->free_pb_backed);
			excess = fpb > keep ? fpb - keep : 0;
		} else {
			excess = SIZE_MAX;
		}
		/* taking blocks off the lists is no dip in demand: the low
		 * mark goes back to what it was, or to what is left */
		size_t low = mv_relaxed_load(&z->free_backed_low);
		unsigned n =
		    take_backed(z, min_order, whole, by_pages, &excess, batch_pfn, batch_order);
		mv_relaxed_store(&z->free_backed_low, low);
		mv_unlock(&z->lock);
		if (!n)
			break;
		for (unsigned i = 0; i < n; i++)
			ok[i] = !mv_os_decommit(mv_zone_addr(z, batch_pfn[i]),
						((size_t)1 << batch_order[i]) << MV_PAGE_SHIFT);
		size_t done = 0;
		mv_lock(&z->lock);
		for (unsigned i = 0; i < n; i++) {
			if (ok[i]) {
				size_t cleared =
				    set_backed(z, batch_pfn[i], (size_t)1 << batch_order[i], false);
				mv_relaxed_add(&z->resident_pages, -cleared);
				done += cleared;
			}
			free_given_back(z, batch_pfn[i], batch_order[i]);
		}
		mv_relaxed_store(&z->free_backed_low,
				 MV_MIN(mv_relaxed_load(&z->free_backed_low),
					mv_relaxed_load(&z->free_backed_pages)));
		mv_unlock(&z->lock);
		mv_count(z->vm, MV_VM_pages_returned, done);
		returned += done;
		if (!done) /* the OS refused: do not spin */
			break;
		if (returned >= budget)
			break;
	}
	return returned;
}

size_t mv_zone_return_free(struct mv_zone *z, size_t keep, unsigned min_order)
{
	return return_free(z, keep, min_order, SIZE_MAX);
}

size_t mv_zone_return_pages(struct mv_zone *z, size_t nr_pages)
{
	return nr_pages ? return_free(z, 0, 0, nr_pages) : 0;
}

size_t mv_zone_free_backed_low(struct mv_zone *z)
{
	mv_lock(&z->lock);
	size_t low = mv_relaxed_load(&z->free_backed_low);
	mv_relaxed_store(&z->free_backed_low, mv_relaxed_load(&z->free_backed_pages));
	mv_unlock(&z->lock);
	return low;
}

/* ------------------------------------------------------------ isolation */

int mv_zone_isolate_pageblock(struct mv_zone *z, size_t pfn)
{
	mv_lock(&z->lock);
	if (mv_get_pfnblock_migratetype(z, pfn) == MIGRATE_ISOLATE) {
		mv_unlock(&z->lock);
		return EBUSY;
	}
	mv_move_freepages_block(z, pfn, MIGRATE_ISOLATE);
	z->nr_isolate_pageblock++;
	mv_unlock(&z->lock);
	return 0;
}

void mv_zone_unisolate_pageblock(struct mv_zone *z, size_t pfn, int mt)
{
	mv_lock(&z->lock);
	size_t start = mv_pageblock_start_pfn(z, pfn);
	if (mv_get_pfnblock_migratetype(z, start) != MIGRATE_ISOLATE) {
		mv_unlock(&z->lock);
		return;
	}
	mv_move_freepages_block(z, start, mt);
	z->nr_isolate_pageblock--;
	/* a wholly free pageblock may now merge with its neighbours */
	struct mv_page *pg = &z->desc[start];
	if (mv_pg_load(pg->type) == PG_BUDDY && mv_pg_load(pg->order) == z->pageblock_order) {
		del_from_free_list(z, start, z->pageblock_order, mv_pg_load(pg->mt));
		free_one_page(z, start, z->pageblock_order, mt);
	}
	mv_unlock(&z->lock);
}

/* ------------------------------------------------------------ fragmentation */

struct mv_contig_page_info {
	size_t free_pages, free_blocks_total, free_blocks_suitable;
};

static void fill_contig_page_info(const struct mv_zone *z, unsigned order,
				  struct mv_contig_page_info *info)
{
	info->free_pages = info->free_blocks_total = info->free_blocks_suitable = 0;
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS; o++) {
		uint64_t blocks = z->free_area[o].nr_free;
		info->free_blocks_total += blocks;
		info->free_pages += blocks << o;
		if (o >= order)
			info->free_blocks_suitable += blocks << (o - order);
	}
}

int mv_fragmentation_index(const struct mv_zone *z, unsigned order)
{
	struct mv_contig_page_info info;
	fill_contig_page_info(z, order, &info);
	if (!info.free_blocks_total)
		return 0;
	if (info.free_blocks_suitable)
		return -1000;
	return (int)(1000 - (1000 + info.free_pages * 1000 / ((size_t)1 << order)) /
				info.free_blocks_total);
}

static unsigned extfrag_for_order(const struct mv_zone *z, unsigned order)
{
	struct mv_contig_page_info info;
	fill_contig_page_info(z, order, &info);
	if (!info.free_pages)
		return 0;
	return (unsigned)((info.free_pages - (info.free_blocks_suitable << order)) * 100 /
			  info.free_pages);
}

unsigned mv_fragmentation_score(const struct mv_zone *z)
{
	return extfrag_for_order(z, z->pageblock_order);
}

/* ------------------------------------------------------------ verification */

const char *mv_zone_verify(struct mv_zone *z)
{
	static char msg[256];
	const char *err = NULL;
	mv_lock(&z->lock);
	size_t populated = mv_relaxed_load(&z->populated_pfn);
	size_t pages_mt[MIGRATE_TYPES] = {0}, backed_free = 0, total_nonisolate = 0;
	for (unsigned o = 0; o < MV_NR_PAGE_ORDERS && !err; o++) {
		uint64_t blocks = 0;
		for (int mt = 0; mt < MIGRATE_TYPES && !err; mt++) {
			uint64_t n = 0;
			uint32_t head = z->free_area[o].free_list[mt], pfn = head;
			while (pfn != NONE) {
				const struct mv_page *pg = &z->desc[pfn];
				if (pfn >= populated || (pfn & (((size_t)1 << o) - 1)))
					snprintf(msg, sizeof msg,
						 "free block %u order %u out of place", pfn, o),
					    err = msg;
				else if (mv_pg_load(pg->type) != PG_BUDDY ||
					 mv_pg_load(pg->order) != o || mv_pg_load(pg->mt) != mt)
					snprintf(msg, sizeof msg,
						 "free block %u on list (%u,%d) has descriptor "
						 "(%u,%u,%u)",
						 pfn, o, mt, mv_pg_load(pg->type),
						 mv_pg_load(pg->order), mv_pg_load(pg->mt)),
					    err = msg;
				else if (o < z->pageblock_order &&
					 mv_get_pfnblock_migratetype(z, pfn) != mt &&
					 mt != MIGRATE_ISOLATE &&
					 mv_get_pfnblock_migratetype(z, pfn) != MIGRATE_ISOLATE)
					snprintf(msg, sizeof msg,
						 "free block %u order %u on list %d in a pageblock "
						 "of type %d",
						 pfn, o, mt, mv_get_pfnblock_migratetype(z, pfn)),
					    err = msg;
				if (err)
					break;
				/* fully merged? */
				size_t b = pfn ^ ((size_t)1 << o);
				if (o < MV_MAX_PAGE_ORDER && b < populated &&
				    mv_pg_load(z->desc[b].type) == PG_BUDDY &&
				    mv_pg_load(z->desc[b].order) == o) {
					int bmt = mv_pg_load(z->desc[b].mt);
					bool can = o < z->pageblock_order || bmt == mt ||
						   (migratetype_is_mergeable(mt) &&
						    migratetype_is_mergeable(bmt));
					if (can) {
						snprintf(
						    msg, sizeof msg,
						    "free blocks %u and %zu of order %u not merged",
						    pfn, b, o);
						err = msg;
						break;
					}
				}
				pages_mt[mt] += (size_t)1 << o;
				backed_free += backed_pageblocks(z, pfn, o);
				n++;
				pfn = pg->lru.next;
				if (pfn == head)
					break;
				if (n > z->nr_pages_max) {
					snprintf(msg, sizeof msg, "list (%u,%d) does not close", o,
						 mt);
					err = msg;
					break;
				}
			}
			if (!err && n != z->free_area[o].nr_free_mt[mt])
				snprintf(msg, sizeof msg,
					 "order %u type %d: %lu blocks listed, %lu counted", o, mt,
					 (unsigned long)n,
					 (unsigned long)z->free_area[o].nr_free_mt[mt]),
				    err = msg;
			blocks += n;
		}
		if (!err && blocks != z->free_area[o].nr_free)
			snprintf(msg, sizeof msg, "order %u: nr_free %lu, lists hold %lu", o,
				 (unsigned long)z->free_area[o].nr_free, (unsigned long)blocks),
			    err = msg;
	}
	for (int mt = 0; mt < MIGRATE_TYPES && !err; mt++) {
		if (pages_mt[mt] != z->nr_free_pages_mt[mt])
			snprintf(msg, sizeof msg, "type %d: %zu free pages listed, %zu counted", mt,
				 pages_mt[mt], z->nr_free_pages_mt[mt]),
			    err = msg;
		if (mt != MIGRATE_ISOLATE)
			total_nonisolate += pages_mt[mt];
	}
	if (!err && total_nonisolate != mv_relaxed_load(&z->nr_free_pages))
		snprintf(msg, sizeof msg, "nr_free_pages %zu, lists hold %zu",
			 mv_relaxed_load(&z->nr_free_pages), total_nonisolate),
		    err = msg;
	if (!err && backed_free != mv_relaxed_load(&z->free_pb_backed))
		snprintf(msg, sizeof msg, "free backed pageblocks: %zu counted, %zu found",
			 mv_relaxed_load(&z->free_pb_backed), backed_free),
		    err = msg;
	mv_unlock(&z->lock);
	return err;
}
