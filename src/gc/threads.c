/* gc/threads.c — the threads of the GC heap: the registry, the stop signal
 * and its handler, stopping and restarting the world, GC_do_blocking,
 * registration through the API, and fork.
 *
 * Stopping threads.  A thread stops in the signal handler (SA_RESTART),
 * saves its registers and stack pointer, acknowledges, and waits on a futex
 * until the collection ends.  A thread inside a GC slow path (`crit`, which
 * may hold a pool lock) stops when it leaves it; one inside tide's malloc
 * (tidei_interrupted_inside) is signalled again a moment later.  A thread
 * in GC_do_blocking, waiting for tidei_gc_threads_lock or unregistering
 * counts as stopped (`blocking`): its stack is scanned from where it
 * entered.  So while the world is stopped no pool, big or table lock is
 * held by a stopped thread, and the collector never takes the arena lock.
 *
 * Locks: tidei_gc_threads_lock (the registry, the recycled structures;
 * held by the collector through a collection, and around fork) is the
 * first of the GC's lock order (gc_internal.h); a thread never takes it
 * inside crit.  Unregistering releases the thread's spans (pool locks)
 * before it takes tidei_gc_threads_lock. */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gc_internal.h"

pthread_mutex_t tidei_gc_threads_lock = PTHREAD_MUTEX_INITIALIZER;
gc_thread_t *tidei_gc_threads;
static gc_thread_t *thread_pool; /* recycled thread structures (tidei_gc_threads_lock) */
size_t tidei_gc_n_threads;
__thread gc_thread_t *tidei_gc_tl;
static pthread_key_t exit_key;   /* destructor unregisters */
static int stop_sig;             /* the stop signal */
static _Atomic unsigned stop_seq;/* odd while the world is stopped */
static _Atomic unsigned n_acked; /* stops acknowledged in this sequence */

static long gc_futex(_Atomic unsigned *addr, int op, unsigned val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* ---- the stop signal ---- */

static void gc_park(gc_thread_t *t, unsigned seq)
{
    atomic_store_explicit(&t->stopped_seq, seq, release);
    atomic_fetch_add_explicit(&n_acked, 1, acq_rel);
    gc_futex(&n_acked, FUTEX_WAKE_PRIVATE, 1, NULL);
    while (atomic_load_explicit(&stop_seq, acquire) == seq)
        gc_futex(&stop_seq, FUTEX_WAIT_PRIVATE, seq, NULL);
}

static tide_noinline void self_stop_at(gc_thread_t *t, uintptr_t sp)
{
    t->sp = sp;
    unsigned seq = atomic_load_explicit(&stop_seq, acquire);
    if ((seq & 1) && atomic_load_explicit(&t->stopped_seq, relaxed) != seq)
        gc_park(t, seq);
}

/* A stop arrived while t was inside crit: it stops now, its registers
 * spilled on its stack. */
tide_noinline void tidei_gc_self_stop(gc_thread_t *t)
{
    t->stop_pending = 0;
    gc_spill_t jb;
    GC_SPILL_REGS(&jb);
    memset(t->regs, 0, sizeof t->regs);
    self_stop_at(t, (uintptr_t)&jb);
    __asm__ volatile("" : : "r"(&jb) : "memory");
}

static void on_stop(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    int e = errno;
    gc_thread_t *t = tidei_gc_tl;
    unsigned seq = atomic_load_explicit(&stop_seq, acquire);
    if (!t || !(seq & 1) || atomic_load_explicit(&t->stopped_seq, relaxed) == seq)
        goto out;
    if (__atomic_load_n(&t->crit, __ATOMIC_RELAXED)) {
        t->stop_pending = 1;
        goto out;
    }
    if (tidei_interrupted_inside(ucv))  /* inside malloc: the collector asks again */
        goto out;
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    for (int i = 0; i < NGREG; i++)
        t->regs[i] = (uintptr_t)uc->uc_mcontext.gregs[i];
    t->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
    t->sp = (uintptr_t)&uc;
#endif
    gc_park(t, seq);
out:
    errno = e;
}

/* The bounds of the calling thread's stack. */
void tidei_gc_stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    *lo = 0;
    *hi = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
            *lo = (uintptr_t)addr;
            *hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&a);
    }
    if (!*hi && getpid() == tidei_os_gettid()) {
        /* the main thread's attributes come from /proc/self/maps, read
         * through malloc, which can fail: glibc's own record of the top of
         * the stack then (what lies above it is the environment) */
        extern void *__libc_stack_end;
        *hi = ((uintptr_t)__libc_stack_end + 7) & ~(uintptr_t)7;
    }
    if (!*hi) {  /* no attributes: from here up to the next page boundary, a guess */
        uintptr_t here = (uintptr_t)&a;
        *hi = (here + (1 << 20)) & ~(uintptr_t)((1 << 20) - 1);
    }
}

