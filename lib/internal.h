/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the modules of libhugeperm share.
 *
 * Glossary
 *   page      4 KiB, the unit handed out.  run: contiguous pages of one
 *             allocation.
 *   block     2 MiB, aligned, 512 pages: what the kernel can map with one
 *             PMD entry.
 *   chunk     1 GiB of reserved address space, aligned, 512 blocks.  The
 *             address -> block lookup is chunk_map[addr >> 30] + offset.
 *   class     a protection value (PROT_* bits, 0..7).  Every block has a
 *             home class: the protection its free pages carry.
 *   uniform   all 512 pages of a block carry one protection: it can be
 *             huge-mapped.  mixed: some page differs: the kernel maps it
 *             with 4 KiB entries.
 *   split     a huge-mapped block made mixed (the kernel splits the PMD:
 *             thp_split_pmd).  collapse: mixed -> uniform, then
 *             MADV_COLLAPSE puts the huge mapping back.
 *   steal     serving class C from a block whose home class is another:
 *             a fallback that makes a block mixed; always counted.
 *   coverage  in-use bytes in huge-mapped blocks / all in-use bytes.
 *
 * Layering (calls only go down; only os.c makes system calls):
 *
 *   api ── cache ── pool ── protect ── collapse
 *                    │         │
 *                    └─────── block (pure: bitmaps, per-page protections)
 *                    │
 *                   arena (chunks, address map, committing blocks) ── os
 *
 * Locking: one mutex per arena guards its blocks, pools and counters, except
 * on the fast path (cache.c): per-thread bins, the chunk map (atomic, read
 * inside liburcu-bp read-side sections) and the per-page allocation states
 * (astate, atomics) are used without it.
 * mprotect is called with the lock held (it must be atomic with the
 * bookkeeping); MADV_COLLAPSE never is: the block is marked `collapsing`,
 * the lock dropped, and protection changes on that block wait on the
 * arena's condition variable until the collapse returns.
 */
#ifndef HP_INTERNAL_H
#define HP_INTERNAL_H

#include <errno.h>
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

struct hp_buf;

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

/* ---------------------------------------------------------------------
 * os: the system-call boundary (os.c).  Each function returns 0 or the
 * errno captured right after the call.  A struct of hooks so that unit
 * tests can drive the policy code with fakes and a fake clock.
 * ------------------------------------------------------------------- */

/* What the machine offers, probed once (hp_os_probe). */
struct hp_probe {
	long hugetlb_2m_free; /* free - reserved 2 MiB pages; -1 = no pool */
	long hugetlb_1g_free; /* likewise for 1 GiB; -1 = kernel has none */
	bool thp;	      /* THP 'enabled' allows madvise */
	char thp_mode[16];    /* always / madvise / never */
	bool collapse;	      /* MADV_COLLAPSE works */
	bool vma_names;	      /* PR_SET_VMA_ANON_NAME works */
	long memfd_noexec;    /* vm.memfd_noexec: 0, 1, 2; -1 = kernel has none */
	int nnodes;	      /* NUMA nodes with memory (1 without NUMA) */
	long node_hugetlb_2m_free[HP_MAX_NODES]; /* per-node 2 MiB pools; -1: none */
};

