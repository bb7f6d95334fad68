/* stress/churn.c — many short-lived threads; blocks outlive their owner.
 *
 * thread_churn: threads are started one after another, at most LIVE at a
 *   time, each allocating a few hundred blocks of random sizes.  A thread
 *   frees some of its blocks itself, leaves the rest in a shared pool, and
 *   frees blocks it takes from the pool: most of those were allocated by
 *   threads that have exited since (frees into abandoned spans, or into
 *   spans another thread adopted).  Every block is checked before it is
 *   freed.  At the end the pool is freed by the main thread, tide_trim()
 *   must leave no abandoned span, the mapped bytes must be back near where
 *   they started, and the heap count must show that heaps of exited threads
 *   are reused (bounded by the threads alive at once, not by the total).
 * detached_churn: the same with detached threads that exit while the main
 *   thread is already starting the next ones, and with blocks passed on
 *   through the pool by threads that never allocate again. */
#include "stress.h"

#include <sched.h>

#define LIVE 6                      /* threads alive at once */
#define POOL 4096                   /* blocks in the shared pool */
#define PER_THREAD 300              /* blocks each thread allocates */

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static st_blk pool[POOL];

/* Swaps b into a random pool slot and returns what was there. */
static st_blk pool_swap(th_rng *r, st_blk b)
{
    size_t i = (size_t)(th_rand(r) % POOL);
    pthread_mutex_lock(&pool_mu);
    st_blk old = pool[i];
    pool[i] = b;
    pthread_mutex_unlock(&pool_mu);
    return old;
}

static void pool_drain(void)
{
    for (size_t i = 0; i < POOL; i++) {
        st_free(pool[i], "pool (main)");
        pool[i] = (st_blk){ NULL, 0 };
    }
}

static void *churner(void *arg)
{
    th_rng r = { th_mix((uint64_t)(uintptr_t)arg) | 1 };
    st_blk own[PER_THREAD];
    size_t n_own = 0;
    for (size_t k = 0; k < PER_THREAD && !st_failed(); k++) {
        st_blk b = st_new(st_rand_size(&r));
        switch (th_rand(&r) % 4) {
        case 0:                     /* freed right away by its owner */
            st_free(b, "own, at once");
            break;
        case 1:                     /* freed by its owner just before exit */
            own[n_own++] = b;
            break;
        default:                    /* left to another thread, one taken in exchange */
            st_free(pool_swap(&r, b), "pool");
            break;
        }
    }
    for (size_t k = 0; k < n_own; k++)
        st_free(own[k], "own, at exit");
    return NULL;
}

static void thread_churn(void)
{
    long total = st_ops(3000);
    st_trim();
    struct tide_stats s0 = th_stats();
    pthread_t t[LIVE];
    bool live[LIVE] = { false };
    for (long i = 0; i < total && !st_failed(); i++) {
        int slot = (int)(i % LIVE);
        if (live[slot]) {
            st_join(t[slot]);
            live[slot] = false;
        }
        live[slot] = st_spawn(&t[slot], churner, (void *)(uintptr_t)(i + 1));
        if (!live[slot])
            break;
    }
    for (int s = 0; s < LIVE; s++)
        if (live[s])
            st_join(t[s]);
    struct tide_stats s1 = th_stats();
    pool_drain();
    st_check_errors();
    if (!TH_TIDE)
        return;
    st_trim();
    struct tide_stats s2 = th_stats();
    /* Heaps are pooled at exit: never more than the threads alive at once
     * (plus the main thread's, a few spare). */
    CHECKF(s1.n_heaps <= s0.n_heaps + LIVE + 2, "%zu heaps after %ld threads (at most %d alive at once): "
           "heaps of exited threads not reused", s1.n_heaps, total, LIVE);
    CHECKF(s2.n_abandoned_spans == 0, "%zu abandoned spans left after every block was freed and tide_trim()",
           s2.n_abandoned_spans);
    CHECKF(s2.committed_bytes <= s0.committed_bytes + 4 * MiB,
           "after all threads exited, every block was freed and tide_trim(): committed %zu MB, at start %zu MB",
           s2.committed_bytes / MiB, s0.committed_bytes / MiB);
    CHECKF(s2.mapped_bytes <= s0.mapped_bytes + 16 * MiB,
           "after all threads exited, every block was freed and tide_trim(): mapped %zu MB, at start %zu MB",
           s2.mapped_bytes / MiB, s0.mapped_bytes / MiB);
}

/* ---- detached threads ---- */

static atomic_int n_running;        /* detached threads not yet finished */

static void *detached(void *arg)
{
    churner(arg);
    atomic_fetch_sub(&n_running, 1);
    return NULL;
}

/* A thread that only frees: takes blocks out of the pool and frees them,
 * then exits having allocated nothing but its heap (if that). */
static void *freer(void *arg)
{
    th_rng r = { th_mix((uint64_t)(uintptr_t)arg + 99) | 1 };
    for (int k = 0; k < 64; k++)
        st_free(pool_swap(&r, (st_blk){ NULL, 0 }), "pool (freer)");
    atomic_fetch_sub(&n_running, 1);
    return NULL;
}

static void detached_churn(void)
{
    long total = st_ops(2000);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < total && !st_failed(); i++) {
        while (atomic_load(&n_running) >= LIVE)
            sched_yield();
        atomic_fetch_add(&n_running, 1);
        pthread_t t;
        int e = pthread_create(&t, &attr, i % 5 == 4 ? freer : detached, (void *)(uintptr_t)(i + 1));
        if (e != 0) {
            atomic_fetch_sub(&n_running, 1);
            FAILF("pthread_create: %s", strerror(e));
            break;
        }
    }
    /* Once n_running is 0 no thread touches the pool any more, but the
     * last ones may still be exiting (their heaps being abandoned) while
     * the pool is freed here: that race is part of the test. */
    while (atomic_load(&n_running) > 0)
        sched_yield();
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&pool_mu);
    pool_drain();
    pthread_mutex_unlock(&pool_mu);
    st_check_errors();
}

int main(void)
{
    RUN(on_tide);
    RUN(thread_churn);
    RUN(detached_churn);
    return th_summary();
}
