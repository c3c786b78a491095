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

#define HP_NOSAN __attribute__((no_sanitize("address", "undefined")))

/* The rule, from what cpuid and xgetbv said: leaf 7 exists (@max_leaf),
 * the CPU has AVX (leaf 1 ECX) and AVX2 (leaf 7.0 EBX), and the kernel
 * saves the YMM state (OSXSAVE in leaf 1 ECX, XCR0's SSE and AVX bits:
 * @xcr0 is read only when OSXSAVE is set).  glibc's rule; GCC's leaves out
 * the AVX bit, so a CPU reporting AVX2 without AVX gets the SSE code here
 * (the safe way). */
static inline HP_NOSAN bool hp_avx2_usable(unsigned int max_leaf, unsigned int ecx1,
					   unsigned long long xcr0, unsigned int ebx7)
{
	return max_leaf >= 7 && (ecx1 & bit_OSXSAVE) && (ecx1 & bit_AVX) && (xcr0 & 6) == 6 &&
	       (ebx7 & bit_AVX2);
}

static inline HP_NOSAN bool hp_cpu_avx2(void)
{
	unsigned int max, a, b, c, d;
	__cpuid(0, max, b, c, d); /* a macro: no call (__get_cpuid_max is one) */
	if (max < 7)
		return false;
	__cpuid(1, a, b, c, d);
	unsigned int ecx1 = c;
	if (!(ecx1 & bit_OSXSAVE)) /* xgetbv would fault */
		return false;
	unsigned int lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	__cpuid_count(7, 0, a, b, c, d);
	return hp_avx2_usable(max, ecx1, ((unsigned long long)hi << 32) | lo, b);
}
#endif

#endif
