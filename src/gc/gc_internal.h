/* gc/gc_internal.h — the garbage-collected heap's private header: its
 * types, the state its files share, and their functions, grouped by the
 * file that defines them.  Nothing outside src/gc/ includes it; the rest of
 * tide sees the GC heap only through the tidei_gc_* names of
 * tide_internal.h (and span->gc, a struct tidei_gc_span).
 *
 * The files, bottom up:
 *   heap.c      GC spans and their descriptors, the all-spans list, the
 *               pools of (kind, class), per-thread free lists, allocation,
 *               GC_FREE, GC_REALLOC, the lookup of an address
 *   sweep.c     the lazy sweep of a span, the pools rebuilt after a mark,
 *               the spans and big blocks found dead, given back
 *   threads.c   the registry of threads, the stop signal and its handler,
 *               stopping and restarting the world, GC_do_blocking, fork
 *   mark.c      the markers: mark stacks, the pointer test, the parallel
 *               mark with its helper threads, mark bits asked by the API
 *   roots.c     what is scanned: module data, thread stacks, registers and
 *               TLS, GC_add_roots ranges, uncollectable blocks, the hook
 *   finalize.c  finalizers and disappearing links: their tables, settled
 *               during the mark, finalizers run after the restart
 *   collect.c   a collection from start to end, its pacing, the figures
 *   api.c       every exported name (Boehm's GC_* and tide_gc_*) and the
 *               set-up the first call makes
 *
 * Lock order (the GC heap's, and how it nests in tide's):
 *
 *   tidei_gc_threads_lock        registry; held through a whole collection
 *     -> pool locks (one per (kind, class); never two at once)
 *     -> big_lock (heap.c: the big-block list)
 *     -> all_lock (heap.c: the all-spans list, descriptor pools)
 *     -> tables_lock (finalize.c) / roots_lock (roots.c): leaves, never
 *        held together
 *     -> tide's tidei_heaps_lock -> tidei_arena.lock (taken by the page
 *        allocator under the calls above: tidei_heap_new_run, tidei_meta_alloc,
 *        tidei_huge_alloc; the GC takes tidei_arena.lock itself only to
 *        switch a span's kind and to get descriptor memory)
 *   par_mu (mark.c: the helpers' shared pool) is taken only by markers,
 *   with tidei_gc_threads_lock held by the collecting thread, and by the
 *   fork handlers after it.
 *   Fork: the GC's prepare handler (threads.c) is registered after tide's
 *   (init.c), so it runs first: it takes tidei_gc_threads_lock, stops the
 *   world and takes par_mu before tide's handler takes tidei_heaps_lock and
 *   tidei_arena.lock, which keeps the order above.
 *
 * A thread holds a pool, big, all, tables or roots lock only inside
 * crit (tidei_gc_crit_enter/leave: a GC slow path, where the stop signal
 * waits until it leaves), and never takes tidei_gc_threads_lock inside
 * crit.  So while the world is stopped no stopped thread holds a lock the
 * collector needs, and the collector never takes tidei_arena.lock with the
 * world stopped. */
#ifndef TIDE_GC_INTERNAL_H
#define TIDE_GC_INTERNAL_H

#include <signal.h>
#include <time.h>
#include <ucontext.h>

#include "tide_internal.h"
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "gc.h"

/* ---- types ---- */

/* The kinds of GC block. */
enum { GK_NORMAL = 0, GK_ATOMIC, GK_UNCOLL, GK_N };

/* A free GC block: its link on a thread's free list (plain: these lists are
 * the GC heap's own, not malloc's encoded ones) and tidei_free_key while
 * free, which GC_FREE tests to catch a second free. */
typedef struct gc_link {
    struct gc_link *next;
    uintptr_t key;
} gc_link_t;

