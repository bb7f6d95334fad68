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
 * again the same way.  It sleeps until the next free run falls due; with
 * nothing to do for TIDE_SCAV_LINGER_MS it ends, and the next wish starts
 * another (which joins it first, for its stack).  It ends at once when
 * the program's threads have all ended (tidei_scav_thread_exits): glibc
 * ends a process with its last thread, and a scavenger that stayed would
 * keep alive for good a program whose main called pthread_exit.  It
 * never allocates and blocks every signal.  decay_ms=0 purges in the freeing thread at once and needs no
 * thread; decay_ms=-1 never purges.
 *
 * Idle threads.  Memory cached in a live thread's heap (empty spans it
 * keeps, frees other threads made into its spans) is taken back by the
 * scavenger itself once the heap has shown no activity for a fifth of the
 * decay delay (TIDE_SCAV_IDLE_PARTS), with no signal and no help from the
 * thread: tidei_heap_reclaim
 * (heap.c) takes the heap's lock, which only its owner's slow paths take,
 * retires every span with no live block that the owner's fast paths cannot
 * reach, and for the direct spans (which a malloc fast path may be popping
 * from) swaps them out and then uses a fence: membarrier(2)
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED, which runs a memory barrier on every
 * CPU that runs a thread of the process and leaves sleeping threads alone
 * (so no system call of theirs is interrupted), or the embedder's thread
 * suspender (tide_set_thread_suspender).  The scavenger registers for
 * membarrier once, from its own thread; where the kernel refuses it (an old
 * kernel, a seccomp filter), idle threads keep one span per size class in
 * use and everything else still comes back (verbose=1 says so once).
 * tide installs no signal handler for any of this.
 *
 * Owns the scavenger thread and its state (tidei_scav_*, tidei_decay_ms)
 * and the embedder's suspender.  Locks: scav_mu (its sleep; a leaf), and
 * tidei_heaps_lock while it goes through the heaps, under which it only
 * trylocks a heap's lock (tidei_heap_reclaim); the page allocator's
 * purges take the arena lock themselves.  It decides whether a heap is
 * idle from tidei_heap_activity (heap.c), not from the stats. */
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "tide_internal.h"

_Atomic int tidei_scav_state;        /* TIDE_SCAV_* */
_Atomic bool tidei_scav_asleep;      /* waiting with nothing due: needs a wake-up */
_Atomic bool tidei_scav_poked;       /* something was wanted since the round began */
#define scav_state tidei_scav_state
#define scav_asleep tidei_scav_asleep
static pthread_mutex_t scav_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scav_cv;
static bool scav_cv_ready;           /* scav_cv made (the starter's, in STARTING) */
static pthread_t scav_thread;        /* the last scavenger started in this process (scav_mu) */
static bool scav_joinable;           /* scav_thread exists and was not joined (scav_mu) */
static _Atomic bool main_gone;       /* the program's first thread has ended (pthread_exit) */
static _Atomic int exit_checks;      /* rounds left that look soon whether the scavenger is alone */

_Atomic long tidei_decay_ms = TIDE_DECAY_MS_DEFAULT;   /* TIDE_CONF decay_ms, then tide_set_decay_ms */

tide_export long tide_set_decay_ms(long ms)
{
    if (ms < -1 || ms > TIDE_DECAY_MS_MAX) {
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

/* ---- the fences of tidei_heap_reclaim ---- */

/* membarrier: 0 not tried yet in this process, 1 registered, -1 refused. */
static _Atomic int mb_state;

/* Whether membarrier's private expedited barrier may be used; registers
 * for it once. */
static bool mb_ready(void)
{
    int st = atomic_load_explicit(&mb_state, acquire);
    if (st)
        return st > 0;
    int e = errno;
    /* registering costs some ms once threads exist: from the scavenger,
     * or from tide_trim, never from malloc */
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
    int why = errno;
    errno = e;
    st = r == 0 ? 1 : -1;
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&mb_state, &expected, st, acq_rel, acquire) && st < 0 &&
        tidei_opt.verbose)
        tidei_warn("tide: membarrier refused (errno %d): idle threads keep one span per size class\n", why);
    return atomic_load_explicit(&mb_state, acquire) > 0;
}

