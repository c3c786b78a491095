/* SPDX-License-Identifier: MIT */
/*
 * seccomp_faults.t - the library's own system calls failed on the real
 * kernel (tests/lib/sysfault: a seccomp filter and a SIGSYS handler), in
 * forked children, so that the filter never reaches the test harness.
 *
 *   trim      a decommit whose second mmap fails (ENOMEM, as at
 *             vm.max_map_count), or whose hole punch fails (EIO), leaves
 *             the block as it was, or decommitted, never half: the next
 *             executable allocation runs its code.
 *   flip      hp_write's last resort (no alias, no /proc/self/mem) whose
 *             second page cannot be made writable: -1, and nothing
 *             written, no page left writable.
 *   random    a seeded random workload of every public call while mmap,
 *             munmap, mprotect, madvise, memfd_create, fallocate and
 *             pwrite fail at random: after each call the arena's
 *             invariants hold, every live allocation has the protection
 *             and bytes the model says (checked in /proc/self/maps and by
 *             reading), and a failed call changed nothing.
 * HUGEPERM_FAULT_SEED and HUGEPERM_FAULT_OPS set the random run (default:
 * 2 seeds of 1000 operations on each backend).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "sysfault.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define PG HP_PAGE_SIZE

static bool verbose; /* HUGEPERM_FAULT_VERBOSE: each operation and fault on stderr */
static const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};

/* ---------------------------------------------------------------------
 * trim with a failing decommit (issue 15 defect 11)
 * ------------------------------------------------------------------- */
static uintptr_t fail_addr; /* mmap at this address fails */
static long fail_nr;	    /* this system call fails (any arguments) */
static int fail_err;

static int policy_once(long nr, const long args[6])
{
	if ((nr == SYS_mmap && fail_addr && (uintptr_t)args[0] == fail_addr) ||
	    (fail_nr && nr == fail_nr)) {
		fail_addr = 0;
		fail_nr = 0;
		return fail_err;
	}
	return 0;
}

/* In the child: exit status bits say what went wrong. */
static int trim_case(bool punch)
{
	struct hp_config cfg = {
		.size = sizeof(cfg), .backend = HP_BACKEND_THP, .purge_ms = HP_PURGE_NOW};
	struct hp_arena *a = hp_arena_create(&cfg);
	unsigned char *x = a ? hp_arena_alloc(a, PG, RX) : NULL;
	if (!x || !hp_block_of((uintptr_t)x)->aliased)
		return 1;
	struct hp_block *b = hp_block_of((uintptr_t)x);
	hp_arena_free(a, x);
	if (sysfault_install())
		return 2;
	sysfault_policy = policy_once;
	if (punch) {
		fail_nr = SYS_fallocate;
		fail_err = EIO;
	} else {
		fail_addr = hp_alias_of(b, b->base);
		fail_err = ENOMEM;
	}
	sysfault_armed = true;
	hp_arena_trim(a); /* fails or not: what matters is what it leaves */
	sysfault_armed = false;
	int bad = sysfault_failed != 1 ? 4 : 0;
	char buf[256];
	struct hp_buf why = {buf, sizeof(buf) - 1, 0};
	if (hp_arena_check(a, &why)) {
		buf[why.len < why.cap ? why.len : why.cap] = 0;
		fprintf(stderr, "invariant: %s\n", buf);
		bad |= 8;
	}
	unsigned char *y = hp_arena_alloc(a, PG, RX);
	if (!y || kernel_prot_at((uintptr_t)y) != RX)
		return bad | 16; /* the exec view is a reservation */
	if (hp_arena_write(a, y, ret42, sizeof(ret42)) || ((int (*)(void))(void *)y)() != 42)
		return bad | 32;
	return bad;
}

