/* SPDX-License-Identifier: MIT */
/*
 * grow_hint.c - the preload's grow rule in the simulator: a hinted area
 * whose hint continues a mapping is a heap's next chunk (Boehm's GC in
 * Guile, LuaJIT's allocator), which the preload gives the kernel
 * (preload/grow.c).  The decision is the preload's own pure function
 * (hp_hint_grows, preload/grow_rule.c); this file answers what it asks,
 * "is the page below the hint mapped, and by hugeperm?", from the address
 * space the trace implies.
 *
 * The trace was recorded with nothing served (`hugeperm record`): its
 * addresses and hints are where the kernel put things and what the
 * program asked for then.  Under the preload, a mapping the policy leaves
 * to the kernel is where the trace says; one it serves is where the
 * policy put it (sim_alloc.at), and the program, which hints at the end of
 * its last chunk, would have asked at the end of that one.  So the hint
 * is taken relative to the mapping that holds the page below it: at the
 * same offset from that mapping's place under the policy.  Its alignment
 * is then the preload's too (a hint at the end of a packed 128 KiB area
 * is 64 KiB-aligned whatever the kernel's was).
 *
 * Mappings the trace does not record (files, shared memory, the brk heap,
 * the loader's) are known by what the recorder saw when the map was asked
 * for (HP_TF_GROWS: the page below the hint mapped, not by hugeperm); with
 * no recorded mapping below, that answers.
 * A trace without hint addresses (version 1, or `hint` alone) is placed as
 * before: every hinted mapping as the 64 KiB-aligned hint the preload looks
 * for, and no grow rule.
 */
#include <string.h>
#include <sys/mman.h>

#include "grow_rule.h"
#include "sim_internal.h"

uint64_t sim_hint_seen(struct sim *s, const struct sim_pack *pack, const struct sim_alloc *a,
		       struct hp_hint_below *below)
{
	memset(below, 0, sizeof(*below));
	uint64_t hint = a->hint;
	uint64_t pg = hint >> SIM_PAGE_SHIFT;
	if (!hint || pg == 0 || hint % (1UL << SIM_PAGE_SHIFT))
		return hint; /* mincore(2) on an unaligned page says nothing is there */
	struct sim_alloc *m = sim_alloc_mapping(s, pg - 1);
	if (!m) { /* none the trace shows: a file, a stack... as the recorder saw */
		below->mapped = (a->flags & HP_TF_GROWS) != 0;
		return hint;
	}
	below->mapped = true;
	if (m->pv & (SIM_PV_KERNEL | SIM_PV_HELD))
		return hint; /* the kernel's, where the trace says */
	below->ours = true;
	if ((m->pv & SIM_PV_PACKED) && pg == m->page + m->npages) {
		below->area_end = true;
		below->ran = sim_pack_ran(pack, m);
		below->writable = (m->prot[m->npages - 1] & PROT_WRITE) != 0;
	}
	return (m->at + (pg - m->page)) << SIM_PAGE_SHIFT;
}
