/* SPDX-License-Identifier: MIT */
/*
 * mova: a userspace memory allocator built on the Linux kernel's answer to
 * fragmentation: pageblocks with migratetypes under a buddy allocator,
 * movable objects reached through handles, migration and compaction.
 *
 * This is the only installed header. Every function documents its context.
 * The extended API returns 0 or a positive errno value; the malloc family
 * behaves as POSIX says. See docs/DESIGN.md and docs/MIGRATION.md.
 */
#ifndef MOVA_H
#define MOVA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MOVA_API __attribute__((visibility("default")))
#define MOVA_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define MOVA_API
#define MOVA_MALLOC_ATTR
#endif

#define MOVA_VERSION_MAJOR 0
#define MOVA_VERSION_MINOR 1

/* ------------------------------------------------------------------ types */

typedef struct mova_arena mova_arena; /* opaque */
typedef uint64_t mova_handle;         /* opaque; MOVA_NULL (0) is never valid */
#define MOVA_NULL ((mova_handle)0)

/* The kernel's order (include/linux/mmzone.h); stored 4 bits per pageblock. */
enum mova_migratetype {
	MOVA_MIGRATE_UNMOVABLE,
	MOVA_MIGRATE_MOVABLE,
	MOVA_MIGRATE_RECLAIMABLE,
	MOVA_MIGRATE_HIGHATOMIC,
	MOVA_MIGRATE_CMA,
	MOVA_MIGRATE_ISOLATE,
	MOVA_MIGRATE_TYPES
};
#define MOVA_MIGRATE_PCPTYPES 3 /* types kept on the per-thread page lists */

/* Page orders: 0 .. MOVA_MAX_PAGE_ORDER, as the kernel's MAX_PAGE_ORDER. */
#define MOVA_MAX_PAGE_ORDER 10
#define MOVA_NR_PAGE_ORDERS (MOVA_MAX_PAGE_ORDER + 1)
#define MOVA_PAGE_SIZE 4096u

/*
 * Arena configuration. Always start from mova_config_init(), which sets
 * every field to its default; mova_arena_create() validates every field
 * and fails with EINVAL naming nothing but the errno (use
 * mova_config_check() to get the reason as text).
 */
typedef struct mova_config {
	size_t reserve_bytes;     /* address space reserved up front; 0 = default (64 GiB);
	                             at least 4 pageblocks, at most 512 GiB */
	unsigned pageblock_order; /* 0 = default 9 (2 MiB pageblocks); 6..10 */
	int kcompactd;            /* 1 = run the background compaction thread, started lazily when
	                             there is work for it and again in a forked child (default 1) */
	unsigned proactiveness;   /* 0..100, as vm.compaction_proactiveness (default 20) */
	/* ---- extensions ---- */
	unsigned extfrag_threshold; /* 0..1000, as vm.extfrag_threshold (default 500) */
	unsigned
	    kcompactd_cpu_budget; /* percent of one CPU kcompactd may use, 1..100 (default 10) */
	unsigned
	    kcompactd_interval_ms; /* proactive check period (default 500, HPAGE_FRAG_CHECK_INTERVAL_MSEC) */
	size_t retain_bytes;      /* free memory kept backed for reuse: decay never gives back
	                                  below it; default (0): 1/32 of resident memory, 2 to
	                                  16 pageblocks */
	size_t cma_bytes;         /* pageblocks reserved as MIGRATE_CMA at creation (default 0) */
	size_t max_handles;       /* handle table capacity; 0 = default (reserve_bytes / 64) */
	size_t limit_bytes;       /* memory budget: resident_bytes kept at most this (within one
	                        pageblock) by returning free memory and running shrinkers
	                        before an allocation fails; 0 = no budget (default) */
	int mempolicy;            /* MOVA_MPOL_* mode, optionally | MOVA_MPOL_F_STATIC_NODES or
	                        MOVA_MPOL_F_RELATIVE_NODES (default MOVA_MPOL_DEFAULT) */
	uint64_t mempolicy_nodes; /* the policy's node mask, bit n = node n (default 0) */
	unsigned numa_nodes;      /* 0 = the machine's nodes (mbind applies the policy);
	                        1..MOVA_MAX_NUMNODES = simulate that many nodes: placement
	                        is decided and recorded, no page is really bound (tests) */
	unsigned decay_ms;        /* free memory nobody reused goes back to the OS gradually
	                        over this many ms (jemalloc's dirty decay: a smoothstep from
	                        freed to gone); kept down to retain_bytes; 0 = at once.
	                        Done by kcompactd (default 1000, at most 600000) */
	unsigned thp;             /* transparent huge pages (MOVA_THP_*): MADVISE (0, default):
	                        pageblocks that will be dense (runs of whole pageblocks for
	                        large objects; pageblocks first taken for a type once the
	                        arena holds 16 MiB) are advised MADV_HUGEPAGE, the advice
	                        taken back when a page of one goes back to the OS, the rest
	                        MADV_NOHUGEPAGE; NEVER: the whole arena MADV_NOHUGEPAGE (no
	                        huge pages even where the system's setting is always);
	                        ALWAYS: the whole arena MADV_HUGEPAGE as it is mapped. Where
	                        the system's setting is never (or unreadable) mova makes
	                        no such call. MOVA_CONF: thp:never|madvise|always */
} mova_config;

