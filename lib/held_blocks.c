/* SPDX-License-Identifier: MIT */
/*
 * held_blocks.c - which blocks of a run hold memory, so that dropping the
 * memory of a run of whole blocks (MADV_DONTNEED) skips the blocks the
 * kernel has no page of.
 *
 * V8 reserves a 512 MiB code range and commits a few MiB of it; the
 * preload adopts the range as a code range and sets its untouched blocks
 * back to NONE with their memory dropped, and frees them all when V8
 * unmaps it: 256 MADV_DONTNEED calls each time (768 in a `node` run of
 * bench-engines' node-functions), each a walk of page tables that are not
 * there.  One PAGEMAP_SCAN of the run (the os hook `held`) answers for up
 * to 512 blocks; a block it does not vouch for is discarded as before:
 * the scan failed (before Linux 6.7), or the block is aliased (its memfd
 * holds pages that no mapping of ours need show).  A run of one block is
 * discarded without asking: the scan would cost as much as the call.
 *
 * The answer holds while it is used: the arena lock is held, no collapse
 * or purge is in flight on the run (hp_held_begin waits for them first),
 * and pages the program cannot write gain no contents.  A write the
 * program races with its own free of the pages is its race, as with
 * zeroing by a store.
 */
#include "config.h"

#include "internal.h"

void hp_held_begin(struct hp_arena *a, struct hp_held *h, struct hp_block *b, size_t first,
		   size_t n)
{
	size_t lo = (first + HP_BLOCK_PAGES - 1) / HP_BLOCK_PAGES,
	       hi = (first + n) / HP_BLOCK_PAGES;
	h->known = false;
	if (hi < lo + 2)
		return; /* fewer than two whole blocks: the scan costs a call too */
	/* No collapse or purge in flight on any block of the run: waiting
	 * drops the lock, so wait until a whole pass needs none.  From here
	 * to the last discard the lock is held, and the answer holds. */
	for (bool waited = true; waited;) {
		waited = false;
		for (size_t p = first; p < first + n; p += HP_BLOCK_PAGES - p % HP_BLOCK_PAGES)
			waited |= hp_block_wait_collapse(a, b + p / HP_BLOCK_PAGES);
	}
	h->lo = b->base + lo * HP_BLOCK_SIZE;
	h->hi = b->base + hi * HP_BLOCK_SIZE;
	if (h->hi - h->lo > HP_HELD_SPAN) /* not within one chunk: never */
		h->hi = h->lo + HP_HELD_SPAN;
	h->known = a->os->held && a->os->held(h->lo, h->hi - h->lo, h->map) == 0;
}

bool hp_held_block(const struct hp_held *h, const struct hp_block *blk)
{
	if (!h->known || blk->aliased || blk->base < h->lo || blk->base >= h->hi)
		return true;
	size_t k = (blk->base - h->lo) / HP_BLOCK_SIZE;
	return h->map[k / 64] >> (k % 64) & 1;
}
