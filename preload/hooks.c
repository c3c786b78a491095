/* SPDX-License-Identifier: MIT */
/*
 * hooks.c - libhugeperm-preload.so's entry points: mmap, mmap64, munmap,
 * mprotect, pkey_mprotect, madvise and mremap, in front of the kernel's.
 * What a request is (placement.c's rule) decides whether it is served
 * (serve.c) or passed to the kernel untouched; calls on served memory keep
 * the kernel's semantics on it; the program's mmap stream is recorded for
 * `hugeperm record` whatever was served (options.c).
 *
 * Safety: hooks never call malloc or stdio; a call made while a hook runs
 * (liburcu's registry, the library's own initialisation) goes straight to
 * the kernel (in_hook); the library's os.c makes raw system calls, which
 * never reach these hooks.  A call on served memory made while a hook
 * runs on the same thread can only come from a signal handler that
 * interrupted it: it is refused (nested(), and kernel.c at lock()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "preload.h"

/* Which requests are ours: the kind to serve, or -1. */
static int classify(void *addr, size_t len, int prot, int flags, int fd)
{
	if (!(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE || fd > 0)
		return -1;
	if (flags & (MAP_GROWSDOWN | MAP_STACK | MAP_HUGETLB | MAP_FIXED_NOREPLACE))
		return -1;
	if ((flags & MAP_32BIT) && addr) /* a hint comes first: the kernel's */
		return -1;
	bool area_hint = addr && !((uintptr_t)addr % HP_PLACE_AREA_ALIGN);
	int kind = hp_place_kind(&preload_opt.serve, len, prot, area_hint, flags & MAP_NORESERVE);
	if (kind == KIND_AREA && hint_grows_mapping((uintptr_t)addr))
		return -1; /* a heap's next chunk (grow.c) */
	return kind;
}

/* A call on served memory while this thread is inside the preload: a
 * signal handler that interrupted a hook, whose lock and region table that
 * hook may be in the middle of.  Refused with @err, changing nothing. */
static bool nested(int err)
{
	if (!in_hook)
		return false;
	errno = err;
	return true;
}

/* A MAP_32BIT request with a hint, which the kernel refused (ENOMEM): the
 * 32-bit window is full, most likely of our low arena's chunk (Mono asks
 * for its next code chunk at the end of the last one, which is ours).
 * Served as the same request without a hint would be; else ENOMEM, as the
 * kernel said. */
static void *low_hinted(size_t len, int prot, int flags, int fd)
{
	int kind = classify(NULL, len, prot, flags, fd);
	uintptr_t p = 0;
	if (kind >= 0 && kind != KIND_CODE_RANGE) {
		lock();
		p = low_serve(kind, page_up(len), prot);
		unlock();
	}
	if (!p)
		errno = ENOMEM;
	return p ? (void *)p : MAP_FAILED;
}

static int note_given(void *addr, size_t len, int unused)
{
	(void)unused;
	return given_add((uintptr_t)addr, (uintptr_t)addr + len) ? 0 : -1;
}

/* Is every page of [start, end) the program's to map over: in an
 * allocation it was given, given to a kernel mapping, or not hugeperm's? */
static bool may_map_over(uintptr_t start, uintptr_t end)
{
	for (uintptr_t p = start; p < end; p += PAGE)
		if (hp_owns((void *)p, PAGE) && !alloc_of(p) && !given_has(p))
			return false;
	return true;
}

/* Is there room to note [start, end) as given to a kernel mapping the
 * program puts there (a file, shared memory, a mapping it moves there with
 * mremap)?  One given range per slot at most.  If not, errno is ENOMEM. */
static bool may_give(uintptr_t start, uintptr_t end)
{
	if (given_room() <= ((end - 1) >> 30) - (start >> 30)) {
		errno = ENOMEM;
		return false;
	}
	return true;
}

/* [start, end) now belongs to the kernel's mapping: given, until the
 * program unmaps it.  Every allocation it meets is tainted (never goes back
 * to hugeperm), holes where no region was included. */
static void gave(uintptr_t start, uintptr_t end)
{
	for (uintptr_t p = start; p < end;) {
		const struct region *reg = alloc_of(p);
		if (reg) {
			alloc_set_tainted(reg);
			p = reg->base + reg->alloc_size;
		} else if ((reg = region_at(region_find(p)))) {
			p = reg->base; /* the next allocation starts above @p */
		} else {
			break;
		}
	}
	chunk_parts(start, end, NULL, note_given, 0);
	cut(start, end, CUT_GIVE);
	preload_counts.fixed_given++;
}

/* MAP_FIXED over our address space.  Returns the address, or MAP_FAILED. */
static void *fixed_over_ours(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t start = (uintptr_t)addr, end = start + page_up(len);
	if (!may_map_over(start, end)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	bool anon = (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
		    !(prot & ~PROTS) && !(flags & (MAP_HUGETLB | MAP_GROWSDOWN));
	bool all_ours = true;
	for (uintptr_t p = start; p < end; p += PAGE)
		all_ours &= hp_owns((void *)p, PAGE) && !given_has(p);
	if (!anon || !all_ours) { /* the kernel's mapping */
		if (!may_give(start, end))
			return MAP_FAILED;
		void *p = k_mmap(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED)
			gave(start, end);
		return p;
	}
	/* Fresh zero pages in place, allocation by allocation. */
	for (uintptr_t p = start; p < end;) {
		struct region reg = *alloc_of(p);
		reg.start = p;
		reg.end = reg.base + reg.alloc_size < end ? reg.base + reg.alloc_size : end;
		reg.keyed = 0;
		cut(reg.start, reg.end, CUT_REUSE);
		if (fresh(&reg, prot))
			return MAP_FAILED;
		region_insert(&reg);
		if (reg.kind == KIND_CODE_RANGE && code_range_reconcile(&reg, reg.start, reg.end))
			return MAP_FAILED;
		p = reg.end;
	}
	preload_counts.fixed_fresh++;
	return addr;
}

/* MAP_FIXED over a reservation held for the kernel (reserve.c): adopted
 * first when the mapping is executable, then mapped over as ours; else the
 * kernel's call, under the lock.  The address, or MAP_FAILED. */
static void *fixed_over_held(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end))
		return MAP_FAILED;
	lock();
	void *p = MAP_FAILED;
	if (reserve_before(start, end, prot) == 0)
		p = hp_owns(addr, len) ? fixed_over_ours(addr, len, prot, flags, fd, off)
				       : k_mmap(addr, len, prot, flags, fd, off);
	unlock();
	return p;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!ready())
		return k_mmap(addr, len, prot, flags, fd, off);
	if ((flags & MAP_FIXED) && len && !in_hook && reserve_meets(addr, len)) {
		void *p = fixed_over_held(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED && !hp_owns(addr, len))
			shared_unmapped(p, len);
		return p;
	}
	if ((flags & MAP_FIXED) && len && hp_owns(addr, len)) {
		uintptr_t start, end;
		if (!page_range(addr, len, &start, &end) || nested(ENOMEM))
			return MAP_FAILED;
		lock();
		void *p = fixed_over_ours(addr, len, prot, flags, fd, off);
		unlock();
		return p;
	}
	if (in_hook) /* not over ours: the kernel's, as ever */
		return k_mmap(addr, len, prot, flags, fd, off);
	if (fixed_wanted(addr, len, prot, flags, fd)) { /* fixed.c */
		lock();
		uintptr_t p = fixed_serve((uintptr_t)addr, len, prot, true);
		unlock();
		if (p)
			return (void *)p;
	}
	int kind = (flags & MAP_FIXED) ? -1 : classify(addr, len, prot, flags, fd);
	if ((flags & MAP_32BIT) && kind == KIND_CODE_RANGE)
		kind = -1;
	if (kind < 0) {
		__atomic_fetch_add(&preload_counts.passed, 1, __ATOMIC_RELAXED);
		if ((flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE)
			return shared_mmap(addr, len, prot, flags, fd, off); /* shared.c */
		void *p = k_mmap(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED && (flags & MAP_FIXED))
			shared_unmapped(p, len);
		if (p == MAP_FAILED && errno == ENOMEM && (flags & MAP_32BIT) && addr &&
		    !(flags & MAP_FIXED))
			return low_hinted(len, prot, flags, fd);
		return p;
	}
	lock();
	if (kind == KIND_AREA && hint_after_data((uintptr_t)addr)) {
		unlock(); /* a heap's next chunk after one of ours (grow.c) */
		__atomic_fetch_add(&preload_counts.passed, 1, __ATOMIC_RELAXED);
		return k_mmap(addr, len, prot, flags, fd, off);
	}
	uintptr_t p = flags & MAP_32BIT ? low_serve(kind, page_up(len), prot)
		      : kind == KIND_CODE_RANGE
			      ? reserve_map((uintptr_t)addr, page_up(len))
			      : serve(kind, (uintptr_t)addr, page_up(len), prot, true);
	if (!p && kind != KIND_CODE_RANGE)
		preload_counts.fallbacks++;
	unlock();
	/* hugeperm could not: the kernel serves it as it always did. */
	return p ? (void *)p : k_mmap(addr, len, prot, flags, fd, off);
}

/* While recording, before a hinted anonymous private map: is the page
 * below its hint mapped, not by hugeperm (grow.c's probe)?  HP_TF_GROWS for
 * the trace, which shows the program's anonymous private mappings only:
 * the simulator learns from it what is below a hint it cannot see (a file,
 * a stack, the brk heap). */
static int probe_hint(const void *addr, int flags)
{
	if (!recording.on || in_hook || !addr || (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) ||
	    !(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE)
		return 0;
	return hint_grows_mapping((uintptr_t)addr) ? HP_TF_GROWS : 0;
}

/* Record a mapping the program made: anonymous private ones are ours to
 * trace (@grows: probe_hint's); anything else MAP_FIXED replaced what was
 * there. */
static void *note_mmap(void *p, void *addr, size_t len, int prot, int flags, int grows)
{
	if (p == MAP_FAILED || !recording.on)
		return p;
	bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	if ((flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE) /* with the hint */
		note_hinted(HP_EV_MAP, p, len, prot,
			    (fixed ? HP_TF_FIXED : 0) |
				    (flags & MAP_NORESERVE ? HP_TF_NORESERVE : 0) |
				    (flags & MAP_FIXED_NOREPLACE ? HP_TF_NOREPLACE : 0) | grows,
			    fixed ? NULL : addr);
	else if (fixed)
		note(HP_EV_UNMAP, p, len, 0, 0);
	return p;
}

HOOK void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int grows = probe_hint(addr, flags);
	return note_mmap(do_mmap(addr, len, prot, flags, fd, off), addr, len, prot, flags, grows);
}

HOOK void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int grows = probe_hint(addr, flags);
	return note_mmap(do_mmap(addr, len, prot, flags, fd, off), addr, len, prot, flags, grows);
}

static int k_munmap3(void *addr, size_t len, int unused)
{
	(void)unused;
	return k_munmap(addr, len);
}

static int do_munmap(void *addr, size_t len)
{
	if (ready() && len && !in_hook && !hp_owns(addr, len) && reserve_meets(addr, len)) {
		lock(); /* not while the reservation is adopted */
		int rc = k_munmap(addr, len);
		if (rc == 0)
			reserve_unmapped((uintptr_t)addr, (uintptr_t)addr + page_up(len));
		unlock();
		if (rc == 0)
			shared_unmapped(addr, len);
		return rc;
	}
	if (ready() && len && !in_hook && !hp_owns(addr, len) && shared_pack_meets(addr, len))
		return shared_pack_munmap(addr, len); /* shared_pack.c */
	if (!ready() || !len || !hp_owns(addr, len)) {
		int rc = k_munmap(addr, len);
		if (rc == 0 && set_up())
			shared_unmapped(addr, len);
		return rc;
	}
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end) || nested(ENOMEM))
		return -1;
	lock();
	code_range_unmap_begin(start, end);
	cut(start, end, CUT_FREE);
	code_range_unmap_end(start, end);
	preload_counts.unmaps++;
	/* Kernel mappings in our chunks make way for our reservation; those
	 * outside them are unmapped. */
	int rc = given_unmap(start, end) | chunk_parts(start, end, k_munmap3, NULL, 0);
	unlock();
	return rc;
}

