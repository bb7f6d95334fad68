#!/usr/bin/env bash
# api/secure.sh — secure mode and the report files (docs/hardening.md),
# through tests/api/progs/secure_prog.c linked with $BUILD/libtide.a:
#   - control: run as it is, TIDE_CONF=stats=1,stats_file=...,prof=1,
#     prof_file=...,leak_check=1,leak_file=...,verbose=1,guard=1 writes the
#     three files and installs the SIGSEGV handler, and os_fail_from=1 makes
#     malloc fail; so the checks below can fail;
#   - setgid (run by root with another group: AT_SECURE) and setuid root run
#     by nobody (setpriv): the same TIDE_CONF, plus os_fail_from=1, is not
#     read: no file is created, nothing is printed, malloc works, no
#     handler is installed;
#   - everywhere: a symlink planted at stats_file, prof_file or leak_file
#     is not followed (its target keeps its contents); an existing file at a
#     fixed prof_file is not truncated, nor one tide_prof_dump(path) names;
#     a prof_file tide created in this run is written again (three dumps to
#     one name leave one profile).
# Tests run as root (CI does); when not, or when the file system ignores
# setuid bits (nosuid), the setuid/setgid cases print SKIP.
# th-timeout: 300
. "$ROOT/tests/api/helpers.bash"
api_setup secure

if [ -n "${SANITIZE:-}" ]; then
    skip secure_mode "a sanitizer build has no static libtide to link"
    exit 0
fi
# the directory must let nobody in: mktemp -d makes it 700
chmod 755 "$tmp"
prog=$tmp/secure-prog
if ! api_build_static secure_prog "$prog"; then
    echo "FAIL secure_prog_build: does not compile: $(snip "$tmp/cc-static.log")"
    exit 1
fi
out=$tmp/out
mkdir -p "$out"
CONF="stats=1,stats_file=$out/stats.txt,prof=1,prof_file=$out/prof.heap,leak_check=1,leak_file=$out/leak.txt,verbose=1,guard=1"

# ---- control: the same program, not privileged -----------------------------

