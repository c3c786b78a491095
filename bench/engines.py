#!/usr/bin/env python3
"""engines.py - real JIT engines, unmodified, with and without the preload
(make bench-engines).

Each workload in WORKLOADS runs plain and with libhugeperm-preload.so in
LD_PRELOAD, alternating: a first untimed pair (the warm-up: page cache,
generated inputs) samples /proc/PID/smaps every 20 ms for the engine's
executable anonymous memory, how much of it the kernel maps huge; then
ROUNDS timed pairs, plain first in odd rounds and preload first in even ones.
Every run's output must match the workload's expected output and be the same
both ways: a benchmark of a wrong answer is worthless.  For each workload:
the median wall time both ways and their ratio, min-max, each pair's own
ratio (their median and an order-statistics interval for it), the median CPU
time (user+sys) ratio, peak RSS both ways (GNU time's %M), the code the
engine had mapped executable at the peak sample, the share of it huge-mapped
under the preload, and thp_split_pmd during the runs (system-wide).
An engine that is not installed is a "not installed" row.

Usage: engines.py [--rounds N] [--only NAME,...] [--quick] [--lock FILE]
                  [--record FILE.md --srcdir DIR] BUILD_DIR SRC_DIR OUT_DIR
--quick runs each workload's small variant (the smoke test in make check);
--lock FILE holds flock(FILE) around each pair of runs only, so that a long
benchmark leaves gaps for others sharing the machine; --record writes the
table into FILE.md (and the README's excerpt) between the bench-engines
markers.  Adding a workload is one entry in WORKLOADS (bench/README.md).
"""
import argparse
import fcntl
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "engines")]
import gen  # noqa: E402
from report import commit, loadavg, machine, utc_now  # noqa: E402 (bench/report.py)

# One dict a workload.  name: the row's name; engine: the programs it needs
# (absent: a "not installed" row); argv / quick: the command and its small
# variant ({bench} is bench/engines/, {tests} tests/e2e/engines/, {work} a
# scratch directory); expect: a regular expression the whole stdout must
# match; prepare: a function of the scratch directory run once, untimed
# (generated inputs, javac); preload_env: settings for the preloaded runs
# only (HUGEPERM_PRELOAD_FLIP=...); what: one line for the table's key.
# Issue 16's LuaJIT workload (3,000 generated hot loops, 15 rounds), under
# each of the preload's flip modes.
LUAJIT_FLIPS = dict(engine=["luajit"],
                    argv=["luajit", "{tests}/jit.lua", "3000", "run", "15", "60"],
                    quick=["luajit", "{tests}/jit.lua", "300", "run", "2", "60"],
                    expect=r"result (82740284490|113194624)\n")
# Ruby's YJIT workload, its code range the kernel's (the default) or served.
RUBY_YJIT = dict(engine=["ruby"],
                 argv=["ruby", "--yjit", "{tests}/yjit.rb", "3000"],
                 quick=["ruby", "--yjit", "{tests}/yjit.rb", "300"],
                 expect=r"(723445056|7530128)\n19999900000\n")
# HotSpot's iTLB workload (gen.java_chain): C1 only, compiling a method after
# a few dozen calls, so that the walk, not the interpreter, fills the run; a
# 240 MiB code cache, as tiered compilation has by default (C1 alone gets
# 48 MiB, under the preload's 128 MiB floor for a code range: the kernel's).
JAVA_CHAIN = dict(engine=["java", "javac"],
                  argv=["java", "-XX:TieredStopAtLevel=1", "-XX:ReservedCodeCacheSize=240m",
                        "-XX:Tier3InvocationThreshold=20", "-XX:Tier3MinInvocationThreshold=10",
                        "-XX:Tier3CompileThreshold=40", "-XX:Tier0InvokeNotifyFreqLog=3",
                        "-cp", "{work}", "Chain"])
