/* SPDX-License-Identifier: MIT */
/*
 * sim.t - the trace format and the simulator's policies on hand-made
 * traces whose splits and collapses are known (worked out in the comments).
 *
 * Addresses in the traces are 2 MiB aligned where it matters: 0x40000000
 * is the start of a block, so a naive mapping of 512 pages there is one
 * whole block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim.h"
#include "tap.h"

static struct sim_trace parse(const char *text)
{
	struct sim_trace t;
	char err[256];
	int e = sim_trace_parse((const uint8_t *)text, strlen(text), &t, err, sizeof(err));
	if (e)
		tap_diag("parse: %s", err);
	return t;
}

static struct sim_result run(const struct sim_trace *t, const char *policy)
{
	struct sim_result r;
	struct sim_options o = {.map_at = -1};
	int e = sim_run(t, policy, &o, &r);
	if (e)
		tap_diag("%s: error %d", policy, e);
	return r;
}

static void test_format(void)
{
	/* Binary round trip, with times, pages and flags that need every varint width. */
	const int hinted = HP_TF_HINT | HP_TF_HINT_AT; /* with the hint's address */
	struct hp_trace_event in[8] = {
		{0, 0x7f0000000, 16, 1000, HP_EV_MAP, PROT_READ | PROT_WRITE, HP_TF_HINT, 0},
		{5, 0x7f0000000, 16, 1000, HP_EV_PROTECT, PROT_READ | PROT_EXEC, 0, 0},
		{1ULL << 40, 0x10, 1ULL << 30, 4000000, HP_EV_MAP, 0, HP_TF_NORESERVE, 0},
		{(1ULL << 40) + 1, 0x7f0000000, 16, 1, HP_EV_UNMAP, 0, 0, 0},
		{(1ULL << 40) + 2, 0x400, 2, 1, HP_EV_REMAP, 0, 0, 0},
		{(1ULL << 40) + 2, 0x800, 4, 1, HP_EV_REMAP_TO, 0, HP_TF_FIXED, 0},
		/* hints: where the kernel put it, below it, far above it */
		{(1ULL << 40) + 3, 0x7f0000010, 32, 1, HP_EV_MAP, PROT_READ | PROT_WRITE, hinted,
		 0x7f0000010000},
		{(1ULL << 40) + 4, 0x7f0000030, 32, 1, HP_EV_MAP, PROT_READ, hinted | HP_TF_GROWS,
		 0x1230000},
	};
	uint8_t buf[HP_TRACE_HEADER + 8 * HP_TRACE_MAX_EVENT];
	struct hp_trace_header h = {.version = HP_TRACE_VERSION, .page_shift = 12};
	strcpy(h.source, "test");
	strcpy(h.comm, "sim.t");
	hp_trace_header_encode(&h, buf);
	size_t n = HP_TRACE_HEADER;
	struct hp_trace_enc st = {0};
	size_t six = 0;
	for (int i = 0; i < 8; i++) {
		n += hp_trace_encode(&st, &in[i], buf + n);
		six = i == 5 ? n : six;
	}
	ok(six < HP_TRACE_HEADER + 6 * 16, "6 events in %zu bytes after the header",
	   six - HP_TRACE_HEADER);
	ok(n - six < 2 * 16, "2 with hint addresses in %zu", n - six);
	struct sim_trace t;
	char err[256];
	is(sim_trace_parse(buf, n, &t, err, sizeof(err)), 0, "the binary trace parses");
	bool same = t.n == 8 && !strcmp(t.h.comm, "sim.t") && t.h.version == 2;
	for (size_t i = 0; same && i < 8; i++)
		same = t.ev[i].t_ns == in[i].t_ns && t.ev[i].page == in[i].page &&
		       t.ev[i].npages == in[i].npages && t.ev[i].tid == in[i].tid &&
		       t.ev[i].type == in[i].type && t.ev[i].prot == in[i].prot &&
		       t.ev[i].flags == in[i].flags && t.ev[i].hint == in[i].hint;
	ok(same, "every field comes back as written, hint addresses too");
	sim_trace_free(&t);

	/* Version 1 (every trace before hint addresses): read as it always was. */
	uint8_t v1[HP_TRACE_HEADER + 8 * HP_TRACE_MAX_EVENT];
	h.version = 1;
	hp_trace_header_encode(&h, v1);
	ok(!memcmp(v1, "HPTRACE1", 8), "a version 1 header says HPTRACE1");
	memcpy(v1 + HP_TRACE_HEADER, buf + HP_TRACE_HEADER, six - HP_TRACE_HEADER);
	is(sim_trace_parse(v1, six, &t, err, sizeof(err)), 0, "a version 1 trace parses");
	ok(t.n == 6 && t.h.version == 1 && t.ev[0].flags == HP_TF_HINT && t.ev[0].hint == 0,
	   "... its events as written, no hint address");
	sim_trace_free(&t);
	v1[HP_TRACE_HEADER + 1] |= HP_TF_HINT_AT; /* the first event's flags varint */
	is(sim_trace_parse(v1, six, &t, err, sizeof(err)), 0,
	   "version 1 with the flag set: no hint address is read (as before)");
	ok(t.n == 6 && t.ev[0].flags == HP_TF_HINT && t.ev[1].page == in[1].page,
	   "... the flag means nothing there, the next events are where they were");
	sim_trace_free(&t);

	is(sim_trace_parse(buf, n - 1, &t, err, sizeof(err)), EINVAL,
	   "a trace cut inside an event (its hint address): EINVAL");
	ok(strstr(err, "bad event at byte") != NULL, "... saying where: %s", err);
	buf[7] = '3';
	is(sim_trace_parse(buf, n, &t, err, sizeof(err)), ENOTSUP, "another version: ENOTSUP");
	buf[7] = '2';
	buf[12] = 21; /* page shift */
	is(sim_trace_parse(buf, n, &t, err, sizeof(err)), ENOTSUP, "another page size: ENOTSUP");

	const char *bad = "# a comment\n1.0 7 map 0x1000 4 rw-\n2.0 7 frobnicate 0x1000 4\n";
	is(sim_trace_parse((const uint8_t *)bad, strlen(bad), &t, err, sizeof(err)), EINVAL,
	   "text with an unknown event type: EINVAL");
	ok(strstr(err, "line 3") != NULL, "... naming the line: %s", err);
	const char *odd = "1.0 7 map 0x1001 4 rw-\n";
	is(sim_trace_parse((const uint8_t *)odd, strlen(odd), &t, err, sizeof(err)), EINVAL,
	   "an address that is not page-aligned: EINVAL");
	const char *prot = "1.0 7 map 0x1000 4 rwz\n";
	is(sim_trace_parse((const uint8_t *)prot, strlen(prot), &t, err, sizeof(err)), EINVAL,
	   "a protection that is not [r-][w-][x-]: EINVAL");

	const char *hint = "1.0 7 map 0x7f0000010000 4 rw- noreserve|hint=0x7f0000010000\n"
			   "2.0 7 map 0x7f0000020000 4 rw- hint=7F0000030000|grows\n";
	t = parse(hint);
	ok(t.n == 2 && t.ev[0].hint == 0x7f0000010000 && t.ev[1].hint == 0x7f0000030000 &&
		   t.ev[0].flags == (HP_TF_NORESERVE | HP_TF_HINT | HP_TF_HINT_AT) &&
		   t.ev[1].flags == (HP_TF_HINT | HP_TF_HINT_AT | HP_TF_GROWS),
	   "text: hint=<address> gives the hint and its address");
	sim_trace_free(&t);
	static const char *const bad_hints[] = {"hint=",
						"hint=0",
						"hint=0x",
						"hint=0x12zz",
						"hint=0x10000000000000000",
						"hint=-4096",
						"hint=0x1000|bogus"};
	for (size_t i = 0; i < sizeof(bad_hints) / sizeof(bad_hints[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text),
			 "# c\n1.0 7 map 0x1000 4 rw-\n2.0 7 map 0x2000 4 rw- %s\n", bad_hints[i]);
		is(sim_trace_parse((const uint8_t *)text, strlen(text), &t, err, sizeof(err)),
		   EINVAL, "text: '%s': EINVAL", bad_hints[i]);
		ok(strstr(err, "line 3") && (i == 6 || strstr(err, "bad hint address")),
		   "... naming the line and the value: %s", err);
	}

	struct sim_result r;
	t = parse("0 1 map 0x40000000 1 rw-\n");
	is(sim_run(&t, "no-such-policy", NULL, &r), EINVAL, "an unknown policy: EINVAL");
	sim_trace_free(&t);
}

