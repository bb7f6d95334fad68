/* large.c — the free-range index: every free page run of every chunk, in
 * bins by exact length (1 .. TIDE_CHUNK_PAGES pages) with a two-level bitmap
 * of the non-empty bins, so that the smallest run that fits is found with two
 * bit scans (best fit; LIFO within a bin, so recently freed, warm runs are
 * reused first).  A free run is in exactly one bin from the moment it exists
 * until it is allocated, merged or unmapped: nothing hides a free run.
 * All functions need the arena lock. */
#include "tide_internal.h"

static void bit_set(tide_arena_t *a, size_t n)
{
    a->bitmap[n >> 6] |= (uint64_t)1 << (n & 63);
    a->summary |= (uint64_t)1 << (n >> 6);
}

static void bit_clear(tide_arena_t *a, size_t n)
{
    a->bitmap[n >> 6] &= ~((uint64_t)1 << (n & 63));
    if (a->bitmap[n >> 6] == 0)
        a->summary &= ~((uint64_t)1 << (n >> 6));
}

void tidei_index_insert(tide_span_t *r)
{
    tide_arena_t *a = &tidei_arena;
    size_t n = r->n_pages;
    tide_debug_assert(r->kind == TIDE_SPAN_FREE && n >= 1 && n <= TIDE_CHUNK_PAGES);
    tide_list_push(a->bins[n], r, next, prev);
    bit_set(a, n);
    a->free_pages += n;
    if (r->is_zero)
        a->zero_free_pages += n;
}

void tidei_index_remove(tide_span_t *r)
{
    tide_arena_t *a = &tidei_arena;
    size_t n = r->n_pages;
    tide_list_remove(a->bins[n], r, next, prev);
    if (!a->bins[n])
        bit_clear(a, n);
    a->free_pages -= n;
    if (r->is_zero)
        a->zero_free_pages -= n;
}

/* The smallest free run of at least n pages, or NULL.  Not removed. */
tide_span_t *tidei_index_find(size_t n)
{
    tide_arena_t *a = &tidei_arena;
    if (n > TIDE_CHUNK_PAGES)
        return NULL;
    size_t w = n >> 6;
    uint64_t m = a->bitmap[w] & (~(uint64_t)0 << (n & 63));
    if (!m) {
        uint64_t sm = w + 1 < 64 ? a->summary & (~(uint64_t)0 << (w + 1)) : 0;
        if (!sm)
            return NULL;
        w = (size_t)__builtin_ctzll(sm);
        m = a->bitmap[w];
    }
    size_t bin = (w << 6) + (size_t)__builtin_ctzll(m);
    return a->bins[bin];
}

/* Expensive check (DEBUG=2 builds and tests): every page of every chunk is
 * covered by exactly one span or free run, every free run is in its bin, and
 * the free-page counts add up.  Aborts on the first inconsistency. */
void tidei_arena_validate(void)
{
    tide_arena_t *a = &tidei_arena;
    pthread_mutex_lock(&a->lock);
    size_t total_free = 0;
    for (tide_chunk_t *c = a->chunks; c; c = c->next) {
        size_t chunk_free = 0;
        size_t i = 0;
        while (i < TIDE_CHUNK_PAGES) {
            uintptr_t addr = c->base + (i << TIDE_PAGE_SHIFT);
            tide_span_t *s = tidei_pagemap_lookup((void *)addr);
            if (!s || s->start != addr || s->chunk != c || s->n_pages == 0 || i + s->n_pages > TIDE_CHUNK_PAGES)
                tidei_fatal("tide: validate: chunk %p page %zu not covered by a run (hidden page)\n",
                            (void *)c->base, i);
            if (s->kind == TIDE_SPAN_FREE) {
                bool found = false;
                for (tide_span_t *r = a->bins[s->n_pages]; r; r = r->next)
                    found |= (r == s);
                if (!found)
                    tidei_fatal("tide: validate: free run %p (%zu pages) missing from its bin\n",
                                (void *)s->start, s->n_pages);
                uintptr_t last = s->start + ((s->n_pages - 1) << TIDE_PAGE_SHIFT);
                if (tidei_pagemap_lookup((void *)last) != s)
                    tidei_fatal("tide: validate: free run %p: last page not mapped to it\n", (void *)s->start);
                chunk_free += s->n_pages;
            } else {
                for (size_t k = 0; k < s->n_pages; k++)
                    if (tidei_pagemap_lookup((void *)(addr + (k << TIDE_PAGE_SHIFT))) != s)
                        tidei_fatal("tide: validate: span %p page %zu not mapped to it\n", (void *)addr, k);
            }
            i += s->n_pages;
        }
        if (chunk_free != c->n_free_pages)
            tidei_fatal("tide: validate: chunk %p counts %zu free pages, runs hold %zu\n",
                        (void *)c->base, c->n_free_pages, chunk_free);
        total_free += chunk_free;
    }
    size_t binned = 0, zero = 0;
    for (size_t n = 1; n <= TIDE_CHUNK_PAGES; n++) {
        for (tide_span_t *r = a->bins[n]; r; r = r->next) {
            binned += n;
            zero += r->is_zero ? n : 0;
        }
    }
    if (binned != total_free || binned != a->free_pages)
        tidei_fatal("tide: validate: bins hold %zu free pages, chunks %zu, counter %zu\n",
                    binned, total_free, a->free_pages);
    if (zero != a->zero_free_pages)
        tidei_fatal("tide: validate: bins hold %zu zero pages, counter %zu\n", zero, a->zero_free_pages);
    pthread_mutex_unlock(&a->lock);
}
