/* SPDX-License-Identifier: MIT */
/*
 * pool.t - placement policy on fake OS hooks: packing, classes apart,
 * steals, HP_HOME, spans, chunks in part of a slot near a hint, the hugetlb
 * pool sets and the fallback.
 */
#include "fake_os.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define PG HP_PAGE_SIZE

static struct hp_block *blk(void *p)
{
	return hp_block_of((uintptr_t)p);
}

static void test_packing(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	void *p400 = hp_pool_alloc(a, 400, RW, RW, false);
	void *p200 = hp_pool_alloc(a, 200, RW, RW, false);
	ok(p400 && p200 && blk(p400) != blk(p200), "400 + 200 pages need two blocks");
	ok(blk(p400)->huge, "a fresh THP block is huge-mapped");
	void *p50 = hp_pool_alloc(a, 50, RW, RW, false);
	ok(blk(p50) == blk(p400), "50 pages go to the fullest block that fits");
	void *rx = hp_pool_alloc(a, 1, RX, RX, false);
	ok(blk(rx) != blk(p400) && blk(rx) != blk(p200),
	   "RX gets its own block while blocks can be had");
	is(blk(rx)->home, RX, "... whose home class is RX");
	is(fake.protect_calls, 0, "no mprotect for allocations in their home class");
	fake_check_arena(a, "after packing");

	/* Free the RX allocation: its block is empty and can serve another class. */
	is(hp_pool_free(a, (uintptr_t)rx), 0, "free RX");
	is(blk(rx)->state, HP_BLOCK_EMPTY, "its block goes back to the free list");
	void *r = hp_pool_alloc(a, 1, PROT_READ, PROT_READ, false);
	ok(blk(r) == blk(rx), "an empty block is reused for another class");
	is(fake.protect_calls, 1, "... with one whole-block mprotect");
	is(fake.last_protect_size, HP_BLOCK_SIZE, "... of the whole block");
	ok(blk(r)->huge, "... which keeps it huge-mapped");
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_collect(a, &st);
	is(st.splits, 0, "no split so far");
	is(st.steals, 0, "no steal so far");
	fake_arena_free(a);
}

static void test_steal(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	a->max_bytes = 2 * HP_BLOCK_SIZE;
	void *rw = hp_pool_alloc(a, 10, RW, RW, false);
	void *rx = hp_pool_alloc(a, 10, RX, RX, false);
	ok(rw && rx, "two blocks within the cap");
	void *r = hp_pool_alloc(a, 4, PROT_READ, PROT_READ, false);
	ok(r != NULL, "a third class is served at the cap ...");
	ok(blk(r) == blk(rw) || blk(r) == blk(rx), "... by stealing from another class's block");
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_collect(a, &st);
	is(st.steals, 1, "the steal is counted");
	is(st.cls[PROT_READ].steals, 1, "... against the class asked for");
	is(st.splits, 1, "and it split the huge block it stole from");
	is(st.mixed_blocks, 1, "that block is mixed");
	is(hp_pool_free(a, (uintptr_t)r), 0, "free the stolen pages");
	hp_stats_collect(a, &st);
	is(st.mixed_blocks, 0, "freed pages return to the home class: uniform again");
	is(st.collapse_pending, 1, "and the block is queued for collapse");
	a->max_bytes = 2 * HP_BLOCK_SIZE;
	void *big = hp_pool_alloc(a, 600, RW, RW, false);
	ok(!big && errno == ENOMEM, "a span over the cap fails with ENOMEM");
	fake_check_arena(a, "after steals");
	fake_arena_free(a);
}

static void test_home(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	void *f1 = hp_pool_alloc(a, 1, RW, RX, false);
	ok(f1 && blk(f1)->home == RX, "HP_HOME(RX): RW pages placed in an RX block");
	is(a->n.splits[RX], 1, "which splits the block while the code is written");
	is(hp_pool_protect(a, (uintptr_t)f1, 1, RX), 0, "make it executable");
	ok(hp_block_uniform(blk(f1), NULL), "the block is uniform RX again");
	is(a->nqueued, 1, "and queued for collapse");
	void *f2 = hp_pool_alloc(a, 1, RW, RX, false);
	ok(blk(f2) == blk(f1), "the next function goes to the same (not huge) block");
	is(a->n.splits[RX], 1, "costing no new split");
	is(hp_pool_free(a, (uintptr_t)f2), 0, "free the unfinished function");
	is(fake.last_protect_prot, RX, "its pages go back to RX");
	fake_arena_free(a);
}

