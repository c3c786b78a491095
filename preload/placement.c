/* SPDX-License-Identifier: MIT */
/*
 * placement.c - the placement rule for a JIT's mappings: which requests
 * the preload serves, and with what class and size.  One rule, compiled
 * into the preload and into the simulator (placement.h), so the two
 * cannot drift apart.  Pure: it reads its arguments only.
 *
 * The rule:
 *   exec        mapped with its own protection, packed into blocks of
 *               that class (RWX included: the program asked for it);
 *   area        block mode: a block's worth, with the program's
 *               protection, so that a flip of the whole area is a
 *               whole-PMD mprotect (the preload packs a thread's areas
 *               into shared blocks, pack.c; their block's protection is
 *               hp_place_pack_prot's);
 *               exact mode: placed in an RX-home block (HP_HOME(RX)) with
 *               the program's protection, so that once it turns RX it
 *               sits with the code (an area that is RX already is RX);
 *               rwx mode: RWX, and its RW <-> RX flips change nothing;
 *   code range  PROT_NONE, committed lazily by the library (reads zero);
 *               one asked for executable at a fixed address (YJIT) is
 *               relaxed in rwx mode: its RW <-> RX flips stay RWX.
 */
#include <string.h>
#include <sys/mman.h>

#include <hugeperm.h>

#include "placement.h"

#define PROTS (PROT_READ | PROT_WRITE | PROT_EXEC)
#define RX    (PROT_READ | PROT_EXEC)
#define BLOCK (2UL << 20)

const struct hp_place_options hp_place_defaults = {
	.exec = true,
	.areas = true,
	.code_ranges = true,
	.max_bytes = 64UL << 20,
	.code_range_min = 128UL << 20,
	.fixed = false,
};

int hp_place_kind(const struct hp_place_options *o, size_t len, int prot, bool area_hint,
		  bool noreserve)
{
	/* A large PROT_NONE|MAP_NORESERVE range: a code range to commit in
	 * place.  Big enough to be a JIT's code range (V8 512 MiB, HotSpot
	 * 240 MiB), not a heap cage or class space (1 GiB and more). */
	if (prot == PROT_NONE && noreserve && o->code_ranges && len >= o->code_range_min &&
	    len <= HP_PLACE_CODE_RANGE_MAX)
		return KIND_CODE_RANGE;
	if ((prot & ~PROTS) || prot == PROT_NONE || len == 0 || len > o->max_bytes)
		return -1;
	if ((prot & PROT_EXEC) && o->exec)
		return KIND_EXEC;
	/* An area is at least as large as its hint's alignment: LuaJIT's
	 * mcode areas are 64 KiB (sizemcode's default).  A 4 KiB section
	 * mapped next to the last one (LLVM's lli) has a 64 KiB-aligned hint
	 * one time in 16, and is not a code area. */
	if (o->areas && area_hint && len >= HP_PLACE_AREA_ALIGN && len <= BLOCK &&
	    !(prot & PROT_EXEC))
		return KIND_AREA;
	return -1;
}

int hp_place_fixed_kind(const struct hp_place_options *o, size_t len, int prot)
{
	if (!o->fixed || (prot & ~PROTS) || !(prot & PROT_EXEC) || len < BLOCK ||
	    len > HP_PLACE_CODE_RANGE_MAX)
		return -1;
	return KIND_CODE_RANGE;
}

struct hp_placement hp_place(int kind, int flip, int prot, size_t len)
{
	struct hp_placement pl = {.cls = prot, .size = len};

	if (kind == KIND_CODE_RANGE) {
		pl.cls = PROT_NONE; /* lazily committed by the library: reads zero */
		pl.relaxed = flip == HP_PRELOAD_FLIP_RWX && prot != PROT_NONE;
	} else if (kind == KIND_AREA) {
		if (flip == HP_PRELOAD_FLIP_BLOCK) {
			pl.size = (len + BLOCK - 1) & ~(BLOCK - 1);
			pl.own_block = true;
		} else if (flip == HP_PRELOAD_FLIP_EXACT) {
			pl.cls = prot == RX ? RX : prot | HP_HOME(RX);
		} else {
			pl.cls = PROTS;
			pl.relaxed = true;
		}
	}
	return pl;
}

int hp_place_pack_prot(unsigned present)
{
	unsigned u = 0;
	present &= 0xff;
	if (!present)
		return -1;
	for (unsigned p = 0; p <= PROTS; p++)
		if (present & (1u << p))
			u |= p;
	if (present == 1u << u)
		return (int)u; /* one protection */
	if (present & (1u << PROTS))
		return -1; /* RWX beside others: never given to pages that did not ask */
	if (present & (1u << u))
		return (int)u; /* the union was asked for: RX beside R, NONE */
	if ((u & (PROT_WRITE | PROT_EXEC)) == (PROT_WRITE | PROT_EXEC))
		return (int)(u & ~(unsigned)PROT_EXEC); /* the writer wins: W^X kept */
	return -1;
}

bool hp_place_stays_rwx(int prot)
{
	return (prot & PROT_READ) && (prot & (PROT_WRITE | PROT_EXEC));
}

static const char *const flip_names[HP_PRELOAD_NFLIP] = {
	[HP_PRELOAD_FLIP_BLOCK] = "block",
	[HP_PRELOAD_FLIP_EXACT] = "exact",
	[HP_PRELOAD_FLIP_RWX] = "rwx",
};

const char *hp_flip_name(int flip)
{
	return flip >= 0 && flip < HP_PRELOAD_NFLIP ? flip_names[flip] : NULL;
}

int hp_flip_parse(const char *name)
{
	for (int i = 0; i < HP_PRELOAD_NFLIP; i++)
		if (name && !strcmp(name, flip_names[i]))
			return i;
	return -1;
}
