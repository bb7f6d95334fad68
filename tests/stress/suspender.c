/* stress/suspender.c — tide_set_thread_suspender: an embedder's way of
 * stopping threads replaces tide's reclaim signal.
 * th-conf: decay_ms=200
 * th-timeout: 120
 *
 * The suspender here is a small stop-the-thread of the kind runtimes have:
 * SIGUSR1 makes the thread wait in its handler until resumed.  Tests:
 *   hook_used_for_idle_threads  threads free a burst (half of it into each
 *       other's spans) and wait on a condition variable; the scavenger must
 *       stop them through the hook (suspend/resume called, paired), take the
 *       pending remote frees and the empty spans back, and never send its
 *       own signal; at thread exit every handle is released.
 *   trim_stops_busy_threads     tide_trim() stops threads that are
 *       allocating and freeing without pause; their blocks stay intact
 *       (a reclaim in the middle of a malloc or free would corrupt them). */
#include "stress.h"

#include <semaphore.h>
#include <signal.h>

#include "tide.h"

typedef struct handle {
    pthread_t t;
    atomic_int stops;            /* suspend calls so far */
    atomic_int resumes;          /* resume calls so far */
    atomic_int in_use;
} handle_t;

#define MAX_HANDLES 64
static handle_t handles[MAX_HANDLES];
static atomic_int n_handles, n_suspend, n_resume, n_release, n_tide_signal;
static __thread handle_t *me;
static sem_t stopped;

static void *sus_self(void *arg)
{
    (void)arg;
    int i = atomic_fetch_add(&n_handles, 1);
    if (i >= MAX_HANDLES)
        abort();
    handles[i].t = pthread_self();
    atomic_store(&handles[i].in_use, 1);
    me = &handles[i];
    /* gcc 12's ThreadSanitizer makes a thread's signal state on the
     * thread's first blocking call, and a signal that lands while it does
     * so is lost (the state is stored with a plain write, not a
     * compare-and-swap): the suspend would wait for it forever.  A busy
     * thread's first blocking call is the sleep in tide's lock wait, which
     * is where a reclaim that holds its lock finds it.  A zero sleep here,
     * before the thread can be stopped, makes that state first. */
    struct timespec zero = { 0, 0 };
    nanosleep(&zero, NULL);
    return &handles[i];
}

static void on_stop(int sig)
{
    (void)sig;
    /* Counts, not a flag: a suspend that follows a resume at once must
     * not be taken for the same stop (the handler may not have seen that
     * resume yet; the new signal waits until it returns). */
    handle_t *h = me;
    int stop = atomic_load(&h->stops);
    sem_post(&stopped);
    while (atomic_load(&h->resumes) < stop) {
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
}

static int sus_suspend(void *th, void *arg)
{
    (void)arg;
    handle_t *h = th;
    atomic_fetch_add(&n_suspend, 1);
    atomic_fetch_add(&h->stops, 1);
    if (pthread_kill(h->t, SIGUSR1) != 0)
        return -1;
    while (sem_wait(&stopped) != 0)
        ;
    return 0;
}

static void sus_resume(void *th, void *arg)
{
    (void)arg;
    atomic_fetch_add(&n_resume, 1);
    atomic_fetch_add(&((handle_t *)th)->resumes, 1);
}

static void sus_release(void *th, void *arg)
{
    (void)arg;
    atomic_fetch_add(&n_release, 1);
    atomic_store(&((handle_t *)th)->in_use, 0);
}

static void on_tide_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&n_tide_signal, 1);
}

