#!/usr/bin/env bash
# run.sh — tide's benchmark suite: every benchmark under tide, glibc, jemalloc,
# mimalloc and tcmalloc, interleaved, with a table of ratios to tide.
#
#   make bench            full run: 5 repetitions (about 20 minutes on 2 cores)
#   make bench QUICK=1    3 repetitions of smaller sizes (under two minutes)
#   ALLOCATORS="tide glibc"  BENCH="larson fast-lifo"  REPS=N   restrict a run
#   TIDE_REV=HEAD               measure a clean build of that commit (made in
#                               build/bench/tide-rev/) instead of the working
#                               tree's build/libtide.so ("+dirty" in the CSV
#                               when src/ has uncommitted changes)
#   TIDE_LIB=/path/libtide.so   measure that build of tide (the CSV's commit
#                               then says "+lib" and the path is printed)
#   ALLOCATORS="tide tide-prof"  measures the heap profiler's cost (prof=1)
#   ALLOCATORS="tide tide-guard"  measures guarded sampling's cost (guard=1)
#   ALLOCATORS="tide tide-nostats"  also measures `make STATS=0` (tide without
#                               the fast-path accounting), to see what it costs
#   PEERS="mimalloc3=/path/libmimalloc.so snmalloc=/path/libsnmallocshim.so"
#                               more peers, preloaded from those paths, after
#                               Debian's (bench/allocators.sh)
#
# BENCH takes names from the list printed by `bash bench/run.sh --list`; a
# name also selects its numbered variants (larson = larson-1 .. larson-8).
# Each C benchmark prints its own figure (a RESULT line); real programs are
# timed from outside.  /usr/bin/time gives every run's peak RSS and CPU time.
# rss-recovery (bench/rss.c) is no race: its figure is the fraction of a
# burst of memory still resident 1 s after it was all freed (lower is
# better); its other samples go to the CSV's last column, detail (the extra
# fields of every C benchmark's RESULT line), and bench/report.py gives it a
# table of its own.  make bench-rss runs it with bench/bursty.sh and
# bench/redis-flush.sh, which show memory going back over time.
# The loops are: for rep, for bench, for allocator, and the order of the
# allocators rotates from one rep to the next, so that drift of the machine
# and the position in the sequence hit all allocators alike.  The median of
# each (bench, allocator) is reported.
#
# Results: bench/results/<date>-<commit>.csv, bench/results/latest.csv and
# bench/results/latest.png (QUICK runs: <date>-<commit>-quick.csv and
# latest-quick.{csv,png}, so a quick look never replaces the full figures
# that docs/benchmarks.md shows).  bench/report.py makes the tables and the
# chart, and can be run again on any CSV.
#
# Every allocator, tide included, is chosen with LD_PRELOAD of its shared
# object (tide's is a copy of build/libtide.so taken at the start, so a
# rebuild during the run cannot mix two builds); glibc is the system malloc,
# except for programs linked against another allocator (Debian's
# redis-server links libjemalloc.so.2), where glibc's malloc is reached
# through build/bench/libglibc_shim.so.  Before the first run, the script
# checks that each allocator really serves malloc: in a test program
# (bench/which_malloc.c) and, through the dynamic linker's own record of its
# symbol bindings (LD_DEBUG=bindings), in every real program of the suite.
# The table of allocators and these checks are in bench/allocators.sh.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

# the allocator table and checks; also QUICK, ALLOCATORS and OUT (defaults)
. "$ROOT/bench/allocators.sh"
BENCH=${BENCH:-}
if [ "$QUICK" = 1 ]; then REPS=${REPS:-3}; TIMEOUT=60; else REPS=${REPS:-5}; TIMEOUT=600; fi
LOGS=$OUT/logs
RESULTS=$ROOT/bench/results
NPROC=$(nproc)
PY=/usr/bin/python3   # Debian's python3: the one the python benchmark runs too

die() { echo "bench/run.sh: $*" >&2; exit 1; }
note() { echo "$*" >&2; }

