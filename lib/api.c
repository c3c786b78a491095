/* SPDX-License-Identifier: MIT */
/*
 * api.c - the public calls: checking input, the default arena, tracing.
 *
 * Every public call checks its arguments here, before any state changes,
 * and fails like the system call it stands beside (NULL or -1 with errno).
 * With HUGEPERM_CHECKED=1 a bad argument aborts instead, with a message
 * that names the call, the address and the reason.
 *
 * The default arena is set up on first use (pthread_once): options are
 * read, the machine probed, the backend chosen (backend.c).  An explicit
 * HUGEPERM_BACKEND that the machine cannot honour is an error there: the
 * reason is printed once and every call fails with ENODEV.  This is the
 * one place that turns the options (and an hp_config) into an arena's
 * settings; the layers below read only their arena's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-bp.h>

#include "api.h"
#include "code_fast.h"
#include "trace.h"

struct hp_arena hp_default_arena;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static int default_err; /* errno for every call when set-up failed */
/* Set once the default arena is up: its calls then skip pthread_once (a
 * call through the PLT and a load on every hp_code_alloc, hp_write...). */
bool hp_default_ready;
static bool default_done; /* default_init has run (whatever it found) */
static struct hp_probe probe;

/* HUGEPERM_TRACE=path: the calls of every arena made by hp_arena_create
 * and of the default arena, in the trace format (trace.h). */
static struct hp_trace_writer lib_trace;

#define TRACE(a, type, addr, size, prot)                                                           \
	do {                                                                                       \
		if ((a)->traced)                                                                   \
			hp_trace_record(&lib_trace, (type), (uintptr_t)(addr), (size), (prot), 0); \
	} while (0)

static void trace_at_exit(void)
{
	hp_trace_close(&lib_trace);
}

static void say(const char *s, size_t n)
{
	hp_os_linux.write_all(2, s, n);
}

/* Set up @a for @cfg (NULL: the options); 0 or errno, reason printed.
 * @fresh: the probe read the pools in this same call (default_init), so
 * they are not read again. */
