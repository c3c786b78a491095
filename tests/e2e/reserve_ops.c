/* SPDX-License-Identifier: MIT */
/*
 * reserve_ops - run under libhugeperm-preload.so by tests/e2e/reserve.sh.
 * Large PROT_NONE|MAP_NORESERVE reservations (the preload's code-range
 * window, 128 MiB to 1 GiB) stay the kernel's until the program asks for
 * code in them (preload/reserve.c): a data area committed RW in pieces
 * (Erlang's literal area) is never ours; a code range (V8, HotSpot) is
 * adopted at its address on its first executable commit, with every page's
 * protection and bytes; holes, fork, mremap, files mapped into it, more
 * reservations than the preload notes, and adoptions the preload cannot
 * make (its arenas used up, a system call failed) keep the kernel's
 * semantics.  Checked against /proc/self/maps and smaps.  Not linked with
 * the library: hp_owns() is reached through the preload.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel.h"
#include "pagemap_scan.h"
#include "preloaded.h"
#include "sysfault.h"
#include "tap.h"

#define RESV (ANON | MAP_NORESERVE)

static owns_fn owns;

static unsigned char *reserve(size_t len)
{
	unsigned char *p = mmap(NULL, len, PROT_NONE, RESV, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* x86-64 "mov eax, @value; ret" at @code (writable, or written by a
 * caller that made it so), then called. */
static int run_code(unsigned char *code, int value)
{
	const unsigned char op[] = {0xb8, (unsigned char)value, 0, 0, 0, 0xc3};
	memcpy(code, op, sizeof(op));
	__builtin___clear_cache((char *)code, (char *)code + sizeof(op));
	return ((int (*)(void))(void *)code)();
}

