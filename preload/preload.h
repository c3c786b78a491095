/* SPDX-License-Identifier: MIT */
/*
 * preload.h - what the preload's files share.  One file per concept; calls
 * go down this list only (a file calls the ones above it, never below):
 *
 *   placement.c   the placement rule (placement.h; pure, shared with sim/)
 *   kernel.c      the kernel's calls (k_*), in_hook, the lock, stderr
 *   counters.c    the counters: the hooks count, the report reads
 *   options.c     options from the environment, recording, set-up (ready)
 *   regions.c     the region table: the program's mapped ranges
 *   ranges.c      a call's range: its pages, ours and the kernel's parts
 *   grow.c        a hint at the end of a heap chunk: data, not code
 *   pack.c        packed areas: several of a thread's areas in one block
 *   serve.c       the arenas, serving a mapping, protecting, cutting
 *   code_range.c  code ranges committed in place: reconcile
 *   reserve.c     reservations held for the kernel until they hold code,
 *                 then adopted in place as code ranges (with fixed.c)
 *   shared.c      shared-memory code: kept the kernel's, made huge
 *   shared_pack.c small shared code files (sljit's chunks) packed into
 *                 windows of the preload's file; shared.c hands them over
 *                 and its collapser collapses the windows
 *   shared_adopt.c may such a file be adopted: its fds and views
 *   fixed.c       code ranges at the program's address (MAP_FIXED_NOREPLACE),
 *                 and MAP_32BIT mappings in the low 2 GiB
 *   hooks.c       the entry points: mmap, munmap, mprotect, madvise, mremap
 *   thp.c         the entry point prctl: a program's THP switch spares ours
 *   report.c      the report at exit (and the _exit, _Exit entry points)
 *
 * The preload is built on the public API (hugeperm.h) plus the trace
 * format (lib/trace.h), which `hugeperm record` writes through it.
 */
#ifndef HP_PRELOAD_H
#define HP_PRELOAD_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hugeperm.h>

#include "placement.h"
#include "trace.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif

#define PAGE  4096UL
#define BLOCK (2UL << 20)
#define PROTS (PROT_READ | PROT_WRITE | PROT_EXEC)

static inline size_t page_up(size_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

/* ---- kernel.c ---------------------------------------------------------- */

/* Nonzero while this thread runs a hook: its calls go to the kernel. */
extern __thread int in_hook __attribute__((tls_model("initial-exec")));

void kernel_resolve(void);
void *k_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int k_munmap(void *addr, size_t len);
int k_mprotect(void *addr, size_t len, int prot);
int k_madvise(void *addr, size_t len, int advice);
/* MADV_COLLAPSE of the 2 MiB of shared code at @addr, timed into
 * preload_counts.shared_collapse_ns; as madvise(2) returns. */
int k_collapse(void *addr);
void *k_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *to);
int k_pkey_mprotect(void *addr, size_t len, int prot, int pkey);
int k_mincore(void *addr, size_t len, unsigned char *vec);
struct statfs;
int k_fstatfs(int fd, struct statfs *buf);
int k_open(const char *path, int flags);
long k_read(int fd, void *buf, size_t len);
long k_pread(int fd, void *buf, size_t len, off_t off);
int k_close(int fd);
struct stat;
int k_fstat(int fd, struct stat *buf);
int k_fcntl(int fd, int cmd, long arg);
int k_ioctl(int fd, unsigned long request, void *arg);
long k_pwrite(int fd, const void *buf, size_t len, off_t off);
int k_ftruncate(int fd, off_t len);
off_t k_lseek(int fd, off_t off, int whence);
int k_fallocate(int fd, int mode, off_t off, off_t len);
int k_memfd_create(const char *name, unsigned flags);
long k_getdents64(int fd, void *buf, size_t len);
long k_getpid(void);
int k_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
uintptr_t k_brk_now(void);
/* The process leaves: the next _exit (libc's), or exit_group itself. */
__attribute__((noreturn)) void k_exit(int status);

/* The preload's entry points: its only exports besides the hp_ API. */
#define HOOK __attribute__((visibility("default")))

/* The one lock (no signal mask: a handler that interrupts a hook of its
 * thread finds in_hook set, and fails on served memory; kernel.c). */
