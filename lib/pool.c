/* SPDX-License-Identifier: MIT */
/*
 * pool.c - where an allocation goes.
 *
 * Each class has a pool of partial blocks (blocks of that home class with
 * some page free), bucketed by free pages, 8 pages a bucket, with a bit
 * mask of the non-empty buckets.  Placement, best first:
 *
 *   1. the fullest partial block of the class that has a long enough free
 *      run (packing, as Temeraire does: fills blocks up so that others
 *      empty out and can be trimmed);
 *   2. an empty block: one on the arena's free list, else a new one;
 *   3. a steal: a partial block of another class.  The pages are
 *      mprotected to the class asked for, which makes that block mixed.
 *      Counted, and only when no block can be had (the arena's cap, or the
 *      kernel said ENOMEM).
 *
 * An allocation whose pages start in another protection than their home
 * class (HP_HOME: write code, then make it executable) will make its block
 * mixed for a while; such allocations prefer a block that is already mixed,
 * so that they cost no new split.
 *
 * Freed pages go back to the home class (one mprotect if they changed), so
 * a block whose allocations are all freed is uniform again; a block with no
 * page in use goes back to the arena's free list.
 *
 * Freed pages of executable classes are filled with int3 (HP_TRAP_BYTE)
 * before anyone can get them again, so stale code never runs; pages that
 * become executable from another class (a re-homed block, a steal, an
 * allocation that starts executable in a data block) are filled once on
 * the way; freed
 * writable pages are poisoned with HUGEPERM_POISON=1.  Writes into pages
 * the caller cannot write (hp_write) go, best first: through the block's
 * alias (a memcpy), through /proc/self/mem (a system call, but no change
 * of protection), and only as a last resort by flipping the pages to
 * writable and back.
 *
 * Pool sets: with a hugetlb backend, blocks cannot change protection in
 * part, so allocations that will (prot != home) come from a second set of
 * blocks on the mutable backend (THP, or small pages).  With THP or small
 * pages as the backend only set 0 is used.
 */
#include "config.h"

#include <string.h>

#include "internal.h"

static unsigned nfree(const struct hp_block *b)
{
	return HP_BLOCK_PAGES - b->nused;
}

void hp_pool_insert(struct hp_arena *a, struct hp_block *b)
{
	if (b->state != HP_BLOCK_ACTIVE || nfree(b) == 0)
		return;
	unsigned k = (nfree(b) - 1) / HP_BUCKET_PAGES;
	struct hp_pool *p = &a->node[b->pool_idx].pools[b->pool_set][b->home];
	b->bucket = (int8_t)k;
	b->prev = NULL;
	b->next = p->bucket[k];
	if (b->next)
		b->next->prev = b;
	p->bucket[k] = b;
	p->mask |= 1ULL << k;
}

void hp_pool_remove(struct hp_arena *a, struct hp_block *b)
{
	if (b->bucket < 0)
		return;
	struct hp_pool *p = &a->node[b->pool_idx].pools[b->pool_set][b->home];
	unsigned k = (unsigned)b->bucket;
	if (b->prev)
		b->prev->next = b->next;
	else
		p->bucket[k] = b->next;
	if (b->next)
		b->next->prev = b->prev;
	if (!p->bucket[k])
		p->mask &= ~(1ULL << k);
	b->next = b->prev = NULL;
	b->bucket = -1;
}

/*
 * The fullest block of pool @p with a free run of @n pages.  With
 * @want_mixed, a block that is not huge-mapped now is preferred.
 */
static struct hp_block *pool_find(struct hp_pool *p, unsigned n, bool want_mixed)
{
	struct hp_block *fallback = NULL;
	uint64_t mask = p->mask & (~0ULL << ((n - 1) / HP_BUCKET_PAGES));

