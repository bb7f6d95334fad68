# allocators.sh — the allocators the benchmarks compare, and how a program
# is run under each of them.  Sourced (not run) by bench/run.sh,
# bench/instr.sh, bench/bursty.sh and bench/redis-flush.sh, so that all of
# them measure the same objects the same way.
#
# The caller sets ROOT (the repository) and sources this first (it sets
# QUICK, ALLOCATORS and OUT = build/bench), defines die() and note(), then
# calls, in this order:
#   alloc_init            ALLOC_LIB[name] = the object preloaded for it
#   (installs what is missing: ALLOC_LIB[...] names the files to check;
#   or alloc_check_libs, which stops, naming the package, when one is missing)
#   alloc_build_helpers   build/bench/which_malloc and libglibc_shim.so
#   alloc_take_tide       copies the tide to measure to build/bench/libtide.so
#   alloc_check_which_malloc, alloc_check_bindings PROG...   is it really them?
# and then, for each run, alloc_env ALLOC PROGRAM (sets PREFIX, WANT, LIBFILE).
#
# Every allocator, tide included, is chosen with LD_PRELOAD of its shared
# object (tide's is a copy of build/libtide.so taken at the start, so a
# rebuild during the run cannot mix two builds); glibc is the system malloc,
# except for programs linked against another allocator (Debian's
# redis-server links libjemalloc.so.2), where glibc's malloc is reached
# through build/bench/libglibc_shim.so.
#
# Knobs (environment): TIDE_LIB=/path/libtide.so measures that build of tide;
# TIDE_REV=REV a clean build of that commit (its short hash is left in $rev);
# the allocator tide-nostats is `make STATS=0` of the working tree;
# tide-prof is tide with the heap profiler on at its default rate
# (TIDE_CONF=prof=1, the profile written to /dev/null at exit); tide-guard
# is tide with guarded sampling on at its default rate (TIDE_CONF=guard=1,
# which also installs the crash handler).
# PEERS="name=/path/lib.so ..." adds allocators that Debian does not package
# (e.g. release builds of mimalloc 3 and snmalloc, made outside the
# repository): each is preloaded from its path like the others, is checked
# the same way, and joins the default ALLOCATORS after Debian's peers.

ALLOC_LIBDIR=/usr/lib/x86_64-linux-gnu
PEERS=${PEERS:-}
ALL_ALLOCATORS="tide glibc jemalloc mimalloc tcmalloc"
for p in $PEERS; do ALL_ALLOCATORS="$ALL_ALLOCATORS ${p%%=*}"; done

# What every script takes from the environment, with its default.
QUICK=${QUICK:-0}
[ -z "$QUICK" ] && QUICK=0
ALLOCATORS=${ALLOCATORS:-$ALL_ALLOCATORS}
OUT=$ROOT/build/bench

alloc_lib() { # allocator -> the shared object preloaded for it ("" = none)
    case "$1" in
        tide)     echo "$OUT/libtide.so" ;;
        tide-nostats) echo "$OUT/libtide-nostats.so" ;;
        tide-prof) echo "$OUT/libtide.so" ;;  # the same object, heap profiling on
        tide-guard) echo "$OUT/libtide.so" ;; # the same object, guarded sampling on
        glibc)    echo "" ;;
        jemalloc) echo "$ALLOC_LIBDIR/libjemalloc.so.2" ;;
        mimalloc) echo "$ALLOC_LIBDIR/libmimalloc.so.2" ;;
        tcmalloc) echo "$ALLOC_LIBDIR/libtcmalloc_minimal.so.4" ;;
        *)        [ -n "${PEER_LIB[$1]:-}" ] || return 1
                  echo "${PEER_LIB[$1]}" ;;  # from PEERS, read by alloc_init
    esac
}

# the Debian package that provides each allocator's object
alloc_package() {
    case "$1" in
        jemalloc) echo libjemalloc-dev ;;
        mimalloc) echo libmimalloc-dev ;;
        tcmalloc) echo libgoogle-perftools-dev ;;
    esac
}

