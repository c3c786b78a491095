/* SPDX-License-Identifier: MIT */
/*
 * pack.t - packed areas (preload/pack.c) on a fake arena: one thread's
 * areas share a 2 MiB block, and every protection change the library is
 * asked for while LuaJIT's pattern runs (a new RW area, its RW <-> RX
 * flips, a patch of an older area, unmaps) is of the whole block: no
 * split.  A partial flip or RWX beside other areas turns the block exact,
 * page by page, and it is whole again once its areas agree.  Another
 * thread packs into a block of its own; a full block, a hint out of reach,
 * a gap left by an unmapped area (zeroed when handed out again) and
 * failing library calls (nothing changed) are covered; and the merge rule
 * itself (hp_place_pack_prot), case by case.
 *
 * The library is wrapped (-Wl,--wrap): hp_arena_alloc hands out fake
 * 2 MiB-aligned addresses, hp_arena_protect logs its calls.  The region
 * table is the preload's own (preload/regions.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "preload.h"
#include "tap.h"

#define RW   (PROT_READ | PROT_WRITE)
#define RX   (PROT_READ | PROT_EXEC)
#define RWX  (PROT_READ | PROT_WRITE | PROT_EXEC)
#define AREA (64UL << 10)
#define FAKE (1UL << 40) /* the fake arena's blocks: never touched */

void *k_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int k_munmap(void *addr, size_t len)
{
	return munmap(addr, len);
}

static struct {
	uintptr_t next; /* the next block handed out */
	int allocs, frees, fail_protect;
	int n; /* protect calls logged */
	struct {
		uintptr_t p;
		size_t len;
		int prot;
	} log[4096];
	uintptr_t zeroed, zeroed_len;
} fake = {.next = FAKE};

struct hp_arena *arena_at(int i)
{
	return (struct hp_arena *)(uintptr_t)(0x1000 + i);
}

void zero(const struct region *reg, uintptr_t p, size_t len)
{
	(void)reg;
	fake.zeroed = p;
	fake.zeroed_len = len;
}

void *__wrap_hp_arena_alloc(struct hp_arena *a, size_t size, int flags);
void __wrap_hp_arena_free(struct hp_arena *a, void *p);
int __wrap_hp_arena_protect(struct hp_arena *a, void *p, size_t size, int prot);
size_t __wrap_hp_usable_size(const void *p);

void *__wrap_hp_arena_alloc(struct hp_arena *a, size_t size, int flags)
{
	(void)a;
	if (size != BLOCK || !(flags & HP_ZERO))
		return NULL; /* packed blocks are whole blocks, reading zero */
	fake.allocs++;
	uintptr_t p = fake.next;
	fake.next += BLOCK;
	return (void *)p;
}

void __wrap_hp_arena_free(struct hp_arena *a, void *p)
{
	(void)a;
	(void)p;
	fake.frees++;
}

int __wrap_hp_arena_protect(struct hp_arena *a, void *p, size_t size, int prot)
{
	(void)a;
	if (fake.fail_protect) {
		errno = ENOMEM;
		return -1;
	}
	if (fake.n < 4096) {
		fake.log[fake.n].p = (uintptr_t)p;
		fake.log[fake.n].len = size;
		fake.log[fake.n].prot = prot;
	}
	fake.n++;
	return 0;
}

size_t __wrap_hp_usable_size(const void *p)
{
	(void)p;
	return BLOCK;
}

static struct region *reg_of(uintptr_t p)
{
	return region_at(region_find(p));
}

/* Did the calls since @from all protect the whole block at @base, the last
 * one with @prot? */
static bool whole_since(int from, uintptr_t base, int prot)
{
	if (fake.n <= from)
		return false;
	for (int i = from; i < fake.n; i++)
		if (fake.log[i].p != base || fake.log[i].len != BLOCK)
			return false;
	return fake.log[fake.n - 1].prot == prot;
}

/* munmap of a whole area, as cut() and release() do it. */
static void unmap_area(uintptr_t p)
{
	struct region gone = *reg_of(p);
	region_delete(region_find(p));
	if (alloc_in_use(&gone))
		pack_settle(&gone);
	else
		pack_forget(gone.base);
}

static void *other_thread(void *arg)
{
	*(uintptr_t *)arg = pack_serve(0, 0, AREA, RW, 0);
	return NULL;
}

