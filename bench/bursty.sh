#!/usr/bin/env bash
# bursty.sh — the picture of memory going back to the OS between bursts of
# load: bench/bursty.c under tide, glibc, jemalloc, mimalloc and tcmalloc,
# one after the other, its RSS sampled every 50 ms, drawn as one line per
# allocator (RSS in MiB over time) with gnuplot.
#
#   bash bench/bursty.sh             4 bursts of 200 MiB, one every 3 s (12.5 s per allocator)
#   QUICK=1 bash bench/bursty.sh     2 bursts of 64 MiB, one every 1.5 s (3.3 s per allocator)
#   ALLOCATORS="tide glibc"  TIDE_LIB=/path/libtide.so  PEERS=...  as in bench/run.sh
#   BURSTY_ARGS="mb=100 every_ms=12000"  more arguments for bench/bursty.c
#
# Output: a table on stdout (per allocator: the RSS before the first burst,
# at each burst's peak and at the end of the idle gap after it), the samples
# in build/bench/bursty-data/<allocator>.dat, and the chart
# bench/results/bursty-latest.png (QUICK: bursty-latest-quick.png; a run of
# fewer allocators or with BURSTY_ARGS: build/bench/bursty-data/bursty.png, so
# that only a full run replaces the picture that is kept).
# The allocators are run as bench/run.sh runs them (bench/allocators.sh).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# the allocator table and checks; also QUICK, ALLOCATORS and OUT (defaults)
. "$ROOT/bench/allocators.sh"
BURSTY_ARGS=${BURSTY_ARGS:-}
DIR=$OUT/bursty-data
RESULTS=$ROOT/bench/results

die() { echo "bench/bursty.sh: $*" >&2; exit 1; }
note() { echo "$*" >&2; }

if [ "$QUICK" = 1 ]; then
    ARGS="threads=4 mb=64 bursts=2 every_ms=1500 hold_ms=200 lead_ms=300 tail_ms=1000"
    TIMEOUT=60
else
    ARGS="threads=4 mb=200 bursts=4 every_ms=3000 hold_ms=200 lead_ms=500 tail_ms=3000"
    TIMEOUT=300
fi
ARGS="$ARGS${BURSTY_ARGS:+ $BURSTY_ARGS}"

alloc_init
alloc_check_libs
command -v gnuplot >/dev/null || die "gnuplot is missing (apt-get install gnuplot-nox)"

mkdir -p "$DIR" "$RESULTS"
if [ ! -x "$OUT/bursty" ] || [ bench/bursty.c -nt "$OUT/bursty" ] || [ bench/bench.h -nt "$OUT/bursty" ]; then
    gcc -std=c11 -O2 -g -pthread -Wall -Wextra -o "$OUT/bursty" bench/bursty.c || die "cannot build bench/bursty.c"
fi
alloc_build_helpers
alloc_take_tide
alloc_check_which_malloc

read -r load _ </proc/loadavg
note "bursty: [$ALLOCATORS], $OUT/bursty $ARGS, load $load"
for a in $ALLOCATORS; do
    alloc_env "$a" "$OUT/bursty"
    SECONDS=0
    timeout -k 5 "$TIMEOUT" "${PREFIX[@]}" "$OUT/bursty" $ARGS >"$DIR/$a.dat" 2>"$DIR/$a.err" ||
        die "$a: bench/bursty.c failed (exit $?); see $DIR/$a.err"
    note "  $a: $SECONDS s"
done

# ---------------------------------------------------------- the table
n_bursts=$(grep -c '^# burst ' "$DIR/${ALLOCATORS%% *}.dat")
{
    printf 'RSS in MiB of bench/bursty (%s):\n' "$ARGS"
    printf 'before = before the first burst; peak k = highest sample of burst k; idle k = last sample before burst k+1 (or the end)\n'
    printf '%-9s %7s' allocator before
    for k in $(seq "$n_bursts"); do printf ' %7s %7s' "peak $k" "idle $k"; done
    printf '\n'
    for a in $ALLOCATORS; do
        awk -v a="$a" '
            /^# baseline_kb=/ { split($2, f, "="); base = f[2] }
            /^# burst / { n++; for (i = 3; i <= NF; i++) { split($i, f, "="); v[n, f[1]] = f[2] } }
            END {
                printf "%-9s %7.1f", a, base / 1024
                for (k = 1; k <= n; k++) printf " %7.1f %7.1f", v[k, "peak_kb"] / 1024, v[k, "idle_end_kb"] / 1024
                printf "\n"
            }' "$DIR/$a.dat"
    done
} | tee "$DIR/summary.txt"

# ---------------------------------------------------------- the chart
if [ "$ALLOCATORS" = "$ALL_ALLOCATORS" ] && [ -z "$BURSTY_ARGS" ]; then
    if [ "$QUICK" = 1 ]; then PNG=$RESULTS/bursty-latest-quick.png; else PNG=$RESULTS/bursty-latest.png; fi
else
    PNG=$DIR/bursty.png
fi
first=${ALLOCATORS%% *}
# a dashed line where each burst starts (at the same times in every run,
# unless a burst overran the interval)
marks=$(awk '/^# burst / { for (i = 3; i <= NF; i++) { split($i, f, "="); v[f[1]] = f[2] }
             printf "set arrow %d from %g, graph 0 to %g, graph 1 nohead dashtype 2 lc rgb \"gray50\"\n",
                    ++n, v["start_ms"] / 1000, v["start_ms"] / 1000 }' "$DIR/$first.dat")
plots=""
for a in $ALLOCATORS; do
    plots="$plots${plots:+, }\"$DIR/$a.dat\" using (\$1/1000):(\$2/1024) with lines lw 2 title \"$a\""
done
gnuplot <<EOF || die "gnuplot failed"
set terminal pngcairo size 1200,650 noenhanced font ",11"
set output "$PNG"
set title "RSS of bench/bursty.c over time; dashed: a burst starts (allocate ~$(echo "$ARGS" | sed -n 's/.*mb=\([0-9]*\).*/\1/p') MiB, touch, hold, free all)\\n$ARGS — $(date +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null), $(nproc)-core $(uname -n)"
set xlabel "time (s)"
set ylabel "RSS (MiB)"
set grid
set key top right
set yrange [0:*]
$marks
plot $plots
EOF
echo "chart: $PNG; samples: $DIR/<allocator>.dat"
