/* SPDX-License-Identifier: MIT */
/*
 * pack_areas.c - packed areas, as the preload's pack.c packs them, for
 * the hugeperm-block policy: a thread's code areas (LuaJIT's 64 KiB mcode
 * areas) share 2 MiB blocks, and a block takes one protection, the one
 * its areas' protections make together (hp_place_pack_prot, the rule the
 * preload calls too): a flip of one area is a whole-block protect of its
 * block, or nothing.
 *
 * As in the preload: each thread has an open block per area size (one
 * size a block); a new area goes into the first gap of its size in it,
 * else into a new block, which becomes the open one (16 open blocks, the
 * least recently used replaced).  When the areas do not agree (RWX beside
 * others, an area flipped in part, code asking to run beside an older
 * area that never ran and is writable: data), the block's pages are
 * protected exactly, area by area, until they agree again.  A block goes
 * back to the arena with its last area; an unmapped area's pages stay
 * until its gap is handed out again (zeroed then).  Not modelled: the preload's reach from a hint
 * (the simulator has no addresses to reach) and a kernel mapping over part of a block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hugeperm.h>

#include "placement.h"
#include "sim_internal.h"

#define OPEN_MAX  16
#define AREAS_MAX (SIM_BLOCK_PAGES / 16) /* areas are 64 KiB or more */
#define EXACT	  (-1)

struct pblock {
	uint64_t base;	 /* first page */
	uint64_t npages; /* the size of its areas */
	int applied;	 /* the block's protection now, or EXACT */
	int n;		 /* areas in it, by address */
	int newest;	 /* index into area[] of the one packed last, or -1 */
	uint64_t fresh;	 /* its pages from here on were never handed out */
	struct sim_alloc *area[AREAS_MAX];
	bool ran[AREAS_MAX]; /* made executable once: code, not data */
};

struct sim_pack {
	struct hp_arena *arena;
	struct pblock **b;
	size_t nb, cap;
	struct {
		unsigned tid;
		struct pblock *blk; /* NULL: a free entry */
		unsigned long used;
	} open[OPEN_MAX];
	unsigned long clock;
};

struct sim_pack *sim_pack_create(struct hp_arena *arena)
{
	struct sim_pack *p = calloc(1, sizeof(*p));
	if (p)
		p->arena = arena;
	return p;
}

void sim_pack_destroy(struct sim_pack *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nb; i++)
		free(p->b[i]);
	free(p->b);
	free(p);
}

static void *addr(uint64_t page)
{
	return (void *)(uintptr_t)(page << SIM_PAGE_SHIFT);
}

static struct pblock *block_of(const struct sim_pack *p, const struct sim_alloc *a)
{
	uint64_t base = a->at & ~(uint64_t)(SIM_BLOCK_PAGES - 1);
	for (size_t i = 0; i < p->nb; i++)
		if (p->b[i]->base == base)
			return p->b[i];
	return NULL;
}

/* The change being applied: pages [off, off+n) of @a take @prot. */
struct change {
	const struct sim_alloc *a;
	uint64_t off, n;
	int prot; /* or SIM_UNMAPPED */
};

static int page_prot(const struct sim_alloc *a, uint64_t i, const struct change *c)
{
	if (c && c->a == a && i >= c->off && i < c->off + c->n)
		return c->prot;
	return a->prot[i];
}

/* One protection for area @k's pages, or -2 when they differ (a partial
 * flip), or SIM_UNMAPPED when none is mapped. */
static int area_prot(const struct pblock *b, int k, const struct change *c)
{
	int prot = SIM_UNMAPPED;
	for (uint64_t i = 0; i < b->area[k]->npages; i++) {
		int pr = page_prot(b->area[k], i, c);
		if (pr == SIM_UNMAPPED)
			continue;
		if (prot != SIM_UNMAPPED && pr != prot)
			return -2;
		prot = pr;
	}
	return prot;
}

/* The protection @b's areas make with @c applied, or EXACT (pack.c's
 * block_prot). */
