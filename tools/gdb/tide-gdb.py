# tide-gdb.py — gdb commands that look inside tide's heap.
#
# Load it into gdb with
#
#     (gdb) source tools/gdb/tide-gdb.py
#
# (or `gdb -x tools/gdb/tide-gdb.py ...`, or a `source` line in ~/.gdbinit),
# then, on a live process (`gdb -p PID`) or a core file (`gdb PROGRAM CORE`):
#
#     tide stats            the process-wide totals (as tide_stats_get sees them)
#     tide heap [-w]        live blocks by size, largest first:
#                             SIZE bytes * COUNT blocks (P %) = BYTES bytes (P %)
#                           -w counts small blocks by walking every span's free
#                           lists instead of folding the per-heap counters
#     tide block ADDR       what ADDR is: not tide's, free or live, and the block
#                           (or free page run) that holds it
#     tide threads [-v]     the thread heaps, what each owns and caches, the
#                           abandoned spans; -v adds what the free lists hold
#     tide report [-w] [-v] stats, heap and threads, one after the other
#     tide layout           the constants of tide's, as read from its debug info
#                           (needs only the library: works without a process)
#
# `tools/tide-heap PID` (or `tools/tide-heap CORE PROGRAM`) runs gdb in batch
# mode with these commands, for people who do not use gdb (docs/gdb.md).
#
# Nothing here calls into the inferior: every figure is read from tide's
# globals and metadata through gdb's Value API and raw memory reads, and the
# formulas of src/stats.c (tide_stats_get) and src/walk.c (tide_block_info)
# are redone in Python (each function says which C function it mirrors).  So
# the commands work on a core file as well as on a live process, and on a
# process stopped anywhere, even inside malloc (then the figures are those of
# a heap caught mid-update).  The globals are hidden-visibility symbols of
# libtide.so (or of a program linked with libtide.a); gdb finds them in the
# DWARF, so tide must be built with -g (it is: `make` builds with -O2 -g).
#
# No constant of tide's is written here: the sizes and shifts of
# src/tide_config.h, the notify states, the size classes of large and huge
# blocks and the span kinds (tide_span_kind_t) are read from the program's
# debug info, from the type of tidei_layout (src/layout.c), which restates
# the macros as enumerators.  `tide layout` prints what was read;
# tests/introspect/gdb.sh compares it with the headers and checks that no
# numeric layout constant is written in this file.

import struct

import gdb

# Lists longer than this are taken as corrupt (a cycle) and cut short.
LIST_LIMIT = 50 * 1000 * 1000

# struct's code of an unsigned integer, by its width in bytes.
UINT_CODE = {struct.calcsize(c): c for c in "BHIQ"}

# The globals every command needs (see src/tide_internal.h).
REQUIRED = ("tidei_arena", "tidei_heaps", "tidei_backup_heap", "tidei_shared_heaps", "tidei_global_ctr",
            "tidei_abandoned_spans", "tidei_abandoned_blocks", "tidei_class_size",
            "tidei_pagemap", "tidei_free_key", "tidei_init_state", "tidei_os_calls")


def _lookup(name):
    """The gdb.Symbol of tide's global `name`, or None."""
    sym = gdb.lookup_global_symbol(name)
    if sym is None:
        sym = gdb.lookup_static_symbol(name)
    return sym