# ---------------------------------------------------------------- the suite
# Every benchmark, in the order they run and are reported.
ALL_BENCHES="fast-lifo fast-batch mid-batch
larson-1 larson-2 larson-4 larson-8
xmalloc-1 xmalloc-2 xmalloc-4 xmalloc-8
cache-thrash cache-scratch mstress large bigbuf realloc-double realloc-step threads-300
python lua sqlite gxx redis
rss-recovery"

# Sizes: full run / QUICK run.  A full run of a C benchmark takes about
# 0.3-2 s on an idle machine, a QUICK one about a tenth of that.  QUICK also
# compiles at -O1 and hands larson's lineages on every 1/20 of the work
# rather than every 1/50, so its figures are a first look, not the table.
if [ "$QUICK" = 1 ]; then
    N_FAST=5000000; N_MID=200000; N_LARSON=1000000; LARSON_ROUNDS=20; N_XMALLOC=600000; N_CACHE=50000
    N_MSTRESS=200000; MSTRESS_SLOTS=2000; N_LARGE=200; N_BIGBUF=100; N_RDOUBLE=5000000; N_RSTEP=600000
    PY_SCALE=0.3; LUA_SCALE=0.2; SQL_ROWS=40000; GXX_FLAGS="-O1 -DUSE_REGEX=0 -DSCALE=1"
    REDIS_N=15000; RSS_MB=48; RSS_LAST_MS=1000; N_SHORT_THREADS=500; THREAD_ROUNDS=10
else
    N_FAST=50000000; N_MID=2000000; N_LARSON=20000000; LARSON_ROUNDS=50; N_XMALLOC=10000000; N_CACHE=500000
    N_MSTRESS=4000000; MSTRESS_SLOTS=5000; N_LARGE=1500; N_BIGBUF=1000; N_RDOUBLE=100000000; N_RSTEP=10000000
    PY_SCALE=2; LUA_SCALE=1; SQL_ROWS=200000; GXX_FLAGS="-O2 -DUSE_REGEX=1 -DSCALE=6"
    REDIS_N=100000; RSS_MB=300; RSS_LAST_MS=3000; N_SHORT_THREADS=2000; THREAD_ROUNDS=50
fi
CACHE_THREADS=$NPROC; [ "$CACHE_THREADS" -lt 2 ] && CACHE_THREADS=2
REDIS_TESTS=set,get,incr,lpush,lpop,sadd,hset,zadd,mset
REDIS_N_TESTS=9

# Prints the command line of a C benchmark, or nothing for a real program.
c_bench_cmd() {
    case "$1" in
        fast-lifo)      echo "$OUT/fastpath mode=lifo n=$N_FAST" ;;
        fast-batch)     echo "$OUT/fastpath mode=batch n=$N_FAST" ;;
        mid-batch)      echo "$OUT/fastpath mode=batch name=mid-batch min=8192 max=40960 batch=10 same=1 live=2 n=$N_MID" ;;
        larson-*)       echo "$OUT/larson threads=${1#larson-} ops=$N_LARSON rounds=$LARSON_ROUNDS" ;;
        xmalloc-*)      echo "$OUT/xmalloc threads=${1#xmalloc-} ops=$N_XMALLOC" ;;
        cache-thrash)   echo "$OUT/cache mode=thrash threads=$CACHE_THREADS iters=$N_CACHE writes=1000" ;;
        cache-scratch)  echo "$OUT/cache mode=scratch threads=$CACHE_THREADS iters=$N_CACHE writes=1000" ;;
        mstress)        echo "$OUT/mstress threads=4 slots=$MSTRESS_SLOTS ops=$N_MSTRESS" ;;
        large)          echo "$OUT/large ops=$N_LARGE" ;;
        bigbuf)         echo "$OUT/bigbuf ops=$N_BIGBUF live=20" ;;
        realloc-double) echo "$OUT/realloc mode=double ops=$N_RDOUBLE" ;;
        realloc-step)   echo "$OUT/realloc mode=step ops=$N_RSTEP" ;;
        rss-recovery)   echo "$OUT/rss threads=4 mb=$RSS_MB last_ms=$RSS_LAST_MS" ;;
        threads-300)    echo "$OUT/threads alive=300 short=$N_SHORT_THREADS rounds=$THREAD_ROUNDS" ;;
    esac
}

