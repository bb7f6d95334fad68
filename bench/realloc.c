/* realloc.c — growing vectors and strings with realloc.
 *
 * Stresses: realloc, the way containers and string builders use it.
 *   mode=double  64 vectors of 8-byte elements grow one element at a time;
 *                when one is full its capacity doubles (realloc).  When it
 *                reaches its target length (log-uniform, 64 B .. 4 MiB) it
 *                is freed and starts again at 16 bytes.  Measures growth in
 *                place, copying, and mremap for big blocks.
 *   mode=step    512 strings grow by appends of 1..32 bytes, each append a
 *                realloc to exactly the new length plus the terminator (a
 *                naive string builder).  When a string reaches its target
 *                length (log-uniform, 16 B .. 64 KiB) it is freed and starts
 *                again.  Measures realloc within a size class (should be
 *                nearly free) and across classes.
 * The vectors and strings are interleaved at random, so a block usually
 * cannot grow into the space after it by luck.  Contents are checked when a
 * container is freed: each element/byte is a function of its position, so a
 * realloc that loses data fails the run.
 *
 * Arguments: mode=double|step  ops=<elements appended, default 100000000 for
 *            double, appends 10000000 for step>
 * Prints:    RESULT name=realloc-<mode> metric=ops_per_s value=<appends per second>
 */
#include "bench.h"

typedef struct vec {
    uint64_t *data; /* elements; data[i] == i * 3 + 1 */
    size_t len;     /* elements in use */
    size_t cap;     /* elements allocated */
    size_t target;  /* length at which the vector is dropped */
} vec;

typedef struct str {
    char *data;    /* bytes; data[i] == 'a' + i % 26, then a terminator */
    size_t len;    /* bytes before the terminator */
    size_t target; /* length at which the string is dropped */
} str;

static long n_corrupt;
static uint64_t checksum;

static void vec_drop(vec *v)
{
    if (v->data == NULL)
        return;
    for (size_t i = 0; i < v->len; i += 61)
        if (v->data[i] != i * 3 + 1)
            n_corrupt++;
    checksum += v->len;
    free(v->data);
    v->data = NULL;
}

static void str_drop(str *s)
{
    if (s->data == NULL)
        return;
    for (size_t i = 0; i < s->len; i += 13)
        if (s->data[i] != (char)('a' + i % 26))
            n_corrupt++;
    if (s->data[s->len] != '\0')
        n_corrupt++;
    checksum += s->len;
    free(s->data);
    s->data = NULL;
}

static void run_double(long ops)
{
    enum { N = 64 };
    vec vs[N];
    bench_rng rng;
    bench_rng_seed(&rng, 2);
    memset(vs, 0, sizeof vs);
    for (long k = 0; k < ops;) {
        vec *v = &vs[bench_rng_next(&rng) % N];
        if (v->data == NULL) {
            v->cap = 2;
            v->len = 0;
            v->target = bench_rng_logrange(&rng, 64, 4 << 20) / sizeof(uint64_t);
            v->data = bench_check(malloc(v->cap * sizeof(uint64_t)), "malloc");
        }
        /* append a run of elements, as a loop filling a vector would */
        size_t run = bench_rng_range(&rng, 1, 256);
        for (size_t r = 0; r < run; r++, k++) {
            if (v->len == v->cap) {
                v->cap *= 2;
                v->data = bench_check(realloc(v->data, v->cap * sizeof(uint64_t)), "realloc");
            }
            v->data[v->len] = v->len * 3 + 1;
            v->len++;
        }
        if (v->len >= v->target)
            vec_drop(v);
    }
    for (int i = 0; i < N; i++)
        vec_drop(&vs[i]);
}

static void run_step(long ops)
{
    enum { N = 512 };
    str *ss = bench_check(calloc(N, sizeof *ss), "calloc");
    bench_rng rng;
    bench_rng_seed(&rng, 3);
    for (long k = 0; k < ops; k++) {
        str *s = &ss[bench_rng_next(&rng) % N];
        if (s->data == NULL) {
            s->len = 0;
            s->target = bench_rng_logrange(&rng, 16, 64 << 10);
            s->data = bench_check(malloc(1), "malloc");
            s->data[0] = '\0';
        }
        size_t add = bench_rng_range(&rng, 1, 32);
        s->data = bench_check(realloc(s->data, s->len + add + 1), "realloc");
        for (size_t i = 0; i < add; i++)
            s->data[s->len + i] = (char)('a' + (s->len + i) % 26);
        s->len += add;
        s->data[s->len] = '\0';
        if (s->len >= s->target)
            str_drop(s);
    }
    for (int i = 0; i < N; i++)
        str_drop(&ss[i]);
    free(ss);
}

int main(int argc, char **argv)
{
    const char *mode = bench_arg_str(argc, argv, "mode", "double");
    int dbl = strcmp(mode, "double") == 0;
    if (!dbl && strcmp(mode, "step") != 0) {
        fprintf(stderr, "realloc: mode is double or step\n");
        return 2;
    }
    long ops = bench_arg(argc, argv, "ops", dbl ? 100000000 : 10000000);

    double t0 = bench_now();
    if (dbl)
        run_double(ops);
    else
        run_step(ops);
    double t = bench_now() - t0;

    char name[32];
    snprintf(name, sizeof name, "realloc-%s", mode);
    bench_result(name, "ops_per_s", (double)ops / t, "ops=%ld seconds=%.3f corrupt=%ld checksum=%llu",
                 ops, t, n_corrupt, (unsigned long long)checksum);
    if (n_corrupt) {
        fprintf(stderr, "realloc: %ld corrupted elements\n", n_corrupt);
        return 1;
    }
    return 0;
}
