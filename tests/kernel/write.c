/* SPDX-License-Identifier: MIT */
/*
 * write.t - writing code without flipping permissions, on the real kernel.
 *
 * Functions are emitted with hp_write into RX memory and called; one is
 * patched while another thread calls it; the block stays PMD-mapped and
 * thp_split_pmd does not move; no mapping of ours is ever rwx; a freed RX
 * page reads back as int3.  Both ways are tested: blocks with an alias
 * (shared memory, the default) and without (/proc/self/mem).  The
 * vm.memfd_noexec=2 fallback runs in a child inside its own PID namespace,
 * so the machine's setting is never touched.
 */
#define _GNU_SOURCE /* unshare */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RX (PROT_READ | PROT_EXEC)

/* mov eax, 42 ; ret */
static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
/* int sum(int n): xor eax,eax; test edi,edi; jle done; loop: add eax,edi;
 * dec edi; jnz loop; done: ret */
static const unsigned char sum[] = {0x31, 0xc0, 0x85, 0xff, 0x7e, 0x06, 0x01,
				    0xf8, 0xff, 0xcf, 0x75, 0xfa, 0xc3};

static struct hp_stats stats(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	return st;
}

/* Mappings with w and x at once inside [lo, hi). */
static int rwx_maps(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], perms[8];
	unsigned long s, e;
	int n = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && s < hi && e > lo &&
		    perms[1] == 'w' && perms[2] == 'x')
			n++;
	if (f)
		fclose(f);
	return n;
}

static int (*volatile live_fn)(void);
static atomic_int stop, bad_values;
static atomic_long calls;

static void *caller(void *arg)
{
	while (!atomic_load(&stop)) {
		int v = live_fn();
		if (v != 42 && v != 43)
			atomic_fetch_add(&bad_values, 1);
		atomic_fetch_add(&calls, 1);
	}
	return NULL;
}

/* Emit, call, patch under a running caller, free: for one arena. */
static void exercise(struct hp_arena *a, const char *how, int want_method)
{
	unsigned char *f = hp_arena_alloc(a, 4096, RX);
	unsigned char *g = hp_arena_alloc(a, 4096, RX);
	uintptr_t blk = (uintptr_t)f & ~(HP_BLOCK_SIZE - 1);
	uintptr_t chunk = (uintptr_t)f & ~(HP_CHUNK_SIZE - 1);
	ok(f && g, "%s: two RX pages", how);
	ok(f[0] == 0xcc && f[4095] == 0xcc, "%s: fresh RX memory holds int3 traps", how);
	/* A fresh block is never collapsed on the allocation path: an aliased
	 * one (shmem, small pages under shmem_enabled=never) waits in the
	 * queue; a private one was made huge by its populate fault. */
	ok(hp_arena_collapse_pending(a) >= 0, "%s: the queued collapses run", how);
	is(kernel_huge_pages(blk, HP_BLOCK_SIZE), 512, "%s: the RX block is PMD-mapped", how);

	long split0 = kernel_vmstat("thp_split_pmd");
	struct hp_stats st0 = stats(a);
	is(hp_arena_write(a, f, ret42, sizeof(ret42)), 0, "%s: hp_write mov eax,42; ret", how);
	is(((int (*)(void))(void *)f)(), 42, "%s: calling it returns 42", how);
	is(hp_arena_write(a, g, sum, sizeof(sum)), 0, "%s: hp_write a loop", how);
	is(((int (*)(int))(void *)g)(100), 5050, "%s: sum(100) = 5050", how);
	struct hp_stats st = stats(a);
	uint64_t *got = want_method == 0 ? &st.writes_alias : &st.writes_procmem;
	uint64_t *had = want_method == 0 ? &st0.writes_alias : &st0.writes_procmem;
	is(*got - *had, 2, "%s: both writes went %s", how,
	   want_method == 0 ? "through the alias" : "through /proc/self/mem");
	is(st.writes_flip, 0, "%s: no write flipped a protection", how);
	is(kernel_prot_at((uintptr_t)f), RX, "%s: the page is still r-x", how);

	/* Patch the immediate while another thread calls the function. */
	live_fn = (int (*)(void))(void *)f;
	atomic_store(&stop, 0);
	atomic_store(&calls, 0);
	pthread_t t;
	pthread_create(&t, NULL, caller, NULL);
	while (atomic_load(&calls) == 0)
		;
	unsigned char imm[2] = {0x2b, 0x2a};
	for (int i = 0; i < 2000; i++)
		hp_arena_write(a, f + 1, &imm[i & 1], 1);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	is(atomic_load(&bad_values), 0, "%s: %ld calls during 2000 patches saw only 42 or 43", how,
	   atomic_load(&calls));

	is(kernel_vmstat("thp_split_pmd") - split0, 0, "%s: thp_split_pmd did not move", how);
	is(kernel_huge_pages(blk, HP_BLOCK_SIZE), 512, "%s: still PMD-mapped", how);
	is(rwx_maps(chunk, chunk + HP_CHUNK_SIZE), 0, "%s: no rwx mapping in our chunk", how);

	is(hp_arena_free(a, f), 0, "%s: free", how);
	bool traps = true;
	for (int i = 0; i < 4096; i++)
		traps &= f[i] == 0xcc;
	ok(traps, "%s: the freed RX page reads back as int3", how);
	hp_arena_free(a, g);
}

/* Children that hide /proc or live in a new PID namespace leave with
 * _exit: LeakSanitizer's exit-time scan reads /proc and would fail there. */
static void quit(int code)
{
	fflush(stdout);
	_exit(code);
}

