/* SPDX-License-Identifier: MIT */
/*
 * types.h - the words of libhugeperm: its constants and structures.
 *
 * Glossary
 *   page      4 KiB, the unit handed out.  run: contiguous pages of one
 *             allocation.
 *   block     2 MiB, aligned, 512 pages: what the kernel can map with one
 *             PMD entry.
 *   chunk     1 GiB slot of address space, aligned, 512 blocks: the
 *             arena's reservation (PROT_NONE, taken by the OS layer's
 *             reserve/reserve_in).  The address -> block lookup is
 *             chunk_map[addr >> 30] + offset.
 *   committed a block with memory behind it; an uncommitted block is only
 *             address space in its chunk's reservation.
 *   class     a protection value (PROT_* bits, 0..7), held in variables
 *             named `cls`.  Every block has a home class (`home`): the
 *             protection its free pages carry.  `prot` is a raw PROT_*
 *             value to or from the kernel or the caller.
 *   lazy      a block of class NONE committed without memory: pages arrive
 *             when first made accessible and touched.  A lazy allocation
 *             is a PROT_NONE allocation in such a block.
 *   alias     the writable second view of an executable block's memory
 *             (memfd-backed, MAP_SHARED): code is written through it.
 *   uniform   all 512 pages of a block carry one protection: it can be
 *             huge-mapped.  mixed: some page differs: the kernel maps it
 *             with 4 KiB entries.
 *   split     a huge-mapped block made mixed (the kernel splits the PMD:
 *             thp_split_pmd).  collapse: mixed -> uniform, then
 *             MADV_COLLAPSE puts the huge mapping back.
 *   steal     serving class C from a block whose home class is another:
 *             a fallback that makes a block mixed; always counted.
 *   coverage  in-use bytes in huge-mapped blocks / all in-use bytes.
 *   pool index  which of the arena's per-node pools a block is in: the
 *             NUMA node modulo HP_MAX_NODES.
 */
#ifndef HP_TYPES_H
#define HP_TYPES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hugeperm.h"

#define HP_PAGE_SHIFT	12
#define HP_PAGE_SIZE	(1UL << HP_PAGE_SHIFT)
#define HP_BLOCK_SHIFT	21
#define HP_BLOCK_SIZE	(1UL << HP_BLOCK_SHIFT)
#define HP_BLOCK_PAGES	(HP_BLOCK_SIZE / HP_PAGE_SIZE) /* 512 */
#define HP_CHUNK_SHIFT	30
#define HP_CHUNK_SIZE	(1UL << HP_CHUNK_SHIFT)
#define HP_CHUNK_BLOCKS (HP_CHUNK_SIZE / HP_BLOCK_SIZE) /* 512 */
#define HP_MAX_ALLOC	HP_CHUNK_SIZE
#define HP_BITMAP_WORDS (HP_BLOCK_PAGES / 64)
#define HP_PROT_MASK	(PROT_READ | PROT_WRITE | PROT_EXEC)
/* Buckets of partial blocks by free pages, HP_BUCKET_PAGES wide. */
#define HP_BUCKET_PAGES 8
#define HP_NBUCKETS	(HP_BLOCK_PAGES / HP_BUCKET_PAGES) /* 64 */

/* NUMA: nodes 0..HP_MAX_NODES-1 get pools of their own; a larger node
 * number shares the pools of node % HP_MAX_NODES (its blocks are still
 * bound to the real node). */
#define HP_MAX_NODES	   8
#define HP_NUMA_LOCAL	   (-1) /* HUGEPERM_NUMA=local: the calling thread's node */
#define HP_NUMA_INTERLEAVE (-2) /* new blocks round-robin over the nodes */

/* Freed and fresh pages of executable classes hold int3 (x86): stale or
 * stray code traps.  Freed writable pages may be poisoned. */
#define HP_TRAP_BYTE   0xcc
#define HP_POISON_BYTE 0xa5

