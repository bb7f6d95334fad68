/* gc/mark.c — the markers: the mark stack, the pointer test (the page
 * map gives any word's span, hence its block, interior pointers
 * included), and the parallel mark with its helper threads.
 *
 * The collecting thread marks on its own stack (mk0); when the stack is
 * big enough, helper threads (one per CPU beyond the first, gc_markers;
 * not registered, every signal blocked) drain their own stacks and share
 * work through a pool under par_mu.  A mark is a byte per block, set by
 * a plain store (gc_internal.h: MARKB), so markers in parallel need no
 * locked instruction; blocks are counted after the mark.  Ranges are prefetched through a small
 * FIFO before they are scanned, and each marker keeps the page it last
 * looked up in the page map.
 *
 * Locks: par_mu (the shared pool, the helpers' start and end), taken by
 * markers during a mark (the collector holds tidei_gc_threads_lock, the
 * world stopped) and by the fork handlers; nothing is taken under it. */
#include <unistd.h>

#include "gc_internal.h"

/* One marker's state: the collecting thread's (mk0), or a helper's; each
 * on cache lines of its own (markers write theirs all the time). */
typedef struct __attribute__((aligned(64))) gc_marker {
    gc_range_t *stk;                /* its mark stack (mapped): ranges to scan */
    size_t n, cap;               /* entries used, room for */
    bool overflow;               /* a push was dropped (no memory): some objects not scanned */
    bool settled;                /* mk0: every allocated block was counted as marked (overflow) */
    uintptr_t cpage;             /* the page last looked up (0: none), and what it held: */
    tide_span_t *cs;             /*   its span (NULL: not a GC span) */
    gc_span_t *cg;               /*   its GC data */
} gc_marker_t;

static gc_marker_t mk0;             /* the collecting thread's */
static uintptr_t mark_lo, mark_hi; /* heap bounds for this collection */

/* Parallel marking: helper threads (not registered, every signal blocked)
 * drain their own stacks and share through a pool under par_mu. */
#define MAX_HELPERS 7
static gc_marker_t mk_help[MAX_HELPERS];
static pthread_t help_th[MAX_HELPERS];
static int n_helpers;            /* started */
static bool helpers_tried;       /* started once (or not wanted) */
static bool help_gone[MAX_HELPERS]; /* helper i left, idle (par_mu): started again by the next collection */
static pthread_mutex_t par_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_cv = PTHREAD_COND_INITIALIZER;   /* work in the pool, or done */
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER; /* a parallel drain begins */
static pthread_cond_t exit_cv = PTHREAD_COND_INITIALIZER;  /* a helper left the drain */
static gc_range_t *par_pool;        /* shared ranges (mapped) */
static size_t par_n, par_cap;
static int par_total, par_idle, par_left; /* markers in this drain (helpers that joined), idle ones, helpers still in it */
static bool par_done;            /* every marker idle with an empty pool */
static unsigned par_epoch;       /* bumped per parallel drain */
static _Atomic int par_want;     /* an idle marker waits: busy ones share */

static bool stack_grow(gc_range_t **stk, size_t *cap)
{
    size_t ncap = *cap ? *cap * 2 : TIDE_GC_MARK_STACK_MIN;
    void *p = *stk ? tidei_os_remap(*stk, *cap * sizeof(gc_range_t), ncap * sizeof(gc_range_t), true)
                   : tidei_os_map(ncap * sizeof(gc_range_t));
    if (!p)
        return false;
    *stk = p;
    *cap = ncap;
    return true;
}

static inline void push_m(gc_marker_t *m, uintptr_t lo, uintptr_t hi)
{
    if (tide_unlikely(m->n == m->cap) && !stack_grow(&m->stk, &m->cap)) {
        m->overflow = true;
        return;
    }
    m->stk[m->n++] = (gc_range_t){ lo, hi };
}

