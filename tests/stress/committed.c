/* stress/committed.c — memory freed into the spans of an exited thread is
 * reused: the committed-memory test of the design brief.
 * th-conf: decay_ms=-1   (no scavenger: it would decommit free pages between
 * the measurements, and the third thread's reuse of them would count as growth)
 *
 * One thread allocates a million small blocks and exits (its spans are
 * abandoned, full); a second frees them all (remote frees into abandoned
 * spans); a third allocates as much again.  The third must be served from
 * the abandoned spans (adopted, or swept back to the page allocator), so
 * tide_stats_get()'s mapped and committed bytes may not grow beyond a small
 * slack over what the first thread left.  Without adoption and sweeping,
 * the third thread would map its whole footprint again (80 MB here) and
 * the check fails; committed_control shows that the measurement sees it:
 * the same three steps without the frees must grow by about that much, and
 * tests/stress/mutation.sh runs this program on copies of tide built
 * without adoption and sweeping, where these tests must fail.
 *
 * Variants: medium-size blocks (larger classes, spans of many pages); half
 * of the blocks freed, so the abandoned spans are half full and only
 * adoption can reuse them (sweeping returns empty spans only); and a race
 * in which the first thread's spans are full (USE_NOTIFY) and it
 * exits while the second is freeing into them (notify, then abandonment,
 * then frees into abandoned spans).  Each test ends by freeing everything,
 * calling tide_trim() and checking that no abandoned span is left and the
 * mapped and committed bytes are back near the start: no page stranded.
 *
 * The block tables are mmap'ed, so only the test's blocks count in the
 * figures.  Block i has a size derived from i (same sizes in every step)
 * and contents checked before every free. */
#include "stress.h"

#include <sched.h>

#define SLACK (16 * MiB)            /* two chunks: rounding, partly used spans */

typedef struct {
    size_t n;                       /* blocks */
    size_t min, max;                /* their sizes, bytes */
} workload_t;

static const workload_t small_load = { 1000000, 16, 128 };
static const workload_t medium_load = { 8000, 1024, 16 * KiB };

static size_t size_of(const workload_t *w, size_t i)
{
    return w->min + (size_t)(th_mix(i) % (w->max - w->min + 1));
}

typedef struct {
    const workload_t *w;
    void **p;                       /* block table (mmap'ed), n entries */
    atomic_size_t n_freed;          /* race: how far the freeing thread got */
    atomic_int start_freeing;       /* race: the allocating thread has all its blocks */
    size_t stride;                  /* alloc_all/free_all touch blocks 0, stride, 2 stride, ... */
} job_t;

static void *alloc_all(void *arg)
{
    job_t *j = arg;
    for (size_t i = 0; i < j->w->n && !st_failed(); i += j->stride) {
        size_t n = size_of(j->w, i);
        j->p[i] = malloc(n);
        if (!j->p[i]) {
            st_report("malloc(%zu) failed at block %zu", n, i);
            break;
        }
        th_fill(j->p[i], n, TH_SEED(j->p[i], n));
    }
    return NULL;
}

static void free_all(job_t *j)
{
    for (size_t i = 0; i < j->w->n; i += j->stride) {
        size_t n = size_of(j->w, i);
        if (j->p[i] && !th_verify(j->p[i], n, TH_SEED(j->p[i], n)))
            st_report("block %zu (%p, %zu bytes) corrupted before free", i, j->p[i], n);
        free(j->p[i]);
        j->p[i] = NULL;
        atomic_store_explicit(&j->n_freed, i + 1, memory_order_release);
    }
}

static void *free_all_thread(void *arg)
{
    job_t *j = arg;
    while (!atomic_load_explicit(&j->start_freeing, memory_order_acquire))
        sched_yield();
    free_all(j);
    return NULL;
}

/* The race variant's first thread: allocates everything (its spans go to
 * the full list as they fill), lets the freeing thread start, keeps
 * allocating and freeing a little (so it drains notifications now and then)
 * and exits once about half of its blocks have been freed remotely. */
