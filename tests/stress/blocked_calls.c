/* stress/blocked_calls.c — tide leaves a program's blocking calls and
 * signals alone while it takes idle threads' memory back (issue 14).
 * th-conf: decay_ms=50
 * th-timeout: 120
 *
 * decay_ms=50, so the scavenger certainly looks at the idle heaps (many
 * times) while the calls below are blocked.
 *
 *   blocked_calls      six threads each allocate a sixth of a burst (100000
 *       blocks of 16..2000 bytes and some of 70..300 KiB), free the next
 *       thread's share (every free remote), and then block for 2 s in one of
 *       sleep, nanosleep, clock_nanosleep, poll (a pipe nobody writes),
 *       select (the same) and epoll_wait.  Every call lasts its full time
 *       (CLOCK_MONOTONIC, no early wake-up allowed) and returns as it does
 *       when nothing happens: sleep 0, nanosleep 0 with nothing remaining,
 *       clock_nanosleep 0, poll/select/epoll_wait 0 (never -1 with EINTR).
 *       And the memory did come back meanwhile, so the test cannot pass by
 *       leaving the idle heaps alone: 1 s after the frees, with all six
 *       threads blocked, at most 5 % of the burst is still resident (not
 *       checked under TSan, whose shadow memory moves RSS).
 *   sigwait_undisturbed  three threads that own heaps holding a freed burst
 *       wait with sigtimedwait for 1.5 s on SIGUSR1, SIGUSR2 and every
 *       real-time signal (SIGRTMAX-2 and SIGRTMAX-3 among them), blocked in
 *       every thread: the wait times out (EAGAIN) after its full time; no
 *       signal arrives from tide.
 *   no_handler_installed  no signal handler of tide's is in place: the
 *       disposition of every signal is what it was when main started, no
 *       handler lies in libtide.so, and SigCgt in /proc/self/status is what
 *       it was then (see "How the handlers are compared" below).
 *   own_handler_untouched  the program installs its own handler on
 *       SIGRTMAX-2 (tide's old default reclaim signal); after a burst with
 *       remote frees and three threads idle in nanosleep for 1.5 s, the
 *       handler has never run, the sleeps lasted their full time, and
 *       SigCgt is the start value plus that one signal.
 *
 * How the handlers are compared.  A snapshot "before tide could act" cannot
 * be taken in-process (libtide.so's constructor runs before main), and a
 * separate program without tide would not have the sanitizer runtimes'
 * handlers, which differ between plain, TSan and UBSan builds.  So main
 * takes the snapshot itself, after its first malloc and after a thread has
 * existed, and two checks are made against it: (1) every signal's
 * disposition (sigaction) and SigCgt must be unchanged at the end, apart
 * from what the program installed itself; (2) no handler, at the start or at
 * the end, may have its code in libtide.so (dladdr on the handler's address,
 * compared with the object of tide_version) -- this catches a handler tide
 * would install before main, which the snapshot alone could not see.
 *
 * Before issue 14, blocked_calls fails (each call returns early with EINTR
 * or time left, after about one decay delay), sigwait_undisturbed fails
 * (sigtimedwait returns SIGRTMAX-2), and no_handler_installed fails (a
 * handler of libtide.so on SIGRTMAX-2, and its SigCgt bit). */
#include "stress.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "tide.h"

#define N_BLOCKS (ST_TSAN ? 25000 : 100000)
#define CALL_MS 2000              /* how long each blocking call lasts */
#define WAIT_MS 1500              /* the sigwait and own-handler waits */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until `until` (now_s time) whatever interrupts it: the main
 * thread's own waits must not depend on what is tested. */
