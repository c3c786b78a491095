/* SPDX-License-Identifier: MIT */
/*
 * arena.c - address space and blocks.
 *
 * An arena reserves address space in 1 GiB chunks (aligned, PROT_NONE,
 * MAP_NORESERVE) and commits 2 MiB blocks inside them as they are needed.
 * An arena placed near a hint (hp_config.near) may take only the free part
 * of a slot, [lo, hi) in blocks: the slot of a JIT's own binary, whose
 * code must stay within reach, is seldom free whole.
 * Metadata lives outside the chunk (os meta_alloc), so every byte of a chunk
 * is usable and the chunk stays aligned for a 1 GiB hugetlb page.
 *
 * Address -> block is O(1) and takes no lock: hp_chunk_map[addr >> 30] holds
 * the chunk (written once with a release store, read with acquire), and the
 * block is chunk->blocks[(addr >> 21) & 511]; hp_owns() reads only
 * hp_chunk_span[], which is never freed.  Chunks are unmapped by
 * hp_arena_destroy(), when the caller promises nobody uses the arena, and
 * by hp_trim(), which retires the chunks with nothing committed: they are
 * unpublished first and released after an RCU grace period, so a lock-free
 * lookup inside a read-side section never sees one go.
 *
 * Committed blocks with no page in use sit on the arena's free list
 * (state EMPTY) with whatever home class they had last; taking one for
 * another class is one whole-block mprotect, which keeps the huge mapping.
 * hp_trim() hands them back to the kernel: the seeds' shrinker (purge.c,
 * which also gives them back on their own after HUGEPERM_PURGE_MS).
 *
 * An arena reads its own settings (backend, fall back, verbose), given at
 * hp_arena_init, never the global options.
 *
 * Blocks of executable classes are shared memory with a writable alias
 * (when the arena allows it): each chunk gets a memfd per kind (shmem,
 * hugetlb) lazily, and a second 1 GiB reservation where the alias views
 * sit at the same offsets, so alias = alias_base + (addr - base).  If the
 * kernel refuses an executable memfd (vm.memfd_noexec=2: EPERM or EACCES),
 * the arena drops aliases for good and commits private memory, saying so
 * once; any other failure (no fd to be had) makes only that block private.
 *
 * With the 1 GiB hugetlb backend the whole chunk is one page and one
 * mapping unit: it is committed at once, all its blocks share one home
 * class, and it can only change class (or be trimmed) when all are EMPTY.
 */
#include "config.h"

#include <string.h>

#include "internal.h"

struct hp_chunk *hp_chunk_map[1UL << HP_MAP_BITS];
uint32_t hp_chunk_span[1UL << HP_MAP_BITS];

/* Slots tried on each side of hp_config.near before taking any address,
 * and the smallest part of a slot taken for a chunk near it. */
#define NEAR_SLOTS    8
#define NEAR_PART_MIN (16 * HP_BLOCK_SIZE)

int hp_set_backend(const struct hp_arena *a, int set)
{
	switch (set) {
	case HP_SET_MUTABLE:
		return a->mutable_backend;
	case HP_SET_GUARDED:
		return HP_BACKEND_SMALL; /* a guard in a huge block would split it */
	default:
		return a->backend;
	}
}

void hp_arena_init(struct hp_arena *a, const struct hp_os *os, int backend, int mutable_backend,
		   const struct hp_options *opt)
{
	static uint64_t next_id = 1;
	/* @a is zeroed (internal.h): ~100 KiB, mostly pools of nodes unused. */
	a->magic = HP_ARENA_LIVE;
	a->id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->collapse_done, NULL);
	pthread_cond_init(&a->thread_wake, NULL);
	pthread_mutex_init(&a->thread_lock, NULL);
	a->os = os;
	a->numa = HP_NUMA_LOCAL;
	a->nnodes = 1;
	a->backend = backend;
	a->mutable_backend = mutable_backend;
	a->fall_back = opt->backend == HP_BACKEND_AUTO;
	a->primary_hugetlb = hp_backend_is_hugetlb(backend);
	a->collapse_mode = (int)opt->collapse;
	a->collapse_thread = opt->collapse_thread;
	a->collapse_delay_ms = (uint32_t)opt->collapse_delay_ms;
	a->collapse_rate = (uint32_t)opt->collapse_rate;
	a->collapse_retries = (uint32_t)opt->collapse_retries;
	a->verbose = opt->verbose;
	hp_purge_init(a, opt);
}

