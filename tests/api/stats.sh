#!/usr/bin/env bash
# api/stats.sh — the reports tide writes by itself, driven by TIDE_CONF:
# stats=1 (text at exit, on stderr), stats=json with stats_file (a file per
# process with %p = pid), stats_signal (a report whenever the signal
# arrives, while threads allocate), an unwritable stats_file; and the JSON
# of tide_stats_print and the XML of malloc_info read by python's json and
# xml.etree, checked against the schema of docs/stats.md.  The program is
# tests/api/progs/stats_prog.c; tests/api/stats.c checks the figures.
. "$ROOT/tests/api/helpers.bash"
api_setup stats
api_build stats_prog

# python3 without tide, for the checkers.
PY=""
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 && env -u LD_PRELOAD "$cand" -c 'import json, xml.etree.ElementTree' 2>/dev/null; then
        PY=$cand
        break
    fi
done
py() { env -u LD_PRELOAD -u TIDE_CONF "$PY" "$@"; }

# The JSON schema of docs/stats.md: every key, its type, nothing else.
cat >"$tmp/check_json.py" <<'EOF'
import json, sys

TOP_INT = """live_bytes live_blocks small_live_bytes large_live_bytes n_large huge_bytes n_huge
n_malloc n_free requested_bytes cached_bytes abandoned_bytes pending_remote_frees free_run_bytes
huge_cached_bytes n_spans n_full_spans n_abandoned_spans mapped_bytes committed_bytes
returned_bytes metadata_bytes n_chunks n_heaps n_heaps_total n_os_calls""".split()
CLASS = "class block_size live_blocks n_malloc n_free n_spans cached_blocks".split()
HIST = "size blocks bytes".split()
HEAP = "id tid n_spans n_full_spans cached_bytes used_bytes n_malloc n_free".split()
GC = """heap_bytes live_bytes allocated_since_gc allocated_total reclaimed_total collections
explicit_frees threads pause_ns_total pause_ns_max max_heap_bytes""".split()

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)

def check(doc, exact, pid=None, min112=0):
    errs = []
    want = set(["tide", "pid", "exact_sizes", "classes", "histogram", "heaps", "gc"] + TOP_INT)
    if set(doc) != want:
        errs.append("keys: missing %s, extra %s" % (sorted(want - set(doc)), sorted(set(doc) - want)))
        return errs
    gc = doc["gc"]
    if set(gc) != set(GC + ["pause_histogram_ms"]) or not all(is_int(gc[k]) and gc[k] >= 0 for k in GC):
        errs.append("gc: %r" % gc)
    elif len(gc["pause_histogram_ms"]) != 8 or not all(is_int(v) for v in gc["pause_histogram_ms"].values()):
        errs.append("gc pause histogram: %r" % gc["pause_histogram_ms"])
    if not isinstance(doc["tide"], str) or not doc["tide"]:
        errs.append("tide: %r" % doc["tide"])
    if not is_int(doc["pid"]) or (pid is not None and doc["pid"] != pid):
        errs.append("pid: %r, want %r" % (doc["pid"], pid))
    if doc["exact_sizes"] is not exact:
        errs.append("exact_sizes: %r, want %r" % (doc["exact_sizes"], exact))
    for k in TOP_INT:
        if not is_int(doc[k]) or doc[k] < 0:
            errs.append("%s: %r" % (k, doc[k]))
    if errs:
        return errs
    cl = doc["classes"]
    if len(cl) != 81:
        errs.append("%d classes" % len(cl))
    for i, c in enumerate(cl):
        if set(c) != set(CLASS) or not all(is_int(c[k]) for k in CLASS) or c["class"] != i:
            errs.append("class entry %d: %r" % (i, c))
            break
        if c["n_malloc"] - c["n_free"] != c["live_blocks"] and exact:
            errs.append("class %d: n_malloc - n_free != live_blocks" % i)
    for h in doc["histogram"]:
        if set(h) != set(HIST) or not all(is_int(h[k]) for k in HIST) or h["bytes"] != h["size"] * h["blocks"]:
            errs.append("histogram entry %r" % h)
            break
    if exact:
        if sum(h["bytes"] for h in doc["histogram"]) != doc["live_bytes"]:
            errs.append("histogram bytes do not add up to live_bytes")
        if sum(h["blocks"] for h in doc["histogram"]) != doc["live_blocks"]:
            errs.append("histogram blocks do not add up to live_blocks")
    sizes = [h["size"] for h in doc["histogram"]]
    if len(set(sizes)) != len(sizes):
        errs.append("histogram: a size listed twice: %r" % sizes)
    byts = [h["bytes"] for h in doc["histogram"]]
    if byts != sorted(byts, reverse=True):
        errs.append("histogram not largest first")
    n112 = sum(h["blocks"] for h in doc["histogram"] if h["size"] == 112)
    if n112 < min112:
        errs.append("histogram: %d blocks of 112 bytes, want >= %d" % (n112, min112))
    for h in doc["heaps"]:
        if set(h) != set(HEAP) or not all(is_int(h[k]) for k in HEAP):
            errs.append("heap entry %r" % h)
            break
    if doc["live_bytes"] != doc["small_live_bytes"] + doc["large_live_bytes"] + doc["huge_bytes"]:
        errs.append("live_bytes != small + large + huge")
    return errs

