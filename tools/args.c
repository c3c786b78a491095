/* SPDX-License-Identifier: MIT */
/*
 * args.c - what the commands share in reading their arguments and in
 * saying what went wrong: an option's value, a number in bounds, a list of
 * simulator policies, and the error line "hugeperm: WHAT: strerror (ENAME)"
 * with exit status 2.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "tools.h"

const char *tool_errno_name(int e)
{
	const char *name = strerrorname_np(e); /* glibc's table; NULL for no errno */
	return name ? name : "errno";
}

int tool_fail(const char *what, int e)
{
	fprintf(stderr, "hugeperm: %s: %s (%s)\n", what, strerror(e), tool_errno_name(e));
	return 2;
}

const char *tool_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "hugeperm: %s needs a value (EINVAL)\n", argv[*i]);
		return NULL;
	}
	return argv[++*i];
}

bool tool_number(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n < lo || n > hi) {
		fprintf(stderr,
			"hugeperm: %s %s: not a number in [%" PRIu64 ", %" PRIu64 "] (EINVAL)\n",
			opt, v, lo, hi);
		return false;
	}
	*out = n;
	return true;
}

bool tool_policies(const char *list, const char **names, int *n)
{
	*n = 0;
	if (!strcmp(list, "all")) {
		for (int k = 0; sim_policy_names[k]; k++)
			names[(*n)++] = sim_policy_names[k];
		return true;
	}
	static char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w && *n < 16;
	     w = strtok_r(NULL, ",", &save)) {
		if (!sim_policy_about(w)) {
			fprintf(stderr, "hugeperm: no policy '%s' (EINVAL); there are:", w);
			for (int k = 0; sim_policy_names[k]; k++)
				fprintf(stderr, " %s", sim_policy_names[k]);
			fputs("\n", stderr);
			return false;
		}
		names[(*n)++] = w;
	}
	return *n > 0;
}
