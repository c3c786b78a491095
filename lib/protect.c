/* SPDX-License-Identifier: MIT */
/*
 * protect.c - protection changes, and what they do to huge mappings.
 *
 * Every change of a page's protection goes through hp_pages_protect(), so
 * the per-block counters (nprot[]) and the split and collapse accounting
 * cannot disagree with the mprotect calls actually made.
 *
 * What the kernel does, and what we count:
 *   - mprotect of part of a PMD-mapped THP splits the PMD (thp_split_pmd).
 *     We count a split when a block we believe huge goes uniform -> mixed.
 *   - mprotect of a whole block (uniform -> uniform) changes the PMD in
 *     place: no split, the block stays huge.
 *   - A block that goes mixed -> uniform is still 4K-mapped; it is queued
 *     for MADV_COLLAPSE (collapse.c).
 *   - Hugetlb pages cannot change protection in part (EINVAL): callers
 *     check ranges before anything changes; here it is only asserted.
 *
 * Like set_ptes() in the range-API thread, contiguous pages that end with
 * the same protection take one call, even across the blocks of a span.
 */
#include "config.h"

#include "internal.h"

void hp_block_learn_huge(struct hp_arena *a, struct hp_block *b)
{
	bool huge;
	if (!b->huge && b->backend == HP_BACKEND_THP && hp_block_uniform(b, NULL) &&
	    a->os->huge_mapped(b->base, HP_BLOCK_SIZE, &huge) == 0 && huge) {
		b->huge = true;
		b->lazy = false;
		a->n.khugepaged++;
	}
}

int hp_pages_protect(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n, int prot)
{
	struct hp_block *blk = b;
	size_t left = n;
	unsigned at = first;
	bool change = false;

	/* Anything to do?  And no collapse in flight on any block touched. */
	for (blk = b, left = n, at = first; left; blk++, at = 0) {
		unsigned k = (unsigned)(HP_BLOCK_PAGES - at < left ? HP_BLOCK_PAGES - at : left);
		if (!hp_block_prot_is(blk, at, k, prot))
			change = true;
		left -= k;
	}
	if (!change)
		return 0;
	for (blk = b, left = n, at = first; left; blk++, at = 0) {
		unsigned k = (unsigned)(HP_BLOCK_PAGES - at < left ? HP_BLOCK_PAGES - at : left);
		hp_block_wait_collapse(a, blk);
		/* A uniform block we left 4K-mapped may have been collapsed by
		 * khugepaged meanwhile: ask the kernel before a partial change,
		 * or its split would go uncounted.  Not a flapping block in its
		 * quiet period: a PAGEMAP_SCAN per flip (YJIT: 19,500) for what
		 * khugepaged, scanning every 10 s, next to never does there. */
		if (k < HP_BLOCK_PAGES && blk->cold)
			hp_collapse_warm(a, blk);
		else if (k < HP_BLOCK_PAGES && !hp_collapse_quiet(a, blk))
			hp_block_learn_huge(a, blk);
		left -= k;
	}

	int err = a->os->protect(b->base + (uintptr_t)first * HP_PAGE_SIZE, n * HP_PAGE_SIZE, prot);
	a->n.mprotect_calls++;
	if (err)
		return err;

	for (blk = b, left = n, at = first; left; blk++, at = 0) {
		unsigned k = (unsigned)(HP_BLOCK_PAGES - at < left ? HP_BLOCK_PAGES - at : left);
		bool was_uniform = hp_block_uniform(blk, NULL);
		hp_block_set_prot(blk, at, k, prot);
		bool uniform = hp_block_uniform(blk, NULL);
		if (was_uniform && !uniform && blk->huge) {
			if (hp_backend_is_hugetlb(blk->backend))
				hp_os_die("partial protection change on a hugetlb block");
			blk->huge = false;
			a->n.splits[blk->home]++;
			hp_collapse_note_split(a, blk);
		}
		/* A lazy block made uniform and accessible in one go has no
		 * page yet: it too is queued, to be populated and collapsed. */
		if (uniform && (!was_uniform || blk->lazy))
			hp_collapse_note_uniform(a, blk);
		left -= k;
	}
	return 0;
}
