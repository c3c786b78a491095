/* SPDX-License-Identifier: MIT */
/*
 * cmd_dump.c - `hugeperm dump FILE`: a trace (binary or text) printed in the
 * text form, one line per event; the printer is tracefile.c's, which
 * `synth --text` shares.
 */
#include "config.h" /* _GNU_SOURCE */

#include <stdio.h>

#include "sim.h"
#include "tools.h"

int cmd_dump(int argc, char **argv)
{
	if (argc != 1) {
		fputs("hugeperm: dump: usage: hugeperm dump FILE (EINVAL)\n", stderr);
		return 2;
	}
	struct sim_trace t;
	int rc = tool_load_trace(argv[0], &t);
	if (rc)
		return rc;
	tool_print_trace(&t, stdout);
	sim_trace_free(&t);
	return 0;
}