selected() { # bench: is it in $BENCH (or is $BENCH empty)?
    [ -z "$BENCH" ] && return 0
    local w
    for w in $BENCH; do
        case "$1" in "$w" | "$w"-[0-9]*) return 0 ;; esac
    done
    return 1
}

if [ "${1:-}" = --list ]; then
    echo $ALL_BENCHES
    exit 0
fi
[ $# -eq 0 ] || die "no arguments but --list; the knobs are QUICK=1, REPS=, BENCH=, ALLOCATORS="

BENCHES=""
for b in $ALL_BENCHES; do selected "$b" && BENCHES="$BENCHES $b"; done
BENCHES=${BENCHES# }
[ -n "$BENCHES" ] || die "BENCH='$BENCH' selects no benchmark (see: bash bench/run.sh --list)"
for w in $BENCH; do
    found=0
    for b in $ALL_BENCHES; do case "$b" in "$w" | "$w"-[0-9]*) found=1 ;; esac; done
    [ $found = 1 ] || die "unknown benchmark '$w' (see: bash bench/run.sh --list)"
done

# ---------------------------------------------------------- the allocators
alloc_init

# ---------------------------------------------------------- dependencies
# Installs what is missing with apt-get; names what still is and stops.
# Nothing is skipped: a benchmark or an allocator that was asked for runs.
MISSING_PKGS=""
need() { # path-or-command package
    if [ "${1#/}" != "$1" ]; then [ -e "$1" ] && return 0
    else command -v "$1" >/dev/null 2>&1 && return 0; fi
    case " $MISSING_PKGS " in *" $2 "*) ;; *) MISSING_PKGS="$MISSING_PKGS $2" ;; esac
}
need gcc gcc
need make make
need /usr/bin/time time
need timeout coreutils
need gnuplot gnuplot-nox
need "$PY" python3
for a in $ALLOCATORS; do
    case "$a" in
        jemalloc | mimalloc | tcmalloc) need "${ALLOC_LIB[$a]}" "$(alloc_package "$a")" ;;
    esac
done
for b in $BENCHES; do
    case "$b" in
        lua)    need lua5.4 lua5.4 ;;
        sqlite) need sqlite3 sqlite3 ;;
        gxx)    need g++ g++ ;;
        redis)  need redis-server redis-server; need redis-benchmark redis-tools; need redis-cli redis-tools ;;
    esac
done
if [ -n "$MISSING_PKGS" ]; then
    note "installing:$MISSING_PKGS"
    # -o DPkg::Lock::Timeout waits for another apt/dpkg run instead of failing
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 $MISSING_PKGS >&2; }
    if ! apt_install; then
        apt-get update -q -o DPkg::Lock::Timeout=900 >&2
        apt_install || die "could not install:$MISSING_PKGS (install them and run again)"
    fi
fi

# ---------------------------------------------------------- build
mkdir -p "$OUT" "$LOGS" "$RESULTS"
BENCH_CFLAGS="-std=c11 -O2 -g -pthread -Wall -Wextra"
for prog in fastpath larson xmalloc cache mstress large bigbuf realloc rss threads which_malloc; do
    if [ ! -x "$OUT/$prog" ] || [ "bench/$prog.c" -nt "$OUT/$prog" ] || [ bench/bench.h -nt "$OUT/$prog" ]; then
        gcc $BENCH_CFLAGS -o "$OUT/$prog" "bench/$prog.c" -ldl || die "cannot build bench/$prog.c"
    fi
done
alloc_build_helpers
alloc_take_tide

