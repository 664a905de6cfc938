/* SPDX-License-Identifier: MIT */
/*
 * trim (issue 17 item 11), under LD_PRELOAD=libmova-preload.so: a thread
 * mallocs 120 MiB of 48-byte blocks, frees them and stays alive; then
 * malloc_trim(0) must bring the process's RSS back near where it started
 * (glibc: to about 2 MB). With c0c0fa9 it changed nothing: 96 MB stayed.
 * A second round checks the same without malloc_trim, by decay alone
 * (kcompactd, decay_ms 1000) within 6 s. Exit 0, or 1 with the figures.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f && fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	if (f)
		fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int done, leave;

static void *worker(void *arg)
{
	int trim = (int)(long)arg;
	size_t n = (120u << 20) / 64;
	void **v = malloc(n * sizeof *v);
	for (size_t i = 0; v && i < n; i++) {
		v[i] = malloc(48);
		memset(v[i], 1, 48);
	}
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
	if (trim)
		malloc_trim(0);
	pthread_mutex_lock(&lock);
	done = 1;
	pthread_cond_broadcast(&cond);
	while (!leave)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static int round_(int trim, long base_kb, unsigned wait_ms)
{
	done = leave = 0;
	pthread_t t;
	pthread_create(&t, NULL, worker, (void *)(long)trim);
	pthread_mutex_lock(&lock);
	while (!done)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	long kb = rss_kb();
	for (unsigned ms = 0; ms < wait_ms && kb > base_kb + 16 * 1024; ms += 50) {
		usleep(50000);
		kb = rss_kb();
	}
	printf("trim: %s: RSS %ld KiB (%ld KiB at start)\n",
	       trim ? "after malloc_trim(0)" : "after idling", kb, base_kb);
	pthread_mutex_lock(&lock);
	leave = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(t, NULL);
	return kb > base_kb + 16 * 1024;
}

int main(void)
{
	long base = rss_kb();
	int bad = round_(1, base, 0);
	bad |= round_(0, base, 6000);
	if (bad)
		fprintf(stderr, "trim: freed memory of a live thread stayed resident\n");
	return bad;
}
