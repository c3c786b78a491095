/* SPDX-License-Identifier: MIT */
/*
 * check.c - the arena's invariants, checked from scratch (hp_arena_check).
 *
 * The tests call it after every injected fault and after random
 * operations; it reads only the arena's own bookkeeping (no system call),
 * so a test can run it thousands of times.  What must hold, with the lock:
 *
 *   chunks     published in the chunk map; [lo, hi) inside the slot;
 *              ncommitted and the byte counts match their blocks.
 *   blocks     the bitmaps agree with the counts: nused = used bits,
 *              start bits only on used pages, longest_free right, nprot
 *              the census of prot[]; free pages carry the home class;
 *              each allocation start has a LIVE or HELD state.
 *   lists      an EMPTY block is on the free list of its node and set,
 *              an ACTIVE block with free pages in the bucket of its free
 *              pages, nothing else on any list, none twice, none linked
 *              to itself, prev/next consistent.
 *   spans      whole used blocks whose head names the span's length.
 *   collapse   the queue holds nqueued blocks, each flagged queued and
 *              committed, and no other block is flagged.
 *
 * The first violation is described in @why ("block 0x...: nused 3 != 4").
 */
#include "config.h"

#include "internal.h"

/* Count of walks before a list is called cyclic. */
#define LIST_LIMIT (1u << 24)

static int fail(struct hp_buf *why, const char *what, uintptr_t where, uint64_t got, uint64_t want)
{
	if (why) {
		hp_buf_str(why, what);
		hp_buf_str(why, " at 0x");
		hp_buf_hex(why, where);
		hp_buf_str(why, ": ");
		hp_buf_u64(why, got);
		hp_buf_str(why, " != ");
		hp_buf_u64(why, want);
	}
	return EUCLEAN;
}

static unsigned popcount(const uint64_t *map)
{
	unsigned n = 0;
	for (unsigned w = 0; w < HP_BITMAP_WORDS; w++)
		n += (unsigned)__builtin_popcountll(map[w]);
	return n;
}

/* The block's own state: bitmaps, counts, protections, allocations. */
static int check_block(const struct hp_block *b, struct hp_buf *why)
{
	if (b->home >= HP_NCLASS)
		return fail(why, "home class", b->base, b->home, HP_NCLASS);
	if (popcount(b->used) != b->nused)
		return fail(why, "nused", b->base, b->nused, popcount(b->used));
	unsigned nprot[HP_NCLASS] = {0}, run = 0, longest = 0;
	for (unsigned p = 0; p < HP_BLOCK_PAGES; p++) {
		bool used = hp_test_bit(b->used, p);
		if (b->prot[p] >= HP_NCLASS)
			return fail(why, "page class", b->base + p * HP_PAGE_SIZE, b->prot[p], 0);
		nprot[b->prot[p]]++;
		if (hp_test_bit(b->start, p) && !used)
			return fail(why, "start bit on a free page", b->base + p * HP_PAGE_SIZE, p,
				    0);
		if (!used && b->prot[p] != b->home && b->state != HP_BLOCK_SPAN)
			return fail(why, "free page not at the home class",
				    b->base + p * HP_PAGE_SIZE, b->prot[p], b->home);
		run = used ? 0 : run + 1;
		longest = run > longest ? run : longest;
		if (hp_test_bit(b->start, p) && b->state == HP_BLOCK_ACTIVE) {
			uint32_t st = hp_astate(b, p);
			unsigned len = hp_block_alloc_len(b, p);
			if ((st & HP_A_MASK) == HP_A_FREE || st >> 2 != len)
				return fail(why, "allocation state", b->base + p * HP_PAGE_SIZE, st,
					    (uint64_t)len << 2 | HP_A_LIVE);
		}
	}
	for (int c = 0; c < HP_NCLASS; c++)
		if (nprot[c] != b->nprot[c])
			return fail(why, "nprot", b->base, b->nprot[c], nprot[c]);
	if (b->state != HP_BLOCK_SPAN && longest != b->longest_free)
		return fail(why, "longest_free", b->base, b->longest_free, longest);
	return 0;
}

/* Where block @b must be: 0 nowhere, 1 a free list, 2 a pool bucket. */
static int expected_list(const struct hp_block *b)
{
	if (b->state == HP_BLOCK_EMPTY)
		return 1;
	if (b->state == HP_BLOCK_ACTIVE && b->nused < HP_BLOCK_PAGES)
		return 2;
	return 0;
}

/* Walk one list from @head: each block in the right place, links sane.
 * Adds the blocks seen to *seen. */
static int check_list(const struct hp_block *head, int kind, int nd, int set, int cls, int bucket,
		      size_t *seen, struct hp_buf *why)
{
	const struct hp_block *prev = NULL;
	for (const struct hp_block *b = head; b; prev = b, b = b->next) {
		if (++*seen > LIST_LIMIT)
			return fail(why, "list cycle", b->base, *seen, 0);
		if (b->next == b || b->prev == b)
			return fail(why, "self-linked block", b->base, 1, 0);
		if (b->prev != prev)
			return fail(why, "prev link", b->base, (uintptr_t)b->prev, (uintptr_t)prev);
		if (expected_list(b) != kind)
			return fail(why, "block on a list it does not belong to", b->base,
				    (uint64_t)kind, (uint64_t)expected_list(b));
		if (b->pool_idx != nd || b->pool_set != set)
			return fail(why, "block on another node's or set's list", b->base,
				    b->pool_idx * 16u + b->pool_set, (unsigned)(nd * 16 + set));
		if (kind == 2) {
			int k = (HP_BLOCK_PAGES - b->nused - 1) / HP_BUCKET_PAGES;
			if (b->home != cls || b->bucket != bucket || bucket != k)
				return fail(why, "pool bucket", b->base,
					    (uint64_t)(b->home * 256 + b->bucket),
					    (uint64_t)(cls * 256 + k));
		}
	}
	return 0;
}

