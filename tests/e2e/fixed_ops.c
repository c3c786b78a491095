/* SPDX-License-Identifier: MIT */
/*
 * fixed_ops.c - what Ruby's YJIT and Mono ask the kernel for, done by hand,
 * run plain and under the preload by fixed.sh: the same stdout both ways;
 * the kernel's view (smaps) on stderr, as "facts" lines, for fixed.sh to
 * judge under the preload.
 *
 *   yjit     a 256 MiB PROT_READ|PROT_EXEC mapping at an unaligned hint with
 *            MAP_FIXED_NOREPLACE; EEXIST for the range again and for one
 *            that overlaps it; all of it RW, filled, RX (as YJIT does at
 *            start); then functions written one page RW at a time, the whole
 *            range RX again after each, 16 in each block; each called.
 *            munmap, and the same address can be mapped again.  The facts
 *            are read once the range is huge-mapped, or after
 *            FIXED_OPS_SETTLE_MS.
 *   cross    the same across a 1 GiB boundary.
 *   blocked  the same with the 2 MiB block under the hint's start taken by
 *            another mapping.  Every case, on EEXIST, tries 4 MiB up, as
 *            YJIT does; how many tries it took is a fact.
 *   edge     the same 6 MiB below a 1 GiB boundary, in a slot taken up to
 *            8 MiB below it: less room there than a chunk near a mere hint
 *            takes (YJIT's range, near the loader's mappings, sometimes is
 *            so, with its inline code below the boundary); the preload
 *            serves both sides, the part below from those 6 MiB.
 *   thpoff   (alone: it is for the whole process) yjit after
 *            prctl(PR_SET_THP_DISABLE, 1), as Ruby 3.1 does at start;
 *            PR_GET_THP_DISABLE says 1 after it.
 *   flips    YJIT's page and half flips on a range, with runs of any
 *            protection and calls that change nothing between them,
 *            each checked page by page against /proc/self/maps.
 *   map32    Mono's code chunks: 64 KiB RWX MAP_32BIT mappings, half of
 *            them hinted at the end of the last one, code written and
 *            called; every one below 2 GiB.
 *
 * Not linked with the library: it must see only the kernel's interface.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define MIB	(1UL << 20)
#define GIB	(1UL << 30)
#define LEN	(256 * MIB)
#define STRIDE	(128UL << 10)
#define NFUNC	(LEN / STRIDE)
#define PAGE	4096UL
#define NOREPL	(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
#define RX	(PROT_READ | PROT_EXEC)
#define RW	(PROT_READ | PROT_WRITE)
#define UNALIGN 0x6c000UL /* where YJIT's range starts in its block */

static int failed;

static void fail(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	failed = 1;
}

/* Resident and AnonHugePages KiB of the VMAs inside [lo, hi). */
static void smaps_of(uintptr_t lo, uintptr_t hi, unsigned long *rss, unsigned long *huge)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	*rss = *huge = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, kb;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ' ') - line > 8)
			in = s >= lo && e <= hi;
		else if (in && sscanf(line, "Rss: %lu kB", &kb) == 1)
			*rss += kb;
		else if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			*huge += kb;
	}
	fclose(f);
}

/* A free range of @len bytes whose start is aligned to @align: the kernel's
 * choice, given back at once.  Not MAP_NORESERVE: the preload would serve
 * that as a code range, and keep the address space when it is unmapped. */
static uintptr_t free_range(size_t len, size_t align)
{
	void *p = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	munmap(p, len + align);
	return ((uintptr_t)p + align - 1) & ~(align - 1);
}

/* mov eax, imm32; ret */
static void emit(unsigned char *at, uint32_t v)
{
	at[0] = 0xb8;
	memcpy(at + 1, &v, 4);
	at[5] = 0xc3;
}

