/* SPDX-License-Identifier: MIT */
/*
 * preload_calls.c - what a served mprotect, mmap and munmap cost over the
 * plain system call, in one process under libhugeperm-preload.so.
 *
 * Each case times the call through the preload's hook on served memory
 * and, alternating with it batch by batch, the same call made with
 * syscall(2) on memory the kernel mapped (the preload never sees it): the
 * call the program would make without the preload.  Medians of the
 * batches, in ns per call, and their ratio.  The cases:
 *
 *   flip_whole  LuaJIT's flip: a 64 KiB hinted RW area made RX, then RW.
 *               Served (flip mode `block`), one mprotect of its whole
 *               2 MiB huge block; plain, one of 16 4K-mapped pages.  The
 *               kernel's own cost of the served call (a 2 MiB huge
 *               region) is timed too: the floor the preload adds to.
 *   flip_sub    part of an area (16 KiB of 64 KiB, the area's last page
 *               PROT_NONE so that its block stays mixed): per-page work.
 *   mmap        a 64 KiB hinted RW area mapped ...
 *   munmap      ... and unmapped (the two are timed apart).
 *   mmap_touch  mapped, every page written, unmapped: what a program pays
 *               for fresh memory (the served mmap zeroes it up front, the
 *               plain one takes a page fault and a page clear a page).
 *   munmap_code the munmap of an area whose code was written and ran (RX):
 *               served, its pages stay mapped with their block and are
 *               filled with int3 (the block, RX, flipped RW and back),
 *               but for the block's last area, which frees the block;
 *               plain, the kernel frees 16 pages.
 *   flip_fixed  Ruby's YJIT writing code: a page of its 256 MiB
 *               MAP_FIXED_NOREPLACE RX range made RW, written, and the
 *               128 MiB half that holds it made RX again, the page in the
 *               first and in the second half by turns (a flip pair is 2
 *               calls).  Served: a fixed range (HUGEPERM_PRELOAD_SERVE
 *               must list `fixed`, the default), the page flipped exactly
 *               in its block; plain, the kernel's range.
 *   pass_protect  a call the preload does not serve, which every program
 *               under it makes (Ruby's YJIT: 40,000 a run): a page of
 *               memory the kernel mapped made RX, then RW, through the
 *               hook (which finds it is not ours and makes the call) and
 *               by syscall(2).
 *   pass_map    the same for a 64 KiB RW mmap without a hint, and its
 *               munmap (a pair is 2 calls).
 *
 * Usage: LD_PRELOAD=.../libhugeperm-preload.so preload_calls [ROUNDS [CASE]]
 * (`make bench-preload` runs it); CASE: only that case and its peers (for
 * a profile: perf record -e cpu-clock).  Prints one line per case:
 *   case <name> served_ns <n> plain_ns <n> ratio <r> [huge_ns <n>]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kview.h"

#define KB    1024UL
#define MB    (1024 * KB)
#define AREA  (64 * KB)
#define RW    (PROT_READ | PROT_WRITE)
#define RX    (PROT_READ | PROT_EXEC)
#define ANON  (MAP_PRIVATE | MAP_ANONYMOUS)
#define BATCH 32 /* calls timed together */

static int (*owns)(const void *, size_t);

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "preload_calls: %s\n", what);
	exit(1);
}

static void *k_mmap(void *hint, size_t len, int prot, int flags)
{
	return (void *)syscall(SYS_mmap, hint, len, prot, flags, -1, 0L);
}

/* Hints as LuaJIT gives them: 64 KiB aligned, near our code. */
static uintptr_t hint_at(int k)
{
	return (((uintptr_t)(void *)&hint_at & ~(AREA - 1)) + 96 * MB + (uintptr_t)k * 4 * MB);
}

static void *served_area(int k)
{
	void *a = mmap((void *)hint_at(k), AREA, RW, ANON, -1, 0);
	if (a == MAP_FAILED || !owns(a, 1))
		die("a hinted 64 KiB area was not served (run under the preload, flip mode block)");
	memset(a, 1, AREA);
	return a;
}