static void test_naive(void)
{
	/* One whole aligned block RW: the first fault takes a huge page.
	 * Protecting one page splits it; protecting it back merges nothing
	 * (khugepaged is not modelled). */
	struct sim_trace t = parse("0 1 map 0x40000000 512 rw-\n"
				   "10 1 protect 0x40000000 1 r-x\n"
				   "20 1 protect 0x40000000 1 rw-\n"
				   "30 1 protect 0x40000000 512 r--\n"
				   "40 1 unmap 0x40000000 512\n");
	struct sim_result r = run(&t, "naive");
	is(r.splits, 1, "naive: a one-page protect splits the huge block");
	is(r.collapses, 0, "naive: and nothing merges it back");
	is(r.blocks_peak, 1, "naive: one block");
	is(r.n_mprotect, 3, "naive: three mprotect calls");
	ok(r.coverage_avg > 0.249 && r.coverage_avg < 0.251,
	   "naive: huge for the first 10 us of 40 live (coverage %.3f)", r.coverage_avg);
	ok(r.coverage_end < 0, "naive: nothing live at the end");
	sim_result_free(&r);
	sim_trace_free(&t);

	/* 16 pages: never a whole block, never huge. */
	t = parse("0 1 map 0x40000000 16 rw-\n10 1 protect 0x40000000 16 r-x\n");
	r = run(&t, "naive");
	is(r.splits, 0, "naive: small mappings split nothing ...");
	ok(r.coverage_avg == 0.0, "naive: ... and are never huge");
	sim_result_free(&r);
	sim_trace_free(&t);
}

