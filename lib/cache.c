/* SPDX-License-Identifier: MIT */
/*
 * cache.c - per-thread page caches: the fast path.
 *
 * Each thread keeps, per arena and class, bins of free allocations of 1, 2,
 * 4, 8 and 16 pages (TCMalloc's per-thread cache, mimalloc's thread-local
 * free lists).  hp_alloc of such a size pops a bin; hp_free pushes one.
 * Neither takes a lock nor makes a system call: the page's state is claimed
 * with one compare-and-swap (internal.h, HP_A_*), the address -> block
 * lookup runs inside an RCU read-side section (liburcu-bp), and the pages
 * of a cached allocation keep the home protection of their class, so
 * nothing in the kernel changes.
 *
 * Only allocations whose protection is their class (no HP_HOME), outside
 * guarded blocks, go through bins.  For the others, a miss, or a full bin,
 * the arena lock is taken: a miss refills half a bin with placements as
 * usual, a full bin drains half of it back to the blocks.  Bins hold at most
 * 64 pages each, so a thread holds at most 320 pages (1.25 MiB) per class.
 *
 * A cached allocation is, to its block, still allocated (its used bits are
 * set) but its state is HELD: it cannot be freed, protected or written
 * again, and statistics count its pages as cached, never as used or lost.
 * Caches are drained when their thread exits (a pthread key destructor),
 * when the thread calls hp_trim(), and, for every other thread, at its next
 * call after any hp_trim() (the arena's trim epoch): a cache cannot be
 * emptied from outside without a lock on its fast path.
 *
 * The thread's slots are initial-exec TLS: (arena, arena id, cache)
 * triples, so a cache of a destroyed arena is recognised by its id (the
 * registry of arenas, fork.c) and never touched again.
 */
#include "config.h"

#include <string.h>
#include <urcu/urcu-bp.h>

#include "internal.h"

#define TLS_SLOTS HP_TLS_SLOTS

__thread struct hp_thread hp_thread = {.code_last = {UINTPTR_MAX, NULL}};
static __thread bool tls_keyed __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* Bin k holds allocations of 1 << k pages; at most 64 pages a bin. */
static unsigned bin_cap(unsigned k)
{
	return HP_TCACHE_SLOTS >> k;
}

int hp_tcache_bin(size_t npages)
{
	if (npages == 0 || npages > (1u << (HP_TCACHE_BINS - 1)) || (npages & (npages - 1)))
		return -1;
	return __builtin_ctzll(npages);
}

static void count(uint64_t *c, int64_t d)
{
	/* Written only by the owner; read by hp_stats_get. */
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + (uint64_t)d, __ATOMIC_RELAXED);
}

/* Give @nslots entries of bin (cls, k) back to their blocks.  Lock held. */
static void drain_bin(struct hp_arena *a, struct hp_tcache *tc, int cls, unsigned k,
		      unsigned nslots)
{
	struct hp_tbin *bin = &tc->bin[cls][k];
	size_t n = 1u << k;
	while (nslots-- && bin->n) {
		uintptr_t p = bin->slot[--bin->n];
		struct hp_block *b = hp_block_of(p);
		hp_pool_give_back(a, b, (unsigned)((p - b->base) >> HP_PAGE_SHIFT), n);
	}
}

/* Empty every bin of @tc.  Lock held. */
static void drain_all(struct hp_arena *a, struct hp_tcache *tc)
{
	for (int c = 0; c < HP_NCLASS; c++)
		for (unsigned k = 0; k < HP_TCACHE_BINS; k++)
			drain_bin(a, tc, c, k, HP_TCACHE_SLOTS);
	hp_code_drain(a, tc, false);
	tc->epoch = __atomic_load_n(&a->trim_epoch, __ATOMIC_RELAXED);
}

/* Unlink @tc from its arena and free it, drained.  Lock held. */
static void tcache_free(struct hp_arena *a, struct hp_tcache *tc)
{
	hp_code_drain(a, tc, true);
	drain_all(a, tc);
	a->ncache_allocs += tc->allocs;
	a->ncache_frees += tc->frees;
	if (tc->prev)
		tc->prev->next = tc->next;
	else
		a->tcaches = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	a->os->meta_free(tc, sizeof(*tc));
}

/* Thread exit: drain this thread's caches of arenas that still exist. */
static void thread_exit(void *arg)
{
	(void)arg;
	tls_keyed = false;
	for (int i = 0; i < TLS_SLOTS; i++) {
		struct hp_tls_slot *s = &hp_tls[i];
		if (!s->tc)
			continue;
		struct hp_arena *a = hp_registry_lock(s->arena, s->id);
		if (a) {
			tcache_free(a, s->tc);
			hp_registry_unlock(a);
		}
		memset(s, 0, sizeof(*s));
	}
}