static int arena_setup(struct hp_arena *a, const struct hp_config *cfg, bool announce, bool fresh)
{
	int want = cfg && cfg->backend ? cfg->backend : (int)hp_opt.backend;
	int backend, mutable_backend;
	char msg[512];
	struct hp_buf why = {msg, sizeof(msg), 0};

	/* The pools as they are now, not as the first arena found them: they
	 * are resized while we run (by an administrator, or a test).  Read
	 * once for the first arena: the probe read them microseconds ago, and
	 * each reading is 17 system calls (tests/e2e/preload_start.sh). */
	struct hp_probe now = probe;
	if (!fresh)
		hp_os_linux.probe_pools(&now);

	hp_buf_str(&why, "hugeperm: backend ");
	hp_buf_str(&why, hp_backend_name(want));
	hp_buf_str(&why, ": ");
	int err = hp_backend_choose(&now, want, &backend, &mutable_backend, &why);
	if (err) {
		hp_buf_str(&why, "\n");
		say(msg, why.len < why.cap ? why.len : why.cap);
		return err;
	}
	if (announce && hp_opt.verbose) {
		hp_buf_str(&why, " -> using ");
		hp_buf_str(&why, hp_backend_name(backend));
		hp_buf_str(&why, "; blocks that change protection in part: ");
		hp_buf_str(&why, hp_backend_name(mutable_backend));
		hp_buf_str(&why, "; MADV_COLLAPSE ");
		hp_buf_str(&why, probe.collapse ? "works" : "unavailable");
		hp_buf_str(&why, "; VMA names ");
		hp_buf_str(&why,
			   probe.vma_names ? "work" : "unavailable (no CONFIG_ANON_VMA_NAME)");
		hp_buf_str(&why, "; NUMA nodes ");
		hp_buf_u64(&why, (uint64_t)probe.nnodes);
		hp_buf_str(&why, hp_opt.numa == HP_NUMA_LOCAL	     ? " (local)"
				 : hp_opt.numa == HP_NUMA_INTERLEAVE ? " (interleave)"
								     : " (fixed node)");
		hp_buf_str(&why, "; vm.memfd_noexec ");
		if (probe.memfd_noexec >= 0)
			hp_buf_u64(&why, (uint64_t)probe.memfd_noexec);
		else
			hp_buf_str(&why, "absent");
		hp_buf_str(&why, "\n");
		say(msg, why.len < why.cap ? why.len : why.cap);
	}
	if (hp_opt.numa >= probe.nnodes) {
		char nmsg[160];
		struct hp_buf nb = {nmsg, sizeof(nmsg), 0};
		hp_buf_str(&nb, "hugeperm: HUGEPERM_NUMA=");
		hp_buf_u64(&nb, (uint64_t)hp_opt.numa);
		hp_buf_str(&nb, ": no such node with memory (this machine has ");
		hp_buf_u64(&nb, (uint64_t)probe.nnodes);
		hp_buf_str(&nb, probe.nnodes == 1 ? " node)\n" : " nodes)\n");
		say(nmsg, nb.len < nb.cap ? nb.len : nb.cap);
		return ENODEV;
	}
	struct hp_options opt = hp_opt; /* with what @cfg asks instead */
	opt.backend = want;
	if (cfg && cfg->collapse_mode)
		opt.collapse = cfg->collapse_mode;
	hp_arena_init(a, &hp_os_linux, backend, mutable_backend, &opt);
	a->numa = (int)hp_opt.numa;
	a->nnodes = probe.nnodes;
	if (!probe.collapse && a->collapse_mode != HP_COLLAPSE_OFF)
		a->collapse_mode = HP_COLLAPSE_OFF;
	a->allow_rwx = hp_opt.allow_rwx || (cfg && (cfg->flags & HP_ARENA_ALLOW_RWX));
	a->alias = hp_opt.alias && !(cfg && (cfg->flags & HP_ARENA_NO_ALIAS));
	a->collapse_quiet = cfg && (cfg->flags & HP_ARENA_COLLAPSE_QUIET);
	a->lazy_small = cfg && (cfg->flags & HP_ARENA_LAZY_SMALL);
	a->near_exact = cfg && (cfg->flags & HP_ARENA_NEAR_EXACT);
	a->poison = hp_opt.poison;
	a->traced = lib_trace.on;
	a->guard_madvise = true; /* until the kernel says EINVAL */
	a->max_bytes = cfg && cfg->max_bytes ? cfg->max_bytes : (size_t)hp_opt.max_mb << 20;
	/* hp_config grew near; callers built before it pass the old size. */
	if (cfg && cfg->size >= offsetof(struct hp_config, near) + sizeof(cfg->near))
		a->near = (uintptr_t)cfg->near;
	/* ... and purge_ms: 0 is the option's delay; HP_PURGE_NOW is 0 ms. */
	if (cfg && cfg->size >= offsetof(struct hp_config, purge_ms) + sizeof(cfg->purge_ms) &&
	    cfg->purge_ms)
		a->purge_ms = cfg->purge_ms == HP_PURGE_NOW ? 0 : cfg->purge_ms;
	a->purge_threaded = true; /* the real OS: a thread may purge (purge.c) */
	return 0;
}

static void print_stats_at_exit(void)
{
	hp_stats_print(2, 0);
}

static void probe_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	hp_options_init();
	hp_os_linux.probe(&probe);
	if (probe.page_size != (long)HP_PAGE_SIZE)
		hp_os_die("the page size is not 4 KiB");
	if (hp_opt.verbose)
		hp_options_print(2);
	const char *path = getenv("HUGEPERM_TRACE");
	if (path && *path) {
		int err = hp_trace_open(&lib_trace, &hp_os_linux, path, "library",
					program_invocation_short_name);
		if (err) {
			char msg[512];
			struct hp_buf b = {msg, sizeof(msg), 0};
			hp_buf_str(&b, "hugeperm: HUGEPERM_TRACE=");
			hp_buf_str(&b, path);
			hp_buf_str(&b, ": cannot create the file (");
			hp_buf_str(&b, hp_errno_name(err));
			hp_buf_str(&b, "); not tracing\n");
			say(msg, b.len < b.cap ? b.len : b.cap);
		} else {
			atexit(trace_at_exit);
		}
	}
}

