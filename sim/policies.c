/* SPDX-License-Identifier: MIT */
/*
 * policies.c - today's behaviour and the kernel RFCs' designs, as policies.
 *
 *   naive        every request its own mapping at the program's address:
 *                what JITs get today.  THP where the kernel would give it
 *                (a whole aligned 2 MiB range mapped at once, uniform).
 *   pte-cache    seed 000: one global cache of 4 KiB pages carved from
 *                2 MiB blocks, whatever their protection; a block is taken
 *                whole on refill, splits at its first protection change
 *                and never merges; freed pages go back to the cache RW.
 *   migratetype  seed 003: blocks belong to a class (the protection a
 *                request is mapped with); a class takes a whole block when
 *                it has none free; pages changed to another protection
 *                split it; a block merges back when all its pages are free.
 *   cpa-merge    seed 004: no grouping (one class, first fit); split on
 *                demand, merge as soon as every page of a block has the
 *                same protection again (the exact per-block count).
 *   pack         bpf_prog_pack / execmem's ROX cache: executable requests
 *                of at most one block are copied into 2 MiB RX blocks that
 *                never change; the program's writes go through an alias.
 *                Everything else is naive.
 *
 * Not modelled: memory pressure (so pte-cache never falls back to single
 * pages and its shrinker never runs), khugepaged, and the cost of a copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "sim_internal.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

/* ---------------------------------------------------------------------
 * naive
 * ------------------------------------------------------------------- */

static void *naive_create(struct sim *s)
{
	return s;
}

static void naive_destroy(void *p)
{
}

static int naive_map(void *p, struct sim_alloc *a)
{
	struct sim *s = p;
	a->at = a->page;
	sim_mm_map(&s->mm, a->at, a->npages, a->home);
	return 0;
}

static void naive_protect(void *p, struct sim_alloc *a, uint64_t off, uint64_t n, int prot)
{
	struct sim *s = p;
	sim_mm_protect(&s->mm, a->at + off, n, prot);
}

static void naive_unmap(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct sim *s = p;
	sim_mm_unmap(&s->mm, a->at + off, n);
}

static void nothing(void *p, struct sim_alloc *a)
{
}

static void no_write(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
}

static void naive_discard(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct sim *s = p;
	sim_mm_discard(&s->mm, a->at + off, n);
}

const struct sim_policy sim_naive = {
	.name = "naive",
	.about = "every request its own mapping (JITs today); THP where aligned",
	.create = naive_create,
	.destroy = naive_destroy,
	.map = naive_map,
	.protect = naive_protect,
	.unmap = naive_unmap,
	.free = nothing,
	.write = no_write,
	.discard = naive_discard,
};

/* ---------------------------------------------------------------------
 * The carving policies
 * ------------------------------------------------------------------- */

enum kind { PTE_CACHE, MIGRATETYPE, CPA_MERGE, PACK };

struct kpol {
	struct sim *s;
	struct carve c;
	enum kind kind;
};

static void *kpol_create(struct sim *s, enum kind kind)
{
	struct kpol *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->s = s;
	k->kind = kind;
	carve_init(&k->c);
	return k;
}

static void kpol_destroy(void *p)
{
	struct kpol *k = p;
	carve_fini(&k->c);
	free(k);
}

/* @n pages of class @cls; fresh blocks are mapped whole with @prot. */
static uint64_t place(struct kpol *k, uint64_t n, int cls, int prot)
{
	uint64_t fresh, nfresh;
	uint64_t at = carve_alloc(&k->c, n, cls, &fresh, &nfresh);
	if (nfresh)
		sim_mm_map(&k->s->mm, fresh, nfresh, prot);
	return at;
}

/* cpa-merge: merge every block of the range that is uniform again. */
static void merge_uniform(struct kpol *k, uint64_t page, uint64_t n)
{
	for (uint64_t p = page - page % SIM_BLOCK_PAGES; p < page + n; p += SIM_BLOCK_PAGES)
		if (sim_mm_uniform(&k->s->mm, p, NULL) && !sim_mm_huge(&k->s->mm, p, 1))
			sim_mm_collapse(&k->s->mm, p, SIM_BLOCK_PAGES);
}

/* Pages back to the carve: blocks wholly free are merged (migratetype) and
 * released; pte-cache keeps them cached. */
