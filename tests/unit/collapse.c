/* SPDX-License-Identifier: MIT */
/*
 * collapse.t - the collapse policy on fake OS hooks and a fake clock:
 * the delay, the errno handling (EAGAIN retry, ENOMEM/EBUSY backoff,
 * EINVAL disables), and the sync and off modes.
 */
#include "fake_os.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define MS 1000000ULL

/* A block made mixed and uniform again: queued for collapse. */
static struct hp_block *uniform_again(struct hp_arena *a)
{
	void *p = hp_pool_alloc(a, 1, RW, RX, false);
	hp_pool_protect(a, (uintptr_t)p, 1, RX);
	return hp_block_of((uintptr_t)p);
}

/* Flip one page of @p's block RW and back, as YJIT does around each piece
 * of code, and drain the queue as a sync arena's call would: collapsed? */
static bool flip_page(struct hp_arena *a, void *p)
{
	hp_pool_protect(a, (uintptr_t)p, 1, RW);
	hp_pool_protect(a, (uintptr_t)p, 1, RX);
	return hp_collapse_run(a, HP_RUN_NOW, 0, NULL) == 1;
}

/*
 * HP_ARENA_COLLAPSE_QUIET: a block split again within a second of our
 * collapse waits for a quiet period (100 ms, doubled per flap in a row)
 * before its next collapse, in sync mode too; a split later than that
 * starts the count again.  The thread that would run the held collapse is
 * kept from starting (thread_stop: the fake clock would spin in it); the
 * test drains the queue as the thread would.
 */
static void quiet(void)
{
	fake_reset();
	hp_opt.collapse_delay_ms = 0;
	fake.now_ns = 1000 * MS; /* a clock that has run a while (0: "never") */
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_SYNC);
	a->collapse_quiet = true;
	a->thread_stop = true;
	struct hp_block *b = uniform_again(a);
	void *p = (void *)b->base;
	is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 1, "quiet: the first collapse is at once");
	fake.now_ns += 10 * MS;
	ok(!flip_page(a, p) && !b->huge && b->queued,
	   "quiet: split 10 ms after it, the block is held back, queued");
	is(b->nflaps, 1, "quiet: one flap");
	for (int i = 0; i < 50; i++) {
		fake.now_ns += 5 * MS;
		if (flip_page(a, p))
			break;
	}
	is(a->n.splits[RX], 2,
	   "quiet: 50 more flips 5 ms apart split nothing more (2: the "
	   "first RW page, the flap)");
	is(a->n.collapses[RX], 1, "quiet: ... and collapse nothing");
	fake.now_ns += 99 * MS;
	is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 0, "quiet: not collapsed after 99 ms quiet");
	fake.now_ns += 2 * MS;
	is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 1, "quiet: collapsed after 101 ms");
	ok(b->huge, "quiet: huge again");
	fake.now_ns += 500 * MS;
	ok(!flip_page(a, p), "quiet: split again within a second: held back");
	is(b->nflaps, 2, "quiet: a second flap in a row");
	fake.now_ns += 150 * MS;
	is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 0,
	   "quiet: the period doubled: not after 150 ms");
	fake.now_ns += 60 * MS;
	is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 1, "quiet: collapsed after 210 ms");
	is(hp_collapse_run(a, HP_RUN_FORCE, 0, NULL), 0, "quiet: nothing left to force");
	fake.now_ns += 2000 * MS;
	ok(flip_page(a, p) && b->nflaps == 0, "quiet: a split 2 s later: collapsed at once again");
	is(a->n.splits[RX], 4, "quiet: 4 splits in all, one per burst");
	is(a->n.collapses[RX], 4, "quiet: 4 collapses");
	fake.now_ns += 10 * MS; /* a flap, and hp_collapse_pending does not wait */
	ok(!flip_page(a, p) && hp_arena_collapse_pending(a) == 1 && b->huge,
	   "quiet: hp_collapse_pending collapses a held block at once");

	/* Once the arena's thread runs, it makes every collapse: a call that
	 * leaves a block uniform (not a flap: 2 s after the last collapse)
	 * neither collapses it nor walks the queue; without the thread, the
	 * call collapses it, as sync mode says.  (thread_running is set by
	 * hand; thread_stop keeps a real one from starting.) */
	fake.now_ns += 2000 * MS;
	int calls = fake.collapse_calls;
	a->thread_running = true;
	ok(hp_arena_protect(a, p, 4096, RW) == 0 && hp_arena_protect(a, p, 4096, RX) == 0 &&
		   b->nflaps == 0 && b->queued && !b->huge && fake.collapse_calls == calls,
	   "quiet, the thread running: a call that makes a block uniform leaves its "
	   "collapse to the thread");
	is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 1, "quiet: ... which makes it");
	a->thread_running = false;
	fake.now_ns += 2000 * MS;
	calls = fake.collapse_calls;
	ok(hp_arena_protect(a, p, 4096, RW) == 0 && hp_arena_protect(a, p, 4096, RX) == 0 &&
		   b->huge && !b->queued && fake.collapse_calls == calls + 1,
	   "quiet, no thread: the call collapses the block itself (sync)");
	fake_arena_free(a);

	/* Without the flag: every flip is a split and a collapse, as before. */
	fake_reset();
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_SYNC);
	b = uniform_again(a);
	hp_collapse_run(a, HP_RUN_NOW, 0, NULL);
	int n = 0;
	for (int i = 0; i < 10; i++) {
		fake.now_ns += 5 * MS;
		n += flip_page(a, (void *)b->base);
	}
	is(n, 10, "no quiet: 10 flips 5 ms apart, 10 collapses");
	fake_arena_free(a);
}

