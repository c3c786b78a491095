/* SPDX-License-Identifier: MIT */
/*
 * purge.t - free blocks given back on their own (purge.c), on fake OS hooks
 * and a fake clock: nothing before the delay, each block after its own,
 * the reserve of one block per class, -1 never, 0 at once, the public
 * calls driving it, and a decommit the kernel refuses.
 */
#include "fake_os.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define MS 1000000ULL

static void check_arena(struct hp_arena *a, const char *when)
{
	char why[256];
	if (!ok(fake_arena_check(a, why, sizeof(why)) == 0, "the arena's invariants hold %s", when))
		tap_diag("  %s", why);
}

/* A whole block of class @cls, allocated. */
static uintptr_t block_alloc(struct hp_arena *a, int cls)
{
	return (uintptr_t)hp_pool_alloc(a, HP_BLOCK_PAGES, cls, cls, false);
}

static unsigned committed_blocks(const struct hp_arena *a)
{
	return (unsigned)(a->committed_bytes / HP_BLOCK_SIZE);
}

static struct hp_arena *arena(long purge_ms)
{
	fake_reset();
	hp_opt.purge_ms = purge_ms;
	return fake_arena(HP_BACKEND_THP, HP_COLLAPSE_OFF);
}

static void test_delay(void)
{
	struct hp_arena *a = arena(1000);
	uintptr_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = block_alloc(a, RW);
	hp_pool_free(a, p[0]); /* t = 0 */
	fake.now_ns += 600 * MS;
	hp_pool_free(a, p[1]); /* t = 600 */
	fake.now_ns += 100 * MS;
	hp_pool_free(a, p[2]); /* t = 700: the newest, the class's reserve */
	is(a->purge_next_ns, 1000 * MS, "the next deadline is the first block's");
	fake.now_ns = 999 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 3, "999 ms: nothing purged");
	is(fake.calls[FH_DECOMMIT], 0, "... no decommit");
	fake.now_ns = 1000 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 2, "1000 ms: the first block is purged");
	ok(hp_block_of(p[0])->state == HP_BLOCK_UNCOMMITTED, "... it is a reservation again");
	is(a->purge_next_ns, 1600 * MS, "the next deadline is the second block's");
	fake.now_ns = 1599 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 2, "1599 ms: the second is not due yet");
	fake.now_ns = 1600 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 1, "1600 ms: the second is purged");
	ok(hp_block_of(p[2])->state == HP_BLOCK_EMPTY, "the newest stays: the reserve");
	is(a->n.purged_blocks, 2, "purged_blocks counts 2");
	is(fake.mapped_committed, HP_BLOCK_SIZE, "the fake kernel holds one block's memory");
	is(a->purge_next_ns, 0, "nothing else waits");
	fake.now_ns = 3600 * 1000 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 1, "an hour later the reserve is still there");

	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_collect(a, &st);
	ok(st.purged_blocks == 2 && st.purged_bytes == 2 * HP_BLOCK_SIZE && st.purge_failed == 0,
	   "hp_stats: purged_blocks 2, purged_bytes 4 MiB, purge_failed 0");

	/* A block taken again before its deadline is not purged. */
	uintptr_t q = block_alloc(a, RW), r = block_alloc(a, RW);
	hp_pool_free(a, q);
	hp_pool_free(a, r);
	fake.now_ns += 500 * MS;
	uintptr_t again = block_alloc(a, RW);
	fake.now_ns += 2000 * MS;
	hp_purge_tick(a);
	ok(again == r && hp_block_of(again)->state == HP_BLOCK_ACTIVE,
	   "a block taken again before its deadline stays in use");
	hp_pool_free(a, again);
	check_arena(a, "after the delays");

	/* hp_trim still gives everything back, the reserve too. */
	is(hp_arena_trim_blocks(a), 0, "a full trim");
	is(committed_blocks(a), 0, "... leaves nothing committed");
	fake_arena_free(a);
}

/* A block that is its class's reserve sets no deadline (on the real OS:
 * starts no thread); the next free of that class, past it, does. */
static void test_reserve_alone(void)
{
	struct hp_arena *a = arena(1000);
	uintptr_t rw = block_alloc(a, RW), rx = block_alloc(a, RX), rw2 = block_alloc(a, RW);
	hp_pool_free(a, rw); /* t = 0 */
	is(a->purge_next_ns, 0, "one RW block free, the class's reserve: no deadline");
	fake.now_ns += 300 * MS;
	hp_pool_free(a, rx);
	is(a->purge_next_ns, 0, "one RX block free too, its class's reserve: still none");
	fake.now_ns += 1500 * MS; /* t = 1800: the first RW block is long due */
	hp_pool_free(a, rw2);
	is(a->purge_next_ns, 2800 * MS,
	   "a second RW block: the first is past the reserve, due one delay from now");
	fake.now_ns = 2800 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 2, "... and purged then; both reserves stay");
	check_arena(a, "after a purge past the reserve");
	fake_arena_free(a);
}

