/* SPDX-License-Identifier: MIT */
/*
 * trace.c - encoding, decoding and writing traces (format in trace.h).
 *
 * Two writers use this: the library's own (HUGEPERM_TRACE=path records
 * hp_alloc, hp_free, hp_protect, hp_write and hp_discard of every arena) and
 * the preload's (`hugeperm record` records a program's anonymous mmap
 * stream).  Both may run in a preloaded process, or in a signal handler's
 * thread, so the writer takes no malloc and no stdio: events are encoded
 * into a fixed buffer under a spinlock and written through the writer's
 * OS layer (struct hp_os: write_all) when it fills.  The clock is the OS
 * layer's now_ns (monotonic); times are stored as deltas.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

/* ---------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return EINVAL;
		uint8_t c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return EINVAL;
}

/* A difference, small either way, as a small unsigned number. */
static uint64_t zigzag(uint64_t diff)
{
	int64_t d = (int64_t)diff;
	return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static uint64_t unzigzag(uint64_t zz)
{
	return (uint64_t)((int64_t)(zz >> 1) ^ -(int64_t)(zz & 1));
}

size_t hp_trace_encode(struct hp_trace_enc *st, const struct hp_trace_event *ev, uint8_t *buf)
{
	uint64_t zz = zigzag(ev->page - st->page);
	size_t n = 0;
	buf[n++] = (uint8_t)((ev->type & 7) | 8 | (ev->prot & 0xf) << 4);
	n += put_varint(buf + n, ev->flags);
	n += put_varint(buf + n, ev->tid);
	n += put_varint(buf + n, ev->t_ns >= st->t_ns ? ev->t_ns - st->t_ns : 0);
	n += put_varint(buf + n, zz);
	n += put_varint(buf + n, ev->npages);
	if (ev->flags & HP_TF_HINT_AT)
		n += put_varint(buf + n, zigzag(ev->hint - (ev->page << HP_PAGE_SHIFT)));
	st->t_ns = ev->t_ns >= st->t_ns ? ev->t_ns : st->t_ns;
	st->page = ev->page;
	return n;
}

int hp_trace_decode(struct hp_trace_enc *st, const uint8_t **p, const uint8_t *end,
		    struct hp_trace_event *ev)
{
	uint64_t flags, tid, dt, zz, npages;
	if (*p >= end)
		return EINVAL;
	uint8_t b = *(*p)++;
	if (!(b & 8) || (b & 7) == 0 || get_varint(p, end, &flags) || get_varint(p, end, &tid) ||
	    get_varint(p, end, &dt) || get_varint(p, end, &zz) || get_varint(p, end, &npages) ||
	    flags > 0xffff || tid > UINT32_MAX)
		return EINVAL;
	ev->hint = 0;
	if (st->version == 1) {
		flags &= ~(uint64_t)HP_TF_HINT_AT; /* no hint address in version 1 */
	} else if (flags & HP_TF_HINT_AT) {
		uint64_t dhint;
		if (get_varint(p, end, &dhint))
			return EINVAL;
		ev->hint = ((st->page + unzigzag(zz)) << HP_PAGE_SHIFT) + unzigzag(dhint);
	}
	ev->type = b & 7;
	ev->prot = b >> 4;
	ev->flags = (uint16_t)flags;
	ev->tid = (uint32_t)tid;
	ev->t_ns = st->t_ns + dt;
	ev->page = st->page + unzigzag(zz);
	ev->npages = npages;
	st->t_ns = ev->t_ns;
	st->page = ev->page;
	return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << 8 * i;
	return v;
}

void hp_trace_header_encode(const struct hp_trace_header *h, uint8_t out[HP_TRACE_HEADER])
{
	memset(out, 0, HP_TRACE_HEADER);
	memcpy(out, HP_TRACE_MAGIC, 8);
	out[7] = (uint8_t)('0' + h->version % 10); /* "HPTRACE1" for a version 1 header */
	put_u32(out + 8, h->version);
	put_u32(out + 12, h->page_shift);
	put_u64(out + 16, h->start_ns);
	memcpy(out + 24, h->source, sizeof(h->source));
	memcpy(out + 40, h->comm, sizeof(h->comm));
}

int hp_trace_header_decode(const uint8_t *in, size_t n, struct hp_trace_header *h)
{
	if (n < HP_TRACE_HEADER || memcmp(in, HP_TRACE_MAGIC, 7) != 0)
		return EINVAL;
	h->version = (uint32_t)get_le(in + 8, 4);
	h->page_shift = (uint32_t)get_le(in + 12, 4);
	if (h->version < 1 || h->version > HP_TRACE_VERSION || in[7] != '0' + h->version ||
	    h->page_shift != HP_PAGE_SHIFT)
		return ENOTSUP;
	h->start_ns = get_le(in + 16, 8);
	memcpy(h->source, in + 24, sizeof(h->source));
	memcpy(h->comm, in + 40, sizeof(h->comm));
	h->source[sizeof(h->source) - 1] = 0;
	h->comm[sizeof(h->comm) - 1] = 0;
	return 0;
}

const char *hp_trace_type_name(int type)
{
	static const char *const names[HP_EV_NTYPES] = {
		[HP_EV_MAP] = "map",	       [HP_EV_UNMAP] = "unmap",
		[HP_EV_PROTECT] = "protect",   [HP_EV_WRITE] = "write",
		[HP_EV_DISCARD] = "discard",   [HP_EV_REMAP] = "remap",
		[HP_EV_REMAP_TO] = "remap-to",
	};
	return type > 0 && type < HP_EV_NTYPES ? names[type] : "?";
}

void hp_trace_prot_str(int prot, char out[4])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = 0;
}

