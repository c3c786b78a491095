#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py RESULTS.json OUTDIR - summary.md (ratios against the peers
measured in the same run, and the targets with the measured figure beside
each) and SVG plots, from hpbench's Google Benchmark JSON.

report.py --stamp SRCDIR OUTDIR/commit.json notes the commit about to be
measured and the time; report.py --record OUT.md --srcdir DIR [--command CMD]
[--note TEXT] OUTDIR/summary.md then writes OUT.md (docs/bench-results.md):
the summary headed with the date, the machine, the commit measured and the
command; and rewrites the README's excerpt of it (its targets table, between
the bench-results markers) from the same figures. `make bench-results` runs the benchmarks and then this, so the
README never quotes figures that no recorded run produced."""
import datetime
import json
import os
import re
import subprocess
import sys

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            continue
        name = b["run_name"] if "run_name" in b else b["name"]
        # With repetitions, keep the median; otherwise the single run.
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") != "median":
                continue
        # Drop run settings from the name (min_time:..., repeats:..., real_time),
        # keep what tells runs apart (arguments, threads:N).
        name = re.sub(r"/(repeats|min_time|iterations):[^/]*|/real_time", "", name)
        if name in runs and b.get("run_type") != "aggregate":
            continue
        b["ns"] = b["real_time"] * UNIT_NS[b.get("time_unit", "ns")]
        runs[name] = b
    return data.get("context", {}), runs


def ns_per_item(b):
    if b.get("items_per_second"):
        return 1e9 / b["items_per_second"]
    return b["ns"]


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def svg_bars(path, title, groups, series, values, unit, log=False):
    """Grouped bar chart: values[(group, series)] -> number."""
    import math
    w, h, left, bottom, top = 760, 360, 70, 60, 40
    colors = ["#1b6ca8", "#e07b39", "#6a9f3a", "#9b59b6", "#c0392b"]
    vals = [v for v in values.values() if v]
    vmax = max(vals) if vals else 1
    vmin = min(vals) if vals else 1

    def scale(v):
        if not v:
            return 0
        if log:
            lo = math.log10(max(vmin / 2, 1e-3))
            return (math.log10(v) - lo) / (math.log10(vmax * 1.2) - lo)
        return v / (vmax * 1.1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="15">{title}</text>',
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" '
           f'text-anchor="middle">{unit}{" (log)" if log else ""}</text>']
    ph = h - bottom - top
    gw = (w - left - 20) / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    out.append(f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="black"/>')
    for gi, g in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        for si, s in enumerate(series):
            v = values.get((g, s))
            bh = scale(v) * ph
            x = x0 + si * bw
            out.append(f'<rect x="{x:.1f}" y="{h - bottom - bh:.1f}" width="{bw - 2:.1f}" '
                       f'height="{bh:.1f}" fill="{colors[si % len(colors)]}"/>')
            if v:
                out.append(f'<text x="{x + bw / 2:.1f}" y="{h - bottom - bh - 3:.1f}" '
                           f'text-anchor="middle" font-size="10">{fmt(v)}</text>')
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{h - bottom + 16}" '
                   f'text-anchor="middle">{g}</text>')
    for si, s in enumerate(series):
        out.append(f'<rect x="{left + si * 150}" y="{h - 22}" width="12" height="12" '
                   f'fill="{colors[si % len(colors)]}"/>')
        out.append(f'<text x="{left + si * 150 + 16}" y="{h - 12}">{s}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def code_pairs(path):
    """code_pairs' lines, {threads: [(hugeperm ns, mimalloc ns, ratio) a thread]}; {} without the file."""
    out = {}
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return out
    for line in lines:
        w = line.split()
        if not w:
            continue
        if len(w) != 10 or w[0::2] != ["threads", "thread", "hugeperm_ns", "mimalloc_ns", "ratio"]:
            sys.exit(f"report.py: {path}: not a code_pairs line: {line!r}")
        out.setdefault(int(w[1]), []).append((float(w[5]), float(w[7]), float(w[9])))
    return out


