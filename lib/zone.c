/* SPDX-License-Identifier: MIT */
/*
 * zone.c: the zone itself, after mm/mm_init.c (the zone's setup and
 * mem_map) and mm/memory_hotplug.c (online_pages: here the zone grows a
 * pageblock at a time into its reservation). See zone.h.
 *
 * Where mova differs from the kernel: a free page may or may not be backed
 * by the OS, so the zone keeps a bit per page (set when pages are handed
 * out, cleared when they are given back, giveback.c); resident_bytes and
 * the memory budget are counted from it. The descriptors inside a large
 * free, unbacked block are given back too, and read as zeros (PG_NONE).
 */
#include "zone.h"

#include <errno.h>
#include <string.h>

#include "diag.h"
#include "os.h"

struct mv_section *_Atomic *_Atomic mv_secmap;

/* The global section map, mapped by the first zone: 16 MiB of address
 * space, a page of it touched per 32 GiB that holds sections. */
static int secmap_init(void)
{
	if (atomic_load_explicit(&mv_secmap, memory_order_acquire))
		return 0;
	struct mv_section *_Atomic *m = mv_os_map_noreserve(MV_SECMAP_ENTRIES * sizeof *m);
	if (!m)
		return errno ? errno : ENOMEM;
	struct mv_section *_Atomic *expect = NULL;
	if (!atomic_compare_exchange_strong_explicit(&mv_secmap, &expect, m, memory_order_acq_rel,
						     memory_order_acquire))
		mv_os_release(m, MV_SECMAP_ENTRIES * sizeof *m);
	return 0;
}

static void secmap_set(const struct mv_zone *z, const char *base, size_t len, struct mv_section *s)
{
	struct mv_section *_Atomic *map = atomic_load_explicit(&mv_secmap, memory_order_acquire);
	struct mv_section *e = s ? (struct mv_section *)((uintptr_t)s | z->secmap_tag) : NULL;
	for (size_t i = (uintptr_t)base >> MV_SECTION_SHIFT;
	     i <= ((uintptr_t)base + len - 1) >> MV_SECTION_SHIFT; i++)
		atomic_store_explicit(&map[i], e, memory_order_release);
}

void mv_zone_mark_default(struct mv_zone *z)
{
	/* before the arena is published: the sections mapped so far are
	 * tagged again, the later ones as they come (an untagged entry only
	 * sends a free the slow way) */
	mv_lock(&z->lock);
	z->secmap_tag = MV_SECMAP_DFLT;
	for (size_t i = 0; i < z->slots_used; i++)
		if (z->sec[i].base)
			secmap_set(z, z->sec[i].base, z->sec[i].s->len, z->sec[i].s);
	mv_unlock(&z->lock);
}

int mv_zone_init(struct mv_zone *z, size_t reserve_bytes, unsigned pageblock_order,
		 struct mv_vmstat *vm)
{
	memset(z, 0, sizeof *z);
	mv_mutex_init(&z->lock, MV_RANK_ZONE);
	z->vm = vm;
	z->pageblock_order = pageblock_order;
	z->pageblock_nr_pages = (size_t)1 << pageblock_order;
	size_t pages = reserve_bytes ? reserve_bytes >> MV_PAGE_SHIFT : MV_MAX_ZONE_PAGES;
	z->nr_pages_max = MV_MIN(mv_align_down(pages, z->pageblock_nr_pages), MV_MAX_ZONE_PAGES);
	z->reserve_bytes = z->nr_pages_max << MV_PAGE_SHIFT;
	z->nr_sections_max = (z->nr_pages_max + MV_SECTION_PAGES - 1) >> MV_SECTION_PAGES_SHIFT;
	int err = secmap_init();
	if (err)
		goto fail;
	z->sec = mv_os_map_noreserve(z->nr_sections_max * sizeof *z->sec);
	if (!z->sec) {
		err = errno ? errno : ENOMEM;
		goto fail;
	}
	for (int o = 0; o < MV_NR_PAGE_ORDERS; o++)
		for (int t = 0; t < MIGRATE_TYPES; t++)
			z->free_area[o].free_list[t] = MV_PFN_NONE;
	/* page_group_by_mobility_disabled: too small to group (build_all_zonelists) */
	z->page_group_by_mobility_disabled = (z->nr_pages_max >> pageblock_order) < MIGRATE_TYPES;
	return 0;
fail:
	mv_zone_destroy(z);
	return err ? err : ENOMEM;
}

