/* SPDX-License-Identifier: MIT */
/*
 * regions.t - the preload's region table (preload/regions.c), pure: lookups
 * by address and by allocation against a plain list, with many regions
 * (past the table's first growth), at region boundaries, after part of a
 * region is cut out, and between neighbouring allocations.  The kernel's
 * calls it makes (k_mmap for its own memory) are the plain ones here.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "preload.h"
#include "tap.h"

void *k_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int k_munmap(void *addr, size_t len)
{
	return munmap(addr, len);
}

#define NALLOC 1500	   /* allocations: more regions than the table's first 1024 */
#define BASE   (1UL << 40) /* far from anything hugeperm owns in this process */
#define ASIZE  (8 * PAGE)  /* each allocation: 8 pages, the next right after it */

/* A page's region the slow way: the index of the region holding @addr, or -1. */
static long slow_find(uintptr_t addr)
{
	for (size_t i = 0; i < region_count(); i++)
		if (region_at(i)->start <= addr && addr < region_at(i)->end)
			return (long)i;
	return -1;
}

/* Is the table sorted, its regions disjoint and each inside its allocation? */
static bool table_sane(void)
{
	for (size_t i = 0; i < region_count(); i++) {
		const struct region *r = region_at(i);
		if (r->start >= r->end || r->start < r->base || r->end > r->base + r->alloc_size)
			return false;
		if (i && region_at(i - 1)->end > r->start)
			return false;
	}
	return true;
}

static struct region alloc_region(size_t k)
{
	struct region r = {0};
	r.base = BASE + k * ASIZE;
	r.alloc_size = ASIZE;
	r.start = r.base;
	r.end = r.base + ASIZE;
	r.prot = PROT_READ | PROT_WRITE;
	return r;
}

