/* SPDX-License-Identifier: MIT */
/*
 * write_cost.c - what it costs to patch 64 bytes of live code, each way a
 * JIT could do it, measured in one run on the same machine:
 *
 *   flip pair      mprotect RW, memcpy, mprotect RX, on a page of a THP
 *                  block (what W^X JITs do today; the first flip splits)
 *   rwx            memcpy into an RWX mapping (no W^X at all)
 *   hp_write       hugeperm, through the block's writable alias
 *   hp_write/mem   hugeperm without an alias, through /proc/self/mem
 *
 * Each case runs in alternating rounds; the median ns per patch is
 * reported with the ratio of the flip pair to each.  The bench issue moves
 * this onto the Google Benchmark shim.
 */
#include <hugeperm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define ROUNDS 9
#define OPS    20000
#define BLOCK  (2UL << 20)
#define PAGES  512

static unsigned char patch[64];

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned char *thp_block(int prot)
{
	unsigned char *r =
		mmap(NULL, 2 * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	unsigned char *b = (unsigned char *)(((uintptr_t)r + BLOCK - 1) & ~(BLOCK - 1));
	madvise(b, BLOCK, MADV_HUGEPAGE);
	memset(b, 0xc3, BLOCK);
	mprotect(b, BLOCK, prot);
	return b;
}

static unsigned char *flip_block, *rwx_block, *alias_code, *mem_code;
static struct hp_arena *mem_arena;

static void op_flip(int i)
{
	unsigned char *page = flip_block + (size_t)(i % PAGES) * 4096;
	mprotect(page, 4096, PROT_READ | PROT_WRITE);
	memcpy(page + 128, patch, 64);
	mprotect(page, 4096, PROT_READ | PROT_EXEC);
}

static void op_rwx(int i)
{
	memcpy(rwx_block + (size_t)(i % PAGES) * 4096 + 128, patch, 64);
}

static void op_hp_write(int i)
{
	hp_write(alias_code + (size_t)(i % PAGES) * 4096 + 128, patch, 64);
}

static void op_hp_mem(int i)
{
	hp_arena_write(mem_arena, mem_code + (size_t)(i % PAGES) * 4096 + 128, patch, 64);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	struct {
		const char *name;
		void (*op)(int);
		double ns[ROUNDS];
	} c[] = {
		{"flip pair (mprotect x2)", op_flip, {0}},
		{"rwx memcpy", op_rwx, {0}},
		{"hp_write (alias)", op_hp_write, {0}},
		{"hp_write (/proc/self/mem)", op_hp_mem, {0}},
	};
	const int n = sizeof(c) / sizeof(c[0]);

	flip_block = thp_block(PROT_READ | PROT_EXEC);
	rwx_block = thp_block(PROT_READ | PROT_WRITE | PROT_EXEC);
	alias_code = hp_alloc(BLOCK - 4096, PROT_READ | PROT_EXEC);
	struct hp_config cfg = {.size = sizeof(cfg), .flags = HP_ARENA_NO_ALIAS};
	mem_arena = hp_arena_create(&cfg);
	mem_code =
		mem_arena ? hp_arena_alloc(mem_arena, BLOCK - 4096, PROT_READ | PROT_EXEC) : NULL;
	if (!flip_block || !rwx_block || !alias_code || !mem_code) {
		perror("write_cost: setup");
		return 1;
	}
	memset(patch, 0x90, sizeof(patch));

	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < n; k++) {
			double t = now_ns();
			for (int i = 0; i < OPS; i++)
				c[k].op(i);
			c[k].ns[r] = (now_ns() - t) / OPS;
		}
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_get(&st);

	printf("patching 64 bytes of live code, median of %d rounds x %d patches\n\n", ROUNDS, OPS);
	printf("| method | ns per patch | flip pair / method |\n|---|---:|---:|\n");
	qsort(c[0].ns, ROUNDS, sizeof(double), cmp);
	double flip = c[0].ns[ROUNDS / 2];
	for (int k = 0; k < n; k++) {
		if (k)
			qsort(c[k].ns, ROUNDS, sizeof(double), cmp);
		double med = c[k].ns[ROUNDS / 2];
		printf("| %s | %.1f | %.1fx |\n", c[k].name, med, flip / med);
	}
	double ratio = flip / c[2].ns[ROUNDS / 2];
	printf("\ntarget: hp_write >= 20x cheaper than the flip pair on THP: %.0fx, %s\n", ratio,
	       ratio >= 20 ? "met" : "MISSED");
	printf("(hugeperm counted %lu alias writes, %lu flips)\n", (unsigned long)st.writes_alias,
	       (unsigned long)st.writes_flip);
	return 0;
}
