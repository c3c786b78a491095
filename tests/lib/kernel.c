/* SPDX-License-Identifier: MIT */
/*
 * kernel.c - the kernel's view that only the tests read: the protection
 * /proc/self/maps gives an address, /proc/meminfo fields (the hugetlb
 * pools), and single numbers in /proc and /sys files (the tests that
 * reserve hugetlb pages write them back as they were).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernel.h"

static struct kernel_vma *vmas;
static size_t nvmas, capvmas;

int kernel_maps_load(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	nvmas = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3)
			continue;
		if (nvmas == capvmas) {
			size_t cap = capvmas ? 2 * capvmas : 1024;
			struct kernel_vma *nv = realloc(vmas, cap * sizeof(*nv));
			if (!nv)
				break;
			vmas = nv;
			capvmas = cap;
		}
		vmas[nvmas++] = (struct kernel_vma){s, e,
						    (perms[0] == 'r' ? PROT_READ : 0) |
							    (perms[1] == 'w' ? PROT_WRITE : 0) |
							    (perms[2] == 'x' ? PROT_EXEC : 0)};
	}
	fclose(f);
	return 0;
}

const struct kernel_vma *kernel_maps(size_t *n)
{
	*n = nvmas;
	return vmas;
}

int kernel_maps_prot(uintptr_t a)
{
	size_t lo = 0, hi = nvmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a < vmas[mid].start)
			hi = mid;
		else if (a >= vmas[mid].end)
			lo = mid + 1;
		else
			return vmas[mid].prot;
	}
	return -1;
}

int kernel_prot_at(uintptr_t addr)
{
	return kernel_maps_load() ? -1 : kernel_maps_prot(addr);
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

/* The pools kernel_pool_set changed, and what they held before. */
static struct {
	const char *path;
	long old;
} pools[4];
static int npools;

void kernel_pool_restore(void)
{
	for (int i = 0; i < npools; i++)
		kernel_write_long(pools[i].path, pools[i].old);
}

long kernel_pool_old(const char *path)
{
	for (int i = 0; i < npools; i++)
		if (!strcmp(pools[i].path, path))
			return pools[i].old;
	return -1;
}

int kernel_pool_set(const char *path, long n)
{
	if (kernel_pool_old(path) < 0) {
		long old = kernel_read_long(path);
		if (old < 0 || npools == (int)(sizeof(pools) / sizeof(pools[0])))
			return -1;
		if (npools == 0)
			atexit(kernel_pool_restore);
		pools[npools].path = path;
		pools[npools++].old = old;
	}
	if (kernel_write_long(path, n) || kernel_read_long(path) < n) {
		kernel_pool_restore();
		return -1;
	}
	return 0;
}

#define PAUSED (3600 * 1000L) /* ms: an hour */
static long khugepaged_old = -1;
static pid_t khugepaged_pauser; /* a forked child's exit leaves it paused */

void kernel_khugepaged_resume(void)
{
	if (khugepaged_old >= 0 && getpid() == khugepaged_pauser)
		kernel_write_long(KERNEL_KHUGEPAGED_SLEEP, khugepaged_old);
	khugepaged_old = -1;
}

int kernel_khugepaged_pause(void)
{
	static bool registered;
	if (khugepaged_old >= 0)
		return 0; /* paused already */
	long old = kernel_read_long(KERNEL_KHUGEPAGED_SLEEP);
	if (old == PAUSED)
		return 0; /* another test's: it puts the interval back at its exit, which
			   * may come first (tests run one at a time here) */
	if (old < 0 || kernel_write_long(KERNEL_KHUGEPAGED_SLEEP, PAUSED))
		return -1;
	khugepaged_old = old;
	khugepaged_pauser = getpid();
	if (!registered)
		atexit(kernel_khugepaged_resume);
	registered = true;
	/* The write wakes it for one last scan: let that pass first. */
	usleep(200 * 1000);
	return 0;
}
