/* chunk.c — the page allocator: chunks of address space, and page runs cut
 * from them for spans and large blocks (through the free-range index of
 * large.c).  Huge blocks, mapped on their own, are in huge.c.
 *
 * Lock order: tidei_backup_lock -> tidei_heaps_lock -> tidei_arena.lock.
 * Nothing is called with the arena lock held that takes another tide lock;
 * the fork handlers (init.c) take all three in this order.
 *
 * Free runs: a free run is described by a FREE span descriptor that its
 * first and last pages map to (pagemap.c); it is always in the index, and
 * neighbouring free runs in the same chunk are merged when a run is freed.
 * Free runs stay mapped, their pages resident, until they have been free
 * for decay_ms: then the scavenger purges them, and unmaps a chunk that is
 * one whole free run if more than TIDE_CONF chunk_cache of them are kept
 * (tidei_arena_purge).  decay_ms=0 does both at free. */
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
    void *base = tidei_flat_chunk_map();  /* in the flat map's range if it can */
    if (!base)
        base = tidei_os_map_aligned(TIDE_CHUNK_SIZE, (size_t)2 << 20);
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
    tide_list_push(a->chunks, c, next, prev);
    a->n_chunks++;
    a->n_empty_chunks++;
    return true;
fail:
    tidei_os_unmap(base, TIDE_CHUNK_SIZE);
    tidei_flat_chunk_unmapped((uintptr_t)base);
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
    tide_list_remove(a->chunks, c, next, prev);
    a->n_chunks--;
    a->n_empty_chunks--;
    tidei_os_unmap((void *)c->base, TIDE_CHUNK_SIZE);
    tidei_flat_chunk_unmapped(c->base);
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
    /* A chunk left empty stays mapped: the scavenger unmaps it (beyond
     * chunk_cache) once it has been free for the decay delay, so a program
     * that frees and allocates large blocks at a steady rate does not map
     * and fault in chunks again and again.  With decay_ms=0, at once. */
    bool released = false;
    if (n == TIDE_CHUNK_PAGES) {
        a->n_empty_chunks++;
        if (tidei_decay() == 0 && a->n_empty_chunks > (size_t)tidei_opt.chunk_cache) {
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
    else if (!s->is_zero)
        tidei_clear_key_word(p);
    return p;
}

void tidei_large_free(tide_span_t *s)
{
    tidei_run_free(s);
}

/* Unmaps the cached huge mappings and the fully free chunks.  True if there
 * were any.  Arena lock held. */
static bool release_caches_locked(void)
{
    tide_arena_t *a = &tidei_arena;
    bool released = tidei_huge_release_locked();
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
bool tidei_arena_release_caches(void)
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
 * free for at least decay ms, unmapping fully free chunks among them beyond
 * chunk_cache, in batches; then the huge cache (tidei_huge_purge).  Sets
 * *next_ms to the time the next one falls due (UINT64_MAX if none is dirty).
 * True if anything went back to the OS.  Takes the arena lock. */
bool tidei_arena_purge(uint64_t now, uint64_t decay, uint64_t *next_ms)
{
    tide_arena_t *a = &tidei_arena;
    bool released = false, again = true;
    uint64_t next = UINT64_MAX;
    while (again) {
        again = false;
        next = UINT64_MAX;
        size_t done = 0;
        pthread_mutex_lock(&a->lock);
        for (size_t w = 0; w <= TIDE_CHUNK_PAGES / 64 && !again; w++) {
            for (uint64_t bits = a->bitmap[w]; bits && !again; bits &= bits - 1) {
                size_t n = w * 64 + (size_t)__builtin_ctzll(bits);
                for (tide_span_t *r = a->bins[n], *nx; r; r = nx) {
                    nx = r->next;
                    bool empty_chunk = n == TIDE_CHUNK_PAGES && a->n_empty_chunks > (size_t)tidei_opt.chunk_cache;
                    if (!r->dirty_ms && !empty_chunk)
                        continue;
                    if (r->dirty_ms && r->dirty_ms + decay > now) {  /* not due (or freed after now was read) */
                        if (r->dirty_ms + decay < next)
                            next = r->dirty_ms + decay;
                        continue;
                    }
                    if (empty_chunk) {
                        chunk_release(r->chunk, r);
                        released = true;
                        done += TIDE_CHUNK_SIZE;
                    } else if (purge_run_locked(r)) {
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
    }
    released |= tidei_huge_purge(now, decay, &next);
    *next_ms = next;
    return released;
}