static void default_init(void)
{
	probe_once();
	hp_fork_install(&lib_trace);
	default_err = arena_setup(&hp_default_arena, NULL, true, true);
	if (!default_err)
		hp_registry_add(&hp_default_arena);
	if (!default_err && hp_opt.stats)
		atexit(print_stats_at_exit);
	__atomic_store_n(&hp_default_ready, !default_err, __ATOMIC_RELEASE);
	__atomic_store_n(&default_done, true, __ATOMIC_RELEASE);
}

static struct hp_arena *default_get(void)
{
	if (__builtin_expect(__atomic_load_n(&hp_default_ready, __ATOMIC_ACQUIRE), 1))
		return &hp_default_arena;
	pthread_once(&default_once, default_init);
	if (default_err) {
		errno = default_err;
		return NULL;
	}
	return &hp_default_arena;
}

struct hp_arena *hp_default_get(void)
{
	return default_get();
}

/* Bad input: errno, or with HUGEPERM_CHECKED an abort that says why. */
static int bad(int err, const char *call, const void *ptr, const char *why)
{
	if (hp_opt.checked) {
		char msg[256];
		struct hp_buf b = {msg, sizeof(msg) - 1, 0};
		hp_buf_str(&b, call);
		hp_buf_str(&b, "(0x");
		hp_buf_hex(&b, (uintptr_t)ptr);
		hp_buf_str(&b, "): ");
		hp_buf_str(&b, why);
		msg[b.len < b.cap ? b.len : b.cap] = 0;
		hp_os_die(msg);
	}
	errno = err;
	return -1;
}

int hp_api_bad(int err, const char *call, const void *ptr, const char *why)
{
	return bad(err, call, ptr, why);
}

bool hp_api_arena_bad(struct hp_arena *a, const char *call)
{
	if (a)
		bad(EINVAL, call, a, "not a live arena (destroyed?)");
	else
		errno = EINVAL;
	return false;
}

/* Check @prot (with HP_HOME and HP_ZERO bits where @home_ok: an
 * allocation); 0, or -1 with errno set. */
static int check_prot(struct hp_arena *a, const char *call, const void *ptr, int prot, bool home_ok)
{
	const int wx = PROT_WRITE | PROT_EXEC;
	int home_bits = (prot >> HP_HOME_SHIFT) & 0xf;
	if ((prot & ~(HP_PROT_MASK | (0xf << HP_HOME_SHIFT) | HP_ZERO)) ||
	    ((home_bits || (prot & HP_ZERO)) && !home_ok) || (home_bits && !(home_bits & 8)))
		return bad(EINVAL, call, ptr, "unknown protection bits");
	if (!a->allow_rwx && ((prot & wx) == wx || (home_bits & wx) == wx))
		return bad(EACCES, call, ptr,
			   "writable and executable at once without HUGEPERM_ALLOW_RWX");
	return 0;
}

static void *arena_alloc(struct hp_arena *a, size_t size, int prot, bool guarded)
{
	const char *call = guarded ? "hp_alloc_guarded" : "hp_alloc";
	if (!arena_ok(a, call))
		return NULL;
	if (check_prot(a, call, NULL, prot, true))
		return NULL;
	if (size == 0) {
		bad(EINVAL, call, NULL, "size 0");
		return NULL;
	}
	if (size > HP_MAX_ALLOC - (guarded ? 2 * HP_PAGE_SIZE : 0)) {
		bad(ENOMEM, call, NULL, "size over 1 GiB");
		return NULL;
	}
	size_t npages = (size + HP_PAGE_SIZE - 1) >> HP_PAGE_SHIFT;
	int cls = prot & HP_PROT_MASK; /* the class the pages start in */
	int home = (prot >> HP_HOME_SHIFT) & 8 ? (prot >> HP_HOME_SHIFT) & HP_PROT_MASK : cls;
	/* Cached pages were handed out before: with HP_ZERO a writable one is
	 * cleared whole, others take the locked path (fresh.c). */
	bool zero = prot & HP_ZERO;
	int k = hp_tcache_bin(npages);
	if (k >= 0 && home == cls && !guarded && (!zero || (cls & PROT_WRITE))) {
		void *p = hp_tcache_alloc(a, k, cls); /* the fast path */
		if (p && zero)
			a->os->store((uintptr_t)p, NULL, 0, npages * HP_PAGE_SIZE);
		if (p)
			TRACE(a, HP_EV_MAP, p, size, cls);
		int err = errno;
		after_call(a); /* a refill's fresh block may be queued */
		errno = err;
		return p;
	}

	pthread_mutex_lock(&a->lock);
	void *p = zero ? hp_pool_alloc_zeroed(a, npages, cls, home, guarded)
		       : hp_pool_alloc(a, npages, cls, home, guarded);
	int err = errno;
	if (p)
		a->n.allocs++;
	pthread_mutex_unlock(&a->lock);
	if (p)
		TRACE(a, HP_EV_MAP, p, size, cls);
	after_call(a);
	if (!p)
		errno = err;
	return p;
}

