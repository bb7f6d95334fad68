/* api/bigreuse.c — freed large and huge blocks stay mapped and are reused;
 * they go back to the OS by the scavenger's decay, malloc_trim, or when the
 * huge cache is over its bound (issue 19).
 *
 * Reuse is seen by addresses (a block freed and a block of the same size
 * allocated next share an address) and by tide_stats_get (huge_cached_bytes,
 * returned_bytes, n_chunks), never by time.  The tests run with
 * tide_set_decay_ms(-1) (nothing decays while they look), except
 * decay_returns_cache, which sets a short delay and waits (a bounded poll)
 * for the memory to go back.
 *   huge_freed_stays_cached    a freed huge block is cached, not unmapped,
 *                              and the next block of its size is it;
 *   huge_split_and_merge       blocks cut from one cached range sit side by
 *                              side and merge back into it when freed; the
 *                              best-fitting range serves a request;
 *   huge_realloc_in_place      realloc shrinks by caching the tail and grows
 *                              back over it at the same address; contents
 *                              survive every step;
 *   calloc_reused_huge_zero    calloc of a reused huge block (whole, split,
 *                              with slack, grown) returns zeros;
 *   large_runs_stay_mapped     freed large blocks' chunks stay mapped and
 *                              their pages are reused;
 *   reuse_across_threads       blocks freed by one thread (remote frees of
 *                              another's blocks) serve a third thread;
 *   cache_bounded_by_peak      the huge cache holds at most the recent peak
 *                              of live huge bytes;
 *   cache_bounded_by_option    TIDE_CONF huge_cache_mb bounds it too, and 0
 *                              turns it off (in a child started with it);
 *   cache_gives_way_to_chunks  a chunk mapped for smaller blocks unmaps as
 *                              much of the cache first, so that the two are
 *                              not held at once;
 *   trim_returns_cache         malloc_trim(0) unmaps the cache, returns 1;
 *   fork_child_reuses          a forked child reuses the cache it inherited,
 *                              and its own scavenger returns it;
 *   decay_returns_cache        the scavenger unmaps cached huge ranges and
 *                              empty chunks after the decay delay;
 *   big_block_on_resident_run  a block of 4-8 MiB goes to a chunk's free run
 *                              whose pages are resident (freed large blocks')
 *                              as a large block, by every entry point and
 *                              from a fresh thread, calloc'ed ones zeroed;
 *                              it grows and shrinks in place there, and
 *                              moves to a mapping past a chunk; with no
 *                              resident run it is huge. */
#include "testhelper.h"

#include <sys/resource.h>

