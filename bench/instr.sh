#!/usr/bin/env bash
# instr.sh — instructions per malloc/free pair on the fast path, for tide and
# the peers, counted by valgrind --tool=callgrind (make bench-instr).
#
# The first table is the one to compare allocators by: per-pair counts of
# loops that call malloc and free directly, as a program does, at a fixed
# 16 B and at mixed sizes (LIFO pairs of 16-72 B, batches of 64 blocks of
# 16-512 B, sizes drawn uniformly; bench/instr.c pattern=lifo|batch),
# given with the loop included (what the program pays per pair, PLT stubs
# and the loop's ten-odd instructions with it) and with the loop's own
# count (mode=empty) subtracted.
#
# For each allocator and each size (16, 64, 256 bytes) build/bench/instr runs
# a warm-up and then K pairs of malloc(size)/free, once with K=K1 and once with
# K=K2; (Ir(K2) - Ir(K1)) / (K2 - K1) is the cost of one pair with start-up,
# initialisation and warm-up cancelled out.  The same is done with the calls
# left out (mode=empty) and subtracted, so the figure is the allocator's
# instructions alone (its PLT stub included: every preloaded malloc pays it).
# The occasional refill of a thread cache or free list is part of the figure,
# spread over the pairs it serves, as it is in a real program.
# A second table compares C++ with C: a loop whose every iteration does
# new/delete of a 16-byte and of a 48-byte object (operator new and the
# sized operator delete g++ emits) against the same loop with malloc/free,
# per iteration; the last column is the difference (the C++ layer's cost:
# libstdc++'s operators calling malloc and free, unless the allocator
# exports its own).
# Instruction counts do not depend on the load of the machine, unlike times;
# they are not times either (a cache miss or a long dependency chain costs
# cycles that no instruction count shows).
#
#   ALLOCATORS="tide glibc ..."  SIZES="16 64 256"  restrict the run
#   TIDE_LIB=/path/libtide.so    measure another build of tide (e.g. one with
#                                a fast-path change, built in a scratch tree)
#   TIDE_REV=REV                 a clean build of that commit
#   PEERS="name=/path/lib.so ..." more peers, as in bench/run.sh
# The allocators, and the check that each really serves malloc, are those of
# bench/run.sh (bench/allocators.sh).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# the allocator table and checks; also ALLOCATORS and OUT (defaults)
. "$ROOT/bench/allocators.sh"
SIZES=${SIZES:-16 64 256}
K1=100000
K2=300000

die() { echo "bench/instr.sh: $*" >&2; exit 1; }
note() { echo "$*" >&2; }

alloc_init

# Install what is missing, or name it and stop: no allocator is skipped.
pkgs=""
command -v valgrind >/dev/null 2>&1 || pkgs="$pkgs valgrind"
command -v gcc >/dev/null 2>&1 || pkgs="$pkgs gcc"
for a in $ALLOCATORS; do
    pkg=$(alloc_package "$a")
    [ -z "$pkg" ] || [ -e "${ALLOC_LIB[$a]}" ] || pkgs="$pkgs $pkg"
done
if [ -n "$pkgs" ]; then
    echo "installing:$pkgs" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 $pkgs >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
              -o DPkg::Lock::Timeout=900 $pkgs >&2; } || die "could not install:$pkgs"
fi

mkdir -p "$OUT"
if [ ! -x "$OUT/instr" ] || [ bench/instr.c -nt "$OUT/instr" ] || [ bench/bench.h -nt "$OUT/instr" ]; then
    # -lstdc++: operator new/delete for the allocators that have none
    gcc -std=c11 -O2 -g -pthread -Wall -Wextra -o "$OUT/instr" bench/instr.c -ldl -lstdc++ ||
        die "cannot build bench/instr.c"
fi
alloc_build_helpers
alloc_take_tide
alloc_check_which_malloc

# prefix ALLOC: the words that start valgrind with the allocator preloaded
# (valgrind passes LD_PRELOAD on to the program it runs; callgrind itself
# replaces no malloc), and WANT_FILE, the file of the object that must define
# malloc, as callgrind names it.
prefix() {
    alloc_env "$1" "$OUT/instr"
    WANT_FILE=$(basename "$(readlink -f "$LIBFILE")")
}

