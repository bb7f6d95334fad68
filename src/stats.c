/* stats.c — accounting: folds the counters every thread heap keeps for
 * itself into process-wide figures (tide_stats_get, tide_stats_heaps), and
 * prints them: the text report (TIDE_CONF=stats=1, malloc_stats), JSON
 * (stats=json), at exit, on a signal (stats_signal=SIG), or on request
 * (tide_stats_print).
 *
 * Each heap's counters are written by its owner with plain stores and read
 * here without synchronisation: the readers below are exempt from
 * ThreadSanitizer and read through volatile, and a 64-bit aligned load does
 * not tear.  So a reader sees every counter at some recent value: exact
 * when the program is quiescent, approximate while it runs.  Every
 * difference of counters is clamped at zero for that reason.
 *
 * How the small-block figures follow from the counters (per class), where
 * used(h) is the blocks out of h's spans (the sum of their `used`, from a
 * walk of h's lists under h->lock: tidei_heap_used, which also adds up
 * their n_malloc):
 *   malloc(h)     = ctr.malloc + the n_malloc of h's spans
 *   free_local(h) = malloc - collected + moved_in - moved_out - used(h)
 *                   (the owner's frees into its own spans, which no fast
 *                   path counts)
 *   live     = sum(malloc) - sum(free_local + free_remote) - global free_remote
 *   pending  = sum(free_remote) + global free_remote - sum(collected) - global collected
 *   cached(h)= the blocks h's spans hold (the same walk) - used(h)
 * and the spans of exited threads hold sum(moved_out - moved_in) - global
 * collected blocks.
 *
 * The signal-time report takes no lock (the signal may interrupt a thread
 * holding one): it reads the registry of heaps (published with release),
 * their span lists, the arena and the abandoned counts as they are, and
 * skips the walk over large and huge blocks. */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "tide_internal.h"

tide_global_counters_t tidei_global_ctr;

#define TIDE_NO_TSAN __attribute__((no_sanitize("thread"), noinline))
#define READ(x) (*(volatile __typeof__(x) *)&(x))

static uint64_t clamp(int64_t v)
{
    return v > 0 ? (uint64_t)v : 0;
}

/* Sums that are not fields of struct tide_stats. */
typedef struct fold_extra {
    uint64_t collected[TIDE_N_CLASSES];   /* remote frees taken back, all heaps and global */
    uint64_t free_remote[TIDE_N_CLASSES]; /* remote frees made, all heaps and global */
    int64_t abandoned_out[TIDE_N_CLASSES];/* blocks out of abandoned spans */
} fold_extra_t;

/* Adds heap h's counters to st and x, and fills hs (if not NULL), under
 * h->lock taken as thread me, the caller (its id read once for all the
 * heaps), or with no lock if me is 0 (at signal time).  The owner's slow
 * paths and the scavenger hold the lock only briefly; a heap with no
 * thread is only tried, since in a forked child the lock of a heap of the parent's other
 * threads may be held for good (its spans are then read as they are). */
TIDE_NO_TSAN static void fold_heap(tide_heap_t *h, struct tide_stats *st, fold_extra_t *x,
                                    struct tide_heap_stats *hs, bool *in_use, int me)
{
    uint64_t used_c[TIDE_N_CLASSES] = { 0 }, malloc_c[TIDE_N_CLASSES] = { 0 }, spans_c[TIDE_N_CLASSES] = { 0 };
    uint64_t blocks_c[TIDE_N_CLASSES] = { 0 };
    bool locked = me != 0;
    if (locked) {
        if (READ(h->has_thread) || tidei_heap_is_shared(h))
            tidei_heap_lock_as(h, me);
        else
            locked = tidei_heap_trylock_as(h, me);
    }
    tidei_heap_used(h, used_c, malloc_c, spans_c, blocks_c);
    if (tidei_debug && locked)  /* the walk finds every span the heap counts */
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            tide_debug_assert(spans_c[c] == h->ctr.spans[c]);
    *in_use = READ(h->in_use);
    struct tide_heap_stats one;
    memset(&one, 0, sizeof one);
    one.id = READ(h->id);
    one.tid = READ(h->in_use) ? READ(h->tid) : 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        uint64_t m = READ(h->ctr.malloc[c]) + malloc_c[c];
        uint64_t fr = READ(h->ctr.free_remote[c]);
        uint64_t col = READ(h->ctr.collected[c]);
        uint64_t in = READ(h->ctr.moved_in[c]);
        uint64_t out = READ(h->ctr.moved_out[c]);
        uint64_t sp = READ(h->ctr.spans[c]);
        uint64_t used = used_c[c];
        uint64_t fl = clamp((int64_t)(m - col + in - out - used));
        uint64_t cached = clamp((int64_t)(blocks_c[c] - used));
        st->classes[c].n_malloc += m;
        st->classes[c].n_free += fl + fr;
        st->classes[c].n_spans += sp;
        st->classes[c].cached_blocks += cached;
        x->collected[c] += col;
        x->free_remote[c] += fr;
        x->abandoned_out[c] += (int64_t)(out - in);
        one.n_spans += sp;
        one.cached_bytes += cached * tidei_class_size[c];
        one.used_bytes += used * tidei_class_size[c];
        one.n_malloc += m;
        one.n_free += fl + fr;
    }
    one.n_full_spans = READ(h->ctr.n_full);
    st->n_spans += one.n_spans;
    st->n_full_spans += one.n_full_spans;
    st->requested_bytes += tidei_heap_requested(&h->ctr);
    if (locked)
        tidei_heap_unlock(h);
    if (hs)
        *hs = one;
}

