/* stress.h — helpers shared by the programs in tests/stress/ (not a test:
 * the runner compiles only the .c files).
 *
 *   st_report(fmt, ...)   records an error from any thread (the first message
 *                         is kept, all are counted); st_check_errors() turns
 *                         them into a failed CHECK in the calling test
 *   st_ops(n)             an operation count, scaled down under TSan, where
 *                         every access costs ~10x, and by STRESS_SCALE=K
 *                         (a multiplier, for soak runs by hand)
 *   st_map/st_unmap       bookkeeping memory straight from mmap, so that the
 *                         test's own arrays do not show in tide's figures
 *   st_rss_kb, st_wait_rss_below   the resident set, and a wait for it to
 *                         fall
 *   st_spawn/st_join      pthread_create/join that FAIL the test on error
 *   st_new/st_free        a block filled with a pattern / checked and freed;
 *   st_realloc            reallocated, contents checked, filled again;
 *   st_exchange           handed to whichever thread next takes its cell
 *   st_gate_*             threads that wait, idle, until main opens a gate
 *   st_burst              a burst of blocks of mixed sizes
 *   st_burst_freed        one made and freed, and the RSS it leaves
 *   st_free_halves        a thread frees its own even blocks and another
 *                         thread's odd ones (frees local and remote at once)
 *   st_child_fail(what)   a forked child's failure: one line on stderr, 1
 *
 * Every count in these programs is a number of operations, never a time:
 * the work is the same on a fast and a slow machine. */
#ifndef STRESS_H
#define STRESS_H

#include "testhelper.h"

#include <fcntl.h>
#include <stdatomic.h>

#ifdef TH_REDIRECT
#define ST_TSAN 1
#else
#define ST_TSAN 0
#endif

/* Under SANITIZE=undefined an error must fail the program: UBSan's
 * default is to print and go on, and the runner shows stderr only for
 * programs that fail.  (Used only when the UBSan runtime is linked; the
 * options apply to libtide's code too.) */
__attribute__((visibility("default"), used)) const char *__ubsan_default_options(void);
__attribute__((visibility("default"), used)) const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

/* ---- errors seen by worker threads ---- */

static atomic_int st_n_errors;
static char st_first_error[400];
static atomic_flag st_first_taken = ATOMIC_FLAG_INIT;

__attribute__((unused, format(printf, 1, 2)))
static void st_report(const char *fmt, ...)
{
    atomic_fetch_add(&st_n_errors, 1);
    if (!atomic_flag_test_and_set(&st_first_taken)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st_first_error, sizeof st_first_error, fmt, ap);
        va_end(ap);
    }
}

/* True once any thread reported an error (workers stop early on it). */
static inline bool st_failed(void)
{
    return atomic_load_explicit(&st_n_errors, memory_order_relaxed) != 0;
}

/* Call from the test function after joining the workers: a failed check
 * with the first message if any worker reported, and a reset. */
#define st_check_errors() do { \
        int n_ = atomic_load(&st_n_errors); \
        CHECKF(n_ == 0, "%d errors, first: %s", n_, st_first_error); \
        atomic_store(&st_n_errors, 0); \
        atomic_flag_clear(&st_first_taken); \
    } while (0)

/* ---- operation counts ---- */

__attribute__((unused))
static long st_ops(long n)
{
    static _Atomic long mult = -1;  /* threads may ask at once: an atomic, relaxed */
    long m = atomic_load_explicit(&mult, memory_order_relaxed);
    if (m < 0) {
        const char *e = getenv("STRESS_SCALE");
        m = e && atol(e) > 0 ? atol(e) : 1;
        atomic_store_explicit(&mult, m, memory_order_relaxed);
    }
    long v = n * m;
    if (ST_TSAN)
        v /= 4;
    return v > 0 ? v : 1;
}

/* ---- bookkeeping memory that bypasses malloc ---- */

