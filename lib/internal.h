/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the modules of libhugeperm call of each other.
 *
 * The words are in types.h (with the glossary), the system calls behind
 * struct hp_os in os.h; this header has the prototypes, module by module,
 * in the order of the layering.
 *
 * Layering: calls only go down; only the OS layer makes system calls.
 *
 *   api ── stats              public calls, default arena, HUGEPERM_TRACE
 *    │  fork: atfork handlers (entry points libc calls, like api's)
 *   cache ── code             per-thread caches: the fast path; packed code
 *    │  fork: the registry of arenas (a list and a lock: calls nothing)
 *   pool ── protect           placement; protection changes, split counts
 *    │         │
 *   arena ─────┘── purge      chunks, the address map, committing blocks;
 *    │                        purge: free blocks back to the kernel
 *   collapse   backend        the collapse queue; backend choice and names
 *    │
 *   block  fresh              pure: bitmaps, per-page protections; which
 *                             pages read as zero
 *   os                        os.c, os_maps.c, os_probe.c (os.h)
 *   from any layer: options, fmt, trace (trace writes through os)
 *
 * Errors: an internal call returns 0 or a positive errno (never -1, never
 * -errno), and results go to out-parameters.  The one exception is the
 * allocators that mirror mmap (hp_pool_alloc, hp_tcache_alloc): a pointer,
 * or NULL with errno set.  The public API (api.c) turns these into the
 * system calls' convention: NULL or -1 with errno.
 *
 * Settings: an arena carries the settings its lower layers read (backend,
 * fall back, collapse mode and thread, verbose, ...), given at
 * hp_arena_init; only api.c and options.c read the global hp_opt.
 *
 * Locking: one mutex per arena guards its blocks, pools and counters, except
 * on the fast path (cache.c): per-thread bins, the chunk map (atomic, read
 * inside liburcu-bp read-side sections) and the per-page allocation states
 * (astate, atomics) are used without it.
 * mprotect is called with the lock held (it must be atomic with the
 * bookkeeping).  MADV_COLLAPSE never runs with the lock held, nor on the
 * allocation path: a new THP block learns whether its populate fault took a
 * huge page from PAGEMAP_SCAN (hp_collapse_fresh) and is queued if not
 * (collapsed by the thread, or by the end of the public call, lock dropped,
 * when there is no thread: after_call in api.c); a
 * collapse (collapse.c) marks the block `collapsing`, drops the lock, and
 * protection changes on that block wait on the arena's condition variable
 * until the collapse returns.
 */
#ifndef HP_INTERNAL_H
#define HP_INTERNAL_H

#include <errno.h>

#include "os.h"
#include "types.h"

struct hp_buf;

/* ---------------------------------------------------------------------
 * options (options.c): one table (types.h), read from HUGEPERM_<NAME>.
 * ------------------------------------------------------------------- */
extern struct hp_options hp_opt;
/* Read the environment once; later calls do nothing. */
void hp_options_init(void);
/* Parse one option value; 0, or EINVAL with the default kept. */
int hp_option_parse(enum hp_option_id id, const char *value, long *out);
void hp_options_print(int fd);
/* The collapse modes' one name table: "default", "deferred", "sync", "off". */
const char *hp_collapse_mode_name(int mode);
/* The mode named @name (including "default"), or -1. */
int hp_collapse_mode_parse(const char *name);

/* ---------------------------------------------------------------------
 * backend (backend.c): which memory blocks come from.  Pure.
 * ------------------------------------------------------------------- */
bool hp_backend_is_hugetlb(int backend);
/* The backend named @name ("auto", "hugetlb-1g", ...: hp_backend_name's
 * table), or -1. */
int hp_backend_parse(const char *name);
/* Choose the backend for @want on a machine like @pr: 0 with *backend and
 * *mutable_backend set, or ENODEV; the reason goes to @why. */
int hp_backend_choose(const struct hp_probe *pr, int want, int *backend, int *mutable_backend,
		      struct hp_buf *why);
/* A commit on @backend failed with @err: true if the arena should go on
 * with its mutable backend (a dry hugetlb pool, ENOMEM, of a backend
 * chosen automatically: @automatic). */
bool hp_backend_falls_back(int backend, bool automatic, int err);

/* ---------------------------------------------------------------------
 * block (block.c): per-block state, pure functions, no system calls.
 * ------------------------------------------------------------------- */
static inline uint32_t hp_astate(const struct hp_block *b, unsigned page)
{
	return __atomic_load_n(&b->astate[page], __ATOMIC_ACQUIRE);
}

static inline void hp_astate_set(struct hp_block *b, unsigned page, uint32_t state, size_t n)
{
	__atomic_store_n(&b->astate[page], state | (uint32_t)n << 2, __ATOMIC_RELEASE);
}

/* LIVE -> HELD; true if this caller won.  *n (if not NULL) gets the
 * allocation's pages. */
static inline bool hp_astate_claim(struct hp_block *b, unsigned page, size_t *n)
{
	uint32_t cur = __atomic_load_n(&b->astate[page], __ATOMIC_RELAXED);
	if ((cur & HP_A_MASK) != HP_A_LIVE)
		return false;
	if (n)
		*n = cur >> 2;
	return __atomic_compare_exchange_n(&b->astate[page], &cur, (cur & ~HP_A_MASK) | HP_A_HELD,
					   false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* How far address @x is from the range [lo, hi): 0 inside it. */
static inline uintptr_t hp_distance(uintptr_t lo, uintptr_t hi, uintptr_t x)
{
	return x < lo ? lo - x : x >= hi ? x - hi + 1 : 0;
}

/* Do all pages of @b carry one protection?  It goes to *cls (if not NULL). */
static inline bool hp_block_uniform(const struct hp_block *b, int *cls)
{
	for (int c = 0; c < HP_NCLASS; c++)
		if (b->nprot[c] == HP_BLOCK_PAGES) {
			if (cls)
				*cls = c;
			return true;
		}
	return false;
}

/* Freed pages of @b drop their memory: they are lazy allocations (class
 * NONE), which read as zero when made accessible again (hugetlb memory
 * cannot drop part of a page). */
static inline bool hp_block_drops_free(const struct hp_block *b)
{
	return b->home == PROT_NONE && !hp_backend_is_hugetlb(b->backend);
}

static inline bool hp_test_bit(const uint64_t *map, unsigned i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

/* Set up the record of a block of a new chunk, zeroed metadata, with its
 * per-page arrays @pages (left untouched). */
void hp_block_init(struct hp_block *b, uintptr_t base, struct hp_chunk *chunk,
		   struct hp_block_pages *pages);
/* Reset the page state of a committed block: all free, all @prot. */
void hp_block_reset(struct hp_block *b, int prot);
/* Best-fitting free run of @n pages: its first page, or -1. */
int hp_block_find_run(const struct hp_block *b, unsigned n);
/* Mark [first, first+n) used as one allocation. */
void hp_block_take(struct hp_block *b, unsigned first, unsigned n);
/* Mark [first, first+n) free. */
void hp_block_give(struct hp_block *b, unsigned first, unsigned n);
/* Length of the allocation starting at @first, or 0 if none starts there. */
unsigned hp_block_alloc_len(const struct hp_block *b, unsigned first);
/* First page of the allocation that holds page @page, or -1. */
int hp_block_alloc_start(const struct hp_block *b, unsigned page);
/* Record that [first, first+n) now have protection @prot. */
void hp_block_set_prot(struct hp_block *b, unsigned first, unsigned n, int prot);
/* Do all of [first, first+n) have @prot already? */
bool hp_block_prot_is(const struct hp_block *b, unsigned first, unsigned n, int prot);

/* ---------------------------------------------------------------------
 * fresh (fresh.c): which pages of a block read as zero (b->dirty).
 * ------------------------------------------------------------------- */
/* @b's memory just arrived: all zero, or all @filled (int3). */
void hp_fresh_committed(struct hp_block *b, bool filled);
/* [first, first+n) of @b may hold bytes now (handed out, filled); the
 * range may run on into the following blocks (a span), as for clean. */
void hp_fresh_dirty(struct hp_block *b, unsigned first, size_t n);
/* [first, first+n) of @b, free, read as zero again (dropped). */
void hp_fresh_clean(struct hp_block *b, unsigned first, size_t n);
/* The first dirty page of @b in [from, end), its run's length in *len (0
 * and end when there is none). */
unsigned hp_fresh_next_dirty(const struct hp_block *b, unsigned from, unsigned end, unsigned *len);

/* ---------------------------------------------------------------------
 * held blocks (held_blocks.c): which whole blocks of a run a discard
 * must drop (the kernel has pages of them).  Lock held.
 * ------------------------------------------------------------------- */
#define HP_HELD_SPAN (512 * HP_BLOCK_SIZE) /* blocks one scan answers for */
struct hp_held {
	uintptr_t lo, hi; /* the whole blocks scanned */
	uint64_t map[8];  /* bit k: block lo + k blocks holds pages */
	bool known;	  /* the scan was made and worked */
};
/* Start discarding pages [first, first + n) of run @b: waits for the
 * collapses and purges in flight on it (the lock may be dropped), then
 * asks the kernel once which of its whole blocks hold pages (when there
 * are two or more). */
void hp_held_begin(struct hp_arena *a, struct hp_held *h, struct hp_block *b, size_t first,
		   size_t n);
/* Must whole block @blk of the run be discarded?  False only when the
 * kernel says it holds no page. */
bool hp_held_block(const struct hp_held *h, const struct hp_block *blk);

/* ---------------------------------------------------------------------
 * collapse (collapse.c): the queue, its policy, the optional thread.
 * ------------------------------------------------------------------- */
/* Queue @b if it needs a collapse; true if it was queued now.  Lock held. */
bool hp_collapse_enqueue(struct hp_arena *a, struct hp_block *b);
/* @b became uniform; queue it if it needs a collapse, and wake (or start)
 * the collapse thread.  Lock held. */
void hp_collapse_note_uniform(struct hp_arena *a, struct hp_block *b);
/* Huge block @b was just split by a protection change: a flap if it comes
 * soon after our collapse (HP_ARENA_COLLAPSE_QUIET).  Lock held. */
void hp_collapse_note_split(struct hp_arena *a, struct hp_block *b);
/* The @n blocks from @b were committed together: lazy ones of an
 * HP_ARENA_LAZY_SMALL arena are advised to small pages (one call) and
 * cold.  Lock held. */
void hp_collapse_lazy(struct hp_arena *a, struct hp_block *b, unsigned n);
/* Part of cold block @b changes protection: code is written in it, which
 * is advised to huge pages again and may be collapsed.  Lock held. */
void hp_collapse_warm(struct hp_arena *a, struct hp_block *b);
/* Is @b flapping and waiting for its quiet period to end?  Lock held. */
bool hp_collapse_quiet(const struct hp_arena *a, const struct hp_block *b);
/* Does @a's collapse thread make all its collapses (a quiet arena whose
 * thread runs, sync mode too)?  Any thread, no lock needed. */
static inline bool hp_collapse_threaded(const struct hp_arena *a)
{
	return a->collapse_quiet && __atomic_load_n(&a->thread_running, __ATOMIC_RELAXED);
}
/* Fresh THP block @b is populated and uniform: set b->huge from the
 * kernel's page tables (PAGEMAP_SCAN, a few microseconds), and queue a
 * collapse if it is not huge or the kernel cannot say.  Never calls
 * MADV_COLLAPSE.  Lock held. */
void hp_collapse_fresh(struct hp_arena *a, struct hp_block *b);
/* hp_collapse_run() flags */
#define HP_RUN_NOW   0x1 /* ignore the delay (sync mode) */
#define HP_RUN_FORCE 0x2 /* ignore the backoff too (hp_collapse_pending) */
#define HP_RUN_FRESH 0x4 /* only fresh blocks (b->fresh_q), at once */
/* Run queued collapses that are due under @flags; @budget: at most this
 * many blocks (0: no limit); @tried, if not NULL, gets how many blocks were
 * tried.  Lock NOT held.  Returns the blocks collapsed (a count, not an
 * error: failures are counted in a->n and retried later). */
int hp_collapse_run(struct hp_arena *a, int flags, int budget, int *tried);
void hp_collapse_thread_stop(struct hp_arena *a);
/* The collapse thread's look at the queue at @now: blocks that no longer
 * want a collapse leave it, and the answer is when the first one left can
 * be due (at or before @now: one is due; UINT64_MAX: the queue is empty),
 * which the thread sleeps until; that block and when the others can be
 * due go to a->thread_next and thread_next2_ns.  Lock held. */
uint64_t hp_collapse_next_ns(struct hp_arena *a, uint64_t now);
/* One wakeup of the collapse thread, a->thread_lock held (dropped and
 * taken again around a look): when kicked or at its deadline, it looks at
 * the queue with the arena lock (the collapses due, at most collapse_rate
 * a second: @next_try); else it sleeps on, the lock untouched.  Its
 * deadline goes to *@until, whether it looked to *@looked; false when it
 * was kicked again meanwhile (wake it again before it sleeps).  The
 * thread's loop and tests/unit/collapse.t's simulated clock call it. */
bool hp_collapse_thread_wakeup(struct hp_arena *a, uint64_t *next_try, uint64_t *until,
			       bool *looked);
/* Take the blocks of chunk @c off the queue.  Lock held. */
void hp_collapse_forget(struct hp_arena *a, struct hp_chunk *c);
/* Wait until no collapse (nor purge: purge.c) is in flight on @b.  Lock
 * held.  True if it waited: the lock was dropped, and what the caller
 * found may have changed (a block off the lists is taken only with no collapse in flight, so that
 * nothing can put it back meanwhile: search again). */
bool hp_block_wait_collapse(struct hp_arena *a, struct hp_block *b);

/* ---------------------------------------------------------------------
 * arena (arena.c): chunks, the address map, committing blocks.
 * ------------------------------------------------------------------- */
/* The part of its slot chunk @c holds: [start, end). */
static inline uintptr_t hp_chunk_start(const struct hp_chunk *c)
{
	return c->base + (uintptr_t)c->lo * HP_BLOCK_SIZE;
}

static inline uintptr_t hp_chunk_end(const struct hp_chunk *c)
{
	return c->base + (uintptr_t)c->hi * HP_BLOCK_SIZE;
}

/* Which of a chunk's memfds (alias_fd[]) the blocks of @backend use. */
static inline int hp_alias_kind(int backend)
{
	return hp_backend_is_hugetlb(backend) ? 1 : 0;
}

/* Where @addr of aliased block @b can be written. */
static inline uintptr_t hp_alias_of(const struct hp_block *b, uintptr_t addr)
{
	return b->chunk->alias_base + (addr - b->chunk->base);
}

/* Set up @a, zeroed memory (meta_alloc, calloc, BSS: only what is not
 * zero is written, so the pools of nodes never used stay untouched), on
 * @os with backends already decided.  From @opt the arena
 * keeps its own copy of what the lower layers read: verbose, the collapse
 * mode and the collapse thread's settings, and whether a dry hugetlb pool
 * falls back (opt->backend is auto).  The caller may change them after. */
void hp_arena_init(struct hp_arena *a, const struct hp_os *os, int backend, int mutable_backend,
		   const struct hp_options *opt);
/* Give everything back.  The caches and the collapse thread must be gone
 * (hp_arena_teardown does both, then this). */
void hp_arena_fini(struct hp_arena *a);
/* 47-bit user address space / 1 GiB chunks: 128 Ki entries, 1 MiB of
 * zero-fill BSS that is only touched where chunks exist. */
#define HP_MAP_BITS (47 - HP_CHUNK_SHIFT)
extern struct hp_chunk *hp_chunk_map[1UL << HP_MAP_BITS];
/* Beside the map, for hp_owns: the blocks [lo, hi) of the chunk published
 * in each slot, as lo << 16 | hi; 0 for none.  Read with no RCU section (the
 * preload asks before it may enter liburcu: registering a thread maps
 * memory, which comes back into its hooks): never freed, nothing to
 * dereference.  512 KiB of BSS, touched only where chunks exist. */
extern uint32_t hp_chunk_span[1UL << HP_MAP_BITS];

/* The block holding @addr, or NULL if no arena owns it.  No lock: chunks
 * are published with a release store; inside an RCU read-side section the
 * chunk stays valid even if it is being retired. */
static inline struct hp_block *hp_block_of(uintptr_t addr)
{
	uintptr_t idx = addr >> HP_CHUNK_SHIFT;
	if (idx >= (1UL << HP_MAP_BITS))
		return NULL;
	struct hp_chunk *c = __atomic_load_n(&hp_chunk_map[idx], __ATOMIC_ACQUIRE);
	if (!c)
		return NULL;
	uintptr_t i = (addr >> HP_BLOCK_SHIFT) & (HP_CHUNK_BLOCKS - 1);
	return i >= c->lo && i < c->hi ? &c->blocks[i] : NULL;
}
/* An EMPTY block of @pool_set for class @home on node @node (committing
 * one if needed), taken off the free list, in *out.  0 or errno (ENOMEM:
 * none to be had). */
int hp_arena_take_block(struct hp_arena *a, int pool_set, int home, int node,
			struct hp_block **out);
/* @n contiguous free blocks for an allocation of whole blocks of class
 * @home: the head in *out.  0 or errno. */
int hp_arena_take_span(struct hp_arena *a, int pool_set, unsigned n, int home, int node,
		       struct hp_block **out);
/* The node whose pools serve the calling thread now (policy applied). */
int hp_arena_node(struct hp_arena *a);
/* Put an EMPTY block on the free list. */
void hp_arena_put_block(struct hp_arena *a, struct hp_block *b);
/* Take EMPTY block @b off its free list (it is being decommitted). */
void hp_arena_unlink_free(struct hp_arena *a, struct hp_block *b);
/* Unpublish the chunks with nothing committed: the list to release after
 * a grace period.  Lock held. */
struct hp_chunk *hp_arena_retire_chunks(struct hp_arena *a);
/* Give retired chunks' address space and metadata back.  No lock needed:
 * nobody can reach them any more. */
void hp_arena_release_chunks(struct hp_arena *a, struct hp_chunk *list);
/* The backend of the blocks of pool set @set. */
int hp_set_backend(const struct hp_arena *a, int set);

/* ---------------------------------------------------------------------
 * purge (purge.c): free blocks back to the kernel, after a delay or now.
 * ------------------------------------------------------------------- */
/* From hp_arena_init: the delay from @opt (HUGEPERM_PURGE_MS). */
void hp_purge_init(struct hp_arena *a, const struct hp_options *opt);
/* Block @b just became EMPTY (hp_arena_put_block): stamp it, purge at
 * once (delay 0) or make sure someone wakes at its deadline.  Lock held. */
void hp_purge_note_free(struct hp_arena *a, struct hp_block *b);
/* Purge what is due now, if anything.  Lock NOT held. */
void hp_purge_tick(struct hp_arena *a);
/* At the end of a public call: purge what is due if no thread does. */
static inline void hp_purge_poll(struct hp_arena *a)
{
	if (__builtin_expect(__atomic_load_n(&a->purge_next_ns, __ATOMIC_RELAXED) != 0, 0) &&
	    !__atomic_load_n(&a->purge_running, __ATOMIC_RELAXED))
		hp_purge_tick(a);
}
void hp_purge_thread_stop(struct hp_arena *a);
/* In the child after fork: no purge thread; a decommit that was in flight
 * is done again here, so the block is a reservation for sure.  Lock held. */
void hp_purge_fork_child(struct hp_arena *a);
/* Give EMPTY block @b's memory back; it becomes UNCOMMITTED.  On error
 * (the decommit's) nothing changed.  Lock held. */
int hp_arena_decommit_free(struct hp_arena *a, struct hp_block *b);
/* Return EMPTY blocks to the kernel, the reserve too (counted in
 * a->n.trimmed_blocks).  0 or errno. */
int hp_arena_trim_blocks(struct hp_arena *a);

/* ---------------------------------------------------------------------
 * check (check.c): the arena's invariants, for tests.  Reads only.
 * ------------------------------------------------------------------- */
/* Do @a's chunks, blocks, lists and collapse queue agree with each other?
 * 0, or EUCLEAN with the first violation described in @why (may be NULL).
 * Lock held (or no other thread), no collapse in flight. */
int hp_arena_check(struct hp_arena *a, struct hp_buf *why);

/* ---------------------------------------------------------------------
 * protect (protect.c): protection changes with split accounting.
 * ------------------------------------------------------------------- */
/* Change @n pages from page @first of block @b to @prot; the range may run
 * on into the following blocks of the chunk (a span).  One mprotect for the
 * whole range, skipped when nothing changes; counts splits and queues
 * collapses.  Lock held.  0 or errno. */
int hp_pages_protect(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n, int prot);
/* Before a change to part of @b: a uniform THP block we believe 4K-mapped
 * may be huge now (khugepaged, or a lazy block's first touch); ask the
 * kernel, so that the split is counted.  Lock held. */
void hp_block_learn_huge(struct hp_arena *a, struct hp_block *b);

/* ---------------------------------------------------------------------
 * pool (pool.c): placement.
 * ------------------------------------------------------------------- */
/* @npages of class @home, starting at protection @prot; @guarded: a guard
 * page before and after, in a block of HP_SET_GUARDED.  Lock held.  Like
 * mmap: the address, or NULL with errno. */
void *hp_pool_alloc(struct hp_arena *a, size_t npages, int prot, int home, bool guarded);
/* hp_pool_alloc, and the pages read as zero: only those that may hold
 * bytes (fresh.c) are written, after the protection change. */
void *hp_pool_alloc_zeroed(struct hp_arena *a, size_t npages, int prot, int home, bool guarded);
/* Free the allocation that starts at @addr.  0 or errno (EINVAL: no live
 * allocation starts there). */
int hp_pool_free(struct hp_arena *a, uintptr_t addr);
/* Free the allocation at page @first of @b, already claimed (HELD): its
 * memory dropped (or zeroed) if its block drops freed pages, back to the
 * home class, scrubbed, given back.  On error it is LIVE again. */
int hp_pool_free_claimed(struct hp_arena *a, struct hp_block *b, unsigned first);
/* Fill freed pages: int3 for executable classes, poison if asked. */
void hp_pool_scrub(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n);
/* Pages already at the home class and scrubbed go back to the block. */
void hp_pool_give_back(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n);
/* 0 or errno: ENOMEM (not inside one live allocation), EINVAL (part of a
 * hugetlb page), or the kernel's. */
int hp_pool_protect(struct hp_arena *a, uintptr_t addr, size_t npages, int prot);
/* The bytes of the live allocation starting at @addr; 0 if none. */
size_t hp_pool_usable(struct hp_arena *a, uintptr_t addr);
/* Make @npages at @addr, inside one live allocation, read as zero: written
 * where that splits nothing, else their memory dropped.  0 or errno. */
int hp_pool_discard(struct hp_arena *a, uintptr_t addr, size_t npages);
/* Copy into a live allocation whatever its protection.  0 or errno. */
int hp_pool_write(struct hp_arena *a, uintptr_t dst, const void *src, size_t size);
/* Copy @size bytes from @src (NULL: trap bytes, at most a page) to @dst
 * in block @b, whatever the pages' protection (the write method of
 * hp_pool_write, counted), without checking what is allocated there.
 * 0 or errno. */
int hp_pool_store(struct hp_arena *a, struct hp_block *b, uintptr_t dst, const void *src,
		  size_t size);
/* A writable address for @addr (itself, or its alias) in *out.  0 or errno
 * (EINVAL: not in a live allocation; EOPNOTSUPP: no writable view). */
int hp_pool_writable(struct hp_arena *a, uintptr_t addr, uintptr_t *out);
void hp_pool_insert(struct hp_arena *a, struct hp_block *b);
void hp_pool_remove(struct hp_arena *a, struct hp_block *b);

/* ---------------------------------------------------------------------
 * fork (fork.c), its lower half: the registry of arenas.  Calls nothing.
 * ------------------------------------------------------------------- */
void hp_registry_add(struct hp_arena *a);
void hp_registry_del(struct hp_arena *a);
/* @a locked if it still exists with @id (registry lock held too until
 * hp_registry_unlock), else NULL. */
struct hp_arena *hp_registry_lock(struct hp_arena *a, uint64_t id);
void hp_registry_unlock(struct hp_arena *a);
bool hp_registry_has(struct hp_arena *a, uint64_t id);

/* ---------------------------------------------------------------------
 * cache (cache.c): per-thread caches; no lock, no system call on a hit.
 * ------------------------------------------------------------------- */
/* The bin for allocations of @npages, or -1 if they are not cached. */
int hp_tcache_bin(size_t npages);
/* An allocation of bin @k, class @cls (protection == home): from this
 * thread's cache, refilled under the lock if empty.  Like mmap: the
 * address, or NULL with errno. */
void *hp_tcache_alloc(struct hp_arena *a, int k, int cls);
/* Free @addr through this thread's cache.  *taken false: not done, the
 * caller must take the locked path (not the start of a live allocation,
 * as far as a lock-free look can tell).  *taken true: done, and the result
 * is 0, or the errno of freeing it under the lock. */
int hp_tcache_free(struct hp_arena *a, uintptr_t addr, bool *taken);
/* hp_trim: drain this thread's cache, make the others drain.  Lock held. */
void hp_tcache_drain_mine(struct hp_arena *a);
/* allocs and frees served by caches.  Lock held. */
void hp_tcache_counts(struct hp_arena *a, uint64_t *allocs, uint64_t *frees);
/* Drain and free every cache (arena teardown); after fork, @keep_mine
 * keeps (drained) the forking thread's own.  Lock held. */
void hp_tcache_destroy_all(struct hp_arena *a, bool keep_mine);

/* This thread's cache of @a (created on first use, drained if hp_trim
 * asked), or NULL with errno. */
struct hp_tcache *hp_tcache_mine(struct hp_arena *a);

/* The thread's slots: (arena, arena id, cache) triples, initial-exec TLS,
 * so that a cache of a destroyed arena is recognised by its id (the
 * registry of arenas, fork.c) and never touched again. */
#define HP_TLS_SLOTS 4
struct hp_tls_slot {
	struct hp_arena *arena;
	uint64_t id;
	struct hp_tcache *tc;
};
/* The thread's last block with packed code and its state (code.c): a
 * block's state, once published, is never freed nor replaced, so this
 * never goes stale.  blk starts as no block's. */
struct hp_code_last {
	uintptr_t blk; /* address >> HP_BLOCK_SHIFT */
	struct hp_code_meta *meta;
};
/* The thread's state, one object: a fast path finds all of it from one
 * load of its thread-pointer offset. */
struct hp_thread {
	struct hp_tls_slot slot[HP_TLS_SLOTS];
	struct hp_code_last code_last;
};
extern __thread struct hp_thread hp_thread
	__attribute__((tls_model("initial-exec"), visibility("hidden")));
#define hp_tls	     (hp_thread.slot)
#define hp_code_last (hp_thread.code_last)

/* The calling thread's cache of @a if it is in the first slot, else NULL;
 * without the trim-epoch check (the packed code's frees and writes, which
 * leave draining the cache to the next allocation). */
static inline __attribute__((always_inline)) struct hp_tcache *hp_tcache_slot0(struct hp_arena *a)
{
	return hp_tls[0].arena == a && hp_tls[0].id == a->id ? hp_tls[0].tc : NULL;
}

/* hp_tcache_mine, inline when the first slot is @a's and no hp_trim came
 * since (the packed code's fast paths). */
static inline __attribute__((always_inline)) struct hp_tcache *hp_tcache_fast(struct hp_arena *a)
{
	struct hp_tcache *tc = hp_tcache_slot0(a);
	if (__builtin_expect(tc && tc->epoch == __atomic_load_n(&a->trim_epoch, __ATOMIC_RELAXED),
			     1))
		return tc;
	return hp_tcache_mine(a);
}

/* ---------------------------------------------------------------------
 * code (code.c): packed code, allocations smaller than a page, in pages
 * that caches hold; no lock on the common path.
 * ------------------------------------------------------------------- */
/* @size bytes (1 to HP_CODE_MAX_PACKED) of code.  Like mmap: the address,
 * or NULL with errno. */
void *hp_code_alloc_packed(struct hp_arena *a, size_t size);
/* The calls below answer for packed code: *taken false when @addr is not
 * in a page of packed code of @a (the caller takes the page path). */
/* Free the chunk at @addr: 0, or EINVAL (not the start of a live chunk). */
int hp_code_free_packed(struct hp_arena *a, uintptr_t addr, bool *taken);
/* hp_write into a live chunk: 0, ENOMEM (not inside one), or errno. */
int hp_code_write(struct hp_arena *a, uintptr_t dst, const void *src, size_t size, bool *taken);
/* hp_writable: 0, EINVAL (not in a live chunk), EOPNOTSUPP (no alias). */
int hp_code_writable(struct hp_arena *a, uintptr_t addr, uintptr_t *out, bool *taken);
/* The size class of the live chunk starting at @addr, or 0. */
size_t hp_code_usable(struct hp_arena *a, uintptr_t addr, bool *taken);
/* Give @tc's empty code pages back to their blocks and the arena's empty
 * pages too; @all (the cache goes): every page leaves @tc, its counters
 * move to the arena.  Lock held. */
void hp_code_drain(struct hp_arena *a, struct hp_tcache *tc, bool all);
/* The code statistics into @st.  Lock held. */
void hp_code_stats(struct hp_arena *a, struct hp_stats *st);
/* @a goes away: its code pages are code no more (their state is kept for
 * the next owner of the address space).  No other thread uses @a. */
void hp_code_forget(struct hp_arena *a);
/* After fork, in the child: blocks may have lost their alias.  Lock held. */
void hp_code_fork_child(struct hp_arena *a);

/* ---------------------------------------------------------------------
 * fork (fork.c), its upper half: the atfork handlers.
 * ------------------------------------------------------------------- */
struct hp_trace_writer;
/* After fork(), in the child: forget the parent's collapse thread and
 * in-flight collapses, give aliased blocks memory of their own.  Lock held.
 * 0 or errno. */
int hp_arena_fork_child(struct hp_arena *a);
/* Install the handlers once; @trace (the library's HUGEPERM_TRACE writer)
 * is flushed before a fork and forgotten in the child. */
void hp_fork_install(struct hp_trace_writer *trace);

/* ---------------------------------------------------------------------
 * stats (stats.c) and api (api.c)
 * ------------------------------------------------------------------- */
void hp_stats_collect(struct hp_arena *a, struct hp_stats *st);
/* Undo what hp_arena_init and use did: stop the collapse thread, free the
 * caches, then hp_arena_fini.  For arenas not made by hp_arena_create
 * (the simulator's, the tests'). */
void hp_arena_teardown(struct hp_arena *a);

/* ---------------------------------------------------------------------
 * formatting without malloc or stdio (fmt.c): for error and preload paths.
 * ------------------------------------------------------------------- */
struct hp_buf {
	char *p;    /* buffer */
	size_t cap; /* its size */
	size_t len; /* bytes used; output past cap is dropped */
};
void hp_buf_str(struct hp_buf *b, const char *s);
void hp_buf_u64(struct hp_buf *b, uint64_t v);
void hp_buf_hex(struct hp_buf *b, uint64_t v);
/* "ENOENT" for ENOENT, and so on (glibc's names); the number for an errno
 * glibc does not know. */
const char *hp_errno_name(int e);
void hp_buf_pad(struct hp_buf *b, size_t col);
/* Fixed-point: v with @decimals digits after the point. */
void hp_buf_fixed(struct hp_buf *b, double v, int decimals);
/* Name tables indexed by an enum: names[i], or "?" outside [0, n). */
const char *hp_name_of(const char *const *names, int n, int i);
/* The index of @name in names[0, n), or -1. */
int hp_name_find(const char *const *names, int n, const char *name);
/* The classes' one name table: "none", "r", "w", "rw", "x", "rx", ... */
const char *hp_class_name(int cls);

#endif /* HP_INTERNAL_H */
