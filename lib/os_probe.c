/* SPDX-License-Identifier: MIT */
/*
 * os_probe.c - what the machine offers, read once (struct hp_os's probe):
 * hugetlb pools (global and per node), the THP mode, whether MADV_COLLAPSE
 * and VMA names work (asked on an unpopulated scratch block),
 * vm.memfd_noexec, the page size, and the NUMA topology, which also answers
 * cpu_node afterwards.
 * What cannot be read is reported as absent; nothing here fails.
 */
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "os_sys.h"

/* Read a small file into @buf (NUL-terminated); bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

static long read_long(const char *path)
{
	char buf[64];
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

/* Free hugetlb pages of one size that a new mapping could still take. */
static long hugetlb_available(const char *dir)
{
	char path[128];
	size_t n = strlen(dir);
	memcpy(path, dir, n);
	strcpy(path + n, "/free_hugepages");
	long free = read_long(path);
	if (free < 0)
		return -1;
	strcpy(path + n, "/resv_hugepages");
	long resv = read_long(path);
	return free - (resv > 0 ? resv : 0);
}

/* NUMA topology, read once by the probe: which node each CPU is on. */
#define MAX_CPUS 1024
static uint8_t cpu_node_tab[MAX_CPUS];

/* Parse a sysfs list ("0-3,8,10-11"); call @fn for each number. */
static void parse_list(const char *s, void (*fn)(long v, void *arg), void *arg)
{
	while (*s >= '0' && *s <= '9') {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		for (long v = lo; v <= hi && v - lo < 4096; v++)
			fn(v, arg);
		s = *end == ',' ? end + 1 : end;
	}
}

static void note_node(long v, void *arg)
{
	int *max = arg;
	if (v + 1 > *max && v < 1024)
		*max = (int)v + 1;
}

struct cpu_arg {
	int node;
};

static void note_cpu(long v, void *arg)
{
	if (v >= 0 && v < MAX_CPUS)
		cpu_node_tab[v] = (uint8_t)((struct cpu_arg *)arg)->node;
}

static void probe_numa(struct hp_probe *pr)
{
	char buf[512], path[96];
	pr->nnodes = 1;
	if (read_small("/sys/devices/system/node/has_memory", buf, sizeof(buf)) > 0) {
		int max = 0;
		parse_list(buf, note_node, &max);
		if (max > 0)
			pr->nnodes = max;
	}
	for (int n = 0; n < pr->nnodes && n < 256; n++) {
		struct hp_buf b = {path, sizeof(path) - 1, 0};
		hp_buf_str(&b, "/sys/devices/system/node/node");
		hp_buf_u64(&b, (uint64_t)n);
		hp_buf_str(&b, "/cpulist");
		path[b.len] = 0;
		struct cpu_arg ca = {n};
		if (read_small(path, buf, sizeof(buf)) > 0)
			parse_list(buf, note_cpu, &ca);
	}
}

void hp_sys_probe_pools(struct hp_probe *pr)
{
	char path[96];

	pr->hugetlb_2m_free = hugetlb_available("/sys/kernel/mm/hugepages/hugepages-2048kB");
	pr->hugetlb_1g_free = hugetlb_available("/sys/kernel/mm/hugepages/hugepages-1048576kB");
	for (int n = 0; n < HP_MAX_NODES; n++) {
		pr->node_hugetlb_2m_free[n] = -1;
		if (n >= pr->nnodes)
			continue;
		struct hp_buf b = {path, sizeof(path) - 1, 0};
		hp_buf_str(&b, "/sys/devices/system/node/node");
		hp_buf_u64(&b, (uint64_t)n);
		hp_buf_str(&b, "/hugepages/hugepages-2048kB");
		path[b.len] = 0;
		pr->node_hugetlb_2m_free[n] = hugetlb_available(path);
	}
}

/* The node of the CPU we run on (sched_getcpu: the vDSO, no system call
 * on x86_64), from the table the probe built. */
int hp_sys_cpu_node(void)
{
	int cpu = sched_getcpu();
	return cpu >= 0 && cpu < MAX_CPUS ? cpu_node_tab[cpu] : 0;
}

void hp_sys_probe(struct hp_probe *pr)
{
	char buf[128];

	memset(pr, 0, sizeof(*pr));
	probe_numa(pr);
	hp_sys_probe_pools(pr);
	pr->memfd_noexec = read_long("/proc/sys/vm/memfd_noexec");
	pr->page_size = sysconf(_SC_PAGESIZE);

	strcpy(pr->thp_mode, "absent");
	if (read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) > 0) {
		char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
		if (l && r && (size_t)(r - l - 1) < sizeof(pr->thp_mode)) {
			memcpy(pr->thp_mode, l + 1, r - l - 1);
			pr->thp_mode[r - l - 1] = 0;
		}
		pr->thp = !strcmp(pr->thp_mode, "always") || !strcmp(pr->thp_mode, "madvise");
	}

	/* MADV_COLLAPSE and VMA names: try them on a scratch block, which
	 * stays unpopulated.  madvise(2) checks its advice before the range,
	 * and an empty range is then done: 0 for a known advice, EINVAL for
	 * an unknown one (a non-empty range that cannot collapse gives EINVAL
	 * too).  Faulting a huge page in to collapse it cost every process
	 * that was served a 2 MiB page clear, 0.5-2.5 ms on this VM. */
	uintptr_t blk;
	if (pr->thp && hp_sys_reserve(HP_BLOCK_SIZE, HP_BLOCK_SIZE, &blk) == 0) {
		void *p = sys_mmap((void *)blk, HP_BLOCK_SIZE, PROT_READ | PROT_WRITE,
				   ANON | MAP_FIXED, -1, 0);
		if (p != MAP_FAILED) {
			pr->collapse = sys_madvise(p, 0, MADV_COLLAPSE) == 0;
			pr->vma_names = hp_sys_name(blk, HP_BLOCK_SIZE, "hugeperm:probe") == 0;
			if (!pr->vma_names) /* not on a plain anonymous block: never */
				hp_sys_name_off();
		}
		sys_munmap((void *)blk, HP_BLOCK_SIZE);
	}
}