static void unpublish(struct hp_chunk *c)
{
	__atomic_store_n(&hp_chunk_span[c->base >> HP_CHUNK_SHIFT], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&hp_chunk_map[c->base >> HP_CHUNK_SHIFT], NULL, __ATOMIC_RELEASE);
}

/* Unmap a reservation for good.  munmap of whole mappings fails only for
 * want of memory (ENOMEM), mostly for a moment: once more, then the
 * address space is left to the process (nothing of ours is in it). */
static void release(struct hp_arena *a, uintptr_t addr, size_t size)
{
	if (a->os->release(addr, size))
		a->os->release(addr, size);
}

void hp_arena_release_chunks(struct hp_arena *a, struct hp_chunk *c)
{
	while (c) {
		struct hp_chunk *next = c->next;
		release(a, hp_chunk_start(c), hp_chunk_end(c) - hp_chunk_start(c));
		if (c->alias_base)
			release(a, c->alias_base, HP_CHUNK_SIZE);
		for (int k = 0; k < 2; k++)
			if (c->alias_fd[k] >= 0)
				a->os->close(c->alias_fd[k]);
		a->reserved_bytes -= hp_chunk_end(c) - hp_chunk_start(c);
		a->os->meta_free(c, sizeof(*c));
		c = next;
	}
}

struct hp_chunk *hp_arena_retire_chunks(struct hp_arena *a)
{
	struct hp_chunk *retired = NULL, **pp = &a->chunks;
	while (*pp) {
		struct hp_chunk *c = *pp;
		bool idle = c->ncommitted == 0;
		for (unsigned i = c->lo; idle && i < c->hi; i++)
			idle = !c->blocks[i].collapsing;
		if (!idle) {
			pp = &c->next;
			continue;
		}
		hp_collapse_forget(a, c);
		*pp = c->next;
		unpublish(c);
		c->next = retired;
		retired = c;
	}
	return retired;
}

void hp_arena_fini(struct hp_arena *a)
{
	__atomic_store_n(&a->magic, HP_ARENA_DEAD, __ATOMIC_RELAXED);
	for (struct hp_chunk *c = a->chunks; c; c = c->next)
		unpublish(c);
	a->os->synchronize();
	hp_arena_release_chunks(a, a->chunks);
	a->chunks = NULL;
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->collapse_done);
	pthread_cond_destroy(&a->thread_wake);
	pthread_mutex_destroy(&a->thread_lock);
}

static uintptr_t slot_distance(uintptr_t slot, uintptr_t near)
{
	return hp_distance(slot, slot + HP_CHUNK_SIZE, near);
}

/*
 * Address space for a new chunk of an arena with hp_config.near: the slot
 * nearest near that no chunk holds yet, whole if nothing is mapped there,
 * else the free part of it nearest near (a JIT's hint usually falls in the
 * slot of its own binary and heap).  NEAR_SLOTS slots each side are tried,
 * nearest first.  The part holds at least @min bytes (all of the slot for
 * a 1 GiB page).
 */
static int reserve_near(struct hp_arena *a, size_t min, uintptr_t *slot, uintptr_t *lo,
			uintptr_t *hi)
{
	uintptr_t home = a->near & ~(uintptr_t)(HP_CHUNK_SIZE - 1);
	uintptr_t slots[2 * NEAR_SLOTS + 1];
	int n = 0;

	for (long d = -NEAR_SLOTS; d <= NEAR_SLOTS; d++) {
		uintptr_t s = home + (uintptr_t)d * HP_CHUNK_SIZE;
		if ((d < 0 && home < (uintptr_t)-d * HP_CHUNK_SIZE) || s == 0 ||
		    (s >> HP_CHUNK_SHIFT) >= (1UL << HP_MAP_BITS))
			continue;
		slots[n++] = s;
	}
	for (int i = 0; i < n; i++) { /* nearest first */
		int best = i;
		for (int j = i + 1; j < n; j++)
			if (slot_distance(slots[j], a->near) < slot_distance(slots[best], a->near))
				best = j;
		uintptr_t t = slots[i];
		slots[i] = slots[best];
		slots[best] = t;
		if (__atomic_load_n(&hp_chunk_map[slots[i] >> HP_CHUNK_SHIFT], __ATOMIC_ACQUIRE))
			continue; /* one chunk a slot: the map has one entry */
		if (a->os->reserve_in(slots[i], HP_CHUNK_SIZE, a->near, min, lo, hi) == 0) {
			*slot = slots[i];
			return 0;
		}
	}
	return EEXIST;
}

