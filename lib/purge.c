/* SPDX-License-Identifier: MIT */
/*
 * purge.c - giving free blocks back to the kernel: on their own after a
 * delay (the purge), and all at once on request (hp_trim's full trim).
 *
 * A block that becomes EMPTY (hp_arena_put_block) is stamped with the
 * time; once it has stayed free for purge_ms (HUGEPERM_PURGE_MS, 1000 by
 * default; hp_config.purge_ms) it is decommitted: its memory goes back to
 * the kernel (or to the hugetlb pool) and its address space stays reserved
 * for the next commit, as jemalloc's decay and mimalloc's purge delay do.
 * A burst that frees and maps again within the delay pays nothing.
 *
 * The reserve: the PURGE_RESERVE most recently freed blocks of each class,
 * per pool set and node, are kept for the next burst (a free list is LIFO:
 * they are the first of their class on it).  hp_trim() gives those back
 * too.  1 GiB pages are given back whole by hp_trim() alone.
 *
 * Who purges, never on the program's fast path:
 *   - the purge thread of a real arena (purge_threaded: arenas made by
 *     hp_arena_create and the default arena), started the first time a
 *     block becomes free past its class's reserve with a delay to wait,
 *     never before: a program (or the preload) that never frees more than
 *     the reserve (one block a class) never gets a thread.  It
 *     sleeps until the next deadline on os->cond_wait_until, purges one
 *     block per hold of the arena lock, and sleeps on purge_wake when
 *     nothing is due.  So a program that frees its blocks and then makes
 *     no further call still gets its memory back.  Its signals are
 *     blocked (but the synchronous ones, which blocked would kill the
 *     process): the program's handlers never run on it otherwise.
 *   - the calls the program makes (hp_purge_poll, at the end of each
 *     public call), when there is no thread (an arena on another OS layer,
 *     pthread_create failed, or a child after fork, where no thread is
 *     started): one load and a branch while nothing is due, a clock read
 *     while something waits.
 *   - purge_ms 0: at once, in hp_purge_note_free, by the call that freed
 *     the block.
 * The thread decommits with the arena lock dropped, as a collapse runs:
 * the block is marked `purging`, stays on its free list, and whoever would
 * take it (or trim it) waits for the decommit (hp_block_wait_collapse), so
 * the program waits for a purge only if it wants that very block.  The
 * calls' purges (no thread, or delay 0) run under the lock, as hp_trim's.
 * A fork while a decommit is in flight: the child decommits the block
 * again (hp_purge_fork_child), which makes it a reservation whichever
 * side of the fork the parent's system call fell.
 *
 * A decommit the kernel refuses (ENOMEM: vm.max_map_count) leaves the block
 * as it was, free and committed; it is counted (purge_failed) and tried
 * again one delay later (at least RETRY_NS).
 */
#include "config.h"

#include <signal.h>

#include "internal.h"

#define NS_PER_MS     1000000ULL
#define PURGE_RESERVE 1		       /* free blocks kept per class, set and node */
#define RETRY_NS      (10 * NS_PER_MS) /* a block not purgeable now: tried again after */

static void *purge_thread(void *arg);

void hp_purge_init(struct hp_arena *a, const struct hp_options *opt)
{
	a->purge_ms = (int32_t)opt->purge_ms;
	pthread_cond_init(&a->purge_wake, NULL);
}

