/* SPDX-License-Identifier: MIT */
/*
 * cmd_stats.c - `hugeperm stats [--json] PID`: the kernel's view of a
 * process's hugeperm memory, from /proc/PID/smaps: per protection class,
 * how much is resident and how much of it the kernel maps with huge pages.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "tools.h"

#define GIB (1UL << 30)

struct vma {
	uintptr_t start, end;
	char perms[5];
	bool anon, named_ours;
	bool marked; /* ---p with VmFlags nr and dd: a reservation of hugeperm's */
	uint64_t rss_kb, huge_kb;
};

struct class_sum {
	uint64_t vmas, rss_kb, huge_kb;
};

static int prot_of(const char *perms)
{
	return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
	       (perms[2] == 'x' ? PROT_EXEC : 0);
}

static int read_smaps(pid_t pid, struct vma **out, size_t *nout)
{
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno;
	size_t n = 0, cap = 256;
	struct vma *v = malloc(cap * sizeof(*v));
	if (!v) {
		fclose(f);
		return ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char perms[5], dev[16];
		unsigned long long off;
		int name_at = 0;
		if (sscanf(line, "%lx-%lx %4s %llx %15s %lu %n", &lo, &hi, perms, &off, dev, &ino,
			   &name_at) >= 6) {
			if (n == cap) {
				struct vma *nv = realloc(v, (cap *= 2) * sizeof(*v));
				if (!nv) {
					free(v);
					fclose(f);
					return ENOMEM;
				}
				v = nv;
			}
			const char *name = line + name_at;
			v[n] = (struct vma){.start = lo, .end = hi};
			memcpy(v[n].perms, perms, sizeof(perms));
			v[n].named_ours = !strncmp(name, "[anon:hugeperm:", 15);
			v[n].anon =
				ino == 0 && (name[0] == '\n' || name[0] == 0 || v[n].named_ours);
			n++;
			continue;
		}
		unsigned long long kb;
		if (!n)
			continue;
		if (!strncmp(line, "VmFlags:", 8))
			v[n - 1].marked = v[n - 1].anon && !strcmp(v[n - 1].perms, "---p") &&
					  strstr(line, " nr") && strstr(line, " dd");
		if (sscanf(line, "Rss: %llu kB", &kb) == 1 ||
		    sscanf(line, "Private_Hugetlb: %llu kB", &kb) == 1 ||
		    sscanf(line, "Shared_Hugetlb: %llu kB", &kb) == 1)
			v[n - 1].rss_kb += kb;
		if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1 ||
		    sscanf(line, "ShmemPmdMapped: %llu kB", &kb) == 1 ||
		    sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1 ||
		    sscanf(line, "Private_Hugetlb: %llu kB", &kb) == 1 ||
		    sscanf(line, "Shared_Hugetlb: %llu kB", &kb) == 1)
			v[n - 1].huge_kb += kb;
	}
	int err = ferror(f) ? EIO : 0;
	fclose(f);
	*out = v;
	*nout = n;
	return err;
}

/*
 * Which VMAs are hugeperm's.  With CONFIG_ANON_VMA_NAME they are named
 * [anon:hugeperm:<class>].  Without it, by shape, two ways:
 *   - hugeperm reserves 1 GiB-aligned chunks, so a 1 GiB-aligned slot that
 *     starts with an anonymous mapping and is covered end to end is one
 *     (even committed whole), and its anonymous VMAs are ours;
 *   - a chunk near a hint may hold only the free part of its slot; its
 *     reserved pages carry hugeperm's mark (PROT_NONE, VmFlags "nr dd"), and
 *     it never touches the program's mappings.  So a run of adjacent VMAs
 *     in one slot, starting and ending on 2 MiB boundaries, with a marked
 *     VMA in it, is one, and its anonymous VMAs are ours.
 * Another runtime's reservation of that shape would be counted too.  File
 * mappings inside are not ours, but may be there: V8 maps its builtins
 * MAP_FIXED into its code range, which the preload serves, when they are out
 * of reach of it.
 */
static void mark_ours(struct vma *v, size_t n, bool *ours, bool *by_name)
{
	*by_name = false;
	for (size_t i = 0; i < n; i++) {
		ours[i] = v[i].named_ours;
		*by_name |= v[i].named_ours;
	}
	if (*by_name)
		return;
	for (size_t i = 0; i < n; i++) {
		if (v[i].start % GIB || !v[i].anon)
			continue;
		uintptr_t slot_end = v[i].start + GIB, at = v[i].start;
		size_t j = i;
		while (j < n && v[j].start == at && v[j].end <= slot_end) {
			at = v[j].end;
			j++;
		}
		if (at == slot_end)
			for (size_t k = i; k < j; k++)
				ours[k] = v[k].anon;
	}
	for (size_t i = 0, j; i < n; i = j) {
		uintptr_t slot_end = (v[i].start & ~(GIB - 1)) + GIB;
		bool marked = v[i].marked;
		for (j = i + 1; j < n && v[j].start == v[j - 1].end && v[j].end <= slot_end; j++)
			marked |= v[j].marked;
		if (marked && v[i].start % (2UL << 20) == 0 && v[j - 1].end % (2UL << 20) == 0)
			for (size_t k = i; k < j; k++)
				ours[k] |= v[k].anon;
	}
}

