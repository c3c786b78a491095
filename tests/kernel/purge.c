/* SPDX-License-Identifier: MIT */
/*
 * purge.t - free blocks go back to the kernel on their own (purge.c), as
 * the kernel sees it: the resident memory of the arena's chunk in
 * /proc/self/smaps (THP, shmem for aliased code, hugetlb 2 MiB with pages
 * reserved in the pool and put back), before and after the delay, the
 * reserve, HP_PURGE_NOW and HP_PURGE_NEVER, the thread started only once a
 * block is freed, and hp_config.purge_ms out of range.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define MB 1024L /* in kB */

static struct hp_arena *arena(int backend, int purge_ms)
{
	struct hp_config cfg = {.size = sizeof(cfg), .backend = backend, .purge_ms = purge_ms};
	return hp_arena_create(&cfg);
}

static uintptr_t chunk_of(const void *p)
{
	return (uintptr_t)p & ~(HP_CHUNK_SIZE - 1);
}

/* kB of smaps @field in the chunk of @p (and its alias views, which are
 * in another chunk-sized reservation: @alias, 0 for none). */
static long chunk_kb(const void *p, uintptr_t alias, const char *field)
{
	uintptr_t c = chunk_of(p);
	long kb = kernel_smaps_kb(c, c + HP_CHUNK_SIZE, field);
	return alias ? kb + kernel_smaps_kb(alias, alias + HP_CHUNK_SIZE, field) : kb;
}

/* Threads named hugeperm-purge (/proc/self/task/TID/comm). */
static int purge_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
		if (f && fgets(comm, sizeof(comm), f))
			n += !strcmp(comm, "hugeperm-purge\n");
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

/* Does the purge thread block SIGALRM, SIGUSR1 and SIGTERM (SigBlk in
 * /proc/self/task/TID/status)?  -1: no such thread. */
static int purge_thread_blocks_signals(void)
{
	DIR *d = opendir("/proc/self/task");
	int seen = 0, blocked = 1;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], line[128];
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
		unsigned long long mask = 0;
		bool ours = false;
		while (f && fgets(line, sizeof(line), f)) {
			ours |= !strcmp(line, "Name:\thugeperm-purge\n");
			sscanf(line, "SigBlk: %llx", &mask);
		}
		if (f)
			fclose(f);
		unsigned long long want =
			1ULL << (SIGALRM - 1) | 1ULL << (SIGUSR1 - 1) | 1ULL << (SIGTERM - 1);
		seen |= ours;
		if (ours)
			blocked &= (mask & want) == want;
	}
	closedir(d);
	return seen ? blocked : -1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts))
		;
}

/* Wait up to 2 s for chunk_kb(...) <= @kb; what it was last. */
static long wait_kb_at_most(const void *p, uintptr_t alias, const char *field, long kb)
{
	long now = chunk_kb(p, alias, field);
	for (int i = 0; i < 100 && now > kb; i++) {
		sleep_ms(20);
		now = chunk_kb(p, alias, field);
	}
	return now;
}

static struct hp_stats stats(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	return st;
}

/* @n whole blocks of @prot, written. */
static void fill(struct hp_arena *a, char **p, int n, int prot)
{
	static const char ret[] = {(char)0xc3};
	for (int i = 0; i < n; i++) {
		p[i] = hp_arena_alloc(a, HP_BLOCK_SIZE, prot);
		if (!p[i])
			continue;
		if (prot & PROT_WRITE)
			memset(p[i], 0x5a, HP_BLOCK_SIZE);
		else
			for (size_t off = 0; off < HP_BLOCK_SIZE; off += 4096)
				hp_arena_write(a, p[i] + off, ret, 1);
	}
}