void mv_zone_destroy(struct mv_zone *z)
{
	for (size_t i = 0; z->sec && i < z->slots_used; i++) {
		struct mv_secref *r = &z->sec[i];
		if (r->base) {
			secmap_set(z, r->base, r->s->len, NULL);
			mv_os_release(r->base, r->s->len);
		}
		if (r->s)
			mv_os_release(r->s, MV_SEC_META_BYTES);
	}
	if (z->sec)
		mv_os_release(z->sec, z->nr_sections_max * sizeof *z->sec);
	z->sec = NULL;
	mv_mutex_destroy(&z->lock);
}

/* bytes of slot i's memory (all of it but at the limit) */
static size_t slot_len(const struct mv_zone *z, size_t i)
{
	size_t pages = MV_MIN(MV_SECTION_PAGES, z->nr_pages_max - (i << MV_SECTION_PAGES_SHIFT));
	return pages << MV_PAGE_SHIFT;
}

/* bytes of a slot's metadata that populating its first n pages touches */
static size_t meta_touched(size_t n)
{
	return n ? mv_align_up(MV_SEC_DESC_OFF + n * sizeof(struct mv_page), MV_PAGE_SIZE) : 0;
}

/* ------------------------------------------------------------ huge pages */

/* the huge page size (PMD) the advice is given in units of */
#define MV_THP_ORDER 9

void mv_zone_set_thp(struct mv_zone *z, unsigned mova_thp)
{
	if (mv_os_thp_system() == MOVA_THP_NEVER)
		z->thp = MV_THP_OFF;
	else if (mova_thp == MOVA_THP_ALWAYS)
		z->thp = MV_THP_ALWAYS;
	else if (mova_thp == MOVA_THP_NEVER || z->pageblock_order < MV_THP_ORDER)
		z->thp = MV_THP_NEVER; /* a pageblock smaller than a huge page: none */
	else
		z->thp = MV_THP_MADVISE;
}

unsigned mv_zone_thp_mode(const struct mv_zone *z)
{
	switch (z->thp) {
	case MV_THP_ALWAYS: return MOVA_THP_ALWAYS;
	case MV_THP_MADVISE: return MOVA_THP_MADVISE;
	default: return MOVA_THP_NEVER;
	}
}

static bool thp_bit(const struct mv_zone *z, size_t pfn)
{
	size_t i = (pfn & MV_SECTION_PAGE_MASK) >> z->pageblock_order;
	return (mv_zone_section(z, pfn)->thp[i / 64] >> (i % 64)) & 1;
}

static void thp_set_bit(struct mv_zone *z, size_t pfn, bool on)
{
	size_t i = (pfn & MV_SECTION_PAGE_MASK) >> z->pageblock_order;
	uint64_t *w = &mv_zone_section(z, pfn)->thp[i / 64], m = (uint64_t)1 << (i % 64);
	*w = on ? *w | m : *w & ~m;
}

bool mv_zone_thp_advised(const struct mv_zone *z, size_t pfn)
{
	return z->thp == MV_THP_MADVISE && thp_bit(z, pfn);
}

/* A newly mapped stretch: the whole of it advised as the policy says (in
 * madvise mode, MADV_NOHUGEPAGE: what is not advised gets no huge page
 * even where the system's setting is always, and pageblocks whose advice
 * is taken back merge with their neighbours again). */