static bool bytes_are(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* An Erlang literal area: 1 GiB, committed RW with MAP_FIXED in pieces,
 * written, never executable. */
static void data_area(void)
{
	unsigned char *d = reserve(GIB);
	ok(d && !owns(d, 1) && kernel_prot_at((uintptr_t)d) == PROT_NONE &&
		   kernel_smaps_kb((uintptr_t)d, (uintptr_t)d + GIB, "Rss") == 0,
	   "a 1 GiB reservation is the kernel's: PROT_NONE, no memory, not hugeperm's");
	ok(d && mmap(d, 64 * KB, RW, ANON | MAP_FIXED, -1, 0) == d &&
		   mmap(d + 64 * KB, MB, RW, ANON | MAP_FIXED, -1, 0) == d + 64 * KB,
	   "committed RW in pieces with MAP_FIXED, as Erlang does");
	if (!d)
		return;
	memset(d, 0x5a, 64 * KB + MB);
	ok(!owns(d, GIB) && kernel_prot_at((uintptr_t)d) == RW &&
		   bytes_are(d, 64 * KB + MB, 0x5a) &&
		   kernel_prot_at((uintptr_t)d + 2 * MB) == PROT_NONE,
	   "data written there: still the kernel's, the rest still PROT_NONE");
	ok(mprotect(d + 64 * KB, MB, PROT_READ) == 0 &&
		   kernel_prot_at((uintptr_t)d + 64 * KB) == PROT_READ,
	   "mprotect without PROT_EXEC goes to the kernel");
	ok(munmap(d, GIB) == 0 && kernel_prot_at((uintptr_t)d) == -1 &&
		   kernel_prot_at((uintptr_t)d - 4 * KB) == -1 &&
		   kernel_prot_at((uintptr_t)d + GIB) == -1,
	   "munmap: gone, and nothing of ours is left beside it");
}

/* A V8 code range whose header page is written before its first code is
 * made executable, and a page written then made PROT_NONE: adopted with
 * their bytes. */
static void code_range(void)
{
	size_t len = 512 * MB + 252 * KB;
	unsigned char *r = reserve(len);
	ok(r && !owns(r, 1) && munmap(r + 512 * MB, 252 * KB) == 0,
	   "a V8 code range: the kernel's, its tail trimmed");
	if (!r)
		return;
	unsigned char *q = r + 4 * MB;
	ok(mprotect(r, 8 * KB, RW) == 0 && mprotect(r + 8 * KB, 4 * KB, PROT_NONE) == 0 &&
		   mprotect(q, 4 * KB, RW) == 0 && !owns(r, 1),
	   "a header committed RW, a guard NONE: still the kernel's");
	memset(r, 0x11, 8 * KB);
	memset(q, 0x77, 4 * KB);
	ok(mprotect(q, 4 * KB, PROT_NONE) == 0, "a page written, then made PROT_NONE");
	ok(mprotect(r + 12 * KB, 240 * KB, RWX) == 0 && owns(r, 1) && owns(r + 511 * MB, 1),
	   "the first RWX commit: the whole range is hugeperm's, at its address");
	ok(bytes_are(r, 8 * KB, 0x11), "the header's bytes were kept");
	ok(mprotect(q, 8 * KB, PROT_READ) == 0 && bytes_are(q, 4 * KB, 0x77) &&
		   bytes_are(q + 4 * KB, 4 * KB, 0),
	   "the PROT_NONE page's bytes were kept, its neighbours read zero");
	is(run_code(r + 12 * KB, 41), 41, "code there runs");
	long huge = kernel_smaps_kb((uintptr_t)r, (uintptr_t)r + 2 * MB, "AnonHugePages");
	ok(huge >= 2048, "its block is huge-mapped (%ld kB)", huge);
	ok(mprotect(r + 600 * MB, 4 * KB, RW) == -1 && errno == ENOMEM, "past its end: ENOMEM");
	ok(munmap(r, 512 * MB) == 0 && !owns(r, 1) && kernel_prot_at((uintptr_t)r) == -1,
	   "unmapped: gone, its address space given back");
}

/* V8 asks for its range at a hint right above the program break (or
 * right after node's binary, below it): held 64 MiB above the break's room
 * (256 MiB the heap grows into), not at the next free 1 GiB slot, which
 * may be out of reach of V8's builtins (0x80000000 for non-PIE node when
 * the break is above 768 MiB: V8 then maps a copy of its builtins into the
 * range).  Adopted there as any code range. */
static void near_break(void)
{
	uintptr_t brk_now = (uintptr_t)sbrk(0), room = brk_now + 256 * MB;
	/* 64 MiB above the room (the break grows before adoption);
	 * never in the first 1 GiB slot (a non-PIE build's break may be
	 * there): at its end then. */
	uintptr_t want = room + 64 * MB + 4 * KB < 1024 * MB ? 1024 * MB : room + 64 * MB;
	size_t len = 512 * MB;
	unsigned char *r = mmap((void *)(brk_now + 2 * MB), len, PROT_NONE, RESV, -1, 0);
	ok(r != MAP_FAILED && (uintptr_t)r >= want && (uintptr_t)r <= want + 2 * MB + 4 * KB &&
		   kernel_prot_at((uintptr_t)r) == PROT_NONE && kernel_prot_at(room - 1) == -1,
	   "a range hinted right above the break: held 64 MiB above the break's room (%#lx, "
	   "break %#lx), the room left free",
	   (unsigned long)(uintptr_t)r, (unsigned long)brk_now);
	if (r == MAP_FAILED)
		return;
	ok(mprotect(r, 64 * KB, RWX) == 0 && owns(r, 1) && run_code(r, 5) == 5 &&
		   munmap(r, len) == 0 && !owns(r, 1),
	   "adopted there on its first RWX commit, and unmapped");
}

/* A hole made in a reservation, a child that adopts its own copy, the two
 * halves adopted one by one. */
static void holes_and_fork(void)
{
	unsigned char *h = reserve(256 * MB);
	ok(h && munmap(h + 64 * MB, 2 * MB) == 0, "a 256 MiB reservation with a 2 MiB hole");
	if (!h)
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		errno = 0;
		bool good = mprotect(h + 128 * MB, 64 * KB, RWX) == 0 && owns(h + 128 * MB, 1) &&
			    run_code(h + 128 * MB, 3) == 3 &&
			    mprotect(h + 64 * MB, 4 * KB, RWX) == -1 && errno == ENOMEM;
		_exit(good ? 0 : 1);
	}
	int st = -1;
	ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a child adopts its copy on its first RWX commit; the hole stays unmapped");
	ok(!owns(h, 1) && !owns(h + 128 * MB, 1) &&
		   kernel_prot_at((uintptr_t)h + 128 * MB) == PROT_NONE,
	   "the parent's range is untouched, the kernel's");
	ok(mprotect(h, 64 * KB, RWX) == 0 && owns(h, 1) && !owns(h + 128 * MB, 1) &&
		   run_code(h, 4) == 4,
	   "the part below the hole is adopted alone");
	/* The library holds one chunk a 1 GiB slot: the lower part's has it. */
	ok(mprotect(h + 128 * MB, 64 * KB, RWX) == 0 && !owns(h + 128 * MB, 1) &&
		   run_code(h + 128 * MB, 9) == 9 && kernel_prot_at((uintptr_t)h + 64 * MB) == -1,
	   "the part above it, in the same slot, stays the kernel's; its code runs; the hole "
	   "stays unmapped");
	ok(munmap(h, 256 * MB) == 0 && kernel_prot_at((uintptr_t)h) == -1 &&
		   kernel_prot_at((uintptr_t)h + 128 * MB) == -1,
	   "unmapped whole: gone");
}

