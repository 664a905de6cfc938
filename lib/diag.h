/* SPDX-License-Identifier: MIT */
/*
 * diag.h: diagnostics that never allocate. Messages are formatted into a
 * stack buffer and written with write(2) to stderr. mv_fatal is the one
 * path for detected corruption: it names what it found and aborts (tests
 * may replace the abort with mv_diag_set_abort). Assertions come in levels:
 * MV_ASSERT is cheap and always on in debug builds; MV_ASSERT_EXPENSIVE
 * walks structures and runs only when MV_DEBUG_LEVEL >= 2.
 */
#ifndef MV_DIAG_H
#define MV_DIAG_H

#include "internal.h"

#ifndef MV_DEBUG_LEVEL
#define MV_DEBUG_LEVEL 0
#endif

__attribute__((format(printf, 1, 2), noreturn, cold)) void mv_fatal(const char *fmt, ...);
__attribute__((format(printf, 1, 2), cold)) void mv_warn(const char *fmt, ...);
/* Warn once per call site: pass a static flag. */
__attribute__((format(printf, 2, 3), cold)) void mv_warn_once(_Atomic int *done, const char *fmt,
							      ...);
/* Report a pointer or handle mova did not hand out (or already freed). The
 * first report of each kind prints; later ones only count. */
__attribute__((cold)) void mv_report_invalid(const char *what, const char *func, const void *ptr);
uint64_t mv_diag_invalid_count(void);

/* Test hook: called instead of abort() by mv_fatal; must not return (longjmp). */
void mv_diag_set_abort(void (*fn)(void));

#define MV_ASSERT(c)                                                                      \
	do {                                                                              \
		if (MV_DEBUG_LEVEL >= 1 && unlikely(!(c)))                                \
			mv_fatal("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); \
	} while (0)
#define MV_ASSERT_EXPENSIVE(c)                                                            \
	do {                                                                              \
		if (MV_DEBUG_LEVEL >= 2 && unlikely(!(c)))                                \
			mv_fatal("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); \
	} while (0)
/* A check that stays on in every build: the structure is corrupt. */
#define MV_BUG_ON(c, ...)                      \
	do {                                   \
		if (unlikely(c))               \
			mv_fatal(__VA_ARGS__); \
	} while (0)

#endif
