/* arena.c — the page allocator: chunks of address space, the page runs cut
 * from them for spans and large blocks, and the free-range index that
 * finds a free run.  Huge blocks, mapped on their own, are in huge.c; span
 * and chunk descriptors come from meta.c.
 *
 * Owns tidei_arena (its chunks, index, counters).  Takes only the arena
 * lock, and calls nothing that takes another tide lock while it holds it;
 * the lock order is tidei_backup_lock -> tidei_heaps_lock ->
 * tidei_arena.lock (heap.c), and the fork handlers (init.c) take all three
 * in that order.  It calls no layer above it: a caller that finds no run
 * (tidei_arena_alloc_run without grow) sweeps the abandoned spans itself
 * and retries (tidei_heap_new_run), and when a free leaves pages to purge
 * the page allocator tells whoever registered for it (tidei_arena_set_on_dirty:
 * the scavenger, wired by init.c), with no lock held.
 *
 * The free-range index: every free page run of every chunk, in bins by
 * exact length (1 .. TIDE_CHUNK_PAGES pages) with a two-level bitmap of the
 * non-empty bins, so that the smallest run that fits is found with two bit
 * scans (best fit; LIFO within a bin, so recently freed, warm runs are
 * reused first).  A free run is in exactly one bin from the moment it
 * exists until it is allocated, merged or unmapped: nothing hides a free
 * run.  A span, whose blocks fit any length, that finds no free run of its
 * length takes the longest one left if it has a quarter of that length
 * (tidei_arena_alloc_run_fit) before the process grows: fewer blocks on
 * pages already touched rather than a new chunk's fresh ones.
 *
 * Free runs: a free run is described by a FREE span descriptor that its
 * first and last pages map to (pagemap.c); it is always in the index, and
 * neighbouring free runs in the same chunk are merged when a run is freed.
 * Free runs stay mapped, their pages resident, until they have been free
 * for decay_ms: then the scavenger purges them, and unmaps a chunk that is
 * one whole free run if more than TIDE_CONF chunk_cache of them are kept
 * (tidei_arena_purge).  decay_ms=0 does both at free.
 *
 * A free run's is_zero says its pages are known to read as zero (never
 * touched since mapped, or purged with MADV_DONTNEED); dirty_ms is the time
 * it was freed (0: nothing to purge; for runs merged into one, the mean of
 * their times weighted by their dirty pages, dirty_age_of), which the purge
 * compares with the decay delay; 1 marks pages due at once (an idle heap's,
 * tidei_heap_reclaim). */
#include "tide_internal.h"

/* ---- the free-range index ---- */

/* Bins: run r is in bins[r->n_pages]; bitmap bit n says bins[n] is not
 * empty, summary bit w says bitmap[w] is not zero. */
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

static void index_insert(tide_span_t *r)
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

static void index_remove(tide_span_t *r)
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
static tide_span_t *index_find(size_t n)
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

/* The smallest free run of at least n pages whose pages were written
 * before (not is_zero: resident, unless purged with MADV_FREE and taken by
 * the kernel), or NULL.  Not removed.  Walks the bins from n up, and in
 * each the runs until one is not zero: long runs are few (a chunk holds
 * at most two that are more than half of it). */
static tide_span_t *index_find_resident(size_t n)
{
    tide_arena_t *a = &tidei_arena;
    for (size_t w = n >> 6; w <= TIDE_CHUNK_PAGES / 64; w++) {
        uint64_t m = a->bitmap[w];
        if (w == n >> 6)
            m &= ~(uint64_t)0 << (n & 63);
        for (; m; m &= m - 1)
            for (tide_span_t *r = a->bins[(w << 6) + (size_t)__builtin_ctzll(m)]; r; r = r->next)
                if (!r->is_zero)
                    return r;
    }
    return NULL;
}

/* The longest free run, or NULL if there is none. */
static tide_span_t *index_longest(void)
{
    tide_arena_t *a = &tidei_arena;
    if (!a->summary)
        return NULL;
    size_t w = 63 - (size_t)__builtin_clzll(a->summary);
    return a->bins[(w << 6) + 63 - (size_t)__builtin_clzll(a->bitmap[w])];
}

/* ---- chunks and page runs ---- */
tide_arena_t tidei_arena = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Told when free pages wait to be purged; NULL: nobody (unit tests).  Set
 * once, in process init, before any page is freed. */
static void (*on_dirty)(void);

void tidei_arena_set_on_dirty(void (*fn)(void))
{
    on_dirty = fn;
}

