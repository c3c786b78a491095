#!/usr/bin/env python3
# llvm_lli.py - hugeperm-lli against lli on a program of N small functions,
# a module each (tests/e2e/llvm/many.py), as function-at-a-time JITs hand
# them to LLVM: the same output, the code memory (the kernel's smaps: the
# resident bytes of executable mappings that are not a file's: anonymous or
# memfd), and the wall time, runs alternating, medians.  make bench-llvm;
# take the kernel lock (flock /tmp/hp-kernel.lock) while it runs.
#
#   llvm_lli.py HUGEPERM-LLI LLI SRCDIR [N] [RUNS]
# (in a build tree through `libtool --mode=execute`, so that the binary, not
# libtool's wrapper script, is timed.)
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

hplli, lli, srcdir = sys.argv[1:4]
hplli = os.path.abspath(hplli)  # the runs' working directory is the modules'
n = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 7

tmp = tempfile.mkdtemp(prefix="hp-llvm-bench.")
subprocess.run([sys.executable, os.path.join(srcdir, "tests/e2e/llvm/many.py"), str(n), tmp],
               check=True)
extra = ["-extra-module=f%d.ll" % i for i in range(n)]
peers = {
    "lli --jit-kind=orc": [lli, "--jit-kind=orc"] + extra + ["main.ll"],
    "hugeperm-lli": [hplli] + extra + ["main.ll"],
}
# MCJIT (lli's default) links every module in one memory manager, and its
# symbol lookups grow with the modules: minutes for thousands; on request.
if os.environ.get("HP_BENCH_MCJIT"):
    peers["lli (mcjit)"] = [lli] + extra + ["main.ll"]


def code_memory(cmd):
    """Run @cmd until it holds; the executable, non-file mappings' Rss
    (kB), their count, and the kB of them huge-mapped."""
    p = subprocess.Popen(cmd + ["hold"], cwd=tmp, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    pid = None
    for line in p.stdout:
        if line.startswith("code "):
            pid = int(line.split()[-1])
            break
    rss = vmas = huge = 0
    cur = None
    for line in open("/proc/%d/smaps" % pid):
        f = line.split()
        if "-" in f[0] and len(f) >= 5 and ":" in f[3]:
            name = " ".join(f[5:])
            cur = "x" in f[1] and (not name.startswith("/") or name.startswith("/memfd:"))
            vmas += cur
        elif cur and f[0] == "Rss:":
            rss += int(f[1])
        elif cur and f[0] in ("AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:"):
            huge += int(f[1])
    p.communicate("\n")
    return rss, vmas, huge


# LLVM 14's ORC links thousands of objects in nested calls, deeper than the
# default 8 MiB stack (lli --jit-kind=orc crashes at 8192): 512 MiB for all.
resource.setrlimit(resource.RLIMIT_STACK, (512 << 20, resource.getrlimit(resource.RLIMIT_STACK)[1]))

outputs = {k: subprocess.run(c, cwd=tmp, capture_output=True, text=True).stdout
           for k, c in peers.items()}
same = len(set(outputs.values())) == 1
mem = {k: code_memory(c) for k, c in peers.items()}
times = {k: [] for k in peers}
for r in range(runs):
    order = list(peers) if r % 2 == 0 else list(reversed(peers))
    for k in order:
        t0 = time.perf_counter()
        subprocess.run(peers[k], cwd=tmp, stdout=subprocess.DEVNULL, check=True)
        times[k].append(time.perf_counter() - t0)
stats = subprocess.run([hplli, "--stats=json"] + extra + ["main.ll"], cwd=tmp,
                       capture_output=True, text=True).stderr

base = "lli --jit-kind=orc"
print("## hugeperm-lli vs lli: %d functions, a module each (%d runs, alternating)" % (n, runs))
print()
print("same output: %s (%s)" % ("yes" if same else "NO", outputs[base].strip().splitlines()[-1]))
print()
print("| | code memory (exec. anon/memfd Rss) | mappings | huge kB | wall time (median) | vs %s |"
      % base)
print("|---|---|---|---|---|---|")
for k in peers:
    rss, vmas, huge = mem[k]
    med = statistics.median(times[k])
    print("| %s | %d kB (%.2fx) | %d | %d | %.3f s | %.2fx |" % (
        k, rss, rss / mem[base][0], vmas, huge, med, med / statistics.median(times[base])))
print()
try:
    import json
    d = json.loads(stats)
    print("hugeperm-lli: %d code allocations, %d bytes of code on %d pages (%d bytes lost "
          "to rounding); writes: %d alias, %d /proc/self/mem; mprotect calls %d" % (
              d["code_allocs"], d["code_bytes"], d["code_pages"], d["code_lost_bytes"],
              d["writes_alias"], d["writes_procmem"], d["mprotect_calls"]))
except (ValueError, KeyError):
    print("hugeperm-lli --stats=json: unreadable")
print("times (s): " + "; ".join("%s: %s" % (k, " ".join("%.3f" % t for t in v))
                                for k, v in times.items()))
subprocess.run(["rm", "-rf", tmp])
sys.exit(0 if same else 1)
