/* SPDX-License-Identifier: MIT */
/*
 * llvm_mcjit.c - hugeperm's RuntimeDyld memory manager through LLVM's MCJIT
 * C API (hp_llvm_memory_manager_create), held to the kernel's view: many
 * small modules compiled and run; their code packed into few pages of an
 * r-x, huge-mapped mapping of ours, their read-only data read-only, their
 * globals writable; no mapping writable and executable after any module is
 * linked; everything freed with the engine.  Then in an arena without
 * aliases, where the code is linked in a staging copy and written with
 * hp_arena_write().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <llvm-c/Core.h>
#include <llvm-c/ExecutionEngine.h>
#include <llvm-c/IRReader.h>
#include <llvm-c/Target.h>

#include "hugeperm-llvm.h"
#include "kernel.h"
#include "tap.h"

#define NMOD 300

/* Module @k: a function reading a read-only table and bumping a global. */
static LLVMModuleRef module(LLVMContextRef ctx, int k)
{
	char ir[1024], name[32];
	snprintf(ir, sizeof(ir),
		 "@g%d = global i64 0\n"
		 "@t%d = constant [4 x i64] [i64 %d, i64 2, i64 3, i64 4]\n"
		 "define i64 @f%d(i64 %%x) {\n"
		 "  %%p = getelementptr [4 x i64], [4 x i64]* @t%d, i64 0, i64 0\n"
		 "  %%k = load volatile i64, i64* %%p\n"
		 "  %%m = mul i64 %%x, %%k\n"
		 "  %%r = add i64 %%m, 1\n"
		 "  %%o = load i64, i64* @g%d\n"
		 "  %%o1 = add i64 %%o, 1\n"
		 "  store i64 %%o1, i64* @g%d\n"
		 "  ret i64 %%r\n"
		 "}\n",
		 k, k, k, k, k, k, k);
	snprintf(name, sizeof(name), "m%d", k);
	LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(ir, strlen(ir), name);
	LLVMModuleRef m = NULL;
	char *err = NULL;
	if (LLVMParseIRInContext(ctx, buf, &m, &err)) {
		tap_diag("module %d: %s", k, err);
		LLVMDisposeMessage(err);
		return NULL;
	}
	return m;
}

/* Any mapping writable and executable now? */
static int wx_mappings(void)
{
	size_t n;
	int wx = 0;
	if (kernel_maps_load() != 0)
		return -1;
	const struct kernel_vma *v = kernel_maps(&n);
	for (size_t i = 0; i < n; i++)
		wx += (v[i].prot & (PROT_WRITE | PROT_EXEC)) == (PROT_WRITE | PROT_EXEC);
	return wx;
}

static int stats(struct hp_arena *arena, struct hp_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return arena ? hp_arena_stats_get(arena, st) : hp_stats_get(st);
}

/* Link and run NMOD modules in @arena (NULL: the default arena); @label
 * names the case. */
