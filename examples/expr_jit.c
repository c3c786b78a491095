/* SPDX-License-Identifier: MIT */
/*
 * expr_jit.c - compile arithmetic expressions in x to x86-64, W^X throughout.
 *
 *   expr_jit [--pages] 'EXPR' X...     e.g.  expr_jit '(x+3)*(x-2)/2' 1 5 10
 *
 * --pages puts each function on a page of its own (hp_alloc) instead.
 *
 * The code goes into hp_code_alloc()'s packed chunks (64-byte granules in
 * shared PROT_READ|PROT_EXEC pages) and is written with hp_write: no page
 * is ever writable and executable, none changes
 * protection, and the code sits in a huge-mapped block.  Each result is
 * checked against an interpreter of the same tree.
 *
 * Grammar: expr = term {(+|-) term}; term = factor {(*|/) factor};
 *          factor = number | x | ( expr ) | - factor
 */
#include <hugeperm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct code {
	unsigned char buf[4096];
	size_t len;
};

static const char *src;
static struct code out;
static int error;

static void put(const void *bytes, size_t n)
{
	if (out.len + n > sizeof(out.buf)) {
		error = 1;
		return;
	}
	memcpy(out.buf + out.len, bytes, n);
	out.len += n;
}

#define PUT(...)                                                                                   \
	do {                                                                                       \
		const unsigned char b_[] = {__VA_ARGS__};                                          \
		put(b_, sizeof(b_));                                                               \
	} while (0)

/* Each function leaves its value on the machine stack and returns the same
 * value computed by interpretation, for the check. */
static long expr(long x);

static void skip(void)
{
	while (*src == ' ')
		src++;
}

static long factor(long x)
{
	skip();
	if (*src == '(') {
		src++;
		long v = expr(x);
		skip();
		if (*src++ != ')')
			error = 1;
		return v;
	}
	if (*src == '-') {
		src++;
		long v = factor(x);
		PUT(0x48, 0xf7, 0x1c, 0x24); /* neg qword [rsp] */
		return -v;
	}
	if (*src == 'x') {
		src++;
		PUT(0x57); /* push rdi */
		return x;
	}
	if (*src >= '0' && *src <= '9') {
		char *end;
		long v = strtol(src, &end, 10);
		src = end;
		if (v > INT32_MAX)
			error = 1;
		int32_t imm = (int32_t)v;
		PUT(0x68); /* push imm32 */
		put(&imm, 4);
		return v;
	}
	error = 1;
	return 0;
}

/* pop rcx; pop rax; <op>; push rax */
static void binop(const unsigned char *op, size_t n)
{
	PUT(0x59, 0x58);
	put(op, n);
	PUT(0x50);
}

static long term(long x)
{
	long v = factor(x);
	for (;;) {
		skip();
		char c = *src;
		if (c != '*' && c != '/')
			return v;
		src++;
		long w = factor(x);
		if (c == '*') {
			binop((const unsigned char[]){0x48, 0x0f, 0xaf, 0xc1},
			      4); /* imul rax, rcx */
			v *= w;
		} else {
			if (w == 0) { /* the JIT would trap: refuse like the interpreter */
				error = 2;
				return 0;
			}
			binop((const unsigned char[]){0x48, 0x99, 0x48, 0xf7, 0xf9},
			      5); /* cqo; idiv rcx */
			v /= w;
		}
	}
}

static long expr(long x)
{
	long v = term(x);
	for (;;) {
		skip();
		char c = *src;
		if (c != '+' && c != '-')
			return v;
		src++;
		long w = term(x);
		if (c == '+') {
			binop((const unsigned char[]){0x48, 0x01, 0xc8}, 3); /* add rax, rcx */
			v += w;
		} else {
			binop((const unsigned char[]){0x48, 0x29, 0xc8}, 3); /* sub rax, rcx */
			v -= w;
		}
	}
}

int main(int argc, char **argv)
{
	/* --pages: a page per function (hp_alloc), as before packed code; its
	 * calls are traced (HUGEPERM_TRACE), packed code is not. */
	bool pages = argc > 1 && !strcmp(argv[1], "--pages");
	argc -= pages;
	argv += pages;
	if (argc < 3) {
		fprintf(stderr, "usage: %s [--pages] 'EXPR' X...\n", argv[0]);
		return 2;
	}
	int failures = 0;
	for (int i = 2; i < argc; i++) {
		long x = strtol(argv[i], NULL, 10);
		src = argv[1];
		out.len = 0;
		error = 0;
		long want = expr(x);
		PUT(0x58, 0xc3); /* pop rax; ret */
		skip();
		if (error || *src) {
			fprintf(stderr, "expr_jit: %s at '%s'\n",
				error == 2 ? "division by zero" : "syntax error", src);
			return 2;
		}
		/* Packed with other code: 64-byte granules of a shared RX page. */
		unsigned char *fn =
			pages ? hp_alloc(out.len, PROT_READ | PROT_EXEC) : hp_code_alloc(out.len);
		if (!fn || hp_write(fn, out.buf, out.len)) {
			perror("expr_jit: hugeperm");
			return 1;
		}
		long got = ((long (*)(long))(void *)fn)(x);
		printf("x=%ld: %ld (%zu bytes of code%s)\n", x, got, out.len,
		       got == want ? "" : ", WRONG");
		failures += got != want;
		if (pages)
			hp_free(fn);
		else
			hp_code_free(fn);
	}
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_get(&st);
	printf("writes: %lu through the alias, %lu through /proc/self/mem, %lu by flipping; "
	       "mprotect calls: %lu\n",
	       (unsigned long)st.writes_alias, (unsigned long)st.writes_procmem,
	       (unsigned long)st.writes_flip, (unsigned long)st.mprotect_calls);
	printf("packed code: %lu allocations, %lu frees, %lu bytes in use\n",
	       (unsigned long)st.code_allocs, (unsigned long)st.code_frees,
	       (unsigned long)st.code_bytes);
	return failures ? 1 : 0;
}