/* Which list of its pool a span is on (gc_span_t.list). */
enum { GL_NONE = 0, GL_SWEEP, GL_AVAIL, GL_FULL, GL_EMPTY, GL_DEAD };

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
    uint32_t words;              /* 64-bit words of the alloc bitmap: (n_blocks + 63) / 64 */
    uint32_t words_cap;          /* words its memory has room for (a recycled descriptor may
                                    have served a bigger span of the class) */
    uint32_t swept;              /* collection number it was last swept in */
    uint32_t n_marked;           /* blocks the last collection marked (counted after its mark) */
    uint32_t take_pos;           /* held: the bitmap word span_take_free goes on from */
    uint32_t pop_end;            /* fresh: bytes from the start made resident ahead (span_take_free) */
    uint8_t fresh;               /* every block not handed out yet is zero (pages new from the OS) */
    uint8_t kind;                /* GK_* */
    uint8_t big;                 /* one block */
    uint8_t huge;                /* big, a huge mapping (its descriptor's kind was HUGE) */
    uint8_t held;                /* a thread holds it (its free blocks are on that thread's list) */
    uint8_t list;                /* GL_*: which pool list it is on */
    uint8_t cls;                 /* size class (small) */
    uint8_t has_marks;           /* a mark byte may be set (cleared with them at a mark's start):
                                    spans without are skipped by the mark's start and count */
    gc_link_t *pending;       /* blocks GC_FREE'd by other threads while held (pool lock) */
    struct tidei_gc_span *pool_next; /* recycling of descriptors */
    uint64_t bits[];             /* alloc[words] (a bit per block), then the marks (a byte per
                                    block, 64 * words: MARKB) */
} gc_span_t;

/* The alloc bitmap, and the mark bytes: one byte per block, 0 or 1, so
 * that markers running in parallel mark with a plain byte store rather
 * than a locked read-modify-write of a word others' bits share (that lock
 * was a third of the mark's time, the prefetched misses waiting behind
 * it).  Two markers that race for a block both scan it: harmless, since
 * the second finds everything it points to marked. */
#define ALLOCS(g) ((g)->bits)
#define MARKB(g) ((uint8_t *)((g)->bits + (g)->words))
#define MARK_TEST(g, i) (__atomic_load_n(&MARKB(g)[i], __ATOMIC_RELAXED) != 0)
#define MARK_SET(g, i)                                                  \
    do {                                                                \
        __atomic_store_n(&MARKB(g)[i], (uint8_t)1, __ATOMIC_RELAXED);   \
        if (!__atomic_load_n(&(g)->has_marks, __ATOMIC_RELAXED))        \
            __atomic_store_n(&(g)->has_marks, (uint8_t)1, __ATOMIC_RELAXED); \
    } while (0)
#define MARK_CLEAR(g, i) __atomic_store_n(&MARKB(g)[i], (uint8_t)0, __ATOMIC_RELAXED)
#define BIT_TEST(m, i) (((m)[(i) >> 6] >> ((i)&63)) & 1)
#define BIT_SET(m, i) ((m)[(i) >> 6] |= (uint64_t)1 << ((i)&63))
#define BIT_CLEAR(m, i) ((m)[(i) >> 6] &= ~((uint64_t)1 << ((i)&63)))

/* A pool: the spans of one (kind, class) no thread holds. */
typedef struct gc_pool {
    pthread_mutex_t lock;        /* guards the lists and their spans' list/held/pending fields */
    gc_span_t *sweep;            /* not swept since the last collection */
    gc_span_t *avail;            /* swept, with free blocks */
    gc_span_t *full;             /* swept, no free block */
    gc_span_t *empty;            /* every block died at the last collection: all free */
} gc_pool_t;

/* A thread that uses the GC heap (registered). */
typedef struct gc_thread {
    gc_link_t *fl[GK_N][TIDE_N_CLASSES]; /* free lists (owner only, no lock) */
    gc_span_t *held[GK_N][TIDE_N_CLASSES];  /* the span each list comes from */
    struct gc_thread *next, *prev; /* registry (tidei_gc_threads_lock) */
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
    size_t allocd_pending;       /* bytes taken for allocation not yet in tidei_gc_allocd_since (owner;
                                    the collector with the thread stopped) */
    uintptr_t thp_region;        /* the 2 MiB it last asked huge pages for (owner; heap.c: span_new) */
    uint8_t n_new_spans[GK_N][TIDE_N_CLASSES]; /* new spans it made per (kind, class), up to
                                    GC_SPAN_GROW_AFTER (owner; heap.c: gc_span_pages) */
} gc_thread_t;

/* A range of memory to scan, [lo, hi). */
typedef struct gc_range {
    uintptr_t lo, hi;
} gc_range_t;

/* ---- small helpers ---- */

static inline uint64_t tidei_gc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The calling thread's thread pointer (where its static TLS is found). */
static inline uintptr_t tidei_gc_thread_pointer(void)
{
    uintptr_t tp = 0;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
    return tp;
}

/* Spills the callee-saved registers into a gc_spill_t (on the caller's
 * stack, which is then scanned).  setjmp would not do: glibc mangles the
 * rbp it saves, and rbp is an ordinary register without frame pointers. */
