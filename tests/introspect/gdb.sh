#!/usr/bin/env bash
# introspect/gdb.sh — tools/tide-heap and tools/gdb/tide-gdb.py read tide's
# heap from outside the process, without running anything in it, and find
# exactly what tide itself reports.
#
# tests/introspect/progs/pattern.c builds a known heap with three threads
# (small blocks of several classes freed locally, remotely, onto a notify
# list and into an abandoned span; large blocks, one freed; a huge block),
# prints tide_block_info() of addresses of every kind, tide_stats_get(),
# tide_stats_heaps() and tide_stats_print(), and waits with every thread
# blocked.  Then, on the live process (gdb -p) and on a core file of it
# (gcore), tide-heap's totals, histogram, thread heaps and block lookups must
# match the program's own figures exactly (progs/check.py); `-w -v` must count
# the same live blocks on the spans' free lists, and lists and counters must
# agree.  The core is made after the live readings: its figures matching the
# program's proves those readings changed nothing.  A static build (libtide.a,
# symbols in the program itself) is read live too.  And the constants the
# script reads from the debug info (`tide layout`: tide_config.h's, the
# span kinds, ...) must be the headers' values, be the same read from the
# library, the process, the core and the static program, and appear nowhere
# in the script as numbers of its own (gdb_layout*).
#
# SKIPs only when ptrace is not permitted (yama ptrace_scope, or a container
# without CAP_SYS_PTRACE), and for SANITIZE=thread|address builds (their
# shadow memory makes a core file of terabytes of address space).
# th-timeout: 120 (the script itself stops waiting after 30 s at each step)
set -u
: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=$ROOT/build}"
: "${CC:=cc}"
: "${SANITIZE:=}"
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
cd "$ROOT"

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: ${*:2}"; }
skip() { echo "SKIP $1: $2"; }

case $SANITIZE in
    thread|address) skip gdb "not on a SANITIZE=$SANITIZE build (its shadow mappings make core files huge)"; exit 0 ;;
esac
for tool in gdb gcore python3; do
    if ! command -v $tool >/dev/null 2>&1; then
        fail gdb "$tool is not installed (Debian: apt-get install gdb python3; .ci/run installs them)"
        exit 1
    fi
done
scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)
if [ "$scope" = 3 ] || { [ "$scope" != 0 ] && [ "$(id -u)" != 0 ]; }; then
    skip gdb "ptrace is not permitted (kernel.yama.ptrace_scope = $scope; run as root or set it to 0)"
    exit 0
fi

odir=$BUILD/tests/introspect
mkdir -p "$odir"
tmp=$(mktemp -d "$odir/gdb.XXXXXX")
pids=()
stop() {  # stop PID: kills a program started here, and reaps it quietly
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    local p
    for p in "${pids[@]}"; do stop "$p"; done
    rm -rf "$tmp"
}
trap cleanup EXIT

exe=$odir/pattern
CFLAGS_P=(-std=gnu11 -O1 -g -fno-builtin -pthread -Wall -Wextra -Iinclude -Itests)
[ "$SANITIZE" = undefined ] && CFLAGS_P+=(-fsanitize=undefined)
if ! "$CC" "${CFLAGS_P[@]}" -o "$exe" tests/introspect/progs/pattern.c \
        -Wl,--no-as-needed "$BUILD/libtide.so" -Wl,-rpath,"$BUILD" 2>"$tmp/cc.log"; then
    fail gdb_build "pattern.c does not compile: $(head -c 300 "$tmp/cc.log" | tr '\n' ' ')"
    exit 1
fi
static_ok=0
if [ -z "$SANITIZE" ] && "$CC" "${CFLAGS_P[@]}" -o "$exe-static" tests/introspect/progs/pattern.c \
        -Wl,--whole-archive "$BUILD/libtide.a" -Wl,--no-whole-archive -ldl 2>"$tmp/cc-static.log"; then
    static_ok=1
fi

