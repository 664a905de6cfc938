/* SPDX-License-Identifier: MIT */
/*
 * soak: threads mutate and verify checksummed objects while kcompactd runs
 * at full proactiveness, contiguous allocations come and go, and threads
 * force compaction now and then. Time-bounded: `soak SECONDS [THREADS]`.
 *
 * Two kinds of objects, so that every check is exact:
 *  - owned objects: each writer thread owns a set; it pins one, checks its
 *    checksum, rewrites it with a new version, unpins; or frees it and
 *    allocates a replacement of another size;
 *  - published objects: immutable once published in a shared table; a
 *    writer replaces one by allocating and filling a new object, storing
 *    its handle (release) and freeing the old one; reader threads load a
 *    handle and check the object inside mova_read_lock with mova_deref,
 *    which must give either EINVAL (already freed) or intact contents,
 *    even while the object is being migrated or freed meanwhile.
 * Prints operations, migrations, contiguous allocations and corrupt bytes;
 * exits 0 only if nothing was corrupt and objects really migrated.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mova.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OWNED 2048
#define PUBLISHED 4096

static mova_arena *A;
static atomic_int stop;
static atomic_ulong ops, reads, corrupt, contigs, contig_fail;
static _Atomic mova_handle published[PUBLISHED];

struct header {
	uint64_t tag; /* the handle it was written for */
	uint64_t version;
	uint64_t size;
	uint64_t sum; /* of the payload */
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t rand_size(uint64_t *s)
{
	uint64_t r = xs(s);
	if (r % 50 == 0)
		return sizeof(struct header) + r % 60000; /* some large objects */
	return sizeof(struct header) + (r >> 8) % 4000;
}

static uint8_t payload_byte(uint64_t tag, uint64_t version, size_t i)
{
	return (uint8_t)((tag * 0x9e3779b97f4a7c15ull + version * 131 + i * 7) >> 17);
}

static void write_object(unsigned char *p, size_t size, uint64_t tag, uint64_t version)
{
	struct header h = {tag, version, size, 0};
	for (size_t i = sizeof h; i < size; i++) {
		p[i] = payload_byte(tag, version, i);
		h.sum += p[i];
	}
	memcpy(p, &h, sizeof h);
}

/* 0 if intact, else the count of wrong bytes (at least 1) */
static unsigned long check_object(const unsigned char *p, size_t size, uint64_t tag)
{
	struct header h;
	memcpy(&h, p, sizeof h);
	if (h.tag != tag || h.size != size)
		return 1;
	unsigned long bad = 0;
	uint64_t sum = 0;
	for (size_t i = sizeof h; i < size; i++) {
		bad += p[i] != payload_byte(tag, h.version, i);
		sum += p[i];
	}
	return bad + (sum != h.sum);
}

static void *writer(void *arg)
{
	uint64_t seed = 0x1234567u + (uint64_t)(uintptr_t)arg * 7777;
	mova_handle mine[OWNED] = {0};
	size_t sizes[OWNED] = {0};
	uint64_t version[OWNED] = {0};
	while (!atomic_load(&stop)) {
		unsigned k = (unsigned)(xs(&seed) % OWNED);
		uint64_t r = xs(&seed) % 100;
		if (!mine[k]) {
			sizes[k] = rand_size(&seed);
			mine[k] = mova_halloc(A, sizes[k]);
			if (!mine[k])
				continue;
			unsigned char *p = mova_pin(A, mine[k]);
			write_object(p, sizes[k], mine[k], version[k] = 0);
			mova_unpin(A, mine[k]);
		} else if (r < 70) {
			/* check, then write a new version under the pin */
			unsigned char *p = mova_pin(A, mine[k]);
			if (!p) {
				atomic_fetch_add(&corrupt, 1);
				continue;
			}
			unsigned long bad = check_object(p, sizes[k], mine[k]);
			if (bad) {
				fprintf(stderr, "soak: owned object corrupt (%lu bytes)\n", bad);
				atomic_fetch_add(&corrupt, bad);
			}
			write_object(p, sizes[k], mine[k], ++version[k]);
			if (r < 5)
				usleep(100); /* a long pin: compaction must leave it alone */
			mova_unpin(A, mine[k]);
		} else if (r < 90) {
			if (mova_hfree(A, mine[k]))
				atomic_fetch_add(&corrupt, 1);
			mine[k] = MOVA_NULL;
		} else {
			/* publish an immutable object, retire the old one */
			unsigned slot = (unsigned)(xs(&seed) % PUBLISHED);
			size_t sz = rand_size(&seed);
			mova_handle h = mova_halloc(A, sz);
			if (!h)
				continue;
			unsigned char *p = mova_pin(A, h);
			write_object(p, sz, h, 0);
			mova_unpin(A, h);
			mova_handle old =
			    atomic_exchange_explicit(&published[slot], h, memory_order_acq_rel);
			if (old && mova_hfree(A, old))
				atomic_fetch_add(&corrupt, 1);
		}
		atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
	}
	for (unsigned k = 0; k < OWNED; k++)
		if (mine[k]) {
			unsigned char *p = mova_pin(A, mine[k]);
			if (!p || check_object(p, sizes[k], mine[k]))
				atomic_fetch_add(&corrupt, 1);
			mova_unpin(A, mine[k]);
			mova_hfree(A, mine[k]);
		}
	return NULL;
}