static void install(void)
{
    sem_init(&stopped, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    /* tide's own reclaim signal: counted, must never come */
    sa.sa_handler = on_tide_signal;
    sigaction(SIGRTMAX - 2, &sa, NULL);
    struct tide_thread_suspender sp = { sus_self, sus_suspend, sus_resume, sus_release, NULL };
    CHECK(tide_set_thread_suspender(&sp) == 0);
    struct tide_thread_suspender bad = { sus_self, NULL, sus_resume, sus_release, NULL };
    CHECK(tide_set_thread_suspender(&bad) == -1 && errno == EINVAL);
}

/* ---- idle threads ---- */

#define T 3
#define PER (ST_TSAN ? 20000 : 60000)

static st_blk blocks[T][PER];
static pthread_barrier_t allocated, freed;
static st_gate done = ST_GATE_INIT;   /* the idle threads wait here until main opens it */

static void *idle_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    th_rng r = { (uint64_t)t + 11 };
    for (int i = 0; i < PER; i++)
        blocks[t][i] = st_new(th_rand_range(&r, 16, 1500));
    pthread_barrier_wait(&allocated);
    st_free_halves(blocks[t], PER, blocks[(t + 1) % T], PER);
    pthread_barrier_wait(&freed);
    st_gate_wait(&done);
    st_blk b = st_new(100);  /* the heap still works after the reclaim */
    st_free(b, "after");
    return NULL;
}

static void hook_used_for_idle_threads(void)
{
    TIDE_ONLY();
    pthread_t th[T];
    pthread_barrier_init(&allocated, NULL, T);
    pthread_barrier_init(&freed, NULL, T + 1);
    int handles_before = atomic_load(&n_handles), released_before = atomic_load(&n_release);
    for (int t = 0; t < T; t++)
        if (!st_spawn(&th[t], idle_worker, (void *)(intptr_t)t))
            return;
    pthread_barrier_wait(&freed);
    struct tide_stats st;
    for (int i = 0; i < 150; i++) {  /* up to 3 s */
        usleep(20000);
        tide_stats_get(&st);
        if (st.pending_remote_frees == 0)
            break;
    }
    st_gate_open(&done);
    for (int t = 0; t < T; t++)
        st_join(th[t]);
    st_check_errors();
    CHECKF(st.pending_remote_frees == 0, "%zu remote frees still pending in the idle threads' spans",
           st.pending_remote_frees);
    CHECKF(atomic_load(&n_handles) - handles_before == T, "self() called %d times for %d threads",
           atomic_load(&n_handles) - handles_before, T);
    CHECKF(atomic_load(&n_suspend) > 0, "the hook was never used to stop a thread");
    CHECKF(atomic_load(&n_suspend) == atomic_load(&n_resume), "suspend %d times, resume %d times",
           atomic_load(&n_suspend), atomic_load(&n_resume));
    CHECKF(atomic_load(&n_release) - released_before == T, "release_handle called %d times for %d exited threads",
           atomic_load(&n_release) - released_before, T);
    CHECKF(atomic_load(&n_tide_signal) == 0, "tide sent its own reclaim signal %d times", atomic_load(&n_tide_signal));
}

/* ---- busy threads ---- */

static atomic_int stop_busy;

static void *busy_worker(void *arg)
{
    th_rng r = { (uint64_t)(intptr_t)arg };
    st_blk keep[512];
    memset(keep, 0, sizeof keep);
    while (!atomic_load(&stop_busy)) {
        size_t i = th_rand(&r) % 512;
        st_free(keep[i], "busy");
        keep[i] = st_new(th_rand_range(&r, 8, 2000));
    }
    for (int i = 0; i < 512; i++)
        st_free(keep[i], "busy");
    return NULL;
}

static void trim_stops_busy_threads(void)
{
    TIDE_ONLY();
    pthread_t th[2];
    atomic_store(&stop_busy, 0);
    int before = atomic_load(&n_suspend);
    for (int t = 0; t < 2; t++)
        if (!st_spawn(&th[t], busy_worker, (void *)(intptr_t)(t + 3)))
            return;
    for (int i = 0; i < (ST_TSAN ? 50 : 300); i++) {
        usleep(5000);
        tide_trim();
    }
    atomic_store(&stop_busy, 1);
    for (int t = 0; t < 2; t++)
        st_join(th[t]);
    st_check_errors();
    CHECKF(atomic_load(&n_suspend) > before, "tide_trim did not stop the busy threads");
    CHECKF(atomic_load(&n_tide_signal) == 0, "tide sent its own reclaim signal %d times", atomic_load(&n_tide_signal));
}

int main(void)
{
    RUN(on_tide);
    if (TH_TIDE)
        install();
    RUN(hook_used_for_idle_threads);
    RUN(trim_stops_busy_threads);
    return th_summary();
}
