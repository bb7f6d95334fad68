#!/usr/bin/env python3
# introspect/progs/check.py — compares what tools/tide-heap read from a
# process (live or from a core file) with what the process said about itself
# (tests/introspect/progs/pattern.c), for tests/introspect/gdb.sh.
#
#   check.py LABEL PROGRAM_OUT TIDE_HEAP_OUT [TIDE_HEAP_W_V_OUT]
#
# PROGRAM_OUT is pattern's stdout; TIDE_HEAP_OUT the output of
# `tide-heap -b ADDR... PID|CORE PROGRAM` with every address of pattern's
# `block` lines; TIDE_HEAP_W_V_OUT (optional) that of `tide-heap -w -v`.
# Prints PASS/FAIL lines named LABEL_stats, LABEL_heap, LABEL_threads,
# LABEL_blocks and, with the third file, LABEL_walk.
import re
import sys

label, prog_path, gdb_path = sys.argv[1:4]
walk_path = sys.argv[4] if len(sys.argv) > 4 else None


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


prog = lines(prog_path)
gdb_out = lines(gdb_path)
report = prog[prog.index("report-begin") + 1:prog.index("report-end")]


def result(name, problems):
    if problems:
        print("FAIL %s_%s: %s" % (label, name, "; ".join(problems[:4]) + (" (+%d more)" % (len(problems) - 4)
                                                                        if len(problems) > 4 else "")))
    else:
        print("PASS %s_%s" % (label, name))


STAT_KEYS = ("live:", "ever:", "cached:", "spans:", "memory:", "heaps:")


def stat_lines(text):
    return [l.strip() for l in text if l.strip().split(" ")[0] in STAT_KEYS]


HIST = re.compile(r"^\s+(\d+) bytes \* (\d+) blocks \((\d+\.\d) %\) = (\d+) bytes \((\d+\.\d) %\)$")


def hist_lines(text):
    return [l.strip() for l in text if HIST.match(l)]


# ---- totals: the six lines of tide's own report, word for word ----
want, got = stat_lines(report), stat_lines(gdb_out)
problems = []
if len(want) != 6:
    problems.append("the program's report has %d total lines, not 6" % len(want))
if want != got:
    for w, g in zip(want, got + [""] * len(want)):
        if w != g:
            problems.append("want '%s', got '%s'" % (w, g))
result("stats", problems)

# ---- histogram: the same lines, and the pattern the program built ----
want, got = hist_lines(report), hist_lines(gdb_out)
problems = []
if want != got:
    problems.append("histogram differs: want %s, got %s" % (want, got))
counts = {}
for l in got:
    m = HIST.match("  " + l)
    counts[int(m.group(1))] = int(m.group(2))
# main: 1000 - 100 (own frees) - 200 (freer's) - 10 (stranger's) of 100
# bytes; 200 - 100 + 150 of 500; 300 - 2 of 1000; 3 of 0 and 2 of 10 bytes;
# worker: 400 - 50 - 50 of 200; freer: 64 - 32 - 5 - 8 of 48, 20 - 3 (+ 1 of
# main's) of 16000; 5 large, 1 huge.
pattern = {112: 690, 512: 250, 1024: 298, 16: 5, 208: 300, 48: 19, 16384: 18, 102400: 5, 10485760: 1}
for size, n in sorted(pattern.items()):
    if counts.get(size) != n:
        problems.append("%d-byte blocks: want %d, got %s" % (size, n, counts.get(size)))
result("heap", problems)

# ---- thread heaps: tide_stats_heaps() figures, the pooled heap ----
HEAP = re.compile(r"^\s+heap (\d+) (?:thread (\d+) \(gdb thread \d+[^)]*\)|(pooled)): (\d+) spans \((\d+) full\), "
                  r"(\d+) bytes cached, (\d+) bytes used, (\d+) mallocs, (\d+) frees$")
problems = []
want = {}
for l in prog:
    if l.startswith("heap "):
        f = l.split()
        want[int(f[1])] = tuple(int(x) for x in f[2:])
got = {}
for l in gdb_out:
    m = HEAP.match(l)
    if m:
        tid = int(m.group(2)) if m.group(2) else 0
        got[int(m.group(1))] = (tid,) + tuple(int(m.group(i)) for i in range(4, 10))
if want != got:
    problems.append("heaps differ: want %s, got %s" % (sorted(want.items()), sorted(got.items())))
if len(want) != 3 or sum(1 for v in want.values() if v[0] == 0) != 1:
    problems.append("the program should have 3 heaps, 1 pooled: %s" % sorted(want.items()))
if not any(re.match(r"^\s+heaps:\s+2 in use, 3 made; \d+ requests to the OS$", l) for l in gdb_out):
    problems.append("no 'heaps: 2 in use, 3 made' line")
if not any(re.match(r"^\s+notify list: 1 blocks", l) for l in gdb_out):
    problems.append("main's notify list (1 block) not shown")
