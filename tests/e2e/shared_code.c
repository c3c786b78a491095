/* SPDX-License-Identifier: MIT */
/*
 * shared_code - a JIT's code in shared memory, the ways BEAM, sljit and
 * PHP's opcache JIT keep it, for tests/e2e/shared_code.sh, which runs it
 * with and without the preload and compares what it prints:
 *
 *   memfd    a memfd mapped twice, MAP_SHARED: code written through the RW
 *            view runs through the RX view (BEAM, sljit's PROT allocator);
 *   tmpfile  the same with an O_TMPFILE file of /dev/shm (sljit without
 *            memfd_create);
 *   anon     MAP_SHARED|MAP_ANONYMOUS memory flipped RW <-> RX (PHP);
 *   rlimit   a view mapped with no address space to spare (RLIMIT_AS);
 *   chunks   sljit's SLJIT_PROT_EXECUTABLE_ALLOCATOR exactly: hundreds of
 *            64 KiB chunks, each its own memfd mapped RW then RX and
 *            closed; code generated through RW and called through RX,
 *            chunks freed and made again, a forked child that keeps its
 *            chunks while the parent frees and reuses;
 *   edges    (edges deepbind: after an RTLD_DEEPBIND dlopen)
 *            the same chunks used in ways sljit does not: the fd kept and
 *            written, ftruncated and mapped again, dup'ed, without
 *            FD_CLOEXEC, an O_TMPFILE, other sizes, the RW view moved with
 *            mremap, the RX view made writable, MAP_FIXED over a freed RX
 *            view, a fork before the close;
 *   nofile   chunks made with no file descriptor to spare (RLIMIT_NOFILE):
 *            the preload's own calls fail, the program's work as asked.
 *
 * Each checks what the program relies on: the views see each other's
 * writes, ftruncate growth (a bigger file mapped again), a forked child
 * shares the memory both ways, munmap of one view leaves the other.  With
 * --huge (under the preload) it also checks, in the kernel's view
 * (/proc/self/smaps ShmemPmdMapped/FilePmdMapped of the VMA the code starts
 * in, kview.h), that the code it runs is huge-mapped within 3 seconds, and says so on stderr only:
 * stdout is the same with and without the preload.  Exit 1 on any difference.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kview.h"

#define MB (1UL << 20)
#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

static bool huge_check;
static int failures;

static void fail(const char *what)
{
	fprintf(stderr, "shared_code: %s (%s)\n", what, strerror(errno));
	failures++;
}

/* x86-64 "mov eax, v; ret" at @at, through the writable view. */
static void emit(unsigned char *at, int v)
{
	at[0] = 0xb8;
	memcpy(at + 1, &v, 4);
	at[5] = 0xc3;
}

static int call(const unsigned char *at)
{
	int (*fn)(void);
	memcpy(&fn, &at, sizeof(fn)); /* the one way C allows it */
	return fn();
}

/* --huge: the @units 2 MiB units from @addr (code the program ran) become
 * huge-mapped within 3 s (the preload's collapser works in the background). */
static void expect_huge(const char *what, const void *addr, long units)
{
	if (!huge_check)
		return;
	long want = units * 2048, kb = 0;
	for (int i = 0;
	     i < 300 && (kb = kernel_huge_kb((uintptr_t)addr, (uintptr_t)addr + 1)) < want; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "shared_code: %s: %ld of %ld kB huge-mapped, at %p\n", what, kb, want,
		addr);
	if (kb < want) {
		errno = 0;
		fail("code is not huge-mapped");
	}
}

/* @fd sized to @size and mapped twice, RX and RW, as BEAM does; false on
 * failure. */
static bool views(int fd, size_t size, unsigned char **rx, unsigned char **rw)
{
	if (ftruncate(fd, (off_t)size))
		return fail("ftruncate"), false;
	*rx = mmap(NULL, size, RX, MAP_SHARED, fd, 0);
	*rw = mmap(NULL, size, RW, MAP_SHARED, fd, 0);
	if (*rx == MAP_FAILED || *rw == MAP_FAILED)
		return fail("mmap"), false;
	return true;
}

