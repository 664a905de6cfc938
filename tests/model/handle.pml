/* SPDX-License-Identifier: MIT */
/*
 * handle.pml: a Promela model of mova's handle protocol (lib/handle.c,
 * lib/migrate.c, lib/compaction.c flush_old, lib/tcache.c deferral, lib/rcu.c
 * readers_ever). docs/MIGRATION.md explains every step; run.sh checks it.
 *
 * The world: two handle-table entries and four memory slots they share.
 * Object A lives in entry 0, slot 0 at the start. Processes:
 *   writer     pins A (sometimes inside a read section), checks that its
 *              previous write is still there, writes a new value, unpins
 *   freer      maybe hfrees A (retrying on EBUSY, waiting on MIGRATING)
 *   migrator   migrations of whatever slot is in use: freeze CAS, copy,
 *              publish (read-modify-write), old slot back after a grace period
 *   reader     RCU read sections: deref A, read its memory
 *   allocator  halloc of object B, on a fresh entry or on A's recycled one,
 *              in the lowest free slot (so freed slots are reused as early as
 *              they can be); then pins B and writes it
 *
 * An entry word is the fields e_live, e_gen, e_pins, e_mig, e_loc of one
 * index; every atomic { } on them is one load or one CAS of the 64-bit
 * word in the C code. A CAS loop that reloads on failure is modelled as one
 * atomic test-and-update of the whole word, which has exactly the same
 * outcomes (a failed CAS changes nothing and the loop retries). Memory is
 * sequentially consistent here; the fences that make the C code behave so
 * are argued in docs/MIGRATION.md.
 *
 * Checks (assertions, and spin's invalid end states for deadlocks):
 *   I1  a pinned object is never moved: e_loc unchanged from pin to unpin
 *   I2  no lost write: each pin finds the value written under the previous
 *       pin, and at the end a live object's slot holds its last write
 *   I3  a reader or pinner only ever sees its own object's bytes (s_obj)
 *   I4  a slot is not reclaimed while a reader that found it is inside its
 *       section (r_hold), never freed twice, never leaked
 *   I5  hfree and migration never both proceed (the slot asserts); the
 *       size the descriptors record stays the object's (hsize)
 *   I6  pins never negative; a pinner's unpin never fails
 *   I7  no deadlock: every wait ends (with FUTEX the futex is modelled
 *       WITHOUT its timeout, so a lost wake-up shows as an invalid end state)
 *
 * Scenarios (the whole product of five processes is too big to search in a
 * minute; run.sh checks these, each exhaustively): NO_WRITER, NO_FREER,
 * NO_MIGRATOR, NO_READER, NO_ALLOCATOR leave a process out; NWRITES, NREADS,
 * NMIGR bound the loops; FUTEX models migrate_wait's futex (otherwise a wait
 * is "block until MIGRATING is clear"); TIGHT takes two slots away so that a
 * migration can find no room.
 *
 * Variants (-D):
 *   TRAP_PLAIN_STORE       trap 1: publish stores the frozen word (pins 0)
 *                          instead of clearing MIGRATING with an RMW; pin is
 *                          DESIGN.md's "one atomic add" (PIN_FADD), so an
 *                          increment made while MIGRATING is wiped out
 *   TRAP_READER_SPLIT      trap 2: the reader checks the generation, then
 *                          loads the address separately, no re-check, while
 *                          entries are reused at once
 *   TRAP_FREE_IGNORES_MIG  trap 3: hfree's CAS does not wait for MIGRATING,
 *                          so hfree and migration both proceed
 *   TRAP_NO_GRACE          old slots are reused without a grace period
 *   TRAP_FLAG_LATE         the reader announces itself (readers_ever) after
 *                          its first deref instead of before
 *   TRAP_LOST_WAKEUP       a waiter reads migrate_seq after checking the
 *                          entry instead of before (implies FUTEX)
 *   TRAP_SYNC_FROZEN       the migrator waits for a grace period while the
 *                          object is frozen (before publish)
 *   PIN_FADD               pin = fetch_add, back off on MIGRATING (passes with
 *                          an RMW publish and an RMW halloc store)
 *   HALLOC_PLAIN           with PIN_FADD: halloc's plain store of the entry
 *                          (fails: the same lost-increment trap, via halloc)
 *   PLAIN_PUBLISH          the plain-store publish with the code's CAS pin
 *                          (passes: no increment can happen under MIGRATING)
 *   RECHECK                split reader that re-checks the generation (passes)
 *   ENTRY_GRACE            split reader, entries reused only after a grace
 *                          period and hfree keeps the address (passes)
 *   LARGE_OBJECTS          the object is a large run: compaction records its
 *                          address but does not isolate it, so its pages can
 *                          be freed and reused before the freeze; the size
 *                          mv_object_entry read before the freeze is copied
 *                          (fails today: see docs/MIGRATION.md, open issues)
 *   SIZE_AFTER_FREEZE      with LARGE_OBJECTS: the size is read again once
 *                          frozen (passes: the fix)
 *   PROBE=n                reachability probe n (see PROBE_AT below) fails
 *                          on purpose, to show the scenario is not vacuous
 */

