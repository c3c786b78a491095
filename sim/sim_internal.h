/* SPDX-License-Identifier: MIT */
/*
 * sim_internal.h - what the simulator's parts share: the memory model, the
 * policy interface, and the carving allocator the kernel-style policies
 * place pages with.
 */
#ifndef HP_SIM_INTERNAL_H
#define HP_SIM_INTERNAL_H

#include "sim.h"

#define SIM_BLOCK_PAGES 512
#define SIM_PAGE_SHIFT	12

/* ---------------------------------------------------------------------
 * The model (model.c): what the kernel would have mapped, page by page.
 *
 * Rules, as the kernel behaves on x86-64 with THP:
 *   - A block takes a huge page at its first fault only if, at that time,
 *     one mapping covers all 512 pages with one accessible protection
 *     (the fault happens when a call makes the block accessible: we
 *     assume the program touches what it maps).
 *   - Changing the protection of part of a huge block, unmapping part of
 *     it, or dropping part of it (MADV_DONTNEED) splits the PMD.  Changing
 *     the whole block's protection does not.
 *   - Nothing merges by itself (khugepaged is not modelled): a block is
 *     huge again only through sim_mm_collapse on a uniform block.
 * ------------------------------------------------------------------- */
struct sim_mblock {
	struct sim_mblock *next; /* hash chain */
	uint64_t index;		 /* address >> 21 */
	uint8_t state;		 /* enum sim_block_state */
	uint16_t nmapped;
	uint16_t nused;
	uint8_t prot[SIM_BLOCK_PAGES];
	uint64_t used[SIM_BLOCK_PAGES / 64];
};

struct sim_mm {
	struct sim_mblock **tab; /* hash buckets, chained */
	size_t cap, n;
	bool thp; /* mappings are THP-eligible (else never huge) */
	uint64_t splits, collapses;
	uint64_t nused, nused_huge; /* live program pages, and those in huge blocks */
	uint64_t nblocks;	    /* blocks holding memory (state != EMPTY) */
	uint64_t n_mmap, n_mprotect, n_munmap, n_madvise;
	int oom; /* a metadata allocation failed */
};

void sim_mm_init(struct sim_mm *mm, bool thp);
void sim_mm_fini(struct sim_mm *mm);
struct sim_mblock *sim_mm_block(struct sim_mm *mm, uint64_t index, bool create);
/* The calls a policy makes, on page numbers. */
void sim_mm_map(struct sim_mm *mm, uint64_t page, uint64_t n, int prot);
void sim_mm_unmap(struct sim_mm *mm, uint64_t page, uint64_t n);
void sim_mm_protect(struct sim_mm *mm, uint64_t page, uint64_t n, int prot);
void sim_mm_discard(struct sim_mm *mm, uint64_t page, uint64_t n);
/* Fault the pages in (MADV_POPULATE_WRITE): huge where the rule allows. */
void sim_mm_populate(struct sim_mm *mm, uint64_t page, uint64_t n);
/* MADV_COLLAPSE of whole blocks: 0, or EINVAL if a block is not uniform,
 * not all mapped, or holds no page. */
int sim_mm_collapse(struct sim_mm *mm, uint64_t page, uint64_t n);
/* Is every block of the range huge? */
bool sim_mm_huge(struct sim_mm *mm, uint64_t page, uint64_t n);
/* Is the block holding @page mapped whole with one protection (in *prot)? */
bool sim_mm_uniform(struct sim_mm *mm, uint64_t page, int *prot);
/* Mark live program pages (coverage); no call is counted. */
void sim_mm_use(struct sim_mm *mm, uint64_t page, uint64_t n, bool used);

/* ---------------------------------------------------------------------
 * The replay (sim.c) and the policy interface
 * ------------------------------------------------------------------- */

