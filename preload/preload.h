/* SPDX-License-Identifier: MIT */
/* preload.h - what the preload's parts share: modes, counters, the report. */
#ifndef HP_PRELOAD_H
#define HP_PRELOAD_H

#include <stdint.h>

#include <hugeperm.h>

enum hp_preload_flip {
	HP_PRELOAD_FLIP_BLOCK, /* an area has a block of its own; flips take the block */
	HP_PRELOAD_FLIP_EXACT, /* areas share RX blocks; flips split, then collapse */
	HP_PRELOAD_FLIP_RWX,   /* areas are RWX; W<->X flips change nothing */
};

struct hp_preload_counts {
	uint64_t exec;		/* mappings served that were executable when mapped */
	uint64_t areas;		/* ... that were hinted areas (JIT code to be) */
	uint64_t reservations;	/* ... that were PROT_NONE reservations (code ranges) */
	uint64_t resv_merged;	/* reservation blocks given one protection for pages
				 * asked otherwise (guards, headers) */
	uint64_t served_bytes;	/* bytes of those mappings */
	uint64_t passed;	/* mmap calls sent to the kernel */
	uint64_t fallbacks;	/* mappings we meant to serve that hugeperm could not */
	uint64_t arenas;	/* arenas made: one without a hint, one per hint area */
	uint64_t protects;	/* protection changes applied to served memory */
	uint64_t flips_block;	/* ... of them, whole areas done on the whole block */
	uint64_t flips_relaxed; /* ... of them, W<->X flips left RWX (rwx mode) */
	uint64_t unmaps;	/* munmap calls on served memory */
	uint64_t remaps;	/* mremap calls on served memory */
	uint64_t dontneed;	/* MADV_DONTNEED calls on served memory (zeroed) */
	uint64_t fixed_fresh;	/* MAP_FIXED anonymous over served memory */
	uint64_t fixed_given;	/* MAP_FIXED of other kinds over it: pages given away */
	uint64_t given_bytes;	/* allocations kept out of use for good because of that */
	uint64_t live_regions;	/* served ranges mapped now */
	int flip_mode;		/* enum hp_preload_flip */
};

/* preload.c */
void hp_preload_counts(struct hp_preload_counts *out);
int hp_preload_stats(struct hp_stats *sum);

/* report.c */
void hp_stats_add(struct hp_stats *sum, const struct hp_stats *st);
void hp_preload_say(const char *msg);
void hp_preload_report(void);

#endif
