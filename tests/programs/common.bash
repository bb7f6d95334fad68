# tests/programs/common.bash — sourced by every tests/programs/*.sh (not a test
# itself: the runner runs only *.sh and *.c files).
#
# Each test runs a real program, one nobody on the project wrote, twice on the
# same input: once under the system allocator and once under tide
# ($TIDE_RUN, with TIDE_LIB=$BUILD/libtide.so and TIDE_GC_LIB=$BUILD/libgc.so.1),
# and compares the outputs.
#
# Proof that tide is really in the program: both runs also preload a small
# probe library (built here from the C source below with $CC) whose
# constructor, in every process of the run (the program and whatever it
# starts: cc1plus, git's helpers, ...), reads /proc/self/maps and appends a
# line to $TIDE_PROBE_LOG:
#     pid=N tide_mapped=0|1 tide_malloc=0|1 exe=<path>
# tide_malloc=1 when the process's malloc (called through a pointer, so
# through whatever the program's own references resolve to) is tide's: a
# 64 MiB block from it shows up in libtide's tide_stats_get() as a huge
# block.  check_on_tide then requires, for the named programs, tide_mapped=1
# and tide_malloc=1 in the tide run, and tide_mapped=0 in the system run.
#
# Output lines: PASS name / FAIL name: reason / SKIP name: reason.  A test
# SKIPs only when the program it runs is not installed.

set -u

: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=$ROOT/build}"
: "${TIDE_RUN:=$ROOT/tools/tide-run}"
: "${CC:=cc}"
: "${SANITIZE:=}"
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export TIDE_LIB=$BUILD/libtide.so TIDE_GC_LIB=$BUILD/libgc.so.1  # the build under test, not ../build
unset TIDE_CONF
# A UBSan build of tide must stop the program on an error, not just print.
[ "$SANITIZE" = undefined ] && export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

PT_LIMIT=${PT_LIMIT:-240}            # seconds any one command may take

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

# need NAME CMD...: true if every CMD is installed, else prints a SKIP line.
need() {
    local name=$1 c
    shift
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            skip "$name" "$c is not installed"
            return 1
        fi
    done
    return 0
}

# A tide built with a sanitizer cannot be preloaded into an uninstrumented
# program (TSan and ASan must come first in the process): these tests run on
# the release and debug builds.
pt_build_usable() {
    case $SANITIZE in
        thread|address) skip "$1" "real programs run on the release or debug build, not SANITIZE=$SANITIZE"; return 1 ;;
    esac
    if [ ! -f "$TIDE_LIB" ]; then
        fail "$1" "$TIDE_LIB not found (run make)"
        return 1
    fi
    return 0
}

PT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tide-prog.XXXXXX")
pt_cleanup() { [ -n "${PT_KEEP:-}" ] || rm -rf "$PT_TMP"; }
[ -n "${PT_KEEP:-}" ] && echo "# work dir kept: $PT_TMP" >&2
trap pt_cleanup EXIT

# ---- the probe ----

PROBE=$PT_TMP/probe.so
pt_build_probe() {
    cat >"$PT_TMP/probe.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"

/* Whether libtide.so is mapped, from /proc/self/maps, read with plain
 * system calls (a name split across two reads is caught by the overlap). */
static int tide_mapped(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    static char buf[8192 + 64];
    size_t keep = 0;
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + keep, sizeof buf - 1 - keep);
        if (n <= 0)
            break;
        size_t len = keep + (size_t)n;
        buf[len] = 0;
        if (strstr(buf, "/libtide.so")) {
            found = 1;
            break;
        }
        keep = len < 32 ? len : 32;
        memmove(buf, buf + len - keep, keep);
    }
    close(fd);
    return found;
}


/* Whether the malloc the process calls is tide's. */
static int tide_malloc(void)
{
    void *h = dlopen("libtide.so", RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return 0;
    int (*get)(struct tide_stats *) = (int (*)(struct tide_stats *))dlsym(h, "tide_stats_get");
    dlclose(h);
    if (!get)
        return 0;
    void *(*volatile mf)(size_t) = malloc;
    void (*volatile ff)(void *) = free;
    static struct tide_stats a, b;  /* several KiB: not on the stack of a start-up constructor */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    get(&a);
    void *p = mf((size_t)64 << 20);
    get(&b);
    ff(p);
    return p && b.huge_bytes >= a.huge_bytes + ((size_t)64 << 20);
}

__attribute__((constructor)) static void tide_probe(void)
{
    const char *log = getenv("TIDE_PROBE_LOG");
    if (!log)
        return;
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char line[1400];
    int len = snprintf(line, sizeof line, "pid=%d tide_mapped=%d tide_malloc=%d exe=%s\n",
                       (int)getpid(), tide_mapped(), tide_malloc(), exe);
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && len > 0) {
        if (write(fd, line, (size_t)len) < 0) { /* nothing to do */ }
        close(fd);
    }
}
EOF
    "$CC" -shared -fPIC -O1 -I"$ROOT/include" -o "$PROBE" "$PT_TMP/probe.c" -ldl 2>"$PT_TMP/probe.err"
}

