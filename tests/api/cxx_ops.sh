#!/usr/bin/env bash
# api/cxx_ops.sh — C++ programs on tide's own operator new and delete
# (tests/api/progs/cxx_ops.cc, built with g++): every form, the new handler
# and std::bad_alloc, nothrow, aligned forms, containers; once linked with
# -ltide and once preloaded by tide-run.  Then, with a debug build of tide
# (build/debug, made here if this run is not one), a sized delete with the
# wrong size and an aligned delete with the wrong alignment are reported
# like free's misuse and abort the program.  SKIP without g++.
# th-timeout: 600
. "$ROOT/tests/api/helpers.bash"
api_setup cxx-ops

if ! command -v g++ >/dev/null 2>&1; then
    skip cxx_ops "g++ is not installed (Debian package g++)"
    exit 0
fi
out=$BUILD/tests/api
mkdir -p "$out"
flags=(-std=c++17 -O1 -g -Wall -Wextra -Iinclude)
if ! g++ "${flags[@]}" -o "$out/cxx-ops" tests/api/progs/cxx_ops.cc -Wl,--push-state,--no-as-needed \
        "$BUILD/libtide.so" -Wl,--pop-state -Wl,-rpath,"$BUILD" -ldl 2>"$tmp/cc.log" ||
   ! g++ "${flags[@]}" -o "$out/cxx-ops-plain" tests/api/progs/cxx_ops.cc -ldl 2>>"$tmp/cc.log"; then
    fail cxx_ops_build "does not compile: $(snip "$tmp/cc.log")"
    exit 1
fi

# run_tests LABEL CMD...: the program's PASS/FAIL lines, renamed LABEL/...
run_tests() {
    local label=$1 line n=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local st=$?
    while IFS= read -r line; do
        case $line in
            PASS\ *) echo "PASS $label/${line#PASS }"; n=$((n + 1)) ;;
            FAIL\ *) echo "FAIL $label/${line#FAIL }"; rc=1; n=$((n + 1)) ;;
        esac
    done <"$tmp/out"
    if [ $st -ne 0 ] || [ $n -eq 0 ]; then
        fail "$label" "exit status $st after $n tests: $(snip "$tmp/err")"
    fi
}

run_tests linked "$out/cxx-ops"
TIDE_LIB=$BUILD/libtide.so run_tests preloaded "$TIDE_RUN" "$out/cxx-ops-plain"

# The misuse checks of a debug build.
case $BUILD in
    */debug) debug_lib=$BUILD/libtide.so ;;
    *)
        debug_lib=$ROOT/build/debug/libtide.so
        make -s -C "$ROOT" DEBUG=1 BUILD=build/debug SANITIZE= STATS=1 lib >"$tmp/make.log" 2>&1 ||
            { fail sized_delete_debug "make DEBUG=1 lib failed: $(snip "$tmp/make.log")"; exit 1; } ;;
esac
# misuse NAME ARG PATTERN: the program with ARG, on the debug build, must
# die of SIGABRT with a line matching PATTERN on stderr.
misuse() {
    # (the braces keep bash's own "Aborted" job message out of the report)
    { LD_PRELOAD=$debug_lib "$out/cxx-ops-plain" "$2" >/dev/null 2>"$tmp/err"; } 2>/dev/null
    local st=$?
    if [ $st -ne 134 ]; then
        fail "$1" "exit status $st, want 134 (SIGABRT): $(snip "$tmp/err")"
    elif ! grep -Eq "$3" "$tmp/err"; then
        fail "$1" "stderr has no line like '$3': $(snip "$tmp/err")"
    else
        pass "$1"
    fi
}
misuse sized_delete_wrong_size wrong-size \
    '^tide: delete\(0x[0-9a-f]+\): size 100 given, but the block \(48 bytes\) was allocated for another size$'
misuse aligned_delete_wrong_alignment wrong-align \
    '^tide: delete\(0x[0-9a-f]+\): block not aligned to 8192'
exit $rc
