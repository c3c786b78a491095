/* SPDX-License-Identifier: MIT */
/*
 * preloaded.h - what a test program run under libhugeperm-preload.so, and
 * not linked with the library, needs: sizes and protections by name, and
 * hp_owns() reached through the preload, as any program would see it.
 */
#ifndef HP_TEST_PRELOADED_H
#define HP_TEST_PRELOADED_H

#include <dlfcn.h>
#include <stddef.h>
#include <sys/mman.h>

#define KB   1024UL
#define MB   (1024 * KB)
#define GIB  (1024 * MB)
#define RW   (PROT_READ | PROT_WRITE)
#define RX   (PROT_READ | PROT_EXEC)
#define RWX  (PROT_READ | PROT_WRITE | PROT_EXEC)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

typedef int (*owns_fn)(const void *p, size_t len);

/* The preload's hp_owns(), or NULL when the program runs without it. */
static inline owns_fn preloaded_owns(void)
{
	return (owns_fn)dlsym(RTLD_DEFAULT, "hp_owns");
}

#endif
