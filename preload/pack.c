/* SPDX-License-Identifier: MIT */
/*
 * pack.c - packed areas: in block mode, one thread's code areas (LuaJIT's
 * 64 KiB mcode areas) share 2 MiB blocks, and a block takes one
 * protection, the one its areas' protections make together
 * (hp_place_pack_prot, placement.c): a flip of one area is a whole-PMD
 * mprotect of its block, or nothing, never a split.
 *
 * Each thread packs into an open block per arena: a new area goes into
 * the first gap of its size in that block, else into a new block, which
 * becomes the open one.  Pages of the open block never handed out are
 * zero (the block was allocated HP_ZERO); a gap left by an unmapped area
 * is zeroed when it is handed out again.  A block goes back to hugeperm
 * when its last area is unmapped (serve.c, release).
 *
 * Why a thread's: while one area is written (RW), the other areas of its
 * block are RW too, not executable.  A JIT that compiles on one thread
 * runs no code of its own meanwhile (LuaJIT: nothing runs between
 * lj_mcode_reserve and lj_mcode_commit); another thread's code must not
 * share the block.  HUGEPERM_PRELOAD_PACK=0: a block per area, as before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "preload.h"

#define OPEN_MAX   16	/* open blocks, one a (thread, arena) */
#define PACK_EXACT 0xff /* applied: the block is protected page by page */

static struct {
	pthread_t thread;
	int arena;
	uintptr_t base;	    /* the block's allocation; 0: a free entry */
	uintptr_t fresh;    /* its pages from here on were never handed out */
	unsigned long used; /* when last packed into, for replacement */
} open_blocks[OPEN_MAX];
static unsigned long pack_clock;

/* Is region @i one of the block at @base, of @size bytes? */
static bool in_block(size_t i, uintptr_t base, size_t size)
{
	const struct region *r = region_at(i);
	return r && r->start < base + size;
}

/* The protection @base's areas make, with @extra (not in the table; may
 * be NULL); -1: exact.  A piece of one area's protection unlike another
 * piece's (a partial flip) is exact: its areas' own code may run then. */
static int block_prot(uintptr_t base, size_t size, const struct region *extra)
{
	unsigned present = extra ? 1u << extra->prot : 0;
	const struct region *last = NULL;
	for (size_t i = region_find(base); in_block(i, base, size); i++) {
		const struct region *r = region_at(i);
		if (last && last->area == r->area && last->prot != r->prot)
			return -1;
		present |= 1u << r->prot;
		last = r;
	}
	return hp_place_pack_prot(present);
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
			preload_counts.flips_block++;
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
	preload_counts.protects++;
	return 0;
}

int pack_fresh(struct region *reg, int prot)
{
	reg->prot = (unsigned char)prot;
	if (apply(reg, reg, reg))
		return -1;
	zero(reg, reg->start, reg->end - reg->start);
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

/* This thread's open block in arena @ai, or a free (or the least recently
 * used) entry for a new one. */
static int open_for(int ai, bool *found)
{
	pthread_t self = pthread_self();
	int pick = 0;
	for (int i = 0; i < OPEN_MAX; i++) {
		if (open_blocks[i].base && open_blocks[i].arena == ai &&
		    pthread_equal(open_blocks[i].thread, self)) {
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
	int e = open_for(ai, &found);
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
		open_blocks[e].thread = pthread_self();
		open_blocks[e].arena = ai;
		open_blocks[e].base = p;
		open_blocks[e].fresh = p;
	}
	reg.start = p;
	reg.end = p + len;
	reg.area = (unsigned short)((p - reg.base) / PAGE + 1);
	reg.own_block = 0;
	if (!region_insert(&reg)) {
		errno = ENOMEM;
		goto fail;
	}
	struct region *in = region_at(region_find(p));
	if (apply(in, NULL, in)) {
		region_delete(region_find(p));
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
