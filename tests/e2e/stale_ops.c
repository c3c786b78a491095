/* SPDX-License-Identifier: MIT */
/*
 * stale_ops - run under libhugeperm-preload.so by tests/e2e/preload.sh:
 * code the program unmapped never runs again.  Served memory the program
 * unmaps may stay mapped (a packed area's block lives on with the other
 * areas, half an area, an allocation never reused); the preload fills it
 * with int3 if it held code (preload/serve.c, cut()).  A call to such an
 * address must stop, with SIGTRAP or, where the pages went back to the
 * kernel or to a class that is not executable, SIGSEGV, as on the kernel's
 * unmapped page.  Not linked with the library.
 *
 *   stale_ops stale     the cases, in whatever flip mode the preload runs
 *                       (preload.sh runs it in each): "stale CASE ok" a case
 *   stale_ops scrub [denied|noexec]
 *                       one fill, counted in the preload's report; with
 *                       seccomp refusing the writes, or the flip back
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jitcode.h"
#include "kernel.h"
#include "preloaded.h"
#include "sysfault.h"

static owns_fn owns;

/* Does a call to the code at @p, which the program unmapped, stop with
 * SIGTRAP (our int3) or SIGSEGV (the kernel's unmapped page), as plain
 * would, rather than run the old code? */
static bool stale_call_stops(const unsigned char *p)
{
	int ended = call_in_child(p);
	return ended == -SIGTRAP || ended == -SIGSEGV;
}

/* Write "mov eax, @value; ret" into the RX area at @p (made RW for it, RX
 * again) and call it. */
static int run_code_rx(unsigned char *p, int value)
{
	if (mprotect(p, 64 * KB, RW))
		return -1;
	put_code(p, value);
	return mprotect(p, 64 * KB, RX) ? -1 : call_at(p);
}

/* Does the preload run a flip mode other than `block` (exact, rwx)? */
static bool preload_opt_not_block(void)
{
	const char *flip = getenv("HUGEPERM_PRELOAD_FLIP");
	return flip && strcmp(flip, "block") != 0;
}

static const char *stale_why; /* the first step of a case that failed */

/* A step of a "stale" case: @ok, or the case fails here, at @what. */
static bool step(bool ok, const char *what)
{
	if (!ok && !stale_why)
		stale_why = what;
	return ok;
}

static void stale_case(const char *name, int *bad)
{
	printf("stale %s %s%s\n", name, stale_why ? "FAILED at " : "ok",
	       stale_why ? stale_why : "");
	*bad += stale_why != NULL;
	stale_why = NULL;
}

#define RUNNER_AREAS 8

struct runner {
	unsigned char *area[RUNNER_AREAS];
	volatile int ready, stop, failed; /* ready: 1 served and run, -1 not */
	volatile unsigned long calls;
	int keep; /* 0: map and run the areas, then return at once */
};

static void *run_first(void *arg)
{
	struct runner *r = arg;
	while (!r->ready && !r->stop)
		usleep(50);
	while (r->ready > 0 && !r->stop) {
		r->failed |= call_at(r->area[0]) != 30;
		r->calls++;
	}
	return NULL;
}

static void *unmap_rest(void *arg)
{
	struct runner *r = arg;
	for (int i = 1; i < RUNNER_AREAS; i++) {
		r->failed |= munmap(r->area[i], 64 * KB) != 0;
		usleep(200);
	}
	return NULL;
}

/* A thread that maps areas (packed into its block in block mode), runs
 * them, then calls the first one until told to stop. */
static void *runner(void *arg)
{
	struct runner *r = arg;
	bool good = true;
	for (int i = 0; good && i < RUNNER_AREAS; i++) {
		r->area[i] = lj_area_mapped(64 * KB);
		good = r->area[i] && owns(r->area[i], 1);
		if (good) {
			put_code(r->area[i], 30 + i);
			good = mprotect(r->area[i], 64 * KB, RX) == 0 &&
			       call_at(r->area[i]) == 30 + i;
		}
	}
	r->ready = good ? 1 : -1;
	if (good && r->keep)
		run_first(r);
	return NULL;
}

/*
 * "stale": code the program unmapped never runs again, whatever the
 * preload's mode (tests/e2e/preload.sh runs it in each): a call there stops
 * (SIGTRAP or SIGSEGV), where pieces of served memory stay mapped after a
 * munmap.  Prints "stale CASE ok" for each case; exits 1 if one failed.
 */
