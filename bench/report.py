#!/usr/bin/python3
"""report.py — the tables and the chart of a benchmark run (bench/run.sh).

Usage: python3 bench/report.py [--png FILE] [--markdown] RESULTS.csv

Reads the CSV that bench/run.sh writes (one row per run), takes the median
of each (benchmark, allocator) over the repetitions that succeeded, and
prints:
  1. the medians themselves, with each benchmark's noise: the widest
     half-range (max - min) / 2 of the repetitions of one allocator, as a
     percentage of its median; a benchmark whose noise is above 15 % is
     marked with a '!' and its ratios should not be trusted;
  2. speed: each allocator's figure as a ratio to tide's, oriented so that
     > 1 always means tide is faster (time: peer / tide; throughput:
     tide / peer), with the geometric mean over the suite;
  3. peak RSS: peer / tide, so > 1 means tide uses less memory, with the
     geometric mean;
  4. thread scaling of larson and xmalloc, in millions of operations per
     second, next to the machine's core count;
  5. the load average seen before the runs (other processes on the machine);
  6. for each benchmark that reports what it cost the OS (minflt= and
     sys_s= in its RESULT line: bigbuf, large), its time or throughput, peak
     RSS, minor page faults and system time, per allocator, side by side;
  7. RSS recovery (bench/rss.c, unit "ratio"): the fraction of a burst of
     memory still resident at each sample after the last free, per
     allocator.  These benchmarks measure no speed and lower is better, so
     they are kept out of tables 1-4 and of the chart.
If tide has no successful run in the file, the first allocator in it takes
its place as the reference, and the headings say so.
With --png, draws the speed and RSS ratios as two bar charts (gnuplot).
With --markdown, prints the same tables as Markdown (for docs/benchmarks.md).
"""
import csv
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

NOISY = 0.15  # a benchmark whose repetitions spread wider than this is flagged
RATIO = "ratio"  # unit of the RSS recovery benchmarks: a fraction, lower is better


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("report.py: %s has no runs" % path)
    return rows


def higher_is_better(unit):
    return unit.endswith("/s")


def fmt_value(v, unit):
    if v is None:
        return "FAIL"
    if unit == "s":
        return "%.3f s" % v if v < 10 else "%.1f s" % v
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return "%.3g%s %s" % (v / scale, suffix, unit)
    return "%.3g %s" % (v, unit)


def fmt_ratio(r):
    return "-" if r is None else "%.2f" % r


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def num(s):
    return None if s in (None, "", "NA") else float(s)


def detail_fields(s):
    """The key=value fields of the CSV's detail column (absent in older CSVs)."""
    out = {}
    for word in (s or "").split():
        k, eq, v = word.partition("=")
        if eq:
            out[k] = v
    return out


def is_recovery(bench, unit):
    return unit == RATIO or bench.startswith("rss-recovery")


class Table:
    """Rows of cells printed either as aligned text or as Markdown."""

    def __init__(self, title, header):
        self.title, self.header, self.rows = title, header, []

    def add(self, row):
        self.rows.append([str(c) for c in row])

    def render(self, markdown):
        out = []
        if markdown:
            out.append("**%s**\n" % self.title)
            out.append("| " + " | ".join(self.header) + " |")
            out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|")
            for r in self.rows:
                out.append("| " + " | ".join(r) + " |")
        else:
            out.append(self.title)
            widths = [max(len(r[i]) for r in [self.header] + self.rows) for i in range(len(self.header))]
            line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths)))
            out.append(line(self.header))
            out.append("  ".join("-" * w for w in widths))
            out.extend(line(r) for r in self.rows)
        return "\n".join(out) + "\n"


