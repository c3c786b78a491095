/* SPDX-License-Identifier: MIT */
/*
 * synth.c - JIT-like traces for experiments (`hugeperm synth`).
 *
 * The shape follows what the JITs on our machines do (docs/sim.md):
 * each compiling thread owns a code area (an anonymous RW mapping of
 * area_pages, mapped with an address hint); a unit of code (a function, a
 * trace) of 1..max_pages pages is bump-allocated in it, made RW, written
 * and made RX; it is then patched `flips` times (RW, write, RX) and dies
 * after about `lifetime` more units.  An area whose units have all died is
 * unmapped.  data_pct of the mappings are data instead: RW, never
 * executable, unmapped when they die.  Sizes are skewed small (most
 * units are one page), times are exponential with mean gap_ns.  The same
 * seed gives the same trace.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim_internal.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

void sim_synth_defaults(struct sim_synth *s)
{
	*s = (struct sim_synth){
		.seed = 1,
		.threads = 2,
		.units = 2000,
		.max_pages = 16,
		.area_pages = 16,
		.flips = 1,
		.lifetime = 400,
		.data_pct = 10,
		.gap_ns = 50000,
	};
}

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r) /* splitmix64 */
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double uniform01(struct rng *r)
{
	return (double)(next(r) >> 11) / 9007199254740992.0;
}

static uint64_t expo(struct rng *r, double mean)
{
	return mean <= 0 ? 0 : (uint64_t)(-log(1.0 - uniform01(r)) * mean);
}

struct area {
	uint64_t page, npages, used; /* bump pointer */
	unsigned live;		     /* units alive in it */
	bool data;
};

struct unit {
	unsigned area;
	uint64_t page, npages;
	uint64_t dies; /* unit number after which it is freed (0: never) */
};

struct gen {
	struct rng rng;
	const struct sim_synth *p;
	struct sim_trace *t;
	uint64_t now, next_page;
	struct area *areas;
	size_t nareas;
	unsigned *cur; /* per thread: its current area, or -1 */
	int err;
};

static void emit(struct gen *g, unsigned thread, int type, uint64_t page, uint64_t n, int prot,
		 int flags)
{
	struct hp_trace_event ev = {.t_ns = g->now,
				    .page = page,
				    .npages = n,
				    .tid = 1000 + thread,
				    .type = (uint8_t)type,
				    .prot = (uint8_t)prot,
				    .flags = (uint16_t)flags};
	g->now += 1000 + expo(&g->rng, 2000); /* the calls themselves take time */
	if (!g->err)
		g->err = sim_trace_add(g->t, &ev);
}

static unsigned new_area(struct gen *g, unsigned thread, uint64_t npages, bool data)
{
	struct area *na = realloc(g->areas, (g->nareas + 1) * sizeof(*na));
	if (!na) {
		g->err = ENOMEM;
		return 0;
	}
	g->areas = na;
	/* Areas land next to each other, as hinted mmaps do; a gap now and
	 * then, as when the kernel had something in the way. */
	g->next_page += uniform01(&g->rng) < 0.1 ? 1 + expo(&g->rng, 64) : 0;
	na[g->nareas] = (struct area){g->next_page, npages, 0, 0, data};
	g->next_page += npages;
	emit(g, thread, HP_EV_MAP, na[g->nareas].page, npages, RW, data ? 0 : HP_TF_HINT);
	return (unsigned)g->nareas++;
}

/* Units by the time they die: a min-heap on (dies, index), so that units
 * due at the same time die in the order they were made. */
struct due {
	unsigned *idx;
	size_t n;
	const struct unit *units;
};

static bool before(const struct due *h, unsigned a, unsigned b)
{
	uint64_t da = h->units[a].dies, db = h->units[b].dies;
	return da < db || (da == db && a < b);
}

static void due_push(struct due *h, unsigned u)
{
	size_t i = h->n++;
	for (; i && before(h, u, h->idx[(i - 1) / 2]); i = (i - 1) / 2)
		h->idx[i] = h->idx[(i - 1) / 2];
	h->idx[i] = u;
}