	while (mask) {
		unsigned k = (unsigned)__builtin_ctzll(mask);
		mask &= mask - 1;
		for (struct hp_block *b = p->bucket[k]; b; b = b->next) {
			if (b->longest_free < n)
				continue;
			if (!want_mixed || !b->huge)
				return b;
			if (!fallback)
				fallback = b;
		}
	}
	return fallback;
}

/* A block of another class to steal @n pages of class @cls from, on the
 * pools of pool index @nd. */
static struct hp_block *pool_steal(struct hp_arena *a, int set, unsigned n, int cls, int nd)
{
	struct hp_block *best = NULL;
	for (int c = 0; c < HP_NCLASS; c++) {
		if (c == cls)
			continue;
		struct hp_block *b = pool_find(&a->node[nd].pools[set][c], n, true);
		if (!b || hp_backend_is_hugetlb(b->backend))
			continue;
		if (!b->huge) /* already mixed: stealing costs no split */
			return b;
		if (!best)
			best = b;
	}
	return best;
}

static int fill_pages(struct hp_arena *a, struct hp_block *b, size_t first, size_t n,
		      const char *page_of_bytes);
static int zero_dirty(struct hp_arena *a, struct hp_block *b, size_t first, size_t n);
static const char trap_page[HP_PAGE_SIZE];

/* Pages about to be handed out with protection @prot, from a block of home
 * class @home: executable ones must hold int3, and only an executable
 * class's free pages do (filled at commit, at a re-home and when freed):
 * others hold what their last owner left. */
static bool needs_trap(int prot, int home)
{
	return (prot & PROT_EXEC) && !(home & PROT_EXEC);
}

/*
 * Pages [first, first+n) of the range at @b, just taken, to protection
 * @prot: filled with int3 if they become executable, or, with @zero, made
 * to read as zero (only the dirty ones are written: fresh.c; a zeroed page
 * needs no trap).  On error they are back at the home class.  0 or errno.
 */
static int hand_out(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n, int prot,
		    bool zero)
{
	int err = needs_trap(prot, b->home) && !zero ? fill_pages(a, b, first, n, trap_page) : 0;
	if (!err)
		err = hp_pages_protect(a, b, first, n, prot);
	if (!err && zero && (err = zero_dirty(a, b, first, n)))
		(void)hp_pages_protect(a, b, first, n, b->home);
	if (!err)
		hp_fresh_dirty(b, first, n);
	return err;
}

static void *alloc_span(struct hp_arena *a, int set, size_t npages, int prot, int home, int node,
			bool zero)
{
	unsigned n = (unsigned)((npages + HP_BLOCK_PAGES - 1) / HP_BLOCK_PAGES);
	struct hp_block *head;
	int err = hp_arena_take_span(a, set, n, home, node, &head);
	if (err) {
		errno = err;
		return NULL;
	}
	err = hand_out(a, head, 0, (size_t)n * HP_BLOCK_PAGES, prot, zero);
	if (err) {
		for (unsigned i = 0; i < n; i++) {
			hp_block_give(&head[i], 0, HP_BLOCK_PAGES);
			hp_arena_put_block(a, &head[i]);
		}
		errno = err;
		return NULL;
	}
	return (void *)head->base;
}

/* Place @npages of class @home, with protection @prot, in pool set @set;
 * reading as zero with @zero. */
