/* gc.c — the garbage-collected heap (layer 8): allocation from per-thread
 * free lists, a conservative stop-the-world mark, a lazy sweep.
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
 * unswept one, which it sweeps then (lazy sweep: alloc &= mark), else a new
 * span.  Taking a span sets the alloc bit of every block put on the list.
 *
 * Collection (tidei_gc_collect).  Under threads_lock: the roots are listed
 * (dl_iterate_phdr: the writable segments of every module, and the TLS
 * segments), every other registered thread is stopped by a signal, the
 * marks are cleared, blocks on threads' free lists have their alloc bit
 * cleared (they are not traced), every root is scanned (data segments, each
 * thread's stack from its interrupted stack pointer with its registers
 * saved by the handler, each thread's static and dynamic TLS blocks,
 * GC_add_roots ranges, uncollectable blocks, the embedder's push hook),
 * then finalization and disappearing links are settled, the alloc bits of
 * free lists are restored, and the pools are rebuilt: every span a thread
 * holds counts as swept in this cycle (its blocks allocated since the mark
 * are not marked: it is never swept before the next collection; its dead
 * blocks wait one cycle), spans with no mark at all are given back to the
 * page allocator after the world restarts, the others go to the unswept
 * list of their pool.  Dead big blocks are freed after the restart too.
 *
 * Stopping threads.  A thread stops in the signal handler (SA_RESTART),
 * saves its registers and stack pointer, acknowledges, and waits on a futex
 * until the collection ends.  A thread inside a GC slow path (`crit`, which
 * may hold a pool lock) stops when it leaves it; one inside tide's malloc
 * (tidei_interrupted_inside) is signalled again a moment later.  So while
 * the world is stopped no pool, big or table lock is held by a stopped
 * thread, and the collector never takes the arena lock.
 *
 * Lock order: threads_lock -> pool locks -> big_lock -> tables_lock ->
 * (tide's) heaps lock -> arena lock.  A thread holds a pool, big or tables
 * lock only inside crit; threads_lock is never taken inside crit. */
#include <dlfcn.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "tide_internal.h"

enum { GK_NORMAL = 0, GK_ATOMIC, GK_UNCOLL, GK_N };

/* A free GC block: its link on a thread's free list (plain: these lists are
 * the GC heap's own, not malloc's encoded ones) and tidei_free_key while
 * free, which GC_FREE tests to catch a second free. */
typedef struct gc_link {
    struct gc_link *next;
    uintptr_t key;
} gc_link_t;
enum { GL_NONE = 0, GL_SWEEP, GL_AVAIL, GL_FULL, GL_DEAD };

/* The collector's data of one GC span.  Fields written while a thread
 * holds the span are the holder's; others under the pool lock, or by the
 * collector with the world stopped. */
typedef struct tidei_gc_span {
    tide_span_t *span;           /* the span described */
    struct tidei_gc_span *next, *prev; /* every GC span (all_lock held to change; world stopped to walk) */
    struct tidei_gc_span *lnext, *lprev; /* the pool list it is on (pool lock), or the big list */
    size_t size;                 /* bytes per block (big: bytes of the block) */
    size_t req;                  /* big: bytes asked for */
    uint32_t n_blocks;           /* blocks in the span (1 if big) */
    uint32_t words;              /* 64-bit words per bitmap */
    uint32_t swept;              /* collection number it was last swept in */
    uint32_t n_marked;           /* blocks the last collection marked */
    uint32_t take_pos;           /* held: the bitmap word span_take_free goes on from */
    uint8_t fresh;               /* every block not handed out yet is zero (pages new from the OS) */
    uint8_t kind;                /* GK_* */
    uint8_t big;                 /* one block */
    uint8_t huge;                /* big, a huge mapping (its descriptor's kind was HUGE) */
    uint8_t held;                /* a thread holds it (its free blocks are on that thread's list) */
    uint8_t list;                /* GL_*: which pool list it is on */
    uint8_t cls;                 /* size class (small) */
    gc_link_t *pending;       /* blocks GC_FREE'd by other threads while held (pool lock) */
    struct tidei_gc_span *pool_next; /* recycling of descriptors */
    uint64_t bits[];             /* mark[words], then alloc[words] */
} gc_span_t;

#define MARKS(g) ((g)->bits)
#define ALLOCS(g) ((g)->bits + (g)->words)
#define BIT_TEST(m, i) (((m)[(i) >> 6] >> ((i)&63)) & 1)
#define BIT_SET(m, i) ((m)[(i) >> 6] |= (uint64_t)1 << ((i)&63))
#define BIT_CLEAR(m, i) ((m)[(i) >> 6] &= ~((uint64_t)1 << ((i)&63)))

/* A pool: the spans of one (kind, class) no thread holds. */
typedef struct gc_pool {
    pthread_mutex_t lock;        /* guards the lists and their spans' list/held/pending fields */
    gc_span_t *sweep;            /* not swept since the last collection */
    gc_span_t *avail;            /* swept, with free blocks */
    gc_span_t *full;             /* swept, no free block */
} gc_pool_t;

/* A thread that uses the GC heap (registered). */
typedef struct gc_thread {
    gc_link_t *fl[GK_N][TIDE_N_CLASSES]; /* free lists (owner only, no lock) */
    gc_span_t *held[GK_N][TIDE_N_CLASSES];  /* the span each list comes from */
    struct gc_thread *next, *prev; /* registry (threads_lock) */
    struct gc_thread *pool_next; /* recycled structures */
    pthread_t self;              /* the thread */
    int tid;                     /* its kernel id */
    uintptr_t stack_hi;          /* highest address of its stack */
    uintptr_t stack_lo;          /* lowest address of its stack mapping (0: unknown) */
    uintptr_t tp;                /* its thread pointer (TLS) */
    uintptr_t sp;                /* where its stack starts being scanned (set when stopped) */
    uintptr_t regs[NGREG];       /* its registers when stopped */
    _Atomic unsigned stopped_seq;/* the stop sequence it last stopped for */
    int crit;                    /* inside a GC slow path: stops when it leaves (owner writes;
                                    its signal handler and the collector read) */
    volatile int stop_pending;   /* a stop arrived inside crit */
    _Atomic int blocking;        /* in GC_do_blocking: not stopped; its stack is scanned from blocking_sp */
    uintptr_t blocking_sp;       /* stack pointer when it entered GC_do_blocking */
    bool from_create;            /* registered by GC_pthread_create's wrapper */
    bool exiting;                /* being unregistered */
    unsigned alloc_cycle;        /* 1 + the collection number of the cycle it last allocated in */
} gc_thread_t;

/* ---- globals ---- */

static _Atomic int gc_state;     /* 0 never used, 1 initializing, 2 ready */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER; /* registry; held through a collection */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;     /* the all-spans list, descriptor pools */
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;     /* the big-block list */
static gc_pool_t pools[GK_N][TIDE_N_CLASSES];
static gc_span_t *all_spans;     /* every GC span */
static gc_span_t *bigs;          /* every big block (lnext/lprev) */
static gc_span_t *desc_pool[TIDE_N_CLASSES + 1]; /* recycled descriptors per class; [N] big ones */
static gc_thread_t *threads;     /* registered threads */
static gc_thread_t *thread_pool; /* recycled thread structures (threads_lock) */
static size_t n_threads;         /* registered */
static __thread gc_thread_t *gc_tl; /* the calling thread's, or NULL */
static pthread_key_t exit_key;   /* destructor unregisters */
static int stop_sig;             /* the stop signal */
static _Atomic unsigned stop_seq;/* odd while the world is stopped */
static _Atomic unsigned n_acked; /* stops acknowledged in this sequence */
static _Atomic uintptr_t heap_lo = UINTPTR_MAX, heap_hi; /* bounds of every GC span ever */
static uintptr_t own_lo, own_hi; /* libtide's own writable segment bounds (not roots) */

