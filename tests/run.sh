#!/usr/bin/env bash
# tests/run.sh — builds and runs tide's tests, one group after another.
#
#   BUILD=build CC=cc bash tests/run.sh [GROUP...]
#
# Groups, in this order: unit api misuse oom stress gc introspect programs
# (default: all).
#
# Conventions (every group follows them):
#   tests/<group>/*.c   compiled with -O1 -g -pthread -Iinclude -Itests, linked
#                       against $BUILD/libtide.so (with an rpath) into
#                       $BUILD/tests/<group>/<name>, and run with no argument.
#                       Under SANITIZE=<s> also -fsanitize=<s>, and for
#                       SANITIZE=thread -DTH_REDIRECT (see tests/testhelper.h).
#                       The unit group is the exception: its tests include the
#                       sources of src/ themselves (tests/unit/unit.h), so they
#                       are compiled with -Isrc and not linked with libtide.
#   tests/<group>/*.sh  run with bash, with ROOT, BUILD, CC, SANITIZE and
#                       TIDE_RUN=$ROOT/tools/tide-run in the environment.
#   Each program prints lines `PASS name`, `FAIL name: reason`, `SKIP name:
#   reason`; they are printed here with "<group>/<program>: " before the
#   name.  A program that hangs past its timeout, or crashes or exits non-zero
#   without a FAIL line, counts as one FAIL.  A test (C or shell) may ask for
#   another timeout with a comment `th-timeout: SECONDS` in its first 40
#   lines, and an api test is also linked statically with $BUILD/libtide.a
#   (-DTH_STATIC, program <name>-static) when it has a comment `th-static:
#   yes`.  A C test runs with TIDE_CONF=VALUE when it has a comment
#   `th-conf: VALUE` there (tide reads TIDE_CONF before main).
#
# Environment:
#   TEST_TIMEOUT=S       per-program timeout in seconds (default 300)
#   TIDE_TESTS_GLIBC=1   build the C tests with -DTH_TIDE=0 and without tide, to
#                        show that they can fail (misuse tests then FAIL);
#                        .sh tests are skipped
#   TH_VERBOSE=1         print every program's stderr, not only on failure
#
# Before it, the eight slowest programs (`# slowest: LABEL Ns, ...`), then
# the last line is `N passed, N failed`; exit status 1 if any failed.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CC=${CC:-cc}
SANITIZE=${SANITIZE:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
GLIBC=${TIDE_TESTS_GLIBC:-0}
[ "$GLIBC" = 0 ] || GLIBC=1
TIDE_RUN=$ROOT/tools/tide-run
export ROOT BUILD CC SANITIZE TIDE_RUN

ALL_GROUPS="unit api misuse oom stress gc introspect programs"
if [ $# -gt 0 ]; then groups="$*"; else groups=$ALL_GROUPS; fi
for g in $groups; do
    case " $ALL_GROUPS " in *" $g "*) ;; *) echo "run.sh: unknown group '$g' (groups: $ALL_GROUPS)" >&2; exit 2 ;; esac
done

if [ "$GLIBC" = 0 ] && [ "$groups" != unit ] && [ ! -f "$BUILD/libtide.so" ]; then
    echo "run.sh: $BUILD/libtide.so not found: run make first" >&2
    exit 2
fi

OUT=$BUILD/tests
[ "$GLIBC" = 1 ] && OUT=$BUILD/tests-glibc
mkdir -p "$OUT"

n_pass=0 n_fail=0 n_skip=0
failed_names=()

