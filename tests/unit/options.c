/* SPDX-License-Identifier: MIT */
/* options.t - the HUGEPERM_* table: parsing, bounds, names, bad values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static void read_env(void *arg)
{
	setenv("HUGEPERM_COLLAPSE_RETRIES", "7", 1);
	hp_options_init();
	_exit(hp_opt.collapse == HP_COLLAPSE_DEFERRED && hp_opt.collapse_retries == 7 ? 0 : 1);
}

static void print_options(void *arg)
{
	hp_options_print(1);
}

static void read_purge(void *arg)
{
	hp_options_init();
	_exit(hp_opt.purge_ms == 1000 ? 0 : 1);
}

static void print_purge_never(void *arg)
{
	setenv("HUGEPERM_PURGE_MS", "-1", 1);
	hp_options_init();
	hp_options_print(1);
}

int main(void)
{
	long v = -1;
	is(hp_option_parse(HP_OPT_BACKEND, "thp", &v), 0, "BACKEND=thp parses");
	is(v, HP_BACKEND_THP, "... to HP_BACKEND_THP");
	is(hp_option_parse(HP_OPT_BACKEND, "hugetlb-1g", &v), 0, "BACKEND=hugetlb-1g parses");
	is(v, HP_BACKEND_HUGETLB_1G, "... to HP_BACKEND_HUGETLB_1G");
	v = 77;
	is(hp_option_parse(HP_OPT_BACKEND, "huge", &v), EINVAL, "BACKEND=huge is EINVAL");
	is(v, 77, "... and leaves the value alone");
	is(hp_option_parse(HP_OPT_COLLAPSE, "sync", &v), 0, "COLLAPSE=sync parses");
	is(v, HP_COLLAPSE_SYNC, "... to HP_COLLAPSE_SYNC");
	is(hp_option_parse(HP_OPT_COLLAPSE, "off", &v), 0, "COLLAPSE=off parses");
	is(v, HP_COLLAPSE_OFF, "... to HP_COLLAPSE_OFF");
	is(hp_option_parse(HP_OPT_COLLAPSE, "default", &v), EINVAL,
	   "COLLAPSE=default is not a mode");
	is(hp_option_parse(HP_OPT_COLLAPSE_RATE, "0", &v), EINVAL,
	   "COLLAPSE_RATE=0 is out of bounds");
	is(hp_option_parse(HP_OPT_COLLAPSE_RATE, "12x", &v), EINVAL, "trailing junk is EINVAL");
	is(hp_option_parse(HP_OPT_COLLAPSE_DELAY_MS, "250", &v), 0, "COLLAPSE_DELAY_MS=250 parses");
	is(v, 250, "... to 250");

	is(hp_option_parse(HP_OPT_PURGE_MS, "0", &v), 0, "PURGE_MS=0 (at once) parses");
	is(v, 0, "... to 0");
	is(hp_option_parse(HP_OPT_PURGE_MS, "-1", &v), 0, "PURGE_MS=-1 (never) parses");
	is(v, -1, "... to -1");
	is(hp_option_parse(HP_OPT_PURGE_MS, "3600000", &v), 0, "PURGE_MS=3600000 (an hour) parses");
	v = 5;
	is(hp_option_parse(HP_OPT_PURGE_MS, "-2", &v), EINVAL, "PURGE_MS=-2 is EINVAL");
	is(hp_option_parse(HP_OPT_PURGE_MS, "3600001", &v), EINVAL,
	   "PURGE_MS over an hour is EINVAL");
	is(hp_option_parse(HP_OPT_PURGE_MS, "1s", &v), EINVAL, "PURGE_MS=1s is EINVAL");
	is(hp_option_parse(HP_OPT_PURGE_MS, "", &v), EINVAL, "PURGE_MS empty is EINVAL");
	is(v, 5, "... and leaves the value alone");

	/* The environment path: a child with a bad value and a good one. */
	char out[4096];
	int st = tap_child(read_env, NULL, "HUGEPERM_COLLAPSE=sometimes", out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "bad value keeps the default, good value is read");
	ok(strstr(out, "HUGEPERM_COLLAPSE='sometimes'") && strstr(out, "EINVAL"),
	   "the warning names the option, the value and EINVAL");

	st = tap_child(read_purge, NULL, "HUGEPERM_PURGE_MS=soon", out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "HUGEPERM_PURGE_MS=soon keeps the default, 1000");
	ok(strstr(out, "hugeperm: ignoring HUGEPERM_PURGE_MS='soon' (EINVAL); keeping the default"),
	   "... and says so");
	tap_child(print_purge_never, NULL, NULL, out, sizeof(out));
	ok(strstr(out, "HUGEPERM_PURGE_MS") && strstr(out, "-1 (never)"),
	   "the options table shows PURGE_MS=-1 as never");

	tap_child(print_options, NULL, NULL, out, sizeof(out));
	ok(strstr(out, "HUGEPERM_BACKEND") && strstr(out, "HUGEPERM_MAX_MB") &&
		   strstr(out, "deferred"),
	   "the options table lists every option with its value");
	return tap_done();
}
