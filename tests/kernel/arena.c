/* SPDX-License-Identifier: MIT */
/*
 * arena.t - arenas on the real kernel: allocations of whole blocks up to
 * 1 GiB, a steal under a memory cap (split seen by the kernel), trim giving
 * memory back (Rss) and retiring empty chunks, destroy unmapping everything.
 */
#include <string.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp)
		tap_skip_all("THP is not available");

	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_THP};
	struct hp_arena *a = hp_arena_create(&cfg);
	ok(a != NULL, "THP arena");

	char *p = hp_arena_alloc(a, 3 << 20, RW);
	uintptr_t chunk = (uintptr_t)p & ~(HP_CHUNK_SIZE - 1);
	ok(p && ((uintptr_t)p & (HP_BLOCK_SIZE - 1)) == 0, "3 MiB: block-aligned");
	memset(p, 7, 3 << 20);
	ok(p[(3 << 20) - 1] == 7, "all of it is usable");
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "AnonHugePages"), 4096,
	   "two huge blocks in smaps");
	is(hp_arena_free(a, p), 0, "free the 3 MiB");

	/* 1 GiB, the largest allocation. */
	char *g = hp_arena_alloc(a, 1UL << 30, RW);
	ok(g != NULL, "1 GiB allocation");
	if (g) {
		g[0] = 1;
		g[(1UL << 30) - 1] = 2;
		uintptr_t gc = (uintptr_t)g & ~(HP_CHUNK_SIZE - 1);
		is(kernel_smaps_kb(gc, gc + HP_CHUNK_SIZE, "AnonHugePages"), 1048576,
		   "smaps: 1 GiB of AnonHugePages");
		is(hp_arena_free(a, g), 0, "free 1 GiB");
	} else {
		tap_skip(2, "no 1 GiB allocation");
	}
	ok(hp_arena_trim(a) == 0, "trim");
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	is(st.committed_bytes, 0, "nothing committed after trim");
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "Rss"), 0,
	   "smaps: no Rss left in the chunk");
	is(st.reserved_bytes, 0, "trim retired the empty chunks");
	is(kernel_prot_at(chunk), -1, "after a grace period their address space is unmapped");
	p = hp_arena_alloc(a, 4096, RW);
	ok(p && hp_arena_free(a, p) == 0, "the arena grows again after that");
	hp_arena_destroy(a);
	is(kernel_prot_at((uintptr_t)p & ~(HP_CHUNK_SIZE - 1)), -1, "destroy unmapped the chunk");

	/* Under a cap of two blocks, a third class steals, and the kernel splits. */
	cfg.max_bytes = 2 * HP_BLOCK_SIZE;
	a = hp_arena_create(&cfg);
	char *rw = hp_arena_alloc(a, 4096, RW);
	char *rx = hp_arena_alloc(a, 4096, RX);
	hp_arena_collapse_pending(a); /* the fresh aliased RX block: huge now */
	long split0 = kernel_vmstat("thp_split_pmd");
	char *ro = hp_arena_alloc(a, 4096, PROT_READ);
	ok(rw && rx && ro, "three classes in two blocks");
	hp_arena_stats_get(a, &st);
	is(st.steals, 1, "one steal");
	is(kernel_vmstat("thp_split_pmd") - split0, 1, "the kernel split the block stolen from");
	is(st.splits, 1, "and so did we");
	is(kernel_prot_at((uintptr_t)ro), PROT_READ, "the stolen page is r--");
	errno = 0;
	ok(!hp_arena_alloc(a, 3 << 20, RW) && errno == ENOMEM, "over the cap: ENOMEM");
	hp_arena_destroy(a);
	return tap_done();
}