/* What the machine offers, probed once (struct hp_os's probe). */
struct hp_probe {
	long hugetlb_2m_free; /* free - reserved 2 MiB pages; -1 = no pool */
	long hugetlb_1g_free; /* likewise for 1 GiB; -1 = kernel has none */
	bool thp;	      /* THP 'enabled' allows madvise */
	char thp_mode[16];    /* always / madvise / never */
	bool collapse;	      /* MADV_COLLAPSE works */
	bool vma_names;	      /* PR_SET_VMA_ANON_NAME works */
	long memfd_noexec;    /* vm.memfd_noexec: 0, 1, 2; -1 = kernel has none */
	int nnodes;	      /* NUMA nodes with memory (1 without NUMA) */
	long page_size;	      /* the kernel's base page size */
	long node_hugetlb_2m_free[HP_MAX_NODES]; /* per-node 2 MiB pools; -1: none */
};

/* The longest purge delay (HUGEPERM_PURGE_MS, hp_config.purge_ms): an hour. */
#define HP_PURGE_MS_MAX 3600000

/* ---------------------------------------------------------------------
 * The options table (options.c reads it from HUGEPERM_<NAME>).
 * ------------------------------------------------------------------- */
#define HP_OPTIONS(X)                                                                              \
	X(VERBOSE, verbose, 0, 0, 1, "print the options and the backend decision")                 \
	X(STATS, stats, 0, 0, 1, "print the default arena's statistics at exit")                   \
	X(BACKEND, backend, HP_BACKEND_AUTO, 0, 4, "auto|hugetlb-1g|hugetlb-2m|thp|small")         \
	X(COLLAPSE, collapse, HP_COLLAPSE_DEFERRED, 1, 3, "deferred|sync|off")                     \
	X(COLLAPSE_THREAD, collapse_thread, 0, 0, 1, "run deferred collapses in a thread")         \
	X(COLLAPSE_DELAY_MS, collapse_delay_ms, 50, 0, 60000,                                      \
	  "the thread collapses a block once it has stayed uniform this long")                     \
	X(COLLAPSE_RATE, collapse_rate, 100, 1, 100000, "the thread's collapses per second")       \
	X(COLLAPSE_RETRIES, collapse_retries, 3, 0, 100, "EAGAIN retries per attempt")             \
	X(CHECKED, checked, 0, 0, 1, "abort with a message on bad input")                          \
	X(ALLOW_RWX, allow_rwx, 0, 0, 1, "allow pages writable and executable at once")            \
	X(ALIAS, alias, 1, 0, 1, "executable blocks get a writable alias (memfd)")                 \
	X(POISON, poison, 0, 0, 1, "fill freed writable pages with 0xa5")                          \
	X(MAX_MB, max_mb, 0, 0, (1L << 30), "cap on the default arena's memory, MiB (0: none)")    \
	X(NUMA, numa, HP_NUMA_LOCAL, HP_NUMA_INTERLEAVE, 1023,                                     \
	  "local|interleave|N: the node new blocks are placed on")                                 \
	X(PURGE_MS, purge_ms, 1000, -1, HP_PURGE_MS_MAX,                                           \
	  "free blocks go back to the kernel once free this long (0: at once, -1: never)")

enum hp_option_id {
#define HP_OPT_ENUM(NAME, field, def, lo, hi, help) HP_OPT_##NAME,
	HP_OPTIONS(HP_OPT_ENUM)
#undef HP_OPT_ENUM
		HP_NOPTIONS
};

struct hp_options {
#define HP_OPT_FIELD(NAME, field, def, lo, hi, help) long field;
	HP_OPTIONS(HP_OPT_FIELD)
#undef HP_OPT_FIELD
};

/* ---------------------------------------------------------------------
 * A block's state (block.c keeps it; no system calls).
 * ------------------------------------------------------------------- */
enum hp_block_state {
	HP_BLOCK_UNCOMMITTED = 0, /* address space only: part of its chunk's reservation */
	HP_BLOCK_EMPTY,		  /* committed, no page used, on the arena's free list */
	HP_BLOCK_ACTIVE,	  /* committed, in a class pool (or full) */
	HP_BLOCK_SPAN,		  /* part of an allocation of whole blocks */
};

