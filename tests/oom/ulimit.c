/* oom/ulimit.c — real exhaustion of the address space (RLIMIT_AS, as
 * `ulimit -v` sets it).
 *
 * The driver (no arguments) runs each worker in a fresh process (fork and
 * exec of itself); the worker lowers its own RLIMIT_AS to what it maps at
 * start plus a budget, so the test does not depend on the size of libc or of
 * the environment.
 *
 * `ulimit fill`: allocates huge, then 1 MiB, 64 KiB, 1 KiB and 64-byte
 * blocks, each size until malloc returns NULL, and proves that
 *   - exhaustion is NULL with errno ENOMEM, never a crash,
 *   - while exhausted, calloc/realloc/aligned_alloc fail the same way and a
 *     failed realloc leaves its block intact,
 *   - every block obtained keeps its contents,
 *   - after everything is freed, allocation works again: 1 MiB blocks up to
 *     half of what the first pass got, and 100000 small blocks.
 * `ulimit caches`: frees 64 MiB of huge blocks (which tide may keep cached)
 * and then needs that room for other blocks: memory tide holds but does not
 * use must not make an allocation fail.
 * Each worker prints one line of figures, then exits 0 (or 1 with the error). */
#include "testhelper.h"

#include <signal.h>

#include <sys/resource.h>

#include <tide.h>

#define BUDGET (200 * MiB)     /* address space the fill worker may add to what it has at start */
#define MAX_BLOCKS (2u << 20)

typedef struct { void *p; uint32_t n; } blk_t;   /* n: bytes filled */
static blk_t *blk;          /* mmap'd, not malloc'd: the table must not need the heap */
static size_t nblk;
static char err[400];

static void werr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void werr(const char *fmt, ...)
{
    if (err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, sizeof err, fmt, ap);
    va_end(ap);
}

/* Fills the first min(n, 4 KiB) bytes and keeps the block. */
static void keep(void *p, size_t n)
{
    uint32_t f = (uint32_t)(n < 4096 ? n : 4096);
    th_fill(p, f, (uint64_t)(uintptr_t)p);
    if (n > 8192) th_fill((char *)p + n - 64, 64, (uint64_t)(uintptr_t)p + 1);
    blk[nblk++] = (blk_t){ p, f };
    if (n > 8192) blk[nblk - 1].n |= 1u << 31;   /* tail filled too */
}

static bool intact(const blk_t *b, size_t n_hint)
{
    (void)n_hint;
    return th_verify(b->p, b->n & ~(1u << 31), (uint64_t)(uintptr_t)b->p);
}

/* Allocates blocks of n bytes until NULL; returns how many. */
static size_t fill_with(size_t n)
{
    size_t k = 0;
    while (nblk < MAX_BLOCKS) {
        errno = 0;
        void *p = malloc(n);
        if (!p) {
            if (errno != ENOMEM) werr("malloc(%zu) = NULL with errno %d, not ENOMEM", n, errno);
            return k;
        }
        keep(p, n);
        k++;
    }
    werr("malloc(%zu) never failed (%u blocks)", n, MAX_BLOCKS);
    return k;
}

/* The process's address space now (VmSize). */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb << 10;
}

/* Lowers RLIMIT_AS to the current address space plus budget. */
static bool limit_to(size_t budget)
{
    struct rlimit rl = { vm_size() + budget, RLIM_INFINITY };
    if (rl.rlim_cur == budget || setrlimit(RLIMIT_AS, &rl) != 0) {
        printf("error: cannot set RLIMIT_AS: %s\n", strerror(errno));
        return false;
    }
    return true;
}

