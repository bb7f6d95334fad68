#!/usr/bin/env bash
# api/crash.sh — the crash report (TIDE_CONF crash_report=1, on with guard=1;
# docs/hardening.md), through tests/api/progs/crash_prog.c: a SIGSEGV or
# SIGBUS is described in heap terms in one report and the process dies of
# the signal:
#   - a write at 0x10 is "not heap memory"; a write into a live 48-byte
#     block (its page made inaccessible) names the block, its size class,
#     the offset into it, its span and its heap; a read of a large block
#     names the large block; a SIGBUS is reported as one;
#   - a stack overflow of the main thread, and of a thread that allocated,
#     is reported (the handler runs on the signal stack tide lends to a
#     thread with a heap) and named a likely stack overflow;
#   - a crash while another thread holds tide's heap registry lock (stopped
#     in the embedder's suspender hook) is reported, naming the lock and its
#     holder, and the process dies: the handler takes no lock;
#   - eight threads crashing at once make one report;
#   - a handler the program installed before tide takes the fault, without a
#     report (static build);
#   - the thread heaps are listed.
# Without crash_report the same crashes print nothing (crash_off_silent).
# th-timeout: 300
. "$ROOT/tests/api/helpers.bash"
api_setup crash
api_build crash_prog
cd "$tmp" || exit 1

SEGV=$((128 + 11)) BUS=$((128 + 7))

# check NAME STATUS RE...: the status, exactly one first line, and a line
# matching each RE; prints what is wrong
check() {
    local name=$1 want=$2 re
    shift 2
    if [ "$st" -ne "$want" ]; then
        echo "status $st, want $want: $(snip "$name.out") $(snip "$name.err")"
        return
    fi
    local n
    n=$(grep -cE '^tide: SIG(SEGV|BUS) on address' "$name.err")
    [ "$n" = 1 ] || { echo "$n first lines, want 1: $(snip "$name.err")"; return; }
    for re in "$@"; do
        grep -qE "$re" "$name.err" || { echo "no line /$re/ in: $(snip "$name.err")"; return; }
    done
}

api_run null crash_report=1 null
result crash_not_heap "$(check null $SEGV '^tide: SIGSEGV on address 0x10 \(write, address not mapped\) in thread [0-9]+, pc 0x[0-9a-f]+ \(.*crash-prog\+0x[0-9a-f]+\)$' \
    '^tide: 0x10 is not heap memory$' '^tide: 1 thread heaps in use' '^tide:   heap 1: thread [0-9]+ \(this one\), ')"

# shared_blocks=0: the thread's first block comes from a span of its own
api_run small crash_report=1,shared_blocks=0 small
read -r _ blk _ < <(grep '^block ' small.out)
result crash_small_block "$(check small $SEGV "^tide: $(printf 0x%x $((blk + 8))) is 8 bytes into the 48-byte block at $blk \\(size class 3; live or free: its memory is unreadable\\) of span 0x[0-9a-f]+-0x[0-9a-f]+, heap 1 \\(thread [0-9]+\\)\$")"

# with shared_threads=2, once a second thread has had a heap, it comes from
# a shared heap's span (src/heap.c)
api_run small_shared crash_report=1,shared_threads=2 small-shared
read -r _ blk _ < <(grep '^block ' small_shared.out)
result crash_small_shared_block "$(check small_shared $SEGV "^tide: $(printf 0x%x $((blk + 8))) is 8 bytes into the 48-byte block at $blk \\(size class 3; live or free: its memory is unreadable\\) of span 0x[0-9a-f]+-0x[0-9a-f]+, a shared heap \\(a thread's first blocks of a class\\)\$")"

api_run large crash_report=1 large
read -r _ blk _ < <(grep '^block ' large.out)
result crash_large_block "$(check large $SEGV "^tide: SIGSEGV on address $(printf 0x%x $((blk + 100))) \\(read, no access\\)" \
    "^tide: $(printf 0x%x $((blk + 100))) is 100 bytes into the live large block of 200704 bytes at $blk\$")"

api_run bus crash_report=1 bus
read -r _ addr < <(grep '^addr ' bus.out)
result crash_sigbus "$(check bus $BUS "^tide: SIGBUS on address $addr \\((read, )?no such memory" "^tide: $addr is not heap memory")"

api_run stack crash_report=1 stack
result crash_stack_overflow "$(check stack $SEGV 'is not heap memory \([0-9]+ bytes (below|from) the stack pointer: a stack overflow\?\)$')"
api_run tstack crash_report=1 thread-stack
result crash_thread_stack_overflow "$(check tstack $SEGV 'is not heap memory \([0-9]+ bytes (below|from) the stack pointer: a stack overflow\?\)$' \
    '^tide: 2 thread heaps in use')"

api_run held crash_report=1,decay_ms=50 held
if ! grep -q '^held$' held.out; then
    fail crash_lock_held "the scavenger never held the lock: status $st: $(snip held.out) $(snip held.err)"
else
    result crash_lock_held "$(check held $SEGV '^tide: 0x10 is not heap memory$' \
        "^tide: held:.* the heap registry's lock by thread [0-9]+, tide's scavenger" "its lock held by thread [0-9]+, tide's scavenger\$")"
fi

ok=1
for i in 1 2 3; do
    api_run thr crash_report=1 threads 8
    msg=$(check thr $SEGV '^tide: 0x10 is not heap memory$')
    if [ -n "$msg" ]; then fail crash_one_report "run $i: $msg"; ok=0; break; fi
done
[ $ok = 1 ] && pass crash_one_report

if api_static crash_program_handler_first crash_prog crash-static; then
    { TIDE_CONF=crash_report=1 timeout 60 ./crash-static handled >handled.out 2>handled.err; } 2>/dev/null
    st=$?
    if [ $st -ne 42 ] || [ "$(cat handled.out)" != handled ] || grep -q '^tide: ' handled.err; then
        fail crash_program_handler_first "status $st, want 42 and no report: $(snip handled.out) $(snip handled.err)"
    else
        pass crash_program_handler_first
    fi
fi

bad=""
for c in null small stack; do
    { env -u TIDE_CONF timeout 60 "$prog" $c >off.out 2>off.err; } 2>/dev/null
    st=$?
    [ $st -eq $SEGV ] && ! grep -q '^tide: ' off.err || bad="$bad $c(status $st: $(snip off.err))"
done
if [ -z "$bad" ]; then pass crash_off_silent; else fail crash_off_silent "$bad"; fi
exit $rc