#pragma weak tide_set_decay_ms
/* The tests compare the addresses of freed blocks with new ones on purpose. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static char *xmalloc(size_t n)
{
    char *p = th_opaque_ptr(malloc(th_opaque(n)));
    if (!p) {
        FAILF("malloc(%zu) failed", n);
        abort();
    }
    return p;
}

static void huge_freed_stays_cached(void)
{
    TIDE_ONLY();
    tide_trim();
    struct tide_stats a = th_stats();
    char *p = xmalloc(20 * MiB);
    memset(p, 0x11, 20 * MiB);
    uintptr_t was = (uintptr_t)p;
    free(p);
    struct tide_stats b = th_stats();
    CHECKF(b.huge_cached_bytes >= a.huge_cached_bytes + 20 * MiB, "huge cache %zu -> %zu bytes after a 20 MiB free",
           a.huge_cached_bytes, b.huge_cached_bytes);
    CHECKF(b.returned_bytes < a.returned_bytes + 20 * MiB, "returned_bytes %zu -> %zu: the block went back at free",
           a.returned_bytes, b.returned_bytes);
    char *q = xmalloc(20 * MiB);
    CHECKF((uintptr_t)q == was, "malloc(20 MiB) after freeing one = %p, the freed block was %#lx", (void *)q,
           (unsigned long)was);
    free(q);
}

static void huge_split_and_merge(void)
{
    TIDE_ONLY();
    tide_trim();
    char *p = xmalloc(30 * MiB);
    uintptr_t r = (uintptr_t)p;
    free(p);
    /* three blocks from the one cached range, in address order */
    char *a = xmalloc(6 * MiB), *b = xmalloc(5 * MiB), *c = xmalloc(19 * MiB);
    uintptr_t ra = (uintptr_t)a, rc = (uintptr_t)c;
    CHECKF(ra == r && (uintptr_t)b == r + 6 * MiB && rc == r + 11 * MiB, "blocks of 6, 5, 19 MiB cut from a cached "
           "30 MiB range at %#lx: %p %p %p", (unsigned long)r, (void *)a, (void *)b, (void *)c);
    th_fill(b, 5 * MiB, 7);
    free(a);
    free(c);
    /* two cached ranges, 6 and 19 MiB: each request takes the best fit */
    char *d = xmalloc(5 * MiB), *e = xmalloc(18 * MiB);
    CHECKF((uintptr_t)d == ra && (uintptr_t)e == rc, "5 MiB -> %p (want the 6 MiB range %#lx), 18 MiB -> %p (want "
           "the 19 MiB range %#lx)", (void *)d, (unsigned long)ra, (void *)e, (unsigned long)rc);
    CHECK(th_verify(b, 5 * MiB, 7));
    free(d);
    free(e);
    free(b);  /* merges with both neighbours */
    char *f = xmalloc(30 * MiB);
    CHECKF((uintptr_t)f == r, "30 MiB after freeing the three = %p, want the merged range %#lx", (void *)f,
           (unsigned long)r);
    free(f);
}

static void huge_realloc_in_place(void)
{
    TIDE_ONLY();
    tide_trim();
    char *p = xmalloc(30 * MiB);
    th_fill(p, 30 * MiB, 1);
    uintptr_t was = (uintptr_t)p;
    struct tide_stats a = th_stats();
    char *q = realloc(p, 10 * MiB);
    struct tide_stats b = th_stats();
    CHECKF((uintptr_t)q == was, "realloc(30 -> 10 MiB) moved the block: %#lx -> %p", (unsigned long)was, (void *)q);
    CHECK(th_verify(q, 10 * MiB, 1));
    CHECKF(b.huge_cached_bytes == a.huge_cached_bytes + 20 * MiB, "shrinking by 20 MiB: huge cache %zu -> %zu",
           a.huge_cached_bytes, b.huge_cached_bytes);
    q = realloc(q, 25 * MiB);
    CHECKF((uintptr_t)q == was, "realloc(10 -> 25 MiB) over the cached tail moved the block: %#lx -> %p",
           (unsigned long)was, (void *)q);
    if (!q)
        return;
    CHECK(th_verify(q, 10 * MiB, 1));
    th_fill(q, 25 * MiB, 2);
    for (size_t n = 40 * MiB; n <= 160 * MiB && !TH_FAILED(); n *= 2) {
        uintptr_t before = (uintptr_t)q;
        char *r = realloc(q, n);
        CHECKF(r != NULL, "realloc(%zu MiB) failed", n >> 20);
        if (!r)
            break;
        CHECKF(th_verify(r, 25 * MiB, 2), "realloc to %zu MiB (%s) lost the contents", n >> 20,
               (uintptr_t)r == before ? "in place" : "moved");
        q = r;
    }
    uintptr_t before = (uintptr_t)q;
    char *r = realloc(q, 5 * MiB);
    CHECKF((uintptr_t)r == before && th_verify(r, 5 * MiB, 2), "realloc down to 5 MiB: %#lx -> %p",
           (unsigned long)before, (void *)r);
    free(r);
}