class Run:
    """The medians of one CSV."""

    def __init__(self, rows):
        self.rows = rows
        self.benches, self.allocs = [], []
        self.recovery = []  # the RSS recovery benchmarks, not in self.benches
        runs = {}  # (bench, alloc) -> [(value, rss_kb)] of the successful runs
        details = {}  # (bench, alloc) -> [detail fields] of the successful runs
        self.units = {}
        self.n_failed = 0
        for r in rows:
            b, a = r["bench"], r["allocator"]
            if is_recovery(b, r["unit"]):
                if b not in self.recovery:
                    self.recovery.append(b)
            elif b not in self.benches:
                self.benches.append(b)
            if a not in self.allocs:
                self.allocs.append(a)
            runs.setdefault((b, a), [])
            if r["status"] == "ok" and num(r["value"]) is not None:
                runs[b, a].append((num(r["value"]), num(r["rss_kb"])))
                details.setdefault((b, a), []).append(detail_fields(r.get("detail")))
                self.units[b] = r["unit"]
            else:
                self.n_failed += 1
        # (bench, alloc, key) -> median over the repetitions of each numeric
        # detail field (recovery: r0, r100, ..., baseline_kb, peak_kb; the OS
        # costs: minflt, sys_s)
        self.detail = {}
        for (b, a), ds in details.items():
            for k in {k for d in ds for k in d}:
                vs = [num(d[k]) for d in ds if k in d and re.match(r"^-?[0-9.]+(e[-+]?[0-9]+)?$", d[k])]
                if vs:
                    self.detail[b, a, k] = statistics.median(vs)
        self.med, self.rss, self.spread, self.halfrange = {}, {}, {}, {}
        for (b, a), vs in runs.items():
            vals = [v for v, _ in vs]
            rsss = [s for _, s in vs if s is not None]
            self.med[b, a] = statistics.median(vals) if vals else None
            self.rss[b, a] = statistics.median(rsss) if rsss else None
            if len(vals) > 1 and self.med[b, a]:
                self.spread[b, a] = (max(vals) - min(vals)) / 2 / self.med[b, a]
            if len(vals) > 1:
                self.halfrange[b, a] = (max(vals) - min(vals)) / 2
        self.ref = "tide" if any(self.med.get((b, "tide")) for b in self.benches) else self.allocs[0]
        self.peers = [a for a in self.allocs if a != self.ref]

    def noise(self, b):
        sp = [self.spread[b, a] for a in self.allocs if (b, a) in self.spread]
        return max(sp) if sp else None

    def speed_ratio(self, b, a):
        """> 1: the reference is faster than a on b."""
        unit, rv, pv = self.units.get(b, ""), self.med.get((b, self.ref)), self.med.get((b, a))
        if not rv or not pv:
            return None
        return rv / pv if higher_is_better(unit) else pv / rv

    def rss_ratio(self, b, a):
        """> 1: the reference uses less memory than a on b."""
        rv, pv = self.rss.get((b, self.ref)), self.rss.get((b, a))
        return pv / rv if rv and pv else None


def report(run, markdown):
    rows, ref, peers = run.rows, run.ref, run.peers
    first = rows[0]
    reps = max(int(r["rep"]) for r in rows)
    loads = [num(r.get("load1")) for r in rows if num(r.get("load1")) is not None]
    nproc = first["nproc"]
    quick = " QUICK" if first.get("quick") == "1" else ""

    out = []
    out.append("tide benchmarks%s: %s, commit %s, machine %s (%s cores, %s), %d reps, medians\n" % (
        quick, first["date"], first["commit"], first["machine"], nproc, first["cpu"], reps))
    if loads:
        out.append("Load average before each run: mean %.2f, max %.2f (%s cores; above about 0.5 "
                   "other processes were running and the figures are noisier)\n"
                   % (sum(loads) / len(loads), max(loads), nproc))
    if run.n_failed:
        out.append("%d runs FAILED and are left out of the medians (see build/bench/logs).\n" % run.n_failed)
    if ref != "tide" and run.benches:
        out.append("tide has no successful run in this file: ratios are to %s instead.\n" % ref)

    if run.benches:
        out.extend(speed_tables(run, markdown))
    for b in run.benches:
        if any((b, a, "minflt") in run.detail for a in run.allocs):
            out.append(os_table(run, b, markdown))
    for b in run.recovery:
        out.append(recovery_table(run, b, markdown))
    return "\n".join(out)


