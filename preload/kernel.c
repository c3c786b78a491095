/* SPDX-License-Identifier: MIT */
/*
 * kernel.c - what the preload stands on: the kernel's own calls, the
 * per-thread flag that sends calls made inside a hook straight to them, the
 * one lock, and a way to say something on stderr without stdio.
 *
 * The kernel's calls are the next definition of mmap and friends (another
 * preload, or libc), found with dlsym; before dlsym has run (a library
 * constructor that maps memory first), the system call itself.
 *
 * The lock is taken without touching the signal mask (two system calls a
 * served call would pay): see lock() for what a signal handler gets.  Fork
 * takes it first, then the library's (serve.c registers the handlers after
 * the library's own).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "os.h" /* hp_os_linux: the library's clock */
#include "preload.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; not in Debian 12's headers */
#endif

__thread int in_hook __attribute__((tls_model("initial-exec")));

static pthread_mutex_t preload_lock = PTHREAD_MUTEX_INITIALIZER;

static void *(*next_mmap)(void *, size_t, int, int, int, off_t);
static int (*next_munmap)(void *, size_t);
static int (*next_mprotect)(void *, size_t, int);
static int (*next_madvise)(void *, size_t, int);
static void *(*next_mremap)(void *, size_t, size_t, int, ...);
static void (*next_exit)(int);

void kernel_resolve(void)
{
	next_mmap = dlsym(RTLD_NEXT, "mmap");
	next_munmap = dlsym(RTLD_NEXT, "munmap");
	next_mprotect = dlsym(RTLD_NEXT, "mprotect");
	next_madvise = dlsym(RTLD_NEXT, "madvise");
	next_mremap = dlsym(RTLD_NEXT, "mremap");
	next_exit = dlsym(RTLD_NEXT, "_exit");
}

void *k_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (next_mmap)
		return next_mmap(addr, len, prot, flags, fd, off);
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return r == -1 ? MAP_FAILED : (void *)r;
}

int k_munmap(void *addr, size_t len)
{
	return next_munmap ? next_munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
}

int k_mprotect(void *addr, size_t len, int prot)
{
	return next_mprotect ? next_mprotect(addr, len, prot)
			     : (int)syscall(SYS_mprotect, addr, len, prot);
}

int k_madvise(void *addr, size_t len, int advice)
{
	return next_madvise ? next_madvise(addr, len, advice)
			    : (int)syscall(SYS_madvise, addr, len, advice);
}

int k_collapse(void *addr)
{
	uint64_t t0 = hp_os_linux.now_ns();
	int rc = k_madvise(addr, BLOCK, MADV_COLLAPSE), err = errno;
	__atomic_fetch_add(&preload_counts.shared_collapse_ns, hp_os_linux.now_ns() - t0,
			   __ATOMIC_RELAXED);
	errno = err;
	return rc;
}

void *k_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *to)
{
	if (next_mremap)
		return next_mremap(old, oldlen, newlen, flags, to);
	long r = syscall(SYS_mremap, old, oldlen, newlen, flags, to);
	return r == -1 ? MAP_FAILED : (void *)r;
}

void k_exit(int status)
{
	if (next_exit)
		next_exit(status);
	for (;;) /* what libc's _exit does */
		syscall(SYS_exit_group, status);
}

int k_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	return (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey);
}

int k_mincore(void *addr, size_t len, unsigned char *vec)
{
	return (int)syscall(SYS_mincore, addr, len, vec);
}

int k_fstatfs(int fd, struct statfs *buf)
{
	return (int)syscall(SYS_fstatfs, fd, buf);
}

int k_open(const char *path, int flags)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0);
}

long k_read(int fd, void *buf, size_t len)
{
	return syscall(SYS_read, fd, buf, len);
}

long k_pread(int fd, void *buf, size_t len, off_t off)
{
	return syscall(SYS_pread64, fd, buf, len, off);
}

int k_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

int k_fstat(int fd, struct stat *buf)
{
	return (int)syscall(SYS_fstat, fd, buf);
}

int k_fcntl(int fd, int cmd, long arg)
{
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int k_ioctl(int fd, unsigned long request, void *arg)
{
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

long k_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

int k_ftruncate(int fd, off_t len)
{
	return (int)syscall(SYS_ftruncate, fd, len);
}

off_t k_lseek(int fd, off_t off, int whence)
{
	return (off_t)syscall(SYS_lseek, fd, off, whence);
}

int k_fallocate(int fd, int mode, off_t off, off_t len)
{
	return (int)syscall(SYS_fallocate, fd, mode, off, len);
}

int k_memfd_create(const char *name, unsigned flags)
{
	return (int)syscall(SYS_memfd_create, name, flags);
}

long k_getdents64(int fd, void *buf, size_t len)
{
	return syscall(SYS_getdents64, fd, buf, len);
}

long k_getpid(void)
{
	return syscall(SYS_getpid);
}

int k_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)
{
	return (int)syscall(SYS_prctl, option, a2, a3, a4, a5);
}

/* The program break, unchanged (brk(0) asks without moving it). */
uintptr_t k_brk_now(void)
{
	return (uintptr_t)syscall(SYS_brk, 0);
}

/*
 * The lock: a plain mutex, signals left as they are.  in_hook is raised
 * before the mutex is taken and lowered after it is released, so that a
 * signal handler that runs on this thread anywhere in between finds it set
 * and never waits for a lock its own thread may hold.  What such a handler
 * gets (hooks.c):
 *   - calls on memory that is not served (its own mappings, a new mmap
 *     without MAP_FIXED over ours) go straight to the kernel, as they
 *     always did from inside a hook: correct, and nothing of ours is
 *     touched;
 *   - calls on served memory (mprotect, munmap, mremap, MAP_FIXED over it)
 *     fail with ENOMEM (madvise: EAGAIN), errors the kernel gives for a
 *     transient lack of resources, and change nothing: the region table
 *     is half-updated by the code the handler interrupted.  They cannot
 *     wait (that code runs again only when the handler returns).
 * A handler that interrupts code outside the preload, or runs on another
 * thread, takes the lock as any caller does.  The price: a handler that
 * parks its thread while that thread holds the lock (a stop-the-world GC)
 * holds up other threads' served calls until it returns (docs/preload.md).
 */
void lock(void)
{
	in_hook++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&preload_lock);
}

void unlock(void)
{
	pthread_mutex_unlock(&preload_lock);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	in_hook--;
}

/* Another lock of the preload's (shared.c's kind), taken the same way. */
void hook_lock(pthread_mutex_t *m)
{
	in_hook++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(m);
}

void hook_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	in_hook--;
}

/* Across fork, in_hook stays raised on the forking thread (the parent's and
 * the child's), so that a handler there cannot wait for the lock either. */
void lock_for_fork(void)
{
	lock();
}

void unlock_after_fork(void)
{
	unlock();
}

void hp_preload_write(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void hp_preload_say(const char *msg)
{
	hp_preload_write(2, msg, strlen(msg));
}
