/* SPDX-License-Identifier: MIT */
/*
 * sim_cmds.c - the trace and simulator commands of `hugeperm`:
 *
 *   hugeperm record -o FILE [--serve KINDS] -- CMD [ARGS...]
 *   hugeperm dump FILE
 *   hugeperm replay FILE [--policy all|NAME[,NAME]] [--format table|json|markdown]
 *                        [--collapse deferred|sync] [--real]
 *   hugeperm synth -o FILE [--text] [--seed N] [--threads N] [--units N] ...
 *   hugeperm map FILE [--policy NAME] [--at peak|end|N] -o OUT.svg
 *   hugeperm map FILE --coverage [--policy all|NAME,...] -o OUT.svg
 *
 * The simulator itself is sim/; this file reads and writes files, draws,
 * and for `replay --real` runs the trace against the real library and
 * reads the kernel's counters around it.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hugeperm.h>

#include "sim.h"
#include "tools.h"

/* ------------------------------------------------------------------ */
/* Files */

static int load_trace(const char *path, struct sim_trace *t)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return tool_fail(path, errno);
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	int rerr = ferror(f);
	fclose(f);
	if (!buf)
		return tool_fail(path, ENOMEM);
	if (rerr) {
		free(buf);
		return tool_fail(path, EIO);
	}
	char err[256] = "";
	int e = sim_trace_parse(buf, n, t, err, sizeof(err));
	free(buf);
	if (e) {
		fprintf(stderr, "hugeperm: %s: not a trace: %s (%s)\n", path, err,
			tool_errno_name(e));
		return 2;
	}
	return 0;
}

static int write_binary(const struct sim_trace *t, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return tool_fail(path, errno);
	uint8_t head[HP_TRACE_HEADER], ev[HP_TRACE_MAX_EVENT];
	hp_trace_header_encode(&t->h, head);
	fwrite(head, 1, sizeof(head), f);
	struct hp_trace_enc st = {0, 0};
	for (size_t i = 0; i < t->n; i++)
		fwrite(ev, 1, hp_trace_encode(&st, &t->ev[i], ev), f);
	if (fclose(f))
		return tool_fail(path, errno);
	return 0;
}

static void dump(const struct sim_trace *t, FILE *out)
{
	fprintf(out, "# hugeperm trace v%u source=%s comm=%s events=%zu\n", t->h.version,
		t->h.source, t->h.comm[0] ? t->h.comm : "-", t->n);
	fputs("# t_us tid type addr npages prot flags\n", out);
	for (size_t i = 0; i < t->n; i++) {
		const struct hp_trace_event *e = &t->ev[i];
		char prot[4], flags[40] = "";
		hp_trace_prot_str(e->prot, prot);
		if (e->flags & HP_TF_FIXED)
			strcat(flags, "|fixed");
		if (e->flags & HP_TF_NORESERVE)
			strcat(flags, "|noreserve");
		if (e->flags & HP_TF_HINT)
			strcat(flags, "|hint");
		fprintf(out, "%" PRIu64 ".%03" PRIu64 " %u %s 0x%" PRIx64 " %" PRIu64 " %s%s%s\n",
			e->t_ns / 1000, e->t_ns % 1000, e->tid, hp_trace_type_name(e->type),
			e->page << 12, e->npages, prot, flags[0] ? " " : "",
			flags[0] ? flags + 1 : "");
	}
}

/* Option value @argv[*i + 1], or NULL with the error printed. */
static const char *value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "hugeperm: %s needs a value (EINVAL)\n", argv[*i]);
		return NULL;
	}
	return argv[++*i];
}

static bool number(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n < lo || n > hi) {
		fprintf(stderr,
			"hugeperm: %s %s: not a number in [%" PRIu64 ", %" PRIu64 "] (EINVAL)\n",
			opt, v, lo, hi);
		return false;
	}
	*out = n;
	return true;
}

/* ------------------------------------------------------------------ */
/* record, dump */

