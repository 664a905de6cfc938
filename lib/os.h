/* SPDX-License-Identifier: MIT */
/*
 * os.h: the OS layer. Every mmap, mprotect, madvise, munmap, futex and
 * (later) mbind call of mova goes through here, so that how the arena is
 * backed can change without touching the allocator. Thread-safe, takes no
 * locks, never allocates. A test-only fault hook can make calls fail.
 */
#ifndef MV_OS_H
#define MV_OS_H

#include <pthread.h>

#include "internal.h"

enum mv_os_op {
	MV_OS_RESERVE,
	MV_OS_COMMIT,
	MV_OS_DECOMMIT,
	MV_OS_MAP,
	MV_OS_MBIND,
	MV_OS_MOVE,   /* mv_os_move_pages */
	MV_OS_ADVISE, /* huge page advice and collapse */
	MV_OS_THREAD, /* mv_os_thread_create */
	MV_OS_NR_OPS
};

/* Test-only: when set, called before each operation; a non-zero return
 * makes the operation fail with that errno, without calling the OS. */
typedef int (*mv_os_fault_fn)(enum mv_os_op op, size_t len);
extern _Atomic(mv_os_fault_fn) mv_os_fault_hook;

/* Start a thread running fn(arg) with every signal
 * blocked (mova's threads must not take the program's signals). 0 or the
 * errno of pthread_create (EAGAIN under a thread limit). */
int mv_os_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* Reserve len bytes of address space aligned to align (a power of two >=
 * the page size), inaccessible and not backed. NULL with errno on failure. */
void *mv_os_reserve(size_t len, size_t align);
/* As mv_os_reserve, but readable: untouched pages read as zeros (the
 * shared zero page, no memory and no commit charge), so a lockless reader
 * may look anywhere in it. */
void *mv_os_reserve_readable(size_t len, size_t align);
/* Make [p, p+len) of a reservation readable and writable. 0 or errno. */
int mv_os_commit(void *p, size_t len);
/* Make [p, p+len) of a reservation readable (zero pages), not writable. */
int mv_os_make_readable(void *p, size_t len);
/* Give the pages back to the OS; the range stays accessible and reads as
 * zeros when touched again. 0 or errno. */
int mv_os_decommit(void *p, size_t len);
/* Unmap a reservation or mapping. */
void mv_os_release(void *p, size_t len);
/* A fresh readable, writable, zeroed mapping. NULL with errno on failure. */
void *mv_os_map(size_t len);
/* mv_os_map without commit charge (MAP_NORESERVE): for memory touched a
 * page at a time (tables, metadata), or NULL with errno */
void *mv_os_map_noreserve(size_t len);
/* len bytes of read-write memory (MAP_NORESERVE) at an address aligned to
 * align (a power of two), at hint when that is free (never over another
 * mapping), or NULL with errno. Maps no more than len + align meanwhile. */
void *mv_os_map_aligned(size_t len, size_t align, void *hint);

/* Move the pages of [from, from+len) to [to, to+len) without copying
 * (mremap): both ranges page-aligned, apart, inside read-write private
 * anonymous mappings of the caller's (the arena's slots). to's old pages go
 * back to the OS; from stays mapped and reads as zeros. 0, or errno with
 * nothing moved (from keeps its pages; to may have lost its old ones). */
int mv_os_move_pages(void *from, void *to, size_t len);
/* The process's memory mappings now (lines of /proc/self/maps), or -1;
 * and vm.max_map_count (65530 when it cannot be read). Slow: a read of
 * the whole table. */
long mv_os_map_count(void);
long mv_os_max_map_count(void);

/* NUMA (mempolicy.h): the syscalls, which glibc does not wrap (libnuma
 * does). 0 or errno; ENOSYS where the kernel has no NUMA support. */
int mv_os_mbind(void *p, size_t len, int mode, const unsigned long *nodemask, unsigned long maxnode,
		unsigned flags);
int mv_os_get_mempolicy(int *mode, unsigned long *nodemask, unsigned long maxnode, void *addr,
			unsigned long flags);
/* the node of the CPU this thread runs on (0 if unknown) */
unsigned mv_os_current_node(void);

/* Transparent huge pages. The system's setting
 * (/sys/kernel/mm/transparent_hugepage/enabled), read once: MOVA_THP_*,
 * MOVA_THP_NEVER when it cannot be read. */
unsigned mv_os_thp_system(void);
/* Advise [p, p+len): MV_OS_HUGE (MADV_HUGEPAGE), MV_OS_NOHUGE
 * (MADV_NOHUGEPAGE) or MV_OS_COLLAPSE (MADV_COLLAPSE, Linux 6.1: back it
 * with huge pages now, synchronously). 0 or errno; a failure only means no
 * huge pages (EINVAL from an older kernel, ENOMEM from vm.max_map_count,
 * EAGAIN when no huge page could be had). */
enum mv_os_advice { MV_OS_HUGE, MV_OS_NOHUGE, MV_OS_COLLAPSE };
int mv_os_hugepage(void *p, size_t len, enum mv_os_advice advice);
/* AnonHugePages of the process in bytes (/proc/self/smaps_rollup), 0 if
 * it cannot be read. Opens and reads a file: never on a hot path. */
size_t mv_os_anon_huge_bytes(void);

/* futex on a 32-bit word, private to the process */
void mv_os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, long timeout_ns);
void mv_os_futex_wake(_Atomic uint32_t *addr, int nr);

/* membarrier(2), private expedited: register the process (true when it
 * can be used), and make every running thread of the process execute a
 * full memory barrier before returning (0, or -1 with errno). */
bool mv_os_membarrier_register(void);
int mv_os_membarrier(void);
/* give up the CPU (sched_yield) */
void mv_os_yield(void);

/* nanoseconds of CLOCK_MONOTONIC and of this thread's CPU time */
uint64_t mv_os_now_ns(void);
uint64_t mv_os_thread_cpu_ns(void);

#endif
