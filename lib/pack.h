/* SPDX-License-Identifier: MIT */
/*
 * pack.h: packing, zsmalloc's zs_compact over an arena's movable classes:
 * per class, from the largest to the smallest, objects move from the
 * emptiest shared slab into the fullest (mv_slab_isolate_pair), so that
 * emptied slabs go back to the buddy allocator and resident memory
 * approaches live bytes. Zone compaction (compaction.h) runs it first for
 * a full compaction; kcompactd runs it when slab memory is sparse; the
 * slow path and reclaim run it under memory pressure.
 *
 * Locks: compact->lock for the whole pass (one compactor per arena), the
 * bin lock in short holds inside.
 */
#ifndef MV_PACK_H
#define MV_PACK_H

#include "migrate.h"

struct mova_arena;

/* Packing pass over every movable class; returns slabs emptied. */
size_t mv_compact_pack(struct mova_arena *a, enum migrate_mode mode);
/* Fraction (0..100) of movable slab memory that holds no object. */
unsigned mv_pack_waste_percent(struct mova_arena *a);

#endif
