/* SPDX-License-Identifier: MIT */
/* block.t - the per-block bitmaps and protection counters (pure). */
#include <string.h>

#include "internal.h"
#include "tap.h"

static struct hp_block b;
static struct hp_block_pages pages;

static int count_used(void)
{
	int n = 0;
	for (unsigned i = 0; i < HP_BLOCK_PAGES; i++)
		n += hp_test_bit(b.used, i);
	return n;
}

/* Random protection changes, word-aligned or not, against a plain model:
 * hp_block_set_prot() counts a word of pages at a time, and the counters
 * and hp_block_prot_is() must say what a page-by-page walk says. */
static void random_changes(void)
{
	static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
				    PROT_READ | PROT_EXEC};
	uint8_t model[HP_BLOCK_PAGES];
	unsigned seed = 16, bad_count = 0, bad_is = 0;
	hp_block_reset(&b, PROT_READ | PROT_WRITE);
	memset(model, PROT_READ | PROT_WRITE, sizeof(model));
	for (int round = 0; round < 4000; round++) {
		seed = seed * 1103515245 + 12345;
		unsigned first = (seed >> 8) % HP_BLOCK_PAGES;
		seed = seed * 1103515245 + 12345;
		unsigned n = round % 7 == 0 ? HP_BLOCK_PAGES - first
					    : 1 + (seed >> 8) % (HP_BLOCK_PAGES - first);
		if (round % 11 == 0) {
			first = 0;
			n = HP_BLOCK_PAGES;
		}
		int prot = prots[(seed >> 20) % 4];
		hp_block_set_prot(&b, first, n, prot);
		memset(model + first, prot, n);
		for (int c = 0; c < HP_NCLASS; c++) {
			unsigned k = 0;
			for (unsigned i = 0; i < HP_BLOCK_PAGES; i++)
				k += model[i] == c;
			bad_count += b.nprot[c] != k;
		}
		seed = seed * 1103515245 + 12345;
		unsigned f = (seed >> 8) % HP_BLOCK_PAGES,
			 m = 1 + (seed >> 4) % (HP_BLOCK_PAGES - f);
		bool same = true;
		for (unsigned i = f; i < f + m; i++)
			same &= model[i] == model[f];
		bad_is += hp_block_prot_is(&b, f, m, model[f]) != same;
		bad_is += hp_block_prot_is(&b, f, m, model[f] ^ PROT_EXEC);
	}
	is(bad_count, 0, "4000 random changes: the per-class counters match a page walk");
	is(bad_is, 0, "hp_block_prot_is() agrees with a page walk on random ranges");
	ok(memcmp(b.prot, model, sizeof(model)) == 0, "every page's protection is the model's");
}

/* Random takes and gives of runs of 1-80 pages, word-aligned or not,
 * against a plain model (the owner of each page): for every page,
 * hp_block_alloc_start() and, at a start, hp_block_alloc_len() must say
 * what a page-by-page walk of the model says. */
static void random_allocs(void)
{
	int owner[HP_BLOCK_PAGES]; /* the first page of its allocation, or -1 */
	unsigned seed = 7, bad_start = 0, bad_len = 0, checked = 0;
	hp_block_reset(&b, PROT_READ | PROT_WRITE);
	for (unsigned i = 0; i < HP_BLOCK_PAGES; i++)
		owner[i] = -1;
	for (int round = 0; round < 3000; round++) {
		seed = seed * 1103515245u + 12345u;
		unsigned at = (seed >> 8) % HP_BLOCK_PAGES;
		if (owner[at] >= 0) { /* give the allocation that holds it */
			unsigned first = (unsigned)owner[at], n = 0;
			while (first + n < HP_BLOCK_PAGES && owner[first + n] == (int)first)
				owner[first + n++] = -1;
			hp_block_give(&b, first, n);
		} else { /* take the free run from @at, up to 1-80 pages */
			unsigned want = 1 + (seed >> 20) % 80, n = 0;
			while (n < want && at + n < HP_BLOCK_PAGES && owner[at + n] < 0)
				owner[at + n] = (int)at, n++;
			hp_block_take(&b, at, n);
		}
		for (unsigned p = 0; p < HP_BLOCK_PAGES; p++, checked++) {
			bad_start += hp_block_alloc_start(&b, p) != owner[p];
			unsigned len = 0;
			while (owner[p] == (int)p && p + len < HP_BLOCK_PAGES &&
			       owner[p + len] == (int)p)
				len++;
			bad_len += hp_block_alloc_len(&b, p) != len;
		}
	}
	ok(bad_start == 0 && bad_len == 0,
	   "random runs: each page's allocation start and length are the model's "
	   "(%u pages checked, %u starts and %u lengths wrong)",
	   checked, bad_start, bad_len);
}

