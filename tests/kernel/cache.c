/* SPDX-License-Identifier: MIT */
/*
 * cache.t - the per-thread caches.
 *
 *   - a cache hit takes no lock: this program is linked with
 *     --wrap=pthread_mutex_lock (and trylock), so every lock the library
 *     takes is counted, and a loop of alloc+free of cached sizes takes none;
 *     (that it makes no system call is fastpath.sh's job, with strace,
 *     which runs `cache.t --loop N`);
 *   - a cached allocation is not live: free, protect, write and
 *     usable_size refuse it;
 *   - freed executable pages hold int3 before anyone can get them again;
 *   - caches are drained on thread exit, by hp_trim in the calling thread
 *     and, at their next call, in the others;
 *   - statistics count cached pages as cached: free + cached + used ==
 *     committed, with cached > 0 while a cache holds pages;
 *   - after fork() the child allocates and frees at once, and the pages
 *     the parent's other threads had cached are not lost in the child.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hugeperm.h"
#include "tap.h"

#define PAGE 4096
#define RW   (PROT_READ | PROT_WRITE)
#define RX   (PROT_READ | PROT_EXEC)

static atomic_long locks;

int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
	atomic_fetch_add(&locks, 1);
	return __real_pthread_mutex_lock(m);
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	atomic_fetch_add(&locks, 1);
	return __real_pthread_mutex_trylock(m);
}

static struct hp_stats stats(void)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_get(&st);
	return st;
}

static bool books(const struct hp_stats *st)
{
	return st->free_bytes + st->cached_bytes + st->used_bytes == st->committed_bytes;
}

/* alloc+free pairs of 1..16 pages in each class, n times. */
static int churn(long n)
{
	static const int cls[] = {RW, RX, PROT_READ};
	int bad = 0;
	for (long i = 0; i < n; i++) {
		void *p = hp_alloc((size_t)PAGE << (i % 5), cls[i % 3]);
		if (!p || hp_free(p))
			bad++;
	}
	return bad;
}

/* For fastpath.sh under strace: warm the caches, then a marker system call
 * (getppid) on each side of the measured loop. */
static int loop(long n)
{
	int bad = churn(64);
	getppid();
	bad += churn(n);
	getppid();
	return bad ? 1 : 0;
}

static void *thread_fill(void *arg)
{
	/* Leave pages in this thread's cache, then exit. */
	void *p[8];
	for (int i = 0; i < 8; i++)
		p[i] = hp_alloc(PAGE, RW);
	for (int i = 0; i < 8; i++)
		hp_free(p[i]);
	struct hp_stats *st = arg;
	*st = stats();
	return NULL;
}

static atomic_int phase;

static void *thread_idle_cache(void *arg)
{
	(void)arg;
	void *p = hp_alloc(PAGE, PROT_READ);
	void *q = hp_alloc(PAGE, RW); /* its bin was refilled: more are cached */
	hp_free(p);
	atomic_store(&phase, 1);
	while (atomic_load(&phase) != 2)
		usleep(1000);
	hp_free(q); /* the next call sees the trim, drains, then caches q */
	atomic_store(&phase, 3);
	while (atomic_load(&phase) != 4)
		usleep(1000);
	return NULL;
}