/* The figures of the arena (chunks, large and huge blocks, address space):
 * read under its lock, or as they are (signal time). */
TIDE_NO_TSAN static void fold_arena(struct tide_stats *st, uint64_t *n_large_malloc, uint64_t *n_huge_malloc)
{
    tide_arena_t *a = &tidei_arena;
    st->n_chunks = READ(a->n_chunks);
    st->huge_bytes = READ(a->huge_bytes);
    st->n_huge = READ(a->n_huge);
    st->huge_cached_bytes = READ(a->huge_cache_bytes);
    st->free_run_bytes = READ(a->free_pages) << TIDE_PAGE_SHIFT;
    st->large_live_bytes = READ(a->large_pages) << TIDE_PAGE_SHIFT;
    st->n_large = READ(a->n_large);
    st->metadata_bytes = READ(a->meta_bytes);
    st->n_os_calls = tidei_os_n_requests();
    st->mapped_bytes = st->n_chunks * TIDE_CHUNK_SIZE + st->huge_bytes + st->huge_cached_bytes;
    size_t zero = READ(a->zero_free_pages) << TIDE_PAGE_SHIFT;
    st->committed_bytes = st->mapped_bytes > zero ? st->mapped_bytes - zero : 0;
    *n_large_malloc = READ(a->n_large_malloc);
    *n_huge_malloc = READ(a->n_huge_malloc);
}

/* Abandoned spans per class and the blocks they hold (tidei_heaps_lock
 * held, or signal time). */
TIDE_NO_TSAN static size_t abandoned_spans(int c, size_t *blocks)
{
    *blocks = READ(tidei_abandoned_blocks[c]);
    return READ(tidei_abandoned_spans[c]);
}

/* Fills st (and up to max_heaps entries of hs, setting *n_heaps_out to the
 * number of heaps).  locked: take the locks (never at signal time). */