/* A new chunk with room for @nblocks contiguous blocks: anywhere, or near
 * hp_config.near, where it may be part of a slot. */
static struct hp_chunk *chunk_new(struct hp_arena *a, unsigned nblocks)
{
	uintptr_t base, lo, hi;
	size_t min = (size_t)nblocks * HP_BLOCK_SIZE;
	int err = EEXIST;
	if (a->near)
		err = reserve_near(a, min > NEAR_PART_MIN || a->near_exact ? min : NEAR_PART_MIN,
				   &base, &lo, &hi);
	if (err) {
		err = a->os->reserve(HP_CHUNK_SIZE, HP_CHUNK_SIZE, &base);
		lo = base;
		hi = base + HP_CHUNK_SIZE;
	}
	if (err) {
		errno = err;
		return NULL;
	}
	if ((base >> HP_CHUNK_SHIFT) >= (1UL << HP_MAP_BITS)) {
		a->os->release(lo, hi - lo);
		errno = ENOMEM;
		return NULL;
	}
	struct hp_chunk *c = a->os->meta_alloc(sizeof(*c));
	if (!c) {
		a->os->release(lo, hi - lo);
		errno = ENOMEM;
		return NULL;
	}
	c->base = base;
	c->lo = (uint32_t)((lo - base) >> HP_BLOCK_SHIFT);
	c->hi = (uint32_t)((hi - base) >> HP_BLOCK_SHIFT);
	c->arena = a;
	c->alias_fd[0] = c->alias_fd[1] = -1;
	for (unsigned i = c->lo; i < c->hi; i++)
		hp_block_init(&c->blocks[i], base + i * HP_BLOCK_SIZE, c, &c->pages[i]);
	c->next = a->chunks;
	a->chunks = c;
	a->reserved_bytes += hp_chunk_end(c) - hp_chunk_start(c);
	__atomic_store_n(&hp_chunk_map[base >> HP_CHUNK_SHIFT], c, __ATOMIC_RELEASE);
	__atomic_store_n(&hp_chunk_span[base >> HP_CHUNK_SHIFT], c->lo << 16 | c->hi,
			 __ATOMIC_RELEASE);
	return c;
}

static void free_list_del(struct hp_arena *a, struct hp_block *b)
{
	struct hp_block **head = &a->node[b->pool_idx].free_blocks[b->pool_set];
	if (b->prev)
		b->prev->next = b->next;
	else
		*head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
}

void hp_arena_put_block(struct hp_arena *a, struct hp_block *b)
{
	struct hp_block **head = &a->node[b->pool_idx].free_blocks[b->pool_set];
	b->state = HP_BLOCK_EMPTY;
	b->span = 0;
	b->prev = NULL;
	b->next = *head;
	if (*head)
		(*head)->prev = b;
	*head = b;
	hp_purge_note_free(a, b);
}

void hp_arena_unlink_free(struct hp_arena *a, struct hp_block *b)
{
	free_list_del(a, b);
}

/* Name block @b "hugeperm:<class>" in /proc/self/maps. */
static void name_block(struct hp_arena *a, struct hp_block *b, int cls)
{
	char name[16];
	struct hp_buf nb = {name, sizeof(name) - 1, 0};
	hp_buf_str(&nb, "hugeperm:");
	hp_buf_str(&nb, hp_class_name(cls));
	name[nb.len] = 0;
	a->os->name(b->base, HP_BLOCK_SIZE, name);
}

/* After a block's memory arrived: set its state and learn if it is huge. */
static void block_committed(struct hp_arena *a, struct hp_block *b, int set, int backend, int cls,
			    bool aliased, int node)
{
	hp_block_reset(b, cls);
	hp_fresh_committed(b, cls & PROT_EXEC); /* commit_run's fill */
	b->pool_set = (uint8_t)set;
	b->pool_idx = (uint8_t)(node % HP_MAX_NODES);
	b->backend = (uint8_t)backend;
	b->aliased = aliased;
	b->chunk->ncommitted++;
	a->committed_bytes += HP_BLOCK_SIZE;
	b->lazy = cls == PROT_NONE && !hp_backend_is_hugetlb(backend);
	if (hp_backend_is_hugetlb(backend)) {
		b->huge = true;
	} else if (b->lazy) {
		b->huge = false; /* no memory yet: it comes, huge, when touched */
	} else if (backend == HP_BACKEND_THP) {
		hp_collapse_fresh(a, b); /* asks the kernel; never MADV_COLLAPSE here */
	} else {
		b->huge = false;
	}
	name_block(a, b, cls);
}

