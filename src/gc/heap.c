/* gc/heap.c — the GC heap's memory: GC spans and their descriptors, the
 * all-spans list, the pools of (kind, class), the per-thread free lists,
 * allocation (small and big), GC_FREE, GC_REALLOC, and the lookup of an
 * address (GC_base, GC_size).
 *
 * Spans.  GC blocks live in spans of kind TIDE_SPAN_GC, cut from tide's page
 * allocator like malloc's spans: small requests (<= 64 KiB) from a span of
 * one size class (malloc's classes), bigger ones in a span of their own
 * (a page run, or a huge mapping whose descriptor is switched to GC).  Each
 * span has a gc_span_t out of band (span->gc): its kind (NORMAL, scanned;
 * ATOMIC, never scanned; UNCOLLECTABLE, a root until GC_FREE'd) and two
 * bitmaps, one bit per block: `mark` (set by the last collection) and
 * `alloc` (the block is out, or on the free list of the thread holding the
 * span).  The page map gives, for any word, its span, hence its block: the
 * pointer test of the marker, interior pointers included.
 *
 * Allocation.  A thread holds at most one span per (kind, class); its free
 * blocks are on the thread's free list, which malloc's pop, with no lock and
 * no atomic.  When the list runs dry the thread releases the span (to the
 * pool's `full` list) and takes another from the pool of its (kind, class)
 * under the pool's lock: an `avail` span (swept, with free blocks), else an
 * `empty` one (all its blocks died at the last collection), else an
 * unswept one, which it sweeps then (sweep.c: alloc &= mark), else a new
 * span (the other pools' empty spans are given back to the page allocator
 * first).  Taking a span sets the alloc bit of every block put on the list.
 * Big blocks are on a list of their own (big_lock).
 *
 * Locks (order: gc_internal.h): a pool's lock, big_lock and all_lock, each
 * taken inside crit only, never two pool locks at once; tidei_arena.lock
 * (briefly, after them) to switch a huge span's kind and to get descriptor
 * memory; the page allocator's locks through tidei_heap_new_run,
 * tidei_huge_alloc and their frees. */
#include "gc_internal.h"

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;     /* the all-spans list, descriptor pools */
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;     /* the big-block list */
gc_pool_t tidei_gc_pools[GK_N][TIDE_N_CLASSES];
gc_span_t *tidei_gc_all_spans;
gc_span_t *tidei_gc_bigs;
static gc_span_t *desc_pool[TIDE_N_CLASSES + 1]; /* recycled descriptors per class; [N] big ones */
_Atomic uintptr_t tidei_gc_heap_lo = UINTPTR_MAX, tidei_gc_heap_hi;

/* Figures; atomics are touched on slow paths only. */
_Atomic size_t tidei_gc_heap_bytes;
_Atomic size_t tidei_gc_allocd_since;
_Atomic uint64_t tidei_gc_allocd_total;
size_t tidei_gc_max_heap;
_Atomic uint64_t tidei_gc_n_freed_explicit;

void *(*tidei_gc_oom_fn)(size_t);

/* ---- span descriptors ---- */

/* A descriptor for class cls (TIDE_N_CLASSES: big) with room for n blocks.
 * all_lock held. */
static gc_span_t *desc_new(int cls, uint32_t n_blocks)
{
    gc_span_t *g = desc_pool[cls];
    uint32_t words = (n_blocks + 63) / 64;
    if (g && g->words_cap >= words) {
        desc_pool[cls] = g->pool_next;
    } else {
        pthread_mutex_lock(&tidei_arena.lock);
        g = tidei_meta_alloc(sizeof(gc_span_t) + (size_t)words * (sizeof(uint64_t) + 64));
        pthread_mutex_unlock(&tidei_arena.lock);
        if (!g)
            return NULL;
        g->words_cap = words;
    }
    /* words is exact: the bitmaps' loops mask the last word only (spans
     * of one class have two sizes: gc_span_pages) */
    uint32_t cap = g->words_cap;
    memset(g, 0, sizeof *g + (size_t)words * (sizeof(uint64_t) + 64));
    g->words_cap = cap;
    g->words = words;
    g->n_blocks = n_blocks;
    return g;
}

