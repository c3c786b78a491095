/* SPDX-License-Identifier: MIT */
/*
 * counters.c - the preload's counters, in one place: the hooks, serving
 * and code ranges count into them; the report (report.c) reads them.  They
 * are counted under the lock, but `passed`, which the mmap hook counts
 * atomically without it.
 */
#include "preload.h"

struct hp_preload_counts preload_counts;