/* Registers the calling thread (stack base hi, 0: find it).  Returns its
 * structure, or NULL when memory ran out.  Not inside crit. */
gc_thread_t *tidei_gc_thread_register(uintptr_t hi, bool from_create)
{
    gc_thread_t *t = tidei_gc_tl;
    if (t)
        return t;
    uintptr_t lo = 0, found_hi;
    tidei_gc_stack_bounds(&lo, &found_hi);
    if (!hi)
        hi = found_hi;
    pthread_mutex_lock(&tidei_gc_threads_lock);
    t = thread_pool;
    if (t) {
        thread_pool = t->pool_next;
        memset(t, 0, sizeof *t);
    } else {
        t = tidei_os_map((sizeof *t + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1));
    }
    if (t) {
        t->self = pthread_self();
        t->tid = tidei_os_gettid();
        t->stack_hi = hi;
        t->stack_lo = lo;
        t->tp = tidei_gc_thread_pointer();
        t->from_create = from_create;
        tide_list_push(tidei_gc_threads, t, next, prev);
        __atomic_store_n(&tidei_gc_n_threads, tidei_gc_n_threads + 1, __ATOMIC_RELAXED);
        tidei_gc_tl = t;
    }
    pthread_mutex_unlock(&tidei_gc_threads_lock);
    if (t)
        pthread_setspecific(exit_key, t);
    return t;
}

/* Takes t off the registry.  tidei_gc_threads_lock held. */
static void threads_remove(gc_thread_t *t)
{
    tide_list_remove(tidei_gc_threads, t, next, prev);
    __atomic_store_n(&tidei_gc_n_threads, tidei_gc_n_threads - 1, __ATOMIC_RELAXED);
}

/* Unregisters the calling thread t: its spans go back to their pools. */
static void thread_unregister(gc_thread_t *t)
{
    tidei_gc_allocd_flush(t);
    tidei_gc_crit_enter(t);
    for (int k = 0; k < GK_N; k++)
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            tidei_gc_span_release(t, k, c);
    tidei_gc_crit_leave(t);
    /* leaving: a collection that stops the world now must not wait for us */
    t->blocking_sp = t->stack_hi;
    atomic_store_explicit(&t->blocking, 1, seq_cst);
    pthread_mutex_lock(&tidei_gc_threads_lock);
    threads_remove(t);
    t->pool_next = thread_pool;
    thread_pool = t;
    tidei_gc_tl = NULL;
    pthread_mutex_unlock(&tidei_gc_threads_lock);
}

static void thread_exit_cb(void *arg)
{
    gc_thread_t *t = arg;
    if (t && tidei_gc_tl == t)
        thread_unregister(t);
}

/* ---- stopping the world ---- */

/* Whether t is stopped for seq, or counts as stopped: in GC_do_blocking
 * or unregistering (blocking), where it touches no GC block. */
static bool thread_still(gc_thread_t *t, unsigned seq)
{
    return atomic_load_explicit(&t->stopped_seq, acquire) == seq || atomic_load_explicit(&t->blocking, seq_cst);
}