/* A memory barrier on every CPU that runs a thread of the process: h's
 * owner has either seen the swap of its direct spans or is inside a malloc
 * that the caller then sees (tidei_heap_reclaim). */
static bool fence_membarrier(tide_heap_t *h)
{
    (void)h;
    int e = errno;
    bool ok = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
    errno = e;
    return ok;
}

/* Stopping the thread and letting it go is a full barrier on its side.
 * tidei_heaps_lock held (h->sus_handle stays valid). */
static bool fence_suspend(tide_heap_t *h)
{
    struct tide_thread_suspender sp = suspender;
    if (!h->sus_handle || sp.suspend(h->sus_handle, sp.arg) != 0)
        return false;
    sp.resume(h->sus_handle, sp.arg);
    return true;
}

/* The fence for other threads' heaps: the suspender if the embedder set
 * one, else membarrier, else none (direct spans are kept). */
static bool (*reclaim_fence(void))(tide_heap_t *)
{
    if (atomic_load_explicit(&have_suspender, acquire))
        return fence_suspend;
    return mb_ready() ? fence_membarrier : NULL;
}

/* ---- idle heaps ---- */

/* Looks at heap h for reclaim_idle: takes back what it caches if it has
 * been idle for idle ms (with reclaim, tidei_heap_reclaim or
 * tidei_heap_reclaim_shared, as thread me), and lowers *next_ms to when
 * it may fall idle.  Returns whether h holds spans and is watched. */
static bool watch_heap(tide_heap_t *h, uint64_t now, uint64_t idle, uint64_t *next_ms,
                       bool (*reclaim)(tide_heap_t *h, bool (*fence)(tide_heap_t *), int me),
                       bool (*fence)(tide_heap_t *), int me)
{
    uint64_t act = tidei_heap_is_shared(h) ? tidei_heap_shared_activity(h) : tidei_heap_activity(h);
    if (act != h->scav_activity) {
        h->scav_activity = act;
        h->scav_since_ms = now;
        h->scav_released = false;
    }
    bool shared = tidei_heap_is_shared(h);
    if (h->scav_released) {
        /* a thread heap released while other threads still freed into it
         * (the frees of a burst go on after its thread fell idle) is looked
         * at again when more came: they stayed on its spans otherwise */
        if (shared || !atomic_load_explicit(&h->remote_in, relaxed))
            return false;
        h->scav_released = false;
    }
    if (tidei_heap_n_spans(h) == 0)
        return false;
    if (now - h->scav_since_ms < idle) {
        if (h->scav_since_ms + idle < *next_ms)
            *next_ms = h->scav_since_ms + idle;
        return true;
    }
    if (!shared)  /* cleared first: a free the reclaim does not see sets it again */
        atomic_exchange_explicit(&h->remote_in, false, acq_rel);
    if (reclaim(h, fence, me)) {
        h->scav_released = true;
        /* what it gave back is purged in the next round, soon */
        if (now + TIDE_SCAV_RECLAIMED_MS < *next_ms)
            *next_ms = now + TIDE_SCAV_RECLAIMED_MS;
    } else {
        h->scav_since_ms = now;  /* its lock was taken: busy after all */
    }
    return true;
}

static bool reclaim_shared(tide_heap_t *h, bool (*fence)(tide_heap_t *), int me)
{
    (void)fence;
    (void)me;
    return tidei_heap_reclaim_shared(h);
}

/* Takes back what heaps idle for a part of the decay delay cache
 * (TIDE_SCAV_IDLE_PARTS): every thread's, and the shared heaps (heap.c).
 * Sets *next_ms to when the next heap may fall idle.  Returns whether some
 * heap holds spans and is watched (the scavenger must keep ticking). */