def main():
    ctx, runs = load(sys.argv[1])
    outdir = sys.argv[2]
    md = []
    targets = []

    def get(name):
        return runs.get(name)

    md.append("# hugeperm benchmarks\n")
    md.append(f"Run on {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs, "
              f"{ctx.get('date', '')}. All peers measured in this one run; "
              f"times are Google Benchmark's real time.\n")

    # 1. pages
    md.append("## 1. Page alloc + free (first byte touched), ns per op\n")
    md.append("| pages | hugeperm | mimalloc | glibc | mmap+munmap | hugeperm / mimalloc | mmap / hugeperm |")
    md.append("|---:|---:|---:|---:|---:|---:|---:|")
    vals = {}
    for n in (1, 16, 512):
        row = {p: get(f"pages/{p}/{n}") for p in ("hugeperm", "mimalloc", "glibc", "mmap")}
        t = {p: ns_per_item(b) if b else None for p, b in row.items()}
        for p, v in t.items():
            vals[(f"{n} page" + ("s" if n > 1 else ""), p)] = v
        r1 = t["hugeperm"] / t["mimalloc"] if t["hugeperm"] and t["mimalloc"] else None
        r2 = t["mmap"] / t["hugeperm"] if t["hugeperm"] and t["mmap"] else None
        md.append(f"| {n} | {fmt(t['hugeperm'])} | {fmt(t['mimalloc'])} | {fmt(t['glibc'])} | "
                  f"{fmt(t['mmap'])} | {fmt(r1, 2)}x | {fmt(r2)}x |")
        if n == 1:
            targets.append(("1: hugeperm time <= 1.0x mimalloc's (1 page)", r1, r1 is not None and r1 <= 1.0, f"{fmt(r1, 2)}x"))
            targets.append(("1: hugeperm >= 100x faster than mmap+munmap (1 page)", r2, r2 is not None and r2 >= 100, f"{fmt(r2)}x"))
    svg_bars(f"{outdir}/pages.svg", "Page alloc + free", ["1 page", "16 pages", "512 pages"],
             ["hugeperm", "mimalloc", "glibc", "mmap"], vals, "ns per op", log=True)
    md.append("\n![pages](pages.svg)\n")

    # 2. JIT pattern
    md.append("## 2. JIT pattern: alloc + 64 bytes of code made executable + free, ns per op\n")
    md.append("| hugeperm (hp_write) | mmap + mprotect + munmap | mimalloc + mprotect | mmap / hugeperm |")
    md.append("|---:|---:|---:|---:|")
    j = {p: get(f"jit/{p}") for p in ("hugeperm", "mmap", "mimalloc")}
    t = {p: ns_per_item(b) if b else None for p, b in j.items()}
    md.append(f"| {fmt(t['hugeperm'])} | {fmt(t['mmap'])} | {fmt(t['mimalloc'])} | "
              f"{fmt(t['mmap'] / t['hugeperm'] if t['mmap'] and t['hugeperm'] else None)}x |\n")

    # 3. patch
    md.append("## 3. Patching 64 bytes of live code, ns per patch\n")
    md.append("| mprotect flip pair (THP block) | RWX memcpy | hp_write (alias) | hp_write (/proc/self/mem) | flip / hp_write |")
    md.append("|---:|---:|---:|---:|---:|")
    pt = {p: get(f"patch/{p}") for p in ("flip", "rwx", "hp_write", "hp_write_procmem")}
    t = {p: ns_per_item(b) if b else None for p, b in pt.items()}
    r = t["flip"] / t["hp_write"] if t["flip"] and t["hp_write"] else None
    md.append(f"| {fmt(t['flip'])} | {fmt(t['rwx'])} | {fmt(t['hp_write'])} | "
              f"{fmt(t['hp_write_procmem'])} | {fmt(r)}x |\n")
    targets.append(("3: hp_write >= 20x cheaper than the flip pair on THP", r, r is not None and r >= 20, f"{fmt(r)}x"))

    # 4. walk
    md.append("## 4. iTLB code walk: ns per random call into one-function-per-page code\n")
    md.append("| code | hugeperm | mmap 4K | ideal THP | hugeperm / ideal | 4K / hugeperm | PMD-mapped pages (hugeperm, 4K, THP) |")
    md.append("|---:|---:|---:|---:|---:|---:|---|")
    wvals = {}
    for mib in (16, 64, 256):
        row = {p: get(f"walk/{p}/{mib}") for p in ("hugeperm", "mmap-4k", "thp-ideal")}
        if not any(row.values()):
            continue
        t = {p: ns_per_item(b) if b else None for p, b in row.items()}
        hp = {p: b.get("huge_pct") if b else None for p, b in row.items()}
        for p, v in t.items():
            wvals[(f"{mib} MiB", p)] = v
        r_ideal = t["hugeperm"] / t["thp-ideal"] if t["hugeperm"] and t["thp-ideal"] else None
        r_4k = t["mmap-4k"] / t["hugeperm"] if t["hugeperm"] and t["mmap-4k"] else None
        md.append(f"| {mib} MiB | {fmt(t['hugeperm'], 2)} | {fmt(t['mmap-4k'], 2)} | {fmt(t['thp-ideal'], 2)} | "
                  f"{fmt(r_ideal, 3)} | {fmt(r_4k, 2)} | {fmt(hp['hugeperm'])}%, {fmt(hp['mmap-4k'])}%, {fmt(hp['thp-ideal'])}% |")
        if mib == 64:
            targets.append(("4: hugeperm / ideal THP <= 1.02 (64 MiB)", r_ideal, r_ideal is not None and r_ideal <= 1.02, fmt(r_ideal, 3)))
            targets.append(("4: 4K mmap / hugeperm >= 1.25 (64 MiB)", r_4k, r_4k is not None and r_4k >= 1.25, fmt(r_4k, 2)))
    svg_bars(f"{outdir}/walk.svg", "iTLB code walk", sorted({g for g, _ in wvals}, key=lambda s: int(s.split()[0])),
             ["hugeperm", "mmap-4k", "thp-ideal"], wvals, "ns per call")
    md.append("\n![walk](walk.svg)\n")
    md.append("Medians of repetitions run in random interleaving. On a virtual machine the host's "
              "backing of guest memory (4 KiB host pages cap the TLB reach of guest huge pages, "
              "and fresh memory may be backed differently from old) weighs on this case; the "
              "figures are what this machine measured, not a property of the placements alone.\n")

    # 5. churn
    md.append("## 5. JIT churn (compile, patch, free; exponential lifetimes)\n")
    md.append("| peer | coverage of live code | THP splits per 1000 protection changes | memory / live bytes | us per step |")
    md.append("|---|---:|---:|---:|---:|")
    cvals = {}
    for p in ("hugeperm-write", "hugeperm-flip", "mmap"):
        b = get(f"churn/{p}")
        if not b:
            continue
        cov, spl, mem = b.get("coverage_pct"), b.get("splits_per_1000"), b.get("mem_per_live")
        cvals[("coverage %", p)] = cov
        md.append(f"| {p} | {fmt(cov)}% | {fmt(spl, 2)} | {fmt(mem, 2)} | {fmt(ns_per_item(b) / 1e3, 2)} |")
        if p == "hugeperm-write":
            targets.append(("5: coverage of live executable bytes >= 99%", cov, cov is not None and cov >= 99, f"{fmt(cov)}%"))
            targets.append(("5: splits < 1 per 1000 protection changes", spl, spl is not None and spl < 1, fmt(spl, 2)))
    svg_bars(f"{outdir}/churn.svg", "JIT churn: coverage of live code", ["coverage %"],
             ["hugeperm-write", "hugeperm-flip", "mmap"], cvals, "% huge-mapped")
    md.append("\n![churn](churn.svg)\n")
    md.append("Protection changes are the ones a W^X JIT makes (make executable, and two per patch); "
              "hugeperm-write satisfies them with hp_write and no mprotect. Coverage is sampled with "
              "PAGEMAP_SCAN over live functions; splits come from /proc/vmstat.\n")

    # 6. collapse
    md.append("## 6. MADV_COLLAPSE as hugeperm issues it (after a one-page split)\n")
    md.append("| block | us per collapse | collapses per second |")
    md.append("|---|---:|---:|")
    for p in ("anon-thp", "shmem-alias"):
        b = get(f"collapse/{p}")
        if b:
            us = b["ns"] / 1e3
            md.append(f"| {p} | {fmt(us)} | {fmt(1e6 / us if us else None)} |")
    md.append("")

    # 7. threads
    md.append("## 7. Threads: alloc + free of one page, million ops per second (all threads)\n")
    md.append("| threads | hugeperm | mimalloc | hugeperm vs 1 thread |")
    md.append("|---:|---:|---:|---:|")
    base = None
    for n in (1, 2, 8):
        h = get(f"threads/hugeperm/threads:{n}")
        m = get(f"threads/mimalloc/threads:{n}")
        hv = h["items_per_second"] / 1e6 if h and h.get("items_per_second") else None
        mv = m["items_per_second"] / 1e6 if m and m.get("items_per_second") else None
        if n == 1:
            base = hv
        r = hv / base if hv and base else None
        md.append(f"| {n} | {fmt(hv, 2)} | {fmt(mv, 2)} | {fmt(r, 2)}x |")
        if n == 2:
            targets.append(("7: 2 threads >= 1.8x the throughput of 1", r, r is not None and r >= 1.8, f"{fmt(r, 2)}x"))
        if n == 8:
            targets.append(("7: 8 threads not below 2x of 1", r, r is not None and r >= 2, f"{fmt(r, 2)}x"))
    md.append("")

    # 8. packed code
    md.append("## 8. Packed code: alloc + free of 64-256 bytes, ns per pair\n")
    pairs = code_pairs(f"{outdir}/code_pairs.txt")
    if pairs:
        md.append("Timed as alternating batches of 20,000 pairs of each allocator in one thread, "
                  "on the thread's CPU clock (bench/code_pairs.c, `make bench-code`): medians of the "
                  "batches, and the median of the per-batch ratios. The targets are read here.\n")
        md.append("| threads | thread | hp_code_alloc + hp_code_free | mi_malloc + mi_free | hugeperm / mimalloc |")
        md.append("|---:|---:|---:|---:|---:|")
        for n in sorted(pairs):
            for i, (hv, mv, r) in enumerate(pairs[n]):
                md.append(f"| {n} | {i} | {fmt(hv)} | {fmt(mv)} | {fmt(r, 2)}x |")
            worst = max(r for _, _, r in pairs[n])
            targets.append((f"8: packed code alloc+free <= 1.5x mimalloc ({n} thread{'s' if n > 1 else ''}"
                            f"{', the slower thread' if n > 1 else ''})",
                            worst, worst <= 1.5, f"{fmt(worst, 2)}x"))
        md.append("\nThe same pattern in hpbench, 0.2 s repetitions timed with the wall clock "
                  "(all threads; each repetition's luck on a shared machine moves these rows):\n")
    md.append("| threads | hp_code_alloc + hp_code_free | mi_malloc + mi_free | hugeperm / mimalloc |")
    md.append("|---:|---:|---:|---:|")
    for n in (1, 2):
        h = get(f"code/hugeperm/threads:{n}")
        m = get(f"code/mimalloc/threads:{n}")
        hv = ns_per_item(h) if h else None
        mv = ns_per_item(m) if m else None
        r = hv / mv if hv and mv else None
        md.append(f"| {n} | {fmt(hv)} | {fmt(mv)} | {fmt(r, 2)}x |")
        if not pairs:
            targets.append((f"8: packed code alloc+free <= 1.5x mimalloc ({n} thread{'s' if n > 1 else ''})",
                            r, r is not None and r <= 1.5, f"{fmt(r, 2)}x"))
    fill = get("code/trap-fill")
    md.append(f"\nThe trap fill on its own (the library's in-line fill, code_store.h, of the same sizes rounded to 64 bytes, through the alias; 32-byte stores where the CPU has AVX2, as hp_code_free's ifunc picks, else 16-byte ones): "
              f"{fmt(ns_per_item(fill) if fill else None)} ns.\n")
    pc, rwx = get("patch/hp_write_code"), get("patch/rwx")
    r = ns_per_item(pc) / ns_per_item(rwx) if pc and rwx else None
    md.append(f"hp_write of 64 bytes into live packed code: {fmt(ns_per_item(pc) if pc else None)} ns, "
              f"a memcpy into an RWX page {fmt(ns_per_item(rwx) if rwx else None)} ns: {fmt(r, 2)}x.\n")
    targets.append(("8: hp_write into packed code <= 3x a memcpy into RWX", r, r is not None and r <= 3, f"{fmt(r, 2)}x"))

    # 9. fresh memory
    md.append("## 9. Fresh memory: N pages that read as zero, each written, given back, us per op\n")
    md.append("| pages | hugeperm (HP_ZERO) | hugeperm + memset | mmap + munmap | HP_ZERO / memset | mmap / HP_ZERO |")
    md.append("|---:|---:|---:|---:|---:|---:|")
    for n in (16, 64, 512):
        t = {p: get(f"fresh/{p}/{n}") for p in ("hugeperm", "hugeperm-memset", "mmap")}
        t = {p: ns_per_item(b) / 1e3 if b else None for p, b in t.items()}
        r1 = t["hugeperm"] / t["hugeperm-memset"] if t["hugeperm"] and t["hugeperm-memset"] else None
        r2 = t["mmap"] / t["hugeperm"] if t["hugeperm"] and t["mmap"] else None
        md.append(f"| {n} | {fmt(t['hugeperm'], 2)} | {fmt(t['hugeperm-memset'], 2)} | {fmt(t['mmap'], 2)} | "
                  f"{fmt(r1, 2)}x | {fmt(r2)}x |")
    fb = {p: get(f"fresh-block/{p}") for p in ("hugeperm", "hugeperm-memset")}
    fb = {p: ns_per_item(b) / 1e3 if b else None for p, b in fb.items()}
    r = fb["hugeperm"] / fb["hugeperm-memset"] if fb["hugeperm"] and fb["hugeperm-memset"] else None
    md.append(f"\nA new 2 MiB block's first use (commit + populate): {fmt(fb['hugeperm'])} us with "
              f"HP_ZERO, {fmt(fb['hugeperm-memset'])} us cleared again by memset ({fmt(r, 2)}x).\n")

    md.insert(2, "## Targets\n\n| target | measured | |\n|---|---:|---|\n" +
              "\n".join(f"| {n} | {m} | {'met' if ok else 'MISSED'} |" for n, _, ok, m in targets) + "\n")
    with open(f"{outdir}/summary.md", "w") as f:
        f.write("\n".join(md) + "\n")


