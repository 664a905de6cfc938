/* SPDX-License-Identifier: MIT */
/*
 * gp.pml: mova's grace-period thread (lib/rcu.c, docs/MIGRATION.md
 * section 5): the queue of deferred batches, its rounds, mv_rcu_barrier,
 * and the fork pause.
 *
 * Processes: the grace-period thread (worker), two deferrers (mv_rcu_defer:
 * batches 1, 2 and 3), a barrier caller, and a forker (prepare, then the
 * parent's or the child's handler, nondeterministically). gp.lock is lk;
 * a condition variable is the set of its waiters: a waiter adds itself
 * under the lock and releases it in one step, and wakes once a signal has
 * emptied the set (a signal made before the wait is not seen: lost
 * wakeups are modelled). Signals are broadcasts, which only adds wakeups. Pacing (the 200 us wait) is a
 * timed wait that may end at any time. The grace period itself is one
 * step: what it waits for is handle.pml's business.
 *
 * In the child only the forker exists: every other process leaves at once
 * when `child` is set (`unless`), wherever it was (the forker holds lk
 * then, as prepare does). The child starts a worker of its own at its
 * barrier, as gp_ensure does there.
 *
 * What must hold, in every interleaving:
 *   - a batch runs at most once;
 *   - a barrier returns only once every batch queued before it began has
 *     run (in the child too: what it inherited runs there);
 *   - no deadlock: every process ends, or sleeps where it may (end labels).
 * Scenarios: NO_THREAD (pthread_create failed: a barrier runs rounds in
 * its caller); NO_FORK. Traps that must fail: TRAP_DONE_EARLY (done_n set
 * before the batches run), TRAP_NO_PAUSE (prepare does not pause the
 * worker: a round taken before the fork is lost in the child),
 * TRAP_STATE_KEPT (the child believes the parent's thread runs: its
 * barrier waits forever).
 */
#define NB 3
#define GP_OFF 0
#define GP_RUNNING 2
#define GP_FAILED 3

bool lk;
byte wake_cv, done_cv; /* the waiters of each condition variable: a bit per _pid */
byte q;                 /* the queue: a bit per batch */
byte queued, done_n;    /* batches ever queued, ever run (their count) */
byte seq[NB + 1];       /* a batch's place in the queue order: queued after it was added */
byte ran[NB + 1];
byte round_upto, round_set;
bool round_by_worker;
byte lost;              /* the child: batches of a round another thread ran in its caller */
bool in_round, sleeping, pause, paused;
byte urgent;
byte state;
bool child;
bool forked;            /* prepare is done (the fork happened) */

inline lock() { atomic { !lk -> lk = true } }
inline unlock() { lk = false }
/* wait on a condition variable: lk held before and after */
inline cvwait(cv)
{
	atomic { cv = cv | (1 << _pid); lk = false };
	atomic { !(cv & (1 << _pid)) && !lk -> lk = true }
}
/* the worker's sleep while the queue is empty: a valid end state */
inline idlewait()
{
	atomic { wake_cv = wake_cv | (1 << _pid); lk = false };
end_idle:
	atomic { !(wake_cv & (1 << _pid)) && !lk -> lk = true }
}
inline cvtimedwait()
{
	lk = false;
	atomic { !lk -> lk = true }
}

/* the whole queue, one grace period, every batch of it; lk held */
inline round_locked(byworker)
{
	set = q;
	q = 0;
	in_round = true;
	round_upto = queued;
	round_set = set;
	round_by_worker = byworker;
	unlock();
#ifdef TRAP_DONE_EARLY
	done_n = round_upto;
#endif
	/* the grace period */
	i = 1;
	do
	:: i > NB -> break
	:: i <= NB ->
		if
		:: set & (1 << i) -> atomic { ran[i]++; assert(ran[i] == 1) }
		:: else -> skip
		fi;
		i++
	od;
	lock();
	in_round = false;
	done_n = round_upto;
	done_cv = 0
}

/* every batch queued up to target has run */
inline check_ran(target)
{
	i = 1;
	do
	:: i > NB -> break
	:: i <= NB ->
		assert(seq[i] == 0 || seq[i] > target || ran[i] == 1 || (lost & (1 << i)));
		i++
	od
}

inline barrier(thread)
{
	lock();
	target = queued;
	urgent++;
	do
	:: done_n >= target -> break
	:: else ->
		if
		:: !thread && !in_round && !pause -> round_locked(false)
		:: else ->
			wake_cv = 0;
			cvwait(done_cv);
			if
			:: !thread && state == GP_RUNNING -> thread = true
			:: else -> skip
			fi
		fi
	od;
	urgent--;
	unlock();
	check_ran(target)
}

proctype worker(bool inchild)
{
	byte set, i;
	{
	lock();
	do
	:: pause ->
		paused = true;
		done_cv = 0;
		do
		:: pause -> cvwait(wake_cv)
		:: else -> break
		od;
		paused = false
	:: !pause && (q == 0 || in_round) ->
		sleeping = true;
		idlewait();
		sleeping = false
	:: !pause && q != 0 && !in_round && !urgent -> cvtimedwait()
	:: !pause && q != 0 && !in_round -> round_locked(true)
	od
	} unless { child && !inchild }
}

inline defer(b)
{
	lock();
	q = q | (1 << b);
	queued++;
	seq[b] = queued;
	if
	:: sleeping -> wake_cv = 0
	:: else -> skip
	fi;
	unlock()
}

proctype deferrer(byte first; byte last)
{
	byte b;
	{
		b = first;
		do
		:: b > last -> break
		:: b <= last -> defer(b); b++
		od
	} unless { child }
}

proctype barrier_caller()
{
	byte set, i, target;
	bool thread = (state == GP_RUNNING);
	{
		barrier(thread)
	} unless { child }
}

proctype forker()
{
	byte set, i, target;
	bool thread;
	/* prepare */
	lock();
#ifndef TRAP_NO_PAUSE
	if
	:: state == GP_RUNNING ->
		pause = true;
		wake_cv = 0;
		do
		:: !paused -> cvwait(done_cv)
		:: else -> break
		od
	:: else -> skip
	fi;
#endif
	forked = true;
	if
	:: /* the parent */
		pause = false;
		wake_cv = 0;
		unlock();
		thread = (state == GP_RUNNING);
		barrier(thread)
	:: /* the child: alone */
		child = true;
		if
		:: in_round ->
			/* the pause: never the worker's round */
			assert(!round_by_worker);
			lost = round_set;
			done_n = round_upto;
			in_round = false
		:: else -> skip
		fi;
		pause = false;
		paused = false;
		sleeping = false;
		urgent = 0;
#ifndef TRAP_STATE_KEPT
		state = GP_OFF;
#endif
		lk = false;
		/* the child's barrier: gp_ensure starts a thread of its own, or cannot */
		if
		:: state != GP_RUNNING ->
			if
			:: run worker(true); state = GP_RUNNING
			:: state = GP_FAILED
			fi
		:: else -> skip
		fi;
		thread = (state == GP_RUNNING);
		barrier(thread)
	fi
}

init {
	atomic {
#ifdef NO_THREAD
		state = GP_FAILED;
#else
		state = GP_RUNNING;
		run worker(false);
#endif
		run deferrer(1, 2);
		run deferrer(3, 3);
		run barrier_caller();
#ifndef NO_FORK
		run forker();
#endif
	}
}
