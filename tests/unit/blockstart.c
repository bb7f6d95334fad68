/* unit/blockstart.c — the one-multiply block-start test (tidei_block_ok)
 * against the division it replaced, for every size class, every offset in
 * a span of the class, and numbers of built blocks from none to all.
 *
 * The old test (before issue 13): idx = (off * recip) >> 32 with recip =
 * ceil(2^32 / size); off is a built block's start iff idx * size == off and
 * idx < n_built.  The new one: off * m mod 2^64 < n_built * (m * size mod
 * 2^64), m = floor(2^64 / size) + 1.  Both are also checked against plain
 * arithmetic (off % size == 0 && off / size < n_built).  The free fast
 * path's form of it, from d = p - the flat range's base (d * m - blk_base,
 * tidei_block_ok_flat), is checked beside it.  The spans are the real
 * ones: tidei_span_init_small and the carving of span.c fill in the
 * fields the fast path reads. */
#include "unit.h"

static bool old_check(uint64_t off, uint32_t size, uint32_t recip, uint32_t n_built)
{
    uint64_t idx = (off * recip) >> 32;
    return idx * size == off && idx < n_built;
}

static void every_class_and_offset(void)
{
    tidei_init();
    uint64_t n_checked = 0;
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t *s = tidei_arena_alloc_run(tidei_class_pages[c], 0, TIDE_SPAN_SMALL, true);
        CHECKF(s != NULL, "no span for class %d", c);
        if (!s)
            return;
        tidei_span_init_small(s, c);
        uint32_t size = s->block_size;
        uint64_t bytes = (uint64_t)s->n_pages << TIDE_PAGE_SHIFT;
        uint64_t base = tidei_pagemap_flat.base;
        CHECKF(s->start - base < (uint64_t)tidei_pagemap_flat.n_pages << TIDE_PAGE_SHIFT,
               "class %d: span at %#llx outside the flat range", c, (unsigned long long)s->start);
        CHECKF((unsigned __int128)bytes * size * size < ((unsigned __int128)1 << 64),
               "class %d: span of %llu bytes too big for the proof's bound", c, (unsigned long long)bytes);
        /* none, one, half, all but one and all blocks built */
        uint32_t builts[5] = { 0, 1, s->n_blocks / 2, s->n_blocks - 1, s->n_blocks };
        int nb = 5;
        for (int k = 0; k < nb && !TH_FAILED(); k++) {
            uint32_t n_built = builts[k];
            uint64_t bound = (uint64_t)n_built * (s->blk_mul * size);
            if (n_built == s->n_built)
                CHECKF(bound == s->blk_bound, "class %d: blk_bound %llu, want %llu", c,
                       (unsigned long long)s->blk_bound, (unsigned long long)bound);
            for (uint64_t off = 0; off < bytes; off++) {
                bool truth = off % size == 0 && off / size < n_built;
                bool was = old_check(off, size, s->recip, n_built);
                bool now = tidei_block_ok(s, off, bound);
                bool flat = tidei_block_ok_flat(s, s->start + off - base, bound);
                if (was != truth || now != truth || flat != truth) {
                    FAILF("class %d (%u bytes), n_built %u, offset %llu: old %d, new %d, flat %d, truth %d", c, size,
                          n_built, (unsigned long long)off, was, now, flat, truth);
                    break;
                }
                n_checked++;
            }
        }
        /* the fields the carving fills in (blk_bound, built_bytes), as the
         * fast paths read them, after each batch carved */
        while (!TH_FAILED()) {
            for (uint64_t off = 0; off < bytes; off += 16) {
                bool truth = off % size == 0 && off / size < s->n_built;
                if (tidei_block_ok(s, off, s->blk_bound) != truth ||
                    tidei_block_ok_flat(s, s->start + off - base, s->blk_bound) != truth ||
                    tidei_span_built_has(s, (void *)(s->start + off)) != (off < (uint64_t)s->n_built * size)) {
                    FAILF("class %d: offset %llu with the span's own fields (n_built %u)", c,
                          (unsigned long long)off, s->n_built);
                    break;
                }
            }
            if (s->n_built == s->n_blocks)
                break;
            s->free = NULL;              /* as if every carved block was handed out */
            tidei_span_collect(s);       /* carves the next batch */
        }
        s->free = NULL;
        tidei_arena_free_run(s, false);
    }
    fprintf(stderr, "%llu (class, n_built, offset) triples checked\n", (unsigned long long)n_checked);
}

int main(void)
{
    RUN(every_class_and_offset);
    return th_summary();
}