def speed_tables(run, markdown):
    """Tables 1-4: medians, speed, peak RSS, thread scaling."""
    ref, peers, nproc = run.ref, run.peers, run.rows[0]["nproc"]
    out = []
    t = Table("Medians (noise = widest half-range of one allocator's repetitions, %% of its "
              "median; ! = over %d %%)" % (100 * NOISY), ["bench"] + run.allocs + ["noise"])
    for b in run.benches:
        unit, n = run.units.get(b, ""), run.noise(b)
        t.add([b] + [fmt_value(run.med.get((b, a)), unit) for a in run.allocs] +
              ["-" if n is None else "%.0f%%%s" % (100 * n, " !" if n > NOISY else "")])
    out.append(t.render(markdown))

    if peers:
        t = Table("Speed relative to %s: > 1 means %s is faster (time: peer/%s, throughput: %s/peer)"
                  % (ref, ref, ref, ref), ["bench", ref] + peers)
        for b in run.benches:
            t.add([b, fmt_value(run.med.get((b, ref)), run.units.get(b, ""))] +
                  [fmt_ratio(run.speed_ratio(b, a)) for a in peers])
        t.add(["geometric mean", ""] +
              [fmt_ratio(geomean([run.speed_ratio(b, a) for b in run.benches])) for a in peers])
        out.append(t.render(markdown))

        t = Table("Peak RSS relative to %s: > 1 means %s uses less memory (peer/%s)" % (ref, ref, ref),
                  ["bench", ref + " MiB"] + peers)
        for b in run.benches:
            rv = run.rss.get((b, ref))
            t.add([b, "%.1f" % (rv / 1024) if rv else "-"] + [fmt_ratio(run.rss_ratio(b, a)) for a in peers])
        t.add(["geometric mean", ""] +
              [fmt_ratio(geomean([run.rss_ratio(b, a) for b in run.benches])) for a in peers])
        out.append(t.render(markdown))

    scaling = {}
    for b in run.benches:
        m = re.match(r"^(larson|xmalloc)-(\d+)$", b)
        if m:
            scaling.setdefault(m.group(1), []).append((int(m.group(2)), b))
    if scaling:
        counts = sorted({n for v in scaling.values() for n, _ in v})
        t = Table("Thread scaling, million ops/s (this machine has %s cores, so more than %s threads "
                  "only share them; xmalloc-N runs N producer and N consumer threads)" % (nproc, nproc),
                  ["bench", "allocator"] + ["%d thr" % n for n in counts])
        for name, entries in scaling.items():
            by_n = dict((n, b) for n, b in entries)
            for a in run.allocs:
                cells = [name, a]
                for n in counts:
                    v = run.med.get((by_n.get(n), a))
                    cells.append("%.1f" % (v / 1e6) if v else "-")
                t.add(cells)
        out.append(t.render(markdown))
    return out


def os_table(run, b, markdown):
    """Table 6: what benchmark b cost each allocator: its figure, peak RSS,
    minor page faults and system time (medians over the repetitions)."""
    unit = run.units.get(b, "")
    t = Table("What %s costs the OS (medians): minor page faults and system time of the benchmark's "
              "loop (getrusage), beside its figure and the process's peak RSS" % b,
              ["allocator", "time" if unit == "s" else unit, "peak RSS MiB", "minor faults", "system s"])
    for a in run.allocs:
        rss, flt, sys_s = run.rss.get((b, a)), run.detail.get((b, a, "minflt")), run.detail.get((b, a, "sys_s"))
        t.add([a, fmt_value(run.med.get((b, a)), unit), "-" if rss is None else "%.0f" % (rss / 1024),
               "-" if flt is None else "%.0f" % flt, "-" if sys_s is None else "%.2f" % sys_s])
    return t.render(markdown)


def recovery_table(run, b, markdown):
    """Table 7: for each allocator, the fraction of the burst still resident
    at each sample (medians over the repetitions)."""
    keys = sorted({k for (bb, _, k) in run.detail if bb == b and re.match(r"^r\d+$", k)},
                  key=lambda k: int(k[1:]))
    t = Table("RSS recovery (%s): (RSS - baseline)/(peak - baseline) at %s s after the last free; "
              "1 = nothing went back to the OS, 0 = all of it; lower is better" %
              (b, ", ".join("%g" % (int(k[1:]) / 1000) for k in keys) or "-"),
              ["allocator", "burst MiB"] + ["%g s" % (int(k[1:]) / 1000) for k in keys] +
              ["MiB kept", "noise"])
    main_ms = None
    for a in run.allocs:
        base, peak = run.detail.get((b, a, "baseline_kb")), run.detail.get((b, a, "peak_kb"))
        cells = [a, "%.0f" % ((peak - base) / 1024) if base is not None and peak is not None else "-"]
        last = None
        for k in keys:
            r = run.detail.get((b, a, k))
            cells.append("-" if r is None else "%.2f" % r)
            last = r if r is not None else last
        # MiB of the burst still resident at the last sample
        cells.append("%.0f" % (last * (peak - base) / 1024) if last is not None and base is not None
                     and peak is not None else "-")
        hr = run.halfrange.get((b, a))
        cells.append("-" if hr is None else "%.2f" % hr)
        t.add(cells)
        main_ms = run.detail.get((b, a, "at_ms"), main_ms)
    return t.render(markdown) + (
        "(burst MiB: peak - baseline RSS; MiB kept: the part of the burst still resident at the last "
        "sample; noise: half-range (max - min) / 2 of the repetitions' ratio at %s s, the figure "
        "the CSV keeps)\n" % ("-" if main_ms is None else "%g" % (main_ms / 1000)))


