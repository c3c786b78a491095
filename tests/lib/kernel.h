/* SPDX-License-Identifier: MIT */
/*
 * kernel.h - the kernel's own view, for tests to hold the allocator to:
 * everything examples/kview.h reads (/proc/vmstat counters, smaps fields,
 * PMD mappings from pagemap), and what only the tests need: /proc/self/maps
 * protections and the hugetlb pools.
 */
#ifndef HP_TEST_KERNEL_H
#define HP_TEST_KERNEL_H

#include <stdbool.h>

#include "kview.h"

/* PROT_* of the VMA holding @addr, or -1 if none (a fresh snapshot, below). */
int kernel_prot_at(uintptr_t addr);
/* /proc/self/maps at one moment, sorted by address, for checks of many
 * pages: kernel_maps_load() replaces the snapshot (0, or -1). */
struct kernel_vma {
	uintptr_t start, end;
	int prot; /* PROT_* */
};
int kernel_maps_load(void);
/* The snapshot's VMAs, and the PROT_* of the one holding @addr (-1: none). */
const struct kernel_vma *kernel_maps(size_t *n);
int kernel_maps_prot(uintptr_t addr);
/* The kernel's THP event counters in /proc/vmstat are the whole machine's:
 * does @allocs, thp_collapse_alloc's rise over @attempts MADV_COLLAPSE
 * calls of ours, fit them?  It counts the huge pages allocated for a
 * collapse, by anyone: none where a block's pages are still one huge folio
 * (mapped again with a PMD, no copy), one for each of ours otherwise, and
 * khugepaged's besides.  With khugepaged asleep (kernel_khugepaged_pause)
 * thp.t and random.t read exactly ours in 16 runs; before the pause really
 * put it to sleep they read up to two a call (+2 for one call in 6 runs of
 * 20, 24-27 for 24).  A scan of khugepaged's that still slips in must not
 * fail a test: up to two a call. */
bool kernel_collapse_allocs_fit(long allocs, unsigned long attempts);

/* A /proc/meminfo field (HugePages_Free ...), or -1. */
long kernel_meminfo(const char *field);
/* Read / write a long in a /proc or /sys file; write returns 0 or -1. */
long kernel_read_long(const char *path);
int kernel_write_long(const char *path, long v);

/* A setting a test changed (a /proc or /sys file and the value to put
 * back): kernel_guard before changing it, kernel_unguard once it is back.
 * If the test dies in between, however it dies (abort, a crash, SIGKILL:
 * no atexit runs), a guardian process it forked writes the value back.
 * kernel_pool_set and kernel_khugepaged_pause use it. */
void kernel_guard(const char *path, long old);
void kernel_unguard(const char *path);

/* The hugetlb pools, and setting them for a test: kernel_pool_set makes
 * @path's nr_hugepages @n (0, or -1 when the kernel gives fewer: not
 * root, memory too fragmented; then every pool set is back as it was),
 * remembering the value it had the first time; kernel_pool_restore (also
 * run at exit) puts every pool back; kernel_pool_old is that value (-1:
 * never set). */
#define KERNEL_POOL_2M "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
#define KERNEL_POOL_1G "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
int kernel_pool_set(const char *path, long n);
void kernel_pool_restore(void);
long kernel_pool_old(const char *path);

/* khugepaged asleep while a test runs: it may collapse one of our uniform
 * blocks behind our back (docs/design.md, "What khugepaged does behind our
 * back"), which a test that times or counts our collapses must not see.
 * kernel_khugepaged_pause sets its scan interval to an hour, remembering
 * the old one, which kernel_khugepaged_resume (also run at exit) puts
 * back; 0, or -1 when the interval cannot be set (not root). */
#define KERNEL_KHUGEPAGED_SLEEP                                                                    \
	"/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs"
#define KERNEL_KHUGEPAGED_PAUSED (3600 * 1000L) /* ms: an hour */
int kernel_khugepaged_pause(void);
void kernel_khugepaged_resume(void);

#endif
