/* SPDX-License-Identifier: MIT */
/*
 * test_kcompactd.c: the background thread alone. An arena with kcompactd
 * and proactiveness 100 is fragmented (many small objects, most freed);
 * without any call to mova_compact, within a few seconds its resident
 * memory must fall well below what the fragmentation left, kcompactd must
 * have been woken and migrated objects, and every surviving object must
 * hold what its writer last wrote, though writers kept pinning and writing
 * them the whole time (docs/MIGRATION.md, I1 and I2).
 */
#include "mig_util.h"

#define KD_OBJS 16384 /* kept */
#define KD_KEEP 16    /* one object in KD_KEEP survives the fragmentation */
#define KD_SIZE 256

struct kdw {
	mova_arena *a;
	_Atomic int *stop;
	mova_handle *h;
	uint64_t *count;
	unsigned first, n;
	uint64_t seed;
	unsigned long pins;
};

static void *kd_writer(void *arg)
{
	struct kdw *w = arg;
	while (!atomic_load(w->stop) && !mig_errors()) {
		unsigned i = w->first + (unsigned)(mig_rand(&w->seed) % w->n);
		unsigned char *p = mova_pin(w->a, w->h[i]);
		if (!p) {
			mig_fail("writer: pin of a live handle failed: errno %d", errno);
			break;
		}
		long bad = mig_check(p, KD_SIZE, i, w->count[i]);
		if (bad >= 0)
			mig_fail("writer: object %u version %llu wrong at offset %ld", i,
				 (unsigned long long)w->count[i], bad);
		w->count[i]++;
		mig_fill(p, KD_SIZE, i, w->count[i]);
		if (mova_unpin(w->a, w->h[i]))
			mig_fail("writer: unpin failed");
		w->pins++;
		if ((w->pins & 255) == 0)
			mig_sleep_ms(1); /* leave kcompactd some CPU */
	}
	return NULL;
}

Test(kcompactd, shrinks_a_fragmented_arena, .timeout = 120)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = 1024 * MiB;
	cfg.kcompactd = 1;
	cfg.proactiveness = 100;
	cfg.kcompactd_interval_ms = 50;
	cfg.kcompactd_cpu_budget = 100;
	cfg.retain_bytes = 2 * MiB;
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create: errno %d", errno);
	static mova_handle h[KD_OBJS];
	static uint64_t count[KD_OBJS];
	mova_handle *fill = malloc(sizeof *fill * KD_OBJS * (KD_KEEP - 1));
	cr_assert_not_null(fill);
	unsigned nf = 0;
	for (unsigned i = 0; i < KD_OBJS; i++) {
		h[i] = mig_new(a, KD_SIZE, i);
		for (unsigned k = 1; k < KD_KEEP; k++) {
			fill[nf] = mova_halloc(a, KD_SIZE);
			cr_assert_neq(fill[nf], MOVA_NULL);
			nf++;
		}
	}
	mova_stats st0 = mig_stats(a);
	for (unsigned i = 0; i < nf; i++)
		cr_assert_eq(mova_hfree(a, fill[i]), 0);
	free(fill);
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	fprintf(stderr,
		"kcompactd: before the frees resident %zu KiB; after: resident %zu KiB, live %zu "
		"KiB, score %u, daemon wakes %llu\n",
		st0.resident_bytes >> 10, st1.resident_bytes >> 10, st1.live_bytes >> 10,
		st1.fragmentation_score, (unsigned long long)st1.compact_daemon_wake);

	_Atomic int stop = 0;
	struct kdw w[2];
	pthread_t tw[2];
	for (unsigned t = 0; t < 2; t++) {
		w[t] = (struct kdw){a, &stop, h, count, t * (KD_OBJS / 2), KD_OBJS / 2, 77 + t, 0};
		mig_spawn(&tw[t], kd_writer, &w[t]);
	}
	/* the main thread never compacts: kcompactd must do it alone */
	/* the frees leave about 6x live resident; compacted, under 2x. The
	 * marks count from st0: kcompactd may do part or all of the work while
	 * the frees run (under a sanitizer they take seconds) */
	size_t target = 3 * st1.live_bytes;
	mova_stats st2 = st1;
	uint64_t deadline = mig_now_ns() + (uint64_t)(MIG_SANITIZED ? 20000 : 8000) * 1000000u;
	unsigned polls = 0;
	while (mig_now_ns() < deadline && !mig_errors()) {
		mig_sleep_ms(50);
		st2 = mig_stats(a);
		polls++;
		if (st2.resident_bytes <= target &&
		    st2.compact_daemon_wake > st0.compact_daemon_wake &&
		    st2.pgmigrate_success > st0.pgmigrate_success && polls >= 4)
			break;
	}
	atomic_store(&stop, 1);
	mig_join(tw[0]);
	mig_join(tw[1]);
	mig_assert_no_errors();
	fprintf(stderr,
		"kcompactd: after %u ms: resident %zu KiB (target %zu), score %u, daemon wakes "
		"+%llu, pgmigrate_success +%llu since the frees began, %lu pins\n",
		polls * 50, st2.resident_bytes >> 10, target >> 10, st2.fragmentation_score,
		(unsigned long long)(st2.compact_daemon_wake - st0.compact_daemon_wake),
		(unsigned long long)(st2.pgmigrate_success - st0.pgmigrate_success),
		w[0].pins + w[1].pins);
	cr_assert_gt(st2.compact_daemon_wake, st0.compact_daemon_wake, "kcompactd never woke");
	cr_assert_gt(st2.pgmigrate_success, st0.pgmigrate_success, "kcompactd moved nothing");
	cr_assert_leq(st2.resident_bytes, target, "resident %zu KiB, wanted at most %zu KiB",
		      st2.resident_bytes >> 10, target >> 10);
	for (unsigned i = 0; i < KD_OBJS; i++) {
		mig_verify(a, h[i], KD_SIZE, i, count[i], "after kcompactd");
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	}
	mig_assert_no_errors();
	mova_arena_destroy(a);
}
