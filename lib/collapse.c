/* SPDX-License-Identifier: MIT */
/*
 * collapse.c - putting huge mappings back.
 *
 * A THP block that turns uniform again is still mapped with 4 KiB entries;
 * nothing in the kernel re-merges it on its own soon (khugepaged scans
 * slowly).  We queue it and issue MADV_COLLAPSE, which allocates a huge
 * page, copies the 512 pages in and installs one PMD: ~200 us per block on
 * the reference machine.  That is too dear to pay on every protection flip
 * of a JIT, so the default is deferred: the queue is drained by
 * hp_collapse_pending() or by an optional thread that waits until a block
 * has stayed uniform for collapse_delay_ms and keeps to collapse_rate per
 * second.  HUGEPERM_COLLAPSE=sync drains at the end of the call that made
 * the block uniform; =off never collapses.
 *
 * Errors of MADV_COLLAPSE (madvise(2)) and what we do:
 *   EAGAIN  transient (page locked, contention): retry at once, up to
 *           collapse_retries times, then back off like ENOMEM.
 *   ENOMEM  no huge page could be had; EBUSY: memcg charge failed.  Back off
 *           exponentially (2 ms, 4 ms, ... at most 1 s) and stay queued.
 *   EINVAL  the range can never collapse (no THP support for it, bad
 *           range): collapse is disabled for that block and reported.
 *   other   counted; the block leaves the queue until it turns uniform again.
 *
 * The collapse runs with the arena lock dropped, and nowhere else: the
 * block is marked `collapsing` and protection changes on it wait
 * (protect.c), so the block is still uniform when the kernel looks at it,
 * and our split count matches the kernel's.  A fresh block is not
 * collapsed at commit: hp_collapse_fresh asks PAGEMAP_SCAN whether its
 * populate fault took a huge page, and queues it if not.
 *
 * Hysteresis (HP_ARENA_COLLAPSE_QUIET, khugepaged-like): a block split
 * again within FLAP_NS of a collapse of ours is flapping (YJIT flips one
 * page of its write block RW and back RX around each piece of code it
 * writes: 19,500 splits and collapses, 250 us each, for a few MiB of
 * code).  Its next collapse waits until it has stayed uniform for a quiet
 * period, QUIET_NS doubled for each flap in a row (up to QUIET_MAX), even
 * in sync mode, and runs in the collapse thread, started for it: a burst of
 * flips costs one split and one collapse, and the block is 4K-mapped while
 * it is being written and for at most the quiet period after.  A split
 * later than FLAP_NS after the collapse starts the count again.  Nothing
 * changes in what the kernel maps or in what is counted: every split and
 * collapse is still one the kernel makes.
 *
 * Cold lazy blocks (HP_ARENA_LAZY_SMALL): YJIT makes its whole 256 MiB
 * range writable, fills it with traps and makes it executable, then writes
 * code into two blocks of it.  Populated huge, the range would take 128
 * fresh huge pages (on a VM that gives free huge pages back to the host,
 * 3-6 ms each) for 2 MiB of code.  So a lazy block of such an arena is
 * advised MADV_NOHUGEPAGE when committed, one call for the blocks committed
 * together (cold): made accessible whole it is
 * neither populated nor collapsed, and its pages come small, as the
 * kernel's would.  The first protection change of part of it (a page made
 * writable to write code) advises it MADV_HUGEPAGE again, and from then on
 * it is an ordinary block: collapsed when uniform, with the hysteresis
 * above, except that in a quiet arena it counts as flapping once from the
 * start: a JIT writes into it in bursts.  Collapsed at its first RX flip
 * (at once, on the JIT's own thread), it was split by the next page flip,
 * the flap that then started the hysteresis (YJIT: 3-4 collapses and 2-3
 * splits a run; now 1-3 and 0-2).  Its pages stay in use and not huge meanwhile, and count so in
 * the coverage: what is not code (the traps) stays on small pages.
 *
 * Once a quiet arena's thread runs (its first flap), it makes every
 * collapse of the arena, in sync mode too (hp_collapse_threaded): the
 * calls no longer walk the queue, where flapping blocks wait, and the
 * program's thread no longer waits for a MADV_COLLAPSE (1-4 ms each for
 * YJIT's blocks on a VM, with a fresh huge page to fault in).
 *
 * The thread sleeps until the first queued block can be due (its delay or
 * quiet period after uniform_since_ns, its backoff: thread_until_ns), one
 * timed wait on a lock of its own.  A flip that turns the block that set
 * that deadline uniform again moves the deadline on (a store, no system
 * call); the thread, woken at the old one, sees it moved and sleeps on,
 * without the arena lock.  It takes the lock and looks at the queue only
 * when a block can be due, or when a call kicks it for a block queued
 * that can be due sooner.  A flapping block split again stays queued
 * while it turned uniform within its quiet period (lingers()), and leaves
 * the queue once it has stayed mixed a whole period.  A JIT flipping its
 * block holds the arena lock most of the time: a thread waiting there is
 * woken by each unlock, a system call of the JIT's, only to find the lock
 * taken again (8bc7ff1, tests/kernel/quiet.t: 770-1,340 context switches
 * of the thread a second, a wait on the lock three times a wakeup, now
 * 10: one a 100 ms quiet period; docs/preload.md for LuaJIT).
 *
 * The delay, rate and retries are the arena's settings (hp_arena_init),
 * and every time here is the OS layer's now_ns: the thread sleeps on the
 * clock its deadlines use (os->cond_wait_until), so a fake clock drives
 * all of it.
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "internal.h"

#define NS_PER_MS      1000000ULL
#define BACKOFF_MAX_NS (1000 * NS_PER_MS)
#define FLAP_NS	       (1000 * NS_PER_MS) /* a split this soon after our collapse: a flap */
#define QUIET_NS       (100 * NS_PER_MS)  /* a flapping block's quiet period, doubled ... */
#define QUIET_MAX      5		  /* ... up to this many times (3.2 s) */

