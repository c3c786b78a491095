/* SPDX-License-Identifier: MIT */
/*
 * hugeperm.h - page allocator for executable and permission-changing memory
 * on huge pages.
 *
 * hugeperm hands out 4 KiB pages in permission classes (the ordinary PROT_*
 * values) from 2 MiB blocks that it keeps uniform in protection, so that the
 * kernel can map each block with one huge (PMD) entry.  When protection
 * changes make a block mixed, the kernel splits its huge mapping; when the
 * block is uniform again hugeperm asks the kernel to collapse it back
 * (MADV_COLLAPSE).
 *
 * Every call is thread-safe.  Calls behave like the system calls they stand
 * beside: pointer-returning calls give NULL and set errno (like mmap), the
 * others return 0 or -1 and set errno (like mprotect and munmap).  A failed
 * call changes nothing.  See hugeperm(3).
 */
#ifndef HUGEPERM_H
#define HUGEPERM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HP_API __attribute__((visibility("default")))
#else
#define HP_API
#endif

/*
 * HP_HOME(prot) - place an allocation in the class @prot although its pages
 * start with another protection.  The usual case is a JIT that writes code
 * into fresh pages and then makes them executable:
 *
 *	p = hp_alloc(size, PROT_READ | PROT_WRITE | HP_HOME(PROT_READ | PROT_EXEC));
 *	...emit code into p...
 *	hp_protect(p, size, PROT_READ | PROT_EXEC);
 *
 * The pages are taken from an RX block, which stays mixed only while the code
 * is being written and becomes uniform (and collapsible) again after the
 * hp_protect.  Without HP_HOME the pages would come from an RW block, and
 * every function made executable would split it.
 */
#define HP_HOME_SHIFT 8
#define HP_HOME(prot) ((((prot)&7) | 8) << HP_HOME_SHIFT)

/*
 * HP_ZERO - an allocation whose pages read as zero, as a fresh mmap's do.
 * Or'ed into the @prot of hp_alloc(), hp_alloc_guarded() and their arena
 * forms.  Only pages that may hold bytes are written: those handed out (or
 * filled with int3) since the kernel zeroed the block's memory; a new
 * block, or the untouched part of a recycled one, costs nothing.  Pages
 * from the calling thread's cache were handed out before: a writable
 * allocation from it is cleared whole.
 */
#define HP_ZERO (1 << 12)

/* Number of protection classes: one per combination of PROT_READ/WRITE/EXEC. */
#define HP_NCLASS 8

/* Flags for hp_stats_print(). */
#define HP_STATS_JSON 0x1 /* one JSON object instead of a table */

/* Backends, best first.  hp_stats.backend holds one of these. */
enum hp_backend {
	HP_BACKEND_AUTO = 0,	   /* probe and choose the best available */
	HP_BACKEND_HUGETLB_1G = 1, /* hugetlbfs 1 GiB pages */
	HP_BACKEND_HUGETLB_2M = 2, /* hugetlbfs 2 MiB pages */
	HP_BACKEND_THP = 3,	   /* anonymous memory + MADV_HUGEPAGE */
	HP_BACKEND_SMALL = 4,	   /* anonymous 4 KiB pages, never huge */
};

/* Collapse policies (HUGEPERM_COLLAPSE). */
enum hp_collapse_mode {
	HP_COLLAPSE_DEFAULT = 0,  /* in hp_config: what HUGEPERM_COLLAPSE says */
	HP_COLLAPSE_DEFERRED = 1, /* queue; run by hp_collapse_pending() or the thread */
	HP_COLLAPSE_SYNC = 2,	  /* at the end of the call that made a block uniform */
	HP_COLLAPSE_OFF = 3,	  /* never */
};

/* Per-class statistics; the index into hp_stats.cls is the PROT_* value. */
struct hp_class_stats {
	uint64_t used_bytes;	  /* bytes in use whose pages have this protection */
	uint64_t huge_used_bytes; /* ... of which in huge-mapped blocks */
	uint64_t blocks;	  /* blocks whose home class this is */
	uint64_t huge_blocks;	  /* ... of which huge-mapped now */
	uint64_t splits;	  /* huge blocks of this home class made mixed */
	uint64_t collapses;	  /* successful collapses of blocks of this class */
	uint64_t steals;	  /* allocations of this class served from another's block */
};

