/* SPDX-License-Identifier: MIT */
/*
 * trace.h - the trace format: what a program asked of the memory manager.
 *
 * A trace is a header and a stream of events.  Events say what was asked
 * (map, unmap, protect, write, discard, remap), not what any allocator did
 * with it, so that one trace can be replayed under any policy (sim/).
 * Addresses and lengths are in 4 KiB pages: a policy places pages, and a
 * write of a few bytes dirties its pages.
 *
 * Binary form (version 2), all integers little-endian:
 *   header  "HPTRACE2" | u32 version | u32 page_shift | u64 start_ns (CLOCK_REALTIME)
 *           | char source[16] | char comm[32]                      (72 bytes)
 *   event   u8 type | 8 | prot << 4                  (one byte; bit 3 set)
 *           varint flags | varint tid | varint dt_ns (since the previous event)
 *           | zigzag varint (page - previous event's page) | varint npages
 *           [| zigzag varint (hint - page's address), when flags has HP_TF_HINT_AT]
 * A typical event takes 8-12 bytes.  Version 1 (HPTRACE1) is the same
 * without the hint address: it is read as before (HP_TF_HINT_AT means
 * nothing there), and written by nobody now.  The text form (`hugeperm dump` writes
 * it) is one line per event and is read back by the simulator, so
 * hand-made traces can be written in it:
 *   # hugeperm trace v2 source=... comm=...
 *   <t_us> <tid> <type> 0x<addr> <npages> <prot> [flags]
 * with type map|unmap|protect|write|discard|remap|remap-to, prot in the
 * form "rw-", "r-x", "---", and flags a '|'-list of
 * fixed|noreserve|hint|noreplace|grows, or hint=0x<address> (the hint itself).
 *
 * A remap is two events: `remap` (the old range) then `remap-to` (the new
 * one), as mremap(2) moves the pages and keeps their protections.
 */
#ifndef HP_TRACE_H
#define HP_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct hp_os;

#define HP_TRACE_MAGIC	 "HPTRACE2"
#define HP_TRACE_VERSION 2
#define HP_TRACE_HEADER	 72

enum hp_trace_type {
	HP_EV_MAP = 1,	    /* pages mapped (or allocated) with prot */
	HP_EV_UNMAP = 2,    /* pages unmapped (or freed) */
	HP_EV_PROTECT = 3,  /* pages' protection set to prot */
	HP_EV_WRITE = 4,    /* bytes written into the pages (hp_write: code patched) */
	HP_EV_DISCARD = 5,  /* MADV_DONTNEED: pages read zero after, mapping stays */
	HP_EV_REMAP = 6,    /* mremap: the old range; the next event is REMAP_TO */
	HP_EV_REMAP_TO = 7, /* mremap: the new range */
	HP_EV_NTYPES
};

/* Event flags: what the caller said. */
#define HP_TF_FIXED	0x1  /* MAP_FIXED (or MAP_FIXED_NOREPLACE) */
#define HP_TF_NORESERVE 0x2  /* MAP_NORESERVE: address space taken ahead of use */
#define HP_TF_HINT	0x4  /* an address hint was given */
#define HP_TF_NOREPLACE 0x8  /* MAP_FIXED_NOREPLACE (with HP_TF_FIXED): the address or nothing */
#define HP_TF_HINT_AT	0x10 /* (with HP_TF_HINT) the hint's address is in .hint (version 2) */
#define HP_TF_GROWS                                                                                \
	0x20 /* (with HP_TF_HINT) when it was asked, the page below the hint                       \
	      * was mapped, not by hugeperm (preload/grow.c's probe) */

struct hp_trace_event {
	uint64_t t_ns;	 /* since the trace began */
	uint64_t page;	 /* address >> 12 */
	uint64_t npages; /* length in pages, rounded up */
	uint32_t tid;	 /* kernel thread id of the caller */
	uint8_t type;	 /* enum hp_trace_type */
	uint8_t prot;	 /* PROT_* bits (map, protect) */
	uint16_t flags;	 /* HP_TF_* */
	uint64_t hint;	 /* the hint's address, in bytes, when flags has HP_TF_HINT_AT */
};

struct hp_trace_header {
	uint32_t version;
	uint32_t page_shift;
	uint64_t start_ns; /* wall clock when recording began */
	char source[16];   /* "preload", "library", "synth", "text" */
	char comm[32];	   /* the program's name */
};

/* Encoding state: the previous event's time and page; for decoding, the
 * trace's version too (0: HP_TRACE_VERSION). */
struct hp_trace_enc {
	uint64_t t_ns;
	uint64_t page;
	uint32_t version;
};

/* Encode @ev into @buf (at least HP_TRACE_MAX_EVENT bytes); returns bytes. */
#define HP_TRACE_MAX_EVENT 48
size_t hp_trace_encode(struct hp_trace_enc *st, const struct hp_trace_event *ev, uint8_t *buf);
/* Decode one event from [*p, end); 0, or EINVAL for a malformed event. */
int hp_trace_decode(struct hp_trace_enc *st, const uint8_t **p, const uint8_t *end,
		    struct hp_trace_event *ev);
void hp_trace_header_encode(const struct hp_trace_header *h, uint8_t out[HP_TRACE_HEADER]);
/* 0, or EINVAL (not a trace) or ENOTSUP (another version). */
int hp_trace_header_decode(const uint8_t *in, size_t n, struct hp_trace_header *h);
const char *hp_trace_type_name(int type);
/* "rwx"-style name of @prot into @out[4]. */
void hp_trace_prot_str(int prot, char out[4]);

/*
 * A buffered writer, safe to call from many threads and from the preload
 * (no malloc, no stdio; a spinlock around the buffer; written through its
 * OS layer when the buffer fills and at hp_trace_close()).
 */
struct hp_trace_writer {
	int on;			/* recording (a zeroed writer records nothing) */
	const struct hp_os *os; /* files, clocks and thread ids come from here */
	int fd;			/* the trace file */
	int lock;		/* spinlock */
	uint64_t base_ns;	/* monotonic time of the first event */
	uint64_t nevents;	/* events written */
	uint64_t nbytes;	/* bytes written, header included */
	struct hp_trace_enc enc;
	size_t used;	    /* bytes in buf */
	uint8_t buf[16384]; /* events not yet written */
};

/* Create @path (truncated) through @os and write the header; 0 or errno. */
int hp_trace_open(struct hp_trace_writer *w, const struct hp_os *os, const char *path,
		  const char *source, const char *comm);
/* Record one event now (the time and the caller's thread are taken here). */
void hp_trace_record(struct hp_trace_writer *w, int type, uintptr_t addr, size_t size, int prot,
		     int flags);
/* The same, for a call asked for at @hint (a map's; 0: none; else the
 * event carries it, HP_TF_HINT | HP_TF_HINT_AT). */
void hp_trace_record_hinted(struct hp_trace_writer *w, int type, uintptr_t addr, size_t size,
			    int prot, int flags, uintptr_t hint);
/* Record an mremap: the old range and the new one, back to back. */
void hp_trace_record_remap(struct hp_trace_writer *w, uintptr_t old, size_t old_size,
			   uintptr_t addr, size_t size);
/* Write out what is buffered. */
void hp_trace_flush(struct hp_trace_writer *w);
/* Flush and close; the writer records nothing after. */
void hp_trace_close(struct hp_trace_writer *w);
/* Stop recording without writing (a forked child: the fd is the parent's). */
void hp_trace_detach(struct hp_trace_writer *w);

#endif