/* Free pages (a run, huge.c's cache) now wait to be purged.  No lock held. */
void tidei_arena_note_dirty(void)
{
    if (on_dirty)
        on_dirty();
}

/* Makes a FREE descriptor for [start, start + n pages) of chunk c, maps its
 * first and last pages to it and indexes it.  NULL if metadata ran out (the
 * pages are then unreachable until the chunk is unmapped: only under OOM). */
static tide_span_t *free_run_make(tide_chunk_t *c, uintptr_t start, size_t n, bool is_zero, uint64_t dirty_ms)
{
    tide_span_t *r = tidei_meta_span_new();
    if (!r)
        return NULL;
    r->kind = TIDE_SPAN_FREE;
    r->start = start;
    r->n_pages = n;
    r->chunk = c;
    r->is_zero = is_zero;
    r->dirty_ms = is_zero ? 0 : dirty_ms;
    tidei_pagemap_set_one(start, r);
    tidei_pagemap_set_one(start + TIDE_PAGES_BYTES(n - 1), r);
    index_insert(r);
    return r;
}

static bool release_caches_locked(void);

/* The run of chunk c after prev (the first with prev NULL), or NULL at the
 * end: every run's first page maps to its descriptor.  Arena lock held. */
static tide_span_t *chunk_next_run(const tide_chunk_t *c, const tide_span_t *prev)
{
    uintptr_t p = prev ? prev->start + TIDE_PAGES_BYTES(prev->n_pages) : c->base;
    return p < c->base + TIDE_CHUNK_SIZE ? tidei_pagemap_lookup((void *)p) : NULL;
}

/* Gives n pages at start, free in chunk c, back to the OS
 * (tidei_os_purge: MADV_DONTNEED, or MADV_FREE unless dontneed); the one
 * way the arena returns pages of a chunk it keeps.  A chunk that asked for
 * huge pages (chunk_grow) asks no more once some go back: the heap has
 * shrunk, and the kernel's khugepaged would otherwise fill the huge pages
 * the purge split back in with pages the program does not use.  Its free
 * runs that tide never touched (is_zero) go back then too: a huge page
 * faulted in for a neighbour made them resident, and being clean they
 * would never be purged.  Arena lock held.  True if the pages went back. */
static bool pages_back(tide_chunk_t *c, uintptr_t start, size_t n, bool dontneed)
{
    if (!tidei_os_purge((void *)start, TIDE_PAGES_BYTES(n), dontneed))
        return false;
    if (__atomic_load_n(&c->huge, __ATOMIC_RELAXED)) {
        __atomic_store_n(&c->huge, false, __ATOMIC_RELAXED);
        tidei_os_huge_pages((void *)c->base, TIDE_CHUNK_SIZE, false);
        for (tide_span_t *r = chunk_next_run(c, NULL); r; r = chunk_next_run(c, r))
            if (r->kind == TIDE_SPAN_FREE && r->is_zero)
                tidei_os_purge((void *)r->start, TIDE_PAGES_BYTES(r->n_pages), true);
    }
    return true;
}

/* Gives the pages of free run r back to the OS now (TIDE_CONF purge:
 * MADV_DONTNEED, after which they read as zero, or MADV_FREE).  Arena lock
 * held.  True if they went back. */
static bool purge_run_locked(tide_span_t *r)
{
    if (!r->dirty_ms)
        return false;
    bool dontneed = tidei_opt.purge == 0;
    if (!pages_back(r->chunk, r->start, r->n_pages, dontneed))
        return false;
    r->dirty_ms = 0;
    if (dontneed && !r->is_zero) {
        r->is_zero = true;
        tidei_arena.zero_free_pages += r->n_pages;
    }
    return true;
}

/* The free time of a run merged from parts freed at different times: the
 * mean of the parts' times weighted by their dirty pages, so that a long
 * run freed long ago and merged with a few fresh pages still falls due
 * (taking the newest time, a run that keeps getting merged under steady
 * churn would never be purged).  dirty_ms 1 (due at once) stays the
 * oldest of times. */
typedef struct dirty_age {
    uint64_t sum_ms_pages;  /* sum of dirty_ms x pages over the dirty parts */
    size_t pages;           /* dirty pages of the parts */
} dirty_age_t;

static void dirty_age_add(dirty_age_t *age, uint64_t dirty_ms, size_t n)
{
    if (!dirty_ms)
        return;
    age->sum_ms_pages += dirty_ms * n;
    age->pages += n;
}

