/* SPDX-License-Identifier: MIT */
/*
 * shared_adopt.c - may a packed chunk's file be adopted (shared_pack.c)?
 * The question asked when the program closes the fd of a small code file
 * whose RX view sits in a slot: once it is answered yes, the file's bytes
 * move to the preload's file and the program can no longer tell, so the
 * answer must be yes only when nothing but the two views can reach the
 * file:
 *
 *   - the fd: O_RDWR (a read-only fd's views could not be made writable
 *     with mprotect; ours could), FD_CLOEXEC (without it a program that
 *     posix_spawn()s may have handed it on), no write seals (they forbid
 *     what ours would allow), and no other fd of the process leads to the
 *     same file (dup, dup2, an open of /proc/self/fd/N): /proc/self/fd;
 *   - the mappings: exactly the slot and one other view of the whole
 *     file, shared, at offset 0.  Known from the view table: every
 *     MAP_SHARED mapping of a tmpfs file made through the hooks, dropped
 *     when it is unmapped or mapped over, poisoned (the file never
 *     adopted) when moved or cut; the two views are then confirmed in the
 *     kernel's own table with PROCMAP_QUERY (Linux 6.11), which also
 *     gives the other view's protection now.  When the table cannot be
 *     trusted (full, a library loaded RTLD_DEEPBIND whose calls bypass the
 *     hooks) or PROCMAP_QUERY is missing, /proc/self/maps is read whole:
 *     the same answer, at the cost of formatting every VMA (the table
 *     saves that: about 130 us a chunk with 600 VMAs).
 *
 * MAP_PRIVATE mappings of the file are not looked for: whether they see
 * later writes to the file is unspecified (mmap(2)), so the program cannot
 * rely on it.  Mappings made by raw system calls or before the preload was
 * set up are not in the table.
 *
 * The table has its own lock, taken after shared_pack.c's when both are.
 */
#define _GNU_SOURCE
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

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#define TMPFS_MAGIC_ 0x01021994
#define MAX_VIEWS    1024
#define MAPS_BUF     (256 << 10)

/* PROCMAP_QUERY (linux/fs.h, Linux 6.11): one VMA of /proc/self/maps. */
struct procmap_query_ {
	uint64_t size, query_flags, query_addr;		       /* in */
	uint64_t vma_start, vma_end, vma_flags, vma_page_size; /* out */
	uint64_t vma_offset, inode;			       /* out */
	uint32_t dev_major, dev_minor;			       /* out */
	uint32_t vma_name_size, build_id_size;		       /* in/out */
	uint64_t vma_name_addr, build_id_addr;		       /* in */
};
#define PROCMAP_QUERY_		  0xc0686611UL
#define PROCMAP_QUERY_READABLE_	  0x01
#define PROCMAP_QUERY_WRITABLE_	  0x02
#define PROCMAP_QUERY_EXECUTABLE_ 0x04
#define PROCMAP_QUERY_SHARED_	  0x08

/* A MAP_SHARED mapping of a tmpfs file, as the hooks saw it mapped. */
struct view {
	uintptr_t start, end;
	off_t off;
	dev_t dev;
	ino_t ino;
	bool poisoned; /* moved or cut: where it is now is not known */
};

static struct {
	struct view v[MAX_VIEWS];
	int n;
	bool unsure;   /* a view was not noted (the table was full) */
	bool no_query; /* the kernel has no PROCMAP_QUERY */
	bool atfork;
	pthread_mutex_t lock;
} vt = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void vt_lock(void)
{
	hook_lock(&vt.lock);
}

static void vt_unlock(void)
{
	hook_unlock(&vt.lock);
}

/* Fork takes the table's lock after shared_pack.c's (the order the hooks
 * take them in): its handlers are registered first, so they run last. */
void shared_views_ready(void)
{
	vt_lock();
	if (!vt.atfork && pthread_atfork(vt_lock, vt_unlock, vt_unlock) == 0)
		vt.atfork = true;
	vt_unlock();
}

