/* heap.c — thread heaps: per-class bins of spans, lock-free remote frees,
 * the notify protocol for full spans, and abandonment/adoption of the spans
 * of exited threads.
 *
 * Lock order: tidei_backup_lock -> tidei_heaps_lock -> tidei_arena.lock.
 * tidei_heaps_lock guards the heap registry, the heap pool and the
 * abandoned-span lists.  A thread's own heap is touched without any lock.
 *
 * Remote frees.  A block freed by a thread that does not own its span is
 * pushed with a CAS on span->remote; the owner takes the whole list with one
 * CAS when it needs blocks of that class.  A span with no free block leaves
 * the bins for the heap's full list, so the owner would never look at it:
 * it is marked USE_NOTIFY, and the first remote free to it instead pushes
 * the block onto heap->notify (state NOTIFYING while it does), which the
 * owner drains on its slow path, putting the span back in its bin.
 *
 * Exit.  A thread's key destructor abandons its heap: every span is set to
 * NEVER (waiting out a NOTIFYING free), pending frees are collected, empty
 * spans go back to the page allocator and the rest to the abandoned lists,
 * with heap = NULL.  Remote frees to them go on working (plain pushes); any
 * thread that needs a span of that class adopts one, and the page allocator
 * sweeps them for free pages before it maps a new chunk, so no freed block
 * is stranded.  The emptied heap is pooled for the next thread. */
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tide_internal.h"

pthread_mutex_t tidei_heaps_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t tidei_backup_lock = PTHREAD_MUTEX_INITIALIZER;

#define EMPTY_DIRECT { [0 ... TIDE_N_CLASSES - 1] = &tidei_empty_span }

/* The heap of a thread that has none yet: every bin empty, so malloc takes
 * the slow path, which sets up a real heap. */
tide_heap_t tidei_empty_heap = { .direct = EMPTY_DIRECT };

/* The heap of threads whose own heap is gone (allocation from late TLS or
 * key destructors), used under tidei_backup_lock. */
tide_heap_t tidei_backup_heap = { .direct = EMPTY_DIRECT, .in_use = true, .tid = -1 };

tide_heap_t *tidei_heaps;            /* every heap ever made (tidei_heaps_lock) */
static tide_heap_t *heap_pool;       /* heaps of exited threads, empty, for reuse */
/* Spans nobody owns (their thread exited), per class: `abandoned` holds the
 * ones with a free block, `abandoned_full` the ones that had none when they
 * were abandoned (they come back when a sweep or an adopter finds remote
 * frees in them).  Keeping them apart means adoption never wades through
 * full spans. */
static tide_span_t *abandoned[TIDE_N_CLASSES];
static tide_span_t *abandoned_full[TIDE_N_CLASSES];
static _Atomic size_t n_abandoned;   /* spans on both lists */
size_t tidei_abandoned_spans[TIDE_N_CLASSES]; /* spans on both lists, per class (tidei_heaps_lock) */

__thread tide_heap_t *tidei_tls_heap = &tidei_empty_heap;

/* ---- bin and full lists (owner only) ---- */

/* Puts s at the head of its bin: malloc takes from it next. */
static void bin_push(tide_heap_t *h, tide_span_t *s)
{
    int c = s->cls;
    s->prev = NULL;
    s->next = h->bins[c];
    if (s->next)
        s->next->prev = s;
    else
        h->bin_tails[c] = s;
    h->bins[c] = s;
    h->direct[c] = s;
}

/* Puts s at the tail of its bin: a span that just got one block back
 * collects more frees before malloc comes to it. */
static void bin_append(tide_heap_t *h, tide_span_t *s)
{
    int c = s->cls;
    tide_span_t *t = h->bin_tails[c];
    if (!t) {
        bin_push(h, s);
        return;
    }
    s->next = NULL;
    s->prev = t;
    t->next = s;
    h->bin_tails[c] = s;
}

static void bin_remove(tide_heap_t *h, tide_span_t *s)
{
    int c = s->cls;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->bins[c] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        h->bin_tails[c] = s->prev;
    s->next = s->prev = NULL;
    h->direct[c] = h->bins[c] ? h->bins[c] : &tidei_empty_span;
}