static void *place(struct hp_arena *a, int set, size_t npages, int prot, int home, bool zero)
{
	bool changes = prot != home;
	int node = hp_arena_node(a), nd = node % HP_MAX_NODES;

	if (npages > HP_BLOCK_PAGES)
		return alloc_span(a, set, npages, prot, home, node, zero);

	unsigned n = (unsigned)npages;
	struct hp_block *b;
	bool stolen;
	/* A block is taken off its list only with no collapse in flight on
	 * it, and the lock is not dropped from there to hp_pool_insert: a
	 * wait would let a concurrent free put it back on the list, and the
	 * insert below would link it twice.  After a wait, search again. */
	do {
		stolen = false;
		b = pool_find(&a->node[nd].pools[set][home], n, changes);
		if (b)
			continue;
		int err = hp_arena_take_block(a, set, home, node, &b);
		if (!err) {
			b->state = HP_BLOCK_ACTIVE;
			break;
		}
		/* Memory is short: a partial block of the class on another
		 * node, then a steal on ours. */
		b = NULL;
		for (int k = 1; k < HP_MAX_NODES && !b; k++)
			b = pool_find(&a->node[(nd + k) % HP_MAX_NODES].pools[set][home], n,
				      changes);
		/* No steal for NONE: another class's pages hold data. */
		if (!b && (changes || home == PROT_NONE ||
			   (set == HP_SET_PRIMARY && hp_backend_is_hugetlb(a->backend)) ||
			   !(b = pool_steal(a, set, n, home, nd)))) {
			errno = err;
			return NULL;
		}
		stolen = b->home != home;
	} while (hp_block_wait_collapse(a, b));

	hp_pool_remove(a, b);
	int first = hp_block_find_run(b, n);
	hp_block_take(b, (unsigned)first, n);
	int err = hand_out(a, b, (unsigned)first, n, prot, zero);
	if (err) {
		hp_block_give(b, (unsigned)first, n);
		if (b->nused == 0)
			hp_arena_put_block(a, b);
		else
			hp_pool_insert(a, b);
		errno = err;
		return NULL;
	}
	hp_pool_insert(a, b);
	if (stolen)
		a->n.steals[home]++;
	return (void *)(b->base + (uintptr_t)first * HP_PAGE_SIZE);
}

/* The block holding page @page of the range starting at block @b. */
static struct hp_block *nth_block(struct hp_block *b, size_t page)
{
	return b + page / HP_BLOCK_PAGES;
}

/*
 * Guard pages at both ends of the allocation [first, first+n) of block run
 * @b: MADV_GUARD_INSTALL where the kernel has it (no VMA, no protection
 * change: nothing splits, and the blocks are small-page ones anyway), else
 * PROT_NONE pages.
 */
static void guard_pages(struct hp_arena *a, struct hp_block *b, size_t first, size_t n)
{
	size_t at[2] = {first, first + n - 1};
	for (int k = 0; k < 2; k++) {
		struct hp_block *blk = nth_block(b, at[k]);
		unsigned i = (unsigned)(at[k] % HP_BLOCK_PAGES);
		if (a->guard_madvise) {
			int err = a->os->guard(blk->base + (uintptr_t)i * HP_PAGE_SIZE,
					       HP_PAGE_SIZE, true);
			if (!err) {
				a->n.guards_madvise++;
				continue;
			}
			if (err == EINVAL) /* before Linux 6.13 */
				a->guard_madvise = false;
		}
		if (hp_pages_protect(a, blk, i, 1, PROT_NONE) == 0)
			a->n.guards_prot++;
	}
}

/* Take the guards off (PROT_NONE ones go with the home protection). */
static void unguard_pages(struct hp_arena *a, struct hp_block *b, size_t first, size_t n)
{
	size_t at[2] = {first, first + n - 1};
	for (int k = 0; k < 2 && a->guard_madvise; k++) {
		struct hp_block *blk = nth_block(b, at[k]);
		a->os->guard(blk->base + (at[k] % HP_BLOCK_PAGES) * HP_PAGE_SIZE, HP_PAGE_SIZE,
			     false);
	}
}

