/* api/stats.c — the accounting and introspection interface of tide.h
 * (tide_stats_get, tide_stats_heaps, tide_stats_print, tide_heap_walk,
 * tide_block_info) and the glibc reports built on it (malloc_stats,
 * malloc_info, mallinfo2), called exactly as a user calls them.
 * th-static: yes
 * th-timeout: 240
 * th-conf: shared_blocks=0
 *
 * shared_blocks=0: every block comes from a span of its thread's own heap,
 * so that each figure per heap (and the heap of each block the walk
 * reports) follows from what that thread did.  By default a thread's first
 * blocks of a class come from shared heaps, which tests/api/shared.c
 * checks.
 * The figures are exact when no thread allocates or frees, so most tests
 * work in steps: worker threads allocate a known pattern, then park on a
 * barrier while the main thread reads the figures and compares their
 * difference from a baseline with what the pattern must give.  The threads
 * are created before the baseline (pthread_create allocates the new
 * thread's TLS vector with calloc) and get small stacks, so that glibc's
 * stack cache never frees an old thread's TLS vector inside a measured
 * window.  Every pointer goes to a global array, so the compiler cannot drop
 * a malloc/free pair, and the test's own tables are static or mmap'ed: only
 * the pattern moves the counters.  The order of the tests matters for the
 * first one (it wants no abandoned span and no pending remote free left
 * over by an earlier test, and checks so) and the last (under TSan it runs
 * in the process and may end it).
 *
 * The exit report (stats=1), the JSON file (stats=json, stats_file with %p),
 * the report on a signal (stats_signal) and the validity of the JSON and of
 * malloc_info's XML (python) are in tests/api/stats.sh. */
#include "testhelper.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#pragma weak tide_stats_heaps
#pragma weak tide_stats_print
#pragma weak tide_heap_walk
#pragma weak tide_block_info

#define CHUNK_BYTES (8 * MiB)       /* tide.h: n_chunks counts chunks of 8 MiB */
/* A block this big is huge whatever the heap holds: one above TIDE_LARGE_MAX
 * (4 MiB) that fits in a chunk is large when a free run there has its pages
 * resident. */
#define HUGE_MIN (9 * MiB)
#define STACK_BYTES (256 * KiB)     /* worker threads' stacks */
#define MAX_HEAPS 512

/* Under TSan (TH_REDIRECT) the runtime intercepts the glibc report
 * functions; call libtide's own. */
#ifdef TH_REDIRECT
static void *tide_sym(const char *name)
{
    void *h = dlopen("libtide.so", RTLD_NOW | RTLD_NOLOAD);
    void *f = h ? dlsym(h, name) : NULL;
    if (!f) { fprintf(stderr, "no %s in libtide.so\n", name); abort(); }
    return f;
}
#define mallinfo2() ((struct mallinfo2 (*)(void))tide_sym("mallinfo2"))()
#define malloc_stats() ((void (*)(void))tide_sym("malloc_stats"))()
#define malloc_info(o, f) ((int (*)(int, FILE *))tide_sym("malloc_info"))(o, f)
#endif

/* ---- helpers -------------------------------------------------------------- */

static int my_tid(void)
{
    return (int)syscall(SYS_gettid);
}

static struct tide_stats stats_now(void)
{
    struct tide_stats s;
    memset(&s, 0xa5, sizeof s);        /* a field tide forgets to fill shows */
    if (tide_stats_get(&s) != 0) FAILF("tide_stats_get failed");
    return s;
}

/* The small class whose blocks have block_size bytes (class 0, malloc(0)'s,
 * shares 16 with class 1 and is never the answer), or -1. */
static int class_of_size(const struct tide_stats *s, size_t block_size)
{
    for (int c = 1; c < TIDE_N_CLASSES; c++)
        if (s->classes[c].block_size == block_size) return c;
    return -1;
}

/* Signed difference of two counters, for messages and comparisons. */
#define DIFF(b, a, f) ((long long)(b).f - (long long)(a).f)
/* CHECK that field f moved by exactly want between snapshots a and b. */
#define CHECK_DELTA(a, b, f, want, when) \
    CHECKF(DIFF(b, a, f) == (long long)(want), "%s: %s moved by %lld, want %lld", when, #f, DIFF(b, a, f), \
           (long long)(want))

/* Gives the calling thread a heap (under TSan, the runtime serves the
 * program's own stdio and the like, so main may have none yet). */
static void own_heap(void)
{
    void *volatile p = malloc(16);
    free(p);
}

/* Starts fn on a thread with a small stack. */
static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, STACK_BYTES);
    pthread_t t;
    if (pthread_create(&t, &at, fn, arg) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        abort();
    }
    pthread_attr_destroy(&at);
    return t;
}

/* The figures that hold together at any quiescent moment: sums of the
 * per-class figures, live = malloc - free, and every byte of the chunks
 * accounted for: a chunk's pages are free runs, large blocks or small spans,
 * and a span's blocks are live, cached by its owner, free in an exited
 * thread's span, or freed remotely and not yet taken back (pending).  The
 * only bytes left over are the tails of spans no whole block fits in (at
 * most 1/8 of a span). */
static void check_consistent(const struct tide_stats *s, const char *when)
{
    size_t small_live = 0, small_blocks = 0, cached = 0, spans = 0;
    uint64_t nm = 0, nf = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        const struct tide_class_stats *k = &s->classes[c];
        CHECKF(k->n_malloc - k->n_free == k->live_blocks, "%s: class %d: n_malloc %lu - n_free %lu != live %zu",
               when, c, (unsigned long)k->n_malloc, (unsigned long)k->n_free, k->live_blocks);
        CHECKF(k->block_size >= 16 && k->block_size <= 64 * KiB && k->block_size % 16 == 0,
               "%s: class %d: block_size %zu", when, c, k->block_size);
        if (c > 1) CHECKF(k->block_size > s->classes[c - 1].block_size, "%s: class sizes not increasing at %d", when, c);
        small_live += k->live_blocks * k->block_size;
        small_blocks += k->live_blocks;
        cached += k->cached_blocks * k->block_size;
        spans += k->n_spans;
        nm += k->n_malloc;
        nf += k->n_free;
    }
    CHECKF(s->classes[0].block_size == 16 && s->classes[TIDE_N_CLASSES - 1].block_size == 64 * KiB,
           "%s: class 0 has %zu-byte blocks, the last class %zu", when, s->classes[0].block_size,
           s->classes[TIDE_N_CLASSES - 1].block_size);
    CHECKF(s->small_live_bytes == small_live, "%s: small_live_bytes %zu, classes sum to %zu", when,
           s->small_live_bytes, small_live);
    CHECKF(s->cached_bytes == cached, "%s: cached_bytes %zu, classes sum to %zu", when, s->cached_bytes, cached);
    CHECKF(s->n_spans == spans, "%s: n_spans %zu, classes sum to %zu", when, s->n_spans, spans);
    CHECKF(s->n_full_spans <= s->n_spans, "%s: %zu full spans of %zu", when, s->n_full_spans, s->n_spans);
    CHECKF(s->live_blocks == small_blocks + s->n_large + s->n_huge, "%s: live_blocks %zu != %zu small + %zu large "
           "+ %zu huge", when, s->live_blocks, small_blocks, s->n_large, s->n_huge);
    CHECKF(s->live_bytes == s->small_live_bytes + s->large_live_bytes + s->huge_bytes,
           "%s: live_bytes %zu != small + large + huge", when, s->live_bytes);
    CHECKF(s->n_malloc - s->n_free == s->live_blocks, "%s: n_malloc %lu - n_free %lu != live_blocks %zu", when,
           (unsigned long)s->n_malloc, (unsigned long)s->n_free, s->live_blocks);
    CHECKF(s->n_malloc >= nm + s->n_large + s->n_huge && s->n_free >= nf,
           "%s: n_malloc %lu / n_free %lu below the small classes' %lu / %lu", when, (unsigned long)s->n_malloc,
           (unsigned long)s->n_free, (unsigned long)nm, (unsigned long)nf);
    CHECKF(s->mapped_bytes == s->n_chunks * CHUNK_BYTES + s->huge_bytes + s->huge_cached_bytes,
           "%s: mapped_bytes %zu != %zu chunks + huge %zu + huge cache %zu", when, s->mapped_bytes, s->n_chunks,
           s->huge_bytes, s->huge_cached_bytes);
    CHECKF(s->committed_bytes <= s->mapped_bytes, "%s: committed %zu > mapped %zu", when, s->committed_bytes,
           s->mapped_bytes);
    CHECKF(s->n_heaps <= s->n_heaps_total, "%s: %zu heaps in use of %zu", when, s->n_heaps, s->n_heaps_total);
    CHECKF(s->metadata_bytes > 0, "%s: metadata_bytes 0", when);
    size_t chunk_bytes = s->n_chunks * CHUNK_BYTES;
    if (chunk_bytes < s->large_live_bytes + s->free_run_bytes) {
        FAILF("%s: %zu chunks hold %zu bytes of large blocks and %zu of free runs", when, s->n_chunks,
              s->large_live_bytes, s->free_run_bytes);
        return;
    }
    size_t span_bytes = chunk_bytes - s->large_live_bytes - s->free_run_bytes;
    size_t in_spans = s->small_live_bytes + s->cached_bytes + s->abandoned_bytes;
    size_t lo = in_spans + s->pending_remote_frees * 16, hi = in_spans + s->pending_remote_frees * 64 * KiB;
    CHECKF(lo <= span_bytes, "%s: live %zu + cached %zu + abandoned %zu + %zu pending blocks do not fit in the "
           "%zu bytes of spans", when, s->small_live_bytes, s->cached_bytes, s->abandoned_bytes,
           s->pending_remote_frees, span_bytes);
    CHECKF(span_bytes - span_bytes / 8 <= hi, "%s: spans hold %zu bytes, but live %zu + cached %zu + abandoned "
           "%zu (+ %zu pending blocks) account for only %zu..%zu", when, span_bytes, s->small_live_bytes,
           s->cached_bytes, s->abandoned_bytes, s->pending_remote_frees, lo, hi);
}

/* Heap snapshots, by heap id. */
typedef struct {
    struct tide_heap_stats h[MAX_HEAPS];
    size_t n;                       /* entries filled */
    size_t count;                   /* what tide_stats_heaps returned */
} heaps_t;

static void heaps_now(heaps_t *hs)
{
    memset(hs->h, 0xa5, sizeof hs->h);
    hs->count = tide_stats_heaps(hs->h, MAX_HEAPS);
    hs->n = hs->count < MAX_HEAPS ? hs->count : MAX_HEAPS;
}

/* The heap with this id (a zeroed entry if absent: a heap made later). */
static struct tide_heap_stats heap_by_id(const heaps_t *hs, unsigned id)
{
    for (size_t i = 0; i < hs->n; i++)
        if (hs->h[i].id == id) return hs->h[i];
    struct tide_heap_stats z;
    memset(&z, 0, sizeof z);
    z.id = id;
    return z;
}

/* The heap of live thread tid; its id is 0 if none, and *n_found counts
 * how many heaps claim tid. */
static struct tide_heap_stats heap_by_tid(const heaps_t *hs, int tid, int *n_found)
{
    struct tide_heap_stats r;
    memset(&r, 0, sizeof r);
    *n_found = 0;
    for (size_t i = 0; i < hs->n; i++) {
        if (hs->h[i].tid == tid) {
            r = hs->h[i];
            ++*n_found;
        }
    }
    return r;
}

/* The heaps add up to the totals (taken at the same quiescent moment):
 * spans, full spans and cached bytes are all in thread heaps; mallocs and
 * frees of small blocks are the heaps' plus those of threads that had no
 * heap (the backup heap, remote frees before a thread's first malloc). */
