/* SPDX-License-Identifier: MIT */
/*
 * stats.c - what the arena holds, and how much of it is huge-mapped.
 *
 * A snapshot is computed from the blocks themselves (under the arena lock),
 * not from running totals, so free + cached + used == committed holds by
 * construction of the page bitmaps, and the tests check that identity
 * against the kernel's view separately.  Event counters (splits,
 * collapses, steals, mprotect calls) are running totals kept where the
 * events happen.
 *
 * A lazy block that is still all PROT_NONE (a reservation's untouched part)
 * holds no memory: it is address space, counted in lazy_blocks and
 * lazy_bytes, and left out of committed, used, cached and free bytes.
 */
#include "config.h"

#include <string.h>

#include "internal.h"

void hp_stats_collect(struct hp_arena *a, struct hp_stats *st)
{
	size_t size = st->size;
	memset(st, 0, size);
	st->size = size;

	pthread_mutex_lock(&a->lock);
	st->backend = a->backend;
	st->collapse_mode = a->collapse_mode;
	st->reserved_bytes = a->reserved_bytes;
	st->committed_bytes = a->committed_bytes;
	for (struct hp_chunk *c = a->chunks; c; c = c->next) {
		for (unsigned i = c->lo; i < c->hi; i++) {
			const struct hp_block *b = &c->blocks[i];
			if (b->state == HP_BLOCK_UNCOMMITTED)
				continue;
			int cls = -1;
			bool nomem = b->lazy && hp_block_uniform(b, &cls) && cls == PROT_NONE;
			struct hp_class_stats *cs = &st->cls[b->home];
			st->blocks++;
			cs->blocks++;
			if (b->state == HP_BLOCK_EMPTY)
				st->free_blocks++;
			if (b->aliased)
				st->aliased_blocks++;
			if (b->huge) {
				st->huge_blocks++;
				cs->huge_blocks++;
			}
			if (!hp_block_uniform(b, NULL))
				st->mixed_blocks++;
			if (nomem) {
				st->lazy_blocks++;
				for (unsigned p = 0; p < HP_BLOCK_PAGES; p++)
					st->lazy_bytes +=
						hp_test_bit(b->used, p) ? HP_PAGE_SIZE : 0;
				continue;
			}
			bool held = false; /* the allocation this page is in is cached */
			for (unsigned p = 0; p < HP_BLOCK_PAGES; p++) {
				if (!hp_test_bit(b->used, p))
					continue;
				if (hp_test_bit(b->start, p)) /* a span's later blocks read FREE */
					held = (hp_astate(b, p) & HP_A_MASK) == HP_A_HELD;
				if (held) {
					st->cached_bytes += HP_PAGE_SIZE;
					continue;
				}
				st->cls[b->prot[p]].used_bytes += HP_PAGE_SIZE;
				if (b->huge)
					st->cls[b->prot[p]].huge_used_bytes += HP_PAGE_SIZE;
			}
		}
	}
	for (int c = 0; c < HP_NCLASS; c++) {
		struct hp_class_stats *cs = &st->cls[c];
		cs->splits = a->n.splits[c];
		cs->collapses = a->n.collapses[c];
		cs->steals = a->n.steals[c];
		st->used_bytes += cs->used_bytes;
		st->huge_used_bytes += cs->huge_used_bytes;
		st->splits += cs->splits;
		st->collapses += cs->collapses;
		st->steals += cs->steals;
	}
	st->committed_bytes -= st->lazy_blocks * HP_BLOCK_SIZE;
	st->free_bytes = st->committed_bytes - st->used_bytes - st->cached_bytes;
	/* Pages of class NONE hold no memory (lazy allocations): not counted. */
	uint64_t used = st->used_bytes - st->cls[PROT_NONE].used_bytes;
	uint64_t huge = st->huge_used_bytes - st->cls[PROT_NONE].huge_used_bytes;
	st->coverage = used ? (double)huge / (double)used : 1.0;
	st->collapse_attempts = a->n.collapse_attempts;
	st->collapse_eagain = a->n.collapse_eagain;
	st->collapse_enomem = a->n.collapse_enomem;
	st->collapse_ebusy = a->n.collapse_ebusy;
	st->collapse_einval = a->n.collapse_einval;
	st->collapse_other = a->n.collapse_other;
	st->collapse_pending = a->nqueued;
	st->mprotect_calls = a->n.mprotect_calls;
	hp_tcache_counts(a, &st->allocs, &st->frees);
	st->allocs += a->n.allocs;
	st->frees += a->n.frees;
	st->trimmed_blocks = a->n.trimmed_blocks;
	st->writes_direct = a->n.writes_direct;
	st->writes_alias = a->n.writes_alias;
	st->writes_procmem = a->n.writes_procmem;
	st->writes_flip = a->n.writes_flip;
	st->guards_madvise = a->n.guards_madvise;
	st->guards_prot = a->n.guards_prot;
	st->khugepaged = a->n.khugepaged;
	st->purged_blocks = a->n.purged_blocks;
	st->purged_bytes = a->n.purged_blocks * HP_BLOCK_SIZE;
	st->purge_failed = a->n.purge_failed;
	st->fresh_blocks = a->n.fresh_blocks;
	st->fresh_ns = a->n.fresh_ns;
	st->collapse_ns = a->n.collapse_ns;
	hp_code_stats(a, st);
	pthread_mutex_unlock(&a->lock);
}