/* The dual-mapped file: @fd, 4 MiB then grown to 8 MiB. */
static void dual(int fd, const char *name)
{
	unsigned char *rx, *rw, *rx2, *rw2;
	if (!views(fd, 4 * MB, &rx, &rw))
		return;
	emit(rw + 64, 1);
	emit(rw + 2 * MB + 4096, 2);
	printf("%s: written through RW, run through RX: %d %d\n", name, call(rx + 64),
	       call(rx + 2 * MB + 4096));
	expect_huge("RX view", rx, 2);
	emit(rw + 3 * MB, 3); /* code in a unit that is already huge */
	printf("%s: more code in it: %d\n", name, call(rx + 3 * MB));

	/* Growth: the file made bigger, mapped again (sljit, BEAM's next segment). */
	if (!views(fd, 8 * MB, &rx2, &rw2))
		return;
	emit(rw2 + 6 * MB + 128, 6);
	emit(rw + 2 * MB + 4096, 22); /* through the old view, seen in the new one */
	printf("%s: grown: %d, old code seen by the new view: %d %d\n", name,
	       call(rx2 + 6 * MB + 128), call(rx2 + 64), call(rx2 + 2 * MB + 4096));
	expect_huge("grown RX view", rx2, 3); /* units 0, 1 and 3 hold code */

	/* Fork: the child runs the parent's code and patches it; the parent
	 * sees the patch (shared, not copied). */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		printf("%s: child runs %d, patches it\n", name, call(rx + 64));
		emit(rw + 64, 77);
		fflush(stdout);
		_exit(call(rx2 + 64) == 77 ? 0 : 1);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("child");
	printf("%s: parent sees the child's patch: %d\n", name, call(rx + 64));

	/* munmap of one view: the other still runs. */
	if (munmap(rw, 4 * MB) || munmap(rx2, 8 * MB))
		return fail("munmap");
	emit(rw2 + 5 * MB, 5);
	printf("%s: after munmap of RW and of the grown RX: %d %d\n", name, call(rx + 3 * MB),
	       call(rx + 2 * MB + 4096));
	if (munmap(rx, 4 * MB) || munmap(rw2, 8 * MB))
		return fail("munmap");
}

