/* stress/scavenger.c — memory goes back to the OS when load drops (issue 5).
 * th-conf: decay_ms=200
 * th-timeout: 120
 *
 * RSS is read from /proc/self/statm.  Each test makes a burst of BURST
 * bytes in mixed sizes, frees it, and then checks that the resident set
 * falls back to within 10 % of the burst of where it was before, within a
 * few decay delays (decay_ms=200 here, so the whole program takes seconds):
 *   decay_returns_memory   one thread frees its own blocks;
 *   idle_threads_reclaimed threads free half their blocks and half of
 *                          another thread's, then wait on a condition
 *                          variable: their caches and the frees pending in
 *                          their spans come back only through the
 *                          scavenger's reclaim, with no help from them;
 *   frees_after_reclaim    frees into an idle thread's heap made after the
 *                          scavenger reclaimed it come back too;
 *   reclaim_spares_busy    a thread that keeps allocating and freeing is
 *                          never damaged by the scavenger's reclaims or
 *                          tide_trim from another thread (contents checked);
 *   fork_restarts          a child of a process whose scavenger runs gets
 *                          its own (its burst comes back too).
 * Under TSan the bursts are smaller (ST_TSAN) and the RSS checks are not made
 * (TSan's shadow memory moves RSS); the tests then only show that the
 * scavenger and the owner threads do not race. */
#include "stress.h"

#include <fcntl.h>
#include <sys/wait.h>

#include "tide.h"

#define BURST (ST_TSAN ? ((size_t)16 << 20) : ((size_t)96 << 20))

#define MAX_BLOCKS 400000

static void decay_returns_memory(void)
{
    TIDE_ONLY();
    st_burst_rss m = st_burst_freed(MAX_BLOCKS, BURST, 1, 3000, "decay");
    st_check_errors();
    if (!ST_TSAN)
        CHECKF(m.after <= m.limit, "RSS %ld KiB 3 s after freeing a burst (before %ld, peak %ld): want <= %ld", m.after,
               m.base, m.peak, m.limit);
}

/* ---- idle threads ---- */

/* Waits up to 3 s for both: RSS at most limit, and no remote free pending
 * (RSS may get below the limit before the last idle heap has answered).
 * Returns the RSS, the stats in *st. */
static long wait_reclaimed(long limit, struct tide_stats *st)
{
    long r = st_rss_kb();
    tide_stats_get(st);
    for (int t = 0; t < 150 && (r > limit || st->pending_remote_frees); t++) {
        usleep(20000);
        r = st_rss_kb();
        tide_stats_get(st);
    }
    return r;
}

#define T 3

static st_blk *ttab[T];
static size_t tn[T];
static pthread_barrier_t allocated, freed;
static st_gate done = ST_GATE_INIT;   /* the idle threads wait here until main opens it */

static void *idle_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    tn[t] = st_burst(ttab[t], MAX_BLOCKS / T, BURST / T, 100 + (uint64_t)t);
    pthread_barrier_wait(&allocated);
    /* its own even blocks, and the odd blocks of the next thread */
    int u = (t + 1) % T;
    st_free_halves(ttab[t], tn[t], ttab[u], tn[u]);
    pthread_barrier_wait(&freed);
    st_gate_wait(&done);
    /* alive again after being reclaimed: the heap still works */
    st_blk again[100];
    for (int i = 0; i < 100; i++)
        again[i] = st_new((size_t)(16 + i * 37));
    for (int i = 0; i < 100; i++)
        st_free(again[i], "after reclaim");
    return NULL;
}

static void idle_threads_reclaimed(void)
{
    TIDE_ONLY();
    pthread_t th[T];
    st_gate_close(&done);
    pthread_barrier_init(&allocated, NULL, T);
    pthread_barrier_init(&freed, NULL, T + 1);
    for (int t = 0; t < T; t++)
        ttab[t] = st_map(MAX_BLOCKS / T * sizeof(st_blk));
    long base = st_rss_kb();
    for (int t = 0; t < T; t++)
        if (!st_spawn(&th[t], idle_worker, (void *)(intptr_t)t))
            return;
    pthread_barrier_wait(&freed);
    long peak = st_rss_kb();
    long limit = base + (peak - base) / 10;
    struct tide_stats st;
    long r = wait_reclaimed(limit, &st);
    st_gate_open(&done);
    for (int t = 0; t < T; t++)
        st_join(th[t]);
    st_check_errors();
    CHECKF(st.pending_remote_frees == 0, "%zu remote frees still pending in the idle threads' spans",
           st.pending_remote_frees);
    if (!ST_TSAN)
        CHECKF(r <= limit, "RSS %ld KiB 3 s after idle threads freed a burst (before %ld, peak %ld): want <= %ld", r,
               base, peak, limit);
    for (int t = 0; t < T; t++)
        st_unmap(ttab[t], MAX_BLOCKS / T * sizeof(st_blk));
}

/* ---- frees into a heap the scavenger has already reclaimed ---- */

static st_gate late_go = ST_GATE_INIT;  /* the idle thread waits here until main has freed */
static pthread_barrier_t late_ready;

