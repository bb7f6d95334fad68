/* chunk.c — the page allocator: chunks of address space, page runs cut from
 * them for spans and large blocks (through the free-range index of large.c),
 * and huge blocks mapped on their own.
 *
 * Lock order: tidei_backup_lock -> tidei_heaps_lock -> tidei_arena.lock.
 * Nothing is called with the arena lock held that takes another tide lock;
 * the fork handlers (init.c) take all three in this order.
 *
 * Free runs: a free run is described by a FREE span descriptor that its
 * first and last pages map to (pagemap.c); it is always in the index, and
 * neighbouring free runs in the same chunk are merged when a run is freed.
 * A chunk that becomes one whole free run is unmapped once more than
 * TIDE_CONF chunk_cache of them are kept. */
#include "tide_internal.h"

tide_arena_t tidei_arena = { .lock = PTHREAD_MUTEX_INITIALIZER };

#define PAGES_BYTES(n) ((size_t)(n) << TIDE_PAGE_SHIFT)

/* Makes a FREE descriptor for [start, start + n pages) of chunk c, maps its
 * first and last pages to it and indexes it.  NULL if metadata ran out (the
 * pages are then unreachable until the chunk is unmapped: only under OOM). */
static tide_span_t *free_run_make(tide_chunk_t *c, uintptr_t start, size_t n, bool is_zero, uint64_t dirty_ms)
{
    tide_span_t *r = tidei_span_new();
    if (!r)
        return NULL;
    r->kind = TIDE_SPAN_FREE;
    r->start = start;
    r->n_pages = n;
    r->chunk = c;
    r->is_zero = is_zero;
    r->dirty_ms = is_zero ? 0 : dirty_ms;
    tidei_pagemap_set_one(start, r);
    tidei_pagemap_set_one(start + PAGES_BYTES(n - 1), r);
    tidei_index_insert(r);
    return r;
}

static bool release_caches_locked(void);
static bool release_caches(void);

/* Gives the pages of free run r back to the OS now (TIDE_CONF purge:
 * MADV_DONTNEED, after which they read as zero, or MADV_FREE).  Arena lock
 * held.  True if they went back. */
static bool purge_run_locked(tide_span_t *r)
{
    if (!r->dirty_ms)
        return false;
    bool dontneed = tidei_opt.purge == 0;
    if (!tidei_os_purge((void *)r->start, PAGES_BYTES(r->n_pages), dontneed))
        return false;
    r->dirty_ms = 0;
    if (dontneed && !r->is_zero) {
        r->is_zero = true;
        tidei_arena.zero_free_pages += r->n_pages;
    }
    return true;
}

/* Maps a new chunk and indexes it as one free run.  Arena lock held. */
static bool chunk_grow(void)
{
    tide_arena_t *a = &tidei_arena;
    void *base = tidei_os_map_aligned(TIDE_CHUNK_SIZE, (size_t)2 << 20);
    if (!base && release_caches_locked())
        base = tidei_os_map_aligned(TIDE_CHUNK_SIZE, (size_t)2 << 20);
    if (!base)
        return false;
    tide_chunk_t *c = tidei_meta_alloc(sizeof *c);
    if (!c || !tidei_pagemap_ensure((uintptr_t)base, TIDE_CHUNK_PAGES))
        goto fail;
    c->base = (uintptr_t)base;
    if (!free_run_make(c, c->base, TIDE_CHUNK_PAGES, true, 0))
        goto fail;
    c->n_free_pages = TIDE_CHUNK_PAGES;
    c->next = a->chunks;
    if (c->next)
        c->next->prev = c;
    c->prev = NULL;
    a->chunks = c;
    a->n_chunks++;
    a->n_empty_chunks++;
    return true;
fail:
    tidei_os_unmap(base, TIDE_CHUNK_SIZE);
    return false;  /* c, if any, is a few bytes of metadata, not reused */
}