/* What a munmap of memory not ours may meet: a reservation, a packed view
 * or window, a shared view followed or noted (they go with it), and the
 * recording. */
#define UNMAP_MEETS (HOLDS_RESERVATIONS | HOLDS_PACK | HOLDS_SHARED | HOLDS_VIEWS | HOLDS_RECORDING)

HOOK int munmap(void *addr, size_t len)
{
	if (passes(addr, len, UNMAP_MEETS))
		return k_munmap(addr, len);
	int rc = do_munmap(addr, len);
	if (rc == 0)
		note(HP_EV_UNMAP, addr, len, 0, 0);
	return rc;
}

static int cur_pkey; /* for kernel_parts, under the lock */

static int k_pkey_parts(void *addr, size_t len, int prot)
{
	return cur_pkey >= 0 ? k_pkey_mprotect(addr, len, prot, cur_pkey)
			     : k_mprotect(addr, len, prot);
}

/* The region that is exactly [start, end), if it is not a code range's:
 * the usual call (a JIT flipping its area).  Such a range is covered, its
 * ends are region boundaries already, and no page of it is the kernel's
 * (given ranges hold no region), so only the region itself changes. */
static struct region *exactly_one(uintptr_t start, uintptr_t end)
{
	struct region *reg = region_at(region_find(start));
	if (!reg || reg->start != start || reg->end != end || reg->kind == KIND_CODE_RANGE)
		return NULL;
	return reg;
}