static void full_push(tide_heap_t *h, tide_span_t *s)
{
    h->ctr.n_full++;
    s->in_full = 1;
    s->prev = NULL;
    s->next = h->full;
    if (s->next)
        s->next->prev = s;
    h->full = s;
}

static void full_remove(tide_heap_t *h, tide_span_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->full = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->in_full = 0;
    h->ctr.n_full--;
}

/* ---- notify states ---- */

/* NORMAL with an empty remote list -> USE_NOTIFY.  False if a remote free
 * got in first (the span is not full any more) or a notify is under way. */
static bool span_try_mark_full(tide_span_t *s)
{
    uintptr_t expected = TIDE_RS_NORMAL;
    return atomic_compare_exchange_strong_explicit(&s->remote, &expected, TIDE_RS_USE_NOTIFY, acq_rel, relaxed);
}

/* Sets the notify state of s to st, keeping the list; first waits for a
 * NOTIFYING free to finish its push. */
static void span_set_state(tide_span_t *s, uintptr_t st)
{
    uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
    for (;;) {
        if ((old & TIDE_RS_MASK) == TIDE_RS_NOTIFYING) {
            sched_yield();
            old = atomic_load_explicit(&s->remote, relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&s->remote, &old, (old & ~TIDE_RS_MASK) | st, acq_rel, relaxed))
            return;
    }
}

/* Moves s from the full list back into its bin, at the tail: with only the
 * block just freed, it would send the next two mallocs down the slow path. */
static void span_unfull(tide_heap_t *h, tide_span_t *s)
{
    full_remove(h, s);
    uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
    while ((old & TIDE_RS_MASK) == TIDE_RS_USE_NOTIFY &&
           !atomic_compare_exchange_weak_explicit(&s->remote, &old, old & ~TIDE_RS_MASK, acq_rel, relaxed))
        ;
    bin_append(h, s);
}

/* Gives the empty span s back to the page allocator (true), unless
 * keep_last and it is the only span of its class (kept to avoid thrashing),
 * or a remote free is still finishing its notify (then it stays, empty, in
 * the bin). */
static bool span_retire_any(tide_heap_t *h, tide_span_t *s, bool keep_last)
{
    if (keep_last && h->bins[s->cls] == s && s->next == NULL)
        return false;
    if (tidei_keep_direct && h->direct[s->cls] == s)
        return false;  /* the owner is suspended, maybe mid-malloc on it */
    if (atomic_load_explicit(&s->remote, acquire) != TIDE_RS_NORMAL)
        return false;
    bin_remove(h, s);
    h->ctr.spans[s->cls]--;
    atomic_store_explicit(&s->heap, NULL, relaxed);
    tidei_run_free(s);
    return true;
}

/* Slow part of the owner's free: s was on the full list, or is now empty. */
void tidei_heap_free_local_slow(tide_heap_t *h, tide_span_t *s)
{
    if (s->in_full)
        span_unfull(h, s);
    if (s->used == 0 && !span_retire_any(h, s, true))
        tidei_scav_wanted();  /* an empty span kept: returned if the thread goes idle */
}

/* Frees the blocks other threads freed into this heap's full spans. */
static void heap_drain_notify(tide_heap_t *h)
{
    if (!atomic_load_explicit(&h->notify, relaxed))
        return;
    tide_block_t *b = atomic_exchange_explicit(&h->notify, NULL, acquire);
    while (b) {
        tide_block_t *next = b->next;
        tide_span_t *s = tidei_pagemap_lookup(b);
        tide_debug_assert(s && s->kind == TIDE_SPAN_SMALL && atomic_load_explicit(&s->heap, relaxed) == h);
        b->next = s->local_free;
        s->local_free = b;
        s->used--;
        h->ctr.collected[s->cls]++;
        tidei_heap_free_local_slow(h, s);
        b = next;
    }
}

/* Free of block b of span s by a thread that does not own s (b->key is set).
 * Lock-free; any thread. */
