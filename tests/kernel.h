/* SPDX-License-Identifier: MIT */
/*
 * kernel.h - the kernel's own view, for tests to hold the allocator to:
 * /proc/vmstat counters, /proc/self/smaps fields, /proc/self/maps
 * protections, PMD mappings from the PAGEMAP_SCAN ioctl of
 * /proc/self/pagemap, and the hugetlb pools.
 */
#ifndef HP_TEST_KERNEL_H
#define HP_TEST_KERNEL_H

#include <stddef.h>
#include <stdint.h>

long kernel_vmstat(const char *name);
/* Sum of smaps field @field (kB) over the VMAs that start in [lo, hi). */
long kernel_smaps_kb(uintptr_t lo, uintptr_t hi, const char *field);
/* Huge-mapped kB in the VMAs that start in [lo, hi): anonymous THP
 * (AnonHugePages), shmem THP (ShmemPmdMapped) and hugetlb pages. */
long kernel_huge_kb(uintptr_t lo, uintptr_t hi);
/* PROT_* of the VMA holding @addr, or -1 if none. */
int kernel_prot_at(uintptr_t addr);
/* Pages of [addr, addr+len) mapped by a huge (PMD) entry, or -1 when the
 * kernel has no PAGEMAP_SCAN (before 6.7). */
long kernel_huge_pages(uintptr_t addr, size_t len);
/* A /proc/meminfo field (HugePages_Free ...), or -1. */
long kernel_meminfo(const char *field);
/* Read / write a long in a /proc or /sys file; write returns 0 or -1. */
long kernel_read_long(const char *path);
int kernel_write_long(const char *path, long v);

#endif
