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
 *   rlimit   a view mapped with no address space to spare (RLIMIT_AS).
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
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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
	} else {
		fprintf(stderr, "usage: shared_code memfd|tmpfile|anon|rlimit [--huge]\n");
		return 2;
	}
	return failures ? 1 : 0;
}
