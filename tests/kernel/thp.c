/* SPDX-License-Identifier: MIT */
/*
 * thp.t - the kernel's view on the THP backend.  Runs alone (the vmstat
 * counters are system-wide): an RX block is huge in smaps and pagemap; a
 * partial protection change splits it (ours +1, thp_split_pmd at least
 * that); putting it back and collapsing restores it (thp_collapse_alloc
 * within what our attempts allow); classes keep apart; fresh_blocks
 * follows thp_fault_alloc.  The probe faults no huge page in.  khugepaged
 * is paused meanwhile.
 */
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

static struct hp_stats stats(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	return st;
}

/* Do the kernel's collapse allocations since @coll0 fit @a's attempts
 * since @st0 (kernel_collapse_allocs_fit)? */
static bool collapses_agree(struct hp_arena *a, long coll0, const struct hp_stats *st0,
			    long *kernel)
{
	*kernel = kernel_vmstat("thp_collapse_alloc") - coll0;
	return kernel_collapse_allocs_fit(*kernel,
					  stats(a).collapse_attempts - st0->collapse_attempts);
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp)
		tap_skip_all("THP is not available (transparent_hugepage/enabled is not "
			     "madvise/always)");
	if (!pr.collapse)
		tap_skip_all("MADV_COLLAPSE does not work on this kernel (before 6.1)");

	/* The probe asks the kernel and faults nothing in (it faulted a huge
	 * page into a scratch block: a 2 MiB clear in every process the
	 * preload served).  A second probe: the first faulted our stack in. */
	struct rusage ru0, ru1;
	long probe0 = kernel_vmstat("thp_fault_alloc");
	getrusage(RUSAGE_SELF, &ru0);
	hp_os_linux.probe(&pr);
	getrusage(RUSAGE_SELF, &ru1);
	is(kernel_vmstat("thp_fault_alloc") - probe0, 0,
	   "the probe faults no huge page in (%ld minor faults in all)",
	   ru1.ru_minflt - ru0.ru_minflt);
	ok(pr.collapse && pr.thp, "and finds MADV_COLLAPSE (collapsed below) and THP again");
	/* The vmstat counters below are the whole machine's: khugepaged's own
	 * collapses would count in thp_collapse_alloc too.  (After the probe's
	 * checks: pausing forks a guardian, whose copy-on-write pages would
	 * fault on our next writes.) */
	if (kernel_khugepaged_pause())
		tap_diag("khugepaged's scan interval could not be set: its collapses may count");

	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.collapse_mode = HP_COLLAPSE_DEFERRED,
				/* anonymous THP: tests/kernel/write.c covers aliased blocks */
				.flags = HP_ARENA_NO_ALIAS};
	struct hp_arena *a = hp_arena_create(&cfg);
	ok(a != NULL, "THP arena");

	/* hp_alloc of RX memory: the block is huge-mapped, says the kernel;
	 * the kernel faulted it in (thp_fault_alloc), which our fresh_blocks
	 * counts, and its time is part of the call's. */
	long fault0 = kernel_vmstat("thp_fault_alloc");
	uint64_t t0 = hp_os_linux.now_ns();
	char *code = hp_arena_alloc(a, 8 * 4096, RX);
	uint64_t took = hp_os_linux.now_ns() - t0;
	struct hp_stats fresh = stats(a);
	is(kernel_vmstat("thp_fault_alloc") - fault0, 1, "vmstat: thp_fault_alloc +1");
	is(fresh.fresh_blocks, 1, "our fresh_blocks: 1");
	ok(fresh.fresh_ns > 0 && fresh.fresh_ns <= took,
	   "fresh_ns (%llu) is part of the call's time (%llu ns)",
	   (unsigned long long)fresh.fresh_ns, (unsigned long long)took);
	is(fresh.collapse_ns, 0, "collapse_ns: 0, nothing collapsed");
	uintptr_t blk = (uintptr_t)code & ~(HP_BLOCK_SIZE - 1);
	uintptr_t chunk = (uintptr_t)code & ~(HP_CHUNK_SIZE - 1);
	ok(code != NULL, "8 RX pages");
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "AnonHugePages"), 2048,
	   "smaps: the block shows AnonHugePages 2048 kB");
	long hp = kernel_huge_pages(blk, HP_BLOCK_SIZE);
	if (hp >= 0)
		is(hp, 512, "pagemap: all 512 pages PMD-mapped");
	else
		tap_skip(1, "no PAGEMAP_SCAN on this kernel");
	is(kernel_prot_at((uintptr_t)code), RX, "maps: r-x");

	/* Part of it made RW: the kernel splits the PMD, and we count it. */
	long split0 = kernel_vmstat("thp_split_pmd");
	struct hp_stats st0 = stats(a);
	is(hp_arena_protect(a, code, 4096, RW), 0, "hp_protect one page RW");
	/* The kernel's counts are the whole machine's: on this kind of machine
	 * DAMON's pageout scheme splits huge pages it finds cold (no swap to
	 * page them out to), ours among them, at any moment: they are at
	 * least ours, and smaps and pagemap say what became of our block. */
	ok(kernel_vmstat("thp_split_pmd") - split0 >= 1, "vmstat: thp_split_pmd +%ld (>= 1)",
	   kernel_vmstat("thp_split_pmd") - split0);
	is(stats(a).splits - st0.splits, 1, "our split count +1");
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "AnonHugePages"), 0,
	   "smaps: AnonHugePages 0 for the split block");
	if (hp >= 0)
		is(kernel_huge_pages(blk, HP_BLOCK_SIZE), 0, "pagemap: no PMD mapping left");
	else
		tap_skip(1, "no PAGEMAP_SCAN on this kernel");
	is(kernel_prot_at((uintptr_t)code), RW, "maps: the page is rw-");
	is(kernel_prot_at((uintptr_t)code + 4096), RX, "maps: its neighbour is still r-x");
	code[0] = (char)0xc3;
	ok(stats(a).coverage < 0.01, "coverage fell to 0");

	/* Back to RX: uniform again; the collapse restores the huge mapping. */
	long coll0 = kernel_vmstat("thp_collapse_alloc"), kcoll;
	struct hp_stats stc = stats(a);
	is(hp_arena_protect(a, code, 4096, RX), 0, "hp_protect it back to RX");
	is(stats(a).collapse_pending, 1, "one collapse queued (deferred)");
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "AnonHugePages"), 0,
	   "smaps: still 4K-mapped before the collapse");
	t0 = hp_os_linux.now_ns();
	is(hp_arena_collapse_pending(a), 1, "hp_collapse_pending collapses one block");
	took = hp_os_linux.now_ns() - t0;
	ok(stats(a).collapse_ns > 0 && stats(a).collapse_ns <= took,
	   "collapse_ns (%llu) is part of the call's time (%llu ns)",
	   (unsigned long long)stats(a).collapse_ns, (unsigned long long)took);
	bool agree = collapses_agree(a, coll0, &stc, &kcoll);
	ok(agree && stats(a).collapses - stc.collapses == 1,
	   "vmstat: thp_collapse_alloc +%ld for our %llu collapse in %llu attempts", kcoll,
	   (unsigned long long)(stats(a).collapses - stc.collapses),
	   (unsigned long long)(stats(a).collapse_attempts - stc.collapse_attempts));
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "AnonHugePages"), 2048,
	   "smaps: AnonHugePages 2048 kB again");
	if (hp >= 0)
		is(kernel_huge_pages(blk, HP_BLOCK_SIZE), 512, "pagemap: PMD-mapped again");
	else
		tap_skip(1, "no PAGEMAP_SCAN on this kernel");
	ok((unsigned char)code[0] == 0xc3, "the contents survived the collapse");
	struct hp_stats st = stats(a);
	ok(st.coverage > 0.999, "coverage back to 100%%");
	is(st.collapses, 1, "our collapse count: 1");

	/* Classes keep apart while empty blocks can be had. */
	char *data = hp_arena_alloc(a, 4096, RW);
	char *ro = hp_arena_alloc(a, 4096, PROT_READ);
	ok(((uintptr_t)data & ~(HP_BLOCK_SIZE - 1)) != blk &&
		   ((uintptr_t)ro & ~(HP_BLOCK_SIZE - 1)) != blk &&
		   ((uintptr_t)ro & ~(HP_BLOCK_SIZE - 1)) !=
			   ((uintptr_t)data & ~(HP_BLOCK_SIZE - 1)),
	   "RW, R and RX each in a block of their own");
	is(stats(a).steals, 0, "no steals");
	is(kernel_smaps_kb(chunk, chunk + HP_CHUNK_SIZE, "AnonHugePages"), 3 * 2048,
	   "smaps: three huge blocks");
	is(stats(a).huge_blocks, 3, "and we believe the same");
	is(stats(a).fresh_blocks, 3,
	   "fresh_blocks: 3 (the collapse took a new page, not a fresh block)");
	is(kernel_vmstat("thp_fault_alloc") - fault0, 3, "vmstat: thp_fault_alloc +3 in all");

	/* A lazy block the program writes before its collapse runs: the
	 * program's fault gave it memory, not ours.  One made RW and
	 * collapsed untouched: the collapse run's populate did. */
	char *lz = hp_arena_alloc(a, 2 * HP_BLOCK_SIZE, PROT_NONE);
	ok(lz != NULL, "a 4 MiB PROT_NONE reservation (lazy blocks)");
	fault0 = kernel_vmstat("thp_fault_alloc");
	uint64_t fb0 = stats(a).fresh_blocks;
	is(hp_arena_protect(a, lz, HP_BLOCK_SIZE, RW), 0, "its first block made RW");
	memset(lz, 1, HP_BLOCK_SIZE);
	hp_arena_collapse_pending(a);
	is(kernel_vmstat("thp_fault_alloc") - fault0, 1,
	   "written: the program's fault, thp_fault_alloc +1");
	is(stats(a).fresh_blocks - fb0, 0, "not fresh memory of ours");
	is(hp_arena_protect(a, lz + HP_BLOCK_SIZE, HP_BLOCK_SIZE, RW), 0,
	   "its second block made RW, not touched");
	hp_arena_collapse_pending(a);
	is(kernel_vmstat("thp_fault_alloc") - fault0, 2, "the collapse run's populate: +1 more");
	if (hp >= 0) /* PAGEMAP_SCAN says the block held no page */
		is(stats(a).fresh_blocks - fb0, 1, "fresh memory of ours: 1");
	else
		tap_skip(1, "no PAGEMAP_SCAN on this kernel: a lazy populate is not counted");
	hp_arena_free(a, lz);

	/* Whole-block change: no split, still huge. */
	st0 = stats(a);
	char *whole = hp_arena_alloc(a, HP_BLOCK_SIZE, RW);
	is(hp_arena_protect(a, whole, HP_BLOCK_SIZE, PROT_READ), 0, "protect a whole block R");
	is(stats(a).splits - st0.splits, 0, "no split for a whole-block change");
	if (hp >= 0)
		is(kernel_huge_pages((uintptr_t)whole, HP_BLOCK_SIZE), 512, "still PMD-mapped");
	else
		tap_skip(1, "no PAGEMAP_SCAN on this kernel");

	/* The JIT pattern with HP_HOME: write RW, flip RX, many functions. */
	split0 = kernel_vmstat("thp_split_pmd");
	coll0 = kernel_vmstat("thp_collapse_alloc");
	st0 = stats(a);
	stc = st0;
	char *fn[300];
	for (int i = 0; i < 300; i++) {
		fn[i] = hp_arena_alloc(a, 4096, RW | HP_HOME(RX));
		memset(fn[i], 0xc3, 64);
		hp_arena_protect(a, fn[i], 4096, RX);
	}
	st = stats(a);
	ok(st.splits - st0.splits <= (uint64_t)(kernel_vmstat("thp_split_pmd") - split0),
	   "300 write-then-exec functions: our splits (%llu) are the kernel's (%ld) or fewer",
	   (unsigned long long)(st.splits - st0.splits), kernel_vmstat("thp_split_pmd") - split0);
	ok(st.splits - st0.splits <= 1, "at most one split for 300 functions");
	int n = hp_arena_collapse_pending(a);
	agree = collapses_agree(a, coll0, &stc, &kcoll);
	ok(agree, "collapses: ours (%d, %llu attempts) agree with the kernel's allocations (%ld)",
	   n, (unsigned long long)(stats(a).collapse_attempts - stc.collapse_attempts), kcoll);
	st = stats(a);
	ok(st.cls[RX].used_bytes > 0 && st.cls[RX].huge_used_bytes == st.cls[RX].used_bytes,
	   "all RX bytes are huge-mapped after the collapse");
	hp_arena_destroy(a);

	/* Sync mode: the call that makes the block uniform collapses it. */
	cfg.collapse_mode = HP_COLLAPSE_SYNC;
	a = hp_arena_create(&cfg);
	char *s = hp_arena_alloc(a, 4096, RX);
	blk = (uintptr_t)s & ~(HP_BLOCK_SIZE - 1);
	coll0 = kernel_vmstat("thp_collapse_alloc");
	stc = stats(a);
	hp_arena_protect(a, s, 4096, RW);
	is(hp_arena_protect(a, s, 4096, RX), 0, "sync: back to RX");
	agree = collapses_agree(a, coll0, &stc, &kcoll);
	ok(agree && stats(a).collapses - stc.collapses == 1,
	   "sync: collapsed within the call (thp_collapse_alloc +%ld)", kcoll);
	is(kernel_huge_pages(blk, HP_BLOCK_SIZE), hp >= 0 ? 512 : -1, "sync: PMD-mapped on return");
	hp_arena_destroy(a);

	/* The background thread: collapses once the block stayed uniform. */
	hp_opt.collapse_thread = 1;
	hp_opt.collapse_delay_ms = 100;
	cfg.collapse_mode = HP_COLLAPSE_DEFERRED;
	a = hp_arena_create(&cfg);
	s = hp_arena_alloc(a, 4096, RX);
	blk = (uintptr_t)s & ~(HP_BLOCK_SIZE - 1);
	hp_arena_protect(a, s, 4096, RW);
	hp_arena_protect(a, s, 4096, RX);
	t0 = hp_os_linux.now_ns();
	is(stats(a).collapses, 0, "thread: not collapsed at once");
	for (int i = 0; i < 300 && stats(a).collapses == 0; i++)
		usleep(10000);
	double ms = (double)(hp_os_linux.now_ns() - t0) / 1e6;
	is(stats(a).collapses, 1, "thread: collapsed in the background (after %.0f ms)", ms);
	ok(ms >= 90, "thread: not before the block stayed uniform for the delay (100 ms)");
	is(kernel_huge_pages(blk, HP_BLOCK_SIZE), hp >= 0 ? 512 : -1, "thread: PMD-mapped");
	hp_arena_destroy(a);
	hp_opt.collapse_thread = 0;
	return tap_done();
}
