/* stress/bigblocks.c — large and huge blocks through the caches of freed
 * ones (issue 19), under threads, the scavenger, trims and forks.
 * th-conf: decay_ms=20
 * th-timeout: 300
 *
 * T threads run random operations on large (64 KiB .. 4 MiB) and huge
 * (4 .. 24 MiB) blocks: malloc, calloc, realloc up and down, aligned_alloc
 * and free, about half of the frees of blocks another thread allocated
 * (through a shared exchange).  Each block carries a pattern in three
 * checked pages (first, middle, last: filling 24 MiB blocks whole would
 * make the test slow under TSan), verified before every realloc and free
 * (realloc keeps what fits); calloc's checked pages must be zero.
 * Meanwhile the scavenger unmaps cached ranges and empty chunks every few
 * ms (decay_ms=20), one thread calls malloc_trim(0) now and then, and the
 * main thread forks: each child allocates, reallocates and frees huge and
 * large blocks from the caches it inherited, checks its calloc'd blocks
 * are zero, frees blocks of the exchange (allocated by threads it does not
 * have) after checking them, and exits 0.  At the end, everything freed and
 * trimmed, no huge block and no cached range is left. */
#include "stress.h"

#include <sys/wait.h>

#define T 4
#define SLOTS 8                     /* blocks per thread */
#define XCHG 16                     /* exchange slots */
#define FORKS 6
#define PAGE 4096

typedef struct { char *p; size_t n; uint64_t seed; } big_t;

static _Atomic(big_t *) xchg[XCHG];

/* The three checked pages of a block of n bytes: offsets. */
static void check_points(size_t n, size_t off[3], size_t len[3])
{
    size_t l = n < PAGE ? n : PAGE;
    off[0] = 0;
    off[1] = (n / 2) & ~(size_t)(PAGE - 1);
    off[2] = n - l;
    for (int i = 0; i < 3; i++)
        len[i] = n - off[i] < l ? n - off[i] : l;
}

static void big_fill(big_t *b)
{
    size_t off[3], len[3];
    check_points(b->n, off, len);
    for (int i = 0; i < 3; i++)
        th_fill(b->p + off[i], len[i], b->seed + (uint64_t)i);
}

/* Whether the checked pages still hold the pattern, within the first
 * keep bytes (a realloc keeps what fits). */
static bool big_ok(const big_t *b, size_t keep)
{
    size_t off[3], len[3];
    check_points(b->n, off, len);
    for (int i = 0; i < 3; i++) {
        if (off[i] >= keep)
            continue;
        size_t l = keep - off[i] < len[i] ? keep - off[i] : len[i];
        if (!th_verify(b->p + off[i], l, b->seed + (uint64_t)i))
            return false;
    }
    return true;
}

static bool big_zero(const big_t *b)
{
    size_t off[3], len[3];
    check_points(b->n, off, len);
    for (int i = 0; i < 3; i++)
        if (!th_is_zero(b->p + off[i], len[i]))
            return false;
    return true;
}

static size_t big_size(th_rng *r)
{
    return th_rand(r) % 3 == 0 ? th_rand_range(r, 64 * KiB + 1, 4 * MiB) : th_rand_range(r, 4 * MiB + 1, 24 * MiB);
}

/* A new block (NULL with the error reported). */
static big_t *big_new(th_rng *r, const char *who)
{
    big_t *b = malloc(sizeof *b);
    if (!b) {
        st_report("%s: malloc of a descriptor failed", who);
        return NULL;
    }
    b->n = big_size(r);
    b->seed = th_rand(r);
    switch (th_rand(r) % 8) {
    case 0:
        b->p = calloc(1, b->n);
        if (b->p && !big_zero(b))
            st_report("%s: calloc(%zu) = %p not zero", who, b->n, (void *)b->p);
        break;
    case 1: {
        size_t al = (size_t)1 << th_rand_range(r, 12, 22);
        b->p = aligned_alloc(al, b->n);
        if (b->p && ((uintptr_t)b->p & (al - 1)))
            st_report("%s: aligned_alloc(%zu, %zu) = %p", who, al, b->n, (void *)b->p);
        break;
    }
    default:
        b->p = malloc(b->n);
    }
    if (!b->p) {
        st_report("%s: allocation of %zu bytes failed", who, b->n);
        free(b);
        return NULL;
    }
    big_fill(b);
    return b;
}

static void big_free(big_t *b, const char *who)
{
    if (!b)
        return;
    if (!big_ok(b, b->n))
        st_report("%s: block %p of %zu bytes corrupted before free", who, (void *)b->p, b->n);
    free(b->p);
    free(b);
}

