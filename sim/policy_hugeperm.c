/* SPDX-License-Identifier: MIT */
/*
 * policy_hugeperm.c - our policy in the simulator: the library itself,
 * placed by the preload's own rule.
 *
 * The policy does not describe hugeperm, it runs it: an arena of lib/
 * (placement, classes, thread caches, collapse queue) whose OS layer is
 * this file's hooks, which call the model instead of the kernel.  A trace
 * event becomes the call a linked JIT would make: hp_arena_alloc for a
 * map, with the class and size the preload's placement rule gives it
 * (preload/placement.c, the same function the preload calls: a hinted
 * area, a code range, an executable mapping under the policy's flip mode;
 * a mapping the preload would leave to the kernel is allocated as asked),
 * hp_arena_protect (a flip of a whole area with a block of its own takes
 * the block; in rwx mode W<->X flips stay RWX), hp_arena_free (or, for
 * part of a mapping, protection NONE and a discard, as the preload does),
 * hp_arena_write for a write into pages that are not writable,
 * hp_arena_discard.  A trace that recorded the hint's address is placed
 * with its alignment and the preload's grow rule (grow_hint.c: a heap's
 * next chunk is the kernel's); one that recorded only that a hint was
 * given takes it as the preload's 64 KiB-aligned hint.  The arena
 * has the THP backend, RWX allowed (the program asked), no alias (an
 * alias needs real shared memory; writes go the /proc/self/mem way,
 * which changes no mapping either).
 *
 * `hugeperm-block` models two more things the preload does in block mode:
 * its code areas are packed into shared blocks (pack_areas.c, as
 * preload/pack.c), and its code ranges are held for the kernel until they
 * are made executable (held.c, as preload/reserve.c).
 *
 * Deferred collapses run after each event at trace time, as the collapse
 * thread would (HUGEPERM_COLLAPSE_DELAY_MS after a block turns uniform);
 * `hugeperm-sync` collapses at the end of the call, as
 * HUGEPERM_COLLAPSE=sync does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grow_rule.h"
#include "internal.h"
#include "placement.h"
#include "sim_internal.h"

/* The run the hooks act on (one at a time per thread). */
static __thread struct sim *cur;
/* Address space for the arenas' chunks: below the 47-bit limit of the
 * chunk map, away from where the kernel puts mappings. */
static uintptr_t next_chunk = 0x300000000000UL;

#define PG(addr) ((uint64_t)(addr) >> SIM_PAGE_SHIFT)
#define NP(size) ((uint64_t)(size) >> SIM_PAGE_SHIFT)

static int m_reserve(size_t size, size_t align, uintptr_t *out)
{
	uintptr_t at = __atomic_fetch_add(&next_chunk, (size + align - 1) & ~(align - 1),
					  __ATOMIC_RELAXED);
	*out = (at + align - 1) & ~(align - 1);
	return 0;
}

static int m_release(uintptr_t addr, size_t size)
{
	return 0;
}

static int m_commit(uintptr_t addr, size_t size, int prot, int backend, int fill, int node)
{
	if (backend != HP_BACKEND_THP)
		return EINVAL; /* the policy's arena has only THP */
	sim_mm_map(&cur->mm, PG(addr), NP(size), prot);
	return 0;
}

static int m_decommit(uintptr_t addr, size_t size)
{
	sim_mm_map(&cur->mm, PG(addr), NP(size), PROT_NONE); /* a reservation again */
	return 0;
}

static int m_discard(uintptr_t addr, size_t size)
{
	sim_mm_discard(&cur->mm, PG(addr), NP(size));
	return 0;
}

static int m_populate(uintptr_t addr, size_t size)
{
	sim_mm_populate(&cur->mm, PG(addr), NP(size));
	return 0;
}

static int m_protect(uintptr_t addr, size_t size, int prot)
{
	sim_mm_protect(&cur->mm, PG(addr), NP(size), prot);
	return 0;
}

static int m_collapse(uintptr_t addr, size_t size)
{
	return sim_mm_collapse(&cur->mm, PG(addr), NP(size));
}

static int m_name(uintptr_t addr, size_t size, const char *name)
{
	return 0;
}

static int m_alias_create(size_t size, bool hugetlb, int *fd)
{
	return EOPNOTSUPP;
}

static void m_close(int fd)
{
}

static int m_guard(uintptr_t addr, size_t size, bool install)
{
	return 0;
}

static void m_store(uintptr_t dst, const void *src, int byte, size_t size)
{
}

static int m_mem_write(uintptr_t dst, const void *src, size_t size)
{
	cur->n_alias++;
	return 0;
}

static uint64_t m_now(void)
{
	return cur->now_ns;
}

static void *m_meta_alloc(size_t size)
{
	return calloc(1, size);
}

static void m_meta_free(void *p, size_t size)
{
	free(p);
}

