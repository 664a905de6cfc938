/* SPDX-License-Identifier: MIT */
/* mempolicy.c: see mempolicy.h. The kernel functions each part follows are
 * named where they start. */
#define _GNU_SOURCE
#include "mempolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "compaction.h"
#include "os.h"

#define MODE_FLAGS \
	(MOVA_MPOL_F_STATIC_NODES | MOVA_MPOL_F_RELATIVE_NODES | MOVA_MPOL_F_NUMA_BALANCING)
#define MF_VALID (MOVA_MPOL_MF_STRICT | MOVA_MPOL_MF_MOVE | MOVA_MPOL_MF_MOVE_ALL)
/* the kernel reads maxnode - 1 bits; at most a page of them (get_nodes) */
#define MAXNODE_BITS_MAX (4096ul * 8)

static unsigned first_node(uint64_t m)
{
	return m ? (unsigned)__builtin_ctzll(m) : 0;
}

/* next_node_in: the next set bit after n, wrapping */
static unsigned next_node_in(unsigned n, uint64_t m)
{
	uint64_t above = n + 1 < 64 ? m & (~(uint64_t)0 << (n + 1)) : 0;
	return above ? first_node(above) : first_node(m);
}

/* ------------------------------------------------------------ nodes */

int mv_numa_probe(unsigned simulated, uint64_t *online, unsigned *nr_nodes)
{
	if (simulated) {
		*online = simulated >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << simulated) - 1;
		*nr_nodes = simulated;
		return 0;
	}
	/* the nodes this process may use, as cpuset_current_mems_allowed */
	unsigned long mask[16] = {0};
	int err = mv_os_get_mempolicy(NULL, mask, 16 * 64 + 1, NULL, MOVA_MPOL_F_MEMS_ALLOWED);
	if (err || !mask[0]) {
		*online = 1; /* no NUMA in the kernel: one node, 0 */
		*nr_nodes = 1;
		return err == ENOSYS ? ENOSYS : 0;
	}
	*online = (uint64_t)mask[0];
	*nr_nodes = 64 - (unsigned)__builtin_clzll(*online);
	return 0;
}

/* /sys/kernel/mm/mempolicy/weighted_interleave/nodeN, 1 where absent */
static void load_sys_weights(struct mv_numa *n)
{
	for (unsigned i = 0; i < MV_MAX_NODES; i++) {
		n->sys_weights[i] = 1;
		if (n->simulated || !(n->online >> i & 1))
			continue;
		char path[96], buf[16];
		snprintf(path, sizeof path, "/sys/kernel/mm/mempolicy/weighted_interleave/node%u",
			 i);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r > 0) {
			buf[r] = 0;
			unsigned w = 0;
			for (ssize_t k = 0; k < r && buf[k] >= '0' && buf[k] <= '9'; k++)
				w = w * 10 + (unsigned)(buf[k] - '0');
			if (w >= 1 && w <= 255)
				n->sys_weights[i] = (uint8_t)w;
		}
	}
}

static unsigned weight_of(const struct mv_numa *n, unsigned node)
{
	return n->weights[node] ? n->weights[node] : n->sys_weights[node];
}

static unsigned local_node(const struct mv_numa *n)
{
	if (n->simulated) {
		int cpu = sched_getcpu();
		return cpu > 0 ? (unsigned)cpu % n->nr_nodes : 0;
	}
	unsigned node = mv_os_current_node();
	return node < MV_MAX_NODES && (n->online >> node & 1) ? node : first_node(n->online);
}

/* ------------------------------------------------------------ parsing */

