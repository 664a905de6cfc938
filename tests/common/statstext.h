/* SPDX-License-Identifier: MIT */
/*
 * statstext.h: the default arena's statistics as mova_stats_print writes
 * them, and one line's value: for counters mova_stats does not carry
 * (invalid_frees is process-wide). Include after Criterion (or
 * cr_standalone.c) and mova.h.
 */
#ifndef MV_TEST_STATSTEXT_H
#define MV_TEST_STATSTEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mova_stats_print's text; free() it. Not inlined: gcc 12 then takes the
 * text for the local pointer open_memstream filled in (a false
 * -Wdangling-pointer). */
static __attribute__((noinline, unused)) char *stats_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert(f);
	mova_stats_print(mova_default_arena(), f);
	fclose(f);
	return buf;
}

/* the value of the line "name N" of a stats text */
static inline unsigned long stat_value(const char *text, const char *name)
{
	char key[64];
	int klen = snprintf(key, sizeof key, "\n%s ", name);
	const char *at = strstr(text, key);
	cr_assert(at, "mova_stats_print has no '%s' line:\n%s", name, text);
	return strtoul(at + klen, NULL, 10);
}

#endif