rm -f "$out"/*
TIDE_CONF=$CONF timeout 60 "$prog" run >"$tmp/c.out" 2>"$tmp/c.err"
st=$?
m=$(sigcgt_of "$tmp/c.out")
if [ $st -ne 23 ] || ! grep -q '^secure 0$' "$tmp/c.out"; then
    fail control_reads_conf "status $st (want 23, leak_exitcode): $(snip "$tmp/c.out") $(snip "$tmp/c.err")"
elif [ ! -s "$out/stats.txt" ] || [ ! -s "$out/prof.heap" ] || [ ! -s "$out/leak.txt" ]; then
    fail control_reads_conf "want stats.txt, prof.heap and leak.txt, found: $(ls "$out" | tr '\n' ' ')"
elif ! grep -q '^tide 0\.[0-9]*:' "$tmp/c.err" || [ -z "$m" ] || [ $((16#$m & SIGCGT_SEGV_BUS)) -ne $SIGCGT_SEGV_BUS ]; then
    fail control_reads_conf "no verbose line or no handler (SigCgt '$m'): $(snip "$tmp/c.err")"
else
    pass control_reads_conf
fi
TIDE_CONF=os_fail_from=1 timeout 60 "$prog" run >"$tmp/f.out" 2>"$tmp/f.err"
if grep -q '^malloc failed$' "$tmp/f.out"; then pass control_os_fail; else fail control_os_fail "$(snip "$tmp/f.out")"; fi

# ---- privileged runs ------------------------------------------------------------

# secure_run NAME CMD...: runs CMD (the privileged program) with the
# TIDE_CONF above and checks that none of it was read
secure_run() {
    local name=$1
    shift
    rm -f "$out"/*
    TIDE_CONF="$CONF,os_fail_from=1" timeout 60 "$@" run >"$tmp/$name.out" 2>"$tmp/$name.err"
    local st=$?
    m=$(sigcgt_of "$tmp/$name.out")
    if grep -q '^secure 0$' "$tmp/$name.out"; then
        skip "$name" "AT_SECURE is not set (a file system mounted nosuid?)"
    elif [ $st -ne 0 ] || ! grep -q '^secure 1$' "$tmp/$name.out" || ! grep -q '^ok$' "$tmp/$name.out"; then
        fail "$name" "status $st, want 0, 'secure 1' and 'ok': $(snip "$tmp/$name.out") $(snip "$tmp/$name.err")"
    elif [ -n "$(ls -A "$out")" ]; then
        fail "$name" "files were written: $(ls -l "$out" | tr '\n' ' ')"
    elif [ -s "$tmp/$name.err" ]; then
        fail "$name" "something was printed: $(snip "$tmp/$name.err")"
    elif [ -z "$m" ] || [ $((16#$m & SIGCGT_SEGV_BUS)) -ne 0 ]; then
        fail "$name" "a SIGSEGV/SIGBUS handler is installed (SigCgt '$m')"
    else
        pass "$name"
    fi
}

if [ "$(id -u)" != 0 ]; then
    skip secure_setgid "not run as root"
    skip secure_setuid_nobody "not run as root"
else
    cp "$prog" "$tmp/sgid-prog"
    chgrp nogroup "$tmp/sgid-prog" 2>/dev/null || chgrp 65534 "$tmp/sgid-prog"
    chmod 2755 "$tmp/sgid-prog"
    secure_run secure_setgid "$tmp/sgid-prog"

    cp "$prog" "$tmp/suid-prog"
    chown root:root "$tmp/suid-prog"
    chmod 4755 "$tmp/suid-prog"
    chmod 777 "$out"  # so that nobody could write there too, if tide tried
    if command -v setpriv >/dev/null 2>&1; then
        secure_run secure_setuid_nobody setpriv --reuid=nobody --regid=nogroup --clear-groups "$tmp/suid-prog"
    elif command -v runuser >/dev/null 2>&1; then
        secure_run secure_setuid_nobody runuser -u nobody -- "$tmp/suid-prog"
    else
        skip secure_setuid_nobody "neither setpriv nor runuser"
    fi
fi

# ---- report files: no symlink followed, nothing truncated ------------------------

rm -f "$out"/*
chmod 755 "$out"
echo KEEP >"$tmp/target"
bad=""
for opt in stats_file prof_file leak_file; do
    ln -sf "$tmp/target" "$out/link"
    case $opt in
        stats_file) c="stats=1,stats_file=$out/link" ;;
        prof_file) c="prof=1,prof_file=$out/link" ;;
        leak_file) c="leak_check=1,leak_exitcode=0,leak_file=$out/link" ;;
    esac
    TIDE_CONF=$c timeout 60 "$prog" run >"$tmp/l.out" 2>"$tmp/l.err"
    [ "$(cat "$tmp/target")" = KEEP ] || bad="$bad $opt(the target now holds: $(snip "$tmp/target"))"
    grep -q "cannot .*$out/link" "$tmp/l.err" || bad="$bad $opt(no warning: $(snip "$tmp/l.err"))"
    echo KEEP >"$tmp/target"
done
if [ -z "$bad" ]; then pass symlink_not_followed; else fail symlink_not_followed "$bad"; fi

rm -f "$out"/*
echo KEEP >"$out/fixed.heap"
TIDE_CONF="prof=1,prof_file=$out/fixed.heap" timeout 60 "$prog" run >"$tmp/x.out" 2>"$tmp/x.err"
TIDE_CONF="prof=1,prof_file=$out/other.%p.heap" timeout 60 "$prog" dump "$out/fixed.heap" >"$tmp/y.out" 2>"$tmp/y.err"
if [ "$(cat "$out/fixed.heap")" != KEEP ]; then
    fail existing_not_truncated "the file now holds: $(snip "$out/fixed.heap")"
elif ! grep -q "cannot write the heap profile $out/fixed.heap (errno 17)" "$tmp/x.err"; then
    fail existing_not_truncated "no warning (EEXIST) at exit: $(snip "$tmp/x.err")"
elif [ "$(head -n 1 "$tmp/y.out")" != "dump -1 17" ]; then
    fail existing_not_truncated "tide_prof_dump(an existing file): '$(head -n 1 "$tmp/y.out")', want 'dump -1 17'"
else
    pass existing_not_truncated
fi

rm -f "$out"/*
TIDE_CONF="prof=1,prof_file=$out/same.heap" timeout 60 "$prog" dumps 2 >"$tmp/d.out" 2>"$tmp/d.err"
st=$?
n=$(grep -c '^heap profile:' "$out/same.heap" 2>/dev/null)
if [ $st -ne 0 ] || [ "$(tr '\n' ' ' <"$tmp/d.out")" != "dump 0 0 dump 0 0 " ]; then
    fail own_file_rewritten "status $st: $(snip "$tmp/d.out") $(snip "$tmp/d.err")"
elif [ "$n" != 1 ] || grep -q cannot "$tmp/d.err"; then
    fail own_file_rewritten "$n profiles in the file (want 1: each write replaces the last): $(snip "$tmp/d.err")"
else
    pass own_file_rewritten
fi
exit $rc