/*
 * Can free block @b serve home class @home?  A NONE allocation must read as
 * zero when made accessible: only blocks of class NONE, whose freed pages
 * drop their memory, can give it that (a lazy block of another class, one
 * emptied by hp_discard, may have been written since).  Blocks of other
 * classes are populated, executable ones with traps: a lazy NONE block is
 * not re-homed to them.
 */
static bool lazy_fits(const struct hp_block *b, int home)
{
	bool hugetlb = hp_backend_is_hugetlb(b->backend); /* never lazy, never dropped */
	if (home == PROT_NONE)
		return b->home == PROT_NONE && !hugetlb;
	return hugetlb || !(b->home == PROT_NONE && b->lazy);
}

/* Should blocks of class @cls be shared memory with an alias? */
static bool wants_alias(const struct hp_arena *a, int cls)
{
	return a->alias && (cls & PROT_EXEC);
}

/* The chunk's memfd for @backend and its alias reservation. */
static int chunk_alias(struct hp_arena *a, struct hp_chunk *c, int backend)
{
	int err = 0;
	int k = hp_alias_kind(backend);
	if (!c->alias_base)
		err = a->os->reserve(HP_CHUNK_SIZE, HP_BLOCK_SIZE, &c->alias_base);
	if (!err && c->alias_fd[k] < 0)
		err = a->os->alias_create(HP_CHUNK_SIZE, k == 1, &c->alias_fd[k]);
	return err;
}

/* The kernel refused an executable memfd: no aliases from now on. */
static void drop_aliases(struct hp_arena *a, int err)
{
	a->alias = false;
	if (!a->verbose)
		return;
	char msg[200];
	struct hp_buf b = {msg, sizeof(msg), 0};
	hp_buf_str(&b, "hugeperm: executable shared memory refused (errno ");
	hp_buf_u64(&b, (uint64_t)err);
	hp_buf_str(&b, ", vm.memfd_noexec?); executable blocks are private, written through "
		       "/proc/self/mem\n");
	a->os->write_all(2, msg, b.len < b.cap ? b.len : b.cap);
}

/* The node to bind new memory to: none at all on a one-node machine
 * unless HUGEPERM_NUMA names one. */
static int bind_to(const struct hp_arena *a, int node)
{
	return a->nnodes > 1 || a->numa >= 0 ? node : -1;
}

/* Commit blocks [first, first+n) of chunk @c for pool set @set, on @node. */
static int commit_run(struct hp_arena *a, struct hp_chunk *c, unsigned first, unsigned n, int set,
		      int cls, int node)
{
	int backend = hp_set_backend(a, set);
	size_t size = (size_t)n * HP_BLOCK_SIZE;
	uintptr_t base = c->blocks[first].base;
	int fill = (cls & PROT_EXEC) ? HP_TRAP_BYTE : -1;
	bool aliased = false;
	int err;

	if (a->max_bytes && a->committed_bytes + size > a->max_bytes)
		return ENOMEM;
	uint64_t t0 = a->os->now_ns();
	if (wants_alias(a, cls) && backend != HP_BACKEND_HUGETLB_1G) {
		err = chunk_alias(a, c, backend);
		if (!err)
			err = a->os->alias_commit(base, c->alias_base + (base - c->base),
						  c->alias_fd[hp_alias_kind(backend)],
						  base - c->base, size, cls, backend, fill,
						  bind_to(a, node));
		if (err == ENOMEM)
			return err; /* a hugetlb pool ran dry: the caller falls back */
		/* Only the kernel's refusal of executable memfds is for good;
		 * anything else (EMFILE at the fd limit) makes this block
		 * private, and the next one tries again. */
		if (err == EPERM || err == EACCES)
			drop_aliases(a, err);
		aliased = !err;
	}
	if (!aliased) {
		err = a->os->commit(base, size, cls, backend, fill, bind_to(a, node));
		if (err)
			return err;
	}
	/* Fresh memory where the commit faulted it in (os.h): an alias view
	 * is populated, a THP block but a lazy one too, any block filled.  A
	 * lazy block's populate is counted where it is made (collapse.c);
	 * hugetlb and small pages unfilled take their memory at first touch. */
	if (aliased || fill >= 0 || (backend == HP_BACKEND_THP && cls != PROT_NONE)) {
		a->n.fresh_blocks += n;
		a->n.fresh_ns += a->os->now_ns() - t0;
	}
	for (unsigned i = first; i < first + n; i++)
		block_committed(a, &c->blocks[i], set, backend, cls, aliased, node);
	hp_collapse_lazy(a, &c->blocks[first], n);
	return 0;
}

