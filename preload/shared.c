/* SPDX-License-Identifier: MIT */
/*
 * shared.c - shared-memory code: a JIT whose code lives in MAP_SHARED
 * memory, which hugeperm's arenas cannot serve (the program chose shared
 * memory: its views must see each other's writes, keep ftruncate growth,
 * stay shared across fork).  So the memory stays the kernel's, and this
 * file only gets its pages huge:
 *
 *   - BEAM (Erlang/OTP 25), sljit's PROT allocator: a memfd (or an
 *     O_TMPFILE tmpfs file) mapped twice, an RX view that runs and an RW
 *     view that writes.  Both views of 2 MiB or more are placed 2 MiB-
 *     aligned (with their file offset), the RX view is known as code from
 *     the start;
 *   - PHP's opcache JIT: its buffer is part of a MAP_SHARED|MAP_ANONYMOUS
 *     mapping (already aligned, MAP_FIXED), made executable later with
 *     mprotect: the units made executable become code then.
 *
 * The file's pages become huge with MADV_COLLAPSE, which works whatever
 * shmem_enabled says.  A unit (2 MiB of the view, aligned in memory and in
 * the file) is collapsed once it holds a page: the kernel fills its holes
 * with zeroes in the new huge page, so code written later into that unit,
 * through either view, lands in the huge page too, and one collapse per
 * unit is all it takes.  A unit no one touched cannot be collapsed (the
 * kernel says EINVAL), so units are checked (mincore: page-cache
 * residency) until they hold something.  Collapsing costs 0.5-2 ms a unit
 * on this kind of machine and mincore about 50 us, so neither is done on
 * the program's hot path: a collapser thread, started with the first code
 * view, does it: a pass every 10 ms after one that collapsed something,
 * backing off to every 200 ms while passes find nothing.  A pass looks at
 * the views mapped executable and those made executable since the last
 * pass (PHP flips its whole buffer RW and RX around each trace it writes).
 * Every view of the file then maps the huge page with one PMD where it is
 * aligned (both views see the same page cache: writes are shared as ever).
 *
 * Its own lock: the collapser never takes the preload's (the hooks never
 * hold both); fork takes it, so that a child never inherits it held.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "os.h"
#include "preload.h"

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define TMPFS_MAGIC_ 0x01021994 /* tmpfs, and memfd's internal mount */

#define MAX_VIEWS   64
#define MAX_UNITS   256 /* 512 MiB of a view: units past it stay as they are */
#define UNIT_WORDS  (MAX_UNITS / 64)
#define PASS_MIN_MS 10
#define PASS_MAX_MS 200

/* One shared mapping of the program's (2 MiB or more of tmpfs, a memfd or
 * anonymous shared memory), as it was mapped. */
struct view {
	uintptr_t start, end;	     /* the program's range */
	uintptr_t first;	     /* its first unit: aligned in memory and in the file */
	unsigned nunits;	     /* whole units in it (0: not aligned with the file) */
	unsigned id;		     /* who it is, across a pass made without the lock */
	bool exec_at_map;	     /* mapped executable: no mprotect will say when */
	bool adopted;		     /* found in /proc/self/maps, not through the hooks */
	bool seen;		     /* adopted: still mapped shared at the last look */
	bool dirty;		     /* made executable since the last pass */
	uint64_t code[UNIT_WORDS];   /* units known to hold code */
	uint64_t done[UNIT_WORDS];   /* units collapsed */
	uint64_t failed[UNIT_WORDS]; /* units the kernel refused to collapse: left */
};

static struct {
	struct view v[MAX_VIEWS];
	int n;		 /* views in v[] (read without the lock: 0 means none) */
	unsigned ids;	 /* the last id given */
	bool collapser;	 /* the collapser runs (in this process) */
	bool watch_maps; /* a library bypasses the hooks: look in /proc/self/maps */
	bool atfork;	 /* the fork handlers are in */
	pthread_mutex_t lock;
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void shared_lock(void)
{
	in_hook++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&shared.lock);
}

static void shared_unlock(void)
{
	pthread_mutex_unlock(&shared.lock);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	in_hook--;
}

static void fork_prepare(void)
{
	shared_lock();
}

static void fork_parent(void)
{
	shared_unlock();
}

/* The child has no collapser: the next code view starts its own. */
static void fork_child(void)
{
	shared.collapser = false;
	shared_unlock();
}

static bool bit(const uint64_t *w, unsigned i)
{
	return w[i / 64] >> (i % 64) & 1;
}

static void set_bit(uint64_t *w, unsigned i)
{
	w[i / 64] |= 1ULL << (i % 64);
}

