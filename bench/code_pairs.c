/* SPDX-License-Identifier: MIT */
/*
 * code_pairs.c - hp_code_alloc + hp_code_free of 64-256 bytes (the trap
 * fill included) against mimalloc's mi_malloc + mi_free of the same sizes,
 * the pattern of hpbench's code/ rows (64 live allocations replaced in
 * turn), timed as alternating batches in one thread: a batch of 20,000
 * pairs of one allocator, then one of the other, each timed with the
 * thread's CPU clock.  Prints, per thread, the median batch of each (ns
 * per pair) and the median of the per-batch ratios.
 *
 * hpbench's rows time 0.2 s repetitions with the wall clock; on a shared
 * virtual machine one repetition's luck (another process on the CPU, the
 * host's steal) moves a row by 1.5x.  Here both sides of a ratio are
 * timed within a millisecond of each other, and time off the CPU counts
 * for neither.
 *
 * Usage: code_pairs [THREADS [BATCHES]] (1 thread, 400 batches: about a
 * second).  `make bench-code` runs it with 1 and 2 threads.  For the
 * machine's slow mode (docs/design.md, "Packed code"), pin it to one CPU
 * and run a store loop on the other.  Prints one line per thread:
 *   threads <t> thread <i> hugeperm_ns <n> mimalloc_ns <n> ratio <r>
 */
#include <hugeperm.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LIVE  64    /* as hpbench's CODE_LIVE */
#define BATCH 20000 /* pairs a batch */
#define WARM  20    /* batches of each, untimed */

static int nbatch = 400;

/* hpbench's code_size: 64, 96, ... 256 bytes. */
static size_t code_size(size_t i)
{
	return 64 + (i * 40503 % 7) * 32;
}

static double cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct result {
	double hp, mi, ratio; /* medians: ns per pair, per-batch ratio */
	int failed;
};

static void *run(void *arg)
{
	struct result *r = arg;
	void *hp[LIVE] = {0}, *mi[LIVE] = {0};
	size_t ih = 0, im = 0;
	double *th = malloc(3 * (size_t)nbatch * sizeof(double));
	if (!th) {
		r->failed = 1;
		return NULL;
	}
	double *tm = th + nbatch, *ratio = tm + nbatch;
	for (int b = -WARM; b < nbatch; b++) {
		double t0 = cpu_ns();
		for (int n = 0; n < BATCH; n++) {
			size_t k = ih % LIVE, size = code_size(ih++);
			hp_code_free(hp[k]);
			if (!(hp[k] = hp_code_alloc(size)))
				r->failed = 1;
		}
		double t1 = cpu_ns();
		for (int n = 0; n < BATCH; n++) {
			size_t k = im % LIVE, size = code_size(im++);
			mi_free(mi[k]);
			mi[k] = mi_malloc(size);
		}
		double t2 = cpu_ns();
		if (b >= 0) {
			th[b] = (t1 - t0) / BATCH;
			tm[b] = (t2 - t1) / BATCH;
			ratio[b] = th[b] / tm[b];
		}
	}
	for (int k = 0; k < LIVE; k++) {
		hp_code_free(hp[k]);
		mi_free(mi[k]);
	}
	r->hp = median(th, nbatch);
	r->mi = median(tm, nbatch);
	r->ratio = median(ratio, nbatch);
	free(th);
	return NULL;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 1;
	if (argc > 2)
		nbatch = atoi(argv[2]);
	if (nthreads < 1 || nthreads > 64 || nbatch < 1) {
		fprintf(stderr, "usage: code_pairs [THREADS (1-64) [BATCHES]]\n");
		return 2;
	}
	pthread_t t[64];
	struct result r[64] = {{0}};
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, run, &r[i])) {
			perror("pthread_create");
			return 1;
		}
	int failed = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		failed |= r[i].failed;
	}
	for (int i = 0; i < nthreads && !failed; i++)
		printf("threads %d thread %d hugeperm_ns %.2f mimalloc_ns %.2f ratio %.3f\n",
		       nthreads, i, r[i].hp, r[i].mi, r[i].ratio);
	if (failed)
		fprintf(stderr, "code_pairs: hp_code_alloc failed\n");
	return failed;
}
