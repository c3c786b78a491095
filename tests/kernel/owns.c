/* SPDX-License-Identifier: MIT */
/*
 * owns.t - hp_owns() never touches a chunk's metadata (issue 15, defect 7).
 *
 * hp_trim retires chunks and frees their metadata after an RCU grace
 * period; hp_owns runs outside any read-side section (the preload calls it
 * on every munmap and mprotect, before it may enter liburcu: registering a
 * thread maps memory, which would come back into the hook).  So it must
 * answer from memory that is never freed.  Checked deterministically: the
 * chunk's metadata is made unreadable while hp_owns answers about it (a
 * read would be SIGSEGV, as a read of a released chunk would be); and
 * against hp_trim retiring chunks under a loop of hp_owns calls.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)

/* The real OS, remembering the chunk's metadata as it is allocated. */
static struct hp_os os;
static void *chunk_meta;

static void *meta_alloc(size_t size)
{
	void *p = hp_os_linux.meta_alloc(size);
	if (size == sizeof(struct hp_chunk))
		chunk_meta = p;
	return p;
}

static void unreadable_chunk(void *arg)
{
	struct hp_arena *a = arg;
	char *p = hp_arena_alloc(a, 3 * 4096, RW);
	uintptr_t slot = (uintptr_t)p & ~(HP_CHUNK_SIZE - 1);
	if (!p || !chunk_meta || mprotect(chunk_meta, sizeof(struct hp_chunk), PROT_NONE))
		_exit(2);
	/* Answers about the chunk's own range, its slot's edges, and beyond. */
	int got = hp_owns(p, 4096) + hp_owns((void *)slot, HP_CHUNK_SIZE) +
		  hp_owns((void *)(slot + HP_CHUNK_SIZE - 4096), 4096) * 10 +
		  hp_owns((void *)(slot + HP_CHUNK_SIZE), 4096) * 100;
	printf("%d", got);
	fflush(stdout);
	_exit(got == 12 ? 0 : 1);
}

static atomic_int stop;
static atomic_long answers;

static void *asker(void *arg)
{
	uintptr_t *at = arg;
	while (!atomic_load(&stop)) {
		hp_owns((void *)__atomic_load_n(at, __ATOMIC_RELAXED), 4096);
		atomic_fetch_add(&answers, 1);
	}
	return NULL;
}

int main(void)
{
	hp_options_init();
	tap_plan(3);
	os = hp_os_linux;
	os.meta_alloc = meta_alloc;
	struct hp_arena *a = calloc(1, sizeof(*a));
	hp_arena_init(a, &os, HP_BACKEND_SMALL, HP_BACKEND_SMALL, &hp_opt);

	char out[256];
	int st = tap_child(unreadable_chunk, a, NULL, out, sizeof(out));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "hp_owns answers with its chunk's metadata unreadable (%s, answers %s)",
	   WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited", out);

	/* hp_trim retiring the chunk again and again while hp_owns asks. */
	static uintptr_t at;
	pthread_t t;
	pthread_create(&t, NULL, asker, &at);
	int owned = 0, n = 300;
	for (int i = 0; i < n; i++) {
		char *p = hp_arena_alloc(a, 4096, RW);
		__atomic_store_n(&at, (uintptr_t)p, __ATOMIC_RELAXED);
		owned += hp_owns(p, 4096);
		hp_arena_free(a, p);
		hp_arena_trim(a);
		owned -= hp_owns(p, 4096);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	is(owned, n, "%d chunks made and retired: owned while in use, not after trim", n);
	ok(atomic_load(&answers) > 0, "while another thread asked hp_owns %ld times",
	   atomic_load(&answers));
	hp_arena_teardown(a);
	free(a);
	return tap_done();
}
