#!/usr/bin/env bash
# api/exports.sh — libtide.so exports the standard allocation names, glibc's
# aliases, C++'s operator new and delete (every form libstdc++ has) and the
# tide_* API of include/tide.h, the GC_* names of include/gc.h (Boehm's API,
# served by the GC heap), and nothing else (internal
# tidei_* names have hidden visibility).  Every tide_* function declared in
# tide.h is exported, and so is every name the allocation interface needs.
set -u
cd "$ROOT"
lib=$BUILD/libtide.so
syms=$(nm -D --defined-only "$lib" 2>/dev/null | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
if [ -z "$syms" ]; then
    echo "FAIL exports_listed: nm -D $lib listed nothing"
    exit 1
fi
standard="malloc free calloc realloc reallocarray aligned_alloc posix_memalign memalign valloc pvalloc
malloc_usable_size malloc_trim mallopt mallinfo mallinfo2 malloc_stats malloc_info cfree
__libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign __libc_valloc __libc_pvalloc
__posix_memalign"
# C++'s operators: the list the C and C++ tests check too
cxx=$(grep -o '"_Z[A-Za-z0-9_]*"' tests/api/progs/cxx_operators.h | tr -d '"')
if [ "$(echo $cxx | wc -w)" != 20 ]; then
    echo "FAIL exports_listed: want 20 operator names in tests/api/progs/cxx_operators.h, read: $(echo $cxx)"
    exit 1
fi
standard="$standard $cxx"
api=$(sed -n 's/^[a-z_ ]*[ *]\(tide_[a-z0-9_]*\)(.*/\1/p' include/tide.h | sort -u)
api="$api $(grep -v -e '^#' -e '^typedef' include/gc.h | sed -n 's/.*[ *(]\(GC_[a-z0-9_]*\)(.*/\1/p' | sort -u) GC_push_other_roots"
rc=0
extra=""
for s in $syms; do
    case " $(echo $standard) $(echo $api) " in
        *" $s "*) ;;
        *) extra="$extra $s" ;;
    esac
done
if [ -n "$extra" ]; then
    echo "FAIL only_public_names_exported: libtide.so also exports:$extra"
    rc=1
else
    echo "PASS only_public_names_exported"
fi
missing=""
for s in $standard $api; do
    echo "$syms" | grep -qx "$s" || missing="$missing $s"
done
if [ -n "$missing" ]; then
    echo "FAIL public_names_exported: libtide.so does not export:$missing"
    rc=1
elif [ -z "$api" ]; then
    echo "FAIL public_names_exported: no tide_* function found in include/tide.h"
    rc=1
else
    echo "PASS public_names_exported"
fi
exit $rc
