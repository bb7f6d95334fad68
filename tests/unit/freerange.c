/* unit/freerange.c — the free-range index and the page allocator
 * on top of it (arena.c): best fit, coalescing, the invariant that no
 * free run is ever hidden, and the shorter run a span takes before the
 * process grows.
 *
 * Each test runs in a child process (tidei_arena_validate aborts on the first
 * inconsistency; its message becomes the FAIL reason), on an arena nothing
 * else uses: the harness allocates with glibc's malloc. */
#include "unit.h"

/* Runs fn in a child; FAILs with the child's stderr unless it exits 0. */
static void in_child(void (*fn)(void *), const char *what)
{
    static char err[8192];
    int st = unit_capture_child(fn, NULL, err, sizeof err);
    char sb[64];
    for (char *e = err; *e; e++) if (*e == '\n') *e = ' ';
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %s: %.600s", what, th_status_str(st, sb, sizeof sb),
           err);
}

static void child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void child_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(1);
}

/* ---- the index alone, with made-up runs --------------------------------- */

#define N_FAKE 3000
static tide_span_t fake[N_FAKE];
static bool fake_in[N_FAKE];

static size_t rand_pages(th_rng *r)
{
    uint64_t k = th_rand(r) % 100;
    if (k < 60) return th_rand_range(r, 1, 70);
    if (k < 90) return th_rand_range(r, 1, 700);
    if (k < 98) return th_rand_range(r, 700, TIDE_CHUNK_PAGES - 1);
    return TIDE_CHUNK_PAGES;
}

static void index_child(void *arg)
{
    (void)arg;
    tidei_init();
    tide_arena_t *a = &tidei_arena;
    static size_t cnt[TIDE_CHUNK_PAGES + 1];
    size_t free_pages = 0, zero_pages = 0;
    th_rng r = { 2024 };
    pthread_mutex_lock(&a->lock);
    if (index_find(1) != NULL) child_fail("the index is not empty at start");
    for (int op = 0; op < 40000; op++) {
        int i = (int)(th_rand(&r) % N_FAKE);
        tide_span_t *s = &fake[i];
        if (!fake_in[i]) {
            memset(s, 0, sizeof *s);
            s->kind = TIDE_SPAN_FREE;
            s->n_pages = rand_pages(&r);
            s->is_zero = th_rand(&r) & 1;
            s->start = 0x100000000ull + ((uintptr_t)i << 24);
            index_insert(s);
            fake_in[i] = true;
            cnt[s->n_pages]++;
            free_pages += s->n_pages;
            zero_pages += s->is_zero ? s->n_pages : 0;
        } else {
            index_remove(s);
            fake_in[i] = false;
            cnt[s->n_pages]--;
            free_pages -= s->n_pages;
            zero_pages -= s->is_zero ? s->n_pages : 0;
        }
        if (a->free_pages != free_pages)
            child_fail("op %d: free_pages counter %zu, runs hold %zu", op, a->free_pages, free_pages);
        if (a->zero_free_pages != zero_pages)
            child_fail("op %d: zero_free_pages counter %zu, runs hold %zu", op, a->zero_free_pages, zero_pages);
        /* find(k) is the smallest run of at least k pages: edge sizes and random ones */
        size_t probes[12] = { 1, 2, 63, 64, 65, 127, 128, 129, TIDE_CHUNK_PAGES - 1, TIDE_CHUNK_PAGES };
        probes[10] = th_rand_range(&r, 1, TIDE_CHUNK_PAGES);
        probes[11] = s->n_pages;
        for (int k = 0; k < 12; k++) {
            size_t want = 0;
            for (size_t n = probes[k]; n <= TIDE_CHUNK_PAGES; n++)
                if (cnt[n]) { want = n; break; }
            tide_span_t *got = index_find(probes[k]);
            if (want == 0 && got)
                child_fail("op %d: find(%zu) returned a run of %zu pages, none fits", op, probes[k], got->n_pages);
            if (want && (!got || got->n_pages != want))
                child_fail("op %d: find(%zu) returned %zu pages, best fit is %zu", op, probes[k],
                           got ? got->n_pages : 0, want);
            if (got && (got->kind != TIDE_SPAN_FREE || !fake_in[got - fake]))
                child_fail("op %d: find returned a run that is not in the index", op);
        }
        if (index_find(TIDE_CHUNK_PAGES + 1) != NULL) child_fail("find(CHUNK_PAGES + 1) is not NULL");
    }
    for (int i = 0; i < N_FAKE; i++)
        if (fake_in[i]) index_remove(&fake[i]);
    if (index_find(1) != NULL || a->free_pages != 0 || a->zero_free_pages != 0)
        child_fail("index not empty after removing every run");
    pthread_mutex_unlock(&a->lock);
    _exit(0);
}

