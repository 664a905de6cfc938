/* SPDX-License-Identifier: MIT */
/*
 * test_hardening.c: misuse of freed memory must not hand the attacker the
 * allocator (issue 17, item 8). Each scenario runs in a child process of
 * its own, with its stderr captured:
 *  - an 8-byte write after free, of an address the attacker chose, then
 *    mallocs: the process aborts with mova's report, and no malloc ever
 *    returns the chosen address (before: the second malloc returned it);
 *  - the same through a remote free (the slot on another thread's
 *    slab's remote list);
 *  - a 16-byte overflow into a free neighbour, then mallocs: a clean
 *    report and abort (before: SIGSEGV inside mova_malloc);
 *  - the free of a slot never handed out, then mallocs: reported and
 *    ignored, no slot handed out twice (before: the slot was pushed
 *    twice and handed out again and again);
 *  - a stale handle's memory written after mova_hfree, then hallocs: the
 *    movable slabs' links are checked as well.
 * Uses only mova.h. Each Criterion test runs in a fresh process, so the
 * first slab of a class starts at its first slot.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mova.h"

TestSuite(hardening, .timeout = 60);

/* exit codes of a child that was not stopped */
enum { CHILD_DONE = 0, CHILD_GOT_TARGET = 3, CHILD_DUPLICATE = 4, CHILD_SETUP = 5 };

struct outcome {
	int status;
	char err[4096];
};

/* run fn in a child with stderr captured into out->err */
static void run_child(void (*fn)(void), struct outcome *out)
{
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		fn();
		_exit(CHILD_DONE);
	}
	close(pfd[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(pfd[0], out->err + n, sizeof out->err - 1 - n)) > 0)
		n += (size_t)r;
	out->err[n] = 0;
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &out->status, 0), pid);
}

/* the child aborted with mova's report naming the slot it printed first
 * ("slot 0x..." on a line of its own) */
static void assert_reported_abort(const struct outcome *o)
{
	cr_assert(!(WIFEXITED(o->status) && WEXITSTATUS(o->status) == CHILD_GOT_TARGET),
		  "malloc returned the address the attacker wrote; stderr:\n%s", o->err);
	cr_assert(WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT,
		  "the child did not abort (%s %d); stderr:\n%s",
		  WIFSIGNALED(o->status) ? "signal" : "exit status",
		  WIFSIGNALED(o->status) ? WTERMSIG(o->status) : WEXITSTATUS(o->status), o->err);
	const char *slot = strstr(o->err, "slot 0x");
	cr_assert_not_null(slot, "no slot printed; stderr:\n%s", o->err);
	char addr[32];
	cr_assert_eq(sscanf(slot, "slot %31s", addr), 1);
	const char *fatal = strstr(o->err, "mova: fatal: corrupt");
	cr_assert_not_null(fatal, "no report; stderr:\n%s", o->err);
	cr_assert_not_null(strstr(fatal, addr), "the report does not name slot %s; stderr:\n%s",
			   addr, o->err);
	cr_assert_not_null(strstr(fatal, "size class"), "stderr:\n%s", o->err);
}

/* the attacker's target: where a corrupted list would send malloc */
static char target[4096] __attribute__((aligned(64)));

/* an 8-byte store the compiler cannot see through or warn about */
static void poke(void *p, uint64_t v)
{
	*(volatile uint64_t *)p = v;
}

/* mova_malloc's malloc attribute lets the compiler fold a comparison of
 * its result with a static object's address to false: hide the value */
static uintptr_t got(void *p)
{
	volatile uintptr_t v = (uintptr_t)p;
	return v;
}

static void say_slot(const void *p)
{
	fprintf(stderr, "slot %p\n", p);
	fflush(stderr);
}

/* ------------------------------------------------------------ write after free */

static void write_after_free(void)
{
	char *p = mova_malloc(64), *q = mova_malloc(64);
	if (!p || !q)
		_exit(CHILD_SETUP);
	mova_free(p);
	say_slot(p);
	poke(p, (uint64_t)(uintptr_t)target); /* the freed slot's link */
	for (int i = 0; i < 8; i++)
		if (got(mova_malloc(64)) == (uintptr_t)target)
			_exit(CHILD_GOT_TARGET);
}

Test(hardening, write_after_free_aborts_with_a_report)
{
	struct outcome o;
	run_child(write_after_free, &o);
	assert_reported_abort(&o);
}

/* the slot freed by another thread: its link is on the remote path
 * (the freeing thread's buffered chain, then the slab's atomic list) when
 * the attacker writes it */
static char *remote_slots[64];

static void *free_remote(void *arg)
{
	(void)arg;
	for (int i = 0; i < 64; i++)
		mova_free(remote_slots[i]);
	/* the frees may sit in this thread's buffer: flush them */
	mova_thread_flush(mova_default_arena());
	return NULL;
}

