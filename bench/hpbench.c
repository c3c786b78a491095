/* SPDX-License-Identifier: MIT */
/*
 * hpbench.c - hugeperm against the alternatives a user would pick, in one
 * run on one machine.  Every case registers each peer; bench/report.py
 * turns the JSON into ratios, targets and plots.
 *
 *   pages/PEER/N     1. alloc+free of N pages, one class, first byte touched
 *   jit/PEER         2. alloc + make executable (64 bytes of code) + free
 *   patch/PEER       3. 64 bytes patched into live code
 *   walk/PEER/MIB    4. random calls into one-function-per-page code
 *   churn/PEER       5. a JIT's life: compile, patch, free, with lifetimes
 *   collapse/PEER    6. MADV_COLLAPSE as hugeperm issues it
 *   threads/PEER     7. alloc+free throughput at 1, 2, 8 threads
 *   code/PEER        8. packed code: alloc+free of 64-256 bytes (hp_code_alloc
 *                       against mi_malloc), at 1 and 2 threads; the trap fill
 *                       alone; patch/hp_write_code: 64 bytes into live code
 *   fresh/PEER/N     9. memory that reads zero, as mmap gives it: map N
 *                       pages, write each, unmap; fresh-block/PEER: the
 *                       first use of a new 2 MiB block
 *
 * Peers get their best configuration: mimalloc runs with
 * MIMALLOC_LARGE_OS_PAGES=1 (set by make bench), the ideal THP case is one
 * aligned MADV_HUGEPAGE region.  HPBENCH_QUICK=1 keeps the run short.
 */
#include <hugeperm.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../lib/code_store.h" /* fill_traps_as: the trap fill row measures the library's own */
#include "../lib/cpu_avx2.h"
#include "gbench.h"
#include "kview.h"

#define PAGE  4096UL
#define BLOCK (2UL << 20)
#define RW    (PROT_READ | PROT_WRITE)
#define RX    (PROT_READ | PROT_EXEC)

static bool quick;
static unsigned char code64[64];

/* ---------------------------------------------------------------------
 * 1. Pages: alloc + touch + free.
 * ------------------------------------------------------------------- */
struct page_peer {
	const char *name;
	void *(*alloc)(size_t size);
	void (*free)(void *p, size_t size);
};

