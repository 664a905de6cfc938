/* SPDX-License-Identifier: MIT */
/*
 * probe.h: run tests/objects/conf_probe (next to the running test) with
 * MOVA_CONF set to a setting, or unset, and take its stdout and stderr.
 * Include after Criterion (or cr_standalone.c) and capture.h.
 */
#ifndef MV_TEST_PROBE_H
#define MV_TEST_PROBE_H

#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* conf_probe, next to this program */
static inline const char *conf_probe_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
	cr_assert_gt(n, 0);
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	cr_assert_not_null(slash);
	strcpy(slash + 1, "conf_probe");
	return path;
}

/* Run conf_probe with MOVA_CONF=conf (unset for NULL); it must exit 0.
 * Its stdout into out, its stderr into err (both NUL-terminated). */
static inline void conf_probe_run(const char *conf, char *out, size_t outcap, char *err,
				  size_t errcap)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + 2, sizeof *envp);
	cr_assert_not_null(envp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "MOVA_CONF=", 10))
			envp[k++] = environ[i];
	char *setting = NULL;
	if (conf) {
		setting = malloc(strlen(conf) + 16);
		cr_assert_not_null(setting);
		sprintf(setting, "MOVA_CONF=%s", conf);
		envp[k++] = setting;
	}
	envp[k] = NULL;
	FILE *outf = tmpfile(), *errf = tmpfile();
	cr_assert(outf && errf);
	posix_spawn_file_actions_t fa;
	cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
	cr_assert_eq(posix_spawn_file_actions_adddup2(&fa, fileno(outf), STDOUT_FILENO), 0);
	cr_assert_eq(posix_spawn_file_actions_adddup2(&fa, fileno(errf), STDERR_FILENO), 0);
	const char *path = conf_probe_path();
	char *argv[] = {(char *)path, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, path, &fa, NULL, argv, envp);
	cr_assert_eq(rc, 0, "posix_spawn %s: %s", path, strerror(rc));
	posix_spawn_file_actions_destroy(&fa);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	read_all(outf, out, outcap);
	read_all(errf, err, errcap);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "MOVA_CONF=%s: conf_probe status %#x; stdout: %s; stderr: %s", conf, status, out,
		  err);
	free(setting);
	free(envp);
}

#endif