int cmd_record(int argc, char **argv)
{
	const char *out = NULL, *serve = "none";
	int i;
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
			if (!(out = value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(argv[i], "--serve")) {
			if (!(serve = value(argc, argv, &i)))
				return 2;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "hugeperm: record: unknown option %s (EINVAL)\n", argv[i]);
			return 2;
		} else {
			break;
		}
	}
	if (!out || i >= argc) {
		fputs("hugeperm: record: usage: hugeperm record -o FILE [--serve KINDS] -- CMD "
		      "[ARGS...] (EINVAL)\n",
		      stderr);
		return 2;
	}
	/* The file must be creatable before the program runs. */
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return tool_fail(out, errno);
	close(fd);
	char *abs = realpath(out, NULL);
	setenv("HUGEPERM_PRELOAD_RECORD", abs ? abs : out, 1);
	free(abs);
	/* `run` does the rest: the preload, the fork, the exit status. */
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args)
		return tool_fail("record", ENOMEM);
	int n = 0;
	args[n++] = "--serve";
	args[n++] = (char *)serve;
	args[n++] = "--";
	for (int k = i; k < argc; k++)
		args[n++] = argv[k];
	int rc = cmd_run(n, args);
	free(args);

	struct sim_trace t;
	if (load_trace(out, &t) == 0) {
		struct stat st;
		stat(out, &st);
		fprintf(stderr, "hugeperm: recorded %zu events of %s (%lld bytes) in %s\n", t.n,
			t.h.comm, (long long)st.st_size, out);
		sim_trace_free(&t);
	}
	return rc;
}

int cmd_dump(int argc, char **argv)
{
	if (argc != 1) {
		fputs("hugeperm: dump: usage: hugeperm dump FILE (EINVAL)\n", stderr);
		return 2;
	}
	struct sim_trace t;
	int rc = load_trace(argv[0], &t);
	if (rc)
		return rc;
	dump(&t, stdout);
	sim_trace_free(&t);
	return 0;
}

/* ------------------------------------------------------------------ */
/* replay */

