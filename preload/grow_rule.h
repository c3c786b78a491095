/* SPDX-License-Identifier: MIT */
/*
 * grow_rule.h - a hint that continues a mapping: a heap growing, not code.
 * One rule, a pure function, compiled into the preload (grow.c asks the
 * kernel and its region table what is below the hint) and into the
 * simulator (sim/grow_hint.c answers from the address space the trace
 * implies), so that both give the kernel the same requests.
 */
#ifndef HP_GROW_RULE_H
#define HP_GROW_RULE_H

#include <stdbool.h>
#include <stdint.h>

/* The page below a hint, as the rule sees it. */
struct hp_hint_below {
	bool mapped;   /* the page below the hint is mapped */
	bool ours;     /* ... by hugeperm */
	bool area_end; /* ours: a packed code area (pack.c) whose last page it is */
	bool ran;      /* ... made executable once: code, not data */
	bool writable; /* ... and writable now */
};

/*
 * Does a request the placement rule takes for a code area (KIND_AREA),
 * asked for at @hint, go to the kernel, as a heap's next chunk?  Yes when
 * the page below @hint is mapped and not by hugeperm (it continues one of
 * the program's kernel mappings), and, when @packed (block mode with
 * packing: whether an area ran is known), when it is the last page of a
 * packed area that is writable and never ran (data: a heap's chunk served
 * by chance).  No for a hint below 2 pages.
 */
bool hp_hint_grows(uintptr_t hint, const struct hp_hint_below *below, bool packed);

#endif
