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
#include "cpu_avx2.h"

/* The fill of a free takes half the stores with AVX2: hp_code_free and
 * hp_arena_code_free are ifuncs, each resolved once by the dynamic linker
 * to its form built for AVX2 or to the one for any x86-64 (the call costs
 * the same).  Their resolvers are static, so that the library exports no
 * symbol of theirs (target_clones exported NAME.resolver).  Not under
 * TSan, whose runtime is not up yet when a resolver runs (it would crash
 * at start-up). */
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define FILL_IFUNC 1
#else
#define FILL_IFUNC 0
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

/* The default arena's slow paths: set it up if it is not (the fast paths
 * need no check of that: a thread's first cache slot names the default
 * arena only once the thread has seen it set up). */
static __attribute__((noinline)) void *default_alloc_slow(size_t size)
{
	struct hp_arena *a = hp_default_get();
	return a ? code_alloc_slow(a, size) : NULL;
}

static __attribute__((noinline)) int default_free_slow(void *code)
{
	struct hp_arena *a = hp_default_get();
	return a ? code_free_slow(a, code) : -1;
}

/* The calls on a live arena (@forever: the default one, which is never
 * destroyed, and may not be set up yet: its slow paths set it up). */
static inline __attribute__((always_inline)) void *code_alloc(struct hp_arena *a, size_t size,
							      bool forever)
{
	if (__builtin_expect(size - 1 < HP_CODE_MAX_PACKED, 1)) {
		void *p = hp_code_alloc_fast(a, size, forever);
		if (__builtin_expect(p != NULL, 1))
			return p;
	}
	return forever ? default_alloc_slow(size) : code_alloc_slow(a, size);
}

static inline __attribute__((always_inline)) int code_free(struct hp_arena *a, void *code,
							   bool forever, bool wide)
{
	if (!code)
		return 0;
	if (__builtin_expect(hp_code_free_fast(a, (uintptr_t)code, forever, wide), 1))
		return 0;
	return forever ? default_free_slow(code) : code_free_slow(a, code);
}

void *hp_arena_code_alloc(struct hp_arena *a, size_t size)
{
	return arena_ok(a, "hp_code_alloc") ? code_alloc(a, size, false) : NULL;
}

/* The hp_X forms: hp_default_arena's address is a constant, whether or not
 * it is set up. */
void *hp_code_alloc(size_t size)
{
	return code_alloc(&hp_default_arena, size, true);
}

/* hp_arena_code_free and hp_code_free, with 32-byte stores of the fill
 * (@wide) or 16-byte ones. */
static inline __attribute__((always_inline)) int arena_code_free(struct hp_arena *a, void *code,
								 bool wide)
{
	return arena_ok(a, "hp_code_free") ? code_free(a, code, false, wide) : -1;
}

static inline __attribute__((always_inline)) int default_code_free(void *code, bool wide)
{
	return code_free(&hp_default_arena, code, true, wide);
}

#if FILL_IFUNC
static __attribute__((target("avx2"))) int arena_code_free_avx2(struct hp_arena *a, void *code)
{
	return arena_code_free(a, code, true);
}

static int arena_code_free_sse(struct hp_arena *a, void *code)
{
	return arena_code_free(a, code, false);
}

static __attribute__((target("avx2"))) int code_free_avx2(void *code)
{
	return default_code_free(code, true);
}

static int code_free_sse(void *code)
{
	return default_code_free(code, false);
}

/* The resolvers, run by the dynamic linker before any constructor: not
 * instrumented (ASan's shadow memory is not mapped yet). */
#define RESOLVER __attribute__((no_sanitize("address", "undefined")))

/* Asked once for both resolvers.  Under lazy binding two threads may
 * resolve at once: both store the same answer. */
static RESOLVER bool has_avx2(void)
{
	static int known; /* 0 not asked, 1 no, 2 yes */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (!k) {
		k = hp_cpu_avx2() ? 2 : 1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 2;
}

static RESOLVER int (*resolve_arena_code_free(void))(struct hp_arena *, void *)
{
	return has_avx2() ? arena_code_free_avx2 : arena_code_free_sse;
}

static RESOLVER int (*resolve_code_free(void))(void *)
{
	return has_avx2() ? code_free_avx2 : code_free_sse;
}

int hp_arena_code_free(struct hp_arena *a, void *code)
	__attribute__((ifunc("resolve_arena_code_free")));
int hp_code_free(void *code) __attribute__((ifunc("resolve_code_free")));
#else
int hp_arena_code_free(struct hp_arena *a, void *code)
{
	return arena_code_free(a, code, false);
}

int hp_code_free(void *code)
{
	return default_code_free(code, false);
}
#endif
