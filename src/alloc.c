/* alloc.c — the allocation entry points.  The fast path (a size class, one
 * span, pop a block) is inline in malloc; everything else is in noinline
 * slow paths: setting up the thread's heap, refilling a class, large and
 * huge blocks, the backup heap of exited threads. */
#include "tide_internal.h"

/* Pops a block of class cls from h (its sampler already charged): from
 * the direct span as the fast path does, marked the same way, or under
 * h->lock after refilling the class.  Sets errno = ENOMEM and returns NULL
 * when memory ran out. */
static void *class_pop(tide_heap_t *h, int cls)
{
    tidei_fast_enter(h);
    tide_span_t *s = tidei_direct(h, cls);
    tide_block_t *b = s->free;
    if (b) {
        s->free = b->next;
        tidei_used_inc(s);
        b->key = 0;
        h->ctr.malloc[cls]++;
        tidei_fast_leave(h);
        return b;
    }
    tidei_fast_leave(h);
    pthread_mutex_lock(&h->lock);
    s = tidei_heap_find_span(h, cls);
    if (s) {
        b = s->free;
        s->free = b->next;
        s->used++;
        b->key = 0;
        h->ctr.malloc[cls]++;
    }
    pthread_mutex_unlock(&h->lock);
    if (!s)
        errno = ENOMEM;
    return b;
}

/* Page runs up to TIDE_LARGE_MAX (alignment slack included), a mapping of
 * its own above. */
static void *pages_alloc(size_t n, size_t align, bool zero)
{
    size_t slack = align > TIDE_PAGE_SIZE ? align - TIDE_PAGE_SIZE : 0;
    if (slack < TIDE_LARGE_MAX && n <= TIDE_LARGE_MAX - slack)
        return tidei_large_alloc(n, align, zero);
    return tidei_huge_alloc(n, align, zero);
}

/* An allocation whose charge ran h's sampler countdown out (prof.c): a
 * sample on pages of its own, or the usual block with its stack recorded
 * (leak_check=full), or just the usual block.  cls < 0: a large or huge
 * block. */
static tide_noinline void *prof_alloc(tide_heap_t *h, int cls, size_t n, size_t align, bool zero)
{
    int what = tidei_prof_event(h, n);
    if (tide_unlikely(h->guard_due)) {  /* guard=1 chose this one (guard.c) */
        void *g = tidei_guard_alloc(h, n, align, what);
        if (g)
            return g;
    }
    if (what == TIDE_PROF_SAMPLE)
        return tidei_prof_sampled_alloc(n, align, zero);
    void *p = cls >= 0 ? class_pop(h, cls) : pages_alloc(n, align, zero);
    if (p && what == TIDE_PROF_RECORD)
        tidei_prof_record(p, n, tidei_prof_site_here());
    return p;
}

/* A block of class cls for a request of n bytes, from h. */
static void *heap_alloc_class(tide_heap_t *h, int cls, size_t n, size_t align)
{
    if (tide_unlikely(tidei_prof_charge(h, n)))
        return prof_alloc(h, cls, n, align, false);
    return class_pop(h, cls);
}

/* A large or huge block, charged to the calling thread's sampler when it
 * has a heap. */