static void check_heaps_sum(const struct tide_stats *s, const heaps_t *hs, const char *when)
{
    size_t spans = 0, full = 0, cached = 0;
    uint64_t nm = 0, nf = 0, snm = 0, snf = 0;
    for (size_t i = 0; i < hs->n; i++) {
        spans += hs->h[i].n_spans;
        full += hs->h[i].n_full_spans;
        cached += hs->h[i].cached_bytes;
        nm += hs->h[i].n_malloc;
        nf += hs->h[i].n_free;
    }
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        snm += s->classes[c].n_malloc;
        snf += s->classes[c].n_free;
    }
    CHECKF(hs->count == s->n_heaps_total && hs->n == hs->count, "%s: %zu heaps listed, n_heaps_total %zu", when,
           hs->count, s->n_heaps_total);
    CHECKF(spans == s->n_spans && full == s->n_full_spans && cached == s->cached_bytes, "%s: heaps add up to %zu "
           "spans (%zu full), %zu cached bytes; totals %zu (%zu), %zu", when, spans, full, cached, s->n_spans,
           s->n_full_spans, s->cached_bytes);
    CHECKF(nm <= snm && nf <= snf, "%s: heaps count %lu mallocs, %lu frees; the classes %lu, %lu", when,
           (unsigned long)nm, (unsigned long)nf, (unsigned long)snm, (unsigned long)snf);
}

/* Sorts a[0..n) ascending (shell sort: no malloc, unlike qsort). */
static void sort_uptr(uintptr_t *a, size_t n)
{
    static const size_t gaps[] = { 1750, 701, 301, 132, 57, 23, 10, 4, 1 };
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            uintptr_t v = a[i];
            size_t j = i;
            for (; j >= gap && a[j - gap] > v; j -= gap) a[j] = a[j - gap];
            a[j] = v;
        }
    }
}

static bool uptr_find(const uintptr_t *a, size_t n, uintptr_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == v;
}

/* A memfd holding what write_fn wrote to it, read back into buf (NUL-ended).
 * Returns the length, or -1. */
static long capture(void (*write_fn)(int fd, void *arg), void *arg, char *buf, size_t cap)
{
    int fd = memfd_create("tide-stats-test", 0);
    if (fd < 0) return -1;
    write_fn(fd, arg);
    long n = (long)lseek(fd, 0, SEEK_CUR);
    if (n < 0 || (size_t)n >= cap) { close(fd); return -1; }
    if (pread(fd, buf, (size_t)n, 0) != n) { close(fd); return -1; }
    buf[n] = 0;
    close(fd);
    return n;
}

/* ---- 1. exact figures across threads ------------------------------------ */

#define NA 1000                     /* thread A: malloc(100) */
#define NB 500                      /* thread B: malloc(1000) */
#define NS 50                       /* thread C: malloc(3000) */
#define NL 7                        /* thread C: malloc(100000), large */
#define NH 2                        /* thread C: malloc(HUGE_MIN), huge */
#define SZ_A 100
#define SZ_B 1000
#define SZ_S 3000
#define SZ_L 100000
#define SZ_H HUGE_MIN

static void *volatile gA[NA], *volatile gB[NB], *volatile gS[NS], *volatile gL[NL], *volatile gH[NH];
static pthread_barrier_t bar4;      /* main, A, B, C */
static pthread_barrier_t bar2;      /* main, B */
static atomic_int tid_a, tid_b, tid_c;
static atomic_int worker_errors;

static void alloc_into(void *volatile *tab, int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        void *p = malloc(size);
        if (!p) { atomic_fetch_add(&worker_errors, 1); continue; }
        memset(p, 0x5a, size < 64 ? size : 64);
        tab[i] = p;
    }
}

static void free_range(void *volatile *tab, int from, int to)
{
    for (int i = from; i < to; i++) {
        free(tab[i]);
        tab[i] = NULL;
    }
}

/* The steps, as barrier waits: 1 started, 2 go, 3 allocated, 4 cross
 * frees done, 5 main has read the figures (A and C exit). */
static void *thread_a(void *arg)
{
    (void)arg;
    atomic_store(&tid_a, my_tid());
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar4);
    alloc_into(gA, NA, SZ_A);
    pthread_barrier_wait(&bar4);
    free_range(gB, 0, 200);         /* remote: B's blocks */
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar4);
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    atomic_store(&tid_b, my_tid());
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar4);
    alloc_into(gB, NB, SZ_B);
    pthread_barrier_wait(&bar4);
    free_range(gA, 0, 300);         /* remote: A's blocks */
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar2);    /* main has read the figures after A and C left */
    return NULL;
}

static void *thread_c(void *arg)
{
    (void)arg;
    atomic_store(&tid_c, my_tid());
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar4);
    alloc_into(gS, NS, SZ_S);
    alloc_into(gL, NL, SZ_L);
    alloc_into(gH, NH, SZ_H);
    pthread_barrier_wait(&bar4);
    free_range(gS, 0, 10);          /* its own small blocks */
    free_range(gL, 0, 3);           /* its own large and huge blocks */
    free_range(gH, 0, 1);
    pthread_barrier_wait(&bar4);
    pthread_barrier_wait(&bar4);
    return NULL;
}

/* Three threads allocate a known pattern, free some of each other's blocks
 * (remote frees) and some of their own, and exit one after the other; at
 * each quiescent step every figure must have moved by exactly what the
 * pattern says, per class, per heap and in total.  Remote frees stay
 * pending while their span's owner runs and are taken back when it exits
 * (or, for spans nobody owns, by tide_trim). */
