# tests/programs/redis.sh — redis-server on 127.0.0.1 (a random free port)
# under tide: redis-cli SET/GET/lists/hashes/sets/sorted sets with replies
# compared against a redis-server under its own allocator, then
# redis-benchmark with a bounded number of requests, then a clean SHUTDOWN.
#
# Debian's redis-server links libjemalloc.so.2 itself.  Under LD_PRELOAD,
# libtide.so comes before libjemalloc in the lookup order, so the calls
# redis makes to malloc, calloc, realloc, free and malloc_usable_size bind
# to tide; what tide does not define (mallctl, nallocx, malloc_stats_print,
# and C++ operator new/delete, which jemalloc also exports) still binds to
# jemalloc.  The test checks that this split is what happens: libtide.so is
# mapped in the server (/proc/PID/maps) and its malloc is tide's (the probe),
# and after loading data, INFO memory shows redis's own count (used_memory,
# summed from malloc_usable_size: tide's) far above what jemalloc says it has
# allocated (allocator_allocated, from mallctl), while under jemalloc alone
# the two agree.  The figures are printed on stderr.
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=redis

need "$name" redis-server redis-cli redis-benchmark || exit 0
pt_setup "$name" || exit 0

RPID=
cleanup_redis() {
    if [ -n "$RPID" ] && kill -0 "$RPID" 2>/dev/null; then
        kill "$RPID" 2>/dev/null
        sleep 0.5
        kill -9 "$RPID" 2>/dev/null
    fi
    pt_cleanup
}
trap cleanup_redis EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_redis sys|tide: starts a server; sets PORT, SPID (the timeout
# wrapper's pid) and RPID (the server's, from INFO).  False if it did not
# come up on any of a few random ports.
start_redis() {
    local w=$1 _try _k
    for _try in 1 2 3 4 5 6 7 8; do
        PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_busy "$PORT" && continue
        mkdir -p "$PT_TMP/$w"
        "run_$w" "$PT_TMP/$w.log" redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$PT_TMP/$w" --logfile "$PT_TMP/$w/redis.log" --daemonize no --protected-mode yes \
            >"$PT_TMP/$w.srv.out" 2>&1 &
        SPID=$!
        for _k in $(seq 1 100); do
            if [ "$(timeout 5 redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; then
                RPID=$(timeout 5 redis-cli -p "$PORT" info server | tr -d '\r' | sed -n 's/^process_id://p')
                return 0
            fi
            kill -0 "$SPID" 2>/dev/null || break   # exited: port taken after all?
            sleep 0.1
        done
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
    done
    return 1
}

# stop_redis: SHUTDOWN NOSAVE and the server's exit status (in STATUS).
stop_redis() {
    timeout 10 redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1
    wait "$SPID"
    STATUS=$?
    RPID=
}

# The data commands (one awk: process starts are slow here).
awk 'BEGIN {
    for (i = 1; i <= 300; i++) {
        pad = ""; for (k = 0; k < i * 37 % 900; k++) pad = pad "x"
        printf "SET key:%d value-%d-%s\n", i, i, pad
        printf "APPEND key:%d -appended\n", i
        printf "RPUSH list:%d item%d item%d\n", i % 10, i, i * 2
        printf "HSET hash:%d field%d %d\n", i % 7, i, i * i
        printf "SADD set:%d member%d\n", i % 5, i % 120
        printf "ZADD zset %d m%d\n", i * 7919 % 1000, i
        printf "INCRBY counter %d\n", i
    }
    for (i = 1; i <= 300; i += 7) { printf "GET key:%d\nSTRLEN key:%d\n", i, i }
    split("0 3 9", ls, " ")
    for (k = 1; k <= 3; k++) { printf "LRANGE list:%d 0 -1\nLLEN list:%d\n", ls[k], ls[k] }
    print "HGETALL hash:3"; print "HLEN hash:5"; print "SCARD set:2"; print "SISMEMBER set:1 member41"
    print "ZRANGE zset 0 20 WITHSCORES"; print "ZRANK zset m100"; print "GET counter"
    for (i = 3; i <= 300; i += 3) printf "DEL key:%d\n", i
    print "DBSIZE"
    big = "y"; while (length(big) < 200000) big = big big
    printf "SET big %s\n", substr(big, 1, 200000)
    print "STRLEN big"; print "GETRANGE big 199990 -1"
    print "LPOP list:4"; print "RPOP list:4"; print "SPOP set:0 3"; print "EXISTS key:1 key:3 key:300"
}' >"$PT_TMP/cmds.txt"
# (SPOP picks at random: only the count of its reply is compared.)

run_cmds() {  # run_cmds sys|tide
    timeout 60 redis-cli -p "$PORT" <"$PT_TMP/cmds.txt" >"$PT_TMP/$1.replies" 2>"$PT_TMP/$1.clierr"
}

mem_field() { tr -d '\r' <"$1" | sed -n "s/^$2://p"; }

# ---- under the server's own allocator (jemalloc) ----
if ! start_redis sys; then
    fail "$name" "redis-server (system allocator) did not start: $(tail -n 3 "$PT_TMP/sys/redis.log" "$PT_TMP/sys.srv.out" 2>/dev/null | tr '\n' '|' | cut -c1-300)"
    exit 0
fi
run_cmds sys
ran_ok "$name" "redis-cli against redis-server under the system allocator" $? "$PT_TMP/sys.clierr" || exit 0
timeout 10 redis-cli -p "$PORT" info memory >"$PT_TMP/sys.mem"
stop_redis

# ---- under tide ----
if ! start_redis tide; then
    fail "$name" "redis-server under tide did not start: $(tail -n 3 "$PT_TMP/tide/redis.log" "$PT_TMP/tide.srv.out" 2>/dev/null | tr '\n' '|' | cut -c1-300)"
    exit 0
fi
if [ -z "$RPID" ] || ! grep -q '/libtide\.so' "/proc/$RPID/maps" 2>/dev/null; then
    fail "$name" "libtide.so is not mapped in redis-server (pid ${RPID:-?}, /proc/PID/maps)"
    exit 0
fi
jemalloc_mapped=no
grep -q 'libjemalloc' "/proc/$RPID/maps" && jemalloc_mapped=yes
run_cmds tide
ran_ok "$name" "redis-cli against redis-server under tide" $? "$PT_TMP/tide.clierr" || exit 0
timeout 10 redis-cli -p "$PORT" info memory >"$PT_TMP/tide.mem"
timeout -k 5 "$PT_LIMIT" redis-benchmark -h 127.0.0.1 -p "$PORT" -n 20000 -c 10 -P 4 -r 5000 -d 200 -q \
    -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100 >"$PT_TMP/bench.out" 2>"$PT_TMP/bench.err"
bench_status=$?
timeout 10 redis-cli -p "$PORT" info memory >"$PT_TMP/tide.mem2"
alive=$(timeout 5 redis-cli -p "$PORT" ping 2>/dev/null)
stop_redis

if grep -q -E 'crashed|ASSERTION|Guru Meditation' "$PT_TMP/tide/redis.log"; then
    fail "$name" "redis-server under tide crashed: $(grep -m 3 -E 'crashed|ASSERTION|Guru' "$PT_TMP/tide/redis.log" | tr '\n' '|')"
    exit 0
fi
ran_ok "$name" "redis-benchmark against redis-server under tide" $bench_status "$PT_TMP/bench.err" || exit 0
if [ "$alive" != PONG ]; then
    fail "$name" "redis-server under tide did not answer PING after redis-benchmark"
    exit 0
fi
n_tests=$(grep -c 'requests per second' "$PT_TMP/bench.out")
if [ "$n_tests" -lt 12 ]; then
    fail "$name" "redis-benchmark reported $n_tests of 12 tests: $(tr '\r' '\n' <"$PT_TMP/bench.out" | tail -n 3 | tr '\n' '|')"
    exit 0
fi
if [ "$STATUS" -ne 0 ]; then
    fail "$name" "redis-server under tide exited with status $STATUS after SHUTDOWN: $(tail -n 3 "$PT_TMP/tide/redis.log" | tr '\n' '|')"
    exit 0
fi
check_on_tide "$name" "$PT_TMP/sys.log" "$PT_TMP/tide.log" '/redis-(server|check-rdb)' || exit 0

# Replies: identical, but for SPOP's random members (compared by count).
sed 's/^member[0-9]*$/member/' "$PT_TMP/sys.replies" >"$PT_TMP/sys.cmp"
sed 's/^member[0-9]*$/member/' "$PT_TMP/tide.replies" >"$PT_TMP/tide.cmp"
same_output "$name" "the redis-cli replies" "$PT_TMP/sys.cmp" "$PT_TMP/tide.cmp" || exit 0
if [ "$(wc -l <"$PT_TMP/tide.replies")" -lt 2000 ]; then
    fail "$name" "only $(wc -l <"$PT_TMP/tide.replies") reply lines"
    exit 0
fi

# Who served the allocations: redis's count (tide's usable sizes) against
# jemalloc's own figure.
used_sys=$(mem_field "$PT_TMP/sys.mem" used_memory)
je_sys=$(mem_field "$PT_TMP/sys.mem" allocator_allocated)
used_tide=$(mem_field "$PT_TMP/tide.mem" used_memory)
je_tide=$(mem_field "$PT_TMP/tide.mem" allocator_allocated)
echo "redis: jemalloc mapped in the server under tide: $jemalloc_mapped; mem_allocator=$(mem_field "$PT_TMP/tide.mem" mem_allocator)" >&2
echo "redis: system run: used_memory=$used_sys allocator_allocated(jemalloc)=$je_sys" >&2
echo "redis: tide run:   used_memory=$used_tide allocator_allocated(jemalloc)=$je_tide" >&2
echo "redis: tide run after redis-benchmark: used_memory=$(mem_field "$PT_TMP/tide.mem2" used_memory) allocator_allocated(jemalloc)=$(mem_field "$PT_TMP/tide.mem2" allocator_allocated)" >&2
if [ -n "$used_sys" ] && [ -n "$je_sys" ] && [ -n "$used_tide" ] && [ -n "$je_tide" ]; then
    if [ $((je_sys * 2)) -lt "$used_sys" ]; then
        fail "$name" "under jemalloc alone, allocator_allocated ($je_sys) is not comparable to used_memory ($used_sys): the check below means nothing"
        exit 0
    fi
    if [ $((je_tide * 2)) -ge "$used_tide" ]; then
        fail "$name" "under tide, jemalloc still reports $je_tide bytes allocated of redis's $used_tide: jemalloc, not tide, serves redis"
        exit 0
    fi
fi
pass "$name"