struct hp_stats {
	size_t size;		    /* set by the caller to sizeof(struct hp_stats) */
	int backend;		    /* enum hp_backend in use for new blocks */
	int collapse_mode;	    /* enum hp_collapse_mode */
	uint64_t reserved_bytes;    /* virtual address space reserved */
	uint64_t committed_bytes;   /* memory backing blocks */
	uint64_t used_bytes;	    /* pages handed out */
	uint64_t free_bytes;	    /* committed pages not handed out */
	uint64_t cached_bytes;	    /* pages held in thread caches */
	uint64_t blocks;	    /* committed blocks */
	uint64_t free_blocks;	    /* committed blocks with no page in use */
	uint64_t huge_blocks;	    /* blocks believed huge-mapped now */
	uint64_t mixed_blocks;	    /* blocks whose pages differ in protection */
	uint64_t huge_used_bytes;   /* used bytes in huge-mapped blocks */
	double coverage;	    /* huge_used_bytes / used_bytes, pages of class NONE
				     * left out (1.0 when nothing is used) */
	uint64_t splits;	    /* huge blocks made mixed by a protection change */
	uint64_t collapse_attempts; /* MADV_COLLAPSE calls */
	uint64_t collapses;	    /* ... that succeeded */
	uint64_t collapse_eagain;   /* failures by errno */
	uint64_t collapse_enomem;
	uint64_t collapse_ebusy;
	uint64_t collapse_einval;
	uint64_t collapse_other;
	uint64_t collapse_pending; /* blocks queued for collapse now (a flapping
				    * block split again stays queued for up to
				    * two quiet periods: HP_ARENA_COLLAPSE_QUIET) */
	uint64_t steals;	   /* allocations served from another class's block */
	uint64_t mprotect_calls;   /* mprotect calls made for protection changes */
	uint64_t allocs, frees;	   /* successful hp_alloc / hp_free calls */
	uint64_t trimmed_blocks;   /* blocks returned to the kernel by hp_trim */
	uint64_t aliased_blocks;   /* blocks with a writable alias (executable classes) */
	uint64_t writes_direct;	   /* hp_write into pages already writable */
	uint64_t writes_alias;	   /* ... through a block's alias: a memcpy */
	uint64_t writes_procmem;   /* ... through /proc/self/mem: no protection change */
	uint64_t writes_flip;	   /* ... by flipping the pages writable and back */
	uint64_t guards_madvise;   /* guard pages installed with MADV_GUARD_INSTALL */
	uint64_t guards_prot;	   /* ... as PROT_NONE pages (older kernels) */
	uint64_t khugepaged;	   /* blocks the kernel's khugepaged collapsed before we did */
	struct hp_class_stats cls[HP_NCLASS];
	uint64_t purged_blocks; /* free blocks given back on their own (HUGEPERM_PURGE_MS) */
	uint64_t purged_bytes;	/* ... their bytes */
	uint64_t purge_failed;	/* purges the kernel refused (the block stays free, tried again) */
	/* Packed code (hp_code_alloc up to HP_CODE_MAX_PACKED; larger code
	 * allocations are counted with allocs and frees). */
	uint64_t code_allocs, code_frees; /* successful hp_code_alloc / hp_code_free */
	uint64_t code_bytes;		  /* in use: the allocations' size classes */
	uint64_t code_lost_bytes;	  /* ... of which lost to rounding up to a class */
	uint64_t code_pages;		  /* pages holding packed code (in used_bytes) */
	/* Address space handed out without memory: blocks of class NONE that
	 * were committed lazily and never made accessible (hp_alloc(size,
	 * PROT_NONE), a JIT's code range before it commits).  They are in
	 * blocks, not in committed_bytes; their pages are in lazy_bytes, not in
	 * used_bytes, cached_bytes or free_bytes. */
	uint64_t lazy_blocks; /* such blocks */
	uint64_t lazy_bytes;  /* pages handed out in them */
	/* What fresh memory and collapses cost in time, wall clock of the
	 * system calls (the kernel clears the pages it faults in; on a virtual
	 * machine the host may have to back them as well). */
	uint64_t fresh_blocks; /* 2 MiB blocks the library's calls gave memory: a
				* commit that populated or filled them, a lazy
				* block's populate before its collapse when the
				* kernel says it held no page (Linux 6.7+) */
	uint64_t fresh_ns;     /* ... the calls that did it (map, populate, fill) */
	uint64_t collapse_ns;  /* time in MADV_COLLAPSE calls, all attempts */
};

/*
 * struct hp_config - settings of an arena.  Zero means "the default", which
 * is what the HUGEPERM_* environment options say (see hugeperm(3)).
 */
