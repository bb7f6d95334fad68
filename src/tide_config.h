/* tide_config.h — compile-time constants.  Everything that sizes a structure
 * lives here, so that the layout of the heap can be read off one page. */
#ifndef TIDE_CONFIG_H
#define TIDE_CONFIG_H

/* OS pages.  tide assumes 4 KiB pages (x86-64, most arm64 kernels) and
 * checks it at start-up. */
#define TIDE_PAGE_SHIFT   12
#define TIDE_PAGE_SIZE    ((size_t)1 << TIDE_PAGE_SHIFT)

/* Chunks: the unit in which address space is mapped for spans and large
 * blocks.  8 MiB = 2048 pages. */
#define TIDE_CHUNK_SHIFT  23
#define TIDE_CHUNK_SIZE   ((size_t)1 << TIDE_CHUNK_SHIFT)
#define TIDE_CHUNK_PAGES  (TIDE_CHUNK_SIZE >> TIDE_PAGE_SHIFT)

/* Size-class boundaries.  Requests up to TIDE_SMALL_MAX come from spans of
 * one size class; up to TIDE_LARGE_MAX from page runs in chunks; above it
 * each block is mapped on its own (a huge block). */
#define TIDE_SMALL_MAX    ((size_t)64 * 1024)
#define TIDE_LARGE_MAX    ((size_t)4 * 1024 * 1024)

/* Size classes: 16-byte steps up to 128, then 8 classes per power of two
 * (at most 12.5 % internal waste), up to TIDE_SMALL_MAX.  Class 0 has
 * 16-byte blocks, like class 1, and serves malloc(0) only. */
#define TIDE_CLASS_STEPS  8
#define TIDE_N_CLASSES    81

/* Span sizing: a span holds at least this many bytes (small classes) and at
 * most TIDE_SPAN_MAX_PAGES pages (largest classes). */
#define TIDE_SPAN_MIN_BYTES  ((size_t)64 * 1024)
#define TIDE_SPAN_MAX_PAGES  128

/* The page map: a two-level radix tree over a 47-bit address space, one
 * entry per page.  The top level is a static array (in .bss, touched only
 * where tide has memory); each leaf covers 4 GiB and is reserved on demand. */
#define TIDE_VA_BITS        47
#define TIDE_MAP_LEAF_BITS  20
#define TIDE_MAP_TOP_BITS   (TIDE_VA_BITS - TIDE_PAGE_SHIFT - TIDE_MAP_LEAF_BITS)

/* The flat map's range (pagemap.c): at most this many chunks (32 GiB). */
#define TIDE_FLAT_MAX_CHUNKS 4096

/* Metadata is carved from regions of this size. */
#define TIDE_META_REGION  ((size_t)1 << 20)

#endif /* TIDE_CONFIG_H */
