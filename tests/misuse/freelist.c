/* misuse/freelist.c — a free block's link overwritten (a write after free,
 * an overflow into the next block) is caught at the next malloc that
 * reaches it, and tide never hands out a pointer outside the span.
 * th-timeout: 300
 *
 * Each run is a forked child: it makes 48 blocks of one size, frees 24 of
 * them in a shuffled order (they go on their span's free lists), overwrites
 * the first word (the link) of one freed block that is still on a free list
 * (tide_block_info: a span all of whose blocks were freed is gone), then
 * mallocs the same size
 * until tide aborts or 1000 mallocs have passed (more than the free and
 * carved-ahead blocks of the sizes used).  Every pointer malloc returns is
 * checked before it is used: it must be the start of a live block of the
 * size class by the page map (tide_block_info), and not one the child
 * already holds.  The child reports on a pipe whether a pointer failed
 * that (OUTSIDE: never allowed) or no abort came (MISSED).
 *
 * Series:
 *   random    10000 runs, the whole link replaced by a random 64-bit value:
 *             at least 99.99 % abort with tide's one-line report naming
 *             malloc and "heap corruption", none hands out a bad pointer;
 *   overflow  500 runs, the link's first 1 to 7 bytes replaced by other
 *             random bytes (an overflow of the block before): every one
 *             aborts;
 *   zero      100 runs, the link set to 0 (a program's p->next = NULL
 *             after free): every one aborts.
 *
 * Against glibc (TIDE_TESTS_GLIBC=1) the series fail: glibc's safe-linking
 * catches some, not all, and hands out wild pointers in others. */
#include "testhelper.h"

#include <signal.h>
#include <sys/wait.h>

#pragma GCC diagnostic ignored "-Wuse-after-free"

enum { N_BLOCKS = 48, N_FREED = 24, N_MALLOCS = 1000, SET = 4096 };
enum { R_MISSED = 1, R_OUTSIDE = 2, R_SETUP = 3 };

static const size_t sizes[] = { 16, 24, 48, 100, 256, 600, 1500, 4000, 20000 };

