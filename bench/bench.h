/* bench.h — helpers shared by the benchmark programs in bench/.
 *
 * Every benchmark is one C file that includes this header and nothing else
 * from the project: it calls only the standard allocation functions, so the
 * allocator under test is chosen at run time with LD_PRELOAD (bench/run.sh).
 *
 * What is here:
 *   bench_now()          monotonic wall clock in seconds
 *   bench_rng_*()        a small, fast, per-thread pseudo-random generator
 *   bench_escape(p)      make the compiler believe p is used, so that an
 *                        allocation whose result is never read is still made
 *   bench_arg()          "key=value" command-line arguments with defaults
 *   bench_result()       the one machine-readable line each benchmark prints
 *
 * The result line is
 *   RESULT name=<bench> metric=<ops_per_s|seconds> value=<x> [key=value ...]
 * and bench/run.sh reads name, metric and value from it; the other keys
 * (threads, ops, checksum, ...) are for a person reading the log.
 */
#ifndef TIDE_BENCH_H
#define TIDE_BENCH_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic wall-clock time in seconds. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64* — a few instructions per number, good enough to pick sizes and
 * slots.  Each thread keeps its own state; the state must never be 0. */
typedef struct bench_rng {
    uint64_t state; /* current state, never 0 */
} bench_rng;

static inline void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    /* splitmix64 step to spread small seeds over the whole state */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    r->state = z ? z : 1;
}

static inline uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [lo, hi] (inclusive); hi >= lo. */
static inline size_t bench_rng_range(bench_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(bench_rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: every power of two between lo and hi is equally
 * likely, which is how block sizes are spread in real programs. */
static inline size_t bench_rng_logrange(bench_rng *r, size_t lo, size_t hi)
{
    int lo_bits = 63 - __builtin_clzll((unsigned long long)lo);
    int hi_bits = 63 - __builtin_clzll((unsigned long long)hi);
    int bits = lo_bits + (int)(bench_rng_next(r) % (uint64_t)(hi_bits - lo_bits + 1));
    size_t base = (size_t)1 << bits;
    size_t size = base + (size_t)(bench_rng_next(r) % base);
    if (size < lo) size = lo;
    if (size > hi) size = hi;
    return size;
}

/* Tell the compiler that the memory at p is read and written by someone it
 * cannot see: an allocation followed by a free is then never elided, and
 * stores into the block are never dropped. */
#define bench_escape(p) __asm__ volatile("" : : "r"(p) : "memory")

/* Returns the value of argument "key=value" from argv as a long, or def when
 * the key is absent.  Arguments that are not key=value are a usage error. */
static inline long bench_arg(int argc, char **argv, const char *key, long def)
{
    size_t klen = strlen(key);
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '=') == NULL) {
            fprintf(stderr, "%s: arguments are key=value, not '%s'\n", argv[0], argv[i]);
            exit(2);
        }
        if (strncmp(argv[i], key, klen) == 0 && argv[i][klen] == '=')
            return strtol(argv[i] + klen + 1, NULL, 0);
    }
    return def;
}

/* Same as bench_arg for a string value. */
static inline const char *bench_arg_str(int argc, char **argv, const char *key, const char *def)
{
    size_t klen = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, klen) == 0 && argv[i][klen] == '=')
            return argv[i] + klen + 1;
    return def;
}

/* Allocation failure inside a benchmark is a result, not something to work
 * around: say so and stop with a distinctive status. */
static inline void *bench_check(void *p, const char *what)
{
    if (p == NULL) {
        fprintf(stderr, "bench: %s returned NULL\n", what);
        exit(3);
    }
    return p;
}

/* Prints the result line.  extra is a printf format for more key=value
 * fields (or "" for none). */
__attribute__((format(printf, 4, 5)))
static inline void bench_result(const char *name, const char *metric, double value,
                                const char *extra, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, extra);
    vsnprintf(buf, sizeof buf, extra, ap);
    va_end(ap);
    printf("RESULT name=%s metric=%s value=%.6g%s%s\n", name, metric, value,
           buf[0] ? " " : "", buf);
    fflush(stdout);
}

#endif /* TIDE_BENCH_H */
