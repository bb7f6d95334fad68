/* heap.c — thread heaps: per-class bins of spans, lock-free remote frees,
 * the notify protocol for full spans, and abandonment/adoption of the spans
 * of exited threads.
 *
 * Lock order (the whole library's): tidei_backup_lock -> h->lock (a heap's
 * slow paths, tidei_heap_lock; or a shared heap's, never with a thread
 * heap's held) -> tidei_heaps_lock -> tidei_arena.lock.
 * The scavenger holds tidei_heaps_lock and only trylocks h->lock.  The
 * guard's, the profiler's and the GC heap's locks are leaves (each file
 * says which of these it may hold when it takes one).  tidei_heaps_lock
 * guards the heap registry, the heap pool and the abandoned-span lists.  A
 * thread's own heap is touched without any lock on its fast paths.
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
 * thread that needs a span of that class adopts one, and a thread that
 * finds no free run sweeps them for free pages before the page allocator
 * maps a new chunk (tidei_heap_new_run), so no freed block is stranded.  The emptied heap is pooled for the next thread. */
#include <sched.h>
#include <unistd.h>

#include "tide_internal.h"

pthread_mutex_t tidei_heaps_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t tidei_backup_lock = PTHREAD_MUTEX_INITIALIZER;

#define EMPTY_HEAP_COUNTDOWN ((int64_t)1 << 62)

/* The heap of a thread that has none yet: every bin empty, so malloc takes
 * the slow path, which sets up a real heap.  Its tables point at the
 * empty span from the process's first instruction (a thread's first
 * malloc reads them, maybe before any constructor), so they are
 * initialised statically: relocated at load, the only heap that is. */
tide_heap_t tidei_empty_heap = { .by_size = { [0 ... TIDE_N_DIRECT - 1] = &tidei_empty_span },
                                 .direct = { [0 ... TIDE_N_CLASSES - 1] = &tidei_empty_span },
                                 /* the fast path charges it and takes the charge back
                                  * (tidei_fast_undo): it never runs out */
                                 .ctr = { .sample_left = EMPTY_HEAP_COUNTDOWN, .fast_left = EMPTY_HEAP_COUNTDOWN } };

/* The backup heap and the shared heaps are zero (.bss) until first used,
 * when static_heap_ready gives them what a heap needs before its first
 * span (direct[] at the empty span, in_use, tid): a process pays no page
 * for those it never uses, where initialised data would be written all
 * over by the loader's relocations of direct[] (issue 13).  Until then
 * every list is empty and every counter zero, which is all that the
 * scavenger, the stats, the fork handlers and the gdb script read of
 * them; in_use and tid read false and 0. */

/* The heap of threads whose own heap is gone (allocation from late TLS or
 * key destructors), used under tidei_backup_lock. */
tide_heap_t tidei_backup_heap;

/* The shared heaps: a thread's first blocks of a class come from one of
 * them (tidei_heap_shared_alloc), under its lock, which stands for the
 * owner thread every heap has: whoever holds it may do what an owner does.
 * Every free of their blocks is a remote free (lock-free, as into another
 * thread's span); a shared heap collects them when it needs blocks of the
 * class, and the scavenger takes back what it caches once it has been
 * idle, as for a thread's heap (scav.c).  Not in the
 * registry: no thread owns them. */
tide_heap_t tidei_shared_heaps[TIDE_SHARED_HEAPS] = {
    [0 ... TIDE_SHARED_HEAPS - 1] = { .lock = { .mutex = PTHREAD_MUTEX_INITIALIZER } } };

/* Bit i: shared heap i is ready (has been used).  Outside the heaps, so
 * that the scavenger can pass the others by without reading a page of
 * them (tidei_heap_shared_ready). */
static _Atomic unsigned shared_ready;

/* Makes static heap h (the backup heap: tid -1; a shared heap: -2) ready
 * for its first span, once: every direct[] entry the empty span (by_size[]
 * stays NULL: only a thread's own fast path reads it).  Under the heap's
 * lock (a shared heap's, or tidei_backup_lock), before anything else
 * touches h's bins. */
static void static_heap_ready(tide_heap_t *h, int tid)
{
    if (h->in_use)
        return;
    for (int c = 0; c < TIDE_N_CLASSES; c++)
        __atomic_store_n(&h->direct[c], &tidei_empty_span, __ATOMIC_RELAXED);
    h->tid = tid;
    __atomic_store_n(&h->in_use, true, __ATOMIC_RELAXED);
    if (tidei_heap_is_shared(h))
        atomic_fetch_or_explicit(&shared_ready, 1u << (h - tidei_shared_heaps), release);
}

/* Whether shared heap sh has been used (it may hold spans); false means
 * it has none and is all zeros.  Reads no page of sh; any thread. */
bool tidei_heap_shared_ready(const tide_heap_t *sh)
{
    return atomic_load_explicit(&shared_ready, acquire) >> (sh - tidei_shared_heaps) & 1;
}

/* The backup heap, before its use by the caller, which holds
 * tidei_backup_lock. */
tide_heap_t *tidei_backup_heap_ready(void)
{
    static_heap_ready(&tidei_backup_heap, -1);
    return &tidei_backup_heap;
}

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
size_t tidei_abandoned_spans[TIDE_N_CLASSES];  /* spans on both lists, per class (tidei_heaps_lock) */
size_t tidei_abandoned_blocks[TIDE_N_CLASSES]; /* the blocks those spans hold, per class (tidei_heaps_lock) */

/* The abandoned lists are doubly linked (list.h), so that the remote free
 * that empties a span can take it off its list (abandoned_release); their
 * heads are peeked at without the lock.  A span is on one of them exactly
 * when, under tidei_heaps_lock, its heap is NULL and its notify state
 * NEVER: it gets both as it goes on the list (give_up_span_locked,
 * span_abandon_locked), and leaves the state NEVER as it comes off
 * (abandoned_unlink_locked), all under the lock. */

/* Takes s off whichever abandoned list holds it, for an adopter or the
 * page allocator. */
static void abandoned_unlink_locked(tide_span_t *s)
{
    int c = s->cls;
    tide_span_t **list = abandoned[c] == s ? &abandoned[c] : &abandoned_full[c];  /* read only if s is a head */
    tide_list_remove(*list, s, next, prev);
    atomic_fetch_sub_explicit(&n_abandoned, 1, relaxed);
    tidei_abandoned_spans[c]--;
    tidei_abandoned_blocks[c] -= s->n_blocks;
}

__thread tide_heap_t *tidei_tls_heap = &tidei_empty_heap;

/* ---- bin and full lists (h->lock held: the owner's slow paths, or the
 * scavenger) ---- */