static uint64_t delay_ns(const struct hp_arena *a)
{
	return a->purge_ms > 0 ? (uint64_t)a->purge_ms * NS_PER_MS : 0;
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

/* Block @b's memory back to the kernel: the system call alone. */
static int decommit(struct hp_arena *a, struct hp_block *b)
{
	struct hp_chunk *c = b->chunk;
	return b->aliased ? a->os->alias_decommit(b->base, hp_alias_of(b, b->base),
						  c->alias_fd[hp_alias_kind(b->backend)],
						  b->base - c->base, HP_BLOCK_SIZE)
			  : a->os->decommit(b->base, HP_BLOCK_SIZE);
}

/* The bookkeeping after it: off the free list, UNCOMMITTED. */
static void decommitted(struct hp_arena *a, struct hp_block *b)
{
	hp_arena_unlink_free(a, b);
	b->state = HP_BLOCK_UNCOMMITTED;
	b->huge = false;
	b->aliased = false;
	b->chunk->ncommitted--;
	a->committed_bytes -= HP_BLOCK_SIZE;
}

int hp_arena_decommit_free(struct hp_arena *a, struct hp_block *b)
{
	int err = decommit(a, b);
	if (!err)
		decommitted(a, b);
	return err;
}

/* The purge of @b failed with @err, or succeeded: counted, and a failed
 * block tried again a delay later.  Lock held. */
static void purged(struct hp_arena *a, struct hp_block *b, int err, uint64_t now, uint64_t *next)
{
	if (!err) {
		a->n.purged_blocks++;
		return;
	}
	uint64_t delay = delay_ns(a);
	a->n.purge_failed++;
	b->free_since_ns = now;
	*next = earliest(*next, now + (delay > RETRY_NS ? delay : RETRY_NS));
}

/*
 * Purge the free blocks of @a due at @now, past the reserve, under the
 * lock.  With @pick, purge none: the first due block is marked purging and
 * goes to *pick (NULL: none), for the caller to decommit without the lock.
 * The next deadline goes to purge_next_ns (0: none; @now: more are due).
 * Lock held.
 */
static void purge_due(struct hp_arena *a, uint64_t now, struct hp_block **pick)
{
	uint64_t delay = delay_ns(a), next = 0;

	if (pick)
		*pick = NULL;
	if (a->purge_ms < 0)
		return;
	for (int nd = 0; nd < HP_MAX_NODES; nd++)
		for (int set = 0; set < HP_NSETS; set++) {
			unsigned kept[HP_NCLASS] = {0};
			struct hp_block *b = a->node[nd].free_blocks[set], *bnext;
			for (; b; b = bnext) {
				bnext = b->next;
				if (b->chunk->hugetlb_1g)
					continue;
				if (kept[b->home] < PURGE_RESERVE) {
					kept[b->home]++;
					continue;
				}
				uint64_t due = b->free_since_ns + delay;
				if (now < due) {
					next = earliest(next, due);
					continue;
				}
				if (b->collapsing || b->purging) { /* returns soon */
					next = earliest(next, now + RETRY_NS);
					continue;
				}
				if (pick && *pick) {
					next = now;
					continue;
				}
				if (pick) {
					b->purging = true;
					*pick = b;
					continue;
				}
				purged(a, b, hp_arena_decommit_free(a, b), now, &next);
			}
		}
	__atomic_store_n(&a->purge_next_ns, next, __ATOMIC_RELAXED);
}

/*
 * Whether @b's free list (its pool set and node) holds a block of @b's
 * class past the reserve, which a purge could take; *oldest: the earliest
 * free_since_ns of those.  Counted as purge_due counts the reserve.
 */
static bool past_reserve(const struct hp_arena *a, const struct hp_block *b, uint64_t *oldest)
{
	unsigned kept = 0;
	bool any = false;
	for (const struct hp_block *x = a->node[b->pool_idx].free_blocks[b->pool_set]; x;
	     x = x->next) {
		if (x->home != b->home || x->chunk->hugetlb_1g)
			continue;
		if (kept < PURGE_RESERVE) {
			kept++;
			continue;
		}
		if (!any || x->free_since_ns < *oldest)
			*oldest = x->free_since_ns;
		any = true;
	}
	return any;
}

void hp_purge_note_free(struct hp_arena *a, struct hp_block *b)
{
	if (a->purge_ms < 0 || b->chunk->hugetlb_1g)
		return;
	uint64_t now = a->os->now_ns();
	b->free_since_ns = now;
	if (a->purge_ms == 0) {
		purge_due(a, now, NULL);
		return;
	}
	/* A block that is its class's reserve is never purged: no deadline,
	 * and no thread started for it.  A served process that unmaps its
	 * one area at exit (LuaJIT's lua_close) started a thread for nothing
	 * (an 8 MiB stack mapped, clone3: 3% of a served `luajit -e`'s
	 * samples).  A block pushed past the reserve by this free is due one
	 * delay after its own free, or one delay from now if that is past, as
	 * when every free set a deadline. */
	uint64_t oldest = 0;
	if (!past_reserve(a, b, &oldest))
		return;
	uint64_t was = a->purge_next_ns, due = oldest + delay_ns(a);
	if (due <= now)
		due = now + delay_ns(a);
	if (was && was <= due)
		return; /* whoever waits for the earlier deadline comes here too */
	__atomic_store_n(&a->purge_next_ns, due, __ATOMIC_RELAXED);
	if (!a->purge_threaded || a->purge_stop)
		return;
	if (a->purge_running) {
		pthread_cond_signal(&a->purge_wake);
		return;
	}
	pthread_attr_t attr;
	if (pthread_attr_init(&attr))
		return;
	sigset_t all;
	hp_background_sigset(&all);
	pthread_attr_setsigmask_np(&attr, &all);
	if (pthread_create(&a->purge_thread, &attr, purge_thread, a) == 0)
		__atomic_store_n(&a->purge_running, true, __ATOMIC_RELAXED);
	pthread_attr_destroy(&attr);
}

void hp_purge_tick(struct hp_arena *a)
{
	uint64_t next = __atomic_load_n(&a->purge_next_ns, __ATOMIC_RELAXED);
	uint64_t now = a->os->now_ns();
	if (!next || now < next)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->purge_next_ns && now >= a->purge_next_ns)
		purge_due(a, now, NULL);
	pthread_mutex_unlock(&a->lock);
}