static void exact_across_threads(void)
{
    TIDE_ONLY();
    tide_trim();                    /* empty the huge cache: gH must not reuse on_tide's mapping */
    own_heap();
    pthread_barrier_init(&bar4, NULL, 4);
    pthread_barrier_init(&bar2, NULL, 2);
    atomic_store(&worker_errors, 0);
    pthread_t ta = spawn(thread_a, NULL), tb = spawn(thread_b, NULL), tc = spawn(thread_c, NULL);
    pthread_barrier_wait(&bar4);    /* 1: every thread exists */

    static heaps_t h0, h1, h2;
    struct tide_stats s0 = stats_now();
    heaps_now(&h0);
    check_consistent(&s0, "baseline");
    CHECKF(s0.n_abandoned_spans == 0 && s0.pending_remote_frees == 0, "baseline: an earlier test left %zu abandoned "
           "spans and %zu pending remote frees (this test must run first)", s0.n_abandoned_spans,
           s0.pending_remote_frees);

    pthread_barrier_wait(&bar4);    /* 2: go */
    pthread_barrier_wait(&bar4);    /* 3: allocated */
    if (atomic_load(&worker_errors)) FAILF("%d worker mallocs failed", atomic_load(&worker_errors));
    size_t za = malloc_usable_size(gA[NA - 1]), zb = malloc_usable_size(gB[NB - 1]);
    size_t zs = malloc_usable_size(gS[NS - 1]), zl = malloc_usable_size(gL[NL - 1]);
    size_t zh = malloc_usable_size(gH[NH - 1]);
    CHECKF(za == 112 && zb == 1024 && zs == 3072 && zl == 102400 && zh == SZ_H, "usable sizes %zu %zu %zu %zu %zu, "
           "want 112 1024 3072 102400 %zu (the size classes of tide.h)", za, zb, zs, zl, zh, SZ_H);
    free_range(gA, 300, 400);       /* remote: A's */
    free_range(gS, 10, 20);         /* remote: C's */
    free_range(gL, 3, 5);           /* large blocks C allocated */
    pthread_barrier_wait(&bar4);    /* 4: every free done, all threads parked */

    struct tide_stats s1 = stats_now();
    heaps_now(&h1);
    const char *when = "3 threads parked";
    check_consistent(&s1, when);
    int ca = class_of_size(&s1, za), cb = class_of_size(&s1, zb), cs = class_of_size(&s1, zs);
    if (ca < 0 || cb < 0 || cs < 0) {
        FAILF("no class with %zu, %zu or %zu-byte blocks", za, zb, zs);
    } else {
        CHECK_DELTA(s0, s1, classes[ca].n_malloc, NA, "class A");
        CHECK_DELTA(s0, s1, classes[ca].n_free, 400, "class A");
        CHECK_DELTA(s0, s1, classes[ca].live_blocks, NA - 400, "class A");
        CHECK_DELTA(s0, s1, classes[cb].n_malloc, NB, "class B");
        CHECK_DELTA(s0, s1, classes[cb].n_free, 200, "class B");
        CHECK_DELTA(s0, s1, classes[cb].live_blocks, NB - 200, "class B");
        CHECK_DELTA(s0, s1, classes[cs].n_malloc, NS, "class C");
        CHECK_DELTA(s0, s1, classes[cs].n_free, 20, "class C");
        CHECK_DELTA(s0, s1, classes[cs].live_blocks, NS - 20, "class C");
        for (int c = 0; c < TIDE_N_CLASSES; c++) {
            if (c == ca || c == cb || c == cs) continue;
            CHECKF(s1.classes[c].n_malloc == s0.classes[c].n_malloc && s1.classes[c].n_free == s0.classes[c].n_free,
                   "class %d (%zu bytes), not in the pattern, moved: n_malloc %+lld, n_free %+lld", c,
                   s1.classes[c].block_size, DIFF(s1, s0, classes[c].n_malloc), DIFF(s1, s0, classes[c].n_free));
        }
    }
    long long small_bytes = (long long)((NA - 400) * za + (NB - 200) * zb + (NS - 20) * zs);
    CHECK_DELTA(s0, s1, n_large, NL - 5, when);
    CHECK_DELTA(s0, s1, large_live_bytes, (NL - 5) * zl, when);
    CHECK_DELTA(s0, s1, n_huge, NH - 1, when);
    CHECK_DELTA(s0, s1, huge_bytes, (NH - 1) * zh, when);
    CHECK_DELTA(s0, s1, small_live_bytes, small_bytes, when);
    CHECK_DELTA(s0, s1, live_bytes, small_bytes + (NL - 5) * zl + (NH - 1) * zh, when);
    CHECK_DELTA(s0, s1, n_malloc, NA + NB + NS + NL + NH, when);
    CHECK_DELTA(s0, s1, n_free, 400 + 200 + 20 + 5 + 1, when);
    CHECK_DELTA(s0, s1, live_blocks, (NA + NB + NS + NL + NH) - (400 + 200 + 20 + 5 + 1), when);
    CHECK_DELTA(s0, s1, requested_bytes, NA * SZ_A + NB * SZ_B + NS * SZ_S + NL * SZ_L + NH * SZ_H, when);
    /* 300 + 100 into A's spans, 200 into B's, 10 into C's: nobody collected */
    CHECK_DELTA(s0, s1, pending_remote_frees, 610, when);
    CHECK_DELTA(s0, s1, n_heaps, 3, when);
    CHECK_DELTA(s0, s1, huge_cached_bytes, zh, when);

    /* Per heap: each worker's heap is found by its thread id, once. */
    int tids[3] = { atomic_load(&tid_a), atomic_load(&tid_b), atomic_load(&tid_c) };
    long long want_malloc[3] = { NA, NB, NS }, want_free[3] = { 200, 300, 10 };
    long long want_used[3] = { (long long)(NA * za), (long long)(NB * zb), (long long)((NS - 10) * zs) };
    unsigned ids[3] = { 0, 0, 0 };
    for (int t = 0; t < 3; t++) {
        int found;
        struct tide_heap_stats now = heap_by_tid(&h1, tids[t], &found);
        CHECKF(found == 1, "thread %c (tid %d): %d heaps claim it", "ABC"[t], tids[t], found);
        if (found != 1) continue;
        ids[t] = now.id;
        struct tide_heap_stats was = heap_by_id(&h0, now.id);
        CHECKF(was.tid == 0, "thread %c's heap %u had tid %d before the thread's first malloc", "ABC"[t], now.id,
               was.tid);
        CHECKF((long long)(now.n_malloc - was.n_malloc) == want_malloc[t], "heap of thread %c: n_malloc %+lld, "
               "want %lld", "ABC"[t], (long long)(now.n_malloc - was.n_malloc), want_malloc[t]);
        CHECKF((long long)(now.n_free - was.n_free) == want_free[t], "heap of thread %c: n_free %+lld, want %lld",
               "ABC"[t], (long long)(now.n_free - was.n_free), want_free[t]);
        /* used: blocks out of its spans, remote frees still pending included */
        CHECKF((long long)now.used_bytes - (long long)was.used_bytes == want_used[t],
               "heap of thread %c: used_bytes %+lld, want %lld", "ABC"[t],
               (long long)now.used_bytes - (long long)was.used_bytes, want_used[t]);
        CHECKF(now.n_spans >= 1 && now.n_full_spans <= now.n_spans, "heap of thread %c: %zu spans, %zu full",
               "ABC"[t], now.n_spans, now.n_full_spans);
    }
    {
        int found;
        struct tide_heap_stats now = heap_by_tid(&h1, my_tid(), &found), was;
        was = heap_by_id(&h0, now.id);
        CHECKF(found == 1, "the main thread (tid %d): %d heaps claim it", my_tid(), found);
        CHECKF(now.n_malloc == was.n_malloc && now.n_free - was.n_free == 110, "main heap: n_malloc %+lld "
               "(want 0), n_free %+lld (want 110 small remote frees)", (long long)(now.n_malloc - was.n_malloc),
               (long long)(now.n_free - was.n_free));
    }
    CHECKF(h1.count == s1.n_heaps_total, "tide_stats_heaps returned %zu, n_heaps_total %zu", h1.count,
           s1.n_heaps_total);
    check_heaps_sum(&s0, &h0, "baseline");
    check_heaps_sum(&s1, &h1, when);

    pthread_barrier_wait(&bar4);    /* 5: A and C exit */
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    struct tide_stats s2 = stats_now();
    heaps_now(&h2);
    when = "A and C exited";
    check_consistent(&s2, when);
    CHECK_DELTA(s1, s2, live_blocks, 0, when);
    CHECK_DELTA(s1, s2, live_bytes, 0, when);
    CHECK_DELTA(s1, s2, n_malloc, 0, when);
    CHECK_DELTA(s1, s2, n_free, 0, when);
    /* their spans' remote frees were taken back when they were abandoned */
    CHECK_DELTA(s0, s2, pending_remote_frees, 200, when);
    CHECK_DELTA(s0, s2, n_heaps, 1, when);
    CHECKF(s2.n_abandoned_spans >= s0.n_abandoned_spans + 2, "%s: %zu abandoned spans, baseline %zu (A and C left "
           "live blocks behind)", when, s2.n_abandoned_spans, s0.n_abandoned_spans);
    if (ca >= 0) CHECK_DELTA(s1, s2, classes[ca].live_blocks, 0, when);
    check_heaps_sum(&s2, &h2, when);
    /* A's and C's spans (none empty) went to the abandoned set: their free
     * blocks, and the remote frees taken back on the way, are abandoned
     * bytes now, and no longer cached. */
    {
        struct tide_heap_stats a = heap_by_id(&h1, ids[0]), c = heap_by_id(&h1, ids[2]);
        long long want = (long long)(a.cached_bytes + 400 * za + c.cached_bytes + 10 * zs);
        CHECK_DELTA(s1, s2, abandoned_bytes, want, when);
        CHECK_DELTA(s1, s2, cached_bytes, -(long long)(a.cached_bytes + c.cached_bytes), when);
        CHECK_DELTA(s1, s2, n_spans, -(long long)(a.n_spans + c.n_spans), when);
        CHECK_DELTA(s1, s2, n_abandoned_spans, a.n_spans + c.n_spans, when);
    }
    for (int t = 0; t < 3; t += 2) {
        struct tide_heap_stats a = heap_by_id(&h1, ids[t]), b = heap_by_id(&h2, ids[t]);
        CHECKF(b.tid == 0 && b.n_malloc == a.n_malloc && b.n_free == a.n_free && b.n_spans == 0 && b.used_bytes == 0,
               "%s: heap %u of thread %c: tid %d, n_malloc %+lld, n_free %+lld, %zu spans, %zu used bytes (want "
               "pooled, counters kept, no span)", when, ids[t], "ABC"[t], b.tid,
               (long long)(b.n_malloc - a.n_malloc), (long long)(b.n_free - a.n_free), b.n_spans, b.used_bytes);
    }

    pthread_barrier_wait(&bar2);    /* B exits */
    pthread_join(tb, NULL);
    struct tide_stats s3 = stats_now();
    when = "B exited";
    check_consistent(&s3, when);
    CHECK_DELTA(s0, s3, pending_remote_frees, 0, when);
    CHECK_DELTA(s0, s3, n_heaps, 0, when);
    CHECK_DELTA(s1, s3, live_blocks, 0, when);

    /* The main thread frees the rest: remote frees into abandoned spans,
     * each of which goes back to the page allocator as its last live block
     * is freed, its remote frees taken back on the way. */
    free_range(gA, 400, NA);
    free_range(gB, 200, NB);
    free_range(gS, 20, NS);
    free_range(gL, 5, NL);
    free_range(gH, 1, NH);
    struct tide_stats s4 = stats_now();
    when = "everything freed";
    check_consistent(&s4, when);
    CHECK_DELTA(s0, s4, pending_remote_frees, 0, when);
    CHECK_DELTA(s0, s4, n_abandoned_spans, 0, when);
    CHECK_DELTA(s0, s4, abandoned_bytes, 0, when);
    CHECK_DELTA(s0, s4, live_blocks, 0, when);
    CHECK_DELTA(s0, s4, live_bytes, 0, when);
    CHECK_DELTA(s0, s4, n_malloc, NA + NB + NS + NL + NH, when);
    CHECK_DELTA(s0, s4, n_free, NA + NB + NS + NL + NH, when);
    CHECK_DELTA(s0, s4, huge_cached_bytes, NH * zh, when);

    /* tide_trim returns the huge cache (and would take back the remote
     * frees of abandoned spans and return the empty ones). */
    tide_trim();
    struct tide_stats s5 = stats_now();
    when = "after tide_trim";
    check_consistent(&s5, when);
    CHECKF(s5.pending_remote_frees == 0 && s5.n_abandoned_spans == 0 && s5.abandoned_bytes == 0,
           "%s: %zu pending remote frees, %zu abandoned spans, %zu abandoned bytes", when, s5.pending_remote_frees,
           s5.n_abandoned_spans, s5.abandoned_bytes);
    CHECKF(s5.huge_cached_bytes == 0, "%s: huge cache %zu bytes", when, s5.huge_cached_bytes);
    CHECKF(s5.returned_bytes >= s4.returned_bytes + NH * zh, "%s: returned_bytes %+lld, want >= %zu (the huge "
           "cache)", when, DIFF(s5, s4, returned_bytes), NH * zh);
    CHECKF(s5.mapped_bytes + NH * zh <= s4.mapped_bytes, "%s: mapped_bytes %zu -> %zu", when, s4.mapped_bytes,
           s5.mapped_bytes);
    CHECK_DELTA(s4, s5, live_blocks, 0, when);
    CHECK_DELTA(s4, s5, n_malloc, 0, when);
    /* every free page decommitted: committed is what is in use */
    CHECKF(s5.committed_bytes == s5.mapped_bytes - s5.free_run_bytes, "%s: committed %zu, mapped %zu - free runs "
           "%zu = %zu", when, s5.committed_bytes, s5.mapped_bytes, s5.free_run_bytes,
           s5.mapped_bytes - s5.free_run_bytes);
    pthread_barrier_destroy(&bar4);
    pthread_barrier_destroy(&bar2);
}

/* realloc in place changes sizes, not counts: a large block shrunk, a huge
 * one grown and shrunk (mremap); a move is a malloc and a free. */
static void *volatile gR[3];

static void exact_realloc(void)
{
    TIDE_ONLY();
    own_heap();
    gR[0] = malloc(200000);
    gR[1] = malloc(HUGE_MIN + MiB);
    size_t l0 = malloc_usable_size(gR[0]), h0 = malloc_usable_size(gR[1]);
    struct tide_stats a = stats_now(), b;
    gR[0] = realloc(gR[0], 80000);
    b = stats_now();
    size_t l1 = malloc_usable_size(gR[0]);
    CHECKF(l1 >= 80000 && l1 < l0, "large shrink: usable %zu -> %zu", l0, l1);
    CHECK_DELTA(a, b, n_large, 0, "large shrink");
    CHECK_DELTA(a, b, large_live_bytes, (long long)l1 - (long long)l0, "large shrink");
    CHECK_DELTA(a, b, n_malloc, 0, "large shrink");
    CHECK_DELTA(a, b, n_free, 0, "large shrink");
    a = b;
    gR[1] = realloc(gR[1], 2 * HUGE_MIN);
    b = stats_now();
    size_t h1 = malloc_usable_size(gR[1]);
    CHECK_DELTA(a, b, n_huge, 0, "huge grow");
    CHECK_DELTA(a, b, huge_bytes, (long long)h1 - (long long)h0, "huge grow");
    CHECK_DELTA(a, b, n_malloc, 0, "huge grow");
    a = b;
    gR[1] = realloc(gR[1], 5 * MiB);   /* stays huge: shrunk in place */
    b = stats_now();
    size_t h2 = malloc_usable_size(gR[1]);
    CHECK_DELTA(a, b, huge_bytes, (long long)h2 - (long long)h1, "huge shrink");
    CHECK_DELTA(a, b, n_free, 0, "huge shrink");
    a = b;
    gR[1] = realloc(gR[1], MiB);   /* huge to large: moves */
    b = stats_now();
    size_t l2 = malloc_usable_size(gR[1]);
    CHECK_DELTA(a, b, n_huge, -1, "huge to large");
    CHECK_DELTA(a, b, n_large, 1, "huge to large");
    CHECK_DELTA(a, b, huge_bytes, -(long long)h2, "huge to large");
    CHECK_DELTA(a, b, large_live_bytes, l2, "huge to large");
    CHECK_DELTA(a, b, n_malloc, 1, "huge to large");
    CHECK_DELTA(a, b, n_free, 1, "huge to large");
    CHECK_DELTA(a, b, requested_bytes, MiB, "huge to large");
    check_consistent(&b, "after the reallocs");
    free_range(gR, 0, 2);
}

/* Strings growing through the classes up to 64 KiB, each append a realloc
 * (bench/realloc.c mode=step): the spans of those classes are 18 to 64
 * pages long and leave holes between them that no other class's span
 * fills, so once the chunks are used up a span is cut shorter, from a hole
 * (heap.c new_run), rather than a chunk mapped; cached_bytes counts the
 * blocks such a span really holds, and the figures stay consistent
 * throughout.  Checked every 50000 appends while the strings are live. */
#define NSTR 512
static char *volatile gStr[NSTR];

static void strings_through_the_classes(void)
{
    TIDE_ONLY();
    own_heap();
    static size_t len[NSTR], target[NSTR];
    th_rng r = { 77 };
    for (int i = 0; i < NSTR; i++) {
        gStr[i] = NULL;
        len[i] = 0;
        target[i] = (size_t)1 << th_rand_range(&r, 4, 16);
        target[i] += th_rand(&r) % target[i];
        if (target[i] > 64 * KiB - 1)
            target[i] = 64 * KiB - 1;
    }
    char when[64];
    for (long op = 1; op <= 2000000; op++) {
        int i = (int)(th_rand(&r) % NSTR);
        size_t add = th_rand_range(&r, 1, 32);
        char *p = realloc(gStr[i], len[i] + add + 1);
        if (!p) {
            FAILF("realloc(%zu) failed", len[i] + add + 1);
            return;
        }
        memset(p + len[i], 'a' + i % 26, add + 1);
        len[i] += add;
        gStr[i] = p;
        if (len[i] >= target[i]) {
            free(gStr[i]);
            gStr[i] = NULL;
            len[i] = 0;
        }
        if (op % 50000 == 0) {
            snprintf(when, sizeof when, "after %ld appends", op);
            struct tide_stats st = stats_now();
            check_consistent(&st, when);
            if (th_cur_fails)
                break;
        }
    }
    for (int i = 0; i < NSTR; i++) {
        free(gStr[i]);
        gStr[i] = NULL;
    }
}

/* Allocation and free by a thread whose heap is gone: a pthread key
 * destructor that runs after tide's own (the key is created later, and the
 * thread had a heap, so tide's destructor has given it up) mallocs
 * 50 blocks, frees 10 of them and 5 the main thread gave it.  These go
 * through no thread heap, and must be counted all the same. */