/* Would the kernel take protection key @pkey (allocated by the program)?
 * Asked of a page of our own, PROT_NONE, before any of the program's pages
 * change (their protection first, then the key: a key refused after the
 * protection changed would leave a block of its own protected as asked).
 * true, or false with errno (EINVAL). */
static bool key_usable(int pkey)
{
	static void *probe;
	if (!probe) {
		void *p = k_mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return false;
		probe = p;
	}
	return k_pkey_mprotect(probe, PAGE, PROT_NONE, pkey) == 0;
}

/* mprotect or pkey_mprotect (@pkey >= 0) over a range that touches ours. */
static int do_protect(void *addr, size_t len, int prot, int pkey)
{
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end) || nested(ENOMEM))
		return -1;
	struct region *reg;
	int rc = -1;
	lock();
	if (pkey < 0 && (rc = code_range_flip(start, end, prot)) <= 0)
		goto out; /* YJIT's flips: code_range_flip.c */
	rc = -1;
	struct region *one = exactly_one(start, end);
	if (!one && !regions_cover(start, end)) {
		errno = ENOMEM; /* as mprotect(2) says of unmapped pages */
		goto out;
	}
	if (prot & ~PROTS) {
		errno = EINVAL;
		goto out;
	}
	if (pkey >= 0 && !key_usable(pkey))
		goto out;      /* EINVAL, as the kernel says it, before anything changed */
	if (one && pkey < 0) { /* one mprotect and a few stores */
		rc = region_protect(one, alloc_within(one, start, end), prot);
		if (rc == 0)
			one->prot = (unsigned char)prot;
		goto out;
	}
	if (!region_split_at(start) || !region_split_at(end)) {
		errno = ENOMEM;
		goto out;
	}
	/* Code ranges: recorded here, applied by reconcile, in the blocks of
	 * the regions whose protection changed only (YJIT makes its 128 MiB
	 * half RX after each piece of code: one page of it was RW). */
	struct code_range_changed changed = {0};
	for (size_t i = region_find(start); (reg = region_at(i)) && reg->start < end; i++) {
		if (reg->kind == KIND_CODE_RANGE) {
			bool keyed = reg->keyed || pkey >= 0;
			if (reg->prot != prot || reg->keyed != keyed)
				code_range_changed_note(&changed, reg);
			region_set_prot(reg, prot);
			reg->keyed = keyed;
			continue;
		}
		if (region_protect(reg, alloc_within(reg, start, end), prot))
			goto out;
		reg->prot = (unsigned char)prot;
		if (pkey >= 0) {
			if (k_pkey_mprotect((void *)reg->start, reg->end - reg->start, prot, pkey))
				goto out;
			alloc_set_keyed(reg);
		}
	}
	if (code_range_changed_apply(&changed))
		goto out;
	for (size_t i = region_find(start); pkey >= 0 && (reg = region_at(i)) && reg->start < end;
	     i++)
		if (reg->kind == KIND_CODE_RANGE && /* keyed blocks are exact: the key goes on */
		    k_pkey_mprotect((void *)reg->start, reg->end - reg->start, prot, pkey))
			goto out;
	cur_pkey = pkey;
	rc = kernel_parts(start, end, k_pkey_parts, prot);