void *hp_arena_alloc(struct hp_arena *a, size_t size, int prot)
{
	return arena_alloc(a, size, prot, false);
}

void *hp_arena_alloc_guarded(struct hp_arena *a, size_t size, int prot)
{
	return arena_alloc(a, size, prot, true);
}

int hp_arena_free(struct hp_arena *a, void *ptr)
{
	if (!arena_ok(a, "hp_free"))
		return -1;
	if (!ptr)
		return 0;
	if ((uintptr_t)ptr & (HP_PAGE_SIZE - 1))
		return bad(EINVAL, "hp_free", ptr, "not page-aligned");
	size_t size = 0;
	if (a->traced) {
		pthread_mutex_lock(&a->lock);
		size = hp_pool_usable(a, (uintptr_t)ptr);
		pthread_mutex_unlock(&a->lock);
	}
	bool taken;
	int err = hp_tcache_free(a, (uintptr_t)ptr, &taken); /* the fast path */
	if (taken && !err) {
		TRACE(a, HP_EV_UNMAP, ptr, size, 0);
		after_call(a);
		return 0;
	}
	if (taken) {
		errno = err;
		return -1;
	}
	pthread_mutex_lock(&a->lock);
	err = hp_pool_free(a, (uintptr_t)ptr);
	if (!err)
		a->n.frees++;
	pthread_mutex_unlock(&a->lock);
	if (err == EINVAL)
		return bad(EINVAL, "hp_free", ptr,
			   "not the start of a live allocation (foreign, interior or freed)");
	if (err) {
		errno = err;
		return -1;
	}
	TRACE(a, HP_EV_UNMAP, ptr, size, 0);
	after_call(a);
	return 0;
}

/* A page range argument of @call: aligned, not empty, no overflow.  0 with
 * the pages in *npages, or -1 with errno (and the message of bad()). */
static int check_range(const char *call, const void *ptr, size_t size, size_t *npages)
{
	if ((uintptr_t)ptr & (HP_PAGE_SIZE - 1))
		return bad(EINVAL, call, ptr, "not page-aligned");
	if (size == 0)
		return bad(EINVAL, call, ptr, "size 0");
	if (size > HP_MAX_ALLOC || (uintptr_t)ptr + size < (uintptr_t)ptr)
		return bad(ENOMEM, call, ptr, "range overflows");
	*npages = (size + HP_PAGE_SIZE - 1) >> HP_PAGE_SHIFT;
	return 0;
}

int hp_arena_protect(struct hp_arena *a, void *ptr, size_t size, int prot)
{
	if (!arena_ok(a, "hp_protect"))
		return -1;
	size_t npages;
	if (check_prot(a, "hp_protect", ptr, prot, false) ||
	    check_range("hp_protect", ptr, size, &npages))
		return -1;

	pthread_mutex_lock(&a->lock);
	int err = hp_pool_protect(a, (uintptr_t)ptr, npages, prot);
	pthread_mutex_unlock(&a->lock);
	if (err == ENOMEM)
		return bad(ENOMEM, "hp_protect", ptr, "range not inside one live allocation");
	if (err == EINVAL)
		return bad(EINVAL, "hp_protect", ptr,
			   "part of a hugetlb page (it changes protection only whole)");
	if (err) {
		errno = err;
		return -1;
	}
	TRACE(a, HP_EV_PROTECT, ptr, size, prot);
	after_call(a);
	return 0;
}