static void key_create(void)
{
	if (pthread_key_create(&exit_key, thread_exit))
		hp_os_die("pthread_key_create failed");
}

/* This thread's cache for @a, created on first use; NULL if no memory. */
static struct hp_tcache *tcache_get(struct hp_arena *a)
{
	struct hp_tls_slot *free_slot = NULL;
	for (int i = 0; i < TLS_SLOTS; i++) {
		struct hp_tls_slot *s = &hp_tls[i];
		if (s->arena == a && s->id == a->id)
			return s->tc;
		if (!free_slot && (!s->tc || !hp_registry_has(s->arena, s->id)))
			free_slot = s;
	}
	if (!tls_keyed) {
		pthread_once(&key_once, key_create);
		pthread_setspecific(exit_key, (void *)1);
		tls_keyed = true;
	}
	if (!free_slot) { /* a fifth arena: the first slot's cache goes */
		free_slot = &hp_tls[0];
		struct hp_arena *old = hp_registry_lock(free_slot->arena, free_slot->id);
		if (old) {
			tcache_free(old, free_slot->tc);
			hp_registry_unlock(old);
		}
		/* Never to be found again, even if no cache replaces it. */
		memset(free_slot, 0, sizeof(*free_slot));
	}
	struct hp_tcache *tc = a->os->meta_alloc(sizeof(*tc));
	if (!tc)
		return NULL;
	tc->owner = pthread_self();
	pthread_mutex_lock(&a->lock);
	tc->epoch = __atomic_load_n(&a->trim_epoch, __ATOMIC_RELAXED);
	tc->next = a->tcaches;
	if (tc->next)
		tc->next->prev = tc;
	a->tcaches = tc;
	pthread_mutex_unlock(&a->lock);
	*free_slot = (struct hp_tls_slot){a, a->id, tc};
	return tc;
}

/* Another thread called hp_trim(): give everything back first. */
static void check_epoch(struct hp_arena *a, struct hp_tcache *tc)
{
	if (__builtin_expect(tc->epoch == __atomic_load_n(&a->trim_epoch, __ATOMIC_RELAXED), 1))
		return;
	pthread_mutex_lock(&a->lock);
	drain_all(a, tc);
	pthread_mutex_unlock(&a->lock);
}

/* Fill half of bin (cls, k) with placements.  Lock held.  0 or errno. */
static int refill(struct hp_arena *a, struct hp_tcache *tc, int cls, unsigned k)
{
	struct hp_tbin *bin = &tc->bin[cls][k];
	size_t n = 1u << k;
	unsigned want = bin_cap(k) / 2, from = bin->n;
	uint64_t steals = a->n.steals[cls];
	while (bin->n < want) {
		uintptr_t p = (uintptr_t)hp_pool_alloc(a, n, cls, cls, false);
		if (!p)
			return bin->n ? 0 : errno;
		struct hp_block *b = hp_block_of(p);
		hp_astate_set(b, (unsigned)((p - b->base) >> HP_PAGE_SHIFT), HP_A_HELD, n);
		bin->slot[bin->n++] = p;
		if (a->n.steals[cls] != steals)
			break; /* memory is short: no stolen pages hoarded */
	}
	/* Pops take the last slot: reverse the batch so that allocations come
	 * out in placement (address) order, as they would without a cache. */
	for (unsigned i = from, j = bin->n - 1; i < j; i++, j--) {
		uintptr_t t = bin->slot[i];
		bin->slot[i] = bin->slot[j];
		bin->slot[j] = t;
	}
	return 0;
}

struct hp_tcache *hp_tcache_mine(struct hp_arena *a)
{
	struct hp_tcache *tc = tcache_get(a);
	if (tc)
		check_epoch(a, tc);
	return tc;
}

void *hp_tcache_alloc(struct hp_arena *a, int bin_k, int cls)
{
	struct hp_tcache *tc = tcache_get(a);
	if (!tc)
		return NULL; /* errno from meta_alloc's mmap */
	check_epoch(a, tc);
	unsigned k = (unsigned)bin_k;
	struct hp_tbin *bin = &tc->bin[cls][k];
	if (__builtin_expect(bin->n == 0, 0)) {
		pthread_mutex_lock(&a->lock);
		int err = refill(a, tc, cls, k);
		pthread_mutex_unlock(&a->lock);
		if (err) {
			errno = err;
			return NULL;
		}
	}
	uintptr_t p = bin->slot[--bin->n];
	struct hp_block *b = hp_block_of(p);
	hp_astate_set(b, (unsigned)((p - b->base) >> HP_PAGE_SHIFT), HP_A_LIVE, 1u << k);
	count(&tc->allocs, 1);
	return (void *)p;
}