/* Unmaps chunk c, which is the single free run r.  Arena lock held. */
static void chunk_release(tide_chunk_t *c, tide_span_t *r)
{
    tide_arena_t *a = &tidei_arena;
    tidei_index_remove(r);
    tidei_pagemap_set_one(r->start, NULL);
    tidei_pagemap_set_one(r->start + PAGES_BYTES(r->n_pages - 1), NULL);
    tidei_span_delete(r);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->chunks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_chunks--;
    a->n_empty_chunks--;
    tidei_os_unmap((void *)c->base, TIDE_CHUNK_SIZE);
    /* The descriptor is metadata; it is not reused (chunks come and go rarely). */
}

/* Cuts n_pages (aligned to align_pages pages, a power of two, 0 or 1 for
 * none) out of free run r; returns r, now of the given kind and describing
 * the cut run with every page mapped to it.  The kind must be set here,
 * under the lock: a neighbour being freed must never see it as FREE.  Arena
 * lock held. */
static tide_span_t *run_carve(tide_span_t *r, size_t n_pages, size_t align_pages, tide_span_kind_t kind)
{
    tide_chunk_t *c = r->chunk;
    tidei_index_remove(r);
    if (r->n_pages == TIDE_CHUNK_PAGES)
        tidei_arena.n_empty_chunks--;
    uintptr_t start = r->start;
    size_t head = 0;
    if (align_pages > 1) {
        uintptr_t align = PAGES_BYTES(align_pages);
        head = (((start + align - 1) & ~(align - 1)) - start) >> TIDE_PAGE_SHIFT;
    }
    size_t tail = r->n_pages - head - n_pages;
    /* Leftovers become free runs of their own.  If metadata runs out, the
     * alignment padding cannot be cut off (the run would start unaligned):
     * the run goes back and the caller gets NULL.  A tail stays part of the
     * cut run (wasted, but never lost). */
    if (head && !free_run_make(c, start, head, r->is_zero, r->dirty_ms)) {
        if (r->n_pages == TIDE_CHUNK_PAGES)
            tidei_arena.n_empty_chunks++;
        tidei_index_insert(r);
        return NULL;
    }
    if (tail && !free_run_make(c, start + PAGES_BYTES(head + n_pages), tail, r->is_zero, r->dirty_ms)) {
        n_pages += tail;
        tail = 0;
    }
    r->kind = (uint8_t)kind;
    r->start = start + PAGES_BYTES(head);
    r->n_pages = n_pages;
    tidei_pagemap_set(r->start, n_pages, r);
    c->n_free_pages -= n_pages;
    if (kind == TIDE_SPAN_LARGE) {
        tidei_arena.n_large++;
        tidei_arena.n_large_malloc++;
        tidei_arena.large_pages += n_pages;
    }
    return r;
}

/* Allocates a run of n_pages pages, aligned to align_pages pages, for a span
 * of the given kind (SMALL or LARGE).  Returns its descriptor (is_zero says
 * whether the pages are known to be zero), or NULL when the OS refuses memory.  With
 * sweep, abandoned spans are swept for free pages before a chunk is mapped.
 * Takes the arena lock; the caller must not hold it or tidei_heaps_lock when
 * sweep is true. */
tide_span_t *tidei_run_alloc(size_t n_pages, size_t align_pages, tide_span_kind_t kind, bool sweep)
{
    tide_arena_t *a = &tidei_arena;
    size_t need = n_pages + (align_pages > 1 ? align_pages - 1 : 0);
    if (need > TIDE_CHUNK_PAGES)
        return NULL;
    if (tidei_debug >= 2)
        tidei_arena_validate();
    pthread_mutex_lock(&a->lock);
    tide_span_t *r = tidei_index_find(need);
    if (!r && sweep) {
        pthread_mutex_unlock(&a->lock);
        tidei_abandoned_sweep();
        pthread_mutex_lock(&a->lock);
        r = tidei_index_find(need);
    }
    if (!r) {
        if (!chunk_grow()) {
            pthread_mutex_unlock(&a->lock);
            return NULL;
        }
        r = tidei_index_find(need);
    }
    r = run_carve(r, n_pages, align_pages, kind);
    pthread_mutex_unlock(&a->lock);
    return r;
}

/* Frees the run of span s (SMALL or LARGE; every page maps to s), merging it
 * with free neighbours.  Takes the arena lock. */