static void run(struct hp_arena *arena, const char *label)
{
	struct hp_stats before, after;
	stats(arena, &before);
	LLVMContextRef ctx = LLVMContextCreate();
	struct LLVMMCJITCompilerOptions o;
	LLVMInitializeMCJITCompilerOptions(&o, sizeof(o));
	o.MCJMM = hp_llvm_memory_manager_create(arena);
	LLVMExecutionEngineRef ee = NULL;
	char *err = NULL;
	LLVMModuleRef first = module(ctx, 0);
	bool made = first && !LLVMCreateMCJITCompilerForModule(&ee, first, &o, sizeof(o), &err);
	if (!tap_ok(made, "%s: MCJIT with hugeperm's memory manager (%s)", label,
		    err ? err : "ok")) {
		LLVMDisposeMessage(err);
		return;
	}

	uintptr_t code[NMOD], lo = UINTPTR_MAX, hi = 0;
	int wrong = 0, wx = 0, not_ours = 0, prot_bad = 0;
	for (int k = 0; k < NMOD; k++) {
		char name[32];
		if (k > 0)
			LLVMAddModule(ee, module(ctx, k));
		snprintf(name, sizeof(name), "f%d", k);
		uint64_t (*f)(uint64_t) = (uint64_t(*)(uint64_t))LLVMGetFunctionAddress(ee, name);
		snprintf(name, sizeof(name), "g%d", k);
		uint64_t *g = (uint64_t *)(uintptr_t)LLVMGetGlobalValueAddress(ee, name);
		snprintf(name, sizeof(name), "t%d", k);
		uintptr_t t = LLVMGetGlobalValueAddress(ee, name);
		if (!f || !g || !t) {
			wrong++;
			continue;
		}
		/* Linked: no mapping may be writable and executable. */
		wx += wx_mappings() != 0;
		wrong +=
			f(10) != (uint64_t)(10 * k + 1) || f(3) != (uint64_t)(3 * k + 1) || *g != 2;
		code[k] = (uintptr_t)f;
		lo = code[k] < lo ? code[k] : lo;
		hi = code[k] > hi ? code[k] : hi;
		not_ours +=
			!hp_owns((void *)code[k], 1) || !hp_owns(g, 8) || !hp_owns((void *)t, 8);
		prot_bad += kernel_maps_prot(code[k]) != (PROT_READ | PROT_EXEC) ||
			    kernel_maps_prot((uintptr_t)g) != (PROT_READ | PROT_WRITE) ||
			    kernel_maps_prot(t) != PROT_READ;
	}
	tap_ok(wrong == 0,
	       "%s: %d modules linked and run: functions, read-only tables, globals "
	       "(%d wrong)",
	       label, NMOD, wrong);
	tap_ok(not_ours == 0, "%s: code, read-only data and globals are hugeperm's (%d not)", label,
	       not_ours);
	tap_ok(prot_bad == 0, "%s: the kernel has the code r-x, tables r--, globals rw- (%d not)",
	       label, prot_bad);
	tap_ok(wx == 0, "%s: no mapping writable and executable after any link (%d times)", label,
	       wx);

	/* Packed: the functions share pages (LLVM's own manager: a page each). */
	int pages = 0;
	for (int k = 0; k < NMOD; k++) {
		int seen = 0;
		for (int j = 0; j < k && !seen; j++)
			seen = code[j] / 4096 == code[k] / 4096;
		pages += !seen;
	}
	stats(arena, &after);
	uint64_t allocs = after.code_allocs - before.code_allocs;
	tap_ok(pages * 8 <= NMOD && allocs >= NMOD,
	       "%s: %d functions on %d pages, %" PRIu64 " code allocations, %" PRIu64
	       " bytes of code",
	       label, NMOD, pages, allocs, after.code_bytes - before.code_bytes);
	long huge = kernel_huge_kb(lo & ~(uintptr_t)0x1fffff, (hi | 0x1fffff) + 1);
	tap_ok(huge >= 2048, "%s: the code's block is huge-mapped (%ld kB)", label, huge);
	if (arena)
		tap_ok(after.writes_procmem + after.writes_alias >
				       before.writes_procmem + before.writes_alias &&
			       after.writes_flip == before.writes_flip &&
			       after.mprotect_calls == before.mprotect_calls,
		       "%s: sections written with hp_arena_write (%" PRIu64
		       " through /proc/self/mem), no protection changed",
		       label, after.writes_procmem - before.writes_procmem);

	LLVMDisposeExecutionEngine(ee);
	LLVMContextDispose(ctx);
	stats(arena, &after);
	/* The code allocator may keep a page a thread for the next code. */
	size_t data_after = after.used_bytes - after.code_pages * 4096;
	size_t data_before = before.used_bytes - before.code_pages * 4096;
	tap_ok(after.code_frees - before.code_frees == allocs &&
		       after.code_bytes == before.code_bytes && data_after <= data_before,
	       "%s: disposing of the engine frees its code (%" PRIu64 " frees) and data (%zu bytes "
	       "in use besides code pages, %zu before)",
	       label, after.code_frees - before.code_frees, data_after, data_before);
}

int main(void)
{
	tap_plan(19);
	LLVMLinkInMCJIT();
	LLVMInitializeNativeTarget();
	LLVMInitializeNativeAsmPrinter();
	LLVMInitializeNativeAsmParser();

	run(NULL, "default arena");

	/* Without aliases, code is linked in a staging copy and written once. */
	struct hp_config cfg = {.size = sizeof(cfg), .flags = HP_ARENA_NO_ALIAS};
	struct hp_arena *a = hp_arena_create(&cfg);
	if (tap_ok(a != NULL, "an arena without aliases"))
		run(a, "no-alias arena");
	else
		tap_skip(9, "no arena");
	if (a)
		hp_arena_destroy(a);

	/* An unused manager is disposed of through the C API. */
	LLVMDisposeMCJITMemoryManager(hp_llvm_memory_manager_create(NULL));
	tap_ok(true, "an unused manager disposed of");
	return tap_done();
}
