/* SPDX-License-Identifier: MIT */
/*
 * backend.c - where blocks' memory comes from: the choice, the names, and
 * the fall back.  Pure: the probe's findings come in, decisions go out.
 *
 * Best first: hugetlb 1 GiB, hugetlb 2 MiB, THP (anonymous memory with
 * MADV_HUGEPAGE), small pages.  HUGEPERM_BACKEND=auto (or hp_config's
 * HP_BACKEND_AUTO) takes the best the machine offers; a backend asked for
 * by name that the machine cannot honour is an error (ENODEV, with the
 * reason).  Hugetlb blocks change protection only whole, so every arena
 * also has a mutable backend (THP, or small pages without THP) for the
 * blocks whose pages change class.  When an automatically chosen hugetlb
 * pool runs dry at commit time, the arena falls back to its mutable
 * backend for good; one asked for by name never does.
 */
#include "config.h"

#include "internal.h"

/* The one name table, indexed by enum hp_backend. */
static const char *const names[] = {
	[HP_BACKEND_AUTO] = "auto",
	[HP_BACKEND_HUGETLB_1G] = "hugetlb-1g",
	[HP_BACKEND_HUGETLB_2M] = "hugetlb-2m",
	[HP_BACKEND_THP] = "thp",
	[HP_BACKEND_SMALL] = "small",
};
#define NBACKENDS ((int)(sizeof(names) / sizeof(names[0])))

const char *hp_backend_name(int backend)
{
	return hp_name_of(names, NBACKENDS, backend);
}

int hp_backend_parse(const char *name)
{
	return hp_name_find(names, NBACKENDS, name);
}

bool hp_backend_is_hugetlb(int backend)
{
	return backend == HP_BACKEND_HUGETLB_2M || backend == HP_BACKEND_HUGETLB_1G;
}

bool hp_backend_falls_back(int backend, bool automatic, int err)
{
	return automatic && err == ENOMEM && hp_backend_is_hugetlb(backend);
}

/*
 * Choose the backend for @want (enum hp_backend) on a machine like @pr.
 * Returns 0 with *backend and *mutable_backend set, or ENODEV with the
 * reason in @why.
 */
int hp_backend_choose(const struct hp_probe *pr, int want, int *backend, int *mutable_backend,
		      struct hp_buf *why)
{
	*mutable_backend = pr->thp ? HP_BACKEND_THP : HP_BACKEND_SMALL;
	switch (want) {
	case HP_BACKEND_AUTO:
		if (pr->hugetlb_1g_free > 0) {
			*backend = HP_BACKEND_HUGETLB_1G;
			hp_buf_str(why, "free 1 GiB hugetlb pages: ");
			hp_buf_u64(why, (uint64_t)pr->hugetlb_1g_free);
		} else if (pr->hugetlb_2m_free > 0) {
			*backend = HP_BACKEND_HUGETLB_2M;
			hp_buf_str(why, "no free 1 GiB hugetlb pages; free 2 MiB pages: ");
			hp_buf_u64(why, (uint64_t)pr->hugetlb_2m_free);
		} else if (pr->thp) {
			*backend = HP_BACKEND_THP;
			hp_buf_str(why, "no free hugetlb pages; THP mode [");
			hp_buf_str(why, pr->thp_mode);
			hp_buf_str(why, "]");
		} else {
			*backend = HP_BACKEND_SMALL;
			hp_buf_str(why, "no free hugetlb pages and THP is [");
			hp_buf_str(why, pr->thp_mode);
			hp_buf_str(why, "]");
		}
		return 0;
	case HP_BACKEND_HUGETLB_1G:
	case HP_BACKEND_HUGETLB_2M: {
		long free =
			want == HP_BACKEND_HUGETLB_1G ? pr->hugetlb_1g_free : pr->hugetlb_2m_free;
		const char *size = want == HP_BACKEND_HUGETLB_1G ? "1048576kB" : "2048kB";
		*backend = want;
		if (free > 0) {
			hp_buf_str(why, "requested; free pages: ");
			hp_buf_u64(why, (uint64_t)free);
			return 0;
		}
		if (free < 0) {
			hp_buf_str(why, "the kernel has no pool of that size "
					"(/sys/kernel/mm/hugepages/hugepages-");
			hp_buf_str(why, size);
			hp_buf_str(why, " is missing)");
		} else {
			hp_buf_str(why, "its pool has no free pages (raise "
					"/sys/kernel/mm/hugepages/hugepages-");
			hp_buf_str(why, size);
			hp_buf_str(why, "/nr_hugepages)");
		}
		return ENODEV;
	}
	case HP_BACKEND_THP:
		*backend = HP_BACKEND_THP;
		if (pr->thp) {
			hp_buf_str(why, "requested; THP mode [");
			hp_buf_str(why, pr->thp_mode);
			hp_buf_str(why, "]");
			return 0;
		}
		hp_buf_str(why, "THP does not allow madvise "
				"(/sys/kernel/mm/transparent_hugepage/enabled is [");
		hp_buf_str(why, pr->thp_mode);
		hp_buf_str(why, "])");
		return ENODEV;
	default:
		*backend = HP_BACKEND_SMALL;
		hp_buf_str(why, "requested");
		return 0;
	}
}