out:
	unlock();
	return rc;
}

static int note_rc(int rc, int type, void *addr, size_t len, int prot)
{
	if (rc == 0)
		note(type, addr, len, prot, 0);
	return rc;
}

/* mprotect or pkey_mprotect (@pkey >= 0) on a reservation held for the
 * kernel (reserve.c): adopted first when @prot makes code, and then
 * *@ours is set for the caller to go on as for served memory; else the
 * kernel's call, under the lock. */
static int protect_held(void *addr, size_t len, int prot, int pkey, bool *ours)
{
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end))
		return -1;
	lock();
	int rc = reserve_before(start, end, prot);
	*ours = rc == 0 && hp_owns(addr, len);
	if (rc == 0 && !*ours)
		rc = pkey >= 0 ? k_pkey_mprotect(addr, len, prot, pkey)
			       : k_mprotect(addr, len, prot);
	unlock();
	return rc;
}

/* What an mprotect of memory not ours may meet: a reservation (adopted
 * when it is made code), a shared view (its code followed), and the
 * recording. */
#define PROTECT_MEETS (HOLDS_RESERVATIONS | HOLDS_SHARED | HOLDS_RECORDING)

HOOK int mprotect(void *addr, size_t len, int prot)
{
	if (passes(addr, len, PROTECT_MEETS))
		return k_mprotect(addr, len, prot);
	bool ours = false;
	if (ready() && len && !in_hook && reserve_meets(addr, len)) {
		int rc = protect_held(addr, len, prot, -1, &ours);
		if (!ours)
			return note_rc(rc, HP_EV_PROTECT, addr, len, prot);
	}
	if (!ready() || !len || !hp_owns(addr, len)) {
		int rc = k_mprotect(addr, len, prot);
		if (rc == 0 && set_up())
			shared_protected(addr, len, prot);
		return note_rc(rc, HP_EV_PROTECT, addr, len, prot);
	}
	return note_rc(do_protect(addr, len, prot, -1), HP_EV_PROTECT, addr, len, prot);
}

