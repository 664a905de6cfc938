/* SPDX-License-Identifier: MIT */
/*
 * pattern.h: the byte patterns the object tests write into allocations
 * and check later: a seed picks a stream (splitmix64 words), so a byte
 * that changed, moved or came from another object is found at once.
 */
#ifndef MV_TEST_PATTERN_H
#define MV_TEST_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* n bytes of the stream of seed */
static inline void fill(void *p, size_t n, uint64_t seed)
{
	unsigned char *b = p;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w = mix64(seed + i);
		memcpy(b + i, &w, 8);
	}
	uint64_t w = mix64(seed + i);
	for (; i < n; i++, w >>= 8)
		b[i] = (unsigned char)w;
}

/* the offset of the first byte that differs from the pattern, or n */
static inline size_t check(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w = mix64(seed + i), got;
		memcpy(&got, b + i, 8);
		if (got != w)
			for (size_t k = 0; k < 8; k++, w >>= 8)
				if (b[i + k] != (unsigned char)w)
					return i + k;
	}
	uint64_t w = mix64(seed + i);
	for (; i < n; i++, w >>= 8)
		if (b[i] != (unsigned char)w)
			return i;
	return n;
}

/* the offset of the first byte that is not zero, or n */
static inline size_t check_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return i;
	return n;
}

#endif
