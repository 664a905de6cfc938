/* SPDX-License-Identifier: MIT */
/*
 * conf_probe.c: a helper of test_badinput.c, not a test. The default arena
 * is configured from MOVA_CONF once per process, so the MOVA_CONF tests run
 * this program with a given MOVA_CONF and read what it prints. It creates
 * nothing itself: one mova_malloc creates the default arena (warnings about
 * MOVA_CONF go to stderr then), and stdout gets one line of what the
 * configuration became:
 *
 *   reserved_bytes=N (the limit, max_bytes) pageblock_order=N cma_pageblocks=N kcompactd_threads=N
 *   thp_mode=N thp_system=N (mova_stats': test_config reads them)
 *
 * kcompactd_threads counts this process's threads named "kcompactd" (the
 * default arena's background thread names itself so) after a wakeup: the
 * thread is started lazily, when there is work for it, and a wakeup is
 * work. Exit status 0, or 1 if mova_malloc failed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mova.h"

static int kcompactd_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[64], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%.20s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof comm, f) && !strcmp(comm, "kcompactd\n"))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

int main(void)
{
	void *p = mova_malloc(1);
	if (!p) {
		printf("mova_malloc failed\n");
		return 1;
	}
	mova_free(p);
	/* work for kcompactd: it starts if MOVA_CONF leaves it enabled, and
	 * names itself soon after */
	mova_kcompactd_wakeup(mova_default_arena(), 1);
	int threads = kcompactd_threads();
	for (int i = 0; i < 100 && threads == 0; i++) {
		usleep(5000);
		threads = kcompactd_threads();
	}
	mova_stats st;
	mova_stats_get(mova_default_arena(), &st);
	printf("reserved_bytes=%zu pageblock_order=%u cma_pageblocks=%llu kcompactd_threads=%d "
	       "thp_mode=%u thp_system=%u\n",
	       st.max_bytes, st.pageblock_order,
	       (unsigned long long)st.nr_pageblocks[MOVA_MIGRATE_CMA], threads, st.thp_mode,
	       st.thp_system);
	return 0;
}
