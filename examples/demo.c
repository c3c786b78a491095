/* SPDX-License-Identifier: MIT */
/*
 * demo.c - why hugeperm exists, in under a minute.
 *
 * A JIT-like workload: N small functions, one per 4 KiB page, each written
 * and then made executable (as a JIT does), then called in random order.
 * The same code is placed two ways:
 *
 *   plain mmap   what JITs do today: mmap RW, write, mprotect RX.  The
 *                code ends up on 4 KiB pages.
 *   hugeperm     hp_alloc with HP_HOME(RX), write, hp_protect RX, then
 *                hp_collapse_pending(): the code sits in uniform RX blocks
 *                that the kernel maps with 2 MiB entries.
 *
 * For each it prints the time to build the code, the time per call of a
 * random walk through all of it (the iTLB cost), how much of the code is
 * huge-mapped according to /proc/self/smaps, and the THP splits the build
 * caused according to /proc/vmstat.
 *
 *   demo [--mib N]     code size, default 64 MiB
 */
#include <hugeperm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernel.h"

#define PAGE 4096

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Where function i starts in its page: spread so caches are no bottleneck. */
static size_t offset_of(size_t i)
{
	return (i * 11 % 63) * 64;
}

/* Emit a function at @at that returns its argument plus @k. */
static void emit(unsigned char *at, uint8_t k)
{
	const unsigned char code[] = {0x48, 0x8d, 0x47, k, /* lea rax, [rdi + k] */
				      0xc3};		   /* ret */
	memcpy(at, code, sizeof(code));
}

typedef long (*fn_t)(long);

/*
 * Call @calls functions picked at random (an LCG in registers, so the only
 * memory the loop reads is the table of function pointers).  The branch
 * predictor cannot guess an indirect call's random target, so each call's
 * instruction fetch, and with it the iTLB lookup, sits on the critical path:
 * the cost the project exists to remove.
 */
static long walk(fn_t *fns, size_t n, size_t calls)
{
	uint64_t x = 88172645463325252ULL;
	long acc = 0;
	for (size_t i = 0; i < calls; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		acc = fns[x % n](acc);
	}
	return acc;
}

struct placement {
	const char *name;
	void *(*alloc)(void);
	int (*make_exec)(void *page);
	void (*finish)(void);
	void (*release)(void *page);
};

static void *mmap_alloc(void)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
static int mmap_exec(void *p)
{
	return mprotect(p, PAGE, PROT_READ | PROT_EXEC);
}
static void mmap_finish(void)
{
}
static void mmap_release(void *p)
{
	munmap(p, PAGE);
}

static void *hp_page_alloc(void)
{
	return hp_alloc(PAGE, PROT_READ | PROT_WRITE | HP_HOME(PROT_READ | PROT_EXEC));
}
static int hp_page_exec(void *p)
{
	return hp_protect(p, PAGE, PROT_READ | PROT_EXEC);
}
static void hp_finish(void)
{
	hp_collapse_pending();
}
static void hp_release(void *p)
{
	hp_free(p);
}

struct result {
	double build_ms, ns_per_call, huge_pct;
	long splits, checksum;
};

