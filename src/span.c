/* span.c — size classes, and spans: page runs cut into blocks of one class.
 *
 * A span's blocks are in one of four places: handed out (counted in `used`),
 * on `free` (the owner's malloc pops them, the owner's free pushes them),
 * on `local_free` (put back by the owner's slow paths: remote frees it
 * collected, frees that took the checked path), or on the lock-free
 * `remote` list (other threads push them; still counted in `used` until
 * the owner collects them).  Blocks past
 * `n_built` have never been touched: they are carved lazily, a page or so at
 * a time, so a fresh span commits memory only as it is used. */
#include "tide_internal.h"

uint32_t tidei_class_size[TIDE_N_CLASSES];
uint16_t tidei_class_pages[TIDE_N_CLASSES];
/* Per class, the block-start multiplier (tidei_blk_mul), which also finds
 * a block's index and a span's count of blocks: a span is set up on every
 * slow path that takes a new run or a spare (a batch of mid-size blocks,
 * 4 to a span, sets one up every few mallocs), and the table spares it
 * the division. */
uint64_t tidei_class_mul[TIDE_N_CLASSES];
uint8_t tidei_class_table[TIDE_SMALL_MAX / 16 + 1];

/* The three lines of a span descriptor (tide_types.h). */
#define SPAN_LINE(f) (offsetof(tide_span_t, f) / 64)
_Static_assert(SPAN_LINE(free) == 0 && SPAN_LINE(used_rel) == 0 && SPAN_LINE(n_malloc) == 0 && SPAN_LINE(start) == 0 &&
               SPAN_LINE(built_bytes) == 0, "the owner's fast paths write line 0");
_Static_assert(SPAN_LINE(heap) == 1 && SPAN_LINE(blk_mul) == 1 && SPAN_LINE(blk_bound) == 1 &&
               SPAN_LINE(blk_base) == 1 && SPAN_LINE(kind) == 1 && SPAN_LINE(link_key) == 1,
               "every free reads line 1");
_Static_assert(SPAN_LINE(remote) == 2 && sizeof(tide_span_t) == 192, "remote frees write line 2");

/* The span of an empty heap's bins: it never has a free block, so the malloc
 * fast path falls through to the slow path, which sets the heap up. */
tide_span_t tidei_empty_span;
/* The value a free block of the GC heap holds in its second word (small
 * spans' blocks hold their span's key, tidei_free_key_of), and the secret
 * every span's free-list link key is made from (tidei_link_key): both
 * drawn at process init (init.c). */
uintptr_t tidei_free_key;
uint64_t tidei_link_secret;

/* Fills the class tables: sizes, and for each class the span length (in
 * pages) that wastes least at the end of the span among the lengths that
 * hold at least TIDE_SPAN_MIN_BYTES or TIDE_SPAN_MIN_BLOCKS blocks. */
void tidei_class_init(void)
{
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        size_t size;
        if (c <= 8) {
            size = c == 0 ? 16 : (size_t)c * 16;
        } else {
            int k = c - 9;           /* 0.. : 8 classes per power of two from 128 */
            int b = 7 + k / 8;
            int j = k % 8;
            size = ((size_t)1 << b) + (size_t)(j + 1) * ((size_t)1 << (b - 3));
        }
        tidei_class_size[c] = (uint32_t)size;
        size_t min_bytes = size * TIDE_SPAN_MIN_BLOCKS > TIDE_SPAN_MIN_BYTES ? size * TIDE_SPAN_MIN_BLOCKS
                                                                             : TIDE_SPAN_MIN_BYTES;
        size_t lo = (min_bytes + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
        size_t best = lo, best_waste = SIZE_MAX;
        for (size_t pages = lo; pages <= lo * 2 && pages <= TIDE_SPAN_MAX_PAGES; pages++) {
            size_t bytes = pages << TIDE_PAGE_SHIFT;
            size_t waste = (bytes % size) * 1000 / bytes;  /* per mille */
            if (waste < best_waste) {
                best = pages;
                best_waste = waste;
            }
            if (waste < 10)
                break;
        }
        tidei_class_pages[c] = (uint16_t)best;
        tidei_class_mul[c] = tidei_blk_mul((uint32_t)size);
    }
    for (size_t i = 0; i <= TIDE_SMALL_MAX / 16; i++)
        tidei_class_table[i] = (uint8_t)tidei_class_of(i * 16);
    tide_assert(tidei_class_of(TIDE_SMALL_MAX) == TIDE_N_CLASSES - 1);
    tide_assert(tidei_class_fast(TIDE_SMALL_MAX) == TIDE_N_CLASSES - 1);
    tide_assert(tidei_class_size[TIDE_N_CLASSES - 1] == TIDE_SMALL_MAX);
}