# ---------------------------------------------------------- is it really them?
# A test program (bench/which_malloc.c), then every real program of the suite
# through the dynamic linker's own record of its symbol bindings.
alloc_check_which_malloc
REAL_PROGS=""
for b in $BENCHES; do
    case "$b" in
        python) REAL_PROGS="$REAL_PROGS $PY" ;;
        lua)    REAL_PROGS="$REAL_PROGS $(command -v lua5.4)" ;;
        sqlite) REAL_PROGS="$REAL_PROGS $(command -v sqlite3)" ;;
        gxx)    REAL_PROGS="$REAL_PROGS $(command -v g++) $(g++ -print-prog-name=cc1plus)" ;;
        redis)  REAL_PROGS="$REAL_PROGS $(command -v redis-server)" ;;
    esac
done
alloc_check_bindings $REAL_PROGS
note "checked: malloc comes from the allocator under test in which_malloc and in:$REAL_PROGS"

# ---------------------------------------------------------- one run
TMP=$(mktemp -d /tmp/tide-bench.XXXXXX)
REDIS_PID=""
cleanup() {
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Arithmetic on bash's own clock ($EPOCHREALTIME, "seconds.micros"), so that
# a run costs as few extra processes as possible: on a loaded machine every
# fork is slow.  elapsed T0 T1 sets WALL to T1 - T0 in seconds.
elapsed() {
    local us=$(( 10#${2/./} - 10#${1/./} ))
    printf -v WALL '%d.%06d' $((us / 1000000)) $((us % 1000000))
}

# timed LOG ALLOC PROGRAM ARGS...: runs it under ALLOC with stdout+stderr to
# LOG; sets WALL (seconds, measured here), CPU (user+sys seconds of the
# program and its children), RSS (peak of the largest process, KiB) and RC
# (exit status; 124 on time-out).
timed() {
    local log=$1 a=$2 t0 t1 line last="" u s cs; shift 2
    alloc_env "$a" "$1"
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M %U %S' -o "$TMP/time" timeout -k 5 "$TIMEOUT" "${PREFIX[@]}" "$@" >"$log" 2>&1
    RC=$?
    t1=$EPOCHREALTIME
    elapsed "$t0" "$t1"
    while read -r line; do last=$line; done <"$TMP/time"   # after "Command exited with..."
    read -r RSS u s <<<"$last"
    if [[ "$u" =~ ^[0-9]+\.[0-9][0-9]$ && "$s" =~ ^[0-9]+\.[0-9][0-9]$ ]]; then
        cs=$(( 10#${u/./} + 10#${s/./} ))
        printf -v CPU '%d.%02d' $((cs / 100)) $((cs % 100))
    else
        RSS=NA; CPU=NA
    fi
}

sed "s/@ROWS@/$SQL_ROWS/" bench/programs/workload.sql >"$TMP/workload.sql"

# redis-server under the allocator, redis-benchmark (the client, on the
# system allocator) against it on 127.0.0.1.  VALUE is the geometric mean of
# the requests per second of the tests; RSS the server's peak (VmHWM); CPU
# the server's user+sys time.
run_redis() { # alloc log
    local a=$1 log=$2 port try i up t0 t1 rates srvlog
    srvlog=${log%.log}.server.log
    alloc_env "$a" redis-server
    up=0
    for try in 1 2 3; do
        # below the kernel's ephemeral range (32768-60999): no client socket holds it
        port=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue   # someone listens there
        "${PREFIX[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --logfile "$srvlog" &
        REDIS_PID=$!
        for i in $(seq 200); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then up=1; break; fi
            sleep 0.05
        done
        [ $up = 1 ] && break
        kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=""
    done
    if [ $up = 0 ]; then
        { echo "redis-server did not answer PING (3 tries); its log:"; cat "$srvlog"; } >"$log" 2>&1
        RC=1; STATUS=fail; return
    fi
    t0=$EPOCHREALTIME
    timeout -k 5 "$TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -q -n "$REDIS_N" -P 16 \
        -r 100000 -d 100 -t "$REDIS_TESTS" >"$log" 2>&1
    RC=$?
    t1=$EPOCHREALTIME
    elapsed "$t0" "$t1"
    RSS=$(awk '/^VmHWM/ {print $2}' "/proc/$REDIS_PID/status" 2>/dev/null)
    CPU=$(awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$REDIS_PID/stat" 2>/dev/null)
    [ -n "$RSS" ] || { RC=1; echo "redis-server died during the run" >>"$log"; }
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=""
    rates=$(tr '\r' '\n' <"$log" | awk -v want="$REDIS_N_TESTS" '/requests per second/ {
        for (i = 1; i < NF; i++) if ($(i+1) == "requests") { s += log($i); n++ } }
        END { if (n == want) printf "%.1f", exp(s / n) }')
    if [ "$RC" = 0 ] && [ -n "$rates" ]; then VALUE=$rates; else STATUS=fail; fi
    UNIT=req/s
    RSS=${RSS:-NA}; CPU=${CPU:-NA}
}

# run_one BENCH ALLOC REP: runs it, sets VALUE UNIT WALL CPU RSS RC STATUS.
run_one() {
    local b=$1 a=$2 r=$3 cmd log line metric
    log=$LOGS/$b.$a.$r.log
    VALUE=NA; UNIT=s; STATUS=ok; WALL=NA; CPU=NA; RSS=NA; RC=0; DETAIL=
    cmd=$(c_bench_cmd "$b")
    if [ -n "$cmd" ]; then
        timed "$log" "$a" $cmd
        VALUE=""; metric=""
        while read -r line; do
            if [[ "$line" =~ ^RESULT\ .*\ metric=([^ ]+)\ value=([^ ]+)\ *(.*)$ ]]; then
                metric=${BASH_REMATCH[1]}; VALUE=${BASH_REMATCH[2]}; DETAIL=${BASH_REMATCH[3]//,/;}
            fi
        done <"$log"
        # ratio: a fraction where lower is better (rss-recovery), that
        # bench/report.py keeps out of the speed and peak RSS tables
        case "$metric" in ops_per_s) UNIT=ops/s ;; ratio) UNIT=ratio ;; *) UNIT=s ;; esac
        if [ "$RC" != 0 ] || [ -z "$VALUE" ]; then STATUS=fail; VALUE=NA; fi
        return
    fi
    case "$b" in
        python) PYTHONMALLOC=malloc timed "$log" "$a" "$PY" bench/programs/objects.py "$PY_SCALE" ;;
        lua)    timed "$log" "$a" lua5.4 bench/programs/tables.lua "$LUA_SCALE" ;;
        sqlite) timed "$log" "$a" sqlite3 -bail :memory: ".read $TMP/workload.sql" ;;
        gxx)    timed "$log" "$a" g++ -std=c++17 $GXX_FLAGS -c bench/programs/templates.cpp -o "$TMP/templates.o" ;;
        redis)  run_redis "$a" "$log"; return ;;
    esac
    VALUE=$WALL
    [ "$RC" = 0 ] || { STATUS=fail; VALUE=NA; }
}

