#!/usr/bin/env bash
# api/guard.sh — guarded sampling (TIDE_CONF guard=1, guard_rate=N;
# docs/hardening.md), through tests/api/progs/guard_prog.c:
#   - with guard_rate=1, each bug (an overflow by 1 byte written, the 16th
#     byte past the end read, an underflow by 1 byte, a use after free read
#     and written, a double free) at sizes 1, 13, 16, 100, 4096 and 65536
#     is reported in one report: its first line names the kind, the access,
#     the address, how far after, before or into the N-byte block it is and
#     where the block is; the access's (or the second free's) stack names
#     the function that did it, "allocated by" names the function that
#     allocated it and "freed by" the one that freed it; the process dies of
#     SIGSEGV (SIGABRT for a double free).  A block whose size is not a
#     multiple of 16 ends up to 15 bytes before the inaccessible page (its
#     start is 16-byte aligned): the 1-byte overflow lands in the slack and
#     is reported when the block is freed, naming that free, and the
#     process dies of SIGABRT;
#   - every allocation entry point (calloc, realloc, aligned_alloc,
#     posix_memalign, memalign, valloc, pvalloc) is guarded; a block moved
#     by realloc is in quarantine; a write into the slack is found by free;
#   - eight threads overflowing at once make exactly one report;
#   - a SIGSEGV handler the program installed before tide is called after
#     the report (static build); a forked child's use after free is caught;
#   - malloc_usable_size, tide_block_info, the heap walk and the stats see a
#     guarded block;
#   - at the default rate, a use after free repeated 200000 times in a run
#     is caught in at least 99 of 100 runs;
#   - by default no SIGSEGV or SIGBUS handler is installed (SigCgt), with
#     guard=1 both are; tools/tide-run --guard turns it on.
# Without guarding none of the bugs is caught (guard_off_catches_nothing).
# th-timeout: 900
. "$ROOT/tests/api/helpers.bash"
api_setup guard
api_build guard_prog
cd "$tmp" || exit 1

SEGV=$((128 + 11)) ABRT=$((128 + 6))

API_TIMEOUT=120   # for api_run

# frames HEADER_RE FILE: the function names of the stack after the first
# line matching HEADER_RE ("?" for a frame without one), on one line
frames() {
    awk -v re="$1" '
        found && /^    #[0-9]+ / { fn = "?"; if ($3 !~ /^\(/) { fn = $3; sub(/\+0x[0-9a-f]+$/, "", fn) } printf "%s ", fn; next }
        found { exit }
        $0 ~ re { found = 1 }' "$2"
}

plural() { if [ "$1" = 1 ]; then echo byte; else echo bytes; fi; }

# check_bug NAME KIND N ENTRY: runs one bug and checks its report; prints
# what is wrong (nothing when all is right)
check_bug() {
    local name=$1 kind=$2 n=$3 entry=$4
    api_run "$name" guard_rate=1 bug "$kind" "$n" "$entry"
    local blk size
    read -r _ blk size < <(grep '^block ' "$name.out")
    if [ -z "$blk" ]; then echo "no block line: $(snip "$name.out") $(snip "$name.err")"; return; fi
    local b=$((blk)) want_st=$SEGV line re access off where at_free=0
    case $kind in
        overflow-write)
            access=write off=$((b + size)) where="0 bytes after the $size-byte block"
            [ $((size % 16)) -ne 0 ] && at_free=1 want_st=$ABRT ;;
        overflow-read16) access=read off=$((b + size + 15)) where="15 bytes after the $size-byte block" ;;
        underflow-write) access=write off=$((b - 1)) where="1 byte before the $size-byte block" ;;
        uaf-read|uaf-write)
            access=${kind#uaf-} off=$((b + size / 2))
            where="$((size / 2)) $(plural $((size / 2))) into the freed $size-byte block" ;;
        double-free) want_st=$ABRT ;;
    esac
    local n_reports
    n_reports=$(grep -cE '^tide: (heap-buffer-overflow|heap-buffer-underflow|use-after-free|double-free):' "$name.err")
    line=$(grep -m1 '^tide: ' "$name.err")
    if [ "$kind" = double-free ]; then
        re="^tide: double-free: free\\($blk\\) of the freed $size-byte block at $blk \\(thread [0-9]+\\)\$"
    else
        local k=heap-buffer-overflow
        case $kind in underflow*) k=heap-buffer-underflow ;; uaf*) k=use-after-free ;; esac
        re="^tide: $k: $access at $(printf 0x%x $off), $where at $blk \\(thread [0-9]+\\)\$"
        [ $at_free = 1 ] && re="^tide: $k: $access at $(printf 0x%x $off), $where at $blk \\(found by free in thread [0-9]+\\)\$"
    fi
    if [ $st -ne $want_st ]; then
        echo "exit status $st, want $want_st: $(snip "$name.out") $(snip "$name.err")"
    elif [ "$n_reports" != 1 ]; then
        echo "$n_reports reports, want 1: $(snip "$name.err")"
    elif ! [[ $line =~ $re ]]; then
        echo "first line '$line', want /$re/"
    else
        local acc alloc freed
        if [ "$kind" = double-free ]; then
            acc=$(frames '^tide: the second free, by thread [0-9]+, at:$' "$name.err")
            [[ " $acc" == " victim_free "*" main "* ]] ||
                { echo "the second free's stack: '$acc', want victim_free ... main"; return; }
        elif [ $at_free = 1 ]; then
            acc=$(frames '^tide: the free that found it, by thread [0-9]+, at:$' "$name.err")
            [[ " $acc" == " victim_free "*" main "* ]] ||
                { echo "the free that found it: '$acc', want victim_free ... main"; return; }
            grep -q '^no fault$' "$name.out" || { echo "it faulted: $(snip "$name.out")"; return; }
        else
            acc=$(frames "^tide: the $access, by thread [0-9]+, at:\$" "$name.err")
            [[ " $acc" == " plant_bug "* ]] || { echo "the $access's stack: '$acc', want plant_bug first"; return; }
        fi
        alloc=$(frames '^tide: allocated by thread [0-9]+ at:$' "$name.err")
        [[ " $alloc" == " victim_alloc "*" main "* ]] ||
            { echo "allocated by: '$alloc', want victim_alloc ... main"; return; }
        case $kind in uaf*|double-free)
            freed=$(frames '^tide: freed by thread [0-9]+ at:$' "$name.err")
            [[ " $freed" == " victim_free "*" main "* ]] ||
                { echo "freed by: '$freed', want victim_free ... main"; return; } ;;
        *)
            ! grep -q '^tide: freed by' "$name.err" || { echo "a live block has a 'freed by' stack"; return; } ;;
        esac
    fi
}

