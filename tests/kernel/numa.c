/* SPDX-License-Identifier: MIT */
/*
 * numa.t - NUMA placement.
 *
 * The policy logic runs on the fake OS with a fake topology of four nodes
 * (this machine has one): HUGEPERM_NUMA=local puts new blocks on the
 * calling CPU's node and serves it from that node's pools, so a free goes
 * back to its node; interleave rotates new blocks over the nodes; N binds
 * every block to node N; with one node no policy is set at all.
 *
 * On the real machine the kernel is asked where the pages are:
 * get_mempolicy(MPOL_F_ADDR) for the policy we set, move_pages(2) for the
 * node of the page.  A node that does not exist is refused with ENODEV.
 */
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_os.h"
#include "hugeperm.h"
#include "tap.h"

#define RW (PROT_READ | PROT_WRITE)
#define RX (PROT_READ | PROT_EXEC)

static uintptr_t alloc_on(struct hp_arena *a, int cpu_node, size_t npages, int prot)
{
	fake.cpu_node = cpu_node;
	return (uintptr_t)hp_pool_alloc(a, npages, prot, prot, false);
}

static int node_of(uintptr_t p)
{
	return hp_block_of(p)->pool_idx;
}

static void fake_topology(void)
{
	fake_reset();
	struct hp_arena *a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_OFF);
	a->nnodes = 4;
	a->alias = true;

	/* local */
	uintptr_t p2 = alloc_on(a, 2, 1, RW);
	ok(p2 && node_of(p2) == 2 && fake.last_commit_node == 2,
	   "local: a thread on node 2 gets a block bound to node 2");
	uintptr_t p1 = alloc_on(a, 1, 1, RW);
	ok(p1 && node_of(p1) == 1 && fake.last_commit_node == 1, "on node 1: a block of node 1");
	uintptr_t q2 = alloc_on(a, 2, 1, RW);
	ok(q2 >> 21 == p2 >> 21, "node 2 again: served from node 2's partial block");
	uintptr_t x3 = alloc_on(a, 3, 4, RX);
	ok(x3 && node_of(x3) == 3 && fake.last_commit_node == 3 && fake.shm_commits == 1,
	   "an executable class on node 3: an aliased block bound to node 3");
	is(hp_pool_free(a, p2), 0, "free on node 2's block");
	is(hp_pool_free(a, q2), 0, "free the other one: the block is empty");
	int commits = fake.commit_calls;
	uintptr_t r1 = alloc_on(a, 1, 1, RW);
	ok(r1 >> 21 == p1 >> 21 && node_of(r1) == 1,
	   "node 1 does not get node 2's empty block: its own partial one");
	uintptr_t r2 = alloc_on(a, 2, 1, RW);
	ok(r2 >> 21 == p2 >> 21 && fake.commit_calls == commits,
	   "node 2 gets its freed block back, no new commit");

	/* interleave: new blocks rotate */
	a->numa = HP_NUMA_INTERLEAVE;
	int seen[5];
	for (int i = 0; i < 5; i++) {
		uintptr_t b = alloc_on(a, 0, HP_BLOCK_PAGES, RW);
		seen[i] = b ? fake.last_commit_node : -9;
	}
	bool rotates = true;
	for (int i = 1; i < 5; i++)
		rotates &= seen[i] == (seen[i - 1] + 1) % 4;
	ok(rotates, "interleave: five new blocks on nodes %d %d %d %d %d", seen[0], seen[1],
	   seen[2], seen[3], seen[4]);

	/* a fixed node */
	a->numa = 3;
	uintptr_t f = alloc_on(a, 0, HP_BLOCK_PAGES, PROT_READ);
	ok(f && node_of(f) == 3 && fake.last_commit_node == 3,
	   "HUGEPERM_NUMA=3: bound to node 3 whatever the CPU");

	/* a span follows the policy too */
	a->numa = HP_NUMA_LOCAL;
	uintptr_t s = alloc_on(a, 1, 3 * HP_BLOCK_PAGES, RW);
	ok(s && node_of(s) == 1 && node_of(s + 2 * HP_BLOCK_SIZE) == 1 &&
		   fake.last_commit_node == 1,
	   "a 3-block span on node 1: every block of node 1");
	fake_arena_free(a);

	/* one node: no policy at all */
	fake_reset();
	a = fake_arena(HP_BACKEND_THP, HP_COLLAPSE_OFF);
	uintptr_t one = alloc_on(a, 0, 1, RW);
	ok(one && fake.last_commit_node == -1, "one node, local: no mbind (the kernel's default)");
	a->numa = 0;
	uintptr_t zero = alloc_on(a, 0, HP_BLOCK_PAGES, RW);
	ok(zero && fake.last_commit_node == 0, "one node, HUGEPERM_NUMA=0: bound, as asked");
	fake_arena_free(a);
}