/* One program mapping as the trace made it, and where the policy put it. */
struct sim_alloc {
	uint64_t page; /* program address >> 12 */
	uint64_t npages;
	uint64_t at;	/* policy address >> 12 of page 0 */
	uint64_t nlive; /* pages not yet unmapped */
	uint8_t *prot;	/* per page: the program's protection, or SIM_UNMAPPED */
	int home;	/* the protection it was mapped with */
	int flags;	/* HP_TF_* of its map event */
	uint64_t pv;	/* the policy's own */
	uint64_t hint;	/* the hint's address its map event recorded (HP_TF_HINT_AT), or 0 */
};

struct sim;
struct sim_policy {
	const char *name;
	const char *about;
	void *(*create)(struct sim *s);
	void (*destroy)(void *p);
	/* Place @a (a->prot all a->home) and map it: set a->at. */
	int (*map)(void *p, struct sim_alloc *a);
	/* Pages [off, off+n) of @a now @prot (a->prot still the old ones). */
	void (*protect)(void *p, struct sim_alloc *a, uint64_t off, uint64_t n, int prot);
	/* Pages [off, off+n) unmapped (a->prot still the old ones). */
	void (*unmap)(void *p, struct sim_alloc *a, uint64_t off, uint64_t n);
	/* Every page of @a unmapped: give its place back. */
	void (*free)(void *p, struct sim_alloc *a);
	void (*write)(void *p, struct sim_alloc *a, uint64_t off, uint64_t n);
	void (*discard)(void *p, struct sim_alloc *a, uint64_t off, uint64_t n);
	/* After each event, at trace time @t_ns (deferred work). */
	void (*tick)(void *p, uint64_t t_ns);
};

struct sim {
	struct sim_mm mm;
	const struct sim_policy *pol;
	void *pp;	   /* the policy's state */
	uint64_t now_ns;   /* trace time of the event being replayed */
	int collapse_mode; /* sim_options.collapse_mode */
	uint64_t n_copy, n_alias;
	uint64_t n_areas, n_grown; /* sim_result's */
	uint64_t served_blocks, served_blocks_peak;
	struct sim_alloc **a; /* live allocations, sorted by first page */
	size_t na, cap;
	uint64_t maxlen;	/* the longest npages of any allocation so far */
	uint64_t npages;	/* npages of the live allocations, summed (<= SIM_MAX_PAGES) */
	uint64_t sample_ns;	/* sim_options.sample_ns */
	struct hp_arena *arena; /* sim_run_arena: the hugeperm policy's (a real one) */
	uint8_t *remap_prots;	/* a remap's old protections, while it is read */
	uint64_t remap_page;
	unsigned tid; /* the thread of the event being replayed */
};

/* A policy moved @a's pages to @at (pack): the live marks follow. */
void sim_move(struct sim *s, struct sim_alloc *a, uint64_t at);
/* The live mapping whose range (holes included) holds page @page, or NULL. */
struct sim_alloc *sim_alloc_at(struct sim *s, uint64_t page);
/* The live mapping that maps page @page (not a hole of it), or NULL. */
struct sim_alloc *sim_alloc_mapping(struct sim *s, uint64_t page);

extern const struct sim_policy sim_naive, sim_pte_cache, sim_migratetype, sim_cpa_merge, sim_pack,
	sim_hugeperm, sim_hugeperm_sync, sim_hugeperm_block;
/* The preload's rwx flip mode, placed as the preload does; not listed in
 * sim_policy_names (tests/placement.c drives it directly). */
extern const struct sim_policy sim_hugeperm_rwx;

/* ---------------------------------------------------------------------
 * The hugeperm-block policy's two models of the preload, beside the
 * placement rule they share with it (policy_hugeperm.c):
 * held reservations (held.c, the preload's reserve.c) and packed areas
 * (pack_areas.c, the preload's pack.c).  Marks on sim_alloc.pv (the
 * policy's own bits 1 and 2 are policy_hugeperm.c's).
 * ------------------------------------------------------------------- */
