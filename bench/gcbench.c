/* gcbench.c — a GCBench-style benchmark of a garbage-collected heap with
 * threads (after Boehm's and Ellis & Kovac's GCBench): every thread builds
 * a long-lived tree and array, then builds and drops binary trees of depth
 * 4..16, top-down and bottom-up, and checks the long-lived ones at the end.
 *
 * It is written for gc.h and linked against libgc.so.1: run as is it uses
 * Debian's libgc; under `tools/tide-run --gc` the same binary uses tide
 * (bench/gcbench.sh runs both, side by side).
 *
 *   gcbench THREADS [SCALE]     SCALE: 1 (default) = GCBench's sizes
 *
 * Prints one line: RESULT threads=N mnodes_s=... secs=... rss_kb=...
 * collections=... pause_max_ms=... pause_total_ms=... lib=tide|libgc
 * (nodes: tree nodes allocated by all threads, per second of wall time;
 * rss: the process's peak; pauses: from tide's figures, or from libgc's
 * collection events). */
#define _GNU_SOURCE
#define GC_THREADS
#include <gc.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct node {
    struct node *left, *right;
    long i, j;
} node_t;

enum { STRETCH_DEPTH = 18, LONG_LIVED_DEPTH = 16, ARRAY_SIZE = 500000, MIN_DEPTH = 4, MAX_DEPTH = 16 };

static int scale = 1;

static long tree_size(int d) { return (1L << (d + 1)) - 1; }
static long n_iters(int d) { return 2 * tree_size(STRETCH_DEPTH) / tree_size(d) / scale; }

static node_t *new_node(node_t *l, node_t *r)
{
    node_t *n = GC_MALLOC(sizeof *n);
    if (!n) {
        fprintf(stderr, "gcbench: out of memory\n");
        exit(1);
    }
    n->left = l;
    n->right = r;
    return n;
}

static void populate(int d, node_t *n, long *count)
{
    if (d <= 0)
        return;
    n->left = new_node(NULL, NULL);
    n->right = new_node(NULL, NULL);
    *count += 2;
    populate(d - 1, n->left, count);
    populate(d - 1, n->right, count);
}

static node_t *make_tree(int d, long *count)
{
    ++*count;
    if (d <= 0)
        return new_node(NULL, NULL);
    node_t *l = make_tree(d - 1, count);
    node_t *r = make_tree(d - 1, count);
    return new_node(l, r);
}

static long check(const node_t *n)
{
    return n ? 1 + check(n->left) + check(n->right) : 0;
}

static _Atomic long total_nodes;
static _Atomic int n_bad;

static void *worker(void *arg)
{
    (void)arg;
    long count = 0;
    node_t *temp = make_tree(STRETCH_DEPTH - (scale > 1), &count);  /* stretch the heap */
    temp = NULL;
    node_t *long_lived = new_node(NULL, NULL);
    count++;
    populate(LONG_LIVED_DEPTH, long_lived, &count);
    double *array = GC_MALLOC_ATOMIC(sizeof(double) * ARRAY_SIZE);
    for (int i = 0; i < ARRAY_SIZE / 2; i++)
        array[i] = 1.0 / (i + 1);
    for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) {
        long iters = n_iters(d);
        for (long i = 0; i < iters; i++) {
            temp = new_node(NULL, NULL);
            count++;
            populate(d, temp, &count);
            temp = NULL;
        }
        for (long i = 0; i < iters; i++)
            temp = make_tree(d, &count);
        temp = NULL;
    }
    if (check(long_lived) != tree_size(LONG_LIVED_DEPTH) || array[1000] != 1.0 / 1001)
        n_bad++;
    total_nodes += count;
    return NULL;
}

/* libgc's pauses, from its collection events (8.0 and later) */
static struct timespec ev_t0;
static double pause_max_ms, pause_total_ms;
static void on_event(int ev)
{
    /* GC_EVENT_PRE_STOP_WORLD = 6, GC_EVENT_POST_START_WORLD = 9 in bdwgc 8.x */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ev == 6)
        ev_t0 = now;
    else if (ev == 9 && ev_t0.tv_sec) {
        double ms = (now.tv_sec - ev_t0.tv_sec) * 1e3 + (now.tv_nsec - ev_t0.tv_nsec) / 1e6;
        pause_total_ms += ms;
        if (ms > pause_max_ms)
            pause_max_ms = ms;
    }
}

struct tide_gc_stats_view {  /* the head of tide's struct tide_gc_stats */
    size_t heap_bytes, live_bytes, allocated_since_gc;
    unsigned long long allocated_total, reclaimed_total, n_collections, n_explicit_frees;
    size_t n_threads;
    unsigned long long pause_ns_total, pause_ns_max, pause_ns_last, pause_hist[8];
    size_t max_heap_bytes;
};

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    scale = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1 || threads > 64 || scale < 1) {
        fprintf(stderr, "usage: gcbench THREADS [SCALE]\n");
        return 2;
    }
    GC_INIT();
    int (*tide_stats)(struct tide_gc_stats_view *) = (int (*)(struct tide_gc_stats_view *))dlsym(RTLD_DEFAULT, "tide_gc_stats_get");
    void (*set_event)(void (*)(int)) = (void (*)(void (*)(int)))dlsym(RTLD_DEFAULT, "GC_set_on_collection_event");
    if (!tide_stats && set_event)
        set_event(on_event);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[64];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    size_t gcs = GC_get_gc_no();
    if (tide_stats) {
        struct tide_gc_stats_view st;
        tide_stats(&st);
        pause_max_ms = st.pause_ns_max / 1e6;
        pause_total_ms = st.pause_ns_total / 1e6;
    }
    printf("RESULT threads=%d mnodes_s=%.2f secs=%.3f rss_kb=%ld collections=%zu pause_max_ms=%.2f "
           "pause_total_ms=%.1f lib=%s bad=%d\n",
           threads, total_nodes / secs / 1e6, secs, ru.ru_maxrss, gcs, pause_max_ms, pause_total_ms,
           tide_stats ? "tide" : "libgc", (int)n_bad);
    return n_bad ? 1 : 0;
}
