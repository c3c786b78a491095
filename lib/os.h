/* SPDX-License-Identifier: MIT */
/*
 * os.h - the OS contract: every system call libhugeperm makes goes through
 * struct hp_os, so that unit tests (tests/fake_os.c) and the simulator
 * (sim/) can drive all of the policy code with fakes and a fake clock.
 *
 * The OS layer is os.c (mappings, aliases, /proc/self/mem and pagemap, the
 * small hooks), os_maps.c (reserving near a hint: the /proc/self/maps walk)
 * and os_probe.c (what the machine offers, NUMA topology).  They are the
 * only files that make system calls; os_sys.h is shared by them alone.
 *
 * Errors, once for every hook: a hook that returns int returns 0 or the
 * errno captured right after the failing call (never -1, never -errno),
 * and leaves the range as it was where the kernel allows (a failed commit
 * puts the reservation back).  Hooks that return void cannot fail in a way
 * the caller could act on.  Nothing here calls malloc or stdio, so the
 * preload can use it before anything is set up.
 */
#ifndef HP_OS_H
#define HP_OS_H

#include <signal.h>

#include "types.h"

struct hp_os {
	/* --- address space: reservations (PROT_NONE, no memory) --- */

	/* Reserve @size bytes of address space aligned to @align, PROT_NONE,
	 * wherever the kernel has room.  ENOMEM. */
	int (*reserve)(size_t size, size_t align, uintptr_t *out);
	/* Reserve [@slot, @slot+@size) if nothing is mapped there; else the
	 * free part of it nearest @near, whole blocks and at least @min bytes,
	 * as [*lo, *hi).  EEXIST when there is none (or it was mapped meanwhile);
	 * ENOMEM. */
	int (*reserve_in)(uintptr_t slot, size_t size, uintptr_t near, size_t min, uintptr_t *lo,
			  uintptr_t *hi);
	/* munmap: ENOMEM (a split past vm.max_map_count), EINVAL. */
	int (*release)(uintptr_t addr, size_t size);

	/* --- memory behind a reservation --- */

	/* Back [addr, addr+size) with memory of @backend, protection @prot,
	 * each byte set to @fill (-1: left zero), preferably on NUMA node
	 * @node (-1: no policy: the kernel's default).  Replaces the
	 * reservation there.  THP is populated (MADV_POPULATE_WRITE: huge
	 * pages where the kernel has them); hugetlb and small pages are
	 * faulted in by their first touch, at once if @fill says so.
	 * PROT_NONE on THP or small pages is not populated (a lazy block): the
	 * range may take huge pages, but takes no memory until it is made
	 * accessible and touched.  ENOMEM (a dry hugetlb pool,
	 * no memory, vm.max_map_count), EAGAIN, EINVAL, EFAULT/EIO (populate,
	 * mbind); the reservation is put back. */
	int (*commit)(uintptr_t addr, size_t size, int prot, int backend, int fill, int node);
	/* Give the memory back; the range becomes a reservation again.
	 * ENOMEM (vm.max_map_count): nothing changed. */
	int (*decommit)(uintptr_t addr, size_t size);
	/* Drop the pages' memory (MADV_DONTNEED): they read as zero after,
	 * the mapping and its protection stay.  ENOMEM, EINVAL, EAGAIN. */
	int (*discard)(uintptr_t addr, size_t size);
	/* Fault in [addr, addr+size) for writing (MADV_POPULATE_WRITE).
	 * ENOMEM, EFAULT, EINTR, EHWPOISON. */
	int (*populate)(uintptr_t addr, size_t size);
	/* mprotect: ENOMEM (vm.max_map_count), EACCES, EINVAL; nothing
	 * changed. */
	int (*protect)(uintptr_t addr, size_t size, int prot);
	/* MADV_COLLAPSE: EAGAIN transient, ENOMEM/EBUSY no huge page now,
	 * EINVAL never for this range (collapse.c acts on each). */
	int (*collapse)(uintptr_t addr, size_t size);
	/* Name the range in /proc/self/maps (PR_SET_VMA_ANON_NAME).  EINVAL
	 * (no CONFIG_ANON_VMA_NAME), ENOMEM; the caller goes on unnamed. */
	int (*name)(uintptr_t addr, size_t size, const char *name);
	/* Install (or remove) guard pages: MADV_GUARD_INSTALL, Linux 6.13+
	 * (EINVAL before); ENOMEM, EAGAIN. */
	int (*guard)(uintptr_t addr, size_t size, bool install);
	/* Is the range PMD-mapped now (PAGEMAP_SCAN)?  0 with *huge; ENOTTY
	 * or EINVAL before Linux 6.7, EFAULT. */
	int (*huge_mapped)(uintptr_t addr, size_t size, bool *huge);
	/* Which 2 MiB blocks of [addr, addr + size) (block-aligned, at most
	 * 512 blocks) hold a page, present or swapped, not the zero page
	 * (PAGEMAP_SCAN): bit i of @map[i / 64] for block i.  0 with @map;
	 * EINVAL for a range not so; ENOTTY or EINVAL before Linux 6.7,
	 * EFAULT; what opening /proc/self/pagemap gives (EACCES, EMFILE). */
	int (*held)(uintptr_t addr, size_t size, uint64_t map[8]);
	/* Ask for huge pages in the range (MADV_HUGEPAGE, which MADV_COLLAPSE
	 * needs in a process that switched THP off but for advised ranges)
	 * or against them (MADV_NOHUGEPAGE: faults take small pages).
	 * EINVAL (no THP), ENOMEM, EAGAIN; the advice stays as it was. */
	int (*advise_huge)(uintptr_t addr, size_t size, bool huge);

