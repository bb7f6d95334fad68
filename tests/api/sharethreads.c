/* api/sharethreads.c — when threads share spans, with the default
 * TIDE_CONF (shared_threads=8, docs/stats.md "Shared heaps"): only while
 * at least 8 threads have heaps at once does a thread take its first
 * blocks of a class from the shared heaps (tide_block_info's heap 0);
 * with fewer, every thread gets spans of its own, whose frees need no
 * lock and no compare-and-swap.  Checked:
 *   - main and 3 threads alive: each thread's small blocks (48 B to 3 KiB)
 *     come from its own heap;
 *   - main and 7 threads, then an eighth that allocates while they wait:
 *     its blocks come from the shared heaps, and stay intact while other
 *     threads free them;
 *   - once those threads have exited, a new thread owns its blocks again;
 *   - a thread that got a span of its own for a class while few threads
 *     lived keeps allocating that class from its own spans after more
 *     threads came, past the blocks of its first span, while a class it
 *     first asks for then is shared;
 *   - a child forked while 10 threads had heaps has one thread: a thread
 *     it starts owns its blocks.
 * Each check uses classes of its own, so that no span an exited thread
 * left (which a new thread adopts rather than share) stands in the way.
 * th-static: yes */
#include "testhelper.h"

#include <pthread.h>

#define MAX_WAITERS 16

/* The block of each request size a thread made, and the heaps they came
 * from (tide_block_info; -1: not a live block). */
typedef struct probe {
    size_t sizes[4];
    int n_sizes;
    void *blk[4];
    long heap[4];
} probe_t;

static void *probe_thread(void *arg)
{
    probe_t *pr = arg;
    for (int i = 0; i < pr->n_sizes; i++) {
        void *p = malloc(pr->sizes[i]);
        struct tide_block_info bi;
        pr->blk[i] = p;
        pr->heap[i] = p && tide_block_info(p, &bi) == TIDE_BLOCK_LIVE ? (long)bi.block.heap : -1;
        if (p) th_fill(p, pr->sizes[i], TH_SEED(p, pr->sizes[i]));
    }
    return NULL;
}

/* Runs a probe in a thread of its own, to its end; the blocks stay live. */
static void run_probe(probe_t *pr)
{
    pthread_t t;
    if (pthread_create(&t, NULL, probe_thread, pr) != 0 || pthread_join(t, NULL) != 0)
        FAILF("could not run a thread");
}

/* Checks and frees the probe's blocks (from whatever thread calls it). */
static void free_probe(probe_t *pr)
{
    for (int i = 0; i < pr->n_sizes; i++) {
        void *p = pr->blk[i];
        if (!p) continue;
        CHECKF(th_verify(p, pr->sizes[i], TH_SEED(p, pr->sizes[i])), "block %p of %zu bytes changed", p, pr->sizes[i]);
        free(p);
        pr->blk[i] = NULL;
    }
}

/* Threads that each allocate a block, then wait until released. */
static pthread_barrier_t bar;
static void *waiter(void *arg)
{
    void *p = malloc(24);
    *(void **)arg = p;
    pthread_barrier_wait(&bar);  /* 1: all have heaps */
    pthread_barrier_wait(&bar);  /* 2: released */
    free(p);
    return NULL;
}

/* Starts n waiters (main waits with them at barrier 1) and returns with
 * all of them holding a heap. */
static pthread_t waiters[MAX_WAITERS];
static void *waiter_blk[MAX_WAITERS];
static int n_waiters;
static void start_waiters(int n)
{
    n_waiters = n;
    pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++)
        if (pthread_create(&waiters[i], NULL, waiter, &waiter_blk[i]) != 0)
            FAILF("pthread_create");
    pthread_barrier_wait(&bar);
}

static void stop_waiters(void)
{
    pthread_barrier_wait(&bar);
    for (int i = 0; i < n_waiters; i++)
        pthread_join(waiters[i], NULL);
    pthread_barrier_destroy(&bar);
    n_waiters = 0;
}

static void few_threads_own_spans(void)
{
    TIDE_ONLY();
    free(malloc(32));  /* main has a heap */
    start_waiters(2);  /* main, 2 waiters and the probe: 4 heaps */
    probe_t pr = { .sizes = { 48, 208, 1000, 3000 }, .n_sizes = 4 };
    run_probe(&pr);
    for (int i = 0; i < pr.n_sizes; i++)
        CHECKF(pr.heap[i] > 0, "with 4 threads, a %zu-byte block came from heap %ld, not the thread's own", pr.sizes[i],
               pr.heap[i]);
    stop_waiters();
    free_probe(&pr);
}