#ifdef TRAP_PLAIN_STORE
#define PIN_FADD
#define PLAIN_PUBLISH
#endif
#ifdef TRAP_LOST_WAKEUP
#define FUTEX
#endif
#ifdef RECHECK
#define SPLIT_READER
#endif
#ifdef ENTRY_GRACE
#define SPLIT_READER
#endif
#ifdef TRAP_READER_SPLIT
#define SPLIT_READER
#endif

#ifndef NWRITES
#define NWRITES 2
#endif
#ifndef NREADS
#define NREADS 2
#endif
#ifndef NMIGR
#define NMIGR 2
#endif

#ifdef PROBE
/* reachability probes: each names a situation the checks must cover */
#define PROBE_AT(n, cond)                  \
	if                                 \
	:: (PROBE == (n)) && (cond) ->     \
		probe = (n);               \
		assert(probe == 0)         \
	:: else -> skip                    \
	fi
byte probe;
#else
#define PROBE_AT(n, cond) skip
#endif
/* 1  hfree waited for a migration and freed the new copy
 * 2  a reader reads an old copy (pending reclaim) inside its section
 * 3  halloc reuses A's entry for B
 * 4  B is placed in A's first slot
 * 5  a pin finds A moved, holding the value of the previous pin
 * 6  a pin waits for a migration
 * 7  a migration finds no room and thaws the object
 * 8  B is migrated
 * 9  a pin taken inside a read section waits for a migration
 * 10 a waiter sleeps on the futex and is woken
 * 11 hfree finds A pinned (EBUSY)
 * 12 a freeze fails because A is pinned (-EAGAIN)
 * 13 a reclaim waits for a reader's section to end
 * 14 a freed slot is reclaimed at once (no reader yet: readers_ever)
 * 15 a slot freed into an isolated slab waits for the putback */

#define NSLOT 4
#define NENT 2
#define NONE 255
#define NRS 2 /* read-side section counters: 0 the reader, 1 the writer */

#define OBJ_A 1
#define OBJ_B 2
#define GEN_A 1
#define SIZE_A 1 /* A and B differ in size */
#define SIZE_B 2

/* results */
#define R_OK 0
#define R_WAIT 1
#define R_EINVAL 2
#define R_EBUSY 3

/* USED: holds an object and may be isolated by compaction; ALLOC: being
 * allocated from a thread's own slab, which compaction never takes (a large
 * run is seen by the scanner at once: LARGE_OBJECTS); RAW: unmovable, never
 * taken (TIGHT); XLIST: freed into an isolated slab, reusable once
 * compaction puts the slab back (putback_slab) */
mtype = { FREE, USED, ALLOC, PENDING, RAW, XLIST };

/* the entry words */
bit e_live[NENT];
byte e_gen[NENT];
short e_pins[NENT]; /* signed, so a count driven below zero is seen */
bit e_mig[NENT];
byte e_loc[NENT];
bit e_avail[NENT]; /* on a free list an allocator takes from (the tcache) */

/* the slots: state, the object's bytes (its identity and a value), the
 * back-reference */
