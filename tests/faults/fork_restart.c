/* SPDX-License-Identifier: MIT */
/*
 * fork_restart (issue 17 item 3): kcompactd is started lazily, when an
 * arena has work for it, and a forked child, which inherits no thread,
 * starts its own the same way. The parent first has work (it frees 64 MiB
 * of small blocks: free memory to give back), so its kcompactd runs; the
 * child, with one thread, churns and frees 64 MiB in its turn and must
 * then have a kcompactd of its own, which gives that memory back. A plain
 * program (Criterion's runner does not survive tests that fork).
 */
#include <dirent.h>
#include <mova.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* threads of this process named kcompactd, and all threads */
static int count_threads(int *kcompactd)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	*kcompactd = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		char path[64], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%.20s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(comm, sizeof comm, f) && !strcmp(comm, "kcompactd\n"))
			(*kcompactd)++;
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

/* 64 MiB of small blocks, allocated, written and freed */
static int churn(void)
{
	enum { N = (64 << 20) / 64 };
	void **v = mova_malloc(N * sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < N; i++) {
		v[i] = mova_malloc(48);
		if (!v[i])
			return -1;
		memset(v[i], (int)i, 48);
	}
	for (size_t i = 0; i < N; i++)
		mova_free(v[i]);
	mova_free(v);
	return 0;
}

/* wait up to 5 s for a kcompactd thread; its count */
static int wait_kcompactd(void)
{
	int k = 0;
	for (int i = 0; i < 500; i++) {
		count_threads(&k);
		if (k)
			break;
		usleep(10000);
	}
	return k;
}

static size_t resident(void)
{
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	return st.resident_bytes;
}

int main(void)
{
	int k;
	if (churn())
		return 2;
	if (wait_kcompactd() != 1) {
		fprintf(stderr, "fork_restart: the parent freed 64 MiB and has no kcompactd\n");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		int n = count_threads(&k);
		if (n != 1 || k != 0) {
			fprintf(stderr, "fork_restart: child starts with %d threads\n", n);
			_exit(1);
		}
		if (churn())
			_exit(2);
		if (wait_kcompactd() != 1) {
			fprintf(stderr,
				"fork_restart: the child freed 64 MiB and has no kcompactd\n");
			_exit(1);
		}
		/* and it works: the freed memory decays back (default decay_ms) */
		size_t r = resident();
		for (int i = 0; i < 100 && r > ((size_t)24 << 20); i++) {
			usleep(50000);
			r = resident();
		}
		if (r > ((size_t)24 << 20)) {
			fprintf(stderr,
				"fork_restart: child's resident %zu KiB 5 s after freeing\n",
				r >> 10);
			_exit(1);
		}
		printf("fork_restart: child has its own kcompactd; resident %zu KiB\n", r >> 10);
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "fork_restart: child failed, status %#x\n", status);
		return 1;
	}
	return 0;
}
