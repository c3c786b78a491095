/* SPDX-License-Identifier: MIT */
/*
 * api.h - what the files of public calls (api.c, code_calls.c) share: the
 * default arena, the answer to bad input, the check of an arena handle and
 * the polls at the end of a call.
 */
#ifndef HP_API_H
#define HP_API_H

#include "internal.h"

/* The arena of the hp_X calls (api.c), and whether it is set up. */
extern struct hp_arena hp_default_arena;
extern bool hp_default_ready; /* atomic */
/* The default arena, set up on first use; NULL + errno if that failed. */
struct hp_arena *hp_default_get(void);

/* Bad input: errno, or with HUGEPERM_CHECKED an abort that says why.  -1. */
int hp_api_bad(int err, const char *call, const void *ptr, const char *why);
/* arena_ok's answer for a bad handle: false, errno set. */
__attribute__((noinline, cold)) bool hp_api_arena_bad(struct hp_arena *a, const char *call);

/*
 * Is @a an arena that can be used?  NULL is EINVAL; so is a destroyed one,
 * as long as its first page, which holds HP_ARENA_DEAD, is kept (bury()):
 * a stale handle then reads DEAD, never unmapped memory or a new arena made
 * at the same address.  Sets errno (or aborts, checked) when not.
 */
static inline __attribute__((always_inline)) bool arena_ok(struct hp_arena *a, const char *call)
{
	if (__builtin_expect(a && __atomic_load_n(&a->magic, __ATOMIC_RELAXED) == HP_ARENA_LIVE, 1))
		return true;
	return hp_api_arena_bad(a, call);
}

/*
 * The end of a public call, the arena lock not held.  Sync mode runs what
 * the call queued.  Deferred mode with no collapse thread has no "later"
 * for a block committed by this call that the kernel did not map huge (an
 * aliased block's shmem pages with shmem_enabled=never; a fragmented
 * machine): it is collapsed here, lock dropped, before the call returns,
 * once per new block.  With the thread, the thread does it.
 */
static inline __attribute__((always_inline)) void after_call(struct hp_arena *a)
{
	/* A quiet arena whose collapse thread runs leaves every collapse to it
	 * (collapse.c): YJIT's blocks wait queued for quiet through thousands
	 * of flips, and a queue walk per call would find nothing due. */
	if (a->collapse_mode == HP_COLLAPSE_SYNC &&
	    __atomic_load_n(&a->nqueued, __ATOMIC_RELAXED) && !hp_collapse_threaded(a))
		hp_collapse_run(a, HP_RUN_NOW, 0, NULL);
	else if (a->collapse_mode == HP_COLLAPSE_DEFERRED && !a->collapse_thread &&
		 __atomic_load_n(&a->nfresh, __ATOMIC_RELAXED))
		hp_collapse_run(a, HP_RUN_FRESH, 0, NULL);
	hp_purge_poll(a);
}

#endif /* HP_API_H */