static int block_prot(const struct pblock *b, const struct change *c)
{
	unsigned present = 0;
	bool stale = false;
	for (int k = 0; k < b->n; k++) {
		int prot = area_prot(b, k, c);
		if (prot == -2)
			return EXACT;
		if (prot == SIM_UNMAPPED)
			continue;
		present |= 1u << prot;
		stale |= (prot & PROT_WRITE) && !b->ran[k] && k != b->newest;
	}
	if (!present)
		return b->applied;
	int prot = hp_place_pack_prot(present);
	bool x_asked = present & (1u << (PROT_READ | PROT_EXEC) | 1u << PROT_EXEC);
	if (prot >= 0 && x_asked && !(prot & PROT_EXEC) && stale)
		return EXACT;
	return prot >= 0 ? prot : EXACT;
}

/* Area @k's mapped pages, exactly, @c applied. */
static void protect_exact(struct sim_pack *p, const struct pblock *b, int k, const struct change *c)
{
	const struct sim_alloc *a = b->area[k];
	for (uint64_t j = 0; j < a->npages;) {
		int pr = page_prot(a, j, c);
		uint64_t m = j + 1;
		while (m < a->npages && page_prot(a, m, c) == pr)
			m++;
		if (pr != SIM_UNMAPPED)
			hp_arena_protect(p->arena, addr(a->at + j), (m - j) << SIM_PAGE_SHIFT, pr);
		j = m;
	}
}

/* Give @b the protection of its areas with @c applied (pack.c's apply). */
static void apply(struct sim_pack *p, struct pblock *b, const struct change *c)
{
	size_t size = (size_t)SIM_BLOCK_PAGES << SIM_PAGE_SHIFT;
	int want = block_prot(b, c);
	if (want != EXACT) {
		if (want != b->applied)
			hp_arena_protect(p->arena, addr(b->base), size, want);
		b->applied = want;
		return;
	}
	if (b->applied == EXACT) { /* the others are exact already */
		if (c && c->prot != SIM_UNMAPPED)
			hp_arena_protect(p->arena, addr(c->a->at + c->off), c->n << SIM_PAGE_SHIFT,
					 c->prot);
		return;
	}
	for (int k = 0; k < b->n; k++)
		protect_exact(p, b, k, c);
	b->applied = EXACT;
}

/* The first gap of @n pages in @b: its index among the areas (the new
 * area goes before area[*at]) and page; false if there is none. */
static bool gap(const struct pblock *b, uint64_t n, int *at, uint64_t *page)
{
	uint64_t from = b->base;
	for (int k = 0; k <= b->n; k++) {
		uint64_t to = k < b->n ? b->area[k]->at : b->base + SIM_BLOCK_PAGES;
		if (to - from >= n && b->n < AREAS_MAX) {
			*at = k;
			*page = from;
			return true;
		}
		if (k < b->n)
			from = b->area[k]->at + b->area[k]->npages;
	}
	return false;
}

static int open_for(struct sim_pack *p, unsigned tid, uint64_t n, bool *found)
{
	int pick = 0;
	for (int i = 0; i < OPEN_MAX; i++) {
		if (p->open[i].blk && p->open[i].tid == tid && p->open[i].blk->npages == n) {
			*found = true;
			return i;
		}
		if (p->open[pick].blk && (!p->open[i].blk || p->open[i].used < p->open[pick].used))
			pick = i;
	}
	*found = false;
	return pick;
}

static struct pblock *new_block(struct sim_pack *p, uint64_t n, int prot)
{
	if (p->nb == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct pblock **nb = realloc(p->b, cap * sizeof(*nb));
		if (!nb)
			return NULL;
		p->b = nb;
		p->cap = cap;
	}
	struct pblock *b = calloc(1, sizeof(*b));
	void *mem = b ? hp_arena_alloc(p->arena, (size_t)SIM_BLOCK_PAGES << SIM_PAGE_SHIFT, prot)
		      : NULL;
	if (!mem) {
		free(b);
		return NULL;
	}
	b->base = (uint64_t)(uintptr_t)mem >> SIM_PAGE_SHIFT;
	b->npages = n;
	b->applied = prot;
	b->newest = -1;
	b->fresh = b->base;
	p->b[p->nb++] = b;
	return b;
}