void lock(void);
void unlock(void);
void lock_for_fork(void);
void unlock_after_fork(void);
/* The same discipline for another mutex of the preload's (in_hook raised
 * before it is taken, lowered after it is released). */
void hook_lock(pthread_mutex_t *m);
void hook_unlock(pthread_mutex_t *m);

/* write(2) all of it (EINTR retried); never malloc, never stdio. */
void hp_preload_write(int fd, const char *s, size_t n);
void hp_preload_say(const char *msg);

/* ---- counters.c -------------------------------------------------------- */

struct hp_preload_counts {
	uint64_t exec;		    /* mappings served that were executable when mapped */
	uint64_t areas;		    /* ... that were hinted areas (JIT code to be) */
	uint64_t code_ranges;	    /* ... that were PROT_NONE code ranges ("reservations") */
	uint64_t code_range_merged; /* ("resv_merged") code range blocks given one protection for
				     * pages asked otherwise (guards, headers) */
	uint64_t served_bytes;	    /* bytes of those mappings */
	uint64_t passed;	    /* mmap calls sent to the kernel */
	uint64_t fallbacks;	    /* mappings we meant to serve that hugeperm could not */
	uint64_t arenas;	    /* arenas made: one without a hint, one per hint area */
	uint64_t protects;	    /* protection changes applied to served memory */
	uint64_t flips_block;	    /* ... of them, whole areas done on the whole block */
	uint64_t flips_relaxed;	    /* ... of them, W<->X flips left RWX (rwx mode) */
	uint64_t unmaps;	    /* munmap calls on served memory */
	uint64_t remaps;	    /* mremap calls on served memory */
	uint64_t dontneed;	    /* MADV_DONTNEED calls on served memory (zeroed) */
	uint64_t fixed_fresh;	    /* MAP_FIXED anonymous over served memory */
	uint64_t fixed_given;	    /* MAP_FIXED of other kinds over it: pages given away */
	uint64_t given_bytes;	    /* allocations kept out of use for good because of that */
	uint64_t scrubbed;	    /* unmapped pieces of code left mapped, filled with int3 */
	uint64_t scrub_failed;	    /* ... not filled (old code left there), or their block
				     * not given its protection back (left RW) */
	uint64_t live_regions;	    /* served ranges mapped now (filled in by the report) */
	int flip_mode;		    /* enum hp_preload_flip (filled in by the report) */
	/* Shared-memory code (shared.c), counted under its own lock: */
	uint64_t shared_views;		 /* MAP_SHARED tmpfs/memfd/anonymous views of 2 MiB+ */
	uint64_t shared_aligned;	 /* ... of them placed 2 MiB-aligned by us */
	uint64_t shared_code_views;	 /* ... of them executable: code */
	uint64_t shared_adopted;	 /* ... of them found in /proc/self/maps (DEEPBIND) */
	uint64_t shared_collapsed;	 /* 2 MiB units of code collapsed (MADV_COLLAPSE) */
	uint64_t shared_collapse_failed; /* ... that the kernel refused (left 4 KiB) */
	uint64_t fixed;			 /* code ranges served at the program's address
					  * (MAP_FIXED_NOREPLACE; counted in code_ranges too) */
	uint64_t fixed_refused;		 /* ... told EEXIST once: their first block shared */
	uint64_t low;			 /* mappings served below 2 GiB (MAP_32BIT) */
	/* Reservations (reserve.c): */
	uint64_t resv_held;    /* held for the kernel until they hold code */
	uint64_t resv_adopted; /* ... of them adopted as code ranges (counted in code_ranges) */
	uint64_t resv_kept;    /* ... asked for code, but left the kernel's (a file in them...) */
	/* Small shared code files packed into windows (shared_pack.c), under its lock: */
	uint64_t shared_packed;		  /* small RX views placed in a slot of a window */
	uint64_t shared_packed_adopted;	  /* ... moved onto the preload's file at close() */
	uint64_t shared_packed_kept;	  /* ... closed, but left the program's file (dup...) */
	uint64_t shared_packed_freed;	  /* slots returned: both views unmapped */
	uint64_t shared_packed_lost;	  /* slots never used again (fork, mremap, MAP_FIXED) */
	uint64_t shared_packed_windows;	  /* 2 MiB windows made */
	uint64_t shared_packed_collapsed; /* window collapses (MADV_COLLAPSE) */
	uint64_t shared_packed_failed;	  /* placements, adoptions, collapses refused */
	uint64_t shared_collapse_ns;	  /* time in the MADV_COLLAPSE calls of both (atomic) */
};

