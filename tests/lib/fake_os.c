/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fake_os.h"
#include "tap.h"

struct fake_os_state fake;
static uintptr_t next_addr = 0x500000000000UL;
/* The last THP commit, populated: PAGEMAP_SCAN there tells what its
 * fault took (huge, unless fake.fresh_small), until the next protect,
 * discard or decommit; elsewhere the fake has no page tables to scan. */
static uintptr_t fresh_lo, fresh_hi;
static bool fresh_exec_view; /* aliased: its exec view has no page yet */

/* The arenas on the fake OS, whose locks the collapse hook checks. */
#define MAX_ARENAS 16
static struct hp_arena *arenas[MAX_ARENAS];

const char *const fake_hook_names[FH_NHOOKS] = {
	"reserve",    "reserve_in",  "release",	     "commit",	     "decommit",
	"discard",    "populate",    "protect",	     "collapse",     "name",
	"guard",      "huge_mapped", "alias_create", "alias_commit", "alias_decommit",
	"alias_copy", "alias_remap", "mem_write",    "meta_alloc",   "advise_huge",
	"held",
};

/* The 2 MiB units with memory behind them: what the fake machine has
 * committed (a commit over committed units replaces them, as MAP_FIXED
 * does; an aliased block counts once, at its executable view). */
#define MAX_UNITS 8192
static uintptr_t units[MAX_UNITS];
static int nunits;

static void track(uintptr_t addr, size_t size, bool on)
{
	for (uintptr_t u = addr; u < addr + size; u += HP_BLOCK_SIZE) {
		int i = 0;
		while (i < nunits && units[i] != u)
			i++;
		if (on && i == nunits && nunits < MAX_UNITS)
			units[nunits++] = u;
		else if (!on && i < nunits)
			units[i] = units[--nunits];
	}
	fake.mapped_committed = (size_t)nunits * HP_BLOCK_SIZE;
}

/* Count a call of @hook; the scheduled fault's errno if this is the one. */
static int fault(enum fake_hook hook)
{
	unsigned n = ++fake.calls[hook];
	if (fake.fault_at && (int)hook == fake.fault_hook && n == (unsigned)fake.fault_at) {
		fake.faults_hit++;
		return fake.fault_err;
	}
	return 0;
}

static int f_reserve(size_t size, size_t align, uintptr_t *out)
{
	int err = fault(FH_RESERVE);
	if (err)
		return err;
	fake.mapped_reserved += size;
	*out = next_addr;
	next_addr += (size + align - 1) & ~(align - 1);
	return 0;
}

/* The slot, or the part of it on the side of fake.busy_lo..busy_hi nearest
 * @near: the fake address space holds one mapping of the program's. */
static int f_reserve_in(uintptr_t slot, size_t size, uintptr_t near, size_t min, uintptr_t *lo,
			uintptr_t *hi)
{
	fake.reserve_in_calls++;
	int err = fault(FH_RESERVE_IN);
	if (err)
		return err;
	uintptr_t end = slot + size;
	if (fake.busy_hi <= slot || fake.busy_lo >= end) {
		*lo = slot;
		*hi = end;
		fake.mapped_reserved += size;
		return 0;
	}
	uintptr_t below = fake.busy_lo > slot ? (fake.busy_lo & ~(HP_BLOCK_SIZE - 1)) : slot;
	uintptr_t above = fake.busy_hi < end
				  ? (fake.busy_hi + HP_BLOCK_SIZE - 1) & ~(HP_BLOCK_SIZE - 1)
				  : end;
	bool low_ok = below - slot >= min && below > slot,
	     high_ok = end - above >= min && above < end;
	if (!low_ok && !high_ok)
		return EEXIST;
	if (high_ok && (!low_ok || near >= fake.busy_lo)) {
		*lo = above;
		*hi = end;
	} else {
		*lo = slot;
		*hi = below;
	}
	fake.mapped_reserved += *hi - *lo;
	return 0;
}

