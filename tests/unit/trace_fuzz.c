/* SPDX-License-Identifier: MIT */
/*
 * trace_fuzz.t - malformed traces through the trace reader and the commands
 * that read traces (dump, replay, map), in this process.
 *
 * LLVMFuzzerTestOneInput() is the entry for one input: the reader
 * (sim_trace_parse) on the bytes, then the bytes as a file through
 * `hugeperm dump`, `replay` (every policy) and `map` (a block map at the
 * peak).  Built with clang -fsanitize=fuzzer (`make trace-fuzzer`) it is a
 * libFuzzer target; built plainly, main() feeds it 2,000+ inputs made
 * deterministically from the sample traces (sim/traces/\*.hpt): the empty
 * file, truncations, bit flips, bytes set, and event-level damage
 * (duplicated and overlapping maps, huge counts and addresses, zero
 * lengths, broken remap pairs), binary and text.
 *
 * What must hold: nothing crashes (a signal names the input), every
 * command exits 0 or 2, a trace the reader accepts dumps, and memory stays
 * bounded: outside AddressSanitizer the address space is limited
 * (RLIMIT_AS), so a replay that allocates per page of an absurd range
 * fails the test; in both builds the peak RSS is checked.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sim.h"
#include "tools.h"

#if defined(__SANITIZE_ADDRESS__)
#define HP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HP_ASAN 1
#endif
#endif

/* What the last input did, for the summary. */
static struct {
	unsigned long inputs, parsed, rejected, replayed, replay_refused, bad_status;
	char bad[256]; /* the first input with a wrong exit status */
} tally;

static const char *current = "?"; /* the input being run, for the crash handler */
static int tap_fd = 1;		  /* stdout, while the commands' goes to /dev/null */