static void heap_bounds(uintptr_t lo, uintptr_t hi)
{
    uintptr_t cur = atomic_load_explicit(&tidei_gc_heap_lo, relaxed);
    while (lo < cur && !atomic_compare_exchange_weak_explicit(&tidei_gc_heap_lo, &cur, lo, relaxed, relaxed))
        ;
    cur = atomic_load_explicit(&tidei_gc_heap_hi, relaxed);
    while (hi > cur && !atomic_compare_exchange_weak_explicit(&tidei_gc_heap_hi, &cur, hi, relaxed, relaxed))
        ;
}

/* Links g (fully set up) into the all-spans list and publishes it in its
 * span.  all_lock not held. */
static void span_publish(gc_span_t *g)
{
    pthread_mutex_lock(&all_lock);
    tide_list_push(tidei_gc_all_spans, g, next, prev);
    __atomic_store_n(&g->span->gc, g, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&all_lock);
    size_t bytes = g->span->n_pages << TIDE_PAGE_SHIFT;
    atomic_fetch_add_explicit(&tidei_gc_heap_bytes, bytes, relaxed);
    heap_bounds(g->span->start, g->span->start + bytes);
}

/* Unlinks g from the all-spans list; the caller frees its pages, then
 * recycles g (tidei_gc_desc_recycle).  all_lock not held, or the world stopped
 * (`locked`). */
void tidei_gc_span_unpublish(gc_span_t *g, bool locked)
{
    if (!locked)
        pthread_mutex_lock(&all_lock);
    tide_list_remove(tidei_gc_all_spans, g, next, prev);
    __atomic_store_n(&g->span->gc, NULL, __ATOMIC_RELAXED);
    atomic_fetch_sub_explicit(&tidei_gc_heap_bytes, g->span->n_pages << TIDE_PAGE_SHIFT, relaxed);
    if (!locked)
        pthread_mutex_unlock(&all_lock);
}

/* Puts g, unpublished, its pages freed, back for reuse. */
void tidei_gc_desc_recycle(gc_span_t *g)
{
    pthread_mutex_lock(&all_lock);
    int slot = g->big ? TIDE_N_CLASSES : g->cls;
    g->pool_next = desc_pool[slot];
    desc_pool[slot] = g;
    pthread_mutex_unlock(&all_lock);
}

/* Gives the pages of span s (its descriptor already unpublished) back. */
void tidei_gc_span_pages_free(tide_span_t *s, bool huge)
{
    if (huge) {
        pthread_mutex_lock(&tidei_arena.lock);
        s->kind = TIDE_SPAN_HUGE;
        pthread_mutex_unlock(&tidei_arena.lock);
        tidei_huge_free(s);
    } else {
        tidei_arena_free_run(s, false);
    }
}

/* ---- pools ---- */

void tidei_gc_pool_push(gc_span_t **head, gc_span_t *g, int which)
{
    tide_list_push(*head, g, lnext, lprev);
    g->list = (uint8_t)which;
}

static gc_span_t **pool_list(gc_pool_t *p, int which)
{
    return which == GL_SWEEP ? &p->sweep : which == GL_AVAIL ? &p->avail : which == GL_EMPTY ? &p->empty : &p->full;
}

/* Takes g off the pool list it is on.  Pool lock held. */
static void pool_remove(gc_pool_t *p, gc_span_t *g)
{
    if (g->list == GL_EMPTY)
        atomic_fetch_sub_explicit(&tidei_gc_empty_bytes, g->span->n_pages << TIDE_PAGE_SHIFT, relaxed);
    gc_span_t **head = pool_list(p, g->list);
    tide_list_remove(*head, g, lnext, lprev);
    g->list = GL_NONE;
}

#define TAKE_BYTES ((size_t)8192)   /* what a refill of a free list takes from a span, about */

/* Zeroes block b of size bytes but its first two words (the link and the
 * free key, which malloc clears): inline for small blocks, where a call
 * to memset would cost more than the stores. */
static inline void clear_tail(gc_link_t *b, size_t size)
{
    if (size <= 128) {
        /* sizes up to 128 are multiples of 16; a loop here would become
         * a `rep stos`, whose start-up costs more than these stores */
        uint64_t *w = (uint64_t *)b;
        switch (size >> 4) {
        case 8: w[14] = 0; w[15] = 0; /* fall through */
        case 7: w[12] = 0; w[13] = 0; /* fall through */
        case 6: w[10] = 0; w[11] = 0; /* fall through */
        case 5: w[8] = 0; w[9] = 0;   /* fall through */
        case 4: w[6] = 0; w[7] = 0;   /* fall through */
        case 3: w[4] = 0; w[5] = 0;   /* fall through */
        case 2: w[2] = 0; w[3] = 0;   /* fall through */
        default: break;
        }
    } else {
        memset((char *)b + 16, 0, size - 16);
    }
}