static void test_reserve(void)
{
	struct hp_arena *a = arena(100);
	a->alias = true; /* executable blocks are aliased: their own decommit */
	uintptr_t rw[3], rx[3];
	for (int i = 0; i < 3; i++) {
		rw[i] = block_alloc(a, RW);
		rx[i] = block_alloc(a, RX);
	}
	ok(hp_block_of(rx[0])->aliased, "an RX block has an alias");
	for (int i = 0; i < 3; i++) {
		hp_pool_free(a, rw[i]);
		hp_pool_free(a, rx[i]);
	}
	fake.now_ns += 100 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 2, "after the delay one block per class is kept");
	ok(hp_block_of(rw[2])->state == HP_BLOCK_EMPTY &&
		   hp_block_of(rx[2])->state == HP_BLOCK_EMPTY,
	   "... the most recently freed of each");
	is(fake.calls[FH_DECOMMIT], 2, "the RW blocks went by decommit");
	is(fake.calls[FH_ALIAS_DECOMMIT], 2, "the aliased RX blocks by alias_decommit");
	check_arena(a, "with the reserve");
	fake_arena_free(a);
}

static void test_never_and_now(void)
{
	struct hp_arena *a = arena(-1);
	uintptr_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = block_alloc(a, RW);
	for (int i = 0; i < 3; i++)
		hp_pool_free(a, p[i]);
	is(a->purge_next_ns, 0, "-1: no deadline is set");
	fake.now_ns += 3600 * 1000 * MS;
	hp_purge_tick(a);
	is(committed_blocks(a), 3, "-1: an hour later all three are still committed");
	is(a->n.purged_blocks, 0, "-1: nothing purged");
	fake_arena_free(a);

	a = arena(0);
	for (int i = 0; i < 3; i++)
		p[i] = block_alloc(a, RW);
	hp_pool_free(a, p[0]);
	is(committed_blocks(a), 3, "0: the first free block is the reserve");
	hp_pool_free(a, p[1]);
	is(committed_blocks(a), 2, "0: the second free purges at once, no time passing");
	hp_pool_free(a, p[2]);
	is(committed_blocks(a), 1, "0: and the third");
	is(a->n.purged_blocks, 2, "0: purged_blocks counts 2");
	check_arena(a, "purging at once");
	fake_arena_free(a);
}

/* Without a thread (an arena on the fake OS has none), the public calls
 * purge what is due. */
static void test_calls_drive(void)
{
	struct hp_arena *a = arena(200);
	void *p[3];
	for (int i = 0; i < 3; i++)
		p[i] = hp_arena_alloc(a, HP_BLOCK_SIZE, RW);
	for (int i = 0; i < 3; i++)
		is(hp_arena_free(a, p[i]), 0, "hp_arena_free of a whole block");
	ok(!a->purge_running, "no thread on an arena made by hp_arena_init");
	fake.now_ns += 100 * MS;
	void *small = hp_arena_alloc(a, 4096, RW); /* takes one of the free blocks */
	ok(small && committed_blocks(a) == 3 && a->n.purged_blocks == 0,
	   "a call before the deadline purges nothing");
	fake.now_ns += 100 * MS;
	hp_arena_free(a, small);
	is(a->n.purged_blocks, 1, "a call after it purges the free block past the reserve");
	is(committed_blocks(a), 2, "... the reserve and the small allocation's block stay");
	fake_arena_free(a);
}

static void test_refused(void)
{
	struct hp_arena *a = arena(1000);
	uintptr_t p[2];
	for (int i = 0; i < 2; i++)
		p[i] = block_alloc(a, RW);
	hp_pool_free(a, p[0]);
	hp_pool_free(a, p[1]);
	fake.fault_hook = FH_DECOMMIT;
	fake.fault_at = (int)fake.calls[FH_DECOMMIT] + 1;
	fake.fault_err = ENOMEM;
	fake.now_ns += 1000 * MS;
	hp_purge_tick(a);
	is(fake.faults_hit, 1, "the decommit is refused (ENOMEM)");
	is(a->n.purge_failed, 1, "purge_failed counts it");
	is(a->n.purged_blocks, 0, "purged_blocks does not");
	struct hp_block *b = hp_block_of(p[0]);
	ok(b->state == HP_BLOCK_EMPTY && committed_blocks(a) == 2 &&
		   fake.mapped_committed == 2 * HP_BLOCK_SIZE,
	   "the block is still free and committed, as the kernel has it");
	check_arena(a, "after a refused purge");
	is(a->purge_next_ns, 2000 * MS, "it is tried again one delay later");
	uintptr_t q = block_alloc(a, RW);
	ok(q == p[0] || q == p[1], "a block whose purge failed is still handed out");
	hp_pool_free(a, q);
	fake.now_ns += 3000 * MS;
	hp_purge_tick(a);
	is(a->n.purged_blocks, 1, "the retry succeeds");
	is(committed_blocks(a), 1, "... leaving the reserve");
	check_arena(a, "after the retry");
	fake_arena_free(a);
}

int main(void)
{
	test_delay();
	test_reserve_alone();
	test_reserve();
	test_never_and_now();
	test_calls_drive();
	test_refused();
	return tap_done();
}
