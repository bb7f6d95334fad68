/* xmalloc.c — producers allocate, consumers on other threads free.
 *
 * Stresses: cross-thread frees.  Every block is allocated by a producer
 * thread and freed by a consumer thread, so every free is a "remote" free
 * that the owner of the block's span must eventually take back.  An
 * allocator that keeps remote frees on a list nobody drains grows without
 * bound here (watch the peak RSS); one that takes a lock per remote free
 * slows down as pairs are added.
 *
 * There are `threads` producer/consumer pairs (2 x threads threads in all).
 * Each pair shares a bounded queue of batches of 256 pointers, guarded by a
 * mutex, so the queue costs one lock per 256 blocks and the allocator's
 * work dominates.  Block sizes are random in 8..512 bytes; the producer
 * writes a tag into each block and the consumer checks it before the free.
 *
 * Arguments: threads=<pairs, default 1>  ops=<total blocks, default 20000000>
 *            depth=<batches a queue holds, 16>
 * Prints:    RESULT name=xmalloc metric=ops_per_s value=<blocks allocated and
 *            freed per second>
 */
#include "bench.h"

#include <pthread.h>

#define BATCH 256

typedef struct batch {
    unsigned char *blocks[BATCH]; /* blocks in flight from producer to consumer */
} batch;

typedef struct queue {
    pthread_mutex_t lock;   /* guards everything below */
    pthread_cond_t nonempty;/* signalled when a batch is added to an empty queue */
    pthread_cond_t nonfull; /* signalled when a batch is taken from a full queue */
    batch *ring;            /* depth batches */
    long depth;             /* capacity of ring */
    long head;              /* next batch to take */
    long count;             /* batches in the ring */
    int closed;             /* producer has finished */
} queue;

typedef struct pair {
    queue q;              /* the queue between this pair's threads */
    long n_batches;       /* batches the producer makes */
    bench_rng rng;        /* producer's generator */
    uint64_t checksum;    /* consumer's sum of tags */
    long n_corrupt;       /* consumer's count of bad tags */
    char pad[64];         /* keep pairs off each other's cache lines */
} pair;

static inline unsigned char tag_of(size_t size)
{
    return (unsigned char)(size ^ 0x5a);
}

static void *producer(void *arg)
{
    pair *pr = arg;
    queue *q = &pr->q;
    batch local;
    for (long b = 0; b < pr->n_batches; b++) {
        for (int i = 0; i < BATCH; i++) {
            size_t size = bench_rng_range(&pr->rng, 8, 512);
            unsigned char *p = bench_check(malloc(size), "malloc");
            p[0] = (unsigned char)size;
            p[1] = (unsigned char)(size >> 8);
            p[size - 1] = tag_of(size);
            local.blocks[i] = p;
        }
        pthread_mutex_lock(&q->lock);
        while (q->count == q->depth)
            pthread_cond_wait(&q->nonfull, &q->lock);
        q->ring[(q->head + q->count) % q->depth] = local;
        if (q->count++ == 0)
            pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->lock);
    }
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static void *consumer(void *arg)
{
    pair *pr = arg;
    queue *q = &pr->q;
    batch local;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (q->count == 0 && !q->closed)
            pthread_cond_wait(&q->nonempty, &q->lock);
        if (q->count == 0) {
            pthread_mutex_unlock(&q->lock);
            break;
        }
        local = q->ring[q->head];
        q->head = (q->head + 1) % q->depth;
        if (q->count-- == q->depth)
            pthread_cond_signal(&q->nonfull);
        pthread_mutex_unlock(&q->lock);
        for (int i = 0; i < BATCH; i++) {
            unsigned char *p = local.blocks[i];
            size_t size = (size_t)p[0] | (size_t)p[1] << 8;
            if (size < 8 || size > 512 || p[size - 1] != tag_of(size))
                pr->n_corrupt++;
            pr->checksum += size;
            free(p);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, "threads", 1);
    long ops = bench_arg(argc, argv, "ops", 20000000);
    long depth = bench_arg(argc, argv, "depth", 16);
    if (threads < 1 || depth < 1 || ops < BATCH) {
        fprintf(stderr, "xmalloc: bad arguments\n");
        return 2;
    }
    long n_batches = ops / BATCH / threads;
    if (n_batches < 1)
        n_batches = 1;

    pair *prs = bench_check(calloc((size_t)threads, sizeof *prs), "calloc");
    pthread_t *tids = bench_check(calloc(2 * (size_t)threads, sizeof *tids), "calloc");
    for (int t = 0; t < threads; t++) {
        pair *pr = &prs[t];
        pthread_mutex_init(&pr->q.lock, NULL);
        pthread_cond_init(&pr->q.nonempty, NULL);
        pthread_cond_init(&pr->q.nonfull, NULL);
        pr->q.ring = bench_check(malloc((size_t)depth * sizeof(batch)), "malloc");
        pr->q.depth = depth;
        pr->n_batches = n_batches;
        bench_rng_seed(&pr->rng, 1000 + (uint64_t)t);
    }

    double t0 = bench_now();
    for (int t = 0; t < threads; t++) {
        bench_thread(&tids[2 * t], NULL, consumer, &prs[t]);
        bench_thread(&tids[2 * t + 1], NULL, producer, &prs[t]);
    }
    for (int t = 0; t < 2 * threads; t++)
        pthread_join(tids[t], NULL);
    double t = bench_now() - t0;

    uint64_t checksum = 0;
    long corrupt = 0;
    for (int k = 0; k < threads; k++) {
        checksum += prs[k].checksum;
        corrupt += prs[k].n_corrupt;
        free(prs[k].q.ring);
    }
    free(prs);
    free(tids);

    long total = n_batches * BATCH * threads;
    bench_result("xmalloc", "ops_per_s", (double)total / t,
                 "pairs=%d threads=%d ops=%ld seconds=%.3f corrupt=%ld checksum=%llu",
                 threads, 2 * threads, total, t, corrupt, (unsigned long long)checksum);
    if (corrupt) {
        fprintf(stderr, "xmalloc: %ld blocks were corrupted\n", corrupt);
        return 1;
    }
    return 0;
}
