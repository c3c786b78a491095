/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fake_os.h"

struct fake_os_state fake;
static uintptr_t next_addr = 0x500000000000UL;
static bool committing;

static int f_reserve(size_t size, size_t align, uintptr_t *out)
{
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
	uintptr_t end = slot + size;
	if (fake.busy_hi <= slot || fake.busy_lo >= end) {
		*lo = slot;
		*hi = end;
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
	return 0;
}

static int f_release(uintptr_t addr, size_t size)
{
	return 0;
}

static int f_commit(uintptr_t addr, size_t size, int prot, int backend, int fill, int node)
{
	fake.last_commit_node = node;
	/* Only hugetlb pools run dry; THP and small pages always commit. */
	if (fake.commit_fail_after == 0 && hp_backend_is_hugetlb(backend))
		return ENOMEM;
	if (fake.commit_fail_after > 0)
		fake.commit_fail_after--;
	fake.commit_calls++;
	/* The verification collapse that follows a THP commit is not counted. */
	committing = backend == HP_BACKEND_THP && prot != PROT_NONE; /* NONE: lazy, no check */
	return 0;
}

static int f_shm_create(size_t size, int backend, int *fd)
{
	*fd = 1000 + fake.shm_files++;
	return 0;
}

static void f_shm_close(int fd)
{
}

static int f_shm_commit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size, int prot,
			int backend, int fill, int node)
{
	fake.last_commit_node = node;
	if (fake.shm_refuse)
		return fake.shm_refuse;
	fake.shm_commits++;
	committing = backend == HP_BACKEND_THP;
	return 0;
}

static int f_shm_decommit(uintptr_t addr, uintptr_t alias, int fd, size_t off, size_t size)
{
	return 0;
}

static int f_guard(uintptr_t addr, size_t size, bool install)
{
	if (fake.guard_refuse)
		return fake.guard_refuse;
	fake.guard_calls++;
	return 0;
}

static int f_mem_write(uintptr_t dst, const void *src, size_t size)
{
	fake.mem_writes++; /* nothing behind fake addresses: count, touch nothing */
	return 0;
}

static void f_store(uintptr_t dst, const void *src, int byte, size_t size)
{
	fake.stores++; /* fake addresses hold no memory */
}

static int f_decommit(uintptr_t addr, size_t size)
{
	return 0;
}

static int f_discard(uintptr_t addr, size_t size)
{
	fake.discard_calls++;
	return 0;
}

static int f_populate(uintptr_t addr, size_t size)
{
	fake.populate_calls++;
	return 0;
}

static int f_protect(uintptr_t addr, size_t size, int prot)
{
	fake.protect_calls++;
	fake.last_protect_prot = prot;
	fake.last_protect_size = size;
	return 0;
}

static int f_collapse(uintptr_t addr, size_t size)
{
	if (committing) {
		committing = false;
		return 0;
	}
	int i = fake.collapse_calls++;
	return i < fake.ncollapse_script ? fake.collapse_script[i] : 0;
}

static int f_name(uintptr_t addr, size_t size, const char *name)
{
	return EINVAL;
}

static uint64_t f_now(void)
{
	return fake.now_ns;
}

static void *f_meta_alloc(size_t size)
{
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
	return ENOTTY; /* no khugepaged here: our bookkeeping is the truth */
}

static void f_meta_free(void *p, size_t size)
{
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
	.shm_create = f_shm_create,
	.shm_close = f_shm_close,
	.shm_commit = f_shm_commit,
	.shm_decommit = f_shm_decommit,
	.store = f_store,
	.mem_write = f_mem_write,
	.guard = f_guard,
	.now_ns = f_now,
	.meta_alloc = f_meta_alloc,
	.meta_free = f_meta_free,
	.synchronize = f_synchronize,
	.huge_mapped = f_huge_mapped,
	.cpu_node = f_cpu_node,
};

void fake_reset(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.commit_fail_after = -1;
	committing = false;
}

struct hp_arena *fake_arena(int backend, int mode)
{
	struct hp_arena *a = calloc(1, sizeof(*a));
	hp_arena_init(a, &fake_os, backend,
		      hp_backend_is_hugetlb(backend) ? HP_BACKEND_THP : backend);
	a->collapse_mode = mode;
	return a;
}

void fake_arena_free(struct hp_arena *a)
{
	hp_arena_fini(a);
	free(a);
}
