/* api/progs/prof_prog.c — the program tests/api/prof.sh runs with
 * TIDE_CONF=prof=1 (not a test itself: the runner compiles only the .c
 * files directly in tests/<group>).
 *
 *   prof_prog sites MIB RATE DUMP     allocates the sites below with MIB MiB
 *                                     live in all, prints "pid N" and one
 *                                     line per site with its true bytes,
 *                                     calls tide_prof_dump(DUMP) unless DUMP
 *                                     is "-" (a line "dump RC ERRNO"), and
 *                                     returns from main with every block live
 *   prof_prog wait MIB DIR READY      the same sites, then creates the file
 *                                     READY and waits (up to 5 s) for a
 *                                     non-empty file to appear in DIR (a
 *                                     profile written at a signal); prints
 *                                     "seen NAME" or "timeout"
 *   prof_prog dump PATH...            calls tide_prof_dump(PATH) for each
 *                                     PATH ("NULL" for NULL) and prints
 *                                     "dump PATH RC ERRNO" for each
 *   prof_prog ranges RATE             every entry point (malloc, calloc,
 *                                     realloc, aligned_alloc, posix_memalign,
 *                                     memalign, valloc, pvalloc) at every
 *                                     size range, realloc in place and
 *                                     across every boundary, each in every
 *                                     thread state (contexts.h); prints
 *                                     "pid N" and the site lines
 *   prof_prog resize RATE             large and huge blocks resized in place
 *                                     over and over (allocated bytes)
 *   prof_prog largeonly RATE          a program that allocates only large
 *                                     blocks, in main and in a thread
 *
 * The sites of `sites` and `wait`, each a noinline function that calls
 * malloc itself:
 *   site_hot    60 % of the live bytes   (plus 2 x 1 MiB large, 1 x 6 MiB huge)
 *   site_warm   30 %                     (plus 3 x 1 MiB large)
 *   site_cold   10 %                     (plus 2 x 256 KiB large)
 *   site_churn  allocates 2 x MIB MiB in batches of about 1 MiB and frees
 *               each batch (site_churn_free): most of the bytes ever
 *               allocated, none live
 * The rest of each site's bytes is spread evenly over twelve small sizes
 * from 16 B to 64 KiB (the same bytes in each, so many more small blocks
 * than big ones).  Every size is a size class of tide, and large and huge
 * sizes are page multiples, so requested and usable bytes agree.
 *
 * A site's line: "site NAME live BYTES alloc BYTES sd_live SD sd_alloc SD"
 * where SD is the standard deviation of the profile's estimate of those
 * bytes at a sample interval RATE (0 when no RATE is known): each block of
 * n bytes is sampled with probability p = 1 - exp(-n/RATE) and counted as
 * n/p bytes when it is, so its estimate has variance n^2 (1 - p) / p, and
 * the blocks are independent.  The pointers are kept in an mmap'ed array,
 * so that no malloc of the program's own competes with the sites. */
#include "contexts.h"
#include "progs.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

int tide_prof_dump(const char *path);
#pragma weak tide_prof_dump

/* One allocation site's work: count blocks of each size. */
#define MAX_SIZES 16
struct plan {
    size_t size[MAX_SIZES];   /* block sizes */
    size_t count[MAX_SIZES];  /* blocks of each */
    int n;                    /* entries used */
};

static const size_t small_sizes[] = { 16, 32, 48, 64, 128, 256, 384, 1024, 1536, 4096, 16384, 65536 };
#define N_SMALL (sizeof small_sizes / sizeof small_sizes[0])

static void plan_add(struct plan *pl, size_t size, size_t count)
{
    pl->size[pl->n] = size;
    pl->count[pl->n] = count;
    pl->n++;
}

/* A plan of `bytes` in all: the big blocks given, the rest spread evenly
 * over the small sizes. */
static void plan_make(struct plan *pl, size_t bytes, size_t big, size_t n_big, size_t huge, size_t n_huge)
{
    memset(pl, 0, sizeof *pl);
    size_t rest = bytes - big * n_big - huge * n_huge;
    for (size_t i = 0; i < N_SMALL; i++)
        plan_add(pl, small_sizes[i], rest / N_SMALL / small_sizes[i]);
    if (n_big) plan_add(pl, big, n_big);
    if (n_huge) plan_add(pl, huge, n_huge);
}

static size_t plan_bytes(const struct plan *pl)
{
    size_t b = 0;
    for (int i = 0; i < pl->n; i++) b += pl->size[i] * pl->count[i];
    return b;
}