/* mova_config.thp and mova_stats.thp_mode / thp_system */
enum mova_thp { MOVA_THP_MADVISE = 0, MOVA_THP_NEVER = 1, MOVA_THP_ALWAYS = 2 };

/* ------------------------------------------------------------------ arena */

/* Fill every field of *cfg with its default. Never fails. */
MOVA_API void mova_config_init(mova_config *cfg);

/* Validate cfg. Returns 0, or EINVAL and (if msg != NULL) a string naming the field, valid
 * until this thread's next mova_config_check or mova_arena_create (limits are printed into a
 * per-thread buffer). */
MOVA_API int mova_config_check(const mova_config *cfg, const char **msg);

/* Create an arena. NULL cfg means defaults. Returns NULL and sets errno on
 * failure: EINVAL for a bad field, ENOMEM when the reservation fails. */
MOVA_API mova_arena *mova_arena_create(const mova_config *cfg);

/* Stop the arena's kcompactd and return all its memory. No other thread may
 * use the arena during or after the call; handles and pointers die with it.
 * Called inside a read section (mova_read_lock) it destroys nothing: it
 * reports the misuse on stderr and returns, the arena whole. */
MOVA_API void mova_arena_destroy(mova_arena *a);

/* The process-wide arena that mova_malloc and the preload library use,
 * created on first use (configured by MOVA_CONF). Never destroyed. */
MOVA_API mova_arena *mova_default_arena(void);

/* ------------------------------------------- movable objects, via handles */

/* Allocate a movable object of size bytes (0 is allowed). MOVA_NULL with
 * errno ENOMEM on failure. Contents uninitialised; mova_hcalloc zeroes them. */
MOVA_API mova_handle mova_halloc(mova_arena *a, size_t size);
MOVA_API mova_handle mova_hcalloc(mova_arena *a, size_t size);

/* Free. 0, or EINVAL for a handle that is not live (stale, already freed,
 * foreign, MOVA_NULL), or EBUSY for a pinned object. Never corrupts the arena. */
MOVA_API int mova_hfree(mova_arena *a, mova_handle h);

/* The object's address, stable until the matching mova_unpin. Pins nest and
 * may be released from any thread. NULL with errno EINVAL for a handle that
 * is not live (never another object's memory), EOVERFLOW when the object
 * already holds MOVA_MAX_PINS pins. May wait briefly for a migration in
 * flight to publish the object's new address. */
MOVA_API void *mova_pin(mova_arena *a, mova_handle h);
#define MOVA_MAX_PINS 4095

/* 0, or EINVAL when the handle is not live or not pinned. */
MOVA_API int mova_unpin(mova_arena *a, mova_handle h);

/* The size asked for at allocation; 0 if the handle is not live. */
MOVA_API size_t mova_hsize(mova_arena *a, mova_handle h);

/* An RCU read-side section (liburcu, bulletproof flavour: no registration
 * needed). Sections nest. */
