/* stress/tls_dtor.c — allocation in the destructors of exiting threads.
 *
 * When a thread exits, glibc runs its thread_local destructors (C++
 * thread_local objects, registered through __cxa_thread_atexit_impl, which
 * this test calls directly) and then its pthread_key destructors, in rounds
 * (a destructor may set a value again: up to PTHREAD_DESTRUCTOR_ITERATIONS
 * rounds).  tide's own key destructor gives the thread's heap up in the
 * first round; everything after it runs on the backup heap.  The
 * destructors here allocate, free what the thread allocated while alive and
 * in earlier destructors, and leave blocks behind that the main thread
 * frees after the thread is gone.  Checked: every allocation succeeds,
 * every block keeps its contents, none is handed out twice (the pattern
 * depends on the address), and nothing is left in abandoned spans once all
 * is freed.
 *
 * tls_and_key_dtors: threads that allocated while alive.
 * first_malloc_in_dtor: threads whose first allocation ever is in a key
 *   destructor (the heap is set up while the thread is exiting, after the
 *   round in which tide's destructor would have run), or that allocate only
 *   in a thread_local destructor (glibc's registration itself allocates).
 * concurrent_exits: many threads exiting at once, all allocating in
 *   destructors (the backup heap under contention). */
#include "stress.h"

#include <sched.h>

/* glibc's registration of thread_local destructors (what g++ emits for a
 * thread_local object with a destructor). */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern void *__dso_handle;

#define KEEP_MAX 200000             /* blocks left behind by exited threads */
/* Key destructor rounds we ask for: glibc runs up to 4.  TSan finishes
 * its own per-thread state in the last round, from a key created before
 * ours, so under TSan a destructor of ours may not run in round 4 (it
 * crashes inside TSan's interceptors): 3 there. */
#define ROUNDS (ST_TSAN ? 3 : 4)

/* Blocks left behind for the main thread (mmap'ed table). */
static st_blk *keep;
static atomic_size_t n_keep;

static void keep_block(st_blk b)
{
    size_t i = atomic_fetch_add(&n_keep, 1);
    if (i >= KEEP_MAX) {
        st_report("keep table full");
        st_free(b, "overflow");
        return;
    }
    keep[i] = b;
}

static void free_kept(void)
{
    size_t n = atomic_load(&n_keep);
    if (n > KEEP_MAX)
        n = KEEP_MAX;
    for (size_t i = 0; i < n; i++)
        st_free(keep[i], "kept");
    atomic_store(&n_keep, 0);
}

static pthread_key_t key_a, key_b;  /* destructors: key_dtor */
static atomic_long n_key_calls, n_tls_calls;

/* What a thread carries into its destructors. */
typedef struct {
    th_rng r;
    st_blk live[16];                /* blocks allocated while alive (or by earlier destructors) */
    int round;                      /* key destructor rounds run so far */
} tstate_t;

/* Frees a few of s's blocks, allocates replacements, and leaves a couple
 * behind for the main thread. */
static void dtor_work(tstate_t *s, const char *who)
{
    for (int k = 0; k < 16; k++) {
        int i = (int)(th_rand(&s->r) % 16);
        st_free(s->live[i], who);
        s->live[i] = st_new(th_rand(&s->r) % 8 == 0 ? th_rand_range(&s->r, 64 * KiB, 300 * KiB)
                                                     : th_rand_range(&s->r, 1, 4096));
    }
    keep_block(st_new(th_rand_range(&s->r, 1, 1024)));
    /* A block that lives only inside the destructor, with realloc. */
    void *p = th_opaque_ptr(malloc(th_opaque(24)));
    void *q = p ? th_opaque_ptr(realloc(p, th_opaque(3000))) : NULL;
    if (!q)
        st_report("%s: malloc/realloc failed", who);
    free(q);
}

static void key_dtor(void *arg)
{
    tstate_t *s = arg;
    atomic_fetch_add(&n_key_calls, 1);
    dtor_work(s, "key destructor");
    if (++s->round < ROUNDS) {
        /* Ask for another round; the allocation in it comes after tide's
         * own destructor has given the heap up. */
        if (pthread_setspecific(key_a, s) != 0)
            st_report("pthread_setspecific in a destructor failed");
        return;
    }
    for (int i = 0; i < 16; i++)
        keep_block(s->live[i]);     /* outlive the thread */
    free(s);                        /* allocated by the live thread */
}

