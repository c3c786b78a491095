/* SPDX-License-Identifier: MIT */
/*
 * code_store.h - the in-line stores of packed code (code.c): the trap fill
 * of a freed chunk and hp_write's copy of up to 64 bytes, through the
 * alias, without a call of memset or memcpy (either call costs about as
 * much as the rest of a free or a patch).
 */
#ifndef HP_CODE_STORE_H
#define HP_CODE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "types.h"

/* Trap bytes over @size (a multiple of 64, not 0) bytes at @dst, 64-byte
 * aligned: vector stores in line, a few cycles where a call of memset
 * costs as much as a mimalloc free (not turned back into that call).
 * @wide (a constant): 32-byte stores, for a caller built for AVX2
 * (code_calls.c's hp_code_free_avx2); else 16-byte ones (a 32-byte vector
 * without AVX is stored as eight 8-byte words, not two SSE stores).
 *
 * The 32-byte form is written in assembly on x86-64: a 32-byte vector
 * value in C makes GCC give its caller a frame (push, mov, pop of rbp: it
 * plans for a 32-byte aligned stack slot, then needs none): three more
 * memory operations on every free (docs/design.md, "Packed code").
 * The traps are loaded from a constant, not broadcast from a register
 * stored on the stack; the asm clears the upper halves (vzeroupper) as a
 * compiler does before returning to SSE code. */
static inline __attribute__((always_inline, optimize("no-tree-loop-distribute-patterns"))) void
fill_traps_as(uintptr_t dst, size_t size, bool wide)
{
	typedef uint64_t v4 __attribute__((vector_size(32), aligned(32)));
	typedef uint64_t v2 __attribute__((vector_size(16), aligned(16)));
	const uint64_t t = 0x0101010101010101ULL * HP_TRAP_BYTE;
	if (wide) {
#ifdef __x86_64__
		static const v4 traps = {t, t, t, t};
		uintptr_t end = dst + size;
		char(*bytes)[size] = (char(*)[size])dst; /* what the asm writes */
		__asm__("vmovdqa %[traps], %%ymm0\n"
			"1:\n\t"
			"vmovdqa %%ymm0, (%[q])\n\t"
			"vmovdqa %%ymm0, 32(%[q])\n\t"
			"add $64, %[q]\n\t"
			"cmp %[end], %[q]\n\t"
			"jb 1b\n\t"
			"vzeroupper"
			: [q] "+r"(dst), "=m"(*bytes)
			: [traps] "m"(traps), [end] "r"(end)
			: "xmm0", "cc");
#else
		const v4 traps = {t, t, t, t};
		v4 *q = (v4 *)dst, *end = (v4 *)(dst + size);
		do { /* size > 0: no test before the first 64 bytes */
			q[0] = traps;
			q[1] = traps;
		} while ((q += 2) < end);
#endif
	} else {
		const v2 traps = {t, t};
		v2 *q = (v2 *)dst, *end = (v2 *)(dst + size);
		do {
			q[0] = traps;
			q[1] = traps;
			q[2] = traps;
			q[3] = traps;
		} while ((q += 4) < end);
	}
}

/* fill_traps_as for a caller built for any x86-64. */
static inline __attribute__((always_inline)) void fill_traps(uintptr_t dst, size_t size)
{
	fill_traps_as(dst, size, false);
}

/* Copy @size bytes, at most 64, from @src to @dst: 16-byte moves in line
 * (no loop: the first and last 32 overlapping), not a call of memcpy,
 * which costs more than the rest of a patch's hp_write. */
static inline __attribute__((always_inline)) void copy_small(uintptr_t dst, const void *src,
							     size_t size)
{
	typedef uint64_t v2 __attribute__((vector_size(16), aligned(1), may_alias));
	const char *s = src;
	char *d = (char *)dst;
	if (size < 16) {
		memcpy(d, s, size);
		return;
	}
	/* Under 32: the first and last 16; else the first and last 32. */
	size_t half = size < 32 ? 0 : 16;
	v2 a0 = *(const v2 *)s, a1 = *(const v2 *)(s + half);
	v2 b0 = *(const v2 *)(s + size - 16 - half), b1 = *(const v2 *)(s + size - 16);
	*(v2 *)d = a0;
	*(v2 *)(d + half) = a1;
	*(v2 *)(d + size - 16 - half) = b0;
	*(v2 *)(d + size - 16) = b1;
}

#endif /* HP_CODE_STORE_H */