static void kv(struct hp_buf *b, bool json, const char *key, uint64_t v)
{
	if (json) {
		hp_buf_str(b, ",\"");
		hp_buf_str(b, key);
		hp_buf_str(b, "\":");
	} else {
		hp_buf_str(b, "  ");
		hp_buf_str(b, key);
		hp_buf_pad(b, 24);
	}
	hp_buf_u64(b, v);
	if (!json)
		hp_buf_str(b, "\n");
}

/* Does @st reach the purge counters (callers built before them pass a
 * smaller size)? */
static bool has_purge(const struct hp_stats *st)
{
	return st->size >= offsetof(struct hp_stats, purge_failed) + sizeof(st->purge_failed);
}

/* Does @st reach the code counters? */
static bool has_code(const struct hp_stats *st)
{
	return st->size >= offsetof(struct hp_stats, code_pages) + sizeof(st->code_pages);
}

/* Does @st reach the lazy counters? */
static bool has_lazy(const struct hp_stats *st)
{
	return st->size >= offsetof(struct hp_stats, lazy_bytes) + sizeof(st->lazy_bytes);
}

/* Does @st reach the time counters? */
static bool has_fresh(const struct hp_stats *st)
{
	return st->size >= offsetof(struct hp_stats, collapse_ns) + sizeof(st->collapse_ns);
}

static void write_json(const struct hp_stats *st, struct hp_buf *b)
{
	hp_buf_str(b, "{\"backend\":\"");
	hp_buf_str(b, hp_backend_name(st->backend));
	hp_buf_str(b, "\",\"collapse_mode\":\"");
	hp_buf_str(b, hp_collapse_mode_name(st->collapse_mode));
	hp_buf_str(b, "\",\"coverage\":");
	hp_buf_fixed(b, st->coverage, 4);
#define F(x) kv(b, true, #x, st->x)
	F(reserved_bytes), F(committed_bytes), F(used_bytes), F(free_bytes), F(cached_bytes);
	F(blocks), F(free_blocks), F(huge_blocks), F(mixed_blocks), F(huge_used_bytes);
	F(splits), F(collapse_attempts), F(collapses), F(collapse_eagain), F(collapse_enomem);
	F(collapse_ebusy), F(collapse_einval), F(collapse_other), F(collapse_pending);
	F(steals), F(mprotect_calls), F(allocs), F(frees), F(trimmed_blocks);
	F(aliased_blocks), F(writes_direct), F(writes_alias), F(writes_procmem), F(writes_flip);
	F(guards_madvise), F(guards_prot), F(khugepaged);
	if (has_purge(st))
		F(purged_blocks), F(purged_bytes), F(purge_failed);
	if (has_code(st))
		F(code_allocs), F(code_frees), F(code_bytes), F(code_lost_bytes), F(code_pages);
	if (has_lazy(st))
		F(lazy_blocks), F(lazy_bytes);
	if (has_fresh(st))
		F(fresh_blocks), F(fresh_ns), F(collapse_ns);
#undef F
	hp_buf_str(b, ",\"classes\":{");
	bool first = true;
	for (int c = 0; c < HP_NCLASS; c++) {
		const struct hp_class_stats *cs = &st->cls[c];
		if (!cs->blocks && !cs->used_bytes && !cs->splits && !cs->collapses && !cs->steals)
			continue;
		hp_buf_str(b, first ? "\"" : ",\"");
		first = false;
		hp_buf_str(b, hp_class_name(c));
		hp_buf_str(b, "\":{\"class\":\"");
		hp_buf_str(b, hp_class_name(c));
		hp_buf_str(b, "\"");
#define C(x) kv(b, true, #x, cs->x)
		C(used_bytes), C(huge_used_bytes), C(blocks), C(huge_blocks), C(splits);
		C(collapses), C(steals);
#undef C
		hp_buf_str(b, "}");
	}
	hp_buf_str(b, "}}\n");
}

