/* SPDX-License-Identifier: MIT */
/*
 * guard.t - guard pages on the real kernel: touching the page before or
 * after a guarded allocation raises SIGSEGV (checked in children), the
 * guards change no mapping and split nothing, calls that reach a guard
 * fail like any range outside the allocation, and free takes them off.
 * The probes run in forked children: guards must also survive the child's
 * unsharing of executable memory (hp_arena_fork_child).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

/* The probes die of the signal itself: a sanitizer runtime would turn
 * SIGSEGV into its own report and exit(1). */
static void touch(void *addr)
{
	signal(SIGSEGV, SIG_DFL);
	*(volatile char *)addr = 1;
	exit(0);
}

static void peek(void *addr)
{
	signal(SIGSEGV, SIG_DFL);
	(void)*(volatile char *)addr;
	exit(0);
}

/* The signal that ended a child doing fn(addr), 0 if none. */
static int signal_of(void (*fn)(void *), void *addr)
{
	char out[64];
	int st = tap_child(fn, addr, NULL, out, sizeof(out));
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

int main(void)
{
	struct hp_stats st = {.size = sizeof(st)};
	long split0 = kernel_vmstat("thp_split_pmd");

	char *p = hp_alloc_guarded(3 * 4096, RW);
	ok(p != NULL, "a guarded allocation of 3 pages");
	memset(p, 7, 3 * 4096);
	is(hp_usable_size(p), 3 * 4096, "usable size: the 3 pages, guards excluded");
	is(signal_of(touch, p - 4096), SIGSEGV, "writing the page before it: SIGSEGV");
	is(signal_of(peek, p + 3 * 4096), SIGSEGV, "reading the page after it: SIGSEGV");
	is(signal_of(touch, p), 0, "its own first page is fine");
	is(signal_of(touch, p + 3 * 4096 - 1), 0, "and its last byte");
	hp_stats_get(&st);
	is(st.guards_madvise, 2, "two guards, installed with MADV_GUARD_INSTALL");
	is(st.guards_prot, 0, "none as PROT_NONE pages");
	is(kernel_prot_at((uintptr_t)p - 4096), RW, "the guard changed no protection (maps: rw-)");
	is(kernel_huge_pages((uintptr_t)p & ~(HP_BLOCK_SIZE - 1), HP_BLOCK_SIZE), 0,
	   "guarded allocations live in small-page blocks");

	errno = 0;
	ok(hp_protect(p - 4096, 4096, PROT_READ) == -1 && errno == ENOMEM,
	   "hp_protect of the guard: ENOMEM");
	errno = 0;
	ok(hp_protect(p, 4 * 4096, PROT_READ) == -1 && errno == ENOMEM,
	   "hp_protect running into the guard: ENOMEM");
	errno = 0;
	ok(hp_free(p - 4096) == -1 && errno == EINVAL, "hp_free of the guard: EINVAL");
	errno = 0;
	ok(hp_write(p + 3 * 4096 - 2, "abcd", 4) == -1 && errno == ENOMEM,
	   "hp_write running into the guard: ENOMEM");

	/* Executable and guarded: code runs, its neighbours trap. */
	static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
	unsigned char *f = hp_alloc_guarded(4096, RX);
	ok(f && hp_write(f, ret42, sizeof(ret42)) == 0 && ((int (*)(void))(void *)f)() == 42,
	   "a guarded RX function runs");
	is(signal_of(peek, f + 4096), SIGSEGV, "the page after the code: SIGSEGV");

	is(hp_free(p), 0, "free");
	is(signal_of(touch, p - 4096), 0, "the guards are gone with the allocation");
	is(kernel_vmstat("thp_split_pmd") - split0, 0, "no THP split in all of this");
	hp_free(f);
	return tap_done();
}
