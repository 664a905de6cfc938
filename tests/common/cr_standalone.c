/* SPDX-License-Identifier: MIT */
/*
 * cr_standalone.c: the few Criterion macros the concurrency tests use, for
 * builds in which Criterion cannot run. Under ThreadSanitizer Criterion's
 * runner aborts before the first test ("Could not initialize inheritable
 * arena: Resource temporarily unavailable", Snaipe/Criterion#274: TSan
 * reserves the address range where BoxFort maps its arena). A test program
 * compiled with -DMV_CR_STANDALONE includes this file instead of
 * <criterion/criterion.h> and gets its own main(): every Test runs in the
 * process, in order of definition, and the first failed assertion prints
 * where and why and exits with status 1. Not a translation unit of its own.
 */
#ifndef MV_CR_STANDALONE_C
#define MV_CR_STANDALONE_C

/* the stacks of every thread when meson's timeout nears (hangdump.c) */
#define MV_HANGDUMP_STANDALONE 1
#include "hangdump.c"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mv_cr_test {
	const char *suite, *name;
	void (*fn)(void);
};

static struct mv_cr_test mv_cr_tests[64];
static unsigned mv_cr_ntests;

static void mv_cr_register(const char *suite, const char *name, void (*fn)(void))
{
	if (mv_cr_ntests == sizeof mv_cr_tests / sizeof mv_cr_tests[0]) {
		fprintf(stderr, "cr_standalone: too many tests\n");
		exit(2);
	}
	mv_cr_tests[mv_cr_ntests++] = (struct mv_cr_test){suite, name, fn};
}

__attribute__((format(printf, 4, 5), noreturn)) static void mv_cr_fail(const char *file, int line,
								       const char *expr,
								       const char *fmt, ...)
{
	fprintf(stderr, "%s:%d: Assertion failed: %s\n ", file, line, expr);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	exit(1);
}

/* the message, if any, is a format and its arguments; " " keeps it non-empty */
#define MV_CR_CHECK(cond, expr, ...)                                           \
	do {                                                                   \
		if (!(cond))                                                   \
			mv_cr_fail(__FILE__, __LINE__, expr, " " __VA_ARGS__); \
	} while (0)

#define cr_assert(c, ...) MV_CR_CHECK((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) MV_CR_CHECK(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) MV_CR_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) MV_CR_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) MV_CR_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) MV_CR_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) MV_CR_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) MV_CR_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) MV_CR_CHECK((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) MV_CR_CHECK((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define cr_assert_fail(...) MV_CR_CHECK(0, "cr_assert_fail", __VA_ARGS__)

/* Test(suite, name, options...): the options (.timeout ...) are ignored */
#define Test(suite, name, ...)                                              \
	static void suite##_##name(void);                                   \
	__attribute__((constructor)) static void suite##_##name##_reg(void) \
	{                                                                   \
		mv_cr_register(#suite, #name, suite##_##name);              \
	}                                                                   \
	static void suite##_##name(void)

/* TestSuite(name, .init = f, .fini = g, .timeout = s): fixtures per suite */
struct mv_cr_suite {
	void (*init)(void);
	void (*fini)(void);
	double timeout;
};

static struct {
	const char *name;
	struct mv_cr_suite cfg;
} mv_cr_suites[16];
static unsigned mv_cr_nsuites;

#define TestSuite(suite, ...)                                                                  \
	__attribute__((constructor)) static void mv_cr_suite_##suite(void)                     \
	{                                                                                      \
		if (mv_cr_nsuites < sizeof mv_cr_suites / sizeof mv_cr_suites[0]) {            \
			mv_cr_suites[mv_cr_nsuites].name = #suite;                             \
			mv_cr_suites[mv_cr_nsuites++].cfg = (struct mv_cr_suite){__VA_ARGS__}; \
		}                                                                              \
	}

static const struct mv_cr_suite *mv_cr_suite_of(const char *name)
{
	for (unsigned i = 0; i < mv_cr_nsuites; i++)
		if (!strcmp(mv_cr_suites[i].name, name))
			return &mv_cr_suites[i].cfg;
	return NULL;
}

int main(void)
{
	for (unsigned i = 0; i < mv_cr_ntests; i++) {
		const struct mv_cr_suite *cfg = mv_cr_suite_of(mv_cr_tests[i].suite);
		fprintf(stderr, "[RUN ] %s::%s\n", mv_cr_tests[i].suite, mv_cr_tests[i].name);
		if (cfg && cfg->init)
			cfg->init();
		mv_cr_tests[i].fn();
		if (cfg && cfg->fini)
			cfg->fini();
		fprintf(stderr, "[PASS] %s::%s\n", mv_cr_tests[i].suite, mv_cr_tests[i].name);
	}
	fprintf(stderr, "[====] Synthesis: Tested: %u | Passing: %u\n", mv_cr_ntests, mv_cr_ntests);
	return 0;
}

#endif
