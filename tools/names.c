/* SPDX-License-Identifier: MIT */
/*
 * names.c - the names the command reads and prints for backends, collapse
 * modes, protection classes and the preload's flip modes: the one place in
 * tools/ that knows them.
 *
 * TEMPORARY, until the issue-14 branches are merged.  Each function has
 * the name and signature the libraries are getting (hp_backend_parse and
 * hp_class_name in lib/, hp_collapse_mode_parse in lib/options.c,
 * hp_flip_parse in preload/placement.c, compiled into libhpsim), and reads
 * the library's own table where one is reachable today (hp_backend_name,
 * hp_collapse_mode_name, hp_prot_name); only the flip names are written
 * here, as preload/report.c has them.  The definitions are weak, so that a
 * library's definition wins wherever both are linked.  At merge: delete
 * this file, its name in tools_hugeperm_SOURCES and its block of
 * declarations in tools.h; the callers stay as they are.
 */
#include "config.h" /* _GNU_SOURCE */

#include <string.h>

#include <hugeperm.h>

#include "internal.h" /* hp_collapse_mode_name, hp_prot_name */
#include "tools.h"

#define HP_WEAK __attribute__((weak))

HP_WEAK int hp_backend_parse(const char *name)
{
	for (int b = HP_BACKEND_AUTO; b <= HP_BACKEND_SMALL; b++)
		if (!strcmp(name, hp_backend_name(b)))
			return b;
	return -1;
}

HP_WEAK int hp_collapse_mode_parse(const char *name)
{
	for (int m = HP_COLLAPSE_DEFAULT; m <= HP_COLLAPSE_OFF; m++)
		if (!strcmp(name, hp_collapse_mode_name(m)))
			return m;
	return -1;
}

HP_WEAK const char *hp_class_name(int cls)
{
	return hp_prot_name(cls);
}

HP_WEAK int hp_flip_parse(const char *name)
{
	/* enum hp_preload_flip, as preload/report.c names it */
	static const char *const names[] = {"block", "exact", "rwx"};
	for (int f = 0; f < 3; f++)
		if (!strcmp(name, names[f]))
			return f;
	return -1;
}