/* Figures; atomics are touched on slow paths only. */
static _Atomic size_t heap_bytes;      /* bytes of GC spans */
static _Atomic size_t allocd_since;    /* bytes taken for allocation since the last collection */
static _Atomic uint64_t allocd_total;  /* ever */
static size_t live_after;              /* bytes marked by the last collection */
static _Atomic unsigned gc_no;         /* collections done */
static _Atomic int gc_disabled;        /* GC_disable depth */
static uint64_t pause_ns_total, pause_ns_max, pause_ns_last;
static uint64_t pause_hist[8];         /* < 0.1, 0.3, 1, 3, 10, 30, 100 ms, more */
static size_t max_heap;                /* 0: none (GC_set_max_heap_size, gc_max_mb) */
static _Atomic uint64_t n_freed_explicit; /* GC_FREE calls */
static _Atomic uint64_t reclaimed_total; /* bytes found dead by sweeps */
static _Atomic unsigned n_allocating;  /* threads that allocated in this cycle (should_collect) */
static unsigned n_allocating_prev;     /* ... in the last cycle */

/* Hooks (gc_api.c). */
void *(*tidei_gc_oom_fn)(size_t);
void (*tidei_gc_start_cb)(void);
bool tidei_gc_no_dls;
/* Boehm's variable: the embedder's root pusher, called during the mark. */
tide_export void (*GC_push_other_roots)(void);

static void gc_fin_mark(void);
static void gc_fin_after_mark(void);
static void gc_fin_run_pending(void);
static bool gc_roots_scan(void);

/* ---- small helpers ---- */

static long futex(_Atomic unsigned *addr, int op, unsigned val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uintptr_t thread_pointer(void)
{
    uintptr_t tp = 0;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
    return tp;
}

/* Spills the callee-saved registers into regs[] (on the caller's stack,
 * which is then scanned).  setjmp would not do: glibc mangles the rbp it
 * saves, and rbp is an ordinary register without frame pointers. */
typedef struct spill {
    uintptr_t r[8];
} spill_t;
#define SPILL_REGS(sp_) \
    __asm__ volatile("mov %%rbx, 0(%0)\n\tmov %%rbp, 8(%0)\n\tmov %%r12, 16(%0)\n\t" \
                     "mov %%r13, 24(%0)\n\tmov %%r14, 32(%0)\n\tmov %%r15, 40(%0)" \
                     : : "r"((sp_)->r) : "memory")

static inline void crit_enter(gc_thread_t *t)
{
    __atomic_store_n(&t->crit, t->crit + 1, __ATOMIC_RELAXED);  /* the collector peeks at it */
    atomic_signal_fence(memory_order_seq_cst);
}

static void self_stop(gc_thread_t *t);

static inline void crit_leave(gc_thread_t *t)
{
    atomic_signal_fence(memory_order_seq_cst);
    int c = t->crit - 1;
    __atomic_store_n(&t->crit, c, __ATOMIC_RELAXED);
    if (c == 0) {
        atomic_signal_fence(memory_order_seq_cst);
        if (tide_unlikely(t->stop_pending))
            self_stop(t);
    }
}

/* ---- span descriptors ---- */

/* A descriptor for class cls (TIDE_N_CLASSES: big) with room for n blocks.
 * all_lock held. */
static gc_span_t *desc_new(int cls, uint32_t n_blocks)
{
    gc_span_t *g = desc_pool[cls];
    uint32_t words = (n_blocks + 63) / 64;
    if (g && g->words >= words) {
        desc_pool[cls] = g->pool_next;
    } else {
        pthread_mutex_lock(&tidei_arena.lock);
        g = tidei_meta_alloc(sizeof(gc_span_t) + 2 * words * sizeof(uint64_t));
        pthread_mutex_unlock(&tidei_arena.lock);
        if (!g)
            return NULL;
        g->words = words;
    }
    uint32_t w = g->words;
    memset(g, 0, sizeof *g + 2 * (size_t)w * sizeof(uint64_t));
    g->words = w;
    g->n_blocks = n_blocks;
    return g;
}

static void heap_bounds(uintptr_t lo, uintptr_t hi)
{
    uintptr_t cur = atomic_load_explicit(&heap_lo, relaxed);
    while (lo < cur && !atomic_compare_exchange_weak_explicit(&heap_lo, &cur, lo, relaxed, relaxed))
        ;
    cur = atomic_load_explicit(&heap_hi, relaxed);
    while (hi > cur && !atomic_compare_exchange_weak_explicit(&heap_hi, &cur, hi, relaxed, relaxed))
        ;
}

/* Links g (fully set up) into the all-spans list and publishes it in its
 * span.  all_lock not held. */
static void span_publish(gc_span_t *g)
{
    pthread_mutex_lock(&all_lock);
    g->next = all_spans;
    g->prev = NULL;
    if (all_spans)
        all_spans->prev = g;
    all_spans = g;
    __atomic_store_n(&g->span->gc, g, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&all_lock);
    size_t bytes = g->span->n_pages << TIDE_PAGE_SHIFT;
    atomic_fetch_add_explicit(&heap_bytes, bytes, relaxed);
    heap_bounds(g->span->start, g->span->start + bytes);
}

/* Unlinks g from the all-spans list; the caller frees its pages, then
 * recycles g (desc_recycle).  all_lock not held, or the world stopped
 * (`locked`). */
static void span_unpublish(gc_span_t *g, bool locked)
{
    if (!locked)
        pthread_mutex_lock(&all_lock);
    if (g->prev)
        g->prev->next = g->next;
    else
        all_spans = g->next;
    if (g->next)
        g->next->prev = g->prev;
    __atomic_store_n(&g->span->gc, NULL, __ATOMIC_RELAXED);
    atomic_fetch_sub_explicit(&heap_bytes, g->span->n_pages << TIDE_PAGE_SHIFT, relaxed);
    if (!locked)
        pthread_mutex_unlock(&all_lock);
}

/* Puts g, unpublished, its pages freed, back for reuse. */
static void desc_recycle(gc_span_t *g)
{
    pthread_mutex_lock(&all_lock);
    int slot = g->big ? TIDE_N_CLASSES : g->cls;
    g->pool_next = desc_pool[slot];
    desc_pool[slot] = g;
    pthread_mutex_unlock(&all_lock);
}

/* Gives the pages of span s (its descriptor already unpublished) back. */
static void span_pages_free(tide_span_t *s, bool huge)
{
    if (huge) {
        pthread_mutex_lock(&tidei_arena.lock);
        s->kind = TIDE_SPAN_HUGE;
        pthread_mutex_unlock(&tidei_arena.lock);
        if (tidei_huge_free(s))
            tidei_scav_wanted();
    } else {
        tidei_heap_free_run(s, false);
    }
}

/* ---- pools ---- */

static void list_push(gc_span_t **head, gc_span_t *g, int which)
{
    g->lprev = NULL;
    g->lnext = *head;
    if (*head)
        (*head)->lprev = g;
    *head = g;
    g->list = (uint8_t)which;
}

static gc_span_t **pool_list(gc_pool_t *p, int which)
{
    return which == GL_SWEEP ? &p->sweep : which == GL_AVAIL ? &p->avail : &p->full;
}

static void list_remove(gc_pool_t *p, gc_span_t *g)
{
    gc_span_t **head = pool_list(p, g->list);
    if (g->lprev)
        g->lprev->lnext = g->lnext;
    else
        *head = g->lnext;
    if (g->lnext)
        g->lnext->lprev = g->lprev;
    g->lnext = g->lprev = NULL;
    g->list = GL_NONE;
}

/* Block index of address a in small GC span g (a inside the span). */
static inline uint32_t block_index(const gc_span_t *g, uintptr_t a)
{
    return (uint32_t)tidei_block_index(g->span, a);
}

/* Sweeps g (owned by the caller: taken off its pool, or world stopped):
 * blocks out but not marked by the last collection are freed.  Returns
 * how many blocks are free now. */
static uint32_t span_sweep(gc_span_t *g)
{
    uint64_t *m = MARKS(g), *al = ALLOCS(g);
    uint32_t n_alloc = 0;
    unsigned cur = atomic_load_explicit(&gc_no, relaxed);
    if (g->swept != cur) {
        uint32_t dead = 0;
        for (uint32_t w = 0; w < g->words; w++) {
            uint64_t d = al[w] & ~m[w];
            dead += (uint32_t)__builtin_popcountll(d);
            al[w] &= m[w];
        }
        g->swept = cur;
        atomic_fetch_add_explicit(&reclaimed_total, (uint64_t)dead * g->size, relaxed);
    }
    for (uint32_t w = 0; w < g->words; w++)
        n_alloc += (uint32_t)__builtin_popcountll(al[w]);
    return g->n_blocks - n_alloc;
}

/* Puts free blocks of g (held by the caller) on a list, from bitmap word
 * g->take_pos on, until the list holds about TAKE_BYTES (at least one
 * block, if any is left), sets their alloc bits and returns the list (NULL
 * when the span has no free block left).  Taking a page or two at a time
 * keeps the blocks just linked in the cache until malloc hands them out.
 * Free blocks not taken yet keep alloc = 0: not traced, never swept (the
 * span is held). */
#define TAKE_BYTES ((size_t)8192)

/* Zeroes block b of size bytes but its first two words (the link and the
 * free key, which malloc clears): inline for small blocks, where a call
 * to memset would cost more than the stores. */
static inline void clear_tail(gc_link_t *b, size_t size)
{
    if (size <= 128) {
        uint64_t *w = (uint64_t *)b;
        for (size_t i = 2; i < size / 8; i++)
            w[i] = 0;
    } else {
        memset((char *)b + 16, 0, size - 16);
    }
}
static gc_link_t *span_take_free(gc_span_t *g)
{
    uint64_t *al = ALLOCS(g);
    uintptr_t start = g->span->start;
    gc_link_t *head = NULL, **tail = &head;
    size_t n = 0, want = TAKE_BYTES / g->size + 1;
    uint32_t w = g->take_pos;
    bool clear = g->kind != GK_ATOMIC && !g->fresh;  /* malloc then clears only the two first words */
    for (; w < g->words && n < want; w++) {
        uint64_t free = ~al[w];
        if (w == g->words - 1 && (g->n_blocks & 63))
            free &= ((uint64_t)1 << (g->n_blocks & 63)) - 1;
        al[w] |= free;
        while (free) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(free);
            free &= free - 1;
            gc_link_t *b = (gc_link_t *)(start + (uintptr_t)i * g->size);
            if (clear)
                clear_tail(b, g->size);
            *tail = b;
            tail = &b->next;
            n++;
        }
    }
    g->take_pos = w;
    *tail = NULL;
    atomic_fetch_add_explicit(&allocd_since, n * g->size, relaxed);
    atomic_fetch_add_explicit(&allocd_total, n * g->size, relaxed);
    return head;
}