/* get_nodes: maxnode - 1 bits from the caller's mask */
static int get_nodes(const unsigned long *nmask, unsigned long maxnode, uint64_t *out)
{
	*out = 0;
	if (maxnode)
		maxnode--;
	if (!maxnode || !nmask)
		return 0;
	if (maxnode > MAXNODE_BITS_MAX)
		return EINVAL;
	const unsigned lbits = sizeof(unsigned long) * 8;
	for (unsigned long bit = 0; bit < maxnode; bit += lbits) {
		unsigned long w = nmask[bit / lbits];
		unsigned long valid = maxnode - bit;
		if (valid < lbits)
			w &= (1ul << valid) - 1;
		if (!w)
			continue;
		if (bit >= MV_MAX_NODES)
			return EINVAL; /* nodes beyond what mova supports */
		*out |= (uint64_t)w << bit;
	}
	return 0;
}

/* mpol_relative_nodemask: bit i of the user's mask names the i-th allowed node */
static uint64_t relative_nodes(uint64_t user, uint64_t allowed)
{
	unsigned w = (unsigned)__builtin_popcountll(allowed);
	uint64_t out = 0;
	if (!w)
		return 0;
	for (unsigned i = 0; i < 64; i++) {
		if (!(user >> i & 1))
			continue;
		unsigned k = i % w; /* nodes_fold, then nodes_onto */
		uint64_t m = allowed;
		for (unsigned j = 0; j < k; j++)
			m &= m - 1;
		out |= m & -m;
	}
	return out;
}

int mv_mpol_parse(const struct mv_numa *n, int mode, const unsigned long *nodemask,
		  unsigned long maxnode, struct mv_mempolicy *out, const char **why)
{
	const char *w = NULL;
	uint64_t user = 0;
	/* sanitize_mpol_flags */
	unsigned flags = (unsigned)mode & MODE_FLAGS;
	int base = mode & ~(int)MODE_FLAGS;
	if (base < 0 || base >= MOVA_MPOL_MAX)
		w = "unknown mode";
	else if ((flags & MOVA_MPOL_F_STATIC_NODES) && (flags & MOVA_MPOL_F_RELATIVE_NODES))
		w = "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES together";
	else if ((flags & MOVA_MPOL_F_NUMA_BALANCING) && base != MOVA_MPOL_BIND &&
		 base != MOVA_MPOL_PREFERRED_MANY)
		w = "MPOL_F_NUMA_BALANCING needs MPOL_BIND or MPOL_PREFERRED_MANY";
	else if (get_nodes(nodemask, maxnode, &user))
		w = "the node mask names nodes beyond MOVA_MAX_NUMNODES";
	/* mpol_new */
	else if (base == MOVA_MPOL_DEFAULT) {
		if (user)
			w = "MPOL_DEFAULT takes no nodes";
	} else if (base == MOVA_MPOL_PREFERRED) {
		if (!user) {
			if (flags & (MOVA_MPOL_F_STATIC_NODES | MOVA_MPOL_F_RELATIVE_NODES))
				w = "MPOL_PREFERRED without nodes takes no node flags";
			else
				base = MOVA_MPOL_LOCAL; /* as the kernel does */
		}
	} else if (base == MOVA_MPOL_LOCAL) {
		if (user || (flags & (MOVA_MPOL_F_STATIC_NODES | MOVA_MPOL_F_RELATIVE_NODES)))
			w = "MPOL_LOCAL takes no nodes";
	} else if (!user) {
		w = "the mode needs at least one node";
	}
	uint64_t nodes = 0;
	if (!w && base != MOVA_MPOL_DEFAULT && base != MOVA_MPOL_LOCAL) {
		/* mpol_set_nodemask: within the nodes that exist */
		nodes = (flags & MOVA_MPOL_F_RELATIVE_NODES) ? relative_nodes(user, n->online)
							     : user & n->online;
		if (!nodes)
			w = "no node of the mask exists";
		else if (base == MOVA_MPOL_PREFERRED)
			nodes = (uint64_t)1 << first_node(nodes);
	}
	if (why)
		*why = w;
	if (w)
		return EINVAL;
	out->mode = base;
	/* the default policy is no policy (mpol_new returns NULL): no flags kept */
	out->flags = base == MOVA_MPOL_DEFAULT ? 0 : flags;
	out->nodes = nodes;
	out->user = user;
	return 0;
}