/* Files mapped into reservations; a reservation moved away. */
static void files_and_moves(void)
{
	int fd = (int)syscall(SYS_memfd_create, "resv", 0);
	ok(fd >= 0 && ftruncate(fd, 64 * KB) == 0, "a memfd");
	unsigned char *f = reserve(128 * MB);
	ok(f && mmap(f + 2 * MB, 4 * KB, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == f + 2 * MB &&
		   mprotect(f, 64 * KB, RWX) == 0 && !owns(f, 1) && run_code(f, 5) == 5,
	   "a file mapped into it first: it stays the kernel's, the RWX commit made as asked");
	if (f)
		munmap(f, 128 * MB);
	unsigned char *g = reserve(128 * MB);
	ok(g && mmap(g + 64 * MB, 4 * KB, RX, MAP_PRIVATE | MAP_FIXED, fd, 0) == g + 64 * MB &&
		   owns(g, 1) && kernel_prot_at((uintptr_t)g + 64 * MB) == RX,
	   "a file mapped executable into it (V8's builtins): adopted, the file mapped there");
	if (g)
		munmap(g, 128 * MB);
	close(fd);
	unsigned char *m = reserve(128 * MB);
	ok(m && mremap(m, 128 * MB, 64 * MB, 0) == m && mprotect(m, 64 * KB, RWX) == 0 &&
		   !owns(m, 1) && run_code(m, 6) == 6,
	   "resized with mremap: the kernel's for good");
	if (m)
		munmap(m, 64 * MB);
}

/* Pages of [p, p + len) the kernel holds memory for (mincore), or -1. */
static long resident(const unsigned char *p, size_t len)
{
	static unsigned char vec[2 * MB / 4096];
	if (len > sizeof(vec) * 4096 || mincore((void *)p, len, vec))
		return -1;
	long n = 0;
	for (size_t i = 0; i < len / 4096; i++)
		n += vec[i] & 1;
	return n;
}

/* Is the block at @b one huge mapping?  PAGEMAP_SCAN, else smaps. */
static bool block_huge(const unsigned char *b)
{
	long pages = kernel_huge_pages((uintptr_t)b, 2 * MB);
	if (pages >= 0)
		return pages == 512;
	return kernel_smaps_kb((uintptr_t)b, (uintptr_t)b + 2 * MB, "AnonHugePages") >= 2048;
}

/* V8 placed out of reach of its binary's builtins maps them into its code
 * range (a file there: part of the range is the kernel's), and at exit
 * frees its code pages one by one: each made PROT_NONE, then
 * MADV_DONTNEED.  The block whose last page goes is dropped whole, not
 * split by that MADV_DONTNEED (main at 8bc7ff1: one split a block, 12 in a
 * node-bigcode run whose range had landed out of reach). */
static void builtins_teardown(void)
{
	size_t len = 512 * MB + 252 * KB;
	int fd = (int)syscall(SYS_memfd_create, "builtins", 0);
	unsigned char stamp[4096];
	memset(stamp, 0x5c, sizeof(stamp));
	ok(fd >= 0 && ftruncate(fd, 1600 * KB) == 0 && pwrite(fd, stamp, 4096, 0) == 4096,
	   "a builtins file");
	unsigned char *r = reserve(len), *bi = r + 510 * MB + 256 * KB;
	ok(r && munmap(r + 512 * MB, 252 * KB) == 0 &&
		   mmap(bi, 1600 * KB, RX, MAP_PRIVATE | MAP_FIXED, fd, 0) == bi && owns(r, 1),
	   "a V8 code range with its builtins mapped into it: adopted");
	if (!r)
		return;
	unsigned char *b = r + 2 * MB; /* one block: 8 V8 pages of 256 KiB */
	bool good = true;
	for (int i = 0; i < 8; i++) {
		unsigned char *pg = b + i * 256 * KB;
		good &= mprotect(pg, 8 * KB, RW) == 0 &&
			mprotect(pg + 8 * KB, 4 * KB, PROT_NONE) == 0 &&
			mprotect(pg + 12 * KB, 240 * KB, RWX) == 0 &&
			mprotect(pg + 252 * KB, 4 * KB, PROT_NONE) == 0;
		if (!good)
			break;
		memset(pg, 0x11, 8 * KB);
		good &= run_code(pg + 12 * KB, i) == i;
	}
	ok(good && block_huge(b), "8 V8 pages committed in one block, code run there: it is huge");
	long s0 = kernel_vmstat("thp_split_pmd");
	bool huge_till_last = true;
	for (int i = 0; i < 8 && good; i++) {
		unsigned char *pg = b + i * 256 * KB;
		good &= mprotect(pg, 256 * KB, PROT_NONE) == 0 &&
			madvise(pg, 256 * KB, MADV_DONTNEED) == 0;
		if (i < 7)
			huge_till_last &= block_huge(b);
	}
	long splits = kernel_vmstat("thp_split_pmd") - s0;
	ok(good && splits == 0 && huge_till_last,
	   "freed page by page as V8 does at exit (NONE, then MADV_DONTNEED): no split "
	   "(thp_split_pmd +%ld), the block huge until its last page went",
	   splits);
	long res = resident(b, 2 * MB);
	ok(kernel_prot_at((uintptr_t)b) == PROT_NONE && res == 0,
	   "the block is PROT_NONE and holds no memory (%ld pages resident)", res);
	ok(mprotect(b, 2 * MB, RW) == 0 && bytes_are(b, 2 * MB, 0),
	   "committed again, it reads zero");
	ok(kernel_prot_at((uintptr_t)bi) == RX && bytes_are(bi, 4096, 0x5c),
	   "the builtins' mapping is untouched");
	munmap(r, 512 * MB);
	close(fd);
}

static sigjmp_buf segv_jump;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jump, 1);
}

