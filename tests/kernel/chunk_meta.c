/* SPDX-License-Identifier: MIT */
/*
 * chunk_meta.t - what a new chunk's metadata costs in memory (issue 16).
 *
 * A served process's first allocation makes a chunk: its metadata (struct
 * hp_chunk, fresh zero-filled memory) holds a record for each of its 512
 * blocks.  Once each record carried its per-page arrays (2,880 bytes a
 * block): setting the records up touched 1.47 MB, ~360 pages the kernel
 * had to fault in and clear, before any block was used.  Now the records
 * are small and a block's page arrays are touched when it is used.  The
 * kernel's word for it: mincore(2) over the chunk's metadata after the
 * first allocation (a bound the old layout exceeds 5x), and the arrays of
 * the blocks used are resident (mincore sees the metadata at all).  The
 * default arena likewise: its 101 KiB, mostly the pools of NUMA nodes
 * never used, were cleared whole; it is zeroed memory (BSS) and only what
 * is used is touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api.h"
#include "internal.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)

/* Resident pages of [p, p + size), rounded out to pages. */
static long resident(const void *p, size_t size)
{
	uintptr_t lo = (uintptr_t)p & ~(HP_PAGE_SIZE - 1);
	uintptr_t hi = ((uintptr_t)p + size + HP_PAGE_SIZE - 1) & ~(HP_PAGE_SIZE - 1);
	size_t n = (hi - lo) / HP_PAGE_SIZE;
	unsigned char *vec = malloc(n);
	long got = 0;
	if (!vec || mincore((void *)lo, hi - lo, vec)) {
		free(vec);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		got += vec[i] & 1;
	free(vec);
	return got;
}

static long minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

int main(void)
{
	tap_plan(5);
	long f0 = minflt();
	char *p = hp_alloc(HP_PAGE_SIZE, RW);
	long f1 = minflt();
	if (!p)
		tap_skip_all("hp_alloc failed");
	p[0] = 1;
	struct hp_chunk *c = hp_chunk_map[(uintptr_t)p >> HP_CHUNK_SHIFT];
	ok(c != NULL, "the allocation's chunk is in the chunk map");
	if (!c)
		return tap_done();
	unsigned nblocks = c->hi - c->lo;
	long meta = resident(c, sizeof(*c));
	tap_diag("chunk of %u blocks, metadata %zu bytes, %ld pages resident; the first hp_alloc "
		 "took %ld minor faults",
		 nblocks, sizeof(*c), meta, f1 - f0);
	/* The old layout: 2,880 bytes a record, all touched (1.47 MB for 512). */
	ok(meta >= 0 && meta * HP_PAGE_SIZE <= 256 * 1024,
	   "a new chunk's metadata: %ld KiB resident (<= 256 KiB; the old records took %u KiB)",
	   meta * (long)(HP_PAGE_SIZE / 1024), nblocks * 2880u / 1024);

	/* The default arena (BSS, zero): its pools of every NUMA node, most
	 * never used, were cleared whole (101 KiB) when it was set up. */
	long arena = resident(&hp_default_arena, sizeof(hp_default_arena));
	ok(arena >= 0 && arena * HP_PAGE_SIZE <= 32 * 1024,
	   "the default arena: %ld KiB resident of %zu (<= 32 KiB)",
	   arena * (long)(HP_PAGE_SIZE / 1024), sizeof(hp_default_arena));

	/* The used block's page arrays are resident: mincore sees them. */
	struct hp_block *b = &c->blocks[((uintptr_t)p - c->base) >> HP_BLOCK_SHIFT];
	unsigned page = (unsigned)(((uintptr_t)p - b->base) >> HP_PAGE_SHIFT);
	ok(resident(&b->astate[page], sizeof(uint32_t)) == 1 && resident(&b->prot[page], 1) == 1,
	   "the used block's page state is resident");

	/* Blocks used one by one: each adds its own arrays, a page or two. */
	enum { NUSE = 16 };
	void *big[NUSE];
	int n = 0;
	for (; n < NUSE; n++)
		if (!(big[n] = hp_alloc(HP_BLOCK_SIZE, RW)))
			break;
	long after = resident(c, sizeof(*c));
	tap_diag("%d more blocks used: %ld pages resident", n, after);
	ok(n == NUSE && after > meta && after <= meta + 3 * NUSE,
	   "%d blocks used: metadata grows by %ld pages (> 0, <= %d)", n, after - meta, 3 * NUSE);
	for (int i = 0; i < n; i++)
		hp_free(big[i]);
	hp_free(p);
	return tap_done();
}