static void big_realloc(big_t *b, th_rng *r, const char *who)
{
    if (!big_ok(b, b->n))
        st_report("%s: block %p of %zu bytes corrupted before realloc", who, (void *)b->p, b->n);
    size_t m = th_rand(r) % 2 ? b->n / 2 + 1 : b->n + th_rand_range(r, 1, 16 * MiB);
    char *q = realloc(b->p, m);
    if (!q) {
        st_report("%s: realloc(%zu -> %zu) failed", who, b->n, m);
        return;
    }
    big_t nb = { q, b->n, b->seed };
    if (!big_ok(&nb, m < b->n ? m : b->n))
        st_report("%s: realloc(%zu -> %zu) lost the contents", who, b->n, m);
    b->p = q;
    b->n = m;
    big_fill(b);
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    th_rng r = { th_mix((uint64_t)t + 77) | 1 };
    big_t *mine[SLOTS] = { NULL };
    long n = st_ops(1500);
    for (long k = 0; k < n && !st_failed(); k++) {
        int i = (int)(th_rand(&r) % SLOTS);
        uint64_t op = th_rand(&r) % 16;
        if (!mine[i]) {
            mine[i] = big_new(&r, "worker");
        } else if (op < 4) {
            big_realloc(mine[i], &r, "worker");
        } else if (op < 10) {
            big_free(mine[i], "worker");
            mine[i] = NULL;
        } else {
            /* hand it over; free what was there (often another thread's) */
            big_t *old = atomic_exchange(&xchg[th_rand(&r) % XCHG], mine[i]);
            mine[i] = NULL;
            big_free(old, "worker (exchange)");
        }
        if (t == 0 && k % 500 == 499)
            malloc_trim(0);
    }
    for (int i = 0; i < SLOTS; i++)
        big_free(mine[i], "worker end");
    return NULL;
}

/* In a forked child: the caches it inherited serve it; blocks of the
 * exchange (made by threads it does not have) are intact and can be
 * freed.  Exit status 0 if all went well. */
static int child(int k)
{
    alarm(120);
    th_rng r = { th_mix((uint64_t)k + 1000) | 1 };
    for (int i = 0; i < XCHG; i += 3)
        big_free(atomic_exchange(&xchg[i], NULL), "child (exchange)");
    big_t *b[6] = { NULL };
    for (int round = 0; round < 40 && !st_failed(); round++) {
        int i = (int)(th_rand(&r) % 6);
        if (!b[i])
            b[i] = big_new(&r, "child");
        else if (th_rand(&r) % 2)
            big_realloc(b[i], &r, "child");
        else {
            big_free(b[i], "child");
            b[i] = NULL;
        }
    }
    for (int i = 0; i < 6; i++)
        big_free(b[i], "child end");
    if (st_failed()) {
        fprintf(stderr, "fork child: %s\n", st_first_error);
        return 1;
    }
    return 0;
}

static void big_blocks_under_threads(void)
{
    /* Large blocks the process held before (libstdc++'s emergency
     * exception pool, 72 KiB, when a sanitizer runtime brings it in). */
    size_t large_before = TH_TIDE ? th_stats().large_live_bytes : 0;
    pthread_t th[T];
    for (int t = 0; t < T; t++)
        if (!st_spawn(&th[t], worker, (void *)(intptr_t)t))
            return;
    for (int f = 0; f < FORKS && !st_failed(); f++) {
        usleep(50000);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child(f));
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        char sb[64];
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            st_report("fork child %d: %s", f, th_status_str(st, sb, sizeof sb));
    }
    for (int t = 0; t < T; t++)
        st_join(th[t]);
    for (int i = 0; i < XCHG; i++)
        big_free(atomic_exchange(&xchg[i], NULL), "main (exchange)");
    st_check_errors();
    if (TH_TIDE) {
        malloc_trim(0);
        struct tide_stats s = th_stats();
        CHECKF(s.n_huge == 0 && s.huge_bytes == 0 && s.huge_cached_bytes == 0,
               "everything freed and trimmed: %zu huge blocks (%zu bytes), %zu bytes cached", s.n_huge, s.huge_bytes,
               s.huge_cached_bytes);
        CHECKF(s.large_live_bytes == large_before, "everything freed: %zu bytes in large blocks (%zu before)",
               s.large_live_bytes, large_before);
    }
}

int main(void)
{
    RUN(big_blocks_under_threads);
    return th_summary();
}
