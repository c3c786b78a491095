/* SPDX-License-Identifier: MIT */
/*
 * report.c - the preload's report at exit: what it served, what it sent to
 * the kernel, and hugeperm's statistics summed over its arenas.
 *
 * HUGEPERM_STATS_DIR=dir writes dir/PID.txt (a table) and dir/PID.json, one
 * pair per process, which is how `hugeperm run --stats` collects them from
 * a program and all its children.  HUGEPERM_PRELOAD_REPORT=1 writes the
 * table to stderr.  Both options are read at start-up (options.c).
 *
 * The report is written when the process leaves: by exit (the destructor)
 * or by _exit / _Exit (Python's os._exit), which run no destructor, so the
 * preload interposes them.  A process that leaves by the exit_group system
 * call itself, or is killed, runs no code of ours: for it, dir/PID.started,
 * written at start-up with the program's name, tells `hugeperm run` that it
 * did load the preload, so that it can say why there is no report.
 *
 * It runs after the program is done, so it may use snprintf; the hooks
 * never do.  It reads the counters (counters.c), the region table and the
 * arenas; nothing calls into it but its constructor, destructor and _exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

/* The counters, with what the hooks do not count: the ranges mapped now
 * and the flip mode. */
void hp_preload_counts(struct hp_preload_counts *out)
{
	*out = preload_counts;
	out->passed = __atomic_load_n(&preload_counts.passed, __ATOMIC_RELAXED);
	out->shared_collapse_ns =
		__atomic_load_n(&preload_counts.shared_collapse_ns, __ATOMIC_RELAXED);
	out->live_regions = region_count();
	out->flip_mode = preload_opt.flip;
}

/* What the arenas destroyed so far did: their event counters.  Under the
 * preload's lock (serve.c). */
static struct hp_stats retired = {.size = sizeof(retired)};

void hp_preload_retire(struct hp_arena *a)
{
	struct hp_stats st = {.size = sizeof(st)};
	if (hp_arena_stats_get(a, &st))
		return;
	/* What it holds goes with it: only what it did stays. */
	st.reserved_bytes = st.committed_bytes = st.used_bytes = st.free_bytes = 0;
	st.cached_bytes = st.blocks = st.free_blocks = st.huge_blocks = st.mixed_blocks = 0;
	st.huge_used_bytes = st.collapse_pending = st.aliased_blocks = 0;
	st.code_bytes = st.code_lost_bytes = st.code_pages = st.lazy_blocks = st.lazy_bytes = 0;
	for (int c = 0; c < HP_NCLASS; c++)
		st.cls[c].used_bytes = st.cls[c].huge_used_bytes = st.cls[c].blocks =
			st.cls[c].huge_blocks = 0;
	hp_stats_add(&retired, &st);
}

/* hugeperm's statistics, summed over the preload's arenas, with what the
 * destroyed ones did. */
int hp_preload_stats(struct hp_stats *sum)
{
	*sum = retired;
	for (int i = 0; i < arena_count(); i++) {
		struct hp_stats st = {.size = sizeof(st)};
		if (!arena_at(i)) /* a fixed range's, gone with it (serve.c) */
			continue;
		if (hp_arena_stats_get(arena_at(i), &st))
			return -1;
		hp_stats_add(sum, &st);
	}
	return 0;
}

/* Sum @st into @sum: every counter is a uint64_t but the two enums and the
 * coverage ratio, which is recomputed. */
