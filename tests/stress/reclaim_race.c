/* stress/reclaim_race.c — the scavenger takes idle heaps back while their
 * owners wake up at random, fork and exit (issue 14).
 * th-conf: decay_ms=1
 * th-timeout: 300
 *
 * decay_ms=1: a heap whose thread pauses for a few milliseconds is taken
 * back by the scavenger (pending remote frees collected, empty spans
 * retired, the direct spans swapped out), so reclaims and the owners'
 * wake-ups overlap all the time.  Every block carries a pattern derived
 * from its address and size, checked before it is freed: a span retired
 * under an owner that still used it, a block handed out twice, or a free
 * list torn by a concurrent reclaim shows up as a corrupted block (or a
 * crash).  Under TSan the operation counts are scaled down (st_ops) and
 * the tests show in addition that the reclaim protocol has no data race.
 *
 *   wake_during_reclaim  16 threads, 16 million allocations in all (2 under TSan),
 *       each freed again (32 million block operations), sizes across the
 *       small classes (90 % of 16..256 bytes, 9.5 % up to 4 KiB, 0.5 % up to
 *       64 KiB), some large (1 in 5000, 64 KiB..1 MiB) and now and then huge
 *       (1 in 200000, 5 MiB); one in eight blocks is handed to another
 *       thread through an exchange (its free is remote).  Every thread stops
 *       after 1..3000 operations: seven stops in eight for 0..3 ms (usleep or
 *       nanosleep), one in eight for 5..25 ms, so that its heap is certainly
 *       reclaimed while it sleeps; it wakes up at a random point of the
 *       reclaim and at once makes 32 small allocations in a row (the malloc
 *       fast path on the direct spans a reclaim swaps out), frees them, and
 *       goes on.  Also checked: reclaims happened (after some
 *       long stops the heap owns fewer spans than before them, as
 *       tide_stats_heaps tells), and every block is accounted for at the end
 *       (live_blocks back to its value before the test).
 *   fork_during_reclaim  6 threads run the same workload, stopping after
 *       1..500 operations, while another thread forks st_ops(24) times (at
 *       least 8); each child takes every block left in the exchange (blocks
 *       of threads that do not exist in it, some of heaps being reclaimed at
 *       the fork), checks and frees them, allocates, reallocates and frees
 *       blocks of every kind, pauses 15 ms so that its own scavenger takes
 *       its idle heaps back (decay_ms=1), does it again twice, and exits 0.
 *       A child that hangs (a lock held at the fork) is killed by an alarm.
 *   exit_during_reclaim  2000 short-lived threads (250 under TSan), 8 at a time:
 *       each allocates 100..400 blocks, hands half of them to the others
 *       through the exchange (freeing what it takes out), frees a quarter,
 *       pauses for 0..12 ms (its heap idle: the scavenger may be reclaiming
 *       it just as the thread exits), and exits with the rest still live in
 *       the exchange, to be freed by later threads (frees into the spans of
 *       exited threads).  Every block checked; at the end live_blocks is
 *       back to its value before the test.
 *
 * These tests pass before issue 14 too (the reclaim signal does the work
 * then); they are there to hold the new protocol to the same standard. */
#include "stress.h"

#include <sched.h>
#include <sys/syscall.h>

#include "tide.h"

#pragma weak tide_stats_heaps   /* absent when built without tide (TH_TIDE=0) */

/* ---- blocks, sizes, the exchange ---- */

/* A size: mostly small classes, some large, now and then huge. */
static size_t race_size(th_rng *r)
{
    uint64_t k = th_rand(r) % 200000;
    if (k == 0)
        return 5 * MiB;                                       /* huge: 1 in 200000 */
    if (k < 40)
        return th_rand_range(r, 64 * KiB + 1, 1 * MiB);       /* large: 1 in 5000 */
    if (k < 1000)
        return th_rand_range(r, 4 * KiB + 1, 64 * KiB);       /* 0.5 % */
    if (k < 20000)
        return th_rand_range(r, 257, 4 * KiB);                /* 9.5 % */
    return th_rand_range(r, 16, 256);                         /* 90 % */
}