void tidei_run_free(tide_span_t *s)
{
    tide_arena_t *a = &tidei_arena;
    pthread_mutex_lock(&a->lock);
    tide_chunk_t *c = s->chunk;
    uintptr_t start = s->start;
    size_t n = s->n_pages;
    c->n_free_pages += n;
    if (s->kind == TIDE_SPAN_LARGE) {
        a->n_large--;
        a->large_pages -= n;
    }
    tidei_pagemap_set(start, n, NULL);
    /* With decay_ms=0 the freed pages are purged now: these pages only, not
     * the neighbours they merge with (those keep their own time).  Pages an
     * idle heap gives back (tidei_purge_now) are due at once: the scavenger
     * purges them, merged, in its next round. */
    bool is_zero = false;
    uint64_t dirty = tidei_now_ms();
    if (tidei_decay() == 0 && tidei_os_purge((void *)start, PAGES_BYTES(n), tidei_opt.purge == 0)) {
        is_zero = tidei_opt.purge == 0;
        dirty = 0;
    }
    tide_span_t *left = start > c->base ? tidei_pagemap_lookup((void *)(start - TIDE_PAGE_SIZE)) : NULL;
    if (left && left->kind == TIDE_SPAN_FREE && left->chunk == c) {
        is_zero &= left->is_zero;
        dirty = dirty > left->dirty_ms ? dirty : left->dirty_ms;
        tidei_index_remove(left);
        tidei_pagemap_set_one(start - TIDE_PAGE_SIZE, NULL);
        start = left->start;
        n += left->n_pages;
        tidei_span_delete(left);
    }
    uintptr_t end = start + PAGES_BYTES(n);
    tide_span_t *right = end < c->base + TIDE_CHUNK_SIZE ? tidei_pagemap_lookup((void *)end) : NULL;
    if (right && right->kind == TIDE_SPAN_FREE && right->chunk == c) {
        is_zero &= right->is_zero;
        dirty = dirty > right->dirty_ms ? dirty : right->dirty_ms;
        tidei_index_remove(right);
        tidei_pagemap_set_one(end, NULL);
        n += right->n_pages;
        tidei_span_delete(right);
    }
    atomic_store_explicit(&s->heap, NULL, relaxed);
    s->kind = TIDE_SPAN_FREE;
    s->start = start;
    s->n_pages = n;
    s->is_zero = is_zero;
    s->dirty_ms = is_zero ? 0 : tidei_purge_now ? 1 : dirty;
    s->next = s->prev = NULL;
    tidei_pagemap_set_one(start, s);
    tidei_pagemap_set_one(start + PAGES_BYTES(n - 1), s);
    tidei_index_insert(s);
    bool released = false;
    if (n == TIDE_CHUNK_PAGES) {
        a->n_empty_chunks++;
        if (a->n_empty_chunks > (size_t)tidei_opt.chunk_cache) {
            chunk_release(c, s);
            released = true;
        }
    }
    if (!released && s->dirty_ms)
        tidei_scav_wanted();
    pthread_mutex_unlock(&a->lock);
    if (tidei_debug >= 2)
        tidei_arena_validate();
}

/* Grows LARGE span s in place to new_pages if the run after it is free and
 * long enough.  Takes the arena lock.  True on success. */
