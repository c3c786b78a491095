/* SPDX-License-Identifier: MIT */
/*
 * code.t - packed code (code.c) on fake OS hooks: size classes and
 * alignment, trap fills on free with no protection change, bad frees
 * (interior, double, foreign), pages going back to their blocks, caches of
 * several threads sharing pages, writes inside and past a chunk, the
 * statistics, a metadata allocation that fails, and the fast free's
 * test of a chunk start at every offset of every class.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "code_fast.h"
#include "fake_os.h"
#include "tap.h"

#define RX (PROT_READ | PROT_EXEC)

static struct hp_arena *A;

static void *alloc(size_t size)
{
	return hp_code_alloc_packed(A, size);
}

static int cfree(void *p)
{
	bool taken;
	int err = hp_code_free_packed(A, (uintptr_t)p, &taken);
	return taken ? err : -1;
}

static struct hp_stats stats(void)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_stats_collect(A, &st);
	return st;
}

static void drain(void)
{
	pthread_mutex_lock(&A->lock);
	hp_tcache_drain_mine(A);
	pthread_mutex_unlock(&A->lock);
}

static void setup(bool alias)
{
	fake_reset();
	A = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_DEFERRED);
	A->alias = alias;
	hp_registry_add(A); /* thread exits drain the caches of registered arenas */
}

static void teardown(void)
{
	hp_registry_del(A);
	fake_arena_free(A);
	/* Each test's code is in one block of a fresh slot (the fake OS never
	 * reuses addresses): its slot's table and the block's code state stay,
	 * for the next owner of the address space; nothing else. */
	is(fake.meta_live, 2, "teardown frees all metadata but the code state of the block used");
}

static void test_classes(void)
{
	setup(true);
	static const size_t sizes[] = {1,   64,	 65,  128,  320,  448,	512,
				       513, 600, 700, 1000, 1025, 1400, 2048};
	static const size_t usable[] = {64,  64,  128, 128,  320,  448,	 512,
					640, 640, 768, 1024, 1344, 2048, 2048};
	bool aligned = true, exact = true, in_rx = true;
	void *p[14];
	for (int i = 0; i < 14; i++) {
		p[i] = alloc(sizes[i]);
		aligned &= p[i] && ((uintptr_t)p[i] & 63) == 0;
		bool taken;
		size_t u = hp_code_usable(A, (uintptr_t)p[i], &taken);
		if (!taken || u != usable[i]) {
			exact = false;
			tap_diag("  size %zu: usable %zu", sizes[i], u);
		}
		struct hp_block *b = hp_block_of((uintptr_t)p[i]);
		in_rx &= b->home == RX &&
			 b->prot[((uintptr_t)p[i] - b->base) >> HP_PAGE_SHIFT] == RX;
	}
	ok(aligned, "every allocation is 64-byte aligned");
	ok(exact, "usable sizes are the classes: multiples of 64 to 512, then 640 ... 2048");
	ok(in_rx, "... in RX pages of RX blocks");
	is(fake.protect_calls, 0, "no protection changed");
	struct hp_stats st = stats();
	is(st.code_allocs, 14, "14 code allocations counted");
	uint64_t sum = 0, req = 0;
	for (int i = 0; i < 14; i++)
		sum += usable[i], req += sizes[i];
	is(st.code_bytes, sum, "code_bytes: the size classes in use");
	is(st.code_lost_bytes, sum - req, "code_lost_bytes: the rounding");
	is(st.code_pages, 10, "10 classes among them: 10 pages");
	is(st.used_bytes, 10 * HP_PAGE_SIZE, "the code pages are used, not cached");
	fake_check_arena(A, "with code of every class");

	/* Next in a page: the neighbouring chunk. */
	void *q = alloc(64);
	is((uintptr_t)q, (uintptr_t)p[0] + 128, "chunks of a page are handed out in address order");
	int stores = fake.stores;
	is(cfree(q), 0, "free");
	is(fake.stores, stores + 1, "... fills the chunk with traps (one store through the alias)");
	is(fake.protect_calls, 0, "... with no protection change");
	void *again = alloc(60);
	is((uintptr_t)again, (uintptr_t)q, "a freed chunk is handed out again");
	cfree(again);
	for (int i = 0; i < 14; i++)
		cfree(p[i]);
	st = stats();
	is(st.code_frees, 16, "frees counted");
	is(st.code_bytes, 0, "no code bytes in use after freeing all");
	is(st.code_lost_bytes, 0, "... and none lost");
	teardown();
}