/* direct[] and by_size[] are read by the owner's malloc fast path with
 * no lock, while the scavenger may write them: relaxed atomic stores
 * (plain moves).  Class c's entries of by_size[] are the sizes it serves,
 * from one past the class below's block size (class 0, malloc(0)'s, has
 * size 0 alone). */
static void set_direct(tide_heap_t *h, int c, tide_span_t *s)
{
    __atomic_store_n(&h->direct[c], s, __ATOMIC_RELAXED);
    if (c == 0) {
        /* malloc(0) takes the slow path (class_pop): a fast-path malloc
         * must ask for a byte at least, for its charge of the sampler's
         * countdown to mark it inside (tidei_fast_charge) */
        __atomic_store_n(&h->by_size[0], &tidei_empty_span, __ATOMIC_RELAXED);
        return;
    }
    size_t hi = tidei_class_size[c] < TIDE_DIRECT_MAX ? tidei_class_size[c] : TIDE_DIRECT_MAX;
    for (size_t n = c == 1 ? 1 : tidei_class_size[c - 1] + 1; n <= hi; n++)
        __atomic_store_n(&h->by_size[n], s, __ATOMIC_RELAXED);
}

/* Takes entry i off h's spares (heap.c span_keep_spare).  h->lock held. */
static void spare_remove_at(tide_heap_t *h, int i)
{
    memmove(&h->spare[i], &h->spare[i + 1], (size_t)(--h->n_spare - i) * sizeof h->spare[0]);
}

/* s stops being one of h's spans: its count of mallocs goes into h's, and
 * it is no spare of h's any more. */
static void span_leave(tide_heap_t *h, tide_span_t *s)
{
    for (int i = 0; i < h->n_spare; i++)
        if (h->spare[i] == s) {
            spare_remove_at(h, i);
            break;
        }
    h->ctr.malloc[s->cls] += s->n_malloc;
    s->n_malloc = 0;
    h->ctr.spans[s->cls]--;
}

/* Moves the owner's free slow path to the free that leaves v blocks out
 * of s.  used_rel, which the owner's free fast path decrements with no
 * lock, is counted from slow_at, so only the owner may call this (or a
 * thread holding h->lock while h's owner cannot free into s: s is not
 * h's yet, or no longer, or h is a shared heap, whose blocks are all
 * freed as remote frees). */
static void span_set_slow_at(tide_span_t *s, uint16_t v)
{
    uint16_t used = tidei_span_used(s);
    __atomic_store_n(&s->slow_at, v, __ATOMIC_RELAXED);
    __atomic_store_n(&s->used_rel, (uint16_t)(used - v), __ATOMIC_RELEASE);
}

/* The owner, in a slow path: a slow_at the scavenger left behind when it
 * took s off the full list (span_unfull by another thread) goes back to 0,
 * so the free that empties s finds it again. */
static void span_settle(tide_span_t *s)
{
    uint16_t at = s->slow_at;
    if (!s->in_full && at != 0 && at != TIDE_SLOW_NEVER)
        span_set_slow_at(s, 0);
}

/* s, the kept last span of its class, is not the only one any more: its
 * owner's free that empties it takes the slow path again. */
static void span_unkeep(tide_span_t *s)
{
    if (__atomic_load_n(&s->slow_at, __ATOMIC_RELAXED) == TIDE_SLOW_NEVER)
        span_set_slow_at(s, 0);
}


/* Puts s at the head of its bin: malloc takes from it next.  by_owner:
 * the caller is h's owner, which may change slow_at (span_set_slow_at);
 * another thread leaves a kept span kept. */
static void bin_push(tide_heap_t *h, tide_span_t *s, bool by_owner)
{
    int c = s->cls;
    if (h->bins[c] && by_owner)
        span_unkeep(h->bins[c]);
    tide_list_push_tail(h->bins[c], h->bin_tails[c], s, next, prev);
    set_direct(h, c, s);
}

/* Puts s at the tail of its bin: a span that just got one block back
 * collects more frees before malloc comes to it. */
static void bin_append(tide_heap_t *h, tide_span_t *s, bool by_owner)
{
    int c = s->cls;
    if (!h->bin_tails[c]) {
        bin_push(h, s, by_owner);
        return;
    }
    if (by_owner)
        span_unkeep(h->bins[c]);
    tide_list_append_tail(h->bins[c], h->bin_tails[c], s, next, prev);
}

/* Takes s out of its bin; if it was the head (the direct span), the next
 * span of the bin becomes direct.  The scavenger removes other spans than
 * the head while the owner's malloc may be popping from the head, which
 * is then left alone. */
static void bin_remove(tide_heap_t *h, tide_span_t *s)
{
    int c = s->cls;
    bool was_head = h->bins[c] == s;
    tide_list_remove_tail(h->bins[c], h->bin_tails[c], s, next, prev);
    if (was_head)
        set_direct(h, c, h->bins[c] ? h->bins[c] : &tidei_empty_span);
}

static void full_push(tide_heap_t *h, tide_span_t *s)
{
    h->ctr.n_full++;
    s->in_full = 1;
    /* every block is out: the owner's first free of one takes s off */
    span_set_slow_at(s, (uint16_t)(tidei_span_used(s) - 1));
    tide_list_push(h->full, s, next, prev);
}