/* Is @fd a file of tmpfs (a memfd, an O_TMPFILE in /dev/shm)?  hugetlbfs is
 * huge already; other file systems' pages cannot be collapsed while
 * writable. */
static bool on_tmpfs(int fd)
{
	struct statfs sf;
	return fd >= 0 && k_fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC_;
}

/* Map as asked, at an address that is @skew past a 2 MiB boundary (the
 * file offset's): the kernel's choice inside a reservation of len + 2 MiB,
 * trimmed.  MAP_FAILED (nothing mapped) when there is no room for it. */
void *shared_map_skewed(size_t len, int prot, int flags, int fd, off_t off, uintptr_t skew)
{
	size_t size = page_up(len), span = size + BLOCK;
	void *r = k_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return r;
	uintptr_t lo = (uintptr_t)r;
	uintptr_t at = ((lo - skew + BLOCK - 1) & ~(BLOCK - 1)) + skew;
	if (at < lo)
		at += BLOCK;
	void *p = k_mmap((void *)at, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		k_munmap(r, span);
		return p;
	}
	if (at > lo)
		k_munmap(r, at - lo);
	if (lo + span > at + size)
		k_munmap((void *)(at + size), lo + span - at - size);
	return p;
}

/* Aligned when there is room, else the kernel's choice, as asked. */
static void *map_aligned(size_t len, int prot, int flags, int fd, off_t off, uintptr_t skew)
{
	void *p = shared_map_skewed(len, prot, flags, fd, off, skew);
	if (p == MAP_FAILED)
		return k_mmap(NULL, len, prot, flags, fd, off);
	preload_counts.shared_aligned++;
	return p;
}

/* Take out every view that [start, end) touches: unmapped, moved or mapped
 * over.  What is left of a view is not followed any more (its units stay
 * as they are).  Under the shared lock. */
static void drop_views(uintptr_t start, uintptr_t end)
{
	for (int i = 0; i < shared.n;)
		if (shared.v[i].start < end && start < shared.v[i].end)
			shared.v[i] = shared.v[--shared.n];
		else
			i++;
}

static void mark_code(struct view *v, uintptr_t start, uintptr_t end)
{
	for (unsigned u = 0; u < v->nunits; u++) {
		uintptr_t a = v->first + (uintptr_t)u * BLOCK;
		if (a >= start && a + BLOCK <= end)
			set_bit(v->code, u);
	}
	v->dirty = true;
}

/* A view of [start, end) at file offset @off, not followed yet: its units
 * set up (none if it is not aligned with the file).  NULL if the table is
 * full.  Under the shared lock. */
static struct view *new_view(uintptr_t start, uintptr_t end, uintptr_t off)
{
	if (shared.n >= MAX_VIEWS)
		return NULL;
	struct view *v = &shared.v[shared.n];
	memset(v, 0, sizeof(*v));
	v->start = start;
	v->end = end;
	v->id = ++shared.ids;
	if (start % BLOCK == off % BLOCK) {
		v->first = (start + BLOCK - 1) & ~(BLOCK - 1);
		v->nunits = v->first + BLOCK <= end ? (unsigned)((end - v->first) / BLOCK) : 0;
		if (v->nunits > MAX_UNITS)
			v->nunits = MAX_UNITS;
	}
	preload_hold(HOLDS_SHARED);
	__atomic_store_n(&shared.n, shared.n + 1, __ATOMIC_RELEASE);
	preload_counts.shared_views++;
	return v;
}

static void *collapser(void *unused);

/* Start the collapser, once per process; under the shared lock.  Its signals
 * are blocked, they are the program's threads' to take; not the synchronous
 * ones, which blocked would kill the process. */
static void start_collapser(void)
{
	if (shared.collapser)
		return;
	pthread_t t;
	pthread_attr_t attr;
	sigset_t all, old;
	hp_background_sigset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	if (pthread_create(&t, &attr, collapser, NULL) == 0)
		shared.collapser = true;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The collapser for the packed windows (shared_pack.c). */
void shared_start_collapser(void)
{
	shared_lock();
	if (!shared.atfork && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0)
		shared.atfork = true;
	start_collapser();
	shared_unlock();
}

bool shared_bypassed(void)
{
	return __atomic_load_n(&shared.watch_maps, __ATOMIC_RELAXED);
}

static void *shared_map(void *addr, size_t len, int prot, int flags, int fd, off_t off);

void *shared_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = shared_map(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && !(flags & MAP_ANONYMOUS))
		shared_views_note(fd, p, len, off); /* shared_adopt.c */
	return p;
}