# usage: check_json.py FILE EXACT(0|1) COUNT PID|- MIN112
# FILE holds COUNT JSON documents one after another (the reports appended).
path, exact, count, pid, min112 = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
text = open(path).read()
dec = json.JSONDecoder()
docs, i = [], 0
try:
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            break
        d, i = dec.raw_decode(text, i)
        docs.append(d)
except ValueError as e:
    print("not JSON after %d documents: %s" % (len(docs), e))
    sys.exit(1)
if len(docs) != count:
    print("%d JSON documents, want %d" % (len(docs), count))
    sys.exit(1)
for n, d in enumerate(docs):
    if not isinstance(d, dict):
        print("document %d is not an object" % n)
        sys.exit(1)
    errs = check(d, exact, None if pid == "-" else int(pid), min112)
    if errs:
        print("document %d: %s" % (n, "; ".join(errs[:4])))
        sys.exit(1)
EOF

cat >"$tmp/check_xml.py" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
errs = []
if root.tag != "malloc" or "version" not in root.attrib:
    errs.append("root <%s %r>" % (root.tag, root.attrib))
heaps = root.findall("heap")
if not heaps or heaps[0].get("nr") != "0":
    errs.append("no <heap nr=\"0\">")
for h in heaps:
    if h.find("sizes") is None:
        errs.append("heap %s has no <sizes>" % h.get("nr"))
    for s in h.iter("size"):
        if not all(k in s.attrib and s.get(k).isdigit() for k in ("from", "to", "total", "count")):
            errs.append("bad <size %r>" % s.attrib)
mm = [t for t in root.findall("total") if t.get("type") == "mmap"]
if len(mm) != 1 or int(mm[0].get("count")) < 1 or int(mm[0].get("size")) < 5 * 2**20:
    errs.append("<total type=\"mmap\">: %r (one 5 MiB block is live)" % [t.attrib for t in mm])
for t in ("current", "max"):
    if not [s for s in root.findall("system") if s.get("type") == t]:
        errs.append("no <system type=\"%s\">" % t)
if errs:
    print("; ".join(errs))
    sys.exit(1)
EOF

# count_reports FILE: how many text reports FILE holds
count_reports() { grep -c '^tide [0-9.]* heap report, pid ' "$1" 2>/dev/null || true; }

# ---- tide_stats_print(fd, 1) and malloc_info: parsed by python -------------

if [ -z "$PY" ]; then
    skip print_json_parses "no python3"
    skip malloc_info_xml_parses "no python3"
