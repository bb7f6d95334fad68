#!/usr/bin/env bash
# api/leak.sh — the leak check (TIDE_CONF=leak_check=1|full): the report at
# exit (return from main, exit(); not _exit), its groups of direct and
# indirect leaks with their stacks, blocks kept reachable every way the
# program can (globals, static and thread-local variables, a list, a blocked
# thread's stack, interior pointers, an anonymous mapping) never reported,
# leak_exitcode, leak_file, the sampled stacks of leak_check=1,
# tide_leak_check(), tools/tide-run --leak-check, and leaks of every size,
# entry point and thread state with the stack of each.  The program is
# tests/api/progs/leak_prog.c; its comment says what it leaks and keeps.
. "$ROOT/tests/api/helpers.bash"
api_setup leak
# No -fno-omit-frame-pointer and no -rdynamic (outside sanitizer builds): the
# stacks and the names of the program's functions must be found without them.
api_build leak_prog
cd "$tmp"

# The report of `leak_prog leaks` (see leak_prog.c).
SUMMARY_LEAKS='tide: leak check: 1344 bytes leaked in 11 blocks (10 direct, 1 indirect); '
SUMMARY_RE='^tide: leak check: 1344 bytes leaked in 11 blocks \(10 direct, 1 indirect\); '
# the "still reachable" part of the summary: RB bytes in RN blocks
REACH='[0-9]+ bytes in [0-9]+ blocks? still reachable$'