WORKLOADS = [
    dict(LUAJIT_FLIPS, name="luajit-flips",
         what="3,000 generated hot loops x 15 rounds: trace flushes, a protection "
              "change per trace (issue 16's workload)"),
    dict(LUAJIT_FLIPS, name="luajit-flips-exact", preload_env={"HUGEPERM_PRELOAD_FLIP": "exact"},
         kind="opt-in",
         what="luajit-flips with HUGEPERM_PRELOAD_FLIP=exact: areas share blocks, "
              "flips are applied to the pages as asked (split blocks are collapsed once quiet)"),
    dict(LUAJIT_FLIPS, name="luajit-flips-rwx", preload_env={"HUGEPERM_PRELOAD_FLIP": "rwx"},
         kind="opt-in",
         what="luajit-flips with HUGEPERM_PRELOAD_FLIP=rwx: flips between RW and RX "
              "left undone (the code stays writable)"),
    dict(name="luajit-long", engine=["luajit"],
         argv=["luajit", "{tests}/jit.lua", "600", "run", "24", "20000"],
         quick=["luajit", "{tests}/jit.lua", "100", "run", "1", "2000"],
         expect=r"result (2123819650200|303414190)\n",
         what="600 hot loops x 24 rounds x 20,000 iterations: many traces, long runs"),
    dict(name="luajit-compute", engine=["luajit"],
         argv=["luajit", "{bench}/lua_compute.lua", "4000"],
         quick=["luajit", "{bench}/lua_compute.lua", "100"],
         expect=r"result 1\.2742\d+\n",
         what="spectral norm, N = 4,000: a few traces, seconds of compute"),
    dict(name="luajit-bigcode", engine=["luajit"],
         argv=["luajit", "-Omaxtrace=65000", "-Omaxmcode=262144", "{bench}/lua_bigcode.lua",
               "8000", "40", "1000000", "4"],
         quick=["luajit", "-Omaxtrace=65000", "-Omaxmcode=262144", "{bench}/lua_bigcode.lua",
                "200", "10", "2000", "4"],
         expect=r"result (726190882|327152252)\n",
         what="8,000 distinct loops (~25 MiB of trace code) run in a pseudo-random "
              "order: the iTLB case"),
    dict(name="pcre2grep", engine=["pcre2grep"],
         argv=["pcre2grep", "-c", "-f", "{work}/patterns.txt", "{work}/subject.txt"],
         quick=["pcre2grep", "-c", "-f", "{work}/patterns.txt", "{work}/subject.txt"],
         prepare=lambda w, quick: gen.pcre2(w, 400, 2000 if quick else 40000),
         expect=r"(27172|1363)\n",
         what="400 patterns, each JIT-compiled, over 40,000 lines"),
    dict(name="node-functions", engine=["node"],
         argv=["node", "{bench}/node_functions.js", "3000", "150"],
         quick=["node", "{bench}/node_functions.js", "300", "20"],
         expect=r"result (65913893250|87803360)\n",
         what="3,000 functions made with new Function, each called 150 times"),
    dict(name="node-bigcode", engine=["node"],
         argv=["node", "--always-sparkplug", "{bench}/node_bigcode.js", "8000", "40",
               "3000000"],
         quick=["node", "--always-sparkplug", "{bench}/node_bigcode.js", "200", "10", "2000"],
         expect=r"result (142700947|29756151)\n",
         what="8,000 distinct functions (~20 MiB of Sparkplug code) called in a "
              "pseudo-random order: the iTLB case for V8"),
    dict(name="java-methods", engine=["java", "javac"],
         argv=["java", "-cp", "{work}", "Many", "3000000"],
         quick=["java", "-cp", "{work}", "Many", "1000"],
         prepare=lambda w, quick: gen.java(w, 300 if quick else 3000),
         expect=r"result (-1442349653996848122|347544790745674)\n",
         what="3,000 generated methods called 3,000,000 times in a pseudo-random "
              "order: C1 and C2 fill the code cache (default size)"),
    dict(JAVA_CHAIN, name="java-bigcode",
         argv=JAVA_CHAIN["argv"] + ["400000"], quick=JAVA_CHAIN["argv"] + ["2000"],
         prepare=lambda w, quick: gen.java_chain(w, 300 if quick else 12000),
         expect=r"result (3555705143869697552|2693348471244629032)\n",
         what="12,000 generated methods (~19 MiB of C1 code, a few hot cache lines in each) "
              "calling one another in a data-dependent random walk, 40 million calls: the "
              "iTLB case for HotSpot"),
    dict(name="erlang-modules", engine=["erl", "erlc"],
         argv=["erl", "-noshell", "-pa", "{work}", "-run", "jit", "main", "100"],
         quick=["erl", "-noshell", "-pa", "{work}", "-run", "jit", "main", "10"],
         prepare=lambda w, quick: subprocess.run(
             ["erlc", "-o", w, os.path.join(HERE, "..", "tests", "e2e", "engines", "jit.erl")],
             check=True),
         expect=r"modules (100 sum 448000|10 sum 26800)\n",
         what="100 generated modules of 40 functions compiled and called: BEAM's JIT "
              "writes through a memfd's RW view and runs the RX view (shared memory)"),
    dict(name="php-tracing", engine=["php"],
         argv=["php", "-d", "opcache.enable_cli=1", "-d", "opcache.jit_buffer_size=64M",
               "-d", "opcache.jit=tracing", "{tests}/jit.php", "2000"],
         quick=["php", "-d", "opcache.enable_cli=1", "-d", "opcache.jit_buffer_size=64M",
                "-d", "opcache.jit=tracing", "{tests}/jit.php", "200"],
         expect=r"functions (2000 sum 500085384120|200 sum 4962467320)\n",
         what="2,000 functions hot enough for opcache's tracing JIT (its buffer is in "
              "shared anonymous memory)"),
    dict(RUBY_YJIT, name="ruby-yjit",
         what="3,000 generated methods compiled by YJIT into its 256 MiB "
              "MAP_FIXED_NOREPLACE code range (the kernel's by default)"),
    dict(RUBY_YJIT, name="ruby-yjit-fixed", kind="opt-in",
         preload_env={"HUGEPERM_PRELOAD_SERVE": "exec,areas,reservations,fixed"},
         what="ruby-yjit with its code range served (opt-in: --serve ...,fixed): "
              "a block YJIT writes page by page is collapsed once quiet, its fill "
              "stays on small pages"),
    dict(RUBY_YJIT, name="ruby-yjit-aa", control=True, kind="A/A",
         what="ruby-yjit plain against plain, both sides without the preload and with "
              "environments of one size: how far the ratio of two identical runs strays "
              "here (Ruby's time moves with its environment's size alone)"),
    dict(name="mono-methods", engine=["mono", "mcs"],
         argv=["mono", "{work}/Jit.exe"],
         quick=["mono", "{work}/Jit.exe"],
         prepare=lambda w, quick: subprocess.run(
             ["mcs", "-out:" + os.path.join(w, "Jit.exe"),
              os.path.join(HERE, "..", "tests", "e2e", "engines", "Jit.cs")],
             check=True, stdout=subprocess.DEVNULL),
         expect=r"696147960\n",
         what="C# methods JIT-compiled by Mono into MAP_32BIT code chunks"),
]

