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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Does @name end in @ext? */
static bool has_ext(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);
	return n > e && !strcmp(name + n - e, ext);
}

/* The processes that loaded the preload (it wrote PID.started at start-up)
 * but left no report: say which, and why that can be.  Returns how many
 * processes loaded it. */
static int say_missing(const char *dir, struct dirent **ents, int n)
{
	char path[PATH_MAX], name[64];
	int loaded = 0;
	for (int i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;
		if (!has_ext(f, ".started"))
			continue;
		loaded++;
		int pid = atoi(f);
		snprintf(path, sizeof(path), "%s/%d.txt", dir, pid);
		if (access(path, F_OK) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, f);
		FILE *in = fopen(path, "r");
		if (!in || !fgets(name, sizeof(name), in))
			strcpy(name, "?");
		if (in)
			fclose(in);
		name[strcspn(name, "\n")] = 0;
		fprintf(stderr,
			"hugeperm: no report from pid %d (%s): it loaded the preload but ran none "
			"of "
			"its exit code (it left by the exit_group system call, was killed, or "
			"executed a program without the preload)\n",
			pid, name);
	}
	return loaded;
}

/* How long the reports of processes that outlive the program may take. */
#define STRAGGLER_MS 2000

/* Processes that loaded the preload and outlive the program (Erlang's
 * erl_child_setup leaves after beam.smp's halt) write their reports as they
 * leave: wait for those still alive, up to STRAGGLER_MS, so that the reports
 * are read whole, not half-written or missing. */
static void wait_stragglers(const char *dir)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	char path[PATH_MAX];
	for (int waited = 0; waited < STRAGGLER_MS; waited += 10) {
		struct dirent **ents;
		int n = scandir(dir, &ents, NULL, NULL), alive = 0;
		for (int i = 0; i < n; i++) {
			const char *f = ents[i]->d_name;
			if (has_ext(f, ".started")) {
				pid_t pid = atoi(f);
				snprintf(path, sizeof(path), "%s/%d.txt", dir, (int)pid);
				alive += access(path, F_OK) != 0 &&
					 (kill(pid, 0) == 0 || errno == EPERM);
			}
			free(ents[i]);
		}
		if (n >= 0)
			free(ents);
		if (!alive)
			return;
		nanosleep(&tick, NULL);
	}
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
		bool is_json = has_ext(name, ".json"), is_txt = has_ext(name, ".txt");
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if ((json && is_json) || (!json && is_txt)) {
			if (json && !first)
				fputs(",", out);
			first = false;
			cat(path, out);
		}
	}
	if (json)
		fputs("]\n", out);
	fflush(out);
	if (!say_missing(dir, ents, n > 0 ? n : 0) && first)
		fputs("hugeperm: no report: the program did not load the preload (static binary, "
		      "or it cleared LD_PRELOAD)\n",
		      stderr);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (has_ext(name, ".json") || has_ext(name, ".txt") || has_ext(name, ".started") ||
		    has_ext(name, ".part")) /* a report still being written: it is left out */
			unlink(path);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
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
		wait_stragglers(dir);
		print_reports(dir, json, out);
		if (output)
			fclose(out);
	}
	return code;
}