# freer's spans left: one of 48-byte blocks, four of 16384 (five spans of
# TIDE_SPAN_MIN_BLOCKS = 4 blocks, one adopted by main; and whatever glibc
# allocated in the thread)
ab = {}
for l in gdb_out[next((i for i, l in enumerate(gdb_out) if re.match(r"^\s+abandoned \(", l)), len(gdb_out)):]:
    m = re.match(r"^\s+(\d+) bytes \(class \d+\): (\d+) spans, (\d+) blocks free", l)
    if m:
        ab[int(m.group(1))] = int(m.group(2))
if ab.get(48) != 1 or ab.get(16384) != 4:
    problems.append("the abandoned spans (one of 48-byte blocks, four of 16384) not shown: %s" % ab)
result("threads", problems)

# ---- blocks: tide_block_info() for every address, and the expected state ----
BLOCK = re.compile(r"^(0x[0-9a-f]+): (live|free): block (0x[0-9a-f]+), (\d+) bytes, class (\S+), heap (\d+)$")
NONE = re.compile(r"^(0x[0-9a-f]+): not tide's")
seen = {}
for l in gdb_out:
    m = BLOCK.match(l)
    if m:
        cls = {"large": -1, "huge": -2}.get(m.group(5))
        cls = int(m.group(5)) if cls is None else cls
        seen[int(m.group(1), 16)] = (m.group(2), int(m.group(3), 16), int(m.group(4)), cls, int(m.group(6)))
    m = NONE.match(l)
    if m:
        seen[int(m.group(1), 16)] = ("not_tide", 0, 0, 0, 0)
problems = []
n = 0
for l in prog:
    if not l.startswith("block "):
        continue
    n += 1
    _, name, addr, state, base, size, cls, heap = l.split()
    addr = int(addr, 16)
    expect = {"free": "free", "live": "live", "none": "not_tide"}[name.rsplit("_", 1)[1]]
    if state != expect:
        problems.append("%s: tide_block_info says %s, the test expects %s" % (name, state, expect))
    want = (state, int(base, 16), int(size), int(cls), int(heap)) if state != "not_tide" else ("not_tide", 0, 0, 0, 0)
    if seen.get(addr) != want:
        problems.append("%s (%#x): want %s, got %s" % (name, addr, want, seen.get(addr)))
if n < 30:
    problems.append("only %d block lines from the program" % n)
# every way of being free was met (the pattern is built to have them all)
for why in ("local_free list", "remote list", "notify list", "never handed out", "tail of a span",
            "free page run", "huge cache"):
    if not any(l.startswith("  why:") and why in l for l in gdb_out):
        problems.append("no block found free by way of its %s" % why)
result("blocks", problems)

# ---- -w -v: small blocks counted on their spans; lists against counters ----
if walk_path:
    walk = lines(walk_path)
    problems = []
    want = hist_lines(report)
    got = hist_lines(walk)
    if want != got:
        problems.append("walked histogram differs: want %s, got %s" % (want, got))
    tot = [l for l in walk if l.strip().startswith("total:")]
    live = [l for l in report if l.strip().startswith("live:")]
    m = re.search(r"(\d+) bytes in (\d+) blocks", live[0]) if live else None
    if not tot or not m or tot[0].strip() != "total: %s blocks, %s bytes" % (m.group(2), m.group(1)):
        problems.append("walk total %s vs report %s" % (tot, live))
    CLS = re.compile(r"^\s+(\d+) bytes \(class (\d+)\): (\d+) spans, (\d+) blocks cached \(\d+ bytes\), (\d+) blocks used; "
                     r"lists: (\d+) free, (\d+) local_free, (\d+) never carved, (\d+) remote, (\d+) notify; (\d+) live$")
    k = 0
    for l in walk:
        m = CLS.match(l)
        if not m:
            continue
        k += 1
        cached, used = int(m.group(4)), int(m.group(5))
        fr, lf, nc, rem, ntf, lv = (int(m.group(i)) for i in range(6, 12))
        # counters: cached = blocks on free and local_free lists + never carved;
        # used = live + remote frees not yet collected (remote list, notify list)
        if cached != fr + lf + nc:
            problems.append("%s bytes: %d cached by the counters, %d on the lists" % (m.group(1), cached, fr + lf + nc))
        if used != lv + rem + ntf:
            problems.append("%s bytes: %d used by the counters, %d live + %d pending on the lists"
                            % (m.group(1), used, lv, rem + ntf))
    if k < 4:
        problems.append("only %d per-class lines with lists in `tide threads -v`" % k)
    # abandoned spans: free by the counters = free + local_free + never carved
    ABL = re.compile(r"^\s+(\d+) bytes \(class \d+\): \d+ spans, (\d+) blocks free \(\d+ bytes\); "
                     r"lists: (\d+) free, (\d+) local_free, (\d+) never carved, (\d+) remote; (\d+) live$")
    k = 0
    for l in walk:
        m = ABL.match(l)
        if m:
            k += 1
            free, fr, lf, nc = (int(m.group(i)) for i in range(2, 6))
            if free != fr + lf + nc:
                problems.append("abandoned %s bytes: %d free by the counters, %d on the lists"
                                % (m.group(1), free, fr + lf + nc))
    if k < 2:
        problems.append("only %d abandoned classes with lists in `tide threads -v`" % k)
    result("walk", problems)
