/* SPDX-License-Identifier: MIT */
/*
 * preload_ops - run under libhugeperm-preload.so by tests/e2e/preload.sh.  It
 * maps memory the way JITs do and checks, against the kernel's view
 * (/proc/self/smaps, maps, vmstat), that the preload serves it from
 * hugeperm with the kernel's semantics: zero pages, protections, partial
 * munmap, MAP_FIXED, mremap, MADV_DONTNEED, fork, threads, signals, and
 * errors that change nothing.  Not linked with the library: it reaches
 * hp_owns() through the preload, as any program would see it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"
#include "preloaded.h"
#include "jitcode.h"
#include "tap.h"

static owns_fn owns;

/* A field (kB) of the smaps entry of the VMA holding @addr; -1 if none. */
static long vma_kb(uintptr_t addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = addr >= lo && addr < hi;
			continue;
		}
		if (in && !strncmp(line, field, n) && line[n] == ':')
			v = atol(line + n + 1);
	}
	if (f)
		fclose(f);
	return v;
}

/* Does a file (inode != 0: a file, a memfd) have pages mapped in [lo, hi)? */
static bool file_mapped_in(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long s, e, inode;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &s, &e, &inode) == 3)
			found = inode && s < hi && e > lo;
	}
	if (f)
		fclose(f);
	return found;
}

static uintptr_t dist(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

/* ---- threads and signals ---- */

static void *churn(void *arg)
{
	long bad = 0;
	for (int i = 0; i < 300; i++) {
		unsigned char *p = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
		if (p == MAP_FAILED || !owns(p, 1) || !all_zero(p, 64 * KB)) {
			bad++;
			continue;
		}
		if (run_code(p, p, i) != i)
			bad++;
		memset(p, 0xab, 64 * KB);
		if (mprotect(p, 64 * KB, RX) || mprotect(p, 64 * KB, RWX) || munmap(p, 64 * KB))
			bad++;
	}
	return (void *)bad;
}

static volatile sig_atomic_t handler_runs, handler_bad;

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	void *p = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	if (p == MAP_FAILED || munmap(p, 64 * KB))
		handler_bad++;
	handler_runs++;
	errno = saved;
}

/* A LuaJIT-style area: 64 KiB RW, hinted at a 64 KiB-aligned address near
 * our code; NULL if it was not served. */
static unsigned char *lj_area(void)
{
	unsigned char *a = lj_area_mapped(64 * KB);
	return a && owns && owns(a, 1) ? a : NULL;
}

/* "flips N": N RX/RW flip pairs of a served area, for tests/e2e/preload.sh
 * to count the system calls they make (strace -c). */
static int flips(long n)
{
	unsigned char *a = lj_area();
	long done = 0;
	for (long i = 0; a && i < n; i++) {
		done += mprotect(a, 64 * KB, RX) == 0 && mprotect(a, 64 * KB, RW) == 0;
		a[i % (64 * KB)] = (unsigned char)i;
	}
	printf("flips %ld served %d\n", done, a != NULL);
	return a && done == n ? 0 : 1;
}

/* "flipsquiet N": N RW/RX flip pairs of a served area, written while RW,
 * ending RX; then up to 4 s for its block to be huge-mapped again (exact
 * mode collapses a flapping block once it has been quiet a while).  Prints
 * the area's protection as the kernel has it and its VMA's AnonHugePages. */
static int flips_quiet(long n)
{
	unsigned char *a = lj_area();
	long done = 0, huge = -1;
	for (long i = 0; a && i < n; i++) {
		done += mprotect(a, 64 * KB, RW) == 0;
		a[i % (64 * KB)] = (unsigned char)i;
		done += mprotect(a, 64 * KB, RX) == 0;
	}
	for (int t = 0; a && t < 400; t++) {
		if ((huge = vma_kb((uintptr_t)a, "AnonHugePages")) >= 2048)
			break;
		usleep(10000);
	}
	printf("flips %ld served %d prot %d huge %ld\n", done / 2, a != NULL,
	       a ? kernel_prot_at((uintptr_t)a) : -1, huge);
	return a && done == 2 * n ? 0 : 1;
}

/* "handlers": SIGUSR1 from a second thread, as fast as it can, while this
 * thread flips a served area RW<->RX for half a second.  The handler maps,
 * protects and unmaps memory of its own (the kernel's), and changes the
 * protection of another served area, which may be refused with ENOMEM when
 * it interrupted a hook (kernel.c) but must never fail otherwise.  No
 * deadlock (alarm() is the watchdog), the handler's memory works, the
 * flipped area's code and data are intact. */
static unsigned char *handler_area;
static volatile sig_atomic_t h_runs, h_bad, h_refused, h_stop;