/* The byte at @p, or -1 if reading it faults (SIGSEGV). */
static int read_byte(const volatile unsigned char *p)
{
	struct sigaction sa = {.sa_handler = on_segv}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	int v = sigsetjmp(segv_jump, 1) ? -1 : *p;
	sigaction(SIGSEGV, &old, NULL);
	return v;
}

/* A V8 code range (512 MiB, its 252 KiB tail trimmed), adopted on its
 * first RWX commit; NULL if it was not. */
static unsigned char *v8_adopted(void)
{
	unsigned char *r = reserve(512 * MB + 252 * KB);
	if (r && munmap(r + 512 * MB, 252 * KB) == 0 && mprotect(r, 8 * KB, RW) == 0 &&
	    mprotect(r + 12 * KB, 240 * KB, RWX) == 0 && owns(r, 1))
		return r;
	if (r)
		munmap(r, 512 * MB + 252 * KB);
	return NULL;
}

/* A page of a served code range made PROT_NONE keeps its bytes, as the
 * kernel keeps them until munmap or MADV_DONTNEED, when no page of its
 * block is accessible too; a page the program discards reads zero when it
 * is opened again, page for page; a huge block whose pages are all
 * PROT_NONE stays huge, its memory kept, and is not split by the
 * MADV_DONTNEED of some of them (main at 1f75cc2 dropped the memory of a
 * block with no page accessible: such a page read zero). */
static void none_keeps_bytes(void)
{
	unsigned char *r = v8_adopted();
	bool good = r != NULL;
	if (!good) {
		for (int i = 0; i < 6; i++)
			ok(false, "a V8 code range adopted on its first RWX commit");
		return;
	}
	unsigned char *b = r + 4 * MB, *c = b + 64 * KB; /* a block of their own */
	good = mprotect(b, 4 * KB, RW) == 0 && memset(b, 0x6b, 4 * KB) &&
	       mprotect(b, 4 * KB, PROT_NONE) == 0;
	long res = resident(b, 2 * MB);
	ok(good && kernel_prot_at((uintptr_t)b) == PROT_NONE && read_byte(b) == -1 && res > 0 &&
		   mprotect(b, 4 * KB, PROT_READ) == 0 && bytes_are(b, 4 * KB, 0x6b),
	   "in an adopted V8 code range, a page committed RW, written, made PROT_NONE (its "
	   "block has no page accessible): its memory kept (%ld pages resident), readable "
	   "again it holds its bytes",
	   res);
	good = mprotect(c, 4 * KB, RW) == 0 && memset(c, 0x6c, 4 * KB) &&
	       mprotect(b, 128 * KB, PROT_NONE) == 0 && madvise(b, 4 * KB, MADV_DONTNEED) == 0 &&
	       mprotect(b, 128 * KB, PROT_READ) == 0;
	ok(good && bytes_are(b, 4 * KB, 0) && bytes_are(c, 4 * KB, 0x6c),
	   "it and a second page made PROT_NONE, it discarded (MADV_DONTNEED): opened again, it "
	   "reads zero and the second holds its bytes");

	/* A huge block of two 1 MiB pieces of code (V8's pages, larger). */
	unsigned char *h = r + 8 * MB;
	good = mprotect(h, MB, RWX) == 0 && mprotect(h + MB, MB, RWX) == 0 && memset(h, 0x21, MB) &&
	       memset(h + MB, 0x22, MB) && block_huge(h) && mprotect(h, 2 * MB, PROT_NONE) == 0;
	res = resident(h, 2 * MB);
	ok(good && kernel_prot_at((uintptr_t)h) == PROT_NONE && res == 512 && block_huge(h),
	   "a huge block of code made PROT_NONE whole: still huge, its memory kept (%ld pages)",
	   res);
	long s0 = kernel_vmstat("thp_split_pmd");
	good = madvise(h, MB, MADV_DONTNEED) == 0 && block_huge(h) && mprotect(h, 2 * MB, RWX) == 0;
	long splits = kernel_vmstat("thp_split_pmd") - s0;
	ok(good && splits == 0 && block_huge(h) && bytes_are(h, MB, 0) &&
		   bytes_are(h + MB, MB, 0x22),
	   "its first piece discarded, both made RWX again: no split (thp_split_pmd +%ld), the "
	   "discarded piece reads zero, the other holds its bytes",
	   splits);
	s0 = kernel_vmstat("thp_split_pmd");
	bool huge_till_last = true;
	for (int i = 0; i < 2 && good; i++) {
		good &= mprotect(h + i * MB, MB, PROT_NONE) == 0 &&
			madvise(h + i * MB, MB, MADV_DONTNEED) == 0;
		if (i == 0)
			huge_till_last &= block_huge(h);
	}
	splits = kernel_vmstat("thp_split_pmd") - s0;
	res = resident(h, 2 * MB);
	ok(good && splits == 0 && huge_till_last && res == 0 && mprotect(h, 2 * MB, RW) == 0 &&
		   bytes_are(h, 2 * MB, 0),
	   "freed piece by piece as V8 does (NONE, then MADV_DONTNEED): huge until the last went, "
	   "then dropped whole (thp_split_pmd +%ld, %ld pages resident), zero when committed again",
	   splits, res);
	/* MADV_FREE lets the pages keep their bytes or read zero: the
	 * PROT_NONE ones are discarded as with MADV_DONTNEED (main at 1f75cc2
	 * dropped the block at the second PROT_NONE). */
	unsigned char *f = r + 12 * MB;
	good = mprotect(f, 2 * MB, RWX) == 0 && memset(f, 0x23, 2 * MB) && block_huge(f);
	s0 = kernel_vmstat("thp_split_pmd");
	for (int i = 0; i < 2 && good; i++)
		good &= mprotect(f + i * MB, MB, PROT_NONE) == 0 &&
			madvise(f + i * MB, MB, MADV_FREE) == 0;
	splits = kernel_vmstat("thp_split_pmd") - s0;
	res = resident(f, 2 * MB);
	ok(good && splits == 0 && res == 0,
	   "freed so with MADV_FREE: dropped whole with its last piece (thp_split_pmd +%ld, %ld "
	   "pages resident)",
	   splits, res);
	munmap(r, 512 * MB);
}

