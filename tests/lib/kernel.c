/* SPDX-License-Identifier: MIT */
/*
 * kernel.c - the kernel's view that only the tests read: the protection
 * /proc/self/maps gives an address, /proc/meminfo fields (the hugetlb
 * pools), and single numbers in /proc and /sys files (the tests that
 * reserve hugetlb pages write them back as they were, and a guardian
 * process writes them back if the test dies first).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel.h"

static struct kernel_vma *vmas;
static size_t nvmas, capvmas;

int kernel_maps_load(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	nvmas = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3)
			continue;
		if (nvmas == capvmas) {
			size_t cap = capvmas ? 2 * capvmas : 1024;
			struct kernel_vma *nv = realloc(vmas, cap * sizeof(*nv));
			if (!nv)
				break;
			vmas = nv;
			capvmas = cap;
		}
		vmas[nvmas++] = (struct kernel_vma){s, e,
						    (perms[0] == 'r' ? PROT_READ : 0) |
							    (perms[1] == 'w' ? PROT_WRITE : 0) |
							    (perms[2] == 'x' ? PROT_EXEC : 0)};
	}
	fclose(f);
	return 0;
}

const struct kernel_vma *kernel_maps(size_t *n)
{
	*n = nvmas;
	return vmas;
}

int kernel_maps_prot(uintptr_t a)
{
	size_t lo = 0, hi = nvmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a < vmas[mid].start)
			hi = mid;
		else if (a >= vmas[mid].end)
			lo = mid + 1;
		else
			return vmas[mid].prot;
	}
	return -1;
}

int kernel_prot_at(uintptr_t addr)
{
	return kernel_maps_load() ? -1 : kernel_maps_prot(addr);
}

bool kernel_collapse_allocs_fit(long allocs, unsigned long attempts)
{
	return allocs >= 0 && (unsigned long)allocs <= 2 * attempts;
}

long kernel_meminfo(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t flen = strlen(field);
	long r = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			r = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return r;
}

long kernel_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

int kernel_write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	int r = fprintf(f, "%ld\n", v) > 0 ? 0 : -1;
	if (fclose(f))
		r = -1;
	return r;
}

/*
 * The guardian: a process forked at the first setting a test changes.
 * Each change is a record on a pipe from the test (the file and the value
 * to put back), each restore another (drop it).  When the test is gone,
 * however it went (an abort, a crash, SIGKILL from a harness's timeout:
 * atexit runs for none of them), the guardian writes back what was never
 * restored.  It learns that the test is gone from a pidfd (so a child the
 * test forked, which holds the pipe's write end, does not delay it), or
 * from the pipe's end of file where there is no pidfd_open.  It is made
 * with the raw fork system call (the library's atfork handlers, which copy
 * aliased blocks, do not run for it), makes raw system calls only (the
 * test may have threads, and sanitizers' wrappers, when it forks), leaves
 * the test's session (a signal to the test's process group, Ctrl-C or
 * timeout(1), does not reach it) and blocks every signal it can.
 */
struct guard_rec {
	char path[120];
	long old; /* -1: restored, forget it */
};
static int guard_fd = -1;
static pid_t guard_owner; /* a forked child starts a guardian of its own */

static long sys(long nr, long a, long b, long c, long d)
{
	return syscall(nr, a, b, c, d);
}

static void guard_put(const char *path, long v)
{
	char buf[24];
	int n = sizeof(buf);
	buf[--n] = '\n';
	do
		buf[--n] = (char)('0' + v % 10);
	while ((v /= 10) && n > 0);
	long fd = sys(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0);
	if (fd >= 0) {
		sys(SYS_write, fd, (long)(buf + n), (long)sizeof(buf) - n, 0);
		sys(SYS_close, fd, 0, 0, 0);
	}
}

static bool same_path(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void guard_run(int rfd, pid_t owner)
{
	struct guard_rec live[8], r;
	int nlive = 0;
	uint64_t all = ~0ULL;
	sys(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, sizeof(all));
	sys(SYS_setsid, 0, 0, 0, 0);
	/* Hold nothing of the test's: not its TAP pipe (the harness reads it
	 * to end of file), not its files. */
	if (sys(SYS_close_range, 0, rfd - 1, 0, 0) || sys(SYS_close_range, rfd + 1, ~0U, 0, 0))
		for (int fd = 0; fd < 4096; fd++)
			if (fd != rfd)
				sys(SYS_close, fd, 0, 0, 0);
	long pidfd = sys(SYS_pidfd_open, owner, 0, 0, 0);
	bool no_pidfd = pidfd < 0 && errno == ENOSYS; /* then the pipe's end of file */
	/* The test may be dead already (then this process has another
	 * parent): what it sent is in the pipe, read without waiting. */
	bool gone = (pidfd < 0 && !no_pidfd) || sys(SYS_getppid, 0, 0, 0, 0) != owner;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = rfd, .events = POLLIN},
					{.fd = (int)pidfd, .events = POLLIN}};
		if (!gone && sys(SYS_poll, (long)pfd, pidfd >= 0 ? 2 : 1, -1, 0) < 0)
			continue; /* EINTR: a stop and continue */
		if (!gone && pidfd >= 0 && pfd[1].revents)
			gone = true;
		else if (!gone && !pfd[0].revents)
			continue;
		if (gone)
			sys(SYS_fcntl, rfd, F_SETFL, O_NONBLOCK, 0);
		if (sys(SYS_read, rfd, (long)&r, sizeof(r), 0) != (long)sizeof(r))
			break; /* end of file, or nothing more once the test is gone */
		int i = 0;
		r.path[sizeof(r.path) - 1] = 0;
		while (i < nlive && !same_path(live[i].path, r.path))
			i++;
		if (r.old < 0) {
			if (i < nlive)
				live[i] = live[--nlive];
		} else if (i < nlive) {
			live[i].old = r.old;
		} else if (nlive < 8) {
			live[nlive++] = r;
		}
	}
	for (int i = 0; i < nlive; i++)
		guard_put(live[i].path, live[i].old);
	sys(SYS_exit_group, 0, 0, 0, 0);
}

