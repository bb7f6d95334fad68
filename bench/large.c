/* large.c — large blocks, 64 KiB .. 8 MiB, allocated, touched and freed.
 *
 * Stresses: the large-object path and the policy for returning memory to
 * the operating system.  An allocator that unmaps or purges (madvise) freed
 * large blocks at once pays a page fault for every page of the next block
 * of that size; one that keeps them mapped does not, but holds more RSS.
 * This is the benchmark where glibc (whose mmap threshold rises after the
 * first free of a mapped block) often beats jemalloc and mimalloc.
 *
 * A ring of `live` slots holds large blocks; each operation frees the block
 * in a random slot, allocates a new one of log-uniform random size, writes
 * one byte in every 4 KiB page of it (so each page is really faulted in) and
 * reads the first and last back into a checksum.
 *
 * Arguments: ops=<blocks, default 4000>  live=<slots, 4>  min=<65536>
 *            max=<8388608>
 * Prints:    RESULT name=large metric=ops_per_s value=<blocks per second>
 *            ... minflt=<minor faults> sys_s=<system seconds> (getrusage,
 *            over the loop)
 */
#include "bench.h"

#include <sys/resource.h>

#define PAGE 4096

int main(int argc, char **argv)
{
    long ops = bench_arg(argc, argv, "ops", 4000);
    long live = bench_arg(argc, argv, "live", 4);
    size_t min_size = (size_t)bench_arg(argc, argv, "min", 65536);
    size_t max_size = (size_t)bench_arg(argc, argv, "max", 8 << 20);
    if (ops < 1 || live < 1 || min_size < 16 || max_size < min_size) {
        fprintf(stderr, "large: bad arguments\n");
        return 2;
    }

    unsigned char **slots = bench_check(calloc((size_t)live, sizeof *slots), "calloc");
    size_t *sizes = bench_check(calloc((size_t)live, sizeof *sizes), "calloc");
    bench_rng rng;
    bench_rng_seed(&rng, 64);
    uint64_t checksum = 0, bytes = 0;

    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = bench_now();
    for (long k = 0; k < ops; k++) {
        size_t i = (size_t)(bench_rng_next(&rng) % (uint64_t)live);
        if (slots[i]) {
            checksum += slots[i][0] + slots[i][sizes[i] - 1];
            free(slots[i]);
        }
        size_t size = bench_rng_logrange(&rng, min_size, max_size);
        unsigned char *p = bench_check(malloc(size), "malloc");
        for (size_t off = 0; off < size; off += PAGE)
            p[off] = (unsigned char)(off >> 12);
        p[size - 1] = (unsigned char)size;
        slots[i] = p;
        sizes[i] = size;
        bytes += size;
    }
    for (long i = 0; i < live; i++)
        free(slots[i]);
    double t = bench_now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    free(slots);
    free(sizes);

    double sys_s = bench_tv_s(r1.ru_stime) - bench_tv_s(r0.ru_stime);
    bench_result("large", "ops_per_s", (double)ops / t,
                 "ops=%ld live=%ld mean_kib=%.0f seconds=%.3f minflt=%ld sys_s=%.3f checksum=%llu",
                 ops, live, (double)bytes / (double)ops / 1024, t, r1.ru_minflt - r0.ru_minflt, sys_s,
                 (unsigned long long)checksum);
    return 0;
}
