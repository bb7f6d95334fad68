/* huge.c — huge blocks (more than TIDE_LARGE_MAX bytes, unless one of at
 * most a chunk found resident free pages in the chunks: alloc.c
 * pages_alloc): each is a range of pages outside the chunks, mapped for
 * it, and the cache of freed ranges that the next huge blocks reuse.
 *
 * The cache.  A freed huge block stays mapped, its pages resident, as a free
 * range of the cache: FREE span descriptors on tidei_arena.huge_cache, in
 * address order, not in the page map.  Free ranges that touch are merged
 * (a range then takes the newer free time), so blocks freed side by side
 * serve a bigger one later.  A huge block of n pages takes, in this order:
 *   1. the free range that fits best (the one that leaves least over, with
 *      the alignment asked for).  The block takes the start of the range; the
 *      rest stays cached, unless it is at most 1/TIDE_CLASS_STEPS (1/8) of the block, which then
 *      keeps it (its pages are resident already; the size-class waste bound);
 *   2. the biggest free range, grown in place by mapping the address space
 *      just after it or just before it when that is free: only the
 *      difference is new memory, faulted in when touched;
 *   3. a new mapping.
 * The cache holds at most the recent peak of live huge bytes (the highest
 * live total of the current and the previous decay period) and at most
 * TIDE_CONF huge_cache_mb MiB.  What a free leaves above that is unmapped at
 * once, from the end of the range freed longest ago (a partial purge: the
 * rest of that range stays).  The scavenger unmaps free ranges that have
 * stayed free for decay_ms (tidei_huge_purge), and a new chunk unmaps as
 * much first (tidei_huge_give_way_locked).  With decay_ms=0 or
 * huge_cache_mb=0 nothing is cached: a freed huge block is unmapped at once.
 *
 * realloc grows a block in place over the free range or the unmapped
 * address space just after it, else moves its pages to a new mapping with
 * mremap (no copy); it shrinks a block by caching its tail.
 *
 * Mappings.  A block or free range may span several kernel mappings (VMAs):
 * ranges merged in the cache, or a block grown by a mapping of its own.
 * munmap and madvise take such a range whole; mremap refuses it, so growth
 * in place falls back to mapping the address space after the block, and a
 * move goes mapping by mapping (tidei_os_move).
 *
 * Owns tidei_arena's huge fields (huge_live, huge_cache and their counts).
 * Locks: everything here is under the arena lock, the only lock it takes
 * (heap.c gives the lock order); system calls are made without it, except
 * the move of tidei_huge_realloc (the page map must never see the block
 * half moved) and the unmapping of the whole cache when the OS refused
 * memory.  Like arena.c it calls no layer above it: a free that leaves the
 * cache work for the scavenger says so through tidei_arena_note_dirty. */
#include <sched.h>

#include "tide_internal.h"

/* Ranges to unmap that a free (FREE_CUTS) or a purge round (PURGE_CUTS)
 * collects under the arena lock and unmaps after it; a free that fills
 * them trims the whole cache (cache_trim_all), a purge goes round again. */
enum { FREE_CUTS = 8, PURGE_CUTS = 16 };

#define HUGE_END(r) ((r)->start + TIDE_PAGES_BYTES((r)->n_pages))


/* A piece of address space to unmap once the arena lock is released. */
typedef struct huge_cut {
    uintptr_t start;             /* first byte */
    size_t bytes;                /* length (page multiple) */
} huge_cut_t;

/* Whether freed huge blocks are cached (decay_ms=0, no scavenger, or
 * huge_cache_mb=0: no). */
static bool cache_on(void)
{
    return !tidei_purge_at_free() && tidei_opt.huge_cache_mb != 0;
}

/* The recent peak of live huge bytes: the highest of the current and the
 * previous period of decay_ms (decay_ms=-1: of the whole run).  Starts a new
 * period when the current one is over.  Arena lock held. */
static size_t recent_peak(uint64_t now)
{
    tide_arena_t *a = &tidei_arena;
    long d = tidei_decay();
    if (d > 0 && now >= a->huge_peak_ms + (uint64_t)d) {
        /* a whole period went by with no call: its peak was the live total */
        a->huge_peak_prev = now - a->huge_peak_ms >= 2 * (uint64_t)d ? a->huge_bytes : a->huge_peak_cur;
        a->huge_peak_cur = a->huge_bytes;
        a->huge_peak_ms = now;
    }
    return a->huge_peak_cur > a->huge_peak_prev ? a->huge_peak_cur : a->huge_peak_prev;
}

