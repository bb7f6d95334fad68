#!/usr/bin/env bash
# redis-flush.sh — how much memory redis-server gives back after FLUSHALL,
# under tide, glibc, jemalloc, mimalloc and tcmalloc.
#
#   bash bench/redis-flush.sh            about 300 MiB of keys (~10 s per allocator)
#   QUICK=1 bash bench/redis-flush.sh    about 64 MiB
#   MB=N                                 about N MiB of keys
#   FLUSH=async                          FLUSHALL ASYNC (the keys are freed on
#                                        redis's lazy-free thread) instead of SYNC
#   ALLOCATORS="tide glibc"  TIDE_LIB=/path/libtide.so  PEERS=...   as in bench/run.sh
#
# For each allocator: a redis-server on 127.0.0.1 (a random free port, no
# persistence), started as bench/run.sh starts it (bench/allocators.sh:
# tide, mimalloc and tcmalloc preloaded; glibc through bench/glibc_shim.c,
# since Debian's redis-server links libjemalloc.so.2; jemalloc = that
# jemalloc, redis's own).  After start-up, the baseline RSS; then DEBUG
# POPULATE fills it with keys in four groups of equal bytes, values of 100 B,
# 1000 B, 10 kB and 100 kB; then the peak RSS, FLUSHALL, and the RSS at 0,
# 0.5, 1, 2 and 3 s after the FLUSHALL reply, both from /proc/PID/status
# (VmRSS) and as redis reports it (INFO memory used_memory_rss, which
# serverCron refreshes every 100 ms: it can lag by that much).  Between the
# samples the server is idle but for its own serverCron (10 times a second)
# and the INFO requests.
#
# Beware, when reading the jemalloc column: redis built with jemalloc calls
# jemalloc_purge() (mallctl arena.<all>.purge) itself at the end of a
# synchronous FLUSHALL, and enables jemalloc's background purging thread
# (jemalloc-bg-thread yes).  Under the other allocators these mallctl calls
# reach the linked jemalloc, which holds none of the data, and do nothing.
#
# Prints a table of VmRSS and one of used_memory_rss (MiB), and the fraction
# (RSS - baseline) / (peak - baseline) still resident 3 s after the flush
# (also in build/bench/redis-flush/summary.txt).  After the last sample, the
# server's INFO and MEMORY MALLOC-STATS (jemalloc's own report: under another
# allocator, that of the linked jemalloc, which holds next to nothing) go to
# build/bench/redis-flush/<allocator>.{info,malloc-stats}.txt.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# the allocator table and checks; also QUICK, ALLOCATORS and OUT (defaults)
. "$ROOT/bench/allocators.sh"
if [ "$QUICK" = 1 ]; then MB=${MB:-64}; else MB=${MB:-300}; fi
FLUSH=${FLUSH:-sync}
DIR=$OUT/redis-flush
SAMPLES="0 0.5 1 2 3"   # seconds after the FLUSHALL reply

die() { echo "bench/redis-flush.sh: $*" >&2; exit 1; }
note() { echo "$*" >&2; }

case "$FLUSH" in sync | async) ;; *) die "FLUSH is sync or async, not '$FLUSH'" ;; esac
[[ "$MB" =~ ^[0-9]+$ ]] && [ "$MB" -ge 4 ] || die "MB=$MB: a whole number of MiB, at least 4"
for c in redis-server redis-cli; do
    command -v $c >/dev/null || die "$c is missing (apt-get install redis-server redis-tools)"
done
alloc_init
alloc_check_libs
mkdir -p "$DIR"
alloc_build_helpers
alloc_take_tide
alloc_check_which_malloc
REDIS=$(command -v redis-server)
alloc_check_bindings "$REDIS"   # every malloc/free of redis-server binds to the allocator under test

TMP=$(mktemp -d /tmp/tide-redis-flush.XXXXXX)
SPID=""
cleanup() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$SPID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cli() { timeout 120 redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }

vmrss_kb() { # the server's VmRSS in KiB (bash only: no process started)
    local k v _
    while read -r k v _; do
        [ "$k" = VmRSS: ] && { echo "$v"; return; }
    done <"/proc/$SPID/status"
}

info_rss_kb() { # used_memory_rss from INFO memory, in KiB
    cli info memory | tr -d '\r' | awk -F: '$1 == "used_memory_rss" { printf "%d", $2 / 1024 }'
}