__attribute__((unused))
static void *st_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "st_map(%zu) failed\n", n);
        abort();
    }
    return p;
}

__attribute__((unused))
static void st_unmap(void *p, size_t n)
{
    munmap(p, n);
}

/* ---- resident memory ---- */

/* The process's resident set in KiB, from /proc/self/statm (read without
 * allocating), or -1. */
__attribute__((unused))
static long st_rss_kb(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    long size, res;
    if (sscanf(buf, "%ld %ld", &size, &res) != 2)
        return -1;
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Waits up to ms for RSS to fall to at most limit_kb, looking every 20 ms;
 * returns the last RSS. */
__attribute__((unused))
static long st_wait_rss_below(long limit_kb, int ms)
{
    long r = st_rss_kb();
    for (int t = 0; t < ms && r > limit_kb; t += 20) {
        usleep(20000);
        r = st_rss_kb();
    }
    return r;
}

/* ---- threads ---- */

/* pthread_create, with a failed check (and false) if it fails. */
#define st_spawn(t, fn, arg) st_spawn_at(__FILE__, __LINE__, (t), (fn), (arg))
__attribute__((unused))
static bool st_spawn_at(const char *file, int line, pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);
    if (e != 0) {
        th_fail_at(file, line, "pthread_create: %s", strerror(e));
        return false;
    }
    return true;
}

#define st_join(t) do { int e_ = pthread_join((t), NULL); \
        CHECKF(e_ == 0, "pthread_join: %s", strerror(e_)); } while (0)

/* ---- blocks with checked contents ---- */

/* A block and the size it was asked with. */
typedef struct { void *p; size_t n; } st_blk;

/* Allocates n bytes with malloc and fills them; reports failure. */
__attribute__((unused))
static st_blk st_new(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        st_report("malloc(%zu) failed", n);
        return (st_blk){ NULL, 0 };
    }
    th_fill(p, n, TH_SEED(p, n));
    return (st_blk){ p, n };
}

/* Verifies and frees b (nothing for a NULL block); `who` names the path. */
__attribute__((unused))
static void st_free(st_blk b, const char *who)
{
    if (!b.p)
        return;
    if (!th_verify(b.p, b.n, TH_SEED(b.p, b.n)))
        st_report("%s: block %p of %zu bytes corrupted before free", who, b.p, b.n);
    free(b.p);
}

/* Reallocates *b to n bytes: its contents must be intact before and kept
 * up to the smaller size after; then filled for its new address and size.
 * False (reported) on a failure: *b is still the old block if realloc
 * failed, else the new one. */
__attribute__((unused))
static bool st_realloc(st_blk *b, size_t n)
{
    bool ok = true;
    uint64_t seed = TH_SEED(b->p, b->n);
    if (!th_verify(b->p, b->n, seed)) {
        st_report("block %p of %zu bytes corrupted before realloc", b->p, b->n);
        ok = false;
    }
    void *q = realloc(b->p, n);
    if (!q) {
        st_report("realloc %zu -> %zu failed", b->n, n);
        return false;
    }
    if (!th_verify(q, n < b->n ? n : b->n, seed)) {
        st_report("realloc %zu -> %zu lost contents", b->n, n);
        ok = false;
    }
    th_fill(q, n, TH_SEED(q, n));
    *b = (st_blk){ q, n };
    return ok;
}

/* Hands b to another thread through *cell, in a box from malloc (so the
 * box too is freed by a thread that did not allocate it), and checks and
 * frees what another thread left there.  False (reported) if the box could
 * not be allocated: b is then still the caller's. */
__attribute__((unused))
static bool st_exchange(_Atomic(st_blk *) *cell, st_blk b)
{
    st_blk *box = malloc(sizeof *box);
    if (!box) {
        st_report("malloc of a box failed");
        return false;
    }
    *box = b;
    st_blk *old = atomic_exchange(cell, box);
    if (old) {
        st_free(*old, "exchanged");
        free(old);
    }
    return true;
}

