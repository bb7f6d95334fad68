#!/usr/bin/env bash
# gcbench.sh — bench/gcbench.c on Debian's libgc and on tide's GC heap, side
# by side in one run, at 1, 2 and 4 threads, interleaved, REPS times each
# (default 3); prints every run and, per configuration, the distribution
# (min / median / max) of Mnodes/s, collections and peak RSS, with the
# ratios of the medians to libgc's (Mnodes/s: higher is better; peak RSS:
# lower is better).
#   bash bench/gcbench.sh            THREADS="1 2 4" REPS=3 SCALE=1
#   BASE=/path/to/other/libgc.so.1   also runs another build of tide's
#                                    libgc.so.1 (say, main's), as "base", in
#                                    the same interleaving
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
BASE=${BASE:-}
libs="libgc tide"
[ -n "$BASE" ] && libs="libgc base tide"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in $THREADS; do
    for r in $(seq "$REPS"); do
        for lib in $libs; do
            if [ $lib = tide ]; then
                line=$("$ROOT/tools/tide-run" --gc "$exe" "$t" "$SCALE")
            elif [ $lib = base ]; then
                line=$(TIDE_GC_LIB="$BASE" "$ROOT/tools/tide-run" --gc "$exe" "$t" "$SCALE" | sed 's/lib=tide/lib=base/')
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
def dist(fs, k, scale=1.0, fmt="%.1f"):
    v = sorted(float(x[k]) / scale for x in fs)
    return (fmt + " " + fmt + " " + fmt) % (v[0], statistics.median(v), v[-1]), statistics.median(v)
print()
print("min median max of each; ratios: medians against libgc's")
print("threads | lib   | runs | Mnodes/s          | ratio | collections | peak RSS MB    | ratio | max pause ms (median)")
for t in sorted({k[0] for k in rows}):
    g = rows.get((t, "libgc"))
    for lib in ("libgc", "base", "tide"):
        d = rows.get((t, lib))
        if not d or not g:
            continue
        m, mm = dist(d, "mnodes_s")
        c, _ = dist(d, "collections", fmt="%.0f")
        r, rm = dist(d, "rss_kb", 1024, "%.0f")
        _, gm = dist(g, "mnodes_s")
        _, gr = dist(g, "rss_kb", 1024)
        _, pm = dist(d, "pause_max_ms")
        print("%7d | %-5s | %4d | %17s | %5.2f | %11s | %14s | %5.2f | %.1f" % (
            t, lib, len(d), m, mm / gm, c, r, rm / gr, pm))
PY
