/* SPDX-License-Identifier: MIT */
/*
 * hugetlb.t - the hugetlb backends on the real kernel.  As root it
 * reserves pages in the pool, checks HugePages_Free moves as blocks are
 * used and trimmed, that protection changes only apply to whole pages, and
 * puts the pool back as it was.  Skips with the reason otherwise.  Last, a
 * test killed with its pool set and khugepaged paused: the settings come
 * back all the same (tests/lib/kernel.c's guardian).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

static void test_2m(void)
{
	long old_2m = kernel_read_long(KERNEL_POOL_2M);
	if (old_2m < 0 || kernel_pool_set(KERNEL_POOL_2M, old_2m + 4)) {
		tap_skip(15,
			 "could not reserve 4 more 2 MiB hugetlb pages (not root, or no memory)");
		return;
	}
	long free0 = kernel_meminfo("HugePages_Free");
	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_HUGETLB_2M};
	struct hp_arena *a = hp_arena_create(&cfg);
	ok(a != NULL, "hugetlb-2m arena with 4 free pages");

	char *d = hp_arena_alloc(a, 4 * 4096, RW);
	ok(d != NULL, "4 RW pages");
	d[0] = 1;
	d[4095] = 2;
	is(kernel_meminfo("HugePages_Free"), free0 - 1, "HugePages_Free went down by one");
	uintptr_t chunk = (uintptr_t)d & ~(HP_CHUNK_SIZE - 1);
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "Private_Hugetlb"), 2048,
	   "smaps: 2048 kB Private_Hugetlb");

	errno = 0;
	ok(hp_arena_protect(a, d, 4096, PROT_READ) == -1 && errno == EINVAL,
	   "part of a hugetlb page cannot change protection: EINVAL");
	is(kernel_prot_at((uintptr_t)d), RW, "... and the kernel still has it RW");

	char *whole = hp_arena_alloc(a, HP_BLOCK_SIZE, RW);
	whole[0] = 3;
	is(hp_arena_protect(a, whole, HP_BLOCK_SIZE, PROT_READ), 0,
	   "a whole hugetlb block can change");
	is(kernel_prot_at((uintptr_t)whole), PROT_READ, "... the kernel agrees: r--");

	char *code = hp_arena_alloc(a, 4096, RW | HP_HOME(RX));
	code[0] = (char)0xc3;
	is(hp_arena_protect(a, code, 4096, RX), 0,
	   "an allocation that changes class part-way lives on THP, and can");
	struct hp_block *cb = hp_block_of((uintptr_t)code);
	is(cb->backend, HP_BACKEND_THP, "its block is a THP block");

	/* RX on hugetlb: a hugetlb memfd with an alias; code goes in by hp_write. */
	static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
	unsigned char *rx = hp_arena_alloc(a, 4096, RX);
	ok(rx && hp_arena_write(a, rx, ret42, sizeof(ret42)) == 0 &&
		   ((int (*)(void))(void *)rx)() == 42,
	   "RX on hugetlb: written through the alias, runs");
	struct hp_block *xb = hp_block_of((uintptr_t)rx);
	ok(xb->aliased && xb->backend == HP_BACKEND_HUGETLB_2M,
	   "its block is an aliased hugetlb block");
	uintptr_t xblk = (uintptr_t)rx & ~(HP_BLOCK_SIZE - 1);
	is(kernel_smaps_kb(xblk, xblk + 1, "Shared_Hugetlb"), 2048,
	   "smaps: a shared 2 MiB hugetlb page");
	hp_arena_free(a, rx);
	hp_arena_free(a, d);
	hp_arena_free(a, whole);
	hp_arena_free(a, code);
	hp_arena_trim(a);
	is(kernel_meminfo("HugePages_Free"), free0,
	   "after free + trim the pool has its pages back");
	hp_arena_destroy(a);
	kernel_pool_restore();
	is(kernel_read_long(KERNEL_POOL_2M), old_2m, "nr_hugepages restored to %ld", old_2m);
}

