/* SPDX-License-Identifier: MIT */
/* diag.c: see diag.h. Formats with vsnprintf into a stack buffer (glibc's
 * vsnprintf does not allocate for the integer, pointer and string
 * conversions used here) and writes with write(2). */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void (*abort_fn)(void);
static _Atomic uint64_t invalid_count;

static void vsay(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "%s", prefix);
	if (n < 0)
		n = 0;
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	if (m < 0)
		m = 0;
	size_t len = MV_MIN((size_t)n + (size_t)m, sizeof buf - 2);
	buf[len++] = '\n';
	ssize_t r = write(STDERR_FILENO, buf, len);
	(void)r;
}

void mv_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("mova: fatal: ", fmt, ap);
	va_end(ap);
	if (abort_fn)
		abort_fn();
	abort();
}

void mv_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("mova: ", fmt, ap);
	va_end(ap);
}

void mv_warn_once(_Atomic int *done, const char *fmt, ...)
{
	if (atomic_exchange(done, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsay("mova: ", fmt, ap);
	va_end(ap);
}

void mv_report_invalid(const char *what, const char *func, const void *ptr)
{
	if (atomic_fetch_add(&invalid_count, 1) == 0)
		mv_warn("%s: %s %p was not handed out by mova or was already freed; left alone "
			"(further reports are counted, not printed)",
			func, what, ptr);
}

uint64_t mv_diag_invalid_count(void)
{
	return atomic_load(&invalid_count);
}

void mv_diag_set_abort(void (*fn)(void))
{
	abort_fn = fn;
}