/*
 * The collapse thread on the fake clock (a real one would spin on it): its
 * sleep is simulated, asleep until its timer or a kick; each wakeup is the
 * thread's own, hp_collapse_thread_wakeup(), which takes the arena lock and
 * looks at the queue (collapses what is due, sleeps until
 * hp_collapse_next_ns) only when kicked or when its deadline has not moved
 * on meanwhile, else sleeps until the moved one.  Counts its wakeups and
 * its looks.
 */
static uint64_t sim_timer;
static int sim_looks;

static int thread_step(struct hp_arena *a)
{
	static uint64_t next_try; /* the thread's rate */
	if (!a->thread_kick && fake.now_ns < sim_timer)
		return 0; /* asleep */
	uint64_t until;
	bool looked;
	pthread_mutex_lock(&a->thread_lock);
	while (!hp_collapse_thread_wakeup(a, &next_try, &until, &looked))
		sim_looks++;
	pthread_mutex_unlock(&a->thread_lock);
	sim_looks += looked;
	sim_timer = until;
	return 1;
}

/*
 * The thread sleeps until a block can be due: 100,000 RW/RX flip pairs of
 * a flapping block over a second wake it about once a quiet period, and
 * it never takes the arena lock for them (each flip moves the block's
 * deadline on; main at 8bc7ff1 took the lock three times a wakeup, and
 * dropped the block whenever it found it split, to be woken again by the
 * next flip: twice a period).  Once the flips stop, the block is collapsed
 * at its deadline; one left mixed for a whole quiet period leaves the
 * queue and the thread sleeps until kicked; a block that can be due
 * sooner than the thread's deadline kicks it, a flip of a queued one never.
 */