static int stale(void)
{
	int bad = 0;
	if (!owns) {
		printf("stale: not run under the preload\n");
		return 1;
	}
	/* An area that ran, RW again, half unmapped, the rest made RX (a
	 * block flip takes the unmapped half along). */
	unsigned char *a = lj_area_mapped(64 * KB);
	if (step(a && owns(a, 1), "served")) {
		put_code(a + 32 * KB, 21);
		(void)(step(mprotect(a, 64 * KB, RX) == 0 && call_at(a + 32 * KB) == 21, "ran") &&
		       step(mprotect(a, 64 * KB, RW) == 0 && munmap(a + 32 * KB, 32 * KB) == 0 &&
				    mprotect(a, 32 * KB, RX) == 0,
			    "RW, half unmapped, the rest RX") &&
		       step(stale_call_stops(a + 32 * KB), "the old code stops"));
		munmap(a, 32 * KB);
	}
	stale_case("ran-then-rw", &bad);

	/* An area that ran, moved by mremap (unless it can grow in place); the
	 * copy unmapped while RW beside a new area of its size, then made RX.
	 * (The second area is mapped once the first ran: beside a writable
	 * area that never ran, LuaJIT's heap, a hint goes to the kernel.) */
	unsigned char *g1 = lj_area_mapped(64 * KB), *g2 = NULL, *m = MAP_FAILED;
	if (step(g1 && owns(g1, 1), "served")) {
		put_code(g1, 22);
		(void)(step(mprotect(g1, 64 * KB, RX) == 0 && call_at(g1) == 22, "ran") &&
		       step((g2 = lj_area_mapped(64 * KB)) && owns(g2, 1) &&
				    mprotect(g2, 64 * KB, RX) == 0,
			    "a second area served") &&
		       step((m = mremap(g1, 64 * KB, 128 * KB, MREMAP_MAYMOVE)) != MAP_FAILED &&
				    call_at(m) == 22,
			    "moved (or grown), runs") &&
		       step(m == g1 || stale_call_stops(g1), "the old place stops"));
	}
	unsigned char *h = lj_area_mapped(128 * KB);
	(void)(step(h && m != MAP_FAILED && mprotect(m, 128 * KB, RW) == 0 &&
			    munmap(m, 128 * KB) == 0 && mprotect(h, 128 * KB, RX) == 0,
		    "the copy RW, unmapped, a new area RX") &&
	       step(stale_call_stops(m), "the copy's old code stops"));
	stale_case("moved", &bad);
	if (h)
		munmap(h, 128 * KB);
	if (g2)
		munmap(g2, 64 * KB);

	/* An area grown in place by mremap, run, unmapped while an area that
	 * ran stays beside it: areas mapped there again read zero.  (Where its
	 * allocation has no room, exact and rwx modes, mremap says ENOMEM, as
	 * the kernel may.) */
	unsigned char *k1 = lj_area_mapped(64 * KB), *k2 = NULL, *gr = MAP_FAILED;
	if (step(k1 && owns(k1, 1) && mprotect(k1, 64 * KB, RX) == 0 && run_code_rx(k1, 26) == 26,
		 "an area served, ran") &&
	    step((k2 = lj_area_mapped(64 * KB)) && owns(k2, 1), "a second area served"))
		gr = mremap(k2, 64 * KB, 128 * KB, 0);
	if (!stale_why && gr == MAP_FAILED && errno == ENOMEM && preload_opt_not_block()) {
		printf("stale grown no room (ENOMEM)\n");
	} else {
		if (step(gr != MAP_FAILED && owns(gr, 1), "the second grown in place")) {
			memset(gr, 0x90, 128 * KB);
			put_code(gr + 64 * KB, 23);
			step(mprotect(gr, 128 * KB, RX) == 0 && call_at(gr + 64 * KB) == 23 &&
				     munmap(gr, 128 * KB) == 0,
			     "ran, unmapped");
		}
		/* (Each run before the next is mapped: see "moved".) */
		unsigned char *n1 = lj_area_mapped(64 * KB), *n2 = NULL;
		(void)(step(n1 && owns(n1, 1) && all_zero(n1, 64 * KB),
			    "a new area, served, reads zero") &&
		       step(mprotect(n1, 64 * KB, RX) == 0 && run_code_rx(n1, 28) == 28,
			    "it runs") &&
		       step((n2 = lj_area_mapped(64 * KB)) && owns(n2, 1) && all_zero(n2, 64 * KB),
			    "another new area, served, reads zero"));
		if (n2)
			munmap(n2, 64 * KB);
		if (n1)
			munmap(n1, 64 * KB);
		stale_case("grown", &bad);
	}

	/* pkey_mprotect with a key the kernel refuses: nothing changes (an
	 * area with an RW and an RX half: a block of its own with packing off,
	 * which a whole-block flip would make one protection), and half of it
	 * unmapped afterwards is not run. */
	unsigned char *x = lj_area_mapped(64 * KB);
	if (step(x && owns(x, 1), "served")) {
		put_code(x + 32 * KB, 24);
		int lo = -1, hi = -1;
		(void)(step(mprotect(x + 32 * KB, 32 * KB, RX) == 0 && call_at(x + 32 * KB) == 24,
			    "its second half RX, run") &&
		       step((lo = kernel_prot_at((uintptr_t)x),
			     hi = kernel_prot_at((uintptr_t)x + 32 * KB),
			     pkey_mprotect(x, 64 * KB, PROT_READ, 15) == -1 && errno == EINVAL),
			    "key 15 refused (EINVAL)") &&
		       step(kernel_prot_at((uintptr_t)x) == lo &&
				    kernel_prot_at((uintptr_t)x + 32 * KB) == hi &&
				    call_at(x + 32 * KB) == 24,
			    "nothing changed (the kernel's protections)") &&
		       step(munmap(x + 32 * KB, 32 * KB) == 0 && stale_call_stops(x + 32 * KB),
			    "half unmapped: its old code stops"));
		munmap(x, 32 * KB);
	}
	stale_case("pkey-refused", &bad);

	/* A file mapped over half of a mapping (the allocation is never reused),
	 * then the other half unmapped. */
	int fd = memfd(32 * KB);
	unsigned char *t = mmap(NULL, 64 * KB, RWX, ANON, -1, 0);
	if (step(fd >= 0 && t != MAP_FAILED && owns(t, 1) && run_code(t, t, 25) == 25,
		 "served, ran"))
		(void)(step(mmap(t + 32 * KB, 32 * KB, RW, MAP_SHARED | MAP_FIXED, fd, 0) ==
					    t + 32 * KB &&
				    munmap(t, 32 * KB) == 0,
			    "a file over one half, the other unmapped") &&
		       step(stale_call_stops(t), "the old code stops"));
	stale_case("tainted", &bad);
	if (fd >= 0)
		close(fd);

	/* Another thread's areas unmapped while it runs code in their block:
	 * the pages are filled without taking X from that code. */
	pthread_t th;
	struct runner run = {.keep = 1};
	bool started = step(pthread_create(&th, NULL, runner, &run) == 0, "a thread started");
	while (started && !run.ready)
		usleep(100);
	if (started && step(run.ready > 0, "its areas served and run")) {
		for (int i = 1; i < RUNNER_AREAS; i++) {
			step(munmap(run.area[i], 64 * KB) == 0, "munmap from this thread");
			usleep(200);
		}
		step(stale_call_stops(run.area[1]), "the unmapped areas' old code stops");
	}
	run.stop = 1;
	if (started)
		pthread_join(th, NULL);
	step(run.calls > 0 && !run.failed, "the thread ran its code throughout");
	stale_case("other-thread", &bad);

	/* A munmap that takes the first half of an area that ran, whose second
	 * half is a region of its own (R: not taken for data), and part of it;
	 * packed, the next area's first half too: the old code stops (the
	 * cut's last region reaches past its end). */
	unsigned char *s1 = lj_area_mapped(64 * KB), *s2 = NULL;
	if (step(s1 && owns(s1, 1), "served")) {
		put_code(s1, 31);
		(void)(step(mprotect(s1, 32 * KB, RX) == 0 && call_at(s1) == 31 &&
				    mprotect(s1 + 32 * KB, 32 * KB, PROT_READ) == 0,
			    "its first half RX, ran, the second R") &&
		       step((s2 = lj_area_mapped(64 * KB)) && owns(s2, 1),
			    "a second area served") &&
		       step((put_code(s2, 33), mprotect(s2, 64 * KB, RX) == 0 && call_at(s2) == 33),
			    "it ran"));
		if (s2 == s1 + 64 * KB) /* packed next to it: one munmap over both */
			(void)(step(munmap(s1, 96 * KB) == 0, "96 KiB over both unmapped") &&
			       step(stale_call_stops(s1) && stale_call_stops(s2),
				    "their old code stops"));
		else
			(void)(step(munmap(s1, 48 * KB) == 0, "48 KiB of the first unmapped") &&
			       step(stale_call_stops(s1), "its old code stops"));
		if (s2 == s1 + 64 * KB) { /* what is left of both */
			munmap(s2 + 32 * KB, 32 * KB);
		} else {
			munmap(s1 + 48 * KB, 16 * KB);
			if (s2)
				munmap(s2, 64 * KB);
		}
	}
	stale_case("straddled", &bad);

	/* Part of an area that ran moved by mremap: the old place stops. */
	unsigned char *p1 = lj_area_mapped(64 * KB), *pm = MAP_FAILED;
	if (step(p1 && owns(p1, 1), "served")) {
		put_code(p1, 34);
		(void)(step(mprotect(p1, 32 * KB, RX) == 0 && call_at(p1) == 34,
			    "its first half RX, ran") &&
		       step((pm = mremap(p1, 48 * KB, 96 * KB, MREMAP_MAYMOVE)) != MAP_FAILED,
			    "48 KiB of it moved (or grown)") &&
		       step(pm == p1 || stale_call_stops(p1), "the old place stops"));
		if (pm != MAP_FAILED)
			munmap(pm, 96 * KB);
		munmap(p1, 64 * KB);
	}
	stale_case("moved-part", &bad);

	/* A thread packs areas, runs them and exits; the next thread made
	 * (glibc gives it the dead one's pthread_t) unmaps them while another,
	 * made first, runs the first area: its code keeps running. */
	struct runner dead = {.keep = 0};
	pthread_t t1, t2, t3;
	bool ran = step(pthread_create(&t3, NULL, run_first, &dead) == 0, "a runner started");
	if (ran && step(pthread_create(&t1, NULL, runner, &dead) == 0, "a thread started")) {
		pthread_join(t1, NULL);
		if (step(dead.ready > 0, "its areas served and run")) {
			usleep(1000);
			if (step(pthread_create(&t2, NULL, unmap_rest, &dead) == 0,
				 "an unmapper")) {
				pthread_join(t2, NULL);
				step(pthread_equal(t1, t2), "the unmapper has the dead thread's "
							    "pthread_t (glibc's stack cache)");
			}
		}
	}
	dead.stop = 1;
	if (ran)
		pthread_join(t3, NULL);
	step(dead.ready > 0 && dead.calls > 0 && !dead.failed,
	     "the runner ran the first area throughout");
	stale_case("recycled-thread", &bad);
	return bad ? 1 : 0;
}