static void full_remove(tide_heap_t *h, tide_span_t *s, bool by_owner)
{
    tide_list_remove(h->full, s, next, prev);
    s->in_full = 0;
    if (by_owner)
        span_set_slow_at(s, 0);  /* else span_settle, later */
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
 * block just freed, it would send the next two mallocs down the slow path.
 * by_owner as for bin_push. */
static void span_unfull(tide_heap_t *h, tide_span_t *s, bool by_owner)
{
    full_remove(h, s, by_owner);
    uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
    while ((old & TIDE_RS_MASK) == TIDE_RS_USE_NOTIFY &&
           !atomic_compare_exchange_weak_explicit(&s->remote, &old, old & ~TIDE_RS_MASK, acq_rel, relaxed))
        ;
    bin_append(h, s, by_owner);
}

/* Gives the empty span s back to the page allocator (true), unless
 * keep_last and it is the only span of its class under TIDE_KEEP_LAST_MAX
 * (kept to avoid thrashing), or keep_last and it becomes a spare (a thread
 * heap's), or a remote free is still finishing its notify (then it stays,
 * empty, in the bin).  A shared heap keeps no spares: all its classes are
 * under the bound. */
_Static_assert(TIDE_SHARED_MAX_SIZE <= TIDE_KEEP_LAST_MAX, "a shared heap keeps the last span of each class");
static bool span_keep_spare(tide_heap_t *h, tide_span_t *s);

static bool span_retire_any(tide_heap_t *h, tide_span_t *s, bool keep_last)
{
    if (keep_last && h->bins[s->cls] == s && s->next == NULL && tidei_class_size[s->cls] < TIDE_KEEP_LAST_MAX)
        return false;
    if (keep_last && !tidei_heap_is_shared(h) && span_keep_spare(h, s))
        return false;
    if (atomic_load_explicit(&s->remote, acquire) != TIDE_RS_NORMAL)
        return false;
    bin_remove(h, s);
    span_leave(h, s);
    atomic_store_explicit(&s->heap, NULL, relaxed);
    tidei_arena_free_run(s, false);
    return true;
}

static tide_span_t *new_run(size_t n_pages, size_t min_pages, size_t align_pages, tide_span_kind_t kind);

/* The fewest pages a new span of cls is cut with when no free run has its
 * full length and the process would otherwise grow (new_run): a quarter of
 * the length, and one block at least.  (Half, a quarter and one block gave
 * the same peak on bench realloc-step.) */
static size_t span_min_pages(int cls)
{
    size_t one = ((size_t)tidei_class_size[cls] + TIDE_PAGE_SIZE - 1) >> TIDE_PAGE_SHIFT;
    size_t quarter = (size_t)tidei_class_pages[cls] / 4;
    return quarter > one ? quarter : one;
}

/* An empty spare of h with at least the pages of a span of cls and at
 * most four times as many, taken off its bin and h's books, for the caller to
 * set up as a span of cls as it would a new run: its run and its page-map
 * entries stay as they are, so no lock but h's is taken (a batch of
 * mid-size blocks whose size changes from batch to batch otherwise gives
 * back a span and makes one under the page allocator's lock every time;
 * four times rather than two: mid-batch 13 % faster and 13 % leaner, a
 * span only carves the pages its blocks need).  (A spare of cls itself
 * has free blocks: the bin search found it.)  NULL if no spare fits.
 * Owner, h->lock held. */
static tide_span_t *spare_take(tide_heap_t *h, int cls)
{
    size_t pages = tidei_class_pages[cls];
    for (int i = 0; i < h->n_spare; i++) {
        tide_span_t *s = h->spare[i];
        if (s->n_pages < pages || s->n_pages > 4 * pages || tidei_span_used(s) != 0 ||
            atomic_load_explicit(&s->remote, acquire) != TIDE_RS_NORMAL)
            continue;
        bin_remove(h, s);
        span_leave(h, s);  /* off spare[] too */
        s->is_zero = false;  /* its pages were written: nothing to carve ahead */
        return s;
    }
    return NULL;
}

/* Keeps s, a span of thread heap h that just emptied, in its bin as a
 * spare (true), giving back the spares that emptied first if there is no
 * room: a batch of blocks made and freed in turn (a request's buffers)
 * would otherwise give back its spans and make them again each time, each
 * time under the arena's lock.  A spare that has blocks out again is an
 * ordinary span of its bin.  The scavenger takes the spares back with
 * the rest of an idle heap's empty spans.  h->lock held, by the owner. */
static bool span_keep_spare(tide_heap_t *h, tide_span_t *s)
{
    size_t bytes = 0;
    int n = 0;
    bool kept = false;
    for (int i = 0; i < h->n_spare; i++) {
        tide_span_t *sp = h->spare[i];
        if (sp == s || tidei_span_used(sp) == 0) {
            h->spare[n++] = sp;
            bytes += sp->n_pages << TIDE_PAGE_SHIFT;
            kept |= sp == s;
        }
    }
    h->n_spare = (uint8_t)n;
    if (kept)
        return true;
    size_t need = s->n_pages << TIDE_PAGE_SHIFT;
    if (need > TIDE_SPARE_BYTES)
        return false;
    while (h->n_spare == TIDE_SPARE_SPANS || bytes + need > TIDE_SPARE_BYTES) {
        tide_span_t *old = h->spare[0];
        bytes -= old->n_pages << TIDE_PAGE_SHIFT;
        spare_remove_at(h, 0);  /* first: should old stay (a notify under way), it is a spare no more */
        span_retire_any(h, old, false);
    }
    h->spare[h->n_spare++] = s;
    return true;
}

/* Slow part of the owner's free: s was on the full list, or is now empty.
 * h->lock held.  The last span of a class that stays when it empties (kept
 * under TIDE_KEEP_LAST_MAX, a spare above) is marked so that the frees
 * that empty it again (every malloc/free pair does) stay on the fast
 * path: the scavenger takes it back if the thread goes idle. */
void tidei_heap_free_local_slow(tide_heap_t *h, tide_span_t *s)
{
    h->slow_seq++;
    if (s->in_full)
        span_unfull(h, s, true);
    else
        span_settle(s);
    if (tidei_span_used(s) == 0 && !span_retire_any(h, s, true)) {
        if (h->bins[s->cls] == s && s->next == NULL)
            span_set_slow_at(s, TIDE_SLOW_NEVER);
        tidei_scav_wanted();
    }
}

/* The span of b, a block on h's notify list: one of h's SMALL spans, or
 * the list was corrupted (a link overwritten by a write after free). */
static tide_span_t *notify_span(tide_heap_t *h, tide_free_block_t *b, const char *op)
{
    tide_span_t *s = tidei_pagemap_lookup(b);
    if (tide_unlikely(!s || s->kind != TIDE_SPAN_SMALL || atomic_load_explicit(&s->heap, relaxed) != h ||
                      !tidei_block_ok(s, (uintptr_t)b - s->start, s->blk_bound)))
        tidei_misuse(op, b, "heap corruption: a free block's link was overwritten (a write after free, "
                     "or an overflow from the block before)");
    return s;
}

/* The block after b (of span s) on a notify list.  Its link is encoded
 * with the key of s, and names a block of any span. */
static tide_free_block_t *notify_next(const tide_span_t *s, const tide_free_block_t *b)
{
    return tidei_link_decode(s, b->link);
}

/* Where notify_take puts the blocks it takes. */
enum notify_dest {
    NOTIFY_LOCAL,          /* on their span's local free list, as the owner's frees */
    NOTIFY_LOCAL_SETTLE,   /* the same, and the span leaves the full list or retires
                              (tidei_heap_free_local_slow) */
    NOTIFY_REMOTE          /* on their span's remote list, counted like any remote
                              free (the scavenger: the owner's lists are not its to
                              write) */
};

/* Takes every block off h's notify list (the frees other threads made into
 * h's full spans) and puts it where dest says; a corrupted link is
 * reported as found by op.  The owner, or the scavenger with h->lock
 * held. */
static void notify_take(tide_heap_t *h, enum notify_dest dest, const char *op)
{
    if (!atomic_load_explicit(&h->notify, relaxed))
        return;
    tide_free_block_t *b = atomic_exchange_explicit(&h->notify, NULL, acquire);
    while (b) {
        tide_span_t *s = notify_span(h, b, op);
        tide_free_block_t *next = notify_next(s, b);
        if (dest == NOTIFY_REMOTE) {
            uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
            do {
                b->link = tidei_link_encode(s, (tide_free_block_t *)(old & TIDE_RS_PTR_MASK));
            } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, tidei_rs_push(old, b), release, relaxed));
        } else {
            b->link = tidei_link_encode(s, s->local_free);
            s->local_free = b;
            s->used_rel--;
            h->ctr.collected[s->cls]++;
            if (dest == NOTIFY_LOCAL_SETTLE)
                tidei_heap_free_local_slow(h, s);
        }
        b = next;
    }
}

