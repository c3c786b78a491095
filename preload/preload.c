/* SPDX-License-Identifier: MIT */
/*
 * preload.c - libhugeperm-preload.so: serve an unmodified JIT's code
 * mappings from hugeperm, through LD_PRELOAD.  Built on the public API only.
 *
 * What is served (the rest goes to the kernel untouched):
 *   exec   anonymous private mappings that are executable when mapped
 *          (PCRE2's sljit, PyPy, .NET): packed into blocks of their class,
 *          RWX included, since the program asked for it;
 *   areas  anonymous private RW (or R) mappings of up to 2 MiB whose
 *          address hint is 64 KiB aligned: a JIT asking for code memory
 *          near its own code (LuaJIT's mcode areas).  They are placed in an
 *          arena near the hint, and HUGEPERM_PRELOAD_FLIP says how their
 *          W<->X flips are done:
 *            block  each area has a 2 MiB block of its own and a flip of the
 *                   whole area is applied to the whole block: a whole-PMD
 *                   mprotect, which splits nothing (default);
 *            exact  areas share RX blocks and flips are applied exactly:
 *                   each flip splits the block and a collapse follows;
 *            rwx    areas live in RWX blocks and flips between RW, RX and
 *                   RWX change nothing (relaxed: the code stays writable).
 * Size bounds: HUGEPERM_PRELOAD_MAX_MB (64); HUGEPERM_PRELOAD_SERVE lists the
 * kinds ("exec,areas", "exec", "areas" or "none").
 *
 * Served ranges keep the kernel's semantics: they read as zero when mapped,
 * partial munmap/mprotect work, MAP_FIXED over them gives fresh zero pages
 * (or, for a file or shared mapping, hands those pages to the kernel for
 * good), mremap shrinks in place and grows in place or moves, MADV_DONTNEED
 * zeroes.  The pages of a partial munmap return to hugeperm when the rest of
 * the mapping goes.
 *
 * Safety: hooks never call malloc or stdio; a per-thread flag sends calls
 * made while a hook runs (liburcu's registry, the library's own
 * initialisation) straight to the kernel; the library's os.c makes raw
 * system calls, which never reach these hooks.  Signals are blocked while the
 * lock is held, so a handler that maps memory cannot deadlock; fork takes the
 * lock first, then the library's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hugeperm.h>

#include "internal.h" /* hp_os_linux, hp_errno_name */
#include "preload.h"
#include "trace.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif

/* The hooks are the preload's only exports besides the hp_ API. */
#define HOOK __attribute__((visibility("default")))

#define PAGE	     4096UL
#define BLOCK	     (2UL << 20)
#define PROTS	     (PROT_READ | PROT_WRITE | PROT_EXEC)
#define RX	     (PROT_READ | PROT_EXEC)
#define AREA_ALIGN   (64UL << 10)
#define MAX_ARENAS   16
#define NEAR_MATCH   (64UL << 20) /* a hint this close to an arena's goes to it */
#define AREA_REACH   (1UL << 30)  /* a hinted area served further away goes to the kernel */
#define REGIONS_INIT 1024
#define RESV_MAX     (1UL << 30) /* the largest hugeperm allocation */

enum kind { KIND_EXEC, KIND_AREA, KIND_RESV };

/* One range the program has mapped, inside one hugeperm allocation. */
struct region {
	uintptr_t start, end; /* the program's pages */
	uintptr_t base;	      /* the allocation they live in */
	size_t alloc_size;
	unsigned char arena; /* index into arenas[] */
	unsigned char kind;
	unsigned char prot;    /* protection the program last gave the pages */
	unsigned char relaxed; /* rwx mode: W/X flips are not applied */
	unsigned char keyed;   /* a protection key was set on these pages */
	unsigned char tainted; /* some pages of the allocation went to the kernel */
};

static struct {
	pthread_mutex_t lock;
	int state; /* 0: not set up, 1: setting up, 2: ready */
	bool serve_exec, serve_areas, serve_resv;
	int flip;
	size_t max_bytes;
	size_t resv_min; /* smallest reservation served */
	int collapse_mode;
	struct hp_arena *arenas[MAX_ARENAS];
	uintptr_t near[MAX_ARENAS]; /* 0 for the arena without a hint */
	int narenas;
	bool atfork_done;
	struct region *r;
	size_t nr, cap;
	struct hp_preload_counts n;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static __thread int in_hook __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ */
/* The kernel's calls: the next definition (another preload or libc), or the
 * system call itself while dlsym is not there yet. */

static void *(*next_mmap)(void *, size_t, int, int, int, off_t);
static int (*next_munmap)(void *, size_t);
static int (*next_mprotect)(void *, size_t, int);
static int (*next_madvise)(void *, size_t, int);
static void *(*next_mremap)(void *, size_t, size_t, int, ...);

static void resolve(void)
{
	next_mmap = dlsym(RTLD_NEXT, "mmap");
	next_munmap = dlsym(RTLD_NEXT, "munmap");
	next_mprotect = dlsym(RTLD_NEXT, "mprotect");
	next_madvise = dlsym(RTLD_NEXT, "madvise");
	next_mremap = dlsym(RTLD_NEXT, "mremap");
}

static void *k_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (next_mmap)
		return next_mmap(addr, len, prot, flags, fd, off);
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return r == -1 ? MAP_FAILED : (void *)r;
}

static int k_munmap(void *addr, size_t len)
{
	return next_munmap ? next_munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
}

static int k_mprotect(void *addr, size_t len, int prot)
{
	return next_mprotect ? next_mprotect(addr, len, prot)
			     : (int)syscall(SYS_mprotect, addr, len, prot);
}

