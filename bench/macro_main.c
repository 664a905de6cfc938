/* SPDX-License-Identifier: MIT */
/*
 * macro_main.c: the macro suite's executable, one per allocator (alloc.h):
 * the fragmentation workload, the server-like workload and allocation
 * latency. Their sizes follow BENCH_SCALE; BENCH_SERIES_DIR receives the
 * resident-memory series.
 */
#include "macro.h"

int main(int argc, char **argv)
{
	bm_init();
	bm_register_macro_frag();
	bm_register_macro_server();
	bm_register_macro_latency();
	return gb_main(argc, argv);
}