static void test_span(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	void *p = hp_pool_alloc(a, 768, RW, RW, false); /* 3 MiB */
	ok(p && ((uintptr_t)p & (HP_BLOCK_SIZE - 1)) == 0, "3 MiB: block-aligned span");
	is(hp_pool_usable(a, (uintptr_t)p), 2 * HP_BLOCK_SIZE, "takes two whole blocks");
	is(blk((char *)p + HP_BLOCK_SIZE)->state, HP_BLOCK_SPAN, "the second block is in the span");
	is(hp_pool_free(a, (uintptr_t)p + HP_BLOCK_SIZE), EINVAL,
	   "free of the span's middle: EINVAL");
	is(hp_pool_protect(a, (uintptr_t)p + HP_BLOCK_SIZE, 512, RX), 0,
	   "protect the second block of the span");
	is(a->n.splits[RW], 0, "a whole-block change is no split");
	is(hp_pool_protect(a, (uintptr_t)p + HP_BLOCK_SIZE - PG, 2, PROT_READ), 0,
	   "protect two pages across the blocks' boundary");
	is(fake.last_protect_size, 2 * PG, "... with one mprotect");
	is(a->n.splits[RW], 2, "which splits both blocks");
	is(hp_pool_free(a, (uintptr_t)p), 0, "free the span");
	ok(blk(p)->state == HP_BLOCK_EMPTY &&
		   blk((char *)p + HP_BLOCK_SIZE)->state == HP_BLOCK_EMPTY,
	   "both blocks are empty again");
	void *g = hp_pool_alloc(a, HP_CHUNK_BLOCKS * HP_BLOCK_PAGES, RX, RX, false);
	ok(g && hp_pool_usable(a, (uintptr_t)g) == HP_CHUNK_SIZE, "a 1 GiB allocation");
	fake_check_arena(a, "with a 1 GiB span");
	fake_arena_free(a);
}

/* An arena near a hint whose slot holds a mapping of the program's: the
 * chunk is the part of the slot nearest the hint, and nothing outside it
 * is ours; what does not fit there goes to the next slot. */
static void test_near_part(void)
{
	fake_reset();
	const uintptr_t slot = 0x600000000000UL, MB = 1UL << 20;
	fake.busy_lo = slot + 300 * MB + 8192; /* the program's: not block aligned */
	fake.busy_hi = slot + 360 * MB;
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	a->near = slot + 371 * MB;
	char *p = hp_pool_alloc(a, 1, RW, RW, false);
	ok(p && (uintptr_t)p == slot + 370 * MB, "the page is in the block holding the hint");
	struct hp_chunk *c = p ? blk(p)->chunk : NULL;
	ok(c && c->base == slot && c->lo == 180 && c->hi == HP_CHUNK_BLOCKS,
	   "its chunk is the slot's part above the program's mapping");
	ok(!hp_owns((void *)fake.busy_lo, fake.busy_hi - fake.busy_lo) &&
		   !hp_owns((void *)slot, 300 * MB) && !blk((void *)(slot + 359 * MB)),
	   "the program's mapping and the part below it are not ours");
	ok(hp_owns((void *)(slot + 359 * MB), 2 * MB) && hp_owns((void *)(slot + 360 * MB), 1),
	   "a range reaching into the chunk's part is");
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_collect(a, &st);
	is(st.reserved_bytes, (HP_CHUNK_BLOCKS - 180) * HP_BLOCK_SIZE,
	   "reserved: the part, not the slot");
	void *g = hp_pool_alloc(a, 400 * HP_BLOCK_PAGES, RW, RW, false); /* 800 MiB */
	ok(g && (uintptr_t)g == slot - HP_CHUNK_SIZE && hp_owns(g, 800 * MB),
	   "800 MiB does not fit the part: the whole slot nearest the hint, below (%p)", g);
	is(fake.reserve_in_calls, 2, "two slots asked for");
	fake_check_arena(a, "with a part of a slot");
	fake_arena_free(a);
	ok(!hp_owns((void *)(slot + 370 * MB), 1), "freed with its arena");

	/* A first request bigger than the part nearest the hint (V8's 512 MiB
	 * code range hinted near its binary) takes a slot it fits in. */
	fake_reset();
	const uintptr_t slot2 = slot + 8 * HP_CHUNK_SIZE;
	fake.busy_lo = slot2;
	fake.busy_hi = slot2 + 900 * MB; /* 124 MiB free above it */
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	a->near = slot2 + 950 * MB;
	void *big = hp_pool_alloc(a, 128 * HP_BLOCK_PAGES, PROT_NONE, PROT_NONE, false);
	ok(big && (uintptr_t)big == slot2 + HP_CHUNK_SIZE,
	   "256 MiB with 124 MiB free at the hint: the whole slot above, 74 MiB away (%p)", big);
	fake_arena_free(a);
}