struct hp_block {
	uintptr_t base;			 /* address of the block */
	struct hp_chunk *chunk;		 /* chunk holding the block */
	uint32_t *astate;		 /* [HP_BLOCK_PAGES], at an allocation's first page:
					  * HP_A_* | pages << 2; in its chunk's pages[],
					  * next to base: one cache line for hp_free */
	uint8_t *prot;			 /* [HP_BLOCK_PAGES], each page's protection, as the
					  * kernel has it; in its chunk's pages[] */
	struct hp_block *next, *prev;	 /* free list or pool bucket */
	struct hp_block *qnext;		 /* collapse queue */
	uint64_t used[HP_BITMAP_WORDS];	 /* page handed out */
	uint64_t start[HP_BITMAP_WORDS]; /* page starts an allocation */
	uint64_t dirty[HP_BITMAP_WORDS]; /* page may hold non-zero bytes: handed out
					  * or filled since the kernel zeroed it */
	uint16_t nprot[HP_NCLASS];	 /* pages per protection */
	uint16_t nused;			 /* pages handed out */
	uint16_t longest_free;		 /* longest run of free pages */
	uint32_t span;			 /* blocks in this span (head only), else 0 */
	uint32_t span_head;		 /* index of the span's head block in the chunk */
	uint8_t home;			 /* home class: the protection of its free pages */
	uint8_t state;			 /* enum hp_block_state */
	uint8_t backend;		 /* enum hp_backend of its memory */
	uint8_t pool_set;		 /* HP_SET_* */
	uint8_t pool_idx;		 /* in the arena's pools of this index (its NUMA
					  * node % HP_MAX_NODES) */
	int8_t bucket;			 /* pool bucket, -1 when in none */
	bool huge;			 /* believed huge-mapped now */
	bool lazy;			 /* a lazy block: committed without memory
					  * (class NONE), pages arrive when first
					  * touched; populated before a collapse */
	bool queued;			 /* in the collapse queue */
	bool fresh_q;			 /* ... queued at commit, not huge (collapse.c) */
	bool collapsing;		 /* MADV_COLLAPSE in flight, lock dropped */
	bool purging;			 /* its decommit in flight, lock dropped (purge.c) */
	bool collapse_off;		 /* EINVAL from MADV_COLLAPSE: never again */
	bool cold;			 /* lazy, left to small pages (HP_ARENA_LAZY_SMALL)
					  * until a partial protection change says code
					  * is written in it: never collapsed before */
	bool aliased;			 /* shared memory with a writable alias view */
	uint8_t nfailed;		 /* consecutive ENOMEM/EBUSY failures */
	uint64_t uniform_since_ns;	 /* when it last became uniform */
	uint64_t free_since_ns;		 /* when it last became EMPTY (purge.c) */
	uint64_t retry_at_ns;		 /* no collapse before this (backoff) */
	uint64_t huge_since_ns;		 /* when a collapse of ours last made it huge */
	uint8_t nflaps;			 /* split again soon after that, so many times in
					  * a row: its collapse waits for quiet (collapse.c) */
};

/*
 * Allocation states, kept at the first page of each allocation and changed
 * with atomics, so that hp_free can claim an allocation without the arena
 * lock: exactly one caller wins LIVE -> HELD, a second free of the same
 * pointer loses and gets EINVAL.  HELD: in a thread cache, or being freed.
 */
#define HP_A_FREE 0u
#define HP_A_LIVE 1u
#define HP_A_HELD 2u
#define HP_A_CODE                                                                                  \
	3u /* a page of packed code (code.c): used, but no caller's                                \
	    * allocation: hp_free, hp_protect, hp_discard see none */
#define HP_A_MASK 3u

/* ---------------------------------------------------------------------
 * Packed code (code.c): code allocations smaller than a page.
 * ------------------------------------------------------------------- */
#define HP_CODE_NCLS 13		  /* size classes, 1 to 32 granules of 64 bytes */
#define HP_CODE_FULL (1ULL << 63) /* in hp_code_page.xfree: on its holder's full list */

struct hp_tcache;

