/* SPDX-License-Identifier: MIT */
/*
 * arena.c: arena creation and destruction, the registry of live arenas,
 * and the default arena (created on first use, configured by MOVA_CONF).
 *
 * The registry (mv_heap_registry_lock, rank GLOBAL) lets thread exit and fork
 * see which arenas are alive; a thread exiting tears down its caches under
 * it, and mova_arena_destroy unregisters under it, so the two never race.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "arena.h"
#include "compaction.h"
#include "fork.h"
#include "kcompactd.h"
#include "os.h"
#include "options.h"

struct mova_arena *mv_default;

/*
 * Handle tags. A handle carries its arena's tag (17 bits, never 0), so a
 * handle of one arena is refused by another by arithmetic. There are fewer
 * tags than arenas a process may create, so tags come back; a dead arena's
 * handle must still never reach an object of a later arena with its tag.
 * So each tag remembers the end of the index range its last arena handed
 * out, and the next arena with that tag hands out indices only above it:
 * the old handle's index then names an entry the new arena never wrote
 * (it reads as zero, not LIVE) or no entry at all. A tag whose index space
 * is spent is retired. Tags go round-robin, live ones skipped. Under
 * mv_heap_registry_lock.
 */
#define MV_NR_TAGS (MV_HANDLE_TAG_MASK + 1)
#define MV_TAG_MIN_ROOM ((uint64_t)1 << 28) /* indices an arena must have left */
static uint32_t tag_index_end[MV_NR_TAGS];
static uint64_t tag_live[MV_NR_TAGS / 64];
static uint32_t next_tag = 1;

static uint32_t tag_get(uint32_t *base)
{
	for (uint32_t n = 0; n < MV_NR_TAGS; n++) {
		uint32_t t = next_tag;
		next_tag = next_tag == MV_HANDLE_TAG_MASK ? 1 : next_tag + 1;
		if (tag_live[t / 64] & ((uint64_t)1 << (t % 64)))
			continue;
		if ((uint64_t)tag_index_end[t] + MV_TAG_MIN_ROOM > UINT32_MAX)
			continue; /* retired */
		tag_live[t / 64] |= (uint64_t)1 << (t % 64);
		*base = tag_index_end[t];
		return t;
	}
	return 0;
}

/* Test-only: the tag the next arena tries first, so a test can make a tag
 * come back without creating 2^17 arenas. */
void mv_arena_test_next_tag(uint32_t tag);
void mv_arena_test_next_tag(uint32_t tag)
{
	mv_lock(&mv_heap_registry_lock);
	next_tag = tag & MV_HANDLE_TAG_MASK ? tag & MV_HANDLE_TAG_MASK : 1;
	mv_unlock(&mv_heap_registry_lock);
}

static void tag_put(uint32_t t, uint64_t index_end)
{
	tag_index_end[t] = (uint32_t)MV_MIN(index_end, (uint64_t)UINT32_MAX);
	tag_live[t / 64] &= ~((uint64_t)1 << (t % 64));
}

/* Register a (epoch, tag); its handle table starts at the tag's base. */
static int registry_add(struct mova_arena *a)
{
	mv_lock(&mv_heap_registry_lock);
	uint32_t base = 0;
	uint32_t tag = tag_get(&base);
	if (!tag) {
		mv_unlock(&mv_heap_registry_lock);
		return ENOMEM;
	}
	int err = mv_htable_init(&a->heap.htab, base, a->cfg.max_handles);
	if (!err)
		err = mv_heap_register(&a->heap);
	if (err) {
		tag_put(tag, base);
		mv_unlock(&mv_heap_registry_lock);
		return err;
	}
	a->tag = tag;
	/* what mova.h's inline deref reads */
	a->head.table_and_tag = (uint64_t)(uintptr_t)a->heap.htab.dir | ((uint64_t)a->tag << 47);
	a->head.sections = (const char *const *)(const void *)a->heap.zone.sec;
	mv_unlock(&mv_heap_registry_lock);
	return 0;
}

struct foreach_arg {
	void (*fn)(struct mova_arena *a, void *arg);
	void *arg;
};
static void foreach_heap(struct mv_heap *h, void *arg)
{
	struct foreach_arg *fa = arg;
	fa->fn(mv_arena_of(h), fa->arg);
}
void mv_arena_foreach(void (*fn)(struct mova_arena *a, void *arg), void *arg)
{
	struct foreach_arg fa = {fn, arg};
	mv_heap_foreach(foreach_heap, &fa);
}

static void registry_del(struct mova_arena *a)
{
	mv_lock(&mv_heap_registry_lock);
	mv_heap_unregister(&a->heap);
	tag_put(a->tag, mv_htable_end(&a->heap.htab));
	mv_unlock(&mv_heap_registry_lock);
}

static void arena_free_memory(struct mova_arena *a)
{
	mv_numa_destroy(a);
	mv_zone_destroy(&a->heap.zone);
	if (a->heap.htab.dir)
		mv_htable_destroy(&a->heap.htab);
	mv_meta_destroy(&a->heap.meta);
	mv_os_release(a, mv_align_up(sizeof *a, MV_PAGE_SIZE));
}

/* The zone: nothing mapped yet, the arena's sections come as it grows. */
static int reserve_zone(struct mova_arena *a)
{
	int err =
	    mv_zone_init(&a->heap.zone, a->cfg.reserve_bytes, a->cfg.pageblock_order, &a->heap.vm);
	if (!err)
		mv_zone_set_thp(&a->heap.zone, a->cfg.thp);
	return err;
}

