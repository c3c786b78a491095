/* SPDX-License-Identifier: MIT */
/*
 * cmd_info.c - `hugeperm info [--json]`: what this machine offers hugeperm
 * (the kernel's THP settings and hugetlb pools, per NUMA node), what the
 * library would choose here (it makes an arena and puts a page of code in
 * it), and where the preload library is.
 */
#include "config.h" /* _GNU_SOURCE */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <hugeperm.h>

#include "internal.h" /* hp_collapse_mode_name */
#include "tools.h"

static bool read_line(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(out, (int)n, f) != NULL;
	fclose(f);
	if (ok)
		out[strcspn(out, "\n")] = 0;
	return ok;
}

static long read_long(const char *path)
{
	char buf[64];
	return read_line(path, buf, sizeof(buf)) ? atol(buf) : -1;
}

/* "always [madvise] never" -> "madvise" */
static const char *selected(char *s)
{
	char *l = strchr(s, '['), *r = l ? strchr(l, ']') : NULL;
	if (!l || !r)
		return s[0] ? s : "absent";
	*r = 0;
	return l + 1;
}

int cmd_info(int argc, char **argv)
{
	bool json = argc > 0 && !strcmp(argv[0], "--json");
	if (argc > (json ? 1 : 0))
		return TOOL_USAGE;

	struct utsname u;
	uname(&u);
	char thp[128] = "", defrag[128] = "", shmem[128] = "", scan[64] = "";
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
	read_line("/sys/kernel/mm/transparent_hugepage/defrag", defrag, sizeof(defrag));
	read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled", shmem, sizeof(shmem));
	read_line("/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs", scan,
		  sizeof(scan));

	/* What hugeperm would do: make an arena, put one page of code in it. */
	struct hp_arena *a = hp_arena_create(NULL);
	struct hp_stats st = {.size = sizeof(st)};
	int arena_err = a ? 0 : errno;
	if (a) {
		void *p = hp_arena_alloc(a, 4096, PROT_READ | PROT_EXEC);
		hp_arena_stats_get(a, &st);
		if (p)
			hp_arena_free(a, p);
		hp_arena_destroy(a);
	}
	char buf[PATH_MAX];
	const char *lib = tool_find_preload(buf, sizeof(buf));
	bool lib_ok = access(lib, R_OK) == 0;

	if (json)
		printf("{\"kernel\":\"%s\",\"thp\":{\"enabled\":\"%s\",\"defrag\":\"%s\","
		       "\"shmem_enabled\":\"%s\",\"khugepaged_scan_sleep_ms\":%s},\"hugetlb\":[",
		       u.release, selected(thp), selected(defrag), selected(shmem),
		       scan[0] ? scan : "null");
	else
		printf("kernel %s\nTHP: enabled %s, defrag %s, shmem %s, khugepaged every %s ms\n"
		       "hugetlb pools:\n",
		       u.release, selected(thp), selected(defrag), selected(shmem),
		       scan[0] ? scan : "?");

	struct dirent **sizes;
	int ns = scandir("/sys/kernel/mm/hugepages", &sizes, NULL, alphasort);
	bool first = true;
	for (int i = 0; i < ns; i++) {
		const char *d = sizes[i]->d_name;
		if (strncmp(d, "hugepages-", 10)) {
			free(sizes[i]);
			continue;
		}
		char path[PATH_MAX];
		long kb = atol(d + 10);
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/nr_hugepages", d);
		long nr = read_long(path);
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/free_hugepages", d);
		long fr = read_long(path);
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/resv_hugepages", d);
		long rs = read_long(path);
		if (json)
			printf("%s{\"page_kb\":%ld,\"total\":%ld,\"free\":%ld,\"reserved\":%ld,"
			       "\"nodes\":[",
			       first ? "" : ",", kb, nr, fr, rs);
		else
			printf("  %ld kB pages: %ld total, %ld free, %ld reserved", kb, nr, fr, rs);
		first = false;
		bool nfirst = true;
		for (int node = 0; node < 1024; node++) {
			snprintf(path, sizeof(path),
				 "/sys/devices/system/node/node%d/hugepages/%s/nr_hugepages", node,
				 d);
			long nn = read_long(path);
			if (nn < 0)
				break;
			snprintf(path, sizeof(path),
				 "/sys/devices/system/node/node%d/hugepages/%s/free_hugepages",
				 node, d);
			long nf = read_long(path);
			if (json)
				printf("%s{\"node\":%d,\"total\":%ld,\"free\":%ld}",
				       nfirst ? "" : ",", node, nn, nf);
			else
				printf("%s node %d: %ld/%ld free", nfirst ? ";" : ",", node, nf,
				       nn);
			nfirst = false;
		}
		printf(json ? "]}" : "\n");
		free(sizes[i]);
	}
	if (ns >= 0)
		free(sizes);
	if (ns <= 0 && !json)
		printf("  none (no hugetlbfs in this kernel)\n");

	const char *backend = a ? hp_backend_name(st.backend) : "none";
	const char *mode = a ? hp_collapse_mode_name(st.collapse_mode) : "?";
	if (json) {
		printf("],\"hugeperm\":{\"arena\":%s,\"error\":\"%s\",\"backend\":\"%s\","
		       "\"collapse_mode\":\"%s\",\"first_block_huge\":%s,\"preload\":\"%s\","
		       "\"preload_found\":%s}}\n",
		       a ? "true" : "false", a ? "" : strerror(arena_err), backend, mode,
		       st.huge_blocks ? "true" : "false", lib, lib_ok ? "true" : "false");
	} else {
		if (a)
			printf("hugeperm would use: backend %s, collapse %s%s; a block of code "
			       "came out %s\n",
			       backend, mode,
			       !strcmp(mode, "off") ? " (MADV_COLLAPSE unavailable or turned off)"
						    : "",
			       st.huge_blocks ? "huge-mapped" : "on 4 KiB pages");
		else
			printf("hugeperm cannot make an arena here: %s (%s)\n", strerror(arena_err),
			       tool_errno_name(arena_err));
		printf("preload: %s%s\n", lib,
		       lib_ok ? "" : " (missing: set HUGEPERM_PRELOAD_LIB)");
	}
	return 0;
}
