/* SPDX-License-Identifier: MIT */
/*
 * shared_pack.c - small shared code files packed into windows: sljit's
 * SLJIT_PROT_EXECUTABLE_ALLOCATOR maps each 64 KiB chunk as a file of its
 * own (a memfd, or an O_TMPFILE), twice, MAP_SHARED: RW to write, RX to
 * run; then closes the fd.  One PMD maps 2 MiB of one file, so such a
 * chunk can never be huge-mapped where it is (shared.c makes views of
 * 2 MiB or more huge; these are too small).  So:
 *
 *   - placement: the RX view (PROT_READ|PROT_EXEC, offset 0, the whole
 *     file, no address asked) goes into a slot of a window: 2 MiB of the
 *     preload's own memfd, mapped RX MAP_SHARED, 2 MiB-aligned.  The
 *     program's file is mapped over the slot (MAP_FIXED): the chunk is
 *     still all the program's (state PEND);
 *   - adoption: when the program closes the fd and nothing but the two
 *     views is left of the file (no other fd to it in the process, no
 *     other mapping of it in /proc/self/maps, no fork since, O_RDWR,
 *     FD_CLOEXEC, no write seals, its size the view's), no one can reach
 *     the file any more but through the views.  Its bytes are copied into
 *     the preload's file at the slot's offset and both views are mapped
 *     over with it (MAP_FIXED, same addresses, same protections): the
 *     program's pointers stay valid, both views see each other's writes
 *     (one file, one offset), a forked child shares them (MAP_SHARED).
 *     The slot is then a run of the window's own file at its own offset:
 *     the window is one VMA again, and the collapser (shared.c's thread)
 *     collapses it with MADV_COLLAPSE: one PMD for 32 chunks (LIVE);
 *   - munmap of the RX view by the program: the slot's pages are mapped
 *     from the window's file again (the PMD is not split for good, no hole
 *     the kernel could hand to someone else); the slot is returned once
 *     the RW view is gone too (DEAD until then: its offset is still
 *     written through it), its bytes zeroed;
 *   - anything else done to a view or a window (mremap of a view, a
 *     MAP_FIXED of the program's over a window, part of a view unmapped
 *     or mapped over): the kernel's call as asked, and the pages it meets
 *     are never used again (lost).  A fork marks every chunk of the time
 *     as shared with the child: their offsets are never used again either,
 *     and the child packs into a file of its own.
 *
 * What stays the kernel's, and why: a chunk whose fd is kept, dup'ed,
 * inherited by a child or passed over exec (the file is still reachable
 * as a file: its size, its writes, its other mappings must stay its own);
 * views of other sizes, offsets or protections; memory that does not fit
 * (tables or windows full, a system call refused: the view is mapped as
 * asked).  Relaxed: the program's munmap of its RX view leaves the pages
 * mapped (ours), so a stray access there reads the window instead of
 * faulting; mprotect and madvise of window pages the program does not
 * hold reach our mapping.  A write by another thread into a chunk while
 * its fd is being closed (sljit closes it before handing the chunk out)
 * would be lost; madvise flags, mlock and protection keys put on a view
 * before the close are not carried over by the adoption.
 *
 * Its own lock (the hooks never hold it together with the preload's);
 * the collapser takes it only to copy the windows' state.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#include "preload.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif
#define TMPFS_MAGIC_ 0x01021994

#define WIN_PAGES   (BLOCK / PAGE)
#define WIN_WORDS   (WIN_PAGES / 64)
#define MAX_WINDOWS 128	 /* 256 MiB of packed chunks */
#define MAX_SLOTS   4096 /* chunks packed at once */
#define MAX_PEND    32	 /* chunks whose fd is still open */

enum slot_state {
	S_NONE, /* the entry is free */
	S_PEND, /* the program's file is mapped in the slot; its fd is open */
	S_LIVE, /* adopted: both views map the window's file */
	S_DEAD, /* adopted, the RX view unmapped, the RW view still mapped */
};