static void stats_collect(struct tide_stats *st, struct tide_heap_stats *hs, size_t max_heaps,
                          size_t *n_heaps_out, bool locked)
{
    fold_extra_t x;
    int me = locked ? tidei_os_gettid() : 0;  /* the name the heap locks are taken by */
    memset(st, 0, sizeof *st);
    memset(&x, 0, sizeof x);
    /* The registry only grows at its head, so it is walked without its
     * lock; each heap is folded under its own lock, which comes before
     * tidei_heaps_lock in the lock order. */
    size_t k = 0;
    for (tide_heap_t *h = __atomic_load_n(&tidei_heaps, __ATOMIC_ACQUIRE); h; h = h->next_all) {
        bool in_use;
        fold_heap(h, st, &x, hs && k < max_heaps ? &hs[k] : NULL, &in_use, me);
        st->n_heaps_total++;
        if (in_use)
            st->n_heaps++;
        k++;
    }
    bool backup_in_use;
    fold_heap(&tidei_backup_heap, st, &x, NULL, &backup_in_use, me);
    for (int i = 0; i < TIDE_SHARED_HEAPS; i++)  /* one never used is all zeros: no page of it is read */
        if (tidei_heap_shared_ready(&tidei_shared_heaps[i]))
            fold_heap(&tidei_shared_heaps[i], st, &x, NULL, &backup_in_use, me);
    if (locked)
        pthread_mutex_lock(&tidei_heaps_lock);
    size_t ab_blocks[TIDE_N_CLASSES];
    for (int c = 0; c < TIDE_N_CLASSES; c++)
        st->n_abandoned_spans += abandoned_spans(c, &ab_blocks[c]);
    if (locked)
        pthread_mutex_unlock(&tidei_heaps_lock);
    if (n_heaps_out)
        *n_heaps_out = k;

    uint64_t n_large_malloc, n_huge_malloc;
    if (locked)
        pthread_mutex_lock(&tidei_arena.lock);
    fold_arena(st, &n_large_malloc, &n_huge_malloc);
    if (locked)
        pthread_mutex_unlock(&tidei_arena.lock);

    uint64_t pending = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        struct tide_class_stats *cs = &st->classes[c];
        uint64_t gfree = atomic_load_explicit(&tidei_global_ctr.free_remote[c], relaxed);
        uint64_t gcol = atomic_load_explicit(&tidei_global_ctr.collected[c], relaxed);
        cs->block_size = tidei_class_size[c];
        cs->n_free += gfree;
        cs->live_blocks = clamp((int64_t)(cs->n_malloc - cs->n_free));
        pending += clamp((int64_t)(x.free_remote[c] + gfree - x.collected[c] - gcol));
        uint64_t ab_out = clamp(x.abandoned_out[c] - (int64_t)gcol);
        st->abandoned_bytes += clamp((int64_t)(ab_blocks[c] - ab_out)) * cs->block_size;
        st->small_live_bytes += cs->live_blocks * cs->block_size;
        st->cached_bytes += cs->cached_blocks * cs->block_size;
        st->live_blocks += cs->live_blocks;
        st->n_malloc += cs->n_malloc;
        st->n_free += cs->n_free;
    }
    uint64_t g_malloc, g_free, g_bytes;  /* guarded blocks (guard.c) */
    tidei_guard_counts(&g_malloc, &g_free, &g_bytes);
    st->live_blocks += g_malloc - g_free;
    st->n_malloc += g_malloc;
    st->n_free += g_free;
    st->live_bytes += g_bytes;
    st->pending_remote_frees = pending;
    st->live_bytes += st->small_live_bytes + st->large_live_bytes + st->huge_bytes;
    st->live_blocks += st->n_large + st->n_huge;
    st->n_malloc += n_large_malloc + n_huge_malloc;
    st->n_free += (n_large_malloc - st->n_large) + (n_huge_malloc - st->n_huge);
    tidei_gc_stats(&st->gc);
    st->returned_bytes = atomic_load_explicit(&tidei_global_ctr.returned, relaxed);
}

tide_export int tide_stats_get(struct tide_stats *st)
{
    if (!st) {
        errno = EINVAL;
        return -1;
    }
    tidei_init();
    tidei_busy_enter();
    stats_collect(st, NULL, 0, NULL, true);
    tidei_busy_leave();
    return 0;
}

tide_export size_t tide_stats_heaps(struct tide_heap_stats *out, size_t max)
{
    struct tide_stats st;
    size_t n;
    tidei_init();
    tidei_busy_enter();
    stats_collect(&st, out, out ? max : 0, &n, true);
    tidei_busy_leave();
    return n;
}

/* ---- the report ---- */

/* One line of the size histogram: blocks of one size. */
typedef struct hist_entry {
    size_t size;                 /* usable bytes per block */
    size_t count;                /* live blocks */
} hist_entry_t;

#define HIST_MAX (TIDE_N_CLASSES + 96)

typedef struct hist {
    hist_entry_t e[HIST_MAX];
    size_t n;                    /* entries used */
    size_t other_count;          /* blocks of sizes that found no entry */
    size_t other_bytes;
} hist_t;

static void hist_add(hist_t *h, size_t size, size_t count)
{
    for (size_t i = 1; i < h->n; i++) {  /* a page-sized large block may match a class */
        if (h->e[i].size == size) {
            h->e[i].count += count;
            return;
        }
    }
    if (h->n == HIST_MAX) {
        h->other_count += count;
        h->other_bytes += size * count;
        return;
    }
    h->e[h->n].size = size;
    h->e[h->n].count = count;
    h->n++;
}

/* Counts run s in histogram h if it is a large or huge block
 * (tidei_arena_each_run). */
