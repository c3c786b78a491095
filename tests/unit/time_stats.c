/* SPDX-License-Identifier: MIT */
/*
 * time_stats.t - what fresh memory and collapses cost in time, on fake OS
 * hooks whose calls move a fake clock on: fresh_blocks counts the blocks
 * the kernel gave memory to (a populated commit, a lazy block's populate
 * before its collapse when the kernel says the block had no page), fresh_ns
 * the time of those calls, collapse_ns the time of every MADV_COLLAPSE
 * attempt, refused ones too; a lazy commit, a failed one, an unfilled one
 * on small pages, a populate of a block the program touched first or of
 * one populated before (a retry after a back-off) count nothing; a caller
 * built before these counters gets none of them.
 */
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "fake_os.h"
#include "tap.h"

#define RW  (PROT_READ | PROT_WRITE)
#define MiB (1024UL * 1024)
#define MS  1000000ULL

static struct hp_stats snap(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	ok(hp_arena_stats_get(a, &st) == 0, "stats read");
	return st;
}

int main(void)
{
	fake_reset();
	fake.commit_cost_ns = 3 * MS;
	fake.populate_cost_ns = 5 * MS;
	fake.collapse_cost_ns = 7 * MS;
	fake.held_answer = true; /* PAGEMAP_SCAN says which blocks hold pages */
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);

	struct hp_stats st = snap(a);
	ok(st.fresh_blocks == 0 && st.fresh_ns == 0 && st.collapse_ns == 0, "a new arena: none");

	char *d = hp_arena_alloc(a, 4096, RW);
	st = snap(a);
	ok(d != NULL, "a 4 KiB RW allocation");
	is(st.fresh_blocks, 1, "its block is fresh memory");
	is(st.fresh_ns, 3 * MS, "... its commit took 3 ms");
	is(st.collapse_ns, 0, "no collapse: the commit's fault took a huge page");

	char *r = hp_arena_alloc(a, 4 * MiB, PROT_NONE);
	st = snap(a);
	ok(r != NULL, "a 4 MiB PROT_NONE reservation");
	is(st.fresh_blocks, 1, "its two lazy blocks hold no memory: not fresh");
	is(st.fresh_ns, 3 * MS, "... and took no counted time");

	/* The first lazy block made RW whole: populated, then collapsed (the
	 * fake kernel cannot say whether the populate took a huge page). */
	fake.collapse_script[0] = EAGAIN; /* busy once: two attempts */
	fake.ncollapse_script = 1;
	ok(hp_arena_protect(a, r, 2 * MiB, RW) == 0, "its first block made RW");
	is(hp_arena_collapse_pending(a), 1, "its collapse ran");
	st = snap(a);
	is(fake.populate_calls, 1, "it was populated first");
	is(st.fresh_blocks, 2, "a lazy block's populate is fresh memory");
	is(st.fresh_ns, 8 * MS, "... 5 ms more");
	is(fake.collapse_calls, 2, "two MADV_COLLAPSE calls (EAGAIN, then done)");
	is(st.collapse_ns, 14 * MS, "collapse_ns counts both attempts: 14 ms");

	/* The reservation's second block: refused once (ENOMEM, backed off),
	 * populated again on the retry, which finds the first populate's
	 * pages: one fresh block, not two. */
	fake.collapse_script[fake.collapse_calls] = ENOMEM;
	fake.ncollapse_script = fake.collapse_calls + 1;
	ok(hp_arena_protect(a, r + 2 * MiB, 2 * MiB, RW) == 0, "its second block made RW");
	is(hp_arena_collapse_pending(a), 0, "its collapse refused (ENOMEM): backed off");
	fake.now_ns += 60000 * MS; /* past the back-off */
	is(hp_arena_collapse_pending(a), 1, "collapsed on the retry");
	st = snap(a);
	is(fake.populate_calls, 3, "populated on each try");
	is(st.fresh_blocks, 3, "but fresh memory once");
	is(st.fresh_ns, 13 * MS, "... its first populate's 5 ms");

	/* A lazy block the program touched before its collapse: the populate
	 * gives it no first memory. */
	char *r2 = hp_arena_alloc(a, 2 * MiB, PROT_NONE);
	ok(r2 != NULL, "a 2 MiB PROT_NONE reservation");
	fake.held_at[fake.nheld_at++] = (uintptr_t)r2; /* its pages, the program's */
	ok(hp_arena_protect(a, r2, 2 * MiB, RW) == 0, "made RW, then touched");
	is(hp_arena_collapse_pending(a), 1, "collapsed");
	st = snap(a);
	is(fake.populate_calls, 4, "populated");
	is(st.fresh_blocks, 3, "not fresh memory: the program's touch faulted it in");

	/* A commit the fake kernel refuses adds nothing. */
	fake.fault_hook = FH_COMMIT;
	fake.fault_at = fake.calls[FH_COMMIT] + 1;
	fake.fault_err = ENOMEM;
	char *none = hp_arena_alloc(a, 3 * MiB, RW);
	fake.fault_at = 0;
	st = snap(a);
	ok(none == NULL, "a 3 MiB allocation whose commit fails");
	is(st.fresh_blocks, 3, "... is no fresh memory");
	is(st.fresh_ns, 13 * MS, "... and no time");

	/* Printed both ways. */
	int fds[2];
	ok(pipe(fds) == 0, "a pipe");
	hp_arena_stats_print(a, fds[1], HP_STATS_JSON);
	hp_arena_stats_print(a, fds[1], 0);
	close(fds[1]);
	char out[16384] = {0};
	size_t n = 0;
	for (ssize_t k;
	     n < sizeof(out) - 1 && (k = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0;)
		n += (size_t)k;
	close(fds[0]);
	ok(strstr(out, "\"fresh_blocks\":3,\"fresh_ns\":13000000,\"collapse_ns\":35000000") != NULL,
	   "the JSON has them");
	const char *table = strstr(out, "hugeperm stats");
	ok(table && strstr(table, "fresh_blocks") && strstr(table, "fresh_ns") &&
		   strstr(table, "collapse_ns"),
	   "the table has them");

	/* A caller built before the time counters: its struct ends earlier. */
	struct hp_stats old;
	ok(fake_stats_sized(a, offsetof(struct hp_stats, fresh_blocks), &old),
	   "an older caller's stats: nothing written past its size");
	is(old.lazy_blocks, 0, "it gets the counters it knows");

	fake_check_arena(a, "at the end");
	fake_arena_free(a);

	/* Small pages: an unfilled commit takes its memory at first touch, a
	 * filled one (an executable class: int3) at the fill. */
	fake_reset();
	fake.commit_cost_ns = 2 * MS;
	a = fake_arena(HP_BACKEND_SMALL, HP_COLLAPSE_OFF);
	a->alias = false;
	ok(hp_arena_alloc(a, 4096, RW) != NULL, "small pages: an RW allocation");
	is(snap(a).fresh_blocks, 0, "its unfilled block is not fresh memory");
	ok(hp_arena_alloc(a, 4096, PROT_READ | PROT_EXEC) != NULL, "an RX allocation");
	st = snap(a);
	is(st.fresh_blocks, 1, "its block, filled with int3, is");
	is(st.fresh_ns, 2 * MS, "... its commit's 2 ms");
	fake_arena_free(a);
	return tap_done();
}
