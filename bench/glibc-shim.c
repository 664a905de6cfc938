/* SPDX-License-Identifier: MIT */
/*
 * glibc-shim.c: LD_PRELOAD it to run a program linked against another
 * malloc on glibc's own. Debian's redis-server links libjemalloc.so.2, so
 * "no preload" there means jemalloc, not glibc; preloading this routes the
 * malloc family to glibc's (__libc_malloc and friends, and libc's own
 * malloc_usable_size and malloc_trim found through its handle), ahead of
 * the linked one. bench/redis-frag.sh uses it for its glibc row.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n)
{
	return __libc_malloc(n);
}
EXPORT void free(void *p)
{
	__libc_free(p);
}
EXPORT void *calloc(size_t a, size_t b)
{
	return __libc_calloc(a, b);
}
EXPORT void *realloc(void *p, size_t n)
{
	return __libc_realloc(p, n);
}
EXPORT void *memalign(size_t a, size_t n)
{
	return __libc_memalign(a, n);
}
EXPORT void *aligned_alloc(size_t a, size_t n)
{
	return __libc_memalign(a, n);
}
EXPORT int posix_memalign(void **r, size_t a, size_t n)
{
	if (a < sizeof(void *) || (a & (a - 1)))
		return EINVAL;
	void *p = __libc_memalign(a, n);
	if (!p)
		return ENOMEM;
	*r = p;
	return 0;
}

static void *libc_sym(const char *name)
{
	void *h = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
	return h ? dlsym(h, name) : NULL;
}

EXPORT size_t malloc_usable_size(void *p)
{
	static size_t (*fn)(void *);
	if (!fn)
		fn = (size_t(*)(void *))libc_sym("malloc_usable_size");
	return fn ? fn(p) : 0;
}

EXPORT int malloc_trim(size_t pad)
{
	static int (*fn)(size_t);
	if (!fn)
		fn = (int (*)(size_t))libc_sym("malloc_trim");
	return fn ? fn(pad) : 0;
}