static void *collapse_thread(void *arg);

static void fresh_clear(struct hp_arena *a, struct hp_block *b)
{
	if (!b->fresh_q)
		return;
	b->fresh_q = false;
	__atomic_store_n(&a->nfresh, a->nfresh - 1, __ATOMIC_RELAXED);
}

static void queue_push(struct hp_arena *a, struct hp_block *b)
{
	b->queued = true;
	b->qnext = a->queue;
	a->queue = b;
	__atomic_store_n(&a->nqueued, a->nqueued + 1, __ATOMIC_RELAXED);
}

/* How long flapping block @b must stay uniform before its collapse. */
static uint64_t quiet_ns(const struct hp_block *b)
{
	return b->nflaps ? QUIET_NS << (b->nflaps - 1) : 0;
}

/* How long @b must stay uniform before a hp_collapse_run under @flags
 * collapses it: the delay, or its quiet period if longer. */
static uint64_t wait_ns(const struct hp_arena *a, const struct hp_block *b, int flags)
{
	uint64_t delay = flags & HP_RUN_NOW ? 0 : (uint64_t)a->collapse_delay_ms * NS_PER_MS;
	return delay > quiet_ns(b) ? delay : quiet_ns(b);
}

/* When the thread can collapse queued, uniform block @b at the earliest. */
static uint64_t due_ns(const struct hp_arena *a, const struct hp_block *b)
{
	uint64_t at = b->uniform_since_ns + wait_ns(a, b, 0);
	return at > b->retry_at_ns ? at : b->retry_at_ns;
}

void hp_collapse_note_split(struct hp_arena *a, struct hp_block *b)
{
	if (!a->collapse_quiet)
		return;
	uint64_t now = a->os->now_ns();
	if (b->huge_since_ns && now - b->huge_since_ns < FLAP_NS)
		b->nflaps = b->nflaps < QUIET_MAX + 1 ? b->nflaps + 1 : b->nflaps;
	else
		b->nflaps = 0;
}

void hp_collapse_lazy(struct hp_arena *a, struct hp_block *b, unsigned n)
{
	/* One call for the run (YJIT's 256 MiB range: one madvise, not 129).
	 * Advice refused: the blocks are ordinary lazy ones (huge when
	 * touched); nothing else changes. */
	if (!a->lazy_small || !b->lazy || !a->os->advise_huge ||
	    a->os->advise_huge(b->base, (size_t)n * HP_BLOCK_SIZE, false))
		return;
	for (unsigned i = 0; i < n; i++)
		b[i].cold = true;
}