static void thp_mapped(struct mv_zone *z, char *base, size_t len)
{
	if (z->thp == MV_THP_OFF)
		return;
	bool huge = z->thp == MV_THP_ALWAYS;
	if (!mv_os_hugepage(base, len, huge ? MV_OS_HUGE : MV_OS_NOHUGE) && huge)
		mv_relaxed_add(&z->thp_advised, len >> (MV_PAGE_SHIFT + z->pageblock_order));
}

/* MADV_HUGEPAGE (on) or MADV_NOHUGEPAGE over the pageblocks [pfn, pfn +
 * n * pageblock) of one slot, their bits following. */
static void thp_run(struct mv_zone *z, size_t pfn, size_t n, bool on)
{
	size_t pbn = z->pageblock_nr_pages;
	if (!n || mv_os_hugepage(mv_zone_addr(z, pfn), (n * pbn) << MV_PAGE_SHIFT,
				 on ? MV_OS_HUGE : MV_OS_NOHUGE))
		return;
	size_t changed = 0;
	for (size_t i = 0; i < n; i++) {
		changed += thp_bit(z, pfn + i * pbn) != on;
		thp_set_bit(z, pfn + i * pbn, on);
	}
	if (on) {
		mv_relaxed_add(&z->thp_advised, changed);
		mv_relaxed_add(&z->thp_advised_now, changed);
	} else {
		mv_relaxed_add(&z->thp_unadvised, changed);
		mv_relaxed_add(&z->thp_advised_now, -changed);
	}
}

/* Advise, or take the advice back from, the pageblocks of [pfn, pfn + nr)
 * that want(): one call per stretch of them within a slot. */
static void thp_apply(struct mv_zone *z, size_t pfn, size_t nr, bool on,
		      bool (*want)(struct mv_zone *z, size_t pb, void *arg), void *arg)
{
	size_t pbn = z->pageblock_nr_pages, run = 0, run_start = 0;
	for (size_t b = mv_pageblock_start_pfn(z, pfn); b < pfn + nr; b += pbn) {
		bool w = want(z, b, arg);
		if (run && (!w || !(b & MV_SECTION_PAGE_MASK))) {
			thp_run(z, run_start, run, on);
			run = 0;
		}
		if (w) {
			if (!run)
				run_start = b;
			run++;
		}
	}
	thp_run(z, run_start, run, on);
}

static bool want_unadvise(struct mv_zone *z, size_t pb, void *arg)
{
	(void)arg;
	return thp_bit(z, pb);
}

void mv_zone_thp_unadvise(struct mv_zone *z, size_t pfn, size_t nr)
{
	if (z->thp != MV_THP_MADVISE || !mv_relaxed_load(&z->thp_advised_now))
		return;
	thp_apply(z, pfn, nr, false, want_unadvise, NULL);
}

/* which pageblocks mark_backed advises: those [pfn, pfn + nr) covers
 * whole (a large object's run), of handle objects (movable or
 * reclaimable). A raw large allocation (malloc's, unmovable) is not: how
 * densely a program touches a buffer it mallocs is anybody's guess, and a
 * huge page faults all of 2 MiB at the first touch. bench-wp largechurn
 * (blocks of 1-8 MiB, every 4th page written) took 64 MiB of peak RSS
 * and 0.26 s with the advice, 19 MiB and 0.19 s without (glibc 35 MiB,
 * mimalloc 19). Handle objects keep it: compaction packs them, and
 * bench-thp's fill-large and large-churn write them whole. */
static bool want_advise(struct mv_zone *z, size_t pb, void *arg)
{
	const size_t *r = arg;
	int mt = mv_get_pfnblock_migratetype(z, pb);
	return !thp_bit(z, pb) && pb >= r[0] && pb + z->pageblock_nr_pages <= r[0] + r[1] &&
	       (mt == MIGRATE_MOVABLE || mt == MIGRATE_RECLAIMABLE);
}