static void options(void)
{
	long v;
	ok(hp_option_parse(HP_OPT_NUMA, "local", &v) == 0 && v == HP_NUMA_LOCAL, "NUMA=local");
	ok(hp_option_parse(HP_OPT_NUMA, "interleave", &v) == 0 && v == HP_NUMA_INTERLEAVE,
	   "NUMA=interleave");
	ok(hp_option_parse(HP_OPT_NUMA, "3", &v) == 0 && v == 3, "NUMA=3");
	is(hp_option_parse(HP_OPT_NUMA, "-1", &v), EINVAL, "NUMA=-1: EINVAL");
	is(hp_option_parse(HP_OPT_NUMA, "near", &v), EINVAL, "NUMA=near: EINVAL");
	is(hp_option_parse(HP_OPT_NUMA, "4096", &v), EINVAL, "NUMA=4096: EINVAL");
}

/* tap_child's output on one line. */
static int child(void (*fn)(void *), void *arg, const char *env, char *out, size_t n)
{
	int st = tap_child(fn, arg, env, out, n);
	for (char *c = out; *c; c++)
		if (*c == '\n')
			*c = *(c + 1) ? ';' : 0;
	return st;
}

/* In a child: where the kernel put an allocation. */
static void where(void *arg)
{
	int prot = *(int *)arg;
	char *p = hp_alloc(4096, prot);
	if (!p) {
		printf("alloc failed errno=%d\n", errno);
		return;
	}
	if (prot & PROT_WRITE)
		p[0] = 1;
	else /* an aliased block's exec view has no page until touched */
		(void)*(volatile char *)p;
	int mode = -1, status = -1;
	unsigned long mask[16] = {0};
	void *pages[1] = {p};
	long r1 = get_mempolicy(&mode, mask, 1024, p, MPOL_F_ADDR);
	long r2 = move_pages(0, 1, pages, NULL, &status, 0);
	printf("mode=%d mask0=%lu node=%d rc=%ld,%ld\n", mode, mask[0], status, r1, r2);
}

static void real_machine(void)
{
	char out[512], env[64];
	int rw = RW, rx = RX;
	struct hp_probe pr;
	hp_os_linux.probe(&pr);
	if (pr.nnodes != 1) {
		tap_skip(4, "these checks expect a one-node machine");
		return;
	}
	child(where, &rw, NULL, out, sizeof(out));
	ok(strstr(out, "mode=0 ") && strstr(out, "node=0 "),
	   "default (local, one node): no policy set, the page is on node 0: %s", out);
	child(where, &rw, "HUGEPERM_NUMA=0", out, sizeof(out));
	ok(strstr(out, "mode=1 mask0=1 node=0 "),
	   "HUGEPERM_NUMA=0: MPOL_PREFERRED for node 0, the page is on node 0: %s", out);
	child(where, &rx, "HUGEPERM_NUMA=0", out, sizeof(out));
	ok(strstr(out, "mode=1 mask0=1 node=0 "),
	   "an executable (shared memory) block: the same: %s", out);
	snprintf(env, sizeof(env), "HUGEPERM_NUMA=%d", pr.nnodes);
	child(where, &rw, env, out, sizeof(out));
	ok(strstr(out, "no such node") && strstr(out, "errno=19"),
	   "%s on this machine: refused, ENODEV, with the reason: %s", env, out);
}

int main(void)
{
	fake_topology();
	options();
	real_machine();
	return tap_done();
}