/* PHP's way: anonymous shared memory, code flipped RW <-> RX in place. */
static void anon(void)
{
	unsigned char *m = mmap(NULL, 8 * MB, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fail("mmap");
	unsigned char *buf = m + 4 * MB; /* the JIT buffer: the last 4 MiB */
	strcpy((char *)m, "shared data");
	emit(buf, 10);
	if (mprotect(buf, 4 * MB, RX))
		return fail("mprotect RX");
	printf("anon: %s, code %d\n", (char *)m, call(buf));
	expect_huge("JIT buffer", buf, 1);
	for (int i = 1; i <= 3; i++) { /* the JIT flips around each trace */
		if (mprotect(buf, 4 * MB, RW))
			return fail("mprotect RW");
		emit(buf + (size_t)i * MB, 10 + i);
		if (mprotect(buf, 4 * MB, RX))
			return fail("mprotect RX");
		printf("anon: trace %d runs %d\n", i, call(buf + (size_t)i * MB));
	}
	expect_huge("JIT buffer, two units", buf, 2);

	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		strcpy((char *)m, "written by the child");
		printf("anon: child runs %d\n", call(buf + 2 * MB));
		fflush(stdout);
		_exit(0);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("child");
	printf("anon: parent reads \"%s\"\n", (char *)m);
	if (munmap(buf, 4 * MB))
		return fail("munmap");
	printf("anon: after munmap of the buffer: %s\n", (char *)m);
	munmap(m, 4 * MB);
}

/* With no address space to spare (RLIMIT_AS), the preload cannot reserve
 * room to align a view: the mapping is the kernel's, as asked. */
static void tight(void)
{
	int fd = memfd_create("jit", MFD_CLOEXEC);
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (fd < 0 || !f || fscanf(f, "%lu", &pages) != 1)
		return fail("memfd_create, statm");
	fclose(f);
	/* Room for the 4 MiB view, not for 4 + 2 MiB (and a little slack). */
	struct rlimit rl = {.rlim_cur = pages * 4096 + 5 * MB, .rlim_max = RLIM_INFINITY};
	if (ftruncate(fd, 4 * MB) || setrlimit(RLIMIT_AS, &rl))
		return fail("ftruncate, setrlimit");
	unsigned char *rx = mmap(NULL, 4 * MB, RX, MAP_SHARED, fd, 0);
	if (rx == MAP_FAILED)
		return fail("mmap under RLIMIT_AS");
	unsigned char *rw = mmap(NULL, 4 * MB, RW, MAP_SHARED, fd, 0);
	printf("rlimit: a second view: %s\n", rw == MAP_FAILED ? strerror(errno) : "mapped");
	rl.rlim_cur = RLIM_INFINITY;
	setrlimit(RLIMIT_AS, &rl);
	rw = mmap(NULL, 4 * MB, RW, MAP_SHARED, fd, 0);
	if (rw == MAP_FAILED)
		return fail("mmap");
	emit(rw + MB, 42);
	printf("rlimit: the view mapped without room to spare runs %d\n", call(rx + MB));
}

/* ---- sljit's PROT allocator: a file per chunk ---------------------------- */

#define CHUNK (64UL << 10)

struct chunk {
	unsigned char *rw, *rx; /* the views; the RW view's first word holds rx */
	size_t size;
};

/* sljit's create_tempfile(): a memfd, else an O_TMPFILE (here in /dev/shm). */
static int tempfile(bool memfd, unsigned mfd_flags)
{
	if (memfd) {
		int fd = memfd_create("sljit", mfd_flags);
		if (fd >= 0)
			fchmod(fd, 0);
		return fd;
	}
	return open("/dev/shm", O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0);
}

/* sljit's alloc_chunk(): ftruncate, RW view, header, RX view; the fd
 * closed unless @keep (then it is returned in *keep).  false on failure. */
static bool chunk_map(struct chunk *c, size_t size, int fd, int *keep)
{
	c->size = size;
	if (fd < 0 || ftruncate(fd, (off_t)size))
		return fail("chunk file"), false;
	c->rw = mmap(NULL, size, RW, MAP_SHARED, fd, 0);
	if (c->rw == MAP_FAILED)
		return fail("chunk RW view"), false;
	c->rx = mmap(NULL, size, RX, MAP_SHARED, fd, 0);
	if (c->rx == MAP_FAILED)
		return fail("chunk RX view"), false;
	memcpy(c->rw, &c->rx, sizeof(c->rx)); /* struct sljit_chunk_header */
	if (keep)
		*keep = fd;
	else
		close(fd);
	return true;
}

static bool chunk_alloc(struct chunk *c, size_t size)
{
	return chunk_map(c, size, tempfile(true, MFD_CLOEXEC), NULL);
}

/* sljit's free_chunk(): the RX view, then the RW view. */
static void chunk_free(struct chunk *c)
{
	if (munmap(c->rx, c->size) || munmap(c->rw, c->size))
		fail("chunk munmap");
	c->rx = c->rw = NULL;
}

/* x86-64 "lea eax, [rdi + k]; imul eax, eax, m; ret" at @off, through RW. */
static void gen(struct chunk *c, size_t off, int k, int m)
{
	unsigned char *at = c->rw + off;
	at[0] = 0x8d;
	at[1] = 0x87;
	memcpy(at + 2, &k, 4);
	at[6] = 0x69;
	at[7] = 0xc0;
	memcpy(at + 8, &m, 4);
	at[12] = 0xc3;
}

static int run(const struct chunk *c, size_t off, int x)
{
	int (*fn)(int);
	const unsigned char *at = c->rx + off;
	memcpy(&fn, &at, sizeof(fn));
	return fn(x);
}

#define FNS 64 /* functions a chunk, one every 1 KiB */

/* Generate chunk @i's functions (seed @seed), through RW. */
static void gen_chunk(struct chunk *c, int i, int seed)
{
	for (int j = 0; j < FNS; j++)
		gen(c, 64 + (size_t)j * 1024, i * 131 + j + seed, 3 + (j & 7));
}

/* Call them all through RX: their checksum; the header read through RX. */
static unsigned sum_chunk(const struct chunk *c)
{
	unsigned sum = 0;
	unsigned char *hdr;
	memcpy(&hdr, c->rx, sizeof(hdr));
	if (hdr != c->rx)
		fail("the header written through RW is not seen through RX");
	for (int j = 0; j < FNS; j++)
		sum = sum * 31 + (unsigned)run(c, 64 + (size_t)j * 1024, j);
	return sum;
}

static unsigned sum_all(const struct chunk *c, int n)
{
	unsigned sum = 0;
	for (int i = 0; i < n; i++)
		if (c[i].rx)
			sum = sum * 7 + sum_chunk(&c[i]);
	return sum;
}

/* --huge: >= 90% of the live chunks' RX pages mapped by PMDs (the kernel's
 * PAGEMAP_SCAN) within 3 s; said on stderr. */
static void expect_chunks_huge(const char *what, const struct chunk *c, int n)
{
	long pages = 0, huge = 0;
	for (int t = 0; t < 300; t++) {
		pages = huge = 0;
		for (int i = 0; i < n; i++)
			if (c[i].rx) {
				long h = kernel_huge_pages((uintptr_t)c[i].rx, c[i].size);
				pages += (long)(c[i].size / 4096);
				huge += h > 0 ? h : 0;
			}
		if (!huge_check || huge * 10 >= pages * 9)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "shared_code: %s: %ld of %ld RX pages huge-mapped\n", what, huge, pages);
	if (huge_check && huge * 10 < pages * 9) {
		errno = 0;
		fail("chunks are not huge-mapped");
	}
}

#define NCHUNKS 400

static void chunks(bool wait)
{
	static struct chunk c[NCHUNKS + 100];
	int n = 300;
	long s0 = kernel_vmstat("thp_split_pmd"), c0 = kernel_vmstat("thp_collapse_alloc");
	for (int i = 0; i < n; i++) {
		if (!chunk_alloc(&c[i], CHUNK))
			return;
		gen_chunk(&c[i], i, 0);
		if (i == 0 && huge_check) {
			/* Its window is new: huge in the preload's file, not yet
			 * mapped huge, so mapping the chunk there split nothing. */
			long split = kernel_vmstat("thp_split_pmd") - s0;
			long made = kernel_vmstat("thp_collapse_alloc") - c0;
			fprintf(stderr,
				"shared_code: the first chunk: thp_split_pmd +%ld, "
				"thp_collapse_alloc +%ld\n",
				split, made);
			errno = 0;
			if (split)
				fail("the first chunk split its window's huge mapping");
			if (made < 1)
				fail("no huge page was made for the first chunk's window");
		}
	}
	printf("chunks: %d chunks of 64 KiB, code written through RW, run through RX: %08x\n", n,
	       sum_all(c, n));
	expect_chunks_huge("300 chunks", c, n);

	for (int i = 0; i < n; i += 3) /* sljit frees chunks as code is freed */
		chunk_free(&c[i]);
	printf("chunks: a third freed, the rest still run: %08x\n", sum_all(c, n));
	for (int i = n; i < NCHUNKS; i++) {
		if (!chunk_alloc(&c[i], CHUNK))
			return;
		gen_chunk(&c[i], i, 1000);
	}
	for (int i = 0; i < n; i += 3) {
		if (!chunk_alloc(&c[i], CHUNK))
			return;
		gen_chunk(&c[i], i, 2000);
	}
	n = NCHUNKS;
	printf("chunks: %d live after reuse: %08x\n", n, sum_all(c, n));
	expect_chunks_huge("after reuse", c, n);

	/* Fork: the child keeps the chunks its parent frees, and shares the
	 * ones both keep (writes go both ways). */
	unsigned before = sum_all(c, 50);
	int go[2];
	if (pipe(go))
		return fail("pipe");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char b;
		if (read(go[0], &b, 1) != 1)
			_exit(2);
		int ok = sum_all(c, 50) == before; /* freed and reused by the parent */
		ok &= run(&c[60], 64, 0) == 4242 * 3;
		gen(&c[61], 64, 77, 1); /* seen by the parent */
		_exit(ok ? 0 : 1);
	}
	for (int i = 0; i < 50; i++) {
		chunk_free(&c[i]);
		if (!chunk_alloc(&c[i], CHUNK))
			return;
		gen_chunk(&c[i], i, 3000);
	}
	gen(&c[60], 64, 4242, 3);
	if (write(go[1], "g", 1) != 1)
		return fail("write");
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("child: its chunks changed under it");
	printf("chunks: child kept its chunks, parent sees its patch: %d, all: %08x\n",
	       run(&c[61], 64, 0), sum_all(c, n));
	expect_chunks_huge("after fork", c, n);
	if (wait) {
		printf("pid %d\n", (int)getpid());
		fflush(stdout);
		getchar();
	}
	for (int i = 0; i < n; i++)
		chunk_free(&c[i]);
	printf("chunks: all freed\n");
}

