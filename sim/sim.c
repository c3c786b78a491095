/* SPDX-License-Identifier: MIT */
/*
 * sim.c - reading traces and replaying them under a policy.
 *
 * The replay keeps the program's view: every live mapping the trace made
 * (struct sim_alloc), sorted by address, with each page's protection.  An
 * event is cut into pieces, one per mapping it touches, and each piece is
 * handed to the policy, which places and maps pages at its own addresses
 * through the model (model.c).  Events on pages the trace never mapped
 * (files, stacks, the loader's mprotects) are counted and ignored.  After
 * each event the policy may run deferred work (tick) and the figures are
 * integrated over trace time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_internal.h"

#define ACCESS (PROT_READ | PROT_WRITE | PROT_EXEC)

/* ---------------------------------------------------------------------
 * Traces: binary or text
 * ------------------------------------------------------------------- */

int sim_trace_add(struct sim_trace *t, const struct hp_trace_event *ev)
{
	/* Room for 256 events, then doubled at each power of two. */
	if (t->n == 0 || (t->n >= 256 && (t->n & (t->n - 1)) == 0)) {
		size_t cap = t->n ? 2 * t->n : 256;
		struct hp_trace_event *nev = realloc(t->ev, cap * sizeof(*nev));
		if (!nev)
			return ENOMEM;
		t->ev = nev;
	}
	t->ev[t->n++] = *ev;
	return 0;
}

void sim_trace_free(struct sim_trace *t)
{
	free(t->ev);
	memset(t, 0, sizeof(*t));
}

static int parse_prot(const char *s, int *prot)
{
	if (strlen(s) != 3)
		return EINVAL;
	*prot = 0;
	const char *want = "rwx";
	for (int i = 0; i < 3; i++) {
		if (s[i] == want[i])
			*prot |= 1 << i;
		else if (s[i] != '-')
			return EINVAL;
	}
	return 0;
}

/* "0x<hex>" or "<hex>" of @n bytes at @s, not 0 and within 64 bits, into *out. */
static bool parse_hint(const char *s, size_t n, uint64_t *out)
{
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
			: s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
			: s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
						     : -1;
		if (d < 0 || v >> 60)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return n > 0 && v != 0;
}

/* The flags list; a bad hint=0x<address> says so in @bad (EINVAL). */
static int parse_flags(const char *s, int *flags, uint64_t *hint, char *bad, size_t badlen)
{
	*flags = 0;
	*hint = 0;
	while (*s) {
		size_t n = strcspn(s, "|");
		if (n >= 5 && !strncmp(s, "hint=", 5)) {
			if (!parse_hint(s + 5, n - 5, hint)) {
				snprintf(bad, badlen, "bad hint address '%.*s' (hint=0x<address>)",
					 (int)(n - 5), s + 5);
				return EINVAL;
			}
			*flags |= HP_TF_HINT | HP_TF_HINT_AT;
		} else if (n == 5 && !strncmp(s, "fixed", 5))
			*flags |= HP_TF_FIXED;
		else if (n == 9 && !strncmp(s, "noreserve", 9))
			*flags |= HP_TF_NORESERVE;
		else if (n == 4 && !strncmp(s, "hint", 4))
			*flags |= HP_TF_HINT;
		else if (n == 5 && !strncmp(s, "grows", 5))
			*flags |= HP_TF_GROWS;
		else if (n == 9 && !strncmp(s, "noreplace", 9))
			*flags |= HP_TF_FIXED | HP_TF_NOREPLACE;
		else if (!(n == 1 && *s == '-'))
			return EINVAL;
		s += n + (s[n] == '|');
	}
	return 0;
}

/* Does @ev's range end within the address space? */
static bool in_space(const struct hp_trace_event *ev)
{
	return ev->npages <= SIM_PAGE_END && ev->page <= SIM_PAGE_END - ev->npages;
}

