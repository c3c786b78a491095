/* SPDX-License-Identifier: MIT */
/*
 * fixed.c - mappings whose address the program sets the bounds of: a large
 * executable range it asks for at an address of its own with
 * MAP_FIXED_NOREPLACE (Ruby's YJIT: 256 MiB PROT_READ|PROT_EXEC near its
 * binary, whose pages it flips to RW to write code), and MAP_32BIT
 * mappings, which must lie in the low 2 GiB (Mono's code chunks).
 *
 * A fixed range is served at its address or not at all.  The 2 MiB blocks
 * that hold [addr, addr+len) are taken (the range need not be aligned: the
 * parts of its first and last block outside it are ours, in no region:
 * PROT_NONE, or merged as code range blocks are; when something is mapped
 * in such a part, that partial block is left to the kernel, which maps the
 * range's end there with 4 KiB pages: YJIT's range starts where its binary
 * puts it, often in a block that holds ld.so's last pages; and when a range
 * crosses a 1 GiB boundary, the side of it in a slot with no room for a
 * chunk goes to the kernel up to the boundary), the piece in each 1 GiB
 * slot from an arena of its own whose memory starts exactly there; the
 * range is then a code range (code_range.c), committed lazily, with the
 * program's protection.  What the kernel would refuse is refused alike:
 * the blocks are probed with MAP_FIXED_NOREPLACE first, and when they are
 * not all free (or no arena can be placed there) the program's own call
 * goes to the kernel, which maps it or says EEXIST, as without us.
 *
 * A MAP_32BIT mapping is served from the arena near LOW_NEAR (the kernel's
 * own MAP_32BIT window starts there); one that lands above 2 GiB (no room
 * left below) is given back and the kernel serves it, as before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "preload.h"

#define SLOT	  (1UL << 30)
#define MAX_PIECE 3	      /* slots a range of up to 1 GiB + 2 blocks meets */
#define LOW_NEAR  (1UL << 30) /* where MAP_32BIT arenas go: the slot below 2 GiB */
#define LOW_LIMIT (2UL << 30) /* MAP_32BIT: the first 2 GiB */

