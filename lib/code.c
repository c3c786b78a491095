/* SPDX-License-Identifier: MIT */
/*
 * code.c - packed code: executable allocations smaller than a page.
 *
 * A JIT's functions are mostly tens to hundreds of bytes.  They are packed
 * into 4 KiB pages of RX blocks, as the kernel's bpf_prog_pack packs BPF
 * programs, so that thousands share one huge-mapped block.  Each code page
 * holds chunks of one size class (segregated fit, mimalloc's pages):
 *
 *   granules  1  2  3  4  5  6  7  8 10 12 16 21 32   (of 64 bytes)
 *   chunks   63 32 21 16 12 10  9  8  6  5  4  3  2   (per page)
 *
 * Classes are every multiple of 64 up to 512 bytes (where a JIT's
 * functions mostly are: no rounding beyond the 64-byte granule), then
 * coarser up to 2 KiB; a page loses at most 256 bytes to its class (class
 * 1 gives up its 64th chunk: bit 63 of xfree is a flag).  Larger
 * code takes whole pages (api.c).
 *
 * State.  A page's chunks are two 64-bit words in the page's struct
 * hp_code_page, found from the address by arithmetic: a table of 1 GiB
 * slots (like hp_chunk_map), each with a pointer per 2 MiB block to the
 * state of its 512 pages, and a per-thread entry for the last block looked
 * up, which hits without those two loads.  That state is never freed (an
 * arena that goes marks its pages off; the next owner of the address space
 * takes them over), so lookups need neither a lock nor an RCU section, and
 * the page's state holds what a free or a write needs (its arena, its
 * alias): the hot paths never read the chunk.
 *
 * Threads (mimalloc's local and thread free lists, as bitmaps).  A page is
 * held by one thread's cache (hp_tcache: code_cur, the page allocated from,
 * code_partial, the others with room, code_full, those found full).  Its
 * holder alone writes live, the chunks handed out, with plain stores:
 * allocating and freeing take no atomic read-modify-write.  Another thread
 * frees by setting the chunk's bit in xfree (compare-and-swap: of two such
 * frees of one chunk, one wins, the other gets EINVAL); the holder takes
 * xfree off live (an exchange) when its page looks full.  A full page
 * stays held, on the full list, with HP_CODE_FULL in xfree: the holder's
 * own frees into it put it back on its list with room; other threads'
 * frees bump the arena's code_xfull[class], and the holder looks through
 * its full list when that moved and it needs a page.  A page only leaves
 * its holder when the cache drains (hp_trim, thread exit): onto the
 * arena's stack of its class, from which a thread that needs a page takes
 * all of them (an exchange: no ABA).  Double frees are EINVAL whoever
 * makes them, but for two frees of one chunk racing each other, one by
 * the holder: a program error no free() answers either.  A page whose
 * chunks are all free goes back to its block: at once when its holder
 * frees the last one (but for the page it allocates from), or when it is
 * on the stack; else when a thread takes it from the stack, when its
 * holder's cache drains or hp_trim sweeps the stacks.
 *
 * Code pages never change protection: a freed chunk is filled with the
 * trap byte through the block's alias (or hp_write's other ways, under the
 * lock; in line for a real alias), before its bit is cleared, so that a
 * new owner never finds stale code.  To the block a code page is one used page in state HP_A_CODE:
 * no caller's allocation, so hp_free, hp_protect and hp_discard refuse it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "code_fast.h"

/* The code state of each 1 GiB slot: 1 MiB of BSS, touched only where
 * code is. */
static struct hp_code_slot *code_slots[1UL << HP_MAP_BITS];

static const uint8_t gran[HP_CODE_NCLS] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 21, 32};
static const uint8_t nchunks[HP_CODE_NCLS] = {63, 32, 21, 16, 12, 10, 9, 8, 6, 5, 4, 3, 2};
const uint8_t hp_code_cls_of[33] = {0,	0,  1,	2,  3,	4,  5,	6,  7,	8,  8,
				    9,	9,  10, 10, 10, 10, 11, 11, 11, 11, 11,
				    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12};