static bool reclaim_idle(uint64_t now, uint64_t decay, uint64_t *next_ms)
{
    uint64_t idle = decay / TIDE_SCAV_IDLE_PARTS;
    bool watching = false;
    bool (*fence)(tide_heap_t *) = reclaim_fence();
    int me = tidei_os_gettid();  /* the name this thread holds heap locks by */
    pthread_mutex_lock(&tidei_heaps_lock);
    for (tide_heap_t *h = tidei_heaps; h; h = h->next_all)
        if (h->has_thread)
            watching |= watch_heap(h, now, idle, next_ms, tidei_heap_reclaim, fence, me);
    for (int i = 0; i < TIDE_SHARED_HEAPS; i++)  /* one never used has nothing, and no page to touch */
        if (tidei_heap_shared_ready(&tidei_shared_heaps[i]))
            watching |= watch_heap(&tidei_shared_heaps[i], now, idle, next_ms, reclaim_shared, NULL, me);
    pthread_mutex_unlock(&tidei_heaps_lock);
    return watching;
}

/* tide_trim: the caller's heap and the shared heaps release everything
 * they cache, and every other thread's heap gives back what
 * tidei_heap_reclaim can take (a heap whose thread is in a slow path at
 * that moment is skipped).  True if the caller's heap or a shared heap
 * released a span (what the others release is seen by the arena trim that
 * follows). */
bool tidei_scav_reclaim_all(void)
{
    tide_heap_t *self = tidei_tls_heap;
    bool released = false;
    if (self != &tidei_empty_heap)
        released = tidei_heap_release(self);
    /* the shared heaps' locks come before tidei_heaps_lock */
    for (int i = 0; i < TIDE_SHARED_HEAPS; i++)
        if (tidei_heap_shared_ready(&tidei_shared_heaps[i]))
            released |= tidei_heap_release(&tidei_shared_heaps[i]);
    bool (*fence)(tide_heap_t *) = reclaim_fence();
    int me = tidei_os_gettid();  /* the name this thread holds heap locks by */
    pthread_mutex_lock(&tidei_heaps_lock);
    for (tide_heap_t *h = tidei_heaps; h; h = h->next_all)
        if (h != self && h->has_thread && tidei_heap_n_spans(h))
            tidei_heap_reclaim(h, fence, me);
    pthread_mutex_unlock(&tidei_heaps_lock);
    return released;
}

/* Milliseconds from now until due (0 when it is past). */
static uint64_t ms_until(uint64_t due, uint64_t now)
{
    return due > now ? due - now : 0;
}

/* The scavenger's stack (TIDE_SCAV_STACK_BYTES, the guard page included),
 * mapped once and kept: a forked child's new scavenger runs on the same
 * one, since the parent's does not exist there.  Its frames are tide's
 * memory, not the program's: the leak check skips them
 * (tidei_scav_stack), because dead frames hold the addresses of free
 * ranges the scavenger handled, which may since have become blocks the
 * program leaked.  Above the frames glibc keeps the thread's descriptor
 * and static TLS, which point to blocks of glibc's (the DTV): they stay a
 * root.  scav_stack_top is scav_main's frame, the boundary. */
static _Atomic uintptr_t scav_stack_lo, scav_stack_top;

_Atomic int tidei_scav_tid;          /* the scavenger's thread id (0: none yet) */