/* Ranges of at least TIDE_SPARSE_MIN bytes are read only where their pages
 * were ever written (tidei_os_each_written, through the pagemap opened
 * for the collection): a big block from GC_MALLOC, a large static array
 * of the program, a GC_add_roots range that is mostly untouched would
 * otherwise be faulted in, and read, at every collection.  Roots are cut
 * so in scan_range_m, pushed ranges (blocks, GC_push_all) when the drain
 * takes them. */
static int pagemap_fd = -1;  /* /proc/self/pagemap during a collection, or -1 */

/* Marks the block of GC span g (descriptor s) that w, an address inside
 * the span, points into, if it is allocated and was not marked yet: then
 * true, with the block's extent to scan in *r.  Markers in parallel may
 * both find a block unmarked and both scan it (a byte store each, no
 * lock): the second scan finds what the block points to marked, and
 * every count is taken from the marks after the mark.  Inlined into both
 * markers below, the drain keeping its state in registers. */
static inline bool mark_block(gc_span_t *g, const tide_span_t *s, uintptr_t w, gc_range_t *r)
{
    uint32_t i;
    uintptr_t base;
    if (g->big) {
        i = 0;
        base = s->start;
        if (w >= base + g->size)
            return false;
    } else {
        i = (uint32_t)tidei_block_index(s, w);
        if (i >= g->n_blocks)
            return false;
        base = s->start + (uintptr_t)i * g->size;
    }
    if (!BIT_TEST(ALLOCS(g), i) || MARK_TEST(g, i))
        return false;
    MARK_SET(g, i);
    *r = (gc_range_t){ base, base + (g->big ? g->req : g->size) };
    return true;
}

/* Marks the block word w points into, if it is a live GC block; pushes its
 * contents unless atomic.  World stopped; markers may run in parallel
 * (a mark is a byte store: see mark_block). */
static inline void mark_word_m(gc_marker_t *m, uintptr_t w)
{
    if (w - mark_lo >= mark_hi - mark_lo)
        return;
    /* words next to each other often point into one page: the last
     * lookup is kept (reset at every collection: spans only change
     * between collections) */
    tide_span_t *s;
    gc_span_t *g;
    uintptr_t page = w >> TIDE_PAGE_SHIFT;
    if (page == m->cpage) {
        s = m->cs;
        g = m->cg;
        if (!s)
            return;
    } else {
        s = tidei_pagemap_lookup((void *)w);
        g = s && s->kind == TIDE_SPAN_GC ? s->gc : NULL;
        if (!g)
            s = NULL;
        m->cpage = page;
        m->cs = s;
        m->cg = g;
        if (!s)
            return;
    }
    gc_range_t r;
    if (mark_block(g, s, w, &r) && g->kind != GK_ATOMIC)
        push_m(m, r.lo, r.hi);
}

static void scan_words_m(uintptr_t lo, uintptr_t hi, void *arg)
{
    gc_marker_t *m = arg;
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t p = lo; p + 8 <= hi; p += 8)
        mark_word_m(m, *(const uintptr_t *)p);
}

static void scan_range_m(gc_marker_t *m, uintptr_t lo, uintptr_t hi)
{
    if (hi - lo >= TIDE_SPARSE_MIN)
        tidei_os_each_written(pagemap_fd, lo, hi, scan_words_m, m);
    else
        scan_words_m(lo, hi, m);
}

/* Moves the older half of m's stack to the pool, for an idle marker. */
static tide_noinline void share(gc_marker_t *m)
{
    size_t half = m->n / 2;
    pthread_mutex_lock(&par_mu);
    while (par_n + half > par_cap && stack_grow(&par_pool, &par_cap))
        ;
    if (par_n + half <= par_cap) {
        memcpy(par_pool + par_n, m->stk, half * sizeof(gc_range_t));
        par_n += half;
        memmove(m->stk, m->stk + half, (m->n - half) * sizeof(gc_range_t));
        m->n -= half;
        atomic_store_explicit(&par_want, 0, relaxed);
        pthread_cond_broadcast(&par_cv);
    }
    pthread_mutex_unlock(&par_mu);
}

