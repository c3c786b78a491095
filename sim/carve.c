/* SPDX-License-Identifier: MIT */
/*
 * carve.c - the page allocator of the kernel-style policies.
 *
 * The kernel RFCs place pages with the page allocator: 2 MiB blocks (the
 * direct map's large pages, or pageblocks) cut into 4 KiB pages.  Here a
 * block is taken whole from a bump range above the user address space
 * (policy addresses never meet a program's), tagged with the class its
 * free pages serve, and cut first-fit.  A request larger than a block
 * takes fresh contiguous blocks.  A block whose pages are all free again
 * is handed back to the caller to release or merge.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define CARVE_BASE (1ULL << 36) /* page of address 2^48: above user space */

void carve_init(struct carve *c)
{
	memset(c, 0, sizeof(*c));
	c->next = CARVE_BASE;
}

void carve_fini(struct carve *c)
{
	for (size_t i = 0; i < c->nb; i++)
		free(c->b[i]);
	free(c->b);
	memset(c, 0, sizeof(*c));
}

static bool is_free(const struct carve_block *b, unsigned i)
{
	return b->freemap[i / 64] >> (i % 64) & 1;
}

static void mark(struct carve_block *b, unsigned first, unsigned n, bool free)
{
	for (unsigned i = first; i < first + n; i++) {
		uint64_t bit = 1ULL << (i % 64);
		if (free && !(b->freemap[i / 64] & bit))
			b->nfree++;
		if (!free && (b->freemap[i / 64] & bit))
			b->nfree--;
		b->freemap[i / 64] = free ? b->freemap[i / 64] | bit : b->freemap[i / 64] & ~bit;
	}
}

/* First run of @n free pages in @b, or -1. */
static int first_fit(const struct carve_block *b, unsigned n)
{
	unsigned run = 0;
	if (b->nfree < n)
		return -1;
	for (unsigned i = 0; i < SIM_BLOCK_PAGES; i++) {
		run = is_free(b, i) ? run + 1 : 0;
		if (run == n)
			return (int)(i + 1 - n);
	}
	return -1;
}

static struct carve_block *add_block(struct carve *c, int cls)
{
	if (c->nb == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct carve_block **nb = realloc(c->b, cap * sizeof(*nb));
		if (!nb)
			return NULL;
		c->b = nb;
		c->cap = cap;
	}
	struct carve_block *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->base = c->next;
	b->cls = cls;
	c->next += SIM_BLOCK_PAGES;
	mark(b, 0, SIM_BLOCK_PAGES, true);
	c->b[c->nb++] = b;
	return b;
}

uint64_t carve_alloc(struct carve *c, uint64_t n, int cls, uint64_t *fresh, uint64_t *nfresh)
{
	*nfresh = 0;
	if (n <= SIM_BLOCK_PAGES) {
		for (size_t i = 0; i < c->nb; i++) {
			struct carve_block *b = c->b[i];
			int at = b->cls == cls ? first_fit(b, (unsigned)n) : -1;
			if (at >= 0) {
				mark(b, (unsigned)at, (unsigned)n, false);
				return b->base + (unsigned)at;
			}
		}
	}
	uint64_t nblocks = (n + SIM_BLOCK_PAGES - 1) / SIM_BLOCK_PAGES;
	uint64_t start = c->next;
	for (uint64_t k = 0; k < nblocks; k++) {
		struct carve_block *b = add_block(c, cls);
		if (!b)
			return 0;
		uint64_t take = n - k * SIM_BLOCK_PAGES;
		mark(b, 0, (unsigned)(take < SIM_BLOCK_PAGES ? take : SIM_BLOCK_PAGES), false);
	}
	*fresh = start;
	*nfresh = nblocks * SIM_BLOCK_PAGES;
	return start;
}

struct carve_block *carve_block_of(struct carve *c, uint64_t page)
{
	uint64_t base = page - page % SIM_BLOCK_PAGES;
	for (size_t i = 0; i < c->nb; i++)
		if (c->b[i]->base == base)
			return c->b[i];
	return NULL;
}

size_t carve_free(struct carve *c, uint64_t page, uint64_t n, uint64_t *empty, size_t max)
{
	size_t nempty = 0;
	for (uint64_t p = page, e = page + n, cnt; p < e; p += cnt) {
		uint64_t first = p % SIM_BLOCK_PAGES;
		cnt = SIM_BLOCK_PAGES - first < e - p ? SIM_BLOCK_PAGES - first : e - p;
		struct carve_block *b = carve_block_of(c, p);
		if (!b)
			continue;
		mark(b, (unsigned)first, (unsigned)cnt, true);
		if (b->nfree == SIM_BLOCK_PAGES && nempty < max) {
			empty[nempty++] = b->base;
			for (size_t i = 0; i < c->nb; i++)
				if (c->b[i] == b) {
					c->b[i] = c->b[--c->nb];
					break;
				}
			free(b);
		}
	}
	return nempty;
}
