/* SPDX-License-Identifier: MIT */
/*
 * cmd_replay.c - `hugeperm replay FILE [--policy all|NAME,...]
 * [--format table|json|markdown] [--collapse deferred|sync] [--real]`:
 * a trace replayed under the simulated grouping policies (sim/), their
 * splits, collapses, blocks and coverage side by side; with --real, also
 * against the real library, with the kernel's own counters
 * (thp_split_pmd, thp_collapse_alloc) read around it.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hugeperm.h>

#include "sim.h"
#include "tools.h"

/* The kernel's counter @key from /proc/vmstat; 0 if it has none. */
static uint64_t vmstat(const char *key)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char name[64];
	unsigned long long v;
	uint64_t out = 0;
	while (f && fscanf(f, "%63s %llu", name, &v) == 2)
		if (!strcmp(name, key))
			out = v;
	if (f)
		fclose(f);
	return out;
}

/* The trace against the real library; the kernel's counts in @r. */
static int replay_real(const struct sim_trace *t, struct sim_result *r, uint64_t *lib_splits,
		       uint64_t *lib_collapses)
{
	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.collapse_mode = HP_COLLAPSE_SYNC,
				.flags = HP_ARENA_ALLOW_RWX | HP_ARENA_NO_ALIAS};
	struct hp_arena *a = hp_arena_create(&cfg);
	if (!a)
		return tool_fail("hp_arena_create (THP backend)", errno);
	struct sim_options o = {.map_at = -1};
	uint64_t s0 = vmstat("thp_split_pmd"), c0 = vmstat("thp_collapse_alloc");
	int err = sim_run_arena(t, a, &o, r);
	uint64_t s1 = vmstat("thp_split_pmd"), c1 = vmstat("thp_collapse_alloc");
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	*lib_splits = st.splits;
	*lib_collapses = st.collapses;
	hp_arena_destroy(a);
	if (err)
		return tool_fail("replay --real", err);
	snprintf(r->policy, sizeof(r->policy), "real");
	r->splits = s1 - s0;
	r->collapses = c1 - c0;
	return 0;
}

/* @v scaled (a percentage with "%" when @scale is 100), or @none if v < 0. */
static const char *pct(double v, const char *none, int scale)
{
	static char buf[4][32];
	static int k;
	if (v < 0)
		return none;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), scale == 100 ? "%.1f%%" : "%.4f", v * scale);
	return buf[k];
}

static void print_results(const struct sim_result *r, int n, const char *format, const char *name,
			  const struct sim_trace *t, FILE *out)
{
	double span_ms = t->n ? (double)(t->ev[t->n - 1].t_ns - t->ev[0].t_ns) / 1e6 : 0;
	if (!strcmp(format, "json")) {
		fprintf(out,
			"{\"trace\": \"%s\", \"comm\": \"%s\", \"events\": %zu, "
			"\"span_ms\": %.3f, \"policies\": [",
			name, t->h.comm, t->n, span_ms);
		for (int k = 0; k < n; k++)
			fprintf(out,
				"%s\n  {\"policy\": \"%s\", \"splits\": %" PRIu64
				", \"collapses\": %" PRIu64 ", \"blocks_peak\": %" PRIu64
				", \"blocks_avg\": %.2f, \"coverage_avg\": %.4f, "
				"\"coverage_end\": %s, \"coverage_min\": %.4f, "
				"\"live_peak_pages\": %" PRIu64 ", \"syscalls\": %" PRIu64
				", \"mmap\": %" PRIu64 ", \"mprotect\": %" PRIu64
				", \"munmap\": %" PRIu64 ", \"madvise\": %" PRIu64
				", \"copies\": %" PRIu64 ", \"alias_writes\": %" PRIu64
				", \"ignored\": %" PRIu64 ", \"areas_served\": %" PRIu64
				", \"heap_chunks_passed\": %" PRIu64
				", \"served_blocks_peak\": %" PRIu64
				", \"served_blocks_end\": %" PRIu64 "}",
				k ? "," : "", r[k].policy, r[k].splits, r[k].collapses,
				r[k].blocks_peak, r[k].blocks_avg, r[k].coverage_avg,
				pct(r[k].coverage_end, "null", 1), r[k].coverage_min,
				r[k].live_peak_pages, r[k].syscalls, r[k].n_mmap, r[k].n_mprotect,
				r[k].n_munmap, r[k].n_madvise, r[k].n_copy, r[k].n_alias,
				r[k].ignored, r[k].n_areas, r[k].n_grown, r[k].served_blocks_peak,
				r[k].served_blocks_end);
		fputs("\n]}\n", out);
		return;
	}
	bool md = !strcmp(format, "markdown");
	if (md) {
		fputs("| policy | splits | collapses | blocks peak | blocks avg | coverage avg | "
		      "coverage end | syscalls | copies |\n"
		      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
		      out);
	} else {
		fprintf(out, "%s: %s, %zu events over %.1f ms, %" PRIu64 " ignored\n", name,
			t->h.comm[0] ? t->h.comm : "?", t->n, span_ms, n ? r[0].ignored : 0);
		fprintf(out, "%-14s %8s %9s %6s %7s %8s %8s %9s %7s\n", "policy", "splits",
			"collapses", "blocks", "avg", "coverage", "at end", "syscalls", "copies");
	}
	for (int k = 0; k < n; k++)
		if (!strcmp(r[k].policy, "real")) /* the kernel's counts, no model */
			fprintf(out,
				md ? "| %s (kernel) | %" PRIu64 " | %" PRIu64 " | | | | | | |\n"
				   : "%-14s %8" PRIu64 " %9" PRIu64 "\n",
				"real", r[k].splits, r[k].collapses);
		else
			fprintf(out,
				md ? "| %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64
				     " | %.1f | %.1f%% | "
				     "%s | %" PRIu64 " | %" PRIu64 " |\n"
				   : "%-14s %8" PRIu64 " %9" PRIu64 " %6" PRIu64
				     " %7.1f %7.1f%% %8s "
				     "%9" PRIu64 " %7" PRIu64 "\n",
				r[k].policy, r[k].splits, r[k].collapses, r[k].blocks_peak,
				r[k].blocks_avg, 100 * r[k].coverage_avg,
				pct(r[k].coverage_end, "-", 100), r[k].syscalls, r[k].n_copy);
}

