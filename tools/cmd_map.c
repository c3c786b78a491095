/* SPDX-License-Identifier: MIT */
/*
 * cmd_map.c - `hugeperm map FILE [--policy NAME] [--at peak|end|N] -o OUT.svg`
 * and `hugeperm map FILE --coverage [--policy all|NAME,...] -o OUT.svg`:
 * SVG pictures of a replay: the block map of one policy at one moment (a
 * row per 2 MiB block, a cell per 4 KiB page, coloured by protection), or
 * the coverage over trace time of each policy.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "sim.h"
#include "tools.h"

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
	const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC,
			     PROT_READ | PROT_WRITE | PROT_EXEC};
	for (int k = 0; k < 5; k++) {
		char name[4];
		hp_trace_prot_str(prots[k], name);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\"/>\n",
			left + k * 90, y, prot_colour(prots[k], true));
		fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", left + k * 90 + 16, y + 9, name);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\">framed: huge-mapped</text>\n", left + 460, y + 9);
	fputs("</svg>\n", f);
}

/* A coverage curve's legend, into @buf[@n]; its length. */
static int legend_label(const struct sim_result *r, char *buf, size_t n)
{
	return snprintf(buf, n, "%.*s (avg %.1f%%)", (int)sizeof(r->policy), r->policy,
			100 * r->coverage_avg);
}

/*
 * The chart is @w wide, the legend to its right.  The legend's column is
 * as wide as its longest label: 7 px a character covers DejaVu Sans and
 * Liberation Sans at 11 px (digits are 7 px, "%" 10), and at least the
 * 180 px it always had.
 */
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
	char label[128];
	int legend = 180;
	for (int k = 0; k < n; k++) {
		int need = 26 + 7 * legend_label(&r[k], label, sizeof(label)) + 10;
		legend = need > legend ? need : legend;
	}
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"%d\" y=\"20\" font-size=\"13\">%s: coverage over time (live pages in "
		"huge-mapped blocks)</text>\n"
		"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
		"stroke=\"#444\"/>\n",
		w + left + legend, h + top + 50, left, trace, left, top, w, h);
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
		legend_label(&r[k], label, sizeof(label));
		fprintf(f,
			"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%d\">%s</text>\n",
			left + w + 10, top + 10 + 18 * k, colours[k % 8], left + w + 26,
			top + 14 + 18 * k, label);
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
			if (!(out = tool_value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(a, "--policy")) {
			if (!(list = tool_value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(a, "--at")) {
			if (!(at = tool_value(argc, argv, &i)))
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
	if (!tool_policies(list ? list : cov ? "all" : "hugeperm", names, &n))
		return 2;
	if (!cov && n != 1) {
		fputs("hugeperm: map: a block map is of one policy (EINVAL)\n", stderr);
		return 2;
	}
	struct sim_trace t;
	int rc = tool_load_trace(file, &t);
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
		if (!tool_number("--at", at, 0, t.n ? t.n - 1 : 0, &x)) {
			sim_trace_free(&t);
			return 2;
		}
		o.map_at = (long)x;
	}
	struct sim_result r[16];
	for (int k = 0; k < n; k++) {
		int err = sim_run(&t, names[k], &o, &r[k]);
		if (err) {
			for (int j = 0; j <= k; j++)
				sim_result_free(&r[j]);
			sim_trace_free(&t);
			return tool_sim_fail(file, names[k], err);
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