struct hp_os {
	/* Reserve @size bytes of address space aligned to @align, PROT_NONE,
	 * wherever the kernel has room. */
	int (*reserve)(size_t size, size_t align, uintptr_t *out);
	/* Reserve [@slot, @slot+@size) if nothing is mapped there; else the
	 * free part of it nearest @near, whole blocks and at least @min bytes,
	 * as [*lo, *hi).  EEXIST when there is none (or it was mapped meanwhile). */
	int (*reserve_in)(uintptr_t slot, size_t size, uintptr_t near, size_t min, uintptr_t *lo,
			  uintptr_t *hi);
	int (*release)(uintptr_t addr, size_t size);
	/* Back [addr, addr+size) with memory of @backend, protection @prot,
	 * populated, each byte set to @fill (-1: left zero), preferably on
	 * NUMA node @node (-1: no policy: the kernel's default).  Replaces the
	 * reservation there.  PROT_NONE on THP or small pages is not populated:
	 * the range may take huge pages, but takes no memory until it is made
	 * accessible and touched. */
	int (*commit)(uintptr_t addr, size_t size, int prot, int backend, int fill, int node);
	/* Give the memory back; the range becomes a reservation again. */
	int (*decommit)(uintptr_t addr, size_t size);
	/* Drop the pages' memory (MADV_DONTNEED): they read as zero after,
	 * the mapping and its protection stay. */
	int (*discard)(uintptr_t addr, size_t size);
	/* Fault in [addr, addr+size) for writing (MADV_POPULATE_WRITE). */
	int (*populate)(uintptr_t addr, size_t size);
	int (*protect)(uintptr_t addr, size_t size, int prot);
	int (*collapse)(uintptr_t addr, size_t size);
	int (*name)(uintptr_t addr, size_t size, const char *name);
	/* Shared memory for blocks with a writable alias: a memfd of @size
	 * (hugetlb 2 MiB pages for a hugetlb @backend, else shmem). */
	int (*shm_create)(size_t size, int backend, int *fd);
	void (*shm_close)(int fd);
	/* Map [off, off+size) of @fd at @alias (RW) and at @addr (@prot),
	 * populated, each byte set to @fill.  Replaces the reservations. */
	int (*shm_commit)(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			  int prot, int backend, int fill, int node);
	/* Both views back to reservations, the file's pages freed. */
	int (*shm_decommit)(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size);
	/* Copy @size bytes from @from into [off, off+size) of @fd. */
	int (*shm_copy)(int fd, size_t off, uintptr_t from, size_t size);
	/* Map [off, off+size) of @fd again at @alias (RW) and @addr (@prot),
	 * replacing what is there, without populating. */
	int (*shm_remap)(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size, int prot,
			 int backend);
	/* Install (or remove) guard pages: MADV_GUARD_INSTALL, Linux 6.13+. */
	int (*guard)(uintptr_t addr, size_t size, bool install);
	/* The library's own stores into block memory (hp_write's copy, trap
	 * and poison fills): memcpy from @src, or memset to @byte when @src
	 * is NULL.  The simulator's model has no memory and stores nothing. */
	void (*store)(uintptr_t dst, const void *src, int byte, size_t size);
	/* Write through /proc/self/mem: no protection changes. */
	int (*mem_write)(uintptr_t dst, const void *src, size_t size);
	uint64_t (*now_ns)(void);
	/* Metadata memory (zeroed); never malloc, so the preload can use it. */
	void *(*meta_alloc)(size_t size);
	void (*meta_free)(void *p, size_t size);
	/* An RCU grace period: lock-free readers of the chunk map are done. */
	void (*synchronize)(void);
	/* Is the range PMD-mapped now (PAGEMAP_SCAN)?  0 with *huge, or errno. */
	int (*huge_mapped)(uintptr_t addr, size_t size, bool *huge);
	/* The NUMA node of the CPU the caller runs on (0 without NUMA). */
	int (*cpu_node)(void);
};

extern const struct hp_os hp_os_linux;
void hp_os_probe(struct hp_probe *pr);
/* Write @len bytes to @fd with write(2), retrying short writes. */
void hp_os_write_all(int fd, const char *buf, size_t len);
/* Create (or truncate) @path for writing: the fd, or -errno. */
int hp_os_create_file(const char *path);
void hp_os_close(int fd);
uint64_t hp_os_realtime_ns(void);
/* The caller's kernel thread id. */
uint32_t hp_os_tid(void);
/* Print "hugeperm: <msg>" to stderr and abort. */
__attribute__((noreturn)) void hp_os_die(const char *msg);
int hp_os_page_size_ok(void);

/* ---------------------------------------------------------------------
 * options (options.c): one table, read from HUGEPERM_<NAME>.
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
	  "local|interleave|N: the node new blocks are placed on")

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

extern struct hp_options hp_opt;
/* Read the environment once; later calls do nothing. */
void hp_options_init(void);
/* Parse one option value; 0, or EINVAL with the default kept. */
int hp_option_parse(enum hp_option_id id, const char *value, long *out);
void hp_options_print(int fd);
const char *hp_collapse_mode_name(int mode);

/* ---------------------------------------------------------------------
 * block (block.c): per-block state, pure functions, no system calls.
 * ------------------------------------------------------------------- */
enum hp_block_state {
	HP_BLOCK_RESERVED = 0, /* address space only */
	HP_BLOCK_EMPTY,	       /* committed, no page used, on the arena's free list */
	HP_BLOCK_ACTIVE,       /* committed, in a class pool (or full) */
	HP_BLOCK_SPAN,	       /* part of an allocation of whole blocks */
};

