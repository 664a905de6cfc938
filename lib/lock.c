/* SPDX-License-Identifier: MIT */
/* lock.c: see lock.h. The witness keeps, per thread, the ranks held. */
#include "lock.h"

void mv_mutex_init(mv_mutex *l, int rank)
{
	pthread_mutex_init(&l->m, NULL);
	l->rank = rank;
}

void mv_mutex_destroy(mv_mutex *l)
{
	pthread_mutex_destroy(&l->m);
}

void mv_mutex_reset_child(mv_mutex *l)
{
	/* glibc lets the owning thread unlock in the child; re-initialising
	 * would be wrong for a lock the parent did not hold in this thread. */
	mv_unlock(l);
}

#if MV_DEBUG_LEVEL >= 1
#define MV_WITNESS_DEPTH 16
static __thread struct {
	const mv_mutex *held[MV_WITNESS_DEPTH];
	int n;
} witness;

void mv_witness_lock(const mv_mutex *l)
{
	if (witness.n > 0) {
		const mv_mutex *top = witness.held[witness.n - 1];
		/* same rank is allowed only for bins taken in address order (fork) */
		MV_BUG_ON(top->rank > l->rank || (top->rank == l->rank && l->rank != MV_RANK_BIN),
			  "lock order violated: rank %d taken while holding rank %d", l->rank,
			  top->rank);
	}
	if (witness.n < MV_WITNESS_DEPTH)
		witness.held[witness.n] = l;
	witness.n++;
}

void mv_witness_unlock(const mv_mutex *l)
{
	for (int i = MV_MIN(witness.n, MV_WITNESS_DEPTH) - 1; i >= 0; i--) {
		if (witness.held[i] == l) {
			for (int j = i; j + 1 < MV_MIN(witness.n, MV_WITNESS_DEPTH); j++)
				witness.held[j] = witness.held[j + 1];
			witness.n--;
			return;
		}
	}
	mv_fatal("unlock of a lock (rank %d) this thread does not hold", l->rank);
}
#endif
