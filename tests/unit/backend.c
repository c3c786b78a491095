/* SPDX-License-Identifier: MIT */
/*
 * backend.t - the backend decision on fake probes (best first, overrides
 * that cannot be honoured fail with a reason), and the same through the
 * environment on the real machine, in children.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static int choose(struct hp_probe *pr, int want, int *backend, char *why, size_t n)
{
	int mut;
	struct hp_buf b = {why, n - 1, 0};
	int err = hp_backend_choose(pr, want, backend, &mut, &b);
	why[b.len < b.cap ? b.len : b.cap] = 0;
	return err;
}

/* In a child: hp_alloc with the environment given; exits with its errno. */
static void alloc_child(void *arg)
{
	void *p = hp_alloc(4096, PROT_READ | PROT_WRITE);
	_exit(p ? 0 : errno);
}

/* hp_alloc's errno with HUGEPERM_BACKEND=@value, and what it printed. */
static int child_alloc(const char *value, char *out, size_t n)
{
	static char env[64];
	snprintf(env, sizeof(env), "HUGEPERM_BACKEND=%s", value);
	int st = tap_child(alloc_child, NULL, env, out, n);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
	char why[512];
	int be;
	struct hp_probe pr = {
		.hugetlb_2m_free = 4, .hugetlb_1g_free = 1, .thp = true, .thp_mode = "madvise"};

	is(choose(&pr, HP_BACKEND_AUTO, &be, why, sizeof(why)), 0, "auto works");
	is(be, HP_BACKEND_HUGETLB_1G, "auto takes 1 GiB hugetlb first");
	pr.hugetlb_1g_free = 0;
	choose(&pr, HP_BACKEND_AUTO, &be, why, sizeof(why));
	is(be, HP_BACKEND_HUGETLB_2M, "then 2 MiB hugetlb");
	pr.hugetlb_2m_free = 0;
	choose(&pr, HP_BACKEND_AUTO, &be, why, sizeof(why));
	is(be, HP_BACKEND_THP, "then THP");
	ok(strstr(why, "no free hugetlb pages"), "and says why: %s", why);
	pr.thp = false;
	strcpy(pr.thp_mode, "never");
	choose(&pr, HP_BACKEND_AUTO, &be, why, sizeof(why));
	is(be, HP_BACKEND_SMALL, "then small pages");

	is(choose(&pr, HP_BACKEND_THP, &be, why, sizeof(why)), ENODEV,
	   "thp with THP [never]: ENODEV");
	ok(strstr(why, "[never]"), "the reason names the THP mode: %s", why);
	pr.hugetlb_1g_free = -1;
	is(choose(&pr, HP_BACKEND_HUGETLB_1G, &be, why, sizeof(why)), ENODEV,
	   "hugetlb-1g without a 1 GiB pool: ENODEV");
	ok(strstr(why, "hugepages-1048576kB is missing"), "the reason names the missing pool: %s",
	   why);
	is(choose(&pr, HP_BACKEND_HUGETLB_2M, &be, why, sizeof(why)), ENODEV,
	   "hugetlb-2m with no free pages: ENODEV");
	ok(strstr(why, "nr_hugepages"), "the reason says how to fix it: %s", why);
	is(choose(&pr, HP_BACKEND_SMALL, &be, why, sizeof(why)), 0, "small always works");

	/* The real machine, through the environment. */
	struct hp_probe real;
	hp_os_linux.probe(&real);
	tap_diag("this machine: hugetlb 2M free %ld, 1G free %ld, THP [%s], collapse %s",
		 real.hugetlb_2m_free, real.hugetlb_1g_free, real.thp_mode,
		 real.collapse ? "yes" : "no");
	char err[1024];
	int rc = child_alloc("hugetlb-1g", err, sizeof(err));
	if (real.hugetlb_1g_free <= 0) {
		is(rc, ENODEV,
		   "HUGEPERM_BACKEND=hugetlb-1g on this machine: hp_alloc fails ENODEV");
		ok(strstr(err, "hugetlb-1g") && strstr(err, "1048576kB"),
		   "and the error names the reason: %s", err);
	} else {
		is(rc, 0, "HUGEPERM_BACKEND=hugetlb-1g works where the pool has pages");
		tap_skip(1, "the machine has free 1 GiB pages: no error to read");
	}
	rc = child_alloc("thp", err, sizeof(err));
	is(rc, real.thp ? 0 : ENODEV, "HUGEPERM_BACKEND=thp agrees with the probe");
	rc = child_alloc("small", err, sizeof(err));
	is(rc, 0, "HUGEPERM_BACKEND=small always works");
	rc = child_alloc("bogus", err, sizeof(err));
	is(rc, 0, "a bad HUGEPERM_BACKEND warns and keeps auto");
	ok(strstr(err, "HUGEPERM_BACKEND='bogus'"), "with a warning that names it");
	return tap_done();
}