static void *pool_alloc(struct hp_arena *a, size_t npages, int prot, int home, bool guarded,
			bool zero)
{
	/* Hugetlb pages are taken at map time and change protection only
	 * whole: lazy allocations (NONE) and class changes go to THP blocks.
	 * So does code on 1 GiB pages: one page per executable class, with no
	 * alias, would be too coarse; aliased 2 MiB blocks serve it. */
	bool changes = prot != home || home == PROT_NONE;
	bool to_mutable = (changes && a->primary_hugetlb) ||
			  ((home & PROT_EXEC) && a->backend == HP_BACKEND_HUGETLB_1G);
	int set = guarded ? HP_SET_GUARDED : to_mutable ? HP_SET_MUTABLE : HP_SET_PRIMARY;
	if (!guarded)
		return place(a, set, npages, prot, home, zero);
	uintptr_t p = (uintptr_t)place(a, set, npages + 2, prot, home, zero);
	if (!p)
		return NULL;
	struct hp_block *b = hp_block_of(p);
	size_t first = (p - b->base) >> HP_PAGE_SHIFT;
	guard_pages(a, b, first,
		    b->state == HP_BLOCK_SPAN ? (size_t)b->span * HP_BLOCK_PAGES : npages + 2);
	return (void *)(p + HP_PAGE_SIZE);
}

void *hp_pool_alloc(struct hp_arena *a, size_t npages, int prot, int home, bool guarded)
{
	return pool_alloc(a, npages, prot, home, guarded, false);
}

void *hp_pool_alloc_zeroed(struct hp_arena *a, size_t npages, int prot, int home, bool guarded)
{
	return pool_alloc(a, npages, prot, home, guarded, true);
}

/* Where the allocation that holds @addr lives: its first block, first page
 * and length in pages.  EINVAL when no live allocation holds it. */
static int find_raw(struct hp_arena *a, uintptr_t addr, struct hp_block **head, unsigned *first,
		    size_t *npages)
{
	struct hp_block *b = hp_block_of(addr);
	if (!b || b->chunk->arena != a)
		return EINVAL;
	unsigned page = (unsigned)((addr - b->base) >> HP_PAGE_SHIFT);
	if (b->state == HP_BLOCK_SPAN) {
		*head = &b->chunk->blocks[b->span_head];
		*first = 0;
		*npages = (size_t)(*head)->span * HP_BLOCK_PAGES;
		return (hp_astate(*head, 0) & HP_A_MASK) == HP_A_LIVE ? 0 : EINVAL;
	}
	if (b->state != HP_BLOCK_ACTIVE)
		return EINVAL;
	int start = hp_block_alloc_start(b, page);
	if (start < 0 || (hp_astate(b, (unsigned)start) & HP_A_MASK) != HP_A_LIVE)
		return EINVAL; /* none, or freed into a thread cache */
	*head = b;
	*first = (unsigned)start;
	*npages = hp_block_alloc_len(b, (unsigned)start);
	return 0;
}

/* Like find_raw(), but for the caller's part: guard pages excluded. */
static int find_alloc(struct hp_arena *a, uintptr_t addr, struct hp_block **head, unsigned *first,
		      size_t *npages)
{
	int err = find_raw(a, addr, head, first, npages);
	if (err || (*head)->pool_set != HP_SET_GUARDED)
		return err;
	*first += 1;
	*npages -= 2;
	uintptr_t start = (*head)->base + (uintptr_t)*first * HP_PAGE_SIZE;
	if (addr < start || addr >= start + *npages * HP_PAGE_SIZE)
		return EINVAL; /* a guard page */
	return 0;
}

/* Like find_alloc(), but @addr must be where the allocation starts. */
static int find_alloc_at(struct hp_arena *a, uintptr_t addr, struct hp_block **head,
			 unsigned *first, size_t *npages)
{
	int err = find_alloc(a, addr, head, first, npages);
	if (!err && addr != (*head)->base + (uintptr_t)*first * HP_PAGE_SIZE)
		err = EINVAL;
	return err;
}

/* How a write reached pages the caller cannot write itself. */
enum write_method { W_DIRECT, W_ALIAS, W_PROCMEM, W_FLIP };

/*
 * Put the protections of pages [p0, p) of the range at block @b back to
 * @prot[] after a flip.  0 or the first errno; each page is tried.
 */