int sim_pack_map(struct sim_pack *p, struct sim *s, struct sim_alloc *a)
{
	bool found;
	int e = open_for(p, s->tid, a->npages, &found);
	struct pblock *b = found ? p->open[e].blk : NULL;
	int k = 0;
	uint64_t page = 0;

	if (!b || !gap(b, a->npages, &k, &page)) {
		b = new_block(p, a->npages, a->home);
		if (!b)
			return ENOMEM;
		k = 0;
		page = b->base;
		if (p->open[e].blk) /* no longer open: its newest area is not written now */
			p->open[e].blk->newest = -1;
		p->open[e].tid = s->tid;
		p->open[e].blk = b;
	}
	memmove(b->area + k + 1, b->area + k, (size_t)(b->n - k) * sizeof(b->area[0]));
	memmove(b->ran + k + 1, b->ran + k, (size_t)(b->n - k) * sizeof(b->ran[0]));
	b->area[k] = a;
	b->ran[k] = false;
	b->n++;
	b->newest = k;
	a->at = page;
	a->pv |= SIM_PV_PACKED;
	p->open[e].used = ++p->clock;
	struct change c = {a, 0, a->npages, a->home};
	apply(p, b, &c);
	/* A gap an unmapped area left is zeroed: a store when the area is
	 * writable (no call), else a discard (serve.c's zero). */
	uint64_t old = page < b->fresh ? b->fresh - page : 0;
	if (old && !(a->home & PROT_WRITE))
		hp_arena_discard(p->arena, addr(page),
				 (old < a->npages ? old : a->npages) << SIM_PAGE_SHIFT);
	if (page + a->npages > b->fresh)
		b->fresh = page + a->npages;
	return 0;
}

static int index_of(const struct pblock *b, const struct sim_alloc *a)
{
	for (int k = 0; k < b->n; k++)
		if (b->area[k] == a)
			return k;
	return -1;
}

void sim_pack_protect(struct sim_pack *p, struct sim_alloc *a, uint64_t off, uint64_t n, int prot)
{
	struct pblock *b = block_of(p, a);
	int k = b ? index_of(b, a) : -1;
	if (k < 0)
		return;
	struct change c = {a, off, n, prot};
	apply(p, b, &c);
	if (prot != SIM_UNMAPPED)
		b->ran[k] |= (prot & PROT_EXEC) != 0;
}

void sim_pack_free(struct sim_pack *p, struct sim_alloc *a)
{
	struct pblock *b = block_of(p, a);
	int k = b ? index_of(b, a) : -1;
	if (k < 0)
		return;
	memmove(b->area + k, b->area + k + 1, (size_t)(b->n - k - 1) * sizeof(b->area[0]));
	memmove(b->ran + k, b->ran + k + 1, (size_t)(b->n - k - 1) * sizeof(b->ran[0]));
	b->n--;
	b->newest = b->newest == k ? -1 : b->newest - (b->newest > k);
	if (b->n) { /* its pages stay, zeroed when handed out again */
		apply(p, b, NULL);
		return;
	}
	for (int i = 0; i < OPEN_MAX; i++)
		if (p->open[i].blk == b)
			p->open[i].blk = NULL;
	for (size_t i = 0; i < p->nb; i++)
		if (p->b[i] == b)
			p->b[i] = p->b[--p->nb];
	hp_arena_free(p->arena, addr(b->base));
	free(b);
}

bool sim_pack_ran(const struct sim_pack *p, const struct sim_alloc *a)
{
	struct pblock *b = p ? block_of(p, a) : NULL;
	int k = b ? index_of(b, a) : -1;
	return k >= 0 && b->ran[k];
}