#define POPULATE_BYTES ((size_t)64 << 10) /* made resident at most at once ahead of the free lists */

/* Makes the pages of fresh span g resident up to byte `end` (from its
 * start) at least, up to twice as much as before (MADV_POPULATE_WRITE):
 * one system call instead of a page fault per page, which costs several
 * microseconds in a virtual machine (gcbench: a third of span_take_free's
 * time).  The pages are about to be written by the linking of the free
 * list anyway: blocks of a page or less only, where every page holds a
 * block's link. */
static void span_populate(gc_span_t *g, size_t end)
{
    if (end <= g->pop_end)
        return;
    size_t span_bytes = g->span->n_pages << TIDE_PAGE_SHIFT;
    /* as much again as is resident (at most POPULATE_BYTES), and what is
     * needed now: a span a thread uses little stays small in RSS */
    size_t step = g->pop_end < POPULATE_BYTES ? g->pop_end : POPULATE_BYTES;
    size_t to = (end + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (to < g->pop_end + step)
        to = g->pop_end + step;
    if (to > span_bytes)
        to = span_bytes;
    tidei_os_populate((void *)(g->span->start + g->pop_end), to - g->pop_end);
    g->pop_end = (uint32_t)to;
}

/* Puts free blocks of g (held by the caller) on a list, from bitmap word
 * g->take_pos on, until the list holds about TAKE_BYTES (at least one
 * block, if any is left), sets their alloc bits and returns the list (NULL
 * when the span has no free block left).  Taking a page or two at a time
 * keeps the blocks just linked in the cache until malloc hands them out.
 * Free blocks not taken yet keep alloc = 0: not traced, never swept (the
 * span is held). */
/* Links the k blocks of `size` bytes from address a on after *tail
 * (cleared but for their first two words if `clear`); the new tail. */
static inline gc_link_t **link_run(gc_link_t **tail, uintptr_t a, size_t size, uint32_t k, bool clear)
{
    for (uint32_t j = 0; j < k; j++, a += size) {
        gc_link_t *b = (gc_link_t *)a;
        if (clear)
            clear_tail(b, size);
        *tail = b;
        tail = &b->next;
    }
    return tail;
}

static gc_link_t *span_take_free(gc_thread_t *t, gc_span_t *g)
{
    uint64_t *al = ALLOCS(g);
    uintptr_t start = g->span->start;
    size_t size = g->size;  /* (a local: the stores to blocks could alias g) */
    uint32_t words = g->words;
    gc_link_t *head = NULL, **tail = &head;
    size_t n = 0, want = TAKE_BYTES / size + 1;
    uint32_t w = g->take_pos;
    bool clear = g->kind != GK_ATOMIC && !g->fresh;  /* malloc then clears only the two first words */
    if (g->fresh && size <= TIDE_PAGE_SIZE && w < words) {  /* (bigger: the links touch some pages only) */
        size_t end = (((size_t)w * 64 + want + 63) & ~(size_t)63) * size;  /* whole bitmap words are taken */
        span_populate(g, end < (size_t)g->n_blocks * size ? end : (size_t)g->n_blocks * size);
    }
    for (; w < words && n < want; w++) {
        uint64_t free = ~al[w];
        if (w == words - 1 && (g->n_blocks & 63))
            free &= ((uint64_t)1 << (g->n_blocks & 63)) - 1;
        al[w] |= free;
        if (free == ~(uint64_t)0) {  /* 64 blocks in a row (a new or emptied span): no bit scan */
            uintptr_t a = start + (uintptr_t)w * 64 * size;
            if (clear)
                memset((void *)a, 0, 64 * size);  /* one fill, then the links alone */
            tail = link_run(tail, a, size, 64, false);
            n += 64;
            continue;
        }
        while (free) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(free);
            free &= free - 1;
            tail = link_run(tail, start + (uintptr_t)i * size, size, 1, clear);
            n++;
        }
    }
    g->take_pos = w;
    *tail = NULL;
    t->allocd_pending += n * size;
    if (t->allocd_pending >= TIDE_GC_ALLOC_FLUSH)
        tidei_gc_allocd_flush(t);
    return head;
}

