/* SPDX-License-Identifier: MIT */
/*
 * near.t - hp_config.near places an arena's memory where a JIT can reach
 * it (LuaJIT needs its code within +-1 GiB of its own), and hp_owns() tells
 * our address space from everyone else's.  Checked against /proc/self/maps.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW	      (PROT_READ | PROT_WRITE)
#define GIB	      (1UL << 30)
#define MIB	      (1UL << 20)
#define USER_SLOT_TOP ((1UL << 47) - GIB / 2)

static uintptr_t dist(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * hp_os_linux.reserve_in on a slot where the program has one page mapped:
 * the free part nearest the hint, whole blocks, the page untouched; EEXIST
 * when no part is big enough.  The kernel's maps say what was reserved.
 */
static void reserve_in_checks(void)
{
	uintptr_t slot, lo, hi;
	if (hp_os_linux.reserve(GIB, GIB, &slot)) {
		tap_skip(11, "no free 1 GiB of address space");
		return;
	}
	ok(hp_os_linux.reserve_in(slot, GIB, slot + 5 * MIB, 32 * MIB, &lo, &hi) == EEXIST,
	   "reserve_in: a slot that is all taken (here, by a reservation): EEXIST");
	hp_os_linux.release(slot, GIB);
	ok(hp_os_linux.reserve_in(slot, GIB, slot + 5 * MIB, 32 * MIB, &lo, &hi) == 0 &&
		   lo == slot && hi == slot + GIB,
	   "reserve_in: a free slot is reserved whole");
	hp_os_linux.release(slot, GIB);

	/* The program's page, 300 MiB into the slot and not block aligned. */
	char *page = mmap((void *)(slot + 300 * MIB + 8192), 4096, RW,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ok(page == (char *)(slot + 300 * MIB + 8192), "the program maps a page in the slot");
	page[0] = 42;
	int err = hp_os_linux.reserve_in(slot, GIB, slot + 310 * MIB, 32 * MIB, &lo, &hi);
	ok(!err && lo == slot + 302 * MIB && hi == slot + GIB,
	   "a hint above the page: the part above it, from the next block (%ld MiB..%ld MiB)",
	   err ? -1L : (long)((lo - slot) / MIB), err ? -1L : (long)((hi - slot) / MIB));
	is(kernel_prot_at(lo), 0, "the kernel has that part PROT_NONE");
	ok(kernel_prot_at(slot + 300 * MIB) < 0 && kernel_prot_at(slot + 301 * MIB + 8192) < 0,
	   "the rest of the page's block is left alone");
	ok(page[0] == 42 && kernel_prot_at((uintptr_t)page) == RW, "the page is untouched");
	if (!err)
		hp_os_linux.release(lo, hi - lo);
	err = hp_os_linux.reserve_in(slot, GIB, slot + 100 * MIB, 32 * MIB, &lo, &hi);
	ok(!err && lo == slot && hi == slot + 300 * MIB, "a hint below it: the part below");
	if (!err)
		hp_os_linux.release(lo, hi - lo);
	err = hp_os_linux.reserve_in(slot, GIB, slot + 100 * MIB, 800 * MIB, &lo, &hi);
	ok(err == EEXIST, "no part of 800 MiB: EEXIST (%d)", err);
	ok(kernel_prot_at(slot) < 0 && kernel_prot_at(slot + 900 * MIB) < 0,
	   "and nothing was reserved");
	munmap(page, 4096);
	ok(hp_os_linux.reserve_in(USER_SLOT_TOP, GIB, USER_SLOT_TOP, 32 * MIB, &lo, &hi) == EEXIST,
	   "past the top of user space: EEXIST");
}

int main(void)
{
	tap_plan(28);
	/* Our own code: the binary, placed low, far from mmap's top-down area. */
	uintptr_t code = (uintptr_t)(void *)&main;
	struct hp_config cfg = {
		.size = sizeof(cfg), .backend = HP_BACKEND_SMALL, .near = (void *)code};
	struct hp_arena *a = hp_arena_create(&cfg);
	ok(a != NULL, "an arena near our code");

	char *p = hp_arena_alloc(a, 64 << 10, RW);
	ok(p != NULL, "allocation in it");
	tap_diag("code at %#lx, allocation at %p: %lu MiB apart", (unsigned long)code, (void *)p,
		 (unsigned long)(dist((uintptr_t)p, code) >> 20));
	ok(dist((uintptr_t)p, code) < GIB, "within 1 GiB of the code (LuaJIT's jump range)");
	/* Our binary's slot holds the binary and the heap, so it is not free
	 * whole: the arena takes the free part of it, not a slot further on. */
	ok(dist((uintptr_t)p, code) < 300 * MIB, "in the free part of the code's own slot");
	ok(!hp_owns((void *)code, 1), "hp_owns: the binary's code is not ours, though near");
	uintptr_t brk_now = (uintptr_t)sbrk(0);
	ok(!hp_owns((void *)brk_now, 255 * MIB),
	   "the 256 MiB above the program break are left for the heap to grow");
	char *q = hp_arena_alloc(a, 2 << 20, RW);
	ok(q && dist((uintptr_t)q, code) < dist((uintptr_t)p, code) + (8UL << 20),
	   "the next block is the next nearest");

	struct hp_arena *far = hp_arena_create(
		&(struct hp_config){.size = sizeof(cfg), .backend = HP_BACKEND_SMALL});
	char *r = far ? hp_arena_alloc(far, 4096, RW) : NULL;
	tap_diag("an arena without near allocates at %p", (void *)r);
	ok(r && dist((uintptr_t)r, code) > dist((uintptr_t)p, code),
	   "without near, memory lands farther (mmap's top-down area)");

	ok(hp_owns(p, 4096) && hp_owns(r, 1), "hp_owns: our allocations");
	ok(hp_owns(p + (64 << 10), 4096), "hp_owns: reserved, not allocated, pages too");
	int on_stack;
	ok(!hp_owns(&on_stack, sizeof(on_stack)), "hp_owns: the stack is not ours");
	void *heap = malloc(100);
	ok(!hp_owns(heap, 100), "hp_owns: malloc memory is not ours");
	free(heap);
	ok(!hp_owns(p, 0) && !hp_owns((void *)UINTPTR_MAX, 2), "hp_owns: size 0 and overflow: no");
	ok(hp_owns((char *)(((uintptr_t)r & ~(GIB - 1)) - 4096), 8192),
	   "hp_owns: a range that starts before a chunk and ends in it");
	ok(kernel_prot_at((uintptr_t)p) == RW, "the kernel maps what hp_owns says is ours, RW");

	reserve_in_checks();

	/* Callers built before hp_config grew near pass the old size. */
	struct hp_config old = {.size = offsetof(struct hp_config, near)};
	struct hp_arena *o = hp_arena_create(&old);
	ok(o != NULL, "hp_config without near (the old size) is accepted");
	struct hp_config tiny = {.size = offsetof(struct hp_config, flags)};
	errno = 0;
	ok(!hp_arena_create(&tiny) && errno == EINVAL, "a smaller hp_config: EINVAL");
	hp_arena_destroy(o);
	hp_arena_destroy(far);
	hp_arena_destroy(a);
	return tap_done();
}