static void hist_add_run(tide_span_t *s, void *h)
{
    if (s->kind == TIDE_SPAN_LARGE || s->kind == TIDE_SPAN_HUGE)
        hist_add(h, s->n_pages << TIDE_PAGE_SHIFT, 1);
}

/* Large and huge blocks into the histogram.  Arena lock held. */
static void hist_add_big_locked(hist_t *h)
{
    tidei_arena_each_run(hist_add_run, h);
}

/* Sorts by bytes, largest first (insertion sort: at most HIST_MAX entries). */
static void hist_sort(hist_t *h)
{
    for (size_t i = 1; i < h->n; i++) {
        hist_entry_t v = h->e[i];
        size_t j = i;
        while (j > 0 && h->e[j - 1].size * h->e[j - 1].count < v.size * v.count) {
            h->e[j] = h->e[j - 1];
            j--;
        }
        h->e[j] = v;
    }
}

/* Writes part/whole as a percentage with one decimal, e.g. "12.5". */
static void put_percent(int fd, size_t part, size_t whole, int *err)
{
    size_t tenths = whole ? (size_t)(((unsigned __int128)part * 1000 + whole / 2) / whole) : 0;
    *err |= tidei_printf(fd, "%zu.%zu", tenths / 10, tenths % 10);
}

static void hist_build(hist_t *h, const struct tide_stats *st, bool locked)
{
    memset(h, 0, sizeof *h);
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        h->e[c].size = st->classes[c].block_size;
        h->e[c].count = st->classes[c].live_blocks;
    }
    h->e[1].count += h->e[0].count;  /* class 0 (malloc(0)) has 16-byte blocks like class 1 */
    h->e[0].count = 0;
    h->n = TIDE_N_CLASSES;
    if (locked) {
        pthread_mutex_lock(&tidei_arena.lock);
        hist_add_big_locked(h);
        pthread_mutex_unlock(&tidei_arena.lock);
    } else {
        /* no walk at signal time: the large and huge blocks as one line each */
        if (st->n_large)
            hist_add(h, st->large_live_bytes / st->n_large, st->n_large);
        if (st->n_huge)
            hist_add(h, st->huge_bytes / st->n_huge, st->n_huge);
    }
    hist_sort(h);
}

static int print_text(int fd, const struct tide_stats *st, const struct tide_heap_stats *hs, size_t n_hs,
                      const hist_t *h, bool locked)
{
    int err = 0;
    err |= tidei_printf(fd, "tide %d.%d heap report, pid %d%s\n", TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR,
                        (int)getpid(), locked ? "" : " (at a signal: large and huge sizes averaged)");
    err |= tidei_printf(fd, "  live:       %zu bytes in %zu blocks (small %zu bytes; large %zu bytes in %zu; huge %zu bytes in %zu)\n",
                        st->live_bytes, st->live_blocks, st->small_live_bytes, st->large_live_bytes, st->n_large,
                        st->huge_bytes, st->n_huge);
    err |= tidei_printf(fd, "  ever:       %lu mallocs, %lu frees, %lu bytes requested\n",
                        (unsigned long)st->n_malloc, (unsigned long)st->n_free, (unsigned long)st->requested_bytes);
    err |= tidei_printf(fd, "  cached:     %zu bytes free in thread heaps, %zu bytes in exited threads' spans, %zu remote frees pending\n",
                        st->cached_bytes, st->abandoned_bytes, st->pending_remote_frees);
    err |= tidei_printf(fd, "  spans:      %zu in thread heaps (%zu full), %zu abandoned; free page runs %zu bytes\n",
                        st->n_spans, st->n_full_spans, st->n_abandoned_spans, st->free_run_bytes);
    err |= tidei_printf(fd, "  memory:     %zu bytes mapped (%zu chunks, %zu bytes huge cache), %zu committed, %zu metadata, %zu returned to the OS\n",
                        st->mapped_bytes, st->n_chunks, st->huge_cached_bytes, st->committed_bytes,
                        st->metadata_bytes, st->returned_bytes);
    err |= tidei_printf(fd, "  heaps:      %zu in use, %zu made; %lu requests to the OS\n", st->n_heaps, st->n_heaps_total,
                        (unsigned long)st->n_os_calls);
    if (st->gc.heap_bytes || st->gc.n_collections)
        err |= tidei_printf(fd, "  GC heap:    %zu bytes, %zu live after collection %lu, %lu bytes allocated (%zu since), "
                            "%lu bytes reclaimed, %zu threads; pauses %lu us total, %lu us max\n",
                            st->gc.heap_bytes, st->gc.live_bytes, (unsigned long)st->gc.n_collections,
                            (unsigned long)st->gc.allocated_total, st->gc.allocated_since_gc,
                            (unsigned long)st->gc.reclaimed_total, st->gc.n_threads,
                            (unsigned long)(st->gc.pause_ns_total / 1000), (unsigned long)(st->gc.pause_ns_max / 1000));
    err |= tidei_printf(fd, "  live memory by block size, largest first:\n");
    for (size_t i = 0; i < h->n && h->e[i].count; i++) {
        size_t bytes = h->e[i].size * h->e[i].count;
        err |= tidei_printf(fd, "    %zu bytes * %zu blocks (", h->e[i].size, h->e[i].count);
        put_percent(fd, h->e[i].count, st->live_blocks, &err);
        err |= tidei_printf(fd, " %%) = %zu bytes (", bytes);
        put_percent(fd, bytes, st->live_bytes, &err);
        err |= tidei_printf(fd, " %%)\n");
    }
    if (h->other_count)
        err |= tidei_printf(fd, "    (other sizes) %zu blocks = %zu bytes\n", h->other_count, h->other_bytes);
    err |= tidei_printf(fd, "  thread heaps:\n");
    for (size_t i = 0; i < n_hs; i++) {
        const struct tide_heap_stats *e = &hs[i];
        if (e->tid)
            err |= tidei_printf(fd, "    heap %u thread %d:", e->id, e->tid);
        else
            err |= tidei_printf(fd, "    heap %u pooled:", e->id);
        err |= tidei_printf(fd, " %zu spans (%zu full), %zu bytes cached, %zu bytes used, %lu mallocs, %lu frees\n",
                            e->n_spans, e->n_full_spans, e->cached_bytes, e->used_bytes,
                            (unsigned long)e->n_malloc, (unsigned long)e->n_free);
    }
    return err ? -1 : 0;
}

