/* SPDX-License-Identifier: MIT */
/* meta.c: see meta.h. */
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "os.h"

struct mv_meta_chunk {
	struct mv_meta_chunk *next, *prev; /* pool->partial[size] or pool->empty */
	void *free;                        /* free blocks of this chunk */
	uint32_t size_index;
	uint32_t block;   /* block size */
	uint32_t nblocks; /* blocks in the chunk */
	uint32_t nfree;
	uint32_t bump; /* blocks never handed out start here */
};

#define HDR 64 /* the chunk header's room, before the first block */

static unsigned size_index(size_t size)
{
	if (size <= 2048)
		return size ? (unsigned)((size - 1) >> 6) : 0;
	return 32 + (unsigned)((size - 2048 - 1) >> 8);
}

static size_t index_size(unsigned i)
{
	return i < 32 ? (size_t)(i + 1) << 6 : 2048 + ((size_t)(i - 31) << 8);
}

void mv_meta_init(struct mv_meta_pool *pool)
{
	memset(pool, 0, sizeof *pool);
	mv_mutex_init(&pool->lock, MV_RANK_META);
	pool->carved = MV_META_EXTENT; /* no extent yet: the first chunk reserves one */
}

void mv_meta_destroy(struct mv_meta_pool *pool)
{
	for (size_t i = 0; i < pool->nr_extents; i++)
		mv_os_release(pool->extents[i], MV_META_EXTENT);
	if (pool->extents)
		mv_os_release(pool->extents, pool->cap_extents * sizeof(char *));
	pool->extents = NULL;
	pool->extent = NULL;
	mv_mutex_destroy(&pool->lock);
}

/* a new extent to carve chunks from; caller holds the lock */
static bool new_extent(struct mv_meta_pool *pool)
{
	if (pool->nr_extents == pool->cap_extents) {
		size_t cap = pool->cap_extents ? 2 * pool->cap_extents : 512;
		char **e = mv_os_map(cap * sizeof *e);
		if (!e)
			return false;
		if (pool->extents) {
			memcpy(e, pool->extents, pool->nr_extents * sizeof *e);
			mv_os_release(pool->extents, pool->cap_extents * sizeof *e);
		}
		pool->extents = e;
		pool->cap_extents = cap;
	}
	/* chunk-aligned: a block finds its chunk's header by masking */
	char *x = mv_os_reserve(MV_META_EXTENT, MV_META_CHUNK);
	if (!x)
		return false;
	pool->extents[pool->nr_extents++] = x;
	pool->extent = x;
	pool->carved = 0;
	return true;
}

static void list_del(struct mv_meta_chunk **head, struct mv_meta_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void list_add(struct mv_meta_chunk **head, struct mv_meta_chunk *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

/* a chunk for size index i; caller holds the lock */
static struct mv_meta_chunk *new_chunk(struct mv_meta_pool *pool, unsigned i)
{
	struct mv_meta_chunk *c = pool->empty;
	if (c) {
		list_del(&pool->empty, c);
	} else {
		if (pool->carved + MV_META_CHUNK > MV_META_EXTENT && !new_extent(pool))
			return NULL;
		c = (struct mv_meta_chunk *)(pool->extent + pool->carved);
		if (mv_os_commit(c, MV_META_CHUNK))
			return NULL;
		pool->carved += MV_META_CHUNK;
	}
	mv_relaxed_add(&pool->mapped_bytes, MV_META_CHUNK);
	size_t block = index_size(i);
	c->size_index = i;
	c->block = (uint32_t)block;
	c->nblocks = (uint32_t)((MV_META_CHUNK - HDR) / block);
	c->nfree = c->nblocks;
	c->bump = 0;
	c->free = NULL;
	return c;
}

void *mv_meta_alloc(struct mv_meta_pool *pool, size_t size)
{
	if (size > MV_META_MAX_BLOCK) {
		void *p = mv_os_map(mv_align_up(size, MV_PAGE_SIZE));
		if (!p) {
			errno = ENOMEM;
			return NULL;
		}
		mv_relaxed_add(&pool->mapped_bytes, mv_align_up(size, MV_PAGE_SIZE));
		return p;
	}
	unsigned i = size_index(size);
	mv_lock(&pool->lock);
	struct mv_meta_chunk *c = pool->partial[i];
	if (!c) {
		c = new_chunk(pool, i);
		if (!c) {
			mv_unlock(&pool->lock);
			errno = ENOMEM;
			return NULL;
		}
		list_add(&pool->partial[i], c);
	}
	void *p = c->free;
	bool recycled = p != NULL;
	if (p)
		c->free = *(void **)p;
	else
		p = (char *)c + HDR + (size_t)c->bump++ * c->block;
	if (--c->nfree == 0)
		list_del(&pool->partial[i], c);
	mv_unlock(&pool->lock);
	if (recycled)
		memset(p, 0, c->block); /* untouched blocks of a chunk are already zero */
	return p;
}

void mv_meta_free(struct mv_meta_pool *pool, void *p, size_t size)
{
	if (!p)
		return;
	if (size > MV_META_MAX_BLOCK) {
		mv_os_release(p, mv_align_up(size, MV_PAGE_SIZE));
		mv_relaxed_add(&pool->mapped_bytes, -mv_align_up(size, MV_PAGE_SIZE));
		return;
	}
	struct mv_meta_chunk *c = (struct mv_meta_chunk *)((uintptr_t)p & ~(MV_META_CHUNK - 1));
	mv_lock(&pool->lock);
	*(void **)p = c->free;
	c->free = p;
	if (c->nfree++ == 0)
		list_add(&pool->partial[c->size_index], c);
	if (c->nfree == c->nblocks) {
		/* wholly free: give it back, keep the header page for the empty list */
		list_del(&pool->partial[c->size_index], c);
		if (!mv_os_decommit((char *)c + MV_PAGE_SIZE, MV_META_CHUNK - MV_PAGE_SIZE)) {
			memset((char *)c + HDR, 0, MV_PAGE_SIZE - HDR);
			list_add(&pool->empty, c);
			mv_relaxed_add(&pool->mapped_bytes, -MV_META_CHUNK);
		} else {
			/* the OS refused: keep it as a partial chunk of its size */
			list_add(&pool->partial[c->size_index], c);
		}
	}
	mv_unlock(&pool->lock);
}

static struct mv_meta_pool global_pool;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
	mv_meta_init(&global_pool);
}

struct mv_meta_pool *mv_global_meta(void)
{
	pthread_once(&global_once, global_init);
	return &global_pool;
}
