/* SPDX-License-Identifier: MIT */
/*
 * fmt.c - text without malloc or stdio.
 *
 * Error messages, the checked mode's aborts, hp_stats_print() and the
 * options table are written on paths where malloc may not be called (the
 * preload's hooks, a corrupted heap, a signal handler): they format into a
 * caller's stack buffer and go out with write(2).  Also the classes' name
 * table and errno names (glibc's).
 */
#include "config.h"

#include <string.h>

#include "internal.h"

void hp_buf_str(struct hp_buf *b, const char *s)
{
	for (; *s; s++, b->len++)
		if (b->len < b->cap)
			b->p[b->len] = *s;
}

void hp_buf_u64(struct hp_buf *b, uint64_t v)
{
	char tmp[21];
	int i = 20;
	tmp[i] = 0;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	hp_buf_str(b, tmp + i);
}

void hp_buf_hex(struct hp_buf *b, uint64_t v)
{
	char tmp[17];
	int i = 16;
	tmp[i] = 0;
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	hp_buf_str(b, tmp + i);
}

void hp_buf_pad(struct hp_buf *b, size_t col)
{
	size_t line = b->len;
	while (line > 0 && (line > b->cap || b->p[line - 1] != '\n'))
		line--;
	while (b->len - line < col)
		hp_buf_str(b, " ");
}

void hp_buf_fixed(struct hp_buf *b, double v, int decimals)
{
	uint64_t scale = 1;
	for (int i = 0; i < decimals; i++)
		scale *= 10;
	if (v < 0) {
		hp_buf_str(b, "-");
		v = -v;
	}
	uint64_t x = (uint64_t)(v * (double)scale + 0.5);
	hp_buf_u64(b, x / scale);
	if (decimals) {
		hp_buf_str(b, ".");
		char frac[24];
		uint64_t f = x % scale;
		for (int i = decimals - 1; i >= 0; i--, f /= 10)
			frac[i] = (char)('0' + f % 10);
		frac[decimals] = 0;
		hp_buf_str(b, frac);
	}
}

const char *hp_name_of(const char *const *names, int n, int i)
{
	return i >= 0 && i < n ? names[i] : "?";
}

int hp_name_find(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

const char *hp_class_name(int cls)
{
	static const char *names[HP_NCLASS] = {"none", "r", "w", "rw", "x", "rx", "wx", "rwx"};
	return names[cls & HP_PROT_MASK];
}

const char *hp_errno_name(int e)
{
	/* For an errno glibc has no name for: its number, in a buffer of the
	 * calling thread's (initial-exec: the preload may be the caller). */
	static __thread char number[16] __attribute__((tls_model("initial-exec")));
	if (e == ENOTSUP) /* glibc names 95 EOPNOTSUPP; we say ENOTSUP, as we always did */
		return "ENOTSUP";
	const char *name = strerrorname_np(e);
	if (name)
		return name;
	struct hp_buf b = {number, sizeof(number) - 1, 0};
	if (e < 0)
		hp_buf_str(&b, "-");
	hp_buf_u64(&b, e < 0 ? -(uint64_t)e : (uint64_t)e);
	number[b.len < b.cap ? b.len : b.cap] = 0;
	return number;
}