/* A thread_local destructor: allocates, and sets a key (a thread that had
 * no key value yet gets its key destructor run after this). */
static void tls_dtor(void *arg)
{
    tstate_t *s = arg;
    atomic_fetch_add(&n_tls_calls, 1);
    dtor_work(s, "thread_local destructor");
    if (pthread_setspecific(key_a, s) != 0)
        st_report("pthread_setspecific in a thread_local destructor failed");
}

/* A second thread_local destructor registered from inside the first one
 * runs too (glibc loops until the list is empty). */
static void tls_dtor_outer(void *arg)
{
    tstate_t *s = arg;
    atomic_fetch_add(&n_tls_calls, 1);
    dtor_work(s, "outer thread_local destructor");
    __cxa_thread_atexit_impl(tls_dtor, s, &__dso_handle);
}

/* A key destructor that only allocates and keeps: for key_b, whose first
 * value is set in a destructor. */
static void key_b_dtor(void *arg)
{
    atomic_fetch_add(&n_key_calls, 1);
    st_blk *b = arg;
    st_free(*b, "key_b value");
    free(b);
    keep_block(st_new(333));
}

static tstate_t *tstate_new(uint64_t seed)
{
    tstate_t *s = calloc(1, sizeof *s);
    if (!s) {
        st_report("calloc failed");
        return NULL;
    }
    s->r.s = th_mix(seed) | 1;
    return s;
}

static void *live_thread(void *arg)
{
    tstate_t *s = tstate_new((uint64_t)(uintptr_t)arg);
    if (!s)
        return NULL;
    for (int i = 0; i < 16; i++)
        s->live[i] = st_new(th_rand_range(&s->r, 1, 2000));
    for (int k = 0; k < 2000; k++) {         /* some ordinary work */
        int i = (int)(th_rand(&s->r) % 16);
        st_free(s->live[i], "live");
        s->live[i] = st_new(th_rand_range(&s->r, 1, 2000));
    }
    if ((uintptr_t)arg % 2)
        __cxa_thread_atexit_impl(tls_dtor_outer, s, &__dso_handle);
    else
        pthread_setspecific(key_a, s);
    return NULL;
}

/* A thread that never allocates while alive: its first malloc is in a
 * destructor.  The state lives in a static slot, not the heap. */
static tstate_t static_states[4096];
static atomic_int n_static;

static void key_first_dtor(void *arg)
{
    tstate_t *s = arg;
    atomic_fetch_add(&n_key_calls, 1);
    for (int i = 0; i < 16; i++)     /* first allocation of this thread */
        s->live[i] = st_new(th_rand_range(&s->r, 1, 500));
    dtor_work(s, "first-malloc key destructor");
    for (int i = 0; i < 16; i++)
        keep_block(s->live[i]);
    /* A key set now, from a destructor of a thread with a heap made in a
     * destructor: its destructor runs in the next round. */
    st_blk *b = malloc(sizeof *b);
    if (b) {
        *b = st_new(40);
        pthread_setspecific(key_b, b);
    }
}

static pthread_key_t key_first;

static void tls_first_dtor(void *arg)
{
    tstate_t *s = arg;
    atomic_fetch_add(&n_tls_calls, 1);
    for (int i = 0; i < 16; i++)
        s->live[i] = st_new(th_rand_range(&s->r, 1, 500));
    dtor_work(s, "first-malloc thread_local destructor");
    for (int i = 0; i < 16; i++)
        keep_block(s->live[i]);
}

static void *quiet_thread(void *arg)
{
    int i = atomic_fetch_add(&n_static, 1);
    if (i >= 4096) {
        st_report("too many quiet threads");
        return NULL;
    }
    tstate_t *s = &static_states[i];
    memset(s, 0, sizeof *s);
    s->r.s = th_mix((uint64_t)(uintptr_t)arg) | 1;
    if ((uintptr_t)arg % 2)
        __cxa_thread_atexit_impl(tls_first_dtor, s, &__dso_handle);
    else
        pthread_setspecific(key_first, s);
    return NULL;
}

