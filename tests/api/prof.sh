#!/usr/bin/env bash
# api/prof.sh — the heap profiler (TIDE_CONF=prof=1, docs: the gperftools
# legacy text heap profile): profiles written by tide_prof_dump, at exit to
# prof_file (%p, %n) and at prof_signal, read back by google-pprof and
# compared with the bytes the program itself counted per allocation site;
# tide_prof_dump's errors; tools/tide-run --profile; every entry point at
# every size range and in every thread state, realloc in place and across
# size ranges, a program of large blocks only, each site checked against the
# truth and the same program checked under gperftools' HEAPPROFILE.  The
# program is tests/api/progs/prof_prog.c.  The pprof checks print SKIP when
# google-pprof (Debian package google-perftools) is missing, the gperftools
# ones when libtcmalloc.so.4 (libgoogle-perftools4) is.
# th-timeout: 600
. "$ROOT/tests/api/helpers.bash"
api_setup prof
# No -fno-omit-frame-pointer (outside sanitizer builds): tide's unwinder must
# find the call stacks without frame pointers.
api_build prof_prog -lm
# From here on in the scratch directory: a profile written to the default
# prof_file (tide.%p.heap, in the working directory) goes away with it.
cd "$tmp"

PPROF=""
for cand in /usr/bin/google-pprof google-pprof; do
    if command -v "$cand" >/dev/null 2>&1; then PPROF=$cand; break; fi
done

# is_profile FILE: the header line, stack lines, MAPPED_LIBRARIES and a map;
# the header's totals are the sums of the stack lines (to within rounding);
# prints what is wrong, if anything.
is_profile() {
    [ -s "$1" ] || { echo "$1 is missing or empty"; return 1; }
    awk '
        NR == 1 {
            if ($0 !~ /^heap profile: *[0-9]+: +[0-9]+ \[ *[0-9]+: +[0-9]+\] @ heapprofile$/) { print "bad first line: " $0; bad = 1; exit }
            gsub(/[\[\]:]/, " "); h1 = $3; h2 = $4; h3 = $5; h4 = $6; next
        }
        /^MAPPED_LIBRARIES:$/ { maps = 1; next }
        maps { if ($0 ~ /^[0-9a-f]+-[0-9a-f]+ [-r][-w][-x][ps] /) nmap++; next }
        /^$/ { next }
        /^ *[0-9]+: +[0-9]+ \[ *[0-9]+: +[0-9]+\] @( 0x[0-9a-f]+)+$/ {
            n++; s = $0; gsub(/[\[\]:]/, " ", s); split(s, f, " ")
            t1 += f[1]; t2 += f[2]; t3 += f[3]; t4 += f[4]; next
        }
        { if (!badline) badline = $0 }
        function off(a, b) { d = a - b; if (d < 0) d = -d; return d > 0.001 * b + n }
        END {
            if (bad) exit 1
            if (badline != "") { print "a line that is neither a stack nor the map: " badline; exit 1 }
            if (!n) { print "no stack lines"; exit 1 }
            if (!maps || !nmap) { print "no MAPPED_LIBRARIES section with /proc/self/maps lines"; exit 1 }
            if (off(h1, t1) || off(h2, t2) || off(h3, t3) || off(h4, t4)) {
                printf "header %d: %d [%d: %d] but the %d stack lines add up to %d: %d [%d: %d]\n", h1, h2, h3, h4, n, t1, t2, t3, t4; exit 1
            }
        }' "$1"
}

