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
 * call_rcu's worker thread is created (it allocates) when the first
 * thread enters a read section, from mova_read_lock, where no mova lock is
 * held; deferral only ever happens after that, so call_rcu never
 * allocates on a path holding a mova lock.
 */
#define _LGPL_SOURCE
#include <urcu-bp.h>

/* liburcu-bp's per-thread reader pointer, declared again with the
 * initial-exec model: from a shared library the default model reaches
 * another library's TLS through __tls_get_addr, which made a read section
 * cost 9 ns instead of 1. liburcu-bp is a load-time dependency of libmova,
 * so its TLS is in the static block. */
extern _Thread_local struct urcu_bp_reader *urcu_bp_reader
    __attribute__((tls_model("initial-exec")));

#include "diag.h"
#include "rcu.h"

_Static_assert(sizeof(struct rcu_head) <= sizeof(struct mv_rcu_head), "mv_rcu_head too small");

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
static __thread int tls_reader __attribute__((tls_model("initial-exec")));

static MV_NOINLINE void first_read_lock(void)
{
	tls_reader = 1;
	if (!atomic_load(&mv_rcu_readers_flag)) {
		(void)urcu_bp_get_default_call_rcu_data();
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

static void batch_cb(struct rcu_head *head)
{
	TSAN_ACQUIRE();
	struct mv_rcu_batch *b =
	    (struct mv_rcu_batch *)((char *)head - offsetof(struct mv_rcu_batch, head));
	b->fn(b);
	atomic_fetch_sub_explicit(&mv_rcu_inflight, 1, memory_order_release);
	TSAN_RELEASE();
}

void mv_rcu_defer(struct mv_rcu_batch *b)
{
	TSAN_RELEASE();
	atomic_fetch_add_explicit(&mv_rcu_inflight, 1, memory_order_relaxed);
	urcu_bp_call_rcu((struct rcu_head *)(void *)&b->head, batch_cb);
}

void mv_rcu_barrier(void)
{
	if (atomic_load(&mv_rcu_readers_flag)) {
		urcu_bp_barrier();
		TSAN_ACQUIRE();
	}
}

void mv_rcu_synchronize(void)
{
	urcu_bp_synchronize_rcu();
	TSAN_ACQUIRE();
}

void mv_rcu_fork_prepare(void)
{
	urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
}

void mv_rcu_fork_parent(void)
{
	urcu_bp_after_fork_parent();
	urcu_bp_call_rcu_after_fork_parent();
}

void mv_rcu_fork_child(void)
{
	urcu_bp_after_fork_child();
	urcu_bp_call_rcu_after_fork_child();
}
