# tests/programs/w3m_gc.sh — Debian's w3m (linked against Boehm's libgc,
# which it allocates almost everything from) renders a generated 4 MB HTML
# page (tables, nested lists, links, entities) with `-dump -cols 120`, once
# on the system libgc and once under `tide-run --gc`, where tide's
# libgc.so.1 serves every GC_* call.  The two dumps must be identical, and
# LD_DEBUG=bindings must show w3m's GC_* references bound to tide's
# libgc.so.1 and nothing bound to the system's libgc.  The collector must
# have run (w3m makes hundreds of collections' worth of garbage).
# th-timeout: 600
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=w3m-gc

need "$name" w3m python3 || exit 0
pt_build_usable "$name" || exit 0
[ -f "$BUILD/libgc.so.1" ] || { fail "$name" "$BUILD/libgc.so.1 not built"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

python3 - "$T/page.html" <<'PY'
import sys
out = open(sys.argv[1], "w")
w = out.write
w("<html><head><title>tide GC test page</title></head><body>\n")
seed = 7
def rnd(n):
    global seed
    seed = (seed * 1103515245 + 12345) % 2147483648
    return (seed >> 16) % n
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]
def sentence(n):
    return " ".join(words[rnd(len(words))] for _ in range(n))
size = 0
sec = 0
while size < 4 * 1024 * 1024:
    sec += 1
    s = "<h2>Section %d: %s</h2>\n<p>%s &amp; %s &lt;b&gt;</p>\n" % (sec, sentence(3), sentence(40), sentence(10))
    s += "<table border=1><tr><th>#</th><th>name</th><th>value</th><th>link</th></tr>\n"
    for r in range(12):
        s += "<tr><td>%d</td><td>%s</td><td align=right>%d.%02d</td><td><a href=\"http://example.org/%d/%d\">%s</a></td></tr>\n" % (
            r, sentence(2), rnd(100000), rnd(100), sec, r, sentence(1))
    s += "</table>\n<ul>\n"
    for i in range(6):
        s += "<li>%s<ol>" % sentence(8)
        for j in range(3):
            s += "<li><a href=\"#s%d\">%s</a> %s</li>" % (rnd(sec + 1), sentence(2), sentence(6))
        s += "</ol></li>\n"
    s += "</ul>\n<pre>%s</pre>\n" % "\n".join(sentence(7) for _ in range(3))
    w(s)
    size += len(s)
w("</body></html>\n")
PY

timeout "$PT_LIMIT" w3m -dump -cols 120 "$T/page.html" >"$T/sys.out" 2>"$T/sys.err"
rc=$?
[ $rc -eq 0 ] || { fail "$name" "w3m on the system libgc: exit $rc: $(head -c 300 "$T/sys.err")"; exit 0; }
timeout "$PT_LIMIT" env TIDE_CONF=stats=json,stats_file="$T/stats.json" \
    "$TIDE_RUN" --gc w3m -dump -cols 120 "$T/page.html" >"$T/tide.out" 2>"$T/tide.err"
rc=$?
[ $rc -eq 0 ] || { fail "$name" "w3m under tide-run --gc: exit $rc: $(head -c 300 "$T/tide.err")"; exit 0; }
lines=$(wc -l <"$T/sys.out")
[ "$lines" -gt 10000 ] || { fail "$name" "the dump has only $lines lines"; exit 0; }
a=$(md5sum <"$T/sys.out") b=$(md5sum <"$T/tide.out")
[ "$a" = "$b" ] || { fail "$name" "dumps differ ($(diff "$T/sys.out" "$T/tide.out" | head -n 4 | tr '\n' '|'))"; exit 0; }

# bindings: w3m's GC_malloc goes to tide's libgc.so.1; nothing to the system's
printf '<html><body><p>x</p></body></html>\n' >"$T/p2.html"
LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/bind" "$TIDE_RUN" --gc w3m -dump "$T/p2.html" >/dev/null 2>&1
cat "$T"/bind.* >"$T/bindings" 2>/dev/null
gclib=$(cd "$BUILD" && pwd)/libgc.so.1
if grep -E "to /(usr/)?lib/[^ ]*libgc\.so" "$T/bindings" >/dev/null; then
    fail "$name" "a symbol bound to the system libgc: $(grep -E "to /(usr/)?lib/[^ ]*libgc\.so" "$T/bindings" | head -n 1)"
    exit 0
fi
grep -q "binding file w3m \[0\] to $gclib \[0\]: normal symbol \`GC_malloc'" "$T/bindings" ||
    grep -q "to $gclib \[0\]: normal symbol \`GC_malloc'" "$T/bindings" ||
    { fail "$name" "w3m's GC_malloc is not bound to $gclib"; exit 0; }
grep -q '"collections": [1-9]' "$T/stats.json" ||
    { fail "$name" "no collection in tide's report: $(grep -o '"gc": {[^}]*' "$T/stats.json" | head -c 200)"; exit 0; }
pass "$name"
