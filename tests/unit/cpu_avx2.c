/* SPDX-License-Identifier: MIT */
/*
 * cpu_avx2.t - lib/cpu_avx2.h, which code_calls.c's ifunc resolvers ask
 * instead of GCC's __builtin_cpu_supports (whose libgcc CPU model costs
 * every process the library is loaded into a dozen cpuid traps), gives
 * the same answer as GCC's on this machine.  exports.sh checks that the
 * built libraries carry no libgcc CPU model.
 */
#include <stdbool.h>

#include "cpu_avx2.h"
#include "tap.h"

int main(void)
{
#if defined(__x86_64__)
	tap_plan(2);
	__builtin_cpu_init();
	bool gcc = __builtin_cpu_supports("avx2") != 0;
	is(hp_cpu_avx2(), gcc, "hp_cpu_avx2() says %s, as __builtin_cpu_supports does",
	   gcc ? "yes" : "no");
	is(hp_cpu_avx2(), hp_cpu_avx2(), "and says it again");
#else
	tap_skip_all("not x86-64: code_calls.c has no ifunc to resolve");
#endif
	return tap_done();
}
