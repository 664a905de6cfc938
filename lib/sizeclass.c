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

static void geometry(struct mv_class *c)
{
	unsigned min_slots = c->movable ? MIN_SLOTS_MOV : MIN_SLOTS_RAW;
	unsigned start = 0;
	while (start < MV_SLAB_MAX_ORDER && ((size_t)4096 << start) / c->size < min_slots)
		start++;
	unsigned best = start;
	double best_waste = 2.0;
	for (unsigned o = start; o <= MV_SLAB_MAX_ORDER; o++) {
		size_t bytes = (size_t)4096 << o;
		size_t n = bytes / c->size;
		if (!n)
			continue;
		double waste = (double)(bytes - n * c->size) / (double)bytes;
		if (waste < best_waste - 1e-9) {
			best_waste = waste;
			best = o;
		}
		if (waste <= 1.0 / 64)
			break;
	}
	c->order = (uint8_t)best;
	c->npages = (uint16_t)(1u << best);
	c->nregs = (uint16_t)(((size_t)4096 << best) / c->size);
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
