#!/usr/bin/env python3
"""engines.py - real JITs with and without the preload (make bench-engines).

LuaJIT runs tests/e2e/engines/jit.lua (N distinct hot functions, one trace or more
each, RW<->RX flip of the whole mcode area per trace) plain and under each
flip mode of the preload; node runs a workload of many generated functions
(V8's code range served as a reservation); java runs tests/e2e/engines/Jit.java
(HotSpot's code cache, likewise).
For each: median wall time of REPS runs, the ratio to the plain run measured
in the same session, thp_split_pmd during the run (system-wide), what the
preload served, and - for LuaJIT - the share of trace code that the kernel
maps huge while the program runs (hugeperm stats).
Usage: engines.py BUILD_DIR SRC_DIR OUT_DIR
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

build, src, out = sys.argv[1:4]
tool = os.path.join(build, "tools", "hugeperm")
os.environ["HUGEPERM_PRELOAD_LIB"] = os.path.join(os.path.abspath(build), ".libs",
                                                  "libhugeperm-preload.so")
REPS = int(os.environ.get("HP_ENGINE_REPS", "5"))
LUA = os.path.join(src, "tests", "e2e", "engines", "jit.lua")
NFUNC = os.environ.get("HP_ENGINE_LUA_N", "3000")
JS = ("let s=0; const fs=[]; for (let j=0;j<3000;j++) fs.push(new Function('n',"
      "'let s=0; for (let i=0;i<n;i++) s+=(i%'+(j%7+2)+')*'+j+'; return s;'));"
      " for (let r=0;r<100;r++) for (const f of fs) s+=f(50); console.log(s)")


def split():
    for line in open("/proc/vmstat"):
        k, v = line.split()
        if k == "thp_split_pmd":
            return int(v)


def run(cmd, env=None):
    """Wall time, thp_split_pmd delta, stdout, preload report (list or None)."""
    rep = None
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "r.json")
        full = cmd if env is None else [tool, "run", "--json", "-o", path] + cmd
        e = dict(os.environ, **(env or {}))
        s0, t0 = split(), time.perf_counter()
        p = subprocess.run(full, env=e, capture_output=True, text=True, check=True)
        t1, s1 = time.perf_counter(), split()
        if env is not None:
            rep = json.load(open(path))
    return t1 - t0, s1 - s0, p.stdout, rep


def lua_coverage(env):
    """Start jit.lua in wait mode, read its trace code's VMA with hugeperm stats."""
    e = dict(os.environ, **env)
    p = subprocess.Popen([tool, "run", "--", "luajit", LUA, NFUNC, "wait"], env=e,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("traces"):
        line = p.stdout.readline()
        if not line:
            return None
    _, traces, _, mcode, _, pid = line.split()
    st = json.loads(subprocess.run([tool, "stats", "--json", pid], capture_output=True,
                                   text=True).stdout)
    p.stdin.write("\n")
    p.stdin.close()
    p.wait()
    return st


def measure(name, cmd, env):
    times, splits, rep, outs = [], [], None, set()
    for _ in range(REPS):
        t, s, o, r = run(cmd, env)
        times.append(t)
        splits.append(s)
        outs.add(o)
        rep = r or rep
    return {"name": name, "median_s": statistics.median(times), "min_s": min(times),
            "splits": statistics.median(splits), "same_output": len(outs) == 1,
            "output": outs.pop().strip(), "report": rep}


rows = []
if shutil.which("luajit"):
    plain = measure("luajit plain", ["luajit", LUA, NFUNC], None)
    rows.append(plain)
    for mode in ("block", "exact", "rwx"):
        env = {"HUGEPERM_PRELOAD_FLIP": mode}
        r = measure("luajit preload " + mode, ["luajit", LUA, NFUNC], env)
        r["same_as_plain"] = r["output"] == plain["output"]
        r["ratio"] = r["median_s"] / plain["median_s"]
        st = lua_coverage(env)
        r["code_kb"] = st["code_kb"] if st else 0
        r["code_huge_kb"] = st["code_huge_kb"] if st else 0
        rows.append(r)
if shutil.which("node"):
    plain = measure("node plain", ["node", "-e", JS], None)
    rows.append(plain)
    r = measure("node preload", ["node", "-e", JS], {})
    r["same_as_plain"] = r["output"] == plain["output"]
    r["ratio"] = r["median_s"] / plain["median_s"]
    rows.append(r)

if shutil.which("java") and shutil.which("javac"):
    jdir = tempfile.mkdtemp()
    subprocess.run(["javac", "-d", jdir, os.path.join(src, "tests", "e2e", "engines", "Jit.java")],
                   check=True)
    jcmd = ["java", "-cp", jdir, "Jit"]
    plain = measure("java plain", jcmd, None)
    rows.append(plain)
    r = measure("java preload", jcmd, {})
    r["same_as_plain"] = r["output"] == plain["output"]
    r["ratio"] = r["median_s"] / plain["median_s"]
    p = r["report"][0]["preload"] if r["report"] else {}
    r["code_kb"] = p.get("code_bytes", 0) >> 10  # committed code memory at exit
    r["code_huge_kb"] = p.get("code_huge_bytes", 0) >> 10
    rows.append(r)
    shutil.rmtree(jdir)

os.makedirs(out, exist_ok=True)
json.dump(rows, open(os.path.join(out, "engines.json"), "w"), indent=1)
with open(os.path.join(out, "engines.md"), "w") as f:
    f.write("# Real JITs under the preload (bench/engines.py, %d runs each, median)\n\n" % REPS)
    f.write("| run | median s | vs plain | thp_split_pmd | flips (whole block / left RWX / "
            "all) | mappings / reservations served | code huge | same output |\n")
    f.write("|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        p = (r["report"] or [{}])[0].get("preload", {}) if r["report"] else {}
        flips = ("%d / %d / %d" % (p["flips_block"], p["flips_relaxed"], p["protects"])
                 if p else "-")
        served = ("%d / %d" % (p.get("areas", 0) + p.get("exec", 0), p.get("reservations", 0))
                  if p else "-")
        cov = ("%d of %d KiB" % (r["code_huge_kb"], r["code_kb"]) if "code_kb" in r else "-")
        f.write("| %s | %.3f | %s | %g | %s | %s | %s | %s |\n" % (
            r["name"], r["median_s"], "%.2fx" % r["ratio"] if "ratio" in r else "1.00x",
            r["splits"], flips, served, cov,
            "yes" if r.get("same_as_plain", True) and r["same_output"] else "NO"))
print(open(os.path.join(out, "engines.md")).read())