static int k_madvise(void *addr, size_t len, int advice)
{
	return next_madvise ? next_madvise(addr, len, advice)
			    : (int)syscall(SYS_madvise, addr, len, advice);
}

static void *k_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *to)
{
	if (next_mremap)
		return next_mremap(old, oldlen, newlen, flags, to);
	long r = syscall(SYS_mremap, old, oldlen, newlen, flags, to);
	return r == -1 ? MAP_FAILED : (void *)r;
}

static int k_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	return (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey);
}

/* ------------------------------------------------------------------ */
/* Options, read from environ without allocating. */

static size_t env_num(const char *name, size_t def, size_t hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	size_t n = 0;
	for (const char *s = v; *s; s++) {
		if (*s < '0' || *s > '9' || n > hi)
			return def;
		n = n * 10 + (size_t)(*s - '0');
	}
	return n > hi ? def : n;
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *s = list; *s;) {
		const char *e = s;
		while (*e && *e != ',')
			e++;
		if ((size_t)(e - s) == n && !strncmp(s, word, n))
			return true;
		s = *e ? e + 1 : e;
	}
	return false;
}

/* HUGEPERM_PRELOAD_INHERIT=0: blank our entry out of LD_PRELOAD in place, so
 * that programs this one executes run without us. */
static void drop_from_ld_preload(void)
{
	char *v = getenv("LD_PRELOAD");
	if (!v)
		return;
	for (char *s = v; *s;) {
		char *e = s;
		while (*e && *e != ':' && *e != ' ')
			e++;
		size_t n = (size_t)(e - s);
		const char *me = "libhugeperm-preload.so";
		size_t m = strlen(me);
		if (n >= m && !strncmp(e - m, me, m))
			memset(s, ' ', n);
		s = *e ? e + 1 : e;
	}
}

/* `hugeperm record`: the program's anonymous mmap stream as it asked for it
 * (trace.h), whatever was served.  HUGEPERM_PRELOAD_RECORD=path;
 * HUGEPERM_PRELOAD_RECORD_PID limits it to that process (not its children,
 * which would truncate the file). */
static struct hp_trace_writer rec;

static void rec_child(void)
{
	hp_trace_detach(&rec); /* the file is the parent's */
}

static void rec_prepare(void)
{
	hp_trace_flush(&rec);
}

static void open_record(void)
{
	const char *path = getenv("HUGEPERM_PRELOAD_RECORD");
	const char *pid = getenv("HUGEPERM_PRELOAD_RECORD_PID");
	if (!path || !*path || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return;
	int err = hp_trace_open(&rec, &hp_os_linux, path, "preload", program_invocation_short_name);
	if (err) {
		hp_preload_say("hugeperm: HUGEPERM_PRELOAD_RECORD=");
		hp_preload_say(path);
		hp_preload_say(": cannot create the file (");
		hp_preload_say(hp_errno_name(err));
		hp_preload_say("); not recording\n");
		return;
	}
	pthread_atfork(rec_prepare, NULL, rec_child);
}

static void note(int type, const void *addr, size_t len, int prot, int flags)
{
	if (rec.on && !in_hook)
		hp_trace_record(&rec, type, (uintptr_t)addr, len, prot, flags);
}

static void read_options(void)
{
	open_record();
	const char *serve = getenv("HUGEPERM_PRELOAD_SERVE");
	if (!serve)
		serve = "exec,areas,reservations";
	P.serve_exec = has_word(serve, "exec");
	P.serve_areas = has_word(serve, "areas");
	P.serve_resv = has_word(serve, "reservations");

	const char *flip = getenv("HUGEPERM_PRELOAD_FLIP");
	P.flip = HP_PRELOAD_FLIP_BLOCK;
	if (flip && !strcmp(flip, "exact"))
		P.flip = HP_PRELOAD_FLIP_EXACT;
	else if (flip && !strcmp(flip, "rwx"))
		P.flip = HP_PRELOAD_FLIP_RWX;
	else if (flip && strcmp(flip, "block"))
		hp_preload_say("hugeperm: HUGEPERM_PRELOAD_FLIP must be block, exact or rwx "
			       "(EINVAL); using block\n");

	P.max_bytes = env_num("HUGEPERM_PRELOAD_MAX_MB", 64, 1024) << 20;
	P.resv_min = env_num("HUGEPERM_PRELOAD_RESERVE_MIN_MB", 128, RESV_MAX >> 20) << 20;
	/* A flip in exact mode is worth nothing unless the block is collapsed
	 * back, and no one else would call hp_collapse_pending(). */
	P.collapse_mode = getenv("HUGEPERM_COLLAPSE") ? HP_COLLAPSE_DEFAULT : HP_COLLAPSE_SYNC;
	if (env_num("HUGEPERM_PRELOAD_INHERIT", 1, 1) == 0)
		drop_from_ld_preload();
}

static bool ready(void)
{
	int s = __atomic_load_n(&P.state, __ATOMIC_ACQUIRE);
	if (s == 2)
		return true;
	int zero = 0;
	if (s != 0 || !__atomic_compare_exchange_n(&P.state, &zero, 1, false, __ATOMIC_ACQ_REL,
						   __ATOMIC_ACQUIRE))
		return false; /* another thread is setting up: this call goes to the kernel */
	in_hook++;
	resolve();
	read_options();
	in_hook--;
	__atomic_store_n(&P.state, 2, __ATOMIC_RELEASE);
	return true;
}

/* ------------------------------------------------------------------ */
/* The lock, with signals blocked while it is held. */

struct held {
	sigset_t old;
};

static void lock(struct held *h)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &h->old);
	pthread_mutex_lock(&P.lock);
	in_hook++;
}