static void test_1g(void)
{
	if (access(KERNEL_POOL_1G, F_OK)) {
		tap_skip(6, "the kernel has no 1 GiB hugetlb pool (no hugepages-1048576kB)");
		return;
	}
	long old_1g = kernel_read_long(KERNEL_POOL_1G);
	if (old_1g < 0 || kernel_pool_set(KERNEL_POOL_1G, old_1g + 1)) {
		tap_skip(6, "could not reserve a 1 GiB hugetlb page (memory too fragmented?)");
		return;
	}
	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_HUGETLB_1G};
	struct hp_arena *a = hp_arena_create(&cfg);
	char *p = a ? hp_arena_alloc(a, 4096, RW) : NULL;
	ok(p != NULL, "an allocation on a 1 GiB page");
	if (p)
		p[0] = 1;
	uintptr_t chunk = (uintptr_t)p & ~(HP_CHUNK_SIZE - 1);
	/* The mapping is private, but smaps may count its page as
	 * Shared_Hugetlb (the kernel's estimate of a large folio's sharing):
	 * seen on 6.18 in the full suite, 2 runs of 2, never run alone. */
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "Private_Hugetlb") +
		   kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "Shared_Hugetlb"),
	   1048576, "smaps: one 1 GiB hugetlb page");
	ok(p && hp_block_of((uintptr_t)p)->backend == HP_BACKEND_HUGETLB_1G,
	   "its block is a 1 GiB hugetlb block");

	char *blk = a ? hp_arena_alloc(a, HP_BLOCK_SIZE, RW) : NULL;
	errno = 0;
	ok(blk && hp_arena_protect(a, blk, HP_BLOCK_SIZE, PROT_READ) == -1 && errno == EINVAL,
	   "even a whole 2 MiB block of a 1 GiB page cannot change alone: EINVAL");
	is(blk ? kernel_prot_at((uintptr_t)blk) : -1, RW, "... and the kernel still has it RW");

	/* The pool is dry now (the one page is this arena's).  An arena that
	 * asked for hugetlb-1g fails rather than fall back to THP, whatever
	 * HUGEPERM_BACKEND says. */
	void *more = NULL;
	size_t nmore = 0;
	errno = 0;
	while (a && nmore < HP_CHUNK_BLOCKS && (more = hp_arena_alloc(a, HP_BLOCK_SIZE, RW)) &&
	       hp_block_of((uintptr_t)more)->backend == HP_BACKEND_HUGETLB_1G)
		nmore++;
	ok(more == NULL && errno == ENOMEM && nmore == HP_CHUNK_BLOCKS - 2,
	   "the page's other %zu blocks, then ENOMEM: no fall back to THP for an explicit "
	   "hugetlb-1g arena",
	   nmore);
	hp_arena_destroy(a);
	kernel_pool_restore();
}

/* A test that dies with settings changed runs no atexit handler: its
 * guardian puts them back. */
static void test_killed(void)
{
	long pool = kernel_read_long(KERNEL_POOL_2M);
	long sleep_ms = kernel_read_long(KERNEL_KHUGEPAGED_SLEEP);
	if (pool < 0 || sleep_ms < 0 || geteuid()) {
		tap_skip(3, "needs root and THP: nr_hugepages and khugepaged's interval");
		return;
	}
	if (sleep_ms >= KERNEL_KHUGEPAGED_PAUSED) {
		tap_skip(3, "khugepaged is paused already (another test's, or left so)");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		if (kernel_pool_set(KERNEL_POOL_2M, pool + 2) || kernel_khugepaged_pause() ||
		    kernel_read_long(KERNEL_POOL_2M) != pool + 2 ||
		    kernel_read_long(KERNEL_KHUGEPAGED_SLEEP) == sleep_ms)
			_exit(2);
		raise(SIGKILL);
		_exit(1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 2) {
		tap_skip(3, "could not reserve 2 more 2 MiB pages or pause khugepaged");
		return;
	}
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "a child set nr_hugepages to %ld and paused khugepaged, then was killed", pool + 2);
	long p = -1, ms = -1;
	for (int i = 0; i < 300 && (p != pool || ms != sleep_ms); i++) {
		if (i)
			usleep(10 * 1000);
		p = kernel_read_long(KERNEL_POOL_2M);
		ms = kernel_read_long(KERNEL_KHUGEPAGED_SLEEP);
	}
	is(p, pool, "its guardian put nr_hugepages back to %ld", pool);
	is(ms, sleep_ms, "... and khugepaged's scan interval to %ld ms", sleep_ms);
}

int main(void)
{
	tap_plan(24);
	test_2m();
	test_1g();
	test_killed();
	return tap_done();
}
