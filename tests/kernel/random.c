/* SPDX-License-Identifier: MIT */
/*
 * random.t - 1000 random allocations, protection changes and frees on the
 * THP backend, checked against the kernel along the way:
 *   - free + cached + used == committed;
 *   - every page of every committed block has, in /proc/self/maps, the
 *     protection the block records (free pages included);
 *   - every page the test handed a pattern still holds it;
 *   - a block we believe huge is PMD-mapped (PAGEMAP_SCAN);
 *   - our splits equal thp_split_pmd's rise, and thp_collapse_alloc rose by
 *     what our collapse attempts allow (kernel_collapse_allocs_fit; the
 *     test runs alone, khugepaged paused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernel.h"
#include "tap.h"

#define NOPS	1000
#define MAXLIVE 64

struct live {
	unsigned char *p;
	size_t npages;
	unsigned char tag;
	uint8_t prot[1024]; /* the test's own model of each page */
};

static struct live live[MAXLIVE];
static int nlive;

static const int classes[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC};

/* Check everything against the kernel; counts of mismatches. */
static void check(struct hp_arena *a, const char *when, bool *all_ok)
{
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	bool ident = st.free_bytes + st.cached_bytes + st.used_bytes == st.committed_bytes;
	long bad_prot = 0, bad_model = 0, bad_huge = 0, pages = 0;

	kernel_maps_load();
	pthread_mutex_lock(&a->lock);
	for (struct hp_chunk *c = a->chunks; c; c = c->next)
		for (unsigned i = 0; i < HP_CHUNK_BLOCKS; i++) {
			struct hp_block *b = &c->blocks[i];
			if (b->state == HP_BLOCK_UNCOMMITTED)
				continue;
			for (unsigned p = 0; p < HP_BLOCK_PAGES; p++, pages++)
				bad_prot +=
					kernel_maps_prot(b->base + p * HP_PAGE_SIZE) != b->prot[p];
			if (b->huge && kernel_huge_pages(b->base, HP_BLOCK_SIZE) == 0)
				bad_huge++;
		}
	pthread_mutex_unlock(&a->lock);
	for (int i = 0; i < nlive; i++)
		for (size_t p = 0; p < live[i].npages; p++) {
			uintptr_t addr = (uintptr_t)live[i].p + p * HP_PAGE_SIZE;
			bad_model += kernel_maps_prot(addr) != live[i].prot[p];
			if ((live[i].prot[p] & PROT_READ) && *(unsigned char *)addr != live[i].tag)
				bad_model++;
		}
	if (!ident || bad_prot || bad_model || bad_huge) {
		*all_ok = false;
		tap_diag("%s: identity %d, %ld of %ld block pages differ from maps, %ld live pages "
			 "wrong, %ld blocks believed huge are not",
			 when, ident, bad_prot, pages, bad_model, bad_huge);
	}
}

int main(void)
{
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (!pr.thp || !pr.collapse)
		tap_skip_all("needs THP in madvise mode and MADV_COLLAPSE");

	struct hp_config cfg = {.size = sizeof(cfg),
				.backend = HP_BACKEND_THP,
				.collapse_mode = HP_COLLAPSE_DEFERRED,
				/* anonymous THP: tests/kernel/write.c covers aliased blocks */
				.flags = HP_ARENA_NO_ALIAS};
	struct hp_arena *a = hp_arena_create(&cfg);
	kernel_khugepaged_pause(); /* its collapses count in thp_collapse_alloc too */
	srandom(12345);
	long split0 = kernel_vmstat("thp_split_pmd");
	long coll0 = kernel_vmstat("thp_collapse_alloc");
	bool all_ok = true;
	int nalloc = 0, nfree = 0, nprot = 0, fails = 0;

	for (int op = 0; op < NOPS; op++) {
		int r = (int)(random() % 100);
		if ((r < 40 && nlive < MAXLIVE) || nlive == 0) {
			size_t n = random() % 10 == 0 ? 513 + random() % 400 : 1 + random() % 48;
			bool jit = random() % 4 == 0;
			int prot = jit ? PROT_READ | PROT_WRITE : classes[random() % 4];
			int flags = jit ? HP_HOME(PROT_READ | PROT_EXEC) : 0;
			struct live *l = &live[nlive];
			l->p = hp_arena_alloc(a, n * 4096, prot | flags);
			if (!l->p) {
				fails++;
				continue;
			}
			l->npages = n;
			l->tag = (unsigned char)(1 + random() % 250);
			memset(l->prot, prot, n);
			if (!(prot & PROT_WRITE)) /* give it a pattern through RW */
				hp_arena_protect(a, l->p, n * 4096, PROT_READ | PROT_WRITE);
			for (size_t p = 0; p < n; p++)
				l->p[p * 4096] = l->tag;
			if (!(prot & PROT_WRITE))
				hp_arena_protect(a, l->p, n * 4096, prot);
			nlive++;
			nalloc++;
		} else if (r < 75) {
			struct live *l = &live[random() % nlive];
			size_t first = random() % l->npages;
			size_t n = 1 + random() % (l->npages - first);
			int prot = classes[random() % 4];
			if (hp_arena_protect(a, l->p + first * 4096, n * 4096, prot)) {
				fails++;
				continue;
			}
			memset(l->prot + first, prot, n);
			nprot++;
		} else {
			int i = (int)(random() % nlive);
			if (hp_arena_free(a, live[i].p)) {
				fails++;
				continue;
			}
			live[i] = live[--nlive];
			nfree++;
		}
		if (op % 100 == 99) {
			char when[32];
			snprintf(when, sizeof(when), "after op %d", op + 1);
			check(a, when, &all_ok);
		}
		if (op % 250 == 249)
			hp_arena_collapse_pending(a);
	}
	hp_arena_collapse_pending(a);
	check(a, "at the end", &all_ok);

	tap_diag("%d allocs, %d protects, %d frees, %d failed calls", nalloc, nprot, nfree, fails);
	is(fails, 0, "no call failed");
	ok(all_ok, "kernel and allocator agreed at every check (identity, per-page protection, "
		   "contents, huge mappings)");
	struct hp_stats st = {.size = sizeof(st)};
	hp_arena_stats_get(a, &st);
	long ksplit = kernel_vmstat("thp_split_pmd") - split0;
	long kcoll = kernel_vmstat("thp_collapse_alloc") - coll0;
	tap_diag("splits: ours %lu, kernel %ld; collapses: ours %lu in %lu attempts, kernel "
		 "allocations %ld; steals %lu",
		 (unsigned long)st.splits, ksplit, (unsigned long)st.collapses,
		 (unsigned long)st.collapse_attempts, kcoll, (unsigned long)st.steals);
	ok(st.splits > 0 && st.collapses > 0, "the sequence exercised splits and collapses");
	is(st.splits, ksplit, "our splits equal thp_split_pmd");
	ok(kernel_collapse_allocs_fit(kcoll, st.collapse_attempts),
	   "thp_collapse_alloc +%ld: within what our %lu collapse attempts allow", kcoll,
	   (unsigned long)st.collapse_attempts);
	while (nlive)
		hp_arena_free(a, live[--nlive].p);
	hp_arena_stats_get(a, &st);
	is(st.used_bytes, 0, "everything freed: nothing in use");
	is(st.mixed_blocks, 0, "and no block is mixed");
	ok(hp_arena_trim(a) == 0, "trim");
	hp_arena_stats_get(a, &st);
	is(st.committed_bytes, 0, "trim returned every block");
	hp_arena_destroy(a);
	return tap_done();
}