mtype s_state[NSLOT];
byte s_obj[NSLOT];
byte s_val[NSLOT];
byte s_ref[NSLOT];
byte s_size[NSLOT]; /* the size the descriptor records (backref, large run) */
byte iso = NONE;    /* the slot whose slab the migrator has isolated */

bit rflag;      /* mv_rcu_readers_flag */
byte rsec[NRS]; /* odd: inside a read section */
byte mseq;      /* arena->migrate_seq */
byte waiters;   /* arena->migrate_waiters */

/* ghosts */
byte r_hold = NONE; /* the slot the reader's deref returned, while in its section */
byte lastA, lastB;  /* the last value written under a pin */
byte b_ent = NONE;
byte b_gen;

#define MATCH(e, g) (e_live[e] == 1 && e_gen[e] == (g))

/* take the lowest free slot, or NONE; it becomes st */
inline take_free(s, st)
{
	atomic {
		if
		:: s_state[0] == FREE -> s = 0
		:: else ->
			if
			:: s_state[1] == FREE -> s = 1
			:: else ->
				if
				:: s_state[2] == FREE -> s = 2
				:: else ->
					if
					:: s_state[3] == FREE -> s = 3
					:: else -> s = NONE
					fi
				fi
			fi
		fi;
		if
		:: s != NONE -> s_state[s] = st
		:: else -> skip
		fi
	}
}

/* synchronize_rcu: wait for every read section in progress to end */
inline synchronize(i, snap)
{
	i = 0;
	do
	:: i < NRS ->
		snap = rsec[i];
		if
		:: (snap % 2) == 1 -> (rsec[i] != snap); PROBE_AT(13, true)
		:: else -> skip
		fi;
		i++
	:: else -> i = 0; snap = 0; break
	od
}

/* the slot goes back for reuse: after a grace period once readers exist
 * (flush_old, mv_tcache_flush_pending, the hfree fast path) */
inline reclaim(s, i, snap)
{
#ifndef TRAP_NO_GRACE
	if
	:: rflag -> synchronize(i, snap)
	:: else -> PROBE_AT(14, true)
	fi;
#endif
	atomic {
		assert(s_state[s] == PENDING);
		assert(r_hold != s); /* I4: no reader inside its section holds it */
		if
		:: s == iso -> s_state[s] = XLIST; PROBE_AT(15, true)
		:: else -> s_state[s] = FREE
		fi
	}
}

/* migrate_wait: bounded spinning (one look here), then the futex on
 * migrate_seq. The timeout of the real futex_wait is left out on purpose. */
inline migrate_wait(e, seq)
{
#ifndef FUTEX
	(e_mig[e] == 0)
#else
	do
	:: e_mig[e] == 0 -> break
	:: else ->
#ifndef TRAP_LOST_WAKEUP
		seq = mseq;
		waiters++;
		if
		:: e_mig[e] == 0 -> waiters--; break
		:: else -> skip
		fi;
#else
		waiters++;
		if
		:: e_mig[e] == 0 -> waiters--; break
		:: else -> seq = mseq
		fi;
#endif
		(mseq != seq); /* futex_wait(&migrate_seq, seq) */
		PROBE_AT(10, true);
		waiters--
	od;
	seq = 0
#endif
}

/* mova_pin; r = R_OK (p = the address) or R_EINVAL; waited is set when it
 * had to wait for a migration */
inline pin(e, g, p, r, seq, wl, wg, wm, waited)
{
#ifndef PIN_FADD
	do
	:: atomic {
		if
		:: !MATCH(e, g) -> r = R_EINVAL
		:: else ->
			if
			:: e_mig[e] -> r = R_WAIT
			:: else -> e_pins[e]++; p = e_loc[e]; r = R_OK
			fi
		fi
	   };
	   if
	   :: r == R_WAIT -> migrate_wait(e, seq); waited = 1; PROBE_AT(6, true)
	   :: else -> break
	   fi
	od
#else
	do
	:: atomic { e_pins[e]++; wl = e_live[e]; wg = e_gen[e]; wm = e_mig[e]; p = e_loc[e] };
	   if
	   :: wl == 0 || wg != g ->
		atomic { e_pins[e]--; assert(e_pins[e] >= 0) };
		r = R_EINVAL;
		break
	   :: else ->
		if
		:: wm ->
			atomic { e_pins[e]--; assert(e_pins[e] >= 0) };
			migrate_wait(e, seq);
			waited = 1
		:: else -> r = R_OK; break
		fi
	   fi
	od;
	wl = 0;
	wg = 0;
	wm = 0
#endif
}