/* Runs n threads of fn, at most live at a time, joining each. */
static void run_threads(void *(*fn)(void *), long n, int live, uint64_t seed)
{
    pthread_t t[64];
    bool on[64] = { false };
    for (long i = 0; i < n && !st_failed(); i++) {
        int k = (int)(i % live);
        if (on[k])
            st_join(t[k]);
        on[k] = st_spawn(&t[k], fn, (void *)(uintptr_t)(seed + (uint64_t)i));
        if (!on[k])
            break;
    }
    for (int k = 0; k < live; k++)
        if (on[k])
            st_join(t[k]);
}

static void check_clean(const struct tide_stats *s0)
{
    if (!TH_TIDE)
        return;
    st_trim();
    struct tide_stats s = th_stats();
    if (getenv("STRESS_VERBOSE"))
        fprintf(stderr, "  after trim: committed %.1f MB, mapped %.1f MB (start %.1f / %.1f)\n",
                (double)s.committed_bytes / MiB, (double)s.mapped_bytes / MiB,
                (double)s0->committed_bytes / MiB, (double)s0->mapped_bytes / MiB);
    CHECKF(s.n_abandoned_spans == 0, "%zu abandoned spans left after every block was freed and tide_trim()",
           s.n_abandoned_spans);
    /* Blocks of the backup heap (allocated after tide's destructor) were
     * freed too: their pages must not stay committed. */
    CHECKF(s.committed_bytes <= s0->committed_bytes + 4 * MiB,
           "committed %zu MB at the end (mapped %zu MB), %zu MB at start: pages of freed blocks kept",
           s.committed_bytes / MiB, s.mapped_bytes / MiB, s0->committed_bytes / MiB);
}

static void tls_and_key_dtors(void)
{
    st_trim();
    struct tide_stats s0 = th_stats();
    long n = st_ops(400);
    atomic_store(&n_key_calls, 0);
    atomic_store(&n_tls_calls, 0);
    run_threads(live_thread, n, 2, 1);
    /* Even threads: ROUNDS key rounds.  Odd: outer + inner thread_local
     * destructors, then ROUNDS key rounds (the inner one sets key_a). */
    long want_key = n * ROUNDS, want_tls = (n / 2) * 2;
    CHECKF(atomic_load(&n_key_calls) == want_key, "%ld key destructor calls, expected %ld",
           atomic_load(&n_key_calls), want_key);
    CHECKF(atomic_load(&n_tls_calls) == want_tls, "%ld thread_local destructor calls, expected %ld",
           atomic_load(&n_tls_calls), want_tls);
    free_kept();
    st_check_errors();
    check_clean(&s0);
}

static void first_malloc_in_dtor(void)
{
    st_trim();
    struct tide_stats s0 = th_stats();
    long n = st_ops(400);
    if (n > 4096)
        n = 4096;
    atomic_store(&n_static, 0);
    atomic_store(&n_key_calls, 0);
    run_threads(quiet_thread, n, 2, 1000);
    /* Even threads: key_first then key_b; odd: one thread_local destructor. */
    long want_key = (n + 1) / 2 * 2;
    CHECKF(atomic_load(&n_key_calls) == want_key, "%ld key destructor calls, expected %ld",
           atomic_load(&n_key_calls), want_key);
    free_kept();
    st_check_errors();
    check_clean(&s0);
}

static void concurrent_exits(void)
{
    st_trim();
    struct tide_stats s0 = th_stats();
    long n = st_ops(600);
    /* Many at once: threads exit while others are in their destructors. */
    for (long i = 0; i < n && !st_failed(); i += 24) {
        pthread_t t[24];
        int m = 0;
        for (int k = 0; k < 24; k++)
            if (st_spawn(&t[m], k % 3 == 0 ? quiet_thread : live_thread, (void *)(uintptr_t)(5000 + i + k)))
                m++;
        for (int k = 0; k < m; k++)
            st_join(t[k]);
        atomic_store(&n_static, 0);  /* slots of joined threads are free again */
    }
    free_kept();
    st_check_errors();
    check_clean(&s0);
}

int main(void)
{
    keep = st_map(KEEP_MAX * sizeof *keep);
    if (pthread_key_create(&key_a, key_dtor) != 0 || pthread_key_create(&key_b, key_b_dtor) != 0 ||
        pthread_key_create(&key_first, key_first_dtor) != 0) {
        printf("FAIL keys: pthread_key_create failed\n");
        return 1;
    }
    RUN(on_tide);
    RUN(tls_and_key_dtors);
    RUN(first_malloc_in_dtor);
    RUN(concurrent_exits);
    return th_summary();
}
