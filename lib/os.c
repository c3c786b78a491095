/* SPDX-License-Identifier: MIT */
/*
 * os.c - the OS layer's mappings: struct hp_os for Linux (hp_os_linux).
 *
 * With os_maps.c (reserving near a hint) and os_probe.c (what the machine
 * offers) this is the only code that makes system calls.  The contract of
 * each hook, and the errno convention they all follow, is in os.h.
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
 * MADV_DONTDUMP (sys_reserve, os_sys.h).  A lazy block (class NONE on THP
 * or small pages) is committed without memory.
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
#include <signal.h>
#include <numaif.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <urcu/urcu-bp.h>

#include "os_sys.h"
#include "pagemap_scan.h"

int hp_sys_reserve(size_t size, size_t align, uintptr_t *out)
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
			/* A lazy block: eligible for huge pages, no memory until
			 * made accessible and touched. */
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

static int os_alias_create(size_t size, bool hugetlb, int *out)
{
	unsigned flags = MFD_CLOEXEC | MFD_EXEC;
	if (hugetlb)
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

static int os_alias_commit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			   int prot, int backend, int fill, int node)
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

static int os_alias_copy(int fd, size_t off, uintptr_t from, size_t size)
{
	void *p = sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		return errno;
	memcpy(p, (const void *)from, size);
	sys_munmap(p, size);
	return 0;
}

static int os_alias_remap(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			  int prot, int backend)
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

/*
 * All or nothing, as far as the block goes: the alias view first (RW, so
 * it can be mapped back), then the executable view; if that one cannot
 * become a reservation, the alias view is mapped onto the file again and
 * nothing has changed.  Once both views are reservations the block is
 * decommitted whatever the hole punch says: a page the punch could not
 * free stays in the file, and the next commit of that range reuses it
 * (alias_commit fills it).
 */
static int os_alias_decommit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size)
{
	if (sys_reserve((void *)alias, size, MAP_FIXED) == MAP_FAILED)
		return errno;
	if (sys_reserve((void *)addr, size, MAP_FIXED) == MAP_FAILED) {
		int err = errno;
		sys_mmap((void *)alias, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			 (off_t)off);
		return err;
	}
	fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size);
	return 0;
}

/* /proc/self/mem and /proc/self/pagemap, each opened once.  Such an fd is
 * bound to the mm of the process that opened it: a child after fork()
 * must not inherit it, or its writes would land in the parent.  fork()
 * runs the atfork handler; a child made without it (syscall(SYS_fork),
 * clone(): Chromium's zygote) is told by proc_mark, below. */
static int proc_fds[2] = {-1, -1};
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
enum { PROC_MEM, PROC_PAGEMAP };
/* How a child is told, without a system call on every use (PAGEMAP_SCAN
 * runs before partial protection changes): a byte that is 1 in the
 * process that opened the fds and 0 in any child (MADV_WIPEONFORK, Linux
 * 4.14); where that page cannot be had, the pid they were opened in. */
static unsigned char *proc_mark;
static pid_t proc_pid;

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
	void *p = sys_mmap(NULL, HP_PAGE_SIZE, PROT_READ | PROT_WRITE, ANON, -1, 0);
	if (p != MAP_FAILED && sys_madvise(p, HP_PAGE_SIZE, MADV_WIPEONFORK) == 0) {
		*(unsigned char *)p = 1;
		__atomic_store_n(&proc_mark, (unsigned char *)p, __ATOMIC_RELEASE);
	} else {
		if (p != MAP_FAILED)
			sys_munmap(p, HP_PAGE_SIZE);
		__atomic_store_n(&proc_pid, getpid(), __ATOMIC_RELEASE);
	}
	pthread_atfork(NULL, NULL, proc_forget);
}

/* In a child (forked with or without the atfork handler), the fds are
 * its parent's: forgotten, once. */