void tidei_heap_free_remote(tide_span_t *s, tide_block_t *b)
{
    uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
    for (;;) {
        if ((old & TIDE_RS_MASK) == TIDE_RS_USE_NOTIFY) {
            if (!atomic_compare_exchange_weak_explicit(&s->remote, &old, (old & ~TIDE_RS_MASK) | TIDE_RS_NOTIFYING,
                                                       acq_rel, relaxed))
                continue;
            /* The owner cannot abandon s while it is NOTIFYING. */
            tide_heap_t *h = atomic_load_explicit(&s->heap, acquire);
            tide_block_t *head = atomic_load_explicit(&h->notify, relaxed);
            do {
                b->next = head;
            } while (!atomic_compare_exchange_weak_explicit(&h->notify, &head, b, release, relaxed));
            /* NOTIFYING -> NORMAL; only list pushes can race with this. */
            old = atomic_load_explicit(&s->remote, relaxed);
            while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, old & ~TIDE_RS_MASK, release, relaxed))
                ;
            return;
        }
        b->next = (tide_block_t *)(old & ~TIDE_RS_MASK);
        if (atomic_compare_exchange_weak_explicit(&s->remote, &old, (uintptr_t)b | (old & TIDE_RS_MASK),
                                                  release, relaxed))
            return;
    }
}

/* Gives back what h caches: takes in the frees other threads made into its
 * spans and returns every empty span, the last of its class included, to
 * the page allocator.  Spans with a live block keep their free blocks.
 * Run by h's owner (from its reclaim signal handler when it is idle, or
 * tide_trim).  True if a span went back. */
bool tidei_heap_release(tide_heap_t *h)
{
    bool freed = false;
    heap_drain_notify(h);
    for (tide_span_t *s = h->full, *next; s; s = next) {
        next = s->next;
        size_t got = tidei_span_take_remote(s);
        h->ctr.collected[s->cls] += got;
        if (got)
            span_unfull(h, s);
    }
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        for (tide_span_t *s = h->bins[c], *next; s; s = next) {
            next = s->next;
            h->ctr.collected[c] += tidei_span_take_remote(s);
            if (s->used == 0)
                freed |= span_retire_any(h, s, false);
        }
    }
    return freed;
}

/* ---- heaps ---- */

static void heap_reset(tide_heap_t *h)
{
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        h->direct[c] = &tidei_empty_span;
        h->bins[c] = NULL;
        h->bin_tails[c] = NULL;
    }
    h->full = NULL;
    atomic_store_explicit(&h->notify, NULL, relaxed);
    h->ctr.n_full = 0;
}

/* A heap for a new thread: a pooled one or a new one.  NULL if metadata
 * memory ran out.  Takes tidei_heaps_lock. */
