/* SPDX-License-Identifier: MIT */
/*
 * htable.h: the handle table and the encoding of handles and entries.
 *
 * A handle (64 bits) = tag:17 | gen:15 | index:32. The tag names the arena,
 * the index a table entry, the generation the entry's incarnation. A stale,
 * forged or foreign handle is refused by arithmetic (tag; any index may be
 * looked up, see mv_htable_entry, and an entry never committed reads as
 * zero) and two loads (the chunk, then generation and LIVE).
 *
 * An entry is one atomic 64-bit word, so a reader gets the address and the
 * state that vouches for it in a single load:
 *   bits  0..34  loc: (object address - arena base) / 16  (free entries: next free index)
 *   bits 35..46  pins (0..MOVA_MAX_PINS)
 *   bit  47      MIGRATING: a migration owns the object; pins and frees wait
 *   bit  48      LIVE: the entry holds an object (a zeroed entry is not live)
 *   bits 49..63  gen
 * The table grows in chunks (below); entries never move and the memory is
 * never unmapped while the arena lives, so a racing reader may always load
 * an entry. See docs/MIGRATION.md for the protocol.
 */
#ifndef MV_HTABLE_H
#define MV_HTABLE_H

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

/* The table grows in chunks, found through a directory (a two-level
 * table, as the kernel's SPARSEMEM_EXTREME finds a section's mem_map):
 * index = chunk:16 | slot:16. The directory has a slot for every chunk any
 * 32-bit index can name and is readable throughout (zero pages until a
 * chunk is added), so any index may be looked up: an absent chunk reads as
 * NULL and the lookup fails, without a bound check. A chunk's memory never
 * moves and is never unmapped while the arena lives, and is readable
 * throughout (entries not yet committed read as zero, which is not LIVE),
 * so a racing reader may always load an entry it found. Nothing is
 * reserved up front but the directory (512 KiB of address space). */
#define MV_HT_CHUNK_SHIFT 16
#define MV_HT_CHUNK_ENTRIES ((size_t)1 << MV_HT_CHUNK_SHIFT)
#define MV_HT_DIR_ENTRIES ((size_t)1 << (32 - MV_HT_CHUNK_SHIFT))
#define MV_HT_COMMIT_ENTRIES 8192 /* commit 64 KiB of a chunk at a time */

struct mv_htable {
	_Atomic(_Atomic uint64_t *) *dir; /* MV_HT_DIR_ENTRIES chunk pointers */
	size_t max;                       /* capacity in entries */
	uint32_t base;                    /* the first index this arena hands out */
	_Atomic size_t committed;         /* entries [base, committed) are readable and writable */
	size_t next;        /* entries [base, next) have been handed out at least once */
	uint32_t free_head; /* shared free list, linked through loc */
	size_t nr_free;
	_Atomic size_t nr_retired; /* entries whose generation ran out */
	size_t nr_chunks;
	mv_mutex lock; /* growth and the shared free list (rank MV_RANK_HANDLES) */
};

/* The entry of index idx, or NULL when no chunk holds it. Lockless: the
 * acquire pairs with the release that published the chunk (grow_locked). */
static inline _Atomic uint64_t *mv_htable_entry(const struct mv_htable *t, uint32_t idx)
{
	_Atomic uint64_t *c =
	    atomic_load_explicit(&t->dir[idx >> MV_HT_CHUNK_SHIFT], memory_order_acquire);
	return c ? c + (idx & (MV_HT_CHUNK_ENTRIES - 1)) : NULL;
}

/* An empty table handing out indices from base (arena.c keeps indices of
 * a reused arena tag apart, see there), at most max of them. 0 or ENOMEM. */
int mv_htable_init(struct mv_htable *t, uint32_t base, size_t max);
void mv_htable_destroy(struct mv_htable *t);
/* The index above every one this table handed out (for the next arena
 * with the same tag). */
static inline uint64_t mv_htable_end(const struct mv_htable *t)
{
	return t->next;
}
/* refill a thread's entry cache; false when the table is full */
bool mv_htable_refill(struct mv_htable *t, uint32_t *hidx, uint32_t *nhidx);
/* give back part (or all) of a thread's entry cache */
void mv_htable_drain(struct mv_htable *t, uint32_t *hidx, uint32_t *nhidx, unsigned keep);
size_t mv_htable_resident_bytes(struct mv_htable *t);
/* Live handles: entries ever handed out, less those free on the shared
 * list, retired, or cached by a thread (the caller holds the arena's
 * threads_lock and gives the sum of its caches' nhidx). Exact when no
 * thread is between halloc or hfree and the next; the fast paths keep no
 * counter of their own. */
size_t mv_htable_live(struct mv_htable *t, size_t cached);

#endif
