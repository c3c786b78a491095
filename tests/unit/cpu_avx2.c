/* SPDX-License-Identifier: MIT */
/*
 * cpu_avx2.t - lib/cpu_avx2.h, which code_calls.c's ifunc resolvers ask
 * instead of GCC's __builtin_cpu_supports (whose libgcc CPU model costs
 * every process the library is loaded into a dozen cpuid traps): its
 * rule on the cases that matter (no leaf 7, no OSXSAVE, the kernel not
 * saving YMM, no AVX, no AVX2), and on this machine the same answer as
 * the kernel's (the avx2 flag of /proc/cpuinfo) and GCC's.  exports.sh
 * checks that the built libraries carry no libgcc CPU model.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cpu_avx2.h"
#include "tap.h"

#if defined(__x86_64__)
/* The kernel's avx2 flag for CPU 0 (it clears it when it does not save
 * the YMM state); -1 if /proc/cpuinfo cannot be read. */
static int kernel_avx2(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[8192];
	int found = -1;
	while (f && found < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			found = strstr(line, " avx2 ") || strstr(line, " avx2\n");
	if (f)
		fclose(f);
	return found;
}
#endif

int main(void)
{
#if defined(__x86_64__)
	tap_plan(8);
	const unsigned int ecx = bit_OSXSAVE | bit_AVX, ebx = bit_AVX2;
	ok(hp_avx2_usable(7, ecx, 0x7, ebx), "leaf 7, OSXSAVE, AVX, XCR0 x87|SSE|YMM, AVX2: yes");
	ok(!hp_avx2_usable(6, ecx, 0x7, ebx), "no leaf 7: no");
	ok(!hp_avx2_usable(13, bit_AVX, 0x7, ebx), "no OSXSAVE (the kernel saves no YMM): no");
	ok(!hp_avx2_usable(13, ecx, 0x3, ebx), "XCR0 without the AVX state: no");
	ok(!hp_avx2_usable(13, ecx, 0x5, ebx), "XCR0 without the SSE state: no");
	ok(!hp_avx2_usable(13, bit_OSXSAVE, 0x7, ebx), "AVX2 without AVX: no (GCC says yes)");
	ok(!hp_avx2_usable(13, ecx, 0xe7, 0), "no AVX2: no");

	int kernel = kernel_avx2();
	__builtin_cpu_init();
	bool gcc = __builtin_cpu_supports("avx2") != 0;
	bool ours = hp_cpu_avx2();
	ok(ours == gcc && (kernel < 0 || ours == (kernel == 1)),
	   "on this machine hp_cpu_avx2() says %s, as __builtin_cpu_supports (%s) and the kernel's "
	   "flags (%s) do",
	   ours ? "yes" : "no", gcc ? "yes" : "no",
	   kernel < 0 ? "unread"
	   : kernel   ? "avx2"
		      : "no avx2");
#else
	tap_skip_all("not x86-64: code_calls.c has no ifunc to resolve");
#endif
	return tap_done();
}
