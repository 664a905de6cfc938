/* SPDX-License-Identifier: MIT */
/*
 * lazy: run under LD_PRELOAD=libmova-preload.so (issue 17 items 3 and 13).
 * Nothing heavy may happen before the first allocation that needs it, and
 * a program that allocates a little must stay single-threaded, so that it
 * can still do what only a single-threaded process may:
 *  1. before any allocation: one thread, and no arena reserved (VmSize far
 *     below the default arena's 64 GiB), read without stdio (it allocates);
 *  2. after modest allocation (16000 blocks of up to 2 KiB, a realloc to 1 MiB, stdio, a
 *     string or two): still one thread (/proc/self/task);
 *  3. unshare(CLONE_NEWUSER) succeeds, unless the kernel or a sandbox
 *     refuses it to any process: a forked child, alone in its process
 *     whatever the parent has, tries first, and if it is refused the step
 *     is skipped;
 *  4. the first read section is where liburcu's worker thread is made
 *     (mova_read_lock, looked up weakly: the preload library exports the
 *     API), not before.
 * Exit 0, or 1 with a message naming the step.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void mova_read_lock(void) __attribute__((weak));
void mova_read_unlock(void) __attribute__((weak));

/* a field of /proc/self/status, with no allocation */
static long status_field(const char *name)
{
	char buf[8192];
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strstr(buf, name);
	return p ? strtol(p + strlen(name) + 1, NULL, 10) : -1;
}

static void die_raw(const char *msg)
{
	write(2, "lazy: ", 6);
	write(2, msg, strlen(msg));
	write(2, "\n", 1);
	_exit(1);
}

static int tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int main(void)
{
	/* 1 */
	long vm_kb = status_field("VmSize:"), threads = status_field("Threads:");
	if (threads != 1)
		die_raw("before any allocation: more than one thread (kcompactd started from a "
			"constructor?)");
	if (vm_kb < 0 || vm_kb > (16L << 20))
		die_raw("before any allocation: over 16 GiB of address space reserved (the "
			"default arena made by a constructor?)");

	/* 2 */
	enum { N = 4000 };
	static void *p[N];
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < N; i++)
			p[i] = malloc(16 + (size_t)(i * 7919 + round) % 2000);
		for (int i = 0; i < N; i += 2)
			free(p[i]);
		for (int i = 1; i < N; i += 2)
			free(p[i]);
	}
	char *r = NULL;
	for (size_t sz = 1024; sz <= (1u << 20); sz *= 2) {
		r = realloc(r, sz);
		memset(r, 1, sz);
	}
	free(r);
	char *s = strdup("a string"), *t = NULL;
	if (asprintf(&t, "%s and %d", s, 42) < 0)
		return 1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f)
		fclose(f);
	free(s);
	free(t);
	int n = tasks();
	if (n != 1) {
		fprintf(stderr, "lazy: %d threads after modest allocation, want 1\n", n);
		return 1;
	}

	/* 3 */
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) ? 1 : 0);
	int st = 0;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if (unshare(CLONE_NEWUSER)) {
			perror("lazy: unshare(CLONE_NEWUSER) refused to this process, allowed to a "
			       "forked child");
			return 1;
		}
		printf("lazy: unshare(CLONE_NEWUSER) ok\n");
	} else {
		printf("lazy: unshare(CLONE_NEWUSER) refused to any process here: step skipped\n");
	}

	/* 4 */
	if (mova_read_lock && mova_read_unlock) {
		if ((n = tasks()) != 1) {
			fprintf(stderr, "lazy: %d threads before the first read section\n", n);
			return 1;
		}
		mova_read_lock();
		mova_read_unlock();
		printf("lazy: threads after the first read section: %d\n", tasks());
	}
	printf("lazy: one thread and no arena before the first allocation; one thread after "
	       "modest allocation\n");
	return 0;
}
