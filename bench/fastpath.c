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
 * Before the clock starts, 16 blocks of every size used are allocated and
 * kept live to the end, as other objects are in any real program; without
 * them each free in lifo mode would empty its page, and some allocators
 * (mimalloc) then take a page-retire slow path every time.
 * Each block's first and last bytes are written and read back into a
 * checksum, so no allocation can be optimised away.
 *
 * Arguments: mode=lifo|batch  n=<pairs> (default 20000000)
 * Prints:    RESULT name=fast-<mode> metric=ops_per_s value=<malloc/free pairs per second>
 */
#include "bench.h"

#define BATCH 1000
#define N_SIZES 64

int main(int argc, char **argv)
{
    const char *mode = bench_arg_str(argc, argv, "mode", "lifo");
    long n = bench_arg(argc, argv, "n", 20000000);
    int lifo = strcmp(mode, "lifo") == 0;
    if (!lifo && strcmp(mode, "batch") != 0) {
        fprintf(stderr, "fastpath: mode is lifo or batch\n");
        return 2;
    }

    /* Sizes drawn once, so the timed loop costs no random numbers: 16..256
     * in steps of 8, in a random order. */
    size_t sizes[N_SIZES];
    bench_rng rng;
    bench_rng_seed(&rng, 42);
    for (int i = 0; i < N_SIZES; i++)
        sizes[i] = 16 + 8 * bench_rng_range(&rng, 0, 30);

    static unsigned char *blocks[BATCH];
    enum { N_LIVE = 16 * N_SIZES };
    static void *live[N_LIVE];
    uint64_t checksum = 0;

    for (int i = 0; i < N_LIVE; i++)
        live[i] = bench_check(malloc(sizes[i % N_SIZES]), "malloc");

    /* Warm-up: let the allocator set up its heap and thread cache. */
    for (int i = 0; i < BATCH; i++)
        blocks[i] = bench_check(malloc(sizes[i % N_SIZES]), "malloc");
    for (int i = 0; i < BATCH; i++)
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
        long rounds = n / BATCH;
        n = rounds * BATCH;
        for (long r = 0; r < rounds; r++) {
            for (int i = 0; i < BATCH; i++) {
                size_t sz = sizes[(r + i) & (N_SIZES - 1)];
                unsigned char *p = malloc(sz);
                bench_check(p, "malloc");
                p[0] = (unsigned char)i;
                p[sz - 1] = (unsigned char)r;
                blocks[i] = p;
            }
            bench_escape(blocks);
            for (int i = 0; i < BATCH; i++) {
                checksum += blocks[i][0];
                free(blocks[i]);
            }
        }
    }
    double t = bench_now() - t0;
    for (int i = 0; i < N_LIVE; i++)
        free(live[i]);

    char name[32];
    snprintf(name, sizeof name, "fast-%s", mode);
    bench_result(name, "ops_per_s", (double)n / t, "pairs=%ld seconds=%.3f checksum=%llu",
                 n, t, (unsigned long long)checksum);
    return 0;
}
