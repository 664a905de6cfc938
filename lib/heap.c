/* SPDX-License-Identifier: MIT */
/* heap.c: the registry of live heaps (see heap.h). */
#include "heap.h"

#include <errno.h>
#include <string.h>

#include "os.h"

mv_mutex mv_heap_registry_lock = {PTHREAD_MUTEX_INITIALIZER, MV_RANK_GLOBAL};
/* an array that doubles as needed (no limit but memory) */
static struct mv_heap **registry;
static size_t registry_n, registry_cap;
static uint64_t next_epoch = 1;

bool mv_heap_alive(struct mv_heap *h, uint64_t epoch)
{
	for (size_t i = 0; i < registry_n; i++)
		if (registry[i] == h)
			return h->epoch == epoch;
	return false;
}

void mv_heap_foreach(void (*fn)(struct mv_heap *h, void *arg), void *arg)
{
	for (size_t i = 0; i < registry_n; i++)
		fn(registry[i], arg);
}

int mv_heap_register(struct mv_heap *h)
{
	if (registry_n == registry_cap) {
		size_t cap = registry_cap ? 2 * registry_cap : 512;
		struct mv_heap **r = mv_os_map(cap * sizeof *r);
		if (!r)
			return ENOMEM;
		if (registry) {
			memcpy(r, registry, registry_n * sizeof *r);
			mv_os_release(registry, registry_cap * sizeof *r);
		}
		registry = r;
		registry_cap = cap;
	}
	h->epoch = next_epoch++;
	registry[registry_n++] = h;
	return 0;
}

void mv_heap_unregister(struct mv_heap *h)
{
	for (size_t i = 0; i < registry_n; i++) {
		if (registry[i] == h) {
			registry[i] = registry[--registry_n];
			return;
		}
	}
}
