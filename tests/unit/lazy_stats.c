/* SPDX-License-Identifier: MIT */
/*
 * lazy_stats.t - the statistics on fake OS hooks: address space handed out
 * without memory (a PROT_NONE allocation's lazy blocks, as a JIT's code
 * range or another runtime's reservation starts) is lazy_blocks and
 * lazy_bytes, never committed, used, cached or free bytes; once a page is
 * made accessible its block holds memory and counts as before; callers
 * built before the lazy counters get the counters they know.
 */
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "fake_os.h"
#include "tap.h"

#define RW  (PROT_READ | PROT_WRITE)
#define MiB (1024UL * 1024)

static struct hp_stats snap(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	ok(hp_arena_stats_get(a, &st) == 0, "stats read");
	return st;
}

static bool identity(const struct hp_stats *st)
{
	return st->free_bytes + st->cached_bytes + st->used_bytes == st->committed_bytes;
}

int main(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_OFF);
	char *r = hp_arena_alloc(a, 4 * MiB, PROT_NONE);
	ok(r != NULL, "a 4 MiB PROT_NONE reservation");
	struct hp_stats st = snap(a);
	is(st.lazy_blocks, 2, "its two blocks are lazy");
	is(st.lazy_bytes, 4 * MiB, "its 4 MiB are lazy bytes");
	is(st.committed_bytes, 0, "nothing committed");
	is(st.used_bytes, 0, "nothing used");
	is(st.cls[PROT_NONE].used_bytes, 0, "class none: nothing used");
	is(st.free_bytes, 0, "nothing free");
	is(st.blocks, 2, "the blocks are counted as blocks");
	ok(st.coverage == 1.0, "coverage 1.0: nothing used");

	ok(hp_arena_protect(a, r, 4096, RW) == 0, "its first page made RW");
	st = snap(a);
	is(st.lazy_blocks, 1, "one block left lazy");
	is(st.lazy_bytes, 2 * MiB, "... 2 MiB lazy bytes");
	is(st.committed_bytes, 2 * MiB, "the first block holds memory: committed");
	is(st.used_bytes, 2 * MiB, "... its pages used (one RW, the rest NONE)");
	is(st.cls[RW].used_bytes, 4096, "class rw: the page");
	ok(identity(&st), "free + cached + used == committed");

	ok(hp_arena_protect(a, r, 4096, PROT_NONE) == 0, "the page made NONE again");
	char *d = hp_arena_alloc(a, 8192, RW);
	ok(d != NULL, "an 8 KiB RW allocation beside it");
	st = snap(a);
	is(st.lazy_blocks, 2, "the reservation is lazy again");
	is(st.lazy_bytes, 4 * MiB, "... 4 MiB lazy");
	is(st.committed_bytes, 2 * MiB, "the RW block alone is committed");
	is(st.used_bytes, 8192, "the RW pages alone are used");
	ok(identity(&st), "free + cached + used == committed");

	ok(hp_arena_free(a, r) == 0, "the reservation freed");
	st = snap(a);
	is(st.lazy_bytes, 0, "no lazy bytes handed out");
	is(st.used_bytes, 8192, "the RW pages used");
	ok(identity(&st), "free + cached + used == committed");
	fake_check_arena(a, "after the free");

	/* A caller built before the lazy counters: its struct ends earlier. */
	struct hp_stats old;
	ok(fake_stats_sized(a, offsetof(struct hp_stats, lazy_blocks), &old),
	   "an older caller's stats: nothing written past its size");
	is(old.used_bytes, 8192, "... its used bytes");

	char buf[8192];
	int fds[2];
	ok(pipe(fds) == 0, "a pipe");
	hp_arena_stats_print(a, fds[1], HP_STATS_JSON);
	close(fds[1]);
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = 0;
	ok(strstr(buf, "\"lazy_blocks\":") && strstr(buf, "\"lazy_bytes\":0"),
	   "JSON: lazy_blocks, lazy_bytes");
	fake_arena_free(a);
	return tap_done();
}