/* HP_ARENA_NEAR_EXACT: a range the program mapped at an address of its own
 * (YJIT's, whose 256 MiB cross a 1 GiB boundary 1 run in a few, 26 MiB of
 * it below) is served where it is, from a part of the slot smaller than
 * the 32 MiB a chunk near a mere hint takes at least; without the flag that
 * part is passed over for the next slot. */
static void test_near_exact(void)
{
	const uintptr_t slot = 0x600000000000UL, MB = 1UL << 20;
	for (int exact = 0; exact < 2; exact++) {
		fake_reset();
		fake.busy_lo = slot;
		fake.busy_hi = slot + 996 * MB; /* 28 MiB free at the slot's top */
		struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
		a->near = slot + 996 * MB;
		a->near_exact = exact;
		char *p = hp_pool_alloc(a, 13 * HP_BLOCK_PAGES, PROT_NONE, PROT_NONE, false);
		if (exact)
			ok(p && (uintptr_t)p == slot + 996 * MB && blk(p)->chunk->lo == 498,
			   "exact: 26 MiB at the hint, in the 28 MiB the slot has free (%p)", p);
		else
			ok(p && (uintptr_t)p == slot + HP_CHUNK_SIZE,
			   "a mere hint: the next slot, not a part under 32 MiB (%p)", p);
		fake_check_arena(a, "near exact");
		fake_arena_free(a);
	}
}

static void test_hugetlb(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_HUGETLB_2M, HP_COLLAPSE_DEFERRED);
	void *d = hp_pool_alloc(a, 4, RW, RW, false);
	is(blk(d)->backend, HP_BACKEND_HUGETLB_2M, "fixed-class allocation on hugetlb");
	is(hp_pool_protect(a, (uintptr_t)d, 4, PROT_READ), EINVAL,
	   "part of a hugetlb block cannot change: EINVAL");
	is(fake.protect_calls, 0, "... and nothing was asked of the kernel");
	void *code = hp_pool_alloc(a, 1, RW, RX, false);
	is(blk(code)->backend, HP_BACKEND_THP, "HP_HOME allocation goes to a THP block");
	void *whole = hp_pool_alloc(a, 512, RW, RW, false);
	is(hp_pool_protect(a, (uintptr_t)whole, 512, PROT_READ), 0,
	   "a whole hugetlb block can change");
	fake_arena_free(a);

	/* Pool exhausted at commit time: with BACKEND=auto, fall back to THP. */
	fake_reset();
	a = fake_arena(HP_BACKEND_HUGETLB_2M, HP_COLLAPSE_DEFERRED);
	fake.commit_fail_after = 1;
	void *x = hp_pool_alloc(a, 1, RW, RW, false);
	void *y = hp_pool_alloc(a, 1, RX, RX, false); /* needs a second block: commit fails */
	ok(x && y, "allocation goes on when the hugetlb pool runs dry");
	is(blk(x)->backend, HP_BACKEND_HUGETLB_2M, "first block was hugetlb");
	fake.commit_fail_after = -1;
	is(a->backend, HP_BACKEND_THP, "the arena fell back to THP");
	/* Its old hugetlb block, freed, holds the RW data: a PROT_NONE
	 * allocation (which must read as zero) never takes it. */
	hp_pool_free(a, (uintptr_t)x);
	void *none = hp_pool_alloc(a, 512, PROT_NONE, PROT_NONE, false);
	ok(none && !hp_backend_is_hugetlb(blk(none)->backend) && blk(none)->lazy,
	   "after the fall back, PROT_NONE takes a lazy THP block, not the freed hugetlb one");
	fake_arena_free(a);
}