static int unflip(struct hp_arena *a, struct hp_block *b, size_t p0, size_t p, const uint8_t *prot)
{
	int first_err = 0;
	for (size_t q = p0; q < p; q++) {
		struct hp_block *blk = nth_block(b, q);
		int err = hp_pages_protect(a, blk, (unsigned)(q % HP_BLOCK_PAGES), 1, prot[q - p0]);
		if (err) /* once more: the kernel's ENOMEM is mostly transient */
			err = hp_pages_protect(a, blk, (unsigned)(q % HP_BLOCK_PAGES), 1,
					       prot[q - p0]);
		if (err && !first_err)
			first_err = err;
	}
	return first_err;
}

/* Saved protections of a flip of up to this many pages live on the stack;
 * more take metadata memory. */
#define FLIP_STACK_PAGES 64

/*
 * hp_write's last resort: the pages writable (never executable), the
 * copy, the protections back.  All or nothing: every page is made
 * writable before a byte is stored, and if one cannot be, those already
 * flipped are put back and nothing is written.
 */
static int write_flip(struct hp_arena *a, struct hp_block *b, uintptr_t dst, const void *src,
		      size_t size)
{
	size_t p0 = (dst - b->base) >> HP_PAGE_SHIFT;
	size_t p1 = (dst + size - 1 - b->base) >> HP_PAGE_SHIFT;
	size_t n = p1 - p0 + 1;
	uint8_t stack[FLIP_STACK_PAGES], *saved = stack;
	int err = 0;

	if (n > FLIP_STACK_PAGES && !(saved = a->os->meta_alloc(n)))
		return ENOMEM;
	for (size_t p = p0; p <= p1; p++) {
		struct hp_block *blk = nth_block(b, p);
		unsigned i = (unsigned)(p % HP_BLOCK_PAGES);
		saved[p - p0] = blk->prot[i];
		err = hp_pages_protect(a, blk, i, 1,
				       (blk->prot[i] | PROT_READ | PROT_WRITE) & ~PROT_EXEC);
		if (err) {
			unflip(a, b, p0, p, saved);
			break;
		}
	}
	if (!err) {
		a->os->store(dst, src, 0, size);
		err = unflip(a, b, p0, p1 + 1, saved);
	}
	if (saved != stack)
		a->os->meta_free(saved, n);
	return err;
}

/*
 * Copy @size bytes to @dst, inside a live allocation that starts in block
 * @b (a span's head: later pages are in the following blocks), changing no
 * page's protection if that can be helped.  Lock held.  0 or errno; the
 * method used goes to @method.
 */
static int write_pages(struct hp_arena *a, struct hp_block *b, uintptr_t dst, const void *src,
		       size_t size, enum write_method *method)
{
	size_t p0 = (dst - b->base) >> HP_PAGE_SHIFT;
	size_t p1 = (dst + size - 1 - b->base) >> HP_PAGE_SHIFT;
	bool writable = true, aliased = true;

	for (size_t p = p0; p <= p1; p++) {
		struct hp_block *blk = nth_block(b, p);
		writable &= (blk->prot[p % HP_BLOCK_PAGES] & PROT_WRITE) != 0;
		aliased &= blk->aliased;
	}
	if (writable) {
		a->os->store(dst, src, 0, size);
		*method = W_DIRECT;
		return 0;
	}
	if (aliased) {
		a->os->store(hp_alias_of(b, dst), src, 0, size);
		*method = W_ALIAS;
		return 0;
	}
	int err = a->os->mem_write(dst, src, size);
	if (err == 0) {
		*method = W_PROCMEM;
		return 0;
	}
	/* Last resort: the pages writable (never executable) for the copy.
	 * A hugetlb page changes protection only whole: no flip there. */
	for (size_t p = p0; p <= p1; p++)
		if (hp_backend_is_hugetlb(nth_block(b, p)->backend))
			return err;
	err = write_flip(a, b, dst, src, size);
	if (!err)
		*method = W_FLIP;
	return err;
}

