/* SPDX-License-Identifier: MIT */
/*
 * os_maps.c - the OS layer's reservations near a hint (struct hp_os's
 * reserve_in): take a whole 1 GiB slot if nothing is mapped there, else
 * the free gap of it nearest the hint, found by walking /proc/self/maps.
 *
 * A JIT's hint usually falls in the slot of its own binary and heap, which
 * is seldom free whole; the program break and the stack grow into gaps, so
 * they count as mapped GROW_ROOM beyond where they are now, and a page is
 * left free next to the program's mappings.  No malloc, no stdio: the maps
 * file is read in pieces into a stack buffer.
 */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>

#include "os_sys.h"

#define USER_TOP (1UL << 47)

/* Reserve exactly at @at, or fail with EEXIST when something is there. */
static int reserve_at(uintptr_t at, size_t size)
{
	void *p = sys_reserve((void *)at, size, MAP_FIXED_NOREPLACE);
	if (p == MAP_FAILED)
		return errno;
	if ((uintptr_t)p != at) { /* a kernel older than 4.17 took it as a hint */
		sys_munmap(p, size);
		return EEXIST;
	}
	return 0;
}

/* Room left free above the program break and below the stack, so that
 * neither runs into a reservation of ours. */
#define GROW_ROOM (256UL << 20)

/* The best free gap of a slot so far (reserve_in). */
struct gap_pick {
	uintptr_t lo, hi, near, min;
	uintptr_t busy_lo, busy_hi; /* where the program break will grow */
	uintptr_t best_lo, best_hi;
};

/* Consider the free range [lo, hi), cut to the slot and to whole blocks,
 * with at least a page left free next to the program's mappings (so that
 * ours are never adjacent to them: see sys_reserve). */
static void gap_consider(struct gap_pick *g, uintptr_t lo, uintptr_t hi)
{
	if (lo < g->busy_hi && hi > g->busy_lo) { /* the break's room is not free */
		gap_consider(g, lo, g->busy_lo);
		gap_consider(g, g->busy_hi, hi);
		return;
	}
	lo = lo < g->lo ? g->lo : lo > g->lo ? lo + HP_PAGE_SIZE : lo;
	hi = hi > g->hi ? g->hi : hi < g->hi ? hi - HP_PAGE_SIZE : hi;
	lo = (lo + HP_BLOCK_SIZE - 1) & ~(uintptr_t)(HP_BLOCK_SIZE - 1);
	hi &= ~(uintptr_t)(HP_BLOCK_SIZE - 1);
	if (hi <= lo || hi - lo < g->min)
		return;
	if (!g->best_hi ||
	    hp_distance(lo, hi, g->near) < hp_distance(g->best_lo, g->best_hi, g->near)) {
		g->best_lo = lo;
		g->best_hi = hi;
	}
}

static uintptr_t hex_field(const char **s, const char *end)
{
	uintptr_t v = 0;
	for (; *s < end; (*s)++) {
		unsigned c = (unsigned char)**s | 0x20;
		if (c - '0' < 10)
			v = v << 4 | (c - '0');
		else if (c - 'a' < 6)
			v = v << 4 | (c - 'a' + 10);
		else
			break;
	}
	return v;
}

/* One line of /proc/self/maps: "start-end perms offset dev inode [path]". */
static void gap_line(struct gap_pick *g, const char *line, size_t len, uintptr_t *free_from)
{
	const char *s = line, *end = line + len;
	uintptr_t start = hex_field(&s, end);
	if (s == end || *s++ != '-')
		return;
	uintptr_t stop = hex_field(&s, end);
	if (stop <= start)
		return;
	if (memmem(line, len, "[stack]", 7)) /* it grows down into the gap below */
		start = start > GROW_ROOM ? start - GROW_ROOM : 0;
	if (start > *free_from)
		gap_consider(g, *free_from, start);
	if (stop > *free_from)
		*free_from = stop;
}

/*
 * Walk /proc/self/maps, read in pieces (no malloc), and pick the free gap
 * of [g->lo, g->hi) nearest g->near.  The program break and the stack count
 * as mapped GROW_ROOM beyond where they are now.  0 or errno.
 */
static int gap_find(struct gap_pick *g)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	uintptr_t brk_now = (uintptr_t)syscall(SYS_brk, 0);
	g->busy_lo = brk_now;
	g->busy_hi = brk_now ? brk_now + GROW_ROOM : 0;
	uintptr_t free_from = 0; /* the end of the mappings seen so far */
	char buf[4096];
	size_t have = 0;
	bool eof = false, skipping = false; /* skipping the rest of an overlong line */
	int err = 0;
	while (!eof || have) {
		if (!eof) {
			ssize_t n = read(fd, buf + have, sizeof(buf) - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = errno;
				break;
			}
			eof = n == 0;
			have += (size_t)n;
		}
		char *nl = memchr(buf, '\n', have);
		if (!nl && !eof && have < sizeof(buf))
			continue;
		size_t len = nl ? (size_t)(nl - buf) + 1 : have;
		if (!skipping)
			gap_line(g, buf, len, &free_from);
		skipping = !nl && !eof; /* a line longer than buf: the rest is its path */
		memmove(buf, buf + len, have - len);
		have -= len;
	}
	close(fd);
	if (!err)
		gap_consider(g, free_from, g->hi);
	return err;
}

/* The whole slot if nothing is mapped there, else its free gap nearest @near. */
int hp_sys_reserve_in(uintptr_t slot, size_t size, uintptr_t near, size_t min, uintptr_t *lo,
		      uintptr_t *hi)
{
	if (slot + size > USER_TOP)
		return EEXIST;
	int err = reserve_at(slot, size);
	if (!err) {
		*lo = slot;
		*hi = slot + size;
		return 0;
	}
	if (err != EEXIST || min >= size)
		return err;
	struct gap_pick g = {.lo = slot, .hi = slot + size, .near = near, .min = min};
	err = gap_find(&g);
	if (err)
		return err;
	if (!g.best_hi)
		return EEXIST;
	err = reserve_at(g.best_lo, g.best_hi - g.best_lo);
	if (err)
		return err; /* mapped meanwhile: EEXIST, and the caller tries elsewhere */
	*lo = g.best_lo;
	*hi = g.best_hi;
	return 0;
}