static int run(const struct placement *pl, size_t n, size_t calls, struct result *r)
{
	unsigned char **page = calloc(n, sizeof(*page));
	fn_t *fns = calloc(n, sizeof(*fns));
	uintptr_t lo = UINTPTR_MAX, hi = 0;

	long split0 = kernel_vmstat("thp_split_pmd");
	double t0 = now_ms();
	for (size_t i = 0; i < n; i++) {
		if (!(page[i] = pl->alloc())) {
			perror(pl->name);
			return -1;
		}
		lo = (uintptr_t)page[i] < lo ? (uintptr_t)page[i] : lo;
		hi = (uintptr_t)page[i] + PAGE > hi ? (uintptr_t)page[i] + PAGE : hi;
		/* Emit, then make executable, as a JIT does per function. */
		emit(page[i] + offset_of(i), (uint8_t)(i % 3 + 1));
		if (pl->make_exec(page[i])) {
			perror("make executable");
			return -1;
		}
		fns[i] = (fn_t)(void *)(page[i] + offset_of(i));
	}
	pl->finish();
	r->build_ms = now_ms() - t0;
	r->splits = kernel_vmstat("thp_split_pmd") - split0;

	long want = 0;
	for (size_t i = 0; i < n; i++)
		want += (long)(i % 3 + 1);
	long got = 0;
	for (size_t i = 0; i < n; i++) /* every function runs and gives its value */
		got += fns[i](0);
	if (got != want) {
		fprintf(stderr, "%s: the functions returned %ld, not %ld\n", pl->name, got, want);
		return -1;
	}
	walk(fns, n, calls / 10); /* warm up */
	double t1 = now_ms();
	r->checksum = walk(fns, n, calls);
	r->ns_per_call = (now_ms() - t1) * 1e6 / (double)calls;

	long huge_kb = kernel_smaps_kb(lo & ~((uintptr_t)(2 << 20) - 1), hi, "AnonHugePages");
	double code_kb = (double)n * PAGE / 1024;
	r->huge_pct = 100.0 * (huge_kb > code_kb ? code_kb : (double)huge_kb) / code_kb;
	for (size_t i = 0; i < n; i++)
		pl->release(page[i]);
	free(page);
	free(fns);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib = 64;
	if (argc == 3 && !strcmp(argv[1], "--mib"))
		mib = strtoul(argv[2], NULL, 10);
	if (mib < 2 || mib > 512) {
		fprintf(stderr, "usage: demo [--mib N]   (2 <= N <= 512)\n");
		return 2;
	}
	size_t n = mib * 256;
	size_t calls = 20000000;

	const struct placement pls[] = {
		{"plain mmap + mprotect", mmap_alloc, mmap_exec, mmap_finish, mmap_release},
		{"hugeperm", hp_page_alloc, hp_page_exec, hp_finish, hp_release},
	};
	struct result res[2];
	struct hp_stats st = {.size = sizeof(st)};

	printf("hugeperm demo: %zu JIT-compiled functions, one per 4 KiB page (%zu MiB of code),\n"
	       "each written and then made executable; then %zu calls to functions picked at "
	       "random.\n\n",
	       n, mib, calls);
	for (int i = 0; i < 2; i++)
		if (run(&pls[i], n, calls, &res[i]))
			return 1;
	if (res[0].checksum != res[1].checksum) {
		fprintf(stderr, "the two placements computed different results\n");
		return 1;
	}
	hp_stats_get(&st);

	printf("%-24s %10s %10s %16s %12s\n", "code placed by", "build ms", "ns/call",
	       "code huge-mapped", "THP splits");
	for (int i = 0; i < 2; i++)
		printf("%-24s %10.1f %10.2f %15.1f%% %12ld\n", pls[i].name, res[i].build_ms,
		       res[i].ns_per_call, res[i].huge_pct, res[i].splits);
	printf("\ncalls into hugeperm-placed code are %.2fx the speed of calls into plain mmap "
	       "code\n",
	       res[0].ns_per_call / res[1].ns_per_call);
	printf("hugeperm backend %s: %lu collapses (%lu attempts), %lu splits counted, "
	       "%lu mprotect calls\n",
	       hp_backend_name(st.backend), (unsigned long)st.collapses,
	       (unsigned long)st.collapse_attempts, (unsigned long)st.splits,
	       (unsigned long)st.mprotect_calls);
	if (st.backend != HP_BACKEND_THP && st.backend != HP_BACKEND_HUGETLB_2M &&
	    st.backend != HP_BACKEND_HUGETLB_1G)
		printf("note: no huge pages on this machine (backend %s): nothing to gain here\n",
		       hp_backend_name(st.backend));
	return 0;
}
