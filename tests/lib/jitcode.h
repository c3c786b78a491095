/* SPDX-License-Identifier: MIT */
/*
 * jitcode.h - code written and run the way the tests' JITs do it (x86-64),
 * for the programs run under the preload (preload_ops, stale_ops).
 */
#ifndef HP_TEST_JITCODE_H
#define HP_TEST_JITCODE_H

#include <stdbool.h>
#include <stddef.h>

/* A memfd of @len bytes, or -1. */
int memfd(size_t len);
/* Do the @n bytes at @p all read zero? */
bool all_zero(const void *p, size_t n);
/* Put "mov eax, @value; ret" at @p. */
void put_code(unsigned char *p, int value);
/* Call the code at @code: what it returns. */
int call_at(const unsigned char *code);
/* put_code() at @write_at, then call @code. */
int run_code(unsigned char *code, unsigned char *write_at, int value);
/* Do @n bytes at @p all read @byte through /proc/self/mem (whatever their
 * protection, and whether the program may touch them or not)? */
bool proc_mem_all(const void *p, size_t n, unsigned char byte);
/* call_at(@p) in a child (no core file if it dies): the value it returned
 * (0-127), minus the signal that ended it, or INT_MIN if no child ran. */
int call_in_child(const unsigned char *p);
/* @len bytes RW, as LuaJIT asks for its areas: hinted at a 64 KiB-aligned
 * address 64 MiB above the program's code; NULL if the kernel refused. */
unsigned char *lj_area_mapped(size_t len);

#endif
