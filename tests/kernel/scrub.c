/* SPDX-License-Identifier: MIT */
/*
 * scrub.t - fresh pages hold nothing of their last owner (issue 15,
 * defects 8, 9 and 10), read from the real memory.
 *
 *   - Fresh executable pages hold int3 (0xcc) on every path that hands
 *     them out: a block re-homed from a data class (no alias: HUGEPERM_ALIAS=0
 *     or HP_ARENA_NO_ALIAS; or any arena when no block can be committed), a
 *     steal at a memory cap, pages that start executable in a data block.
 *   - A PROT_NONE allocation reads as zero once made accessible: not after
 *     its block was emptied by hp_discard and written again, and not when
 *     MADV_DONTNEED failed as its pages were freed.
 *
 * Arenas whose system calls fail on demand are the real OS with one hook
 * wrapped (the bytes are real, only the failure is made up).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

/* Bytes of [p, p + n) that are not @byte. */
static size_t not_byte(const void *p, size_t n, int byte)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((const unsigned char *)p)[i] != (unsigned char)byte;
	return k;
}

static struct hp_arena *thp_arena(unsigned flags, size_t max_bytes)
{
	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.flags = flags,
				.max_bytes = max_bytes};
	struct hp_arena *a = hp_arena_create(&cfg);
	if (!a) {
		printf("Bail out! hp_arena_create: %s\n", strerror(errno));
		exit(1);
	}
	return a;
}

/* A whole block of RW pages full of 'A', freed: an EMPTY block of home RW
 * whose memory holds the old bytes. */
static void dirty_block(struct hp_arena *a)
{
	char *d = hp_arena_alloc(a, HP_BLOCK_SIZE, RW);
	memset(d, 'A', HP_BLOCK_SIZE);
	hp_arena_free(a, d);
}

/* --- the real OS with commit and discard failing on demand --- */
static struct hp_os faulty;
static int fail_commit, fail_discard; /* errno to fail with, 0: pass */

static int faulty_commit(uintptr_t addr, size_t size, int prot, int backend, int fill, int node)
{
	return fail_commit ? fail_commit
			   : hp_os_linux.commit(addr, size, prot, backend, fill, node);
}

static int faulty_alias_commit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			       int prot, int backend, int fill, int node)
{
	return fail_commit ? fail_commit
			   : hp_os_linux.alias_commit(addr, alias, fd, off, size, prot, backend,
						      fill, node);
}

static int faulty_discard(uintptr_t addr, size_t size)
{
	return fail_discard ? fail_discard : hp_os_linux.discard(addr, size);
}

static struct hp_arena *faulty_arena(void)
{
	faulty = hp_os_linux;
	faulty.commit = faulty_commit;
	faulty.alias_commit = faulty_alias_commit;
	faulty.discard = faulty_discard;
	struct hp_arena *a = calloc(1, sizeof(*a));
	hp_arena_init(a, &faulty, HP_BACKEND_THP, HP_BACKEND_THP, &hp_opt);
	a->alias = true;
	return a;
}

static void faulty_free(struct hp_arena *a)
{
	hp_arena_teardown(a);
	free(a);
}

/* --- defect 8: executable pages --- */

static void rehome_no_alias(void)
{
	struct hp_arena *a = thp_arena(HP_ARENA_NO_ALIAS, 0);
	dirty_block(a);
	unsigned char *x = hp_arena_alloc(a, 4096, RX);
	ok(x && hp_block_of((uintptr_t)x)->home == RX, "no alias: RX page from the re-homed block");
	is(x ? not_byte(x, 4096, 0xcc) : 4096, 0,
	   "no alias: the re-homed block's first RX page is all int3 (not the old 'A's)");
	unsigned char *y = hp_arena_alloc(a, 8192, RX);
	is(y ? not_byte(y, 8192, 0xcc) : 8192, 0, "... and so are the next ones");
	hp_arena_destroy(a);
}

static void commit_fails(void)
{
	struct hp_arena *a = faulty_arena();
	dirty_block(a);
	fail_commit = ENOMEM; /* no new block: the free RW block is re-homed */
	unsigned char *x = hp_arena_alloc(a, 4096, RX);
	fail_commit = 0;
	ok(x && !hp_block_of((uintptr_t)x)->aliased,
	   "commit failing: RX page from the free unaliased RW block");
	is(x ? not_byte(x, 4096, 0xcc) : 4096, 0, "... all int3");
	faulty_free(a);
}