static void calloc_reused_huge_zero(void)
{
    TIDE_ONLY();
    tide_trim();
    /* whole */
    char *p = xmalloc(20 * MiB);
    memset(p, 0xa5, 20 * MiB);
    uintptr_t r = (uintptr_t)p;
    free(p);
    char *q = calloc(1, 20 * MiB);
    CHECKF((uintptr_t)q == r, "calloc(20 MiB) = %p, the cached block is %#lx", (void *)q, (unsigned long)r);
    CHECKF(q && th_is_zero(q, 20 * MiB), "calloc of a reused 20 MiB block is not zero");
    memset(q, 0x5a, 20 * MiB);
    free(q);
    /* with slack (the block takes the whole range: only what was asked is zeroed) */
    q = calloc(1, 19 * MiB);
    CHECKF((uintptr_t)q == r, "calloc(19 MiB) = %p, the cached block is %#lx", (void *)q, (unsigned long)r);
    CHECKF(q && th_is_zero(q, 19 * MiB), "calloc of a reused block with slack is not zero");
    memset(q, 0x5a, 19 * MiB);
    free(q);
    /* split: the start, then the rest of the range */
    char *a = calloc(1, 8 * MiB), *b = calloc(1, 12 * MiB);
    CHECKF((uintptr_t)a == r && (uintptr_t)b == r + 8 * MiB, "calloc 8 + 12 MiB from a cached 20 MiB range at "
           "%#lx: %p %p", (unsigned long)r, (void *)a, (void *)b);
    CHECKF(a && b && th_is_zero(a, 8 * MiB) && th_is_zero(b, 12 * MiB), "calloc of split cached ranges not zero");
    memset(a, 0x77, 8 * MiB);
    memset(b, 0x77, 12 * MiB);
    free(b);
    free(a);
    /* grown: bigger than any cached range (part reused, part new) */
    q = calloc(1, 28 * MiB);
    CHECKF(q && th_is_zero(q, 28 * MiB), "calloc(28 MiB) over a cached 20 MiB range is not zero");
    free(q);
    /* and realloc growth does not promise zeros, but calloc after it does */
    q = xmalloc(6 * MiB);
    memset(q, 0x33, 6 * MiB);
    q = realloc(q, 9 * MiB);
    memset(q, 0x33, 9 * MiB);
    free(q);
    q = calloc(9, MiB);
    CHECKF(q && th_is_zero(q, 9 * MiB), "calloc(9 MiB) after a realloc'd block was freed is not zero");
    free(q);
}

static void large_runs_stay_mapped(void)
{
    TIDE_ONLY();
    tide_trim();
    enum { N = 24 };
    char *p[N];
    uintptr_t was[N];
    for (int i = 0; i < N; i++) {
        p[i] = xmalloc(MiB);
        memset(p[i], i, MiB);
        was[i] = (uintptr_t)p[i];
    }
    struct tide_stats a = th_stats();
    for (int i = 0; i < N; i++)
        free(p[i]);
    struct tide_stats b = th_stats();
    CHECKF(b.n_chunks == a.n_chunks, "freeing %d large blocks unmapped chunks: %zu -> %zu", N, a.n_chunks,
           b.n_chunks);
    CHECKF(b.returned_bytes == a.returned_bytes, "freeing %d large blocks returned %zu bytes to the OS", N,
           b.returned_bytes - a.returned_bytes);
    char *q = xmalloc(MiB);
    bool reused = false;
    for (int i = 0; i < N; i++)
        reused |= (uintptr_t)q == was[i];
    CHECKF(reused, "malloc(1 MiB) = %p, none of the freed 1 MiB blocks", (void *)q);
    free(q);
}

/* ---- across threads ---- */

static char *handed[2];
static uintptr_t handed_at[2];

static void *make_blocks(void *arg)
{
    (void)arg;
    handed[0] = xmalloc(16 * MiB);
    handed[1] = xmalloc(MiB);
    th_fill(handed[0], 16 * MiB, 3);
    th_fill(handed[1], MiB, 4);
    return NULL;
}

static void *take_blocks(void *arg)
{
    char **got = arg;
    got[0] = xmalloc(16 * MiB);
    got[1] = xmalloc(MiB);
    th_fill(got[0], 16 * MiB, 5);
    th_fill(got[1], MiB, 6);
    return NULL;
}