static void *plain_area(void)
{
	void *a = k_mmap(NULL, AREA, RW, ANON);
	if (a == MAP_FAILED)
		die("mmap");
	memset(a, 1, AREA);
	return a;
}

/* A 2 MiB aligned region the kernel maps with one huge page, or NULL. */
static void *huge_region(void)
{
	char *r = k_mmap(NULL, 4 * MB, RW, ANON);
	if (r == MAP_FAILED)
		return NULL;
	char *b = (char *)(((uintptr_t)r + 2 * MB - 1) & ~(2 * MB - 1));
	madvise(b, 2 * MB, MADV_HUGEPAGE);
	memset(b, 1, 2 * MB);
	return b;
}

/* A 256 MiB PROT_READ|PROT_EXEC range at an address of our own, with
 * MAP_FIXED_NOREPLACE as YJIT asks for it (not 2 MiB aligned: YJIT's
 * starts where its binary puts it), through the hook (@hooked: served, a
 * fixed range) or not; its two halves' first blocks written, as YJIT fills
 * its range with traps before it writes code there. */
#define FIXED_LEN (256 * MB)
static char *fixed_range(bool hooked)
{
	char *probe = k_mmap(NULL, FIXED_LEN + 4 * MB, PROT_NONE, ANON | MAP_NORESERVE);
	if (probe == MAP_FAILED)
		die("no room for a 256 MiB range");
	syscall(SYS_munmap, probe, FIXED_LEN + 4 * MB);
	char *at = (char *)((((uintptr_t)probe + 2 * MB - 1) & ~(2 * MB - 1)) + 0x6c000);
	int flags = ANON | MAP_FIXED_NOREPLACE;
	char *r = hooked ? mmap(at, FIXED_LEN, RX, flags, -1, 0) : k_mmap(at, FIXED_LEN, RX, flags);
	if (r != at)
		die("the 256 MiB MAP_FIXED_NOREPLACE range was not mapped at its address");
	if (hooked && !owns(r, 1))
		die("the fixed range was not served (HUGEPERM_PRELOAD_SERVE without `fixed`?)");
	for (size_t half = 0; half < FIXED_LEN; half += FIXED_LEN / 2) {
		if ((hooked ? mprotect(r + half, 4 * MB, RW)
			    : syscall(SYS_mprotect, r + half, 4 * MB, RW)) != 0)
			die("mprotect of the fixed range");
		memset(r + half, 0xcc, 4 * MB);
	}
	if ((hooked ? mprotect(r, FIXED_LEN, RX) : syscall(SYS_mprotect, r, FIXED_LEN, RX)) != 0)
		die("mprotect of the fixed range");
	return r;
}

/* ns per call of YJIT's flip pair: page @k of a half made RW, written,
 * the half made RX. */
static double fixed_batch(char *r, int k, bool hooked)
{
	uint64_t t0 = now_ns();
	for (int i = 0; i < BATCH / 2; i++) {
		char *half = r + (size_t)(i & 1) * (FIXED_LEN / 2);
		char *page = half + (size_t)((k * BATCH / 2 + i) % 512) * 4096;
		if (hooked ? mprotect(page, 4096, RW) : syscall(SYS_mprotect, page, 4096, RW))
			die("mprotect of a page of the fixed range");
		page[100] = (char)0xc3;
		if (hooked ? mprotect(half, FIXED_LEN / 2, RX)
			   : syscall(SYS_mprotect, half, FIXED_LEN / 2, RX))
			die("mprotect of a half of the fixed range");
	}
	return (double)(now_ns() - t0) / BATCH;
}

/* ns per call of @n calls of a flip pair (2 calls each). */
static double flip_batch(void *p, size_t len, bool hooked)
{
	uint64_t t0 = now_ns();
	for (int i = 0; i < BATCH / 2; i++) {
		if (hooked) {
			if (mprotect(p, len, RX) || mprotect(p, len, RW))
				die("served mprotect failed");
		} else if (syscall(SYS_mprotect, p, len, RX) || syscall(SYS_mprotect, p, len, RW)) {
			die("mprotect failed");
		}
	}
	return (double)(now_ns() - t0) / BATCH;
}