/* The bytes the cache may hold now.  Arena lock held. */
static size_t cache_limit(uint64_t now)
{
    if (!cache_on())
        return 0;
    size_t limit = recent_peak(now);
    if (tidei_opt.huge_cache_mb >= 0 && (size_t)tidei_opt.huge_cache_mb << 20 < limit)
        limit = (size_t)tidei_opt.huge_cache_mb << 20;
    return limit;
}

static void cache_unlink(tide_span_t *r)
{
    tide_arena_t *a = &tidei_arena;
    tide_list_remove(a->huge_cache, r, next, prev);
    a->huge_cache_bytes -= TIDE_PAGES_BYTES(r->n_pages);
    a->n_huge_cache--;
}

/* Puts free range r (a FREE descriptor with start, n_pages, dirty_ms) in the
 * cache, merged with the ranges it touches (r may be deleted then).  Arena
 * lock held. */
static void cache_insert(tide_span_t *r)
{
    tide_arena_t *a = &tidei_arena;
    tide_span_t *before = NULL, *after = a->huge_cache;
    while (after && after->start < r->start) {
        before = after;
        after = after->next;
    }
    a->huge_cache_bytes += TIDE_PAGES_BYTES(r->n_pages);
    if (before && HUGE_END(before) == r->start) {
        before->n_pages += r->n_pages;
        if (r->dirty_ms > before->dirty_ms)
            before->dirty_ms = r->dirty_ms;
        tidei_meta_span_delete(r);
        r = before;
    } else {
        r->kind = TIDE_SPAN_FREE;
        tide_list_insert_after(a->huge_cache, before, r, next, prev);
        a->n_huge_cache++;
    }
    if (after && HUGE_END(r) == after->start) {
        r->n_pages += after->n_pages;
        if (after->dirty_ms > r->dirty_ms)
            r->dirty_ms = after->dirty_ms;
        tide_list_remove(a->huge_cache, after, next, prev);
        a->n_huge_cache--;
        tidei_meta_span_delete(after);
    }
}

/* The free range that fits size bytes aligned to align best (leaves the
 * fewest bytes over), with *at the block's address in it; NULL if none.
 * Arena lock held. */
static tide_span_t *cache_fit(size_t size, size_t align, uintptr_t *at)
{
    tide_span_t *best = NULL;
    size_t best_left = SIZE_MAX;
    for (tide_span_t *r = tidei_arena.huge_cache; r; r = r->next) {
        uintptr_t s = (r->start + align - 1) & ~(uintptr_t)(align - 1);
        uintptr_t end = HUGE_END(r);
        if (s < r->start || s > end || end - s < size)
            continue;
        size_t left = TIDE_PAGES_BYTES(r->n_pages) - size;
        if (left < best_left) {
            best = r;
            best_left = left;
            *at = s;
        }
    }
    return best;
}

/* Takes [at, at + size) out of free range r, which holds it; returns the
 * bytes the block gets: size, or more when the rest of r after it is at
 * most size / TIDE_CLASS_STEPS (or no descriptor is left to cache it).  Arena lock held. */
static size_t cache_cut(tide_span_t *r, uintptr_t at, size_t size)
{
    tide_arena_t *a = &tidei_arena;
    size_t head = at - r->start;
    size_t tail = HUGE_END(r) - (at + size);
    if (tail <= size / TIDE_CLASS_STEPS) {
        size += tail;
        tail = 0;
    }
    tide_span_t *t = NULL;
    if (head && tail && !(t = tidei_meta_span_new())) {
        size += tail;
        tail = 0;
    }
    if (!head && !tail) {
        cache_unlink(r);
        tidei_meta_span_delete(r);
        return size;
    }
    a->huge_cache_bytes -= size;
    if (!head) {
        r->start = at + size;
        r->n_pages = tail >> TIDE_PAGE_SHIFT;
        return size;
    }
    r->n_pages = head >> TIDE_PAGE_SHIFT;
    if (t) {
        t->kind = TIDE_SPAN_FREE;
        t->start = at + size;
        t->n_pages = tail >> TIDE_PAGE_SHIFT;
        t->dirty_ms = r->dirty_ms;
        tide_list_insert_after(a->huge_cache, r, t, next, prev);
        a->n_huge_cache++;
    }
    return size;
}

