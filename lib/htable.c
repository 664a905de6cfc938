/* SPDX-License-Identifier: MIT */
/*
 * htable.c: the handle table (see htable.h): growth in chunks, the shared
 * free list and the threads' caches of free entries. What the entries say
 * and who may change them is hentry.h's.
 */
#include "htable.h"

#include <errno.h>
#include <string.h>

#include "os.h"

#define NONE32 UINT32_MAX

/* ------------------------------------------------------------ the table */

#define HT_DIR_BYTES (MV_HT_DIR_ENTRIES * sizeof(void *))
#define HT_CHUNK_BYTES (MV_HT_CHUNK_ENTRIES * sizeof(uint64_t))

int mv_htable_init(struct mv_htable *t, uint32_t base, size_t max)
{
	memset(t, 0, sizeof *t);
	mv_mutex_init(&t->lock, MV_RANK_HANDLES);
	/* index UINT32_MAX is the free lists' end marker: never handed out */
	t->max = MV_MIN(max, (size_t)UINT32_MAX - base);
	t->base = base;
	t->next = base;
	atomic_store_explicit(&t->committed, base, memory_order_relaxed);
	/* readable throughout: an absent chunk reads as NULL (see handle.h) */
	t->dir = mv_os_reserve_readable(HT_DIR_BYTES, MV_PAGE_SIZE);
	t->free_head = NONE32;
	return t->dir ? 0 : ENOMEM;
}

void mv_htable_destroy(struct mv_htable *t)
{
	if (t->dir) {
		for (size_t i = 0; i < MV_HT_DIR_ENTRIES && t->nr_chunks; i++) {
			_Atomic uint64_t *c =
			    atomic_load_explicit(&t->dir[i], memory_order_relaxed);
			if (c) {
				mv_os_release(c, HT_CHUNK_BYTES);
				t->nr_chunks--;
			}
		}
		mv_os_release(t->dir, HT_DIR_BYTES);
		t->dir = NULL;
	}
	mv_mutex_destroy(&t->lock);
}

/* Make MV_HT_COMMIT_ENTRIES more entries (or up to the capacity) usable:
 * a new chunk when the next entry starts one, readable throughout and
 * published in the directory only once it is mapped; then commit. */
static bool grow_locked(struct mv_htable *t)
{
	size_t c = mv_relaxed_load(&t->committed);
	if (c - t->base >= t->max)
		return false;
	size_t ci = c >> MV_HT_CHUNK_SHIFT;
	_Atomic uint64_t *chunk = atomic_load_explicit(&t->dir[ci], memory_order_relaxed);
	if (!chunk) {
		chunk = mv_os_reserve_readable(HT_CHUNK_BYTES, MV_PAGE_SIZE);
		if (!chunk)
			return false;
		/* the directory's page becomes writable with its first chunk */
		char *dpage = (char *)mv_align_down((uintptr_t)&t->dir[ci], MV_PAGE_SIZE);
		if (mv_os_commit(dpage, MV_PAGE_SIZE)) {
			mv_os_release(chunk, HT_CHUNK_BYTES);
			return false;
		}
		atomic_store_explicit(&t->dir[ci], chunk, memory_order_release);
		mv_rstore(t->nr_chunks, t->nr_chunks + 1); /* read without the lock (stats) */
	}
	size_t in = c & (MV_HT_CHUNK_ENTRIES - 1);
	size_t n = MV_MIN((size_t)MV_HT_COMMIT_ENTRIES - (in & (MV_HT_COMMIT_ENTRIES - 1)),
			  t->base + t->max - c);
	size_t from = mv_align_down(in * 8, MV_PAGE_SIZE),
	       to = mv_align_up((in + n) * 8, MV_PAGE_SIZE);
	if (mv_os_commit((char *)chunk + from, to - from))
		return false;
	atomic_store_explicit(&t->committed, c + n, memory_order_release);
	return true;
}

bool mv_htable_refill(struct mv_htable *t, uint32_t *hidx, uint32_t *nhidx)
{
	mv_lock(&t->lock);
	while (*nhidx < MV_HCACHE / 2) {
		uint32_t idx;
		if (t->free_head != NONE32) {
			idx = t->free_head;
			uint64_t w =
			    atomic_load_explicit(mv_htable_entry(t, idx), memory_order_relaxed);
			t->free_head = (uint32_t)MV_H_LOC(w);
			t->nr_free--;
		} else if (t->next < mv_relaxed_load(&t->committed)) {
			idx = (uint32_t)t->next++;
		} else if (!grow_locked(t)) {
			break;
		} else {
			continue;
		}
		hidx[*nhidx] = idx;
		mv_rstore(*nhidx, *nhidx + 1);
	}
	mv_unlock(&t->lock);
	return *nhidx > 0;
}

void mv_htable_drain(struct mv_htable *t, uint32_t *hidx, uint32_t *nhidx, unsigned keep)
{
	if (*nhidx <= keep)
		return;
	mv_lock(&t->lock);
	while (*nhidx > keep) {
		mv_rstore(*nhidx, *nhidx - 1);
		uint32_t idx = hidx[*nhidx];
		_Atomic uint64_t *e = mv_htable_entry(t, idx);
		uint64_t w = atomic_load_explicit(e, memory_order_relaxed);
		/* not LIVE: readers refuse it; loc carries the free-list link */
		atomic_store_explicit(e, (w & (MV_H_GEN_MASK << MV_H_GEN_SHIFT)) | t->free_head,
				      memory_order_relaxed);
		t->free_head = idx;
		t->nr_free++;
	}
	mv_unlock(&t->lock);
}

size_t mv_htable_live(struct mv_htable *t, size_t cached)
{
	mv_lock(&t->lock);
	size_t out = t->nr_free + mv_relaxed_load(&t->nr_retired) + cached;
	size_t used = t->next - t->base;
	size_t live = used > out ? used - out : 0;
	mv_unlock(&t->lock);
	return live;
}

size_t mv_htable_resident_bytes(struct mv_htable *t)
{
	/* committed entries, and a directory page per chunk at most */
	size_t c = mv_relaxed_load(&t->committed) - t->base;
	return mv_align_up(c * 8, MV_PAGE_SIZE) + mv_rload(t->nr_chunks) * MV_PAGE_SIZE;
}

/* mova.h's inline deref hard-codes this encoding */
_Static_assert(MV_HANDLE_TAG_SHIFT == 47 && MV_HT_CHUNK_SHIFT == 16 && MV_H_LOC_BITS == 35 &&
		   MV_H_GEN_SHIFT == 49 && MV_H_LIVE == ((uint64_t)1 << 48) &&
		   MV_H_GEN_MASK == 0x7fff,
	       "include/mova.h's mova_deref_inline_ must change with the encoding");
