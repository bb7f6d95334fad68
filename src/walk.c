/* walk.c — the heap walk (every live block) and the lookup of an address
 * (tide_block_info), both built on the page map.
 *
 * The walk records first and calls back afterwards: with tidei_heaps_lock
 * and the arena lock held, it goes over the runs of every chunk and the list
 * of huge blocks and writes each live block to a buffer mapped for the
 * purpose; then it drops the locks and hands the blocks to the callback,
 * which may therefore allocate.  A small span's live blocks are its carved
 * blocks minus those on its free lists (free, local_free, the remote list)
 * and those waiting on its owner's notify list.  Reading the lists of a
 * heap whose thread is running is a race the caller must rule out (see
 * tide.h). */
#include "tide_internal.h"

/* The record: every live block (struct tide_block), in scratch memory. */
typedef tidei_scratch_t record_t;

static void record_add(record_t *r, void *ptr, size_t size, int cls, unsigned heap)
{
    struct tide_block *e = tidei_scratch_push(r);
    if (!e)
        return;
    e->ptr = ptr;
    e->size = size;
    e->size_class = cls;
    e->heap = heap;
}

/* Marks in bits[] the blocks of s that list holds (at most max of them). */
static void mark_list(const tide_span_t *s, const tide_free_block_t *list, uint64_t *bits, size_t max)
{
    for (size_t i = 0; list && i < max; list = tidei_link_next(s, list, "tide_heap_walk"), i++) {
        size_t idx = tidei_block_index(s, (uintptr_t)list);
        bits[idx / 64] |= (uint64_t)1 << (idx % 64);
    }
}

/* Marks in bits[] the blocks of s on notify list list (which mixes the
 * blocks of every full span of a heap: each link is encoded with the key
 * of its own block's span). */
static void mark_notify(const tide_span_t *s, const tide_free_block_t *list, uint64_t *bits)
{
    for (size_t i = 0; list && i < ((size_t)1 << 26); i++) {
        tide_span_t *ls = tidei_pagemap_lookup(list);
        if (!ls || ls->kind != TIDE_SPAN_SMALL)
            return;  /* corrupted: the owner reports it when it drains the list */
        uintptr_t a = (uintptr_t)list;
        if (ls == s) {
            size_t idx = tidei_block_index(s, a);
            bits[idx / 64] |= (uint64_t)1 << (idx % 64);
        }
        list = tidei_link_decode(ls, list->link);
    }
}

/* Records the live blocks of small span s.  Both locks held. */
static void record_small(record_t *r, tide_span_t *s)
{
    uint64_t bits[(TIDE_SPAN_MAX_PAGES * TIDE_PAGE_SIZE / 16 + 63) / 64];
    size_t words = (s->n_blocks + 63) / 64;
    memset(bits, 0, words * sizeof bits[0]);
    size_t max = s->n_blocks;
    tide_heap_t *h = atomic_load_explicit(&s->heap, relaxed);
    if (s->free && !tidei_span_built_has(s, s->free))
        tidei_link_bad_head(s, s->free, "tide_heap_walk");
    mark_list(s, s->free, bits, max);
    mark_list(s, s->local_free, bits, max);
    mark_list(s, (const tide_free_block_t *)(atomic_load_explicit(&s->remote, acquire) & TIDE_RS_PTR_MASK), bits, max);
    if (h)
        mark_notify(s, atomic_load_explicit(&h->notify, acquire), bits);
    unsigned id = h ? h->id : 0;
    for (size_t i = 0; i < s->n_built; i++) {
        if (!(bits[i / 64] >> (i % 64) & 1))
            record_add(r, (void *)(s->start + i * s->block_size), s->block_size, s->cls, id);
    }
}

static void record_guarded(void *r, uintptr_t p, size_t size)
{
    record_add(r, (void *)p, size, TIDE_CLASS_GUARDED, 0);
}

/* Records the live blocks of run s (tidei_arena_each_run) into r. */
static void record_run(tide_span_t *s, void *r)
{
    if (s->kind == TIDE_SPAN_SMALL)
        record_small(r, s);
    else if (s->kind == TIDE_SPAN_LARGE)
        record_add(r, (void *)s->start, s->n_pages << TIDE_PAGE_SHIFT, TIDE_CLASS_LARGE, 0);
    else if (s->kind == TIDE_SPAN_HUGE)
        record_add(r, (void *)s->start, s->n_pages << TIDE_PAGE_SHIFT, TIDE_CLASS_HUGE, 0);
}

/* Records every live block into r, with both locks held. */
static void record_live(record_t *r)
{
    pthread_mutex_lock(&tidei_heaps_lock);
    pthread_mutex_lock(&tidei_arena.lock);
    tidei_arena_each_run(record_run, r);
    tidei_guard_each_live(record_guarded, r);
    pthread_mutex_unlock(&tidei_arena.lock);
    pthread_mutex_unlock(&tidei_heaps_lock);
}

/* Every live block into out (zeroed): false with errno = ENOMEM when
 * memory ran out.  Release out with tidei_scratch_free. */