static void test_cpa_merge(void)
{
	/* One block, first fit: the RW page and the RX page share it.  The RX
	 * protect splits (1); making it RW again makes the block uniform:
	 * merged at once (1); the second flip pair does the same (2, 2). */
	struct sim_trace t = parse("0 1 map 0x40000000 1 rw-\n"
				   "1 1 map 0x40001000 1 rw-\n"
				   "2 1 protect 0x40001000 1 r-x\n"
				   "3 1 protect 0x40001000 1 rw-\n"
				   "4 1 protect 0x40001000 1 r-x\n"
				   "5 1 protect 0x40001000 1 rw-\n");
	struct sim_result r = run(&t, "cpa-merge");
	is(r.splits, 2, "cpa-merge: each RX flip in an RW block splits it");
	is(r.collapses, 2, "cpa-merge: each flip back merges it at once");
	is(r.blocks_peak, 1, "cpa-merge: one block for both");
	sim_result_free(&r);
	sim_trace_free(&t);
}

static void test_migratetype(void)
{
	/* RX and RW requests take a block each (no split).  Flipping the RW
	 * page to RX splits the RW block (1); it merges only when all its
	 * pages are free (unmap: 1).  The RX block was never split. */
	struct sim_trace t = parse("0 1 map 0x40000000 1 r-x\n"
				   "1 1 map 0x50000000 1 rw-\n"
				   "2 1 protect 0x50000000 1 r-x\n"
				   "3 1 protect 0x50000000 1 rw-\n"
				   "4 1 unmap 0x50000000 1\n"
				   "5 1 unmap 0x40000000 1\n");
	struct sim_result r = run(&t, "migratetype");
	is(r.blocks_peak, 2, "migratetype: a block per class");
	is(r.splits, 1, "migratetype: a page leaving its class splits its block");
	is(r.collapses, 1, "migratetype: merged when the block's pages are all free");
	sim_result_free(&r);
	sim_trace_free(&t);
}

static void test_pte_cache(void)
{
	/* One cache block serves both; the RX page splits it (1) for good: no
	 * merge when everything is freed, and the next RX page costs nothing. */
	struct sim_trace t = parse("0 1 map 0x40000000 1 rw-\n"
				   "1 1 map 0x50000000 1 r-x\n"
				   "2 1 unmap 0x50000000 1\n"
				   "3 1 unmap 0x40000000 1\n"
				   "4 1 map 0x60000000 1 r-x\n");
	struct sim_result r = run(&t, "pte-cache");
	is(r.splits, 1, "pte-cache: the first protection change splits the cache block");
	is(r.collapses, 0, "pte-cache: never merged");
	is(r.blocks_peak, 1, "pte-cache: the block stays cached");
	sim_result_free(&r);
	sim_trace_free(&t);
}

static void test_pack(void)
{
	/* A LuaJIT-like area: mapped RW (staging, naive), made RX: copied into
	 * the pack (1 copy).  The flips after that change nothing: writes go
	 * through the alias. */
	struct sim_trace t = parse("0 1 map 0x40000000 16 rw- hint\n"
				   "1 1 protect 0x40000000 16 r-x\n"
				   "2 1 protect 0x40000000 16 rw-\n"
				   "3 1 write 0x40000000 1\n"
				   "4 1 protect 0x40000000 16 r-x\n"
				   "5 1 map 0x50000000 1 r-x\n");
	struct sim_result r = run(&t, "pack");
	is(r.splits, 0, "pack: never split");
	is(r.n_copy, 1, "pack: the area is copied in once");
	is(r.n_mprotect, 0, "pack: flips make no mprotect");
	ok(r.n_alias >= 1, "pack: the write goes through the alias");
	ok(r.coverage_end == 1.0, "pack: all live code in the huge RX block");
	is(r.blocks_peak, 1, "pack: both in one pack block");
	sim_result_free(&r);
	sim_trace_free(&t);
}