static void sleep_until(double until)
{
    for (;;) {
        double left = until - now_s();
        if (left <= 0)
            return;
        struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

/* ---- the burst: each thread allocates a share, frees its neighbour's ---- */

/* Fills tab with n blocks: 16..2000 bytes, one in 200 of 70..300 KiB. */
static void alloc_share(st_blk *tab, size_t n, uint64_t seed)
{
    th_rng r = { th_mix(seed) | 1 };
    for (size_t i = 0; i < n; i++) {
        size_t sz = th_rand(&r) % 200 == 0 ? th_rand_range(&r, 70 * KiB, 300 * KiB) : th_rand_range(&r, 16, 2000);
        tab[i] = st_new(sz);
    }
}

/* A few allocations after the wait: the heap works after being reclaimed. */
static void use_again(uint64_t seed)
{
    th_rng r = { th_mix(seed) | 1 };
    st_blk b[64];
    for (int i = 0; i < 64; i++)
        b[i] = st_new(th_rand(&r) % 16 == 0 ? th_rand_range(&r, 70 * KiB, 300 * KiB) : th_rand_range(&r, 16, 2000));
    for (int i = 0; i < 64; i++)
        st_free(b[i], "after the wait");
}

/* Shared by the three tests that make a burst: n_thr threads, each with
 * its share of the table, synchronised with main by two barriers. */
#define MAX_THR 6
static st_blk *share[MAX_THR];
static size_t share_n;
static int n_thr;
static pthread_barrier_t allocated;  /* the workers and main: main reads the peak RSS */
static pthread_barrier_t go;         /* the workers and main: the frees may begin */
static pthread_barrier_t freed;      /* the workers and main */

/* The burst part of a worker: allocate, wait for all (and for main to read
 * the peak), free the next thread's share (remote frees), and meet main. */
static void burst_part(int i)
{
    alloc_share(share[i], share_n, 1000 + (uint64_t)i);
    pthread_barrier_wait(&allocated);
    pthread_barrier_wait(&go);
    int u = (i + 1) % n_thr;
    for (size_t k = 0; k < share_n; k++)
        st_free(share[u][k], "remote");
    pthread_barrier_wait(&freed);
}

static void burst_setup(int threads)
{
    n_thr = threads;
    share_n = N_BLOCKS / (size_t)threads;
    for (int i = 0; i < threads; i++) {
        share[i] = st_map(share_n * sizeof(st_blk));
        memset(share[i], 0, share_n * sizeof(st_blk));  /* resident before the base RSS */
    }
    pthread_barrier_init(&allocated, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&freed, NULL, (unsigned)threads + 1);
}

static void burst_teardown(void)
{
    for (int i = 0; i < n_thr; i++)
        st_unmap(share[i], share_n * sizeof(st_blk));
    pthread_barrier_destroy(&allocated);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&freed);
}

/* Starts the n_thr workers of a burst, fn(i) for i = 0..n_thr-1, into th;
 * aborts if one cannot start: the barriers would never open. */
static void burst_start(pthread_t *th, void *(*fn)(void *))
{
    for (int i = 0; i < n_thr; i++)
        if (!st_spawn(&th[i], fn, (void *)(intptr_t)i))
            abort();
}

/* Main's part: reads the peak RSS between the allocations and the frees,
 * and returns it once every worker has freed. */
static long burst_main(void)
{
    pthread_barrier_wait(&allocated);
    long peak = st_rss_kb();
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&freed);
    return peak;
}

/* ---- blocked_calls ---- */

enum call { C_SLEEP, C_NANOSLEEP, C_CLOCK_NANOSLEEP, C_POLL, C_SELECT, C_EPOLL, N_CALLS };
static const char *const call_name[N_CALLS] = { "sleep", "nanosleep", "clock_nanosleep", "poll", "select",
                                                "epoll_wait" };

typedef struct {
    double elapsed;   /* seconds the call lasted */
    long ret;         /* what it returned */
    int err;          /* errno after it (the error number for clock_nanosleep) */
    long left_ns;     /* time it said was left (nanosleep's rem, select's timeout) */
} call_result;

static call_result results[N_CALLS];
static int pipe_poll[2], pipe_select[2], epfd;

