/* mstress.c — mixed sizes, a large live set, random frees and reallocs,
 * several threads, some blocks migrating between threads.
 *
 * Stresses: the whole allocator at once, the way a long-running program
 * does: sizes from 8 bytes to 1 MiB (mostly small, a tail of medium and
 * large), tens of MiB live at all times, malloc, calloc, realloc that grows
 * and shrinks, and frees both by the allocating thread and by others.  Peak
 * RSS against the live set shows fragmentation and cached memory.
 *
 * Each thread owns `slots` live blocks and repeats: pick a slot, then
 *   55 %  free it and allocate a new block (1 in 10 with calloc, checked zero)
 *   30 %  realloc it (half grow by up to 2x, half to a fresh random size)
 *   15 %  swap it with a block in a shared exchange array, so that blocks
 *         allocated by one thread are freed or realloc'd by another.
 * Every block starts with a 16-byte header (its size and a check word) that
 * is verified on every free and realloc, and one byte in every 4 KiB of it
 * is written, so the live set is resident and RSS measures something real.
 *
 * Size mix: 70 % 24..128 B, 25 % 129 B..4 KiB, 4.9 % 4..64 KiB,
 *           0.1 % 64 KiB..1 MiB (log-uniform inside each band).
 *
 * Arguments: threads=<4>  slots=<per thread, 5000>  ops=<total, 4000000>
 * Prints:    RESULT name=mstress metric=seconds value=<elapsed seconds>
 *            (live_mib= gives the live set at the end, for comparing RSS)
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

#define N_SHARED 1024
#define CHECK_KEY 0x9e3779b97f4a7c15ULL
#define MAX_BLOCK ((size_t)1 << 20)

typedef struct worker {
    uint64_t **slots;  /* live blocks; each begins with its header */
    long n_slots;      /* entries in slots */
    long ops;          /* operations this thread makes */
    bench_rng rng;     /* this thread's generator */
    long n_corrupt;    /* headers that did not check */
    uint64_t checksum; /* sum of sizes seen in headers */
    char pad[64];      /* keep workers' records off each other's lines */
} worker;

static _Atomic(uint64_t *) shared[N_SHARED];

static size_t random_size(bench_rng *r)
{
    uint64_t band = bench_rng_next(r) % 1000;
    if (band < 700)
        return bench_rng_range(r, 24, 128);
    if (band < 950)
        return bench_rng_logrange(r, 129, 4096);
    if (band < 999)
        return bench_rng_logrange(r, 4097, 65536);
    return bench_rng_logrange(r, 65537, MAX_BLOCK);
}

/* Writes the header and one byte per 4 KiB from byte `from` on, and the
 * last byte (sizes are at least 24, so it lies past the header). */
static void stamp(uint64_t *b, size_t size, size_t from)
{
    unsigned char *c = (unsigned char *)b;
    b[0] = size;
    b[1] = size ^ CHECK_KEY;
    if (from < 16)
        from = 16;
    for (size_t off = from; off < size; off += 4096)
        c[off] = (unsigned char)off;
    c[size - 1] = (unsigned char)size;
}

/* Checks the header; returns the block's size (0 if it is corrupt). */
static size_t check(worker *w, const uint64_t *b)
{
    size_t size = b[0];
    if (b[1] != (size ^ CHECK_KEY) || size < 24 || size > MAX_BLOCK ||
        ((const unsigned char *)b)[size - 1] != (unsigned char)size) {
        w->n_corrupt++;
        return 0;
    }
    w->checksum += size;
    return size;
}

static uint64_t *fresh(worker *w)
{
    size_t size = random_size(&w->rng);
    uint64_t *b;
    if (bench_rng_next(&w->rng) % 10 == 0) {
        b = bench_check(calloc(1, size), "calloc");
        const unsigned char *c = (const unsigned char *)b;
        if (c[0] | c[size / 2] | c[size - 1])
            w->n_corrupt++;
    } else {
        b = bench_check(malloc(size), "malloc");
    }
    stamp(b, size, 0);
    return b;
}

static void *work(void *arg)
{
    worker *w = arg;
    /* The thread builds its own live set; the fill is timed, as in a real
     * program. */
    for (long i = 0; i < w->n_slots; i++)
        w->slots[i] = fresh(w);
    for (long k = 0; k < w->ops; k++) {
        long i = (long)(bench_rng_next(&w->rng) % (uint64_t)w->n_slots);
        uint64_t *b = w->slots[i];
        uint64_t action = bench_rng_next(&w->rng) % 100;
        if (action < 55) {
            check(w, b);
            free(b);
            w->slots[i] = fresh(w);
        } else if (action < 85) {
            size_t old = check(w, b);
            if (old == 0)
                continue;
            size_t size;
            if (bench_rng_next(&w->rng) & 1)
                size = old + (size_t)(bench_rng_next(&w->rng) % (old + 1));
            else
                size = random_size(&w->rng);
            if (size > MAX_BLOCK)
                size = MAX_BLOCK;
            b = bench_check(realloc(b, size), "realloc");
            if (b[0] != old || b[1] != (old ^ CHECK_KEY))
                w->n_corrupt++; /* realloc lost the contents */
            stamp(b, size, old < size ? old : size);
            w->slots[i] = b;
        } else {
            size_t j = (size_t)(bench_rng_next(&w->rng) % N_SHARED);
            uint64_t *got = atomic_exchange_explicit(&shared[j], b, memory_order_acq_rel);
            w->slots[i] = got ? got : fresh(w);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, "threads", 4);
    long n_slots = bench_arg(argc, argv, "slots", 5000);
    long ops = bench_arg(argc, argv, "ops", 4000000);
    if (threads < 1 || n_slots < 1 || ops < 1) {
        fprintf(stderr, "mstress: bad arguments\n");
        return 2;
    }

    worker *ws = bench_check(calloc((size_t)threads, sizeof *ws), "calloc");
    pthread_t *tids = bench_check(calloc((size_t)threads, sizeof *tids), "calloc");
    for (int t = 0; t < threads; t++) {
        worker *w = &ws[t];
        w->n_slots = n_slots;
        w->ops = ops / threads;
        bench_rng_seed(&w->rng, 77 + (uint64_t)t);
        w->slots = bench_check(malloc((size_t)n_slots * sizeof *w->slots), "malloc");
    }

    double t0 = bench_now();
    for (int t = 0; t < threads; t++)
        bench_thread(&tids[t], NULL, work, &ws[t]);
    for (int t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);

    uint64_t checksum = 0, live = 0;
    long corrupt = 0;
    for (int t = 0; t < threads; t++) {
        worker *w = &ws[t];
        for (long i = 0; i < n_slots; i++) {
            size_t size = check(w, w->slots[i]);
            live += size;
            free(w->slots[i]);
        }
        free(w->slots);
        checksum += w->checksum;
        corrupt += w->n_corrupt;
    }
    for (int j = 0; j < N_SHARED; j++) {
        uint64_t *b = atomic_load(&shared[j]);
        if (b) {
            live += b[0];
            free(b);
        }
    }
    double t = bench_now() - t0;
    free(ws);
    free(tids);

    bench_result("mstress", "seconds", t,
                 "threads=%d slots=%ld ops=%ld live_mib=%.1f corrupt=%ld checksum=%llu",
                 threads, n_slots, ops, (double)live / (1 << 20), corrupt,
                 (unsigned long long)checksum);
    if (corrupt) {
        fprintf(stderr, "mstress: %ld blocks were corrupted\n", corrupt);
        return 1;
    }
    return 0;
}
