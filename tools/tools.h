/* SPDX-License-Identifier: MIT */
/* tools.h - what the `hugeperm` command's files share. */
#ifndef HP_TOOLS_H
#define HP_TOOLS_H

/* "ENOENT" for ENOENT, and so on. */
const char *tool_errno_name(int e);
/* Print "hugeperm: WHAT: strerror (ENAME)"; returns 2, the exit status. */
int tool_fail(const char *what, int e);

/* hugeperm.c */
int cmd_run(int argc, char **argv);
/* sim_cmds.c */
int cmd_record(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_map(int argc, char **argv);

#endif