/* Split "a,b,c" (or "all") into policy names; false with a message. */
static bool policy_list(const char *list, const char **names, int *n)
{
	*n = 0;
	if (!strcmp(list, "all")) {
		for (int k = 0; sim_policy_names[k]; k++)
			names[(*n)++] = sim_policy_names[k];
		return true;
	}
	static char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w && *n < 16;
	     w = strtok_r(NULL, ",", &save)) {
		if (!sim_policy_about(w)) {
			fprintf(stderr, "hugeperm: no policy '%s' (EINVAL); there are:", w);
			for (int k = 0; sim_policy_names[k]; k++)
				fprintf(stderr, " %s", sim_policy_names[k]);
			fputs("\n", stderr);
			return false;
		}
		names[(*n)++] = w;
	}
	return *n > 0;
}

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
				", \"ignored\": %" PRIu64 "}",
				k ? "," : "", r[k].policy, r[k].splits, r[k].collapses,
				r[k].blocks_peak, r[k].blocks_avg, r[k].coverage_avg,
				pct(r[k].coverage_end, "null", 1), r[k].coverage_min,
				r[k].live_peak_pages, r[k].syscalls, r[k].n_mmap, r[k].n_mprotect,
				r[k].n_munmap, r[k].n_madvise, r[k].n_copy, r[k].n_alias,
				r[k].ignored);
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
			if (!(v = value(argc, argv, &i)))
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
			} else if (!strcmp(v, "deferred") || !strcmp(v, "sync")) {
				collapse = !strcmp(v, "sync") ? HP_COLLAPSE_SYNC
							      : HP_COLLAPSE_DEFERRED;
			} else {
				fprintf(stderr,
					"hugeperm: --collapse %s: deferred or sync (EINVAL)\n", v);
				return 2;
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
	if (!policy_list(list, names, &n))
		return 2;
	struct sim_trace t;
	int rc = load_trace(file, &t);
	if (rc)
		return rc;
	struct sim_result r[17];
	struct sim_options o = {.collapse_mode = collapse, .map_at = -1};
	int nr = 0;
	for (int k = 0; k < n; k++, nr++) {
		int err = sim_run(&t, names[k], &o, &r[nr]);
		if (err) {
			sim_trace_free(&t);
			return tool_fail(names[k], err);
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

/* ------------------------------------------------------------------ */
/* synth */

int cmd_synth(int argc, char **argv)
{
	struct sim_synth p;
	const char *out = NULL;
	bool text = false;
	sim_synth_defaults(&p);
	static const struct {
		const char *opt;
		uint64_t lo, hi;
	} opts[] = {
		{"--seed", 0, UINT64_MAX},    {"--threads", 1, 64},
		{"--units", 1, 10000000},     {"--max-pages", 1, 512},
		{"--area-pages", 1, 262144},  {"--flips", 0, 1000},
		{"--lifetime", 0, 100000000}, {"--data-pct", 0, 100},
		{"--gap-us", 0, 10000000},
	};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v;
		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (!(out = value(argc, argv, &i)))
				return 2;
			continue;
		}
		if (!strcmp(a, "--text")) {
			text = true;
			continue;
		}
		size_t k = 0;
		while (k < sizeof(opts) / sizeof(opts[0]) && strcmp(a, opts[k].opt))
			k++;
		uint64_t x;
		if (k == sizeof(opts) / sizeof(opts[0])) {
			fprintf(stderr, "hugeperm: synth: unknown option %s (EINVAL)\n", a);
			return 2;
		}
		if (!(v = value(argc, argv, &i)) || !number(a, v, opts[k].lo, opts[k].hi, &x))
			return 2;
		unsigned *fields[] = {NULL,	    &p.threads,	   &p.units,
				      &p.max_pages, &p.area_pages, &p.flips,
				      &p.lifetime,  &p.data_pct,   NULL};
		if (k == 0)
			p.seed = x;
		else if (k == 8)
			p.gap_ns = x * 1000;
		else
			*fields[k] = (unsigned)x;
	}
	if (!out) {
		fputs("hugeperm: synth: -o FILE is needed (EINVAL)\n", stderr);
		return 2;
	}
	struct sim_trace t;
	int err = sim_synth(&p, &t);
	if (err)
		return tool_fail("synth", err);
	int rc = 0;
	if (text) {
		FILE *f = fopen(out, "w");
		if (!f)
			rc = tool_fail(out, errno);
		else {
			dump(&t, f);
			if (fclose(f))
				rc = tool_fail(out, errno);
		}
	} else {
		rc = write_binary(&t, out);
	}
	if (!rc)
		fprintf(stderr, "hugeperm: synth: %zu events in %s\n", t.n, out);
	sim_trace_free(&t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* map: SVG pictures */

static const char *prot_colour(int prot, bool used)
{
	static const char *const live[8] = {"#9e9e9e", "#1f77b4", "#888888", "#2ca02c",
					    "#d62728", "#ff7f0e", "#888888", "#9467bd"};
	static const char *const idle[8] = {"#e0e0e0", "#aec7e8", "#cccccc", "#b5dfb0",
					    "#f4a9a8", "#ffcc99", "#cccccc", "#d2c0e6"};
	if (prot == SIM_UNMAPPED)
		return "#ffffff";
	return used ? live[prot & 7] : idle[prot & 7];
}

#define MAX_ROWS 600

static void svg_block_map(const struct sim_result *r, const char *trace, FILE *f)
{
	const int cell = 2, row = 8, left = 150, top = 40;
	size_t rows = r->nmap < MAX_ROWS ? r->nmap : MAX_ROWS;
	int width = left + 512 * cell + 20, height = top + (int)rows * row + 60;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"font-family=\"monospace\" font-size=\"10\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"10\" y=\"16\" font-size=\"13\">%s under %s: %zu blocks after event %zu "
		"(one row per 2 MiB block, one cell per 4 KiB page; dark: a live page)</text>\n",
		width, height, trace, r->policy, r->nmap, r->map_event);
	for (size_t k = 0; k < rows; k++) {
		const struct sim_block_view *v = &r->map[k];
		int y = top + (int)k * row;
		fprintf(f, "<text x=\"4\" y=\"%d\">%012" PRIx64 " %s</text>\n", y + row - 1,
			v->base,
			v->state == SIM_HUGE	? "PMD"
			: v->state == SIM_SMALL ? "4K "
						: "-- ");
		for (int i = 0; i < 512;) { /* one rect per run of one colour */
			bool used = v->used[i / 64] >> (i % 64) & 1;
			const char *c = prot_colour(v->prot[i], used);
			int j = i + 1;
			while (j < 512 &&
			       prot_colour(v->prot[j], v->used[j / 64] >> (j % 64) & 1) == c)
				j++;
			fprintf(f,
				"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
				"fill=\"%s\"/>\n",
				left + i * cell, y, (j - i) * cell, row - 1, c);
			i = j;
		}
		if (v->state == SIM_HUGE)
			fprintf(f,
				"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
				"stroke=\"black\"/>\n",
				left, y, 512 * cell, row - 1);
	}
	int y = top + (int)rows * row + 20;
	if (r->nmap > rows)
		fprintf(f, "<text x=\"4\" y=\"%d\">... %zu more blocks</text>\n", y - 8,
			r->nmap - rows);
	const char *names[] = {"---", "r--", "rw-", "r-x", "rwx"};
	int prots[] = {0, 1, 3, 5, 7};
	for (int k = 0; k < 5; k++) {
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\"/>\n",
			left + k * 90, y, prot_colour(prots[k], true));
		fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", left + k * 90 + 16, y + 9,
			names[k]);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\">framed: huge-mapped</text>\n", left + 460, y + 9);
	fputs("</svg>\n", f);
}