static void unlock(struct held *h)
{
	in_hook--;
	pthread_mutex_unlock(&P.lock);
	pthread_sigmask(SIG_SETMASK, &h->old, NULL);
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&P.lock);
}

static void fork_release(void)
{
	pthread_mutex_unlock(&P.lock);
}

/* ------------------------------------------------------------------ */
/* The region table: sorted by address, in memory of its own. */

static size_t region_find(uintptr_t addr) /* first region ending above @addr */
{
	size_t lo = 0, hi = P.nr;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (P.r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool region_insert(const struct region *g)
{
	if (P.nr == P.cap) {
		size_t cap = P.cap ? P.cap * 2 : REGIONS_INIT;
		void *m = k_mmap(NULL, cap * sizeof(*P.r), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return false;
		if (P.r) {
			memcpy(m, P.r, P.nr * sizeof(*P.r));
			k_munmap(P.r, P.cap * sizeof(*P.r));
		}
		P.r = m;
		P.cap = cap;
	}
	size_t i = region_find(g->start);
	memmove(&P.r[i + 1], &P.r[i], (P.nr - i) * sizeof(*P.r));
	P.r[i] = *g;
	P.nr++;
	return true;
}

static void region_delete(size_t i)
{
	memmove(&P.r[i], &P.r[i + 1], (P.nr - i - 1) * sizeof(*P.r));
	P.nr--;
}

/* Does any region still live in the allocation at @base? */
static bool alloc_in_use(uintptr_t base)
{
	for (size_t i = 0; i < P.nr; i++)
		if (P.r[i].base == base)
			return true;
	return false;
}

/* The region record of an allocation, for one whose pages are all gone. */
static const struct region *alloc_of(uintptr_t addr)
{
	for (size_t i = 0; i < P.nr; i++)
		if (addr >= P.r[i].base && addr < P.r[i].base + P.r[i].alloc_size)
			return &P.r[i];
	return NULL;
}

/* Is every page of [start, end) that hugeperm owns inside a region? */
static bool covered(uintptr_t start, uintptr_t end)
{
	uintptr_t at = start;
	for (size_t i = region_find(start); i < P.nr && P.r[i].start < end; i++) {
		if (P.r[i].start > at && hp_owns((void *)at, P.r[i].start - at))
			return false;
		at = P.r[i].end;
	}
	return at >= end || !hp_owns((void *)at, end - at);
}

/* ------------------------------------------------------------------ */
/* Arenas. */

static void register_fork(void)
{
	/* After the library's own handlers are in (the first arena brought
	 * them), so that ours run first at fork: our lock, then the library's. */
	if (!P.atfork_done && pthread_atfork(fork_prepare, fork_release, fork_release) == 0)
		P.atfork_done = true;
}

static uintptr_t distance(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

/* The arena for requests near @hint (0: the one without a hint), made on
 * first use; the nearest one when there can be no more.  A hint in the
 * 1 GiB slot of an arena's own hint goes to that arena: its chunk is most
 * likely in that slot, which holds one chunk only, so a new arena would
 * have to go to another slot, further away (LuaJIT's test suite, whose
 * many states each ask at random hints, made all 16 arenas, each further
 * out of its reach). */
static int arena_for(uintptr_t hint)
{
	int best = -1;
	for (int i = 0; i < P.narenas; i++) {
		if (!hint && !P.near[i])
			return i;
		if (!hint || !P.near[i])
			continue;
		if (distance(P.near[i], hint) <= NEAR_MATCH || P.near[i] >> 30 == hint >> 30)
			return i;
		if (best < 0 || distance(P.near[i], hint) < distance(P.near[best], hint))
			best = i;
	}
	if (P.narenas == MAX_ARENAS)
		return best;
	struct hp_config cfg = {
		.size = sizeof(cfg),
		.collapse_mode = P.collapse_mode,
		.flags = HP_ARENA_ALLOW_RWX | HP_ARENA_NO_ALIAS,
		.near = (void *)hint,
	};
	struct hp_arena *a = hp_arena_create(&cfg);
	if (!a)
		return best;
	register_fork();
	P.arenas[P.narenas] = a;
	P.near[P.narenas] = hint;
	P.n.arenas++;
	return P.narenas++;
}

/* Make [p, p+len) of region @g read as zero, whatever its protection. */
static void zero(const struct region *g, uintptr_t p, size_t len)
{
	static const char zeros[PAGE];
	if (g->kind == KIND_RESV) { /* pages may be NONE, or merged: the library knows */
		hp_arena_discard(P.arenas[g->arena], (void *)p, len);
		return;
	}
	if ((g->prot & PROT_WRITE) && !g->keyed) {
		memset((void *)p, 0, len);
		return;
	}
	for (size_t off = 0; off < len; off += PAGE)
		hp_arena_write(P.arenas[g->arena], (void *)(p + off), zeros, PAGE);
}

/*
 * Serve a new mapping of @len bytes of @kind near @hint; with @reach, only
 * within AREA_REACH of it.  Returns the address or 0 with errno set.
 */
static uintptr_t serve(enum kind kind, uintptr_t hint, size_t len, int prot, bool reach)
{
	int ai = arena_for(hint);
	if (ai < 0)
		return 0;
	struct hp_arena *a = P.arenas[ai];
	struct region g = {.arena = (unsigned char)ai, .kind = (unsigned char)kind};
	int want = prot;
	size_t size = len;

	if (kind == KIND_RESV) {
		want = PROT_NONE; /* lazily committed by the library: reads zero */
	} else if (kind == KIND_AREA) {
		if (P.flip == HP_PRELOAD_FLIP_BLOCK) {
			size = (len + BLOCK - 1) & ~(BLOCK - 1);
		} else if (P.flip == HP_PRELOAD_FLIP_EXACT) {
			want = prot == RX ? RX : prot | HP_HOME(RX);
		} else {
			want = PROTS;
			g.relaxed = 1;
		}
	}
	void *p = hp_arena_alloc(a, size, want);
	if (!p)
		return 0;
	/* A JIT that gives a hint needs its code within reach of its own
	 * (LuaJIT: +-2 GiB of its VM).  An area further than AREA_REACH from
	 * the hint (no room left near it) would be unmapped by the JIT and
	 * asked again elsewhere, until it gives up and flushes its traces; the
	 * kernel's page lands on the hint.  An area that mremap moves has no
	 * such promise: the kernel would move it anywhere. */
	if (reach && kind == KIND_AREA && hint && distance((uintptr_t)p, hint) > AREA_REACH) {
		hp_arena_free(a, p);
		errno = ENOMEM;
		return 0;
	}
	g.base = (uintptr_t)p;
	g.alloc_size = hp_usable_size(p) ? hp_usable_size(p) : size;
	g.start = g.base;
	g.end = g.base + len;
	g.prot = (unsigned char)(g.relaxed ? PROTS : prot);
	if (kind != KIND_RESV)
		zero(&g, g.start, len);
	g.prot = (unsigned char)prot;
	if (!region_insert(&g)) {
		hp_arena_free(a, p);
		errno = ENOMEM;
		return 0;
	}
	if (kind == KIND_AREA)
		P.n.areas++;
	else if (kind == KIND_RESV)
		P.n.reservations++;
	else
		P.n.exec++;
	if (kind != KIND_RESV) /* address space, not memory */
		P.n.served_bytes += len;
	return g.base;
}

/* Give the allocation behind a region back, if no region uses it now. */
static void release(struct region g)
{
	if (alloc_in_use(g.base))
		return;
	if (g.tainted) {
		P.n.given_bytes += g.alloc_size;
		return; /* some of its pages belong to another mapping now */
	}
	if (g.keyed) {
		/* Key 0 again before the pages are reused: one protection for the
		 * whole allocation first, so that hugeperm's record stays true. */
		if (hp_arena_protect(P.arenas[g.arena], (void *)g.base, g.alloc_size, g.prot) ||
		    k_pkey_mprotect((void *)g.base, g.alloc_size, g.prot, 0)) {
			P.n.given_bytes += g.alloc_size; /* cannot clean it: never reuse it */
			return;
		}
	}
	hp_arena_free(P.arenas[g.arena], (void *)g.base);
}

enum cut_mode {
	CUT_FREE,  /* munmap: an allocation with no region left goes back */
	CUT_REUSE, /* the pages get a new region at once: keep the allocation */
	CUT_GIVE,  /* a MAP_FIXED from the kernel takes the pages: the allocation
		    * is tainted and never returns to hugeperm */
};

/* Take [start, end) out of the regions. */
static void cut(uintptr_t start, uintptr_t end, enum cut_mode mode)
{
	size_t i = region_find(start);
	while (i < P.nr && P.r[i].start < end) {
		struct region g = P.r[i];
		if (mode == CUT_GIVE)
			for (size_t j = 0; j < P.nr; j++)
				if (P.r[j].base == g.base)
					P.r[j].tainted = g.tainted = 1;
		region_delete(i);
		struct region lo = g, hi = g;
		lo.end = start;
		hi.start = end;
		if (g.start < start) {
			region_insert(&lo); /* cannot fail: one was just deleted */
			i++;
		}
		if (g.end > end) {
			region_insert(&hi);
			i++;
		}
		if (g.start >= start && g.end <= end && mode != CUT_REUSE)
			release(g);
	}
}

/*
 * Apply @prot to region @g.  @whole: the change covers every region of g's
 * allocation, so an area in block mode can take its whole block along.
 */
static int region_protect(struct region *g, bool whole, int prot)
{
	struct hp_arena *a = P.arenas[g->arena];
	uintptr_t from = g->start, to = g->end;
	int want = prot;

	if (g->relaxed && (prot & PROT_READ) && (prot & (PROT_WRITE | PROT_EXEC))) {
		want = PROTS; /* rwx mode: RW <-> RX flips stay RWX */
		P.n.flips_relaxed++;
	} else if (g->kind == KIND_AREA && P.flip == HP_PRELOAD_FLIP_BLOCK && whole) {
		/* The whole area: the whole block, one PMD, no split.  Other
		 * regions of the block (left by a partial munmap) come along. */
		from = g->base;
		to = g->base + g->alloc_size;
		for (size_t i = 0; i < P.nr; i++)
			if (P.r[i].base == g->base)
				P.r[i].prot = (unsigned char)prot;
		P.n.flips_block++;
	}
	if (hp_arena_protect(a, (void *)from, to - from, want))
		return -1;
	P.n.protects++;
	return 0;
}

/*
 * Make the pages of @g (a region not in the table yet, or being extended)
 * fresh: zero, then protection @prot, as a new mapping of the kernel's.
 */
static int fresh(struct region *g, int prot)
{
	if (g->kind == KIND_RESV) { /* reconcile() applies the protection */
		g->prot = (unsigned char)prot;
		return hp_arena_discard(P.arenas[g->arena], (void *)g->start, g->end - g->start);
	}
	g->prot = (unsigned char)(g->relaxed ? PROTS : PROT_READ | PROT_WRITE);
	if (hp_arena_protect(P.arenas[g->arena], (void *)g->start, g->end - g->start, g->prot))
		return -1;
	zero(g, g->start, g->end - g->start);
	if (region_protect(g, false, prot))
		return -1;
	g->prot = (unsigned char)prot;
	return 0;
}

/*
 * Reservations (V8's code range, HotSpot's code cache) are committed in
 * place, with PROT_NONE guard pages and RW headers left between the code:
 * applied exactly, those keep every block mixed and 4K-mapped.  So, unless
 * flips are exact, a block of a reservation that holds executable pages
 * takes one protection: the union of the protections the program asked for
 * in it, provided that union is itself one of them (V8: RW headers, RWX
 * code and NONE guards give RWX).  A program that flips pages between RW and
 * RX gets no RWX it did not ask for: its blocks stay exact.  Inside a merged
 * block, pages asked to be PROT_NONE (guards, uncommitted or unmapped pages)
 * are accessible: the one relaxation, documented in docs/preload.md.
 *
 * Apply that to the blocks of the allocation at @base that meet [from, to).
 * The pages the program asked for are the regions; pages of the allocation
 * in no region are ours to set, unless some went to a kernel mapping
 * (tainted), where they are left alone.
 */
/* Pieces of a block that end with one protection take one call: a block
 * that ends uniform takes a whole-block mprotect, which splits nothing. */
struct run {
	struct hp_arena *a;
	uintptr_t start, end;
	int prot, rc;
};

static void run_add(struct run *r, uintptr_t s, uintptr_t e, int prot)
{
	if (r->end == s && r->prot == prot) {
		r->end = e;
		return;
	}
	if (r->end > r->start)
		r->rc |= hp_arena_protect(r->a, (void *)r->start, r->end - r->start, r->prot);
	r->start = s;
	r->end = e;
	r->prot = prot;
}

static int reconcile(const struct region *any, uintptr_t from, uintptr_t to)
{
	struct hp_arena *a = P.arenas[any->arena];
	uintptr_t base = any->base, end = base + any->alloc_size;
	bool tainted = any->tainted;
	int rc = 0;

	for (uintptr_t bs = from & ~(BLOCK - 1); bs < to && bs < end; bs += BLOCK) {
		uintptr_t lo = bs > base ? bs : base, hi = bs + BLOCK < end ? bs + BLOCK : end;
		unsigned seen = 0;
		int u = 0;
		bool keyed = false;
		size_t first = region_find(lo);
		for (size_t i = first; i < P.nr && P.r[i].start < hi; i++) {
			if (P.r[i].base != base)
				continue;
			keyed |= P.r[i].keyed;
			if (P.r[i].prot != PROT_NONE) {
				seen |= 1u << P.r[i].prot;
				u |= P.r[i].prot;
			}
		}
		if (!seen && !keyed && !tainted) {
			/* Nothing committed in it: the whole block back to NONE and its
			 * memory dropped at once (no split); the program's own
			 * MADV_DONTNEED of pieces then finds nothing to do. */
			if (hp_arena_protect(a, (void *)lo, hi - lo, PROT_NONE) ||
			    hp_arena_discard(a, (void *)lo, hi - lo))
				rc = -1;
			continue;
		}
		bool merge = P.flip != HP_PRELOAD_FLIP_EXACT && !keyed && (u & PROT_EXEC) &&
			     (seen & (1u << u));
		bool relaxed = false;
		struct run run = {.a = a};
		uintptr_t at = lo;
		for (size_t i = first; at < hi; i++) {
			bool in = i < P.nr && P.r[i].start < hi;
			if (in && P.r[i].base != base)
				continue;
			uintptr_t s = in ? (P.r[i].start > lo ? P.r[i].start : lo) : hi;
			if (s > at && !tainted) { /* pages in no region */
				run_add(&run, at, s, merge ? u : PROT_NONE);
				relaxed |= merge;
			}
			if (!in)
				break;
			uintptr_t e = P.r[i].end < hi ? P.r[i].end : hi;
			int want = merge ? u : P.r[i].prot;
			run_add(&run, s, e, want);
			relaxed |= want != P.r[i].prot;
			at = e;
		}
		run_add(&run, hi, hi, -1); /* flush */
		rc |= run.rc;
		if (relaxed)
			P.n.resv_merged++;
	}
	return rc ? -1 : 0;
}

/* reconcile() every reservation that has regions in [start, end). */
static int reconcile_range(uintptr_t start, uintptr_t end)
{
	uintptr_t done = start; /* blocks before this are done */
	int rc = 0;
	for (size_t i = region_find(start); i < P.nr && P.r[i].start < end; i++) {
		struct region g = P.r[i];
		uintptr_t from = g.start > done ? g.start : done, to = g.end < end ? g.end : end;
		if (g.kind != KIND_RESV || from >= to)
			continue;
		rc |= reconcile(&g, from, to);
		done = ((to - 1) & ~(BLOCK - 1)) + BLOCK;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Which requests are ours. */

static int classify(void *addr, size_t len, int prot, int flags, int fd)
{
	if (!(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE || fd > 0)
		return -1;
	if (flags & (MAP_GROWSDOWN | MAP_STACK | MAP_HUGETLB | MAP_32BIT | MAP_FIXED_NOREPLACE))
		return -1;
	/* A large PROT_NONE|MAP_NORESERVE range: a reservation to commit in
	 * place.  Big enough to be a JIT's code range (V8 512 MiB, HotSpot
	 * 240 MiB), not a heap cage or class space (1 GiB and more). */
	if (prot == PROT_NONE && (flags & MAP_NORESERVE) && P.serve_resv && len >= P.resv_min &&
	    len <= RESV_MAX)
		return KIND_RESV;
	if ((prot & ~PROTS) || prot == PROT_NONE || len == 0 || len > P.max_bytes)
		return -1;
	if ((prot & PROT_EXEC) && P.serve_exec)
		return KIND_EXEC;
	if (P.serve_areas && addr && !((uintptr_t)addr % AREA_ALIGN) && len <= BLOCK &&
	    !(prot & PROT_EXEC))
		return KIND_AREA;
	return -1;
}

static size_t page_up(size_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

/* The pages [*start, *end) of a call's range; false with EINVAL when @addr
 * is not page-aligned or the range wraps, as the kernel says. */
static bool page_range(const void *addr, size_t len, uintptr_t *start, uintptr_t *end)
{
	*start = (uintptr_t)addr;
	*end = *start + page_up(len);
	if (*start % PAGE || *end < *start) {
		errno = EINVAL;
		return false;
	}
	return true;
}

/* MAP_FIXED over our address space.  Returns the address, or MAP_FAILED. */
static void *fixed_over_ours(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t start = (uintptr_t)addr, end = start + page_up(len);
	/* Every page must lie in an allocation the program was given. */
	for (uintptr_t p = start; p < end; p += PAGE)
		if (hp_owns((void *)p, PAGE) && !alloc_of(p)) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
	bool anon = (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
		    !(prot & ~PROTS) && !(flags & (MAP_HUGETLB | MAP_GROWSDOWN));
	bool all_ours = true;
	for (uintptr_t p = start; p < end; p += PAGE)
		all_ours &= hp_owns((void *)p, PAGE) != 0;
	if (!anon || !all_ours) {
		cut(start, end, CUT_GIVE); /* those pages now belong to the kernel's mapping */
		P.n.fixed_given++;
		return k_mmap(addr, len, prot, flags, fd, off);
	}
	/* Fresh zero pages in place, allocation by allocation. */
	for (uintptr_t p = start; p < end;) {
		struct region g = *alloc_of(p);
		g.start = p;
		g.end = g.base + g.alloc_size < end ? g.base + g.alloc_size : end;
		g.keyed = 0;
		cut(g.start, g.end, CUT_REUSE);
		if (fresh(&g, prot))
			return MAP_FAILED;
		region_insert(&g);
		if (g.kind == KIND_RESV && reconcile(&g, g.start, g.end))
			return MAP_FAILED;
		p = g.end;
	}
	P.n.fixed_fresh++;
	return addr;
}

/* ------------------------------------------------------------------ */
/* The hooks. */

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (in_hook || !ready())
		return k_mmap(addr, len, prot, flags, fd, off);
	struct held h;
	if ((flags & MAP_FIXED) && len && hp_owns(addr, len)) {
		uintptr_t start, end;
		if (!page_range(addr, len, &start, &end))
			return MAP_FAILED;
		lock(&h);
		void *p = fixed_over_ours(addr, len, prot, flags, fd, off);
		unlock(&h);
		return p;
	}
	int kind = (flags & MAP_FIXED) ? -1 : classify(addr, len, prot, flags, fd);
	if (kind < 0) {
		__atomic_fetch_add(&P.n.passed, 1, __ATOMIC_RELAXED);
		return k_mmap(addr, len, prot, flags, fd, off);
	}
	lock(&h);
	uintptr_t p = serve((enum kind)kind, (uintptr_t)addr, page_up(len), prot, true);
	if (!p)
		P.n.fallbacks++;
	unlock(&h);
	/* hugeperm could not: the kernel serves it as it always did. */
	return p ? (void *)p : k_mmap(addr, len, prot, flags, fd, off);
}

/* Record a mapping the program made: anonymous private ones are ours to
 * trace; anything else MAP_FIXED replaced what was there. */
static void *note_mmap(void *p, void *addr, size_t len, int prot, int flags)
{
	if (p == MAP_FAILED || !rec.on)
		return p;
	bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	if ((flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE)
		note(HP_EV_MAP, p, len, prot,
		     (fixed ? HP_TF_FIXED : 0) | (flags & MAP_NORESERVE ? HP_TF_NORESERVE : 0) |
			     (addr && !fixed ? HP_TF_HINT : 0));
	else if (fixed)
		note(HP_EV_UNMAP, p, len, 0, 0);
	return p;
}

HOOK void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return note_mmap(do_mmap(addr, len, prot, flags, fd, off), addr, len, prot, flags);
}

HOOK void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return note_mmap(do_mmap(addr, len, prot, flags, fd, off), addr, len, prot, flags);
}

/* Call @kernel on the parts of [start, end) that hugeperm does not own. */
static int kernel_parts(uintptr_t start, uintptr_t end, int (*kernel)(void *, size_t, int), int arg)
{
	int rc = 0;
	for (uintptr_t at = start; at < end;) { /* hugeperm owns whole 1 GiB chunks */
		uintptr_t next = ((at >> 30) + 1) << 30;
		if (next > end || next == 0)
			next = end;
		if (!hp_owns((void *)at, next - at) && kernel((void *)at, next - at, arg))
			rc = -1;
		at = next;
	}
	return rc;
}

static int k_munmap3(void *addr, size_t len, int unused)
{
	(void)unused;
	return k_munmap(addr, len);
}

/* The reservations a munmap of [start, end) cuts into, kept for afterwards. */
#define UNMAP_RESV 16
static struct region unmapped[UNMAP_RESV];
static int nunmapped;

static void unmap_resv(uintptr_t start, uintptr_t end)
{
	nunmapped = 0;
	for (size_t i = region_find(start); i < P.nr && P.r[i].start < end; i++) {
		if (P.r[i].kind != KIND_RESV)
			continue;
		bool known = false;
		for (int k = 0; k < nunmapped; k++)
			known |= unmapped[k].base == P.r[i].base;
		if (!known && nunmapped < UNMAP_RESV)
			unmapped[nunmapped++] = P.r[i];
	}
}

/* Pages unmapped from a reservation that lives on: their blocks are
 * reconciled, and the pages dropped (or zeroed, in a merged block). */
static void resv_unmapped(uintptr_t start, uintptr_t end)
{
	for (int k = 0; k < nunmapped; k++) {
		struct region g = unmapped[k];
		if (!alloc_in_use(g.base))
			continue; /* released whole */
		uintptr_t s = start > g.base ? start : g.base;
		uintptr_t e = end < g.base + g.alloc_size ? end : g.base + g.alloc_size;
		reconcile(&g, s, e);
		if (!g.tainted)
			hp_arena_discard(P.arenas[g.arena], (void *)s, e - s);
	}
}

static int do_munmap(void *addr, size_t len)
{
	if (in_hook || !ready() || !len || !hp_owns(addr, len))
		return k_munmap(addr, len);
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end))
		return -1;
	struct held h;
	lock(&h);
	unmap_resv(start, end);
	cut(start, end, CUT_FREE);
	resv_unmapped(start, end);
	P.n.unmaps++;
	int rc = kernel_parts(start, end, k_munmap3, 0);
	unlock(&h);
	return rc;
}

HOOK int munmap(void *addr, size_t len)
{
	int rc = do_munmap(addr, len);
	if (rc == 0)
		note(HP_EV_UNMAP, addr, len, 0, 0);
	return rc;
}

/* Make @addr a region boundary: split the region that has it inside. */
static bool split_at(uintptr_t addr)
{
	size_t i = region_find(addr);
	if (i == P.nr || P.r[i].start >= addr)
		return true;
	struct region hi = P.r[i];
	hi.start = addr;
	P.r[i].end = addr;
	return region_insert(&hi);
}

/* Do the regions of one allocation all lie inside [start, end)? */
static bool whole_alloc(uintptr_t base, uintptr_t start, uintptr_t end)
{
	for (size_t i = 0; i < P.nr; i++)
		if (P.r[i].base == base && (P.r[i].start < start || P.r[i].end > end))
			return false;
	return true;
}

static int cur_pkey; /* for kernel_parts, under the lock */

static int k_pkey_parts(void *addr, size_t len, int prot)
{
	return cur_pkey >= 0 ? k_pkey_mprotect(addr, len, prot, cur_pkey)
			     : k_mprotect(addr, len, prot);
}

/* mprotect or pkey_mprotect (@pkey >= 0) over a range that touches ours. */
static int do_protect(void *addr, size_t len, int prot, int pkey)
{
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end))
		return -1;
	struct held h;
	int rc = -1;
	lock(&h);
	if (!covered(start, end)) {
		errno = ENOMEM; /* as mprotect(2) says of unmapped pages */
		goto out;
	}
	if (prot & ~PROTS) {
		errno = EINVAL;
		goto out;
	}
	if (!split_at(start) || !split_at(end)) {
		errno = ENOMEM;
		goto out;
	}
	for (size_t i = region_find(start); i < P.nr && P.r[i].start < end; i++) {
		struct region *g = &P.r[i];
		if (g->kind == KIND_RESV) { /* recorded here, applied by reconcile() */
			g->prot = (unsigned char)prot;
			g->keyed |= pkey >= 0;
			continue;
		}
		if (region_protect(g, whole_alloc(g->base, start, end), prot))
			goto out;
		if (pkey >= 0) {
			if (k_pkey_mprotect((void *)g->start, g->end - g->start, prot, pkey))
				goto out;
			for (size_t j = 0; j < P.nr; j++)
				if (P.r[j].base == g->base)
					P.r[j].keyed = 1;
		}
		g->prot = (unsigned char)prot;
	}
	if (reconcile_range(start, end))
		goto out;
	for (size_t i = region_find(start); pkey >= 0 && i < P.nr && P.r[i].start < end; i++)
		if (P.r[i].kind == KIND_RESV && /* keyed blocks are exact: the key goes on */
		    k_pkey_mprotect((void *)P.r[i].start, P.r[i].end - P.r[i].start, prot, pkey))
			goto out;
	cur_pkey = pkey;
	rc = kernel_parts(start, end, k_pkey_parts, prot);
out:
	unlock(&h);
	return rc;
}

static int note_rc(int rc, int type, void *addr, size_t len, int prot)
{
	if (rc == 0)
		note(type, addr, len, prot, 0);
	return rc;
}

HOOK int mprotect(void *addr, size_t len, int prot)
{
	if (in_hook || !ready() || !len || !hp_owns(addr, len))
		return note_rc(k_mprotect(addr, len, prot), HP_EV_PROTECT, addr, len, prot);
	return note_rc(do_protect(addr, len, prot, -1), HP_EV_PROTECT, addr, len, prot);
}

HOOK int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	if (in_hook || !ready() || !len || !hp_owns(addr, len))
		return note_rc(k_pkey_mprotect(addr, len, prot, pkey), HP_EV_PROTECT, addr, len,
			       prot);
	return note_rc(do_protect(addr, len, prot, pkey), HP_EV_PROTECT, addr, len, prot);
}

static int k_madvise3(void *addr, size_t len, int advice)
{
	return k_madvise(addr, len, advice);
}

static int do_madvise(void *addr, size_t len, int advice)
{
	if (in_hook || !ready() || !len || !hp_owns(addr, len))
		return k_madvise(addr, len, advice);
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end))
		return -1;
	struct held h;
	int rc = 0;
	lock(&h);
	switch (advice) {
	case MADV_DONTNEED:
		if (!covered(start, end)) {
			errno = ENOMEM;
			rc = -1;
			break;
		}
		for (size_t i = region_find(start); i < P.nr && P.r[i].start < end; i++) {
			uintptr_t s = P.r[i].start > start ? P.r[i].start : start;
			uintptr_t e = P.r[i].end < end ? P.r[i].end : end;
			zero(&P.r[i], s, e - s);
		}
		P.n.dontneed++;
		break;
	case MADV_FREE:	  /* the pages may keep their contents: allowed */
	case MADV_NORMAL: /* access hints: nothing to do for resident memory */
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_DONTFORK: /* a child gets a copy: harmless */
	case MADV_DOFORK:
	case MADV_HUGEPAGE: /* hugeperm decides */
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_MERGEABLE:
	case MADV_UNMERGEABLE:
	case 20: /* MADV_COLD */
	case 21: /* MADV_PAGEOUT */
	case 22: /* MADV_POPULATE_READ: our pages are populated */
	case 23: /* MADV_POPULATE_WRITE */
	case 25: /* MADV_COLLAPSE */
		if (!covered(start, end)) {
			errno = ENOMEM;
			rc = -1;
		}
		break;
	default: /* WIPEONFORK, REMOVE, guards...: not for served memory */
		errno = EINVAL;
		rc = -1;
	}
	if (rc == 0)
		rc = kernel_parts(start, end, k_madvise3, advice);
	unlock(&h);
	return rc;
}