/* Clears the alloc bit of every block on list (blocks of g). */
static void list_unalloc(gc_span_t *g, gc_link_t *list)
{
    for (; list; list = list->next)
        BIT_CLEAR(ALLOCS(g), block_index(g, (uintptr_t)list));
}

/* Releases the span t holds for (k, cls): what other threads freed into it
 * goes back to free, and it joins the pool's full list (or avail list if it
 * has free blocks: the thread is exiting with its list).  Inside crit. */
static void span_release(gc_thread_t *t, int k, int cls)
{
    gc_span_t *g = t->held[k][cls];
    if (!g)
        return;
    gc_pool_t *p = &pools[k][cls];
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
    list_push(has_free ? &p->avail : &p->full, g, has_free ? GL_AVAIL : GL_FULL);
    pthread_mutex_unlock(&p->lock);
}

/* A new span of (k, cls), held by the caller, or NULL.  Inside crit. */
static gc_span_t *span_new(int k, int cls)
{
    tide_span_t *s = tidei_heap_new_run(tidei_class_pages[cls], 0, TIDE_SPAN_GC);
    if (!s)
        return NULL;
    tidei_span_init_small(s, cls);
    pthread_mutex_lock(&all_lock);
    gc_span_t *g = desc_new(cls, s->n_blocks);
    pthread_mutex_unlock(&all_lock);
    if (!g) {
        tidei_heap_free_run(s, false);
        return NULL;
    }
    g->span = s;
    g->size = s->block_size;
    g->kind = (uint8_t)k;
    g->cls = (uint8_t)cls;
    g->held = 1;
    g->fresh = s->is_zero;
    g->swept = atomic_load_explicit(&gc_no, relaxed);
    span_publish(g);
    return g;
}

/* Whether a new span of bytes would pass the heap limit. */
static bool over_limit(size_t bytes)
{
    return max_heap && atomic_load_explicit(&heap_bytes, relaxed) + bytes > max_heap;
}

/* Fills t's free list of (k, cls): blocks other threads freed into the
 * held span, else another span.  False when memory (or the limit) ran out.
 * Inside crit. */
static bool refill(gc_thread_t *t, int k, int cls, bool may_grow)
{
    gc_pool_t *p = &pools[k][cls];
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
        gc_link_t *list = span_take_free(g);
        if (list) {
            t->fl[k][cls] = list;
            return true;
        }
    }
    span_release(t, k, cls);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        g = p->avail;
        if (!g)
            g = p->sweep;
        if (g) {
            list_remove(p, g);
            g->held = 1;
        }
        pthread_mutex_unlock(&p->lock);
        if (!g)
            break;
        if (span_sweep(g) == 0) {
            pthread_mutex_lock(&p->lock);
            g->held = 0;
            list_push(&p->full, g, GL_FULL);
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        t->held[k][cls] = g;
        g->take_pos = 0;
        t->fl[k][cls] = span_take_free(g);
        return true;
    }
    if (!may_grow || over_limit(tidei_class_pages[cls] << TIDE_PAGE_SHIFT))
        return false;
    g = span_new(k, cls);
    if (!g)
        return false;
    t->held[k][cls] = g;
    t->fl[k][cls] = span_take_free(g);
    return true;
}

/* ---- threads ---- */

static void on_stop(int sig, siginfo_t *si, void *ucv);
static void thread_exit_cb(void *arg);

static void gc_park(gc_thread_t *t, unsigned seq)
{
    atomic_store_explicit(&t->stopped_seq, seq, release);
    atomic_fetch_add_explicit(&n_acked, 1, acq_rel);
    futex(&n_acked, FUTEX_WAKE_PRIVATE, 1, NULL);
    while (atomic_load_explicit(&stop_seq, acquire) == seq)
        futex(&stop_seq, FUTEX_WAIT_PRIVATE, seq, NULL);
}

static tide_noinline void self_stop_at(gc_thread_t *t, uintptr_t sp)
{
    t->sp = sp;
    unsigned seq = atomic_load_explicit(&stop_seq, acquire);
    if ((seq & 1) && atomic_load_explicit(&t->stopped_seq, relaxed) != seq)
        gc_park(t, seq);
}

/* A stop arrived while t was inside crit: it stops now, its registers
 * spilled on its stack. */
static tide_noinline void self_stop(gc_thread_t *t)
{
    t->stop_pending = 0;
    spill_t jb;
    SPILL_REGS(&jb);
    memset(t->regs, 0, sizeof t->regs);
    self_stop_at(t, (uintptr_t)&jb);
    __asm__ volatile("" : : "r"(&jb) : "memory");
}

static void on_stop(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    int e = errno;
    gc_thread_t *t = gc_tl;
    unsigned seq = atomic_load_explicit(&stop_seq, acquire);
    if (!t || !(seq & 1) || atomic_load_explicit(&t->stopped_seq, relaxed) == seq)
        goto out;
    if (__atomic_load_n(&t->crit, __ATOMIC_RELAXED)) {
        t->stop_pending = 1;
        goto out;
    }
    if (tidei_interrupted_inside(ucv))  /* inside malloc: the collector asks again */
        goto out;
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    for (int i = 0; i < NGREG; i++)
        t->regs[i] = (uintptr_t)uc->uc_mcontext.gregs[i];
    t->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
    t->sp = (uintptr_t)&uc;
#endif
    gc_park(t, seq);
out:
    errno = e;
}

/* The bounds of the calling thread's stack. */
static void stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    *lo = 0;
    *hi = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
            *lo = (uintptr_t)addr;
            *hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&a);
    }
    if (!*hi) {  /* no attributes: from here up to the next page boundary, a guess */
        uintptr_t here = (uintptr_t)&a;
        *hi = (here + (1 << 20)) & ~(uintptr_t)((1 << 20) - 1);
    }
}