static size_t plan_blocks(const struct plan *pl)
{
    size_t b = 0;
    for (int i = 0; i < pl->n; i++) b += pl->count[i];
    return b;
}

/* Variance of the profile's estimate of the plan's bytes (see the top). */
static double plan_var(const struct plan *pl, double rate)
{
    double v = 0;
    for (int i = 0; i < pl->n; i++) {
        double n = (double)pl->size[i], q = exp(-n / rate);
        if (q > 0) v += (double)pl->count[i] * n * n * q / (1 - q);
    }
    return v;
}

/* ---- the sites ------------------------------------------------------------- */

/* Each allocates its plan into out[] and returns the number of blocks.  The
 * tag written differs per site, so that no two have the same code (the
 * compiler could fold identical functions into one). */
__attribute__((noinline, noclone)) size_t site_hot(const struct plan *pl, void **out)
{
    size_t k = 0;
    for (int i = 0; i < pl->n; i++)
        for (size_t j = 0; j < pl->count[i]; j++) {
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'h';
            out[k++] = p;
        }
    return k;
}

__attribute__((noinline, noclone)) size_t site_warm(const struct plan *pl, void **out)
{
    size_t k = 0;
    for (int i = 0; i < pl->n; i++)
        for (size_t j = 0; j < pl->count[i]; j++) {
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'w';
            out[k++] = p;
        }
    return k;
}

__attribute__((noinline, noclone)) size_t site_cold(const struct plan *pl, void **out)
{
    size_t k = 0;
    for (int i = 0; i < pl->n; i++)
        for (size_t j = 0; j < pl->count[i]; j++) {
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'c';
            out[k++] = p;
        }
    return k;
}

__attribute__((noinline, noclone)) void site_churn_free(void **ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++) free(ptrs[i]);
}

/* Allocates the plan round-robin over its sizes (one block of each size
 * with blocks left, again and again), freeing what it holds whenever it
 * holds about 1 MiB, and at the end. */
__attribute__((noinline, noclone)) void site_churn(const struct plan *pl, void **batch, size_t batch_max)
{
    size_t left[MAX_SIZES], held = 0, n = 0;
    for (int i = 0; i < pl->n; i++) left[i] = pl->count[i];
    for (bool more = true; more;) {
        more = false;
        for (int i = 0; i < pl->n; i++) {
            if (!left[i]) continue;
            left[i]--;
            more = true;
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'x';
            batch[n++] = p;
            held += pl->size[i];
            if (held >= MiB || n == batch_max) {
                site_churn_free(batch, n);
                n = 0, held = 0;
            }
        }
    }
    site_churn_free(batch, n);
}

/* ---- modes ----------------------------------------------------------------- */

static void *map_array(size_t n)
{
    void *p = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    return p;
}

static void print_site(const char *name, const struct plan *pl, bool live, double rate)
{
    double sd = rate > 0 ? sqrt(plan_var(pl, rate)) : 0;
    printf("site %s live %zu alloc %zu sd_live %.0f sd_alloc %.0f\n", name,
           live ? plan_bytes(pl) : 0, plan_bytes(pl), live ? sd : 0, sd);
}

/* Allocates the sites with mib MiB live; prints their lines. */
static void run_sites(size_t mib, double rate)
{
    size_t live = mib * MiB;
    struct plan hot, warm, cold, churn;
    plan_make(&hot, live / 10 * 6, MiB, 2, 6 * MiB, 1);
    plan_make(&warm, live / 10 * 3, MiB, 3, 0, 0);
    plan_make(&cold, live / 10, 256 * KiB, 2, 0, 0);
    plan_make(&churn, 2 * live, MiB, 2 * mib / 40, 0, 0);
    void **ptrs = map_array(plan_blocks(&hot) + plan_blocks(&warm) + plan_blocks(&cold));
    size_t k = 0;
    k += site_hot(&hot, ptrs + k);
    k += site_warm(&warm, ptrs + k);
    k += site_cold(&cold, ptrs + k);
    size_t batch_max = MiB / 16 + 1;
    site_churn(&churn, map_array(batch_max), batch_max);
    printf("pid %d\n", (int)getpid());
    print_site("site_hot", &hot, true, rate);
    print_site("site_warm", &warm, true, rate);
    print_site("site_cold", &cold, true, rate);
    print_site("site_churn", &churn, false, rate);
    printf("blocks %zu\n", k);
}