/* Run @cmd on @argv with stdout and stderr into /dev/null; its exit status. */
static int quietly(int (*cmd)(int, char **), int argc, char **argv)
{
	fflush(stdout);
	fflush(stderr);
	int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(null, 1);
	dup2(null, 2);
	int rc = cmd(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	close(null);
	return rc;
}

static void status(const char *what, int rc, bool want_ok)
{
	if (rc == 0 || (rc == 2 && !want_ok))
		return;
	if (!tally.bad_status++)
		snprintf(tally.bad, sizeof(tally.bad), "%s: %s exited %d", current, what, rc);
#ifdef HP_LIBFUZZER
	abort();
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_trace t;
	char err[256];
	tally.inputs++;
	int e = sim_trace_parse(data, size, &t, err, sizeof(err));
	if (e) {
		tally.rejected++;
	} else {
		tally.parsed++;
		sim_trace_free(&t);
	}
	/* The same bytes as a file, through the commands. */
	int fd = memfd_create("trace", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char *dump[] = {path, NULL};
	status("dump", quietly(cmd_dump, 1, dump), e == 0);
	char *replay[] = {path, "--format", "json", NULL};
	int rc = quietly(cmd_replay, 3, replay);
	status("replay", rc, false);
	tally.replayed += rc == 0;
	tally.replay_refused += e == 0 && rc == 2; /* the trace maps too much */
	char *map[] = {path, "-o", "/dev/null", NULL};
	status("map", quietly(cmd_map, 3, map), false);
	close(fd);
	return 0;
}

#ifndef HP_LIBFUZZER
#include "tap.h"

/* ---------------------------------------------------------------------
 * Inputs: deterministic damage to the samples
 * ------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) /* xorshift64 */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A number below @n (0 if n is 0). */
static uint64_t below(uint64_t n)
{
	return n ? next() % n : 0;
}

static char name[128];
static void run(const uint8_t *data, size_t size)
{
	current = name;
	LLVMFuzzerTestOneInput(data, size);
}

static void on_signal(int sig)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "# trace_fuzz: signal %d on input '%s'\n", sig, current);
	(void)!write(tap_fd, msg, (size_t)n);
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint8_t *load(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = malloc(1 << 20);
	*size = buf ? fread(buf, 1, 1 << 20, f) : 0;
	fclose(f);
	return buf;
}

/* @t as a binary trace into @buf (room for HP_TRACE_HEADER + n * HP_TRACE_MAX_EVENT). */
static size_t encode(const struct sim_trace *t, uint8_t *buf)
{
	struct hp_trace_enc st = {0};
	hp_trace_header_encode(&t->h, buf);
	size_t n = HP_TRACE_HEADER;
	for (size_t i = 0; i < t->n; i++)
		n += hp_trace_encode(&st, &t->ev[i], buf + n);
	return n;
}

static const uint64_t huge_counts[] = {
	0,	    1ULL << 16,	      SIM_MAX_PAGES + 1, 50000000,	   4000000000ULL,
	1ULL << 40, SIM_PAGE_END - 1, SIM_PAGE_END,	 SIM_PAGE_END + 1, UINT64_MAX,
};

/* Event-level damage to a copy of @t, then run it as binary and as text. */
static int damage_events(const char *sample, const struct sim_trace *t, int count)
{
	size_t cap = t->n + 64;
	struct sim_trace m = {.h = t->h, .ev = malloc(cap * sizeof(*m.ev))};
	uint8_t *buf = malloc(HP_TRACE_HEADER + cap * HP_TRACE_MAX_EVENT);
	char *text = NULL;
	size_t text_size = 0;
	int made = 0;
	for (int k = 0; k < count && m.ev && buf; k++) {
		memcpy(m.ev, t->ev, t->n * sizeof(*m.ev));
		m.n = t->n;
		const char *what = "";
		for (int d = 0; d < 1 + (int)(next() % 4); d++) { /* 1-4 kinds at once */
			size_t i = next() % m.n;
			struct hp_trace_event *ev = &m.ev[i];
			switch (next() % 9) {
			case 0: /* a map again, shifted: overlapping the first */
				if (m.n < cap) {
					memmove(ev + 1, ev, (m.n - i) * sizeof(*ev));
					m.n++;
					ev[1].type = HP_EV_MAP;
					ev[1].page += below(ev->npages + 2) - 1;
					ev[1].npages = 1 + below(2 * ev->npages + 1);
				}
				what = "overlapping map";
				break;
			case 1:
				ev->npages = huge_counts[next() % 10];
				what = "huge count";
				break;
			case 2:
				ev->page = (next() % 2 ? SIM_PAGE_END : UINT64_MAX) - next() % 64;
				what = "huge address";
				break;
			case 3:
				ev->type =
					(uint8_t)(1 +
						  next() % 7); /* a remap without its pair, ... */
				what = "type changed";
				break;
			case 4:
				ev->prot = (uint8_t)(next() % 16);
				what = "prot";
				break;
			case 5: /* a map covering others, or inside one */
				ev->type = HP_EV_MAP;
				ev->page = m.ev[next() % m.n].page - next() % 8;
				ev->npages = 1 + next() % 600;
				what = "map over others";
				break;
			case 6:
				ev->t_ns = next() % 2 ? 0 : next(); /* time backwards, huge */
				what = "time";
				break;
			case 7: /* a hint's address anywhere: below, inside, beyond the space */
				ev->flags |= HP_TF_HINT | HP_TF_HINT_AT;
				ev->hint = next() % 2 ? (m.ev[next() % m.n].page + next() % 3 - 1)
								<< 12
						      : next();
				what = "hint address";
				break;
			default: /* events swapped */
				if (m.n > 1) {
					struct hp_trace_event x = *ev;
					size_t j = next() % m.n;
					*ev = m.ev[j];
					m.ev[j] = x;
				}
				what = "swapped";
			}
		}
		snprintf(name, sizeof(name), "%s: events %d (%s...)", sample, k, what);
		run(buf, encode(&m, buf));
		made++;
		if (k % 8 == 0) { /* and as text */
			FILE *f = open_memstream(&text, &text_size);
			if (f) {
				tool_print_trace(&m, f);
				fclose(f);
				snprintf(name, sizeof(name), "%s: text %d (%s...)", sample, k,
					 what);
				run((uint8_t *)text, text_size);
				free(text);
				text = NULL;
				made++;
			}
		}
	}
	free(m.ev);
	free(buf);
	return made;
}

/* Byte-level damage: truncations, bit flips, bytes set. */
static int damage_bytes(const char *sample, const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size);
	int made = 0;
	for (int k = 0; b && k < 60; k++) { /* truncated: the header, then events */
		size_t n = k < 20 ? (size_t)k * 4 : (size_t)k * size / 60;
		snprintf(name, sizeof(name), "%s: first %zu bytes", sample, n);
		run(data, n);
		made++;
	}
	for (int k = 0; b && k < 360; k++) {
		memcpy(b, data, size);
		size_t at = k < 40 ? (size_t)k * 2 : next() % size; /* the header too */
		if (k % 3 == 2) {
			static const uint8_t set[] = {0, 0xff, 0x80, 0x7f, '\n'};
			b[at] = set[next() % 5];
			snprintf(name, sizeof(name), "%s: byte %zu = 0x%02x", sample, at, b[at]);
		} else {
			b[at] ^= (uint8_t)(1 << next() % 8);
			snprintf(name, sizeof(name), "%s: byte %zu flipped to 0x%02x", sample, at,
				 b[at]);
		}
		run(b, size);
		made++;
	}
	free(b);
	return made;
}

