/* SPDX-License-Identifier: MIT */
/*
 * tracefile.c - trace files as the commands read and print them: a whole
 * file (binary, or the text form) into a struct sim_trace, and a trace
 * printed in the text form (`dump`, and `synth --text`).  The formats
 * themselves are lib/trace.c's and sim/'s.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "tools.h"

/*
 * The file is read whole, but bounded: at most SIM_TRACE_MAX_SIZE bytes
 * (EFBIG beyond), and a file that is not the binary form stops at its
 * first NUL byte, which no text trace holds (/dev/zero is refused at once).
 */
int tool_load_trace(const char *path, struct sim_trace *t)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return tool_fail(path, errno);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return tool_fail(path, EISDIR);
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	int rerr = buf ? 0 : ENOMEM;
	while (!rerr) {
		if (n == cap) {
			uint8_t *nb = cap < SIM_TRACE_MAX_SIZE ? realloc(buf, cap *= 2) : NULL;
			if (!nb) {
				rerr = cap < SIM_TRACE_MAX_SIZE ? ENOMEM : EFBIG;
				break;
			}
			buf = nb;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rerr = got < 0 ? errno : 0;
			break;
		}
		bool binary = n + (size_t)got >= 7 && !memcmp(buf, HP_TRACE_MAGIC, 7);
		n += (size_t)got;
		if (!binary && memchr(buf + n - (size_t)got, 0, (size_t)got))
			break; /* not a trace: the parser says why */
	}
	close(fd);
	if (rerr) {
		free(buf);
		if (rerr == EFBIG) {
			fprintf(stderr, "hugeperm: %s: not a trace: larger than %u MiB (EFBIG)\n",
				path, SIM_TRACE_MAX_SIZE >> 20);
			return 2;
		}
		return tool_fail(path, rerr);
	}
	char err[256] = "";
	int e = sim_trace_parse(buf, n, t, err, sizeof(err));
	free(buf);
	if (e) {
		fprintf(stderr, "hugeperm: %s: not a trace: %s (%s)\n", path, err,
			tool_errno_name(e));
		return 2;
	}
	return 0;
}

int tool_sim_fail(const char *path, const char *policy, int e)
{
	if (e != EINVAL) /* the policies were checked: EINVAL is the trace's size */
		return tool_fail(policy, e);
	fprintf(stderr,
		"hugeperm: %s: replay under %s: the trace maps more than %llu GiB at once "
		"(EINVAL)\n",
		path, policy, (unsigned long long)(SIM_MAX_PAGES >> 18) /* 4 KiB pages */);
	return 2;
}

void tool_print_trace(const struct sim_trace *t, FILE *out)
{
	fprintf(out, "# hugeperm trace v%u source=%s comm=%s events=%zu\n", t->h.version,
		t->h.source, t->h.comm[0] ? t->h.comm : "-", t->n);
	fputs("# t_us tid type addr npages prot flags\n", out);
	for (size_t i = 0; i < t->n; i++) {
		const struct hp_trace_event *e = &t->ev[i];
		char prot[4], flags[72] = "";
		hp_trace_prot_str(e->prot, prot);
		if (e->flags & HP_TF_FIXED)
			strcat(flags, "|fixed");
		if (e->flags & HP_TF_NORESERVE)
			strcat(flags, "|noreserve");
		if (e->flags & HP_TF_HINT_AT) /* the hint's address, which implies hint */
			snprintf(flags + strlen(flags), sizeof(flags) - strlen(flags),
				 "|hint=0x%" PRIx64, e->hint);
		else if (e->flags & HP_TF_HINT)
			strcat(flags, "|hint");
		if (e->flags & HP_TF_NOREPLACE)
			strcat(flags, "|noreplace");
		if (e->flags & HP_TF_GROWS)
			strcat(flags, "|grows");
		fprintf(out, "%" PRIu64 ".%03" PRIu64 " %u %s 0x%" PRIx64 " %" PRIu64 " %s%s%s\n",
			e->t_ns / 1000, e->t_ns % 1000, e->tid, hp_trace_type_name(e->type),
			e->page << 12, e->npages, prot, flags[0] ? " " : "",
			flags[0] ? flags + 1 : "");
	}
}