static void test_hugeperm(void)
{
	/* The library: RX and RW are separate classes, so they take a block
	 * each (no split).  The RW page made RX splits the RW block (1).
	 * hugeperm-sync: made RW again, the block is uniform and collapses at
	 * the end of the call (1); hugeperm (deferred by 50 ms of trace time):
	 * only if the block stayed uniform that long. */
	const char *text = "0 1 map 0x40000000 1 r-x\n"
			   "1000 1 map 0x50000000 1 rw-\n"
			   "2000 1 protect 0x50000000 1 r-x\n"
			   "3000 1 protect 0x50000000 1 rw-\n"
			   "4000 1 map 0x60000000 1 rw-\n";
	struct sim_trace t = parse(text);
	struct sim_result r = run(&t, "hugeperm-sync");
	is(r.blocks_peak, 2, "hugeperm-sync: a block per class");
	is(r.splits, 1, "hugeperm-sync: the flip splits the RW block");
	is(r.collapses, 1, "hugeperm-sync: and it collapses when uniform again");
	ok(r.coverage_end == 1.0, "hugeperm-sync: everything huge at the end");
	sim_result_free(&r);
	r = run(&t, "hugeperm");
	is(r.splits, 1, "hugeperm: the same split");
	is(r.collapses, 0, "hugeperm: no collapse 1 ms after (the delay is 50 ms)");
	sim_result_free(&r);
	sim_trace_free(&t);

	t = parse("0 1 map 0x40000000 1 rw-\n"
		  "1000 1 protect 0x40000000 1 r-x\n"
		  "2000 1 protect 0x40000000 1 rw-\n"
		  "60000000 1 map 0x60000000 1 rw-\n");
	r = run(&t, "hugeperm");
	is(r.collapses, 1, "hugeperm: collapsed at the first event after 50 ms uniform");
	sim_result_free(&r);
	sim_trace_free(&t);

	/* A hinted RW mapping is a code area: placed in the RX class (as the
	 * preload's exact mode does), it splits while RW and collapses RX. */
	t = parse("0 1 map 0x40000000 16 rw- hint\n"
		  "1 1 protect 0x40000000 16 r-x\n");
	r = run(&t, "hugeperm-sync");
	is(r.collapses, 1, "hugeperm-sync: a hinted area made RX collapses its RX block");
	ok(r.coverage_end == 1.0, "hugeperm-sync: and the area is huge-mapped");
	sim_result_free(&r);
	sim_trace_free(&t);

	/* hugeperm-block: the area has a block of its own and whole-area flips
	 * are whole-block mprotects: never a split, always huge. */
	t = parse("0 1 map 0x40000000 16 rw- hint\n"
		  "1 1 protect 0x40000000 16 r-x\n"
		  "2 1 protect 0x40000000 16 rw-\n"
		  "3 1 protect 0x40000000 16 r-x\n"
		  "4 1 protect 0x40000000 1 rw-\n");
	r = run(&t, "hugeperm-block");
	ok(r.splits == 1 && r.collapses == 0,
	   "hugeperm-block: whole-area flips split nothing; a one-page flip splits (%llu)",
	   (unsigned long long)r.splits);
	ok(r.coverage_avg > 0.7, "hugeperm-block: huge until then (%.2f)", r.coverage_avg);
	sim_result_free(&r);
	sim_trace_free(&t);

	/* A 512 MiB PROT_NONE reservation holds nothing: no block, no live page. */
	t = parse("0 1 map 0x40000000 131072 --- noreserve\n"
		  "1 1 protect 0x40000000 512 rwx\n");
	r = run(&t, "hugeperm-sync");
	is(r.blocks_peak, 1, "hugeperm-sync: a reservation takes memory only where committed");
	is(r.live_peak_pages, 512, "... 512 live pages");
	ok(r.coverage_end == 1.0, "... a whole block committed at once is huge");
	sim_result_free(&r);
	sim_trace_free(&t);
}

static void test_replay_semantics(void)
{
	/* Events on pages the trace never mapped are ignored and counted;
	 * MAP_FIXED replaces; partial unmaps keep the rest; a remap keeps
	 * each page's protection. */
	struct sim_trace t = parse("0 1 protect 0x10000000 4 r--\n"
				   "1 1 map 0x40000000 8 rw-\n"
				   "2 1 protect 0x40000000 2 r-x\n"
				   "3 1 map 0x40001000 2 r-- fixed\n"
				   "4 1 unmap 0x40006000 2\n"
				   "5 1 remap 0x40000000 6\n"
				   "5 1 remap-to 0x50000000 8\n");
	for (int k = 0; sim_policy_names[k]; k++) {
		struct sim_result r = run(&t, sim_policy_names[k]);
		ok(r.ignored == 1 && r.live_peak_pages == 8 && r.events == 6,
		   "%s: 1 ignored, 8 live pages at most, 6 events (remap is one)",
		   sim_policy_names[k]);
		sim_result_free(&r);
	}
	sim_trace_free(&t);
}