tide_heap_t *tidei_heap_acquire(void)
{
    pthread_mutex_lock(&tidei_heaps_lock);
    tide_heap_t *h = heap_pool;
    if (h) {
        heap_pool = h->next_pool;
    } else {
        pthread_mutex_lock(&tidei_arena.lock);
        h = tidei_meta_alloc(sizeof *h);
        pthread_mutex_unlock(&tidei_arena.lock);
        if (h) {
            static unsigned n_made;
            h->id = ++n_made;
            h->next_all = tidei_heaps;
            /* published with release: the signal-time report walks the
             * registry without the lock */
            __atomic_store_n(&tidei_heaps, h, __ATOMIC_RELEASE);
        }
    }
    if (h) {
        heap_reset(h);
        h->in_use = true;
        h->tid = (int)syscall(SYS_gettid);
        h->thread = pthread_self();
        h->has_thread = true;
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
    return h;
}

/* Whether s has a block to give without its owner's help: on a free list,
 * not yet carved, or freed remotely. */
static bool span_has_free(const tide_span_t *s)
{
    return s->free || s->local_free || s->n_built < s->n_blocks ||
           (atomic_load_explicit(&s->remote, relaxed) & ~TIDE_RS_MASK);
}

/* Takes an abandoned span of class cls with a free block off its list, or
 * NULL.  Looks at a few full ones too, in case remote frees refilled them.
 * tidei_heaps_lock held. */
static tide_span_t *abandoned_take_locked(int cls)
{
    tide_span_t *s = abandoned[cls];
    if (s) {
        __atomic_store_n(&abandoned[cls], s->next, __ATOMIC_RELAXED);
        atomic_fetch_sub_explicit(&n_abandoned, 1, relaxed);
        tidei_abandoned_spans[cls]--;
        return s;
    }
    tide_span_t **link = &abandoned_full[cls];
    for (int i = 0; i < 8 && *link; i++, link = &(*link)->next) {
        s = *link;
        if (atomic_load_explicit(&s->remote, relaxed) & ~TIDE_RS_MASK) {
            __atomic_store_n(link, s->next, __ATOMIC_RELAXED);
            atomic_fetch_sub_explicit(&n_abandoned, 1, relaxed);
            tidei_abandoned_spans[cls]--;
            return s;
        }
    }
    return NULL;
}

/* Adopts an abandoned span of class cls with a free block into h; returns
 * it (now the bin head), or NULL. */
static tide_span_t *heap_adopt(tide_heap_t *h, int cls)
{
    /* peek: a miss only means a fresh span */
    if (!__atomic_load_n(&abandoned[cls], __ATOMIC_RELAXED) && !__atomic_load_n(&abandoned_full[cls], __ATOMIC_RELAXED))
        return NULL;
    pthread_mutex_lock(&tidei_heaps_lock);
    tide_span_t *s = abandoned_take_locked(cls);
    pthread_mutex_unlock(&tidei_heaps_lock);
    if (!s)
        return NULL;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->heap, h, release);
    span_set_state(s, TIDE_RS_NORMAL);
    h->ctr.spans[cls]++;
    h->ctr.moved_in[cls] += s->used;
    h->ctr.collected[cls] += tidei_span_collect(s);
    tide_debug_assert(s->free);
    bin_push(h, s);
    return s;
}

/* Returns a span of class cls with a free block, at the head of h's bin
 * (h->direct[cls]), or NULL if memory ran out.  Owner only. */
tide_span_t *tidei_heap_find_span(tide_heap_t *h, int cls)
{
    tide_span_t *s = h->bins[cls];
    if (s) {
        h->ctr.collected[cls] += tidei_span_collect(s);
        if (s->free)
            return s;
    }
    heap_drain_notify(h);
    for (s = h->bins[cls]; s;) {
        tide_span_t *next = s->next;
        if (!s->free)
            h->ctr.collected[cls] += tidei_span_collect(s);
        if (s->free) {
            if (h->bins[cls] != s) {
                bin_remove(h, s);
                bin_push(h, s);
            }
            return s;
        }
        if (span_try_mark_full(s)) {
            bin_remove(h, s);
            full_push(h, s);
        }
        s = next;
    }
    s = heap_adopt(h, cls);
    if (s)
        return s;
    s = tidei_run_alloc(tidei_class_pages[cls], 0, TIDE_SPAN_SMALL, true);
    if (!s)
        return NULL;
    tidei_span_init_small(s, cls);
    atomic_store_explicit(&s->heap, h, release);
    h->ctr.spans[cls]++;
    tidei_span_collect(s);  /* a new span: carves its first blocks */
    bin_push(h, s);
    return s;
}

/* Puts s (owned by nobody now) on the abandoned list, or frees it if empty.
 * Called with tidei_heaps_lock held. */
static void span_abandon_locked(tide_span_t *s)
{
    atomic_fetch_add_explicit(&tidei_global_ctr.collected[s->cls], tidei_span_take_remote(s), relaxed);
    if (s->used == 0) {
        tidei_run_free(s);
        return;
    }
    s->in_full = 0;
    s->prev = NULL;
    tide_span_t **list = span_has_free(s) ? &abandoned[s->cls] : &abandoned_full[s->cls];
    s->next = *list;
    __atomic_store_n(list, s, __ATOMIC_RELAXED);
    atomic_fetch_add_explicit(&n_abandoned, 1, relaxed);
    tidei_abandoned_spans[s->cls]++;
}