/* A reader thread for stale_pages(): reads *reader_page while the main
 * thread discards it and opens it again.  reader_seq is odd from the
 * discard's return to the reopen's: a read between two equal odd values
 * was made in that window, when the page must read zero (the main thread
 * writes it only while reader_seq is even). */
static volatile unsigned char *reader_page;
static volatile unsigned long reader_seq;
static volatile int reader_stop;
static volatile long reader_reads, reader_old;
static __thread sigjmp_buf reader_jump;

static void reader_segv(int sig)
{
	(void)sig;
	siglongjmp(reader_jump, 1);
}

static void *reader(void *unused)
{
	(void)unused;
	while (!reader_stop) {
		if (sigsetjmp(reader_jump, 1))
			continue; /* PROT_NONE: a fault, as the kernel's */
		unsigned long before = __atomic_load_n(&reader_seq, __ATOMIC_ACQUIRE);
		unsigned char v = reader_page[0];
		if ((before & 1) && __atomic_load_n(&reader_seq, __ATOMIC_ACQUIRE) == before) {
			reader_reads++;
			reader_old += v == 0x55;
		}
	}
	return NULL;
}

/* Pages discarded while PROT_NONE (stale: zeroed before opened) read zero
 * from the moment the discard returns, in every thread, and once opened
 * and written they keep what was written, whatever their block does
 * next.  Review of r16-keep: a stale region across a block boundary,
 * opened by an mprotect that began in the block below, stayed marked and
 * was zeroed again by later reconciles (data written after lost), and a
 * stale page was opened before it was zeroed (another thread read the
 * discarded bytes: 16,012 of 22,248 reads in the reviewer's program). */
