/* SPDX-License-Identifier: MIT */
/*
 * badinput.t - every kind of bad input gets its documented errno and
 * changes nothing (neither our state nor the kernel's); with
 * HUGEPERM_CHECKED=1 it aborts with a message naming call and address.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hugeperm.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

static struct hp_stats before;

static void snap(void)
{
	before.size = sizeof(before);
	hp_stats_get(&before);
}

/* Nothing changed since snap(): same pages, blocks, calls. */
static bool unchanged(void)
{
	struct hp_stats now = {.size = sizeof(now)};
	hp_stats_get(&now);
	return now.used_bytes == before.used_bytes &&
	       now.committed_bytes == before.committed_bytes &&
	       now.mprotect_calls == before.mprotect_calls && now.allocs == before.allocs &&
	       now.frees == before.frees && now.splits == before.splits;
}

#define BAD(expr, err, what)                                                                       \
	do {                                                                                       \
		snap();                                                                            \
		errno = 0;                                                                         \
		long r_ = (long)(expr);                                                            \
		int e_ = errno;                                                                    \
		ok((r_ == -1 || r_ == 0) && e_ == (err) && unchanged(), "%s: %s", what, #err);     \
		if (e_ != (err))                                                                   \
			tap_diag("  errno %d (%s)", e_, strerror(e_));                             \
	} while (0)

/* In a child: run this program again as "checked-child WHICH". */
static const char *self;
static void exec_checked(void *which)
{
	execl(self, self, "checked-child", (const char *)which, (char *)NULL);
	_exit(127);
}

/* The signal that ended "checked-child @which" under HUGEPERM_CHECKED=1. */
static int checked_child(const char *which, char *out, size_t n)
{
	int st = tap_child(exec_checked, (void *)which, "HUGEPERM_CHECKED=1", out, n);
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "checked-child")) {
		char *p = hp_alloc(4096, RW);
		if (!strcmp(argv[2], "double-free")) {
			hp_free(p);
			hp_free(p);
		} else if (!strcmp(argv[2], "rwx")) {
			hp_alloc(4096, RW | PROT_EXEC);
		} else if (!strcmp(argv[2], "destroyed")) {
			struct hp_arena *a = hp_arena_create(NULL);
			hp_arena_destroy(a);
			hp_arena_alloc(a, 4096, RW);
		}
		return 0;
	}

	self = argv[0];
	char *p = hp_alloc(3 * 4096, RW);
	char *q = hp_alloc(4096, RW);
	ok(p && q, "two allocations to misuse");
	int stack;

	BAD(hp_alloc(0, RW), EINVAL, "hp_alloc size 0");
	BAD(hp_alloc((size_t)1 << 31, RW), ENOMEM, "hp_alloc over 1 GiB");
	BAD(hp_alloc(SIZE_MAX, RW), ENOMEM, "hp_alloc SIZE_MAX (would overflow rounding)");
	BAD(hp_alloc(4096, 0x10), EINVAL, "hp_alloc unknown protection bit");
	BAD(hp_alloc(4096, RW | PROT_EXEC), EACCES, "hp_alloc RWX without opt-in");
	BAD(hp_alloc(4096, RW | HP_HOME(RW | PROT_EXEC)), EACCES,
	    "hp_alloc RWX home without opt-in");
	BAD(hp_free(&stack), EINVAL, "hp_free of a foreign (stack) pointer");
	char *heap = malloc(64);
	BAD(hp_free(heap), EINVAL, "hp_free of a malloc pointer");
	free(heap);
	BAD(hp_free(p + 4096), EINVAL, "hp_free of an interior pointer");
	BAD(hp_free(p + 1), EINVAL, "hp_free of an unaligned pointer");
	BAD(hp_protect(p, 4 * 4096, PROT_READ), ENOMEM, "hp_protect past the allocation's end");
	BAD(hp_protect(p + 2 * 4096, 2 * 4096, PROT_READ), ENOMEM,
	    "hp_protect of a range crossing into the next allocation");
	BAD(hp_protect(&stack, 4096, PROT_READ), EINVAL,
	    "hp_protect of an unaligned foreign pointer");
	BAD(hp_protect((void *)((uintptr_t)&stack & ~4095UL), 4096, PROT_READ), ENOMEM,
	    "hp_protect of foreign memory");
	BAD(hp_protect(p, 0, PROT_READ), EINVAL, "hp_protect size 0");
	BAD(hp_protect(p, SIZE_MAX, PROT_READ), ENOMEM, "hp_protect overflowing size");
	BAD(hp_protect(p, 4096, 0x40), EINVAL, "hp_protect unknown bit");
	BAD(hp_protect(p, 4096, RX | HP_HOME(RX)), EINVAL, "hp_protect does not take HP_HOME");
	BAD(hp_protect(p, 4096, RW | PROT_EXEC), EACCES, "hp_protect RWX without opt-in");
	is(kernel_prot_at((uintptr_t)p), RW, "the kernel still has the pages RW");
	p[0] = 1; /* and writable: a failed call changed nothing */

	ok(hp_free(q) == 0, "free q");
	BAD(hp_free(q), EINVAL, "double free");
	ok(hp_free(NULL) == 0, "hp_free(NULL) is a no-op");
	is(hp_usable_size(p), 3 * 4096, "usable size of p");
	is(hp_usable_size(p + 4096), 0, "usable size of an interior pointer is 0");
	is(hp_usable_size(q), 0, "usable size of a freed pointer is 0");
	struct hp_stats small = {.size = 8};
	ok(hp_stats_get(&small) == -1 && errno == EINVAL, "hp_stats_get with a short size: EINVAL");
	ok(hp_stats_get(NULL) == -1 && errno == EINVAL, "hp_stats_get(NULL): EINVAL");
	struct hp_config cfg = {.size = sizeof(cfg), .backend = 99};
	ok(!hp_arena_create(&cfg) && errno == EINVAL, "hp_arena_create with a bad backend: EINVAL");
	ok(hp_arena_destroy(NULL) == -1 && errno == EINVAL, "hp_arena_destroy(NULL): EINVAL");

	/* An arena destroyed, then used: each call says EINVAL, even after a
	 * new arena was made (which must not take the old one's place). */
	struct hp_arena *ar = hp_arena_create(NULL);
	char *ap = ar ? hp_arena_alloc(ar, 3 * 4096, RW) : NULL;
	ok(ap && hp_arena_destroy(ar) == 0, "an arena destroyed with an allocation live");
	BAD(hp_arena_destroy(ar), EINVAL, "hp_arena_destroy again");
	struct hp_arena *ar2 = hp_arena_create(NULL);
	ok(ar2 && ar2 != ar, "a new arena is not where the destroyed one was");
	BAD(hp_arena_alloc(ar, 4096, RW) ? 0 : -1, EINVAL, "hp_arena_alloc after destroy");
	BAD(hp_arena_alloc_guarded(ar, 4096, RW) ? 0 : -1, EINVAL,
	    "hp_arena_alloc_guarded after destroy");
	BAD(hp_arena_free(ar, ap), EINVAL, "hp_arena_free after destroy");
	BAD(hp_arena_protect(ar, ap, 4096, PROT_READ), EINVAL, "hp_arena_protect after destroy");
	BAD(hp_arena_discard(ar, ap, 4096), EINVAL, "hp_arena_discard after destroy");
	BAD(hp_arena_write(ar, ap, "x", 1), EINVAL, "hp_arena_write after destroy");
	BAD(hp_arena_writable(ar, ap) ? 0 : -1, EINVAL, "hp_arena_writable after destroy");
	BAD(hp_arena_collapse_pending(ar), EINVAL, "hp_arena_collapse_pending after destroy");
	BAD(hp_arena_trim(ar), EINVAL, "hp_arena_trim after destroy");
	struct hp_stats ast = {.size = sizeof(ast)};
	BAD(hp_arena_stats_get(ar, &ast), EINVAL, "hp_arena_stats_get after destroy");
	BAD(hp_arena_destroy(ar), EINVAL, "hp_arena_destroy after a new arena was made");
	ok(hp_arena_destroy(ar2) == 0, "the new arena is destroyed normally");
	/* The pointer's memory was given back with its arena. */
	is(kernel_prot_at((uintptr_t)ap), -1, "the destroyed arena's memory is unmapped");

	/* Checked mode: abort with a message. */
	char out[1024];
	int sig = checked_child("double-free", out, sizeof(out));
	is(sig, SIGABRT, "HUGEPERM_CHECKED=1: a double free aborts");
	ok(strstr(out, "hp_free(0x") && strstr(out, "not the start of a live allocation"),
	   "naming the call, the address and the reason: %s", out);
	sig = checked_child("rwx", out, sizeof(out));
	is(sig, SIGABRT, "HUGEPERM_CHECKED=1: RWX without opt-in aborts");
	ok(strstr(out, "hp_alloc") && strstr(out, "HUGEPERM_ALLOW_RWX"), "saying how to opt in: %s",
	   out);
	sig = checked_child("destroyed", out, sizeof(out));
	is(sig, SIGABRT, "HUGEPERM_CHECKED=1: using a destroyed arena aborts");
	ok(strstr(out, "hp_alloc(0x") && strstr(out, "destroyed"), "saying so: %s", out);
	return tap_done();
}
