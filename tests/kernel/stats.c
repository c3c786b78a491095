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

static void use_some(void *arg)
{
	void *p = hp_alloc(3 * 4096, PROT_READ | PROT_WRITE);
	void *q = hp_alloc(4096, PROT_READ | PROT_EXEC);
	hp_collapse_pending(); /* a fresh aliased block waits in the queue */
	(void)p;
	(void)q;
}

static void print_table(void *arg)
{
	use_some(arg);
	hp_stats_print(1, 0);
}

static void print_json(void *arg)
{
	use_some(arg);
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

	tap_child(print_table, NULL, NULL, out, sizeof(out));
	ok(strstr(out, "hugeperm stats: backend") && strstr(out, "coverage"),
	   "table: header with backend and coverage");
	ok(strstr(out, "  rw ") && strstr(out, "  rx "), "table: a row per class in use");
	ok(strstr(out, "used_bytes            16384"), "table: used bytes (3 + 1 pages)");

	tap_child(print_json, NULL, NULL, out, sizeof(out));
	ok(out[0] == '{' && count(out, '{') == count(out, '}') && count(out, '"') % 2 == 0,
	   "JSON: one balanced object");
	ok(strstr(out, "\"used_bytes\":16384") && strstr(out, "\"rx\":{\"class\":\"rx\""),
	   "JSON: totals and per-class objects");
	ok(strstr(out, "\"coverage\":1.0000") != NULL, "JSON: coverage of fresh THP blocks is 1");

	tap_child(use_some, NULL, "HUGEPERM_STATS=1", out, sizeof(out));
	ok(strstr(out, "hugeperm stats:") && strstr(out, "allocs                2"),
	   "HUGEPERM_STATS=1 prints the table at exit");

	tap_child(use_some, NULL, "HUGEPERM_VERBOSE=1", out, sizeof(out));
	ok(strstr(out, "hugeperm options:") && strstr(out, "HUGEPERM_COLLAPSE_RATE"),
	   "HUGEPERM_VERBOSE=1 prints the options");
	ok(strstr(out, "hugeperm: backend auto:") && strstr(out, "-> using"),
	   "... and the backend decision with its reason");
	tap_diag("%s", strstr(out, "hugeperm: backend") ? strstr(out, "hugeperm: backend") : "");
	return tap_done();
}
