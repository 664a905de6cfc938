/* SPDX-License-Identifier: MIT */
/*
 * pinned.h: write and check a handle's whole object through a pin, for
 * tests built on Criterion or on cr_standalone.c (include either first).
 * pin_fill sets every byte to v; pin_expect checks every stride-th byte
 * and the last (stride 1: every byte; tens of MiB of objects under
 * ThreadSanitizer want a larger one).
 */
#ifndef MV_TEST_PINNED_H
#define MV_TEST_PINNED_H

#include <string.h>

#include "mova.h"

static inline void pin_fill(mova_arena *a, mova_handle h, unsigned char v)
{
	unsigned char *p = mova_pin(a, h);
	cr_assert(p, "pin of a live handle failed");
	memset(p, v, mova_hsize(a, h));
	mova_unpin(a, h);
}

static inline void pin_expect(mova_arena *a, mova_handle h, unsigned char v, size_t stride)
{
	const unsigned char *p = mova_pin(a, h);
	cr_assert(p, "a live handle was lost");
	size_t n = mova_hsize(a, h);
	for (size_t i = 0; i < n; i += stride)
		cr_assert_eq(p[i], v, "byte %zu of %zu changed", i, n);
	cr_assert_eq(p[n - 1], v, "byte %zu of %zu changed", n - 1, n);
	mova_unpin(a, h);
}

#endif