HOOK int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	if (passes(addr, len, PROTECT_MEETS))
		return k_pkey_mprotect(addr, len, prot, pkey);
	bool ours = false;
	if (ready() && len && !in_hook && reserve_meets(addr, len)) {
		int rc = protect_held(addr, len, prot, pkey, &ours);
		if (!ours)
			return note_rc(rc, HP_EV_PROTECT, addr, len, prot);
	}
	if (!ready() || !len || !hp_owns(addr, len))
		return note_rc(k_pkey_mprotect(addr, len, prot, pkey), HP_EV_PROTECT, addr, len,
			       prot);
	return note_rc(do_protect(addr, len, prot, pkey), HP_EV_PROTECT, addr, len, prot);
}

static int k_madvise3(void *addr, size_t len, int advice)
{
	return k_madvise(addr, len, advice);
}

static int do_madvise(void *addr, size_t len, int advice)
{
	if (!ready() || !len || !hp_owns(addr, len))
		return k_madvise(addr, len, advice);
	uintptr_t start, end;
	if (!page_range(addr, len, &start, &end) || nested(EAGAIN))
		return -1;
	struct region *reg;
	int rc = 0;
	lock();
	switch (advice) {
	case MADV_DONTNEED:
		if (!regions_cover(start, end)) {
			errno = ENOMEM;
			rc = -1;
			break;
		}
		/* Code ranges first: their PROT_NONE pages are zeroed when their
		 * block is dropped or they are opened (code_range.c). */
		if (code_range_discard(start, end, false)) {
			errno = ENOMEM;
			rc = -1;
		}
		for (size_t i = region_find(start); (reg = region_at(i)) && reg->start < end; i++) {
			uintptr_t s = reg->start > start ? reg->start : start;
			uintptr_t e = reg->end < end ? reg->end : end;
			if (reg->kind != KIND_CODE_RANGE)
				zero(reg, s, e - s);
		}
		preload_counts.dontneed++;
		break;
	case MADV_FREE: /* the pages may keep their contents: allowed */
		if (!regions_cover(start, end)) {
			errno = ENOMEM;
			rc = -1;
		} else if (code_range_discard(start, end, true)) {
			/* or read zero: a code range's PROT_NONE ones do, so
			 * that their block can be dropped as with DONTNEED */
			errno = ENOMEM;
			rc = -1;
		}
		break;
	case MADV_NORMAL: /* access hints: nothing to do for resident memory */
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_DONTFORK: /* a child gets a copy: harmless */
	case MADV_DOFORK:
	case MADV_HUGEPAGE: /* hugeperm decides */
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_MERGEABLE:
	case MADV_UNMERGEABLE:
	case 20: /* MADV_COLD */
	case 21: /* MADV_PAGEOUT */
	case 22: /* MADV_POPULATE_READ: our pages are populated */
	case 23: /* MADV_POPULATE_WRITE */
	case 25: /* MADV_COLLAPSE */
		if (!regions_cover(start, end)) {
			errno = ENOMEM;
			rc = -1;
		}
		break;
	default: /* WIPEONFORK, REMOVE, guards...: not for served memory */
		errno = EINVAL;
		rc = -1;
	}
	if (rc == 0)
		rc = kernel_parts(start, end, k_madvise3, advice);
	unlock();
	return rc;
}

