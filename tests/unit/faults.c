/* SPDX-License-Identifier: MIT */
/*
 * faults.t - every OS hook failed at every call of a scripted workload.
 *
 * For each hook of struct hp_os that returns an errno, each errno its
 * contract (os.h) allows, and each N from 1 until the workload makes fewer
 * than N calls of that hook: a fresh arena on the fake OS runs the
 * workload with call N of the hook failing.  After every operation:
 *   - the arena's invariants hold (hp_arena_check);
 *   - nothing leaks: what the fake OS has given out (reservations, memory,
 *     memfds, metadata) is what the arena believes it holds;
 *   - live allocations are intact: still live, same length, each page at
 *     the protection the caller last set (a failed call changes nothing);
 *   - a call that failed is retried once the fault is gone, and succeeds.
 * The workload runs on three arenas: THP with aliases, THP without aliases
 * and without /proc/self/mem (hp_write flips protections) placed near a
 * hint (reserve_in), and hugetlb 2 MiB (with its THP pool set).  One TAP line per (variant, hook,
 * errno), with the cases run; violations are printed as diagnostics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fake_os.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)
#define PG HP_PAGE_SIZE

/* The errnos each hook's contract allows (os.h). */
static const int hook_errnos[FH_NHOOKS][5] = {
	[FH_RESERVE] = {ENOMEM},
	[FH_RESERVE_IN] = {EEXIST, ENOMEM},
	[FH_RELEASE] = {ENOMEM, EINVAL},
	[FH_COMMIT] = {ENOMEM, EAGAIN, EINVAL, EFAULT, EIO},
	[FH_DECOMMIT] = {ENOMEM},
	[FH_DISCARD] = {ENOMEM, EINVAL, EAGAIN},
	[FH_POPULATE] = {ENOMEM, EFAULT, EINTR, EHWPOISON},
	[FH_PROTECT] = {ENOMEM, EACCES, EINVAL},
	[FH_COLLAPSE] = {EAGAIN, ENOMEM, EBUSY, EINVAL},
	[FH_NAME] = {EINVAL, ENOMEM},
	[FH_GUARD] = {EINVAL, ENOMEM, EAGAIN},
	[FH_HUGE_MAPPED] = {ENOTTY, EINVAL, EFAULT},
	[FH_ALIAS_CREATE] = {EMFILE, ENFILE, ENOMEM, EINVAL, EPERM},
	[FH_ALIAS_COMMIT] = {ENOMEM, EPERM, EACCES, EFAULT},
	[FH_ALIAS_DECOMMIT] = {ENOMEM, EIO},
	[FH_ALIAS_COPY] = {ENOMEM, ENOSPC},
	[FH_ALIAS_REMAP] = {ENOMEM},
	[FH_MEM_WRITE] = {EIO, EFAULT, ENOMEM, EACCES},
	[FH_META_ALLOC] = {ENOMEM},
	[FH_ADVISE_HUGE] = {EINVAL, ENOMEM, EAGAIN},
	[FH_HELD] = {ENOTTY, EINVAL, EFAULT},
};

enum variant { V_ALIAS, V_FLIP, V_HUGETLB, NVARIANTS };
static const char *const variant_names[NVARIANTS] = {"thp+alias", "thp, flips", "hugetlb-2m"};

/* The model: what the caller knows of its live allocations. */
#define NSLOTS 13
struct model {
	uintptr_t p;   /* 0: none */
	size_t npages; /* as asked */
	uint8_t *prot; /* each page's protection, as last set */
	bool guarded;
};

static struct hp_arena *A;
static struct model M[NSLOTS];
static char violation[512]; /* the first one of the case */
static int nviolations;
static const char *step;	  /* the operation just done */
static int fault_hook, fault_err; /* the case's fault */

static void violate(const char *what, const char *detail)
{
	if (!nviolations++)
		snprintf(violation, sizeof(violation), "after %s: %s%s%s", step, what,
			 detail ? ": " : "", detail ? detail : "");
}

/* Everything a fault must leave true. */
static void check_all(void)
{
	char buf[256];
	struct hp_buf why = {buf, sizeof(buf) - 1, 0};
	if (hp_arena_check(A, &why)) {
		buf[why.len < why.cap ? why.len : why.cap] = 0;
		violate("invariant", buf);
	}
	size_t alias_res = 0;
	int fds = 0;
	long meta = 0;
	for (struct hp_chunk *c = A->chunks; c; c = c->next) {
		alias_res += c->alias_base ? HP_CHUNK_SIZE : 0;
		fds += (c->alias_fd[0] >= 0) + (c->alias_fd[1] >= 0);
		meta++;
	}
	for (struct hp_tcache *t = A->tcaches; t; t = t->next)
		meta++;
	if (fake.mapped_committed != A->committed_bytes)
		violate("leak", "committed memory differs from the fake OS's");
	if (fake.mapped_reserved != A->reserved_bytes + alias_res)
		violate("leak", "reservations differ from the fake OS's");
	if (fake.fds_open != fds)
		violate("leak", "memfds open differ from the chunks'");
	if (fake.meta_live != meta)
		violate("leak", "metadata differs from chunks + caches");
	for (int i = 0; i < NSLOTS; i++) {
		struct model *m = &M[i];
		if (!m->p)
			continue;
		if (hp_pool_usable(A, m->p) < m->npages * PG) {
			violate("live allocation lost", NULL);
			continue;
		}
		for (size_t k = 0; k < m->npages; k++) {
			uintptr_t page = m->p + k * PG;
			struct hp_block *b = hp_block_of(page);
			if (b->prot[(page - b->base) / PG] != m->prot[k]) {
				violate("page protection changed", NULL);
				break;
			}
		}
	}
}

