/* SPDX-License-Identifier: MIT */
/*
 * os.c: the OS layer (see os.h). Reservations are PROT_NONE and
 * MAP_NORESERVE so they cost neither memory nor commit charge until
 * committed with mprotect; giving memory back is MADV_DONTNEED, after which
 * the pages read as zeros.
 */
#define _GNU_SOURCE /* mremap */
#include "os.h"

#include "diag.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_COLLAPSE /* Linux 6.1; Debian 12's headers lack it */
#define MADV_COLLAPSE 25
#endif

_Atomic(mv_os_fault_fn) mv_os_fault_hook;

static int fault(enum mv_os_op op, size_t len)
{
	mv_os_fault_fn fn = atomic_load_explicit(&mv_os_fault_hook, memory_order_acquire);
	return fn ? fn(op, len) : 0;
}

static void *reserve(size_t len, size_t align, int prot);
static void *reserve_prot(size_t len, size_t align, int prot);

int mv_os_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = fault(MV_OS_THREAD, 0);
	if (err)
		return err;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

void *mv_os_reserve(size_t len, size_t align)
{
	return reserve(len, align, PROT_NONE);
}
void *mv_os_reserve_readable(size_t len, size_t align)
{
	return reserve(len, align, PROT_READ);
}

static void *reserve(size_t len, size_t align, int prot)
{
	int err = fault(MV_OS_RESERVE, len);
	if (err) {
		errno = err;
		return NULL;
	}
	return reserve_prot(len, align, prot);
}

static void *reserve_prot(size_t len, size_t align, int prot)
{
	if (len + align < len) {
		errno = ENOMEM;
		return NULL;
	}
	size_t span = len + align;
	char *p = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL; /* errno from mmap: ENOMEM */
	uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)p, tail = span - head - len;
	if (head)
		munmap(p, head);
	if (tail)
		munmap((char *)start + len, tail);
	return (void *)start;
}

int mv_os_commit(void *p, size_t len)
{
	int err = fault(MV_OS_COMMIT, len);
	if (err)
		return err;
	return mprotect(p, len, PROT_READ | PROT_WRITE) ? errno : 0;
}