static void yjit(const char *name, uintptr_t hint, uintptr_t block_lo)
{
	/* EEXIST: 4 MiB up, as YJIT tries (the preload refuses a range whose
	 * first block is shared, once: docs/preload.md). */
	unsigned char *p = MAP_FAILED;
	int tries = 0;
	while (p == MAP_FAILED && tries < 4) {
		p = mmap((void *)hint, LEN, RX, NOREPL, -1, 0);
		tries++;
		if (p == MAP_FAILED && errno == EEXIST) {
			hint += 4 * MIB;
			block_lo += 4 * MIB;
		} else if (p == MAP_FAILED) {
			break;
		}
	}
	if (p == MAP_FAILED || (uintptr_t)p != hint) {
		fail(name);
		return;
	}
	fprintf(stderr, "facts %s-tries n %d\n", name, tries);
	errno = 0;
	void *again = mmap((void *)hint, LEN, RX, NOREPL, -1, 0);
	int e1 = again == MAP_FAILED ? errno : 0;
	void *over = mmap((void *)(hint + LEN - MIB), 4 * MIB, RX, NOREPL, -1, 0);
	int e2 = over == MAP_FAILED ? errno : 0;
	printf("%s: the range again: %s; a range overlapping its end: %s\n", name, strerror(e1),
	       strerror(e2));

	if (mprotect(p, LEN, RW) || !memset(p, 0xcc, LEN) || mprotect(p, LEN, RX))
		fail("fill");
	uint64_t sum = 0;
	for (size_t i = 0; i < NFUNC; i++) {
		unsigned char *at = p + i * STRIDE + (i % 64) * 16;
		unsigned char *pg = (unsigned char *)((uintptr_t)at & ~(PAGE - 1));
		if (mprotect(pg, PAGE, RW))
			fail("page RW");
		emit(at, (uint32_t)(i * 3 + 1));
		if (mprotect(p, LEN, RX))
			fail("range RX");
	}
	for (size_t i = 0; i < NFUNC; i++)
		sum += ((uint32_t(*)(void))(p + i * STRIDE + (i % 64) * 16))();
	printf("%s: %zu functions, sum %llu\n", name, (size_t)NFUNC, (unsigned long long)sum);

	unsigned long rss, huge;
	/* Served, a block written page by page is collapsed once it has been
	 * quiet a while (docs/preload.md): FIXED_OPS_SETTLE_MS says how long
	 * to wait at most for the range to be huge-mapped. */
	const char *settle = getenv("FIXED_OPS_SETTLE_MS");
	for (long ms = settle ? atol(settle) : 0;; ms -= 100) {
		smaps_of(block_lo, hint + LEN + 2 * MIB, &rss, &huge);
		if (ms <= 0 || huge * 100 >= rss * 99)
			break;
		usleep(100 * 1000);
	}
	fprintf(stderr, "facts %s rss_kb %lu huge_kb %lu\n", name, rss, huge);

	if (munmap(p, LEN))
		fail("munmap");
	p = mmap((void *)hint, LEN, RX, NOREPL, -1, 0);
	printf("%s: mapped again after munmap: %s\n", name,
	       (uintptr_t)p == hint ? "yes" : strerror(errno));
	if (p != MAP_FAILED)
		munmap(p, LEN);
}

/* The protection the kernel has for each page of [p, p + LEN), from
 * /proc/self/maps, into @kp (LEN / PAGE bytes; -1 where unmapped). */
static void kernel_prots(uintptr_t p, signed char *kp)
{
	memset(kp, -1, LEN / PAGE);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perm[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3 || hi <= p || lo >= p + LEN)
			continue;
		int prot = (perm[0] == 'r' ? PROT_READ : 0) | (perm[1] == 'w' ? PROT_WRITE : 0) |
			   (perm[2] == 'x' ? PROT_EXEC : 0);
		for (uintptr_t a = lo > p ? lo : p; a < hi && a < p + LEN; a += PAGE)
			kp[(a - p) / PAGE] = (signed char)prot;
	}
	if (f)
		fclose(f);
}

/* YJIT's flips and others around them, each checked against the kernel's
 * own protections (/proc/self/maps) page by page: the preload's fast path
 * for calls inside one code range (preload/code_range_flip.c) must apply
 * every change, skip none.  Prints the pages that lack a bit asked for (0
 * everywhere); the facts line says how many differ at all (0 in exact
 * mode; block mode merges a block of R and RX pages, or of NONE and RX,
 * into RX) and how many of those asked RW or RX (0 in block mode too; rwx
 * mode makes them RWX). */
static void flips(uintptr_t hint)
{
	unsigned char *p = mmap((void *)hint, LEN, RX, NOREPL, -1, 0);
	if (p == MAP_FAILED || (uintptr_t)p != hint) {
		fail("flips");
		return;
	}
	static signed char model[LEN / PAGE], kp[LEN / PAGE];
	memset(model, RX, sizeof(model));
	static const int prots[] = {RW, RX, PROT_READ, PROT_NONE, RX, RW};
	const size_t half = LEN / 2 / PAGE;
	unsigned long lacking = 0, differ = 0, wx = 0, seed = 12345;
	int steps = 0;
	for (int step = 0; step < 400; step++) {
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		unsigned r = (unsigned)(seed >> 33);
		size_t first, n;
		int prot;
		switch (step % 5) {
		case 0: /* a page RW in one half, or two pages */
		case 1:
			first = (step % 2 ? half : 0) + r % 1024;
			n = 1 + r % 2;
			prot = RW;
			break;
		case 2: /* the half RX again */
			first = (r % 2) * half;
			n = half;
			prot = RX;
			break;
		case 3: /* a run across what the steps above left, any protection */
			first = r % 2048;
			n = 1 + (r >> 11) % 64;
			prot = prots[(r >> 17) % 6];
			break;
		default: /* what is recorded already (nothing to do), or a
			  * page whose recorded protection differs */
			first = r % 1024;
			n = 1;
			prot = r % 3 ? model[first] : (model[first] == RX ? RW : RX);
			break;
		}
		if (mprotect(p + first * PAGE, n * PAGE, prot)) {
			fail("flips mprotect");
			break;
		}
		memset(&model[first], prot, n);
		steps++;
		if (step % 4 && step != 399)
			continue;
		kernel_prots((uintptr_t)p, kp);
		for (size_t i = 0; i < LEN / PAGE; i++) {
			lacking += kp[i] < 0 || (model[i] & ~kp[i]) != 0;
			differ += kp[i] != model[i];
			wx += (model[i] == RW || model[i] == RX) && kp[i] != model[i];
		}
	}
	printf("flips: %d calls, pages lacking a protection asked for: %lu\n", steps, lacking);
	fprintf(stderr, "facts flips differ %lu rw_rx_differ %lu\n", differ, wx);
	munmap(p, LEN);
}

