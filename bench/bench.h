/* bench.h — helpers shared by the benchmark programs in bench/.
 *
 * Every benchmark is one C file that includes this header and nothing else
 * from the project: it calls only the standard allocation functions, so the
 * allocator under test is chosen at run time with LD_PRELOAD (bench/run.sh).
 *
 * What is here:
 *   bench_now()          monotonic wall clock in seconds
 *   bench_tv_s(tv)       a struct timeval (getrusage's times) in seconds
 *   bench_rng_*()        a small, fast, per-thread pseudo-random generator
 *   bench_escape(p)      make the compiler believe p is used, so that an
 *                        allocation whose result is never read is still made
 *   bench_arg()          "key=value" command-line arguments with defaults
 *   bench_check(p, what) stops the benchmark if an allocation failed
 *   bench_thread()       pthread_create, or stop the benchmark
 *   bench_result()       the one machine-readable line each benchmark prints
 *   bench_sleep_until(t) sleeps until bench_now() reaches t
 *   bench_rss_kb()       this process's resident set size, read without
 *                        allocating (for the benchmarks of memory given back)
 *   bench_mix_*()        block sizes in the shape of a server's heap: mostly
 *                        small blocks, some medium, large and huge ones
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
#include <fcntl.h>
#include <pthread.h>
#include <sys/time.h>
#include <unistd.h>

/* A struct timeval in seconds: getrusage's user and system times. */
static inline double bench_tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

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

/* pthread_create, or say why and stop with bench_check's status: a
 * benchmark that cannot start its threads measures nothing. */
static inline void bench_thread(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, attr, fn, arg);
    if (e != 0) {
        fprintf(stderr, "bench: pthread_create: %s\n", strerror(e));
        exit(3);
    }
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

/* Sleeps until bench_now() reaches t (seconds), through interruptions. */
static inline void bench_sleep_until(double t)
{
    double d = t - bench_now();
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Resident set size of this process in KiB, from the second field of
 * /proc/self/statm (resident pages: anonymous, file and shared alike).
 * Reads with read() into a stack buffer and parses by hand: it never calls
 * malloc, so it can watch the allocator without disturbing it.  Returns -1
 * if the file cannot be read. */
static inline long bench_rss_kb(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *c = buf;
    while (*c && *c != ' ') /* skip the first field, the total size */
        c++;
    while (*c == ' ')
        c++;
    long pages = 0;
    while (*c >= '0' && *c <= '9')
        pages = pages * 10 + (*c++ - '0');
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The size mix of bench_mix_next: four kinds of block, each with its share
 * of the bytes (not of the blocks).  By count, almost every block is small. */
enum { BENCH_MIX_SMALL, BENCH_MIX_MEDIUM, BENCH_MIX_LARGE, BENCH_MIX_HUGE, BENCH_MIX_KINDS };
static const struct {
    size_t min, max; /* log-uniform range of the block sizes */
    double share;    /* fraction of the bytes in blocks of this kind */
} bench_mix_kinds[BENCH_MIX_KINDS] = {
    {16, 4096, 0.40},                  /* small: 16 B .. 4 KiB */
    {4097, 65536, 0.20},               /* medium: up to 64 KiB */
    {65537, 4u << 20, 0.25},           /* large: 64 KiB .. 4 MiB */
    {(4u << 20) + 1, 16u << 20, 0.15}, /* huge: 4 MiB .. 16 MiB */
};

typedef struct bench_mix {
    bench_rng rng;                    /* picks the size within a kind */
    uint64_t bytes[BENCH_MIX_KINDS];  /* bytes handed out so far, per kind */
    uint64_t total;                   /* sum of bytes[] */
} bench_mix;

static inline void bench_mix_init(bench_mix *m, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    bench_rng_seed(&m->rng, seed);
}

/* The next block size.  The kinds are interleaved, not allocated one after
 * the other: each call serves the kind furthest behind its share of the
 * bytes so far, so small blocks come between the large ones as in a real
 * program, and any prefix of the sequence has about the right mix.  The
 * sequence depends only on the seed. */
static inline size_t bench_mix_next(bench_mix *m)
{
    int kind = 0;
    double worst = 2.0;
    for (int k = 0; k < BENCH_MIX_KINDS; k++) {
        double got = m->total ? (double)m->bytes[k] / (double)m->total : 0.0;
        double lag = got / bench_mix_kinds[k].share; /* < 1: behind its share */
        if (lag < worst) {
            worst = lag;
            kind = k;
        }
    }
    size_t size = bench_rng_logrange(&m->rng, bench_mix_kinds[kind].min, bench_mix_kinds[kind].max);
    m->bytes[kind] += size;
    m->total += size;
    return size;
}

/* How many blocks the sequence of seed has made when it first reaches
 * budget bytes (the loop of an allocation, without allocating). */
static inline long bench_mix_count(uint64_t seed, uint64_t budget)
{
    bench_mix m;
    bench_mix_init(&m, seed);
    long n = 0;
    while (m.total < budget) {
        bench_mix_next(&m);
        n++;
    }
    return n;
}

/* Frees blocks[first], blocks[first + 2], ... of n, adding the first byte
 * of each to *checksum (read back before the free: the writes were real). */
static inline void bench_free_every_other(unsigned char **blocks, long n, long first, uint64_t *checksum)
{
    for (long i = first; i < n; i += 2) {
        *checksum += blocks[i][0];
        free(blocks[i]);
    }
}

/* Writes one byte in every 4 KiB page of the block and its last byte, so
 * that every page it spans is resident. */
static inline void bench_touch(unsigned char *p, size_t size)
{
    for (size_t off = 0; off < size; off += 4096)
        p[off] = (unsigned char)((off >> 12) + 1);
    p[size - 1] = (unsigned char)size;
}

#endif /* TIDE_BENCH_H */
