/* unit/pagemap.c — the page map (pagemap.c): every address is classified as
 * not tide's (NULL), a free run (its FREE descriptor on the run's first and
 * last page, NULL inside), or a block's span (SMALL, LARGE, HUGE) on every
 * page of the span. */
#include "unit.h"

static int global_var;

/* Checks that every page of [start, start + n pages) maps to s. */
static bool all_pages_map_to(uintptr_t start, size_t n, tide_span_t *s)
{
    for (size_t i = 0; i < n; i++)
        if (tidei_pagemap_lookup((void *)(start + (i << TIDE_PAGE_SHIFT))) != s) return false;
    return true;
}

/* Addresses tide never handed out are not tide's. */
static void not_tide(void)
{
    int local = 0;
    tidei_init();
    void *glibc = th_opaque_ptr(malloc(100));   /* glibc's malloc in a unit test */
    void *addrs[] = {
        NULL, (void *)1, (void *)4096, &local, &global_var, glibc, (void *)&not_tide,
        (void *)((uintptr_t)1 << 47), (void *)(((uintptr_t)1 << 47) + 4096), (void *)~(uintptr_t)0,
        (void *)0xffff800000000000ull,
    };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        CHECKF(tidei_pagemap_lookup(addrs[i]) == NULL, "lookup(%p) is not NULL", addrs[i]);
    free(glibc);
}

/* A small block's page maps to its SMALL span, and so does every page of
 * the span; the span contains the block. */
static void small_block(void)
{
    void *p = tidei_malloc(100);
    tide_span_t *s = tidei_pagemap_lookup(p);
    CHECK(s && s->kind == TIDE_SPAN_SMALL);
    if (!s) return;
    CHECK(s->start <= (uintptr_t)p && (uintptr_t)p < s->start + (s->n_pages << TIDE_PAGE_SHIFT));
    CHECK(s->start % TIDE_PAGE_SIZE == 0);
    CHECK(s->chunk && s->start >= s->chunk->base && s->start + (s->n_pages << TIDE_PAGE_SHIFT) <=
          s->chunk->base + TIDE_CHUNK_SIZE);
    CHECKF(all_pages_map_to(s->start, s->n_pages, s), "a page of the small span does not map to it");
    CHECK(tidei_pagemap_lookup((char *)p + 99) == s);
    tidei_free(p);
}

/* A large block: every page maps to its LARGE span, which starts at the
 * block.  Freed, its pages are a free run: the run's first and last pages
 * map to a FREE descriptor, the pages inside it to NULL. */
static void large_block(void)
{
    size_t n = 300 * KiB, pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    char *guard = tidei_malloc(n);     /* so that the run freed below is not a whole empty chunk */
    char *p = tidei_malloc(n);
    tide_span_t *s = tidei_pagemap_lookup(p);
    CHECK(s && s->kind == TIDE_SPAN_LARGE && s->start == (uintptr_t)p && s->n_pages == pages);
    if (!s) return;
    CHECKF(all_pages_map_to(s->start, pages, s), "a page of the large block does not map to its span");
    tidei_free(p);
    tide_span_t *f = tidei_pagemap_lookup(p);
    if (f) {
        CHECKF(f->kind == TIDE_SPAN_FREE, "freed large block: first page maps to kind %d, not FREE", f->kind);
        CHECK(f->start <= (uintptr_t)p);
    }
    /* Find the free run that holds p through the index walk of validate. */
    tidei_arena_validate();
    /* Every page of the freed block is now either NULL or a FREE descriptor. */
    for (size_t i = 0; i < pages; i++) {
        tide_span_t *q = tidei_pagemap_lookup(p + (i << TIDE_PAGE_SHIFT));
        CHECKF(q == NULL || q->kind == TIDE_SPAN_FREE, "page %zu of a freed large block maps to kind %d", i,
               q->kind);
    }
    /* The run holding p: its ends map to it, its inside to NULL. */
    tide_arena_t *a = &tidei_arena;
    tide_span_t *run = NULL;
    for (size_t k = 1; k <= TIDE_CHUNK_PAGES && !run; k++)
        for (tide_span_t *r = a->bins[k]; r; r = r->next)
            if (r->start <= (uintptr_t)p && (uintptr_t)p < r->start + (r->n_pages << TIDE_PAGE_SHIFT)) run = r;
    CHECKF(run != NULL, "no free run holds the freed large block");
    if (run) {
        uintptr_t last = run->start + ((run->n_pages - 1) << TIDE_PAGE_SHIFT);
        CHECK(tidei_pagemap_lookup((void *)run->start) == run);
        CHECK(tidei_pagemap_lookup((void *)last) == run);
        for (uintptr_t q = run->start + TIDE_PAGE_SIZE; q < last; q += TIDE_PAGE_SIZE)
            if (tidei_pagemap_lookup((void *)q) != NULL) {
                FAILF("page %#lx inside a free run maps to %p", (unsigned long)q, (void *)tidei_pagemap_lookup((void *)q));
                break;
            }
    }
    tidei_free(guard);
}

