/* SPDX-License-Identifier: MIT */
/*
 * serve.c - serving the program's mappings from hugeperm: the arenas, a new
 * mapping placed by the placement rule (placement.c), and what keeps a
 * served range's kernel semantics: zeroed pages, protection changes (the
 * flip modes), ranges cut out of the regions and allocations given back.
 *
 * Arenas: one without a hint, and one per hint of a JIT that wants its code
 * near its own (up to MAX_ARENAS), made on first use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "preload.h"

#define MAX_ARENAS 16
#define NEAR_MATCH (64UL << 20) /* a hint this close to an arena's goes to it */
/* A hinted area served further away than this goes to the kernel.  LuaJIT
 * (x64) keeps its areas within 1 GiB - 2 MiB of its VM: half of its +-2 GiB
 * jump range, so that every area reaches every other (lj_mcode.c). */
#define AREA_REACH (1UL << 30)

static struct {
	struct hp_arena *arena[MAX_ARENAS];
	uintptr_t near[MAX_ARENAS]; /* its hint; 0 for the arena without one */
	bool fixed[MAX_ARENAS];	    /* a fixed range's own (fixed.c): no other use, and
				     * destroyed (NULL) when the range is unmapped */
	int n;
	bool atfork_done; /* our fork handlers are registered */
} arenas;

struct hp_arena *arena_at(int i)
{
	return arenas.arena[i];
}

uintptr_t arena_near(int i)
{
	return arenas.near[i];
}

int arena_count(void)
{
	return arenas.n;
}

static void register_fork(void)
{
	/* After the library's own handlers are in (the first arena brought
	 * them), so that ours run first at fork: our lock, then the library's. */
	if (!arenas.atfork_done &&
	    pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork) == 0)
		arenas.atfork_done = true;
}