/* Commit a whole chunk as one 1 GiB hugetlb page of class @cls. */
static int commit_chunk_1g(struct hp_arena *a, int cls, int node)
{
	struct hp_chunk *c = NULL;
	for (struct hp_chunk *it = a->chunks; it; it = it->next)
		if (it->ncommitted == 0 && it->lo == 0 && it->hi == HP_CHUNK_BLOCKS) {
			c = it;
			break;
		}
	if (!c && !(c = chunk_new(a, HP_CHUNK_BLOCKS)))
		return errno;
	int err = commit_run(a, c, 0, HP_CHUNK_BLOCKS, 0, cls, node);
	if (err)
		return err;
	c->hugetlb_1g = true;
	for (unsigned i = 0; i < HP_CHUNK_BLOCKS; i++)
		hp_arena_put_block(a, &c->blocks[i]);
	return 0;
}

/*
 * EMPTY block @b is about to become executable: fill it with int3, for its
 * memory holds what its data class left there.  Through the alias, or
 * directly if the block is writable, else after making it RW (recorded, so
 * that a failure after leaves the books as the kernel has it).  0 or errno.
 */
static int trap_block(struct hp_arena *a, struct hp_block *b)
{
	uintptr_t at = b->aliased ? hp_alias_of(b, b->base) : b->base;
	if (!b->aliased && !(b->home & PROT_WRITE)) {
		int err = a->os->protect(b->base, HP_BLOCK_SIZE, PROT_READ | PROT_WRITE);
		a->n.mprotect_calls++;
		if (err)
			return err;
		hp_block_reset(b, PROT_READ | PROT_WRITE);
	}
	a->os->store(at, NULL, HP_TRAP_BYTE, HP_BLOCK_SIZE);
	hp_fresh_dirty(b, 0, HP_BLOCK_PAGES);
	return 0;
}

/* Re-home an EMPTY block to @home with one whole-block mprotect (and a
 * fill with int3 if it becomes executable). */
static int rehome(struct hp_arena *a, struct hp_block *b, int home)
{
	if (b->home == home)
		return 0;
	hp_block_wait_collapse(a, b);
	if ((home & PROT_EXEC) && !(b->home & PROT_EXEC)) {
		int err = trap_block(a, b);
		if (err)
			return err;
	}
	int err = a->os->protect(b->base, HP_BLOCK_SIZE, home);
	a->n.mprotect_calls++;
	if (err)
		return err;
	hp_block_reset(b, home);
	name_block(a, b, home);
	return 0;
}

/* How far block @b is from the arena's hp_config.near (0 without one). */
static uintptr_t near_distance(const struct hp_arena *a, const struct hp_block *b)
{
	return a->near ? hp_distance(b->base, b->base + HP_BLOCK_SIZE, a->near) : 0;
}

/* The uncommitted block of @c nearest the arena's near address (the first one without). */
static struct hp_block *chunk_uncommitted(const struct hp_arena *a, struct hp_chunk *c)
{
	struct hp_block *best = NULL;
	for (unsigned i = c->lo; i < c->hi; i++) {
		struct hp_block *b = &c->blocks[i];
		if (b->state != HP_BLOCK_UNCOMMITTED)
			continue;
		if (!a->near)
			return b;
		if (!best || near_distance(a, b) < near_distance(a, best))
			best = b;
	}
	return best;
}

/* An uncommitted block in a chunk that may hold 2 MiB commits; the nearest
 * one to hp_config.near when the arena has one.  NULL with errno when no
 * new chunk could be had. */
