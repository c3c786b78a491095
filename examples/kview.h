/* SPDX-License-Identifier: MIT */
/*
 * kview.h - the kernel's own view of this process's memory, for the demo,
 * the benchmarks and the tests: /proc/vmstat counters, /proc/self/smaps
 * fields, and PMD mappings from the PAGEMAP_SCAN ioctl of
 * /proc/self/pagemap.  Built as libkview.la (not installed).
 */
#ifndef HP_KVIEW_H
#define HP_KVIEW_H

#include <stddef.h>
#include <stdint.h>

long kernel_vmstat(const char *name);
/* Sum of smaps field @field (kB) over the VMAs that start in [lo, hi). */
long kernel_smaps_kb(uintptr_t lo, uintptr_t hi, const char *field);
/* Huge-mapped kB in the VMAs that start in [lo, hi): anonymous THP
 * (AnonHugePages), shmem THP (ShmemPmdMapped) and hugetlb pages. */
long kernel_huge_kb(uintptr_t lo, uintptr_t hi);
/* Pages of [addr, addr+len) mapped by a huge (PMD) entry, or -1 when the
 * kernel has no PAGEMAP_SCAN (before 6.7). */
long kernel_huge_pages(uintptr_t addr, size_t len);

#endif