# pprof_parse MODE PROFILE: google-pprof --text on it, as lines "total N",
# "first FUNCTION" (the top line: most bytes in the function itself) and
# "fn FUNCTION BYTES" (flat bytes).  Output of google-pprof --text --show_bytes:
#   Total: 4000 B
#       3000  75.0%  75.0%     3000  75.0% site_hot
#       1000  25.0% 100.0%     4000 100.0% site_cold
pprof_parse() {
    env -u LD_PRELOAD -u TIDE_CONF timeout 120 "$PPROF" --text --show_bytes --nodefraction=0 --nodecount=100000 \
        "--$1" "$prog" "$2" >"$tmp/pprof.txt" 2>"$tmp/pprof.err" || {
        echo "error google-pprof failed: $(grep -v '^Using local file' "$tmp/pprof.err" | head -c 300 | tr '\n' ' ')"
        return
    }
    awk '
        /^Total:/ { print "total", $2; next }
        NF >= 6 && $2 ~ /%$/ && $5 ~ /%$/ {
            name = $6; for (i = 7; i <= NF; i++) name = name " " $i
            if (!seen++) print "first", name
            print "fn", name, $1
        }' "$tmp/pprof.txt"
}

# check_sites TRUTH PARSED COL FIRST SIGMA: compares google-pprof's figures
# with the program's (COL live or alloc).  FIRST must be the top function.
# With SIGMA=1 every site's estimate must be within 10 % of the truth (and
# the share of FIRST within 10 % of its true share), and 10 % must be at
# least 4 standard deviations of the estimate (a check of the test itself);
# with SIGMA=0 only FIRST's share is checked, to within 10 points.
check_sites() {
    awk -v col="$3" -v want="$4" -v sigma="$5" '
        FNR == NR {
            if ($1 == "site") {
                t = col == "live" ? $4 : $6; sd = col == "live" ? $8 : $10
                truth[$2] = t; sdev[$2] = sd; tsum += t; names[++nn] = $2
            }
            next
        }
        $1 == "error" { sub(/^error /, ""); print; bad = 1; exit }
        $1 == "total" { total = $2 }
        $1 == "first" { first = $2 }
        $1 == "fn" { est[$2] += $3 }
        END {
            if (bad) exit 1
            if (!nn) { print "the program printed no site lines"; exit 1 }
            if (total <= 0) { print "google-pprof printed no total"; exit 1 }
            msg = ""
            if (first != want) msg = msg sprintf("top function %s, want %s; ", first, want)
            tshare = truth[want] / tsum; eshare = est[want] / total
            if (sigma) {
                if (eshare < 0.9 * tshare || eshare > 1.1 * tshare)
                    msg = msg sprintf("%s has %.1f %% of the bytes, truly %.1f %%; ", want, 100 * eshare, 100 * tshare)
                for (i = 1; i <= nn; i++) {
                    s = names[i]; t = truth[s]
                    if (t > 0) {
                        if (0.1 * t < 4 * sdev[s])
                            msg = msg sprintf("(test) %s: 10 %% is only %.1f standard deviations; ", s, 0.1 * t / sdev[s])
                        if (est[s] < 0.9 * t || est[s] > 1.1 * t)
                            msg = msg sprintf("%s: %d bytes estimated, truly %d (off by %.1f %%, %.1f sd); ", s, est[s], t, 100 * (est[s] - t) / t, (est[s] - t) / sdev[s])
                    } else if (est[s] > 0.01 * total)
                        msg = msg sprintf("%s: %d bytes estimated, truly none; ", s, est[s])
                }
            } else if (eshare < tshare - 0.1 || eshare > tshare + 0.1) {
                msg = msg sprintf("%s has %.1f %% of the bytes, truly %.1f %%; ", want, 100 * eshare, 100 * tshare)
            }
            if (msg != "") { print msg; exit 1 }
        }' "$1" "$2"
}

# pprof_top PROFILE MODE WANT: google-pprof's top function is WANT; prints
# what is wrong otherwise.
pprof_top() {
    local first
    pprof_parse "$2" "$1" >"$tmp/top.txt"
    if grep -q '^error' "$tmp/top.txt"; then sed -n 's/^error //p' "$tmp/top.txt"; return 1; fi
    first=$(sed -n 's/^first //p' "$tmp/top.txt")
    [ "$first" = "$3" ] || { echo "google-pprof's top function is '${first:-none}', want $3"; return 1; }
}