#define SIM_PV_HELD   4 /* a reservation the kernel holds at the program's address */
#define SIM_PV_PACKED 8 /* an area in a packed block */
#define SIM_PV_KERNEL                                                                              \
	16 /* a mapping the preload leaves to the kernel (placed in the                            \
	    * policy's arena as asked; the program's is at its own address) */

/* @a, a PROT_NONE code range, is mapped by the kernel where the program
 * asked (the naive policy's map) and held until it holds code. */
void sim_held_map(struct sim *s, struct sim_alloc *a);
/* Evidence that held @a holds code (an executable protect, or a MAP_FIXED
 * executable mapping in it): served from then on, at an allocation of
 * @arena that takes each piece's protection; the kernel's mapping goes.
 * 0, or an errno (it stays the kernel's). */
int sim_held_adopt(struct sim *s, struct hp_arena *arena, struct sim_alloc *a);

struct sim_pack;
struct sim_pack *sim_pack_create(struct hp_arena *arena);
void sim_pack_destroy(struct sim_pack *p);
/* Place area @a (its home protection, never executable) in thread
 * s->tid's open block for areas of its size, else in a new block: set
 * a->at.  0, or an errno. */
int sim_pack_map(struct sim_pack *p, struct sim *s, struct sim_alloc *a);
/* Pages [off, off+n) of packed @a now @prot (a->prot still the old ones),
 * or unmapped (@prot SIM_UNMAPPED): the block takes the protection its
 * areas make (hp_place_pack_prot), else its areas' pages exactly. */
void sim_pack_protect(struct sim_pack *p, struct sim_alloc *a, uint64_t off, uint64_t n, int prot);
/* Every page of packed @a unmapped: its block takes the protection of
 * the areas left, or goes back to the arena with its last area. */
void sim_pack_free(struct sim_pack *p, struct sim_alloc *a);
/* Was packed @a made executable once (code, not data)? */
bool sim_pack_ran(const struct sim_pack *p, const struct sim_alloc *a);

/* ---------------------------------------------------------------------
 * The preload's grow rule (grow_hint.c, on preload/grow_rule.c)
 * ------------------------------------------------------------------- */
struct hp_hint_below;
/*
 * The hint @a's map asked for as the preload would have seen it, and what
 * is below it then (*below), from the address space the trace implies:
 * the kernel's mappings where the trace recorded them, the served ones
 * where the policy put them (@pack: block mode's packed areas, or NULL).
 * 0 when the trace recorded no hint address for @a.
 */
uint64_t sim_hint_seen(struct sim *s, const struct sim_pack *pack, const struct sim_alloc *a,
		       struct hp_hint_below *below);

/* ---------------------------------------------------------------------
 * Carving (carve.c): 2 MiB blocks taken whole from a bump range above
 * user space, pages handed out first-fit within blocks of one class.
 * ------------------------------------------------------------------- */
struct carve_block {
	uint64_t base; /* first page */
	int cls;       /* the class its free pages serve */
	unsigned nfree;
	uint64_t freemap[SIM_BLOCK_PAGES / 64]; /* bit set: page free */
};

struct carve {
	struct carve_block **b; /* blocks, in no order */
	size_t nb, cap;
	uint64_t next; /* next fresh block's first page */
};

void carve_init(struct carve *c);
void carve_fini(struct carve *c);
/* @n pages for class @cls from a block of that class, else from fresh
 * blocks (*fresh set, each mapped by the caller with sim_mm_map).  Returns
 * the first page, or 0 on ENOMEM. */
uint64_t carve_alloc(struct carve *c, uint64_t n, int cls, uint64_t *fresh, uint64_t *nfresh);
/* Give pages back; returns the blocks that are now wholly free through
 * @empty (their first pages), removed from the carve. */
size_t carve_free(struct carve *c, uint64_t page, uint64_t n, uint64_t *empty, size_t max);
struct carve_block *carve_block_of(struct carve *c, uint64_t page);

#endif