HOOK int madvise(void *addr, size_t len, int advice)
{
	int rc = do_madvise(addr, len, advice);
	if (rc == 0 && (advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE))
		note(HP_EV_DISCARD, addr, len, 0, 0);
	return rc;
}

/* mremap of a served range: shrink in place, grow in place, or move. */
static void *remap_ours(uintptr_t old, size_t oldlen, size_t newlen, int flags)
{
	/* [old, old+oldlen) must be mapped, in one allocation. */
	size_t i = region_find(old), last = i;
	const struct region *first = region_at(i), *r;
	uintptr_t at = old;
	while ((r = region_at(last)) && r->start == at && r->base == first->base &&
	       at < old + oldlen) {
		at = r->end;
		last++;
	}
	if (at < old + oldlen) {
		errno = EFAULT;
		return MAP_FAILED;
	}
	i = last - 1; /* the record that ends the range */
	struct region reg = *region_at(i);
	if (newlen <= oldlen) {
		cut(old + newlen, old + oldlen, CUT_FREE);
		preload_counts.remaps++;
		return (void *)old;
	}
	uintptr_t grow_end = old + newlen;
	/* The pages up to grow_end are free when no region follows before it:
	 * a region there would be in this allocation (pages cut earlier). */
	const struct region *next = region_at(i + 1);
	bool room = old + oldlen == reg.end && grow_end <= reg.base + reg.alloc_size &&
		    (!next || next->start >= grow_end);
	if (room && !reg.tainted) {
		struct region more = reg;
		more.start = reg.end;
		more.end = grow_end;
		if (fresh(&more, reg.prot))
			return MAP_FAILED;
		region_at(i)->end = grow_end;
		if (reg.kind == KIND_CODE_RANGE &&
		    code_range_reconcile(region_at(i), more.start, grow_end))
			return MAP_FAILED;
		preload_counts.remaps++;
		return (void *)old;
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (!(reg.prot & PROT_READ)) {
		errno = ENOMEM; /* cannot copy pages we may not read */
		return MAP_FAILED;
	}
	uintptr_t to = serve(reg.kind, arena_near(reg.arena), newlen, reg.prot, false);
	if (!to)
		return MAP_FAILED;
	struct region *moved = region_at(region_find(to));
	hp_arena_write(arena_at(moved->arena), (void *)to, (void *)old, oldlen);
	moved->ran |= reg.ran; /* its code moved with it */
	cut(old, old + oldlen, CUT_FREE);
	preload_counts.remaps++;
	return (void *)to;
}

/* mremap(MREMAP_FIXED) of a mapping not ours to @to, some of which is ours:
 * the pages there go to the moved mapping, given, as a MAP_FIXED file's
 * would (fixed_over_ours).  Pages of ours not the program's to map over
 * (not in an allocation of its) refuse it with ENOMEM, as MAP_FIXED does. */
static void *remap_into_ours(void *old, size_t oldlen, size_t newlen, int flags, void *to)
{
	uintptr_t start, end;
	if (!page_range(to, newlen, &start, &end) || nested(ENOMEM))
		return MAP_FAILED;
	bool held = reserve_meets(old, oldlen ? oldlen : 1);
	void *p = MAP_FAILED;
	lock();
	if (!may_map_over(start, end))
		errno = ENOMEM;
	else if (may_give(start, end) &&
		 (p = k_mremap(old, oldlen, newlen, flags, to)) != MAP_FAILED) {
		gave(start, end);
		if (held)
			reserve_unmapped((uintptr_t)old, (uintptr_t)old + page_up(oldlen));
	}
	unlock();
	if (p != MAP_FAILED) {
		shared_pack_moving(old, oldlen);
		shared_unmapped(old, oldlen);
	}
	return p;
}

static void *do_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *to)
{
	if (ready() && !in_hook && (flags & MREMAP_FIXED) && newlen && hp_owns(to, newlen) &&
	    !hp_owns(old, oldlen ? oldlen : 1))
		return remap_into_ours(old, oldlen, newlen, flags, to);
	if (!ready() || !hp_owns(old, oldlen ? oldlen : 1)) {
		bool held = ready() && !in_hook &&
			    (reserve_meets(old, oldlen ? oldlen : 1) ||
			     ((flags & MREMAP_FIXED) && reserve_meets(to, newlen)));
		if (held) /* not while the reservation is adopted */
			lock();
		void *p = k_mremap(old, oldlen, newlen, flags, to);
		if (p != MAP_FAILED && held) { /* moved or resized: the kernel's for good */
			reserve_unmapped((uintptr_t)old, (uintptr_t)old + page_up(oldlen));
			reserve_unmapped((uintptr_t)p, (uintptr_t)p + page_up(newlen));
		}
		if (held)
			unlock();
		if (p != MAP_FAILED) { /* moved or resized: shared.c lets the view go */
			shared_pack_moving(old, oldlen);
			shared_unmapped(old, oldlen);
			shared_unmapped(p, newlen);
		}
		return p;
	}
	if (nested(ENOMEM))
		return MAP_FAILED;
	if ((uintptr_t)old % PAGE || !oldlen || !newlen ||
	    (flags & ~MREMAP_MAYMOVE)) { /* FIXED, DONTUNMAP: not for served memory */
		errno = EINVAL;
		return MAP_FAILED;
	}
	lock();
	void *p = remap_ours((uintptr_t)old, page_up(oldlen), page_up(newlen), flags);
	unlock();
	return p;
}

HOOK void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	void *to = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		to = va_arg(ap, void *);
		va_end(ap);
	}
	void *p = do_mremap(old, oldlen, newlen, flags, to);
	if (p != MAP_FAILED && recording.on && !in_hook) {
		in_hook++; /* the writer's lock is held: _exit must not wait for it */
		hp_trace_record_remap(&recording, (uintptr_t)old, oldlen, (uintptr_t)p, newlen);
		in_hook--;
	}
	return p;
}
