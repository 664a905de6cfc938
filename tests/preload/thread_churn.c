/* SPDX-License-Identifier: MIT */
/*
 * thread_churn: a thread pool that creates and exits threads by the ten
 * thousand (issue 17, item 4). Meant to run under LD_PRELOAD; it finds
 * mova_stats_get with dlsym, so it runs (and checks less) without it.
 *
 * Each thread allocates and frees as a worker does, and calls strerror on
 * an unknown error number, which makes glibc allocate a per-thread buffer
 * that __libc_thread_freeres frees after every key destructor ran, mova's
 * included. A free at that point once made the thread a new cache that was
 * never torn down: 8 KiB a thread, and every fork walked them all. So:
 * after the threads are gone the arena must hold a cache only for the main
 * thread (and the kcompactd thread, if it allocated), resident memory must
 * not grow with the number of threads, and a fork must stay fast.
 *
 * usage: thread_churn [threads]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mova.h"

static void *worker(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	void *p[16];
	for (int k = 0; k < 16; k++) {
		p[k] = malloc(16 + (size_t)((i * 7 + (uintptr_t)k * 131) % 4000));
		memset(p[k], (int)k, 16);
	}
	for (int k = 0; k < 16; k++)
		free(p[k]);
	/* glibc allocates this thread's strerror buffer, freed at its exit
	 * after the key destructors */
	const char *m = strerror(100000 + (int)(i % 1000));
	return (void *)(uintptr_t)(m[0] == 0);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static double fork_ms(void)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid == 0) {
		void *p = malloc(100);
		free(p);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void run(unsigned n)
{
	for (unsigned i = 0; i < n; i += 8) {
		pthread_t t[8];
		for (unsigned k = 0; k < 8; k++)
			if (pthread_create(&t[k], NULL, worker, (void *)(uintptr_t)(i + k))) {
				perror("thread_churn: pthread_create");
				exit(2);
			}
		for (unsigned k = 0; k < 8; k++)
			pthread_join(t[k], NULL);
	}
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 20000;
	void (*stats_get)(mova_arena *, mova_stats *) =
	    (void (*)(mova_arena *, mova_stats *))dlsym(RTLD_DEFAULT, "mova_stats_get");
	mova_arena *(*dflt)(void) =
	    (mova_arena * (*)(void)) dlsym(RTLD_DEFAULT, "mova_default_arena");

	/* warm up: the first threads make the metadata every later one reuses */
	run(2000);
	long rss0 = rss_kib();
	double f0 = fork_ms();
	run(n);
	long rss1 = rss_kib();
	double f1 = fork_ms();
	int bad = 0;
	size_t caches = 0;
	if (stats_get && dflt) {
		mova_stats st;
		stats_get(dflt(), &st);
		caches = st.nr_thread_caches;
		/* the main thread, and kcompactd if it ever allocated */
		if (caches > 2) {
			fprintf(stderr,
				"thread_churn: %zu thread caches left after %u threads exited\n",
				caches, n + 2000);
			bad = 1;
		}
	}
	/* 8 KiB a thread leaked would be 160 MiB for 20,000 threads */
	if (rss1 - rss0 > 16384) {
		fprintf(stderr, "thread_churn: resident memory grew by %ld KiB over %u threads\n",
			rss1 - rss0, n);
		bad = 1;
	}
	if (f1 > 10 * f0 + 50) {
		fprintf(stderr,
			"thread_churn: fork took %.1f ms after the threads, %.1f ms before\n", f1,
			f0);
		bad = 1;
	}
	printf("thread_churn: %u threads; rss %ld -> %ld KiB; fork %.1f -> %.1f ms; %zu caches%s: "
	       "%s\n",
	       n, rss0, rss1, f0, f1, caches, stats_get ? "" : " (not preloaded)",
	       bad ? "FAILED" : "ok");
	return bad;
}