static void thread_sleeps(void)
{
	fake_reset();
	hp_opt.collapse_delay_ms = 50;
	fake.now_ns = 1000 * MS;
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_SYNC);
	a->collapse_quiet = true;
	a->thread_running = true;		     /* none started: thread_step is it */
	a->thread_until_ns = sim_timer = UINT64_MAX; /* asleep, nothing queued */
	struct hp_block *b = uniform_again(a);
	uintptr_t p = b->base;
	ok(b->queued && a->thread_signals == 1 && a->thread_kick,
	   "thread: a block queued kicks the sleeping thread");
	ok(thread_step(a) && sim_looks == 1 && a->thread_until_ns == b->uniform_since_ns + 50 * MS,
	   "thread: it looks, and sleeps until the block is due (the 50 ms delay)");
	fake.now_ns += 50 * MS;
	ok(thread_step(a) && b->huge && a->thread_until_ns == UINT64_MAX,
	   "thread: at the deadline it collapses the block, then sleeps until kicked");

	fake.now_ns += 10 * MS;
	hp_pool_protect(a, p, 1, RW);
	hp_pool_protect(a, p, 1, RX);
	ok(b->nflaps == 1 && b->queued && a->thread_signals == 2 && thread_step(a) &&
		   a->thread_until_ns == b->uniform_since_ns + 100 * MS,
	   "thread: split again 10 ms later (a flap), queued: kicked, it sleeps a quiet period");
	uint64_t splits = a->n.splits[RX], collapses = a->n.collapses[RX];
	unsigned signals = a->thread_signals;
	int wakes = 0, looks = sim_looks;
	uint32_t rnd = 1;
	for (int i = 0; i < 100000; i++) { /* RW for 1-10 us, RX for 1-10 us */
		rnd = rnd * 1103515245u + 12345u;
		fake.now_ns += 1000 + (rnd >> 16) % 10 * 1000;
		hp_pool_protect(a, p, 1, RW);
		wakes += thread_step(a);
		rnd = rnd * 1103515245u + 12345u;
		fake.now_ns += 1000 + (rnd >> 16) % 10 * 1000;
		hp_pool_protect(a, p, 1, RX);
		wakes += thread_step(a);
	}
	is(a->n.collapses[RX] - collapses, 0, "thread: 100,000 flip pairs in 1.1 s: no collapse");
	is(a->n.splits[RX] - splits, 0, "thread: ... no split (4K-mapped)");
	is(a->thread_signals - signals, 0, "thread: ... no kick");
	ok(wakes >= 10 && wakes <= 12, "thread: it woke %d times, once a 100 ms quiet period",
	   wakes);
	is(sim_looks - looks, 0, "thread: ... and never took the arena lock");

	uint64_t last = fake.now_ns;
	while (!b->huge && fake.now_ns < last + 500 * MS) {
		fake.now_ns += MS / 10;
		thread_step(a);
	}
	ok(b->huge && fake.now_ns >= last + 100 * MS && fake.now_ns < last + 101 * MS,
	   "thread: the flips over, the block is collapsed 100 ms later (%llu us)",
	   (unsigned long long)(fake.now_ns - last) / 1000);

	/* Split, queued, split again and left mixed: it leaves the queue after
	 * its quiet period, and the thread sleeps until kicked. */
	fake.now_ns += 10 * MS;
	hp_pool_protect(a, p, 1, RW);
	hp_pool_protect(a, p, 1, RX);
	thread_step(a);
	hp_pool_protect(a, p, 1, RW);
	wakes = 0;
	looks = sim_looks;
	for (int i = 0; i < 2000; i++) {
		fake.now_ns += MS;
		wakes += thread_step(a);
	}
	ok(b->nflaps == 2 && !b->queued && a->thread_until_ns == UINT64_MAX && wakes == 1 &&
		   sim_looks == looks + 1,
	   "thread: a block left mixed leaves the queue after its 200 ms quiet period (1 "
	   "wakeup in 2 s: %d), the thread sleeps until kicked",
	   wakes);
	signals = a->thread_signals;
	hp_pool_protect(a, p, 1, RX);
	ok(b->queued && a->thread_signals == signals + 1 && thread_step(a),
	   "thread: uniform again, it is queued and kicks the thread");

	/* Another block, due (50 ms) before the thread's deadline (200 ms):
	 * it kicks the thread; a flip of the first one, later, does not. */
	signals = a->thread_signals;
	void *q = hp_pool_alloc(a, HP_BLOCK_PAGES, RW, RX, false); /* a block of its own */
	hp_pool_protect(a, (uintptr_t)q, 1, RX);
	hp_pool_protect(a, (uintptr_t)q + HP_PAGE_SIZE, HP_BLOCK_PAGES - 1, RX);
	struct hp_block *c = hp_block_of((uintptr_t)q);
	ok(c != b && c->nflaps == 0 && c->queued && a->thread_signals == signals + 1 &&
		   thread_step(a) && a->thread_until_ns == c->uniform_since_ns + 50 * MS,
	   "thread: a block due sooner than the thread's deadline kicks it");
	hp_pool_protect(a, p, 1, RW);
	hp_pool_protect(a, p, 1, RX);
	is(a->thread_signals, signals + 1, "thread: a flip of a queued block kicks nobody");
	fake.now_ns += 50 * MS;
	ok(thread_step(a) && c->huge && !b->huge &&
		   a->thread_until_ns == b->uniform_since_ns + 200 * MS,
	   "thread: the second block collapsed at its deadline; the thread sleeps until the "
	   "first one's");
	a->thread_running = false;
	fake_arena_free(a);
}

