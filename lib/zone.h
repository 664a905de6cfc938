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

/*
 * Sections (the kernel's SPARSEMEM, include/linux/mmzone.h: struct
 * mem_section, its mem_map and its usemap). The zone's page frame numbers
 * run linearly over slots of MV_SECTION_PAGES; slot i's memory is a 64 MiB
 * aligned piece of the address space the OS hands out when the zone first
 * grows into it, wherever the OS puts it: nothing is reserved up front,
 * and two slots need not be adjacent (a run of pages longer than what
 * remains of a slot is placed where its slots were mapped together,
 * mv_zone_contiguous). Each slot has its own descriptors and pageblock
 * flags (struct mv_section, mapped apart from the memory). A buddy block
 * never crosses a slot: the largest, MAX_PAGE_ORDER, divides the slot.
 *
 * A global map, one entry per 64 MiB of the 47-bit address space (the
 * kernel's mem_section[] root), finds the section of any pointer in one
 * load; free() uses it to tell its own pointers from foreign ones.
 */
#define MV_SECTION_SHIFT 26 /* 64 MiB */
#define MV_SECTION_SIZE ((size_t)1 << MV_SECTION_SHIFT)
#define MV_SECTION_PAGES_SHIFT (MV_SECTION_SHIFT - MV_PAGE_SHIFT)
#define MV_SECTION_PAGES ((size_t)1 << MV_SECTION_PAGES_SHIFT)
#define MV_SECTION_PAGE_MASK (MV_SECTION_PAGES - 1)
/* A handle entry gives an object's place in the zone's pfn space in
 * 16-byte units in 35 bits (htable.h): 512 GiB of pfns, 8192 slots. */
#define MV_MAX_SECTIONS ((size_t)1 << (35 + 4 - MV_SECTION_SHIFT))
#define MV_MAX_ZONE_PAGES (MV_MAX_SECTIONS << MV_SECTION_PAGES_SHIFT)
#define MV_SECMAP_BITS 47
#define MV_SECMAP_ENTRIES ((size_t)1 << (MV_SECMAP_BITS - MV_SECTION_SHIFT))

/* The descriptors start this far into a section's metadata mapping. A
 * page's first slot and that page's descriptor would otherwise share their
 * offset within a 4 KiB page whenever the pfn is a multiple of 256, pfn 0
 * (the first slab of a process) included. A store to the slot followed by a
 * load of the descriptor, the shape of every malloc/free pair, then
 * false-aliases in the load/store unit (4K aliasing). At half a page the
 * descriptors of pfn 0, 256, ... sit at offset 2048, away from the slots
 * that are handed out first. */
#define MV_DESC_COLOR 2048
#define MV_SEC_DESC_OFF (MV_PAGE_SIZE + MV_DESC_COLOR)
#define MV_SEC_META_BYTES                                                                   \
	((MV_SEC_DESC_OFF + MV_SECTION_PAGES * sizeof(struct mv_page) + MV_PAGE_SIZE - 1) & \
	 ~(MV_PAGE_SIZE - 1))
#define MV_SEC_META_PAGES (MV_SEC_META_BYTES / MV_PAGE_SIZE)

/* A slot's metadata: mapped the first time the zone grows into the slot
 * and never unmapped while the zone lives (a racing reader that found it
 * may always load from it); when the slot's memory goes back to the OS the
 * descriptors are given back and read as zeros (PG_NONE). */
struct mv_section {
	struct mv_zone *zone;
	char *base;  /* the slot's memory, 64 MiB aligned; NULL when absent */
	size_t len;  /* bytes of it mapped (less than 64 MiB only at a zone's limit) */
	uint32_t nr; /* the slot */
	uint32_t pad_;
	_Atomic uint64_t pb[(MV_SECTION_PAGES >> 6) / MV_PB_PER_WORD]; /* pageblock order >= 6 */
	uint64_t backed[MV_SECTION_PAGES / 64]; /* a bit per page: backed by the OS */
	uint64_t desc_released[(MV_SEC_META_PAGES + 63) / 64]; /* metadata pages given back */
	uint64_t thp[((MV_SECTION_PAGES >> 6) + 63) / 64]; /* a bit per pageblock: MADV_HUGEPAGE */
};
_Static_assert(sizeof(struct mv_section) <= MV_PAGE_SIZE, "section header beyond its page");

/* the zone's table of slots: where each one's memory and metadata are */
struct mv_secref {
	char *base; /* NULL: absent */
	struct mv_section *s;
};

extern struct mv_section *_Atomic *_Atomic mv_secmap;

/* A section map entry of the default arena's zone carries this tag in its
 * low bit (sections are page-aligned), so that mova_free knows the owner
 * from the entry alone, without loading the section's zone and the default
 * arena's (mv_zone_mark_default). */