static int worker_fill(void)
{
    alarm(120);
    blk = mmap(NULL, MAX_BLOCKS * sizeof *blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blk == MAP_FAILED) { printf("error: cannot map the block table\n"); return 1; }
    void *small = malloc(1000);     /* tide set up before the limit */
    if (!small) { printf("error: malloc(1000) failed at start\n"); return 1; }
    th_fill(small, 1000, 5);
    if (!limit_to(BUDGET)) return 1;

    size_t n_huge = fill_with(16 * MiB);
    size_t n_1m = fill_with(MiB);
    size_t first_bytes = n_huge * 16 * MiB + n_1m * MiB;
    size_t n_64k = fill_with(64 * KiB);
    size_t n_1k = fill_with(1024);
    size_t n_64 = fill_with(64);

    /* Exhausted: other entry points fail cleanly too. */
    errno = 0;
    void *p = calloc(1, 16 * MiB);
    if (p || errno != ENOMEM) werr("exhausted: calloc(16 MiB) = %p errno %d", p, errno);
    free(p);
    /* The same 16 MiB: what is left when small blocks run out may hold a
     * smaller huge block (a chunk needs 8 MiB, and 8 more for the page-map
     * leaf that indexes it when it opens a new 4 GiB of address space). */
    errno = 0;
    p = aligned_alloc(2 * MiB, 16 * MiB);
    if (p || errno != ENOMEM) werr("exhausted: aligned_alloc(2 MiB, 16 MiB) = %p errno %d", p, errno);
    free(p);
    errno = 0;
    p = realloc(small, 32 * MiB);
    if (p || errno != ENOMEM) werr("exhausted: realloc(1000 -> 32 MiB) = %p errno %d", p, errno);
    if (p) small = p;
    else if (!th_verify(small, 1000, 5)) werr("exhausted: a failed realloc damaged its block");

    for (size_t i = 0; i < nblk; i++)
        if (!intact(&blk[i], 0)) { werr("block %zu (%p) corrupted", i, blk[i].p); break; }
    for (size_t i = 0; i < nblk; i++) free(blk[i].p);
    nblk = 0;
    free(small);

    /* Everything freed: allocation works again. */
    size_t again = 0;
    while (again < first_bytes / 2 && !err[0]) {
        errno = 0;
        p = malloc(MiB);
        if (!p) {
            werr("after freeing all: malloc(1 MiB) failed (errno %d) after %zu MiB; first pass got %zu MiB",
                 errno, again / MiB, first_bytes / MiB);
            break;
        }
        keep(p, MiB);
        again += MiB;
    }
    for (int i = 0; i < 100000 && !err[0]; i++) {
        p = malloc(64);
        if (!p) { werr("after freeing all: malloc(64) #%d failed", i); break; }
        keep(p, 64);
    }
    for (size_t i = 0; i < nblk; i++) {
        if (!intact(&blk[i], 0)) werr("second pass: block %zu corrupted", i);
        free(blk[i].p);
    }
    printf("huge=%zu 1m=%zu 64k=%zu 1k=%zu 64b=%zu again=%zuMiB %s%s\n", n_huge, n_1m, n_64k, n_1k, n_64,
           again / MiB, err[0] ? "error: " : "ok", err);
    return err[0] ? 1 : 0;
}

/* Frees 64 MiB of huge blocks, then needs that room: with a budget of
 * 120 MiB, 16 MiB blocks until NULL (about 7), all freed, then 1 MiB blocks
 * until NULL must get back at least 3/4 of what the huge blocks had, even if
 * tide kept the freed mappings for reuse. */
static int worker_caches(void)
{
    alarm(120);
    blk = mmap(NULL, 4096 * sizeof *blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blk == MAP_FAILED) { printf("error: cannot map the block table\n"); return 1; }
    void *warm = malloc(100);
    void *warm_big = malloc(MiB);   /* a chunk and its page-map leaf exist before the limit */
    if (!warm || !warm_big) { printf("error: malloc failed at start\n"); return 1; }
    if (!limit_to(120 * MiB)) return 1;
    size_t n_huge = 0;
    void *h[64];
    while (n_huge < 64) {
        errno = 0;
        h[n_huge] = malloc(16 * MiB);
        if (!h[n_huge]) break;
        memset(h[n_huge], 1, 4096);
        n_huge++;
    }
    for (size_t i = 0; i < n_huge; i++) free(h[i]);
    size_t n_1m = 0;
    for (;;) {
        errno = 0;
        void *p = malloc(MiB);
        if (!p) {
            if (errno != ENOMEM) werr("malloc(1 MiB) = NULL with errno %d", errno);
            break;
        }
        if (nblk == 4096) { werr("malloc(1 MiB) never failed"); break; }
        keep(p, MiB);
        n_1m++;
    }
    if (!err[0] && n_huge < 3) werr("only %zu huge blocks fit in the budget", n_huge);
    if (!err[0] && n_1m * 4 < n_huge * 16 * 3)
        werr("after freeing %zu MiB of huge blocks only %zu MiB of 1 MiB blocks could be allocated: "
             "freed memory held back while malloc fails", n_huge * 16, n_1m);
    for (size_t i = 0; i < nblk; i++) {
        if (!intact(&blk[i], 0)) werr("block %zu corrupted", i);
        free(blk[i].p);
    }
    free(warm);
    free(warm_big);
    printf("huge=%zu then 1m=%zu %s%s\n", n_huge, n_1m, err[0] ? "error: " : "ok", err);
    return err[0] ? 1 : 0;
}