# ---- the figure: every bug at every size, guard_rate=1 ---------------------------

for kind in overflow-write overflow-read16 underflow-write uaf-read uaf-write double-free; do
    bad=""
    for n in 1 13 16 100 4096 65536; do
        msg=$(check_bug "$kind-$n" "$kind" "$n" malloc)
        [ -n "$msg" ] && bad="$bad [size $n: $msg]"
    done
    if [ -z "$bad" ]; then pass "bug_$kind"; else fail "bug_$kind" "$bad"; fi
done

# ---- every entry point --------------------------------------------------------

bad=""
for entry in calloc realloc aligned_alloc posix_memalign memalign valloc pvalloc; do
    n=96
    case $entry in valloc|pvalloc) n=4096 ;; esac
    for kind in overflow-write uaf-write; do
        msg=$(check_bug "$entry-$kind" "$kind" "$n" "$entry")
        [ -n "$msg" ] && bad="$bad [$entry $kind: $msg]"
    done
done
if [ -z "$bad" ]; then pass entry_points; else fail entry_points "$bad"; fi

api_run ruaf guard_rate=1 realloc-uaf 100
read -r _ blk size < <(grep '^block ' ruaf.out)
freed=$(frames '^tide: freed by thread [0-9]+ at:$' ruaf.err)
if [ $st -ne $SEGV ] || ! grep -qE "^tide: use-after-free: read at 0x[0-9a-f]+, 50 bytes into the freed 100-byte block at $blk " ruaf.err; then
    fail realloc_moves_to_quarantine "status $st: $(snip ruaf.err)"
elif [[ " $freed" != " realloc_victim "* ]]; then
    fail realloc_moves_to_quarantine "freed by: '$freed', want realloc_victim first"
else
    pass realloc_moves_to_quarantine
fi

# ---- the slack, found by free --------------------------------------------------

api_run slack guard_rate=1 slack 100
read -r _ blk size < <(grep '^block ' slack.out)
re="^tide: heap-buffer-overflow: write at $(printf 0x%x $((blk + 100))), 0 bytes after the 100-byte block at $blk \\(found by free in thread [0-9]+\\)\$"
line=$(grep -m1 '^tide: ' slack.err)
fr=$(frames '^tide: the free that found it, by thread [0-9]+, at:$' slack.err)
if [ $st -ne $ABRT ] || ! grep -q '^written$' slack.out; then
    fail slack_checked_at_free "status $st, want $ABRT after 'written': $(snip slack.out) $(snip slack.err)"
elif ! [[ $line =~ $re ]]; then
    fail slack_checked_at_free "first line '$line', want /$re/"
elif [[ " $fr" != " victim_free "* ]]; then
    fail slack_checked_at_free "the free's stack '$fr', want victim_free first"
else
    pass slack_checked_at_free
fi

# ---- threads -----------------------------------------------------------------

ok=1
for i in 1 2 3 4 5; do
    api_run thr guard_rate=1 threads 8
    n=$(grep -cE '^tide: heap-buffer-overflow:' thr.err)
    if [ $st -ne $SEGV ] || [ "$n" != 1 ] || [ "$(grep -c '^tide: allocated by' thr.err)" != 1 ]; then
        fail one_report_for_many_threads "run $i: status $st, $n reports: $(snip thr.err)"
        ok=0
        break
    fi