/* Cuts the cache down to limit bytes and TIDE_HUGE_CACHE_RANGES ranges, from
 * the range freed longest ago: whole ranges, or the end of one when that is
 * enough.  Fills cuts[] (up to max) with what to unmap after the lock is
 * released; returns how many (max: there may be more).  Arena lock held. */
static int cache_trim(size_t limit, huge_cut_t *cuts, int max)
{
    tide_arena_t *a = &tidei_arena;
    int k = 0;
    while (k < max && a->huge_cache && (a->huge_cache_bytes > limit || a->n_huge_cache > TIDE_HUGE_CACHE_RANGES)) {
        tide_span_t *old = a->huge_cache;
        for (tide_span_t *r = old->next; r; r = r->next)
            if (r->dirty_ms < old->dirty_ms)
                old = r;
        size_t have = TIDE_PAGES_BYTES(old->n_pages);
        size_t over = a->huge_cache_bytes > limit ? a->huge_cache_bytes - limit : 0;
        over = (over + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
        if (a->n_huge_cache <= TIDE_HUGE_CACHE_RANGES && over < have) {
            old->n_pages -= over >> TIDE_PAGE_SHIFT;
            a->huge_cache_bytes -= over;
            cuts[k++] = (huge_cut_t){ HUGE_END(old), over };
        } else {
            cache_unlink(old);
            cuts[k++] = (huge_cut_t){ old->start, have };
            tidei_meta_span_delete(old);
        }
    }
    return k;
}

/* Callers between releasing the arena lock and finishing the unmapping of
 * the cuts they took out of the cache under it.  That address space is
 * still mapped: a thread the OS has just refused waits for it
 * (tidei_huge_release_locked) rather than report exhaustion while the
 * room is on its way back. */
static _Atomic unsigned cuts_pending;

static void unmap_cuts(const huge_cut_t *cuts, int k)
{
    for (int i = 0; i < k; i++)
        tidei_os_unmap((void *)cuts[i].start, cuts[i].bytes);
}

/* Releases the arena lock, then unmaps the k cuts taken under it. */
static void unlock_unmap_cuts(const huge_cut_t *cuts, int k)
{
    if (k)
        atomic_fetch_add_explicit(&cuts_pending, 1, relaxed);  /* under the lock */
    pthread_mutex_unlock(&tidei_arena.lock);
    unmap_cuts(cuts, k);
    if (k)
        atomic_fetch_sub_explicit(&cuts_pending, 1, memory_order_release);
}

/* Trims the cache to its limit, unmapping what goes.  Takes the arena lock;
 * the caller must not hold it. */
static void cache_trim_all(void)
{
    tide_arena_t *a = &tidei_arena;
    huge_cut_t cuts[16];
    int k;
    do {
        pthread_mutex_lock(&a->lock);
        k = cache_trim(cache_limit(tidei_os_now_ms()), cuts, 16);
        unlock_unmap_cuts(cuts, k);
    } while (k == 16);
}

/* A huge block of len bytes at start counts as live; the page map covers
 * it.  Arena lock held. */
static void huge_count_grown(size_t bytes)
{
    tide_arena_t *a = &tidei_arena;
    a->huge_bytes += bytes;
    recent_peak(tidei_os_now_ms());
    if (a->huge_bytes > a->huge_peak_cur)
        a->huge_peak_cur = a->huge_bytes;
}

/* A huge block of n bytes aligned to align (0 or a power of two).  NULL with
 * errno = ENOMEM on failure.  No lock held. */
void *tidei_huge_alloc(size_t n, size_t align, bool zero)
{
    tide_arena_t *a = &tidei_arena;
    if (align < TIDE_PAGE_SIZE)
        align = TIDE_PAGE_SIZE;
    size_t size = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (size < n || size > PTRDIFF_MAX)
        goto oom;
    bool retried = false;
again:;
    uintptr_t start = 0;
    size_t len = 0, dirty_lo = 0, dirty_hi = 0;  /* [dirty_lo, dirty_hi): bytes not known zero */
    tide_span_t *grow = NULL;
    pthread_mutex_lock(&a->lock);
    tide_span_t *s = tidei_meta_span_new();
    if (!s) {
        pthread_mutex_unlock(&a->lock);
        goto oom;
    }
    uintptr_t at = 0;
    tide_span_t *r = cache_fit(size, align, &at);
    if (r) {
        start = at;
        len = cache_cut(r, at, size);
        dirty_hi = len;
    } else if (align == TIDE_PAGE_SIZE && a->huge_cache) {
        grow = a->huge_cache;
        for (r = grow->next; r; r = r->next)
            if (r->n_pages > grow->n_pages)
                grow = r;
        cache_unlink(grow);
    }
    pthread_mutex_unlock(&a->lock);
    if (grow) {
        /* grow the biggest free range in place, up or down */
        size_t have = TIDE_PAGES_BYTES(grow->n_pages), need = size - have;
        if (tidei_os_map_at((void *)HUGE_END(grow), need)) {
            start = grow->start;
            len = size;
            dirty_hi = have;
        } else if (grow->start > need && tidei_os_map_at((void *)(grow->start - need), need)) {
            start = grow->start - need;
            len = size;
            dirty_lo = need;
            dirty_hi = size;
        }
        pthread_mutex_lock(&a->lock);
        if (len)
            tidei_meta_span_delete(grow);
        else
            cache_insert(grow);
        pthread_mutex_unlock(&a->lock);
    }
    if (!len) {
        void *p = tidei_os_map_aligned(size, align);
        if (!p && !retried && tidei_arena_release_caches()) {
            retried = true;
            p = tidei_os_map_aligned(size, align);
        }
        if (!p) {
            pthread_mutex_lock(&a->lock);
            tidei_meta_span_delete(s);
            pthread_mutex_unlock(&a->lock);
            goto oom;
        }
        start = (uintptr_t)p;
        len = size;
    }
    pthread_mutex_lock(&a->lock);
    if (!tidei_pagemap_ensure(start, len >> TIDE_PAGE_SHIFT)) {
        /* no room for the page-map leaf that would index the block */
        tidei_meta_span_delete(s);
        pthread_mutex_unlock(&a->lock);
        tidei_os_unmap((void *)start, len);
        if (!retried && tidei_arena_release_caches()) {
            retried = true;
            goto again;
        }
        goto oom;
    }
    s->kind = TIDE_SPAN_HUGE;
    s->start = start;
    s->n_pages = len >> TIDE_PAGE_SHIFT;
    s->is_zero = dirty_hi == dirty_lo;
    tidei_os_huge_pages((void *)start, len, true);
    tidei_pagemap_set(s->start, s->n_pages, s);
    huge_count_grown(len);
    a->n_huge++;
    a->n_huge_malloc++;
    tide_list_push(a->huge_live, s, next, prev);
    pthread_mutex_unlock(&a->lock);
    if (zero && dirty_lo < n) {
        size_t hi = dirty_hi < n ? dirty_hi : n;
        if (hi > dirty_lo)
            memset((void *)(start + dirty_lo), 0, hi - dirty_lo);
    } else if (dirty_lo == 0 && dirty_hi > 0) {
        tidei_clear_key_word((void *)start);
    }
    return (void *)start;
oom:
    errno = ENOMEM;
    return NULL;
}

/* Frees huge block s: into the cache, or unmapped.  No lock held. */
void tidei_huge_free(tide_span_t *s)
{
    tide_arena_t *a = &tidei_arena;
    size_t size = TIDE_PAGES_BYTES(s->n_pages);
    uintptr_t start = s->start;
    uint64_t now = tidei_os_now_ms();
    huge_cut_t cuts[FREE_CUTS];
    int k = 0;
    bool wake = false;
    pthread_mutex_lock(&a->lock);
    tidei_pagemap_set(start, s->n_pages, NULL);
    a->huge_bytes -= size;
    a->n_huge--;
    tide_list_remove(a->huge_live, s, next, prev);
    if (cache_on()) {
        s->kind = TIDE_SPAN_FREE;
        s->is_zero = false;
        s->dirty_ms = now;
        cache_insert(s);  /* s may be merged away */
        k = cache_trim(cache_limit(now), cuts, FREE_CUTS);
        wake = a->huge_cache != NULL;
    } else {
        tidei_meta_span_delete(s);
        cuts[k++] = (huge_cut_t){ start, size };
    }
    unlock_unmap_cuts(cuts, k);
    if (k == FREE_CUTS)
        cache_trim_all();
    if (wake)
        tidei_arena_note_dirty();
}

/* Shrinks huge block s to size bytes (< its size): the tail is cached, or
 * unmapped.  No lock held. */
static void huge_shrink(tide_span_t *s, size_t size)
{
    tide_arena_t *a = &tidei_arena;
    uintptr_t tail = s->start + size;
    size_t tail_bytes = TIDE_PAGES_BYTES(s->n_pages) - size;
    huge_cut_t cuts[FREE_CUTS];
    int k = 0;
    pthread_mutex_lock(&a->lock);
    tidei_pagemap_set(tail, tail_bytes >> TIDE_PAGE_SHIFT, NULL);
    s->n_pages = size >> TIDE_PAGE_SHIFT;
    a->huge_bytes -= tail_bytes;
    tide_span_t *t = cache_on() ? tidei_meta_span_new() : NULL;
    if (t) {
        uint64_t now = tidei_os_now_ms();
        t->start = tail;
        t->n_pages = tail_bytes >> TIDE_PAGE_SHIFT;
        t->dirty_ms = now;
        cache_insert(t);
        k = cache_trim(cache_limit(now), cuts, FREE_CUTS);
    } else {
        cuts[k++] = (huge_cut_t){ tail, tail_bytes };
    }
    unlock_unmap_cuts(cuts, k);
    if (k == FREE_CUTS)
        cache_trim_all();
    if (t)
        tidei_arena_note_dirty();
}

/* Grows huge block s by extra bytes in place: over the free range that
 * starts where it ends, and over unmapped address space after that.  True
 * on success.  No lock held. */
static bool huge_grow_in_place(tide_span_t *s, size_t extra)
{
    tide_arena_t *a = &tidei_arena;
    uintptr_t end = HUGE_END(s);
    pthread_mutex_lock(&a->lock);
    if (!tidei_pagemap_ensure(end, extra >> TIDE_PAGE_SHIFT)) {
        pthread_mutex_unlock(&a->lock);
        return false;
    }
    tide_span_t *r = a->huge_cache;
    while (r && r->start < end)
        r = r->next;
    if (r && r->start != end)
        r = NULL;
    if (r && TIDE_PAGES_BYTES(r->n_pages) >= extra) {
        if (TIDE_PAGES_BYTES(r->n_pages) == extra) {
            cache_unlink(r);
            tidei_meta_span_delete(r);
        } else {
            r->start += extra;
            r->n_pages -= extra >> TIDE_PAGE_SHIFT;
            a->huge_cache_bytes -= extra;
        }
        goto grown;
    }
    if (r)
        cache_unlink(r);  /* too short: ours while the rest is mapped after it */
    pthread_mutex_unlock(&a->lock);
    uintptr_t at = r ? HUGE_END(r) : end;
    /* mremap first: a block that is one kernel mapping stays one (a later
     * move is then one call) */
    size_t old = TIDE_PAGES_BYTES(s->n_pages);
    bool ok = (!r && tidei_os_remap((void *)s->start, old, old + extra, false)) ||
              tidei_os_map_at((void *)at, end + extra - at);
    pthread_mutex_lock(&a->lock);
    if (!ok) {
        if (r)
            cache_insert(r);
        pthread_mutex_unlock(&a->lock);
        return false;
    }
    if (r)
        tidei_meta_span_delete(r);
grown:
    tidei_pagemap_set(end, extra >> TIDE_PAGE_SHIFT, s);
    s->n_pages += extra >> TIDE_PAGE_SHIFT;
    s->is_zero = false;
    huge_count_grown(extra);
    pthread_mutex_unlock(&a->lock);
    return true;
}

/* Moves huge block s to a new mapping of size bytes with mremap (its pages
 * move, nothing is copied).  Returns the block, or NULL if it cannot (no
 * memory).  No lock held. */
static void *huge_move(tide_span_t *s, size_t size)
{
    tide_arena_t *a = &tidei_arena;
    size_t old = TIDE_PAGES_BYTES(s->n_pages);
    /* Map the destination first (so the page map can cover it before
     * anything moves), then move the pages onto it. */
    void *dest = tidei_os_map(size);
    if (!dest && tidei_arena_release_caches())
        dest = tidei_os_map(size);
    if (!dest)
        return NULL;
    pthread_mutex_lock(&a->lock);
    if (!tidei_pagemap_ensure((uintptr_t)dest, size >> TIDE_PAGE_SHIFT) ||
        !tidei_os_move((void *)s->start, old, dest)) {
        pthread_mutex_unlock(&a->lock);
        tidei_os_unmap(dest, size);
        return NULL;
    }
    tidei_pagemap_set(s->start, s->n_pages, NULL);
    s->start = (uintptr_t)dest;
    s->n_pages = size >> TIDE_PAGE_SHIFT;
    s->is_zero = false;
    tidei_pagemap_set(s->start, s->n_pages, s);
    huge_count_grown(size - old);
    pthread_mutex_unlock(&a->lock);
    return dest;
}

/* Resizes huge block s to n bytes (n > TIDE_LARGE_MAX) without copying:
 * shrinks it (caching the tail), grows it in place, or moves its pages.
 * Returns the block, or NULL when it cannot (s untouched: the caller
 * copies).  No lock held. */
void *tidei_huge_realloc(tide_span_t *s, size_t n)
{
    size_t old = TIDE_PAGES_BYTES(s->n_pages);
    size_t size = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (size < n || size > PTRDIFF_MAX)
        return NULL;
    if (size == old)
        return (void *)s->start;
    if (size < old) {
        huge_shrink(s, size);
        return (void *)s->start;
    }
    if (huge_grow_in_place(s, size - old))
        return (void *)s->start;
    return huge_move(s, size);
}

/* Unmaps every cached range (trim, or the OS refused memory) and waits for
 * the cuts other threads are unmapping.  True if there were any of either.
 * Arena lock held. */
bool tidei_huge_release_locked(void)
{
    tide_arena_t *a = &tidei_arena;
    bool released = a->huge_cache != NULL;
    while (a->huge_cache) {
        tide_span_t *r = a->huge_cache;
        cache_unlink(r);
        tidei_os_unmap((void *)r->start, TIDE_PAGES_BYTES(r->n_pages));
        tidei_meta_span_delete(r);
    }
    /* cuts another thread is unmapping: their room comes back in a moment
     * (no lock is needed to finish them) */
    for (; atomic_load_explicit(&cuts_pending, memory_order_acquire); sched_yield())
        released = true;
    return released;
}

/* Makes way for bytes of new memory that the chunks are about to map: unmaps
 * that much of the cache (or all of it), from the range freed longest ago.
 * A cached range serves huge blocks only, so a program whose other blocks
 * grow while a freed huge block sits in the cache would hold both (SQLite's
 * sorter frees an 8 MiB buffer and then fills its page cache): the new
 * chunk takes the cache's place.  Arena lock held (the unmapping too: the
 * chunk's mapping is made under it as well, and both are rare). */
void tidei_huge_give_way_locked(size_t bytes)
{
    tide_arena_t *a = &tidei_arena;
    size_t limit = a->huge_cache_bytes > bytes ? a->huge_cache_bytes - bytes : 0;
    huge_cut_t cuts[PURGE_CUTS];
    int k;
    do {
        k = cache_trim(limit, cuts, PURGE_CUTS);
        unmap_cuts(cuts, k);
    } while (k == PURGE_CUTS);
}

/* The scavenger's work on the cache: unmaps the free ranges that have been
 * free for decay ms, and what is above the cache's limit.  Lowers *next_ms
 * to when the next range falls due.  True if anything went back to the OS.
 * Takes the arena lock. */
bool tidei_huge_purge(uint64_t now, uint64_t decay, uint64_t *next_ms)
{
    tide_arena_t *a = &tidei_arena;
    huge_cut_t cuts[PURGE_CUTS];
    bool released = false;
    int k;
    do {
        uint64_t next = UINT64_MAX;
        pthread_mutex_lock(&a->lock);
        k = cache_trim(cache_limit(now), cuts, PURGE_CUTS);
        for (tide_span_t *r = a->huge_cache, *nx; r && k < PURGE_CUTS; r = nx) {
            nx = r->next;
            if (r->dirty_ms + decay <= now) {  /* (freed after now was read: not due) */
                cache_unlink(r);
                cuts[k++] = (huge_cut_t){ r->start, TIDE_PAGES_BYTES(r->n_pages) };
                tidei_meta_span_delete(r);
            } else if (r->dirty_ms + decay < next) {
                next = r->dirty_ms + decay;
            }
        }
        unlock_unmap_cuts(cuts, k);
        released |= k > 0;
        if (k < PURGE_CUTS && next < *next_ms)
            *next_ms = next;
    } while (k == PURGE_CUTS);
    return released;
}
