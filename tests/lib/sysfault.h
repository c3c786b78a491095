/* SPDX-License-Identifier: MIT */
/*
 * sysfault.h - fail chosen system calls of this process (x86-64), for the
 * real-kernel fault tests.
 *
 * A seccomp filter sends mmap, munmap, mprotect, madvise, memfd_create,
 * fallocate, pwrite64 and ioctl to a SIGSYS handler, which asks sysfault_policy
 * whether to fail the call (an errno) or to make it (through a stub whose
 * address the filter lets through).  The filter cannot be removed: install
 * it in a child process.  The policy runs in the signal handler: it must
 * make no system call and take no lock.
 */
#ifndef HP_TEST_SYSFAULT_H
#define HP_TEST_SYSFAULT_H

#include <stdbool.h>

/* The errno to fail system call @nr with @args, or 0 to make it.  Only
 * asked while sysfault_armed is set; NULL: make every call. */
extern int (*sysfault_policy)(long nr, const long args[6]);
extern volatile bool sysfault_armed;
/* Calls trapped while armed, and calls failed. */
extern volatile long sysfault_trapped, sysfault_failed;

/* Install the handler and the filter.  0, or an errno (no seccomp). */
int sysfault_install(void);

#endif