static int parse_text(const char *data, size_t size, struct sim_trace *t, char *err, size_t errlen)
{
	size_t line = 0;
	strcpy(t->h.source, "text");
	t->h.version = HP_TRACE_VERSION;
	t->h.page_shift = SIM_PAGE_SHIFT;
	for (const char *p = data, *end = data + size; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char buf[256], type[16], prot[8] = "---", flags[64] = "";
		line++;
		if (memchr(p, 0, len)) {
			snprintf(err, errlen, "line %zu: a NUL byte (binary, not a trace)", line);
			return EINVAL;
		}
		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, p, len);
		buf[len] = 0;
		p += len + 1;
		char *c = buf + strspn(buf, " \t");
		if (*c == '#' || *c == 0) {
			char *comm = strstr(c, "comm=");
			if (comm)
				sscanf(comm + 5, "%31s", t->h.comm);
			continue;
		}
		double t_us;
		unsigned tid;
		unsigned long long addr, npages;
		int n = sscanf(c, "%lf %u %15s %llx %llu %7s %63s", &t_us, &tid, type, &addr,
			       &npages, prot, flags);
		struct hp_trace_event ev = {.tid = tid, .npages = npages, .page = addr >> 12};
		int type_id = 0, pr = 0, fl = 0;
		char bad[96] = "";
		for (int k = 1; k < HP_EV_NTYPES; k++)
			if (!strcmp(type, hp_trace_type_name(k)))
				type_id = k;
		if (n < 5 || type_id == 0 || (addr & 0xfff) || !(t_us >= 0 && t_us < 1.8e16) ||
		    parse_prot(prot, &pr) || parse_flags(flags, &fl, &ev.hint, bad, sizeof(bad)) ||
		    !in_space(&ev)) {
			if (bad[0])
				snprintf(err, errlen, "line %zu: %s, in '%s'", line, bad, c);
			else
				snprintf(
					err, errlen,
					"line %zu: expected '<t_us> <tid> <type> 0x<addr> <npages> "
					"<rwx> [flags]', got '%s'",
					line, c);
			return EINVAL;
		}
		ev.t_ns = (uint64_t)(t_us * 1000.0 + 0.5);
		ev.type = (uint8_t)type_id;
		ev.prot = (uint8_t)pr;
		ev.flags = (uint16_t)fl;
		if (sim_trace_add(t, &ev))
			return ENOMEM;
	}
	return 0;
}