/* Adds what t took for allocation since its last flush to the shared
 * figures (one atomic add each, rather than two per refill on lines every
 * allocating thread writes).  t's own thread, or the collector with t
 * stopped. */
void tidei_gc_allocd_flush(gc_thread_t *t)
{
    size_t n = t->allocd_pending;
    if (!n)
        return;
    t->allocd_pending = 0;
    atomic_fetch_add_explicit(&tidei_gc_allocd_since, n, relaxed);
    atomic_fetch_add_explicit(&tidei_gc_allocd_total, n, relaxed);
}

/* Clears the alloc bit of every block on list (blocks of g). */
static void list_unalloc(gc_span_t *g, gc_link_t *list)
{
    for (; list; list = list->next)
        BIT_CLEAR(ALLOCS(g), tidei_gc_block_index(g, (uintptr_t)list));
}

/* Releases the span t holds for (k, cls): what other threads freed into it
 * goes back to free, and it joins the pool's full list (or avail list if it
 * has free blocks: the thread is exiting with its list).  Inside crit. */
void tidei_gc_span_release(gc_thread_t *t, int k, int cls)
{
    gc_span_t *g = t->held[k][cls];
    if (!g)
        return;
    gc_pool_t *p = &tidei_gc_pools[k][cls];
    list_unalloc(g, t->fl[k][cls]);
    t->fl[k][cls] = NULL;
    t->held[k][cls] = NULL;
    pthread_mutex_lock(&p->lock);
    list_unalloc(g, g->pending);
    g->pending = NULL;
    g->held = 0;
    g->fresh = 0;
    bool has_free = false;
    for (uint32_t w = 0; w < g->words && !has_free; w++) {
        uint64_t free = ~ALLOCS(g)[w];
        if (w == g->words - 1 && (g->n_blocks & 63))
            free &= ((uint64_t)1 << (g->n_blocks & 63)) - 1;
        has_free = free != 0;
    }
    tidei_gc_pool_push(has_free ? &p->avail : &p->full, g, has_free ? GL_AVAIL : GL_FULL);
    pthread_mutex_unlock(&p->lock);
}

/* The pages of a new GC span of (k, cls) for thread t: malloc's span of
 * the class cut to a quarter, down to 16 KiB and at least 8 blocks, until
 * t has made GC_SPAN_GROW_AFTER spans of (k, cls); then malloc's span.
 * Every thread holds a span of each (kind, class) it uses, and a language
 * runtime uses many classes in a few threads: ECL's threads held about
 * 120 spans, 6.6 MB of free blocks, with malloc's 64 KiB spans.  But a
 * thread that keeps allocating one class pays for small spans: a refill
 * from the pool (its lock, a sweep) every 16 KiB, and a new stream of
 * misses for the hardware prefetcher each time (gcbench, 2 threads, 6
 * interleaved runs: 99 -> 111 Mnodes/s with malloc's spans throughout,
 * ECL 25.0 -> 27.6 MB of peak RSS; with the growth rule, ECL's peak RSS
 * does not change). */
