/* SPDX-License-Identifier: MIT */
/*
 * ranges.c - a call's range: its pages (EINVAL as the kernel says), and its
 * parts, those hugeperm's chunks cover and the kernel's (outside them, or
 * given to kernel mappings inside them).  The hooks split each call on
 * served memory so: the kernel's parts get the kernel's call.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "preload.h"

bool page_range(const void *addr, size_t len, uintptr_t *start, uintptr_t *end)
{
	*start = (uintptr_t)addr;
	*end = *start + page_up(len);
	if (*start % PAGE || *end < *start) {
		errno = EINVAL;
		return false;
	}
	return true;
}

/* The part of [a, b), a piece of one 1 GiB slot, that hugeperm's chunk
 * there covers: [*cs, *ce), found by bisection with hp_owns() (a slot
 * holds one chunk, which may be part of the slot).  false if none. */
static bool chunk_part(uintptr_t a, uintptr_t b, uintptr_t *cs, uintptr_t *ce)
{
	if (!hp_owns((void *)a, b - a))
		return false;
	if (hp_owns((void *)a, PAGE) && hp_owns((void *)(b - PAGE), PAGE)) {
		*cs = a; /* both ends: all of it (the usual call, on served pages) */
		*ce = b;
		return true;
	}
	uintptr_t lo = a, hi = b - PAGE; /* the first page it covers */
	while (lo < hi) {
		uintptr_t mid = lo + (hi - lo) / PAGE / 2 * PAGE;
		if (hp_owns((void *)a, mid + PAGE - a))
			hi = mid;
		else
			lo = mid + PAGE;
	}
	*cs = lo;
	hi = b - PAGE; /* the last page it covers */
	while (lo < hi) {
		uintptr_t mid = lo + ((hi - lo) / PAGE + 1) / 2 * PAGE;
		if (hp_owns((void *)mid, b - mid))
			lo = mid;
		else
			hi = mid - PAGE;
	}
	*ce = lo + PAGE;
	return true;
}

int chunk_parts(uintptr_t start, uintptr_t end, int (*out)(void *, size_t, int),
		int (*in)(void *, size_t, int), int arg)
{
	int rc = 0;
	for (uintptr_t at = start; at < end;) {
		uintptr_t next = ((at >> 30) + 1) << 30, cs, ce;
		if (next > end || next == 0)
			next = end;
		if (!chunk_part(at, next, &cs, &ce))
			cs = ce = next;
		if (out && cs > at && out((void *)at, cs - at, arg))
			rc = -1;
		if (in && ce > cs && in((void *)cs, ce - cs, arg))
			rc = -1;
		if (out && next > ce && out((void *)ce, next - ce, arg))
			rc = -1;
		at = next;
	}
	return rc;
}

int kernel_parts(uintptr_t start, uintptr_t end, int (*kernel)(void *, size_t, int), int arg)
{
	return chunk_parts(start, end, kernel, NULL, arg) | given_each(start, end, kernel, arg);
}
