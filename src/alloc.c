/* alloc.c — the allocation entry points.  The fast path (a size class, one
 * span, pop a block) is inline in malloc; everything else is in noinline
 * slow paths: setting up the thread's heap, refilling a class, large and
 * huge blocks, the backup heap of exited threads.  Also the test of whether
 * a stopped thread was inside a fast path (tidei_interrupted_inside): the
 * fast paths of malloc and free are in the section tide_fast_text.
 *
 * Locks: none on the fast path; the thread's h->lock (tidei_heap_lock) on
 * a refill, tidei_backup_lock for the backup heap; the layers below take
 * their own (lock order in heap.c). */
#include "tide_internal.h"

extern char __start_tide_fast_text[] __attribute__((visibility("hidden")));
extern char __stop_tide_fast_text[] __attribute__((visibility("hidden")));

/* Pops a block of class cls from h (its sampler already charged): from
 * the direct span as the fast path does, marked the same way, or under
 * h->lock after refilling the class.  Sets errno = ENOMEM and returns NULL
 * when memory ran out. */
static void *class_pop(tide_heap_t *h, int cls)
{
    tidei_fast_enter(h);
    tide_span_t *s = tidei_direct(h, cls);
    tide_free_block_t *b = s->free;
    if (tidei_span_built_has(s, b)) {
        s->free = tidei_link_decode(s, b->link);
        tidei_span_malloc_inc(s);
        b->key = 0;
        tidei_fast_leave(h);
        return b;
    }
    if (tide_unlikely(b != NULL))  /* read while marked: s was not retired */
        tidei_link_bad_head(s, b, "malloc");
    tidei_fast_leave(h);
    if (tidei_heap_takes_shared(h, cls))
        return tidei_heap_shared_alloc(h, cls);  /* no span of its own yet (heap.c) */
    tidei_heap_lock(h);
    s = tidei_heap_find_span(h, cls);
    if (s) {
        b = s->free;
        if (tide_unlikely(!tidei_span_built_has(s, b)))
            tidei_link_bad_head(s, b, "malloc");
        s->free = tidei_link_decode(s, b->link);
        tide_debug_assert(tidei_span_used(s) < s->n_blocks);
        tidei_span_malloc_inc(s);
        b->key = 0;
    }
    tidei_heap_unlock(h);
    if (!s)
        errno = ENOMEM;
    return b;
}

/* A large block of n bytes (pages + alignment within a chunk), aligned to
 * align (0 = page): from any free run, or a new chunk; with resident, only
 * from a free run whose pages are resident, and NULL (errno kept) if there
 * is none.  NULL with errno = ENOMEM on failure. */
