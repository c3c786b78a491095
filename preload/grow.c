/* SPDX-License-Identifier: MIT */
/*
 * grow.c - a hint that continues a kernel mapping: a heap growing, not
 * code.
 *
 * The placement rule takes a hinted RW mapping of 64 KiB to 2 MiB at a
 * 64 KiB-aligned hint for a JIT's code area (LuaJIT's mcode areas, asked
 * for at random hints near its code or just below its last area).  A
 * garbage collector's heap asks in the same shape: Boehm's collector
 * (Guile 3's, GC_unix_mmap_get_mem) and LuaJIT's own allocator without
 * GC64 ask for each new chunk at the end of the last one, and one hint in
 * sixteen is 64 KiB-aligned by chance.  Guile 3 had 4 of its heap chunks
 * served that way in tests/e2e/engines/jit.scm, each in a 2 MiB block of
 * its own (data never runs, so no area joins it): 6-8 MiB of peak RSS for
 * nothing.  A code area's hint is not the end of one of the program's
 * kernel mappings; a heap's is.  So a hint whose page below is mapped,
 * and not by hugeperm (a JIT growing its areas upwards from one of ours
 * stays served), is the kernel's.  One mincore(2) of a page, only for a
 * request the rule would serve as an area.
 *
 * A heap's first chunk may still be served (its hint aligned by chance,
 * and at no mapping's end); its next chunk then asks at the end of ours.
 * In block mode, where pack.c knows which areas ever ran, a hint at the
 * end of a served area that is writable and never ran (data) is the
 * kernel's too, so such a chain stops after one chunk: LuaJIT's
 * lua_bigcode.lua (tests/e2e/engines.sh) had 6 to 28 heap chunks served
 * in one run out of five, 2 MiB of peak RSS or more above its usual.
 *
 * mincore(2) sees pages, not VMA ends: a hint inside a kernel mapping
 * (mapped below it too) is taken for growth as well, and goes to the
 * kernel, which refuses the hint and maps elsewhere.  LuaJIT's random
 * hints land inside a mapping rarely, and it then tries its next hint.
 * (PROCMAP_QUERY would tell a VMA's end exactly; not done.)
 *
 * The decision is grow_rule.c's pure function, which the simulator calls
 * too (sim/grow_hint.c, on the address space a trace implies); here are
 * the preload's answers to what it asks: mincore(2) and hp_owns() for the
 * page below, the region table for the area that ends there.
 */
#include <stdbool.h>
#include <stdint.h>

#include "grow_rule.h"
#include "preload.h"

bool hint_grows_mapping(uintptr_t hint)
{
	struct hp_hint_below below = {0};
	unsigned char vec;
	if (hint >= 2 * PAGE) { /* mincore: 0 mapped, ENOMEM unmapped */
		below.ours = hp_owns((void *)(hint - PAGE), PAGE);
		below.mapped = below.ours || k_mincore((void *)(hint - PAGE), PAGE, &vec) == 0;
	}
	return hp_hint_grows(hint, &below, false); /* ours and packed: hint_after_data */
}

bool hint_after_data(uintptr_t hint)
{
	bool packed = preload_opt.flip == HP_PRELOAD_FLIP_BLOCK && preload_opt.pack;
	if (!packed || hint < 2 * PAGE) /* the rule says no: not worth the lookup */
		return false;
	const struct region *r = region_at(region_find(hint - PAGE));
	struct hp_hint_below below = {0};
	if (r) {
		below.mapped = below.ours = true;
		below.area_end =
			r->start < hint && r->end == hint && r->kind == KIND_AREA && r->area;
		below.ran = r->ran;
		below.writable = r->prot & PROT_WRITE;
	}
	return hp_hint_grows(hint, &below, packed);
}
