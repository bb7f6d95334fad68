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
 * With api=cxx the calls are C++'s: operator new(size) and the sized
 * operator delete(p, size) that g++ emits for `delete p` (by their mangled
 * names, so the program stays C; it is linked with libstdc++, whose
 * operators are the system's when the allocator under test has none).
 * size2=<bytes> makes each iteration two pairs, of size and of size2 (the
 * figure is then per iteration: bench/instr.sh compares new/delete of a
 * 16-byte and a 48-byte object with malloc/free of the same).
 *
 * pattern=lifo and pattern=batch measure mixed sizes, as a program makes
 * them: sizes drawn (before the loop, from a fixed seed) uniformly from
 * [min, max].  lifo: each iteration is malloc of the next size, a store
 * into the block, free of it.  batch: 64 blocks of the next sizes are made,
 * each written, then all 64 freed in the order they were made; k counts
 * pairs (k/64 batches).  These loops call malloc and free directly (through
 * the PLT, as any program does), so the figure with the loop included is
 * what a program pays per pair; mode=empty runs the same loop with two
 * trivial functions of this file in their place (each a move and a
 * return), for the loop's own cost.
 *
 * Arguments: size=<bytes, 64>  size2=<bytes, 0: none>  k=<timed iterations,
 *            100000>  warm=<iterations first, 10000>  mode=pairs|empty
 *            api=c|cxx  pattern=fixed|lifo|batch  min=<bytes, 16>
 *            max=<bytes, 72>
 * Prints:    RESULT name=instr metric=pairs value=<k> checksum=<x>
 */
#include "bench.h"

void *_Znwm(size_t n);               /* operator new(size_t) */
void _ZdlPvm(void *p, size_t n);     /* operator delete(void *, size_t) */

static int cxx;                      /* api=cxx */

/* Kept out of line, so the loop is identical in both modes except for the
 * two calls. */
__attribute__((noinline)) static unsigned char *get(size_t size, int real)
{
    static unsigned char dummy[4096];
    if (!real)
        return dummy;
    return cxx ? _Znwm(size) : malloc(size);
}

__attribute__((noinline)) static void put(unsigned char *p, size_t size, int real)
{
    if (!real)
        bench_escape(p);
    else if (cxx)
        _ZdlPvm(p, size);
    else
        free(p);
}

/* The loop's stand-ins for malloc and free in mode=empty.  noipa: with
 * noinline alone GCC sees that empty_malloc returns a constant, uses it in
 * the loop and drops the call, and the loop measured empty comes out
 * cheaper than the loop around the real calls (6 instructions per pair on
 * batches; issue 13's "loop subtracted" figures were that much high). */
static unsigned char empty_block[4096];
__attribute__((noipa)) static void *empty_malloc(size_t n)
{
    (void)n;
    return empty_block;
}
__attribute__((noipa)) static void empty_free(void *p)
{
    bench_escape(p);
}

enum { N_SIZES = 1024, BATCH = 64 };
static unsigned short sizes[N_SIZES];

/* LIFO pairs of mixed sizes: iterations warm + k; ALLOC and FREE are the
 * functions called (malloc and free, or the stand-ins). */
#define LIFO_LOOP(ALLOC, FREE)                                           \
    for (long i = 0; i < warm + k; i++) {                                \
        unsigned char *p = ALLOC(sizes[i & (N_SIZES - 1)]);              \
        p[0] = (unsigned char)i;                                         \
        bench_escape(p);                                                 \
        FREE(p);                                                         \
    }
/* Batches of BATCH blocks of mixed sizes, freed in the order made. */
#define BATCH_LOOP(ALLOC, FREE)                                          \
    for (long i = 0; i < (warm + k) / BATCH; i++) {                      \
        unsigned char *q[BATCH];                                         \
        const unsigned short *sz = &sizes[(i * BATCH) & (N_SIZES - 1)];  \
        for (int j = 0; j < BATCH; j++) {                                \
            q[j] = ALLOC(sz[j]);                                         \
            q[j][0] = (unsigned char)j;                                  \
        }                                                                \
        bench_escape(q);                                                 \
        for (int j = 0; j < BATCH; j++)                                  \
            FREE(q[j]);                                                  \
    }

/* The mixed-size patterns (pattern=lifo|batch). */
static void mixed(const char *pattern, long k, long warm, int real)
{
    if (strcmp(pattern, "lifo") == 0) {
        if (real)
            LIFO_LOOP(malloc, free)
        else
            LIFO_LOOP(empty_malloc, empty_free)
    } else {
        if (real)
            BATCH_LOOP(malloc, free)
        else
            BATCH_LOOP(empty_malloc, empty_free)
    }
}

int main(int argc, char **argv)
{
    size_t size = (size_t)bench_arg(argc, argv, "size", 64);
    size_t size2 = (size_t)bench_arg(argc, argv, "size2", 0);
    long k = bench_arg(argc, argv, "k", 100000);
    long warm = bench_arg(argc, argv, "warm", 10000);
    int real = strcmp(bench_arg_str(argc, argv, "mode", "pairs"), "empty") != 0;
    cxx = strcmp(bench_arg_str(argc, argv, "api", "c"), "cxx") == 0;
    const char *pattern = bench_arg_str(argc, argv, "pattern", "fixed");
    if (strcmp(pattern, "lifo") == 0 || strcmp(pattern, "batch") == 0) {
        long lo = bench_arg(argc, argv, "min", 16), hi = bench_arg(argc, argv, "max", 72);
        if (lo < 1 || hi < lo || hi > 4096 || k < 0 || warm < 0) {
            fprintf(stderr, "instr: bad arguments\n");
            return 2;
        }
        bench_rng r;
        bench_rng_seed(&r, 13);
        for (int i = 0; i < N_SIZES; i++)
            sizes[i] = (unsigned short)bench_rng_range(&r, (size_t)lo, (size_t)hi);
        /* 64 blocks kept live, as in the fixed-size loop */
        void *live[BATCH];
        for (int i = 0; i < BATCH; i++)
            live[i] = bench_check(real ? malloc(sizes[i]) : empty_malloc(sizes[i]), "malloc");
        mixed(pattern, k, warm, real);
        for (int i = 0; i < BATCH; i++)
            real ? free(live[i]) : empty_free(live[i]);
        bench_result("instr", "pairs", (double)k, "pattern=%s min=%ld max=%ld", pattern, lo, hi);
        return 0;
    }
    if (size < 1 || size > 4096 || size2 > 4096 || k < 0 || warm < 0) {
        fprintf(stderr, "instr: bad arguments\n");
        return 2;
    }
    enum { N_LIVE = 64 };
    void *live[N_LIVE], *live2[N_LIVE];
    for (int i = 0; i < N_LIVE; i++) {
        live[i] = bench_check(get(size, real), "malloc");
        live2[i] = size2 ? bench_check(get(size2, real), "malloc") : NULL;
    }
    uint64_t checksum = 0;
    for (long i = 0; i < warm + k; i++) {
        unsigned char *p = bench_check(get(size, real), "malloc");
        p[0] = (unsigned char)i;
        bench_escape(p);
        checksum += p[0];
        put(p, size, real);
        if (size2) {
            p = bench_check(get(size2, real), "malloc");
            p[0] = (unsigned char)i;
            bench_escape(p);
            checksum += p[0];
            put(p, size2, real);
        }
    }
    for (int i = 0; i < N_LIVE; i++) {
        put(live[i], size, real);
        if (size2)
            put(live2[i], size2, real);
    }
    bench_result("instr", "pairs", (double)k, "size=%zu size2=%zu api=%s checksum=%llu", size, size2,
                 cxx ? "cxx" : "c", (unsigned long long)checksum);
    return 0;
}
