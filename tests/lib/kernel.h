/* SPDX-License-Identifier: MIT */
/*
 * kernel.h - the kernel's own view, for tests to hold the allocator to:
 * everything examples/kview.h reads (/proc/vmstat counters, smaps fields,
 * PMD mappings from pagemap), and what only the tests need: /proc/self/maps
 * protections and the hugetlb pools.
 */
#ifndef HP_TEST_KERNEL_H
#define HP_TEST_KERNEL_H

#include "kview.h"

/* PROT_* of the VMA holding @addr, or -1 if none. */
int kernel_prot_at(uintptr_t addr);
/* A /proc/meminfo field (HugePages_Free ...), or -1. */
long kernel_meminfo(const char *field);
/* Read / write a long in a /proc or /sys file; write returns 0 or -1. */
long kernel_read_long(const char *path);
int kernel_write_long(const char *path, long v);

#endif