HOOK int madvise(void *addr, size_t len, int advice)
{
	int rc = do_madvise(addr, len, advice);
	if (rc == 0 && (advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE))
		note(HP_EV_DISCARD, addr, len, 0, 0);
	return rc;
}

/* mremap of a served range: shrink in place, grow in place, or move. */
static void *remap_ours(uintptr_t old, size_t oldlen, size_t newlen, int flags)
{
	/* [old, old+oldlen) must be mapped, in one allocation. */
	size_t i = region_find(old), last = i;
	uintptr_t at = old;
	while (last < P.nr && P.r[last].start == at && P.r[last].base == P.r[i].base &&
	       at < old + oldlen)
		at = P.r[last++].end;
	if (at < old + oldlen) {
		errno = EFAULT;
		return MAP_FAILED;
	}
	i = last - 1; /* the record that ends the range */
	struct region g = P.r[i];
	if (newlen <= oldlen) {
		cut(old + newlen, old + oldlen, CUT_FREE);
		P.n.remaps++;
		return (void *)old;
	}
	uintptr_t grow_end = old + newlen;
	bool room = old + oldlen == g.end && grow_end <= g.base + g.alloc_size &&
		    (i + 1 == P.nr || P.r[i + 1].start >= grow_end);
	for (size_t j = 0; room && j < P.nr; j++) /* pages cut earlier are not free */
		room = P.r[j].base != g.base || P.r[j].end <= g.end || P.r[j].start >= grow_end;
	if (room && !g.tainted) {
		struct region more = g;
		more.start = g.end;
		more.end = grow_end;
		if (fresh(&more, g.prot))
			return MAP_FAILED;
		P.r[i].end = grow_end;
		if (g.kind == KIND_RESV && reconcile(&P.r[i], more.start, grow_end))
			return MAP_FAILED;
		P.n.remaps++;
		return (void *)old;
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (!(g.prot & PROT_READ)) {
		errno = ENOMEM; /* cannot copy pages we may not read */
		return MAP_FAILED;
	}
	uintptr_t to = serve((enum kind)g.kind, P.near[g.arena], newlen, g.prot, false);
	if (!to)
		return MAP_FAILED;
	size_t j = region_find(to);
	hp_arena_write(P.arenas[P.r[j].arena], (void *)to, (void *)old, oldlen);
	cut(old, old + oldlen, CUT_FREE);
	P.n.remaps++;
	return (void *)to;
}

static void *do_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *to)
{
	if (in_hook || !ready() || !hp_owns(old, oldlen ? oldlen : 1))
		return k_mremap(old, oldlen, newlen, flags, to);
	if ((uintptr_t)old % PAGE || !oldlen || !newlen ||
	    (flags & ~MREMAP_MAYMOVE)) { /* FIXED, DONTUNMAP: not for served memory */
		errno = EINVAL;
		return MAP_FAILED;
	}
	struct held h;
	lock(&h);
	void *p = remap_ours((uintptr_t)old, page_up(oldlen), page_up(newlen), flags);
	unlock(&h);
	return p;
}

