/* stress/fork.c — fork() while other threads allocate and free.
 *
 * Background threads run a random allocate/free workload, part of it
 * through a shared exchange (remote frees), for as long as the forks go
 * on.  The main thread forks FORKS times, and one background thread forks
 * too (fork from a thread other than main).  Each child, which has only the
 * forking thread and whatever state the others left at the fork:
 *   - allocates, reallocates and frees blocks of every kind (small, large,
 *     huge), checking contents;
 *   - frees "gift" blocks that the background threads allocated before the
 *     forks (remote frees into heaps whose threads do not exist in the
 *     child), checking their contents;
 *   - calls tide_stats_get() and tide_trim() (they take every tide lock);
 *   - starts two threads that allocate and free (not under TSan, which does
 *     not support threads after a multi-threaded fork);
 *   - forks a grandchild that allocates and frees and exits 0;
 *   - exits 0 with exit() (atexit handlers, TLS and key destructors run).
 * A child that hangs (a lock left held at the fork) is killed by an alarm
 * set in it and shows up as "signal 14". */
#include "stress.h"

#include <sched.h>

#define N_BG 3                      /* background threads */
#define FORKS 8                     /* forks by the main thread */
#define BG_FORKS 3                  /* forks by background thread 0 */
#define SLOTS 256                   /* live blocks per background thread */
#define XCHG 64                     /* exchange slots */
#define GIFTS 48                    /* gift blocks per background thread */
#define CHILD_ALARM 120             /* seconds before a stuck child is killed */

static atomic_int stop;
static atomic_int n_ready;          /* background threads that made their gifts */
static atomic_int bg_forks;         /* forks done by background thread 0 */
static atomic_int bg0_done;         /* background thread 0 has left its loop */
static _Atomic(st_blk *) xchg[XCHG];
static st_blk gifts[N_BG][GIFTS];

/* ---- the child ---- */

/* Sizes for the child: mostly small, some large (page runs). */
static size_t child_size(th_rng *r)
{
    return th_rand(r) % 32 == 0 ? th_rand_range(r, 16 * KiB, 128 * KiB) : th_rand_range(r, 1, 2048);
}

static void *child_thread(void *arg)
{
    th_rng r = { th_mix((uint64_t)(uintptr_t)arg) | 1 };
    st_blk b[64] = { { NULL, 0 } };
    for (int k = 0; k < 1000; k++) {
        int i = (int)(th_rand(&r) % 64);
        st_free(b[i], "child thread");
        b[i] = st_new(child_size(&r));
    }
    for (int i = 0; i < 64; i++)
        st_free(b[i], "child thread");
    return NULL;
}

/* Allocation work in a child (or grandchild); returns 0 if all went well. */
static int child_alloc_work(uint64_t seed)
{
    th_rng r = { th_mix(seed) | 1 };
    st_blk b[128] = { { NULL, 0 } };
    for (int k = 0; k < 1000; k++) {
        int i = (int)(th_rand(&r) % 128);
        if (b[i].p && th_rand(&r) % 4 == 0) {
            if (!st_realloc(&b[i], child_size(&r)))
                return st_child_fail(st_first_error);
        } else {
            st_free(b[i], "child");
            b[i] = st_new(child_size(&r));
        }
    }
    st_blk huge = st_new(5 * MiB);
    st_free(huge, "child huge");
    for (int i = 0; i < 128; i++)
        st_free(b[i], "child");
    return st_failed() ? st_child_fail(st_first_error) : 0;
}

static int child_main(int forker)
{
    alarm(CHILD_ALARM);
    if (child_alloc_work(1000 + (uint64_t)forker))
        return 1;
    /* Gifts of every background thread, including ones that may have been
     * in the middle of a malloc or free at the fork. */
    for (int t = 0; t < N_BG; t++)
        for (int k = 0; k < GIFTS; k++)
            st_free(gifts[t][k], "gift");
    if (st_failed())
        return st_child_fail(st_first_error);
    if (TH_TIDE) {
        struct tide_stats s;
        if (tide_stats_get(&s) != 0 || s.mapped_bytes == 0)
            return st_child_fail("tide_stats_get failed");
        st_trim();
    }
    if (!ST_TSAN) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)(i + 5)) != 0)
                return st_child_fail("pthread_create failed");
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        if (st_failed())
            return st_child_fail(st_first_error);
    }
    pid_t g = fork();
    if (g < 0)
        return st_child_fail("fork of grandchild failed");
    if (g == 0)
        exit(child_alloc_work(77));
    int st;
    while (waitpid(g, &st, 0) < 0)
        if (errno != EINTR)
            return st_child_fail("waitpid of grandchild failed");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return st_child_fail("grandchild failed");
    return child_alloc_work(2000 + (uint64_t)forker);
}

