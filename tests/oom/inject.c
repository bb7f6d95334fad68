/* oom/inject.c — every OS request failing, SQLite style.
 *
 * TIDE_CONF=os_fail_at=N makes tide's Nth request to the OS fail once;
 * TIDE_CONF=os_fail_from=N makes the Nth and every later one fail.  The
 * driver (no arguments) runs the worker (`inject worker`) in a fresh process
 * for N = 1, 2, ... in both modes, until a run makes fewer than N requests
 * (so the Nth never came and every request of the workload has been made to
 * fail once; at most MAX_N).  The worker does a fixed workload
 * (small, medium, large 256 KiB and huge 16 MiB blocks, huge blocks reused
 * from the cache of freed ones, calloc, realloc growth, aligned allocations,
 * a second thread that allocates and whose blocks the main thread frees) and
 * checks that
 *   - every call returns a valid block or NULL with errno ENOMEM,
 *   - blocks already obtained keep their contents,
 *   - nothing crashes or hangs,
 *   - in os_fail_at mode, the round after the one that saw the failure
 *     allocates everything again (the failure was transient), and once
 *     everything is freed and trimmed nothing is left behind: no huge block,
 *     no cached mapping, at most two abandoned spans (see the worker), and
 *     at most one chunk more than the same worker keeps with no failure
 *     injected (nothing leaked).
 * The driver also checks that the hook works at all: in os_fail_from mode
 * with N=1 some allocation must fail, and in os_fail_at mode at least one N
 * must make one fail (otherwise the tests above would prove nothing).
 * One PASS/FAIL line per mode. */
#include "testhelper.h"

#include <signal.h>

#define MAX_N 2000   /* a bound that only a runaway workload reaches */

/* ---- worker ---------------------------------------------------------- */

typedef struct { void *p; size_t n; uint64_t seed; } blk_t;

/* Blocks are filled and verified over their first 64 KiB and last 4 KiB:
 * enough to see damage, cheap enough to run the workload a few hundred times. */
static void fill_b(void *p, size_t n, uint64_t seed)
{
    if (n <= 68 * KiB) { th_fill(p, n, seed); return; }
    th_fill(p, 64 * KiB, seed);
    th_fill((char *)p + n - 4 * KiB, 4 * KiB, seed + 1);
}
static bool verify_b(const void *p, size_t n, uint64_t seed)
{
    if (n <= 68 * KiB) return th_verify(p, n, seed);
    return th_verify(p, 64 * KiB, seed) && th_verify((const char *)p + n - 4 * KiB, 4 * KiB, seed + 1);
}

typedef struct {
    blk_t b[512];           /* live blocks of this workload */
    int nb;
    long n_null;            /* calls that returned NULL (with ENOMEM) */
    char err[300];          /* first error, empty if none */
} work_t;