struct slot {
	uintptr_t rx;	     /* the RX view: the slot, in its window */
	uintptr_t rw;	     /* the RW view once adopted (0: unmapped) */
	size_t len;	     /* bytes of each view */
	dev_t dev;	     /* PEND: the program's file */
	ino_t ino;	     /* ... */
	int fd;		     /* PEND: the fd it was mapped through (-1: closed) */
	int win;	     /* index of its window */
	unsigned char state; /* enum slot_state */
	bool forked;	     /* a child has its pages: never reused */
};

struct window {
	uintptr_t start;	  /* 2 MiB-aligned */
	off_t off;		  /* its offset in its file */
	int fd;			  /* its file (the preload's memfd of the time) */
	uint64_t used[WIN_WORDS]; /* pages of a slot, or lost */
	uint64_t lost[WIN_WORDS]; /* pages never to be used again */
	uint64_t prog[WIN_WORDS]; /* pages the program holds mapped (its RX views) */
	short slot_of[WIN_PAGES]; /* the slot each used page belongs to, -1 none */
	unsigned gen;		  /* changes made to it (a collapse that raced one is retried) */
	unsigned seen;		  /* gen at the collapser's last pass */
	unsigned waited;	  /* passes it was wanted but still changing */
	bool want;		  /* to collapse: changed since the last collapse */
	bool broken;		  /* a hole or a foreign mapping in it: no collapse */
};

static struct {
	struct window w[MAX_WINDOWS];
	struct slot s[MAX_SLOTS];
	short pend[MAX_PEND]; /* slots in state PEND */
	int npend;	      /* read without the lock by close() */
	int nwin;
	int top;	  /* slots in use are below it */
	uintptr_t lo, hi; /* the windows' bounds (read without the lock) */
	int nrw;	  /* adopted slots whose RW view is mapped (read without it) */
	int fd;		  /* the file new windows are made in (-1: none yet) */
	off_t size;	  /* its size */
	bool atfork;
	pid_t pid; /* the process the pending fds are tracked for */
	pthread_mutex_t lock;
} pk = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void pk_lock(void)
{
	hook_lock(&pk.lock);
}

static void pk_unlock(void)
{
	hook_unlock(&pk.lock);
}

static bool test(const uint64_t *w, size_t i)
{
	return w[i / 64] >> (i % 64) & 1;
}

static void put(uint64_t *w, size_t i, bool on)
{
	if (on)
		w[i / 64] |= 1ULL << (i % 64);
	else
		w[i / 64] &= ~(1ULL << (i % 64));
}

static int window_of(uintptr_t a)
{
	for (int i = 0; i < pk.nwin; i++)
		if (a >= pk.w[i].start && a < pk.w[i].start + BLOCK)
			return i;
	return -1;
}

static size_t page_of(const struct window *w, uintptr_t a)
{
	return (a - w->start) / PAGE;
}

/* Map the window's own file at [a, a+len) of @w again, RX. */
static bool refill(struct window *w, uintptr_t a, size_t len, int extra)
{
	void *p = k_mmap((void *)a, len, PROT_READ | PROT_EXEC, MAP_SHARED | extra, w->fd,
			 w->off + (off_t)(a - w->start));
	if (p == (void *)a)
		return true;
	if (p != MAP_FAILED) /* MAP_FIXED_NOREPLACE on an old kernel: a hint */
		k_munmap(p, len);
	return false;
}

static void pend_drop(int si)
{
	for (int i = 0; i < pk.npend; i++)
		if (pk.pend[i] == si) {
			pk.pend[i] = pk.pend[--pk.npend];
			break;
		}
}

/* The slot's pages are never used again; its entry is free. */
static void slot_lose(int si)
{
	struct slot *s = &pk.s[si];
	struct window *w = &pk.w[s->win];
	for (size_t i = page_of(w, s->rx), n = s->len / PAGE; n--; i++)
		put(w->lost, i, true);
	if (s->state == S_PEND)
		pend_drop(si);
	if (s->rw)
		pk.nrw--;
	s->state = S_NONE;
	preload_counts.shared_packed_lost++;
}

/* The slot's pages go back to its window.  A window left with nothing in
 * it gives its memory back (its huge page, zeroed): it stays mapped, and
 * takes a page again when the next chunk is put in it. */