/* ------------------------------------------------------------ placement */

/* The node for the next pageblock (policy_node, interleave_nodes,
 * weighted_interleave_nodes); caller holds zone->lock. */
static unsigned choose_node(struct mv_numa *n)
{
	const struct mv_mempolicy *p = &n->pol;
	switch (p->mode) {
	case MOVA_MPOL_PREFERRED: return first_node(p->nodes);
	case MOVA_MPOL_BIND:
	case MOVA_MPOL_PREFERRED_MANY: {
		unsigned local = local_node(n);
		return p->nodes >> local & 1 ? local : first_node(p->nodes);
	}
	case MOVA_MPOL_INTERLEAVE:
		n->il_prev = next_node_in(n->il_prev, p->nodes);
		return n->il_prev;
	case MOVA_MPOL_WEIGHTED_INTERLEAVE:
		if (n->il_left && (p->nodes >> n->il_prev & 1)) {
			n->il_left--;
			return n->il_prev;
		}
		n->il_prev = next_node_in(n->il_prev, p->nodes);
		n->il_left = weight_of(n, n->il_prev) - 1;
		return n->il_prev;
	default: return local_node(n); /* DEFAULT, LOCAL */
	}
}

/* the mbind that puts a pageblock where choose_node said */
static int bind_args(const struct mv_mempolicy *p, unsigned node, unsigned long *mask)
{
	*mask = 0;
	switch (p->mode) {
	case MOVA_MPOL_DEFAULT: return MOVA_MPOL_DEFAULT;
	case MOVA_MPOL_LOCAL: return MOVA_MPOL_LOCAL;
	case MOVA_MPOL_BIND:
	case MOVA_MPOL_PREFERRED_MANY: *mask = (unsigned long)p->nodes; return p->mode;
	default: *mask = 1ul << node; return MOVA_MPOL_PREFERRED; /* PREFERRED, interleaves */
	}
}

static void place(void *arg, size_t pb)
{
	struct mova_arena *a = arg;
	struct mv_numa *n = &a->numa;
	unsigned node = choose_node(n);
	mv_rstore(n->pb_node[pb], (uint8_t)(node + 1)); /* read without the lock */
	if (n->bind) {
		unsigned long mask;
		int mode = bind_args(&n->pol, node, &mask);
		size_t bytes = a->heap.zone.pageblock_nr_pages << MV_PAGE_SHIFT;
		int err =
		    mv_os_mbind(mv_zone_addr(&a->heap.zone, pb << a->heap.zone.pageblock_order),
				bytes, mode, mask ? &mask : NULL, mask ? 65 : 0, 0);
		if (err) {
			static _Atomic int warned;
			mv_warn_once(&warned, "mbind of a pageblock failed (%s); it stays unbound",
				     strerror(err));
		}
	}
}

int mv_numa_init(struct mova_arena *a)
{
	struct mv_numa *n = &a->numa;
	n->simulated = a->cfg.numa_nodes != 0;
	mv_numa_probe(a->cfg.numa_nodes, &n->online, &n->nr_nodes);
	size_t nr_pb = a->heap.zone.nr_pages_max >> a->heap.zone.pageblock_order;
	n->pb_node_bytes = mv_align_up(nr_pb, MV_PAGE_SIZE);
	n->pb_node = mv_os_map_noreserve(n->pb_node_bytes);
	if (!n->pb_node)
		return ENOMEM;
	n->il_prev = MV_MAX_NODES - 1; /* the first interleave node is the first of the mask */
	for (unsigned i = 0; i < MV_MAX_NODES; i++)
		n->sys_weights[i] = 1;
	const char *why;
	if (mv_mpol_parse(n, a->cfg.mempolicy, (const unsigned long *)&a->cfg.mempolicy_nodes, 65,
			  &n->pol, &why))
		return EINVAL; /* mova_config_check let it through: cannot happen */
	if (n->pol.mode == MOVA_MPOL_WEIGHTED_INTERLEAVE)
		load_sys_weights(n);
	n->bind = !n->simulated && n->pol.mode != MOVA_MPOL_DEFAULT;
	if (n->simulated || n->bind) {
		a->heap.zone.place_arg = a;
		a->heap.zone.place = place;
	}
	return 0;
}