/* Waits for h's lock and takes it as thread me.  A shared heap's mutex
 * blocks; a word lock, whose holders keep it briefly and never wake
 * anyone, is tried again 64 times at once, then after sleeps of 50 us
 * doubling to 1 ms (nanosleep rather than sched_yield: under TSan, a
 * signal held back while the thread waits is delivered when a call
 * returns).  A word that names me says this thread holds the lock and
 * would wait for itself forever: a call into tide from a signal handler
 * that interrupted one of this thread's slow paths.  That is reported
 * and aborts, where a mutex would hang.  errno unchanged. */
void tidei_heap_lock_wait(tide_heap_t *h, int me)
{
    if (tidei_heap_is_shared(h)) {
        pthread_mutex_lock(&h->lock.mutex);
        return;
    }
    if (atomic_load_explicit(&h->lock.word, relaxed) == me)
        tidei_fatal("tide: thread %d waits for the lock of its own heap %u, which it holds: a malloc or free "
                    "from a signal handler interrupted this thread's own call into tide\n",
                    me, h->id);
    int e = errno;
    long ns = 50000;
    for (int i = 0; !tidei_heap_trylock_as(h, me); i++) {
        if (i < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        struct timespec ts = { 0, ns };
        nanosleep(&ts, NULL);
        if (ns < 1000000)
            ns *= 2;
    }
    errno = e;
}

/* After a free into span s of shared heap sh: whoever gets sh's lock acts
 * as its owner, takes in the span's remote frees (and sh's notify list)
 * and gives s back to the page allocator if that emptied it (the last span
 * of its class excepted, as for a thread's own frees).  Without this an
 * emptied span would wait for sh to need blocks of the class again, which
 * may never come (a thread takes at most shared_blocks blocks of a class
 * from the shared heaps), or for sh to fall idle (scav.c), which
 * a program that keeps freeing into it never lets happen: a workload whose
 * blocks move from class to class in a wave (strings grown by realloc)
 * left every class's spans resident, 100 MiB for 15 MiB live (issue 13).
 * The lock is only tried: a busy shared heap collects the free itself when
 * it next needs the class.  The cost is one trylock per free of a shared
 * block, which a thread makes at most shared_blocks of per class. */
static void shared_take_free(tide_heap_t *sh, tide_span_t *s)
{
    if (pthread_mutex_trylock(&sh->lock.mutex) != 0)
        return;
    notify_take(sh, NOTIFY_LOCAL_SETTLE, "free");
    /* s may have been retired (and even made again) since the push: only a
     * span of sh is sh's to touch, and under sh's lock it stays one */
    if (atomic_load_explicit(&s->heap, relaxed) == sh && s->kind == TIDE_SPAN_SMALL) {
        size_t got = tidei_span_take_remote(s);
        if (got) {
            sh->ctr.collected[s->cls] += got;
            tidei_heap_free_local_slow(sh, s);
        }
    }
    pthread_mutex_unlock(&sh->lock.mutex);
}

static void abandoned_release(tide_span_t *s);

/* Whether the remote frees of s, n after a push, are all the blocks it
 * counts as out.  A hint, read without the lock: s may have been adopted
 * since (its owner's malloc and free change the count as this reads it),
 * so whoever acts on it looks again under a lock (abandoned_release,
 * shared_take_free). */
__attribute__((no_sanitize("thread"))) static bool remote_emptied(const tide_span_t *s, uintptr_t n)
{
    return n >= tidei_span_used(s);
}

/* Free of block b of span s by a thread that does not own s (b->key is set).
 * Lock-free but for a free into a shared heap's span (shared_take_free);
 * any thread. */
void tidei_heap_free_remote(tide_span_t *s, tide_free_block_t *b)
{
    uintptr_t old = atomic_load_explicit(&s->remote, relaxed);
    bool notified = false;
    for (;;) {
        if ((old & TIDE_RS_MASK) == TIDE_RS_USE_NOTIFY) {
            notified = true;
            if (!atomic_compare_exchange_weak_explicit(&s->remote, &old, (old & ~TIDE_RS_MASK) | TIDE_RS_NOTIFYING,
                                                       acq_rel, relaxed))
                continue;
            /* The owner cannot abandon s while it is NOTIFYING. */
            tide_heap_t *h = atomic_load_explicit(&s->heap, acquire);
            tide_free_block_t *head = atomic_load_explicit(&h->notify, relaxed);
            do {
                b->link = tidei_link_encode(s, head);
            } while (!atomic_compare_exchange_weak_explicit(&h->notify, &head, b, release, relaxed));
            /* NOTIFYING -> NORMAL; only list pushes can race with this. */
            old = atomic_load_explicit(&s->remote, relaxed);
            while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, old & ~TIDE_RS_MASK, release, relaxed))
                ;
            break;
        }
        b->link = tidei_link_encode(s, (tide_free_block_t *)(old & TIDE_RS_PTR_MASK));
        if (atomic_compare_exchange_weak_explicit(&s->remote, &old, tidei_rs_push(old, b), release, relaxed))
            break;
    }
    /* An abandoned span whose last live block this was goes back now. */
    if ((old & TIDE_RS_MASK) == TIDE_RS_NEVER) {
        if (remote_emptied(s, (old >> TIDE_RS_COUNT_SHIFT) + 1))
            abandoned_release(s);
        return;
    }
    /* The scavenger learns of the free (a load, and a store only when the
     * flag was clear; the caller wakes it): a shared heap has no thread
     * whose own activity would bring it back, and a thread heap it has
     * already released while the thread idles would keep the frees that
     * came after (scav.c).  A shared heap's free is taken in at once if it
     * can be.  Should s have been collected and retired meanwhile, h is
     * NULL or another heap: a needless flag costs the scavenger one more
     * look.  Into a shared heap, the free takes the span's remote frees in
     * every TIDE_SHARED_TAKE_EVERY blocks, and when they may have emptied
     * it (it goes back at once); the rest wait for the next take or for a
     * malloc that finds the span's list empty, so that the threads freeing
     * into a shared heap take its lock once in so many frees.  A free that
     * went onto the notify list (the span was full) takes it in at once. */
    tide_heap_t *h = atomic_load_explicit(&s->heap, relaxed);
    if (h) {
        if (!atomic_load_explicit(&h->remote_in, relaxed))
            atomic_store_explicit(&h->remote_in, true, release);
        uintptr_t n = (old >> TIDE_RS_COUNT_SHIFT) + 1;
        if (tidei_heap_is_shared(h) && (notified || n % TIDE_SHARED_TAKE_EVERY == 0 || remote_emptied(s, n)))
            shared_take_free(h, s);
    }
}

