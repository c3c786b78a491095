/* SPDX-License-Identifier: MIT */
/*
 * fmt.c - text without malloc or stdio.
 *
 * Error messages, the checked mode's aborts, hp_stats_print() and the
 * options table are written on paths where malloc may not be called (the
 * preload's hooks, a corrupted heap, a signal handler): they format into a
 * caller's stack buffer and go out with write(2).
 */
#include "config.h"

#include <string.h>

#include <errno.h>

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

const char *hp_prot_name(int prot)
{
	static const char *names[HP_NCLASS] = {"none", "r", "w", "rw", "x", "rx", "wx", "rwx"};
	return names[prot & HP_PROT_MASK];
}

const char *hp_backend_name(int backend)
{
	switch (backend) {
	case HP_BACKEND_AUTO:
		return "auto";
	case HP_BACKEND_HUGETLB_1G:
		return "hugetlb-1g";
	case HP_BACKEND_HUGETLB_2M:
		return "hugetlb-2m";
	case HP_BACKEND_THP:
		return "thp";
	case HP_BACKEND_SMALL:
		return "small";
	}
	return "?";
}

const char *hp_errno_name(int e)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {
		{ENOENT, "ENOENT"},   {EACCES, "EACCES"},   {EPERM, "EPERM"},
		{ESRCH, "ESRCH"},     {EINVAL, "EINVAL"},   {ENOMEM, "ENOMEM"},
		{ENOEXEC, "ENOEXEC"}, {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"},
		{EROFS, "EROFS"},     {ENOSPC, "ENOSPC"},   {EEXIST, "EEXIST"},
		{EIO, "EIO"},	      {ENOTSUP, "ENOTSUP"}, {EAGAIN, "EAGAIN"},
		{EBUSY, "EBUSY"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	return "errno";
}
