/* SPDX-License-Identifier: MIT */
/*
 * fresh.c - fresh memory: which pages of a block read as zero.
 *
 * A program that maps memory expects zeros (the preload serves mmap), and
 * hp_alloc(HP_ZERO) promises them.  The kernel zeroed a block's memory
 * once, when its commit populated it; since then a page may hold bytes
 * only if it was handed out (its owner may have written anything) or
 * filled (int3 for executable classes, poison).  Each block keeps that as
 * a bitmap, `dirty`: a zeroed allocation clears only its dirty pages, and a
 * fresh block, or the untouched part of a recycled one, costs nothing more.
 *
 * Zeroing is a store, never MADV_DONTNEED of the block: measured on the
 * reference machine (2 cores, THP), a memset of a dirty 2 MiB block takes
 * ~40 us, a MADV_DONTNEED that lets the next fault take a fresh zeroed
 * huge page ~80 us (zap, free, allocate, clear), and a memset of 64 KiB
 * ~1.3 us; hugetlb's MADV_DONTNEED gives the page back to the pool and
 * costs a fault and a clear as well.  A store also leaves the block
 * PMD-mapped.
 *
 * Pure: no system calls, the arena lock held.
 */
#include "config.h"

#include "internal.h"

/* Mark [first, first+n) of @b, running on into the following blocks (a
 * span): a word of 64 pages at a time (a 2 MiB allocation is handed out
 * with 8 stores, not 512 dependent bit updates). */
static void mark(struct hp_block *b, unsigned first, size_t n, bool on)
{
	for (; n; b++, first = 0) {
		size_t k = HP_BLOCK_PAGES - first < n ? HP_BLOCK_PAGES - first : n;
		for (unsigned i = first; i < first + k;) {
			unsigned bit = i % 64, w = 64 - bit < first + k - i
							   ? 64 - bit
							   : (unsigned)(first + k - i);
			uint64_t m = (w == 64 ? ~0ULL : (1ULL << w) - 1) << bit;
			b->dirty[i / 64] = on ? b->dirty[i / 64] | m : b->dirty[i / 64] & ~m;
			i += w;
		}
		n -= k;
	}
}

void hp_fresh_committed(struct hp_block *b, bool filled)
{
	for (unsigned w = 0; w < HP_BITMAP_WORDS; w++)
		b->dirty[w] = filled ? ~0ULL : 0;
}

void hp_fresh_dirty(struct hp_block *b, unsigned first, size_t n)
{
	mark(b, first, n, true);
}

void hp_fresh_clean(struct hp_block *b, unsigned first, size_t n)
{
	mark(b, first, n, false);
}

unsigned hp_fresh_next_dirty(const struct hp_block *b, unsigned from, unsigned end, unsigned *len)
{
	/* A word at a time: the first set bit at or after @from, then the
	 * first clear one after it. */
	unsigned to;
	for (; from < end; from = (from / 64 + 1) * 64) {
		uint64_t word = b->dirty[from / 64] & (~0ULL << (from % 64));
		if (word) {
			from = from / 64 * 64 + (unsigned)__builtin_ctzll(word);
			break;
		}
	}
	if (from >= end) {
		*len = 0;
		return end;
	}
	for (to = from; to < end; to = (to / 64 + 1) * 64) {
		uint64_t word = ~b->dirty[to / 64] & (~0ULL << (to % 64));
		if (word) {
			to = to / 64 * 64 + (unsigned)__builtin_ctzll(word);
			break;
		}
	}
	to = to < end ? to : end;
	*len = to - from;
	return from;
}