#define ND 50
static void *volatile gD[ND], *volatile gDm[5];
static pthread_key_t late_key;
static pthread_barrier_t bar_d;

static void late_dtor(void *arg)
{
    (void)arg;
    alloc_into(gD, ND, 100);
    free_range(gD, 0, 10);
    free_range(gDm, 0, 5);
}

static void *late_thread(void *arg)
{
    own_heap();                     /* so that tide's key destructor runs first */
    pthread_barrier_wait(&bar_d);   /* started */
    pthread_barrier_wait(&bar_d);   /* go */
    pthread_setspecific(late_key, arg);
    return NULL;
}

static void exact_in_late_destructors(void)
{
    TIDE_ONLY();
    own_heap();
    CHECK(pthread_key_create(&late_key, late_dtor) == 0);
    pthread_barrier_init(&bar_d, NULL, 2);
    alloc_into(gDm, 5, 100);
    pthread_t t = spawn(late_thread, (void *)1);
    pthread_barrier_wait(&bar_d);
    struct tide_stats s0 = stats_now();
    pthread_barrier_wait(&bar_d);
    pthread_join(t, NULL);
    struct tide_stats s1 = stats_now();
    const char *when = "after the destructor";
    check_consistent(&s1, when);
    int c = class_of_size(&s1, 112);
    if (c < 0) { FAILF("no 112-byte class"); return; }
    CHECK_DELTA(s0, s1, classes[c].n_malloc, ND, when);
    CHECK_DELTA(s0, s1, classes[c].n_free, 15, when);
    CHECK_DELTA(s0, s1, classes[c].live_blocks, ND - 15, when);
    CHECK_DELTA(s0, s1, n_malloc, ND, when);
    CHECK_DELTA(s0, s1, n_free, 15, when);
    CHECK_DELTA(s0, s1, live_bytes, (ND - 15) * 112, when);
    CHECK_DELTA(s0, s1, requested_bytes, ND * 100, when);
    CHECK_DELTA(s0, s1, n_heaps, -1, when);   /* the thread's own heap, pooled */
    /* 5 into main's spans, 10 into the spans the backup heap gave up */
    CHECK_DELTA(s0, s1, pending_remote_frees, 15, when);
    free_range(gD, 10, ND);
    struct tide_stats s2 = stats_now();
    CHECK_DELTA(s0, s2, live_blocks, -5, "everything freed");
    pthread_key_delete(late_key);
    pthread_barrier_destroy(&bar_d);
}

/* ---- 2. heaps of live threads ------------------------------------------- */

#define NT 777
static void *volatile gT[NT];
static pthread_barrier_t bar_t;
static atomic_int tid_t;

static void *heap_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&bar_t);   /* started */
    pthread_barrier_wait(&bar_t);   /* go */
    alloc_into(gT, NT, 40);
    for (int i = 0; i < 77; i++) free(gT[i]);   /* 77 local frees */
    atomic_store(&tid_t, my_tid());
    pthread_barrier_wait(&bar_t);   /* reported */
    pthread_barrier_wait(&bar_t);   /* main has looked: exit */
    return NULL;
}

/* tide_stats_heaps: the count of heaps, with or without room for them; a
 * heap per live thread (its kernel tid, found once), whose counters moved
 * by what that thread did; ids unique, in 1..count. */
static void heaps_of_live_threads(void)
{
    TIDE_ONLY();
    static heaps_t before, after, part;
    own_heap();
    pthread_barrier_init(&bar_t, NULL, 2);
    pthread_t t = spawn(heap_thread, NULL);
    pthread_barrier_wait(&bar_t);
    heaps_now(&before);
    pthread_barrier_wait(&bar_t);
    pthread_barrier_wait(&bar_t);
    heaps_now(&after);
    struct tide_stats s = stats_now();
    size_t n_null = tide_stats_heaps(NULL, 0);
    memset(part.h, 0xa5, sizeof part.h);
    size_t n_one = tide_stats_heaps(part.h, 1);
    unsigned char sentinel[sizeof part.h[1]];
    memset(sentinel, 0xa5, sizeof sentinel);

    CHECKF(after.count == s.n_heaps_total && n_null == after.count && n_one == after.count,
           "tide_stats_heaps returned %zu (NULL, 0: %zu; room for 1: %zu), n_heaps_total %zu", after.count, n_null,
           n_one, s.n_heaps_total);
    CHECK(memcmp(&part.h[1], sentinel, sizeof sentinel) == 0);   /* max is respected */
    CHECKF(after.count >= 2, "%zu heaps with two threads allocating", after.count);
    size_t live = 0;
    for (size_t i = 0; i < after.n; i++) {
        const struct tide_heap_stats *e = &after.h[i];
        CHECKF(e->id >= 1 && e->id <= after.count, "heap id %u outside 1..%zu", e->id, after.count);
        for (size_t j = 0; j < i; j++)
            CHECKF(after.h[j].id != e->id, "heap id %u listed twice", e->id);
        if (e->tid != 0) live++;
        CHECKF(e->n_full_spans <= e->n_spans, "heap %u: %zu full spans of %zu", e->id, e->n_full_spans, e->n_spans);
        if (e->tid == 0)
            CHECKF(e->n_spans == 0 && e->used_bytes == 0 && e->cached_bytes == 0, "pooled heap %u: %zu spans, %zu "
                   "used, %zu cached bytes", e->id, e->n_spans, e->used_bytes, e->cached_bytes);
    }
    CHECKF(live == s.n_heaps, "%zu heaps have a tid, n_heaps %zu", live, s.n_heaps);
    int found;
    struct tide_heap_stats th = heap_by_tid(&after, atomic_load(&tid_t), &found);
    CHECKF(found == 1, "the thread's tid %d: %d heaps claim it", atomic_load(&tid_t), found);
    struct tide_heap_stats was = heap_by_id(&before, th.id);
    CHECKF(th.n_malloc - was.n_malloc == NT && th.n_free - was.n_free == 77,
           "the thread's heap %u: n_malloc %+lld (want %d), n_free %+lld (want 77)", th.id,
           (long long)(th.n_malloc - was.n_malloc), NT, (long long)(th.n_free - was.n_free));
    CHECKF(th.used_bytes - was.used_bytes == (NT - 77) * malloc_usable_size(gT[NT - 1]),
           "the thread's heap: used_bytes %+lld, want %zu", (long long)(th.used_bytes - was.used_bytes),
           (NT - 77) * malloc_usable_size(gT[NT - 1]));
    CHECKF(th.cached_bytes > 0 && th.n_spans >= 1, "the thread's heap: %zu cached bytes in %zu spans",
           th.cached_bytes, th.n_spans);
    heap_by_tid(&after, my_tid(), &found);
    CHECKF(found == 1, "the main thread (tid %d): %d heaps claim it", my_tid(), found);
    pthread_barrier_wait(&bar_t);
    pthread_join(t, NULL);
    /* After the thread's exit its heap is pooled: no tid, counters kept. */
    heaps_now(&after);
    struct tide_heap_stats gone = heap_by_id(&after, th.id);
    CHECKF(gone.tid == 0 && gone.n_malloc == th.n_malloc, "after exit, heap %u: tid %d, n_malloc %lu (was %lu)",
           th.id, gone.tid, (unsigned long)gone.n_malloc, (unsigned long)th.n_malloc);
    for (int i = 77; i < NT; i++) free(gT[i]);
    pthread_barrier_destroy(&bar_t);
}

/* ---- 3. the heap walk ----------------------------------------------------- */

#define MAX_SEEN ((size_t)1 << 20)
static struct tide_block *seen;     /* mmap'ed: what the walk reported */
static size_t n_seen;

static void record_block(const struct tide_block *b, void *arg)
{
    (void)arg;
    if (n_seen < MAX_SEEN) seen[n_seen] = *b;
    n_seen++;
}

static void sort_blocks(struct tide_block *a, size_t n)
{
    static const size_t gaps[] = { 10601, 4711, 1750, 701, 301, 132, 57, 23, 10, 4, 1 };
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            struct tide_block v = a[i];
            size_t j = i;
            for (; j >= gap && (uintptr_t)a[j - gap].ptr > (uintptr_t)v.ptr; j -= gap) a[j] = a[j - gap];
            a[j] = v;
        }
    }
}

/* The walk's blocks against the figures and a known set: `live` must each
 * be visited once with their usable size, a class that fits, and owner heap
 * id `heap_of(p)`; `dead` never.  Blocks do not overlap and add up to the
 * live figures, per class. */
#define NW 700
#define NM 400
static void *volatile gW[NW];       /* the walk thread's: malloc(100) */
static void *volatile gW2[20];      /* the walk thread's: malloc(20000) */
static void *volatile gM[NM];       /* main's: malloc(24) */
static void *volatile gM2[30];      /* main's: malloc(5000) */
static void *volatile gZ[5];        /* main's: malloc(0) */
static void *volatile gBig[8];      /* large and huge */
static pthread_barrier_t bar_w;
static atomic_int tid_w;

static void *walk_thread(void *arg)
{
    (void)arg;
    atomic_store(&tid_w, my_tid());
    pthread_barrier_wait(&bar_w);   /* started */
    pthread_barrier_wait(&bar_w);   /* go */
    alloc_into(gW, NW, 100);
    alloc_into(gW2, 20, 20000);
    pthread_barrier_wait(&bar_w);   /* allocated */
    free_range(gM, 0, 100);         /* remote frees into main's spans */
    free_range(gW2, 0, 5);          /* its own */
    pthread_barrier_wait(&bar_w);   /* freed */
    pthread_barrier_wait(&bar_w);   /* main walked: exit */
    return NULL;
}

typedef struct {
    uintptr_t live[NW + 20 + NM + 30 + 5 + 8];
    size_t n_live;
    uintptr_t dead[NW + 20 + NM + 30 + 5 + 8];
    size_t n_dead;
} known_t;

static void known_add(known_t *k, void *volatile *tab, int n)
{
    for (int i = 0; i < n; i++) {
        if (tab[i]) k->live[k->n_live++] = (uintptr_t)tab[i];
    }
}