#define GC_SPAN_GROW_AFTER 4
static size_t gc_span_pages(const gc_thread_t *t, int k, int cls)
{
    size_t pages = tidei_class_pages[cls];
    if (t && t->n_new_spans[k][cls] >= GC_SPAN_GROW_AFTER)
        return pages;
    size_t min = ((size_t)tidei_class_size[cls] * 8 + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    if (min < 4)
        min = 4;
    return pages / 4 > min ? pages / 4 : (min < pages ? min : pages);
}

/* A new span of (k, cls), held by t, or NULL.  Inside crit. */
static gc_span_t *span_new(gc_thread_t *t, int k, int cls)
{
    tide_span_t *s = tidei_heap_new_run(gc_span_pages(t, k, cls), 0, TIDE_SPAN_GC);
    if (!s)
        return NULL;
    if (t->n_new_spans[k][cls] < GC_SPAN_GROW_AFTER) {
        t->n_new_spans[k][cls]++;
    } else if (s->is_zero) {
        /* A thread that keeps allocating a class asks for transparent
         * huge pages in the 2 MiB around its new spans (TIDE_CONF thp; a
         * hint, once per 2 MiB in a row): a heap that is allocated and
         * marked all over pays a TLB miss, a two-level page walk in a
         * VM, on nearly every page it touches, and a fault per 4 KiB
         * when it grows.  gcbench, 6 interleaved runs: 1 thread 99 ->
         * 117 Mnodes/s, 2 threads 133 -> 152, CPU -17 %; peak RSS +0.4
         * and +3.6 MB (a 2 MiB page is resident whole), ECL +1.3 MB,
         * w3m +1.5-3 MB (still below libgc's).  Only pages never
         * touched (is_zero), where the first fault can take a huge
         * page. */
        uintptr_t region = s->start & ~(TIDE_THP_SIZE - 1);
        if (region != t->thp_region) {
            t->thp_region = region;
            tidei_os_huge_pages((void *)region, TIDE_THP_SIZE, true);
        }
    }
    tidei_span_init_small(s, cls);
    pthread_mutex_lock(&all_lock);
    gc_span_t *g = desc_new(cls, s->n_blocks);
    pthread_mutex_unlock(&all_lock);
    if (!g) {
        tidei_arena_free_run(s, false);
        return NULL;
    }
    g->span = s;
    g->size = s->block_size;
    g->kind = (uint8_t)k;
    g->cls = (uint8_t)cls;
    g->held = 1;
    g->fresh = s->is_zero;
    g->swept = atomic_load_explicit(&tidei_gc_no, relaxed);
    span_publish(g);
    return g;
}

/* Whether a new span of bytes would pass the heap limit. */
static bool over_limit(size_t bytes)
{
    return tidei_gc_max_heap && atomic_load_explicit(&tidei_gc_heap_bytes, relaxed) + bytes > tidei_gc_max_heap;
}

/* Gives the spans on every pool's empty list back to the page allocator:
 * a class that needs a new span finds their pages there, rather than new
 * ones (the mix of classes changes from a cycle to the next; w3m: 2 MB of
 * peak RSS).  Its own empty list is empty (refill looked).  Inside crit,
 * no pool lock held. */
static tide_noinline void empties_release(void)
{
    gc_span_t *list = NULL;
    for (int k = 0; k < GK_N; k++) {
        for (int c = 0; c < TIDE_N_CLASSES; c++) {
            gc_pool_t *p = &tidei_gc_pools[k][c];  /* (a few hundred free locks, once a cycle at most) */
            pthread_mutex_lock(&p->lock);
            while (p->empty) {
                gc_span_t *g = p->empty;
                pool_remove(p, g);
                g->list = GL_DEAD;
                g->lnext = list;
                list = g;
            }
            pthread_mutex_unlock(&p->lock);
        }
    }
    while (list) {
        gc_span_t *g = list;
        list = g->lnext;
        tidei_gc_span_unpublish(g, false);
        tidei_gc_span_pages_free(g->span, false);
        tidei_gc_desc_recycle(g);
    }
}

/* Fills t's free list of (k, cls): blocks other threads freed into the
 * held span, else another span.  False when memory (or the limit) ran out.
 * Inside crit. */
static bool refill(gc_thread_t *t, int k, int cls, bool may_grow)
{
    gc_pool_t *p = &tidei_gc_pools[k][cls];
    gc_span_t *g = t->held[k][cls];
    if (g && __atomic_load_n(&g->pending, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&p->lock);
        gc_link_t *list = g->pending;
        g->pending = NULL;
        pthread_mutex_unlock(&p->lock);
        if (list) {
            t->fl[k][cls] = list;
            return true;
        }
    }
    if (g && g->take_pos < g->words) {
        gc_link_t *list = span_take_free(t, g);
        if (list) {
            t->fl[k][cls] = list;
            return true;
        }
    }
    tidei_gc_span_release(t, k, cls);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        g = p->avail;
        if (!g)
            g = p->empty;
        if (!g)
            g = p->sweep;
        if (g) {
            pool_remove(p, g);
            g->held = 1;
        }
        pthread_mutex_unlock(&p->lock);
        if (!g)
            break;
        if (tidei_gc_span_sweep(g) == 0) {
            pthread_mutex_lock(&p->lock);
            g->held = 0;
            tidei_gc_pool_push(&p->full, g, GL_FULL);
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        t->held[k][cls] = g;
        g->take_pos = 0;
        t->fl[k][cls] = span_take_free(t, g);
        return true;
    }
    if (!may_grow)
        return false;
    if (atomic_load_explicit(&tidei_gc_empty_bytes, relaxed))
        empties_release();  /* (before the limit is checked: they count in the heap) */
    if (over_limit(gc_span_pages(t, k, cls) << TIDE_PAGE_SHIFT))
        return false;
    g = span_new(t, k, cls);
    if (!g)
        return false;
    t->held[k][cls] = g;
    t->fl[k][cls] = span_take_free(t, g);
    return true;
}

/* Clears (unalloc) or restores the alloc bits of every block on a free
 * list of a stopped thread: blocks on a list are not traced. */
void tidei_gc_free_lists_alloc(bool set)
{
    for (gc_thread_t *t = tidei_gc_threads; t; t = t->next) {
        for (int k = 0; k < GK_N; k++) {
            for (int c = 0; c < TIDE_N_CLASSES; c++) {
                gc_span_t *g = t->held[k][c];
                if (!g)
                    continue;
                for (gc_link_t *b = t->fl[k][c]; b; b = b->next) {
                    uint32_t i = tidei_gc_block_index(g, (uintptr_t)b);
                    if (set)
                        BIT_SET(ALLOCS(g), i);
                    else
                        BIT_CLEAR(ALLOCS(g), i);
                }
                for (gc_link_t *b = g->pending; b; b = b->next) {
                    uint32_t i = tidei_gc_block_index(g, (uintptr_t)b);
                    if (set)
                        BIT_SET(ALLOCS(g), i);
                    else
                        BIT_CLEAR(ALLOCS(g), i);
                }
            }
        }
    }
}

/* ---- allocation ---- */

static void *call_oom(size_t n)
{
    if (tidei_gc_oom_fn)
        return tidei_gc_oom_fn(n);
    errno = ENOMEM;
    return NULL;
}

/* A big block (> TIDE_SMALL_MAX) of kind k. */
static void *gc_big_alloc(gc_thread_t *t, size_t n, int k)
{
    if (n > PTRDIFF_MAX)
        return call_oom(n);
    size_t pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    tidei_gc_note_allocating(t);
    if (tidei_gc_should_collect())
        tidei_gc_cycle(false);
    for (int attempt = 0;; attempt++) {
        if (over_limit(pages << TIDE_PAGE_SHIFT) && atomic_load_explicit(&tidei_gc_empty_bytes, relaxed)) {
            tidei_gc_crit_enter(t);
            empties_release();  /* they count in the heap */
            tidei_gc_crit_leave(t);
        }
        if (!over_limit(pages << TIDE_PAGE_SHIFT)) {
            tidei_gc_crit_enter(t);
            tide_span_t *s = NULL;
            bool huge = false;
            if (pages <= TIDE_CHUNK_PAGES) {
                s = tidei_heap_new_run(pages, 0, TIDE_SPAN_GC);
            } else {
                void *p = tidei_huge_alloc(pages << TIDE_PAGE_SHIFT, 0, false);
                if (p) {
                    s = tidei_pagemap_lookup(p);
                    pthread_mutex_lock(&tidei_arena.lock);
                    s->kind = TIDE_SPAN_GC;
                    pthread_mutex_unlock(&tidei_arena.lock);
                    huge = true;
                }
            }
            gc_span_t *g = NULL;
            if (s) {
                pthread_mutex_lock(&all_lock);
                g = desc_new(TIDE_N_CLASSES, 1);
                pthread_mutex_unlock(&all_lock);
                if (!g)
                    tidei_gc_span_pages_free(s, huge);
            }
            if (g) {
                g->span = s;
                g->big = 1;
                g->huge = huge;
                g->kind = (uint8_t)k;
                g->size = s->n_pages << TIDE_PAGE_SHIFT;
                g->req = n;
                g->swept = atomic_load_explicit(&tidei_gc_no, relaxed);
                if (k != GK_ATOMIC && !s->is_zero)
                    memset((void *)s->start, 0, n);
                BIT_SET(ALLOCS(g), 0);
                pthread_mutex_lock(&big_lock);
                tide_list_push(tidei_gc_bigs, g, lnext, lprev);
                span_publish(g);
                pthread_mutex_unlock(&big_lock);
                atomic_fetch_add_explicit(&tidei_gc_allocd_since, g->size, relaxed);
                atomic_fetch_add_explicit(&tidei_gc_allocd_total, g->size, relaxed);
                tidei_gc_crit_leave(t);
                return (void *)s->start;
            }
            tidei_gc_crit_leave(t);
        }
        if (attempt == 1)
            return call_oom(n);
        tidei_gc_cycle(true);
    }
}

static tide_noinline void *small_alloc_slow(size_t n, int k);

/* The fast path: a block from the calling thread's free list of (k,
 * class).  Blocks on a list are zero but for their first two words (the
 * link and the free key): span_take_free and GC_FREE clear the others. */
static inline void *gc_alloc(size_t n, int k)
{
    if (tide_likely(n <= TIDE_SMALL_MAX)) {
        gc_thread_t *t = tidei_gc_tl;
        size_t cls = tidei_class_of(n);
        if (tide_likely(t != NULL)) {
            gc_link_t *b = t->fl[k][cls];
            if (tide_likely(b != NULL)) {
                t->fl[k][cls] = b->next;
                b->next = NULL;
                b->key = 0;
                return b;
            }
        }
    }
    return small_alloc_slow(n, k);
}

static tide_noinline void *small_alloc_slow(size_t n, int k)
{
    gc_thread_t *t = tidei_gc_thread();
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > TIDE_SMALL_MAX)
        return gc_big_alloc(t, n, k);
    int cls = (int)tidei_class_of(n);
    tidei_gc_note_allocating(t);
    if (!t->fl[k][cls] && tidei_gc_should_collect())
        tidei_gc_cycle(false);
    for (int attempt = 0; !t->fl[k][cls]; attempt++) {
        tidei_gc_crit_enter(t);
        bool ok = refill(t, k, cls, true);
        tidei_gc_crit_leave(t);
        if (ok)
            break;
        if (attempt == 1)
            return call_oom(n);
        tidei_gc_cycle(true);
    }
    return gc_alloc(n, k);
}

