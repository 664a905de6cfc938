/* SPDX-License-Identifier: MIT */
/*
 * gbench.h: a C interface to Google Benchmark (Debian's libbenchmark 1.7.1,
 * which has none), so that every benchmark body in bench/ is plain C. The
 * C++ side is gbench.cc; it is the only C++ in the suite.
 *
 * A benchmark is a C function taking the run's state and the pointer given
 * at registration:
 *
 *	static void bm_pairs(gb_state *st, void *arg)
 *	{
 *		size_t n = (size_t)gb_state_arg(st, 0);
 *		while (gb_keep_running_batch(st, 64))
 *			for (int i = 0; i < 64; i++) {
 *				void *p = malloc(n);
 *				gb_do_not_optimize(p);
 *				free(p);
 *			}
 *		gb_set_items_processed(st, gb_state_iterations(st));
 *	}
 *	...
 *	gb_range(gb_register("pairs", bm_pairs, NULL), 16, 4096);
 *	return gb_main(argc, argv);
 *
 * One call of gb_keep_running costs about 1.4 ns (it is out of line, in
 * C++); for operations of a few nanoseconds use gb_keep_running_batch,
 * which counts n iterations per call and may overshoot by up to n.
 *
 * Facts about the library version: --benchmark_min_time takes a plain
 * number of seconds (no 's' suffix); threads are created anew for every
 * run, so per-thread state belongs inside the body; multi-threaded
 * benchmarks should use real time (gb_use_real_time). The library prints
 * "built as DEBUG" for Debian's package; that is a property of the package.
 *
 * The builder functions return their first argument so calls can be
 * nested; they must be called before gb_main.
 */
#ifndef MOVA_GBENCH_H
#define MOVA_GBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_state gb_state;         /* benchmark::State */
typedef struct gb_benchmark gb_benchmark; /* benchmark::internal::Benchmark */
typedef void (*gb_fn)(gb_state *st, void *arg);

/* ------------------------------------------------------------ registering */

/* Register fn under name (copied). arg is passed to every run. */
gb_benchmark *gb_register(const char *name, gb_fn fn, void *arg);

gb_benchmark *gb_arg(gb_benchmark *b, int64_t x);
/* One set of n arguments (read back with gb_state_arg(st, 0..n-1)). */
gb_benchmark *gb_args(gb_benchmark *b, const int64_t *v, size_t n);
gb_benchmark *gb_args2(gb_benchmark *b, int64_t x, int64_t y);
/* lo, lo*mult, ..., hi (mult 8 unless gb_range_multiplier says otherwise) */
gb_benchmark *gb_range(gb_benchmark *b, int64_t lo, int64_t hi);
gb_benchmark *gb_range_multiplier(gb_benchmark *b, int mult);
gb_benchmark *gb_dense_range(gb_benchmark *b, int64_t lo, int64_t hi, int step);
/* Names shown in the benchmark's name for each argument ("size:64"). */
gb_benchmark *gb_arg_name(gb_benchmark *b, const char *name);
gb_benchmark *gb_arg_names(gb_benchmark *b, const char *const *names, size_t n);

gb_benchmark *gb_threads(gb_benchmark *b, int n);
gb_benchmark *gb_thread_range(gb_benchmark *b, int lo, int hi);
gb_benchmark *gb_use_real_time(gb_benchmark *b);
/* The body reports each iteration's time with gb_set_iteration_time. */
gb_benchmark *gb_use_manual_time(gb_benchmark *b);
gb_benchmark *gb_iterations(gb_benchmark *b, int64_t n);
gb_benchmark *gb_min_time(gb_benchmark *b, double seconds);
gb_benchmark *gb_repetitions(gb_benchmark *b, int n);

enum gb_unit { GB_NS, GB_US, GB_MS, GB_S };
gb_benchmark *gb_unit(gb_benchmark *b, enum gb_unit u);

/* Context printed with the results and written into the JSON "context". */
void gb_add_context(const char *key, const char *value);

/* Initialize (consumes the library's --benchmark_* flags), complain about
 * unknown flags (exit 1), run every registered benchmark, shut down.
 * Returns 0, or 1 when a benchmark reported an error. */
int gb_main(int argc, char **argv);

/* ------------------------------------------------------------ in the body */

bool gb_keep_running(gb_state *st);
/* True while n more iterations should run; n > 0. */
bool gb_keep_running_batch(gb_state *st, int64_t n);

/* The i-th argument of this run (gb_arg, gb_args, gb_range ...). */
int64_t gb_state_arg(const gb_state *st, size_t i);
int gb_thread_index(const gb_state *st);
int gb_thread_count(const gb_state *st);
/* Iterations completed so far by this thread (the total once the loop ends). */
int64_t gb_state_iterations(const gb_state *st);

/* Stop the clock around setup inside the loop; both are costly (~µs). */
void gb_pause_timing(gb_state *st);
void gb_resume_timing(gb_state *st);
/* With gb_use_manual_time: the time one iteration took. */
void gb_set_iteration_time(gb_state *st, double seconds);

/* items_per_second and bytes_per_second, summed over threads */
void gb_set_items_processed(gb_state *st, int64_t items);
void gb_set_bytes_processed(gb_state *st, int64_t bytes);

/* Counter flags, as benchmark::Counter::Flags */
enum gb_counter_flags {
	GB_COUNTER_DEFAULT = 0,
	GB_COUNTER_RATE = 1 << 0,                /* divided by the run's time */
	GB_COUNTER_AVG_THREADS = 1 << 1,         /* divided by the number of threads */
	GB_COUNTER_ITERATION_INVARIANT = 1 << 2, /* multiplied by the iterations */
	GB_COUNTER_AVG_ITERATIONS = 1 << 3,      /* divided by the iterations */
	GB_COUNTER_INVERT = 1 << 31,
};
/* Set (replace) a user counter; the values of all threads are summed
 * unless flags say otherwise. */
void gb_counter(gb_state *st, const char *name, double value, int flags);
void gb_set_label(gb_state *st, const char *label);
/* Report an error: the run is marked errored and its results discarded.
 * The loop ends at the next gb_keep_running; the body should return. */
void gb_skip_with_error(gb_state *st, const char *msg);
bool gb_error_occurred(const gb_state *st);

/* ------------------------------------------------------------ barriers */

/* Make the compiler believe p (the value, and the memory it may reach) is
 * used, so free(malloc(n)) is not deleted. As benchmark::DoNotOptimize. */
#define gb_do_not_optimize(v) __asm__ volatile("" : : "r,m"(v) : "memory")
/* Make the compiler believe all memory was read and written. */
#define gb_clobber_memory() __asm__ volatile("" : : : "memory")

#ifdef __cplusplus
}
#endif
#endif
