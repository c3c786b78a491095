/* SPDX-License-Identifier: MIT */
/*
 * demo.c - why hugeperm exists, in under a minute.
 *
 * A JIT-like workload: N small functions, each written and then made
 * executable (as a JIT does), then called in random order.  The same code
 * is placed two ways:
 *
 *   plain mmap   what JITs do today: a 4 KiB page per function, mmap RW,
 *                write, mprotect RX.
 *   hugeperm     hp_code_alloc(size): the functions packed in 64-byte
 *                granules into shared RX pages, then hp_write the code in
 *                through the block's writable alias: no page ever changes
 *                protection, the RX blocks stay uniform and the kernel maps
 *                them with 2 MiB entries; the code takes what it needs.
 *
 * For each it prints the time to build the code, the time per call of a
 * random walk through all of it (the iTLB cost), how much of the code is
 * huge-mapped according to /proc/self/smaps, and the THP splits the build
 * caused according to /proc/vmstat.
 *
 *   demo [--mib N]     N * 256 functions (plain mmap: N MiB), default 64
 */
#include <hugeperm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kview.h"

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

/* Code for a function that returns its argument plus @k; its length. */
static size_t emit(unsigned char *code, uint8_t k)
{
	const unsigned char f[] = {0x48, 0x8d, 0x47, k, /* lea rax, [rdi + k] */
				   0xc3};		/* ret */
	memcpy(code, f, sizeof(f));
	return sizeof(f);
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
	/* Room for function @i of @len bytes: where it starts, its page (what
	 * release frees) in *page. */
	unsigned char *(*alloc)(size_t i, size_t len, unsigned char **page);
	/* Put @len bytes of code at @at (in page @page) and make it runnable. */
	int (*emit)(unsigned char *page, unsigned char *at, const void *code, size_t len);
	void (*finish)(void);
	void (*release)(void *page);
};

/* What JITs do today: a RW page, write, mprotect RX. */
static unsigned char *mmap_alloc(size_t i, size_t len, unsigned char **page)
{
	(void)len;
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*page = p;
	return *page + offset_of(i);
}
static int mmap_emit(unsigned char *page, unsigned char *at, const void *code, size_t len)
{
	memcpy(at, code, len);
	return mprotect(page, PAGE, PROT_READ | PROT_EXEC);
}
static void mmap_finish(void)
{
}
static void mmap_release(void *p)
{
	munmap(p, PAGE);
}

/* hugeperm: packed code, RX from the start; hp_write puts the code in. */
static unsigned char *hp_code_room(size_t i, size_t len, unsigned char **page)
{
	(void)i;
	*page = hp_code_alloc(len);
	return *page;
}
static int hp_emit(unsigned char *page, unsigned char *at, const void *code, size_t len)
{
	return hp_write(at, code, len);
}
static void hp_finish(void)
{
	hp_collapse_pending(); /* nothing to do unless something split */
}
static void hp_release(void *p)
{
	hp_code_free(p);
}

#define ROUNDS 7

struct result {
	unsigned char **page;
	fn_t *fns;
	uintptr_t lo, hi;
	size_t code_bytes; /* the memory the functions take */
	double build_ms, huge_pct, ns[ROUNDS];
	long splits, checksum;
};