static void rule(void)
{
	static const struct {
		unsigned present;
		int want;
		const char *what;
	} cases[] = {
		{1u << RW, RW, "RW alone: RW"},
		{1u << RX, RX, "RX alone: RX"},
		{1u << RW | 1u << RX, RW, "RW beside RX: the writer wins, not RWX"},
		{1u << RX | 1u << PROT_READ, RX, "RX beside R: RX (the union was asked)"},
		{1u << RX | 1u << PROT_NONE, RX, "RX beside NONE: RX"},
		{1u << RW | 1u << PROT_NONE, RW, "RW beside NONE: RW"},
		{1u << RWX, RWX, "RWX alone: RWX, as asked"},
		{1u << RWX | 1u << RX, -1, "RWX beside RX: exact"},
		{1u << RWX | 1u << RW, -1, "RWX beside RW: exact"},
		{1u << PROT_READ | 1u << PROT_EXEC, -1, "R beside X-only: exact"},
		{0, -1, "nothing asked: exact"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is(hp_place_pack_prot(cases[i].present), cases[i].want, "rule: %s", cases[i].what);
}

int main(void)
{
	rule();

	/* LuaJIT's pattern: an area mapped RW, flipped RX per trace; the
	 * next one below it in the same block; a patch of the older one. */
	uintptr_t a1 = pack_serve(0, 0, AREA, RW, 0);
	ok(a1 == FAKE && fake.allocs == 1, "the first area opens a block (HP_ZERO, whole)");
	ok(reg_of(a1)->area && reg_of(a1)->end == a1 + AREA, "its region is packed, 64 KiB");
	int from = fake.n;
	ok(pack_protect(reg_of(a1), RX) == 0 && whole_since(from, FAKE, RX),
	   "its RX flip protects the whole block RX");
	from = fake.n;
	uintptr_t a2 = pack_serve(0, 0, AREA, RW, 0);
	ok(a2 == a1 + AREA && fake.allocs == 1, "the second area shares the block");
	ok(whole_since(from, FAKE, RW), "a new RW area: the whole block RW (the writer wins)");
	ok(fake.zeroed_len == 0, "fresh pages of the block are not zeroed again");
	from = fake.n;
	pack_protect(reg_of(a2), RX);
	pack_protect(reg_of(a2), RW);
	pack_protect(reg_of(a1), RW); /* a patch of the parent while a2 is written */
	pack_protect(reg_of(a1), RX);
	pack_protect(reg_of(a2), RX); /* the commit */
	ok(whole_since(from, FAKE, RX), "flips, a patch, the commit: whole-block calls only");
	is(fake.n - from, 3, "... and none when the block's protection does not change");
	uintptr_t a3 = pack_serve(0, 0, AREA, RW, 0);
	is(reg_of(a1)->applied, RW, "the regions know their block's protection");

	/* An unmap: the areas left make the protection (a1 and a2 need X). */
	from = fake.n;
	unmap_area(a3);
	ok(whole_since(from, FAKE, RX), "the RW area unmapped: the block is RX again");

	/* A partial flip: exact, page by page, then whole again. */
	ok(region_split_at(a2 + 4 * PAGE), "an area cut in two pieces");
	from = fake.n;
	ok(pack_protect(reg_of(a2), RW) == 0 && fake.n > from, "a piece flipped alone");
	bool exact = true;
	for (int i = from; i < fake.n; i++)
		exact &= fake.log[i].len != BLOCK;
	ok(exact && reg_of(a1)->applied == 0xff, "... the block is exact, no whole-block call");
	from = fake.n;
	pack_protect(reg_of(a1), RW);
	ok(fake.n == from + 1 && fake.log[from].p == a1 && fake.log[from].len == AREA &&
		   fake.log[from].prot == RW,
	   "an exact block: one call for the area that changed");
	pack_protect(reg_of(a1), RX);
	from = fake.n;
	pack_protect(reg_of(a2), RX);
	pack_protect(reg_of(a2 + 4 * PAGE), RX);
	ok(whole_since(fake.n - 1, FAKE, RX) && reg_of(a1)->applied == RX,
	   "the pieces agree again: the whole block, RX");

	/* RWX beside others: exact, never RWX given to pages that did not ask. */
	from = fake.n;
	pack_protect(reg_of(a1), RWX);
	bool none_rwx_whole = true;
	for (int i = from; i < fake.n; i++)
		none_rwx_whole &= !(fake.log[i].len == BLOCK && fake.log[i].prot == RWX);
	ok(none_rwx_whole && reg_of(a1)->applied == 0xff, "RWX beside RX: exact");
	pack_protect(reg_of(a1), RX);
	ok(reg_of(a1)->applied == RX, "RX again: whole");

	/* A kernel mapping took some of the block's pages (MAP_FIXED of a
	 * file): exact from then on, never a whole-block call over them. */
	alloc_set_tainted(reg_of(a1));
	from = fake.n;
	pack_protect(reg_of(a1), RW); /* untainted: the whole block RW */
	bool tainted_exact = fake.n > from;
	for (int i = from; i < fake.n; i++)
		tainted_exact &= fake.log[i].len != BLOCK;
	ok(tainted_exact, "a tainted block: its regions' pages only");
	pack_protect(reg_of(a1), RX);
	for (size_t i = region_find(FAKE); region_at(i) && region_at(i)->start < FAKE + BLOCK; i++)
		region_at(i)->tainted = 0; /* (not the preload's way: for the rest of this test) */

	/* A gap an unmapped area left is handed out again, zeroed. */
	unmap_area(a1);
	uintptr_t a4 = pack_serve(0, 0, AREA, RW, 0);
	ok(a4 == a1 && fake.zeroed == a1 && fake.zeroed_len == AREA,
	   "the gap is reused, and zeroed (it held code)");
	pack_protect(reg_of(a4), RX);

	/* Another thread: a block of its own. */
	pthread_t t;
	uintptr_t b1 = 0;
	pthread_create(&t, NULL, other_thread, &b1);
	pthread_join(t, NULL);
	ok(b1 && b1 >> 21 != a1 >> 21, "another thread's area: another block");

	/* The block full: a new one. */
	uintptr_t last = 0;
	int allocs = fake.allocs;
	for (int i = 0; i < 30; i++) {
		last = pack_serve(0, 0, AREA, RW, 0);
		pack_protect(reg_of(last), RX); /* a trace committed into it */
	}
	ok(last == FAKE + BLOCK - AREA && fake.allocs == allocs, "32 areas fill one block");
	uintptr_t c1 = pack_serve(0, 0, AREA, RW, 0);
	ok(c1 >> 21 != FAKE >> 21 && fake.allocs == allocs + 1, "the 33rd opens a new block");

	/* Data (an area never executable, written for good) beside code:
	 * the code gets its pages exactly, and the block is whole again once
	 * the data goes.  An area of another size packs elsewhere. */
	allocs = fake.allocs;
	uintptr_t c2 = pack_serve(0, 0, AREA, RW, 0); /* after c1: never ran */
	uintptr_t c3 = pack_serve(0, 0, AREA, RW, 0);
	ok(c2 == c1 + AREA && c3 == c2 + AREA && fake.allocs == allocs, "two more areas pack");
	from = fake.n;
	pack_protect(reg_of(c1), RX); /* c2 is older and never ran: data */
	bool c1_rx = false;
	for (int i = from; i < fake.n; i++)
		c1_rx |= fake.log[i].p == c1 && fake.log[i].len == AREA && fake.log[i].prot == RX;
	ok(reg_of(c1)->applied == 0xff && c1_rx,
	   "code beside an older area that never ran: exact, it gets RX");
	pack_protect(reg_of(c3), RX);
	ok(reg_of(c1)->applied == 0xff, "... and so does the newest");
	from = fake.n;
	unmap_area(c2);
	ok(whole_since(from, c1 & ~(BLOCK - 1), RX), "the data unmapped: the block whole, RX");
	uintptr_t big = pack_serve(0, 0, 2 * AREA, RW, 0);
	ok(big >> 21 != c1 >> 21 && fake.allocs == allocs + 1,
	   "an area of 128 KiB (LuaJIT's heap chunks) never shares a 64 KiB areas' block");

	/* A hint out of reach: a new block near it, or ENOMEM (the kernel's). */
	int frees = fake.frees;
	errno = 0;
	ok(pack_serve(0, 1UL << 20, AREA, RW, 1UL << 30) == 0 && errno == ENOMEM &&
		   fake.frees == frees + 1,
	   "no block within reach of the hint: ENOMEM, the block given back");

	/* Failing library calls change nothing. */
	size_t n = region_count();
	fake.fail_protect = 1;
	struct region *r = reg_of(c1);
	errno = 0;
	ok(pack_protect(r, RW) == -1 && errno == ENOMEM && r->prot == RX,
	   "a failed flip: -1, ENOMEM, the region's protection as it was");
	fake.fail_protect = 0;
	pack_protect(reg_of(c1), RX);
	fake.fail_protect = 1;
	ok(pack_serve(0, 0, AREA, RW, 0) == 0 && region_count() == n,
	   "a failed serve (the block cannot turn RW): 0, no region left behind");
	fake.fail_protect = 0;

	/* The last area of a block unmapped: forgotten, the next is new. */
	unmap_area(c1);
	unmap_area(c3);
	allocs = fake.allocs;
	uintptr_t d1 = pack_serve(0, 0, AREA, RW, 0);
	ok(d1 && fake.allocs == allocs + 1, "a block given back is not packed into again");
	return tap_done();
}
