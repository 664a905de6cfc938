/* SPDX-License-Identifier: MIT */
/*
 * vmstat.h: an arena's event counters (the kernel's vm_event_item). Each is
 * a relaxed atomic bumped on slow paths only; fast paths keep per-thread
 * counts that stats.c folds in.
 */
#ifndef MV_VMSTAT_H
#define MV_VMSTAT_H

#include "internal.h"

enum mv_vm_item {
#define MV_VM_ENUM(name) MV_VM_##name,
	MOVA_VMSTAT_ITEMS(MV_VM_ENUM)
#undef MV_VM_ENUM
	    MV_NR_VM_ITEMS
};

struct mv_vmstat {
	_Atomic uint64_t ev[MV_NR_VM_ITEMS];
};

static inline void mv_count(struct mv_vmstat *vm, enum mv_vm_item i, uint64_t n)
{
	mv_relaxed_add(&vm->ev[i], n);
}

#endif