typedef struct gc_spill {
    uintptr_t r[8];
} gc_spill_t;
#define GC_SPILL_REGS(sp_) \
    __asm__ volatile("mov %%rbx, 0(%0)\n\tmov %%rbp, 8(%0)\n\tmov %%r12, 16(%0)\n\t" \
                     "mov %%r13, 24(%0)\n\tmov %%r14, 32(%0)\n\tmov %%r15, 40(%0)" \
                     : : "r"((sp_)->r) : "memory")

/* The set bits of x.  Without -mpopcnt (the default build runs on any
 * x86-64) __builtin_popcountll is a call into libgcc, which was 4 % of
 * gcbench's instructions: these few operations are inline. */
static inline uint32_t tidei_gc_popcount(uint64_t x)
{
#ifdef __POPCNT__
    return (uint32_t)__builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
#endif
}

/* The mark bytes of blocks 64 w .. 64 w + 63 of g as a bitmap word (bit j:
 * block 64 w + j), for the sweep: each group of eight bytes (each 0 or 1)
 * is gathered into eight bits by one multiplication. */
static inline uint64_t tidei_gc_marks_word(const gc_span_t *g, uint32_t w)
{
    const uint8_t *b = MARKB(g) + (size_t)w * 64;
    uint64_t r = 0;
    for (unsigned j = 0; j < 8; j++) {
        uint64_t x;
        memcpy(&x, b + 8 * j, 8);
        r |= ((x * 0x0102040810204080ull) >> 56) << (8 * j);
    }
    return r;
}

/* Block index of address a in small GC span g (a inside the span). */
static inline uint32_t tidei_gc_block_index(const gc_span_t *g, uintptr_t a)
{
    return (uint32_t)tidei_block_index(g->span, a);
}

/* ---- heap.c ---- */
extern gc_pool_t tidei_gc_pools[GK_N][TIDE_N_CLASSES];
extern gc_span_t *tidei_gc_all_spans;     /* every GC span (next/prev) */
extern gc_span_t *tidei_gc_bigs;          /* every big block (lnext/lprev; big_lock) */
extern _Atomic size_t tidei_gc_empty_bytes; /* bytes of spans on the pools' empty lists */
extern _Atomic uintptr_t tidei_gc_heap_lo, tidei_gc_heap_hi; /* bounds of every GC span ever */
extern _Atomic size_t tidei_gc_heap_bytes;      /* bytes of GC spans */
extern _Atomic size_t tidei_gc_allocd_since;    /* bytes taken for allocation since the last collection */
extern _Atomic uint64_t tidei_gc_allocd_total;  /* ever */
extern size_t tidei_gc_max_heap;                /* 0: none (GC_set_max_heap_size, gc_max_mb) */
extern _Atomic uint64_t tidei_gc_n_freed_explicit; /* GC_FREE calls */
extern void *(*tidei_gc_oom_fn)(size_t);        /* GC_set_oom_fn */
/* Unlinks g from the all-spans list; the caller frees its pages
 * (tidei_gc_span_pages_free), then recycles g (tidei_gc_desc_recycle).
 * all_lock not held, or the world stopped (`locked`). */
void tidei_gc_span_unpublish(gc_span_t *g, bool locked);
/* Puts g, unpublished, its pages freed, back for reuse. */
void tidei_gc_desc_recycle(gc_span_t *g);
/* Gives the pages of span s (its descriptor already unpublished) back. */
void tidei_gc_span_pages_free(tide_span_t *s, bool huge);
/* Puts g on list `which` (GL_*) of a pool, head *head.  Pool lock held,
 * or the world stopped. */
void tidei_gc_pool_push(gc_span_t **head, gc_span_t *g, int which);
/* Releases the span t holds for (k, cls) to its pool.  Inside crit, or
 * t's thread gone (fork child). */
void tidei_gc_span_release(gc_thread_t *t, int k, int cls);
/* Bytes a thread takes for allocation before it adds them to the shared
 * figures (tidei_gc_allocd_since lags by at most this per thread). */
#define TIDE_GC_ALLOC_FLUSH ((size_t)64 << 10)
/* Adds t's pending allocated bytes to the shared figures. */
void tidei_gc_allocd_flush(gc_thread_t *t);
/* Clears (set false) or restores the alloc bits of every block on a free
 * list of a registered thread.  World stopped. */
void tidei_gc_free_lists_alloc(bool set);
/* The GC span and block index of p, and the block's start, or NULL when p
 * is not in a GC block (of a span fully set up). */
gc_span_t *tidei_gc_lookup(const void *p, uint32_t *idx, uintptr_t *base);
void *tidei_gc_malloc(size_t n, int kind);
void *tidei_gc_base(const void *p);
size_t tidei_gc_size(const void *p);
int tidei_gc_kind(const void *p);
void tidei_gc_free(void *p, const char *op);
void *tidei_gc_realloc(void *p, size_t n);
void tidei_gc_set_max_heap(size_t n);

