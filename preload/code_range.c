/* SPDX-License-Identifier: MIT */
/*
 * code_range.c - code ranges: large PROT_NONE ranges a JIT maps up front
 * and commits in place (V8's code range, HotSpot's code cache).  The user
 * sees them as "reservations" (HUGEPERM_PRELOAD_SERVE=reservations, the
 * report's "reservations" and "resv_merged").
 *
 * They are committed in place, with PROT_NONE guard pages and RW headers
 * left between the code: applied exactly, those keep every block mixed and
 * 4K-mapped.  So, unless flips are exact, a block of a code range that
 * holds executable pages takes one protection: the union of the
 * protections the program asked for in it, provided that union is itself
 * one of them (V8: RW headers, RWX code and NONE guards give RWX).  A
 * program that flips pages between RW and RX gets no RWX it did not ask
 * for: its blocks stay exact.  Inside a merged block, pages asked to be
 * PROT_NONE (guards, uncommitted or unmapped pages) are accessible: the main
 * relaxation (the others: docs/preload.md, "Reservations").
 *
 * The hooks record the protection the program asks for in the regions;
 * code_range_reconcile() applies it, block by block.  The pages the program
 * asked for are the regions; pages of the allocation in no region are ours
 * to set, but for those given to a kernel mapping (a file the program
 * mapped or moved there: the given ranges), which are left alone.  Taint
 * is judged block by block from the given ranges: a block some page of
 * which is given is never dropped whole, whatever the allocation's flag
 * says (a file mapped into a hole, where no region was, taints no region).
 *
 * A page keeps its bytes until the program discards it (MADV_DONTNEED,
 * munmap, MAP_FIXED over it), PROT_NONE or not, as the kernel keeps them:
 * a region's `bytes` says its pages were accessible since their last
 * discard.  A block with no such page, none accessible, keyed or given, has
 * nothing the program could read again: it goes back to PROT_NONE whole and
 * its memory is dropped, in one call, no split.  A MADV_DONTNEED of
 * PROT_NONE pages only marks them `stale` (code_range_discard()): their
 * memory is zeroed in place before they are opened (or made accessible in
 * a merged block), or dropped with their block, so that V8's exit (each code page
 * made NONE, then discarded: the block empties with its last page) splits
 * no huge block, as a MADV_DONTNEED of part of one would.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <sys/mman.h>

#include "preload.h"

/* Pieces of a block that end with one protection take one call: a block
 * that ends uniform takes a whole-block mprotect, which splits nothing.
 * A run goes on into the next block: a range made RW or RX whole (YJIT's
 * 256 MiB, before and after its fill) takes one call, not one a block. */
struct run {
	struct hp_arena *a;
	uintptr_t start, end;
	int prot, rc;
};

static void run_flush(struct run *r)
{
	if (r->end > r->start)
		r->rc |= hp_arena_protect(r->a, (void *)r->start, r->end - r->start, r->prot);
	r->start = r->end = 0;
}

static void run_add(struct run *r, uintptr_t s, uintptr_t e, int prot)
{
	if (r->end == s && r->prot == prot) {
		r->end = e;
		return;
	}
	run_flush(r);
	r->start = s;
	r->end = e;
	r->prot = prot;
}

/* Blocks with no page the program could read a byte of again, [start, end)
 * of @a: back to NONE and their memory dropped in one call each, not one a
 * block (V8's untouched 512 MiB: the library then asks the kernel once
 * which of them hold pages, held_blocks.c).  0 or -1. */
static int drop_empty(struct hp_arena *a, uintptr_t start, uintptr_t end)
{
	return start < end && (hp_arena_protect(a, (void *)start, end - start, PROT_NONE) ||
			       hp_arena_discard(a, (void *)start, end - start))
		       ? -1
		       : 0;
}

/* The next part of [*s, e) no kernel mapping was given: *s moved to its
 * start, and its end returned (*s == e when there is none). */
static uintptr_t ungiven_next(uintptr_t *s, uintptr_t e)
{
	uintptr_t gs, ge;
	bool found;
	while ((found = given_next(*s, &gs, &ge)) && gs <= *s)
		*s = ge;
	if (*s >= e) {
		*s = e;
		return e;
	}
	return found && gs < e ? gs : e;
}

/* Pages of [s, e) in no region: @gap, but for the parts given to kernel
 * mappings, which are the kernel's and left alone.  Whether any got it. */
static bool gap_add(struct run *run, uintptr_t s, uintptr_t e, int gap)
{
	bool any = false;
	for (uintptr_t to; (to = ungiven_next(&s, e)) > s; s = to) {
		run_add(run, s, to, gap);
		any = true;
	}
	return any;
}