# ---- layout: the constants tide-gdb.py reads are the headers' ----
# `tide layout` prints what the script read from the debug info of
# libtide.so (src/layout.c, tide_span_kind_t), with no process.  A program
# made from its names, compiled against src/ and include/, must print the
# same values; the script must hold none of them as a numeric literal, nor
# assign one of their names (the old hard-coded PAGE_SHIFT = 12, SPAN_SMALL
# = 1); and the live process, its core file and the program linked with
# libtide.a must give the same layout.
# layout NAME ARGS...: `tide layout` through gdb ARGS, its NAME VALUE lines
# into $tmp/NAME.txt (gdb's own lines about the process left out)
layout() {
    local name=$1
    shift
    timeout 30 gdb -nx -q -batch -x tools/gdb/tide-gdb.py -ex 'tide layout' "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    grep -E '^TIDE_[A-Z0-9_]+ -?[0-9]+$' "$tmp/$name.out" >"$tmp/$name.txt"
    if [ ! -s "$tmp/$name.txt" ] || grep -qE '^(tide|Python)' "$tmp/$name.err"; then
        fail "$name" "tide layout printed nothing or an error: $(grep -E '^(tide|Python)' "$tmp/$name.err" |
            head -c 300 | tr '\n' ' ')"
        return 1
    fi
}
# same_layout NAME: $tmp/NAME.txt is $tmp/gdb_layout.txt
same_layout() {
    if cmp -s "$tmp/gdb_layout.txt" "$tmp/$1.txt"; then
        pass "$1"
    else
        fail "$1" "tide layout differs from libtide.so's: $(diff "$tmp/gdb_layout.txt" "$tmp/$1.txt" | head -c 300 | tr '\n' ' ')"
    fi
}
layout_ok=0
if layout gdb_layout "$BUILD/libtide.so"; then
    layout_ok=1
    {
        echo '#include <stdio.h>'
        echo '#define _GNU_SOURCE'
        echo '#include "tide_internal.h"'
        echo 'int main(void)'
        echo '{'
        while read -r name _; do
            echo "    printf(\"%s %lld\\n\", \"$name\", (long long)($name));"
        done <"$tmp/gdb_layout.txt"
        echo '    return 0;'
        echo '}'
    } >"$tmp/layout_headers.c"
    cp "$tmp/gdb_layout.txt" "$tmp/layout_want.txt"
    if ! "$CC" -std=gnu11 -pthread -Isrc -Iinclude -o "$tmp/layout_headers" "$tmp/layout_headers.c" 2>"$tmp/layout_cc.log"; then
        fail gdb_layout "a name tide layout printed is not in the headers: $(grep -m 3 error "$tmp/layout_cc.log" | tr '\n' ' ')"
    elif ! "$tmp/layout_headers" >"$tmp/layout_headers.txt"; then
        fail gdb_layout "the program printing the headers' constants failed"
    elif [ "$(wc -l <"$tmp/layout_want.txt")" -lt 20 ]; then
        fail gdb_layout "tide layout printed only $(wc -l <"$tmp/layout_want.txt") constants"
    elif ! cmp -s "$tmp/layout_want.txt" "$tmp/layout_headers.txt"; then
        fail gdb_layout "tide-gdb.py read other values than the headers have (< read, > headers):" \
             "$(diff "$tmp/layout_want.txt" "$tmp/layout_headers.txt" | grep '^[<>]' | head -c 300 | tr '\n' ' ')"
    else
        pass gdb_layout
    fi
    python3 - tools/gdb/tide-gdb.py "$tmp/gdb_layout.txt" <<'PY'
import ast
import sys
import tokenize

script, layout = sys.argv[1:3]
names, values = set(), {}
with open(layout) as f:
    for line in f:
        name, v = line.split()
        names.add(name[len("TIDE_"):])
        # values up to 8 are everywhere (bytes' bits, widths, enum values):
        # only larger ones can be told from ordinary arithmetic
        if abs(int(v)) > 8:
            values.setdefault(int(v), []).append(name)
problems = []
with open(script, "rb") as f:
    for t in tokenize.tokenize(f.readline):
        if t.type == tokenize.NUMBER and ast.literal_eval(t.string) in values:
            problems.append("line %d: %s (the value of %s)" % (t.start[0], t.string,
                                                               ", ".join(values[ast.literal_eval(t.string)])))
with open(script) as f:
    tree = ast.parse(f.read())
for node in ast.walk(tree):
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
        node, (ast.AnnAssign, ast.AugAssign)) else []
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name) and n.id in names:
                problems.append("line %d: assigns %s (read it from tidei_layout)" % (n.lineno, n.id))
if problems:
    print("FAIL gdb_layout_literals: tools/gdb/tide-gdb.py writes tide's constants itself: %s"
          % "; ".join(problems[:5]))
else:
    print("PASS gdb_layout_literals")
PY
fi

# The C functions the script says it mirrors (`src/FILE:FUNCTION` in its
# comments) are still there: a reader of a mirrored formula finds the C.
refs=$(grep -oE 'src/[a-z_]+\.[ch]:[a-z_0-9]+' tools/gdb/tide-gdb.py | sort -u)
gone=()
for ref in $refs; do
    grep -qE "\b${ref#*:}\(" "${ref%%:*}" 2>/dev/null || gone+=("$ref")
done
if [ "$(echo "$refs" | wc -w)" -lt 8 ]; then
    fail gdb_mirrors "tide-gdb.py names only $(echo "$refs" | wc -w) C functions it mirrors"