static void *hp_a(size_t size)
{
	return hp_alloc(size, RW);
}
static void hp_f(void *p, size_t size)
{
	hp_free(p);
}
static void *mi_a(size_t size)
{
	return mi_malloc_aligned(size, PAGE);
}
static void mi_f(void *p, size_t size)
{
	mi_free(p);
}
static void *glibc_a(size_t size)
{
	return aligned_alloc(PAGE, size);
}
static void glibc_f(void *p, size_t size)
{
	free(p);
}
static void *mmap_a(size_t size)
{
	void *p = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
static void mmap_f(void *p, size_t size)
{
	munmap(p, size);
}

static const struct page_peer page_peers[] = {
	{"hugeperm", hp_a, hp_f},
	{"mimalloc", mi_a, mi_f},
	{"glibc", glibc_a, glibc_f},
	{"mmap", mmap_a, mmap_f},
};

static void bm_pages(gb_state *st, void *arg)
{
	const struct page_peer *p = arg;
	size_t size = (size_t)gb_arg_of(st, 0) * PAGE;
	while (gb_keep_running(st)) {
		char *m = p->alloc(size);
		if (!m) {
			gb_skip(st, "allocation failed");
			break;
		}
		*(volatile char *)m = 1;
		p->free(m, size);
	}
	gb_items(st, gb_iterations_done(st));
}

/* ---------------------------------------------------------------------
 * 2. The JIT pattern: allocate, put 64 bytes of code in, make it
 *    executable, free.
 * ------------------------------------------------------------------- */
static void bm_jit_hugeperm(gb_state *st, void *arg)
{
	while (gb_keep_running(st)) {
		unsigned char *p = hp_alloc(PAGE, RX);
		hp_write(p, code64, sizeof(code64));
		hp_free(p);
	}
	gb_items(st, gb_iterations_done(st));
}

static void bm_jit_mmap(gb_state *st, void *arg)
{
	while (gb_keep_running(st)) {
		unsigned char *p = mmap(NULL, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memcpy(p, code64, sizeof(code64));
		mprotect(p, PAGE, RX);
		munmap(p, PAGE);
	}
	gb_items(st, gb_iterations_done(st));
}

static void bm_jit_mimalloc(gb_state *st, void *arg)
{
	while (gb_keep_running(st)) {
		unsigned char *p = mi_malloc_aligned(PAGE, PAGE);
		memcpy(p, code64, sizeof(code64));
		mprotect(p, PAGE, RX);
		mprotect(p, PAGE, RW); /* the heap wants it back writable */
		mi_free(p);
	}
	gb_items(st, gb_iterations_done(st));
}

/* ---------------------------------------------------------------------
 * 3. Patching 64 bytes of live code.
 * ------------------------------------------------------------------- */
static unsigned char *thp_region(size_t size, int prot)
{
	unsigned char *r = mmap(NULL, size + BLOCK, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	unsigned char *b = (unsigned char *)(((uintptr_t)r + BLOCK - 1) & ~(BLOCK - 1));
	madvise(b, size, MADV_HUGEPAGE);
	memset(b, 0xc3, size);
	mprotect(b, size, prot);
	return b;
}

enum patch_way { PATCH_FLIP, PATCH_RWX, PATCH_HP_ALIAS, PATCH_HP_MEM };

static void bm_patch(gb_state *st, void *arg)
{
	enum patch_way way = (enum patch_way)(uintptr_t)arg;
	static unsigned char *flip, *rwx, *alias, *mem;
	static struct hp_arena *mem_arena;
	if (!flip) {
		struct hp_config cfg = {.size = sizeof(cfg), .flags = HP_ARENA_NO_ALIAS};
		flip = thp_region(BLOCK, RX);
		rwx = thp_region(BLOCK, RW | PROT_EXEC);
		alias = hp_alloc(BLOCK - PAGE, RX);
		mem_arena = hp_arena_create(&cfg);
		mem = hp_arena_alloc(mem_arena, BLOCK - PAGE, RX);
	}
	size_t i = 0;
	while (gb_keep_running(st)) {
		size_t off = (i++ % 511) * PAGE + 128;
		switch (way) {
		case PATCH_FLIP:
			mprotect(flip + off - 128, PAGE, RW);
			memcpy(flip + off, code64, 64);
			mprotect(flip + off - 128, PAGE, RX);
			break;
		case PATCH_RWX:
			memcpy(rwx + off, code64, 64);
			break;
		case PATCH_HP_ALIAS:
			hp_write(alias + off, code64, 64);
			break;
		case PATCH_HP_MEM:
			hp_arena_write(mem_arena, mem + off, code64, 64);
			break;
		}
	}
	gb_items(st, gb_iterations_done(st));
}

/* ---------------------------------------------------------------------
 * 4. The iTLB code walk: one small function per 4 KiB page, called in an
 *    order the branch predictor cannot guess (an xorshift in registers picks
 *    each target), so every call's fetch and iTLB lookup are on the
 *    critical path.
 * ------------------------------------------------------------------- */
typedef long (*fn_t)(long);

enum placement { PL_HUGEPERM, PL_MMAP4K, PL_THP, PL_N };
static const char *const pl_names[PL_N] = {"hugeperm", "mmap-4k", "thp-ideal"};

struct code {
	fn_t *fns;
	size_t n;
	double huge_pct; /* of the code, from smaps */
};

static size_t offset_of(size_t i)
{
	return (i * 11 % 63) * 64;
}

/* lea rax, [rdi + k] ; ret */
static void emit(unsigned char *out, unsigned k)
{
	const unsigned char f[] = {0x48, 0x8d, 0x47, (unsigned char)k, 0xc3};
	memcpy(out, f, sizeof(f));
}

static int build(struct code *c, enum placement pl, size_t mib)
{
	size_t n = mib * 256;
	unsigned char f[5];
	unsigned char *region = NULL;

	c->fns = calloc(n, sizeof(*c->fns));
	c->n = n;
	if (pl == PL_THP) {
		region = thp_region(n * PAGE, RW);
		if (!region)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char *page;
		emit(f, (unsigned)(i % 3 + 1));
		if (pl == PL_HUGEPERM) {
			page = hp_alloc(PAGE, RX);
			if (!page || hp_write(page + offset_of(i), f, sizeof(f)))
				return -1;
		} else if (pl == PL_MMAP4K) {
			page = mmap(NULL, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (page == MAP_FAILED)
				return -1;
			memcpy(page + offset_of(i), f, sizeof(f));
			mprotect(page, PAGE, RX);
		} else {
			page = region + i * PAGE;
			memcpy(page + offset_of(i), f, sizeof(f));
		}
		c->fns[i] = (fn_t)(void *)(page + offset_of(i));
	}
	if (pl == PL_THP)
		mprotect(region, n * PAGE, RX); /* whole region: the PMDs stay */
	/* The kernel's word on the functions' own pages: PMD-mapped or not. */
	long huge = 0, seen = 0;
	for (size_t i = 0; i < n; i += n / 1024 ? n / 1024 : 1, seen++)
		huge += kernel_huge_pages((uintptr_t)c->fns[i] & ~(PAGE - 1), PAGE);
	c->huge_pct = seen ? 100.0 * (double)huge / (double)seen : 0;
	return 0;
}

static void bm_walk(gb_state *st, void *arg)
{
	static struct code cache[PL_N][4];
	enum placement pl = (enum placement)(uintptr_t)arg;
	size_t mib = (size_t)gb_arg_of(st, 0);
	int slot = mib == 16 ? 0 : mib == 64 ? 1 : 2;
	struct code *c = &cache[pl][slot];
	if (!c->fns && build(c, pl, mib)) {
		gb_skip(st, "could not build the code");
		return;
	}
	uint64_t x = 88172645463325252ULL;
	long acc = 0;
	while (gb_keep_running(st))
		for (int k = 0; k < 1000; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			acc = c->fns[x % c->n](acc);
		}
	if (acc == 42) /* keep acc alive */
		puts("");
	gb_items(st, gb_iterations_done(st) * 1000);
	gb_counter(st, "huge_pct", c->huge_pct);
}

/* ---------------------------------------------------------------------
 * 5. JIT churn: functions compiled (written and made executable), patched
 *    now and then, and freed when their lifetime, drawn from an exponential
 *    distribution, ends.  Coverage of live code is sampled with
 *    PAGEMAP_SCAN, splits come from /proc/vmstat.
 * ------------------------------------------------------------------- */
enum churn_peer { CH_HP_WRITE, CH_HP_FLIP, CH_MMAP };

struct fnrec {
	unsigned char *p;
	size_t pages;
	long dies; /* step */
};

static double expo(double mean)
{
	return -mean * __builtin_log(1.0 - (double)(random() % 1000000) / 1000001.0);
}

static void bm_churn(gb_state *st, void *arg)
{
	enum churn_peer peer = (enum churn_peer)(uintptr_t)arg;
	const long steps = quick ? 6000 : 30000;
	const int cap = 8192;
	struct fnrec *live = calloc((size_t)cap, sizeof(*live));
	struct hp_config cfg = {.size = sizeof(cfg),
				.flags = peer == CH_HP_FLIP ? HP_ARENA_NO_ALIAS : 0};

	while (gb_keep_running(st)) {
		struct hp_arena *a = peer == CH_MMAP ? NULL : hp_arena_create(&cfg);
		int nlive = 0;
		long changes = 0, samples = 0, huge = 0, sampled = 0;
		double mem_ratio = 0;
		long split0 = kernel_vmstat("thp_split_pmd");
		srandom(7);
		for (long s = 0; s < steps; s++) {
			/* compile one function */
			size_t pages = random() % 10 ? 1 : 2 + random() % 3;
			size_t size = pages * PAGE;
			unsigned char *p;
			if (peer == CH_HP_WRITE) {
				p = hp_arena_alloc(a, size, RX);
				hp_arena_write(a, p, code64, 64);
			} else if (peer == CH_HP_FLIP) {
				p = hp_arena_alloc(a, size, RW | HP_HOME(RX));
				memcpy(p, code64, 64);
				hp_arena_protect(a, p, size, RX);
			} else {
				p = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				memcpy(p, code64, 64);
				mprotect(p, size, RX);
			}
			changes++;
			if (nlive < cap)
				live[nlive++] = (struct fnrec){p, pages, s + (long)expo(2000)};
			/* patch one now and then: a W^X JIT flips twice */
			if (nlive && random() % 5 == 0) {
				struct fnrec *f = &live[random() % nlive];
				if (peer == CH_HP_WRITE) {
					hp_arena_write(a, f->p + 16, code64, 16);
				} else if (peer == CH_HP_FLIP) {
					hp_arena_protect(a, f->p, PAGE, RW);
					memcpy(f->p + 16, code64, 16);
					hp_arena_protect(a, f->p, PAGE, RX);
				} else {
					mprotect(f->p, PAGE, RW);
					memcpy(f->p + 16, code64, 16);
					mprotect(f->p, PAGE, RX);
				}
				changes += 2;
			}
			/* free what died */
			for (int i = 0; i < nlive;) {
				if (live[i].dies > s) {
					i++;
					continue;
				}
				if (a)
					hp_arena_free(a, live[i].p);
				else
					munmap(live[i].p, live[i].pages * PAGE);
				live[i] = live[--nlive];
			}
			if (peer == CH_HP_FLIP && s % 1000 == 999)
				hp_arena_collapse_pending(
					a); /* what the collapse thread would do */
			/* sample coverage of live code, and memory per live byte */
			if (s % 2000 == 1999 && nlive) {
				for (int k = 0; k < 64; k++) {
					struct fnrec *f = &live[random() % nlive];
					huge += kernel_huge_pages((uintptr_t)f->p, f->pages * PAGE);
					sampled += (long)f->pages;
				}
				long live_pages = 0;
				for (int i = 0; i < nlive; i++)
					live_pages += (long)live[i].pages;
				struct hp_stats hs = {.size = sizeof(hs)};
				if (a)
					hp_arena_stats_get(a, &hs);
				mem_ratio +=
					a ? (double)hs.committed_bytes / (double)(live_pages * PAGE)
					  : 1.0;
				samples++;
			}
		}
		long splits = kernel_vmstat("thp_split_pmd") - split0;
		gb_counter(st, "coverage_pct",
			   sampled ? 100.0 * (double)huge / (double)sampled : 0);
		gb_counter(st, "splits_per_1000", 1000.0 * (double)splits / (double)changes);
		gb_counter(st, "mem_per_live", samples ? mem_ratio / (double)samples : 0);
		gb_counter(st, "changes", (double)changes);
		for (int i = 0; i < nlive; i++)
			if (!a)
				munmap(live[i].p, live[i].pages * PAGE);
		if (a)
			hp_arena_destroy(a);
	}
	gb_items(st, gb_iterations_done(st) * steps);
	free(live);
}

/* ---------------------------------------------------------------------
 * 6. Collapse: one page of a huge RX block flipped and put back (a split),
 *    then hp_collapse_pending times the MADV_COLLAPSE that restores it.
 * ------------------------------------------------------------------- */
static void bm_collapse(gb_state *st, void *arg)
{
	bool alias = (uintptr_t)arg;
	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.flags = alias ? 0 : HP_ARENA_NO_ALIAS};
	struct hp_arena *a = hp_arena_create(&cfg);
	unsigned char *blk = a ? hp_arena_alloc(a, BLOCK, RX) : NULL;
	long done = 0;
	if (!blk) {
		gb_skip(st, "no THP arena");
		return;
	}
	while (gb_keep_running(st)) {
		gb_pause(st);
		hp_arena_protect(a, blk + PAGE, PAGE, RW);
		hp_arena_protect(a, blk + PAGE, PAGE, RX);
		gb_resume(st);
		done += hp_arena_collapse_pending(a);
	}
	gb_counter(st, "collapsed", (double)done / (double)gb_iterations_done(st));
	hp_arena_destroy(a);
}

/* ---------------------------------------------------------------------
 * 7. Threads: alloc + free of one page, each thread on its own.
 * ------------------------------------------------------------------- */
static void bm_threads(gb_state *st, void *arg)
{
	const struct page_peer *p = arg;
	while (gb_keep_running(st)) {
		char *m = p->alloc(PAGE);
		*(volatile char *)m = 1;
		p->free(m, PAGE);
	}
	gb_items(st, gb_iterations_done(st));
}

/* ---------------------------------------------------------------------
 * 8. Packed code: hp_code_alloc + hp_code_free (the trap fill included)
 *    against mimalloc's mi_malloc + mi_free of the same sizes, 64 to 256
 *    bytes; a few live allocations around, as a JIT has.
 * ------------------------------------------------------------------- */
enum code_way { CODE_HP, CODE_MI, CODE_FILL };
#define CODE_LIVE 64 /* allocations each thread keeps, replaced in turn */

static size_t code_size(size_t i)
{
	return 64 + (i * 40503 % 7) * 32; /* 64, 96, ... 256 */
}

/* The trap fill on its own, as hp_code_free fills on this CPU: 32-byte
 * stores with AVX2 (its form built for AVX2, chosen by its ifunc), else
 * 16-byte ones. */
static __attribute__((target("avx2"))) void fill_loop_wide(gb_state *st, unsigned char *fill)
{
	for (size_t i = 0; gb_keep_running(st);) {
		fill_traps_as((uintptr_t)fill, (code_size(i++) + 63) & ~(size_t)63, true);
		__asm__ volatile("" ::"r"(fill) : "memory");
	}
}

static void fill_loop(gb_state *st, unsigned char *fill)
{
	for (size_t i = 0; gb_keep_running(st);) {
		fill_traps_as((uintptr_t)fill, (code_size(i++) + 63) & ~(size_t)63, false);
		__asm__ volatile("" ::"r"(fill) : "memory");
	}
}

static void bm_code(gb_state *st, void *arg)
{
	enum code_way way = (enum code_way)(uintptr_t)arg;
	void *live[CODE_LIVE] = {0};
	size_t i = 0;
	unsigned char *fill = NULL;
	if (way == CODE_FILL) { /* what hp_code_free's trap fill costs on its own */
		void *c = hp_code_alloc(256);
		fill = c ? hp_writable(c) : NULL;
		if (!fill) {
			gb_skip(st, "no alias");
			return;
		}
		/* The library's own in-line fill (code_store.h), as hp_code_free
		 * runs it here, over the chunk sizes the rows above allocate. */
		if (hp_cpu_avx2()) /* code_calls.c's resolvers' answer */
			fill_loop_wide(st, fill);
		else
			fill_loop(st, fill);
		hp_code_free(c);
		gb_items(st, gb_iterations_done(st));
		return;
	}
	while (gb_keep_running(st)) {
		size_t k = i % CODE_LIVE, size = code_size(i++);
		if (way == CODE_HP) {
			hp_code_free(live[k]);
			live[k] = hp_code_alloc(size);
		} else {
			mi_free(live[k]);
			live[k] = mi_malloc(size);
		}
	}
	for (size_t k = 0; k < CODE_LIVE; k++)
		way == CODE_HP ? (void)hp_code_free(live[k]) : mi_free(live[k]);
	gb_items(st, gb_iterations_done(st));
}

/* 64 bytes into live packed code (the lookup, then the copy through the
 * alias): compare patch/rwx, a plain memcpy into an RWX page. */
/* Repetitions of @b for a median: 9 (quick: 3) of 0.2 s each. */
static gb_bench *repeated(gb_bench *b)
{
	return gb_min_time(gb_repetitions(b, quick ? 3 : 9), 0.2);
}

static void bm_patch_code(gb_state *st, void *arg)
{
	enum { NCODE = 512 };
	static unsigned char *code[NCODE];
	if (!code[0])
		for (int k = 0; k < NCODE; k++)
			code[k] = hp_code_alloc(64 + (k % 4) * 64);
	size_t i = 0;
	while (gb_keep_running(st))
		hp_write(code[i++ % NCODE], code64, 64);
	gb_items(st, gb_iterations_done(st));
}

/* ---------------------------------------------------------------------
 * 9. Fresh memory: N pages that read as zero (what the preload serves for
 *    an mmap), each page written, given back.  hugeperm zeroes only pages
 *    handed out before (HP_ZERO); hugeperm-memset is the way without it
 *    (the preload before HP_ZERO); mmap pays a fault per page and a munmap.
 * ------------------------------------------------------------------- */
enum fresh_peer { FR_HP_ZERO, FR_HP_MEMSET, FR_MMAP };

static void bm_fresh(gb_state *st, void *arg)
{
	enum fresh_peer peer = (enum fresh_peer)(uintptr_t)arg;
	size_t size = (size_t)gb_arg_of(st, 0) * PAGE;
	while (gb_keep_running(st)) {
		char *m;
		if (peer == FR_MMAP) {
			m = mmap(NULL, size, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			m = m == MAP_FAILED ? NULL : m;
		} else {
			m = hp_alloc(size, RW | (peer == FR_HP_ZERO ? HP_ZERO : 0));
			if (m && peer == FR_HP_MEMSET)
				memset(m, 0, size);
		}
		if (!m) {
			gb_skip(st, "allocation failed");
			break;
		}
		for (size_t off = 0; off < size; off += PAGE)
			((volatile char *)m)[off] = 1;
		if (peer == FR_MMAP)
			munmap(m, size);
		else
			hp_free(m);
	}
	gb_items(st, gb_iterations_done(st));
}

/* New blocks (commit + populate: the kernel clears them) read as zero:
 * with HP_ZERO nothing more is written; without, a memset clears them
 * again.  16 a round, per block in items/s; the arena's creation and
 * destruction are not timed. */
static void bm_fresh_block(gb_state *st, void *arg)
{
	enum fresh_peer peer = (enum fresh_peer)(uintptr_t)arg;
	struct hp_config cfg = {
		.size = sizeof(cfg), .backend = HP_BACKEND_THP, .flags = HP_ARENA_NO_ALIAS};
	while (gb_keep_running(st)) {
		gb_pause(st);
		struct hp_arena *a = hp_arena_create(&cfg);
		gb_resume(st);
		for (int i = 0; i < 16; i++) {
			char *m = a ? hp_arena_alloc(a, BLOCK,
						     RW | (peer == FR_HP_ZERO ? HP_ZERO : 0))
				    : NULL;
			if (!m) {
				gb_skip(st, "no THP arena");
				return;
			}
			if (peer == FR_HP_MEMSET)
				memset(m, 0, BLOCK);
			*(volatile char *)m = 1;
		}
		gb_pause(st);
		hp_arena_destroy(a);
		gb_resume(st);
	}
	gb_items(st, gb_iterations_done(st) * 16);
}

int main(int argc, char **argv)
{
	char name[96];
	quick = getenv("HPBENCH_QUICK") != NULL;
	memset(code64, 0x90, sizeof(code64));
	code64[63] = 0xc3;

	static const int page_counts[] = {1, 16, 512};
	for (size_t i = 0; i < sizeof(page_peers) / sizeof(page_peers[0]); i++)
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "pages/%s", page_peers[i].name);
			gb_arg(gb_register(name, bm_pages, (void *)&page_peers[i]), page_counts[k]);
		}

	gb_register("jit/hugeperm", bm_jit_hugeperm, NULL);
	gb_register("jit/mmap", bm_jit_mmap, NULL);
	gb_register("jit/mimalloc", bm_jit_mimalloc, NULL);

	gb_register("patch/flip", bm_patch, (void *)(uintptr_t)PATCH_FLIP);
	/* The rows whose ratio is a target (section 8: the packed code's
	 * write against rwx, alloc+free against mimalloc) run as repetitions
	 * in random interleaving (make bench), medians reported: single runs
	 * of these nanosecond rows move by 2x on a shared machine. */
	repeated(gb_register("patch/rwx", bm_patch, (void *)(uintptr_t)PATCH_RWX));
	gb_register("patch/hp_write", bm_patch, (void *)(uintptr_t)PATCH_HP_ALIAS);
	gb_register("patch/hp_write_procmem", bm_patch, (void *)(uintptr_t)PATCH_HP_MEM);
	repeated(gb_register("patch/hp_write_code", bm_patch_code, NULL));

	static const int sizes[] = {16, 64, 256};
	for (int pl = 0; pl < PL_N; pl++)
		for (int k = quick ? 1 : 0; k < (quick ? 2 : 3); k++) {
			snprintf(name, sizeof(name), "walk/%s", pl_names[pl]);
			gb_bench *b =
				gb_arg(gb_register(name, bm_walk, (void *)(uintptr_t)pl), sizes[k]);
			gb_min_time(gb_repetitions(b, quick ? 3 : 5), 0.5);
		}

	gb_iterations(gb_register("churn/hugeperm-write", bm_churn, (void *)(uintptr_t)CH_HP_WRITE),
		      1);
	gb_iterations(gb_register("churn/hugeperm-flip", bm_churn, (void *)(uintptr_t)CH_HP_FLIP),
		      1);
	gb_iterations(gb_register("churn/mmap", bm_churn, (void *)(uintptr_t)CH_MMAP), 1);

	gb_unit_us(gb_iterations(gb_register("collapse/anon-thp", bm_collapse, (void *)0), 100));
	gb_unit_us(gb_iterations(gb_register("collapse/shmem-alias", bm_collapse, (void *)1), 100));

	for (int t = 1; t <= 8; t *= 2) {
		if (t == 4)
			continue;
		gb_real_time(gb_threads(
			gb_register("threads/hugeperm", bm_threads, (void *)&page_peers[0]), t));
		gb_real_time(gb_threads(
			gb_register("threads/mimalloc", bm_threads, (void *)&page_peers[1]), t));
	}
	for (int t = 1; t <= 2; t++) {
		repeated(gb_real_time(
			gb_threads(gb_register("code/hugeperm", bm_code, (void *)CODE_HP), t)));
		repeated(gb_real_time(
			gb_threads(gb_register("code/mimalloc", bm_code, (void *)CODE_MI), t)));
	}
	repeated(gb_register("code/trap-fill", bm_code, (void *)CODE_FILL));
	static const char *const fresh_names[] = {"fresh/hugeperm", "fresh/hugeperm-memset",
						  "fresh/mmap"};
	static const int fresh_pages[] = {16, 64, 512};
	for (int peer = 0; peer < 3; peer++)
		for (int k = 0; k < 3; k++)
			gb_arg(gb_register(fresh_names[peer], bm_fresh, (void *)(uintptr_t)peer),
			       fresh_pages[k]);
	gb_unit_us(gb_register("fresh-block/hugeperm", bm_fresh_block, (void *)FR_HP_ZERO));
	gb_unit_us(
		gb_register("fresh-block/hugeperm-memset", bm_fresh_block, (void *)FR_HP_MEMSET));
	return gb_main(argc, argv);
}
