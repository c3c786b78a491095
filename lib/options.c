/* SPDX-License-Identifier: MIT */
/*
 * options.c - the HUGEPERM_* environment options, from one table
 * (HP_OPTIONS in types.h: name, field, default, bounds, help), and the
 * collapse modes' one name table.
 *
 * Read once, at the first call, from environ directly: getenv() does not
 * allocate, and the preload may get here before libc is fully set up.  A
 * bad value warns (with write(2)) and keeps the default.  Enumerated
 * options (BACKEND, COLLAPSE) take their names (backend.c has the
 * backends'); the rest take numbers.  Only the layer that makes arenas
 * (api.c) reads hp_opt: an arena keeps its own copy of what it needs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct hp_options hp_opt = {
#define HP_OPT_DEFAULT(NAME, field, def, lo, hi, help) .field = (def),
	HP_OPTIONS(HP_OPT_DEFAULT)
#undef HP_OPT_DEFAULT
};

struct option_desc {
	const char *name;
	long *value;
	long def, lo, hi;
	const char *help;
};

static struct option_desc table[HP_NOPTIONS] = {
#define HP_OPT_DESC(NAME, field, def, lo, hi, help)                                                \
	[HP_OPT_##NAME] = {#NAME, &hp_opt.field, (def), (lo), (hi), (help)},
	HP_OPTIONS(HP_OPT_DESC)
#undef HP_OPT_DESC
};

/* Indexed by enum hp_collapse_mode. */
static const char *const collapse_names[] = {
	[HP_COLLAPSE_DEFAULT] = "default",
	[HP_COLLAPSE_DEFERRED] = "deferred",
	[HP_COLLAPSE_SYNC] = "sync",
	[HP_COLLAPSE_OFF] = "off",
};
#define NMODES ((int)(sizeof(collapse_names) / sizeof(collapse_names[0])))

const char *hp_collapse_mode_name(int mode)
{
	return hp_name_of(collapse_names, NMODES, mode);
}

int hp_collapse_mode_parse(const char *name)
{
	return hp_name_find(collapse_names, NMODES, name);
}

/* A name parsed by @parse into *out if it is one in [lo, hi]; else EINVAL. */
static int parse_named(int (*parse)(const char *), const char *value, long lo, long hi, long *out)
{
	int v = parse(value);
	if (v < lo || v > hi)
		return EINVAL;
	*out = v;
	return 0;
}

int hp_option_parse(enum hp_option_id id, const char *value, long *out)
{
	const struct option_desc *d = &table[id];
	if (id == HP_OPT_BACKEND)
		return parse_named(hp_backend_parse, value, d->lo, d->hi, out);
	if (id == HP_OPT_COLLAPSE) /* "default" is what the option says, not a value */
		return parse_named(hp_collapse_mode_parse, value, d->lo, d->hi, out);
	if (id == HP_OPT_NUMA && !strcmp(value, "local")) {
		*out = HP_NUMA_LOCAL;
		return 0;
	}
	if (id == HP_OPT_NUMA && !strcmp(value, "interleave")) {
		*out = HP_NUMA_INTERLEAVE;
		return 0;
	}
	if (id == HP_OPT_NUMA && (*value < '0' || *value > '9'))
		return EINVAL; /* a node number, not a negative one */
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < d->lo || v > d->hi)
		return EINVAL;
	*out = v;
	return 0;
}

static void warn_bad(const char *name, const char *value)
{
	char msg[256];
	struct hp_buf b = {msg, sizeof(msg), 0};
	hp_buf_str(&b, "hugeperm: ignoring HUGEPERM_");
	hp_buf_str(&b, name);
	hp_buf_str(&b, "='");
	hp_buf_str(&b, value);
	hp_buf_str(&b, "' (EINVAL); keeping the default\n");
	hp_os_linux.write_all(2, msg, b.len < b.cap ? b.len : b.cap);
}

void hp_options_init(void)
{
	static bool done;
	char key[64] = "HUGEPERM_";

	if (done)
		return;
	done = true;
	for (int i = 0; i < HP_NOPTIONS; i++) {
		strcpy(key + 9, table[i].name);
		const char *v = getenv(key);
		if (!v)
			continue;
		if (hp_option_parse((enum hp_option_id)i, v, table[i].value))
			warn_bad(table[i].name, v);
	}
}

void hp_options_print(int fd)
{
	char out[2048];
	struct hp_buf b = {out, sizeof(out), 0};
	hp_buf_str(&b, "hugeperm options:\n");
	for (int i = 0; i < HP_NOPTIONS; i++) {
		const struct option_desc *d = &table[i];
		hp_buf_str(&b, "  HUGEPERM_");
		hp_buf_str(&b, d->name);
		hp_buf_pad(&b, 30);
		if (i == HP_OPT_BACKEND)
			hp_buf_str(&b, hp_backend_name((int)*d->value));
		else if (i == HP_OPT_COLLAPSE)
			hp_buf_str(&b, hp_collapse_mode_name((int)*d->value));
		else if (i == HP_OPT_NUMA && *d->value < 0)
			hp_buf_str(&b, *d->value == HP_NUMA_LOCAL ? "local" : "interleave");
		else if (i == HP_OPT_PURGE_MS && *d->value < 0)
			hp_buf_str(&b, "-1 (never)");
		else
			hp_buf_u64(&b, (uint64_t)*d->value);
		hp_buf_pad(&b, 42);
		hp_buf_str(&b, d->help);
		hp_buf_str(&b, "\n");
	}
	hp_os_linux.write_all(fd, out, b.len < b.cap ? b.len : b.cap);
}