void hp_stats_add(struct hp_stats *sum, const struct hp_stats *st)
{
	_Static_assert((sizeof(struct hp_stats) - offsetof(struct hp_stats, splits)) %
				       sizeof(uint64_t) ==
			       0,
		       "hp_stats ends in counters");
	uint64_t *d = &sum->reserved_bytes;
	const uint64_t *s = &st->reserved_bytes;
	for (; d <= &sum->huge_used_bytes; d++, s++)
		*d += *s;
	d = &sum->splits;
	s = &st->splits;
	for (; (char *)d < (char *)sum + sizeof(*sum); d++, s++)
		*d += *s;
	if (!sum->blocks || st->blocks) {
		sum->backend = st->backend;
		sum->collapse_mode = st->collapse_mode;
	}
	/* As the library counts it: pages of class NONE hold no memory. */
	uint64_t used = sum->used_bytes - sum->cls[PROT_NONE].used_bytes;
	uint64_t huge = sum->huge_used_bytes - sum->cls[PROT_NONE].huge_used_bytes;
	sum->coverage = used ? (double)huge / (double)used : 1.0;
}

/* Executable bytes in use, and of them in huge-mapped blocks. */
static void code_bytes(const struct hp_stats *st, uint64_t *used, uint64_t *huge)
{
	*used = *huge = 0;
	for (int c = 0; c < HP_NCLASS; c++)
		if (c & PROT_EXEC) {
			*used += st->cls[c].used_bytes;
			*huge += st->cls[c].huge_used_bytes;
		}
}

