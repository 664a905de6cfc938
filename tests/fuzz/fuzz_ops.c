/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ops: reads a byte string as a sequence of operations on a small
 * arena and on the malloc family, and checks every result against a
 * reference model: which handles are live, their sizes and contents, their
 * pin counts; which raw pointers are live and their contents.
 *
 * Built two ways: with clang's libFuzzer (-Dfuzz=enabled, CC=clang) as a
 * coverage-guided fuzzer, and always as a plain program (fuzz-replay)
 * whose main() runs every file it is given through the same entry point,
 * so the seed corpus and every crash ever found replay in the normal test
 * suite. Any mismatch aborts with a message naming the operation.
 *
 * Operations (first byte % NR_OPS, arguments from the following bytes):
 * halloc, hcalloc, hfree, pin, write-under-pin, unpin, deref-in-read-
 * section, hsize, compact(order), malloc, free, realloc, calloc,
 * aligned_alloc, alloc_contig/free_contig, bad handles (stale, forged,
 * foreign), bad pointers (interior, double free), a section emptied and
 * given back, a thread flush (raw slabs' free pages purged, then
 * refaulted by the next allocations) or a sparse burst (raw objects of
 * one size, 4 in 5 freed, then objects of twice the size: twin slots).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mova.h"

#define MAXH 64
#define MAXR 64

struct hobj {
	mova_handle h;
	size_t size;
	uint8_t fill;
	unsigned pins;
};

struct robj {
	unsigned char *p;
	size_t size;
	uint8_t fill;
};

static mova_arena *arena, *other;
static mova_handle stale[16];
static unsigned nstale;

#define FAIL(...)                                          \
	do {                                               \
		fprintf(stderr, "fuzz_ops: " __VA_ARGS__); \
		fputc('\n', stderr);                       \
		abort();                                   \
	} while (0)

static void setup(void)
{
	if (arena)
		return;
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)192 << 20; /* three sections: op 18 empties one */
	cfg.pageblock_order = 6;
	cfg.kcompactd = 0;
	cfg.max_handles = 4096;
	arena = mova_arena_create(&cfg);
	if (!arena)
		FAIL("cannot create the arena");
	/* Every arena reserves 32 GiB of address space for its handle table
	 * (mova.h's inline deref reads it for any index). Valgrind's address
	 * space holds two arenas, the default one included: there, the
	 * foreign-arena checks are left to the native runs. */
	if (!getenv("MOVA_FUZZ_ONE_ARENA") && !(other = mova_arena_create(&cfg)))
		FAIL("cannot create the second arena");
}

struct input {
	const uint8_t *d;
	size_t n, i;
};

static unsigned byte(struct input *in)
{
	return in->i < in->n ? in->d[in->i++] : 0;
}
static unsigned word(struct input *in)
{
	return byte(in) | byte(in) << 8;
}

static size_t pick_size(struct input *in)
{
	unsigned b = byte(in);
	switch (b % 8) {
	case 0: return 0;
	case 1: return word(in) % 17000 + 1;       /* up to the largest class */
	case 2: return word(in) * 4u % 300000 + 1; /* large */
	default: return b % 200 + 1;
	}
}

/* the survivors of op 19's sparse bursts: raw objects of the default
 * arena, one in five of each burst, checked and freed at the end */
#define MAXS 256
static struct robj sparse[MAXS];
static unsigned nsparse;

static void check_contents(const unsigned char *p, size_t size, uint8_t fill, const char *what);

/* 320 objects of size bytes, then 4 in 5 freed: slabs of that class are
 * left sparse, so objects of twice the size may take twin slots */
static void sparse_burst(size_t size, uint8_t fill)
{
	static unsigned char *b[320];
	for (int i = 0; i < 320; i++) {
		b[i] = mova_malloc(size);
		if (!b[i])
			FAIL("malloc(%zu) failed", size);
		memset(b[i], fill, size);
	}
	for (int i = 0; i < 320; i++) {
		if (i % 5 == 0 && nsparse < MAXS) {
			sparse[nsparse++] = (struct robj){b[i], size, fill};
			continue;
		}
		check_contents(b[i], size, fill, "burst");
		mova_free(b[i]);
	}
}