/* Build @n functions with placement @pl; how long, and the splits. */
static int build(const struct placement *pl, size_t n, struct result *r)
{
	r->page = calloc(n, sizeof(*r->page));
	r->fns = calloc(n, sizeof(*r->fns));
	r->lo = UINTPTR_MAX;
	r->hi = 0;

	long split0 = kernel_vmstat("thp_split_pmd");
	double t0 = now_ms();
	r->code_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		/* Emit each function as it is compiled, as a JIT does. */
		unsigned char code[8], *page;
		size_t len = emit(code, (uint8_t)(i % 3 + 1));
		unsigned char *at = pl->alloc(i, len, &page);
		if (!at) {
			perror(pl->name);
			return -1;
		}
		r->page[i] = page;
		size_t size = hp_usable_size(at); /* 0: not hugeperm's, a page */
		if (!size)
			size = PAGE;
		r->code_bytes += size;
		r->lo = (uintptr_t)page < r->lo ? (uintptr_t)page : r->lo;
		r->hi = (uintptr_t)page + size > r->hi ? (uintptr_t)page + size : r->hi;
		if (pl->emit(page, at, code, len)) {
			perror("emit");
			return -1;
		}
		r->fns[i] = (fn_t)(void *)at;
	}
	pl->finish();
	r->build_ms = now_ms() - t0;
	r->splits = kernel_vmstat("thp_split_pmd") - split0;

	long want = 0, got = 0;
	for (size_t i = 0; i < n; i++) { /* every function runs and gives its value */
		want += (long)(i % 3 + 1);
		got += r->fns[i](0);
	}
	if (got != want) {
		fprintf(stderr, "%s: the functions returned %ld, not %ld\n", pl->name, got, want);
		return -1;
	}
	long huge_kb = kernel_huge_kb(r->lo & ~((uintptr_t)(2 << 20) - 1), r->hi);
	double code_kb = (double)r->code_bytes / 1024;
	r->huge_pct = 100.0 * (huge_kb > code_kb ? code_kb : (double)huge_kb) / code_kb;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
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
		{"plain mmap + mprotect", mmap_alloc, mmap_emit, mmap_finish, mmap_release},
		{"hugeperm + hp_write", hp_code_room, hp_emit, hp_finish, hp_release},
	};
	struct result res[2];
	struct hp_stats st = {.size = sizeof(st)};

	printf("hugeperm demo: %zu JIT-compiled functions, each emitted as it is compiled;\n"
	       "then %zu calls to functions picked at random.\n\n",
	       n, calls);
	for (int i = 0; i < 2; i++)
		if (build(&pls[i], n, &res[i]))
			return 1;
	/* Both placements are timed in alternation, so that whatever else the
	 * machine does falls on both; the median of ROUNDS rounds is reported. */
	for (int i = 0; i < 2; i++)
		walk(res[i].fns, n, calls / 10); /* warm up */
	for (int k = 0; k < ROUNDS; k++)
		for (int i = 0; i < 2; i++) {
			double t = now_ms();
			res[i].checksum = walk(res[i].fns, n, calls / ROUNDS);
			res[i].ns[k] = (now_ms() - t) * 1e6 / (double)(calls / ROUNDS);
		}
	if (res[0].checksum != res[1].checksum) {
		fprintf(stderr, "the two placements computed different results\n");
		return 1;
	}
	double med[2];
	for (int i = 0; i < 2; i++) {
		qsort(res[i].ns, ROUNDS, sizeof(double), cmp_double);
		med[i] = res[i].ns[ROUNDS / 2];
	}
	hp_stats_get(&st);

	printf("%-24s %10s %10s %10s %16s %12s\n", "code placed by", "code KiB", "build ms",
	       "ns/call", "code huge-mapped", "THP splits");
	for (int i = 0; i < 2; i++)
		printf("%-24s %10zu %10.1f %10.2f %15.1f%% %12ld\n", pls[i].name,
		       res[i].code_bytes / 1024, res[i].build_ms, med[i], res[i].huge_pct,
		       res[i].splits);
	printf("\ncalls into hugeperm-placed code are %.2fx the speed of calls into plain mmap "
	       "code\n"
	       "(median of %d alternating rounds; per round, plain %.1f-%.1f ns, hugeperm "
	       "%.1f-%.1f ns)\n",
	       med[0] / med[1], ROUNDS, res[0].ns[0], res[0].ns[ROUNDS - 1], res[1].ns[0],
	       res[1].ns[ROUNDS - 1]);
	printf("hugeperm backend %s: %lu mprotect calls, %lu splits, %lu collapses; writes: %lu "
	       "through the alias, %lu through /proc/self/mem, %lu by flipping\n",
	       hp_backend_name(st.backend), (unsigned long)st.mprotect_calls,
	       (unsigned long)st.splits, (unsigned long)st.collapses,
	       (unsigned long)st.writes_alias, (unsigned long)st.writes_procmem,
	       (unsigned long)st.writes_flip);
	if (st.backend != HP_BACKEND_THP && st.backend != HP_BACKEND_HUGETLB_2M &&
	    st.backend != HP_BACKEND_HUGETLB_1G)
		printf("note: no huge pages on this machine (backend %s): nothing to gain here\n",
		       hp_backend_name(st.backend));
	return 0;
}