static void noexec_child(void *arg)
{
	/* PID 1 of a new namespace: its memfd_noexec is its own. */
	if (kernel_write_long("/proc/sys/vm/memfd_noexec", 2)) {
		printf("cannot set memfd_noexec here\n");
		quit(3);
	}
	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_THP};
	struct hp_arena *a = hp_arena_create(&cfg);
	unsigned char *f = hp_arena_alloc(a, 4096, RX);
	struct hp_stats st = stats(a);
	int r = f && hp_arena_write(a, f, ret42, sizeof(ret42)) == 0 ? ((int (*)(void))(void *)f)()
								     : -1;
	st = stats(a);
	printf("aliased %lu, writes: procmem %lu flip %lu direct %lu, ret %d",
	       (unsigned long)st.aliased_blocks, (unsigned long)st.writes_procmem,
	       (unsigned long)st.writes_flip, (unsigned long)st.writes_direct, r);
	quit(st.aliased_blocks == 0 && st.writes_procmem == 1 && r == 42 ? 0 : 1);
}

static void fork_in_new_pidns(void *arg)
{
	char out[256];
	if (unshare(CLONE_NEWPID)) {
		printf("unshare: %s\n", strerror(errno));
		quit(3);
	}
	int st = tap_child(noexec_child, NULL, NULL, out, sizeof(out));
	fputs(out, stdout);
	quit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* No alias and no /proc: the last resort, a flip that never makes a page
 * writable and executable at once. */
static void flip_child(void *arg)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("none", "/proc", "tmpfs", 0, NULL)) {
		printf("cannot hide /proc: %s", strerror(errno));
		quit(3);
	}
	struct hp_config cfg = {
		.size = sizeof(cfg), .backend = HP_BACKEND_THP, .flags = HP_ARENA_NO_ALIAS};
	struct hp_arena *a = hp_arena_create(&cfg);
	unsigned char *f = hp_arena_alloc(a, 4096, RX);
	int r = f && hp_arena_write(a, f, ret42, sizeof(ret42)) == 0 ? ((int (*)(void))(void *)f)()
								     : -1;
	struct hp_stats st = stats(a);
	printf("flip %lu procmem %lu ret %d", (unsigned long)st.writes_flip,
	       (unsigned long)st.writes_procmem, r);
	quit(st.writes_flip == 1 && r == 42 ? 0 : 1);
}

static const char *self;

/* Options are read once: the poison test runs this program again. */
static void exec_poison(void *arg)
{
	execl(self, self, "poison-child", (char *)NULL);
	exit(127);
}

static void poison_child(void)
{
	unsigned char *p = hp_alloc(2 * 4096, PROT_READ | PROT_WRITE);
	memset(p, 1, 2 * 4096);
	hp_free(p);
	exit(p[0] == 0xa5 && p[8191] == 0xa5 ? 0 : 1); /* freed, still mapped */
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc == 2 && !strcmp(argv[1], "poison-child"))
		poison_child();
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp || !pr.collapse)
		tap_skip_all("needs THP (madvise) and MADV_COLLAPSE");

	struct hp_config cfg = {.size = sizeof(cfg), .backend = HP_BACKEND_THP};
	struct hp_arena *a = hp_arena_create(&cfg);
	exercise(a, "alias", 0);
	unsigned char *f = hp_arena_alloc(a, 4096, RX);
	unsigned char *w = hp_arena_writable(a, f + 10);
	ok(w && w != f + 10, "hp_writable gives the alias of an RX page");
	is(kernel_prot_at((uintptr_t)w), PROT_READ | PROT_WRITE,
	   "the alias is rw-, never executable");
	memcpy(w - 10, ret42, sizeof(ret42));
	is(((int (*)(void))(void *)f)(), 42, "code written at the alias runs at the RX address");
	is(stats(a).aliased_blocks, 1, "stats: one aliased block");

	/* Bad input. */
	int stack;
	errno = 0;
	ok(hp_arena_write(a, &stack, ret42, 1) == -1 && errno == ENOMEM,
	   "hp_write to foreign memory: ENOMEM");
	errno = 0;
	ok(hp_arena_write(a, f + 4090, ret42, sizeof(ret42) + 4) == -1 && errno == ENOMEM,
	   "hp_write past the allocation: ENOMEM");
	ok(f[4095] == 0xcc, "... and nothing was written");
	errno = 0;
	ok(hp_arena_write(a, f, NULL, 4) == -1 && errno == EINVAL, "hp_write from NULL: EINVAL");
	is(hp_arena_write(a, f, NULL, 0), 0, "hp_write of 0 bytes does nothing");
	errno = 0;
	ok(!hp_arena_writable(a, &stack) && errno == EINVAL,
	   "hp_writable of foreign memory: EINVAL");
	hp_arena_destroy(a);

	cfg.flags = HP_ARENA_NO_ALIAS;
	a = hp_arena_create(&cfg);
	exercise(a, "no alias", 1);
	f = hp_arena_alloc(a, 4096, RX);
	errno = 0;
	ok(!hp_arena_writable(a, f) && errno == EOPNOTSUPP,
	   "hp_writable without an alias: EOPNOTSUPP");
	hp_arena_destroy(a);

	char out[512];
	int st = tap_child(flip_child, NULL, NULL, out, sizeof(out));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		tap_skip(1, "cannot hide /proc in a mount namespace (not root?)");
	else
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "no alias, no /proc: hp_write flips RX -> RW -> RX, never RWX (%s)", out);
	st = tap_child(exec_poison, NULL, "HUGEPERM_POISON=1", out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "HUGEPERM_POISON=1: freed RW pages read 0xa5");

	st = tap_child(fork_in_new_pidns, NULL, NULL, out, sizeof(out));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		tap_skip(1, "cannot set vm.memfd_noexec in a new PID namespace (not root?)");
	else
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "vm.memfd_noexec=2: no alias, hp_write goes through /proc/self/mem (%s)", out);
	return tap_done();
}