static const char trap_page[HP_PAGE_SIZE] = {[0 ... HP_PAGE_SIZE - 1] = (char)HP_TRAP_BYTE};
static const char poison_page[HP_PAGE_SIZE] = {[0 ... HP_PAGE_SIZE - 1] = (char)HP_POISON_BYTE};

/* Fill @n pages from page @first of the allocation at block @b, whatever
 * their protection.  0 or the first error. */
static int fill_pages(struct hp_arena *a, struct hp_block *b, size_t first, size_t n,
		      const char *page_of_bytes)
{
	enum write_method m;
	int err = 0;
	for (size_t p = first; p < first + n; p++) {
		int e = write_pages(a, b, b->base + p * HP_PAGE_SIZE, page_of_bytes, HP_PAGE_SIZE,
				    &m);
		if (!err)
			err = e;
	}
	return err;
}

static const char zero_page[HP_PAGE_SIZE];

/* Make the dirty pages of [first, first+n) of the range at @b read as zero:
 * a store where they are writable, else as hp_write writes.  0 or the
 * first error. */
static int zero_dirty(struct hp_arena *a, struct hp_block *b, size_t first, size_t n)
{
	for (size_t p = first; p < first + n;) {
		struct hp_block *blk = nth_block(b, p);
		unsigned i = (unsigned)(p % HP_BLOCK_PAGES), len;
		unsigned end = first + n - p < HP_BLOCK_PAGES - i ? i + (unsigned)(first + n - p)
								  : HP_BLOCK_PAGES;
		unsigned at = hp_fresh_next_dirty(blk, i, end, &len);
		if (len && hp_block_prot_is(blk, at, len, blk->prot[at]) &&
		    (blk->prot[at] & PROT_WRITE)) {
			a->os->store(blk->base + (uintptr_t)at * HP_PAGE_SIZE, NULL, 0,
				     (size_t)len * HP_PAGE_SIZE);
		} else if (len) {
			int err = fill_pages(a, b, p - i + at, len, zero_page);
			if (err)
				return err;
		}
		p += at + len - i;
	}
	return 0;
}

/*
 * Drop the memory of @n pages from page @first of block run @b (MADV_DONTNEED):
 * they read as zero after, their protection stays.  A whole block loses its
 * huge mapping without a split and becomes lazy (populated again before its
 * next collapse); part of a huge block is split by the kernel, and counted.
 */
static int discard_pages(struct hp_arena *a, struct hp_block *b, size_t first, size_t n,
			 struct hp_held *held)
{
	struct hp_held own; /* whole blocks with no page need no call */
	if (!held)
		hp_held_begin(a, held = &own, b, first, n);
	for (size_t p = first; p < first + n;) {
		struct hp_block *blk = nth_block(b, p);
		unsigned i = (unsigned)(p % HP_BLOCK_PAGES);
		size_t k = HP_BLOCK_PAGES - i < first + n - p ? HP_BLOCK_PAGES - i : first + n - p;
		hp_block_wait_collapse(a, blk);
		if (k < HP_BLOCK_PAGES)
			hp_block_learn_huge(a, blk);
		int err = k == HP_BLOCK_PAGES && !hp_held_block(held, blk)
				  ? 0
				  : a->os->discard(blk->base + (uintptr_t)i * HP_PAGE_SIZE,
						   k * HP_PAGE_SIZE);
		if (err)
			return err;
		if (k == HP_BLOCK_PAGES) {
			blk->huge = false;
			blk->lazy = true;
		} else if (blk->huge) {
			blk->huge = false;
			a->n.splits[blk->home]++;
		}
		p += k;
	}
	return 0;
}