# -fno-builtin: the tests' calls to malloc and friends are what they test, so
# the compiler must not treat them as the C library's (clang drops a malloc
# whose block is never used, folds a malloc/free pair away, and assumes that
# malloc leaves errno alone; tests/*/*.sh compile their programs the same)
CFLAGS_T=(-std=gnu11 -O1 -g -fno-builtin -pthread -Wall -Wextra -Wno-unused-function -Iinclude -Itests)
SANFLAGS=()
if [ -n "$SANITIZE" ] && [ "$GLIBC" = 0 ]; then
    SANFLAGS=(-fsanitize="$SANITIZE" -fno-omit-frame-pointer)
    [ "$SANITIZE" = thread ] && SANFLAGS+=(-DTH_REDIRECT)
    # tide starts its scavenger thread again in a forked child (of a process
    # that had threads, since the scavenger is one); TSan refuses that unless
    # told otherwise
    [ "$SANITIZE" = thread ] && export TSAN_OPTIONS="die_after_fork=0${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
fi

fail_line() {   # fail_line LABEL REASON
    echo "FAIL $1: $2"
    n_fail=$((n_fail + 1))
    failed_names+=("$1")
}

show_stderr() {  # show_stderr FILE: the last lines, indented
    [ -s "$1" ] || return 0
    echo "    --- stderr (last 25 lines) ---"
    tail -n 25 "$1" | cut -c1-400 | sed 's/^/    | /'
}

# timeout_of FILE: the th-timeout of a source, or the default
timeout_of() {
    local t
    t=$(head -n 40 "$1" 2>/dev/null | sed -n 's/.*th-timeout: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
    echo "${t:-$TEST_TIMEOUT}"
}

# conf_of FILE: the th-conf of a source (TIDE_CONF for it), or nothing
conf_of() {
    head -n 40 "$1" 2>/dev/null | sed -n 's/.*th-conf: *\([^ ]*\).*/\1/p' | head -n 1
}

# run_prog LABEL TIMEOUT CMD...: runs one test program and tallies its lines.
run_prog() {
    local label=$1 tmo=$2
    shift 2
    local out err rc t0=$SECONDS
    out=$(mktemp) err=$(mktemp)
    # (the braces keep bash's own "Segmentation fault" job message out of the report)
    { timeout -k 10 "$tmo" "$@" >"$out" 2>"$err" </dev/null; } 2>/dev/null
    rc=$?
    durations+=("$((SECONDS - t0)) $label")
    local np=0 nf=0 ns=0 line status rest
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            PASS\ *|FAIL\ *|SKIP\ *)
                status=${line%% *} rest=${line#* }
                echo "$status $label: $rest"
                case $status in
                    PASS) np=$((np + 1)) ;;
                    FAIL) nf=$((nf + 1)); failed_names+=("$label: ${rest%%:*}") ;;
                    SKIP) ns=$((ns + 1)) ;;
                esac ;;
        esac
    done <"$out"
    n_pass=$((n_pass + np)) n_fail=$((n_fail + nf)) n_skip=$((n_skip + ns))
    local bad=0
    if [ $rc -eq 124 ]; then
        fail_line "$label" "timed out after ${tmo}s (hang?)"
        bad=1
    elif [ $rc -eq 137 ]; then
        fail_line "$label" "killed by SIGKILL (still running ${tmo}s + 10s after the timeout, or the OOM killer)"
        bad=1
    elif [ $rc -ne 0 ]; then
        local how="exit status $rc"
        [ $rc -gt 128 ] && how="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo ?))"
        if [ $nf -eq 0 ]; then
            fail_line "$label" "$how without a FAIL line"
        else
            echo "     ($label: $how)"
        fi
        bad=1
    elif [ $((np + nf + ns)) -eq 0 ]; then
        fail_line "$label" "printed no PASS/FAIL/SKIP line"
        bad=1
    fi
    if [ $bad -eq 1 ] || [ $nf -gt 0 ] || [ "${TH_VERBOSE:-0}" = 1 ]; then
        show_stderr "$err"
    fi
    rm -f "$out" "$err"
}

