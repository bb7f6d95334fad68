/* api/spares.c — a thread heap keeps spans that emptied as spares (src/heap.c
 * span_keep_spare, docs/stats.md): up to 8 of them and 512 KiB in all, so
 * that a batch of blocks made and freed in turn does not give its spans
 * back and make them again every time.  Checked as a user sees it
 * (tide_stats_heaps, tide_block_info):
 *   - a thread makes 10 blocks of 20 000 bytes (three spans of four 20 KiB
 *     blocks) and frees them: its heap still has the three spans, and the
 *     next batch's blocks come from them; with 3000-byte blocks the same;
 *   - a batch of another class whose spans take as many pages or a few
 *     fewer (18 000 bytes after 20 000) is cut from those spares, not from
 *     new spans, and keeps its bytes;
 *   - a batch of 40 blocks of 40 000 bytes (ten spans of 160 KiB) leaves
 *     at most 512 KiB of spares;
 *   - one buffer of each of 24 sizes of 8 to 64 KiB, each freed before the
 *     next, leaves no span per class but at most the spares (the last span
 *     of a class is kept only under 4 KiB), and a 40 000-byte block made
 *     and freed in a loop keeps its span;
 *   - the scavenger takes the spares of an idle thread back (decay_ms set
 *     to 100 while it waits), and the thread's next batches work;
 *   - a thread exits with spares and the next thread gets its pooled heap
 *     without them; a forked child runs batches from the parent's spares;
 *   - batches of random sizes and lengths, freed in random order, so that
 *     spares fill up, empty again and go back in every order: every block
 *     keeps its bytes and tide reports no corruption.
 * th-conf: decay_ms=-1
 * th-static: yes */
#include "testhelper.h"

#include <pthread.h>
#include <sys/syscall.h>

#define MAXB 64

static int my_tid(void) { return (int)syscall(SYS_gettid); }

/* The stats of the heap of thread tid (n_spans 0 if it has none). */
static struct tide_heap_stats heap_of(int tid)
{
    static struct tide_heap_stats hs[256];
    struct tide_heap_stats none;
    memset(&none, 0, sizeof none);
    size_t n = tide_stats_heaps(hs, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        if (hs[i].tid == tid)
            return hs[i];
    return none;
}

/* Runs fn(arg) in a new thread and waits for it; false (the failure
 * reported) if the thread could not run. */
static bool in_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0) {
        FAILF("could not run a thread");
        return false;
    }
    return true;
}

/* Makes n blocks of size bytes, fills them, checks them and frees them in
 * the order made.  Returns how many were bad; their addresses in out. */
static int batch(size_t size, int n, void **out)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        out[i] = malloc(size);
        if (!out[i]) { bad++; continue; }
        th_fill(out[i], size, TH_SEED(out[i], size));
    }
    for (int i = 0; i < n; i++) {
        if (!out[i]) continue;
        if (!th_verify(out[i], size, TH_SEED(out[i], size))) bad++;
        free(out[i]);
    }
    return bad;
}

/* Whether every block of b[] lies in one of the spans of a[] (the spans
 * of a[]'s blocks are the runs [p - p % span, ...) only as tide_block_info
 * reports them: compared by the block addresses themselves, which a batch
 * of the same span set gives back). */
static bool same_blocks(void **a, void **b, int n)
{
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < n && !found; j++)
            found = a[j] == b[i];
        if (!found) return false;
    }
    return true;
}

struct batch_result {
    size_t spans_after_free, spans_start;
    size_t cached_after_free;
    bool reused;
    int bad;
};

static size_t g_size;
static int g_n;
static void *batch_thread(void *arg)
{
    struct batch_result *r = arg;
    void *a[MAXB], *b[MAXB];
    free(malloc(16));
    r->spans_start = heap_of(my_tid()).n_spans;
    r->bad = batch(g_size, g_n, a);
    struct tide_heap_stats hs = heap_of(my_tid());
    r->spans_after_free = hs.n_spans - r->spans_start;
    r->cached_after_free = hs.cached_bytes;
    r->bad += batch(g_size, g_n, b);
    r->reused = same_blocks(a, b, g_n);
    return NULL;
}

static struct batch_result run_batch(size_t size, int n)
{
    struct batch_result r;
    memset(&r, 0, sizeof r);
    g_size = size;
    g_n = n;
    in_thread(batch_thread, &r);
    return r;
}

static void batch_keeps_its_spans(void)
{
    TIDE_ONLY();
    struct batch_result r = run_batch(20000, 10);
    CHECKF(r.bad == 0, "%d blocks of 20000 bytes changed", r.bad);
    CHECKF(r.spans_after_free == 3, "the thread kept %zu spans of 20000-byte blocks after freeing a batch of 10, "
           "not 3", r.spans_after_free);
    CHECKF(r.reused, "the second batch of 20000-byte blocks did not reuse the first one's blocks");
    r = run_batch(3000, 60);
    CHECKF(r.bad == 0, "%d blocks of 3000 bytes changed", r.bad);
    CHECKF(r.spans_after_free >= 2, "the thread kept %zu spans of 3000-byte blocks after freeing a batch of 60",
           r.spans_after_free);
    CHECKF(r.reused, "the second batch of 3000-byte blocks did not reuse the first one's blocks");
}

