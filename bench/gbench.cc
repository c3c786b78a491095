// SPDX-License-Identifier: MIT
// gbench.cc - the C shim's implementation: thin casts onto Google Benchmark.
#include "gbench.h"

#include <benchmark/benchmark.h>

namespace {
benchmark::State &S(gb_state *st)
{
	return *reinterpret_cast<benchmark::State *>(st);
}
benchmark::internal::Benchmark *B(gb_bench *b)
{
	return reinterpret_cast<benchmark::internal::Benchmark *>(b);
}
gb_bench *C(benchmark::internal::Benchmark *b)
{
	return reinterpret_cast<gb_bench *>(b);
}
} // namespace

extern "C" {

gb_bench *gb_register(const char *name, gb_fn fn, void *arg)
{
	return C(benchmark::RegisterBenchmark(
		name, [fn, arg](benchmark::State &st) { fn(reinterpret_cast<gb_state *>(&st), arg); }));
}

gb_bench *gb_arg(gb_bench *b, int64_t a)
{
	return C(B(b)->Arg(a));
}

gb_bench *gb_args2(gb_bench *b, int64_t a0, int64_t a1)
{
	return C(B(b)->Args({a0, a1}));
}

gb_bench *gb_threads(gb_bench *b, int n)
{
	return C(B(b)->Threads(n));
}

gb_bench *gb_iterations(gb_bench *b, int64_t n)
{
	return C(B(b)->Iterations(n));
}

gb_bench *gb_repetitions(gb_bench *b, int n)
{
	return C(B(b)->Repetitions(n));
}

gb_bench *gb_min_time(gb_bench *b, double seconds)
{
	return C(B(b)->MinTime(seconds));
}

gb_bench *gb_real_time(gb_bench *b)
{
	return C(B(b)->UseRealTime());
}

gb_bench *gb_unit_us(gb_bench *b)
{
	return C(B(b)->Unit(benchmark::kMicrosecond));
}

bool gb_keep_running(gb_state *st)
{
	return S(st).KeepRunning();
}

int64_t gb_arg_of(gb_state *st, int i)
{
	return S(st).range(static_cast<size_t>(i));
}

int64_t gb_iterations_done(gb_state *st)
{
	return static_cast<int64_t>(S(st).iterations());
}

void gb_pause(gb_state *st)
{
	S(st).PauseTiming();
}

void gb_resume(gb_state *st)
{
	S(st).ResumeTiming();
}

void gb_items(gb_state *st, int64_t n)
{
	S(st).SetItemsProcessed(n);
}

void gb_counter(gb_state *st, const char *name, double value)
{
	S(st).counters[name] = benchmark::Counter(value, benchmark::Counter::kAvgThreads);
}

void gb_label(gb_state *st, const char *label)
{
	S(st).SetLabel(label);
}

void gb_skip(gb_state *st, const char *why)
{
	S(st).SkipWithError(why);
}

int gb_thread_index(gb_state *st)
{
	return static_cast<int>(S(st).thread_index());
}

int gb_nthreads(gb_state *st)
{
	return static_cast<int>(S(st).threads());
}

int gb_main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
}