int hp_arena_discard(struct hp_arena *a, void *ptr, size_t size)
{
	if (!arena_ok(a, "hp_discard"))
		return -1;
	size_t npages;
	if (check_range("hp_discard", ptr, size, &npages))
		return -1;

	pthread_mutex_lock(&a->lock);
	int err = hp_pool_discard(a, (uintptr_t)ptr, npages);
	pthread_mutex_unlock(&a->lock);
	if (err == ENOMEM)
		return bad(ENOMEM, "hp_discard", ptr, "range not inside one live allocation");
	if (err) {
		errno = err;
		return -1;
	}
	TRACE(a, HP_EV_DISCARD, ptr, size, 0);
	return 0;
}

/* hp_write on a live arena, every case but hp_code_write_fast's: out of
 * line, so that the common write saves no registers. */
static __attribute__((noinline)) int write_slow(struct hp_arena *a, void *dst, const void *src,
						size_t size)
{
	if (size == 0)
		return 0;
	if (!src)
		return bad(EINVAL, "hp_write", dst, "src is NULL");
	bool taken;
	int err = hp_code_write(a, (uintptr_t)dst, src, size, &taken); /* no lock */
	if (taken && !err)
		return 0; /* packed code: not traced (nor mapped by the trace), no collapse due */
	if (!taken) {
		pthread_mutex_lock(&a->lock);
		err = hp_pool_write(a, (uintptr_t)dst, src, size);
		pthread_mutex_unlock(&a->lock);
	}
	if (err == ENOMEM)
		return bad(ENOMEM, "hp_write", dst, "range not inside one live allocation");
	if (err) {
		errno = err;
		return -1;
	}
	TRACE(a, HP_EV_WRITE, dst, size, 0);
	after_call(a);
	return 0;
}

/* The calls' bodies, shared by hp_X and hp_arena_X without a second trip
 * through the PLT (the packed code's fast paths), on a live arena (the
 * default one always is: it is never destroyed). */
static inline __attribute__((always_inline)) int
arena_write(struct hp_arena *a, void *dst, const void *src, size_t size, bool forever)
{
	if (__builtin_expect(
		    size && src && hp_code_write_fast(a, (uintptr_t)dst, src, size, forever), 1))
		return 0; /* packed code: not traced (nor mapped by the trace), no collapse due */
	return write_slow(a, dst, src, size);
}

int hp_arena_write(struct hp_arena *a, void *dst, const void *src, size_t size)
{
	return arena_ok(a, "hp_write") ? arena_write(a, dst, src, size, false) : -1;
}

void *hp_arena_writable(struct hp_arena *a, void *ptr)
{
	if (!arena_ok(a, "hp_writable"))
		return NULL;
	uintptr_t w = 0;
	bool taken;
	int err = hp_code_writable(a, (uintptr_t)ptr, &w, &taken);
	if (!taken) {
		pthread_mutex_lock(&a->lock);
		err = hp_pool_writable(a, (uintptr_t)ptr, &w);
		pthread_mutex_unlock(&a->lock);
	}
	if (err == EINVAL)
		bad(EINVAL, "hp_writable", ptr, "not inside a live allocation");
	if (err)
		errno = err;
	return (void *)w;
}

int hp_arena_collapse_pending(struct hp_arena *a)
{
	if (!arena_ok(a, "hp_collapse_pending"))
		return -1;
	return hp_collapse_run(a, HP_RUN_NOW | HP_RUN_FORCE, 0, NULL);
}