static void slot_free(int si)
{
	struct slot *s = &pk.s[si];
	struct window *w = &pk.w[s->win];
	if (s->state == S_PEND)
		pend_drop(si);
	for (size_t i = page_of(w, s->rx), n = s->len / PAGE; n--; i++) {
		put(w->used, i, false);
		w->slot_of[i] = -1;
	}
	s->state = S_NONE;
	w->want = true;
	w->gen++;
	preload_counts.shared_packed_freed++;
	uint64_t any = 0;
	for (size_t i = 0; i < WIN_WORDS; i++)
		any |= w->used[i] | w->lost[i];
	if (!any && k_fallocate(w->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, w->off,
				(off_t)BLOCK) == 0)
		w->want = false; /* nothing to collapse until something is put in it */
}

/* Has the program let go of the slot's RX view (no page of it held)? */
static bool rx_gone(const struct slot *s)
{
	const struct window *w = &pk.w[s->win];
	for (size_t i = page_of(w, s->rx), n = s->len / PAGE; n--; i++)
		if (test(w->prog, i))
			return false;
	return true;
}

/* After a view of @si went: free the slot once neither is left. */
static void slot_settle(int si)
{
	static const char zeros[64 << 10];
	struct slot *s = &pk.s[si];
	if (s->state == S_NONE || !rx_gone(s))
		return;
	if (s->forked) { /* a child may hold the offset: never again */
		slot_lose(si);
		return;
	}
	if (s->state == S_PEND) { /* the window's file was never written there */
		slot_free(si);
		return;
	}
	if (s->rw) {
		s->state = S_DEAD;
		return;
	}
	struct window *w = &pk.w[s->win];
	off_t off = w->off + (off_t)(s->rx - w->start);
	for (size_t done = 0; done < s->len;) { /* the chunk's bytes do not outlive it */
		size_t n = s->len - done < sizeof(zeros) ? s->len - done : sizeof(zeros);
		if (k_pwrite(w->fd, zeros, n, off + (off_t)done) != (long)n) {
			slot_lose(si);
			return;
		}
		done += n;
	}
	slot_free(si);
}

static void fork_prepare(void)
{
	pk_lock();
}

static void mark_forked(void)
{
	for (int i = 0; i < pk.top; i++)
		if (pk.s[i].state != S_NONE)
			pk.s[i].forked = true;
}

static void fork_parent(void)
{
	mark_forked();
	pk_unlock();
}

/* The child shares the windows' file with its parent: it packs nothing
 * more into them (their free pages are the parent's), and makes its own
 * file for new windows. */
static void fork_child(void)
{
	mark_forked();
	for (int i = 0; i < pk.nwin; i++)
		for (size_t j = 0; j < WIN_WORDS; j++)
			pk.w[i].lost[j] |= ~pk.w[i].used[j];
	pk.fd = -1;
	pk.size = 0;
	pk.pid = (pid_t)k_getpid();
	pk_unlock();
}

/* The huge page of the window at @off of the preload's file, made now,
 * while it holds one zero byte: a collapse clears 2 MiB instead of copying
 * the pages chunks will have written, and every later write lands in the
 * huge page (each re-collapse only maps it again).  Made through a mapping
 * of its own, unmapped whole at once: made in the window, the PMD was
 * split by the chunk that is mapped over the window next, one split a
 * window (erlang-modules: BEAM's one small view, 1 split a run).  A window
 * the kernel will not collapse is used all the same, on 4 KiB pages until
 * the collapser gets it. */
static void window_fill_huge(off_t off)
{
	if (k_pwrite(pk.fd, "", 1, off) != 1)
		return;
	void *t = shared_map_skewed(BLOCK, PROT_READ, MAP_SHARED, pk.fd, off, 0);
	if (t == MAP_FAILED)
		return;
	if (k_collapse(t) == 0)
		preload_counts.shared_packed_collapsed++;
	k_munmap(t, BLOCK);
}

