/* stress/guard_threads.c — guarded sampling under threads, with the heap
 * profiler sharing its countdown.
 * th-conf: guard_rate=20,prof=1,prof_sample=8192,prof_file=/dev/null
 *
 * mixed: four threads allocate through every entry point (malloc, calloc,
 *   realloc, aligned_alloc, posix_memalign), check and free, and hand a
 *   quarter of their blocks to the others to free (remote frees of guarded
 *   blocks), while short-lived threads come and go.  No block may be
 *   corrupted, every guarded block's malloc_usable_size is its size, and
 *   about one allocation in 20 of 16 bytes or more is guarded (the rate
 *   holds with the profiler taking its samples from the same countdown).
 * The process must end with no report: a guarded block freed twice or
 * touched after free would have killed it. */
#include "stress.h"

#pragma weak tide_block_info

#define SLOTS 128
#define SHARED 64

/* Blocks handed between threads and their sizes, each slot under its lock
 * (a block and its size must be taken together). */
static void *shared[SHARED];
static size_t shared_n[SHARED];
static pthread_mutex_t shared_lock[SHARED] = { [0 ... SHARED - 1] = PTHREAD_MUTEX_INITIALIZER };
static atomic_long n_allocs, n_guarded;     /* allocations of 16 bytes or more, and guarded ones */

static bool is_guarded(void *p)
{
    struct tide_block_info bi;
    return tide_block_info && tide_block_info(p, &bi) == TIDE_BLOCK_LIVE && bi.block.size_class == TIDE_CLASS_GUARDED;
}

/* Allocates about *np bytes through a random entry point and fills them;
 * *np becomes the size filled (aligned_alloc rounds it up to 64). */
static void *alloc_any(th_rng *r, size_t *np)
{
    void *p = NULL;
    size_t n = *np;
    switch (th_rand(r) % 5) {
    case 0: p = malloc(n); break;
    case 1: p = calloc(1, n); break;
    case 2: p = realloc(malloc(n / 2 + 1), n); break;
    case 3: p = aligned_alloc(64, (n + 63) & ~(size_t)63); n = (n + 63) & ~(size_t)63; break;
    default:
        if (posix_memalign(&p, 32, n) != 0)
            p = NULL;
        break;
    }
    if (!p) {
        st_report("allocation of %zu bytes failed", n);
        return NULL;
    }
    if (n >= 16) {
        atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
        if (is_guarded(p)) {
            atomic_fetch_add_explicit(&n_guarded, 1, memory_order_relaxed);
            if (malloc_usable_size(p) != n)
                st_report("guarded block %p of %zu bytes: malloc_usable_size %zu", p, n, malloc_usable_size(p));
        }
    }
    th_fill(p, n, TH_SEED(p, n));
    *np = n;
    return p;
}

static void check_free(void *p, size_t n, const char *who)
{
    if (!th_verify(p, n, TH_SEED(p, n)))
        st_report("%s: block %p of %zu bytes corrupted", who, p, n);
    free(p);
}

static void *worker(void *arg)
{
    th_rng r = { th_mix((uint64_t)(uintptr_t)arg) | 1 };
    void *p[SLOTS] = { 0 };
    size_t n[SLOTS] = { 0 };
    long ops = st_ops(200000);
    for (long i = 0; i < ops && !st_failed(); i++) {
        int k = (int)(th_rand(&r) % SLOTS);
        if (p[k]) {
            if (th_rand(&r) % 4 == 0) {  /* hand it over; free what was there */
                int s = (int)(th_rand(&r) % SHARED);
                pthread_mutex_lock(&shared_lock[s]);
                void *old = shared[s];
                size_t on = shared_n[s];
                shared[s] = p[k];
                shared_n[s] = n[k];
                pthread_mutex_unlock(&shared_lock[s]);
                if (old)
                    check_free(old, on, "remote");
            } else if (th_rand(&r) % 3 == 0) {  /* grow or shrink in place or by moving */
                size_t m = st_rand_size(&r);
                if (!th_verify(p[k], n[k], TH_SEED(p[k], n[k])))
                    st_report("block %p of %zu bytes corrupted before realloc", p[k], n[k]);
                char *q = realloc(p[k], m);
                if (!q) {
                    st_report("realloc to %zu failed", m);
                    continue;
                }
                th_fill(q, m, TH_SEED(q, m));
                p[k] = q;
                n[k] = m;
                continue;
            } else {
                check_free(p[k], n[k], "local");
            }
            p[k] = NULL;
        }
        n[k] = st_rand_size(&r);
        if (n[k] > 256 * KiB)
            n[k] = 256 * KiB;
        p[k] = alloc_any(&r, &n[k]);
    }
    for (int k = 0; k < SLOTS; k++)
        if (p[k])
            check_free(p[k], n[k], "final");
    return NULL;
}

static void *short_lived(void *arg)
{
    th_rng r = { th_mix((uint64_t)(uintptr_t)arg) | 1 };
    for (int i = 0; i < 200; i++) {
        size_t m = th_rand_range(&r, 16, 4096);
        void *q = alloc_any(&r, &m);
        if (q)
            check_free(q, m, "short-lived");
    }
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 40 && !st_failed(); i++) {
        pthread_t t;
        if (!st_spawn(&t, short_lived, (void *)(uintptr_t)(1000 + i)))
            break;
        st_join(t);
    }
    return NULL;
}

static void mixed(void)
{
    pthread_t t[5];
    for (int i = 0; i < 4; i++)
        st_spawn(&t[i], worker, (void *)(uintptr_t)(i + 1));
    st_spawn(&t[4], churn, NULL);
    for (int i = 0; i < 5; i++)
        st_join(t[i]);
    for (int s = 0; s < SHARED; s++) {
        if (shared[s])  /* the workers are joined: no lock needed */
            check_free(shared[s], shared_n[s], "left over");
        shared[s] = NULL;
    }
    st_check_errors();
    long a = atomic_load(&n_allocs), g = atomic_load(&n_guarded);
    /* one in 20, less the few whose slot was not free and the profile's
     * samples (their own pages); binomial: a generous band */
    CHECKF(g * 20 > a * 6 / 10 && g * 20 < a * 14 / 10, "%ld of %ld allocations guarded, want about 1 in 20", g, a);
}

int main(void)
{
    if (!th_on_tide(NULL, 0) || !tide_block_info) {
        printf("SKIP mixed: not on tide\n");
        return 0;
    }
    RUN(mixed);
    return th_summary();
}