int hp_arena_trim(struct hp_arena *a)
{
	if (!arena_ok(a, "hp_trim"))
		return -1;
	pthread_mutex_lock(&a->lock);
	hp_tcache_drain_mine(a);
	int err = hp_arena_trim_blocks(a);
	struct hp_chunk *retired = err ? NULL : hp_arena_retire_chunks(a);
	pthread_mutex_unlock(&a->lock);
	if (retired) {
		/* Lock-free lookups may still hold a retired chunk: wait for them
		 * (without the lock: they may be waiting for it). */
		a->os->synchronize();
		pthread_mutex_lock(&a->lock);
		hp_arena_release_chunks(a, retired);
		pthread_mutex_unlock(&a->lock);
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

int hp_arena_stats_get(struct hp_arena *a, struct hp_stats *st)
{
	if (!arena_ok(a, "hp_stats_get"))
		return -1;
	/* Callers built before the purge and code counters pass a smaller size. */
	if (!st || st->size < offsetof(struct hp_stats, purged_blocks)) {
		errno = EINVAL;
		return -1;
	}
	if (st->size >= sizeof(struct hp_stats)) {
		hp_stats_collect(a, st);
		return 0;
	}
	struct hp_stats all = {.size = sizeof(all)};
	hp_stats_collect(a, &all);
	size_t size = st->size;
	memcpy(st, &all, size);
	st->size = size;
	return 0;
}

void hp_arena_stats_print(struct hp_arena *a, int fd, int flags)
{
	struct hp_stats st = {.size = sizeof(st)};
	if (hp_arena_stats_get(a, &st) == 0)
		hp_stats_write(&st, fd, flags);
}

struct hp_arena *hp_arena_create(const struct hp_config *cfg)
{
	if (cfg && cfg->size < offsetof(struct hp_config, near)) {
		errno = EINVAL;
		return NULL;
	}
	if (cfg &&
	    (cfg->backend < HP_BACKEND_AUTO || cfg->backend > HP_BACKEND_SMALL ||
	     cfg->collapse_mode < 0 || cfg->collapse_mode > HP_COLLAPSE_OFF ||
	     (cfg->flags & ~(HP_ARENA_ALLOW_RWX | HP_ARENA_NO_ALIAS | HP_ARENA_COLLAPSE_QUIET |
			     HP_ARENA_LAZY_SMALL | HP_ARENA_NEAR_EXACT)) ||
	     (cfg->size >= offsetof(struct hp_config, purge_ms) + sizeof(cfg->purge_ms) &&
	      (cfg->purge_ms < HP_PURGE_NOW || cfg->purge_ms > HP_PURGE_MS_MAX)))) {
		errno = EINVAL;
		return NULL;
	}
	/* An arena made by the call that probed (the preload's first) takes
	 * the pools the probe read in it. */
	bool fresh = !__atomic_load_n(&default_done, __ATOMIC_ACQUIRE);
	pthread_once(&default_once, default_init); /* options and probe */
	struct hp_arena *a = hp_os_linux.meta_alloc(sizeof(*a));
	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	int err = arena_setup(a, cfg, false, fresh);
	if (err) {
		hp_os_linux.meta_free(a, sizeof(*a));
		errno = err;
		return NULL;
	}
	hp_registry_add(a);
	return a;
}

/*
 * A destroyed arena's memory goes back, but for its first page, which holds
 * HP_ARENA_DEAD and stays mapped until DEAD_KEPT more arenas have been
 * destroyed: a handle used after its arena was destroyed reads DEAD
 * meanwhile (EINVAL), not unmapped memory nor a new arena made at the same
 * address.  Bounded: DEAD_KEPT pages and mappings at most.
 */
#define DEAD_KEPT 64
static struct hp_arena *dead_arenas[DEAD_KEPT];
static unsigned ndead;
static pthread_mutex_t dead_lock = PTHREAD_MUTEX_INITIALIZER;

_Static_assert(sizeof(struct hp_arena) > HP_PAGE_SIZE &&
		       offsetof(struct hp_arena, magic) + sizeof(uint64_t) <= HP_PAGE_SIZE,
	       "the arena's magic word is in a page of its own to keep");

static void bury(struct hp_arena *a)
{
	hp_os_linux.meta_free((char *)a + HP_PAGE_SIZE, sizeof(*a) - HP_PAGE_SIZE);
	pthread_mutex_lock(&dead_lock);
	struct hp_arena *oldest = dead_arenas[ndead % DEAD_KEPT];
	dead_arenas[ndead++ % DEAD_KEPT] = a;
	pthread_mutex_unlock(&dead_lock);
	if (oldest)
		hp_os_linux.meta_free(oldest, HP_PAGE_SIZE);
}

int hp_arena_destroy(struct hp_arena *a)
{
	if (!a || a == &hp_default_arena) {
		errno = EINVAL;
		return -1;
	}
	uint64_t live = HP_ARENA_LIVE; /* one destroy wins */
	if (!__atomic_compare_exchange_n(&a->magic, &live, HP_ARENA_DEAD, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return bad(EINVAL, "hp_arena_destroy", a, "not a live arena (destroyed already?)");
	hp_registry_del(a);
	hp_arena_teardown(a);
	bury(a);
	return 0;
}

void hp_arena_teardown(struct hp_arena *a)
{
	hp_collapse_thread_stop(a);
	hp_purge_thread_stop(a);
	pthread_mutex_lock(&a->lock);
	hp_tcache_destroy_all(a, false);
	pthread_mutex_unlock(&a->lock);
	hp_code_forget(a);
	hp_arena_fini(a);
}

/* The default arena's calls. */

void *hp_alloc(size_t size, int prot)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_alloc(a, size, prot) : NULL;
}

void *hp_alloc_guarded(size_t size, int prot)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_alloc_guarded(a, size, prot) : NULL;
}

int hp_free(void *ptr)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_free(a, ptr) : -1;
}

int hp_protect(void *ptr, size_t size, int prot)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_protect(a, ptr, size, prot) : -1;
}

