#!/usr/bin/env python3
"""alternate.py - one command timed plain and under preload libraries, in
alternating runs; medians (and min-max) of wall, user and system time, peak
RSS, and each preload's ratio to plain from the same run.

  alternate.py [-n PAIRS] [--lib NAME=PATH ...] -- CMD ARGS...

Each round runs CMD plain, then under each library (LD_PRELOAD), the order
turning every round, so that a slow spell of a shared machine falls on all
of them alike.  The outputs must agree (the same program, the same answer).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def run(cmd, env):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status:
        sys.exit("alternate.py: %s failed (status %d)" % (" ".join(cmd), status))
    return out, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--lib", action="append", default=[], help="NAME=PATH of a preload")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    peers = [("plain", None)] + [tuple(x.split("=", 1)) for x in a.lib]
    res = {name: [] for name, _ in peers}
    ref = None
    for r in range(a.n):
        order = peers if r % 2 == 0 else peers[::-1]
        for name, lib in order:
            env = dict(os.environ)
            if lib:
                env["LD_PRELOAD"] = lib
            out, *t = run(a.cmd, env)
            if ref is None:
                ref = out
            elif out != ref:
                sys.exit("alternate.py: %s printed something else:\n%s" % (name, out.decode()))
            res[name].append(t)
    base = [statistics.median(x[i] for x in res["plain"]) for i in range(3)]
    print("%-10s %22s %8s %8s %8s %8s %9s" % ("run", "wall s (min-max)", "wall x", "user s",
                                              "sys s", "cpu x", "RSS MiB"))
    for name, _ in peers:
        w = [x[0] for x in res[name]]
        m = [statistics.median(x[i] for x in res[name]) for i in range(4)]
        print("%-10s %7.3f (%5.3f-%5.3f) %7.2fx %8.3f %8.3f %7.2fx %9.1f" %
              (name, m[0], min(w), max(w), m[0] / base[0], m[1], m[2],
               (m[1] + m[2]) / (base[1] + base[2]), m[3] / 1024))


if __name__ == "__main__":
    main()
