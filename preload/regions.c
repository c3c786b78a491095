/* SPDX-License-Identifier: MIT */
/*
 * regions.c - the region table: every range of served memory the program
 * has mapped now, sorted by address, in memory of its own (k_mmap: never
 * the program's malloc).
 *
 * A region lies inside one hugeperm allocation (its base and size), and
 * live allocations do not overlap, so the regions of one allocation are
 * neighbours in the table: every lookup by allocation is a binary search
 * on the allocation's base, then a walk over its own regions only.  The
 * rest of the preload reaches the table through these functions only.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "preload.h"

#define REGIONS_INIT 1024

static struct {
	struct region *r; /* sorted by start; regions do not overlap */
	size_t n, cap;
} table;

size_t region_count(void)
{
	return table.n;
}

struct region *region_at(size_t i)
{
	return i < table.n ? &table.r[i] : NULL;
}

size_t region_find(uintptr_t addr)
{
	size_t lo = 0, hi = table.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (table.r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool region_insert(const struct region *reg)
{
	if (table.n == table.cap) {
		size_t cap = table.cap ? table.cap * 2 : REGIONS_INIT;
		void *m = k_mmap(NULL, cap * sizeof(*table.r), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return false;
		if (table.r) {
			memcpy(m, table.r, table.n * sizeof(*table.r));
			k_munmap(table.r, table.cap * sizeof(*table.r));
		}
		table.r = m;
		table.cap = cap;
	}
	size_t i = region_find(reg->start);
	memmove(&table.r[i + 1], &table.r[i], (table.n - i) * sizeof(*table.r));
	table.r[i] = *reg;
	table.n++;
	return true;
}

void region_delete(size_t i)
{
	memmove(&table.r[i], &table.r[i + 1], (table.n - i - 1) * sizeof(*table.r));
	table.n--;
}

bool region_split_at(uintptr_t addr)
{
	size_t i = region_find(addr);
	if (i == table.n || table.r[i].start >= addr)
		return true;
	struct region hi = table.r[i];
	hi.start = addr;
	table.r[i].end = addr;
	return region_insert(&hi);
}

bool regions_cover(uintptr_t start, uintptr_t end)
{
	uintptr_t at = start;
	for (size_t i = region_find(start); i < table.n && table.r[i].start < end; i++) {
		if (table.r[i].start > at && hp_owns((void *)at, table.r[i].start - at))
			return false;
		at = table.r[i].end;
	}
	return at >= end || !hp_owns((void *)at, end - at);
}

/* ------------------------------------------------------------------ */
/* Allocations. */

size_t alloc_first(const struct region *reg)
{
	return region_find(reg->base);
}

/* Is region @i one of the allocation at @base, of @size bytes? */
static bool in_alloc(size_t i, uintptr_t base, size_t size)
{
	return i < table.n && table.r[i].start < base + size;
}

bool alloc_in_use(const struct region *reg)
{
	return in_alloc(alloc_first(reg), reg->base, reg->alloc_size);
}

const struct region *alloc_of(uintptr_t addr)
{
	/* The allocation's regions are neighbours: if it has any, one of them
	 * is the first ending above @addr, or the last one before it. */
	size_t i = region_find(addr);
	for (size_t k = i ? i - 1 : i; k <= i && k < table.n; k++) {
		const struct region *reg = &table.r[k];
		if (addr >= reg->base && addr < reg->base + reg->alloc_size)
			return reg;
	}
	return NULL;
}

bool alloc_within(const struct region *reg, uintptr_t start, uintptr_t end)
{
	uintptr_t base = reg->base;
	size_t size = reg->alloc_size;
	for (size_t i = alloc_first(reg); in_alloc(i, base, size); i++)
		if (table.r[i].start < start || table.r[i].end > end)
			return false;
	return true;
}

void alloc_set_prot(const struct region *reg, int prot)
{
	uintptr_t base = reg->base;
	size_t size = reg->alloc_size;
	for (size_t i = alloc_first(reg); in_alloc(i, base, size); i++)
		table.r[i].prot = (unsigned char)prot;
}

void alloc_set_keyed(const struct region *reg)
{
	uintptr_t base = reg->base;
	size_t size = reg->alloc_size;
	for (size_t i = alloc_first(reg); in_alloc(i, base, size); i++)
		table.r[i].keyed = 1;
}

void alloc_set_tainted(const struct region *reg)
{
	uintptr_t base = reg->base;
	size_t size = reg->alloc_size;
	for (size_t i = alloc_first(reg); in_alloc(i, base, size); i++)
		table.r[i].tainted = 1;
}