struct hp_config {
	size_t size;	    /* set by the caller to sizeof(struct hp_config) */
	int backend;	    /* enum hp_backend */
	int collapse_mode;  /* enum hp_collapse_mode */
	size_t max_bytes;   /* cap on committed memory; 0 = no cap */
	unsigned int flags; /* HP_ARENA_* */
	void *near;	    /* place memory as close to this address as the
			     * address space allows (e.g. within a JIT's branch
			     * range of its code); NULL: anywhere */
	int purge_ms;	    /* free blocks go back to the kernel after this many
			     * ms free: 0 = the default (HUGEPERM_PURGE_MS),
			     * HP_PURGE_NOW = at once, HP_PURGE_NEVER = never */
};

#define HP_PURGE_NEVER (-1) /* hp_config.purge_ms: free blocks stay until hp_trim() */
#define HP_PURGE_NOW   (-2) /* hp_config.purge_ms: given back as soon as they are free */

#define HP_ARENA_ALLOW_RWX 0x1 /* allow pages writable and executable at once */
#define HP_ARENA_NO_ALIAS  0x2 /* executable blocks are private: hp_write uses /proc/self/mem */
/* A block split again soon after a collapse (a JIT flipping single pages of
 * it, again and again) is collapsed only once it has stayed uniform for a
 * quiet period, in the arena's collapse thread: one split and one collapse
 * per burst of flips instead of one each per flip (see hugeperm(3)). */
#define HP_ARENA_COLLAPSE_QUIET 0x4
/* Lazily committed blocks (PROT_NONE allocations) are left to small pages
 * when made accessible whole, and get a huge page only once a protection
 * change of part of the block shows that code is written there page by
 * page (a JIT range filled with traps up front, then written piecewise:
 * only the blocks that hold code take huge pages; see hugeperm(3)). */
#define HP_ARENA_LAZY_SMALL 0x8
/* hp_config.near is where the program needs the memory (a range it mapped
 * at an address of its own): a chunk there may be as small as the first
 * allocation, not the least part of a 1 GiB slot taken near a mere hint
 * (see hugeperm(3)). */
#define HP_ARENA_NEAR_EXACT 0x10

struct hp_arena; /* opaque */

/**
 * hp_alloc() - allocate pages.
 * @size: bytes; rounded up to whole 4 KiB pages.  Up to 1 GiB.
 * @prot: the pages' protection, PROT_NONE or PROT_READ/WRITE/EXEC bits,
 *        optionally with HP_HOME(class) and HP_ZERO.
 *
 * Allocations of up to 2 MiB come from one block of their class; larger ones
 * take whole contiguous blocks.  The memory is zeroed the first time a block
 * is used (executable classes: filled with int3 traps); later it holds what
 * the previous owner left (executable classes: int3 again), unless @prot
 * has HP_ZERO.
 *
 * PROT_NONE allocations are reservations: their blocks take no memory
 * (committed lazily, THP-eligible) until hp_protect() makes pages
 * accessible and they are touched, and such pages read as zero.  A JIT can
 * reserve its code range this way and commit it piece by piece; once a block
 * of it is uniform again it is collapsed like any other.  With a hugetlb
 * backend they come from THP blocks (hugetlb pages are taken at map time).
 *
 * Return: a page-aligned pointer, or NULL with errno set to EINVAL (size 0,
 * unknown bits in @prot), EACCES (write and execute together without
 * HUGEPERM_ALLOW_RWX), or ENOMEM (size too large, out of memory, or the
 * backend has no pages).  Thread-safe.
 */
HP_API void *hp_alloc(size_t size, int prot);

/**
 * hp_alloc_guarded() - hp_alloc() with a guard page on each side.
 *
 * Touching the page before or after the allocation raises SIGSEGV.  Guarded
 * allocations live in small-page blocks of their own, so that no guard ever
 * splits a huge mapping; the guards are installed with MADV_GUARD_INSTALL
 * (Linux 6.13+: no new mapping, no protection change), or as PROT_NONE pages
 * on older kernels.  hp_stats counts guard pages by method.
 * Return: as hp_alloc().
 */
HP_API void *hp_alloc_guarded(size_t size, int prot);

/**
 * hp_free() - free an allocation.
 * @ptr: a pointer returned by hp_alloc(); NULL is a no-op.
 *
 * The pages go back to their block's home class.
 * Return: 0, or -1 with errno EINVAL when @ptr is not the start of a live
 * allocation (foreign, interior, or already freed).  Thread-safe.
 */