# ---- tide_prof_dump and the exit profile, at prof_sample=4096 ----------------
#
# An allocation of n bytes is sampled with probability p = 1 - exp(-n/4096)
# and then counts n/p bytes, so the estimate of a site's bytes has variance
# sum(n^2 (1-p)/p) over its blocks, about 4096 * (its bytes in blocks much
# smaller than 4 KiB).  With 100 MiB live the smallest site (site_cold, 10 %)
# has ~1 MiB in each small size and ~2000 samples; the program prints each
# standard deviation: 10 % of the truth is ~6 of them for site_cold and more
# for the others (checked below), so a correct profiler fails this about
# once in 10^8 runs.  At the default interval (512 KiB) that bound would be
# ~1 standard deviation, hence the second run checks only the top site.

mkdir "$tmp/exit"
TIDE_CONF="prof=1,prof_sample=4096,prof_file=$tmp/exit/exit.%p.heap" timeout 300 \
    "$prog" sites 100 4096 "$tmp/api.heap" >"$tmp/a.out" 2>"$tmp/a.err"
st=$?
pid=$(sed -n 's/^pid //p' "$tmp/a.out")
dump=$(sed -n 's/^dump //p' "$tmp/a.out")
if [ $st -ne 0 ]; then
    fail prof_dump_api "exit status $st: $(snip "$tmp/a.err")"
elif [ "$dump" = missing ]; then
    fail prof_dump_api "libtide.so has no tide_prof_dump"
elif [ "$dump" != "$tmp/api.heap 0 0" ]; then
    fail prof_dump_api "tide_prof_dump: want '0 0' (rc errno), got '$dump'"
elif ! msg=$(is_profile "$tmp/api.heap"); then
    fail prof_dump_api "the dump: $msg"
else
    pass prof_dump_api
fi

if [ -z "$PPROF" ]; then
    skip pprof_inuse_sites "no google-pprof (package google-perftools)"
    skip pprof_alloc_sites "no google-pprof (package google-perftools)"
elif [ ! -s "$tmp/api.heap" ]; then
    fail pprof_inuse_sites "no profile"
    fail pprof_alloc_sites "no profile"
else
    pprof_parse inuse_space "$tmp/api.heap" >"$tmp/inuse.txt"
    if msg=$(check_sites "$tmp/a.out" "$tmp/inuse.txt" live site_hot 1); then
        pass pprof_inuse_sites
    else
        fail pprof_inuse_sites "$msg"
    fi
    pprof_parse alloc_space "$tmp/api.heap" >"$tmp/alloc.txt"
    if msg=$(check_sites "$tmp/a.out" "$tmp/alloc.txt" alloc site_churn 1); then
        pass pprof_alloc_sites
    else
        fail pprof_alloc_sites "$msg"
    fi
fi

# The profile at exit: prof_file with %p replaced, nothing else written.
files=$(cd "$tmp/exit" && ls | tr '\n' ' ')
if [ $st -ne 0 ] || [ -z "$pid" ]; then
    fail prof_exit_file "the program failed (see prof_dump_api)"
elif [ "$files" != "exit.$pid.heap " ]; then
    fail prof_exit_file "want the file exit.$pid.heap, found: ${files:-none}"
elif ! msg=$(is_profile "$tmp/exit/exit.$pid.heap"); then
    fail prof_exit_file "$msg"
elif [ -n "$PPROF" ] && ! msg=$(pprof_top "$tmp/exit/exit.$pid.heap" inuse_space site_hot); then
    fail prof_exit_file "$msg"
else
    pass prof_exit_file
fi

# ---- the default prof_sample, 400 MiB live ------------------------------------

TIDE_CONF="prof=1,prof_file=$tmp/big-exit.%p.heap" timeout 300 \
    "$prog" sites 400 524288 "$tmp/big.heap" >"$tmp/b.out" 2>"$tmp/b.err"
st=$?
if [ $st -ne 0 ] || ! grep -q "^dump $tmp/big.heap 0 0\$" "$tmp/b.out"; then
    fail pprof_default_rate "exit status $st, $(grep '^dump' "$tmp/b.out") $(snip "$tmp/b.err")"
elif ! msg=$(is_profile "$tmp/big.heap"); then
    fail pprof_default_rate "$msg"
