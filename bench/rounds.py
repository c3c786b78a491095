#!/usr/bin/env python3
"""rounds.py - one command timed under several environments in shuffled
rounds (a lock file, --lock, held for each round): wall, user and system
time, peak RSS, minor faults, context switches, and the system-wide deltas of the
kernel's THP counters and TLB-shootdown interrupts of each run; then, for
every environment against each reference, the median of the per-round
ratios with a bootstrap 95% interval, and the ratio of the medians.

  rounds.py [-n ROUNDS] [--lock FILE] [--json OUT] [--ref NAME ...] \\
      --env NAME=[VAR=VALUE;...] ... -- CMD ARGS...

`--env plain=` runs CMD as it is; `--env served=LD_PRELOAD=/x.so;A=b` with
those variables (PREFIX=taskset -c 1 puts a command before CMD).  Every
run must print the same.  Issue 17 measured served YJIT with it:

  bench/rounds.py -n 16 --lock /tmp/hp-kernel.lock --ref plain --ref default --env plain= \\
      --env default=LD_PRELOAD=$SO \\
      --env fixed="LD_PRELOAD=$SO;HUGEPERM_PRELOAD_SERVE=exec,areas,reservations,fixed" \\
      -- ruby --yjit tests/e2e/engines/yjit.rb 3000
"""
import argparse
import fcntl
import json
import os
import random
import statistics as st
import subprocess
import sys
import time

VMSTAT = ("thp_fault_alloc", "thp_collapse_alloc", "thp_split_pmd")


def counters():
    d = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k in VMSTAT:
                d[k] = int(v)
    with open("/proc/interrupts") as f:
        for line in f:
            w = line.split()
            if w and w[0] == "TLB:":
                d["tlb_ipi"] = sum(int(x) for x in w[1:] if x.isdigit())
    return d


def run(cmd, env):
    env = dict(env)
    pre = env.pop("PREFIX", "").split()
    c0 = counters()
    t0 = time.monotonic()
    p = subprocess.Popen(pre + cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    c1 = counters()
    if status:
        how = ("exit %d" % os.WEXITSTATUS(status) if os.WIFEXITED(status)
               else "signal %d" % os.WTERMSIG(status))
        sys.exit("rounds.py: %s failed (%s)" % (" ".join(cmd), how))
    rec = dict(wall=wall, user=ru.ru_utime, sys=ru.ru_stime, cpu=ru.ru_utime + ru.ru_stime,
               minflt=ru.ru_minflt, vcsw=ru.ru_nvcsw, ivcsw=ru.ru_nivcsw,
               rss_mib=ru.ru_maxrss / 1024)
    rec.update({k: c1[k] - c0[k] for k in c0})
    return out, rec


def ratio(x, y):
    return x / y if y else float("nan")


def interval(xs, n=2000):
    """Bootstrap 95% interval of the median of @xs."""
    ms = sorted(st.median(random.choices(xs, k=len(xs))) for _ in range(n))
    return ms[int(0.025 * n)], ms[int(0.975 * n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15, help="rounds (default 15)")
    ap.add_argument("--lock", default="", help="a file locked (flock) for each round")
    ap.add_argument("--json", help="append every run to this file, a line each")
    ap.add_argument("--ref", action="append", default=[], help="a NAME to compare with")
    ap.add_argument("--env", action="append", required=True, help="NAME=VAR=VALUE;...")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    if a.n < 1:
        sys.exit("rounds.py: -n %d: at least one round (EINVAL)" % a.n)
    peers = []
    for spec in a.env:
        name, _, body = spec.partition("=")
        if not name or name in [n for n, _ in peers]:
            sys.exit("rounds.py: --env %r: each needs a name of its own (EINVAL)" % spec)
        env = dict(os.environ)
        for kv in filter(None, body.split(";")):
            k, _, v = kv.partition("=")
            env[k] = v
        peers.append((name, env))
    names = [n for n, _ in peers]
    refs = a.ref or names[:1]
    for r in refs:
        if r not in names:
            sys.exit("rounds.py: --ref %s names no --env (EINVAL)" % r)
    res = {n: [] for n in names}
    ref_out = None
    log = open(a.json, "a") if a.json else None
    for r in range(a.n):
        order = list(peers)
        random.shuffle(order)
        with open(a.lock or os.devnull, "a") as lk:
            if a.lock:
                fcntl.flock(lk, fcntl.LOCK_EX)
            for name, env in order:
                out, rec = run(a.cmd, env)
                if ref_out is None:
                    ref_out = out
                elif out != ref_out:
                    sys.exit("rounds.py: %s printed something else:\n%s" % (name, out.decode()))
                res[name].append(rec)
                if log:
                    log.write(json.dumps(dict(rec, round=r, name=name)) + "\n")
                    log.flush()
    keys = ["wall", "user", "sys", "rss_mib", "minflt", "vcsw"] + [k for k in res[names[0]][0]
                                                       if k in VMSTAT or k == "tlb_ipi"]
    w = [max(len(k) + 2, 10) for k in keys]
    print("%-10s" % "median" + "".join("%*s" % (wk, k) for wk, k in zip(w, keys)))
    for n in names:
        print("%-10s" % n + "".join("%*.3f" % (wk, st.median(x[k] for x in res[n]))
                                    for wk, k in zip(w, keys)))
    for ref in refs:
        for n in names:
            if n == ref or n in refs[:refs.index(ref)]:
                continue
            for k in ("wall", "cpu"):
                pr = [ratio(x[k], y[k]) for x, y in zip(res[n], res[ref])]
                lo, hi = interval(pr)
                rom = ratio(st.median(x[k] for x in res[n]), st.median(y[k] for y in res[ref]))
                print("%s/%s %-4s per-round median %.3f [%.3f-%.3f], ratio of medians %.3f"
                      % (n, ref, k, st.median(pr), lo, hi, rom))


if __name__ == "__main__":
    main()
