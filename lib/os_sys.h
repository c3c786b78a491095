/* SPDX-License-Identifier: MIT */
/*
 * os_sys.h - shared by the files of the OS layer (os.c, os_maps.c,
 * os_probe.c) and by nothing else: the raw system-call wrappers, the flags
 * older headers lack, and the functions one OS file lends another.  The
 * rest of the library reaches the OS only through struct hp_os (os.h).
 */
#ifndef HP_OS_SYS_H
#define HP_OS_SYS_H

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_LINUX_MMAN_H
#include <linux/mman.h>
#endif

#include "internal.h"

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
static inline void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return r == -1 ? MAP_FAILED : (void *)r;
}

static inline int sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static inline int sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static inline int sys_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}
#endif

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/*
 * A reservation: PROT_NONE, MAP_NORESERVE, and MADV_DONTDUMP (there is
 * nothing in it to dump).  The last is hugeperm's mark: on a kernel without
 * CONFIG_ANON_VMA_NAME, `hugeperm stats` tells our chunks from the program's
 * mappings by the "nr dd" VmFlags of their reserved parts.
 */
static inline void *sys_reserve(void *addr, size_t size, int flags)
{
	void *p = sys_mmap(addr, size, PROT_NONE, ANON | MAP_NORESERVE | flags, -1, 0);
	if (p != MAP_FAILED)
		sys_madvise(p, size, MADV_DONTDUMP);
	return p;
}

/* os.c */
int hp_sys_reserve(size_t size, size_t align, uintptr_t *out);
int hp_sys_name(uintptr_t addr, size_t size, const char *name);
/* The probe found PR_SET_VMA_ANON_NAME missing: hp_sys_name() says EINVAL
 * from now on without asking the kernel. */
void hp_sys_name_off(void);
int hp_sys_write_all(int fd, const void *buf, size_t len);
/* os_maps.c: struct hp_os's reserve_in. */
int hp_sys_reserve_in(uintptr_t slot, size_t size, uintptr_t near, size_t min, uintptr_t *lo,
		      uintptr_t *hi);
/* os_probe.c: struct hp_os's probe and cpu_node. */
void hp_sys_probe(struct hp_probe *pr);
void hp_sys_probe_pools(struct hp_probe *pr);
int hp_sys_cpu_node(void);

#endif /* HP_OS_SYS_H */