static void *late_worker(void *arg)
{
    (void)arg;
    tn[0] = st_burst(ttab[0], MAX_BLOCKS / T, BURST / T, 300);
    pthread_barrier_wait(&late_ready);
    st_gate_wait(&late_go);
    return NULL;
}

/* A thread allocates a burst and idles; the main thread frees half of it,
 * waits until the scavenger has reclaimed the idle heap (five decay
 * delays), and only then frees the other half.  Those later frees must
 * come back as well, with the thread still idle: its heap must not be
 * counted as done with (before: they stayed on its spans until the thread
 * ran again, and the burst's second half stayed resident). */
static void frees_after_reclaim(void)
{
    TIDE_ONLY();
    pthread_t th;
    st_gate_close(&late_go);
    pthread_barrier_init(&late_ready, NULL, 2);
    ttab[0] = st_map(MAX_BLOCKS / T * sizeof(st_blk));
    long base = st_rss_kb();
    if (!st_spawn(&th, late_worker, NULL))
        return;
    pthread_barrier_wait(&late_ready);
    long peak = st_rss_kb();
    size_t n = tn[0], half = n / 2;
    for (size_t i = 0; i < half; i++)
        st_free(ttab[0][i], "first half");
    /* the heap idles: the scavenger reclaims it (the first half's spans
     * go back; those holding blocks of both halves keep their frees
     * pending, the owner's to take) and is done with it */
    usleep(1000000);
    for (size_t i = half; i < n; i++)
        st_free(ttab[0][i], "second half");
    long limit = base + (peak - base) / 10;
    struct tide_stats st;
    long r = wait_reclaimed(limit, &st);
    st_gate_open(&late_go);
    st_join(th);
    st_check_errors();
    CHECKF(st.pending_remote_frees == 0, "%zu of the %zu frees made after the reclaim still pending 3 s later in "
           "the idle thread's spans", st.pending_remote_frees, n - half);
    if (!ST_TSAN)
        CHECKF(r <= limit, "RSS %ld KiB 3 s after the second half was freed (before %ld, peak %ld): want <= %ld", r,
               base, peak, limit);
    pthread_barrier_destroy(&late_ready);
    st_unmap(ttab[0], MAX_BLOCKS / T * sizeof(st_blk));
}

/* ---- a busy thread under reclaims ---- */

static atomic_int stop_busy;

static void *busy_worker(void *arg)
{
    th_rng r = { (uint64_t)(intptr_t)arg };
    st_blk keep[256];
    memset(keep, 0, sizeof keep);
    while (!atomic_load(&stop_busy)) {
        size_t i = th_rand(&r) % 256;
        if (keep[i].p)
            st_free(keep[i], "busy");
        keep[i] = st_new(th_rand_range(&r, 8, 3000));
        if (th_rand(&r) % 4096 == 0)
            usleep(300000);  /* idle now and then: long enough to be asked */
    }
    for (int i = 0; i < 256; i++)
        if (keep[i].p)
            st_free(keep[i], "busy");
    return NULL;
}

static void reclaim_spares_busy(void)
{
    TIDE_ONLY();
    pthread_t th[2];
    atomic_store(&stop_busy, 0);
    for (int t = 0; t < 2; t++)
        if (!st_spawn(&th[t], busy_worker, (void *)(intptr_t)(t + 7)))
            return;
    for (int i = 0; i < 20; i++) {
        usleep(100000);
        tide_trim();  /* asks every heap too */
    }
    atomic_store(&stop_busy, 1);
    for (int t = 0; t < 2; t++)
        st_join(th[t]);
    st_check_errors();
}

/* ---- fork ---- */

static void fork_restarts(void)
{
    TIDE_ONLY();
    if (ST_TSAN) {
        th_skip("under TSan: fork in a multi-threaded process");
        return;
    }
    /* make sure the parent's scavenger runs */
    void *p = malloc(200000);
    free(p);
    usleep(50000);
    pid_t pid = fork();
    if (pid == 0) {
        st_blk *tab = st_map(MAX_BLOCKS * sizeof *tab);
        long base = st_rss_kb();
        size_t n = st_burst(tab, MAX_BLOCKS, BURST, 5);
        long peak = st_rss_kb();
        for (size_t i = 0; i < n; i++)
            free(tab[i].p);
        long limit = base + (peak - base) / 10;
        long r = st_wait_rss_below(limit, 3000);
        if (r > limit) {
            fprintf(stderr, "child: RSS %ld KiB after its burst (before %ld, peak %ld)\n", r, base, peak);
            _exit(1);
        }
        _exit(0);
    }
    CHECKF(pid > 0, "fork failed");
    int status = 0;
    waitpid(pid, &status, 0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's burst did not come back (status %#x)", status);
}

int main(void)
{
    RUN(on_tide);
    RUN(decay_returns_memory);
    RUN(idle_threads_reclaimed);
    RUN(frees_after_reclaim);
    RUN(reclaim_spares_busy);
    RUN(fork_restarts);
    return th_summary();
}
