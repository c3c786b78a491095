/* SPDX-License-Identifier: MIT */
/*
 * model.c - what the kernel would map: blocks, PMD or PTEs, protections.
 *
 * The rules are in sim_internal.h.  Every call a policy makes lands here and is
 * counted as the system call it stands for; every change of a block's
 * state keeps two sums exact, so that coverage is O(1) per event: live
 * program pages, and those of them in huge-mapped blocks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_internal.h"

#define ACCESS (PROT_READ | PROT_WRITE | PROT_EXEC)

static size_t bucket(const struct sim_mm *mm, uint64_t index)
{
	return (size_t)((index * 0x9e3779b97f4a7c15ULL) >> 20) & (mm->cap - 1);
}

void sim_mm_init(struct sim_mm *mm, bool thp)
{
	memset(mm, 0, sizeof(*mm));
	mm->thp = thp;
	mm->cap = 1024;
	mm->tab = calloc(mm->cap, sizeof(*mm->tab));
	if (!mm->tab)
		mm->oom = ENOMEM;
}

void sim_mm_fini(struct sim_mm *mm)
{
	for (size_t i = 0; mm->tab && i < mm->cap; i++)
		for (struct sim_mblock *b = mm->tab[i], *next; b; b = next) {
			next = b->next;
			free(b);
		}
	free(mm->tab);
	mm->tab = NULL;
}

static void grow(struct sim_mm *mm)
{
	size_t cap = mm->cap * 2;
	struct sim_mblock **tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return; /* longer chains, still correct */
	struct sim_mblock **old = mm->tab;
	size_t oldcap = mm->cap;
	mm->tab = tab;
	mm->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		for (struct sim_mblock *b = old[i], *next; b; b = next) {
			next = b->next;
			size_t k = bucket(mm, b->index);
			b->next = tab[k];
			tab[k] = b;
		}
	free(old);
}

struct sim_mblock *sim_mm_block(struct sim_mm *mm, uint64_t index, bool create)
{
	if (!mm->tab)
		return NULL;
	for (struct sim_mblock *b = mm->tab[bucket(mm, index)]; b; b = b->next)
		if (b->index == index)
			return b;
	if (!create)
		return NULL;
	struct sim_mblock *b = calloc(1, sizeof(*b));
	if (!b) {
		mm->oom = ENOMEM;
		return NULL;
	}
	b->index = index;
	memset(b->prot, SIM_UNMAPPED, sizeof(b->prot));
	size_t k = bucket(mm, index);
	b->next = mm->tab[k];
	mm->tab[k] = b;
	if (++mm->n > mm->cap)
		grow(mm);
	return b;
}

/* A block that holds nothing and maps nothing is forgotten. */
static void maybe_drop(struct sim_mm *mm, struct sim_mblock *b)
{
	if (b->nmapped || b->nused || b->state != SIM_EMPTY)
		return;
	struct sim_mblock **pp = &mm->tab[bucket(mm, b->index)];
	while (*pp != b)
		pp = &(*pp)->next;
	*pp = b->next;
	mm->n--;
	free(b);
}

static void set_state(struct sim_mm *mm, struct sim_mblock *b, int state)
{
	if (b->state == state)
		return;
	if (b->state == SIM_HUGE)
		mm->nused_huge -= b->nused;
	if (state == SIM_HUGE)
		mm->nused_huge += b->nused;
	if (b->state == SIM_EMPTY)
		mm->nblocks++;
	if (state == SIM_EMPTY)
		mm->nblocks--;
	b->state = (uint8_t)state;
}

/* All 512 pages mapped with one protection: 1 with it in *prot. */
static bool uniform(const struct sim_mblock *b, int *prot)
{
	if (b->nmapped != SIM_BLOCK_PAGES)
		return false;
	for (unsigned i = 1; i < SIM_BLOCK_PAGES; i++)
		if (b->prot[i] != b->prot[0])
			return false;
	if (prot)
		*prot = b->prot[0];
	return true;
}

static bool any_access(const struct sim_mblock *b)
{
	for (unsigned i = 0; i < SIM_BLOCK_PAGES; i++)
		if (b->prot[i] != SIM_UNMAPPED && (b->prot[i] & ACCESS))
			return true;
	return false;
}

/* A block with no memory yet was made accessible: the first fault. */
static void fault(struct sim_mm *mm, struct sim_mblock *b)
{
	int prot;
	if (b->state != SIM_EMPTY || !any_access(b))
		return;
	bool huge = mm->thp && uniform(b, &prot) && (prot & ACCESS);
	set_state(mm, b, huge ? SIM_HUGE : SIM_SMALL);
}

static void split(struct sim_mm *mm, struct sim_mblock *b)
{
	if (b->state != SIM_HUGE)
		return;
	mm->splits++;
	set_state(mm, b, SIM_SMALL);
}

/* Call @fn on each block piece of [page, page+n): block, first, count. */
#define FOR_PIECES(mm, page, n, b, first, cnt, create)                                             \
	for (uint64_t p_ = (page), e_ = (page) + (n), first, cnt; p_ < e_; p_ += cnt)              \
		if ((first = p_ % SIM_BLOCK_PAGES, cnt = SIM_BLOCK_PAGES - first,                  \
		     cnt = cnt < e_ - p_ ? cnt : e_ - p_,                                          \
		     (b = sim_mm_block((mm), p_ / SIM_BLOCK_PAGES, (create))) != NULL))