static void many_threads_share(void)
{
    TIDE_ONLY();
    start_waiters(7);  /* main and 7 waiters: 8 heaps; the probe makes 9 */
    probe_t pr = { .sizes = { 64, 240, 1280, 3584 }, .n_sizes = 4 };
    run_probe(&pr);
    for (int i = 0; i < pr.n_sizes; i++)
        CHECKF(pr.heap[i] == 0, "with 9 threads, a %zu-byte block came from heap %ld, not a shared one", pr.sizes[i],
               pr.heap[i]);
    stop_waiters();
    free_probe(&pr);  /* main frees what the exited probe made */

    /* the threads have gone: a new thread owns its blocks again */
    probe_t again = { .sizes = { 96, 320, 1536, 2560 }, .n_sizes = 4 };
    run_probe(&again);
    for (int i = 0; i < again.n_sizes; i++)
        CHECKF(again.heap[i] > 0, "after the threads exited, a %zu-byte block came from heap %ld", again.sizes[i],
               again.heap[i]);
    free_probe(&again);
}

/* A thread that makes blocks of class A while few threads live, then, once
 * main has started more waiters, makes more blocks of A than its first
 * span holds and one block of a class B it never asked for before. */
static pthread_barrier_t step;
static size_t own_before, own_after, n_after;
static long heap_b;
static void *stays_own_thread(void *arg)
{
    (void)arg;
    enum { N = 400, ALL = 3000 };  /* 3000 blocks of 112 bytes: more than any one span holds */
    static void *a[ALL];
    struct tide_block_info bi;
    for (int i = 0; i < N / 2; i++) {
        a[i] = malloc(112);
        if (a[i] && tide_block_info(a[i], &bi) == TIDE_BLOCK_LIVE && bi.block.heap != 0)
            own_before++;
    }
    pthread_barrier_wait(&step);  /* 1: main starts the waiters */
    pthread_barrier_wait(&step);  /* 2: they have heaps */
    for (int i = N / 2; i < ALL; i++) {
        a[i] = malloc(112);
        n_after++;
        if (a[i] && tide_block_info(a[i], &bi) == TIDE_BLOCK_LIVE && bi.block.heap != 0)
            own_after++;
    }
    void *b = malloc(448);
    heap_b = b && tide_block_info(b, &bi) == TIDE_BLOCK_LIVE ? (long)bi.block.heap : -1;
    free(b);
    for (int i = 0; i < ALL; i++)
        free(a[i]);
    return NULL;
}

static void own_class_stays_own(void)
{
    TIDE_ONLY();
    pthread_t t;
    pthread_barrier_init(&step, NULL, 2);
    if (pthread_create(&t, NULL, stays_own_thread, NULL) != 0) {
        FAILF("pthread_create");
        return;
    }
    pthread_barrier_wait(&step);  /* 1 */
    start_waiters(8);             /* main, the thread and 8 waiters */
    pthread_barrier_wait(&step);  /* 2 */
    pthread_join(t, NULL);
    stop_waiters();
    pthread_barrier_destroy(&step);
    CHECKF(own_before == 200, "%zu of the first 200 blocks from the thread's own heap", own_before);
    CHECKF(own_after == n_after, "%zu of %zu later blocks of the same class from its own heap", own_after, n_after);
    CHECKF(heap_b == 0, "a class first asked for among 10 threads came from heap %ld, not a shared one", heap_b);
}

static void forked_child_fn(void *arg)
{
    (void)arg;
    probe_t pr = { .sizes = { 144, 352, 1792, 3072 }, .n_sizes = 4 };
    run_probe(&pr);
    int bad = 0;
    for (int i = 0; i < pr.n_sizes; i++)
        if (pr.heap[i] <= 0) {
            fprintf(stderr, "child: a %zu-byte block came from heap %ld\n", pr.sizes[i], pr.heap[i]);
            bad = 1;
        }
    free_probe(&pr);
    _exit(bad);
}

static void forked_child_counts_its_threads(void)
{
    TIDE_ONLY();
    start_waiters(9);  /* main and 9 waiters: sharing in the parent */
    int st = th_in_child(forked_child_fn, NULL, -1, -1);
    stop_waiters();
    char buf[80];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child: %s", th_status_str(st, buf, sizeof buf));
}

int main(void)
{
    RUN(few_threads_own_spans);
    RUN(many_threads_share);
    RUN(own_class_stays_own);
    RUN(forked_child_counts_its_threads);
    return th_summary();
}
