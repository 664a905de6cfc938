/* SPDX-License-Identifier: MIT */
/*
 * zone.h: the zone (the kernel's struct zone, include/linux/mmzone.h) and
 * what zone.c keeps of it: the reservation and its growth, the page
 * descriptors (mem_map) and the pageblock flags, the bitmap of pages the OS
 * backs, and the memory budget. One zone per arena. The free lists it
 * holds, free_area[order].free_list[migratetype], belong to the buddy
 * allocator (buddy.h).
 *
 * Locks: zone->lock (rank MV_RANK_ZONE) for everything here but the
 * lockless readers (mv_zone_pfn_valid, descriptor, flag and backed-bit
 * loads, the byte counts).
 */
#ifndef MV_ZONE_H
#define MV_ZONE_H

#include "diag.h"
#include "lock.h"
#include "page.h"
#include "pageblock.h"
#include "vmstat.h"

struct mv_free_area {
	uint32_t free_list[MIGRATE_TYPES]; /* head pfn of a circular list (head.prev = tail) */
	uint64_t nr_free;                  /* blocks of this order, every type */
	uint64_t nr_free_mt[MIGRATE_TYPES];
	/* of those, blocks holding a backed page: giving back walks only the
	 * lists that have some, and stops once it has seen them all */
	uint64_t nr_backed_mt[MIGRATE_TYPES];
};

/* The descriptor array starts this far into its page-aligned mapping. A
 * page's first slot and that page's descriptor would otherwise share their
 * offset within a 4 KiB page whenever the pfn is a multiple of 256, pfn 0
 * (the first slab of a process) included. A store to the slot followed by a
 * load of the descriptor, the shape of every malloc/free pair, then
 * false-aliases in the load/store unit (4K aliasing). At half a page the
 * descriptors of pfn 0, 256, ... sit at offset 2048, away from the slots
 * that are handed out first. */
#define MV_DESC_COLOR 2048

struct mv_zone {
	mv_mutex lock;
	char *base; /* pageblock-aligned reservation */
	size_t reserve_bytes;
	struct mv_page *desc;         /* descriptor array, one per page of the reservation */
	char *desc_map;               /* its reservation: desc sits MV_DESC_COLOR bytes in */
	size_t desc_bytes;            /* of desc_map */
	struct mv_pageblock_flags pb; /* 4 bits per pageblock */
	size_t pb_words_bytes;
	uint64_t *backed; /* a bit per page: backed by the OS since last handed
	                                 out (cleared when given back), under lock */
	unsigned pageblock_order;
	size_t pageblock_nr_pages;
	size_t nr_pages_max;          /* pages in the reservation */
	_Atomic size_t populated_pfn; /* pfns below are populated (descriptors committed) */
	size_t desc_committed_bytes;  /* descriptors committed so far, under lock */
	/* descriptor pages given back to the OS (a bit each): those wholly
	 * inside a free, unbacked block of pageblock order or more, but for
	 * the page of its head; they read as zeros (PG_NONE), which is what
	 * every descriptor inside a free block says. Under lock. */
	uint64_t *desc_released;
	_Atomic size_t desc_released_pages;
	bool page_group_by_mobility_disabled;

	struct mv_free_area free_area[MV_NR_PAGE_ORDERS];
	size_t nr_free_pages_mt[MIGRATE_TYPES]; /* free pages per list type */
	_Atomic size_t nr_free_pages;           /* ISOLATE excluded (account_freepages) */
	_Atomic size_t resident_pages;          /* pages with their backed bit set */
	_Atomic size_t free_pb_backed;          /* wholly free pageblocks with a backed page */
	_Atomic size_t free_backed_pages;       /* free pages (on the lists) the OS backs */
	_Atomic size_t free_backed_low;         /* its lowest value since mv_zone_free_backed_low */
	_Atomic size_t nr_pageblocks_mt[MIGRATE_TYPES];
	size_t nr_isolate_pageblock;
	_Atomic int wake_order; /* highest order that fell back or failed, for kcompactd */
	struct mv_vmstat *vm;

	/* the memory budget (reclaim.h): resident pages, plus what extra_pages
	 * reports (metadata outside the zone), kept at most limit_pages; an
	 * allocation that would back pages beyond it is refused, and the
	 * largest such request is noted in limit_want for the reclaimer */
	_Atomic size_t limit_pages; /* 0: no budget */
	_Atomic size_t limit_want;
	size_t (*extra_pages)(void *arg);
	void *extra_arg;
	/* placement (mempolicy.h): called under the lock with the index of a
	 * pageblock about to get its first backed page, before it is touched */
	void (*place)(void *arg, size_t pageblock);
	void *place_arg;
};

/* Reserve the arena and its metadata, nothing populated. 0 or errno (ENOMEM). */
int mv_zone_init(struct mv_zone *z, size_t reserve_bytes, unsigned pageblock_order,
		 struct mv_vmstat *vm);
void mv_zone_destroy(struct mv_zone *z);