MOVA_API void mova_read_lock(void);
MOVA_API void mova_read_unlock(void);

/* Read-only access inside a read section, valid until mova_read_unlock; the
 * object may be migrated meanwhile and the address returned keeps the
 * contents it had. NULL with errno EINVAL for a handle that is not live.
 * Writing through it is not allowed: writers pin. */
MOVA_API const void *mova_deref(mova_arena *a, mova_handle h);

/* The inline fast path of mova_deref: two loads (the table's chunk, then
 * the entry), checked, and the address; anything unusual goes to the
 * library's mova_deref. What it reads (the head of every arena, the
 * encoding of handles and entries) is not part of the contract and may
 * change with the library's version (MOVA_ABI); define MOVA_NO_INLINE to
 * call the library every time. */
#define MOVA_ABI 3
struct mova_arena_head_ {
	/* the handle table's directory: 65536 chunk pointers (NULL where no
	 * chunk is), each chunk 65536 entries; readable for every index |
	 * the arena's tag << 47 */
	uint64_t table_and_tag;
	/* where the objects are: the arena's sections, two words per 64 MiB
	 * slot, the first its address; an entry's loc (bits 0..34) is the
	 * slot (loc >> 22) and 16-byte units into it */
	const char *const *sections;
};

static inline const void *mova_deref_inline_(mova_arena *a, mova_handle h)
{
	if (__builtin_expect(a != NULL, 1)) {
		const struct mova_arena_head_ *hd =
		    (const struct mova_arena_head_ *)(const void *)a;
		uint64_t tt = hd->table_and_tag;
		if (__builtin_expect(((h ^ tt) >> 47) == 0, 1)) { /* the arena's tag */
			const uint64_t *const *dir =
			    (const uint64_t *const *)(uintptr_t)(tt & ((1ull << 47) - 1));
			/* acquire, where rcu_dereference relies on the dependency: the
			 * same instruction on x86, and the C11 rule ThreadSanitizer
			 * checks (the chunk's mapping, and migration's copy, happen
			 * before their publication) */
			const uint64_t *chunk =
			    __atomic_load_n(dir + ((uint32_t)h >> 16), __ATOMIC_ACQUIRE);
			if (__builtin_expect(chunk != NULL, 1)) {
				uint64_t w =
				    __atomic_load_n(chunk + (h & 0xffff), __ATOMIC_ACQUIRE);
				/* the handle's generation (bits 32..46) moved to the
				 * entry's (bits 49..63): equal, and LIVE (bit 48) set */
				if (__builtin_expect(((w ^ ((h >> 32) << 49)) >> 48) == 1, 1))
					return hd->sections[2 * ((w >> 22) & 0x1fff)] +
					       ((w << 4) & ((1ull << 26) - 1));
			}
		}
	}
	return mova_deref(a, h);
}

#ifndef MOVA_NO_INLINE
#define mova_deref(a, h) mova_deref_inline_((a), (h))
#endif

/* ----------------------------------- unmovable memory (raw), malloc-like */

MOVA_API MOVA_MALLOC_ATTR void *mova_malloc(size_t size);
MOVA_API MOVA_MALLOC_ATTR void *mova_calloc(size_t nmemb, size_t size);
MOVA_API void *mova_realloc(void *ptr, size_t size);
MOVA_API void mova_free(void *ptr);
/* Any power-of-two alignment the default arena can hold, aligned in the
 * address space (past 4 MiB a run of alignment + size bytes of the arena is
 * taken and what is not needed given back at once); an alignment larger
 * than the arena fails with ENOMEM. */
MOVA_API MOVA_MALLOC_ATTR void *mova_aligned_alloc(size_t alignment, size_t size);
MOVA_API int mova_posix_memalign(void **memptr, size_t alignment, size_t size);
MOVA_API size_t mova_usable_size(const void *ptr);

/* ------------------------------------------------------------- compaction */