static int deny_writes(long nr, const long args[6])
{
	(void)args;
	return nr == SYS_pwrite64 || nr == SYS_mprotect ? EPERM : 0;
}

static int deny_exec(long nr, const long args[6])
{
	return nr == SYS_mprotect && (args[2] & PROT_EXEC) ? EACCES : 0;
}

/*
 * "scrub [denied|noexec]": two packed areas that ran; the first unmapped.
 * Its pages, RX with their block, are filled with int3 by a flip of the
 * block to RW and back.  With "denied", a seccomp filter fails every
 * pwrite64 and mprotect meanwhile, so the fill cannot be made; with
 * "noexec", every mprotect that asks for PROT_EXEC, so the block cannot be
 * made RX again after the fill.  The munmap succeeds either way, and the
 * preload's report counts the failure (scrub_failed), for
 * tests/e2e/preload.sh.  Prints "scrub munmap RC int3 0|1 prot P".
 */
static int scrub(const char *how)
{
	bool denied = how && !strcmp(how, "denied"), noexec = how && !strcmp(how, "noexec");
	unsigned char *g1 = lj_area_mapped(64 * KB), *g2 = NULL;
	if (g1) {
		put_code(g1, 27);
		g2 = mprotect(g1, 64 * KB, RX) == 0 && call_at(g1) == 27 ? lj_area_mapped(64 * KB)
									 : NULL;
	}
	if (!g2 || !owns || !owns(g1, 1) || !owns(g2, 1) || mprotect(g2, 64 * KB, RX) ||
	    (uintptr_t)g1 >> 21 != (uintptr_t)g2 >> 21) {
		printf("scrub: two areas that ran were not packed into one block\n");
		return 1;
	}
	if (denied || noexec) {
		sysfault_policy = denied ? deny_writes : deny_exec;
		if (sysfault_install()) {
			printf("scrub: no seccomp\n");
			return 1;
		}
		sysfault_armed = true;
	}
	int rc = munmap(g1, 64 * KB);
	sysfault_armed = false;
	printf("scrub munmap %d int3 %d prot %d\n", rc, proc_mem_all(g1, 64 * KB, 0xcc),
	       kernel_prot_at((uintptr_t)g2));
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	owns = preloaded_owns();
	if (argc > 1 && !strcmp(argv[1], "stale"))
		return stale();
	if (argc > 1 && !strcmp(argv[1], "scrub"))
		return scrub(argc > 2 ? argv[2] : NULL);
	fprintf(stderr, "usage: stale_ops stale | scrub [denied|noexec]\n");
	return 2;
}