static int f_release(uintptr_t addr, size_t size)
{
	int err = fault(FH_RELEASE);
	if (err)
		return err;
	fake.mapped_reserved -= size;
	return 0;
}

static int f_commit(uintptr_t addr, size_t size, int prot, int backend, int fill, int node)
{
	fake.last_commit_node = node;
	int err = fault(FH_COMMIT);
	if (err)
		return err;
	/* Only hugetlb pools run dry; THP and small pages always commit. */
	if (fake.commit_fail_after == 0 && hp_backend_is_hugetlb(backend))
		return ENOMEM;
	if (fake.commit_fail_after > 0)
		fake.commit_fail_after--;
	fake.commit_calls++;
	fake.now_ns += fake.commit_cost_ns;
	track(addr, size, true);
	if (backend == HP_BACKEND_THP && prot != PROT_NONE) { /* NONE: lazy, no memory */
		fresh_lo = addr;
		fresh_hi = addr + size;
		fresh_exec_view = false;
	}
	return 0;
}

static int f_alias_create(size_t size, bool hugetlb, int *fd)
{
	int err = fault(FH_ALIAS_CREATE);
	if (err)
		return err;
	fake.fds_open++;
	*fd = 1000 + fake.shm_files++;
	return 0;
}

static void f_close(int fd)
{
	fake.fds_open--;
}

static int f_alias_commit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size,
			  int prot, int backend, int fill, int node)
{
	fake.last_commit_node = node;
	int err = fault(FH_ALIAS_COMMIT);
	if (err)
		return err;
	if (fake.shm_refuse)
		return fake.shm_refuse;
	fake.now_ns += fake.commit_cost_ns;
	fake.shm_commits++;
	track(addr, size, true);
	if (backend == HP_BACKEND_THP) { /* the alias view populated, the exec view not */
		fresh_lo = addr;
		fresh_hi = addr + size;
		fresh_exec_view = true;
	}
	return 0;
}

static int f_alias_decommit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size)
{
	int err = fault(FH_ALIAS_DECOMMIT);
	if (err)
		return err;
	track(addr, size, false);
	return 0;
}

static int f_alias_copy(int fd, size_t off, uintptr_t from, size_t size)
{
	return fault(FH_ALIAS_COPY);
}

static int f_alias_remap(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size, int prot,
			 int backend)
{
	return fault(FH_ALIAS_REMAP);
}

static int f_guard(uintptr_t addr, size_t size, bool install)
{
	int err = fault(FH_GUARD);
	if (err)
		return err;
	if (fake.guard_refuse)
		return fake.guard_refuse;
	fake.guard_calls++;
	return 0;
}

static int f_advise_huge(uintptr_t addr, size_t size, bool huge)
{
	int err = fault(FH_ADVISE_HUGE);
	if (err)
		return err;
	if (huge)
		fake.advise_huge++;
	else
		fake.advise_small++;
	return 0;
}

static int f_mem_write(uintptr_t dst, const void *src, size_t size)
{
	int err = fault(FH_MEM_WRITE);
	if (err || (err = fake.mem_write_refuse))
		return err;
	fake.mem_writes++; /* nothing behind fake addresses: count, touch nothing */
	return 0;
}

static void f_store(uintptr_t dst, const void *src, int byte, size_t size)
{
	fake.stores++; /* fake addresses hold no memory */
	fake.stored_bytes += size;
}

static int f_decommit(uintptr_t addr, size_t size)
{
	fresh_lo = fresh_hi = 0;
	int err = fault(FH_DECOMMIT);
	if (err)
		return err;
	track(addr, size, false);
	return 0;
}

static int f_discard(uintptr_t addr, size_t size)
{
	fresh_lo = fresh_hi = 0;
	int err = fault(FH_DISCARD);
	if (err)
		return err;
	fake.discard_calls++;
	return 0;
}

static int f_populate(uintptr_t addr, size_t size)
{
	int err = fault(FH_POPULATE);
	if (err)
		return err;
	fake.populate_calls++;
	fake.now_ns += fake.populate_cost_ns;
	if (fake.held_answer && fake.nheld_at < 8) /* it holds pages now */
		fake.held_at[fake.nheld_at++] = addr;
	return 0;
}