/* The same chunks used in ways sljit does not. */
static void edges(void)
{
	struct chunk c;
	int fd, fd2;

	/* The fd kept: written with pwrite, grown, mapped again. */
	if (!chunk_map(&c, CHUNK, tempfile(true, MFD_CLOEXEC), &fd))
		return;
	gen(&c, 64, 5, 2);
	unsigned char code[13];
	memcpy(code, c.rw + 64, sizeof(code));
	code[2] = 9; /* k = 9 */
	if (pwrite(fd, code, sizeof(code), 1024) != (ssize_t)sizeof(code) ||
	    ftruncate(fd, (off_t)(2 * CHUNK)))
		return fail("pwrite, ftruncate");
	unsigned char *rx2 = mmap(NULL, 2 * CHUNK, RX, MAP_SHARED, fd, 0);
	if (rx2 == MAP_FAILED ||
	    pwrite(fd, code, sizeof(code), CHUNK + 64) != (ssize_t)sizeof(code))
		return fail("mmap again");
	struct chunk big = {.rx = rx2, .rw = NULL, .size = 2 * CHUNK};
	close(fd);
	printf("edges: fd kept: %d %d, grown and mapped again: %d\n", run(&c, 64, 1),
	       run(&c, 1024, 1), run(&big, CHUNK + 64, 1));
	gen(&c, 64, 6, 2);
	printf("edges: written through the old RW view, seen by the new RX view: %d\n",
	       run(&big, 64, 1));
	munmap(rx2, 2 * CHUNK);
	chunk_free(&c);

	/* dup'ed: the close of one fd is not the end of the file. */
	if (!chunk_map(&c, CHUNK, tempfile(true, MFD_CLOEXEC), &fd))
		return;
	fd2 = dup(fd);
	close(fd);
	gen(&c, 64, 7, 2);
	if (pwrite(fd2, code, sizeof(code), 2048) != (ssize_t)sizeof(code))
		return fail("pwrite dup");
	printf("edges: dup'ed fd: %d, written through it: %d\n", run(&c, 64, 1), run(&c, 2048, 1));
	close(fd2);
	chunk_free(&c);

	/* Without FD_CLOEXEC (it may live on in a program exec'ed), and an
	 * O_TMPFILE: both run the same. */
	if (!chunk_map(&c, CHUNK, tempfile(true, 0), NULL))
		return;
	gen(&c, 64, 8, 2);
	printf("edges: no FD_CLOEXEC: %d\n", run(&c, 64, 1));
	chunk_free(&c);
	if (!chunk_map(&c, CHUNK, tempfile(false, 0), NULL))
		return;
	gen(&c, 64, 9, 2);
	printf("edges: O_TMPFILE: %d\n", run(&c, 64, 1));
	chunk_free(&c);

	/* Other sizes, code at both ends. */
	static const size_t sizes[] = {4096, 2 * CHUNK, MB, 2 * MB - 4096, 2 * MB};
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!chunk_alloc(&c, sizes[i]))
			return;
		gen(&c, 64, (int)i, 2);
		gen(&c, sizes[i] - 16, (int)i + 100, 2);
		printf("edges: a chunk of %zu KiB: %d %d\n", sizes[i] >> 10, run(&c, 64, 1),
		       run(&c, sizes[i] - 16, 1));
		chunk_free(&c);
	}

	/* The RW view moved with mremap: still the RX view's twin. */
	if (!chunk_alloc(&c, CHUNK))
		return;
	void *to = mmap(NULL, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *moved = mremap(c.rw, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (to == MAP_FAILED || moved != to)
		return fail("mremap RW");
	c.rw = moved;
	gen(&c, 64, 10, 2);
	printf("edges: RW view moved, written: %d\n", run(&c, 64, 1));
	/* ... and the RX view too. */
	to = mmap(NULL, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = mremap(c.rx, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (to == MAP_FAILED || moved != to)
		return fail("mremap RX");
	c.rx = moved;
	gen(&c, 64, 11, 2);
	printf("edges: RX view moved, runs: %d\n", run(&c, 64, 1));
	chunk_free(&c);

	/* The RX view made writable and back: written through it. */
	if (!chunk_alloc(&c, CHUNK))
		return;
	if (mprotect(c.rx, CHUNK, RW))
		return fail("mprotect RW");
	struct chunk flip = {.rw = c.rx, .rx = c.rx, .size = CHUNK};
	gen(&flip, 64, 12, 2);
	if (mprotect(c.rx, CHUNK, RX))
		return fail("mprotect RX");
	printf("edges: RX view made RW, written, RX again: %d, read through RW: %d\n",
	       run(&c, 64, 1), c.rw[64 + 2]);

	/* Part of the RX view unmapped: the rest runs. */
	gen(&c, CHUNK - 1024, 13, 2);
	if (munmap(c.rx, CHUNK / 2))
		return fail("munmap half");
	printf("edges: half the RX view unmapped, the other half runs: %d\n",
	       run(&c, CHUNK - 1024, 1));
	unsigned char *old_rx = c.rx;
	munmap(c.rx + CHUNK / 2, CHUNK / 2);
	munmap(c.rw, CHUNK);

	/* MAP_FIXED over the freed RX view's address: the program's now. */
	int *p = mmap(old_rx, 4096, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return fail("MAP_FIXED");
	p[0] = 4242;
	printf("edges: MAP_FIXED where the RX view was: %d\n", p[0]);
	munmap(p, 4096);

	/* The RW view unmapped first, then the RX view. */
	if (!chunk_alloc(&c, CHUNK))
		return;
	gen(&c, 64, 14, 2);
	munmap(c.rw, CHUNK);
	printf("edges: RW view unmapped first, RX runs: %d\n", run(&c, 64, 1));
	munmap(c.rx, CHUNK);

	/* A fork between the views and the close: the child has the fd too. */
	fd = tempfile(true, MFD_CLOEXEC);
	if (!chunk_map(&c, CHUNK, fd, &fd))
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		gen(&c, 64, 15, 2);
		close(fd);
		_exit(run(&c, 64, 1) == 32 ? 0 : 1);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("child of a fork before the close");
	close(fd);
	printf("edges: forked before the close, the child's code: %d\n", run(&c, 64, 1));
	chunk_free(&c);

	/* A vfork child (the parent's memory) closes its copy of the fd: the
	 * parent still writes the file through its own. */
	if (!chunk_map(&c, CHUNK, tempfile(true, MFD_CLOEXEC), &fd))
		return;
	pid = vfork();
	if (pid == 0) {
		close(fd);
		_exit(0);
	}
	gen(&c, 64, 16, 2);
	memcpy(code, c.rw + 64, sizeof(code));
	code[2] = 17;
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    pwrite(fd, code, sizeof(code), 64) != (ssize_t)sizeof(code))
		fail("vfork, pwrite");
	close(fd);
	printf("edges: after a vfork child closed the fd, written through it: %d\n",
	       run(&c, 64, 1));
	chunk_free(&c);
}

/* No file descriptor to spare: the program's memfd takes the last one.
 * The preload cannot make its file (no window), nor look at
 * /proc/self/fd when the fd is closed (no adoption): the chunk is the
 * kernel's mapping, as asked, and runs. */
static void nofile(void)
{
	struct rlimit old, rl;
	struct chunk c[3];
	int probe = dup(0);
	if (probe < 0 || getrlimit(RLIMIT_NOFILE, &old))
		return fail("dup, getrlimit");
	close(probe);
	rl = old;
	rl.rlim_cur = (rlim_t)probe + 1;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return fail("setrlimit");
	if (!chunk_alloc(&c[0], CHUNK)) /* no window can be made */
		return;
	gen(&c[0], 64, 1, 2);
	if (setrlimit(RLIMIT_NOFILE, &old) || !chunk_alloc(&c[1], CHUNK))
		return fail("setrlimit back");
	gen(&c[1], 64, 2, 2);
	if (setrlimit(RLIMIT_NOFILE, &rl) || !chunk_alloc(&c[2], CHUNK)) /* not adopted */
		return fail("setrlimit");
	gen(&c[2], 64, 3, 2);
	if (setrlimit(RLIMIT_NOFILE, &old))
		return fail("setrlimit back");
	gen(&c[0], 128, 4, 2);
	gen(&c[2], 128, 5, 2);
	printf("nofile: %d %d %d %d %d\n", run(&c[0], 64, 1), run(&c[1], 64, 1), run(&c[2], 64, 1),
	       run(&c[0], 128, 1), run(&c[2], 128, 1));
	for (int i = 0; i < 3; i++)
		chunk_free(&c[i]);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	huge_check = argc > 2 && !strcmp(argv[2], "--huge");
	if (!strcmp(mode, "memfd")) {
		int fd = memfd_create("jit", MFD_CLOEXEC);
		if (fd < 0)
			return fail("memfd_create"), 1;
		dual(fd, "memfd");
	} else if (!strcmp(mode, "tmpfile")) {
		int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail("O_TMPFILE in /dev/shm"), 1;
		dual(fd, "tmpfile");
	} else if (!strcmp(mode, "anon")) {
		anon();
	} else if (!strcmp(mode, "rlimit")) {
		tight();
	} else if (!strcmp(mode, "chunks")) {
		chunks(argc > 3 && !strcmp(argv[3], "wait"));
	} else if (!strcmp(mode, "edges")) {
		/* A library loaded RTLD_DEEPBIND (its calls bypass the hooks):
		 * the preload then reads /proc/self/maps to adopt. */
		if (argc > 2 && !strcmp(argv[2], "deepbind") &&
		    !dlopen("libm.so.6", RTLD_NOW | RTLD_DEEPBIND))
			return fail("dlopen"), 1;
		edges();
	} else if (!strcmp(mode, "nofile")) {
		nofile();
	} else {
		fprintf(stderr, "usage: shared_code memfd|tmpfile|anon|rlimit|chunks|edges|nofile "
				"[--huge|--plain] [wait]\n");
		return 2;
	}
	return failures ? 1 : 0;
}