/* Turns the fresh run of s (from tidei_arena_alloc_run with kind SMALL, or
 * GC for the collector's spans, src/gc/heap.c) into a span of class cls
 * with no block built yet. */
void tidei_span_init_small(tide_span_t *s, int cls)
{
    uint32_t size = tidei_class_size[cls];
    /* kind was set under the arena lock: neighbours being freed read it. */
    tide_debug_assert(s->kind == TIDE_SPAN_SMALL || s->kind == TIDE_SPAN_GC);
    s->cls = (uint8_t)cls;
    s->block_size = size;
    s->blk_mul = tidei_class_mul[cls];
    s->blk_base = (s->start - __atomic_load_n(&tidei_pagemap_flat.base, __ATOMIC_ACQUIRE)) * s->blk_mul;
    s->n_blocks = (uint32_t)tidei_block_index(s, s->start + (s->n_pages << TIDE_PAGE_SHIFT));  /* bytes / size */
    tide_debug_assert(s->n_blocks == (s->n_pages << TIDE_PAGE_SHIFT) / size);
    s->n_built = 0;
    s->built_bytes = 0;
    s->blk_bound = 0;
    s->link_key = tidei_link_key(s->start);
    s->n_malloc = 0;
    s->used_rel = 0;
    s->slow_at = 0;
    s->free = NULL;
    s->local_free = NULL;
    s->in_full = 0;
    atomic_store_explicit(&s->remote, TIDE_RS_NORMAL, relaxed);
}

/* The end of a batch to carve from first that would end at limit, pushed
 * TIDE_CARVE_AHEAD_PAGES pages further (within s) once the process has
 * TIDE_CARVE_AHEAD_CHUNKS chunks, if s was cut from pages known to be
 * zero (never touched, or purged: is_zero, which a small span keeps from
 * its creation); the pages from the one after first's are then made
 * resident in one request, which the carve's writes would otherwise fault
 * in one at a time.  A span on pages used before skips it: they are
 * likely still resident, and the request would only walk them. */