void hp_collapse_warm(struct hp_arena *a, struct hp_block *b)
{
	b->cold = false;
	/* A JIT writes into it in bursts from now on: its first collapse
	 * waits for a quiet period too, in the thread. */
	if (a->collapse_quiet)
		b->nflaps = 1;
	/* Refused: its collapse gets EINVAL, and is switched off for it. */
	a->os->advise_huge(b->base, HP_BLOCK_SIZE, true);
}

bool hp_collapse_quiet(const struct hp_arena *a, const struct hp_block *b)
{
	return a->collapse_quiet && b->nflaps && b->queued &&
	       a->os->now_ns() < b->uniform_since_ns + quiet_ns(b);
}

/* A lazy block all PROT_NONE: no memory, nothing to map. */
static bool lazy_none(const struct hp_block *b)
{
	int cls;
	return b->lazy && hp_block_uniform(b, &cls) && cls == PROT_NONE;
}

bool hp_collapse_enqueue(struct hp_arena *a, struct hp_block *b)
{
	if (a->collapse_mode == HP_COLLAPSE_OFF || b->huge || b->backend != HP_BACKEND_THP ||
	    b->collapse_off || b->cold || lazy_none(b))
		return false;
	b->uniform_since_ns = a->os->now_ns();
	if (b->queued)
		return false;
	queue_push(a, b);
	return true;
}

bool hp_block_wait_collapse(struct hp_arena *a, struct hp_block *b)
{
	bool waited = false;
	while (b->collapsing || b->purging) {
		pthread_cond_wait(&a->collapse_done, &a->lock);
		waited = true;
	}
	return waited;
}

/* Start the collapse thread if it is not running.  Lock held. */
static void thread_start(struct hp_arena *a)
{
	if (!a->thread_running && !a->thread_stop) {
		pthread_attr_t attr;
		if (pthread_attr_init(&attr))
			return;
		sigset_t all; /* signals are the program's business, not ours */
		hp_background_sigset(&all);
		pthread_attr_setsigmask_np(&attr, &all);
		a->thread_kick = true; /* it looks at the queue before it sleeps */
		if (pthread_create(&a->thread, &attr, collapse_thread, a) == 0)
			__atomic_store_n(&a->thread_running, true, __ATOMIC_RELAXED);
		pthread_attr_destroy(&attr);
	}
}

/* Queued block @b turned uniform (again): tell the running thread when it
 * can be due.  The block that set the thread's deadline moves it on, and
 * nobody is woken: the thread, woken at the old one, finds it moved and
 * sleeps on without the arena lock.  A block due before the deadline
 * kicks it.  Lock held. */
static void thread_note(struct hp_arena *a, struct hp_block *b)
{
	uint64_t due = due_ns(a, b);
	uint64_t until = __atomic_load_n(&a->thread_until_ns, __ATOMIC_RELAXED);
	if (b == a->thread_next) {
		uint64_t next = due < a->thread_next2_ns ? due : a->thread_next2_ns;
		if (next >= until || !until) {
			__atomic_store_n(&a->thread_until_ns, next, __ATOMIC_RELAXED);
			return;
		}
	} else {
		a->thread_next2_ns = due < a->thread_next2_ns ? due : a->thread_next2_ns;
		if (due >= until)
			return;
	}
	__atomic_store_n(&a->thread_until_ns, 0, __ATOMIC_RELAXED); /* one kick is enough */
	a->thread_signals++;
	pthread_mutex_lock(&a->thread_lock);
	a->thread_kick = true;
	pthread_cond_signal(&a->thread_wake);
	pthread_mutex_unlock(&a->thread_lock);
}

void hp_collapse_note_uniform(struct hp_arena *a, struct hp_block *b)
{
	hp_collapse_enqueue(a, b);
	/* A flapping block waits for quiet, in sync mode too: the thread
	 * collapses it then (a deferred arena without a thread leaves it to
	 * hp_collapse_pending(), as every block). */
	if (!b->queued ||
	    !((a->collapse_mode == HP_COLLAPSE_DEFERRED && a->collapse_thread) ||
	      (a->collapse_mode == HP_COLLAPSE_SYNC && (b->nflaps || hp_collapse_threaded(a)))))
		return;
	thread_start(a); /* queued before a fork, its thread in the parent */
	if (a->thread_running)
		thread_note(a, b);
}

