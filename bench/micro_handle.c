/* SPDX-License-Identifier: MIT */
/*
 * micro_handle.c: micro benchmarks of mova's own API (the mova executable
 * only), on a private arena without kcompactd so nothing runs beside them.
 *
 *   handle/halloc_hfree/SIZE   pairs, batched; the peers' malloc_free/SIZE
 *                              is the baseline of the ratio
 *   handle/pin_unpin           one handle pinned and unpinned
 *   handle/cas_floor           a load and a compare-and-swap of one word, in a
 *                              loop: the locked read-modify-write each of pin,
 *                              unpin and hfree must make (docs/DESIGN.md)
 *   handle/plain_load          a load through a pointer (the baseline of deref)
 *   handle/deref               mova_deref + the same load, in one long read section
 *   handle/deref_section       mova_read_lock + mova_deref + load + mova_read_unlock
 *   handle/halloc_hfree_after_reader/SIZE  the pairs again, now that a read
 *                              section has been entered in the process (frees wait
 *                              for a grace period from then on)
 *   migrate/compact/SIZE       N objects, every other one freed, then
 *                              mova_compact(a, -1) timed: objects migrated,
 *                              ns per migrated object, migrated bytes per second
 *   migrate/memcpy/SIZE        memcpy of the same objects, same pattern: the
 *                              bandwidth migration is compared with
 *
 * The read-section benchmarks are registered after the plain halloc+hfree
 * ones on purpose: once a reader has existed, hfree defers reuse through
 * RCU for the rest of the process.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#define BATCH 64

static mova_arena *micro_arena(void)
{
	static mova_arena *a;
	if (!a) {
		mova_config cfg;
		mova_config_init(&cfg);
		cfg.kcompactd = 0;
		a = mova_arena_create(&cfg);
	}
	return a;
}

static void bm_halloc_hfree(gb_state *st, void *arg)
{
	(void)arg;
	mova_arena *a = micro_arena();
	size_t n = (size_t)gb_state_arg(st, 0);
	if (!a) {
		gb_skip_with_error(st, "mova_arena_create failed");
		return;
	}
	while (gb_keep_running_batch(st, BATCH))
		for (int i = 0; i < BATCH; i++) {
			mova_handle h = mova_halloc(a, n);
			gb_do_not_optimize(h);
			mova_hfree(a, h);
		}
	gb_set_items_processed(st, gb_state_iterations(st));
}

static void bm_pin_unpin(gb_state *st, void *arg)
{
	(void)arg;
	mova_arena *a = micro_arena();
	mova_handle h = a ? mova_halloc(a, 64) : MOVA_NULL;
	if (!h) {
		gb_skip_with_error(st, "mova_halloc failed");
		return;
	}
	while (gb_keep_running_batch(st, BATCH))
		for (int i = 0; i < BATCH; i++) {
			void *p = mova_pin(a, h);
			gb_do_not_optimize(p);
			mova_unpin(a, h);
		}
	gb_set_items_processed(st, gb_state_iterations(st));
	mova_hfree(a, h);
}

/* the price of one locked read-modify-write on this machine, measured in
 * the same run as the handle operations that each need one */
static void bm_cas_floor(gb_state *st, void *arg)
{
	(void)arg;
	static _Atomic uint64_t word;
	while (gb_keep_running_batch(st, BATCH))
		for (int i = 0; i < BATCH; i++) {
			uint64_t w = atomic_load_explicit(&word, memory_order_relaxed);
			atomic_compare_exchange_strong_explicit(
			    &word, &w, w + 1, memory_order_acquire, memory_order_relaxed);
		}
	gb_do_not_optimize(atomic_load(&word));
	gb_set_items_processed(st, gb_state_iterations(st));
}

/* ------------------------------------------------------------ deref */

#define NOBJ 1024 /* objects read in turn: 64 KiB of objects, 8 KiB of handles */

struct objs {
	mova_handle h[NOBJ];
	const char *p[NOBJ];
};

static bool objs_make(mova_arena *a, struct objs *o)
{
	for (unsigned i = 0; i < NOBJ; i++) {
		o->h[i] = mova_hcalloc(a, 64);
		if (!o->h[i])
			return false;
		char *p = mova_pin(a, o->h[i]);
		p[0] = (char)i;
		o->p[i] = p;
		mova_unpin(a, o->h[i]); /* nothing migrates here: the address stays */
	}
	return true;
}

static void objs_free(mova_arena *a, struct objs *o)
{
	for (unsigned i = 0; i < NOBJ; i++)
		mova_hfree(a, o->h[i]);
}

enum deref_kind { PLAIN, DEREF, DEREF_SECTION };

static void bm_deref(gb_state *st, void *arg)
{
	enum deref_kind kind = (enum deref_kind)(uintptr_t)arg;
	mova_arena *a = micro_arena();
	static struct objs o; /* one thread */
	if (!a || !objs_make(a, &o)) {
		gb_skip_with_error(st, "mova_hcalloc failed");
		return;
	}
	unsigned j = 0;
	long sum = 0;
	switch (kind) {
	case PLAIN:
		while (gb_keep_running_batch(st, BATCH))
			for (int i = 0; i < BATCH; i++) {
				const char *p = o.p[j++ & (NOBJ - 1)];
				gb_do_not_optimize(p);
				sum += *p;
			}
		break;
	case DEREF:
		mova_read_lock();
		while (gb_keep_running_batch(st, BATCH))
			for (int i = 0; i < BATCH; i++) {
				const char *p = mova_deref(a, o.h[j++ & (NOBJ - 1)]);
				gb_do_not_optimize(p);
				sum += *p;
			}
		mova_read_unlock();
		break;
	case DEREF_SECTION:
		while (gb_keep_running_batch(st, BATCH))
			for (int i = 0; i < BATCH; i++) {
				mova_read_lock();
				const char *p = mova_deref(a, o.h[j++ & (NOBJ - 1)]);
				gb_do_not_optimize(p);
				sum += *p;
				mova_read_unlock();
			}
		break;
	}
	gb_do_not_optimize(sum);
	gb_set_items_processed(st, gb_state_iterations(st));
	objs_free(a, &o);
}