declare -A ALLOC_LIB PEER_LIB
alloc_init() {
    local a p
    LIBC=$(ldconfig -p | awk '$1 == "libc.so.6" { print $NF; exit }')
    # the name goes into file names and the CSV; the object must be there
    # (no package installs it)
    for p in $PEERS; do
        a=${p%%=*}
        [[ "$p" == *=/* && "$a" =~ ^[A-Za-z0-9][A-Za-z0-9_.+-]*$ ]] ||
            die "PEERS: '$p' is not name=/absolute/path/lib.so"
        alloc_lib "$a" >/dev/null && die "PEERS: '$a' already names an allocator"
        [ -f "${p#*=}" ] || die "PEERS: $a: ${p#*=} does not exist"
        PEER_LIB[$a]=${p#*=}
    done
    for a in $ALLOCATORS; do
        ALLOC_LIB[$a]=$(alloc_lib "$a") || die "unknown allocator '$a' ($ALL_ALLOCATORS)"
    done
}

# alloc_check_libs: dies naming the package to install when a peer's object
# is missing (tide's objects are made by alloc_take_tide; glibc has none)
alloc_check_libs() {
    local a lib
    for a in $ALLOCATORS; do
        lib=${ALLOC_LIB[$a]}
        [ -z "$lib" ] || [ "$a" = tide ] || [ "$a" = tide-nostats ] || [ -e "$lib" ] ||
            die "$a: $lib is missing (apt-get install $(alloc_package "$a"), or run make bench once)"
    done
}

alloc_build_helpers() {
    mkdir -p "$OUT"
    if [ ! -x "$OUT/which_malloc" ] || [ "$ROOT/bench/which_malloc.c" -nt "$OUT/which_malloc" ]; then
        gcc -std=c11 -O2 -Wall -Wextra -o "$OUT/which_malloc" "$ROOT/bench/which_malloc.c" -ldl ||
            die "cannot build bench/which_malloc.c"
    fi
    if [ ! -f "$OUT/libglibc_shim.so" ] || [ "$ROOT/bench/glibc_shim.c" -nt "$OUT/libglibc_shim.so" ]; then
        gcc -std=c11 -O2 -Wall -Wextra -fPIC -shared -o "$OUT/libglibc_shim.so" "$ROOT/bench/glibc_shim.c" -ldl ||
            die "cannot build bench/glibc_shim.c"
    fi
}

alloc_take_tide() {
    local TIDE_SRC=build/libtide.so
    case " $ALLOCATORS " in
        *" tide "*)
            if [ -n "${TIDE_LIB:-}" ]; then
                TIDE_SRC=$TIDE_LIB
                [ -f "$TIDE_SRC" ] || die "TIDE_LIB=$TIDE_LIB does not exist"
            elif [ -n "${TIDE_REV:-}" ]; then
                # a clean build of a committed revision, in a tree of its own,
                # so that edits in the working tree during the run change nothing
                rev=$(git rev-parse --short "$TIDE_REV") || die "TIDE_REV=$TIDE_REV: no such revision"
                rm -rf "$OUT/tide-rev" && mkdir -p "$OUT/tide-rev" &&
                    git archive "$rev" Makefile src include | tar -x -C "$OUT/tide-rev" &&
                    make -s -C "$OUT/tide-rev" lib >&2 || die "cannot build revision $rev"
                TIDE_SRC=$OUT/tide-rev/build/libtide.so
            else
                # make bench has just run make lib; bash bench/run.sh needs it here
                make -s lib >&2 || die "make lib failed: tide cannot be measured (ALLOCATORS=\"glibc jemalloc mimalloc tcmalloc\" measures the peers alone)"
            fi
            cp "$TIDE_SRC" "$OUT/libtide.so.tmp" && mv "$OUT/libtide.so.tmp" "$OUT/libtide.so" ||
                die "cannot copy $TIDE_SRC" ;;
    esac

    case " $ALLOCATORS " in
        *" tide-nostats "*)
            [ -z "${TIDE_LIB:-}${TIDE_REV:-}" ] || die "tide-nostats is built from the working tree: not with TIDE_LIB or TIDE_REV"
            make -s STATS=0 lib >&2 || die "make STATS=0 lib failed"
            cp build/nostats/libtide.so "$OUT/libtide-nostats.so.tmp" &&
                mv "$OUT/libtide-nostats.so.tmp" "$OUT/libtide-nostats.so" || die "cannot copy build/nostats/libtide.so" ;;
    esac
}

# links_other_allocator PROGRAM: does it link jemalloc, tcmalloc or mimalloc?
# (Asked once per program: ldd is slow on a loaded machine.)
declare -A LINKS_OTHER
links_other_allocator() {
    local path
    if [ -z "${LINKS_OTHER[$1]:-}" ]; then
        LINKS_OTHER[$1]=no
        path=$(command -v "$1") && ldd "$path" 2>/dev/null | grep -Eq 'lib(jemalloc|tcmalloc|mimalloc)' &&
            LINKS_OTHER[$1]=yes
    fi
    [ "${LINKS_OTHER[$1]}" = yes ]
}

# alloc_env ALLOC PROGRAM: sets PREFIX to the words that run PROGRAM under
# ALLOC (an env command line: timeout and /usr/bin/time exec it) and WANT to
# the file name of the object that must define malloc in it.
alloc_env() {
    local lib=${ALLOC_LIB[$1]}
    if [ "$1" = glibc ]; then
        if links_other_allocator "$2"; then
            lib=$OUT/libglibc_shim.so
        fi
    fi
    if [ "$1" = tide-prof ] || [ "$1" = tide-guard ]; then
        local conf=prof=1,prof_file=/dev/null
        [ "$1" = tide-guard ] && conf=guard=1
        PREFIX=(env LD_PRELOAD="$lib" TIDE_CONF=$conf)
        WANT=${lib##*/}
        LIBFILE=$lib
    elif [ -n "$lib" ]; then
        PREFIX=(env LD_PRELOAD="$lib")
        WANT=${lib##*/}
        LIBFILE=$lib
    else
        PREFIX=(env)
        WANT=libc.so.6
        LIBFILE=$LIBC
    fi
}

# ---------------------------------------------------------- is it really them?
# 1. A test program: dladdr() of malloc must name the allocator's object (a
#    misspelt or unloadable preload is ignored by ld.so with only a warning).
alloc_check_which_malloc() {
    local a got
    for a in $ALLOCATORS; do
        alloc_env "$a" "$OUT/which_malloc"
        got=$("${PREFIX[@]}" "$OUT/which_malloc" 2>&1) || die "$a: a trial malloc failed: $got"
        case "$got" in
            *"/$WANT") ;;
            *) die "$a: malloc comes from '$got', not $WANT" ;;
        esac
    done
}