/* The time wait ms from now on CLOCK_MONOTONIC (scav_cv's clock), in *ts. */
static const struct timespec *deadline(uint64_t wait, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(wait / 1000);
    ts->tv_nsec += (long)(wait % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
    return ts;
}

/* Whether the scavenger may end, having had nothing to do for
 * TIDE_SCAV_LINGER_MS (TIDE_SCAV_LINGER_GONE_MS once the first thread
 * ended): the state goes back to NONE, so that the next wish starts a new
 * thread (which joins this one first: tidei_scav_start_slow).
 * A wish that came meanwhile keeps it, unless a new thread is already on
 * its way.  Dekker with tidei_scav_wanted: the state is stored before the
 * poke is read, and a wish stores the poke before it reads asleep, which
 * stays true here, so either this thread sees the poke or the wish sees
 * the scavenger asleep and, in its slow part, the state NONE.  scav_mu
 * held. */
static bool scav_leave(void)
{
    atomic_store_explicit(&scav_state, TIDE_SCAV_NONE, seq_cst);
    if (!atomic_load_explicit(&tidei_scav_poked, seq_cst))
        return true;
    int st = TIDE_SCAV_NONE;
    while (!atomic_compare_exchange_weak_explicit(&scav_state, &st, TIDE_SCAV_RUNNING, acq_rel, relaxed))
        if (st == TIDE_SCAV_STARTING)
            return true;
    return false;
}

/* Reads the start of /proc file path into b (size bytes, a string); false
 * if it cannot.  No allocation, no descriptor kept. */
static bool read_proc(const char *path, char *b, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, b, size - 1);
    close(fd);
    b[n > 0 ? n : 0] = 0;
    return n > 0;
}

/* Whether every thread of the program has ended and the scavenger is the
 * only one left: the first thread is a zombie (it called pthread_exit)
 * and the process has two threads, it and this one.  /proc/self is the
 * first thread's on purpose (its state); false if it cannot tell. */
static bool scav_alone(void)
{
    char b[1024];
    if (!read_proc("/proc/self/stat", b, sizeof b))
        return false;
    const char *p = strrchr(b, ')');  /* the name may hold spaces and parentheses */
    if (!p || p[1] != ' ' || p[2] != 'Z' || !read_proc("/proc/self/status", b, sizeof b))
        return false;
    p = strstr(b, "\nThreads:");
    return p && strtol(p + 9, NULL, 10) == 2;
}

/* The scavenger thread: each round reclaims idle heaps, sweeps the
 * abandoned spans and purges what fell due, then sleeps until the next
 * thing falls due or, with nothing dirty, until woken.  After
 * TIDE_SCAV_LINGER_MS with nothing to do, or once the program's threads
 * have all ended, it returns: a thread of tide's must not keep alive a
 * process whose first thread called pthread_exit (glibc ends the process
 * when its last thread ends). */
