# api/helpers.bash — sourced by the api group's shell tests that build a
# program of their own from tests/api/progs/ (stats.sh, leak.sh, prof.sh).
# Not a test itself (run.sh runs *.sh only).
#   api_setup NAME     cd to $ROOT; a scratch directory $tmp (tide-NAME.*,
#                      removed at exit); rc=0; pass, fail, skip, snip
#   api_build SRC [LINK ARGS...]   compiles tests/api/progs/SRC.c into
#                      $prog = $BUILD/tests/api/SRC with - for _, linked
#                      with libtide.so as the C tests are (their sanitizer
#                      flags included, no -fno-omit-frame-pointer otherwise);
#                      if it does not compile, prints FAIL SRC_build and
#                      exits 1.

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
    if ! ${CC:-cc} -std=gnu11 -O1 -g -pthread -Wall -Wextra -Wno-unused-function -Iinclude -Itests "${flags[@]}" \
            -o "$prog" "tests/api/progs/$src.c" -Wl,--push-state,--no-as-needed "$BUILD/libtide.so" \
            -Wl,--pop-state -Wl,-rpath,"$BUILD" -ldl "$@" 2>"$tmp/cc.log"; then
        echo "FAIL ${src}_build: does not compile: $(snip "$tmp/cc.log")"
        exit 1
    fi
}