/* Division by a class's size as a multiply: exact for offsets < 4096
 * (the error, off / 2^24, stays under 1 / size). */
#define INV(g) ((1u << 24) / ((g)*HP_CODE_ALIGN) + 1)
static const uint32_t inv[HP_CODE_NCLS] = {INV(1),  INV(2),  INV(3), INV(4),  INV(5),
					   INV(6),  INV(7),  INV(8), INV(10), INV(12),
					   INV(16), INV(21), INV(32)};

_Static_assert(HP_CODE_MAX_PACKED == 32 * HP_CODE_ALIGN, "the largest class is 32 granules");

static inline size_t csize(unsigned k)
{
	return (size_t)gran[k] * HP_CODE_ALIGN;
}

/* Counters of the calling thread: its cache's, or (none) the arena's. */
static void count_in(struct hp_arena *a, struct hp_tcache *tc, size_t field, uint64_t d)
{
	if (tc)
		hp_code_count((uint64_t *)((char *)&tc->code_n + field), d);
	else
		__atomic_fetch_add((uint64_t *)((char *)&a->code_n + field), d, __ATOMIC_RELAXED);
}
#define COUNT(a, tc, f, d) count_in(a, tc, offsetof(struct hp_code_counts, f), d)

/* The state of the block holding @addr, NULL if it never had code. */
static struct hp_code_meta *meta_lookup(uintptr_t addr)
{
	uintptr_t idx = addr >> HP_CHUNK_SHIFT;
	if (idx >= (1UL << HP_MAP_BITS))
		return NULL;
	struct hp_code_slot *slot = __atomic_load_n(&code_slots[idx], __ATOMIC_ACQUIRE);
	if (!slot)
		return NULL;
	return __atomic_load_n(&slot->block[(addr >> HP_BLOCK_SHIFT) & (HP_CHUNK_BLOCKS - 1)],
			       __ATOMIC_ACQUIRE);
}

/* meta_lookup, by arithmetic when @addr is in the thread's last block. */
static inline __attribute__((always_inline)) struct hp_code_meta *meta_of(uintptr_t addr)
{
	if (__builtin_expect(addr >> HP_BLOCK_SHIFT == hp_code_last.blk, 1))
		return hp_code_last.meta;
	struct hp_code_meta *m = meta_lookup(addr);
	if (m) {
		hp_code_last.meta = m;
		hp_code_last.blk = addr >> HP_BLOCK_SHIFT;
	}
	return m;
}

/* The code page holding @addr; NULL if @addr is in no page of packed code
 * of @a.  No lock. */
static inline __attribute__((always_inline)) struct hp_code_page *page_of(struct hp_arena *a,
									  uintptr_t addr)
{
	struct hp_code_meta *m = meta_of(addr);
	if (!m)
		return NULL;
	struct hp_code_page *p = &m->page[(addr >> HP_PAGE_SHIFT) & (HP_BLOCK_PAGES - 1)];
	if (!__atomic_load_n(&p->on, __ATOMIC_ACQUIRE) || p->arena != a)
		return NULL;
	return p;
}

/* The chunks of @p in use: handed out and not freed by another thread. */
static inline uint64_t in_use(const struct hp_code_page *p)
{
	uint64_t x = __atomic_load_n(&p->xfree, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&p->live, __ATOMIC_ACQUIRE) & ~x;
}

/* The holder of @p takes the chunks other threads freed off its live
 * word; the new live word. */
static uint64_t collect(struct hp_code_page *p) /* not on the full list */
{
	uint64_t live = __atomic_load_n(&p->live, __ATOMIC_RELAXED);
	if (__atomic_load_n(&p->xfree, __ATOMIC_RELAXED)) {
		live &= ~__atomic_exchange_n(&p->xfree, 0, __ATOMIC_ACQUIRE);
		__atomic_store_n(&p->live, live, __ATOMIC_RELAXED);
	}
	return live;
}