#define XCHG 512
static _Atomic(st_blk *) xchg[XCHG];

/* Puts b (in a box of its own, itself a small block) into a random slot of
 * the exchange and frees what was there. */
static void hand_over(th_rng *r, st_blk b, const char *who)
{
    st_blk *box = malloc(sizeof *box);
    if (!box) {
        st_report("malloc(box) failed");
        st_free(b, who);
        return;
    }
    *box = b;
    st_blk *old = atomic_exchange(&xchg[th_rand(r) % XCHG], box);
    if (old) {
        st_free(*old, who);
        free(old);
    }
}

/* Frees every block left in the exchange. */
static void drain_exchange(const char *who)
{
    for (int i = 0; i < XCHG; i++) {
        st_blk *b = atomic_exchange(&xchg[i], NULL);
        if (b) {
            st_free(*b, who);
            free(b);
        }
    }
}

static size_t live_blocks(void)
{
    return th_stats().live_blocks;
}

/* Every block the test made is freed: live_blocks is back where it was,
 * give or take the few that glibc keeps for the stacks it caches for new
 * threads (their DTV, which it allocates with malloc). */
#define check_all_freed(live0) do { \
        long d_ = (long)live_blocks() - (long)(live0); \
        CHECKF(d_ >= -16 && d_ <= 16, "live_blocks %zu before the test, %+ld after it (all freed)", (live0), d_); \
    } while (0)

/* ---- pauses ---- */