/* Empties m's stack.  Ranges go through a small FIFO whose entries are
 * prefetched when they enter it: by the time one is scanned its first
 * line has arrived (marking is bound by the misses on object memory).
 * When another marker is idle, half of the stack (the older half: the
 * biggest subtrees) goes to the pool.
 *
 * The hot loop of the collector, written so that its state stays in
 * registers: the heap bounds, the span last looked up (its address range,
 * so a tree's pointers into the same span skip the page map), the stack's
 * top and room are locals (stores to the stack could alias them in m),
 * written back around share() and the stack's growth.
 *
 * The FIFO's depth is how far ahead of the scan the prefetches run: a
 * range is scanned PF_N ranges after its prefetch, a few nanoseconds each,
 * against a miss of 100 ns or more in this VM.  A tree of 2 M nodes
 * (one marker, gcollect of a depth-20 tree, best of 10): 8 entries 27-30
 * ms, 16 entries 21-23, 32 entries 27-28, 64 entries 30-34 (a deeper FIFO
 * holds ranges back from the stack, which idle markers share, and from
 * the depth-first order that keeps a subtree's lines together). */
#define PF_N 16
static void drain_m(gc_marker_t *m)
{
    const uintptr_t lo0 = mark_lo, ext = mark_hi - mark_lo;
    uintptr_t c_lo = 0, c_len = 0;  /* the range last looked up: a span, or a page of no GC span */
    tide_span_t *cs = NULL;
    gc_span_t *cg = NULL;
    gc_range_t *stk = m->stk;
    size_t n = m->n, cap = m->cap;
    gc_range_t q[PF_N];
    unsigned head = 0, nq = 0;
    for (;;) {
        if (tide_unlikely(atomic_load_explicit(&par_want, relaxed)) && n >= 2) {
            m->n = n;
            share(m);
            n = m->n;
        }
        while (nq < PF_N && n) {
            gc_range_t r = stk[--n];
            __builtin_prefetch((const void *)r.lo);
            q[(head + nq++) % PF_N] = r;
        }
        if (!nq)
            break;
        gc_range_t r = q[head];
        head = (head + 1) % PF_N;
        nq--;
        if (tide_unlikely(r.hi - r.lo >= TIDE_SPARSE_MIN)) {  /* its written pages only */
            m->n = n;
            scan_range_m(m, r.lo, r.hi);
            stk = m->stk;
            n = m->n;
            cap = m->cap;
            continue;
        }
        for (uintptr_t p = (r.lo + 7) & ~(uintptr_t)7; p + 8 <= r.hi; p += 8) {
            uintptr_t w = *(const uintptr_t *)p;
            if (w - lo0 >= ext)
                continue;
            if (w - c_lo >= c_len) {
                tide_span_t *s = tidei_pagemap_lookup((void *)w);
                gc_span_t *g = s && s->kind == TIDE_SPAN_GC ? s->gc : NULL;
                if (g) {
                    c_lo = s->start;
                    c_len = s->n_pages << TIDE_PAGE_SHIFT;
                } else {
                    c_lo = w & ~(uintptr_t)(TIDE_PAGE_SIZE - 1);
                    c_len = TIDE_PAGE_SIZE;
                }
                cs = s;
                cg = g;
            }
            gc_span_t *g = cg;
            if (!g)
                continue;
            gc_range_t blk;
            if (!mark_block(g, cs, w, &blk) || g->kind == GK_ATOMIC)
                continue;
            if (tide_unlikely(n == cap)) {
                m->n = n;
                bool grown = stack_grow(&m->stk, &m->cap);
                stk = m->stk;
                cap = m->cap;
                if (!grown) {
                    m->overflow = true;
                    continue;
                }
            }
            stk[n++] = blk;
        }
    }
    m->n = n;
}