/* Counted under the lock, but `passed` (atomic: it is counted without). */
extern struct hp_preload_counts preload_counts;

/* ---- options.c --------------------------------------------------------- */

struct preload_options {
	struct hp_place_options serve; /* what is served (HUGEPERM_PRELOAD_SERVE, ...) */
	int flip;		       /* enum hp_preload_flip (HUGEPERM_PRELOAD_FLIP) */
	int collapse_mode;	       /* the arenas' (HUGEPERM_COLLAPSE, else sync) */
	bool report;	      /* the report to stderr at exit (HUGEPERM_PRELOAD_REPORT=1) */
	char stats_dir[4000]; /* the report files' directory (HUGEPERM_STATS_DIR); ""
			       * for none.  Kept: a program may clear environ first */
	bool pack; /* block mode: a thread's areas share blocks (HUGEPERM_PRELOAD_PACK=1) */
};
extern struct preload_options preload_opt;

/* The program's mmap stream, for `hugeperm record` (HUGEPERM_PRELOAD_RECORD). */
extern struct hp_trace_writer recording;

/* Set-up: 0 not begun, 1 under way (in one thread), 2 done. */
extern int setup_state;
/* Has set-up finished? */
static inline bool set_up(void)
{
	return __atomic_load_n(&setup_state, __ATOMIC_ACQUIRE) == 2;
}
/* Set up on first use: false while another thread is setting up (its
 * calls go to the kernel meanwhile).  Inline: after set-up, one load. */
bool ready_slow(void);
static inline bool ready(void)
{
	return set_up() || ready_slow();
}

/* What the preload holds besides its arenas' memory, as the bits of one
 * word: a call that meets no memory of ours (hp_owns) and none of the
 * kinds of thing it asks about goes to the kernel after reading that
 * word, not after a look in each table (every program makes such calls:
 * Ruby's YJIT 40,000 mprotect calls a run, none of them served by
 * default).  A bit is set before the first thing of its kind is
 * published, and stays set. */
enum {
	HOLDS_RESERVATIONS = 1 << 0, /* reserve.c: address space held for the kernel */
	HOLDS_SHARED = 1 << 1,	     /* shared.c: shared-memory views followed */
	HOLDS_VIEWS = 1 << 2,	     /* shared_adopt.c: tmpfs views noted */
	HOLDS_PACK = 1 << 3,	     /* shared_pack.c: windows of packed views */
	HOLDS_RECORDING = 1 << 4,    /* options.c: the program's calls recorded */
};
extern unsigned preload_holds;
static inline void preload_hold(unsigned kinds)
{
	__atomic_fetch_or(&preload_holds, kinds, __ATOMIC_RELEASE);
}
/* Set up, and [addr, addr+len) neither ours nor anything of @kinds? */
static inline bool passes(const void *addr, size_t len, unsigned kinds)
{
	return set_up() && !(__atomic_load_n(&preload_holds, __ATOMIC_ACQUIRE) & kinds) &&
	       !hp_owns(addr, len);
}

/* Record one event of the program's, unless it was made inside a hook. */
void note_hinted(int type, const void *addr, size_t len, int prot, int flags, const void *hint);
static inline void note(int type, const void *addr, size_t len, int prot, int flags)
{
	if (__atomic_load_n(&preload_holds, __ATOMIC_RELAXED) & HOLDS_RECORDING)
		note_hinted(type, addr, len, prot, flags, NULL);
}

/* ---- regions.c --------------------------------------------------------- */

/* One range the program has mapped, inside one hugeperm allocation.  A
 * region lies inside its allocation, and live allocations do not overlap,
 * so the regions of one allocation are neighbours in the table. */