/* mova_unpin by the holder of the pin taken at p */
inline unpin(e, g, p)
{
#ifndef PIN_FADD
	atomic {
		assert(MATCH(e, g) && e_pins[e] > 0); /* never EINVAL for a holder */
		assert(e_loc[e] == p);                /* I1 */
		e_pins[e]--
	}
#else
	atomic {
		assert(e_loc[e] == p); /* I1 */
		e_pins[e]--;
		assert(e_pins[e] >= 0) /* I6 */
	}
#endif
}

/* publish: loc := newloc and MIGRATING cleared, every other bit kept */
inline publish(e, newloc, g)
{
#ifdef PLAIN_PUBLISH
	/* the trap: a plain store of the word frozen by the migrator */
	atomic { e_live[e] = 1; e_gen[e] = g; e_pins[e] = 0; e_mig[e] = 0; e_loc[e] = newloc }
#else
	atomic { e_loc[e] = newloc; e_mig[e] = 0 }
#endif
}

proctype writer()
{
	byte p, r, seq, k, wg;
	bit wl, wm, in_rs, waited;
	k = 0;
	do
	:: k < NWRITES ->
		k++;
		/* pins may be taken inside a read section */
		if
		:: in_rs = 0
		:: in_rs = 1; rflag = 1; rsec[1]++
		fi;
		waited = 0;
		pin(0, GEN_A, p, r, seq, wl, wg, wm, waited);
		PROBE_AT(9, waited && in_rs);
		if
		:: r == R_OK ->
			PROBE_AT(5, p != 0 && lastA != 0);
			atomic {
				assert(s_obj[p] == OBJ_A);   /* I3 */
				assert(s_val[p] == lastA);   /* I2: the previous write survived */
				assert(s_size[p] == SIZE_A); /* hsize */
				s_val[p] = k;
				lastA = k
			};
			unpin(0, GEN_A, p);
			p = 0
		:: else -> skip
		fi;
		if
		:: in_rs -> rsec[1]++
		:: else -> skip
		fi;
		waited = 0;
		if
		:: r != R_OK -> break
		:: else -> skip
		fi
	:: else -> break
	od
}

proctype freer()
{
	byte p, r, seq, i, snap;
	bit waited;
	if
	:: true /* A stays live to the end */
	:: true ->
	   do
	   :: atomic {
		if
		:: !MATCH(0, GEN_A) -> r = R_EINVAL
		:: else ->
			if
			:: e_pins[0] > 0 -> r = R_EBUSY
#ifndef TRAP_FREE_IGNORES_MIG
			:: e_pins[0] == 0 && e_mig[0] -> r = R_WAIT
			:: e_pins[0] == 0 && !e_mig[0] ->
#else
			:: e_pins[0] == 0 ->
#endif
				p = e_loc[0];
				e_live[0] = 0;
				e_gen[0]++;
#ifndef ENTRY_GRACE
				e_loc[0] = 0; /* loc becomes the free-list link */
#endif
				r = R_OK
			fi
		fi
	      };
	      if
	      :: r == R_WAIT -> migrate_wait(0, seq); waited = 1
	      :: r == R_EBUSY -> PROBE_AT(11, true) /* the caller retries */
	      :: else -> break
	      fi
	   od;
	   assert(r == R_OK);
	   PROBE_AT(1, waited && p != 0);
#ifndef ENTRY_GRACE
	   e_avail[0] = 1; /* the entry is reusable at once (the thread's cache) */
#endif
	   atomic { assert(s_state[p] == USED); s_state[p] = PENDING };
	   reclaim(p, i, snap);
#ifdef ENTRY_GRACE
	   synchronize(i, snap);
	   e_avail[0] = 1;
#endif
	   skip
	fi
}