HP_API int hp_free(void *ptr);

/**
 * hp_protect() - change the protection of pages of one allocation.
 * @ptr: page-aligned address inside an allocation.
 * @size: bytes, rounded up to whole pages; the range must stay inside the
 *        allocation.
 * @prot: new protection (PROT_* bits).
 *
 * Return: 0, or -1 with errno EINVAL (unaligned @ptr, size 0, unknown bits,
 * or a change to part of a hugetlb block, which the kernel cannot do),
 * ENOMEM (the range is not inside one live allocation, as mprotect(2) says of
 * unmapped pages), or EACCES (write and execute without opt-in).
 * Thread-safe.
 */
HP_API int hp_protect(void *ptr, size_t size, int prot);

/**
 * hp_write() - copy into an allocation, whatever its protection.
 * @dst: an address inside a live allocation.
 * @src: bytes to copy.
 * @size: how many; [dst, dst+size) must stay inside the allocation (for
 *        packed code, inside the bytes hp_code_alloc() gave: its size class).
 *
 * Writes code without making its pages writable: no page that another thread
 * may be executing changes protection, and no huge mapping is split.  The
 * way it is done, best first: a memcpy through the block's writable alias
 * (executable blocks are shared memory with a second, RW, never executable
 * view); a write through /proc/self/mem (where no alias exists); and only as
 * a last resort, the pages flipped writable (never executable) and back.
 * hp_stats counts the writes of each kind.  The instruction cache is kept
 * coherent (on x86 by the hardware).
 *
 * Return: 0, or -1 with errno ENOMEM (the range is not inside one live
 * allocation) or EINVAL (@src NULL).  Size 0 does nothing.  Thread-safe,
 * but the caller must not free the allocation meanwhile.
 */
HP_API int hp_write(void *dst, const void *src, size_t size);

/**
 * hp_discard() - make pages of one allocation read as zero, as
 * madvise(MADV_DONTNEED) does to private memory.
 * @ptr: page-aligned address inside an allocation.
 * @size: bytes, rounded up to whole pages, inside the allocation.
 *
 * Protection is unchanged.  Writable pages (and shared or hugetlb memory)
 * are zeroed in place, which splits nothing; the memory of other pages is
 * dropped: a whole block loses its huge mapping (and gets one again before
 * its next collapse), part of a huge block is split and counted.
 * Return: 0, or -1 with errno EINVAL (unaligned @ptr, size 0) or ENOMEM (the
 * range is not inside one live allocation).  Thread-safe.
 */
HP_API int hp_discard(void *ptr, size_t size);

/**
 * hp_writable() - a writable address for the byte at @ptr.
 *
 * For pages that are writable, @ptr itself; for executable blocks with an
 * alias, the alias address, valid for the allocation's life (no release is
 * needed: the alias is never executable).  JITs that emit in place write
 * there and run at @ptr.
 * Return: the address, or NULL with errno EINVAL (@ptr not in a live
 * allocation) or EOPNOTSUPP (no alias: use hp_write()).
 */
HP_API void *hp_writable(void *ptr);

/**
 * hp_usable_size() - bytes usable at an allocation.
 * Return: the size of the allocation starting at @ptr (a packed code
 * allocation: its size class, a multiple of 64), or 0 when @ptr is not the
 * start of a live allocation.  Thread-safe.
 */
HP_API size_t hp_usable_size(const void *ptr);

/*
 * Packed code: allocations smaller than a page.
 *
 * A JIT's functions are mostly tens to hundreds of bytes; a page each wastes
 * most of it.  hp_code_alloc() packs them, in 64-byte granules, into 4 KiB
 * pages of RX blocks (like the kernel's bpf_prog_pack), so that thousands of
 * functions share one huge-mapped block.  Code pages are never made writable:
 * code is written with hp_write() or through hp_writable() (the block's
 * alias), both of which accept any range inside one live code allocation.
 */
#define HP_CODE_ALIGN	   64	/* alignment (and granule) of packed code */
#define HP_CODE_MAX_PACKED 2048 /* larger code allocations take whole pages */