static void test_trim(bool punch)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(trim_case(punch));
	int st = 0;
	waitpid(pid, &st, 0);
	if (!ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"trim with %s: the arena stays whole, the next RX allocation runs its code",
		punch ? "the hole punch failing (fallocate EIO)"
		      : "the alias view's mmap failing (ENOMEM)"))
		tap_diag("  %s %d", WIFSIGNALED(st) ? "signal" : "exit status",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* ---------------------------------------------------------------------
 * hp_write's flip with its second mprotect failing (issue 15 defect 12)
 * ------------------------------------------------------------------- */
static int nprotect; /* mprotect calls seen */

static int policy_flip(long nr, const long args[6])
{
	if (nr == SYS_pwrite64)
		return EIO; /* no /proc/self/mem: hp_write flips */
	if (nr == SYS_mprotect && ++nprotect == 2)
		return ENOMEM; /* the second page's flip */
	return 0;
}

static int flip_case(void)
{
	struct hp_config cfg = {
		.size = sizeof(cfg), .backend = HP_BACKEND_THP, .purge_ms = HP_PURGE_NOW};
	struct hp_arena *a = hp_arena_create(&cfg);
	unsigned char *p = a ? hp_arena_alloc(a, 2 * PG, PROT_READ) : NULL;
	if (!p)
		return 1;
	static unsigned char src[2 * 4096];
	memset(src, 'A', sizeof(src));
	if (sysfault_install())
		return 2;
	sysfault_policy = policy_flip;
	sysfault_armed = true;
	int r = hp_arena_write(a, p, src, sizeof(src));
	sysfault_armed = false;
	int bad = r == 0 ? 4 : 0;
	for (int k = 0; k < 2; k++) {
		if (kernel_prot_at((uintptr_t)p + (uintptr_t)k * PG) != PROT_READ)
			bad |= 8; /* a page left writable */
		for (size_t i = 0; i < PG; i++)
			if (p[(size_t)k * PG + i]) {
				bad |= 16; /* bytes written behind -1 */
				break;
			}
	}
	return bad;
}

static void test_flip(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(flip_case());
	int st = 0;
	waitpid(pid, &st, 0);
	if (!ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"hp_write's flip failing on its second page: -1, nothing written, both pages r--"))
		tap_diag("  %s %d", WIFSIGNALED(st) ? "signal" : "exit status",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* ---------------------------------------------------------------------
 * a random workload under random faults
 * ------------------------------------------------------------------- */
static uint64_t rng;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static uint64_t fault_rng;
static int policy_random(long nr, const long args[6])
{
	static const int errs[] = {ENOMEM, EAGAIN, EINVAL, EIO, EMFILE, EFAULT};
	fault_rng ^= fault_rng << 13;
	fault_rng ^= fault_rng >> 7;
	fault_rng ^= fault_rng << 17;
	/* One call in 8 fails, never two in a row: the library retries some
	 * calls once (putting protections back), and a fault that lasts is
	 * not what this test is about. */
	static bool failed_last;
	if (fault_rng % 8 || failed_last) {
		failed_last = false;
		return 0;
	}
	failed_last = true;
	if (verbose) {
		char m[] = "  fault in syscall ...\n";
		m[19] = (char)('0' + nr / 100 % 10);
		m[20] = (char)('0' + nr / 10 % 10);
		m[21] = (char)('0' + nr % 10);
		write(2, m, sizeof(m) - 1);
	}
	if (nr == SYS_memfd_create)
		return (fault_rng >> 8) % 2 ? EMFILE : ENOMEM;
	if (nr == SYS_fallocate || nr == SYS_pwrite64)
		return (fault_rng >> 8) % 2 ? EIO : ENOSPC;
	if (nr == SYS_madvise && args[2] == 25 /* MADV_COLLAPSE */)
		return (fault_rng >> 8) % 2 ? EAGAIN : ENOMEM;
	return errs[(fault_rng >> 8) % 2 ? 0 : (fault_rng >> 16) % 6];
}

#define NSLOTS 10
struct slot {
	unsigned char *p;
	size_t npages;
	uint8_t *prot;	     /* per page, as last set */
	unsigned char *data; /* the bytes it holds */
	bool bytes_unknown;  /* a failed free may have dropped them */
};
static struct slot S[NSLOTS];
static struct hp_arena *A;
static long nops, nfailed_ops;

/* A call of the library with faults armed. */
#define ARMED(expr)                                                                                \
	({                                                                                         \
		sysfault_armed = true;                                                             \
		__typeof__(expr) r_ = (expr);                                                      \
		sysfault_armed = false;                                                            \
		r_;                                                                                \
	})

static int check(const char *op)
{
	char buf[256];
	struct hp_buf why = {buf, sizeof(buf) - 1, 0};
	if (hp_arena_check(A, &why)) {
		buf[why.len < why.cap ? why.len : why.cap] = 0;
		fprintf(stderr, "after %s (op %ld): invariant: %s\n", op, nops, buf);
		return 1;
	}
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &S[i];
		if (!s->p)
			continue;
		for (size_t k = 0; k<s->npages; k += s->npages> 4 ? s->npages / 4 : 1) {
			int prot = kernel_prot_at((uintptr_t)s->p + k * PG);
			if (prot != s->prot[k]) {
				fprintf(stderr,
					"after %s (op %ld): page %zu of slot %d: kernel %d, model "
					"%d\n",
					op, nops, k, i, prot, s->prot[k]);
				return 1;
			}
			if ((prot & PROT_READ) && !s->bytes_unknown &&
			    memcmp(s->p + k * PG, s->data + k * PG, PG)) {
				fprintf(stderr,
					"after %s (op %ld): page %zu of slot %d: bytes differ\n",
					op, nops, k, i);
				return 1;
			}
		}
	}
	return 0;
}

static const int classes[] = {RW, PROT_READ, RX, PROT_NONE, PROT_EXEC};

static int op_alloc(int i)
{
	struct slot *s = &S[i];
	size_t npages = rnd(8) == 0 ? 513 + rnd(600) : 1 + rnd(rnd(2) ? 8 : 200);
	int prot = classes[rnd(5)];
	int flags = prot == RW && rnd(3) == 0 ? HP_HOME(RX) : 0;
	unsigned char *p = ARMED(hp_arena_alloc(A, npages * PG, prot | flags));
	if (!p)
		return 0;
	s->p = p;
	s->npages = npages;
	s->prot = malloc(npages);
	memset(s->prot, prot, npages);
	s->data = malloc(npages * PG);
	/* The start is known once written (without faults). */
	for (size_t k = 0; k < npages * PG; k++)
		s->data[k] = (unsigned char)(k * 7 + (size_t)i);
	if (hp_arena_write(A, p, s->data, npages * PG))
		return 1;
	return 0;
}

static void forget(int i)
{
	free(S[i].prot);
	free(S[i].data);
	memset(&S[i], 0, sizeof(S[i]));
}

static int step(void)
{
	int i = (int)rnd(NSLOTS);
	struct slot *s = &S[i];
	const char *op;
	int rc = 0;
	nops++;
	if (!s->p) {
		op = "alloc";
		if (op_alloc(i))
			return fprintf(stderr, "write after alloc failed\n"), 1;
		return check(op);
	}
	size_t first = rnd((unsigned)s->npages), n = 1 + rnd((unsigned)(s->npages - first));
	switch (rnd(7)) {
	case 0:
		op = "free";
		if (ARMED(hp_arena_free(A, s->p)) == 0) {
			forget(i);
		} else {
			nfailed_ops++;
			/* Pages of a block whose home class is NONE (a lazy
			 * allocation's, or stolen from one) are dropped first
			 * when freed, so a failed free may leave them reading
			 * zero (hugeperm(3)); the allocation stays live, its
			 * protections as they were (checked). */
			if (hp_block_drops_free(hp_block_of((uintptr_t)s->p)))
				s->bytes_unknown = true;
		}
		break;
	case 1: {
		op = "protect";
		int prot = classes[rnd(5)];
		if (ARMED(hp_arena_protect(A, s->p + first * PG, n * PG, prot)) == 0)
			memset(s->prot + first, prot, n);
		else
			nfailed_ops++;
		break;
	}
	case 2: {
		op = "write";
		size_t off = first * PG + rnd(PG), len = 1 + rnd((unsigned)(s->npages * PG - off));
		unsigned char *src = malloc(len);
		for (size_t k = 0; k < len; k++)
			src[k] = (unsigned char)(nops + k);
		rc = ARMED(hp_arena_write(A, s->p + off, src, len));
		if (rc == 0)
			memcpy(s->data + off, src, len);
		else
			nfailed_ops++;
		free(src);
		break;
	}
	case 3:
		op = "discard";
		rc = ARMED(hp_arena_discard(A, s->p + first * PG, n * PG));
		if (rc) {
			/* Some pages may read as zero already (as after a failed
			 * madvise): done again without faults, it must work. */
			nfailed_ops++;
			if (hp_arena_discard(A, s->p + first * PG, n * PG)) {
				fprintf(stderr, "op %ld: discard failed again without faults\n",
					nops);
				return 1;
			}
		}
		memset(s->data + first * PG, 0, n * PG);
		break;
	case 4:
		op = "trim";
		if (ARMED(hp_arena_trim(A)))
			nfailed_ops++;
		break;
	case 5:
		op = "collapse_pending";
		ARMED(hp_arena_collapse_pending(A));
		break;
	default:
		op = "writable";
		ARMED(hp_arena_writable(A, s->p));
		break;
	}
	if (verbose)
		fprintf(stderr, "op %ld: %s slot %d (%p, %zu pages) first %zu n %zu: %d\n", nops,
			op, i, (void *)s->p, s->npages, first, n, rc);
	return check(op);
}

static int random_run(uint64_t seed, long ops, int backend)
{
	rng = seed * 2654435761u + 1;
	fault_rng = seed * 40503u + 7;
	struct hp_config cfg = {.size = sizeof(cfg), .backend = backend, .purge_ms = HP_PURGE_NOW};
	A = hp_arena_create(&cfg);
	/* liburcu-bp registers a reader on its first use with all signals
	 * blocked: a trapped mmap there could not be handled.  Register now. */
	void *warm = A ? hp_arena_alloc(A, PG, RW) : NULL;
	if (!warm || hp_arena_free(A, warm) || sysfault_install())
		return 2;
	sysfault_policy = policy_random;
	for (long k = 0; k < ops; k++)
		if (step())
			return 1;
	for (int i = 0; i < NSLOTS; i++)
		if (S[i].p && hp_arena_free(A, S[i].p) == 0)
			forget(i);
	if (hp_arena_trim(A) || check("final trim"))
		return 1;
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(A, &st);
	if (st.committed_bytes) {
		fprintf(stderr, "%zu bytes still committed after freeing all\n",
			(size_t)st.committed_bytes);
		return 1;
	}
	fprintf(stderr, "%ld ops, %ld failed, %ld system calls trapped, %ld failed\n", nops,
		nfailed_ops, sysfault_trapped, sysfault_failed);
	return 0;
}

static void test_random(uint64_t seed, long ops, int backend)
{
	fflush(stdout);
	int fds[2];
	if (pipe(fds))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		if (!verbose)
			dup2(fds[1], 2);
		close(fds[0]);
		_exit(random_run(seed, ops, backend));
	}
	close(fds[1]);
	char out[4096];
	size_t got = 0;
	ssize_t k;
	while ((k = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0) {
		got += (size_t)k;
		if (got == sizeof(out) - 1) { /* keep the last half */
			memmove(out, out + got / 2, got - got / 2);
			got -= got / 2;
		}
	}
	out[got] = 0;
	close(fds[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	if (got && out[got - 1] == '\n')
		out[got - 1] = 0;
	if (!ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"%s, seed %llu: %ld operations under random system call faults",
		hp_backend_name(backend), (unsigned long long)seed, ops))
		tap_diag("  %s %d", WIFSIGNALED(st) ? "signal" : "exit status",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	tap_diag("  %s", out);
}

/*
 * The arenas purge at once (HP_PURGE_NOW): the purge's system calls run on
 * the test's own thread, under the faults, and no purge thread is created,
 * whose stack and (under ASan) runtime mappings the random mmap faults
 * would hit outside the library.
 */
int main(void)
{
	const char *e = getenv("HUGEPERM_FAULT_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : 1;
	e = getenv("HUGEPERM_FAULT_OPS");
	long ops = e ? atol(e) : 1000;
	verbose = getenv("HUGEPERM_FAULT_VERBOSE") != NULL;
	int nseeds = getenv("HUGEPERM_FAULT_SEED") ? 1 : 2;
	tap_plan(3 + 2 * nseeds);
	test_trim(false);
	test_trim(true);
	test_flip();
	for (int k = 0; k < nseeds; k++) {
		test_random(seed + (uint64_t)k, ops, HP_BACKEND_THP);
		test_random(seed + (uint64_t)k, ops, HP_BACKEND_SMALL);
	}
	return tap_done();
}