# run NAME CONF MODE [tide-run options]: runs leak_prog MODE with TIDE_CONF=CONF
# (or under tools/tide-run with the options), stdout in NAME.out, stderr in
# NAME.err; sets $st (the exit status), $pid and $keep_blocks, $keep_bytes.
run() {
    local name=$1 conf=$2 mode=$3
    shift 3
    if [ $# -gt 0 ]; then
        env -u TIDE_CONF TIDE_LIB="$BUILD/libtide.so" timeout 60 "$TIDE_RUN" "$@" "$prog" "$mode" \
            >"$tmp/$name.out" 2>"$tmp/$name.err"
    else
        TIDE_CONF=$conf timeout 60 "$prog" "$mode" >"$tmp/$name.out" 2>"$tmp/$name.err"
    fi
    st=$?
    pid=$(sed -n 's/^pid //p' "$tmp/$name.out")
    keep_blocks=$(sed -n 's/^keep \([0-9]*\) [0-9]*$/\1/p' "$tmp/$name.out")
    keep_bytes=$(sed -n 's/^keep [0-9]* \([0-9]*\)$/\1/p' "$tmp/$name.out")
}

# why_status WANT: "" if $st is WANT, else a reason
why_status() {
    [ "$st" = "$1" ] && return 0
    local how="exit status $st"
    [ "$st" = 124 ] && how="timed out after 60 s (hang?)"
    [ "$st" -gt 128 ] && [ "$st" != 124 ] && how="killed by signal $((st - 128))"
    echo "$how, want $1"
    return 1
}

# reach_ok FILE: the summary's still-reachable figures cover what keep_here
# keeps ($keep_bytes in $keep_blocks blocks); prints what is wrong.
reach_ok() {
    local line rb rn
    line=$(grep -E "^tide: leak check: .*; $REACH" "$1" | head -n 1)
    rb=$(echo "$line" | sed -E 's/.*; ([0-9]+) bytes in ([0-9]+) blocks? still reachable$/\1/')
    rn=$(echo "$line" | sed -E 's/.*; ([0-9]+) bytes in ([0-9]+) blocks? still reachable$/\2/')
    if [ -z "$line" ]; then echo "no summary line ending '$REACH'"; return 1; fi
    if [ "$rb" -lt "$keep_bytes" ] || [ "$rn" -lt "$keep_blocks" ]; then
        echo "$rb bytes in $rn blocks still reachable, but the program keeps $keep_bytes bytes in $keep_blocks blocks: $line"
        return 1
    fi
}

# groups FILE: the report's groups, one a line: "direct|indirect BYTES BLOCKS
# FRAME0 FRAME1 ..." (function names, "?" where a frame has none) or
# "direct|indirect BYTES BLOCKS nostack".
groups() {
    awk '
        function flush() { if (g != "") print g; g = "" }
        /^tide: [0-9]+ bytes in [0-9]+ blocks? leaked (directly|indirectly), allocated at:$/ {
            flush(); kind = $8 == "directly," ? "direct" : "indirect"
            g = kind " " $2 " " $5; next
        }
        /^tide: [0-9]+ bytes in [0-9]+ blocks? leaked (directly|indirectly) with no recorded stack/ {
            flush(); print ($8 == "directly" ? "direct" : "indirect") " " $2 " " $5 " nostack"; next
        }
        /^    #[0-9]+ 0x[0-9a-fA-F]+/ {
            if (g == "") next
            fn = "?"
            if (NF >= 3 && $3 !~ /^\(/) { fn = $3; sub(/\+0x[0-9a-fA-F]+$/, "", fn) }
            g = g " " fn; next
        }
        { flush() }
        END { flush() }' "$1"
}

# ---- leak_check=full, return from main -----------------------------------------

run full leak_check=full leaks
if msg=$(why_status 23); then pass leak_exit_status; else fail leak_exit_status "$msg: $(snip full.err)"; fi

if ! grep -qE "$SUMMARY_RE$REACH" full.err; then
    fail leak_summary "want '$SUMMARY_LEAKS...', got: $(grep '^tide: leak' full.err | head -n 3 | tr '\n' ' ')"
elif [ "$(grep -c '^tide: leak check:' full.err)" != 1 ]; then
    fail leak_summary "$(grep -c '^tide: leak check:' full.err) summary lines, want 1"
elif ! msg=$(reach_ok full.err); then
    fail leak_summary "$msg"
else
    pass leak_summary
fi

groups full.err >full.groups
direct=$(grep -c '^direct ' full.groups)
line=$(grep '^direct ' full.groups | head -n 1)
if [ "$direct" != 1 ]; then
    fail leak_direct_group "$direct groups of direct leaks, want 1: $(tr '\n' ';' <full.groups)"
elif [ "$(echo "$line" | cut -d' ' -f2,3)" != "1280 10" ]; then
    fail leak_direct_group "want 1280 bytes in 10 blocks, got: $line"
elif [ "$(echo "$line" | cut -d' ' -f4)" != leak_here ]; then
    fail leak_direct_group "want frame #0 in leak_here, got the frames: $(echo "$line" | cut -d' ' -f4-) ($(grep -A3 'leaked directly' full.err | head -c 400 | tr '\n' ' '))"
elif ! echo "$line" | cut -d' ' -f5- | grep -qw main; then
    fail leak_direct_group "no frame in main after leak_here: $line"
else
    pass leak_direct_group
fi

indirect=$(grep -c '^indirect ' full.groups)
line=$(grep '^indirect ' full.groups | head -n 1)
if [ "$indirect" != 1 ]; then
    fail leak_indirect_group "$indirect groups of indirect leaks, want 1: $(tr '\n' ';' <full.groups)"
elif [ "$(echo "$line" | cut -d' ' -f2,3)" != "64 1" ]; then
    fail leak_indirect_group "want 64 bytes in 1 block, got: $line"
elif [ "$(echo "$line" | cut -d' ' -f4,5)" != "leak_child leak_here" ]; then
    fail leak_indirect_group "want frames leak_child, leak_here, got: $(echo "$line" | cut -d' ' -f4-)"
else
    pass leak_indirect_group
fi

if grep -q 'with no recorded stack' full.err; then
    fail leak_full_every_stack "leak_check=full, but: $(grep 'no recorded stack' full.err | head -n 1)"
elif [ "$(head -n 1 full.groups | cut -d' ' -f1)" != direct ]; then
    fail leak_full_every_stack "the biggest group (direct, 1280 bytes) is not first: $(tr '\n' ';' <full.groups)"
else
    pass leak_full_every_stack
fi

if grep -qE 'keep_here|holder_thread' full.err; then
    fail leak_kept_not_reported "kept blocks reported: $(grep -B3 -E 'keep_here|holder_thread' full.err | head -c 500 | tr '\n' ' ')"
elif ! grep -q '^tide: leak check:' full.err; then
    fail leak_kept_not_reported "no report: $(snip full.err)"
else
    pass leak_kept_not_reported
fi

# ---- exit() from a function; _exit (no check) ------------------------------------

run exit leak_check=full exit
if ! msg=$(why_status 23); then
    fail leak_at_exit_call "$msg: $(snip exit.err)"
elif ! grep -qE "$SUMMARY_RE$REACH" exit.err; then
    fail leak_at_exit_call "want '$SUMMARY_LEAKS...', got: $(grep '^tide: leak' exit.err | head -n 3 | tr '\n' ' ')"
else
    pass leak_at_exit_call
fi

run qexit leak_check=full _exit
if ! msg=$(why_status 0); then
    fail leak_not_at__exit "$msg: $(snip qexit.err)"
elif grep -q '^tide: ' qexit.err; then
    fail leak_not_at__exit "a report after _exit: $(snip qexit.err)"
else
    pass leak_not_at__exit
fi

# ---- leak_exitcode, leak_file ------------------------------------------------------

run code leak_check=full,leak_exitcode=7 leaks
if msg=$(why_status 7); then pass leak_exitcode; else fail leak_exitcode "$msg: $(snip code.err)"; fi

run file "leak_check=full,leak_file=$tmp/report.%p.txt" leaks
files=$(ls | grep '^report\.' | tr '\n' ' ')
if ! msg=$(why_status 23); then
    fail leak_file "$msg: $(snip file.err)"
elif [ "$files" != "report.$pid.txt " ]; then
    fail leak_file "want the file report.$pid.txt, found: ${files:-none}"
elif grep -q '^tide: ' file.err; then
    fail leak_file "the report went to stderr too: $(snip file.err)"
elif ! grep -qE "$SUMMARY_RE$REACH" "report.$pid.txt" ||
     [ "$(groups "report.$pid.txt" | cut -d' ' -f1-4 | tr '\n' ';')" != "direct 1280 10 leak_here;indirect 64 1 leak_child;" ]; then
    fail leak_file "the file does not hold the report: $(snip "report.$pid.txt")"
else
    pass leak_file
fi

# ---- nothing leaked ------------------------------------------------------------------

run clean leak_check=full clean
if ! msg=$(why_status 0); then
    fail leak_none "$msg: $(snip clean.err)"
elif [ "$(grep -c '^tide: ' clean.err)" != 1 ] || ! grep -qE "^tide: leak check: no leaks; $REACH" clean.err; then
    fail leak_none "want the one line 'tide: leak check: no leaks; ...', got: $(grep '^tide: ' clean.err | head -c 400 | tr '\n' ' ')"
elif ! msg=$(reach_ok clean.err); then
    fail leak_none "$msg"
else
    pass leak_none
fi

# A block whose only pointer is in an anonymous mapping: reachable.
run mmap leak_check=full mmap
if ! msg=$(why_status 0); then
    fail leak_mmap_root "$msg: $(snip mmap.err)"
elif [ "$(grep -c '^tide: ' mmap.err)" != 1 ] || ! grep -qE "^tide: leak check: no leaks; $REACH" mmap.err; then
    fail leak_mmap_root "want the one line 'tide: leak check: no leaks; ...', got: $(grep '^tide: ' mmap.err | head -c 400 | tr '\n' ' ')"
else
    pass leak_mmap_root
fi

# ---- leak_check=1: stacks only for sampled blocks ---------------------------------
#
# At the default prof_sample (512 KiB) a 128-byte block is sampled with
# probability 1 - exp(-128/524288) ~ 0.00024, so the ten are almost always
# all stackless; the figures must be right either way.
run sampled leak_check=1 leaks
groups sampled.err >sampled.groups
dsum=$(awk '$1 == "direct" { b += $2; n += $3 } END { print b + 0, n + 0 }' sampled.groups)
if ! msg=$(why_status 23); then
    fail leak_check_sampled "$msg: $(snip sampled.err)"
elif ! grep -qE "$SUMMARY_RE$REACH" sampled.err; then
    fail leak_check_sampled "want '$SUMMARY_LEAKS...', got: $(grep '^tide: leak' sampled.err | head -n 3 | tr '\n' ' ')"
elif ! grep -qE '^tide: [0-9]+ bytes in [0-9]+ blocks? leaked directly with no recorded stack \(leak_check=full records every stack\)$' sampled.err; then
    fail leak_check_sampled "no line 'tide: B bytes in N blocks leaked directly with no recorded stack (leak_check=full records every stack)': $(grep '^tide: ' sampled.err | head -c 400 | tr '\n' ' ')"
elif [ "$dsum" != "1280 10" ]; then
    fail leak_check_sampled "the direct groups add up to '$dsum' (bytes blocks), want '1280 10': $(tr '\n' ';' <sampled.groups)"
elif grep '^direct ' sampled.groups | grep -v nostack | grep -qv ' leak_here'; then
    fail leak_check_sampled "a sampled group not at leak_here: $(tr '\n' ';' <sampled.groups)"
else
    pass leak_check_sampled
fi

# ---- the plainest leak: one block from a function, then return -----------------
#
# No scrub of the stack: the exit path's frames lie over the dead frames of
# the call that made the block, so the check's own frames must leave no
# part of them unwritten in what it scans (a clang build once inlined a
# 4 KiB buffer into one, and reported no leak here at all).

# expect_report NAME MODE STATUS LINE WANT: leak_prog MODE exits with STATUS
# and its summary line matches the extended regex LINE (WANT says it in the
# failure).
expect_report() {
    local name=$1 mode=$2 status=$3 line=$4 want=$5
    run "$name" leak_check=full "$mode"
    if ! msg=$(why_status "$status"); then
        fail "$name" "$msg: $(snip "$name.err")"
    elif ! grep -qE "^tide: leak check: $line" "$name.err"; then
        fail "$name" "want '$want', got: $(grep '^tide: leak check:' "$name.err")"
    else
        pass "$name"
    fi
}

# The plainest leak, and the same with the block's address left over 64 KiB
# of the dead frames: the frames of exit and its callers leave slots
# unwritten, and at exit the check starts from exit's caller (the start-up
# code when main returned), not from its own frame (glibc 2.36: the build
# before missed the second every time).
for n in 100 200000 $((5 * 1024 * 1024)); do
    one="$n bytes leaked in 1 blocks? \(1 direct, 0 indirect\); "
    expect_report leak_one_block_$n "one-$n" 23 "$one" "$n bytes leaked in 1 block"
    expect_report leak_dead_frames_$n "dead-$n" 23 "$one" "$n bytes leaked in 1 block"
done

# exit() from a function that still holds two blocks, one in its frame and
# one in a callee-saved register only: exit's caller's frame and registers
# are roots.
expect_report leak_exit_caller_roots exit-live 0 "no leaks; " "no leaks"

# ---- tide_leak_check(), twice ----------------------------------------------------------

run twice leak_check=full twice
c1=$(sed -n 's/^check1 //p' twice.out)
c2=$(sed -n 's/^check2 //p' twice.out)
n=$(grep -c '^tide: leak check:' twice.err)
if grep -q '^check missing' twice.out; then
    fail leak_check_api_twice "libtide.so has no tide_leak_check"
elif ! msg=$(why_status 23); then
    fail leak_check_api_twice "$msg: $(snip twice.err)"
elif [ "$c1" != 11 ] || [ "$c2" != 11 ]; then
    fail leak_check_api_twice "tide_leak_check returned '$c1' then '$c2', want 11 both times"
elif [ "$n" != 3 ] || [ "$(grep -cE "$SUMMARY_RE$REACH" twice.err)" != 3 ]; then
    fail leak_check_api_twice "want three reports of 1344 bytes in 11 blocks (two calls, then exit), got: $(grep '^tide: leak check:' twice.err | tr '\n' ';')"
else
    pass leak_check_api_twice
fi

# ---- leak_check=full: leaks of every size, entry point and thread state ---------------
#
# `leak_prog ranges` leaks, from its own function each, one small, one large
# and one huge block with every entry point, and blocks realloc'ed in place
# or across a boundary by a function of their own (the block comes from
# leak_origin: the report must name the realloc's caller, the last to
# allocate the block).  It does all of it three times: in a new thread (no
# heap yet; its large and huge leaks from a large-only thread), in the main
# thread, and in a key destructor that runs after tide's (heap gone).  It
# prints one line per function: "expect TEST FUNCTION BYTES BLOCKS".  Each
# function's leaks must be reported as direct leaks whose frame #0 is that
# function, with its bytes and blocks (added up over the three stacks that
# reach it), and nothing may be without a stack.

run ranges leak_check=full ranges
groups ranges.err >ranges.groups
# per frame #0 function: "FUNCTION BYTES BLOCKS" of its direct groups
awk '$1 == "direct" && $4 != "nostack" { b[$4] += $2; n[$4] += $3 } END { for (f in b) print f, b[f], n[f] }' \
    ranges.groups >ranges.byfn
ranges_tests=$(awk '$1 == "expect" { print $2 }' ranges.out | sort -u)
if [ -z "$ranges_tests" ]; then
    fail leak_ranges "the program printed no expect lines: exit status $st, $(snip ranges.err)"
fi
for t in $ranges_tests; do
    msg=$(awk -v t="$t" '
        FNR == NR { got[$1] = $2 " " $3; next }
        $1 == "expect" && $2 == t {
            want = $4 " " $5
            if (!($3 in got)) m = m sprintf("%s: no direct leak with frame #0 in it (want %s bytes, blocks); ", $3, want)
            else if (got[$3] != want) m = m sprintf("%s: %s bytes, blocks leaked, want %s; ", $3, got[$3], want)
        }
        END { printf "%s", m }' ranges.byfn ranges.out)
    if ! why=$(why_status 23); then
        fail "$t" "$why: $(snip ranges.err)"
    elif [ -n "$msg" ]; then
        fail "$t" "$msg"
    else
        pass "$t"
    fi
done

want_bytes=$(awk '$1 == "expect" { b += $4 } END { print b + 0 }' ranges.out)
want_blocks=$(awk '$1 == "expect" { n += $5 } END { print n + 0 }' ranges.out)
if grep -q 'with no recorded stack' ranges.err; then
    fail leak_ranges_every_stack "leak_check=full, but: $(grep 'no recorded stack' ranges.err | head -n 3 | tr '\n' ' ')"
elif ! grep -qE "^tide: leak check: $want_bytes bytes leaked in $want_blocks blocks \($want_blocks direct, 0 indirect\); " ranges.err; then
    fail leak_ranges_every_stack "want '$want_bytes bytes leaked in $want_blocks blocks ($want_blocks direct, 0 indirect)', got: $(grep '^tide: leak check:' ranges.err)"
else
    pass leak_ranges_every_stack
fi

# ---- tools/tide-run --leak-check ---------------------------------------------------------

if [ -n "${SANITIZE:-}" ]; then
    skip tide_run_leak_check "a sanitizer build of libtide cannot be preloaded into an uninstrumented program"
else
    run runone "" leaks --leak-check
    if ! msg=$(why_status 23); then
        fail tide_run_leak_check "--leak-check: $msg: $(snip runone.err)"
    elif ! grep -qE "$SUMMARY_RE$REACH" runone.err; then
        fail tide_run_leak_check "--leak-check: want '$SUMMARY_LEAKS...', got: $(snip runone.err)"
    else
        run runfull "" leaks --leak-check=full
        if ! msg=$(why_status 23); then
            fail tide_run_leak_check "--leak-check=full: $msg: $(snip runfull.err)"
        elif [ "$(groups runfull.err | cut -d' ' -f1-4 | tr '\n' ';')" != "direct 1280 10 leak_here;indirect 64 1 leak_child;" ]; then
            fail tide_run_leak_check "--leak-check=full: want the groups of leak_here and leak_child, got: $(groups runfull.err | tr '\n' ';')"
        else
            pass tide_run_leak_check
        fi
    fi
fi

# ---- blocks at addresses the scavenger handled -------------------------------------------
#
# `leak_prog reused` frees a block, lets the scavenger (decay_ms=20) give its
# range back, and leaks a new block at the same size, which lands at the same
# address: huge, large and small (from a thread that has exited), 20 times.
# The scavenger's stack holds those addresses in dead frames; it is tide's
# memory and no root, so all 60 blocks are leaked (the scavenger ran on a
# stack of glibc's before, and one block or more was "still reachable").

run reused leak_check=1,decay_ms=20 reused
want=$(sed -n 's/^expect \([0-9]*\) \([0-9]*\)$/\1 bytes leaked in \2 blocks (\2 direct, 0 indirect); /p' "$tmp/reused.out")
if ! msg=$(why_status 23); then
    fail leak_scavenger_stack "$msg: $(snip reused.err)"
elif [ -z "$want" ]; then
    fail leak_scavenger_stack "the program printed no expect line: $(snip reused.err)"
elif ! grep -q "^tide: leak check: $want" "$tmp/reused.err"; then
    fail leak_scavenger_stack "want 'tide: leak check: $want...', got: $(grep '^tide: leak check:' "$tmp/reused.err")"
else
    pass leak_scavenger_stack
fi

# ---- pointers in the dead frames of stopped threads --------------------------------------
#
# `leak_prog parked` leaks a small, a large and a huge block in a worker and
# in main, each from a function whose 16 KiB frame keeps their pointers in its
# deepest words once it has returned. A third thread runs tide_leak_check()
# while the worker waits in read() and main in pthread_join(): a stopped
# thread's stack is scanned from the frame of the handler that stopped it up,
# so those dead words keep nothing and all six blocks are leaked (the whole
# stack was scanned before, and none was).  The check waits until both
# threads sleep in the kernel, and leak_deep clears the scratch registers:
# a thread stopped between its post and its read(), with a dead pointer
# still in a register its signal frame saves, kept a block reachable in 5
# runs of 100 (gcc) before.

run parked "" parked
want=$(sed -n 's/^expect \([0-9]*\) \([0-9]*\)$/\2/p' "$tmp/parked.out")
got=$(sed -n 's/^check //p' "$tmp/parked.out")
if ! msg=$(why_status 0); then
    fail leak_parked_dead_frames "$msg: $(snip parked.err)"
elif [ "$got" = missing ]; then
    fail leak_parked_dead_frames "libtide.so has no tide_leak_check"
elif [ -z "$want" ] || [ "$got" != "$want" ]; then
    fail leak_parked_dead_frames "tide_leak_check returned '$got', want '$want' blocks: $(snip parked.err)"
elif ! grep -q "^tide: leak check: $(sed -n 's/^expect \([0-9]*\) .*/\1/p' "$tmp/parked.out") bytes leaked in $want blocks" "$tmp/parked.err"; then
    fail leak_parked_dead_frames "want '$(sed -n 's/^expect //p' "$tmp/parked.out")', got: $(grep '^tide: leak check:' "$tmp/parked.err")"
else
    pass leak_parked_dead_frames
fi

exit $rc

# Roots and blocks mostly never written (leak_prog.c, keep_sparse): a 4 GiB
# mapping, a 1 GiB block from calloc and an unaligned word in a writable,
# executable page each hold a block's only address.  The check reads only
# the pages written (the pagemap says which) and code at every byte: all
# three are reachable, and the check maps no page (the build before mapped
# all 5 GiB, 10 MiB of page tables, and called the third block leaked).
run sparse leak_check=full sparse
got=$(sed -n 's/^check //p' "$tmp/sparse.out")
pte=$(sed -n 's/^pte_kb //p' "$tmp/sparse.out")
rss=$(sed -n 's/^rss_kb //p' "$tmp/sparse.out")
if ! msg=$(why_status 0); then
    fail leak_sparse_roots "$msg: $(snip sparse.err)"
elif [ "$got" != 0 ] || ! grep -qE "^tide: leak check: no leaks; $REACH" sparse.err; then
    fail leak_sparse_roots "tide_leak_check returned '$got', want 0; at exit: $(grep '^tide: ' sparse.err | head -c 600 | tr '\n' ' ')"
elif [ -z "$pte" ] || [ "$pte" -gt 1024 ] || [ -z "$rss" ] || [ "$rss" -gt 32768 ]; then
    fail leak_sparse_roots "the check added ${pte:-?} KiB of page tables (want <= 1024) and ${rss:-?} KiB of RSS (want <= 32768)"
elif grep -q '^norwx' sparse.out; then
    echo "note: this system refuses a writable, executable mapping: the code case was not run"
    pass leak_sparse_roots
else
    pass leak_sparse_roots
fi