# GNU time measures peak RSS from a small parent (see Runner.run); without
# it, wait4's ru_maxrss, which counts this Python process's RSS at the fork.
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
MARK_BEGIN = "<!-- bench-engines: begin"
MARK_END = "<!-- bench-engines: end -->"


def vmstat(key):
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k == key:
                return int(v)
    return 0


def tree(pid):
    """PID and its descendants, from /proc/*/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


# Executable mappings with these names are a JIT's code too: memfds (the preload's
# aliases, Erlang's and sljit's dual mappings), shared anonymous memory (PHP's opcache
# JIT buffer shows as "/dev/zero (deleted)"), SysV shared memory.
SHARED_CODE = ("/memfd:", "[anon:", "/dev/zero", "/SYSV")


def code_kb(pid):
    """Executable anonymous or shared-memory code of PID's tree (see SHARED_CODE;
    not [vdso] or a file), resident KiB and of them huge-mapped
    (AnonHugePages, ShmemPmdMapped, FilePmdMapped, hugetlb)."""
    rss = huge = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/smaps" % p) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        code, seen = False, 0
        for line in lines:
            f = line.split()
            if not f:
                continue
            if not f[0].endswith(":"):
                # smaps is read in pieces: a VMA split or merged between two
                # (YJIT flips half its 256 MiB range at once) can come again,
                # overlapping what was read; count each address once.
                lo, hi = (int(x, 16) for x in f[0].split("-"))
                path = f[5] if len(f) > 5 else ""
                code = lo >= seen and "x" in f[1] and (path == "" or path.startswith(SHARED_CODE))
                seen = max(seen, hi)
            elif code and f[0] == "Rss:":
                rss += int(f[1])
            elif code and f[0] in ("AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:"):
                huge += int(f[1])
            elif code and f[0] in ("Private_Hugetlb:", "Shared_Hugetlb:"):
                rss += int(f[1])
                huge += int(f[1])
    return rss, huge


class Runner:
    def __init__(self, build, lock):
        self.preload = os.path.join(os.path.abspath(build), ".libs", "libhugeperm-preload.so")
        self.lock = lock

    def env_args(self, preload, preload_env=None, stats=None):
        """The VAR=VALUE arguments env(1) gives the engine.  Preloaded:
        LD_PRELOAD (ours before any the caller set), the preload's settings,
        HUGEPERM_STATS_DIR for a sampled run.  Plain: nothing loaded, and an
        environment of the same size, in variables and bytes, so that the
        process's stack starts at the same offset both ways (the size of
        the environment alone moved Ruby's time by up to 5-7% here:
        bench/README.md) and the ratio measures the preload.  Each variable
        the preloaded run adds is a HUGEPERM_BENCH_PADn= here; the bytes
        left over are blanks in LD_PRELOAD, which ld.so skips."""
        base = os.environ
        old = base.get("LD_PRELOAD")
        sets = [("LD_PRELOAD", " ".join(filter(None, [self.preload, old])))]
        if stats:
            sets.append(("HUGEPERM_STATS_DIR", stats))
        sets += sorted((preload_env or {}).items())
        if preload:
            return ["%s=%s" % kv for kv in sets]

        def size(env):
            return sum(len(k) + len(v) + 2 for k, v in env.items())
        pre = dict(base)
        pre.update(sets)
        pads = ["HUGEPERM_BENCH_PAD%d" % i
                for i in range(sum(1 for k, _ in sets[1:] if k not in base))]
        plain = dict(base, LD_PRELOAD=old or "", **{p: "" for p in pads})
        blanks = size(pre) - size(plain)
        if blanks < 0 or len(pre) != len(plain):
            raise RuntimeError("cannot pad the plain run's environment to the preloaded one's")
        return ["LD_PRELOAD=" + " " * blanks + (old or "")] + [p + "=" for p in pads]

    def run(self, argv, preload, work, sample=False, preload_env=None, control=False):
        """One run: wall s, cpu s, peak RSS KiB, stdout, split delta,
        preload reports (list), peak code sample (rss KiB, huge KiB).
        control: the preloaded side of an A/A row, run plain as well."""
        stats = tempfile.mkdtemp(dir=work)
        # The engine starts from env(1) under GNU time, both small: a
        # process's peak RSS counts the memory it had before exec, and ours
        # (Python's) would be most of a small engine's.  env sets the
        # preload for the engine alone.  The preload's reports (what it
        # served) come from the sampled warm-up run only: the timed runs
        # measure the preload as `hugeperm run` without --stats uses it.
        # A report is three files a process (PID.started, .txt, .json),
        # 1-2 ms of inode allocation each process on this machine's ext4,
        # which Erlang's seven processes would pay in every timed run.
        full = ["env"] + self.env_args(preload and not control, preload_env,
                                       stats if sample else None)
        rss_file = os.path.join(stats, "maxrss")
        if TIME:
            full = [TIME, "-f", "%M", "-o", rss_file] + full
        out = open(os.path.join(stats, "stdout"), "w+")
        s0 = vmstat("thp_split_pmd")
        t0 = time.perf_counter()
        p = subprocess.Popen(full + argv, cwd=work, stdout=out, stderr=subprocess.PIPE)
        peak = [(0, 0)]
        if sample:
            def poll():
                while p.returncode is None:
                    peak[0] = max(peak[0], code_kb(p.pid))
                    time.sleep(0.02)
            th = threading.Thread(target=poll)
            th.start()
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        s1 = vmstat("thp_split_pmd")
        if sample:
            th.join()
        out.seek(0)
        text = out.read()
        out.close()
        if p.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (" ".join(argv), p.returncode,
                                                    err.decode(errors="replace")[-2000:]))
        maxrss = ru.ru_maxrss
        if TIME:
            with open(rss_file) as f:
                maxrss = int(f.read().split()[-1])
        reps = []
        for name in os.listdir(stats):
            if name.endswith(".json"):
                with open(os.path.join(stats, name)) as f:
                    reps.append(json.load(f))
        shutil.rmtree(stats)
        return dict(wall=wall, cpu=ru.ru_utime + ru.ru_stime, maxrss=maxrss,
                    out=text, splits=s1 - s0, reports=reps, code=peak[0])

    def pair(self, argv, work, preload_first, sample=False, preload_env=None, control=False):
        fd = None
        if self.lock:
            fd = open(self.lock, "a")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            order = (True, False) if preload_first else (False, True)
            got = {mode: self.run(argv, mode, work, sample, preload_env, control)
                   for mode in order}
        finally:
            if fd:
                fd.close()
        return got[False], got[True]


def median_interval(xs, level=0.95):
    """The median of xs and a distribution-free interval for it.

    The interval is the k-th smallest to the k-th largest value, k as large
    as keeps its coverage (the chance that it holds the true median, for
    independent pairs: 1 - 2 P(Binomial(n, 1/2) < k)) at least level.
    Fewer than 6 values have no 95% interval: then the whole range, with
    the coverage it has.  Returns (median, low, high, coverage).
    """
    v = sorted(xs)
    n = len(v)
    tail = [0.0]  # tail[k] = P(B < k)
    for i in range(n + 1):
        tail.append(tail[-1] + math.comb(n, i) / 2.0 ** n)
    k = 1
    while k + 1 <= (n + 1) // 2 and 1 - 2 * tail[k + 1] >= level:
        k += 1
    return statistics.median(v), v[k - 1], v[n - k], 1 - 2 * tail[k]


def subst(argv, dirs):
    return [a.format(**dirs) for a in argv]


def measure(w, runner, src, rounds, quick):
    need = [e for e in w["engine"] if not shutil.which(e)]
    row = dict(name=w["name"], engine=" ".join(w["engine"]), what=w["what"],
               kind=w.get("kind", ""))
    if need:
        row["absent"] = "not installed (%s)" % ", ".join(need)
        return row
    work = tempfile.mkdtemp(prefix="hp-engines-")
    try:
        if "prepare" in w:
            w["prepare"](work, quick)
        dirs = dict(bench=os.path.join(src, "bench", "engines"),
                    tests=os.path.join(src, "tests", "e2e", "engines"), work=work)
        argv = subst(w["quick"] if quick else w["argv"], dirs)
        row["argv"] = " ".join(w["quick"] if quick else w["argv"])
        # The warm-up pair: untimed, sampled.
        penv = w.get("preload_env")
        ctl = w.get("control", False)
        plain, pre = runner.pair(argv, work, False, sample=True, preload_env=penv, control=ctl)
        runs = {False: [], True: []}
        for r in range(rounds):
            a, b = runner.pair(argv, work, preload_first=(r % 2 == 1), preload_env=penv,
                               control=ctl)
            runs[False].append(a)
            runs[True].append(b)
        outs = {x["out"] for x in [plain, pre] + runs[False] + runs[True]}
        row["output"] = plain["out"].strip()
        row["same_output"] = len(outs) == 1
        row["expected"] = re.fullmatch(w["expect"], plain["out"]) is not None
        for mode, key in ((False, "plain"), (True, "preload")):
            rs = runs[mode]
            row[key] = dict(median_s=statistics.median(x["wall"] for x in rs),
                            min_s=min(x["wall"] for x in rs), max_s=max(x["wall"] for x in rs),
                            cpu_s=statistics.median(x["cpu"] for x in rs),
                            maxrss_kb=statistics.median(x["maxrss"] for x in rs),
                            splits=max(x["splits"] for x in rs + [pre if mode else plain]),
                            code_kb=(plain if not mode else pre)["code"][0],
                            code_huge_kb=(plain if not mode else pre)["code"][1])
        rep = [p["preload"] for p in pre["reports"]]
        row["served"] = dict(
            exec=sum(p["exec"] + p["areas"] for p in rep),
            reservations=sum(p["reservations"] for p in rep),
            protects=sum(p["protects"] for p in rep),
            code_exit_kb=sum(p["code_bytes"] for p in rep) >> 10,
            code_exit_huge_kb=sum(p["code_huge_bytes"] for p in rep) >> 10)
        # What the warm-up run's fresh huge pages and collapses took (the
        # library's blocks and the preload's shared code), in all processes.
        lib = [p.get("hugeperm", {}) for p in pre["reports"]]
        row["served"].update(
            fresh_blocks=sum(h.get("fresh_blocks", 0) for h in lib),
            fresh_ms=sum(h.get("fresh_ns", 0) for h in lib) / 1e6,
            collapse_ms=(sum(h.get("collapse_ns", 0) for h in lib)
                         + sum(p.get("shared_collapse_ns", 0) for p in rep)) / 1e6)
        row["ratio"] = row["preload"]["median_s"] / row["plain"]["median_s"]
        row["cpu_ratio"] = row["preload"]["cpu_s"] / max(row["plain"]["cpu_s"], 1e-9)
        # Each pair ran back to back: its ratio cancels the load of its moment.
        pairs = [b["wall"] / a["wall"] for a, b in zip(runs[False], runs[True])]
        med, lo, hi, cov = median_interval(pairs)
        row["pairs"] = dict(ratios=pairs, median=med, low=lo, high=hi, coverage=cov,
                            faster=sum(1 for x in pairs if x < 1.0))
        row["rounds"] = rounds
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        row["error"] = str(e).strip().splitlines()[-1][:200] if str(e).strip() else repr(e)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return row


def mib(kb):
    return "%.1f" % (kb / 1024.0)


def label(r):
    """A row's name in the tables: opt-in modes and A/A rows say so."""
    return r["name"] + (" (%s)" % r["kind"] if r.get("kind") else "")


