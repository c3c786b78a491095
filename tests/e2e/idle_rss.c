/* SPDX-License-Identifier: MIT */
/*
 * idle_rss - issue 16's program, run plain and under the preload by
 * tests/e2e/idle_rss.sh: map 16 x 2 MiB RWX, write it, unmap it, three
 * times, then idle.  It prints RssAnon + RssShmem (kB, /proc/self/status)
 * right after the last unmap and after idling argv[1] ms:
 *   "peak <kB> before <kB> after <kB>"
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define NMAPS 16
#define SIZE  (2UL << 20)

/* RssAnon + RssShmem, kB; -1 if unreadable. */
static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long sum = 0, v;
	int found = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &v) == 1 ||
		    sscanf(line, "RssShmem: %ld", &v) == 1) {
			sum += v;
			found++;
		}
	fclose(f);
	return found == 2 ? sum : -1;
}

int main(int argc, char **argv)
{
	long idle_ms = argc > 1 ? atol(argv[1]) : 1500, peak = 0;
	for (int round = 0; round < 3; round++) {
		void *p[NMAPS];
		for (int i = 0; i < NMAPS; i++) {
			p[i] = mmap(NULL, SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p[i] == MAP_FAILED) {
				perror("mmap");
				return 1;
			}
			memset(p[i], 0xc3, SIZE);
		}
		long now = rss_kb();
		if (now > peak)
			peak = now;
		for (int i = 0; i < NMAPS; i++)
			if (munmap(p[i], SIZE)) {
				perror("munmap");
				return 1;
			}
	}
	long before = rss_kb();
	struct timespec ts = {idle_ms / 1000, (idle_ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts))
		;
	printf("peak %ld before %ld after %ld\n", peak, before, rss_kb());
	return 0;
}