static int f_protect(uintptr_t addr, size_t size, int prot)
{
	fresh_lo = fresh_hi = 0;
	int err = fault(FH_PROTECT);
	if (err)
		return err;
	fake.protect_calls++;
	fake.last_protect_prot = prot;
	fake.last_protect_size = size;
	return 0;
}

/* Does the calling thread hold @a's lock?  The fake arenas' locks check
 * errors (fake_arena): only the owner can unlock one, and gets it back. */
static bool lock_held(struct hp_arena *a)
{
	if (pthread_mutex_unlock(&a->lock) != 0)
		return false; /* EPERM: not ours */
	pthread_mutex_lock(&a->lock);
	return true;
}

static int f_collapse(uintptr_t addr, size_t size)
{
	for (int k = 0; k < MAX_ARENAS; k++)
		if (arenas[k] && lock_held(arenas[k]))
			fake.collapse_locked++;
	int err = fault(FH_COLLAPSE);
	if (err)
		return err;
	fake.now_ns += fake.collapse_cost_ns; /* a refusal takes time too */
	int i = fake.collapse_calls++;
	return i < fake.ncollapse_script ? fake.collapse_script[i] : 0;
}

static int f_name(uintptr_t addr, size_t size, const char *name)
{
	int err = fault(FH_NAME);
	return err ? err : EINVAL;
}

static uint64_t f_now(void)
{
	return fake.now_ns;
}

/* The fake clock does not wait: a timed wait is over at once, the clock
 * moved on to its deadline. */
static void f_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t deadline_ns)
{
	if (fake.now_ns < deadline_ns)
		fake.now_ns = deadline_ns;
}

static uint64_t f_realtime(void)
{
	return fake.now_ns;
}

static uint32_t f_tid(void)
{
	return 1;
}

/* No hugetlb pool, now or later. */
static void f_probe_pools(struct hp_probe *pr)
{
	pr->hugetlb_2m_free = pr->hugetlb_1g_free = -1;
	for (int n = 0; n < HP_MAX_NODES; n++)
		pr->node_hugetlb_2m_free[n] = -1;
}

/* A machine with THP (madvise), MADV_COLLAPSE, one node, no hugetlb pool. */
static void f_probe(struct hp_probe *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->hugetlb_2m_free = pr->hugetlb_1g_free = -1;
	pr->thp = pr->collapse = true;
	strcpy(pr->thp_mode, "madvise");
	pr->memfd_noexec = -1;
	pr->nnodes = 1;
	pr->page_size = 4096;
	for (int n = 0; n < HP_MAX_NODES; n++)
		pr->node_hugetlb_2m_free[n] = -1;
}

/* Messages still reach the real fd: tests may read them. */
static int f_write_all(int fd, const void *buf, size_t len)
{
	return hp_os_linux.write_all(fd, buf, len);
}

static int f_create_file(const char *path, int *fd)
{
	return EACCES; /* the fake machine has no files */
}

static void *f_meta_alloc(size_t size)
{
	if (fault(FH_META_ALLOC))
		return NULL;
	fake.meta_live++;
	return calloc(1, size);
}

static void f_synchronize(void)
{
}

static int f_cpu_node(void)
{
	return fake.cpu_node;
}

static int f_huge_mapped(uintptr_t addr, size_t size, bool *huge)
{
	int err = fault(FH_HUGE_MAPPED);
	if (err || (err = fake.huge_mapped_refuse))
		return err;
	if (addr >= fresh_lo && addr + size <= fresh_hi) {
		*huge = !fake.fresh_small && !fresh_exec_view;
		return 0;
	}
	return ENOTTY; /* no khugepaged here: our bookkeeping is the truth */
}

