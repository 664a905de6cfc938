/* SPDX-License-Identifier: MIT */
/* pack.c: see pack.h. */
#include "pack.h"

#include "arena.h"

struct pack_control {
	struct mova_arena *a;
	struct mv_tcache *ctc; /* owner of the slabs isolated */
	enum migrate_mode mode;
	struct mv_migrate_old old;
};

/* the destination of every object of a pair: its fullest slab */
static void *pack_alloc(struct mv_heap *h, unsigned cls, size_t size, void *priv)
{
	(void)h;
	(void)size;
	return mv_slab_alloc_isolated(priv, cls);
}

static void pack_class(struct pack_control *pc, unsigned cls)
{
	struct mv_heap *h = &pc->a->heap;
	for (unsigned rounds = 0; rounds < 4096; rounds++) {
		struct mv_slab *src, *dst;
		if (!mv_slab_isolate_pair(h, cls, pc->ctc, &src, &dst))
			break;
		int r = mv_migrate_slab(h, src, pack_alloc, dst, &pc->old, pc->mode, MR_COMPACTION);
		/* the destination holds only new copies: back at once; the source
		 * after the grace period, when it is found empty */
		mv_slab_putback(h, dst);
		mv_migrate_old_add_slab(&pc->old, src);
		if (!mv_rcu_readers_ever())
			mv_migrate_old_flush(&pc->old);
		if (r > 0)
			break; /* pinned objects: leave this class for now */
	}
}

size_t mv_compact_pack(struct mova_arena *a, enum migrate_mode mode)
{
	struct pack_control pc = {.a = a, .ctc = a->compact.ctc, .mode = mode};
	if (!pc.ctc || !mv_migrate_old_init(&pc.old, &a->heap))
		return 0;
	mv_lock(&a->compact.lock);
	uint64_t before = mv_relaxed_load(&a->heap.vm.ev[MV_VM_slab_free]);
	/* zs_compact goes from the largest class to the smallest */
	for (int cls = MV_NR_CLASSES - 1; cls >= MV_MOV_CLASS0; cls--)
		if (mv_bin_can_pack(&a->heap, (unsigned)cls))
			pack_class(&pc, (unsigned)cls);
	mv_migrate_old_flush(&pc.old);
	size_t emptied = (size_t)(mv_relaxed_load(&a->heap.vm.ev[MV_VM_slab_free]) - before);
	mv_unlock(&a->compact.lock);
	mv_migrate_old_destroy(&pc.old);
	return emptied;
}

unsigned mv_pack_waste_percent(struct mova_arena *a)
{
	uint64_t waste = 0, total = 0;
	for (unsigned cls = MV_MOV_CLASS0; cls < MV_NR_CLASSES; cls++) {
		const struct mv_class *c = &mv_classes[cls];
		uint64_t slabs = mv_relaxed_load(&a->heap.bins[cls].nr_slabs);
		if (!slabs)
			continue;
		total += slabs * c->npages * MV_PAGE_SIZE;
		waste += (uint64_t)mv_rload(a->heap.bins[cls].nr_partial_free) * c->size;
	}
	return total ? (unsigned)(waste * 100 / total) : 0;
}