# Every real program prints the same checksum under every allocator: a
# different one means an allocator changed what the program computed.
declare -A EXPECTED_OUTPUT
check_output() { # bench alloc log: sets STATUS=fail on a differing checksum
    local out
    case "$1" in python | lua | sqlite) ;; *) return ;; esac
    out=$(grep -v '^ *$' "$3" | md5sum | cut -c1-32)
    if [ -z "${EXPECTED_OUTPUT[$1]:-}" ]; then
        EXPECTED_OUTPUT[$1]=$out
    elif [ "${EXPECTED_OUTPUT[$1]}" != "$out" ]; then
        echo "output differs from the first run of $1 (see the other logs)" >>"$3"
        STATUS=fail
    fi
}

# ---------------------------------------------------------- the runs
DATE=$(date +%Y-%m-%dT%H:%M:%S)
STAMP=$(date +%Y%m%d-%H%M%S)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo none)
if [ -n "${TIDE_LIB:-}" ]; then COMMIT="$COMMIT+lib"; note "tide is $TIDE_LIB"
elif [ -n "${TIDE_REV:-}" ]; then COMMIT=$rev; note "tide is a clean build of $rev"
else git diff --quiet HEAD -- src include Makefile 2>/dev/null || COMMIT="$COMMIT+dirty"; fi
MACHINE=$(uname -n)
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo | tr ',' ';')
SUFFIX=""; [ "$QUICK" = 1 ] && SUFFIX=-quick
CSV=$RESULTS/$STAMP-${COMMIT%+*}$SUFFIX.csv
echo "machine,nproc,cpu,date,commit,quick,bench,allocator,rep,value,unit,wall_s,cpu_s,rss_kb,status,load1,detail" >"$CSV"

