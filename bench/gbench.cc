// SPDX-License-Identifier: MIT
// gbench.cc: the C wrapper over Google Benchmark declared in gbench.h. The
// opaque C types are the library's own classes; every function is a thin
// forwarding call. Written against Debian's libbenchmark 1.7.1.
#include "gbench.h"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

using benchmark::State;
using benchmark::internal::Benchmark;

static State *S(gb_state *st)
{
	return reinterpret_cast<State *>(st);
}
static const State *S(const gb_state *st)
{
	return reinterpret_cast<const State *>(st);
}
static Benchmark *B(gb_benchmark *b)
{
	return reinterpret_cast<Benchmark *>(b);
}
static gb_benchmark *C(Benchmark *b)
{
	return reinterpret_cast<gb_benchmark *>(b);
}

static std::atomic<bool> errors; // some run called gb_skip_with_error

extern "C" {

gb_benchmark *gb_register(const char *name, gb_fn fn, void *arg)
{
	return C(benchmark::RegisterBenchmark(
	    name, [fn, arg](State &st) { fn(reinterpret_cast<gb_state *>(&st), arg); }));
}

gb_benchmark *gb_arg(gb_benchmark *b, int64_t x)
{
	B(b)->Arg(x);
	return b;
}

gb_benchmark *gb_args(gb_benchmark *b, const int64_t *v, size_t n)
{
	B(b)->Args(std::vector<int64_t>(v, v + n));
	return b;
}

gb_benchmark *gb_args2(gb_benchmark *b, int64_t x, int64_t y)
{
	B(b)->Args({x, y});
	return b;
}

gb_benchmark *gb_range(gb_benchmark *b, int64_t lo, int64_t hi)
{
	B(b)->Range(lo, hi);
	return b;
}

gb_benchmark *gb_range_multiplier(gb_benchmark *b, int mult)
{
	B(b)->RangeMultiplier(mult);
	return b;
}

gb_benchmark *gb_dense_range(gb_benchmark *b, int64_t lo, int64_t hi, int step)
{
	B(b)->DenseRange(lo, hi, step);
	return b;
}

gb_benchmark *gb_arg_name(gb_benchmark *b, const char *name)
{
	B(b)->ArgName(name);
	return b;
}

gb_benchmark *gb_arg_names(gb_benchmark *b, const char *const *names, size_t n)
{
	B(b)->ArgNames(std::vector<std::string>(names, names + n));
	return b;
}

gb_benchmark *gb_threads(gb_benchmark *b, int n)
{
	B(b)->Threads(n);
	return b;
}

gb_benchmark *gb_thread_range(gb_benchmark *b, int lo, int hi)
{
	B(b)->ThreadRange(lo, hi);
	return b;
}

gb_benchmark *gb_use_real_time(gb_benchmark *b)
{
	B(b)->UseRealTime();
	return b;
}

gb_benchmark *gb_use_manual_time(gb_benchmark *b)
{
	B(b)->UseManualTime();
	return b;
}

gb_benchmark *gb_iterations(gb_benchmark *b, int64_t n)
{
	B(b)->Iterations(n);
	return b;
}

gb_benchmark *gb_min_time(gb_benchmark *b, double seconds)
{
	B(b)->MinTime(seconds);
	return b;
}

gb_benchmark *gb_repetitions(gb_benchmark *b, int n)
{
	B(b)->Repetitions(n);
	return b;
}

gb_benchmark *gb_unit(gb_benchmark *b, enum gb_unit u)
{
	static const benchmark::TimeUnit units[] = {benchmark::kNanosecond, benchmark::kMicrosecond,
						    benchmark::kMillisecond, benchmark::kSecond};
	B(b)->Unit(units[u]);
	return b;
}

void gb_add_context(const char *key, const char *value)
{
	benchmark::AddCustomContext(key, value);
}

int gb_main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return errors.load() ? 1 : 0;
}

bool gb_keep_running(gb_state *st)
{
	return S(st)->KeepRunning();
}

bool gb_keep_running_batch(gb_state *st, int64_t n)
{
	return S(st)->KeepRunningBatch(n);
}

int64_t gb_state_arg(const gb_state *st, size_t i)
{
	return S(st)->range(i);
}

int gb_thread_index(const gb_state *st)
{
	return S(st)->thread_index();
}

int gb_thread_count(const gb_state *st)
{
	return S(st)->threads();
}

int64_t gb_state_iterations(const gb_state *st)
{
	return S(st)->iterations();
}

void gb_pause_timing(gb_state *st)
{
	S(st)->PauseTiming();
}

void gb_resume_timing(gb_state *st)
{
	S(st)->ResumeTiming();
}

void gb_set_iteration_time(gb_state *st, double seconds)
{
	S(st)->SetIterationTime(seconds);
}

void gb_set_items_processed(gb_state *st, int64_t items)
{
	S(st)->SetItemsProcessed(items);
}

void gb_set_bytes_processed(gb_state *st, int64_t bytes)
{
	S(st)->SetBytesProcessed(bytes);
}

void gb_counter(gb_state *st, const char *name, double value, int flags)
{
	S(st)->counters[name] =
	    benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(flags));
}

void gb_set_label(gb_state *st, const char *label)
{
	S(st)->SetLabel(label);
}

void gb_skip_with_error(gb_state *st, const char *msg)
{
	errors.store(true);
	S(st)->SkipWithError(msg);
}

bool gb_error_occurred(const gb_state *st)
{
	return S(st)->error_occurred();
}

} // extern "C"