int hp_arena_check(struct hp_arena *a, struct hp_buf *why)
{
	size_t committed = 0, reserved = 0, on_lists = 0, want_on_lists = 0, nqueued = 0;
	int err;

	for (struct hp_chunk *c = a->chunks; c; c = c->next) {
		if (c->lo >= c->hi || c->hi > HP_CHUNK_BLOCKS || (c->base & (HP_CHUNK_SIZE - 1)))
			return fail(why, "chunk extent", c->base, c->lo, c->hi);
		if (hp_chunk_map[c->base >> HP_CHUNK_SHIFT] != c)
			return fail(why, "chunk not published", c->base, 0, 1);
		reserved += hp_chunk_end(c) - hp_chunk_start(c);
		unsigned ncommitted = 0;
		for (unsigned i = c->lo; i < c->hi; i++) {
			const struct hp_block *b = &c->blocks[i];
			if (b->chunk != c || b->base != c->base + i * HP_BLOCK_SIZE)
				return fail(why, "block outside its chunk", b->base, i, 0);
			nqueued += b->queued;
			if (b->state == HP_BLOCK_UNCOMMITTED) {
				/* (it may still be queued: the queue skips it) */
				if (b->bucket >= 0 || b->aliased)
					return fail(why, "uncommitted block in use", b->base,
						    (b->bucket >= 0) * 2u + b->aliased, 0);
				continue;
			}
			ncommitted++;
			if (b->state > HP_BLOCK_SPAN)
				return fail(why, "block state", b->base, b->state, 0);
			if ((err = check_block(b, why)))
				return err;
			if (b->state == HP_BLOCK_EMPTY && b->nused)
				return fail(why, "empty block with used pages", b->base, b->nused,
					    0);
			if (b->state == HP_BLOCK_SPAN) {
				const struct hp_block *h = &c->blocks[b->span_head];
				if (b->nused != HP_BLOCK_PAGES || b->span_head < c->lo ||
				    h->state != HP_BLOCK_SPAN || i >= b->span_head + h->span)
					return fail(why, "span", b->base, b->span_head, h->span);
			}
			if (b->aliased && c->alias_fd[hp_alias_kind(b->backend)] < 0)
				return fail(why, "aliased block without a memfd", b->base, 0, 1);
			if (b->aliased && !c->alias_base)
				return fail(why, "aliased block without an alias view", b->base, 0,
					    1);
			want_on_lists += expected_list(b) != 0;
			if (expected_list(b) != 2 && b->bucket >= 0)
				return fail(why, "bucket of a block in no pool", b->base,
					    (uint64_t)b->bucket, 0);
		}
		if (ncommitted != c->ncommitted)
			return fail(why, "chunk ncommitted", c->base, c->ncommitted, ncommitted);
		committed += (size_t)ncommitted * HP_BLOCK_SIZE;
	}
	if (committed != a->committed_bytes)
		return fail(why, "committed bytes", 0, a->committed_bytes, committed);
	if (reserved != a->reserved_bytes)
		return fail(why, "reserved bytes", 0, a->reserved_bytes, reserved);
	if (a->max_bytes && committed > a->max_bytes)
		return fail(why, "committed over the cap", 0, committed, a->max_bytes);

	for (int nd = 0; nd < HP_MAX_NODES; nd++)
		for (int set = 0; set < HP_NSETS; set++) {
			err = check_list(a->node[nd].free_blocks[set], 1, nd, set, 0, -1, &on_lists,
					 why);
			if (err)
				return err;
			for (int cls = 0; cls < HP_NCLASS; cls++) {
				const struct hp_pool *p = &a->node[nd].pools[set][cls];
				for (int k = 0; k < (int)HP_NBUCKETS; k++) {
					if (!p->bucket[k] != !(p->mask & (1ULL << k)))
						return fail(why, "bucket mask", 0, p->mask,
							    (uint64_t)k);
					err = check_list(p->bucket[k], 2, nd, set, cls, k,
							 &on_lists, why);
					if (err)
						return err;
				}
			}
		}
	/* Every block that belongs on a list was seen on one, and the walks
	 * saw no more: with consistent prev links, none is on two. */
	if (on_lists != want_on_lists)
		return fail(why, "blocks on lists", 0, on_lists, want_on_lists);

	size_t walked = 0;
	for (const struct hp_block *b = a->queue; b; b = b->qnext) {
		if (++walked > nqueued || !b->queued)
			return fail(why, "collapse queue", b->base, walked, nqueued);
	}
	if (walked != nqueued || nqueued != a->nqueued)
		return fail(why, "collapse queue length", 0, a->nqueued, nqueued);
	return 0;
}