void mv_arena_full_warn(struct mova_arena *a)
{
	static _Atomic int warned;
	int err = mv_relaxed_load(&a->heap.zone.map_errno);
	if (err)
		mv_warn_once(&warned,
			     "arena %p could not map a new section (%s): the address space is "
			     "limited (RLIMIT_AS, ulimit -v: %s) or the OS is out of memory",
			     (void *)a, strerror(err), "raise the limit or free memory");
}

static struct mova_arena *arena_create(const mova_config *cfg, bool is_default)
{
	const char *why;
	if (mova_config_check(cfg, &why)) {
		errno = EINVAL;
		return NULL;
	}
	mv_sizeclass_init();
	mv_slab_init_secrets(); /* before any slot is encoded with them */
	struct mova_arena *a = mv_os_map(mv_align_up(sizeof *a, MV_PAGE_SIZE));
	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	mv_config_resolve(cfg, &a->cfg);
	a->heap.is_default = is_default;
	mv_meta_init(&a->heap.meta);
	int err = reserve_zone(a);
	if (!err)
		err = mv_numa_init(a);
	if (err) {
		arena_free_memory(a);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_mutex_init(&a->heap.bins[c].lock, MV_RANK_BIN);
	mv_mutex_init(&a->heap.threads_lock, MV_RANK_THREADS);
	mv_compact_state_init(a);
	mv_reclaim_init(a);
	/* CMA pageblocks: reserved now, used by movable objects until a
	 * contiguous request claims them. Brought in unbacked: 32 GiB of CMA
	 * costs no resident memory, and giving back never looks at it */
	if (a->cfg.cma_bytes) {
		size_t nr_pb = a->cfg.cma_bytes >> (MV_PAGE_SHIFT + a->cfg.pageblock_order);
		if (mv_buddy_grow_free(&a->heap.zone, nr_pb, MIGRATE_CMA) == MV_PFN_NONE) {
			arena_free_memory(a);
			errno = ENOMEM;
			return NULL;
		}
	}
	if (registry_add(a)) {
		arena_free_memory(a);
		errno = ENOMEM;
		return NULL;
	}
	/* no thread yet: kcompactd starts when the arena has work for it
	 * (mv_arena_housekeep) */
	mv_kcompactd_init(a);
	return a;
}

mova_arena *mova_arena_create(const mova_config *cfg)
{
	/* a private arena is created by the program, never inside malloc:
	 * registering the fork handlers here cannot recurse */
	mv_fork_register();
	return arena_create(cfg, false);
}

void mova_arena_destroy(mova_arena *a)
{
	if (!a)
		return;
	if (a->heap.is_default) {
		static _Atomic int warned;
		mv_warn_once(&warned,
			     "mova_arena_destroy: the default arena is never destroyed; ignored");
		return;
	}
	if (mv_rcu_in_reader()) {
		/* destroying waits for the grace-period batches of the arena
		 * (rcu_barrier), which cannot end inside the caller's own read
		 * section; liburcu refuses, and the batches would then run on
		 * unmapped memory. Refuse, as API.md says, and keep it whole. */
		mv_warn("mova_arena_destroy(%p) called inside a read section "
			"(mova_read_lock): nothing destroyed; call it after mova_read_unlock",
			(void *)a);
		return;
	}
	mv_kcompactd_stop(a);
	/* grace-period batches of this arena still queued must run first */
	mv_rcu_barrier();
	registry_del(a);
	if (mv_tls_last.h == &a->heap)
		mv_tls_last.h = NULL;
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_mutex_destroy(&a->heap.bins[c].lock);
	mv_mutex_destroy(&a->heap.threads_lock);
	mv_reclaim_destroy(a);
	arena_free_memory(a);
}

/* ------------------------------------------------------------ the default arena */

static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	const char *conf = getenv("MOVA_CONF");
	if (conf)
		mv_options_parse(conf, &cfg);
	const char *why;
	if (mova_config_check(&cfg, &why)) {
		mv_warn("MOVA_CONF: %s; using the defaults", why);
		mova_config_init(&cfg);
	}
	struct mova_arena *a = arena_create(&cfg, true);
	if (!a) {
		mv_warn("cannot reserve the default arena (%zu bytes); every allocation will fail",
			cfg.reserve_bytes);
		return;
	}
	mv_zone_mark_default(&a->heap.zone);
	atomic_thread_fence(memory_order_release);
	mv_default = a;
#ifndef MV_PRELOAD
	/* linked, not preloaded: malloc is glibc's, so registering handlers
	 * cannot recurse into us (the preload library does this from its
	 * constructor instead). kcompactd starts when there is work for it. */
	mv_fork_register();
	if (mv_popts.stats_print)
		mv_stats_print_at_exit(a);
#endif
}

struct mova_arena *mv_default_arena_slow(void)
{
	pthread_once(&default_once, default_init);
	return mv_default;
}

mova_arena *mova_default_arena(void)
{
	return mv_default ? mv_default : mv_default_arena_slow();
}

/* ------------------------------------------------------------ housekeeping */

int mova_thread_flush(mova_arena *a)
{
	if (!a)
		return EINVAL;
	struct mv_tcache *tc = mv_tcache_peek(&a->heap);
	if (tc)
		mv_tcache_flush(&a->heap, tc);
	return 0;
}