/* ns per call of mmap and munmap pairs the preload passes on. */
static double pass_map_batch(bool hooked)
{
	uint64_t t0 = now_ns();
	for (int i = 0; i < BATCH / 2; i++) {
		void *m = hooked ? mmap(NULL, AREA, RW, ANON, -1, 0) : k_mmap(NULL, AREA, RW, ANON);
		if (m == MAP_FAILED)
			die("mmap failed");
		if (hooked && owns(m, 1))
			die("an mmap without a hint was served: not a pass-through call");
		if (hooked ? munmap(m, AREA) : syscall(SYS_munmap, m, AREA))
			die("munmap failed");
	}
	return (double)(now_ns() - t0) / BATCH;
}

enum { MAP_ONLY, UNMAP_ONLY, MAP_TOUCH, UNMAP_CODE };

static double map_batch(int k, bool hooked, int what)
{
	void *p[BATCH];
	uint64_t t = 0, t0 = now_ns();
	for (int i = 0; i < BATCH; i++) {
		p[i] = hooked ? mmap((void *)hint_at(k), AREA, RW, ANON, -1, 0)
			      : k_mmap((void *)hint_at(k + 8), AREA, RW, ANON);
		if (p[i] == MAP_FAILED)
			die("mmap failed");
		if (what == MAP_TOUCH)
			for (size_t o = 0; o < AREA; o += 4096)
				((volatile char *)p[i])[o] = 1;
	}
	if (what == UNMAP_CODE) { /* code written, then run (all RX: a packed block's
				   * areas run once none is being written) */
		for (int i = 0; i < BATCH; i++) {
			memset(p[i], 0xc3, AREA);
			if (hooked ? mprotect(p[i], AREA, RX)
				   : syscall(SYS_mprotect, p[i], AREA, RX))
				die("mprotect failed");
		}
		for (int i = 0; i < BATCH; i++)
			((void (*)(void))p[i])();
	}
	if (what == MAP_ONLY || what == MAP_TOUCH)
		t = now_ns() - t0;
	if (hooked && !owns(p[0], 1))
		die("a hinted area was not served");
	t0 = now_ns();
	for (int i = 0; i < BATCH; i++)
		if (hooked ? munmap(p[i], AREA) : syscall(SYS_munmap, p[i], AREA))
			die("munmap failed");
	if (what != MAP_ONLY)
		t += now_ns() - t0;
	return (double)t / BATCH;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *name, double *s, double *p, int n, double *h)
{
	double ms = median(s, n), mp = median(p, n);
	printf("case %-10s served_ns %8.0f plain_ns %8.0f ratio %.2f", name, ms, mp, ms / mp);
	if (h)
		printf(" huge_ns %8.0f served/huge %.2f", median(h, n), ms / median(h, n));
	printf("\n");
}