/* The protection @reg's pages get: the program's, but RWX for RW and RX in
 * rwx mode when the range was relaxed (a fixed range: placement.c). */
static int prot_of(const struct region *reg)
{
	return reg->relaxed && hp_place_stays_rwx(reg->prot) ? PROTS : reg->prot;
}

/* Make @addr a region boundary if the code range region that goes across
 * it is stale (@stale), or PROT_NONE and holding bytes (what
 * code_range_discard() marks stale).  Left whole if there is no memory
 * for it. */
static void split_across(uintptr_t addr, bool stale)
{
	const struct region *reg = region_at(region_find(addr));
	if (reg && reg->start < addr && reg->end > addr && reg->kind == KIND_CODE_RANGE &&
	    (stale ? reg->stale : reg->prot == PROT_NONE && reg->bytes))
		(void)region_split_at(addr);
}

/* Block [lo, hi) of the allocation at @base is dropped whole: the stale
 * regions inside it are zero now, and so the part inside it of one that
 * goes on into another block (split off there), which stays stale
 * elsewhere: zeroed before it is opened, its dropped part not written
 * (zeros written there would take memory again, a huge page perhaps). */
static void stale_dropped(uintptr_t base, uintptr_t lo, uintptr_t hi)
{
	struct region *reg;
	split_across(lo, true);
	split_across(hi, true);
	for (size_t i = region_find(lo); (reg = region_at(i)) && reg->start < hi; i++)
		if (reg->base == base && reg->start >= lo && reg->end <= hi)
			reg->stale = 0;
}

/* [s, e) of @a zeroed in place, its memory kept, whatever its protection
 * (hp_arena_write: a store where writable, else through /proc/self/mem,
 * which changes no mapping and splits no huge block); if that fails,
 * discarded (MADV_DONTNEED where not writable: a split).  0 or -1. */
static int zero_in_place(struct hp_arena *a, uintptr_t s, uintptr_t e)
{
	static const char zeros[64 * 1024];
	for (uintptr_t at = s; at < e; at += sizeof(zeros))
		if (hp_arena_write(a, (void *)at, zeros,
				   e - at < sizeof(zeros) ? e - at : sizeof(zeros)))
			return hp_arena_discard(a, (void *)s, e - s);
	return 0;
}

/* The stale regions of block [lo, hi) (the allocation at @base) that its
 * protection is about to make accessible, opened by the program or inside
 * a merged block: zeroed now, whole, while still as they were, so that no
 * thread ever reads the bytes MADV_DONTNEED took, and a huge block stays
 * huge.  One still PROT_NONE in a block not merged waits: no system call.
 * 0 or -1. */
static int stale_open(struct hp_arena *a, size_t first, uintptr_t base, uintptr_t hi, bool merge)
{
	struct region *reg;
	int rc = 0;
	for (size_t i = first; (reg = region_at(i)) && reg->start < hi; i++) {
		if (reg->base != base || !reg->stale || (prot_of(reg) == PROT_NONE && !merge))
			continue;
		if (zero_in_place(a, reg->start, reg->end))
			rc = -1;
		else
			reg->stale = 0;
	}
	return rc;
}

/* Apply the program's protections to the blocks of @any's allocation that
 * meet [from, to). */