static void werr(work_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void werr(work_t *w, const char *fmt, ...)
{
    if (w->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

/* Records the result of one allocation call: a valid block (aligned, big
 * enough; filled with a pattern and kept) or NULL with ENOMEM. */
static void took(work_t *w, const char *what, void *p, size_t n, size_t align, int err)
{
    if (!p) {
        if (err != ENOMEM) werr(w, "%s(%zu) = NULL with errno %d, not ENOMEM", what, n, err);
        w->n_null++;
        return;
    }
    if (!th_aligned(p, align)) werr(w, "%s(%zu) = %p, not %zu-aligned", what, n, p, align);
    if (malloc_usable_size(p) < n) werr(w, "%s(%zu): usable size %zu", what, n, malloc_usable_size(p));
    if (w->nb == (int)(sizeof w->b / sizeof w->b[0])) { free(p); return; }
    uint64_t seed = TH_SEED(p, n) ^ (uint64_t)w->nb;
    fill_b(p, n, seed);
    w->b[w->nb++] = (blk_t){ p, n, seed };
}

static void verify_all(work_t *w, const char *when)
{
    for (int i = 0; i < w->nb; i++)
        if (!verify_b(w->b[i].p, w->b[i].n, w->b[i].seed))
            werr(w, "block %p (%zu bytes) corrupted %s", w->b[i].p, w->b[i].n, when);
}

static void free_all(work_t *w)
{
    for (int i = 0; i < w->nb; i++) free(w->b[i].p);
    w->nb = 0;
}

#define ALLOC(w, what, call, n, align) do { errno = 0; void *p_ = (call); took(w, what, p_, n, align, errno); } while (0)

/* Huge blocks through the cache of freed ones (huge.c): a freed block
 * split in two, a calloc of reused memory, a block grown (in place, by
 * mremap, or copied), shrunk (its tail cached) and grown back over it. */
static void huge_reuse(work_t *w)
{
    errno = 0;
    char *h = malloc(12 * MiB);
    if (!h) {
        if (errno != ENOMEM) werr(w, "malloc(12 MiB) = NULL errno %d", errno);
        w->n_null++;
    } else {
        memset(h, 0x6b, 12 * MiB);
        free(h);
    }
    ALLOC(w, "malloc", malloc(6 * MiB), 6 * MiB, 16);
    errno = 0;
    char *c = calloc(9, MiB);
    if (c && !th_is_zero(c, 9 * MiB)) werr(w, "calloc(9 MiB) of reused memory not zeroed");
    took(w, "calloc", c, 9 * MiB, 16, errno);
    static const size_t steps[] = { 20 * MiB, 6 * MiB, 14 * MiB };
    errno = 0;
    char *g = malloc(5 * MiB);
    if (!g) {
        took(w, "malloc", g, 5 * MiB, 16, errno);
        return;
    }
    size_t n = 5 * MiB;
    fill_b(g, n, 99);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t m = steps[i];
        errno = 0;
        char *q = realloc(g, m);
        if (!q) {
            if (errno != ENOMEM) werr(w, "realloc(%zu -> %zu) = NULL errno %d", n, m, errno);
            w->n_null++;
            if (!verify_b(g, n, 99)) werr(w, "failed realloc(%zu -> %zu) damaged the block", n, m);
            continue;
        }
        size_t keep = n < m ? n : m;
        if (!th_verify(q, keep < 64 * KiB ? keep : 64 * KiB, 99)) werr(w, "realloc(%zu -> %zu) lost contents", n, m);
        g = q;
        n = m;
        fill_b(g, n, 99);
    }
    took(w, "realloc", g, n, 16, 0);
}

/* The allocations of one thread: every size range and entry point. */
static void workload(work_t *w, uint64_t seed)
{
    th_rng r = { seed | 1 };
    for (int i = 0; i < 150; i++) {                  /* small */
        size_t n = th_rand_range(&r, 0, 1024);
        ALLOC(w, "malloc", malloc(n), n, n >= 16 ? 16 : 1);
    }
    for (int i = 0; i < 40; i++) {                   /* medium */
        size_t n = th_rand_range(&r, 1025, 64 * KiB);
        ALLOC(w, "malloc", malloc(n), n, 16);
    }
    for (int i = 0; i < 4; i++)                      /* large */
        ALLOC(w, "malloc", malloc(256 * KiB), 256 * KiB, 16);
    for (int i = 0; i < 2; i++)                      /* huge */
        ALLOC(w, "malloc", malloc(16 * MiB), 16 * MiB, 16);
    verify_all(w, "after malloc");
    huge_reuse(w);
    verify_all(w, "after huge reuse");
    static const size_t csz[] = { 10, 100, 3000, 40000, 300000, 5 * MiB };
    for (size_t i = 0; i < sizeof csz / sizeof csz[0]; i++) {   /* calloc */
        errno = 0;
        char *p = calloc(csz[i], 1);
        if (p && !th_is_zero(p, csz[i])) werr(w, "calloc(%zu) not zeroed", csz[i]);
        took(w, "calloc", p, csz[i], 16, errno);
    }
    errno = 0;
    void *c = calloc(th_opaque(SIZE_MAX / 8), 16);
    if (c || errno != ENOMEM) werr(w, "calloc overflow = %p errno %d", c, errno);
    for (size_t a = 64; a <= 2 * MiB; a *= 8) {      /* aligned */
        ALLOC(w, "aligned_alloc", aligned_alloc(a, a + 8), a + 8, a);
        void *p = NULL;
        int e = posix_memalign(&p, a, 100);
        if (e != 0 && e != ENOMEM) werr(w, "posix_memalign(%zu) returned %d", a, e);
        took(w, "posix_memalign", e ? NULL : p, 100, a, e ? ENOMEM : 0);
        ALLOC(w, "memalign", memalign(a, 3 * a), 3 * a, a);
    }
    verify_all(w, "after calloc/aligned");
    /* realloc growth 16 B -> 24 MiB; a failure keeps the old block. */
    size_t n = 16;
    char *p = malloc(n);
    if (!p) { w->n_null++; return; }
    th_fill(p, n, 4242);
    while (n < 24 * MiB) {
        size_t m = n * 2 + 8;
        errno = 0;
        char *q = realloc(p, m);
        if (!q) {
            if (errno != ENOMEM) werr(w, "realloc(%zu -> %zu) = NULL errno %d", n, m, errno);
            w->n_null++;
            if (!th_verify(p, n < 64 * KiB ? n : 64 * KiB, 4242))
                werr(w, "failed realloc(%zu -> %zu) damaged the block", n, m);
            break;
        }
        if (!th_verify(q, n < 64 * KiB ? n : 64 * KiB, 4242)) werr(w, "realloc(%zu -> %zu) lost contents", n, m);
        th_fill(q, m < 64 * KiB ? m : 64 * KiB, 4242);
        p = q;
        n = m;
    }
    free(p);
    verify_all(w, "after realloc growth");
}

typedef struct { work_t w; uint64_t seed; } thread_arg;

static void *thread_main(void *arg)
{
    thread_arg *t = arg;
    workload(&t->w, t->seed);
    return NULL;   /* its blocks are verified and freed by the main thread */
}

/* One round: the main thread's workload plus a second thread's, whose
 * blocks the main thread frees (remote frees). */
static void round_(work_t *w, thread_arg *t, int round)
{
    memset(t, 0, sizeof *t);
    t->seed = 1000 + (uint64_t)round;
    pthread_t th;
    int e = pthread_create(&th, NULL, thread_main, t);
    workload(w, 7 + (uint64_t)round);
    if (e == 0) pthread_join(th, NULL);
    else thread_main(t);
    verify_all(&t->w, "(second thread's) before free");
    verify_all(w, "before free");
    if (t->w.err[0]) werr(w, "second thread: %s", t->w.err);
    w->n_null += t->w.n_null;
    free_all(&t->w);
    free_all(w);
}

static int worker(const char *mode)
{
    alarm(60);   /* a hang is a failure, not a stuck test run */
    static work_t w;
    static thread_arg t;
    bool once = strcmp(mode, "at") == 0;
    long nulls_total = 0;
    int rounds = 0, failed_round = -1;
    for (int round = 0; round < 3; round++) {
        long before = w.n_null;
        round_(&w, &t, round);
        rounds++;
        if (w.err[0]) break;
        long nulls = w.n_null - before;
        nulls_total += nulls;
        if (once && failed_round >= 0) {
            if (nulls) werr(&w, "os_fail_at: round %d after the failing round %d still got %ld NULLs", round,
                            failed_round, nulls);
            break;
        }
        if (once && nulls) failed_round = round;
    }
    /* Plain allocation still works at the end in 'once' mode. */
    if (once && !w.err[0]) {
        void *p = malloc(100), *q = malloc(20 * MiB);
        if (!p || !q) werr(&w, "os_fail_at: malloc fails after the failure passed");
        free(p); free(q);
    }
    /* Nothing leaked: with every block freed and a trim, no huge block is
     * left, nothing is cached, and (nearly) no span is left abandoned; the
     * chunks still mapped (spans the heap keeps) are compared by the driver.
     * A span or two may stay abandoned: when the failure hits a thread's
     * heap set-up, that call is served by the backup heap, whose spans are
     * abandoned at once, and the block may be one libc keeps (the DTV of a
     * cached thread stack, allocated by pthread_create) — such as the
     * scavenger's, made by whichever thread started it, here perhaps the
     * second thread, which has exited since. */
    struct tide_stats st;
    memset(&st, 0, sizeof st);
    if (once || strcmp(mode, "none") == 0) {
        tide_trim();
        tide_stats_get(&st);
        if (st.huge_bytes || st.huge_cached_bytes || st.n_abandoned_spans > 2u)
            werr(&w, "all freed and trimmed: huge_bytes %zu, huge_cached_bytes %zu, abandoned spans %zu",
                 st.huge_bytes, st.huge_cached_bytes, st.n_abandoned_spans);
    }
    char line[512];
    struct tide_stats end;
    tide_stats_get(&end);   /* the OS requests made, this call's included */
    int k = snprintf(line, sizeof line, "nulls=%ld rounds=%d chunks=%zu calls=%lu %s%s\n", nulls_total, rounds,
                     st.n_chunks, (unsigned long)end.n_os_calls, w.err[0] ? "error: " : "ok", w.err);
    if (write(1, line, (size_t)k) < 0) return 2;
    return w.err[0] ? 1 : 0;
}

/* ---- driver ---------------------------------------------------------- */

typedef struct { int st; long nulls; long chunks; long calls; char out[600]; } run_t;

static run_t run_worker(const char *self, const char *mode, int n)
{
    run_t r = { 0 };
    int op[2];
    if (pipe(op)) { r.st = -1; return r; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char conf[64];
        snprintf(conf, sizeof conf, "os_fail_%s=%d", mode, n);
        if (n > 0) setenv("TIDE_CONF", conf, 1);
        dup2(op[1], 1);
        close(op[0]); close(op[1]);
        execl(self, self, "worker", mode, (char *)NULL);
        _exit(127);
    }
    close(op[1]);
    size_t k = 0;
    ssize_t m;
    while (k + 1 < sizeof r.out && (m = read(op[0], r.out + k, sizeof r.out - 1 - k)) > 0) k += (size_t)m;
    r.out[k] = 0;
    close(op[0]);
    while (waitpid(pid, &r.st, 0) < 0 && errno == EINTR) {}
    r.out[strcspn(r.out, "\n")] = 0;
    r.nulls = r.chunks = r.calls = -1;
    int rounds;
    sscanf(r.out, "nulls=%ld rounds=%d chunks=%ld calls=%ld", &r.nulls, &rounds, &r.chunks, &r.calls);
    return r;
}

static const char *self_path;

static void run_mode(const char *mode)
{
    TIDE_ONLY();
    long max_nulls = 0;
    bool once = strcmp(mode, "at") == 0;
    /* The same worker with no failure: the chunks it keeps mapped at the end. */
    run_t clean = { .chunks = 0 };
    if (once) {
        clean = run_worker(self_path, "none", 0);
        CHECKF(WIFEXITED(clean.st) && WEXITSTATUS(clean.st) == 0 && clean.nulls == 0 && clean.chunks >= 0,
               "worker with no failure injected: %s", clean.out);
    }

    int n;
    for (n = 1; n <= MAX_N; n++) {
        run_t r = run_worker(self_path, mode, n);
        char sb[64];
        bool ok = WIFEXITED(r.st) && WEXITSTATUS(r.st) == 0;
        if (!ok) {
            FAILF("os_fail_%s=%d: worker %s: %s", mode, n, th_status_str(r.st, sb, sizeof sb), r.out);
            fprintf(stderr, "os_fail_%s=%d: %s: %s\n", mode, n, th_status_str(r.st, sb, sizeof sb), r.out);
        }
        if (once && ok)
            CHECKF(r.chunks <= clean.chunks + 1, "os_fail_at=%d: %ld chunks still mapped after freeing everything "
                   "and a trim (%ld with no failure): leaked", n, r.chunks, clean.chunks);
        if (n == 1 && strcmp(mode, "from") == 0)
            CHECKF(r.nulls > 0, "os_fail_from=1 made no allocation fail (%s): is the hook implemented?", r.out);
        if (r.nulls > max_nulls) max_nulls = r.nulls;
        if (!ok || r.calls < 0)
            break;          /* reported above; the next N would say the same */
        if (r.calls < n)
            break;          /* the Nth request never came: every one was tried */
    }
    CHECKF(n <= MAX_N, "os_fail_%s: the workload still made %d requests to the OS: a loop?", mode, MAX_N);
    printf("# os_fail_%s: N = 1..%d tried\n", mode, n);
    CHECKF(max_nulls > 0, "os_fail_%s=1..%d made no allocation fail: is the hook implemented?", mode, n);
}

static void os_fail_at(void) { run_mode("at"); }
static void os_fail_from(void) { run_mode("from"); }

/* The workload itself passes with no failure injected. */
static void workload_clean(void)
{
    static work_t w;
    static thread_arg t;
    round_(&w, &t, 0);
    CHECKF(!w.err[0], "%s", w.err);
    CHECKF(w.n_null == 0, "%ld allocations failed with no failure injected", w.n_null);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "worker") == 0) return worker(argv[2]);
    self_path = "/proc/self/exe";
    static char path[4096];
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k > 0) { path[k] = 0; self_path = path; }
    RUN(on_tide);
    RUN(workload_clean);
    RUN(os_fail_at);
    RUN(os_fail_from);
    return th_summary();
}
