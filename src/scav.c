/* scav.c — the scavenger: a background thread that gives free memory back
 * to the OS once it has stayed free for TIDE_CONF decay_ms.
 *
 * What it returns: free page runs of the chunks (MADV_DONTNEED or, with
 * purge=free, MADV_FREE) and cached huge mappings (unmapped), each once it
 * has been free for the decay delay, so that a program that frees and
 * allocates again at a steady rate reuses warm pages and never pays for
 * purging and faulting them in again; and the empty spans of exited threads
 * (the abandoned-span sweep), which become free runs in turn.
 *
 * The thread is started lazily, the first time something is left to
 * return, from an entry point with no tide lock held and no heap operation
 * under way (pthread_create allocates); in a forked child it is started
 * again the same way.  It sleeps until the next free run falls due, and
 * with nothing dirty until woken.  It never allocates and blocks every
 * signal.  decay_ms=0 purges in the freeing thread at once and needs no
 * thread; decay_ms=-1 never purges. */
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>

#include "tide_internal.h"

enum { SCAV_NONE = 0, SCAV_WANTED = 1, SCAV_STARTING = 2, SCAV_RUNNING = 3, SCAV_FAILED = 4 };
static _Atomic int scav_state;
static _Atomic bool scav_asleep;      /* waiting with nothing due: needs a wake-up */
static pthread_mutex_t scav_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scav_cv;

static uint64_t ms_until(uint64_t due, uint64_t now)
{
    return due > now ? due - now : 0;
}

static void *scav_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "tide-scavenger", 0, 0, 0);
    uint64_t decay = (uint64_t)tidei_opt.decay_ms;
    for (;;) {
        uint64_t now = tidei_now_ms(), next;
        tidei_abandoned_sweep();
        tidei_arena_purge(now, decay, &next);
        pthread_mutex_lock(&scav_mu);
        if (next == UINT64_MAX) {
            atomic_store_explicit(&scav_asleep, true, relaxed);
            pthread_cond_wait(&scav_cv, &scav_mu);
            atomic_store_explicit(&scav_asleep, false, relaxed);
        } else {
            /* at least a tenth of the delay between rounds: a run freed
             * just after this one falls due with the next batch */
            uint64_t wait = ms_until(next, now);
            if (wait < decay / 10)
                wait = decay / 10;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&scav_cv, &scav_mu, &ts);
        }
        pthread_mutex_unlock(&scav_mu);
    }
    return NULL;
}

/* Something is left to return (called under the arena lock, so it only
 * takes note or wakes a sleeping scavenger; it never starts a thread). */
void tidei_scav_wanted(void)
{
    int st = atomic_load_explicit(&scav_state, relaxed);
    if (st == SCAV_NONE) {
        atomic_compare_exchange_strong_explicit(&scav_state, &st, SCAV_WANTED, relaxed, relaxed);
    } else if (st == SCAV_RUNNING && atomic_load_explicit(&scav_asleep, relaxed)) {
        pthread_mutex_lock(&scav_mu);
        pthread_cond_signal(&scav_cv);
        pthread_mutex_unlock(&scav_mu);
    }
}

/* Starts the scavenger if it is wanted and not running.  Called from entry
 * points with no tide lock held and no heap operation under way. */
void tidei_scav_start_slow(void)
{
    int st = SCAV_WANTED;
    if (!atomic_compare_exchange_strong_explicit(&scav_state, &st, SCAV_STARTING, acq_rel, relaxed))
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&scav_cv, &ca);
    pthread_condattr_destroy(&ca);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  /* the new thread inherits it */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t t;
    int e = errno;
    bool ok = pthread_create(&t, &attr, scav_main, NULL) == 0;
    errno = e;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store_explicit(&scav_state, ok ? SCAV_RUNNING : SCAV_FAILED, release);
}

/* In a forked child: the scavenger did not survive the fork; start again
 * (lazily) if there is anything to return. */
void tidei_scav_after_fork_child(void)
{
    pthread_mutex_init(&scav_mu, NULL);
    atomic_store_explicit(&scav_asleep, false, relaxed);
    int st = atomic_load_explicit(&scav_state, relaxed);
    atomic_store_explicit(&scav_state, st == SCAV_NONE ? SCAV_NONE : SCAV_WANTED, relaxed);
}

bool tidei_scav_is_wanted(void)
{
    return atomic_load_explicit(&scav_state, relaxed) == SCAV_WANTED;
}