static void *shared_map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	bool anon = flags & MAP_ANONYMOUS;
	bool placed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	if (!in_hook && len < BLOCK && !addr && prot == (PROT_READ | PROT_EXEC) && !anon &&
	    !(flags & ~MAP_TYPE) && off == 0) { /* sljit's chunk: a slot of a window */
		void *p = shared_pack_mmap(len, prot, flags, fd);
		if (p != MAP_FAILED)
			return p;
	}
	if (in_hook || len < BLOCK || (flags & MAP_HUGETLB) || prot & ~PROTS ||
	    (!anon && !on_tmpfs(fd))) {
		void *p = k_mmap(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED && placed)
			shared_unmapped(p, len);
		return p;
	}
	/* The kernel ignores the offset of anonymous shared memory (pgoff 0). */
	uintptr_t skew = anon ? 0 : (uintptr_t)off % BLOCK;
	void *p = addr || placed ? k_mmap(addr, len, prot, flags, fd, off)
				 : map_aligned(len, prot, flags, fd, off, skew);
	if (p == MAP_FAILED)
		return p;
	uintptr_t start = (uintptr_t)p, end = start + page_up(len);
	shared_lock();
	if (!shared.atfork && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0)
		shared.atfork = true;
	drop_views(start, end);
	struct view *v = new_view(start, end, skew);
	if (v && (prot & PROT_EXEC)) {
		v->exec_at_map = true;
		mark_code(v, start, end);
		preload_counts.shared_code_views++;
		start_collapser();
	}
	shared_unlock();
	return p;
}

void shared_unmapped(const void *addr, size_t len)
{
	shared_views_gone((uintptr_t)addr, (uintptr_t)addr + len);
	shared_pack_changed(addr, len);
	if (!__atomic_load_n(&shared.n, __ATOMIC_ACQUIRE) || in_hook)
		return;
	shared_lock();
	drop_views((uintptr_t)addr, (uintptr_t)addr + page_up(len));
	shared_unlock();
}

void shared_protected(const void *addr, size_t len, int prot)
{
	if (!(prot & PROT_EXEC) || !__atomic_load_n(&shared.n, __ATOMIC_ACQUIRE) || in_hook)
		return;
	uintptr_t start = (uintptr_t)addr, end = start + page_up(len);
	shared_lock();
	for (int i = 0; i < shared.n; i++) {
		struct view *v = &shared.v[i];
		if (v->start < end && start < v->end) {
			if (!v->exec_at_map && !v->code[0] && !v->code[1] && !v->code[2] &&
			    !v->code[3])
				preload_counts.shared_code_views++;
			mark_code(v, start, end);
			start_collapser();
		}
	}
	shared_unlock();
}