size_t hp_usable_size(const void *ptr)
{
	struct hp_arena *a = default_get();
	if (!a)
		return 0;
	bool taken;
	size_t code = hp_code_usable(a, (uintptr_t)ptr, &taken);
	if (taken || ((uintptr_t)ptr & (HP_PAGE_SIZE - 1)))
		return code;
	pthread_mutex_lock(&a->lock);
	size_t n = hp_pool_usable(a, (uintptr_t)ptr);
	pthread_mutex_unlock(&a->lock);
	return n;
}

int hp_discard(void *ptr, size_t size)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_discard(a, ptr, size) : -1;
}

/* hp_write before the default arena is up (it is set up here). */
static __attribute__((noinline)) int write_first(void *dst, const void *src, size_t size)
{
	struct hp_arena *a = default_get();
	return a ? arena_write(a, dst, src, size, true) : -1;
}

int hp_write(void *dst, const void *src, size_t size)
{
	if (__builtin_expect(!__atomic_load_n(&hp_default_ready, __ATOMIC_ACQUIRE), 0))
		return write_first(dst, src, size);
	return arena_write(&hp_default_arena, dst, src, size, true);
}

void *hp_writable(void *ptr)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_writable(a, ptr) : NULL;
}

int hp_collapse_pending(void)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_collapse_pending(a) : -1;
}

int hp_trim(void)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_trim(a) : -1;
}

int hp_stats_get(struct hp_stats *st)
{
	struct hp_arena *a = default_get();
	return a ? hp_arena_stats_get(a, st) : -1;
}

void hp_stats_print(int fd, int flags)
{
	struct hp_arena *a = default_get();
	if (a)
		hp_arena_stats_print(a, fd, flags);
}

int hp_owns(const void *addr, size_t size)
{
	uintptr_t first = (uintptr_t)addr, last;

	if (size == 0 || __builtin_add_overflow(first, size - 1, &last))
		return 0;
	/* The span words, not the chunks: no RCU section needed (internal.h). */
	for (uintptr_t i = first >> HP_CHUNK_SHIFT; i <= last >> HP_CHUNK_SHIFT; i++) {
		if (i >= (1UL << HP_MAP_BITS))
			return 0;
		uint32_t span = __atomic_load_n(&hp_chunk_span[i], __ATOMIC_ACQUIRE);
		uintptr_t base = i << HP_CHUNK_SHIFT;
		if (span && last >= base + (uintptr_t)(span >> 16) * HP_BLOCK_SIZE &&
		    first < base + (uintptr_t)(span & 0xffff) * HP_BLOCK_SIZE)
			return 1;
	}
	return 0;
}