static void m_synchronize(void)
{
}

static int m_huge_mapped(uintptr_t addr, size_t size, bool *huge)
{
	*huge = sim_mm_huge(&cur->mm, PG(addr), NP(size));
	return 0;
}

static int m_cpu_node(void)
{
	return 0;
}

/* Messages (HUGEPERM_VERBOSE) go to the real file. */
static int m_write_all(int fd, const void *buf, size_t len)
{
	return hp_os_linux.write_all(fd, buf, len);
}

static const struct hp_os model_os = {
	.reserve = m_reserve,
	.release = m_release,
	.commit = m_commit,
	.decommit = m_decommit,
	.discard = m_discard,
	.populate = m_populate,
	.protect = m_protect,
	.collapse = m_collapse,
	.name = m_name,
	.alias_create = m_alias_create,
	.close = m_close,
	.guard = m_guard,
	.store = m_store,
	.mem_write = m_mem_write,
	.now_ns = m_now,
	.meta_alloc = m_meta_alloc,
	.meta_free = m_meta_free,
	.synchronize = m_synchronize,
	.huge_mapped = m_huge_mapped,
	.cpu_node = m_cpu_node,
	.write_all = m_write_all,
};

/* What the policy remembers of a mapping it placed (sim_alloc.pv). */
#define PV_OWN_BLOCK 1 /* a block of its own: whole-area flips take it */
#define PV_RELAXED   2 /* rwx mode: W<->X flips stay RWX */

struct hpol {
	int flip; /* enum hp_preload_flip: the preload's mode it models */
	struct sim *s;
	struct hp_arena *a;
	bool borrowed; /* sim_run_arena's arena: not ours to tear down */
	char *zeros;   /* the source of replayed writes */
	size_t nzeros;
	struct sim_pack *pack; /* block mode: packed areas (pack_areas.c) */
	bool remapped;	       /* a map or a free since the served blocks were counted */
	uint64_t *blk;	       /* their indices, while they are counted */
	size_t nblk, capblk;
};

static void *create(struct sim *s, int mode, int flip)
{
	struct hpol *h = calloc(1, sizeof(*h));
	struct hp_arena *a = calloc(1, sizeof(*a));
	if (!h || !a) {
		free(h);
		free(a);
		return NULL;
	}
	cur = s;
	h->s = s;
	h->flip = flip;
	if (s->arena) { /* a real arena: the kernel is the model */
		free(a);
		h->a = s->arena;
		h->borrowed = true;
		return h;
	}
	hp_arena_init(a, &model_os, HP_BACKEND_THP, HP_BACKEND_THP, &hp_opt);
	a->collapse_mode = mode;
	a->allow_rwx = true;
	a->alias = false;
	a->guard_madvise = true;
	h->s = s;
	h->a = a;
	if (flip == HP_PRELOAD_FLIP_BLOCK && !(h->pack = sim_pack_create(a))) {
		hp_arena_teardown(a);
		free(a);
		free(h);
		return NULL;
	}
	return h;
}

static void *create_deferred(struct sim *s)
{
	return create(s, s->collapse_mode ? s->collapse_mode : HP_COLLAPSE_DEFERRED,
		      HP_PRELOAD_FLIP_EXACT);
}

static void *create_sync(struct sim *s)
{
	return create(s, HP_COLLAPSE_SYNC, HP_PRELOAD_FLIP_EXACT);
}

static void *create_block(struct sim *s)
{
	return create(s, HP_COLLAPSE_SYNC, HP_PRELOAD_FLIP_BLOCK);
}

static void *create_rwx(struct sim *s)
{
	return create(s, HP_COLLAPSE_SYNC, HP_PRELOAD_FLIP_RWX);
}

/* Where the preload would put @a (its rule, placement.c), with the
 * preload's default options; a mapping it leaves to the kernel (-1) is
 * allocated as asked.  A hint whose address the trace recorded is seen
 * as the preload would see it (grow_hint.c): its alignment decides
 * whether it asks for a code area, and a code area that continues a
 * mapping is a heap's next chunk, the kernel's (grow.c's rule). */
static int kind_of(const struct hpol *h, const struct sim_alloc *a, bool *grown)
{
	*grown = false;
	size_t len = a->npages << SIM_PAGE_SHIFT;
	if (a->flags & HP_TF_NOREPLACE)
		return hp_place_fixed_kind(&hp_place_defaults, len, a->home);
	struct hp_hint_below below;
	uint64_t hint = sim_hint_seen(h->s, h->pack, a, &below);
	bool area_hint = hint ? hint % HP_PLACE_AREA_ALIGN == 0 : (a->flags & HP_TF_HINT) != 0;
	int kind = hp_place_kind(&hp_place_defaults, len, a->home, area_hint,
				 a->flags & HP_TF_NORESERVE);
	*grown = kind == KIND_AREA && hint && hp_hint_grows(hint, &below, h->pack != NULL);
	return *grown ? -1 : kind;
}

