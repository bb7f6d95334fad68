/* meta.c — out-of-band metadata: span descriptors, chunk descriptors and
 * heaps are carved from their own mappings, never from the pages they
 * describe, so an overflow from a user block cannot reach them.  tide never
 * calls the system malloc.  All functions here need the arena lock. */
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

/* Unmaps scratch memory (a record, a table): not heap memory, so not
 * counted as returned to the OS. */
void tidei_scratch_unmap(void *p, size_t size)
{
    tidei_os_unmap(p, size);
    atomic_fetch_sub_explicit(&tidei_global_ctr.returned, size, relaxed);
}

/* Room for one more element at the end of s (doubling its mapping when
 * full), or NULL when the OS refused memory (then s->failed is set). */
void *tidei_scratch_push(tidei_scratch_t *s)
{
    if (s->failed)
        return NULL;
    if (s->n == s->cap) {
        size_t old = s->cap * s->elem;
        size_t bytes = old ? old * 2 : (size_t)64 << 10;
        void *p = old ? tidei_os_remap(s->p, old, bytes, true) : tidei_os_map(bytes);
        if (!p) {
            s->failed = true;
            return NULL;
        }
        s->p = p;
        s->cap = bytes / s->elem;
    }
    return (char *)s->p + s->elem * s->n++;
}

void tidei_scratch_free(tidei_scratch_t *s)
{
    if (s->p)
        tidei_scratch_unmap(s->p, s->cap * s->elem);
    s->p = NULL;
    s->n = s->cap = 0;
}

/* A zeroed span descriptor, or NULL. */
tide_span_t *tidei_span_new(void)
{
    tide_arena_t *a = &tidei_arena;
    tide_span_t *s = a->span_pool;
    if (s) {
        a->span_pool = s->next;
        memset(s, 0, sizeof *s);
        return s;
    }
    return tidei_meta_alloc(sizeof(tide_span_t));
}

void tidei_span_delete(tide_span_t *s)
{
    tide_arena_t *a = &tidei_arena;
    s->kind = TIDE_SPAN_FREE;
    s->n_pages = 0;
    atomic_store_explicit(&s->heap, NULL, relaxed);
    s->next = a->span_pool;
    a->span_pool = s;
}