/* A new window, in the preload's file; -1 if the kernel refuses. */
static int window_new(void)
{
	if (pk.nwin >= MAX_WINDOWS)
		return -1;
	if (pk.fd < 0) {
		pk.fd = k_memfd_create("hugeperm-code", MFD_CLOEXEC);
		if (pk.fd < 0)
			goto failed;
		pk.size = 0;
	}
	if (k_ftruncate(pk.fd, pk.size + (off_t)BLOCK))
		goto failed;
	void *p = shared_map_skewed(BLOCK, PROT_READ | PROT_EXEC, MAP_SHARED, pk.fd, pk.size, 0);
	if (p == MAP_FAILED) {
		k_ftruncate(pk.fd, pk.size);
		goto failed;
	}
	struct window *w = &pk.w[pk.nwin];
	memset(w, 0, sizeof(*w));
	memset(w->slot_of, 0xff, sizeof(w->slot_of));
	w->start = (uintptr_t)p;
	w->off = pk.size;
	w->fd = pk.fd;
	pk.size += (off_t)BLOCK;
	window_fill_huge(w->off);
	if (!pk.lo || w->start < pk.lo)
		__atomic_store_n(&pk.lo, w->start, __ATOMIC_RELAXED);
	if (w->start + BLOCK > pk.hi)
		__atomic_store_n(&pk.hi, w->start + BLOCK, __ATOMIC_RELAXED);
	preload_hold(HOLDS_PACK);
	__atomic_store_n(&pk.nwin, pk.nwin + 1, __ATOMIC_RELEASE);
	preload_counts.shared_packed_windows++;
	return pk.nwin - 1;
failed:
	preload_counts.shared_packed_failed++;
	return -1;
}

/* A run of @npages free pages in a window of this file: its address. */
static uintptr_t find_room(size_t npages, int *wi)
{
	for (int i = 0; i < pk.nwin; i++) {
		struct window *w = &pk.w[i];
		if (w->fd != pk.fd || pk.fd < 0)
			continue;
		for (size_t p = 0, run = 0; p < WIN_PAGES; p++) {
			run = test(w->used, p) || test(w->lost, p) ? 0 : run + 1;
			if (run == npages) {
				*wi = i;
				return w->start + (p + 1 - npages) * PAGE;
			}
		}
	}
	int i = window_new();
	if (i < 0)
		return 0;
	*wi = i;
	return pk.w[i].start;
}

void *shared_pack_mmap(size_t len, int prot, int flags, int fd)
{
	struct statfs sf;
	struct stat st;
	if (!len || len % PAGE || len >= BLOCK || k_fstatfs(fd, &sf) || sf.f_type != TMPFS_MAGIC_ ||
	    k_fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size != (off_t)len)
		return MAP_FAILED;
	shared_views_ready(); /* its fork handlers before these */
	pk_lock();
	if (!pk.atfork && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0) {
		pk.atfork = true;
		pk.pid = (pid_t)k_getpid();
	}
	int si = -1, wi = -1;
	for (int i = 0; i < MAX_SLOTS && si < 0; i++)
		if (pk.s[i].state == S_NONE)
			si = i;
	uintptr_t a = si >= 0 && pk.atfork && pk.npend < MAX_PEND ? find_room(len / PAGE, &wi) : 0;
	void *p = MAP_FAILED;
	if (a) {
		struct window *w = &pk.w[wi];
		p = k_mmap((void *)a, len, prot, flags | MAP_FIXED, fd, 0);
		if (p == MAP_FAILED) { /* the window's pages there may be gone */
			int err = errno;
			if (!refill(w, a, len, MAP_FIXED)) {
				k_munmap((void *)a, len);
				for (size_t i = page_of(w, a), n = len / PAGE; n--; i++)
					put(w->lost, i, true);
				w->broken = true;
			}
			preload_counts.shared_packed_failed++;
			errno = err;
		} else {
			struct slot *s = &pk.s[si];
			*s = (struct slot){.rx = a,
					   .len = len,
					   .dev = st.st_dev,
					   .ino = st.st_ino,
					   .fd = fd,
					   .win = wi,
					   .state = S_PEND};
			for (size_t i = page_of(w, a), n = len / PAGE; n--; i++) {
				put(w->used, i, true);
				put(w->prog, i, true);
				w->slot_of[i] = (short)si;
			}
			if (si >= pk.top)
				pk.top = si + 1;
			w->gen++;
			pk.pend[pk.npend] = (short)si;
			__atomic_store_n(&pk.npend, pk.npend + 1, __ATOMIC_RELEASE);
			preload_counts.shared_packed++;
		}
	}
	pk_unlock();
	return p;
}