/* A new chunk that needs a new page-map leaf (8 MiB of address space for
 * each 4 GiB tide uses), when only the freed huge blocks tide caches leave
 * room for both: the chunk must come once the cache is given back, whether
 * the OS refused the chunk or its leaf.
 *
 * The driver starts this worker under RLIMIT_AS 400 MiB, too little for the
 * flat map's range, so every chunk goes where the kernel puts it: top down,
 * in the highest gap that fits.  The worker caches a freed 64 MiB huge
 * block, then maps a 4 KiB page every 8 MiB from the lowest 10 MiB gap down
 * to the 4 GiB boundary below it: the next chunk (a 10 MiB mapping, trimmed
 * to 8 MiB) fits only below that boundary, where tide has no leaf.  It
 * lowers the limit to what is mapped plus 4 MiB and allocates 4 MiB blocks
 * until a second chunk comes: the chunk fits once the cache has made way
 * for it, its leaf only once the cache is gone.
 * `leaf huge` does the same for a huge block of 80 MiB, which the 64 MiB
 * cached cannot hold, under a limit of what is mapped plus 84 MiB: the
 * block fits, its leaf only once the cache is gone.  (A new mapping of
 * 80 MiB fits only below the boundary, before and after the cache goes.) */
#define LEAF_SPAN ((uintptr_t)4 << 30)