int code_range_reconcile(const struct region *any, uintptr_t from, uintptr_t to)
{
	struct hp_arena *a = arena_at(any->arena);
	uintptr_t base = any->base, end = base + any->alloc_size;
	const struct region *reg;
	struct run run = {.a = a};
	uintptr_t empty_lo = 0, empty_hi = 0; /* the empty blocks not yet dropped */
	int rc = 0;

	for (uintptr_t bs = from & ~(BLOCK - 1); bs < to && bs < end; bs += BLOCK) {
		uintptr_t lo = bs > base ? bs : base, hi = bs + BLOCK < end ? bs + BLOCK : end;
		unsigned seen = 0;
		int u = 0;
		bool keyed = false, bytes = false, stale = false;
		uintptr_t covered = lo; /* the block's pages in regions, from lo */
		size_t first = region_find(lo);
		for (size_t i = first; (reg = region_at(i)) && reg->start < hi; i++) {
			if (reg->base != base)
				continue;
			keyed |= reg->keyed;
			bytes |= reg->bytes;
			stale |= reg->stale;
			if (reg->start <= covered && reg->end > covered)
				covered = reg->end;
			if (reg->prot != PROT_NONE) {
				seen |= 1u << prot_of(reg);
				u |= prot_of(reg);
			}
		}
		/* A block holds a kernel mapping when some page of it in no
		 * region is given: one whose every page is in a region holds
		 * none, whatever the rest of the allocation holds. */
		bool block_tainted = covered < hi && given_meets(lo, hi);
		if (!seen && !keyed && !bytes && !block_tainted) {
			/* No page the program could read a byte of again (none
			 * accessible, none written since its last discard): the
			 * whole block back to NONE and its memory dropped at once,
			 * no split.  V8 frees its code pages so at exit: each made
			 * NONE, then MADV_DONTNEED; the block goes with the last
			 * one's MADV_DONTNEED, which discarding the page alone, in
			 * a block still huge, split (12 splits a node-bigcode run
			 * whose builtins V8 had mapped into its range). */
			if (empty_hi != lo) { /* not contiguous: drop what was gathered */
				rc |= drop_empty(a, empty_lo, empty_hi);
				empty_lo = lo;
			}
			empty_hi = hi;
			if (stale)
				stale_dropped(base, lo, hi);
			continue;
		}
		bool exact = preload_opt.flip == HP_PRELOAD_FLIP_EXACT;
		bool merge = !exact && !keyed && (u & PROT_EXEC) && (seen & (1u << u));
		/* Pages in no region: the merged protection; in a block not
		 * merged (a W^X program writing a page: RW and RX), the union
		 * without write when the program has that in the block, so that
		 * they do not flip between it and NONE with every write (the
		 * part of a fixed range's first block below the range: 2 more
		 * mprotect calls a piece of code YJIT writes).  Never writable,
		 * executable only where the program has executable pages. */
		int gap =
			merge ? u
			: !exact && !keyed && (u & PROT_EXEC) && (seen & (1u << (u & ~PROT_WRITE)))
				? u & ~PROT_WRITE
				: PROT_NONE;
		if (stale) /* before the block's protection opens them */
			rc |= stale_open(a, first, base, hi, merge);
		bool relaxed = false;
		uintptr_t at = lo;
		for (size_t i = first; at < hi; i++) {
			reg = region_at(i);
			bool in = reg && reg->start < hi;
			if (in && reg->base != base)
				continue;
			uintptr_t s = in ? (reg->start > lo ? reg->start : lo) : hi;
			if (s > at) /* pages in no region */
				relaxed |= gap_add(&run, at, s, gap) && gap != PROT_NONE;
			if (!in)
				break;
			uintptr_t e = reg->end < hi ? reg->end : hi;
			int want = merge ? u : prot_of(reg);
			run_add(&run, s, e, want);
			relaxed |= want != prot_of(reg);
			at = e;
		}
		if (relaxed)
			preload_counts.code_range_merged++;
	}
	run_flush(&run);
	rc |= run.rc | drop_empty(a, empty_lo, empty_hi);
	return rc ? -1 : 0;
}

int code_range_reconcile_range(uintptr_t start, uintptr_t end)
{
	uintptr_t done = start; /* blocks before this are done */
	const struct region *at;
	int rc = 0;
	for (size_t i = region_find(start); (at = region_at(i)) && at->start < end; i++) {
		struct region reg = *at;
		uintptr_t from = reg.start > done ? reg.start : done,
			  to = reg.end < end ? reg.end : end;
		if (reg.kind != KIND_CODE_RANGE || from >= to)
			continue;
		rc |= code_range_reconcile(&reg, from, to);
		done = ((to - 1) & ~(BLOCK - 1)) + BLOCK;
	}
	return rc;
}

void code_range_changed_note(struct code_range_changed *c, const struct region *reg)
{
	int last = c->n - 1;
	/* The same block as the last span's end (or the next), or no room. */
	if (c->n &&
	    (reg->start <= ((c->hi[last] + BLOCK - 1) & ~(BLOCK - 1)) || c->n == CHANGED_SPANS)) {
		c->hi[last] = reg->end > c->hi[last] ? reg->end : c->hi[last];
		return;
	}
	c->lo[c->n] = reg->start;
	c->hi[c->n++] = reg->end;
}

/* Can @b be merged into @a, just below it? */
static bool mergeable(const struct region *a, const struct region *b)
{
	return a->kind == KIND_CODE_RANGE && a->end == b->start && a->base == b->base &&
	       a->alloc_size == b->alloc_size && a->arena == b->arena && a->kind == b->kind &&
	       a->prot == b->prot && a->relaxed == b->relaxed && a->own_block == b->own_block &&
	       a->keyed == b->keyed && a->tainted == b->tainted && a->bytes == b->bytes &&
	       a->stale == b->stale;
}

