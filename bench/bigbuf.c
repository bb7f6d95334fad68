/* bigbuf.c — large buffers replaced at random: the pattern of
 * mimalloc-bench's malloc-large, in C.
 *
 * Stresses: what an allocator does with freed huge blocks (here 5-25 MiB,
 * above every allocator's small-object range).  One that gives each freed
 * buffer back to the OS at once faults in every page of the next one; one
 * that keeps freed memory mapped and reuses it pays no fault, but may hold
 * more memory.  The figures that tell which is which are printed with the
 * time: minor page faults and system time (getrusage), and the peak RSS.
 *
 * `live` slots hold buffers.  Each replacement picks a slot at random,
 * allocates a buffer of uniform random size in [min, max], fills all of it
 * with memset (as std::make_unique<char[]> zero-fills), and only then frees
 * the buffer it replaces (so live + 1 buffers exist for a moment, as with a
 * unique_ptr assignment).  The slots start empty.
 *
 * Arguments: ops=<replacements, 1000>  live=<slots, 20>
 *            min=<bytes, 5 MiB>  max=<bytes, 25 MiB>
 * Prints:    RESULT name=bigbuf metric=seconds value=<wall seconds>
 *            minflt=<minor faults> sys_s=<system seconds> user_s=<...>
 *            peak_kb=<peak RSS, KiB>
 */
#include "bench.h"

#include <sys/resource.h>

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, "ops", 1000);
    long live = bench_arg(argc, argv, "live", 20);
    size_t min_size = (size_t)bench_arg(argc, argv, "min", 5L << 20);
    size_t max_size = (size_t)bench_arg(argc, argv, "max", 25L << 20);
    if (ops < 1 || live < 1 || min_size < 1 || max_size < min_size) {
        fprintf(stderr, "bigbuf: bad arguments\n");
        return 2;
    }
    unsigned char **slots = bench_check(calloc((size_t)live, sizeof *slots), "calloc");
    size_t *sizes = bench_check(calloc((size_t)live, sizeof *sizes), "calloc");
    bench_rng rng;
    bench_rng_seed(&rng, 42);
    uint64_t checksum = 0;

    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = bench_now();
    for (long k = 0; k < ops; k++) {
        size_t i = (size_t)(bench_rng_next(&rng) % (uint64_t)live);
        size_t size = bench_rng_range(&rng, min_size, max_size);
        unsigned char *p = bench_check(malloc(size), "malloc");
        memset(p, (int)(k & 0x7f) + 1, size);
        bench_escape(p);
        if (slots[i]) {
            checksum += slots[i][0] + slots[i][sizes[i] - 1];
            free(slots[i]);
        }
        slots[i] = p;
        sizes[i] = size;
    }
    for (long i = 0; i < live; i++)
        free(slots[i]);
    double t = bench_now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    free(slots);
    free(sizes);

    bench_result("bigbuf", "seconds", t, "ops=%ld live=%ld minflt=%ld sys_s=%.3f user_s=%.3f peak_kb=%ld checksum=%llu",
                 ops, live, r1.ru_minflt - r0.ru_minflt, bench_tv_s(r1.ru_stime) - bench_tv_s(r0.ru_stime),
                 bench_tv_s(r1.ru_utime) - bench_tv_s(r0.ru_utime), r1.ru_maxrss, (unsigned long long)checksum);
    return 0;
}
