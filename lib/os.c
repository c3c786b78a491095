/* SPDX-License-Identifier: MIT */
/*
 * os.c - the only file that makes system calls.
 *
 * Contract: every function returns 0 or the errno captured right after the
 * failing call, and leaves the range as it was on failure where the kernel
 * allows (a failed commit puts the reservation back).  Nothing here calls
 * malloc or stdio, so the preload can use it before anything is set up.
 *
 * Backends and how a block is committed:
 *   THP         mmap(MAP_FIXED) RW, MADV_HUGEPAGE, MADV_POPULATE_WRITE so
 *               the fault takes a huge page now, then one whole-block
 *               mprotect to the home class (a whole-PMD change keeps the
 *               huge mapping).  MADV_POPULATE_WRITE refuses non-writable
 *               mappings, hence RW first.
 *   hugetlb     mmap(MAP_FIXED|MAP_HUGETLB|MAP_HUGE_2MB/1GB): the kernel
 *               takes the pages from the pool at map time (ENOMEM when it is
 *               empty), which is where the fallback happens.
 *   small       mmap(MAP_FIXED) with MADV_NOHUGEPAGE: 4 KiB pages, never
 *               huge, for machines without THP.
 * Reservations are PROT_NONE + MAP_NORESERVE anonymous mappings, marked
 * MADV_DONTDUMP (sys_reserve).
 *
 * Blocks with an alias (executable classes) are shared memory instead: one
 * memfd per chunk (shmem, or hugetlb 2 MiB), each block mapped twice at the
 * same file offset: RW at the alias, the class's protection at the block.
 * MADV_COLLAPSE makes shmem PMD-mapped even with shmem_enabled=never; and
 * after a split the huge folio stays in the page cache, so a re-collapse
 * only re-installs the PMD (~50 us, nothing copied).  vm.memfd_noexec=2
 * forbids executable memfds: the exec mapping fails and the caller falls
 * back to private memory.
 */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <numaif.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LINUX_MMAN_H
#include <linux/mman.h>
#include <urcu/urcu-bp.h>
#endif

#include "internal.h"
#include "pagemap_scan.h"

/* Debian 12's glibc headers predate these. */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x10U /* Linux 6.3: executable memfd, whatever memfd_noexec says */
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x4U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA	     0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

/*
 * The mmap family goes to the kernel directly, not through libc's symbols:
 * inside the preload those symbols are the preload's hooks, and the
 * library's own calls must never be taken for the program's.
 *
 * Sanitized builds go through libc instead: ASan and TSan learn of memory
 * that comes and goes from their mmap/munmap interceptors, and without them
 * TSan takes a tcache reused at the same address by another thread for a
 * race.  The preload is not built into sanitized test runs.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define sys_mmap     mmap
#define sys_munmap   munmap
#define sys_mprotect mprotect
#define sys_madvise  madvise
#else
static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return r == -1 ? MAP_FAILED : (void *)r;
}

static int sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static int sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static int sys_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}
#endif

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define USER_TOP (1UL << 47)

/*
 * A reservation: PROT_NONE, MAP_NORESERVE, and MADV_DONTDUMP (there is
 * nothing in it to dump).  The last is hugeperm's mark: on a kernel without
 * CONFIG_ANON_VMA_NAME, `hugeperm stats` tells our chunks from the program's
 * mappings by the "nr dd" VmFlags of their reserved parts.
 */
static void *sys_reserve(void *addr, size_t size, int flags)
{
	void *p = sys_mmap(addr, size, PROT_NONE, ANON | MAP_NORESERVE | flags, -1, 0);
	if (p != MAP_FAILED)
		sys_madvise(p, size, MADV_DONTDUMP);
	return p;
}

/* Reserve exactly at @at, or fail with EEXIST when something is there. */
static int reserve_at(uintptr_t at, size_t size)
{
	void *p = sys_reserve((void *)at, size, MAP_FIXED_NOREPLACE);
	if (p == MAP_FAILED)
		return errno;
	if ((uintptr_t)p != at) { /* a kernel older than 4.17 took it as a hint */
		sys_munmap(p, size);
		return EEXIST;
	}
	return 0;
}