static void reuse_across_threads(void)
{
    TIDE_ONLY();
    tide_trim();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, make_blocks, NULL) == 0);
    pthread_join(t, NULL);
    CHECK(th_verify(handed[0], 16 * MiB, 3) && th_verify(handed[1], MiB, 4));
    handed_at[0] = (uintptr_t)handed[0];
    handed_at[1] = (uintptr_t)handed[1];
    free(handed[0]);  /* blocks of another (exited) thread */
    free(handed[1]);
    char *got[2] = { NULL, NULL };
    CHECK(pthread_create(&t, NULL, take_blocks, got) == 0);
    pthread_join(t, NULL);
    CHECKF((uintptr_t)got[0] == handed_at[0], "a third thread's 16 MiB block %p, the freed one was %#lx",
           (void *)got[0], (unsigned long)handed_at[0]);
    CHECKF((uintptr_t)got[1] == handed_at[1], "a third thread's 1 MiB block %p, the freed one was %#lx",
           (void *)got[1], (unsigned long)handed_at[1]);
    CHECK(th_verify(got[0], 16 * MiB, 5) && th_verify(got[1], MiB, 6));
    free(got[0]);
    free(got[1]);
}

/* ---- bounds ---- */

static void cache_bounded_by_peak(void)
{
    TIDE_ONLY();
    tide_trim();
    /* No block here is touched: only address space is used.  A 256 MiB
     * block is the peak of live huge bytes (the earlier tests stay below);
     * an aligned one that the cached range cannot serve is mapped anew,
     * and when it is freed the cache must drop back to the peak. */
    size_t n = 256 * MiB;
    char *a = xmalloc(n);
    uintptr_t ra = (uintptr_t)a;
    free(a);
    char *b = th_opaque_ptr(aligned_alloc(th_opaque(512 * MiB), th_opaque(n)));
    CHECK(b != NULL);
    if (!b)
        return;
    if ((uintptr_t)b >= ra && (uintptr_t)b < ra + n) {
        th_skip("the cached range happened to hold a 512 MiB-aligned block");
        free(b);
        return;
    }
    struct tide_stats s = th_stats();
    CHECKF(s.huge_cached_bytes >= n, "cached %zu bytes with a 256 MiB block freed", s.huge_cached_bytes);
    free(b);
    s = th_stats();
    CHECKF(s.huge_cached_bytes <= n, "huge cache %zu bytes, above the peak of live huge bytes (%zu)",
           s.huge_cached_bytes, n);
    CHECKF(s.huge_cached_bytes >= n / 2, "huge cache %zu bytes: more was unmapped than the bound asks",
           s.huge_cached_bytes);
    tide_trim();
}

/* In a child run with TIDE_CONF=huge_cache_mb=ARG: freed huge blocks
 * cached up to that bound.  Exit status 0 if so. */
static int cap_child(long mb)
{
    if (!tide_set_decay_ms)
        return 2;
    tide_set_decay_ms(-1);
    char *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = malloc(16 * MiB);
    for (int i = 0; i < 4; i++)
        free(p[i]);
    struct tide_stats s = th_stats();
    size_t want = (size_t)mb * MiB < 64 * MiB ? (size_t)mb * MiB : 64 * MiB;
    if (s.huge_cached_bytes != want) {
        fprintf(stderr, "huge_cache_mb=%ld: %zu bytes cached after freeing 4 x 16 MiB, want %zu\n", mb,
                s.huge_cached_bytes, want);
        return 1;
    }
    return 0;
}

static void cache_bounded_by_option(void)
{
    TIDE_ONLY();
    static const long caps[] = { 0, 24, 1000 };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char conf[64], arg[32];
        snprintf(conf, sizeof conf, "huge_cache_mb=%ld", caps[i]);
        snprintf(arg, sizeof arg, "cap=%ld", caps[i]);
        int st = th_rerun(conf, "bigreuse", arg);
        char sb[64];
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "huge_cache_mb=%ld: child %s", caps[i],
               th_status_str(st, sb, sizeof sb));
    }
}