static void check_walk(const known_t *k, const char *when, unsigned main_heap, unsigned walker_heap,
                       bool walker_alive)
{
    struct tide_stats s = stats_now();
    n_seen = 0;
    long r = tide_heap_walk(record_block, NULL);
    CHECKF(r >= 0 && (size_t)r == n_seen, "%s: tide_heap_walk returned %ld after %zu callbacks", when, r, n_seen);
    if (n_seen > MAX_SEEN) { FAILF("%s: %zu blocks: more than the test's table", when, n_seen); return; }
    CHECKF(n_seen == s.live_blocks, "%s: walk visited %zu blocks, live_blocks %zu", when, n_seen, s.live_blocks);
    sort_blocks(seen, n_seen);
    size_t per_class[TIDE_N_CLASSES] = { 0 }, n_large = 0, n_huge = 0, large_bytes = 0, huge_bytes = 0;
    size_t found = 0;
    int bad = 0;
    for (size_t i = 0; i < n_seen && bad < 5; i++) {
        const struct tide_block *b = &seen[i];
        if (i + 1 < n_seen && (uintptr_t)b->ptr + b->size > (uintptr_t)seen[i + 1].ptr) {
            FAILF("%s: blocks %p (%zu bytes) and %p overlap (or repeat)", when, b->ptr, b->size, seen[i + 1].ptr);
            bad++;
        }
        if (b->size_class >= 0 && b->size_class < TIDE_N_CLASSES) {
            CHECKF(s.classes[b->size_class].block_size == b->size, "%s: block %p: class %d but %zu bytes", when,
                   b->ptr, b->size_class, b->size);
            per_class[b->size_class]++;
        } else if (b->size_class == TIDE_CLASS_LARGE) {
            n_large++;
            large_bytes += b->size;
            CHECKF(b->heap == 0, "%s: large block %p has heap %u", when, b->ptr, b->heap);
        } else if (b->size_class == TIDE_CLASS_HUGE) {
            n_huge++;
            huge_bytes += b->size;
            CHECKF(b->heap == 0, "%s: huge block %p has heap %u", when, b->ptr, b->heap);
        } else {
            FAILF("%s: block %p: size_class %d", when, b->ptr, b->size_class);
            bad++;
        }
        /* the lookup agrees with the walk, block for block */
        struct tide_block_info bi;
        int st = tide_block_info((char *)b->ptr + b->size - 1, &bi);
        if (st != TIDE_BLOCK_LIVE || bi.block.ptr != b->ptr || bi.block.size != b->size ||
            bi.block.size_class != b->size_class || bi.block.heap != b->heap) {
            FAILF("%s: walked block %p (%zu bytes, class %d, heap %u): tide_block_info of its last byte says state "
                  "%d, %p, %zu bytes, class %d, heap %u", when, b->ptr, b->size, b->size_class, b->heap, st,
                  bi.block.ptr, bi.block.size, bi.block.size_class, bi.block.heap);
            bad++;
        }
        if (uptr_find(k->live, k->n_live, (uintptr_t)b->ptr)) {
            found++;
            void *p = b->ptr;
            CHECKF(b->size == malloc_usable_size(p), "%s: block %p: walk says %zu bytes, malloc_usable_size %zu",
                   when, p, b->size, malloc_usable_size(p));
            bool is_main = false, is_walker = false;
            for (int j = 0; j < NM && !is_main; j++) is_main = gM[j] == p;
            for (int j = 0; j < 30 && !is_main; j++) is_main = gM2[j] == p;
            for (int j = 0; j < 5 && !is_main; j++) is_main = gZ[j] == p;
            for (int j = 0; j < NW && !is_walker; j++) is_walker = gW[j] == p;
            for (int j = 0; j < 20 && !is_walker; j++) is_walker = gW2[j] == p;
            if (is_main) CHECKF(b->heap == main_heap, "%s: main's block %p: heap %u, want %u", when, p, b->heap,
                                main_heap);
            if (is_walker) CHECKF(b->heap == (walker_alive ? walker_heap : 0), "%s: the thread's block %p: heap "
                                  "%u, want %u", when, p, b->heap, walker_alive ? walker_heap : 0);
            bool want_big = false;
            for (int j = 0; j < 8; j++) want_big |= gBig[j] == p;
            if (want_big)
                CHECKF(b->size > CHUNK_BYTES ? b->size_class == TIDE_CLASS_HUGE
                       : b->size <= 4 * MiB ? b->size_class == TIDE_CLASS_LARGE
                       : b->size_class == TIDE_CLASS_HUGE || b->size_class == TIDE_CLASS_LARGE,
                       "%s: big block %p of %zu bytes: class %d", when, p, b->size, b->size_class);
            else
                CHECKF(b->size_class >= 0, "%s: small block %p: class %d", when, p, b->size_class);
        }
        if (uptr_find(k->dead, k->n_dead, (uintptr_t)b->ptr)) {
            FAILF("%s: freed block %p visited", when, b->ptr);
            bad++;
        }
    }
    CHECKF(found == k->n_live, "%s: %zu of the %zu known live blocks visited", when, found, k->n_live);
    size_t small_bytes = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        CHECKF(per_class[c] == s.classes[c].live_blocks, "%s: class %d (%zu bytes): walk saw %zu blocks, "
               "live_blocks %zu", when, c, s.classes[c].block_size, per_class[c], s.classes[c].live_blocks);
        small_bytes += per_class[c] * s.classes[c].block_size;
    }
    CHECKF(small_bytes == s.small_live_bytes && n_large == s.n_large && large_bytes == s.large_live_bytes &&
           n_huge == s.n_huge && huge_bytes == s.huge_bytes, "%s: walk saw small %zu bytes, %zu large (%zu bytes), "
           "%zu huge (%zu bytes); stats: %zu, %zu (%zu), %zu (%zu)", when, small_bytes, n_large, large_bytes,
           n_huge, huge_bytes, s.small_live_bytes, s.n_large, s.large_live_bytes, s.n_huge, s.huge_bytes);
}

/* The walk visits exactly the live blocks, while another thread is parked
 * with blocks of its own and remote frees pending in both directions (on
 * the remote lists and its notify list), and again after it exited (its
 * spans abandoned); a freed block is never visited. */
static void heap_walk_visits_live_blocks(void)
{
    TIDE_ONLY();
    static known_t k;
    memset(&k, 0, sizeof k);
    seen = mmap(NULL, MAX_SEEN * sizeof *seen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (seen == MAP_FAILED) { FAILF("mmap failed"); return; }
    pthread_barrier_init(&bar_w, NULL, 2);
    pthread_t t = spawn(walk_thread, NULL);
    pthread_barrier_wait(&bar_w);
    alloc_into(gM, NM, 24);
    alloc_into(gM2, 30, 5000);
    alloc_into(gZ, 5, 0);
    gBig[0] = malloc(100000);
    gBig[1] = malloc(300000);
    gBig[2] = malloc(70000);
    gBig[3] = aligned_alloc(64 * KiB, 1000);   /* a large block of one page */
    gBig[4] = malloc(5 * MiB);
    gBig[5] = malloc(9 * MiB);
    gBig[6] = malloc(200000);
    gBig[7] = malloc(6 * MiB);
    pthread_barrier_wait(&bar_w);   /* go */
    pthread_barrier_wait(&bar_w);   /* allocated */
    /* freed by main: its own, and the thread's (remote) */
    uintptr_t dead[200];
    size_t nd = 0;
    for (int i = 100; i < 150; i++) { dead[nd++] = (uintptr_t)gM[i]; free(gM[i]); gM[i] = NULL; }
    for (int i = 0; i < 300; i += 3) { dead[nd++] = (uintptr_t)gW[i]; free(gW[i]); gW[i] = NULL; }
    dead[nd++] = (uintptr_t)gBig[6]; free(gBig[6]); gBig[6] = NULL;
    dead[nd++] = (uintptr_t)gBig[7]; free(gBig[7]); gBig[7] = NULL;
    pthread_barrier_wait(&bar_w);   /* the thread's frees done too */
    for (size_t i = 0; i < nd; i++) k.dead[k.n_dead++] = dead[i];
    /* gM[0..99] and gW2[0..4] were freed by the thread; NULL now */
    known_add(&k, gW, NW);
    known_add(&k, gW2, 20);
    known_add(&k, gM, NM);
    known_add(&k, gM2, 30);
    known_add(&k, gZ, 5);
    known_add(&k, gBig, 8);
    CHECKF(k.n_live == (NW - 100) + 15 + (NM - 150) + 30 + 5 + 6, "%zu known live blocks", k.n_live);
    sort_uptr(k.live, k.n_live);
    sort_uptr(k.dead, k.n_dead);

    static heaps_t hs;
    heaps_now(&hs);
    int f1, f2;
    unsigned main_heap = heap_by_tid(&hs, my_tid(), &f1).id;
    unsigned walker_heap = heap_by_tid(&hs, atomic_load(&tid_w), &f2).id;
    CHECKF(f1 == 1 && f2 == 1, "heaps of main and of the thread found %d and %d times", f1, f2);

    check_walk(&k, "thread parked", main_heap, walker_heap, true);
    pthread_barrier_wait(&bar_w);
    pthread_join(t, NULL);
    check_walk(&k, "thread exited", main_heap, walker_heap, false);

    free_range(gW, 0, NW);
    free_range(gW2, 0, 20);
    free_range(gM, 0, NM);
    free_range(gM2, 0, 30);
    free_range(gZ, 0, 5);
    free_range(gBig, 0, 8);
    pthread_barrier_destroy(&bar_w);
}

/* A callback that allocates and frees (a ring of blocks), reads the figures
 * and looks the block up: the walk holds no lock while it calls back, and
 * blocks allocated meanwhile are not visited.  The first call also walks
 * the heap again, from inside the walk. */
#define RING 16
static void *volatile ring[RING];
static size_t n_calls, n_nested, n_lookup_errors;

static void count_block(const struct tide_block *b, void *arg)
{
    (void)b;
    (void)arg;
    n_nested++;
}

static void busy_callback(const struct tide_block *b, void *arg)
{
    (void)arg;
    size_t i = n_calls++;
    free(ring[i % RING]);
    ring[i % RING] = malloc(16 + (i * 37) % 3000);
    if (i % 50 == 0) {
        struct tide_stats s;
        tide_stats_get(&s);
        void *big = malloc(i % 100 ? 200000 : 5 * MiB);
        free(big);
    }
    struct tide_block_info bi;
    if (tide_block_info(b->ptr, &bi) != TIDE_BLOCK_LIVE || bi.block.ptr != b->ptr)
        n_lookup_errors++;
    if (i == 0) tide_heap_walk(count_block, NULL);
}

static void heap_walk_callback_allocates(void)
{
    TIDE_ONLY();
    static void *volatile keep[500];
    alloc_into(keep, 500, 200);
    struct tide_stats s = stats_now();
    n_calls = n_nested = n_lookup_errors = 0;
    long r = tide_heap_walk(busy_callback, NULL);
    CHECKF(r >= 0 && (size_t)r == n_calls, "tide_heap_walk returned %ld after %zu callbacks", r, n_calls);
    CHECKF(n_calls == s.live_blocks, "the walk visited %zu blocks, %zu were live when it started (the callback's "
           "own blocks must not be visited)", n_calls, s.live_blocks);
    CHECKF(n_nested >= n_calls, "the nested walk visited %zu blocks, the outer %zu", n_nested, n_calls);
    CHECKF(n_lookup_errors == 0, "%zu visited blocks were not live for tide_block_info", n_lookup_errors);
    free_range(ring, 0, RING);
    free_range(keep, 0, 500);
    struct tide_stats e = stats_now();
    CHECK_DELTA(s, e, live_blocks, -500, "after the walk, everything freed");
}

/* ---- 4. tide_block_info ---------------------------------------------------- */

static char static_buf[4096];

static void expect_info(const void *p, int want_state, const void *base, size_t size, int cls, const char *what)
{
    struct tide_block_info bi;
    memset(&bi, 0x5a, sizeof bi);
    int r = tide_block_info(p, &bi);
    CHECKF(r == want_state && (int)bi.state == r, "%s (%p): state %d (returned %d), want %d", what, p, (int)bi.state,
           r, want_state);
    if (want_state == TIDE_BLOCK_NOT_TIDE || r != want_state) return;
    if (base)
        CHECKF(bi.block.ptr == base && bi.block.size == size, "%s (%p): block %p of %zu bytes, want %p of %zu", what,
               p, bi.block.ptr, bi.block.size, base, size);
    else
        CHECKF((uintptr_t)bi.block.ptr <= (uintptr_t)p && (uintptr_t)p < (uintptr_t)bi.block.ptr + bi.block.size,
               "%s (%p): block %p of %zu bytes does not contain it", what, p, bi.block.ptr, bi.block.size);
    CHECKF(bi.block.size_class == cls || (cls == 99 && bi.block.size_class >= 0), "%s (%p): class %d, want %d", what,
           p, bi.block.size_class, cls);
}

static void *volatile remote_target;
static void *remote_free_thread(void *arg)
{
    (void)arg;
    free(remote_target);
    return NULL;
}

static void *volatile other_live, *volatile other_freed;
static pthread_barrier_t bar_i;
static void *owner_thread(void *arg)
{
    (void)arg;
    other_live = malloc(100);
    other_freed = malloc(100);
    free(other_freed);              /* freed by its owner, which stays alive */
    pthread_barrier_wait(&bar_i);
    pthread_barrier_wait(&bar_i);
    free(other_live);
    return NULL;
}

/* What an address is: a live block (start, interior, last byte; small,
 * large, huge), a freed block (by its owner, by another thread), free pages
 * (a freed large block's run, a cached huge mapping), or not tide's (stack,
 * static data, NULL, beyond the address space).  info may be NULL. */
static void block_info_addresses(void)
{
    TIDE_ONLY();
    static void *volatile p[8];
    struct tide_stats s = stats_now();
    int c112 = class_of_size(&s, 112);
    p[0] = malloc(100);
    p[1] = malloc(100000);
    p[2] = malloc(HUGE_MIN + MiB);
    p[3] = malloc(200000);          /* freed: a free run */
    p[4] = malloc(200000);          /* keeps the chunk busy */
    p[5] = malloc(HUGE_MIN + 2 * MiB); /* freed: a cached huge mapping */
    p[6] = malloc(100);             /* freed by its owner (main) */
    size_t z1 = malloc_usable_size(p[1]), z2 = malloc_usable_size(p[2]);
    expect_info(p[0], TIDE_BLOCK_LIVE, p[0], 112, c112, "small block start");
    expect_info((char *)p[0] + 57, TIDE_BLOCK_LIVE, p[0], 112, c112, "small block interior");
    expect_info((char *)p[0] + 111, TIDE_BLOCK_LIVE, p[0], 112, c112, "small block last byte");
    expect_info(p[1], TIDE_BLOCK_LIVE, p[1], z1, TIDE_CLASS_LARGE, "large block start");
    expect_info((char *)p[1] + 70000, TIDE_BLOCK_LIVE, p[1], z1, TIDE_CLASS_LARGE, "large block interior");
    expect_info((char *)p[1] + z1 - 1, TIDE_BLOCK_LIVE, p[1], z1, TIDE_CLASS_LARGE, "large block last byte");
    expect_info(p[2], TIDE_BLOCK_LIVE, p[2], z2, TIDE_CLASS_HUGE, "huge block start");
    expect_info((char *)p[2] + 3 * MiB + 5, TIDE_BLOCK_LIVE, p[2], z2, TIDE_CLASS_HUGE, "huge block interior");
    expect_info((char *)p[2] + z2 - 1, TIDE_BLOCK_LIVE, p[2], z2, TIDE_CLASS_HUGE, "huge block last byte");
    CHECKF(tide_block_info((char *)p[0] + 3, NULL) == TIDE_BLOCK_LIVE, "info = NULL: not LIVE");
    CHECKF(tide_block_info(p[2], NULL) == TIDE_BLOCK_LIVE, "info = NULL, huge: not LIVE");
    struct tide_block_info bi;
    tide_block_info(p[0], &bi);
    int f;
    static heaps_t hs;
    heaps_now(&hs);
    CHECKF(bi.block.heap == heap_by_tid(&hs, my_tid(), &f).id, "main's block: heap %u", bi.block.heap);

    /* freed */
    void *q = p[6];
    free(p[6]);
    expect_info(q, TIDE_BLOCK_FREE, q, 112, c112, "small block freed by its owner");
    expect_info((char *)q + 50, TIDE_BLOCK_FREE, q, 112, c112, "interior of a freed small block");
    void *r3 = p[3];
    free(p[3]);
    expect_info((char *)r3 + 100000, TIDE_BLOCK_FREE, NULL, 0, TIDE_CLASS_LARGE, "inside a free page run");
    expect_info(r3, TIDE_BLOCK_FREE, NULL, 0, TIDE_CLASS_LARGE, "first page of a free page run");
    void *r5 = p[5];
    free(p[5]);
    expect_info((char *)r5 + MiB + 3, TIDE_BLOCK_FREE, NULL, 0, TIDE_CLASS_HUGE, "inside a cached huge mapping");
    CHECKF(tide_block_info((char *)r3 + 100000, NULL) == TIDE_BLOCK_FREE, "free run, info = NULL: not FREE");

    /* freed by another thread, looked up by the owner (main) */
    remote_target = malloc(100);
    void *rt = remote_target;
    pthread_t t = spawn(remote_free_thread, NULL);
    pthread_join(t, NULL);
    expect_info(rt, TIDE_BLOCK_FREE, rt, 112, c112, "main's block freed by another thread (pending)");
    /* blocks of a live thread, looked up by main */
    pthread_barrier_init(&bar_i, NULL, 2);
    t = spawn(owner_thread, NULL);
    pthread_barrier_wait(&bar_i);
    expect_info(other_live, TIDE_BLOCK_LIVE, other_live, 112, c112, "another thread's live block");
    expect_info(other_freed, TIDE_BLOCK_FREE, other_freed, 112, c112, "another thread's freed block");
    pthread_barrier_wait(&bar_i);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&bar_i);

    /* never handed out: the blocks after the first of a fresh span */
    void *volatile fresh_blk = malloc(50000);
    size_t zf = malloc_usable_size(fresh_blk);
    expect_info((char *)fresh_blk + zf + 10, TIDE_BLOCK_FREE, (char *)fresh_blk + zf, zf, 99,
                "the never-used block after a fresh span's first");
    free(fresh_blk);

    /* the last byte of each block of a span of 53248-byte blocks (the
     * block index is computed with a reciprocal: near a span's end it
     * rounds up into the next block) */
    static void *volatile wide[8];
    alloc_into(wide, 8, 50000);
    size_t zw = malloc_usable_size(wide[0]);
    for (int i = 0; i < 8; i++) {
        char what[64];
        snprintf(what, sizeof what, "last byte of %zu-byte block %d", zw, i);
        expect_info((char *)wide[i] + zw - 1, TIDE_BLOCK_LIVE, wide[i], zw, 99, what);
        snprintf(what, sizeof what, "first byte of %zu-byte block %d", zw, i);
        expect_info(wide[i], TIDE_BLOCK_LIVE, wide[i], zw, 99, what);
    }
    free_range(wide, 0, 8);

    /* not tide's */
    char on_stack[64];
    __asm__ volatile("" : : "r"(on_stack) : "memory");
    expect_info(on_stack, TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "stack");
    expect_info(static_buf + 100, TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "static data");
    expect_info((void *)&block_info_addresses, TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "code");
    expect_info(NULL, TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "NULL");
    expect_info((void *)(uintptr_t)-4096, TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "the top of the address space");
    expect_info((void *)((uintptr_t)1 << 50), TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "beyond 47 bits");
    void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect_info((char *)m + 100, TIDE_BLOCK_NOT_TIDE, NULL, 0, 0, "a mapping of the program's own");
    munmap(m, 65536);
    CHECKF(tide_block_info(on_stack, NULL) == TIDE_BLOCK_NOT_TIDE, "stack, info = NULL");
    free(p[0]);
    free(p[1]);
    free(p[2]);
    free(p[4]);
}