/* Stops every registered thread but the caller.  tidei_gc_threads_lock held.  A
 * thread signalled just before it entered blocking state may never take
 * the signal (glibc blocks signals while a thread exits): its blocking
 * flag stands for the acknowledgement. */
void tidei_gc_stop_world(void)
{
    unsigned seq = atomic_load_explicit(&stop_seq, relaxed) + 1;
    atomic_store_explicit(&stop_seq, seq, seq_cst);
    gc_thread_t *me = tidei_gc_tl;
    pid_t pid = getpid();
    for (gc_thread_t *t = tidei_gc_threads; t; t = t->next) {
        if (t == me || atomic_load_explicit(&t->blocking, seq_cst))
            continue;
        if (syscall(SYS_tgkill, pid, t->tid, stop_sig) != 0)
            atomic_store_explicit(&t->stopped_seq, seq, relaxed);  /* gone */
    }
    uint64_t last = tidei_gc_now_ns();
    for (;;) {
        unsigned got = atomic_load_explicit(&n_acked, acquire);
        bool all = true;
        for (gc_thread_t *t = tidei_gc_threads; t && all; t = t->next)
            all = t == me || thread_still(t, seq);
        if (all)
            break;
        struct timespec ts = { 0, 200000 };
        gc_futex(&n_acked, FUTEX_WAIT_PRIVATE, got, &ts);
        if (tidei_gc_now_ns() - last > 2000000) {  /* again to those inside malloc */
            last = tidei_gc_now_ns();
            for (gc_thread_t *t = tidei_gc_threads; t; t = t->next)
                if (t != me && !thread_still(t, seq) && !__atomic_load_n(&t->crit, __ATOMIC_RELAXED))
                    syscall(SYS_tgkill, pid, t->tid, stop_sig);
        }
    }
}