static int print_json(int fd, const struct tide_stats *st, const struct tide_heap_stats *hs, size_t n_hs,
                      const hist_t *h, bool locked)
{
    int err = 0;
    err |= tidei_printf(fd, "{\"tide\": \"%d.%d\", \"pid\": %d, \"exact_sizes\": %s,\n", TIDE_VERSION_MAJOR,
                        TIDE_VERSION_MINOR, (int)getpid(), locked ? "true" : "false");
#define J(field) err |= tidei_printf(fd, "  \"" #field "\": %lu,\n", (unsigned long)st->field)
    J(live_bytes); J(live_blocks); J(small_live_bytes); J(large_live_bytes); J(n_large); J(huge_bytes);
    J(n_huge); J(n_malloc); J(n_free); J(requested_bytes); J(cached_bytes); J(abandoned_bytes);
    J(pending_remote_frees); J(free_run_bytes); J(huge_cached_bytes); J(n_spans); J(n_full_spans);
    J(n_abandoned_spans); J(mapped_bytes); J(committed_bytes); J(returned_bytes); J(metadata_bytes);
    J(n_chunks); J(n_heaps); J(n_heaps_total); J(n_os_calls);
#undef J
#define G(key, field) err |= tidei_printf(fd, "\"" key "\": %lu, ", (unsigned long)st->gc.field)
    err |= tidei_printf(fd, "  \"gc\": {");
    G("heap_bytes", heap_bytes); G("live_bytes", live_bytes); G("allocated_since_gc", allocated_since_gc);
    G("allocated_total", allocated_total); G("reclaimed_total", reclaimed_total);
    G("collections", n_collections); G("explicit_frees", n_explicit_frees); G("threads", n_threads);
    G("pause_ns_total", pause_ns_total); G("pause_ns_max", pause_ns_max); G("max_heap_bytes", max_heap_bytes);
#undef G
    err |= tidei_printf(fd, "\"pause_histogram_ms\": {\"<0.1\": %lu, \"<0.3\": %lu, \"<1\": %lu, \"<3\": %lu, "
                        "\"<10\": %lu, \"<30\": %lu, \"<100\": %lu, \">=100\": %lu}},\n",
                        (unsigned long)st->gc.pause_hist[0], (unsigned long)st->gc.pause_hist[1],
                        (unsigned long)st->gc.pause_hist[2], (unsigned long)st->gc.pause_hist[3],
                        (unsigned long)st->gc.pause_hist[4], (unsigned long)st->gc.pause_hist[5],
                        (unsigned long)st->gc.pause_hist[6], (unsigned long)st->gc.pause_hist[7]);
    err |= tidei_printf(fd, "  \"classes\": [");
    const char *sep = "";
    for (int c = 0; c < TIDE_N_CLASSES; c++) {
        const struct tide_class_stats *cs = &st->classes[c];
        err |= tidei_printf(fd, "%s\n    {\"class\": %d, \"block_size\": %zu, \"live_blocks\": %zu, \"n_malloc\": %lu, "
                            "\"n_free\": %lu, \"n_spans\": %zu, \"cached_blocks\": %zu}",
                            sep, c, cs->block_size, cs->live_blocks, (unsigned long)cs->n_malloc,
                            (unsigned long)cs->n_free, cs->n_spans, cs->cached_blocks);
        sep = ",";
    }
    err |= tidei_printf(fd, "\n  ],\n  \"histogram\": [");
    sep = "";
    for (size_t i = 0; i < h->n && h->e[i].count; i++) {
        err |= tidei_printf(fd, "%s\n    {\"size\": %zu, \"blocks\": %zu, \"bytes\": %zu}", sep, h->e[i].size,
                            h->e[i].count, h->e[i].size * h->e[i].count);
        sep = ",";
    }
    err |= tidei_printf(fd, "\n  ],\n  \"heaps\": [");
    sep = "";
    for (size_t i = 0; i < n_hs; i++) {
        const struct tide_heap_stats *e = &hs[i];
        err |= tidei_printf(fd, "%s\n    {\"id\": %u, \"tid\": %d, \"n_spans\": %zu, \"n_full_spans\": %zu, "
                            "\"cached_bytes\": %zu, \"used_bytes\": %zu, \"n_malloc\": %lu, \"n_free\": %lu}",
                            sep, e->id, e->tid, e->n_spans, e->n_full_spans, e->cached_bytes, e->used_bytes,
                            (unsigned long)e->n_malloc, (unsigned long)e->n_free);
        sep = ",";
    }
    err |= tidei_printf(fd, "\n  ]\n}\n");
    return err ? -1 : 0;
}