/* tide_block_info from four threads on blocks that a fifth thread has just
 * freed, while whole chunks of spans empty out and are unmapped: the call
 * must not touch memory tide no longer maps (it reads a freed block's key
 * word).  In a child, so that a crash is a FAIL line.  Bounded by a count
 * of rounds; a crash, when there is one, comes within a second or two. */
#define NQ 300000                   /* 112-byte blocks: about 4 chunks of spans */
#ifdef TH_REDIRECT
#define Q_ROUNDS 5                  /* TSan: every access costs ~10x; the race report is the finding */
#else
#define Q_ROUNDS 100
#endif
#define PROBERS 4
static _Atomic(void *) gQ[NQ];
static atomic_long q_cursor;
static atomic_int q_done;

static void *q_churn(void *arg)
{
    (void)arg;
    for (int round = 0; round < Q_ROUNDS; round++) {
        for (long i = 0; i < NQ; i++) atomic_store_explicit(&gQ[i], malloc(100), memory_order_relaxed);
        atomic_store(&q_cursor, 0);
        for (long i = 0; i < NQ; i++) {
            atomic_store_explicit(&q_cursor, i, memory_order_relaxed);
            free(atomic_load_explicit(&gQ[i], memory_order_relaxed));
        }
        atomic_store(&q_cursor, -1);
    }
    atomic_store(&q_done, 1);
    return NULL;
}

static void *q_probe(void *arg)
{
    (void)arg;
    while (!atomic_load(&q_done)) {
        long c = atomic_load_explicit(&q_cursor, memory_order_relaxed);
        for (long k = c; k > c - 64 && k >= 0; k--) {   /* just freed: their spans are being retired */
            struct tide_block_info bi;
            tide_block_info(atomic_load_explicit(&gQ[k], memory_order_relaxed), &bi);
        }
    }
    return NULL;
}

static void block_info_run(void)
{
    atomic_store(&q_cursor, -1);
    atomic_store(&q_done, 0);
    pthread_t t = spawn(q_churn, NULL), p[PROBERS];
    for (int i = 0; i < PROBERS; i++) p[i] = spawn(q_probe, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < PROBERS; i++) pthread_join(p[i], NULL);
}

static void block_info_child(void *arg)
{
    (void)arg;
    block_info_run();
    _exit(0);
}