/* mark_backed's advice */
static void thp_mark(struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t r[2] = {pfn, nr};
	if (nr >= z->pageblock_nr_pages)
		thp_apply(z, pfn, nr, true, want_advise, r);
}

bool mv_zone_thp_advise_pageblock(struct mv_zone *z, size_t pb)
{
	if (z->thp != MV_THP_MADVISE || thp_bit(z, pb))
		return false;
	thp_run(z, pb, 1, true);
	return thp_bit(z, pb);
}

bool mv_zone_thp_dense(struct mv_zone *z, size_t pfn, int mt)
{
	size_t pb = mv_pageblock_start_pfn(z, pfn), pbn = z->pageblock_nr_pages;
	/* Movable and reclaimable pageblocks only: compaction packs them and
	 * gives back whole pageblocks. Raw slabs (unmovable) give back single
	 * pages of themselves (slab.c's page purge), and every page given back
	 * splits the huge page around it: on the fragmentation workload that
	 * made the frees 10 times slower (the split's cost is paid at the
	 * next touch of each of its pages) and resident memory 3% higher.
	 * Under a budget the 2 MiB the kernel faults at once would be charged
	 * before it is used: no pageblock is advised on a guess then. */
	if ((mt != MIGRATE_MOVABLE && mt != MIGRATE_RECLAIMABLE) || z->thp != MV_THP_MADVISE ||
	    mv_relaxed_load(&z->limit_pages) ||
	    mv_relaxed_load(&z->resident_pages) < MV_THP_DENSE_PAGEBLOCKS * pbn || thp_bit(z, pb) ||
	    mv_zone_any_backed(z, pb, pbn))
		return false;
	size_t before = mv_relaxed_load(&z->thp_advised);
	thp_run(z, pb, 1, true);
	return mv_relaxed_load(&z->thp_advised) != before;
}

/* sparse_add_section: map slots [first, last] as one stretch, with their
 * metadata, and publish them. Caller holds zone->lock. */
static bool add_sections(struct mv_zone *z, size_t first, size_t last)
{
	for (size_t i = first; i <= last; i++) {
		if (z->sec[i].s)
			continue; /* a slot once used keeps its metadata */
		struct mv_section *s = mv_os_map_noreserve(MV_SEC_META_BYTES);
		if (!s) {
			mv_relaxed_store(&z->map_errno, errno ? errno : ENOMEM);
			return false;
		}
		s->zone = z;
		s->nr = (uint32_t)i;
		z->slots_used = MV_MAX(z->slots_used, i + 1);
		__atomic_store_n(&z->sec[i].s, s, __ATOMIC_RELEASE);
		mv_relaxed_add(&z->meta_bytes, MV_SEC_META_BYTES);
	}
	size_t total = ((last - first) << MV_SECTION_SHIFT) + slot_len(z, last);
	/* next to the slot below, so runs may cross into it */
	char *hint =
	    first && z->sec[first - 1].base ? z->sec[first - 1].base + MV_SECTION_SIZE : NULL;
	char *base = mv_os_map_aligned(total, MV_SECTION_SIZE, hint);
	if (!base) {
		mv_relaxed_store(&z->map_errno, errno ? errno : ENOMEM);
		return false;
	}
	thp_mapped(z, base, total);
	for (size_t i = first; i <= last; i++) {
		struct mv_section *s = z->sec[i].s;
		char *b = base + ((i - first) << MV_SECTION_SHIFT);
		s->len = slot_len(z, i);
		mv_rstore(s->base, b);
		secmap_set(z, b, s->len, s);
		/* published last: the slot holds memory (mv_zone_pfn_valid) */
		__atomic_store_n(&z->sec[i].base, b, __ATOMIC_RELEASE);
		mv_relaxed_add(&z->nr_sections, 1);
		mv_relaxed_add(&z->sections_added, 1);
		mv_relaxed_add(&z->mapped_bytes, s->len);
		mv_count(z->vm, MV_VM_section_add, 1);
	}
	return true;
}