# sleep_until T: until bash's clock $EPOCHREALTIME reaches T (seconds.micros)
sleep_until() {
    local us=$(( 10#${1/./} - 10#${EPOCHREALTIME/./} ))
    [ "$us" -gt 0 ] && sleep "$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))"
    return 0
}

# start_server ALLOC: a redis-server under ALLOC on a free port; sets PORT and SPID.
start_server() {
    local try i
    alloc_env "$1" redis-server
    for try in 1 2 3 4 5; do
        # below the kernel's ephemeral range (32768-60999): no client socket holds it
        PORT=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && continue   # someone listens there
        mkdir -p "$TMP/$1"
        "${PREFIX[@]}" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --enable-debug-command local --dir "$TMP/$1" \
            --logfile "$DIR/$1.server.log" &
        SPID=$!   # env execs redis-server: the same pid
        for i in $(seq 100); do
            kill -0 "$SPID" 2>/dev/null || break
            [ "$(cli ping 2>/dev/null)" = PONG ] && return 0
            sleep 0.1
        done
        kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""
    done
    die "$1: redis-server did not answer PING (5 tries); see $DIR/$1.server.log"
}

# Four groups of keys of equal bytes (value bytes plus about 100 bytes of key,
# dict entry and object per key).
VALUE_SIZES="100 1000 10000 100000"
declare -A RSS INFO
read -r load _ </proc/loadavg
note "redis-flush: [$ALLOCATORS], about $MB MiB of keys, FLUSHALL $FLUSH, load $load"
for a in $ALLOCATORS; do
    start_server "$a"
    alloc_env "$a" redis-server
    real=$(readlink -f "$LIBFILE")
    grep -q " $real\$" "/proc/$SPID/maps" || die "$a: $real ($WANT) is not mapped in redis-server"
    [ "$(cli info server | tr -d '\r' | sed -n 's/^process_id://p')" = "$SPID" ] ||
        die "$a: the server's pid is not $SPID"
    sleep 0.5
    RSS[$a,base]=$(vmrss_kb); INFO[$a,base]=$(info_rss_kb)
    t0=$EPOCHREALTIME
    for size in $VALUE_SIZES; do
        n=$(( (MB << 20) / 4 / (size + 100) ))
        r=$(cli debug populate "$n" "k$size:" "$size") && [ "$r" = OK ] ||
            die "$a: DEBUG POPULATE $n k$size: $size failed: $r"
    done
    keys=$(cli dbsize)
    sleep 0.3
    RSS[$a,peak]=$(vmrss_kb); INFO[$a,peak]=$(info_rss_kb)
    used=$(cli info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { printf "%.0f", $2 / 1048576 }')
    t1=$EPOCHREALTIME
    r=$(cli flushall "$FLUSH") && [ "$r" = OK ] || die "$a: FLUSHALL $FLUSH failed: $r"
    t2=$EPOCHREALTIME
    for s in $SAMPLES; do
        sleep_until "$(awk -v t="$t2" -v s="$s" 'BEGIN { printf "%.6f", t + s }')"
        RSS[$a,$s]=$(vmrss_kb); INFO[$a,$s]=$(info_rss_kb)
    done
    [ "$(cli dbsize)" = 0 ] || die "$a: keys left after FLUSHALL"
    cli info all >"$DIR/$a.info.txt" 2>&1
    cli memory malloc-stats >"$DIR/$a.malloc-stats.txt" 2>&1
    note "  $a: $keys keys (used_memory $used MiB) in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, FLUSHALL $FLUSH took $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s"
    cli shutdown nosave >/dev/null 2>&1
    for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""
done

# ---------------------------------------------------------- the tables
table() { # name array-name
    local -n v=$2
    local a s
    printf '%s, MiB (redis-server, about %s MiB of keys, FLUSHALL %s)\n' "$1" "$MB" "$FLUSH"
    printf '%-9s %8s %8s' allocator baseline peak
    for s in $SAMPLES; do printf ' %8s' "${s} s"; done
    printf ' %9s\n' "kept 3 s"
    for a in $ALLOCATORS; do
        printf '%-9s %8.1f %8.1f' "$a" "$(bc_div "${v[$a,base]}")" "$(bc_div "${v[$a,peak]}")"
        for s in $SAMPLES; do printf ' %8.1f' "$(bc_div "${v[$a,$s]}")"; done
        awk -v b="${v[$a,base]}" -v p="${v[$a,peak]}" -v l="${v[$a,3]}" \
            'BEGIN { if (p > b) printf " %9.2f\n", (l - b) / (p - b); else printf " %9s\n", "-" }'
    done
}
bc_div() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
    table "VmRSS (/proc/PID/status)" RSS
    echo
    table "used_memory_rss (INFO memory, refreshed every 100 ms)" INFO
    echo "(kept 3 s: (RSS 3 s after the flush - baseline) / (peak - baseline); 1 = nothing given back, 0 = all)"
} | tee "$DIR/summary.txt"
