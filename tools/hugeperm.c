/* SPDX-License-Identifier: MIT */
/*
 * hugeperm - run a program with its JIT code on huge pages, look at a
 * running one, and say what this machine offers.
 *
 *   hugeperm run [options] -- CMD [ARGS...]
 *   hugeperm stats [--json] PID
 *   hugeperm info [--json]
 *
 * See hugeperm(1).
 */
#include "config.h" /* _GNU_SOURCE */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hugeperm.h>

#include "internal.h" /* hp_errno_name */
#include "tools.h"

#define GIB (1UL << 30)

const char *tool_errno_name(int e)
{
	return hp_errno_name(e);
}

int tool_fail(const char *what, int e)
{
	fprintf(stderr, "hugeperm: %s: %s (%s)\n", what, strerror(e), tool_errno_name(e));
	return 2;
}

static int usage(FILE *f, int rc)
{
	fputs("usage: hugeperm run [--backend B] [--flip block|exact|rwx] [--serve exec,areas]\n"
	      "                    [--stats] [--json] [-o FILE] [--verbose] [--no-inherit]\n"
	      "                    -- CMD [ARGS...]\n"
	      "       hugeperm stats [--json] PID\n"
	      "       hugeperm info [--json]\n"
	      "       hugeperm record -o FILE [--serve KINDS] -- CMD [ARGS...]\n"
	      "       hugeperm dump FILE\n"
	      "       hugeperm replay FILE [--policy all|NAME,...] [--format table|json|markdown]\n"
	      "                       [--collapse deferred|sync] [--real]\n"
	      "       hugeperm synth -o FILE [--text] [--seed N] [--threads N] [--units N]\n"
	      "                      [--max-pages N] [--area-pages N] [--flips N] [--lifetime N]\n"
	      "                      [--data-pct N] [--gap-us N]\n"
	      "       hugeperm map FILE [--policy NAME] [--at peak|end|N] [--coverage] -o OUT.svg\n"
	      "Run CMD with its JIT code served from huge pages (LD_PRELOAD), show the\n"
	      "huge-page coverage of a running process, or what this machine offers;\n"
	      "record what a program asks of the memory manager and replay it under\n"
	      "the kernel RFCs' grouping policies and ours.\n"
	      "See hugeperm(1).\n",
	      f);
	return rc;
}

/* ------------------------------------------------------------------ */
/* run */

static const char *find_preload(char *buf, size_t n)
{
	const char *env = getenv("HUGEPERM_PRELOAD_LIB");
	if (env && *env)
		return env;
	/* In the build tree the library sits in .libs beside the tools/ directory. */
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = 0;
		char *dir = dirname(exe);
		snprintf(buf, n, "%s/../.libs/libhugeperm-preload.so", dir);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	return HP_PRELOAD_PATH;
}

static bool one_of(const char *v, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(v, *names))
			return true;
	return false;
}

static bool serve_ok(const char *list)
{
	char tmp[64];
	if (strlen(list) >= sizeof(tmp))
		return false;
	strcpy(tmp, list);
	for (char *save = NULL, *w = strtok_r(tmp, ",", &save); w; w = strtok_r(NULL, ",", &save))
		if (strcmp(w, "exec") && strcmp(w, "areas") && strcmp(w, "reservations") &&
		    strcmp(w, "none"))
			return false;
	return true;
}

static int cmp_pid(const struct dirent **a, const struct dirent **b)
{
	return atoi((*a)->d_name) - atoi((*b)->d_name);
}

static void cat(const char *path, FILE *out)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, out);
	fclose(f);
}

/* Print the reports the preload left in @dir, one per process, and remove them. */
static void print_reports(const char *dir, bool json, FILE *out)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, cmp_pid);
	bool first = true;
	char path[PATH_MAX];

	if (json)
		fputs("[", out);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);
		bool is_json = len > 5 && !strcmp(name + len - 5, ".json");
		bool is_txt = len > 4 && !strcmp(name + len - 4, ".txt");
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if ((json && is_json) || (!json && is_txt)) {
			if (json && !first)
				fputs(",", out);
			first = false;
			cat(path, out);
		}
		if (is_json || is_txt)
			unlink(path);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
	if (json)
		fputs("]\n", out);
	else if (first)
		fputs("hugeperm: no report: the program did not load the preload (static binary, "
		      "or it cleared LD_PRELOAD)\n",
		      stderr);
	rmdir(dir);
}

