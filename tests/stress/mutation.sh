# tests/stress/mutation.sh — shows that committed.c can fail: builds two
# copies of tide from src/ with the reuse of abandoned spans broken, and
# runs committed.c on them.
#   no_reuse:  no adoption, no sweeping and no release by the free that
#              empties an abandoned span (abandoned spans never reused):
#              every committed_* test except the control must FAIL.
#   no_adopt:  no adoption, sweeping and release kept (empty abandoned
#              spans still go back to the page allocator): committed_partial, whose spans
#              are half full, must FAIL; the others may pass.
# The broken copies live in a temporary directory; src/ is not touched.  If
# the three functions patched here are renamed, this test FAILs and says so:
# update the anchors below.
set -u
: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CC:=cc}"
: "${SANITIZE:=}"

if [ -n "$SANITIZE" ]; then
    echo "SKIP mutation: runs on the release build only (SANITIZE=$SANITIZE)"
    exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/tide-mutation.XXXXXX")
trap 'rm -rf "$T"' EXIT

ADOPT='static tide_span_t *heap_adopt(tide_heap_t *h, int cls)'
SWEEP='bool tidei_heap_sweep_abandoned(void)'
RELEASE='static void abandoned_release(tide_span_t *s)'
for a in "$ADOPT" "$SWEEP" "$RELEASE"; do
    if ! grep -qxF "$a" "$ROOT/src/heap.c"; then
        echo "FAIL mutation: src/heap.c has no line '$a' any more: update tests/stress/mutation.sh"
        exit 0
    fi
done

# mutant NAME SWEEP_TOO: a copy of the tree whose heap_adopt (and, if
# SWEEP_TOO is 1, tidei_heap_sweep_abandoned and abandoned_release) returns
# at once, built.
mutant() {
    mkdir -p "$T/$1"
    cp -r "$ROOT/src" "$ROOT/include" "$ROOT/Makefile" "$T/$1/"
    awk -v adopt="$ADOPT" -v sweep="$SWEEP" -v release="$RELEASE" -v sweep_too="$2" '
        { print }
        $0 == "{" && prev == adopt { print "    if (h) return NULL;  /* MUTATION: never adopt */" }
        $0 == "{" && prev == sweep && sweep_too == 1 { print "    if (1) return false;  /* MUTATION: never sweep */" }
        $0 == "{" && prev == release && sweep_too == 1 { print "    if (s) return;  /* MUTATION: never release */" }
        { prev = $0 }' "$ROOT/src/heap.c" >"$T/$1/src/heap.c"
    if [ "$(grep -c 'MUTATION' "$T/$1/src/heap.c")" != $((1 + 2 * $2)) ]; then
        echo "FAIL mutation: the $1 edit did not apply"
        return 1
    fi
    if ! make -s -C "$T/$1" CC="$CC" BUILD="$T/$1/build" lib >"$T/$1.log" 2>&1; then
        echo "FAIL mutation: the $1 copy of tide does not build: $(tail -n 3 "$T/$1.log" | tr '\n' '|')"
        return 1
    fi
}
mutant no_reuse 1 || exit 0
mutant no_adopt 0 || exit 0

if ! "$CC" -std=gnu11 -O1 -g -fno-builtin -pthread -I"$ROOT/include" -I"$ROOT/tests" -o "$T/committed" "$ROOT/tests/stress/committed.c" \
        "$T/no_reuse/build/libtide.so" -ldl 2>"$T/cc.log"; then
    echo "FAIL mutation: committed.c does not compile: $(head -n 3 "$T/cc.log" | tr '\n' '|')"
    exit 0
fi

# expect NAME TESTS...: on mutant NAME, each of TESTS must FAIL.
expect() {
    local name=$1 t line
    shift
    LD_PRELOAD="$T/$name/build/libtide.so" timeout -k 5 240 "$T/committed" >"$T/$name.out" 2>&1
    if ! grep -q '^PASS on_tide$' "$T/$name.out"; then
        echo "FAIL mutation_$name: committed.c did not run on the broken tide: $(head -n 3 "$T/$name.out" | tr '\n' '|' | cut -c1-300)"
        return
    fi
    for t in "$@"; do
        line=$(grep -E "^(PASS|FAIL|SKIP) $t(:|\$)" "$T/$name.out")
        case $line in
            FAIL*) ;;
            *) echo "FAIL mutation_$name: $t did not fail on the broken tide: ${line:-no result line}"; return ;;
        esac
    done
    echo "PASS mutation_$name"
}
cd "$ROOT" || exit 1
expect no_reuse committed_small committed_medium committed_partial committed_abandon_race
expect no_adopt committed_partial