def pct(part, whole):
    """part/whole as a percentage with one decimal, rounded as stats.c does."""
    tenths = (part * 1000 + whole // 2) // whole if whole else 0
    return "%d.%d" % (tenths // 10, tenths % 10)


def clamp(v):
    """stats.c's clamp(): a difference of counters, never below zero."""
    return v if v > 0 else 0


class Layout(object):
    """tide's constants, read from the debug info (src/layout.c): the
    enumerators of the field types of tidei_layout, without the TIDE_ or
    TIDE_LAYOUT_ prefix, as attributes (PAGE_SHIFT, SPAN_SMALL, RS_MASK,
    CLASS_LARGE, ...).  Reads no memory of the inferior, so it needs no
    process: the library's (or the program's) symbols are enough."""

    # What the commands use; a libtide without one of them does not match
    # this script.
    NEEDED = ("PAGE_SHIFT", "CHUNK_SHIFT", "CHUNK_SIZE", "CHUNK_PAGES", "N_CLASSES", "VA_BITS", "MAP_LEAF_BITS",
              "MAP_TOP_BITS", "RS_MASK", "RS_PTR_MASK", "RS_NORMAL", "RS_USE_NOTIFY", "RS_NOTIFYING", "RS_NEVER",
              "CLASS_LARGE", "CLASS_HUGE", "INIT_READY", "SPAN_FREE", "SPAN_SMALL", "SPAN_LARGE", "SPAN_HUGE")

    def __init__(self):
        sym = _lookup("tidei_layout")
        if sym is None:
            raise gdb.GdbError("tide: tidei_layout not found in the debug info: the program does not use tide, "
                               "libtide is not loaded (yet), was built without -g, or is older than src/layout.c "
                               "(then use the tide-gdb.py of its own source tree)")
        # C spelling -> value, in the order of the debug info
        self.c_names = []
        self.values = {}
        for field in sym.type.strip_typedefs().fields():
            t = field.type.strip_typedefs()
            if t.code != gdb.TYPE_CODE_ENUM:
                continue
            for e in t.fields():
                c_name = e.name.replace("TIDE_LAYOUT_", "TIDE_", 1)
                self.c_names.append(c_name)
                self.values[c_name] = int(e.enumval)
                setattr(self, c_name.replace("TIDE_", "", 1), int(e.enumval))
        missing = [n for n in self.NEEDED if not hasattr(self, n)]
        if missing:
            raise gdb.GdbError("tide: this libtide's tidei_layout has no %s: tide-gdb.py does not match it"
                               % ", ".join(missing))
        # tide_span_kind_t's names ("small", ...) and the notify states'
        self.kind_names = {v: n[len("TIDE_SPAN_"):].lower() for n, v in self.values.items()
                           if n.startswith("TIDE_SPAN_")}
        self.rs_names = {v: n[len("TIDE_RS_"):].lower().replace("_", "-") for n, v in self.values.items()
                         if n.startswith("TIDE_RS_") and n not in ("TIDE_RS_MASK", "TIDE_RS_PTR_MASK")}
        self.rs_names[self.RS_NEVER] += " (abandoned)"


class Tide(object):
    """A reader of one process's (or core file's) tide state.  Made afresh
    for every command: it caches what it reads (span descriptors, the notify
    lists), which is right only while the process stays stopped."""

    def __init__(self):
        if gdb.selected_thread() is None:
            raise gdb.GdbError("tide: no process or core file (attach with `gdb -p PID`, "
                               "or open a core with `gdb PROGRAM CORE`)")
        self.g = {}
        missing = []
        for name in REQUIRED:
            sym = _lookup(name)
            if sym is None:
                missing.append(name)
            else:
                self.g[name] = sym.value()
        if missing:
            what = "libtide's symbols" if len(missing) == len(REQUIRED) else "some of libtide's symbols (%s)" \
                % ", ".join(missing)
            raise gdb.GdbError(
                "tide: %s not found: the program does not use tide, libtide.so is not loaded (yet), "
                "or it was built without -g; for a core file, give gdb the program too "
                "(`gdb PROGRAM CORE`) and, if libtide.so has moved, `set solib-search-path DIR`; "
                "`info sharedlibrary` shows what gdb loaded" % what)
        self.k = Layout()
        self.inf = gdb.selected_inferior()
        self.arena = self.g["tidei_arena"]
        # Pointer types, taken from fields so that no type lookup can pick
        # another program's struct of the same name.
        self.span_ptr = self.arena["huge_live"].type.strip_typedefs()
        self.heap_ptr = self.g["tidei_heaps"].type.strip_typedefs()
        self.ptr_size = self.span_ptr.sizeof
        self.ptr_code = UINT_CODE[self.ptr_size]
        self.pagemap_addr = int(self.g["tidei_pagemap"].address)
        self._leaves = {}
        self.span_layout = self._span_layout()
        self.n_classes = self._array_len(self.g["tidei_class_size"])
        self._check_layout()
        self.class_size = self.ints(self.g["tidei_class_size"])
        self.free_key = int(self.g["tidei_free_key"])
        self.init_state = int(self.g["tidei_init_state"])
        self._spans = {}
        self._notify = {}
        self._heaps = None
        self._walk = None

    # ---- raw reads ----------------------------------------------------------

    @staticmethod
    def _array_len(v):
        lo, hi = v.type.strip_typedefs().range()
        return hi - lo + 1

    def _check_layout(self):
        """The constants and the arrays the debug info declares with them
        must agree (they do unless gdb found them in two different builds)."""
        top = self._array_len(self.g["tidei_pagemap"])
        if top != 1 << self.k.MAP_TOP_BITS or self.n_classes != self.k.N_CLASSES:
            raise gdb.GdbError(
                "tide: tidei_layout does not match the arrays of the libtide gdb found (page map top %d, "
                "classes %d; tidei_layout says %d and %d): two builds of tide in one process?"
                % (top, self.n_classes, 1 << self.k.MAP_TOP_BITS, self.k.N_CLASSES))

    def read(self, addr, n):
        """n bytes at addr, or a clear error."""
        try:
            return bytes(self.inf.read_memory(addr, n))
        except gdb.MemoryError:
            raise gdb.GdbError("tide: cannot read %d bytes at %#x (memory missing from the core file, "
                               "or the heap is corrupt)" % (n, addr))

    def ptr_at(self, addr):
        """The pointer stored at addr."""
        return struct.unpack("<" + self.ptr_code, self.read(addr, self.ptr_size))[0]

    def ints(self, arr):
        """An array of unsigned integers (plain or _Atomic) as a Python list,
        read in one go."""
        t = arr.type.strip_typedefs()
        n = self._array_len(arr)
        width = t.target().sizeof
        code = UINT_CODE[width]
        return list(struct.unpack("<%d%s" % (n, code), self.read(int(arr.address), n * width)))

    # ---- the page map and spans ----------------------------------------------

    def _leaf(self, top):
        """Address of page-map leaf number top, or 0 (cached: leaves are
        never freed or moved)."""
        leaf = self._leaves.get(top)
        if leaf is None:
            leaf = self.ptr_at(self.pagemap_addr + top * self.ptr_size)
            self._leaves[top] = leaf
        return leaf

    def pagemap_lookup(self, addr):
        """Address of the span descriptor of the page holding addr, or 0
        (mirrors src/tide_internal.h:tidei_pagemap_lookup)."""
        if addr < 0 or addr >> self.k.VA_BITS:
            return 0
        page = addr >> self.k.PAGE_SHIFT
        leaf = self._leaf(page >> self.k.MAP_LEAF_BITS)
        if leaf == 0:
            return 0
        return self.ptr_at(leaf + (page & ((1 << self.k.MAP_LEAF_BITS) - 1)) * self.ptr_size)

    def pagemap_range(self, base, n_pages):
        """The page-map entries of n_pages pages from base, in one read when
        they are in one leaf."""
        page = base >> self.k.PAGE_SHIFT
        top = page >> self.k.MAP_LEAF_BITS
        if (page + n_pages - 1) >> self.k.MAP_LEAF_BITS != top or base >> self.k.VA_BITS:
            return [self.pagemap_lookup(base + (i << self.k.PAGE_SHIFT)) for i in range(n_pages)]
        leaf = self._leaf(top)
        if leaf == 0:
            return [0] * n_pages
        off = (page & ((1 << self.k.MAP_LEAF_BITS) - 1)) * self.ptr_size
        return list(struct.unpack("<%d%s" % (n_pages, self.ptr_code), self.read(leaf + off, n_pages * self.ptr_size)))

    def _span_layout(self):
        """How to unpack a tide_span_t: (size, [(name, offset, struct code)]),
        from the debug info."""
        t = self.span_ptr.target().strip_typedefs()
        fields = []

        def add(t, base):
            for f in t.fields():
                ft = f.type.strip_typedefs()
                if not f.name and ft.code in (gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_STRUCT):
                    add(ft, base + f.bitpos)  # an anonymous union's or struct's members
                elif ft.code in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_BOOL):
                    code = UINT_CODE.get(ft.sizeof)
                    if code and (base + f.bitpos) % 8 == 0:
                        fields.append((f.name, (base + f.bitpos) // 8, code))
        add(t, 0)
        names = {n for n, _, _ in fields}
        need = {"free", "local_free", "used_rel", "slow_at", "block_size", "kind", "cls", "in_full", "heap", "start", "remote",
                "n_blocks", "n_built", "n_pages", "chunk", "next", "link_key"}
        if not need <= names:
            raise gdb.GdbError("tide: tide_span_t has no field %s: tide-gdb.py does not match this libtide"
                               % ", ".join(sorted(need - names)))
        return t.sizeof, fields

    def span(self, addr):
        """The span descriptor at addr, as a dict of plain integers (its
        fields, plus addr and end, the first byte after its pages)."""
        s = self._spans.get(addr)
        if s is None:
            size, fields = self.span_layout
            try:
                raw = bytes(self.inf.read_memory(addr, size))
            except gdb.MemoryError:
                raise gdb.GdbError("tide: cannot read the span descriptor at %#x" % addr)
            s = {name: struct.unpack_from("<" + code, raw, off)[0] for name, off, code in fields}
            s["addr"] = addr
            s["end"] = s["start"] + (s["n_pages"] << self.k.PAGE_SHIFT)
            # blocks out: counted from slow_at in the span (src/tide_types.h)
            s["used"] = (s["used_rel"] + s["slow_at"]) & 0xFFFF
            self._spans[addr] = s
        return s

    def chunks(self):
        """(base, descriptor address) of every chunk."""
        out = []
        c = self.arena["chunks"]
        while int(c) and len(out) < LIST_LIMIT:
            out.append((int(c["base"]), int(c)))
            c = c["next"]
        return out

    def runs(self, base):
        """The span of every run of the chunk at base, in address order (every
        run's first page maps to its descriptor; mirrors
        src/arena.c:chunk_next_run, as src/arena.c:tidei_arena_each_run uses it)."""
        entries = self.pagemap_range(base, self.k.CHUNK_PAGES)
        p, end = base, base + self.k.CHUNK_SIZE
        while p < end:
            a = entries[(p - base) >> self.k.PAGE_SHIFT]
            if not a:  # cannot happen in a sane heap
                break
            s = self.span(a)
            if s["end"] <= p:  # corrupt: do not loop
                break
            yield s
            p = s["end"]

    def free_run_at(self, addr):
        """The free page run holding addr: a chunk's (whose inner pages the
        page map does not mark) or a cached huge range; None if none
        (mirrors src/arena.c:tidei_arena_free_run_at)."""
        for base, _ in self.chunks():
            if not base <= addr < base + self.k.CHUNK_SIZE:
                continue
            for run in self.runs(base):
                if addr < run["end"]:
                    return run if run["kind"] == self.k.SPAN_FREE else None
        for h in self.span_list(int(self.arena["huge_cache"])):
            if h["start"] <= addr < h["end"]:
                return h
        return None

    def span_list(self, head, limit=LIST_LIMIT):
        """The descriptors on a list of spans linked by `next`."""
        out = []
        a = head
        while a and len(out) < limit:
            s = self.span(a)
            out.append(s)
            a = s["next"]
        return out

    def link_decode(self, link, key):
        """The next block's address from a free block's link (the first word):
        byte-swapped, then xor-ed with its span's link_key (mirrors
        src/tide_internal.h:tidei_link_decode)."""
        return struct.unpack(">" + self.ptr_code, struct.pack("<" + self.ptr_code, link))[0] ^ key

    def block_list(self, head, limit, mem=None, key=None):
        """Addresses of the blocks on a free list (linked through the blocks'
        first word, encoded with key, the span's link_key; key None: each
        block's own span's, for a notify list), at most limit of them.  mem:
        (start, bytes) of memory already read, where links inside it are
        looked up.  A link that decodes to no block of tide's ends the list."""
        out = []
        a = head
        lo, data = mem if mem else (0, b"")
        hi = lo + len(data) - self.ptr_size
        while a and len(out) < limit:
            out.append(a)
            k = key
            if k is None:
                sp = self.pagemap_lookup(a)
                if not sp:
                    break
                k = self.span(sp).get("link_key", 0)
            if lo <= a <= hi:
                raw = struct.unpack_from("<" + self.ptr_code, data, a - lo)[0]
            else:
                raw = self.ptr_at(a)
            a = self.link_decode(raw, k)
            if a and not self.pagemap_lookup(a):
                break
        return out

    # ---- heaps -------------------------------------------------------------

    def heaps(self):
        """Every thread heap of the registry (tidei_heaps, newest first), as
        dicts; the backup heap is self.backup()."""
        if self._heaps is None:
            self._heaps = []
            h = self.g["tidei_heaps"]
            while int(h) and len(self._heaps) < 1000000:
                self._heaps.append(self._heap(h.dereference()))
                h = h["next_all"]
        return self._heaps

    def backup(self):
        return self._heap(self.g["tidei_backup_heap"])

    def shared(self):
        """The shared heaps (tidei_shared_heaps, in heap.c): a thread's first
        blocks of each class come from their spans."""
        v = self.g["tidei_shared_heaps"]
        return [self._heap(v[i]) for i in range(self._array_len(v))]

    def _heap(self, v):
        """Heap v's identity and counters, as a dict."""
        ctr = v["ctr"]
        h = {"addr": int(v.address), "id": int(v["id"]), "tid": int(v["tid"]), "in_use": bool(int(v["in_use"])),
             "notify": int(v["notify"]), "full": int(v["full"]), "n_full": int(ctr["n_full"]),
             # the bytes requested: those up to the sampler's last event plus
             # the countdown spent since (src/tide_internal.h:tidei_heap_requested)
             "requested": int(ctr["requested"]) + int(ctr["sample_armed"]) - int(ctr["sample_left"])}
        for f in ("malloc", "free_remote", "collected", "moved_in", "moved_out", "spans"):
            h[f] = self.ints(ctr[f])
        # the blocks out of its spans, per class: the sum of `used` over its
        # bins and its full list (mirrors src/heap.c:tidei_heap_used), their
        # mallocs, which the heap counts only for the spans it no longer
        # owns, and the blocks the spans hold
        used = [0] * self.n_classes
        blocks = [0] * self.n_classes
        for c in range(self.n_classes):
            for s in self.span_list(int(v["bins"][c])):
                used[c] += s["used"]
                blocks[c] += s["n_blocks"]
                h["malloc"][c] += s["n_malloc"]
        for s in self.span_list(int(v["full"])):
            if s["cls"] < self.n_classes:
                used[s["cls"]] += s["used"]
                blocks[s["cls"]] += s["n_blocks"]
                h["malloc"][s["cls"]] += s["n_malloc"]
        h["used"] = used
        h["blocks"] = blocks
        return h

    def heap_by_addr(self, addr):
        for h in self.heaps():
            if h["addr"] == addr:
                return h
        for h in [self.backup()] + self.shared():
            if h["addr"] == addr:
                return h
        return None

    def is_shared(self, addr):
        return any(h["addr"] == addr for h in self.shared())

    def notify_set(self, heap_addr):
        """The blocks on a heap's notify list (freed by other threads into its
        full spans), as a set."""
        s = self._notify.get(heap_addr)
        if s is None:
            v = gdb.Value(heap_addr).cast(self.heap_ptr).dereference()
            s = set(self.block_list(int(v["notify"]), LIST_LIMIT))
            self._notify[heap_addr] = s
        return s

    # ---- the figures of stats.c --------------------------------------------

    def stats(self):
        """tide_stats_get() and tide_stats_heaps(), redone: a dict of the
        struct tide_stats fields, with "classes" (a dict per class) and
        "heap_stats" (a dict per registry heap, newest first).  Mirrors
        src/stats.c:stats_collect, fold (below) src/stats.c:fold_heap, and
        the arena's part src/stats.c:fold_arena.  Not mirrored: the guarded
        blocks (tidei_guard_counts; TIDE_CONF guard=1 only) and the GC heap."""
        n = self.n_classes
        st = {k: 0 for k in ("n_spans", "n_full_spans", "requested_bytes", "n_heaps_total", "n_heaps",
                             "n_abandoned_spans", "abandoned_bytes", "small_live_bytes", "cached_bytes",
                             "live_blocks", "n_malloc", "n_free")}
        cls = [{"block_size": self.class_size[c], "n_malloc": 0, "n_free": 0, "n_spans": 0,
                "cached_blocks": 0, "live_blocks": 0} for c in range(n)]
        collected = [0] * n
        free_remote = [0] * n
        abandoned_out = [0] * n

        def fold(h):
            one = {"id": h["id"], "tid": h["tid"] if h["in_use"] else 0, "n_spans": 0, "cached_bytes": 0,
                   "used_bytes": 0, "n_malloc": 0, "n_free": 0, "n_full_spans": h["n_full"], "classes": {}}
            for c in range(n):
                m, fr, used = h["malloc"][c], h["free_remote"][c], h["used"][c]
                col, i, o, sp = h["collected"][c], h["moved_in"][c], h["moved_out"][c], h["spans"][c]
                # the owner's frees into its own spans (counted nowhere)
                fl = clamp(m - col + i - o - used)
                cached = clamp(h["blocks"][c] - used)
                cls[c]["n_malloc"] += m
                cls[c]["n_free"] += fl + fr
                cls[c]["n_spans"] += sp
                cls[c]["cached_blocks"] += cached
                collected[c] += col
                free_remote[c] += fr
                abandoned_out[c] += o - i
                one["n_spans"] += sp
                one["cached_bytes"] += cached * self.class_size[c]
                one["used_bytes"] += used * self.class_size[c]
                one["n_malloc"] += m
                one["n_free"] += fl + fr
                if sp or used:
                    one["classes"][c] = {"spans": sp, "cached": cached, "used": used}
            st["n_spans"] += one["n_spans"]
            st["n_full_spans"] += one["n_full_spans"]
            st["requested_bytes"] += h["requested"]
            return one

        heap_stats = []
        for h in self.heaps():
            heap_stats.append(fold(h))
            st["n_heaps_total"] += 1
            if h["in_use"]:
                st["n_heaps"] += 1
        st["backup"] = fold(self.backup())
        st["shared"] = [fold(h) for h in self.shared()]
        ab_spans = self.ints(self.g["tidei_abandoned_spans"])
        ab_blocks = self.ints(self.g["tidei_abandoned_blocks"])
        st["n_abandoned_spans"] = sum(ab_spans)
        st["abandoned_spans"] = ab_spans

        a = self.arena
        st["n_chunks"] = int(a["n_chunks"])
        st["huge_bytes"] = int(a["huge_bytes"])
        st["n_huge"] = int(a["n_huge"])
        st["huge_cached_bytes"] = int(a["huge_cache_bytes"])
        st["free_run_bytes"] = int(a["free_pages"]) << self.k.PAGE_SHIFT
        st["large_live_bytes"] = int(a["large_pages"]) << self.k.PAGE_SHIFT
        st["n_large"] = int(a["n_large"])
        st["metadata_bytes"] = int(a["meta_bytes"])
        st["mapped_bytes"] = st["n_chunks"] * self.k.CHUNK_SIZE + st["huge_bytes"] + st["huge_cached_bytes"]
        zero = int(a["zero_free_pages"]) << self.k.PAGE_SHIFT
        st["committed_bytes"] = clamp(st["mapped_bytes"] - zero)
        n_large_malloc = int(a["n_large_malloc"])
        n_huge_malloc = int(a["n_huge_malloc"])

        gctr = self.g["tidei_global_ctr"]
        gfree = self.ints(gctr["free_remote"])
        gcol = self.ints(gctr["collected"])
        pending = 0
        st["abandoned_free_blocks"] = [0] * n
        for c in range(n):
            cs = cls[c]
            cs["n_free"] += gfree[c]
            cs["live_blocks"] = clamp(cs["n_malloc"] - cs["n_free"])
            pending += clamp(free_remote[c] + gfree[c] - collected[c] - gcol[c])
            ab_out = clamp(abandoned_out[c] - gcol[c])
            ab_free = clamp(ab_blocks[c] - ab_out)
            st["abandoned_free_blocks"][c] = ab_free
            st["abandoned_bytes"] += ab_free * cs["block_size"]
            st["small_live_bytes"] += cs["live_blocks"] * cs["block_size"]
            st["cached_bytes"] += cs["cached_blocks"] * cs["block_size"]
            st["live_blocks"] += cs["live_blocks"]
            st["n_malloc"] += cs["n_malloc"]
            st["n_free"] += cs["n_free"]
        st["pending_remote_frees"] = pending
        st["live_bytes"] = st["small_live_bytes"] + st["large_live_bytes"] + st["huge_bytes"]
        st["live_blocks"] += st["n_large"] + st["n_huge"]
        st["n_malloc"] += n_large_malloc + n_huge_malloc
        st["n_free"] += (n_large_malloc - st["n_large"]) + (n_huge_malloc - st["n_huge"])
        st["returned_bytes"] = int(gctr["returned"])
        st["n_os_calls"] = int(self.g["tidei_os_calls"])
        st["classes"] = cls
        st["heap_stats"] = heap_stats
        return st

    # ---- small spans: which blocks are free --------------------------------

    def span_free_blocks(self, s):
        """What the lists of small span s hold: a dict list name -> set of
        block addresses within s (free, local_free, remote, notify).  Reads
        the span's carved blocks in one go to follow the links.  Mirrors
        src/walk.c:record_small (its mark_list and mark_notify)."""
        limit = s["n_blocks"]
        lo, hi = s["start"], s["start"] + s["n_blocks"] * s["block_size"]
        mem = None
        if s["n_built"]:
            try:
                mem = (lo, self.read(lo, s["n_built"] * s["block_size"]))
            except gdb.GdbError:  # a hole in a core file: follow link by link
                pass
        key = s["link_key"]
        out = {"free": set(self.block_list(s["free"], limit, mem, key)),
               "local_free": set(self.block_list(s["local_free"], limit, mem, key)),
               "remote": set(self.block_list(s["remote"] & self.k.RS_PTR_MASK, limit, mem, key)),
               "notify": set()}
        if s["heap"]:
            out["notify"] = {b for b in self.notify_set(s["heap"]) if lo <= b < hi}
        return out

    def small_block_state(self, s, idx):
        """(free?, why) for block idx of small span s, from its lists (the
        process is stopped, so reading the owner's private lists is safe)."""
        if idx >= s["n_built"]:
            return True, "never handed out (beyond the blocks carved so far, %d)" % s["n_built"]
        b = s["start"] + idx * s["block_size"]
        lists = self.span_free_blocks(s)
        why = {"free": "on its span's free list (freed by the owner thread, or never handed out)",
               "local_free": "on its span's local_free list (put back by the owner's slow path)",
               "remote": "on its span's remote list (freed by another thread, not yet collected)",
               "notify": "on the owner heap's notify list (freed by another thread into a full span)"}
        for name in ("free", "local_free", "remote", "notify"):
            if b in lists[name]:
                return True, why[name]
        return False, None

    def walk_small(self):
        """Every small span in the chunks, with what its lists hold and how
        many of its blocks are live: a list of (span, lists, n_live)."""
        if self._walk is None:
            self._walk = []
            for base, _ in self.chunks():
                for s in self.runs(base):
                    if s["kind"] != self.k.SPAN_SMALL:
                        continue
                    lists = self.span_free_blocks(s)
                    # every block on a list has been carved (index < n_built)
                    freed = len(lists["free"] | lists["local_free"] | lists["remote"] | lists["notify"])
                    self._walk.append((s, lists, clamp(s["n_built"] - freed)))
        return self._walk

    # ---- big blocks ----------------------------------------------------------

    def large_blocks(self):
        """Sizes in bytes of the live large blocks, in chunk and address order."""
        out = []
        for base, _ in self.chunks():
            for s in self.runs(base):
                if s["kind"] == self.k.SPAN_LARGE:
                    out.append(s["n_pages"] << self.k.PAGE_SHIFT)
        return out

    # ---- who is which thread -------------------------------------------------

    def thread_names(self):
        """Kernel thread id -> (gdb thread number, name)."""
        out = {}
        for t in self.inf.threads():
            try:
                out[t.ptid[1]] = (t.num, t.name or "")
            except gdb.error:
                pass
        return out

    def heap_label(self, h, names=None):
        """"thread TID (gdb thread N "name")", "pooled", or "backup"."""
        if h["addr"] == int(self.g["tidei_backup_heap"].address):
            return "backup heap"
        if self.is_shared(h["addr"]):
            return "shared heap"
        if not h["in_use"]:
            return "pooled"
        names = self.thread_names() if names is None else names
        t = names.get(h["tid"])
        if t is None:
            extra = " (no such thread: it is exiting)"
        else:
            extra = " (gdb thread %d%s)" % (t[0], ' "%s"' % t[1] if t[1] else "")
        return "thread %d%s" % (h["tid"], extra)


# ---- output ---------------------------------------------------------------

def out(s=""):
    gdb.write(s + "\n")


def where(tide):
    """What gdb is looking at: "process PID" or "core file of pid PID"."""
    conn = getattr(tide.inf, "connection", None)  # gdb 11 and later
    kind = conn.type if conn is not None else None
    if kind is None:  # older gdb: ask `info target`
        try:
            kind = "core" if "core dump file" in gdb.execute("info target", to_string=True) else "native"
        except gdb.error:
            kind = "native"
    return ("core file of pid %d" if kind == "core" else "process %d") % tide.inf.pid


def require_init(tide):
    """False (after saying so) when tide has not set itself up in the process."""
    if tide.init_state != tide.k.INIT_READY:
        out("tide is not initialised in this %s (tidei_init_state = %d): no allocation yet"
            % (where(tide), tide.init_state))
        return False
    return True


def print_stats(tide, st):
    out("tide heap report (read by gdb from the %s)" % where(tide))
    out("  live:       %d bytes in %d blocks (small %d bytes; large %d bytes in %d; huge %d bytes in %d)"
        % (st["live_bytes"], st["live_blocks"], st["small_live_bytes"], st["large_live_bytes"], st["n_large"],
           st["huge_bytes"], st["n_huge"]))
    out("  ever:       %d mallocs, %d frees, %d bytes requested"
        % (st["n_malloc"], st["n_free"], st["requested_bytes"]))
    out("  cached:     %d bytes free in thread heaps, %d bytes in exited threads' spans, %d remote frees pending"
        % (st["cached_bytes"], st["abandoned_bytes"], st["pending_remote_frees"]))
    out("  spans:      %d in thread heaps (%d full), %d abandoned; free page runs %d bytes"
        % (st["n_spans"], st["n_full_spans"], st["n_abandoned_spans"], st["free_run_bytes"]))
    out("  memory:     %d bytes mapped (%d chunks, %d bytes huge cache), %d committed, %d metadata, "
        "%d returned to the OS"
        % (st["mapped_bytes"], st["n_chunks"], st["huge_cached_bytes"], st["committed_bytes"],
           st["metadata_bytes"], st["returned_bytes"]))
    out("  heaps:      %d in use, %d made; %d requests to the OS" % (st["n_heaps"], st["n_heaps_total"], st["n_os_calls"]))


def histogram(tide, st, walk):
    """[(size, count)] of live blocks, largest total first.  Mirrors
    src/stats.c:hist_build (with its hist_add_run, hist_add, hist_sort):
    an entry per class, class 0's blocks (malloc(0)'s, 16 bytes) counted
    with class 1's; then each large block (chunk and address order) and huge
    block added to the first entry after class 0 of its size, or appended;
    sorted by bytes, stably.  Unlike the report, no limit on the entries
    (stats.c's HIST_MAX): gdb lists every size."""
    n = tide.n_classes
    counts = [st["classes"][c]["live_blocks"] for c in range(n)]
    if walk:
        counts = [0] * n
        for s, _, live in tide.walk_small():
            counts[s["cls"]] += live
    counts[1] += counts[0]
    counts[0] = 0
    entries = [[tide.class_size[c], counts[c]] for c in range(n)]
    first = {}  # size -> its first entry after entry 0
    for e in entries[1:]:
        first.setdefault(e[0], e)
    sizes = tide.large_blocks() + [s["n_pages"] << tide.k.PAGE_SHIFT for s in tide.span_list(int(tide.arena["huge_live"]))]
    for size in sizes:
        e = first.get(size)
        if e is None:
            e = first[size] = [size, 0]
            entries.append(e)
        e[1] += 1
    entries.sort(key=lambda e: -e[0] * e[1])  # stable
    return [(size, count) for size, count in entries if count]


def print_heap(tide, st, walk=False):
    hist = histogram(tide, st, walk)
    live_blocks, live_bytes = st["live_blocks"], st["live_bytes"]
    if walk:  # the totals of what the walk found
        live_blocks = sum(c for _, c in hist)
        live_bytes = sum(s * c for s, c in hist)
    out("  live memory by block size, largest first%s:" % (" (small blocks counted on their spans)" if walk else ""))
    for size, count in hist:
        out("    %d bytes * %d blocks (%s %%) = %d bytes (%s %%)"
            % (size, count, pct(count, live_blocks), size * count, pct(size * count, live_bytes)))
    if walk:
        out("    total: %d blocks, %d bytes" % (live_blocks, live_bytes))


def print_threads(tide, st, verbose=False):
    names = tide.thread_names()
    by_id = {h["id"]: h for h in tide.heaps()}
    walked = {}
    if verbose:  # per heap address, per class: what the lists hold
        for s, lists, live in tide.walk_small():
            d = walked.setdefault(s["heap"], {}).setdefault(s["cls"], {
                "spans": 0, "free": 0, "local_free": 0, "uncarved": 0, "remote": 0, "notify": 0, "live": 0})
            d["spans"] += 1
            for k in ("free", "local_free", "remote", "notify"):
                d[k] += len(lists[k])
            d["uncarved"] += s["n_blocks"] - s["n_built"]
            d["live"] += live

    def classes(hs, heap_addr):
        for c in sorted(hs["classes"]):
            e = hs["classes"][c]
            size = tide.class_size[c]
            line = ("      %d bytes (class %d): %d spans, %d blocks cached (%d bytes), %d blocks used"
                    % (size, c, e["spans"], e["cached"], e["cached"] * size, e["used"]))
            w = walked.get(heap_addr, {}).get(c)
            if verbose and w:
                line += ("; lists: %d free, %d local_free, %d never carved, %d remote, %d notify; %d live"
                         % (w["free"], w["local_free"], w["uncarved"], w["remote"], w["notify"], w["live"]))
            out(line)

    out("  thread heaps (%d in use, %d made):" % (st["n_heaps"], st["n_heaps_total"]))
    for hs in sorted(st["heap_stats"], key=lambda e: e["id"]):
        h = by_id[hs["id"]]
        out("    heap %d %s: %d spans (%d full), %d bytes cached, %d bytes used, %d mallocs, %d frees"
            % (hs["id"], tide.heap_label(h, names), hs["n_spans"], hs["n_full_spans"], hs["cached_bytes"],
               hs["used_bytes"], hs["n_malloc"], hs["n_free"]))
        classes(hs, h["addr"])
        n_notify = len(tide.notify_set(h["addr"]))
        if n_notify:
            out("      notify list: %d blocks freed by other threads into its full spans" % n_notify)
    with_heap = {h["tid"] for h in tide.heaps() if h["in_use"]}
    others = sorted((num, tid, name) for tid, (num, name) in names.items() if tid not in with_heap)
    if others:
        out("    threads without a heap (they have not allocated): %s"
            % ", ".join("%d (gdb thread %d%s)" % (tid, num, ' "%s"' % name if name else "")
                        for num, tid, name in others))
    b = st["backup"]
    if b["n_spans"] or b["n_malloc"] or b["n_free"]:
        out("    backup heap (threads whose own heap is gone): %d spans, %d bytes cached, %d bytes used, "
            "%d mallocs, %d frees" % (b["n_spans"], b["cached_bytes"], b["used_bytes"], b["n_malloc"], b["n_free"]))
        classes(b, int(tide.g["tidei_backup_heap"].address))
    for i, (hs, h) in enumerate(zip(st["shared"], tide.shared())):
        if hs["n_spans"] or hs["used_bytes"]:
            out("    shared heap %d (threads' first blocks of each class): %d spans (%d full), %d bytes cached, "
                "%d bytes used" % (i, hs["n_spans"], hs["n_full_spans"], hs["cached_bytes"], hs["used_bytes"]))
            classes(hs, h["addr"])
    ab = st["abandoned_spans"]
    if not st["n_abandoned_spans"]:
        out("    abandoned (spans of exited threads, no heap): none")
        return
    out("    abandoned (spans of exited threads, no heap): %d spans, %d bytes free in them"
        % (st["n_abandoned_spans"], st["abandoned_bytes"]))
    for c in range(tide.n_classes):
        if not ab[c]:
            continue
        size, free = tide.class_size[c], st["abandoned_free_blocks"][c]
        line = "      %d bytes (class %d): %d spans, %d blocks free (%d bytes)" % (size, c, ab[c], free, free * size)
        w = walked.get(0, {}).get(c)
        if verbose and w:
            line += ("; lists: %d free, %d local_free, %d never carved, %d remote; %d live"
                     % (w["free"], w["local_free"], w["uncarved"], w["remote"], w["live"]))
        out(line)


def block_info(tide, addr):
    """tide_block_info(addr), redone (mirrors src/walk.c:block_info_locked),
    with the free/live answer for small blocks taken from the lists: a dict
    with state ("not tide's", "free", "live"), base, size, cls (int, or
    CLASS_LARGE or CLASS_HUGE), heap (id), why, and the span (or None)."""
    r = {"state": "not tide's", "base": 0, "size": 0, "cls": 0, "heap": 0, "why": None, "span": None,
         "what": "block"}
    sa = tide.pagemap_lookup(addr)
    s = tide.span(sa) if sa else None
    if s and s["kind"] == tide.k.SPAN_SMALL:
        r["span"] = s
        # src/tide_internal.h:tidei_block_index finds this quotient with the
        # span's block-start multiplier; it is exact, and so is Python's division
        idx = (addr - s["start"]) // s["block_size"]
        r["cls"] = s["cls"]
        if idx < s["n_blocks"]:
            r["base"] = s["start"] + idx * s["block_size"]
            r["size"] = s["block_size"]
            owner = tide.heap_by_addr(s["heap"]) if s["heap"] else None
            r["heap"] = owner["id"] if owner else 0
            r["owner"] = owner
            is_free, why = tide.small_block_state(s, idx)
            r["state"] = "free" if is_free else "live"
            r["why"] = why
        else:
            r["state"] = "free"
            r["base"] = s["start"] + s["n_blocks"] * s["block_size"]
            r["size"] = s["end"] - r["base"]
            r["why"] = "the tail of a span that no block covers"
    elif s and s["kind"] in (tide.k.SPAN_LARGE, tide.k.SPAN_HUGE):
        r["span"] = s
        r["state"] = "live"
        r["base"] = s["start"]
        r["size"] = s["n_pages"] << tide.k.PAGE_SHIFT
        r["cls"] = tide.k.CLASS_LARGE if s["kind"] == tide.k.SPAN_LARGE else tide.k.CLASS_HUGE
    else:
        # Inside a free page run (the page map holds only its ends), a cached
        # huge mapping, or not tide's: ask the arena.
        run = tide.free_run_at(addr)
        if run and run["chunk"]:
            r.update(state="free", base=run["start"], size=run["n_pages"] << tide.k.PAGE_SHIFT,
                     cls=tide.k.CLASS_LARGE, span=run, why="a free page run (in no span and no large block)",
                     what="free run")
        elif run:
            r.update(state="free", base=run["start"], size=run["n_pages"] << tide.k.PAGE_SHIFT,
                     cls=tide.k.CLASS_HUGE, span=run, why="a freed huge mapping kept in the huge cache",
                     what="cached mapping")
    return r


def print_block(tide, addr):
    r = block_info(tide, addr)
    if r["state"] == "not tide's":
        out("%#x: not tide's (in no chunk, huge block or cached huge mapping)" % addr)
        return
    cls = {tide.k.CLASS_LARGE: "large", tide.k.CLASS_HUGE: "huge"}.get(r["cls"], str(r["cls"]))
    out("%#x: %s: block %#x, %d bytes, class %s, heap %d" % (addr, r["state"], r["base"], r["size"], cls, r["heap"]))
    if addr != r["base"]:
        out("  offset:  %d bytes into the %s" % (addr - r["base"], r["what"]))
    if r["why"]:
        out("  why:     %s" % r["why"])
    s = r["span"]
    if s is None:
        return
    if s["kind"] == tide.k.SPAN_SMALL:
        owner = r.get("owner")
        who = ("heap %d, %s" % (owner["id"], tide.heap_label(owner))) if owner else \
            "none (abandoned: its thread exited)"
        out("  span:    %#x-%#x (%d pages), %d blocks of %d bytes, %d carved, %d out; owner %s"
            % (s["start"], s["end"], s["n_pages"], s["n_blocks"], s["block_size"], s["n_built"], s["used"], who))
        out("  state:   remote list %s, notify state %s%s"
            % ("empty" if not s["remote"] & tide.k.RS_PTR_MASK else "non-empty", tide.k.rs_names[s["remote"] & tide.k.RS_MASK],
               ", on the owner's full list" if s["in_full"] else ""))
        if r["state"] == "live" and r["base"] < s["start"] + s["n_built"] * s["block_size"]:
            key = tide.ptr_at(r["base"] + tide.ptr_size)
            if key == s["addr"]:  # a small block's free key: its span's descriptor (tidei_free_key_of)
                out("  note:    the block carries tide's free mark but is on no free list "
                    "(the program stored the mark, or the heap is corrupt)")
    else:
        kind = r["what"] if r["state"] == "free" else "%s block" % tide.k.kind_names.get(s["kind"], "?")
        out("  span:    %s, %#x-%#x (%d pages), descriptor %#x" % (kind, s["start"], s["end"], s["n_pages"], s["addr"]))


# ---- the commands -----------------------------------------------------------

class TideCommand(gdb.Command):
    """Look inside the tide allocator's heap (reads memory only, never calls
into the program: works on a live process and on a core file).

tide stats          process-wide totals (as tide_stats_get sees them)
tide heap [-w]      live blocks by size, largest first (-w: count small blocks
                    on their spans' free lists instead of from the counters)
tide block ADDR     what ADDR is: not tide's, free or live; the block holding it
tide threads [-v]   thread heaps and what they cache (-v: what the lists hold)
tide report         stats, heap and threads
tide layout         the constants read from the debug info"""

    def __init__(self):
        super(TideCommand, self).__init__("tide", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("tide: unknown subcommand '%s' (see `help tide`)" % arg.strip())
        gdb.execute("help tide", from_tty)


def _flags(arg, allowed, cmd):
    words = gdb.string_to_argv(arg)
    for w in words:
        if w not in allowed:
            raise gdb.GdbError("tide %s: unknown argument '%s' (allowed: %s)" % (cmd, w, " ".join(allowed) or "none"))
    return set(words)


class TideStats(gdb.Command):
    """Process-wide totals of tide's heap: live blocks and bytes, mallocs and
frees ever, what heaps and exited threads' spans cache, pending remote frees,
spans, mapped and committed memory, heaps.  The same figures as
tide_stats_get(), folded from the same counters."""

    def __init__(self):
        super(TideStats, self).__init__("tide stats", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        _flags(arg, (), "stats")
        t = Tide()
        if require_init(t):
            print_stats(t, t.stats())


class TideHeap(gdb.Command):
    """Live blocks by size, largest total first:
    SIZE bytes * COUNT blocks (P % of blocks) = BYTES bytes (P % of bytes)
Small blocks from the per-heap counters (as tide_stats_get), large blocks
from a walk of the chunks' page runs, huge blocks from their list.
With -w, small blocks are counted on their spans instead: carved blocks not
on a free, local_free, remote or notify list."""

    def __init__(self):
        super(TideHeap, self).__init__("tide heap", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        f = _flags(arg, ("-w",), "heap")
        t = Tide()
        if require_init(t):
            print_heap(t, t.stats(), walk="-w" in f)


class TideBlock(gdb.Command):
    """tide block ADDR: what the address ADDR (a number or any expression
without a function call) is: not tide's, free or live; the base, size and
size class of the block holding it (or of the free page run), the heap that
owns its span, and, for a free small block, the list it is on."""

    def __init__(self):
        super(TideBlock, self).__init__("tide block", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        if not arg.strip():
            raise gdb.GdbError("usage: tide block ADDR")
        try:
            addr = int(arg.strip(), 0)
        except ValueError:
            # An expression of the user's: evaluated with function calls
            # forbidden, so that nothing runs in the inferior.
            old = gdb.parameter("may-call-functions")
            gdb.execute("set may-call-functions off", to_string=True)
            try:
                v = gdb.parse_and_eval(arg)
            except gdb.error as e:
                raise gdb.GdbError("tide block: cannot evaluate '%s': %s" % (arg.strip(), e))
            finally:
                gdb.execute("set may-call-functions %s" % ("on" if old else "off"), to_string=True)
            code = v.type.strip_typedefs().code
            if code == gdb.TYPE_CODE_ARRAY:
                addr = int(v.address)
            elif code in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_CHAR,
                          gdb.TYPE_CODE_BOOL):
                addr = int(v)
            else:
                raise gdb.GdbError("tide block: '%s' is not an address (type %s)" % (arg.strip(), v.type))
        t = Tide()
        if require_init(t):
            print_block(t, addr & ((1 << 64) - 1))


class TideThreads(gdb.Command):
    """Every thread heap: its thread (or pooled), spans, cached and used bytes,
mallocs and frees, and per size class what it owns and caches; the backup
heap; the abandoned spans of exited threads.  With -v, walks the spans and
adds what their lists hold (free, local_free, never carved, remote, notify)."""

    def __init__(self):
        super(TideThreads, self).__init__("tide threads", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        f = _flags(arg, ("-v",), "threads")
        t = Tide()
        if require_init(t):
            print_threads(t, t.stats(), verbose="-v" in f)


class TideLayout(gdb.Command):
    """tide's compile-time constants and span kinds as these commands read
them from the debug info (src/layout.c), one `NAME VALUE` line each, named
as in the C headers (TIDE_PAGE_SHIFT, TIDE_SPAN_SMALL, ...).  Needs no
process, only tide's symbols:
    gdb -batch -x tools/gdb/tide-gdb.py -ex 'tide layout' build/libtide.so"""

    def __init__(self):
        super(TideLayout, self).__init__("tide layout", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        _flags(arg, (), "layout")
        k = Layout()
        for name in k.c_names:
            out("%s %d" % (name, k.values[name]))


class TideReport(gdb.Command):
    """tide stats, tide heap and tide threads, one after the other."""

    def __init__(self):
        super(TideReport, self).__init__("tide report", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        f = _flags(arg, ("-v", "-w"), "report")
        t = Tide()
        if not require_init(t):
            return
        st = t.stats()
        print_stats(t, st)
        print_heap(t, st, walk="-w" in f)
        print_threads(t, st, verbose="-v" in f)


TideCommand()
TideStats()
TideHeap()
TideBlock()
TideThreads()
TideReport()
TideLayout()