static void write_after_free_by_another_thread(void)
{
	for (int i = 0; i < 64; i++)
		remote_slots[i] = mova_malloc(48);
	pthread_t t;
	if (pthread_create(&t, NULL, free_remote, NULL) || pthread_join(t, NULL))
		_exit(CHILD_SETUP);
	say_slot(remote_slots[10]);
	poke(remote_slots[10], (uint64_t)(uintptr_t)target);
	/* the owner takes the remote frees once its free list runs out */
	for (int i = 0; i < 4096; i++)
		if (got(mova_malloc(48)) == (uintptr_t)target)
			_exit(CHILD_GOT_TARGET);
}

Test(hardening, write_after_remote_free_aborts_with_a_report)
{
	struct outcome o;
	run_child(write_after_free_by_another_thread, &o);
	assert_reported_abort(&o);
}

/* ------------------------------------------------------------ overflow */

static void overflow_into_free_neighbour(void)
{
	char *a = mova_malloc(64), *b = mova_malloc(64);
	if (!a || b != a + 64)
		_exit(CHILD_SETUP); /* a fresh slab hands out slots in order */
	mova_free(b);
	say_slot(b);
	/* 16 bytes past a's end: b's link and its double-free key (volatile
	 * stores: the compiler would drop a memset nobody reads) */
	for (int i = 0; i < 64 + 16; i++)
		((volatile char *)a)[i] = 'A';
	for (int i = 0; i < 8; i++)
		if (!mova_malloc(64))
			_exit(CHILD_SETUP);
}

Test(hardening, overflow_into_free_neighbour_aborts_with_a_report)
{
	struct outcome o;
	run_child(overflow_into_free_neighbour, &o);
	assert_reported_abort(&o);
}

/* ------------------------------------------------------------ bad frees */

#define NALLOC 300

static void free_never_allocated(void)
{
	char *a = mova_malloc(48);
	if (!a)
		_exit(CHILD_SETUP);
	/* slot 5 of a fresh slab: on the free list, never handed out */
	char *never = a + 5 * 48;
	say_slot(never);
	mova_free(never);
	/* and one past the slots threaded so far */
	mova_free(a + 200 * 48);
	void *got[NALLOC];
	for (int i = 0; i < NALLOC; i++) {
		got[i] = mova_malloc(48);
		if (!got[i])
			_exit(CHILD_SETUP);
		memset(got[i], i & 0xff, 48);
		for (int j = 0; j < i; j++)
			if (got[j] == got[i])
				_exit(CHILD_DUPLICATE);
	}
	for (int i = 0; i < NALLOC; i++)
		for (int k = 0; k < 48; k++)
			if (((unsigned char *)got[i])[k] != (i & 0xff))
				_exit(CHILD_DUPLICATE);
	for (int i = 0; i < NALLOC; i++)
		mova_free(got[i]);
	mova_free(a);
}

Test(hardening, free_of_a_slot_never_handed_out_is_reported_and_ignored)
{
	struct outcome o;
	run_child(free_never_allocated, &o);
	cr_assert(WIFEXITED(o.status) && WEXITSTATUS(o.status) == CHILD_DONE,
		  "%s %d (%d: a slot was handed out twice); stderr:\n%s",
		  WIFSIGNALED(o.status) ? "killed by signal" : "exit status",
		  WIFSIGNALED(o.status) ? WTERMSIG(o.status) : WEXITSTATUS(o.status),
		  CHILD_DUPLICATE, o.err);
	char addr[32];
	const char *slot = strstr(o.err, "slot 0x");
	cr_assert_not_null(slot);
	cr_assert_eq(sscanf(slot, "slot %31s", addr), 1);
	const char *rep = strstr(o.err, "mova: free:");
	cr_assert_not_null(rep, "not reported; stderr:\n%s", o.err);
	cr_assert_not_null(strstr(rep, addr), "the report does not name %s; stderr:\n%s", addr,
			   o.err);
	cr_assert_not_null(strstr(rep, "left alone"), "stderr:\n%s", o.err);
}

/* ------------------------------------------------------------ handles */

static void write_after_hfree(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)1 << 30;
	cfg.kcompactd = 0;
	mova_arena *ar = mova_arena_create(&cfg);
	if (!ar)
		_exit(CHILD_SETUP);
	mova_handle h = mova_halloc(ar, 64), h2 = mova_halloc(ar, 64);
	char *p = mova_pin(ar, h);
	if (!h2 || !p)
		_exit(CHILD_SETUP);
	mova_unpin(ar, h);
	if (mova_hfree(ar, h))
		_exit(CHILD_SETUP);
	say_slot(p);
	poke(p, (uint64_t)(uintptr_t)target); /* through a stale pointer */
	for (int i = 0; i < 8; i++) {
		mova_handle x = mova_halloc(ar, 64);
		if (got(mova_pin(ar, x)) == (uintptr_t)target)
			_exit(CHILD_GOT_TARGET);
		mova_unpin(ar, x);
	}
}

Test(hardening, write_after_hfree_aborts_with_a_report)
{
	struct outcome o;
	run_child(write_after_hfree, &o);
	assert_reported_abort(&o);
}
