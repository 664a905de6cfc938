/* SPDX-License-Identifier: MIT */
/*
 * arena.c: arena creation and destruction, the registry of live arenas,
 * and the default arena (created on first use, configured by MOVA_CONF).
 *
 * The registry (mv_registry_lock, rank GLOBAL) lets thread exit and fork
 * see which arenas are alive; a thread exiting tears down its caches under
 * it, and mova_arena_destroy unregisters under it, so the two never race.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "compaction.h"
#include "fork.h"
#include "kcompactd.h"
#include "os.h"
#include "options.h"

#define MV_MAX_ARENAS 4096

mv_mutex mv_registry_lock = {PTHREAD_MUTEX_INITIALIZER, MV_RANK_GLOBAL};
static struct mova_arena *registry[MV_MAX_ARENAS];
static unsigned registry_n;
static uint64_t next_epoch = 1;
static uint32_t next_tag = 1;

struct mova_arena *mv_default;
struct mv_default_range mv_dflt MV_ALIGNED_CL;

bool mv_arena_alive(struct mova_arena *a, uint64_t epoch)
{
	for (unsigned i = 0; i < registry_n; i++)
		if (registry[i] == a)
			return a->epoch == epoch;
	return false;
}

void mv_registry_foreach(void (*fn)(struct mova_arena *a, void *arg), void *arg)
{
	for (unsigned i = 0; i < registry_n; i++)
		fn(registry[i], arg);
}

static int registry_add(struct mova_arena *a)
{
	mv_lock(&mv_registry_lock);
	if (registry_n == MV_MAX_ARENAS) {
		mv_unlock(&mv_registry_lock);
		return ENOMEM;
	}
	a->epoch = next_epoch++;
	/* tags are 17 bits and never 0 (handles are never MOVA_NULL) */
	a->tag = next_tag;
	/* what mova.h's inline deref reads */
	a->head.table_and_tag = (uint64_t)(uintptr_t)a->htab.entries | ((uint64_t)a->tag << 47);
	a->head.zone = a->zone.base;
	next_tag = next_tag + 1 > MV_HANDLE_TAG_MASK ? 1 : next_tag + 1;
	registry[registry_n++] = a;
	mv_unlock(&mv_registry_lock);
	return 0;
}

static void registry_del(struct mova_arena *a)
{
	mv_lock(&mv_registry_lock);
	for (unsigned i = 0; i < registry_n; i++) {
		if (registry[i] == a) {
			registry[i] = registry[--registry_n];
			break;
		}
	}
	mv_unlock(&mv_registry_lock);
}

static void arena_free_memory(struct mova_arena *a)
{
	mv_numa_destroy(a);
	mv_zone_destroy(&a->zone);
	if (a->htab.entries)
		mv_htable_destroy(&a->htab);
	mv_os_release(a->region, a->region_bytes);
	mv_meta_destroy(&a->meta);
	mv_os_release(a, mv_align_up(sizeof *a, MV_PAGE_SIZE));
}

/* One reservation: the handle table (MV_HTABLE_VA, readable) and right
 * above it the zone (PROT_NONE until populated, aligned to a max-order
 * block). */
static int reserve_region(struct mova_arena *a)
{
	size_t align =
	    MV_MAX(MV_PAGE_SIZE << MV_MAX_PAGE_ORDER, MV_PAGE_SIZE << a->cfg.pageblock_order);
	a->region_bytes = MV_HTABLE_VA + a->cfg.reserve_bytes;
	a->region = mv_os_reserve(a->region_bytes, align);
	if (!a->region)
		return ENOMEM;
	if (mv_os_make_readable(a->region, MV_HTABLE_VA)) {
		mv_os_release(a->region, a->region_bytes);
		a->region = NULL;
		return ENOMEM;
	}
	return 0;
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
	a->is_default = is_default;
	int err = mv_meta_init(&a->meta, a->cfg.reserve_bytes / 2 + ((size_t)64 << 20));
	if (!err)
		err = reserve_region(a);
	if (!err)
		err = mv_zone_init_at(&a->zone, a->region + MV_HTABLE_VA, a->cfg.reserve_bytes,
				      a->cfg.pageblock_order, &a->vm);
	if (!err)
		err = mv_htable_init(&a->htab, a->region, a->cfg.max_handles);
	if (!err)
		err = mv_numa_init(a);
	if (err) {
		arena_free_memory(a);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_mutex_init(&a->bins[c].lock, MV_RANK_BIN);
	mv_mutex_init(&a->threads_lock, MV_RANK_THREADS);
	mv_compact_state_init(a);
	mv_reclaim_init(a);
	/* CMA pageblocks: reserved now, used by movable objects until a
	 * contiguous request claims them */
	if (a->cfg.cma_bytes) {
		size_t nr_pb = a->cfg.cma_bytes >> (MV_PAGE_SHIFT + a->cfg.pageblock_order);
		size_t pfn = mv_buddy_alloc_pageblocks(&a->zone, nr_pb, MIGRATE_CMA, NULL);
		if (pfn == MV_PFN_NONE) {
			arena_free_memory(a);
			errno = ENOMEM;
			return NULL;
		}
		mv_buddy_free_range(&a->zone, pfn, nr_pb << a->cfg.pageblock_order);
	}
	if (registry_add(a)) {
		arena_free_memory(a);
		errno = ENOMEM;
		return NULL;
	}
	if (a->cfg.kcompactd && !is_default && mv_kcompactd_run(a)) {
		registry_del(a);
		arena_free_memory(a);
		errno = ENOMEM;
		return NULL;
	}
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
	if (a->is_default) {
		static _Atomic int warned;
		mv_warn_once(&warned,
			     "mova_arena_destroy: the default arena is never destroyed; ignored");
		return;
	}
	mv_kcompactd_stop(a);
	/* grace-period batches of this arena still queued must run first */
	mv_rcu_barrier();
	registry_del(a);
	if (mv_tls_last.a == a)
		mv_tls_last.a = NULL;
	for (unsigned c = 0; c < MV_NR_CLASSES; c++)
		mv_mutex_destroy(&a->bins[c].lock);
	mv_mutex_destroy(&a->threads_lock);
	mv_reclaim_destroy(a);
	arena_free_memory(a);
}

/* ------------------------------------------------------------ the default arena */

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
void mv_stats_print_at_exit(void);
void mv_stats_print_register(void);

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
	mv_dflt.base = a->zone.base;
	mv_dflt.span = a->zone.reserve_bytes;
	mv_dflt.desc = a->zone.desc;
	atomic_thread_fence(memory_order_release);
	mv_default = a;
#ifndef MV_PRELOAD
	/* linked, not preloaded: malloc is glibc's, so registering handlers and
	 * starting a thread cannot recurse into us (the preload library does
	 * this from its constructor instead) */
	mv_fork_register();
	if (mv_popts.stats_print)
		mv_stats_print_register();
	mv_default_kcompactd_start();
#endif
}