	/* --- aliases: executable memory with a writable second view --- */

	/* A memfd of @size for aliased blocks (hugetlb 2 MiB pages if
	 * @hugetlb, else shmem), in *fd; closed with close.  EMFILE, ENFILE,
	 * ENOMEM, EINVAL; EPERM/EACCES when executable memfds are refused. */
	int (*alias_create)(size_t size, bool hugetlb, int *fd);
	/* Map [off, off+size) of @fd at @alias (RW) and at @addr (@prot),
	 * populated, each byte set to @fill.  Replaces the reservations.
	 * EPERM/EACCES when executable memfds are refused (memfd_noexec=2),
	 * ENOMEM (a dry hugetlb pool), EFAULT; the reservations are put back. */
	int (*alias_commit)(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			    int prot, int backend, int fill, int node);
	/* Both views back to reservations, the file's pages freed.  On
	 * error (ENOMEM) both views are as they were; a hole punch that
	 * fails is no error (the pages stay in the file for the next commit). */
	int (*alias_decommit)(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size);
	/* Copy @size bytes from @from into [off, off+size) of @fd.  ENOMEM
	 * (a hugetlb pool too small for the copy), ENOSPC. */
	int (*alias_copy)(int fd, size_t off, uintptr_t from, size_t size);
	/* Map [off, off+size) of @fd again at @alias (RW) and @addr (@prot),
	 * replacing what is there, without populating.  ENOMEM. */
	int (*alias_remap)(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			   int prot, int backend);

	/* --- the library's own stores --- */

	/* Stores into block memory (hp_write's copy, trap and poison fills):
	 * memcpy from @src, or memset to @byte when @src is NULL.  The
	 * simulator's model has no memory and stores nothing. */
	void (*store)(uintptr_t dst, const void *src, int byte, size_t size);
	/* Write through /proc/self/mem: no protection changes.  EIO, EFAULT,
	 * ENOMEM, EACCES (no /proc, or ptrace refused). */
	int (*mem_write)(uintptr_t dst, const void *src, size_t size);

	/* --- metadata, time, threads --- */

	/* Metadata memory (zeroed); never malloc, so the preload can use it.
	 * NULL when there is none (the only hook that does not return an errno). */
	void *(*meta_alloc)(size_t size);
	void (*meta_free)(void *p, size_t size);
	/* An RCU grace period: lock-free readers of the chunk map are done. */
	void (*synchronize)(void);
	/* The clock of every deadline (collapse delays, backoff, traces):
	 * monotonic nanoseconds. */
	uint64_t (*now_ns)(void);
	/* Wait on @cond (with @lock held) until it is signalled or now_ns()
	 * reaches @deadline_ns: the waits sleep on the clock the deadlines use. */
	void (*cond_wait_until)(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t deadline_ns);
	/* The wall clock, nanoseconds since the epoch (a trace's start). */
	uint64_t (*realtime_ns)(void);
	/* The caller's kernel thread id. */
	uint32_t (*tid)(void);
	/* The NUMA node of the CPU the caller runs on (0 without NUMA). */
	int (*cpu_node)(void);

	/* --- the machine, and files --- */

	/* What the machine offers (hugetlb pools, THP, MADV_COLLAPSE, VMA
	 * names, memfd_noexec, NUMA nodes, the page size).  Cannot fail: what
	 * it cannot read it reports as absent. */
	void (*probe)(struct hp_probe *pr);
	/* Read the hugetlb pools' free pages into @pr again (hugetlb_2m_free,
	 * hugetlb_1g_free, node_hugetlb_2m_free): an administrator, or a test,
	 * resizes them while we run.  Cheap (a few sysfs reads); cannot fail. */
	void (*probe_pools)(struct hp_probe *pr);
	/* Write @len bytes to @fd, retrying short writes; EIO if the file
	 * takes no more. */
	int (*write_all)(int fd, const void *buf, size_t len);
	/* Create (or truncate) @path for writing; the fd in *fd. */
	int (*create_file)(const char *path, int *fd);
	/* Close an fd this layer gave (create_file, alias_create). */
	void (*close)(int fd);
};

/* The real one: Linux system calls. */
extern const struct hp_os hp_os_linux;

/* The signal mask of a background thread of ours (the purge thread, the
 * preload's collapser): every signal blocked, they are the program's
 * threads' to take, but the synchronous ones (SIGSYS, SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE), which blocked make the kernel kill the process instead
 * (a SIGSYS from a seccomp filter that traps madvise). */
void hp_background_sigset(sigset_t *set);

/*
 * Print "hugeperm: <msg>" to stderr and abort.  A plain function, not a
 * hook: it must work before any arena (and so any hp_os) exists (a bad
 * page size, a failed pthread_key_create) and on paths that hold no arena
 * (the checked mode's aborts); and it does not return, so a fake could
 * only do the same.
 */
__attribute__((noreturn)) void hp_os_die(const char *msg);

#endif /* HP_OS_H */
