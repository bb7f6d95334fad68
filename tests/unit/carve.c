/* unit/carve.c — how many blocks a span carves at a time (span.c
 * span_extend, TIDE_CARVE_MIN_BLOCKS in tide_config.h), for every size
 * class, on fresh pages and on pages used before.
 *
 *   - On fresh pages (is_zero), a carve takes the blocks that end in the
 *     page where its first block ends, at least one: a thread with one
 *     block of a big class writes one page of its span, no more.
 *   - On pages used before (not is_zero, likely still resident), at least
 *     TIDE_CARVE_MIN_BLOCKS blocks, or all that are left if fewer: blocks
 *     of a few KiB would otherwise cost a slow path each.
 *   - Every carved block is on the span's free list, once, with the free
 *     key; the span's fields agree (n_built, built_bytes, blk_bound); and
 *     carving again until the span is built carves each block once.
 * The carve-ahead of big processes (carve_ahead, from the second carve of
 * a fresh span on) is api/carve.c's. */
#include "unit.h"

/* A span of class c on a fresh run, its is_zero set to zero; NULL (a
 * failure) if the arena gave none. */
static tide_span_t *class_span(int c, bool zero)
{
    tide_span_t *s = tidei_arena_alloc_run(tidei_class_pages[c], 0, TIDE_SPAN_SMALL, true);
    CHECKF(s != NULL, "no span for class %d", c);
    if (!s)
        return NULL;
    tidei_span_init_small(s, c);
    s->is_zero = zero;
    return s;
}

/* The blocks the first carve of a fresh span of class c takes. */
static uint32_t fresh_first_carve(const tide_span_t *s)
{
    uintptr_t first = s->start;
    uintptr_t limit = (first + s->block_size + TIDE_PAGE_SIZE - 1) & ~(uintptr_t)(TIDE_PAGE_SIZE - 1);
    uint32_t n = (uint32_t)((limit - first) / s->block_size);
    if (n == 0)
        n = 1;
    return n < s->n_blocks ? n : s->n_blocks;
}

/* Walks s's free list: every entry a carved block's start, none twice
 * (n_built at most), each with the free key; returns the length. */
static uint32_t free_list_length(tide_span_t *s, int c)
{
    uint32_t n = 0;
    uintptr_t key = tidei_free_key_of(s);
    for (tide_free_block_t *b = s->free; b && !TH_FAILED(); b = tidei_link_next(s, b, "test")) {
        uintptr_t off = (uintptr_t)b - s->start;
        CHECKF(off % s->block_size == 0 && off / s->block_size < s->n_built,
               "class %d: free list entry at offset %zu, %u blocks built", c, (size_t)off, s->n_built);
        CHECKF(b->key == key, "class %d: carved block at offset %zu without the free key", c, (size_t)off);
        if (++n > s->n_built) {
            FAILF("class %d: free list longer than the %u blocks built", c, s->n_built);
            break;
        }
    }
    return n;
}

/* Carves s to its end, a batch at a time, checking each batch's size
 * (at least want_min blocks, or all that are left) and the span's fields. */
static void carve_to_end(tide_span_t *s, int c, uint32_t want_min)
{
    while (s->n_built < s->n_blocks && !TH_FAILED()) {
        uint32_t before = s->n_built;
        s->free = NULL;  /* as if every carved block was handed out */
        tidei_span_collect(s, true);
        uint32_t got = s->n_built - before;
        uint32_t left = s->n_blocks - before;
        uint32_t want = want_min < left ? want_min : left;
        CHECKF(got >= want && got >= 1, "class %d (%u bytes): carved %u blocks with %u left, want at least %u", c,
               s->block_size, got, left, want);
        CHECKF(free_list_length(s, c) == got, "class %d: %u blocks carved, not all on the free list", c, got);
        CHECKF(s->built_bytes == (uint64_t)s->n_built * s->block_size, "class %d: built_bytes %llu for %u blocks", c,
               (unsigned long long)s->built_bytes, s->n_built);
        CHECKF(s->blk_bound == (uint64_t)s->n_built * (s->blk_mul * s->block_size), "class %d: blk_bound", c);
    }
}

static void fresh_pages_carve_one_page(void)
{
    tidei_init();
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t *s = class_span(c, true);
        if (!s)
            return;
        uint32_t want = fresh_first_carve(s);
        tidei_span_collect(s, true);
        CHECKF(s->n_built == want, "class %d (%u bytes), fresh pages: first carve took %u blocks, want %u", c,
               s->block_size, s->n_built, want);
        if (s->block_size >= TIDE_PAGE_SIZE)
            CHECKF(s->n_built == 1, "class %d (%u bytes): a block of a page or more carved %u on fresh pages", c,
                   s->block_size, s->n_built);
        CHECKF(free_list_length(s, c) == s->n_built, "class %d: first carve not all on the free list", c);
        carve_to_end(s, c, 1);
        s->free = NULL;
        tidei_arena_free_run(s, false);
    }
}

static void used_pages_carve_at_least_four(void)
{
    tidei_init();
    int n_big = 0;
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t *s = class_span(c, false);
        if (!s)
            return;
        uint32_t fresh = fresh_first_carve(s);
        uint32_t want = fresh > TIDE_CARVE_MIN_BLOCKS ? fresh : TIDE_CARVE_MIN_BLOCKS;
        if (want > s->n_blocks)
            want = s->n_blocks;
        tidei_span_collect(s, true);
        CHECKF(s->n_built == want, "class %d (%u bytes), used pages: first carve took %u blocks, want %u", c,
               s->block_size, s->n_built, want);
        n_big += fresh < TIDE_CARVE_MIN_BLOCKS;
        CHECKF(free_list_length(s, c) == s->n_built, "class %d: first carve not all on the free list", c);
        carve_to_end(s, c, TIDE_CARVE_MIN_BLOCKS);
        s->free = NULL;
        tidei_arena_free_run(s, false);
    }
    /* the rule must have mattered: classes of over a KiB carve fewer than
     * four blocks a page */
    CHECKF(n_big > 10, "only %d classes carve fewer than %d blocks on fresh pages", n_big, TIDE_CARVE_MIN_BLOCKS);
}

int main(void)
{
    RUN(fresh_pages_carve_one_page);
    RUN(used_pages_carve_at_least_four);
    return th_summary();
}