void kernel_guard(const char *path, long old)
{
	struct guard_rec r = {.old = old};
	if (guard_fd >= 0 && guard_owner != getpid()) {
		close(guard_fd); /* the parent's guardian: it stays the parent's */
		guard_fd = -1;
	}
	if (guard_fd < 0) {
		if (old < 0)
			return; /* nothing to guard */
		int p[2];
		pid_t owner = getpid();
		if (sys(SYS_pipe2, (long)p, O_CLOEXEC, 0, 0))
			return;
		long pid = sys(SYS_fork, 0, 0, 0, 0);
		if (pid == 0)
			guard_run(p[0], owner);
		close(p[0]);
		if (pid < 0) {
			close(p[1]);
			return;
		}
		guard_fd = p[1];
		guard_owner = owner;
	}
	snprintf(r.path, sizeof(r.path), "%s", path);
	ssize_t w = write(guard_fd, &r, sizeof(r)); /* <= PIPE_BUF: one record */
	(void)w;
}

void kernel_unguard(const char *path)
{
	if (guard_fd >= 0 && guard_owner == getpid())
		kernel_guard(path, -1);
}

/* The pools kernel_pool_set changed, and what they held before. */
static struct {
	const char *path;
	long old;
} pools[4];
static int npools;
static pid_t pools_owner; /* a forked child's pools are its own */

void kernel_pool_restore(void)
{
	if (pools_owner != getpid())
		return; /* a forked child's exit: the pools are its parent's */
	for (int i = 0; i < npools; i++) {
		kernel_write_long(pools[i].path, pools[i].old);
		kernel_unguard(pools[i].path);
	}
}

long kernel_pool_old(const char *path)
{
	for (int i = 0; i < npools; i++)
		if (!strcmp(pools[i].path, path))
			return pools[i].old;
	return -1;
}

int kernel_pool_set(const char *path, long n)
{
	if (pools_owner != getpid()) {
		npools = 0; /* a forked child: it puts back what it found */
		pools_owner = getpid();
	}
	if (kernel_pool_old(path) < 0) {
		long old = kernel_read_long(path);
		if (old < 0 || npools == (int)(sizeof(pools) / sizeof(pools[0])))
			return -1;
		static bool registered; /* once, a forked child's too */
		if (!registered)
			atexit(kernel_pool_restore);
		registered = true;
		pools[npools].path = path;
		pools[npools++].old = old;
	}
	kernel_guard(path, kernel_pool_old(path));
	if (kernel_write_long(path, n) || kernel_read_long(path) < n) {
		kernel_pool_restore();
		return -1;
	}
	return 0;
}

static long khugepaged_old = -1;
static pid_t khugepaged_pauser; /* a forked child's exit leaves it paused */

void kernel_khugepaged_resume(void)
{
	if (khugepaged_old >= 0 && getpid() == khugepaged_pauser) {
		kernel_write_long(KERNEL_KHUGEPAGED_SLEEP, khugepaged_old);
		kernel_unguard(KERNEL_KHUGEPAGED_SLEEP);
	}
	khugepaged_old = -1;
}

/* Make khugepaged know this process before it is paused.  While it knows
 * no process with memory it may collapse, khugepaged waits for the first,
 * not for its interval, and scans that one as soon as it comes, paused or
 * not (random.t: khugepaged's collapse allocations at its 2nd-35th
 * operation, none of them our calls, in 5 runs of 6; once one of our
 * blocks collapsed behind our back, then split uncounted).  Here an
 * advised block alone did not keep it asleep, one that was also read did.
 * The read faults in the huge zero page: no memory, no thp_fault_alloc
 * (with use_zero_page 0, a huge page: the tests read their counters after
 * the pause).  The region stays: khugepaged forgets a process only at its
 * exit. */
static void khugepaged_know_us(void)
{
	size_t len = 4UL << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	volatile char *blk = (char *)(((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	if (madvise((void *)blk, 2UL << 20, MADV_HUGEPAGE) == 0)
		(void)blk[0];
}

int kernel_khugepaged_pause(void)
{
	static bool registered;
	if (khugepaged_old >= 0)
		return 0; /* paused already */
	khugepaged_know_us();
	long old = kernel_read_long(KERNEL_KHUGEPAGED_SLEEP);
	if (old == KERNEL_KHUGEPAGED_PAUSED)
		return 0; /* another test's: it puts the interval back at its exit, which
			   * may come first (tests run one at a time here) */
	if (old < 0)
		return -1;
	kernel_guard(KERNEL_KHUGEPAGED_SLEEP, old);
	if (kernel_write_long(KERNEL_KHUGEPAGED_SLEEP, KERNEL_KHUGEPAGED_PAUSED)) {
		kernel_unguard(KERNEL_KHUGEPAGED_SLEEP);
		return -1;
	}
	khugepaged_old = old;
	khugepaged_pauser = getpid();
	if (!registered)
		atexit(kernel_khugepaged_resume);
	registered = true;
	/* The write wakes it for one last scan (of us too, with nothing to
	 * collapse yet): let that pass first. */
	usleep(200 * 1000);
	return 0;
}