/* Registers the calling thread (stack base hi, 0: find it).  Returns its
 * structure, or NULL when memory ran out.  Not inside crit. */
static gc_thread_t *thread_register(uintptr_t hi, bool from_create)
{
    gc_thread_t *t = gc_tl;
    if (t)
        return t;
    uintptr_t lo = 0, found_hi;
    stack_bounds(&lo, &found_hi);
    if (!hi)
        hi = found_hi;
    pthread_mutex_lock(&threads_lock);
    t = thread_pool;
    if (t) {
        thread_pool = t->pool_next;
        memset(t, 0, sizeof *t);
    } else {
        t = tidei_os_map((sizeof *t + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1));
    }
    if (t) {
        t->self = pthread_self();
        t->tid = tidei_os_gettid();
        t->stack_hi = hi;
        t->stack_lo = lo;
        t->tp = thread_pointer();
        t->from_create = from_create;
        t->next = threads;
        if (threads)
            threads->prev = t;
        threads = t;
        __atomic_store_n(&n_threads, n_threads + 1, __ATOMIC_RELAXED);
        gc_tl = t;
    }
    pthread_mutex_unlock(&threads_lock);
    if (t)
        pthread_setspecific(exit_key, t);
    return t;
}

/* Unregisters the calling thread: its spans go back to their pools. */
/* Takes t off the registry.  threads_lock held. */
static void threads_remove(gc_thread_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        threads = t->next;
    if (t->next)
        t->next->prev = t->prev;
    __atomic_store_n(&n_threads, n_threads - 1, __ATOMIC_RELAXED);
}

static void thread_unregister(gc_thread_t *t)
{
    crit_enter(t);
    for (int k = 0; k < GK_N; k++)
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            span_release(t, k, c);
    crit_leave(t);
    /* leaving: a collection that stops the world now must not wait for us */
    t->blocking_sp = t->stack_hi;
    atomic_store_explicit(&t->blocking, 1, seq_cst);
    pthread_mutex_lock(&threads_lock);
    threads_remove(t);
    t->pool_next = thread_pool;
    thread_pool = t;
    gc_tl = NULL;
    pthread_mutex_unlock(&threads_lock);
}

static void thread_exit_cb(void *arg)
{
    gc_thread_t *t = arg;
    if (t && gc_tl == t)
        thread_unregister(t);
}

/* In the child after fork: only the calling thread is left.  The others'
 * spans go back to the pools (their lists are copies, valid here). */
static void gc_atfork_prepare(void);
static void gc_atfork_parent(void);
static void gc_atfork_child(void);

/* ---- initialization ---- */

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t me = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (me >= lo && me < hi && info->dlpi_name && info->dlpi_name[0]) {
            own_lo = lo;
            own_hi = hi;
        }
    }
    return 0;
}

static tide_noinline void gc_init_slow(void)
{
    tidei_init();
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&gc_state, acquire) == 2) {
        pthread_mutex_unlock(&init_lock);
        return;
    }
    for (int k = 0; k < GK_N; k++)
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            pthread_mutex_init(&pools[k][c].lock, NULL);
    if (tidei_opt.gc_max_mb && !max_heap)
        max_heap = (size_t)tidei_opt.gc_max_mb << 20;
    pthread_key_create(&exit_key, thread_exit_cb);
    stop_sig = tidei_opt.gc_signal ? (int)tidei_opt.gc_signal : SIGPWR;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(stop_sig, &sa, NULL);
    dl_iterate_phdr(find_own, (void *)&gc_state);
    pthread_atfork(gc_atfork_prepare, gc_atfork_parent, gc_atfork_child);
    atomic_store_explicit(&gc_state, 2, release);
    pthread_mutex_unlock(&init_lock);
}

static inline void gc_init(void)
{
    if (tide_unlikely(atomic_load_explicit(&gc_state, acquire) != 2))
        gc_init_slow();
}

/* The calling thread's structure, registering it on first use. */
static inline gc_thread_t *gc_thread(void)
{
    gc_thread_t *t = gc_tl;
    if (tide_likely(t != NULL))
        return t;
    gc_init();
    return thread_register(0, false);
}

/* ---- marking ---- */

typedef struct gc_range {
    uintptr_t lo, hi;
} gc_range_t;

/* One marker's state: the collecting thread's (mk0), or a helper's; each
 * on cache lines of its own (markers write theirs all the time). */
typedef struct __attribute__((aligned(64))) marker {
    gc_range_t *stk;                /* its mark stack (mapped): ranges to scan */
    size_t n, cap;               /* entries used, room for */
    size_t bytes;                /* bytes it marked in this collection */
    bool overflow;               /* a push was dropped (no memory): some objects not scanned */
    uintptr_t cpage;             /* the page last looked up (0: none), and what it held: */
    tide_span_t *cs;             /*   its span (NULL: not a GC span) */
    gc_span_t *cg;               /*   its GC data */
} marker_t;

static marker_t mk0;             /* the collecting thread's */
static uintptr_t mark_lo, mark_hi; /* heap bounds for this collection */

/* Parallel marking: helper threads (not registered, every signal blocked)
 * drain their own stacks and share through a pool under par_mu. */
#define MAX_HELPERS 7
static marker_t mk_help[MAX_HELPERS];
static pthread_t help_th[MAX_HELPERS];
static int n_helpers;            /* started */
static bool helpers_tried;       /* started once (or not wanted) */
static pthread_mutex_t par_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_cv = PTHREAD_COND_INITIALIZER;   /* work in the pool, or done */
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER; /* a parallel drain begins */
static pthread_cond_t exit_cv = PTHREAD_COND_INITIALIZER;  /* a helper left the drain */
static gc_range_t *par_pool;        /* shared ranges (mapped) */
static size_t par_n, par_cap;
static int par_total, par_idle, par_left; /* markers in this drain, idle ones, helpers still in it */
static bool par_done;            /* every marker idle with an empty pool */
static unsigned par_epoch;       /* bumped per parallel drain */
static _Atomic int par_want;     /* an idle marker waits: busy ones share */
static bool mark_par;            /* a parallel drain runs: marks are set atomically */

static bool stack_grow(gc_range_t **stk, size_t *cap)
{
    size_t ncap = *cap ? *cap * 2 : 65536;
    void *p = *stk ? tidei_os_remap(*stk, *cap * sizeof(gc_range_t), ncap * sizeof(gc_range_t), true)
                   : tidei_os_map(ncap * sizeof(gc_range_t));
    if (!p)
        return false;
    *stk = p;
    *cap = ncap;
    return true;
}

static inline void push_m(marker_t *m, uintptr_t lo, uintptr_t hi)
{
    if (tide_unlikely(m->n == m->cap) && !stack_grow(&m->stk, &m->cap)) {
        m->overflow = true;
        return;
    }
    m->stk[m->n++] = (gc_range_t){ lo, hi };
}

/* Marks the block word w points into, if it is a live GC block; pushes its
 * contents unless atomic.  World stopped; markers may run in parallel
 * (mark bits and counts are set atomically). */
static inline void mark_word_m(marker_t *m, uintptr_t w)
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
    uint32_t i;
    uintptr_t base;
    if (g->big) {
        i = 0;
        base = s->start;
        if (w >= base + g->size)
            return;
    } else {
        i = block_index(g, w);
        if (i >= g->n_blocks)
            return;
        base = s->start + (uintptr_t)i * g->size;
    }
    uint64_t bit = (uint64_t)1 << (i & 63), *mw = &MARKS(g)[i >> 6];
    if (!(ALLOCS(g)[i >> 6] & bit) || (__atomic_load_n(mw, __ATOMIC_RELAXED) & bit))
        return;
    if (mark_par) {
        if (__atomic_fetch_or(mw, bit, __ATOMIC_RELAXED) & bit)
            return;  /* another marker got it first */
        __atomic_fetch_add(&g->n_marked, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_store_n(mw, *mw | bit, __ATOMIC_RELAXED);
        g->n_marked++;
    }
    m->bytes += g->size;
    if (g->kind != GK_ATOMIC)
        push_m(m, base, base + (g->big ? g->req : g->size));
}