static void block_info_while_spans_are_freed(void)
{
    TIDE_ONLY();
#ifdef TH_REDIRECT
    /* TSan does not start threads in the child of a multi-threaded process;
     * here the race itself is the finding. */
    block_info_run();
#else
    char sb[64];
    int st = th_in_child(block_info_child, NULL, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", th_status_str(st, sb, sizeof sb));
#endif
}

/* ---- 5. printing ---------------------------------------------------------- */

static char text[1 << 20];

static void print_text_fn(int fd, void *arg)
{
    int *rc = arg;
    *rc = tide_stats_print(fd, 0);
}

static void print_json_fn(int fd, void *arg)
{
    int *rc = arg;
    *rc = tide_stats_print(fd, 1);
}

/* The text report: the header with the pid, the live line matching
 * tide_stats_get, and the histogram `SIZE bytes * COUNT blocks (P %) =
 * BYTES bytes (P %)`, largest first, one line per size, adding up to the
 * live figures, with the known pattern's lines (112-byte blocks, 102400-byte
 * large and 5 MiB huge blocks), and the main thread's heap line. */
static void *volatile gP[1000], *volatile gPL[3], *volatile gPH[2];

static void print_text_report(void)
{
    TIDE_ONLY();
    alloc_into(gP, 1000, 100);
    alloc_into(gPL, 3, 100000);
    tide_trim();  /* no cached range a little longer than HUGE_MIN, which a block would take whole */
    alloc_into(gPH, 2, HUGE_MIN);
    struct tide_stats s = stats_now();
    int rc = 1;
    long n = capture(print_text_fn, &rc, text, sizeof text);
    CHECKF(n > 0 && rc == 0, "tide_stats_print(fd, 0) returned %d, wrote %ld bytes", rc, n);
    if (n <= 0) return;
    char want[128];
    snprintf(want, sizeof want, "heap report, pid %d", (int)getpid());
    CHECKF(strncmp(text, "tide ", 5) == 0 && strstr(text, want) && strchr(text, '\n') > strstr(text, want),
           "first line is not \"tide ... %s\": %.100s", want, text);
    size_t lb, lbl;
    const char *live = strstr(text, "\n  live:");
    CHECKF(live && sscanf(live, "\n  live: %zu bytes in %zu blocks", &lb, &lbl) == 2 && lb == s.live_bytes &&
           lbl == s.live_blocks, "live line: %.120s (want %zu bytes in %zu blocks)", live ? live : "(none)",
           s.live_bytes, s.live_blocks);
    const char *h = strstr(text, "largest first:\n");
    if (!h) { FAILF("no histogram header in: %.300s", text); return; }
    h = strchr(h, '\n') + 1;
    size_t sum_count = 0, sum_bytes = 0, prev_bytes = SIZE_MAX, n_lines = 0;
    size_t sizes[512];
    bool saw112 = false, saw_large = false, saw_huge = false;
    int c112 = class_of_size(&s, 112);
    size_t large_like = 0;
    for (int i = 0; i < 3; i++) large_like += malloc_usable_size(gPL[i]) == 102400;
    while (strncmp(h, "    ", 4) == 0 && h[4] >= '0' && h[4] <= '9') {
        size_t size, count, bytes;
        double pc_blocks, pc_bytes;
        int used = 0;
        if (sscanf(h, "    %zu bytes * %zu blocks (%lf %%) = %zu bytes (%lf %%)%n", &size, &count, &pc_blocks,
                   &bytes, &pc_bytes, &used) != 5 || used == 0 || h[used] != '\n') {
            FAILF("histogram line not in the form `SIZE bytes * COUNT blocks (P %%) = BYTES bytes (P %%)`: %.100s", h);
            return;
        }
        CHECKF(bytes == size * count, "histogram: %zu * %zu != %zu", size, count, bytes);
        CHECKF(bytes <= prev_bytes, "histogram not largest first: %zu bytes after %zu", bytes, prev_bytes);
        CHECKF(count > 0, "histogram line with no block: %.60s", h);
        double want_pb = 100.0 * (double)count / (double)s.live_blocks;
        double want_py = 100.0 * (double)bytes / (double)s.live_bytes;
        CHECKF(pc_blocks > want_pb - 0.051 && pc_blocks < want_pb + 0.051 && pc_bytes > want_py - 0.051 &&
               pc_bytes < want_py + 0.051, "histogram line %zu bytes: %.1f %% of blocks (want %.2f), %.1f %% of "
               "bytes (want %.2f)", size, pc_blocks, want_pb, pc_bytes, want_py);
        for (size_t j = 0; j < n_lines && j < 512; j++)
            CHECKF(sizes[j] != size, "histogram: two lines for %zu-byte blocks", size);
        if (n_lines < 512) sizes[n_lines] = size;
        n_lines++;
        prev_bytes = bytes;
        sum_count += count;
        sum_bytes += bytes;
        if (size == 112) {
            saw112 = true;
            CHECKF(c112 >= 0 && count == s.classes[c112].live_blocks && count >= 1000, "112-byte line: %zu blocks, "
                   "live_blocks of the class %zu (1000 allocated)", count, c112 >= 0 ? s.classes[c112].live_blocks : 0);
        }
        if (size == 102400) { saw_large = true; CHECKF(count >= large_like, "102400-byte line: %zu blocks", count); }
        if (size == HUGE_MIN) { saw_huge = true; CHECKF(count >= 2, "9 MiB line: %zu blocks", count); }
        h = strchr(h, '\n') + 1;
    }
    CHECKF(n_lines > 0 && saw112 && saw_large && saw_huge, "histogram (%zu lines) lacks the pattern's lines: 112 "
           "%d, 102400 %d, 9 MiB %d", n_lines, saw112, saw_large, saw_huge);
    CHECKF(sum_count == s.live_blocks && sum_bytes == s.live_bytes, "histogram adds up to %zu blocks, %zu bytes; "
           "live %zu blocks, %zu bytes", sum_count, sum_bytes, s.live_blocks, s.live_bytes);
    char heap_line[64];
    snprintf(heap_line, sizeof heap_line, "thread %d: ", my_tid());
    CHECKF(strncmp(h, "  thread heaps:\n", 16) == 0 && strstr(h, heap_line), "no `thread heaps:` section with %s after the "
           "histogram: %.200s", heap_line, h);
}

/* The JSON report, checked here for its shape and its figures (json.load
 * in stats.sh checks that it parses): every field of struct tide_stats as
 * "key": number with tide_stats_get's value, 81 classes, a histogram whose
 * bytes add up, the main thread's heap. */
static void print_json_report(void)
{
    TIDE_ONLY();
    struct tide_stats s = stats_now();
    int rc = 1;
    long n = capture(print_json_fn, &rc, text, sizeof text);
    CHECKF(n > 0 && rc == 0, "tide_stats_print(fd, 1) returned %d, wrote %ld bytes", rc, n);
    if (n <= 0) return;
    CHECKF(text[0] == '{' && n >= 3 && strcmp(text + n - 2, "}\n") == 0, "not one object ending in a newline: "
           "%.40s ... %s", text, text + (n > 20 ? n - 20 : 0));
    int depth = 0, max_depth = 0;
    bool in_str = false;
    for (long i = 0; i < n; i++) {
        char c = text[i];
        if (in_str) { if (c == '\\') i++; else if (c == '"') in_str = false; continue; }
        if (c == '"') in_str = true;
        else if (c == '{' || c == '[') { depth++; if (depth > max_depth) max_depth = depth; }
        else if (c == '}' || c == ']') { depth--; CHECKF(depth >= 0, "JSON closes more than it opens at %ld", i); }
    }
    CHECKF(depth == 0 && !in_str && max_depth == 3, "JSON brackets: depth %d at the end, max %d", depth, max_depth);
#define FIELD(f) { #f, &s.f }
    struct { const char *name; const size_t *v; } fields[] = {
        FIELD(live_bytes), FIELD(live_blocks), FIELD(small_live_bytes), FIELD(large_live_bytes), FIELD(n_large),
        FIELD(huge_bytes), FIELD(n_huge), FIELD(cached_bytes), FIELD(abandoned_bytes),
        FIELD(pending_remote_frees), FIELD(free_run_bytes), FIELD(huge_cached_bytes), FIELD(n_spans),
        FIELD(n_full_spans), FIELD(n_abandoned_spans), FIELD(mapped_bytes), FIELD(committed_bytes),
        FIELD(returned_bytes), FIELD(metadata_bytes), FIELD(n_chunks), FIELD(n_heaps), FIELD(n_heaps_total),
    };
#undef FIELD
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\": ", fields[i].name);
        const char *at = strstr(text, key);
        unsigned long long v = 0;
        CHECKF(at && sscanf(at + strlen(key), "%llu", &v) == 1 && v == *fields[i].v, "JSON %s: %s, want %zu",
               fields[i].name, at ? at + strlen(key) : "(missing)", *fields[i].v);
    }
    struct { const char *name; uint64_t v; } u64[] = {
        { "n_malloc", s.n_malloc }, { "n_free", s.n_free }, { "requested_bytes", s.requested_bytes },
    };
    for (size_t i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\": ", u64[i].name);
        const char *at = strstr(text, key);
        unsigned long long v = 0;
        CHECKF(at && sscanf(at + strlen(key), "%llu", &v) == 1 && v == u64[i].v, "JSON %s: want %lu", u64[i].name,
               (unsigned long)u64[i].v);
    }
    CHECKF(strstr(text, "\"exact_sizes\": true"), "JSON: exact_sizes is not true outside a signal handler");
    char pid[64];
    snprintf(pid, sizeof pid, "\"pid\": %d,", (int)getpid());
    CHECKF(strstr(text, pid), "JSON: no %s", pid);
    size_t n_classes = 0;
    for (const char *p = text; (p = strstr(p, "{\"class\": ")); p++) {
        int c;
        size_t bs, live;
        if (sscanf(p, "{\"class\": %d, \"block_size\": %zu, \"live_blocks\": %zu", &c, &bs, &live) != 3 ||
            c != (int)n_classes || bs != s.classes[c].block_size || live != s.classes[c].live_blocks) {
            FAILF("JSON class entry %zu: %.100s", n_classes, p);
            break;
        }
        n_classes++;
    }
    CHECKF(n_classes == TIDE_N_CLASSES, "JSON: %zu classes", n_classes);
    size_t hist_bytes = 0, hist_blocks = 0;
    for (const char *p = text; (p = strstr(p, "{\"size\": ")); p++) {
        size_t size, blocks, bytes;
        if (sscanf(p, "{\"size\": %zu, \"blocks\": %zu, \"bytes\": %zu}", &size, &blocks, &bytes) != 3 ||
            bytes != size * blocks) {
            FAILF("JSON histogram entry: %.100s", p);
            break;
        }
        hist_bytes += bytes;
        hist_blocks += blocks;
    }
    CHECKF(hist_bytes == s.live_bytes && hist_blocks == s.live_blocks, "JSON histogram: %zu bytes in %zu blocks, "
           "live %zu in %zu", hist_bytes, hist_blocks, s.live_bytes, s.live_blocks);
    char heap[64];
    snprintf(heap, sizeof heap, "\"tid\": %d, ", my_tid());
    CHECKF(strstr(text, "\"heaps\": [") && strstr(text, heap), "JSON: no heap with %s", heap);
    free_range(gP, 0, 1000);
    free_range(gPL, 0, 3);
    free_range(gPH, 0, 2);
}

/* One histogram line per block size, in the text and the JSON report: a
 * large block of one page (from an aligned allocation) is as big as the
 * blocks of a small class, and the two must be one line. */
static void *volatile gU[6];

static void histogram_one_line_per_size(void)
{
    TIDE_ONLY();
    for (int i = 0; i < 3; i++) gU[i] = aligned_alloc(8192, 100);   /* a page run of one page */
    for (int i = 3; i < 6; i++) gU[i] = malloc(4000);                /* 4096-byte class */
    CHECKF(malloc_usable_size(gU[0]) == malloc_usable_size(gU[3]), "usable sizes %zu and %zu: the test needs two "
           "kinds of blocks of one size", malloc_usable_size(gU[0]), malloc_usable_size(gU[3]));
    size_t z = malloc_usable_size(gU[3]);
    for (int json = 0; json < 2; json++) {
        int rc = 1;
        long n = capture(json ? print_json_fn : print_text_fn, &rc, text, sizeof text);
        if (n <= 0 || rc != 0) { FAILF("tide_stats_print(fd, %d) failed", json); continue; }
        int lines = 0;
        size_t blocks = 0;
        char want[64];
        snprintf(want, sizeof want, json ? "{\"size\": %zu, \"blocks\": " : "\n    %zu bytes * ", z);
        for (const char *p = text; (p = strstr(p, want)); p++) {
            size_t b = 0;
            sscanf(p + strlen(want), "%zu", &b);
            blocks += b;
            lines++;
        }
        CHECKF(lines == 1 && blocks >= 6, "%s report: %d lines for %zu-byte blocks (%zu blocks in all, 6 or more "
               "live)", json ? "JSON" : "text", lines, z, blocks);
    }
    free_range(gU, 0, 6);
}

/* A failed write is -1; a NULL st is EINVAL. */
static void print_and_get_errors(void)
{
    TIDE_ONLY();
    CHECKF(tide_stats_print(-1, 0) == -1 && tide_stats_print(-1, 1) == -1, "tide_stats_print to fd -1 did not fail");
    int fds[2];
    if (pipe(fds) != 0) { FAILF("pipe"); return; }
    close(fds[0]);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old);
    CHECKF(tide_stats_print(fds[1], 0) == -1, "tide_stats_print to a pipe nobody reads did not fail");
    sigaction(SIGPIPE, &old, NULL);
    close(fds[1]);
    int fd = open("/dev/null", O_WRONLY);
    CHECKF(tide_stats_print(fd, 0) == 0 && tide_stats_print(fd, 1) == 0, "tide_stats_print to /dev/null failed");
    close(fd);
    errno = 0;
    CHECKF(tide_stats_get(NULL) == -1 && errno == EINVAL, "tide_stats_get(NULL): errno %d", errno);
}

/* malloc_stats() prints the same report on stderr. */
static void malloc_stats_child(void *arg)
{
    (void)arg;
    static void *volatile keep[300];
    alloc_into(keep, 300, 100);
    malloc_stats();
    fflush(stderr);
    _exit(0);
}

static void malloc_stats_prints_report(void)
{
    int fd = memfd_create("malloc-stats", 0);
    if (fd < 0) { FAILF("memfd_create"); return; }
    char sb[64];
    int st = th_in_child(malloc_stats_child, NULL, -1, fd);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", th_status_str(st, sb, sizeof sb));
    long n = (long)lseek(fd, 0, SEEK_END);
    if (n <= 0 || n >= (long)sizeof text || pread(fd, text, (size_t)n, 0) != n) {
        FAILF("malloc_stats wrote %ld bytes to stderr", n);
        close(fd);
        return;
    }
    text[n] = 0;
    close(fd);
    if (TH_TIDE)
        CHECKF(strstr(text, "heap report, pid") && strstr(text, "  live:") && strstr(text, "\n    112 bytes * "),
               "malloc_stats output is not tide's report with a 112-byte line: %.200s", text);
    else
        CHECKF(strstr(text, "Arena 0") || strstr(text, "system bytes"), "glibc's malloc_stats: %.200s", text);
}

/* mallinfo2(): a pattern of small, large and huge blocks moves uordblks by
 * at least its bytes and hblks/hblkhd by exactly its huge blocks (on glibc
 * too: they are mmap'ed there); on tide every field is the documented
 * figure of tide_stats_get. */
static void *volatile gI[2000], *volatile gIL[3], *volatile gIH[2];

