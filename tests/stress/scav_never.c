/* stress/scav_never.c — decay_ms=-1 keeps freed memory; malloc_trim(0)
 * gives it back at once, from every heap; tide_set_decay_ms turns the
 * scavenger on at run time.
 * th-conf: decay_ms=-1
 * th-timeout: 120
 *
 *   never_keeps        a freed burst is still resident a second later;
 *   trim_every_heap    an idle thread's cached spans and the remote frees
 *                      pending in them come back with malloc_trim(0), which
 *                      says so (returns 1);
 *   set_decay_at_run_time  tide_set_decay_ms(100) returns the old value
 *                      (-1), rejects a bad one, and the next freed burst
 *                      goes back within a second. */
#include "stress.h"

#include <fcntl.h>

#include "tide.h"

#define BURST (ST_TSAN ? ((size_t)16 << 20) : ((size_t)64 << 20))
#define MAX_BLOCKS 300000

static void never_keeps(void)
{
    TIDE_ONLY();
    st_blk *tab = st_map(MAX_BLOCKS * sizeof *tab);
    long base = st_rss_kb();
    size_t n = st_burst(tab, MAX_BLOCKS, BURST, 1);
    long peak = st_rss_kb();
    for (size_t i = 0; i < n; i++)
        st_free(tab[i], "never");
    usleep(1000000);
    long r = st_rss_kb();
    st_check_errors();
    if (!ST_TSAN)
        CHECKF(r - base >= (peak - base) / 2, "decay_ms=-1: RSS fell from %ld to %ld KiB (base %ld) with no trim", peak,
               r, base);
    st_unmap(tab, MAX_BLOCKS * sizeof *tab);
}

static st_blk *wtab;
static size_t wn;
static pthread_barrier_t b_alloc, b_freed;
static st_gate done = ST_GATE_INIT;   /* the worker waits here, idle, until main opens it */

static void *worker(void *arg)
{
    (void)arg;
    wn = st_burst(wtab, MAX_BLOCKS, BURST, 2);
    pthread_barrier_wait(&b_alloc);
    for (size_t i = 0; i < wn; i += 2)  /* the even ones; main frees the odd ones */
        st_free(wtab[i], "worker");
    pthread_barrier_wait(&b_freed);
    st_gate_wait(&done);
    return NULL;
}

static void trim_every_heap(void)
{
    TIDE_ONLY();
    wtab = st_map(MAX_BLOCKS * sizeof *wtab);
    pthread_barrier_init(&b_alloc, NULL, 2);
    pthread_barrier_init(&b_freed, NULL, 2);
    st_gate_close(&done);
    long base = st_rss_kb();
    pthread_t t;
    if (!st_spawn(&t, worker, NULL))
        return;
    pthread_barrier_wait(&b_alloc);
    for (size_t i = 1; i < wn; i += 2)  /* remote frees into the worker's spans */
        st_free(wtab[i], "main");
    pthread_barrier_wait(&b_freed);
    long peak = st_rss_kb();
    int t1 = malloc_trim(0);
    long r = st_rss_kb();
    struct tide_stats st;
    tide_stats_get(&st);
    st_gate_open(&done);
    st_join(t);
    st_check_errors();
    CHECKF(t1 == 1, "malloc_trim(0) returned %d after a burst was freed", t1);
    CHECKF(st.pending_remote_frees == 0, "%zu remote frees still pending after malloc_trim", st.pending_remote_frees);
    if (!ST_TSAN)
        CHECKF(r <= base + (peak - base) / 10, "RSS %ld KiB after malloc_trim (base %ld, peak %ld)", r, base, peak);
    st_unmap(wtab, MAX_BLOCKS * sizeof *wtab);
}

static void set_decay_at_run_time(void)
{
    TIDE_ONLY();
    errno = 0;
    CHECK(tide_set_decay_ms(5000000) == -2 && errno == EINVAL);
    CHECK(tide_set_decay_ms(100) == -1);
    st_burst_rss m = st_burst_freed(MAX_BLOCKS, BURST, 3, 2000, "runtime");
    st_check_errors();
    if (!ST_TSAN)
        CHECKF(m.after <= m.limit,
               "decay_ms set to 100 at run time: RSS %ld KiB 2 s after a freed burst (base %ld, peak %ld)", m.after,
               m.base, m.peak);
    CHECK(tide_set_decay_ms(-1) == 100);
}

int main(void)
{
    RUN(on_tide);
    RUN(never_keeps);
    RUN(trim_every_heap);
    RUN(set_decay_at_run_time);
    return th_summary();
}