static struct hp_block *find_uncommitted(struct hp_arena *a)
{
	struct hp_block *best = NULL;
	for (struct hp_chunk *c = a->chunks; c; c = c->next) {
		if (c->hugetlb_1g || c->ncommitted == c->hi - c->lo)
			continue;
		struct hp_block *b = chunk_uncommitted(a, c);
		if (!a->near)
			return b;
		if (b && (!best || near_distance(a, b) < near_distance(a, best)))
			best = b;
	}
	if (best)
		return best;
	struct hp_chunk *c = chunk_new(a, 1);
	return c ? chunk_uncommitted(a, c) : NULL;
}

/*
 * A commit of the primary backend failed: if it was a hugetlb pool chosen
 * automatically that ran dry, fall back to the mutable backend (THP) for
 * good, and say so once.
 */
static bool fall_back(struct hp_arena *a, int set, int err)
{
	if (set != HP_SET_PRIMARY || !hp_backend_falls_back(a->backend, a->fall_back, err))
		return false;
	if (a->verbose) {
		char msg[160];
		struct hp_buf b = {msg, sizeof(msg), 0};
		hp_buf_str(&b, "hugeperm: hugetlb pool exhausted (ENOMEM); falling back to ");
		hp_buf_str(&b, hp_backend_name(a->mutable_backend));
		hp_buf_str(&b, "\n");
		a->os->write_all(2, msg, b.len < b.cap ? b.len : b.cap);
	}
	a->backend = a->mutable_backend;
	return true;
}

/* Take free block @b for class @home off the free list, into *out. */
static int take_free(struct hp_arena *a, struct hp_block *b, int home, struct hp_block **out)
{
	int err = rehome(a, b, home);
	if (err)
		return err;
	free_list_del(a, b);
	*out = b;
	return 0;
}

/*
 * A free block of @set for class @home: one of that class, else one with
 * the right backing (shared with an alias or not) to re-home; with @any,
 * whatever there is.
 */
static struct hp_block *free_find(struct hp_arena *a, int set, int home, bool any, int node)
{
	bool want = wants_alias(a, home);
	struct hp_block *b, *same = NULL, *other = NULL;

	for (b = a->node[node % HP_MAX_NODES].free_blocks[set]; b; b = b->next) {
		if (!lazy_fits(b, home))
			continue;
		if (b->home == home && b->aliased == want &&
		    (!same || near_distance(a, b) < near_distance(a, same))) {
			same = b;
			if (!a->near)
				return b;
		}
		if (!b->chunk->hugetlb_1g && (any || b->aliased == want) &&
		    (!other || near_distance(a, b) < near_distance(a, other)))
			other = b;
	}
	return same ? same : other;
}

int hp_arena_node(struct hp_arena *a)
{
	if (a->numa >= 0)
		return a->numa;
	if (a->nnodes <= 1)
		return 0;
	if (a->numa == HP_NUMA_INTERLEAVE)
		return (int)(a->next_node % (unsigned)a->nnodes);
	return a->os->cpu_node();
}

int hp_arena_take_block(struct hp_arena *a, int set, int home, int node, struct hp_block **out)
{
	struct hp_block *b;
	/* Free blocks are taken only with no collapse in flight (a wait drops
	 * the lock, and another thread could take the block meanwhile). */
	while ((b = free_find(a, set, home, false, node)) && hp_block_wait_collapse(a, b))
		;
	if (b)
		return take_free(a, b, home, out);

	int err;
	for (;;) {
		int backend = hp_set_backend(a, set);
		if (backend == HP_BACKEND_HUGETLB_1G) {
			err = commit_chunk_1g(a, home, node);
			if (!err)
				return hp_arena_take_block(a, set, home, node, out);
		} else {
			b = find_uncommitted(a);
			if (!b)
				return errno; /* from chunk_new */
			err = commit_run(a, b->chunk, (unsigned)(b - b->chunk->blocks), 1, set,
					 home, node);
			if (!err) {
				a->next_node++; /* interleave: the next block, the next node */
				*out = b;
				return 0;
			}
		}
		if (!fall_back(a, set, err))
			break;
	}
	/* No new block: a free block of the other backing, or of another node,
	 * still beats a steal. */
	for (int k = 0; k < HP_MAX_NODES; k++) {
		b = free_find(a, set, home, true, (node + k) % HP_MAX_NODES);
		if (b && hp_block_wait_collapse(a, b))
			return hp_arena_take_block(a, set, home, node, out);
		if (b)
			return take_free(a, b, home, out);
	}
	return err;
}