static void comm(char *out, size_t n)
{
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, out, n - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (r <= 0)
		r = 0;
	out[r] = 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
	for (char *s = out; *s; s++) /* stay valid JSON */
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			*s = '?';
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void write_table(int fd, const char *name, const struct hp_preload_counts *n,
			const struct hp_stats *st)
{
	char buf[2048];
	uint64_t code, code_huge;
	code_bytes(st, &code, &code_huge);
	int len = snprintf(
		buf, sizeof(buf),
		"hugeperm preload: pid %d (%s), flip mode %s\n"
		"  served:    %llu executable mappings, %llu JIT areas, %llu KiB; %llu "
		"reservations "
		"(%llu block merges, %llu at a fixed address, %llu told EEXIST once); %llu below 2 "
		"GiB; "
		"%llu ranges now "
		"mapped\n"
		"  kernel:    %llu mmap calls passed through, %llu we could not serve\n"
		"  changes:   %llu protection changes (%llu whole-block flips, %llu left RWX), "
		"%llu munmap, %llu mremap, %llu MADV_DONTNEED, %llu MAP_FIXED\n"
		"  at exit:   %llu KiB executable in use, %llu KiB of it huge-mapped (%.1f%%)\n"
		"  shared:    %llu shared-memory views (%llu placed 2 MiB-aligned, %llu code, %llu "
		"found in the maps), "
		"%llu 2 MiB units of code collapsed, %llu refused\n"
		"  packed:    %llu small code views packed in %llu windows: %llu adopted, %llu "
		"kept the program's, %llu freed, %llu lost; %llu window collapses, %llu refused\n"
		"  reserved:  %llu reservations held for the kernel until they hold code: %llu "
		"adopted as code, %llu left the kernel's\n"
		"  time:      %llu fresh 2 MiB blocks faulted in, %.1f ms; MADV_COLLAPSE %.1f ms "
		"for blocks, %.1f ms for shared code\n",
		(int)getpid(), name, hp_flip_name(n->flip_mode), (unsigned long long)n->exec,
		(unsigned long long)n->areas, (unsigned long long)(n->served_bytes >> 10),
		(unsigned long long)n->code_ranges, (unsigned long long)n->code_range_merged,
		(unsigned long long)n->fixed, (unsigned long long)n->fixed_refused,
		(unsigned long long)n->low, (unsigned long long)n->live_regions,
		(unsigned long long)n->passed, (unsigned long long)n->fallbacks,
		(unsigned long long)n->protects, (unsigned long long)n->flips_block,
		(unsigned long long)n->flips_relaxed, (unsigned long long)n->unmaps,
		(unsigned long long)n->remaps, (unsigned long long)n->dontneed,
		(unsigned long long)(n->fixed_fresh + n->fixed_given),
		(unsigned long long)(code >> 10), (unsigned long long)(code_huge >> 10),
		code ? 100.0 * (double)code_huge / (double)code : 0.0,
		(unsigned long long)n->shared_views, (unsigned long long)n->shared_aligned,
		(unsigned long long)n->shared_code_views, (unsigned long long)n->shared_adopted,
		(unsigned long long)n->shared_collapsed,
		(unsigned long long)n->shared_collapse_failed, (unsigned long long)n->shared_packed,
		(unsigned long long)n->shared_packed_windows,
		(unsigned long long)n->shared_packed_adopted,
		(unsigned long long)n->shared_packed_kept,
		(unsigned long long)n->shared_packed_freed,
		(unsigned long long)n->shared_packed_lost,
		(unsigned long long)n->shared_packed_collapsed,
		(unsigned long long)n->shared_packed_failed, (unsigned long long)n->resv_held,
		(unsigned long long)n->resv_adopted, (unsigned long long)n->resv_kept,
		(unsigned long long)st->fresh_blocks, ms(st->fresh_ns), ms(st->collapse_ns),
		ms(n->shared_collapse_ns));
	hp_preload_write(fd, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1);
	if (n->arenas)
		hp_stats_write(st, fd, 0);
}

static void write_json(int fd, const char *name, const struct hp_preload_counts *n,
		       const struct hp_stats *st)
{
	uint64_t code, code_huge;
	code_bytes(st, &code, &code_huge);
	const struct {
		const char *key;
		uint64_t v;
	} f[] = {
		{"exec", n->exec},
		{"areas", n->areas},
		{"reservations", n->code_ranges},
		{"resv_merged", n->code_range_merged},
		{"resv_held", n->resv_held},
		{"resv_adopted", n->resv_adopted},
		{"resv_kept", n->resv_kept},
		{"fixed_ranges", n->fixed},
		{"fixed_refused", n->fixed_refused},
		{"low_32bit", n->low},
		{"served_bytes", n->served_bytes},
		{"live_regions", n->live_regions},
		{"passed", n->passed},
		{"fallbacks", n->fallbacks},
		{"arenas", n->arenas},
		{"protects", n->protects},
		{"flips_block", n->flips_block},
		{"flips_relaxed", n->flips_relaxed},
		{"unmaps", n->unmaps},
		{"remaps", n->remaps},
		{"dontneed", n->dontneed},
		{"fixed_fresh", n->fixed_fresh},
		{"fixed_given", n->fixed_given},
		{"given_bytes", n->given_bytes},
		{"scrubbed", n->scrubbed},
		{"scrub_failed", n->scrub_failed},
		{"code_bytes", code},
		{"code_huge_bytes", code_huge},
		{"shared_views", n->shared_views},
		{"shared_aligned", n->shared_aligned},
		{"shared_code_views", n->shared_code_views},
		{"shared_adopted", n->shared_adopted},
		{"shared_collapsed", n->shared_collapsed},
		{"shared_collapse_failed", n->shared_collapse_failed},
		{"shared_packed", n->shared_packed},
		{"shared_packed_adopted", n->shared_packed_adopted},
		{"shared_packed_kept", n->shared_packed_kept},
		{"shared_packed_freed", n->shared_packed_freed},
		{"shared_packed_lost", n->shared_packed_lost},
		{"shared_packed_windows", n->shared_packed_windows},
		{"shared_packed_collapsed", n->shared_packed_collapsed},
		{"shared_packed_failed", n->shared_packed_failed},
		{"shared_collapse_ns", n->shared_collapse_ns},
	};
	char buf[2048];
	size_t len = (size_t)snprintf(buf, sizeof(buf),
				      "{\"pid\":%d,\"comm\":\"%s\",\"preload\":{\"flip\":\"%s\"",
				      (int)getpid(), name, hp_flip_name(n->flip_mode));
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && len < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, ",\"%s\":%llu", f[i].key,
					(unsigned long long)f[i].v);
	if (len < sizeof(buf))
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "},\"hugeperm\":");
	hp_preload_write(fd, buf, len < sizeof(buf) ? len : sizeof(buf) - 1);
	hp_stats_write(st, fd, HP_STATS_JSON);
	hp_preload_write(fd, "}\n", 2);
}