static void test_synth(void)
{
	struct sim_synth p;
	struct sim_trace a, b, c;
	sim_synth_defaults(&p);
	p.units = 300;
	is(sim_synth(&p, &a), 0, "synth: a trace");
	is(sim_synth(&p, &b), 0, "synth: again with the same seed");
	ok(a.n == b.n && !memcmp(a.ev, b.ev, a.n * sizeof(*a.ev)), "synth: same seed, same trace");
	p.seed = 2;
	sim_synth(&p, &c);
	ok(c.n != a.n || memcmp(a.ev, c.ev, a.n * sizeof(*a.ev)), "synth: another seed, another");
	sim_trace_free(&c);
	/* Every policy sees the same program: the same live pages. */
	uint64_t live = 0;
	bool same = true;
	for (int k = 0; sim_policy_names[k]; k++) {
		struct sim_result r = run(&a, sim_policy_names[k]);
		if (k == 0)
			live = r.live_peak_pages;
		same &= r.live_peak_pages == live && r.ignored == 0 && r.events == a.n;
		sim_result_free(&r);
	}
	ok(same && live > 0, "synth: every policy replays it whole, %llu live pages at peak",
	   (unsigned long long)live);
	p.threads = 0;
	is(sim_synth(&p, &c), EINVAL, "synth: 0 threads: EINVAL");
	sim_trace_free(&a);
	sim_trace_free(&b);
}

static void test_map(void)
{
	struct sim_trace t = parse("0 1 map 0x40000000 512 rw-\n"
				   "1 1 protect 0x40000000 1 r-x\n"
				   "2 1 map 0x40200000 4 r-x\n"
				   "3 1 unmap 0x40200000 4\n");
	struct sim_result r;
	struct sim_options o = {.map_at = -2};
	is(sim_run(&t, "naive", &o, &r), 0, "map at the peak");
	is(r.map_event, 2, "the peak of live pages is after event 2");
	is(r.nmap, 2, "two blocks in the map");
	ok(r.nmap == 2 && r.map[0].state == SIM_SMALL && r.map[0].prot[0] == 5 &&
		   r.map[0].prot[1] == 3 && r.map[1].prot[3] == 5 && r.map[1].prot[4] == 0xff,
	   "the map has each page's protection and the split block");
	sim_result_free(&r);
	o = (struct sim_options){.map_at = -1, .series = true};
	sim_run(&t, "naive", &o, &r);
	ok(r.nsamples >= 4 && r.samples[1].coverage == 1.0 &&
		   r.samples[r.nsamples - 1].coverage == 0.0,
	   "the coverage curve: %zu samples, huge then split", r.nsamples);
	sim_result_free(&r);
	sim_trace_free(&t);
}

/*
 * Mappings over others (issue 15 defect 19): B placed inside A, C over A's
 * end; then A's whole range unmapped takes A and B, and C's pages beyond.
 * The replay's list held A, B and C in overlapping ranges and lost track
 * (a use-after-free, then a double free).
 */
static void test_overlap(void)
{
	struct sim_trace t = parse("0 1 map 0x40000000 64 rw-\n"
				   "1 1 map 0x40010000 16 r-x fixed\n"
				   "2 1 map 0x4003c000 8 rw- fixed\n"
				   "3 1 protect 0x40000000 72 r--\n"
				   "4 1 unmap 0x40000000 64 ---\n"
				   "5 1 map 0x40000000 0 rw-\n"
				   "6 1 unmap 0x40040000 8 ---\n");
	bool same = true;
	for (int k = 0; sim_policy_names[k]; k++) {
		struct sim_result r = run(&t, sim_policy_names[k]);
		same &= r.live_peak_pages == 64 + 4 && r.coverage_end < 0 && r.ignored == 1;
		sim_result_free(&r);
	}
	ok(same, "overlapping maps: every policy sees 68 pages at peak, none at the end, the "
		 "empty map ignored");
	struct sim_trace u = parse("0 1 map 0xfffffffff000 1 rw-\n");
	struct sim_result r = run(&u, "naive");
	is(r.live_peak_pages, 1, "a map at the top of the 48-bit space");
	sim_result_free(&r);
	sim_trace_free(&u);
	sim_trace_free(&t);
}

/* The blocks of @r's map that hold memory, at the program's addresses
 * (below the policy's arenas, 0x300000000000 on) and at the arenas', and
 * the arenas' huge ones. */
static void where(const struct sim_result *r, int *prog, int *ours, int *ours_huge)
{
	*prog = *ours = *ours_huge = 0;
	for (size_t i = 0; i < r->nmap; i++) {
		if (r->map[i].state == SIM_EMPTY)
			continue;
		bool arena = r->map[i].base >= 0x300000000000ULL;
		*prog += !arena;
		*ours += arena;
		*ours_huge += arena && r->map[i].state == SIM_HUGE;
	}
}