void mv_numa_destroy(struct mova_arena *a)
{
	if (a->numa.pb_node)
		mv_os_release(a->numa.pb_node, a->numa.pb_node_bytes);
	a->numa.pb_node = NULL;
}

int mv_numa_pageblock_node(struct mova_arena *a, size_t pfn)
{
	struct mv_zone *z = &a->heap.zone;
	if (!mv_zone_pfn_valid(z, pfn) || !mv_zone_pageblock_backed(z, pfn))
		return -1;
	unsigned v = mv_rload(a->numa.pb_node[pfn >> z->pageblock_order]);
	if (v)
		return (int)v - 1;
	return a->numa.nr_nodes == 1 ? 0 : -1;
}

/* ------------------------------------------------------------ migration */

static bool node_allowed(const struct mv_mempolicy *p, unsigned node)
{
	switch (p->mode) {
	case MOVA_MPOL_DEFAULT:
	case MOVA_MPOL_LOCAL: return true; /* "local" is wherever a thread runs */
	case MOVA_MPOL_PREFERRED: return node == first_node(p->nodes);
	default: return p->nodes >> node & 1;
	}
}

/* do_mbind's MPOL_MF_MOVE: isolate every misplaced pageblock that can
 * hold movable objects, migrate them out (onto allowed pageblocks or new
 * ones, placed by the new policy), and give the emptied pageblocks back
 * so that they are placed anew. Returns how many misplaced pageblocks
 * still hold memory (unmovable, pinned). */
static size_t migrate_misplaced(struct mova_arena *a)
{
	struct mv_zone *z = &a->heap.zone;
	size_t pbn = z->pageblock_nr_pages;
	size_t nblocks = mv_relaxed_load(&z->populated_pfn) / pbn;
	if (!nblocks)
		return 0;
	uint32_t *blocks = mv_meta_alloc(&a->heap.meta, nblocks * sizeof(uint32_t) + nblocks);
	if (!blocks)
		return 0;
	uint8_t *old_mt = (uint8_t *)(blocks + nblocks);
	size_t nr = 0, isolated = 0, stuck = 0;
	mv_lock(&z->lock);
	struct mv_mempolicy pol = a->numa.pol;
	mv_unlock(&z->lock);
	for (size_t b = 0; b < nblocks; b++) {
		if (!mv_zone_pfn_valid(z, b * pbn))
			continue;
		int node = mv_numa_pageblock_node(a, b * pbn);
		if (node < 0 || node_allowed(&pol, (unsigned)node))
			continue;
		blocks[nr] = (uint32_t)b;
		old_mt[nr] = (uint8_t)mv_get_pfnblock_migratetype(z, b * pbn);
		nr++;
	}
	/* isolate them all first, so no object moves from one to another */
	for (size_t i = 0; i < nr; i++) {
		int mt = old_mt[i];
		bool movable =
		    mt == MIGRATE_MOVABLE || mt == MIGRATE_RECLAIMABLE || mt == MIGRATE_CMA;
		if (movable && mv_zone_isolate_pageblock(z, (size_t)blocks[i] * pbn) == 0)
			isolated++;
		else
			old_mt[i] |= 0x80; /* not isolated */
	}
	for (size_t i = 0; i < nr; i++)
		if (!(old_mt[i] & 0x80))
			mv_migrate_range(a, (size_t)blocks[i] * pbn, (size_t)(blocks[i] + 1) * pbn,
					 MR_MEMPOLICY_MBIND);
	mv_heap_drain_all_pcp(&a->heap);
	mv_bins_trim(&a->heap);
	for (size_t i = 0; i < nr; i++)
		if (!(old_mt[i] & 0x80))
			mv_zone_unisolate_pageblock(z, (size_t)blocks[i] * pbn, old_mt[i]);
	/* emptied pageblocks go back to the OS and are placed anew on reuse */
	if (nr)
		mv_zone_return_free(z, 0, 0);
	for (size_t i = 0; i < nr; i++)
		stuck += mv_zone_pageblock_backed(z, (size_t)blocks[i] * pbn);
	mv_meta_free(&a->heap.meta, blocks, nblocks * sizeof(uint32_t) + nblocks);
	(void)isolated;
	return stuck;
}