/* One 4 KiB page of packed code: chunks of one size class.  What the
 * fast paths (code_fast.h) read is in its first 64 bytes, the class's
 * figures among it (no table lookups through cls), but for req. */
struct hp_code_page {
	uint64_t live;			  /* chunk i handed out, as its holder sees it:
					   * written by the holder only (atomic) */
	uint64_t xfree;			  /* chunk i freed by another thread, not yet
					   * taken off live (atomic); HP_CODE_FULL */
	uintptr_t addr;			  /* the page */
	uintptr_t alias;		  /* its writable alias; 0: none (private block) */
	struct hp_arena *inline_to;	  /* arena, while on with an alias that the real
					   * OS's store hook writes: the fast paths store
					   * through it in line; else NULL (atomic) */
	struct hp_tcache *holder;	  /* the cache allocating from it (atomic); NULL:
					   * on the arena's stack */
	uint64_t full;			  /* live when every chunk is handed out */
	uint32_t inv;			  /* (off * inv) >> 24: the chunk at page offset off */
	uint16_t size;			  /* chunk bytes */
	uint8_t cls;			  /* size class */
	bool on;			  /* a code page now (atomic) */
	struct hp_arena *arena;		  /* owner, while on */
	struct hp_code_page *next, *prev; /* the holder's list, or (next) the arena's stack */
	uint16_t req[63];		  /* requested bytes of live chunk i (statistics) */
	uint8_t pad[42];		  /* to 256 bytes: no cache line holds two pages'
					   * state (two holders would write it) */
};
_Static_assert(sizeof(struct hp_code_page) == 256, "a code page's state is 4 cache lines");

/* A block's code pages, allocated with the first of them and never freed
 * (code.c: lookups need no RCU section). */
struct hp_code_meta {
	struct hp_code_page page[HP_BLOCK_PAGES];
};

/* The code state of the blocks of one 1 GiB slot of address space. */
struct hp_code_slot {
	struct hp_code_meta *block[HP_CHUNK_BLOCKS]; /* atomic; NULL: never had code */
};

/* Code counters: per cache (written by its owner), and the arena's for
 * caches gone and calls without one (atomic). */
struct hp_code_counts {
	uint64_t allocs;       /* packed code allocations (frees, bytes in use
				* and lost: from the pages, at stats time) */
	uint64_t writes_alias; /* hp_write into code through an alias */
};

/* ---------------------------------------------------------------------
 * The arena (arena.c): chunks, the blocks in them, pools and counters.
 * ------------------------------------------------------------------- */
/* A block's per-page arrays, kept out of its record (struct hp_block
 * points at them) so that a new chunk's records stay small: these are
 * first touched when the block is committed, not when the chunk is made
 * (its metadata is fresh, zero-filled memory). */
struct hp_block_pages {
	uint32_t astate[HP_BLOCK_PAGES];
	uint8_t prot[HP_BLOCK_PAGES];
};

struct hp_chunk {
	uintptr_t base;		/* 1 GiB aligned: the slot */
	uint32_t lo, hi;	/* its blocks [lo, hi) are ours: the rest of a slot
				 * near a hint may hold the program's mappings */
	struct hp_arena *arena; /* owner */
	struct hp_chunk *next;	/* arena's chunk list */
	uint32_t ncommitted;	/* blocks committed (not UNCOMMITTED) */
	bool hugetlb_1g;	/* backed whole by one 1 GiB page */
	int alias_fd[2];	/* memfds of aliased blocks: [0] shmem, [1] hugetlb; -1: none */
	uintptr_t alias_base;	/* the chunk's RW alias view; 0: none yet */
	struct hp_block blocks[HP_CHUNK_BLOCKS];
	struct hp_block_pages pages[HP_CHUNK_BLOCKS]; /* blocks[i]'s arrays: last, so
						       * a new chunk leaves them untouched */
};

/* Pool sets: blocks that are kept apart. */
#define HP_SET_PRIMARY 0 /* the arena's backend */
#define HP_SET_MUTABLE 1 /* THP blocks for class changes, when the backend is hugetlb */
#define HP_SET_GUARDED 2 /* small-page blocks, one guard page around each allocation */
#define HP_NSETS       3

