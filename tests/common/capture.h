/* SPDX-License-Identifier: MIT */
/*
 * capture.h: everything written to fd 2 between capture_begin and
 * capture_end (mova reports with write(2) on fd 2), and read_all, a
 * stream's whole text. Include after Criterion (or cr_standalone.c).
 */
#ifndef MV_TEST_CAPTURE_H
#define MV_TEST_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

struct capture {
	int saved;
	FILE *f;
};

static inline void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->f = tmpfile();
	cr_assert_not_null(c->f);
	c->saved = dup(STDERR_FILENO);
	cr_assert_geq(c->saved, 0);
	cr_assert_geq(dup2(fileno(c->f), STDERR_FILENO), 0);
}

/* f's text from its start into buf (NUL-terminated); closes f */
static inline void read_all(FILE *f, char *buf, size_t n)
{
	rewind(f);
	size_t len = fread(buf, 1, n - 1, f);
	buf[len] = '\0';
	fclose(f);
}

static inline void capture_end(struct capture *c, char *buf, size_t n)
{
	fflush(stderr);
	cr_assert_geq(dup2(c->saved, STDERR_FILENO), 0);
	close(c->saved);
	read_all(c->f, buf, n);
}

#endif