/* ---- sweep.c ---- */
extern _Atomic uint64_t tidei_gc_reclaimed_total; /* bytes found dead by sweeps */
/* Sweeps g (owned by the caller: taken off its pool, or world stopped);
 * returns how many blocks are free now. */
uint32_t tidei_gc_span_sweep(gc_span_t *g);
/* After the mark: rebuilds the pools and sets aside what is freed after
 * the restart.  World stopped. */
void tidei_gc_pools_rebuild(void);
/* Takes what the last tidei_gc_pools_rebuild set aside
 * (tidei_gc_threads_lock held), then gives it back to the page allocator
 * (no GC lock held). */
gc_span_t *tidei_gc_dead_take(void);
void tidei_gc_dead_free(gc_span_t *dead);

/* ---- threads.c ---- */
extern pthread_mutex_t tidei_gc_threads_lock;  /* the registry; held through a collection */
extern gc_thread_t *tidei_gc_threads;          /* registered threads (next/prev) */
extern size_t tidei_gc_n_threads;              /* registered */
extern __thread gc_thread_t *tidei_gc_tl;      /* the calling thread's, or NULL */
/* The stop key, signal handler and fork handlers (first use). */
void tidei_gc_threads_init(void);
/* A stop arrived while t was inside crit: it stops now. */
void tidei_gc_self_stop(gc_thread_t *t);
/* The bounds of the calling thread's stack. */
void tidei_gc_stack_bounds(uintptr_t *lo, uintptr_t *hi);
/* Registers the calling thread (stack base hi, 0: find it).  Returns its
 * structure, or NULL when memory ran out.  Not inside crit. */
gc_thread_t *tidei_gc_thread_register(uintptr_t hi, bool from_create);
/* Where the scan of stopped thread t's stack starts (my_sp: the
 * collecting thread's).  World stopped. */
uintptr_t tidei_gc_thread_sp(const gc_thread_t *t, uintptr_t my_sp);
/* Takes tidei_gc_threads_lock, counting the caller t (or NULL) as stopped
 * while it waits. */
void tidei_gc_lock_threads(gc_thread_t *t);
/* Stops every registered thread but the caller; restarts them.
 * tidei_gc_threads_lock held. */
void tidei_gc_stop_world(void);
void tidei_gc_start_world(void);
int tidei_gc_register_thread(uintptr_t base, bool from_create);
int tidei_gc_unregister_thread(void);
bool tidei_gc_thread_registered(void);
void *tidei_gc_do_blocking(void *(*fn)(void *), void *arg);
void *tidei_gc_with_lock(void *(*fn)(void *), void *arg);
int tidei_gc_stop_signal(void);

/* Entering and leaving a GC slow path, where the thread may hold a pool,
 * big, all, tables or roots lock: a stop that arrives inside waits until
 * it leaves.  Owner only. */