/*
 * HP_ARENA_LAZY_SMALL: lazy blocks advised small at commit (cold), one call
 * for the blocks committed together; made accessible whole, neither
 * populated nor collapsed; a protection change of part of one advises it
 * huge again, and it is collapsed when uniform.  The advice refused at
 * commit: ordinary lazy blocks, populated and collapsed when made
 * accessible whole, with no advice when written.  In a quiet arena a cold
 * block written in waits for a quiet period before its first collapse.
 */
static void lazy_small(void)
{
	for (int refuse = 0; refuse < 2; refuse++) {
		fake_reset();
		hp_opt.collapse_delay_ms = 0;
		struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_SYNC);
		a->lazy_small = true;
		a->thread_stop = true;
		if (refuse) { /* the advice at commit fails */
			fake.fault_hook = FH_ADVISE_HUGE;
			fake.fault_at = 1;
			fake.fault_err = EINVAL;
		}
		uintptr_t p = (uintptr_t)hp_pool_alloc(a, 2 * 512, PROT_NONE, PROT_NONE, false);
		struct hp_block *b = hp_block_of(p), *b2 = hp_block_of(p + HP_BLOCK_SIZE);
		const char *m = refuse ? "lazy small, advice refused" : "lazy small";
		if (refuse) {
			ok(!b->cold && !b2->cold && fake.advise_small == 0,
			   "%s: the blocks whose advice failed are not cold", m);
		} else {
			ok(b->cold && b2->cold && fake.advise_small == 1,
			   "%s: both blocks advised small at commit, in one call (%d)", m,
			   fake.advise_small);
		}
		hp_pool_protect(a, p, 2 * 512, RW);
		hp_pool_protect(a, p, 2 * 512, RX);
		int n = hp_collapse_run(a, HP_RUN_NOW, 0, NULL);
		if (refuse)
			is(n, 2, "%s: the ordinary lazy blocks are collapsed (%d populates)", m,
			   fake.populate_calls);
		else
			ok(n == 0 && fake.populate_calls == 0 && !b->queued,
			   "%s: made RW and RX whole: not populated, not collapsed", m);
		hp_pool_protect(a, p + HP_BLOCK_SIZE + 7 * HP_PAGE_SIZE, 1, RW);
		ok(!b2->cold && fake.advise_huge == (refuse ? 0 : 1),
		   "%s: a page of the other block made RW: advised huge if it was cold (%d)", m,
		   fake.advise_huge);
		hp_pool_protect(a, p + HP_BLOCK_SIZE + 7 * HP_PAGE_SIZE, 1, RX);
		is(hp_collapse_run(a, HP_RUN_NOW, 0, NULL), 1, "%s: collapsed once uniform again",
		   m);
		ok(b2->huge, "%s: the written block is huge", m);
		is(a->n.splits[PROT_NONE], refuse ? 1 : 0,
		   "%s: a split counted only where the block was huge", m);
		if (!refuse) {
			/* Quiet arena (a fixed range): a cold block written in
			 * waits for a quiet period before its first collapse. */
			a->collapse_quiet = true;
			fake.now_ns += 1000 * MS;
			hp_pool_protect(a, p + 3 * HP_PAGE_SIZE, 1, RW);
			ok(!b->cold && b->nflaps == 1, "%s, quiet: written, held as flapping", m);
			hp_pool_protect(a, p + 3 * HP_PAGE_SIZE, 1, RX);
			fake.now_ns += 99 * MS;
			ok(hp_collapse_run(a, HP_RUN_NOW, 0, NULL) == 0 && b->queued,
			   "%s, quiet: not collapsed at once, nor after 99 ms", m);
			fake.now_ns += 2 * MS;
			ok(hp_collapse_run(a, HP_RUN_NOW, 0, NULL) == 1 && b->huge,
			   "%s, quiet: collapsed after 101 ms quiet", m);
		}
		fake_arena_free(a);
	}
}

