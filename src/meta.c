/* meta.c — out-of-band metadata: span descriptors, chunk descriptors and
 * heaps are carved from their own mappings, never from the pages they
 * describe, so an overflow from a user block cannot reach them.  tide never
 * calls the system malloc.
 *
 * Owns the metadata regions and the pool of recycled span descriptors
 * (tidei_arena.meta_*, span_pool).  Takes no lock: every function here
 * needs the arena lock held by its caller. */
#include "tide_internal.h"

/* Returns size bytes of zeroed, 64-byte aligned metadata, or NULL when the
 * OS refuses memory.  Never freed: callers recycle what they get. */
void *tidei_meta_alloc(size_t size)
{
    tide_arena_t *a = &tidei_arena;
    size = (size + 63) & ~(size_t)63;
    if (a->meta_cur + size > a->meta_end) {
        size_t need = size + 64;  /* the region's header first */
        size_t region = need > TIDE_META_REGION ? (need + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1)
                                                : TIDE_META_REGION;
        char *r = tidei_os_map(region);
        if (!r)
            return NULL;
        tidei_meta_region_t *hd = (tidei_meta_region_t *)r;
        hd->next = a->meta_regions;
        hd->size = region;
        a->meta_regions = hd;
        a->meta_bytes += region;
        a->meta_cur = (uintptr_t)r + 64;
        a->meta_end = (uintptr_t)r + region;
    }
    void *p = (void *)a->meta_cur;
    a->meta_cur += size;
    return p;
}

/* A zeroed span descriptor, or NULL. */
tide_span_t *tidei_meta_span_new(void)
{
    tide_arena_t *a = &tidei_arena;
    tide_span_t *s = a->span_pool;
    if (s) {
        a->span_pool = s->next;
        memset(s, 0, sizeof *s);
        return s;
    }
    s = tidei_meta_alloc(sizeof(tide_span_t));
    /* A descriptor's address is the free key of its blocks, whose low half
     * the free fast path compares (tidei_key_hint): never 0, which every
     * live block holds there.  (One descriptor per 4 GiB of metadata
     * address space is left unused.) */
    if (s && (uint32_t)(uintptr_t)s == 0)
        s = tidei_meta_alloc(sizeof(tide_span_t));
    return s;
}

/* Puts descriptor s back in the pool. */
void tidei_meta_span_delete(tide_span_t *s)
{
    tide_arena_t *a = &tidei_arena;
    s->kind = TIDE_SPAN_FREE;
    s->n_pages = 0;
    atomic_store_explicit(&s->heap, NULL, relaxed);
    s->next = a->span_pool;
    a->span_pool = s;
}