/*
 * hugeperm-block holds a code reservation for the kernel, as the preload's
 * reserve.c does: a 128 MiB PROT_NONE|MAP_NORESERVE range whose pages are
 * made RW in pieces (Erlang's literal area) and never executable stays the
 * kernel's to the end: the same figures as naive, no block of hugeperm's.
 * Made executable (V8's first RWX commit), it is adopted, and served from
 * then on: its pages are in hugeperm's blocks, the kernel's mapping gone,
 * the block committed whole huge, and so is one committed after it.
 */
static void test_held(void)
{
	const char *data = "0 1 map 0x40000000 32768 --- noreserve\n"
			   "1 1 protect 0x40000000 16 rw-\n"
			   "2 1 protect 0x40100000 256 rw-\n";
	struct sim_trace t = parse(data);
	struct sim_options o = {.map_at = (long)t.n - 1};
	struct sim_result r, k;
	int prog, ours, huge;
	sim_run(&t, "hugeperm-block", &o, &r);
	sim_run(&t, "naive", &o, &k);
	where(&r, &prog, &ours, &huge);
	ok(ours == 0 && prog == 1,
	   "held: never executable, it costs no block of ours (%d; %d of "
	   "the kernel's)",
	   ours, prog);
	ok(r.blocks_peak == k.blocks_peak && r.splits == k.splits &&
		   r.coverage_end == k.coverage_end && r.live_peak_pages == k.live_peak_pages,
	   "held: the kernel's figures (naive's): %llu blocks, %llu splits, %.2f coverage",
	   (unsigned long long)r.blocks_peak, (unsigned long long)r.splits, r.coverage_end);
	sim_result_free(&r);
	sim_result_free(&k);
	sim_run(&t, "hugeperm-sync", &o, &r);
	where(&r, &prog, &ours, &huge);
	ok(ours >= 1 && prog == 0, "(hugeperm-sync serves it at map time: %d block(s) of ours)",
	   ours);
	sim_result_free(&r);
	sim_trace_free(&t);

	char code[512];
	snprintf(code, sizeof(code),
		 "%s"
		 "3 1 protect 0x40200000 512 rwx\n"
		 "4 1 protect 0x40400000 512 rw-\n",
		 data);
	t = parse(code);
	o.map_at = 3; /* after the first executable commit */
	sim_run(&t, "hugeperm-block", &o, &r);
	where(&r, &prog, &ours, &huge);
	ok(prog == 0 && ours == 2 && huge == 1,
	   "held, made executable: adopted, its pages in %d blocks of ours (%d huge), none of "
	   "the kernel's (%d)",
	   ours, huge, prog);
	sim_result_free(&r);
	o.map_at = 4;
	sim_run(&t, "hugeperm-block", &o, &r);
	where(&r, &prog, &ours, &huge);
	ok(prog == 0 && ours == 3 && huge == 2 && r.splits == 0,
	   "held: served from then on (%d blocks of ours, %d huge, %llu splits)", ours, huge,
	   (unsigned long long)r.splits);
	sim_result_free(&r);
	sim_trace_free(&t);

	/* A MAP_FIXED executable mapping inside it is evidence too (HotSpot). */
	t = parse("0 1 map 0x40000000 32768 --- noreserve\n"
		  "1 1 map 0x40000000 624 rwx fixed\n"
		  "2 1 protect 0x41000000 512 rw-\n");
	o.map_at = 2;
	sim_run(&t, "hugeperm-block", &o, &r);
	where(&r, &prog, &ours, &huge);
	ok(prog == 0 && ours >= 2,
	   "held: adopted at a MAP_FIXED RWX commit (%d blocks of ours, "
	   "%d of the kernel's)",
	   ours, prog);
	sim_result_free(&r);
	sim_trace_free(&t);
}

/* A LuaJIT-like trace: @areas mcode areas of 64 KiB on thread 1, each
 * mapped RW at a hint, written and made RX; then each patched (RW, RX)
 * twice; then all unmapped. */
static struct sim_trace lua_like(int areas)
{
	static char text[16384];
	size_t n = 0;
	int t = 0;
	for (int i = 0; i < areas; i++) {
		unsigned long a = 0x55e000000000UL - (unsigned long)(i + 1) * 0x10000;
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "%d 1 map %#lx 16 rw- hint\n%d 1 protect %#lx 16 r-x\n", t, a,
				      t + 1, a);
		t += 2;
	}
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < areas; i++) {
			unsigned long a = 0x55e000000000UL - (unsigned long)(i + 1) * 0x10000;
			n += (size_t)snprintf(
				text + n, sizeof(text) - n,
				"%d 1 protect %#lx 16 rw-\n%d 1 protect %#lx 16 r-x\n", t, a, t + 1,
				a);
			t += 2;
		}
	n += (size_t)snprintf(text + n, sizeof(text) - n, "%d 1 unmap %#lx %d\n", t,
			      0x55e000000000UL - (unsigned long)areas * 0x10000, areas * 16);
	return parse(text);
}

