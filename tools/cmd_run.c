/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c - `hugeperm run [options] -- CMD [ARGS...]`: run a program with
 * its JIT code served from huge pages by the preload, and print the
 * reports the preload leaves behind (one per process) with --stats, --json
 * or -o.  Starting the program is launch.c's.
 */
#include "config.h" /* _GNU_SOURCE */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

static int cmp_pid(const struct dirent **a, const struct dirent **b)
{
	return atoi((*a)->d_name) - atoi((*b)->d_name);
}

static void cat(const char *path, FILE *out)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, out);
	fclose(f);
}

/* Print the reports the preload left in @dir, one per process, and remove them. */
static void print_reports(const char *dir, bool json, FILE *out)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, cmp_pid);
	bool first = true;
	char path[PATH_MAX];

	if (json)
		fputs("[", out);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);
		bool is_json = len > 5 && !strcmp(name + len - 5, ".json");
		bool is_txt = len > 4 && !strcmp(name + len - 4, ".txt");
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if ((json && is_json) || (!json && is_txt)) {
			if (json && !first)
				fputs(",", out);
			first = false;
			cat(path, out);
		}
		if (is_json || is_txt)
			unlink(path);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
	if (json)
		fputs("]\n", out);
	else if (first)
		fputs("hugeperm: no report: the program did not load the preload (static binary, "
		      "or it cleared LD_PRELOAD)\n",
		      stderr);
	rmdir(dir);
}

int cmd_run(int argc, char **argv)
{
	bool stats = false, json = false;
	const char *output = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--stats")) {
			stats = true;
		} else if (!strcmp(a, "--json")) {
			json = stats = true;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 == argc) {
				fprintf(stderr, "hugeperm: %s needs a file (EINVAL)\n", a);
				return 2;
			}
			output = argv[++i];
			stats = true;
		} else if (!strcmp(a, "--verbose")) {
			setenv("HUGEPERM_VERBOSE", "1", 1);
		} else if (!strcmp(a, "--no-inherit")) {
			setenv("HUGEPERM_PRELOAD_INHERIT", "0", 1);
		} else if (!strcmp(a, "--backend") || !strcmp(a, "--flip") ||
			   !strcmp(a, "--serve")) {
			if (i + 1 == argc) {
				fprintf(stderr, "hugeperm: %s needs a value (EINVAL)\n", a);
				return 2;
			}
			if (tool_preload_option(a, argv[++i]))
				return 2;
		} else if (a[0] == '-') {
			fprintf(stderr, "hugeperm: run: unknown option %s (EINVAL)\n", a);
			return TOOL_USAGE;
		} else {
			break; /* the command, without "--" */
		}
	}
	if (i >= argc) {
		fputs("hugeperm: run: no command given (EINVAL)\n", stderr);
		return TOOL_USAGE;
	}

	int rc = tool_use_preload();
	if (rc)
		return rc;
	char dir[] = "/tmp/hugeperm-stats.XXXXXX";
	if (stats) {
		if (!mkdtemp(dir))
			return tool_fail("mkdtemp", errno);
		setenv("HUGEPERM_STATS_DIR", dir, 1);
	}
	int code;
	rc = tool_spawn(&argv[i], &code);
	if (rc)
		return rc;
	if (stats) {
		/* On stderr, like time(1): the program's stdout stays its own. */
		FILE *out = output ? fopen(output, "w") : stderr;
		if (!out)
			return tool_fail(output, errno);
		print_reports(dir, json, out);
		if (output)
			fclose(out);
	}
	return code;
}