static void map32(void)
{
	enum { N = 16, SIZE = 64 << 10 };
	unsigned char *c[N];
	bool low = true;
	uint64_t sum = 0;
	for (int i = 0; i < N; i++) {
		/* Every other one asks for the end of the last, as Mono does:
		 * a hint the kernel cannot take when our chunk holds the window. */
		c[i] = mmap(i % 2 ? c[i - 1] + SIZE : NULL, SIZE,
			    PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		if (c[i] == MAP_FAILED) {
			fail("MAP_32BIT");
			return;
		}
		low &= (uintptr_t)c[i] + SIZE <= 2 * GIB;
		for (int k = 0; k < SIZE / 64; k++)
			emit(c[i] + k * 64, (uint32_t)(i * 1000 + k));
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < SIZE / 64; k++)
			sum += ((uint32_t(*)(void))(c[i] + k * 64))();
	printf("map32: %d chunks, all below 2 GiB: %s, sum %llu\n", N, low ? "yes" : "no",
	       (unsigned long long)sum);
	unsigned long rss, huge;
	uintptr_t b = (uintptr_t)c[0] & ~(2 * MIB - 1);
	smaps_of(b, b + 2 * MIB, &rss, &huge);
	fprintf(stderr, "facts map32 rss_kb %lu huge_kb %lu\n", rss, huge);
	for (int i = 0; i < N; i++)
		munmap(c[i], SIZE);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	bool all = !strcmp(what, "all");
	if (all || !strcmp(what, "yjit")) {
		uintptr_t lo = free_range(GIB, GIB); /* within one 1 GiB slot */
		if (lo)
			yjit("yjit", lo + 2 * MIB + UNALIGN, lo + 2 * MIB);
	}
	if (all || !strcmp(what, "cross")) {
		uintptr_t lo = free_range(2 * GIB, GIB);
		if (lo)
			yjit("cross", lo + GIB - LEN / 2 + UNALIGN, lo + GIB - LEN / 2);
	}
	if (all || !strcmp(what, "blocked")) {
		uintptr_t lo = free_range(GIB, GIB);
		/* Another mapping in the block where the range starts. */
		void *q = mmap((void *)(lo + 2 * MIB), PAGE, PROT_READ, NOREPL, -1, 0);
		if (q == MAP_FAILED)
			fail("blocker");
		else
			yjit("blocked", lo + 2 * MIB + UNALIGN, lo + 2 * MIB);
	}
	if (all || !strcmp(what, "edge")) {
		uintptr_t lo = free_range(2 * GIB, GIB);
		void *q = lo ? mmap((void *)lo, GIB - 8 * MIB, PROT_NONE, NOREPL | MAP_NORESERVE,
				    -1, 0)
			     : MAP_FAILED;
		if (q == MAP_FAILED)
			fail("edge blocker");
		else
			yjit("edge", lo + GIB - 6 * MIB + UNALIGN, lo + GIB - 6 * MIB);
	}
	if (all || !strcmp(what, "map32"))
		map32();
	if (all || !strcmp(what, "flips")) {
		uintptr_t lo = free_range(GIB, GIB);
		if (lo)
			flips(lo + 2 * MIB + UNALIGN);
	}
	if (!strcmp(what, "thpoff")) {
		if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
			fail("PR_SET_THP_DISABLE");
		printf("thpoff: PR_GET_THP_DISABLE says %d\n",
		       prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
		uintptr_t lo = free_range(GIB, GIB);
		if (lo)
			yjit("thpoff", lo + 2 * MIB + UNALIGN, lo + 2 * MIB);
	}
	return failed;
}