/* Publish *@at, made with @a's metadata hook, unless another arena (near
 * hints may put two in one slot) did first.  The pointer now there, NULL
 * if none could be made. */
static void *publish(struct hp_arena *a, void **at, size_t size)
{
	void *cur = __atomic_load_n(at, __ATOMIC_ACQUIRE);
	if (cur)
		return cur;
	void *mine = a->os->meta_alloc(size);
	if (!mine)
		return NULL;
	if (__atomic_compare_exchange_n(at, &cur, mine, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return mine;
	a->os->meta_free(mine, size);
	return cur;
}

/* The state of the block holding @addr, made if needed; NULL: no memory. */
static struct hp_code_meta *meta_make(struct hp_arena *a, uintptr_t addr)
{
	struct hp_code_slot *slot =
		publish(a, (void **)&code_slots[addr >> HP_CHUNK_SHIFT], sizeof(*slot));
	if (!slot)
		return NULL;
	return publish(a, (void **)&slot->block[(addr >> HP_BLOCK_SHIFT) & (HP_CHUNK_BLOCKS - 1)],
		       sizeof(struct hp_code_meta));
}

/* ---------------------------------------------------------------------
 * Pages: taken from and given back to blocks (lock held), moved between
 * a cache's lists and the arena's stacks.
 * ------------------------------------------------------------------- */

/* Push @p, held by nobody, onto the arena's stack of its class. */
static void push(struct hp_arena *a, struct hp_code_page *p)
{
	struct hp_code_page **top = &a->code_stack[p->cls];
	struct hp_code_page *head = __atomic_load_n(top, __ATOMIC_RELAXED);
	__atomic_store_n(&p->holder, NULL, __ATOMIC_RELAXED);
	do
		p->next = head;
	while (!__atomic_compare_exchange_n(top, &head, p, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
}

/* The whole stack of class @k, taken. */
static struct hp_code_page *take_stack(struct hp_arena *a, unsigned k)
{
	if (!__atomic_load_n(&a->code_stack[k], __ATOMIC_RELAXED))
		return NULL;
	return __atomic_exchange_n(&a->code_stack[k], NULL, __ATOMIC_ACQUIRE);
}

static void link_to(struct hp_code_page **head, struct hp_code_page *p)
{
	p->prev = NULL;
	p->next = *head;
	if (p->next)
		p->next->prev = p;
	*head = p;
}

static void unlink_from(struct hp_code_page **head, struct hp_code_page *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		*head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->next = p->prev = NULL;
}

/* @tc holds @p, on its list of pages with room. */
static void hold(struct hp_tcache *tc, struct hp_code_page *p)
{
	__atomic_store_n(&p->holder, tc, __ATOMIC_RELAXED);
	link_to(&tc->code_partial[p->cls], p);
}

static void unhold(struct hp_tcache *tc, struct hp_code_page *p)
{
	unlink_from(&tc->code_partial[p->cls], p);
}

/* The holder of @p takes it off its full list (FULL cleared), and the
 * chunks other threads freed off live: the new live word. */
static uint64_t unfull(struct hp_tcache *tc, struct hp_code_page *p)
{
	unlink_from(&tc->code_full[p->cls], p);
	uint64_t live = __atomic_load_n(&p->live, __ATOMIC_RELAXED) &
			~__atomic_exchange_n(&p->xfree, 0, __ATOMIC_ACQUIRE);
	__atomic_store_n(&p->live, live, __ATOMIC_RELAXED);
	return live;
}

/* Other threads freed chunks of pages on @tc's full list of class @k
 * since it last looked: those pages go back to its list with room. */
static void rescue(struct hp_arena *a, struct hp_tcache *tc, unsigned k)
{
	uint64_t n = __atomic_load_n(&a->code_xfull[k], __ATOMIC_RELAXED);
	if (n == tc->code_xseen[k])
		return;
	tc->code_xseen[k] = n;
	struct hp_code_page *p, *next;
	for (p = tc->code_full[k]; p; p = next) {
		next = p->next;
		if (__atomic_load_n(&p->xfree, __ATOMIC_RELAXED) != HP_CODE_FULL) {
			unfull(tc, p);
			hold(tc, p);
		}
	}
}

/* @p, on, with its alias set: may the fast paths store through it? */
static void set_inline_to(struct hp_arena *a, struct hp_code_page *p)
{
	bool ok = p->alias && a->os->store == hp_os_linux.store;
	__atomic_store_n(&p->inline_to, ok ? a : NULL, __ATOMIC_RELEASE);
}

/* Give empty page @p, held by nobody else, back to its block; if that
 * fails (a protection change the kernel refused), it goes on the stack.
 * Lock held. */
static void give_back(struct hp_arena *a, struct hp_code_page *p)
{
	struct hp_block *b = hp_block_of(p->addr);
	unsigned first = (unsigned)((p->addr - b->base) >> HP_PAGE_SHIFT);
	__atomic_store_n(&p->inline_to, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&p->on, false, __ATOMIC_RELEASE);
	__atomic_store_n(&p->holder, NULL, __ATOMIC_RELAXED);
	hp_astate_set(b, first, HP_A_HELD, 1);
	/* At home in an executable block, the page holds traps already (fresh
	 * ones do, freed chunks are filled): nothing is written, which matters
	 * in a child after fork, where the alias is still the parent's memory
	 * until hp_arena_fork_child.  A page stolen from a block of another
	 * class goes back to that class the usual way. */
	if ((b->home & PROT_EXEC) && b->prot[first] == b->home) {
		hp_pool_give_back(a, b, first, 1);
		return;
	}
	if (hp_pool_free_claimed(a, b, first)) {
		hp_astate_set(b, first, HP_A_CODE, 1);
		__atomic_store_n(&p->on, true, __ATOMIC_RELEASE);
		set_inline_to(a, p);
		push(a, p);
	}
}

/* The empty pages on the arena's stack of class @k go back to their
 * blocks, the others back on the stack.  Lock held. */
static void sweep(struct hp_arena *a, unsigned k)
{
	struct hp_code_page *p, *next, *keep = NULL;
	for (p = take_stack(a, k); p; p = next) {
		next = p->next;
		if (in_use(p)) {
			p->next = keep;
			keep = p;
		} else {
			give_back(a, p);
		}
	}
	for (p = keep; p; p = next) {
		next = p->next;
		push(a, p);
	}
}

/* A fresh page of class @k held by @tc.  Takes the lock.  NULL + errno. */
static struct hp_code_page *new_page(struct hp_arena *a, struct hp_tcache *tc, unsigned k)
{
	const int rx = PROT_READ | PROT_EXEC;
	pthread_mutex_lock(&a->lock);
	uintptr_t addr = (uintptr_t)hp_pool_alloc(a, 1, rx, rx, false);
	int err = errno;
	struct hp_code_page *p = NULL;
	if (addr) {
		struct hp_block *b = hp_block_of(addr);
		unsigned first = (unsigned)((addr - b->base) >> HP_PAGE_SHIFT);
		struct hp_code_meta *m = meta_make(a, addr);
		if (m) {
			hp_astate_set(b, first, HP_A_CODE, 1);
			p = &m->page[first];
			p->live = 0;
			p->xfree = 0;
			p->addr = addr;
			p->alias = b->aliased ? hp_alias_of(b, addr) : 0;
			p->arena = a;
			p->cls = (uint8_t)k;
			p->size = (uint16_t)csize(k);
			p->full = (1ULL << nchunks[k]) - 1;
			p->inv = inv[k];
			p->next = p->prev = NULL;
			__atomic_store_n(&p->holder, tc, __ATOMIC_RELAXED);
			__atomic_store_n(&p->on, true, __ATOMIC_RELEASE);
			set_inline_to(a, p);
		} else {
			(void)hp_pool_free(a, addr);
			err = ENOMEM;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (!p)
		errno = err;
	return p;
}

/* Take the arena's stack of class @k into @tc's list; of the pages found
 * empty, one is kept, the others go back to their blocks. */
static void adopt(struct hp_arena *a, struct hp_tcache *tc, unsigned k)
{
	struct hp_code_page *p = take_stack(a, k), *next, *spare = NULL;
	bool kept_empty = false;
	for (; p; p = next) {
		next = p->next;
		if (kept_empty && !in_use(p)) {
			p->next = spare; /* nobody else holds it: it stays empty */
			spare = p;
			continue;
		}
		kept_empty |= !in_use(p);
		hold(tc, p);
	}
	if (!spare)
		return;
	pthread_mutex_lock(&a->lock);
	for (p = spare; p; p = next) {
		next = p->next;
		give_back(a, p);
	}
	pthread_mutex_unlock(&a->lock);
}

/* The next page for @tc to allocate class @k from: one it holds, one of
 * the arena's stack, or a fresh one.  NULL + errno. */
static struct hp_code_page *next_page(struct hp_arena *a, struct hp_tcache *tc, unsigned k)
{
	if (!tc->code_partial[k])
		rescue(a, tc, k);
	if (!tc->code_partial[k])
		adopt(a, tc, k);
	struct hp_code_page *p = tc->code_partial[k];
	if (p)
		unhold(tc, p);
	else
		p = new_page(a, tc, k);
	tc->code_cur[k] = p;
	return p;
}

/* ---------------------------------------------------------------------
 * The calls.
 * ------------------------------------------------------------------- */

/* hp_code_alloc_packed when @tc has no page of class @k or it looks full:
 * out of line, so that the common path saves no registers. */
static __attribute__((noinline)) void *alloc_slow(struct hp_arena *a, struct hp_tcache *tc,
						  unsigned k, size_t size)
{
	struct hp_code_page *p = tc->code_cur[k];
	for (;;) {
		if (!p && !(p = next_page(a, tc, k)))
			return NULL;
		uint64_t live = __atomic_load_n(&p->live, __ATOMIC_RELAXED);
		if (!(~live & p->full))
			live = collect(p);
		uint64_t free = ~live & p->full;
		if (free)
			return hp_code_hand_out(tc, p, (unsigned)__builtin_ctzll(free), live, size);
		/* Full: onto the full list, still held, unless another thread
		 * freed a chunk meanwhile (then collect it). */
		uint64_t none = 0;
		if (__atomic_compare_exchange_n(&p->xfree, &none, HP_CODE_FULL, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			link_to(&tc->code_full[k], p);
			tc->code_cur[k] = NULL;
			p = NULL;
		}
	}
}

void *hp_code_alloc_packed(struct hp_arena *a, size_t size)
{
	unsigned k = hp_code_cls_of[(size + HP_CODE_ALIGN - 1) / HP_CODE_ALIGN];
	struct hp_tcache *tc = hp_tcache_fast(a);
	if (!tc)
		return NULL; /* errno from meta_alloc's mmap */
	struct hp_code_page *p = tc->code_cur[k];
	if (__builtin_expect(p != NULL, 1)) {
		uint64_t live = __atomic_load_n(&p->live, __ATOMIC_RELAXED);
		uint64_t free = ~live & p->full;
		if (__builtin_expect(free != 0, 1))
			return hp_code_hand_out(tc, p, (unsigned)__builtin_ctzll(free), live, size);
	}
	return alloc_slow(a, tc, k, size);
}

/* Store @size bytes from @src (NULL: traps) at @addr of a code page with
 * no alias: hp_write's other ways, under the lock.  0 or errno. */
static int store_slow(struct hp_arena *a, uintptr_t addr, const void *src, size_t size)
{
	pthread_mutex_lock(&a->lock);
	int err = hp_pool_store(a, hp_block_of(addr), addr, src, size);
	pthread_mutex_unlock(&a->lock);
	return err;
}

/* Store @size bytes from @src (NULL: traps) at @addr of code page @p:
 * through its alias (the address by arithmetic; in line with the real
 * OS's hooks, else the OS hook's memset or memcpy), else store_slow.
 * 0 or errno. */
static inline __attribute__((always_inline)) int store(struct hp_arena *a,
						       const struct hp_code_page *p, uintptr_t addr,
						       const void *src, size_t size)
{
	if (__builtin_expect(!p->alias, 0))
		return store_slow(a, addr, src, size);
	uintptr_t to = p->alias + (addr & (HP_PAGE_SIZE - 1));
	if (__builtin_expect(!p->inline_to, 0))
		a->os->store(to, src, HP_TRAP_BYTE, size);
	else if (src && size <= 64)
		copy_small(to, src, size);
	else if (src)
		memcpy((void *)to, src, size);
	else
		fill_traps(to, size);
	return 0;
}

/* A free of chunk @i of @p by its holder: plain stores.  0 or errno. */
static __attribute__((noinline)) int free_mine(struct hp_arena *a, struct hp_tcache *tc,
					       struct hp_code_page *p, unsigned i, uintptr_t addr)
{
	unsigned k = p->cls;
	uint64_t bit = 1ULL << i, live = __atomic_load_n(&p->live, __ATOMIC_RELAXED);
	uint64_t x = __atomic_load_n(&p->xfree, __ATOMIC_ACQUIRE);
	if (!(live & ~x & bit))
		return EINVAL; /* free, or freed by another thread */
	int err = store(a, p, addr, NULL, p->size);
	if (err)
		return err;
	live &= ~bit;
	__atomic_store_n(&p->live, live, __ATOMIC_RELAXED);
	if (__builtin_expect(x & HP_CODE_FULL, 0)) { /* room again */
		live = unfull(tc, p);
		x = 0;
		hold(tc, p);
	}
	if (__builtin_expect((live & ~x) != 0, 1) || tc->code_cur[k] == p || collect(p))
		return 0;
	/* Empty, and not the page it allocates from: back to its block. */
	unhold(tc, p);
	pthread_mutex_lock(&a->lock);
	give_back(a, p);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* A free of chunk @i of @p by a thread that does not hold it: the chunk
 * goes into xfree, for the holder to collect.  0 or errno. */
static int free_other(struct hp_arena *a, struct hp_code_page *p, unsigned i, uintptr_t addr)
{
	unsigned k = p->cls;
	uint64_t bit = 1ULL << i;
	uint64_t old = __atomic_load_n(&p->xfree, __ATOMIC_ACQUIRE);
	if (!(__atomic_load_n(&p->live, __ATOMIC_ACQUIRE) & ~old & bit))
		return EINVAL;
	/* The trap bytes go in before the chunk can be handed out again. */
	int err = store(a, p, addr, NULL, p->size);
	if (err)
		return err;
	uint64_t new;
	do {
		if (old & bit)
			return EINVAL; /* another free of it won */
		new = old | bit;
	} while (!__atomic_compare_exchange_n(&p->xfree, &old, new, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	if (old & HP_CODE_FULL) {
		/* Its holder looks at its full list when it needs a page. */
		__atomic_fetch_add(&a->code_xfull[k], 1, __ATOMIC_RELAXED);
	} else if (!(__atomic_load_n(&p->live, __ATOMIC_ACQUIRE) & ~new) &&
		   !__atomic_load_n(&p->holder, __ATOMIC_RELAXED)) {
		/* Empty and on the stack: back to its block. */
		pthread_mutex_lock(&a->lock);
		sweep(a, k);
		pthread_mutex_unlock(&a->lock);
	}
	return 0;
}

/* Every case of a free (the common one is hp_code_free_fast's). */
int hp_code_free_packed(struct hp_arena *a, uintptr_t addr, bool *taken)
{
	struct hp_code_page *p = page_of(a, addr);
	*taken = p != NULL;
	if (!p)
		return 0;
	unsigned off = (unsigned)(addr & (HP_PAGE_SIZE - 1));
	unsigned i = hp_code_chunk_of(p, off);
	if (i * p->size != off || !(p->full >> i & 1))
		return EINVAL; /* interior, or past the last chunk */
	struct hp_tcache *tc = hp_tcache_slot0(a);
	if (tc && __atomic_load_n(&p->holder, __ATOMIC_RELAXED) == tc)
		return free_mine(a, tc, p, i, addr);
	return free_other(a, p, i, addr);
}

/* The live chunk of @p that holds @addr: its start in *start; false if
 * none does. */
static inline __attribute__((always_inline)) bool live_chunk(const struct hp_code_page *p,
							     uintptr_t addr, uintptr_t *start)
{
	unsigned i = hp_code_chunk_of(p, (unsigned)(addr & (HP_PAGE_SIZE - 1)));
	if (!(in_use(p) & p->full & (1ULL << i)))
		return false;
	*start = p->addr + i * p->size;
	return true;
}

int hp_code_write(struct hp_arena *a, uintptr_t dst, const void *src, size_t size, bool *taken)
{
	uintptr_t start;
	struct hp_code_page *p = page_of(a, dst);
	*taken = p != NULL;
	if (!p)
		return 0;
	if (!live_chunk(p, dst, &start) || size > start + p->size - dst)
		return ENOMEM;
	int err = store(a, p, dst, src, size);
	if (err || !p->alias)
		return err; /* hp_pool_store counted it */
	/* x86 keeps instruction fetch coherent through any alias. */
	__builtin___clear_cache((char *)dst, (char *)dst + size);
	COUNT(a, hp_tcache_slot0(a), writes_alias, 1);
	return 0;
}

int hp_code_writable(struct hp_arena *a, uintptr_t addr, uintptr_t *out, bool *taken)
{
	uintptr_t start;
	struct hp_code_page *p = page_of(a, addr);
	*taken = p != NULL;
	if (!p)
		return 0;
	if (!live_chunk(p, addr, &start))
		return EINVAL;
	if (!p->alias)
		return EOPNOTSUPP;
	*out = p->alias + (addr - p->addr);
	return 0;
}

size_t hp_code_usable(struct hp_arena *a, uintptr_t addr, bool *taken)
{
	uintptr_t start;
	struct hp_code_page *p = page_of(a, addr);
	*taken = p != NULL;
	return p && live_chunk(p, addr, &start) && start == addr ? p->size : 0;
}

/* ---------------------------------------------------------------------
 * Draining, statistics, teardown (lock held).
 * ------------------------------------------------------------------- */

void hp_code_drain(struct hp_arena *a, struct hp_tcache *tc, bool all)
{
	for (unsigned k = 0; k < HP_CODE_NCLS; k++) {
		struct hp_code_page *p = tc->code_cur[k], *next;
		if (p && (all || !collect(p))) {
			tc->code_cur[k] = NULL;
			hold(tc, p); /* with the others, handled below */
		}
		for (p = tc->code_full[k]; p; p = next) {
			next = p->next;
			if (all || __atomic_load_n(&p->xfree, __ATOMIC_RELAXED) != HP_CODE_FULL) {
				unfull(tc, p);
				hold(tc, p);
			}
		}
		for (p = tc->code_partial[k]; p; p = next) {
			next = p->next;
			bool empty = !collect(p);
			if (!empty && !all)
				continue;
			unhold(tc, p);
			if (empty)
				give_back(a, p);
			else
				push(a, p);
		}
		sweep(a, k);
	}
	if (!all)
		return;
	const uint64_t *from = (const uint64_t *)&tc->code_n;
	uint64_t *to = (uint64_t *)&a->code_n;
	for (size_t i = 0; i < sizeof(tc->code_n) / sizeof(uint64_t); i++)
		__atomic_fetch_add(&to[i], __atomic_load_n(&from[i], __ATOMIC_RELAXED),
				   __ATOMIC_RELAXED);
	memset(&tc->code_n, 0, sizeof(tc->code_n));
}

void hp_code_stats(struct hp_arena *a, struct hp_stats *st)
{
	struct hp_code_counts sum;
	uint64_t *s = (uint64_t *)&sum;
	const size_t nwords = sizeof(sum) / sizeof(uint64_t);
	for (size_t i = 0; i < nwords; i++)
		s[i] = __atomic_load_n((uint64_t *)&a->code_n + i, __ATOMIC_RELAXED);
	for (struct hp_tcache *tc = a->tcaches; tc; tc = tc->next)
		for (size_t i = 0; i < nwords; i++)
			s[i] += __atomic_load_n((uint64_t *)&tc->code_n + i, __ATOMIC_RELAXED);
	/* What is in use, from the pages: the chunks handed out and not
	 * freed, and the bytes asked for in each. */
	uint64_t chunks = 0, req = 0;
	st->code_pages = st->code_bytes = 0;
	for (struct hp_chunk *c = a->chunks; c; c = c->next)
		for (unsigned i = c->lo; i < c->hi; i++) {
			const struct hp_code_meta *m = meta_lookup(c->blocks[i].base);
			for (unsigned k = 0; m && k < HP_BLOCK_PAGES; k++) {
				const struct hp_code_page *p = &m->page[k];
				if (!__atomic_load_n(&p->on, __ATOMIC_ACQUIRE) || p->arena != a)
					continue;
				st->code_pages++;
				uint64_t used = in_use(p) & p->full;
				chunks += (uint64_t)__builtin_popcountll(used);
				st->code_bytes += (uint64_t)__builtin_popcountll(used) * p->size;
				for (; used; used &= used - 1)
					req += __atomic_load_n(&p->req[__builtin_ctzll(used)],
							       __ATOMIC_RELAXED);
			}
		}
	st->code_allocs = sum.allocs;
	st->code_frees = sum.allocs - chunks;
	st->code_lost_bytes = st->code_bytes - req;
	st->writes_alias += sum.writes_alias;
}

void hp_code_forget(struct hp_arena *a)
{
	for (struct hp_chunk *c = a->chunks; c; c = c->next)
		for (unsigned i = c->lo; i < c->hi; i++) {
			struct hp_code_meta *m = meta_lookup(c->blocks[i].base);
			for (unsigned p = 0; m && p < HP_BLOCK_PAGES; p++)
				if (m->page[p].arena == a) {
					__atomic_store_n(&m->page[p].inline_to, NULL,
							 __ATOMIC_RELAXED);
					__atomic_store_n(&m->page[p].on, false, __ATOMIC_RELEASE);
					/* No cache of another arena ever matches. */
					__atomic_store_n(&m->page[p].holder, NULL,
							 __ATOMIC_RELAXED);
					m->page[p].arena = NULL;
				}
		}
}

void hp_code_fork_child(struct hp_arena *a)
{
	for (struct hp_chunk *c = a->chunks; c; c = c->next)
		for (unsigned i = c->lo; i < c->hi; i++) {
			struct hp_block *b = &c->blocks[i];
			struct hp_code_meta *m = meta_lookup(b->base);
			for (unsigned p = 0; m && p < HP_BLOCK_PAGES; p++)
				if (m->page[p].on && m->page[p].arena == a) {
					struct hp_code_page *cp = &m->page[p];
					cp->alias = b->aliased ? hp_alias_of(b, cp->addr) : 0;
					set_inline_to(a, cp);
				}
		}
}