bool tidei_walk_live_blocks(tidei_scratch_t *out)
{
    memset(out, 0, sizeof *out);
    out->elem = sizeof(struct tide_block);
    record_live(out);
    if (out->failed)
        errno = ENOMEM;
    return !out->failed;
}

static long heap_walk(tide_walk_fn fn, void *arg)
{
    tidei_init();
    record_t r;
    long n = -1;
    if (tidei_walk_live_blocks(&r)) {
        const struct tide_block *b = r.p;
        for (size_t i = 0; i < r.n; i++)
            fn(&b[i], arg);
        n = (long)r.n;
    }
    tidei_scratch_free(&r);
    return n;
}

/* Whether the block b of small span s is free.  The owner (or anyone, for a
 * span nobody owns, under tidei_heaps_lock) searches the lists; another
 * thread goes by the free key. */
__attribute__((no_sanitize("thread"))) static bool small_is_free(tide_span_t *s, const tide_free_block_t *b, size_t idx)
{
    if (idx >= __atomic_load_n(&s->n_built, __ATOMIC_RELAXED))
        return true;  /* never carved */
    if (b->key != tidei_free_key_of(s))
        return false;
    tide_heap_t *h = atomic_load_explicit(&s->heap, relaxed);
    if (h != tidei_tls_heap)
        return true;
    if (tidei_span_holds_free(s, b, true))
        return true;
    const tide_free_block_t *n = atomic_load_explicit(&h->notify, acquire);
    while (n) {  /* freed by another thread into a full span */
        if (n == b)
            return true;
        tide_span_t *ns = tidei_pagemap_lookup(n);
        if (!ns || ns->kind != TIDE_SPAN_SMALL)
            return false;
        n = tidei_link_decode(ns, n->link);
    }
    return false;
}

/* The lookup, with the arena lock held: no span can be freed and no chunk
 * unmapped meanwhile, so the block read for its free key stays mapped.  The
 * descriptor of a small span is filled in by its owner after the carve,
 * without the lock, and the owner's free lists change under it: those reads
 * are racy by design (the answer is a snapshot) and exempt from TSan. */
__attribute__((no_sanitize("thread"), noinline)) static void block_info_locked(const void *p,
                                                                             struct tide_block_info *o)
{
    struct tide_block_info out;
    memset(&out, 0, sizeof out);
    tide_span_t *s = tidei_pagemap_lookup(p);
    if (s && s->kind == TIDE_SPAN_SMALL) {
        size_t idx = tidei_block_index(s, (uintptr_t)p);
        if (idx < s->n_blocks) {
            const tide_free_block_t *b = (const tide_free_block_t *)(s->start + idx * s->block_size);
            out.block.ptr = (void *)b;
            out.block.size = s->block_size;
            out.block.size_class = s->cls;
            tide_heap_t *h = atomic_load_explicit(&s->heap, relaxed);
            out.block.heap = h ? h->id : 0;
            out.state = small_is_free(s, b, idx) ? TIDE_BLOCK_FREE : TIDE_BLOCK_LIVE;
        } else {  /* the tail of a span that no block covers */
            out.state = TIDE_BLOCK_FREE;
            out.block.ptr = (void *)(s->start + (uintptr_t)s->n_blocks * s->block_size);
            out.block.size = s->start + (s->n_pages << TIDE_PAGE_SHIFT) - (uintptr_t)out.block.ptr;
            out.block.size_class = s->cls;
        }
    } else if (s && s->kind == TIDE_SPAN_GUARD) {
        tidei_guard_block_info(p, &out);
    } else if (s && (s->kind == TIDE_SPAN_LARGE || s->kind == TIDE_SPAN_HUGE)) {
        out.state = TIDE_BLOCK_LIVE;
        out.block.ptr = (void *)s->start;
        out.block.size = s->n_pages << TIDE_PAGE_SHIFT;
        out.block.size_class = s->kind == TIDE_SPAN_LARGE ? TIDE_CLASS_LARGE : TIDE_CLASS_HUGE;
    } else {
        /* In a free page run (the page map marks only its ends), a cached
         * huge mapping, or not tide's: ask the arena. */
        tide_span_t *r = tidei_arena_free_run_at((uintptr_t)p);
        if (r) {
            out.state = TIDE_BLOCK_FREE;
            out.block.ptr = (void *)r->start;
            out.block.size = r->n_pages << TIDE_PAGE_SHIFT;
            out.block.size_class = r->chunk ? TIDE_CLASS_LARGE : TIDE_CLASS_HUGE;
        }
    }
    *o = out;
}

tide_export int tide_block_info(const void *p, struct tide_block_info *info)
{
    tidei_init();
    struct tide_block_info out;
    tidei_busy_enter();
    pthread_mutex_lock(&tidei_arena.lock);
    block_info_locked(p, &out);
    pthread_mutex_unlock(&tidei_arena.lock);
    tidei_busy_leave();
    if (info)
        *info = out;
    return (int)out.state;
}

tide_export long tide_heap_walk(tide_walk_fn fn, void *arg)
{
    tidei_busy_enter();
    long n = heap_walk(fn, arg);
    tidei_busy_leave();
    return n;
}