static void check_contents(const unsigned char *p, size_t size, uint8_t fill, const char *what)
{
	for (size_t k = 0; k < size; k++)
		if (p[k] != fill)
			FAIL("%s: byte %zu of %zu is %u, want %u", what, k, size, p[k], fill);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hobj h[MAXH] = {0};
	struct robj r[MAXR] = {0};
	struct input in = {data, size, 0};
	setup();
	while (in.i < in.n) {
		unsigned op = byte(&in) % 20, k = byte(&in);
		struct hobj *ho = &h[k % MAXH];
		struct robj *ro = &r[k % MAXR];
		switch (op) {
		case 0: /* halloc */
		case 1: /* hcalloc */
			if (ho->h)
				break;
			ho->size = pick_size(&in);
			ho->h = op ? mova_hcalloc(arena, ho->size) : mova_halloc(arena, ho->size);
			if (!ho->h) {
				if (errno != ENOMEM)
					FAIL("halloc(%zu) failed with errno %d, not ENOMEM",
					     ho->size, errno);
				break;
			}
			if (mova_hsize(arena, ho->h) != ho->size)
				FAIL("hsize %zu, want %zu", mova_hsize(arena, ho->h), ho->size);
			{
				unsigned char *p = mova_pin(arena, ho->h);
				if (!p)
					FAIL("pin of a fresh handle failed");
				if (op == 1)
					check_contents(p, ho->size, 0, "hcalloc");
				ho->fill = (uint8_t)k;
				memset(p, ho->fill, ho->size);
				mova_unpin(arena, ho->h);
			}
			break;
		case 2: { /* hfree */
			if (!ho->h) {
				if (mova_hfree(arena, MOVA_NULL) != EINVAL)
					FAIL("hfree(MOVA_NULL) != EINVAL");
				break;
			}
			int e = mova_hfree(arena, ho->h);
			if (ho->pins) {
				if (e != EBUSY)
					FAIL("hfree of a pinned object returned %d, want EBUSY", e);
				break;
			}
			if (e)
				FAIL("hfree returned %d", e);
			if (nstale < 16)
				stale[nstale++] = ho->h;
			else
				stale[k % 16] = ho->h;
			memset(ho, 0, sizeof *ho);
			break;
		}
		case 3: /* pin */
			if (!ho->h || ho->pins >= 8)
				break;
			{
				unsigned char *p = mova_pin(arena, ho->h);
				if (!p)
					FAIL("pin of a live handle failed");
				check_contents(p, ho->size, ho->fill, "pin");
				ho->pins++;
			}
			break;
		case 4: /* write under a pin (pin, write, unpin) */
			if (!ho->h)
				break;
			{
				unsigned char *p = mova_pin(arena, ho->h);
				ho->fill = (uint8_t)byte(&in);
				memset(p, ho->fill, ho->size);
				if (mova_unpin(arena, ho->h))
					FAIL("unpin after write failed");
			}
			break;
		case 5: /* unpin */
			if (!ho->h)
				break;
			{
				int e = mova_unpin(arena, ho->h);
				if (ho->pins ? e != 0 : e != EINVAL)
					FAIL("unpin returned %d with %u pins", e, ho->pins);
				if (ho->pins)
					ho->pins--;
			}
			break;
		case 6: /* deref in a read section */
			if (!ho->h)
				break;
			mova_read_lock();
			{
				const unsigned char *p = mova_deref(arena, ho->h);
				if (!p)
					FAIL("deref of a live handle failed");
				check_contents(p, ho->size, ho->fill, "deref");
			}
			mova_read_unlock();
			break;
		case 7: { /* compaction */
			int order = (int)(byte(&in) % 13) - 1;
			int e = mova_compact(arena, order > 10 ? -1 : order);
			if (e < 0 || e > MOVA_COMPACT_CONTENDED)
				FAIL("compact returned %d", e);
			break;
		}
		case 8: /* malloc */
		case 9: /* calloc */
			if (ro->p)
				break;
			ro->size = pick_size(&in);
			ro->p = op == 9 ? mova_calloc(1, ro->size) : mova_malloc(ro->size);
			if (!ro->p)
				FAIL("malloc(%zu) failed", ro->size);
			if (op == 9)
				check_contents(ro->p, ro->size, 0, "calloc");
			if (mova_usable_size(ro->p) < ro->size)
				FAIL("usable size %zu < %zu", mova_usable_size(ro->p), ro->size);
			ro->fill = (uint8_t)k;
			memset(ro->p, ro->fill, ro->size);
			break;
		case 10: /* free */
			if (ro->p) {
				check_contents(ro->p, ro->size, ro->fill, "before free");
				mova_free(ro->p);
				memset(ro, 0, sizeof *ro);
			}
			break;
		case 11: /* realloc */
			if (ro->p) {
				size_t ns = pick_size(&in);
				unsigned char *q = mova_realloc(ro->p, ns);
				if (!ns) {
					memset(ro, 0, sizeof *ro);
					break;
				}
				if (!q)
					FAIL("realloc to %zu failed", ns);
				check_contents(q, ns < ro->size ? ns : ro->size, ro->fill,
					       "realloc");
				ro->p = q;
				ro->size = ns;
				memset(q, ro->fill, ns);
			}
			break;
		case 12: /* aligned_alloc */
			if (ro->p)
				break;
			{
				size_t al = (size_t)1 << (byte(&in) % 16);
				ro->size = pick_size(&in);
				ro->p = mova_aligned_alloc(al, ro->size);
				if (!ro->p || ((uintptr_t)ro->p & (al - 1)))
					FAIL("aligned_alloc(%zu, %zu) = %p", al, ro->size,
					     (void *)ro->p);
				ro->fill = (uint8_t)k;
				memset(ro->p, ro->fill, ro->size);
			}
			break;
		case 13: { /* contiguous allocation, freed at once */
			size_t np = byte(&in) % 40 + 1;
			unsigned char *p = mova_alloc_contig(arena, np);
			if (p) {
				memset(p, 0x5a, np * MOVA_PAGE_SIZE);
				if (mova_free_contig(arena, p, np + 1) != EINVAL)
					FAIL("free_contig with the wrong size accepted");
				if (mova_free_contig(arena, p, np))
					FAIL("free_contig failed");
			} else if (errno != ENOMEM) {
				FAIL("alloc_contig failed with errno %d", errno);
			}
			break;
		}
		case 14: { /* stale and foreign handles */
			mova_handle bad = nstale ? stale[k % nstale] : (mova_handle)k << 40;
			if (mova_pin(arena, bad) || mova_hsize(arena, bad) ||
			    mova_hfree(arena, bad) != EINVAL)
				FAIL("stale handle %#llx accepted", (unsigned long long)bad);
			if (other && ho->h &&
			    (mova_pin(other, ho->h) || mova_hfree(other, ho->h) != EINVAL))
				FAIL("foreign handle accepted");
			break;
		}
		case 15: { /* forged handles */
			mova_handle f = 0;
			for (int b = 0; b < 8; b++)
				f = f << 8 | byte(&in);
			bool live = false;
			for (int j = 0; j < MAXH; j++)
				live |= h[j].h == f;
			if (!live && (mova_pin(arena, f) || mova_hfree(arena, f) != EINVAL ||
				      mova_unpin(arena, f) != EINVAL))
				FAIL("forged handle %#llx accepted", (unsigned long long)f);
			break;
		}
		case 16: /* interior pointers: free reports and ignores them; realloc
			  * and usable_size refuse them (they must not resize a slot
			  * from its middle) */
			if (ro->p && ro->size > 16) {
				/* 16 bytes in, or half way: a twin's second slot */
				size_t off = k & 2 ? mova_usable_size(ro->p) / 2 : 16;
				off = off < 16 ? 16 : off;
				mova_free(ro->p + off);
				errno = 0;
				if (mova_usable_size(ro->p + off) ||
				    mova_realloc(ro->p + off, 8) != NULL || errno != EINVAL)
					FAIL("interior pointer accepted by usable_size or realloc");
				check_contents(ro->p, ro->size, ro->fill, "after a bad free");
			}
			break;
		case 17: /* hsize of every live handle */
			for (int j = 0; j < MAXH; j++)
				if (h[j].h && mova_hsize(arena, h[j].h) != h[j].size)
					FAIL("hsize changed");
			break;
		case 18: { /* a section of its own, emptied and given back whole */
			mova_stats st0, st1;
			mova_stats_get(arena, &st0);
			size_t big = ((size_t)(byte(&in) % 64) + 65) << 20; /* 65 .. 128 MiB */
			mova_handle b = mova_halloc(arena, big);
			if (!b)
				break; /* the arena's limit */
			unsigned char *p = mova_pin(arena, b);
			if (!p)
				FAIL("pin of a fresh handle failed");
			p[0] = p[big - 1] = 0x5a;
			mova_unpin(arena, b);
			if (mova_hfree(arena, b))
				FAIL("hfree of a fresh handle failed");
			mova_shrink(arena, SIZE_MAX, NULL);
			mova_stats_get(arena, &st1);
			if (st0.nr_sections && st1.nr_sections > st0.nr_sections)
				FAIL("sections %zu -> %zu: an emptied section stayed",
				     st0.nr_sections, st1.nr_sections);
			break;
		}
		case 19:
			if (k & 1) {
				/* a sparse burst, then objects of about twice its
				 * size in free raw entries: twins (lib/slab.h) */
				size_t hs = 129 + word(&in) % 1920;
				sparse_burst(hs, (uint8_t)(k + 1));
				for (int j = 0, made = 0; j < MAXR && made < 4; j++) {
					if (r[j].p)
						continue;
					r[j].size = 2 * hs - byte(&in) % 16;
					r[j].p = mova_malloc(r[j].size);
					if (!r[j].p)
						FAIL("malloc(%zu) failed", r[j].size);
					if (mova_usable_size(r[j].p) < r[j].size)
						FAIL("usable size %zu < %zu",
						     mova_usable_size(r[j].p), r[j].size);
					r[j].fill = (uint8_t)(k + j);
					memset(r[j].p, r[j].fill, r[j].size);
					made++;
				}
				break;
			}
			/* flush: the default arena's raw slabs purge their free
			 * pages; what is live must keep its bytes */
			mova_thread_flush(mova_default_arena());
			for (int j = 0; j < MAXR; j++)
				if (r[j].p)
					check_contents(r[j].p, r[j].size, r[j].fill,
						       "after a purge");
			break;
		}
	}
	/* everything still intact; then clean up */
	for (int j = 0; j < MAXH; j++) {
		if (!h[j].h)
			continue;
		const unsigned char *p = mova_pin(arena, h[j].h);
		if (!p)
			FAIL("a live handle was lost");
		check_contents(p, h[j].size, h[j].fill, "final");
		mova_unpin(arena, h[j].h);
		while (h[j].pins--)
			mova_unpin(arena, h[j].h);
		if (mova_hfree(arena, h[j].h))
			FAIL("final hfree failed");
	}
	for (int j = 0; j < MAXR; j++)
		if (r[j].p) {
			check_contents(r[j].p, r[j].size, r[j].fill, "final raw");
			mova_free(r[j].p);
		}
	for (unsigned j = 0; j < nsparse; j++)
		check_contents(sparse[j].p, sparse[j].size, sparse[j].fill, "final sparse");
	for (unsigned j = 0; j < nsparse; j++)
		mova_free(sparse[j].p);
	nsparse = 0;
	mova_stats st;
	mova_stats_get(arena, &st);
	if (st.live_handles != 0)
		FAIL("live_handles %zu after freeing everything", st.live_handles);
	return 0;
}

#ifndef MOVA_LIBFUZZER
/* fuzz-replay: run every file named on the command line (or every file of
 * the directories named) through the entry point */
#include <dirent.h>

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	uint8_t buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0, bad = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			bad |= run_file(argv[i]);
			files++;
			continue;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			bad |= run_file(path);
			files++;
		}
		closedir(d);
	}
	printf("fuzz-replay: %d inputs replayed\n", files);
	return bad;
}
#endif