/* Gives back what h caches: takes in the frees other threads made into its
 * spans and returns every empty span, the last of its class included, to
 * the page allocator.  Spans with a live block keep their free blocks.
 * h->lock held, by h's owner, which is in none of its fast paths, or for a
 * shared heap by any thread (its lock makes it the owner).  True if a span
 * went back. */
static bool heap_release_locked(tide_heap_t *h)
{
    bool freed = false;
    notify_take(h, NOTIFY_LOCAL_SETTLE, "free");
    for (tide_span_t *s = h->full, *next; s; s = next) {
        next = s->next;
        size_t got = tidei_span_take_remote(s);
        h->ctr.collected[s->cls] += got;
        if (got)
            span_unfull(h, s, true);
    }
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        for (tide_span_t *s = h->bins[c], *next; s; s = next) {
            next = s->next;
            h->ctr.collected[c] += tidei_span_take_remote(s);
            if (tidei_span_used(s) == 0)
                freed |= span_retire_any(h, s, false);
        }
    }
    return freed;
}

/* heap_release_locked for h's owner (tide_trim), or any thread for a
 * shared heap; no tide lock held. */
bool tidei_heap_release(tide_heap_t *h)
{
    tidei_heap_lock(h);
    h->slow_seq++;
    bool freed = heap_release_locked(h);
    tidei_heap_unlock(h);
    return freed;
}

/* ---- reclaim by the scavenger, while the owner runs ---- */

/* Whether s, a span of h that the owner's malloc cannot pop from right now,
 * has no live block: every block it counts as out is on its remote list.
 * used is read first: it only falls while the owner frees (a malloc from s
 * needs h->lock, held here, or s as direct span, excluded by the caller),
 * and the remote list only grows, so equality means no live block at the
 * moment the list was read, and none can appear while h->lock is held.
 * The owner's free pushes a block before it publishes the decrement of
 * used (tidei_used_dec), so it has finished with s when used says 0. */
static bool span_quiescent(tide_span_t *s)
{
    uint32_t used = tidei_span_used(s);
    return atomic_load_explicit(&s->remote, acquire) >> TIDE_RS_COUNT_SHIFT == used;
}

/* Returns quiescent s, already off h's lists, to the page allocator. */
static void scav_retire(tide_heap_t *h, tide_span_t *s)
{
    h->ctr.collected[s->cls] += tidei_span_take_remote(s);
    span_set_state(s, TIDE_RS_NORMAL);
    span_leave(h, s);
    atomic_store_explicit(&s->heap, NULL, relaxed);
    tidei_arena_free_run(s, true);  /* h is idle: its pages are due at once */
}

/* Whether h's owner is inside a malloc fast path, read by a reclaimer
 * after the fence: fast_left first, so that an owner that enters or
 * leaves between the two loads reads as inside (the reclaimer then keeps
 * its spans), never the other way round (tidei_fast_charge). */
static bool fast_inside(tide_heap_t *h)
{
    int64_t out = __atomic_load_n(&h->ctr.fast_left, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&h->ctr.sample_left, __ATOMIC_ACQUIRE) != out;
}

/* The scavenger (or another thread's tide_trim) takes back what h caches
 * while h's owner may be running, with no help from it: the frees other
 * threads made into h's spans, and every span with no live block.  The
 * owner's fast paths take no lock, so:
 *   - h->lock keeps its slow paths out (trylock: a heap that holds it is
 *     busy, not idle; false is returned);
 *   - a span the owner can reach only through them (not a direct[] span)
 *     is retired once quiescent (span_quiescent);
 *   - a direct span, which a malloc fast path may be popping from at any
 *     moment, is swapped for the empty span first; fence(h) then makes
 *     sure that the owner has either seen the swap or shows itself inside
 *     a malloc (h->ctr.sample_left != fast_left), by a membarrier or by stopping the
 *     thread (tide_set_thread_suspender).  Inside, every swapped span is
 *     put back; outside, those still quiescent are retired.  A NULL fence,
 *     or one that fails, keeps the direct spans.  An owner waiting for
 *     h->lock (h->lock_wait, tidei_heap_lock) is outside with no fence.
 * The pages of the spans it retires are due for the purge at once (h has
 * been idle for a fifth of the decay delay, TIDE_SCAV_IDLE_PARTS, or
 * tide_trim asks).
 * Called with tidei_heaps_lock held, by thread me, which is not h's owner
 * (the caller's id once for all the heaps it passes: no system call each). */
bool tidei_heap_reclaim(tide_heap_t *h, bool (*fence)(tide_heap_t *h), int me)
{
    if (!tidei_heap_trylock_as(h, me))
        return false;
    notify_take(h, NOTIFY_REMOTE, "free");
    for (tide_span_t *s = h->full, *next; s; s = next) {
        next = s->next;
        if (span_quiescent(s)) {
            full_remove(h, s, false);
            scav_retire(h, s);
        } else if (atomic_load_explicit(&s->remote, relaxed) & TIDE_RS_PTR_MASK) {
            span_unfull(h, s, false);  /* the owner collects those frees when it needs the class */
        }
    }
    tide_span_t *swapped[TIDE_N_CLASSES];
    int n_swapped = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        tide_span_t *head = h->bins[c];
        if (!head)
            continue;
        for (tide_span_t *s = head->next, *next; s; s = next) {
            next = s->next;
            if (span_quiescent(s)) {
                bin_remove(h, s);
                scav_retire(h, s);
            }
        }
        if (fence && span_quiescent(head)) {
            set_direct(h, c, &tidei_empty_span);
            swapped[n_swapped++] = head;
        }
    }
    if (n_swapped) {
        /* an owner waiting for h->lock is outside and stays out */
        bool outside = atomic_load_explicit(&h->lock_wait, memory_order_seq_cst) ||
                       (fence(h) && !fast_inside(h));
        for (int i = 0; i < n_swapped; i++) {
            tide_span_t *s = swapped[i];
            if (outside && span_quiescent(s)) {
                bin_remove(h, s);  /* the next span of the class, if any, becomes direct */
                scav_retire(h, s);
            } else {
                set_direct(h, s->cls, s);  /* a malloc may be popping from it: it stays direct */
            }
        }
    }
    tidei_heap_unlock(h);
    return true;
}