/*
 * MADV_COLLAPSE never runs with the arena lock held, and never at commit: a
 * fresh block learns whether its populate fault took a huge page from
 * PAGEMAP_SCAN (huge_mapped); one whose fault took small pages, an aliased
 * one (its exec view has no page yet) and one on a kernel without
 * PAGEMAP_SCAN are queued and collapsed later with the lock dropped.  The
 * fake collapse hook counts calls made with the lock held.  Through the
 * public calls, which take the lock as a program's would.
 */
static void never_under_lock(int mode)
{
	fake_reset();
	hp_opt.collapse_delay_ms = 0;
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, mode);
	const char *m = mode == HP_COLLAPSE_SYNC ? "sync" : "deferred";

	void *p = hp_arena_alloc(a, 4096, RW);
	struct hp_block *b = hp_block_of((uintptr_t)p);
	ok(b->huge && !b->queued && fake.collapse_calls == 0,
	   "%s: a fresh block the fault made huge is huge, with no MADV_COLLAPSE", m);
	is(fake.calls[FH_HUGE_MAPPED], 1, "%s: ... the kernel was asked once (PAGEMAP_SCAN)", m);

	fake.fresh_small = true; /* the next faults take small pages */
	void *q = hp_arena_alloc(a, HP_BLOCK_SIZE, RW);
	struct hp_block *qb = hp_block_of((uintptr_t)q);
	/* Deferred mode with no collapse thread has no "later": the call that
	 * committed the block collapses it before it returns, lock dropped. */
	is(fake.collapse_calls, 1,
	   "%s: a fresh block the fault left small: collapsed at the end of the call", m);
	void *span = hp_arena_alloc(a, 3 * HP_BLOCK_SIZE, RX);
	fake.fresh_small = false;
	fake.huge_mapped_refuse = ENOTTY; /* a kernel before 6.7 */
	void *old = hp_arena_alloc(a, HP_BLOCK_SIZE, PROT_READ);
	fake.huge_mapped_refuse = 0;
	a->alias = true; /* an aliased block's exec view has no page at commit */
	void *code = hp_arena_alloc(a, 4096, RX);
	a->alias = false;
	ok(q && span && old && code, "%s: allocations of fresh blocks", m);
	ok(!qb->queued && a->nfresh == 0, "%s: no fresh block left queued", m);
	is(hp_arena_collapse_pending(a), 0, "%s: hp_collapse_pending finds nothing left", m);
	ok(qb->huge && hp_block_of((uintptr_t)old)->huge && hp_block_of((uintptr_t)code)->huge,
	   "%s: small, unknown and aliased fresh blocks end up huge", m);

	/* Flips (split, uniform again: queued), frees, spans, trim. */
	for (int i = 0; i < 3; i++) {
		hp_arena_protect(a, p, 4096, RX);
		hp_arena_protect(a, p, 4096, RW);
		hp_arena_collapse_pending(a);
	}
	hp_arena_protect(a, span, 4096, RW);
	hp_arena_free(a, q);
	hp_arena_free(a, span);
	hp_arena_collapse_pending(a);
	void *lazy = hp_arena_alloc(a, HP_BLOCK_SIZE, PROT_NONE);
	hp_arena_protect(a, lazy, HP_BLOCK_SIZE, RW);
	hp_arena_collapse_pending(a);
	hp_arena_trim(a);
	ok(fake.collapse_calls >= 10, "%s: %d collapses in all", m, fake.collapse_calls);
	is(fake.collapse_locked, 0, "%s: none with the arena lock held", m);
	fake_arena_free(a);
}