struct region {
	uintptr_t start, end; /* the program's pages */
	uintptr_t base;	      /* the allocation they live in */
	size_t alloc_size;
	unsigned char arena;	 /* index of its arena (serve.c) */
	unsigned char kind;	 /* enum hp_place_kind */
	unsigned char prot;	 /* protection the program last gave the pages */
	unsigned char relaxed;	 /* rwx mode: W/X flips are not applied */
	unsigned char own_block; /* block mode: flips of the whole area take the block */
	unsigned char keyed;	 /* a protection key was set on these pages */
	unsigned char tainted;	 /* some pages of the allocation went to the kernel */
	unsigned char bytes;	 /* code range: the pages may hold bytes of the program's
				  * (accessible since their last discard) */
	unsigned char stale;	 /* code range: discarded while PROT_NONE, their memory
				  * still there: zeroed before they are accessible */
	unsigned char applied;	 /* a packed block's protection now (pack.c) */
	unsigned char ran;	 /* its pages were executable once (packed: the area is code,
				  * not data) */
	unsigned short area;	 /* packed: 1 + the page of its area's start in the block
				  * (the pieces of one area share it); 0: not packed */
};

size_t region_count(void);
/* The region at index @i in address order, or NULL past the end. */
struct region *region_at(size_t i);
/* Index of the first region ending above @addr. */
size_t region_find(uintptr_t addr);
bool region_insert(const struct region *reg);
void region_delete(size_t i);
/* The program gave @reg @prot: made accessible, its pages may hold bytes
 * of the program's from now until they are discarded. */
void region_set_prot(struct region *reg, int prot);
/* Make @addr a region boundary; false (no memory) if it cannot. */
bool region_split_at(uintptr_t addr);
/* Is every page of [start, end) that hugeperm owns inside a region? */
bool regions_cover(uintptr_t start, uintptr_t end);

/* The allocation behind a region: found by address, never by a scan. */
/* Index of the first region of @reg's allocation. */
size_t alloc_first(const struct region *reg);
/* Does any region still live in @reg's allocation? */
bool alloc_in_use(const struct region *reg);
/* ... one not wholly inside [start, end), which a cut is about to take? */
bool alloc_kept_after(const struct region *reg, uintptr_t start, uintptr_t end);
/* A region of the allocation holding @addr, or NULL if none is left. */
const struct region *alloc_of(uintptr_t addr);
/* Do all regions of @reg's allocation lie inside [start, end)? */
bool alloc_within(const struct region *reg, uintptr_t start, uintptr_t end);
/* Set on every region of @reg's allocation. */
void alloc_set_prot(const struct region *reg, int prot);
void alloc_set_keyed(const struct region *reg);
void alloc_set_tainted(const struct region *reg);

/* Ranges given to the kernel: pages of hugeperm's chunks that a MAP_FIXED
 * of the program's put a kernel mapping on (a file, shared memory). */
/* Note [start, end) as given; false (no room) if it cannot. */
bool given_add(uintptr_t start, uintptr_t end);
/* How many more given ranges there is room for. */
size_t given_room(void);
/* Is the page at @addr given? */
bool given_has(uintptr_t addr);
/* Is some page of [start, end) given? */
bool given_meets(uintptr_t start, uintptr_t end);
/* The first given range that ends above @addr, in *start, *end; false if
 * there is none. */
bool given_next(uintptr_t addr, uintptr_t *start, uintptr_t *end);
/* Call @fn(addr, len, @arg) on each given part of [start, end): 0, or -1 if
 * any call failed. */
int given_each(uintptr_t start, uintptr_t end, int (*fn)(void *, size_t, int), int arg);
/* The program unmapped [start, end): its given parts are reserved again
 * (PROT_NONE, no memory) and are no longer given.  0, or -1. */
int given_unmap(uintptr_t start, uintptr_t end);

/* ---- ranges.c ---------------------------------------------------------- */

/* The pages [*start, *end) of a call's range; false with EINVAL when @addr
 * is not page-aligned or the range wraps, as the kernel says. */
bool page_range(const void *addr, size_t len, uintptr_t *start, uintptr_t *end);
/* Call @out(addr, len, @arg) on the parts of [start, end) outside
 * hugeperm's chunks, and @in on those inside (either may be NULL).  0, or
 * -1 if any call failed. */