/* Decommit @b, marked purging, without the lock; then its bookkeeping.
 * Lock held on entry and on return. */
static void purge_unlocked(struct hp_arena *a, struct hp_block *b)
{
	pthread_mutex_unlock(&a->lock);
	int err = decommit(a, b);
	pthread_mutex_lock(&a->lock);
	b->purging = false;
	pthread_cond_broadcast(&a->collapse_done); /* hp_block_wait_collapse */
	if (!err)
		decommitted(a, b);
	uint64_t next = a->purge_next_ns;
	purged(a, b, err, a->os->now_ns(), &next);
	__atomic_store_n(&a->purge_next_ns, next, __ATOMIC_RELAXED);
}

static void *purge_thread(void *arg)
{
	struct hp_arena *a = arg;
	pthread_setname_np(pthread_self(), "hugeperm-purge"); /* top -H, /proc */

	pthread_mutex_lock(&a->lock);
	while (!a->purge_stop) {
		uint64_t next = a->purge_next_ns, now = a->os->now_ns();
		struct hp_block *b;
		if (next && now >= next) {
			purge_due(a, now, &b);
			if (b)
				purge_unlocked(a, b);
		} else if (next) {
			a->os->cond_wait_until(&a->purge_wake, &a->lock, next);
		} else {
			pthread_cond_wait(&a->purge_wake, &a->lock);
		}
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

void hp_purge_thread_stop(struct hp_arena *a)
{
	pthread_mutex_lock(&a->lock);
	bool running = a->purge_running;
	a->purge_stop = true;
	pthread_cond_broadcast(&a->purge_wake);
	pthread_mutex_unlock(&a->lock);
	if (running)
		pthread_join(a->purge_thread, NULL);
	__atomic_store_n(&a->purge_running, false, __ATOMIC_RELAXED);
}

void hp_purge_fork_child(struct hp_arena *a)
{
	__atomic_store_n(&a->purge_running, false, __ATOMIC_RELAXED);
	/* No thread here: the child of a multi-threaded process (ours has
	 * the purge thread) may make only async-signal-safe calls, which
	 * pthread_create is not.  The child's calls purge. */
	a->purge_threaded = false;
	for (int nd = 0; nd < HP_MAX_NODES; nd++)
		for (int set = 0; set < HP_NSETS; set++) {
			struct hp_block *b = a->node[nd].free_blocks[set], *next;
			for (; b; b = next) {
				next = b->next;
				if (!b->purging)
					continue;
				b->purging = false;
				/* Both views to reservations, the file left alone:
				 * it is the parent's (the child gets its own). */
				int err = a->os->decommit(b->base, HP_BLOCK_SIZE);
				if (!err && b->aliased)
					err = a->os->decommit(hp_alias_of(b, b->base),
							      HP_BLOCK_SIZE);
				if (!err)
					decommitted(a, b);
			}
		}
}

int hp_arena_trim_blocks(struct hp_arena *a)
{
	uint64_t n = 0;
	for (int nd = 0; nd < HP_MAX_NODES; nd++)
		for (int set = 0; set < HP_NSETS; set++) {
			struct hp_block *b = a->node[nd].free_blocks[set], *next;
			for (; b; b = next) {
				next = b->next;
				if (b->chunk->hugetlb_1g || b->collapsing || b->purging)
					continue; /* a collapse in flight: next trim */
				int err = hp_arena_decommit_free(a, b);
				if (err)
					return err;
				n++;
			}
		}
	/* 1 GiB pages go back whole, when none of their blocks is in use. */
	for (struct hp_chunk *c = a->chunks; c; c = c->next) {
		if (!c->hugetlb_1g)
			continue;
		bool all_empty = true;
		for (unsigned i = 0; i < HP_CHUNK_BLOCKS && all_empty; i++)
			all_empty = c->blocks[i].state == HP_BLOCK_EMPTY &&
				    !c->blocks[i].collapsing && !c->blocks[i].purging;
		if (!all_empty)
			continue;
		int err = a->os->decommit(c->base, HP_CHUNK_SIZE);
		if (err)
			return err;
		for (unsigned i = 0; i < HP_CHUNK_BLOCKS; i++) {
			hp_arena_unlink_free(a, &c->blocks[i]);
			c->blocks[i].state = HP_BLOCK_UNCOMMITTED;
			c->blocks[i].huge = false;
		}
		c->hugetlb_1g = false;
		c->ncommitted = 0;
		a->committed_bytes -= HP_CHUNK_SIZE;
		n += HP_CHUNK_BLOCKS;
	}
	a->n.trimmed_blocks += n;
	if (a->purge_ms >= 0) /* what is left: the next deadline */
		purge_due(a, a->os->now_ns(), NULL);
	return 0;
}