static void test_bad_frees(void)
{
	setup(true);
	char *p = alloc(200); /* class 256 */
	char *next = alloc(200);
	errno = 0;
	is(cfree(p + 64), EINVAL, "an interior pointer (granule boundary) is EINVAL");
	is(cfree(p + 1), EINVAL, "an unaligned interior pointer is EINVAL");
	bool taken;
	size_t u = hp_code_usable(A, (uintptr_t)(p + 64), &taken);
	ok(taken && u == 0, "hp_usable_size of an interior pointer is 0");
	uintptr_t page = (uintptr_t)p & ~(HP_PAGE_SIZE - 1);
	char *r = alloc(300); /* class 320: 12 chunks, 3840 bytes of the page */
	uintptr_t rpage = (uintptr_t)r & ~(HP_PAGE_SIZE - 1);
	is(cfree((void *)(rpage + 12 * 320)), EINVAL, "past the last chunk of a page is EINVAL");
	cfree(r);
	is(hp_pool_free(A, page), EINVAL, "hp_free of a code page: no allocation of the caller's");
	is(hp_pool_protect(A, page, 1, PROT_READ), ENOMEM, "hp_protect of a code page: ENOMEM");
	is(cfree(p), 0, "the real free");
	int stores = fake.stores;
	is(cfree(p), EINVAL, "a double free is EINVAL");
	is(fake.stores, stores, "... and stores nothing");
	u = hp_code_usable(A, (uintptr_t)p, &taken);
	ok(taken && u == 0, "hp_usable_size of freed code is 0");
	void *rw = hp_pool_alloc(A, 1, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, false);
	hp_code_free_packed(A, (uintptr_t)rw, &taken);
	ok(!taken, "a page allocation is not packed code: the page path answers");
	hp_code_free_packed(A, 0x1000, &taken);
	ok(!taken, "nor is an address outside the arena");
	is(cfree(next), 0, "the neighbour is still live and frees");
	hp_pool_free(A, (uintptr_t)rw);
	teardown();
}

static void test_write(void)
{
	setup(true);
	char *p = alloc(100); /* class 128 */
	static const char code[128];
	bool taken;
	is(hp_code_write(A, (uintptr_t)p, code, 128, &taken), 0, "a write of the whole chunk");
	ok(taken, "... answered by the packed path (no lock)");
	is(hp_code_write(A, (uintptr_t)p + 100, code, 28, &taken), 0, "a write to its end");
	is(hp_code_write(A, (uintptr_t)p + 100, code, 29, &taken), ENOMEM,
	   "one byte past it: ENOMEM");
	is(hp_code_write(A, (uintptr_t)p + 128, code, 1, &taken), ENOMEM,
	   "into the next, free chunk: ENOMEM");
	uintptr_t w = 0;
	is(hp_code_writable(A, (uintptr_t)p + 5, &w, &taken), 0, "hp_writable inside the chunk");
	struct hp_block *b = hp_block_of((uintptr_t)p);
	is(w, hp_alias_of(b, (uintptr_t)p + 5), "... is the alias of that byte");
	is(hp_code_writable(A, (uintptr_t)p + 128, &w, &taken), EINVAL,
	   "... and EINVAL in a free chunk");
	struct hp_stats st = stats();
	is(st.writes_alias, 2, "writes through the alias are counted");
	is(fake.protect_calls, 0, "nothing changed protection");
	cfree(p);
	teardown();

	/* No alias: writes and trap fills go through /proc/self/mem. */
	setup(false);
	p = alloc(100);
	ok(!hp_block_of((uintptr_t)p)->aliased, "without aliases the block is private");
	is(hp_code_write(A, (uintptr_t)p, code, 64, &taken), 0, "a write without an alias");
	is(fake.mem_writes, 1, "... through /proc/self/mem");
	is(hp_code_writable(A, (uintptr_t)p, &w, &taken), EOPNOTSUPP, "hp_writable: EOPNOTSUPP");
	is(cfree(p), 0, "free without an alias");
	is(fake.mem_writes, 2, "... fills the traps through /proc/self/mem");
	is(fake.protect_calls, 0, "no protection changed");
	fake.mem_write_refuse = EACCES;
	p = alloc(100);
	int calls = fake.protect_calls;
	is(cfree(p), 0, "with /proc/self/mem refused, free still fills the traps");
	ok(fake.protect_calls > calls, "... flipping the page writable and back");
	fake.mem_write_refuse = 0;
	teardown();
}