static void mallinfo2_fields(void)
{
    struct mallinfo2 a = mallinfo2();
    alloc_into(gI, 2000, 100);
    alloc_into(gIL, 3, 100000);
    alloc_into(gIH, 2, HUGE_MIN);
    struct mallinfo2 b = mallinfo2();
    size_t huge = 0;
    for (int i = 0; i < 2; i++) huge += malloc_usable_size(gIH[i]);
    CHECKF(b.uordblks >= a.uordblks + 2000 * 100 + 3 * 100000, "uordblks %zu -> %zu after allocating %d bytes of "
           "small and large blocks", a.uordblks, b.uordblks, 2000 * 100 + 3 * 100000);
    CHECKF(b.hblks == a.hblks + 2 && b.hblkhd >= a.hblkhd + 2 * HUGE_MIN, "hblks %zu -> %zu, hblkhd %zu -> %zu after "
           "2 blocks of 9 MiB", a.hblks, b.hblks, a.hblkhd, b.hblkhd);
    if (TH_TIDE) {
        struct tide_stats s = stats_now();
        struct mallinfo2 m = mallinfo2();
        size_t cached_blocks = 0;
        for (int c = 0; c < TIDE_N_CLASSES; c++) cached_blocks += s.classes[c].cached_blocks;
        CHECKF(b.hblkhd - a.hblkhd == huge, "hblkhd moved by %zu, the huge blocks have %zu bytes",
               b.hblkhd - a.hblkhd, huge);
        CHECKF(m.arena == s.n_chunks * CHUNK_BYTES && m.uordblks == s.small_live_bytes + s.large_live_bytes &&
               m.fordblks == m.arena - m.uordblks && m.hblks == s.n_huge && m.hblkhd == s.huge_bytes &&
               m.usmblks == s.mapped_bytes && m.fsmblks == s.cached_bytes && m.ordblks == cached_blocks &&
               m.keepcost == 0 && m.smblks == 0,
               "mallinfo2 {arena %zu, ordblks %zu, smblks %zu, hblks %zu, hblkhd %zu, usmblks %zu, fsmblks %zu, "
               "uordblks %zu, fordblks %zu, keepcost %zu} vs tide_stats {chunks %zu, cached blocks %zu, huge %zu in "
               "%zu, mapped %zu, cached %zu, small %zu + large %zu}", m.arena, m.ordblks, m.smblks, m.hblks,
               m.hblkhd, m.usmblks, m.fsmblks, m.uordblks, m.fordblks, m.keepcost, s.n_chunks, cached_blocks,
               s.huge_bytes, s.n_huge, s.mapped_bytes, s.cached_bytes, s.small_live_bytes, s.large_live_bytes);
    }
    free_range(gI, 0, 2000);
    free_range(gIL, 0, 3);
    free_range(gIH, 0, 2);
    struct mallinfo2 c = mallinfo2();
    CHECKF(c.hblks == a.hblks && c.hblkhd == a.hblkhd, "after the frees: hblks %zu, hblkhd %zu (before: %zu, %zu)",
           c.hblks, c.hblkhd, a.hblks, a.hblkhd);
}

/* malloc_info(0, fp): glibc's XML shape (stats.sh parses it with python);
 * on tide the mmap total is the live huge blocks and each <size> line's
 * total is count blocks of `to` bytes.  Options other than 0 are EINVAL. */
static void malloc_info_xml(void)
{
    static void *volatile keep[2];
    alloc_into(keep, 2, HUGE_MIN);
    FILE *f = tmpfile();
    if (!f) { FAILF("tmpfile"); return; }
    int rc = malloc_info(0, f);
    fflush(f);
    long n = ftell(f);
    rewind(f);
    if (n <= 0 || n >= (long)sizeof text || fread(text, 1, (size_t)n, f) != (size_t)n) n = 0;
    text[n] = 0;
    CHECKF(rc == 0 && n > 0, "malloc_info(0, fp) returned %d and wrote %ld bytes", rc, n);
    CHECKF(strncmp(text, "<malloc version=\"", 17) == 0 && strstr(text, "<heap nr=\"0\">") &&
           strstr(text, "</heap>") && n > 10 && strcmp(text + n - 10, "</malloc>\n") == 0,
           "not glibc's shape: %.80s ... %s", text, text + (n > 40 ? n - 40 : 0));
    if (TH_TIDE) {
        struct tide_stats s = stats_now();
        char want[128];
        snprintf(want, sizeof want, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>", s.n_huge, s.huge_bytes);
        CHECKF(s.n_huge >= 2 && strstr(text, want), "no %s in %s", want, text);
        size_t prev_to = 0;
        for (const char *p = text; (p = strstr(p, "<size from=")); p++) {
            size_t from, to, total, count;
            if (sscanf(p, "<size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>", &from, &to, &total, &count) != 4
                || from > to || from <= prev_to || total != to * count || count == 0) {
                FAILF("bad size line after to=%zu: %.100s", prev_to, p);
                break;
            }
            prev_to = to;
        }
    }
    errno = 0;
    rc = malloc_info(1, f);   /* the manual says -1 and errno; glibc returns EINVAL itself */
    CHECKF((rc == -1 && errno == EINVAL) || (!TH_TIDE && rc == EINVAL), "malloc_info(1, fp): %d, errno %d", rc,
           errno);
    fclose(f);
    free_range(keep, 0, 2);
}

/* ---- after fork ------------------------------------------------------------- */

static pthread_barrier_t bar_f;
static void *volatile gF;

static void *forking_idle_thread(void *arg)
{
    (void)arg;
    gF = malloc(100);               /* a heap of its own */
    pthread_barrier_wait(&bar_f);
    pthread_barrier_wait(&bar_f);
    free(gF);
    return NULL;
}

/* In the child: exit 0, or 10 + what is wrong. */
static void heaps_in_child(void *arg)
{
    (void)arg;
    own_heap();
    static heaps_t hs;
    heaps_now(&hs);
    struct tide_stats s;
    tide_stats_get(&s);
    int found;
    heap_by_tid(&hs, my_tid(), &found);
    if (found != 1) _exit(10);                  /* the child's thread has no heap of its tid */
    size_t with_tid = 0;
    for (size_t i = 0; i < hs.n; i++) {
        if (hs.h[i].tid == 0) continue;
        with_tid++;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d", hs.h[i].tid);
        if (access(path, F_OK) != 0) _exit(11);  /* a heap claims a thread the child does not have */
    }
    if (with_tid != s.n_heaps) _exit(12);
    _exit(0);
}

/* tide_stats_heaps in the child of fork(), while the parent has another
 * thread with a heap: the heap of the child's thread carries the child's
 * tid, and no heap claims a thread that does not exist in the child. */
static void heaps_after_fork(void)
{
    TIDE_ONLY();
#ifdef TH_REDIRECT
    th_skip("under TSan: fork in a multi-threaded process");
    return;
#endif
    own_heap();
    pthread_barrier_init(&bar_f, NULL, 2);
    pthread_t t = spawn(forking_idle_thread, NULL);
    pthread_barrier_wait(&bar_f);
    char sb[64];
    int st = th_in_child(heaps_in_child, NULL, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s (10: no heap with the child's tid, 11: a heap with "
           "the tid of a thread the child does not have, 12: n_heaps is not the number of heaps with a tid)",
           th_status_str(st, sb, sizeof sb));
    pthread_barrier_wait(&bar_f);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&bar_f);
}

/* ---- readers while threads run ------------------------------------------- */

#define NR_THREADS 3
#define NR_SLOTS 4096
static _Atomic(void *) slots[NR_SLOTS];
static atomic_int readers_stop;
static pthread_barrier_t bar_r;

static void *churn_thread(void *arg)
{
    th_rng r = { 0x1234567 + (uint64_t)(uintptr_t)arg * 7919 };
    pthread_barrier_wait(&bar_r);
    for (int i = 0; i < 60000 && !atomic_load(&readers_stop); i++) {
        size_t k = th_rand(&r) % NR_SLOTS;
        uint64_t x = th_rand(&r) % 1000;
        size_t n = x < 900 ? 1 + x : x < 995 ? 70000 + x * 100 : 5 * MiB;
        void *p = malloc(n);
        if (p) memset(p, 1, 16);
        free(atomic_exchange(&slots[k], p));   /* often another thread's block */
    }
    return NULL;
}

/* tide_stats_get, tide_stats_heaps, tide_stats_print and tide_block_info
 * while three threads allocate and free (remote frees included): no crash,
 * no deadlock, figures that are each clamped and sane; exact again once
 * the threads are gone.  (Under TSan this is the race check of the
 * readers.) */
static void readers_while_threads_run(void)
{
    TIDE_ONLY();
    atomic_store(&readers_stop, 0);
    pthread_barrier_init(&bar_r, NULL, NR_THREADS + 1);
    pthread_t t[NR_THREADS];
    for (int i = 0; i < NR_THREADS; i++) t[i] = spawn(churn_thread, (void *)(uintptr_t)i);
    struct tide_stats s0 = stats_now();
    pthread_barrier_wait(&bar_r);
    int devnull = open("/dev/null", O_WRONLY);
    static heaps_t hs;
    for (int i = 0; i < 1000; i++) {
        struct tide_stats s = stats_now();
        CHECKF(s.committed_bytes <= s.mapped_bytes && s.live_bytes == s.small_live_bytes + s.large_live_bytes +
               s.huge_bytes && s.n_full_spans <= s.n_spans + 64, "round %d: committed %zu mapped %zu live %zu",
               i, s.committed_bytes, s.mapped_bytes, s.live_bytes);
        heaps_now(&hs);
        CHECKF(hs.count >= 1 && hs.count <= MAX_HEAPS, "round %d: %zu heaps", i, hs.count);
        if (i % 10 == 0) CHECKF(tide_stats_print(devnull, i % 20 == 0) == 0, "round %d: print failed", i);
        for (int j = 0; j < 64; j++) {
            void *p = atomic_load(&slots[(i * 64 + j) % NR_SLOTS]);
            struct tide_block_info bi;
            int st = tide_block_info(p, &bi);
            CHECKF(!p || st != TIDE_BLOCK_NOT_TIDE, "a block of a running thread was NOT_TIDE");
        }
        if (TH_FAILED()) break;
    }
    atomic_store(&readers_stop, 1);
    for (int i = 0; i < NR_THREADS; i++) pthread_join(t[i], NULL);
    close(devnull);
    for (int k = 0; k < NR_SLOTS; k++) free(atomic_exchange(&slots[k], NULL));
    tide_trim();
    struct tide_stats s1 = stats_now();
    check_consistent(&s1, "threads joined");
    CHECK_DELTA(s0, s1, live_blocks, 0, "threads joined, every block freed");
    CHECK_DELTA(s0, s1, live_bytes, 0, "threads joined, every block freed");
    /* (remote frees into the main thread's spans by earlier tests stay
     * pending: a running owner takes them back when it needs blocks) */
    CHECKF(s1.pending_remote_frees <= s0.pending_remote_frees && s1.n_abandoned_spans == 0,
           "after tide_trim: %zu pending (before the threads: %zu), %zu abandoned spans", s1.pending_remote_frees,
           s0.pending_remote_frees, s1.n_abandoned_spans);
    pthread_barrier_destroy(&bar_r);
}

int main(void)
{
    RUN(on_tide);
    RUN(exact_across_threads);
    RUN(exact_realloc);
    RUN(strings_through_the_classes);
    RUN(exact_in_late_destructors);
    RUN(heaps_of_live_threads);
    RUN(heap_walk_visits_live_blocks);
    RUN(heap_walk_callback_allocates);
    RUN(block_info_addresses);
    RUN(print_text_report);
    RUN(print_json_report);
    RUN(histogram_one_line_per_size);
    RUN(print_and_get_errors);
    RUN(malloc_stats_prints_report);
    RUN(mallinfo2_fields);
    RUN(malloc_info_xml);
    RUN(heaps_after_fork);
    RUN(readers_while_threads_run);
    RUN(block_info_while_spans_are_freed);     /* last: under TSan it may crash the process */
    return th_summary();
}
