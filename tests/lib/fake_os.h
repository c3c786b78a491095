/* SPDX-License-Identifier: MIT */
/*
 * fake_os.h - OS hooks that make no system call, for policy tests.
 *
 * Addresses come from a private range that no real mapping uses; commit
 * makes blocks "huge" as THP would (huge_mapped says so of the last commit);
 * every protect and collapse is recorded, and a collapse made with an
 * arena's lock held is counted (collapse_locked);
 * collapse answers from a script of errnos; the clock is set by the test.
 */
#ifndef HP_TEST_FAKE_OS_H
#define HP_TEST_FAKE_OS_H

#include "internal.h"

/* The hooks a fault schedule can fail (those that return an errno). */
enum fake_hook {
	FH_RESERVE,
	FH_RESERVE_IN,
	FH_RELEASE,
	FH_COMMIT,
	FH_DECOMMIT,
	FH_DISCARD,
	FH_POPULATE,
	FH_PROTECT,
	FH_COLLAPSE,
	FH_NAME,
	FH_GUARD,
	FH_HUGE_MAPPED,
	FH_ALIAS_CREATE,
	FH_ALIAS_COMMIT,
	FH_ALIAS_DECOMMIT,
	FH_ALIAS_COPY,
	FH_ALIAS_REMAP,
	FH_MEM_WRITE,
	FH_META_ALLOC, /* fails as NULL: the errno is ignored */
	FH_ADVISE_HUGE,
	FH_HELD,
	FH_NHOOKS
};
extern const char *const fake_hook_names[FH_NHOOKS];

struct fake_os_state {
	/* The fault schedule: call number fault_at (1-based, counted in
	 * calls[] since fake_reset) of hook fault_hook fails with fault_err,
	 * and changes nothing.  fault_at 0: no fault. */
	int fault_hook, fault_at, fault_err;
	int faults_hit;		   /* faults injected so far */
	unsigned calls[FH_NHOOKS]; /* calls of each hook */
	/* What the fake machine has given out, to find leaks. */
	size_t mapped_reserved;	 /* reservations (reserve, reserve_in - release) */
	size_t mapped_committed; /* memory (commit, alias_commit - decommits) */
	int fds_open;		 /* alias_create - close */
	long meta_live;		 /* meta_alloc - meta_free */

	uint64_t now_ns; /* the fake clock */
	/* What a successful commit (either kind), populate and collapse call
	 * moves the fake clock on by: the time the kernel would take. */
	uint64_t commit_cost_ns, populate_cost_ns, collapse_cost_ns;
	int collapse_script[64]; /* errnos to answer, in order; then 0 */
	int ncollapse_script;
	int collapse_calls;	/* MADV_COLLAPSE calls */
	int collapse_locked;	/* ... made with a fake arena's lock held: a bug */
	bool fresh_small;	/* the populate fault of a THP commit took small pages */
	int huge_mapped_refuse; /* errno for every huge_mapped (before Linux 6.7:
				 * ENOTTY), 0: answer */
	int protect_calls;
	int discard_calls;	       /* MADV_DONTNEED */
	int populate_calls;	       /* MADV_POPULATE_WRITE (lazy blocks before a collapse) */
	int advise_small, advise_huge; /* MADV_NOHUGEPAGE, MADV_HUGEPAGE calls */
	int commit_calls;
	int commit_fail_after; /* commits that succeed before hugetlb ENOMEM; -1: never */
	int last_protect_prot;
	size_t last_protect_size;
	int shm_files;		    /* memfds created */
	int shm_commits;	    /* aliased blocks committed */
	int shm_refuse;		    /* errno for shared commits (memfd_noexec=2), 0: accept */
	int mem_writes;		    /* writes through /proc/self/mem */
	int mem_write_refuse;	    /* errno for every mem_write, 0: accept */
	int stores;		    /* the library's own stores (hp_write, fills) */
	size_t stored_bytes;	    /* ... and their bytes */
	int guard_calls;	    /* MADV_GUARD_INSTALL/REMOVE calls */
	int guard_refuse;	    /* errno for them (old kernel: EINVAL), 0: accept */
	int cpu_node;		    /* the fake topology: the node "this CPU" is on */
	int last_commit_node;	    /* node the last commit was bound to (-1: none) */
	uintptr_t busy_lo, busy_hi; /* a mapping of the program's that chunks avoid */
	int reserve_in_calls;	    /* slots tried for an arena with near */

	/* held (which blocks hold pages): ENOTTY, as before Linux 6.7, unless
	 * held_answer; then the blocks at held_at[0..nheld_at) hold pages. */
	bool held_answer;
	uintptr_t held_at[8];
	int nheld_at;
	int held_calls;
};

extern struct fake_os_state fake;
extern const struct hp_os fake_os;
void fake_reset(void);
/* An arena on the fake OS with @backend; collapse mode @mode. */
struct hp_arena *fake_arena(int backend, int mode);
void fake_arena_free(struct hp_arena *a);
/* hp_arena_check of @a: 0 or EUCLEAN, the violation in @why (NUL-ended). */
int fake_arena_check(struct hp_arena *a, char *why, size_t n);
/* TAP checks that @a's statistics add up (free + cached + used ==
 * committed) and its invariants hold (hp_arena_check), @when. */
void fake_check_arena(struct hp_arena *a, const char *when);
/* @a's statistics as a caller built when struct hp_stats ended at @size
 * reads them, into *@st: true if the call succeeded and wrote nothing
 * past @size (the rest of *@st and a canary after it keep a pattern). */
bool fake_stats_sized(struct hp_arena *a, size_t size, struct hp_stats *st);

#endif
