/* SPDX-License-Identifier: MIT */
/*
 * thp.c - the program's THP switch: prctl(PR_SET_THP_DISABLE, 1) turns
 * transparent huge pages off for the whole process, ours included (Ruby
 * 3.1 does so at start, for its forks' sake), and MADV_COLLAPSE with them.
 * Where the kernel knows PR_THP_DISABLE_EXCEPT_ADVISED (Linux 6.18), the
 * switch is turned into that: off for every mapping of the program's, as
 * it asked (none of them is MADV_HUGEPAGE unless it says so), on for the
 * blocks hugeperm advised.  PR_GET_THP_DISABLE then says 1, what the
 * program set.  On an older kernel, the program's call as it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <sys/prctl.h>

#include "preload.h"

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif

static int spared; /* the program's switch was set with the exception */

HOOK int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long),
		      a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_THP_DISABLE && a2 == 1 && !a3 && !a4 && !a5) {
		int err = errno;
		if (k_prctl(option, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) == 0) {
			__atomic_store_n(&spared, 1, __ATOMIC_RELAXED);
			return 0;
		}
		errno = err; /* an older kernel: as asked */
	} else if (option == PR_SET_THP_DISABLE) {
		__atomic_store_n(&spared, 0, __ATOMIC_RELAXED);
	} else if (option == PR_GET_THP_DISABLE && __atomic_load_n(&spared, __ATOMIC_RELAXED)) {
		int rc = k_prctl(option, a2, a3, a4, a5);
		return rc == (1 | PR_THP_DISABLE_EXCEPT_ADVISED) ? 1 : rc;
	}
	return k_prctl(option, a2, a3, a4, a5);
}