static void *scav_main(void *arg)
{
    uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
    uintptr_t lo = atomic_load_explicit(&scav_stack_lo, relaxed);
    if (lo && frame - lo < TIDE_SCAV_STACK_BYTES)
        atomic_store_explicit(&scav_stack_top, frame, relaxed);
    atomic_store_explicit(&tidei_scav_tid, tidei_os_gettid(), relaxed);
    (void)arg;
    prctl(PR_SET_NAME, "tide-scavenger", 0, 0, 0);
    mb_ready();  /* registers for membarrier from here, once */
    struct timespec ts;
    for (;;) {
        /* the program's threads have all ended: the process ends when
         * this one does (glibc's last thread calls exit(0)) */
        if (atomic_load_explicit(&main_gone, relaxed) && scav_alone()) {
            pthread_mutex_lock(&scav_mu);
            atomic_store_explicit(&scav_asleep, true, seq_cst);
            atomic_store_explicit(&scav_state, TIDE_SCAV_NONE, seq_cst);
            break;
        }
        atomic_store_explicit(&tidei_scav_poked, false, seq_cst);  /* this round sees what came before */
        long d = tidei_decay();  /* tide_set_decay_ms may change it */
        uint64_t decay = d > 0 ? (uint64_t)d : 0;
        uint64_t now = tidei_os_now_ms(), next = UINT64_MAX, next_heap = UINT64_MAX;
        bool watching = false;
        if (d >= 0) {
            watching = reclaim_idle(now, decay, &next_heap);
            tidei_heap_sweep_abandoned();
            tidei_arena_purge(now, decay, &next);
        }
        now = tidei_os_now_ms();
        if (next_heap < next)
            next = next_heap;
        /* heaps are watched in steps of a part of the delay: one idle since
         * just after a look is seen at most that late */
        if (watching && next > now + decay / TIDE_SCAV_WATCH_STEPS)
            next = now + decay / TIDE_SCAV_WATCH_STEPS;
        /* after the program's first thread ended, look again soon whether
         * the others have too (tidei_scav_thread_exits) */
        int checks = atomic_load_explicit(&exit_checks, relaxed);
        if (checks > 0) {
            atomic_store_explicit(&exit_checks, checks - 1, relaxed);
            uint64_t soon = now + ((uint64_t)1 << (TIDE_SCAV_EXIT_CHECKS - checks));
            if (soon < next)
                next = soon;
        }
        pthread_mutex_lock(&scav_mu);
        if (next == UINT64_MAX) {
            /* a wish that came during the round, when asleep was false,
             * left only the poke: look again instead of sleeping */
            atomic_store_explicit(&scav_asleep, true, seq_cst);
            uint64_t linger = atomic_load_explicit(&main_gone, relaxed) ? TIDE_SCAV_LINGER_GONE_MS : TIDE_SCAV_LINGER_MS;
            int r = 0;
            if (!atomic_load_explicit(&tidei_scav_poked, seq_cst))
                r = pthread_cond_timedwait(&scav_cv, &scav_mu, deadline(linger, &ts));
            /* nothing to do for the while: the thread goes, and the next
             * wish starts another */
            if (r == ETIMEDOUT && !atomic_load_explicit(&tidei_scav_poked, seq_cst) && scav_leave())
                break;
            atomic_store_explicit(&scav_asleep, false, relaxed);
        } else {
            /* a floor between rounds: runs falling due together are
             * purged in one batch */
            uint64_t wait = ms_until(next, now);
            if (wait < TIDE_SCAV_MIN_WAIT_MS && checks <= 0)
                wait = TIDE_SCAV_MIN_WAIT_MS;
            pthread_cond_timedwait(&scav_cv, &scav_mu, deadline(wait, &ts));
        }
        pthread_mutex_unlock(&scav_mu);
    }
    atomic_store_explicit(&tidei_scav_tid, 0, relaxed);
    pthread_mutex_unlock(&scav_mu);
    return NULL;
}

/* A thread of the program is ending (its heap's key destructor).  When it
 * is the first thread (pthread_exit from main), or one that ends after
 * it, the scavenger looks soon, and a few times over the next quarter of
 * a second, whether it is the only thread left (scav_main), so that the
 * process ends with its last thread as without tide. */
void tidei_scav_thread_exits(void)
{
    if (tidei_os_gettid() == getpid())
        atomic_store_explicit(&main_gone, true, relaxed);
    else if (!atomic_load_explicit(&main_gone, relaxed))
        return;
    atomic_store_explicit(&exit_checks, TIDE_SCAV_EXIT_CHECKS, relaxed);
    if (atomic_load_explicit(&scav_state, acquire) == TIDE_SCAV_RUNNING) {
        pthread_mutex_lock(&scav_mu);
        pthread_cond_signal(&scav_cv);
        pthread_mutex_unlock(&scav_mu);
    }
}

/* The page allocator's word that free pages wait to be purged
 * (tidei_arena_set_on_dirty, wired by init.c). */
