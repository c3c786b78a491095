/* SPDX-License-Identifier: MIT */
/*
 * tiny_jit.c - the smallest JIT on hugeperm: emit a function into fresh
 * pages, make them executable, call it.
 *
 *   cc tiny_jit.c $(pkg-config --cflags --libs hugeperm)
 *
 * HP_HOME(PROT_READ | PROT_EXEC) places the pages in an executable block
 * although they start writable, so flipping them to RX leaves the block
 * uniform (and huge-mappable) instead of splitting a data block.
 */
#include <hugeperm.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	/* mov eax, 42 ; ret */
	static const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};

	unsigned char *fn = hp_alloc(4096, PROT_READ | PROT_WRITE | HP_HOME(PROT_READ | PROT_EXEC));
	if (!fn) {
		perror("hp_alloc");
		return 1;
	}
	memcpy(fn, code, sizeof(code));
	if (hp_protect(fn, 4096, PROT_READ | PROT_EXEC)) {
		perror("hp_protect");
		return 1;
	}
	int (*f)(void) = (int (*)(void))(void *)fn;
	printf("function at %p returned %d\n", (void *)fn, f());
	fflush(stdout); /* hp_stats_print writes with write(2) */
	hp_collapse_pending();
	hp_stats_print(1, 0);
	return hp_free(fn) ? 1 : 0;
}