/* Room left free above the program break and below the stack, so that
 * neither runs into a reservation of ours. */
#define GROW_ROOM (256UL << 20)

/* The best free gap of a slot so far (reserve_in). */
struct gap_pick {
	uintptr_t lo, hi, near, min;
	uintptr_t busy_lo, busy_hi; /* where the program break will grow */
	uintptr_t best_lo, best_hi;
};

/* Consider the free range [lo, hi), cut to the slot and to whole blocks,
 * with at least a page left free next to the program's mappings (so that
 * ours are never adjacent to them: see sys_reserve). */
static void gap_consider(struct gap_pick *g, uintptr_t lo, uintptr_t hi)
{
	if (lo < g->busy_hi && hi > g->busy_lo) { /* the break's room is not free */
		gap_consider(g, lo, g->busy_lo);
		gap_consider(g, g->busy_hi, hi);
		return;
	}
	lo = lo < g->lo ? g->lo : lo > g->lo ? lo + HP_PAGE_SIZE : lo;
	hi = hi > g->hi ? g->hi : hi < g->hi ? hi - HP_PAGE_SIZE : hi;
	lo = (lo + HP_BLOCK_SIZE - 1) & ~(uintptr_t)(HP_BLOCK_SIZE - 1);
	hi &= ~(uintptr_t)(HP_BLOCK_SIZE - 1);
	if (hi <= lo || hi - lo < g->min)
		return;
	if (!g->best_hi ||
	    hp_distance(lo, hi, g->near) < hp_distance(g->best_lo, g->best_hi, g->near)) {
		g->best_lo = lo;
		g->best_hi = hi;
	}
}

static uintptr_t hex_field(const char **s, const char *end)
{
	uintptr_t v = 0;
	for (; *s < end; (*s)++) {
		unsigned c = (unsigned char)**s | 0x20;
		if (c - '0' < 10)
			v = v << 4 | (c - '0');
		else if (c - 'a' < 6)
			v = v << 4 | (c - 'a' + 10);
		else
			break;
	}
	return v;
}

/* One line of /proc/self/maps: "start-end perms offset dev inode [path]". */
static void gap_line(struct gap_pick *g, const char *line, size_t len, uintptr_t *free_from)
{
	const char *s = line, *end = line + len;
	uintptr_t start = hex_field(&s, end);
	if (s == end || *s++ != '-')
		return;
	uintptr_t stop = hex_field(&s, end);
	if (stop <= start)
		return;
	if (memmem(line, len, "[stack]", 7)) /* it grows down into the gap below */
		start = start > GROW_ROOM ? start - GROW_ROOM : 0;
	if (start > *free_from)
		gap_consider(g, *free_from, start);
	if (stop > *free_from)
		*free_from = stop;
}

/*
 * Walk /proc/self/maps, read in pieces (no malloc), and pick the free gap
 * of [g->lo, g->hi) nearest g->near.  The program break and the stack count
 * as mapped GROW_ROOM beyond where they are now.  0 or errno.
 */
static int gap_find(struct gap_pick *g)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	uintptr_t brk_now = (uintptr_t)syscall(SYS_brk, 0);
	g->busy_lo = brk_now;
	g->busy_hi = brk_now ? brk_now + GROW_ROOM : 0;
	uintptr_t free_from = 0; /* the end of the mappings seen so far */
	char buf[4096];
	size_t have = 0;
	bool eof = false, skipping = false; /* skipping the rest of an overlong line */
	int err = 0;
	while (!eof || have) {
		if (!eof) {
			ssize_t n = read(fd, buf + have, sizeof(buf) - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = errno;
				break;
			}
			eof = n == 0;
			have += (size_t)n;
		}
		char *nl = memchr(buf, '\n', have);
		if (!nl && !eof && have < sizeof(buf))
			continue;
		size_t len = nl ? (size_t)(nl - buf) + 1 : have;
		if (!skipping)
			gap_line(g, buf, len, &free_from);
		skipping = !nl && !eof; /* a line longer than buf: the rest is its path */
		memmove(buf, buf + len, have - len);
		have -= len;
	}
	close(fd);
	if (!err)
		gap_consider(g, free_from, g->hi);
	return err;
}

