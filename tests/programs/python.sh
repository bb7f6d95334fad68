# tests/programs/python.sh — CPython on an allocation-heavy script, with
# PYTHONMALLOC=malloc so that every object goes through malloc/free (not
# pymalloc's arenas): dicts, lists, sets, strings, json, classes, sorting,
# reference cycles collected by the gc.  The script's output (counts and
# digests, nothing that depends on addresses) must be the same under the
# system allocator and under tide, and under tide with guarded sampling
# (--guard=100).
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=python

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
need "$name" "$PY" || exit 0
pt_setup "$name" || exit 0

cat >"$PT_TMP/work.py" <<'EOF'
import collections, gc, hashlib, json, random, re, sys

rng = random.Random(1234)
h = hashlib.sha256()
def out(*a):
    s = " ".join(str(x) for x in a)
    h.update(s.encode())
    print(s)

# Dicts and lists of strings, grown and shrunk.
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 12)))
         for _ in range(60000)]
d = {}
for i, w in enumerate(words):
    d.setdefault(w, []).append(i)
out("distinct words", len(d))
for w in list(d)[::3]:
    del d[w]
out("after delete", len(d), sum(len(v) for v in d.values()))

# Strings: joins, splits, formatting, replace, regex.
text = " ".join(words)
out("text", len(text), text.count("ab"), len(text.split("e")))
s = "".join("%s:%d;" % (w, len(w)) for w in words[:20000])
out("joined", len(s), hashlib.md5(s.encode()).hexdigest())
out("regex", len(re.findall(r"[aeiou]{2,}", text)), len(re.sub(r"([a-m]+)", r"<\1>", text[:200000])))
up = [w.upper() + w[::-1] for w in words]
out("upper", sum(map(len, up)))

# JSON round trips of nested structures.
def make(depth):
    if depth == 0:
        return rng.choice([rng.random(), rng.randint(-10**6, 10**6), words[rng.randrange(len(words))], None, True])
    if rng.random() < 0.5:
        return [make(depth - 1) for _ in range(rng.randint(0, 6))]
    return {words[rng.randrange(len(words))]: make(depth - 1) for _ in range(rng.randint(0, 6))}
docs = [make(5) for _ in range(300)]
blob = json.dumps(docs, sort_keys=True)
back = json.loads(blob)
out("json", len(blob), back == docs, hashlib.sha256(blob.encode()).hexdigest()[:16])
for _ in range(3):
    blob = json.dumps(json.loads(blob), sort_keys=True, indent=1)
out("json again", len(blob))

# Sets, Counter, sorting with keys, tuples.
c = collections.Counter(w[:2] for w in words)
out("counter", len(c), c.most_common(3))
st = set(words) - set(words[::2])
out("set", len(st), sorted(st)[:3])
pairs = sorted(((len(w), w) for w in words), key=lambda t: (-t[0], t[1]))
out("sorted", pairs[0], pairs[-1])

# Objects with reference cycles, freed by the collector.
class Node:
    __slots__ = ("val", "next", "data")
    def __init__(self, val):
        self.val = val
        self.next = None
        self.data = [val] * (val % 7)
total = 0
for rnd in range(20):
    nodes = [Node(i) for i in range(20000)]
    for i, n in enumerate(nodes):
        n.next = nodes[(i * 7 + rnd) % len(nodes)]
    total += sum(n.next.val for n in nodes)
    del nodes
    gc.collect()
out("cycles", total)

# bytes and bytearrays of many sizes, grown by append.
ba = bytearray()
for i in range(200000):
    ba += bytes([i & 255]) * (i % 5)
out("bytearray", len(ba), hashlib.sha1(ba).hexdigest()[:16])
big = [bytes(rng.randrange(1, 200000)) for _ in range(200)]
out("big", sum(map(len, big)))

print("digest", h.hexdigest())
EOF

export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
run_py() {  # run_py sys|tide
    "run_$1" "$PT_TMP/$1.log" "$PY" "$PT_TMP/work.py" >"$PT_TMP/$1.out" 2>"$PT_TMP/$1.err"
}
pt_compare "$name" python3 "the script's output" 'python3[.0-9]*' run_py || exit 0
pt_finished "$name" '^digest ' || exit 0
pass "$name"

# The same script with guarded sampling at one allocation in 100 (hundreds
# of thousands of blocks through the guarded slots, 16-byte aligned, moved
# by realloc, quarantined): the same output, and no report.
run_tide "$PT_TMP/guard.log" --guard=100 "$PY" "$PT_TMP/work.py" >"$PT_TMP/guard.out" 2>"$PT_TMP/guard.err"
st=$?
ran_ok python_guarded "python3 under tide --guard=100" $st "$PT_TMP/guard.err" || exit 0
same_output python_guarded "the script's output" "$PT_TMP/sys.out" "$PT_TMP/guard.out" || exit 0
if grep -q '^tide: ' "$PT_TMP/guard.err"; then
    fail python_guarded "tide reported: $(head -c 300 "$PT_TMP/guard.err")"
    exit 0
fi
pass python_guarded