# compile LABEL OUTPUT SRC EXTRA...: compiles one C test; on error prints a FAIL.
compile() {
    local label=$1 exe=$2 src=$3
    shift 3
    local log
    log=$(mktemp)
    if ! "$CC" "${CFLAGS_T[@]}" -o "$exe" "$src" "$@" >"$log" 2>&1; then
        fail_line "$label" "does not compile"
        sed 's/^/    | /' "$log" | head -n 40
        rm -f "$log"
        return 1
    fi
    if [ -s "$log" ]; then   # warnings: shown, the tests still run
        echo "     ($label: compiler warnings)"
        sed 's/^/    | /' "$log" | head -n 20
    fi
    rm -f "$log"
    return 0
}

run_group() {
    local g=$1 dir=tests/$1
    local odir=$OUT/$g
    mkdir -p "$odir"
    local src name exe tmo
    shopt -s nullglob
    local cfiles=("$dir"/*.c) shfiles=("$dir"/*.sh)
    shopt -u nullglob
    if [ ${#cfiles[@]} -eq 0 ] && [ ${#shfiles[@]} -eq 0 ]; then
        echo "# $g: no tests"
        return
    fi
    echo "# $g"
    for src in "${cfiles[@]}"; do
        name=$(basename "$src" .c)
        exe=$odir/$name
        tmo=$(timeout_of "$src")
        local link=()
        if [ "$g" = unit ]; then
            link=(-Isrc -DTIDE_UNIT -ldl)
            [ -n "$SANITIZE" ] && link+=(-fsanitize="$SANITIZE")
        elif [ "$GLIBC" = 1 ] && [ "$g" = gc ]; then
            link=(-DTH_TIDE=0 -DGC_THREADS -I/usr/include/gc -lgc -ldl)   # the same tests on Debian's libgc
        elif [ "$GLIBC" = 1 ]; then
            link=(-DTH_TIDE=0 -ldl)
        else
            link=("${SANFLAGS[@]}" -Wl,--push-state,--no-as-needed "$BUILD/libtide.so" -Wl,--pop-state
                  -Wl,-rpath,"$BUILD" -ldl)
        fi
        local envp=() conf
        conf=$(conf_of "$src")
        [ -n "$conf" ] && envp=(env TIDE_CONF="$conf")
        if compile "$g/$name" "$exe" "$src" "${link[@]}"; then
            run_prog "$g/$name" "$tmo" "${envp[@]}" "$exe"
        fi
        # The static variant: the same test linked with libtide.a.
        if [ "$g" = api ] && [ "$GLIBC" = 0 ] && [ -z "$SANITIZE" ] &&
           head -n 40 "$src" | grep -q 'th-static: *yes'; then
            if compile "$g/$name-static" "$exe-static" "$src" -DTH_STATIC -rdynamic \
                   -Wl,--whole-archive "$BUILD/libtide.a" -Wl,--no-whole-archive -ldl; then
                run_prog "$g/$name-static" "$tmo" "${envp[@]}" "$exe-static"
            fi
        fi
    done
    for src in "${shfiles[@]}"; do
        name=$(basename "$src" .sh)
        if [ "$GLIBC" = 1 ]; then
            echo "SKIP $g/$name: shell tests run only on tide"
            n_skip=$((n_skip + 1))
            continue
        fi
        run_prog "$g/$name" "$(timeout_of "$src")" bash "$src"
    done
}

durations=()   # "SECONDS LABEL" of every program run, for the slowest list
start=$(date +%s)
for g in $groups; do
    run_group "$g"
done
end=$(date +%s)

echo "#"
[ "$GLIBC" = 1 ] && echo "# (TIDE_TESTS_GLIBC=1: the tests ran against glibc's malloc, not tide)"
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "# failed:"
    printf '#   %s\n' "${failed_names[@]}"
fi
if [ ${#durations[@]} -gt 0 ]; then
    echo "# slowest: $(printf '%s\n' "${durations[@]}" | sort -rn | head -n 8 | awk '{printf "%s%s %ss", sep, $2, $1; sep=", "}')"
fi
echo "# $n_skip skipped, $((end - start)) s"
echo "$n_pass passed, $n_fail failed"
[ $n_fail -eq 0 ]
