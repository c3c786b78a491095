/* SPDX-License-Identifier: MIT */
/*
 * pack.c - packed areas: in block mode, one thread's code areas (LuaJIT's
 * 64 KiB mcode areas) share 2 MiB blocks, and a block takes one
 * protection, the one its areas' protections make together
 * (hp_place_pack_prot, placement.c): a flip of one area is a whole-PMD
 * mprotect of its block, or nothing, never a split.
 *
 * Each thread packs into an open block per arena and area size: a new
 * area goes into the first gap of its size in that block, else into a new
 * block, which becomes the open one.  Pages of the open block never handed out are
 * zero (the block was allocated HP_ZERO); a gap left by an unmapped area
 * is zeroed when it is handed out again.  A block goes back to hugeperm
 * when its last area is unmapped (serve.c, release).
 *
 * Why a thread's: while one area is written (RW), the other areas of its
 * block are RW too, not executable.  A JIT that compiles on one thread
 * runs no code of its own meanwhile (LuaJIT: nothing runs between
 * lj_mcode_reserve and lj_mcode_commit); another thread's code must not
 * share the block.  Nor must data: an area that is data (RW for good)
 * would keep its block-mates from running.  Areas are taken for code by
 * their shape (placement.c), so a block takes areas of one size only
 * (LuaJIT's mcode areas are 64 KiB, its heap's chunks, taken for areas
 * when their hints happen to be 64 KiB-aligned, 128 KiB or more); and the
 * writer wins only when each writable area that never ran is the block's
 * newest (LuaJIT's area being written): an older one is data, and an
 * area that asks to run beside it gets its pages exactly (a split, the
 * price of being right).  What is left to chance: data of an area's size,
 * mapped by the same thread next to code.  HUGEPERM_PRELOAD_PACK=0: a
 * block per area, as before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "preload.h"

#define OPEN_MAX   16	/* open blocks, one a (thread, arena) */
#define PACK_EXACT 0xff /* applied: the block is protected page by page */

static struct {
	unsigned long thread; /* the thread's serial (this_thread()) */
	int arena;
	size_t len;	    /* the size of its areas */
	uintptr_t base;	    /* the block's allocation; 0: a free entry */
	uintptr_t fresh;    /* its pages from here on were never handed out */
	unsigned newest;    /* the area served last (struct region's area) */
	unsigned long used; /* when last packed into, for replacement */
} open_blocks[OPEN_MAX];
static unsigned long pack_clock;

/* This thread's serial number, never reused (a pthread_t is: a new thread
 * gets a dead one's, and would take its open blocks for its own).  Taken
 * under the preload's lock, as every caller here is. */
static unsigned long this_thread(void)
{
	static unsigned long threads;
	static __thread unsigned long serial __attribute__((tls_model("initial-exec")));
	if (!serial)
		serial = ++threads;
	return serial;
}

/* The area served last into the block at @base, if it is open; else 0. */
static unsigned newest_area(uintptr_t base)
{
	for (int i = 0; i < OPEN_MAX; i++)
		if (open_blocks[i].base == base)
			return open_blocks[i].newest;
	return 0;
}

/* Is region @i one of the block at @base, of @size bytes? */
static bool in_block(size_t i, uintptr_t base, size_t size)
{
	const struct region *r = region_at(i);
	return r && r->start < base + size;
}

/* Is @r writable and never executable, and not the block's newest area:
 * data, most likely (LuaJIT writes its newest area only, and an older
 * one only after it ran)? */
static bool stale_writer(const struct region *r, unsigned newest)
{
	return (r->prot & PROT_WRITE) && !r->ran && r->area != newest;
}

/* The protection @base's areas make, with @extra (not in the table; may
 * be NULL); -1: exact.  A piece of one area's protection unlike another
 * piece's (a partial flip) is exact: its areas' own code may run then.
 * A block some of whose pages a kernel mapping took (tainted) is exact:
 * a whole-block call would change that mapping too.
 * So is a block where the writer would win over an area that asks to
 * run while an older area that never ran is writable: that one is data,
 * and would keep the code from running for good. */