static int f_held(uintptr_t addr, size_t size, uint64_t map[8])
{
	int err = fault(FH_HELD);
	if (err)
		return err;
	if (!fake.held_answer)
		return ENOTTY;
	fake.held_calls++;
	memset(map, 0, 8 * sizeof(map[0]));
	for (int i = 0; i < fake.nheld_at; i++)
		if (fake.held_at[i] >= addr && fake.held_at[i] < addr + size) {
			size_t k = (fake.held_at[i] - addr) / HP_BLOCK_SIZE;
			map[k / 64] |= 1ULL << (k % 64);
		}
	return 0;
}

static void f_meta_free(void *p, size_t size)
{
	fake.meta_live--;
	free(p);
}

const struct hp_os fake_os = {
	.reserve = f_reserve,
	.reserve_in = f_reserve_in,
	.release = f_release,
	.commit = f_commit,
	.decommit = f_decommit,
	.discard = f_discard,
	.populate = f_populate,
	.protect = f_protect,
	.collapse = f_collapse,
	.name = f_name,
	.alias_create = f_alias_create,
	.close = f_close,
	.alias_commit = f_alias_commit,
	.alias_decommit = f_alias_decommit,
	.alias_copy = f_alias_copy,
	.alias_remap = f_alias_remap,
	.store = f_store,
	.mem_write = f_mem_write,
	.guard = f_guard,
	.advise_huge = f_advise_huge,
	.now_ns = f_now,
	.meta_alloc = f_meta_alloc,
	.meta_free = f_meta_free,
	.synchronize = f_synchronize,
	.huge_mapped = f_huge_mapped,
	.held = f_held,
	.cpu_node = f_cpu_node,
	.cond_wait_until = f_cond_wait_until,
	.realtime_ns = f_realtime,
	.tid = f_tid,
	.probe = f_probe,
	.probe_pools = f_probe_pools,
	.write_all = f_write_all,
	.create_file = f_create_file,
};

void fake_reset(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.commit_fail_after = -1;
	fresh_lo = fresh_hi = 0;
	nunits = 0;
}

struct hp_arena *fake_arena(int backend, int mode)
{
	struct hp_arena *a = calloc(1, sizeof(*a));
	hp_arena_init(a, &fake_os, backend,
		      hp_backend_is_hugetlb(backend) ? HP_BACKEND_THP : backend, &hp_opt);
	a->collapse_mode = mode;
	/* A lock that knows its owner, for the collapse hook's check. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_init(&a->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	for (int k = 0; k < MAX_ARENAS; k++)
		if (!arenas[k]) {
			arenas[k] = a;
			break;
		}
	return a;
}

void fake_arena_free(struct hp_arena *a)
{
	for (int k = 0; k < MAX_ARENAS; k++)
		if (arenas[k] == a)
			arenas[k] = NULL;
	hp_arena_teardown(a);
	free(a);
}

int fake_arena_check(struct hp_arena *a, char *why, size_t n)
{
	struct hp_buf b = {why, n - 1, 0};
	int err = hp_arena_check(a, &b);
	why[b.len < b.cap ? b.len : b.cap] = 0;
	return err;
}

void fake_check_arena(struct hp_arena *a, const char *when)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_collect(a, &st);
	ok(st.free_bytes + st.used_bytes + st.cached_bytes == st.committed_bytes,
	   "free + cached + used == committed %s", when);
	char buf[256];
	int err = fake_arena_check(a, buf, sizeof(buf));
	if (!ok(err == 0, "the arena's invariants hold %s", when))
		tap_diag("  %s", buf);
}

bool fake_stats_sized(struct hp_arena *a, size_t size, struct hp_stats *st)
{
	struct {
		struct hp_stats st;
		uint64_t canary;
	} old;
	memset(&old, 0xab, sizeof(old));
	old.st.size = size;
	bool ok = hp_arena_stats_get(a, &old.st) == 0 && old.st.size == size;
	const unsigned char *tail = (const unsigned char *)&old.st + size;
	for (size_t i = 0; i < sizeof(old) - size; i++)
		ok &= tail[i] == 0xab;
	*st = old.st;
	return ok;
}
