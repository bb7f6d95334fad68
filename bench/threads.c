/* threads.c — many threads, each with a small working set: the memory a
 * thread-caching allocator spends per thread.
 *
 * Stresses: per-thread caches and spans.  Phase 1: `alive` threads (300)
 * run at once; each makes 64 blocks of 16-2000 B (sizes drawn uniformly),
 * then `rounds` times frees each block and makes it again at a new size,
 * writing every block; all threads are alive together (a barrier before
 * they exit), as in a server with a thread per connection.  Phase 2:
 * `short` threads (2000) that each do the same work and exit, `batch` (8)
 * of them at a time, as a pool that replaces its workers.  Peak RSS is the
 * figure that matters (bench/run.sh records it for every run); the time is
 * reported too.
 *
 * Arguments: alive=<300> short=<2000> batch=<8> rounds=<50> blocks=<64>
 * Prints:    RESULT name=threads metric=seconds value=<s> threads=... checksum=...
 */
#include "bench.h"

#include <pthread.h>

static long n_blocks = 64, n_rounds = 50;
static pthread_barrier_t all_alive;
static int use_barrier;

/* One thread's work: a working set of n_blocks blocks remade n_rounds
 * times.  Returns a checksum of what it read back. */
static void *worker(void *arg)
{
    bench_rng r;
    bench_rng_seed(&r, (uint64_t)(uintptr_t)arg);
    unsigned char **b = malloc((size_t)n_blocks * sizeof *b);
    size_t *sz = malloc((size_t)n_blocks * sizeof *sz);
    bench_check(b, "malloc");
    bench_check(sz, "malloc");
    uint64_t sum = 0;
    for (long i = 0; i < n_blocks; i++) {
        sz[i] = bench_rng_range(&r, 16, 2000);
        b[i] = bench_check(malloc(sz[i]), "malloc");
        memset(b[i], (int)i, sz[i]);
    }
    for (long k = 0; k < n_rounds; k++) {
        for (long i = 0; i < n_blocks; i++) {
            sum += b[i][sz[i] - 1];
            free(b[i]);
            sz[i] = bench_rng_range(&r, 16, 2000);
            b[i] = bench_check(malloc(sz[i]), "malloc");
            memset(b[i], (int)(i + k), sz[i]);
        }
    }
    if (use_barrier)
        pthread_barrier_wait(&all_alive);
    for (long i = 0; i < n_blocks; i++) {
        sum += b[i][0];
        free(b[i]);
    }
    free(sz);
    free(b);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
    long alive = bench_arg(argc, argv, "alive", 300);
    long n_short = bench_arg(argc, argv, "short", 2000);
    long batch = bench_arg(argc, argv, "batch", 8);
    n_rounds = bench_arg(argc, argv, "rounds", 50);
    n_blocks = bench_arg(argc, argv, "blocks", 64);
    if (alive < 1 || n_short < 0 || batch < 1 || n_rounds < 0 || n_blocks < 1) {
        fprintf(stderr, "threads: bad arguments\n");
        return 2;
    }
    double t0 = bench_now();
    uint64_t sum = 0;
    pthread_t *t = bench_check(malloc((size_t)(alive > batch ? alive : batch) * sizeof *t), "malloc");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* phase 1: all alive at once */
    use_barrier = 1;
    pthread_barrier_init(&all_alive, NULL, (unsigned)alive);
    for (long i = 0; i < alive; i++)
        bench_thread(&t[i], &attr, worker, (void *)(uintptr_t)(i + 1));
    for (long i = 0; i < alive; i++) {
        void *v;
        pthread_join(t[i], &v);
        sum += (uintptr_t)v;
    }
    pthread_barrier_destroy(&all_alive);
    /* phase 2: short-lived threads, batch at a time */
    use_barrier = 0;
    for (long done = 0; done < n_short; done += batch) {
        long n = n_short - done < batch ? n_short - done : batch;
        for (long i = 0; i < n; i++)
            bench_thread(&t[i], &attr, worker, (void *)(uintptr_t)(alive + done + i + 1));
        for (long i = 0; i < n; i++) {
            void *v;
            pthread_join(t[i], &v);
            sum += (uintptr_t)v;
        }
    }
    free(t);
    bench_result("threads", "seconds", bench_now() - t0, "alive=%ld short=%ld rounds=%ld checksum=%llu", alive,
                 n_short, n_rounds, (unsigned long long)sum);
    return 0;
}
