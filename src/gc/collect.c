/* gc/collect.c — a collection from start to end, and when to make one.
 *
 * Collection (tidei_gc_cycle).  Under tidei_gc_threads_lock: the roots are
 * listed (roots.c), every other registered thread is stopped (threads.c),
 * the marks are cleared, blocks on threads' free lists have their alloc
 * bit cleared (they are not traced), every root is scanned and what it
 * reaches marked (roots.c, mark.c), then finalization and disappearing
 * links are settled (finalize.c), the alloc bits of free lists are
 * restored, and the pools are rebuilt (sweep.c); the world restarts, the
 * dead spans go back to the page allocator, and the finalizers run.
 *
 * Pacing.  A collection starts when the bytes taken for allocation since
 * the last one reach gc_percent of the live bytes (at least 1 MiB), scaled
 * for the threads that allocate (tidei_gc_should_collect).
 *
 * Locks: tidei_gc_threads_lock, through the collection (taken by
 * tidei_gc_lock_threads, which counts the waiting caller as stopped); no
 * other GC lock is taken with the world stopped but par_mu (mark.c). */
#include "gc_internal.h"

_Atomic unsigned tidei_gc_no;
_Atomic int tidei_gc_disabled;
size_t tidei_gc_live_after;
void (*tidei_gc_start_cb)(void);
static uint64_t pause_ns_total, pause_ns_max, pause_ns_last;
static uint64_t pause_hist[8];         /* < 0.1, 0.3, 1, 3, 10, 30, 100 ms, more */
static _Atomic unsigned n_allocating;  /* threads that allocated in this cycle (should_collect) */
static unsigned n_allocating_prev;     /* ... in the last cycle */
static size_t heap_hwm;                /* bytes in use at collections (live + allocated since), their
                                          high-water mark, decayed */
static void pace_update(size_t heap_before);

/* The collection itself, from the roots' listing to the restart of the
 * world.  tidei_gc_threads_lock held; my_sp: the caller's stack pointer,
 * its callee-saved registers spilled above it. */
static tide_noinline void collect_locked(uintptr_t my_sp)
{
    uint64_t t0 = tidei_gc_now_ns();
    /* the bytes in use when this collection starts (what the budget counts) */
    size_t heap_before = __atomic_load_n(&tidei_gc_live_after, __ATOMIC_RELAXED) +
                         atomic_load_explicit(&tidei_gc_allocd_since, relaxed);
    if (tidei_gc_start_cb)
        tidei_gc_start_cb();
    tidei_gc_roots_list();
    tidei_gc_stop_world();
    /* what the threads took and did not add yet belongs to this cycle */
    for (gc_thread_t *t = tidei_gc_threads; t; t = t->next) {
        heap_before += t->allocd_pending;
        tidei_gc_allocd_flush(t);
    }
    unsigned cur = atomic_load_explicit(&tidei_gc_no, relaxed) + 1;
    atomic_store_explicit(&tidei_gc_no, cur, relaxed);
    tidei_gc_free_lists_alloc(false);
    tidei_gc_mark_start();
    /* roots: their direct referents are pushed, then drained in parallel */
    tidei_gc_roots_scan(my_sp);
    tidei_gc_mark_parallel();
    /* a mark stack that could not grow: settled before finalization looks
     * at the marks, or it would take reachable objects for dead (run their
     * finalizers, clear the links to them) */
    tidei_gc_mark_settle();
    tidei_gc_fin_mark();
    tidei_gc_mark_drain();
    tidei_gc_mark_settle();
    tidei_gc_fin_after_mark();
    tidei_gc_free_lists_alloc(true);
    __atomic_store_n(&tidei_gc_live_after, tidei_gc_mark_count(), __ATOMIC_RELAXED);
    atomic_store_explicit(&tidei_gc_allocd_since, 0, relaxed);
    n_allocating_prev = atomic_exchange_explicit(&n_allocating, 0, relaxed);
    pace_update(heap_before);
    tidei_gc_pools_rebuild();
    tidei_gc_start_world();
    uint64_t ns = tidei_gc_now_ns() - t0;
    __atomic_store_n(&pause_ns_last, ns, __ATOMIC_RELAXED);
    __atomic_store_n(&pause_ns_total, pause_ns_total + ns, __ATOMIC_RELAXED);
    if (ns > pause_ns_max)
        __atomic_store_n(&pause_ns_max, ns, __ATOMIC_RELAXED);
    static const uint64_t bounds[7] = { 100000, 300000, 1000000, 3000000, 10000000, 30000000, 100000000 };
    int b = 0;
    while (b < 7 && ns >= bounds[b])
        b++;
    __atomic_store_n(&pause_hist[b], pause_hist[b] + 1, __ATOMIC_RELAXED);
}

/* Collects now (the caller, not inside crit, is registered if it was not).
 * Returns after the dead spans went back to the page allocator and, unless
 * finalization is on demand, the finalizers ran. */
