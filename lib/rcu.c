/* SPDX-License-Identifier: MIT */
/*
 * rcu.c: the only file that includes liburcu (see rcu.h).
 *
 * Flavour: bulletproof (urcu-bp). A preloaded allocator cannot ask every
 * thread of an arbitrary program to register, and memb/mb/signal need
 * that; qsbr needs quiescent-state announcements no program makes. bp
 * registers a thread itself on its first read lock, from an mmap'd
 * registry (no malloc, so no recursion into mova), unregisters it at
 * thread exit, and is the only flavour with fork hooks for its registry.
 * Its read side costs a little more than memb's (about 2.7 ns against 2.2
 * inlined); we inline it (_LGPL_SOURCE: see the README's licence section).
 *
 * Deferred batches run on mova's own grace-period thread (below), not on
 * liburcu's call_rcu worker. The thread is created (it allocates) when
 * the first thread enters a read section, from mova_read_lock, where no
 * mova lock is held; deferral only ever happens after that.
 */
#define _GNU_SOURCE /* pthread_cond_clockwait */
#define _LGPL_SOURCE
#include <urcu-bp.h>

/* liburcu-bp's per-thread reader pointer, declared again with the
 * initial-exec model: from a shared library the default model reaches
 * another library's TLS through __tls_get_addr, which made a read section
 * cost 9 ns instead of 1. liburcu-bp is a load-time dependency of libmova,
 * so its TLS is in the static block. */
extern _Thread_local struct urcu_bp_reader *urcu_bp_reader
    __attribute__((tls_model("initial-exec")));

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "os.h"
#include "rcu.h"

_Atomic int mv_rcu_readers_flag;

/*
 * ThreadSanitizer does not see liburcu's synchronisation (membarrier,
 * futexes, an uninstrumented library), so in TSan builds only, we state
 * the two happens-before edges RCU provides: a reader's accesses happen
 * before the end of every grace period that waits for its section (the
 * release at unlock, taken before liburcu's unlock so the grace period
 * waits for it, pairs with the acquire after synchronize and in every
 * callback), and what a thread wrote before call_rcu happens before the
 * callback. Release builds carry none of this.
 */
#if defined(__SANITIZE_THREAD__)
#define MV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MV_TSAN 1
#endif
#endif
#ifdef MV_TSAN
static _Atomic unsigned long tsan_gp;
#define TSAN_RELEASE() atomic_fetch_add_explicit(&tsan_gp, 1, memory_order_release)
#define TSAN_ACQUIRE() (void)atomic_load_explicit(&tsan_gp, memory_order_acquire)
#else
#define TSAN_RELEASE() ((void)0)
#define TSAN_ACQUIRE() ((void)0)
#endif
static bool gp_ensure(void);
static __thread int tls_reader __attribute__((tls_model("initial-exec")));

static MV_NOINLINE void first_read_lock(void)
{
	tls_reader = 1;
	if (!atomic_load(&mv_rcu_readers_flag)) {
		(void)gp_ensure();
		atomic_store(&mv_rcu_readers_flag, 1);
	}
	/* order the flag before this thread's first dereference (see handle.c) */
	atomic_thread_fence(memory_order_seq_cst);
}

bool mv_rcu_in_reader(void)
{
	return tls_reader && urcu_bp_read_ongoing();
}

void mv_rcu_read_lock(void)
{
	if (unlikely(!tls_reader))
		first_read_lock();
	urcu_bp_read_lock();
}

void mv_rcu_read_unlock(void)
{
	TSAN_RELEASE();
	urcu_bp_read_unlock();
}

_Atomic size_t mv_rcu_inflight;