/* ---- the entry points used by api.c ---- */

void *tidei_gc_malloc(size_t n, int kind)
{
    return gc_alloc(n, kind);
}

/* What the page map says about p for the GC: its gc span and block index,
 * or NULL when p is not in a GC block (of a span fully set up). */
gc_span_t *tidei_gc_lookup(const void *p, uint32_t *idx, uintptr_t *base)
{
    tide_span_t *s = tidei_pagemap_lookup(p);
    if (!s || s->kind != TIDE_SPAN_GC)
        return NULL;
    gc_span_t *g = __atomic_load_n(&s->gc, __ATOMIC_ACQUIRE);
    if (!g)
        return NULL;
    if (g->big) {
        *idx = 0;
        *base = s->start;
        return (uintptr_t)p < s->start + g->size ? g : NULL;
    }
    uint32_t i = tidei_gc_block_index(g, (uintptr_t)p);
    if (i >= g->n_blocks)
        return NULL;
    *idx = i;
    *base = s->start + (uintptr_t)i * g->size;
    return g;
}

/* GC_base: the start of the GC block p points into, or NULL. */
void *tidei_gc_base(const void *p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    return g ? (void *)base : NULL;
}

/* GC_size: the usable bytes of GC block p (its start), 0 if none. */
size_t tidei_gc_size(const void *p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    if (!g)
        return 0;
    return g->big ? g->req : g->size;
}