/* The whole slot if nothing is mapped there, else its free gap nearest @near. */
static int os_reserve_in(uintptr_t slot, size_t size, uintptr_t near, size_t min, uintptr_t *lo,
			 uintptr_t *hi)
{
	if (slot + size > USER_TOP)
		return EEXIST;
	int err = reserve_at(slot, size);
	if (!err) {
		*lo = slot;
		*hi = slot + size;
		return 0;
	}
	if (err != EEXIST || min >= size)
		return err;
	struct gap_pick g = {.lo = slot, .hi = slot + size, .near = near, .min = min};
	err = gap_find(&g);
	if (err)
		return err;
	if (!g.best_hi)
		return EEXIST;
	err = reserve_at(g.best_lo, g.best_hi - g.best_lo);
	if (err)
		return err; /* mapped meanwhile: EEXIST, and the caller tries elsewhere */
	*lo = g.best_lo;
	*hi = g.best_hi;
	return 0;
}

static int os_reserve(size_t size, size_t align, uintptr_t *out)
{
	/* Over-reserve, then cut the unaligned head and tail off. */
	size_t span = size + align;
	char *p = sys_reserve(NULL, span, 0);
	if (p == MAP_FAILED)
		return errno;
	uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)p;
	size_t tail = span - head - size;
	if (head)
		sys_munmap(p, head);
	if (tail)
		sys_munmap((char *)start + size, tail);
	*out = start;
	return 0;
}

static int os_release(uintptr_t addr, size_t size)
{
	return sys_munmap((void *)addr, size) ? errno : 0;
}

static int bind_node(void *addr, size_t size, int node);
static int os_cpu_node(void);

/* Put the reservation back over a range whose commit failed half-way. */
static void os_rereserve(uintptr_t addr, size_t size)
{
	sys_reserve((void *)addr, size, MAP_FIXED);
}