/* Allocates about bytes in mixed sizes (1 in 64 large, 70000-300000 bytes;
 * the others 16-2000) into tab, at most max blocks; returns how many. */
__attribute__((unused))
static size_t st_burst(st_blk *tab, size_t max, size_t bytes, uint64_t seed)
{
    th_rng r = { seed };
    size_t n = 0, total = 0;
    while (total < bytes && n < max) {
        size_t sz = th_rand(&r) % 64 == 0 ? th_rand_range(&r, 70000, 300000) : th_rand_range(&r, 16, 2000);
        tab[n++] = st_new(sz);
        total += sz;
    }
    return n;
}

/* The RSS around a burst that comes and goes (st_burst_freed). */
typedef struct st_burst_rss {
    long base, peak;  /* before the burst, at its height (KiB) */
    long limit;       /* base + a tenth of the burst: what "back" means */
    long after;       /* when it fell to limit, or ms after the frees */
} st_burst_rss;

/* A burst of bytes (st_burst, at most max blocks, seed) that the calling
 * thread makes and frees at once, then waits up to ms for the RSS to come
 * back down to within a tenth of the burst; what is a free's name in an
 * error report. */
__attribute__((unused))
static st_burst_rss st_burst_freed(size_t max, size_t bytes, uint64_t seed, int ms, const char *what)
{
    st_burst_rss m;
    st_blk *tab = st_map(max * sizeof *tab);
    m.base = st_rss_kb();
    size_t n = st_burst(tab, max, bytes, seed);
    m.peak = st_rss_kb();
    for (size_t i = 0; i < n; i++)
        st_free(tab[i], what);
    m.limit = m.base + (m.peak - m.base) / 10;
    m.after = st_wait_rss_below(m.limit, ms);
    st_unmap(tab, max * sizeof *tab);
    return m;
}

/* Frees, from the calling thread, the even blocks of mine (its own) and
 * the odd blocks of next (another thread's: remote frees). */
__attribute__((unused))
static void st_free_halves(const st_blk *mine, size_t n_mine, const st_blk *next, size_t n_next)
{
    for (size_t i = 0; i < n_mine; i += 2)
        st_free(mine[i], "owner");
    for (size_t i = 1; i < n_next; i += 2)
        st_free(next[i], "neighbour");
}

/* A forked child's failure: says what on stderr and returns 1 (the
 * child's exit status; the parent checks it). */
__attribute__((unused))
static int st_child_fail(const char *what)
{
    fprintf(stderr, "fork child %d: %s\n", (int)getpid(), what);
    return 1;
}

/* ---- a gate idle threads wait at ---- */

/* Threads that must sit idle (blocked, not spinning: the scavenger sees
 * them as idle) until main lets them go.  Initialize with ST_GATE_INIT;
 * close it with st_gate_close before the threads start. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
} st_gate;
#define ST_GATE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false }

__attribute__((unused))
static void st_gate_close(st_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = false;
    pthread_mutex_unlock(&g->mu);
}

/* Blocks until the gate is open. */
__attribute__((unused))
static void st_gate_wait(st_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/* Opens the gate: every waiter goes on. */
__attribute__((unused))
static void st_gate_open(st_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* A size for a mixed workload: mostly small, some medium and large. */
__attribute__((unused))
static size_t st_rand_size(th_rng *r)
{
    uint64_t k = th_rand(r) % 1000;
    if (k < 850) return th_rand_range(r, 1, 256);
    if (k < 980) return th_rand_range(r, 257, 16 * KiB);
    if (k < 998) return th_rand_range(r, 16 * KiB + 1, 256 * KiB);
    return th_rand_range(r, 256 * KiB + 1, 2 * MiB);
}

/* tide_trim(), when linked with tide (the symbol is weak). */
__attribute__((unused))
static void st_trim(void)
{
    if (tide_trim)
        tide_trim();
}

#endif /* STRESS_H */