static void give_back(struct kpol *k, uint64_t page, uint64_t n)
{
	uint64_t empty[64];
	size_t max = k->kind == PTE_CACHE ? 0 : 64;
	size_t ne = carve_free(&k->c, page, n, empty, max);
	for (size_t i = 0; i < ne; i++) {
		if (k->kind == MIGRATETYPE && !sim_mm_huge(&k->s->mm, empty[i], 1))
			sim_mm_collapse(&k->s->mm, empty[i], SIM_BLOCK_PAGES);
		sim_mm_unmap(&k->s->mm, empty[i], SIM_BLOCK_PAGES);
	}
}

static int kpol_map(void *p, struct sim_alloc *a)
{
	struct kpol *k = p;
	int cls = k->kind == MIGRATETYPE ? a->home : 0;
	int block_prot = k->kind == MIGRATETYPE ? a->home : RW;
	if (k->kind == PACK) {
		if ((a->home & PROT_EXEC) && a->npages <= SIM_BLOCK_PAGES) {
			a->at = place(k, a->npages, 1, RX);
			a->pv = 1; /* in the pack */
			return a->at ? 0 : ENOMEM;
		}
		return naive_map(k->s, a);
	}
	a->at = place(k, a->npages, cls, block_prot);
	if (!a->at)
		return ENOMEM;
	if (a->home != block_prot)
		sim_mm_protect(&k->s->mm, a->at, a->npages, a->home);
	return 0;
}

static void kpol_protect(void *p, struct sim_alloc *a, uint64_t off, uint64_t n, int prot)
{
	struct kpol *k = p;
	if (k->kind == PACK) {
		if (a->pv) { /* the pack never changes: writes go through the alias */
			return;
		}
		if ((prot & PROT_EXEC) && a->npages <= SIM_BLOCK_PAGES) {
			uint64_t at = place(k, a->npages, 1, RX);
			if (!at)
				return;
			sim_mm_unmap(&k->s->mm, a->at, a->npages);
			sim_move(k->s, a, at);
			a->pv = 1;
			k->s->n_copy++;
			return;
		}
		sim_mm_protect(&k->s->mm, a->at + off, n, prot);
		return;
	}
	sim_mm_protect(&k->s->mm, a->at + off, n, prot);
	if (k->kind == CPA_MERGE)
		merge_uniform(k, a->at + off, n);
}

static void kpol_unmap(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct kpol *k = p;
	if (k->kind == PACK && !a->pv) {
		sim_mm_unmap(&k->s->mm, a->at + off, n);
		return;
	}
	if (k->kind == PACK) { /* freed code is overwritten with traps, through the alias */
		k->s->n_alias++;
		give_back(k, a->at + off, n);
		return;
	}
	int cls = k->kind == MIGRATETYPE ? a->home : RW;
	sim_mm_protect(&k->s->mm, a->at + off, n, cls); /* free pages carry the class */
	if (k->kind == CPA_MERGE)
		merge_uniform(k, a->at + off, n);
	give_back(k, a->at + off, n);
}

static void kpol_write(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct kpol *k = p;
	if (k->kind == PACK && a->pv)
		k->s->n_alias++;
}

static void kpol_discard(void *p, struct sim_alloc *a, uint64_t off, uint64_t n)
{
	struct kpol *k = p;
	if (k->kind == PACK && a->pv)
		k->s->n_alias++; /* zeroed through the alias */
	else
		sim_mm_discard(&k->s->mm, a->at + off, n);
}

#define KPOL(sym, str, kind_, text)                                                                \
	static void *sym##_create(struct sim *s)                                                   \
	{                                                                                          \
		return kpol_create(s, kind_);                                                      \
	}                                                                                          \
	const struct sim_policy sim_##sym = {                                                      \
		.name = str,                                                                       \
		.about = text,                                                                     \
		.create = sym##_create,                                                            \
		.destroy = kpol_destroy,                                                           \
		.map = kpol_map,                                                                   \
		.protect = kpol_protect,                                                           \
		.unmap = kpol_unmap,                                                               \
		.free = nothing,                                                                   \
		.write = kpol_write,                                                               \
		.discard = kpol_discard,                                                           \
	}

KPOL(pte_cache, "pte-cache", PTE_CACHE,
     "seed 000: one cache of 4K pages carved from 2M blocks; no re-merge");
KPOL(migratetype, "migratetype", MIGRATETYPE,
     "seed 003: a block per class, stolen whole; merge when all pages are free");
KPOL(cpa_merge, "cpa-merge", CPA_MERGE,
     "seed 004: split on demand, merge as soon as a block is uniform again");
KPOL(pack, "pack", PACK, "bpf_prog_pack: code copied into RX 2M blocks, written via an alias");