proctype migrator()
{
	byte n, src, dst, e, g, r, i, snap, sz;
	n = 0;
	do
	:: n < NMIGR ->
		n++;
		/* the migrate scanner: a slot in use; its slab is isolated (a large
		 * run is not: LARGE_OBJECTS) */
		atomic {
			if
			:: s_state[0] == USED -> src = 0
			:: s_state[1] == USED -> src = 1
			:: s_state[2] == USED -> src = 2
			:: s_state[3] == USED -> src = 3
			:: else -> src = NONE
			fi;
#ifndef LARGE_OBJECTS
			iso = src
#else
			skip
#endif
		};
		if
		:: src == NONE -> break
		:: else -> skip
		fi;
		/* mv_object_entry: the back-reference and the size */
		atomic { e = s_ref[src]; sz = s_size[src] };
		/* freeze: LIVE, loc == src, no pins, not MIGRATING -> | MIGRATING */
		atomic {
			if
			:: e_live[e] && e_loc[e] == src && !e_mig[e] && e_pins[e] == 0 ->
				e_mig[e] = 1;
				g = e_gen[e];
#ifdef SIZE_AFTER_FREEZE
				sz = s_size[src]; /* frozen: the size can no longer change */
#endif
				r = R_OK
			:: else ->
				PROBE_AT(12, e_live[e] && e_loc[e] == src && e_pins[e] > 0);
				r = R_EBUSY /* -ENOENT or -EAGAIN: skipped */
			fi
		};
		if
		:: r == R_OK ->
			take_free(dst, USED); /* get_new */
			if
			:: dst == NONE ->
				PROBE_AT(7, true);
				publish(e, src, g) /* -ENOMEM: thaw */
			:: else ->
				atomic {
					s_obj[dst] = s_obj[src]; /* memcpy */
					s_val[dst] = s_val[src];
					s_ref[dst] = e; /* the destination's back-reference */
					s_size[dst] = sz
				};
#ifdef TRAP_SYNC_FROZEN
				if
				:: rflag -> synchronize(i, snap)
				:: else -> skip
				fi;
#endif
				PROBE_AT(8, s_obj[src] == OBJ_B);
				publish(e, dst, g);
				if
				:: waiters > 0 -> mseq++ /* move_object's wake */
				:: else -> skip
				fi;
				atomic { assert(s_state[src] == USED); s_state[src] = PENDING }
			fi;
			mseq++; /* mv_migrate_wake at the end of the batch */
			if
			:: dst != NONE -> reclaim(src, i, snap) /* flush_old */
			:: else -> skip
			fi
		:: else -> skip
		fi;
		/* putback_slab: frees that went to the isolated slab become usable */
		atomic {
			if
			:: iso != NONE && s_state[iso] == XLIST -> s_state[iso] = FREE
			:: else -> skip
			fi;
			iso = NONE
		};
		src = 0;
		sz = 0;
		dst = 0;
		e = 0;
		g = 0;
		r = 0
	:: else -> break
	od
}

proctype reader()
{
	byte p, k;
	bit ok;
	k = 0;
	do
	:: k < NREADS ->
		k++;
#ifndef TRAP_FLAG_LATE
		rflag = 1; /* first_read_lock: the flag, then a full fence */
#endif
		rsec[0]++; /* urcu_bp_read_lock */
		/* mova_deref; r_hold is a ghost taken with the address */
#if !defined(SPLIT_READER)
		atomic {
			ok = MATCH(0, GEN_A);
			if
			:: ok -> p = e_loc[0]; r_hold = p
			:: else -> skip
			fi
		};
#elif defined(RECHECK)
		ok = MATCH(0, GEN_A);
		if
		:: ok ->
			p = e_loc[0];
			atomic {
				ok = MATCH(0, GEN_A); /* the generation again */
				if
				:: ok -> r_hold = p
				:: else -> skip
				fi
			}
		:: else -> skip
		fi;
#else
		ok = MATCH(0, GEN_A);
		if
		:: ok -> atomic { p = e_loc[0]; r_hold = p }
		:: else -> skip
		fi;
#endif
#ifdef TRAP_FLAG_LATE
		rflag = 1;
#endif
		if
		:: ok ->
			PROBE_AT(2, s_state[p] == PENDING);
			assert(s_obj[p] == OBJ_A); /* I3: A's bytes */
			atomic {
				r_hold = NONE;
				rsec[0]++ /* urcu_bp_read_unlock */
			}
		:: else -> rsec[0]++
		fi;
		p = 0
	:: else -> break
	od
}