int mv_os_make_readable(void *p, size_t len)
{
	int err = fault(MV_OS_COMMIT, len);
	if (err)
		return err;
	/* A new read-only mapping over the (untouched) reservation, not an
	 * mprotect: the same zero pages, but valgrind's memcheck shadows an
	 * mprotect'd range with real memory, a quarter of its size (8 GiB for
	 * a handle table's 32 GiB), and a fresh mapping with none. */
	void *q =
	    mmap(p, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	return q == MAP_FAILED ? errno : 0;
}

int mv_os_decommit(void *p, size_t len)
{
	int err = fault(MV_OS_DECOMMIT, len);
	if (err)
		return err;
	return madvise(p, len, MADV_DONTNEED) ? errno : 0;
}

void mv_os_release(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

void *mv_os_map(size_t len)
{
	int err = fault(MV_OS_MAP, len);
	if (err) {
		errno = err;
		return NULL;
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void mv_os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, long timeout_ns)
{
	struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, timeout_ns >= 0 ? &ts : NULL, NULL,
		0);
}

/* the commands of <linux/membarrier.h> (4.14), defined here for older headers */
#define MV_MEMBARRIER_CMD_QUERY 0
#define MV_MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MV_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)

bool mv_os_membarrier_register(void)
{
#ifdef SYS_membarrier
	long cmds = syscall(SYS_membarrier, MV_MEMBARRIER_CMD_QUERY, 0);
	if (cmds < 0 || !(cmds & MV_MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return false;
	return syscall(SYS_membarrier, MV_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
#else
	return false;
#endif
}

int mv_os_membarrier(void)
{
#ifdef SYS_membarrier
	return (int)syscall(SYS_membarrier, MV_MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

void mv_os_yield(void)
{
	sched_yield();
}

void mv_os_futex_wake(_Atomic uint32_t *addr, int nr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, nr, NULL, NULL, 0);
}

uint64_t mv_os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mv_os_thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mv_os_mbind(void *p, size_t len, int mode, const unsigned long *nodemask, unsigned long maxnode,
		unsigned flags)
{
	int err = fault(MV_OS_MBIND, len);
	if (err)
		return err;
	return syscall(SYS_mbind, p, len, mode, nodemask, maxnode, flags) ? errno : 0;
}

int mv_os_get_mempolicy(int *mode, unsigned long *nodemask, unsigned long maxnode, void *addr,
			unsigned long flags)
{
	return syscall(SYS_get_mempolicy, mode, nodemask, maxnode, addr, flags) ? errno : 0;
}

unsigned mv_os_current_node(void)
{
	unsigned cpu = 0, node = 0;
	if (syscall(SYS_getcpu, &cpu, &node, NULL))
		return 0;
	return node;
}

void *mv_os_map_noreserve(size_t len)
{
	int err = fault(MV_OS_MAP, len);
	if (err) {
		errno = err;
		return NULL;
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *mv_os_map_aligned(size_t len, size_t align, void *hint)
{
	const int prot = PROT_READ | PROT_WRITE,
		  flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	int err = fault(MV_OS_RESERVE, len);
	if (err) {
		errno = err;
		return NULL;
	}
	if (len + align < len) {
		errno = ENOMEM;
		return NULL;
	}
	if (hint && !((uintptr_t)hint & (align - 1))) {
		char *p = mmap(hint, len, prot, flags | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == hint)
			return p;
		if (p != MAP_FAILED) /* a kernel before 4.17 took it as a hint */
			munmap(p, len);
	}
	/* the OS's choice is often aligned already (a previous trim left an
	 * aligned gap below): no more address space than len meanwhile */
	char *p = mmap(NULL, len, prot, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (!((uintptr_t)p & (align - 1)))
		return p;
	munmap(p, len);
	/* the OS places mappings top-down: the aligned address just below
	 * where it put this one is usually free, and taking it maps no more
	 * than len (over-mapping len + align and trimming raised VmPeak by
	 * 64 MiB, and fails first under RLIMIT_AS) */
	char *want[2] = {(char *)((uintptr_t)p & ~(uintptr_t)(align - 1)),
			 (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1))};
	for (int i = 0; i < 2; i++) {
		if (!want[i])
			continue;
		char *q = mmap(want[i], len, prot, flags | MAP_FIXED_NOREPLACE, -1, 0);
		if (q == want[i])
			return q;
		if (q != MAP_FAILED)
			munmap(q, len);
	}
	return reserve_prot(len, align, prot);
}

int mv_os_move_pages(void *from, void *to, size_t len)
{
	int err = fault(MV_OS_MOVE, len);
	if (err)
		return err;
	/* Through scratch address space of its own: on kernels before 6.17
	 * mremap(MREMAP_FIXED) unmaps its target before it checks its source
	 * (EFAULT for a source over two mappings), which would leave a hole in
	 * the arena. Only the scratch range can be holed that way; the second
	 * call's source is one mapping the first made. MREMAP_DONTUNMAP leaves
	 * from mapped (no hole another thread's mmap could take). */
	void *x = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (x == MAP_FAILED)
		return errno;
	void *r = mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, x);
	if (r == MAP_FAILED) {
		err = errno; /* EINVAL before Linux 5.7: the caller copies */
		munmap(x, len);
		return err;
	}
	r = mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (r == MAP_FAILED) {
		/* to may be unmapped by now: map it again, copy, and still
		 * succeed (the pages left from) */
		void *q = mmap(to, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		if (q == MAP_FAILED)
			mv_fatal("mova: arena range %p+%zu lost in a failed page move (errno %d)",
				 to, len, errno);
		memcpy(to, x, len);
		munmap(x, len);
	}
	return 0;
}

static long count_lines(const char *path, long *first)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[4096];
	long n = 0, v = 0;
	bool digits = first != NULL;
	ssize_t got;
	while ((got = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < got; i++) {
			n += buf[i] == '\n';
			if (digits && buf[i] >= '0' && buf[i] <= '9')
				v = v * 10 + (buf[i] - '0');
			else
				digits = false;
		}
	close(fd);
	if (first)
		*first = v;
	return n;
}

long mv_os_map_count(void)
{
	return count_lines("/proc/self/maps", NULL);
}

long mv_os_max_map_count(void)
{
	long v = 0;
	return count_lines("/proc/sys/vm/max_map_count", &v) > 0 && v > 0 ? v : 65530;
}

/* ---- transparent huge pages ---- */

/* a small file into buf (NUL-terminated), with no allocation: bytes read,
 * or -1 */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* the bracketed word of "always [madvise] never" */
static unsigned parse_thp_enabled(const char *s)
{
	if (strstr(s, "[always]"))
		return MOVA_THP_ALWAYS;
	if (strstr(s, "[madvise]"))
		return MOVA_THP_MADVISE;
	return MOVA_THP_NEVER;
}

unsigned mv_os_thp_system(void)
{
	/* 0: not read yet; else the setting + 1. Racing first readers read
	 * the same file and store the same value. */
	static _Atomic unsigned cached;
	unsigned c = atomic_load_explicit(&cached, memory_order_relaxed);
	if (c)
		return c - 1;
	char buf[128];
	unsigned v = MOVA_THP_NEVER;
	int saved = errno;
	if (read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf) > 0)
		v = parse_thp_enabled(buf);
	errno = saved;
	atomic_store_explicit(&cached, v + 1, memory_order_relaxed);
	return v;
}

int mv_os_hugepage(void *p, size_t len, enum mv_os_advice advice)
{
	int err = fault(MV_OS_ADVISE, len);
	if (err)
		return err;
	int adv = advice == MV_OS_HUGE     ? MADV_HUGEPAGE
		  : advice == MV_OS_NOHUGE ? MADV_NOHUGEPAGE
					   : MADV_COLLAPSE;
	int saved = errno;
	err = madvise(p, len, adv) ? errno : 0;
	errno = saved;
	return err;
}

size_t mv_os_anon_huge_bytes(void)
{
	char buf[4096];
	int saved = errno;
	ssize_t n = read_small("/proc/self/smaps_rollup", buf, sizeof buf);
	errno = saved;
	if (n <= 0)
		return 0;
	const char *l = strstr(buf, "\nAnonHugePages:");
	if (!l)
		return 0;
	l += strlen("\nAnonHugePages:");
	while (*l == ' ' || *l == '\t')
		l++;
	size_t kb = 0;
	for (; *l >= '0' && *l <= '9'; l++)
		kb = kb * 10 + (size_t)(*l - '0');
	return kb << 10;
}
