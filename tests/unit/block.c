/* SPDX-License-Identifier: MIT */
/* block.t - the per-block bitmaps and protection counters (pure). */
#include "internal.h"
#include "tap.h"

static struct hp_block b;

static int count_used(void)
{
	int n = 0;
	for (unsigned i = 0; i < HP_BLOCK_PAGES; i++)
		n += hp_test_bit(b.used, i);
	return n;
}

int main(void)
{
	hp_block_init(&b, 0x200000, NULL);
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
	return tap_done();
}
