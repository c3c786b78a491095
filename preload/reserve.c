/* SPDX-License-Identifier: MIT */
/*
 * reserve.c - reservations held for the kernel until they hold code.  A
 * large PROT_NONE|MAP_NORESERVE mapping (the placement rule's code range:
 * 128 MiB to 1 GiB) may be a JIT's code range (V8's, HotSpot's code
 * cache) or data (Erlang's literal area, committed RW in pieces and never
 * made executable).  Only the program's later calls tell which, so:
 *
 *   - the reservation is mapped by the kernel, 2 MiB-aligned, and near the
 *     program's hint where hugeperm would have put it (the hint's 2 MiB
 *     block, else the nearest free 1 GiB slot: V8 then finds its builtins
 *     within reach, as when it was served at once), and noted here;
 *   - the program's calls on it go to the kernel, under the lock (so that
 *     none runs while the range is adopted);
 *   - the first call inside it that asks for PROT_EXEC (mprotect,
 *     pkey_mprotect, or mmap MAP_FIXED: V8's first code page, HotSpot's
 *     first code heap, V8's builtins remapped into it) is the evidence: the
 *     range is adopted in place as a code range (fixed.c's arenas, at its
 *     address), with the protections and the contents the program gave its
 *     pages, and the call is then made on served memory;
 *   - a reservation that never asks stays the kernel's.
 *
 * Adoption keeps the address and every page: pieces that hold data
 * (present or swapped in /proc/self/pagemap) are moved aside with mremap
 * and copied back.  A range with a file or shared mapping in it, a hole
 * (unmapped behind our back), more pieces than we note, or whose address
 * cannot be served stays the kernel's, as it is (counted: resv_kept).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pagemap_scan.h"
#include "preload.h"

#define SLOT	   (1UL << 30)
#define MAX_HELD   32 /* reservations held at once; more are the kernel's */
#define MAX_PIECES 64 /* VMAs a held range may have when it is adopted */
#define NEAR_SLOTS 4  /* 1 GiB slots tried on each side of a hint */

/* The held ranges.  Written under the lock; read without it by
 * reserve_meets() (a slot's bounds never move while in use, and a call
 * that meets one is checked again under the lock).
 *
 * Each is fenced: PROT_NONE address space of ours below and above it, so
 * that when it is adopted the library finds room for its chunk there, as
 * it would have placed one: a range at the start of a 1 GiB slot holds the
 * rest of the slot (the chunk is then the whole slot, as any arena's
 * without a hint); one at its hint's block, a page below and two blocks
 * above (a page is left free beside the program's mappings, and the chunk
 * keeps a reserved block: `hugeperm stats` finds a chunk by that mark on a
 * kernel without VMA names).  The fences go when the range is adopted or
 * gone. */
struct span {
	uintptr_t start, end;
};
static struct {
	uintptr_t start, end; /* 0, 0: a free slot */
	struct span fence[2]; /* below, above; empty: none (the other half's) */
} held[MAX_HELD];
static int nheld; /* slots used so far (high-water mark) */

static const int ANON_NONE = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
/* Not MAP_NORESERVE: a fence does not merge with the reservation's VMA. */
static const int FENCE = MAP_PRIVATE | MAP_ANONYMOUS;

/* Room left free above the program break, as the library leaves it
 * (os_maps.c's GROW_ROOM): the heap grows there, and the library would not
 * place the range's chunk there when it is adopted. */
#define BRK_ROOM (256UL << 20)
/* And what the break may grow by before a range held above its room is
 * adopted (place()). */
#define HOLD_SLACK (64UL << 20)

/* Can [lo, hi) be a held range with its fences?  Not in the first 1 GiB
 * slot, where the library places no chunk, nor in the break's room. */
static bool may_hold(uintptr_t lo, uintptr_t hi)
{
	uintptr_t brk_now = k_brk_now();
	return lo >= SLOT && !(brk_now && lo < brk_now + BRK_ROOM && hi > brk_now);
}

/* The fence [lo, hi) taken exactly there, then the reservation [at, at +
 * len) mapped over it.  The reservation's address, or 0. */