/* Forks; the child runs child_main and exits.  Returns the child's wait
 * status, or -1. */
static int fork_and_wait(int forker)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        exit(child_main(forker));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

/* ---- the background threads ---- */

static void *background(void *arg)
{
    int me = (int)(uintptr_t)arg;
    th_rng r = { th_mix((uint64_t)me + 1) | 1 };
    for (int k = 0; k < GIFTS; k++)
        gifts[me][k] = st_new(k % 8 == 7 ? th_rand_range(&r, 64 * KiB, 512 * KiB) : th_rand_range(&r, 1, 1024));
    atomic_fetch_add(&n_ready, 1);
    st_blk *slot = calloc(SLOTS, sizeof *slot);
    if (!slot) {
        st_report("calloc failed");
        return NULL;
    }
    int forks_done = 0;
    for (long op = 0; !atomic_load_explicit(&stop, memory_order_relaxed) && !st_failed(); op++) {
        int i = (int)(th_rand(&r) % SLOTS);
        if (th_rand(&r) % 8 == 0) {
            st_blk b = slot[i].p ? slot[i] : st_new(child_size(&r));
            if (!st_exchange(&xchg[th_rand(&r) % XCHG], b)) {
                slot[i] = b;
                break;
            }
            slot[i] = (st_blk){ NULL, 0 };
        } else {
            st_free(slot[i], "own");
            slot[i] = st_new(child_size(&r));
        }
        if (me == 0 && forks_done < BG_FORKS && op % 5000 == 4999) {
            int st = fork_and_wait(100 + forks_done);
            char buf[64];
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                st_report("child forked by a background thread: %s", th_status_str(st, buf, sizeof buf));
            forks_done++;
            atomic_store(&bg_forks, forks_done);
        }
    }
    if (me == 0)
        atomic_store(&bg0_done, 1);
    for (int i = 0; i < SLOTS; i++)
        st_free(slot[i], "own");
    free(slot);
    return NULL;
}

static void fork_while_allocating(void)
{
    pthread_t t[N_BG];
    int n = 0;
    for (int i = 0; i < N_BG; i++)
        if (st_spawn(&t[n], background, (void *)(uintptr_t)i))
            n++;
    while (atomic_load(&n_ready) < n)
        sched_yield();
    th_rng r = { 12345 };
    st_blk mine[32] = { { NULL, 0 } };
    int forks = (int)st_ops(FORKS);
    if (forks < 4)
        forks = 4;
    for (int f = 0; f < forks && !st_failed(); f++) {
        /* Some allocation by the forking thread too, between forks. */
        for (int k = 0; k < 500; k++) {
            int i = (int)(th_rand(&r) % 32);
            st_free(mine[i], "main");
            mine[i] = st_new(child_size(&r));
        }
        int st = fork_and_wait(f);
        char buf[64];
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d of the main thread: %s", f,
               th_status_str(st, buf, sizeof buf));
    }
    /* Background thread 0 forks every 5000 of its operations: let it do
     * all its forks before stopping the others. */
    while (atomic_load(&bg_forks) < BG_FORKS && !atomic_load(&bg0_done))
        sched_yield();
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        st_join(t[i]);
    for (int i = 0; i < 32; i++)
        st_free(mine[i], "main");
    for (int i = 0; i < XCHG; i++) {
        st_blk *b = atomic_exchange(&xchg[i], NULL);
        if (b) {
            st_free(*b, "left in exchange");
            free(b);
        }
    }
    for (int t2 = 0; t2 < N_BG; t2++)
        for (int k = 0; k < GIFTS; k++)
            st_free(gifts[t2][k], "gift (parent)");
    st_check_errors();
}

int main(void)
{
    RUN(on_tide);
    RUN(fork_while_allocating);
    return th_summary();
}