elif [ -z "$PPROF" ]; then
    skip pprof_default_rate "no google-pprof (package google-perftools)"
else
    pprof_parse inuse_space "$tmp/big.heap" >"$tmp/big.txt"
    if msg=$(check_sites "$tmp/b.out" "$tmp/big.txt" live site_hot 0); then
        pass pprof_default_rate
    else
        fail pprof_default_rate "$msg"
    fi
fi
rm -f "$tmp"/big*.heap

# ---- every entry point, size range and thread state ---------------------------
#
# prof_prog's ranges, resize and largeonly modes (see prof_prog.c) print the
# truth per site with its standard deviation at the interval given.  Each
# site's estimate must be within 5 standard deviations of the truth (plus
# 0.1 % and 64 bytes of rounding): a false failure once in 10^6 runs per
# site.  Every site's work is done a third in a new thread (no heap yet: a
# large-only thread for the large and huge sites), a third in the main
# thread and a third in a key destructor that runs after tide's (the heap
# is gone), so a thread state whose allocations are not counted costs its
# site a third of the bytes, which the test checks is at least 10 standard
# deviations (13 or more here).  A site whose truth is 0 (blocks realloc'ed away) must
# show under 0.1 % of the total.
#
# The same program under gperftools' heap profiler (libtcmalloc.so.4 with
# HEAPPROFILE, every allocation recorded; the program built without tide)
# must give the truth too: that checks the test's own figures, and that tide
# counts a realloc as gperftools does (at the realloc's call site, in place
# or not).  gperftools counts blocks of the memalign family at the size it
# rounds them to (the alignment, a page for valloc), up to 25 % more here.  SKIP where libtcmalloc.so.4 is missing.

# check_truth TRUTH PARSED COL REGEX BY: compares the estimates of
# google-pprof's output (PARSED, from pprof_parse) with the site lines of
# TRUTH whose names match REGEX (COL live or alloc); BY is tide (sampled, 5
# standard deviations) or gperftools (exact); prints what is wrong.
check_truth() {
    awk -v col="$3" -v re="$4" -v by="$5" '
        FNR == NR {
            if ($1 == "site") {
                t[$2] = col == "live" ? $4 : $6; sd[$2] = col == "live" ? $8 : $10
                tsum += t[$2]; if ($2 ~ re) names[++nn] = $2
            }
            next
        }
        $1 == "error" { sub(/^error /, ""); print; bad = 1; exit }
        $1 == "fn" { est[$2] += $3 }
        END {
            if (bad) exit 1
            if (!nn) { print "no site matches " re " in the program output"; exit 1 }
            msg = ""
            for (i = 1; i <= nn; i++) {
                s = names[i]; tr = t[s]; e = est[s] + 0
                if (by == "gperftools" && s ~ /^e_(aligned_alloc|posix_memalign|memalign|valloc)_/) {
                    lo = tr; hi = 1.25 * tr + 64
                } else {
                    tol = 5 * sd[s] + 0.001 * tr + 64; lo = tr - tol; hi = tr + tol
                    if (by == "tide" && tr > 0 && 10 * sd[s] > tr / 3)
                        msg = msg sprintf("(test) %s: a third of its bytes is only %.1f standard deviations; ", s, tr / 3 / sd[s])
                }
                if (tr == 0) { lo = 0; hi = 0.001 * tsum }
                if (e < lo || e > hi)
                    msg = msg sprintf("%s: %.0f bytes, truly %.0f (%+.1f %%%s); ", s, e, tr,
                                      tr ? 100 * (e - tr) / tr : 100, sd[s] > 0 ? sprintf(", %+.1f sd", (e - tr) / sd[s]) : "")
            }
            if (msg != "") { print msg; exit 1 }
        }' "$1" "$2"
}