n_alloc=$(echo $ALLOCATORS | wc -w)
n_total=$(( $(echo "$BENCHES" | wc -w) * n_alloc * REPS ))
read -r load _ </proc/loadavg
note "tide bench: $(echo "$BENCHES" | wc -w) benchmarks x [$ALLOCATORS] x $REPS reps$([ "$QUICK" = 1 ] && echo ' (QUICK)'), $NPROC cores, commit $COMMIT, logs in $LOGS"
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    note "warning: load average is $load before the start: other processes are using the CPU, figures will be noisy"
fi

n_fail=0
k=0
SECONDS=0
read -r -a ALLOC_ARR <<<"$ALLOCATORS"
for rep in $(seq "$REPS"); do
    # rotate: rep 1 runs tide glibc jemalloc..., rep 2 glibc jemalloc ... tide, ...
    order=()
    for i in $(seq 0 $((n_alloc - 1))); do order+=("${ALLOC_ARR[$(( (i + rep - 1) % n_alloc ))]}"); done
    for b in $BENCHES; do
        for a in "${order[@]}"; do
            k=$((k + 1))
            printf '[%3d/%d rep %d/%d %4ds] %-15s %-9s' "$k" "$n_total" "$rep" "$REPS" "$SECONDS" "$b" "$a" >&2
            read -r load _ </proc/loadavg
            run_one "$b" "$a" "$rep"
            [ "$STATUS" = ok ] && check_output "$b" "$a" "$LOGS/$b.$a.$rep.log"
            if [ "$STATUS" = ok ]; then
                printf ' %12s %-5s %7s KiB  load %s\n' "$VALUE" "$UNIT" "$RSS" "$load" >&2
            else
                printf ' FAILED (exit %s, see %s)\n' "$RC" "$LOGS/$b.$a.$rep.log" >&2
                n_fail=$((n_fail + 1))
            fi
            echo "$MACHINE,$NPROC,$CPU_MODEL,$DATE,$COMMIT,$QUICK,$b,$a,$rep,$VALUE,$UNIT,$WALL,$CPU,$RSS,$STATUS,$load,$DETAIL" >>"$CSV"
        done
    done
done
note "done in $SECONDS s"

# latest.{csv,png} are the figures docs/benchmarks.md shows: only a run of
# the whole suite against every peer (Debian's and any PEERS) replaces them.
if [ -z "$BENCH" ] && [ "$ALLOCATORS" = "$ALL_ALLOCATORS" ] && [ -z "${TIDE_LIB:-}" ]; then
    cp "$CSV" "$RESULTS/latest$SUFFIX.csv"
    "$PY" bench/report.py --png "$RESULTS/latest$SUFFIX.png" "$RESULTS/latest$SUFFIX.csv" || die "bench/report.py failed"
    echo "results: $CSV, $RESULTS/latest$SUFFIX.csv, $RESULTS/latest$SUFFIX.png"
else
    "$PY" bench/report.py --png "${CSV%.csv}.png" "$CSV" || die "bench/report.py failed"
    echo "results: $CSV$([ -f "${CSV%.csv}.png" ] && echo ", ${CSV%.csv}.png") (a partial run: latest$SUFFIX.* left as they were)"
fi
if [ "$n_fail" -gt 0 ]; then
    echo "$n_fail runs FAILED; their logs are in $LOGS" >&2
    exit 1
fi
exit 0
