# objects.py — an allocation-heavy Python workload for bench/run.sh.
#
# Run with PYTHONMALLOC=malloc, so that every object Python creates is a
# malloc/free (pymalloc, Python's own small-object allocator, is bypassed) and
# the allocator under test does all the work.  Stresses: many short-lived
# small objects (ints, tuples, strings, dict entries), dicts and lists that
# grow by realloc, and string building.  The work is deterministic; the
# printed checksum is the same under every allocator.
#
# Usage: python3 objects.py SCALE        (SCALE 1 is about a second under glibc)
import sys


def words(n, seed):
    """n pseudo-random lower-case words built character by character."""
    x = seed
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        length = 3 + x % 9
        w = []
        for _ in range(length):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            w.append(chr(97 + x % 26))
        out.append("".join(w))
    return out


def index_documents(docs):
    """word -> list of (doc, position): a dict of growing lists of tuples."""
    index = {}
    for d, doc in enumerate(docs):
        for pos, w in enumerate(doc.split()):
            index.setdefault(w, []).append((d, pos))
    return index


def records(n):
    """Dicts of mixed fields, filtered, sorted and formatted."""
    rows = [{"id": i, "name": "user%05d" % i, "score": (i * 7919) % 1000,
             "tags": ["t%d" % (i % k) for k in (3, 5, 7)]} for i in range(n)]
    good = [r for r in rows if r["score"] > 300]
    good.sort(key=lambda r: (r["score"], r["name"]))
    text = "\n".join("%s,%d,%s" % (r["name"], r["score"], "|".join(r["tags"])) for r in good)
    return len(text), len(good)


def churn(n):
    """Sets, tuples and big ints created and dropped in a loop."""
    total = 0
    live = []
    for i in range(n):
        s = {(i * j) % 97 for j in range(20)}
        t = tuple(sorted(s))
        live.append(t)
        if len(live) > 500:
            del live[: 250]
        total += sum(t) + (i ** 5) % 1000003
    return total


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    vocab = words(int(5000 * scale) + 100, 7)
    docs = [" ".join(vocab[(d * 31 + k * 17) % len(vocab)] for k in range(60))
            for d in range(int(3000 * scale))]
    index = index_documents(docs)
    postings = sum(len(v) for v in index.values())
    text_len, n_good = records(int(40000 * scale))
    total = churn(int(30000 * scale))
    print("checksum", len(index), postings, text_len, n_good, total % 1000000007)


main()