static void pause_us(th_rng *r, long us)
{
    if (th_rand(r) % 2) {
        usleep((useconds_t)us);
    } else {
        struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* Small spans owned by the calling thread's heap (SIZE_MAX if not found). */
static size_t my_heap_spans(void)
{
    struct tide_heap_stats hs[128];
    if (!tide_stats_heaps)
        return SIZE_MAX;
    size_t n = tide_stats_heaps(hs, 128);
    int me = (int)syscall(SYS_gettid);
    for (size_t i = 0; i < n && i < 128; i++)
        if (hs[i].tid == me)
            return hs[i].n_spans;
    return SIZE_MAX;
}

static atomic_long n_long_stops;     /* long stops made */
static atomic_long n_seen_reclaimed; /* of those, after which the heap owned fewer spans */

/* A random pause: 0..3 ms seven times in eight, else 5..25 ms, around
 * which the heap's spans are counted. */
static void random_pause(th_rng *r)
{
    if (th_rand(r) % 8) {
        pause_us(r, (long)th_rand_range(r, 0, 3000));
        return;
    }
    size_t before = my_heap_spans();
    pause_us(r, (long)th_rand_range(r, 5000, 25000));
    size_t after = my_heap_spans();
    atomic_fetch_add(&n_long_stops, 1);
    if (before != SIZE_MAX && after < before)
        atomic_fetch_add(&n_seen_reclaimed, 1);
}

/* ---- the workload ---- */

/* Right after a pause, when the scavenger may be reclaiming the heap: 32
 * small allocations in a row (the malloc fast path on the direct spans the
 * reclaim swaps out), then freed. */
static void wake_burst(th_rng *r)
{
    st_blk b[32];
    size_t cls = th_rand_range(r, 16, 512);
    for (int i = 0; i < 32; i++)
        b[i] = st_new(i % 4 == 3 ? th_rand_range(r, 16, 512) : cls);
    for (int i = 0; i < 32; i++)
        st_free(b[i], "wake burst");
}

#define SLOTS 128

static atomic_int stop_all;          /* fork_during_reclaim: stop the workers */

typedef struct {
    int id;
    long ops;                        /* allocations to make (0: until stop_all) */
    long max_run;                    /* at most this many between two pauses */
} work_arg;

static void *worker(void *argp)
{
    work_arg *a = argp;
    th_rng r = { th_mix((uint64_t)a->id * 7919 + 1) | 1 };
    st_blk slot[SLOTS];
    memset(slot, 0, sizeof slot);
    long until_pause = (long)th_rand_range(&r, 1, (size_t)a->max_run);
    for (long op = 0; (a->ops ? op < a->ops : !atomic_load_explicit(&stop_all, memory_order_relaxed)); op++) {
        if (st_failed())
            break;
        int i = (int)(th_rand(&r) % SLOTS);
        st_free(slot[i], "own");
        slot[i] = (st_blk){ NULL, 0 };
        st_blk b = st_new(race_size(&r));
        if (th_rand(&r) % 8 == 0)
            hand_over(&r, b, "handed over");
        else
            slot[i] = b;
        if (--until_pause == 0) {
            random_pause(&r);
            wake_burst(&r);
            until_pause = (long)th_rand_range(&r, 1, (size_t)a->max_run);
        }
    }
    for (int i = 0; i < SLOTS; i++)
        st_free(slot[i], "own");
    return NULL;
}

#define N_RACE 16

static void wake_during_reclaim(void)
{
    size_t live0 = live_blocks();
    atomic_store(&n_long_stops, 0);
    atomic_store(&n_seen_reclaimed, 0);
    long total = st_ops(ST_TSAN ? 8000000 : 16000000);  /* TSan: 2 million */
    pthread_t th[N_RACE];
    work_arg args[N_RACE];
    int n = 0;
    for (int i = 0; i < N_RACE; i++) {
        args[i] = (work_arg){ i, total / N_RACE, 3000 };
        if (st_spawn(&th[n], worker, &args[i]))
            n++;
    }
    for (int i = 0; i < n; i++)
        st_join(th[i]);
    drain_exchange("left in the exchange");
    st_check_errors();
    long stops = atomic_load(&n_long_stops), seen = atomic_load(&n_seen_reclaimed);
    fprintf(stderr, "wake_during_reclaim: %ld allocations; %ld long stops, after %ld of them the heap owned fewer "
            "spans\n", total / N_RACE * N_RACE, stops, seen);
    if (TH_TIDE) {
        CHECKF(seen > 0, "no reclaim seen: after none of %ld stops of 5..25 ms did a heap own fewer spans", stops);
        check_all_freed(live0);
    }
}

/* ---- fork ---- */

#define N_FORK_BG 6
#define CHILD_ALARM 60

/* Blocks of every kind, allocated, some reallocated, checked and freed. */
static int child_round(th_rng *r)
{
    st_blk b[64];
    memset(b, 0, sizeof b);
    for (int k = 0; k < 300; k++) {
        int i = (int)(th_rand(r) % 64);
        if (b[i].p && th_rand(r) % 4 == 0) {
            if (!st_realloc(&b[i], race_size(r)))
                return st_child_fail(st_first_error);
        } else {
            st_free(b[i], "child");
            b[i] = st_new(race_size(r));
        }
    }
    st_free(st_new(5 * MiB), "child huge");
    st_free(st_new(300 * KiB), "child large");
    for (int i = 0; i < 64; i++)
        st_free(b[i], "child");
    return st_failed() ? st_child_fail(st_first_error) : 0;
}

static int child_main(int f)
{
    alarm(CHILD_ALARM);
    th_rng r = { th_mix(5000 + (uint64_t)f) | 1 };
    drain_exchange("child: from the exchange");
    if (st_failed())
        return st_child_fail(st_first_error);
    if (child_round(&r))
        return 1;
    usleep(15000);  /* the child's own scavenger takes the idle heaps back */
    if (child_round(&r))
        return 1;
    usleep(15000);
    return child_round(&r);
}

static atomic_int n_forks_done;

static void *forker(void *arg)
{
    int forks = (int)(intptr_t)arg;
    th_rng r = { 4242 };
    for (int f = 0; f < forks && !st_failed(); f++) {
        /* some allocation of its own, and a pause: its heap too is reclaimed */
        st_blk mine[16];
        for (int i = 0; i < 16; i++)
            mine[i] = st_new(race_size(&r));
        for (int i = 0; i < 16; i++)
            st_free(mine[i], "forker");
        pause_us(&r, (long)th_rand_range(&r, 0, 8000));
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            st_report("fork failed: %s", strerror(errno));
            break;
        }
        if (pid == 0)
            _exit(child_main(f));
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        char buf[64];
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            st_report("child %d: %s", f, th_status_str(st, buf, sizeof buf));
        atomic_fetch_add(&n_forks_done, 1);
    }
    return NULL;
}

static void fork_during_reclaim(void)
{
    size_t live0 = live_blocks();
    atomic_store(&stop_all, 0);
    atomic_store(&n_forks_done, 0);
    pthread_t th[N_FORK_BG], ft;
    work_arg args[N_FORK_BG];
    int n = 0;
    for (int i = 0; i < N_FORK_BG; i++) {
        args[i] = (work_arg){ 100 + i, 0, 500 };
        if (st_spawn(&th[n], worker, &args[i]))
            n++;
    }
    int forks = (int)st_ops(24);
    if (forks < 8)
        forks = 8;
    if (st_spawn(&ft, forker, (void *)(intptr_t)forks))
        st_join(ft);
    atomic_store(&stop_all, 1);
    for (int i = 0; i < n; i++)
        st_join(th[i]);
    drain_exchange("left in the exchange");
    st_check_errors();
    CHECKF(atomic_load(&n_forks_done) == forks, "%d of %d forks done", atomic_load(&n_forks_done), forks);
    if (TH_TIDE)
        check_all_freed(live0);
}

/* ---- exit ---- */

#define N_LIVE_SHORT 8

static atomic_int short_next;        /* short-lived threads started so far */
static int short_total;

static void *short_lived(void *arg)
{
    int id = (int)(intptr_t)arg;
    th_rng r = { th_mix(90000 + (uint64_t)id) | 1 };
    int n = (int)th_rand_range(&r, 100, 400);
    st_blk b[400];
    for (int i = 0; i < n; i++)
        b[i] = st_new(th_rand(&r) % 64 == 0 ? th_rand_range(&r, 64 * KiB + 1, 512 * KiB) : race_size(&r));
    /* half to the others, a quarter freed here */
    for (int i = 0; i < n; i += 2) {
        hand_over(&r, b[i], "exchanged by a short-lived thread");
        b[i] = (st_blk){ NULL, 0 };
    }
    for (int i = 1; i < n; i += 4) {
        st_free(b[i], "short-lived");
        b[i] = (st_blk){ NULL, 0 };
    }
    /* idle: the scavenger may be taking the heap back as the thread exits */
    pause_us(&r, (long)th_rand_range(&r, 0, 12000));
    if (th_rand(&r) % 2) {
        st_blk x = st_new(race_size(&r));
        st_free(x, "short-lived, after its pause");
    }
    /* the rest stays live: freed by others after this thread is gone */
    for (int i = 0; i < n; i++)
        if (b[i].p)
            hand_over(&r, b[i], "exchanged by an exiting thread");
    return NULL;
}

/* Each of these keeps N_LIVE_SHORT short-lived threads going in turn. */
static void *short_spawner(void *arg)
{
    (void)arg;
    for (;;) {
        int id = atomic_fetch_add(&short_next, 1);
        if (id >= short_total || st_failed())
            return NULL;
        pthread_t t;
        int e = pthread_create(&t, NULL, short_lived, (void *)(intptr_t)id);
        if (e != 0) {
            st_report("pthread_create: %s", strerror(e));
            return NULL;
        }
        pthread_join(t, NULL);
    }
}

static void exit_during_reclaim(void)
{
    size_t live0 = live_blocks();
    short_total = (int)st_ops(ST_TSAN ? 1000 : 2000);  /* TSan: 250 */
    atomic_store(&short_next, 0);
    pthread_t sp[N_LIVE_SHORT];
    int n = 0;
    for (int i = 0; i < N_LIVE_SHORT; i++)
        if (st_spawn(&sp[n], short_spawner, NULL))
            n++;
    for (int i = 0; i < n; i++)
        st_join(sp[i]);
    drain_exchange("left in the exchange after the threads exited");
    st_check_errors();
    if (TH_TIDE)
        check_all_freed(live0);
}

int main(void)
{
    RUN(on_tide);
    RUN(wake_during_reclaim);
    RUN(fork_during_reclaim);
    RUN(exit_during_reclaim);
    return th_summary();
}