static void *alloc_then_exit_midway(void *arg)
{
    job_t *j = arg;
    alloc_all(j);
    atomic_store_explicit(&j->start_freeing, 1, memory_order_release);
    size_t half = j->w->n / 2;
    for (size_t k = 0; atomic_load_explicit(&j->n_freed, memory_order_acquire) < half && !st_failed(); k++) {
        size_t n = size_of(j->w, k);
        void *q = malloc(n);
        if (!q) {
            st_report("malloc(%zu) failed while waiting", n);
            break;
        }
        free(q);
        if (k % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static job_t *job_new(const workload_t *w)
{
    job_t *j = st_map(sizeof *j);
    j->w = w;
    j->p = st_map(w->n * sizeof(void *));
    j->stride = 1;
    return j;
}

static void job_delete(job_t *j)
{
    st_unmap(j->p, j->w->n * sizeof(void *));
    st_unmap(j, sizeof *j);
}

/* Runs fn(arg) in a thread of its own and waits for it to exit. */
static void in_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (st_spawn(&t, fn, arg))
        st_join(t);
}

static void *free_all_now(void *arg)
{
    free_all(arg);
    return NULL;
}

#define MB(x) ((double)(x) / (double)MiB)

/* Mapped bytes must come back to about where they were once everything is
 * freed and trimmed, with no abandoned span left. */
static void check_all_returned(const struct tide_stats *s0, const char *what)
{
    st_trim();
    struct tide_stats s = th_stats();
    CHECKF(s.n_abandoned_spans == 0, "%s: %zu abandoned spans left after every block was freed and tide_trim()",
           what, s.n_abandoned_spans);
    CHECKF(s.mapped_bytes <= s0->mapped_bytes + SLACK,
           "%s: after freeing everything and tide_trim(), mapped %.1f MB, at start %.1f MB",
           what, MB(s.mapped_bytes), MB(s0->mapped_bytes));
    CHECKF(s.committed_bytes <= s0->committed_bytes + 4 * MiB,
           "%s: after freeing everything and tide_trim(), committed %.1f MB, at start %.1f MB",
           what, MB(s.committed_bytes), MB(s0->committed_bytes));
}

/* The test proper: alloc in A (exits), free in B (exits), alloc again in C
 * (exits); with race, A exits while B is freeing; with partial, B frees
 * every second block only and C allocates as many as were freed, so the
 * abandoned spans are half full: only adopting them reuses the space
 * (sweeping returns only empty spans). */
static void reuse_after_exit(const workload_t *w, bool race, bool partial)
{
    TIDE_ONLY();
    st_trim();
    struct tide_stats s0 = th_stats();
    job_t *a = job_new(w), *c = job_new(w);

    if (race) {
        pthread_t ta, tb;
        if (st_spawn(&ta, alloc_then_exit_midway, a)) {
            if (st_spawn(&tb, free_all_thread, a))
                st_join(tb);
            st_join(ta);
        }
    } else {
        in_thread(alloc_all, a);
    }
    struct tide_stats s1 = th_stats();
    if (partial)
        a->stride = c->stride = 2;
    if (!race) {
        atomic_store(&a->start_freeing, 1);
        in_thread(free_all_thread, a);
    }
    struct tide_stats s2 = th_stats();
    in_thread(alloc_all, c);
    struct tide_stats s3 = th_stats();
    st_check_errors();

    /* The measurement must see the blocks at all, or the check is empty. */
    size_t least = w->n * w->min;
    CHECKF(s1.mapped_bytes >= s0.mapped_bytes + least,
           "first thread's %zu blocks not seen: mapped %.1f -> %.1f MB (at least %.1f MB expected)",
           w->n, MB(s0.mapped_bytes), MB(s1.mapped_bytes), MB(least));
    CHECKF(s3.mapped_bytes <= s1.mapped_bytes + SLACK,
           "mapped grew from %.1f MB (first thread's blocks) to %.1f MB after freeing them and allocating as many "
           "again (%.1f MB after the frees; abandoned spans %zu -> %zu): freed memory of the exited thread not reused",
           MB(s1.mapped_bytes), MB(s3.mapped_bytes), MB(s2.mapped_bytes), s2.n_abandoned_spans,
           s3.n_abandoned_spans);
    CHECKF(s3.committed_bytes <= s1.committed_bytes + SLACK,
           "committed grew from %.1f MB to %.1f MB: freed memory of the exited thread not reused",
           MB(s1.committed_bytes), MB(s3.committed_bytes));
    if (getenv("STRESS_VERBOSE"))
        fprintf(stderr, "  mapped MB: start %.1f, after A %.1f, after B %.1f, after C %.1f; abandoned %zu/%zu/%zu\n",
                MB(s0.mapped_bytes), MB(s1.mapped_bytes), MB(s2.mapped_bytes), MB(s3.mapped_bytes),
                s1.n_abandoned_spans, s2.n_abandoned_spans, s3.n_abandoned_spans);

    /* The third thread's blocks, freed here after it exited, and what is
     * left of the first's. */
    free_all(c);
    a->stride = 1;
    free_all(a);
    st_check_errors();
    check_all_returned(&s0, "end");
    job_delete(a);
    job_delete(c);
}

static void committed_small(void) { reuse_after_exit(&small_load, false, false); }
static void committed_medium(void) { reuse_after_exit(&medium_load, false, false); }
static void committed_partial(void) { reuse_after_exit(&small_load, false, true); }
static void committed_abandon_race(void) { reuse_after_exit(&small_load, true, false); }

/* The same steps without the frees: the third thread must need about as
 * much memory again.  Shows that the check above can fail: if abandoned
 * spans were never reused, this is what it would measure. */
static void committed_control(void)
{
    TIDE_ONLY();
    st_trim();
    const workload_t *w = &small_load;
    struct tide_stats s0 = th_stats();
    job_t *a = job_new(w), *c = job_new(w);
    in_thread(alloc_all, a);
    struct tide_stats s1 = th_stats();
    in_thread(alloc_all, c);
    struct tide_stats s3 = th_stats();
    st_check_errors();
    size_t grown1 = s1.mapped_bytes - s0.mapped_bytes;
    CHECKF(s3.mapped_bytes >= s1.mapped_bytes + grown1 / 10 * 9,
           "with the first thread's blocks still live, a second set grew mapped only %.1f -> %.1f MB "
           "(the first grew it by %.1f MB): the measurement cannot tell reuse from none",
           MB(s1.mapped_bytes), MB(s3.mapped_bytes), MB(grown1));
    in_thread(free_all_now, a);
    free_all(c);
    st_check_errors();
    check_all_returned(&s0, "end");
    job_delete(a);
    job_delete(c);
}

int main(void)
{
    RUN(on_tide);
    RUN(committed_small);
    RUN(committed_medium);
    RUN(committed_partial);
    RUN(committed_abandon_race);
    RUN(committed_control);
    return th_summary();
}