void hp_collapse_fresh(struct hp_arena *a, struct hp_block *b)
{
	bool huge = false;
	if (a->os->huge_mapped(b->base, HP_BLOCK_SIZE, &huge) == 0 && huge) {
		b->huge = true;
		return;
	}
	/* Not huge (a fragmented machine; the exec view of an aliased block,
	 * whose shmem pages are small with shmem_enabled=never), or no answer
	 * (PAGEMAP_SCAN is Linux 6.7+): a collapse, later, lock dropped. */
	b->huge = false;
	hp_collapse_note_uniform(a, b);
	if (b->queued && !b->fresh_q) {
		b->fresh_q = true;
		__atomic_store_n(&a->nfresh, a->nfresh + 1, __ATOMIC_RELAXED);
	}
}

/* Does @b still need a collapse at all? */
static bool wanted(const struct hp_block *b)
{
	return b->state != HP_BLOCK_UNCOMMITTED && !b->huge && !b->collapse_off &&
	       hp_block_uniform(b, NULL) && !lazy_none(b) && !b->purging && !b->cold;
}

/* Does the thread keep queued block @b, split again, for now?  A flapping
 * block that was uniform within its wait is being written in bursts, and
 * turns uniform again soon: queued, it pushes its own deadline then, where
 * a block dropped and queued again would wake the thread each time (twice
 * a quiet period).  One that stayed mixed a whole wait leaves the queue. */
static bool lingers(const struct hp_arena *a, const struct hp_block *b, uint64_t now)
{
	return a->collapse_quiet && b->nflaps && b->state != HP_BLOCK_UNCOMMITTED && !b->huge &&
	       !b->collapse_off && !b->purging && !b->cold && !hp_block_uniform(b, NULL) &&
	       now < b->uniform_since_ns + wait_ns(a, b, 0);
}

static void queue_drop(struct hp_arena *a, struct hp_block **pp)
{
	struct hp_block *b = *pp;
	*pp = b->qnext;
	b->queued = false;
	fresh_clear(a, b);
	b->qnext = NULL;
	__atomic_store_n(&a->nqueued, a->nqueued - 1, __ATOMIC_RELAXED);
}

/* Take the next block due for a collapse off the queue, or NULL.  The
 * thread's look (@flags 0) keeps lingering blocks. */
static struct hp_block *queue_pop_due(struct hp_arena *a, int flags, uint64_t now)
{
	bool force = flags & HP_RUN_FORCE;
	bool fresh = flags & HP_RUN_FRESH;
	struct hp_block **pp = &a->queue;

	while (*pp) {
		struct hp_block *b = *pp;
		if ((fresh && !b->fresh_q && wanted(b)) ||
		    (!flags && !wanted(b) && lingers(a, b, now))) {
			pp = &b->qnext;
			continue;
		}
		bool due = force || fresh ||
			   (now >= b->uniform_since_ns + wait_ns(a, b, flags) &&
			    now >= b->retry_at_ns);
		if (!wanted(b) || due) {
			queue_drop(a, pp);
			if (wanted(b))
				return b;
			continue;
		}
		pp = &b->qnext;
	}
	return NULL;
}

uint64_t hp_collapse_next_ns(struct hp_arena *a, uint64_t now)
{
	uint64_t next = UINT64_MAX, next2 = UINT64_MAX;
	struct hp_block **pp = &a->queue;
	a->thread_next = NULL;
	while (*pp) {
		struct hp_block *b = *pp;
		uint64_t at;
		if (wanted(b))
			at = due_ns(a, b);
		else if (lingers(a, b, now)) /* uniform from now at the soonest */
			at = now + wait_ns(a, b, 0) > b->retry_at_ns ? now + wait_ns(a, b, 0)
								     : b->retry_at_ns;
		else {
			queue_drop(a, pp);
			continue;
		}
		if (at < next) {
			next2 = next;
			next = at;
			a->thread_next = b;
		} else if (at < next2) {
			next2 = at;
		}
		pp = &b->qnext;
	}
	a->thread_next2_ns = next2;
	return next;
}