static inline void tidei_gc_crit_enter(gc_thread_t *t)
{
    __atomic_store_n(&t->crit, t->crit + 1, __ATOMIC_RELAXED);  /* the collector peeks at it */
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void tidei_gc_crit_leave(gc_thread_t *t)
{
    atomic_signal_fence(memory_order_seq_cst);
    int c = t->crit - 1;
    __atomic_store_n(&t->crit, c, __ATOMIC_RELAXED);
    if (c == 0) {
        atomic_signal_fence(memory_order_seq_cst);
        if (tide_unlikely(t->stop_pending))
            tidei_gc_self_stop(t);
    }
}

/* ---- mark.c ---- */
/* Starts a mark: every mark bit cleared, the heap bounds taken, the
 * markers reset.  World stopped. */
void tidei_gc_mark_start(void);
void tidei_gc_mark_settle(void);
/* Marks the block word w points into, if it is a live GC block, and
 * pushes its contents (unless atomic) to be scanned. */
void tidei_gc_mark_word(uintptr_t w);
/* Marks what the words of [lo, hi) point to. */
void tidei_gc_scan_range(uintptr_t lo, uintptr_t hi);
/* Pushes [lo, hi) to be scanned (GC_push_all and the hooks). */
void tidei_gc_push_range(void *lo, void *hi);
/* Marks every uncollectable block and pushes its contents. */
void tidei_gc_mark_uncollectable(void);
/* Scans everything pushed, on the collecting thread alone. */
void tidei_gc_mark_drain(void);
/* The same, with the helper threads. */
void tidei_gc_mark_parallel(void);
/* Marks w's block and what it reaches (tidei_gc_mark_word, then drain). */
void tidei_gc_mark_from(uintptr_t w);
/* After the mark: sets each span's n_marked from its mark bits; returns
 * the bytes marked. */
size_t tidei_gc_mark_count(void);
/* Starts the helper markers once.  tidei_gc_threads_lock held. */
void tidei_gc_helpers_start(void);
void tidei_gc_start_markers(void);
int tidei_gc_mark_bit(const void *p, int set);
/* Fork: the helpers' lock taken before, released after; in the child the
 * helpers are gone. */
void tidei_gc_mark_fork_prepare(void);
void tidei_gc_mark_fork_parent(void);
void tidei_gc_mark_fork_child(void);

/* ---- roots.c ---- */
extern bool tidei_gc_no_dls;       /* GC_set_no_dls: only the main program's data is a root */
/* Finds libtide's own writable segment (not a root).  First use. */
void tidei_gc_roots_init(void);
/* Lists the modules' writable segments and TLS blocks.  Before the world
 * stops (dl_iterate_phdr takes the loader's lock). */
void tidei_gc_roots_list(void);
/* Marks from every root.  World stopped; my_sp: the collector's stack
 * pointer, its registers spilled above it. */
void tidei_gc_roots_scan(uintptr_t my_sp);
void tidei_gc_roots_add(uintptr_t lo, uintptr_t hi);
void tidei_gc_roots_remove(uintptr_t lo, uintptr_t hi);
void tidei_gc_roots_clear(void);

/* ---- finalize.c ---- */
enum { FIN_ORDERED = 0, FIN_NO_ORDER, FIN_IGNORE_SELF };
extern GC_finalizer_notifier_proc tidei_gc_fin_notifier; /* GC_set_finalizer_notifier */
extern int tidei_gc_fin_on_demand;                       /* GC_set_finalize_on_demand */
/* Settles finalization and the short links after the mark, then the long
 * links.  World stopped. */
void tidei_gc_fin_mark(void);
void tidei_gc_fin_after_mark(void);
/* After a collection, outside every lock: the notifier, or the finalizers. */
void tidei_gc_fin_run_pending(void);
/* Registers fn (NULL: none) on obj for op (its name, for the report of a
 * misuse: obj a malloc block, a stack address, an interior pointer). */
void tidei_gc_fin_register(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd,
                           int mode, const char *op);
bool tidei_gc_fin_pending(void);
int tidei_gc_fin_invoke(void);
int tidei_gc_link_register(void **link, const void *obj, bool is_long, const char *op);
int tidei_gc_link_unregister(void **link, bool is_long);

/* ---- collect.c ---- */
extern _Atomic unsigned tidei_gc_no;     /* collections done */
extern _Atomic int tidei_gc_disabled;    /* GC_disable depth */
extern size_t tidei_gc_live_after;       /* bytes marked by the last collection */
extern void (*tidei_gc_start_cb)(void);  /* GC_set_start_callback */
/* Collects now (the caller registered or not, not inside crit); unless
 * force, not while disabled nor when another thread just did. */
void tidei_gc_cycle(bool force);
/* Pacing: whether the allocation that took the caller to its slow path
 * should start a collection; t counted among this cycle's allocators. */
bool tidei_gc_should_collect(void);
void tidei_gc_note_allocating(gc_thread_t *t);
void tidei_gc_collect(void);
void tidei_gc_disable(int d);

/* ---- api.c ---- */
extern _Atomic int tidei_gc_state;       /* 0 never used, 1 initializing, 2 ready */
void tidei_gc_init_slow(void);
void tidei_gc_init(void);

/* Sets the GC heap up on first use. */
static inline void tidei_gc_init_once(void)
{
    if (tide_unlikely(atomic_load_explicit(&tidei_gc_state, acquire) != 2))
        tidei_gc_init_slow();
}

/* The calling thread's structure, registering it on first use (NULL when
 * memory ran out). */
static inline gc_thread_t *tidei_gc_thread(void)
{
    gc_thread_t *t = tidei_gc_tl;
    if (tide_likely(t != NULL))
        return t;
    tidei_gc_init_once();
    return tidei_gc_thread_register(0, false);
}

/* The same for the API's calls that cannot fail: no memory is fatal. */
static inline gc_thread_t *tidei_gc_thread_or_die(void)
{
    gc_thread_t *t = tidei_gc_thread();
    if (!t)
        tidei_fatal("tide: GC: no memory to register a thread\n");
    return t;
}

#endif /* TIDE_GC_INTERNAL_H */
