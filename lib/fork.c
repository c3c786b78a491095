/* SPDX-License-Identifier: MIT */
/*
 * fork.c - the registry of arenas, and what happens to them at fork().
 *
 * Every arena made by the public API is in the registry (a list and a
 * lock).  The per-thread caches consult it to tell a live arena from a
 * destroyed one whose cache a thread still points to (cache.c); that half
 * calls nothing, and sits below the caches in the layering.
 *
 * Around fork() the prepare handler takes the registry lock and every
 * arena's lock, so the child never sees an arena half-changed.  In the
 * child: no collapse thread exists and no collapse is in flight any more,
 * other threads' caches go back (those threads are gone), and aliased
 * blocks, which are MAP_SHARED, get memory of their own
 * (hp_arena_fork_child, here): otherwise parent and child would run and
 * patch one copy of their code.  The handlers are entry points that libc
 * calls, like the public calls, and go down from there.
 */
#include "config.h"

#include <urcu/urcu-bp.h>

#include "internal.h"
#include "trace.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hp_arena *registry;
static struct hp_trace_writer *fork_trace; /* the library's trace writer */

void hp_registry_add(struct hp_arena *a)
{
	pthread_mutex_lock(&registry_lock);
	a->next_arena = registry;
	registry = a;
	pthread_mutex_unlock(&registry_lock);
}

void hp_registry_del(struct hp_arena *a)
{
	pthread_mutex_lock(&registry_lock);
	struct hp_arena **pp = &registry;
	while (*pp && *pp != a)
		pp = &(*pp)->next_arena;
	if (*pp)
		*pp = a->next_arena;
	pthread_mutex_unlock(&registry_lock);
}

static struct hp_arena *registry_find(struct hp_arena *a, uint64_t id)
{
	struct hp_arena *it = registry;
	while (it && !(it == a && it->id == id))
		it = it->next_arena;
	return it;
}

struct hp_arena *hp_registry_lock(struct hp_arena *a, uint64_t id)
{
	pthread_mutex_lock(&registry_lock);
	if (!registry_find(a, id)) {
		pthread_mutex_unlock(&registry_lock);
		return NULL;
	}
	pthread_mutex_lock(&a->lock);
	return a;
}

void hp_registry_unlock(struct hp_arena *a)
{
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_unlock(&registry_lock);
}

bool hp_registry_has(struct hp_arena *a, uint64_t id)
{
	pthread_mutex_lock(&registry_lock);
	bool found = registry_find(a, id) != NULL;
	pthread_mutex_unlock(&registry_lock);
	return found;
}

/* Guard pages of the guarded block @b, installed again on a new mapping
 * (PROT_NONE guards come back with the page protections). */
static int reguard(struct hp_arena *a, struct hp_block *b)
{
	if (b->pool_set != HP_SET_GUARDED || !a->guard_madvise)
		return 0;
	struct hp_block *first = b->chunk->blocks;
	for (unsigned p = 0; p < HP_BLOCK_PAGES; p++) {
		unsigned len = hp_block_alloc_len(b, p);
		if (!len)
			continue;
		uintptr_t lo = b->base + (uintptr_t)p * HP_PAGE_SIZE, hi = lo + len * HP_PAGE_SIZE;
		if (b->state == HP_BLOCK_SPAN) { /* only the head starts one: its end is farther */
			if (b->span == 0)
				continue;
			hi = first[b->span_head + b->span - 1].base + HP_BLOCK_SIZE;
		}
		int err = a->os->guard(lo, HP_PAGE_SIZE, true);
		if (!err)
			err = a->os->guard(hi - HP_PAGE_SIZE, HP_PAGE_SIZE, true);
		if (err)
			return err;
	}
	return 0;
}

/* Put each page's protection back on block @b, mapped anew at its home
 * class, and its guard pages. */
static int reprotect(struct hp_arena *a, struct hp_block *b)
{
	int err = 0;
	for (unsigned p = 0; !err && p < HP_BLOCK_PAGES;) {
		unsigned q = p;
		while (q < HP_BLOCK_PAGES && b->prot[q] == b->prot[p])
			q++;
		if (b->prot[p] != b->home)
			err = a->os->protect(b->base + p * HP_PAGE_SIZE, (q - p) * HP_PAGE_SIZE,
					     b->prot[p]);
		p = q;
	}
	return err ? err : reguard(a, b); /* the new mapping has no guard markers */
}

/*
 * The fall back when aliased block @b cannot get a memfd copy of its own
 * (no fd, or the hugetlb pool cannot hold the copy): private memory of
 * the mutable backend (THP or small pages), a copy through @tmp (one
 * block of scratch memory), no alias from now on.  The alias view becomes
 * a reservation again, so the parent's file is no longer mapped here.
 */
static int unshare_private(struct hp_arena *a, struct hp_block *b, void *tmp)
{
	uintptr_t alias = hp_alias_of(b, b->base);
	int backend = hp_backend_is_hugetlb(b->backend) ? a->mutable_backend : b->backend;
	a->os->store((uintptr_t)tmp, (const void *)alias, 0, HP_BLOCK_SIZE);
	int err = a->os->commit(b->base, HP_BLOCK_SIZE, PROT_READ | PROT_WRITE, backend, -1, -1);
	if (err)
		return err;
	a->os->store(b->base, tmp, 0, HP_BLOCK_SIZE);
	if (b->home != (PROT_READ | PROT_WRITE) &&
	    (err = a->os->protect(b->base, HP_BLOCK_SIZE, b->home)))
		return err;
	if ((err = reprotect(a, b)))
		return err;
	a->os->decommit(alias, HP_BLOCK_SIZE); /* if it fails, the view is merely stale */
	b->aliased = false;
	b->backend = (uint8_t)backend;
	b->huge = false;
	return 0;
}

