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

	/* The environment path: a child with a bad value and a good one. */
	char out[4096];
	int st = tap_child(read_env, NULL, "HUGEPERM_COLLAPSE=sometimes", out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "bad value keeps the default, good value is read");
	ok(strstr(out, "HUGEPERM_COLLAPSE='sometimes'") && strstr(out, "EINVAL"),
	   "the warning names the option, the value and EINVAL");

	tap_child(print_options, NULL, NULL, out, sizeof(out));
	ok(strstr(out, "HUGEPERM_BACKEND") && strstr(out, "HUGEPERM_MAX_MB") &&
		   strstr(out, "deferred"),
	   "the options table lists every option with its value");
	return tap_done();
}
