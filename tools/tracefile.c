/* SPDX-License-Identifier: MIT */
/*
 * tracefile.c - trace files as the commands read and print them: a whole
 * file (binary, or the text form) into a struct sim_trace, and a trace
 * printed in the text form (`dump`, and `synth --text`).  The formats
 * themselves are lib/trace.c's and sim/'s.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "tools.h"

int tool_load_trace(const char *path, struct sim_trace *t)
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

void tool_print_trace(const struct sim_trace *t, FILE *out)
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