size_t mv_zone_refill_hole(struct mv_zone *z, int mt)
{
	size_t top = mv_pfn_section(mv_relaxed_load(&z->populated_pfn));
	if (!mv_relaxed_load(&z->nr_holes))
		return MV_PFN_NONE;
	for (size_t i = 0; i < top; i++) {
		if (z->sec[i].base)
			continue;
		if (!add_sections(z, i, i))
			return MV_PFN_NONE;
		mv_relaxed_add(&z->nr_holes, (size_t)-1);
		size_t start = i << MV_SECTION_PAGES_SHIFT;
		mv_relaxed_add(&z->desc_committed_bytes, meta_touched(MV_SECTION_PAGES));
		for (size_t p = start; p < start + MV_SECTION_PAGES; p += z->pageblock_nr_pages) {
			mv_relaxed_add(&z->nr_pageblocks_mt[MIGRATE_UNMOVABLE], 1);
			mv_zone_set_pageblock_type(z, p, mt);
			mv_count(z->vm, MV_VM_pageblock_grow, 1);
		}
		return start;
	}
	return MV_PFN_NONE;
}

void mv_zone_unmap_section(struct mv_zone *z, size_t i)
{
	struct mv_secref *r = &z->sec[i];
	struct mv_section *s = r->s;
	char *base = r->base;
	size_t len = s->len, start = i << MV_SECTION_PAGES_SHIFT;
	/* the populated part: all of it but at the frontier */
	size_t nr = MV_MIN(MV_SECTION_PAGES, mv_relaxed_load(&z->populated_pfn) - start);
	MV_ASSERT(base && !mv_zone_any_backed(z, start, nr));
	/* absent first (mv_zone_pfn_valid), then unmapped from the section map */
	__atomic_store_n(&r->base, (char *)NULL, __ATOMIC_RELEASE);
	secmap_set(z, base, len, NULL);
	mv_rstore(s->base, (char *)NULL);
	for (size_t p = start; p < start + nr; p += z->pageblock_nr_pages)
		mv_relaxed_add(&z->nr_pageblocks_mt[mv_get_pfnblock_migratetype(z, p)], (size_t)-1);
	/* the flags read as fresh ones (UNMOVABLE) and the descriptors as
	 * zeros: what a racing lockless reader that found the slot sees */
	for (size_t w = 0; w < sizeof s->pb / sizeof s->pb[0]; w++)
		atomic_store_explicit(&s->pb[w], 0, memory_order_relaxed);
	/* the advice goes with the mapping */
	for (size_t w = 0; w < sizeof s->thp / sizeof s->thp[0]; w++) {
		size_t n = (size_t)mv_popcount64(s->thp[w]);
		if (n)
			mv_relaxed_add(&z->thp_advised_now, -(uint64_t)n);
		s->thp[w] = 0;
	}
	mv_os_decommit((char *)s + MV_PAGE_SIZE, MV_SEC_META_BYTES - MV_PAGE_SIZE);
	for (size_t w = 0; w < sizeof s->desc_released / sizeof s->desc_released[0]; w++) {
		size_t n = (size_t)mv_popcount64(s->desc_released[w]);
		if (n)
			mv_relaxed_add(&z->desc_released_pages, -n);
		s->desc_released[w] = 0;
	}
	mv_relaxed_add(&z->desc_committed_bytes, -meta_touched(nr));
	mv_os_release(base, len);
	mv_relaxed_add(&z->nr_sections, (size_t)-1);
	mv_relaxed_add(&z->sections_removed, 1);
	mv_relaxed_add(&z->mapped_bytes, -len);
	mv_count(z->vm, MV_VM_section_remove, 1);
	/* the top slot gone: the frontier comes down past every absent slot,
	 * so the pfn space stays as small as what is mapped */
	size_t top = mv_relaxed_load(&z->populated_pfn);
	if (start + MV_SECTION_PAGES >= top) {
		size_t j = i;
		while (j > 0 && !z->sec[j - 1].base)
			j--;
		mv_relaxed_add(&z->nr_holes, -(i - j));
		atomic_store_explicit(&z->populated_pfn, j << MV_SECTION_PAGES_SHIFT,
				      memory_order_release);
	} else {
		mv_relaxed_add(&z->nr_holes, 1);
	}
}

