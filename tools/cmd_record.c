/* SPDX-License-Identifier: MIT */
/*
 * cmd_record.c - `hugeperm record -o FILE [--serve KINDS] -- CMD [ARGS...]`:
 * run a program under the preload with recording on (it serves nothing
 * unless --serve says so), so that the trace of what it asked of the memory
 * manager lands in FILE, then say how many events it holds.  Starting the
 * program is launch.c's, as for `run`.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "tools.h"

int cmd_record(int argc, char **argv)
{
	const char *out = NULL, *serve = "none";
	int i;
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
			if (!(out = tool_value(argc, argv, &i)))
				return 2;
		} else if (!strcmp(argv[i], "--serve")) {
			if (!(serve = tool_value(argc, argv, &i)))
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
	int code;
	int rc = tool_preload_option("--serve", serve);
	if (!rc)
		rc = tool_use_preload();
	if (!rc)
		rc = tool_spawn(&argv[i], &code);
	if (!rc)
		rc = code;

	struct sim_trace t;
	if (tool_load_trace(out, &t) == 0) {
		struct stat st;
		stat(out, &st);
		fprintf(stderr, "hugeperm: recorded %zu events of %s (%lld bytes) in %s\n", t.n,
			t.h.comm, (long long)st.st_size, out);
		sim_trace_free(&t);
	}
	return rc;
}