/* ------------------------------------------------------------ the API */

/* does the kernel take this policy? (a mode it lacks gives EINVAL) */
static int probe_kernel(const struct mv_mempolicy *p)
{
	void *scratch = mv_os_map(MV_PAGE_SIZE);
	if (!scratch)
		return ENOMEM;
	unsigned long mask = (unsigned long)p->nodes;
	bool nodes = p->mode != MOVA_MPOL_DEFAULT && p->mode != MOVA_MPOL_LOCAL;
	int err = mv_os_mbind(scratch, MV_PAGE_SIZE, p->mode | (int)p->flags, nodes ? &mask : NULL,
			      nodes ? 65 : 0, 0);
	mv_os_release(scratch, MV_PAGE_SIZE);
	return err;
}

int mova_set_mempolicy(mova_arena *a, int mode, const unsigned long *nodemask,
		       unsigned long maxnode, unsigned flags)
{
	if (!a || (flags & ~(unsigned)MF_VALID))
		return EINVAL;
	struct mv_mempolicy pol;
	int err = mv_mpol_parse(&a->numa, mode, nodemask, maxnode, &pol, NULL);
	if (err)
		return err;
	if (pol.mode == MOVA_MPOL_DEFAULT)
		flags &= ~(unsigned)MOVA_MPOL_MF_STRICT;
	bool move = flags & (MOVA_MPOL_MF_MOVE | MOVA_MPOL_MF_MOVE_ALL);
	/* migration waits for grace periods: never inside our own read section */
	if (move && mv_rcu_readers_ever() && mv_rcu_in_reader())
		return EDEADLK;
	if (!a->numa.simulated && (err = probe_kernel(&pol)))
		return err; /* ENOSYS: no NUMA in the kernel; EINVAL: a mode it lacks */
	struct mv_zone *z = &a->heap.zone;
	mv_lock(&z->lock);
	a->numa.pol = pol;
	a->numa.il_left = 0;
	if (pol.mode == MOVA_MPOL_WEIGHTED_INTERLEAVE)
		load_sys_weights(&a->numa);
	if (!a->numa.simulated && pol.mode != MOVA_MPOL_DEFAULT)
		a->numa.bind = true; /* from now on every placement binds, DEFAULT included */
	if (a->numa.simulated || a->numa.bind) {
		z->place_arg = a;
		z->place = place;
	}
	mv_unlock(&z->lock);
	if (!move)
		return 0;
	struct mv_tcache *tc = mv_tcache_of(&a->heap);
	if (tc)
		mv_tcache_flush(&a->heap, tc);
	size_t stuck = migrate_misplaced(a);
	return (flags & MOVA_MPOL_MF_STRICT) && stuck ? EIO : 0;
}

/* copy_nodes_to_user */
static int put_nodes(const struct mv_numa *n, unsigned long *nmask, unsigned long maxnode,
		     uint64_t nodes)
{
	if (!nmask)
		return 0;
	if (maxnode < n->nr_nodes)
		return EINVAL;
	unsigned long bits = maxnode - 1;
	if (bits > MAXNODE_BITS_MAX)
		return EINVAL;
	const unsigned lbits = sizeof(unsigned long) * 8;
	for (unsigned long i = 0; i * lbits < bits; i++)
		nmask[i] = i * lbits < 64 ? (unsigned long)(nodes >> (i * lbits)) : 0;
	return 0;
}