elif [ ${#gone[@]} -gt 0 ]; then
    fail gdb_mirrors "tide-gdb.py says it mirrors functions that are not there: ${gone[*]}"
else
    pass gdb_mirrors
fi

# start NAME EXE: runs EXE in the background (stdout to $tmp/NAME.out) and
# waits for its `ready` line; sets $pid.  Without the scavenger: the program
# waits idle, and the heap it describes must stay as it is while gdb reads it.
# shared_blocks=0: its threads' blocks come from their own spans, so that the
# notify list, the local free lists and the abandoned spans it sets up exist.
start() {
    local name=$1 exe=$2 i
    TIDE_CONF=decay_ms=-1,shared_blocks=${SHARED_BLOCKS:-0} "$exe" 60 >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
    pid=$!
    pids+=("$pid")
    for ((i = 0; i < 300; i++)); do
        grep -qx ready "$tmp/$name.out" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "${name}_start" "the program did not get ready: $(tail -c 300 "$tmp/$name.err" | tr '\n' ' ')"
    return 1
}

# heap NAME ARGS...: tools/tide-heap ARGS > $tmp/NAME.txt; false (and a FAIL)
# if it failed.
heap() {
    local name=$1
    shift
    if ! timeout 30 tools/tide-heap "$@" >"$tmp/$name.txt" 2>"$tmp/$name.err"; then
        if grep -q 'Operation not permitted' "$tmp/$name.err"; then
            skip gdb "ptrace is not permitted here: $(head -n 2 "$tmp/$name.err" | tr '\n' ' ')"
            exit 0
        fi
        fail "$name" "tide-heap $* failed: $(head -c 400 "$tmp/$name.err" | tr '\n' ' ')"
        return 1
    fi
    return 0
}

start pattern "$exe" || exit 1
blocks=()
while read -r _ _ addr _; do blocks+=(-b "$addr"); done < <(grep '^block ' "$tmp/pattern.out")

# ---- live ----
if heap gdb_live "${blocks[@]}" -b 'a[500]' -b '(char *)huge + 12345' "$pid" &&
   heap gdb_live_walk -w -v "$pid"; then
    python3 tests/introspect/progs/check.py gdb_live "$tmp/pattern.out" "$tmp/gdb_live.txt" "$tmp/gdb_live_walk.txt"
    a500=$(awk '$1 == "block" && $2 == "a_live" { print $3 }' "$tmp/pattern.out")
    hugeb=$(awk '$1 == "block" && $2 == "huge_live" { print $3 }' "$tmp/pattern.out")
    if grep -qx "$a500: live: block $a500, 112 bytes, class 7, heap 1" "$tmp/gdb_live.txt" &&
       grep -q "^0x[0-9a-f]*: live: block $hugeb, 10485760 bytes, class huge, heap 0" "$tmp/gdb_live.txt"; then
        pass gdb_live_expressions
    else
        fail gdb_live_expressions "tide block a[500] / (char *)huge + 12345 not found live in the output"
    fi
fi

# PID PROGRAM and PROGRAM PID (gdb's order) read the same as PID alone.
if heap gdb_live_pid "$pid" && heap gdb_live_pid_prog "$pid" "$exe" && heap gdb_live_prog_pid "$exe" "$pid"; then
    if ! grep -q '^tide heap report (read by gdb from the process' "$tmp/gdb_live_pid.txt"; then
        fail tide_heap_pid_program "tide-heap PID: no report: $(head -c 300 "$tmp/gdb_live_pid.txt" | tr '\n' ' ')"
    elif ! cmp -s "$tmp/gdb_live_pid.txt" "$tmp/gdb_live_pid_prog.txt" ||
         ! cmp -s "$tmp/gdb_live_pid.txt" "$tmp/gdb_live_prog_pid.txt"; then
        fail tide_heap_pid_program "tide-heap PID PROGRAM or PROGRAM PID differs from tide-heap PID:" \
             "$(diff "$tmp/gdb_live_pid.txt" "$tmp/gdb_live_pid_prog.txt" | head -c 300 | tr '\n' ' ')"
    elif [ -s "$tmp/gdb_live_pid_prog.err" ]; then
        fail tide_heap_pid_program "tide-heap PID PROGRAM said: $(head -c 300 "$tmp/gdb_live_pid_prog.err")"
    else
        pass tide_heap_pid_program
    fi
fi

# Function calls are refused, not made; a bad address and no argument are errors.
timeout 30 gdb -nx -q -batch -ex "source tools/gdb/tide-gdb.py" -ex 'tide block malloc(1)' -ex 'tide block' \
    -ex 'tide frobnicate' -ex 'tide block 0' -p "$pid" >"$tmp/calls.txt" 2>&1
if grep -q "tide block: cannot evaluate 'malloc(1)': Cannot call functions" "$tmp/calls.txt" &&
   grep -q '^usage: tide block ADDR' "$tmp/calls.txt" &&
   grep -q "^tide: unknown subcommand 'frobnicate'" "$tmp/calls.txt" &&
   grep -q "^0x0: not tide's" "$tmp/calls.txt"; then
    pass gdb_no_calls
else
    fail gdb_no_calls "unexpected output: $(grep -iE 'tide|usage|call' "$tmp/calls.txt" | head -c 400 | tr '\n' ' ')"
fi

if [ $layout_ok = 1 ] && layout gdb_layout_live -p "$pid"; then
    same_layout gdb_layout_live
fi

# ---- core file ----
if timeout 30 gcore -o "$tmp/core" "$pid" >"$tmp/gcore.log" 2>&1 && [ -f "$tmp/core.$pid" ]; then
    stop "$pid"
    if heap gdb_core "${blocks[@]}" "$tmp/core.$pid" "$exe" && heap gdb_core_walk -w -v "$tmp/core.$pid" "$exe"; then
        python3 tests/introspect/progs/check.py gdb_core "$tmp/pattern.out" "$tmp/gdb_core.txt" "$tmp/gdb_core_walk.txt"
        if head -n 1 "$tmp/gdb_core.txt" | grep -q "read by gdb from the core file of pid $pid"; then
            pass gdb_core_header
        else
            fail gdb_core_header "first line: $(head -n 1 "$tmp/gdb_core.txt")"
        fi
    fi
    if [ $layout_ok = 1 ] && layout gdb_layout_core "$exe" "$tmp/core.$pid"; then
        same_layout gdb_layout_core
    fi
    rm -f "$tmp/core.$pid"
else
    fail gdb_core "gcore $pid failed: $(tail -c 300 "$tmp/gcore.log" | tr '\n' ' ')"
fi

# ---- a program linked with libtide.a: the symbols are in the program ----
if [ $static_ok = 1 ]; then
    if start static "$exe-static"; then
        heap gdb_static "$pid" &&
            python3 tests/introspect/progs/check.py gdb_static "$tmp/static.out" "$tmp/gdb_static.txt" |
            grep -E '^(PASS|FAIL) gdb_static_(stats|heap|threads)'
        stop "$pid"
    fi
    # the constants survive the link into the program (read from its file)
    if [ $layout_ok = 1 ] && layout gdb_layout_static "$exe-static"; then
        same_layout gdb_layout_static
    fi
elif [ -z "$SANITIZE" ]; then
    fail gdb_static "pattern.c does not link with libtide.a: $(head -c 300 "$tmp/cc-static.log" | tr '\n' ' ')"
else
    skip gdb_static "the static variant runs on builds without a sanitizer"
fi

# ---- usage and a process without tide ----
tools/tide-heap >/dev/null 2>"$tmp/usage.err"
st1=$?
sleep 30 &
sp=$!
pids+=("$sp")
tools/tide-heap "$sp" >/dev/null 2>"$tmp/notide.err"
st2=$?
stop "$sp"
if [ $st1 = 2 ] && grep -q '^usage: tide-heap' "$tmp/usage.err" && [ $st2 = 1 ] &&
   grep -q "^tide: libtide's symbols not found" "$tmp/notide.err"; then
    pass tide_heap_usage
else
    fail tide_heap_usage "no arguments: status $st1; a process without tide: status $st2, $(head -c 200 "$tmp/notide.err")"
fi

# Two arguments that are neither a process and a program nor a core and a
# program: a clear message, status 2.
tools/tide-heap "$exe" tests/introspect/gdb.sh >/dev/null 2>"$tmp/two.err"
st1=$?
tools/tide-heap 999999999 "$exe" >/dev/null 2>"$tmp/nopid.err"
st2=$?
tools/tide-heap "$$" "$tmp/no-such-program" >/dev/null 2>"$tmp/noprog.err"
st3=$?
if [ $st1 = 2 ] && grep -q 'is a running process id or a core file; give PID \[PROGRAM\] or CORE PROGRAM' "$tmp/two.err" &&
   [ $st2 = 2 ] && grep -q '^tide-heap: no process 999999999$' "$tmp/nopid.err" &&
   [ $st3 = 2 ] && grep -q 'no-such-program: no such program$' "$tmp/noprog.err"; then
    pass tide_heap_two_args
else
    fail tide_heap_two_args "status $st1 $st2 $st3: $(cat "$tmp/two.err" "$tmp/nopid.err" "$tmp/noprog.err" | head -c 400 | tr '\n' ' ')"
fi
exit 0