/* stats_print's output goes to a duplicate of stderr taken at start: a
 * program may close stderr before exit (coreutils' close_stdout does) */
static int stats_fd = -1;

void mv_stats_print_register(void)
{
	stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	atexit(mv_stats_print_at_exit);
}

void mv_stats_print_at_exit(void)
{
	if (!mv_default || stats_fd < 0)
		return;
	FILE *f = fdopen(stats_fd, "w");
	if (!f)
		return;
	mova_stats_print(mv_default, f);
	fclose(f);
	stats_fd = -1;
}

void mv_default_kcompactd_start(void)
{
	struct mova_arena *a = mv_default;
	if (a && a->cfg.kcompactd && !atomic_load(&a->kcompactd.running))
		mv_kcompactd_run(a);
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

void mv_arena_drain_all_pcp(struct mova_arena *a)
{
	mv_lock(&a->threads_lock);
	for (struct mv_tcache *tc = a->tcaches; tc; tc = tc->tnext)
		mv_pcp_drain(&a->zone, &tc->pcp);
	mv_unlock(&a->threads_lock);
}

bool mv_arena_reclaim(struct mova_arena *a, struct mv_tcache *tc)
{
	/* refused by the budget: reclaim to fit it (reclaim.c) */
	if (mv_relaxed_load(&a->zone.limit_want) || mv_budget_room(a) < MV_SWAP_CLUSTER_MAX)
		if (mv_relaxed_load(&a->zone.limit_pages))
			return mv_reclaim_for_budget(a, tc);
	size_t before = mv_relaxed_load(&a->zone.nr_free_pages);
	if (tc && !tc->dead) {
		mv_raw_rbuf_flush_all(tc);
		mv_tcache_flush_pending_now(a, tc);
		mv_mov_unfreeze_all(a, tc);
		mv_raw_collect_delayed(a, tc);
		mv_raw_release_kept(a, tc);
	}
	/* grace-period batches queued by every thread: wait for them to run
	 * (backpressure on deferred frees), unless we are a reader ourselves */
	if (mv_rcu_readers_ever() && !mv_rcu_in_reader())
		mv_rcu_barrier();
	mv_bins_trim(a);
	mv_arena_drain_all_pcp(a);
	/* and, as the kernel compacts before failing, pack sparse slabs */
	if (mv_relaxed_load(&a->zone.nr_free_pages) == before && !mv_rcu_in_reader())
		mv_compact_pack(a, MIGRATE_SYNC_LIGHT);
	return mv_relaxed_load(&a->zone.nr_free_pages) > before;
}

size_t mv_arena_retain_pageblocks(const struct mova_arena *a)
{
	if (a->cfg.retain_bytes)
		return a->cfg.retain_bytes >> (MV_PAGE_SHIFT + a->cfg.pageblock_order);
	size_t resident_pb = mv_relaxed_load(&a->zone.resident_pages) >> a->cfg.pageblock_order;
	return MV_MIN(MV_MAX(resident_pb / MV_RETAIN_DIV, (size_t)MV_RETAIN_MIN_PB),
		      (size_t)MV_RETAIN_MAX_PB);
}

void mv_arena_maybe_return(struct mova_arena *a)
{
	size_t keep = mv_arena_retain_pageblocks(a);
	/* hysteresis: act only past twice the retained amount, then trim to it */
	if (mv_relaxed_load(&a->zone.free_pb_backed) > 2 * keep + 1)
		mv_zone_return_free(&a->zone, keep, a->zone.pageblock_order);
}

void mv_arena_check_wakeup(struct mova_arena *a)
{
	int order = atomic_load_explicit(&a->zone.wake_order, memory_order_relaxed);
	if (order > 0) {
		atomic_store_explicit(&a->zone.wake_order, 0, memory_order_relaxed);
		mova_kcompactd_wakeup(a, order);
	}
}