/* The kind of GC block p, -1 if none. */
int tidei_gc_kind(const void *p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    return g ? g->kind : -1;
}

static tide_noinline void gc_report_free(const void *p, const char *op)
{
    tide_span_t *s = tidei_pagemap_lookup(p);
    if (!s)
        tidei_misuse_detailed(op, p, tidei_symbolize_describe_foreign, "pointer not allocated by the GC heap");
    if (s->kind == TIDE_SPAN_FREE)
        tidei_misuse(op, p, "GC block already freed");
    if (s->kind != TIDE_SPAN_GC)
        tidei_misuse(op, p, "not a GC block (a malloc block: use free)");
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    if (g && base != (uintptr_t)p)
        tidei_misuse(op, p, "interior pointer (GC block %p of %zu bytes)", (void *)base, g->size);
    tidei_misuse(op, p, "GC block already freed");
}

/* Whether b is on list (at most max nodes). */
static bool on_list(const gc_link_t *list, const gc_link_t *b, size_t max)
{
    for (size_t n = 0; list && n < max; list = list->next, n++)
        if (list == b)
            return true;
    return false;
}

/* GC_FREE of p: checked; the block is free at once (small blocks go back
 * to the holder's list, or to the span's pending list if another thread
 * holds the span). */
void tidei_gc_free(void *p, const char *op)
{
    if (!p)
        return;
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    if (!g || base != (uintptr_t)p)
        gc_report_free(p, op);
    gc_thread_t *t = tidei_gc_thread();
    if (!t)
        return;
    atomic_fetch_add_explicit(&tidei_gc_n_freed_explicit, 1, relaxed);
    tidei_gc_crit_enter(t);
    if (g->big) {
        pthread_mutex_lock(&big_lock);
        if (!BIT_TEST(ALLOCS(g), 0) || g->list == GL_DEAD) {
            pthread_mutex_unlock(&big_lock);
            tidei_gc_crit_leave(t);
            gc_report_free(p, op);
        }
        BIT_CLEAR(ALLOCS(g), 0);
        tide_list_remove(tidei_gc_bigs, g, lnext, lprev);
        pthread_mutex_unlock(&big_lock);
        tidei_gc_span_unpublish(g, false);
        tidei_gc_span_pages_free(g->span, g->huge);
        tidei_gc_desc_recycle(g);
        tidei_gc_crit_leave(t);
        return;
    }
    gc_link_t *b = p;
    int k = g->kind, c = g->cls;
    if (t->held[k][c] == g) {
        if (!BIT_TEST(ALLOCS(g), i) || (b->key == tidei_free_key && (on_list(t->fl[k][c], b, g->n_blocks) ||
                                                                     on_list(g->pending, b, g->n_blocks)))) {
            tidei_gc_crit_leave(t);
            gc_report_free(p, op);
        }
        if (k != GK_ATOMIC)
            memset(b, 0, g->size);
        b->key = tidei_free_key;
        b->next = t->fl[k][c];
        t->fl[k][c] = b;
        tidei_gc_crit_leave(t);
        return;
    }
    gc_pool_t *pl = &tidei_gc_pools[k][c];
    pthread_mutex_lock(&pl->lock);
    /* Another thread holds the span: its free list is not ours to read,
     * and the free key (cleared when a block is handed out) is the proof,
     * as for malloc's remote frees. */
    bool bad = !BIT_TEST(ALLOCS(g), i) || (g->held && b->key == tidei_free_key);
    if (bad) {
        pthread_mutex_unlock(&pl->lock);
        tidei_gc_crit_leave(t);
        gc_report_free(p, op);
    }
    if (k != GK_ATOMIC)
        memset(b, 0, g->size);
    b->key = tidei_free_key;
    if (g->held) {
        b->next = g->pending;
        g->pending = b;
    } else {
        BIT_CLEAR(ALLOCS(g), i);
        if (g->list == GL_FULL) {
            pool_remove(pl, g);
            tidei_gc_pool_push(&pl->avail, g, GL_AVAIL);
        }
    }
    pthread_mutex_unlock(&pl->lock);
    tidei_gc_crit_leave(t);
}