/*
 * Can the allocation of @n pages at page @first of @b, just claimed, go
 * into a bin as it is: at its home protection, and, for executable
 * classes, scrubbed with int3 through its alias (without a system call)?
 * Freed NONE pages must drop their memory, which is a system call: those
 * take the pool's path.
 */
static bool cacheable(const struct hp_block *b, unsigned first, size_t n)
{
	if (hp_tcache_bin(n) < 0 || b->state != HP_BLOCK_ACTIVE || b->pool_set == HP_SET_GUARDED ||
	    hp_block_drops_free(b))
		return false;
	if ((b->home & PROT_EXEC) && !b->aliased)
		return false;
	return hp_block_prot_is(b, first, (unsigned)n, b->home);
}

static void scrub(const struct hp_arena *a, const struct hp_block *b, uintptr_t p, size_t n)
{
	if (b->home & PROT_EXEC)
		a->os->store(hp_alias_of(b, p), NULL, HP_TRAP_BYTE, n * HP_PAGE_SIZE);
	else if (a->poison && (b->home & PROT_WRITE))
		a->os->store(p, NULL, HP_POISON_BYTE, n * HP_PAGE_SIZE);
}

int hp_tcache_free(struct hp_arena *a, uintptr_t addr, bool *taken)
{
	int ret = 0;

	*taken = false;
	urcu_bp_read_lock();
	struct hp_block *b = hp_block_of(addr);
	size_t n;
	if (!b || b->chunk->arena != a)
		goto out;
	unsigned first = (unsigned)((addr - b->base) >> HP_PAGE_SHIFT);
	if (!hp_astate_claim(b, first, &n))
		goto out; /* not an allocation's start (or guarded, or freed) */
	if (!cacheable(b, first, n)) {
		pthread_mutex_lock(&a->lock);
		if (b->pool_set == HP_SET_GUARDED) { /* the guard page: not the caller's */
			hp_astate_set(b, first, HP_A_LIVE, n);
		} else {
			*taken = true;
			ret = hp_pool_free_claimed(a, b, first);
			if (!ret)
				a->n.frees++;
		}
		pthread_mutex_unlock(&a->lock);
		goto out;
	}
	struct hp_tcache *tc = tcache_get(a);
	if (!tc) {
		hp_astate_set(b, first, HP_A_LIVE, n);
		goto out;
	}
	check_epoch(a, tc);
	scrub(a, b, addr, n);
	unsigned k = (unsigned)hp_tcache_bin(n);
	struct hp_tbin *bin = &tc->bin[b->home][k];
	if (__builtin_expect(bin->n == bin_cap(k), 0)) {
		pthread_mutex_lock(&a->lock);
		drain_bin(a, tc, b->home, k, bin_cap(k) / 2);
		pthread_mutex_unlock(&a->lock);
	}
	bin->slot[bin->n++] = addr;
	count(&tc->frees, 1);
	*taken = true;
out:
	urcu_bp_read_unlock();
	return ret;
}

void hp_tcache_drain_mine(struct hp_arena *a)
{
	for (int i = 0; i < TLS_SLOTS; i++)
		if (hp_tls[i].tc && hp_tls[i].arena == a && hp_tls[i].id == a->id)
			drain_all(a, hp_tls[i].tc);
	__atomic_fetch_add(&a->trim_epoch, 1, __ATOMIC_RELAXED);
}

void hp_tcache_counts(struct hp_arena *a, uint64_t *allocs, uint64_t *frees)
{
	*allocs = a->ncache_allocs;
	*frees = a->ncache_frees;
	for (struct hp_tcache *tc = a->tcaches; tc; tc = tc->next) {
		*allocs += __atomic_load_n(&tc->allocs, __ATOMIC_RELAXED);
		*frees += __atomic_load_n(&tc->frees, __ATOMIC_RELAXED);
	}
}

void hp_tcache_destroy_all(struct hp_arena *a, bool keep_mine)
{
	struct hp_tcache *tc = a->tcaches, *next;
	for (; tc; tc = next) {
		next = tc->next;
		if (keep_mine && pthread_equal(tc->owner, pthread_self()))
			drain_all(a, tc);
		else
			tcache_free(a, tc);
	}
}