/* ---------------------------------------------------------------------
 * The writer
 * ------------------------------------------------------------------- */

static void spin_lock(int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

static void spin_unlock(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void flush_locked(struct hp_trace_writer *w)
{
	if (w->on && w->used)
		w->os->write_all(w->fd, w->buf, w->used);
	w->used = 0;
}

int hp_trace_open(struct hp_trace_writer *w, const struct hp_os *os, const char *path,
		  const char *source, const char *comm)
{
	struct hp_trace_header h = {.version = HP_TRACE_VERSION, .page_shift = HP_PAGE_SHIFT};
	uint8_t head[HP_TRACE_HEADER];
	int fd;
	int err = os->create_file(path, &fd);
	if (err)
		return err;
	memset(w, 0, sizeof(*w));
	w->os = os;
	h.start_ns = os->realtime_ns();
	strncpy(h.source, source, sizeof(h.source) - 1);
	strncpy(h.comm, comm ? comm : "", sizeof(h.comm) - 1);
	hp_trace_header_encode(&h, head);
	os->write_all(fd, head, sizeof(head));
	w->nbytes = sizeof(head);
	w->base_ns = os->now_ns();
	w->fd = fd;
	__atomic_store_n(&w->on, 1, __ATOMIC_RELEASE);
	return 0;
}

static void make_event(struct hp_trace_event *ev, int type, uintptr_t addr, size_t size, int prot,
		       int flags, uint32_t tid)
{
	uintptr_t first = addr >> HP_PAGE_SHIFT;
	uintptr_t last = size ? (addr + size - 1) >> HP_PAGE_SHIFT : first - 1;
	*ev = (struct hp_trace_event){
		.page = first,
		.npages = last + 1 - first,
		.tid = tid,
		.type = (uint8_t)type,
		.prot = (uint8_t)(prot & 0xf),
		.flags = (uint16_t)flags,
	};
}

/* Append @n events stamped @now, under the lock: a remap's two stay together. */
static void append(struct hp_trace_writer *w, struct hp_trace_event *ev, int n, uint64_t now)
{
	spin_lock(&w->lock);
	for (int i = 0; i < n; i++) {
		ev[i].t_ns = now > w->base_ns ? now - w->base_ns : 0;
		if (w->used + HP_TRACE_MAX_EVENT > sizeof(w->buf))
			flush_locked(w);
		size_t len = hp_trace_encode(&w->enc, &ev[i], w->buf + w->used);
		w->used += len;
		w->nbytes += len;
		w->nevents++;
	}
	spin_unlock(&w->lock);
}

void hp_trace_record(struct hp_trace_writer *w, int type, uintptr_t addr, size_t size, int prot,
		     int flags)
{
	hp_trace_record_hinted(w, type, addr, size, prot, flags, 0);
}

void hp_trace_record_hinted(struct hp_trace_writer *w, int type, uintptr_t addr, size_t size,
			    int prot, int flags, uintptr_t hint)
{
	struct hp_trace_event ev;
	if (!__atomic_load_n(&w->on, __ATOMIC_ACQUIRE))
		return;
	make_event(&ev, type, addr, size, prot, flags | (hint ? HP_TF_HINT | HP_TF_HINT_AT : 0),
		   w->os->tid());
	ev.hint = hint;
	append(w, &ev, 1, w->os->now_ns());
}

void hp_trace_record_remap(struct hp_trace_writer *w, uintptr_t old, size_t old_size,
			   uintptr_t addr, size_t size)
{
	struct hp_trace_event ev[2];
	if (!__atomic_load_n(&w->on, __ATOMIC_ACQUIRE))
		return;
	uint32_t tid = w->os->tid();
	make_event(&ev[0], HP_EV_REMAP, old, old_size, 0, 0, tid);
	make_event(&ev[1], HP_EV_REMAP_TO, addr, size, 0, 0, tid);
	append(w, ev, 2, w->os->now_ns());
}

void hp_trace_flush(struct hp_trace_writer *w)
{
	spin_lock(&w->lock);
	flush_locked(w);
	spin_unlock(&w->lock);
}

void hp_trace_close(struct hp_trace_writer *w)
{
	spin_lock(&w->lock);
	flush_locked(w);
	if (w->on)
		w->os->close(w->fd);
	w->on = 0;
	spin_unlock(&w->lock);
}

void hp_trace_detach(struct hp_trace_writer *w)
{
	w->used = 0;
	w->on = 0;
	w->lock = 0;
}
