/* SPDX-License-Identifier: MIT */
/*
 * fork_kcompactd: fork, again and again, while kcompactd compacts at full
 * proactiveness and another thread allocates and frees. Every child must
 * find every lock of mova usable: it allocates, compacts, checks and frees,
 * and exits 0. A deadlock shows as the test's timeout. A plain program
 * (Criterion's runner does not survive tests that fork).
 */
#include <errno.h>
#include <mova.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static mova_arena *A;
static atomic_int stop;
static atomic_long bad, ops;

static void *churn(void *arg)
{
	(void)arg;
	enum { N = 2048 };
	static mova_handle h[N];
	unsigned seed = 12345;
	while (!atomic_load(&stop)) {
		seed = seed * 1103515245 + 12345;
		unsigned k = (seed >> 8) % N;
		if (h[k]) {
			const unsigned char *p = mova_pin(A, h[k]);
			size_t n = mova_hsize(A, h[k]);
			for (size_t i = 0; p && i < n; i++)
				if (p[i] != (unsigned char)k) {
					atomic_fetch_add(&bad, 1);
					break;
				}
			mova_unpin(A, h[k]);
			mova_hfree(A, h[k]);
			h[k] = MOVA_NULL;
		} else if ((h[k] = mova_halloc(A, 16 + (seed >> 16) % 3000))) {
			unsigned char *p = mova_pin(A, h[k]);
			memset(p, (int)(k & 0xff), mova_hsize(A, h[k]));
			mova_unpin(A, h[k]);
		}
		atomic_fetch_add(&ops, 1);
	}
	return NULL;
}

static int child(void)
{
	mova_handle h[256];
	for (int k = 0; k < 256; k++) {
		h[k] = mova_halloc(A, 100 + (size_t)k);
		if (!h[k])
			return 3;
		unsigned char *p = mova_pin(A, h[k]);
		memset(p, k, 100 + (size_t)k);
		mova_unpin(A, h[k]);
	}
	if (mova_compact(A, -1))
		return 4;
	for (int k = 0; k < 256; k++) {
		const unsigned char *p = mova_pin(A, h[k]);
		for (int j = 0; j < 100 + k; j++)
			if (p[j] != (unsigned char)k)
				return 5;
		mova_unpin(A, h[k]);
		mova_hfree(A, h[k]);
	}
	void *m = mova_malloc(1000);
	mova_free(m);
	return 0;
}

int main(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)1 << 30;
	cfg.proactiveness = 100;
	cfg.kcompactd_interval_ms = 10;
	cfg.kcompactd_cpu_budget = 100;
	A = mova_arena_create(&cfg);
	if (!A) {
		perror("mova_arena_create");
		return 2;
	}
	pthread_t t;
	pthread_create(&t, NULL, churn, NULL);
	int failed = 0;
	for (int i = 0; i < 40; i++) {
		usleep(10000);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child());
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		int status;
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "fork_kcompactd: child %d failed, status %d\n", i, status);
			failed++;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	mova_stats st;
	mova_stats_get(A, &st);
	printf(
	    "fork_kcompactd: 40 forks, %d failed children, %ld operations meanwhile, %ld corrupt, "
	    "kcompactd woke %lu times\n",
	    failed, atomic_load(&ops), atomic_load(&bad), (unsigned long)st.compact_daemon_wake);
	mova_arena_destroy(A);
	return failed || atomic_load(&bad);
}