int chunk_parts(uintptr_t start, uintptr_t end, int (*out)(void *, size_t, int),
		int (*in)(void *, size_t, int), int arg);
/* Call @kernel(addr, len, @arg) on the kernel's parts of [start, end): what
 * hugeperm's chunks do not cover, and what in them is given to kernel
 * mappings.  0, or -1 if any call failed. */
int kernel_parts(uintptr_t start, uintptr_t end, int (*kernel)(void *, size_t, int), int arg);

/* ---- grow.c ------------------------------------------------------------ */

/* Is @hint the end of a kernel mapping of the program's (its page below
 * mapped, not by hugeperm): a heap growing, not a code area? */
bool hint_grows_mapping(uintptr_t hint);
/* Under the lock: is @hint the end of a packed area of ours that is
 * writable and never ran (data): a heap's next chunk? */
bool hint_after_data(uintptr_t hint);

/* ---- pack.c ------------------------------------------------------------ */

/* Serve an area of @len bytes and @prot in block mode, packed into this
 * thread's open block of arena @ai for areas of @len bytes (a new block
 * when it has no room, holds an area never made executable, or is further
 * than @reach from @hint; @reach 0: anywhere).  Its region is in the
 * table.  The address, or 0 with errno set. */
uintptr_t pack_serve(int ai, uintptr_t hint, size_t len, int prot, size_t reach);
/* @reg (packed, in the table) is asked for @prot: its block takes the
 * protection its areas make (hp_place_pack_prot).  0, or -1. */
int pack_protect(struct region *reg, int prot);
/* @reg (packed, not in the table: MAP_FIXED over it) is made fresh: zero,
 * then @prot.  0, or -1. */
int pack_fresh(struct region *reg, int prot);
/* A region of @gone's block (still in use) was unmapped: the block takes
 * the protection of those left. */
void pack_settle(const struct region *gone);
/* The block at @base went back to hugeperm: no thread packs into it. */
void pack_forget(uintptr_t base);
/* Is @reg's packed block executable now (an exact block: @reg's pages)? */
bool pack_executable(const struct region *reg);
/* Set [from, to) of @reg's block (packed, not writable now) to @byte by a
 * whole-block flip to RW and back, if the block is this thread's open
 * block.  0: written; 1: written, but the block's protection could not be
 * given back (it is RW); -1: not this thread's, exact, or the kernel
 * refused the flip: nothing written. */
int pack_fill(const struct region *reg, uintptr_t from, uintptr_t to, int byte);

/* ---- serve.c ----------------------------------------------------------- */

struct hp_arena *arena_at(int i);
uintptr_t arena_near(int i);
int arena_count(void);
/* A new arena with the preload's settings and HP_ARENA_* @flags, placed
 * near @near (0: anywhere). */
struct hp_arena *arena_make(uintptr_t near, unsigned flags);
/* How many more arenas there is room for. */
int arena_room(void);
/* Take @a (made by fixed.c for one fixed range, near @near) into the table,
 * for that range alone: its index, or -1 when the table is full.  It is
 * destroyed when the range's allocation is released. */
int arena_adopt_fixed(struct hp_arena *a, uintptr_t near);

/* Serve a new mapping of @len bytes of @kind near @hint; with @reach, only
 * near enough to it.  The address, or 0 with errno set. */
uintptr_t serve(int kind, uintptr_t hint, size_t len, int prot, bool reach);
/* Make [p, p+len) of @reg read as zero. */
void zero(const struct region *reg, uintptr_t p, size_t len);
/* Make @reg's pages fresh (zero, then @prot), as a new mapping of the kernel's. */
int fresh(struct region *reg, int prot);
/* Apply @prot to @reg (and note it ran, if @prot has X); @whole: the change
 * covers all of reg's allocation. */
int region_protect(struct region *reg, bool whole, int prot);