/* ------------------------------------------------------------ migration */

static size_t migrate_total_bytes(void)
{
	return BM_BY_SCALE((size_t)4 << 20, (size_t)64 << 20, (size_t)64 << 20);
}

static void bm_compact(gb_state *st, void *arg)
{
	(void)arg;
	size_t size = (size_t)gb_state_arg(st, 0), n = migrate_total_bytes() / size;
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	mova_arena *a = mova_arena_create(&cfg);
	mova_handle *h = bm_map(n * sizeof *h);
	if (!a) {
		gb_skip_with_error(st, "mova_arena_create failed");
		bm_unmap(h, n * sizeof *h);
		return;
	}
	uint64_t migrated = 0, ns = 0;
	while (gb_keep_running(st)) {
		for (size_t i = 0; i < n; i++) {
			h[i] = mova_halloc(a, size);
			char *p = h[i] ? mova_pin(a, h[i]) : NULL;
			if (!p) {
				gb_skip_with_error(st, "mova_halloc failed");
				break;
			}
			memset(p, (int)i, size);
			mova_unpin(a, h[i]);
		}
		if (gb_error_occurred(st))
			break;
		for (size_t i = 0; i < n; i += 2) {
			mova_hfree(a, h[i]);
			h[i] = MOVA_NULL;
		}
		mova_stats s0, s1;
		mova_stats_get(a, &s0);
		uint64_t t0 = bm_now_ns();
		mova_compact(a, -1);
		uint64_t t1 = bm_now_ns();
		mova_stats_get(a, &s1);
		gb_set_iteration_time(st, (double)(t1 - t0) * 1e-9);
		migrated += s1.pgmigrate_success - s0.pgmigrate_success;
		ns += t1 - t0;
		for (size_t i = 1; i < n; i += 2)
			mova_hfree(a, h[i]);
	}
	int64_t it = gb_state_iterations(st);
	if (it > 0 && !gb_error_occurred(st)) {
		gb_counter(st, "objects_migrated", (double)migrated / (double)it, 0);
		gb_counter(st, "ns_per_object", migrated ? (double)ns / (double)migrated : 0, 0);
		gb_counter(st, "migrated_MiB_per_s",
			   ns ? (double)(migrated * size) / (1 << 20) / ((double)ns * 1e-9) : 0, 0);
		gb_set_bytes_processed(st, (int64_t)(migrated * size));
		gb_set_items_processed(st, (int64_t)migrated);
	}
	bm_unmap(h, n * sizeof *h);
	mova_arena_destroy(a);
}

static void bm_memcpy(gb_state *st, void *arg)
{
	(void)arg;
	size_t size = (size_t)gb_state_arg(st, 0), total = migrate_total_bytes(), n = total / size;
	char *src = bm_map(total), *dst = bm_map(total);
	memset(src, 1, total);
	while (gb_keep_running(st)) {
		for (size_t i = 1; i < n; i += 2)
			memcpy(dst + (i - 1) * size, src + i * size, size);
		gb_clobber_memory();
	}
	int64_t copied = gb_state_iterations(st) * (int64_t)(n / 2);
	gb_set_bytes_processed(st, copied * (int64_t)size);
	gb_set_items_processed(st, copied);
	bm_unmap(src, total);
	bm_unmap(dst, total);
}

/* ------------------------------------------------------------ registration */

static const int64_t handle_sizes[] = {16, 32, 64, 128, 256, 1024, 4096};
static const int64_t migrate_sizes[] = {64, 256, 1024, 4096, 16384, 65536};
#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

void bm_register_micro_handle(void)
{
	gb_benchmark *b = gb_register("handle/halloc_hfree", bm_halloc_hfree, NULL);
	for (size_t i = 0; i < NELEM(handle_sizes); i++)
		gb_arg(b, handle_sizes[i]);
	gb_register("handle/pin_unpin", bm_pin_unpin, NULL);
	gb_register("handle/cas_floor", bm_cas_floor, NULL);

	b = gb_register("migrate/compact", bm_compact, NULL);
	for (size_t i = 0; i < NELEM(migrate_sizes); i++)
		gb_arg(b, migrate_sizes[i]);
	gb_unit(gb_use_manual_time(b), GB_US);
	b = gb_register("migrate/memcpy", bm_memcpy, NULL);
	for (size_t i = 0; i < NELEM(migrate_sizes); i++)
		gb_arg(b, migrate_sizes[i]);
	gb_unit(gb_use_real_time(b), GB_US); /* wall time, as the compaction's */

	/* from here on the process has had a reader */
	gb_register("handle/plain_load", bm_deref, (void *)(uintptr_t)PLAIN);
	gb_register("handle/deref", bm_deref, (void *)(uintptr_t)DEREF);
	gb_register("handle/deref_section", bm_deref, (void *)(uintptr_t)DEREF_SECTION);
	b = gb_register("handle/halloc_hfree_after_reader", bm_halloc_hfree, NULL);
	for (size_t i = 0; i < NELEM(handle_sizes); i++)
		gb_arg(b, handle_sizes[i]);
}
