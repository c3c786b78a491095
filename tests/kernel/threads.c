/* SPDX-License-Identifier: MIT */
/*
 * threads.t - thread safety of the default arena (locks for now): threads
 * allocate, fill with a pattern, change protections, free their own and
 * each other's allocations, while another thread collapses and trims and
 * the background collapse thread runs.  Every pattern must survive and the
 * books must balance at the end.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hugeperm.h"
#include "tap.h"

#define NTHREADS 4
#define NOPS	 3000
#define SLOTS	 64

/* Slots through which allocations pass from one thread to another. */
static struct {
	pthread_mutex_t lock;
	unsigned char *p;
	size_t n;
} slot[SLOTS];
static atomic_int errors, stop;

static bool check(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 4096)
		if (p[i] != (unsigned char)((uintptr_t)p >> 12))
			return false;
	return true;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int op = 0; op < NOPS; op++) {
		size_t n = (1 + rand_r(&seed) % 16) * 4096;
		int flags = rand_r(&seed) % 2 ? HP_HOME(PROT_READ | PROT_EXEC) : 0;
		unsigned char *p = hp_alloc(n, PROT_READ | PROT_WRITE | flags);
		if (!p) {
			errors++;
			continue;
		}
		for (size_t i = 0; i < n; i += 4096)
			p[i] = (unsigned char)((uintptr_t)p >> 12);
		if (hp_protect(p, n, PROT_READ) || !check(p, n) ||
		    hp_protect(p, 4096, PROT_READ | PROT_WRITE))
			errors++;
		/* Swap with a slot: the allocation found there is freed by a
		 * thread that (usually) did not allocate it. */
		int k = rand_r(&seed) % SLOTS;
		pthread_mutex_lock(&slot[k].lock);
		unsigned char *old = slot[k].p;
		size_t old_n = slot[k].n;
		slot[k].p = p;
		slot[k].n = n;
		pthread_mutex_unlock(&slot[k].lock);
		if (old && (!check(old, old_n) || hp_free(old)))
			errors++;
	}
	return NULL;
}

static void *janitor(void *arg)
{
	while (!atomic_load(&stop)) {
		hp_collapse_pending();
		hp_trim();
	}
	return NULL;
}

int main(void)
{
	setenv("HUGEPERM_COLLAPSE_THREAD", "1", 1);
	setenv("HUGEPERM_COLLAPSE_DELAY_MS", "1", 1);
	pthread_t t[NTHREADS], j;
	for (int k = 0; k < SLOTS; k++)
		pthread_mutex_init(&slot[k].lock, NULL);
	pthread_create(&j, NULL, janitor, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&stop, 1);
	pthread_join(j, NULL);

	is(atomic_load(&errors), 0, "%d threads x %d operations: no failed call, no lost pattern",
	   NTHREADS, NOPS);
	for (int k = 0; k < SLOTS; k++)
		if (slot[k].p && (!check(slot[k].p, slot[k].n) || hp_free(slot[k].p)))
			errors++;
	is(atomic_load(&errors), 0, "the leftovers free cleanly");
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_get(&st);
	is(st.used_bytes, 0, "nothing in use at the end");
	is(st.allocs, st.frees, "every allocation was freed once (%lu)", (unsigned long)st.allocs);
	ok(st.free_bytes + st.used_bytes + st.cached_bytes == st.committed_bytes,
	   "free + cached + used == committed");
	is(st.mixed_blocks, 0, "no block left mixed");
	return tap_done();
}
