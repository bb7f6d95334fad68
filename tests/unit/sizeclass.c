/* unit/sizeclass.c — size classes and the span layout of each class (span.c,
 * tidei_class_of, tidei_is_block_start).
 *
 * Measured figures (worst waste per range, span-end waste) are printed on
 * stderr; run with TH_VERBOSE=1 to see them through tests/run.sh. */
#include "unit.h"

/* The class table: 16-byte multiples (so every block is 16-aligned),
 * increasing, class 0 and 1 both 16 bytes, the last class TIDE_SMALL_MAX. */
static void class_table(void)
{
    tidei_init();
    CHECK(tidei_class_size[0] == 16 && tidei_class_size[1] == 16);
    CHECK(tidei_class_size[TIDE_N_CLASSES - 1] == TIDE_SMALL_MAX);
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        CHECKF(tidei_class_size[c] % 16 == 0, "class %d: %u bytes, not a multiple of 16", c, tidei_class_size[c]);
        if (c >= 2)
            CHECKF(tidei_class_size[c] > tidei_class_size[c - 1], "class %d (%u) not above class %d (%u)", c,
                   tidei_class_size[c], c - 1, tidei_class_size[c - 1]);
    }
    CHECK(tidei_class_of(0) == 0);
}

/* tidei_class_of(n), for every n up to TIDE_SMALL_MAX, is the smallest class
 * that holds n bytes, and never goes down as n grows; the fast path's table
 * (tidei_class_fast) agrees with it everywhere. */
static void class_of_is_tightest(void)
{
    int prev = 0;
    for (size_t n = 1; n <= TIDE_SMALL_MAX && !TH_FAILED(); n++) {
        int c = tidei_class_of(n);
        CHECKF(c >= 1 && c < TIDE_N_CLASSES, "class_of(%zu) = %d", n, c);
        if (c < 1 || c >= TIDE_N_CLASSES) return;
        CHECKF(tidei_class_size[c] >= n, "class_of(%zu) = %d holds only %u bytes", n, c, tidei_class_size[c]);
        CHECKF(c == 1 || tidei_class_size[c - 1] < n, "class_of(%zu) = %d (%u bytes), but class %d (%u) fits", n,
               c, tidei_class_size[c], c - 1, tidei_class_size[c - 1]);
        CHECKF(c >= prev, "class_of(%zu) = %d < class_of(%zu) = %d", n, c, n - 1, prev);
        CHECKF((int)tidei_class_fast(n) == c, "the fast path's table gives class %d for %zu bytes, not %d",
               (int)tidei_class_fast(n), n, c);
        prev = c;
    }
}

/* Internal waste (block size - request, relative to the request): at most
 * 12.5 % for every request above 128 bytes; from 64 to 128 bytes the classes
 * are 16 bytes apart (so up to 15 bytes, 23 % at 65 bytes). */
static void waste_bounds(void)
{
    double worst_small = 0, worst_mid = 0, worst_big = 0;
    size_t at_small = 0, at_mid = 0, at_big = 0;
    for (size_t n = 1; n <= TIDE_SMALL_MAX; n++) {
        size_t sz = tidei_class_size[tidei_class_of(n)];
        double w = (double)(sz - n) / (double)n;
        if (n <= 64) {
            if (w > worst_small) { worst_small = w; at_small = n; }
        } else if (n <= 128) {
            if (w > worst_mid) { worst_mid = w; at_mid = n; }
            CHECKF(sz - n < 16, "malloc(%zu) gets %zu bytes: classes must be 16 bytes apart up to 128", n, sz);
        } else {
            if (w > worst_big) { worst_big = w; at_big = n; }
            CHECKF((sz - n) * 8 <= n, "malloc(%zu) gets %zu bytes: %.1f %% waste > 12.5 %%", n, sz, 100 * w);
        }
    }
    fprintf(stderr, "worst internal waste: 1..64 B: %.1f %% (at %zu B); 65..128 B: %.1f %% (at %zu B); "
            "129 B..64 KiB: %.1f %% (at %zu B)\n", 100 * worst_small, at_small, 100 * worst_mid, at_mid,
            100 * worst_big, at_big);
}

/* Span layout per class: at least TIDE_SPAN_MIN_BLOCKS blocks and
 * TIDE_SPAN_MIN_BYTES (or that many blocks' worth), at most TIDE_SPAN_MAX_PAGES pages, and the tail of the span
 * that holds no whole block is less than one block and at most 12.5 % of
 * the span. */
static void span_layout(void)
{
    double worst = 0;
    int worst_c = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        size_t sz = tidei_class_size[c], pages = tidei_class_pages[c];
        size_t bytes = pages << TIDE_PAGE_SHIFT;
        size_t min = sz * TIDE_SPAN_MIN_BLOCKS > TIDE_SPAN_MIN_BYTES ? sz * TIDE_SPAN_MIN_BLOCKS : TIDE_SPAN_MIN_BYTES;
        CHECKF(pages >= 1 && pages <= TIDE_SPAN_MAX_PAGES, "class %d: %zu pages", c, pages);
        CHECKF(bytes >= min || pages == TIDE_SPAN_MAX_PAGES, "class %d (%zu B): span of %zu bytes < %zu", c, sz,
               bytes, min);
        CHECKF(bytes / sz >= TIDE_SPAN_MIN_BLOCKS, "class %d (%zu B): %zu blocks per span", c, sz, bytes / sz);
        double tail = (double)(bytes % sz) / (double)bytes;
        CHECKF(tail <= 0.125, "class %d (%zu B, %zu pages): %.1f %% of the span is unusable", c, sz, pages,
               100 * tail);
        if (tail > worst) { worst = tail; worst_c = c; }
    }
    fprintf(stderr, "worst span-end waste: %.2f %% (class %d, %u B, %u pages)\n", 100 * worst, worst_c,
            tidei_class_size[worst_c], tidei_class_pages[worst_c]);
}