static int worker_leaf(bool huge)
{
    alarm(120);
    blk = mmap(NULL, 4096 * sizeof *blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blk == MAP_FAILED) { printf("error: cannot map the block table\n"); return 1; }
    struct tide_stats st;
    void *warm = malloc(100);
    void *h = malloc(64 * MiB);
    if (!warm || !h) { printf("error: malloc failed at start\n"); return 1; }
    memset(h, 1, 4096);
    free(h);
    tide_stats_get(&st);
    size_t chunks = st.n_chunks;
    if (st.huge_cached_bytes < 16 * MiB) { printf("error: the freed huge block was not cached\n"); return 1; }
    void *probe = mmap(NULL, 10 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) { printf("error: cannot map the probe\n"); return 1; }
    munmap(probe, 10 * MiB);
    uintptr_t top = (uintptr_t)probe + 10 * MiB, floor = (uintptr_t)probe & ~(LEAF_SPAN - 1);
    for (uintptr_t a = top - 8 * MiB; a >= floor && a < top; a -= 8 * MiB)
        mmap((void *)a, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    probe = mmap(NULL, 10 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED || (uintptr_t)probe + 2 * MiB > floor) {  /* (aligned to 2 MiB, it starts below) */
        printf("error: a 10 MiB mapping still goes at %p, not below %p: the test cannot set up a new leaf\n", probe,
               (void *)floor);
        return 1;
    }
    munmap(probe, 10 * MiB);
    if (huge) {
        if (!limit_to(84 * MiB)) return 1;
        errno = 0;
        void *p = malloc(80 * MiB);
        tide_stats_get(&st);
        if (!p)
            werr("malloc(80 MiB) = NULL (errno %d) with %zu MiB of freed huge blocks cached", errno,
                 st.huge_cached_bytes / MiB);
        else if ((uintptr_t)p >= floor)
            werr("the block (%p) is not below %p: the test did not set up a new leaf", p, (void *)floor);
        else {
            th_fill(p, 80 * MiB, 7);
            if (!th_verify(p, 80 * MiB, 7))
                werr("the block (%p) does not keep its contents", p);
        }
        free(p);
        printf("80m with its leaf below %p %s%s\n", (void *)floor, err[0] ? "error: " : "ok", err);
        return err[0] ? 1 : 0;
    }
    if (!limit_to(4 * MiB)) return 1;
    void *big[8];
    int n = 0;
    while (n < 8 && !err[0]) {
        errno = 0;
        big[n] = malloc(4 * MiB);
        if (!big[n]) {
            tide_stats_get(&st);
            werr("malloc(4 MiB) #%d = NULL (errno %d) with %zu MiB of freed huge blocks cached", n, errno,
                 st.huge_cached_bytes / MiB);
            break;
        }
        keep(big[n], 4 * MiB);
        tide_stats_get(&st);
        n++;
        if (st.n_chunks > chunks) break;
    }
    for (size_t i = 0; i < nblk; i++) {
        if (!intact(&blk[i], 0)) werr("block %zu corrupted", i);
        free(blk[i].p);
    }
    free(warm);
    printf("4m=%d (a new chunk) with its leaf below %p %s%s\n", n, (void *)floor, err[0] ? "error: " : "ok", err);
    return err[0] ? 1 : 0;
}

static const char *self_path;

/* Runs `self mode` in a fresh process, under RLIMIT_AS as_limit (0: the
 * driver's) and TIDE_CONF conf (NULL: the driver's); checks it exits 0. */
static void run_worker_in(const char *mode, size_t as_limit, const char *conf)
{
    int op[2];
    if (pipe(op)) { FAILF("pipe"); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(op[1], 1);
        close(op[0]); close(op[1]);
        struct rlimit rl = { as_limit, RLIM_INFINITY };
        if (as_limit && setrlimit(RLIMIT_AS, &rl) != 0) _exit(126);
        if (conf) setenv("TIDE_CONF", conf, 1);
        execl(self_path, self_path, mode, (char *)NULL);
        _exit(127);
    }
    close(op[1]);
    char out[1024];
    size_t k = 0;
    ssize_t m;
    while (k + 1 < sizeof out && (m = read(op[0], out + k, sizeof out - 1 - k)) > 0) k += (size_t)m;
    out[k] = 0;
    out[strcspn(out, "\n")] = 0;
    close(op[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    char sb[64];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %s: %s: %s", mode, th_status_str(st, sb, sizeof sb), out);
    fprintf(stderr, "ulimit worker %s: %s\n", mode, out);
}

static void run_worker(const char *mode) { run_worker_in(mode, 0, NULL); }

/* The fill worker exits 0, having hit ENOMEM at every size. */
static void exhaustion_under_ulimit(void) { run_worker("fill"); }

/* The caches worker exits 0: freed memory is not held back while malloc fails. */
static void caches_released_on_exhaustion(void) { run_worker("caches"); }

/* The leaf worker exits 0: a leaf refused is retried once the cache is
 * given back (decay_ms=-1: the scavenger must not give it back first). */
static void leaf_refused_releases_caches(void)
{
    run_worker_in("leaf", 400 * MiB, "decay_ms=-1");
    run_worker_in("leaf-huge", 400 * MiB, "decay_ms=-1");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "fill") == 0) return worker_fill();
    if (argc >= 2 && strcmp(argv[1], "caches") == 0) return worker_caches();
    if (argc >= 2 && strcmp(argv[1], "leaf") == 0) return worker_leaf(false);
    if (argc >= 2 && strcmp(argv[1], "leaf-huge") == 0) return worker_leaf(true);
    static char path[4096];
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k <= 0) { printf("FAIL ulimit: readlink /proc/self/exe\n"); return 1; }
    path[k] = 0;
    self_path = path;
    RUN(on_tide);
    RUN(exhaustion_under_ulimit);
    RUN(caches_released_on_exhaustion);
    RUN(leaf_refused_releases_caches);
    return th_summary();
}
