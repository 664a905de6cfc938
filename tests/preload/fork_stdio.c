/* SPDX-License-Identifier: MIT */
/*
 * fork_stdio: fork while other threads are inside stdio (issue 17, item 1).
 * Meant to run under LD_PRELOAD=libmova-preload.so; it uses only libc.
 *
 * The pattern that deadlocked: threads read a file of long lines with
 * getline (stdio grows the line buffer with realloc while it holds the
 * FILE's lock), others fopen/fclose and fflush(NULL) (stdio's list lock,
 * then every FILE's lock), and the main thread forks. glibc's fork runs the
 * atfork prepare handlers, then takes the stdio list lock, then its own
 * malloc's locks. An allocator whose prepare handler takes its locks before
 * the list lock deadlocks: the forker holds the allocator and waits for the
 * list; fflush(NULL) holds the list and waits for a FILE; the getline
 * holding that FILE waits in realloc for the allocator.
 *
 * An alarm ends the process with status 3 and a message if a round hangs.
 * The child allocates, writes through stdio and exits. Exit 0 when every
 * round finished and every child exited 0.
 *
 * usage: fork_stdio [rounds] [seconds-limit]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[64];
static atomic_int stop;
static atomic_long lines_read, flushes, opens;

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "fork_stdio: a fork round hung (deadlock between fork, stdio and "
				  "malloc)\n";
	ssize_t r = write(2, msg, sizeof msg - 1);
	(void)r;
	_exit(3);
}

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		char *line = NULL;
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			atomic_fetch_add(&lines_read, 1);
			/* start small again, so the next line grows it by realloc */
			free(line);
			line = NULL;
			cap = 0;
		}
		free(line);
		fclose(f);
	}
	return NULL;
}

static void *flusher(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		fflush(NULL);
		atomic_fetch_add(&flushes, 1);
	}
	return NULL;
}

static void *opener(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		FILE *f = fopen("/dev/null", "w");
		if (f) {
			fprintf(f, "%ld\n", atomic_load(&opens));
			fclose(f);
		}
		void *p = malloc(1 << 20);
		free(p);
		atomic_fetch_add(&opens, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	unsigned limit = argc > 2 ? (unsigned)atoi(argv[2]) : 100;
	signal(SIGALRM, on_alarm);
	alarm(limit);

	snprintf(path, sizeof path, "/tmp/fork_stdio.%d", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f) {
		perror("fork_stdio: fopen");
		return 2;
	}
	/* lines from 1 KiB to 256 KiB: getline reallocs through small and large sizes */
	for (size_t len = 1024; len <= ((size_t)256 << 10); len *= 2) {
		for (size_t i = 0; i < len; i++)
			fputc('a' + (int)(i % 26), f);
		fputc('\n', f);
	}
	fclose(f);

	pthread_t t[6];
	pthread_create(&t[0], NULL, reader, NULL);
	pthread_create(&t[1], NULL, reader, NULL);
	pthread_create(&t[2], NULL, reader, NULL);
	pthread_create(&t[3], NULL, flusher, NULL);
	pthread_create(&t[4], NULL, opener, NULL);
	pthread_create(&t[5], NULL, opener, NULL);

	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		pid_t pid = fork();
		if (pid == 0) {
			/* the child: allocator and stdio both usable */
			char *p = malloc(100000);
			if (!p)
				_exit(4);
			memset(p, 1, 100000);
			char *q = realloc(p, 3 << 20);
			if (!q)
				_exit(5);
			free(q);
			FILE *o = fopen("/dev/null", "w");
			if (!o)
				_exit(6);
			fprintf(o, "child %d\n", r);
			fclose(o);
			_exit(0);
		}
		if (pid < 0) {
			perror("fork_stdio: fork");
			bad = 1;
			break;
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "fork_stdio: child of round %d failed (status %#x)\n", r,
				st);
			bad = 1;
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	unlink(path);
	printf("fork_stdio: %d rounds, %ld lines read, %ld flushes, %ld opens: %s\n", rounds,
	       atomic_load(&lines_read), atomic_load(&flushes), atomic_load(&opens),
	       bad ? "FAILED" : "ok");
	return bad;
}