static struct hp_placement place(const struct hpol *h, const struct sim_alloc *a, int kind)
{
	size_t len = a->npages << SIM_PAGE_SHIFT;
	if (kind < 0)
		return (struct hp_placement){.cls = a->home, .size = len};
	return hp_place(kind, h->flip, a->home, len);
}

static void destroy(void *p)
{
	struct hpol *h = p;
	cur = h->s;
	sim_pack_destroy(h->pack);
	if (!h->borrowed) {
		hp_arena_teardown(h->a);
		free(h->a);
	}
	free(h->zeros);
	free(h->blk);
	free(h);
}

static void *addr_of(const struct sim_alloc *a, uint64_t off)
{
	return (void *)(uintptr_t)((a->at + off) << SIM_PAGE_SHIFT);
}

static int map(void *p, struct sim_alloc *a)
{
	struct hpol *h = p;
	cur = h->s;
	bool grown;
	int kind = kind_of(h, a, &grown);
	h->s->n_grown += grown;
	h->remapped = true;
	h->s->n_areas += kind == KIND_AREA;
	if (h->pack) { /* block mode: the preload's reserve.c and pack.c */
		struct sim_alloc *resv = a->flags & HP_TF_FIXED && a->home & PROT_EXEC
						 ? sim_alloc_at(h->s, a->page)
						 : NULL;
		if (resv && (resv->pv & SIM_PV_HELD))
			sim_held_adopt(h->s, h->a, resv); /* code mapped into it */
		if (kind == KIND_CODE_RANGE && !(a->flags & HP_TF_NOREPLACE)) {
			sim_held_map(h->s, a);
			return 0;
		}
		if (kind == KIND_AREA)
			return sim_pack_map(h->pack, h->s, a);
	}
	struct hp_placement pl = place(h, a, kind);
	void *ptr = hp_arena_alloc(h->a, pl.size, pl.cls);
	if (!ptr)
		return errno;
	a->at = PG(ptr);
	a->pv = (pl.own_block ? PV_OWN_BLOCK : 0) | (pl.relaxed ? PV_RELAXED : 0) |
		(kind < 0 ? SIM_PV_KERNEL : 0);
	return 0;
}

static void protect(void *p, struct sim_alloc *a, uint64_t off, uint64_t n, int prot)
{
	struct hpol *h = p;
	cur = h->s;
	if ((a->pv & SIM_PV_HELD) && (!(prot & PROT_EXEC) || sim_held_adopt(h->s, h->a, a))) {
		sim_naive.protect(h->s, a, off, n, prot); /* the kernel's still */
		return;
	}
	if (a->pv & SIM_PV_PACKED) {
		sim_pack_protect(h->pack, a, off, n, prot);
		return;
	}
	if ((a->pv & PV_RELAXED) && hp_place_stays_rwx(prot))
		prot = PROT_READ | PROT_WRITE | PROT_EXEC; /* rwx mode: RW <-> RX stay RWX */
	else if ((a->pv & PV_OWN_BLOCK) && off == 0 && n == a->npages)
		n = SIM_BLOCK_PAGES; /* the whole area: the whole block, one PMD */
	hp_arena_protect(h->a, addr_of(a, off), n << SIM_PAGE_SHIFT, prot);
}

static void unmap(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct hpol *h = p;
	cur = h->s;
	if (a->pv & SIM_PV_HELD) {
		sim_naive.unmap(h->s, a, off, n);
		return;
	}
	if (n == a->nlive)
		return; /* the last pages: free() gives the whole allocation back */
	if (a->pv & SIM_PV_PACKED) {
		sim_pack_protect(h->pack, a, off, n, SIM_UNMAPPED);
		return;
	}
	hp_arena_protect(h->a, addr_of(a, off), n << SIM_PAGE_SHIFT, PROT_NONE);
	hp_arena_discard(h->a, addr_of(a, off), n << SIM_PAGE_SHIFT);
}

static void release(void *p, struct sim_alloc *a)
{
	struct hpol *h = p;
	cur = h->s;
	h->remapped = true;
	if (a->pv & SIM_PV_PACKED)
		sim_pack_free(h->pack, a);
	else if (!(a->pv & SIM_PV_HELD)) /* a held one is unmapped already */
		hp_arena_free(h->a, addr_of(a, 0));
}