struct hp_block {
	uintptr_t base;			 /* address of the block */
	struct hp_chunk *chunk;		 /* chunk holding the block */
	struct hp_block *next, *prev;	 /* free list or pool bucket */
	struct hp_block *qnext;		 /* collapse queue */
	uint64_t used[HP_BITMAP_WORDS];	 /* page handed out */
	uint64_t start[HP_BITMAP_WORDS]; /* page starts an allocation */
	uint8_t prot[HP_BLOCK_PAGES];	 /* each page's protection, as the kernel has it */
	uint32_t astate[HP_BLOCK_PAGES]; /* at an allocation's first page: HP_A_* | pages << 2 */
	uint16_t nprot[HP_NCLASS];	 /* pages per protection */
	uint16_t nused;			 /* pages handed out */
	uint16_t longest_free;		 /* longest run of free pages */
	uint32_t span;			 /* blocks in this span (head only), else 0 */
	uint32_t span_head;		 /* index of the span's head block in the chunk */
	uint8_t home;			 /* home class */
	uint8_t state;			 /* enum hp_block_state */
	uint8_t backend;		 /* enum hp_backend of its memory */
	uint8_t pool_set;		 /* HP_SET_* */
	uint8_t node;			 /* pools of this node index (NUMA) */
	int8_t bucket;			 /* pool bucket, -1 when in none */
	bool huge;			 /* believed huge-mapped now */
	bool lazy;			 /* committed without memory (class NONE): pages
					  * arrive when first touched; populated before
					  * a collapse */
	bool queued;			 /* in the collapse queue */
	bool collapsing;		 /* MADV_COLLAPSE in flight, lock dropped */
	bool collapse_off;		 /* EINVAL from MADV_COLLAPSE: never again */
	bool aliased;			 /* shared memory with an RW alias view */
	uint8_t nfailed;		 /* consecutive ENOMEM/EBUSY failures */
	uint64_t uniform_since_ns;	 /* when it last became uniform */
	uint64_t retry_at_ns;		 /* no collapse before this (backoff) */
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
#define HP_A_MASK 3u

static inline uint32_t hp_astate(const struct hp_block *b, unsigned page)
{
	return __atomic_load_n(&b->astate[page], __ATOMIC_ACQUIRE);
}

static inline void hp_astate_set(struct hp_block *b, unsigned page, uint32_t state, size_t n)
{
	__atomic_store_n(&b->astate[page], state | (uint32_t)n << 2, __ATOMIC_RELEASE);
}

/* LIVE -> HELD; true if this caller won.  *n (if not NULL) gets the
 * allocation's pages. */
static inline bool hp_astate_claim(struct hp_block *b, unsigned page, size_t *n)
{
	uint32_t cur = __atomic_load_n(&b->astate[page], __ATOMIC_RELAXED);
	if ((cur & HP_A_MASK) != HP_A_LIVE)
		return false;
	if (n)
		*n = cur >> 2;
	return __atomic_compare_exchange_n(&b->astate[page], &cur, (cur & ~HP_A_MASK) | HP_A_HELD,
					   false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* How far address @x is from the range [lo, hi): 0 inside it. */
static inline uintptr_t hp_distance(uintptr_t lo, uintptr_t hi, uintptr_t x)
{
	return x < lo ? lo - x : x >= hi ? x - hi + 1 : 0;
}

static inline bool hp_block_uniform(const struct hp_block *b, int *prot)
{
	for (int c = 0; c < HP_NCLASS; c++)
		if (b->nprot[c] == HP_BLOCK_PAGES) {
			if (prot)
				*prot = c;
			return true;
		}
	return false;
}

bool hp_backend_is_hugetlb(int backend);

/* Freed pages of @b drop their memory: class NONE is reservations, which
 * read as zero when made accessible again (hugetlb memory cannot). */
static inline bool hp_block_drops_free(const struct hp_block *b)
{
	return b->home == PROT_NONE && !hp_backend_is_hugetlb(b->backend);
}

static inline bool hp_test_bit(const uint64_t *map, unsigned i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

void hp_block_init(struct hp_block *b, uintptr_t base, struct hp_chunk *chunk);
/* Reset the page state of a committed block: all free, all @prot. */
void hp_block_reset(struct hp_block *b, int prot);
/* Best-fitting free run of @n pages: its first page, or -1. */
int hp_block_find_run(const struct hp_block *b, unsigned n);
/* Mark [first, first+n) used as one allocation. */
void hp_block_take(struct hp_block *b, unsigned first, unsigned n);
/* Mark [first, first+n) free. */
void hp_block_give(struct hp_block *b, unsigned first, unsigned n);
/* Length of the allocation starting at @first, or 0 if none starts there. */
unsigned hp_block_alloc_len(const struct hp_block *b, unsigned first);
/* First page of the allocation that holds page @page, or -1. */
int hp_block_alloc_start(const struct hp_block *b, unsigned page);
/* Record that [first, first+n) now have protection @prot. */
void hp_block_set_prot(struct hp_block *b, unsigned first, unsigned n, int prot);
/* Do all of [first, first+n) have @prot already? */
bool hp_block_prot_is(const struct hp_block *b, unsigned first, unsigned n, int prot);

/* ---------------------------------------------------------------------
 * arena (arena.c): chunks, the address map, committing blocks.
 * ------------------------------------------------------------------- */
struct hp_chunk {
	uintptr_t base;		/* 1 GiB aligned: the slot */
	uint32_t lo, hi;	/* its blocks [lo, hi) are ours: the rest of a slot
				 * near a hint may hold the program's mappings */
	struct hp_arena *arena; /* owner */
	struct hp_chunk *next;	/* arena's chunk list */
	uint32_t ncommitted;	/* blocks not RESERVED */
	bool hugetlb_1g;	/* backed whole by one 1 GiB page */
	int shm_fd[2];		/* memfds of aliased blocks: [0] shmem, [1] hugetlb; -1: none */
	uintptr_t alias_base;	/* the chunk's RW alias view; 0: none yet */
	struct hp_block blocks[HP_CHUNK_BLOCKS];
};

/* The part of its slot chunk @c holds: [start, end). */
static inline uintptr_t hp_chunk_start(const struct hp_chunk *c)
{
	return c->base + (uintptr_t)c->lo * HP_BLOCK_SIZE;
}

static inline uintptr_t hp_chunk_end(const struct hp_chunk *c)
{
	return c->base + (uintptr_t)c->hi * HP_BLOCK_SIZE;
}

/* Where @addr of aliased block @b can be written. */
static inline uintptr_t hp_alias_of(const struct hp_block *b, uintptr_t addr)
{
	return b->chunk->alias_base + (addr - b->chunk->base);
}

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
};

struct hp_arena {
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
	int collapse_mode;	      /* enum hp_collapse_mode */
	bool allow_rwx;		      /* HP_ARENA_ALLOW_RWX or HUGEPERM_ALLOW_RWX */
	bool alias;		      /* executable classes get shared blocks with an alias */
	bool poison;		      /* fill freed writable pages with HP_POISON_BYTE */
	bool traced;		      /* calls go to the HUGEPERM_TRACE file (api.c) */
	bool guard_madvise;	      /* MADV_GUARD_INSTALL works (until it says EINVAL) */
	size_t max_bytes;	      /* cap on committed bytes, 0 = none */
	size_t committed_bytes;	      /* blocks not RESERVED */
	size_t reserved_bytes;	      /* chunks */
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
	struct hp_counters n; /* event counters */
	pthread_t thread;     /* background collapse thread */
	bool thread_running, thread_stop;
	struct hp_arena *next_arena; /* registry, for fork handling */
	pthread_cond_t thread_wake;
};

/* Choose the backend for @want on a machine like @pr (api.c): 0 with
 * *backend and *mutable_backend set, or ENODEV; the reason goes to @why. */
int hp_backend_choose(const struct hp_probe *pr, int want, int *backend, int *mutable_backend,
		      struct hp_buf *why);
/* Set up @a with backends already decided. */
int hp_arena_init(struct hp_arena *a, const struct hp_os *os, int backend, int mutable_backend);
void hp_arena_fini(struct hp_arena *a);
/* 47-bit user address space / 1 GiB chunks: 128 Ki entries, 1 MiB of
 * zero-fill BSS that is only touched where chunks exist. */
#define HP_MAP_BITS (47 - HP_CHUNK_SHIFT)
extern struct hp_chunk *hp_chunk_map[1UL << HP_MAP_BITS];

/* The block holding @addr, or NULL if no arena owns it.  No lock: chunks
 * are published with a release store; inside an RCU read-side section the
 * chunk stays valid even if it is being retired. */
static inline struct hp_block *hp_block_of(uintptr_t addr)
{
	uintptr_t idx = addr >> HP_CHUNK_SHIFT;
	if (idx >= (1UL << HP_MAP_BITS))
		return NULL;
	struct hp_chunk *c = __atomic_load_n(&hp_chunk_map[idx], __ATOMIC_ACQUIRE);
	if (!c)
		return NULL;
	uintptr_t i = (addr >> HP_BLOCK_SHIFT) & (HP_CHUNK_BLOCKS - 1);
	return i >= c->lo && i < c->hi ? &c->blocks[i] : NULL;
}
/* An EMPTY block of @pool_set for class @home on node @node (committing
 * one if needed), taken off the free list; NULL with errno ENOMEM. */
struct hp_block *hp_arena_take_block(struct hp_arena *a, int pool_set, int home, int node);
/* @n contiguous free blocks for an allocation of whole blocks. */
struct hp_block *hp_arena_take_span(struct hp_arena *a, int pool_set, unsigned n, int prot,
				    int node);
/* The node whose pools serve the calling thread now (policy applied). */
int hp_arena_node(struct hp_arena *a);
/* Wait until no collapse is in flight on @b.  Lock held. */
void hp_block_wait_collapse(struct hp_arena *a, struct hp_block *b);
/* Put an EMPTY block on the free list. */
void hp_arena_put_block(struct hp_arena *a, struct hp_block *b);
/* After fork(), in the child: forget the parent's collapse thread and
 * in-flight collapses, give aliased blocks memory of their own. */
int hp_arena_fork_child(struct hp_arena *a);
/* Return EMPTY blocks to the kernel; how many, or -errno. */
long hp_arena_trim_blocks(struct hp_arena *a);
/* Unpublish the chunks with nothing committed: the list to release after
 * a grace period.  Lock held. */
struct hp_chunk *hp_arena_retire_chunks(struct hp_arena *a);
/* Give retired chunks' address space and metadata back.  No lock needed:
 * nobody can reach them any more. */
void hp_arena_release_chunks(struct hp_arena *a, struct hp_chunk *list);
bool hp_backend_is_hugetlb(int backend);
/* The backend of the blocks of pool set @set. */
int hp_set_backend(const struct hp_arena *a, int set);

/* ---------------------------------------------------------------------
 * protect (protect.c): protection changes with split accounting.
 * ------------------------------------------------------------------- */
/* Change @n pages from page @first of block @b to @prot; the range may run
 * on into the following blocks of the chunk (a span).  One mprotect for the
 * whole range, skipped when nothing changes; counts splits and queues
 * collapses.  Lock held.  0 or errno. */
int hp_pages_protect(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n, int prot);
/* Before a change to part of @b: a uniform THP block we believe 4K-mapped
 * may be huge now (khugepaged, or a lazy block's first touch); ask the
 * kernel, so that the split is counted.  Lock held. */
void hp_block_learn_huge(struct hp_arena *a, struct hp_block *b);

/* ---------------------------------------------------------------------
 * collapse (collapse.c): the queue, its policy, the optional thread.
 * ------------------------------------------------------------------- */
/* Queue @b if it needs a collapse; true if it was queued now.  Lock held. */
bool hp_collapse_enqueue(struct hp_arena *a, struct hp_block *b);
/* @b became uniform; queue it if it needs a collapse, and wake (or start)
 * the collapse thread.  Lock held. */
void hp_collapse_note_uniform(struct hp_arena *a, struct hp_block *b);
/* hp_collapse_run() flags */
#define HP_RUN_NOW   0x1 /* ignore the delay (sync mode) */
#define HP_RUN_FORCE 0x2 /* ignore the backoff too (hp_collapse_pending) */
/* Run queued collapses that are due under @flags; @budget: at most this
 * many blocks (0: no limit); @tried, if not NULL, gets how many blocks were
 * tried.  Lock NOT held.  Returns the blocks collapsed. */
int hp_collapse_run(struct hp_arena *a, int flags, int budget, int *tried);
/* Wait on @cond for at most @ns nanoseconds.  Lock held. */
void hp_os_cond_wait_ns(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t ns);
void hp_collapse_thread_stop(struct hp_arena *a);
/* Take the blocks of chunk @c off the queue.  Lock held. */
void hp_collapse_forget(struct hp_arena *a, struct hp_chunk *c);

/* ---------------------------------------------------------------------
 * pool (pool.c): placement.
 * ------------------------------------------------------------------- */
/* @guarded: a guard page before and after, in a block of HP_SET_GUARDED. */
void *hp_pool_alloc(struct hp_arena *a, size_t npages, int prot, int home, bool guarded);
int hp_pool_free(struct hp_arena *a, uintptr_t addr);
/* Free the allocation at page @first of @b, already claimed (HELD): back
 * to the home class, scrubbed, given back.  On error it is LIVE again. */
int hp_pool_free_claimed(struct hp_arena *a, struct hp_block *b, unsigned first);
/* Fill freed pages: int3 for executable classes, poison if asked. */
void hp_pool_scrub(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n);
/* Pages already at the home class and scrubbed go back to the block. */
void hp_pool_give_back(struct hp_arena *a, struct hp_block *b, unsigned first, size_t n);
int hp_pool_protect(struct hp_arena *a, uintptr_t addr, size_t npages, int prot);
size_t hp_pool_usable(struct hp_arena *a, uintptr_t addr);
/* Make @npages at @addr, inside one live allocation, read as zero: written
 * where that splits nothing, else their memory dropped.  0 or errno. */
int hp_pool_discard(struct hp_arena *a, uintptr_t addr, size_t npages);
/* Copy into a live allocation whatever its protection.  0 or errno. */
int hp_pool_write(struct hp_arena *a, uintptr_t dst, const void *src, size_t size);
/* A writable address for @addr (itself, or its alias); 0 with *err set. */
uintptr_t hp_pool_writable(struct hp_arena *a, uintptr_t addr, int *err);
void hp_pool_insert(struct hp_arena *a, struct hp_block *b);
void hp_pool_remove(struct hp_arena *a, struct hp_block *b);

/* ---------------------------------------------------------------------
 * cache (cache.c): per-thread caches; no lock, no system call on a hit.
 * ------------------------------------------------------------------- */
/* The bin for allocations of @npages, or -1 if they are not cached. */
int hp_tcache_bin(size_t npages);
/* An allocation of bin @k, class @cls (protection == home): from this
 * thread's cache, refilled under the lock if empty.  NULL with errno. */
void *hp_tcache_alloc(struct hp_arena *a, int k, int cls);
/* Free @addr into this thread's cache: 0 done, an errno if it was freed
 * (under the lock) and that failed, -1 if the caller must take the locked
 * path (not the start of a live allocation, as far as a lock-free look
 * can tell). */
int hp_tcache_free(struct hp_arena *a, uintptr_t addr);
/* hp_trim: drain this thread's cache, make the others drain.  Lock held. */
void hp_tcache_drain_mine(struct hp_arena *a);
/* allocs and frees served by caches.  Lock held. */
void hp_tcache_counts(struct hp_arena *a, uint64_t *allocs, uint64_t *frees);
/* Drain and free every cache (arena destroy); after fork, @keep_mine keeps
 * (drained) the forking thread's own.  Lock held. */
void hp_tcache_destroy_all(struct hp_arena *a, bool keep_mine);

/* The registry of arenas (api.c).  hp_registry_lock: @a locked if it still
 * exists with @id (registry lock held too until hp_registry_unlock), else
 * NULL. */
struct hp_arena *hp_registry_lock(struct hp_arena *a, uint64_t id);
void hp_registry_unlock(struct hp_arena *a);
bool hp_registry_has(struct hp_arena *a, uint64_t id);

/* ---------------------------------------------------------------------
 * stats (stats.c)
 * ------------------------------------------------------------------- */
void hp_stats_collect(struct hp_arena *a, struct hp_stats *st);

/* ---------------------------------------------------------------------
 * formatting without malloc or stdio (fmt.c): for error and preload paths.
 * ------------------------------------------------------------------- */
struct hp_buf {
	char *p;    /* buffer */
	size_t cap; /* its size */
	size_t len; /* bytes used; output past cap is dropped */
};
void hp_buf_str(struct hp_buf *b, const char *s);
void hp_buf_u64(struct hp_buf *b, uint64_t v);
void hp_buf_hex(struct hp_buf *b, uint64_t v);
/* "ENOENT" for ENOENT, and so on for the errnos we report; "errno" else. */
const char *hp_errno_name(int e);
void hp_buf_pad(struct hp_buf *b, size_t col);
/* Fixed-point: v with @decimals digits after the point. */
void hp_buf_fixed(struct hp_buf *b, double v, int decimals);
const char *hp_prot_name(int prot);

#endif /* HP_INTERNAL_H */