#define N_SIZES (sizeof sizes / sizeof sizes[0])

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* kind: 0 random word, 1 overflow of 1..7 bytes, 2 zero. */
static int child(unsigned run, int kind)
{
    rng_state = 0x9e3779b97f4a7c15ull * (run + 1) + (uint64_t)kind * 0x1234567u;
    size_t size = sizes[run % (sizeof sizes / sizeof sizes[0])];
    unsigned char *blk[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++) {
        blk[i] = malloc(size);
        if (!blk[i]) return R_SETUP;
        memset(blk[i], 0x5a, size);
    }
    struct tide_block_info info;
    int cls = -1;
#if TH_TIDE
    if (tide_block_info(blk[0], &info) != TIDE_BLOCK_LIVE) return R_SETUP;
    cls = info.block.size_class;
#endif
    int order[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++) order[i] = i;
    for (int i = N_BLOCKS - 1; i > 0; i--) {
        int j = (int)(rng() % (uint64_t)(i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
    bool held[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++) held[i] = true;
    for (int i = 0; i < N_FREED; i++) {
        free(blk[order[i]]);
        held[order[i]] = false;
    }
    /* the victim: a freed block still on a free list of its span (a span
     * whose blocks were all freed went back to the page allocator) */
    unsigned char *victim = NULL;
    for (int tries = 0; !victim && tries < 4 * N_FREED; tries++) {
        unsigned char *v = blk[order[rng() % N_FREED]];
#if TH_TIDE
        if (tide_block_info(v, &info) != TIDE_BLOCK_FREE || info.block.ptr != v || info.block.size_class != cls)
            continue;
#endif
        victim = v;
    }
    if (!victim) return R_SETUP;
    uint64_t old, neu;
    memcpy(&old, victim, 8);
    if (kind == 0) {
        do neu = rng(); while (neu == old);
    } else if (kind == 1) {
        int nb = 1 + (int)(rng() % 7);
        neu = old;
        unsigned char *nbp = (unsigned char *)&neu;
        do
            for (int b = 0; b < nb; b++) nbp[b] = (unsigned char)rng();
        while (neu == old);
    } else {
        neu = 0;
        if (old == 0) return R_SETUP;
    }
    memcpy(victim, &neu, 8);   /* the misuse: a write into a free block */
    uintptr_t first = (uintptr_t)blk[0];  /* for the report */
    /* pointers handed out since: a second hand-out of one is a bad pointer too */
    static uintptr_t got[SET];
    for (int k = 0; k < N_MALLOCS; k++) {
        unsigned char *p = malloc(size);
        uintptr_t a = (uintptr_t)p;
        bool ok = p != NULL;
#if TH_TIDE
        ok = ok && tide_block_info(p, &info) == TIDE_BLOCK_LIVE && info.block.ptr == p &&
             info.block.size_class == cls;
#endif
        for (int i = 0; ok && i < N_BLOCKS; i++)
            if (held[i] && (uintptr_t)blk[i] == a) ok = false;
        size_t h = (size_t)((a >> 4) * 0x9e3779b97f4a7c15ull >> 52);  /* 0..4095 */
        while (ok && got[h]) {
            if (got[h] == a) ok = false;
            h = (h + 1) & (SET - 1);
        }
        if (!ok) {
            fprintf(stderr, "malloc #%d of %zu bytes gave %p (first block %p)\n", k, size, (void *)p,
                    (void *)first);
            return R_OUTSIDE;
        }
        got[h] = a;
        p[0] = 1;
    }
    return R_MISSED;
}

typedef struct {
    unsigned runs, caught, missed, outside, other;
    char other_what[300];
} tally_t;

static void run_one(unsigned run, int kind, tally_t *t)
{
    int ep[2], rp[2];
    if (pipe(ep) || pipe(rp)) { t->other++; return; }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { t->other++; return; }
    if (pid == 0) {
        close(ep[0]); close(rp[0]);
        dup2(ep[1], 2);
        close(ep[1]);
        signal(SIGABRT, SIG_DFL);
        unsigned char r = (unsigned char)child(run, kind);
        if (write(rp[1], &r, 1) != 1) _exit(4);
        _exit(0);
    }
    close(ep[1]); close(rp[1]);
    char err[2048];
    size_t k = 0;
    ssize_t m;
    while (k + 1 < sizeof err && (m = read(ep[0], err + k, sizeof err - 1 - k)) > 0) k += (size_t)m;
    err[k] = 0;
    unsigned char r = 0;
    if (read(rp[0], &r, 1) != 1) r = 0;
    close(ep[0]); close(rp[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) { t->other++; return; }
    t->runs++;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) {
        /* one line: tide: malloc(0x...): heap corruption: ... */
        const char *nl = strchr(err, '\n');
        bool one_line = nl && nl[1] == 0;
        if (strncmp(err, "tide: malloc(0x", 15) == 0 && strstr(err, "): heap corruption") && one_line) {
            t->caught++;
            return;
        }
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && r == R_MISSED) {
        if (t->missed < 5)
            fprintf(stderr, "  not caught: run %u (%zu-byte blocks)\n", run, sizes[run % N_SIZES]);
        t->missed++;
        return;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && r == R_OUTSIDE) {
        if (!t->outside)
            fprintf(stderr, "  first bad pointer: run %u: %s", run, err);
        t->outside++;
        return;
    }
    if (!t->other_what[0]) {
        char sb[64];
        snprintf(t->other_what, sizeof t->other_what, "run %u: %s, result %d, stderr \"%.150s\"", run,
                 th_status_str(st, sb, sizeof sb), r, err);
    }
    t->other++;
}

static void series(const char *name, int kind, unsigned runs, unsigned max_missed)
{
    tally_t t;
    memset(&t, 0, sizeof t);
    for (unsigned i = 0; i < runs; i++)
        run_one(i, kind, &t);
    fprintf(stderr, "%s: %u runs: %u caught with tide's report, %u not caught, %u bad pointers, %u other\n", name,
            t.runs, t.caught, t.missed, t.outside, t.other);
    if (t.other_what[0])
        fprintf(stderr, "  first other: %s\n", t.other_what);
    CHECKF(t.outside == 0, "%s: %u runs handed out a pointer outside the span", name, t.outside);
    CHECKF(t.other == 0, "%s: %u runs ended otherwise (%s)", name, t.other, t.other_what);
    CHECKF(t.missed <= max_missed, "%s: %u of %u runs not caught (at most %u allowed)", name, t.missed, runs,
           max_missed);
}

static void random_link(void) { series("random", 0, getenv("FL_RUNS") ? (unsigned)atoi(getenv("FL_RUNS")) : 10000, 1); }
static void overflow_link(void) { series("overflow", 1, 500, 0); }
static void zero_link(void) { series("zero", 2, 100, 0); }

int main(void)
{
    RUN(random_link);
    RUN(overflow_link);
    RUN(zero_link);
    return th_summary();
}
