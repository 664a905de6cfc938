/* SPDX-License-Identifier: MIT */
/*
 * handle.h: the handle table and the encoding of handles and entries.
 *
 * A handle (64 bits) = tag:17 | gen:15 | index:32. The tag names the arena,
 * the index a table entry, the generation the entry's incarnation. A stale,
 * forged or foreign handle is refused by arithmetic (tag; any index may be
 * loaded, see MV_HTABLE_VA, and an entry never committed reads as zero) and
 * one load (generation, LIVE).
 *
 * An entry is one atomic 64-bit word, so a reader gets the address and the
 * state that vouches for it in a single load:
 *   bits  0..34  loc: (object address - arena base) / 16  (free entries: next free index)
 *   bits 35..46  pins (0..MOVA_MAX_PINS)
 *   bit  47      MIGRATING: a migration owns the object; pins and frees wait
 *   bit  48      LIVE: the entry holds an object (a zeroed entry is not live)
 *   bits 49..63  gen
 * The table is reserved up front and committed as it grows; entries never
 * move and the memory is never unmapped while the arena lives, so a racing
 * reader may always load an entry. See docs/MIGRATION.md for the protocol.
 */
#ifndef MV_HANDLE_H
#define MV_HANDLE_H

#include "lock.h"

#define MV_H_LOC_BITS 35
#define MV_H_LOC_MASK ((((uint64_t)1) << MV_H_LOC_BITS) - 1)
#define MV_H_PIN_SHIFT 35
#define MV_H_PIN_ONE (((uint64_t)1) << MV_H_PIN_SHIFT)
#define MV_H_PIN_MASK (((uint64_t)0xfff) << MV_H_PIN_SHIFT)
#define MV_H_MIGRATING (((uint64_t)1) << 47)
#define MV_H_LIVE (((uint64_t)1) << 48)
#define MV_H_GEN_SHIFT 49
#define MV_H_GEN_MASK ((uint64_t)0x7fff)
/* a retired entry: not LIVE, generation all ones, loc all ones (no free-list
 * link); it stays out of every free list for good */
#define MV_H_RETIRED ((MV_H_GEN_MASK << MV_H_GEN_SHIFT) | MV_H_LOC_MASK)

#define MV_H_PINS(w) ((unsigned)(((w)&MV_H_PIN_MASK) >> MV_H_PIN_SHIFT))
#define MV_H_GEN(w) ((uint32_t)(((w) >> MV_H_GEN_SHIFT) & MV_H_GEN_MASK))
#define MV_H_LOC(w) ((w)&MV_H_LOC_MASK)

/* handle = tag:17 | gen:15 | index:32 */
#define MV_HANDLE_TAG_SHIFT 47
#define MV_HANDLE_TAG_MASK ((uint64_t)0x1ffff)
static inline mova_handle mv_handle_make(uint32_t tag, uint32_t gen, uint32_t idx)
{
	return ((uint64_t)tag << MV_HANDLE_TAG_SHIFT) | ((uint64_t)(gen & MV_H_GEN_MASK) << 32) |
	       idx;
}
static inline uint32_t mv_handle_tag(mova_handle h)
{
	return (uint32_t)(h >> MV_HANDLE_TAG_SHIFT);
}
static inline uint32_t mv_handle_gen(mova_handle h)
{
	return (uint32_t)((h >> 32) & MV_H_GEN_MASK);
}
static inline uint32_t mv_handle_index(mova_handle h)
{
	return (uint32_t)h;
}

/* the entry word of a live object at loc with gen and no pins */
static inline uint64_t mv_entry_live(uint32_t gen, uint64_t loc)
{
	return ((uint64_t)gen << MV_H_GEN_SHIFT) | MV_H_LIVE | loc;
}

#define MV_HCACHE 64 /* entries a thread keeps for halloc */

struct mv_htable {
	_Atomic uint64_t *entries;
	size_t max; /* capacity in entries */
	size_t reserved_bytes;
	_Atomic size_t committed; /* entries readable */
	size_t next;              /* entries below have been handed out at least once */
	uint32_t free_head;       /* shared free list, linked through loc */
	size_t nr_free;
	_Atomic size_t nr_retired; /* entries whose generation ran out */
	mv_mutex lock;             /* growth and the shared free list (rank MV_RANK_HANDLES) */
};

struct mova_arena;
struct mv_tcache;

/* The table's address space: room for every 32-bit index, reserved by the
 * arena just below its zone and readable throughout (see mova.h's
 * mova__deref_inline, which finds the zone at entries + MV_HTABLE_VA). */
#define MV_HTABLE_VA ((size_t)sizeof(uint64_t) << 32)

int mv_htable_init(struct mv_htable *t, void *table, size_t max);
void mv_htable_destroy(struct mv_htable *t);
/* refill a thread's entry cache; false when the table is full */
bool mv_htable_refill(struct mv_htable *t, struct mv_tcache *tc);
/* give back part (or all) of a thread's entry cache */
void mv_htable_drain(struct mv_htable *t, struct mv_tcache *tc, unsigned keep);
size_t mv_htable_resident_bytes(struct mv_htable *t);
/* Live handles: entries ever handed out, less those free on the shared
 * list, retired, or cached by a thread (the caller holds the arena's
 * threads_lock and gives the sum of its caches' nhidx). Exact when no
 * thread is between halloc or hfree and the next; the fast paths keep no
 * counter of their own. */
size_t mv_htable_live(struct mv_htable *t, size_t cached);

#endif