bool shared_pack_in_window(uintptr_t start, uintptr_t end)
{
	for (int i = 0; i < pk.nwin; i++)
		if (start < pk.w[i].start + BLOCK && pk.w[i].start < end)
			return true;
	return false;
}

bool shared_pack_meets(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	return __atomic_load_n(&pk.nwin, __ATOMIC_ACQUIRE) &&
	       a < __atomic_load_n(&pk.hi, __ATOMIC_RELAXED) &&
	       a + len > __atomic_load_n(&pk.lo, __ATOMIC_RELAXED);
}

/* ---- adoption, at close() --------------------------------------------- */

/* Copy what the program's file @fd holds into the slot's pages of the
 * window's file @to (at @off): its data, found with SEEK_DATA (sljit has
 * written a header or two, its code comes later); the holes read zero
 * there already (a window's free pages are zero).  Read through the slot,
 * which maps the program's file.  false on failure. */
static bool copy_data(int fd, const struct slot *s, int to, off_t off)
{
	for (off_t at = 0; at < (off_t)s->len;) {
		off_t data = k_lseek(fd, at, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO; /* no more data */
		off_t hole = k_lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > (off_t)s->len)
			hole = (off_t)s->len;
		size_t n = (size_t)(hole - data);
		if (k_pwrite(to, (void *)(s->rx + (uintptr_t)data), n, off + data) != (long)n)
			return false;
		at = hole;
	}
	return true;
}

/* Move the PEND slot @si (its fd @fd about to be closed) onto its window's
 * file, if nothing but its two views is left of the program's file.  Under
 * the lock; true if adopted.  Any failure leaves both views as they were. */
static bool adopt(int si, int fd)
{
	struct slot *s = &pk.s[si];
	struct window *w = &pk.w[s->win];
	uintptr_t rw = 0;
	int rw_prot = 0;
	if (s->forked || !shared_adopt_check(fd, s->dev, s->ino, s->rx, s->len, &rw, &rw_prot))
		return false;
	off_t off = w->off + (off_t)(s->rx - w->start);
	if (!copy_data(fd, s, w->fd, off))
		goto failed;
	if (k_mmap((void *)rw, s->len, rw_prot, MAP_SHARED | MAP_FIXED, w->fd, off) == MAP_FAILED)
		goto failed;
	if (k_mmap((void *)s->rx, s->len, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED, w->fd,
		   off) == MAP_FAILED) {
		/* Back to the program's file, as it was: the views must agree. */
		k_mmap((void *)rw, s->len, rw_prot, MAP_SHARED | MAP_FIXED, fd, 0);
		goto failed;
	}
	shared_views_forget(s->dev, s->ino); /* the program's file is mapped no more */
	pend_drop(si);
	s->state = S_LIVE;
	s->rw = rw;
	s->fd = -1;
	pk.nrw++;
	w->want = true;
	w->gen++;
	preload_counts.shared_packed_adopted++;
	return true;
failed:
	preload_counts.shared_packed_failed++;
	return false;
}

HOOK int close(int fd)
{
	static int (*next)(int);
	if (!next)
		next = (int (*)(int))dlsym(RTLD_NEXT, "close");
	/* A vfork or posix_spawn child (CLONE_VM: getpid() differs, the
	 * memory is the parent's) closing its copy of the fd is no sign that
	 * the parent is done with it: nothing is touched. */
	if (__atomic_load_n(&pk.npend, __ATOMIC_ACQUIRE) && !in_hook &&
	    (pid_t)k_getpid() == __atomic_load_n(&pk.pid, __ATOMIC_RELAXED)) {
		bool adopted = false;
		pk_lock();
		for (int i = 0; i < pk.npend; i++) {
			int si = pk.pend[i];
			if (pk.s[si].fd != fd)
				continue;
			int err = errno;
			adopted = adopt(si, fd);
			errno = err;
			if (!adopted) { /* closed: it can never be adopted now */
				pk.s[si].fd = -1;
				pend_drop(si);
				preload_counts.shared_packed_kept++;
			}
			break;
		}
		pk_unlock();
		if (adopted)
			shared_start_collapser();
	}
	return next ? next(fd) : k_close(fd);
}

