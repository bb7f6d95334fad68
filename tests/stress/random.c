/* stress/random.c — threads allocating random sizes with content checks.
 *
 * NTHREADS threads each run a fixed number of operations (not a time limit)
 * on a table of live blocks: allocate a random size (1 B .. 1 MiB, mostly
 * small, and now and then a huge block of up to 12 MiB) through malloc,
 * calloc, aligned_alloc or posix_memalign (alignments 16 B .. 64 KiB), or
 * realloc a live block to a random size; fill every block with a pattern
 * derived from its address and size, and verify the pattern before every
 * free or realloc.  One operation in sixteen is an exchange: the thread
 * swaps a block into a global exchange table and frees whatever another
 * thread left there, so a good part of the frees are remote.  Proves: no
 * block is handed out twice, no free or realloc damages another block,
 * alignment and usable size are as promised, under concurrency.
 *
 * realloc_chains: threads take one block each through a fixed chain of
 * sizes that crosses every boundary (small classes, large page runs grown
 * and shrunk in place, huge mappings grown, shrunk and moved with mremap)
 * and back, checking the kept prefix at every step. */
#include "stress.h"

#define NTHREADS 4
#define SLOTS 2000
#define OPS 300000
#define XCHG 256

static _Atomic(st_blk *) xchg[XCHG];  /* blocks in transit between threads (boxed) */

static size_t rand_size(th_rng *r)
{
    uint64_t k = th_rand(r) % 4000;
    if (k < 3200) return th_rand_range(r, 1, 256);
    if (k < 3840) return th_rand_range(r, 257, 32 * KiB);
    if (k < 3988) return th_rand_range(r, 32 * KiB + 1, 256 * KiB);
    if (k < 3999) return th_rand_range(r, 256 * KiB + 1, MiB);
    return th_rand_range(r, 4 * MiB + 1, 12 * MiB);      /* huge: mapped on its own */
}

static st_blk new_block(th_rng *r)
{
    size_t n = rand_size(r);
    size_t align = 0;
    void *p = NULL;
    switch (th_rand(r) % 8) {
    case 0:
        p = calloc(1, n);
        if (p && !th_is_zero(p, n))
            st_report("calloc(1, %zu) = %p not zeroed", n, p);
        break;
    case 1:
        align = (size_t)64;
        p = aligned_alloc(align, n);
        break;
    case 2:
        align = (size_t)16 << (th_rand(r) % 13);         /* 16 B .. 64 KiB */
        if (posix_memalign(&p, align, n) != 0)
            p = NULL;
        break;
    default:
        p = malloc(n);
        break;
    }
    if (!p) {
        st_report("allocation of %zu bytes (alignment %zu) failed", n, align);
        return (st_blk){ NULL, 0 };
    }
    if (align && !th_aligned(p, align))
        st_report("block %p of %zu bytes not aligned to %zu", p, n, align);
    if (malloc_usable_size(p) < n)
        st_report("usable size of %p: %zu < %zu", p, malloc_usable_size(p), n);
    th_fill(p, n, TH_SEED(p, n));
    return (st_blk){ p, n };
}

static void *worker(void *arg)
{
    th_rng r = { (uint64_t)(uintptr_t)arg * 7919 + 1 };
    st_blk *slot = calloc(SLOTS, sizeof *slot);
    if (!slot) {
        st_report("calloc of the slot table failed");
        return NULL;
    }
    long ops = st_ops(OPS);
    for (long op = 0; op < ops && !st_failed(); op++) {
        int i = (int)(th_rand(&r) % SLOTS);
        uint64_t what = th_rand(&r) % 16;
        if (what == 0 && slot[i].p) {
            /* realloc: contents kept up to the smaller size */
            st_realloc(&slot[i], rand_size(&r));
        } else if (what == 1) {
            /* exchange: leave ours, free what another thread left */
            st_blk b = slot[i].p ? slot[i] : new_block(&r);
            slot[i] = st_exchange(&xchg[th_rand(&r) % XCHG], b) ? (st_blk){ NULL, 0 } : b;
        } else {
            st_free(slot[i], "own");
            slot[i] = new_block(&r);
        }
    }
    for (int i = 0; i < SLOTS; i++)
        st_free(slot[i], "own");
    free(slot);
    return NULL;
}

static void random_threads(void)
{
    pthread_t t[NTHREADS];
    int n = 0;
    for (int i = 0; i < NTHREADS; i++)
        if (st_spawn(&t[n], worker, (void *)(uintptr_t)(i + 1)))
            n++;
    for (int i = 0; i < n; i++)
        st_join(t[i]);
    for (int i = 0; i < XCHG; i++) {
        st_blk *b = atomic_exchange(&xchg[i], NULL);
        if (b) {
            st_free(*b, "left in exchange");
            free(b);
        }
    }
    st_check_errors();
}

/* ---- realloc chains ---- */

static const size_t chain[] = {
    1, 24, 100, 1000, 5000, 40 * KiB, 64 * KiB, 70 * KiB, 200 * KiB, 180 * KiB, 1 * MiB,
    3 * MiB, 4 * MiB, 4 * MiB + 1, 6 * MiB, 20 * MiB, 9 * MiB, 9 * MiB + 4096, 5 * MiB,
    4 * MiB, 2 * MiB, 300 * KiB, 65 * KiB, 33 * KiB, 2000, 16, 0,
};

static void *chain_worker(void *arg)
{
    th_rng r = { (uint64_t)(uintptr_t)arg * 31 + 5 };
    long rounds = st_ops(10);
    for (long k = 0; k < rounds && !st_failed(); k++) {
        size_t n = 8;
        void *p = malloc(n);
        if (!p) {
            st_report("malloc(8) failed");
            return NULL;
        }
        th_fill(p, n, 1000 + k);
        uint64_t seed = 1000 + (uint64_t)k;
        size_t skip = (size_t)(th_rand(&r) % 3);   /* threads go through the chain at different paces */
        for (size_t i = skip; chain[i] && !st_failed(); i += 1 + (th_rand(&r) % 2)) {
            size_t m = chain[i];
            void *q = realloc(p, m);
            if (!q) {
                st_report("realloc %zu -> %zu failed", n, m);
                return NULL;                        /* (p leaks: the test has failed) */
            }
            if (!th_verify(q, n < m ? n : m, seed))
                st_report("realloc %zu -> %zu (to %p) lost contents", n, m, q);
            p = q;
            n = m;
            seed = TH_SEED(p, n) ^ (uint64_t)i;
            th_fill(p, n, seed);
            if (malloc_usable_size(p) < n)
                st_report("usable size of %p: %zu < %zu", p, malloc_usable_size(p), n);
            if (chain[i + 1] == 0)
                break;
        }
        if (!th_verify(p, n, seed))
            st_report("block %p of %zu bytes corrupted before free", p, n);
        free(p);
    }
    return NULL;
}

static void realloc_chains(void)
{
    pthread_t t[3];
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (st_spawn(&t[n], chain_worker, (void *)(uintptr_t)(i + 1)))
            n++;
    for (int i = 0; i < n; i++)
        st_join(t[i]);
    st_check_errors();
}

int main(void)
{
    RUN(on_tide);
    RUN(random_threads);
    RUN(realloc_chains);
    return th_summary();
}