static uintptr_t carve_ahead(const tide_span_t *s, uintptr_t first, uintptr_t limit)
{
    if (!s->is_zero || __atomic_load_n(&tidei_arena.n_chunks, __ATOMIC_RELAXED) < TIDE_CARVE_AHEAD_CHUNKS)
        return limit;
    uintptr_t end = (s->start + (uintptr_t)s->n_blocks * s->block_size + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    uintptr_t want = limit + TIDE_CARVE_AHEAD_PAGES * TIDE_PAGE_SIZE;
    if (want > end)
        want = end;
    if (want <= limit)
        return limit;
    uintptr_t from = (first + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (want > from)
        tidei_os_populate((void *)from, want - from);
    return want;
}

/* Carves the next batch of never-used blocks onto s->free: those that end
 * in the page where the next block ends, or before it (at least one; at
 * least TIDE_CARVE_MIN_BLOCKS on pages used before), and in a big process
 * up to TIDE_CARVE_AHEAD_PAGES pages more from the second batch on, made
 * resident first (carve_ahead).  Each carries the free key
 * like a freed block, so that freeing one tide never handed out is caught
 * as misuse. */
static void span_extend(tide_span_t *s)
{
    uintptr_t first = s->start + (uintptr_t)s->n_built * s->block_size;
    /* the blocks that end by the end of the page where the first one ends:
     * no page is touched before a block needs it (a thread with a block or
     * two of a class touches one page of its span, not two) */
    uintptr_t limit = (first + s->block_size + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (s->n_built > 0)
        limit = carve_ahead(s, first, limit);
    uint32_t n = (uint32_t)((limit - first) / s->block_size);
    if (n == 0)
        n = 1;
    if (n < TIDE_CARVE_MIN_BLOCKS && !s->is_zero)
        n = TIDE_CARVE_MIN_BLOCKS;
    if (n > s->n_blocks - s->n_built)
        n = s->n_blocks - s->n_built;
    tide_free_block_t *b = (tide_free_block_t *)first;
    uintptr_t key = tidei_free_key_of(s);
    for (uint32_t i = 0; i + 1 < n; i++) {
        tide_free_block_t *next = (tide_free_block_t *)((char *)b + s->block_size);
        b->link = tidei_link_encode(s, next);
        b->key = key;
        b = next;
    }
    b->link = tidei_link_encode(s, s->free);
    b->key = key;
    s->free = (tide_free_block_t *)first;
    uint32_t built = s->n_built + n;
    /* read by remote frees: either value covers every block handed out */
    __atomic_store_n(&s->blk_bound, (uint64_t)built * (s->blk_mul * s->block_size), __ATOMIC_RELAXED);
    __atomic_store_n(&s->built_bytes, (uint64_t)built * s->block_size, __ATOMIC_RELAXED);
    __atomic_store_n(&s->n_built, built, __ATOMIC_RELAXED);
}

/* The secret of the span starting at start: the process's link secret
 * mixed with the address (splitmix64's finalizer), so that spans differ;
 * its top bit set, so that a link overwritten with zero decodes to no
 * address (tidei_link_decode). */
uintptr_t tidei_link_key(uintptr_t start)
{
    uint64_t z = tidei_link_secret ^ (start * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (z ^ (z >> 31)) | (uint64_t)1 << 63;
}

/* Whether b is the start of a built block of s. */
static bool link_target_ok(const tide_span_t *s, const tide_free_block_t *b)
{
    uint64_t off = (uintptr_t)b - s->start;
    return off < __atomic_load_n(&s->built_bytes, __ATOMIC_RELAXED) &&
           tidei_block_ok(s, off, __atomic_load_n(&s->blk_bound, __ATOMIC_RELAXED));
}

bool tidei_link_next_ok(const tide_span_t *s, const tide_free_block_t *b, const tide_free_block_t **next)
{
    const tide_free_block_t *n = tidei_link_decode(s, __atomic_load_n(&b->link, __ATOMIC_RELAXED));
    *next = n;
    return n == NULL || link_target_ok(s, n);
}

__attribute__((noreturn)) static void link_corrupt(const tide_span_t *s, const void *where, const void *bad,
                                                   const char *op)
{
    tidei_misuse(op, where,
                 "heap corruption: a free block's link was overwritten (decodes to %p, not a block of span "
                 "%p-%p of %u-byte blocks): a write after free, or an overflow from the block before",
                 bad, (void *)s->start, (void *)(s->start + s->built_bytes), s->block_size);
}

tide_free_block_t *tidei_link_next(const tide_span_t *s, const tide_free_block_t *b, const char *op)
{
    const tide_free_block_t *n;
    if (tide_unlikely(!tidei_link_next_ok(s, b, &n)))
        link_corrupt(s, b, n, op);
    return (tide_free_block_t *)n;
}

void tidei_link_bad_head(const tide_span_t *s, const void *head, const char *op)
{
    link_corrupt(s, head, head, op);
}

/* Takes the whole remote list of s (keeping its notify state) into *list
 * and returns how many blocks it holds, which no longer count as out; a
 * bad head is reported as found by op.  The list's links are checked as
 * they are followed later (malloc checks every head it pops).  Owner only
 * (or whoever holds an abandoned span under tidei_heaps_lock). */
static size_t take_remote(tide_span_t *s, tide_free_block_t **list, const char *op)
{
    uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
    *list = NULL;
    if ((old & ~TIDE_RS_MASK) == 0)
        return 0;
    while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, old & TIDE_RS_MASK, acquire, relaxed))
        ;
    *list = (tide_free_block_t *)(old & TIDE_RS_PTR_MASK);
    size_t n = old >> TIDE_RS_COUNT_SHIFT;
    if (!*list)
        return 0;
    if (!link_target_ok(s, *list))
        tidei_link_bad_head(s, *list, op);
    tide_debug_assert(n >= 1 && n <= tidei_span_used(s));
    s->used_rel = (uint16_t)(s->used_rel - n);
    return n;
}

/* Puts list, taken from the remote list of s, on local_free: as it is
 * when local_free is empty, else with its end found (each link checked)
 * and joined to local_free. */
static void local_free_add(tide_span_t *s, tide_free_block_t *list, const char *op)
{
    if (!list)
        return;
    if (s->local_free) {
        tide_free_block_t *tail = list;
        for (tide_free_block_t *t; (t = tidei_link_next(s, tail, op)) != NULL; tail = t)
            ;
        tail->link = tidei_link_encode(s, s->local_free);
    }
    s->local_free = list;
}

/* The remote frees of s onto local_free, outside malloc (a trim, a sweep,
 * an exit); how many there were. */
size_t tidei_span_take_remote(tide_span_t *s)
{
    tide_free_block_t *list;
    size_t n = take_remote(s, &list, "free");
    local_free_add(s, list, "free");
    return n;
}

/* Takes in the remote frees of s and, if s->free is empty, refills it:
 * with the owner's other frees (local_free), the remote ones waiting on
 * local_free for the next refill, or with the remote ones, else (carve)
 * with fresh blocks.  With carve, leaves s->free NULL only when every block
 * is out; without, also when the blocks left are not carved yet.  No list
 * is walked unless local_free and s->free both have blocks when remote
 * frees come in: joining two lists walks one to its end, a cache miss per
 * block (and a remote list's blocks were last written by another core).
 * Returns how many remote frees it took.  Owner only. */
size_t tidei_span_collect(tide_span_t *s, bool carve)
{
    tide_free_block_t *list;
    size_t got = take_remote(s, &list, "malloc");
    if (!s->free) {
        if (s->local_free) {
            s->free = s->local_free;
            s->local_free = list;
        } else {
            s->free = list;
        }
        if (carve && !s->free && s->n_built < s->n_blocks)
            span_extend(s);
    } else {
        local_free_add(s, list, "malloc");
    }
    return got;
}

/* Whether b is on list, a free list of s, walking at most max nodes. */
static bool list_holds(const tide_span_t *s, const tide_free_block_t *list, const tide_free_block_t *b, size_t max)
{
    if (list && !link_target_ok(s, list))
        tidei_link_bad_head(s, list, "free");
    for (size_t i = 0; list && i < max; list = tidei_link_next(s, list, "free"), i++)
        if (list == b)
            return true;
    return false;
}

/* Confirms a suspected double free (b carries the free key): whether b is
 * free.  The owner of s searches all its lists, so a program that stored
 * the key's value in a live block is never accused.  Another thread cannot
 * read the owner's private lists safely, and takes the key as proof: every
 * block has its key cleared when it is handed out, so a live block holds it
 * only if the program wrote tide's random per-process secret there. */
bool tidei_span_holds_free(tide_span_t *s, const tide_free_block_t *b, bool owner)
{
    if (!owner)
        return true;
    size_t max = s->n_blocks;
    const tide_free_block_t *remote = (const tide_free_block_t *)(atomic_load_explicit(&s->remote, acquire) & TIDE_RS_PTR_MASK);
    return list_holds(s, remote, b, max) || list_holds(s, s->free, b, max) || list_holds(s, s->local_free, b, max);
}