/* Give aliased block @b of chunk @c memory of its own in memfd @fd (-1:
 * none could be made), else private memory.  0 or errno. */
static int unshare_block(struct hp_arena *a, struct hp_chunk *c, struct hp_block *b, int fd,
			 void **tmp)
{
	size_t off = b->base - c->base;
	int err =
		fd < 0 ? EBADF : a->os->alias_copy(fd, off, hp_alias_of(b, b->base), HP_BLOCK_SIZE);
	if (!err)
		err = a->os->alias_remap(b->base, hp_alias_of(b, b->base), fd, off, HP_BLOCK_SIZE,
					 b->home, b->backend);
	if (!err)
		err = reprotect(a, b);
	if (!err) {
		b->huge = hp_backend_is_hugetlb(b->backend);
		return 0;
	}
	/* The alias view still reads the block's bytes: whichever file it
	 * maps now (the parent's, or the copy), they are the same. */
	if (!*tmp && !(*tmp = a->os->meta_alloc(HP_BLOCK_SIZE)))
		return ENOMEM;
	return unshare_private(a, b, *tmp);
}

/*
 * In the child after fork(): no collapse thread, nothing in flight; and
 * aliased blocks are MAP_SHARED, so parent and
 * child would share their code, and a write in one would change the other.
 * Give every chunk new memfds, copy each aliased block across (through its
 * alias, always readable) and map both views onto the copy, then put each
 * page's protection and guard pages back.  Where that cannot be done (no
 * fd, or a hugetlb pool too small for the copy) the block gets private
 * memory of the mutable backend instead, without an alias (policy: a
 * child, perhaps about to exec, goes on rather than dies).  The copies
 * start 4K-mapped: they are queued for collapse.  Lock held (taken before
 * fork).  0 or errno: only when not even private memory could be had.
 */
int hp_arena_fork_child(struct hp_arena *a)
{
	void *tmp = NULL; /* scratch for private copies, made when needed */
	int err = 0;
	/* The collapse thread and the collapses it had in flight stayed in the
	 * parent. */
	a->thread_running = false;
	/* Their threads may have been waiting on these: a copy of a condition
	 * with waiters blocks pthread_cond_destroy for ever (glibc), and the
	 * thread's deadline and kick were the parent thread's. */
	pthread_cond_init(&a->thread_wake, NULL);
	pthread_cond_init(&a->collapse_done, NULL);
	pthread_mutex_init(&a->thread_lock, NULL);
	a->thread_kick = false;
	a->thread_until_ns = 0;
	a->thread_next = NULL;
	for (struct hp_chunk *c = a->chunks; c && !err; c = c->next) {
		for (unsigned i = c->lo; i < c->hi; i++)
			c->blocks[i].collapsing = false;
		int fresh[2] = {-1, -1};
		for (int k = 0; k < 2; k++)
			if (c->alias_fd[k] >= 0 &&
			    a->os->alias_create(HP_CHUNK_SIZE, k == 1, &fresh[k]))
				fresh[k] = -1;
		for (unsigned i = c->lo; i < c->hi && !err; i++) {
			struct hp_block *b = &c->blocks[i];
			if (b->state == HP_BLOCK_UNCOMMITTED || !b->aliased)
				continue;
			err = unshare_block(a, c, b, fresh[hp_alias_kind(b->backend)], &tmp);
			if (!err && hp_block_uniform(b, NULL))
				hp_collapse_enqueue(a, b); /* no thread may start here */
		}
		/* The parent's files are closed here whatever happened. */
		for (int k = 0; k < 2; k++)
			if (c->alias_fd[k] >= 0) {
				a->os->close(c->alias_fd[k]);
				c->alias_fd[k] = fresh[k];
			}
	}
	if (tmp)
		a->os->meta_free(tmp, HP_BLOCK_SIZE);
	return err;
}

static void fork_prepare(void)
{
	hp_trace_flush(fork_trace);
	pthread_mutex_lock(&registry_lock);
	for (struct hp_arena *a = registry; a; a = a->next_arena)
		pthread_mutex_lock(&a->lock);
	urcu_bp_before_fork();
}

static void fork_parent(void)
{
	urcu_bp_after_fork_parent();
	for (struct hp_arena *a = registry; a; a = a->next_arena)
		pthread_mutex_unlock(&a->lock);
	pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
	hp_trace_detach(fork_trace); /* the file is the parent's */
	urcu_bp_after_fork_child();  /* forget the readers that did not fork */
	for (struct hp_arena *a = registry; a; a = a->next_arena) {
		/* The purge thread stayed in the parent, and none may start
		 * here (first: the caches' pages below free blocks). */
		hp_purge_fork_child(a);
		/* Other threads' caches: their pages go back (those threads are
		 * gone); ours stays, drained. */
		hp_tcache_destroy_all(a, true);
		int err = hp_arena_fork_child(a);
		hp_code_fork_child(a);
		if (err) {
			char msg[128];
			struct hp_buf b = {msg, sizeof(msg) - 1, 0};
			hp_buf_str(
				&b,
				"cannot unshare executable memory in the child after fork (errno ");
			hp_buf_u64(&b, (uint64_t)err);
			hp_buf_str(&b, ")");
			msg[b.len < b.cap ? b.len : b.cap] = 0;
			hp_os_die(msg);
		}
		pthread_mutex_unlock(&a->lock);
	}
	pthread_mutex_unlock(&registry_lock);
}

void hp_fork_install(struct hp_trace_writer *trace)
{
	fork_trace = trace;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