/* Makes one blocking call of CALL_MS and records how it went. */
static void blocking_call(int c)
{
    call_result *res = &results[c];
    long left = 0, ret = 0;
    double t0 = now_s();
    errno = 0;
    switch (c) {
    case C_SLEEP:
        ret = (long)sleep(CALL_MS / 1000);
        left = ret * 1000000000L;
        break;
    case C_NANOSLEEP: {
        struct timespec ts = { CALL_MS / 1000, (CALL_MS % 1000) * 1000000L }, rem = { 0, 0 };
        ret = nanosleep(&ts, &rem);
        if (ret != 0)
            left = (long)rem.tv_sec * 1000000000L + rem.tv_nsec;
        break;
    }
    case C_CLOCK_NANOSLEEP: {
        struct timespec ts = { CALL_MS / 1000, (CALL_MS % 1000) * 1000000L }, rem = { 0, 0 };
        ret = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &rem);
        errno = (int)ret;
        if (ret != 0)
            left = (long)rem.tv_sec * 1000000000L + rem.tv_nsec;
        break;
    }
    case C_POLL: {
        struct pollfd pfd = { .fd = pipe_poll[0], .events = POLLIN };
        ret = poll(&pfd, 1, CALL_MS);
        break;
    }
    case C_SELECT: {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(pipe_select[0], &rd);
        struct timeval tv = { CALL_MS / 1000, (CALL_MS % 1000) * 1000L };
        ret = select(pipe_select[0] + 1, &rd, NULL, NULL, &tv);
        left = (long)tv.tv_sec * 1000000000L + tv.tv_usec * 1000L;
        break;
    }
    case C_EPOLL: {
        struct epoll_event ev;
        ret = epoll_wait(epfd, &ev, 1, CALL_MS);
        break;
    }
    }
    res->err = errno;
    res->elapsed = now_s() - t0;
    res->ret = ret;
    res->left_ns = left;
}

static void *call_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    burst_part(i);
    blocking_call(i);
    use_again(77 + (uint64_t)i);
    return NULL;
}

static void blocked_calls(void)
{
    CHECK(pipe(pipe_poll) == 0);
    CHECK(pipe(pipe_select) == 0);
    epfd = epoll_create1(0);
    CHECK(epfd >= 0);
    struct epoll_event ev = { .events = EPOLLIN };
    CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, pipe_poll[0], &ev) == 0);
    if (TH_FAILED())
        return;
    burst_setup(N_CALLS);
    long base = st_rss_kb();
    pthread_t th[N_CALLS];
    burst_start(th, call_worker);
    long peak = burst_main();
    double t_freed = now_s();
    size_t burst_bytes = 0;
    for (int i = 0; i < N_CALLS; i++)
        for (size_t k = 0; k < share_n; k++)
            burst_bytes += share[i][k].n;
    sleep_until(t_freed + 1.0);
    long r = st_rss_kb();
    for (int i = 0; i < N_CALLS; i++)
        st_join(th[i]);
    st_check_errors();

    for (int c = 0; c < N_CALLS; c++) {
        const call_result *res = &results[c];
        bool ok = res->ret == 0 && res->left_ns == 0 && res->elapsed >= CALL_MS / 1000.0;
        char what[200];
        snprintf(what, sizeof what, "%s for %d ms returned %ld (%s, %.3f ms left) after %.3f s", call_name[c],
                 CALL_MS, res->ret, res->ret ? strerror(res->err) : "no error", (double)res->left_ns / 1e6,
                 res->elapsed);
        fprintf(stderr, "blocked_calls: %s%s\n", what, ok ? "" : "  <- early or interrupted");
        CHECKF(ok, "%s", what);
    }
    double share_left = (double)(r - base) / (double)(peak > base ? peak - base : 1);
    fprintf(stderr,
            "blocked_calls: burst of %.1f MiB asked; RSS before %ld KiB, peak %ld KiB, 1 s after the frees %ld KiB: "
            "share still resident %.3f\n",
            (double)burst_bytes / (double)MiB, base, peak, r, share_left);
    if (!ST_TSAN && TH_TIDE)
        CHECKF(share_left <= 0.05,
               "%.3f of the burst still resident 1 s after the frees with all threads blocked "
               "(RSS before %ld KiB, peak %ld KiB, now %ld KiB): want <= 0.05",
               share_left, base, peak, r);
    burst_teardown();
    close(pipe_poll[0]);
    close(pipe_poll[1]);
    close(pipe_select[0]);
    close(pipe_select[1]);
    close(epfd);
}

