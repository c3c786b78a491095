/* SPDX-License-Identifier: MIT */
/*
 * fallback.t - a hugetlb pool that runs dry, on the real kernel.  As root
 * it sizes the 2 MiB pool to exactly the pages each case needs (and puts
 * it back as it was):
 *   - an allocation over 2 MiB falls back to THP like a small one;
 *   - after the fall back, HP_HOME and PROT_NONE allocations go to THP
 *     blocks, not to the old hugetlb ones, and change protection page by
 *     page;
 *   - a forked child whose pool cannot hold a copy of its code gets
 *     private memory instead of aborting, and runs and patches its own
 *     code without touching the parent's.
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

/* The pool with exactly @n pages free for us (none reserved).  0 or -1. */
static int pool_free(long n)
{
	long nr = kernel_read_long(KERNEL_POOL_2M);
	long avail = kernel_meminfo("HugePages_Free") - kernel_meminfo("HugePages_Rsvd");
	if (nr < 0 || kernel_pool_set(KERNEL_POOL_2M, nr - avail + n))
		return -1;
	avail = kernel_meminfo("HugePages_Free") - kernel_meminfo("HugePages_Rsvd");
	return avail == n ? 0 : -1;
}

/* An arena on @backend with the pool sized to @n free pages; NULL (and a
 * failed test) if the pool cannot be sized. */
static struct hp_arena *arena_on_pool(long n, int backend)
{
	if (pool_free(n)) {
		ok(0, "could not size the 2 MiB pool to %ld free pages", n);
		return NULL;
	}
	struct hp_config cfg = {.size = sizeof(cfg), .backend = backend};
	return hp_arena_create(&cfg);
}

static int backend_of(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	return st.backend;
}

static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
static const unsigned char ret7[] = {0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3};

/* Issue 15 defect 15: a span on a dry pool fell back nowhere (ENOMEM). */
static void test_span(void)
{
	struct hp_arena *a = arena_on_pool(1, HP_BACKEND_AUTO);
	if (!a)
		return;
	char *p = hp_arena_alloc(a, 4096, RW);
	ok(p && backend_of(a) == HP_BACKEND_HUGETLB_2M,
	   "auto arena on hugetlb-2m, its one page used");
	errno = 0;
	char *big = hp_arena_alloc(a, 4 * HP_BLOCK_SIZE / 2, RW);
	if (!ok(big != NULL, "a 4 MiB allocation on the dry pool falls back to THP"))
		tap_diag("  errno %d (%s)", errno, hp_errno_name(errno));
	if (big) {
		memset(big, 1, 2 * HP_BLOCK_SIZE);
		is(kernel_smaps_kb((uintptr_t)big, (uintptr_t)big + 2 * HP_BLOCK_SIZE,
				   "Private_Hugetlb"),
		   0, "smaps: no hugetlb page under it");
		is(backend_of(a), HP_BACKEND_THP, "the arena goes on with THP");
	} else {
		tap_skip(2, "no allocation");
	}
	hp_arena_destroy(a);
}

/* Issue 15 defect 14: after the fall back, the old hugetlb blocks served
 * HP_HOME (EINVAL) and PROT_NONE (one protection per 2 MiB) allocations. */
static void test_after_fallback(void)
{
	struct hp_arena *a = arena_on_pool(3, HP_BACKEND_AUTO);
	if (!a)
		return;
	char *p = hp_arena_alloc(a, 4096, RW);
	char *x = hp_arena_alloc(a, 4096, RX);
	char *w = hp_arena_alloc(a, HP_BLOCK_SIZE, RW);
	ok(p && x && w && backend_of(a) == HP_BACKEND_HUGETLB_2M,
	   "auto arena on hugetlb-2m: three blocks take the pool's three pages");
	char *r = hp_arena_alloc(a, 4096, PROT_READ); /* a new block: the pool is dry */
	ok(r && backend_of(a) == HP_BACKEND_THP, "the next block falls back to THP");
	hp_arena_free(a, w); /* an empty hugetlb block on the free list */

	errno = 0;
	char *h = hp_arena_alloc(a, 4096, RW | HP_HOME(RX));
	if (!ok(h != NULL, "after the fall back, an HP_HOME(RX) allocation is served"))
		tap_diag("  errno %d (%s)", errno, hp_errno_name(errno));
	if (h) {
		h[0] = (char)0xc3;
		ok(hp_arena_protect(a, h, 4096, RX) == 0 && kernel_prot_at((uintptr_t)h) == RX,
		   "... and made executable page by page (the kernel agrees)");
	} else {
		tap_skip(1, "no allocation");
	}
	char *n = hp_arena_alloc(a, 2 * 4096, PROT_NONE);
	ok(n && hp_block_of((uintptr_t)n)->backend == HP_BACKEND_THP,
	   "a PROT_NONE allocation goes to a THP block, not the old hugetlb one");
	errno = 0;
	int rc = n ? hp_arena_protect(a, n, 4096, RW) : -1;
	if (!ok(rc == 0 && kernel_prot_at((uintptr_t)n) == RW &&
			kernel_prot_at((uintptr_t)n + 4096) == PROT_NONE,
		"... and one page of it made RW: the kernel has rw- then ---"))
		tap_diag("  hp_protect %d, errno %d (%s)", rc, errno, hp_errno_name(errno));
	hp_arena_destroy(a);
}

/* Issue 15 defect 16: a child whose pool cannot hold its code's copy. */
static void test_fork(void)
{
	struct hp_arena *a = arena_on_pool(1, HP_BACKEND_HUGETLB_2M);
	if (!a)
		return;
	unsigned char *x = hp_arena_alloc(a, 4096, RX);
	ok(x && hp_arena_write(a, x, ret42, sizeof(ret42)) == 0 &&
		   hp_block_of((uintptr_t)x)->backend == HP_BACKEND_HUGETLB_2M &&
		   ((int (*)(void))(void *)x)() == 42,
	   "code on the pool's one hugetlb page (aliased), runs");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child: its copy of the code is its own and writable. */
		int bad = ((int (*)(void))(void *)x)() != 42;
		bad |= (hp_arena_write(a, x, ret7, sizeof(ret7)) != 0) << 1;
		bad |= (((int (*)(void))(void *)x)() != 7) << 2;
		bad |= (kernel_smaps_kb((uintptr_t)x, (uintptr_t)x + 1, "Shared_Hugetlb") != 0)
		       << 3;
		bad |= (kernel_prot_at((uintptr_t)x) != RX) << 4;
		_exit(bad);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"the child goes on with private memory: runs its code, patches it, no shared "
		"hugetlb page, RX"))
		tap_diag("  status: %s %d", WIFSIGNALED(status) ? "signal" : "exit",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	ok(x && ((int (*)(void))(void *)x)() == 42, "the parent's code is untouched");
	hp_arena_destroy(a);
}

int main(void)
{
	long old_2m = kernel_read_long(KERNEL_POOL_2M);
	if (old_2m < 0 || kernel_pool_set(KERNEL_POOL_2M, old_2m))
		tap_skip_all("no writable 2 MiB hugetlb pool (not root?)");
	tap_plan(14);
	test_span();
	test_after_fallback();
	test_fork();
	kernel_pool_restore();
	is(kernel_read_long(KERNEL_POOL_2M), old_2m, "nr_hugepages restored to %ld", old_2m);
	return tap_done();
}