/* ---- the program's calls on windows and views --------------------------- */

/* The program let go of the pages [a, b) of window @w (munmap): what it
 * held there is the window's again; what was lost is unmapped.  Under the
 * lock.  0, or -1 with errno. */
static int unmap_in(struct window *w, uintptr_t a, uintptr_t b)
{
	int rc = 0;
	while (a < b) {
		size_t i = page_of(w, a);
		bool lost = test(w->lost, i), held = test(w->prog, i);
		short si = w->slot_of[i];
		uintptr_t e = a + PAGE;
		while (e < b && test(w->lost, page_of(w, e)) == lost &&
		       test(w->prog, page_of(w, e)) == held && w->slot_of[page_of(w, e)] == si)
			e += PAGE;
		if (lost && !held) {
			if (k_munmap((void *)a, e - a))
				rc = -1;
			w->broken = true;
		} else if (held) {
			if (!refill(w, a, e - a, MAP_FIXED)) {
				if (k_munmap((void *)a, e - a))
					rc = -1;
				for (uintptr_t p = a; p < e; p += PAGE)
					put(w->lost, page_of(w, p), true);
				w->broken = true;
			}
			for (uintptr_t p = a; p < e; p += PAGE)
				put(w->prog, page_of(w, p), false);
			w->want = true;
			w->gen++;
			if (si >= 0)
				slot_settle(si);
		}
		a = e;
	}
	return rc;
}

int shared_pack_munmap(void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr, end = start + page_up(len);
	if (start % PAGE || end <= start) {
		errno = EINVAL;
		return -1;
	}
	int rc = 0;
	pk_lock();
	uintptr_t outside[2 * MAX_WINDOWS + 2];
	int nout = 0;
	for (uintptr_t a = start; a < end;) {
		int wi = window_of(a);
		if (wi >= 0) {
			uintptr_t e = pk.w[wi].start + BLOCK < end ? pk.w[wi].start + BLOCK : end;
			rc |= unmap_in(&pk.w[wi], a, e);
			a = e;
			continue;
		}
		uintptr_t e = end; /* up to the next window */
		for (int i = 0; i < pk.nwin; i++)
			if (pk.w[i].start > a && pk.w[i].start < e)
				e = pk.w[i].start;
		if (k_munmap((void *)a, e - a))
			rc = -1;
		else if (nout < 2 * MAX_WINDOWS + 2) {
			outside[nout++] = a;
			outside[nout++] = e;
		}
		a = e;
	}
	pk_unlock();
	shared_views_gone(start, end);
	for (int i = 0; i < nout; i += 2) /* RW views, shared.c's views */
		shared_unmapped((void *)outside[i], outside[i + 1] - outside[i]);
	return rc ? -1 : 0;
}

void shared_pack_changed(const void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr, end = start + page_up(len);
	if (in_hook ||
	    (!__atomic_load_n(&pk.nrw, __ATOMIC_ACQUIRE) && !shared_pack_meets(addr, end - start)))
		return;
	pk_lock();
	for (int si = 0; si < pk.top; si++) {
		struct slot *s = &pk.s[si];
		if (s->state == S_NONE || !s->rw || s->rw >= end || start >= s->rw + s->len)
			continue;
		if (start <= s->rw && s->rw + s->len <= end) { /* the RW view is gone */
			s->rw = 0;
			pk.nrw--;
			slot_settle(si);
		} else { /* part of it: the rest still maps the slot's offset */
			slot_lose(si);
		}
	}
	/* The kernel put something of the program's in a window. */
	for (int wi = 0; wi < pk.nwin; wi++) {
		struct window *w = &pk.w[wi];
		uintptr_t a = start > w->start ? start : w->start;
		uintptr_t b = end < w->start + BLOCK ? end : w->start + BLOCK;
		for (; a < b; a += PAGE) {
			size_t i = page_of(w, a);
			short si = w->slot_of[i];
			if (si >= 0 && pk.s[si].state != S_NONE)
				slot_lose(si);
			put(w->lost, i, true);
			put(w->used, i, true);
			put(w->prog, i, false);
			w->broken = true;
		}
	}
	pk_unlock();
}

