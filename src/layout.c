/* layout.c — tide's compile-time constants, in the debug info.
 *
 * The constants of tide_config.h and include/tide.h are macros, which
 * `-g` does not record; the gdb extension (tools/gdb/tide-gdb.py) must not
 * copy them, or it reads a heap built with other constants wrongly.  So
 * they are restated here as enumerators, whose values the compiler writes
 * into the DWARF of libtide.so and libtide.a (and of a program linked with
 * it), and the extension reads them from there: from the type of
 * tidei_layout, without reading the process's memory, so a core file works
 * as well as a live process.  In gdb, `print/d TIDE_LAYOUT_PAGE_SHIFT`
 * shows one.
 *
 * Each enumerator is TIDE_LAYOUT_ and the name of the constant it carries,
 * given by that name, not by a number, so the values cannot drift from the
 * headers.  The extension also reads tide_span_kind_t, named by the
 * field below.  A tool that needs another constant gets a line here (an integer
 * that fits an int; tide_config.h's timings and buffer sizes, which no tool
 * reads, are left out); tests/introspect/gdb.sh checks that what the
 * extension reads equals what the headers say.
 *
 * Nothing reads tidei_layout at run time: it is an anchor that keeps the
 * types in the debug info (`used`: kept though unreferenced).
 *
 * Holds no code, owns nothing shared, takes no lock, calls nothing. */
#include "tide_internal.h"

enum tidei_layout_constant {
    /* tide_config.h */
    TIDE_LAYOUT_PAGE_SHIFT = TIDE_PAGE_SHIFT,
    TIDE_LAYOUT_PAGE_SIZE = TIDE_PAGE_SIZE,
    TIDE_LAYOUT_CHUNK_SHIFT = TIDE_CHUNK_SHIFT,
    TIDE_LAYOUT_CHUNK_SIZE = TIDE_CHUNK_SIZE,
    TIDE_LAYOUT_CHUNK_PAGES = TIDE_CHUNK_PAGES,
    TIDE_LAYOUT_SMALL_MAX = TIDE_SMALL_MAX,
    TIDE_LAYOUT_LARGE_MAX = TIDE_LARGE_MAX,
    TIDE_LAYOUT_CLASS_STEPS = TIDE_CLASS_STEPS,
    TIDE_LAYOUT_SPAN_MIN_BYTES = TIDE_SPAN_MIN_BYTES,
    TIDE_LAYOUT_SPAN_MAX_PAGES = TIDE_SPAN_MAX_PAGES,
    TIDE_LAYOUT_VA_BITS = TIDE_VA_BITS,
    TIDE_LAYOUT_MAP_LEAF_BITS = TIDE_MAP_LEAF_BITS,
    TIDE_LAYOUT_MAP_TOP_BITS = TIDE_MAP_TOP_BITS,
    TIDE_LAYOUT_FLAT_MAX_CHUNKS = TIDE_FLAT_MAX_CHUNKS,
    TIDE_LAYOUT_META_REGION = TIDE_META_REGION,
    /* tide_types.h: the notify states in the low bits of tide_span_t.remote
     * (an unnamed enum, which no object can have as its type) */
    TIDE_LAYOUT_RS_MASK = TIDE_RS_MASK,
    TIDE_LAYOUT_RS_PTR_MASK = TIDE_RS_PTR_MASK,
    TIDE_LAYOUT_RS_NORMAL = TIDE_RS_NORMAL,
    TIDE_LAYOUT_RS_USE_NOTIFY = TIDE_RS_USE_NOTIFY,
    TIDE_LAYOUT_RS_NOTIFYING = TIDE_RS_NOTIFYING,
    TIDE_LAYOUT_RS_NEVER = TIDE_RS_NEVER,
    /* include/tide.h: the number of size classes; struct tide_block's
     * size_class of blocks not in a class */
    TIDE_LAYOUT_N_CLASSES = TIDE_N_CLASSES,
    TIDE_LAYOUT_CLASS_LARGE = TIDE_CLASS_LARGE,
    TIDE_LAYOUT_CLASS_HUGE = TIDE_CLASS_HUGE,
    TIDE_LAYOUT_CLASS_GUARDED = TIDE_CLASS_GUARDED,
    /* tide_internal.h: tidei_init_state once tide is set up */
    TIDE_LAYOUT_INIT_READY = TIDE_INIT_READY,
};

/* The anchor: one field per enum type the tools read. */
struct tidei_layout {
    enum tidei_layout_constant constant; /* the constants above */
    tide_span_kind_t span_kind;          /* tide_span_t.kind's values */
};

__attribute__((used)) const struct tidei_layout tidei_layout = { TIDE_LAYOUT_PAGE_SHIFT, TIDE_SPAN_FREE };
