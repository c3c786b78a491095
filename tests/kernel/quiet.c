/* SPDX-License-Identifier: MIT */
/*
 * quiet.t - a flapping block and the collapse thread (HP_ARENA_COLLAPSE_QUIET,
 * sync mode, as the preload's exact mode) on the real kernel.
 *
 * Two 64 KiB areas share an RX-home block, as exact mode places LuaJIT's;
 * one is flipped RW and back RX, written between, as fast as it goes for a
 * second.  The kernel's truth: every flip is exact in /proc/self/maps (the
 * area RW or RX as asked, its neighbour RX), thp_split_pmd and
 * thp_collapse_alloc move a few times, not once a flip, and the block is
 * PMD-mapped again (pagemap) a quiet period after the flips stop, not
 * before.  The collapse thread (named hugeperm-collap) is woken about once
 * a quiet period, not once a burst: its context switches in
 * /proc/self/task/TID/status (main at 8bc7ff1: it dropped the block each
 * time it found it split and was woken again by the next flip, twice a
 * period, and waited on the arena lock at each of its three acquisitions
 * a wakeup).  Two paths around the thread's sleep, each in a child: a
 * fork while it sleeps, the child destroying the arena (hung in glibc's
 * pthread_cond_destroy on the copied condition before b3982c4's review),
 * and a block a caller's failed collapse puts back on the queue while
 * the thread sleeps with nothing queued (never collapsed before).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "sysfault.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define KB 1024

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The thread of ours that is not the main one nor the purge thread (-1:
 * none); its name in @comm. */
