/* SPDX-License-Identifier: MIT */
/*
 * held_blocks.t - dropping the memory of a run of whole blocks asks the
 * kernel once which blocks hold pages and drops only those
 * (lib/held_blocks.c), on the real kernel.
 *
 * A 6-block NONE span (lazy: no memory) has pages written in three of its
 * blocks (every other page of the first, 256 runs of pages), which are
 * then made NONE again; in a child whose madvise and PAGEMAP_SCAN calls a
 * seccomp filter counts (tests/lib/sysfault), hp_discard of the whole
 * span makes 3 MADV_DONTNEED calls, not 6, and asks PAGEMAP_SCAN at most
 * twice (one answer a block: not once a 32 runs), and mincore(2) finds
 * no page of the span resident after it; the span reads zero.  Freeing it
 * (its blocks dropped again) makes none.  V8's 512 MiB code range under the
 * preload made 256 such calls at its adoption and 256 at its unmap.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "pagemap_scan.h"
#include "sysfault.h"
#include "tap.h"

#define RW   (PROT_READ | PROT_WRITE)
#define SPAN (6 * HP_BLOCK_SIZE)

static volatile long dontneed, scans;

static int count_dontneed(long nr, const long args[6])
{
	if (nr == SYS_madvise && args[2] == MADV_DONTNEED)
		dontneed++;
	if (nr == SYS_ioctl && (unsigned long)args[1] == (unsigned long)PM_PAGEMAP_SCAN)
		scans++;
	return 0;
}

/* Pages of [p, p + len) resident, by mincore(2); -1 on error. */
static long resident(const void *p, size_t len)
{
	static unsigned char vec[SPAN / HP_PAGE_SIZE];
	if (mincore((void *)p, len, vec))
		return -1;
	long n = 0;
	for (size_t i = 0; i < len / HP_PAGE_SIZE; i++)
		n += vec[i] & 1;
	return n;
}

/* In the child: one line of results, "discard free resident zero scans". */
static int child(int fd)
{
	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.flags = HP_ARENA_NO_ALIAS,
				.purge_ms = HP_PURGE_NEVER}; /* no purge thread under the filter */
	struct hp_arena *a = hp_arena_create(&cfg);
	char *s = a ? hp_arena_alloc(a, SPAN, PROT_NONE) : NULL;
	if (!s || hp_arena_protect(a, s + 2 * HP_BLOCK_SIZE + 8192, 16384, RW) ||
	    hp_arena_protect(a, s + 4 * HP_BLOCK_SIZE, 4096, RW))
		return 2;
	memset(s + 2 * HP_BLOCK_SIZE + 8192, 0x5a, 16384);
	memset(s + 4 * HP_BLOCK_SIZE, 0x5a, 4096);
	/* Not the whole block: a uniform RW lazy block would be populated. */
	if (hp_arena_protect(a, s, HP_BLOCK_SIZE - 4096, RW))
		return 2;
	for (size_t i = 0; i < HP_BLOCK_SIZE - 4096; i += 2 * 4096)
		s[i] = 0x5a;
	if (hp_arena_protect(a, s + 2 * HP_BLOCK_SIZE + 8192, 16384, PROT_NONE) ||
	    hp_arena_protect(a, s + 4 * HP_BLOCK_SIZE, 4096, PROT_NONE) ||
	    hp_arena_protect(a, s, HP_BLOCK_SIZE - 4096, PROT_NONE))
		return 2;
	long before = resident(s, SPAN);
	void *t = hp_arena_alloc(a, 4096, PROT_READ); /* liburcu-bp registers this thread */
	if (!t || hp_arena_free(a, t) || sysfault_install())
		return 3;
	sysfault_policy = count_dontneed;
	sysfault_armed = true;
	int rc = hp_arena_discard(a, s, SPAN);
	sysfault_armed = false;
	long discard = rc ? -1 : dontneed, after = resident(s, SPAN), nscans = scans;
	bool zero = hp_arena_protect(a, s, SPAN, PROT_READ) == 0;
	for (size_t i = 0; zero && i < SPAN; i += 4096)
		zero = s[i] == 0 && s[i + 100] == 0;
	(void)hp_arena_protect(a, s, SPAN, PROT_NONE);
	dontneed = 0;
	sysfault_armed = true;
	rc = hp_arena_free(a, s);
	sysfault_armed = false;
	dprintf(fd, "%ld %ld %ld %ld %d %ld\n", discard, rc ? -1 : dontneed, before, after, zero,
		nscans);
	return 0;
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp || kernel_huge_pages(0, 0) < 0)
		tap_skip_all(
			"no THP, or no PAGEMAP_SCAN (before Linux 6.7): every block is dropped");
	tap_plan(6);
	int pfd[2];
	if (pipe(pfd))
		return 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child(pfd[1]));
	close(pfd[1]);
	char line[128] = "";
	ssize_t n = read(pfd[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = 0;
	int st = -1;
	waitpid(pid, &st, 0);
	long discard = -1, freed = -1, before = -1, after = -1, nscans = -1;
	int zero = 0;
	sscanf(line, "%ld %ld %ld %ld %d %ld", &discard, &freed, &before, &after, &zero, &nscans);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && before >= 5 + 255,
	   "a 6-block NONE span with pages written in 3 blocks (%ld pages resident; status %d)",
	   before, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	is(discard, 3, "hp_discard of the span: MADV_DONTNEED of the 3 blocks with pages only");
	ok(nscans >= 1 && nscans <= 2,
	   "PAGEMAP_SCAN asked %ld times for 256 runs of pages in one block (one answer a block)",
	   nscans);
	is(after, 0, "mincore: no page of the span resident after");
	ok(zero, "the span reads zero");
	is(freed, 0, "freed: its blocks hold nothing, no MADV_DONTNEED");
	return tap_done();
}