static void on_usr1(int sig)
{
	(void)sig;
	int saved = errno;
	unsigned char *p = mmap(NULL, 16 * KB, RW, ANON, -1, 0);
	if (p == MAP_FAILED || owns(p, 1)) {
		h_bad++;
	} else {
		memset(p, 0x5a, 16 * KB);
		if (mprotect(p, 16 * KB, PROT_READ) || p[100] != 0x5a || p[16 * KB - 1] != 0x5a)
			h_bad++;
		if (munmap(p, 16 * KB))
			h_bad++;
	}
	if (mprotect(handler_area, 64 * KB, RW)) {
		if (errno == ENOMEM)
			h_refused++;
		else
			h_bad++;
	}
	h_runs++;
	errno = saved;
}

static void on_watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "handlers: deadlock (the 20 s watchdog fired)\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		(void)0;
	syscall(SYS_exit_group, 3);
}

static void *send_usr1(void *main_thread)
{
	struct timespec pause = {0, 20000};
	while (!h_stop) {
		pthread_kill(*(pthread_t *)main_thread, SIGUSR1);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int handlers(void)
{
	signal(SIGALRM, on_watchdog);
	alarm(20);
	unsigned char *a = lj_area();
	handler_area = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	static uint32_t shadow[64 * KB / 4];
	if (!a || handler_area == MAP_FAILED || !owns(handler_area, 1)) {
		printf("handlers: the areas were not served\n");
		return 1;
	}
	uint32_t *words = (uint32_t *)a;
	for (size_t k = 2; k < 64 * KB / 4; k++)
		words[k] = shadow[k] = (uint32_t)k * 2654435761u;
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
	sigaction(SIGUSR1, &sa, NULL);
	pthread_t self = pthread_self(), sender;
	pthread_create(&sender, NULL, send_usr1, &self);
	long pairs = 0, bad = 0;
	for (double end = now() + 0.5; now() < end; pairs++) {
		unsigned char insn[6] = {0xb8, 0, 0, 0, 0, 0xc3}; /* mov eax, imm32; ret */
		int v = (int)pairs;
		memcpy(insn + 1, &v, 4);
		memcpy(a, insn, sizeof(insn));
		size_t k = 2 + (size_t)pairs % (64 * KB / 4 - 2);
		words[k] = shadow[k] = (uint32_t)pairs;
		if (mprotect(a, 64 * KB, RX)) {
			bad++;
			continue;
		}
		if (((int (*)(void))(void *)a)() != v)
			bad++;
		if (mprotect(a, 64 * KB, RW))
			bad++;
	}
	h_stop = 1;
	pthread_join(sender, NULL);
	signal(SIGUSR1, SIG_IGN);
	alarm(0);
	bool intact = !memcmp(words + 2, shadow + 2, sizeof(shadow) - 8);
	printf("handlers: %ld flip pairs (%ld failed), %d handler runs (%d bad, %d refused "
	       "with ENOMEM), data %s\n",
	       pairs, bad, (int)h_runs, (int)h_bad, (int)h_refused, intact ? "intact" : "changed");
	return pairs > 0 && bad == 0 && h_runs > 0 && h_bad == 0 && intact ? 0 : 1;
}

/* "hold": map 64 KiB of RWX code; reserve a code range as V8 does, commit
 * code at its start and map a file page MAP_FIXED into its middle (V8's
 * builtins, when out of reach); map a LuaJIT area hinted at our own code,
 * in our binary's 1 GiB slot (so in part of a slot), and flip it RX; say
 * where, and wait for a line on stdin (tests/e2e/tool.sh looks at us with
 * `hugeperm stats` meanwhile). */
extern const char __executable_start[]; /* GNU ld: our binary's first byte */

static int hold(const char *self)
{
	unsigned char *x = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	unsigned char *r = mmap(NULL, 512 * MB, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	int fd = open(self, O_RDONLY);
	if (x == MAP_FAILED || r == MAP_FAILED || fd < 0 || mprotect(r, 256 * KB, RWX) ||
	    mmap(r + 256 * MB, 4 * KB, RX, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED)
		return 1;
	close(fd);
	r[0] = 0xc3; /* ret: code, touched */
	/* Just below our binary: a hint inside it (&hold, 64 KiB-aligned, lands
	 * there in about a third of runs, ASLR's base being 4 KiB-aligned)
	 * has a mapped page below it, which grow.c takes for a heap growing. */
	void *hint = (void *)(((uintptr_t)__executable_start & ~(64 * KB - 1)) - 64 * KB);
	unsigned char *a = mmap(hint, 64 * KB, RW, ANON, -1, 0);
	if (a == MAP_FAILED)
		return 1;
	a[0] = 0xc3;
	if (mprotect(a, 64 * KB, RX))
		return 1;
	printf("pid %d code %lu served %d resv %lu area %lu\n", (int)getpid(),
	       (unsigned long)(uintptr_t)x, owns && owns(x, 1), (unsigned long)(uintptr_t)r,
	       (unsigned long)(uintptr_t)a);
	fflush(stdout);
	char line[8];
	return fgets(line, sizeof(line), stdin) ? run_code(x, x, 0) : 0;
}

/* "guard": commit a V8 code page in a reservation and print the kernel's
 * protection of its guard page and whether its block is huge. */
static int guard(void)
{
	unsigned char *r = mmap(NULL, 512 * MB, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED || mprotect(r, 8 * KB, RW) || mprotect(r + 8 * KB, 4 * KB, PROT_NONE) ||
	    mprotect(r + 12 * KB, 240 * KB, RWX) || mprotect(r + 252 * KB, 4 * KB, PROT_NONE))
		return 1;
	printf("guard %d huge %ld\n", kernel_prot_at((uintptr_t)r + 8 * KB),
	       vma_kb((uintptr_t)r + 12 * KB, "AnonHugePages"));
	return 0;
}

/* "clearenv", "_exit", "exit_group": map some code, then leave as PHP
 * (environ cleared before exit), Python's os._exit (_exit) or qemu (the
 * exit_group system call itself) do; `hugeperm run --stats` reports on us
 * (tests/e2e/preload.sh). */
static int leave(const char *how)
{
	unsigned char *x = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	if (x == MAP_FAILED || run_code(x, x, 1) != 1)
		return 1;
	if (!strcmp(how, "clearenv"))
		return clearenv();
	if (!strcmp(how, "_exit"))
		_exit(0);
	return (int)syscall(SYS_exit_group, 0);
}

/* "unmap": a served JIT area (LuaJIT's mcode area), made executable, run
 * and unmapped before leaving, as LuaJIT's lua_close does: the freed block
 * is its class's reserve, which is never purged, so no purge thread is
 * started (tests/e2e/preload_start.sh).  Prints "served 1" when served. */
static int unmap_and_leave(void)
{
	static const unsigned char ret1[] = {0xb8, 1, 0, 0, 0, 0xc3}; /* mov eax, 1; ret */
	unsigned char *a = lj_area();
	if (a)
		memcpy(a, ret1, sizeof(ret1));
	int rc = !a || mprotect(a, 64 * KB, RX) || ((int (*)(void))(void *)a)() != 1 ||
		 munmap(a, 64 * KB) != 0;
	printf("served %d\n", a != NULL);
	return rc;
}

/* Take [lo, hi) of the address space, as the program's other mappings would. */
static bool block_out(uintptr_t lo, uintptr_t hi)
{
	return mmap((void *)lo, hi - lo, PROT_NONE, ANON | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1,
		    0) == (void *)lo;
}

/*
 * Hints with little or no room near them: three 1 GiB slots around one
 * taken but for 40 MiB at the hint (the smallest part of a slot a chunk
 * takes is 32 MiB), and around another, all of them.
 */
static void little_room(void)
{
	uintptr_t h = 0x300000000000UL + GIB / 2, lo = h - 3 * GIB / 2, hi = h + 3 * GIB / 2;
	bool blocked = block_out(lo, h - 20 * MB) && block_out(h + 20 * MB, hi);
	unsigned char *a = mmap((void *)h, 64 * KB, RW, ANON, -1, 0);
	ok(blocked && a != MAP_FAILED && owns(a, 1) && dist((uintptr_t)a, h) < 20 * MB,
	   "an area whose hint has 40 MiB free around it is served there");
	memset(a, 0x22, 64 * KB);
	unsigned char *m = mremap(a, 64 * KB, 40 * MB, MREMAP_MAYMOVE);
	ok(m != MAP_FAILED && owns(m, 1) && m[0] == 0x22 && m[64 * KB - 1] == 0x22 &&
		   dist((uintptr_t)m, h) > GIB,
	   "mremap(MAYMOVE) past that room moves it further than 1 GiB, as the kernel may");
	if (m != MAP_FAILED)
		munmap(m, 40 * MB);
	/* The hint's slot holds the arena's chunk (40 MiB at most) and our
	 * mappings around it: munmap of all three slots unmaps ours. */
	uintptr_t slot = h & ~(GIB - 1);
	ok(munmap((void *)lo, hi - lo) == 0 && block_out(slot, h - 20 * MB) &&
		   block_out(h + 20 * MB, slot + GIB),
	   "munmap over a chunk that fills part of its slot unmaps the kernel's mappings beside "
	   "it");
	munmap((void *)lo, hi - lo);

	h += 16 * GIB, lo += 16 * GIB, hi += 16 * GIB;
	blocked = block_out(lo, hi);
	a = mmap((void *)h, 64 * KB, RW, ANON, -1, 0);
	ok(blocked && a != MAP_FAILED && !owns(a, 1),
	   "an area with no room within 1 GiB of its hint goes to the kernel");
	if (a != MAP_FAILED)
		munmap(a, 64 * KB);
	munmap((void *)lo, hi - lo);
}

int main(int argc, char **argv)
{
	owns = preloaded_owns();
	if (argc > 1 && !strcmp(argv[1], "hold"))
		return hold(argv[0]);
	if (argc > 1 && !strcmp(argv[1], "guard"))
		return guard();
	if (argc > 1 && !strcmp(argv[1], "handlers"))
		return handlers();
	if (argc > 2 && !strcmp(argv[1], "flips"))
		return flips(atol(argv[2]));
	if (argc > 2 && !strcmp(argv[1], "flipsquiet"))
		return flips_quiet(atol(argv[2]));
	if (argc > 1 && (!strcmp(argv[1], "clearenv") || !strcmp(argv[1], "_exit") ||
			 !strcmp(argv[1], "exit_group")))
		return leave(argv[1]);
	if (argc > 1 && !strcmp(argv[1], "unmap"))
		return unmap_and_leave();
	if (!owns)
		tap_skip_all("not running under libhugeperm-preload.so");
	tap_plan(75);

	/* 1. Executable at map time (PCRE2's sljit): served, zero, runs. */
	unsigned char *x = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	ok(x != MAP_FAILED && owns(x, 64 * KB), "RWX anonymous mapping is served by hugeperm");
	ok(all_zero(x, 64 * KB), "it reads as zero");
	is(run_code(x, x, 42), 42, "code written there runs");
	ok(vma_kb((uintptr_t)x, "AnonHugePages") >= 2048,
	   "the kernel maps it with a huge page (%ld kB)", vma_kb((uintptr_t)x, "AnonHugePages"));
	is(kernel_prot_at((uintptr_t)x), RWX, "the kernel has it RWX, as asked");

	/* 2. A JIT area, asked for as LuaJIT's mcode_alloc does: RW, random
	 * 64 KiB-aligned hints within +-1 GiB of our code, an area out of
	 * range unmapped and the next hint tried, 31 tries at most. */
	uintptr_t code = (uintptr_t)(void *)&main, hint = 0, range = GIB - 2 * MB;
	unsigned char *a = MAP_FAILED;
	int tries = 0, served = 0;
	srand(7);
	while (tries++ < 31) {
		uintptr_t off = ((uintptr_t)rand() << 16) & (2 * GIB - 64 * KB);
		if (off + 64 * KB >= 2 * range)
			continue;
		hint = (code & ~(64 * KB - 1)) + off - range;
		a = mmap((void *)hint, 64 * KB, RW, ANON, -1, 0);
		served += a != MAP_FAILED && owns(a, 1);
		if (a != MAP_FAILED && dist((uintptr_t)a, code) < range)
			break;
		if (a != MAP_FAILED)
			munmap(a, 64 * KB);
		a = MAP_FAILED;
	}
	tap_diag("area at %p, %lu MiB from our code, after %d hints", (void *)a,
		 (unsigned long)(dist((uintptr_t)a, code) / MB), tries);
	ok(a != MAP_FAILED && dist((uintptr_t)a, code) < range,
	   "an area within LuaJIT's +-1 GiB jump range of our code, in at most 31 hints");
	ok(a != MAP_FAILED && owns(a, 64 * KB) && served == tries,
	   "every hinted RW area was served by hugeperm");
	ok(all_zero(a, 64 * KB), "the area reads as zero");
	long split0 = kernel_vmstat("thp_split_pmd");
	int runs_ok = 0;
	for (int i = 0; i < 200; i++) { /* what LuaJIT does for each trace */
		unsigned char insn[6] = {0xb8, 0, 0, 0, 0, 0xc3};
		memcpy(insn + 1, &i, 4);
		if (mprotect(a, 64 * KB, RW))
			break;
		memcpy(a + (i % 16) * 4 * KB, insn, sizeof(insn));
		if (mprotect(a, 64 * KB, RX))
			break;
		runs_ok += ((int (*)(void))(void *)(a + (i % 16) * 4 * KB))() == i;
	}
	is(runs_ok, 200, "200 traces: write while RW, run after RX");
	long split1 = kernel_vmstat("thp_split_pmd");
	is(kernel_prot_at((uintptr_t)a), RX, "after the flips the area is RX in the kernel");
	is(split1 - split0, 0,
	   "200 W<->X flip pairs of the area split no huge page (thp_split_pmd)");
	ok(vma_kb((uintptr_t)a, "AnonHugePages") == 2048, "the area's block is still huge (%ld kB)",
	   vma_kb((uintptr_t)a, "AnonHugePages"));
	ok(mprotect(a, 64 * KB, RW) == 0 && mprotect(a, 64 * KB, RX) == 0, "one more flip pair");

	/* 2b. An area-shaped hint at the end of one of the kernel's mappings is
	 * a heap growing (Guile's collector, LuaJIT's own allocator): the
	 * kernel's, at the hint (preload/grow.c). */
	unsigned char *kmap = mmap(NULL, 320 * KB, PROT_READ, ANON, -1, 0);
	uintptr_t end = ((uintptr_t)kmap + 256 * KB) & ~(64 * KB - 1);
	ok(kmap != MAP_FAILED && !owns(kmap, 1) &&
		   munmap((void *)end, (uintptr_t)kmap + 320 * KB - end) == 0,
	   "a kernel mapping that ends 64 KiB-aligned, free space after it");
	unsigned char *heap = mmap((void *)end, 64 * KB, RW, ANON, -1, 0);
	ok(heap == (void *)end && !owns(heap, 1),
	   "a 64 KiB RW hint at its end: the kernel's, at the hint (a heap growing)");
	munmap(kmap, 320 * KB);
	munmap(heap, 64 * KB);

	/* 3. Bad input changes nothing. */
	errno = 0;
	ok(mprotect(a + 1, 4096, RW) == -1 && errno == EINVAL, "unaligned mprotect: EINVAL");
	errno = 0;
	ok(mprotect(a, 4096, RW | PROT_GROWSDOWN) == -1 && errno == EINVAL,
	   "PROT_GROWSDOWN on served memory: EINVAL");
	errno = 0;
	ok(madvise(x, 4096, MADV_WIPEONFORK) == -1 && errno == EINVAL,
	   "MADV_WIPEONFORK on served memory: EINVAL");
	errno = 0;
	ok(mremap(x, 4096, 8192, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(64 * GIB)) == MAP_FAILED &&
		   errno == EINVAL,
	   "mremap MREMAP_FIXED of served memory: EINVAL");
	ok(kernel_prot_at((uintptr_t)a) == RX && kernel_prot_at((uintptr_t)x) == RWX &&
		   run_code(x, x, 5) == 5,
	   "and nothing changed");

	/* 4. Partial munmap and mprotect. */
	ok(munmap(x + 48 * KB, 16 * KB) == 0, "munmap of the last 16 KiB of the RWX mapping");
	errno = 0;
	ok(mprotect(x + 48 * KB, 4096, RX) == -1 && errno == ENOMEM,
	   "mprotect there now: ENOMEM, as for unmapped memory");
	ok(mprotect(x + 16 * KB, 16 * KB, RX) == 0 &&
		   kernel_prot_at((uintptr_t)x + 16 * KB) == RX &&
		   kernel_prot_at((uintptr_t)x) == RWX,
	   "mprotect of the middle: the kernel has RX there, RWX before");

	/* 5. MAP_FIXED over part of a served mapping: fresh zero pages. */
	memset(x, 0x5a, 16 * KB);
	unsigned char *f = mmap(x + 4 * KB, 8 * KB, RW, ANON | MAP_FIXED, -1, 0);
	ok(f == x + 4 * KB && all_zero(f, 8 * KB) && x[0] == 0x5a && owns(f, 1),
	   "MAP_FIXED anonymous over part: zero there, the rest kept, still ours");
	is(kernel_prot_at((uintptr_t)f), RW, "with the protection asked for");

	/* 6. MADV_DONTNEED zeroes. */
	memset(x, 0x77, 4 * KB);
	ok(madvise(x, 4 * KB, MADV_DONTNEED) == 0 && all_zero(x, 4 * KB),
	   "MADV_DONTNEED: the bytes read back as zero");
	ok(madvise(x, 4 * KB, MADV_DONTFORK) == 0, "MADV_DONTFORK is accepted");

	/* 7. mremap: grow in place, shrink, move. */
	unsigned char *m =
		mmap((void *)(((uintptr_t)a & ~(64 * KB - 1)) + 64 * MB), 64 * KB, RW, ANON, -1, 0);
	memset(m, 0x11, 64 * KB);
	unsigned char *g = mremap(m, 64 * KB, 128 * KB, 0);
	ok(g == m && m[0] == 0x11 && all_zero(m + 64 * KB, 64 * KB),
	   "mremap grows an area in place; the new part is zero");
	g = mremap(m, 128 * KB, 3 * MB, MREMAP_MAYMOVE);
	ok(g != MAP_FAILED && g != m && g[0] == 0x11 && g[64 * KB - 1] == 0x11 && owns(g, 1),
	   "mremap(MAYMOVE) past its block moves it, contents kept");
	errno = 0;
	ok(mprotect(m, 4096, RW) == -1 && errno == ENOMEM, "the old range is unmapped");
	ok(mremap(g, 3 * MB, 64 * KB, 0) == g && munmap(g, 64 * KB) == 0, "shrink, then unmap");
	little_room();

	/* 8. munmap across a served range and a kernel mapping. */
	unsigned char *k = mmap(NULL, 64 * KB, RW, ANON, -1, 0); /* no hint, not exec: kernel's */
	ok(k != MAP_FAILED && !owns(k, 1), "an unhinted RW mapping goes to the kernel");
	ok(munmap(k, 64 * KB) == 0 && kernel_prot_at((uintptr_t)k) < 0, "and munmap returns it");

	/* 9. A file mapped MAP_FIXED over served memory takes those pages. */
	int fd = open("/proc/self/exe", O_RDONLY);
	unsigned char *fm = mmap(x + 32 * KB, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
	ok(fm == x + 32 * KB && !memcmp(fm, "\177ELF", 4),
	   "MAP_FIXED of a file over served memory");
	close(fd);

	/* 10. fork: the child has a copy and can map more. */
	pid_t pid = fork();
	if (pid == 0) {
		unsigned char *c = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
		int bad = c == MAP_FAILED || !owns(c, 1) || run_code(c, c, 9) != 9;
		bad |= run_code(x, x, 3) != 3;
		_exit(bad);
	}
	int st;
	ok(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a forked child runs inherited code and maps new code");
	is(run_code(x, x, 4), 4, "the parent's code is its own");

	/* 11. Threads. */
	pthread_t t[4];
	long bad = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (long)r;
	}
	is(bad, 0, "4 threads x 300 map/run/flip/unmap cycles");

	/* 12. A signal handler that maps memory while the hooks run. */
	struct sigaction sa = {.sa_handler = on_alarm};
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	int flips = 0;
	for (int i = 0; i < 3000 && handler_runs < 50; i++)
		flips += mprotect(a, 64 * KB, RW) == 0 && mprotect(a, 64 * KB, RX) == 0;
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	tap_diag("%d flip pairs, %d handler runs", flips, (int)handler_runs);
	ok(handler_runs > 0 && handler_bad == 0,
	   "signal handlers that map memory during hooks work");

	/* 13. Protection keys (this CPU may have none: then pkey_alloc fails). */
	int key = pkey_alloc(0, 0);
	if (key > 0) {
		unsigned char *kp = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
		ok(pkey_mprotect(kp, 64 * KB, RWX, key) == 0 &&
			   vma_kb((uintptr_t)kp, "ProtectionKey") == key,
		   "pkey_mprotect on served memory: the kernel has key %d there", key);
		munmap(kp, 64 * KB);
		unsigned char *again = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
		ok(vma_kb((uintptr_t)again, "ProtectionKey") == 0 && run_code(again, again, 1) == 1,
		   "the next mapping there has key 0 again (reused: %s)",
		   again == kp ? "yes" : "no");
		munmap(again, 64 * KB);
		pkey_free(key);
	} else {
		tap_skip(2, "no protection keys on this CPU/kernel (pkey_alloc failed)");
	}

	/* 14. Reservations, committed in place as V8 (code range: 512 MiB +
	 * 252 KiB, tail trimmed to alignment, 256 KiB pages of RW header, NONE
	 * guard, RWX code, NONE guard) and HotSpot (code cache: MAP_FIXED RWX
	 * commits at unaligned offsets) do. */
	long s0 = kernel_vmstat("thp_split_pmd");
	size_t rlen = 512 * MB + 252 * KB;
	unsigned char *small = mmap(NULL, 64 * MB, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	ok(small != MAP_FAILED && !owns(small, 1),
	   "a 64 MiB PROT_NONE reservation goes to the kernel (below the minimum)");
	munmap(small, 64 * MB);
	unsigned char *r = mmap(NULL, rlen, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	ok(r != MAP_FAILED && !owns(r, 1) && kernel_prot_at((uintptr_t)r) == PROT_NONE &&
		   vma_kb((uintptr_t)r, "Rss") == 0,
	   "a 512 MiB reservation is held for the kernel until it holds code: PROT_NONE, no "
	   "memory");
	ok(munmap(r + 512 * MB, 252 * KB) == 0 && mprotect(r + 512 * MB, 4096, RW) == -1 &&
		   errno == ENOMEM,
	   "its tail trimmed with munmap is gone");
	unsigned char *pg = r + 256 * KB; /* a V8 page */
	ok(mprotect(pg, 8 * KB, RW) == 0 && mprotect(pg + 8 * KB, 4 * KB, PROT_NONE) == 0 &&
		   mprotect(pg + 12 * KB, 240 * KB, RWX) == 0 &&
		   mprotect(pg + 252 * KB, 4 * KB, PROT_NONE) == 0 && owns(r, 1) && owns(pg, 1),
	   "a V8 code page committed: header RW, guards NONE, code RWX; the range is served");
	ok(all_zero(pg, 8 * KB) && all_zero(pg + 12 * KB, 240 * KB), "header and code read zero");
	is(run_code(pg + 12 * KB, pg + 12 * KB, 77), 77, "code there runs");
	ok(vma_kb((uintptr_t)pg, "AnonHugePages") >= 2048 && kernel_prot_at((uintptr_t)pg) == RWX,
	   "its block is one huge RWX mapping (%ld kB huge)",
	   vma_kb((uintptr_t)pg, "AnonHugePages"));
	is(kernel_prot_at((uintptr_t)pg + 8 * KB), RWX,
	   "so the guard page is accessible: the documented relaxation");
	memset(pg + 12 * KB, 0x90, 8 * KB);
	ok(madvise(pg + 12 * KB, 4 * KB, MADV_DONTNEED) == 0 && all_zero(pg + 12 * KB, 4 * KB) &&
		   pg[16 * KB] == 0x90 && vma_kb((uintptr_t)pg, "AnonHugePages") >= 2048,
	   "MADV_DONTNEED in it zeroes that page, and the block stays huge");
	/* W^X in a reservation: RW and RX pages, no RWX asked: exact. */
	unsigned char *q = r + 2 * MB;
	ok(mprotect(q, 64 * KB, RW) == 0 && mprotect(q, 64 * KB, RX) == 0 &&
		   mprotect(q + 64 * KB, 64 * KB, RW) == 0 && kernel_prot_at((uintptr_t)q) == RX &&
		   kernel_prot_at((uintptr_t)q + 64 * KB) == RW &&
		   kernel_prot_at((uintptr_t)q + 128 * KB) == PROT_NONE,
	   "RW and RX pages in one block get no RWX: exact protections");
	/* The V8 page freed: NONE, then MADV_DONTNEED. */
	ok(mprotect(pg, 256 * KB, PROT_NONE) == 0 && madvise(pg, 256 * KB, MADV_DONTNEED) == 0 &&
		   kernel_prot_at((uintptr_t)pg) == PROT_NONE && vma_kb((uintptr_t)r, "Rss") == 0,
	   "the page decommitted: its block is NONE again and holds no memory");
	ok(mprotect(pg + 12 * KB, 240 * KB, RWX) == 0 && all_zero(pg + 12 * KB, 240 * KB),
	   "committed again, it reads zero");
	/* HotSpot: MAP_FIXED RWX, 2496 KiB at an unaligned offset. */
	unsigned char *hs = r + 64 * MB + 0x38000;
	unsigned char *got = mmap(hs, 2496 * KB, RWX, ANON | MAP_FIXED, -1, 0);
	ok(got == hs && all_zero(hs, 2496 * KB) && run_code(hs, hs, 5) == 5,
	   "a HotSpot-style MAP_FIXED RWX commit: zero, runs");
	long hs_huge = vma_kb((uintptr_t)hs, "AnonHugePages");
	ok(hs_huge >= 4096, "its two blocks are huge (%ld kB)", hs_huge);
	tap_diag("thp_split_pmd +%ld over the reservation checks",
		 kernel_vmstat("thp_split_pmd") - s0);
	ok(munmap(r, 512 * MB) == 0 && mprotect(pg, 4096, RWX) == -1 && errno == ENOMEM,
	   "the whole reservation unmapped: gone");

	/* 15. A file mapped MAP_FIXED over served memory belongs to the kernel:
	 * mprotect goes to it, and the program's munmap unmaps it (issue 15). */
	int mfd = memfd(64 * KB);
	unsigned char *sv = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	unsigned char *fx = mmap(sv + 16 * KB, 8 * KB, PROT_READ, MAP_SHARED | MAP_FIXED, mfd, 0);
	ok(mfd >= 0 && owns(sv, 1) && fx == sv + 16 * KB &&
		   file_mapped_in((uintptr_t)fx, (uintptr_t)fx + 8 * KB),
	   "a memfd mapped MAP_FIXED over a served mapping");
	ok(mprotect(fx, 8 * KB, PROT_NONE) == 0 && kernel_prot_at((uintptr_t)fx) == PROT_NONE &&
		   mprotect(fx, 8 * KB, PROT_READ) == 0,
	   "mprotect of the file's pages goes to the kernel");
	ok(munmap(fx, 8 * KB) == 0 && !file_mapped_in((uintptr_t)sv, (uintptr_t)sv + 64 * KB),
	   "munmap of the file's pages unmaps the file (/proc/self/maps)");
	errno = 0;
	ok(mprotect(fx, 4 * KB, PROT_READ) == -1 && errno == ENOMEM && run_code(sv, sv, 6) == 6 &&
		   run_code(sv + 32 * KB, sv + 32 * KB, 7) == 7,
	   "those pages are unmapped (mprotect: ENOMEM); the rest of the mapping runs");
	fx = mmap(sv + 40 * KB, 8 * KB, PROT_READ, MAP_PRIVATE | MAP_FIXED, mfd, 0);
	ok(fx == sv + 40 * KB && munmap(sv, 64 * KB) == 0 &&
		   !file_mapped_in((uintptr_t)sv, (uintptr_t)sv + 64 * KB),
	   "a file mapped over a served mapping, then the whole mapping unmapped: the file too");
	/* V8: its builtins (a file) remapped into its code range, then the
	 * range unmapped at the isolate's end. */
	r = mmap(NULL, 512 * MB, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	ok(r != MAP_FAILED && !owns(r, 1) && mprotect(r, 256 * KB, RWX) == 0 && owns(r, 1) &&
		   run_code(r, r, 8) == 8 &&
		   mmap(r + 256 * MB, 64 * KB, RX, MAP_PRIVATE | MAP_FIXED, mfd, 0) ==
			   r + 256 * MB &&
		   file_mapped_in((uintptr_t)r + 256 * MB, (uintptr_t)r + 256 * MB + 1) &&
		   munmap(r, 512 * MB) == 0 &&
		   !file_mapped_in((uintptr_t)r, (uintptr_t)r + 512 * MB),
	   "a file mapped into a served code range, the range unmapped: the file is unmapped");
	errno = 0;
	ok(mprotect(r + 256 * MB, 4 * KB, PROT_READ) == -1 && errno == ENOMEM &&
		   mmap(r + 256 * MB, 4 * KB, RW, ANON | MAP_FIXED, -1, 0) == MAP_FAILED &&
		   errno == ENOMEM,
	   "and its address space is hugeperm's again, given to no one");
	close(mfd);

	/* 16. Pages the program unmapped while the rest of their block stays
	 * in use (a packed area beside another, half an area) are still
	 * mapped, at the block's protection: they hold int3, not the code that
	 * was there, so a stale jump traps (the kernel's unmapped page would
	 * fault); the block stays huge, and a new area there reads zero. */
	/* (The second area is mapped once the first ran, as LuaJIT does: a
	 * hint right after a writable area that never ran, a heap's, goes to
	 * the kernel.) */
	unsigned char *g1 = lj_area(), *g2 = NULL;
	bool g1_ran = false;
	if (g1) {
		put_code(g1, 11);
		g1_ran = mprotect(g1, 64 * KB, RX) == 0 && call_at(g1) == 11;
		g2 = lj_area();
	}
	bool packed = g1_ran && g2 && (uintptr_t)g1 >> 21 == (uintptr_t)g2 >> 21;
	tap_diag("two areas at %p and %p", (void *)g1, (void *)g2);
	if (packed) {
		put_code(g2, 12);
		put_code(g2 + 32 * KB, 13);
	}
	ok(packed && mprotect(g2, 64 * KB, RX) == 0 && call_at(g1) == 11 && call_at(g2) == 12 &&
		   call_at(g2 + 32 * KB) == 13,
	   "two LuaJIT areas packed into one block, their code written and run");
	long gsplit = kernel_vmstat("thp_split_pmd");
	ok(packed && munmap(g1, 64 * KB) == 0 && proc_mem_all(g1, 64 * KB, 0xcc) &&
		   kernel_prot_at((uintptr_t)g1) == RX,
	   "one unmapped: its 64 KiB hold int3 (/proc/self/mem), still RX with its block");
	int ended = packed ? call_in_child(g1) : 0;
	ok(ended == -SIGTRAP, "a call to its old code traps (a child: killed by signal %d)",
	   ended < 0 ? -ended : 0);
	ok(packed && munmap(g2 + 32 * KB, 32 * KB) == 0 &&
		   proc_mem_all(g2 + 32 * KB, 32 * KB, 0xcc) && call_at(g2) == 12,
	   "half of the other unmapped: int3 there, the half left runs");
	ok(vma_kb((uintptr_t)g2, "AnonHugePages") >= 2048 &&
		   kernel_vmstat("thp_split_pmd") == gsplit,
	   "the block is huge-mapped throughout (%ld kB), thp_split_pmd +%ld",
	   vma_kb((uintptr_t)g2, "AnonHugePages"), kernel_vmstat("thp_split_pmd") - gsplit);
	unsigned char *g3 = lj_area();
	ok(g3 == g1 && all_zero(g3, 64 * KB), "a new area takes the gap, and reads zero");
	ok((!g3 || munmap(g3, 64 * KB) == 0) && (!g2 || munmap(g2, 32 * KB) == 0), "both unmapped");

	/* 17. Unmap everything served. */
	ok(munmap(x, 64 * KB) == 0 && munmap(a, 64 * KB) == 0, "munmap of the rest");
	errno = 0;
	ok(mprotect(a, 4096, RX) == -1 && errno == ENOMEM, "and it is gone");
	return tap_done();
}
