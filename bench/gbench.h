/* SPDX-License-Identifier: MIT */
/*
 * gbench.h - a small C API over Google Benchmark, so that the benchmarks
 * are written in C.  Built against Debian's libbenchmark-dev 1.7.1 and kept
 * to calls that 1.9 still has.
 *
 *	static void bm(gb_state *st, void *arg)
 *	{
 *		while (gb_keep_running(st))
 *			work(gb_arg_of(st, 0));
 *		gb_items(st, gb_iterations_done(st));
 *	}
 *	gb_arg(gb_register("case/peer", bm, NULL), 16);
 *	return gb_main(argc, argv);
 */
#ifndef HP_GBENCH_H
#define HP_GBENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_state gb_state; /* benchmark::State */
typedef struct gb_bench gb_bench; /* benchmark::internal::Benchmark */
typedef void (*gb_fn)(gb_state *st, void *arg);

/* Registration; each returns @b for chaining. */
gb_bench *gb_register(const char *name, gb_fn fn, void *arg);
gb_bench *gb_arg(gb_bench *b, int64_t a);
gb_bench *gb_args2(gb_bench *b, int64_t a0, int64_t a1);
gb_bench *gb_threads(gb_bench *b, int n);
gb_bench *gb_iterations(gb_bench *b, int64_t n);
gb_bench *gb_repetitions(gb_bench *b, int n);
gb_bench *gb_min_time(gb_bench *b, double seconds);
gb_bench *gb_real_time(gb_bench *b);
gb_bench *gb_unit_us(gb_bench *b);

/* Inside a benchmark. */
bool gb_keep_running(gb_state *st);
int64_t gb_arg_of(gb_state *st, int i);
int64_t gb_iterations_done(gb_state *st);
void gb_pause(gb_state *st);
void gb_resume(gb_state *st);
void gb_items(gb_state *st, int64_t n);
/* A user counter, reported as is (or averaged over threads). */
void gb_counter(gb_state *st, const char *name, double value);
void gb_label(gb_state *st, const char *label);
void gb_skip(gb_state *st, const char *why);
int gb_thread_index(gb_state *st);
int gb_nthreads(gb_state *st);

/* Initialize, run what the command line selects, shut down. */
int gb_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