static void svg_coverage(const struct sim_result *r, int n, const char *trace, FILE *f)
{
	static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
					      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
	const int w = 800, h = 360, left = 60, top = 40;
	uint64_t t0 = UINT64_MAX, t1 = 0;
	for (int k = 0; k < n; k++)
		if (r[k].nsamples) {
			t0 = r[k].samples[0].t_ns < t0 ? r[k].samples[0].t_ns : t0;
			uint64_t e = r[k].samples[r[k].nsamples - 1].t_ns;
			t1 = e > t1 ? e : t1;
		}
	double span = t1 > t0 ? (double)(t1 - t0) : 1;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"%d\" y=\"20\" font-size=\"13\">%s: coverage over time (live pages in "
		"huge-mapped blocks)</text>\n"
		"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
		"stroke=\"#444\"/>\n",
		w + left + 180, h + top + 50, left, trace, left, top, w, h);
	for (int p = 0; p <= 100; p += 25)
		fprintf(f,
			"<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d%%</text>"
			"<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n",
			left - 4, top + h - p * h / 100 + 4, p, left, left + w,
			top + h - p * h / 100, top + h - p * h / 100);
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">trace time, ms (0 .. "
		"%.1f)</text>\n",
		left + w / 2, top + h + 30, span / 1e6);
	for (int k = 0; k < n; k++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
			colours[k % 8]);
		for (size_t i = 0; i < r[k].nsamples; i++)
			fprintf(f, "%.1f,%.1f ",
				left + w * (double)(r[k].samples[i].t_ns - t0) / span,
				top + h - h * r[k].samples[i].coverage);
		fputs("\"/>\n", f);
		fprintf(f,
			"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%d\">%s (avg %.1f%%)</text>\n",
			left + w + 10, top + 10 + 18 * k, colours[k % 8], left + w + 26,
			top + 14 + 18 * k, r[k].policy, 100 * r[k].coverage_avg);
	}
	fputs("</svg>\n", f);
}

int cmd_map(int argc, char **argv)
{
	const char *file = NULL, *out = NULL, *list = NULL, *at = "peak";
	bool cov = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (!(out = value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(a, "--policy")) {
			if (!(list = value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(a, "--at")) {
			if (!(at = value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(a, "--coverage")) {
			cov = true;
		} else if (a[0] == '-' || file) {
			fprintf(stderr, "hugeperm: map: unexpected argument %s (EINVAL)\n", a);
			return 2;
		} else {
			file = a;
		}
	}
	if (!file || !out) {
		fputs("hugeperm: map: usage: hugeperm map FILE [--policy P] [--at peak|end|N] "
		      "[--coverage] -o OUT.svg (EINVAL)\n",
		      stderr);
		return 2;
	}
	const char *names[16];
	int n;
	if (!policy_list(list ? list : cov ? "all" : "hugeperm", names, &n))
		return 2;
	if (!cov && n != 1) {
		fputs("hugeperm: map: a block map is of one policy (EINVAL)\n", stderr);
		return 2;
	}
	struct sim_trace t;
	int rc = load_trace(file, &t);
	if (rc)
		return rc;
	struct sim_options o = {.map_at = -1};
	if (cov) {
		uint64_t span = t.n ? t.ev[t.n - 1].t_ns - t.ev[0].t_ns : 0;
		o.series = true;
		o.sample_ns = span / 1000;
	} else if (!strcmp(at, "peak")) {
		o.map_at = -2;
	} else if (!strcmp(at, "end")) {
		o.map_at = t.n ? (long)t.n - 1 : -1;
	} else {
		uint64_t x;
		if (!number("--at", at, 0, t.n ? t.n - 1 : 0, &x)) {
			sim_trace_free(&t);
			return 2;
		}
		o.map_at = (long)x;
	}
	struct sim_result r[16];
	for (int k = 0; k < n; k++) {
		int err = sim_run(&t, names[k], &o, &r[k]);
		if (err) {
			sim_trace_free(&t);
			return tool_fail(names[k], err);
		}
	}
	FILE *f = fopen(out, "w");
	const char *base = strrchr(file, '/');
	if (!f) {
		rc = tool_fail(out, errno);
	} else {
		if (cov)
			svg_coverage(r, n, base ? base + 1 : file, f);
		else
			svg_block_map(&r[0], base ? base + 1 : file, f);
		if (fclose(f))
			rc = tool_fail(out, errno);
	}
	for (int k = 0; k < n; k++)
		sim_result_free(&r[k]);
	sim_trace_free(&t);
	return rc;
}
