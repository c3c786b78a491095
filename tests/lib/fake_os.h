/* SPDX-License-Identifier: MIT */
/*
 * fake_os.h - OS hooks that make no system call, for policy tests.
 *
 * Addresses come from a private range that no real mapping uses; commit
 * makes blocks "huge" as THP would; every protect and collapse is recorded;
 * collapse answers from a script of errnos; the clock is set by the test.
 */
#ifndef HP_TEST_FAKE_OS_H
#define HP_TEST_FAKE_OS_H

#include "internal.h"

struct fake_os_state {
	uint64_t now_ns;	 /* the fake clock */
	int collapse_script[64]; /* errnos to answer, in order; then 0 */
	int ncollapse_script;
	int collapse_calls; /* collapses after commit verification */
	int protect_calls;
	int discard_calls;  /* MADV_DONTNEED */
	int populate_calls; /* MADV_POPULATE_WRITE (lazy blocks before a collapse) */
	int commit_calls;
	int commit_fail_after; /* commits that succeed before hugetlb ENOMEM; -1: never */
	int last_protect_prot;
	size_t last_protect_size;
	int shm_files;		    /* memfds created */
	int shm_commits;	    /* aliased blocks committed */
	int shm_refuse;		    /* errno for shared commits (memfd_noexec=2), 0: accept */
	int mem_writes;		    /* writes through /proc/self/mem */
	int stores;		    /* the library's own stores (hp_write, fills) */
	int guard_calls;	    /* MADV_GUARD_INSTALL/REMOVE calls */
	int guard_refuse;	    /* errno for them (old kernel: EINVAL), 0: accept */
	int cpu_node;		    /* the fake topology: the node "this CPU" is on */
	int last_commit_node;	    /* node the last commit was bound to (-1: none) */
	uintptr_t busy_lo, busy_hi; /* a mapping of the program's that chunks avoid */
	int reserve_in_calls;	    /* slots tried for an arena with near */
};

extern struct fake_os_state fake;
extern const struct hp_os fake_os;
void fake_reset(void);
/* An arena on the fake OS with @backend; collapse mode @mode. */
struct hp_arena *fake_arena(int backend, int mode);
void fake_arena_free(struct hp_arena *a);

#endif