static void write_table(const struct hp_stats *st, struct hp_buf *b)
{
	hp_buf_str(b, "hugeperm stats: backend ");
	hp_buf_str(b, hp_backend_name(st->backend));
	hp_buf_str(b, ", collapse ");
	hp_buf_str(b, hp_collapse_mode_name(st->collapse_mode));
	hp_buf_str(b, ", coverage ");
	hp_buf_fixed(b, st->coverage * 100.0, 1);
	hp_buf_str(b, "%\n");
	hp_buf_str(b, "  class  used KiB  huge KiB  blocks  huge  splits  collapses  steals\n");
	for (int c = 0; c < HP_NCLASS; c++) {
		const struct hp_class_stats *cs = &st->cls[c];
		if (!cs->blocks && !cs->used_bytes && !cs->splits && !cs->collapses && !cs->steals)
			continue;
		hp_buf_str(b, "  ");
		hp_buf_str(b, hp_class_name(c));
		const uint64_t cols[] = {cs->used_bytes >> 10,
					 cs->huge_used_bytes >> 10,
					 cs->blocks,
					 cs->huge_blocks,
					 cs->splits,
					 cs->collapses,
					 cs->steals};
		const size_t at[] = {9, 19, 29, 37, 43, 51, 62};
		for (int i = 0; i < 7; i++) {
			hp_buf_pad(b, at[i]);
			hp_buf_u64(b, cols[i]);
		}
		hp_buf_str(b, "\n");
	}
#define F(x) kv(b, false, #x, st->x)
	F(committed_bytes), F(used_bytes), F(free_bytes), F(cached_bytes), F(blocks);
	F(free_blocks), F(huge_blocks), F(mixed_blocks), F(splits), F(collapse_attempts);
	F(collapses), F(collapse_eagain), F(collapse_enomem), F(collapse_ebusy);
	F(collapse_einval), F(collapse_other), F(collapse_pending), F(steals);
	F(mprotect_calls), F(allocs), F(frees), F(trimmed_blocks), F(aliased_blocks);
	F(writes_direct), F(writes_alias), F(writes_procmem), F(writes_flip);
	F(guards_madvise), F(guards_prot), F(khugepaged);
	if (has_purge(st))
		F(purged_blocks), F(purged_bytes), F(purge_failed);
	if (has_code(st))
		F(code_allocs), F(code_frees), F(code_bytes), F(code_lost_bytes), F(code_pages);
	if (has_lazy(st))
		F(lazy_blocks), F(lazy_bytes);
	if (has_fresh(st))
		F(fresh_blocks), F(fresh_ns), F(collapse_ns);
#undef F
}

void hp_stats_write(const struct hp_stats *st, int fd, int flags)
{
	char out[4096];
	struct hp_buf b = {out, sizeof(out), 0};
	if (flags & HP_STATS_JSON)
		write_json(st, &b);
	else
		write_table(st, &b);
	hp_os_linux.write_all(fd, out, b.len < b.cap ? b.len : b.cap);
}
