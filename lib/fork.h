/* SPDX-License-Identifier: MIT */
/*
 * fork.h: fork safety. pthread_atfork handlers take every lock of mova in
 * rank order before fork (so no lock is held mid-update across it),
 * release them in the parent, and in the child release them, forget the
 * kcompactd threads (they do not exist there) and hand the thread caches
 * of the threads that did not survive back to the bins.
 *
 * Order in prepare, and why: the registry; every arena's compaction lock
 * (a compaction may sit in synchronize_rcu holding it, so it must end
 * before liburcu's fork hooks take the grace-period lock); rcu.c's hooks
 * (they pause mova's grace-period thread, whose callbacks take bin locks,
 * so they come before the bins, then liburcu's); then per arena the threads list, the bins in
 * class order, every thread's page list, the zone, the handle table, the
 * meta pool; last the global meta pool.
 */
#ifndef MV_FORK_H
#define MV_FORK_H

/* Register the handlers once per process. Call outside any allocation
 * path that could recurse (pthread_atfork may allocate). */
void mv_fork_register(void);

#endif