static void scan_range_m(marker_t *m, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t p = lo; p + 8 <= hi; p += 8)
        mark_word_m(m, *(const uintptr_t *)p);
}

/* Moves the older half of m's stack to the pool, for an idle marker. */
static tide_noinline void share(marker_t *m)
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
 * When another marker is idle, half of the stack goes to the pool. */
#define PF_N 8
static void drain_m(marker_t *m)
{
    gc_range_t q[PF_N];
    unsigned head = 0, n = 0;
    for (;;) {
        if (tide_unlikely(atomic_load_explicit(&par_want, relaxed)) && m->n > 32)
            share(m);
        while (n < PF_N && m->n) {
            gc_range_t r = m->stk[--m->n];
            __builtin_prefetch((const void *)r.lo);
            q[(head + n++) % PF_N] = r;
        }
        if (!n)
            return;
        gc_range_t r = q[head];
        head = (head + 1) % PF_N;
        n--;
        scan_range_m(m, r.lo, r.hi);
    }
}

/* A marker's part of a parallel drain: its stack, then work from the pool,
 * until every marker is idle and the pool empty. */
static void par_work(marker_t *m)
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
    marker_t *m = arg;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&par_mu);
        while (par_epoch == seen)
            pthread_cond_wait(&start_cv, &par_mu);
        seen = par_epoch;
        pthread_mutex_unlock(&par_mu);
        m->bytes = 0;
        par_work(m);
        pthread_mutex_lock(&par_mu);
        par_left--;
        pthread_cond_signal(&exit_cv);
        pthread_mutex_unlock(&par_mu);
    }
    return NULL;
}

/* Starts the helpers once: one per online CPU beyond the first, at most
 * MAX_HELPERS (a single-CPU machine gets none).  threads_lock held, before
 * the world stops. */
static void helpers_start(void)
{
    if (helpers_tried)
        return;
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
    for (int i = 0; i < want; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256 << 10);
        if (pthread_create(&help_th[i], &a, helper_main, &mk_help[i]) == 0)
            n_helpers++;
        pthread_attr_destroy(&a);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Drains mk0, with the helpers when there is enough work for them. */
static void mark_parallel(void)
{
    if (!n_helpers || mk0.n < 64) {
        drain_m(&mk0);
        return;
    }
    mark_par = true;
    pthread_mutex_lock(&par_mu);
    par_total = n_helpers + 1;
    par_idle = 0;
    par_left = n_helpers;
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
    mark_par = false;
    for (int i = 0; i < n_helpers; i++) {
        mk0.bytes += mk_help[i].bytes;
        mk0.overflow |= mk_help[i].overflow;
    }
}

static void mark_word(uintptr_t w) { mark_word_m(&mk0, w); }
static void scan_range(uintptr_t lo, uintptr_t hi) { scan_range_m(&mk0, lo, hi); }
static void mark_drain(void) { drain_m(&mk0); }

/* Pushes [lo, hi) to be scanned as a root (GC_push_all and the hooks). */
void tidei_gc_push_range(void *lo, void *hi);
void tidei_gc_push_range(void *lo, void *hi)
{
    if ((uintptr_t)lo < (uintptr_t)hi)
        push_m(&mk0, (uintptr_t)lo, (uintptr_t)hi);
}

/* Marks obj (a GC block or not) and what it reaches. */
static void mark_from(uintptr_t w)
{
    mark_word(w);
    mark_drain();
}

/* ---- roots: modules and TLS ---- */

#define MAX_SEGS 4096
#define MAX_TLS 512
static gc_range_t segs[MAX_SEGS];   /* writable segments found by the last listing */
static size_t n_segs;
static struct {
    size_t modid;                /* the module's TLS id */
    size_t size;                 /* bytes of its TLS block */
    intptr_t static_off;         /* block address minus the thread pointer, if static (else 0) */
    bool is_static;              /* in the static TLS area */
} tls_mods[MAX_TLS];
static size_t n_tls;
static bool first_module;

static int list_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    bool is_main = first_module;
    first_module = false;
    uintptr_t tp = thread_pointer();
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && (is_main || !tidei_gc_no_dls)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (lo == own_lo && own_hi)
                continue;
            if (n_segs < MAX_SEGS)
                segs[n_segs++] = (gc_range_t){ lo, hi };
        } else if (ph->p_type == PT_TLS && info->dlpi_tls_modid && ph->p_memsz && n_tls < MAX_TLS) {
            tls_mods[n_tls].modid = info->dlpi_tls_modid;
            tls_mods[n_tls].size = ph->p_memsz;
            uintptr_t mine = (uintptr_t)info->dlpi_tls_data;
            /* x86-64: the static TLS area lies just below the thread pointer */
            tls_mods[n_tls].is_static = mine && mine < tp && tp - mine < ((uintptr_t)1 << 20);
            tls_mods[n_tls].static_off = tls_mods[n_tls].is_static ? (intptr_t)(mine - tp) : 0;
            n_tls++;
        }
    }
    return 0;
}

static void roots_list(void)
{
    n_segs = 0;
    n_tls = 0;
    first_module = true;
    dl_iterate_phdr(list_module, NULL);
}

/* Whether [p, p + n) is memory tide handed out by malloc (a dynamic TLS
 * block is a malloc block). */
static bool is_malloc_memory(uintptr_t p, size_t n)
{
    tide_span_t *s = tidei_pagemap_lookup((void *)p);
    if (!s || (s->kind != TIDE_SPAN_SMALL && s->kind != TIDE_SPAN_LARGE && s->kind != TIDE_SPAN_HUGE))
        return false;
    return p + n <= s->start + (s->n_pages << TIDE_PAGE_SHIFT);
}

/* Scans thread t's TLS blocks: static ones at their fixed offset from its
 * thread pointer, dynamic ones through its DTV (glibc's layout: the DTV
 * pointer is the second word of the TCB, 16-byte entries, entry -1 the
 * count). */
static void scan_tls(const gc_thread_t *t)
{
    if (!t->tp)
        return;
#if defined(__x86_64__)
    const uintptr_t *dtv = *(uintptr_t *const *)(t->tp + 8);
    size_t n_dtv = dtv ? dtv[-2] : 0;
    for (size_t i = 0; i < n_tls; i++) {
        if (tls_mods[i].is_static) {
            uintptr_t lo = t->tp + (uintptr_t)tls_mods[i].static_off;
            scan_range(lo, lo + tls_mods[i].size);
            continue;
        }
        size_t id = tls_mods[i].modid;
        if (!dtv || id > n_dtv)
            continue;
        uintptr_t blk = dtv[2 * id];
        if (blk == 0 || blk == UINTPTR_MAX)
            continue;
        if (is_malloc_memory(blk, tls_mods[i].size))
            scan_range(blk, blk + tls_mods[i].size);
    }
#endif
}

static void scan_thread(gc_thread_t *t, uintptr_t my_sp)
{
    uintptr_t sp;
    gc_thread_t *me = gc_tl;
    if (t == me)
        sp = my_sp;
    else if (atomic_load_explicit(&t->blocking, acquire) && atomic_load_explicit(&t->stopped_seq, relaxed) !=
                                                                atomic_load_explicit(&stop_seq, relaxed))
        sp = t->blocking_sp;
    else
        sp = t->sp;
    if (t != me)
        scan_range((uintptr_t)t->regs, (uintptr_t)(t->regs + NGREG));
    uintptr_t lo = sp > 128 ? sp - 128 : sp;  /* the red zone */
    if (t->stack_lo && lo < t->stack_lo)
        lo = t->stack_lo;
    if (lo < t->stack_hi)
        scan_range(lo, t->stack_hi);
    scan_tls(t);
}

/* ---- the collection ---- */

/* Whether t is stopped for seq, or counts as stopped: in GC_do_blocking
 * or unregistering (blocking), where it touches no GC block. */
static bool thread_still(gc_thread_t *t, unsigned seq)
{
    return atomic_load_explicit(&t->stopped_seq, acquire) == seq || atomic_load_explicit(&t->blocking, seq_cst);
}

