/* SPDX-License-Identifier: MIT */
/*
 * storm.t - protection changes racing collapses (issue 15, defect 6).
 *
 * Threads allocate HP_HOME(RX) pages, write a `ret` into them, make them
 * executable, call them and free them, while collapses run with the arena
 * lock dropped: in sync mode (at the end of the calls), from the collapse
 * thread, and from a thread calling hp_arena_collapse_pending() in a loop.
 * A placement that waits for a collapse must not find its block put back
 * on a pool list meanwhile and insert it twice (a block linked to itself:
 * the next search spins with the lock held, and every thread hangs).
 * A hang is a failure here, not a stuck run: each phase has an alarm.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

#define NTHREADS 2
#define NOPS	 3000
#define NLIVE	 8
#define ALARM_S	 30
#define RW	 (PROT_READ | PROT_WRITE)
#define RX	 (PROT_READ | PROT_EXEC)

static struct hp_arena *arena;
static atomic_int errors, done_ops, stop;
static const char *phase;

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "Bail out! no progress: a thread is stuck (arena lock held?) in ";
	write(1, msg, sizeof(msg) - 1);
	write(1, phase, strlen(phase));
	write(1, "\n", 1);
	_exit(1);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned char *live[NLIVE] = {0};
	size_t live_n[NLIVE] = {0};

	for (int op = 0; op < NOPS; op++) {
		int k = rand_r(&seed) % NLIVE;
		if (live[k]) {
			if (((int (*)(void))(void *)live[k])() != 42 ||
			    hp_arena_free(arena, live[k]))
				errors++;
			live[k] = NULL;
		}
		size_t n = (1 + rand_r(&seed) % 4) * HP_PAGE_SIZE;
		unsigned char *p = hp_arena_alloc(arena, n, RW | HP_HOME(RX));
		if (!p) {
			errors++;
			continue;
		}
		static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
		memcpy(p, ret42, sizeof(ret42));
		if (hp_arena_protect(arena, p, n, RX)) {
			errors++;
			hp_arena_free(arena, p);
			continue;
		}
		live[k] = p;
		live_n[k] = n;
		atomic_fetch_add(&done_ops, 1);
	}
	for (int k = 0; k < NLIVE; k++)
		if (live[k] && hp_arena_free(arena, live[k]))
			errors++;
	(void)live_n;
	return NULL;
}

static void *collapser(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		hp_arena_collapse_pending(arena);
	return NULL;
}

/* One storm on a new arena in collapse mode @mode; @pending: plus a
 * thread calling hp_arena_collapse_pending() in a loop. */
static void storm(const char *name, int mode, bool pending)
{
	struct hp_config cfg = {
		.size = sizeof(cfg), .backend = HP_BACKEND_THP, .collapse_mode = mode};
	arena = hp_arena_create(&cfg);
	if (!arena) {
		printf("Bail out! hp_arena_create: %s\n", strerror(errno));
		exit(1);
	}
	phase = name;
	atomic_store(&errors, 0);
	atomic_store(&done_ops, 0);
	atomic_store(&stop, 0);
	alarm(ALARM_S);
	pthread_t t[NTHREADS], c;
	if (pending)
		pthread_create(&c, NULL, collapser, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 7));
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&stop, 1);
	if (pending)
		pthread_join(c, NULL);
	alarm(0);
	is(atomic_load(&done_ops), NTHREADS * NOPS, "%s: %d threads x %d RX allocations finished",
	   name, NTHREADS, NOPS);
	is(atomic_load(&errors), 0, "%s: every call succeeded, every function returned 42", name);
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(arena, &st);
	ok(st.used_bytes == 0 && st.free_bytes + st.cached_bytes == st.committed_bytes,
	   "%s: nothing in use at the end, free + cached == committed", name);
	hp_arena_destroy(arena);
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp || !pr.collapse)
		tap_skip_all("needs THP (madvise) and MADV_COLLAPSE");
	/* The collapse thread starts with the first block queued, and runs
	 * collapses 1 ms after a block turned uniform. */
	setenv("HUGEPERM_COLLAPSE_THREAD", "1", 1);
	setenv("HUGEPERM_COLLAPSE_DELAY_MS", "0", 1);
	setenv("HUGEPERM_COLLAPSE_RATE", "100000", 1);
	signal(SIGALRM, on_alarm);
	tap_plan(9);
	storm("sync", HP_COLLAPSE_SYNC, false);
	storm("collapse thread", HP_COLLAPSE_DEFERRED, false);
	storm("hp_collapse_pending loop", HP_COLLAPSE_DEFERRED, true);
	return tap_done();
}