/* mova_compact's results besides 0 (success) */
enum mova_compact_result {
	MOVA_COMPACT_SKIPPED = 1,     /* not suitable: too little free memory to compact into,
	                                 or the problem is lack of memory, not fragmentation */
	MOVA_COMPACT_DEFERRED = 2,    /* recent attempts at this order failed; backing off */
	MOVA_COMPACT_NO_PROGRESS = 3, /* ran, but no free block of the order came of it */
	MOVA_COMPACT_CONTENDED = 4, /* stopped early: locks contended or no room to migrate into */
};

/* Synchronous compaction by the calling thread. order < 0 compacts the
 * whole arena (as writing 1 to /proc/sys/vm/compact_memory: pack sparse
 * slabs, then migrate scanner against free scanner over every pageblock)
 * and then returns free pageblocks to the OS; it returns 0. order >= 0
 * stops as soon as a free block of that order exists (direct compaction:
 * async, then sync-light) and returns 0 or one of the codes above. EINVAL
 * for a NULL arena or an order above MOVA_MAX_PAGE_ORDER; EDEADLK inside a
 * read section (compaction waits for readers). Objects pinned meanwhile
 * stay where they are. */
MOVA_API int mova_compact(mova_arena *a, int order);

/* Give the calling thread's caches for a back to the arena, as the kernel's
 * drain_local_pages and SLUB's flush_slab do for a CPU (jemalloc's
 * thread.tcache.flush, mimalloc's mi_collect): its current slabs, which
 * compaction never takes from a thread, its page lists and its pending
 * frees. A thread that has allocated a lot and will rest calls it before a
 * compaction made elsewhere; its next allocation starts afresh. Returns 0,
 * or EINVAL for a NULL arena. mova_compact flushes the calling thread's
 * caches itself. */
MOVA_API int mova_thread_flush(mova_arena *a);

/* As wakeup_kcompactd: ask the arena's kcompactd to make order free.
 * Never blocks; does nothing for order <= 0 or an arena without kcompactd. */
MOVA_API void mova_kcompactd_wakeup(mova_arena *a, int order);

/* ------------------------------------------------- contiguous allocation */

/* nr_pages physically contiguous (in the arena) pages, page-aligned, as
 * alloc_contig_range / cma_alloc: CMA pageblocks first, then movable ones
 * cleared by migrating their objects out (MR_CONTIG_RANGE), then free or
 * new pageblocks. NULL with errno ENOMEM (nothing could be cleared),
 * EINVAL (nr_pages 0) or EDEADLK (called inside a read section). At most
 * 64 pageblocks. */
MOVA_API void *mova_alloc_contig(mova_arena *a, size_t nr_pages);
/* 0, or EINVAL when p is not the start of a contiguous allocation of
 * exactly nr_pages from this arena. */
MOVA_API int mova_free_contig(mova_arena *a, void *p, size_t nr_pages);

/* ------------------------------------------------ memory policy (NUMA) */

/* The kernel's modes and flags (include/uapi/linux/mempolicy.h), same numbers. */
enum {
	MOVA_MPOL_DEFAULT = 0,
	MOVA_MPOL_PREFERRED = 1,
	MOVA_MPOL_BIND = 2,
	MOVA_MPOL_INTERLEAVE = 3,
	MOVA_MPOL_LOCAL = 4,
	MOVA_MPOL_PREFERRED_MANY = 5,
	MOVA_MPOL_WEIGHTED_INTERLEAVE = 6,
	MOVA_MPOL_MAX = 7
};
/* mode flags, or-ed into the mode */
#define MOVA_MPOL_F_STATIC_NODES (1 << 15)
#define MOVA_MPOL_F_RELATIVE_NODES (1 << 14)
#define MOVA_MPOL_F_NUMA_BALANCING (1 << 13) /* accepted with BIND and PREFERRED_MANY; no effect */
/* mova_get_mempolicy flags */
#define MOVA_MPOL_F_NODE (1 << 0)
#define MOVA_MPOL_F_ADDR (1 << 1)
#define MOVA_MPOL_F_MEMS_ALLOWED (1 << 2)
/* mova_set_mempolicy flags, as mbind's */
#define MOVA_MPOL_MF_STRICT (1 << 0)
#define MOVA_MPOL_MF_MOVE (1 << 1)
#define MOVA_MPOL_MF_MOVE_ALL (1 << 2)
#define MOVA_MAX_NUMNODES 64