/* ------------------------------------------------------------ the grace-period thread */
/*
 * Deferred batches run on mova's own grace-period thread, not on liburcu's
 * call_rcu worker: that worker sleeps 10 ms after every round
 * (poll(NULL, 0, 10) in urcu-call-rcu-impl.h, fixed in 0.13), so 10 ms of
 * frees were always in flight, and a program that frees and allocates at
 * random after a read section walked far more memory than it needed,
 * cold.
 *
 * One thread, started by the first read section (where no mova lock is
 * held: pthread_create allocates). A round takes the whole queue, waits
 * for one grace period, and runs the batches in the order they came.
 * Rounds are paced at most one every 200 us (MV_GP_INTERVAL_NS), so a
 * thread that frees fast gets one round for many batches, not a
 * membarrier for each; a barrier waiter lifts the pacing. The thread
 * sleeps on a condition variable while the queue is empty.
 *
 * Queue and counters are under gp.lock, a leaf: mv_rcu_defer is never
 * called with a mova lock held, and no other lock is taken while holding
 * it. queued and done_n count batches ever queued and ever run; a barrier
 * waits for done_n to reach the queued it read.
 *
 * When the thread cannot be created (thread limit, ulimit), batches wait
 * in the queue: a barrier runs them in the caller, and creation is tried
 * again after MV_GP_RETRY_NS. Rounds never overlap (in_round).
 *
 * fork: prepare pauses the thread between rounds (its callbacks take bin
 * locks, which later prepare steps take) and holds gp.lock across the
 * fork; the child has no thread: it starts again at the next defer or
 * barrier, and the queue the child inherits runs then.
 */
#define MV_GP_INTERVAL_NS 200000u /* a round every 200 us at most */
#define MV_GP_RETRY_NS 100000000u /* a failed pthread_create tried again after 100 ms */

enum { GP_OFF, GP_STARTING, GP_RUNNING, GP_FAILED };

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the thread waits here: work, a barrier, a pause */
	pthread_cond_t done; /* barrier waiters and fork's prepare wait here */
	struct mv_rcu_batch *head, **tail;
	uint64_t queued, done_n; /* batches ever queued, ever run */
	uint64_t round_upto;     /* in a round: the queued count it runs to */
	size_t round_n;          /* in a round: its batches */
	unsigned urgent;         /* barrier waiters: no pacing */
	bool sleeping;           /* the thread waits for work (not for pacing) */
	bool in_round;
	bool pause, paused;
	_Atomic int state;
	_Atomic uint64_t retry_ns;
} gp = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .tail = &gp.head,
};

static uint64_t gp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_batches(struct mv_rcu_batch *b)
{
	while (b) {
		/* b->fn may hand b to its owner, who reuses it at once */
		struct mv_rcu_batch *next = b->gp_next;
		b->fn(b);
		atomic_fetch_sub_explicit(&mv_rcu_inflight, 1, memory_order_release);
		b = next;
	}
	TSAN_RELEASE();
}

/* One round, gp.lock held (dropped while it waits and runs): the whole
 * queue, one grace period, every batch of it. */
static void round_locked(void)
{
	struct mv_rcu_batch *list = gp.head;
	gp.head = NULL;
	gp.tail = &gp.head;
	gp.in_round = true;
	gp.round_upto = gp.queued;
	gp.round_n = 0;
	for (struct mv_rcu_batch *b = list; b; b = b->gp_next)
		gp.round_n++;
	pthread_mutex_unlock(&gp.lock);
	urcu_bp_synchronize_rcu();
	TSAN_ACQUIRE();
	run_batches(list);
	pthread_mutex_lock(&gp.lock);
	gp.in_round = false;
	gp.done_n = gp.round_upto;
	pthread_cond_broadcast(&gp.done);
}

static void *gp_thread(void *arg)
{
	(void)arg;
	uint64_t last = 0;
	pthread_mutex_lock(&gp.lock);
	for (;;) {
		if (gp.pause) {
			gp.paused = true;
			pthread_cond_broadcast(&gp.done);
			while (gp.pause)
				pthread_cond_wait(&gp.wake, &gp.lock);
			gp.paused = false;
			continue;
		}
		if (!gp.head || gp.in_round) {
			gp.sleeping = true;
			pthread_cond_wait(&gp.wake, &gp.lock);
			gp.sleeping = false;
			continue;
		}
		uint64_t now = gp_now_ns();
		if (!gp.urgent && now - last < MV_GP_INTERVAL_NS) {
			uint64_t t = last + MV_GP_INTERVAL_NS;
			struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
			pthread_cond_clockwait(&gp.wake, &gp.lock, CLOCK_MONOTONIC, &ts);
			continue;
		}
		last = now;
		round_locked();
	}
	return NULL;
}

