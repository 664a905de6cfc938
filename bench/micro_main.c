/* SPDX-License-Identifier: MIT */
/*
 * micro_main.c: the micro suite's executable (bench/meson.build builds one
 * per allocator from the same sources; see alloc.h).
 */
#include "alloc.h"

int main(int argc, char **argv)
{
	bm_init();
	bm_register_micro_malloc();
#ifdef BENCH_MOVA
	bm_register_micro_handle();
#endif
	return gb_main(argc, argv);
}