enum cut_mode {
	CUT_FREE,  /* munmap: an allocation with no region left goes back */
	CUT_REUSE, /* the pages get a new region at once: keep the allocation */
	CUT_GIVE,  /* a kernel mapping takes the pages: the allocation, tainted
		    * by the caller (hooks.c gave()), never returns to hugeperm */
};
/* Take [start, end) out of the regions. */
void cut(uintptr_t start, uintptr_t end, enum cut_mode mode);

/* ---- code_range.c ------------------------------------------------------ */

int code_range_reconcile(const struct region *any, uintptr_t from, uintptr_t to);
/* code_range_reconcile() every code range that has regions in [start, end). */
int code_range_reconcile_range(uintptr_t start, uintptr_t end);
/* What a protection change must reconcile: the spans of the code range
 * regions whose protection (or key) it changed, merged when they meet a
 * block in common; past CHANGED_SPANS, the last one grows to take the rest. */
#define CHANGED_SPANS 8
struct code_range_changed {
	uintptr_t lo[CHANGED_SPANS], hi[CHANGED_SPANS];
	int n;
};
void code_range_changed_note(struct code_range_changed *c, const struct region *reg);
/* code_range_reconcile_range() each span, then merge the regions there
 * that are alike and meet: 0, or -1 if a reconcile failed. */
int code_range_changed_apply(const struct code_range_changed *c);
/* MADV_DONTNEED of [start, end), every page in a region: the code range
 * regions there read zero after.  Accessible ones are zeroed now; PROT_NONE
 * ones lose their bytes in the record (stale until zeroed), and a block
 * left with no bytes to read is dropped whole, no split.  @none_only
 * (MADV_FREE: the pages may keep their bytes or read zero) leaves the
 * accessible ones alone.  0, or -1 if a reconcile failed. */
int code_range_discard(uintptr_t start, uintptr_t end, bool none_only);
/* [start, end) of a code range holds bytes of the program's that the
 * regions do not know of (a reservation's pages copied in as it is
 * adopted): its blocks are never dropped while they hold them. */
void code_range_keep(uintptr_t start, uintptr_t end);
/* Around a munmap of [start, end): note the code ranges it cuts into, then
 * reconcile and drop the pages of those that live on. */
void code_range_unmap_begin(uintptr_t start, uintptr_t end);
void code_range_unmap_end(uintptr_t start, uintptr_t end);

/* ---- code_range_flip.c ------------------------------------------------- */

/* mprotect of [start, end) (page-aligned, no key) when its pages all lie in
 * the regions of one code range: 0, or -1 with errno; 1 if the call is not
 * such (the caller takes the general path), nothing changed then. */
int code_range_flip(uintptr_t start, uintptr_t end, int prot);

/* ---- reserve.c --------------------------------------------------------- */

/* A reservation the placement rule calls a code range: mapped by the
 * kernel near @hint and held until it holds code.  Its address, or 0 (the
 * program's call goes to the kernel as it is).  Under the lock. */
uintptr_t reserve_map(uintptr_t hint, size_t len);
/* Does [addr, addr+len) meet a held reservation?  Without the lock: a
 * call that does is made under it. */
bool reserve_meets(const void *addr, size_t len);
/* Under the lock, before the program's call on [start, end) that asks for
 * @prot: the held reservations it meets are adopted as code ranges when
 * @prot has PROT_EXEC.  0, or -1 with errno (ENOMEM) when one was lost. */
int reserve_before(uintptr_t start, uintptr_t end, int prot);
/* Under the lock: the kernel unmapped or moved [start, end). */
void reserve_unmapped(uintptr_t start, uintptr_t end);

/* ---- shared.c --------------------------------------------------------- */

/* A MAP_SHARED (or MAP_SHARED_VALIDATE) mmap of the program's: mapped by
 * the kernel, placed 2 MiB-aligned when the program lets us and followed
 * when it may hold code.  As mmap(2) returns. */
void *shared_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
/* [addr, addr+len) was unmapped, moved or mapped over: stop following it. */
void shared_unmapped(const void *addr, size_t len);
/* The program gave [addr, addr+len) @prot: executable shared memory is code. */
void shared_protected(const void *addr, size_t len, int prot);
/* Map @len bytes at an address @skew past a 2 MiB boundary; MAP_FAILED
 * (nothing mapped) if there is no room. */
