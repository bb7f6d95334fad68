/* api/idle_reclaim.c — a thread that waits gives its spans back to
 * another thread's tide_trim, whatever its last allocation was.
 * th-conf: shared_blocks=0
 *
 * tide_trim (and the scavenger) take the direct spans of a heap whose
 * owner is not inside a malloc fast path, which they know from two
 * counters that differ while one runs: the sampler's countdown, which the
 * fast path charges on entry, and its twin, which it charges on exit
 * (heap.c fast_inside, tide_internal.h tidei_fast_charge).  Every other
 * charge moves both, and every sampler event moves them together; a path
 * that did not would leave the heap "inside" for good, and its spans
 * would never go back.  So each way of allocating is made a thread's last
 * call before it waits (its block freed at once), and tide_trim from the
 * main thread must then leave the thread's heap with no span:
 *   malloc on the fast path and on the slow path (a class's first block),
 *   calloc, realloc within a class, to another class and of a large block
 *   in place, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, a
 *   large and a huge malloc, and a free alone.
 * Then the whole test again under TIDE_CONF=leak_check=full, where every
 * allocation is a sampler event (the test runs itself again so).
 * shared_blocks=0: every block from the thread's own spans, none from the
 * shared heaps (docs/stats.md).  Skipped where membarrier(2) has no private expedited command: without
 * it tide_trim leaves every direct span where it is. */
#include "testhelper.h"

#include <linux/membarrier.h>
#include <malloc.h>
#include <sys/syscall.h>

static bool events_run;  /* this run is the one with leak_check=full */

static int my_tid(void) { return (int)syscall(SYS_gettid); }

/* The spans of the heap of thread tid (0 if it has none). */
static size_t spans_of(int tid)
{
    static struct tide_heap_stats hs[256];
    size_t n = tide_stats_heaps(hs, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        if (hs[i].tid == tid)
            return hs[i].n_spans;
    return 0;
}

/* Frees p after a write through a volatile pointer: the compiler may
 * not drop the allocation (GCC removes a malloc whose block is only
 * freed). */
static void *volatile sink;
static void use(void *p)
{
    sink = p;
    if (sink)
        *(volatile char *)sink = 1;
    free(sink);
}

static void last_malloc(void) { use(malloc(48)); }
static void last_malloc_new_class(void) { use(malloc(3000)); }
static void last_calloc(void) { use(calloc(3, 40)); }
static void last_realloc_in_class(void)
{
    sink = malloc(40);
    use(realloc(sink, 44));
}
static void last_realloc_other_class(void)
{
    sink = malloc(40);
    use(realloc(sink, 700));
}
static void last_realloc_large(void)
{
    sink = malloc(300000);
    use(sink ? realloc(sink, 200000) : NULL);
}
static void last_posix_memalign(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, 200) == 0)
        use(p);
}
static void last_aligned_alloc(void) { use(aligned_alloc(256, 512)); }
static void last_memalign(void) { use(memalign(128, 100)); }
static void last_valloc(void) { use(valloc(100)); }
static void last_pvalloc(void) { use(pvalloc(100)); }
static void last_large(void) { use(malloc(300000)); }
static void last_huge(void) { use(malloc(8 * MiB)); }
static void last_free(void) {}

static const struct way {
    const char *name;
    void (*fn)(void);
} ways[] = {
    { "malloc", last_malloc },
    { "malloc of a new class", last_malloc_new_class },
    { "calloc", last_calloc },
    { "realloc in its class", last_realloc_in_class },
    { "realloc to another class", last_realloc_other_class },
    { "realloc of a large block", last_realloc_large },
    { "posix_memalign", last_posix_memalign },
    { "aligned_alloc", last_aligned_alloc },
    { "memalign", last_memalign },
    { "valloc", last_valloc },
    { "pvalloc", last_pvalloc },
    { "large malloc", last_large },
    { "huge malloc", last_huge },
    { "free alone", last_free },
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int state;  /* 0 running, 1 waiting (tid set), 2 told to exit */
static int waiting_tid;
static size_t spans_before;

/* Blocks of a few classes made and freed (the heap then has direct
 * spans, empty), then the way's call, then a wait. */
static void *idle_thread(void *arg)
{
    const struct way *w = arg;
    for (int i = 0; i < 200; i++) {
        use(malloc(16 + (size_t)(i % 8) * 24));
        use(malloc(2000));
    }
    w->fn();
    int tid = my_tid();
    size_t before = spans_of(tid);
    pthread_mutex_lock(&mu);
    waiting_tid = tid;
    spans_before = before;
    state = 1;
    pthread_cond_broadcast(&cv);
    while (state != 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *first_thread(void *arg)
{
    use(malloc(100));
    return arg;
}

static void every_way_gives_back(void)
{
    TIDE_ONLY();
    long mb = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (mb < 0 || !(mb & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        th_skip("no private expedited membarrier: tide_trim keeps direct spans");
        return;
    }
    /* glibc's first thread makes a block that lives on (288 bytes): it
     * goes to this thread's heap, not to a waiting one's */
    pthread_t first;
    if (pthread_create(&first, NULL, first_thread, NULL) != 0 || pthread_join(first, NULL) != 0) {
        FAILF("could not run a thread");
        return;
    }
    for (size_t k = 0; k < sizeof ways / sizeof ways[0]; k++) {
        state = 0;
        pthread_t t;
        if (pthread_create(&t, NULL, idle_thread, (void *)&ways[k]) != 0) {
            FAILF("could not run a thread");
            return;
        }
        pthread_mutex_lock(&mu);
        while (state != 1)
            pthread_cond_wait(&cv, &mu);
        int tid = waiting_tid;
        size_t before = spans_before;
        pthread_mutex_unlock(&mu);
        tide_trim();
        size_t after = spans_of(tid);
        pthread_mutex_lock(&mu);
        state = 2;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(t, NULL);
        CHECKF(before > 0, "last call %s%s: the thread's heap had no span to give back", ways[k].name,
               events_run ? " (leak_check=full)" : "");
        CHECKF(after == 0, "last call %s%s: %zu of the waiting thread's %zu spans left after tide_trim",
               ways[k].name, events_run ? " (leak_check=full)" : "", after, before);
    }
}

/* The test once more, every allocation a sampler event. */
static void again_with_every_allocation_an_event(void)
{
    TIDE_ONLY();
    int st = th_rerun("shared_blocks=0,leak_check=full,leak_exitcode=0,leak_file=/dev/null", "idle_reclaim",
                      "events");
    char buf[80];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the run with leak_check=full: %s",
           th_status_str(st, buf, sizeof buf));
}

int main(int argc, char **argv)
{
    events_run = argc > 1 && strcmp(argv[1], "events") == 0;
    RUN(every_way_gives_back);
    if (!events_run)
        RUN(again_with_every_allocation_an_event);
    return th_summary();
}
