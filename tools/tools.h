/* SPDX-License-Identifier: MIT */
/*
 * tools.h - what the files of the `hugeperm` command share: each command's
 * entry point (one file each, called by main.c) and the helpers that two
 * or more commands use.  Calls go one way: main -> cmd_* -> helpers; no
 * command calls another, and no helper calls a command.
 */
#ifndef HP_TOOLS_H
#define HP_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The name tables are the libraries' own: internal.h (backends, collapse
 * modes, classes) and placement.h (flip modes). */
#include "internal.h"
#include "placement.h"

struct sim_trace;

/*
 * The commands.  Each takes the arguments after its name and returns the
 * exit status, or TOOL_USAGE when its arguments are wrong (it has said
 * why): main then prints the usage and exits 2.
 */
#define TOOL_USAGE (-1)
int cmd_run(int argc, char **argv);    /* cmd_run.c */
int cmd_stats(int argc, char **argv);  /* cmd_stats.c */
int cmd_info(int argc, char **argv);   /* cmd_info.c */
int cmd_record(int argc, char **argv); /* cmd_record.c */
int cmd_dump(int argc, char **argv);   /* cmd_dump.c */
int cmd_replay(int argc, char **argv); /* cmd_replay.c */
int cmd_synth(int argc, char **argv);  /* cmd_synth.c */
int cmd_map(int argc, char **argv);    /* cmd_map.c */

/* args.c: arguments and errors */
/* "ENOENT" for ENOENT, and so on. */
const char *tool_errno_name(int e);
/* Print "hugeperm: WHAT: strerror (ENAME)"; returns 2, the exit status. */
int tool_fail(const char *what, int e);
/* Option @argv[*i]'s value, @argv[*i + 1] (*i moves on to it), or NULL with the error printed. */
const char *tool_value(int argc, char **argv, int *i);
/* @v as a number in [@lo, @hi] into @out, or false with the error printed (@opt names it). */
bool tool_number(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out);
/* Split "a,b,c" (or "all") into up to 16 policy names; false with a message. */
bool tool_policies(const char *list, const char **names, int *n);

/* launch.c: a program under the preload */
/* The preload library's path: $HUGEPERM_PRELOAD_LIB, the build tree's, or the installed one. */
const char *tool_find_preload(char *buf, size_t n);
/* Check run's option @opt (--backend, --flip or --serve) and put @v in the
 * preload's environment: 0, or 2 with the error printed. */
int tool_preload_option(const char *opt, const char *v);
/* Put the preload library first in LD_PRELOAD: 0, or 2 with the error printed. */
int tool_use_preload(void);
/* Run @argv (NULL-terminated) as a child and wait; its exit status as a shell
 * gives it (128 + signal) in @code: 0, or 2 with the error printed. */
int tool_spawn(char **argv, int *code);

/* tracefile.c: trace files */
/* Read and parse the trace in @path into @t: 0, or 2 with the error printed. */
int tool_load_trace(const char *path, struct sim_trace *t);
/* A replay of @path under @policy failed with @e: the error printed
 * (EINVAL: the trace maps too much); returns 2. */
int tool_sim_fail(const char *path, const char *policy, int e);
/* @t in the text form that `dump` prints and traces may be read from. */
void tool_print_trace(const struct sim_trace *t, FILE *out);

#endif
