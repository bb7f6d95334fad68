/* instr.c — a fixed number of malloc/free pairs of one size, for counting
 * instructions under valgrind --tool=callgrind (bench/instr.sh).
 *
 * Stresses: nothing by itself; it exists to be run twice with different k,
 * so that the difference of the two instruction counts divided by the
 * difference of k is the cost of one malloc+free pair on the fast path, with
 * process start-up, the allocator's initialisation and the warm-up all
 * cancelling out.  The loop body beyond malloc and free is a few
 * instructions (a store, a load, the loop counter), which bench/instr.sh
 * reports separately by running the same count with mode=empty.
 * Before the loop, 64 blocks of the size are allocated and kept live, as
 * other objects are in any real program: without them each free would empty
 * its page, and some allocators (mimalloc) take a page-retire slow path
 * then, which is not the fast path this measures.
 *
 * Arguments: size=<bytes, 64>  k=<timed pairs, 100000>  warm=<pairs first,
 *            10000>  mode=pairs|empty
 * Prints:    RESULT name=instr metric=pairs value=<k> checksum=<x>
 */
#include "bench.h"

/* Kept out of line, so the loop is identical in both modes except for the
 * two calls. */
__attribute__((noinline)) static unsigned char *get(size_t size, int real)
{
    static unsigned char dummy[4096];
    return real ? malloc(size) : dummy;
}

__attribute__((noinline)) static void put(unsigned char *p, int real)
{
    if (real)
        free(p);
    else
        bench_escape(p);
}

int main(int argc, char **argv)
{
    size_t size = (size_t)bench_arg(argc, argv, "size", 64);
    long k = bench_arg(argc, argv, "k", 100000);
    long warm = bench_arg(argc, argv, "warm", 10000);
    int real = strcmp(bench_arg_str(argc, argv, "mode", "pairs"), "empty") != 0;
    if (size < 1 || size > 4096 || k < 0 || warm < 0) {
        fprintf(stderr, "instr: bad arguments\n");
        return 2;
    }
    enum { N_LIVE = 64 };
    void *live[N_LIVE];
    for (int i = 0; i < N_LIVE; i++)
        live[i] = bench_check(get(size, real), "malloc");
    uint64_t checksum = 0;
    for (long i = 0; i < warm + k; i++) {
        unsigned char *p = bench_check(get(size, real), "malloc");
        p[0] = (unsigned char)i;
        bench_escape(p);
        checksum += p[0];
        put(p, real);
    }
    for (int i = 0; i < N_LIVE; i++)
        put(live[i], real);
    bench_result("instr", "pairs", (double)k, "size=%zu checksum=%llu", size,
                 (unsigned long long)checksum);
    return 0;
}