static void cache_gives_way_to_chunks(void)
{
    TIDE_ONLY();
    tide_trim();
    char *h = xmalloc(32 * MiB);
    memset(h, 1, 32 * MiB);
    free(h);
    struct tide_stats a = th_stats();
    CHECKF(a.huge_cached_bytes >= 32 * MiB, "huge cache %zu bytes after freeing 32 MiB", a.huge_cached_bytes);
    /* 1 MiB large blocks (from the chunks) until two chunks more are mapped */
    enum { MAX = 64 };
    char *p[MAX];
    int n = 0;
    struct tide_stats b = a;
    while (n < MAX && b.n_chunks < a.n_chunks + 2) {
        p[n] = xmalloc(MiB);
        memset(p[n++], 3, MiB);
        b = th_stats();
    }
    CHECKF(b.n_chunks == a.n_chunks + 2, "%d blocks of 1 MiB: %zu chunks -> %zu", n, a.n_chunks, b.n_chunks);
    size_t chunks_bytes = (b.n_chunks - a.n_chunks) * 8 * MiB;
    CHECKF(b.huge_cached_bytes == a.huge_cached_bytes - chunks_bytes,
           "huge cache %zu -> %zu bytes while %zu bytes of chunks were mapped (want as much less)",
           a.huge_cached_bytes, b.huge_cached_bytes, chunks_bytes);
    CHECKF(b.returned_bytes >= a.returned_bytes + chunks_bytes, "returned_bytes %zu -> %zu: the cache was not unmapped",
           a.returned_bytes, b.returned_bytes);
    for (int i = 0; i < n; i++)
        free(p[i]);
}

static void trim_returns_cache(void)
{
    TIDE_ONLY();
    char *p = xmalloc(32 * MiB);
    memset(p, 1, 32 * MiB);
    free(p);
    struct tide_stats a = th_stats();
    CHECK(a.huge_cached_bytes >= 32 * MiB);
    CHECKF(malloc_trim(0) == 1, "malloc_trim(0) with 32 MiB cached returned 0");
    struct tide_stats b = th_stats();
    CHECKF(b.huge_cached_bytes == 0, "huge cache %zu bytes after malloc_trim(0)", b.huge_cached_bytes);
    CHECKF(b.returned_bytes >= a.returned_bytes + 32 * MiB, "returned_bytes %zu -> %zu", a.returned_bytes,
           b.returned_bytes);
}

/* ---- fork ---- */

static void fork_child_work(void *arg)
{
    uintptr_t was = *(uintptr_t *)arg;
    char *q = malloc(20 * MiB);
    if ((uintptr_t)q != was)
        _exit(10);
    memset(q, 0x42, 20 * MiB);  /* the child's copy */
    free(q);
    tide_set_decay_ms(50);
    for (int i = 0; i < 300; i++) {  /* up to 3 s */
        struct tide_stats s = th_stats();
        if (s.huge_cached_bytes == 0)
            _exit(0);
        usleep(10000);
    }
    _exit(11);
}