static void *big_alloc(size_t n, size_t align, bool zero)
{
    if (n > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    tidei_init();
    tide_heap_t *h = tidei_tls_heap;
    if (h == &tidei_empty_heap || !h) {
        atomic_fetch_add_explicit(&tidei_global_ctr.requested, n, relaxed);
        return pages_alloc(n, align, zero);
    }
    if (tide_unlikely(tidei_prof_charge(h, n)))
        return prof_alloc(h, -1, n, align, zero);
    return pages_alloc(n, align, zero);
}

/* Allocation by a thread whose heap is gone (a late key or TLS destructor):
 * class cls from the backup heap, under its lock.  The backup heap keeps no
 * span between calls: all its blocks are freed remotely, so a span it kept
 * would never be retired; abandoned, it is swept like any other. */
static void *backup_alloc_class(int cls, size_t n)
{
    pthread_mutex_lock(&tidei_backup_lock);
    void *p = heap_alloc_class(&tidei_backup_heap, cls, n, 0);
    int e = errno;
    tidei_heap_give_up_spans(&tidei_backup_heap);
    errno = e;
    pthread_mutex_unlock(&tidei_backup_lock);
    return p;
}

/* The calling thread's heap, set up on first use; NULL if the thread's heap
 * is gone (it is exiting) or could not be made. */
static tide_heap_t *current_heap(void)
{
    tide_heap_t *h = tidei_tls_heap;
    if (tide_unlikely(h == &tidei_empty_heap))
        h = tidei_thread_init();
    return h;
}

/* Small block of class cls for the calling thread, whatever its state;
 * align is what the caller asked for (0: malloc's). */
static void *class_alloc(int cls, size_t n, size_t align)
{
    tide_heap_t *h = current_heap();
    if (tide_unlikely(!h))
        return backup_alloc_class(cls, n);
    return heap_alloc_class(h, cls, n, align);
}

static tide_noinline void *malloc_slow_work(size_t n)
{
    if (n > TIDE_SMALL_MAX)
        return big_alloc(n, 0, false);
    return class_alloc(tidei_class_of(n), n, 0);
}

static tide_noclone void *malloc_slow(size_t n)
{
    tidei_busy_enter();
    tidei_scav_start();
    void *p = malloc_slow_work(n);
    tidei_busy_leave();
    return p;
}

/* The fast path's charge for n bytes ran the sampler's countdown out.
 * (n alone is passed: the fast path then moves no register to call.) */
static tide_noclone void *malloc_prof(size_t n)
{
    tidei_fast_leave(tidei_tls_heap);
    tidei_busy_enter();
    void *p = prof_alloc(tidei_tls_heap, tidei_class_of(n), n, 0, false);
    tidei_busy_leave();
    return p;
}

/* malloc: any thread.  NULL with errno = ENOMEM on exhaustion.  The fast
 * path is marked (tidei_fast_enter/leave) so that the scavenger can take
 * an idle thread's direct spans back while it runs (heap.c). */
tide_fast_text void *tidei_malloc(size_t n)
{
    if (tide_likely(n <= TIDE_SMALL_MAX)) {
        tide_heap_t *h = tidei_tls_heap;
        size_t cls = tidei_class_of(n);
        tidei_fast_enter(h);
        tide_span_t *s = tidei_direct(h, cls);
        tide_block_t *b = s->free;
        if (tide_likely(b != NULL)) {
            /* The sampler's countdown is also the count of requested
             * bytes; malloc_prof leaves the mark. */
            if (tide_unlikely(tidei_prof_charge(h, n)))
                return malloc_prof(n);
            tidei_count(h->ctr.malloc[cls]++);
            s->free = b->next;
            tidei_used_inc(s);
            b->key = 0;
            tidei_fast_leave(h);
            return b;
        }
        tidei_fast_leave(h);
    }
    return malloc_slow(n);
}

/* Whether fn is one of the functions above that a program's call can
 * enter tide by (malloc tail-calls its slow paths): see prof.c. */
bool tidei_alloc_is_entry(uintptr_t fn)
{
    return fn == (uintptr_t)malloc_slow || fn == (uintptr_t)malloc_prof || fn == (uintptr_t)tidei_malloc;
}

void *tidei_calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > TIDE_SMALL_MAX)
        return big_alloc(n, 0, true);  /* skips clearing pages known to be zero */
    void *p = tidei_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

/* Aligned allocation; align is a power of two (the caller checked).  Small
 * requests with align <= page size come from the first class whose block
 * size is a multiple of align (spans start on a page, so every block of it
 * is aligned); the rest are page runs or mappings aligned as asked. */
void *tidei_aligned(size_t align, size_t n, const char *op)
{
    (void)op;
    if (align <= 16)
        return tidei_malloc(n);
    if (n > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (align <= TIDE_PAGE_SIZE && n <= TIDE_SMALL_MAX) {
        int cls = tidei_class_of(n);
        while (cls < TIDE_N_CLASSES && (tidei_class_size[cls] & (align - 1)) != 0)
            cls++;
        if (cls < TIDE_N_CLASSES)
            return class_alloc(cls, n, align);
    }
    return big_alloc(n, align, false);
}

/* realloc: grows or shrinks in place where it can (same class, neighbouring
 * free pages, mremap for huge blocks), else moves.  realloc(p, 0) frees p
 * and returns NULL, as glibc does.  On failure p is untouched. */
void *tidei_realloc(void *p, size_t n)
{
    if (!p)
        return tidei_malloc(n);
    tide_span_t *s = tidei_checked_span(p, "realloc");
    if (n == 0) {
        tidei_free(p);
        return NULL;
    }
    if (n > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (s->kind == TIDE_SPAN_GUARD)  /* always moves: the old block goes to quarantine */
        return tidei_guard_realloc(p, n);
    size_t usable;
    if (s->kind == TIDE_SPAN_SMALL) {
        usable = s->block_size;
        if (n <= usable && (n > usable / 2 || usable <= 64))
            return p;
    } else if (s->kind == TIDE_SPAN_LARGE) {
        usable = s->n_pages << TIDE_PAGE_SHIFT;
        size_t pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
        if (n > TIDE_SMALL_MAX / 2 && n <= TIDE_LARGE_MAX && !s->prof_site) {  /* a sample moves */
            if (pages == s->n_pages)
                return p;
            if (pages < s->n_pages) {
                tidei_run_shrink(s, pages);
                return p;
            }
            if (tidei_run_grow(s, pages))
                return p;
        }
    } else {
        usable = s->n_pages << TIDE_PAGE_SHIFT;
        if (n > TIDE_LARGE_MAX && !s->prof_site) {
            void *q = tidei_huge_realloc(s, n);
            if (!q)
                errno = ENOMEM;
            return q;
        }
    }
    void *q = tidei_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, n < usable ? n : usable);
    tidei_free(p);
    return q;
}
