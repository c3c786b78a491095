/* SPDX-License-Identifier: MIT */
/*
 * kview.c - the kernel's own view of this process's memory: /proc/vmstat
 * counters, /proc/self/smaps fields, and the PMD mappings the
 * PAGEMAP_SCAN ioctl of /proc/self/pagemap reports.  The demo and the
 * benchmarks show with it what the kernel made of hugeperm's memory; the
 * tests hold the allocator to it (tests/lib/kernel.c adds what only they
 * need).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kview.h"
#include "pagemap_scan.h"

long kernel_vmstat(const char *name)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char key[128];
	long v, r = -1;
	if (!f)
		return -1;
	while (fscanf(f, "%127s %ld", key, &v) == 2)
		if (!strcmp(key, name)) {
			r = v;
			break;
		}
	fclose(f);
	return r;
}

long kernel_smaps_kb(uintptr_t lo, uintptr_t hi, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	size_t flen = strlen(field);
	bool in = false;
	long sum = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = s >= lo && s < hi;
			continue;
		}
		if (in && !strncmp(line, field, flen) && line[flen] == ':')
			sum += strtol(line + flen + 1, NULL, 10);
	}
	fclose(f);
	return sum;
}

long kernel_huge_kb(uintptr_t lo, uintptr_t hi)
{
	static const char *const fields[] = {"AnonHugePages", "ShmemPmdMapped", "FilePmdMapped",
					     "Private_Hugetlb", "Shared_Hugetlb"};
	long sum = 0;
	for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		long kb = kernel_smaps_kb(lo, hi, fields[i]);
		if (kb > 0)
			sum += kb;
	}
	return sum;
}

long kernel_huge_pages(uintptr_t addr, size_t len)
{
	struct pm_page_region regions[64] = {0}; /* zeroed: valgrind does not know this ioctl */
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = addr,
		.end = addr + len,
		.vec = (uintptr_t)regions,
		.vec_len = 64,
		.category_mask = PM_PAGE_IS_HUGE,
		.return_mask = PM_PAGE_IS_HUGE,
	};
	long pages = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	while (arg.start < arg.end) {
		long n = ioctl(fd, PM_PAGEMAP_SCAN, &arg);
		if (n < 0) {
			close(fd);
			return -1;
		}
		for (long i = 0; i < n; i++)
			pages += (long)((regions[i].end - regions[i].start) / 4096);
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
	close(fd);
	return pages;
}