/* A huge block: its own mapping, every page maps to the HUGE span; after
 * free nothing maps to it any more (cached or unmapped). */
static void huge_block(void)
{
    size_t n = 20 * MiB + 1, pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    char *p = tidei_malloc(n);
    tide_span_t *s = tidei_pagemap_lookup(p);
    CHECK(s && s->kind == TIDE_SPAN_HUGE && s->start == (uintptr_t)p && s->n_pages == pages && !s->chunk);
    if (!s) return;
    CHECKF(all_pages_map_to(s->start, pages, s), "a page of the huge block does not map to its span");
    CHECK(tidei_pagemap_lookup(p + (pages << TIDE_PAGE_SHIFT)) != s);
    CHECK(tidei_pagemap_lookup(p - 1) != s);
    /* Grown with realloc (mremap), the new pages map too. */
    char *q = tidei_realloc(p, 30 * MiB);
    CHECK(q);
    s = tidei_pagemap_lookup(q);
    CHECK(s && s->kind == TIDE_SPAN_HUGE && s->start == (uintptr_t)q && s->n_pages == 30 * MiB / TIDE_PAGE_SIZE);
    if (s) CHECKF(all_pages_map_to(s->start, s->n_pages, s), "a page of the grown huge block does not map to it");
    if ((uintptr_t)q != (uintptr_t)p)
        CHECKF(tidei_pagemap_lookup(p) == NULL || tidei_pagemap_lookup(p)->kind != TIDE_SPAN_HUGE ||
               tidei_pagemap_lookup(p)->start != (uintptr_t)p, "the old place of a moved huge block still maps");
    tidei_free(q);
    for (size_t i = 0; i < 30 * MiB / TIDE_PAGE_SIZE; i += 97)
        if (tidei_pagemap_lookup(q + (i << TIDE_PAGE_SHIFT)) != NULL) {
            FAILF("page %zu of a freed huge block still maps", i);
            break;
        }
}

/* pagemap_ensure/set/lookup directly, across a leaf boundary (each leaf
 * covers 4 GiB), on address space reserved by the test so that no tide
 * memory is touched. */
static void set_and_lookup_across_leaves(void)
{
    size_t leaf_span = (size_t)1 << (TIDE_MAP_LEAF_BITS + TIDE_PAGE_SHIFT);
    uintptr_t boundary = (uintptr_t)0x5a0000000000ull;   /* a multiple of 4 GiB */
    CHECK(boundary % leaf_span == 0);
    uintptr_t start = boundary - 4 * TIDE_PAGE_SIZE;
    void *r = mmap((void *)start, 8 * TIDE_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (r != (void *)start) {
        if (r != MAP_FAILED) munmap(r, 8 * TIDE_PAGE_SIZE);
        th_skip("cannot reserve the test range at %#lx", (unsigned long)start);
        return;
    }
    static tide_span_t fake;
    pthread_mutex_lock(&tidei_arena.lock);
    bool ok = tidei_pagemap_ensure(start, 8);
    if (ok) {
        for (int i = 0; i < 8; i++)
            CHECK(tidei_pagemap_lookup((void *)(start + i * TIDE_PAGE_SIZE)) == NULL);
        tidei_pagemap_set(start + TIDE_PAGE_SIZE, 6, &fake);
        CHECK(tidei_pagemap_lookup((void *)start) == NULL);
        for (int i = 1; i < 7; i++)
            CHECKF(tidei_pagemap_lookup((void *)(start + i * TIDE_PAGE_SIZE + 123)) == &fake, "page %d", i);
        CHECK(tidei_pagemap_lookup((void *)(start + 7 * TIDE_PAGE_SIZE)) == NULL);
        tidei_pagemap_set_one(boundary, NULL);
        CHECK(tidei_pagemap_lookup((void *)boundary) == NULL);
        CHECK(tidei_pagemap_lookup((void *)(boundary - 1)) == &fake);
        tidei_pagemap_set(start, 8, NULL);
        for (int i = 0; i < 8; i++)
            CHECK(tidei_pagemap_lookup((void *)(start + i * TIDE_PAGE_SIZE)) == NULL);
    }
    /* Beyond the 47-bit space: refused. */
    CHECK(!tidei_pagemap_ensure((uintptr_t)1 << 47, 1));
    CHECK(!tidei_pagemap_ensure(((uintptr_t)1 << 47) - TIDE_PAGE_SIZE, 2));
    pthread_mutex_unlock(&tidei_arena.lock);
    CHECKF(ok, "tidei_pagemap_ensure failed");
    munmap(r, 8 * TIDE_PAGE_SIZE);
}

int main(void)
{
    RUN(not_tide);
    RUN(small_block);
    RUN(large_block);
    RUN(huge_block);
    RUN(set_and_lookup_across_leaves);
    return th_summary();
}