int cmd_run(int argc, char **argv)
{
	static const char *const backends[] = {"auto", "hugetlb-1g", "hugetlb-2m",
					       "thp",  "small",	     NULL};
	static const char *const flips[] = {"block", "exact", "rwx", NULL};
	bool stats = false, json = false;
	const char *output = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--stats")) {
			stats = true;
		} else if (!strcmp(a, "--json")) {
			json = stats = true;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 == argc) {
				fprintf(stderr, "hugeperm: %s needs a file (EINVAL)\n", a);
				return 2;
			}
			output = argv[++i];
			stats = true;
		} else if (!strcmp(a, "--verbose")) {
			setenv("HUGEPERM_VERBOSE", "1", 1);
		} else if (!strcmp(a, "--no-inherit")) {
			setenv("HUGEPERM_PRELOAD_INHERIT", "0", 1);
		} else if (!strcmp(a, "--backend") || !strcmp(a, "--flip") ||
			   !strcmp(a, "--serve")) {
			if (i + 1 == argc) {
				fprintf(stderr, "hugeperm: %s needs a value (EINVAL)\n", a);
				return 2;
			}
			const char *v = argv[++i];
			bool ok = !strcmp(a, "--backend") ? one_of(v, backends)
				  : !strcmp(a, "--flip")  ? one_of(v, flips)
							  : serve_ok(v);
			if (!ok) {
				fprintf(stderr,
					"hugeperm: %s %s: not a valid value (EINVAL); see "
					"hugeperm(1)\n",
					a, v);
				return 2;
			}
			setenv(!strcmp(a, "--backend") ? "HUGEPERM_BACKEND"
			       : !strcmp(a, "--flip")  ? "HUGEPERM_PRELOAD_FLIP"
						       : "HUGEPERM_PRELOAD_SERVE",
			       v, 1);
		} else if (a[0] == '-') {
			fprintf(stderr, "hugeperm: run: unknown option %s (EINVAL)\n", a);
			return usage(stderr, 2);
		} else {
			break; /* the command, without "--" */
		}
	}
	if (i >= argc) {
		fputs("hugeperm: run: no command given (EINVAL)\n", stderr);
		return usage(stderr, 2);
	}

	char buf[PATH_MAX];
	const char *lib = find_preload(buf, sizeof(buf));
	if (access(lib, R_OK))
		return tool_fail(lib, errno);
	char preload[2 * PATH_MAX];
	const char *old = getenv("LD_PRELOAD");
	snprintf(preload, sizeof(preload), "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", preload, 1);

	char dir[] = "/tmp/hugeperm-stats.XXXXXX";
	if (stats) {
		if (!mkdtemp(dir))
			return tool_fail("mkdtemp", errno);
		setenv("HUGEPERM_STATS_DIR", dir, 1);
	}

	pid_t pid = fork();
	if (pid < 0)
		return tool_fail("fork", errno);
	if (pid == 0) {
		if (getenv("HUGEPERM_PRELOAD_RECORD")) { /* this process, not its children */
			char me[24];
			snprintf(me, sizeof(me), "%ld", (long)getpid());
			setenv("HUGEPERM_PRELOAD_RECORD_PID", me, 1);
		}
		execvp(argv[i], &argv[i]);
		int e = errno;
		fprintf(stderr, "hugeperm: %s: %s (%s)\n", argv[i], strerror(e),
			tool_errno_name(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	signal(SIGINT, SIG_IGN); /* the program decides; we report after it */
	signal(SIGQUIT, SIG_IGN);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return tool_fail("waitpid", errno);
	if (stats) {
		/* On stderr, like time(1): the program's stdout stays its own. */
		FILE *out = output ? fopen(output, "w") : stderr;
		if (!out)
			return tool_fail(output, errno);
		print_reports(dir, json, out);
		if (output)
			fclose(out);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ------------------------------------------------------------------ */
/* stats PID: the kernel's view of a process's hugeperm memory */

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

static const char *const class_names[8] = {"none", "r", "w", "rw", "x", "rx", "wx", "rwx"};

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

static int cmd_stats(int argc, char **argv)
{
	bool json = false;
	const char *arg = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' || arg)
			return usage(stderr, 2);
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
			       first ? "" : ",", class_names[c], cls[c].vmas, cls[c].rss_kb,
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
				       class_names[c], cls[c].vmas, cls[c].rss_kb, cls[c].huge_kb,
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

/* ------------------------------------------------------------------ */
/* info */

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

static const char *const collapse_names[] = {"default", "deferred", "sync", "off"};

static int cmd_info(int argc, char **argv)
{
	bool json = argc > 0 && !strcmp(argv[0], "--json");
	if (argc > (json ? 1 : 0))
		return usage(stderr, 2);

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
	const char *lib = find_preload(buf, sizeof(buf));
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
	const char *mode = a && st.collapse_mode >= 0 && st.collapse_mode < 4
				   ? collapse_names[st.collapse_mode]
				   : "?";
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

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr, 2);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "stats"))
		return cmd_stats(argc - 2, argv + 2);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc - 2, argv + 2);
	if (!strcmp(argv[1], "record"))
		return cmd_record(argc - 2, argv + 2);
	if (!strcmp(argv[1], "dump"))
		return cmd_dump(argc - 2, argv + 2);
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 2, argv + 2);
	if (!strcmp(argv[1], "synth"))
		return cmd_synth(argc - 2, argv + 2);
	if (!strcmp(argv[1], "map"))
		return cmd_map(argc - 2, argv + 2);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout, 0);
	if (!strcmp(argv[1], "--version")) {
		puts("hugeperm " PACKAGE_VERSION);
		return 0;
	}
	fprintf(stderr, "hugeperm: unknown command '%s' (EINVAL)\n", argv[1]);
	return usage(stderr, 2);
}
