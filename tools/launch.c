/* SPDX-License-Identifier: MIT */
/*
 * launch.c - running a program under the preload, for `run` and `record`:
 * where the preload library is (also shown by `info`), the preload's
 * options as the command takes them (--backend, --flip, --serve) put into
 * the environment, LD_PRELOAD, and the child: fork, exec, wait, and its
 * exit status as a shell gives it.
 */
#include "config.h" /* _GNU_SOURCE */

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools.h"

const char *tool_find_preload(char *buf, size_t n)
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

static bool serve_ok(const char *list)
{
	char tmp[64];
	if (strlen(list) >= sizeof(tmp))
		return false;
	strcpy(tmp, list);
	for (char *save = NULL, *w = strtok_r(tmp, ",", &save); w; w = strtok_r(NULL, ",", &save))
		if (strcmp(w, "exec") && strcmp(w, "areas") && strcmp(w, "reservations") &&
		    strcmp(w, "fixed") && strcmp(w, "none"))
			return false;
	return true;
}

int tool_preload_option(const char *opt, const char *v)
{
	bool ok = !strcmp(opt, "--backend") ? hp_backend_parse(v) >= 0
		  : !strcmp(opt, "--flip")  ? hp_flip_parse(v) >= 0
					    : serve_ok(v);
	if (!ok) {
		fprintf(stderr, "hugeperm: %s %s: not a valid value (EINVAL); see hugeperm(1)\n",
			opt, v);
		return 2;
	}
	setenv(!strcmp(opt, "--backend") ? "HUGEPERM_BACKEND"
	       : !strcmp(opt, "--flip")	 ? "HUGEPERM_PRELOAD_FLIP"
					 : "HUGEPERM_PRELOAD_SERVE",
	       v, 1);
	return 0;
}

int tool_use_preload(void)
{
	char buf[PATH_MAX];
	const char *lib = tool_find_preload(buf, sizeof(buf));
	if (access(lib, R_OK))
		return tool_fail(lib, errno);
	char preload[2 * PATH_MAX];
	const char *old = getenv("LD_PRELOAD");
	snprintf(preload, sizeof(preload), "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", preload, 1);
	return 0;
}

int tool_spawn(char **argv, int *code)
{
	pid_t pid = fork();
	if (pid < 0)
		return tool_fail("fork", errno);
	if (pid == 0) {
		if (getenv("HUGEPERM_PRELOAD_RECORD")) { /* this process, not its children */
			char me[24];
			snprintf(me, sizeof(me), "%ld", (long)getpid());
			setenv("HUGEPERM_PRELOAD_RECORD_PID", me, 1);
		}
		execvp(argv[0], argv);
		int e = errno;
		fprintf(stderr, "hugeperm: %s: %s (%s)\n", argv[0], strerror(e),
			tool_errno_name(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	signal(SIGINT, SIG_IGN); /* the program decides; we report after it */
	signal(SIGQUIT, SIG_IGN);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return tool_fail("waitpid", errno);
	*code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	return 0;
}
