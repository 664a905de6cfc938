/* SPDX-License-Identifier: MIT */
/*
 * mempolicy.h: an arena's memory policy (mm/mempolicy.c). The kernel
 * decides a node per page at fault time from the task's or the VMA's
 * policy; mova decides one per pageblock, when the pageblock gets its
 * first backed page (populated, or repopulated after going back to the
 * OS), from the arena's policy: as huge pages are placed, whole.
 *
 * On a real machine (numa_nodes 0) the decision is applied with mbind on
 * the pageblock before anything touches it: BIND, PREFERRED,
 * PREFERRED_MANY, LOCAL and DEFAULT pass through with the policy's node
 * mask; INTERLEAVE and WEIGHTED_INTERLEAVE become MPOL_PREFERRED on the
 * node the interleave chose for that pageblock. With numa_nodes > 0 the
 * nodes are simulated: the same decisions are made and recorded, and
 * nothing is bound, so tests can check placement on a one-node machine.
 *
 * Policy changes (mova_set_mempolicy) take effect for pageblocks placed
 * afterwards; with MPOL_MF_MOVE the movable objects of pageblocks on
 * nodes the new policy does not allow are migrated (MR_MEMPOLICY_MBIND)
 * and the emptied pageblocks go back to the OS, to be placed anew.
 *
 * Locks: the policy and the interleave state are read and written under
 * zone->lock (placement runs there, from the buddy allocator).
 */
#ifndef MV_MEMPOLICY_H
#define MV_MEMPOLICY_H

#include "internal.h"

#define MV_MAX_NODES MOVA_MAX_NUMNODES

struct mv_mempolicy {
	int mode;       /* MOVA_MPOL_* without flags */
	unsigned flags; /* MOVA_MPOL_F_STATIC_NODES, _RELATIVE_NODES, _NUMA_BALANCING */
	uint64_t nodes; /* the nodes in force (within the online set) */
	uint64_t user;  /* the mask as given (returned when STATIC or RELATIVE) */
};

struct mv_numa {
	unsigned nr_nodes; /* nr_node_ids: highest online node + 1 */
	uint64_t online;   /* nodes that exist */
	bool simulated;
	bool bind; /* real machine, a policy was set: mbind on placement */
	struct mv_mempolicy pol;
	unsigned il_prev;                  /* the last node interleave used */
	unsigned il_left;                  /* weighted interleave: pageblocks left on il_prev */
	uint8_t weights[MV_MAX_NODES];     /* weighted interleave; 0 = default */
	uint8_t sys_weights[MV_MAX_NODES]; /* the sysfs defaults (1 where absent) */
	uint8_t *pb_node;                  /* per pageblock: node + 1, 0 = never placed */
	size_t pb_node_bytes;
};

struct mova_arena;

/* Set up from the arena's configuration (already validated). 0 or errno. */
int mv_numa_init(struct mova_arena *a);
void mv_numa_destroy(struct mova_arena *a);

/* Parse and check a policy as mbind/set_mempolicy do (get_nodes,
 * sanitize_mpol_flags, mpol_new, mpol_set_nodemask) against the nodes of
 * n: 0 and *out, or EINVAL with *why naming the problem. */
int mv_mpol_parse(const struct mv_numa *n, int mode, const unsigned long *nodemask,
		  unsigned long maxnode, struct mv_mempolicy *out, const char **why);
/* The online nodes of this machine (or simulated ones): 0, or errno. */
int mv_numa_probe(unsigned simulated, uint64_t *online, unsigned *nr_nodes);

/* The node a pageblock was placed on, or -1 (never placed, or unbacked). */
int mv_numa_pageblock_node(struct mova_arena *a, size_t pfn);

#endif
