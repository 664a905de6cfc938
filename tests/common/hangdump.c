/* SPDX-License-Identifier: MIT */
/*
 * hangdump.c: every test program prints the stack of every thread when it
 * times out, so that a hang seen once in CI can be read from the log
 * (docs/RELIABILITY.md, "When a test hangs").
 *
 * Two ways in:
 *  - Criterion's timeout (a Test's or TestSuite's .timeout): the runner
 *    sends SIGPROF to the worker process running the test. The handler
 *    installed here prints the stacks, then dies of SIGPROF as the worker
 *    would have, and Criterion reports "Timed out" as before.
 *  - The watchdog, for what has no Criterion timeout (tests without one,
 *    and the programs built against cr_standalone.c under ThreadSanitizer,
 *    which only meson's timeout stops): MOVA_HANGDUMP_SECONDS after the
 *    worker (or the standalone program) started, 280 s unless set, a timer
 *    sends SIGPROF to the process; the stacks are printed and the program
 *    goes on, so that meson's own timeout (300 s for these programs) kills
 *    it with the stacks already in its log. With a meson timeout
 *    multiplier, set MOVA_HANGDUMP_SECONDS to match; 0 turns it off.
 *
 * The stacks come from gdb (-p, "thread apply all bt"), started from the
 * signal handler: only async-signal-safe calls there, nothing allocated,
 * and no fork handlers run (libmova's would take the allocator's locks,
 * which a hung thread may hold). MOVA_HANGDUMP_GDB names another gdb;
 * without one the handler says so and the timeout takes its course.
 * MOVA_HANGDUMP=0 disables all of it.
 *
 * Compiled into each Criterion test program (tests/meson.build: test_deps)
 * and included by cr_standalone.c, which defines MV_HANGDUMP_STANDALONE.
 */
#ifndef MV_HANGDUMP_C
#define MV_HANGDUMP_C

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MV_HANGDUMP_STANDALONE
#define MV_HANGDUMP_STANDALONE 0
#endif

extern char **environ;

#define HD_DEFAULT_SECONDS 280
#define HD_GDB_MAX_SECONDS 60 /* a gdb that hangs too is killed */

static char hd_gdb[4096];    /* absolute path of gdb, found at start */
static char hd_pid[24];      /* this process, for gdb -p */
static int hd_watchdog_tick; /* its address tags the watchdog's timer */
static volatile sig_atomic_t hd_dumped;

static void hd_write(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(2, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void hd_utoa(char *buf, size_t len, unsigned long v)
{
	char tmp[24];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof tmp);
	size_t i = 0;
	while (n && i + 1 < len)
		buf[i++] = tmp[--n];
	buf[i] = 0;
}

/* a child that runs no fork handlers: _Fork where glibc has it */
static pid_t hd_fork(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	return _Fork();
#else
	return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
#endif
}

/* Print every thread's stack (async-signal-safe). */
static void mv_hangdump(const char *why)
{
	int saved = errno;
	hd_write("\n==== hangdump, pid ");
	hd_write(hd_pid);
	hd_write(": ");
	hd_write(why);
	hd_write("; the stacks of all its threads follow ====\n");
	if (!hd_gdb[0]) {
		hd_write("==== hangdump: no gdb found (PATH, MOVA_HANGDUMP_GDB): no stacks ====\n");
		errno = saved;
		return;
	}
	/* Yama (ptrace_scope 1) lets only an ancestor attach unless told */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	char *argv[] = {hd_gdb,
			"-nx",
			"-batch",
			"-p",
			hd_pid,
			"-iex",
			"set debuginfod enabled off",
			"-iex",
			"set print thread-events off",
			"-ex",
			"set pagination off",
			"-ex",
			"thread apply all bt",
			NULL};
	pid_t pid = hd_fork();
	if (pid == 0) {
		dup2(2, 1);
		execve(hd_gdb, argv, environ);
		_exit(127);
	}
	if (pid < 0) {
		hd_write("==== hangdump: fork failed: no stacks ====\n");
		errno = saved;
		return;
	}
	int status;
	for (int i = 0; i < HD_GDB_MAX_SECONDS * 20; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			goto done;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	hd_write("==== hangdump: gdb did not finish: killed ====\n");
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
done:
	hd_write("==== hangdump: end ====\n");
	errno = saved;
}

static void hd_on_sigprof(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (si->si_code == SI_TIMER && si->si_value.sival_ptr == &hd_watchdog_tick) {
		/* the watchdog: print, and let meson's timeout decide */
		if (!hd_dumped) {
			hd_dumped = 1;
			mv_hangdump("still running after MOVA_HANGDUMP_SECONDS "
				    "(280 unless set); it goes on until meson's timeout");
		}
		return;
	}
	/* Criterion's timeout (or anybody's SIGPROF): print, then die of it */
	mv_hangdump("SIGPROF: the test timed out");
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool hd_find_gdb(void)
{
	const char *g = getenv("MOVA_HANGDUMP_GDB");
	if (g && *g) {
		if (strlen(g) >= sizeof hd_gdb || access(g, X_OK))
			return false;
		strcpy(hd_gdb, g);
		return true;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		if (n && n + sizeof "/gdb" <= sizeof hd_gdb) {
			memcpy(hd_gdb, path, n);
			memcpy(hd_gdb + n, "/gdb", sizeof "/gdb");
			if (!access(hd_gdb, X_OK))
				return true;
		}
		path += n + (end != NULL);
	}
	hd_gdb[0] = 0;
	return false;
}

static void hd_arm_watchdog(void)
{
	long secs = HD_DEFAULT_SECONDS;
	const char *e = getenv("MOVA_HANGDUMP_SECONDS");
	if (e && *e)
		secs = strtol(e, NULL, 10);
	if (secs <= 0)
		return;
	/* Criterion turns its own timeouts off under valgrind: so do we */
	const char *pre = getenv("LD_PRELOAD");
	if (pre && strstr(pre, "vgpreload"))
		return;
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGPROF;
	sev.sigev_value.sival_ptr = &hd_watchdog_tick;
	timer_t t;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t))
		return;
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = secs;
	timer_settime(t, 0, &its, NULL);
}

__attribute__((constructor)) static void hd_init(void)
{
	const char *e = getenv("MOVA_HANGDUMP");
	if (e && !strcmp(e, "0"))
		return;
	struct sigaction old;
	if (sigaction(SIGPROF, NULL, &old) || old.sa_handler != SIG_DFL)
		return; /* somebody profiles with SIGPROF: leave it alone */
	hd_utoa(hd_pid, sizeof hd_pid, (unsigned long)getpid());
	hd_find_gdb();
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = hd_on_sigprof;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPROF, &sa, NULL);
	/* the watchdog runs where the tests run: a Criterion worker
	 * (re-executed by BoxFort with BXFI_MAP set), or a standalone program */
	if (MV_HANGDUMP_STANDALONE || getenv("BXFI_MAP"))
		hd_arm_watchdog();
}

#endif
