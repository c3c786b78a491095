/* SPDX-License-Identifier: MIT */
/*
 * stats.t - what a person and a script read: hp_stats_print as a table and
 * as JSON, HUGEPERM_STATS=1 at exit, HUGEPERM_VERBOSE=1 at start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hugeperm.h"
#include "tap.h"

/* Run @fn in a child with @env set ("NAME=value" or NULL); its fd 1 and 2. */
static void child(const char *env, void (*fn)(void), char *out, size_t n)
{
	int fds[2];
	fflush(stdout);
	if (pipe(fds))
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		if (env)
			putenv((char *)env);
		fn();
		exit(0);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t k;
	while (got < n - 1 && (k = read(fds[0], out + got, n - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = 0;
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

static void use_some(void)
{
	void *p = hp_alloc(3 * 4096, PROT_READ | PROT_WRITE);
	void *q = hp_alloc(4096, PROT_READ | PROT_EXEC);
	(void)p;
	(void)q;
}

static void print_table(void)
{
	use_some();
	hp_stats_print(1, 0);
}

static void print_json(void)
{
	use_some();
	hp_stats_print(1, HP_STATS_JSON);
}

static int count(const char *s, char c)
{
	int n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

int main(void)
{
	static char out[16384];

	child(NULL, print_table, out, sizeof(out));
	ok(strstr(out, "hugeperm stats: backend") && strstr(out, "coverage"),
	   "table: header with backend and coverage");
	ok(strstr(out, "  rw ") && strstr(out, "  rx "), "table: a row per class in use");
	ok(strstr(out, "used_bytes            16384"), "table: used bytes (3 + 1 pages)");

	child(NULL, print_json, out, sizeof(out));
	ok(out[0] == '{' && count(out, '{') == count(out, '}') && count(out, '"') % 2 == 0,
	   "JSON: one balanced object");
	ok(strstr(out, "\"used_bytes\":16384") && strstr(out, "\"rx\":{\"class\":\"rx\""),
	   "JSON: totals and per-class objects");
	ok(strstr(out, "\"coverage\":1.0000") != NULL, "JSON: coverage of fresh THP blocks is 1");

	child("HUGEPERM_STATS=1", use_some, out, sizeof(out));
	ok(strstr(out, "hugeperm stats:") && strstr(out, "allocs                2"),
	   "HUGEPERM_STATS=1 prints the table at exit");

	child("HUGEPERM_VERBOSE=1", use_some, out, sizeof(out));
	ok(strstr(out, "hugeperm options:") && strstr(out, "HUGEPERM_COLLAPSE_RATE"),
	   "HUGEPERM_VERBOSE=1 prints the options");
	ok(strstr(out, "hugeperm: backend auto:") && strstr(out, "-> using"),
	   "... and the backend decision with its reason");
	tap_diag("%s", strstr(out, "hugeperm: backend") ? strstr(out, "hugeperm: backend") : "");
	return tap_done();
}