/* ---- every entry point, size range and thread state (ranges, resize) ----- */

/* The truth per site of the ranges and resize modes, in the order made. */
struct truth {
    const char *name;          /* the site's function */
    double live, alloc;        /* true bytes live at the end, and allocated */
    double var_live, var_alloc;/* variances of the profile's estimates of them */
};
static struct truth truths[64];
static int n_truths;
static double truth_rate;      /* the sample interval the variances are for */

/* Counts `blocks` allocations of n bytes at site name, live at the end or
 * not.  Variance per block: n^2 q / (1 - q), q = exp(-n / rate). */
static void truth_add(const char *name, size_t n, size_t blocks, bool live)
{
    struct truth *t = NULL;
    for (int i = 0; i < n_truths; i++)
        if (strcmp(truths[i].name, name) == 0) t = &truths[i];
    if (!t) {
        t = &truths[n_truths++];
        t->name = name;
    }
    double q = exp(-(double)n / truth_rate), v = q > 0 ? (double)n * (double)n * q / (1 - q) : 0;
    t->alloc += (double)n * (double)blocks;
    t->var_alloc += v * (double)blocks;
    if (live) {
        t->live += (double)n * (double)blocks;
        t->var_live += v * (double)blocks;
    }
}

static void truth_print(void)
{
    for (int i = 0; i < n_truths; i++)
        printf("site %s live %.0f alloc %.0f sd_live %.0f sd_alloc %.0f\n", truths[i].name, truths[i].live,
               truths[i].alloc, sqrt(truths[i].var_live), sqrt(truths[i].var_alloc));
}

/* Site functions: each calls one entry point itself, writes a tag that
 * differs per function (so that no two have the same code) and does not
 * tail-call (so that it is the innermost frame of the stack). */
typedef void (*entry_fn)(size_t n, size_t align, size_t k, void **out);

