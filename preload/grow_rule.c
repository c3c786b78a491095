/* SPDX-License-Identifier: MIT */
/*
 * grow_rule.c - the rule that gives a heap's next chunk to the kernel
 * (grow_rule.h; why, in grow.c).  Pure: it reads its arguments only, so
 * that the simulator decides with the preload's own code.
 */
#include "grow_rule.h"

#define GROW_PAGE 4096UL

bool hp_hint_grows(uintptr_t hint, const struct hp_hint_below *below, bool packed)
{
	if (hint < 2 * GROW_PAGE || !below->mapped)
		return false;
	if (!below->ours)
		return true; /* continues a kernel mapping */
	return packed && below->area_end && !below->ran && below->writable;
}