static uintptr_t fence_at(uintptr_t lo, uintptr_t hi, uintptr_t at, size_t len,
			  struct span fence[2])
{
	void *p = k_mmap((void *)lo, hi - lo, PROT_NONE, FENCE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	if ((uintptr_t)p != lo || /* a kernel older than 4.17 took it as a hint */
	    k_mmap((void *)at, len, PROT_NONE, ANON_NONE | MAP_FIXED, -1, 0) != (void *)at) {
		k_munmap(p, hi - lo);
		return 0;
	}
	fence[0] = (struct span){lo, at};
	fence[1] = (struct span){at + len, hi};
	return at;
}

/* Where a held reservation of @len bytes goes: 2 MiB-aligned and fenced;
 * near @hint when it has one (the hint's block, else right above the
 * break's room when the hint is in it, else the start of the nearest free
 * slot, as the library places a chunk near a hint); else at the start of
 * a free slot.  0 when the kernel has no room. */
static uintptr_t place(uintptr_t hint, size_t len, struct span fence[2])
{
	uintptr_t p, home = hint & ~(SLOT - 1);
	if (hint) {
		uintptr_t at = (hint + BLOCK - 1) & ~(BLOCK - 1);
		uintptr_t lo = at - PAGE, hi = at + len + 2 * BLOCK;
		if (may_hold(lo, hi) && (p = fence_at(lo, hi, at, len, fence)))
			return p;
		/* A hint in the break's room (V8 asks right above the break or
		 * right after its binary, non-PIE node's being at 4 MiB): a
		 * little above the room, when the range ends there before
		 * the slot after the next.  The next free slot may be out of
		 * V8's reach (0x80000000 when the break is above 768 MiB), and
		 * V8 then maps a copy of its builtins into the range.  Not right
		 * above the room: the break grows before the range is adopted,
		 * and the library places no chunk in the room then (3 of 40
		 * node runs kept the range the kernel's); nor a room above it,
		 * out of V8's reach for a break above about 1 GiB (4 of 30 node
		 * runs remapped their builtins, 5 of 30 before). */
		uintptr_t brk_now = k_brk_now();
		if (brk_now && hint < brk_now + BRK_ROOM) {
			at = (brk_now + BRK_ROOM + HOLD_SLACK + PAGE + BLOCK - 1) & ~(BLOCK - 1);
			lo = at - PAGE;
			hi = at + len + 2 * BLOCK;
			if (hi <= home + 2 * SLOT && may_hold(lo, hi) &&
			    (p = fence_at(lo, hi, at, len, fence)))
				return p;
		}
		for (uintptr_t d = 1; d <= NEAR_SLOTS; d++)
			for (int side = 0; side < 2; side++) {
				uintptr_t s = side ? home - d * SLOT : home + d * SLOT;
				if ((side ? home >= d * SLOT : s > home) && may_hold(s, s + SLOT) &&
				    (p = fence_at(s, s + SLOT, s, len, fence)))
					return p;
			}
	}
	/* A free slot, the kernel's choice: two slots' worth, trimmed to one. */
	void *any = k_mmap(NULL, 2 * SLOT, PROT_NONE, FENCE, -1, 0);
	if (any == MAP_FAILED)
		return 0;
	uintptr_t q = (uintptr_t)any, s = (q + SLOT - 1) & ~(SLOT - 1);
	if (s > q)
		k_munmap((void *)q, s - q);
	k_munmap((void *)(s + SLOT), q + 2 * SLOT - (s + SLOT));
	if (k_mmap((void *)s, len, PROT_NONE, ANON_NONE | MAP_FIXED, -1, 0) != (void *)s) {
		k_munmap((void *)s, SLOT);
		return 0;
	}
	fence[0] = (struct span){0, 0};
	fence[1] = (struct span){s + len, s + SLOT};
	return s;
}

static void held_set(int i, uintptr_t start, uintptr_t end)
{
	if (start >= end)
		start = end = 0;
	else
		preload_hold(HOLDS_RESERVATIONS);
	__atomic_store_n(&held[i].end, 0, __ATOMIC_RELEASE); /* no reader sees a mix */
	__atomic_store_n(&held[i].start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&held[i].end, end, __ATOMIC_RELEASE);
	if (i == nheld && end)
		__atomic_store_n(&nheld, i + 1, __ATOMIC_RELEASE);
}

/* Held range @i is no more: its fences go. */
static void held_drop(int i)
{
	for (int k = 0; k < 2; k++) {
		struct span *f = &held[i].fence[k];
		if (f->end > f->start)
			k_munmap((void *)f->start, f->end - f->start);
		*f = (struct span){0, 0};
	}
	held_set(i, 0, 0);
}

static int free_slot(void)
{
	int i = 0;
	while (i < nheld && held[i].end)
		i++;
	return i < MAX_HELD ? i : -1;
}

uintptr_t reserve_map(uintptr_t hint, size_t len)
{
	int i = free_slot();
	if (i < 0)
		return 0; /* the kernel's, untracked, as with no preload */
	uintptr_t p = place(hint, len, held[i].fence);
	if (!p)
		return 0;
	held_set(i, p, p + len);
	preload_counts.resv_held++;
	return p;
}

bool reserve_meets(const void *addr, size_t len)
{
	uintptr_t s = (uintptr_t)addr, e = s + len;
	int n = __atomic_load_n(&nheld, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		uintptr_t hs = __atomic_load_n(&held[i].start, __ATOMIC_RELAXED),
			  he = __atomic_load_n(&held[i].end, __ATOMIC_ACQUIRE);
		if (he && s < he && e > hs)
			return true;
	}
	return false;
}

void reserve_unmapped(uintptr_t start, uintptr_t end)
{
	for (int i = 0; i < nheld; i++) {
		uintptr_t hs = held[i].start, he = held[i].end;
		if (!he || start >= he || end <= hs)
			continue;
		if (start <= hs && end >= he) {
			held_drop(i);
		} else if (start > hs && end < he) { /* a hole in the middle: two ranges */
			int j = free_slot();
			if (j >= 0) {
				held[j].fence[0] = (struct span){0, 0};
				held[j].fence[1] = held[i].fence[1];
				held[i].fence[1] = (struct span){0, 0};
				held_set(j, end, he);
			}
			held_set(i, hs, start);
		} else if (start > hs) {
			held_set(i, hs, start);
		} else {
			held_set(i, end, he);
		}
	}
}

/* ---- adoption ------------------------------------------------------------ */

struct piece {
	uintptr_t start, end;
	int prot;
	uintptr_t moved; /* where its pages wait while the range is adopted; 0 */
};

static int prot_of_perms(const char *p)
{
	return (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
	       (p[2] == 'x' ? PROT_EXEC : 0);
}

static uintptr_t hex(const char **s)
{
	uintptr_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return v;
		v = v * 16 + (uintptr_t)d;
	}
}

/* One line of /proc/self/maps: a piece of [start, end)?  false when the
 * range cannot be adopted (a file or shared mapping in it, a hole, too
 * many pieces). */
static bool maps_line(const char *s, uintptr_t start, uintptr_t end, struct piece *pc, int *n,
		      uintptr_t *at)
{
	uintptr_t lo = hex(&s);
	s++;
	uintptr_t hi = hex(&s);
	if (hi <= start || lo >= end)
		return true;
	const char *perms = s + 1;
	/* "rw-p 00000000 00:00 0   [anon:...]": skip offset, device, inode. */
	s = perms + 5;
	for (int field = 0; field < 3; field++) {
		while (*s == ' ')
			s++;
		if (field == 2 && (*s != '0' || (s[1] != ' ' && s[1] != '\n')))
			return false; /* an inode: a file */
		while (*s && *s != ' ' && *s != '\n')
			s++;
	}
	while (*s == ' ')
		s++;
	bool anon = *s == '\n' || !strncmp(s, "[anon", 5);
	lo = lo > start ? lo : start;
	hi = hi < end ? hi : end;
	if (!anon || perms[3] != 'p' || lo != *at || *n == MAX_PIECES)
		return false;
	pc[(*n)++] = (struct piece){.start = lo, .end = hi, .prot = prot_of_perms(perms)};
	*at = hi;
	return true;
}

/* The pieces of [start, end) from /proc/self/maps: false when it cannot be
 * adopted. */
static bool read_pieces(uintptr_t start, uintptr_t end, struct piece *pc, int *n)
{
	static char buf[8192]; /* under the lock */
	size_t len = 0;
	uintptr_t at = start;
	bool good = true;
	int fd = k_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	*n = 0;
	for (long r; good && (r = k_read(fd, buf + len, sizeof(buf) - 1 - len)) > 0;) {
		len += (size_t)r;
		buf[len] = 0;
		char *line = buf, *eol;
		while (good && (eol = memchr(line, '\n', len - (size_t)(line - buf)))) {
			good = maps_line(line, start, end, pc, n, &at);
			line = eol + 1;
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
	}
	k_close(fd);
	return good && at == end;
}

/* Page @pg of [start, ...) has contents: with @to, copy it to @to + its
 * offset, which is served memory, and noted as holding bytes (a page made
 * PROT_NONE keeps them: its block is not dropped).  0, or -1. */
static int page_held(uintptr_t pg, uintptr_t start, uintptr_t to)
{
	if (!to)
		return 0;
	uintptr_t dst = to + (pg - start);
	const struct region *reg = alloc_of(dst);
	if (!reg || hp_arena_write(arena_at(reg->arena), (void *)dst, (void *)pg, PAGE))
		return -1;
	code_range_keep(dst, dst + PAGE);
	return 0;
}

/* pages_held() by PAGEMAP_SCAN: one ioctl for a range with nothing in it
 * (V8's 512 MiB code range: 256 reads of pagemap, about 1 ms, before).
 * -2 when the kernel has no PAGEMAP_SCAN (before Linux 6.7). */
static long pages_scanned(int fd, uintptr_t start, uintptr_t end, uintptr_t to)
{
	struct pm_page_region r[32];
	long found = 0;
	for (uintptr_t at = start; at < end;) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = at,
			.end = end,
			.vec = (uintptr_t)r,
			.vec_len = 32,
			.category_anyof_mask = PM_PAGE_IS_PRESENT | PM_PAGE_IS_SWAPPED,
			.return_mask = PM_PAGE_IS_PRESENT | PM_PAGE_IS_SWAPPED,
		};
		int n = k_ioctl(fd, PM_PAGEMAP_SCAN, &arg);
		if (n < 0)
			return at == start && (errno == EINVAL || errno == ENOTTY) ? -2 : -1;
		for (int i = 0; i < n; i++)
			for (uintptr_t pg = r[i].start; pg < r[i].end; pg += PAGE, found++)
				if (page_held(pg, start, to))
					return -1;
		if (n < 32 || arg.walk_end <= at)
			break;
		at = arg.walk_end;
	}
	return found;
}