/**
 * hp_code_alloc() - allocate executable bytes.
 * @size: bytes, 1 to 1 GiB.  Up to HP_CODE_MAX_PACKED they are packed with
 *        other code allocations into shared pages (rounded up to a size
 *        class, a multiple of 64 bytes: hp_usable_size() says how much);
 *        larger sizes take whole pages of class PROT_READ | PROT_EXEC.
 *
 * The bytes are inside a PROT_READ | PROT_EXEC block and hold the trap byte
 * (int3 on x86) until written with hp_write() or through hp_writable().
 * Allocation and free take no lock on the common path (per-thread pages).
 * Packed code is not recorded by HUGEPERM_TRACE (its events are pages).
 * Return: a 64-byte-aligned pointer (page-aligned above HP_CODE_MAX_PACKED),
 * or NULL with errno EINVAL (size 0) or ENOMEM (size over 1 GiB, out of
 * memory, or the backend has no pages).  Thread-safe.
 */
HP_API void *hp_code_alloc(size_t size);

/**
 * hp_code_free() - free a code allocation.
 * @code: a pointer returned by hp_code_alloc(); NULL is a no-op.  Code
 *        over HP_CODE_MAX_PACKED (whole pages) is freed as hp_free() does.
 *
 * The bytes are filled with the trap byte again (through the alias or
 * hp_write()'s path: no page changes protection); a page whose allocations
 * are all free goes back to its block.  Any thread may free what another
 * allocated.  Callers must not run the code any more.
 * Return: 0, or -1 with errno EINVAL when @code is not the start of a live
 * code allocation (foreign, interior, or already freed).  Thread-safe.
 */
HP_API int hp_code_free(void *code);

/* The same in an arena. */
HP_API void *hp_arena_code_alloc(struct hp_arena *arena, size_t size);
HP_API int hp_arena_code_free(struct hp_arena *arena, void *code);

/**
 * hp_collapse_pending() - run the queued collapses now.
 * Return: how many blocks were collapsed back to a huge mapping.
 */
HP_API int hp_collapse_pending(void);

/**
 * hp_trim() - return blocks with no page in use to the kernel.
 * Return: 0, or -1 with errno from the kernel.
 */
HP_API int hp_trim(void);

/**
 * hp_stats_get() - snapshot of the default arena's statistics.
 * @st: filled in; st->size must be set to sizeof(*st) by the caller.
 * Return: 0, or -1 with errno EINVAL when @st is NULL or st->size is too small.
 */
HP_API int hp_stats_get(struct hp_stats *st);

/**
 * hp_stats_print() - write the statistics to @fd as a table, or as JSON
 * with HP_STATS_JSON.  Makes no allocation.
 */
HP_API void hp_stats_print(int fd, int flags);

/* Arenas: private pools with their own configuration. */
HP_API struct hp_arena *hp_arena_create(const struct hp_config *cfg);
HP_API void *hp_arena_alloc(struct hp_arena *arena, size_t size, int prot);
HP_API void *hp_arena_alloc_guarded(struct hp_arena *arena, size_t size, int prot);
HP_API int hp_arena_free(struct hp_arena *arena, void *ptr);
HP_API int hp_arena_protect(struct hp_arena *arena, void *ptr, size_t size, int prot);
HP_API int hp_arena_write(struct hp_arena *arena, void *dst, const void *src, size_t size);
HP_API int hp_arena_discard(struct hp_arena *arena, void *ptr, size_t size);
HP_API void *hp_arena_writable(struct hp_arena *arena, void *ptr);
HP_API int hp_arena_collapse_pending(struct hp_arena *arena);
HP_API int hp_arena_trim(struct hp_arena *arena);
HP_API int hp_arena_stats_get(struct hp_arena *arena, struct hp_stats *st);
HP_API void hp_arena_stats_print(struct hp_arena *arena, int fd, int flags);
/* Destroys the arena and unmaps all its memory, including live allocations. */
HP_API int hp_arena_destroy(struct hp_arena *arena);

/**
 * hp_stats_write() - write a snapshot to @fd: a table, or JSON with
 * HP_STATS_JSON.  For callers that combine several arenas' snapshots (the
 * preload sums its arenas).  Makes no allocation.
 */
HP_API void hp_stats_write(const struct hp_stats *st, int fd, int flags);

/**
 * hp_owns() - does hugeperm hold address space in [addr, addr+size)?
 *
 * True when any page of the range lies in a chunk that an arena has
 * reserved, whether or not it is allocated now.  Lock-free and makes no
 * system call: the preload asks it on every munmap and mprotect, to send
 * everything else straight to the kernel.
 * Return: 1 or 0.
 */
HP_API int hp_owns(const void *addr, size_t size);

/* Name of a backend ("thp", ...), for messages. */
HP_API const char *hp_backend_name(int backend);

#ifdef __cplusplus
}
#endif
#endif /* HUGEPERM_H */