tide_noinline void tidei_gc_cycle(bool force)
{
    gc_thread_t *t = tidei_gc_thread();
    if (!t)
        return;
    if (!force && atomic_load_explicit(&tidei_gc_disabled, relaxed))
        return;
    unsigned before = atomic_load_explicit(&tidei_gc_no, relaxed);
    tidei_gc_lock_threads(t);
    tidei_gc_helpers_start();
    if (!force && atomic_load_explicit(&tidei_gc_no, relaxed) != before) {  /* another thread just did */
        pthread_mutex_unlock(&tidei_gc_threads_lock);
        return;
    }
    gc_spill_t jb;  /* the callee-saved registers, on the stack scanned */
    GC_SPILL_REGS(&jb);
    collect_locked((uintptr_t)&jb);
    __asm__ volatile("" : : "r"(&jb) : "memory");
    gc_span_t *dead = tidei_gc_dead_take();
    pthread_mutex_unlock(&tidei_gc_threads_lock);
    /* inside crit: it takes all_lock and the page allocator's lock, and a
     * thread stopped holding one would block another inside crit, hence
     * the stop (gcbench at 4 threads hung so) */
    tidei_gc_crit_enter(t);
    tidei_gc_dead_free(dead);
    tidei_gc_crit_leave(t);
    tidei_gc_fin_run_pending();
}

/* Pacing.  A collection starts when the bytes taken for allocation since
 * the last one reach a budget: gc_percent of the live bytes (at least
 * 1 MiB), times 3/2 when more than one thread allocated in this cycle or
 * the last: N threads fill a fixed budget N times as fast and each
 * collection stops all of them, but the heap grows with the factor.  (A
 * factor of N, up to the markers, was tried: gcbench at 2 threads made 31
 * collections rather than 32-34, but ECL's two threads of trees grew from
 * 27 to 29.6 MB of peak RSS, against libgc's 23.7.)
 *
 * Or, when the heap was bigger at an earlier collection, when it is back at
 * that size: memory the process already had costs no peak RSS, and fewer
 * collections mark the live set fewer times (gcbench: its first phase
 * builds a big tree, then keeps a third as much; 1 thread, gc_percent=100:
 * 58 collections become 25-30).  That high-water mark falls by 1/64 per
 * collection, so the memory of a spike is given back over a few dozen
 * collections rather than never (libgc never shrinks its heap). */
#define HWM_DECAY 64

static size_t pace_budget(size_t live, unsigned n)
{
    size_t b = live / 100 * (size_t)tidei_opt.gc_percent;
    if (b < ((size_t)1 << 20))
        b = (size_t)1 << 20;
    if (n > 1)
        b = b / 2 * 3;
    return b;
}

/* After a mark (world stopped): the high-water mark with the heap's size
 * before this collection. */
static void pace_update(size_t heap_before)
{
    size_t keep = heap_hwm - heap_hwm / HWM_DECAY;
    __atomic_store_n(&heap_hwm, heap_before > keep ? heap_before : keep, __ATOMIC_RELAXED);
}

/* Whether the allocation that took the caller to its slow path should
 * start a collection. */
bool tidei_gc_should_collect(void)
{
    size_t since = atomic_load_explicit(&tidei_gc_allocd_since, relaxed);
    size_t live = __atomic_load_n(&tidei_gc_live_after, __ATOMIC_RELAXED);
    unsigned n = n_allocating_prev > atomic_load_explicit(&n_allocating, relaxed)
                     ? n_allocating_prev : atomic_load_explicit(&n_allocating, relaxed);
    size_t trigger = pace_budget(live, n);
    size_t hwm = __atomic_load_n(&heap_hwm, __ATOMIC_RELAXED);
    if (hwm > live && hwm - live > trigger)
        trigger = hwm - live;
    return since >= trigger && !atomic_load_explicit(&tidei_gc_disabled, relaxed);
}

/* Counts t among this cycle's allocating threads (its slow path). */
void tidei_gc_note_allocating(gc_thread_t *t)
{
    unsigned cur = atomic_load_explicit(&tidei_gc_no, relaxed);
    if (t->alloc_cycle != cur + 1) {
        t->alloc_cycle = cur + 1;
        atomic_fetch_add_explicit(&n_allocating, 1, relaxed);
    }
}

/* GC_gcollect: a full collection, even while disabled. */
void tidei_gc_collect(void)
{
    tidei_gc_cycle(true);
}

/* GC_disable (d = 1) and GC_enable (d = -1). */
void tidei_gc_disable(int d)
{
    atomic_fetch_add_explicit(&tidei_gc_disabled, d, relaxed);
}

/* ---- figures ---- */

void tidei_gc_stats(struct tide_gc_stats *out)
{
    memset(out, 0, sizeof *out);
    if (atomic_load_explicit(&tidei_gc_state, acquire) != 2)
        return;
#define RD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
    out->heap_bytes = atomic_load_explicit(&tidei_gc_heap_bytes, relaxed);
    out->live_bytes = RD(tidei_gc_live_after);
    out->allocated_since_gc = atomic_load_explicit(&tidei_gc_allocd_since, relaxed);
    out->allocated_total = atomic_load_explicit(&tidei_gc_allocd_total, relaxed);
    out->reclaimed_total = atomic_load_explicit(&tidei_gc_reclaimed_total, relaxed);
    out->n_collections = atomic_load_explicit(&tidei_gc_no, relaxed);
    out->n_explicit_frees = atomic_load_explicit(&tidei_gc_n_freed_explicit, relaxed);
    out->n_threads = RD(tidei_gc_n_threads);
    out->pause_ns_total = RD(pause_ns_total);
    out->pause_ns_max = RD(pause_ns_max);
    out->pause_ns_last = RD(pause_ns_last);
    for (int i = 0; i < 8; i++)
        out->pause_hist[i] = RD(pause_hist[i]);
    out->max_heap_bytes = RD(tidei_gc_max_heap);
#undef RD
}