void hp_collapse_forget(struct hp_arena *a, struct hp_chunk *c)
{
	struct hp_block **pp = &a->queue;
	if (a->thread_next && a->thread_next->chunk == c)
		a->thread_next = NULL; /* its chunk goes */
	while (*pp) {
		if ((*pp)->chunk == c)
			queue_drop(a, pp);
		else
			pp = &(*pp)->qnext;
	}
}

static void back_off(struct hp_arena *a, struct hp_block *b, struct hp_block **later)
{
	if (b->nfailed < 10)
		b->nfailed++;
	uint64_t wait = NS_PER_MS << b->nfailed;
	b->retry_at_ns = a->os->now_ns() + (wait < BACKOFF_MAX_NS ? wait : BACKOFF_MAX_NS);
	b->queued = true;
	b->qnext = *later;
	*later = b;
}

static void report_einval(const struct hp_arena *a, const struct hp_block *b)
{
	if (!a->verbose)
		return;
	char msg[128];
	struct hp_buf m = {msg, sizeof(msg), 0};
	hp_buf_str(&m, "hugeperm: MADV_COLLAPSE gave EINVAL for block 0x");
	hp_buf_hex(&m, b->base);
	hp_buf_str(&m, "; collapse disabled for it\n");
	a->os->write_all(2, msg, m.len < m.cap ? m.len : m.cap);
}

int hp_collapse_run(struct hp_arena *a, int flags, int budget, int *tried)
{
	struct hp_block *later = NULL; /* backed off: re-queued at the end */
	int done = 0, ntried = 0;
	int retries = (int)a->collapse_retries;

	pthread_mutex_lock(&a->lock);
	while (budget == 0 || ntried < budget) {
		struct hp_block *b = queue_pop_due(a, flags, a->os->now_ns());
		if (!b)
			break;
		ntried++;
		b->collapsing = true;
		/* A lazy block may have no page at all, and MADV_COLLAPSE
		 * wants one (EINVAL otherwise): fault it in first, which on a
		 * uniform VMA takes a huge page outright.  Not writable: left
		 * to the first touch. */
		int cls = PROT_NONE;
		hp_block_uniform(b, &cls);
		bool lazy = b->lazy;
		pthread_mutex_unlock(&a->lock);

		int err = 0, attempts = 0;
		bool faulted = false; /* the populate took a huge page: no collapse */
		bool fresh = false;   /* the populate gave the block its first memory */
		uint64_t populate_ns = 0, collapse_ns = 0;
		if (lazy && (cls & PROT_WRITE)) {
			/* Fresh memory only if the kernel says the block had no
			 * page (the program may have touched it first; a retry
			 * after a back-off finds the last populate's). */
			uint64_t map[8];
			bool empty = a->os->held && a->os->held(b->base, HP_BLOCK_SIZE, map) == 0 &&
				     !(map[0] & 1);
			uint64_t t0 = a->os->now_ns();
			err = a->os->populate(b->base, HP_BLOCK_SIZE);
			populate_ns = a->os->now_ns() - t0;
			fresh = !err && empty;
			bool huge;
			faulted = !err && a->os->huge_mapped(b->base, HP_BLOCK_SIZE, &huge) == 0 &&
				  huge;
		}
		if (!err && !faulted) {
			uint64_t t0 = a->os->now_ns();
			do {
				err = a->os->collapse(b->base, HP_BLOCK_SIZE);
				attempts++;
			} while (err == EAGAIN && attempts <= retries);
			collapse_ns = a->os->now_ns() - t0;
		}

		pthread_mutex_lock(&a->lock);
		b->collapsing = false;
		pthread_cond_broadcast(&a->collapse_done);
		a->n.collapse_attempts += (uint64_t)attempts;
		a->n.collapse_ns += collapse_ns;
		if (fresh) {
			a->n.fresh_blocks++;
			a->n.fresh_ns += populate_ns;
		}
		switch (err) {
		case 0:
			b->huge = true;
			b->lazy = false;
			b->nfailed = 0;
			b->huge_since_ns = a->os->now_ns();
			done++;
			if (!faulted) /* else huge from its first fault: no collapse, as
				       * the kernel counts (thp_fault_alloc) */
				a->n.collapses[b->home]++;
			break;
		case EAGAIN:
			a->n.collapse_eagain++;
			back_off(a, b, &later);
			break;
		case ENOMEM:
			a->n.collapse_enomem++;
			back_off(a, b, &later);
			break;
		case EBUSY:
			a->n.collapse_ebusy++;
			back_off(a, b, &later);
			break;
		case EINVAL:
			if (lazy && !(cls & PROT_WRITE))
				break; /* no page yet: its first touch maps it huge */
			a->n.collapse_einval++;
			b->collapse_off = true;
			report_einval(a, b);
			break;
		default:
			a->n.collapse_other++;
			break;
		}
	}
	while (later) {
		struct hp_block *b = later;
		later = b->qnext;
		queue_push(a, b);
		/* A caller's run (hp_arena_collapse_pending): the thread may have
		 * looked while the block was off the queue, and sleeps past it. */
		if (flags && a->thread_running)
			thread_note(a, b);
	}
	pthread_mutex_unlock(&a->lock);
	if (tried)
		*tried = ntried;
	return done;
}