static bool want(const char *only, const char *name)
{
	return !only || !strcmp(only, name);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	const char *only = argc > 2 ? argv[2] : NULL;
	if (rounds < 1 || rounds > 100000)
		die("ROUNDS must be 1 to 100000");
	owns = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "hp_owns");
	if (!owns)
		die("hp_owns not found: run under LD_PRELOAD=libhugeperm-preload.so");
	double *s = calloc((size_t)rounds, sizeof(double));
	double *p = calloc((size_t)rounds, sizeof(double));
	double *h = calloc((size_t)rounds, sizeof(double));
	if (!s || !p || !h)
		die("out of memory");

	char *sa = served_area(0), *pa = plain_area(), *hr = huge_region();
	if (!hr)
		die("no 2 MiB region");
	for (int r = 0; r < rounds && want(only, "flip_whole"); r++) {
		if (r % 2) { /* the order turns each round */
			s[r] = flip_batch(sa, AREA, true);
			p[r] = flip_batch(pa, AREA, false);
			h[r] = flip_batch(hr, 2 * MB, false);
		} else {
			h[r] = flip_batch(hr, 2 * MB, false);
			p[r] = flip_batch(pa, AREA, false);
			s[r] = flip_batch(sa, AREA, true);
		}
	}
	if (want(only, "flip_whole")) {
		report("flip_whole", s, p, rounds, h);
		/* The kernel's word (PAGEMAP_SCAN; -1 before Linux 6.7). */
		uintptr_t blk = (uintptr_t)sa & ~(2 * MB - 1);
		printf("# huge-mapped pages of the 2 MiB blocks flipped: served %ld, huge region "
		       "%ld of 512\n",
		       kernel_huge_pages(blk, 2 * MB), kernel_huge_pages((uintptr_t)hr, 2 * MB));
	}

	if (mprotect(sa + AREA - 4096, 4096, PROT_NONE) ||
	    syscall(SYS_mprotect, pa + AREA - 4096, 4096, PROT_NONE))
		die("guard page");
	for (int r = 0; r < rounds && want(only, "flip_sub"); r++) {
		if (r % 2) {
			s[r] = flip_batch(sa, 16 * KB, true);
			p[r] = flip_batch(pa, 16 * KB, false);
		} else {
			p[r] = flip_batch(pa, 16 * KB, false);
			s[r] = flip_batch(sa, 16 * KB, true);
		}
	}
	if (want(only, "flip_sub"))
		report("flip_sub", s, p, rounds, NULL);

	if (want(only, "flip_fixed")) {
		char *sf = fixed_range(true), *pf = fixed_range(false);
		for (int r = 0; r < rounds; r++) {
			if (r % 2) {
				s[r] = fixed_batch(sf, r, true);
				p[r] = fixed_batch(pf, r, false);
			} else {
				p[r] = fixed_batch(pf, r, false);
				s[r] = fixed_batch(sf, r, true);
			}
		}
		report("flip_fixed", s, p, rounds, NULL);
	}

	if (want(only, "pass_protect")) {
		char *k = plain_area();
		for (int r = 0; r < rounds; r++) {
			if (r % 2) {
				s[r] = flip_batch(k, 4096, true);
				p[r] = flip_batch(k, 4096, false);
			} else {
				p[r] = flip_batch(k, 4096, false);
				s[r] = flip_batch(k, 4096, true);
			}
		}
		report("pass_protect", s, p, rounds, NULL);
	}
	if (want(only, "pass_map")) {
		for (int r = 0; r < rounds; r++) {
			if (r % 2) {
				s[r] = pass_map_batch(true);
				p[r] = pass_map_batch(false);
			} else {
				p[r] = pass_map_batch(false);
				s[r] = pass_map_batch(true);
			}
		}
		report("pass_map", s, p, rounds, NULL);
	}

	static const char *const names[] = {"mmap", "munmap", "mmap_touch", "munmap_code"};
	for (int what = MAP_ONLY; what <= UNMAP_CODE; what++) {
		int n = rounds / 4 ? rounds / 4 : 1;
		if (!want(only, names[what]))
			continue;
		map_batch(1, true, what); /* not timed: the first makes an arena */
		map_batch(1, false, what);
		for (int r = 0; r < n; r++) {
			if (r % 2) {
				s[r] = map_batch(1, true, what);
				p[r] = map_batch(1, false, what);
			} else {
				p[r] = map_batch(1, false, what);
				s[r] = map_batch(1, true, what);
			}
		}
		report(names[what], s, p, n, NULL);
		if (what == MAP_ONLY)
			printf("# mmap alone: the served call hands out pages already populated "
			       "and\n"
			       "# zeroed (zeroing 64 KiB is most of it), the plain one leaves both "
			       "to\n"
			       "# the first write to each page: mmap_touch has the whole cost\n");
	}
	return 0;
}
