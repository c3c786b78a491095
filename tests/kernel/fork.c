/* SPDX-License-Identifier: MIT */
/*
 * fork.t - fork() with hugeperm memory.  Executable blocks are shared
 * memory with an alias: without care a child would patch its parent's code.
 * The child must get code of its own, be able to allocate at once (even
 * when another thread was inside the allocator at fork time), and collapse
 * its copies back to huge mappings.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hugeperm.h"
#include "kernel.h"
#include "tap.h"

#define RX (PROT_READ | PROT_EXEC)

static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
static unsigned char *f;
static atomic_int stop;

static int call(unsigned char *fn)
{
	return ((int (*)(void))(void *)fn)();
}

static void child_patches(void *arg)
{
	alarm(20);
	unsigned char imm = 43;
	int inherited = call(f);
	int rc = hp_write(f + 1, &imm, 1);
	int patched = call(f);
	unsigned char *g = hp_alloc(4096, RX);
	int own = g && hp_write(g, ret42, sizeof(ret42)) == 0 ? call(g) : -1;
	hp_collapse_pending();
	long huge = kernel_huge_pages((uintptr_t)f & ~((2UL << 20) - 1), 2UL << 20);
	printf("inherited %d, patched %d (rc %d), new %d, huge pages %ld", inherited, patched, rc,
	       own, huge);
	exit(inherited == 42 && patched == 43 && own == 42 && huge == 512 ? 0 : 1);
}

static void *churn(void *arg)
{
	while (!atomic_load(&stop)) {
		void *p = hp_alloc(4096 * (1 + rand() % 8), PROT_READ | PROT_WRITE);
		unsigned char *q = hp_alloc(4096, RX);
		hp_write(q, ret42, sizeof(ret42));
		hp_free(p);
		hp_free(q);
		hp_collapse_pending();
	}
	return NULL;
}

static void child_allocates(void *arg)
{
	alarm(20); /* a deadlock ends as SIGALRM, not a hung test */
	for (int i = 0; i < 100; i++) {
		unsigned char *q = hp_alloc(4096, RX);
		if (!q || hp_write(q, ret42, sizeof(ret42)) || call(q) != 42 || hp_free(q))
			exit(1);
	}
	exit(0);
}

/* A child made without fork()'s atfork handlers (syscall(SYS_fork), as
 * Chromium's zygote forks) writes a read-only page with hp_write, which
 * goes through /proc/self/mem: its own, not the fd the parent opened, or
 * the write lands in the parent (main at 1f75cc2).  First, before any
 * thread of ours can hold a lock the child would need. */
static void raw_fork_writes(void)
{
	unsigned char *p = hp_alloc(4096, PROT_READ);
	struct hp_stats st = {.size = sizeof(st)};
	bool parent_ok =
		p && hp_write(p, "A", 1) == 0 && hp_stats_get(&st) == 0 && st.writes_procmem > 0;
	pid_t pid = parent_ok ? (pid_t)syscall(SYS_fork) : -1;
	if (pid == 0) {
		alarm(10);
		_exit(hp_write(p, "B", 1) == 0 && p[0] == 'B' ? 0 : 1);
	}
	int wst = -1;
	bool waited = pid > 0 && waitpid(pid, &wst, 0) == pid;
	ok(parent_ok && waited && WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && p[0] == 'A',
	   "a child forked by syscall(SYS_fork) writes a read-only page through /proc/self/mem: "
	   "its copy reads 'B', the parent's still '%c'",
	   p ? p[0] : '?');
	hp_free(p);
}

int main(void)
{
	char out[512];
	raw_fork_writes();
	f = hp_alloc(4096, RX);
	ok(f && hp_write(f, ret42, sizeof(ret42)) == 0 && call(f) == 42, "parent: a function");
	hp_collapse_pending();

	int st = tap_child(child_patches, NULL, NULL, out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "child: runs inherited code, patches and allocates its own, collapses (%s)", out);
	is(call(f), 42, "parent: the child's patch did not reach the parent's code");
	long huge = kernel_huge_pages((uintptr_t)f & ~((2UL << 20) - 1), 2UL << 20);
	is(huge, 512, "parent: its code is still PMD-mapped");

	/* Fork while another thread is busy inside the allocator. */
	pthread_t t;
	pthread_create(&t, NULL, churn, NULL);
	int fails = 0;
	for (int i = 0; i < 20; i++) {
		st = tap_child(child_allocates, NULL, NULL, out, sizeof(out));
		fails += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	is(fails, 0,
	   "20 forks during allocator churn: every child allocates and runs code at once");
	is(call(f), 42, "parent: unharmed");
	return tap_done();
}
