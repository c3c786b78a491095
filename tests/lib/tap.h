/* SPDX-License-Identifier: MIT */
/* tap.h - a small TAP producer for the tests (run by tap-driver.sh). */
#ifndef HP_TAP_H
#define HP_TAP_H

#include <stdbool.h>
#include <stddef.h>

void tap_plan(int n);
/* Skip the whole program: "1..0 # SKIP reason". */
__attribute__((noreturn)) void tap_skip_all(const char *reason);
bool tap_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_skip(int n, const char *reason);
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run fn(arg) in a child with @env ("NAME=value", or NULL) added to its
 * environment; its stdout and stderr go to @out (NUL-terminated).  Returns
 * the wait status. */
int tap_child(void (*fn)(void *arg), void *arg, const char *env, char *out, size_t n);
/* Print the plan if none was given; exit status 0 if all passed. */
int tap_done(void);

#define ok(cond, ...) tap_ok((cond), __VA_ARGS__)
#define is(got, want, ...)                                                                         \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		if (!tap_ok(g_ == w_, __VA_ARGS__))                                                \
			tap_diag("  got %lld, want %lld (%s)", g_, w_, #got);                      \
	} while (0)

#endif