/* The merged run's dirty_ms: 0 if no part is dirty. */
static uint64_t dirty_age_of(const dirty_age_t *age)
{
    if (!age->pages)
        return 0;
    uint64_t t = age->sum_ms_pages / age->pages;
    return t ? t : 1;
}

/* A LARGE run's pages ask for transparent huge pages while it is a block
 * (from its carving or growth to its shrinking or free), and no more once
 * they are free: small spans carved there later are faulted a page at a
 * time (tidei_os_huge_pages).  Outside the arena lock (a system call). */
static void large_huge_pages(const tide_span_t *s, bool on)
{
    if (!__atomic_load_n(&s->chunk->huge, __ATOMIC_RELAXED))  /* a huge chunk asks throughout, free or not */
        tidei_os_huge_pages((void *)s->start, TIDE_PAGES_BYTES(s->n_pages), on);
}

/* Maps a new chunk and indexes it as one free run.  Arena lock held. */
static bool chunk_map_new(void)
{
    tide_arena_t *a = &tidei_arena;
    void *base = tidei_pagemap_flat_chunk_map();  /* in the flat map's range if it can */
    if (!base)
        base = tidei_os_map_aligned(TIDE_CHUNK_SIZE, TIDE_CHUNK_ALIGN);
    if (!base)
        return false;
    tide_chunk_t *c = tidei_meta_alloc(sizeof *c);
    if (!c || !tidei_pagemap_ensure((uintptr_t)base, TIDE_CHUNK_PAGES))
        goto fail;
    c->base = (uintptr_t)base;
    if (!free_run_make(c, c->base, TIDE_CHUNK_PAGES, true, 0))
        goto fail;
    c->n_free_pages = TIDE_CHUNK_PAGES;
    /* A heap this big touches most of what it maps: a fault and a TLB
     * entry per 2 MiB rather than per 4 KiB (mimalloc asks for its whole
     * arena).  A span or run freed there is purged as anywhere else, which
     * splits the huge page it was part of. */
    long mb = tidei_opt.thp_heap_mb;
    bool huge = tidei_opt.thp && mb > 0 && (size_t)a->n_chunks * (TIDE_CHUNK_SIZE >> 20) >= (size_t)mb;
    __atomic_store_n(&c->huge, huge, __ATOMIC_RELAXED);
    if (huge)
        tidei_os_huge_pages(base, TIDE_CHUNK_SIZE, true);
    tide_list_push(a->chunks, c, next, prev);
    __atomic_store_n(&a->n_chunks, a->n_chunks + 1, __ATOMIC_RELAXED);  /* span.c reads it unlocked */
    a->n_empty_chunks++;
    return true;
fail:
    tidei_os_unmap(base, TIDE_CHUNK_SIZE);
    tidei_pagemap_flat_chunk_unmapped((uintptr_t)base);
    return false;  /* c, if any, is a few bytes of metadata, not reused */
}

/* A new chunk (chunk_map_new), first making way for it in the huge cache,
 * and after a refusal once more with every cache given back: the OS may
 * have refused the chunk itself or what indexes it (a page-map leaf, a
 * descriptor).  Arena lock held. */
static bool chunk_grow(void)
{
    tidei_huge_give_way_locked(TIDE_CHUNK_SIZE);  /* new memory: first the cache's goes */
    return chunk_map_new() || (release_caches_locked() && chunk_map_new());
}