else
    if "$prog" print-json >"$tmp/p.json" 2>"$tmp/p.err" &&
       msg=$(py "$tmp/check_json.py" "$tmp/p.json" 1 1 - 1000); then
        pass print_json_parses
    else
        fail print_json_parses "${msg:-stats_prog failed: $(head -c 300 "$tmp/p.err")}"
    fi
    msg=""
    if "$prog" malloc-info >"$tmp/m.xml" 2>"$tmp/m.err" && msg=$(py "$tmp/check_xml.py" "$tmp/m.xml" 2>&1); then
        pass malloc_info_xml_parses
    else
        fail malloc_info_xml_parses "${msg:-stats_prog failed: $(head -c 300 "$tmp/m.err")}"
    fi
fi

# ---- stats=0 (the default): nothing printed ---------------------------------

env -u TIDE_CONF "$prog" pattern >"$tmp/o.out" 2>"$tmp/o.err"
if [ $? -eq 0 ] && [ ! -s "$tmp/o.err" ]; then
    pass no_report_by_default
else
    fail no_report_by_default "stderr: $(head -c 200 "$tmp/o.err")"
fi

# ---- stats=1: the text report at exit, on stderr ----------------------------

TIDE_CONF=stats=1 "$prog" pattern >"$tmp/t.out" 2>"$tmp/t.err"
st=$?
pid=$(sed -n 's/^pid //p' "$tmp/t.out")
n=$(count_reports "$tmp/t.err")
line112=$(grep -E '^    112 bytes \* [0-9]+ blocks \([0-9]+\.[0-9] %\) = [0-9]+ bytes \([0-9]+\.[0-9] %\)$' "$tmp/t.err")
blocks112=$(echo "$line112" | sed -n 's/^    112 bytes \* \([0-9]*\) blocks.*/\1/p')
if [ $st -ne 0 ]; then
    fail exit_report_text "exit status $st"
elif [ "$n" != 1 ] || ! grep -q "^tide [0-9.]* heap report, pid $pid\$" "$tmp/t.err"; then
    fail exit_report_text "want one report with pid $pid on stderr, got $n: $(head -c 300 "$tmp/t.err")"
elif [ -z "$blocks112" ] || [ "$blocks112" -lt 1000 ]; then
    fail exit_report_text "no line '112 bytes * N blocks (P %) = B bytes (P %)' with N >= 1000: $(grep ' 112 bytes' "$tmp/t.err")"
elif ! grep -q '^    5242880 bytes \* 1 blocks' "$tmp/t.err" || ! grep -q '^    102400 bytes \* 3 blocks' "$tmp/t.err" ||
     ! grep -q '^  live: ' "$tmp/t.err" || ! grep -q '^  thread heaps:' "$tmp/t.err"; then
    fail exit_report_text "the huge, large, live or heaps lines are missing: $(head -c 600 "$tmp/t.err")"
elif ! grep -q '^  cached: .* bytes in exited threads. spans' "$tmp/t.err"; then
    fail exit_report_text "no cached line"
else
    pass exit_report_text
fi

# ---- stats=json, stats_file with %p ----------------------------------------

rm -f "$tmp"/r-*.json
TIDE_CONF="stats=json,stats_file=$tmp/r-%p.json" "$prog" pattern >"$tmp/j.out" 2>"$tmp/j.err"
st=$?
pid=$(sed -n 's/^pid //p' "$tmp/j.out")
files=$(cd "$tmp" && ls r-*.json 2>/dev/null | tr '\n' ' ')
if [ $st -ne 0 ] || [ -s "$tmp/j.err" ]; then
    fail exit_report_json_file "exit status $st, stderr: $(head -c 200 "$tmp/j.err")"
elif [ "$files" != "r-$pid.json " ]; then
    fail exit_report_json_file "want the file r-$pid.json, found: ${files:-none}"
elif [ -z "$PY" ]; then
    skip exit_report_json_file "no python3"
elif ! msg=$(py "$tmp/check_json.py" "$tmp/r-$pid.json" 1 1 "$pid" 1000); then
    fail exit_report_json_file "$msg"