static void test_thp(void)
{
	struct hp_arena *a = arena(HP_BACKEND_THP, 150);
	char *p[8];
	fill(a, p, 8, RW);
	ok(a && p[7], "a THP arena with purge_ms 150 and 8 blocks written");
	long rss = chunk_kb(p[0], 0, "Rss");
	ok(rss >= 16 * MB, "smaps: the chunk holds %ld kB (>= 16 MiB)", rss);
	is(purge_threads(), 0, "no purge thread before a block is free");
	hp_arena_free(a, p[7]);
	sleep_ms(50);
	is(purge_threads(), 0,
	   "nor with one block free, the class's reserve, which it never purges");
	for (int i = 0; i < 7; i++)
		hp_arena_free(a, p[i]);
	rss = chunk_kb(p[0], 0, "Rss");
	ok(rss >= 16 * MB, "freed, before the delay: still %ld kB", rss);
	for (int i = 0; i < 400 && purge_threads() == 0; i++)
		sleep_ms(5); /* it names itself once it runs */
	is(purge_threads(), 1,
	   "the purge thread (hugeperm-purge) started once a block was free past the reserve");
	is(purge_thread_blocks_signals(), 1, "... with the program's signals blocked");
	rss = wait_kb_at_most(p[0], 0, "Rss", 2 * MB);
	ok(rss <= 2 * MB, "after the delay, no further call: %ld kB (the reserve: <= 2 MiB)", rss);
	struct hp_stats st = stats(a);
	ok(st.purged_blocks == 7 && st.purged_bytes == 7 * HP_BLOCK_SIZE && st.free_blocks == 1 &&
		   st.blocks == 1,
	   "stats: 7 purged (%llu), 1 free block kept (%llu)", (unsigned long long)st.purged_blocks,
	   (unsigned long long)st.free_blocks);
	/* The next burst takes the reserve, then fresh blocks: huge again. */
	fill(a, p, 3, RW);
	ok(p[2] && kernel_huge_kb(chunk_of(p[0]), chunk_of(p[0]) + HP_CHUNK_SIZE) >= 6 * MB,
	   "the next burst is huge-mapped again");
	for (int i = 0; i < 3; i++)
		hp_arena_free(a, p[i]);
	hp_arena_trim(a);
	rss = chunk_kb(p[0], 0, "Rss");
	ok(rss == 0, "hp_trim gives the reserve back too: %ld kB", rss);
	hp_arena_destroy(a);
	is(purge_threads(), 0, "hp_arena_destroy ends the purge thread");

	/* Code blocks: shmem with an alias; their pages leave the file too. */
	a = arena(HP_BACKEND_THP, 100);
	fill(a, p, 4, RX);
	uintptr_t alias = a && p[0] ? hp_block_of((uintptr_t)p[0])->chunk->alias_base : 0;
	rss = chunk_kb(p[0], alias, "Rss");
	ok(alias && rss >= 8 * MB, "4 RX blocks with aliases: %ld kB", rss);
	for (int i = 0; i < 4; i++)
		hp_arena_free(a, p[i]);
	rss = wait_kb_at_most(p[0], alias, "Rss", 2 * 2 * MB);
	ok(rss <= 2 * 2 * MB, "RX after the delay: %ld kB (the reserve, seen in both views)", rss);
	is(stats(a).purged_blocks, 3, "3 RX blocks purged");
	hp_arena_destroy(a);
}

/* --- the real OS with a decommit that takes 300 ms --- */
static struct hp_os slow;
static uintptr_t in_flight; /* the block being decommitted, 0: none (atomic) */

static int slow_decommit(uintptr_t addr, size_t size)
{
	__atomic_store_n(&in_flight, addr, __ATOMIC_RELEASE);
	sleep_ms(300);
	int err = hp_os_linux.decommit(addr, size);
	__atomic_store_n(&in_flight, 0, __ATOMIC_RELEASE);
	return err;
}

static uint64_t now_ms(void)
{
	return hp_os_linux.now_ns() / 1000000;
}

/* The purge thread decommits without the arena lock: the program's calls
 * go on meanwhile, and a fork in the middle leaves the child a block it can
 * use (a reservation, for sure). */