int cmd_replay(int argc, char **argv)
{
	const char *file = NULL, *format = "table", *list = "all";
	int collapse = 0;
	bool real = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v;
		if (!strcmp(a, "--policy") || !strcmp(a, "--format") || !strcmp(a, "--collapse")) {
			if (!(v = tool_value(argc, argv, &i)))
				return 2;
			if (!strcmp(a, "--policy")) {
				list = v;
			} else if (!strcmp(a, "--format")) {
				if (strcmp(v, "table") && strcmp(v, "json") &&
				    strcmp(v, "markdown")) {
					fprintf(stderr,
						"hugeperm: --format %s: table, json or "
						"markdown (EINVAL)\n",
						v);
					return 2;
				}
				format = v;
			} else {
				collapse = hp_collapse_mode_parse(v);
				if (collapse != HP_COLLAPSE_DEFERRED &&
				    collapse != HP_COLLAPSE_SYNC) {
					fprintf(stderr,
						"hugeperm: --collapse %s: deferred or sync "
						"(EINVAL)\n",
						v);
					return 2;
				}
			}
		} else if (!strcmp(a, "--real")) {
			real = true;
		} else if (a[0] == '-' || file) {
			fprintf(stderr, "hugeperm: replay: unexpected argument %s (EINVAL)\n", a);
			return 2;
		} else {
			file = a;
		}
	}
	const char *names[16];
	int n;
	if (!file) {
		fputs("hugeperm: replay: usage: hugeperm replay FILE [--policy all|NAME,...] "
		      "[--format table|json|markdown] [--collapse deferred|sync] [--real] "
		      "(EINVAL)\n",
		      stderr);
		return 2;
	}
	if (!tool_policies(list, names, &n))
		return 2;
	struct sim_trace t;
	int rc = tool_load_trace(file, &t);
	if (rc)
		return rc;
	struct sim_result r[17];
	struct sim_options o = {.collapse_mode = collapse, .map_at = -1};
	int nr = 0;
	for (int k = 0; k < n; k++, nr++) {
		int err = sim_run(&t, names[k], &o, &r[nr]);
		if (err) {
			for (int j = 0; j <= k; j++)
				sim_result_free(&r[j]);
			sim_trace_free(&t);
			return tool_sim_fail(file, names[k], err);
		}
	}
	uint64_t lib_splits = 0, lib_collapses = 0;
	if (real) {
		rc = replay_real(&t, &r[nr], &lib_splits, &lib_collapses);
		if (rc) {
			sim_trace_free(&t);
			return rc;
		}
		nr++;
	}
	const char *base = strrchr(file, '/');
	print_results(r, nr, format, base ? base + 1 : file, &t, stdout);
	if (real && strcmp(format, "json"))
		printf("real: the kernel's thp_split_pmd and thp_collapse_alloc over the replay "
		       "(the library counted %" PRIu64 " splits, %" PRIu64 " collapses)\n",
		       lib_splits, lib_collapses);
	for (int k = 0; k < nr; k++)
		sim_result_free(&r[k]);
	sim_trace_free(&t);
	return 0;
}
