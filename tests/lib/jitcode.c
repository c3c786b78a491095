/* SPDX-License-Identifier: MIT */
/*
 * jitcode.c - code written and run the way the tests' JITs do it: a few
 * instructions put at an address, called; memory read behind the
 * program's back (/proc/self/mem); a memfd.  See jitcode.h.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jitcode.h"
#include "preloaded.h"

/* A memfd of @len bytes, or -1. */
int memfd(size_t len)
{
	int fd = memfd_create("jitcode", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (off_t)len)) {
		close(fd);
		return -1;
	}
	return fd;
}

bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

/* Put "mov eax, imm32; ret" at @p. */
void put_code(unsigned char *p, int value)
{
	unsigned char insn[6] = {0xb8, 0, 0, 0, 0, 0xc3};
	memcpy(insn + 1, &value, 4);
	memcpy(p, insn, sizeof(insn));
}

int call_at(const unsigned char *code)
{
	return ((int (*)(void))(const void *)code)();
}

/* Put "mov eax, imm32; ret" at @write_at and call @code. */
int run_code(unsigned char *code, unsigned char *write_at, int value)
{
	put_code(write_at, value);
	return call_at(code);
}

/* Do @n bytes at @p all read @byte through /proc/self/mem (whatever
 * their protection, and whether the program may touch them or not)? */
bool proc_mem_all(const void *p, size_t n, unsigned char byte)
{
	unsigned char buf[4096];
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	bool same = fd >= 0;
	for (size_t off = 0; same && off < n; off += sizeof(buf)) {
		size_t k = n - off < sizeof(buf) ? n - off : sizeof(buf);
		same = pread(fd, buf, k, (off_t)((uintptr_t)p + off)) == (ssize_t)k;
		for (size_t i = 0; same && i < k; i++)
			same = buf[i] == byte;
	}
	if (fd >= 0)
		close(fd);
	return same;
}

int call_in_child(const unsigned char *p)
{
	int st = 0;
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit none = {0, 0};
		setrlimit(RLIMIT_CORE, &none);
		_exit(call_at(p) & 0x7f);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return INT_MIN;
	return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

unsigned char *lj_area_mapped(size_t len)
{
	void *hint = (void *)(((uintptr_t)(void *)&lj_area_mapped & ~(64 * KB - 1)) + 64 * MB);
	unsigned char *a = mmap(hint, len, RW, ANON, -1, 0);
	return a != MAP_FAILED ? a : NULL;
}