/*
 * hugeperm-block packs a thread's areas into shared blocks, as the
 * preload's pack.c does: 40 areas of 64 KiB in 2 blocks (32 a block), not
 * 40; their flips are whole-block protects, never a split; all huge.
 * Another thread's areas, and areas of another size, get blocks of their
 * own.  Code asking to run beside an older area that never ran and is
 * writable (data) gets its pages exactly: a split.
 */
static void test_packed(void)
{
	struct sim_trace t = lua_like(40);
	struct sim_result r = run(&t, "hugeperm-block");
	ok(r.blocks_peak == 2 && r.splits == 0 && r.collapses == 0 && r.coverage_min == 1.0,
	   "packed: 40 areas in %llu blocks, %llu splits, all huge throughout (%.2f)",
	   (unsigned long long)r.blocks_peak, (unsigned long long)r.splits, r.coverage_min);
	sim_result_free(&r);
	r = run(&t, "hugeperm-sync");
	ok(r.splits >= 40, "(exact mode: RX-home blocks, each write flip splits: %llu)",
	   (unsigned long long)r.splits);
	sim_result_free(&r);
	sim_trace_free(&t);

	t = parse("0 1 map 0x40000000 16 rw- hint\n"
		  "1 1 protect 0x40000000 16 r-x\n"
		  "2 2 map 0x40100000 16 rw- hint\n"
		  "3 2 protect 0x40100000 16 r-x\n"
		  "4 1 map 0x40200000 32 rw- hint\n"
		  "5 1 map 0x40300000 16 rw- hint\n"
		  "6 1 protect 0x40300000 16 r-x\n");
	r = run(&t, "hugeperm-block");
	ok(r.blocks_peak == 3 && r.splits == 0,
	   "packed: a block per thread and area size (%llu blocks, %llu splits)",
	   (unsigned long long)r.blocks_peak, (unsigned long long)r.splits);
	sim_result_free(&r);
	sim_trace_free(&t);

	t = parse("0 1 map 0x40000000 16 rw- hint\n"
		  "1 1 map 0x40100000 16 rw- hint\n"
		  "2 1 protect 0x40100000 16 r-x\n"
		  "3 1 protect 0x40100000 16 rw-\n"
		  "4 1 unmap 0x40000000 16\n"
		  "5 1 protect 0x40100000 16 r-x\n");
	r = run(&t, "hugeperm-block");
	ok(r.splits == 1 && r.blocks_peak == 1 && r.coverage_end == 1.0,
	   "packed: code beside data runs exactly (%llu split), whole again once the data "
	   "goes (%.2f)",
	   (unsigned long long)r.splits, r.coverage_end);
	sim_result_free(&r);
	sim_trace_free(&t);
}

/* @text under @policy: the hinted areas served and those given to the kernel. */
static void areas_of(const char *text, const char *policy, uint64_t *served, uint64_t *grown,
		     uint64_t *blocks)
{
	struct sim_trace t = parse(text);
	struct sim_result r = run(&t, policy);
	*served = r.n_areas;
	*grown = r.n_grown;
	*blocks = r.blocks_peak;
	sim_result_free(&r);
	sim_trace_free(&t);
}

/* @text with every hint's address dropped ("hint" alone, as version 1
 * traces say it), into @out. */