/* GC_REALLOC. */
void *tidei_gc_realloc(void *p, size_t n)
{
    if (!p)
        return gc_alloc(n, GK_NORMAL);
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    if (!g || base != (uintptr_t)p || !BIT_TEST(ALLOCS(g), i))
        gc_report_free(p, "GC_REALLOC");
    if (n == 0) {
        tidei_gc_free(p, "GC_REALLOC");
        return NULL;
    }
    size_t have = g->big ? g->req : g->size;
    if (!g->big && n <= have && n > have / 2)
        return p;
    if (g->big && n <= g->size && n > g->size / 2) {
        if (n > g->req && g->kind != GK_ATOMIC)
            memset((char *)p + g->req, 0, n - g->req);
        g->req = n;  /* the holder of p is the caller; the marker reads it with the world stopped */
        return p;
    }
    void *q = gc_alloc(n, g->kind);
    if (!q)
        return NULL;
    memcpy(q, p, n < have ? n : have);
    tidei_gc_free(p, "GC_REALLOC");
    return q;
}

__attribute__((noreturn)) void tidei_gc_misuse_free(const void *p, const char *op)
{
    tidei_misuse(op, p, "block of the GC heap (GC_MALLOC'd: free it with GC_FREE, or leave it to the collector)");
}

void tidei_gc_set_max_heap(size_t n)
{
    tidei_gc_max_heap = n;
}

