/* scav.c — the scavenger: a background thread that gives free memory back
 * to the OS once it has stayed free for TIDE_CONF decay_ms.
 *
 * What it returns: free page runs of the chunks (MADV_DONTNEED or, with
 * purge=free, MADV_FREE), fully free chunks beyond chunk_cache and the huge
 * cache's free ranges (unmapped: tidei_arena_purge, tidei_huge_purge), each
 * once it has been free for the decay delay, so that a program that frees and
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
 * thread; decay_ms=-1 never purges.
 *
 * Idle threads.  Memory cached in a thread's heap (empty spans it keeps,
 * frees other threads made into its spans) can only be given back by that
 * thread: its malloc and free fast paths touch the heap with no lock and no
 * atomic read-modify-write.  So the scavenger watches every heap's
 * counters; when a heap that holds spans has not changed for the decay
 * delay, it sends its thread the reclaim signal (reclaim_signal, SIGRTMAX-2
 * by default).  The handler runs on that thread, which is by definition not
 * running its own code meanwhile; it releases the heap (tidei_heap_release)
 * unless the thread was inside tide: in a fast path (the interrupted program
 * counter lies in the tide_fast_text section) or anywhere else in tide
 * (tidei_busy, set by every other entry point), in which case it notes the
 * miss and the scavenger asks again later.  A heap is asked once per idle
 * period.  The signal interrupts a blocking system call of the thread; with
 * SA_RESTART most are restarted, but sleeps, poll and epoll_wait return
 * EINTR, as they do for any signal (docs/scavenger.md).  If the program has
 * its own handler on that signal, tide never sends it. */
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucontext.h>

#include "tide_internal.h"

_Atomic int tidei_scav_state;        /* TIDE_SCAV_* */
_Atomic bool tidei_scav_asleep;      /* waiting with nothing due: needs a wake-up */
#define scav_state tidei_scav_state
#define scav_asleep tidei_scav_asleep
static pthread_mutex_t scav_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scav_cv;

/* ---- the reclaim signal ---- */

extern char __start_tide_fast_text[] __attribute__((visibility("hidden")));
extern char __stop_tide_fast_text[] __attribute__((visibility("hidden")));
static _Atomic int reclaim_sig;      /* 0: idle threads are not asked */
__thread bool tidei_keep_direct;     /* releasing a suspended thread's heap: keep direct spans */
_Atomic long tidei_decay_ms = 500;   /* TIDE_CONF decay_ms, then tide_set_decay_ms */

tide_export long tide_set_decay_ms(long ms)
{
    if (ms < -1 || ms > 3600000) {
        errno = EINVAL;
        return -2;
    }
    tidei_init();
    long old = atomic_exchange_explicit(&tidei_decay_ms, ms, relaxed);
    if (ms > 0) {
        /* wakes a scavenger that waits with nothing due, or starts it: what
         * was freed under decay_ms=-1 has its free time and falls due */
        tidei_scav_wanted();
        tidei_busy_enter();
        tidei_scav_start();
        tidei_busy_leave();
    }
    return old;
}

/* ---- the embedder's suspender ---- */

static struct tide_thread_suspender suspender;  /* tidei_heaps_lock */
static _Atomic bool have_suspender;

tide_export int tide_set_thread_suspender(const struct tide_thread_suspender *sp)
{
    if (sp && (!sp->self || !sp->suspend || !sp->resume || !sp->release_handle)) {
        errno = EINVAL;
        return -1;
    }
    tidei_init();
    tidei_busy_enter();
    pthread_mutex_lock(&tidei_heaps_lock);
    if (sp)
        suspender = *sp;
    atomic_store_explicit(&have_suspender, sp != NULL, release);
    pthread_mutex_unlock(&tidei_heaps_lock);
    tidei_busy_leave();
    return 0;
}

/* A thread got heap h: with a suspender, ask for its handle (by the thread
 * itself, no tide lock held). */
void tidei_scav_thread_start(tide_heap_t *h)
{
    if (!atomic_load_explicit(&have_suspender, acquire))
        return;
    tidei_busy_enter();
    pthread_mutex_lock(&tidei_heaps_lock);
    struct tide_thread_suspender sp = suspender;
    pthread_mutex_unlock(&tidei_heaps_lock);
    void *handle = sp.self(sp.arg);
    pthread_mutex_lock(&tidei_heaps_lock);
    h->sus_handle = handle;
    h->busy_addr = &tidei_busy;
    pthread_mutex_unlock(&tidei_heaps_lock);
    tidei_busy_leave();
}

