/* SPDX-License-Identifier: MIT */
/*
 * edge: the malloc family's corner cases, as a program sees them under
 * LD_PRELOAD=libmova-preload.so. Every failure must return NULL (or an
 * error code) with errno ENOMEM or EINVAL as POSIX says, huge requests
 * must fail rather than wrap, and pointers mova did not hand out must be
 * left alone. Exit status 0 when every check holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(c)                                                                              \
	do {                                                                                  \
		if (!(c)) {                                                                   \
			fprintf(stderr, "edge: check failed at line %d: %s\n", __LINE__, #c); \
			failures++;                                                           \
		}                                                                             \
	} while (0)

/* the allocator answers, not glibc: mova's statistics exist */
extern void mova_stats_print(void *a, FILE *f) __attribute__((weak));

/* through a volatile, so the compiler neither warns nor folds the calls */
static volatile size_t huge = SIZE_MAX;

/* an aligned block: usable for all of malloc_usable_size, its contents
 * kept by realloc (grown and shrunk), then freed */
static void check_block(void *p, size_t size)
{
	size_t usable = malloc_usable_size(p);
	CHECK(usable >= size);
	memset(p, 0x5a, usable);
	size_t keep = usable < ((size_t)1 << 20) ? usable : ((size_t)1 << 20);
	unsigned char *q = realloc(p, usable + 4096);
	CHECK(q != NULL);
	if (!q) {
		free(p);
		return;
	}
	for (size_t i = 0; i < keep; i += 61)
		if (q[i] != 0x5a) {
			CHECK(!"realloc lost the contents");
			break;
		}
	q = realloc(q, keep / 2 + 1);
	CHECK(q && q[0] == 0x5a && q[keep / 2] == 0x5a);
	free(q);
}

int main(void)
{
	void *p;
	const size_t max = huge;
	CHECK(mova_stats_print != NULL);

	errno = 0;
	CHECK(malloc(max) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(malloc(max / 2) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(calloc(max / 2, 3) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(reallocarray(NULL, max / 2, 3) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(valloc(max) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(pvalloc(max - 100) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(memalign(4096, max - 4000) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(aligned_alloc(3, 64) == NULL && errno == EINVAL);
	p = (void *)1;
	CHECK(posix_memalign(&p, 3, 64) == EINVAL && p == (void *)1);
	CHECK(posix_memalign(&p, 4, 64) == EINVAL && p == (void *)1);
	CHECK(posix_memalign(&p, 64, max) == ENOMEM && p == (void *)1);

	/* realloc failing keeps the old block */
	char *q = malloc(100);
	memset(q, 7, 100);
	errno = 0;
	CHECK(realloc(q, max) == NULL && errno == ENOMEM);
	CHECK(q[0] == 7 && q[99] == 7);
	free(q);

	/* zero sizes */
	void *z1 = malloc(0), *z2 = malloc(0);
	CHECK(z1 && z2 && z1 != z2);
	free(z1);
	free(z2);
	p = calloc(0, 10);
	CHECK(p != NULL);
	free(p);

	/* every alignment, through every aligned entry point: aligned to the
	 * address (past 4 MiB mova once aligned relative to its arena), usable
	 * for all of malloc_usable_size, kept by realloc, freed */
	for (size_t al = 1; al <= ((size_t)256 << 20); al <<= 1) {
		size_t big = (al < ((size_t)4 << 20) ? al : ((size_t)4 << 20)) * 3 + 1;
		for (int how = 0; how < 3; how++) {
			for (int k = 0; k < 2; k++) {
				size_t size = k ? big : 100;
				void *a = NULL;
				errno = 0;
				if (how == 0)
					a = memalign(al, size);
				else if (how == 1 && al >= sizeof(void *))
					CHECK(posix_memalign(&a, al, size) == 0);
				else if (how == 1)
					CHECK(posix_memalign(&a, al, size) == EINVAL);
				else
					a = aligned_alloc(al, size);
				if (how == 1 && al < sizeof(void *))
					continue;
				CHECK(a && ((uintptr_t)a & (al - 1)) == 0);
				if (!a || ((uintptr_t)a & (al - 1))) {
					fprintf(stderr, "edge: %s(%zu, %zu) = %p\n",
						how == 0   ? "memalign"
						: how == 1 ? "posix_memalign"
							   : "aligned_alloc",
						al, size, a);
					continue;
				}
				check_block(a, size);
			}
		}
	}
	for (size_t size = 1; size <= ((size_t)1 << 20); size = size * 7 + 3) {
		p = valloc(size);
		CHECK(p && ((uintptr_t)p & 4095) == 0);
		if (p)
			check_block(p, size);
		p = pvalloc(size);
		CHECK(p && ((uintptr_t)p & 4095) == 0 && malloc_usable_size(p) % 4096 == 0);
		if (p)
			check_block(p, size);
	}
	/* alignments past the arena: an error, never a misaligned block */
	errno = 0;
	CHECK(memalign((size_t)1 << 40, 64) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(aligned_alloc((size_t)1 << 40, 64) == NULL && errno == ENOMEM);
	p = (void *)1;
	CHECK(posix_memalign(&p, (size_t)1 << 40, 64) == ENOMEM && p == (void *)1);
	p = valloc(10);
	CHECK(p && ((uintptr_t)p & 4095) == 0);
	free(p);
	p = pvalloc(10);
	CHECK(p && ((uintptr_t)p & 4095) == 0 && malloc_usable_size(p) >= 4096);
	free(p);
	CHECK(memalign(24, 10) != NULL); /* glibc rounds a non-power-of-two up */

	/* usable size */
	for (size_t s = 1; s < 100000; s = s * 3 / 2 + 1) {
		p = malloc(s);
		CHECK(p && malloc_usable_size(p) >= s);
		memset(p, 0xab, malloc_usable_size(p));
		free(p);
	}
	CHECK(malloc_usable_size(NULL) == 0);

	/* pointers mova did not hand out: reported, left alone */
	int on_stack;
	free(&on_stack);
	char *r = malloc(64);
	free(r + 8);
	free(r);
	free(r); /* double free */
	errno = 0;
	CHECK(realloc(&on_stack, 10) == NULL);
	/* still sound: no pointer handed out twice */
	void *v[1000];
	for (int i = 0; i < 1000; i++) {
		v[i] = malloc(64);
		memset(v[i], i & 0xff, 64);
	}
	for (int i = 0; i < 1000; i++)
		for (int k = 0; k < 64; k++)
			if (((unsigned char *)v[i])[k] != (i & 0xff)) {
				CHECK(!"object overwritten");
				break;
			}
	for (int i = 0; i < 1000; i++)
		free(v[i]);

	/* the glibc hooks programs probe for */
	int trimmed = malloc_trim(0);
	CHECK(trimmed == 0 || trimmed == 1);
	struct mallinfo2 mi = mallinfo2();
	CHECK(mi.arena > 0);
	CHECK(mallopt(M_ARENA_MAX, 2) == 1);

	if (failures)
		fprintf(stderr, "edge: %d checks failed\n", failures);
	else
		printf("edge: every corner case holds\n");
	return failures != 0;
}