void shared_views_note(int fd, const void *addr, size_t len, off_t off)
{
	struct statfs sf;
	struct stat st;
	if (in_hook || fd < 0 || k_fstatfs(fd, &sf) || sf.f_type != TMPFS_MAGIC_ ||
	    k_fstat(fd, &st))
		return;
	shared_views_ready();
	vt_lock();
	if (vt.n < MAX_VIEWS && vt.atfork) {
		preload_hold(HOLDS_VIEWS);
		vt.v[vt.n++] = (struct view){.start = (uintptr_t)addr,
					     .end = (uintptr_t)addr + page_up(len),
					     .off = off,
					     .dev = st.st_dev,
					     .ino = st.st_ino};
	} else {
		vt.unsure = true;
	}
	vt_unlock();
}

/* The views [start, end) meets: dropped when inside it; else (@poison, or
 * cut) poisoned. */
static void views_meet(uintptr_t start, uintptr_t end, bool poison)
{
	if (in_hook || !__atomic_load_n(&vt.n, __ATOMIC_RELAXED))
		return;
	vt_lock();
	for (int i = 0; i < vt.n;) {
		struct view *v = &vt.v[i];
		if (v->poisoned || v->end <= start || end <= v->start) {
			i++;
		} else if (!poison && start <= v->start && v->end <= end) {
			vt.v[i] = vt.v[--vt.n];
		} else {
			v->poisoned = true;
			i++;
		}
	}
	vt_unlock();
}

void shared_views_gone(uintptr_t start, uintptr_t end)
{
	views_meet(start, end, false);
}

void shared_views_moved(uintptr_t start, uintptr_t end)
{
	views_meet(start, end, true);
}

void shared_views_forget(dev_t dev, ino_t ino)
{
	vt_lock();
	for (int i = 0; i < vt.n;)
		if (vt.v[i].dev == dev && vt.v[i].ino == ino)
			vt.v[i] = vt.v[--vt.n];
		else
			i++;
	vt_unlock();
}

/* Does another fd of this process lead to the file (dev, ino)? */
static bool other_fd(int fd, dev_t dev, ino_t ino)
{
	static char buf[4096]; /* under shared_pack.c's lock */
	int dir = k_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return true; /* cannot tell: as if there were */
	bool found = false;
	for (long n; !found && (n = k_getdents64(dir, buf, sizeof(buf))) > 0;)
		for (long at = 0; at < n && !found;) {
			const char *name = buf + at + 19; /* struct linux_dirent64's d_name */
			unsigned short reclen;
			memcpy(&reclen, buf + at + 16, sizeof(reclen));
			at += reclen;
			char *end;
			long other = strtol(name, &end, 10);
			struct stat st;
			if (end == name || *end || other == fd || other == dir)
				continue;
			found = !k_fstat((int)other, &st) && st.st_dev == dev && st.st_ino == ino;
		}
	k_close(dir);
	return found;
}

static int prot_of(bool r, bool w, bool x)
{
	return (r ? PROT_READ : 0) | (w ? PROT_WRITE : 0) | (x ? PROT_EXEC : 0);
}

/* The file's mappings in /proc/self/maps: true when they are exactly the
 * slot [rx, rx+len), r-x, and one other view of the whole file, both
 * shared, at offset 0; that one's address and protection in *rw, *rw_prot. */
static bool maps_only_views(dev_t dev, ino_t ino, uintptr_t rx, size_t len, uintptr_t *rw,
			    int *rw_prot)
{
	static char buf[MAPS_BUF]; /* under shared_pack.c's lock */
	size_t n = 0;
	int fd = k_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	for (long r; n < sizeof(buf) && (r = k_read(fd, buf + n, sizeof(buf) - n)) > 0;)
		n += (size_t)r;
	k_close(fd);
	if (n >= sizeof(buf))
		return false; /* cut short: cannot tell */
	int seen = 0;
	bool slot = false;
	for (char *line = buf, *stop = buf + n; line < stop;) {
		char *eol = memchr(line, '\n', (size_t)(stop - line)), *s;
		if (!eol)
			return false;
		*eol = 0;
		uintptr_t start = strtoul(line, &s, 16);
		uintptr_t end = strtoul(s + 1, &s, 16);
		const char *perms = s + 1;
		unsigned long off = strtoul(s + 6, &s, 16);
		unsigned long major = strtoul(s + 1, &s, 16);
		unsigned long minor = strtoul(s + 1, &s, 16);
		unsigned long inode = strtoul(s + 1, &s, 10);
		line = eol + 1;
		if (inode != ino || major != major(dev) || minor != minor(dev))
			continue;
		if (++seen > 2 || off || perms[3] != 's' || end - start != len)
			return false;
		if (start == rx) {
			slot = !strncmp(perms, "r-xs", 4);
			continue;
		}
		*rw = start;
		*rw_prot = prot_of(perms[0] == 'r', perms[1] == 'w', perms[2] == 'x');
	}
	return seen == 2 && slot;
}

