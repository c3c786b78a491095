/* SPDX-License-Identifier: MIT */
/*
 * pagemap_scan.h - the PAGEMAP_SCAN ioctl of /proc/PID/pagemap (Linux 6.7),
 * spelled out: Debian 12's kernel headers predate it.  Used by os.c (is a
 * block PMD-mapped?  which blocks hold pages?), by the preload (reserve.c:
 * which pages of a reservation hold data) and by the tests' view of the
 * kernel.
 */
#ifndef HP_PAGEMAP_SCAN_H
#define HP_PAGEMAP_SCAN_H

#include <stdint.h>
#include <sys/ioctl.h>

struct pm_page_region {
	uint64_t start, end, categories;
};

struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define PM_PAGE_IS_PRESENT (1 << 3)
#define PM_PAGE_IS_SWAPPED (1 << 4)
#define PM_PAGE_IS_PFNZERO (1 << 5)
#define PM_PAGE_IS_HUGE	   (1 << 6)
#define PM_PAGEMAP_SCAN	   _IOWR('f', 16, struct pm_scan_arg)

#endif
