/* SPDX-License-Identifier: MIT */
/*
 * options.h: the one table of options. Each row gives a mova_config field
 * (or a process-wide setting), its MOVA_CONF key, its default, its bounds
 * and its documentation; mova_config_init, mova_config_check, the
 * MOVA_CONF parser and docs come from it. Bad MOVA_CONF values warn once
 * on stderr and are ignored, never fatal.
 */
#ifndef MV_OPTIONS_H
#define MV_OPTIONS_H

#include "internal.h"

#define MV_GiB ((size_t)1 << 30)
#define MV_DEFAULT_RESERVE 0          /* no limit: sections are mapped as the arena grows */
#define MV_MAX_RESERVE (512 * MV_GiB) /* handle entries address 16-byte units in 35 bits */
#define MV_DEFAULT_PAGEBLOCK_ORDER 9
#define MV_MIN_PAGEBLOCK_ORDER 6
#define MV_MAX_PAGEBLOCK_ORDER 10

/* kind: C = mova_config field, P = process-wide setting (MOVA_CONF only) */
enum mv_opt_type {
	MV_OPT_BYTES,
	MV_OPT_UINT,
	MV_OPT_BOOL,
	MV_OPT_THP /* never / madvise / always (or the MOVA_THP_* number) */
};

/* X(kind, name, type, default, min, max, doc) */
#define MV_OPTIONS(X)                                                                             \
	X(C, reserve_bytes, MV_OPT_BYTES, MV_DEFAULT_RESERVE, 0, MV_MAX_RESERVE,                  \
	  "the most address space the arena may map (0 = no limit; else at least 4 pageblocks)")  \
	X(C, pageblock_order, MV_OPT_UINT, MV_DEFAULT_PAGEBLOCK_ORDER, 0, MV_MAX_PAGEBLOCK_ORDER, \
	  "pages per pageblock, as a power of two (0 = default 9: 2 MiB)")                        \
	X(C, kcompactd, MV_OPT_BOOL, 1, 0, 1, "start the background compaction thread")           \
	X(C, proactiveness, MV_OPT_UINT, 20, 0, 100,                                              \
	  "proactive compaction, as vm.compaction_proactiveness (0 = off)")                       \
	X(C, extfrag_threshold, MV_OPT_UINT, 500, 0, 1000,                                        \
	  "fragmentation index below which compaction is not suitable, as vm.extfrag_threshold")  \
	X(C, kcompactd_cpu_budget, MV_OPT_UINT, 10, 1, 100,                                       \
	  "percent of one CPU that kcompactd may use")                                            \
	X(C, kcompactd_interval_ms, MV_OPT_UINT, 500, 10, 60000,                                  \
	  "proactive compaction check period in ms (HPAGE_FRAG_CHECK_INTERVAL_MSEC)")             \
	X(C, retain_bytes, MV_OPT_BYTES, 0, 0, SIZE_MAX,                                          \
	  "free memory kept backed, never given back by decay (0 = auto: "                        \
	  "1/32 of resident, 2 .. 16 pageblocks)")                                                \
	X(C, cma_bytes, MV_OPT_BYTES, 0, 0, MV_MAX_RESERVE,                                       \
	  "pageblocks reserved as MIGRATE_CMA at creation")                                       \
	X(C, max_handles, MV_OPT_UINT, 0, 0, UINT32_MAX - 1,                                      \
	  "handle table capacity (0 = reserve_bytes / 64, or 2^32 - 2 with no limit)")            \
	X(C, limit_bytes, MV_OPT_BYTES, 0, 0, SIZE_MAX,                                           \
	  "memory budget: reclaim (shrinkers, give-back) to keep resident bytes under it (0 = "   \
	  "none)")                                                                                \
	X(C, mempolicy, MV_OPT_UINT, 0, 0, 0xffff,                                                \
	  "memory policy mode (MPOL_*, kernel numbers) with its mode flags")                      \
	X(C, mempolicy_nodes, MV_OPT_UINT, 0, 0, UINT64_MAX,                                      \
	  "the memory policy's node mask (bit n = node n)")                                       \
	X(C, numa_nodes, MV_OPT_UINT, 0, 0, MOVA_MAX_NUMNODES,                                    \
	  "0 = the machine's NUMA nodes; 1..64 = simulate that many (placement only)")            \
	X(C, decay_ms, MV_OPT_UINT, 1000, 0, 600000,                                              \
	  "free memory nobody reused goes back to the OS gradually over this many ms (0 = at "    \
	  "once)")                                                                                \
	X(C, thp, MV_OPT_THP, MOVA_THP_MADVISE, 0, 2,                                             \
	  "transparent huge pages: madvise (pageblocks that will be dense), never, always")       \
	X(P, stats_print, MV_OPT_BOOL, 0, 0, 1, "print the default arena's statistics at exit")   \
	X(P, verbose, MV_OPT_BOOL, 0, 0, 1, "report the settings in force at start")

struct mv_process_opts {
	int stats_print;
	int verbose;
};
extern struct mv_process_opts mv_popts;

/* The configuration with defaults filled in for 0 values; cfg must have
 * passed mova_config_check. */
void mv_config_resolve(const mova_config *in, mova_config *out);

/* Parse a MOVA_CONF string into cfg (starting from its values) and
 * mv_popts. Unknown keys and bad values are reported on stderr once each
 * and ignored. Does not allocate. */
void mv_options_parse(const char *conf, mova_config *cfg);

#endif