int main(void)
{
	/* Insert in a scrambled order: every insert is a binary search. */
	bool inserted = true;
	for (size_t i = 0; i < NALLOC; i++) {
		size_t k = (i * 7919) % NALLOC; /* 7919 is prime: a permutation */
		struct region r = alloc_region(k);
		inserted &= region_insert(&r);
	}
	ok(inserted && region_count() == NALLOC, "%d allocations inserted out of order", NALLOC);
	ok(table_sane(), "the table is sorted and disjoint");

	/* Lookups at every boundary, against the slow walk. */
	unsigned bad = 0;
	for (size_t k = 0; k < NALLOC; k++) {
		uintptr_t s = BASE + k * ASIZE, e = s + ASIZE;
		uintptr_t probe[] = {s, s + PAGE - 1, e - PAGE, e - 1};
		for (size_t j = 0; j < sizeof(probe) / sizeof(probe[0]); j++) {
			size_t i = region_find(probe[j]);
			bad += (long)i != slow_find(probe[j]);
			const struct region *a = alloc_of(probe[j]);
			bad += !a || a->base != s;
		}
	}
	is(bad, 0, "region_find and alloc_of at the first and last byte of every region");
	is(region_find(BASE - 1), 0, "below every region: index 0");
	is(region_find(BASE + NALLOC * ASIZE), NALLOC, "above every region: the end");
	ok(!alloc_of(BASE - PAGE) && !alloc_of(BASE + NALLOC * ASIZE),
	   "no allocation just outside the first and the last");

	/* Cut the middle two pages out of allocation 700 (a partial munmap):
	 * two regions of one allocation, between two neighbours. */
	uintptr_t b = BASE + 700 * ASIZE;
	ok(region_split_at(b + 3 * PAGE) && region_split_at(b + 5 * PAGE),
	   "split at both ends of the cut");
	ok(region_split_at(b + 3 * PAGE) && region_count() == NALLOC + 2,
	   "splitting at a boundary again changes nothing");
	region_delete(region_find(b + 3 * PAGE));
	ok(table_sane() && region_count() == NALLOC + 1, "the cut leaves two regions");
	ok(slow_find(b + 3 * PAGE) < 0 &&
		   region_at(region_find(b + 3 * PAGE))->start == b + 5 * PAGE,
	   "the cut pages are in no region; the next one starts after them");
	const struct region *a = alloc_of(b + 4 * PAGE);
	ok(a && a->base == b, "alloc_of in the hole still finds its allocation");
	is(alloc_first(a), region_find(b), "alloc_first: the allocation's first region");
	ok(alloc_in_use(a), "the allocation is in use");
	ok(alloc_within(a, b, b + ASIZE) && !alloc_within(a, b + PAGE, b + ASIZE),
	   "alloc_within sees both of its regions");
	ok(!alloc_within(a, b + 5 * PAGE, b + ASIZE), "... and not only the upper one");
	/* A cut about to take [start, end) frees the allocation only if every
	 * region left is wholly inside it (cut() fills the pages otherwise). */
	ok(!alloc_kept_after(a, b, b + ASIZE) && !alloc_kept_after(a, b - ASIZE, b + 2 * ASIZE),
	   "alloc_kept_after: a cut over all of its regions frees it");
	ok(alloc_kept_after(a, b, b + 6 * PAGE) && alloc_kept_after(a, b + PAGE, b + ASIZE),
	   "... one that ends or starts inside a region keeps it (the region reaches past)");
	ok(alloc_kept_after(a, b, b + 3 * PAGE) && alloc_kept_after(a, b + 5 * PAGE, b + ASIZE),
	   "... one over only one of its regions keeps it");

	/* Set on the allocation: both regions, not the neighbours. */
	alloc_set_prot(a, PROT_READ | PROT_EXEC);
	alloc_set_tainted(a);
	size_t i = region_find(b);
	ok(region_at(i)->prot == (PROT_READ | PROT_EXEC) &&
		   region_at(i + 1)->prot == (PROT_READ | PROT_EXEC) && region_at(i)->tainted &&
		   region_at(i + 1)->tainted,
	   "alloc_set_prot and alloc_set_tainted reach both regions");
	ok(region_at(i - 1)->prot == (PROT_READ | PROT_WRITE) && !region_at(i - 1)->tainted &&
		   region_at(i + 2)->prot == (PROT_READ | PROT_WRITE) && !region_at(i + 2)->tainted,
	   "the neighbouring allocations are untouched");

	/* Unmap the rest of it: the allocation has no region left. */
	struct region gone = *region_at(i);
	region_delete(i);
	region_delete(i);
	ok(!alloc_in_use(&gone) && !alloc_of(b + PAGE), "all cut: the allocation is not in use");
	ok(alloc_of(b - 1) && alloc_of(b - 1)->base == b - ASIZE && alloc_of(b + ASIZE) &&
		   alloc_of(b + ASIZE)->base == b + ASIZE,
	   "its neighbours are found at the bytes next to it");

	/* Covered: regions, given ranges, and gaps hugeperm does not own. */
	ok(regions_cover(BASE, BASE + 700 * ASIZE), "700 allocations of regions are covered");
	ok(given_add(b, b + ASIZE) && given_has(b) && given_has(b + ASIZE - 1) &&
		   !given_has(b + ASIZE) && !given_has(b - 1),
	   "a given range: its first and last byte, not the bytes around it");
	ok(regions_cover(b - ASIZE, b + 2 * ASIZE), "regions and a given range cover the span");
	ok(given_add(b + ASIZE, b + 2 * ASIZE) && given_room() == 255,
	   "a given range touching another joins it");
	uintptr_t gs = 0, ge = 0;
	ok(given_meets(b - PAGE, b + PAGE) && given_meets(b + 2 * ASIZE - PAGE, b + 3 * ASIZE) &&
		   !given_meets(b - ASIZE, b) && !given_meets(b + 2 * ASIZE, b + 3 * ASIZE),
	   "given_meets: a span with a given page, not the spans beside the range");
	ok(given_next(b - ASIZE, &gs, &ge) && gs == b && ge == b + 2 * ASIZE &&
		   given_next(b + ASIZE, &gs, &ge) && gs == b &&
		   !given_next(b + 2 * ASIZE, &gs, &ge),
	   "given_next: the range ending above an address, none past the last");
	return tap_done();
}