static void done(const char *what)
{
	step = what;
	check_all();
}

/* Allocate into slot @i; on failure retry once (the fault is gone). */
static void alloc(int i, size_t npages, int prot, bool guarded, const char *what)
{
	void *p = guarded ? hp_arena_alloc_guarded(A, npages * PG, prot)
			  : hp_arena_alloc(A, npages * PG, prot);
	done(what);
	if (!p) {
		p = guarded ? hp_arena_alloc_guarded(A, npages * PG, prot)
			    : hp_arena_alloc(A, npages * PG, prot);
		done(what);
		if (!p) {
			violate("retry failed", what);
			return;
		}
	}
	struct model *m = &M[i];
	m->p = (uintptr_t)p;
	m->npages = npages;
	m->guarded = guarded;
	m->prot = malloc(npages);
	memset(m->prot, prot & 7, npages);
}

static void drop(int i)
{
	free(M[i].prot);
	memset(&M[i], 0, sizeof(M[i]));
}

static void protect(int i, size_t first, size_t n, int prot, const char *what)
{
	struct model *m = &M[i];
	if (!m->p)
		return;
	for (int t = 0; t < 2; t++) {
		int r = hp_arena_protect(A, (void *)(m->p + first * PG), n * PG, prot);
		if (r == 0)
			memset(m->prot + first, prot, n);
		done(what);
		if (r == 0)
			return;
	}
	violate("retry failed", what);
}

static void write_to(int i, size_t off, size_t len, const char *what)
{
	static char src[3 * 4096];
	struct model *m = &M[i];
	if (!m->p)
		return;
	for (int t = 0; t < 2; t++) {
		if (hp_arena_write(A, (void *)(m->p + off), src, len) == 0) {
			done(what);
			return;
		}
		done(what);
	}
	violate("retry failed", what);
}

static void discard(int i, size_t first, size_t n, const char *what)
{
	struct model *m = &M[i];
	if (!m->p)
		return;
	for (int t = 0; t < 2; t++) {
		int r = hp_arena_discard(A, (void *)(m->p + first * PG), n * PG);
		done(what);
		if (r == 0)
			return;
	}
	violate("retry failed", what);
}

static void release(int i, const char *what)
{
	struct model *m = &M[i];
	if (!m->p)
		return;
	for (int t = 0; t < 2; t++) {
		void *p = (void *)m->p;
		int r = hp_arena_free(A, p);
		if (r == 0) {
			drop(i);
			done(what);
			return;
		}
		done(what);
	}
	violate("retry failed", what);
}

static void trim(const char *what)
{
	if (hp_arena_trim(A) != 0) {
		done(what);
		if (hp_arena_trim(A) != 0)
			violate("retry failed", what);
	}
	done(what);
}