/* The pages of [start, end) with contents (present or swapped, as
 * /proc/self/pagemap says): how many, or -1 when it cannot be read.  With
 * @to, each is copied to @to + its offset, which is served memory. */
static long pages_held(uintptr_t start, uintptr_t end, uintptr_t to)
{
	uint64_t ent[512];
	int fd = k_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	long found = pages_scanned(fd, start, end, to);
	bool read = found == -2; /* no PAGEMAP_SCAN: read the entries */
	found = read ? 0 : found;
	for (uintptr_t p = start; read && p < end && found >= 0;) {
		size_t n = (end - p) / PAGE < 512 ? (end - p) / PAGE : 512;
		long r = k_pread(fd, ent, n * sizeof(ent[0]), (off_t)(p / PAGE * sizeof(ent[0])));
		if (r != (long)(n * sizeof(ent[0])))
			found = -1;
		for (size_t i = 0; i < n && found >= 0; i++)
			if (ent[i] >> 62) /* bit 63 present, bit 62 swapped */
				found = page_held(p + i * PAGE, start, to) ? -1 : found + 1;
		p += n * PAGE;
	}
	k_close(fd);
	return found;
}

/* Move [start, start + len), one VMA of the program's, elsewhere (to
 * address space reserved for it): where it went, or MAP_FAILED. */
