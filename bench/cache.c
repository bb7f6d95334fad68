/* cache.c — false sharing caused by the allocator (Hoard's cache-thrash and
 * cache-scratch tests, written anew).
 *
 * Stresses: where an allocator places small objects used by different
 * threads.  Threads write over and over into their own small object; if two
 * threads' objects share a cache line the line bounces between cores and
 * the writes run many times slower, although the program shares nothing.
 *   mode=thrash   each thread allocates its own 8-byte object, writes it
 *                 `writes` times, frees it, and repeats.  Active false
 *                 sharing: the allocator hands neighbouring bytes to
 *                 different threads.
 *   mode=scratch  the main thread allocates one 8-byte object per thread,
 *                 back to back, and hands one to each thread, which frees it
 *                 and then allocates, writes and frees its own object as in
 *                 thrash.  Passive false sharing: an allocator that puts the
 *                 freed object in the freeing thread's cache hands it back to
 *                 that thread, still on a line shared with the others.
 * Run with as many threads as cores (bench/run.sh passes nproc), else the
 * threads take turns and nothing is shared at the same moment.
 *
 * Arguments: mode=thrash|scratch  threads=<2>  iters=<objects per thread,
 *            default 20000>  writes=<writes per object, 2000>  size=<8>
 * Prints:    RESULT name=cache-<mode> metric=seconds value=<elapsed seconds>
 */
#include "bench.h"

#include <pthread.h>

typedef struct worker {
    unsigned char *given; /* scratch: the object the main thread allocated */
    long iters;           /* objects to allocate */
    long writes;          /* writes into each object */
    size_t size;          /* object size */
    uint64_t checksum;    /* sum of the final byte values */
    char pad[64];         /* keep workers' records off each other's lines */
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    if (w->given)
        free(w->given);
    for (long i = 0; i < w->iters; i++) {
        volatile unsigned char *p = bench_check(malloc(w->size), "malloc");
        size_t k = 0;
        for (long j = 0; j < w->writes; j++) {
            p[k] = (unsigned char)(p[k] + 1);
            if (++k == w->size)
                k = 0;
        }
        w->checksum += p[0];
        free((void *)p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = bench_arg_str(argc, argv, "mode", "thrash");
    int threads = (int)bench_arg(argc, argv, "threads", 2);
    long iters = bench_arg(argc, argv, "iters", 20000);
    long writes = bench_arg(argc, argv, "writes", 2000);
    size_t size = (size_t)bench_arg(argc, argv, "size", 8);
    int scratch = strcmp(mode, "scratch") == 0;
    if ((!scratch && strcmp(mode, "thrash") != 0) || threads < 1 || size < 1) {
        fprintf(stderr, "cache: bad arguments\n");
        return 2;
    }

    worker *ws = bench_check(calloc((size_t)threads, sizeof *ws), "calloc");
    pthread_t *tids = bench_check(calloc((size_t)threads, sizeof *tids), "calloc");
    for (int t = 0; t < threads; t++) {
        ws[t].iters = iters;
        ws[t].writes = writes;
        ws[t].size = size;
        if (scratch) {
            ws[t].given = bench_check(malloc(size), "malloc");
            memset(ws[t].given, 0, size);
        }
    }

    double t0 = bench_now();
    for (int t = 0; t < threads; t++)
        bench_thread(&tids[t], NULL, work, &ws[t]);
    for (int t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    double t = bench_now() - t0;

    uint64_t checksum = 0;
    for (int k = 0; k < threads; k++)
        checksum += ws[k].checksum;
    free(ws);
    free(tids);

    char name[32];
    snprintf(name, sizeof name, "cache-%s", mode);
    bench_result(name, "seconds", t, "threads=%d iters=%ld writes=%ld checksum=%llu",
                 threads, iters, writes, (unsigned long long)checksum);
    return 0;
}