else
    pass exit_report_json_file
fi

# Without %p, reports are appended: two runs, two reports in one file.
rm -f "$tmp/two.txt"
TIDE_CONF="stats=1,stats_file=$tmp/two.txt" "$prog" pattern >/dev/null 2>&1
TIDE_CONF="stats=1,stats_file=$tmp/two.txt" "$prog" pattern >/dev/null 2>&1
n=$(count_reports "$tmp/two.txt")
if [ "$n" = 2 ]; then pass stats_file_appends; else fail stats_file_appends "$n reports in the file, want 2"; fi

# An unwritable stats_file: a warning naming it, the program unharmed.
TIDE_CONF="stats=1,stats_file=$tmp/no/such/dir/r.txt" "$prog" pattern >"$tmp/u.out" 2>"$tmp/u.err"
st=$?
if [ $st -eq 0 ] && grep -q "cannot open stats_file $tmp/no/such/dir/r.txt" "$tmp/u.err" &&
   [ "$(count_reports "$tmp/u.err")" = 0 ] && grep -q '^pid ' "$tmp/u.out"; then
    pass stats_file_unwritable
else
    fail stats_file_unwritable "exit status $st, stderr: $(head -c 300 "$tmp/u.err")"
fi

# ---- an unmodified program under tide-run ------------------------------------

if [ -n "${SANITIZE:-}" ]; then
    skip tide_run_python_json "a sanitizer build of libtide cannot be preloaded into an uninstrumented program"