static void *move_aside(uintptr_t start, size_t len)
{
	void *to = k_mmap(NULL, len, PROT_NONE, ANON_NONE, -1, 0);
	if (to == MAP_FAILED)
		return to;
	void *p = k_mremap((void *)start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (p == MAP_FAILED)
		k_munmap(to, len);
	return p;
}

/* Move the pieces of @pc[0..n) that were moved aside back to their place
 * (over whatever is there: the reservation).  0, or -1. */
static int put_back(struct piece *pc, int n)
{
	int rc = 0;
	for (int k = 0; k < n; k++) {
		size_t len = pc[k].end - pc[k].start;
		if (pc[k].moved &&
		    k_mremap((void *)pc[k].moved, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			     (void *)pc[k].start) == MAP_FAILED)
			rc = -1;
		else
			pc[k].moved = 0;
	}
	return rc;
}

/* Give [start, end), unmapped, back to the kernel as it was: the
 * reservation, the protections, the moved pages.  0, or -1. */
static int restore(uintptr_t start, uintptr_t end, struct piece *pc, int n)
{
	void *p = k_mmap((void *)start, end - start, PROT_NONE, ANON_NONE | MAP_FIXED_NOREPLACE, -1,
			 0);
	if (p != (void *)start) /* someone took the range meanwhile */
		return -1;
	for (int k = 0; k < n; k++)
		if (!pc[k].moved && pc[k].prot != PROT_NONE &&
		    k_mprotect((void *)pc[k].start, pc[k].end - pc[k].start, pc[k].prot))
			return -1;
	return put_back(pc, n);
}

/* Adopt held range @i as a code range at its address.  0 (adopted, or
 * left the kernel's as it is), or -1 with errno when it went wrong
 * half-way (the range is lost, or some page could not be set). */
static int adopt(int i)
{
	uintptr_t start = held[i].start, end = held[i].end;
	struct piece pc[MAX_PIECES];
	int n = 0;
	held_drop(i); /* whatever comes of it, it is held no more */
	if (!read_pieces(start, end, pc, &n)) {
		preload_counts.resv_kept++;
		return 0;
	}
	for (int k = 0; k < n; k++) { /* pieces that hold data: aside */
		size_t len = pc[k].end - pc[k].start;
		long data = pages_held(pc[k].start, pc[k].end, 0);
		void *to = data > 0 ? move_aside(pc[k].start, len) : MAP_FAILED;
		if (data && to == MAP_FAILED) { /* cannot look, or cannot move: the kernel's */
			if (put_back(pc, k))
				goto lost;
			preload_counts.resv_kept++;
			return 0;
		}
		pc[k].moved = data ? (uintptr_t)to : 0;
	}
	if (k_munmap((void *)start, end - start)) { /* still the program's, as it was */
		if (put_back(pc, n))
			goto lost;
		preload_counts.resv_kept++;
		return 0;
	}
	uintptr_t r = fixed_serve(start, end - start, PROT_NONE, false);
	if (!r || r == (uintptr_t)MAP_FAILED) {
		if (restore(start, end, pc, n))
			goto lost;
		preload_counts.resv_kept++;
		return 0;
	}
	preload_counts.fixed--; /* fixed_serve's count: not the program's own address */
	struct region *reg;
	int rc = 0;
	for (int k = 0; k < n; k++) {
		if (pc[k].prot == PROT_NONE)
			continue;
		if (!region_split_at(pc[k].start) || !region_split_at(pc[k].end)) {
			rc = -1;
			continue;
		}
		for (size_t j = region_find(pc[k].start);
		     (reg = region_at(j)) && reg->start < pc[k].end; j++)
			region_set_prot(reg, pc[k].prot);
	}
	rc |= code_range_reconcile_range(start, end);
	for (int k = 0; k < n; k++)
		if (pc[k].moved) {
			size_t len = pc[k].end - pc[k].start;
			if (k_mprotect((void *)pc[k].moved, len, PROT_READ) ||
			    pages_held(pc[k].moved, pc[k].moved + len, pc[k].start) < 0)
				rc = -1;
			k_munmap((void *)pc[k].moved, len);
		}
	preload_counts.resv_adopted++;
	if (rc) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
lost:
	for (int k = 0; k < n; k++)
		if (pc[k].moved)
			k_munmap((void *)pc[k].moved, pc[k].end - pc[k].start);
	errno = ENOMEM;
	return -1;
}

int reserve_before(uintptr_t start, uintptr_t end, int prot)
{
	if (!(prot & PROT_EXEC) || (prot & ~PROTS) || start % PAGE || end <= start)
		return 0;
	int rc = 0;
	for (int i = 0; i < nheld; i++)
		if (held[i].end && start < held[i].end && end > held[i].start)
			rc |= adopt(i);
	return rc;
}