static bool other_ok, other_within;
static size_t other_spans_a, other_spans_b;
static void *other_class_thread(void *arg)
{
    (void)arg;
    void *a[MAXB], *b[MAXB];
    int tid = my_tid();
    free(malloc(16));
    int bad = batch(20000, 10, a);
    other_spans_a = heap_of(tid).n_spans;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < 10; i++) {
        if ((uintptr_t)a[i] < lo) lo = (uintptr_t)a[i];
        if ((uintptr_t)a[i] + 20480 > hi) hi = (uintptr_t)a[i] + 20480;
    }
    lo &= ~(uintptr_t)4095;
    other_within = true;
    for (int i = 0; i < 8; i++) {
        b[i] = malloc(18000);
        if (!b[i] || (uintptr_t)b[i] < lo || (uintptr_t)b[i] + 18000 > hi) other_within = false;
        if (b[i]) th_fill(b[i], 18000, TH_SEED(b[i], 18000));
    }
    other_spans_b = heap_of(tid).n_spans;
    for (int i = 0; i < 8; i++) {
        if (b[i] && !th_verify(b[i], 18000, TH_SEED(b[i], 18000))) bad++;
        free(b[i]);
    }
    bad += batch(20000, 10, a);  /* and back */
    other_ok = bad == 0;
    return NULL;
}

static void spare_serves_other_class(void)
{
    TIDE_ONLY();
    if (!in_thread(other_class_thread, NULL))
        return;
    CHECKF(other_ok, "blocks changed");
    CHECKF(other_within, "the 18000-byte blocks were not cut from the spares of the 20000-byte batch");
    CHECKF(other_spans_b <= other_spans_a, "%zu spans after the 18000-byte batch, %zu before", other_spans_b,
           other_spans_a);
}

static void spares_bounded(void)
{
    TIDE_ONLY();
    struct batch_result r = run_batch(40000, 40);
    CHECKF(r.bad == 0, "%d blocks of 40000 bytes changed", r.bad);
    /* spans of 4 blocks of 40 KiB: 160 KiB; 3 fit in 512 KiB (the last
     * span of the class is one of them: 40 KiB is over TIDE_KEEP_LAST_MAX) */
    CHECKF(r.spans_after_free >= 2 && r.spans_after_free <= 4, "%zu spans kept after freeing 40 blocks of 40000 "
           "bytes (10 spans)", r.spans_after_free);
    CHECKF(r.cached_after_free <= 4 * 160 * KiB + 64 * KiB, "%zu bytes cached after freeing them",
           r.cached_after_free);
}

/* One block (and one of a byte more, as a program reading a file into a
 * buffer of its size makes) of each of 24 sizes of 8 KiB to 64 KiB, a
 * size class each, freed before the next size: the thread keeps no span
 * per class (the last span of a class is kept only under 4 KiB,
 * TIDE_KEEP_LAST_MAX), only the spares' bound.  Then one 40 000-byte
 * block made and freed again and again keeps its span and its address. */
static size_t big_spans, big_cached, lifo_spans_before, lifo_spans_after;
static bool big_ok, lifo_same;
static void *big_classes_thread(void *arg)
{
    (void)arg;
    int tid = my_tid();
    free(malloc(16));
    size_t start = heap_of(tid).n_spans;
    big_ok = true;
    for (int i = 0; i < 24; i++) {
        size_t base = (size_t)8192 << (i / 8);
        size_t size = base + (size_t)(i % 8 + 1) * (base / 8) - 64;
        void *a = malloc(size), *b = malloc(size + 1);
        if (!a || !b) { big_ok = false; break; }
        th_fill(a, size, TH_SEED(a, size));
        th_fill(b, size + 1, TH_SEED(b, size + 1));
        big_ok &= th_verify(a, size, TH_SEED(a, size)) && th_verify(b, size + 1, TH_SEED(b, size + 1));
        free(a);
        free(b);
    }
    struct tide_heap_stats hs = heap_of(tid);
    big_spans = hs.n_spans - start;
    big_cached = hs.cached_bytes;
    void *p = malloc(40000);
    free(p);
    lifo_spans_before = heap_of(tid).n_spans;
    lifo_same = true;
    for (int i = 0; i < 10000; i++) {
        void *q = malloc(40000);
        if (q != p) lifo_same = false;
        if (q) ((volatile char *)q)[39999] = 1;
        free(q);
    }
    lifo_spans_after = heap_of(tid).n_spans;
    return NULL;
}

static void big_classes_share_the_bound(void)
{
    TIDE_ONLY();
    if (!in_thread(big_classes_thread, NULL))
        return;
    CHECKF(big_ok, "blocks of 8-64 KiB changed");
    CHECKF(big_spans <= 8, "%zu spans kept after one buffer of each of 24 sizes of 8-64 KiB (at most 8 spares)",
           big_spans);
    CHECKF(big_cached <= 512 * KiB + 64 * KiB, "%zu bytes cached after them (spares: at most 512 KiB)", big_cached);
    CHECKF(lifo_same, "a 40000-byte block made and freed 10000 times did not keep its address");
    CHECKF(lifo_spans_after == lifo_spans_before, "%zu spans after 10000 pairs of 40000 bytes, %zu before",
           lifo_spans_after, lifo_spans_before);
}