static int os_commit(uintptr_t addr, size_t size, int prot, int backend, int fill, int node)
{
	void *want = (void *)addr;
	void *p;
	int err;

	switch (backend) {
	case HP_BACKEND_HUGETLB_2M:
	case HP_BACKEND_HUGETLB_1G: {
		int huge = backend == HP_BACKEND_HUGETLB_1G ? MAP_HUGE_1GB : MAP_HUGE_2MB;
		int first = fill >= 0 ? PROT_READ | PROT_WRITE : prot;
		p = sys_mmap(want, size, first, ANON | MAP_FIXED | MAP_HUGETLB | huge, -1, 0);
		if (p == MAP_FAILED) {
			err = errno;
			os_rereserve(addr, size);
			return err;
		}
		if ((err = bind_node(want, size, node))) {
			os_rereserve(addr, size);
			return err;
		}
		if (fill >= 0) {
			memset(want, fill, size);
			if (prot != first && sys_mprotect(want, size, prot)) {
				err = errno;
				os_rereserve(addr, size);
				return err;
			}
		}
		return 0;
	}
	case HP_BACKEND_THP:
		if (prot == PROT_NONE) {
			/* Lazily: eligible for huge pages, no memory until made
			 * accessible and touched (the pool's reservations). */
			p = sys_mmap(want, size, PROT_NONE, ANON | MAP_FIXED | MAP_NORESERVE, -1,
				     0);
			if (p == MAP_FAILED)
				return errno;
			err = sys_madvise(want, size, MADV_HUGEPAGE) ? errno
								     : bind_node(want, size, node);
			if (err)
				os_rereserve(addr, size);
			return err;
		}
		p = sys_mmap(want, size, PROT_READ | PROT_WRITE, ANON | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return errno;
		if ((err = bind_node(want, size, node))) {
			os_rereserve(addr, size);
			return err;
		}
		if (sys_madvise(want, size, MADV_HUGEPAGE) ||
		    sys_madvise(want, size, MADV_POPULATE_WRITE) ||
		    (fill >= 0 && !memset(want, fill, size)) ||
		    (prot != (PROT_READ | PROT_WRITE) && sys_mprotect(want, size, prot))) {
			err = errno;
			os_rereserve(addr, size);
			return err;
		}
		return 0;
	default: /* HP_BACKEND_SMALL */
		p = sys_mmap(want, size, fill >= 0 ? PROT_READ | PROT_WRITE : prot,
			     ANON | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return errno;
		sys_madvise(want, size, MADV_NOHUGEPAGE);
		if ((err = bind_node(want, size, node))) {
			os_rereserve(addr, size);
			return err;
		}
		if (fill >= 0) {
			memset(want, fill, size);
			if (prot != (PROT_READ | PROT_WRITE) && sys_mprotect(want, size, prot)) {
				err = errno;
				os_rereserve(addr, size);
				return err;
			}
		}
		return 0;
	}
}

static int os_shm_create(size_t size, int backend, int *out)
{
	unsigned flags = MFD_CLOEXEC | MFD_EXEC;
	if (hp_backend_is_hugetlb(backend))
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	int fd = memfd_create("hugeperm", flags);
	if (fd < 0 && errno == EINVAL) /* before 6.3: no MFD_EXEC, and no need */
		fd = memfd_create("hugeperm", flags & ~MFD_EXEC);
	if (fd < 0)
		return errno;
	if (ftruncate(fd, (off_t)size)) {
		int err = errno;
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

static void os_shm_close(int fd)
{
	close(fd);
}

static int os_shm_commit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size, int prot,
			 int backend, int fill, int node)
{
	bool thp = backend == HP_BACKEND_THP;
	int err = 0;
	void *w = sys_mmap((void *)alias, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			   (off_t)off);
	if (w == MAP_FAILED)
		return errno;
	/* The policy of a shared mapping is the file's (shmem keeps it per
	 * range), so binding the alias view places the pages for both. */
	if ((err = bind_node(w, size, node)))
		goto undo;
	if ((thp && sys_madvise(w, size, MADV_HUGEPAGE)) ||
	    sys_madvise(w, size, MADV_POPULATE_WRITE)) {
		err = errno;
		goto undo;
	}
	if (fill >= 0)
		memset(w, fill, size);
	void *x = sys_mmap((void *)addr, size, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)off);
	if (x == MAP_FAILED) {
		err = errno; /* EPERM/EACCES under vm.memfd_noexec=2 */
		goto undo;
	}
	if (thp)
		sys_madvise(x, size, MADV_HUGEPAGE);
	return 0;
undo:
	os_rereserve(alias, size);
	os_rereserve(addr, size);
	fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size);
	return err;
}

static int os_shm_copy(int fd, size_t off, uintptr_t from, size_t size)
{
	void *p = sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		return errno;
	memcpy(p, (const void *)from, size);
	sys_munmap(p, size);
	return 0;
}

static int os_shm_remap(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size, int prot,
			int backend)
{
	void *w = sys_mmap((void *)alias, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			   (off_t)off);
	if (w == MAP_FAILED)
		return errno;
	void *x = sys_mmap((void *)addr, size, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)off);
	if (x == MAP_FAILED)
		return errno;
	if (backend == HP_BACKEND_THP) {
		sys_madvise(w, size, MADV_HUGEPAGE);
		sys_madvise(x, size, MADV_HUGEPAGE);
	}
	return 0;
}

static int os_shm_decommit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size)
{
	void *p = sys_reserve((void *)addr, size, MAP_FIXED);
	void *q = sys_reserve((void *)alias, size, MAP_FIXED);
	if (p == MAP_FAILED || q == MAP_FAILED)
		return errno;
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size)
		       ? errno
		       : 0;
}

/* /proc/self/mem and /proc/self/pagemap, each opened once.  Such an fd is
 * bound to the mm of the process that opened it: a child after fork()
 * must not inherit it, or its writes would land in the parent. */