static void test_pages_return(void)
{
	setup(true);
	void *p[200];
	for (int i = 0; i < 126; i++) /* two pages of 64-byte chunks */
		p[i] = alloc(64);
	p[126] = alloc(64); /* a third page: the one allocated from */
	struct hp_stats st = stats();
	is(st.code_pages, 3, "127 chunks of 64 bytes: three pages (63 a page)");
	for (int i = 0; i < 63; i++)
		cfree(p[i]);
	st = stats();
	is(st.code_pages, 2, "the first page's chunks all freed: it went back to its block");
	is(st.used_bytes, 2 * HP_PAGE_SIZE, "... which counts it free");
	for (int i = 63; i < 127; i++)
		cfree(p[i]);
	st = stats();
	is(st.code_pages, 1, "all freed: only the page allocated from is kept");
	int stores = fake.stores, protects = fake.protect_calls;
	drain();
	/* After fork the child drains before its alias is its own: nothing
	 * may be written then (the page holds traps already). */
	ok(fake.stores == stores && fake.protect_calls == protects,
	   "giving an empty code page back writes nothing and changes no protection");
	st = stats();
	is(st.code_pages, 0, "hp_trim's drain gives that one back too");
	is(st.used_bytes, 0, "no page used");
	fake_check_arena(A, "after the code pages went back");
	/* The block itself is free again: it can be trimmed. */
	is(hp_arena_trim_blocks(A), 0, "trim");
	st = stats();
	is(st.committed_bytes, 0, "the block went back to the kernel");
	void *q = alloc(64);
	ok(q != NULL, "code allocations go on in a recommitted block");
	cfree(q);
	teardown();
}

/* Threads: one allocates, another frees; caches share pages. */
static void *producer[4096];

static void *alloc_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4096; i++)
		producer[i] = alloc(64 + (i % 7) * 64);
	return NULL;
}

static void *free_thread(void *arg)
{
	int *bad = arg;
	for (int i = 0; i < 4096; i += 2)
		*bad += cfree(producer[i]) != 0;
	return NULL;
}

static void test_threads(void)
{
	setup(true);
	pthread_t t;
	pthread_create(&t, NULL, alloc_thread, NULL);
	pthread_join(t, NULL);
	struct hp_stats st = stats();
	is(st.code_allocs, 4096,
	   "a thread allocated 4096 chunks (its cache counts them after it exits)");
	uint64_t pages = st.code_pages;
	int bad = 0;
	pthread_create(&t, NULL, free_thread, &bad);
	pthread_join(t, NULL);
	is(bad, 0, "another thread freed half of them");
	/* This thread allocates again: it takes the pages that have room. */
	void *mine[2048];
	for (int i = 0; i < 2048; i++)
		mine[i] = alloc(64 + (i % 7) * 64);
	st = stats();
	ok(st.code_pages <= pages + 7,
	   "reallocating the freed half takes (almost) no new pages (%llu -> %llu)",
	   (unsigned long long)pages, (unsigned long long)st.code_pages);
	is(st.code_allocs, 4096 + 2048, "allocations counted across threads");
	is(st.code_frees, 2048, "frees counted across threads");
	fake_check_arena(A, "after threads shared pages");
	for (int i = 1; i < 4096; i += 2)
		bad += cfree(producer[i]) != 0;
	for (int i = 0; i < 2048; i++)
		bad += cfree(mine[i]) != 0;
	is(bad, 0, "everything frees once");
	drain();
	st = stats();
	is(st.code_pages, 0, "all code pages back after the drain");
	is(st.code_bytes, 0, "no code bytes in use");
	fake_check_arena(A, "after everything was freed");
	teardown();
}

/* Frees by a thread that does not hold the page (xfree), and full pages
 * kept on the holder's full list. */
struct remote {
	void **p;
	int n, bad;
};

static void *remote_thread(void *arg)
{
	struct remote *r = arg;
	for (int i = 0; i < r->n; i++)
		r->bad += cfree(r->p[i]) != 0;
	return NULL;
}

static int free_elsewhere(void **p, int n)
{
	struct remote r = {p, n, 0};
	pthread_t t;
	pthread_create(&t, NULL, remote_thread, &r);
	pthread_join(t, NULL);
	return r.bad;
}

