/* SPDX-License-Identifier: MIT */
/*
 * fresh.t - HP_ZERO: allocations that read as zero, as a fresh mmap's do,
 * without clearing memory the kernel cleared already (lib/fresh.c), on the
 * real kernel.
 *
 * A THP block is written all over, freed, and handed out again in pieces
 * with HP_ZERO: every page handed out reads zero, the block stays
 * PMD-mapped (pagemap) and AnonHugePages, and thp_split_pmd does not move
 * (zeroing is a store, never MADV_DONTNEED).  Executable classes (int3
 * while free) read zero too, with an alias and without; a span; a
 * guarded allocation.  HP_ZERO anywhere but an allocation is EINVAL.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

/* Bytes of [p, p + n) that are not zero. */
static size_t nonzero(const void *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((const unsigned char *)p)[i] != 0;
	return k;
}

static struct hp_arena *thp_arena(unsigned flags)
{
	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_THP, .flags = flags};
	return hp_arena_create(&cfg);
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp || kernel_huge_pages(0, 0) < 0)
		tap_skip_all("no THP (enabled is not madvise/always), or no PAGEMAP_SCAN to read "
			     "PMD mappings with (before Linux 6.7)");
	tap_plan(16);

	struct hp_arena *a = thp_arena(HP_ARENA_NO_ALIAS);
	char *blk = hp_arena_alloc(a, HP_BLOCK_SIZE, RW | HP_ZERO);
	ok(blk && nonzero(blk, HP_BLOCK_SIZE) == 0, "a fresh block with HP_ZERO reads zero");
	memset(blk, 0xa5, HP_BLOCK_SIZE);
	long split0 = kernel_vmstat("thp_split_pmd");
	is(hp_arena_free(a, blk), 0, "written all over, freed");

	/* Handed out again in pieces (the same block: the free list). */
	char *p[4];
	size_t sizes[4] = {64 << 10, 4096, 512 << 10, 16 << 10};
	size_t bad = 0, outside = 0;
	for (int i = 0; i < 4; i++) {
		p[i] = hp_arena_alloc(a, sizes[i], RW | HP_ZERO);
		outside += !p[i] || ((uintptr_t)p[i] & ~(HP_BLOCK_SIZE - 1)) != (uintptr_t)blk;
		bad += p[i] ? nonzero(p[i], sizes[i]) : 1;
	}
	is(outside, 0, "four HP_ZERO allocations from the recycled block");
	is(bad, 0, "every page handed out reads zero");
	is(kernel_huge_pages((uintptr_t)blk, HP_BLOCK_SIZE), 512, "the block is still PMD-mapped");
	is(kernel_smaps_kb((uintptr_t)blk, (uintptr_t)blk + HP_BLOCK_SIZE, "AnonHugePages"), 2048,
	   "smaps: 2048 kB AnonHugePages");
	is(kernel_vmstat("thp_split_pmd") - split0, 0, "thp_split_pmd did not move");
	char *plain = hp_arena_alloc(a, 64 << 10, RW);
	ok(plain && nonzero(plain, 64 << 10) == 64 << 10,
	   "without HP_ZERO the rest holds what its last owner left");
	for (int i = 0; i < 4; i++)
		hp_arena_free(a, p[i]);
	hp_arena_free(a, plain);

	/* A span, and a guarded allocation. */
	char *span = hp_arena_alloc(a, 3 * HP_BLOCK_SIZE, RW | HP_ZERO);
	memset(span, 0x5a, 3 * HP_BLOCK_SIZE);
	hp_arena_free(a, span);
	span = hp_arena_alloc(a, 3 * HP_BLOCK_SIZE, RW | HP_ZERO);
	ok(span && nonzero(span, 3 * HP_BLOCK_SIZE) == 0, "a recycled span reads zero");
	hp_arena_free(a, span);
	char *g = hp_arena_alloc_guarded(a, 8192, RW);
	memset(g, 0x11, 8192);
	hp_arena_free(a, g);
	g = hp_arena_alloc_guarded(a, 8192, RW | HP_ZERO);
	ok(g && nonzero(g, 8192) == 0, "a guarded allocation reads zero");
	hp_arena_free(a, g);

	/* Executable: int3 while free, zero when asked. */
	char *x = hp_arena_alloc(a, 8192, RX | HP_ZERO);
	ok(x && nonzero(x, 8192) == 0, "no alias: RX pages with HP_ZERO read zero (not int3)");
	hp_arena_free(a, x);
	x = hp_arena_alloc(a, 8192, RX);
	ok(x && (unsigned char)x[0] == 0xcc && (unsigned char)x[8191] == 0xcc,
	   "... and int3 again once freed");
	hp_arena_free(a, x);
	hp_arena_destroy(a);

	a = thp_arena(0);
	x = hp_arena_alloc(a, 8192, RX | HP_ZERO);
	ok(x && nonzero(x, 8192) == 0, "alias: RX pages with HP_ZERO read zero");
	char *w = hp_arena_alloc(a, 4096, RW | HP_HOME(RX) | HP_ZERO);
	ok(w && nonzero(w, 4096) == 0, "HP_HOME(RX) pages with HP_ZERO read zero");

	/* Only allocations take HP_ZERO. */
	errno = 0;
	ok(hp_arena_protect(a, x, 8192, RX | HP_ZERO) == -1 && errno == EINVAL,
	   "hp_protect with HP_ZERO: EINVAL");
	errno = 0;
	ok(hp_arena_alloc(a, 4096, RW | HP_ZERO | (1 << 14)) == NULL && errno == EINVAL,
	   "an unknown bit beside HP_ZERO: EINVAL");
	hp_arena_destroy(a);
	return tap_done();
}