static void test_guards(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	a->guard_madvise = true;
	char *p = hp_pool_alloc(a, 3, RW, RW, true);
	struct hp_block *b = blk(p);
	is(b->pool_set, HP_SET_GUARDED, "guarded: a block of the guarded set");
	is(b->backend, HP_BACKEND_SMALL, "... on small pages, whatever the arena's backend");
	is(fake.guard_calls, 2, "two MADV_GUARD_INSTALL calls");
	is(hp_pool_usable(a, (uintptr_t)p), 3 * PG, "usable: 3 pages");
	is(hp_pool_free(a, (uintptr_t)p), 0, "free");
	is(fake.guard_calls, 4, "and two MADV_GUARD_REMOVE calls");

	/* An older kernel: EINVAL, then PROT_NONE pages for good. */
	fake.guard_refuse = EINVAL;
	p = hp_pool_alloc(a, 2, RW, RW, true);
	b = blk(p);
	unsigned at = (unsigned)(((uintptr_t)p - b->base) / PG);
	ok(b->prot[at - 1] == PROT_NONE && b->prot[at + 2] == PROT_NONE,
	   "MADV_GUARD_INSTALL refused: the guards are PROT_NONE pages");
	ok(!a->guard_madvise && a->n.guards_prot == 2, "counted, and madvise is not tried again");
	is(hp_pool_free(a, (uintptr_t)p), 0, "free");
	ok(b->prot[at - 1] == RW && b->prot[at + 2] == RW, "the PROT_NONE guards went back to RW");
	fake_check_arena(a, "with guards");
	fake_arena_free(a);
}

/* HP_ZERO (hp_pool_alloc_zeroed): only pages handed out (or filled) since
 * the kernel zeroed the block are written. */
static void test_zeroed(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	void *p = hp_pool_alloc_zeroed(a, 16, RW, RW, false);
	is(fake.stored_bytes, 0, "zeroed: a fresh block's pages are not written");
	struct hp_block *b = blk(p);
	hp_pool_free(a, (uintptr_t)p);
	void *q = hp_pool_alloc_zeroed(a, 64, RW, RW, false);
	ok(q == p, "zeroed: the same pages again, and more");
	is(fake.stored_bytes, 16 * HP_PAGE_SIZE,
	   "zeroed: only the 16 handed out before are written");
	is(fake.stores, 1, "zeroed: in one store (a writable run)");
	hp_pool_free(a, (uintptr_t)q);
	fake.stored_bytes = 0;
	void *r = hp_pool_alloc(a, 8, RW, RW, false);
	is(fake.stored_bytes, 0, "not zeroed: nothing written");
	hp_pool_free(a, (uintptr_t)r);
	void *s = hp_pool_alloc_zeroed(a, HP_BLOCK_PAGES, RW, RW, false);
	is(fake.stored_bytes, 64 * HP_PAGE_SIZE, "zeroed, the whole block: the 64 dirty pages");
	ok(blk(s) == b && b->huge, "... and the block stays huge (a store, no MADV_DONTNEED)");
	is(fake.discard_calls, 0, "no MADV_DONTNEED");
	hp_pool_free(a, (uintptr_t)s);

	/* Executable blocks are int3 while free: all dirty. */
	int mw = fake.mem_writes;
	void *x = hp_pool_alloc_zeroed(a, 4, RX, RX, false);
	ok(x && fake.mem_writes - mw == 4,
	   "zeroed RX: the 4 int3 pages are written (through /proc/self/mem)");
	hp_pool_free(a, (uintptr_t)x);
	/* Freed NONE pages drop their memory: clean again. */
	void *n = hp_pool_alloc(a, 8, PROT_NONE, PROT_NONE, false);
	hp_pool_protect(a, (uintptr_t)n, 8, RW);
	hp_pool_free(a, (uintptr_t)n);
	fake.stored_bytes = 0;
	void *n2 = hp_pool_alloc_zeroed(a, 8, PROT_NONE, PROT_NONE, false);
	ok(n2 == n && fake.stored_bytes == 0, "zeroed NONE: dropped pages are not written");
	hp_pool_free(a, (uintptr_t)n2);
	fake_check_arena(a, "zeroed");
	fake_arena_free(a);
}

/* fresh.c's bitmap, a word at a time, against a page-at-a-time model:
 * runs that start and end inside words, across words and into the next
 * block of a span. */