proctype allocator()
{
	byte e, s, p, r, seq, g, wg;
	bit wl, wm, waited;
	/* halloc: an entry from the cache (a fresh one, or A's once freed) */
	if
	:: e = 1
	:: e_avail[0] -> e = 0
	fi;
#ifndef LARGE_OBJECTS
	take_free(s, ALLOC);
#else
	take_free(s, USED);
#endif
	if
	:: s == NONE -> skip /* ENOMEM */
	:: else ->
		PROBE_AT(3, e == 0);
		PROBE_AT(4, s == 0);
		atomic {
			s_obj[s] = OBJ_B; /* the new object's bytes */
			s_val[s] = 0;
			s_ref[s] = e; /* the back-reference, before the entry */
			s_size[s] = SIZE_B
		};
#if defined(PIN_FADD) && !defined(HALLOC_PLAIN)
		atomic { e_loc[e] = s; e_live[e] = 1; e_mig[e] = 0 }
#else
		/* the release store of LIVE|gen|loc */
		atomic { e_loc[e] = s; e_live[e] = 1; e_mig[e] = 0; e_pins[e] = 0 }
#endif
#ifndef LARGE_OBJECTS
		s_state[s] = USED; /* the slab goes back to the bin's lists some time */
#endif
		g = e_gen[e];
		b_gen = g;
		b_ent = e;
		pin(e, g, p, r, seq, wl, wg, wm, waited);
		assert(r == R_OK);
		atomic {
			assert(s_obj[p] == OBJ_B && s_val[p] == 0 && s_size[p] == SIZE_B);
			s_val[p] = 7;
			lastB = 7
		};
		unpin(e, g, p)
	fi
}

init
{
	byte s, l, nlive;
	atomic {
		s_state[0] = USED;
		s_obj[0] = OBJ_A;
		s_ref[0] = 0;
		s_size[0] = SIZE_A;
		s_state[1] = FREE;
#ifdef TIGHT
		s_state[2] = RAW; /* less room: migrations run out (-ENOMEM) */
		s_state[3] = RAW;
#else
		s_state[2] = FREE;
		s_state[3] = FREE;
#endif
		e_live[0] = 1;
		e_gen[0] = GEN_A;
		e_loc[0] = 0;
		e_gen[1] = 1;
#ifndef NO_WRITER
		run writer();
#endif
#ifndef NO_FREER
		run freer();
#endif
#ifndef NO_MIGRATOR
		run migrator();
#endif
#ifndef NO_READER
		run reader();
#endif
#ifndef NO_ALLOCATOR
		run allocator();
#endif
		skip
	};
	(_nr_pr == 1);
	/* I2 at the end: a live object's slot holds its last write */
	if
	:: MATCH(0, GEN_A) ->
		l = e_loc[0];
		assert(s_state[l] == USED && s_obj[l] == OBJ_A && s_val[l] == lastA);
		assert(s_size[l] == SIZE_A)
	:: else -> skip
	fi;
	if
	:: b_ent != NONE && MATCH(b_ent, b_gen) ->
		l = e_loc[b_ent];
		assert(s_state[l] == USED && s_obj[l] == OBJ_B && s_val[l] == lastB);
		assert(s_size[l] == SIZE_B)
	:: else -> skip
	fi;
	assert(e_pins[0] == 0 && e_pins[1] == 0 && e_mig[0] == 0 && e_mig[1] == 0);
	assert(waiters == 0);
	/* no slot leaked or left pending: used slots are exactly the live objects' */
	nlive = e_live[0] + e_live[1];
	s = 0;
	do
	:: s < NSLOT ->
		assert(s_state[s] != PENDING && s_state[s] != XLIST);
		if
		:: s_state[s] == USED ->
			assert((e_live[0] && e_loc[0] == s) || (e_live[1] && e_loc[1] == s));
			nlive--
		:: else -> skip
		fi;
		s++
	:: else -> break
	od;
	assert(nlive == 0)
}