/* The kernel's VMA at @addr: exactly [addr, addr+len) of (dev, ino) at
 * offset 0, shared?  Its protection in *prot.  -1 when the kernel cannot
 * say (no PROCMAP_QUERY), else 1 or 0. */
static int vma_is(int maps, uintptr_t addr, size_t len, dev_t dev, ino_t ino, int *prot)
{
	struct procmap_query_ q = {.size = sizeof(q), .query_addr = addr};
	if (k_ioctl(maps, PROCMAP_QUERY_, &q))
		return errno == ENOTTY || errno == EINVAL ? -1 : 0;
	*prot = prot_of(q.vma_flags & PROCMAP_QUERY_READABLE_,
			q.vma_flags & PROCMAP_QUERY_WRITABLE_,
			q.vma_flags & PROCMAP_QUERY_EXECUTABLE_);
	return q.vma_start == addr && q.vma_end == addr + len && !q.vma_offset && q.inode == ino &&
	       q.dev_major == major(dev) && q.dev_minor == minor(dev) &&
	       (q.vma_flags & PROCMAP_QUERY_SHARED_);
}

/* The view table's answer, confirmed by the kernel: 1 (only the two
 * views), 0 (not), -1 (cannot tell: read the maps). */
static int table_only_views(dev_t dev, ino_t ino, uintptr_t rx, size_t len, uintptr_t *rw,
			    int *rw_prot)
{
	int seen = 0, slot = 0;
	vt_lock();
	bool unsure = vt.unsure || vt.no_query;
	for (int i = 0; i < vt.n && !unsure; i++) {
		const struct view *v = &vt.v[i];
		if (v->dev != dev || v->ino != ino)
			continue;
		if (v->poisoned || ++seen > 2 || v->off || v->end - v->start != len) {
			vt_unlock();
			return 0;
		}
		if (v->start == rx)
			slot++;
		else
			*rw = v->start;
	}
	vt_unlock();
	if (unsure || shared_bypassed())
		return -1;
	if (seen != 2 || slot != 1)
		return 0;
	int maps = k_open("/proc/self/maps", O_RDONLY | O_CLOEXEC), rx_prot = 0;
	if (maps < 0)
		return 0;
	int a = vma_is(maps, rx, len, dev, ino, &rx_prot);
	int b = a == 1 ? vma_is(maps, *rw, len, dev, ino, rw_prot) : a;
	k_close(maps);
	if (a < 0)
		__atomic_store_n(&vt.no_query, true, __ATOMIC_RELAXED);
	return a < 0 ? -1 : a && b && rx_prot == (PROT_READ | PROT_EXEC);
}

bool shared_adopt_check(int fd, dev_t dev, ino_t ino, uintptr_t rx, size_t len, uintptr_t *rw,
			int *rw_prot)
{
	struct stat st;
	long fl = k_fcntl(fd, F_GETFL, 0), fdfl = k_fcntl(fd, F_GETFD, 0);
	long seals = k_fcntl(fd, F_GET_SEALS, 0);
	if (k_fstat(fd, &st) || st.st_dev != dev || st.st_ino != ino || st.st_size != (off_t)len ||
	    fl < 0 || (fl & O_ACCMODE) != O_RDWR || fdfl < 0 || !(fdfl & FD_CLOEXEC) ||
	    (seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) || other_fd(fd, dev, ino))
		return false;
	int only = table_only_views(dev, ino, rx, len, rw, rw_prot);
	if (only < 0)
		only = maps_only_views(dev, ino, rx, len, rw, rw_prot);
	return only == 1 && !shared_pack_in_window(*rw, *rw + len);
}
