/* SPDX-License-Identifier: MIT */
/*
 * block.c - the state of one 2 MiB block: which pages are used, where
 * allocations start, and each page's protection.  Pure: no system calls,
 * no locks (the caller holds the arena lock).
 *
 * Two bitmaps describe the allocations: `used` marks pages handed out and
 * `start` marks the first page of each allocation, so an allocation runs
 * from a start bit up to the next start bit or the next free page.  That is
 * 128 bytes per block and needs no per-allocation header.
 *
 * Runs are placed best-fit: of the free runs long enough, the shortest,
 * lowest address first.  With 512 pages the scan is eight words.
 *
 * nprot[] counts pages per protection and is the exact per-block counter
 * the cpa-merge thread found hard to keep right in the kernel; here every
 * change goes through hp_block_set_prot(), so it cannot drift (and the
 * tests compare prot[] with /proc/self/maps).
 */
#include "config.h"

#include <string.h>

#include "internal.h"

static void set_bits(uint64_t *map, unsigned first, unsigned n, bool on)
{
	for (unsigned i = first; i < first + n;) {
		unsigned w = i / 64, bit = i % 64;
		unsigned k = 64 - bit < first + n - i ? 64 - bit : first + n - i;
		uint64_t m = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << bit;
		if (on)
			map[w] |= m;
		else
			map[w] &= ~m;
		i += k;
	}
}

/* Index of the first bit at or after @from that equals @value, or 512. */
static unsigned find_bit(const uint64_t *map, unsigned from, bool value)
{
	while (from < HP_BLOCK_PAGES) {
		unsigned w = from / 64;
		uint64_t word = value ? map[w] : ~map[w];
		word &= ~0ULL << (from % 64);
		if (word)
			return w * 64 + (unsigned)__builtin_ctzll(word);
		from = (w + 1) * 64;
	}
	return HP_BLOCK_PAGES;
}

void hp_block_init(struct hp_block *b, uintptr_t base, struct hp_chunk *chunk,
		   struct hp_block_pages *pages)
{
	/* @b and @pages are zeroed metadata (os meta_alloc): only what is not
	 * zero is written, and @pages is not touched at all, so a new chunk
	 * faults in its small records only. */
	b->base = base;
	b->chunk = chunk;
	b->astate = pages->astate;
	b->prot = pages->prot;
	b->bucket = -1;
	b->state = HP_BLOCK_UNCOMMITTED;
}

void hp_block_reset(struct hp_block *b, int prot)
{
	memset(b->used, 0, sizeof(b->used));
	memset(b->start, 0, sizeof(b->start));
	memset(b->prot, prot, HP_BLOCK_PAGES);
	memset(b->nprot, 0, sizeof(b->nprot));
	b->nprot[prot] = HP_BLOCK_PAGES;
	b->nused = 0;
	b->longest_free = HP_BLOCK_PAGES;
	b->home = (uint8_t)prot;
	b->span = 0;
	b->span_head = 0;
	b->nfailed = 0;
	b->retry_at_ns = 0;
	b->collapse_off = false;
	b->huge_since_ns = 0;
	b->nflaps = 0;
	b->cold = false;
}

int hp_block_find_run(const struct hp_block *b, unsigned n)
{
	int best = -1;
	unsigned best_len = HP_BLOCK_PAGES + 1;

	if (n == 0 || n > b->longest_free)
		return -1;
	for (unsigned i = find_bit(b->used, 0, false); i < HP_BLOCK_PAGES;) {
		unsigned end = find_bit(b->used, i, true);
		unsigned len = end - i;
		if (len >= n && len < best_len) {
			best = (int)i;
			best_len = len;
			if (len == n)
				break;
		}
		i = find_bit(b->used, end, false);
	}
	return best;
}

static unsigned longest_free(const struct hp_block *b)
{
	unsigned best = 0;
	for (unsigned i = find_bit(b->used, 0, false); i < HP_BLOCK_PAGES;) {
		unsigned end = find_bit(b->used, i, true);
		if (end - i > best)
			best = end - i;
		i = find_bit(b->used, end, false);
	}
	return best;
}

