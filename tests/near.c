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

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define RW  (PROT_READ | PROT_WRITE)
#define GIB (1UL << 30)

static uintptr_t dist(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

int main(void)
{
	tap_plan(14);
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
	ok(hp_owns((char *)(((uintptr_t)p & ~(GIB - 1)) - 4096), 8192),
	   "hp_owns: a range that starts before a chunk and ends in it");
	ok(kernel_prot_at((uintptr_t)p) == RW, "the kernel maps what hp_owns says is ours, RW");

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