/* h's thread is giving it up: its handle is released (after any scavenger
 * round that uses it, which holds tidei_heaps_lock). */
void tidei_scav_thread_end(tide_heap_t *h)
{
    pthread_mutex_lock(&tidei_heaps_lock);
    void *handle = h->sus_handle;
    struct tide_thread_suspender sp = suspender;
    h->sus_handle = NULL;
    pthread_mutex_unlock(&tidei_heaps_lock);
    if (handle)
        sp.release_handle(handle, sp.arg);
}

/* With h's thread stopped by the suspender: takes back what h caches if the
 * thread is not inside tide.  Inside a malloc or free fast path it can only
 * be before its counters moved (they move before any write), so the
 * counters unchanged since the idle sample and tidei_busy clear mean it
 * has written nothing since; the direct spans, which such a malloc may be
 * about to pop from, are kept.  tidei_heaps_lock held. */
static bool release_suspended(tide_heap_t *h, uint64_t activity_then);

__thread bool tidei_purge_now;       /* runs freed now are purged at once (reclaim) */

/* In a signal handler: whether the thread was interrupted inside tide (a
 * malloc or free fast path, told by the program counter in ucv, or any
 * other entry point, which sets tidei_busy). */
bool tidei_interrupted_inside(void *ucv)
{
    uintptr_t pc = 0;
#if defined(__x86_64__)
    pc = (uintptr_t)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    pc = (uintptr_t)((ucontext_t *)ucv)->uc_mcontext.pc;
#else
    (void)ucv;
    pc = (uintptr_t)__start_tide_fast_text;  /* unknown: always "inside" */
#endif
    return tidei_busy || (pc >= (uintptr_t)__start_tide_fast_text && pc < (uintptr_t)__stop_tide_fast_text);
}

static void on_reclaim(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    tide_heap_t *h = tidei_tls_heap;
    if (h == &tidei_empty_heap)
        return;
    int saved = errno;
    if (tidei_interrupted_inside(ucv)) {
        atomic_store_explicit(&h->reclaim_missed, true, relaxed);
    } else {
        /* the heap has been idle for the decay delay: the pages it gives
         * back are due at once (the scavenger purges them in its next
         * round, a few ms from now) */
        tidei_busy_enter();
        tidei_purge_now = true;
        tidei_heap_release(h);
        tidei_purge_now = false;
        tidei_busy_leave();
        atomic_store_explicit(&h->reclaims, atomic_load_explicit(&h->reclaims, relaxed) + 1, release);
    }
    errno = saved;
}

/* Installs the handler unless the program has one on that signal.  At the
 * scavenger's start or the first tide_trim, once. */
static void reclaim_install(void)
{
    static _Atomic bool done;
    if (atomic_exchange_explicit(&done, true, acq_rel))
        return;
    int sig = (int)tidei_opt.reclaim_signal;
    if (sig < 0)
        sig = SIGRTMAX - 2;
    if (sig == 0)
        return;
    struct sigaction old, sa;
    if (sigaction(sig, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO ? old.sa_sigaction != NULL
                                                                       : old.sa_handler != SIG_DFL))
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_reclaim;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) == 0)
        reclaim_sig = sig;
}