/* ---- shared heaps ---- */

/* Thread heaps in use: written under tidei_heaps_lock, read without it
 * (tidei_heap_takes_shared).  Threads share spans while there are at least
 * TIDE_CONF shared_threads: with fewer, spans of each thread's own cost a
 * few pages per class and thread, while a shared block costs a lock on its
 * malloc and a compare-and-swap on its free (a single thread would also
 * pay a second span per class). */
static unsigned heaps_live;

/* In a forked child, whose only thread is the forking one: counts the
 * heaps still in use again (fork_child has marked the others' not).
 * tidei_heaps_lock held. */
void tidei_heaps_recount(void)
{
    unsigned n = 0;
    for (tide_heap_t *h = tidei_heaps; h; h = h->next_all)
        n += h->in_use;
    __atomic_store_n(&heaps_live, n, __ATOMIC_RELAXED);
}

/* Whether h's thread takes its next block of class cls from a shared heap:
 * it has taken fewer than TIDE_CONF shared_blocks of the class there, the
 * blocks are under TIDE_SHARED_MAX_SIZE (a thread's own span carves bigger
 * ones a block at a time: sharing them saves no page, and spans shared by
 * threads that free at random fragment), TIDE_CONF shared_threads threads
 * have heaps (heaps_live), and no exited thread left a span of the
 * class (one without a free block gets them as the program frees what
 * that thread made).  Such a span pins its pages anyway: adopting it
 * costs no memory, and a thread that took over an exited one's work (a
 * pool's new worker) then frees into its own span rather than into a
 * shared one under its lock.  A thread that gets a span of its own for a
 * class, for any of these reasons, shares the class no more, even when
 * more threads come.  And once a thread has stopped
 * sharing TIDE_SHARED_OWN_CLASSES classes, it shares none: it allocates
 * enough to fill spans of its own, and what sharing saves (a page or two
 * per class) is small beside it, while every free of a shared block costs
 * a try of a lock.  Owner only. */
bool tidei_heap_takes_shared(tide_heap_t *h, int cls)
{
    if (h->shared_n[cls] >= tidei_opt.shared_blocks || tidei_class_size[cls] >= TIDE_SHARED_MAX_SIZE ||
        h == &tidei_backup_heap)
        return false;
    if (__atomic_load_n(&heaps_live, __ATOMIC_RELAXED) < (unsigned long)tidei_opt.shared_threads ||
        h->own_classes >= TIDE_SHARED_OWN_CLASSES ||
        __atomic_load_n(&abandoned[cls], __ATOMIC_RELAXED) ||  /* peek: heap_adopt looks again */
        __atomic_load_n(&abandoned_full[cls], __ATOMIC_RELAXED)) {
        h->shared_n[cls] = UINT16_MAX;
        h->own_classes++;
        return false;
    }
    return true;
}

/* A block of class cls from a shared heap, for h's thread, which has no
 * span of that class (tidei_heap_takes_shared).  The block
 * moves out of h's books into the shared heap's at once (h counts the
 * malloc and a move out, the shared heap a move in), so that every free of
 * it is a free into another heap's span.  NULL with errno = ENOMEM when
 * memory ran out.  Owner only; no tide lock held. */
void *tidei_heap_shared_alloc(tide_heap_t *h, int cls)
{
    /* the shared heap of the CPU the thread runs on: threads running at once
     * take different locks and carve from different spans, whose lines then
     * stay in one core's cache (their frees, mostly made there too, push
     * onto spans no other core is writing) */
    int cpu = sched_getcpu();
    tide_heap_t *sh = &tidei_shared_heaps[(cpu >= 0 ? (unsigned)cpu : h->id) % TIDE_SHARED_HEAPS];
    pthread_mutex_lock(&sh->lock.mutex);
    static_heap_ready(sh, -2);
    tide_span_t *s = tidei_heap_find_span(sh, cls);
    tide_free_block_t *b = NULL;
    if (s) {
        b = s->free;
        if (tide_unlikely(!tidei_span_built_has(s, b)))
            tidei_link_bad_head(s, b, "malloc");
        s->free = tidei_link_decode(s, b->link);
        s->used_rel++;
        b->key = 0;
        sh->ctr.moved_in[cls]++;
    }
    pthread_mutex_unlock(&sh->lock.mutex);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    h->ctr.malloc[cls]++;
    h->ctr.moved_out[cls]++;
    if (++h->shared_n[cls] == tidei_opt.shared_blocks)
        h->own_classes++;
    return b;
}

/* The scavenger takes back what shared heap sh caches: the frees made
 * into its spans (taken in as its owner would: nobody allocates from sh
 * without its lock) and every span with no live block.  False if sh's lock
 * was taken (it is busy).  Leaves sh's activity as it was, so that the
 * scavenger sees it idle still.  tidei_heaps_lock held, as for
 * tidei_heap_reclaim (hence the trylock). */
bool tidei_heap_reclaim_shared(tide_heap_t *sh)
{
    if (pthread_mutex_trylock(&sh->lock.mutex) != 0)
        return false;
    heap_release_locked(sh);
    pthread_mutex_unlock(&sh->lock.mutex);
    return true;
}

/* The activity the scavenger watches for shared heap sh: its own (its
 * allocations) and the remote frees made into its spans since it last
 * looked.  tidei_heaps_lock held (the scavenger). */
uint64_t tidei_heap_shared_activity(tide_heap_t *sh)
{
    if (atomic_exchange_explicit(&sh->remote_in, false, acq_rel))
        sh->scav_remote_seen++;
    return tidei_heap_activity(sh) + sh->scav_remote_seen;
}

/* fork: the prepare handler takes every shared heap's lock (after
 * tidei_backup_lock, before tidei_heaps_lock), the parent and the child
 * let them go. */
void tidei_heap_shared_lock_all(void)
{
    for (int i = 0; i < TIDE_SHARED_HEAPS; i++)
        pthread_mutex_lock(&tidei_shared_heaps[i].lock.mutex);
}

void tidei_heap_shared_unlock_all(void)
{
    for (int i = TIDE_SHARED_HEAPS - 1; i >= 0; i--)
        pthread_mutex_unlock(&tidei_shared_heaps[i].lock.mutex);
}

/* ---- heaps ---- */

