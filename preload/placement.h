/* SPDX-License-Identifier: MIT */
/*
 * placement.h - where a JIT's mapping goes in hugeperm: one rule, a pure
 * function (no state, no calls), compiled into the preload (serve.c,
 * hooks.c) and into the simulator (sim/policy_hugeperm.c), so that the
 * simulator's `hugeperm` policies place a trace's mappings exactly as the
 * preload places the program's.  tests/placement.c holds them to it.
 *
 * Two steps: which kind of JIT mapping a request is (hp_place_kind), and,
 * for that kind under a flip mode, the class and size to allocate and
 * whether the mapping has a block of its own (hp_place).
 */
#ifndef HP_PLACEMENT_H
#define HP_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

/* How the W<->X flips of a JIT's code areas are done (HUGEPERM_PRELOAD_FLIP). */
enum hp_preload_flip {
	HP_PRELOAD_FLIP_BLOCK, /* an area has a block of its own; flips take the block */
	HP_PRELOAD_FLIP_EXACT, /* areas share RX blocks; flips split, then collapse */
	HP_PRELOAD_FLIP_RWX,   /* areas are RWX; W<->X flips change nothing */
	HP_PRELOAD_NFLIP,
};

/* The kinds of mapping the preload serves. */
enum hp_place_kind {
	KIND_EXEC,	 /* executable when mapped (PCRE2's sljit, PyPy, .NET) */
	KIND_AREA,	 /* a hinted RW (or R) area of up to a block: JIT code to be */
	KIND_CODE_RANGE, /* a large PROT_NONE|MAP_NORESERVE range committed in place
			  * (V8's code range, HotSpot's code cache), or a large
			  * executable range at the program's own address
			  * (MAP_FIXED_NOREPLACE: Ruby's YJIT; hp_place_fixed_kind) */
};

/* What the preload is set to serve (its options; the simulator uses the
 * defaults, hp_place_defaults). */
struct hp_place_options {
	bool exec, areas, code_ranges; /* HUGEPERM_PRELOAD_SERVE */
	size_t max_bytes;	       /* HUGEPERM_PRELOAD_MAX_MB */
	size_t code_range_min;	       /* HUGEPERM_PRELOAD_RESERVE_MIN_MB */
	bool fixed; /* "fixed" in HUGEPERM_PRELOAD_SERVE: MAP_FIXED_NOREPLACE code
		     * ranges, off by default (YJIT's page flips make it slower) */
};

#define HP_PLACE_AREA_ALIGN	(64UL << 10) /* a hint this aligned asks for code memory */
#define HP_PLACE_CODE_RANGE_MAX (1UL << 30)  /* the largest hugeperm allocation */

/* Where one mapping goes. */
struct hp_placement {
	int cls;	/* the class, with HP_HOME, to allocate with */
	size_t size;	/* bytes to allocate */
	bool own_block; /* a block of its own: a flip of the whole area is
			 * applied to the whole block (one PMD, no split) */
	bool relaxed;	/* rwx mode: RW<->RX flips stay RWX */
};

extern const struct hp_place_options hp_place_defaults;

/*
 * The kind of an anonymous private mapping of @len bytes and @prot (no
 * MAP_FIXED, MAP_HUGETLB, MAP_STACK...: the caller checks those), asked with
 * a hint aligned to HP_PLACE_AREA_ALIGN (@area_hint) and with MAP_NORESERVE
 * (@noreserve); -1 for one the preload leaves to the kernel.
 */
int hp_place_kind(const struct hp_place_options *o, size_t len, int prot, bool area_hint,
		  bool noreserve);

/*
 * The kind of an anonymous private mapping of @len bytes and @prot asked
 * for with MAP_FIXED_NOREPLACE: an executable one of a block or more (up to
 * HP_PLACE_CODE_RANGE_MAX) is a code range at the program's address when
 * @o says fixed (not by default); -1 for one the preload leaves to the kernel.  Its size bound is
 * not max_bytes: the program chose the address, and its pages are committed lazily.
 */
int hp_place_fixed_kind(const struct hp_place_options *o, size_t len, int prot);

/* Where a mapping of @kind, @len bytes (page-aligned) and @prot goes under
 * flip mode @flip. */
struct hp_placement hp_place(int kind, int flip, int prot, size_t len);

/* Does a relaxed mapping (rwx mode) stay RWX when asked for @prot?  True
 * for every readable protection with W or X: RW <-> RX flips change nothing. */
bool hp_place_stays_rwx(int prot);

/*
 * The one protection a block of packed areas (block mode) takes when its
 * areas ask for the protections in @present (bit p set: some area asks for
 * protection p, 0..7), or -1 when the block must be protected exactly,
 * page by page.  One protection asked: that one.  RWX with anything else:
 * exact (no page is made writable and executable unless asked).  The
 * union of what is asked, when it was asked for itself (RX with R or
 * NONE: RX).  RW with RX, the writer wins: RW, the RX areas not
 * executable while an area of theirs is written (W^X kept; the areas of a
 * block are one thread's, docs/preload.md).  Else exact.
 */
int hp_place_pack_prot(unsigned present);

/* "block", "exact", "rwx"; NULL for another value. */
const char *hp_flip_name(int flip);
/* The flip mode named @name, or -1. */
int hp_flip_parse(const char *name);

#endif