void hp_pool_give_back(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n)
{
	if (b->state == HP_BLOCK_SPAN) {
		unsigned nblocks = b->span;
		for (unsigned i = 0; i < nblocks; i++) {
			hp_block_give(&b[i], 0, HP_BLOCK_PAGES);
			hp_arena_put_block(a, &b[i]);
		}
		return;
	}
	hp_pool_remove(a, b);
	hp_block_give(b, first, (unsigned)n);
	if (b->nused == 0)
		hp_arena_put_block(a, b);
	else
		hp_pool_insert(a, b);
}

/* Freed pages of a lazy block's class (NONE) must read as zero for their
 * next owner: their memory is dropped, or, if the kernel refuses that,
 * zeros are written.  0 or errno. */
static int drop_pages(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n)
{
	int err = discard_pages(a, b, first, n, NULL);
	if (err)
		err = fill_pages(a, b, first, n, zero_page);
	return err;
}

int hp_pool_free_claimed(struct hp_arena *a, struct hp_block *b, unsigned first)
{
	size_t n = b->state == HP_BLOCK_SPAN ? (size_t)b->span * HP_BLOCK_PAGES
					     : hp_block_alloc_len(b, first);
	bool guarded = b->pool_set == HP_SET_GUARDED;
	if (guarded) /* the guards' state goes back first: a retry must find them */
		unguard_pages(a, b, first, n);
	/* Pages are emptied (lazy blocks) and go back to the home class first:
	 * if that fails, nothing but their bytes has changed and the
	 * allocation is still live. */
	bool drops = hp_block_drops_free(b);
	int err = drops ? drop_pages(a, b, first, n) : 0;
	if (!err)
		err = hp_pages_protect(a, b, first, n, b->home);
	if (!err && drops)
		hp_fresh_clean(b, first, n);
	if (err) {
		if (guarded)
			guard_pages(a, b, first, n);
		hp_astate_set(b, first, HP_A_LIVE, n);
		return err;
	}
	hp_pool_scrub(a, b, first, n);
	hp_pool_give_back(a, b, first, n);
	return 0;
}

void hp_pool_scrub(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n)
{
	if (b->home & PROT_EXEC)
		(void)fill_pages(a, b, first, n, trap_page);
	else if (a->poison && (b->home & PROT_WRITE))
		(void)fill_pages(a, b, first, n, poison_page);
}

int hp_pool_free(struct hp_arena *a, uintptr_t addr)
{
	struct hp_block *b;
	unsigned first;
	size_t n;

	if (find_alloc_at(a, addr, &b, &first, &n))
		return EINVAL;
	if (b->pool_set == HP_SET_GUARDED) /* the whole allocation, guards too */
		first--;
	if (!hp_astate_claim(b, first, NULL))
		return EINVAL; /* another thread freed it first */
	return hp_pool_free_claimed(a, b, first);
}

/* Is [addr, addr + npages pages) inside one live allocation?  Its first
 * block goes to *b.  0 or ENOMEM (as mprotect(2) says of unmapped pages). */
static int find_range(struct hp_arena *a, uintptr_t addr, size_t npages, struct hp_block **b)
{
	unsigned first;
	size_t n;

	if (find_alloc(a, addr, b, &first, &n))
		return ENOMEM;
	uintptr_t start = (*b)->base + (uintptr_t)first * HP_PAGE_SIZE;
	return addr + npages * HP_PAGE_SIZE > start + n * HP_PAGE_SIZE ? ENOMEM : 0;
}

int hp_pool_protect(struct hp_arena *a, uintptr_t addr, size_t npages, int prot)
{
	struct hp_block *b;
	if (find_range(a, addr, npages, &b))
		return ENOMEM;
	if (hp_backend_is_hugetlb(b->backend)) {
		/* The kernel changes a hugetlb page's protection only whole. */
		uintptr_t unit = b->chunk->hugetlb_1g ? HP_CHUNK_SIZE : HP_BLOCK_SIZE;
		if ((addr & (unit - 1)) || ((npages * HP_PAGE_SIZE) & (unit - 1)))
			return EINVAL;
	}
	/* In a span the range may start in a later block than the head. */
	struct hp_block *at = hp_block_of(addr);
	unsigned page = (unsigned)((addr - at->base) >> HP_PAGE_SHIFT);
	return hp_pages_protect(a, at, page, npages, prot);
}