static uintptr_t hex(const char **s)
{
	uintptr_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		if (c >= '0' && c <= '9')
			v = v << 4 | (uintptr_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uintptr_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* Shared memory a JIT may keep code in, by the name the kernel gives it. */
static bool shmem_name(const char *path, size_t n)
{
	static const char *const names[] = {"/memfd:", "/dev/zero", "/dev/shm/", "/SYSV"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (n >= strlen(names[i]) && !strncmp(path, names[i], strlen(names[i])))
			return true;
	return false;
}

/* One line of /proc/self/maps: follow an executable shared VMA the hooks
 * never saw; note the adopted views still mapped.  Under the shared lock. */
static void adopt_line(const char *line, const char *eol)
{
	const char *s = line;
	uintptr_t start = hex(&s);
	if (*s++ != '-')
		return;
	uintptr_t end = hex(&s);
	if (eol - s < 6 || s[0] != ' ' || s[4] != 's') /* not shared */
		return;
	bool exec = s[3] == 'x';
	s += 6;
	uintptr_t off = hex(&s);
	for (int field = 0; field < 2 && s < eol; field++) { /* dev, inode */
		while (s < eol && *s == ' ')
			s++;
		while (s < eol && *s != ' ')
			s++;
	}
	while (s < eol && *s == ' ')
		s++;
	for (int i = 0; i < shared.n; i++) {
		struct view *v = &shared.v[i];
		if (v->start < end && start < v->end) {
			/* Still shared memory there: PHP's buffer, made RW, is
			 * one VMA with the rest of its mapping for a while. */
			v->seen = true;
			return;
		}
	}
	if (!exec || end - start < BLOCK || !shmem_name(s, (size_t)(eol - s)))
		return;
	struct view *v = new_view(start, end, off);
	if (!v)
		return;
	v->adopted = v->seen = v->exec_at_map = true;
	mark_code(v, start, end);
	preload_counts.shared_code_views++;
	preload_counts.shared_adopted++;
}

/* Look for executable shared memory in /proc/self/maps: the views of
 * libraries whose calls bypass the hooks.  Adopted views no longer mapped
 * shared are dropped.  The collapser's. */
static void adopt_from_maps(void)
{
	static char buf[256 << 10]; /* the collapser's only */
	size_t len = 0;
	int fd = k_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (long r; len < sizeof(buf) && (r = k_read(fd, buf + len, sizeof(buf) - len)) > 0;)
		len += (size_t)r;
	k_close(fd);
	shared_lock();
	for (int i = 0; i < shared.n; i++)
		shared.v[i].seen = false;
	for (const char *line = buf, *end = buf + len; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			break; /* a line cut short: the buffer is full */
		adopt_line(line, eol);
		line = eol + 1;
	}
	for (int i = 0; i < shared.n;)
		if (shared.v[i].adopted && !shared.v[i].seen)
			shared.v[i] = shared.v[--shared.n];
		else
			i++;
	shared_unlock();
}

/*
 * PHP loads its extensions with RTLD_DEEPBIND: their calls bind to libc
 * first, so opcache's mmap and mprotect of its JIT buffer never reach the
 * hooks.  A library loaded so sets the collapser to watch /proc/self/maps
 * for executable shared memory as well.  The library is loaded by libc's
 * dlopen as asked; what the interposition changes is the caller libc sees,
 * which matters only to a "$ORIGIN" in @file (resolved from the preload's
 * directory) and to dlmopen namespaces: neither is what a JIT's host does.
 */
HOOK void *dlopen(const char *file, int mode)
{
	static void *(*next)(const char *, int);
	if (!next)
		next = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	void *h = next ? next(file, mode) : NULL;
	if (h && (mode & RTLD_DEEPBIND) && !in_hook && ready()) {
		shared_lock();
		if (!shared.atfork && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0)
			shared.atfork = true;
		shared.watch_maps = true;
		start_collapser();
		shared_unlock();
	}
	return h;
}

/* Does the unit at @a hold a page (in the page cache: a write through any
 * view, or a read)?  false if it is not mapped any more. */
static bool unit_touched(uintptr_t a)
{
	static unsigned char vec[BLOCK / PAGE]; /* the collapser's only */
	if (k_mincore((void *)a, BLOCK, vec))
		return false;
	for (size_t i = 0; i < sizeof(vec); i++)
		if (vec[i] & 1)
			return true;
	return false;
}

/* One pass: collapse the code units that hold something.  The views are
 * copied under the lock and worked on without it (a view unmapped
 * meanwhile: mincore fails, or a collapse of someone else's memory, which
 * changes nothing the program can see).  true if it found work. */
static bool pass(void)
{
	static struct view todo[MAX_VIEWS]; /* the collapser's only */
	int n = 0;
	if (__atomic_load_n(&shared.watch_maps, __ATOMIC_RELAXED))
		adopt_from_maps();
	shared_lock();
	for (int i = 0; i < shared.n; i++) {
		struct view *v = &shared.v[i];
		bool pending = false;
		for (int w = 0; w < UNIT_WORDS; w++)
			pending |= (v->code[w] & ~v->done[w] & ~v->failed[w]) != 0;
		if (pending && (v->exec_at_map || v->dirty))
			todo[n++] = *v;
		v->dirty = false;
	}
	shared_unlock();

	bool found = shared_pack_pass();
	for (int i = 0; i < n; i++) {
		struct view *t = &todo[i];
		uint64_t done[UNIT_WORDS] = {0}, failed[UNIT_WORDS] = {0};
		for (unsigned u = 0; u < t->nunits; u++) {
			if (!bit(t->code, u) || bit(t->done, u) || bit(t->failed, u))
				continue;
			uintptr_t a = t->first + (uintptr_t)u * BLOCK;
			if (!unit_touched(a))
				continue;
			found = true;
			if (k_collapse((void *)a) == 0)
				set_bit(done, u);
			else if (errno != EAGAIN) /* EAGAIN: busy pages, try again */
				set_bit(failed, u);
		}
		shared_lock();
		for (int j = 0; j < shared.n; j++) {
			struct view *v = &shared.v[j];
			if (v->id != t->id)
				continue;
			for (int w = 0; w < UNIT_WORDS; w++) {
				v->done[w] |= done[w];
				v->failed[w] |= failed[w];
				preload_counts.shared_collapsed +=
					(uint64_t)__builtin_popcountll(done[w]);
				preload_counts.shared_collapse_failed +=
					(uint64_t)__builtin_popcountll(failed[w]);
			}
		}
		shared_unlock();
	}
	return found;
}

static void *collapser(void *unused)
{
	(void)unused;
	unsigned ms = PASS_MIN_MS;
	for (;;) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		if (pass())
			ms = PASS_MIN_MS;
		else if (ms < PASS_MAX_MS)
			ms *= 2;
	}
	return NULL;
}