static void stale_pages(void)
{
	unsigned char *r = v8_adopted();
	bool good = r != NULL;
	unsigned char *b2 = r + 6 * MB, *s = b2 - 64 * KB, *below = b2 - 128 * KB;
	good = good && mprotect(s, 128 * KB, RW) == 0 && memset(s, 0x55, 128 * KB) &&
	       mprotect(s, 128 * KB, PROT_NONE) == 0 && madvise(s, 128 * KB, MADV_DONTNEED) == 0 &&
	       mprotect(below, 192 * KB, RW) == 0 && bytes_are(s, 128 * KB, 0) &&
	       memset(s, 0x66, 128 * KB) && mprotect(s, 128 * KB, PROT_READ) == 0;
	bool kept = good && bytes_are(s, 128 * KB, 0x66);
	good = good && mprotect(b2 + MB, 4 * KB, RW) == 0 && memset(b2 + MB, 1, 4 * KB) &&
	       mprotect(below, 4 * KB, PROT_NONE) == 0;
	ok(kept && good && bytes_are(s, 128 * KB, 0x66),
	   "128 KiB across a block boundary, discarded while PROT_NONE, opened by an mprotect "
	   "from the block below: reads zero, keeps what is written then, after its "
	   "protection and its blocks' other pages change");

	unsigned char *page = r + 20 * MB;
	reader_page = page;
	good = good && mprotect(page + 64 * KB, 4 * KB, RW) == 0 &&
	       memset(page + 64 * KB, 1, 4 * KB) && mprotect(page, 4 * KB, RW) == 0;
	struct sigaction sa = {.sa_handler = reader_segv}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	pthread_t t;
	good = good && pthread_create(&t, NULL, reader, NULL) == 0;
	int rounds = 0;
	for (; rounds < 20000 && good && (rounds < 3000 || reader_reads < 200); rounds++) {
		memset(page, 0x55, 4 * KB);
		good = mprotect(page, 4 * KB, PROT_NONE) == 0 &&
		       madvise(page, 4 * KB, MADV_DONTNEED) == 0;
		__atomic_add_fetch(&reader_seq, 1, __ATOMIC_RELEASE); /* odd: discarded */
		good = good && mprotect(page, 4 * KB, RW) == 0 && page[0] == 0;
		__atomic_add_fetch(&reader_seq, 1, __ATOMIC_RELEASE);
	}
	reader_stop = 1;
	if (good)
		pthread_join(t, NULL);
	sigaction(SIGSEGV, &old, NULL);
	ok(good && reader_reads > 0 && reader_old == 0,
	   "a page written, made PROT_NONE, discarded and opened RW, %d times: another "
	   "thread's %ld reads after each discard returned never saw its old bytes (%ld did)",
	   rounds, reader_reads, reader_old);

	/* Opened without write, the stale page is zeroed through
	 * /proc/self/mem, not discarded: r16-keep's MADV_DONTNEED there
	 * split the block. */
	unsigned char *h = r + 30 * MB;
	good = r && mprotect(h, 2 * MB, RWX) == 0 && memset(h, 0x21, 2 * MB) && block_huge(h) &&
	       mprotect(h, 2 * MB, PROT_NONE) == 0 && madvise(h, 4 * KB, MADV_DONTNEED) == 0;
	long s0 = kernel_vmstat("thp_split_pmd");
	good = good && mprotect(h, 2 * MB, RX) == 0;
	long splits = kernel_vmstat("thp_split_pmd") - s0;
	ok(good && splits == 0 && block_huge(h) && bytes_are(h, 4 * KB, 0) &&
		   bytes_are(h + 4 * KB, 2 * MB - 4 * KB, 0x21),
	   "a huge block of code made PROT_NONE, a page of it discarded, the block opened RX: "
	   "the page reads zero, the rest its bytes, still huge (thp_split_pmd +%ld)",
	   splits);

	/* Its block above dropped (nothing else there), its block below kept
	 * (another page holds bytes): opened, the dropped part is not
	 * written with zeros, which would take its memory again. */
	unsigned char *ab = r + 42 * MB, *x = ab - 64 * KB;
	good = r && mprotect(ab - 2 * MB, 4 * KB, RW) == 0 && memset(ab - 2 * MB, 1, 4 * KB) &&
	       mprotect(x, 128 * KB, RW) == 0 && memset(x, 0x55, 128 * KB) &&
	       mprotect(x, 128 * KB, PROT_NONE) == 0 && madvise(x, 128 * KB, MADV_DONTNEED) == 0;
	long above = resident(ab, 2 * MB);
	good = good && mprotect(x, 128 * KB, RW) == 0;
	long opened = resident(ab, 2 * MB);
	ok(good && above == 0 && opened == 0 && bytes_are(x, 128 * KB, 0),
	   "discarded across a block boundary, the block above dropped: opened, it reads zero and "
	   "that block takes no memory (%ld, then %ld pages resident)",
	   above, opened);
	if (r)
		munmap(r, 512 * MB);
}

/* The first page of @blk committed RW, written and made PROT_NONE again (a
 * reconcile of the block), then: is @at still @prot and 64 KiB of 0x5c? */
static bool survives_cycle(unsigned char *blk, unsigned char *at, int prot)
{
	bool cycled = mprotect(blk, 4 * KB, RW) == 0 && memset(blk, 1, 4 * KB) &&
		      mprotect(blk, 4 * KB, PROT_NONE) == 0;
	return cycled && kernel_prot_at((uintptr_t)at) == prot && read_byte(at) == 0x5c &&
	       read_byte(at + 64 * KB - 1) == 0x5c;
}

/* Kernel mappings the program puts inside an adopted code range, where no
 * region of it was (a file mapped into a hole; an anonymous mapping moved
 * there with mremap), keep the kernel's semantics when the blocks around
 * them are reconciled; and pages the program unmaps from a range holding
 * such mappings fault and hold no memory, as in any other (main at
 * 8bc7ff1: the file and the moved mapping became PROT_NONE and faulted;
 * the unmapped pages kept their bytes). */