/*
 * Set the arena's memory policy, as mbind(2) over the whole arena. The unit
 * of placement is the pageblock: each pageblock gets a node when it is
 * populated (or repopulated after going back to the OS) and, on a real
 * machine, is bound there with mbind. nodemask/maxnode as the syscall
 * (maxnode - 1 bits are read). flags: MOVA_MPOL_MF_MOVE (or MOVE_ALL)
 * migrates the movable objects of pageblocks on nodes the new policy does
 * not allow onto allowed ones (MR_MEMPOLICY_MBIND); MOVA_MPOL_MF_STRICT
 * then reports EIO if anything (unmovable memory, pinned objects) stays
 * misplaced. Returns 0; EINVAL for a bad mode, flag or node mask (the
 * arena is untouched); ENOSYS when the kernel has no mbind; EDEADLK for
 * MOVE inside a read section.
 */
MOVA_API int mova_set_mempolicy(mova_arena *a, int mode, const unsigned long *nodemask,
				unsigned long maxnode, unsigned flags);

/*
 * As get_mempolicy(2) for the arena. flags 0: the policy's mode (with its
 * mode flags) and node mask. MOVA_MPOL_F_ADDR: the policy governing addr,
 * which must lie in a populated part of the arena (EFAULT otherwise).
 * MOVA_MPOL_F_NODE | MOVA_MPOL_F_ADDR: *mode is the node the page at addr
 * lives on (asked of the kernel for a backed page on a real machine).
 * MOVA_MPOL_F_NODE alone: the next interleave node (EINVAL unless the
 * policy interleaves). MOVA_MPOL_F_MEMS_ALLOWED: the nodes that exist.
 * nodemask may be NULL; if not, maxnode must cover every node (EINVAL).
 */
MOVA_API int mova_get_mempolicy(mova_arena *a, int *mode, unsigned long *nodemask,
				unsigned long maxnode, const void *addr, unsigned long flags);

/* MPOL_WEIGHTED_INTERLEAVE's weight of a node (as
 * /sys/kernel/mm/mempolicy/weighted_interleave/nodeN): 1..255, 0 resets it
 * to the default (the sysfs value where it exists, else 1). 0 or EINVAL. */
MOVA_API int mova_set_interleave_weight(mova_arena *a, unsigned node, unsigned weight);

/* ------------------------------------- reclaimable objects and shrinkers */

/* mova_halloc_flags flags */
#define MOVA_HF_ZERO 0x1 /* zero the contents, as mova_hcalloc */
#define MOVA_HF_RECLAIMABLE \
	0x2 /* a cache entry its owner can rebuild: placed in
				   RECLAIMABLE pageblocks, freed by the owner's shrinker */

/* mova_halloc with flags. MOVA_NULL with errno EINVAL for unknown flags or
 * ENOMEM (nothing could be reclaimed within the budget). */
MOVA_API mova_handle mova_halloc_flags(mova_arena *a, size_t size, unsigned flags);

/* What a shrinker is asked to do (struct shrink_control). */
typedef struct mova_shrink_control {
	size_t nr_to_scan; /* objects to look at */
	size_t nr_scanned; /* set to nr_to_scan before the call; the callback may
	                      lower it to what it really looked at */
} mova_shrink_control;

#define MOVA_SHRINK_STOP (~(size_t)0)      /* scan: cannot make progress now */
#define MOVA_SHRINK_EMPTY (~(size_t)0 - 1) /* count: nothing freeable */
#define MOVA_DEFAULT_SEEKS 2

/* count: how many objects could be freed now (0 or MOVA_SHRINK_EMPTY for
 * none). scan: free up to sc->nr_to_scan of them with mova_hfree (a pinned
 * object refuses with EBUSY and must be skipped) and return how many were
 * freed, or MOVA_SHRINK_STOP. Both may run in any thread that allocates
 * from the arena, concurrently with each other and with the owner, and
 * must not allocate from the arena (such allocations get no reclaim). */
typedef size_t (*mova_count_objects_fn)(mova_arena *a, void *priv);
typedef size_t (*mova_scan_objects_fn)(mova_arena *a, mova_shrink_control *sc, void *priv);

