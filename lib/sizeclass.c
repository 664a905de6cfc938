/* SPDX-License-Identifier: MIT */
/* sizeclass.c: see sizeclass.h. */
#include "sizeclass.h"

#include <pthread.h>

struct mv_class mv_classes[MV_NR_CLASSES];
uint8_t mv_raw_class_lut[65];

/* Pick the slab size: from the smallest order that holds MIN_SLOTS slots
 * (or the largest order), the first whose tail waste is at most 1/64 of
 * the slab, else the one with the least waste. Enough slots per slab keep
 * the fast path's refills rare (mimalloc's small pages hold 64 KiB). */
#define MIN_SLOTS_RAW 128
#define MIN_SLOTS_MOV 16
/* Past 512 bytes, 32 slots: a thread holds a partly used slab per class
 * it uses, and at 128 slots those were 64 KiB each from 512 B up. Each
 * of git pack-objects' two delta threads held 70 slabs (790 pages) for
 * 100 KiB of live data; peak RSS of git gc --aggressive 19.5 -> 18.8 MiB.
 * A 1024-object batch of 768 B objects costs 18.0 ns a pair, not 14.6
 * (jemalloc: 28 at 512 B). Up to 512 B the refills cost more than that. */
#define MIN_SLOTS_RAW_MID 32
#define MIN_SLOTS_MID_FROM 512

static void geometry(struct mv_class *c)
{
	unsigned min_slots = c->movable                     ? MIN_SLOTS_MOV
			     : c->size > MIN_SLOTS_MID_FROM ? MIN_SLOTS_RAW_MID
							    : MIN_SLOTS_RAW;
	/* a handle object's slot also takes its back-reference, at the slab's end */
	const size_t foot = c->size + (c->movable ? MV_BACKREF_BYTES : 0);
	unsigned start = 0;
	while (start < MV_SLAB_MAX_ORDER && ((size_t)4096 << start) / foot < min_slots)
		start++;
	unsigned best = start;
	double best_waste = 2.0;
	for (unsigned o = start; o <= MV_SLAB_MAX_ORDER; o++) {
		size_t bytes = (size_t)4096 << o;
		size_t n = bytes / foot;
		if (!n)
			continue;
		double waste = (double)(bytes - n * foot) / (double)bytes;
		if (waste < best_waste - 1e-9) {
			best_waste = waste;
			best = o;
		}
		if (waste <= 1.0 / 64)
			break;
	}
	size_t npages = (size_t)1 << best;
	/* Past 1/64 of tail waste (classes of a few KiB: 9.4% for 7424 B in
	 * 16 pages), any page count up to MV_SLAB_MAX_PAGES: the smallest
	 * that wastes at most 1/64, else the least wasteful (7424 B fits 29
	 * pages exactly). Such a slab is a buddy block with its tail given
	 * back (alloc_pages_exact). */
	if (best_waste > 1.0 / 64) {
		size_t alt = 0;
		double alt_waste = best_waste;
		for (size_t n = 1; n <= MV_SLAB_MAX_PAGES; n++) {
			size_t bytes = n * 4096, k = bytes / foot;
			if (!k)
				continue;
			double waste = (double)(bytes - k * foot) / (double)bytes;
			if (waste <= 1.0 / 64) {
				alt = n;
				break;
			}
			if (waste < alt_waste - 1e-9) {
				alt_waste = waste;
				alt = n;
			}
		}
		if (alt)
			npages = alt;
	}
	c->npages = (uint16_t)npages;
	c->order = (uint8_t)mv_order_for_pages(npages);
	c->nregs = (uint16_t)((npages * 4096) / foot);
	c->magic = (uint32_t)((((uint64_t)1 << 32) + c->size - 1) / c->size);
}

static void init_once(void)
{
	unsigned i = 0;
	for (unsigned s = 16; s <= 256; s += 16)
		mv_classes[i++].size = s;
	for (unsigned base = 256; base < MV_SMALL_MAX; base *= 2)
		for (unsigned k = 1; k <= 8; k++)
			mv_classes[i++].size = base + k * (base / 8);
	for (unsigned s = 16; s <= 1024; s += 16) {
		mv_classes[i].movable = 1;
		mv_classes[i++].size = s;
	}
	for (unsigned base = 1024; base < MV_SMALL_MAX; base *= 2)
		for (unsigned k = 1; k <= 16; k++) {
			mv_classes[i].movable = 1;
			mv_classes[i++].size = base + k * (base / 16);
		}
	/* reclaimable: the raw sizes with handles' back-references */
	for (unsigned r = 0; r < MV_NR_RCL_CLASSES; r++) {
		mv_classes[i].movable = 1;
		mv_classes[i].mt = MIGRATE_RECLAIMABLE;
		mv_classes[i++].size = mv_classes[r].size;
	}
	for (unsigned c = 0; c < MV_NR_CLASSES; c++) {
		if (c >= MV_MOV_CLASS0 && c < MV_RCL_CLASS0)
			mv_classes[c].mt = MIGRATE_MOVABLE;
		geometry(&mv_classes[c]);
	}
	for (unsigned q = 0; q <= 64; q++) {
		size_t size = q ? (size_t)q * 16 : 1;
		unsigned c = 0;
		while (mv_classes[c].size < size)
			c++;
		mv_raw_class_lut[q] = (uint8_t)c;
	}
}

void mv_sizeclass_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_once);
}