bool tidei_run_grow(tide_span_t *s, size_t new_pages)
{
    tide_arena_t *a = &tidei_arena;
    size_t extra = new_pages - s->n_pages;
    tide_chunk_t *c = s->chunk;
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    uintptr_t end = s->start + PAGES_BYTES(s->n_pages);
    tide_span_t *right = end < c->base + TIDE_CHUNK_SIZE ? tidei_pagemap_lookup((void *)end) : NULL;
    if (right && right->kind == TIDE_SPAN_FREE && right->chunk == c && right->n_pages >= extra) {
        tidei_index_remove(right);
        if (right->n_pages == TIDE_CHUNK_PAGES)
            a->n_empty_chunks--;
        if (right->n_pages > extra) {
            right->start += PAGES_BYTES(extra);
            right->n_pages -= extra;
            tidei_pagemap_set_one(right->start, right);
            tidei_index_insert(right);
        } else {
            tidei_span_delete(right);
        }
        tidei_pagemap_set(end, extra, s);
        s->n_pages = new_pages;
        c->n_free_pages -= extra;
        a->large_pages += extra;
        ok = true;
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* Shrinks LARGE span s to new_pages (< s->n_pages), freeing the tail.  If
 * metadata runs out the block just keeps its pages. */
void tidei_run_shrink(tide_span_t *s, size_t new_pages)
{
    tide_arena_t *a = &tidei_arena;
    pthread_mutex_lock(&a->lock);
    tide_span_t *t = tidei_span_new();
    if (t) {
        t->kind = TIDE_SPAN_LARGE;
        t->chunk = s->chunk;
        t->start = s->start + PAGES_BYTES(new_pages);
        t->n_pages = s->n_pages - new_pages;
        tidei_pagemap_set(t->start, t->n_pages, t);
        s->n_pages = new_pages;
        a->n_large++;  /* the tail counts as a block until tidei_run_free */
    }
    pthread_mutex_unlock(&a->lock);
    if (t)
        tidei_run_free(t);  /* counts its pages free and merges them */
}

/* A large block of n bytes (TIDE_SMALL_MAX < n, pages + alignment within a
 * chunk), aligned to align (0 = page).  NULL with errno = ENOMEM on failure. */
void *tidei_large_alloc(size_t n, size_t align, bool zero)
{
    size_t pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    size_t align_pages = align > TIDE_PAGE_SIZE ? align >> TIDE_PAGE_SHIFT : 0;
    tide_span_t *s = tidei_run_alloc(pages, align_pages, TIDE_SPAN_LARGE, true);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = (void *)s->start;
    if (zero && !s->is_zero)
        memset(p, 0, n);
    return p;
}

void tidei_large_free(tide_span_t *s)
{
    tidei_run_free(s);
}

/* ---- huge blocks: one mapping each, a small cache of freed ones ---- */

/* Takes a cached mapping of at least size bytes (and at most 25 % more)
 * aligned to align, or NULL.  Arena lock held. */
static void huge_cache_unlink(tide_span_t *s)
{
    tide_arena_t *a = &tidei_arena;
    if (s->prev)
        s->prev->next = s->next;
    else
        a->huge_cache = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    a->huge_cache_bytes -= PAGES_BYTES(s->n_pages);
    a->n_huge_cache--;
}

/* A cached mapping for a huge block of size bytes aligned to align, or NULL.
 * Takes the smallest that is big enough if it is at most 12.5 % bigger (the
 * size-class waste bound); else, if align is a page, the biggest smaller
 * one, which the caller grows with mremap (its pages are resident already:
 * only the difference is faulted in); else a bigger one, whose tail the
 * caller gives back.  Arena lock held. */
static tide_span_t *huge_cache_take(size_t size, size_t align)
{
    tide_arena_t *a = &tidei_arena;
    tide_span_t *best = NULL, *below = NULL;
    for (tide_span_t *s = a->huge_cache; s; s = s->next) {
        size_t have = PAGES_BYTES(s->n_pages);
        if ((s->start & (align - 1)) != 0)
            continue;
        if (have >= size) {
            if (!best || have < PAGES_BYTES(best->n_pages))
                best = s;
        } else if (!below || have > PAGES_BYTES(below->n_pages)) {
            below = s;
        }
    }
    if (below && align <= TIDE_PAGE_SIZE && (!best || PAGES_BYTES(best->n_pages) - size > size / 8))
        best = below;
    if (best)
        huge_cache_unlink(best);
    return best;
}

/* Fits the cached mapping s (from huge_cache_take) to size bytes: gives
 * back the tail of a bigger one beyond 12.5 %, or grows a smaller one in
 * place or by moving it.
 * False if it cannot grow (s is then unmapped and deleted).  No lock held. */
static bool huge_cache_fit(tide_span_t *s, size_t size)
{
    size_t have = PAGES_BYTES(s->n_pages);
    if (have >= size) {
        if (have - size > size / 8) {
            tidei_os_unmap((void *)(s->start + size), have - size);
            s->n_pages = size >> TIDE_PAGE_SHIFT;
        }
        return true;
    }
    void *q = tidei_os_remap((void *)s->start, have, size, true);
    if (!q) {
        tidei_os_unmap((void *)s->start, have);
        pthread_mutex_lock(&tidei_arena.lock);
        tidei_span_delete(s);
        pthread_mutex_unlock(&tidei_arena.lock);
        return false;
    }
    s->start = (uintptr_t)q;
    s->n_pages = size >> TIDE_PAGE_SHIFT;
    return true;
}

void *tidei_huge_alloc(size_t n, size_t align, bool zero)
{
    tide_arena_t *a = &tidei_arena;
    if (align < TIDE_PAGE_SIZE)
        align = TIDE_PAGE_SIZE;
    size_t size = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (size < n || size > PTRDIFF_MAX)
        goto oom;
    pthread_mutex_lock(&a->lock);
    tide_span_t *s = huge_cache_take(size, align);
    pthread_mutex_unlock(&a->lock);
    bool fresh = false;
    if (!s || !huge_cache_fit(s, size)) {
        void *p = tidei_os_map_aligned(size, align);
        if (!p && release_caches())
            p = tidei_os_map_aligned(size, align);
        if (!p)
            goto oom;
        pthread_mutex_lock(&a->lock);
        s = tidei_span_new();
        pthread_mutex_unlock(&a->lock);
        if (!s) {
            tidei_os_unmap(p, size);
            goto oom;
        }
        s->start = (uintptr_t)p;
        s->n_pages = size >> TIDE_PAGE_SHIFT;
        fresh = true;
    }
    pthread_mutex_lock(&a->lock);
    if (!tidei_pagemap_ensure(s->start, s->n_pages)) {
        void *p = (void *)s->start;
        size_t bytes = PAGES_BYTES(s->n_pages);
        tidei_span_delete(s);
        pthread_mutex_unlock(&a->lock);
        tidei_os_unmap(p, bytes);
        goto oom;
    }
    s->kind = TIDE_SPAN_HUGE;
    s->is_zero = fresh;
    tidei_pagemap_set(s->start, s->n_pages, s);
    a->huge_bytes += PAGES_BYTES(s->n_pages);
    a->n_huge++;
    a->n_huge_malloc++;
    s->prev = NULL;
    s->next = a->huge_live;
    if (s->next)
        s->next->prev = s;
    a->huge_live = s;
    pthread_mutex_unlock(&a->lock);
    if (zero && !fresh)
        memset((void *)s->start, 0, n);
    return (void *)s->start;
oom:
    errno = ENOMEM;
    return NULL;
}

void tidei_huge_free(tide_span_t *s)
{
    tide_arena_t *a = &tidei_arena;
    size_t size = PAGES_BYTES(s->n_pages);
    size_t limit = (size_t)tidei_opt.huge_cache_mb << 20;
    pthread_mutex_lock(&a->lock);
    tidei_pagemap_set(s->start, s->n_pages, NULL);
    a->huge_bytes -= size;
    a->n_huge--;
    if (s->prev)
        s->prev->next = s->next;
    else
        a->huge_live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    /* Make room by unmapping the oldest entries (the list's tail). */
    if (size <= limit) {
        while (a->huge_cache && (a->huge_cache_bytes + size > limit || a->n_huge_cache >= 16)) {
            tide_span_t *old = a->huge_cache;
            while (old->next)
                old = old->next;
            huge_cache_unlink(old);
            tidei_os_unmap((void *)old->start, PAGES_BYTES(old->n_pages));
            tidei_span_delete(old);
        }
    }
    if (a->huge_cache_bytes + size <= limit && a->n_huge_cache < 16 && tidei_decay() != 0) {
        s->kind = TIDE_SPAN_FREE;
        s->dirty_ms = tidei_now_ms();
        tidei_scav_wanted();
        s->prev = NULL;
        s->next = a->huge_cache;
        if (s->next)
            s->next->prev = s;
        a->huge_cache = s;
        a->huge_cache_bytes += size;
        a->n_huge_cache++;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    void *p = (void *)s->start;
    tidei_span_delete(s);
    pthread_mutex_unlock(&a->lock);
    tidei_os_unmap(p, size);
}

/* Resizes huge block s to n bytes (n > TIDE_LARGE_MAX) without copying:
 * shrinks or grows the mapping in place, or moves its pages to a new
 * mapping with mremap.  Returns the block, or NULL (s untouched). */
void *tidei_huge_realloc(tide_span_t *s, size_t n)
{
    tide_arena_t *a = &tidei_arena;
    size_t old = PAGES_BYTES(s->n_pages);
    size_t size = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (size < n || size > PTRDIFF_MAX)
        return NULL;
    if (size == old)
        return (void *)s->start;
    /* Address space given back is cleared from the page map under the
     * arena lock, in the same critical section: another thread may map the
     * range as soon as it is free, and registers it under that lock. */
    if (size < old) {
        pthread_mutex_lock(&a->lock);
        if (!tidei_os_remap((void *)s->start, old, size, false)) {
            pthread_mutex_unlock(&a->lock);
            return (void *)s->start;  /* keep the bigger mapping */
        }
        tidei_pagemap_set(s->start + size, (old - size) >> TIDE_PAGE_SHIFT, NULL);
        s->n_pages = size >> TIDE_PAGE_SHIFT;
        a->huge_bytes -= old - size;
        pthread_mutex_unlock(&a->lock);
        return (void *)s->start;
    }
    /* Grow in place if the address space after it is free. */
    pthread_mutex_lock(&a->lock);
    bool have_map = tidei_pagemap_ensure(s->start, size >> TIDE_PAGE_SHIFT);
    pthread_mutex_unlock(&a->lock);
    if (have_map && tidei_os_remap((void *)s->start, old, size, false)) {
        pthread_mutex_lock(&a->lock);
        tidei_pagemap_set(s->start + old, (size - old) >> TIDE_PAGE_SHIFT, s);
        s->n_pages = size >> TIDE_PAGE_SHIFT;
        a->huge_bytes += size - old;
        pthread_mutex_unlock(&a->lock);
        return (void *)s->start;
    }
    /* Move: map the destination first (so the page map can cover it before
     * anything moves), then move the pages onto it. */
    void *dest = tidei_os_map(size);
    if (!dest && release_caches())
        dest = tidei_os_map(size);
    if (!dest)
        return NULL;
    pthread_mutex_lock(&a->lock);
    if (!tidei_pagemap_ensure((uintptr_t)dest, size >> TIDE_PAGE_SHIFT)) {
        pthread_mutex_unlock(&a->lock);
        tidei_os_unmap(dest, size);
        return NULL;
    }
    if (!tidei_os_remap_fixed((void *)s->start, old, size, dest)) {
        pthread_mutex_unlock(&a->lock);
        tidei_os_unmap(dest, size);
        return NULL;
    }
    tidei_pagemap_set(s->start, s->n_pages, NULL);
    s->start = (uintptr_t)dest;
    s->n_pages = size >> TIDE_PAGE_SHIFT;
    tidei_pagemap_set(s->start, s->n_pages, s);
    a->huge_bytes += size - old;
    pthread_mutex_unlock(&a->lock);
    return dest;
}

/* Unmaps the cached huge mappings and the fully free chunks.  True if there
 * were any.  Arena lock held. */
static bool release_caches_locked(void)
{
    tide_arena_t *a = &tidei_arena;
    bool released = false;
    while (a->huge_cache) {
        tide_span_t *s = a->huge_cache;
        a->huge_cache = s->next;
        tidei_os_unmap((void *)s->start, PAGES_BYTES(s->n_pages));
        tidei_span_delete(s);
        released = true;
    }
    a->huge_cache_bytes = 0;
    a->n_huge_cache = 0;
    for (tide_chunk_t *c = a->chunks, *next; c; c = next) {
        next = c->next;
        tide_span_t *r = tidei_pagemap_lookup((void *)c->base);
        if (r && r->kind == TIDE_SPAN_FREE && r->n_pages == TIDE_CHUNK_PAGES) {
            chunk_release(c, r);
            released = true;
        }
    }
    return released;
}

/* After the OS refused a mapping: gives back the cached address space, so
 * that a retry can succeed.  True if anything went back.  Takes the arena
 * lock. */
static bool release_caches(void)
{
    pthread_mutex_lock(&tidei_arena.lock);
    bool released = release_caches_locked();
    pthread_mutex_unlock(&tidei_arena.lock);
    return released;
}

/* Gives back every free page: unmaps fully free chunks and cached huge
 * mappings, decommits the other free runs.  True if anything went back.
 * Takes the arena lock. */
bool tidei_arena_trim(void)
{
    tide_arena_t *a = &tidei_arena;
    pthread_mutex_lock(&a->lock);
    bool released = release_caches_locked();
    for (size_t n = 1; n <= TIDE_CHUNK_PAGES; n++) {
        for (tide_span_t *r = a->bins[n]; r; r = r->next) {
            if (!r->is_zero && tidei_os_decommit((void *)r->start, PAGES_BYTES(r->n_pages))) {
                r->is_zero = true;
                r->dirty_ms = 0;
                a->zero_free_pages += r->n_pages;
                released = true;
            }
        }
    }
    pthread_mutex_unlock(&a->lock);
    return released;
}

/* The run of chunk c after prev (the first with prev NULL), or NULL at the
 * end: every run's first page maps to its descriptor.  Arena lock held. */
tide_span_t *tidei_chunk_next_run(const tide_chunk_t *c, const tide_span_t *prev)
{
    uintptr_t p = prev ? prev->start + PAGES_BYTES(prev->n_pages) : c->base;
    return p < c->base + TIDE_CHUNK_SIZE ? tidei_pagemap_lookup((void *)p) : NULL;
}

/* Bytes purged per hold of the arena lock: the scavenger lets allocating
 * threads in between batches. */
#define PURGE_BATCH ((size_t)8 << 20)

/* The scavenger's work on the arena: purges the free runs that have been
 * free for at least decay ms and unmaps the cached huge mappings as old, in
 * batches.  Sets *next_ms to the time the next one falls due (UINT64_MAX if
 * none is dirty).  True if anything went back to the OS.  Takes the arena
 * lock. */
bool tidei_arena_purge(uint64_t now, uint64_t decay, uint64_t *next_ms)
{
    tide_arena_t *a = &tidei_arena;
    bool released = false, again = true;
    while (again) {
        again = false;
        uint64_t next = UINT64_MAX;
        size_t done = 0;
        pthread_mutex_lock(&a->lock);
        for (tide_span_t *s = a->huge_cache, *nx; s; s = nx) {
            nx = s->next;
            if (now - s->dirty_ms >= decay) {
                huge_cache_unlink(s);
                tidei_os_unmap((void *)s->start, PAGES_BYTES(s->n_pages));
                tidei_span_delete(s);
                released = true;
            } else if (s->dirty_ms + decay < next) {
                next = s->dirty_ms + decay;
            }
        }
        for (size_t w = 0; w <= TIDE_CHUNK_PAGES / 64 && !again; w++) {
            for (uint64_t bits = a->bitmap[w]; bits && !again; bits &= bits - 1) {
                size_t n = w * 64 + (size_t)__builtin_ctzll(bits);
                for (tide_span_t *r = a->bins[n]; r; r = r->next) {
                    if (!r->dirty_ms)
                        continue;
                    if (now - r->dirty_ms < decay) {
                        if (r->dirty_ms + decay < next)
                            next = r->dirty_ms + decay;
                        continue;
                    }
                    if (purge_run_locked(r)) {
                        released = true;
                        done += PAGES_BYTES(r->n_pages);
                    }
                    if (done >= PURGE_BATCH) {
                        again = true;  /* rescan after letting others in */
                        break;
                    }
                }
            }
        }
        pthread_mutex_unlock(&a->lock);
        *next_ms = next;
    }
    return released;
}