done
[ $ok = 1 ] && pass one_report_for_many_threads

# ---- a handler of the program's, installed before tide (static build) ---------

if api_static chain_program_handler guard_prog guard-static; then
    { TIDE_CONF=guard_rate=1 timeout 60 ./guard-static chain >chain.out 2>chain.err; } 2>/dev/null
    st=$?
    read -r _ blk size < <(grep '^block ' chain.out)
    if [ $st -ne 42 ]; then
        fail chain_program_handler "status $st, want 42 (the program's handler): $(snip chain.out) $(snip chain.err)"
    elif ! grep -q "^program handler $(printf 0x%x $((blk + 96)))\$" chain.out; then
        fail chain_program_handler "the program's handler did not get the fault address: $(snip chain.out)"
    elif [ "$(grep -c '^tide: heap-buffer-overflow: write at' chain.err)" != 1 ]; then
        fail chain_program_handler "tide's report is missing: $(snip chain.err)"
    else
        pass chain_program_handler
    fi
fi

api_run fork guard_rate=1 fork 100
if [ $st -ne 0 ] || ! grep -q '^child signal 11$' fork.out || ! grep -q '^tide: use-after-free: write at' fork.err; then
    fail forked_child "status $st: $(snip fork.out) $(snip fork.err)"
else
    pass forked_child
fi

# ---- what sees a guarded block ---------------------------------------------------

api_run info guard_rate=1 info 100
if [ $st -ne 0 ] || [ "$(cat info.out)" != ok ]; then
    fail guarded_block_seen "status $st: $(snip info.out) $(snip info.err)"
else
    pass guarded_block_seen
fi

# ---- sampled: a use after free repeated 200000 times, default rate -------------

caught=0 other=""
for i in $(seq 100); do
    api_run loop guard=1 uaf-loop 200000 64
    if [ $st -eq $SEGV ] && grep -q '^tide: use-after-free: read at' loop.err; then
        caught=$((caught + 1))
    elif [ $st -ne 0 ]; then
        other="status $st: $(snip loop.err)"
    fi
done
if [ $caught -ge 99 ] && [ -z "$other" ]; then
    pass "sampled_uaf_caught ($caught of 100 runs)"
else
    fail sampled_uaf_caught "caught in $caught of 100 runs, want >= 99 ${other}"
fi

# ---- without guarding nothing is caught, and no handler is installed -------------

bad=""
for kind in uaf-read uaf-write; do
    env -u TIDE_CONF "$prog" bug "$kind" 100 malloc >off.out 2>off.err
    st=$?
    [ $st -eq 0 ] && grep -q '^survived$' off.out || bad="$bad $kind(status $st)"
done
env -u TIDE_CONF "$prog" uaf-loop 200000 64 >off.out 2>off.err
st=$?
[ $st -eq 0 ] || bad="$bad uaf-loop(status $st)"
if [ -z "$bad" ]; then pass guard_off_catches_nothing; else fail guard_off_catches_nothing "caught:$bad"; fi

env -u TIDE_CONF "$prog" sigcgt >cgt.def 2>&1
TIDE_CONF=guard=1 "$prog" sigcgt >cgt.on 2>&1
def=$(sigcgt_of cgt.def) on=$(sigcgt_of cgt.on)
if [ -z "$def" ] || [ -z "$on" ]; then
    fail no_handler_by_default "no SigCgt line: $(snip cgt.def) $(snip cgt.on)"
elif [ $((16#$def & SIGCGT_SEGV_BUS)) -ne 0 ]; then
    fail no_handler_by_default "SigCgt $def by default catches SIGSEGV or SIGBUS"
elif [ $((16#$on & SIGCGT_SEGV_BUS)) -ne $SIGCGT_SEGV_BUS ]; then
    fail no_handler_by_default "with guard=1 SigCgt is $on: no SIGSEGV and SIGBUS handler"
else
    pass no_handler_by_default
fi

if [ -n "${SANITIZE:-}" ]; then
    skip tide_run_guard "a sanitizer build of libtide cannot be preloaded"
else
    { TIDE_LIB=$BUILD/libtide.so timeout 60 "$TIDE_RUN" --guard=1 "$prog" bug uaf-read 100 malloc >run.out 2>run.err; } 2>/dev/null
    st=$?
    TIDE_LIB=$BUILD/libtide.so timeout 60 "$TIDE_RUN" --guard "$prog" sigcgt >run2.out 2>&1
    m=$(sigcgt_of run2.out)
    if [ $st -ne $SEGV ] || ! grep -q '^tide: use-after-free: read at' run.err; then
        fail tide_run_guard "--guard=1: status $st: $(snip run.err)"
    elif [ -z "$m" ] || [ $((16#$m & SIGCGT_SEGV_BUS)) -ne $SIGCGT_SEGV_BUS ]; then
        fail tide_run_guard "--guard: SigCgt '$m'"
    else
        pass tide_run_guard
    fi
fi
exit $rc