static void proc_child_check(void)
{
	if (proc_mark) {
		unsigned char zero = 0;
		if (!__atomic_load_n(proc_mark, __ATOMIC_ACQUIRE) &&
		    __atomic_compare_exchange_n(proc_mark, &zero, 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			proc_forget();
		return;
	}
	pid_t me = getpid(), was = __atomic_load_n(&proc_pid, __ATOMIC_ACQUIRE);
	if (was != me && __atomic_compare_exchange_n(&proc_pid, &was, me, false, __ATOMIC_ACQ_REL,
						     __ATOMIC_ACQUIRE))
		proc_forget();
}

/* The fd of /proc/self/<which> in *fd.  0 or errno. */
static int proc_fd(int which, int *fd)
{
	static const char *const path[2] = {"/proc/self/mem", "/proc/self/pagemap"};
	static const int flags[2] = {O_RDWR | O_CLOEXEC, O_RDONLY | O_CLOEXEC};
	pthread_once(&proc_once, proc_atfork);
	proc_child_check();
	*fd = __atomic_load_n(&proc_fds[which], __ATOMIC_ACQUIRE);
	if (*fd >= 0)
		return 0;
	int nfd = open(path[which], flags[which]);
	if (nfd < 0)
		return errno;
	int expect = -1;
	if (__atomic_compare_exchange_n(&proc_fds[which], &expect, nfd, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		*fd = nfd;
		return 0;
	}
	close(nfd); /* another thread opened it first */
	*fd = expect;
	return 0;
}

/* Is [addr, addr+size) mapped with huge entries (PMD-mapped) right now?
 * The kernel's khugepaged may have collapsed a block we left 4K-mapped. */
static int os_huge_mapped(uintptr_t addr, size_t size, bool *huge)
{
	int fd;
	int err = proc_fd(PROC_PAGEMAP, &fd);
	if (err)
		return err;
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

/* Which blocks of [addr, addr+size) hold pages (present or swapped)?
 * One ioctl for the range: a 512 MiB code range V8 never touched is a
 * walk of empty page tables, not 256 MADV_DONTNEED calls (held_blocks.c). */
static int os_held(uintptr_t addr, size_t size, uint64_t map[8])
{
	if ((addr | size) & (HP_BLOCK_SIZE - 1) || !size || size > 512 * HP_BLOCK_SIZE)
		return EINVAL; /* map[] holds 512 blocks */
	int fd;
	int err = proc_fd(PROC_PAGEMAP, &fd);
	if (err)
		return err;
	memset(map, 0, 8 * sizeof(map[0]));
	struct pm_page_region r[32];
	for (uintptr_t at = addr; at < addr + size;) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = at,
			.end = addr + size,
			.vec = (uintptr_t)r,
			.vec_len = 32,
			.category_anyof_mask = PM_PAGE_IS_PRESENT | PM_PAGE_IS_SWAPPED,
			.return_mask = PM_PAGE_IS_PRESENT | PM_PAGE_IS_SWAPPED | PM_PAGE_IS_PFNZERO,
		};
		long n = ioctl(fd, PM_PAGEMAP_SCAN, &arg);
		if (n < 0)
			return errno; /* before Linux 6.7: EINVAL or ENOTTY */
		for (long i = 0; i < n; i++) {
			if (r[i].categories & PM_PAGE_IS_PFNZERO)
				continue; /* the zero page: reads zero, nothing to drop */
			for (uintptr_t p = r[i].start & ~(HP_BLOCK_SIZE - 1); p < r[i].end;
			     p += HP_BLOCK_SIZE) {
				size_t k = (p - addr) / HP_BLOCK_SIZE;
				map[k / 64] |= 1ULL << (k % 64);
			}
		}
		if (n < 32 || arg.walk_end <= at)
			break; /* the whole range walked */
		/* The vector filled.  One answer a block is all we need: when
		 * the block the walk stopped in is known to hold a page, go on
		 * at the next one (pages scattered over 512 blocks: at most 512
		 * calls, not one a 32 runs of pages). */
		at = arg.walk_end;
		size_t k = (at - addr) / HP_BLOCK_SIZE;
		if (at < addr + size && (map[k / 64] >> (k % 64) & 1))
			at = (at + HP_BLOCK_SIZE - 1) & ~(uintptr_t)(HP_BLOCK_SIZE - 1);
	}
	return 0;
}

/* pwrite to /proc/self/mem goes through the kernel's FOLL_FORCE path: it
 * writes read-only private pages without changing the mapping (no split of
 * a huge block, measured), at ~1.7 us per call. */
static int os_mem_write(uintptr_t dst, const void *src, size_t size)
{
	int fd;
	int err = proc_fd(PROC_MEM, &fd);
	if (err)
		return err;
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

static int os_advise_huge(uintptr_t addr, size_t size, bool huge)
{
	return sys_madvise((void *)addr, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) ? errno : 0;
}

static int os_protect(uintptr_t addr, size_t size, int prot)
{
	return sys_mprotect((void *)addr, size, prot) ? errno : 0;
}

static int os_collapse(uintptr_t addr, size_t size)
{
	return sys_madvise((void *)addr, size, MADV_COLLAPSE) ? errno : 0;
}

/* Set once the probe's name on a private anonymous block failed: the
 * kernel has no CONFIG_ANON_VMA_NAME, and every later call would fail the
 * same way (one failing prctl a committed block: 512 for BEAM's 1 GiB
 * literal reservation under the preload). */
static bool names_off;

void hp_sys_name_off(void)
{
	__atomic_store_n(&names_off, true, __ATOMIC_RELAXED);
}

int hp_sys_name(uintptr_t addr, size_t size, const char *name)
{
	if (__atomic_load_n(&names_off, __ATOMIC_RELAXED))
		return EINVAL;
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

/* ---------------------------------------------------------------------
 * Probing: what the machine offers, read once.
 * ------------------------------------------------------------------- */

/* Prefer node @node for the pages of [addr, addr+size) faulted from now on
 * (MPOL_PREFERRED: another node if it has none; hugetlb takes the page
 * from that node's pool).  -1: leave the kernel's default policy. */
static int bind_node(void *addr, size_t size, int node)
{
	if (node < 0)
		return 0;
	unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
	mask[node / (8 * sizeof(unsigned long))] |= 1UL << (node % (8 * sizeof(unsigned long)));
	/* The system call, not libnuma's mbind(): linking libnuma for its
	 * wrapper ran libnuma's constructor (a dozen /proc and /sys reads and
	 * three mempolicy calls) in every process the preload was loaded
	 * into.  numaif.h is only the constants. */
	return syscall(SYS_mbind, addr, size, MPOL_PREFERRED, mask, 1024UL, 0U) ? errno : 0;
}

int hp_sys_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int os_create_file(const char *path, int *fd)
{
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return *fd < 0 ? errno : 0;
}

static void os_close(int fd)
{
	close(fd);
}

static uint64_t os_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t os_tid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

void hp_os_die(const char *msg)
{
	hp_sys_write_all(2, "hugeperm: ", 10);
	hp_sys_write_all(2, msg, strlen(msg));
	hp_sys_write_all(2, "\n", 1);
	abort();
}

/* Sleep on CLOCK_MONOTONIC, the clock of os_now_ns. */
static void os_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000u),
		.tv_nsec = (long)(deadline_ns % 1000000000u),
	};
	pthread_cond_clockwait(cond, lock, CLOCK_MONOTONIC, &ts);
}

const struct hp_os hp_os_linux = {
	.reserve = hp_sys_reserve,
	.reserve_in = hp_sys_reserve_in,
	.release = os_release,
	.commit = os_commit,
	.decommit = os_decommit,
	.discard = os_discard,
	.populate = os_populate,
	.protect = os_protect,
	.collapse = os_collapse,
	.name = hp_sys_name,
	.alias_create = os_alias_create,
	.alias_commit = os_alias_commit,
	.alias_decommit = os_alias_decommit,
	.alias_copy = os_alias_copy,
	.alias_remap = os_alias_remap,
	.guard = os_guard,
	.mem_write = os_mem_write,
	.store = os_store,
	.now_ns = os_now_ns,
	.meta_alloc = os_meta_alloc,
	.meta_free = os_meta_free,
	.synchronize = os_synchronize,
	.huge_mapped = os_huge_mapped,
	.held = os_held,
	.advise_huge = os_advise_huge,
	.cpu_node = hp_sys_cpu_node,
	.cond_wait_until = os_cond_wait_until,
	.realtime_ns = os_realtime_ns,
	.tid = os_tid,
	.probe = hp_sys_probe,
	.probe_pools = hp_sys_probe_pools,
	.write_all = hp_sys_write_all,
	.create_file = os_create_file,
	.close = os_close,
};

void hp_background_sigset(sigset_t *set)
{
	static const int sync_signals[] = {SIGSYS, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
	sigfillset(set);
	for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
		sigdelset(set, sync_signals[i]);
}