/* Hands s, a span of h, to the abandoned set.  tidei_heaps_lock held. */
static void give_up_span_locked(tide_heap_t *h, tide_span_t *s)
{
    h->ctr.moved_out[s->cls] += s->used;
    h->ctr.spans[s->cls]--;
    atomic_store_explicit(&s->heap, NULL, release);
    span_abandon_locked(s);
}

/* Hands every span of h to the abandoned set, where any heap may adopt it
 * and sweeps free it once empty; h is left empty.  Called by h's owner with
 * tidei_heaps_lock and the arena lock not held. */
void tidei_heap_give_up_spans(tide_heap_t *h)
{
    /* 1. No remote free may notify h from now on. */
    for (int c = 0; c < TIDE_N_CLASSES; c++)
        for (tide_span_t *s = h->bins[c]; s; s = s->next)
            span_set_state(s, TIDE_RS_NEVER);
    for (tide_span_t *s = h->full; s; s = s->next)
        span_set_state(s, TIDE_RS_NEVER);
    /* 2. Take the notifications that got in before. */
    tide_block_t *b = atomic_exchange_explicit(&h->notify, NULL, acquire);
    while (b) {
        tide_block_t *next = b->next;
        tide_span_t *s = tidei_pagemap_lookup(b);
        b->next = s->local_free;
        s->local_free = b;
        s->used--;
        h->ctr.collected[s->cls]++;
        b = next;
    }
    /* 3. Hand every span over. */
    pthread_mutex_lock(&tidei_heaps_lock);
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        for (tide_span_t *s = h->bins[c], *next; s; s = next) {
            next = s->next;
            give_up_span_locked(h, s);
        }
    }
    for (tide_span_t *s = h->full, *next; s; s = next) {
        next = s->next;
        give_up_span_locked(h, s);
    }
    heap_reset(h);
    pthread_mutex_unlock(&tidei_heaps_lock);
}

/* Abandons every span of h (its thread is exiting) and pools h.  Called by
 * the exiting thread itself, with no lock held. */
void tidei_heap_abandon(tide_heap_t *h)
{
    tidei_heap_give_up_spans(h);
    tidei_scav_thread_end(h);
    pthread_mutex_lock(&tidei_heaps_lock);
    h->in_use = false;
    h->has_thread = false;
    h->next_pool = heap_pool;
    heap_pool = h;
    pthread_mutex_unlock(&tidei_heaps_lock);
}

/* Collects the remote frees of every abandoned span and gives the empty ones
 * back to the page allocator.  True if any was freed.  Takes
 * tidei_heaps_lock (the caller must not hold it or the arena lock). */
bool tidei_abandoned_sweep(void)
{
    bool freed = false;
    if (!atomic_load_explicit(&n_abandoned, relaxed))  /* peek: a stale zero only delays the sweep */
        return false;
    pthread_mutex_lock(&tidei_heaps_lock);
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        for (int full = 0; full < 2; full++) {
            tide_span_t **link = full ? &abandoned_full[c] : &abandoned[c];
            while (*link) {
                tide_span_t *s = *link;
                size_t got = tidei_span_take_remote(s);
                atomic_fetch_add_explicit(&tidei_global_ctr.collected[c], got, relaxed);
                if (s->used == 0) {
                    __atomic_store_n(link, s->next, __ATOMIC_RELAXED);
                    atomic_fetch_sub_explicit(&n_abandoned, 1, relaxed);
                    tidei_abandoned_spans[c]--;
                    tidei_run_free(s);
                    freed = true;
                } else if (full && got) {  /* has free blocks again */
                    __atomic_store_n(link, s->next, __ATOMIC_RELAXED);
                    s->next = abandoned[c];
                    __atomic_store_n(&abandoned[c], s, __ATOMIC_RELAXED);
                } else {
                    link = &s->next;
                }
            }
        }
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
    return freed;
}

size_t tidei_abandoned_count(void)
{
    return atomic_load_explicit(&n_abandoned, relaxed);
}