#define REPORT_PATH 4096

/* dir/PID.EXT, its path left in @path, opened for writing; -1 if not. */
static int open_report(const char *dir, const char *ext, char path[REPORT_PATH])
{
	if ((size_t)snprintf(path, REPORT_PATH, "%s/%d.%s", dir, (int)getpid(), ext) >= REPORT_PATH)
		return -1;
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

/* dir/PID.EXT, written whole or not at all: into dir/PID.EXT.part, renamed
 * when complete.  `hugeperm run` reads the reports once its program is
 * gone, and a process that outlives it (a child of Erlang's VM) may be
 * writing its own then: it must find either none or all of it. */
typedef void (*report_fn)(int fd, const char *name, const struct hp_preload_counts *n,
			  const struct hp_stats *st);

static void write_report(const char *dir, const char *ext, report_fn fn, const char *name,
			 const struct hp_preload_counts *n, const struct hp_stats *st)
{
	char part_ext[16], part[REPORT_PATH], path[REPORT_PATH];
	snprintf(part_ext, sizeof(part_ext), "%s.part", ext);
	int fd = open_report(dir, part_ext, part);
	if (fd < 0)
		return;
	fn(fd, name, n, st);
	snprintf(path, sizeof(path), "%.*s", (int)(strlen(part) - 5), part);
	if (close(fd) || rename(part, path))
		unlink(part);
}

void hp_preload_report(void)
{
	const char *dir = preload_opt.stats_dir;
	if (!*dir && !preload_opt.report)
		return;

	struct hp_preload_counts n;
	struct hp_stats st;
	char name[64];
	hp_preload_counts(&n);
	if (hp_preload_stats(&st))
		return;
	comm(name, sizeof(name));
	if (preload_opt.report)
		write_table(2, name, &n, &st);
	if (*dir) {
		write_report(dir, "txt", write_table, name, &n, &st);
		write_report(dir, "json", write_json, name, &n, &st);
	}
}

/* The process whose report this is: the one that set up, or a forked
 * child of it.  Anything else calling _exit shares our memory without being
 * us (a vfork child): it must leave our state alone. */
static pid_t owner;
static pid_t reported; /* the process that has written its report */

static void owner_child(void)
{
	owner = getpid();
}

/* The program is done: the report (once per process), and the end of the
 * recording. */
static void leaving(void)
{
	pid_t me = getpid();
	if (!set_up() || me != owner || reported == me)
		return;
	reported = me;
	in_hook++;
	hp_preload_report();
	hp_trace_close(&recording);
	in_hook--;
}

/* At start-up: dir/PID.started, for `hugeperm run` to know who loaded us. */
__attribute__((constructor)) static void report_at_start(void)
{
	if (!ready())
		return;
	owner = getpid();
	pthread_atfork(NULL, NULL, owner_child);
	if (!*preload_opt.stats_dir)
		return;
	char name[64], path[REPORT_PATH];
	int fd = open_report(preload_opt.stats_dir, "started", path);
	if (fd < 0)
		return;
	comm(name, sizeof(name));
	size_t len = strlen(name);
	name[len++] = '\n';
	hp_preload_write(fd, name, len);
	close(fd);
}

__attribute__((destructor)) static void report_at_exit(void)
{
	leaving();
}

/* _exit and _Exit run no destructor: the report is written here.  Not from
 * inside a hook of this thread (a signal handler that leaves while the
 * recording's lock is held), where it could wait for ever. */
HOOK void _exit(int status)
{
	if (!in_hook)
		leaving();
	k_exit(status);
}

HOOK void _Exit(int status)
{
	_exit(status);
}