typedef struct mova_shrinker mova_shrinker; /* opaque */

/* Register a shrinker (register_shrinker): seeks weighs how costly its
 * objects are to rebuild (MOVA_DEFAULT_SEEKS; 0 = half of them per pass).
 * NULL with errno EINVAL (NULL argument) or ENOMEM. */
MOVA_API mova_shrinker *mova_shrinker_register(mova_arena *a, mova_count_objects_fn count,
					       mova_scan_objects_fn scan, void *priv,
					       unsigned seeks);
/* Unregister; waits until no call into it is running. 0, EINVAL when s is
 * not registered with a, EDEADLK from within s's own callback. */
MOVA_API int mova_shrinker_unregister(mova_arena *a, mova_shrinker *s);

/* Reclaim on demand (as writing to memory.reclaim): run the shrinkers and
 * give the freed memory back to the OS until resident_bytes has dropped by
 * bytes or nothing more comes free (SIZE_MAX: everything, as drop_caches).
 * *freed (may be NULL) gets the objects the shrinkers freed. 0; EINVAL for
 * a NULL arena; EAGAIN when less than bytes came free; EDEADLK inside a
 * read section. */
MOVA_API int mova_shrink(mova_arena *a, size_t bytes, size_t *freed);

/* Change the budget (mova_config.limit_bytes; 0 = none). Lowering it below
 * what the arena holds reclaims at once. 0, EINVAL, or EAGAIN when the
 * arena could not get under the new limit (which stays set). */
MOVA_API int mova_set_limit(mova_arena *a, size_t limit_bytes);

/* ------------------------------------------------------------- statistics */

/* vmstat-style event counters, in the kernel's names where it has them. */
#define MOVA_VMSTAT_ITEMS(X)                                                                \
	X(pgalloc)         /* page blocks handed out by the buddy allocator */              \
	X(pgfree)          /* page blocks given back to the buddy allocator */              \
	X(pcp_refill)      /* per-thread page list refills from the zone */                 \
	X(pcp_drain)       /* per-thread page list drains to the zone */                    \
	X(pageblock_grow)  /* pageblocks brought into the arena */                          \
	X(pageblock_claim) /* fallbacks that claimed a whole pageblock */                   \
	X(pageblock_steal) /* fallbacks that took only the pages needed */                  \
	X(pages_returned)  /* free pages given back to the OS (MADV_DONTNEED) */            \
	X(slab_alloc)      /* slabs created */                                              \
	X(slab_free)       /* slabs given back to the page allocator */                     \
	X(compact_stall)                                                                    \
	X(compact_success)                                                                  \
	X(compact_fail)                                                                     \
	X(compact_migrate_scanned)                                                          \
	X(compact_free_scanned)                                                             \
	X(compact_isolated)                                                                 \
	X(compact_daemon_wake)                                                              \
	X(compact_daemon_migrate_scanned)                                                   \
	X(compact_daemon_free_scanned)                                                      \
	X(pgmigrate_success)                                                                \
	X(pgmigrate_fail)                                                                   \
	X(rcu_batches)        /* grace-period batches of freed memory */                    \
	X(allocstall)         /* allocations that reclaimed to stay within the budget */    \
	X(slabs_scanned)      /* objects shrinkers were asked to scan */                    \
	X(shrink_reclaimed)   /* objects shrinkers freed */                                 \
	X(mempolicy_migrated) /* objects moved by a policy change (MR_MEMPOLICY_MBIND) */   \
	X(flush_requests)     /* reclaims that asked all threads for their caches */        \
	X(section_add)        /* 64 MiB sections of address space mapped (hotplug) */       \
	X(section_remove)     /* sections emptied and unmapped */                           \
	X(twin_alloc)         /* raw objects placed in two free slots of half their size */ \
	X(twin_free)          /* such objects freed */