TMP=$(mktemp -d /tmp/tide-instr.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# ir ALLOC K MODE ARGS...: total instructions of one run of instr with
# k=K mode=MODE ARGS (mode=empty: the loop alone, no allocator preloaded,
# ALLOC unused); in pairs mode, also checks that callgrind saw code of the
# allocator's object run (an "ob=" or "cob=" record naming its file), so the
# count is the allocator's.
ir() {
    local a=$1 k=$2 mode=$3
    shift 3
    if [ "$mode" = pairs ]; then prefix "$a"; else PREFIX=(env); fi
    "${PREFIX[@]}" valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
        "$OUT/instr" k="$k" mode="$mode" "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; return 1; }
    if [ "$mode" = pairs ] && ! grep -q "^c\?ob=([0-9]*) .*/$WANT_FILE\$" "$TMP/cg.out"; then
        echo "bench/instr.sh: $a: callgrind saw no code of $WANT_FILE" >&2
        return 1
    fi
    awk '/^(summary|totals):/ { print $2; exit }' "$TMP/cg.out"
}

per_pair() { # ALLOC MODE ARGS...: instructions per iteration
    local a=$1 mode=$2 i1 i2
    shift 2
    i1=$(ir "$a" "$K1" "$mode" "$@") && i2=$(ir "$a" "$K2" "$mode" "$@") || return 1
    awk -v a="$i1" -v b="$i2" -v k1="$K1" -v k2="$K2" 'BEGIN { printf "%.1f", (b - a) / (k2 - k1) }'
}

[ -n "${TIDE_LIB:-}" ] && echo "tide is $TIDE_LIB" >&2
# PATTERNS: name:pattern:min:max of the first table
PATTERNS=${PATTERNS:-"lifo-16:lifo:16:16 lifo-16-72:lifo:16:72 batch-16-512:batch:16:512"}
declare -A mixed loopof
for pt in $PATTERNS; do
    IFS=: read -r name pat lo hi <<<"$pt"
    loopof[$name]=$(per_pair - empty pattern="$pat" min="$lo" max="$hi") || die "callgrind failed"
    for a in $ALLOCATORS; do
        echo "  $a $name" >&2
        mixed[$a,$name]=$(per_pair "$a" pairs pattern="$pat" min="$lo" max="$hi") ||
            die "callgrind failed for $a $name"
    done
done
if [ "${MIXED_ONLY:-0}" = 1 ]; then SIZES=""; fi
echo "instructions per malloc+free pair (callgrind; (Ir(K=$K2) - Ir(K=$K1)) / $((K2 - K1)), loop overhead subtracted)" >&2
declare -A result
for size in $SIZES; do
    loop=$(per_pair - empty size="$size") || die "callgrind failed"
    for a in $ALLOCATORS; do
        echo "  $a size=$size" >&2
        pairs=$(per_pair "$a" pairs size="$size") || die "callgrind failed for $a size=$size"
        result[$a,$size]=$(awk -v p="$pairs" -v l="$loop" 'BEGIN { printf "%.1f", p - l }')
    done
done
[ "${MIXED_ONLY:-0}" = 1 ] || loop=$(per_pair - empty size=16 size2=48) || die "callgrind failed"
[ "${MIXED_ONLY:-0}" = 1 ] || for a in $ALLOCATORS; do
    for api in c cxx; do
        echo "  $a api=$api sizes 16+48" >&2
        pairs=$(per_pair "$a" pairs size=16 size2=48 api=$api) || die "callgrind failed for $a api=$api"
        result[$a,$api]=$(awk -v p="$pairs" -v l="$loop" 'BEGIN { printf "%.1f", p - l }')
    done
done

printf '\nInstructions per malloc+free pair, loops calling malloc/free directly (callgrind; fewer is better)\n'
printf 'loop included / loop subtracted\n'
printf '%-10s' allocator
for pt in $PATTERNS; do printf '%20s' "${pt%%:*}"; done
printf '\n'
for a in $ALLOCATORS; do
    printf '%-10s' "$a"
    for pt in $PATTERNS; do
        name=${pt%%:*}
        printf '%20s' "$(awk -v p="${mixed[$a,$name]}" -v l="${loopof[$name]}" 'BEGIN { printf "%.1f / %.1f", p, p - l }')"
    done
    printf '\n'
done
printf '%-10s' '(loop)'
for pt in $PATTERNS; do printf '%20s' "${loopof[${pt%%:*}]}"; done
printf '\n'
[ "${MIXED_ONLY:-0}" = 1 ] && exit 0

printf '\nInstructions per malloc+free pair, fast path (callgrind; fewer is better)\n'
printf '%-10s' allocator
for size in $SIZES; do printf '%10s' "${size} B"; done
printf '\n'
for a in $ALLOCATORS; do
    printf '%-10s' "$a"
    for size in $SIZES; do printf '%10s' "${result[$a,$size]}"; done
    printf '\n'
done

printf '\nC++ against C: instructions per iteration of new(16)/delete + new(48)/delete, and of malloc/free of the same\n'
printf '%-10s%16s%16s%12s\n' allocator 'malloc/free' 'new/delete' 'C++ costs'
for a in $ALLOCATORS; do
    printf '%-10s%16s%16s%12s\n' "$a" "${result[$a,c]}" "${result[$a,cxx]}" \
        "$(awk -v c="${result[$a,c]}" -v x="${result[$a,cxx]}" 'BEGIN { printf "%+.1f", x - c }')"
done
