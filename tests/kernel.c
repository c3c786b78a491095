/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernel.h"
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

int kernel_prot_at(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int prot = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3)
			continue;
		if (addr >= s && addr < e) {
			prot = (perms[0] == 'r' ? PROT_READ : 0) |
			       (perms[1] == 'w' ? PROT_WRITE : 0) |
			       (perms[2] == 'x' ? PROT_EXEC : 0);
			break;
		}
	}
	fclose(f);
	return prot;
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

long kernel_meminfo(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t flen = strlen(field);
	long r = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			r = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return r;
}

long kernel_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

int kernel_write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	int r = fprintf(f, "%ld\n", v) > 0 ? 0 : -1;
	if (fclose(f))
		r = -1;
	return r;
}
