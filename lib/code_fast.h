/* SPDX-License-Identifier: MIT */
/*
 * code_fast.h - the packed code's common calls (code.c), in line in the
 * public calls (api.c): an allocation from the page the thread allocates
 * from, a free into a page the thread holds, a write into live code of
 * the thread's last block.  Each is a short leaf: loads, plain stores, no
 * atomic read-modify-write, no lock, no call; anything else (a page to
 * find, full or emptied, a free by another thread, another block, a store
 * the OS layer must make) answers "not done" and the caller takes code.c's
 * full path, which handles every case.
 *
 * Statistics cost the common calls one counter: allocations (and writes
 * through the alias).  Frees, bytes in use and bytes lost to rounding are
 * read off the pages' live words and requested sizes at stats time.
 */
#ifndef HP_CODE_FAST_H
#define HP_CODE_FAST_H

#include "code_store.h"
#include "internal.h"

/* The class of an allocation of g granules (g = 1 to 32). */
extern const uint8_t hp_code_cls_of[33] __attribute__((visibility("hidden")));

/* Is the first of the thread's cache slots @a's (its cache then
 * hp_tls[0].tc, never NULL)?  @forever: @a is never destroyed (the
 * default arena; a constant at the call), so a slot naming it is its own:
 * no id to compare. */
static inline __attribute__((always_inline)) bool hp_code_slot0_is(struct hp_arena *a, bool forever)
{
	return hp_tls[0].arena == a && (forever || hp_tls[0].id == a->id);
}

/* The chunk of @p that holds page offset @off. */
static inline unsigned hp_code_chunk_of(const struct hp_code_page *p, unsigned off)
{
	return (unsigned)(((uint64_t)off * p->inv) >> 24);
}

/* Is the page offset whose product with the page's inv is @at the start
 * of a chunk?  (The free's test, with no multiply by the size.)  With S
 * the chunk size (64 to 2048) and inv = 2^24 / S + 1 (> 8192), S * inv is
 * 2^24 + e with 0 < e <= S.  An offset i * S + r (r < S, under 4096)
 * times inv is i * 2^24 + i * e + r * inv: for r = 0 its low 24 bits are
 * i * e (< 4096 < inv), and @at >> 24 is i; for r > 0 they are at least
 * inv, and stay under 2^24 ((i + 1) * e <= 4095 + S < inv).  The unit
 * test code.t checks every offset of every class. */
static inline bool hp_code_at_start(uint32_t at, uint32_t inv)
{
	return (at & ((1u << 24) - 1)) < inv;
}

/* Add @d to a counter written by one thread only (read by hp_stats). */
static inline void hp_code_count(uint64_t *c, uint64_t d)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

/* The holder @tc of @p hands out chunk @i (free in @live) for @size
 * bytes: plain stores, only the holder writes live and req. */
static inline __attribute__((always_inline)) void *hp_code_hand_out(struct hp_tcache *tc,
								    struct hp_code_page *p,
								    unsigned i, uint64_t live,
								    size_t size)
{
	__atomic_store_n(&p->req[i], (uint16_t)size, __ATOMIC_RELAXED);
	__atomic_store_n(&p->live, live | 1ULL << i, __ATOMIC_RELAXED);
	hp_code_count(&tc->code_n.allocs, 1);
	uintptr_t r = p->addr + i * p->size;
	if (!r) /* never (a page's address): the caller's test of NULL goes */
		__builtin_unreachable();
	return (void *)r;
}

/* @size bytes (1 to HP_CODE_MAX_PACKED) from the page the thread's cache
 * allocates from; NULL: not done (no cache, no page, the page looks full,
 * hp_trim asked for a drain): hp_code_alloc_packed. */
static inline __attribute__((always_inline)) void *hp_code_alloc_fast(struct hp_arena *a,
								      size_t size, bool forever)
{
	unsigned k = hp_code_cls_of[(size + HP_CODE_ALIGN - 1) / HP_CODE_ALIGN];
	if (__builtin_expect(!hp_code_slot0_is(a, forever), 0))
		return NULL;
	struct hp_tcache *tc = hp_tls[0].tc;
	if (__builtin_expect(tc->epoch != __atomic_load_n(&a->trim_epoch, __ATOMIC_RELAXED), 0))
		return NULL;
	struct hp_code_page *p = tc->code_cur[k];
	if (__builtin_expect(!p, 0))
		return NULL;
	uint64_t live = __atomic_load_n(&p->live, __ATOMIC_RELAXED);
	uint64_t free = ~live & p->full;
	if (__builtin_expect(!free, 0))
		return NULL;
	return hp_code_hand_out(tc, p, (unsigned)__builtin_ctzll(free), live, size);
}