int hp_pool_discard(struct hp_arena *a, uintptr_t addr, size_t npages)
{
	struct hp_block *b;
	if (find_range(a, addr, npages, &b))
		return ENOMEM;
	struct hp_block *at = hp_block_of(addr);
	size_t page = (addr - at->base) >> HP_PAGE_SHIFT;
	struct hp_held held;
	hp_held_begin(a, &held, at, page, npages);
	for (size_t p = page; p < page + npages;) {
		struct hp_block *blk = nth_block(at, p);
		unsigned i = (unsigned)(p % HP_BLOCK_PAGES);
		size_t k = HP_BLOCK_PAGES - i < page + npages - p ? HP_BLOCK_PAGES - i
								  : page + npages - p;
		bool writable = true;
		for (unsigned j = i; j < i + k; j++)
			writable &= (blk->prot[j] & PROT_WRITE) != 0;
		/* Writable pages are zeroed in place: no system call, and a huge
		 * block stays huge.  Shared (aliased) and hugetlb memory is
		 * written too: MADV_DONTNEED would not zero the one, and cannot
		 * take part of the other. */
		if (writable || blk->aliased || hp_backend_is_hugetlb(blk->backend)) {
			int err = fill_pages(a, blk, i, k, zero_page);
			if (err)
				return err;
		} else {
			int err = discard_pages(a, blk, i, k, &held);
			if (err)
				return err;
		}
		p += k;
	}
	return 0;
}

size_t hp_pool_usable(struct hp_arena *a, uintptr_t addr)
{
	struct hp_block *b;
	unsigned first;
	size_t n;

	return find_alloc_at(a, addr, &b, &first, &n) ? 0 : n * HP_PAGE_SIZE;
}

int hp_pool_write(struct hp_arena *a, uintptr_t dst, const void *src, size_t size)
{
	struct hp_block *b;
	unsigned first;
	size_t n;

	if (find_alloc(a, dst, &b, &first, &n))
		return ENOMEM;
	uintptr_t end = b->base + ((uintptr_t)first + n) * HP_PAGE_SIZE;
	if (size > end - dst)
		return ENOMEM;
	return hp_pool_store(a, b, dst, src, size);
}

int hp_pool_store(struct hp_arena *a, struct hp_block *b, uintptr_t dst, const void *src,
		  size_t size)
{
	if (!src)
		src = trap_page;
	enum write_method m;
	int err = write_pages(a, b, dst, src, size, &m);
	if (err)
		return err;
	uint64_t *count[] = {&a->n.writes_direct, &a->n.writes_alias, &a->n.writes_procmem,
			     &a->n.writes_flip};
	(*count[m])++;
	/* x86 keeps instruction fetch coherent with stores, through any alias;
	 * other architectures need the caches synchronised for the code view. */
	__builtin___clear_cache((char *)dst, (char *)dst + size);
	return 0;
}

int hp_pool_writable(struct hp_arena *a, uintptr_t addr, uintptr_t *out)
{
	struct hp_block *b;
	unsigned first;
	size_t n;

	if (find_alloc(a, addr, &b, &first, &n))
		return EINVAL;
	struct hp_block *at = hp_block_of(addr);
	if (at->prot[(addr - at->base) >> HP_PAGE_SHIFT] & PROT_WRITE) {
		*out = addr;
		return 0;
	}
	if (!at->aliased)
		return EOPNOTSUPP;
	*out = hp_alias_of(at, addr);
	return 0;
}