void shared_pack_moving(const void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr, end = start + page_up(len);
	if (in_hook)
		return;
	shared_views_moved(start, end);
	if (!__atomic_load_n(&pk.nrw, __ATOMIC_ACQUIRE) && !shared_pack_meets(addr, end - start))
		return;
	pk_lock();
	for (int si = 0; si < pk.top; si++) {
		struct slot *s = &pk.s[si];
		if (s->state != S_NONE && s->rw && s->rw < end && start < s->rw + s->len)
			slot_lose(si); /* the view lives on elsewhere, on the slot's offset */
	}
	for (int wi = 0; wi < pk.nwin; wi++) { /* an RX view moved out: fill the hole */
		struct window *w = &pk.w[wi];
		uintptr_t a = start > w->start ? start : w->start;
		uintptr_t b = end < w->start + BLOCK ? end : w->start + BLOCK;
		for (; a < b; a += PAGE) {
			size_t i = page_of(w, a);
			if (w->slot_of[i] >= 0 && pk.s[w->slot_of[i]].state != S_NONE)
				slot_lose(w->slot_of[i]);
			put(w->lost, i, true);
			put(w->used, i, true);
			put(w->prog, i, false);
			if (!refill(w, a, PAGE, MAP_FIXED_NOREPLACE) && errno != EEXIST)
				w->broken = true;
		}
	}
	pk_unlock();
}

/* ---- the collapser's pass ---------------------------------------------- */

bool shared_pack_pass(void)
{
	static uintptr_t todo[MAX_WINDOWS]; /* the collapser's only */
	static int which[MAX_WINDOWS];
	static unsigned gen[MAX_WINDOWS];
	if (!__atomic_load_n(&pk.nwin, __ATOMIC_ACQUIRE))
		return false;
	int n = 0;
	bool later = false;
	pk_lock();
	for (int i = 0; i < pk.npend;) { /* fds closed where close() did not see */
		struct slot *p = &pk.s[pk.pend[i]];
		struct stat st;
		if (!k_fstat(p->fd, &st) && st.st_dev == p->dev && st.st_ino == p->ino) {
			i++;
			continue;
		}
		p->fd = -1;
		pend_drop(pk.pend[i]);
		preload_counts.shared_packed_kept++;
	}
	for (int wi = 0; wi < pk.nwin; wi++) {
		struct window *w = &pk.w[wi];
		bool pending = false, full = true;
		for (int i = 0; i < pk.npend; i++)
			pending |= pk.s[pk.pend[i]].win == wi;
		for (size_t i = 0; i < WIN_WORDS; i++)
			full &= (w->used[i] | w->lost[i]) == ~0ULL;
		/* A window being filled is collapsed once it is full, quiet for
		 * a pass, or after 5 passes: each chunk put in a collapsed
		 * window splits its PMD until the next collapse. */
		bool busy = w->gen != w->seen;
		w->seen = w->gen;
		if (!w->want || w->broken || pending)
			continue;
		if (busy && !full && ++w->waited < 5) {
			later = true;
			continue;
		}
		w->want = false;
		w->waited = 0;
		which[n] = wi;
		gen[n] = w->gen;
		todo[n++] = w->start;
	}
	pk_unlock();
	for (int i = 0; i < n; i++) {
		int rc = k_collapse((void *)todo[i]), err = errno;
		pk_lock();
		if (rc == 0)
			preload_counts.shared_packed_collapsed++;
		else if (err == EAGAIN || pk.w[which[i]].gen != gen[i])
			pk.w[which[i]].want = true; /* busy, or changed meanwhile: again */
		else
			preload_counts.shared_packed_failed++;
		pk_unlock();
	}
	return n > 0 || later;
}