void sim_mm_map(struct sim_mm *mm, uint64_t page, uint64_t n, int prot)
{
	struct sim_mblock *b;
	mm->n_mmap++;
	FOR_PIECES(mm, page, n, b, first, cnt, true)
	{
		if (b->state == SIM_HUGE && cnt < SIM_BLOCK_PAGES)
			split(mm, b); /* MAP_FIXED over part of a huge block */
		for (uint64_t i = first; i < first + cnt; i++) {
			if (b->prot[i] == SIM_UNMAPPED)
				b->nmapped++;
			b->prot[i] = (uint8_t)prot;
		}
		if (cnt == SIM_BLOCK_PAGES && b->state != SIM_EMPTY)
			set_state(mm, b, SIM_EMPTY); /* fresh memory replaces the old */
		fault(mm, b);
	}
}

void sim_mm_unmap(struct sim_mm *mm, uint64_t page, uint64_t n)
{
	struct sim_mblock *b;
	mm->n_munmap++;
	FOR_PIECES(mm, page, n, b, first, cnt, false)
	{
		if (cnt < SIM_BLOCK_PAGES)
			split(mm, b);
		for (uint64_t i = first; i < first + cnt; i++) {
			if (b->prot[i] != SIM_UNMAPPED)
				b->nmapped--;
			b->prot[i] = SIM_UNMAPPED;
		}
		if (b->nmapped == 0)
			set_state(mm, b, SIM_EMPTY);
		maybe_drop(mm, b);
	}
}

void sim_mm_protect(struct sim_mm *mm, uint64_t page, uint64_t n, int prot)
{
	struct sim_mblock *b;
	mm->n_mprotect++;
	FOR_PIECES(mm, page, n, b, first, cnt, false)
	{
		bool change = false;
		for (uint64_t i = first; i < first + cnt; i++)
			change |= b->prot[i] != SIM_UNMAPPED && b->prot[i] != prot;
		if (!change)
			continue;
		if (cnt < SIM_BLOCK_PAGES)
			split(mm, b);
		for (uint64_t i = first; i < first + cnt; i++)
			if (b->prot[i] != SIM_UNMAPPED)
				b->prot[i] = (uint8_t)prot;
		fault(mm, b);
	}
}

void sim_mm_discard(struct sim_mm *mm, uint64_t page, uint64_t n)
{
	struct sim_mblock *b;
	mm->n_madvise++;
	FOR_PIECES(mm, page, n, b, first, cnt, false)
	{
		/* A whole huge block is dropped whole and comes back huge at
		 * the next touch; part of one is split first. */
		if (cnt < SIM_BLOCK_PAGES)
			split(mm, b);
	}
}

void sim_mm_populate(struct sim_mm *mm, uint64_t page, uint64_t n)
{
	struct sim_mblock *b;
	mm->n_madvise++;
	FOR_PIECES(mm, page, n, b, first, cnt, false)
	{
		fault(mm, b);
	}
}

int sim_mm_collapse(struct sim_mm *mm, uint64_t page, uint64_t n)
{
	struct sim_mblock *b;
	int err = 0;
	mm->n_madvise++;
	for (uint64_t p = page - page % SIM_BLOCK_PAGES; p < page + n; p += SIM_BLOCK_PAGES) {
		b = sim_mm_block(mm, p / SIM_BLOCK_PAGES, false);
		if (!b || !uniform(b, NULL) || b->state == SIM_EMPTY) {
			err = EINVAL;
			continue;
		}
		if (b->state == SIM_HUGE)
			continue;
		mm->collapses++;
		set_state(mm, b, SIM_HUGE);
	}
	return err;
}

bool sim_mm_huge(struct sim_mm *mm, uint64_t page, uint64_t n)
{
	for (uint64_t p = page - page % SIM_BLOCK_PAGES; p < page + n; p += SIM_BLOCK_PAGES) {
		struct sim_mblock *b = sim_mm_block(mm, p / SIM_BLOCK_PAGES, false);
		if (!b || b->state != SIM_HUGE)
			return false;
	}
	return true;
}

bool sim_mm_uniform(struct sim_mm *mm, uint64_t page, int *prot)
{
	struct sim_mblock *b = sim_mm_block(mm, page / SIM_BLOCK_PAGES, false);
	return b && uniform(b, prot);
}

void sim_mm_use(struct sim_mm *mm, uint64_t page, uint64_t n, bool used)
{
	struct sim_mblock *b;
	FOR_PIECES(mm, page, n, b, first, cnt, used)
	{
		for (uint64_t i = first; i < first + cnt; i++) {
			uint64_t bit = 1ULL << (i % 64);
			bool was = b->used[i / 64] & bit;
			if (was == used)
				continue;
			b->used[i / 64] ^= bit;
			b->nused += used ? 1 : -1;
			mm->nused += used ? 1 : -1;
			if (b->state == SIM_HUGE)
				mm->nused_huge += used ? 1 : -1;
		}
		maybe_drop(mm, b);
	}
}
