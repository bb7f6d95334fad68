#!/usr/bin/env bash
# api/deepbind.sh — plugins loaded with dlopen(RTLD_DEEPBIND) allocate and
# free through tide (src/glibc.c; issue 20): tests/api/progs/deepbind.c with
# its plugins (progs/deepbind_lib.c, built three ways), run
#   - under tide-run (the program not linked with tide: what `tide-run php`
#     is), linked with libtide.so, and linked with libtide.a;
#   - under tide-run with TIDE_CONF=libc_alloc=glibc, where a block crossing
#     between the two allocators must be a one-line tide report naming the
#     library that passed it;
#   - with libtide.so loaded by dlopen (not the process's malloc): libc's
#     names must stay glibc's.
# th-timeout: 240
set -u
cd "$ROOT"
out=$BUILD/tests/api/deepbind
mkdir -p "$out"
cc=${CC:-cc}
flags=(-std=gnu11 -O1 -g -fno-builtin -pthread -Wall -Wextra -Iinclude -Itests)
rc=0

build() {  # build NAME CC-ARGS...: prints a FAIL line on error
    local name=$1
    shift
    if ! "$cc" "$@" >"$out/$name.log" 2>&1; then
        echo "FAIL deepbind_build: $name does not compile: $(head -c 400 "$out/$name.log" | tr '\n' ' ')"
        exit 1
    fi
}
lib=(-shared -fPIC -O1 -g -fno-builtin -Wall -Wextra)
build libdeep_now "${lib[@]}" -Wl,-z,now -o "$out/libdeep_now.so" tests/api/progs/deepbind_lib.c
build libdeep_lazy "${lib[@]}" -Wl,-z,lazy -o "$out/libdeep_lazy.so" tests/api/progs/deepbind_lib.c
build libdeep_own "${lib[@]}" -DOWN_ALLOCATOR -o "$out/libdeep_own.so" tests/api/progs/deepbind_lib.c
src=tests/api/progs/deepbind.c
export_name=-Wl,--export-dynamic-symbol=deep_shared_name
build prog-preload "${flags[@]}" -DTH_TIDE=0 "$export_name" -o "$out/prog-preload" "$src" -ldl
build prog-shared "${flags[@]}" "$export_name" -o "$out/prog-shared" "$src" \
    -Wl,--push-state,--no-as-needed "$BUILD/libtide.so" -Wl,--pop-state -Wl,-rpath,"$BUILD" -ldl
# (a sanitizer build of libtide.a links only into an instrumented program)
[ -z "${SANITIZE:-}" ] &&
    build prog-static "${flags[@]}" "$export_name" -Wl,--export-dynamic-symbol=tide_block_info \
        -o "$out/prog-static" "$src" -Wl,--whole-archive "$BUILD/libtide.a" -Wl,--no-whole-archive -ldl

# run LABEL CMD...: the program's PASS/FAIL lines, prefixed with LABEL.
run() {
    local label=$1 st
    shift
    timeout 120 "$@" "$out" >"$out/$label.out" 2>"$out/$label.err"
    st=$?
    sed "s/^\(PASS\|FAIL\|SKIP\) /\1 $label: /" "$out/$label.out" | grep -E '^(PASS|FAIL|SKIP) '
    if [ $st -ne 0 ] && ! grep -q '^FAIL ' "$out/$label.out"; then
        echo "FAIL $label: exit status $st without a FAIL line: $(tail -n 3 "$out/$label.err" | tr '\n' '|' | cut -c1-400)"
        rc=1
    elif [ $st -ne 0 ]; then
        rc=1
    fi
}
run preload env -u LD_PRELOAD "$TIDE_RUN" "$out/prog-preload"
run linked-shared env -u LD_PRELOAD "$out/prog-shared"
[ -z "${SANITIZE:-}" ] && run linked-static env -u LD_PRELOAD "$out/prog-static"

# libc_alloc=glibc: the plugins get glibc's allocator, and a block that
# crosses is reported in one line naming who passed it.
report() {  # report NAME OP PATTERN [MODE]: the child dies by SIGABRT with one tide line matching PATTERN
    local name=$1 op=$2 pattern=$3 mode=${4:-glibc} st lines
    env -u LD_PRELOAD TIDE_CONF=libc_alloc=$mode timeout 60 "$TIDE_RUN" "$out/prog-preload" "$out" cross "$op" \
        >/dev/null 2>"$out/$name.err"
    st=$?
    lines=$(grep -c '^tide: ' "$out/$name.err")
    if [ $st -ne 134 ] || [ "$lines" != 1 ] || ! grep -qE "$pattern" "$out/$name.err"; then
        echo "FAIL $name: status $st, $lines tide lines, wanted /$pattern/: $(head -c 400 "$out/$name.err" | tr '\n' '|')"
        rc=1
    else
        echo "PASS $name"
    fi
}
addr='0x[0-9a-f]+'
lib_re='\(.*/libdeep_now\.so\+0x[0-9a-f]+\)'
report glibc_free_of_tide_block free "^tide: free\($addr\): block of tide's given to glibc's free by deep_free\+0x[0-9a-f]+ $lib_re"
report glibc_realloc_of_tide_block realloc "^tide: realloc\($addr\): block of tide's given to glibc's realloc by deep_realloc\+"
report glibc_reallocarray_of_tide_block reallocarray "^tide: reallocarray\($addr\): block of tide's given to glibc's reallocarray by deep_reallocarray\+"
report glibc_usable_size_of_tide_block usable "^tide: malloc_usable_size\($addr\): block of tide's given to glibc's malloc_usable_size by deep_usable_size\+"
foreign="^tide: free\($addr\): pointer not allocated by tide \(or already freed\); free called from cross\+0x[0-9a-f]+ \(.*/prog-preload\+0x[0-9a-f]+\); the address is in \[heap\], glibc's malloc's heap"
report tide_free_of_glibc_block tide-free "$foreign"
# libc_alloc=off: libc is left as it is (the plugin allocates with glibc)
report libc_alloc_off_leaves_libc tide-free "$foreign" off

# libtide.so loaded with dlopen is not the process's malloc: libc's names
# stay glibc's.
cat >"$out/dlopened.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *before = dlsym(libc, "free");
    void *t = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!t) { printf("dlopen: %s\n", dlerror()); return 1; }
    void *tide_free = dlsym(t, "free"), *after = dlsym(libc, "free");
    Dl_info di;
    printf("%s %s\n", before == after ? "same" : "changed", dladdr(after, &di) ? di.dli_fname : "?");
    return argc > 2 || tide_free == after;
}
EOF
build dlopened "${flags[@]}" -o "$out/dlopened" "$out/dlopened.c" -ldl
got=$(env -u LD_PRELOAD "$out/dlopened" "$BUILD/libtide.so")
st=$?
case "$st $got" in
    "0 same "*libc.so.6) echo "PASS dlopened_tide_leaves_libc_alone" ;;
    *) echo "FAIL dlopened_tide_leaves_libc_alone: status $st, $got"; rc=1 ;;
esac
exit $rc