/* ---- sigwait_undisturbed ---- */

static sigset_t waited;
static struct { int ret, err; double elapsed; } waits[3];

static void *sigwait_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    burst_part(i);
    struct timespec ts = { WAIT_MS / 1000, (WAIT_MS % 1000) * 1000000L };
    siginfo_t si;
    memset(&si, 0, sizeof si);
    double t0 = now_s();
    errno = 0;
    waits[i].ret = sigtimedwait(&waited, &si, &ts);
    waits[i].err = errno;
    waits[i].elapsed = now_s() - t0;
    use_again(99 + (uint64_t)i);
    return NULL;
}

static void sigwait_undisturbed(void)
{
    sigemptyset(&waited);
    sigaddset(&waited, SIGUSR1);
    sigaddset(&waited, SIGUSR2);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaddset(&waited, s);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &waited, &old);  /* the workers inherit it */
    burst_setup(3);
    pthread_t th[3];
    burst_start(th, sigwait_worker);
    burst_main();
    for (int i = 0; i < 3; i++)
        st_join(th[i]);
    /* a signal sent to main (process-directed) would be pending here */
    sigset_t pend;
    sigpending(&pend);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    st_check_errors();
    for (int i = 0; i < 3; i++)
        CHECKF(waits[i].ret == -1 && waits[i].err == EAGAIN && waits[i].elapsed >= WAIT_MS / 1000.0,
               "sigtimedwait for %d ms in an idle thread returned %d (%s%s) after %.3f s", WAIT_MS, waits[i].ret,
               waits[i].ret > 0 ? "signal " : strerror(waits[i].err),
               waits[i].ret == SIGRTMAX - 2 ? "SIGRTMAX-2" : waits[i].ret > 0 ? "other" : "", waits[i].elapsed);
    for (int s = 1; s <= SIGRTMAX; s++)
        CHECKF(!sigismember(&waited, s) || !sigismember(&pend, s), "signal %d pending for the process", s);
    burst_teardown();
}

/* ---- handlers: the snapshot of main, and who owns a handler ---- */

/* SigCgt of /proc/self/status (read without allocating), or ~0 on error. */
static uint64_t sigcgt(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return ~(uint64_t)0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return ~(uint64_t)0;
    buf[n] = 0;
    const char *p = strstr(buf, "SigCgt:");
    unsigned long long v;
    if (!p || sscanf(p + 7, "%llx", &v) != 1)
        return ~(uint64_t)0;
    return v;
}

#define MAX_SIG 65
static void *handler_at_start[MAX_SIG];  /* NULL: SIG_DFL, SIG_IGN or no such signal */
static int flags_at_start[MAX_SIG];
static uint64_t sigcgt_at_start;

/* The handler of sig (NULL for SIG_DFL/SIG_IGN or a signal that cannot be
 * queried), and its flags. */
static void *handler_of(int sig, int *flags)
{
    struct sigaction sa;
    *flags = 0;
    if (sigaction(sig, NULL, &sa) != 0)
        return NULL;
    *flags = sa.sa_flags;
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    if (h == (void *)SIG_DFL || h == (void *)SIG_IGN)
        return NULL;
    return h;
}

static void take_snapshot(void)
{
    for (int s = 1; s <= SIGRTMAX && s < MAX_SIG; s++)
        handler_at_start[s] = handler_of(s, &flags_at_start[s]);
    sigcgt_at_start = sigcgt();
}

/* Whether the code at h belongs to libtide.so (false when not on tide). */
static bool in_tide(void *h)
{
    Dl_info a, b;
    if (!h || !tide_version || !dladdr((void *)tide_version, &a) || !dladdr(h, &b))
        return false;
    return a.dli_fbase == b.dli_fbase;
}