static void test_fresh_bits(void)
{
	static struct hp_block b[2];
	static bool model[2 * HP_BLOCK_PAGES];
	unsigned seed = 12345, bad_bits = 0, bad_runs = 0;
	for (int round = 0; round < 2000; round++) {
		seed = seed * 1103515245u + 12345u;
		unsigned first = (seed >> 8) % HP_BLOCK_PAGES;
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + (seed >> 8) % (round % 3 ? 130 : 2 * HP_BLOCK_PAGES - first - 1);
		bool on = (seed >> 4) & 1;
		if (first + n > 2 * HP_BLOCK_PAGES)
			n = 2 * HP_BLOCK_PAGES - first;
		if (on)
			hp_fresh_dirty(b, first, n);
		else
			hp_fresh_clean(b, first, n);
		for (size_t i = first; i < first + n; i++)
			model[i] = on;
		for (unsigned i = 0; i < 2 * HP_BLOCK_PAGES; i++)
			bad_bits += hp_test_bit(b[i / HP_BLOCK_PAGES].dirty, i % HP_BLOCK_PAGES) !=
				    model[i];
		seed = seed * 1103515245u + 12345u;
		unsigned from = (seed >> 8) % HP_BLOCK_PAGES, end = from + (seed >> 20) % 200;
		end = end > HP_BLOCK_PAGES ? HP_BLOCK_PAGES : end;
		unsigned want = from, wlen = 0, len;
		while (want < end && !model[want])
			want++;
		while (want + wlen < end && model[want + wlen])
			wlen++;
		unsigned at = hp_fresh_next_dirty(&b[0], from, end, &len);
		bad_runs += len != wlen || (wlen && at != want);
	}
	is(bad_bits, 0, "fresh bitmap: word-wise marks match a page-by-page model");
	is(bad_runs, 0, "fresh bitmap: the next dirty run matches the model");
}

/* A run of whole blocks whose memory is dropped (a freed or discarded
 * NONE span: V8's untouched code range under the preload) asks the kernel
 * once which blocks hold pages and drops only those; when it cannot ask
 * (before Linux 6.7, or the scan fails), every block, as before. */
static void test_held_blocks(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	fake.held_answer = true;
	void *r = hp_pool_alloc(a, 6 * HP_BLOCK_PAGES, PROT_NONE, PROT_NONE, false);
	struct hp_block *b = r ? blk(r) : NULL;
	ok(b && b->lazy, "held: a 6-block NONE span, lazy");
	if (!b)
		return;
	fake.held_at[0] = b[2].base;
	fake.held_at[1] = b[5].base + 7 * HP_PAGE_SIZE;
	fake.nheld_at = 2;
	int d0 = fake.discard_calls, h0 = fake.held_calls;
	is(hp_pool_discard(a, (uintptr_t)r, 6 * HP_BLOCK_PAGES), 0, "held: the span discarded");
	is(fake.discard_calls - d0, 2, "held: only the 2 blocks with pages dropped (of 6)");
	is(fake.held_calls - h0, 1, "held: in one scan");
	ok(b[0].lazy && b[2].lazy && !b[2].huge, "held: every block lazy after");
	d0 = fake.discard_calls;
	is(hp_pool_discard(a, (uintptr_t)r + 4 * HP_PAGE_SIZE, 8), 0,
	   "held: part of one block discarded");
	is(fake.discard_calls - d0, 1, "held: part of a block: dropped without asking");
	fake.fault_hook = FH_HELD;
	fake.fault_at = fake.calls[FH_HELD] + 1;
	fake.fault_err = EFAULT;
	d0 = fake.discard_calls;
	is(hp_pool_free(a, (uintptr_t)r), 0, "held: the span freed while the scan fails");
	is(fake.discard_calls - d0, 6, "held: the scan failed: all 6 blocks dropped");
	is(fake.faults_hit, 1, "held: the scan's failure was injected");
	fake.fault_at = 0;
	fake.held_answer = false; /* an old kernel: ENOTTY */
	r = hp_pool_alloc(a, 3 * HP_BLOCK_PAGES, PROT_NONE, PROT_NONE, false);
	d0 = fake.discard_calls;
	ok(r && hp_pool_free(a, (uintptr_t)r) == 0 && fake.discard_calls - d0 == 3,
	   "held: no PAGEMAP_SCAN: every block dropped (%d)", fake.discard_calls - d0);
	fake_arena_free(a);
}

int main(void)
{
	test_packing();
	test_steal();
	test_home();
	test_span();
	test_near_part();
	test_near_exact();
	test_hugetlb();
	test_guards();
	test_zeroed();
	test_fresh_bits();
	test_held_blocks();
	return tap_done();
}