bool fixed_wanted(const void *addr, size_t len, int prot, int flags, int fd)
{
	if (!(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE || fd > 0 ||
	    !(flags & MAP_FIXED_NOREPLACE) || (flags & MAP_FIXED) || !addr)
		return false;
	if (flags & (MAP_GROWSDOWN | MAP_STACK | MAP_HUGETLB | MAP_32BIT))
		return false;
	return hp_place_fixed_kind(&preload_opt.serve, len, prot) >= 0;
}

/* An arena with one allocation of PROT_NONE blocks that holds [at, end)
 * and ends there, or NULL; [at, end) is held by a kernel reservation of
 * ours, which goes once the arena is made (its own bookkeeping might land
 * there otherwise); *base is where the allocation starts.  A new
 * arena's chunk is the free part of @at's slot nearest it, whose blocks are
 * taken lowest first: when the chunk starts below @at, the allocation
 * starts there too (the blocks before @at are in no region: NONE, without
 * memory, as the rest of the chunk). */
static struct hp_arena *arena_exact(uintptr_t at, uintptr_t end, uintptr_t *base, unsigned flags)
{
	/* Its chunk is the piece of the slot the range needs, however small:
	 * YJIT's range crosses a 1 GiB boundary 1 run in a few (its address
	 * follows libruby's), and the side below it, with its inline code,
	 * was left to the kernel's small pages when under the 32 MiB a chunk
	 * near a mere hint takes at least. */
	struct hp_arena *a = arena_make(at, flags | HP_ARENA_NEAR_EXACT);
	/* The arena's own memory is elsewhere now: the range's hold goes. */
	k_munmap((void *)at, end - at);
	if (!a)
		return NULL;
	uintptr_t want = at; /* where the allocation must start */
	uintptr_t p = (uintptr_t)hp_arena_alloc(a, end - at, PROT_NONE);
	if (p && p < at && (p & ~(SLOT - 1)) == (at & ~(SLOT - 1))) {
		hp_arena_free(a, (void *)p);
		want = p;
		p = (uintptr_t)hp_arena_alloc(a, end - want, PROT_NONE);
	}
	if (!p || p != want) {
		hp_arena_destroy(a);
		return NULL;
	}
	*base = p;
	return a;
}

/* Are the blocks [lo, hi) free: nothing of ours, nothing of the kernel's? */
static bool blocks_free(uintptr_t lo, uintptr_t hi)
{
	if (hp_owns((void *)lo, hi - lo))
		return false;
	void *p = k_mmap((void *)lo, hi - lo, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	k_munmap(p, hi - lo);
	return (uintptr_t)p == lo; /* a kernel older than 4.17 took it as a hint */
}

/* The blocks [*lo, *hi) to take for [start, end): all that hold it when
 * they are free; else, the first or last block left out, for the kernel to
 * map that end of the range (4 KiB pages, at most a block each side).  The
 * library places a chunk a page away from other mappings, but at a slot's
 * edge (os_maps.c): the page beyond each end of our blocks must be free. */
static bool choose_blocks(uintptr_t start, uintptr_t end, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t a = start & ~(BLOCK - 1), b = (end + BLOCK - 1) & ~(BLOCK - 1);
	for (int k = 0; k < 4; k++) {
		uintptr_t l = k & 1 ? a + BLOCK : a, h = k & 2 ? b - BLOCK : b;
		if (l >= h)
			continue;
		if (blocks_free(l, h) && (l <= start || blocks_free(start, l)) &&
		    (h >= end || blocks_free(h, end)) &&
		    (l % SLOT == 0 || blocks_free(l - PAGE, l)) &&
		    (h % SLOT == 0 || blocks_free(h, h + PAGE))) {
			*lo = l;
			*hi = h;
			return true;
		}
	}
	return false;
}

/* Hold [lo, hi) with a kernel reservation while the arenas are made, so
 * that nothing (our bookkeeping above all) is mapped there meanwhile. */
static bool hold(uintptr_t lo, uintptr_t hi)
{
	if (lo >= hi)
		return true;
	void *p = k_mmap((void *)lo, hi - lo, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != MAP_FAILED && (uintptr_t)p != lo)
		k_munmap(p, hi - lo);
	return (uintptr_t)p == lo;
}

static void unhold(uintptr_t lo, uintptr_t hi)
{
	if (lo < hi)
		k_munmap((void *)lo, hi - lo);
}

/*
 * An end of the program's range left out of our blocks, [from, to), is the
 * kernel's.  While our chunk is placed next to it, the page of it next to
 * our blocks (@margin) is left free, the rest held: the library keeps a
 * page free between its chunks and other mappings, and would place the
 * chunk a block further.  Mapped now: the held part over the hold, the
 * margin only if it is still free.  0, or -1.
 */
static int kernel_end(uintptr_t from, uintptr_t to, uintptr_t margin, int prot)
{
	const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
	if (from >= to)
		return 0;
	void *p = k_mmap((void *)margin, PAGE, prot, anon | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != MAP_FAILED && (uintptr_t)p != margin) {
		k_munmap(p, PAGE);
		return -1;
	}
	if (p == MAP_FAILED)
		return -1;
	uintptr_t lo = margin == from ? from + PAGE : from, hi = margin == from ? to : margin;
	if (lo < hi && k_mmap((void *)lo, hi - lo, prot, anon | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -1;
	return 0;
}

/*
 * Serve [start, end) from our blocks [lo, hi), the rest of it the kernel's:
 * start, MAP_FAILED (errno set), or 0 when it is all left to the kernel;
 * then *bad is the piece whose arena could not be placed, of *npiece.
 */
static uintptr_t serve_blocks(uintptr_t start, uintptr_t end, uintptr_t lo, uintptr_t hi, int prot,
			      unsigned flags, int *bad, int *npiece)
{
	struct hp_placement pl = hp_place(KIND_CODE_RANGE, preload_opt.flip, prot, end - start);
	struct hp_arena *made[MAX_PIECE];
	uintptr_t base[MAX_PIECE];
	int n = 0;

	*bad = -1;
	*npiece = (int)(((hi - 1) >> 30) - (lo >> 30)) + 1;
	/* Held: the ends left to the kernel but their margins, our blocks. */
	uintptr_t head = lo > start ? lo - PAGE : start, tail = end > hi ? hi + PAGE : end;
	if (!hold(start, head))
		return 0;
	if (!hold(tail, end)) {
		unhold(start, head);
		return 0;
	}
	if (!hold(lo, hi)) {
		unhold(start, head);
		unhold(tail, end);
		return 0;
	}
	uintptr_t at = lo; /* below: the pieces whose hold went to their arena */
	for (; at < hi; n++) {
		uintptr_t to = (at & ~(SLOT - 1)) + SLOT < hi ? (at & ~(SLOT - 1)) + SLOT : hi;
		if (n == MAX_PIECE || n >= arena_room())
			goto undo;
		made[n] = arena_exact(at, to, &base[n], flags);
		at = to; /* its hold is gone, whatever came of it */
		if (!made[n]) {
			*bad = n;
			goto undo;
		}
	}
	at = lo;
	for (int i = 0; i < n; i++) {
		uintptr_t to = (at & ~(SLOT - 1)) + SLOT < hi ? (at & ~(SLOT - 1)) + SLOT : hi;
		struct region reg = {
			.start = start > at ? start : at,
			.end = end < to ? end : to,
			.base = base[i],
			.alloc_size = to - base[i],
			.arena = (unsigned char)arena_adopt_fixed(made[i], at),
			.kind = KIND_CODE_RANGE,
			.prot = (unsigned char)prot,
			.relaxed = pl.relaxed,
			.bytes = prot != PROT_NONE,
		};
		made[i] = NULL; /* the table has it now */
		if (!region_insert(&reg))
			goto fail;
		at = to;
	}
	if (code_range_reconcile_range(start, end) || kernel_end(start, lo, lo - PAGE, prot) ||
	    kernel_end(hi, end, hi, prot))
		goto fail;
	return start;
fail:
	/* Our blocks were there: the kernel would have said EEXIST, which the
	 * program would take for "occupied"; ENOMEM says what happened. */
	cut(start, end, CUT_FREE);
	unhold(start, lo > start ? lo : start);
	unhold(hi < end ? hi : end, end);
	errno = ENOMEM;
	return (uintptr_t)MAP_FAILED;
undo:
	for (int i = 0; i < n; i++)
		if (made[i])
			hp_arena_destroy(made[i]);
	unhold(start, head);
	unhold(tail, end);
	unhold(at, hi); /* the pieces not reached */
	return 0;
}

/*
 * A range whose first block holds another mapping (the loader's last
 * pages: YJIT's hint is its own code + 4 MiB steps, and ld.so ends below
 * it in about one run in ten here) would start on the kernel's 4 KiB
 * pages, and a JIT writes its code from the start: YJIT's inline code,
 * 1.2 MiB of it, all small.  When more than half a block of the range
 * would be so, the program is told EEXIST, as if the block were taken, once
 * per process: a MAP_FIXED_NOREPLACE caller tries elsewhere (YJIT 4 MiB
 * up, where the block is free), and a second such range is served as
 * below.  Counted as fixed_refused.
 */
static bool head_refused(uintptr_t start, uintptr_t lo)
{
	static bool once;
	if (lo <= start || lo - start <= BLOCK / 2 || once)
		return false;
	once = true;
	preload_counts.fixed_refused++;
	errno = EEXIST;
	return true;
}

uintptr_t fixed_serve(uintptr_t addr, size_t len, int prot, bool flips_pages)
{
	/* A program that flips single pages of its range (YJIT: the page it
	 * writes, RW, then the whole range RX): a block that keeps being
	 * split is collapsed once quiet, not after every flip; and only the
	 * blocks it writes that way take huge pages (YJIT fills all 256 MiB
	 * with traps first, and writes code into two blocks).  Not in rwx
	 * mode, whose flips change nothing: no block would be seen written.
	 * An adopted reservation (reserve.c) is served as code ranges are:
	 * HotSpot maps a whole code heap RWX at once, and it is huge at once. */
	unsigned small = preload_opt.flip == HP_PRELOAD_FLIP_RWX ? 0 : HP_ARENA_LAZY_SMALL;
	unsigned flags = flips_pages ? HP_ARENA_COLLAPSE_QUIET | small : 0;
	uintptr_t start = addr, end = addr + page_up(len), lo, hi, r = 0;
	int bad = -1, npiece = 0;

	if (start % PAGE || end < start || start < BLOCK || !blocks_free(start, end))
		return 0; /* the kernel says EINVAL or EEXIST: nothing we could serve */
	bool chosen = choose_blocks(start, end, &lo, &hi);
	if (chosen && flips_pages && head_refused(start, lo))
		return (uintptr_t)MAP_FAILED;
	if (chosen)
		r = serve_blocks(start, end, lo, hi, prot, flags, &bad, &npiece);
	/* A range that crosses a slot boundary with little of it on one side
	 * (YJIT's, a few MiB below one): that side's slot may have no room for
	 * a chunk there (the loader's mappings right before it).  That end, up
	 * to the boundary, is the kernel's. */
	if (!r && npiece > 1 && bad == 0)
		r = serve_blocks(start, end, (lo & ~(SLOT - 1)) + SLOT, hi, prot, flags, &bad,
				 &npiece);
	else if (!r && npiece > 1 && bad == npiece - 1)
		r = serve_blocks(start, end, lo, (hi - 1) & ~(SLOT - 1), prot, flags, &bad,
				 &npiece);
	if (!r || r == (uintptr_t)MAP_FAILED) {
		preload_counts.fallbacks++;
		return r;
	}
	preload_counts.code_ranges++;
	preload_counts.fixed++;
	return start;
}

uintptr_t low_serve(int kind, size_t len, int prot)
{
	uintptr_t p = serve(kind, LOW_NEAR, len, prot, false);
	if (!p)
		return 0;
	if (p + len <= LOW_LIMIT) {
		preload_counts.low++;
		return p;
	}
	/* No room below 2 GiB: given back, and not counted as served. */
	cut(p, p + len, CUT_FREE);
	preload_counts.served_bytes -= len;
	if (kind == KIND_AREA)
		preload_counts.areas--;
	else
		preload_counts.exec--;
	errno = ENOMEM;
	return 0;
}