static void *thread_hold(void *arg)
{
	for (int i = 0; i < 16; i++)
		hp_free(hp_alloc(PAGE, RW));
	atomic_store(&phase, 1);
	while (atomic_load(&phase) != 2)
		usleep(1000);
	return arg;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--loop") == 0)
		return loop(atol(argv[2]));

	/* No lock on a hit. */
	is(churn(64), 0, "warm-up: 64 alloc+free pairs of 1-16 pages, RW/RX/R");
	long before = atomic_load(&locks);
	is(churn(30000), 0, "30000 alloc+free pairs");
	is(atomic_load(&locks) - before, 0, "... took no lock (pthread_mutex_lock calls counted)");
	before = atomic_load(&locks);
	void *odd = hp_alloc(3 * PAGE, RW);
	hp_free(odd);
	ok(atomic_load(&locks) - before > 0, "3 pages (not a cached size) takes the lock: %ld",
	   atomic_load(&locks) - before);

	/* A cached allocation is not live. */
	char *p = hp_alloc(PAGE, RW);
	p[0] = 1;
	ok(hp_free(p) == 0, "free one page (into the cache)");
	errno = 0;
	ok(hp_free(p) == -1 && errno == EINVAL, "free it again: EINVAL");
	errno = 0;
	ok(hp_protect(p, PAGE, PROT_READ) == -1 && errno == ENOMEM, "protect it: ENOMEM");
	errno = 0;
	ok(hp_write(p, "x", 1) == -1 && errno == ENOMEM, "hp_write into it: ENOMEM");
	is(hp_usable_size(p), 0, "usable_size of it: 0");
	char *again = hp_alloc(PAGE, RW);
	ok(again == p, "the next one-page RW allocation gets it back (LIFO)");
	ok(hp_protect(again, PAGE, PROT_READ) == 0 && hp_protect(again, PAGE, RW) == 0,
	   "and it is live again");
	hp_free(again);

	/* Executable pages are scrubbed on a cached free. */
	unsigned char *x = hp_alloc(PAGE, RX);
	unsigned char ret = 0xc3;
	hp_write(x, &ret, 1);
	hp_free(x);
	ok(x[0] == 0xcc && x[PAGE - 1] == 0xcc, "a freed RX page holds int3 while cached");

	/* Books while pages sit in this thread's cache. */
	struct hp_stats st = stats();
	ok(st.cached_bytes > 0 && books(&st), "cached %lu bytes; free + cached + used == committed",
	   (unsigned long)st.cached_bytes);

	/* Thread exit drains. */
	struct hp_stats in_thread, after;
	pthread_t t;
	uint64_t mine = stats().cached_bytes;
	pthread_create(&t, NULL, thread_fill, &in_thread);
	pthread_join(t, NULL);
	after = stats();
	ok(in_thread.cached_bytes > mine, "a thread's cache holds pages while it runs (%lu > %lu)",
	   (unsigned long)in_thread.cached_bytes, (unsigned long)mine);
	is(after.cached_bytes, mine, "its exit gave them back");

	/* hp_trim: ours at once, another thread's at its next call. */
	atomic_store(&phase, 0);
	pthread_create(&t, NULL, thread_idle_cache, NULL);
	while (atomic_load(&phase) != 1)
		usleep(1000);
	ok(hp_trim() == 0, "hp_trim");
	st = stats();
	ok(st.cached_bytes > 0, "an idle thread's cache is not ours to empty (%lu bytes)",
	   (unsigned long)st.cached_bytes);
	atomic_store(&phase, 2);
	while (atomic_load(&phase) != 3)
		usleep(1000);
	st = stats();
	is(st.cached_bytes, PAGE, "its next call drained it (all but the page it then freed)");
	atomic_store(&phase, 4);
	pthread_join(t, NULL);
	hp_trim();
	st = stats();
	is(st.cached_bytes, 0, "after exit and trim nothing is cached");
	is(st.used_bytes, 0, "nothing is used");

	/* fork while another thread holds cached pages. */
	atomic_store(&phase, 0);
	pthread_create(&t, NULL, thread_hold, NULL);
	while (atomic_load(&phase) != 1)
		usleep(1000);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct hp_stats cs = {.size = sizeof(cs)};
		hp_stats_get(&cs);
		bool drained = cs.cached_bytes == 0 && books(&cs);
		void *c = hp_alloc(PAGE, RW);
		bool works = c && hp_free(c) == 0 && churn(1000) == 0;
		_exit(drained && works ? 0 : 1);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "the child: the other thread's cached pages were given back, and it allocates");
	atomic_store(&phase, 2);
	pthread_join(t, NULL);
	return tap_done();
}
