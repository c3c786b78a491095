/* SPDX-License-Identifier: MIT */
/*
 * held.c - reservations held for the kernel until they hold code, as the
 * preload's reserve.c does, for the hugeperm-block policy.
 *
 * A PROT_NONE|MAP_NORESERVE range that the placement rule calls a code
 * range is not served when it is mapped: the kernel maps it where the
 * program asked (the naive policy's calls), and the program's calls on it
 * are the kernel's.  The first sign that it holds code (a protect that
 * asks for PROT_EXEC, or a MAP_FIXED executable mapping inside it) adopts
 * it: one lazily committed allocation of the policy's arena (class
 * PROT_NONE, no memory until pages are made accessible), each piece the
 * program had made accessible taking its protection there, and the
 * kernel's mapping gone.  From then on it is served as any code range.  A
 * reservation never made executable (Erlang's literal area) is the
 * kernel's to the end and costs the arena nothing.
 *
 * The simulator places an adopted range at the arena's address, not the
 * program's (the preload maps it in place through fixed.c's arenas);
 * what is counted, blocks and their mapping, is the same.
 */
#include <errno.h>
#include <hugeperm.h>

#include "sim_internal.h"

void sim_held_map(struct sim *s, struct sim_alloc *a)
{
	sim_naive.map(s, a);
	a->pv |= SIM_PV_HELD;
}

int sim_held_adopt(struct sim *s, struct hp_arena *arena, struct sim_alloc *a)
{
	void *p = hp_arena_alloc(arena, a->npages << SIM_PAGE_SHIFT, PROT_NONE);
	if (!p)
		return errno ? errno : ENOMEM;
	uint64_t at = (uint64_t)(uintptr_t)p >> SIM_PAGE_SHIFT;
	for (uint64_t j = 0; j < a->npages;) { /* each piece keeps its protection */
		uint64_t k = j + 1;
		while (k < a->npages && a->prot[k] == a->prot[j])
			k++;
		if (a->prot[j] != SIM_UNMAPPED && a->prot[j] != PROT_NONE)
			hp_arena_protect(arena, (char *)p + (j << SIM_PAGE_SHIFT),
					 (k - j) << SIM_PAGE_SHIFT, a->prot[j]);
		j = k;
	}
	uint64_t old = a->page;
	sim_move(s, a, at);
	sim_mm_unmap(&s->mm, old, a->npages);
	a->pv &= ~(uint64_t)SIM_PV_HELD;
	return 0;
}