/* The thread's look at the queue, the arena lock held: the collapses due
 * (the lock dropped for each), at most collapse_rate a second
 * (@next_try); then its deadline, which calls see and move. */
static uint64_t thread_look(struct hp_arena *a, uint64_t *next_try)
{
	for (;;) {
		uint64_t now = a->os->now_ns();
		uint64_t next = hp_collapse_next_ns(a, now);
		if (next != UINT64_MAX && next < *next_try)
			next = *next_try;
		if (next > now || a->thread_stop) {
			__atomic_store_n(&a->thread_until_ns, next, __ATOMIC_RELAXED);
			return next;
		}
		pthread_mutex_unlock(&a->lock);
		int tried = 0;
		hp_collapse_run(a, 0, 1, &tried);
		pthread_mutex_lock(&a->lock);
		if (tried)
			*next_try = now + 1000000000ULL / (uint64_t)a->collapse_rate;
	}
}

bool hp_collapse_thread_wakeup(struct hp_arena *a, uint64_t *next_try, uint64_t *until,
			       bool *looked)
{
	*until = __atomic_load_n(&a->thread_until_ns, __ATOMIC_RELAXED);
	*looked = a->thread_kick || a->os->now_ns() >= *until;
	if (!*looked)
		return true;
	a->thread_kick = false;
	pthread_mutex_unlock(&a->thread_lock);
	pthread_mutex_lock(&a->lock);
	*until = thread_look(a, next_try);
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_lock(&a->thread_lock);
	return !a->thread_kick;
}

/* The thread: asleep until its deadline, on a lock of its own; woken, it
 * looks at the queue only when kicked or when the deadline has not moved
 * on meanwhile.  A JIT that flips its block holds the arena lock most of
 * the time, and a waiter there is woken by each unlock only to find it
 * taken again (main at 8bc7ff1, tests/kernel/quiet.t: hundreds of futex
 * waits a second for the thread, and as many wakes, system calls, for the
 * JIT), for nothing: a block flipped is not due. */
static void *collapse_thread(void *arg)
{
	struct hp_arena *a = arg;
	uint64_t next_try = 0; /* the rate: no collapse before this */
	pthread_setname_np(pthread_self(), "hugeperm-collap"); /* top -H, /proc: 15 chars */

	pthread_mutex_lock(&a->thread_lock);
	while (!__atomic_load_n(&a->thread_stop, __ATOMIC_RELAXED)) {
		uint64_t until;
		bool looked;
		if (!hp_collapse_thread_wakeup(a, &next_try, &until, &looked))
			continue;
		if (until == UINT64_MAX)
			pthread_cond_wait(&a->thread_wake, &a->thread_lock);
		else
			a->os->cond_wait_until(&a->thread_wake, &a->thread_lock, until);
	}
	pthread_mutex_unlock(&a->thread_lock);
	return NULL;
}

void hp_collapse_thread_stop(struct hp_arena *a)
{
	pthread_mutex_lock(&a->lock);
	bool running = a->thread_running;
	__atomic_store_n(&a->thread_stop, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&a->lock);
	if (running) {
		pthread_mutex_lock(&a->thread_lock);
		a->thread_kick = true;
		pthread_cond_broadcast(&a->thread_wake);
		pthread_mutex_unlock(&a->thread_lock);
		pthread_join(a->thread, NULL);
	}
	__atomic_store_n(&a->thread_running, false, __ATOMIC_RELAXED);
}
