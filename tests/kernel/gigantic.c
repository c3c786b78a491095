/* SPDX-License-Identifier: MIT */
/*
 * gigantic.t - executable allocations on an arena of 1 GiB pages (issue 15,
 * defect 2).  A 1 GiB page is one mapping with one class and gets no alias:
 * code on it would take a whole page per executable class, and before this
 * test one 4 KiB RX allocation committed every free 1 GiB page in turn.
 * Executable classes live in aliased 2 MiB blocks of the arena's mutable
 * backend (THP) instead: the 1 GiB pool is not touched by them.
 *
 * As root it reserves two 1 GiB pages (and puts the pool back), and reads
 * the pool's free count from /sys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define FREE_1G "/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages"
#define RW	(PROT_READ | PROT_WRITE)
#define RX	(PROT_READ | PROT_EXEC)

static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};

/* Executable allocations on arena @a: the 1 GiB pool's free pages stay
 * at what they are now. */
static void code_on(struct hp_arena *a, const char *name)
{
	long free0 = kernel_read_long(FREE_1G);
	unsigned char *x = hp_arena_alloc(a, 4096, RX);
	is(kernel_read_long(FREE_1G), free0, "%s: a 4 KiB RX allocation takes no 1 GiB page", name);
	ok(x && hp_arena_write(a, x, ret42, sizeof(ret42)) == 0 &&
		   ((int (*)(void))(void *)x)() == 42,
	   "%s: ... it is written with hp_write and runs", name);
	struct hp_block *b = x ? hp_block_of((uintptr_t)x) : NULL;
	ok(b && b->aliased && !hp_backend_is_hugetlb(b->backend) &&
		   hp_arena_writable(a, x) != (void *)x,
	   "%s: ... from an aliased THP block (hp_writable gives the alias)", name);
	unsigned char *more[8];
	for (int i = 0; i < 8; i++)
		more[i] = hp_arena_alloc(a, (size_t)(i + 1) * 3 * 4096, RX);
	unsigned char *span = hp_arena_alloc(a, 3 * HP_BLOCK_SIZE, RX);
	is(kernel_read_long(FREE_1G), free0, "%s: nor do 8 more and a 6 MiB one (%s)", name,
	   span ? "placed" : strerror(errno));
	hp_arena_free(a, x);
	for (int i = 0; i < 8; i++)
		hp_arena_free(a, more[i]);
	hp_arena_free(a, span);
}

int main(void)
{
	if (access(KERNEL_POOL_1G, F_OK))
		tap_skip_all("the kernel has no 1 GiB hugetlb pool (no hugepages-1048576kB)");
	/* Reserve before the first arena: the library probes the pools once. */
	long old_1g = kernel_read_long(KERNEL_POOL_1G);
	if (kernel_pool_set(KERNEL_POOL_1G, old_1g + 2))
		tap_skip_all("could not reserve two 1 GiB hugetlb pages (not root, or memory "
			     "too fragmented)");
	tap_plan(11);
	long free0 = kernel_read_long(FREE_1G);

	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_HUGETLB_1G};
	struct hp_arena *a = hp_arena_create(&cfg);
	char *d = a ? hp_arena_alloc(a, 4096, RW) : NULL;
	if (d)
		d[0] = 1;
	ok(d && kernel_read_long(FREE_1G) == free0 - 1,
	   "hugetlb-1g arena: a RW allocation takes one 1 GiB page");
	code_on(a, "hugetlb-1g");
	hp_arena_destroy(a);

	cfg.backend = HP_BACKEND_AUTO; /* 1 GiB pages are free: auto takes them */
	a = hp_arena_create(&cfg);
	struct hp_stats st = {.size = sizeof(st)};
	ok(a && hp_arena_stats_get(a, &st) == 0 && st.backend == HP_BACKEND_HUGETLB_1G,
	   "auto arena with free 1 GiB pages: hugetlb-1g");
	code_on(a, "auto");
	hp_arena_destroy(a);
	kernel_pool_restore();
	is(kernel_read_long(KERNEL_POOL_1G), old_1g, "nr_hugepages restored to %ld", old_1g);
	return tap_done();
}