static void heap_reset(tide_heap_t *h)
{
    memset(h->shared_n, 0, sizeof h->shared_n);
    h->n_spare = 0;
    h->own_classes = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        set_direct(h, c, &tidei_empty_span);
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
            atomic_init(&h->lock.word, 0);
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
        __atomic_fetch_add(&heaps_live, 1, __ATOMIC_RELAXED);
        h->in_use = true;
        h->tid = tidei_os_gettid();
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
           (atomic_load_explicit(&s->remote, relaxed) & TIDE_RS_PTR_MASK);
}

/* Takes an abandoned span of class cls with a free block off its list, or
 * NULL.  Looks at a few full ones too, in case remote frees refilled them.
 * tidei_heaps_lock held. */
static tide_span_t *abandoned_take_locked(int cls)
{
    tide_span_t *s = abandoned[cls];
    if (s) {
        abandoned_unlink_locked(s);
        return s;
    }
    s = abandoned_full[cls];
    for (int i = 0; i < 8 && s; i++, s = s->next) {
        if (atomic_load_explicit(&s->remote, relaxed) & TIDE_RS_PTR_MASK) {
            abandoned_unlink_locked(s);
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
    if (s) {  /* owned again before the lock goes: see abandoned_unlink_locked */
        atomic_store_explicit(&s->heap, h, release);
        span_set_state(s, TIDE_RS_NORMAL);
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
    if (!s)
        return NULL;
    h->ctr.spans[cls]++;
    h->ctr.moved_in[cls] += tidei_span_used(s);
    h->ctr.collected[cls] += tidei_span_collect(s, true);
    tide_debug_assert(s->free);
    bin_push(h, s, true);
    return s;
}

/* Makes s, a span of h's bin with a free block, the bin's head. */
static tide_span_t *bin_to_head(tide_heap_t *h, tide_span_t *s)
{
    span_settle(s);
    if (h->bins[s->cls] != s) {
        bin_remove(h, s);
        bin_push(h, s, true);
    }
    return s;
}

/* Returns a span of class cls with a free block, at the head of h's bin
 * (h->direct[cls]), or NULL if memory ran out.  Blocks freed already come
 * first: the head's, those other threads freed into its full spans (the
 * notify list), the other spans'; only then are fresh ones carved, so that
 * a thread whose blocks come back from other threads (a producer) does not
 * touch a new page while its frees wait elsewhere.  Owner only, h->lock
 * held. */
tide_span_t *tidei_heap_find_span(tide_heap_t *h, int cls)
{
    h->slow_seq++;
    tide_span_t *s = h->bins[cls];
    if (s) {
        /* a head with blocks at hand (a shared heap's, which every malloc
         * searches) keeps its remote frees for later: taking them in is an
         * atomic exchange on a line the freeing threads write */
        if (!s->free)
            h->ctr.collected[cls] += tidei_span_collect(s, false);
        span_settle(s);
        if (s->free)
            return s;
    }
    tide_span_t *tried = s, *unbuilt = NULL;  /* the head, collected above */
    notify_take(h, NOTIFY_LOCAL_SETTLE, "malloc");
    for (s = h->bins[cls]; s;) {
        tide_span_t *next = s->next;
        if (!s->free && s != tried)
            h->ctr.collected[cls] += tidei_span_collect(s, false);
        if (s->free)
            return bin_to_head(h, s);
        if (s->n_built < s->n_blocks) {
            if (!unbuilt)
                unbuilt = s;
        } else if (span_try_mark_full(s)) {
            bin_remove(h, s);
            full_push(h, s);
        }
        s = next;
    }
    if (unbuilt) {
        h->ctr.collected[cls] += tidei_span_collect(unbuilt, true);
        return bin_to_head(h, unbuilt);
    }
    s = heap_adopt(h, cls);
    if (s)
        return s;
    s = spare_take(h, cls);
    if (!s)
        s = new_run(tidei_class_pages[cls], span_min_pages(cls), 0, TIDE_SPAN_SMALL);
    if (!s)
        return NULL;
    tidei_span_init_small(s, cls);
    atomic_store_explicit(&s->heap, h, release);
    h->ctr.spans[cls]++;
    tidei_span_collect(s, true);  /* a new span: carves its first blocks */
    bin_push(h, s, true);
    return s;
}

/* Puts s (owned by nobody now) on the abandoned list, or frees it if empty.
 * Called with tidei_heaps_lock held. */
static void span_abandon_locked(tide_span_t *s)
{
    atomic_fetch_add_explicit(&tidei_global_ctr.collected[s->cls], tidei_span_take_remote(s), relaxed);
    if (tidei_span_used(s) == 0) {
        span_set_state(s, TIDE_RS_NORMAL);
        tidei_arena_free_run(s, false);
        return;
    }
    s->in_full = 0;
    span_set_slow_at(s, 0);
    if (span_has_free(s))
        tide_list_push(abandoned[s->cls], s, next, prev);
    else
        tide_list_push(abandoned_full[s->cls], s, next, prev);
    atomic_fetch_add_explicit(&n_abandoned, 1, relaxed);
    tidei_abandoned_spans[s->cls]++;
    tidei_abandoned_blocks[s->cls] += s->n_blocks;
}

/* Hands s, a span of h, to the abandoned set.  tidei_heaps_lock held. */
static void give_up_span_locked(tide_heap_t *h, tide_span_t *s)
{
    h->ctr.moved_out[s->cls] += tidei_span_used(s);
    span_leave(h, s);
    atomic_store_explicit(&s->heap, NULL, release);
    span_abandon_locked(s);
}

/* Hands every span of h to the abandoned set, where any heap may adopt it
 * and sweeps free it once empty; h is left empty.  Called by h's owner with
 * tidei_heaps_lock and the arena lock not held. */
void tidei_heap_give_up_spans(tide_heap_t *h)
{
    tidei_heap_lock(h);
    h->slow_seq++;
    /* 1. No remote free may notify h from now on. */
    for (int c = 0; c < TIDE_N_CLASSES; c++)
        for (tide_span_t *s = h->bins[c]; s; s = s->next)
            span_set_state(s, TIDE_RS_NEVER);
    for (tide_span_t *s = h->full; s; s = s->next)
        span_set_state(s, TIDE_RS_NEVER);
    /* 2. Take the notifications that got in before. */
    notify_take(h, NOTIFY_LOCAL, "free");
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
    tidei_heap_unlock(h);
}

/* Abandons every span of h (its thread is exiting) and pools h.  Called by
 * the exiting thread itself, with no lock held. */
void tidei_heap_abandon(tide_heap_t *h)
{
    tidei_heap_give_up_spans(h);
    tidei_scav_thread_end(h);
    pthread_mutex_lock(&tidei_heaps_lock);
    __atomic_fetch_sub(&heaps_live, 1, __ATOMIC_RELAXED);
    h->in_use = false;
    h->has_thread = false;
    h->next_pool = heap_pool;
    heap_pool = h;
    pthread_mutex_unlock(&tidei_heaps_lock);
}

/* Gives s, an abandoned span with no block out, to the page allocator.
 * tidei_heaps_lock held. */
static void abandoned_free_locked(tide_span_t *s)
{
    abandoned_unlink_locked(s);
    span_set_state(s, TIDE_RS_NORMAL);
    tidei_arena_free_run(s, false);
}

/* A remote free into s found it abandoned, its heap NULL and its state
 * NEVER in the word its push replaced, and saw the push bring the remote
 * count up to the blocks out (remote_emptied): if s is still on an
 * abandoned list, now that the lock is held, and holds no live block, its
 * pages go back now, not at the next sweep (which comes only when the page
 * allocator runs out of free runs).  Any thread, no tide lock held. */
static void abandoned_release(tide_span_t *s)
{
    pthread_mutex_lock(&tidei_heaps_lock);
    if (atomic_load_explicit(&s->heap, relaxed) == NULL &&
        (atomic_load_explicit(&s->remote, relaxed) & TIDE_RS_MASK) == TIDE_RS_NEVER && span_quiescent(s)) {
        atomic_fetch_add_explicit(&tidei_global_ctr.collected[s->cls], tidei_span_take_remote(s), relaxed);
        tide_debug_assert(tidei_span_used(s) == 0);
        abandoned_free_locked(s);
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
}

/* Collects the remote frees of every abandoned span and gives the empty ones
 * back to the page allocator.  True if any was freed.  Takes
 * tidei_heaps_lock (the caller must not hold it or the arena lock). */
bool tidei_heap_sweep_abandoned(void)
{
    bool freed = false;
    if (!atomic_load_explicit(&n_abandoned, relaxed))  /* peek: a stale zero only delays the sweep */
        return false;
    pthread_mutex_lock(&tidei_heaps_lock);
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        for (int full = 0; full < 2; full++) {
            for (tide_span_t *s = full ? abandoned_full[c] : abandoned[c], *next; s; s = next) {
                next = s->next;
                size_t got = tidei_span_take_remote(s);
                atomic_fetch_add_explicit(&tidei_global_ctr.collected[c], got, relaxed);
                if (tidei_span_used(s) == 0) {
                    abandoned_free_locked(s);
                    freed = true;
                } else if (full && got) {  /* has free blocks again */
                    tide_list_remove(abandoned_full[c], s, next, prev);
                    tide_list_push(abandoned[c], s, next, prev);
                }
            }
        }
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
    return freed;
}

/* A run for a span or a large block: a free run if one fits, else one that
 * sweeping the abandoned spans gave back, else (min_pages < n_pages: a
 * SMALL span, whose blocks fit any length) the longest free run if it has
 * at least min_pages, else a new chunk (the sweep and the shorter run come
 * first so that the pages of exited threads' spans and the holes between
 * spans are reused before the process grows).  NULL when the OS refuses
 * memory.  No tide lock held. */
static tide_span_t *new_run(size_t n_pages, size_t min_pages, size_t align_pages, tide_span_kind_t kind)
{
    tide_span_t *s = tidei_arena_alloc_run(n_pages, align_pages, kind, false);
    if (!s) {
        tidei_heap_sweep_abandoned();
        s = min_pages < n_pages ? tidei_arena_alloc_run_fit(n_pages, min_pages, kind, true)
                                : tidei_arena_alloc_run(n_pages, align_pages, kind, true);
    }
    return s;
}

tide_span_t *tidei_heap_new_run(size_t n_pages, size_t align_pages, tide_span_kind_t kind)
{
    return new_run(n_pages, n_pages, align_pages, kind);
}

/* What changes whenever h's thread mallocs or frees: the fast-path mark,
 * the slow paths' count and the remote frees (an owner's free into its own
 * span counts nothing: the frees it makes without a malloc are only a
 * thread winding down, which the scavenger may as well take for idle).
 * Racy reads by design (a snapshot). */
__attribute__((no_sanitize("thread"))) uint64_t tidei_heap_activity(const tide_heap_t *h)
{
    const volatile tide_heap_t *v = h;
    uint64_t sum = (uint64_t)v->ctr.fast_left + v->slow_seq;
    for (int i = 0; i < TIDE_N_CLASSES; i++)
        sum += v->ctr.free_remote[i];
    return sum;
}

/* Adds the blocks out of h's spans to used[] per class, their counts of
 * mallocs to mallocs[], their number to spans[] and the blocks they hold
 * (built or not) to blocks[] (each if not NULL):
 * every span h owns is in a bin or on the full list.  With h->lock held the lists hold still and the sum is exact once
 * the owner is outside its fast paths (its free publishes a block with the
 * decrement of `used`); without it (a report at a signal) a snapshot, each
 * list cut at TIDE_WALK_MAX spans should it change under the walk.  This
 * is how the figures get the owner's frees into its own spans, which no
 * fast path counts (stats.c). */
__attribute__((no_sanitize("thread"))) void tidei_heap_used(const tide_heap_t *h, uint64_t *used, uint64_t *mallocs,
                                                             uint64_t *spans, uint64_t *blocks)
{
    const volatile tide_heap_t *v = h;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        size_t n = 0;
        for (const volatile tide_span_t *s = v->bins[c]; s && n < TIDE_WALK_MAX; s = s->next, n++) {
            if (used)
                used[c] += tidei_span_used((const tide_span_t *)s);
            if (mallocs)
                mallocs[c] += tidei_span_mallocs(s);
            if (blocks)
                blocks[c] += s->n_blocks;
        }
        if (spans)
            spans[c] += n;
    }
    size_t n = 0;
    for (const volatile tide_span_t *s = v->full; s && n < TIDE_WALK_MAX; s = s->next, n++) {
        uint8_t c = s->cls;
        if (c < TIDE_N_CLASSES) {
            if (used)
                used[c] += tidei_span_used((const tide_span_t *)s);
            if (mallocs)
                mallocs[c] += tidei_span_mallocs(s);
            if (spans)
                spans[c]++;
            if (blocks)
                blocks[c] += s->n_blocks;
        }
    }
}

/* SMALL spans the heap owns (its counters; read as tidei_heap_activity does). */
__attribute__((no_sanitize("thread"))) uint64_t tidei_heap_n_spans(const tide_heap_t *h)
{
    const volatile tide_heap_counters_t *c = &h->ctr;
    uint64_t n = 0;
    for (int i = 0; i < TIDE_N_CLASSES; i++)
        n += c->spans[i];
    return n;
}