/* Stops every registered thread but the caller.  threads_lock held.  A
 * thread signalled just before it entered blocking state may never take
 * the signal (glibc blocks signals while a thread exits): its blocking
 * flag stands for the acknowledgement. */
static void stop_world(void)
{
    unsigned seq = atomic_load_explicit(&stop_seq, relaxed) + 1;
    atomic_store_explicit(&stop_seq, seq, seq_cst);
    gc_thread_t *me = gc_tl;
    pid_t pid = getpid();
    for (gc_thread_t *t = threads; t; t = t->next) {
        if (t == me || atomic_load_explicit(&t->blocking, seq_cst))
            continue;
        if (syscall(SYS_tgkill, pid, t->tid, stop_sig) != 0)
            atomic_store_explicit(&t->stopped_seq, seq, relaxed);  /* gone */
    }
    uint64_t last = now_ns();
    for (;;) {
        unsigned got = atomic_load_explicit(&n_acked, acquire);
        bool all = true;
        for (gc_thread_t *t = threads; t && all; t = t->next)
            all = t == me || thread_still(t, seq);
        if (all)
            break;
        struct timespec ts = { 0, 200000 };
        futex(&n_acked, FUTEX_WAIT_PRIVATE, got, &ts);
        if (now_ns() - last > 2000000) {  /* again to those inside malloc */
            last = now_ns();
            for (gc_thread_t *t = threads; t; t = t->next)
                if (t != me && !thread_still(t, seq) && !__atomic_load_n(&t->crit, __ATOMIC_RELAXED))
                    syscall(SYS_tgkill, pid, t->tid, stop_sig);
        }
    }
}