/* Can block @b be part of a span of class @home in pool set @set?  Its
 * blocks are all of the set's backend now: after a fall back, the old
 * hugetlb blocks do not join a THP span (its protection changes in part). */
static bool span_ok(const struct hp_arena *a, const struct hp_block *b, int set, int home, int node)
{
	if (b->state == HP_BLOCK_UNCOMMITTED)
		return !b->chunk->hugetlb_1g;
	return b->state == HP_BLOCK_EMPTY && b->pool_set == set &&
	       b->backend == hp_set_backend(a, set) && b->pool_idx == node % HP_MAX_NODES &&
	       lazy_fits(b, home) && b->aliased == wants_alias(a, home) &&
	       (b->home == home || !b->chunk->hugetlb_1g);
}

static struct hp_block *find_span(struct hp_arena *a, int set, unsigned n, int home, int node)
{
	for (struct hp_chunk *c = a->chunks; c; c = c->next) {
		unsigned run = 0;
		for (unsigned i = c->lo; i < c->hi; i++) {
			run = span_ok(a, &c->blocks[i], set, home, node) ? run + 1 : 0;
			if (run == n)
				return &c->blocks[i + 1 - n];
		}
	}
	return NULL;
}

/* Wait out the collapses in flight on the @n blocks from @head: true if
 * there were any (the lock was dropped: search again). */
static bool span_wait_collapse(struct hp_arena *a, struct hp_block *head, unsigned n)
{
	bool waited = false;
	for (unsigned i = 0; i < n; i++)
		waited |= hp_block_wait_collapse(a, &head[i]);
	return waited;
}

static int take_span(struct hp_arena *a, int set, unsigned n, int home, int node,
		     struct hp_block **out)
{
	struct hp_block *head;
	int err;

	/* As for single blocks: none taken while a collapse is in flight. */
	while ((head = find_span(a, set, n, home, node)) && span_wait_collapse(a, head, n))
		;

	if (!head) {
		int backend = hp_set_backend(a, set);
		if (backend == HP_BACKEND_HUGETLB_1G)
			err = commit_chunk_1g(a, home, node);
		else
			err = chunk_new(a, n) ? 0 : errno;
		if (err)
			return err;
		head = find_span(a, set, n, home, node);
		if (!head)
			return ENOMEM;
		if (span_wait_collapse(a, head, n))
			return hp_arena_take_span(a, set, n, home, node, out);
	}

	/* Commit the uncommitted runs, re-home the empty blocks. */
	struct hp_chunk *c = head->chunk;
	unsigned first = (unsigned)(head - c->blocks);
	for (unsigned i = first; i < first + n;) {
		struct hp_block *b = &c->blocks[i];
		if (b->state == HP_BLOCK_EMPTY) {
			err = rehome(a, b, home);
			if (err)
				goto undo;
			free_list_del(a, b);
			b->state = HP_BLOCK_SPAN;
			i++;
			continue;
		}
		unsigned j = i;
		while (j < first + n && c->blocks[j].state == HP_BLOCK_UNCOMMITTED)
			j++;
		err = commit_run(a, c, i, j - i, set, home, node);
		if (err)
			goto undo;
		for (; i < j; i++)
			c->blocks[i].state = HP_BLOCK_SPAN;
	}
	for (unsigned i = first; i < first + n; i++) {
		struct hp_block *b = &c->blocks[i];
		b->span_head = first;
		hp_block_take(b, 0, HP_BLOCK_PAGES);
		if (i != first) /* only the head carries the span's state */
			hp_astate_set(b, 0, HP_A_FREE, 0);
	}
	head->span = n;
	*out = head;
	return 0;

undo:
	/* Blocks already taken go back to the free list, committed. */
	for (unsigned i = first; i < first + n; i++)
		if (c->blocks[i].state == HP_BLOCK_SPAN)
			hp_arena_put_block(a, &c->blocks[i]);
	return err;
}

int hp_arena_take_span(struct hp_arena *a, int set, unsigned n, int home, int node,
		       struct hp_block **out)
{
	/* A dry hugetlb pool falls back here too, as for single blocks. */
	for (;;) {
		int err = take_span(a, set, n, home, node, out);
		if (!err || !fall_back(a, set, err))
			return err;
	}
}
