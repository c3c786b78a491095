/* SPDX-License-Identifier: MIT */
/*
 * sysfault.c - see sysfault.h.  The filter lets a trapped system call
 * through only when it is made by sysfault_raw (the instruction pointer
 * the kernel reports lies inside it), which is how the handler makes the
 * calls its policy does not fail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* REG_* of ucontext */
#endif
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "sysfault.h"

int (*sysfault_policy)(long nr, const long args[6]);
volatile bool sysfault_armed;
volatile long sysfault_trapped, sysfault_failed;

/* long sysfault_raw(long nr, long a0, ..., long a5): the one place the
 * filter lets the trapped calls through. */
long sysfault_raw(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
extern const char sysfault_raw_end[];
__asm__(".text\n"
	".globl sysfault_raw\n"
	".type sysfault_raw, @function\n"
	"sysfault_raw:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	mov 8(%rsp), %r9\n"
	"	syscall\n"
	".globl sysfault_raw_end\n"
	"sysfault_raw_end:\n"
	"	ret\n"
	".size sysfault_raw, . - sysfault_raw\n");

static const long trapped[] = {SYS_mmap,	 SYS_munmap,	SYS_mprotect, SYS_madvise,
			       SYS_memfd_create, SYS_fallocate, SYS_pwrite64, SYS_ioctl};
#define NTRAPPED (sizeof(trapped) / sizeof(trapped[0]))

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	greg_t *r = uc->uc_mcontext.gregs;
	long args[6] = {r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8], r[REG_R9]};
	long nr = si->si_syscall;
	int err = 0;
	if (sysfault_armed) {
		sysfault_trapped++;
		if (sysfault_policy)
			err = sysfault_policy(nr, args);
	}
	if (err) {
		sysfault_failed++;
		r[REG_RAX] = -err;
		return;
	}
	r[REG_RAX] = sysfault_raw(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
}

int sysfault_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	if (sigaction(SIGSYS, &sa, NULL))
		return errno;

	uintptr_t lo = (uintptr_t)sysfault_raw, hi = (uintptr_t)sysfault_raw_end;
	if (lo >> 32 != hi >> 32)
		return EINVAL; /* the stub straddles a 4 GiB line: cannot happen in practice */
	struct sock_filter f[64];
	unsigned n = 0, ip_check;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	/* nr in trapped[]: on to the IP check, else allow. */
	for (unsigned i = 0; i < NTRAPPED; i++)
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (uint32_t)trapped[i], (uint8_t)(NTRAPPED - i),
						      0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	ip_check = n;
	f[n++] = (struct sock_filter)BPF_STMT(
		BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4);
	f[n++] =
		(struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(lo >> 32), 0, 4);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, instruction_pointer));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)lo, 0, 2);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)hi, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	(void)ip_check;
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		return errno;
	return 0;
}
