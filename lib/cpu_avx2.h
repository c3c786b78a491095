/* SPDX-License-Identifier: MIT */
/*
 * cpu_avx2.h - whether this CPU and kernel let a program use AVX2, asked
 * with three cpuid instructions and an xgetbv.
 *
 * GCC's __builtin_cpu_supports links libgcc's CPU model, whose constructor
 * runs in every process the library is loaded into (every process under
 * the preload) and asks cpuid about a dozen leaves: about 70 us a process
 * on a virtual machine, where each cpuid traps to the hypervisor (6-13 us
 * apiece here).  code_calls.c's ifunc resolvers need one answer; this is
 * it.  Safe in a resolver: no call, no relocation, no sanitizer.
 */
#ifndef HP_CPU_AVX2_H
#define HP_CPU_AVX2_H

#include <stdbool.h>

#if defined(__x86_64__)
#include <cpuid.h>

/* AVX2 usable: the CPU has AVX and AVX2 (cpuid 1 ECX, 7.0 EBX) and the
 * kernel saves the YMM state (OSXSAVE, XCR0's SSE and AVX bits). */
static inline __attribute__((no_sanitize("address", "undefined"))) bool hp_cpu_avx2(void)
{
	unsigned int a, b, c, d;
	if (__get_cpuid_max(0, 0) < 7)
		return false;
	__cpuid(1, a, b, c, d);
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
		return false;
	unsigned int lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if ((lo & 6) != 6)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & bit_AVX2) != 0;
}
#endif

#endif
