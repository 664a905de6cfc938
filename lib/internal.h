/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what every file of lib/ may use: compiler helpers, the page
 * geometry, and the names of the kernel's constants. Includes nothing of
 * mova's own but the public header; everything else includes it.
 */
#ifndef MV_INTERNAL_H
#define MV_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mova.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define MV_NOINLINE __attribute__((noinline))
#define MV_INLINE static inline __attribute__((always_inline))
#define MV_COLD __attribute__((cold))
#define MV_HIDDEN __attribute__((visibility("hidden")))
#define MV_CACHELINE 64
#define MV_ALIGNED_CL __attribute__((aligned(MV_CACHELINE)))
#define MV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MV_UNUSED(x) ((void)(x))

/* Free-list hardening (slab.h): meson -Dsecure sets it for the library and
 * whatever includes its headers; 1 unless told otherwise. */
#ifndef MV_SECURE
#define MV_SECURE 1
#endif

#define MV_PAGE_SHIFT 12
#define MV_PAGE_SIZE ((size_t)1 << MV_PAGE_SHIFT)
#define MV_PAGE_MASK (MV_PAGE_SIZE - 1)
#define MV_MAX_PAGE_ORDER MOVA_MAX_PAGE_ORDER
#define MV_NR_PAGE_ORDERS MOVA_NR_PAGE_ORDERS
#define MV_PAGE_ALLOC_COSTLY_ORDER 3 /* orders the per-thread page lists keep */

/* The kernel's migratetypes, by their kernel names. */
enum {
	MIGRATE_UNMOVABLE = MOVA_MIGRATE_UNMOVABLE,
	MIGRATE_MOVABLE = MOVA_MIGRATE_MOVABLE,
	MIGRATE_RECLAIMABLE = MOVA_MIGRATE_RECLAIMABLE,
	MIGRATE_PCPTYPES = MOVA_MIGRATE_PCPTYPES,
	MIGRATE_HIGHATOMIC = MOVA_MIGRATE_HIGHATOMIC,
	MIGRATE_CMA = MOVA_MIGRATE_CMA,
	MIGRATE_ISOLATE = MOVA_MIGRATE_ISOLATE,
	MIGRATE_TYPES = MOVA_MIGRATE_TYPES,
};

static inline bool is_migrate_movable(int mt)
{
	return mt == MIGRATE_MOVABLE || mt == MIGRATE_CMA;
}
static inline bool migratetype_is_mergeable(int mt)
{
	return mt < MIGRATE_PCPTYPES;
}

#define MV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MV_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline size_t mv_align_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}
static inline size_t mv_align_down(size_t x, size_t a)
{
	return x & ~(a - 1);
}
static inline bool mv_is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}
/* floor(log2(x)) for x > 0 */
static inline unsigned mv_ilog2(size_t x)
{
	return (unsigned)(63 - __builtin_clzl(x));
}
/* smallest order with (1 << order) >= n pages, n >= 1 */
static inline unsigned mv_order_for_pages(size_t n)
{
	return n <= 1 ? 0 : mv_ilog2(n - 1) + 1;
}

/* popcount without a libgcc call on the x86-64 baseline (no POPCNT) */
static inline unsigned mv_popcount64(uint64_t x)
{
#if defined(__POPCNT__)
	return (unsigned)__builtin_popcountll(x);
#else
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

/* relaxed atomic helpers for statistics counters */
#define mv_relaxed_load(p) atomic_load_explicit((p), memory_order_relaxed)
#define mv_relaxed_store(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define mv_relaxed_add(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)

/* Racy access to a plain field that another thread may read or write:
 * relaxed atomics, so the race is defined (and ThreadSanitizer agrees). */
#define mv_rload(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define mv_rstore(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

/* Add to a counter only its owning thread writes: a plain read-modify-write
 * through relaxed atomics (no lock prefix), readable from other threads. */
#define mv_owner_add(p, v) mv_relaxed_store((p), mv_relaxed_load(p) + (v))

static inline void mv_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
