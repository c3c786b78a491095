/* tcg.c - a guest program for qemu-user: 1,024 distinct functions of 32
 * steps each, called over and over, so that qemu's TCG translates
 * a few MiB of host code into its code buffer (tests/e2e/engines_more.sh
 * builds it and runs it under qemu-x86_64 on this host).  Prints a
 * checksum; with "wait", then "pid N", and waits for a line on stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off */
#define S(n)    x = (x * (2 * (n) + 3)) ^ (x >> ((n) % 13 + 1)) ^ (n);
#define S8(n)   S(n) S(n) S(n) S(n) S(n) S(n) S(n) S(n)
#define F(n)                                                                   \
	static unsigned long f##n(unsigned long x)                             \
	{                                                                      \
		S8(n) S8(n) S8(n) S8(n)                                        \
		return x;                                                      \
	}
#define F4(n)   F(n##0) F(n##1) F(n##2) F(n##3)
#define F16(n)  F4(n##0) F4(n##1) F4(n##2) F4(n##3)
#define F64(n)  F16(n##0) F16(n##1) F16(n##2) F16(n##3)
#define F256(n) F64(n##0) F64(n##1) F64(n##2) F64(n##3)
F256(10) F256(11) F256(12) F256(13)

#define P(n)    f##n,
#define P4(n)   P(n##0) P(n##1) P(n##2) P(n##3)
#define P16(n)  P4(n##0) P4(n##1) P4(n##2) P4(n##3)
#define P64(n)  P16(n##0) P16(n##1) P16(n##2) P16(n##3)
#define P256(n) P64(n##0) P64(n##1) P64(n##2) P64(n##3)
static unsigned long (*const fs[])(unsigned long) = {P256(10) P256(11) P256(12) P256(13)};
/* clang-format on */

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	unsigned long s = 1;

	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
			s += fs[i](s + i);
	printf("%lu\n", s);
	if (argc > 2 && !strcmp(argv[2], "wait")) {
		char line[8];

		printf("pid %d\n", (int)getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	return 0;
}