static unsigned due_pop(struct due *h)
{
	unsigned top = h->idx[0], last = h->idx[--h->n];
	size_t i = 0;
	for (size_t c; (c = 2 * i + 1) < h->n; i = c) {
		if (c + 1 < h->n && before(h, h->idx[c + 1], h->idx[c]))
			c++;
		if (!before(h, h->idx[c], last))
			break;
		h->idx[i] = h->idx[c];
	}
	if (h->n)
		h->idx[i] = last;
	return top;
}

static void unit_dies(struct gen *g, const struct unit *u, unsigned thread)
{
	struct area *a = &g->areas[u->area];
	if (--a->live == 0 && (a->data || a->used == a->npages || g->cur[thread] != u->area)) {
		emit(g, thread, HP_EV_UNMAP, a->page, a->npages, 0, 0);
		for (unsigned t = 0; t < g->p->threads; t++)
			if (g->cur[t] == u->area)
				g->cur[t] = (unsigned)-1;
	}
}

int sim_synth(const struct sim_synth *p, struct sim_trace *out)
{
	struct gen g = {.rng = {p->seed}, .p = p, .t = out, .next_page = 0x7f0000000ULL};
	struct unit *units = calloc(p->units ? p->units : 1, sizeof(*units));
	struct due due = {malloc((p->units ? p->units : 1) * sizeof(unsigned)), 0, units};
	g.cur = malloc((p->threads ? p->threads : 1) * sizeof(*g.cur));
	memset(out, 0, sizeof(*out));
	if (!units || !due.idx || !g.cur || !p->threads || !p->max_pages || !p->area_pages) {
		free(units);
		free(due.idx);
		free(g.cur);
		return units && due.idx && g.cur ? EINVAL : ENOMEM;
	}
	out->h.version = HP_TRACE_VERSION;
	out->h.page_shift = SIM_PAGE_SHIFT;
	strcpy(out->h.source, "synth");
	strcpy(out->h.comm, "synth");
	memset(g.cur, 0xff, p->threads * sizeof(*g.cur));

	for (unsigned k = 0; k < p->units && !g.err; k++) {
		unsigned th = (unsigned)(next(&g.rng) % p->threads);
		g.now += expo(&g.rng, (double)p->gap_ns);
		/* Most units are a page; a few are large. */
		uint64_t n = 1 + expo(&g.rng, p->max_pages / 4.0);
		n = n > p->max_pages ? p->max_pages : n;
		bool data = next(&g.rng) % 100 < p->data_pct;
		struct unit *u = &units[k];
		if (data) {
			u->area = new_area(&g, th, n, true);
			u->page = g.areas[u->area].page;
		} else {
			unsigned c = g.cur[th];
			if (c == (unsigned)-1 || g.areas[c].used + n > g.areas[c].npages) {
				uint64_t size = n > p->area_pages ? n : p->area_pages;
				c = new_area(&g, th, size, false);
				g.cur[th] = c;
			}
			u->area = c;
			u->page = g.areas[c].page + g.areas[c].used;
			g.areas[c].used += n;
			emit(&g, th, HP_EV_PROTECT, u->page, n, RW, 0);
			emit(&g, th, HP_EV_PROTECT, u->page, n, RX, 0);
			for (unsigned f = 0; f < p->flips; f++) {
				emit(&g, th, HP_EV_PROTECT, u->page, n, RW, 0);
				emit(&g, th, HP_EV_PROTECT, u->page, n, RX, 0);
			}
		}
		u->npages = n;
		g.areas[u->area].live++;
		u->dies = p->lifetime ? k + 1 + expo(&g.rng, p->lifetime) : 0;
		if (u->dies)
			due_push(&due, k);
		while (due.n && units[due.idx[0]].dies == k + 1) { /* units due now die */
			struct unit *d = &units[due_pop(&due)];
			unit_dies(&g, d, th);
			d->npages = 0;
		}
	}
	free(due.idx);
	free(units);
	free(g.cur);
	free(g.areas);
	if (g.err)
		sim_trace_free(out);
	return g.err;
}