void *shared_map_skewed(size_t len, int prot, int flags, int fd, off_t off, uintptr_t skew);
/* Start the collapser thread if it does not run yet (takes the shared lock). */
void shared_start_collapser(void);
/* Has a library been loaded whose calls bypass the hooks (RTLD_DEEPBIND)? */
bool shared_bypassed(void);

/* ---- shared_pack.c ---------------------------------------------------- */

/* A small (< 2 MiB) executable MAP_SHARED view of a whole tmpfs file
 * (sljit's chunk), asked for without an address: placed in a slot of a
 * 2 MiB window of the preload's.  MAP_FAILED (nothing done) when it is not
 * such a view or there is no slot: the caller maps it as asked. */
void *shared_pack_mmap(size_t len, int prot, int flags, int fd);
/* Does [addr, addr+len) meet a window?  Without the lock. */
bool shared_pack_meets(const void *addr, size_t len);
/* munmap of a range that meets a window: its slots' pages stay mapped,
 * ours again; the rest is unmapped.  As munmap(2) returns. */
int shared_pack_munmap(void *addr, size_t len);
/* The kernel unmapped or mapped over [addr, addr+len) (munmap, MAP_FIXED,
 * the target of mremap): RW views of packed chunks there are gone. */
void shared_pack_changed(const void *addr, size_t len);
/* mremap is moving [addr, addr+len): the views there live on elsewhere, so
 * their slots are never used again. */
void shared_pack_moving(const void *addr, size_t len);
/* The collapser's pass over the windows: true if it found work. */
bool shared_pack_pass(void);
/* Does [start, end) meet a window?  Under shared_pack.c's lock. */
bool shared_pack_in_window(uintptr_t start, uintptr_t end);

/* ---- shared_adopt.c --------------------------------------------------- */

/* Set the view table up for fork (before shared_pack.c's handlers). */
void shared_views_ready(void);
/* The program mapped @len bytes of @fd at @addr, MAP_SHARED, from @off: a
 * view to know of if the file is on tmpfs. */
void shared_views_note(int fd, const void *addr, size_t len, off_t off);
/* [start, end) was unmapped or mapped over: the views there are gone. */
void shared_views_gone(uintptr_t start, uintptr_t end);
/* [start, end) is moved by mremap: its files are never adopted. */
void shared_views_moved(uintptr_t start, uintptr_t end);
/* The file (dev, ino) was adopted: its views are the preload's now. */
void shared_views_forget(dev_t dev, ino_t ino);
/* May the file behind @fd (about to be closed), whose RX view is the slot
 * [rx, rx+len), be adopted: nothing but that view and one other (its
 * address and protection left in *rw, *rw_prot) can reach it? */
bool shared_adopt_check(int fd, dev_t dev, ino_t ino, uintptr_t rx, size_t len, uintptr_t *rw,
			int *rw_prot);
/* ---- fixed.c ----------------------------------------------------------- */

/* A MAP_FIXED_NOREPLACE request the preload may serve at its address. */
bool fixed_wanted(const void *addr, size_t len, int prot, int flags, int fd);
/* Serve it there: the address; 0 when hugeperm cannot (the kernel is
 * asked then, and answers as ever, EEXIST included); MAP_FAILED with errno
 * when it failed half-way (ENOMEM).  @flips_pages: the program's own range,
 * whose pages it flips one by one (YJIT); false for a reservation adopted
 * in place (reserve.c).  Under the lock. */
uintptr_t fixed_serve(uintptr_t addr, size_t len, int prot, bool flips_pages);
/* A MAP_32BIT request: served below 2 GiB, or 0 (the kernel's then).
 * Under the lock. */
uintptr_t low_serve(int kind, size_t len, int prot);

/* ---- report.c ---------------------------------------------------------- */

/* The counters as the report reads them, and the arenas' statistics summed. */
void hp_preload_counts(struct hp_preload_counts *out);
int hp_preload_stats(struct hp_stats *sum);
/* Keep what arena @a did (its event counters) for the report: before it
 * is destroyed. */
void hp_preload_retire(struct hp_arena *a);
void hp_stats_add(struct hp_stats *sum, const struct hp_stats *st);
void hp_preload_report(void);

#endif