static void steal_at_cap(void)
{
	/* One block allowed: an RX page can only be stolen from the RW block. */
	struct hp_arena *a = thp_arena(0, HP_BLOCK_SIZE);
	char *d = hp_arena_alloc(a, 3 * 4096, RW);
	memset(d, 'A', 3 * 4096);
	char *keep = hp_arena_alloc(a, 4096, RW); /* the block stays in use */
	hp_arena_free(a, d);
	struct hp_stats st0 = {.size = sizeof(st0)}, st1 = {.size = sizeof(st1)};
	hp_arena_stats_get(a, &st0);
	unsigned char *x = hp_arena_alloc(a, 3 * 4096, RX);
	hp_arena_stats_get(a, &st1);
	ok(x && st1.steals == st0.steals + 1, "memory cap: the RX pages are a steal");
	is(x ? not_byte(x, 3 * 4096, 0xcc) : 3 * 4096, 0, "... all int3");
	(void)keep;
	hp_arena_destroy(a);
}

static void starts_executable(void)
{
	struct hp_arena *a = thp_arena(0, 0);
	char *d = hp_arena_alloc(a, 3 * 4096, RW);
	memset(d, 'A', 3 * 4096);
	hp_arena_free(a, d);
	unsigned char *x = hp_arena_alloc(a, 3 * 4096, RX | HP_HOME(RW));
	ok(x == (unsigned char *)d, "RX pages placed in a RW block take the freed pages");
	is(x ? not_byte(x, 3 * 4096, 0xcc) : 3 * 4096, 0, "... all int3");
	hp_arena_destroy(a);
}

/* --- defects 9 and 10: PROT_NONE allocations --- */

static void none_after_discard(void)
{
	struct hp_arena *a = thp_arena(0, 0);
	char *r = hp_arena_alloc(a, HP_BLOCK_SIZE, PROT_READ);
	static char page[4096];
	memset(page, 'A', sizeof(page));
	ok(r && hp_arena_discard(a, r, HP_BLOCK_SIZE) == 0, "2 MiB R allocation, all discarded");
	int err = 0;
	for (size_t off = 0; r && off < HP_BLOCK_SIZE; off += 4096)
		err |= hp_arena_write(a, r + off, page, sizeof(page));
	ok(err == 0 && r[12345] == 'A', "... then written full of 'A' by hp_write");
	hp_arena_free(a, r);
	/* Three pages: not from a thread cache, the block's first pages. */
	char *n = hp_arena_alloc(a, 3 * 4096, PROT_NONE);
	ok(n && hp_arena_protect(a, n, 3 * 4096, PROT_READ) == 0,
	   "a PROT_NONE allocation made readable (%s block)", n == r ? "in that" : "another");
	is(n ? not_byte(n, 3 * 4096, 0) : 4096, 0, "... reads as zero");
	hp_arena_destroy(a);
}

static void none_discard_fails(void)
{
	struct hp_arena *a = faulty_arena();
	const size_t size = 3 * 4096; /* not from a thread cache */
	char *n = hp_arena_alloc(a, size, PROT_NONE);
	hp_arena_protect(a, n, size, RW);
	memset(n, 'A', size);
	hp_arena_protect(a, n, size, PROT_NONE);
	fail_discard = EAGAIN;
	int ret = hp_arena_free(a, n);
	fail_discard = 0;
	ok(ret == 0 && kernel_prot_at((uintptr_t)n) == PROT_NONE,
	   "MADV_DONTNEED failing, hp_free succeeds all the same; the kernel has the pages "
	   "PROT_NONE again");
	char *m = hp_arena_alloc(a, size, PROT_NONE);
	ok(m && hp_arena_protect(a, m, size, PROT_READ) == 0,
	   "the next PROT_NONE allocation made readable");
	is(m ? not_byte(m, size, 0) : size, 0, "... reads as zero (it is %s pages)",
	   m == n ? "the freed" : "other");
	faulty_free(a);
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp)
		tap_skip_all("needs THP (madvise)");
	hp_options_init();
	tap_plan(16);
	rehome_no_alias();
	commit_fails();
	steal_at_cap();
	starts_executable();
	none_after_discard();
	none_discard_fails();
	return tap_done();
}