static void write_pages(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct hpol *h = p;
	cur = h->s;
	if (a->pv & SIM_PV_HELD)
		return; /* the kernel's: no call of ours */
	bool writable = true;
	for (uint64_t i = off; i < off + n; i++)
		writable &= (a->prot[i] & PROT_WRITE) != 0;
	if (writable)
		return; /* a plain store: no call */
	size_t size = n << SIM_PAGE_SHIFT;
	if (h->nzeros < size) {
		char *z = realloc(h->zeros, size);
		if (!z)
			return;
		memset(z, 0, size);
		h->zeros = z;
		h->nzeros = size;
	}
	hp_arena_write(h->a, addr_of(a, off), h->zeros, size);
}

static void discard(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct hpol *h = p;
	cur = h->s;
	if (a->pv & SIM_PV_HELD)
		sim_naive.discard(h->s, a, off, n);
	else
		hp_arena_discard(h->a, addr_of(a, off), n << SIM_PAGE_SHIFT);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* Add block @index to those counted; false if there is no room. */
static bool add_block(struct hpol *h, uint64_t index)
{
	if (h->nblk && h->blk[h->nblk - 1] == index)
		return true;
	if (h->nblk == h->capblk) {
		size_t cap = h->capblk ? 2 * h->capblk : 64;
		uint64_t *nb = realloc(h->blk, cap * sizeof(*nb));
		if (!nb)
			return false;
		h->blk = nb;
		h->capblk = cap;
	}
	h->blk[h->nblk++] = index;
	return true;
}

/* The blocks that hold a live page of a mapping the policy serves (what the
 * preload's hp_stats counts as its blocks; the kernel's mappings, which the
 * policy places in its arena as asked, are not counted). */
static void count_served(struct hpol *h)
{
	struct sim *s = h->s;
	h->nblk = 0;
	for (size_t i = 0; i < s->na; i++) {
		const struct sim_alloc *a = s->a[i];
		if (a->pv & (SIM_PV_KERNEL | SIM_PV_HELD) || !a->npages)
			continue;
		/* Page by page only in the blocks the model has live pages in:
		 * a lazily committed code range spans hundreds of empty ones. */
		uint64_t last = (a->at + a->npages - 1) / SIM_BLOCK_PAGES;
		for (uint64_t b = a->at / SIM_BLOCK_PAGES; b <= last; b++) {
			const struct sim_mblock *mb = sim_mm_block(&s->mm, b, false);
			uint64_t from =
				b * SIM_BLOCK_PAGES > a->at ? b * SIM_BLOCK_PAGES - a->at : 0;
			uint64_t to = (b + 1) * SIM_BLOCK_PAGES - a->at;
			bool live = false;
			for (uint64_t j = from; mb && mb->nused && !live && j < to && j < a->npages;
			     j++)
				live = a->prot[j] != SIM_UNMAPPED &&
				       (a->prot[j] & (PROT_READ | PROT_WRITE | PROT_EXEC));
			if (live && !add_block(h, b))
				return;
		}
	}
	if (h->nblk)
		qsort(h->blk, h->nblk, sizeof(*h->blk), cmp_u64);
	size_t n = 0;
	for (size_t i = 0; i < h->nblk; i++)
		n += !i || h->blk[i] != h->blk[i - 1];
	s->served_blocks = n;
	if (n > s->served_blocks_peak)
		s->served_blocks_peak = n;
}

static void tick(void *p, uint64_t t_ns)
{
	struct hpol *h = p;
	cur = h->s;
	if (h->remapped) {
		h->remapped = false;
		count_served(h);
	}
	if (!h->borrowed && h->a->collapse_mode == HP_COLLAPSE_DEFERRED &&
	    __atomic_load_n(&h->a->nqueued, __ATOMIC_RELAXED))
		hp_collapse_run(h->a, 0, 0, NULL);
}

/* The three variants differ only in how they are made. */
#define HPOL(sym, str, make, text)                                                                 \
	const struct sim_policy sym = {                                                            \
		.name = str,                                                                       \
		.about = text,                                                                     \
		.create = make,                                                                    \
		.destroy = destroy,                                                                \
		.map = map,                                                                        \
		.protect = protect,                                                                \
		.unmap = unmap,                                                                    \
		.free = release,                                                                   \
		.write = write_pages,                                                              \
		.discard = discard,                                                                \
		.tick = tick,                                                                      \
	}

HPOL(sim_hugeperm, "hugeperm", create_deferred,
     "lib/ itself on the model: classes, collapse deferred by trace time");
HPOL(sim_hugeperm_sync, "hugeperm-sync", create_sync, "the same with HUGEPERM_COLLAPSE=sync");
HPOL(sim_hugeperm_block, "hugeperm-block", create_block,
     "the preload's default: a thread's code areas packed into blocks, flips whole-block; "
     "reservations held until made executable");
/* The preload's rwx mode, for tests/placement.c: not one of `--policy all`. */
HPOL(sim_hugeperm_rwx, "hugeperm-rwx", create_rwx,
     "the preload's rwx mode: a JIT's code area is RWX, its W<->X flips change nothing");