static long other_thread(char *comm, size_t len)
{
	DIR *d = opendir("/proc/self/task");
	long found = -1;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		long tid = atol(e->d_name);
		if (tid <= 0 || tid == (long)getpid())
			continue;
		char path[64], name[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", tid);
		FILE *f = fopen(path, "r");
		if (f && fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = 0;
		if (f)
			fclose(f);
		if (!strcmp(name, "hugeperm-purge"))
			continue;
		found = tid;
		snprintf(comm, len, "%s", name);
	}
	if (d)
		closedir(d);
	return found;
}

/* Voluntary and involuntary context switches of thread @tid. */
static long switches(long tid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", tid);
	FILE *f = fopen(path, "r");
	long n = 0, v;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
			n += v;
	if (f)
		fclose(f);
	return n;
}

/* A quiet sync arena (the preload's exact mode) whose one block flaps:
 * two 64 KiB RX-home areas, the second flipped right after the first one
 * made the block uniform.  The block is queued, the collapse thread runs.
 * NULL if the areas are not in one block. */
static struct hp_arena *flapping(unsigned char **x, unsigned char **y, uintptr_t *blk)
{
	struct hp_config cfg = {
		.size = sizeof(cfg),
		.backend = HP_BACKEND_THP,
		.collapse_mode = HP_COLLAPSE_SYNC,
		.flags = HP_ARENA_COLLAPSE_QUIET | HP_ARENA_NO_ALIAS,
	};
	struct hp_arena *a = hp_arena_create(&cfg);
	*x = a ? hp_arena_alloc(a, 64 * KB, RW | HP_HOME(RX)) : NULL;
	*y = a ? hp_arena_alloc(a, 64 * KB, RW | HP_HOME(RX)) : NULL;
	*blk = (uintptr_t)*x & ~(uintptr_t)(HP_BLOCK_SIZE - 1);
	if (!*x || !*y || ((uintptr_t)*y & ~(uintptr_t)(HP_BLOCK_SIZE - 1)) != *blk) {
		tap_diag("two 64 KiB RX-home areas, not in one block: %p %p", (void *)*x,
			 (void *)*y);
		return NULL;
	}
	memset(*x, 0xc3, 64 * KB);
	memset(*y, 0xc3, 64 * KB);
	hp_arena_protect(a, *x, 64 * KB, RX);
	hp_arena_protect(a, *y, 64 * KB, RX);
	hp_arena_protect(a, *y, 64 * KB, RW);
	hp_arena_protect(a, *y, 64 * KB, RX);
	return a;
}

/* Exit status of a child running @fn, killed after 5 s (hung: 99). */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		alarm(5);
		_exit(fn());
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

/* A child forked while the collapse thread sleeps destroys the arena:
 * its copy of the condition the thread waited on must not block the
 * destroy (glibc's pthread_cond_destroy waits for the copied waiters). */
static int fork_destroy(void)
{
	unsigned char *x, *y;
	uintptr_t blk;
	struct hp_arena *a = flapping(&x, &y, &blk);
	if (!a)
		return 2;
	usleep(20000); /* the thread asleep until the block's quiet deadline */
	pid_t pid = fork();
	if (pid == 0) {
		alarm(3);
		bool kept = x[0] == 0xc3;
		_exit(hp_arena_destroy(a) == 0 && kept ? 0 : 3);
	}
	int st;
	int r = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 98;
	hp_arena_destroy(a);
	return r;
}

/* A caller's collapse (hp_arena_collapse_pending) takes the block off the
 * queue while the thread looks, finds nothing and sleeps for good; the
 * collapse fails (ENOMEM, after 150 ms) and the block goes back on the
 * queue: the thread must hear of it, and the block be PMD-mapped again. */
static volatile int collapse_failed;
static double clock_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no system call */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static int fail_collapse_slowly(long nr, const long args[6])
{
	if (nr != SYS_madvise || args[2] != 25 /* MADV_COLLAPSE */ || collapse_failed)
		return 0;
	collapse_failed = 1;
	for (double t0 = clock_s(); clock_s() < t0 + 0.15;)
		;
	return ENOMEM;
}
static int requeued(void)
{
	unsigned char *x, *y;
	uintptr_t blk;
	struct hp_arena *a = flapping(&x, &y, &blk);
	if (!a || sysfault_install())
		return 2;
	sysfault_policy = fail_collapse_slowly;
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	uint64_t before = st.collapses;
	usleep(30000);
	sysfault_armed = true;
	hp_arena_collapse_pending(a); /* the thread's look at 100 ms finds none */
	sysfault_armed = false;
	if (!collapse_failed)
		return 3;
	/* Collapsed by us (our stats: khugepaged may make it huge too), and
	 * PMD-mapped (the kernel's). */
	double t0 = now_s();
	do {
		usleep(5000);
		hp_arena_stats_get(a, &st);
	} while (st.collapses == before && now_s() < t0 + 3.0);
	return st.collapses == before ? 4 : kernel_huge_pages(blk, HP_BLOCK_SIZE) == 512 ? 0 : 5;
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp || !pr.collapse || kernel_huge_pages(0, 0) < 0)
		tap_skip_all("no THP, no MADV_COLLAPSE, or no PAGEMAP_SCAN to read PMD mappings "
			     "with (before Linux 6.7)");
	tap_plan(10);
	/* khugepaged collapsing the block on its own in the quiet period
	 * would read as our collapse made early (check 7 failed so once in
	 * 70 runs beside two busy loops: PMD-mapped 82 ms after the flips). */
	if (kernel_khugepaged_pause())
		tap_diag("khugepaged's scan interval could not be set: it may collapse the "
			 "block too");

	unsigned char *x, *y;
	uintptr_t blk;
	/* The second area's flips come right after the first one's collapse:
	 * the block flaps, and waits for quiet in the thread from now on. */
	struct hp_arena *a = flapping(&x, &y, &blk);
	if (!a)
		return 1;

	usleep(20000); /* the thread, just started, has had its first look */
	char comm[32] = "";
	long tid = other_thread(comm, sizeof(comm));
	long sw0 = tid > 0 ? switches(tid) : 0;
	long split0 = kernel_vmstat("thp_split_pmd"), coll0 = kernel_vmstat("thp_collapse_alloc");
	struct hp_stats sq = {.size = sizeof(sq)};
	hp_arena_stats_get(a, &sq);
	uint64_t attempts0 = sq.collapse_attempts;

	long flips = 0, wrong = 0, checks = 0;
	double t0 = now_s(), t, last = t0;
	while ((t = now_s()) < t0 + 1.0) {
		hp_arena_protect(a, x, 64 * KB, RW);
		x[flips % (64 * KB)] = 0xc3;
		if (flips % 4096 == 0) {
			checks++;
			wrong += kernel_prot_at((uintptr_t)x) != RW ||
				 kernel_prot_at((uintptr_t)x + 64 * KB - 1) != RW ||
				 kernel_prot_at((uintptr_t)y) != RX;
		}
		last = now_s(); /* the block turns uniform after this */
		hp_arena_protect(a, x, 64 * KB, RX);
		if (flips % 4096 == 0)
			wrong += kernel_prot_at((uintptr_t)x) != RX ||
				 kernel_prot_at((uintptr_t)x + 64 * KB - 1) != RX;
		flips++;
	}
	/* Read first: a test preempted here for 100 ms would see the block
	 * rightly collapsed. */
	long huge = kernel_huge_pages(blk, HP_BLOCK_SIZE);
	double read_at = now_s();
	long sw = tid > 0 ? switches(tid) - sw0 : -1;
	ok(tid > 0 && other_thread(comm, sizeof(comm)) == tid && !strcmp(comm, "hugeperm-collap"),
	   "the block flaps: the collapse thread runs, named for top -H (%s)", comm);
	long splits = kernel_vmstat("thp_split_pmd") - split0;
	long colls = kernel_vmstat("thp_collapse_alloc") - coll0;
	tap_diag("%ld flip pairs in %.2f s; collapse thread: %ld context switches; thp_split_pmd "
		 "+%ld, "
		 "thp_collapse_alloc +%ld",
		 flips, t - t0, sw, splits, colls);
	ok(flips > 1000, "%ld flip pairs of one area in a second", flips);
	is(wrong, 0,
	   "each of %ld samples: the area RW or RX as asked in /proc/self/maps, its "
	   "neighbour RX",
	   checks);
	hp_arena_stats_get(a, &sq);
	unsigned long attempts = sq.collapse_attempts - attempts0;
	ok(splits <= 3 && attempts <= 3 && kernel_collapse_allocs_fit(colls, attempts),
	   "a few splits and collapses in all, not one a flip (thp_split_pmd +%ld; %lu collapse "
	   "attempts of ours, thp_collapse_alloc +%ld)",
	   splits, attempts, colls);
	ok(sw >= 0 && sw <= 30,
	   "the collapse thread switched %ld times in 1 s: about once a 100 ms quiet period "
	   "(at most 30), not at each unlock",
	   sw);

	/* The flips over, RX: PMD-mapped again once quiet, not at once.  The
	 * times are from the start of the last RX flip, a bound the block's
	 * quiet period starts after. */
	ok(huge < 512 || read_at - last >= 0.1,
	   "right after the last flip the block is still 4K-mapped (%ld of 512, read %.0f ms "
	   "after it)",
	   huge, (read_at - last) * 1000);
	while ((huge = kernel_huge_pages(blk, HP_BLOCK_SIZE)) < 512 && now_s() < last + 4.0)
		usleep(2000);
	double after = now_s() - last;
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	ok(huge == 512 && after >= 0.1,
	   "PMD-mapped again %.0f ms after the flips stopped (the quiet period: 100 ms or more; "
	   "by us %lu times in all, found made by khugepaged %lu)",
	   after * 1000, (unsigned long)st.collapses, (unsigned long)st.khugepaged);
	ok(x[0] == 0xc3 && y[64 * KB - 1] == 0xc3 && kernel_prot_at((uintptr_t)x) == RX,
	   "contents kept, the area RX");
	hp_arena_destroy(a);

	is(in_child(fork_destroy), 0,
	   "a child forked while the collapse thread sleeps destroys the arena (its copy of the "
	   "thread's condition does not hang it) and keeps the contents");
	is(in_child(requeued), 0,
	   "a block put back on the queue by a caller's failed collapse is collapsed by the thread "
	   "within 3 s and PMD-mapped (it was sleeping with nothing queued)");
	return tap_done();
}
