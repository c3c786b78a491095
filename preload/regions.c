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
 *
 * Beside it, the given ranges: pages of hugeperm's chunks that a MAP_FIXED
 * of the program's gave to a kernel mapping (a file, shared memory).  They
 * are the kernel's until the program unmaps them; then they are reserved
 * again (PROT_NONE, no memory), so that the chunk stays whole and the
 * kernel puts nothing else there.  A short sorted array in the preload's
 * own data: programs make few such mappings (V8 remaps its builtins once).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "preload.h"

#define REGIONS_INIT 1024
#define GIVEN_MAX    256

static struct {
	struct region *r; /* sorted by start; regions do not overlap */
	size_t n, cap;
} table;

static struct {
	struct {
		uintptr_t start, end;
	} r[GIVEN_MAX]; /* sorted, disjoint, not adjacent; no region in them */
	size_t n;
} given;

static size_t given_find(uintptr_t addr);

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

void region_set_prot(struct region *reg, int prot)
{
	reg->prot = (unsigned char)prot;
	reg->bytes |= prot != PROT_NONE;
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
	size_t i = region_find(start), g = given_find(start + 1);
	for (uintptr_t at = start; at < end;) {
		while (i < table.n && table.r[i].end <= at)
			i++;
		while (g < given.n && given.r[g].end <= at)
			g++;
		if (i < table.n && table.r[i].start <= at) { /* ours, mapped */
			at = table.r[i].end;
			continue;
		}
		if (g < given.n && given.r[g].start <= at) { /* the kernel's, mapped */
			at = given.r[g].end;
			continue;
		}
		uintptr_t next = end;
		if (i < table.n && table.r[i].start < next)
			next = table.r[i].start;
		if (g < given.n && given.r[g].start < next)
			next = given.r[g].start;
		if (hp_owns((void *)at, next - at)) /* hugeperm's, not mapped */
			return false;
		at = next;
	}
	return true;
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

bool alloc_kept_after(const struct region *reg, uintptr_t start, uintptr_t end)
{
	for (size_t i = alloc_first(reg); in_alloc(i, reg->base, reg->alloc_size); i++)
		if (table.r[i].start < start || table.r[i].end > end)
			return true; /* not all of it in [start, end): not cut whole */
	return false;
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

/* ------------------------------------------------------------------ */
/* Ranges given to the kernel's mappings. */

/* Index of the first given range ending at or above @addr. */
static size_t given_find(uintptr_t addr)
{
	size_t lo = 0, hi = given.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (given.r[mid].end < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool given_add(uintptr_t start, uintptr_t end)
{
	size_t i = given_find(start), j = i;
	while (j < given.n && given.r[j].start <= end)
		j++; /* [i, j) overlap or touch [start, end): one range with it */
	if (i == j && given.n == GIVEN_MAX)
		return false;
	if (i < j) {
		start = given.r[i].start < start ? given.r[i].start : start;
		end = given.r[j - 1].end > end ? given.r[j - 1].end : end;
	}
	memmove(&given.r[i + 1], &given.r[j], (given.n - j) * sizeof(given.r[0]));
	given.n = given.n + 1 - (j - i);
	given.r[i].start = start;
	given.r[i].end = end;
	return true;
}

size_t given_room(void)
{
	return GIVEN_MAX - given.n;
}

bool given_has(uintptr_t addr)
{
	size_t i = given_find(addr + 1);
	return i < given.n && given.r[i].start <= addr;
}

bool given_meets(uintptr_t start, uintptr_t end)
{
	size_t i = given_find(start + 1);
	return i < given.n && given.r[i].start < end;
}

bool given_next(uintptr_t addr, uintptr_t *start, uintptr_t *end)
{
	size_t i = given_find(addr + 1);
	if (i == given.n)
		return false;
	*start = given.r[i].start;
	*end = given.r[i].end;
	return true;
}

int given_each(uintptr_t start, uintptr_t end, int (*fn)(void *, size_t, int), int arg)
{
	int rc = 0;
	for (size_t i = given_find(start + 1); i < given.n && given.r[i].start < end; i++) {
		uintptr_t s = given.r[i].start > start ? given.r[i].start : start;
		uintptr_t e = given.r[i].end < end ? given.r[i].end : end;
		if (fn((void *)s, e - s, arg))
			rc = -1;
	}
	return rc;
}

static int reserve(void *addr, size_t len, int unused)
{
	(void)unused;
	void *p = k_mmap(addr, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? -1 : 0;
}

int given_unmap(uintptr_t start, uintptr_t end)
{
	if (given_each(start, end, reserve, 0))
		return -1; /* (vm.max_map_count) kept as given: the kernel's still */
	size_t i = given_find(start + 1);
	while (i < given.n && given.r[i].start < end) {
		uintptr_t s = given.r[i].start, e = given.r[i].end;
		if (s < start && e > end) { /* a hole in the middle: two ranges */
			if (given.n == GIVEN_MAX)
				return 0; /* kept whole: its pages read as the kernel's */
			memmove(&given.r[i + 1], &given.r[i], (given.n - i) * sizeof(given.r[0]));
			given.n++;
			given.r[i].end = start;
			given.r[i + 1].start = end;
			return 0;
		}
		if (s < start) {
			given.r[i++].end = start;
		} else if (e > end) {
			given.r[i].start = end;
			return 0;
		} else {
			memmove(&given.r[i], &given.r[i + 1],
				(given.n - i - 1) * sizeof(given.r[0]));
			given.n--;
		}
	}
	return 0;
}