int cmd_stats(int argc, char **argv)
{
	bool json = false;
	const char *arg = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' || arg)
			return TOOL_USAGE;
		else
			arg = argv[i];
	}
	char *end;
	long pid = arg ? strtol(arg, &end, 10) : 0;
	if (!arg || *end || pid <= 0 || pid > INT_MAX) {
		fprintf(stderr, "hugeperm: stats: '%s' is not a process id (EINVAL)\n",
			arg ? arg : "");
		return 2;
	}
	struct vma *v = NULL;
	size_t n = 0;
	int err = read_smaps((pid_t)pid, &v, &n);
	if (err) {
		char what[64];
		snprintf(what, sizeof(what), "/proc/%ld/smaps", pid);
		return tool_fail(what, err == ENOENT ? ESRCH : err);
	}
	bool *ours = calloc(n ? n : 1, sizeof(*ours)), by_name;
	if (!ours) {
		free(v);
		return tool_fail("stats", ENOMEM);
	}
	mark_ours(v, n, ours, &by_name);

	struct class_sum cls[8] = {{0}};
	uint64_t code = 0, code_huge = 0, rss = 0, huge = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ours[i])
			continue;
		int c = prot_of(v[i].perms);
		if (c == PROT_NONE && v[i].rss_kb == 0)
			continue; /* reserved address space, not memory */
		cls[c].vmas++;
		cls[c].rss_kb += v[i].rss_kb;
		cls[c].huge_kb += v[i].huge_kb;
		rss += v[i].rss_kb;
		huge += v[i].huge_kb;
		if (c & PROT_EXEC) {
			code += v[i].rss_kb;
			code_huge += v[i].huge_kb;
		}
	}
	const char *how = by_name ? "VMA names" : "1 GiB chunk shape (no CONFIG_ANON_VMA_NAME)";
	if (json) {
		printf("{\"pid\":%ld,\"found_by\":\"%s\",\"classes\":{", pid,
		       by_name ? "name" : "shape");
		bool first = true;
		for (int c = 0; c < 8; c++) {
			if (!cls[c].vmas)
				continue;
			printf("%s\"%s\":{\"vmas\":%" PRIu64 ",\"rss_kb\":%" PRIu64
			       ",\"huge_kb\":%" PRIu64 "}",
			       first ? "" : ",", hp_class_name(c), cls[c].vmas, cls[c].rss_kb,
			       cls[c].huge_kb);
			first = false;
		}
		printf("},\"vmas\":[");
		first = true;
		for (size_t i = 0; i < n; i++) {
			if (!ours[i] || (prot_of(v[i].perms) == PROT_NONE && !v[i].rss_kb))
				continue;
			printf("%s{\"start\":%" PRIuPTR ",\"end\":%" PRIuPTR
			       ",\"perms\":\"%s\",\"rss_kb\":%" PRIu64 ",\"huge_kb\":%" PRIu64 "}",
			       first ? "" : ",", v[i].start, v[i].end, v[i].perms, v[i].rss_kb,
			       v[i].huge_kb);
			first = false;
		}
		printf("],\"rss_kb\":%" PRIu64 ",\"huge_kb\":%" PRIu64 ",\"code_kb\":%" PRIu64
		       ",\"code_huge_kb\":%" PRIu64 ",\"code_coverage\":%.4f}\n",
		       rss, huge, code, code_huge, code ? (double)code_huge / (double)code : 0.0);
	} else {
		printf("hugeperm memory of process %ld (found by %s)\n", pid, how);
		printf("  class  VMAs   resident KiB   huge-mapped KiB   huge\n");
		for (int c = 0; c < 8; c++)
			if (cls[c].vmas)
				printf("  %-5s  %-5" PRIu64 "  %-13" PRIu64 "  %-16" PRIu64
				       "  %5.1f%%\n",
				       hp_class_name(c), cls[c].vmas, cls[c].rss_kb, cls[c].huge_kb,
				       cls[c].rss_kb ? 100.0 * (double)cls[c].huge_kb /
							       (double)cls[c].rss_kb
						     : 0.0);
		if (!rss)
			printf("  (none: the process has no hugeperm memory)\n");
		printf("  executable: %" PRIu64 " KiB, %" PRIu64
		       " KiB of it huge-mapped (%.1f%%)\n",
		       code, code_huge, code ? 100.0 * (double)code_huge / (double)code : 0.0);
	}
	free(ours);
	free(v);
	return 0;
}