static void test_background(void)
{
	slow = hp_os_linux;
	slow.decommit = slow_decommit;
	struct hp_options opt = hp_opt;
	opt.purge_ms = 50;
	struct hp_arena *a = calloc(1, sizeof(*a));
	hp_arena_init(a, &slow, HP_BACKEND_THP, HP_BACKEND_THP, &opt);
	a->purge_threaded = true;
	hp_registry_add(a); /* its fork handlers */
	char *p[3];
	fill(a, p, 3, RW);
	char *small = hp_arena_alloc(a, 4096, RW);
	for (int i = 0; i < 3; i++)
		hp_arena_free(a, p[i]);
	uint64_t t0 = now_ms();
	while (!__atomic_load_n(&in_flight, __ATOMIC_ACQUIRE) && now_ms() - t0 < 2000)
		sleep_ms(5);
	uintptr_t purging = __atomic_load_n(&in_flight, __ATOMIC_ACQUIRE);
	ok(purging && hp_block_of(purging)->purging, "a decommit is in flight (300 ms)");

	t0 = now_ms();
	char *q = hp_arena_alloc(a, 8192, RW);
	int rc = q ? hp_arena_protect(a, q, 8192, PROT_READ) : -1;
	uint64_t took = now_ms() - t0;
	ok(q && rc == 0 && took < 100 && __atomic_load_n(&in_flight, __ATOMIC_ACQUIRE) == purging,
	   "meanwhile an allocation and an mprotect take %llu ms: no lock held",
	   (unsigned long long)took);

	pid_t pid = fork();
	if (pid == 0) {
		/* The child: the block is a reservation, the arena whole. */
		char why[256];
		struct hp_buf w = {why, sizeof(why) - 1, 0};
		bool uncommitted = hp_block_of(purging)->state == HP_BLOCK_UNCOMMITTED &&
				   kernel_prot_at(purging) == PROT_NONE;
		pthread_mutex_lock(&a->lock);
		int err = hp_arena_check(a, &w);
		pthread_mutex_unlock(&a->lock);
		char *r[3];
		fill(a, r, 3, RW);
		for (int i = 0; i < 3; i++)
			hp_arena_free(a, r[i]);
		bool threadless = purge_threads() == 0; /* none in a child */
		_exit(uncommitted && !err && threadless ? 0 : 1);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a child forked mid-purge finds that block a reservation, the arena whole, "
	   "blocks to use, and starts no thread when it frees them");
	t0 = now_ms();
	while (stats(a).purged_blocks < 2 && now_ms() - t0 < 3000)
		sleep_ms(20);
	is(stats(a).purged_blocks, 2, "the parent's purges finish: 2 blocks");
	hp_arena_free(a, q);
	hp_arena_free(a, small);
	hp_registry_del(a);
	hp_arena_teardown(a);
	free(a);
}

static void test_now_never(void)
{
	char *p[3];
	struct hp_arena *a = arena(HP_BACKEND_THP, HP_PURGE_NOW);
	fill(a, p, 3, RW);
	for (int i = 0; i < 3; i++)
		hp_arena_free(a, p[i]);
	long rss = chunk_kb(p[0], 0, "Rss");
	ok(rss <= 2 * MB, "HP_PURGE_NOW: given back by the frees themselves: %ld kB", rss);
	hp_arena_destroy(a);

	a = arena(HP_BACKEND_THP, HP_PURGE_NEVER);
	fill(a, p, 3, RW);
	for (int i = 0; i < 3; i++)
		hp_arena_free(a, p[i]);
	sleep_ms(200);
	rss = chunk_kb(p[0], 0, "Rss");
	ok(rss >= 6 * MB && stats(a).purged_blocks == 0,
	   "HP_PURGE_NEVER: all 3 blocks stay (%ld kB)", rss);
	hp_arena_destroy(a);

	struct hp_config bad = {.size = sizeof(bad), .purge_ms = -3};
	errno = 0;
	ok(!hp_arena_create(&bad) && errno == EINVAL, "hp_config.purge_ms -3: EINVAL");
	bad.purge_ms = HP_PURGE_MS_MAX + 1;
	errno = 0;
	ok(!hp_arena_create(&bad) && errno == EINVAL, "hp_config.purge_ms over an hour: EINVAL");
}

static void test_hugetlb(void)
{
	long nr = kernel_read_long(KERNEL_POOL_2M);
	if (nr < 0 || kernel_pool_set(KERNEL_POOL_2M, nr + 4)) {
		tap_skip(4,
			 "could not reserve 4 more 2 MiB hugetlb pages (not root, or no memory)");
		return;
	}
	long free0 = kernel_meminfo("HugePages_Free");
	struct hp_arena *a = arena(HP_BACKEND_HUGETLB_2M, 100);
	char *p[4];
	fill(a, p, 4, RW);
	ok(a && p[3] && kernel_meminfo("HugePages_Free") == free0 - 4,
	   "hugetlb-2m: 4 blocks take 4 pages of the pool");
	long kb = chunk_kb(p[0], 0, "Private_Hugetlb");
	for (int i = 0; i < 4; i++)
		hp_arena_free(a, p[i]);
	long after = wait_kb_at_most(p[0], 0, "Private_Hugetlb", 2 * MB);
	ok(kb == 8 * MB && after == 2 * MB,
	   "smaps Private_Hugetlb: %ld kB, after the delay %ld kB (the reserve)", kb, after);
	is(kernel_meminfo("HugePages_Free"), free0 - 1, "3 pages are back in the pool");
	hp_arena_destroy(a);
	kernel_pool_restore();
	is(kernel_read_long(KERNEL_POOL_2M), nr, "nr_hugepages restored to %ld", nr);
}

int main(void)
{
	test_thp();
	test_background();
	test_now_never();
	test_hugetlb();
	return tap_done();
}