/* Merge the code range regions around [lo, hi) that are alike and meet, as
 * the kernel merges VMAs: a page flipped RW and back would leave three
 * regions where there was one, and YJIT's 447 pages, 900 regions that each
 * reconcile of their block walks. */
static void coalesce(uintptr_t lo, uintptr_t hi)
{
	size_t i = region_find(lo);
	i = i ? i - 1 : 0;
	struct region *r, *next;
	while ((r = region_at(i)) && r->start <= hi && (next = region_at(i + 1))) {
		if (mergeable(r, next)) {
			r->end = next->end;
			region_delete(i + 1);
		} else {
			i++;
		}
	}
}

int code_range_changed_apply(const struct code_range_changed *c)
{
	int rc = 0;
	for (int i = 0; i < c->n; i++)
		rc |= code_range_reconcile_range(c->lo[i], c->hi[i]);
	for (int i = 0; i < c->n; i++)
		coalesce(c->lo[i], c->hi[i]);
	return rc;
}

int code_range_discard(uintptr_t start, uintptr_t end, bool none_only)
{
	struct code_range_changed changed = {0};
	struct region *reg;
	split_across(start, false);
	split_across(end, false);
	for (size_t i = region_find(start); (reg = region_at(i)) && reg->start < end; i++) {
		if (reg->kind != KIND_CODE_RANGE)
			continue;
		uintptr_t s = reg->start > start ? reg->start : start;
		uintptr_t e = reg->end < end ? reg->end : end;
		if (reg->prot == PROT_NONE && !reg->bytes)
			continue; /* nothing to read: never written since its last discard */
		if (reg->prot != PROT_NONE && none_only)
			continue; /* MADV_FREE: may keep its bytes */
		if (reg->prot != PROT_NONE || s > reg->start || e < reg->end) {
			/* Accessible (or not split off: no memory for a region):
			 * zeroed now, as the kernel would. */
			zero(reg, s, e - s);
			continue;
		}
		/* PROT_NONE: no bytes left to read.  Those it had are the
		 * memory's until its block is dropped or the pages opened. */
		reg->bytes = 0;
		reg->stale = 1;
		code_range_changed_note(&changed, reg);
	}
	return code_range_changed_apply(&changed);
}

void code_range_keep(uintptr_t start, uintptr_t end)
{
	struct region *reg;
	(void)region_split_at(start); /* else the whole region holds them */
	(void)region_split_at(end);
	for (size_t i = region_find(start); (reg = region_at(i)) && reg->start < end; i++)
		if (reg->kind == KIND_CODE_RANGE)
			reg->bytes = 1;
	coalesce(start, end);
}

/* The code ranges a munmap cuts into, kept from before the cut to after. */
#define UNMAP_CODE_RANGES 16
static struct region unmapped[UNMAP_CODE_RANGES];
static int nunmapped;

void code_range_unmap_begin(uintptr_t start, uintptr_t end)
{
	const struct region *reg;
	nunmapped = 0;
	for (size_t i = region_find(start); (reg = region_at(i)) && reg->start < end; i++) {
		if (reg->kind != KIND_CODE_RANGE)
			continue;
		bool known = false;
		for (int k = 0; k < nunmapped; k++)
			known |= unmapped[k].base == reg->base;
		if (!known && nunmapped < UNMAP_CODE_RANGES)
			unmapped[nunmapped++] = *reg;
	}
}

/* Discard [s, e) of @a but its given parts (the kernel's mappings). */
static void discard_ungiven(struct hp_arena *a, uintptr_t s, uintptr_t e)
{
	for (uintptr_t to; (to = ungiven_next(&s, e)) > s; s = to)
		hp_arena_discard(a, (void *)s, to - s);
}

/* Pages unmapped from a code range that lives on: their blocks are
 * reconciled, and the pages dropped (or zeroed, in a merged block), in a
 * tainted range too: only the given parts are the kernel's to unmap. */
void code_range_unmap_end(uintptr_t start, uintptr_t end)
{
	for (int k = 0; k < nunmapped; k++) {
		struct region reg = unmapped[k];
		if (!alloc_in_use(&reg))
			continue; /* released whole */
		uintptr_t s = start > reg.base ? start : reg.base;
		uintptr_t e = end < reg.base + reg.alloc_size ? end : reg.base + reg.alloc_size;
		code_range_reconcile(&reg, s, e);
		discard_ungiven(arena_at(reg.arena), s, e);
	}
}