static void kernel_mappings_inside(void)
{
	size_t len = 512 * MB + 252 * KB;
	int fd = (int)syscall(SYS_memfd_create, "inside", 0);
	static unsigned char stamp[64 * KB];
	memset(stamp, 0x5c, sizeof(stamp));
	ok(fd >= 0 && ftruncate(fd, 64 * KB) == 0 && pwrite(fd, stamp, 64 * KB, 0) == 64 * KB,
	   "a 64 KiB file of 0x5c");
	unsigned char *r = reserve(len);
	ok(r && munmap(r + 512 * MB, 252 * KB) == 0 && mprotect(r, 8 * KB, RW) == 0 &&
		   mprotect(r + 12 * KB, 240 * KB, RWX) == 0 && owns(r, 1),
	   "a V8 code range, adopted on its first RWX commit");
	if (!r)
		return;

	unsigned char *b = r + 6 * MB, *f = b + MB;
	ok(munmap(f, 64 * KB) == 0 &&
		   mmap(f, 64 * KB, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == f,
	   "the file mapped into a hole the program unmapped");
	ok(survives_cycle(b, f, PROT_READ),
	   "a page of its block committed, written and freed: the file is still r--p and "
	   "reads 0x5c");

	unsigned char *c = r + 8 * MB, *m = c + MB;
	unsigned char *a = mmap(NULL, 64 * KB, RW, ANON, -1, 0);
	ok(a != MAP_FAILED && memset(a, 0x5c, 64 * KB) &&
		   mremap(a, 64 * KB, 64 * KB, MREMAP_MAYMOVE | MREMAP_FIXED, m) == m,
	   "an anonymous mapping moved into the range with mremap(MREMAP_FIXED)");
	ok(survives_cycle(c, m, RW),
	   "a page of its block committed, written and freed: the moved mapping is still "
	   "rw-p and reads 0x5c");
	ok(munmap(m, 64 * KB) == 0 && kernel_prot_at((uintptr_t)m) == PROT_NONE &&
		   read_byte(m) == -1,
	   "unmapped by the program: reserved again (---p), a read faults");
	unsigned char *over = mmap(NULL, 64 * KB, RW, ANON, -1, 0),
		      *dst = mmap(NULL, 64 * KB, PROT_READ, ANON, -1, 0);
	ok(over != MAP_FAILED && dst != MAP_FAILED && memset(over, 0x5c, 64 * KB) &&
		   mremap(over, 64 * KB, 64 * KB, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst &&
		   !owns(dst, 64 * KB) && read_byte(dst) == 0x5c,
	   "moved over a mapping of the kernel's, outside the range: moved, as ever");
	munmap(dst, 64 * KB);

	/* A file over the program's regions (V8's builtins): the allocation
	 * was tainted before this change too. */
	unsigned char *t = r + 20 * MB;
	ok(mmap(t, 64 * KB, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == t && read_byte(t) == 0x5c,
	   "a file mapped over its PROT_NONE pages");
	unsigned char *w = r + 10 * MB;
	bool wrote = mprotect(w, 2 * MB, RW) == 0 && memset(w, 7, 2 * MB);
	ok(wrote && munmap(w, 2 * MB) == 0 && kernel_prot_at((uintptr_t)w) == PROT_NONE &&
		   resident(w, 2 * MB) == 0 && read_byte(w) == -1 &&
		   read_byte(w + 2 * MB - 1) == -1,
	   "a block written and unmapped: ---p, no memory, a read faults");
	unsigned char *v = t + MB; /* in the file's block */
	wrote = mprotect(v, 8 * KB, RW) == 0 && memset(v, 7, 8 * KB);
	ok(wrote && munmap(v, 8 * KB) == 0 && kernel_prot_at((uintptr_t)v) == PROT_NONE &&
		   resident(v, 8 * KB) == 0 && read_byte(v) == -1,
	   "two pages of the file's block written and unmapped: ---p, no memory, a read faults");
	ok(kernel_prot_at((uintptr_t)t) == PROT_READ && read_byte(t + 64 * KB - 1) == 0x5c &&
		   read_byte(f) == 0x5c,
	   "the files are untouched");
	munmap(r, 512 * MB);
	close(fd);

	/* hugeperm's address space the program was never given: a chunk's
	 * free part, 8 MiB past a served RWX mapping's block. */
	unsigned char *x = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	unsigned char *free_part = (unsigned char *)((uintptr_t)x & ~(2 * MB - 1)) + 8 * MB;
	unsigned char *src = mmap(NULL, 64 * KB, RW, ANON, -1, 0);
	ok(x != MAP_FAILED && src != MAP_FAILED && owns(x, 1) && owns(free_part, 1) &&
		   kernel_prot_at((uintptr_t)free_part) == PROT_NONE && memset(src, 0x5c, 64 * KB),
	   "a served RWX mapping; its chunk's free part, PROT_NONE");
	errno = 0;
	void *moved = mremap(src, 64 * KB, 64 * KB, MREMAP_MAYMOVE | MREMAP_FIXED, free_part);
	ok(moved == MAP_FAILED && errno == ENOMEM && read_byte(src) == 0x5c &&
		   kernel_prot_at((uintptr_t)free_part) == PROT_NONE,
	   "mremap(MREMAP_FIXED) onto it: ENOMEM, as MAP_FIXED gives, nothing moved (%p, "
	   "errno %d)",
	   moved, errno);
	munmap(src, 64 * KB);
	munmap(x, 64 * KB);
}

/* More reservations than the preload notes; adoptions it cannot make
 * because its arenas are used up. */
static void limits(void)
{
	enum { N = 40 };
	unsigned char *r[N];
	int mapped = 0, adopted = 0, kept = -1;
	for (int i = 0; i < N; i++)
		mapped += (r[i] = reserve(128 * MB)) != NULL;
	is(mapped, N, "%d reservations of 128 MiB", N);
	for (int i = 0; i < N && r[i]; i++) {
		if (mprotect(r[i], 8 * KB, RW))
			break;
		r[i][0] = 0x42; /* a byte to carry over */
		if (mprotect(r[i] + 64 * KB, 64 * KB, RWX))
			break;
		if (owns(r[i], 1))
			adopted++;
		else if (kept < 0)
			kept = i;
	}
	ok(adopted > 0 && kept > 0, "%d adopted, then the rest left the kernel's (from #%d)",
	   adopted, kept);
	bool good = kept > 0;
	for (int i = kept > 0 ? kept : N; i < N && r[i]; i++)
		good &= !owns(r[i], 1) && r[i][0] == 0x42 &&
			kernel_prot_at((uintptr_t)r[i]) == RW && run_code(r[i] + 64 * KB, 7) == 7;
	ok(good, "those kept their pages, protections and bytes, and their code runs");
	for (int i = 0; i < N; i++)
		if (r[i])
			munmap(r[i], 128 * MB);
}

/* The preload's own munmap of the range fails as it adopts it (a system
 * call failed, through seccomp): the range stays the kernel's, as it was. */
static int fail_resv_munmap(long nr, const long args[6])
{
	return nr == SYS_munmap && (size_t)args[1] == 128 * MB ? ENOMEM : 0;
}

static void failed_adoption(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		unsigned char *r = reserve(128 * MB);
		if (!r || mprotect(r, 4 * KB, RW) || sysfault_install())
			_exit(2);
		r[0] = 0x33;
		sysfault_policy = fail_resv_munmap;
		sysfault_armed = true;
		int rc = mprotect(r + 64 * KB, 64 * KB, RWX);
		sysfault_armed = false;
		bool good = rc == 0 && sysfault_failed > 0 && !owns(r, 1) && r[0] == 0x33 &&
			    kernel_prot_at((uintptr_t)r) == RW && run_code(r + 64 * KB, 8) == 8;
		_exit(good ? 0 : 1);
	}
	int st = -1;
	ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "the adoption's munmap fails: the range stays the kernel's, bytes and protections kept, "
	   "the call made (status %d)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* A kernel without PAGEMAP_SCAN (before Linux 6.7: ENOTTY, through
 * seccomp): the adoption reads /proc/self/pagemap instead, and a page
 * written before it keeps its bytes. */
static int no_pagemap_scan(long nr, const long args[6])
{
	return nr == SYS_ioctl && (unsigned long)args[1] == PM_PAGEMAP_SCAN ? ENOTTY : 0;
}

static void old_kernel_adoption(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		unsigned char *r = reserve(128 * MB);
		if (!r || mprotect(r + 8 * MB, 4 * KB, RW) || sysfault_install())
			_exit(2);
		r[8 * MB] = 0x44;
		if (mprotect(r + 8 * MB, 4 * KB, PROT_NONE))
			_exit(2);
		sysfault_policy = no_pagemap_scan;
		sysfault_armed = true;
		int rc = mprotect(r + 64 * KB, 64 * KB, RWX);
		sysfault_armed = false;
		bool good = rc == 0 && sysfault_failed > 0 && owns(r, 1) &&
			    mprotect(r + 8 * MB, 4 * KB, PROT_READ) == 0 && r[8 * MB] == 0x44 &&
			    run_code(r + 64 * KB, 9) == 9;
		_exit(good ? 0 : 1);
	}
	int st = -1;
	bool waited = pid > 0 && waitpid(pid, &st, 0) == pid;
	ok(waited && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "no PAGEMAP_SCAN (ENOTTY): adopted, a page written before kept its bytes (status %d)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* `reserve_ops v8`: a V8 code range's life, for reserve.sh to count its
 * system calls: reserved, its tail trimmed, a header RW, the first code
 * RWX (the range adopted), code run, the range unmapped.  Prints
 * "adopted 1" when it was served. */
static int v8_life(void)
{
	size_t len = 512 * MB + 252 * KB;
	unsigned char *r = reserve(len);
	if (!r || munmap(r + 512 * MB, 252 * KB) || mprotect(r, 8 * KB, RW))
		return 1;
	memset(r, 0x11, 8 * KB);
	if (mprotect(r + 12 * KB, 240 * KB, RWX) || run_code(r + 12 * KB, 7) != 7)
		return 1;
	printf("adopted %d\n", owns && owns(r, 1));
	return munmap(r, 512 * MB) ? 1 : 0;
}

int main(int argc, char **argv)
{
	owns = preloaded_owns();
	if (argc > 1 && !strcmp(argv[1], "v8"))
		return v8_life();
	if (!owns)
		tap_skip_all("not running under libhugeperm-preload.so");
	tap_plan(63);
	data_area();
	code_range();
	near_break();
	holes_and_fork();
	files_and_moves();
	builtins_teardown();
	none_keeps_bytes();
	stale_pages();
	kernel_mappings_inside();
	limits();
	failed_adoption();
	old_kernel_adoption();
	return tap_done();
}