/* Unmaps chunk c, which is the single free run r.  Arena lock held. */
static void chunk_release(tide_chunk_t *c, tide_span_t *r)
{
    tide_arena_t *a = &tidei_arena;
    index_remove(r);
    tidei_pagemap_set_one(r->start, NULL);
    tidei_pagemap_set_one(r->start + TIDE_PAGES_BYTES(r->n_pages - 1), NULL);
    tidei_meta_span_delete(r);
    tide_list_remove(a->chunks, c, next, prev);
    __atomic_store_n(&a->n_chunks, a->n_chunks - 1, __ATOMIC_RELAXED);
    a->n_empty_chunks--;
    tidei_os_unmap((void *)c->base, TIDE_CHUNK_SIZE);
    tidei_pagemap_flat_chunk_unmapped(c->base);
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
    index_remove(r);
    if (r->n_pages == TIDE_CHUNK_PAGES)
        tidei_arena.n_empty_chunks--;
    uintptr_t start = r->start;
    size_t head = 0;
    if (align_pages > 1) {
        uintptr_t align = TIDE_PAGES_BYTES(align_pages);
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
        index_insert(r);
        return NULL;
    }
    if (tail && !free_run_make(c, start + TIDE_PAGES_BYTES(head + n_pages), tail, r->is_zero, r->dirty_ms)) {
        n_pages += tail;
        tail = 0;
    }
    r->kind = (uint8_t)kind;
    r->start = start + TIDE_PAGES_BYTES(head);
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

/* The run tidei_arena_alloc_run and tidei_arena_alloc_run_fit cut:
 * n_pages aligned to align_pages from the smallest free run that holds
 * them (with resident, the smallest whose pages are resident, and nothing
 * else); else, if min_pages < n_pages, the longest free run if it has at
 * least min_pages, cut whole; else, if grow, from a new chunk.  NULL if
 * none of these.  Takes the arena lock. */
static tide_span_t *alloc_run(size_t n_pages, size_t align_pages, size_t min_pages, tide_span_kind_t kind,
                              bool grow, bool resident)
{
    tide_arena_t *a = &tidei_arena;
    size_t need = n_pages + (align_pages > 1 ? align_pages - 1 : 0);
    if (need > TIDE_CHUNK_PAGES)
        return NULL;
    tide_expensive_assert(tidei_arena_validate());
    pthread_mutex_lock(&a->lock);
    tide_span_t *r = resident ? index_find_resident(need) : index_find(need);
    if (!r && min_pages < n_pages) {
        r = index_longest();
        if (r && r->n_pages >= min_pages)
            n_pages = r->n_pages;
        else
            r = NULL;
    }
    if (!r && grow && chunk_grow())
        r = index_find(need);
    if (r)
        r = run_carve(r, n_pages, align_pages, kind);
    pthread_mutex_unlock(&a->lock);
    if (r && kind == TIDE_SPAN_LARGE)
        large_huge_pages(r, true);
    return r;
}

/* Allocates a run of n_pages pages, aligned to align_pages pages, for a span
 * of the given kind (SMALL, LARGE or GC).  Returns its descriptor (is_zero
 * says whether the pages are known to be zero), or NULL: when no free run
 * fits and grow is false (the caller may find free pages elsewhere first,
 * tidei_heap_new_run), or when the OS refuses memory.  Takes the arena lock. */
tide_span_t *tidei_arena_alloc_run(size_t n_pages, size_t align_pages, tide_span_kind_t kind, bool grow)
{
    return alloc_run(n_pages, align_pages, n_pages, kind, grow, false);
}

/* A LARGE run of n_pages pages (at most a chunk's), aligned to align_pages
 * pages, from a free run whose pages are resident, or NULL: for a block
 * above TIDE_LARGE_MAX, which would otherwise be mapped on its own and
 * faulted in page by page while the chunks keep freed pages resident that
 * no other block may fit (bench large: 4 MiB blocks freed into chunks,
 * 8 MiB ones mapped beside them; peak RSS 52.9 -> 42.8 MB, fewer page
 * faults).  Never maps a chunk.  Takes the arena lock. */
tide_span_t *tidei_arena_alloc_run_resident(size_t n_pages, size_t align_pages)
{
    return alloc_run(n_pages, align_pages, n_pages, TIDE_SPAN_LARGE, false, true);
}

/* A run for a span whose blocks fit any length: n_pages pages if a free run
 * that long exists, else the longest free run if it has at least min_pages,
 * cut whole, and only then (grow) a new chunk's.  When the free runs are
 * holes left between spans of other lengths, a shorter span (fewer blocks)
 * on pages already touched costs less than a chunk's fresh pages (bench
 * realloc-step: strings growing through the classes of 16-64 KiB, whose
 * spans are 18 to 64 pages long, mapped a fourth chunk with 1333 pages
 * free in 53 runs, none of the 56 it asked for; docs/benchmarks.md).
 * Takes the arena lock. */
tide_span_t *tidei_arena_alloc_run_fit(size_t n_pages, size_t min_pages, tide_span_kind_t kind, bool grow)
{
    return alloc_run(n_pages, 0, min_pages, kind, grow, false);
}

/* Frees the run of span s (SMALL, LARGE or GC; every page maps to s),
 * merging it with free neighbours.  due_now: the pages are due for the
 * purge at once (an idle heap's, tidei_heap_reclaim) rather than after the
 * decay delay.  Takes the arena lock. */
void tidei_arena_free_run(tide_span_t *s, bool due_now)
{
    tide_arena_t *a = &tidei_arena;
    if (s->kind == TIDE_SPAN_LARGE)
        large_huge_pages(s, false);
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
    /* With decay_ms=0 (or no scavenger: tidei_purge_at_free) the freed
     * pages are purged now: these pages only, not
     * the neighbours they merge with (those keep their own time).  Pages
     * due_now are due at once: the scavenger purges them, merged, in its
     * next round. */
    bool is_zero = false;
    uint64_t now = tidei_os_now_ms();
    dirty_age_t age = { 0, 0 };
    if (tidei_purge_at_free() && pages_back(c, start, n, tidei_opt.purge == 0))
        is_zero = tidei_opt.purge == 0;
    else
        dirty_age_add(&age, now, n);
    tide_span_t *left = start > c->base ? tidei_pagemap_lookup((void *)(start - TIDE_PAGE_SIZE)) : NULL;
    if (left && left->kind == TIDE_SPAN_FREE && left->chunk == c) {
        is_zero &= left->is_zero;
        dirty_age_add(&age, left->dirty_ms, left->n_pages);
        index_remove(left);
        tidei_pagemap_set_one(start - TIDE_PAGE_SIZE, NULL);
        start = left->start;
        n += left->n_pages;
        tidei_meta_span_delete(left);
    }
    uintptr_t end = start + TIDE_PAGES_BYTES(n);
    tide_span_t *right = end < c->base + TIDE_CHUNK_SIZE ? tidei_pagemap_lookup((void *)end) : NULL;
    if (right && right->kind == TIDE_SPAN_FREE && right->chunk == c) {
        is_zero &= right->is_zero;
        dirty_age_add(&age, right->dirty_ms, right->n_pages);
        index_remove(right);
        tidei_pagemap_set_one(end, NULL);
        n += right->n_pages;
        tidei_meta_span_delete(right);
    }
    atomic_store_explicit(&s->heap, NULL, relaxed);
    s->kind = TIDE_SPAN_FREE;
    s->start = start;
    s->n_pages = n;
    s->is_zero = is_zero;
    s->dirty_ms = is_zero ? 0 : due_now ? 1 : dirty_age_of(&age);
    s->next = s->prev = NULL;
    tidei_pagemap_set_one(start, s);
    tidei_pagemap_set_one(start + TIDE_PAGES_BYTES(n - 1), s);
    index_insert(s);
    /* A chunk left empty stays mapped: the scavenger unmaps it (beyond
     * chunk_cache) once it has been free for the decay delay, so a program
     * that frees and allocates large blocks at a steady rate does not map
     * and fault in chunks again and again.  With decay_ms=0, at once. */
    bool released = false;
    if (n == TIDE_CHUNK_PAGES) {
        a->n_empty_chunks++;
        if (tidei_purge_at_free() && a->n_empty_chunks > (size_t)tidei_opt.chunk_cache) {
            chunk_release(c, s);
            released = true;
        }
    }
    bool left_dirty = !released && s->dirty_ms;
    pthread_mutex_unlock(&a->lock);
    if (left_dirty)
        tidei_arena_note_dirty();
    tide_expensive_assert(tidei_arena_validate());
}

/* Grows LARGE span s in place to new_pages if the run after it is free and
 * long enough.  Takes the arena lock.  True on success. */
bool tidei_arena_grow_run(tide_span_t *s, size_t new_pages)
{
    tide_arena_t *a = &tidei_arena;
    size_t extra = new_pages - s->n_pages;
    tide_chunk_t *c = s->chunk;
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    uintptr_t end = s->start + TIDE_PAGES_BYTES(s->n_pages);
    tide_span_t *right = end < c->base + TIDE_CHUNK_SIZE ? tidei_pagemap_lookup((void *)end) : NULL;
    if (right && right->kind == TIDE_SPAN_FREE && right->chunk == c && right->n_pages >= extra) {
        index_remove(right);
        if (right->n_pages == TIDE_CHUNK_PAGES)
            a->n_empty_chunks--;
        if (right->n_pages > extra) {
            right->start += TIDE_PAGES_BYTES(extra);
            right->n_pages -= extra;
            tidei_pagemap_set_one(right->start, right);
            index_insert(right);
        } else {
            tidei_meta_span_delete(right);
        }
        tidei_pagemap_set(end, extra, s);
        s->n_pages = new_pages;
        c->n_free_pages -= extra;
        a->large_pages += extra;
        ok = true;
    }
    pthread_mutex_unlock(&a->lock);
    if (ok)
        large_huge_pages(s, true);
    return ok;
}

/* Shrinks LARGE span s to new_pages (< s->n_pages), freeing the tail.  If
 * metadata runs out the block just keeps its pages. */
void tidei_arena_shrink_run(tide_span_t *s, size_t new_pages)
{
    tide_arena_t *a = &tidei_arena;
    large_huge_pages(s, false);  /* a huge page across the new end leaves the block */
    pthread_mutex_lock(&a->lock);
    tide_span_t *t = tidei_meta_span_new();
    if (t) {
        t->kind = TIDE_SPAN_LARGE;
        t->chunk = s->chunk;
        t->start = s->start + TIDE_PAGES_BYTES(new_pages);
        t->n_pages = s->n_pages - new_pages;
        tidei_pagemap_set(t->start, t->n_pages, t);
        s->n_pages = new_pages;
        a->n_large++;  /* the tail counts as a block until tidei_arena_free_run */
    }
    pthread_mutex_unlock(&a->lock);
    large_huge_pages(s, true);
    if (t)
        tidei_arena_free_run(t, false);  /* counts its pages free and merges them */
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
            if (!r->is_zero && pages_back(r->chunk, r->start, r->n_pages, true)) {
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

/* ---- iterators: how the reports (walk.c, leak.c, stats.c) see the arena ---- */

/* Calls fn(s, arg) for every run of every chunk, in address order within
 * a chunk (kind SMALL, LARGE, GC or FREE), then for every live huge block
 * (HUGE).  Arena lock held (fn must not take it). */
void tidei_arena_each_run(void (*fn)(tide_span_t *s, void *arg), void *arg)
{
    tide_arena_t *a = &tidei_arena;
    for (tide_chunk_t *c = a->chunks; c; c = c->next)
        for (tide_span_t *s = chunk_next_run(c, NULL); s; s = chunk_next_run(c, s))
            fn(s, arg);
    for (tide_span_t *s = a->huge_live; s; s = s->next)
        fn(s, arg);
}

/* The free page run that holds address p: one of a chunk's (whose inner
 * pages the page map does not mark) or a cached huge range; NULL if none.
 * Arena lock held. */
tide_span_t *tidei_arena_free_run_at(uintptr_t p)
{
    tide_arena_t *a = &tidei_arena;
    for (tide_chunk_t *c = a->chunks; c; c = c->next) {
        if (p - c->base >= TIDE_CHUNK_SIZE)
            continue;
        for (tide_span_t *r = chunk_next_run(c, NULL); r; r = chunk_next_run(c, r))
            if (p < r->start + TIDE_PAGES_BYTES(r->n_pages))
                return r->kind == TIDE_SPAN_FREE ? r : NULL;
    }
    for (tide_span_t *r = a->huge_cache; r; r = r->next)
        if (p - r->start < TIDE_PAGES_BYTES(r->n_pages))
            return r;
    return NULL;
}

/* Calls fn(start, bytes, arg) for every mapping the arena holds for the
 * heap and for itself: chunks, live and cached huge blocks, metadata
 * regions (the leak checker skips them all: none is a root).  Takes the
 * arena lock. */
void tidei_arena_each_mapping(void (*fn)(uintptr_t start, size_t bytes, void *arg), void *arg)
{
    tide_arena_t *a = &tidei_arena;
    pthread_mutex_lock(&a->lock);
    for (tide_chunk_t *c = a->chunks; c; c = c->next)
        fn(c->base, TIDE_CHUNK_SIZE, arg);
    for (tide_span_t *s = a->huge_live; s; s = s->next)
        fn(s->start, TIDE_PAGES_BYTES(s->n_pages), arg);
    for (tide_span_t *s = a->huge_cache; s; s = s->next)
        fn(s->start, TIDE_PAGES_BYTES(s->n_pages), arg);
    for (tidei_meta_region_t *m = a->meta_regions; m; m = m->next)
        fn((uintptr_t)m, m->size, arg);
    pthread_mutex_unlock(&a->lock);
}

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
                        done += TIDE_PAGES_BYTES(r->n_pages);
                    }
                    if (done >= TIDE_PURGE_BATCH) {
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

/* ---- checks ---- */

/* Expensive check (DEBUG=2 builds and tests): every page of every chunk is
 * covered by exactly one span or free run, every free run is in its bin, and
 * the free-page counts add up.  Aborts on the first inconsistency, naming
 * it; returns true otherwise (for tide_expensive_assert). */
bool tidei_arena_validate(void)
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
    return true;
}
