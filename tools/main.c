/* SPDX-License-Identifier: MIT */
/*
 * main.c - the `hugeperm` command: its usage, and the choice of the command
 * to run.  Each command lives in its own file, tools/cmd_<name>.c:
 *
 *   run      run a program under the preload          cmd_run.c
 *   stats    the kernel's view of a process's memory   cmd_stats.c
 *   info     what this machine offers                  cmd_info.c
 *   record   trace a program's memory calls            cmd_record.c
 *   dump     a trace as text                           cmd_dump.c
 *   replay   a trace under the simulated policies      cmd_replay.c
 *   synth    a synthetic trace                         cmd_synth.c
 *   map      SVG pictures of a replay                  cmd_map.c
 *
 * What two commands share is in args.c (options, errors), launch.c (the
 * preload, the child), tracefile.c (trace files) and names.c (name tables).
 * Calls go one way: main -> a command -> the helpers.  See hugeperm(1).
 */
#include "config.h" /* _GNU_SOURCE */

#include <stdio.h>
#include <string.h>

#include "tools.h"

static int usage(FILE *f, int rc)
{
	fputs("usage: hugeperm run [--backend B] [--flip block|exact|rwx] [--serve exec,areas]\n"
	      "                    [--stats] [--json] [-o FILE] [--verbose] [--no-inherit]\n"
	      "                    -- CMD [ARGS...]\n"
	      "       hugeperm stats [--json] PID\n"
	      "       hugeperm info [--json]\n"
	      "       hugeperm record -o FILE [--serve KINDS] -- CMD [ARGS...]\n"
	      "       hugeperm dump FILE\n"
	      "       hugeperm replay FILE [--policy all|NAME,...] [--format table|json|markdown]\n"
	      "                       [--collapse deferred|sync] [--real]\n"
	      "       hugeperm synth -o FILE [--text] [--seed N] [--threads N] [--units N]\n"
	      "                      [--max-pages N] [--area-pages N] [--flips N] [--lifetime N]\n"
	      "                      [--data-pct N] [--gap-us N]\n"
	      "       hugeperm map FILE [--policy NAME] [--at peak|end|N] [--coverage] -o OUT.svg\n"
	      "Run CMD with its JIT code served from huge pages (LD_PRELOAD), show the\n"
	      "huge-page coverage of a running process, or what this machine offers;\n"
	      "record what a program asks of the memory manager and replay it under\n"
	      "the kernel RFCs' grouping policies and ours.\n"
	      "See hugeperm(1).\n",
	      f);
	return rc;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"run", cmd_run},   {"stats", cmd_stats},   {"info", cmd_info},	  {"record", cmd_record},
	{"dump", cmd_dump}, {"replay", cmd_replay}, {"synth", cmd_synth}, {"map", cmd_map},
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr, 2);
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(argv[1], commands[k].name)) {
			int rc = commands[k].run(argc - 2, argv + 2);
			return rc == TOOL_USAGE ? usage(stderr, 2) : rc;
		}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout, 0);
	if (!strcmp(argv[1], "--version")) {
		puts("hugeperm " PACKAGE_VERSION);
		return 0;
	}
	fprintf(stderr, "hugeperm: unknown command '%s' (EINVAL)\n", argv[1]);
	return usage(stderr, 2);
}