/* Start the thread unless it runs; false when it does not run now. Call
 * without gp.lock or any mova lock held (pthread_create allocates). */
static bool gp_ensure(void)
{
	int st = atomic_load_explicit(&gp.state, memory_order_acquire);
	if (likely(st == GP_RUNNING))
		return true;
	if (st == GP_STARTING) /* maybe our own pthread_create's malloc */
		return false;
	if (st == GP_FAILED && gp_now_ns() < atomic_load(&gp.retry_ns))
		return false;
	if (!atomic_compare_exchange_strong(&gp.state, &st, GP_STARTING))
		return false;
	int saved = errno;
	pthread_t t; /* no signal meant for the program (os.c) */
	int err = mv_os_thread_create(&t, gp_thread, NULL);
	if (err) {
		static _Atomic int warned;
		mv_warn_once(&warned,
			     "cannot start the grace-period thread (%s): what is freed after a "
			     "read section waits for compaction, reclaim or a later start "
			     "(tried again every 100 ms)",
			     strerror(err));
		atomic_store(&gp.retry_ns, gp_now_ns() + MV_GP_RETRY_NS);
		atomic_store_explicit(&gp.state, GP_FAILED, memory_order_release);
		errno = saved;
		return false;
	}
	pthread_detach(t);
	errno = saved;
	atomic_store_explicit(&gp.state, GP_RUNNING, memory_order_release);
	return true;
}

void mv_rcu_defer(struct mv_rcu_batch *b)
{
	TSAN_RELEASE();
	atomic_fetch_add_explicit(&mv_rcu_inflight, 1, memory_order_relaxed);
	b->gp_next = NULL;
	pthread_mutex_lock(&gp.lock);
	*gp.tail = b;
	gp.tail = &b->gp_next;
	gp.queued++;
	if (gp.sleeping)
		pthread_cond_signal(&gp.wake);
	pthread_mutex_unlock(&gp.lock);
	if (unlikely(atomic_load_explicit(&gp.state, memory_order_relaxed) != GP_RUNNING))
		(void)gp_ensure();
}

void mv_rcu_barrier(void)
{
	if (!atomic_load(&mv_rcu_readers_flag))
		return;
	bool thread = gp_ensure();
	pthread_mutex_lock(&gp.lock);
	uint64_t target = gp.queued;
	gp.urgent++;
	while (gp.done_n < target) {
		if (!thread && !gp.in_round && !gp.pause) {
			/* nobody else will run them: here, in the caller */
			round_locked();
			continue;
		}
		pthread_cond_signal(&gp.wake);
		pthread_cond_wait(&gp.done, &gp.lock);
		if (!thread && atomic_load(&gp.state) == GP_RUNNING)
			thread = true;
	}
	gp.urgent--;
	pthread_mutex_unlock(&gp.lock);
	TSAN_ACQUIRE();
}

void mv_rcu_synchronize(void)
{
	urcu_bp_synchronize_rcu();
	TSAN_ACQUIRE();
}

void mv_rcu_fork_prepare(void)
{
	pthread_mutex_lock(&gp.lock);
	if (atomic_load(&gp.state) == GP_RUNNING) {
		gp.pause = true;
		pthread_cond_signal(&gp.wake);
		while (!gp.paused)
			pthread_cond_wait(&gp.done, &gp.lock);
	}
	/* gp.lock stays held across the fork: the queue is whole in the child */
	urcu_bp_before_fork();
}

void mv_rcu_fork_parent(void)
{
	urcu_bp_after_fork_parent();
	gp.pause = false;
	pthread_cond_broadcast(&gp.wake);
	pthread_mutex_unlock(&gp.lock);
}

void mv_rcu_fork_child(void)
{
	urcu_bp_after_fork_child();
	/* no thread here but this one: not ours, not a barrier's waiter, not
	 * a caller that was running a round (its batches went with it) */
	if (gp.in_round) {
		gp.done_n = gp.round_upto;
		atomic_fetch_sub(&mv_rcu_inflight, gp.round_n);
		gp.in_round = false;
	}
	gp.pause = gp.paused = gp.sleeping = false;
	gp.urgent = 0;
	atomic_store(&gp.state, GP_OFF);
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	gp.wake = c;
	gp.done = c;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	gp.lock = m;
}
