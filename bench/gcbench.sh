#!/usr/bin/env bash
# gcbench.sh — bench/gcbench.c on Debian's libgc and on tide's GC heap, side
# by side in one run, at 1, 2 and 4 threads, interleaved, REPS times each
# (default 3); prints every run and a table of medians with tide/libgc
# ratios (Mnodes/s: higher is better; peak RSS: lower is better).
#   bash bench/gcbench.sh            THREADS="1 2 4" REPS=3 SCALE=1
# The binary is linked against libgc.so.1 only; tools/tide-run --gc makes
# the same binary run on tide.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
THREADS=${THREADS:-"1 2 4"}
REPS=${REPS:-3}
SCALE=${SCALE:-1}
[ -f "$BUILD/libgc.so.1" ] || { echo "gcbench.sh: run make first" >&2; exit 2; }
[ -f /usr/include/gc/gc.h ] || { echo "gcbench.sh: needs libgc-dev (Debian's libgc)" >&2; exit 2; }
exe=$BUILD/bench/gcbench
mkdir -p "$BUILD/bench"
cc -O2 -g -pthread -I/usr/include/gc -o "$exe" "$ROOT/bench/gcbench.c" -lgc -ldl
load0=$(cut -d' ' -f1-3 /proc/loadavg)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in $THREADS; do
    for r in $(seq "$REPS"); do
        for lib in libgc tide; do
            if [ $lib = tide ]; then
                line=$("$ROOT/tools/tide-run" --gc "$exe" "$t" "$SCALE")
            else
                line=$("$exe" "$t" "$SCALE")
            fi
            echo "$line"
            echo "$line" >>"$out"
        done
    done
done
echo "# load average before: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg) (the figures are worth what the machine's quiet is)"
python3 - "$out" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=") for kv in line.split()[1:])
    rows.setdefault((int(f["threads"]), f["lib"]), []).append(f)
def med(fs, k):
    return statistics.median(float(x[k]) for x in fs)
print()
print("threads | libgc Mnodes/s | tide Mnodes/s | ratio | libgc RSS MB | tide RSS MB | ratio | libgc GCs / max pause ms | tide GCs / max pause ms")
for t in sorted({k[0] for k in rows}):
    g, d = rows.get((t, "libgc")), rows.get((t, "tide"))
    if not g or not d:
        continue
    gm, dm = med(g, "mnodes_s"), med(d, "mnodes_s")
    gr, dr = med(g, "rss_kb") / 1024, med(d, "rss_kb") / 1024
    print("%7d | %14.1f | %13.1f | %5.2f | %12.0f | %11.0f | %5.2f | %10.0f / %6.1f | %10.0f / %6.1f" % (
        t, gm, dm, dm / gm, gr, dr, dr / gr, med(g, "collections"), med(g, "pause_max_ms"),
        med(d, "collections"), med(d, "pause_max_ms")))
PY