static void *reader(void *arg)
{
	uint64_t seed = 0x9999u + (uint64_t)(uintptr_t)arg;
	while (!atomic_load(&stop)) {
		mova_read_lock();
		for (int i = 0; i < 64; i++) {
			unsigned slot = (unsigned)(xs(&seed) % PUBLISHED);
			mova_handle h =
			    atomic_load_explicit(&published[slot], memory_order_acquire);
			if (!h)
				continue;
			const unsigned char *p = mova_deref(A, h);
			if (!p)
				continue; /* freed since we loaded the handle: allowed */
			struct header hd;
			memcpy(&hd, p, sizeof hd);
			unsigned long bad = check_object(p, hd.size, h);
			if (bad) {
				fprintf(stderr,
					"soak: published object corrupt under a read section\n");
				atomic_fetch_add(&corrupt, bad);
			}
			atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
		}
		mova_read_unlock();
	}
	return NULL;
}

static void *contig(void *arg)
{
	uint64_t seed = 0x4242u + (uint64_t)(uintptr_t)arg;
	while (!atomic_load(&stop)) {
		size_t np = xs(&seed) % 256 + 1;
		unsigned char *p = mova_alloc_contig(A, np);
		if (p) {
			memset(p, 0xa5, np * MOVA_PAGE_SIZE);
			for (size_t i = 0; i < np * MOVA_PAGE_SIZE; i += 512)
				if (p[i] != 0xa5)
					atomic_fetch_add(&corrupt, 1);
			usleep(2000);
			mova_free_contig(A, p, np);
			atomic_fetch_add(&contigs, 1);
		} else {
			atomic_fetch_add(&contig_fail, 1);
		}
		/* and direct compaction now and then */
		if (xs(&seed) % 4 == 0)
			mova_compact(A, (int)(xs(&seed) % 11));
		usleep(5000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 120;
	int nw = argc > 2 ? atoi(argv[2]) : 2;
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)8 << 30;
	cfg.kcompactd = 1;
	cfg.proactiveness = 100;
	cfg.kcompactd_interval_ms = 50;
	cfg.kcompactd_cpu_budget = 100;
	cfg.cma_bytes = (size_t)16 << 20;
	A = mova_arena_create(&cfg);
	if (!A) {
		perror("soak: mova_arena_create");
		return 2;
	}
	pthread_t t[16];
	int n = 0;
	for (int i = 0; i < nw && n < 14; i++)
		pthread_create(&t[n++], NULL, writer, (void *)(uintptr_t)i);
	pthread_create(&t[n++], NULL, reader, (void *)1);
	pthread_create(&t[n++], NULL, contig, (void *)2);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		sleep(1);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((double)(t1.tv_sec - t0.tv_sec) < seconds);
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (unsigned s = 0; s < PUBLISHED; s++) {
		mova_handle h = atomic_load(&published[s]);
		if (!h)
			continue;
		const unsigned char *p = mova_pin(A, h);
		if (!p || check_object(p, mova_hsize(A, h), h))
			atomic_fetch_add(&corrupt, 1);
		mova_unpin(A, h);
		mova_hfree(A, h);
	}
	mova_stats st;
	mova_stats_get(A, &st);
	printf(
	    "soak: %.0f s, %lu operations, %lu checked reads, %lu objects migrated (%lu "
	    "skipped pinned), %lu contiguous allocations (%lu refused), kcompactd woke %lu times, "
	    "%lu corrupt bytes\n",
	    seconds, atomic_load(&ops), atomic_load(&reads), (unsigned long)st.pgmigrate_success,
	    (unsigned long)st.pgmigrate_fail, atomic_load(&contigs), atomic_load(&contig_fail),
	    (unsigned long)st.compact_daemon_wake, atomic_load(&corrupt));
	mova_arena_destroy(A);
	if (atomic_load(&corrupt))
		return 1;
	if (!st.pgmigrate_success) {
		fprintf(stderr, "soak: no object was migrated: the soak proved nothing\n");
		return 1;
	}
	return 0;
}