struct hp_pool {
	struct hp_block *bucket[HP_NBUCKETS]; /* partial blocks by free pages */
	uint64_t mask;			      /* non-empty buckets */
};

struct hp_counters {
	uint64_t splits[HP_NCLASS];
	uint64_t collapses[HP_NCLASS];
	uint64_t steals[HP_NCLASS];
	uint64_t collapse_attempts, collapse_eagain, collapse_enomem, collapse_ebusy,
		collapse_einval, collapse_other;
	uint64_t mprotect_calls, allocs, frees, trimmed_blocks;
	uint64_t writes_direct, writes_alias, writes_procmem, writes_flip;
	uint64_t guards_madvise, guards_prot;
	uint64_t khugepaged; /* blocks found huge that we had not collapsed */
	/* Free blocks given back on their own, and refused (purge.c). */
	uint64_t purged_blocks, purge_failed;
	/* Fresh memory faulted in, and the time it and the collapses took. */
	uint64_t fresh_blocks, fresh_ns, collapse_ns;
};

/* Per-thread caches (cache.c): bins of 1, 2, 4, 8, 16 pages per class. */
#define HP_TCACHE_BINS	5
#define HP_TCACHE_SLOTS 64 /* entries of the 1-page bin; bin k has 64 >> k */

struct hp_tbin {
	uint32_t n;			 /* entries held */
	uintptr_t slot[HP_TCACHE_SLOTS]; /* allocations, HELD */
};

struct hp_tcache {
	pthread_t owner;
	uint64_t epoch;		       /* the arena's trim_epoch when last drained */
	uint64_t allocs, frees;	       /* served here; written by the owner only */
	struct hp_tcache *next, *prev; /* the arena's list (arena lock) */
	struct hp_tbin bin[HP_NCLASS][HP_TCACHE_BINS];
	struct hp_code_page *code_cur[HP_CODE_NCLS];	 /* packed code: the page allocated from */
	struct hp_code_page *code_partial[HP_CODE_NCLS]; /* ... and the others held */
	struct hp_code_page *code_full[HP_CODE_NCLS];	 /* ... those found full */
	uint64_t code_xseen[HP_CODE_NCLS];		 /* arena's code_xfull when last looked */
	struct hp_code_counts code_n;			 /* written by the owner only */
};

/* hp_arena.magic: a live arena, and one destroyed (its first page is kept
 * a while so that a stale handle reads this: api.c). */
#define HP_ARENA_LIVE 0x6870617265616e61ULL /* "hparena" */
#define HP_ARENA_DEAD 0x6465616461726e61ULL

