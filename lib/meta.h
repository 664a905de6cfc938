/* SPDX-License-Identifier: MIT */
/*
 * meta.h: the metadata allocator. Slab headers, back-reference arrays,
 * thread caches and grace-period batches live outside the arena's
 * pageblocks, so that metadata never pollutes a pageblock's mobility and
 * never recurses into the allocator (the preload library's malloc is mova
 * itself).
 *
 * A pool is a small slab allocator of its own: 128 KiB chunks, each
 * serving one block size (64-byte steps to 2 KiB, 256-byte steps to
 * 16 KiB), carved from extents of address space reserved as needed; a
 * chunk whose blocks are all free goes back to the OS (MADV_DONTNEED) and
 * is reused for any size. Larger blocks are mapped directly. Blocks come zeroed. Thread-safe:
 * one lock per pool (rank MV_RANK_META), taken only on slow paths.
 */
#ifndef MV_META_H
#define MV_META_H

#include "lock.h"

#define MV_META_CHUNK ((size_t)128 << 10)
#define MV_META_MAX_BLOCK ((size_t)16 << 10)
#define MV_META_NR_SIZES (32 + 56)

struct mv_meta_chunk;

#define MV_META_EXTENT ((size_t)4 << 20) /* address space reserved at a time */

struct mv_meta_pool {
	mv_mutex lock;
	char *extent;   /* the extent chunks are carved from, NULL at first */
	size_t carved;  /* bytes of it handed out as chunks */
	char **extents; /* every extent reserved, for destroy (a mapping of its own) */
	size_t nr_extents, cap_extents;
	struct mv_meta_chunk *partial[MV_META_NR_SIZES];
	struct mv_meta_chunk *empty; /* given back, reusable */
	_Atomic size_t mapped_bytes; /* backed: chunks in use plus direct maps */
};

/* An empty pool: address space is reserved an extent at a time as chunks
 * are needed (nothing up front: a process under RLIMIT_AS pays only for
 * what it uses). */
void mv_meta_init(struct mv_meta_pool *pool);
/* Unmap everything. No block of the pool may be used afterwards. */
void mv_meta_destroy(struct mv_meta_pool *pool);
/* A zeroed block of at least size bytes, aligned to 64. NULL with errno
 * ENOMEM when the OS refuses memory. */
void *mv_meta_alloc(struct mv_meta_pool *pool, size_t size);
void mv_meta_free(struct mv_meta_pool *pool, void *p, size_t size);

/* The process-wide pool (thread records). */
struct mv_meta_pool *mv_global_meta(void);

#endif