/* 40000 random inserts and removes of runs of 1..2048 pages: find(k) always
 * returns a run of the smallest length >= k (best fit), or NULL when none
 * fits; the page counters follow. */
static void index_best_fit(void)
{
    in_child(index_child, "index");
}

/* ---- the page allocator: runs in chunks, against a model ------------------ */

typedef struct { tide_span_t *s; uintptr_t start; size_t n; } live_t;
#define MAX_LIVE 400
static live_t live[MAX_LIVE];
static int n_live;

typedef struct { uintptr_t start; size_t n; } fr_range_t;

static int cmp_range(const void *x, const void *y)
{
    const fr_range_t *a = x, *b = y;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* The first word of every page of a live run holds a stamp of the run, so a
 * run handed out twice (or a page of one given to another) shows up. */
static uint64_t stamp(uintptr_t start, size_t i) { return th_mix(start) + i; }

static void stamp_run(const live_t *l, size_t from)
{
    for (size_t i = from; i < l->n; i++)
        *(volatile uint64_t *)(l->start + (i << TIDE_PAGE_SHIFT)) = stamp(l->start, i);
}

static void check_stamps(const live_t *l, int op)
{
    for (size_t i = 0; i < l->n; i++)
        if (*(volatile uint64_t *)(l->start + (i << TIDE_PAGE_SHIFT)) != stamp(l->start, i))
            child_fail("op %d: page %zu of the run at %#lx (%zu pages) was overwritten", op, i,
                       (unsigned long)l->start, l->n);
}

/* Free gaps of chunk c according to the model, sorted by address. */
static size_t model_gaps(const tide_chunk_t *c, fr_range_t *gaps)
{
    static fr_range_t used[MAX_LIVE];
    size_t nu = 0, ng = 0;
    for (int i = 0; i < n_live; i++)
        if (live[i].start >= c->base && live[i].start < c->base + TIDE_CHUNK_SIZE)
            used[nu++] = (fr_range_t){ live[i].start, live[i].n };
    qsort(used, nu, sizeof used[0], cmp_range);
    uintptr_t at = c->base;
    for (size_t i = 0; i < nu; i++) {
        if (used[i].start < at) child_fail("model: live runs overlap at %#lx", (unsigned long)used[i].start);
        if (used[i].start > at) gaps[ng++] = (fr_range_t){ at, (used[i].start - at) >> TIDE_PAGE_SHIFT };
        at = used[i].start + (used[i].n << TIDE_PAGE_SHIFT);
    }
    if (at < c->base + TIDE_CHUNK_SIZE) gaps[ng++] = (fr_range_t){ at, (c->base + TIDE_CHUNK_SIZE - at) >> TIDE_PAGE_SHIFT };
    return ng;
}

/* The largest free gap the model knows of (over every chunk). */
static size_t model_max_gap(void)
{
    static fr_range_t gaps[MAX_LIVE + 2];
    size_t best = 0;
    for (tide_chunk_t *c = tidei_arena.chunks; c; c = c->next) {
        size_t ng = model_gaps(c, gaps);
        for (size_t i = 0; i < ng; i++) if (gaps[i].n > best) best = gaps[i].n;
    }
    return best;
}

/* The gap right after live run l, in pages. */
static size_t model_gap_after(const live_t *l)
{
    uintptr_t end = l->start + (l->n << TIDE_PAGE_SHIFT);
    uintptr_t limit = l->s->chunk->base + TIDE_CHUNK_SIZE;
    for (int i = 0; i < n_live; i++)
        if (live[i].start >= end && live[i].start < limit) limit = live[i].start;
    return (limit - end) >> TIDE_PAGE_SHIFT;
}

/* The index holds exactly the maximal free gaps of every chunk: each gap is
 * one free run (neighbours were merged), and there is no other free run. */
static void check_against_model(int op)
{
    tidei_arena_validate();
    tide_arena_t *a = &tidei_arena;
    static fr_range_t gaps[MAX_LIVE + 2], runs[4 * (MAX_LIVE + 2)];
    size_t total_gap = 0;
    for (int i = 0; i < n_live; i++) {
        bool found = false;
        for (tide_chunk_t *c = a->chunks; c; c = c->next) found |= live[i].s->chunk == c;
        if (!found) child_fail("op %d: live run %#lx is in a chunk that is gone", op, (unsigned long)live[i].start);
        if (live[i].s->start != live[i].start || live[i].s->n_pages != live[i].n)
            child_fail("op %d: live run descriptor changed: %#lx/%zu -> %#lx/%zu", op, (unsigned long)live[i].start,
                       live[i].n, (unsigned long)live[i].s->start, live[i].s->n_pages);
    }
    for (tide_chunk_t *c = a->chunks; c; c = c->next) {
        size_t ng = model_gaps(c, gaps), nr = 0;
        for (size_t k = 1; k <= TIDE_CHUNK_PAGES; k++)
            for (tide_span_t *r = a->bins[k]; r; r = r->next)
                if (r->chunk == c) {
                    if (nr == sizeof runs / sizeof runs[0]) child_fail("op %d: too many free runs in a chunk", op);
                    runs[nr++] = (fr_range_t){ r->start, r->n_pages };
                }
        qsort(runs, nr, sizeof runs[0], cmp_range);
        for (size_t i = 0; i < ng || i < nr; i++) {
            if (i >= ng || i >= nr || gaps[i].start != runs[i].start || gaps[i].n != runs[i].n)
                child_fail("op %d: chunk %#lx: free gap #%zu is %#lx/%zu pages, the index has run %#lx/%zu pages "
                           "(%zu gaps, %zu runs): not merged, hidden or lost", op, (unsigned long)c->base, i,
                           i < ng ? (unsigned long)gaps[i].start : 0ul, i < ng ? gaps[i].n : 0,
                           i < nr ? (unsigned long)runs[i].start : 0ul, i < nr ? runs[i].n : 0, ng, nr);
            total_gap += gaps[i].n;
        }
    }
    if (a->free_pages != total_gap) child_fail("op %d: free_pages %zu, gaps hold %zu", op, a->free_pages, total_gap);
}

static void runs_child(void *arg)
{
    (void)arg;
    tidei_init();
    tide_arena_t *a = &tidei_arena;
    th_rng r = { 77 };
    size_t n_allocs = 0, n_grows = 0, n_grow_ok = 0, n_shrinks = 0, n_trims = 0, max_chunks = 0;
    for (int op = 0; op < 4000; op++) {
        uint64_t what = th_rand(&r) % 100;
        if ((what < 45 && n_live < MAX_LIVE) || n_live == 0) {
            size_t n = rand_pages(&r) / (th_rand(&r) % 4 ? 4 : 1) + 1;
            size_t align = th_rand(&r) % 5 == 0 ? (size_t)1 << th_rand_range(&r, 1, 8) : 0;
            if (n > TIDE_CHUNK_PAGES) n = TIDE_CHUNK_PAGES;
            size_t need = n + (align > 1 ? align - 1 : 0);
            if (need > TIDE_CHUNK_PAGES) align = 0, need = n;
            bool fits = model_max_gap() >= need;
            size_t chunks_before = a->n_chunks;
            tide_span_t *s = tidei_arena_alloc_run(n, align, TIDE_SPAN_LARGE, true);
            if (!s) child_fail("op %d: run_alloc(%zu pages, align %zu) = NULL", op, n, align);
            if (s->kind != TIDE_SPAN_LARGE || s->n_pages != n || !s->chunk)
                child_fail("op %d: run_alloc(%zu) returned kind %d, %zu pages", op, n, s->kind, s->n_pages);
            if (align > 1 && s->start % (align << TIDE_PAGE_SHIFT))
                child_fail("op %d: run_alloc(%zu, align %zu pages) = %#lx, misaligned", op, n, align,
                           (unsigned long)s->start);
            if (fits && a->n_chunks != chunks_before)
                child_fail("op %d: run_alloc(%zu pages, align %zu) mapped a chunk while a free run of %zu pages "
                           "existed (a hidden free run)", op, n, align, model_max_gap());
            if (s->is_zero)
                for (size_t i = 0; i < n; i++)
                    if (*(volatile uint64_t *)(s->start + (i << TIDE_PAGE_SHIFT)) != 0)
                        child_fail("op %d: run %#lx says is_zero, page %zu is not", op, (unsigned long)s->start, i);
            live[n_live] = (live_t){ s, s->start, n };
            stamp_run(&live[n_live], 0);
            n_live++;
            n_allocs++;
        } else if (what < 80) {
            int i = (int)(th_rand(&r) % (uint64_t)n_live);
            check_stamps(&live[i], op);
            tidei_arena_free_run(live[i].s, false);
            live[i] = live[--n_live];
        } else if (what < 90) {
            int i = (int)(th_rand(&r) % (uint64_t)n_live);
            size_t extra = th_rand_range(&r, 1, 64);
            if (live[i].n + extra > TIDE_CHUNK_PAGES) continue;
            size_t gap = model_gap_after(&live[i]);
            bool ok = tidei_arena_grow_run(live[i].s, live[i].n + extra);
            n_grows++;
            if (ok != (gap >= extra))
                child_fail("op %d: run_grow by %zu pages with %zu free pages after the run returned %d", op, extra,
                           gap, ok);
            if (ok) {
                size_t old = live[i].n;
                live[i].n += extra;
                stamp_run(&live[i], old);
                n_grow_ok++;
            }
        } else if (what < 99) {
            int i = (int)(th_rand(&r) % (uint64_t)n_live);
            if (live[i].n < 2) continue;
            size_t nn = th_rand_range(&r, 1, live[i].n - 1);
            check_stamps(&live[i], op);
            tidei_arena_shrink_run(live[i].s, nn);
            live[i].n = nn;
            n_shrinks++;
        } else {
            tidei_arena_trim();
            n_trims++;
        }
        if (a->n_chunks > max_chunks) max_chunks = a->n_chunks;
        check_against_model(op);
    }
    /* Everything freed: each chunk left is one whole free run, and stays
     * mapped (free is not where memory goes back: the scavenger's decay is);
     * a purge once they are due keeps at most chunk_cache of them, and a
     * trim unmaps those. */
    size_t chunks_before = a->n_chunks;
    while (n_live) {
        check_stamps(&live[n_live - 1], -1);
        tidei_arena_free_run(live[--n_live].s, false);
        check_against_model(-1);
    }
    if (a->free_pages != a->n_chunks * TIDE_CHUNK_PAGES)
        child_fail("all runs freed: %zu free pages in %zu chunks", a->free_pages, a->n_chunks);
    if (a->n_chunks != chunks_before)
        child_fail("all runs freed: %zu chunks mapped, %zu before the frees: unmapped at free", a->n_chunks,
                   chunks_before);
    uint64_t next;
    tidei_arena_purge(tidei_os_now_ms() + 3600000, 500, &next);
    if (a->n_chunks > (size_t)tidei_opt.chunk_cache)
        child_fail("all runs freed and purged: %zu chunks kept, chunk_cache is %ld", a->n_chunks,
                   tidei_opt.chunk_cache);
    check_against_model(-1);
    tidei_arena_trim();
    if (a->n_chunks != 0 || a->free_pages != 0 || index_find(1) != NULL)
        child_fail("after trim: %zu chunks, %zu free pages", a->n_chunks, a->free_pages);
    fprintf(stderr, "runs: %zu allocs, %zu grows (%zu in place), %zu shrinks, %zu trims, up to %zu chunks\n",
            n_allocs, n_grows, n_grow_ok, n_shrinks, n_trims, max_chunks);
    _exit(0);
}

/* 4000 random page-run operations (alloc with and without alignment, free,
 * grow in place, shrink, trim) checked after each one against a model of the
 * live runs: the index holds exactly the maximal free gaps of every chunk (so
 * neighbours are always merged and no free run is hidden), a chunk is mapped
 * only when no free run fits, grow succeeds exactly when the pages after the
 * run are free, pages said to be zero are zero, no live page is handed out
 * twice, and tidei_arena_validate() agrees. */
static void runs_against_model(void)
{
    in_child(runs_child, "runs");
}

/* With metadata exhausted (no span descriptor in the pool, the metadata
 * region used up, every OS request failing), run_alloc still returns a run
 * that is what was asked for: aligned as asked, or NULL.  (The leftovers of
 * the carved free run cannot get descriptors then.) */
static void carve_child(void *arg)
{
    (void)arg;
    tidei_init();
    tide_arena_t *a = &tidei_arena;
    tide_span_t *first = tidei_arena_alloc_run(1, 0, TIDE_SPAN_LARGE, true);   /* a chunk, its first page used */
    if (!first) child_fail("run_alloc(1) failed");
    pthread_mutex_lock(&a->lock);
    a->span_pool = NULL;
    a->meta_cur = a->meta_end;
    pthread_mutex_unlock(&a->lock);
    tidei_opt.os_fail_from = (long)tidei_os_n_requests() + 1;
    for (size_t align = 2; align <= 64; align *= 2) {
        tide_span_t *s = tidei_arena_alloc_run(8, align, TIDE_SPAN_LARGE, true);
        if (s && (s->start % (align << TIDE_PAGE_SHIFT) != 0 || s->n_pages < 8))
            child_fail("metadata exhausted: run_alloc(8 pages, align %zu pages) = %#lx (%zu pages): misaligned", align,
                       (unsigned long)s->start, s->n_pages);
        if (s) tidei_arena_free_run(s, false);
        tidei_arena_validate();
    }
    _exit(0);
}

static void carve_without_metadata(void)
{
    in_child(carve_child, "carve");
}

/* A run freed next to one that has been free for long takes the mean of
 * their free times weighted by pages, not the newer time: under steady
 * churn a long run that keeps absorbing small fresh frees must still fall
 * due for the purge.  A run freed due_now stays due at once. */
static void merge_child(void *arg)
{
    (void)arg;
    tidei_init();
    tide_arena_t *a = &tidei_arena;
    tide_span_t *big = tidei_arena_alloc_run(60, 0, TIDE_SPAN_LARGE, true);
    tide_span_t *small = tidei_arena_alloc_run(4, 0, TIDE_SPAN_LARGE, true);
    tide_span_t *wall = tidei_arena_alloc_run(1, 0, TIDE_SPAN_LARGE, true);  /* keeps small off the chunk's rest */
    if (!big || !small || !wall || small->start != big->start + TIDE_PAGES_BYTES(60) ||
        wall->start != small->start + TIDE_PAGES_BYTES(4))
        child_fail("runs not laid out one after the other");
    uintptr_t start = big->start;
    tidei_arena_free_run(big, false);
    pthread_mutex_lock(&a->lock);
    tide_span_t *r = tidei_pagemap_lookup((void *)start);
    if (!r || r->kind != TIDE_SPAN_FREE || !r->dirty_ms)
        child_fail("freed run not dirty");
    uint64_t old = r->dirty_ms - 100000;  /* as if freed 100 s ago */
    r->dirty_ms = old;
    pthread_mutex_unlock(&a->lock);
    uint64_t now = tidei_os_now_ms();
    tidei_arena_free_run(small, false);
    pthread_mutex_lock(&a->lock);
    r = tidei_pagemap_lookup((void *)start);
    if (!r || r->n_pages != 64)
        child_fail("the two runs did not merge");
    uint64_t want = (old * 60 + now * 4) / 64;
    if (r->dirty_ms + 20 < want || r->dirty_ms > want + 20)
        child_fail("merged run freed at %llu ms, want about %llu (old %llu, now %llu)",
                   (unsigned long long)r->dirty_ms, (unsigned long long)want, (unsigned long long)old,
                   (unsigned long long)now);
    pthread_mutex_unlock(&a->lock);
    tidei_arena_free_run(wall, true);
    pthread_mutex_lock(&a->lock);
    r = tidei_pagemap_lookup((void *)start);
    if (!r || r->dirty_ms != 1)
        child_fail("a run freed due_now is not due at once after merging (dirty_ms %llu)",
                   r ? (unsigned long long)r->dirty_ms : 0ULL);
    pthread_mutex_unlock(&a->lock);
    tidei_arena_validate();
    _exit(0);
}

static void merged_free_time(void)
{
    in_child(merge_child, "merge");
}

/* Before the process grows, a span takes a shorter free run (heap.c
 * new_run, arena.c tidei_arena_alloc_run_fit): with the chunk used up but
 * for holes of HOLE pages between walls, a span of a class whose length is
 * more than HOLE pages, and a quarter of it at most HOLE, is cut from a
 * hole, whole, with the blocks that fit; one whose quarter is longer gets
 * a new chunk; a run that fits is still cut to its length; and a large
 * block (exact length) never gets a hole too short. */
#define HOLE 20
static void fit_child(void *arg)
{
    (void)arg;
    tidei_init();
    tide_arena_t *a = &tidei_arena;
    tide_span_t *first = tidei_arena_alloc_run(1, 0, TIDE_SPAN_LARGE, true);
    if (!first) child_fail("no first run");
    size_t holes = 0;
    static tide_span_t *hole[TIDE_CHUNK_PAGES];
    for (;;) {  /* a hole's run, then a one-page wall, until the chunk is full */
        tide_span_t *h = tidei_arena_alloc_run(HOLE, 0, TIDE_SPAN_LARGE, false);
        if (!h) break;
        hole[holes++] = h;
        if (!tidei_arena_alloc_run(1, 0, TIDE_SPAN_LARGE, false)) break;
    }
    while (tidei_arena_alloc_run(1, 0, TIDE_SPAN_LARGE, false))  /* the chunk's last pages */
        ;
    if (holes < 8 || a->n_chunks != 1) child_fail("set-up: %zu holes, %zu chunks", holes, a->n_chunks);
    for (size_t i = 0; i < holes; i++)
        tidei_arena_free_run(hole[i], false);
    tidei_arena_validate();

    /* the class of the longest blocks whose span's quarter fits a hole */
    int c = -1;
    for (int k = 0; k < TIDE_N_CLASSES; k++)
        if (tidei_class_pages[k] > HOLE && span_min_pages(k) <= HOLE)
            c = k;
    if (c < 0) child_fail("no class with spans longer than %d pages and a quarter within", HOLE);
    tide_span_t *s = new_run(tidei_class_pages[c], span_min_pages(c), 0, TIDE_SPAN_SMALL);
    if (!s || s->n_pages != HOLE || a->n_chunks != 1)
        child_fail("class %d (%u B, spans of %u pages): new_run gave %zu pages, %zu chunks; want a hole of %d, 1 chunk", c,
                   tidei_class_size[c], tidei_class_pages[c], s ? s->n_pages : 0, a->n_chunks, HOLE);
    tidei_span_init_small(s, c);
    size_t want = ((size_t)HOLE << TIDE_PAGE_SHIFT) / tidei_class_size[c];
    if (s->n_blocks != want || want < 1)
        child_fail("class %d on %d pages: %u blocks, want %zu", c, HOLE, s->n_blocks, want);
    for (uint32_t i = 0; i < s->n_blocks; i++)
        if (tidei_block_index(s, s->start + (uintptr_t)i * s->block_size) != i)
            child_fail("class %d on %d pages: block %u's index is wrong", c, HOLE, i);

    /* one that fits is cut to its length, from the shortest run that holds it */
    tide_span_t *f = tidei_arena_alloc_run_fit(HOLE - 4, 1, TIDE_SPAN_SMALL, false);
    if (!f || f->n_pages != HOLE - 4 || a->n_chunks != 1)
        child_fail("alloc_run_fit(%d, 1) gave %zu pages, %zu chunks", HOLE - 4, f ? f->n_pages : 0, a->n_chunks);

    /* min_pages above the longest hole: nothing, and no chunk mapped */
    if (tidei_arena_alloc_run_fit(2 * HOLE, HOLE + 1, TIDE_SPAN_SMALL, false) != NULL || a->n_chunks != 1)
        child_fail("alloc_run_fit(%d, %d) cut a run shorter than asked, or mapped a chunk", 2 * HOLE, HOLE + 1);

    /* a class whose quarter is longer than a hole grows the process */
    int big = -1;
    for (int k = 0; k < TIDE_N_CLASSES && big < 0; k++)
        if (span_min_pages(k) > HOLE)
            big = k;
    if (big >= 0) {
        tide_span_t *g = new_run(tidei_class_pages[big], span_min_pages(big), 0, TIDE_SPAN_SMALL);
        if (!g || g->n_pages != tidei_class_pages[big] || a->n_chunks != 2)
            child_fail("class %d (quarter %zu pages): new_run gave %zu pages, %zu chunks; want %u pages, 2 chunks", big,
                       span_min_pages(big), g ? g->n_pages : 0, a->n_chunks, tidei_class_pages[big]);
    }

    /* a large block gets its length or a new chunk, never a hole */
    tide_span_t *l = tidei_heap_new_run(HOLE + 1, 0, TIDE_SPAN_LARGE);
    if (!l || l->n_pages != HOLE + 1)
        child_fail("a large block of %d pages got %zu", HOLE + 1, l ? l->n_pages : 0);
    tidei_arena_validate();
    _exit(0);
}

static void fit_before_growing(void)
{
    in_child(fit_child, "fit");
}

int main(void)
{
    RUN(index_best_fit);
    RUN(runs_against_model);
    RUN(carve_without_metadata);
    RUN(merged_free_time);
    RUN(fit_before_growing);
    return th_summary();
}
