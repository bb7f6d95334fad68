#!/usr/bin/env bash
# api/footprint.sh — what loading tide costs a process before it allocates
# anything (issue 13), as properties of the build:
#   - libtide.so and libgc.so.1 need no libgcc_s.so.1 (the unwinder is
#     found or loaded at run time, src/unwind.c): a program that takes no
#     stacks runs without it mapped, one that does (guard=1) gets it;
#   - a program linked with libtide.a needs no libgcc_s.so.1 either;
#   - the shared heaps and the backup heap are in .bss, where no relocation
#     writes their pages at load and a process that never uses them has no
#     page of them; the empty heap (read by a thread's first malloc, before
#     any code of tide runs) is the one heap in initialised data;
#   - the code an ordinary program runs of tide (progs/code_resident.c:
#     every entry point, size range and thread state) is in the first
#     64 KiB of libtide.so's text, so that the kernel's fault-around
#     (64 KiB about a faulting page) keeps only that window of the code
#     resident, and the page of .fini (the _fini the loader calls at exit),
#     alone in the last window (Makefile, src/static.c, src/tide.ld).
#     Release builds only: -O1 and the sanitizers' code does not fit.
. "$ROOT/tests/api/helpers.bash"
api_setup footprint

needed() {  # needed FILE: its DT_NEEDED entries, one a line
    readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

for lib in "$BUILD/libtide.so" "$BUILD/libgc.so.1"; do
    name=$(basename "$lib")
    deps=$(needed "$lib")
    if ! echo "$deps" | grep -qx 'libc.so.6'; then
        fail "needs_no_libgcc_s_$name" "readelf -d found no libc.so.6 among its NEEDED entries: $(echo $deps)"
    elif echo "$deps" | grep -q '^libgcc_s'; then
        fail "needs_no_libgcc_s_$name" "$name needs $(echo "$deps" | grep '^libgcc_s') at load"
    else
        pass "needs_no_libgcc_s_$name"
    fi
done

# At run time: not mapped in a process that takes no stacks, mapped (by
# tide's constructor) in one that does.  A sanitizer's runtime needs
# libgcc_s itself.
if [ -n "${SANITIZE:-}" ]; then
    skip libgcc_s_mapped_only_for_stacks "the $SANITIZE runtime loads libgcc_s"
else
    without=$(env LD_PRELOAD="$BUILD/libtide.so" TIDE_CONF= /bin/cat /proc/self/maps 2>&1)
    with=$(env LD_PRELOAD="$BUILD/libtide.so" TIDE_CONF=guard=1 /bin/cat /proc/self/maps 2>&1)
    if ! echo "$without" | grep -q 'libtide\.so'; then
        fail libgcc_s_mapped_only_for_stacks "libtide.so is not in the maps of a program it was preloaded into"
    elif echo "$without" | grep -q 'libgcc_s'; then
        fail libgcc_s_mapped_only_for_stacks "libgcc_s is mapped with no option that takes stacks"
    elif ! echo "$with" | grep -q 'libgcc_s'; then
        fail libgcc_s_mapped_only_for_stacks "guard=1 takes stacks, but libgcc_s was not loaded"
    else
        pass libgcc_s_mapped_only_for_stacks
    fi
fi

# A program linked with libtide.a (no C++, nothing else that unwinds).
if [ -n "${SANITIZE:-}" ]; then
    skip static_link_needs_no_libgcc_s "a sanitizer build has no static libtide to link"
else
    printf '#include <stdlib.h>\nint main(void) { void *volatile p = malloc(16); free(p); return 0; }\n' \
        >"$tmp/one.c"
    if ! ${CC:-cc} -O1 -fno-builtin -pthread -o "$tmp/one" "$tmp/one.c" "$BUILD/libtide.a" -ldl 2>"$tmp/cc.log"; then
        fail static_link_needs_no_libgcc_s "does not link: $(snip "$tmp/cc.log")"
    elif ! nm "$tmp/one" | grep -q ' T malloc$'; then
        fail static_link_needs_no_libgcc_s "the program does not define malloc: libtide.a was not linked in"
    elif ! "$tmp/one"; then
        fail static_link_needs_no_libgcc_s "the program linked with libtide.a failed"
    elif needed "$tmp/one" | grep -q '^libgcc_s'; then
        fail static_link_needs_no_libgcc_s "it needs $(needed "$tmp/one" | grep '^libgcc_s')"
    else
        pass static_link_needs_no_libgcc_s
    fi
fi

# The static heaps: nm's type letter is b/B for .bss, d/D for .data.
kind() {  # kind SYMBOL: its nm type letter in libtide.so
    nm "$BUILD/libtide.so" 2>/dev/null | awk -v s="$1" '$3 == s { print $2 }'
}
msg=""
[ "$(kind tidei_empty_heap)" = d ] || [ "$(kind tidei_empty_heap)" = D ] ||
    msg="the empty heap is not in .data (nm: '$(kind tidei_empty_heap)')"
for h in tidei_shared_heaps tidei_backup_heap; do
    k=$(kind $h)
    [ "$k" = b ] || [ "$k" = B ] || msg="$msg${msg:+; }$h is not in .bss (nm: '$k')"
done
result static_heaps_in_bss "$msg"

# The resident code.  The bound: the 64 KiB from the start of the text
# segment, and the page of .fini, alone in the last window.
if [ -n "${SANITIZE:-}" ]; then
    skip code_resident_one_window "a $SANITIZE build's code does not fit in 64 KiB"
elif ! readelf --debug-dump=info "$BUILD/libtide.so" 2>/dev/null | grep -m1 'DW_AT_producer' | grep -q -- ' -O2'; then
    skip code_resident_one_window "not a release (-O2) build"
else
    api_build code_resident
    read -r text_va text_sz text_align < <(readelf -lW "$BUILD/libtide.so" |
        awk '$1 == "LOAD" && $8 == "E" { print $3, $6, $9 }')
    out=$(LD_PRELOAD= "$prog" 2>&1)
    read -r _ lo hi rss <<<"$out"
    if [ -z "$text_va" ] || [ "$((text_align))" -ne 65536 ] || [ "$((text_va % 65536))" -ne 0 ]; then
        fail code_resident_one_window "the text segment does not start at a 64 KiB boundary (readelf: ${text_va:-none} align ${text_align:-none})"
    elif [ -z "${rss:-}" ]; then
        fail code_resident_one_window "the program printed no code line: $out"
    elif [ "$((0x$lo % 65536))" -ne 0 ]; then
        skip code_resident_one_window "the loader did not map the text at a 64 KiB boundary ($lo)"
    else
        bound=68
        echo "# code_resident: ${rss} KiB of libtide.so's code resident, bound ${bound} KiB (text $((text_sz / 1024)) KiB)"
        msg=""
        [ "$rss" -le "$bound" ] ||
            msg="${rss} KiB of libtide.so's code is resident in an ordinary program, more than the first 64 KiB window and the page of .fini (${bound} KiB): code it runs is outside the first window (src/static.c)"
        result code_resident_one_window "$msg"
    fi
fi
exit $rc
