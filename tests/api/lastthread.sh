#!/usr/bin/env bash
# api/lastthread.sh — tide's threads never keep a process alive: a program
# whose first thread calls pthread_exit ends when its last thread ends, as
# without tide (glibc then calls exit(0), so atexit handlers run), through
# tests/api/progs/lastthread_prog.c.  The scavenger, once it runs, would
# otherwise be the last thread, asleep for good with every signal blocked:
# the process hung, and SIGTERM stayed pending (python3's test_threading
# hung so).  Each case in every way the program's threads can end:
#   - worker threads of small, large and huge blocks end after main;
#   - worker threads that never allocate (tide is told of no exit);
#   - main alone;
#   - main alone after a collection of the GC heap, whose helper marker
#     threads (one per CPU beyond the first) go when idle too;
#   - a forked child whose first thread (a thread of the parent) and a
#     second one end with pthread_exit.
# The leak check at exit sees the roots when the last thread runs it.
# Where no scavenger can start, pages go back at free.
# And the scavenger goes once it has nothing to do, and the next burst
# starts another, whose pages still go back (lastthread_linger).
# th-timeout: 200
. "$ROOT/tests/api/helpers.bash"
api_setup lastthread
api_build lastthread_prog
cd "$tmp" || exit 1

# run NAME ARGS...: api_run's, with SIGKILL at 30 s: a process kept alive
# by a thread that blocks every signal never takes timeout's SIGTERM
run() {
    local name=$1
    shift
    TIDE_CONF= timeout -s KILL 30 "$prog" "$@" >"$name.out" 2>"$name.err"
    st=$?
}

# ends NAME ARGS...: the program ends within 5 s of being started, with
# status 0, having started the scavenger and run its atexit handler
ends() {
    local name=$1 t0 ms
    shift
    t0=$(date +%s%N)
    run "$name" "$@"
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ "$st" -ne 0 ]; then
        fail "$name" "status $st after $ms ms (137: still running at 30 s): $(snip "$name.out")"
    elif ! grep -q '^scavenger up' "$name.out"; then
        fail "$name" "the scavenger never ran: $(snip "$name.out")"
    elif ! grep -q '^atexit' "$name.out"; then
        fail "$name" "no atexit handler ran: $(snip "$name.out")"
    elif [ "$ms" -gt 5000 ]; then
        fail "$name" "took $ms ms"
    else
        pass "$name"
    fi
}

# ThreadSanitizer's runtime has a thread of its own that keeps such a
# process alive without tide too, and refuses threads after a fork.
if [ "${SANITIZE:-}" = thread ]; then
    for n in small_workers large_workers huge_workers heapless_workers main_alone gc_helpers \
             leak_check_by_scavenger leak_check_by_worker no_threads fork_child; do
        skip lastthread_$n "ThreadSanitizer's own thread keeps the process alive (and no thread after fork)"
    done
    run lastthread_linger linger
    result lastthread_linger "$(grep -q '^returned$' lastthread_linger.out || echo "$(snip lastthread_linger.out)")"
    exit $rc
fi

ends lastthread_small_workers workers 48
ends lastthread_large_workers workers 300000
ends lastthread_huge_workers workers $((20 << 20))
ends lastthread_heapless_workers heapless
ends lastthread_main_alone alone
ends lastthread_gc_helpers gc
if [ "$(nproc)" -gt 1 ] && ! grep -q '^helpers [1-9]' lastthread_gc_helpers.out; then
    fail lastthread_gc_helpers_ran "no helper thread during the collection: $(snip lastthread_gc_helpers.out)"
fi

# The leak check at exit, run by the process's last thread (the scavenger,
# or with decay_ms=-1 a worker): the first thread's /proc/self/maps is
# empty once it called pthread_exit, and the check saw no root at all
# ("9086 bytes leaked in 10 blocks", stdout's buffer among them).
for who in scavenger:leak_check=full worker:leak_check=full,decay_ms=-1; do
    name=lastthread_leak_check_by_${who%%:*} c=${who#*:}
    TIDE_CONF=$c timeout -s KILL 30 "$prog" workers 48 >"$name.out" 2>"$name.err"
    st=$?
    result "$name" "$([ "$st" -eq 0 ] || echo "status $st")$(grep -q '^tide: leak check: no leaks; [1-9]' "$name.err" ||
        echo " want no leaks: $(grep '^tide: leak check' "$name.err")")"
done

# No scavenger can start (a seccomp filter refuses new threads, as a
# sandbox does): freed pages go back at free, as with decay_ms=0, rather
# than never (the build before kept the whole burst).
run lastthread_no_threads nothreads
burst=$(sed -n 's/^burst //p' lastthread_no_threads.out)
kept=$(sed -n 's/^kept //p' lastthread_no_threads.out)
if grep -q '^filter refused\|^thread made' lastthread_no_threads.out; then
    skip lastthread_no_threads "$(head -n 1 lastthread_no_threads.out)"
else
    result lastthread_no_threads "$(
        if [ "$st" -ne 0 ] || [ -z "$burst" ] || [ -z "$kept" ]; then
            echo "status $st: $(snip lastthread_no_threads.out)"
        elif [ "$kept" -gt $((burst / 8)) ]; then
            echo "$kept KiB of a burst of $burst KiB still resident 100 ms after the frees"
        fi)"
fi

run lastthread_fork_child fork
result lastthread_fork_child "$(grep -q '^child 0$' lastthread_fork_child.out ||
    echo "status $st: $(snip lastthread_fork_child.out)")"

run lastthread_linger linger
gone=$(sed -n 's/^gone //p' lastthread_linger.out)
result lastthread_linger "$(
    if [ "$st" -ne 0 ] || [ -z "$gone" ] || [ "$gone" -lt 0 ]; then
        echo "status $st, the scavenger did not go: $(snip lastthread_linger.out)"
    elif ! grep -q '^returned$' lastthread_linger.out; then
        echo "after it went: $(snip lastthread_linger.out)"
    fi)"
exit $rc