static int proc_fds[2] = {-1, -1};
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
enum { PROC_MEM, PROC_PAGEMAP };

static void proc_forget(void)
{
	for (int i = 0; i < 2; i++) {
		if (proc_fds[i] >= 0)
			close(proc_fds[i]);
		proc_fds[i] = -1;
	}
}

static void proc_atfork(void)
{
	pthread_atfork(NULL, NULL, proc_forget);
}

/* The fd of /proc/self/<which>, or -errno. */
static int proc_fd(int which)
{
	static const char *const path[2] = {"/proc/self/mem", "/proc/self/pagemap"};
	static const int flags[2] = {O_RDWR | O_CLOEXEC, O_RDONLY | O_CLOEXEC};
	pthread_once(&proc_once, proc_atfork);
	int fd = __atomic_load_n(&proc_fds[which], __ATOMIC_ACQUIRE);
	if (fd >= 0)
		return fd;
	int nfd = open(path[which], flags[which]);
	if (nfd < 0)
		return -errno;
	int expect = -1;
	if (__atomic_compare_exchange_n(&proc_fds[which], &expect, nfd, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return nfd;
	close(nfd);
	return expect;
}

/* Is [addr, addr+size) mapped with huge entries (PMD-mapped) right now?
 * The kernel's khugepaged may have collapsed a block we left 4K-mapped. */
static int os_huge_mapped(uintptr_t addr, size_t size, bool *huge)
{
	int fd = proc_fd(PROC_PAGEMAP);
	if (fd < 0)
		return -fd;
	struct pm_page_region r[4] = {0};
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = addr,
		.end = addr + size,
		.vec = (uintptr_t)r,
		.vec_len = 4,
		.category_mask = PM_PAGE_IS_HUGE,
		.return_mask = PM_PAGE_IS_HUGE,
	};
	long n = ioctl(fd, PM_PAGEMAP_SCAN, &arg);
	if (n < 0)
		return errno; /* before Linux 6.7: EINVAL or ENOTTY */
	*huge = n == 1 && r[0].start == addr && r[0].end == addr + size;
	return 0;
}

/* pwrite to /proc/self/mem goes through the kernel's FOLL_FORCE path: it
 * writes read-only private pages without changing the mapping (no split of
 * a huge block, measured), at ~1.7 us per call. */
static int os_mem_write(uintptr_t dst, const void *src, size_t size)
{
	int fd = proc_fd(PROC_MEM);
	if (fd < 0)
		return -fd;
	const char *s = src;
	while (size > 0) {
		ssize_t n = pwrite(fd, s, size, (off_t)dst);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		s += n;
		dst += (uintptr_t)n;
		size -= (size_t)n;
	}
	return 0;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE  103
#endif

static int os_guard(uintptr_t addr, size_t size, bool install)
{
	return sys_madvise((void *)addr, size, install ? MADV_GUARD_INSTALL : MADV_GUARD_REMOVE)
		       ? errno
		       : 0;
}

static int os_decommit(uintptr_t addr, size_t size)
{
	void *p = sys_reserve((void *)addr, size, MAP_FIXED);
	return p == MAP_FAILED ? errno : 0;
}

static int os_discard(uintptr_t addr, size_t size)
{
	return sys_madvise((void *)addr, size, MADV_DONTNEED) ? errno : 0;
}

static int os_populate(uintptr_t addr, size_t size)
{
	return sys_madvise((void *)addr, size, MADV_POPULATE_WRITE) ? errno : 0;
}

static int os_protect(uintptr_t addr, size_t size, int prot)
{
	return sys_mprotect((void *)addr, size, prot) ? errno : 0;
}

static int os_collapse(uintptr_t addr, size_t size)
{
	return sys_madvise((void *)addr, size, MADV_COLLAPSE) ? errno : 0;
}

static int os_name(uintptr_t addr, size_t size, const char *name)
{
	return prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, size, (unsigned long)name) ? errno : 0;
}

static uint64_t os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void os_store(uintptr_t dst, const void *src, int byte, size_t size)
{
	if (src)
		memcpy((void *)dst, src, size);
	else
		memset((void *)dst, byte, size);
}

static void *os_meta_alloc(size_t size)
{
	void *p = sys_mmap(NULL, size, PROT_READ | PROT_WRITE, ANON, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Wait until every RCU reader that may have seen an unpublished chunk is
 * done (membarrier(2) inside liburcu-bp). */
static void os_synchronize(void)
{
	urcu_bp_synchronize_rcu();
}

static void os_meta_free(void *p, size_t size)
{
	sys_munmap(p, size);
}

const struct hp_os hp_os_linux = {
	.reserve = os_reserve,
	.reserve_in = os_reserve_in,
	.release = os_release,
	.commit = os_commit,
	.decommit = os_decommit,
	.discard = os_discard,
	.populate = os_populate,
	.protect = os_protect,
	.collapse = os_collapse,
	.name = os_name,
	.shm_create = os_shm_create,
	.shm_close = os_shm_close,
	.shm_commit = os_shm_commit,
	.shm_decommit = os_shm_decommit,
	.shm_copy = os_shm_copy,
	.shm_remap = os_shm_remap,
	.guard = os_guard,
	.mem_write = os_mem_write,
	.store = os_store,
	.now_ns = os_now_ns,
	.meta_alloc = os_meta_alloc,
	.meta_free = os_meta_free,
	.synchronize = os_synchronize,
	.huge_mapped = os_huge_mapped,
	.cpu_node = os_cpu_node,
};

/* ---------------------------------------------------------------------
 * Probing: what the machine offers, read once.
 * ------------------------------------------------------------------- */

/* Read a small file into @buf (NUL-terminated); bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

static long read_long(const char *path)
{
	char buf[64];
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

/* Free hugetlb pages of one size that a new mapping could still take. */
static long hugetlb_available(const char *dir)
{
	char path[128];
	size_t n = strlen(dir);
	memcpy(path, dir, n);
	strcpy(path + n, "/free_hugepages");
	long free = read_long(path);
	if (free < 0)
		return -1;
	strcpy(path + n, "/resv_hugepages");
	long resv = read_long(path);
	return free - (resv > 0 ? resv : 0);
}

/* NUMA topology, read once by the probe: which node each CPU is on. */
#define MAX_CPUS 1024
static uint8_t cpu_node_tab[MAX_CPUS];

/* Parse a sysfs list ("0-3,8,10-11"); call @fn for each number. */
static void parse_list(const char *s, void (*fn)(long v, void *arg), void *arg)
{
	while (*s >= '0' && *s <= '9') {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		for (long v = lo; v <= hi && v - lo < 4096; v++)
			fn(v, arg);
		s = *end == ',' ? end + 1 : end;
	}
}

static void note_node(long v, void *arg)
{
	int *max = arg;
	if (v + 1 > *max && v < 1024)
		*max = (int)v + 1;
}

struct cpu_arg {
	int node;
};

static void note_cpu(long v, void *arg)
{
	if (v >= 0 && v < MAX_CPUS)
		cpu_node_tab[v] = (uint8_t)((struct cpu_arg *)arg)->node;
}

static void probe_numa(struct hp_probe *pr)
{
	char buf[512], path[96];
	pr->nnodes = 1;
	if (read_small("/sys/devices/system/node/has_memory", buf, sizeof(buf)) > 0) {
		int max = 0;
		parse_list(buf, note_node, &max);
		if (max > 0)
			pr->nnodes = max;
	}
	for (int n = 0; n < pr->nnodes && n < 256; n++) {
		struct hp_buf b = {path, sizeof(path) - 1, 0};
		hp_buf_str(&b, "/sys/devices/system/node/node");
		hp_buf_u64(&b, (uint64_t)n);
		size_t at = b.len;
		hp_buf_str(&b, "/cpulist");
		path[b.len] = 0;
		struct cpu_arg ca = {n};
		if (read_small(path, buf, sizeof(buf)) > 0)
			parse_list(buf, note_cpu, &ca);
		if (n < HP_MAX_NODES) {
			b.len = at;
			hp_buf_str(&b, "/hugepages/hugepages-2048kB");
			path[b.len] = 0;
			pr->node_hugetlb_2m_free[n] = hugetlb_available(path);
		}
	}
}

/* The node of the CPU we run on (sched_getcpu: the vDSO, no system call
 * on x86_64), from the table the probe built. */
static int os_cpu_node(void)
{
	int cpu = sched_getcpu();
	return cpu >= 0 && cpu < MAX_CPUS ? cpu_node_tab[cpu] : 0;
}

/* Prefer node @node for the pages of [addr, addr+size) faulted from now on
 * (MPOL_PREFERRED: another node if it has none; hugetlb takes the page
 * from that node's pool).  -1: leave the kernel's default policy. */
static int bind_node(void *addr, size_t size, int node)
{
	if (node < 0)
		return 0;
	unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
	mask[node / (8 * sizeof(unsigned long))] |= 1UL << (node % (8 * sizeof(unsigned long)));
	return mbind(addr, size, MPOL_PREFERRED, mask, 1024, 0) ? errno : 0;
}

void hp_os_probe(struct hp_probe *pr)
{
	char buf[128];

	memset(pr, 0, sizeof(*pr));
	for (int n = 0; n < HP_MAX_NODES; n++)
		pr->node_hugetlb_2m_free[n] = -1;
	probe_numa(pr);
	pr->hugetlb_2m_free = hugetlb_available("/sys/kernel/mm/hugepages/hugepages-2048kB");
	pr->hugetlb_1g_free = hugetlb_available("/sys/kernel/mm/hugepages/hugepages-1048576kB");
	pr->memfd_noexec = read_long("/proc/sys/vm/memfd_noexec");

	strcpy(pr->thp_mode, "absent");
	if (read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) > 0) {
		char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
		if (l && r && (size_t)(r - l - 1) < sizeof(pr->thp_mode)) {
			memcpy(pr->thp_mode, l + 1, r - l - 1);
			pr->thp_mode[r - l - 1] = 0;
		}
		pr->thp = !strcmp(pr->thp_mode, "always") || !strcmp(pr->thp_mode, "madvise");
	}

	/* MADV_COLLAPSE and VMA names: try them on a scratch block.  An
	 * unknown advice and a range that cannot collapse both give EINVAL,
	 * so the probe uses a populated, aligned THP block that can. */
	uintptr_t blk;
	if (pr->thp && os_reserve(HP_BLOCK_SIZE, HP_BLOCK_SIZE, &blk) == 0) {
		void *p = sys_mmap((void *)blk, HP_BLOCK_SIZE, PROT_READ | PROT_WRITE,
				   ANON | MAP_FIXED, -1, 0);
		if (p != MAP_FAILED) {
			sys_madvise(p, HP_BLOCK_SIZE, MADV_HUGEPAGE);
			*(volatile char *)p = 1;
			pr->collapse = sys_madvise(p, HP_BLOCK_SIZE, MADV_COLLAPSE) == 0;
			pr->vma_names = os_name(blk, HP_BLOCK_SIZE, "hugeperm:probe") == 0;
		}
		sys_munmap((void *)blk, HP_BLOCK_SIZE);
	}
}

void hp_os_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

int hp_os_create_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

void hp_os_close(int fd)
{
	close(fd);
}

uint64_t hp_os_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t hp_os_tid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

void hp_os_die(const char *msg)
{
	hp_os_write_all(2, "hugeperm: ", 10);
	hp_os_write_all(2, msg, strlen(msg));
	hp_os_write_all(2, "\n", 1);
	abort();
}

int hp_os_page_size_ok(void)
{
	return sysconf(_SC_PAGESIZE) == (long)HP_PAGE_SIZE;
}

void hp_os_cond_wait_ns(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t t = (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec += (time_t)(t / 1000000000u);
	ts.tv_nsec = (long)(t % 1000000000u);
	pthread_cond_timedwait(cond, lock, &ts);
}