#define ENTRY_SITE(fn, tag, expr)                                                     \
    __attribute__((noinline, noclone)) void fn(size_t n, size_t align, size_t k, void **out) \
    {                                                                                 \
        (void)align;                                                                  \
        for (size_t i = 0; i < k; i++) {                                              \
            char *p = (expr);                                                         \
            if (!p) { fprintf(stderr, #fn "(%zu) failed\n", n); abort(); }           \
            p[0] = (tag);                                                             \
            out[i] = p;                                                               \
        }                                                                             \
    }
#define ENTRY_SITES(e, tag, expr) \
    ENTRY_SITE(e_##e##_small, tag, expr) ENTRY_SITE(e_##e##_large, tag + 1, expr) ENTRY_SITE(e_##e##_huge, tag + 2, expr)

ALLOC_ENTRY_POINTS(ENTRY_SITES)

enum { R_SMALL, R_LARGE, R_HUGE, N_RANGES };
static const char *const range_name[N_RANGES] = { "small", "large", "huge" };

#define HUGE_N (4 * MiB + 100000)
/* One entry point: its site per size range, with the size, alignment and
 * number of blocks there.  Small sizes need many blocks for a sharp
 * estimate at interval 4096; large and huge blocks are sampled almost
 * surely.  pvalloc's requests count rounded up to pages (gperftools counts
 * them so too). */
struct entry {
    const char *name;
    entry_fn fn[N_RANGES];
    size_t size[N_RANGES], align[N_RANGES], count[N_RANGES];
    bool page_rounded;
};
#define FNS(e) { e##_small, e##_large, e##_huge }
static const struct entry entries[] = {
    { "malloc", FNS(e_malloc), { 1000, 200000, HUGE_N }, { 0, 0, 0 }, { 6000, 12, 3 }, false },
    { "calloc", FNS(e_calloc), { 1000, 200000, HUGE_N }, { 0, 0, 0 }, { 6000, 12, 3 }, false },
    { "realloc", FNS(e_realloc), { 1000, 200000, HUGE_N }, { 0, 0, 0 }, { 6000, 12, 3 }, false },
    { "aligned_alloc", FNS(e_aligned_alloc), { 1000, 200000, HUGE_N }, { 64, 16384, 2 * MiB }, { 6000, 12, 3 }, false },
    { "posix_memalign", FNS(e_posix_memalign), { 1000, 200000, HUGE_N }, { 256, 65536, MiB }, { 6000, 12, 3 }, false },
    { "memalign", FNS(e_memalign), { 1000, 200000, HUGE_N }, { 128, 8192, 65536 }, { 6000, 12, 3 }, false },
    { "valloc", FNS(e_valloc), { 4000, 200000, HUGE_N }, { 0, 0, 0 }, { 1500, 12, 3 }, false },
    { "pvalloc", FNS(e_pvalloc), { 3000, 200001, HUGE_N }, { 0, 0, 0 }, { 1200, 12, 3 }, true },
};
#define N_ENTRIES (sizeof entries / sizeof entries[0])

static const char *site_name(const struct entry *e, int r)
{
    static char names[N_ENTRIES][N_RANGES][48];
    char *s = names[e - entries][r];
    snprintf(s, sizeof names[0][0], "e_%s_%s", e->name, range_name[r]);
    return s;
}

struct entry_job {
    const struct entry *e;
    int range;
    void **out;                /* count[range] pointers: a third per context */
};

static void entry_work(int ctx, void *arg)
{
    struct entry_job *j = arg;
    size_t k = j->e->count[j->range] / N_CTX;
    j->e->fn[j->range](j->e->size[j->range], j->e->align[j->range], k, j->out + (size_t)ctx * k);
}

/* realloc: an origin site allocates, a resize site reallocs the block in
 * place (or not: the sizes say where it may), the block stays live.  And a
 * chain of reallocs that takes each block across every boundary. */
#define ORIGIN(fn, tag)                                                        \
    __attribute__((noinline, noclone)) void *fn(size_t n)                      \
    {                                                                          \
        char *p = malloc(n);                                                   \
        if (!p) { fprintf(stderr, #fn "(%zu) failed\n", n); abort(); }        \
        p[0] = (tag);                                                          \
        return p;                                                              \
    }
#define RESIZE(fn, tag)                                                        \
    __attribute__((noinline, noclone)) void *fn(void *p, size_t n)             \
    {                                                                          \
        char *q = realloc(p, n);                                               \
        if (!q) { fprintf(stderr, #fn "(%zu) failed\n", n); abort(); }        \
        q[0] = (tag);                                                          \
        return q;                                                              \
    }
ORIGIN(ro_small, 'a') RESIZE(re_small_inplace, 'b')
ORIGIN(ro_large_shrink, 'c') RESIZE(re_large_shrink, 'd')
ORIGIN(ro_large_grow, 'e') RESIZE(re_large_grow, 'f')
ORIGIN(ro_huge_grow, 'g') RESIZE(re_huge_grow, 'h')
ORIGIN(ro_huge_shrink, 'i') RESIZE(re_huge_shrink, 'j')
ORIGIN(ch_malloc, 'k') RESIZE(ch_s2l, 'l') RESIZE(ch_l2h, 'm') RESIZE(ch_h2h, 'n') RESIZE(ch_h2l, 'o')
RESIZE(ch_l2l, 'p') RESIZE(ch_l2s, 'q') RESIZE(ch_s2s, 'r') RESIZE(ch_s2h, 's') RESIZE(ch_h2s, 't')
RESIZE(ch_s2l_end, 'u')
ORIGIN(rs_origin_large, 'v') RESIZE(rs_large_up, 'w') RESIZE(rs_large_down, 'x')
ORIGIN(rs_origin_huge, 'y') RESIZE(rs_huge_up, 'z') RESIZE(rs_huge_down, 'A')

struct pair {
    const char *origin_name, *resize_name;
    void *(*origin)(size_t);
    void *(*resize)(void *, size_t);
    size_t from, to, count;
    void **out;
};
#define PAIR(o, r, from, to, count) { #o, #r, o, r, from, to, count, NULL }
static struct pair pairs[] = {
    PAIR(ro_small, re_small_inplace, 1000, 1020, 6000),  /* one class: in place unless sampled */
    PAIR(ro_large_shrink, re_large_shrink, 200000, 150000, 12),
    PAIR(ro_large_grow, re_large_grow, 150000, 200000, 12),
    PAIR(ro_huge_grow, re_huge_grow, HUGE_N, 6 * MiB, 3),
    PAIR(ro_huge_shrink, re_huge_shrink, 6 * MiB, HUGE_N, 3),
};
#define N_PAIRS (sizeof pairs / sizeof pairs[0])

static void pair_work(int ctx, void *arg)
{
    struct pair *pr = arg;
    size_t k = pr->count / N_CTX;
    for (size_t i = 0; i < k; i++)
        pr->out[(size_t)ctx * k + i] = pr->resize(pr->origin(pr->from), pr->to);
}

/* The chain: small -> large -> huge -> huge (mremap) -> large -> large (in
 * place) -> small -> small (in place) -> huge -> small -> large. */
static const struct {
    const char *name;
    void *(*fn)(void *, size_t);
    size_t n;
} chain[] = {
    { "ch_s2l", ch_s2l, 200000 }, { "ch_l2h", ch_l2h, 5 * MiB }, { "ch_h2h", ch_h2h, 6 * MiB },
    { "ch_h2l", ch_h2l, 300000 }, { "ch_l2l", ch_l2l, 250000 }, { "ch_l2s", ch_l2s, 1000 },
    { "ch_s2s", ch_s2s, 1020 }, { "ch_s2h", ch_s2h, 4 * MiB + 500000 }, { "ch_h2s", ch_h2s, 2000 },
    { "ch_s2l_end", ch_s2l_end, 100000 },
};
#define N_CHAIN (sizeof chain / sizeof chain[0])
#define CHAIN_FIRST 100
#define CHAIN_COUNT 30

static void chain_work(int ctx, void *arg)
{
    void **out = arg;
    size_t k = CHAIN_COUNT / N_CTX;
    for (size_t i = 0; i < k; i++) {
        void *p = ch_malloc(CHAIN_FIRST);
        for (size_t s = 0; s < N_CHAIN; s++)
            p = chain[s].fn(p, chain[s].n);
        out[(size_t)ctx * k + i] = p;
    }
}

/* ranges: every entry point at every size range, realloc in place and
 * across every boundary, each in every thread state; everything stays
 * live.  Prints "pid N" and one site line per site (as `sites` does), then
 * returns from main. */
static void run_ranges(double rate)
{
    truth_rate = rate;
    struct entry_job jobs[N_ENTRIES][N_RANGES];
    for (size_t i = 0; i < N_ENTRIES; i++)
        for (int r = 0; r < N_RANGES; r++) {
            jobs[i][r] = (struct entry_job){ &entries[i], r, map_array(entries[i].count[r]) };
            for (int ctx = 0; ctx < N_CTX; ctx++)
                ctx_run(ctx, entry_work, &jobs[i][r]);
            size_t n = entries[i].size[r];
            if (entries[i].page_rounded)
                n = (n + 4095) & ~(size_t)4095;
            truth_add(site_name(&entries[i], r), n, entries[i].count[r], true);
        }
    for (size_t i = 0; i < N_PAIRS; i++) {
        pairs[i].out = map_array(pairs[i].count);
        for (int ctx = 0; ctx < N_CTX; ctx++)
            ctx_run(ctx, pair_work, &pairs[i]);
        truth_add(pairs[i].origin_name, pairs[i].from, pairs[i].count, false);
        truth_add(pairs[i].resize_name, pairs[i].to, pairs[i].count, true);
    }
    void **chained = map_array(CHAIN_COUNT);
    for (int ctx = 0; ctx < N_CTX; ctx++)
        ctx_run(ctx, chain_work, chained);
    truth_add("ch_malloc", CHAIN_FIRST, CHAIN_COUNT, false);
    for (size_t s = 0; s < N_CHAIN; s++)
        truth_add(chain[s].name, chain[s].n, CHAIN_COUNT, s == N_CHAIN - 1);
    printf("pid %d\n", (int)getpid());
    truth_print();
}

/* resize: blocks resized in place again and again, the large one between
 * 1 MiB and 1.5 MiB (page runs), the huge one between 5 and 6 MiB
 * (mremap), in every thread state, then freed: the allocated bytes of the
 * resize sites count every realloc, sampled or not. */
#define RS_LARGE_ROUNDS 2000
#define RS_HUGE_ROUNDS 700
static void resize_work(int ctx, void *arg)
{
    (void)ctx, (void)arg;
    void *p = rs_origin_large(MiB);
    for (int i = 0; i < RS_LARGE_ROUNDS; i++)
        p = rs_large_down(rs_large_up(p, MiB + MiB / 2), MiB);
    free(p);
    p = rs_origin_huge(5 * MiB);
    for (int i = 0; i < RS_HUGE_ROUNDS; i++)
        p = rs_huge_down(rs_huge_up(p, 6 * MiB), 5 * MiB);
    free(p);
}

static void run_resize(double rate)
{
    truth_rate = rate;
    for (int ctx = 0; ctx < N_CTX; ctx++)
        ctx_run(ctx, resize_work, NULL);
    truth_add("rs_origin_large", MiB, N_CTX, false);
    truth_add("rs_large_up", MiB + MiB / 2, (size_t)N_CTX * RS_LARGE_ROUNDS, false);
    truth_add("rs_large_down", MiB, (size_t)N_CTX * RS_LARGE_ROUNDS, false);
    truth_add("rs_origin_huge", 5 * MiB, N_CTX, false);
    truth_add("rs_huge_up", 6 * MiB, (size_t)N_CTX * RS_HUGE_ROUNDS, false);
    truth_add("rs_huge_down", 5 * MiB, (size_t)N_CTX * RS_HUGE_ROUNDS, false);
    printf("pid %d\n", (int)getpid());
    truth_print();
}

/* largeonly: a program whose allocations are all large until it prints:
 * the main thread's first allocations, then a thread's (a large-only
 * thread).  Prints "pid N" and the site lines. */
ORIGIN(lo_main, 'B')
ORIGIN(lo_thread, 'C')
#define LO_BLOCKS 30
static void *lo_thread_work(void *arg)
{
    void **out = arg;
    for (int i = 0; i < LO_BLOCKS; i++)
        out[i] = lo_thread(200 * KiB);
    return NULL;
}

static void run_largeonly(double rate)
{
    void **kept = map_array(2 * LO_BLOCKS);
    for (int i = 0; i < LO_BLOCKS; i++)
        kept[i] = lo_main(300 * KiB);
    pthread_t t;
    if (pthread_create(&t, NULL, lo_thread_work, kept + LO_BLOCKS) != 0) { perror("pthread_create"); exit(2); }
    pthread_join(t, NULL);
    truth_rate = rate;
    truth_add("lo_main", 300 * KiB, LO_BLOCKS, true);
    truth_add("lo_thread", 200 * KiB, LO_BLOCKS, true);
    printf("pid %d\n", (int)getpid());
    truth_print();
}

static void print_dump(const char *what, int rc, int err)
{
    printf("dump %s %d %s\n", what, rc, rc == 0 ? "0" : strerrorname_np(err) ? strerrorname_np(err) : "?");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sites") == 0 && argc == 5) {
        run_sites(strtoul(argv[2], NULL, 10), strtod(argv[3], NULL));
        if (strcmp(argv[4], "-") != 0) {
            if (!tide_prof_dump) {
                printf("dump missing\n");
                return 0;
            }
            errno = 0;
            int rc = tide_prof_dump(argv[4]);
            print_dump(argv[4], rc, errno);
        }
        return 0;
    }
    if (strcmp(mode, "wait") == 0 && argc == 5) {
        run_sites(strtoul(argv[2], NULL, 10), 0);
        const char *dir = argv[3];
        FILE *f = fopen(argv[4], "w");
        if (!f) { perror(argv[4]); return 2; }
        fclose(f);
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        for (int i = 0; i < 500; i++) {
            DIR *d = opendir(dir);
            if (!d) { perror(dir); return 2; }
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                char path[4096];
                struct stat sb;
                if (e->d_name[0] == '.') continue;
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                if (stat(path, &sb) == 0 && sb.st_size > 0) {
                    printf("seen %s\n", e->d_name);
                    closedir(d);
                    return 0;
                }
            }
            closedir(d);
            nanosleep(&ts, NULL);
        }
        printf("timeout\n");
        return 0;
    }
    if (strcmp(mode, "dump") == 0 && argc >= 3) {
        for (int i = 2; i < argc; i++) {
            if (!tide_prof_dump) {
                printf("dump missing\n");
                return 0;
            }
            const char *path = strcmp(argv[i], "NULL") == 0 ? NULL : argv[i];
            errno = 0;
            int rc = tide_prof_dump(path);
            print_dump(argv[i], rc, errno);
        }
        return 0;
    }
    if (strcmp(mode, "ranges") == 0 && argc == 3) {
        run_ranges(strtod(argv[2], NULL));
        return 0;
    }
    if (strcmp(mode, "resize") == 0 && argc == 3) {
        run_resize(strtod(argv[2], NULL));
        return 0;
    }
    if (strcmp(mode, "largeonly") == 0 && argc == 3) {
        run_largeonly(strtod(argv[2], NULL));
        return 0;
    }
    fprintf(stderr, "usage: prof_prog sites MIB RATE DUMP | wait MIB DIR READY | dump PATH... | ranges RATE | resize RATE | largeonly RATE\n");
    return 2;
}