# 2. Real programs (alloc_check_bindings PROG...): with LD_BIND_NOW=1
#    LD_DEBUG=bindings the dynamic linker logs, for every object of the
#    process, which object each symbol reference was bound to.  Every
#    reference to malloc, free, calloc, realloc and malloc_usable_size, from
#    any object (libc's own, a linked libjemalloc's, libstdc++'s...), must go
#    to the allocator under test.
# A check that passed is remembered in build/bench/verified, keyed on the
# program's and the preloaded object's size and time, and not made again
# (the LD_DEBUG runs take seconds on a loaded machine).
alloc_check_bindings() {
    local VERIFY prog a key targets seen ts t
    VERIFY=$(mktemp -d /tmp/tide-bench-verify.XXXXXX)
    touch "$OUT/verified"
    for prog in "$@"; do
        for a in $ALLOCATORS; do
            alloc_env "$a" "$prog"
            key="$a $prog $WANT $(stat -L -c '%s %Y' "$prog" "$LIBFILE" | tr '\n' ' ')"
            grep -qxF "$key" "$OUT/verified" && continue
            rm -f "$VERIFY"/ld.*
            "${PREFIX[@]}" LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT="$VERIFY/ld" \
                "$prog" --version </dev/null >/dev/null 2>&1
            targets=$(cat "$VERIFY"/ld.* 2>/dev/null |
                sed -n "s/.*binding file .* to \([^ ]*\) \[[0-9]*\]: normal symbol \`\(malloc\|free\|calloc\|realloc\|malloc_usable_size\)'.*/\1:\2/p" |
                sort -u)
            seen=0
            for ts in $targets; do
                t=${ts%:*}
                # the shim's own dlsym of glibc's malloc_usable_size
                [ "$WANT:$(basename "$ts")" = libglibc_shim.so:libc.so.6:malloc_usable_size ] && continue
                case "$(basename "$t")" in
                    "$WANT") seen=1 ;;
                    # a non-PIE executable that takes malloc's address holds a
                    # canonical PLT entry for it, and the other objects bind to
                    # that stub; the stub jumps through the executable's own slot,
                    # which must then be bound to $WANT (seen=1)
                    "$(basename "$prog")") ;;
                    *) rm -rf "$VERIFY"; die "$a: in $prog, malloc/free/... bind to $t, not $WANT" ;;
                esac
            done
            [ $seen = 1 ] || { rm -rf "$VERIFY"; die "$a: no binding of malloc to $WANT seen in $prog (LD_DEBUG gave: $targets)"; }
            echo "$key" >>"$OUT/verified"
        done
    done
    rm -rf "$VERIFY"
}