#define MV_SECMAP_DFLT ((uintptr_t)1)

static inline uintptr_t mv_secmap_entry(const void *p)
{
	uintptr_t i = (uintptr_t)p >> MV_SECTION_SHIFT;
	struct mv_section *_Atomic *map = atomic_load_explicit(&mv_secmap, memory_order_acquire);
	if (unlikely(i >= MV_SECMAP_ENTRIES || !map))
		return 0;
	return (uintptr_t)atomic_load_explicit(&map[i], memory_order_acquire);
}
/* The section holding p (any pointer), or NULL: one load. Check len (and
 * zone) before trusting it: the map covers a 64 MiB piece, the section may
 * cover less of it. */
static inline struct mv_section *mv_section_of(const void *p)
{
	return (struct mv_section *)(mv_secmap_entry(p) & ~MV_SECMAP_DFLT);
}
/* The section holding p when it is the default arena's, else NULL */
static inline struct mv_section *mv_section_of_dflt(const void *p)
{
	uintptr_t e = mv_secmap_entry(p);
	return e & MV_SECMAP_DFLT ? (struct mv_section *)(e - MV_SECMAP_DFLT) : NULL;
}
static inline struct mv_page *mv_section_desc(const struct mv_section *s)
{
	return (struct mv_page *)(void *)((char *)(uintptr_t)s + MV_SEC_DESC_OFF);
}

struct mv_zone {
	mv_mutex lock;
	size_t reserve_bytes;  /* the most memory the zone may map (a limit) */
	struct mv_secref *sec; /* nr_sections_max slots */
	size_t nr_sections_max;
	size_t slots_used;               /* slots below have been mapped at least once */
	uintptr_t secmap_tag;            /* MV_SECMAP_DFLT for the default arena's zone */
	_Atomic size_t nr_sections;      /* slots holding memory now */
	_Atomic size_t sections_added;   /* slots mapped, ever */
	_Atomic size_t sections_removed; /* slots given back whole, ever */
	_Atomic size_t mapped_bytes;     /* memory mapped (sum of the slots' len) */
	_Atomic size_t meta_bytes;       /* slot metadata mapped */
	_Atomic int map_errno;           /* why the OS last refused a section (0: it never did) */
	_Atomic size_t nr_holes;         /* absent slots below the frontier */
	unsigned pageblock_order;
	size_t pageblock_nr_pages;
	size_t nr_pages_max;          /* pfn space: nr_sections_max slots, or the limit */
	_Atomic size_t populated_pfn; /* the growth frontier: pfns below, in present slots, are
	                                 populated */
	_Atomic size_t desc_committed_bytes; /* descriptors (and headers) populated so far */
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

	/* transparent huge pages (mova_config.thp): the policy in force, set
	 * once before the zone grows (mv_zone_set_thp); under zone->lock, the
	 * section's thp bits say which pageblocks are advised MADV_HUGEPAGE */
	uint8_t thp;                  /* MV_THP_* */
	_Atomic uint64_t thp_advised; /* pageblocks advised, ever */
	_Atomic uint64_t thp_unadvised;
	_Atomic uint64_t thp_advised_now;
	_Atomic uint64_t thp_collapse;
	_Atomic uint64_t thp_collapse_failed;
};

/* zone->thp: OFF makes no call at all (the system's setting is never);
 * the others are mova_config.thp's policies */
enum { MV_THP_OFF, MV_THP_NEVER, MV_THP_MADVISE, MV_THP_ALWAYS };
/* pageblocks that get their first backed page are advised once the zone
 * holds this many pageblocks resident: a small process is not made to
 * fault 2 MiB for its first few objects */
#define MV_THP_DENSE_PAGEBLOCKS 8

/* An empty zone: nothing mapped but its slot table; reserve_bytes limits
 * the memory it may map (0: MV_MAX_ZONE_PAGES). 0 or errno (ENOMEM). */
int mv_zone_init(struct mv_zone *z, size_t reserve_bytes, unsigned pageblock_order,
		 struct mv_vmstat *vm);
void mv_zone_destroy(struct mv_zone *z);
/* tag the zone's section map entries as the default arena's (MV_SECMAP_DFLT) */
void mv_zone_mark_default(struct mv_zone *z);

/* the slot of pfn, and the pfn of a slot's first page */
static inline size_t mv_pfn_section(size_t pfn)
{
	return pfn >> MV_SECTION_PAGES_SHIFT;
}
static inline struct mv_section *mv_zone_section(const struct mv_zone *z, size_t pfn)
{
	return z->sec[mv_pfn_section(pfn)].s;
}
/* The pfn of p, which must be in the zone (a pointer the zone handed out,
 * or one mv_heap_owns vouched for): the global map's load. */
