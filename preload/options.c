/* SPDX-License-Identifier: MIT */
/*
 * options.c - the preload's options, its recording, and its set-up.
 *
 * Options are read from the environment without allocating (getenv):
 *   HUGEPERM_PRELOAD_SERVE   the kinds served ("exec,areas,reservations";
 *                            "fixed", opt-in: MAP_FIXED_NOREPLACE ranges)
 *   HUGEPERM_PRELOAD_FLIP    block, exact or rwx (placement.c's names)
 *   HUGEPERM_PRELOAD_PACK=0  block mode: a block per area, not packed (pack.c)
 *   HUGEPERM_PRELOAD_MAX_MB, HUGEPERM_PRELOAD_RESERVE_MIN_MB   size bounds
 *   HUGEPERM_PRELOAD_INHERIT=0   children run without the preload
 *   HUGEPERM_PRELOAD_RECORD(_PID)  `hugeperm record`: the mmap stream
 *   HUGEPERM_STATS_DIR, HUGEPERM_PRELOAD_REPORT=1   the report (report.c):
 *     read here, not at exit, where a program may have cleared environ (PHP)
 * Set-up runs once, from the constructor or from the first hook (a library
 * constructor that maps memory before ours runs); a call made on another
 * thread meanwhile goes to the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os.h" /* hp_os_linux: the trace writer writes through it */
#include "preload.h"

struct preload_options preload_opt;
struct hp_trace_writer recording;

int setup_state;
unsigned preload_holds;

static size_t env_num(const char *name, size_t def, size_t hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	size_t n = 0;
	for (const char *s = v; *s; s++) {
		if (*s < '0' || *s > '9' || n > hi)
			return def;
		n = n * 10 + (size_t)(*s - '0');
	}
	return n > hi ? def : n;
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *s = list; *s;) {
		const char *e = s;
		while (*e && *e != ',')
			e++;
		if ((size_t)(e - s) == n && !strncmp(s, word, n))
			return true;
		s = *e ? e + 1 : e;
	}
	return false;
}

/* HUGEPERM_PRELOAD_INHERIT=0: blank our entry out of LD_PRELOAD in place, so
 * that programs this one executes run without us. */
static void drop_from_ld_preload(void)
{
	char *v = getenv("LD_PRELOAD");
	if (!v)
		return;
	for (char *s = v; *s;) {
		char *e = s;
		while (*e && *e != ':' && *e != ' ')
			e++;
		size_t n = (size_t)(e - s);
		const char *me = "libhugeperm-preload.so";
		size_t m = strlen(me);
		if (n >= m && !strncmp(e - m, me, m))
			memset(s, ' ', n);
		s = *e ? e + 1 : e;
	}
}

/* `hugeperm record`: the program's anonymous mmap stream as it asked for it
 * (trace.h), whatever was served.  HUGEPERM_PRELOAD_RECORD=path;
 * HUGEPERM_PRELOAD_RECORD_PID limits it to that process (not its children,
 * which would truncate the file). */
static void recording_child(void)
{
	hp_trace_detach(&recording); /* the file is the parent's */
}

static void recording_prepare(void)
{
	hp_trace_flush(&recording);
}

static void open_record(void)
{
	const char *path = getenv("HUGEPERM_PRELOAD_RECORD");
	const char *pid = getenv("HUGEPERM_PRELOAD_RECORD_PID");
	if (!path || !*path || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return;
	preload_hold(HOLDS_RECORDING); /* before recording.on: a call in between is noted */
	int err = hp_trace_open(&recording, &hp_os_linux, path, "preload",
				program_invocation_short_name);
	if (err) {
		hp_preload_say("hugeperm: HUGEPERM_PRELOAD_RECORD=");
		hp_preload_say(path);
		hp_preload_say(": cannot create the file (");
		const char *name = strerrorname_np(err);
		hp_preload_say(name ? name : "an error");
		hp_preload_say("); not recording\n");
		return;
	}
	pthread_atfork(recording_prepare, NULL, recording_child);
}

void note_hinted(int type, const void *addr, size_t len, int prot, int flags, const void *hint)
{
	if (recording.on && !in_hook) {
		in_hook++; /* the writer's lock is held: _exit must not wait for it */
		hp_trace_record_hinted(&recording, type, (uintptr_t)addr, len, prot, flags,
				       (uintptr_t)hint);
		in_hook--;
	}
}

static void read_options(void)
{
	open_record();
	const char *serve = getenv("HUGEPERM_PRELOAD_SERVE");
	if (!serve)
		serve = "exec,areas,reservations";
	preload_opt.serve.exec = has_word(serve, "exec");
	preload_opt.serve.areas = has_word(serve, "areas");
	preload_opt.serve.code_ranges = has_word(serve, "reservations");
	preload_opt.serve.fixed = has_word(serve, "fixed"); /* opt-in: docs/preload.md */

	const char *flip = getenv("HUGEPERM_PRELOAD_FLIP");
	int mode = flip ? hp_flip_parse(flip) : HP_PRELOAD_FLIP_BLOCK;
	if (mode < 0) {
		hp_preload_say("hugeperm: HUGEPERM_PRELOAD_FLIP must be block, exact or rwx "
			       "(EINVAL); using block\n");
		mode = HP_PRELOAD_FLIP_BLOCK;
	}
	preload_opt.flip = mode;
	preload_opt.pack = env_num("HUGEPERM_PRELOAD_PACK", 1, 1) != 0; /* pack.c */

	preload_opt.serve.max_bytes = env_num("HUGEPERM_PRELOAD_MAX_MB", 64, 1024) << 20;
	preload_opt.serve.code_range_min =
		env_num("HUGEPERM_PRELOAD_RESERVE_MIN_MB", 128, HP_PLACE_CODE_RANGE_MAX >> 20)
		<< 20;
	/* A flip in exact mode is worth nothing unless the block is collapsed
	 * back, and no one else would call hp_collapse_pending(). */
	preload_opt.collapse_mode =
		getenv("HUGEPERM_COLLAPSE") ? HP_COLLAPSE_DEFAULT : HP_COLLAPSE_SYNC;
	if (env_num("HUGEPERM_PRELOAD_INHERIT", 1, 1) == 0)
		drop_from_ld_preload();

	const char *report = getenv("HUGEPERM_PRELOAD_REPORT");
	preload_opt.report = report && !strcmp(report, "1");
	const char *dir = getenv("HUGEPERM_STATS_DIR");
	if (dir && strlen(dir) < sizeof(preload_opt.stats_dir))
		strcpy(preload_opt.stats_dir, dir);
	else if (dir)
		hp_preload_say("hugeperm: HUGEPERM_STATS_DIR is too long (ENAMETOOLONG); no report "
			       "files\n");
}

bool ready_slow(void)
{
	int s = __atomic_load_n(&setup_state, __ATOMIC_ACQUIRE);
	if (s == 2)
		return true;
	int zero = 0;
	if (s != 0 || !__atomic_compare_exchange_n(&setup_state, &zero, 1, false, __ATOMIC_ACQ_REL,
						   __ATOMIC_ACQUIRE))
		return false; /* another thread is setting up: this call goes to the kernel */
	in_hook++;
	kernel_resolve();
	read_options();
	in_hook--;
	__atomic_store_n(&setup_state, 2, __ATOMIC_RELEASE);
	return true;
}

/* Options take effect before main (HUGEPERM_PRELOAD_INHERIT=0 must edit the
 * environment before the program reads it); a library constructor that
 * maps memory before this runs gets the same set-up from its first hook. */
__attribute__((constructor)) static void setup(void)
{
	ready();
}