def table(rows, rounds):
    md = ["| workload | plain s, median (min-max) | preload s, median (min-max) | "
          "preload / plain | pairs: median ratio [interval], preload faster in | "
          "CPU preload / plain | peak RSS MiB plain / preload | "
          "engine code, MiB | under the preload: huge-mapped MiB of code | "
          "fresh 2 MiB blocks: ms (of plain time); collapses: ms | "
          "thp_split_pmd, plain / preload | "
          "same output |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "absent" in r or "error" in r:
            md.append("| %s | %s | | | | | | | | | | |" % (
                label(r), r.get("absent") or "FAILED: " + r["error"].replace("|", "/")))
            continue
        a, b = r["plain"], r["preload"]
        pct = 100.0 * b["code_huge_kb"] / b["code_kb"] if b["code_kb"] else 0.0
        p = r["pairs"]
        s = r["served"]
        fresh = "%d: %.1f (%.1f%%); %.1f" % (
            s["fresh_blocks"], s["fresh_ms"], s["fresh_ms"] / 10.0 / a["median_s"],
            s["collapse_ms"])
        md.append("| %s | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) | **%.2fx** | "
                  "%.2fx [%.2f-%.2f], %d of %d | %.2fx | "
                  "%s / %s | %s | %s of %s (%.0f%%) | %s | %d / %d | %s |" % (
                      label(r), a["median_s"], a["min_s"], a["max_s"], b["median_s"],
                      b["min_s"], b["max_s"], r["ratio"], p["median"], p["low"], p["high"],
                      p["faster"], len(p["ratios"]), r["cpu_ratio"],
                      mib(a["maxrss_kb"]), mib(b["maxrss_kb"]), mib(a["code_kb"]),
                      mib(b["code_huge_kb"]), mib(b["code_kb"]), pct, fresh, a["splits"],
                      b["splits"],
                      "yes" if r["same_output"] and r["expected"] else "NO"))
    return "\n".join(md) + "\n"


def key(rows):
    return "\n".join("- `%s`: %s. `%s`" % (r["name"], r["what"], r.get("argv", r["engine"]))
                     for r in rows) + "\n"


def section(rows, rounds, note, src):
    m = machine()
    c = commit(src)
    head = ("Written by `make bench-engines` (bench/engines.py) on %s UTC, commit `%s`%s: "
            "%d timed pairs a workload after an untimed warm-up pair, plain and preload "
            "alternating; %s CPUs (%s), kernel %s, THP `%s`, load average %s at the "
            "end.%s\n\n" % (
                utc_now(), c["head"][:12], ", with uncommitted changes" if c["dirty"] else "",
                rounds, m["nproc"], m["model"], m["kernel"], m["thp"], loadavg(),
                (" " + note) if note else ""))
    expl = ("\nWall and CPU (user + sys) times are medians; the timed preloaded runs "
            "write no report (no HUGEPERM_STATS_DIR, as `hugeperm run` without --stats), "
            "the warm-up run's reports give what was served. Peak RSS is GNU time's "
            "`%M` (the median; hugetlb pages are not in it). Engine code is the "
            "resident executable anonymous or shared memory (memfds, shared anonymous "
            "memory: the JIT's code, not the engine's binary) at the largest of smaps samples taken every 20 ms in the warm-up "
            "runs: plain, then under the preload with the part of it the kernel maps "
            "huge (AnonHugePages + ShmemPmdMapped + hugetlb; the preload's blocks are "
            "2 MiB, so it can exceed the plain figure). Fresh 2 MiB blocks: those the "
            "kernel gave the preload memory for in the warm-up run (all its processes) "
            "and the wall time of the system calls that did it (map, populate, fill; "
            "the library's `fresh_blocks` and `fresh_ns`), with its share of the plain "
            "run's median time: what they add where nothing overlaps them (the preload "
            "makes them on the program's thread), a cost whose counterpart in a plain "
            "run is its own page faults, not counted here. "
            "Collapses: the time in MADV_COLLAPSE, for blocks and for shared code, "
            "mostly on a background thread. thp_split_pmd: the most "
            "counted system-wide during one run each way (other programs' splits count "
            "too). On a busy machine (see the load average) the figures move by several "
            "percent from run to run, and wall time more than CPU time: trust the "
            "ratios of alternating pairs over the seconds. ")
    expl += ("The pairs column is those ratios: each pair's preloaded wall time over "
             "its plain one, their median, the interval that holds the median ratio "
             "with %.1f%% coverage "
             "(order statistics of the %d pairs, no assumption about the noise's shape: "
             "an interval across 1.00 means the run cannot tell the preload from plain), "
             "and in how many pairs the preloaded run was the faster. Both runs of a pair "
             "see environments of one size, in variables and bytes (the plain run has a "
             "pad variable for each one the preloaded run adds, and blanks in LD_PRELOAD, "
             "which load nothing): the size of the environment alone moves some engines' time "
             "by several percent. Rows marked (opt-in) run a mode the preload uses only "
             "when asked; the (A/A) row runs plain on both sides, so its interval is how "
             "far two identical runs' ratio strays here.\n\n"
             % (100 * median_interval([0.0] * rounds)[3], rounds))
    return head + table(rows, rounds) + expl + key(rows)


def replace_marked(path, body):
    with open(path) as f:
        text = f.read()
    b, e = text.find(MARK_BEGIN), text.find(MARK_END)
    if b < 0 or e < b:
        sys.exit("engines.py: %s has no bench-engines markers" % path)
    b = text.index("\n", b) + 1
    with open(path, "w") as f:
        f.write(text[:b] + body + text[e:])


def readme_excerpt(rows):
    md = ["| workload | preload / plain (wall, median) | pairs: median ratio [interval] | "
          "peak RSS MiB, plain / preload | engine code | huge-mapped |",
          "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "ratio" not in r:
            continue
        b = r["preload"]
        p = r["pairs"]
        md.append("| %s | %.2fx | %.2fx [%.2f-%.2f] | %s / %s | %s MiB | %.0f%% |" % (
            label(r), r["ratio"], p["median"], p["low"], p["high"],
            mib(r["plain"]["maxrss_kb"]), mib(b["maxrss_kb"]),
            mib(r["plain"]["code_kb"]),
            100.0 * b["code_huge_kb"] / b["code_kb"] if b["code_kb"] else 0.0))
    return "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(prog="engines.py")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("HP_ENGINE_ROUNDS", "5")))
    ap.add_argument("--only", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lock", default="")
    ap.add_argument("--record", default="")
    ap.add_argument("--srcdir", default="")
    ap.add_argument("--note", default="")
    ap.add_argument("build")
    ap.add_argument("src")
    ap.add_argument("out")
    a = ap.parse_args()
    if a.rounds < 1:
        sys.exit("engines.py: --rounds must be at least 1")
    only = [n for n in a.only.split(",") if n]
    unknown = set(only) - {w["name"] for w in WORKLOADS}
    if unknown:
        sys.exit("engines.py: no workload named %s" % ", ".join(sorted(unknown)))
    runner = Runner(a.build, a.lock)
    if not os.path.exists(runner.preload):
        sys.exit("engines.py: %s is not built" % runner.preload)
    src = os.path.abspath(a.src)
    rows = []
    for w in WORKLOADS:
        if only and w["name"] not in only:
            continue
        rows.append(measure(w, runner, src, a.rounds, a.quick))
        r = rows[-1]
        print("%-16s %s" % (r["name"], "%.2fx" % r["ratio"] if "ratio" in r
                            else r.get("absent") or "FAILED: " + r.get("error", "")),
              file=sys.stderr, flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "engines.json"), "w") as f:
        json.dump(rows, f, indent=1)
    body = section(rows, a.rounds, a.note, src)
    with open(os.path.join(a.out, "engines.md"), "w") as f:
        f.write("# Real JITs with and without the preload\n\n" + body)
    print(body)
    if a.record and (a.quick or only):
        print("engines.py: a partial run (--quick or --only) is not recorded", file=sys.stderr)
    elif a.record:
        replace_marked(a.record, body)
        readme = os.path.join(a.srcdir or src, "README.md")
        replace_marked(readme, "From [docs/bench-results.md](docs/bench-results.md"
                       "#real-jits-with-and-without-the-preload), %s UTC, %d alternating "
                       "pairs a workload (noisy: see the load average there):\n\n"
                       % (utc_now(), a.rounds) + readme_excerpt(rows))
    bad = [r["name"] for r in rows
           if "error" in r or ("ratio" in r and not (r["same_output"] and r["expected"]))]
    if bad:
        sys.exit("engines.py: failed or wrong output: %s" % ", ".join(bad))


if __name__ == "__main__":
    main()