void tidei_gc_start_world(void)
{
    atomic_fetch_add_explicit(&stop_seq, 1, seq_cst);
    gc_futex(&stop_seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
}

/* Takes tidei_gc_threads_lock; the caller t (registered, or NULL) counts as
 * stopped while it waits, its registers spilled on its stack: a thread
 * blocked on the lock touches no GC block, and a collector waiting for it
 * to acknowledge a signal would otherwise depend on the signal
 * interrupting the wait (TSan delays it until the lock is taken). */
tide_noinline void tidei_gc_lock_threads(gc_thread_t *t)
{
    if (!t) {
        pthread_mutex_lock(&tidei_gc_threads_lock);
        return;
    }
    gc_spill_t jb;
    GC_SPILL_REGS(&jb);
    t->blocking_sp = (uintptr_t)&jb;
    atomic_store_explicit(&t->blocking, 1, seq_cst);
    pthread_mutex_lock(&tidei_gc_threads_lock);
    atomic_store_explicit(&t->blocking, 0, seq_cst);  /* no collection runs: we hold the lock */
    __asm__ volatile("" : : "r"(&jb) : "memory");
}

/* Where the scan of t's stack starts: the caller's (the collector's) own
 * stack pointer, where a thread in GC_do_blocking (or unregistering, or
 * waiting for tidei_gc_threads_lock) entered that state if it did not stop
 * for this sequence, else where the signal interrupted it. */
uintptr_t tidei_gc_thread_sp(const gc_thread_t *t, uintptr_t my_sp)
{
    if (t == tidei_gc_tl)
        return my_sp;
    if (atomic_load_explicit(&t->blocking, acquire) && atomic_load_explicit(&t->stopped_seq, relaxed) !=
                                                           atomic_load_explicit(&stop_seq, relaxed))
        return t->blocking_sp;
    return t->sp;
}

/* ---- registration through the API ---- */

int tidei_gc_register_thread(uintptr_t base, bool from_create)
{
    tidei_gc_init_once();
    if (tidei_gc_tl)
        return 1;  /* GC_DUPLICATE */
    return tidei_gc_thread_register(base, from_create) ? 0 : -1;
}

int tidei_gc_unregister_thread(void)
{
    gc_thread_t *t = tidei_gc_tl;
    if (!t)
        return 4;  /* GC_NOT_FOUND */
    thread_unregister(t);
    return 0;
}

bool tidei_gc_thread_registered(void)
{
    return tidei_gc_tl != NULL;
}

/* GC_do_blocking: fn runs with the thread counted as stopped. */
tide_noinline void *tidei_gc_do_blocking(void *(*fn)(void *), void *arg)
{
    gc_thread_t *t = tidei_gc_tl;
    if (!t || atomic_load_explicit(&t->blocking, relaxed))
        return fn(arg);
    gc_spill_t jb;
    GC_SPILL_REGS(&jb);
    t->blocking_sp = (uintptr_t)&jb;
    atomic_store_explicit(&t->blocking, 1, seq_cst);
    void *r = fn(arg);
    atomic_store_explicit(&t->blocking, 0, seq_cst);
    unsigned seq;
    while ((seq = atomic_load_explicit(&stop_seq, seq_cst)) & 1)
        gc_futex(&stop_seq, FUTEX_WAIT_PRIVATE, seq, NULL);
    __asm__ volatile("" : : "r"(&jb) : "memory");
    return r;
}

/* GC_call_with_alloc_lock: fn runs while no collection can start. */
void *tidei_gc_with_lock(void *(*fn)(void *), void *arg)
{
    tidei_gc_init_once();
    pthread_mutex_lock(&tidei_gc_threads_lock);
    void *r = fn(arg);
    pthread_mutex_unlock(&tidei_gc_threads_lock);
    return r;
}

int tidei_gc_stop_signal(void)
{
    return stop_sig ? stop_sig : (tidei_opt.gc_signal ? (int)tidei_opt.gc_signal : TIDE_GC_SIGNAL);
}

/* ---- fork ---- */

/* Fork: the world is stopped around it, so that no other thread is inside
 * a GC slow path (which is where pool, big, descriptor and table locks are
 * held): the child finds them all free, and the heap consistent, without
 * the parent taking 250 locks. */
static void gc_atfork_prepare(void)
{
    tidei_gc_lock_threads(tidei_gc_tl);
    tidei_gc_stop_world();
    tidei_gc_mark_fork_prepare();
}

static void gc_atfork_parent(void)
{
    tidei_gc_mark_fork_parent();
    tidei_gc_start_world();
    pthread_mutex_unlock(&tidei_gc_threads_lock);
}

/* In the child after fork: only the calling thread is left.  The others'
 * spans go back to the pools (their lists are copies, valid here). */
static void gc_atfork_child(void)
{
    tidei_gc_mark_fork_child();
    atomic_fetch_add_explicit(&stop_seq, 1, relaxed);  /* nobody to wake */
    /* the other threads are gone: their spans go back to the pools */
    gc_thread_t *me = tidei_gc_tl;
    for (gc_thread_t *t = tidei_gc_threads, *next; t; t = next) {
        next = t->next;
        if (t == me)
            continue;
        for (int k = 0; k < GK_N; k++)
            for (int c = 0; c < TIDE_N_CLASSES; c++)
                tidei_gc_span_release(t, k, c);
        threads_remove(t);
    }
    if (me)
        me->tid = tidei_os_gettid();
    pthread_mutex_unlock(&tidei_gc_threads_lock);
}

/* ---- set-up ---- */

void tidei_gc_threads_init(void)
{
    pthread_key_create(&exit_key, thread_exit_cb);
    stop_sig = tidei_opt.gc_signal ? (int)tidei_opt.gc_signal : TIDE_GC_SIGNAL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(stop_sig, &sa, NULL);
    tidei_atfork(gc_atfork_prepare, gc_atfork_parent, gc_atfork_child);
}
