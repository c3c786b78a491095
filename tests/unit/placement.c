/* SPDX-License-Identifier: MIT */
/*
 * placement.t - the preload and the simulator place a JIT's mappings by
 * one rule.  The same trace events (a map, then a W<->X flip of the whole
 * mapping) go to the preload's placement (preload/placement.c, as serve()
 * and region_protect() use it) and to the simulator's hugeperm policy for
 * each flip mode (hugeperm-block, hugeperm-sync for exact, hugeperm-rwx),
 * and must come out the same: the class and size the library is asked
 * for, whether the mapping has a block of its own (its whole-area flip
 * takes the block) and whether its flips stay RWX.  (A PROT_NONE range
 * gets no flip: the preload commits a code range by reconciling it, which
 * the simulator does not model.  In block mode the simulator, as the
 * preload, holds it for the kernel until it is made executable: it is
 * compared as the flip to RX places it.)  And the grow rule both ask, on
 * what is below a hint (grow_rule.c).
 *
 * The simulator's side is observed, not asked: hp_arena_alloc and
 * hp_arena_protect are wrapped (-Wl,--wrap), so what is compared is what
 * the policy really asks of the library.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <hugeperm.h>

#include "grow_rule.h"
#include "placement.h"
#include "sim_internal.h"
#include "tap.h"

#define RW  (PROT_READ | PROT_WRITE)
#define RX  (PROT_READ | PROT_EXEC)
#define RWX (PROT_READ | PROT_WRITE | PROT_EXEC)
#define KIB (1UL << 10)
#define MIB (1UL << 20)

/* The last call the policy made of each kind. */
static struct {
	size_t size;
	int cls;
	int n;
} last_alloc, last_protect;

void *__real_hp_arena_alloc(struct hp_arena *a, size_t size, int prot);
int __real_hp_arena_protect(struct hp_arena *a, void *p, size_t size, int prot);
void *__wrap_hp_arena_alloc(struct hp_arena *a, size_t size, int prot);
int __wrap_hp_arena_protect(struct hp_arena *a, void *p, size_t size, int prot);

void *__wrap_hp_arena_alloc(struct hp_arena *a, size_t size, int prot)
{
	last_alloc.size = size;
	last_alloc.cls = prot;
	last_alloc.n++;
	return __real_hp_arena_alloc(a, size, prot);
}

int __wrap_hp_arena_protect(struct hp_arena *a, void *p, size_t size, int prot)
{
	last_protect.size = size;
	last_protect.cls = prot;
	last_protect.n++;
	return __real_hp_arena_protect(a, p, size, prot);
}

/* One mapping a JIT makes, as the trace has it. */
struct event_case {
	const char *what;
	int prot;
	size_t len;
	int flags; /* HP_TF_* */
};