/* Checks every signal against the snapshot; `own` is the one signal the
 * program installed itself since (0: none). */
static void check_handlers(int own)
{
    for (int s = 1; s <= SIGRTMAX && s < MAX_SIG; s++) {
        if (s == own)
            continue;
        int flags;
        void *h = handler_of(s, &flags);
        CHECKF(!in_tide(h), "a handler of tide's is installed on signal %d%s", s,
               s == SIGRTMAX - 2 ? " (SIGRTMAX-2)" : "");
        CHECKF(h == handler_at_start[s], "the handler of signal %d changed: %p (%s) at start, now %p (%s)", s,
               handler_at_start[s], th_object_of(handler_at_start[s]), h, th_object_of(h));
    }
    uint64_t want = sigcgt_at_start | (own ? (uint64_t)1 << (own - 1) : 0);
    uint64_t now = sigcgt();
    CHECKF(now == want, "SigCgt %016llx, want %016llx (at start %016llx%s)", (unsigned long long)now,
           (unsigned long long)want, (unsigned long long)sigcgt_at_start,
           own ? ", plus the program's own handler" : "");
}

static void no_handler_installed(void)
{
    for (int s = 1; s <= SIGRTMAX && s < MAX_SIG; s++)
        CHECKF(!in_tide(handler_at_start[s]), "tide had a handler on signal %d%s when main started (%s)", s,
               s == SIGRTMAX - 2 ? " (SIGRTMAX-2)" : "", th_object_of(handler_at_start[s]));
    check_handlers(0);
}

/* ---- own_handler_untouched ---- */

static atomic_int n_own_calls;
static atomic_int own_code, own_pid;

static void own_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    atomic_fetch_add(&n_own_calls, 1);
    atomic_store(&own_code, si->si_code);
    atomic_store(&own_pid, (int)si->si_pid);
}

static struct { int ret, err; double elapsed; } sleeps[3];

static void *idle_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    burst_part(i);
    struct timespec ts = { WAIT_MS / 1000, (WAIT_MS % 1000) * 1000000L }, rem = { 0, 0 };
    double t0 = now_s();
    errno = 0;
    sleeps[i].ret = nanosleep(&ts, &rem);
    sleeps[i].err = errno;
    sleeps[i].elapsed = now_s() - t0;
    use_again(55 + (uint64_t)i);
    return NULL;
}

static void own_handler_untouched(void)
{
    int sig = SIGRTMAX - 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = own_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
    burst_setup(3);
    pthread_t th[3];
    burst_start(th, idle_sleeper);
    burst_main();
    for (int i = 0; i < 3; i++)
        st_join(th[i]);
    st_check_errors();
    CHECKF(atomic_load(&n_own_calls) == 0,
           "the program's own handler on SIGRTMAX-2 ran %d times (last si_code %d, si_pid %d; this process %d)",
           atomic_load(&n_own_calls), atomic_load(&own_code), atomic_load(&own_pid), (int)getpid());
    for (int i = 0; i < 3; i++)
        CHECKF(sleeps[i].ret == 0 && sleeps[i].elapsed >= WAIT_MS / 1000.0,
               "nanosleep for %d ms returned %d (%s) after %.3f s", WAIT_MS, sleeps[i].ret,
               sleeps[i].ret ? strerror(sleeps[i].err) : "-", sleeps[i].elapsed);
    check_handlers(sig);
    burst_teardown();
}

static void *noop_thread(void *arg)
{
    free(malloc(100));
    return arg;
}

int main(void)
{
    /* the snapshot: after the first malloc, once a thread has existed */
    free(th_opaque_ptr(malloc(th_opaque(100))));
    pthread_t t;
    if (pthread_create(&t, NULL, noop_thread, NULL) == 0)
        pthread_join(t, NULL);
    take_snapshot();
    RUN(on_tide);
    RUN(blocked_calls);
    RUN(sigwait_undisturbed);
    RUN(no_handler_installed);
    RUN(own_handler_untouched);
    return th_summary();
}