void tidei_scav_note_dirty(void)
{
    tidei_scav_wanted();
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

/* The scavenger's frames, if it runs on tide's stack: false, or true with
 * [*lo, *hi) set. */
bool tidei_scav_stack(uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t top = atomic_load_explicit(&scav_stack_top, relaxed);
    if (!top)
        return false;
    *lo = atomic_load_explicit(&scav_stack_lo, relaxed);
    *hi = top;
    return true;
}

/* Creates the scavenger thread on tide's stack (own) or on one glibc
 * allocates (the fallback, when the stack cannot be mapped or the
 * thread's static TLS does not fit in it: pthread_create then fails with
 * EINVAL). */
static bool scav_create(bool own)
{
#if defined(__SANITIZE_THREAD__)
    /* TSan's runtime keeps about 900 KiB of static TLS, and it ends the
     * process, rather than failing pthread_create, when a stack it is given
     * cannot hold that: glibc's stack it sizes itself */
    if (own)
        return false;
#endif
    uintptr_t base = atomic_load_explicit(&scav_stack_lo, relaxed);
    if (own && !base) {
        void *p = tidei_os_reserve(TIDE_SCAV_STACK_BYTES);
        if (p && !tidei_os_protect(p, TIDE_PAGE_SIZE, false)) {
            tidei_os_unreserve(p, TIDE_SCAV_STACK_BYTES);
            p = NULL;
        }
        base = (uintptr_t)p;
        atomic_store_explicit(&scav_stack_lo, base, relaxed);
        if (!base)
            return false;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* on tide's stack, joinable: the next one joins it before it runs on
     * that stack; on glibc's, detached (nothing waits for it) */
    if (!own)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* without a stack of tide's, glibc's of its default size: a smaller
     * one fails with EINVAL in a program whose static TLS does not fit */
    bool ok = !own || pthread_attr_setstack(&attr, (void *)(base + TIDE_PAGE_SIZE),
                                            TIDE_SCAV_STACK_BYTES - TIDE_PAGE_SIZE) == 0;
    pthread_t t;
    ok = ok && pthread_create(&t, &attr, scav_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (ok && own) {
        pthread_mutex_lock(&scav_mu);
        scav_thread = t;
        scav_joinable = true;
        pthread_mutex_unlock(&scav_mu);
    }
    return ok;
}

/* Starts the scavenger if it is wanted and not running.  Called from entry
 * points with no tide lock held and no heap operation under way. */
void tidei_scav_start_slow(void)
{
    int st = TIDE_SCAV_WANTED;
    if (!atomic_compare_exchange_strong_explicit(&scav_state, &st, TIDE_SCAV_STARTING, acq_rel, relaxed))
        return;
    pthread_mutex_lock(&scav_mu);
    bool before = scav_joinable;
    pthread_t t = scav_thread;
    scav_joinable = false;
    pthread_mutex_unlock(&scav_mu);
    if (before) {
        if (pthread_equal(pthread_self(), t)) {
            /* the last scavenger, which runs the process's exit (it was
             * its last thread): no other is wanted now */
            atomic_store_explicit(&scav_state, TIDE_SCAV_FAILED, release);
            return;
        }
        /* the one before is on its way out (scav_leave): it leaves the
         * stack this one will run on.  join is a cancellation point. */
        int cs;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
        pthread_join(t, NULL);
        pthread_setcancelstate(cs, NULL);
    }
    atomic_store_explicit(&scav_asleep, false, relaxed);  /* the one before left it true */
    if (!scav_cv_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&scav_cv, &ca);
        pthread_condattr_destroy(&ca);
        scav_cv_ready = true;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  /* the new thread inherits it */
    int e = errno;
    bool ok = scav_create(true) || scav_create(false);
    errno = e;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store_explicit(&scav_state, ok ? TIDE_SCAV_RUNNING : TIDE_SCAV_FAILED, release);
}

/* In a forked child: the scavenger did not survive the fork; start again
 * (lazily) if there is anything to return. */
void tidei_scav_after_fork_child(void)
{
    pthread_mutex_init(&scav_mu, NULL);
    scav_cv_ready = false;  /* the parent's waiter may have left it mid-wait */
    scav_joinable = false;  /* the parent's scavenger is not here to be joined */
    atomic_store_explicit(&main_gone, false, relaxed);  /* the forking thread is the child's first */
    atomic_store_explicit(&exit_checks, 0, relaxed);
    atomic_store_explicit(&scav_asleep, false, relaxed);
    atomic_store_explicit(&mb_state, 0, relaxed);  /* a registration is the parent's, not the child's */
    int st = atomic_load_explicit(&scav_state, relaxed);
    atomic_store_explicit(&scav_state, st == TIDE_SCAV_NONE ? TIDE_SCAV_NONE : TIDE_SCAV_WANTED, relaxed);
}