README_BEGIN = "<!-- bench-results: begin"
README_END = "<!-- bench-results: end -->"
# make bench-engines's section of the same file (bench/engines.py), kept
# when make bench-results rewrites the rest.
ENGINES_SECTION = re.compile(r"\n## Real JITs.*?<!-- bench-engines: end -->\n", re.S)


def sh(*cmd, cwd=None):
    """A command's output, or "?" where it cannot run here."""
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              check=True).stdout.rstrip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine():
    """What the header says about the machine: the figures depend on it."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    thp = "?"
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            m = re.search(r"\[(\w+)\]", f.read())
            thp = m.group(1) if m else "?"
    except OSError:
        pass
    return {"nproc": sh("nproc"), "kernel": sh("uname", "-r"), "model": model,
            "thp": thp, "free": sh("free", "-g")}


def commit(srcdir):
    """The commit checked out, and whether the tree holds changes beyond it
    (edits to the documentation change nothing a run measures)."""
    head = sh("git", "rev-parse", "HEAD", cwd=srcdir)
    subject = sh("git", "log", "-1", "--format=%s", cwd=srcdir)
    dirty = sh("git", "status", "--porcelain", "--untracked-files=no", "--", ".",
               ":(exclude)docs", ":(exclude)man", ":(exclude)*.md", cwd=srcdir)
    return {"head": head, "subject": subject, "dirty": dirty not in ("", "?")}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def loadavg():
    """The 1-minute load average: other work on the machine weighs on the
    figures, the threads case most."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def stamp(srcdir, out):
    """Taken before the run starts: what is committed or edited during a run
    that lasts many minutes is not what it measured."""
    c = commit(srcdir)
    c["started"] = utc_now()
    c["load"] = loadavg()
    with open(out, "w") as f:
        json.dump(c, f)