static int report(int fd, bool json, bool locked)
{
    struct tide_stats st;
    struct tide_heap_stats hs[TIDE_STATS_REPORT_HEAPS];
    hist_t h;
    size_t n;
    stats_collect(&st, hs, TIDE_STATS_REPORT_HEAPS, &n, locked);
    hist_build(&h, &st, locked);
    if (n > TIDE_STATS_REPORT_HEAPS)
        n = TIDE_STATS_REPORT_HEAPS;
    return json ? print_json(fd, &st, hs, n, &h, locked) : print_text(fd, &st, hs, n, &h, locked);
}

tide_export int tide_stats_print(int fd, int json)
{
    tidei_init();
    tidei_busy_enter();
    int r = report(fd, json != 0, true);
    tidei_busy_leave();
    return r;
}

void tidei_stats_print(int fd)
{
    tidei_busy_enter();
    report(fd, false, true);
    tidei_busy_leave();
}

static void report_to_file(bool locked)
{
    int saved = errno;
    int fd = tidei_open_output(tidei_opt.stats_file, 0, true);
    if (fd < 0) {
        if (locked)
            tidei_warn("tide: cannot open stats_file %s (errno %d)\n", tidei_opt.stats_file, errno);
        errno = saved;
        return;
    }
    report(fd, tidei_opt.stats == 2, locked);
    if (fd != 2)
        close(fd);
    errno = saved;
}

static void on_stats_signal(int sig)
{
    (void)sig;
    tidei_busy_enter();
    report_to_file(false);
    tidei_busy_leave();
}

/* Installs the stats_signal handler (process init; sigaction never
 * allocates). */
tide_cold void tidei_stats_init(void)
{
    if (tidei_opt.stats_signal > 0)
        tidei_report_on_signal(tidei_opt.stats_signal, on_stats_signal, "stats_signal");
}

/* The report at exit, with TIDE_CONF stats=1 or json (init.c's
 * destructor). */
tide_cold void tidei_stats_at_exit(void)
{
    if (tidei_opt.stats)
        report_to_file(true);
}