struct hp_arena {
	uint64_t magic;		   /* HP_ARENA_LIVE, or HP_ARENA_DEAD once destroyed:
				    * the public calls check it (atomic) */
	pthread_mutex_t lock;	   /* guards everything below */
	uint64_t id;		   /* unique for the process's lifetime, never 0 */
	uint64_t trim_epoch;	   /* bumped by hp_trim: caches drain (atomic) */
	struct hp_tcache *tcaches; /* every thread's cache of this arena */
	uint64_t ncache_allocs;	   /* served by caches since freed */
	uint64_t ncache_frees;
	pthread_cond_t collapse_done; /* signalled when a collapse returns */
	const struct hp_os *os;	      /* system calls (or fakes) */
	int backend;		      /* enum hp_backend for new blocks */
	int mutable_backend;	      /* for blocks whose pages change class: THP or small */
	bool fall_back;		      /* the backend was chosen automatically: when its
				       * hugetlb pool runs dry, go on with mutable_backend */
	bool primary_hugetlb;	      /* HP_SET_PRIMARY may hold hugetlb blocks (even after
				       * a fall back): class changes and lazy allocations
				       * go to HP_SET_MUTABLE */
	int collapse_mode;	      /* enum hp_collapse_mode */
	bool collapse_thread;	      /* deferred collapses run in a thread of the arena's */
	bool collapse_quiet;	      /* HP_ARENA_COLLAPSE_QUIET: a block that keeps being
				       * split is collapsed once quiet (collapse.c) */
	bool lazy_small;	      /* HP_ARENA_LAZY_SMALL: lazy blocks stay on small
				       * pages until written in part (collapse.c) */
	bool near_exact;	      /* HP_ARENA_NEAR_EXACT: a chunk near hp_config.near
				       * may be a slot's part as small as asked for */
	uint32_t collapse_delay_ms;   /* the thread collapses blocks uniform this long */
	uint32_t collapse_rate;	      /* the thread's collapses per second */
	uint32_t collapse_retries;    /* EAGAIN retries per attempt */
	bool verbose;		      /* say on stderr what changed (fall back, no alias) */
	bool allow_rwx;		      /* HP_ARENA_ALLOW_RWX or HUGEPERM_ALLOW_RWX */
	bool alias;		      /* executable classes get shared blocks with an alias */
	bool poison;		      /* fill freed writable pages with HP_POISON_BYTE */
	bool traced;		      /* calls go to the HUGEPERM_TRACE file (api.c) */
	bool guard_madvise;	      /* MADV_GUARD_INSTALL works (until it says EINVAL) */
	size_t max_bytes;	      /* cap on committed bytes, 0 = none */
	size_t committed_bytes;	      /* committed blocks */
	size_t reserved_bytes;	      /* the chunks' reservations */
	struct hp_chunk *chunks;      /* all chunks */
	int numa;		      /* HP_NUMA_LOCAL, HP_NUMA_INTERLEAVE or a node */
	uintptr_t near;		      /* hp_config.near: place chunks and blocks close to it */
	int nnodes;		      /* nodes (1: no NUMA, no mbind at all) */
	unsigned next_node;	      /* interleave: the node of the next new block */
	struct hp_node_pools {
		struct hp_block *free_blocks[HP_NSETS];	   /* EMPTY blocks, per pool set */
		struct hp_pool pools[HP_NSETS][HP_NCLASS]; /* partial blocks per set, class */
	} node[HP_MAX_NODES];
	struct hp_block *queue; /* collapse queue (LIFO) */
	uint32_t nqueued;
	uint32_t nfresh;      /* queued blocks with fresh_q (atomic read) */
	struct hp_counters n; /* event counters */
	pthread_t thread;     /* background collapse thread */
	bool thread_running, thread_stop;
	/* The collapse thread sleeps until no queued block can be due before
	 * (UINT64_MAX: none queued; atomic): calls move it on as they push
	 * thread_next's deadline, and kick the thread for a block due sooner
	 * (collapse.c).  thread_next2_ns: when the others can be due. */
	uint64_t thread_until_ns;
	struct hp_block *thread_next;
	uint64_t thread_next2_ns;
	uint32_t thread_signals;     /* kicks (tests) */
	bool thread_kick;	     /* kicked since it last looked (thread_lock) */
	struct hp_arena *next_arena; /* the registry of arenas (fork.c) */
	pthread_cond_t thread_wake;  /* the collapse thread sleeps on it with thread_lock, */
	pthread_mutex_t thread_lock; /* not with the arena lock (collapse.c) */
	/* Giving free blocks back on their own (purge.c). */
	int32_t purge_ms;	/* -1: never, 0: at once, else after this long free */
	bool purge_threaded;	/* a purge thread may be started (real arenas) */
	bool purge_running;	/* the purge thread exists (atomic read) */
	bool purge_stop;	/* it is asked to end */
	uint64_t purge_next_ns; /* the next block due, 0: none (atomic read) */
	pthread_t purge_thread;
	pthread_cond_t purge_wake;
	struct hp_code_page *code_stack[HP_CODE_NCLS]; /* code pages held by no cache, not
							* full (lock-free push, taken whole) */
	struct hp_code_counts code_n;		       /* caches gone, calls without one */
	uint64_t code_xfull[HP_CODE_NCLS]; /* frees into pages on a cache's full list (atomic) */
};

#endif /* HP_TYPES_H */