static int block_prot(uintptr_t base, size_t size, const struct region *extra)
{
	unsigned present = extra ? 1u << extra->prot : 0, newest = newest_area(base);
	bool stale = extra && stale_writer(extra, newest);
	const struct region *last = NULL;
	if (extra && extra->tainted)
		return -1;
	for (size_t i = region_find(base); in_block(i, base, size); i++) {
		const struct region *r = region_at(i);
		if (r->tainted || (last && last->area == r->area && last->prot != r->prot))
			return -1;
		present |= 1u << r->prot;
		stale |= stale_writer(r, newest);
		last = r;
	}
	int prot = hp_place_pack_prot(present);
	bool x_asked = present & (1u << (PROT_READ | PROT_EXEC) | 1u << PROT_EXEC);
	if (prot >= 0 && x_asked && !(prot & PROT_EXEC) && stale)
		return -1;
	return prot;
}

static void set_applied(uintptr_t base, size_t size, struct region *extra, int applied)
{
	for (size_t i = region_find(base); in_block(i, base, size); i++)
		region_at(i)->applied = (unsigned char)applied;
	if (extra)
		extra->applied = (unsigned char)applied;
}

static int protect_exact(struct hp_arena *a, const struct region *r)
{
	return hp_arena_protect(a, (void *)r->start, r->end - r->start, r->prot);
}

/* Give the block of @any the protection of its areas (and @extra's);
 * @changed (or NULL) is the one region whose protection changed.  0, or
 * -1 with errno. */
static int apply(const struct region *any, struct region *extra, const struct region *changed)
{
	uintptr_t base = any->base;
	size_t size = any->alloc_size;
	struct hp_arena *a = arena_at(any->arena);
	const struct region *first = region_at(region_find(base));
	int now = in_block(region_find(base), base, size) ? first->applied : any->applied;
	int want = block_prot(base, size, extra);

	if (want >= 0) {
		if (want != now) {
			if (hp_arena_protect(a, (void *)base, size, want))
				return -1;
		}
		set_applied(base, size, extra, want);
		return 0;
	}
	if (now == PACK_EXACT) { /* the others are exact already */
		if (changed && protect_exact(a, changed))
			return -1;
		return 0;
	}
	for (size_t i = region_find(base); in_block(i, base, size); i++)
		if (protect_exact(a, region_at(i)))
			return -1;
	if (extra && protect_exact(a, extra))
		return -1;
	set_applied(base, size, extra, PACK_EXACT);
	return 0;
}

int pack_protect(struct region *reg, int prot)
{
	int old = reg->prot;
	reg->prot = (unsigned char)prot;
	if (apply(reg, NULL, reg)) {
		reg->prot = (unsigned char)old;
		return -1;
	}
	reg->ran |= (prot & PROT_EXEC) != 0;
	preload_counts.protects++;
	preload_counts.flips_block += reg->applied != PACK_EXACT; /* the block's, not a split */
	return 0;
}

int pack_fresh(struct region *reg, int prot)
{
	reg->prot = (unsigned char)prot;
	reg->ran = (prot & PROT_EXEC) != 0;
	reg->area = (unsigned short)((reg->start - reg->base) / PAGE + 1); /* an area of its own */
	if (apply(reg, reg, reg))
		return -1;
	zero(reg, reg->start, reg->end - reg->start);
	for (int i = 0; i < OPEN_MAX; i++) /* an area grown in place: its pages are handed out */
		if (open_blocks[i].base == reg->base && open_blocks[i].fresh < reg->end)
			open_blocks[i].fresh = reg->end;
	return 0;
}

void pack_settle(const struct region *gone)
{
	const struct region *any = alloc_of(gone->base);
	if (any && any->base == gone->base)
		apply(any, NULL, NULL); /* a failure leaves the block as it was: still safe */
}

void pack_forget(uintptr_t base)
{
	for (int i = 0; i < OPEN_MAX; i++)
		if (open_blocks[i].base == base)
			open_blocks[i].base = 0;
}

bool pack_executable(const struct region *reg)
{
	return reg->applied == PACK_EXACT ? (reg->prot & PROT_EXEC) : (reg->applied & PROT_EXEC);
}

/* Writing a gap while the block is RX: the block is the writer's for the
 * moment, as when one of its areas is written (a whole-block flip, no
 * split).  Only in the thread's own open block: the premise of packing is
 * that a thread's block runs none of the thread's code while the thread
 * writes, and a munmap from another thread would take X away from code
 * that runs.  (The library's write, through /proc/self/mem, changes no
 * protection; a munmap of a 64 KiB area that ran took 12.5-17.3 µs that
 * way here, 7.8-9.5 µs this way: bench/preload_calls munmap_code.) */
