/* SPDX-License-Identifier: MIT */
/*
 * cmd_synth.c - `hugeperm synth -o FILE [--text] [--seed N] ...`: a
 * synthetic JIT-like trace (sim/synth.c makes it), written as a binary
 * trace or, with --text, in the text form.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "tools.h"

static int write_binary(const struct sim_trace *t, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return tool_fail(path, errno);
	uint8_t head[HP_TRACE_HEADER], ev[HP_TRACE_MAX_EVENT];
	hp_trace_header_encode(&t->h, head);
	fwrite(head, 1, sizeof(head), f);
	struct hp_trace_enc st = {0};
	for (size_t i = 0; i < t->n; i++)
		fwrite(ev, 1, hp_trace_encode(&st, &t->ev[i], ev), f);
	if (fclose(f))
		return tool_fail(path, errno);
	return 0;
}

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
			if (!(out = tool_value(argc, argv, &i)))
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
		if (!(v = tool_value(argc, argv, &i)) ||
		    !tool_number(a, v, opts[k].lo, opts[k].hi, &x))
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
			tool_print_trace(&t, f);
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