int main(void)
{
	static const char *const samples[] = {"pcre2.hpt", "node.hpt", "luajit.hpt",
					      "guile.hpt" /* version 2: hint addresses */};
	const char *srcdir = getenv("srcdir") ? getenv("srcdir") : HP_SRCDIR;
	struct sigaction sa = {.sa_handler = on_signal};
	tap_fd = dup(1);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);

#ifndef HP_ASAN
	/* Bounded memory: a replay that allocates per page of an absurd
	 * range runs out of address space. */
	struct rlimit rl = {512UL << 20, 512UL << 20};
	ok(setrlimit(RLIMIT_AS, &rl) == 0, "address space limited to 512 MiB");
#else
	tap_diag("AddressSanitizer: no address-space limit (its shadow); peak RSS checked");
#endif
	int made = 0;
	snprintf(name, sizeof(name), "the empty file");
	run((const uint8_t *)"", 0);
	made++;
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		char path[4096];
		size_t size = 0;
		snprintf(path, sizeof(path), "%s/sim/traces/%s", srcdir, samples[s]);
		uint8_t *data = load(path, &size);
		struct sim_trace t;
		char err[256];
		if (!data || sim_trace_parse(data, size, &t, err, sizeof(err))) {
			ok(false, "%s: a sample trace", path);
			free(data);
			continue;
		}
		/* luajit's is long: its first 300 events are enough. */
		if (t.n > 300) {
			t.n = 300;
			size_t n = encode(&t, data);
			size = n;
		}
		made += damage_bytes(samples[s], data, size);
		made += damage_events(samples[s], &t, 250);
		sim_trace_free(&t);
		free(data);
	}
	current = "?";
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	tap_diag("%lu inputs: %lu parsed, %lu rejected by the reader; %lu replayed, %lu "
		 "parsed but refused by replay (too many pages); peak RSS %ld MiB",
		 tally.inputs, tally.parsed, tally.rejected, tally.replayed, tally.replay_refused,
		 ru.ru_maxrss >> 10);
	ok(made >= 2000, "2,000 or more malformed traces (%d), none crashed", made);
	ok(tally.bad_status == 0, "dump, replay and map exit 0 or 2; a parsed trace dumps%s%s",
	   tally.bad_status ? ": " : "", tally.bad);
	ok(tally.parsed > 100 && tally.rejected > 100 && tally.replayed > 100,
	   "the inputs reach both the reader's errors and the replays");
#ifdef HP_ASAN
	long most = 600; /* ASan's quarantine keeps up to 256 MiB of what was freed */
#else
	long most = 300;
#endif
	ok(ru.ru_maxrss < most << 10, "peak RSS below %ld MiB (%ld MiB)", most, ru.ru_maxrss >> 10);
	return tap_done();
}
#endif