def draw(png, run):
    """Two panels of clustered bars, speed and peak RSS ratios, one cluster
    per benchmark plus the geometric mean; log scale, 1 = same as tide."""
    first = run.rows[0]
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for kind, ratio in (("speed", run.speed_ratio), ("rss", run.rss_ratio)):
            path = os.path.join(tmp, kind + ".dat")
            files[kind] = path
            with open(path, "w") as f:
                f.write("bench " + " ".join(run.peers) + "\n")
                for b in run.benches + ["geomean"]:
                    cells = []
                    for a in run.peers:
                        if b == "geomean":
                            r = geomean([ratio(x, a) for x in run.benches])
                        else:
                            r = ratio(b, a)
                        cells.append("%.4f" % r if r else "NaN")
                    f.write(b + " " + " ".join(cells) + "\n")
        n = len(run.peers) + 1
        ratios = [r for b in run.benches for a in run.peers
                  for r in (run.speed_ratio(b, a), run.rss_ratio(b, a)) if r]
        lo = min([0.25] + ratios)
        hi = max([4.0] + ratios)
        lo, hi = 2.0 ** math.floor(math.log2(lo)), 2.0 ** math.ceil(math.log2(hi))
        tics = []
        e = round(math.log2(lo))
        while 2.0 ** e <= hi:
            tics.append('"%s" %g' % ("%g" % 2.0 ** e if e >= 0 else "1/%d" % 2 ** -e, 2.0 ** e))
            e += 1
        script = """
set terminal pngcairo size 1500,1000 noenhanced font ",10"
set output "%(png)s"
set multiplot layout 2,1 title "tide against its peers: %(date)s, commit %(commit)s, %(nproc)s-core %(machine)s (shared, noisy: under 15 %% is noise)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [%(lo)g:%(hi)g]
set ytics (%(tics)s)
set grid ytics
set xtics rotate by -35 scale 0
set key top left horizontal reverse Left
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black" front
set title "Speed: peer time / %(ref)s time, or %(ref)s throughput / peer throughput (bar above 1: %(ref)s is faster)"
plot for [i=2:%(n)d] "%(speed)s" using i:xtic(1) title columnheader(i)
set title "Peak RSS: peer / %(ref)s (bar above 1: %(ref)s uses less memory)"
plot for [i=2:%(n)d] "%(rss)s" using i:xtic(1) title columnheader(i)
unset multiplot
""" % dict(png=png, date=first["date"], commit=first["commit"], nproc=first["nproc"],
           machine=first["machine"], ref=run.ref, n=n, lo=lo, hi=hi, tics=", ".join(tics), speed=files["speed"], rss=files["rss"])
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    args = sys.argv[1:]
    png = None
    markdown = False
    while args and args[0].startswith("--"):
        if args[0] == "--png" and len(args) > 1:
            png, args = args[1], args[2:]
        elif args[0] == "--markdown":
            markdown, args = True, args[1:]
        else:
            sys.exit(__doc__)
    if len(args) != 1:
        sys.exit(__doc__)
    run = Run(load(args[0]))
    print(report(run, markdown), end="")
    if png:
        if not run.peers:
            print("report.py: one allocator only, no chart drawn", file=sys.stderr)
        elif not run.benches:
            print("report.py: no speed benchmark in this file, no chart drawn", file=sys.stderr)
        else:
            draw(png, run)


if __name__ == "__main__":
    main()