int pack_fill(const struct region *reg, uintptr_t from, uintptr_t to, int byte)
{
	struct hp_arena *a = arena_at(reg->arena);
	bool mine = false;
	for (int i = 0; i < OPEN_MAX; i++)
		mine |= open_blocks[i].base == reg->base && open_blocks[i].thread == this_thread();
	int was = reg->applied;
	if (!mine || was == PACK_EXACT || reg->tainted ||
	    hp_arena_protect(a, (void *)reg->base, reg->alloc_size, PROT_READ | PROT_WRITE))
		return -1;
	memset((void *)from, byte, to - from);
	if (hp_arena_protect(a, (void *)reg->base, reg->alloc_size, was)) {
		set_applied(reg->base, reg->alloc_size, NULL, PROT_READ | PROT_WRITE);
		return 1;
	}
	return 0;
}

/* The first gap of @len bytes in the block at @base, or 0. */
static uintptr_t gap(uintptr_t base, size_t size, size_t len)
{
	uintptr_t at = base;
	for (size_t i = region_find(base); in_block(i, base, size); i++) {
		const struct region *r = region_at(i);
		if (r->start - at >= len)
			return at;
		at = r->end;
	}
	return base + size - at >= len ? at : 0;
}

static uintptr_t distance(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

/* This thread's open block in arena @ai for areas of @len bytes, or a free
 * (or the least recently used) entry for a new one. */
static int open_for(int ai, size_t len, bool *found)
{
	unsigned long self = this_thread();
	int pick = 0;
	for (int i = 0; i < OPEN_MAX; i++) {
		if (open_blocks[i].base && open_blocks[i].arena == ai &&
		    open_blocks[i].len == len && open_blocks[i].thread == self) {
			*found = true;
			return i;
		}
		if (open_blocks[pick].base &&
		    (!open_blocks[i].base || open_blocks[i].used < open_blocks[pick].used))
			pick = i;
	}
	*found = false;
	return pick;
}

uintptr_t pack_serve(int ai, uintptr_t hint, size_t len, int prot, size_t reach)
{
	struct hp_arena *a = arena_at(ai);
	bool found;
	int e = open_for(ai, len, &found);
	uintptr_t p = 0;
	const struct region *blk = found ? alloc_of(open_blocks[e].base) : NULL;

	if (blk && blk->base == open_blocks[e].base && !blk->tainted && !blk->keyed) {
		p = gap(blk->base, blk->alloc_size, len);
		if (p && reach && hint && distance(p, hint) > reach)
			p = 0;
	}
	struct region reg = {
		.arena = (unsigned char)ai,
		.kind = KIND_AREA,
		.prot = (unsigned char)prot,
	};
	bool fresh_block = !p;
	if (p) {
		reg = *blk;
		reg.prot = (unsigned char)prot;
	} else {
		void *b = hp_arena_alloc(a, BLOCK, prot | HP_ZERO);
		if (!b)
			return 0;
		if (reach && hint && distance((uintptr_t)b, hint) > reach) {
			hp_arena_free(a, b); /* see serve(): the kernel's page lands on the hint */
			errno = ENOMEM;
			return 0;
		}
		p = (uintptr_t)b;
		reg.base = p;
		reg.alloc_size = hp_usable_size(b) ? hp_usable_size(b) : BLOCK;
		reg.applied = (unsigned char)prot;
		open_blocks[e].thread = this_thread();
		open_blocks[e].arena = ai;
		open_blocks[e].len = len;
		open_blocks[e].base = p;
		open_blocks[e].fresh = p;
	}
	reg.start = p;
	reg.end = p + len;
	reg.ran = (prot & PROT_EXEC) != 0; /* an area moved by mremap may be RX */
	reg.area = (unsigned short)((p - reg.base) / PAGE + 1);
	reg.own_block = 0;
	unsigned newest = open_blocks[e].newest;
	open_blocks[e].newest = reg.area;
	if (!region_insert(&reg)) {
		open_blocks[e].newest = newest;
		errno = ENOMEM;
		goto fail;
	}
	struct region *in = region_at(region_find(p));
	if (apply(in, NULL, in)) {
		region_delete(region_find(p));
		open_blocks[e].newest = newest;
		goto fail;
	}
	uintptr_t fresh = open_blocks[e].fresh;
	if (p < fresh) /* a gap an unmapped area left: its pages may hold bytes */
		zero(in, p, (p + len < fresh ? p + len : fresh) - p);
	if (p + len > fresh)
		open_blocks[e].fresh = p + len;
	open_blocks[e].used = ++pack_clock;
	return p;
fail:
	if (fresh_block) {
		hp_arena_free(a, (void *)reg.base);
		open_blocks[e].base = 0;
	}
	return 0;
}
