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

	/* every alignment */
	for (size_t al = 1; al <= ((size_t)1 << 22); al <<= 1) {
		void *a = memalign(al, 100);
		CHECK(a && ((uintptr_t)a & (al - 1)) == 0);
		void *b = NULL;
		CHECK(posix_memalign(&b, al < sizeof(void *) ? sizeof(void *) : al, 3 * al + 1) ==
		      0);
		CHECK(b && ((uintptr_t)b & (al - 1)) == 0);
		memset(a, 1, 100);
		memset(b, 1, 3 * al + 1);
		free(a);
		free(b);
	}
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