bool mv_zone_populate(struct mv_zone *z, size_t end, int mt)
{
	size_t start = mv_relaxed_load(&z->populated_pfn);
	if (end > z->nr_pages_max || end < start)
		return false;
	MV_ASSERT(!(end & (z->pageblock_nr_pages - 1)) && mt >= 0 && mt < MIGRATE_TYPES);
	if (end == start)
		return true;
	size_t first = mv_pfn_section(start), last = mv_pfn_section(end - 1);
	while (first <= last && z->sec[first].base)
		first++;
	if (first <= last && !add_sections(z, first, last))
		return false;
	for (size_t i = mv_pfn_section(start); i <= last; i++) {
		size_t lo = MV_MAX(start, i << MV_SECTION_PAGES_SHIFT) & MV_SECTION_PAGE_MASK;
		size_t hi = MV_MIN(end - (i << MV_SECTION_PAGES_SHIFT), MV_SECTION_PAGES);
		mv_relaxed_add(&z->desc_committed_bytes, meta_touched(hi) - meta_touched(lo));
	}
	for (size_t p = start; p < end; p += z->pageblock_nr_pages) {
		/* a fresh pageblock's flags are zero: UNMOVABLE, counted as such */
		mv_relaxed_add(&z->nr_pageblocks_mt[MIGRATE_UNMOVABLE], 1);
		mv_zone_set_pageblock_type(z, p, mt);
		mv_count(z->vm, MV_VM_pageblock_grow, 1);
	}
	atomic_store_explicit(&z->populated_pfn, end, memory_order_release);
	return true;
}

/* The budget: would backing [pfn, pfn + nr) take the zone past its limit?
 * Caller holds zone->lock, so resident_pages cannot move meanwhile. */
bool mv_zone_over_limit(struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t lim = mv_relaxed_load(&z->limit_pages);
	if (likely(!lim))
		return false;
	size_t fresh = mv_zone_count_unbacked(z, pfn, nr);
	if (!fresh || mv_zone_charged_pages(z) + fresh <= lim)
		return false;
	if (fresh > mv_relaxed_load(&z->limit_want))
		mv_relaxed_store(&z->limit_want, fresh);
	return true;
}

/* Mark [pfn, pfn+nr) backed (the owner will touch it); true if no page of
 * it was backed before, so the pages read as zeros. */
bool mv_zone_mark_backed(struct mv_zone *z, size_t pfn, size_t nr)
{
	if (z->thp == MV_THP_MADVISE)
		thp_mark(z, pfn, nr);
	/* a pageblock getting its first backed page is placed (mempolicy) */
	if (unlikely(z->place)) {
		for (size_t b = mv_pageblock_start_pfn(z, pfn); b < pfn + nr;
		     b += z->pageblock_nr_pages)
			if (!mv_zone_any_backed(z, b, z->pageblock_nr_pages))
				z->place(z->place_arg, b >> z->pageblock_order);
	}
	size_t n = mv_zone_set_backed(z, pfn, nr, true);
	if (n)
		mv_relaxed_add(&z->resident_pages, n);
	return n == nr;
}

bool mv_zone_pageblock_backed(const struct mv_zone *z, size_t pfn)
{
	return mv_zone_any_backed(z, mv_pageblock_start_pfn(z, pfn), z->pageblock_nr_pages);
}

size_t mv_zone_charged_pages(const struct mv_zone *z)
{
	return mv_relaxed_load(&z->resident_pages) +
	       (z->extra_pages ? z->extra_pages(z->extra_arg) : 0);
}