void hp_block_take(struct hp_block *b, unsigned first, unsigned n)
{
	set_bits(b->used, first, n, true);
	set_bits(b->start, first, 1, true);
	hp_astate_set(b, first, HP_A_LIVE, n);
	b->nused = (uint16_t)(b->nused + n);
	b->longest_free = (uint16_t)longest_free(b);
}

void hp_block_give(struct hp_block *b, unsigned first, unsigned n)
{
	set_bits(b->used, first, n, false);
	set_bits(b->start, first, 1, false);
	hp_astate_set(b, first, HP_A_FREE, 0);
	b->nused = (uint16_t)(b->nused - n);
	b->longest_free = (uint16_t)longest_free(b);
}

unsigned hp_block_alloc_len(const struct hp_block *b, unsigned first)
{
	if (first >= HP_BLOCK_PAGES || !hp_test_bit(b->start, first) ||
	    !hp_test_bit(b->used, first))
		return 0;
	/* It ends at the next allocation's start or the next free page,
	 * whichever comes first: one pass over both maps, a word at a time. */
	for (unsigned from = first + 1; from < HP_BLOCK_PAGES;) {
		unsigned w = from / 64;
		uint64_t end = (b->start[w] | ~b->used[w]) & (~0ULL << (from % 64));
		if (end)
			return w * 64 + (unsigned)__builtin_ctzll(end) - first;
		from = (w + 1) * 64;
	}
	return HP_BLOCK_PAGES - first;
}

int hp_block_alloc_start(const struct hp_block *b, unsigned page)
{
	if (page >= HP_BLOCK_PAGES || !hp_test_bit(b->used, page))
		return -1;
	/* The nearest start bit at or before @page, with no free page between:
	 * the nearest of either, one pass over both maps. */
	for (int from = (int)page; from >= 0;) {
		unsigned w = (unsigned)from / 64, bit = (unsigned)from % 64;
		uint64_t mark =
			(b->start[w] | ~b->used[w]) & (bit == 63 ? ~0ULL : (1ULL << (bit + 1)) - 1);
		if (mark) {
			unsigned i = w * 64 + 63 - (unsigned)__builtin_clzll(mark);
			return hp_test_bit(b->used, i) ? (int)i : -1;
		}
		from = (int)(w * 64) - 1;
	}
	return -1;
}

/* How many pages from @i on, up to @end, carry the protection page @i
 * has: eight pages a word, so that a flip of a whole block counts its
 * pages in 64 steps, not 512 dependent counter updates. */
static unsigned prot_run(const struct hp_block *b, unsigned i, unsigned end)
{
	const uint64_t want = 0x0101010101010101ULL * b->prot[i];
	unsigned j = i;
	for (; j + 8 <= end; j += 8) {
		uint64_t w;
		memcpy(&w, &b->prot[j], sizeof(w));
		w ^= want;
		if (w) /* the first byte that differs */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return j + (unsigned)__builtin_ctzll(w) / 8 - i;
#else
			return j + (unsigned)__builtin_clzll(w) / 8 - i;
#endif
	}
	while (j < end && b->prot[j] == b->prot[i])
		j++;
	return j - i;
}

void hp_block_set_prot(struct hp_block *b, unsigned first, unsigned n, int prot)
{
	if (n == HP_BLOCK_PAGES) { /* the whole block: every count starts again */
		memset(b->nprot, 0, sizeof(b->nprot));
	} else {
		for (unsigned i = first, k; i < first + n; i += k) {
			k = prot_run(b, i, first + n);
			b->nprot[b->prot[i]] = (uint16_t)(b->nprot[b->prot[i]] - k);
		}
	}
	memset(&b->prot[first], prot, n);
	b->nprot[prot] = (uint16_t)(b->nprot[prot] + n);
}

bool hp_block_prot_is(const struct hp_block *b, unsigned first, unsigned n, int prot)
{
	return n == 0 || (b->prot[first] == prot && prot_run(b, first, first + n) == n);
}
