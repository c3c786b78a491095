/* SPDX-License-Identifier: MIT */
/*
 * sim.h - the policy simulator: replay a trace (lib/trace.h) under a
 * grouping policy and count what the kernel would do.
 *
 * Pure C, no system calls: a model of 2 MiB blocks, their PMD or PTE
 * mapping and each page's protection (model.c), driven by one of the
 * policies below through one interface (sim_internal.h).  The `hugeperm`
 * policies are the library itself (lib/), running on an OS layer that
 * calls the model instead of the kernel, and placing a JIT's mappings by
 * the preload's own rule (preload/placement.c): placement and collapse
 * are not written twice.
 *
 * What a run reports (struct sim_result): PMD splits and collapses (the
 * kernel's thp_split_pmd and thp_collapse_alloc), blocks holding memory
 * (peak and time-weighted), coverage (live program pages in huge-mapped
 * blocks / live program pages; time-weighted and at the end), and the
 * calls the policy would make (mmap, mprotect, munmap, madvise, copies).
 * "Live" pages are the program's mapped pages that are accessible: a
 * PROT_NONE reservation holds no memory and counts for nothing.
 */
#ifndef HP_SIM_H
#define HP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"

struct sim_trace {
	struct hp_trace_header h;
	struct hp_trace_event *ev;
	size_t n;
};

/*
 * Bounds.  A trace file is at most SIM_TRACE_MAX_SIZE bytes; an event's
 * range ends within the 64-bit address space (page + npages <= SIM_PAGE_END);
 * a replay holds at most SIM_MAX_PAGES mapped pages at once (64 GiB: its
 * memory is a byte per mapped page and a model block per 2 MiB in use).
 */
#define SIM_TRACE_MAX_SIZE (256u << 20)
#define SIM_PAGE_END	   (1ULL << 52)
#define SIM_MAX_PAGES	   (1ULL << 24)

/* Parse a binary trace or its text form.  0, or errno with a message (the
 * line or byte offset) in @err: EINVAL for an empty or malformed trace. */
int sim_trace_parse(const uint8_t *data, size_t size, struct sim_trace *t, char *err,
		    size_t errlen);
void sim_trace_free(struct sim_trace *t);
/* Append one event (growing t->ev); 0 or ENOMEM. */
int sim_trace_add(struct sim_trace *t, const struct hp_trace_event *ev);

/* One point of the coverage curve. */
struct sim_sample {
	uint64_t t_ns;
	double coverage; /* 0..1; 1 when nothing is live */
	uint64_t live_pages;
	uint64_t blocks;
};

/* One 2 MiB block of the model, for the block map. */
#define SIM_UNMAPPED 0xff
struct sim_block_view {
	uint64_t base;	   /* address of the block */
	int state;	   /* enum sim_block_state */
	uint8_t prot[512]; /* per page: PROT_* bits or SIM_UNMAPPED */
	uint64_t used[8];  /* per page: a live program page is here */
};

enum sim_block_state {
	SIM_EMPTY, /* no memory (never touched, or all dropped) */
	SIM_HUGE,  /* one PMD maps it */
	SIM_SMALL, /* 4 KiB PTEs map it */
};

struct sim_result {
	char policy[32];
	uint64_t events;	  /* events replayed */
	uint64_t ignored;	  /* events on pages the trace never mapped */
	uint64_t splits;	  /* PMD splits */
	uint64_t collapses;	  /* mixed -> huge again (MADV_COLLAPSE or merge) */
	uint64_t blocks_peak;	  /* blocks holding memory, at most */
	double blocks_avg;	  /* ..., weighted by time */
	uint64_t live_peak_pages; /* live program pages, at most */
	double coverage_avg;	  /* weighted by time */
	double coverage_end;	  /* after the last event; -1: nothing was live */
	double coverage_min;	  /* lowest after any event with something live */
	uint64_t n_mmap, n_mprotect, n_munmap, n_madvise; /* calls the policy makes */
	uint64_t n_copy;				  /* pack: code copied into the pack */
	uint64_t n_alias;				  /* writes through an alias */
	uint64_t syscalls;				  /* the four calls above, summed */
	struct sim_sample *samples;			  /* with sim_options.series */
	size_t nsamples;
	struct sim_block_view *map; /* with sim_options.map_at: the block map */
	size_t nmap;
	size_t map_event; /* the event after which the map was taken */
	uint64_t n_areas; /* hugeperm policies: hinted code areas served (the preload's "areas") */
	uint64_t n_grown; /* ... hinted areas given to the kernel as a heap's next chunk (grow.c) */
	uint64_t served_blocks_peak; /* ... blocks holding served memory, at most */
	uint64_t served_blocks_end;  /* ... after the last event (the preload's "blocks" at exit) */
};

struct sim_options {
	int collapse_mode;  /* hugeperm policy: HP_COLLAPSE_DEFERRED (default) or _SYNC */
	bool series;	    /* record the coverage curve */
	long map_at;	    /* -1: no map; -2: at the peak of live pages; else an event index */
	uint64_t sample_ns; /* curve resolution (0: every event) */
};

/* The policies, in the order `--policy all` runs them; NULL-terminated. */
extern const char *const sim_policy_names[];
/* One line about @name, or NULL if there is no such policy. */
const char *sim_policy_about(const char *name);

/* Replay @t under @policy.  0, or EINVAL (no such policy, or the trace
 * maps more than SIM_MAX_PAGES at once) or ENOMEM. */
int sim_run(const struct sim_trace *t, const char *policy, const struct sim_options *o,
	    struct sim_result *r);
void sim_result_free(struct sim_result *r);

/* Replay @t for real: the `hugeperm` policy's calls go to @arena, an arena
 * of the real library (hp_arena_create), so the kernel does the work.  The
 * result's model figures stay zero; read the kernel's counters around it.
 * The collapse mode is the arena's. */
struct hp_arena;
int sim_run_arena(const struct sim_trace *t, struct hp_arena *arena, const struct sim_options *o,
		  struct sim_result *r);

/* Generate a JIT-like trace (synth.c). */
struct sim_synth {
	uint64_t seed;
	unsigned threads;    /* threads compiling */
	unsigned units;	     /* code units (functions, traces) compiled */
	unsigned max_pages;  /* largest unit, in pages */
	unsigned area_pages; /* pages of a code area (the mmap unit) */
	unsigned flips;	     /* RW<->RX flip pairs per unit after it is made */
	unsigned lifetime;   /* mean units compiled while one stays alive (0: forever) */
	unsigned data_pct;   /* % of mappings that are data (RW, never executable) */
	uint64_t gap_ns;     /* mean time between units */
};
void sim_synth_defaults(struct sim_synth *s);
/* 0, or ENOMEM. */
int sim_synth(const struct sim_synth *s, struct sim_trace *out);

#endif