static inline size_t mv_zone_pfn(const struct mv_zone *z, const void *p)
{
	(void)z;
	const struct mv_section *s = mv_section_of(p);
	return ((size_t)s->nr << MV_SECTION_PAGES_SHIFT) |
	       (((uintptr_t)p >> MV_PAGE_SHIFT) & MV_SECTION_PAGE_MASK);
}
/* the descriptor of p's page, p in the zone (as for mv_zone_pfn) */
static inline struct mv_page *mv_zone_page_of(const void *p)
{
	return mv_section_desc(mv_section_of(p)) +
	       (((uintptr_t)p >> MV_PAGE_SHIFT) & MV_SECTION_PAGE_MASK);
}
static inline void *mv_zone_addr(const struct mv_zone *z, size_t pfn)
{
	return z->sec[mv_pfn_section(pfn)].base + ((pfn & MV_SECTION_PAGE_MASK) << MV_PAGE_SHIFT);
}
static inline struct mv_page *mv_pfn_to_page(const struct mv_zone *z, size_t pfn)
{
	return mv_section_desc(mv_zone_section(z, pfn)) + (pfn & MV_SECTION_PAGE_MASK);
}
/* true when pfn is populated (below the frontier, in a slot holding
 * memory); lockless */
static inline bool mv_zone_pfn_valid(const struct mv_zone *z, size_t pfn)
{
	return pfn < atomic_load_explicit(&z->populated_pfn, memory_order_acquire) &&
	       __atomic_load_n(&z->sec[mv_pfn_section(pfn)].base, __ATOMIC_ACQUIRE) != NULL;
}
/* The first valid pfn at or above pfn (a slot boundary past absent slots),
 * or the frontier. */
static inline size_t mv_zone_next_valid(const struct mv_zone *z, size_t pfn)
{
	size_t end = atomic_load_explicit(&z->populated_pfn, memory_order_acquire);
	while (pfn < end && !__atomic_load_n(&z->sec[mv_pfn_section(pfn)].base, __ATOMIC_ACQUIRE))
		pfn = (mv_pfn_section(pfn) + 1) << MV_SECTION_PAGES_SHIFT;
	return MV_MIN(pfn, end);
}
/* Are the pages [pfn, pfn + nr) one stretch of the address space? (Slots
 * are, when they were mapped together or the OS placed them adjacent.) */
static inline bool mv_zone_contiguous(const struct mv_zone *z, size_t pfn, size_t nr)
{
	size_t i = mv_pfn_section(pfn), last = mv_pfn_section(pfn + nr - 1);
	for (; i < last; i++)
		if (!z->sec[i].base || z->sec[i + 1].base != z->sec[i].base + MV_SECTION_SIZE)
			return false;
	return z->sec[last].base != NULL;
}
static inline size_t mv_pageblock_start_pfn(const struct mv_zone *z, size_t pfn)
{
	return pfn & ~(z->pageblock_nr_pages - 1);
}
/* the pageblock flags of pfn's section, for pageblock.h's accessors, which
 * then take pfn's place within its section */
static inline struct mv_pageblock_flags mv_zone_pb(const struct mv_zone *z, size_t pfn)
{
	struct mv_pageblock_flags pb = {mv_zone_section(z, pfn)->pb, z->pageblock_order,
					MV_SECTION_PAGES >> z->pageblock_order};
	return pb;
}
static inline int mv_get_pfnblock_migratetype(const struct mv_zone *z, size_t pfn)
{
	struct mv_pageblock_flags pb = mv_zone_pb(z, pfn);
	return mv_get_pageblock_migratetype(&pb, pfn & MV_SECTION_PAGE_MASK);
}
static inline bool mv_zone_pb_skip(const struct mv_zone *z, size_t pfn)
{
	struct mv_pageblock_flags pb = mv_zone_pb(z, pfn);
	return mv_get_pageblock_skip(&pb, pfn & MV_SECTION_PAGE_MASK);
}
static inline void mv_zone_set_pb_skip(const struct mv_zone *z, size_t pfn)
{
	struct mv_pageblock_flags pb = mv_zone_pb(z, pfn);
	mv_set_pageblock_skip(&pb, pfn & MV_SECTION_PAGE_MASK);
}
static inline void mv_zone_clear_pb_skip(const struct mv_zone *z, size_t pfn)
{
	struct mv_pageblock_flags pb = mv_zone_pb(z, pfn);
	mv_clear_pageblock_skip(&pb, pfn & MV_SECTION_PAGE_MASK);
}
/* the word of the backed bitmap holding pfn's bit (64 | MV_SECTION_PAGES:
 * a word never straddles two slots) */
