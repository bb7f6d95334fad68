# api/helpers.bash — sourced by the api group's shell tests that build a
# program of their own from tests/api/progs/ (stats, leak, prof, crash,
# guard, secure).
# Not a test itself (run.sh runs *.sh only).
#   api_setup NAME     cd to $ROOT; a scratch directory $tmp (tide-NAME.*,
#                      removed at exit); rc=0; pass, fail, skip, snip
#   api_build SRC [LINK ARGS...]   compiles tests/api/progs/SRC.c into
#                      $prog = $BUILD/tests/api/SRC with - for _, linked
#                      with libtide.so as the C tests are (their sanitizer
#                      flags included, no -fno-omit-frame-pointer otherwise);
#                      if it does not compile, prints FAIL SRC_build and
#                      exits 1.
#   api_build_static SRC OUT   compiles tests/api/progs/SRC.c with
#                      -DTH_STATIC into OUT, linked with $BUILD/libtide.a;
#                      false if it does not compile (the compiler's messages
#                      in $tmp/cc-static.log)
#   api_static NAME SRC OUT    for the test NAME, which needs SRC linked
#                      statically: api_build_static SRC OUT, true if built;
#                      else prints SKIP NAME (a sanitizer build has no static
#                      libtide to link) or FAIL NAME (it does not compile)
#   api_run NAME CONF ARGS...  runs $prog ARGS with TIDE_CONF=CONF under a
#                      timeout of $API_TIMEOUT seconds (default 60); stdout
#                      in NAME.out, stderr in NAME.err (in the current
#                      directory), the exit status in $st
#   result NAME MSG    PASS NAME if MSG is empty, else FAIL NAME: MSG
#   sigcgt_of FILE     the mask of the SigCgt line (what a program's
#                      say_sigcgt printed) in FILE, in hex; with
#                      $SIGCGT_SEGV_BUS, the bits of SIGSEGV and SIGBUS

api_setup() {
    set -u
    cd "$ROOT" || exit 1
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-$1.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    rc=0
}

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; rc=1; }
skip() { echo "SKIP $1: $2"; }
snip() { head -c 300 "$1" | tr "\n" " "; }   # the start of a file, on one line
result() { if [ -z "$2" ]; then pass "$1"; else fail "$1" "$2"; fi; }

sigcgt_of() { sed -n 's/^SigCgt:[[:space:]]*//p' "$1"; }
SIGCGT_SEGV_BUS=$(((1 << 10) | (1 << 6)))   # bit N-1 for signal N: 11, 7

api_run() {
    local name=$1 conf=$2
    shift 2
    # (the braces keep bash's "Segmentation fault" message out of the log)
    { TIDE_CONF=$conf timeout "${API_TIMEOUT:-60}" "$prog" "$@" >"$name.out" 2>"$name.err"; } 2>/dev/null
    st=$?
}

api_build() {
    local src=$1
    shift
    local out=$BUILD/tests/api flags=()
    mkdir -p "$out"
    prog=$out/${src//_/-}
    if [ -n "${SANITIZE:-}" ]; then
        flags=(-fsanitize="$SANITIZE" -fno-omit-frame-pointer)
        [ "$SANITIZE" = thread ] && flags+=(-DTH_REDIRECT)
    fi
    if ! ${CC:-cc} -std=gnu11 -O1 -g -fno-builtin -pthread -Wall -Wextra -Wno-unused-function -Iinclude -Itests "${flags[@]}" \
            -o "$prog" "tests/api/progs/$src.c" -Wl,--push-state,--no-as-needed "$BUILD/libtide.so" \
            -Wl,--pop-state -Wl,-rpath,"$BUILD" -ldl "$@" 2>"$tmp/cc.log"; then
        echo "FAIL ${src}_build: does not compile: $(snip "$tmp/cc.log")"
        exit 1
    fi
}

api_build_static() {
    ${CC:-cc} -std=gnu11 -O1 -g -fno-builtin -pthread -DTH_STATIC -I"$ROOT/include" -I"$ROOT/tests" -o "$2" \
        "$ROOT/tests/api/progs/$1.c" "$BUILD/libtide.a" -ldl 2>"$tmp/cc-static.log"
}

api_static() {
    if [ -n "${SANITIZE:-}" ]; then
        skip "$1" "a sanitizer build has no static libtide to link"
    elif ! api_build_static "$2" "$3"; then
        fail "$1" "the static program does not compile: $(snip "$tmp/cc-static.log")"
    else
        return 0
    fi
    return 1
}