int mova_get_mempolicy(mova_arena *a, int *mode, unsigned long *nodemask, unsigned long maxnode,
		       const void *addr, unsigned long flags)
{
	if (!a || (flags & ~(unsigned long)(MOVA_MPOL_F_NODE | MOVA_MPOL_F_ADDR |
					    MOVA_MPOL_F_MEMS_ALLOWED)))
		return EINVAL;
	struct mv_numa *n = &a->numa;
	if (nodemask && maxnode < n->nr_nodes)
		return EINVAL;
	if (flags & MOVA_MPOL_F_MEMS_ALLOWED) {
		if (flags & (MOVA_MPOL_F_NODE | MOVA_MPOL_F_ADDR))
			return EINVAL;
		if (mode)
			*mode = 0;
		return put_nodes(n, nodemask, maxnode, n->online);
	}
	struct mv_zone *z = &a->heap.zone;
	size_t pfn = 0;
	if (flags & MOVA_MPOL_F_ADDR) {
		if (!mv_arena_owns(a, addr))
			return EFAULT;
		pfn = mv_zone_pfn(z, addr);
		if (!mv_zone_pfn_valid(z, pfn))
			return EFAULT;
	}
	mv_lock(&z->lock);
	struct mv_mempolicy pol = n->pol;
	unsigned il_prev = n->il_prev, il_left = n->il_left;
	mv_unlock(&z->lock);
	int value;
	if (flags & MOVA_MPOL_F_NODE) {
		if (flags & MOVA_MPOL_F_ADDR) {
			/* lookup_node: the node the page lives on */
			int node = -1;
			if (!n->simulated && mv_zone_pageblock_backed(z, pfn)) {
				bool backed =
				    mv_rload(*mv_zone_backed_word(z, pfn)) >> (pfn % 64) & 1;
				int kn = -1;
				if (backed &&
				    !mv_os_get_mempolicy(&kn, NULL, 0, (void *)(uintptr_t)addr,
							 MOVA_MPOL_F_NODE | MOVA_MPOL_F_ADDR))
					node = kn;
			}
			if (node < 0)
				node = mv_numa_pageblock_node(a, pfn);
			if (node < 0) /* never placed: where the policy would put it */
				node = (int)(pol.mode == MOVA_MPOL_DEFAULT ||
						     pol.mode == MOVA_MPOL_LOCAL
						 ? local_node(n)
						 : first_node(pol.nodes));
			value = node;
		} else if (pol.mode == MOVA_MPOL_INTERLEAVE) {
			value = (int)next_node_in(il_prev, pol.nodes);
		} else if (pol.mode == MOVA_MPOL_WEIGHTED_INTERLEAVE) {
			value = (int)(il_left && (pol.nodes >> il_prev & 1)
					  ? il_prev
					  : next_node_in(il_prev, pol.nodes));
		} else {
			return EINVAL;
		}
	} else {
		value = pol.mode | (int)pol.flags;
	}
	/* the policy's nodes (the user's mask when it is kept as given) */
	uint64_t nodes = (pol.flags & (MOVA_MPOL_F_STATIC_NODES | MOVA_MPOL_F_RELATIVE_NODES))
			     ? pol.user
			     : pol.nodes;
	int err = put_nodes(n, nodemask, maxnode, nodes);
	if (err)
		return err;
	if (mode)
		*mode = value;
	return 0;
}

int mova_set_interleave_weight(mova_arena *a, unsigned node, unsigned weight)
{
	if (!a || node >= MV_MAX_NODES || !(a->numa.online >> node & 1) || weight > 255)
		return EINVAL;
	mv_lock(&a->heap.zone.lock);
	a->numa.weights[node] = (uint8_t)weight;
	mv_unlock(&a->heap.zone.lock);
	return 0;
}
