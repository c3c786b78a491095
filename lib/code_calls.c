/* SPDX-License-Identifier: MIT */
/*
 * code_calls.c - the public calls of packed code: hp_code_alloc,
 * hp_code_free and their hp_arena_ forms.
 *
 * Their common case is a leaf: the default arena's readiness and the
 * handle checked, then code_fast.h's allocation from the page the thread
 * allocates from, or its free into a page the thread holds, in line: one
 * load of each thread-local word, plain stores, no call, no register
 * saved.  Anything else (set-up of the default arena, a page to find or to
 * give back, another thread's page, whole pages, bad input) is a tail call
 * out of line.  The common case takes nothing from a block and gives
 * nothing back, so it polls for no collapse or purge: the calls that do
 * (the slow paths here, every other call) poll as every public call does.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include "api.h"
#include "code_fast.h"

/* The fill of a free takes half the stores with AVX: hp_code_free has a
 * clone for it, chosen once by the dynamic linker (an ifunc: the call
 * costs the same).  Not under TSan, whose runtime is not up yet when the
 * resolver runs (it would crash at start-up). */
#if defined(__SANITIZE_THREAD__)
#define FILL_CLONES
#else
#define FILL_CLONES __attribute__((target_clones("avx2", "default")))
#endif

/* An allocation that hp_code_alloc_fast did not serve (or size 0, or
 * whole pages). */
static __attribute__((noinline)) void *code_alloc_slow(struct hp_arena *a, size_t size)
{
	if (size == 0) {
		hp_api_bad(EINVAL, "hp_code_alloc", NULL, "size 0");
		return NULL;
	}
	if (size > HP_CODE_MAX_PACKED) /* whole pages */
		return hp_arena_alloc(a, size, PROT_READ | PROT_EXEC);
	void *p = hp_code_alloc_packed(a, size);
	after_call(a);
	return p;
}

/* A free that hp_code_free_fast did not make. */
static __attribute__((noinline)) int code_free_slow(struct hp_arena *a, void *code)
{
	bool taken;
	int err = hp_code_free_packed(a, (uintptr_t)code, &taken);
	if (!taken) /* whole pages, or nothing of ours */
		return hp_arena_free(a, code);
	if (err == EINVAL)
		return hp_api_bad(EINVAL, "hp_code_free", code,
				  "not the start of a live code allocation (interior or freed)");
	if (err) {
		errno = err;
		return -1;
	}
	after_call(a);
	return 0;
}

/* The calls on a live arena (the default one always is: it is never
 * destroyed). */
static inline __attribute__((always_inline)) void *code_alloc(struct hp_arena *a, size_t size,
							      bool forever)
{
	if (__builtin_expect(size - 1 < HP_CODE_MAX_PACKED, 1)) {
		void *p = hp_code_alloc_fast(a, size, forever);
		if (__builtin_expect(p != NULL, 1))
			return p;
	}
	return code_alloc_slow(a, size);
}

static inline __attribute__((always_inline)) int code_free(struct hp_arena *a, void *code,
							   bool forever)
{
	if (!code)
		return 0;
	if (__builtin_expect(hp_code_free_fast(a, (uintptr_t)code, forever), 1))
		return 0;
	return code_free_slow(a, code);
}

void *hp_arena_code_alloc(struct hp_arena *a, size_t size)
{
	return arena_ok(a, "hp_code_alloc") ? code_alloc(a, size, false) : NULL;
}

FILL_CLONES int hp_arena_code_free(struct hp_arena *a, void *code)
{
	return arena_ok(a, "hp_code_free") ? code_free(a, code, false) : -1;
}

/* The hp_X forms before the default arena is up (it is set up here). */
static __attribute__((noinline)) void *code_alloc_first(size_t size)
{
	struct hp_arena *a = hp_default_get();
	return a ? code_alloc(a, size, true) : NULL;
}

static __attribute__((noinline)) int code_free_first(void *code)
{
	struct hp_arena *a = hp_default_get();
	return a ? code_free(a, code, true) : -1;
}

void *hp_code_alloc(size_t size)
{
	if (__builtin_expect(!__atomic_load_n(&hp_default_ready, __ATOMIC_ACQUIRE), 0))
		return code_alloc_first(size);
	return code_alloc(&hp_default_arena, size, true);
}

FILL_CLONES int hp_code_free(void *code)
{
	if (__builtin_expect(!__atomic_load_n(&hp_default_ready, __ATOMIC_ACQUIRE), 0))
		return code_free_first(code);
	return code_free(&hp_default_arena, code, true);
}