HOOK void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	void *to = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		to = va_arg(ap, void *);
		va_end(ap);
	}
	void *p = do_mremap(old, oldlen, newlen, flags, to);
	if (p != MAP_FAILED && rec.on && !in_hook)
		hp_trace_record_remap(&rec, (uintptr_t)old, oldlen, (uintptr_t)p, newlen);
	return p;
}

/* ------------------------------------------------------------------ */
/* Counters and the report at exit. */

void hp_preload_counts(struct hp_preload_counts *out)
{
	*out = P.n;
	out->passed = __atomic_load_n(&P.n.passed, __ATOMIC_RELAXED);
	out->live_regions = P.nr;
	out->flip_mode = P.flip;
}

int hp_preload_stats(struct hp_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->size = sizeof(*sum);
	for (int i = 0; i < P.narenas; i++) {
		struct hp_stats st = {.size = sizeof(st)};
		if (hp_arena_stats_get(P.arenas[i], &st))
			return -1;
		hp_stats_add(sum, &st);
	}
	return 0;
}

/* Options take effect before main (HUGEPERM_PRELOAD_INHERIT=0 must edit the
 * environment before the program reads it); a library constructor that
 * maps memory before this runs gets the same set-up from its first hook. */
__attribute__((constructor)) static void setup(void)
{
	ready();
}

__attribute__((destructor)) static void report(void)
{
	if (P.state != 2)
		return;
	in_hook++;
	hp_preload_report();
	hp_trace_close(&rec);
	in_hook--;
}