static inline size_t mv_zone_pfn(const struct mv_zone *z, const void *p)
{
	return (size_t)((const char *)p - z->base) >> MV_PAGE_SHIFT;
}
static inline void *mv_zone_addr(const struct mv_zone *z, size_t pfn)
{
	return z->base + (pfn << MV_PAGE_SHIFT);
}
static inline struct mv_page *mv_pfn_to_page(const struct mv_zone *z, size_t pfn)
{
	return &z->desc[pfn];
}
/* true when pfn is populated; lockless */
static inline bool mv_zone_pfn_valid(const struct mv_zone *z, size_t pfn)
{
	return pfn < atomic_load_explicit(&z->populated_pfn, memory_order_acquire);
}
static inline size_t mv_pageblock_start_pfn(const struct mv_zone *z, size_t pfn)
{
	return pfn & ~(z->pageblock_nr_pages - 1);
}
static inline int mv_get_pfnblock_migratetype(const struct mv_zone *z, size_t pfn)
{
	return mv_get_pageblock_migratetype(&z->pb, pfn);
}

/* Racy descriptor accessors (relaxed atomics): for readers that do not hold
 * the page, and for owners writing fields such readers look at. */
#define mv_pg_load(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define mv_pg_store(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

/* Bytes of descriptors backed by the OS (committed, less those given back). */
size_t mv_zone_desc_resident_bytes(const struct mv_zone *z);
/* Bytes of the pageblock flags and the page bitmaps that are in use. */
size_t mv_zone_bitmaps_resident_bytes(const struct mv_zone *z);

/* The budget's view: pages counted against limit_pages now (resident and
 * extra), lockless and racy. */
size_t mv_zone_charged_pages(const struct mv_zone *z);
/* Does pageblock pfn hold a backed page? Racy without zone->lock. */
bool mv_zone_pageblock_backed(const struct mv_zone *z, size_t pfn);

/*
 * For the zone's own files (buddy.c, giveback.c, zone_verify.c): all of it
 * under zone->lock.
 */

/* Growth (online_pages): bring the pageblocks [populated_pfn, end) into
 * the arena, descriptors and memory committed, each pageblock typed mt,
 * and publish them (populated_pfn = end). Their pages are neither listed
 * nor backed: the caller frees them into the lists or hands them out.
 * false if end is past the reservation or the OS refused. */
bool mv_zone_populate(struct mv_zone *z, size_t end, int mt);

/* The budget: would backing [pfn, pfn + nr) take the zone past its limit?
 * If so, the request is noted in limit_want for the reclaimer. */
bool mv_zone_over_limit(struct mv_zone *z, size_t pfn, size_t nr);
/* Mark [pfn, pfn + nr) backed (the owner will touch it), placing each
 * pageblock that gets its first backed page (mempolicy); true if no page
 * of it was backed before, so the pages read as zeros. */
bool mv_zone_mark_backed(struct mv_zone *z, size_t pfn, size_t nr);

/* A free block of pageblock order or more leaves the lists: its
 * descriptors will be written again, so the descriptor pages given back
 * inside it count as backed from now on. */
void mv_zone_desc_unrelease(struct mv_zone *z, size_t pfn, unsigned order);
/* A free block now wholly unbacked, off the lists: give back the
 * descriptor pages inside it. */
void mv_zone_desc_release(struct mv_zone *z, size_t pfn, unsigned order);

/* set (or clear) the backed bits of a range; returns how many changed */
static inline size_t mv_zone_set_backed(struct mv_zone *z, size_t pfn, size_t nr, bool on)
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
static inline bool mv_zone_any_backed(const struct mv_zone *z, size_t pfn, size_t nr)
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
static inline size_t mv_zone_count_unbacked(const struct mv_zone *z, size_t pfn, size_t nr)
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

/* wholly free pageblocks of a free block that hold a backed page */
static inline size_t mv_zone_backed_pageblocks(const struct mv_zone *z, size_t pfn, unsigned order)
{
	if (order < z->pageblock_order)
		return 0;
	size_t n = 0, count = (size_t)1 << (order - z->pageblock_order);
	for (size_t i = 0; i < count; i++)
		n += mv_zone_any_backed(z, pfn + i * z->pageblock_nr_pages, z->pageblock_nr_pages);
	return n;
}

/* retype the pageblock of pfn, keeping nr_pageblocks_mt */
static inline void mv_zone_set_pageblock_type(struct mv_zone *z, size_t pfn, int mt)
{
	MV_ASSERT(mt >= 0 && mt < MIGRATE_TYPES);
	int old = mv_get_pfnblock_migratetype(z, pfn);
	if (old == mt)
		return;
	if (z->page_group_by_mobility_disabled && mt < MIGRATE_PCPTYPES)
		mt = MIGRATE_UNMOVABLE;
	mv_set_pageblock_migratetype(&z->pb, pfn, mt);
	mv_relaxed_add(&z->nr_pageblocks_mt[old], (size_t)-1);
	mv_relaxed_add(&z->nr_pageblocks_mt[mt], 1);
}

#endif