int sim_trace_parse(const uint8_t *data, size_t size, struct sim_trace *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (size == 0) {
		snprintf(err, errlen, "empty");
		return EINVAL;
	}
	if (size < 7 || memcmp(data, HP_TRACE_MAGIC, 7) != 0) {
		int e = parse_text((const char *)data, size, t, err, errlen);
		if (e)
			sim_trace_free(t);
		return e;
	}
	int e = hp_trace_header_decode(data, size, &t->h);
	if (e) {
		snprintf(err, errlen,
			 e == ENOTSUP ? "trace version or page size not supported"
				      : "truncated header");
		return e;
	}
	struct hp_trace_enc st = {0, 0, t->h.version};
	const uint8_t *p = data + HP_TRACE_HEADER, *end = data + size;
	while (p < end) {
		struct hp_trace_event ev;
		size_t at = (size_t)(p - data);
		if (hp_trace_decode(&st, &p, end, &ev) || !in_space(&ev)) {
			snprintf(err, errlen, "bad event at byte %zu (event %zu)", at, t->n);
			sim_trace_free(t);
			return EINVAL;
		}
		if (sim_trace_add(t, &ev)) {
			sim_trace_free(t);
			return ENOMEM;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Policies
 * ------------------------------------------------------------------- */

static const struct sim_policy *const policies[] = {
	&sim_naive, &sim_pte_cache, &sim_migratetype,	&sim_cpa_merge,
	&sim_pack,  &sim_hugeperm,  &sim_hugeperm_sync, &sim_hugeperm_block,
};
#define NPOLICIES (sizeof(policies) / sizeof(policies[0]))

const char *const sim_policy_names[] = {
	"naive",    "pte-cache",     "migratetype",    "cpa-merge", "pack",
	"hugeperm", "hugeperm-sync", "hugeperm-block", NULL,
};

static const struct sim_policy *policy_of(const char *name)
{
	for (size_t i = 0; i < NPOLICIES; i++)
		if (!strcmp(policies[i]->name, name))
			return policies[i];
	return NULL;
}

const char *sim_policy_about(const char *name)
{
	const struct sim_policy *p = policy_of(name);
	return p ? p->about : NULL;
}

/* ---------------------------------------------------------------------
 * The program's mappings
 * ------------------------------------------------------------------- */

/*
 * The mappings are sorted by first page.  Their nominal ranges may overlap
 * or nest: a mapping placed over part of another (MAP_FIXED) only marks
 * the other's pages unmapped, it does not cut it.  So a mapping touching
 * @page starts at most s->maxlen - 1 pages before it: lookups search by
 * start from there.
 */

/* Index of the first mapping that starts at or after @page. */
static size_t first_from(const struct sim *s, uint64_t page)
{
	size_t lo = 0, hi = s->na;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->a[mid]->page < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first mapping that may hold @page or pages after it. */
static size_t first_near(const struct sim *s, uint64_t page)
{
	return first_from(s, page > s->maxlen ? page - s->maxlen : 0);
}

static int insert(struct sim *s, struct sim_alloc *a)
{
	if (s->na == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct sim_alloc **na = realloc(s->a, cap * sizeof(*na));
		if (!na)
			return ENOMEM;
		s->a = na;
		s->cap = cap;
	}
	size_t i = first_from(s, a->page + 1); /* after those of the same start */
	memmove(s->a + i + 1, s->a + i, (s->na - i) * sizeof(*s->a));
	s->a[i] = a;
	s->na++;
	if (a->npages > s->maxlen)
		s->maxlen = a->npages;
	s->npages += a->npages;
	return 0;
}

static void mark_live(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, bool on)
{
	for (uint64_t i = off, j; i < off + n; i = j + 1) { /* runs of live pages */
		for (j = i; j < off + n && a->prot[j] != SIM_UNMAPPED && (a->prot[j] & ACCESS); j++)
			;
		if (j > i)
			sim_mm_use(&s->mm, a->at + i, j - i, on);
	}
}

void sim_move(struct sim *s, struct sim_alloc *a, uint64_t at)
{
	mark_live(s, a, 0, a->npages, false);
	a->at = at;
	mark_live(s, a, 0, a->npages, true);
}

struct sim_alloc *sim_alloc_at(struct sim *s, uint64_t page)
{
	for (size_t i = first_near(s, page); i < s->na && s->a[i]->page <= page; i++)
		if (page < s->a[i]->page + s->a[i]->npages)
			return s->a[i];
	return NULL;
}

struct sim_alloc *sim_alloc_mapping(struct sim *s, uint64_t page)
{
	for (size_t i = first_near(s, page); i < s->na && s->a[i]->page <= page; i++) {
		struct sim_alloc *a = s->a[i];
		if (page < a->page + a->npages && a->prot[page - a->page] != SIM_UNMAPPED)
			return a;
	}
	return NULL;
}

/* A piece op: on runs of still-mapped pages of @a in [off, off+n). */
typedef void (*piece_fn)(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, int arg);

/* Call @fn on every run of mapped pages of the mappings in [page, page+n);
 * returns the pages that were not mapped. */
static uint64_t for_pieces(struct sim *s, uint64_t page, uint64_t n, piece_fn fn, int arg)
{
	uint64_t covered = 0;
	for (size_t i = first_near(s, page); i < s->na && s->a[i]->page < page + n;) {
		struct sim_alloc *a = s->a[i];
		if (a->page + a->npages <= page) { /* ends before the range */
			i++;
			continue;
		}
		uint64_t from = page > a->page ? page - a->page : 0;
		uint64_t to = page + n - a->page < a->npages ? page + n - a->page : a->npages;
		size_t before = s->na;
		for (uint64_t j = from; j < to;) {
			if (a->prot[j] == SIM_UNMAPPED) {
				j++;
				continue;
			}
			uint64_t k = j;
			while (k < to && a->prot[k] != SIM_UNMAPPED)
				k++;
			covered += k - j;
			fn(s, a, j, k - j, arg);
			if (s->na != before) /* @a was freed */
				break;
			j = k;
		}
		if (s->na == before)
			i++;
	}
	return n - covered;
}

static void free_alloc(struct sim *s, struct sim_alloc *a)
{
	s->pol->free(s->pp, a);
	size_t i = first_from(s, a->page);
	while (s->a[i] != a) /* after others of the same start */
		i++;
	s->npages -= a->npages;
	memmove(s->a + i, s->a + i + 1, (s->na - i - 1) * sizeof(*s->a));
	s->na--;
	free(a->prot);
	free(a);
}

static void do_unmap(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, int unused)
{
	s->pol->unmap(s->pp, a, off, n);
	mark_live(s, a, off, n, false);
	memset(a->prot + off, SIM_UNMAPPED, n);
	a->nlive -= n;
	if (a->nlive == 0)
		free_alloc(s, a);
}

/* Protect a run, the same protection in one call. */
static void do_protect(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, int prot)
{
	s->pol->protect(s->pp, a, off, n, prot);
	mark_live(s, a, off, n, false);
	memset(a->prot + off, prot, n);
	mark_live(s, a, off, n, true);
}

static void do_write(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, int unused)
{
	s->pol->write(s->pp, a, off, n);
}

static void do_discard(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, int unused)
{
	s->pol->discard(s->pp, a, off, n);
}

/* A new mapping of @n pages at @page, asked for at @hint (0: no address
 * recorded); its pages' protections from @prots (NULL: all @prot). */
static int do_map(struct sim *s, uint64_t page, uint64_t n, int prot, int flags, uint64_t hint,
		  const uint8_t *prots)
{
	if (n == 0)
		return -1;		     /* maps nothing: ignored */
	for_pieces(s, page, n, do_unmap, 0); /* MAP_FIXED replaces */
	if (n > SIM_MAX_PAGES - s->npages)
		return EFBIG; /* more than the replay holds: the trace is absurd */
	struct sim_alloc *a = calloc(1, sizeof(*a));
	uint8_t *pa = malloc(n ? n : 1);
	if (!a || !pa) {
		free(a);
		free(pa);
		return ENOMEM;
	}
	*a = (struct sim_alloc){.page = page,
				.npages = n,
				.nlive = n,
				.prot = pa,
				.home = prot,
				.flags = flags,
				.hint = flags & HP_TF_HINT_AT ? hint : 0};
	memset(pa, prot, n);
	int err = s->pol->map(s->pp, a);
	if (!err)
		err = insert(s, a);
	if (err) {
		free(pa);
		free(a);
		return err;
	}
	mark_live(s, a, 0, n, true);
	for (uint64_t j = 0; prots && j < n;) { /* a remap keeps each page's protection */
		uint64_t k = j;
		while (k < n && prots[k] == prots[j])
			k++;
		if (prots[j] != prot)
			do_protect(s, a, j, k - j, prots[j]);
		j = k;
	}
	return 0;
}

static void record_prots(struct sim *s, struct sim_alloc *a, uint64_t off, uint64_t n, int base)
{
	uint8_t *out = s->remap_prots;
	memcpy(out + (a->page + off - (uint64_t)s->remap_page), a->prot + off, n);
}

/* mremap: the old pages go, the new range takes their protections; pages
 * the range grew by take the last one's. */
static int do_remap(struct sim *s, const struct hp_trace_event *from,
		    const struct hp_trace_event *to)
{
	if (from->npages > SIM_MAX_PAGES || to->npages > SIM_MAX_PAGES)
		return EFBIG;
	uint8_t *prots = malloc(to->npages ? to->npages : 1);
	uint8_t *old = malloc(from->npages ? from->npages : 1);
	if (!prots || !old) {
		free(prots);
		free(old);
		return ENOMEM;
	}
	memset(old, SIM_UNMAPPED, from->npages);
	s->remap_prots = old;
	s->remap_page = from->page;
	for_pieces(s, from->page, from->npages, record_prots, 0);
	int last = PROT_NONE, first = -1;
	for (uint64_t i = 0; i < to->npages; i++) {
		if (i < from->npages && old[i] != SIM_UNMAPPED)
			last = old[i];
		if (first < 0 && i < from->npages && old[i] != SIM_UNMAPPED)
			first = old[i];
		prots[i] = (uint8_t)last;
	}
	for_pieces(s, from->page, from->npages, do_unmap, 0);
	int err = 0;
	if (first >= 0) /* else nothing of ours moved */
		err = do_map(s, to->page, to->npages, first, 0, 0, prots);
	free(prots);
	free(old);
	return first >= 0 ? err : -1;
}

/* ---------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------- */

struct acc {
	uint64_t t_prev;
	double cov_area, cov_time, blocks_area;
	uint64_t last_sample;
	size_t cap_samples;
};

static double coverage(const struct sim_mm *mm)
{
	return mm->nused ? (double)mm->nused_huge / (double)mm->nused : 1.0;
}

static void sample(struct sim *s, struct sim_result *r, struct acc *acc, uint64_t t, bool force)
{
	if (!force && r->nsamples && t - acc->last_sample < s->sample_ns)
		return;
	if (r->nsamples == acc->cap_samples) {
		size_t cap = acc->cap_samples ? 2 * acc->cap_samples : 1024;
		struct sim_sample *ns = realloc(r->samples, cap * sizeof(*ns));
		if (!ns)
			return;
		r->samples = ns;
		acc->cap_samples = cap;
	}
	r->samples[r->nsamples++] =
		(struct sim_sample){t, coverage(&s->mm), s->mm.nused, s->mm.nblocks};
	acc->last_sample = t;
}

static int cmp_view(const void *x, const void *y)
{
	const struct sim_block_view *a = x, *b = y;
	return a->base < b->base ? -1 : a->base > b->base;
}

static void snapshot(struct sim *s, struct sim_result *r, size_t event)
{
	free(r->map);
	r->map = calloc(s->mm.n ? s->mm.n : 1, sizeof(*r->map));
	r->nmap = 0;
	r->map_event = event;
	if (!r->map)
		return;
	for (size_t i = 0; i < s->mm.cap; i++)
		for (struct sim_mblock *b = s->mm.tab[i]; b; b = b->next) {
			struct sim_block_view *v = &r->map[r->nmap++];
			v->base = b->index << 21;
			v->state = b->state;
			memcpy(v->prot, b->prot, sizeof(v->prot));
			memcpy(v->used, b->used, sizeof(v->used));
		}
	qsort(r->map, r->nmap, sizeof(*r->map), cmp_view);
}

static int replay_event(struct sim *s, struct sim_result *r, const struct sim_trace *t, size_t *i)
{
	const struct hp_trace_event *ev = &t->ev[*i];
	uint64_t missed = 0;
	int err = 0;
	if (!in_space(ev) || (ev->type == HP_EV_REMAP && *i + 1 < t->n && !in_space(ev + 1))) {
		r->ignored++; /* a trace not from the reader (sim_trace_add) may hold these */
		return 0;
	}
	s->tid = ev->tid;
	switch (ev->type) {
	case HP_EV_MAP:
		err = do_map(s, ev->page, ev->npages, ev->prot, ev->flags, ev->hint, NULL);
		break;
	case HP_EV_UNMAP:
		missed = for_pieces(s, ev->page, ev->npages, do_unmap, 0);
		break;
	case HP_EV_PROTECT:
		missed = for_pieces(s, ev->page, ev->npages, do_protect, ev->prot);
		break;
	case HP_EV_WRITE:
		missed = for_pieces(s, ev->page, ev->npages, do_write, 0);
		break;
	case HP_EV_DISCARD:
		missed = for_pieces(s, ev->page, ev->npages, do_discard, 0);
		break;
	case HP_EV_REMAP:
		if (*i + 1 < t->n && t->ev[*i + 1].type == HP_EV_REMAP_TO) {
			err = do_remap(s, ev, &t->ev[*i + 1]);
			++*i;
		} else {
			err = -1;
		}
		break;
	default:
		err = -1;
	}
	if (err == ENOMEM && s->mm.oom)
		return ENOMEM;
	if (err == EFBIG) /* beyond SIM_MAX_PAGES (no policy returns EFBIG) */
		return EINVAL;
	if (err || missed == ev->npages)
		r->ignored++;
	return 0;
}

static int run(const struct sim_trace *t, const struct sim_policy *pol, struct hp_arena *arena,
	       const struct sim_options *o, struct sim_result *r)
{
	struct sim_options def = {.collapse_mode = 0, .map_at = -1};
	memset(r, 0, sizeof(*r));
	if (!o)
		o = &def;
	if (o->map_at == -2) { /* the map at the peak: find it, then run again */
		struct sim_options first = *o;
		first.map_at = -1;
		first.series = false;
		int err = run(t, pol, arena, &first, r);
		size_t peak = r->map_event;
		sim_result_free(r);
		if (err)
			return err;
		first = *o;
		first.map_at = (long)peak;
		return run(t, pol, arena, &first, r);
	}

	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	snprintf(r->policy, sizeof(r->policy), "%s", pol->name);
	sim_mm_init(&s->mm, true);
	s->pol = pol;
	s->collapse_mode = o->collapse_mode;
	s->sample_ns = o->sample_ns;
	s->arena = arena;
	s->pp = pol->create(s);
	int err = s->pp ? s->mm.oom : ENOMEM;

	struct acc acc = {0};
	r->coverage_min = 1.0;
	uint64_t peak_live = 0;
	size_t peak_event = 0;
	for (size_t i = 0; !err && i < t->n; i++) {
		uint64_t now = t->ev[i].t_ns;
		if (o->series && i == 0)
			sample(s, r, &acc, now, true);
		if (now > acc.t_prev) { /* the state since the last event held till now */
			uint64_t dt = now - acc.t_prev;
			if (s->mm.nused) {
				acc.cov_area += coverage(&s->mm) * (double)dt;
				acc.cov_time += (double)dt;
			}
			acc.blocks_area += (double)s->mm.nblocks * (double)dt;
			acc.t_prev = now;
		}
		s->now_ns = now;
		err = replay_event(s, r, t, &i);
		if (pol->tick)
			pol->tick(s->pp, now);
		err = err ? err : s->mm.oom;
		r->events++;
		if (s->mm.nblocks > r->blocks_peak)
			r->blocks_peak = s->mm.nblocks;
		if (s->mm.nused > peak_live) {
			peak_live = s->mm.nused;
			peak_event = i;
		}
		if (s->mm.nused && coverage(&s->mm) < r->coverage_min)
			r->coverage_min = coverage(&s->mm);
		if (o->series)
			sample(s, r, &acc, now, i + 1 == t->n);
		if (o->map_at >= 0 && (size_t)o->map_at == i)
			snapshot(s, r, i);
	}
	uint64_t span = t->n ? t->ev[t->n - 1].t_ns - t->ev[0].t_ns : 0;
	r->coverage_avg = acc.cov_time > 0 ? acc.cov_area / acc.cov_time : coverage(&s->mm);
	r->coverage_end = s->mm.nused ? coverage(&s->mm) : -1; /* nothing live */
	r->blocks_avg = span ? acc.blocks_area / (double)span : (double)s->mm.nblocks;
	r->live_peak_pages = peak_live;
	if (o->map_at < 0)
		r->map_event = peak_event;
	r->splits = s->mm.splits;
	r->collapses = s->mm.collapses;
	r->n_mmap = s->mm.n_mmap;
	r->n_mprotect = s->mm.n_mprotect;
	r->n_munmap = s->mm.n_munmap;
	r->n_madvise = s->mm.n_madvise;
	r->n_copy = s->n_copy;
	r->n_alias = s->n_alias;
	r->n_areas = s->n_areas;
	r->n_grown = s->n_grown;
	r->served_blocks_peak = s->served_blocks_peak;
	r->served_blocks_end = s->served_blocks;
	r->syscalls = r->n_mmap + r->n_mprotect + r->n_munmap + r->n_madvise;
	if (s->pp)
		pol->destroy(s->pp); /* after the counts: tearing down is not replayed */
	for (size_t i = 0; i < s->na; i++) {
		free(s->a[i]->prot);
		free(s->a[i]);
	}
	free(s->a);
	sim_mm_fini(&s->mm);
	free(s);
	return err;
}

int sim_run(const struct sim_trace *t, const char *policy, const struct sim_options *o,
	    struct sim_result *r)
{
	const struct sim_policy *pol = policy_of(policy);
	if (!pol) {
		memset(r, 0, sizeof(*r));
		return EINVAL;
	}
	return run(t, pol, NULL, o, r);
}

int sim_run_arena(const struct sim_trace *t, struct hp_arena *arena, const struct sim_options *o,
		  struct sim_result *r)
{
	return run(t, &sim_hugeperm, arena, o, r);
}

void sim_result_free(struct sim_result *r)
{
	free(r->samples);
	free(r->map);
	r->samples = NULL;
	r->map = NULL;
	r->nsamples = r->nmap = 0;
}