/* The workload: each class and size range, every public operation. */
static void workload(enum variant v)
{
	alloc(0, 1, RW, false, "alloc 1 page RW");
	alloc(1, 3, PROT_READ, false, "alloc 3 pages R");
	alloc(2, 20, RX, false, "alloc 20 pages RX");
	alloc(3, 4, PROT_NONE, false, "alloc 4 pages NONE");
	alloc(4, 600, RW, false, "alloc 600 pages RW (span)");
	alloc(5, 2, RW | HP_HOME(RX), false, "alloc 2 pages RW, HP_HOME(RX)");
	alloc(6, 2, RW, true, "alloc_guarded 2 pages RW");
	alloc(7, 1100, PROT_READ, false, "alloc 1100 pages R (span > 4 MiB)");
	protect(5, 0, 2, RX, "protect HP_HOME allocation RX");
	protect(3, 0, 1, RW, "protect a NONE page RW");
	if (v != V_HUGETLB) /* a hugetlb page changes protection only whole */
		protect(4, 300, 2, PROT_READ, "protect 2 pages of the span R");
	write_to(0, 8, 100, "write RW (direct)");
	write_to(2, 4096 - 8, 16, "write RX across pages (alias or procmem)");
	write_to(1, 4096 - 8, 16, "write R across pages (procmem or flip)");
	write_to(5, 0, 4096, "write HP_HOME RX page");
	discard(0, 0, 1, "discard RW page");
	discard(1, 0, 3, "discard R pages");
	discard(4, 100, 50, "discard part of the span");
	discard(2, 0, 20, "discard RX pages");
	alloc(11, HP_BLOCK_PAGES, PROT_NONE, false, "alloc a NONE block (lazy)");
	protect(11, 0, HP_BLOCK_PAGES, RW, "protect the lazy block RW (populated to collapse)");
	if (hp_arena_collapse_pending(A) < 0)
		violate("collapse_pending failed", NULL);
	done("collapse_pending");
	/* A run of whole blocks: one `held` answer says which hold pages. */
	alloc(12, 3 * HP_BLOCK_PAGES, PROT_NONE, false, "alloc 3 NONE blocks (lazy)");
	discard(12, 0, 3 * HP_BLOCK_PAGES, "discard 3 whole NONE blocks (held)");
	release(12, "free 3 NONE blocks (held)");
	release(2, "free RX");
	release(3, "free NONE");
	release(6, "free guarded");
	release(7, "free span > 4 MiB");
	trim("trim");
	alloc(8, 5, RX, false, "alloc RX after trim");
	write_to(8, 0, 64, "write the new RX allocation");
	alloc(9, 1, PROT_NONE, false, "alloc NONE after trim");
	protect(9, 0, 1, PROT_READ, "protect the new NONE page R");
	/* Aliases survive any failure but the kernel's refusal of executable
	 * memfds (memfd_noexec=2: EPERM or EACCES). */
	bool refused = (fault_hook == FH_ALIAS_COMMIT || fault_hook == FH_ALIAS_CREATE) &&
		       (fault_err == EPERM || fault_err == EACCES);
	if (v == V_ALIAS && !refused && fake.faults_hit) {
		alloc(10, HP_BLOCK_PAGES, RX, false, "alloc an RX block after the faults");
		if (M[10].p && !hp_block_of(M[10].p)->aliased)
			violate("executable blocks lost their alias for good", NULL);
	}
	{
		pthread_mutex_lock(&A->lock);
		int r = hp_arena_fork_child(A);
		pthread_mutex_unlock(&A->lock);
		done("fork child reset");
		if (r)
			violate("fork child reset failed", NULL);
	}
	for (int i = 0; i < NSLOTS; i++)
		release(i, "free all");
	trim("final trim");
	if (A->committed_bytes)
		violate("memory left after freeing all and trimming", NULL);
}

static struct hp_arena *make_arena(enum variant v)
{
	struct hp_arena *a = fake_arena(v == V_HUGETLB ? HP_BACKEND_HUGETLB_2M : HP_BACKEND_THP,
					HP_COLLAPSE_DEFERRED);
	a->alias = v != V_FLIP;
	a->guard_madvise = true;
	fake.held_answer = true; /* PAGEMAP_SCAN answers: held_blocks.c asks it */
	if (v == V_FLIP) {
		fake.mem_write_refuse = EACCES; /* no /proc/self/mem: flips */
		a->near = 0x600000000000UL;	/* chunks by reserve_in */
	}
	return a;
}

/* One case: call @n of @hook fails with @err.  True if it was reached. */
static bool run_case(enum variant v, int hook, int err, int n)
{
	fake_reset();
	A = make_arena(v);
	fake.fault_hook = hook;
	fake.fault_at = n;
	fake.fault_err = err;
	fault_hook = hook;
	fault_err = err;
	nviolations = 0;
	workload(v);
	bool hit = fake.faults_hit > 0;
	fake_arena_free(A);
	for (int i = 0; i < NSLOTS; i++)
		drop(i);
	if (fake.meta_live != 0 || fake.fds_open != 0 || fake.mapped_reserved != 0)
		violate("leak at teardown", NULL);
	return hit;
}

int main(void)
{
	long cases = 0, bad = 0;
	setenv("HUGEPERM_CHECKED", "0", 1);
	hp_options_init();

	/* The workload without faults is clean (else every case would fail). */
	for (int v = 0; v < NVARIANTS; v++) {
		run_case(v, FH_RESERVE, ENOMEM, 0);
		if (!ok(nviolations == 0, "%s: the workload without faults keeps every invariant",
			variant_names[v]))
			tap_diag("  %s", violation);
	}
	for (int v = 0; v < NVARIANTS; v++)
		for (int h = 0; h < FH_NHOOKS; h++)
			for (int e = 0; e < 5 && hook_errnos[h][e]; e++) {
				int err = hook_errnos[h][e], ncases = 0, nbad = 0;
				char first[sizeof(violation) + 32] = "";
				for (int n = 1; run_case(v, h, err, n); n++) {
					ncases++;
					if (nviolations && !nbad++)
						snprintf(first, sizeof(first), "call %d: %s", n,
							 violation);
				}
				cases += ncases;
				bad += nbad;
				if (!ok(nbad == 0,
					"%s: %s fails with %s: %d cases, %d with violations",
					variant_names[v], fake_hook_names[h], hp_errno_name(err),
					ncases, nbad))
					tap_diag("  %s", first);
			}
	tap_diag("%ld (hook, errno, N) cases, %ld with violations", cases, bad);
	return tap_done();
}
