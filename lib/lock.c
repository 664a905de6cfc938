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

#if MV_DEBUG_LEVEL >= 1
/* Per thread, the locks held, in order. The fork handler holds hundreds
 * (every bin, every thread's page list); past MV_WITNESS_DEPTH the
 * witness only counts, and checks order against the deepest one it knows. */
#define MV_WITNESS_DEPTH 64
static __thread struct {
	const mv_mutex *held[MV_WITNESS_DEPTH];
	int n;
} witness;

void mv_witness_lock(const mv_mutex *l)
{
	int known = MV_MIN(witness.n, MV_WITNESS_DEPTH);
	if (known > 0) {
		const mv_mutex *top = witness.held[known - 1];
		/* same rank is allowed only for bins taken in class order (fork) */
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
	int known = MV_MIN(witness.n, MV_WITNESS_DEPTH);
	for (int i = known - 1; i >= 0; i--) {
		if (witness.held[i] == l) {
			for (int j = i; j + 1 < known; j++)
				witness.held[j] = witness.held[j + 1];
			witness.n--;
			return;
		}
	}
	if (witness.n > MV_WITNESS_DEPTH) {
		witness.n--; /* one of the untracked ones */
		return;
	}
	mv_fatal("unlock of a lock (rank %d) this thread does not hold", l->rank);
}
#endif
