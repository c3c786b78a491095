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
 * (hp_arena_fork_child): otherwise parent and child would run and patch
 * one copy of their code.  The handlers are entry points that libc calls,
 * like the public calls, and go down from there.
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
		/* Other threads' caches: their pages go back (those threads are
		 * gone); ours stays, drained. */
		hp_tcache_destroy_all(a, true);
		int err = hp_arena_fork_child(a);
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