/* The metadata pages of pfn's slot holding only descriptors of the block
 * [pfn, pfn + 2^order), but for the one holding its head: [*first, *end),
 * page indices in the slot's metadata mapping. */
static void desc_span(size_t pfn, unsigned order, size_t *first, size_t *end)
{
	const size_t per = MV_PAGE_SIZE / sizeof(struct mv_page);
	size_t q = (pfn & MV_SECTION_PAGE_MASK) + MV_SEC_DESC_OFF / sizeof(struct mv_page);
	*first = q / per + 1;
	*end = (q + ((size_t)1 << order)) / per;
	if (*end < *first)
		*end = *first;
}

/* A block leaves the free lists: its descriptors will be written again,
 * so the pages given back (if any) count as backed from now on. */
void mv_zone_desc_unrelease(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t first, end, n = 0;
	uint64_t *rel = mv_zone_section(z, pfn)->desc_released;
	MV_ASSERT(order >= z->pageblock_order);
	desc_span(pfn, order, &first, &end);
	for (size_t p = first; p < end; p++) {
		uint64_t bit = (uint64_t)1 << (p % 64);
		if (rel[p / 64] & bit) {
			rel[p / 64] &= ~bit;
			n++;
		}
	}
	if (n)
		mv_relaxed_add(&z->desc_released_pages, -n);
}

/* A free block now unbacked: give back the descriptor pages inside it.
 * Caller holds zone->lock and the block is off the lists. */
void mv_zone_desc_release(struct mv_zone *z, size_t pfn, unsigned order)
{
	size_t first, end, n = 0;
	struct mv_section *s = mv_zone_section(z, pfn);
	uint64_t *rel = s->desc_released;
	MV_ASSERT(order >= z->pageblock_order && !mv_zone_any_backed(z, pfn, (size_t)1 << order));
	desc_span(pfn, order, &first, &end);
	for (size_t p = first; p < end;) {
		size_t q = p;
		while (q < end && !(rel[q / 64] & ((uint64_t)1 << (q % 64))))
			q++;
		if (q > p &&
		    !mv_os_decommit((char *)s + p * MV_PAGE_SIZE, (q - p) * MV_PAGE_SIZE)) {
			for (size_t k = p; k < q; k++)
				rel[k / 64] |= (uint64_t)1 << (k % 64);
			n += q - p;
		}
		p = q + 1;
	}
	if (n)
		mv_relaxed_add(&z->desc_released_pages, n);
}

size_t mv_zone_desc_resident_bytes(const struct mv_zone *z)
{
	return mv_relaxed_load(&z->desc_committed_bytes) -
	       (mv_relaxed_load(&z->desc_released_pages) << MV_PAGE_SHIFT);
}

size_t mv_zone_bitmaps_resident_bytes(const struct mv_zone *z)
{
	/* the slot table's pages that name a slot (the flags and bitmaps
	 * live in the slots' headers, counted with the descriptors) */
	size_t slots = mv_pfn_section(mv_relaxed_load(&z->populated_pfn) + MV_SECTION_PAGES - 1);
	return mv_align_up(slots * sizeof(struct mv_secref), MV_PAGE_SIZE);
}

void mv_zone_held_unbacked(struct mv_zone *z, size_t pfn, size_t nr)
{
	mv_lock(&z->lock);
	size_t n = mv_zone_set_backed(z, pfn, nr, false);
	if (n)
		mv_relaxed_add(&z->resident_pages, -n);
	mv_zone_thp_unadvise(z, pfn, nr);
	mv_unlock(&z->lock);
}

void mv_zone_held_backed(struct mv_zone *z, size_t pfn, size_t nr)
{
	mv_lock(&z->lock);
	size_t n = mv_zone_set_backed(z, pfn, nr, true);
	if (n)
		mv_relaxed_add(&z->resident_pages, n);
	mv_unlock(&z->lock);
}
