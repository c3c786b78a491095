/* SPDX-License-Identifier: MIT */
/*
 * code_range_flip.c - the fast path of mprotect in a code range: a call
 * whose pages all lie in the regions of one code range (Ruby's YJIT: a
 * page made RW to write code, then the 128 MiB half that holds it RX
 * again, 39,000 calls a run).
 *
 * Such a call needs no cover walk (every page of it is in a region, so it
 * is mapped), and no kernel parts (regions are in our chunks, and no given
 * range holds a region): only the regions' protections, and the blocks of
 * those that changed reconciled (code_range.c).  And a region that already
 * has the protection asked for is not split at the call's ends: the two
 * pieces would end alike and be merged again at once.  YJIT's half flips
 * split nothing, and a call that changes nothing (the range and protection
 * recorded already) returns after the walk.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "preload.h"

/* Regions walked at most: past this the call takes the general path. */
#define FLIP_REGIONS 64

/* Do the regions of one code range hold all of [start, end), with no gap? */
static bool in_one_code_range(uintptr_t start, uintptr_t end)
{
	size_t i = region_find(start);
	const struct region *first = region_at(i), *reg;
	if (!first || first->kind != KIND_CODE_RANGE || first->start > start)
		return false;
	uintptr_t at = first->end;
	for (size_t n = 0; at < end; n++) {
		reg = region_at(++i);
		if (!reg || n == FLIP_REGIONS || reg->start != at || reg->kind != KIND_CODE_RANGE ||
		    reg->base != first->base)
			return false;
		at = reg->end;
	}
	return true;
}

/* Split at @addr unless the region there has @prot already. */
static bool split_unless(uintptr_t addr, int prot)
{
	const struct region *reg = region_at(region_find(addr));
	if (reg && reg->start < addr && reg->prot == prot)
		return true;
	return region_split_at(addr);
}

int code_range_flip(uintptr_t start, uintptr_t end, int prot)
{
	if ((prot & ~PROTS) || !in_one_code_range(start, end))
		return 1;
	if (!split_unless(start, prot) || !split_unless(end, prot)) {
		errno = ENOMEM;
		return -1;
	}
	struct code_range_changed changed = {0};
	struct region *reg;
	for (size_t i = region_find(start); (reg = region_at(i)) && reg->start < end; i++) {
		if (reg->prot != prot)
			code_range_changed_note(&changed, reg);
		region_set_prot(reg, prot);
	}
	return code_range_changed_apply(&changed) ? -1 : 0;
}