/* Free the chunk at @addr if it is the start of a live chunk of a page of
 * the thread's last block that the thread's cache of @a holds, other
 * chunks of it live, not on the full list, stored through in line: the
 * trap fill, then the chunk's bit cleared.  false: not done (nothing
 * changed): hp_code_free_packed.  Written so that few values are live at
 * once: the common free saves no registers.  @wide: fill_traps_as's. */
static inline __attribute__((always_inline)) bool
hp_code_free_fast(struct hp_arena *a, uintptr_t addr, bool forever, bool wide)
{
	if (__builtin_expect(addr >> HP_BLOCK_SHIFT != hp_code_last.blk, 0))
		return false;
	struct hp_code_page *p =
		&hp_code_last.meta->page[(addr >> HP_PAGE_SHIFT) & (HP_BLOCK_PAGES - 1)];
	/* The holder alone hands a page out or gives it up, and only a cache
	 * of the page's arena holds it: when the holder is ours, the page is
	 * on, @a's, and stays so under us. */
	if (__builtin_expect(!hp_code_slot0_is(a, forever) ||
				     __atomic_load_n(&p->holder, __ATOMIC_RELAXED) != hp_tls[0].tc,
			     0))
		return false;
	unsigned off = (unsigned)(addr & (HP_PAGE_SIZE - 1));
	uint32_t inv = p->inv, at = off * inv;
	if (__builtin_expect(!hp_code_at_start(at, inv) || p->inline_to != a, 0))
		return false;
	uint64_t x = __atomic_load_n(&p->xfree, __ATOMIC_ACQUIRE);
	uint64_t live = __atomic_load_n(&p->live, __ATOMIC_RELAXED);
	uint64_t bit = 1ULL << (at >> 24 & 63), mine = live & ~x;
	if (__builtin_expect((x & HP_CODE_FULL) || !(mine & bit) || !(mine & ~bit), 0))
		return false;
	/* size and alias hold while the page is ours: read after the checks,
	 * so that the checks take few registers (none saved). */
	fill_traps_as(p->alias + off, p->size, wide);
	__atomic_store_n(&p->live, live & ~bit, __ATOMIC_RELAXED);
	return true;
}

/* hp_write of @size bytes (at most 64) from @src to @dst inside a live
 * chunk of @a's code in the thread's last block, through the alias in
 * line, counted in the thread's cache; false: not done (nothing
 * changed): hp_code_write. */
static inline __attribute__((always_inline)) bool
hp_code_write_fast(struct hp_arena *a, uintptr_t dst, const void *src, size_t size, bool forever)
{
	if (__builtin_expect(dst >> HP_BLOCK_SHIFT != hp_code_last.blk || size > 64, 0))
		return false;
	struct hp_code_page *p =
		&hp_code_last.meta->page[(dst >> HP_PAGE_SHIFT) & (HP_BLOCK_PAGES - 1)];
	/* inline_to: on, @a's, stored through in line. */
	if (__builtin_expect(!hp_code_slot0_is(a, forever) ||
				     __atomic_load_n(&p->inline_to, __ATOMIC_ACQUIRE) != a,
			     0))
		return false;
	unsigned off = (unsigned)(dst & (HP_PAGE_SIZE - 1));
	unsigned i = hp_code_chunk_of(p, off);
	uint64_t x = __atomic_load_n(&p->xfree, __ATOMIC_ACQUIRE);
	uint64_t in_use = __atomic_load_n(&p->live, __ATOMIC_ACQUIRE) & ~x & p->full;
	if (__builtin_expect(!(in_use >> (i & 63) & 1) || size > (i + 1) * p->size - off, 0))
		return false;
	copy_small(p->alias + off, src, size);
	/* x86 keeps instruction fetch coherent through any alias. */
	__builtin___clear_cache((char *)dst, (char *)dst + size);
	hp_code_count(&hp_tls[0].tc->code_n.writes_alias, 1);
	return true;
}

#endif /* HP_CODE_FAST_H */
