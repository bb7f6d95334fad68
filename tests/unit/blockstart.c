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
 * fields the fast path reads.
 *
 * far_addresses: the free fast path masks the page number of any address
 * into the flat range rather than comparing it with the range's length,
 * so an address a multiple of the range's size away from a span's page
 * reads that span.  The block-start test must then say no: it is exact for
 * any address below 2^47 (a proof in free.c's terms: with x = p - start,
 * |x| < 2^47 and a block size of at most 2^16, x * m mod 2^64 is x / size
 * * (m * size mod 2^64) when size divides x and above 2^47 otherwise).
 * Checked for every class at every such alias of a span's first, middle
 * and last blocks, and at a million random addresses; and every page of
 * the range's first slot, which no span uses, reads as the descriptor of
 * no span (its words are the entries of those pages). */
#include "unit.h"

static bool old_check(uint64_t off, uint32_t size, uint32_t recip, uint32_t n_built)
{
    uint64_t idx = (off * recip) >> 32;
    return idx * size == off && idx < n_built;
}

/* A fresh span of class c, no block built; NULL (a failure) if none. */
static tide_span_t *class_span(int c)
{
    tide_span_t *s = tidei_arena_alloc_run(tidei_class_pages[c], 0, TIDE_SPAN_SMALL, true);
    CHECKF(s != NULL, "no span for class %d", c);
    if (s)
        tidei_span_init_small(s, c);
    return s;
}

static void every_class_and_offset(void)
{
    tidei_init();
    uint64_t n_checked = 0;
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t *s = class_span(c);
        if (!s)
            return;
        uint32_t size = s->block_size;
        uint32_t recip = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);  /* the old test's, ceil(2^32 / size) */
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
                bool was = old_check(off, size, recip, n_built);
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
            tidei_span_collect(s, true); /* carves the next batch */
        }
        s->free = NULL;
        tidei_arena_free_run(s, false);
    }
    fprintf(stderr, "%llu (class, n_built, offset) triples checked\n", (unsigned long long)n_checked);
}

/* A 64-bit random number (xorshift). */
static uint64_t rnd(uint64_t *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 7;
    *st ^= *st << 17;
    return *st;
}

static void far_addresses(void)
{
    tidei_init();
    uint64_t base = tidei_pagemap_flat.base;
    uint64_t range = (uint64_t)tidei_pagemap_flat.n_pages << TIDE_PAGE_SHIFT;
    CHECKF(range != 0 && (range & (range - 1)) == 0, "flat range of %#llx bytes: not a power of two",
           (unsigned long long)range);
    CHECKF(tidei_pagemap_flat.mask == tidei_pagemap_flat.n_pages - 1, "mask %#llx for %zu pages",
           (unsigned long long)tidei_pagemap_flat.mask, tidei_pagemap_flat.n_pages);
    /* slot 0's pages, where the descriptor of "no span" lives, read as
     * that descriptor: every address whose page masks into them does */
    for (uintptr_t i = 0; i < TIDE_CHUNK_PAGES && !TH_FAILED(); i++)
        CHECKF(tidei_flat_span(i) == tidei_flat_none(), "page %zu of slot 0 reads as %p, not the empty descriptor %p",
               (size_t)i, (void *)tidei_flat_span(i), (void *)tidei_flat_none());
    if (TH_FAILED())
        return;
    const uint64_t top = (uint64_t)1 << 47;
    uint64_t st = 0x9e3779b97f4a7c15ull, n_checked = 0, n_aliases = 0;
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t *s = class_span(c);
        if (!s)
            return;
        while (s->n_built < s->n_blocks) {  /* every block built: the widest bound */
            s->free = NULL;
            tidei_span_collect(s, true);
        }
        uint32_t size = s->block_size;
        uint64_t span_bytes = (uint64_t)s->n_blocks * size;
        uint64_t offs[6] = { 0, 8, size, span_bytes / 2 / size * size, span_bytes - size, span_bytes - 8 };
        for (int k = 0; k < 6 && !TH_FAILED(); k++) {
            /* every alias of start + offs[k] in [0, 2^47): the fast path's
             * masked lookup gives s for each */
            uint64_t p0 = s->start + offs[k];
            for (uint64_t p = p0 % range; p < top; p += range) {
                if (p == p0)
                    continue;
                uint64_t d = p - base;
                if (((d >> TIDE_PAGE_SHIFT) & tidei_pagemap_flat.mask) != ((p0 - base) >> TIDE_PAGE_SHIFT)) {
                    FAILF("class %d: %#llx does not alias %#llx", c, (unsigned long long)p, (unsigned long long)p0);
                    break;
                }
                n_aliases++;
                if (tidei_block_ok_flat(s, d, s->blk_bound)) {
                    FAILF("class %d (%u bytes): %#llx, an alias of %#llx, passes the block-start test", c, size,
                          (unsigned long long)p, (unsigned long long)p0);
                    break;
                }
            }
        }
        for (int i = 0; i < 1000000 / TIDE_N_CLASSES && !TH_FAILED(); i++) {
            uint64_t p = rnd(&st) % top;
            if (i & 1)  /* half of them near the span */
                p = s->start + (rnd(&st) % (4 * span_bytes)) - 2 * span_bytes;
            uint64_t x = p - s->start;
            bool truth = x < span_bytes && x % size == 0;
            if (tidei_block_ok_flat(s, p - base, s->blk_bound) != truth) {
                FAILF("class %d (%u bytes): %#llx (span at %#llx): test says %d", c, size, (unsigned long long)p,
                      (unsigned long long)s->start, !truth);
                break;
            }
            n_checked++;
        }
        s->free = NULL;
        tidei_arena_free_run(s, false);
    }
    fprintf(stderr, "%llu aliases and %llu random addresses checked\n", (unsigned long long)n_aliases,
            (unsigned long long)n_checked);
}

int main(void)
{
    RUN(every_class_and_offset);
    RUN(far_addresses);
    return th_summary();
}
