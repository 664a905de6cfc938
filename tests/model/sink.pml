/* SPDX-License-Identifier: MIT */
/*
 * sink.pml: the return of grace-period batches to their owner (lib/tcache.c,
 * struct mv_rcu_sink in lib/tcache.h, docs/MIGRATION.md section 5).
 *
 * Processes: NB call_rcu callbacks (batch_back), one per batch handed to
 * call_rcu with the sink; the owner, which recycles (takes the stack whole)
 * some times and then goes (sink_close after its unlink); a reclaimer
 * (mv_heap_recycle_all), which takes the stack under threads_lock while the
 * cache is on the arena's list.
 *
 * What must hold, in every interleaving:
 *   - every batch's slots are freed exactly once (by the owner's recycle, a
 *     reclaimer, the close, or the worker once the sink is closed);
 *   - nothing touches the sink after it is freed, and it is freed once,
 *     after the last reference (S2);
 *   - a batch on the stack is never freed by the worker too (S3).
 * The traps: a close that leaves the stack NULL (TRAP_CLOSE_NULL: a later
 * batch is pushed where nobody takes it), a worker that does not look for
 * CLOSED (TRAP_NO_CLOSED_CHECK), and a sink freed by the owner without the
 * references of the batches in flight (TRAP_NO_REFS).
 */
#ifndef NB
#define NB 3
#endif
#define NIL 0
#define CLOSED 255

byte ready = NIL;      /* the stack's head: a batch 1..NB, NIL or CLOSED */
byte nextb[NB + 1];
byte refs = 1 + NB;    /* the cache's, and one per batch in flight */
bool sink_freed = false;
bool listed = true;    /* the cache is on the arena's list (threads_lock) */
byte freed[NB + 1];    /* times each batch's slots were freed */
byte done = 0;

inline sink_put()
{
	atomic {
		assert(!sink_freed);
		refs--;
		if
		:: refs == 0 -> sink_freed = true
		:: else -> skip
		fi
	}
}

/* free every batch of a list taken whole */
inline free_list(l)
{
	do
	:: l == NIL -> break
	:: else ->
		assert(l != CLOSED);
		freed[l]++;
		l = nextb[l]
	od
}

proctype batch_back(byte b)
{
	byte head;
	bool pushed = false;
	assert(!sink_freed);
	head = ready;
	do
#ifndef TRAP_NO_CLOSED_CHECK
	:: head == CLOSED ->
		freed[b]++; /* batch_done on the worker */
		break
#endif
	:: else ->
		nextb[b] = head;
		atomic {
			assert(!sink_freed);
			if
			:: ready == head -> ready = b; pushed = true
			:: else -> head = ready
			fi
		}
		if
		:: pushed -> break
		:: else -> skip
		fi
	od;
	sink_put();
	atomic { done++ }
}

proctype owner()
{
	byte l;
	/* recycles, any number of times (at most NB matter) */
	do
	:: atomic { assert(!sink_freed); l = ready; ready = NIL };
		free_list(l)
	:: break
	od;
	/* thread exit: off the list (under threads_lock), then close */
	listed = false;
#ifdef TRAP_CLOSE_NULL
	atomic { l = ready; ready = NIL };
#else
	atomic { assert(!sink_freed); l = ready; ready = CLOSED };
#endif
	free_list(l);
#ifdef TRAP_NO_REFS
	atomic { assert(!sink_freed); sink_freed = true };
#else
	sink_put();
#endif
	atomic { done++ }
}

proctype reclaimer()
{
	byte l = NIL;
	/* under threads_lock: only while the cache is listed (the close
	 * waits for the lock, so it is one step here) */
	atomic {
		if
		:: listed -> assert(!sink_freed); l = ready; ready = NIL
		:: else -> skip
		fi
	};
	free_list(l);
	atomic { done++ }
}

init
{
	byte i;
	atomic {
		i = 1;
		do
		:: i <= NB -> run batch_back(i); i++
		:: else -> break
		od;
		run owner();
		run reclaimer()
	};
	(done == NB + 2);
	i = 1;
	do
	:: i <= NB ->
		assert(freed[i] == 1);
		i++
	:: else -> break
	od;
	assert(sink_freed && refs == 0)
}