elif [ -x /usr/bin/python3 ]; then
    rm -f "$tmp"/py-*.json
    TIDE_LIB=$BUILD/libtide.so TIDE_CONF="stats=json,stats_file=$tmp/py-%p.json" timeout 120 "$TIDE_RUN" \
        /usr/bin/python3 -c 'import json; print(len(json.dumps([{"k": i} for i in range(10**5)])))' \
        >"$tmp/py.out" 2>"$tmp/py.err"
    st=$?
    set -- "$tmp"/py-*.json
    if [ $st -ne 0 ] || [ "$(cat "$tmp/py.out")" != 1388890 ]; then
        fail tide_run_python_json "python under tide-run: exit status $st, output $(head -c 100 "$tmp/py.out") $(head -c 200 "$tmp/py.err")"
    elif [ $# -ne 1 ] || [ ! -f "$1" ]; then
        fail tide_run_python_json "want one report file, found: $*"
    elif [ -z "$PY" ]; then
        skip tide_run_python_json "no python3 to check the JSON"
    elif ! msg=$(py "$tmp/check_json.py" "$1" 1 1 "$(basename "$1" .json | sed 's/^py-//')" 0); then
        fail tide_run_python_json "$msg"
    else
        pass tide_run_python_json
    fi
else
    skip tide_run_python_json "no /usr/bin/python3"
fi

# ---- stats_signal: reports while four threads allocate ----------------------

# signal_run NAME CONF N CHECK: runs `stats_prog churn` with TIDE_CONF=CONF,
# sends it SIGUSR2 N times, each after the previous report is complete
# (REPORTS_DONE counts them), then stops it; sets $sig_err to a failure or "".
sig_err=""
signal_run() {
    local conf=$1 n=$2 done_fn=$3
    rm -f "$tmp/ready" "$tmp/stop"
    TIDE_CONF=$conf "$prog" churn "$tmp/ready" "$tmp/stop" >"$tmp/s.out" 2>"$tmp/s.err" &
    local pid=$! i k
    for k in $(seq 1 1000); do [ -f "$tmp/ready" ] && break; sleep 0.01; done
    if [ ! -f "$tmp/ready" ]; then sig_err="the program did not start"; kill $pid 2>/dev/null; wait $pid; return; fi
    sig_err=""
    for i in $(seq 1 "$n"); do
        kill -USR2 $pid 2>/dev/null || { sig_err="the program died before signal $i"; break; }
        # wait for report i to be complete (up to 20 s: a deadlock shows here)
        for k in $(seq 1 2000); do
            [ "$($done_fn)" -ge "$i" ] && break
            sleep 0.01
        done
        if [ "$($done_fn)" -lt "$i" ]; then sig_err="report $i did not come within 20 s of the signal (deadlock?)"; break; fi
        sleep 0.02
    done
    touch "$tmp/stop"
    for k in $(seq 1 6000); do kill -0 $pid 2>/dev/null || break; sleep 0.01; done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid 2>/dev/null
        [ -z "$sig_err" ] && sig_err="the program did not stop within 60 s of being told to (deadlock?)"
    fi
    wait $pid
    local st=$?
    if [ -z "$sig_err" ] && [ $st -ne 0 ]; then sig_err="exit status $st: $(head -c 300 "$tmp/s.err")"; fi
    if [ -z "$sig_err" ] && ! grep -q '^ops [0-9]' "$tmp/s.out"; then sig_err="no ops line: $(head -c 100 "$tmp/s.out")"; fi
}

# reports whose heap section has started (signal_run then leaves the
# handler a moment to write the few heap lines)
text_done() { grep -c '^  thread heaps:' "$tmp/s.err" 2>/dev/null || true; }
N_SIG=25
signal_run "stats_signal=SIGUSR2" $N_SIG text_done
if [ -z "$sig_err" ]; then
    n=$(count_reports "$tmp/s.err")
    n_sig=$(grep -c '^tide [0-9.]* heap report, pid [0-9]* (at a signal' "$tmp/s.err")
    if [ "$n" != $N_SIG ] || [ "$n_sig" != $N_SIG ]; then
        sig_err="$n reports ($n_sig marked 'at a signal') for $N_SIG signals"
    elif grep -v -E '^(tide |  [a-z ,]+:|    [0-9]+ bytes \* [0-9]+ blocks \([0-9]+\.[0-9] %\) = [0-9]+ bytes \([0-9]+\.[0-9] %\)$|    heap [0-9]+ (thread |pooled)|    \(other sizes\))' "$tmp/s.err" | grep -q .; then
        sig_err="unexpected lines (interleaved or torn reports?): $(grep -v -E '^(tide |  [a-z ,]+:|    [0-9]+ bytes|    heap )' "$tmp/s.err" | head -c 300)"
    fi
fi
if [ -z "$sig_err" ]; then pass signal_reports_text; else fail signal_reports_text "$sig_err"; fi

if [ -n "$PY" ]; then
    json_done() { cat "$tmp"/sig-*.json 2>/dev/null | grep -c '^}$'; }
    rm -f "$tmp"/sig-*.json
    signal_run "stats=json,stats_signal=USR2,stats_file=$tmp/sig-%p.json" 15 json_done
    if [ -z "$sig_err" ]; then
        set -- "$tmp"/sig-*.json
        if [ $# -ne 1 ] || [ ! -f "$1" ]; then
            sig_err="want one file sig-PID.json, found: $*"
        else
            # 15 reports at signals (exact_sizes false), then the one at exit
            head -n "$(grep -n '^}$' "$1" | sed -n '15p' | cut -d: -f1)" "$1" >"$tmp/sig15.json"
            tail -n "+$(( $(grep -n '^}$' "$1" | sed -n '15p' | cut -d: -f1) + 1 ))" "$1" >"$tmp/sigexit.json"
            if ! msg=$(py "$tmp/check_json.py" "$tmp/sig15.json" 0 15 - 0); then
                sig_err="the reports at a signal: $msg"
            elif ! msg=$(py "$tmp/check_json.py" "$tmp/sigexit.json" 1 1 - 0); then
                sig_err="the report at exit: $msg"
            fi
        fi
    fi
    if [ -z "$sig_err" ]; then pass signal_reports_json; else fail signal_reports_json "$sig_err"; fi
else
    skip signal_reports_json "no python3"
fi

exit $rc