static void *large_alloc(size_t n, size_t align, bool zero, bool resident)
{
    size_t pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    size_t align_pages = align > TIDE_PAGE_SIZE ? align >> TIDE_PAGE_SHIFT : 0;
    tide_span_t *s = resident ? tidei_arena_alloc_run_resident(pages, align_pages)
                              : tidei_heap_new_run(pages, align_pages, TIDE_SPAN_LARGE);
    if (!s) {
        if (!resident)
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

/* Page runs up to TIDE_LARGE_MAX (alignment slack included), a mapping of
 * its own above, unless the block fits in a chunk and a free run there has
 * the pages resident (tidei_arena_alloc_run_resident): then it is a large
 * block on those. */
static void *pages_alloc(size_t n, size_t align, bool zero)
{
    size_t slack = align > TIDE_PAGE_SIZE ? align - TIDE_PAGE_SIZE : 0;
    if (slack < TIDE_LARGE_MAX && n <= TIDE_LARGE_MAX - slack)
        return large_alloc(n, align, zero, false);
    if (slack < TIDE_CHUNK_SIZE && n <= TIDE_CHUNK_SIZE - slack) {
        void *p = large_alloc(n, align, zero, true);
        if (p)
            return p;
    }
    return tidei_huge_alloc(n, align, zero);
}

/* A sample: n bytes on pages of their own (a large or huge block, even for
 * a small request), which the profiler marks with the call site.  NULL with
 * errno = ENOMEM when memory ran out. */
static void *sampled_alloc(size_t n, size_t align, bool zero)
{
    void *p = pages_alloc(n ? n : 1, align, zero);
    if (p)
        tidei_prof_took(p, n, TIDE_PROF_SAMPLE);
    return p;
}

/* Serves an allocation of n bytes that the sampler's event decided on
 * (what, from tidei_prof_event): a sample on pages of its own, or the usual
 * block (class cls of h, or pages when cls < 0) with its stack recorded
 * (leak_check=full), or just the usual block. */
static void *prof_serve(int what, tide_heap_t *h, int cls, size_t n, size_t align, bool zero)
{
    if (tide_unlikely(h && h->guard_due)) {  /* guard=1 chose this one (guard.c) */
        void *g = tidei_guard_alloc(h, n, align, what);
        if (g)
            return g;
    }
    if (what == TIDE_PROF_SAMPLE)
        return sampled_alloc(n, align, zero);
    void *p = cls >= 0 ? class_pop(h, cls) : pages_alloc(n, align, zero);
    if (p && what == TIDE_PROF_RECORD)
        tidei_prof_took(p, n, TIDE_PROF_RECORD);
    return p;
}

/* An allocation whose charge ran h's sampler countdown out (prof.c).
 * cls < 0: a large or huge block. */
static tide_noinline void *prof_alloc(tide_heap_t *h, int cls, size_t n, size_t align, bool zero)
{
    return prof_serve(tidei_prof_event(h, n), h, cls, n, align, zero);
}

/* A block of class cls for a request of n bytes, from h. */
static void *heap_alloc_class(tide_heap_t *h, int cls, size_t n, size_t align)
{
    if (tide_unlikely(tidei_prof_charge(h, n)))
        return prof_alloc(h, cls, n, align, false);
    return class_pop(h, cls);
}

/* Charges n bytes to the sampler of the backup heap; its lock held. */
static int backup_charge(size_t n)
{
    tide_heap_t *h = &tidei_backup_heap;
    return tidei_prof_charge(h, n) ? tidei_prof_event(h, n) : TIDE_PROF_NONE;
}

/* Allocation by a thread whose heap is gone (a late key destructor): class
 * cls from the backup heap (cls < 0: a large or huge block), charged to
 * the backup heap's sampler.  The backup heap is used under its lock, and
 * keeps no span between calls: all its blocks are freed remotely, so a
 * span it kept would never be retired; abandoned, it is swept like any
 * other.  A sample or a stack is taken after the lock is let go: the
 * unwinder may allocate, and the sampled block comes from the page
 * allocator. */
static tide_noinline void *backup_alloc(int cls, size_t n, size_t align, bool zero)
{
    void *p = NULL;
    pthread_mutex_lock(&tidei_backup_lock);
    int what = backup_charge(n);
    if (cls >= 0 && what != TIDE_PROF_SAMPLE) {
        p = class_pop(tidei_backup_heap_ready(), cls);
        int e = errno;
        tidei_heap_give_up_spans(&tidei_backup_heap);
        errno = e;
    }
    pthread_mutex_unlock(&tidei_backup_lock);
    if (cls >= 0 && what != TIDE_PROF_SAMPLE) {
        if (p && what == TIDE_PROF_RECORD)
            tidei_prof_took(p, n, TIDE_PROF_RECORD);
        return p;
    }
    return prof_serve(what, NULL, -1, n, align, zero);
}

/* The calling thread's heap, set up on first use; NULL if the thread's heap
 * is gone (it is exiting) or could not be made. */
static tide_heap_t *current_heap(void)
{
    tide_heap_t *h = tidei_tls_heap;
    if (tide_unlikely(h == &tidei_empty_heap))
        h = tidei_init_thread();
    return h;
}

/* Small block of class cls for the calling thread, whatever its state;
 * align is what the caller asked for (0: malloc's). */
static void *class_alloc(int cls, size_t n, size_t align)
{
    tide_heap_t *h = current_heap();
    if (tide_unlikely(!h))
        return backup_alloc(cls, n, align, false);
    return heap_alloc_class(h, cls, n, align);
}

/* A large or huge block, charged to the calling thread's sampler like any
 * other allocation: a thread whose first allocation this is gets its heap
 * here, and one whose heap is gone uses the backup heap's. */
static void *big_alloc(size_t n, size_t align, bool zero)
{
    if (n > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    tide_heap_t *h = current_heap();
    if (tide_unlikely(!h))
        return backup_alloc(-1, n, align, zero);
    if (tide_unlikely(tidei_prof_charge(h, n)))
        return prof_alloc(h, -1, n, align, zero);
    return pages_alloc(n, align, zero);
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
    tidei_fast_exit(tidei_tls_heap, n);
    tidei_busy_enter();
    void *p = prof_alloc(tidei_tls_heap, tidei_class_of(n), n, 0, false);
    tidei_busy_leave();
    return p;
}

/* The head of s's list, loaded straight into the return register: left
 * to itself, GCC loads it elsewhere and adds a move on every malloc. */
tide_inline tide_free_block_t *malloc_head(tide_span_t *s)
{
#if defined(__x86_64__) && defined(__GNUC__) && !TIDE_SANITIZE
    tide_free_block_t *b;
    __asm__("movq %1, %0" : "=a"(b) : "m"(s->free));
    return b;
#else
    return s->free;
#endif
}

/* The malloc fast path, shared by malloc and C++'s operator new: a block
 * from the calling thread's direct span of the class, else a tail call to
 * slow (no free block at hand, a large or huge size, no heap yet) or to
 * prof (the sampler's countdown ran out), both given n alone.  Up to
 * TIDE_DIRECT_MAX bytes the span is found by size, with no class to look
 * up; the count of mallocs is the span's.  The fast path is marked (its
 * charge of the sampler's countdown on entry, tidei_fast_exit after the
 * pop) so that the scavenger can take an idle thread's direct spans back
 * while it runs (heap.c). */
tide_inline void *malloc_fast(size_t n, void *(*slow)(size_t), void *(*prof)(size_t))
{
    tide_heap_t *h;
    tide_span_t *s;
    /* The sampler's countdown is also the count of requested bytes; prof
     * (malloc_prof) ends the mark. */
    if (tide_likely(n <= TIDE_DIRECT_MAX)) {
        h = tidei_tls_heap;
        if (tide_unlikely(tidei_fast_charge(h, n)))
            return prof(n);
        s = __atomic_load_n(&h->by_size[n], __ATOMIC_RELAXED);
    } else if (n <= TIDE_SMALL_MAX) {
        size_t cls = tidei_class_fast(n);
        h = tidei_tls_heap;
        if (tide_unlikely(tidei_fast_charge(h, n)))
            return prof(n);
        s = tidei_direct(h, cls);
    } else {
        return slow(n);
    }
    tide_free_block_t *b = malloc_head(s);
    /* The head is a block of s, or NULL (an empty list, or the empty span
     * of a thread without a heap), or an overwritten link, which the slow
     * path (class_pop) reports.  The owner's frees push onto the same
     * list, so it runs out only when every block of s built so far is
     * out: the slow path then takes in remote frees, or carves, or finds
     * another span. */
    if (tide_unlikely(!tidei_span_built_has(s, b))) {
        tidei_fast_undo(h, n);
        return slow(n);
    }
    s->free = tidei_link_decode(s, b->link);
    tidei_span_malloc_inc(s);
    b->key = 0;
    tidei_fast_exit(h, n);
    return b;
}

/* malloc: any thread.  NULL with errno = ENOMEM on exhaustion. */
tide_fast_text void *tidei_malloc(size_t n)
{
    return malloc_fast(n, malloc_slow, malloc_prof);
}

/* C++ operator new (and new[]) of n bytes: malloc's fast path; when memory
 * runs out, the new-handler loop, then std::bad_alloc (override.c).  The
 * nothrow form returns NULL instead of throwing. */
static tide_noclone void *new_slow(size_t n)
{
    void *p = malloc_slow(n);
    return tide_likely(p != NULL) ? p : tidei_override_new_failed(n, 0, false);
}

static tide_noclone void *new_prof(size_t n)
{
    void *p = malloc_prof(n);
    return tide_likely(p != NULL) ? p : tidei_override_new_failed(n, 0, false);
}

static tide_noclone void *new_nothrow_slow(size_t n)
{
    void *p = malloc_slow(n);
    return tide_likely(p != NULL) ? p : tidei_override_new_failed(n, 0, true);
}

static tide_noclone void *new_nothrow_prof(size_t n)
{
    void *p = malloc_prof(n);
    return tide_likely(p != NULL) ? p : tidei_override_new_failed(n, 0, true);
}

tide_fast_text void *tidei_new(size_t n)
{
    return malloc_fast(n, new_slow, new_prof);
}

tide_fast_text void *tidei_new_nothrow(size_t n)
{
    return malloc_fast(n, new_nothrow_slow, new_nothrow_prof);
}

/* Whether fn is one of the functions above that a program's call can
 * enter tide by (malloc and new tail-call their slow paths): see prof.c. */
bool tidei_alloc_is_entry(uintptr_t fn)
{
    static void *const entries[] = {
        (void *)malloc_slow, (void *)malloc_prof, (void *)tidei_malloc,
        (void *)new_slow, (void *)new_prof, (void *)new_nothrow_slow, (void *)new_nothrow_prof,
        (void *)tidei_new, (void *)tidei_new_nothrow,
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if ((uintptr_t)entries[i] == fn)
            return true;
    return false;
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
void *tidei_aligned(size_t align, size_t n)
{
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

/* The sampler's event for a realloc in place: a block that stays where it
 * is is never moved to a guarded slot, so the guard's choice passes. */
static tide_noinline int resize_event(tide_heap_t *h, size_t n)
{
    int what = tidei_prof_event(h, n);
    h->guard_due = false;
    return what;
}

/* resize_charge for a thread without a heap: it gets one, or (heap gone)
 * the backup heap's sampler is charged under its lock. */
static tide_noinline int resize_charge_slow(size_t n)
{
    tide_heap_t *h = current_heap();
    if (h) {
        h->ctr.requested -= n;
        return tidei_prof_charge(h, n) ? resize_event(h, n) : TIDE_PROF_NONE;
    }
    pthread_mutex_lock(&tidei_backup_lock);
    tidei_backup_heap.ctr.requested -= n;
    int what = backup_charge(n);
    pthread_mutex_unlock(&tidei_backup_lock);
    return what;
}

/* Charges a realloc in place to n bytes to the sampler of heap h, the
 * calling thread's own (resize_charge below also takes a thread without
 * one: the backup heap's when its heap is gone), and returns the event's
 * TIDE_PROF_*.  To the profiler a realloc is a free and
 * an allocation at the realloc's call site, as in gperftools and jemalloc;
 * to the stats it is not a malloc (docs/stats.md), so the requested count,
 * which the countdown is part of, is taken back.  Inline: a string that
 * grows by appends reallocs in place over and over. */
tide_inline int resize_charge_heap(tide_heap_t *h, size_t n)
{
    h->ctr.requested -= n;
    if (tide_likely(!tidei_prof_charge(h, n)))
        return TIDE_PROF_NONE;
    return resize_event(h, n);
}

/* resize_charge_heap for the calling thread, whichever heap it has. */
tide_inline int resize_charge(size_t n)
{
    tide_heap_t *h = tidei_tls_heap;
    if (tide_unlikely(h == &tidei_empty_heap))
        return resize_charge_slow(n);
    return resize_charge_heap(h, n);
}

/* small_resized when the sampler's event for the realloc is what. */
static tide_noinline void *small_resized_event(void *p, size_t n, size_t usable, int what)
{
    if (what == TIDE_PROF_RECORD) {
        tidei_prof_took(p, n, TIDE_PROF_RECORD);
        return p;
    }
    int e = errno;
    void *q = sampled_alloc(n, 0, false);
    if (!q) {  /* no room for the sample: the block stays, unsampled */
        errno = e;
        return p;
    }
    memcpy(q, p, n < usable ? n : usable);
    tidei_free(p);
    return q;
}

/* Whether a small block of usable bytes stays in its class for a realloc
 * to n: it fits, and does not leave more than half of it unused (unless
 * the class is one of the smallest). */
tide_inline bool small_stays(size_t n, size_t usable)
{
    return n <= usable && (n > usable / 2 || usable <= 64);
}

/* Small block p (usable bytes) stays in its class for a realloc to n,
 * whose charge to the sampler (resize_charge) gave what: returns p, or the
 * block's new place if the sampler took the realloc as a sample (which
 * gets pages of its own). */
tide_inline void *small_resized(void *p, size_t n, size_t usable, int what)
{
    if (tide_likely(what == TIDE_PROF_NONE))
        return p;
    return small_resized_event(p, n, usable, what);
}

/* Large or huge block p of span s was resized in place to n bytes: a
 * sample's old size leaves its site, and the block, which has pages of its
 * own already, becomes a sample of the realloc's site if the sampler says
 * so.  Returns p. */
static void *big_resized(tide_span_t *s, void *p, size_t n)
{
    if (s->prof_site)
        tidei_prof_free(s);
    int what = resize_charge(n);
    if (what == TIDE_PROF_SAMPLE)
        tidei_prof_took(p, n, TIDE_PROF_SAMPLE);
    else if (what == TIDE_PROF_RECORD)
        tidei_prof_took(p, n, TIDE_PROF_RECORD);
    return p;
}

/* Small block p (usable bytes) outgrew its class for a realloc to n (at
 * most TIDE_SMALL_MAX): it moves to a block with room to grow again, of
 * the class that holds n rounded up to a quarter of n's power of two
 * (2^k < n <= 2^(k+1) rounds up to a multiple of 2^k / 4), so that a
 * block grown by small steps crosses four classes per doubling, not the
 * eight that tide has: half the moves and half the bytes copied, and
 * fewer classes touched.  The block is at most a quarter larger than n,
 * what allocators with four classes per doubling give every block; the
 * sampler and the stats are charged n, as for any realloc.  NULL (p
 * untouched) when memory ran out. */
static tide_noinline void *realloc_grow_small(void *p, size_t n, size_t usable)
{
    size_t quarter = ((size_t)1 << (63 - __builtin_clzl(n - 1))) >> 2;
    size_t room = (n + quarter - 1) & ~(quarter - 1);
    void *q = class_alloc(tidei_class_of(room), n, 0);
    if (!q)
        return NULL;
    memcpy(q, p, usable);
    tidei_free(p);
    return q;
}

static tide_noinline void *realloc_checked(void *p, size_t n);

/* realloc: grows or shrinks in place where it can (same class, neighbouring
 * free pages, mremap for huge blocks), else moves.  realloc(p, 0) frees p
 * and returns NULL, as glibc does.  On failure p is untouched.  Either way
 * the new size is charged to the sampler at the realloc's call site. */
void *tidei_realloc(void *p, size_t n)
{
    if (!p)
        return tidei_malloc(n);
    /* A live block of one of the caller's spans, found and checked as the
     * free fast path does (free.c free_fast), without the lock that the
     * full check (tidei_free_checked_span) takes for a block carrying the
     * free key: a string grown by appends comes here on every append. */
    uintptr_t d;
    tide_span_t *s = tidei_flat_lookup(p, &d);
    tide_heap_t *h = tidei_tls_heap;
    if (tidei_span_owner(s) == h && tidei_block_ok_flat(s, d, s->blk_bound) &&
        ((tide_free_block_t *)p)->key != tidei_free_key_of(s) && n - 1 < TIDE_SMALL_MAX) {
        size_t usable = s->block_size;
        if (small_stays(n, usable))
            return small_resized(p, n, usable, resize_charge_heap(h, n));  /* h owns s: not the empty heap */
        if (n > usable)
            return realloc_grow_small(p, n, usable);
    }
    return realloc_checked(p, n);
}

/* realloc of any other block, or to any other size, with every check. */
static tide_noinline void *realloc_checked(void *p, size_t n)
{
    tide_span_t *s = tidei_free_checked_span(p, "realloc");
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
        if (small_stays(n, usable))
            return small_resized(p, n, usable, resize_charge(n));
        if (n > usable && n <= TIDE_SMALL_MAX)
            return realloc_grow_small(p, n, usable);
    } else if (s->kind == TIDE_SPAN_LARGE) {
        usable = s->n_pages << TIDE_PAGE_SHIFT;
        size_t pages = (n + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
        /* in place: any size that stays in the run, and growth into the
         * free pages after it up to a chunk (a block above TIDE_LARGE_MAX
         * may be large: pages_alloc) */
        if (n > TIDE_SMALL_MAX / 2 && n <= TIDE_CHUNK_SIZE) {
            if (pages < s->n_pages)
                tidei_arena_shrink_run(s, pages);
            if (pages <= s->n_pages || tidei_arena_grow_run(s, pages))
                return big_resized(s, p, n);
        }
    } else {
        usable = s->n_pages << TIDE_PAGE_SHIFT;
        if (n > TIDE_LARGE_MAX) {
            void *q = tidei_huge_realloc(s, n);
            if (q)
                return big_resized(s, q, n);
            /* else it cannot be resized without a copy */
        }
    }
    return tidei_realloc_move(p, n, usable);
}

/* Moves block p (usable bytes) to a new block of n bytes and frees p.
 * NULL (p untouched) when memory ran out. */
void *tidei_realloc_move(void *p, size_t n, size_t usable)
{
    void *q = tidei_malloc(n);
    if (!q)
        return NULL;
    size_t copy = n < usable ? n : usable;
    /* the copy writes every page of it: one request rather than a fault
     * per page (a vector that doubles moves MiBs at a time) */
    if (copy >= TIDE_SMALL_MAX)
        tidei_os_populate(q, copy & ~(TIDE_PAGE_SIZE - 1));
    memcpy(q, p, copy);
    tidei_free(p);
    return q;
}

/* In a signal handler: whether the thread was interrupted inside tide (a
 * malloc or free fast path, told by the program counter in ucv, or any
 * other entry point, which sets tidei_busy).  What every thread stop
 * asks (the GC's, the leak checker's, a crash report's). */
bool tidei_interrupted_inside(void *ucv)
{
    uintptr_t pc = tidei_os_context_pc(ucv, NULL);
    if (!pc)
        pc = (uintptr_t)__start_tide_fast_text;  /* unknown: always "inside" */
    return tidei_busy || (pc >= (uintptr_t)__start_tide_fast_text && pc < (uintptr_t)__stop_tide_fast_text);
}