def record(out, srcdir, command, note, summary_path):
    with open(summary_path) as f:
        summary = f.read()
    # The plots stay in the build directory; the committed file is text only.
    summary = re.sub(r"\n!\[\w+\]\(\w+\.svg\)\n\n", "\n", summary)
    # The summary's own title gives way to the header's.
    summary = re.sub(r"\A# hugeperm benchmarks\n+", "", summary)
    # Its headings move one level down, under the header's.
    summary = re.sub(r"^## ", "### ", summary, flags=re.M)
    m = machine()
    stamp_path = os.path.join(os.path.dirname(summary_path), "commit.json")
    try:
        with open(stamp_path) as f:
            c = json.load(f)
    except OSError:
        c = commit(srcdir)
    head, subject, dirty = c["head"], c["subject"], c["dirty"]
    end = utc_now()
    date = (c["started"] + " to " if "started" in c else "") + end[-5:] + " UTC"
    hdr = [
        "# hugeperm benchmark results",
        "",
        "The figures the README quotes, from one full `make bench`. Written by",
        "`make bench-results` (in a build configured with `--enable-bench`), which",
        "runs the benchmarks, writes this file and rewrites the README's excerpt;",
        "run it again to refresh both. Plots: `bench/results/*.svg` in the build.",
        "The last section, real JITs, is `make bench-engines`'s, and kept.",
        "",
        "## Run",
        "",
        f"- date: {date}",
        f"- commit: `{head}` ({subject})" + (", with uncommitted changes" if dirty else ""),
        f"- command: `{command}`",
        f"- machine: {m['nproc']} CPUs ({m['model']}), kernel {m['kernel']}, THP `{m['thp']}`",
        f"- load average (1 min): {c.get('load', '?')} at the start, {loadavg()} at the end",
    ]
    if note:
        hdr.append(f"- note: {note}")
    hdr += ["", "`free -g`:", "", "```", m["free"], "```", "", "## Summary", ""]
    engines = ""
    try:
        with open(out) as f:
            e = ENGINES_SECTION.search(f.read())
            engines = e.group(0) if e else ""
    except OSError:
        pass
    with open(out, "w") as f:
        f.write("\n".join(hdr) + "\n" + summary + engines)

    readme = os.path.join(srcdir, "README.md")
    with open(readme) as f:
        text = f.read()
    b, e = text.find(README_BEGIN), text.find(README_END)
    if b < 0 or e < b:
        sys.exit(f"report.py: {readme} has no bench-results markers")
    b = text.index("\n", b) + 1
    t = re.search(r"^### Targets\n\n(.*?)\n\n", summary, flags=re.M | re.S)
    if not t:
        sys.exit(f"report.py: {summary_path} has no targets table")
    excerpt = (f"From [docs/bench-results.md](docs/bench-results.md): {date}, "
               f"commit {head[:7]}, {m['nproc']} CPUs ({m['model']}), "
               f"kernel {m['kernel']}, THP `{m['thp']}`.\n\n" + t.group(1) + "\n")
    with open(readme, "w") as f:
        f.write(text[:b] + excerpt + text[e:])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--stamp":
        stamp(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--record":
        import argparse
        ap = argparse.ArgumentParser(prog="report.py --record")
        ap.add_argument("--record", required=True, metavar="OUT.md")
        ap.add_argument("--srcdir", required=True)
        ap.add_argument("--command", default="make bench-results")
        ap.add_argument("--note", default="")
        ap.add_argument("summary")
        a = ap.parse_args()
        record(a.record, a.srcdir, a.command, a.note, a.summary)
    else:
        main()