int main(void)
{
	struct hp_arena *a;
	struct hp_block *b;
	int tried;

	/* Deferred: nothing before the delay, then one collapse. */
	fake_reset();
	hp_opt.collapse_delay_ms = 50;
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	b = uniform_again(a);
	ok(!b->huge && b->queued, "a block uniform again is queued, not yet huge");
	fake.now_ns += 10 * MS;
	is(hp_collapse_run(a, 0, 0, &tried), 0, "10 ms later: not due yet");
	is(tried, 0, "... and not tried");
	fake.now_ns += 45 * MS;
	is(hp_collapse_run(a, 0, 0, NULL), 1, "55 ms later: collapsed");
	ok(b->huge && !b->queued, "the block is huge and left the queue");
	is(a->n.collapses[RX], 1, "one collapse counted for RX");
	is(a->n.collapse_attempts, 1, "one attempt");

	/* A block that goes mixed again while queued is dropped, not collapsed. */
	b = uniform_again(a);
	void *q = hp_pool_alloc(a, 1, RW, RX, false);
	ok(hp_block_of((uintptr_t)q) == b && !hp_block_uniform(b, NULL),
	   "queued block mixed again");
	is(hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 0, &tried), 0, "nothing to collapse");
	is(a->nqueued, 0, "the mixed block left the queue");
	hp_pool_free(a, (uintptr_t)q);
	fake_arena_free(a);

	/* EAGAIN: retried at once, up to collapse_retries times. */
	fake_reset();
	hp_opt.collapse_retries = 3;
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	b = uniform_again(a);
	fake.collapse_script[0] = EAGAIN;
	fake.collapse_script[1] = EAGAIN;
	fake.ncollapse_script = 2;
	is(hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 0, NULL), 1, "EAGAIN twice, then success");
	is(a->n.collapse_attempts, 3, "three attempts");
	fake.collapse_calls = 0;
	fake.ncollapse_script = 5;
	for (int i = 0; i < 5; i++)
		fake.collapse_script[i] = EAGAIN;
	b = uniform_again(a);
	b = uniform_again(a);
	is(hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 0, NULL), 0, "EAGAIN every time");
	is(fake.collapse_calls, 4, "gives up after 1 + 3 retries");
	is(a->n.collapse_eagain, 1, "counted as one EAGAIN failure");
	ok(b->queued && b->retry_at_ns > fake.now_ns, "and backs off, still queued");
	fake_arena_free(a);

	/* ENOMEM and EBUSY: exponential backoff, stays queued. */
	fake_reset();
	hp_opt.collapse_delay_ms = 0;
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	b = uniform_again(a);
	fake.collapse_script[0] = ENOMEM;
	fake.collapse_script[1] = EBUSY;
	fake.ncollapse_script = 2;
	is(hp_collapse_run(a, 0, 0, NULL), 0, "ENOMEM: not collapsed");
	uint64_t first_wait = b->retry_at_ns - fake.now_ns;
	is(first_wait, 2 * MS, "backs off 2 ms");
	is(hp_collapse_run(a, 0, 0, &tried), 0, "before the backoff ends ...");
	is(tried, 0, "... it is not tried");
	is(hp_collapse_run(a, HP_RUN_NOW, 0, &tried), 0,
	   "nor in sync mode (which skips the delay)");
	is(tried, 0, "... the backoff still holds");
	fake.now_ns += 2 * MS;
	is(hp_collapse_run(a, 0, 0, NULL), 0, "EBUSY next");
	is(b->retry_at_ns - fake.now_ns, 4 * MS, "the backoff doubles");
	fake.now_ns += 4 * MS;
	is(hp_collapse_run(a, 0, 0, NULL), 1, "then it collapses");
	is(a->n.collapse_enomem, 1, "ENOMEM counted");
	is(a->n.collapse_ebusy, 1, "EBUSY counted");
	fake_arena_free(a);

	/* EINVAL: never again for that block. */
	fake_reset();
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	b = uniform_again(a);
	fake.collapse_script[0] = EINVAL;
	fake.ncollapse_script = 1;
	is(hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 0, NULL), 0, "EINVAL: not collapsed");
	ok(b->collapse_off && !b->queued, "collapse disabled for the block");
	b = uniform_again(a);
	ok(!b->queued, "and it is not queued again");
	is(a->n.collapse_einval, 1, "EINVAL counted once");
	fake_arena_free(a);

	/* Budget: at most N per run (the thread's rate limit). */
	fake_reset();
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	void *ps[3];
	for (int i = 0; i < 3; i++) {
		ps[i] = hp_pool_alloc(a, 512, RW, RX, false);
		hp_pool_protect(a, (uintptr_t)ps[i], 512, RX);
	}
	/* Whole-block changes never split: those blocks stay huge. */
	is(a->nqueued, 0, "whole-block protection changes queue nothing");
	for (int i = 0; i < 3; i++) {
		hp_pool_protect(a, (uintptr_t)ps[i], 1, RW);
		hp_pool_protect(a, (uintptr_t)ps[i], 1, RX);
	}
	is(a->nqueued, 3, "three blocks split and uniform again");
	is(hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 2, NULL), 2, "a budget of 2 collapses 2");
	is(a->nqueued, 1, "one left");
	fake_arena_free(a);

	/* Off and hugetlb: nothing is ever queued. */
	fake_reset();
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_OFF);
	uniform_again(a);
	is(a->nqueued, 0, "COLLAPSE=off queues nothing");
	fake_arena_free(a);

	/* Reservations: NONE blocks are lazy (no collapse at commit, nothing
	 * queued while NONE); made uniform and accessible, one is populated
	 * before its collapse; one that is not writable is left to its first
	 * touch when the kernel says EINVAL, and not disabled. */
	fake_reset();
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	void *r = hp_pool_alloc(a, 3 * 512, PROT_NONE, PROT_NONE, false);
	struct hp_block *rb = hp_block_of((uintptr_t)r);
	ok(r && rb->lazy && !rb->huge && fake.collapse_calls == 0,
	   "a NONE span is committed lazily, with no collapse");
	hp_pool_protect(a, (uintptr_t)r, 8, RW);
	is(a->nqueued, 0, "part of it made RW: mixed, nothing queued");
	hp_pool_protect(a, (uintptr_t)r, 512, RW | PROT_EXEC);
	is(a->nqueued, 1, "the whole block accessible: queued");
	hp_pool_protect(a, (uintptr_t)r + (512UL << 12), 512, RX);
	is(a->nqueued, 2, "a lazy block uniform -> uniform RX: queued too");
	int ps0 = fake.populate_calls;
	fake.collapse_script[0] = EINVAL;
	fake.collapse_script[1] = 0;
	fake.ncollapse_script = 2;
	is(hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 0, NULL), 1, "one collapsed");
	is(fake.populate_calls - ps0, 1, "only the writable one was populated first");
	ok(rb->huge && !rb->lazy, "the RWX block is huge, no longer lazy");
	ok(!rb[1].huge && rb[1].lazy && !rb[1].collapse_off,
	   "the RX block with no page: left lazy, collapse not disabled");
	is(a->n.collapse_einval, 0, "that EINVAL is not counted as a failure");
	int d0 = fake.discard_calls;
	hp_pool_free(a, (uintptr_t)r);
	is(fake.discard_calls - d0, 3, "freed NONE blocks drop their memory, block by block");
	ok(rb->lazy && !rb->huge, "and are lazy again");
	void *rw = hp_pool_alloc(a, 16, RW, RW, false);
	ok(rw && !hp_block_of((uintptr_t)rw)->lazy, "an RW allocation never takes a lazy block");
	fake_arena_free(a);

	quiet();
	thread_sleeps();
	lazy_small();
	never_under_lock(HP_COLLAPSE_DEFERRED);
	never_under_lock(HP_COLLAPSE_SYNC);
	return tap_done();
}