/* tidei_blk_mul makes floor(2^64 / size) + 1 in 64-bit arithmetic (a
 * 128-bit division would call libgcc, linked after tide's code: static.c):
 * the same as the 128-bit division for every size up to the largest class
 * (the power-of-two sizes, where 2^64 / size has no remainder, included). */
static void blk_mul_exact(void)
{
    for (uint32_t sz = 2; sz <= TIDE_SMALL_MAX && !TH_FAILED(); sz++) {
        uint64_t want = (uint64_t)(((unsigned __int128)1 << 64) / sz) + 1;
        CHECKF(tidei_blk_mul(sz) == want, "size %u: %llu, want %llu", sz, (unsigned long long)tidei_blk_mul(sz),
               (unsigned long long)want);
    }
}

/* A span's set-up takes its class's constants from tables (span.c) and
 * divides its length by the block size with the class's multiplier: both
 * as the divisions would give, for every class and every span length a
 * run or a spare can have, up to a whole chunk. */
static void span_setup_constants(void)
{
    for (int c = 0; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        uint32_t sz = tidei_class_size[c];
        CHECKF(tidei_class_mul[c] == tidei_blk_mul(sz), "class %d: multiplier %llu", c,
               (unsigned long long)tidei_class_mul[c]);
        for (size_t pages = 1; pages <= TIDE_CHUNK_PAGES && !TH_FAILED(); pages++) {
            uint64_t bytes = (uint64_t)pages << TIDE_PAGE_SHIFT;
            uint64_t q = (uint64_t)(((unsigned __int128)bytes * tidei_class_mul[c]) >> 64);
            CHECKF(q == bytes / sz, "class %d, %zu pages: %llu blocks, want %llu", c, pages, (unsigned long long)q,
                   (unsigned long long)(bytes / sz));
        }
    }
    /* and a span set up on a run of a spare's length gets that count */
    tidei_init();
    int c = (int)tidei_class_of(20000);
    tide_span_t *s = tidei_arena_alloc_run(3 * tidei_class_pages[c], 0, TIDE_SPAN_SMALL, true);
    CHECK(s != NULL);
    if (s) {
        tidei_span_init_small(s, c);
        CHECKF(s->n_blocks == (3 * tidei_class_pages[c] << TIDE_PAGE_SHIFT) / tidei_class_size[c] &&
                   s->blk_mul == tidei_blk_mul(tidei_class_size[c]),
               "span of class %d on %u pages: %u blocks", c, 3 * tidei_class_pages[c], s->n_blocks);
        tidei_arena_free_run(s, false);
    }
}

/* tidei_block_index (the high half of a multiply by blk_mul) is off / size,
 * and tidei_is_block_start agrees with off % size == 0, for every byte
 * offset of a span of every class. */
static void block_start_exact(void)
{
    for (int c = 0; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t s;
        memset(&s, 0, sizeof s);
        s.start = (uintptr_t)0x7f1234560000ull;
        s.n_pages = tidei_class_pages[c];
        tidei_span_init_small(&s, c);
        size_t bytes = s.n_pages << TIDE_PAGE_SHIFT;
        CHECKF(s.n_blocks == bytes / s.block_size, "class %d: n_blocks %u, want %zu", c, s.n_blocks,
               bytes / s.block_size);
        for (size_t off = 0; off < bytes; off++) {
            if (tidei_block_index(&s, s.start + off) != off / s.block_size) {
                FAILF("class %d (%u B): block_index(start + %zu) = %zu, want %zu", c, s.block_size, off,
                      tidei_block_index(&s, s.start + off), off / s.block_size);
                break;
            }
            bool want = off % s.block_size == 0;
            if (tidei_is_block_start(&s, (void *)(s.start + off)) != want) {
                FAILF("class %d (%u B): is_block_start(start + %zu) = %d, want %d", c, s.block_size, off, !want,
                      want);
                break;
            }
        }
    }
}

/* Real blocks: tidei_malloc(n) comes from a span of class_of(n) whose block
 * size is that class's, at a block boundary of the span. */
static void blocks_in_their_class(void)
{
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 64, 65, 128, 129, 1000, 4096, 5000, 32768, 65535, 65536 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = tidei_malloc(n);
        CHECKF(p, "tidei_malloc(%zu) = NULL", n);
        if (!p) continue;
        tide_span_t *s = tidei_pagemap_lookup(p);
        int c = tidei_class_of(n);
        CHECKF(s && s->kind == TIDE_SPAN_SMALL && s->cls == c && s->block_size == tidei_class_size[c],
               "tidei_malloc(%zu): span %p kind %d class %d, want SMALL class %d", n, (void *)s, s ? s->kind : -1,
               s ? s->cls : -1, c);
        if (s)
            CHECKF(((uintptr_t)p - s->start) % s->block_size == 0, "tidei_malloc(%zu) = %p: not a block start", n,
                   p);
        CHECK(tidei_usable_size(p, "test") == tidei_class_size[c]);
        tidei_free(p);
    }
}

int main(void)
{
    RUN(class_table);
    RUN(class_of_is_tightest);
    RUN(waste_bounds);
    RUN(span_layout);
    RUN(blk_mul_exact);
    RUN(span_setup_constants);
    RUN(block_start_exact);
    RUN(blocks_in_their_class);
    return th_summary();
}
