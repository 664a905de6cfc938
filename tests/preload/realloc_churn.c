/* SPDX-License-Identifier: MIT */
/*
 * realloc_churn [THREADS [OPS [MAX_FAULTS_PER_OP]]]: THREADS threads (4)
 * each reallocate 8 buffers OPS times (20000) to sizes from 1 KiB to 3 MiB,
 * drawn log-uniform, and write one byte in every page of the new size. The
 * malloc family only: run it under any allocator (LD_PRELOAD), e.g.
 * /work/shared/tools/vs-peers --add mova=build/lib/libmova-preload.so --
 * build/tests/preload/realloc_churn.
 *
 * Prints the page faults (getrusage ru_minflt) and CPU time of the run, per
 * operation. With MAX_FAULTS_PER_OP, exits 1 when the faults per operation
 * exceed it: a test of behaviour, not of time (issue 17 item 12: mova
 * returned freed megabytes to the OS at once and faulted them back in, 12x
 * glibc's faults and 5-8x its CPU).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static unsigned ops_per_thread = 20000;

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *worker(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uintptr_t)arg + 1;
	enum { K = 8 };
	char *buf[K] = {0};
	for (unsigned i = 0; i < ops_per_thread; i++) {
		unsigned k = (unsigned)(next(&seed) % K);
		/* 1 KiB << [0, 11.58): 1 KiB .. 3 MiB, log-uniform */
		double e = (double)(next(&seed) % 11580) / 1000.0;
		size_t size = (size_t)(1024.0 * __builtin_exp2(e));
		char *p = realloc(buf[k], size);
		if (!p) {
			fprintf(stderr, "realloc_churn: realloc(%zu) failed\n", size);
			exit(2);
		}
		for (size_t off = 0; off < size; off += 4096)
			p[off] = (char)i;
		p[size - 1] = 1;
		buf[k] = p;
	}
	for (unsigned k = 0; k < K; k++)
		free(buf[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	if (argc > 2)
		ops_per_thread = (unsigned)atoi(argv[2]);
	double max_fpo = argc > 3 ? atof(argv[3]) : 0;
	if (threads < 1 || threads > 64 || !ops_per_thread)
		return 2;
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	pthread_t t[64];
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	getrusage(RUSAGE_SELF, &r1);
	double ops = (double)threads * ops_per_thread;
	long faults = r1.ru_minflt - r0.ru_minflt;
	double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
		     (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
		     (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		     (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	printf("realloc_churn: %u threads, %.0f reallocs: %ld page faults (%.2f per op), CPU "
	       "%.3f s (%.2f us per op)\n",
	       threads, ops, faults, (double)faults / ops, cpu, cpu * 1e6 / ops);
	if (max_fpo > 0 && (double)faults / ops > max_fpo) {
		fprintf(stderr, "realloc_churn: %.2f page faults per op, budget %.2f\n",
			(double)faults / ops, max_fpo);
		return 1;
	}
	return 0;
}