# truth_tests PREFIX OUT HEAP COL BY PROG TEST=REGEX...: google-pprof on HEAP
# (a profile of PROG, which printed OUT), then one check_truth per TEST.
truth_tests() {
    local prefix=$1 out=$2 heap=$3 col=$4 by=$5 exe=$6 t msg
    shift 6
    local saved=$prog
    prog=$exe
    pprof_parse "${col/live/inuse}_space" "$heap" >"$tmp/$prefix.parsed"
    prog=$saved
    for t in "$@"; do
        if msg=$(check_truth "$out" "$tmp/$prefix.parsed" "$col" "${t#*=}" "$by"); then
            pass "${t%%=*}"
        else
            fail "${t%%=*}" "$msg"
        fi
    done
}

ENTRY_TESTS=()
for e in malloc calloc realloc aligned_alloc posix_memalign memalign valloc pvalloc; do
    ENTRY_TESTS+=("prof_entry_$e=^e_${e}_(small|large|huge)\$")
done
RANGES_TESTS=("${ENTRY_TESTS[@]}" 'prof_realloc_in_place=^(ro|re)_' 'prof_realloc_across_ranges=^ch_')

# gperftools: libtcmalloc.so.4 (Debian libgoogle-perftools4, which
# google-perftools pulls in) and prof_prog built without tide
TCMALLOC=""
for cand in /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4 /usr/lib64/libtcmalloc.so.4 /usr/lib/libtcmalloc.so.4; do
    if [ -f "$cand" ]; then TCMALLOC=$cand; break; fi
done
plain=$BUILD/tests/api/prof-prog-plain
if [ -n "$TCMALLOC" ] && [ -n "$PPROF" ] && [ -z "${SANITIZE:-}" ] &&
   ! ${CC:-cc} -std=gnu11 -O1 -g -fno-builtin -pthread -Wall -Wextra -Wno-unused-function -I"$ROOT/include" -I"$ROOT/tests" \
        -o "$plain" "$ROOT/tests/api/progs/prof_prog.c" -lm 2>"$tmp/cc-plain.log"; then
    fail prof_prog_plain_build "prof_prog.c does not build without tide: $(snip "$tmp/cc-plain.log")"
    TCMALLOC=""
fi

# gperftools_run NAME ARGS...: the plain prof_prog under libtcmalloc with
# HEAPPROFILE; its last profile (the one at exit) in $tmp/NAME.gp.heap.
gperftools_run() {
    local name=$1 last
    shift
    mkdir -p "$tmp/gp-$name"
    # (timeout outside env: only the program, not timeout, gets libtcmalloc)
    timeout 300 env -u TIDE_CONF LD_PRELOAD="$TCMALLOC" HEAPPROFILE="$tmp/gp-$name/p" "$plain" "$@" \
        >"$tmp/$name.gp.out" 2>"$tmp/$name.gp.err"
    local st=$?
    last=$(ls "$tmp/gp-$name" | grep '^p\.[0-9]*\.heap$' | sort | tail -n 1)
    if [ $st -ne 0 ] || [ -z "$last" ]; then
        echo "exit status $st, profiles: $(ls "$tmp/gp-$name" | tr '\n' ' '): $(snip "$tmp/$name.gp.err")"
        return 1
    fi
    mv "$tmp/gp-$name/$last" "$tmp/$name.gp.heap"
    rm -rf "$tmp/gp-$name"
}

# prof_mode NAME COL TESTS...: `prof_prog NAME 4096` (resize: 4 MiB) under
# tide, its checks, then the same under gperftools.
prof_mode() {
    local name=$1 col=$2 rate=4096 st msg
    shift 2
    [ "$name" = resize ] && rate=$((4 << 20))
    TIDE_CONF="prof=1,prof_sample=$rate,prof_file=$tmp/$name.heap" timeout 300 "$prog" "$name" "$rate" \
        >"$tmp/$name.out" 2>"$tmp/$name.err"
    st=$?
    if [ $st -ne 0 ] || ! msg=$(is_profile "$tmp/$name.heap"); then
        for t in "$@"; do fail "${t%%=*}" "prof_prog $name: exit status $st, ${msg:-} $(snip "$tmp/$name.err")"; done
    elif [ -z "$PPROF" ]; then
        for t in "$@"; do skip "${t%%=*}" "no google-pprof (package google-perftools)"; done
    else
        truth_tests "$name" "$tmp/$name.out" "$tmp/$name.heap" "$col" tide "$prog" "$@"
    fi
    local gtest=prof_gperftools_$name
    if [ -z "$TCMALLOC" ] || [ -z "$PPROF" ] || [ -n "${SANITIZE:-}" ]; then
        skip "$gtest" "no libtcmalloc.so.4 and google-pprof (package google-perftools), or a sanitizer build"
    elif ! msg=$(gperftools_run "$name" "$name" "$rate"); then
        fail "$gtest" "gperftools' run: $msg"
    else
        truth_tests "$name.gp" "$tmp/$name.gp.out" "$tmp/$name.gp.heap" "$col" gperftools "$plain" "$gtest=."
    fi
    rm -f "$tmp/$name.heap" "$tmp/$name.gp.heap"
}

