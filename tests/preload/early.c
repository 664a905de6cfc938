/* SPDX-License-Identifier: MIT */
/*
 * early: a shared library whose constructor allocates, frees, reallocates
 * and starts a thread that allocates, before libmova-preload.so's own
 * constructor has run (preloaded after mova, so initialised before it). It
 * also asks dlsym for the next malloc, as malloc-wrapping tools do.
 * Aborts if anything is wrong.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *thread_allocates(void *arg)
{
	(void)arg;
	void *p[64];
	for (int i = 0; i < 64; i++)
		p[i] = malloc((size_t)i * 100 + 1);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	return NULL;
}

__attribute__((constructor)) static void early_init(void)
{
	char *s = malloc(100);
	if (!s)
		abort();
	strcpy(s, "early");
	s = realloc(s, 100000);
	if (!s || strcmp(s, "early"))
		abort();
	void *c = calloc(10, 10);
	void *a = NULL;
	if (!c || posix_memalign(&a, 256, 1000) || ((size_t)a & 255))
		abort();
	free(a);
	free(c);
	free(s);
	pthread_t t;
	if (pthread_create(&t, NULL, thread_allocates, NULL) || pthread_join(t, NULL))
		abort();
	/* a wrapper's lookup of the real malloc must not recurse into trouble */
	void *(*next_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	(void)next_malloc;
	char *d = strdup("early strdup");
	free(d);
}