static void start_world(void)
{
    atomic_fetch_add_explicit(&stop_seq, 1, seq_cst);
    futex(&stop_seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
}

/* Takes threads_lock; the caller t (registered, or NULL) counts as
 * stopped while it waits, its registers spilled on its stack: a thread
 * blocked on the lock touches no GC block, and a collector waiting for it
 * to acknowledge a signal would otherwise depend on the signal
 * interrupting the wait (TSan delays it until the lock is taken). */
static tide_noinline void lock_threads(gc_thread_t *t)
{
    if (!t) {
        pthread_mutex_lock(&threads_lock);
        return;
    }
    spill_t jb;
    SPILL_REGS(&jb);
    t->blocking_sp = (uintptr_t)&jb;
    atomic_store_explicit(&t->blocking, 1, seq_cst);
    pthread_mutex_lock(&threads_lock);
    atomic_store_explicit(&t->blocking, 0, seq_cst);  /* no collection runs: we hold the lock */
    __asm__ volatile("" : : "r"(&jb) : "memory");
}

/* Clears (unalloc) or restores the alloc bits of every block on a free
 * list of a stopped thread: blocks on a list are not traced. */
static void free_lists_alloc(bool set)
{
    for (gc_thread_t *t = threads; t; t = t->next) {
        for (int k = 0; k < GK_N; k++) {
            for (int c = 0; c < TIDE_N_CLASSES; c++) {
                gc_span_t *g = t->held[k][c];
                if (!g)
                    continue;
                for (gc_link_t *b = t->fl[k][c]; b; b = b->next) {
                    uint32_t i = block_index(g, (uintptr_t)b);
                    if (set)
                        BIT_SET(ALLOCS(g), i);
                    else
                        BIT_CLEAR(ALLOCS(g), i);
                }
                for (gc_link_t *b = g->pending; b; b = b->next) {
                    uint32_t i = block_index(g, (uintptr_t)b);
                    if (set)
                        BIT_SET(ALLOCS(g), i);
                    else
                        BIT_CLEAR(ALLOCS(g), i);
                }
            }
        }
    }
}

static gc_span_t *dead_spans;    /* spans to give back after the restart (lnext) */

/* After the mark: rebuilds the pools and picks what is freed after the
 * restart.  World stopped. */
static void pools_rebuild(void)
{
    for (int k = 0; k < GK_N; k++)
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            pools[k][c].sweep = pools[k][c].avail = pools[k][c].full = NULL;
    unsigned cur = atomic_load_explicit(&gc_no, relaxed);
    dead_spans = NULL;
    for (gc_span_t *g = all_spans, *next; g; g = next) {
        next = g->next;
        if (g->big)
            continue;
        if (g->held) {
            g->swept = cur;
            continue;
        }
        if (g->n_marked == 0) {
            g->lnext = dead_spans;
            g->list = GL_DEAD;
            dead_spans = g;
            span_unpublish(g, true);
            continue;
        }
        list_push(&pools[g->kind][g->cls].sweep, g, GL_SWEEP);
    }
    /* big blocks: the dead ones leave now, freed after the restart */
    for (gc_span_t *g = bigs, *next; g; g = next) {
        next = g->lnext;
        if (g->kind == GK_UNCOLL || BIT_TEST(MARKS(g), 0) || !BIT_TEST(ALLOCS(g), 0))
            continue;
        if (g->lprev)
            g->lprev->lnext = g->lnext;
        else
            bigs = g->lnext;
        if (g->lnext)
            g->lnext->lprev = g->lprev;
        atomic_fetch_add_explicit(&reclaimed_total, g->size, relaxed);
        g->lnext = dead_spans;
        g->list = GL_DEAD;
        dead_spans = g;
        span_unpublish(g, true);
    }
}

static tide_noinline void collect_locked(uintptr_t my_sp)
{
    uint64_t t0 = now_ns();
    if (tidei_gc_start_cb)
        tidei_gc_start_cb();
    roots_list();
    stop_world();
    unsigned cur = atomic_load_explicit(&gc_no, relaxed) + 1;
    atomic_store_explicit(&gc_no, cur, relaxed);
    for (gc_span_t *g = all_spans; g; g = g->next) {
        memset(MARKS(g), 0, g->words * sizeof(uint64_t));
        g->n_marked = 0;
    }
    free_lists_alloc(false);
    mark_lo = atomic_load_explicit(&heap_lo, relaxed);
    mark_hi = atomic_load_explicit(&heap_hi, relaxed);
    if (mark_hi < mark_lo)
        mark_hi = mark_lo;
    mk0.bytes = 0;
    mk0.overflow = false;
    mk0.cpage = 0;
    for (int i = 0; i < n_helpers; i++)
        mk_help[i].cpage = 0;
    /* roots: their direct referents are pushed, then drained in parallel */
    for (size_t i = 0; i < n_segs; i++)
        scan_range(segs[i].lo, segs[i].hi);
    for (gc_thread_t *t = threads; t; t = t->next)
        scan_thread(t, my_sp);
    for (gc_span_t *g = all_spans; g; g = g->next) {
        if (g->kind != GK_UNCOLL)
            continue;
        for (uint32_t i = 0; i < g->n_blocks; i++) {
            if (!BIT_TEST(ALLOCS(g), i) || BIT_TEST(MARKS(g), i))
                continue;
            BIT_SET(MARKS(g), i);
            g->n_marked++;
            mk0.bytes += g->size;
            uintptr_t base = g->span->start + (uintptr_t)i * g->size;
            push_m(&mk0, base, base + (g->big ? g->req : g->size));
        }
    }
    gc_roots_scan();
    if (GC_push_other_roots)
        GC_push_other_roots();
    mark_parallel();
    gc_fin_mark();
    mark_drain();
    gc_fin_after_mark();
    free_lists_alloc(true);
    __atomic_store_n(&live_after, mk0.bytes, __ATOMIC_RELAXED);
    atomic_store_explicit(&allocd_since, 0, relaxed);
    n_allocating_prev = atomic_exchange_explicit(&n_allocating, 0, relaxed);
    pools_rebuild();
    start_world();
    uint64_t ns = now_ns() - t0;
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

static _Atomic int fin_running;

/* Collects now (the caller registered, not inside crit).  Returns after the
 * dead spans went back to the page allocator and, unless finalization is
 * on demand, the finalizers ran. */
static tide_noinline void gc_collect(bool force)
{
    gc_thread_t *t = gc_thread();
    if (!t)
        return;
    if (!force && atomic_load_explicit(&gc_disabled, relaxed))
        return;
    unsigned before = atomic_load_explicit(&gc_no, relaxed);
    lock_threads(t);
    helpers_start();
    if (!force && atomic_load_explicit(&gc_no, relaxed) != before) {  /* another thread just did */
        pthread_mutex_unlock(&threads_lock);
        return;
    }
    spill_t jb;  /* the callee-saved registers, on the stack scanned */
    SPILL_REGS(&jb);
    collect_locked((uintptr_t)&jb);
    __asm__ volatile("" : : "r"(&jb) : "memory");
    gc_span_t *dead = dead_spans;
    dead_spans = NULL;
    pthread_mutex_unlock(&threads_lock);
    while (dead) {
        gc_span_t *next = dead->lnext;
        span_pages_free(dead->span, dead->huge);
        desc_recycle(dead);
        dead = next;
    }
    gc_fin_run_pending();
}

/* Whether the allocation that took the caller to its slow path should
 * start a collection: when the bytes taken since the last one reach
 * gc_percent of the live bytes (at least 1 MiB), scaled by (N + 1) / 2
 * for the N threads that allocated in the last cycle: N threads fill a
 * fixed budget N times as fast, and each collection stops all of them;
 * scaling by N itself would let the heap grow by N budgets (RSS), by
 * (N + 1) / 2 (at most 2) collections come about half as often as they
 * would. */
static inline bool should_collect(void)
{
    size_t since = atomic_load_explicit(&allocd_since, relaxed);
    size_t trigger = __atomic_load_n(&live_after, __ATOMIC_RELAXED) / 100 * (size_t)tidei_opt.gc_percent;
    if (trigger < ((size_t)1 << 20))
        trigger = (size_t)1 << 20;
    unsigned n = n_allocating_prev > atomic_load_explicit(&n_allocating, relaxed)
                     ? n_allocating_prev : atomic_load_explicit(&n_allocating, relaxed);
    if (n > 1)
        trigger = trigger / 2 * (n < 3 ? n + 1 : 4);  /* at most twice: the heap grows with it */
    return since >= trigger && !atomic_load_explicit(&gc_disabled, relaxed);
}

/* Counts t among this cycle's allocating threads (its slow path). */
static inline void note_allocating(gc_thread_t *t)
{
    unsigned cur = atomic_load_explicit(&gc_no, relaxed);
    if (t->alloc_cycle != cur + 1) {
        t->alloc_cycle = cur + 1;
        atomic_fetch_add_explicit(&n_allocating, 1, relaxed);
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
    note_allocating(t);
    if (should_collect())
        gc_collect(false);
    for (int attempt = 0;; attempt++) {
        if (!over_limit(pages << TIDE_PAGE_SHIFT)) {
            crit_enter(t);
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
                    span_pages_free(s, huge);
            }
            if (g) {
                g->span = s;
                g->big = 1;
                g->huge = huge;
                g->kind = (uint8_t)k;
                g->size = s->n_pages << TIDE_PAGE_SHIFT;
                g->req = n;
                g->swept = atomic_load_explicit(&gc_no, relaxed);
                if (k != GK_ATOMIC && !s->is_zero)
                    memset((void *)s->start, 0, n);
                BIT_SET(ALLOCS(g), 0);
                pthread_mutex_lock(&big_lock);
                g->lprev = NULL;
                g->lnext = bigs;
                if (bigs)
                    bigs->lprev = g;
                bigs = g;
                span_publish(g);
                pthread_mutex_unlock(&big_lock);
                atomic_fetch_add_explicit(&allocd_since, g->size, relaxed);
                atomic_fetch_add_explicit(&allocd_total, g->size, relaxed);
                crit_leave(t);
                return (void *)s->start;
            }
            crit_leave(t);
        }
        if (attempt == 1)
            return call_oom(n);
        gc_collect(true);
    }
}

static tide_noinline void *small_alloc_slow(size_t n, int k);

/* The fast path: a block from the calling thread's free list of (k,
 * class).  Blocks on a list are zero but for their first two words (the
 * link and the free key): span_take_free and GC_FREE clear the others. */
static inline void *gc_alloc(size_t n, int k)
{
    if (tide_likely(n <= TIDE_SMALL_MAX)) {
        gc_thread_t *t = gc_tl;
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
    gc_thread_t *t = gc_thread();
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > TIDE_SMALL_MAX)
        return gc_big_alloc(t, n, k);
    int cls = (int)tidei_class_of(n);
    note_allocating(t);
    if (!t->fl[k][cls] && should_collect())
        gc_collect(false);
    for (int attempt = 0; !t->fl[k][cls]; attempt++) {
        crit_enter(t);
        bool ok = refill(t, k, cls, true);
        crit_leave(t);
        if (ok)
            break;
        if (attempt == 1)
            return call_oom(n);
        gc_collect(true);
    }
    return gc_alloc(n, k);
}

/* ---- the entry points used by gc_api.c ---- */

void *tidei_gc_malloc(size_t n, int kind);
void *tidei_gc_malloc(size_t n, int kind)
{
    return gc_alloc(n, kind);
}

/* What the page map says about p for the GC: its gc span and block index,
 * or NULL when p is not in a GC block (of a span fully set up). */
static gc_span_t *gc_lookup(const void *p, uint32_t *idx, uintptr_t *base)
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
    uint32_t i = block_index(g, (uintptr_t)p);
    if (i >= g->n_blocks)
        return NULL;
    *idx = i;
    *base = s->start + (uintptr_t)i * g->size;
    return g;
}

/* GC_base: the start of the GC block p points into, or NULL. */
void *tidei_gc_base(const void *p);
void *tidei_gc_base(const void *p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup(p, &i, &base);
    return g ? (void *)base : NULL;
}

/* GC_size: the usable bytes of GC block p (its start), 0 if none. */
size_t tidei_gc_size(const void *p);
size_t tidei_gc_size(const void *p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup(p, &i, &base);
    if (!g)
        return 0;
    return g->big ? g->req : g->size;
}

/* The kind of GC block p, -1 if none. */
int tidei_gc_kind(const void *p);
int tidei_gc_kind(const void *p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup(p, &i, &base);
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
    gc_span_t *g = gc_lookup(p, &i, &base);
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
void tidei_gc_free(void *p, const char *op);
void tidei_gc_free(void *p, const char *op)
{
    if (!p)
        return;
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup(p, &i, &base);
    if (!g || base != (uintptr_t)p)
        gc_report_free(p, op);
    gc_thread_t *t = gc_thread();
    if (!t)
        return;
    atomic_fetch_add_explicit(&n_freed_explicit, 1, relaxed);
    crit_enter(t);
    if (g->big) {
        pthread_mutex_lock(&big_lock);
        if (!BIT_TEST(ALLOCS(g), 0) || g->list == GL_DEAD) {
            pthread_mutex_unlock(&big_lock);
            crit_leave(t);
            gc_report_free(p, op);
        }
        BIT_CLEAR(ALLOCS(g), 0);
        if (g->lprev)
            g->lprev->lnext = g->lnext;
        else
            bigs = g->lnext;
        if (g->lnext)
            g->lnext->lprev = g->lprev;
        pthread_mutex_unlock(&big_lock);
        span_unpublish(g, false);
        span_pages_free(g->span, g->huge);
        desc_recycle(g);
        crit_leave(t);
        return;
    }
    gc_link_t *b = p;
    int k = g->kind, c = g->cls;
    if (t->held[k][c] == g) {
        if (!BIT_TEST(ALLOCS(g), i) || (b->key == tidei_free_key && (on_list(t->fl[k][c], b, g->n_blocks) ||
                                                                     on_list(g->pending, b, g->n_blocks)))) {
            crit_leave(t);
            gc_report_free(p, op);
        }
        if (k != GK_ATOMIC)
            memset(b, 0, g->size);
        b->key = tidei_free_key;
        b->next = t->fl[k][c];
        t->fl[k][c] = b;
        crit_leave(t);
        return;
    }
    gc_pool_t *pl = &pools[k][c];
    pthread_mutex_lock(&pl->lock);
    /* Another thread holds the span: its free list is not ours to read,
     * and the free key (cleared when a block is handed out) is the proof,
     * as for malloc's remote frees. */
    bool bad = !BIT_TEST(ALLOCS(g), i) || (g->held && b->key == tidei_free_key);
    if (bad) {
        pthread_mutex_unlock(&pl->lock);
        crit_leave(t);
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
            list_remove(pl, g);
            list_push(&pl->avail, g, GL_AVAIL);
        }
    }
    pthread_mutex_unlock(&pl->lock);
    crit_leave(t);
}

/* GC_REALLOC. */
void *tidei_gc_realloc(void *p, size_t n);
void *tidei_gc_realloc(void *p, size_t n)
{
    if (!p)
        return gc_alloc(n, GK_NORMAL);
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup(p, &i, &base);
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

/* ---- the rest of the API's machinery ---- */

void tidei_gc_init(void);
void tidei_gc_init(void)
{
    gc_init();
    gc_thread();
}

void tidei_gc_start_markers(void);
void tidei_gc_start_markers(void)
{
    gc_init();
    pthread_mutex_lock(&threads_lock);
    helpers_start();
    pthread_mutex_unlock(&threads_lock);
}

void tidei_gc_collect(void);
void tidei_gc_collect(void)
{
    gc_collect(true);
}

void tidei_gc_disable(int d);
void tidei_gc_disable(int d)
{
    atomic_fetch_add_explicit(&gc_disabled, d, relaxed);
}

int tidei_gc_register_thread(uintptr_t base, bool from_create);
int tidei_gc_register_thread(uintptr_t base, bool from_create)
{
    gc_init();
    if (gc_tl)
        return 1;  /* GC_DUPLICATE */
    return thread_register(base, from_create) ? 0 : -1;
}

int tidei_gc_unregister_thread(void);
int tidei_gc_unregister_thread(void)
{
    gc_thread_t *t = gc_tl;
    if (!t)
        return 4;  /* GC_NOT_FOUND */
    thread_unregister(t);
    return 0;
}

bool tidei_gc_thread_registered(void);
bool tidei_gc_thread_registered(void)
{
    return gc_tl != NULL;
}

/* GC_do_blocking: fn runs with the thread counted as stopped. */
void *tidei_gc_do_blocking(void *(*fn)(void *), void *arg);
tide_noinline void *tidei_gc_do_blocking(void *(*fn)(void *), void *arg)
{
    gc_thread_t *t = gc_tl;
    if (!t || atomic_load_explicit(&t->blocking, relaxed))
        return fn(arg);
    spill_t jb;
    SPILL_REGS(&jb);
    t->blocking_sp = (uintptr_t)&jb;
    atomic_store_explicit(&t->blocking, 1, seq_cst);
    void *r = fn(arg);
    atomic_store_explicit(&t->blocking, 0, seq_cst);
    unsigned seq;
    while ((seq = atomic_load_explicit(&stop_seq, seq_cst)) & 1)
        futex(&stop_seq, FUTEX_WAIT_PRIVATE, seq, NULL);
    __asm__ volatile("" : : "r"(&jb) : "memory");
    return r;
}

/* GC_call_with_alloc_lock: fn runs while no collection can start. */
void *tidei_gc_with_lock(void *(*fn)(void *), void *arg);
void *tidei_gc_with_lock(void *(*fn)(void *), void *arg)
{
    gc_init();
    pthread_mutex_lock(&threads_lock);
    void *r = fn(arg);
    pthread_mutex_unlock(&threads_lock);
    return r;
}

void tidei_gc_set_max_heap(size_t n);
void tidei_gc_set_max_heap(size_t n)
{
    max_heap = n;
}

int tidei_gc_stop_signal(void);
int tidei_gc_stop_signal(void)
{
    return stop_sig ? stop_sig : (tidei_opt.gc_signal ? (int)tidei_opt.gc_signal : SIGPWR);
}

/* Used by gc_api.c's mark-bit calls: the mark bit of p's block. */
int tidei_gc_mark_bit(const void *p, int set);
int tidei_gc_mark_bit(const void *p, int set)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup(p, &i, &base);
    if (!g)
        return 0;
    uint64_t bit = (uint64_t)1 << (i & 63);
    int old = (int)BIT_TEST(MARKS(g), i);
    /* n_marked follows: a span whose only marked block was marked here
     * (ECL marks its Lisp stacks this way) must not be taken for dead */
    if (set > 0 && !(__atomic_fetch_or(&MARKS(g)[i >> 6], bit, __ATOMIC_RELAXED) & bit))
        __atomic_fetch_add(&g->n_marked, 1, __ATOMIC_RELAXED);
    else if (set == 0 && (__atomic_fetch_and(&MARKS(g)[i >> 6], ~bit, __ATOMIC_RELAXED) & bit))
        __atomic_fetch_sub(&g->n_marked, 1, __ATOMIC_RELAXED);
    return old;
}

/* Whether p is a marked live block (world stopped: during finalization). */
static bool is_marked(uintptr_t p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup((void *)p, &i, &base);
    return !g || BIT_TEST(MARKS(g), i);
}

/* Whether location p may be written by the collector: not in the GC heap,
 * or in a block that is out and marked (a link inside a dead or free
 * block is never written: the block may be on a free list). */
static bool link_writable(uintptr_t p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = gc_lookup((void *)p, &i, &base);
    return !g || (BIT_TEST(ALLOCS(g), i) && BIT_TEST(MARKS(g), i));
}

/* Whether p is in a GC block (world stopped). */
static bool in_gc_heap(uintptr_t p)
{
    uint32_t i;
    uintptr_t base;
    return gc_lookup((void *)p, &i, &base) != NULL;
}

/* ---- fork ---- */

/* Fork: the world is stopped around it, so that no other thread is inside
 * a GC slow path (which is where pool, big, descriptor and table locks are
 * held): the child finds them all free, and the heap consistent, without
 * the parent taking 250 locks. */
static void gc_atfork_prepare(void)
{
    lock_threads(gc_tl);
    stop_world();
    pthread_mutex_lock(&par_mu);
}

static void gc_atfork_parent(void)
{
    pthread_mutex_unlock(&par_mu);
    start_world();
    pthread_mutex_unlock(&threads_lock);
}

static void gc_atfork_child(void)
{
    pthread_mutex_unlock(&par_mu);
    atomic_fetch_add_explicit(&stop_seq, 1, relaxed);  /* nobody to wake */
    n_helpers = 0;                                     /* the helpers are gone: started again when needed */
    helpers_tried = false;
    /* the other threads are gone: their spans go back to the pools */
    gc_thread_t *me = gc_tl;
    for (gc_thread_t *t = threads, *next; t; t = next) {
        next = t->next;
        if (t == me)
            continue;
        for (int k = 0; k < GK_N; k++)
            for (int c = 0; c < TIDE_N_CLASSES; c++)
                span_release(t, k, c);
        threads_remove(t);
    }
    if (me)
        me->tid = tidei_os_gettid();
    pthread_mutex_unlock(&threads_lock);
}

/* ---- figures ---- */

void tidei_gc_stats(struct tide_gc_stats *out)
{
    memset(out, 0, sizeof *out);
    if (atomic_load_explicit(&gc_state, acquire) != 2)
        return;
#define RD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
    out->heap_bytes = atomic_load_explicit(&heap_bytes, relaxed);
    out->live_bytes = RD(live_after);
    out->allocated_since_gc = atomic_load_explicit(&allocd_since, relaxed);
    out->allocated_total = atomic_load_explicit(&allocd_total, relaxed);
    out->reclaimed_total = atomic_load_explicit(&reclaimed_total, relaxed);
    out->n_collections = atomic_load_explicit(&gc_no, relaxed);
    out->n_explicit_frees = atomic_load_explicit(&n_freed_explicit, relaxed);
    out->n_threads = RD(n_threads);
    out->pause_ns_total = RD(pause_ns_total);
    out->pause_ns_max = RD(pause_ns_max);
    out->pause_ns_last = RD(pause_ns_last);
    for (int i = 0; i < 8; i++)
        out->pause_hist[i] = RD(pause_hist[i]);
    out->max_heap_bytes = RD(max_heap);
#undef RD
}