/* Whether the handler is still ours (the program may have replaced it). */
static bool reclaim_ours(void)
{
    struct sigaction cur;
    return reclaim_sig && sigaction(reclaim_sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
           cur.sa_sigaction == on_reclaim;
}

/* A heap's counters summed: changes whenever its thread mallocs or frees. */
__attribute__((no_sanitize("thread"))) static unsigned read_busy(const tide_heap_t *h)
{
    return *h->busy_addr;
}

__attribute__((no_sanitize("thread"))) static uint64_t heap_activity(const tide_heap_t *h)
{
    const volatile tide_heap_counters_t *c = &h->ctr;
    uint64_t sum = (uint64_t)c->sample_left;  /* every malloc moves it */
    for (int i = 0; i < TIDE_N_CLASSES; i++)
        sum += c->malloc[i] + c->free_local[i] + c->free_remote[i];
    return sum;
}

/* SMALL spans the heap owns (its counters; read as heap_activity does). */
__attribute__((no_sanitize("thread"))) static uint64_t heap_spans(const tide_heap_t *h)
{
    const volatile tide_heap_counters_t *c = &h->ctr;
    uint64_t n = 0;
    for (int i = 0; i < TIDE_N_CLASSES; i++)
        n += c->spans[i];
    return n;
}

static bool release_suspended(tide_heap_t *h, uint64_t activity_then)
{
    struct tide_thread_suspender sp = suspender;
    if (sp.suspend(h->sus_handle, sp.arg) != 0)
        return false;
    bool done = false;
    if (read_busy(h) == 0 && heap_activity(h) == activity_then) {
        tidei_keep_direct = true;
        tidei_purge_now = true;
        tidei_heap_release(h);
        tidei_purge_now = false;
        tidei_keep_direct = false;
        done = true;
    }
    sp.resume(h->sus_handle, sp.arg);
    return done;
}

/* Asks the threads of heaps idle for decay ms to release their caches.
 * Sets *next_ms to when the next heap may fall idle.  Returns whether some
 * heap holds spans and is watched (the scavenger must keep ticking). */
static bool reclaim_idle(uint64_t now, uint64_t decay, uint64_t *next_ms)
{
    bool watching = false;
    bool sus = atomic_load_explicit(&have_suspender, acquire);
    if (!reclaim_sig && !sus)
        return false;
    bool ours = !sus && reclaim_sig && reclaim_ours();
    pthread_mutex_lock(&tidei_heaps_lock);
    for (tide_heap_t *h = tidei_heaps; h; h = h->next_all) {
        if (!h->has_thread)
            continue;
        uint64_t act = heap_activity(h);
        if (act != h->scav_activity || atomic_load_explicit(&h->reclaim_missed, relaxed)) {
            atomic_store_explicit(&h->reclaim_missed, false, relaxed);
            h->scav_activity = act;
            h->scav_since_ms = now;
            h->scav_released = false;
        }
        if (h->scav_released || heap_spans(h) == 0)
            continue;
        watching = true;
        if (now - h->scav_since_ms < decay) {
            if (h->scav_since_ms + decay < *next_ms)
                *next_ms = h->scav_since_ms + decay;
            continue;
        }
        /* has_thread under tidei_heaps_lock: the thread has not yet passed
         * the locked part of its exit, so its pthread_t is valid */
        if (h->sus_handle) {
            if (release_suspended(h, act)) {
                h->scav_released = true;
                if (now + 20 < *next_ms)
                    *next_ms = now + 20;
            } else {
                h->scav_since_ms = now;  /* busy: look again after another delay */
            }
        } else if (ours && pthread_kill(h->thread, reclaim_sig) == 0) {
            h->scav_released = true;
            /* purge what the handler gives back soon after */
            if (now + 20 < *next_ms)
                *next_ms = now + 20;
        }
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
    return watching;
}

/* tide_trim: the caller's heap releases now, every other heap is asked and
 * waited for (up to 100 ms: a thread inside tide or blocked with the signal
 * masked does not answer).  True if the caller's heap released a span
 * (what the others release is seen by the arena trim that follows). */
bool tidei_reclaim_all(void)
{
    tide_heap_t *self = tidei_tls_heap;
    bool released = false;
    if (self != &tidei_empty_heap)
        released = tidei_heap_release(self);
    bool sus = atomic_load_explicit(&have_suspender, acquire);
    if (sus) {
        pthread_mutex_lock(&tidei_heaps_lock);
        for (tide_heap_t *h = tidei_heaps; h; h = h->next_all)
            if (h != self && h->has_thread && h->sus_handle && heap_spans(h))
                release_suspended(h, heap_activity(h));
        pthread_mutex_unlock(&tidei_heaps_lock);
        return released;
    }
    reclaim_install();
    if (!reclaim_sig || !reclaim_ours())
        return released;
    enum { MAX_WAIT = 256 };
    tide_heap_t *asked[MAX_WAIT];
    uint32_t before[MAX_WAIT];
    int n = 0;
    pthread_mutex_lock(&tidei_heaps_lock);
    for (tide_heap_t *h = tidei_heaps; h && n < MAX_WAIT; h = h->next_all) {
        if (h == self || !h->has_thread || heap_spans(h) == 0)
            continue;
        before[n] = atomic_load_explicit(&h->reclaims, acquire);
        if (pthread_kill(h->thread, reclaim_sig) == 0)
            asked[n++] = h;
    }
    pthread_mutex_unlock(&tidei_heaps_lock);
    for (int tries = 0; tries < 100; tries++) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += atomic_load_explicit(&asked[i]->reclaims, acquire) == before[i];
        if (!left)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return released;
}

static uint64_t ms_until(uint64_t due, uint64_t now)
{
    return due > now ? due - now : 0;
}

_Atomic int tidei_scav_tid;          /* the scavenger's thread id (0: none yet) */

static void *scav_main(void *arg)
{
    atomic_store_explicit(&tidei_scav_tid, (int)syscall(SYS_gettid), relaxed);
    (void)arg;
    prctl(PR_SET_NAME, "tide-scavenger", 0, 0, 0);
    for (;;) {
        long d = tidei_decay();  /* tide_set_decay_ms may change it */
        uint64_t decay = d > 0 ? (uint64_t)d : 0;
        uint64_t now = tidei_now_ms(), next = UINT64_MAX, next_heap = UINT64_MAX;
        bool watching = false;
        if (d >= 0) {
            watching = reclaim_idle(now, decay, &next_heap);
            tidei_abandoned_sweep();
            tidei_arena_purge(now, decay, &next);
        }
        now = tidei_now_ms();
        if (next_heap < next)
            next = next_heap;
        /* heaps are watched in steps of a tenth of the delay: one idle since
         * just after a look is seen at most that late */
        if (watching && next > now + decay / 10)
            next = now + decay / 10;
        pthread_mutex_lock(&scav_mu);
        if (next == UINT64_MAX) {
            atomic_store_explicit(&scav_asleep, true, relaxed);
            pthread_cond_wait(&scav_cv, &scav_mu);
            atomic_store_explicit(&scav_asleep, false, relaxed);
        } else {
            /* at least 10 ms between rounds: runs falling due together are
             * purged in one batch */
            uint64_t wait = ms_until(next, now);
            if (wait < 10)
                wait = 10;
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

/* The slow part of tidei_scav_wanted: takes note, or wakes the sleeping
 * scavenger; it never starts a thread. */
void tidei_scav_wanted_slow(void)
{
    int st = atomic_load_explicit(&scav_state, relaxed);
    if (st == TIDE_SCAV_NONE) {
        atomic_compare_exchange_strong_explicit(&scav_state, &st, TIDE_SCAV_WANTED, relaxed, relaxed);
    } else if (st == TIDE_SCAV_RUNNING && atomic_load_explicit(&scav_asleep, relaxed)) {
        pthread_mutex_lock(&scav_mu);
        pthread_cond_signal(&scav_cv);
        pthread_mutex_unlock(&scav_mu);
    }
}

/* Starts the scavenger if it is wanted and not running.  Called from entry
 * points with no tide lock held and no heap operation under way. */
void tidei_scav_start_slow(void)
{
    int st = TIDE_SCAV_WANTED;
    if (!atomic_compare_exchange_strong_explicit(&scav_state, &st, TIDE_SCAV_STARTING, acq_rel, relaxed))
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&scav_cv, &ca);
    pthread_condattr_destroy(&ca);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  /* the new thread inherits it */
    reclaim_install();
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
    atomic_store_explicit(&scav_state, ok ? TIDE_SCAV_RUNNING : TIDE_SCAV_FAILED, release);
}

/* In a forked child: the scavenger did not survive the fork; start again
 * (lazily) if there is anything to return. */
void tidei_scav_after_fork_child(void)
{
    pthread_mutex_init(&scav_mu, NULL);
    atomic_store_explicit(&scav_asleep, false, relaxed);
    int st = atomic_load_explicit(&scav_state, relaxed);
    atomic_store_explicit(&scav_state, st == TIDE_SCAV_NONE ? TIDE_SCAV_NONE : TIDE_SCAV_WANTED, relaxed);
}

