/* SPDX-License-Identifier: MIT */
/* pageblock.c: see pageblock.h; the kernel's set_pfnblock_flags_mask. */
#include "pageblock.h"

void mv_set_pfnblock_flags_mask(struct mv_pageblock_flags *pb, size_t pfn, unsigned flags,
				unsigned mask)
{
	size_t blk = pfn >> pb->order;
	unsigned shift = (unsigned)(blk % MV_PB_PER_WORD) * NR_PAGEBLOCK_BITS;
	_Atomic uint64_t *w = &pb->words[blk / MV_PB_PER_WORD];
	uint64_t m = (uint64_t)mask << shift, f = ((uint64_t)flags << shift) & m;
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(w, &old, (old & ~m) | f, memory_order_relaxed,
						      memory_order_relaxed))
		;
}
