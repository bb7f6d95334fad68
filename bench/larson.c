/* larson.c — a server simulation in the manner of Larson and Krishnan's test.
 *
 * Stresses: many threads replacing random blocks of random size (8..1000
 * bytes) in arrays of live blocks, with thread turnover: each "lineage" of
 * work is carried by a chain of threads.  After every round a thread creates
 * its successor, hands it its array of slots, and exits; the successor frees
 * blocks that were allocated by threads that no longer exist.  An allocator
 * must make the memory of an exited thread's heap reusable (adoption of
 * abandoned spans) and must not slow down as threads come and go.
 *
 * The main thread fills every slot before the clock starts (so the first
 * frees of each lineage are cross-thread frees too).  Each replacement checks
 * the tag written into the old block when it was allocated (first and last
 * byte) and writes a new one; a mismatch is heap corruption and fails the run.
 *
 * Arguments: threads=<lineages, default 2>  ops=<total replacements, default
 *            20000000>  slots=<per lineage, 5000>  rounds=<threads per
 *            lineage, 50>  min=<8> max=<1000>
 * Prints:    RESULT name=larson metric=ops_per_s value=<replacements per second>
 *            (one replacement = one free + one malloc)
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct lineage {
    unsigned char **slots; /* the live blocks this lineage owns */
    size_t *sizes;         /* size of each block in slots */
    long n_slots;          /* entries in slots and sizes */
    long rounds_left;      /* threads still to run, this one included */
    long ops_per_round;    /* replacements each thread makes before handing over */
    size_t min_size;       /* smallest block */
    size_t max_size;       /* largest block */
    bench_rng rng;         /* carried from thread to thread */
    uint64_t checksum;     /* sum of tags read back from freed blocks */
    long n_threads_made;   /* threads created for this lineage so far */
} lineage;

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int n_done;                 /* lineages finished, under done_lock */
static atomic_long n_corrupt;      /* tags that did not match */
static pthread_attr_t detached;

static inline unsigned char tag_of(size_t size, size_t slot)
{
    return (unsigned char)(size * 31 + slot);
}

static void fill(unsigned char *p, size_t size, size_t slot)
{
    unsigned char t = tag_of(size, slot);
    p[0] = t;
    p[size - 1] = t;
}

static void *run_round(void *arg);

static void spawn(lineage *l)
{
    pthread_t tid;
    l->n_threads_made++;
    bench_thread(&tid, &detached, run_round, l);
}

static void *run_round(void *arg)
{
    lineage *l = arg;
    for (long k = 0; k < l->ops_per_round; k++) {
        size_t i = (size_t)(bench_rng_next(&l->rng) % (uint64_t)l->n_slots);
        unsigned char *old = l->slots[i];
        size_t old_size = l->sizes[i];
        unsigned char t = tag_of(old_size, i);
        if (old[0] != t || old[old_size - 1] != t)
            atomic_fetch_add_explicit(&n_corrupt, 1, memory_order_relaxed);
        l->checksum += old[0];
        free(old);
        size_t size = bench_rng_range(&l->rng, l->min_size, l->max_size);
        unsigned char *p = bench_check(malloc(size), "malloc");
        fill(p, size, i);
        l->slots[i] = p;
        l->sizes[i] = size;
    }
    if (--l->rounds_left > 0) {
        spawn(l); /* the successor takes over the slots; this thread exits */
    } else {
        pthread_mutex_lock(&done_lock);
        n_done++;
        pthread_cond_signal(&done_cond);
        pthread_mutex_unlock(&done_lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, "threads", 2);
    long ops = bench_arg(argc, argv, "ops", 20000000);
    long n_slots = bench_arg(argc, argv, "slots", 5000);
    long rounds = bench_arg(argc, argv, "rounds", 50);
    size_t min_size = (size_t)bench_arg(argc, argv, "min", 8);
    size_t max_size = (size_t)bench_arg(argc, argv, "max", 1000);
    if (threads < 1 || rounds < 1 || n_slots < 1 || min_size < 2 || max_size < min_size) {
        fprintf(stderr, "larson: bad arguments\n");
        return 2;
    }
    long ops_per_round = ops / threads / rounds;
    if (ops_per_round < 1)
        ops_per_round = 1;

    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);

    lineage *ls = bench_check(calloc((size_t)threads, sizeof *ls), "calloc");
    for (int t = 0; t < threads; t++) {
        lineage *l = &ls[t];
        l->slots = bench_check(malloc((size_t)n_slots * sizeof *l->slots), "malloc");
        l->sizes = bench_check(malloc((size_t)n_slots * sizeof *l->sizes), "malloc");
        l->n_slots = n_slots;
        l->rounds_left = rounds;
        l->ops_per_round = ops_per_round;
        l->min_size = min_size;
        l->max_size = max_size;
        bench_rng_seed(&l->rng, 4141 + (uint64_t)t);
        for (long i = 0; i < n_slots; i++) {
            size_t size = bench_rng_range(&l->rng, min_size, max_size);
            l->slots[i] = bench_check(malloc(size), "malloc");
            l->sizes[i] = size;
            fill(l->slots[i], size, (size_t)i);
        }
    }

    double t0 = bench_now();
    for (int t = 0; t < threads; t++)
        spawn(&ls[t]);
    pthread_mutex_lock(&done_lock);
    while (n_done < threads)
        pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);
    double t = bench_now() - t0;

    uint64_t checksum = 0;
    long n_threads_made = 0;
    for (int k = 0; k < threads; k++) {
        lineage *l = &ls[k];
        checksum += l->checksum;
        n_threads_made += l->n_threads_made;
        for (long i = 0; i < l->n_slots; i++)
            free(l->slots[i]);
        free(l->slots);
        free(l->sizes);
    }
    free(ls);

    long total = ops_per_round * rounds * threads;
    long corrupt = atomic_load(&n_corrupt);
    bench_result("larson", "ops_per_s", (double)total / t,
                 "threads=%d ops=%ld threads_created=%ld seconds=%.3f corrupt=%ld checksum=%llu",
                 threads, total, n_threads_made, t, corrupt, (unsigned long long)checksum);
    if (corrupt) {
        fprintf(stderr, "larson: %ld blocks were corrupted\n", corrupt);
        return 1;
    }
    return 0;
}