static uintptr_t distance(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

struct hp_arena *arena_make(uintptr_t near, unsigned flags)
{
	struct hp_config cfg = {
		.size = sizeof(cfg),
		.collapse_mode = preload_opt.collapse_mode,
		.flags = HP_ARENA_ALLOW_RWX | HP_ARENA_NO_ALIAS | flags,
		.near = (void *)near,
	};
	return hp_arena_create(&cfg);
}

/* The arena for requests near @hint (0: the one without a hint), made on
 * first use; the nearest one when there can be no more.  A hint in the
 * 1 GiB slot of an arena's own hint goes to that arena: its chunk is most
 * likely in that slot, which holds one chunk only, so a new arena would
 * have to go to another slot, further away (LuaJIT's test suite, whose
 * many states each ask at random hints, made all 16 arenas, each further
 * out of its reach). */
static int arena_for(uintptr_t hint)
{
	int best = -1;
	for (int i = 0; i < arenas.n; i++) {
		uintptr_t near = arenas.near[i];
		if (arenas.fixed[i])
			continue;
		if (!hint && !near)
			return i;
		if (!hint || !near)
			continue;
		if (distance(near, hint) <= NEAR_MATCH || near >> 30 == hint >> 30)
			return i;
		if (best < 0 || distance(near, hint) < distance(arenas.near[best], hint))
			best = i;
	}
	if (arenas.n == MAX_ARENAS)
		return best;
	/* Exact mode splits a block at every RW flip of an area in it: a block
	 * flipped again and again is collapsed once quiet (lib/collapse.c),
	 * not after every flip (16x plain on luajit-flips, docs/preload.md). */
	struct hp_arena *a = arena_make(
		hint, preload_opt.flip == HP_PRELOAD_FLIP_EXACT ? HP_ARENA_COLLAPSE_QUIET : 0);
	if (!a)
		return best;
	register_fork();
	arenas.arena[arenas.n] = a;
	arenas.near[arenas.n] = hint;
	preload_counts.arenas++;
	return arenas.n++;
}

int arena_room(void)
{
	int room = MAX_ARENAS - arenas.n;
	for (int i = 0; i < arenas.n; i++)
		room += !arenas.arena[i];
	return room;
}

int arena_adopt_fixed(struct hp_arena *a, uintptr_t near)
{
	int i = 0;
	while (i < arenas.n && arenas.arena[i]) /* a fixed range's, gone: its place */
		i++;
	if (i == MAX_ARENAS)
		return -1;
	register_fork();
	arenas.arena[i] = a;
	arenas.near[i] = near;
	arenas.fixed[i] = true;
	preload_counts.arenas++;
	if (i == arenas.n)
		arenas.n++;
	return i;
}

#define TRAP_BYTE 0xcc /* int3: what the library fills freed code with */

/* Write @n pages of @page at @p through /proc/self/mem: a protection key
 * does not stop it (the kernel checks keys on the process's own accesses
 * only), nor does the pages' protection.  0 or -1. */
static int fill_by_proc_mem(uintptr_t p, size_t len, const char *page)
{
	int fd = k_open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	int rc = fd < 0 ? -1 : 0;
	for (size_t off = 0; !rc && off < len; off += PAGE)
		rc = k_pwrite(fd, page, PAGE, (off_t)(p + off)) == (long)PAGE ? 0 : -1;
	if (fd >= 0)
		k_close(fd);
	return rc;
}

/* Write @byte over @len bytes at @p of @reg's pages: a store where the
 * program may write them; in this thread's packed block, a flip of the
 * block (pack_fill); else as hp_write writes (through the block's alias,
 * /proc/self/mem, or a flip of those pages); pages with a protection key,
 * through /proc/self/mem (a store, even the library's, could meet the key).
 * 0, or -1 if some bytes could not be written, or a block could not be
 * given its protection back. */
static int fill(const struct region *reg, uintptr_t p, size_t len, int byte)
{
	static const char zeros[PAGE];
	static const char traps[PAGE] = {[0 ... PAGE - 1] = (char)TRAP_BYTE};
	const char *page = byte ? traps : zeros;
	if (reg->keyed)
		return fill_by_proc_mem(p, len, page);
	if (reg->prot & PROT_WRITE) {
		memset((void *)p, byte, len);
		return 0;
	}
	int packed = reg->area ? pack_fill(reg, p, p + len, byte) : -1;
	if (packed >= 0)
		return packed ? -1 : 0;
	int rc = 0;
	for (size_t off = 0; off < len; off += PAGE)
		rc |= hp_arena_write(arenas.arena[reg->arena], (void *)(p + off), page, PAGE);
	return rc ? -1 : 0;
}

void zero(const struct region *reg, uintptr_t p, size_t len)
{
	if (reg->kind == KIND_CODE_RANGE) { /* pages may be NONE, or merged: the library knows */
		hp_arena_discard(arenas.arena[reg->arena], (void *)p, len);
		return;
	}
	(void)fill(reg, p, len, 0);
}

/*
 * [from, to) of @reg, just unmapped by the program, while its pages stay
 * mapped: the rest of its allocation is in use (the other areas of a
 * packed block, the rest of an area unmapped in part), or the allocation
 * is never reused (tainted, or keyed and not cleaned: release()).  They
 * stay at the protection their block takes.  If they are executable or
 * ever were (ran; rwx mode's pages are RWX whatever was asked), they may
 * hold code a stale pointer still reaches: they are filled with int3, as
 * the library fills freed pages of executable classes, so that a jump
 * there traps, as it faults on the kernel's unmapped page, instead of
 * running old code.  Bytes that never ran in a block that is not
 * executable are left (a packed block's areas are RW together while one
 * is written: bytes written then run once the block is RX, whichever area
 * they are in); a packed gap is zeroed when it is handed out again
 * (pack.c).  Code ranges drop such pages themselves (code_range_unmap_end):
 * none of this is asked for them.
 */
static bool may_hold_code(const struct region *reg)
{
	return reg->kind != KIND_CODE_RANGE &&
	       (reg->ran || reg->relaxed || (reg->prot & PROT_EXEC) ||
		(reg->area && pack_executable(reg)));
}

static void scrub(const struct region *reg, uintptr_t from, uintptr_t to)
{
	if (fill(reg, from, to - from, TRAP_BYTE))
		preload_counts.scrub_failed++;
	else
		preload_counts.scrubbed++;
}

uintptr_t serve(int kind, uintptr_t hint, size_t len, int prot, bool reach)
{
	int ai = arena_for(hint);
	if (ai < 0)
		return 0;
	struct hp_arena *a = arenas.arena[ai];
	struct hp_placement pl = hp_place(kind, preload_opt.flip, prot, len);
	if (kind == KIND_AREA && pl.own_block && preload_opt.pack && len <= BLOCK) { /* pack.c */
		uintptr_t p = pack_serve(ai, hint, len, prot, reach ? AREA_REACH : 0);
		if (p) {
			preload_counts.areas++;
			preload_counts.served_bytes += len;
		}
		return p;
	}
	struct region reg = {
		.arena = (unsigned char)ai,
		.kind = (unsigned char)kind,
		.relaxed = pl.relaxed,
		.own_block = pl.own_block,
		.ran = (prot & PROT_EXEC) != 0,
	};

	/* The library zeroes an allocation the program maps whole, and only
	 * the pages that may hold bytes (a fresh block's are zero already);
	 * a block of its own is zeroed here, as far as the program maps it. */
	bool whole = kind != KIND_CODE_RANGE && pl.size == len;
	void *p = hp_arena_alloc(a, pl.size, pl.cls | (whole ? HP_ZERO : 0));
	if (!p)
		return 0;
	/* A JIT that gives a hint needs its code within reach of its own
	 * (LuaJIT: within 1 GiB of its VM).  An area further than AREA_REACH
	 * from the hint (no room left near it) would be unmapped by the JIT
	 * and asked again elsewhere, until it gives up and flushes its traces;
	 * the kernel's page lands on the hint.  An area that mremap moves has
	 * no such promise: the kernel would move it anywhere. */
	if (reach && kind == KIND_AREA && hint && distance((uintptr_t)p, hint) > AREA_REACH) {
		hp_arena_free(a, p);
		errno = ENOMEM;
		return 0;
	}
	reg.base = (uintptr_t)p;
	size_t usable = hp_usable_size(p);
	reg.alloc_size = usable ? usable : pl.size;
	reg.start = reg.base;
	reg.end = reg.base + len;
	reg.prot = (unsigned char)(reg.relaxed ? PROTS : prot);
	if (kind != KIND_CODE_RANGE && !whole)
		zero(&reg, reg.start, len);
	region_set_prot(&reg, prot);
	if (!region_insert(&reg)) {
		hp_arena_free(a, p);
		errno = ENOMEM;
		return 0;
	}
	if (kind == KIND_AREA)
		preload_counts.areas++;
	else if (kind == KIND_CODE_RANGE)
		preload_counts.code_ranges++;
	else
		preload_counts.exec++;
	if (kind != KIND_CODE_RANGE) /* address space, not memory */
		preload_counts.served_bytes += len;
	return reg.base;
}

/* Give the allocation behind a region back, if no region uses it now. */
static void release(struct region reg)
{
	if (alloc_in_use(&reg)) {
		if (reg.area)
			pack_settle(&reg); /* the areas left make its protection */
		return;
	}
	if (reg.tainted) {
		preload_counts.given_bytes += reg.alloc_size;
		return; /* some of its pages belong to another mapping now */
	}
	if (reg.keyed) {
		/* Key 0 again before the pages are reused: one protection for the
		 * whole allocation first, so that hugeperm's record stays true. */
		if (hp_arena_protect(arenas.arena[reg.arena], (void *)reg.base, reg.alloc_size,
				     reg.prot) ||
		    k_pkey_mprotect((void *)reg.base, reg.alloc_size, reg.prot, 0)) {
			preload_counts.given_bytes +=
				reg.alloc_size; /* cannot clean it: never reuse it */
			return;
		}
	}
	hp_arena_free(arenas.arena[reg.arena], (void *)reg.base);
	if (reg.area)
		pack_forget(reg.base);
	if (arenas.fixed[reg.arena]) {
		/* A fixed range's arena held it alone: its address space goes
		 * back, so the program can map there again. */
		hp_preload_retire(arenas.arena[reg.arena]);
		hp_arena_destroy(arenas.arena[reg.arena]);
		arenas.arena[reg.arena] = NULL;
	}
}

void cut(uintptr_t start, uintptr_t end, enum cut_mode mode)
{
	size_t i = region_find(start);
	struct region *at;
	while ((at = region_at(i)) && at->start < end) {
		struct region reg = *at;
		region_delete(i);
		struct region lo = reg, hi = reg;
		lo.end = start;
		hi.start = end;
		if (reg.start < start) {
			region_insert(&lo); /* cannot fail: one was just deleted */
			i++;
		}
		if (reg.end > end) {
			region_insert(&hi);
			i++;
		}
		bool whole = reg.start >= start && reg.end <= end;
		if (mode == CUT_FREE && may_hold_code(&reg) &&
		    (!whole || reg.tainted || reg.keyed || alloc_kept_after(&reg, start, end)))
			scrub(&reg, reg.start > start ? reg.start : start,
			      reg.end < end ? reg.end : end);
		if (whole && mode != CUT_REUSE)
			release(reg);
	}
}

int region_protect(struct region *reg, bool whole, int prot)
{
	struct hp_arena *a = arenas.arena[reg->arena];
	uintptr_t from = reg->start, to = reg->end;
	int want = prot;

	if (reg->area) /* a packed area: its block's protection (pack.c) */
		return pack_protect(reg, prot);
	if (reg->relaxed && hp_place_stays_rwx(prot)) {
		want = PROTS; /* rwx mode: RW <-> RX flips stay RWX */
		preload_counts.flips_relaxed++;
	} else if (reg->own_block && whole) {
		/* The whole area: the whole block, one PMD, no split.  Other
		 * regions of the block (left by a partial munmap) come along. */
		from = reg->base;
		to = reg->base + reg->alloc_size;
		alloc_set_prot(reg, prot);
		preload_counts.flips_block++;
	}
	if (hp_arena_protect(a, (void *)from, to - from, want))
		return -1;
	reg->ran |= (prot & PROT_EXEC) != 0; /* as pack_protect keeps it */
	preload_counts.protects++;
	return 0;
}

int fresh(struct region *reg, int prot)
{
	if (reg->kind == KIND_CODE_RANGE) { /* code_range_reconcile() applies the protection */
		reg->bytes = reg->stale = 0;
		region_set_prot(reg, prot);
		return hp_arena_discard(arenas.arena[reg->arena], (void *)reg->start,
					reg->end - reg->start);
	}
	if (reg->area)
		return pack_fresh(reg, prot);
	reg->prot = (unsigned char)(reg->relaxed ? PROTS : PROT_READ | PROT_WRITE);
	if (hp_arena_protect(arenas.arena[reg->arena], (void *)reg->start, reg->end - reg->start,
			     reg->prot))
		return -1;
	zero(reg, reg->start, reg->end - reg->start);
	if (region_protect(reg, false, prot))
		return -1;
	reg->prot = (unsigned char)prot;
	return 0;
}