static void fork_child_reuses(void)
{
    TIDE_ONLY();
    tide_trim();
    char *p = xmalloc(20 * MiB);
    th_fill(p, 20 * MiB, 9);
    uintptr_t was = (uintptr_t)p;
    free(p);
    char sb[64];
    int st = th_in_child(fork_child_work, &was, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s (10: no reuse of the cached block, 11: its "
           "scavenger did not return it)", th_status_str(st, sb, sizeof sb));
    char *q = xmalloc(20 * MiB);
    CHECKF((uintptr_t)q == was, "the parent's cache after the child: %p, want %#lx", (void *)q, (unsigned long)was);
    /* the child's writes did not reach the parent's pages */
    CHECK(q[0] != 0x42 || q[20 * MiB - 1] != 0x42);
    free(q);
}

/* ---- decay ---- */

static void decay_returns_cache(void)
{
    TIDE_ONLY();
    tide_trim();
    struct tide_stats a = th_stats();
    char *h = xmalloc(40 * MiB);
    memset(h, 1, 40 * MiB);
    enum { N = 40 };
    char *l[N];
    for (int i = 0; i < N; i++) {
        l[i] = xmalloc(2 * MiB);
        memset(l[i], 2, 2 * MiB);
    }
    struct tide_stats b = th_stats();
    free(h);
    for (int i = 0; i < N; i++)
        free(l[i]);
    long was = tide_set_decay_ms(100);
    CHECKF(was == -1, "tide_set_decay_ms returned %ld", was);
    struct tide_stats c = th_stats();
    size_t want_returned = 40 * MiB + N * 2 * MiB;
    /* up to 5 s for all three: the cache unmapped, the chunks beyond
     * chunk_cache unmapped and the kept ones purged (a loaded machine may
     * see them in that order, some rounds apart) */
    for (int t = 0; t < 500 && (c.huge_cached_bytes || c.n_chunks > a.n_chunks + 2 ||
                                c.returned_bytes + MiB < b.returned_bytes + want_returned); t++) {
        usleep(10000);
        c = th_stats();
    }
    tide_set_decay_ms(-1);
    CHECKF(c.huge_cached_bytes == 0, "huge cache %zu bytes 5 s after the free with decay_ms=100",
           c.huge_cached_bytes);
    CHECKF(c.n_chunks <= a.n_chunks + 2, "%zu chunks 5 s after freeing every large block (%zu before, %zu at the "
           "peak, chunk_cache 2)", c.n_chunks, a.n_chunks, b.n_chunks);
    /* (starting the scavenger thread allocates: a span or two may take
     * freed pages again) */
    CHECKF(c.returned_bytes + MiB >= b.returned_bytes + want_returned, "returned %zu bytes, want about %zu",
           c.returned_bytes - b.returned_bytes, want_returned);
}

/* ---- blocks of 4-8 MiB on resident free pages ---- */

static int class_of(const void *p)
{
    struct tide_block_info bi;
    return tide_block_info(p, &bi) == TIDE_BLOCK_LIVE && bi.block.ptr == p ? bi.block.size_class : 99;
}

/* Two adjacent 3.5 MiB large blocks, written and freed: a resident free run
 * of 7 MiB (and more, with the untouched pages after it) at *at.  False if
 * they were not adjacent (then the test cannot say anything). */
static bool resident_run(uintptr_t *at)
{
    tide_trim();  /* every other free run purged: not resident */
    char *a = xmalloc(3 * MiB + MiB / 2), *b = xmalloc(3 * MiB + MiB / 2);
    memset(a, 0xc3, 3 * MiB + MiB / 2);
    memset(b, 0xc3, 3 * MiB + MiB / 2);
    bool ok = (uintptr_t)b == (uintptr_t)a + 3 * MiB + MiB / 2;
    CHECKF(ok, "two 3.5 MiB blocks not side by side: %p %p", (void *)a, (void *)b);
    *at = (uintptr_t)a;
    free(a);
    free(b);
    return ok;
}

static void *fresh_thread_malloc(void *arg)
{
    return malloc(*(size_t *)arg);  /* this thread's first allocation */
}

static void big_block_on_resident_run(void)
{
    TIDE_ONLY();
    uintptr_t at;
    /* malloc: large, where the freed blocks were; no page fault is needed */
    if (!resident_run(&at))
        return;
    struct tide_stats a = th_stats();
    char *p = xmalloc(6 * MiB);
    struct tide_stats b = th_stats();
    CHECKF((uintptr_t)p == at && class_of(p) == TIDE_CLASS_LARGE, "malloc(6 MiB) = %p (class %d), want the "
           "resident run at %#lx, large", (void *)p, class_of(p), (unsigned long)at);
    CHECKF(b.n_huge == a.n_huge && b.n_large == a.n_large + 1 && b.n_chunks == a.n_chunks, "malloc(6 MiB): huge %zu "
           "-> %zu, large %zu -> %zu, chunks %zu -> %zu", a.n_huge, b.n_huge, a.n_large, b.n_large, a.n_chunks,
           b.n_chunks);
    th_fill(p, 6 * MiB, 3);
    /* realloc: grows in place over the free pages after it, shrinks in
     * place, and moves to a mapping of its own past a chunk */
    char *q = realloc(p, 7 * MiB + 5);
    CHECKF(q == p && class_of(q) == TIDE_CLASS_LARGE && th_verify(q, 6 * MiB, 3), "realloc 6 -> 7 MiB: %p -> %p "
           "(class %d)", (void *)p, (void *)q, class_of(q));
    q = realloc(q, 4 * MiB + 100);
    CHECKF(q == p && class_of(q) == TIDE_CLASS_LARGE && th_verify(q, 4 * MiB + 100, 3), "realloc 7 -> 4 MiB: %p "
           "-> %p (class %d)", (void *)p, (void *)q, class_of(q));
    q = realloc(q, 9 * MiB);
    CHECKF(q && class_of(q) == TIDE_CLASS_HUGE && th_verify(q, 4 * MiB + 100, 3), "realloc 4 -> 9 MiB: class %d, "
           "or the contents were lost", class_of(q));
    free(q);
    /* calloc on pages written before: zeroed */
    if (!resident_run(&at))
        return;
    char *z = calloc(1, 5 * MiB + 3);
    CHECKF((uintptr_t)z == at && class_of(z) == TIDE_CLASS_LARGE, "calloc(5 MiB) = %p (class %d), want %#lx",
           (void *)z, class_of(z), (unsigned long)at);
    CHECKF(z && th_is_zero(z, 5 * MiB + 3), "calloc(5 MiB) on resident pages is not zero");
    free(z);
    /* aligned_alloc: aligned within the run */
    if (!resident_run(&at))
        return;
    char *al = aligned_alloc(MiB, 5 * MiB);
    CHECKF(al && (uintptr_t)al % MiB == 0 && (uintptr_t)al >= at && (uintptr_t)al < at + 2 * MiB &&
           class_of(al) == TIDE_CLASS_LARGE, "aligned_alloc(1 MiB, 5 MiB) = %p (class %d), want in the run at %#lx",
           (void *)al, class_of(al), (unsigned long)at);
    if (al) th_fill(al, 5 * MiB, 4);
    free(al);
    /* a thread before its first allocation */
    if (!resident_run(&at))
        return;
    size_t n = 6 * MiB;
    pthread_t t;
    void *got = NULL;
    CHECK(pthread_create(&t, NULL, fresh_thread_malloc, &n) == 0 && pthread_join(t, &got) == 0);
    CHECKF((uintptr_t)got == at && class_of(got) == TIDE_CLASS_LARGE, "a fresh thread's malloc(6 MiB) = %p (class "
           "%d), want %#lx", got, class_of(got), (unsigned long)at);
    free(got);
    /* no resident run (all purged): a mapping of its own */
    tide_trim();
    a = th_stats();
    p = xmalloc(6 * MiB);
    b = th_stats();
    CHECKF(class_of(p) == TIDE_CLASS_HUGE && b.n_huge == a.n_huge + 1, "malloc(6 MiB) after tide_trim: class %d, "
           "huge %zu -> %zu", class_of(p), a.n_huge, b.n_huge);
    free(p);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strncmp(argv[1], "cap=", 4) == 0)
        return cap_child(atol(argv[1] + 4));
    if (tide_set_decay_ms)
        tide_set_decay_ms(-1);
    RUN(on_tide);
    RUN(huge_freed_stays_cached);
    RUN(huge_split_and_merge);
    RUN(huge_realloc_in_place);
    RUN(calloc_reused_huge_zero);
    RUN(large_runs_stay_mapped);
    RUN(reuse_across_threads);
    RUN(cache_bounded_by_peak);
    RUN(cache_bounded_by_option);
    RUN(cache_gives_way_to_chunks);
    RUN(trim_returns_cache);
    RUN(fork_child_reuses);
    RUN(big_block_on_resident_run);
    RUN(decay_returns_cache);
    return th_summary();
}
