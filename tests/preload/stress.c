/* SPDX-License-Identifier: MIT */
/*
 * stress: a multi-threaded malloc workout meant to run under
 * LD_PRELOAD=libmova-preload.so (it uses only the standard malloc family).
 * Threads allocate objects of every size, fill them with a pattern derived
 * from address and size, hand some to a neighbour through a queue to be
 * checked and freed there, realloc others in place or away, and the main
 * thread forks while they run: the child must be able to allocate, check
 * and free at once (every lock of the allocator released in the child),
 * and also while another thread sits inside stdio. Exit status 0 when no
 * byte was wrong.
 *
 * usage: stress [seconds] [threads]
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QCAP 4096

struct queue {
	pthread_mutex_t lock;
	void *item[QCAP];
	size_t size[QCAP];
	unsigned head, tail;
};

static struct queue *queues;
static int nthreads = 4;
static atomic_int stop;
static atomic_long errors, ops, forks;

static unsigned char pattern_at(uintptr_t p, size_t size, size_t i)
{
	return (unsigned char)((p >> 4) ^ size ^ (i * 131));
}

static unsigned char pattern(const void *p, size_t size, size_t i)
{
	return pattern_at((uintptr_t)p, size, i);
}

static void fill(unsigned char *p, size_t size)
{
	for (size_t i = 0; i < size; i++)
		p[i] = pattern(p, size, i);
}

static int check(const unsigned char *p, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (p[i] != pattern(p, size, i))
			return 0;
	return 1;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t rand_size(uint64_t *s)
{
	uint64_t r = xs(s);
	switch (r % 16) {
	case 0: return r % 65536 + 16385; /* large */
	case 1: return (r >> 8) % 16384;  /* up to the largest class */
	case 2: return 0;
	default: return (r >> 8) % 512 + 1;
	}
}

static void *worker(void *arg)
{
	long id = (long)arg;
	uint64_t seed = 0x12345u + (uint64_t)id * 7919;
	enum { LOCAL = 256 };
	void *mine[LOCAL] = {0};
	size_t sizes[LOCAL] = {0};
	while (!atomic_load(&stop)) {
		unsigned k = (unsigned)(xs(&seed) % LOCAL);
		if (mine[k]) {
			if (!check(mine[k], sizes[k]))
				atomic_fetch_add(&errors, 1);
			uint64_t r = xs(&seed) % 4;
			if (r == 0) {
				/* realloc: contents kept up to the smaller size */
				size_t ns = rand_size(&seed);
				uintptr_t old = (uintptr_t)mine[k];
				unsigned char *q = realloc(mine[k], ns ? ns : 1);
				if (!q) {
					atomic_fetch_add(&errors, 1);
					continue;
				}
				size_t keep = sizes[k] < ns ? sizes[k] : ns;
				for (size_t i = 0; i < keep; i++)
					if (q[i] != pattern_at(old, sizes[k], i)) {
						atomic_fetch_add(&errors, 1);
						break;
					}
				mine[k] = q;
				sizes[k] = ns;
				fill(q, ns);
			} else if (r == 1) {
				/* hand it to the next thread, which checks and frees it */
				struct queue *q = &queues[(id + 1) % nthreads];
				pthread_mutex_lock(&q->lock);
				if (q->tail - q->head < QCAP) {
					q->item[q->tail % QCAP] = mine[k];
					q->size[q->tail % QCAP] = sizes[k];
					q->tail++;
					mine[k] = NULL;
				}
				pthread_mutex_unlock(&q->lock);
				if (mine[k]) {
					free(mine[k]);
					mine[k] = NULL;
				}
			} else {
				free(mine[k]);
				mine[k] = NULL;
			}
		} else {
			size_t sz = rand_size(&seed);
			unsigned char *p = (xs(&seed) % 8) ? malloc(sz) : calloc(1, sz);
			if (!p) {
				atomic_fetch_add(&errors, 1);
				continue;
			}
			if (malloc_usable_size(p) < sz)
				atomic_fetch_add(&errors, 1);
			mine[k] = p;
			sizes[k] = sz;
			fill(p, sz);
		}
		/* what others handed us */
		struct queue *q = &queues[id];
		pthread_mutex_lock(&q->lock);
		while (q->head != q->tail) {
			void *p = q->item[q->head % QCAP];
			size_t sz = q->size[q->head % QCAP];
			q->head++;
			if (!check(p, sz))
				atomic_fetch_add(&errors, 1);
			free(p);
		}
		pthread_mutex_unlock(&q->lock);
		atomic_fetch_add(&ops, 1);
	}
	for (unsigned k = 0; k < LOCAL; k++) {
		if (mine[k] && !check(mine[k], sizes[k]))
			atomic_fetch_add(&errors, 1);
		free(mine[k]);
	}
	return NULL;
}

/* a thread that keeps stdio busy, so a fork can land while it holds a
 * FILE lock and is inside malloc (printf allocates its buffers) */
static void *stdio_worker(void *arg)
{
	(void)arg;
	char *buf;
	while (!atomic_load(&stop)) {
		FILE *f = open_memstream(&buf, &(size_t){0});
		for (int i = 0; i < 50; i++)
			fprintf(f, "%d %s\n", i, "mova stress line");
		fclose(f);
		free(buf);
	}
	return NULL;
}

static int child_work(void)
{
	/* allocate, check, free: every allocator lock must be usable here */
	void *p[512];
	for (int i = 0; i < 512; i++) {
		size_t sz = (size_t)(i * 37 % 20000) + 1;
		p[i] = malloc(sz);
		if (!p[i])
			return 1;
		fill(p[i], sz);
	}
	for (int i = 0; i < 512; i++) {
		size_t sz = (size_t)(i * 37 % 20000) + 1;
		if (!check(p[i], sz))
			return 2;
		free(p[i]);
	}
	char *s = NULL;
	if (asprintf(&s, "child %d ok", (int)getpid()) < 0)
		return 3;
	free(s);
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	if (argc > 2)
		nthreads = atoi(argv[2]);
	if (nthreads < 2)
		nthreads = 2;
	queues = calloc((size_t)nthreads, sizeof *queues);
	pthread_t *t = calloc((size_t)nthreads + 1, sizeof *t);
	for (int i = 0; i < nthreads; i++)
		pthread_mutex_init(&queues[i].lock, NULL);
	for (long i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	pthread_create(&t[nthreads], NULL, stdio_worker, NULL);

	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		/* fork while the others allocate */
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_work());
		if (pid < 0) {
			perror("fork");
			atomic_fetch_add(&errors, 1);
		} else {
			int status;
			/* a child that deadlocked would hang here: the test's timeout catches it */
			waitpid(pid, &status, 0);
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				fprintf(stderr, "stress: child failed (status %d)\n", status);
				atomic_fetch_add(&errors, 1);
			}
			atomic_fetch_add(&forks, 1);
		}
		usleep(20000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
			(double)(now.tv_nsec - start.tv_nsec) / 1e9 >
		    seconds)
			break;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i <= nthreads; i++)
		pthread_join(t[i], NULL);
	/* what is left in the queues */
	for (int i = 0; i < nthreads; i++) {
		struct queue *q = &queues[i];
		while (q->head != q->tail) {
			void *p = q->item[q->head % QCAP];
			if (!check(p, q->size[q->head % QCAP]))
				atomic_fetch_add(&errors, 1);
			free(p);
			q->head++;
		}
	}
	printf("stress: %ld operations, %ld forks, %ld errors\n", atomic_load(&ops),
	       atomic_load(&forks), atomic_load(&errors));
	free(queues);
	free(t);
	return atomic_load(&errors) ? 1 : 0;
}