/* A marker's part of a parallel drain: its stack, then work from the pool,
 * until every marker is idle and the pool empty. */
static void par_work(gc_marker_t *m)
{
    for (;;) {
        drain_m(m);
        pthread_mutex_lock(&par_mu);
        par_idle++;
        for (;;) {
            if (par_done || par_n)
                break;
            if (par_idle == par_total) {
                par_done = true;
                pthread_cond_broadcast(&par_cv);
                break;
            }
            atomic_store_explicit(&par_want, 1, relaxed);
            pthread_cond_wait(&par_cv, &par_mu);
        }
        if (par_done) {
            pthread_mutex_unlock(&par_mu);
            return;
        }
        par_idle--;
        size_t take = par_n / (size_t)par_total + 1;
        if (take > par_n)
            take = par_n;
        while (m->n + take > m->cap && stack_grow(&m->stk, &m->cap))
            ;
        if (m->n + take > m->cap)
            take = m->cap - m->n;
        par_n -= take;
        memcpy(m->stk + m->n, par_pool + par_n, take * sizeof(gc_range_t));
        m->n += take;
        pthread_mutex_unlock(&par_mu);
    }
}

static void *helper_main(void *arg)
{
    gc_marker_t *m = arg;
    unsigned seen = 0;
    pthread_mutex_lock(&par_mu);
    seen = par_epoch;
    pthread_mutex_unlock(&par_mu);
    for (;;) {
        pthread_mutex_lock(&par_mu);
        while (par_epoch == seen) {
            /* no collection for a while: the thread goes (a thread of
             * tide's must not keep alive a process whose first thread
             * called pthread_exit), and the next collection starts it
             * again (tidei_gc_helpers_start) */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);  /* start_cv's clock */
            ts.tv_sec += TIDE_GC_HELPER_LINGER_S;
            if (pthread_cond_timedwait(&start_cv, &par_mu, &ts) == ETIMEDOUT && par_epoch == seen) {
                help_gone[m - mk_help] = true;
                pthread_mutex_unlock(&par_mu);
                return NULL;
            }
        }
        seen = par_epoch;
        if (par_done) {  /* too late: the markers already in finished without it */
            pthread_mutex_unlock(&par_mu);
            continue;
        }
        par_total++;
        par_left++;
        pthread_mutex_unlock(&par_mu);
        par_work(m);
        pthread_mutex_lock(&par_mu);
        par_left--;
        pthread_cond_signal(&exit_cv);
        pthread_mutex_unlock(&par_mu);
    }
    return NULL;
}

/* Starts the helpers once: one per online CPU beyond the first, at most
 * MAX_HELPERS (a single-CPU machine gets none).  tidei_gc_threads_lock held, before
 * the world stops. */
/* Starts helper i; true if it runs.  Every signal blocked, as the caller
 * set them. */
static bool helper_create(int i)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, TIDE_GC_HELPER_STACK);
    bool ok = pthread_create(&help_th[i], &a, helper_main, &mk_help[i]) == 0;
    pthread_attr_destroy(&a);
    return ok;
}

/* The helpers that left, idle, start again (the first collection of a
 * while).  A helper that cannot start is counted out of the drains; they
 * need none. */