int main(void)
{
	hp_block_init(&b, 0x200000, NULL, &pages);
	hp_block_reset(&b, PROT_READ | PROT_EXEC);
	is(b.nprot[PROT_READ | PROT_EXEC], 512, "reset: all pages in the home class");
	ok(hp_block_uniform(&b, NULL), "reset block is uniform");
	is(b.longest_free, 512, "reset: one free run of 512");

	is(hp_block_find_run(&b, 1), 0, "first run at page 0");
	hp_block_take(&b, 0, 3);
	is(hp_block_alloc_len(&b, 0), 3, "allocation of 3 pages");
	hp_block_take(&b, 3, 5);
	is(hp_block_alloc_len(&b, 0), 3, "adjacent allocations stay apart (start bits)");
	is(hp_block_alloc_len(&b, 3), 5, "second allocation of 5 pages");
	is(hp_block_alloc_len(&b, 1), 0, "no allocation starts at an interior page");
	is(hp_block_alloc_start(&b, 6), 3, "page 6 belongs to the allocation at 3");
	is(hp_block_alloc_start(&b, 100), -1, "a free page belongs to none");
	is(b.nused, 8, "8 pages used");
	is(count_used(), 8, "used bitmap agrees with nused");

	/* Best fit: free [0,3) and [8,512): a 2-page request takes the hole. */
	hp_block_give(&b, 0, 3);
	is(hp_block_find_run(&b, 2), 0, "best fit picks the 3-page hole for 2 pages");
	is(hp_block_find_run(&b, 4), 8, "4 pages do not fit the hole: the tail");
	is(b.longest_free, 504, "longest free run tracked");
	is(hp_block_find_run(&b, 505), -1, "no run of 505 pages");

	/* Full block, bit boundaries. */
	hp_block_reset(&b, PROT_READ);
	hp_block_take(&b, 0, 63);
	hp_block_take(&b, 63, 2);
	is(hp_block_alloc_len(&b, 63), 2, "run across a 64-bit word boundary");
	hp_block_take(&b, 65, 447);
	is(b.nused, 512, "block full");
	is(b.longest_free, 0, "no free run in a full block");
	is(hp_block_find_run(&b, 1), -1, "nothing fits a full block");
	is(hp_block_alloc_len(&b, 65), 447, "last allocation runs to the end");

	/* Protections: exact counters. */
	hp_block_reset(&b, PROT_READ | PROT_WRITE);
	hp_block_set_prot(&b, 10, 5, PROT_READ | PROT_EXEC);
	is(b.nprot[PROT_READ | PROT_WRITE], 507, "507 RW pages");
	is(b.nprot[PROT_READ | PROT_EXEC], 5, "5 RX pages");
	ok(!hp_block_uniform(&b, NULL), "mixed after a partial change");
	ok(hp_block_prot_is(&b, 10, 5, PROT_READ | PROT_EXEC), "pages 10..14 are RX");
	ok(!hp_block_prot_is(&b, 9, 5, PROT_READ | PROT_EXEC), "page 9 is not");
	hp_block_set_prot(&b, 12, 1, PROT_READ | PROT_EXEC);
	is(b.nprot[PROT_READ | PROT_EXEC], 5, "setting the same protection again keeps the count");
	hp_block_set_prot(&b, 10, 5, PROT_READ | PROT_WRITE);
	int prot = -1;
	ok(hp_block_uniform(&b, &prot) && prot == (PROT_READ | PROT_WRITE),
	   "uniform again after putting them back");
	hp_block_set_prot(&b, 0, 512, PROT_NONE);
	ok(hp_block_uniform(&b, &prot) && prot == PROT_NONE, "whole-block change stays uniform");
	hp_block_set_prot(&b, 63, 2, PROT_READ);
	is(b.nprot[PROT_READ], 2, "a change across a word of pages counts both");
	ok(hp_block_prot_is(&b, 63, 2, PROT_READ) && !hp_block_prot_is(&b, 56, 16, PROT_NONE),
	   "runs are read across the word boundary");
	ok(hp_block_prot_is(&b, 0, 0, PROT_READ), "an empty range has any protection");
	random_changes();
	random_allocs();
	return tap_done();
}