static void without_addresses(const char *text, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = text; *p && n + 1 < size;) {
		if (!strncmp(p, "hint=", 5)) {
			p += 5 + strspn(p + 5, "0123456789abcdefx");
			memcpy(out + n, "hint", 4);
			n += 4;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = 0;
}

/*
 * The preload's grow rule (preload/grow.c, grow_rule.c), which the
 * hugeperm policies apply when the trace recorded the hints' addresses: a
 * hinted area whose hint continues a kernel mapping is a heap's next
 * chunk, the kernel's; in block mode one at the end of a served area that
 * is writable and never ran is too.  Without the addresses (version 1
 * traces), every hinted mapping is taken as a 64 KiB-aligned hint and
 * served, as before.
 */
static void test_grow(void)
{
	uint64_t served, grown, blocks, served0, grown0, blocks0;
	char old[1024];
	/* Boehm's heap: a chunk, then two more each asked at the end of the
	 * last (64 KiB-aligned by chance). */
	const char *heap = "0 1 map 0x7f0000000000 64 rw-\n"
			   "1 1 map 0x7f0000040000 32 rw- hint=0x7f0000040000\n"
			   "2 1 map 0x7f0000060000 32 rw- hint=0x7f0000060000\n";
	without_addresses(heap, old, sizeof(old));
	areas_of(heap, "hugeperm-block", &served, &grown, &blocks);
	areas_of(old, "hugeperm-block", &served0, &grown0, &blocks0);
	ok(served == 0 && grown == 2,
	   "a heap's chunks that continue its kernel mapping: the "
	   "kernel's (%llu served, %llu given)",
	   (unsigned long long)served, (unsigned long long)grown);
	ok(served0 == 2 && grown0 == 0 && blocks == 1 && blocks0 == 2,
	   "... without the hints' addresses served as before (%llu), a block more "
	   "(%llu, %llu)",
	   (unsigned long long)served0, (unsigned long long)blocks, (unsigned long long)blocks0);
	areas_of(heap, "hugeperm", &served, &grown, &blocks);
	ok(served == 0 && grown == 2, "... in exact mode too (%llu given)",
	   (unsigned long long)grown);

	const char *code = "0 1 map 0x7f0000100000 16 rw- hint=0x7f0000100000\n"
			   "1 1 protect 0x7f0000100000 16 r-x\n"
			   "2 1 map 0x7f0000110000 16 rw- hint=0x7f0000110000\n";
	areas_of(code, "hugeperm-block", &served, &grown, &blocks);
	ok(served == 2 && grown == 0 && blocks == 1,
	   "block: a JIT's area asked at the end of its last, which ran: served, packed (%llu, "
	   "%llu blocks)",
	   (unsigned long long)served, (unsigned long long)blocks);

	/* The hint's alignment is the preload's test: 32 KiB-aligned is no area. */
	const char *odd = "0 1 map 0x7f0000208000 16 rw- hint=0x7f0000208000\n";
	without_addresses(odd, old, sizeof(old));
	areas_of(odd, "hugeperm-block", &served, &grown, &blocks);
	areas_of(old, "hugeperm-block", &served0, &grown0, &blocks0);
	ok(served == 0 && grown == 0 && served0 == 1,
	   "a hint not 64 KiB-aligned asks for no area (%llu); without its address it was one "
	   "(%llu)",
	   (unsigned long long)served, (unsigned long long)served0);

	/* Served or the kernel's, case by case: areas served, heap chunks given. */
	static const struct {
		const char *what, *policy, *text;
		uint64_t served, grown;
	} cases[] = {
		/* The first chunk served by chance (nothing below its hint), the
		 * next asked at its end: in block mode, the end of a served area
		 * that never ran and is writable is data's; exact mode does not
		 * know what ran. */
		{"block: a hint at the end of a served area that never ran: the kernel's",
		 "hugeperm-block",
		 "0 1 map 0x7f0000100000 32 rw- hint=0x7f0000100000\n"
		 "1 1 map 0x7f0000120000 32 rw- hint=0x7f0000120000\n",
		 1, 1},
		{"exact: served, growing from ours", "hugeperm",
		 "0 1 map 0x7f0000100000 32 rw- hint=0x7f0000100000\n"
		 "1 1 map 0x7f0000120000 32 rw- hint=0x7f0000120000\n",
		 2, 0},
		/* What the trace does not show (a file, a stack): the recorder's probe. */
		{"a hint above a mapping the trace does not show (grows): the kernel's",
		 "hugeperm-block",
		 "0 1 map 0x7f0000400000 16 rw- hint=0x7f0000400000|grows\n"
		 "1 1 map 0x7f0000500000 16 rw- hint=0x7f0000500000\n",
		 1, 1},
		{"... but a mapping the trace shows answers first: the served area below, which "
		 "ran",
		 "hugeperm-block",
		 "0 1 map 0x7f0000600000 16 rw- hint=0x7f0000600000\n"
		 "1 1 protect 0x7f0000600000 16 r-x\n"
		 "2 1 map 0x7f0000610000 16 rw- hint=0x7f0000610000|grows\n",
		 2, 0},
		/* A hole below the hint (the kernel mapping's last page unmapped). */
		{"a hint above an unmapped page: served", "hugeperm-block",
		 "0 1 map 0x7f0000300000 64 rw-\n"
		 "1 1 unmap 0x7f000033f000 1\n"
		 "2 1 map 0x7f0000340000 32 rw- hint=0x7f0000340000\n",
		 1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		areas_of(cases[i].text, cases[i].policy, &served, &grown, &blocks);
		ok(served == cases[i].served && grown == cases[i].grown,
		   "%s (%llu served, %llu given)", cases[i].what, (unsigned long long)served,
		   (unsigned long long)grown);
	}
}

int main(void)
{
	test_format();
	test_naive();
	test_cpa_merge();
	test_migratetype();
	test_pte_cache();
	test_pack();
	test_hugeperm();
	test_replay_semantics();
	test_synth();
	test_map();
	test_overlap();
	test_held();
	test_packed();
	test_grow();
	return tap_done();
}