static void helpers_restart(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n_helpers; i++) {
        pthread_mutex_lock(&par_mu);
        bool gone = help_gone[i];
        pthread_mutex_unlock(&par_mu);
        if (gone && helper_create(i)) {
            pthread_mutex_lock(&par_mu);
            help_gone[i] = false;
            pthread_mutex_unlock(&par_mu);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void tidei_gc_helpers_start(void)
{
    if (helpers_tried) {
        helpers_restart();
        return;
    }
    helpers_tried = true;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cpus > 1 ? (int)cpus - 1 : 0;
    if (want > MAX_HELPERS)
        want = MAX_HELPERS;
    if (tidei_opt.gc_markers > 0 && tidei_opt.gc_markers - 1 < want)
        want = (int)tidei_opt.gc_markers - 1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < want && helper_create(i); i++)
        n_helpers++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Drains mk0 with the helpers.  They start however little the roots
 * pushed: a tree hangs from one root, and a depth-first walk of it never
 * holds more than a few dozen ranges, which is why a busy marker shares as
 * soon as it holds two (gcbench: the mark ran on one core, 2x slower). */
void tidei_gc_mark_parallel(void)
{
    if (!n_helpers || mk0.n == 0) {
        drain_m(&mk0);
        return;
    }
    pthread_mutex_lock(&par_mu);
    par_total = 1;  /* helpers count once they join: a drain never waits for one to be scheduled */
    par_idle = 0;
    par_left = 0;
    par_done = false;
    par_n = 0;
    atomic_store_explicit(&par_want, 1, relaxed);
    par_epoch++;
    pthread_cond_broadcast(&start_cv);
    pthread_mutex_unlock(&par_mu);
    par_work(&mk0);
    pthread_mutex_lock(&par_mu);
    while (par_left)
        pthread_cond_wait(&exit_cv, &par_mu);
    pthread_mutex_unlock(&par_mu);
    atomic_store_explicit(&par_want, 0, relaxed);
    for (int i = 0; i < n_helpers; i++)
        mk0.overflow |= mk_help[i].overflow;
}

/* ---- what the collection calls (the collecting thread's marker) ---- */

void tidei_gc_mark_start(void)
{
    for (gc_span_t *g = tidei_gc_all_spans; g; g = g->next) {
        if (g->has_marks) {  /* (most spans of a heap of garbage have none: a third of the bytes) */
            memset(MARKB(g), 0, (size_t)g->words * 64);
            g->has_marks = 0;
        }
    }
    mark_lo = atomic_load_explicit(&tidei_gc_heap_lo, relaxed);
    mark_hi = atomic_load_explicit(&tidei_gc_heap_hi, relaxed);
    if (mark_hi < mark_lo)
        mark_hi = mark_lo;
    pagemap_fd = tidei_os_open_proc("pagemap", 0);
    mk0.overflow = false;
    mk0.settled = false;
    mk0.cpage = 0;
    for (int i = 0; i < n_helpers; i++) {
        mk_help[i].cpage = 0;
        mk_help[i].overflow = false;
    }
}

/* After a drain: if a push was dropped (the OS refused memory for a mark
 * stack), some reachable blocks may be unmarked, so every allocated block
 * counts as marked: this collection frees nothing, and (settled before
 * finalization looks at the marks) runs no finalizer and clears no link,
 * rather than take a live block for dead.  Called after the roots' drain
 * and after finalization's; the second time only if finalization's marks
 * overflowed.  World stopped. */
void tidei_gc_mark_settle(void)
{
    if (!mk0.overflow || mk0.settled)
        return;
    mk0.settled = true;
    for (gc_span_t *g = tidei_gc_all_spans; g; g = g->next) {
        for (uint32_t i = 0; i < g->n_blocks; i++)
            MARKB(g)[i] = (uint8_t)BIT_TEST(ALLOCS(g), i);
        g->has_marks = 1;
    }
    if (tidei_opt.verbose)
        tidei_warn("tide: GC: no memory for the mark stack; this collection frees nothing\n");
}

void tidei_gc_mark_word(uintptr_t w) { mark_word_m(&mk0, w); }
void tidei_gc_scan_range(uintptr_t lo, uintptr_t hi) { scan_range_m(&mk0, lo, hi); }
void tidei_gc_mark_drain(void) { drain_m(&mk0); }
/* After the mark: each span's count of marked blocks (n_marked), and the
 * bytes marked in all.  Counted here rather than as blocks are marked: a
 * marker's mark is then one store (one atomic OR in a parallel drain, and
 * no shared counter).  World stopped. */
size_t tidei_gc_mark_count(void)
{
    if (pagemap_fd >= 0) {
        close(pagemap_fd);
        pagemap_fd = -1;
    }
    size_t bytes = 0;
    for (gc_span_t *g = tidei_gc_all_spans; g; g = g->next) {
        uint32_t n = 0;
        const uint8_t *mb = MARKB(g);
        for (uint32_t j = 0; g->has_marks && j < g->words * 8; j++) {
            uint64_t x;
            memcpy(&x, mb + 8 * (size_t)j, 8);
            n += (uint32_t)((x * 0x0101010101010101ull) >> 56);  /* the sum of 8 bytes of 0 or 1 */
        }
        g->n_marked = n;
        bytes += (size_t)n * g->size;
    }
    return bytes;
}

void tidei_gc_push_range(void *lo, void *hi)
{
    if ((uintptr_t)lo < (uintptr_t)hi)
        push_m(&mk0, (uintptr_t)lo, (uintptr_t)hi);
}

/* Marks obj (a GC block or not) and what it reaches. */
void tidei_gc_mark_from(uintptr_t w)
{
    tidei_gc_mark_word(w);
    tidei_gc_mark_drain();
}

/* Uncollectable blocks are roots: each is marked and its contents pushed. */
void tidei_gc_mark_uncollectable(void)
{
    for (gc_span_t *g = tidei_gc_all_spans; g; g = g->next) {
        if (g->kind != GK_UNCOLL)
            continue;
        for (uint32_t i = 0; i < g->n_blocks; i++) {
            if (!BIT_TEST(ALLOCS(g), i) || MARK_TEST(g, i))
                continue;
            MARK_SET(g, i);
            uintptr_t base = g->span->start + (uintptr_t)i * g->size;
            push_m(&mk0, base, base + (g->big ? g->req : g->size));
        }
    }
}

void tidei_gc_start_markers(void)
{
    tidei_gc_init_once();
    pthread_mutex_lock(&tidei_gc_threads_lock);
    tidei_gc_helpers_start();
    pthread_mutex_unlock(&tidei_gc_threads_lock);
}

/* ---- fork (threads.c's handlers) ---- */

void tidei_gc_mark_fork_prepare(void)
{
    pthread_mutex_lock(&par_mu);
}

void tidei_gc_mark_fork_parent(void)
{
    pthread_mutex_unlock(&par_mu);
}

void tidei_gc_mark_fork_child(void)
{
    /* the helpers waited on these: a condition variable keeps count of its
     * waiters, and a broadcast to waiters gone with the fork waits forever */
    static const pthread_cond_t fresh = PTHREAD_COND_INITIALIZER;
    memcpy(&par_cv, &fresh, sizeof fresh);
    memcpy(&start_cv, &fresh, sizeof fresh);
    memcpy(&exit_cv, &fresh, sizeof fresh);
    pthread_mutex_unlock(&par_mu);
    n_helpers = 0;  /* the helpers are gone: started again when needed */
    helpers_tried = false;
    memset(help_gone, 0, sizeof help_gone);
}

/* ---- mark bits asked by the API ---- */

/* GC_is_marked (set < 0), GC_set_mark_bit (1), GC_clear_mark_bit (0): the
 * old mark bit of p's block, set or cleared. */
int tidei_gc_mark_bit(const void *p, int set)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup(p, &i, &base);
    if (!g)
        return 0;
    int old = (int)MARK_TEST(g, i);
    /* (a span whose only marked block was marked here, as ECL marks its
     * Lisp stacks, is not taken for dead: n_marked is counted from the
     * bits after the mark) */
    if (set > 0)
        MARK_SET(g, i);
    else if (set == 0)
        MARK_CLEAR(g, i);
    return old;
}