# run_sys LOG CMD...: CMD under the system allocator (probe only).
run_sys() {
    local log=$1
    shift
    LD_PRELOAD="$PROBE" TIDE_PROBE_LOG="$log" timeout -k 5 "$PT_LIMIT" "$@"
}

# run_tide LOG CMD...: CMD under tide (tide-run, then the probe).
run_tide() {
    local log=$1
    shift
    LD_PRELOAD="$PROBE" TIDE_PROBE_LOG="$log" timeout -k 5 "$PT_LIMIT" "$TIDE_RUN" "$@"
}

# check_on_tide NAME SYSLOG TIDELOG EXE-REGEX...: for each regex, the tide run
# must have a process whose exe matches, and every such process must have
# libtide.so mapped and call tide's malloc; in the system run none may have
# libtide mapped.  Prints a FAIL line and returns 1 otherwise.
check_on_tide() {
    local name=$1 syslog=$2 tidelog=$3 re lines bad
    shift 3
    for re in "$@"; do
        lines=$(grep -E "exe=[^ ]*($re)\$" "$tidelog" 2>/dev/null)
        if [ -z "$lines" ]; then
            fail "$name" "no process matching '$re' recorded in the tide run (probe log: $(head -c 300 "$tidelog" 2>/dev/null | tr '\n' ';'))"
            return 1
        fi
        bad=$(printf '%s\n' "$lines" | grep -v -E 'tide_mapped=1 tide_malloc=1 ' | head -n 1)
        if [ -n "$bad" ]; then
            fail "$name" "under tide-run, a process is not on tide: $bad"
            return 1
        fi
        bad=$(grep -E "exe=[^ ]*($re)\$" "$syslog" 2>/dev/null | grep -v 'tide_mapped=0' | head -n 1)
        if [ -n "$bad" ]; then
            fail "$name" "the system-allocator run has tide mapped: $bad"
            return 1
        fi
    done
    return 0
}

# same_output NAME WHAT FILE1 FILE2: FAIL (with the first differences) unless
# the files are identical.
same_output() {
    if cmp -s "$3" "$4"; then
        return 0
    fi
    fail "$1" "$2 differs between the system allocator and tide: $(diff "$3" "$4" | head -n 6 | tr '\n' '|' | cut -c1-400)"
    return 1
}

# ran_ok NAME WHAT STATUS ERRFILE: FAIL unless STATUS is 0.
ran_ok() {
    [ "$3" -eq 0 ] && return 0
    local how="exit status $3"
    [ "$3" -eq 124 ] && how="timed out after ${PT_LIMIT}s"
    [ "$3" -gt 128 ] && [ "$3" -ne 124 ] && how="killed by signal $(($3 - 128))"
    fail "$1" "$2: $how: $(tail -n 3 "$4" 2>/dev/null | tr '\n' '|' | cut -c1-300)"
    return 1
}

# pt_compare NAME WHAT OUTPUT EXE-REGEX RUN: the whole comparison.  RUN is a
# function of the test's, called as `RUN sys` and `RUN tide`: it runs the
# program with run_sys or run_tide, its probe log in $PT_TMP/MODE.log, its
# stdout in $PT_TMP/MODE.out and stderr in $PT_TMP/MODE.err, and returns its
# exit status.  Both runs must succeed (ran_ok: "WHAT under the system
# allocator", "WHAT under tide"), the programs matching EXE-REGEX must have
# run on tide (check_on_tide), and the outputs must be the same
# (same_output: "OUTPUT differs ...").  Prints a FAIL line and returns 1
# otherwise.
pt_compare() {
    local name=$1 what=$2 output=$3 re=$4 run=$5
    "$run" sys
    ran_ok "$name" "$what under the system allocator" $? "$PT_TMP/sys.err" || return 1
    "$run" tide
    ran_ok "$name" "$what under tide" $? "$PT_TMP/tide.err" || return 1
    check_on_tide "$name" "$PT_TMP/sys.log" "$PT_TMP/tide.log" "$re" || return 1
    same_output "$name" "$output" "$PT_TMP/sys.out" "$PT_TMP/tide.out"
}

# pt_finished NAME REGEX: FAIL ("the script did not finish", with the last
# lines it printed) unless the tide run's output has a line matching the
# extended REGEX, the one its script prints last.
pt_finished() {
    grep -qE "$2" "$PT_TMP/tide.out" && return 0
    fail "$1" "the script did not finish: $(tail -n 2 "$PT_TMP/tide.out" | tr '\n' '|')"
    return 1
}

# pt_setup NAME: the checks every test starts with; false if it cannot run.
pt_setup() {
    pt_build_usable "$1" || return 1
    if ! pt_build_probe; then
        fail "$1" "cannot build the probe library with $CC: $(head -c 300 "$PT_TMP/probe.err")"
        return 1
    fi
    return 0
}
