#!/usr/bin/env bash
# api/dlopen.sh — libtide.so loaded with dlopen by a program that is not
# linked with it (tests/api/progs/dlopen.c): the program's tests, then
# dlclose of tide while a thread that used it is still alive.
set -u
cd "$ROOT"
out=$BUILD/tests/api
mkdir -p "$out"
exe=$out/dlopen-prog
if ! ${CC:-cc} -std=gnu11 -O1 -g -fno-builtin -pthread -Wall -Wextra -DTH_TIDE=0 -Iinclude -Itests \
        -o "$exe" tests/api/progs/dlopen.c -ldl 2>"$out/dlopen-prog.log"; then
    echo "FAIL dlopen_build: does not compile: $(head -c 300 "$out/dlopen-prog.log" | tr '\n' ' ')"
    exit 1
fi
# Not linked with tide, and not preloaded: dlopen is the only way in.
if readelf -d "$exe" | grep -q libtide; then
    echo "FAIL dlopen_build: the program is linked with libtide"
    exit 1
fi
env -u LD_PRELOAD "$exe" "$BUILD/libtide.so"
rc=$?

# dlclose while a thread that has a tide heap is alive; the thread then
# exits, and tide's thread-exit destructor must not run in unmapped code.
env -u LD_PRELOAD timeout 60 "$exe" "$BUILD/libtide.so" unload 2>"$out/dlopen-unload.err"
st=$?
if [ $st -eq 0 ]; then
    echo "PASS dlclose_then_thread_exit"
else
    echo "FAIL dlclose_then_thread_exit: exit status $st: $(head -c 300 "$out/dlopen-unload.err")"
    rc=1
fi
exit $rc