static const struct event_case cases[] = {
	{"a hinted RW area of 64 KiB (LuaJIT's mcode)", RW, 64 * KIB, HP_TF_HINT},
	{"a hinted RW area of 2 MiB", RW, 2 * MIB, HP_TF_HINT},
	{"a hinted read-only area", PROT_READ, 64 * KIB, HP_TF_HINT},
	{"a hinted RW section of 4 KiB (lli's, hint aligned by chance)", RW, 4 * KIB, HP_TF_HINT},
	{"a hinted write-only area", PROT_WRITE, 64 * KIB, HP_TF_HINT},
	{"an RWX mapping (sljit)", RWX, 64 * KIB, 0},
	{"a hinted RWX mapping", RWX, 256 * KIB, HP_TF_HINT},
	{"a hinted RX mapping", RX, 64 * KIB, HP_TF_HINT},
	{"an RW mapping without a hint", RW, 64 * KIB, 0},
	{"a hinted RW mapping over 2 MiB", RW, 4 * MIB, HP_TF_HINT},
	{"an RWX mapping over HUGEPERM_PRELOAD_MAX_MB", RWX, 80 * MIB, 0},
	{"a PROT_NONE code range (V8's, 512 MiB)", PROT_NONE, 512 * MIB, HP_TF_NORESERVE},
	{"a PROT_NONE code range (HotSpot's, 240 MiB, hinted)", PROT_NONE, 240 * MIB,
	 HP_TF_NORESERVE | HP_TF_HINT},
	{"a PROT_NONE range under the code-range minimum", PROT_NONE, 64 * MIB, HP_TF_NORESERVE},
	/* MAP_FIXED_NOREPLACE: an executable range at the program's address. */
	{"a fixed RX range (YJIT's, 256 MiB)", RX, 256 * MIB, HP_TF_FIXED | HP_TF_NOREPLACE},
	{"a fixed RWX range of 4 MiB", RWX, 4 * MIB, HP_TF_FIXED | HP_TF_NOREPLACE},
	{"a fixed RX range under a block", RX, 64 * KIB, HP_TF_FIXED | HP_TF_NOREPLACE},
	{"a fixed RW range (not code)", RW, 4 * MIB, HP_TF_FIXED | HP_TF_NOREPLACE},
	{"a PROT_NONE range without MAP_NORESERVE", PROT_NONE, 512 * MIB, 0},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const struct {
	int flip;
	const struct sim_policy *pol;
} modes[] = {
	{HP_PRELOAD_FLIP_BLOCK, &sim_hugeperm_block},
	{HP_PRELOAD_FLIP_EXACT, &sim_hugeperm_sync},
	{HP_PRELOAD_FLIP_RWX, &sim_hugeperm_rwx},
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

/* What the preload does with the events: where it places the mapping, and
 * what a flip of the whole of it asks of the library (region_protect). */
struct outcome {
	bool served; /* the preload serves it (else the kernel does) */
	int cls;     /* hp_arena_alloc's class */
	size_t size; /* ... and size */
	int flip_cls;
	size_t flip_size;
};

static int flip_to(int prot)
{
	return (prot & PROT_EXEC) ? RW : RX;
}

static struct outcome preload_side(int flip, const struct event_case *c)
{
	struct outcome o = {0};
	int kind = c->flags & HP_TF_NOREPLACE
			   ? hp_place_fixed_kind(&hp_place_defaults, c->len, c->prot)
			   : hp_place_kind(&hp_place_defaults, c->len, c->prot,
					   c->flags & HP_TF_HINT, c->flags & HP_TF_NORESERVE);
	o.served = kind >= 0;
	if (!o.served)
		return o;
	struct hp_placement pl = hp_place(kind, flip, c->prot, c->len);
	o.cls = pl.cls;
	o.size = pl.size;
	int to = flip_to(c->prot);
	o.flip_cls = pl.relaxed && hp_place_stays_rwx(to) ? RWX : to;
	o.flip_size = pl.own_block ? pl.size : c->len;
	return o;
}

static struct outcome sim_side(const struct sim_policy *pol, const struct event_case *c,
			       uint64_t page)
{
	struct outcome o = {0};
	struct sim *s = calloc(1, sizeof(*s));
	sim_mm_init(&s->mm, true);
	s->pol = pol;
	s->pp = pol->create(s);
	struct sim_alloc a = {
		.page = page,
		.npages = c->len >> SIM_PAGE_SHIFT,
		.home = c->prot,
		.flags = c->flags,
	};
	a.nlive = a.npages;
	a.prot = malloc(a.npages);
	memset(a.prot, c->prot, a.npages);
	last_alloc.n = last_protect.n = 0;
	int err = s->pp ? pol->map(s->pp, &a) : -1;
	/* A code range held for the kernel (block mode, as reserve.c holds it)
	 * is placed when it is asked for code: the flip (RX) adopts it. */
	if (!err && last_alloc.n == 0 && (a.pv & SIM_PV_HELD))
		pol->protect(s->pp, &a, 0, a.npages, flip_to(c->prot));
	if (!err && last_alloc.n == 1) {
		o.cls = last_alloc.cls;
		o.size = last_alloc.size;
		pol->protect(s->pp, &a, 0, a.npages, flip_to(c->prot));
		o.flip_cls = last_protect.cls;
		o.flip_size = last_protect.n ? last_protect.size : 0;
		pol->free(s->pp, &a);
	}
	if (s->pp)
		pol->destroy(s->pp);
	sim_mm_fini(&s->mm);
	free(a.prot);
	free(s);
	return o;
}

int main(void)
{
	/* The flip-mode names, one table. */
	is(hp_flip_parse("block"), HP_PRELOAD_FLIP_BLOCK, "hp_flip_parse(\"block\")");
	is(hp_flip_parse("sideways"), -1, "hp_flip_parse of an unknown name is -1");
	ok(!strcmp(hp_flip_name(HP_PRELOAD_FLIP_RWX), "rwx"), "hp_flip_name(RWX) is \"rwx\"");
	ok(hp_flip_name(HP_PRELOAD_NFLIP) == NULL, "hp_flip_name of no mode is NULL");

	/* What is an area: LuaJIT's 64 KiB mcode area is; lli's 4 KiB section,
	 * mapped at a hint that is 64 KiB-aligned by chance, is not. */
	is(hp_place_kind(&hp_place_defaults, 64 * KIB, RW, true, false), KIND_AREA,
	   "a 64 KiB RW mapping at a 64 KiB-aligned hint is an area");
	is(hp_place_kind(&hp_place_defaults, 60 * KIB, RW, true, false), -1,
	   "a 60 KiB one is not: it goes to the kernel");
	is(hp_place_kind(&hp_place_defaults, 4 * KIB, RW, true, false), -1,
	   "nor is a 4 KiB section with an aligned hint");

	/* A fixed range (MAP_FIXED_NOREPLACE): executable, a block to 1 GiB,
	 * over the size bound; a code range, relaxed in rwx mode only; served only
	 * when the options say fixed. */
	struct hp_place_options fx_on = hp_place_defaults;
	fx_on.fixed = true;
	is(hp_place_fixed_kind(&fx_on, 256 * MIB, RX), KIND_CODE_RANGE,
	   "a fixed 256 MiB RX range is a code range (over the 64 MiB bound)");
	is(hp_place_fixed_kind(&fx_on, 1UL << 30, RX), KIND_CODE_RANGE,
	   "a fixed 1 GiB RX range is one");
	is(hp_place_fixed_kind(&fx_on, (1UL << 30) + 4 * KIB, RX), -1,
	   "a fixed range over 1 GiB is not");
	is(hp_place_fixed_kind(&fx_on, 2 * MIB - 4 * KIB, RX), -1, "nor one under a block");
	is(hp_place_fixed_kind(&fx_on, 4 * MIB, RW), -1, "nor an RW one (not code)");
	is(hp_place_fixed_kind(&fx_on, 4 * MIB, PROT_NONE), -1, "nor a PROT_NONE one");
	is(hp_place_fixed_kind(&fx_on, 4 * MIB, RX | 0x10), -1,
	   "nor one with unknown protection bits");
	is(hp_place_fixed_kind(&hp_place_defaults, 256 * MIB, RX), -1,
	   "nor any by default: fixed ranges are opt-in (HUGEPERM_PRELOAD_SERVE=...,fixed)");
	struct hp_place_options no_ranges = fx_on;
	no_ranges.code_ranges = false;
	is(hp_place_fixed_kind(&no_ranges, 4 * MIB, RX), KIND_CODE_RANGE,
	   "fixed alone serves them, without reservations");
	struct hp_placement fx = hp_place(KIND_CODE_RANGE, HP_PRELOAD_FLIP_RWX, RX, 4 * MIB);
	ok(fx.cls == PROT_NONE && fx.size == 4 * MIB && fx.relaxed && !fx.own_block,
	   "a fixed range in rwx mode: NONE, committed lazily, relaxed");
	fx = hp_place(KIND_CODE_RANGE, HP_PRELOAD_FLIP_RWX, PROT_NONE, 512 * MIB);
	ok(fx.cls == PROT_NONE && !fx.relaxed, "a PROT_NONE code range (V8's) is not relaxed");
	fx = hp_place(KIND_CODE_RANGE, HP_PRELOAD_FLIP_BLOCK, RX, 4 * MIB);
	ok(!fx.relaxed && !fx.own_block, "a fixed range in block mode: exact flips, merged blocks");

	/* The grow rule (grow_rule.c), which grow.c and the simulator both ask. */
	const struct hp_hint_below unmapped = {0}, kernel = {.mapped = true};
	const struct hp_hint_below data = {
		.mapped = true, .ours = true, .area_end = true, .writable = true};
	struct hp_hint_below ran = data, mid = data, ro = data;
	ran.ran = true;
	mid.area_end = false;
	ro.writable = false;
	ok(!hp_hint_grows(0x7f0000040000, &unmapped, true), "grow: nothing below: an area");
	ok(hp_hint_grows(0x7f0000040000, &kernel, false),
	   "grow: continuing a kernel mapping: the kernel's, in any mode");
	ok(!hp_hint_grows(4096, &kernel, true), "grow: a hint below 2 pages: never");
	ok(hp_hint_grows(0x7f0000040000, &data, true) &&
		   !hp_hint_grows(0x7f0000040000, &data, false),
	   "grow: at the end of a packed area, writable, never ran: the kernel's in block mode "
	   "only");
	ok(!hp_hint_grows(0x7f0000040000, &ran, true) &&
		   !hp_hint_grows(0x7f0000040000, &mid, true) &&
		   !hp_hint_grows(0x7f0000040000, &ro, true),
	   "grow: one that ran, one not at its end, one not writable: served");

	uint64_t page = 0x7f0000000ULL;
	for (size_t m = 0; m < NMODES; m++) {
		const char *mode = hp_flip_name(modes[m].flip);
		for (size_t i = 0; i < NCASES; i++) {
			const struct event_case *c = &cases[i];
			struct outcome want = preload_side(modes[m].flip, c);
			struct outcome got = sim_side(modes[m].pol, c, page);
			page += (c->len >> SIM_PAGE_SHIFT) + SIM_BLOCK_PAGES;
			if (!want.served) {
				/* The preload leaves it to the kernel; the simulator's
				 * linked JIT allocates it as asked. */
				want.cls = c->prot;
				want.size = c->len;
				want.flip_cls = flip_to(c->prot);
				want.flip_size = c->len;
			}
			if (!tap_ok(got.cls == want.cls && got.size == want.size,
				    "%s: %s: placed alike (class %#x, %zu KiB)", mode, c->what,
				    want.cls, want.size >> 10))
				tap_diag("  simulator: class %#x, %zu KiB", got.cls,
					 got.size >> 10);
			if (c->prot == PROT_NONE)
				continue;
			if (!tap_ok(got.flip_cls == want.flip_cls &&
					    got.flip_size == want.flip_size,
				    "%s: %s: its flip alike (%#x over %zu KiB: %s)", mode, c->what,
				    want.flip_cls, want.flip_size >> 10,
				    want.flip_size > c->len ? "a block of its own"
				    : want.flip_cls == RWX  ? "stays RWX"
							    : "exact"))
				tap_diag("  simulator: %#x over %zu KiB", got.flip_cls,
					 got.flip_size >> 10);
		}
	}
	return tap_done();
}
