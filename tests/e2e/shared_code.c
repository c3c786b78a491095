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
 *   anon     MAP_SHARED|MAP_ANONYMOUS memory flipped RW <-> RX (PHP).
 *
 * Each checks what the program relies on: the views see each other's
 * writes, ftruncate growth (a bigger file mapped again), a forked child
 * shares the memory both ways, munmap of one view leaves the other.  With
 * --huge (under the preload) it also checks, in the kernel's view
 * (/proc/self/smaps ShmemPmdMapped/FilePmdMapped), that the code it runs is
 * huge-mapped within 3 seconds, and says so on stderr only: stdout is the
 * same with and without the preload.  Exit 1 on any difference.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* kB of the VMA holding @addr mapped with PMDs (shared memory or a file). */
static long pmd_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long kb = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in &&
		    (!strncmp(line, "ShmemPmdMapped:", 15) || !strncmp(line, "FilePmdMapped:", 14)))
			kb += atol(strchr(line, ':') + 1);
	}
	if (f)
		fclose(f);
	return kb;
}

/* --huge: the @units 2 MiB units from @addr (code the program ran) become
 * huge-mapped within 3 s (the preload's collapser works in the background). */
static void expect_huge(const char *what, const void *addr, long units)
{
	if (!huge_check)
		return;
	long want = units * 2048, kb = 0;
	for (int i = 0; i < 300 && (kb = pmd_kb(addr)) < want; i++) {
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

/* The dual-mapped file: @fd, 4 MiB then grown to 8 MiB. */
static void dual(int fd, const char *name)
{
	if (ftruncate(fd, 4 * MB))
		return fail("ftruncate");
	unsigned char *rx = mmap(NULL, 4 * MB, RX, MAP_SHARED, fd, 0);
	unsigned char *rw = mmap(NULL, 4 * MB, RW, MAP_SHARED, fd, 0);
	if (rx == MAP_FAILED || rw == MAP_FAILED)
		return fail("mmap");
	emit(rw + 64, 1);
	emit(rw + 2 * MB + 4096, 2);
	printf("%s: written through RW, run through RX: %d %d\n", name, call(rx + 64),
	       call(rx + 2 * MB + 4096));
	expect_huge("RX view", rx, 2);
	emit(rw + 3 * MB, 3); /* code in a unit that is already huge */
	printf("%s: more code in it: %d\n", name, call(rx + 3 * MB));

	/* Growth: the file made bigger, mapped again (sljit, BEAM's next segment). */
	if (ftruncate(fd, 8 * MB))
		return fail("ftruncate grow");
	unsigned char *rx2 = mmap(NULL, 8 * MB, RX, MAP_SHARED, fd, 0);
	unsigned char *rw2 = mmap(NULL, 8 * MB, RW, MAP_SHARED, fd, 0);
	if (rx2 == MAP_FAILED || rw2 == MAP_FAILED)
		return fail("mmap grown");
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
	} else {
		fprintf(stderr, "usage: shared_code memfd|tmpfile|anon [--huge]\n");
		return 2;
	}
	return failures ? 1 : 0;
}