static void test_holder_split(void)
{
	setup(true);
	void *p[63], *q[63], *again[3];
	for (int i = 0; i < 63; i++) /* page P: full */
		p[i] = alloc(64);
	q[0] = alloc(64); /* P goes on the full list; page Q is allocated from */
	struct hp_stats st = stats();
	is(st.code_pages, 2, "a full page and the next: two pages");
	void *gone[3] = {p[5], p[40], p[62]};
	is(free_elsewhere(gone, 3), 0, "another thread frees 3 chunks of the full page");
	st = stats();
	is(st.code_frees, 3, "... counted");
	is(st.code_bytes, 61 * 64, "... out of code_bytes (64 allocations, 3 freed)");
	bool taken;
	ok(hp_code_usable(A, (uintptr_t)p[40], &taken) == 0 && taken,
	   "a chunk freed by another thread is not live (hp_usable_size 0)");
	static const char code[64];
	is(hp_code_write(A, (uintptr_t)p[40], code, 64, &taken), ENOMEM,
	   "... nor writable (ENOMEM)");
	int stores = fake.stores;
	is(cfree(p[5]), EINVAL, "its holder freeing it again: EINVAL");
	is(free_elsewhere(&p[62], 1), 1, "another thread freeing it again: EINVAL");
	is(fake.stores, stores, "... and neither stores anything");
	for (int i = 1; i < 63; i++) /* Q full */
		q[i] = alloc(64);
	for (int i = 0; i < 3; i++)
		again[i] = alloc(64);
	ok(again[0] == p[5] && again[1] == p[40] && again[2] == p[62],
	   "Q full: the holder takes P back and hands out the freed chunks, in order");
	st = stats();
	is(st.code_pages, 2, "... no third page");
	/* Both pages are full now; the holder frees into one. */
	void *more = alloc(64); /* P and Q on the full list; a third page */
	is(cfree(q[7]), 0, "the holder frees a chunk of a page on its full list");
	is(cfree(more), 0, "the third page empties");
	st = stats();
	is(st.code_pages, 3, "... and stays: it is the page allocated from");
	void *r[63];
	for (int i = 0; i < 63; i++)
		r[i] = alloc(64);
	is((uintptr_t)r[0], (uintptr_t)more, "the third page is still allocated from");
	void *back = alloc(64);
	is((uintptr_t)back, (uintptr_t)q[7], "once it is full, the page with room again");
	cfree(back);
	for (int i = 0; i < 63; i++)
		cfree(r[i]);
	/* Everything freed, half of it by another thread. */
	p[5] = again[0], p[40] = again[1], p[62] = again[2];
	q[7] = NULL;
	is(free_elsewhere(p, 63), 0, "another thread frees all of P");
	int bad = 0;
	for (int i = 0; i < 63; i++)
		bad += q[i] && cfree(q[i]) != 0;
	is(bad, 0, "the holder frees all of Q");
	st = stats();
	is(st.code_bytes, 0, "no code bytes in use");
	is(st.code_frees, st.code_allocs, "every allocation freed once");
	drain();
	st = stats();
	is(st.code_pages, 0, "after the drain no code page is left, full list or not");
	fake_check_arena(A, "after frees from both sides");
	teardown();
}

static void test_meta_fails(void)
{
	setup(true);
	/* The chunk and this thread's cache exist; the next metadata is the
	 * RX block's code state. */
	void *rw = hp_pool_alloc(A, 1, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, false);
	ok(rw && hp_tcache_mine(A), "a chunk and a cache");
	fake.fault_hook = FH_META_ALLOC;
	fake.fault_err = ENOMEM;
	fake.fault_at = fake.calls[FH_META_ALLOC] + 1;
	void *p = alloc(64);
	ok(p == NULL && errno == ENOMEM, "no memory for the block's code state: NULL, ENOMEM");
	struct hp_stats st = stats();
	is(st.used_bytes, HP_PAGE_SIZE, "... and the code page went back");
	is(st.code_allocs, 0, "... nothing counted");
	fake.fault_at = 0;
	p = alloc(64);
	ok(p != NULL, "the next allocation works");
	cfree(p);
	hp_pool_free(A, (uintptr_t)rw);
	teardown();
}

/* The fast free's test of a chunk start without a multiply
 * (code_fast.h hp_code_at_start): every offset of a page, every class,
 * against the division it stands for. */
static void test_chunk_start(void)
{
	static const unsigned gran[] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 21, 32};
	int wrong = 0;
	for (size_t k = 0; k < sizeof(gran) / sizeof(gran[0]); k++) {
		uint32_t size = gran[k] * HP_CODE_ALIGN, inv = (1u << 24) / size + 1;
		for (uint32_t off = 0; off < HP_PAGE_SIZE; off++) {
			uint32_t at = off * inv;
			bool start = off % size == 0;
			if (hp_code_at_start(at, inv) != start || at >> 24 != off / size) {
				if (wrong++ < 5)
					tap_diag("  class of %u bytes, offset %u", size, off);
			}
		}
	}
	is(wrong, 0, "chunk starts and chunk numbers from one multiply: every offset, every class");
}

int main(void)
{
	test_chunk_start();
	test_classes();
	test_bad_frees();
	test_write();
	test_pages_return();
	test_threads();
	test_holder_split();
	test_meta_fails();
	return tap_done();
}
