/* fastpath.c — the single-thread small-object fast path.
 *
 * Stresses: malloc and free of small blocks (16..256 bytes) by one thread, the
 * path every allocator tries hardest to make short.
 *   mode=lifo   malloc then free at once, n times, the size changing every
 *               time (a fixed sequence of 64 sizes): an allocator with one
 *               LIFO list per size class (glibc's tcache, jemalloc, tcmalloc)
 *               hands the block back at the next request of its class; one
 *               that frees onto a separate list (tide, mimalloc) reuses it
 *               once the class's allocation list runs dry.  Every call is on
 *               the fast path; the loop is short, so the latency of the
 *               calls' dependent loads shows, not only their count.
 *   mode=batch  malloc 1000 blocks, then free them in allocation order, n/1000
 *               times: the free list is emptied and refilled each round.
 *               With batch=B, B blocks a round; with same=1, all of one
 *               size, the next size each round (a request's buffers: the
 *               suite's mid-batch, 10 blocks of 8-40 KiB, where an allocator
 *               that gives a span back when it empties makes it again
 *               every round).
 * Before the clock starts, 16 blocks of every size used are allocated and
 * kept live to the end, as other objects are in any real program; without
 * them each free in lifo mode would empty its page, and some allocators
 * (mimalloc) then take a page-retire slow path every time.
 * Each block's first and last bytes are written and read back into a
 * checksum, so no allocation can be optimised away.
 *
 * Arguments: mode=lifo|batch  n=<pairs> (default 20000000)  min=<16> max=<256>
 *            (sizes: 31 steps from min to max)  batch=<1..1000>  same=<0|1>
 *            live=<blocks of each size kept, 16>  name=<fast-MODE>
 * Prints:    RESULT name=<name> metric=ops_per_s value=<malloc/free pairs per second>
 */
#include "bench.h"

#define BATCH 1000
#define N_SIZES 64

int main(int argc, char **argv)
{
    const char *mode = bench_arg_str(argc, argv, "mode", "lifo");
    long n = bench_arg(argc, argv, "n", 20000000);
    long min = bench_arg(argc, argv, "min", 16), max = bench_arg(argc, argv, "max", 256);
    long batch = bench_arg(argc, argv, "batch", BATCH), same = bench_arg(argc, argv, "same", 0);
    long per_size = bench_arg(argc, argv, "live", 16);
    int lifo = strcmp(mode, "lifo") == 0;
    if (!lifo && strcmp(mode, "batch") != 0) {
        fprintf(stderr, "fastpath: mode is lifo or batch\n");
        return 2;
    }
    if (min < 1 || max < min || batch < 1 || batch > BATCH || per_size < 0 || per_size > 16) {
        fprintf(stderr, "fastpath: bad arguments\n");
        return 2;
    }

    /* Sizes drawn once, so the timed loop costs no random numbers: 31
     * steps from min to max (16..256 in steps of 8 by default), in a
     * random order. */
    size_t sizes[N_SIZES];
    bench_rng rng;
    bench_rng_seed(&rng, 42);
    for (int i = 0; i < N_SIZES; i++)
        sizes[i] = (size_t)(min + (max - min) * (long)bench_rng_range(&rng, 0, 30) / 30);

    static unsigned char *blocks[BATCH];
    const int N_LIVE = (int)per_size * N_SIZES;
    static void *live[16 * N_SIZES];
    uint64_t checksum = 0;

    for (int i = 0; i < N_LIVE; i++)
        live[i] = bench_check(malloc(sizes[i % N_SIZES]), "malloc");

    /* Warm-up: let the allocator set up its heap and thread cache (a round
     * of the batch, 1000 blocks by default). */
    for (int i = 0; i < batch; i++)
        blocks[i] = bench_check(malloc(sizes[i % N_SIZES]), "malloc");
    for (int i = 0; i < batch; i++)
        free(blocks[i]);

    double t0 = bench_now();
    if (lifo) {
        for (long i = 0; i < n; i++) {
            size_t sz = sizes[i & (N_SIZES - 1)];
            unsigned char *p = malloc(sz);
            bench_check(p, "malloc");
            p[0] = (unsigned char)i;
            p[sz - 1] = (unsigned char)(i >> 8);
            bench_escape(p);
            checksum += p[0] + p[sz - 1];
            free(p);
        }
    } else {
        long rounds = n / batch;
        n = rounds * batch;
        for (long r = 0; r < rounds; r++) {
            for (int i = 0; i < batch; i++) {
                size_t sz = sizes[(r + (same ? 0 : i)) & (N_SIZES - 1)];
                unsigned char *p = malloc(sz);
                bench_check(p, "malloc");
                p[0] = (unsigned char)i;
                p[sz - 1] = (unsigned char)r;
                blocks[i] = p;
            }
            bench_escape(blocks);
            for (int i = 0; i < batch; i++) {
                checksum += blocks[i][0];
                free(blocks[i]);
            }
        }
    }
    double t = bench_now() - t0;
    for (int i = 0; i < N_LIVE; i++)
        free(live[i]);

    char name[32];
    snprintf(name, sizeof name, "%s", bench_arg_str(argc, argv, "name", lifo ? "fast-lifo" : "fast-batch"));
    bench_result(name, "ops_per_s", (double)n / t, "pairs=%ld seconds=%.3f checksum=%llu",
                 n, t, (unsigned long long)checksum);
    return 0;
}