typedef struct mova_stats {
	size_t reserved_bytes;  /* address space the arena's sections map */
	size_t populated_bytes; /* pageblocks brought into the arena so far */
	size_t
	    resident_bytes; /* arena memory backed by the OS as mova accounts it, metadata included */
	size_t
	    metadata_bytes; /* the part of resident_bytes that is metadata (descriptors, handles, slabs' headers) */
	size_t live_bytes;   /* bytes asked for by live handle objects and large raw allocations,
	                           plus the usable size of live small raw allocations */
	size_t free_bytes;   /* bytes on the buddy free lists (ISOLATE excluded) */
	size_t live_handles; /* handles allocated and not freed */
	size_t page_size;
	unsigned pageblock_order;
	uint64_t nr_free[MOVA_NR_PAGE_ORDERS];                        /* buddyinfo */
	uint64_t nr_free_mt[MOVA_MIGRATE_TYPES][MOVA_NR_PAGE_ORDERS]; /* pagetypeinfo */
	uint64_t nr_pageblocks[MOVA_MIGRATE_TYPES]; /* pageblocks per migratetype */
	uint64_t nr_pageblocks_unbacked;            /* populated pageblocks without a backed page */
	unsigned fragmentation_score;               /* 0..100, as fragmentation_score_node */
	size_t nr_thread_caches; /* threads holding a cache for the arena (a thread's cache
	                            is torn down when it exits) */
#define MOVA_STATS_FIELD(name) uint64_t name;
	MOVA_VMSTAT_ITEMS(MOVA_STATS_FIELD)
#undef MOVA_STATS_FIELD
	size_t max_bytes;   /* the most the arena may map: reserve_bytes, or 512 GiB */
	size_t nr_sections; /* sections mapped now (section_add - section_remove) */
	/* ---- transparent huge pages (mova_config.thp) ---- */
	unsigned thp_mode;      /* the policy in force: MOVA_THP_*; NEVER where the system's is */
	unsigned thp_system;    /* /sys/kernel/mm/transparent_hugepage/enabled, read once:
	                        MOVA_THP_* (NEVER also when it cannot be read) */
	uint64_t thp_advised;   /* pageblocks advised MADV_HUGEPAGE (events) */
	uint64_t thp_unadvised; /* advice taken back (a page of the pageblock went back) */
	uint64_t thp_advised_pageblocks; /* pageblocks advised now */
	uint64_t thp_collapse;           /* MADV_COLLAPSE calls that succeeded (kcompactd) */
	uint64_t thp_collapse_failed;    /* ... and failed (the kernel's fault-time or
	                                    khugepaged huge pages are not counted here) */
	size_t thp_anon_huge_bytes;      /* AnonHugePages of the whole process, from
	                                    /proc/self/smaps_rollup, read at most every 100 ms
	                                    (0 if unreadable or the system has no huge pages) */
} mova_stats;

/* Snapshot of the arena's statistics. Safe to call from any thread at any
 * time; the snapshot is consistent per field, not across fields. */
MOVA_API void mova_stats_get(mova_arena *a, mova_stats *st);

/* Human-readable: buddyinfo, pagetypeinfo and the counters, in the
 * kernel's formats. */
MOVA_API void mova_stats_print(mova_arena *a, FILE *f);

/* One populated pageblock, as mova_pageblocks reports it. */
typedef struct mova_pageblock_info {
	uint8_t migratetype;        /* enum mova_migratetype */
	uint8_t skip;               /* the compaction skip bit */
	uint16_t free_pages;        /* on the buddy free lists */
	uint16_t movable_pages;     /* in movable slabs and movable large objects */
	uint16_t unmovable_pages;   /* in raw slabs, raw large objects, contiguous ranges */
	uint16_t backed_pages;      /* backed by the OS */
	uint16_t reclaimable_pages; /* in reclaimable slabs and reclaimable large objects */
	uint8_t node;               /* the node it is placed on; 0xff: none (unbacked) */
	uint8_t absent; /* 1: a hole, its section given back to the OS (every count 0) */
} mova_pageblock_info;

/* Fill out[0..max) with the first pageblocks of the arena, in address
 * order; returns how many are populated (which may exceed max). A racy
 * snapshot, for pictures and tests. */
MOVA_API size_t mova_pageblocks(mova_arena *a, mova_pageblock_info *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif /* MOVA_H */
