/* SPDX-License-Identifier: MIT */
/*
 * reserve.t - PROT_NONE allocations are reservations: no memory until
 * pages are made accessible and touched, zero when they are, huge-mapped
 * once a block is uniform again, memory dropped when freed; and
 * hp_discard() zeroes like MADV_DONTNEED.  Checked against /proc/self/smaps,
 * /proc/self/maps and /proc/vmstat, not against our own counters.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW   (PROT_READ | PROT_WRITE)
#define RWX  (PROT_READ | PROT_WRITE | PROT_EXEC)
#define MIB  (1UL << 20)
#define SIZE (64 * MIB)

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static long rss_kb(const char *p, size_t n)
{
	return kernel_smaps_kb((uintptr_t)p, (uintptr_t)p + n, "Rss");
}

int main(void)
{
	tap_plan(25);
	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.collapse_mode = HP_COLLAPSE_DEFERRED,
				.flags = HP_ARENA_ALLOW_RWX};
	struct hp_arena *a = hp_arena_create(&cfg);
	if (!a) {
		tap_skip_all("no THP arena on this machine");
	}
	long split0 = kernel_vmstat("thp_split_pmd");

	char *r = hp_arena_alloc(a, SIZE, PROT_NONE);
	ok(r && ((uintptr_t)r & (HP_BLOCK_SIZE - 1)) == 0, "a 64 MiB reservation, block-aligned");
	is(rss_kb(r, SIZE), 0, "it takes no memory (Rss 0 kB)");
	is(kernel_prot_at((uintptr_t)r + 5 * MIB), PROT_NONE, "the kernel has it PROT_NONE");

	/* Commit part of block 1: 4K pages, zero. */
	char *c1 = r + 2 * MIB + 64 * 1024;
	ok(hp_arena_protect(a, c1, 128 * 1024, RW) == 0 && kernel_prot_at((uintptr_t)c1) == RW,
	   "128 KiB of it committed RW");
	ok(all_zero(c1, 128 * 1024), "reads zero");
	memset(c1, 0x5a, 128 * 1024);
	long rss = rss_kb(r, SIZE);
	ok(rss >= 128 && rss <= 128 + 8, "only those pages took memory (%ld kB)", rss);

	/* Block 2 whole, RWX: uniform at once; populated and collapsed. */
	char *b2 = r + 4 * MIB;
	ok(hp_arena_protect(a, b2, 2 * MIB, RWX) == 0, "block 2 committed RWX whole");
	ok(hp_arena_collapse_pending(a) >= 1, "collapse ran");
	is(kernel_huge_kb((uintptr_t)b2, (uintptr_t)b2 + 2 * MIB), 2048,
	   "the kernel maps block 2 huge (AnonHugePages 2048 kB)");
	ok(all_zero(b2, 2 * MIB), "and it reads zero");

	/* Block 1 whole: mixed -> uniform, its 4K pages collapsed with data. */
	ok(hp_arena_protect(a, r + 2 * MIB, 2 * MIB, RWX) == 0 && hp_arena_collapse_pending(a) >= 1,
	   "block 1 made uniform RWX and collapsed");
	is(kernel_huge_kb((uintptr_t)r + 2 * MIB, (uintptr_t)r + 6 * MIB), 4096,
	   "blocks 1 and 2 huge (4096 kB)");
	ok(c1[0] == 0x5a && c1[128 * 1024 - 1] == 0x5a && all_zero(r + 2 * MIB, 64 * 1024),
	   "the committed bytes survived the collapse");

	/* hp_discard: writable -> zeroed in place, still huge, no split. */
	ok(hp_arena_discard(a, c1, 4096) == 0 && all_zero(c1, 4096) && c1[4096] == 0x5a,
	   "hp_discard of one page zeroes exactly that page");
	is(kernel_huge_kb((uintptr_t)r + 2 * MIB, (uintptr_t)r + 6 * MIB), 4096,
	   "and the blocks are still huge");
	/* Not writable: the memory goes. */
	ok(hp_arena_protect(a, b2, 2 * MIB, PROT_NONE) == 0 &&
		   hp_arena_discard(a, b2, 2 * MIB) == 0,
	   "block 2 back to NONE and discarded");
	is(kernel_smaps_kb((uintptr_t)b2, (uintptr_t)b2 + 2 * MIB, "Rss"), 0,
	   "its memory is gone (Rss 0 kB)");

	/* Bad input: named errno, nothing changes. */
	errno = 0;
	ok(hp_arena_discard(a, c1 + 1, 4096) == -1 && errno == EINVAL, "unaligned: EINVAL");
	errno = 0;
	ok(hp_arena_discard(a, c1, 0) == -1 && errno == EINVAL, "size 0: EINVAL");
	errno = 0;
	ok(hp_arena_discard(a, r + SIZE - 4096, 8192) == -1 && errno == ENOMEM,
	   "past the allocation: ENOMEM");
	ok(c1[4096] == 0x5a && c1[8191] == 0x5a, "and nothing was zeroed");

	/* Free: the memory goes; the next reservation reads zero. */
	ok(hp_arena_free(a, r) == 0, "reservation freed");
	is(rss_kb(r, SIZE), 0, "all its memory dropped (Rss 0 kB)");
	char *r2 = hp_arena_alloc(a, SIZE, PROT_NONE);
	ok(r2 && hp_arena_protect(a, r2, SIZE, RW) == 0 && all_zero(r2, SIZE),
	   "a new reservation, made RW whole, reads zero");
	/* A small one too, freed the way a thread cache would keep it. */
	char *s1 = hp_arena_alloc(a, 4096, PROT_NONE);
	hp_arena_protect(a, s1, 4096, RW);
	memset(s1, 0x77, 4096);
	hp_arena_protect(a, s1, 4096, PROT_NONE);
	hp_arena_free(a, s1);
	char *s2 = hp_arena_alloc(a, 4096, PROT_NONE);
	ok(s2 && hp_arena_protect(a, s2, 4096, RW) == 0 && all_zero(s2, 4096),
	   "a freed one-page reservation, allocated again (%s), reads zero",
	   s2 == s1 ? "the same page" : "another page");
	tap_diag("thp_split_pmd +%ld over the test", kernel_vmstat("thp_split_pmd") - split0);
	hp_arena_destroy(a);
	return tap_done();
}