prof_mode ranges live "${RANGES_TESTS[@]}"
prof_mode resize alloc 'prof_realloc_resize_in_place=^rs_(large|huge)_'
prof_mode largeonly live 'prof_large_only_program=^lo_'

# ---- prof_signal -------------------------------------------------------------

# signal_run NAME SIGNAL: `prof_prog wait` with prof_signal=SIGNAL, sent
# SIGUSR2 once it is ready; it waits (up to 5 s) for the profile to appear.
# Then the profile at exit follows: two files, distinct by %n.
signal_run() {
    local name=$1 sig=$2 k
    rm -rf "$tmp/sig" "$tmp/ready"
    mkdir "$tmp/sig"
    TIDE_CONF="prof=1,prof_sample=65536,prof_signal=$sig,prof_file=$tmp/sig/p.%p.%n.heap" \
        timeout 120 "$prog" wait 40 "$tmp/sig" "$tmp/ready" >"$tmp/s.out" 2>"$tmp/s.err" &
    local pid=$!
    for k in $(seq 1 1000); do [ -f "$tmp/ready" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.01; done
    if [ ! -f "$tmp/ready" ]; then
        kill $pid 2>/dev/null; wait $pid
        fail "$name" "the program did not start: $(snip "$tmp/s.err")"
        return
    fi
    # $pid is timeout's; the program's own is on its first line
    local ppid st files n
    ppid=$(sed -n 's/^pid //p' "$tmp/s.out")
    kill -USR2 "$ppid"
    wait $pid
    st=$?
    pid=$ppid
    files=$(cd "$tmp/sig" && ls | tr '\n' ' ')
    n=$(ls "$tmp/sig" | grep -c "^p\.$pid\.[0-9]*\.heap\$")
    if [ $st -ne 0 ]; then
        fail "$name" "exit status $st (killed by the signal?): $(snip "$tmp/s.err")"
    elif ! grep -q '^seen p\.' "$tmp/s.out"; then
        fail "$name" "no profile within 5 s of SIGUSR2 (program: $(snip "$tmp/s.out"))"
    elif [ "$n" != 2 ] || [ "$(echo "$files" | wc -w)" != 2 ]; then
        fail "$name" "want two files p.$pid.N.heap (the signal's and the exit's), found: $files"
    else
        local f first
        first=$(sed -n 's/^seen //p' "$tmp/s.out")
        for f in "$tmp"/sig/*; do
            if ! msg=$(is_profile "$f"); then fail "$name" "$(basename "$f"): $msg"; return; fi
        done
        if [ -n "$PPROF" ] && ! msg=$(pprof_top "$tmp/sig/$first" inuse_space site_hot); then
            fail "$name" "the profile at the signal: $msg"
            return
        fi
        pass "$name"
    fi
}
signal_run prof_signal_name SIGUSR2
signal_run prof_signal_number 12

# ---- tide_prof_dump's errors ---------------------------------------------------

env -u TIDE_CONF "$prog" dump "$tmp/off.heap" NULL >"$tmp/d.out" 2>"$tmp/d.err"
st=$?
if [ $st -ne 0 ] || grep -q missing "$tmp/d.out"; then
    fail prof_dump_off_einval "exit status $st: $(cat "$tmp/d.out") $(snip "$tmp/d.err")"
elif [ "$(cat "$tmp/d.out")" != "dump $tmp/off.heap -1 EINVAL
dump NULL -1 EINVAL" ]; then
    fail prof_dump_off_einval "want -1 EINVAL for a path and NULL, got: $(tr '\n' ' ' <"$tmp/d.out")"
elif [ -e "$tmp/off.heap" ] || ls | grep -q 'tide\..*\.heap'; then
    fail prof_dump_off_einval "a profile was written: $(ls | tr '\n' ' ')"
else
    pass prof_dump_off_einval
fi

TIDE_CONF="prof=1,prof_file=$tmp/null.%p.%n.heap" "$prog" dump "$tmp/no/such/dir/x.heap" NULL \
    >"$tmp/e.out" 2>"$tmp/e.err"
st=$?
if [ $st -ne 0 ] || grep -q missing "$tmp/e.out"; then
    fail prof_dump_errors "exit status $st: $(cat "$tmp/e.out") $(snip "$tmp/e.err")"
elif [ "$(head -n 1 "$tmp/e.out")" != "dump $tmp/no/such/dir/x.heap -1 ENOENT" ]; then
    fail prof_dump_errors "want -1 ENOENT for a path in a missing directory, got: $(head -n 1 "$tmp/e.out")"
else
    pass prof_dump_errors
fi
n=$(ls | grep -c '^null\.[0-9]*\.[0-9]*\.heap$')
if [ $st -ne 0 ] || grep -q missing "$tmp/e.out"; then
    fail prof_dump_null "the program failed (see prof_dump_errors)"
elif [ "$(sed -n 2p "$tmp/e.out")" != "dump NULL 0 0" ]; then
    fail prof_dump_null "tide_prof_dump(NULL): want '0 0' (rc errno), got: $(sed -n 2p "$tmp/e.out")"
elif [ "$n" != 2 ]; then
    fail prof_dump_null "want two files null.PID.N.heap (tide_prof_dump(NULL)'s and the exit's), found: $(ls | grep '^null' | tr '\n' ' ')"
else
    pass prof_dump_null
fi

# ---- tools/tide-run --profile --------------------------------------------------

if [ -n "${SANITIZE:-}" ]; then
    skip tide_run_profile "a sanitizer build of libtide cannot be preloaded into an uninstrumented program"
else
    TIDE_LIB=$BUILD/libtide.so timeout 120 "$TIDE_RUN" --profile "$tmp/run.heap" --conf prof_sample=65536 \
        "$prog" sites 40 65536 - >"$tmp/r.out" 2>"$tmp/r.err"
    st=$?
    if [ $st -ne 0 ]; then
        fail tide_run_profile "exit status $st: $(snip "$tmp/r.err")"
    elif ! msg=$(is_profile "$tmp/run.heap"); then
        fail tide_run_profile "$msg"
    elif [ -n "$PPROF" ] && ! msg=$(pprof_top "$tmp/run.heap" inuse_space site_hot); then
        fail tide_run_profile "$msg"
    else
        pass tide_run_profile
    fi
    # an unmodified program, and the --profile=PATH form
    if [ -x /usr/bin/python3 ]; then
        TIDE_LIB=$BUILD/libtide.so timeout 120 "$TIDE_RUN" --profile="$tmp/py.heap" \
            /usr/bin/python3 -c 'print(len([str(i) for i in range(10**5)]))' >"$tmp/py.out" 2>"$tmp/py.err"
        st=$?
        if [ $st -ne 0 ] || [ "$(cat "$tmp/py.out")" != 100000 ]; then
            fail tide_run_profile_python "exit status $st, output $(snip "$tmp/py.out") $(snip "$tmp/py.err")"
        elif ! msg=$(is_profile "$tmp/py.heap"); then
            fail tide_run_profile_python "$msg"
        else
            pass tide_run_profile_python
        fi
    else
        skip tide_run_profile_python "no /usr/bin/python3"
    fi
fi

exit $rc