static inline uint64_t *mv_zone_backed_word(const struct mv_zone *z, size_t pfn)
{
	return &mv_zone_section(z, pfn)->backed[(pfn & MV_SECTION_PAGE_MASK) / 64];
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

/* Growth (online_pages, after section hotplug): bring the pageblocks
 * [populated_pfn, end) into the arena, each pageblock typed mt, and
 * publish them (populated_pfn = end). Slots the range reaches that hold no
 * memory yet are mapped (sparse_add_section), all of them as one stretch of
 * address space, next to the slot below when the OS agrees (see
 * mv_zone_contiguous). Their pages are neither listed nor backed: the
 * caller frees them into the lists or hands them out. false if end is past
 * the zone's limit or the OS refused. */
bool mv_zone_populate(struct mv_zone *z, size_t end, int mt);

/* Growth into a hole: map the lowest absent slot below the frontier again,
 * all its pageblocks typed mt, and return its first pfn (MV_PFN_NONE when
 * there is no hole or the OS refused). Its pages are neither listed nor
 * backed: the caller frees them into the lists. */
size_t mv_zone_refill_hole(struct mv_zone *z, int mt);
/* sparse_remove_section: slot i, wholly free, unbacked and off the lists,
 * goes back to the OS whole (its memory unmapped, its descriptors given
 * back); the frontier comes down if it was the top slot. */
void mv_zone_unmap_section(struct mv_zone *z, size_t i);

/* Pages handed out and still held (a raw slab's) were given back to the OS
 * (unbacked) or are about to be touched again (backed): the backed bits
 * and resident count follow. Take zone->lock. */
void mv_zone_held_unbacked(struct mv_zone *z, size_t pfn, size_t nr);
void mv_zone_held_backed(struct mv_zone *z, size_t pfn, size_t nr);

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

/* Set the huge page policy (mova_config.thp) before the zone first grows;
 * MV_THP_OFF when the system's setting is never or unreadable. */
void mv_zone_set_thp(struct mv_zone *z, unsigned mova_thp);
/* The policy in force, as MOVA_THP_* (NEVER when off). */
unsigned mv_zone_thp_mode(const struct mv_zone *z);
/* Pages of [pfn, pfn + nr) went back to the OS: the pageblocks advised
 * MADV_HUGEPAGE among those it overlaps are no longer dense, and are
 * advised MADV_NOHUGEPAGE (khugepaged would otherwise collapse them again,
 * faulting in the pages given back). Caller holds zone->lock. */
void mv_zone_thp_unadvise(struct mv_zone *z, size_t pfn, size_t nr);
/* A block of type mt in pfn's pageblock is about to be handed out: if mt
 * is movable or reclaimable, the pageblock holds no backed page yet and
 * the zone is large enough that what it starts is filled
 * (MV_THP_DENSE_PAGEBLOCKS, no budget), advise it
 * MADV_HUGEPAGE and return true: the first touch faults all of it in, so
 * the caller marks its free pages backed (buddy.c). Caller holds
 * zone->lock. */
bool mv_zone_thp_dense(struct mv_zone *z, size_t pfn, int mt);
/* Advise the pageblock pb MADV_HUGEPAGE; true if it was not and now is.
 * Caller holds zone->lock. */
bool mv_zone_thp_advise_pageblock(struct mv_zone *z, size_t pb);
/* Is the pageblock of pfn advised MADV_HUGEPAGE? Caller holds zone->lock. */
bool mv_zone_thp_advised(const struct mv_zone *z, size_t pfn);

/* set (or clear) the backed bits of a range; returns how many changed */
static inline size_t mv_zone_set_backed(struct mv_zone *z, size_t pfn, size_t nr, bool on)
{
	size_t n = 0, end = pfn + nr;
	while (pfn < end) {
		size_t bit = pfn % 64, len = MV_MIN(64 - bit, end - pfn);
		uint64_t mask = len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1) << bit;
		uint64_t *wp = mv_zone_backed_word(z, pfn), old = *wp;
		/* an atomic store: mv_zone_pageblock_backed reads without the lock */
		mv_rstore(*wp, on ? old | mask : old & ~mask);
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
		size_t bit = pfn % 64, len = MV_MIN(64 - bit, end - pfn);
		uint64_t mask = len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1) << bit;
		if (mv_rload(*mv_zone_backed_word(z, pfn)) & mask) /* may run without the lock */
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
		size_t bit = pfn % 64, len = MV_MIN(64 - bit, end - pfn);
		uint64_t mask = len == 64 ? ~(uint64_t)0 : (((uint64_t)1 << len) - 1) << bit;
		n += (size_t)mv_popcount64(~*mv_zone_backed_word(z, pfn) & mask);
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
	struct mv_pageblock_flags pb = mv_zone_pb(z, pfn);
	mv_set_pageblock_migratetype(&pb, pfn & MV_SECTION_PAGE_MASK, mt);
	mv_relaxed_add(&z->nr_pageblocks_mt[old], (size_t)-1);
	mv_relaxed_add(&z->nr_pageblocks_mt[mt], 1);
}

#endif