/* ---- the scavenger ---- */

static pthread_barrier_t bar;
static size_t idle_spans_before, idle_spans_after;
static int idle_bad;
static void *idle_thread(void *arg)
{
    (void)arg;
    void *a[MAXB];
    int tid = my_tid();
    idle_bad = batch(20000, 10, a);
    idle_spans_before = heap_of(tid).n_spans;
    pthread_barrier_wait(&bar);  /* 1: main sets decay_ms=100 */
    pthread_barrier_wait(&bar);  /* 2: main waited */
    idle_spans_after = heap_of(tid).n_spans;
    for (int k = 0; k < 5; k++)
        idle_bad += batch(20000, 10, a) + batch(3000, 40, a);
    return NULL;
}

static void idle_spares_go_back(void)
{
    TIDE_ONLY();
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0) {
        FAILF("pthread_create");
        return;
    }
    pthread_barrier_wait(&bar);  /* 1 */
    tide_set_decay_ms(100);
    void *p = malloc(300000);    /* a free that wakes the scavenger */
    free(p);
    struct timespec ts = { 1, 0 };
    nanosleep(&ts, NULL);        /* 10 decay delays: the idle heap goes back */
    pthread_barrier_wait(&bar);  /* 2 */
    pthread_join(t, NULL);
    tide_set_decay_ms(-1);
    pthread_barrier_destroy(&bar);
    CHECKF(idle_bad == 0, "%d blocks changed", idle_bad);
    CHECKF(idle_spans_before >= 3, "%zu spans before the wait", idle_spans_before);
    CHECKF(idle_spans_after == 0, "the idle thread still had %zu spans after 1 s with decay_ms=100",
           idle_spans_after);
}

/* ---- exit and fork ---- */

static void *spares_then_exit(void *arg)
{
    void *a[MAXB];
    *(int *)arg = batch(20000, 10, a) + batch(3000, 60, a);
    return NULL;
}

static void child_batches(void *arg)
{
    (void)arg;
    void *a[MAXB];
    int bad = 0;
    for (int k = 0; k < 5; k++)
        bad += batch(20000, 10, a) + batch(40000, 20, a);
    _exit(bad ? 1 : 0);
}

static void exit_and_fork(void)
{
    TIDE_ONLY();
    for (int k = 0; k < 4; k++) {
        int bad = 0;
        if (!in_thread(spares_then_exit, &bad))
            return;
        CHECKF(bad == 0, "thread %d: %d blocks changed", k, bad);
    }
    struct batch_result r = run_batch(20000, 10);  /* a pooled heap: no spare of the last thread's */
    CHECKF(r.spans_start <= 1, "a new thread's heap had %zu spans after its first block", r.spans_start);
    void *a[MAXB];
    CHECKF(batch(20000, 10, a) == 0, "main's batch changed");  /* main has spares at the fork */
    int st = th_in_child(child_batches, NULL, -1, -1);
    char buf[80];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child: %s", th_status_str(st, buf, sizeof buf));
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void random_batches(void)
{
    static const size_t sizes[] = { 100, 1024, 3000, 9000, 20000, 40000, 60000 };
    enum { LIVE = 96 };
    static void *live[LIVE];
    static size_t live_size[LIVE];
    int bad = 0;
    for (int round = 0; round < 3000; round++) {
        size_t size = sizes[rnd() % (sizeof sizes / sizeof sizes[0])];
        int n = 1 + (int)(rnd() % 40);
        for (int i = 0; i < n; i++) {
            int k = (int)(rnd() % LIVE);
            if (live[k]) {
                if (!th_verify(live[k], live_size[k], TH_SEED(live[k], live_size[k]))) bad++;
                free(live[k]);
            }
            live[k] = malloc(size);
            live_size[k] = size;
            if (live[k]) th_fill(live[k], size, TH_SEED(live[k], size));
        }
        if (rnd() % 4 == 0)  /* now and then, free nearly everything in a random order */
            for (int i = 0; i < LIVE; i++) {
                int k = (int)(rnd() % LIVE);
                if (!live[k]) continue;
                if (!th_verify(live[k], live_size[k], TH_SEED(live[k], live_size[k]))) bad++;
                free(live[k]);
                live[k] = NULL;
            }
    }
    for (int k = 0; k < LIVE; k++) {
        if (live[k] && !th_verify(live[k], live_size[k], TH_SEED(live[k], live_size[k]))) bad++;
        free(live[k]);
        live[k] = NULL;
    }
    CHECKF(bad == 0, "%d blocks changed", bad);
}

int main(void)
{
    RUN(batch_keeps_its_spans);
    RUN(spare_serves_other_class);
    RUN(spares_bounded);
    RUN(big_classes_share_the_bound);
    RUN(idle_spares_go_back);
    RUN(exit_and_fork);
    RUN(random_batches);
    return th_summary();
}
