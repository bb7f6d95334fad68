/* api/lifecycle.c — allocation at the edges of a process's and a thread's
 * life: before main, in pthread key destructors and TLS destructors (also
 * after tide has taken the thread's heap away), across thread exit (spans
 * abandoned and adopted, heaps pooled), and in the child of fork().
 * th-static: yes
 *
 * Checks that a block is tide's run in a forked child: on tide,
 * malloc_usable_size() of a foreign pointer aborts, which the parent sees as
 * a failure instead of dying itself. */
#include "testhelper.h"

#include <stdatomic.h>

/* ---- helpers -------------------------------------------------------------- */

/* The blocks a test hands from one thread (or destructor) to another. */
typedef struct { void *p; size_t n; uint64_t seed; } blk_t;

/* Allocates n bytes and fills them; NULL on failure. */
static void *alloc_filled(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    if (p) th_fill(p, n, seed);
    return p;
}

/* In a child: every block in b is a live block of this process's malloc
 * (malloc_usable_size >= its size), keeps its contents and can be freed. */
typedef struct { blk_t *b; int n; } blk_list;
static void own_blocks_child(void *arg)
{
    blk_list *l = arg;
    for (int i = 0; i < l->n; i++) {
        if (!l->b[i].p) continue;
        if (malloc_usable_size(l->b[i].p) < l->b[i].n) _exit(10);
        if (!th_verify(l->b[i].p, l->b[i].n, l->b[i].seed)) _exit(11);
        free(l->b[i].p);
    }
    _exit(0);
}

/* Checks in a child that the blocks are this malloc's and intact. */
static void check_blocks_are_ours(blk_t *b, int n, const char *what)
{
    blk_list l = { b, n };
    char sb[64];
    int st = th_in_child(own_blocks_child, &l, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the blocks are not this malloc's live blocks, or "
           "changed (child: %s; 10 = usable size, 11 = contents)", what, th_status_str(st, sb, sizeof sb));
}

/* ---- before main ---------------------------------------------------------- */

static blk_t early[6];
static int early_errors;

__attribute__((constructor(101))) static void before_main(void)
{
    /* Runs before main (and, in the static build, possibly before tide's own
     * constructor): tide must initialise itself on the first call. */
    early[0] = (blk_t){ alloc_filled(24, 1), 24, 1 };
    early[1] = (blk_t){ alloc_filled(3000, 2), 3000, 2 };
    early[2] = (blk_t){ alloc_filled(300 * KiB, 3), 300 * KiB, 3 };
    early[3] = (blk_t){ alloc_filled(6 * MiB, 4), 6 * MiB, 4 };
    char *c = calloc(100, 10);
    if (!c || !th_is_zero(c, 1000)) early_errors++;
    if (c) th_fill(c, 1000, 5);
    early[4] = (blk_t){ c, 1000, 5 };
    void *a = NULL;
    if (posix_memalign(&a, 256, 500) != 0 || !th_aligned(a, 256)) early_errors++;
    if (a) th_fill(a, 500, 6);
    early[5] = (blk_t){ a, 500, 6 };
    void *r = realloc(malloc(10), 100);
    if (!r) early_errors++;
    free(r);
    for (int i = 0; i < 6; i++)
        if (!early[i].p) early_errors++;
}

/* Blocks allocated in a constructor before main are valid blocks of the
 * program's malloc, keep their contents and can be freed in main. */
static void malloc_before_main(void)
{
    CHECKF(early_errors == 0, "%d allocations before main failed or were wrong", early_errors);
    check_blocks_are_ours(early, 6, "blocks allocated before main");
    for (int i = 0; i < 6; i++) {
        if (early[i].p) CHECKF(th_verify(early[i].p, early[i].n, early[i].seed), "block %d from before main "
                               "changed", i);
        free(early[i].p);
    }
}

/* ---- key and TLS destructors ---------------------------------------------- */

#define N_DTOR_BLOCKS 64
static pthread_key_t late_key;          /* created after tide's key: runs after tide's destructor */
static blk_t dtor_blocks[N_DTOR_BLOCKS]; /* blocks allocated by destructors, freed by main */
static atomic_int n_dtor_blocks;
static atomic_int dtor_errors;
static atomic_int dtor_rounds;
static _Thread_local char *tls_buf;     /* a TLS pointer freed by a key destructor */
static _Thread_local int tls_rounds;
static atomic_int dtor_sizes = 7;       /* how many of the sizes below destructors allocate */

static void hand_over(void *p, size_t n, uint64_t seed)
{
    int i = atomic_fetch_add(&n_dtor_blocks, 1);
    if (i < N_DTOR_BLOCKS) dtor_blocks[i] = (blk_t){ p, n, seed };
    else free(p);
}

/* Allocation in a destructor: every size range; some blocks are freed here,
 * the others handed to the main thread. */
static void destructor_work(uint64_t seed)
{
    static const size_t sizes[] = { 1, 16, 100, 1000, 20000, 200 * KiB, 5 * MiB };
    for (int i = 0; i < atomic_load(&dtor_sizes); i++) {
        size_t n = sizes[i];
        char *keep = alloc_filled(n, seed + i);
        char *tmp = alloc_filled(n, seed + 100 + i);
        if (!keep || !tmp) { atomic_fetch_add(&dtor_errors, 1); free(keep); free(tmp); continue; }
        char *grown = realloc(tmp, n * 2 + 10);
        if (!grown || !th_verify(grown, n, seed + 100 + i)) atomic_fetch_add(&dtor_errors, 1);
        free(grown ? grown : tmp);
        char *z = calloc(1, n);
        if (!z || !th_is_zero(z, n)) atomic_fetch_add(&dtor_errors, 1);
        free(z);
        if (!th_verify(keep, n, seed + i)) atomic_fetch_add(&dtor_errors, 1);
        hand_over(keep, n, seed + i);
    }
}

/* The destructor of late_key: frees the TLS buffer, works, and asks for a
 * second round by setting the key again (glibc runs destructors again while
 * any key has a value, up to PTHREAD_DESTRUCTOR_ITERATIONS times). */
static void late_key_dtor(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    if (tls_buf) {
        if (!th_verify(tls_buf, 5000, 77)) atomic_fetch_add(&dtor_errors, 1);
        free(tls_buf);
        tls_buf = NULL;
    }
    destructor_work(seed);
    atomic_fetch_add(&dtor_rounds, 1);
    if (++tls_rounds < 2) pthread_setspecific(late_key, (void *)(uintptr_t)(seed + 1000));
}

/* A TLS destructor, as C++ thread_local objects have (registered the way
 * g++ registers them); these run before the key destructors. */
int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern void *__dso_handle;
static void tls_dtor(void *arg)
{
    destructor_work((uint64_t)(uintptr_t)arg);
    atomic_fetch_add(&dtor_rounds, 1);
}

static void *dtor_thread(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    tls_buf = alloc_filled(5000, 77);
    void *p = malloc(100);       /* the thread has a heap before it exits */
    free(p);
    pthread_setspecific(late_key, (void *)(uintptr_t)seed);
    __cxa_thread_atexit_impl(tls_dtor, (void *)(uintptr_t)(seed + 500), &__dso_handle);
    return NULL;
}

/* Allocation and free in TLS destructors and in key destructors that run
 * after tide has taken the thread's heap away (late_key was created after
 * tide's own key), in two destructor rounds: every call works, and the main
 * thread can verify and free what they allocated. */
static void destructors(void)
{
    CHECK(pthread_key_create(&late_key, late_key_dtor) == 0);
    for (int t = 0; t < 4; t++) {
        pthread_t th;
        atomic_store(&n_dtor_blocks, 0);
        atomic_store(&dtor_rounds, 0);
        CHECK(pthread_create(&th, NULL, dtor_thread, (void *)(uintptr_t)(1 + t * 10000)) == 0);
        pthread_join(th, NULL);
        CHECKF(atomic_load(&dtor_rounds) == 3, "thread %d: %d destructor rounds ran, want 3 (1 TLS + 2 key)", t,
               atomic_load(&dtor_rounds));
        int n = atomic_load(&n_dtor_blocks);
        if (n > N_DTOR_BLOCKS) n = N_DTOR_BLOCKS;
        CHECKF(n == 21, "thread %d: destructors handed over %d blocks, want 21", t, n);
        for (int i = 0; i < n; i++)
            CHECKF(th_verify(dtor_blocks[i].p, dtor_blocks[i].n, dtor_blocks[i].seed),
                   "thread %d: block %d (%zu bytes) from a destructor changed", t, i, dtor_blocks[i].n);
        if (t == 0) check_blocks_are_ours(dtor_blocks, n, "blocks allocated in destructors");
        for (int i = 0; i < n; i++) free(dtor_blocks[i].p);
    }
    CHECKF(atomic_load(&dtor_errors) == 0, "%d allocation errors in destructors", atomic_load(&dtor_errors));
    /* Main still allocates normally afterwards. */
    void *p = th_opaque_ptr(malloc(1000));
    CHECK(p);
    free(p);
}

/* Many threads whose only allocations happen in a late key destructor (their
 * heap is already gone): the memory they free there is reused, so the heap
 * does not grow with the number of threads. */
static void *late_only_thread(void *arg)
{
    pthread_setspecific(late_key, arg);
    return NULL;
}

static void destructor_memory_reused(void)
{
    TIDE_ONLY();
    struct tide_stats a, b;
    atomic_store(&dtor_sizes, 6);   /* no huge block: page faults would dominate the time */
    for (int round = 0; round < 2; round++) {
        if (round == 1) tide_stats_get(&a);
        for (int t = 0; t < 100; t++) {
            pthread_t th;
            atomic_store(&n_dtor_blocks, 0);
            pthread_create(&th, NULL, late_only_thread, (void *)(uintptr_t)(7 + t));
            pthread_join(th, NULL);
            int n = atomic_load(&n_dtor_blocks);
            if (n > N_DTOR_BLOCKS) n = N_DTOR_BLOCKS;
            for (int i = 0; i < n; i++) free(dtor_blocks[i].p);
        }
    }
    tide_stats_get(&b);
    atomic_store(&dtor_sizes, 7);
    CHECKF(atomic_load(&dtor_errors) == 0, "%d allocation errors in destructors", atomic_load(&dtor_errors));
    CHECKF(b.n_chunks <= a.n_chunks + 2, "100 more threads allocating only in destructors: chunks %zu -> %zu",
           a.n_chunks, b.n_chunks);
}

/* ---- thread exit ---------------------------------------------------------- */

#define N_EXIT_BLOCKS 20000
static blk_t exit_blocks[N_EXIT_BLOCKS];

static void *leaving_thread(void *arg)
{
    th_rng r = { (uint64_t)(uintptr_t)arg };
    for (int i = 0; i < N_EXIT_BLOCKS; i++) {
        size_t n = th_rand_range(&r, 1, i % 100 == 0 ? 100000 : 2000);
        exit_blocks[i] = (blk_t){ alloc_filled(n, (uint64_t)i), n, (uint64_t)i };
    }
    return NULL;
}

/* A thread that exits leaving 20000 blocks live: its spans are abandoned
 * (counted in n_abandoned_spans), the main thread can verify and free the
 * blocks, and then nothing is stranded: after tide_trim() no abandoned span
 * is left (every one was adopted or given back). */
static void thread_exit_abandons(void)
{
    pthread_t th;
    CHECK(pthread_create(&th, NULL, leaving_thread, (void *)(uintptr_t)99) == 0);
    pthread_join(th, NULL);
    if (TH_TIDE) {
        struct tide_stats st;
        tide_stats_get(&st);
        CHECKF(st.n_abandoned_spans > 0, "a thread exited with 20000 blocks live: n_abandoned_spans %zu",
               st.n_abandoned_spans);
    }
    for (int i = 0; i < N_EXIT_BLOCKS; i++) {
        if (!exit_blocks[i].p) { FAILF("thread's malloc #%d failed", i); break; }
        if (!th_verify(exit_blocks[i].p, exit_blocks[i].n, exit_blocks[i].seed)) {
            FAILF("block %d of the exited thread changed", i);
            break;
        }
    }
    for (int i = 0; i < N_EXIT_BLOCKS; i += 2) free(exit_blocks[i].p);
    /* Half freed: allocating the same sizes again reuses the abandoned spans. */
    for (int i = 0; i < N_EXIT_BLOCKS; i += 2)
        exit_blocks[i].p = alloc_filled(exit_blocks[i].n, exit_blocks[i].seed);
    for (int i = 0; i < N_EXIT_BLOCKS; i++) {
        if (!th_verify(exit_blocks[i].p, exit_blocks[i].n, exit_blocks[i].seed)) {
            FAILF("block %d changed after the main thread reused the exited thread's spans", i);
            break;
        }
        free(exit_blocks[i].p);
    }
    if (TH_TIDE) {
        tide_trim();
        struct tide_stats st;
        tide_stats_get(&st);
        CHECKF(st.n_abandoned_spans == 0, "every block freed and tide_trim(): %zu abandoned spans left",
               st.n_abandoned_spans);
    }
}

static void *short_thread(void *arg)
{
    void *p = malloc((size_t)(uintptr_t)arg);
    if (p) memset(p, 1, (size_t)(uintptr_t)arg);
    free(p);
    return NULL;
}

/* 300 short-lived threads, one after another: each gets a heap, and the
 * heaps of exited threads are reused (n_heaps does not grow with them). */
static void heaps_reused(void)
{
    TIDE_ONLY();
    struct tide_stats a, b;
    pthread_t th;
    pthread_create(&th, NULL, short_thread, (void *)(uintptr_t)100);
    pthread_join(th, NULL);
    tide_stats_get(&a);
    for (int i = 0; i < 300; i++) {
        CHECK(pthread_create(&th, NULL, short_thread, (void *)(uintptr_t)(16 + i * 7)) == 0);
        pthread_join(th, NULL);
    }
    tide_stats_get(&b);
    CHECKF(b.n_heaps_total <= a.n_heaps_total + 1, "300 threads one after another: n_heaps_total %zu -> %zu", a.n_heaps_total,
           b.n_heaps_total);
}

/* ---- fork ----------------------------------------------------------------- */

static blk_t fork_blocks[200];

static void fork_child_work(void *arg)
{
    (void)arg;
    /* The parent's blocks are intact and freeable here. */
    for (int i = 0; i < 200; i++) {
        if (!th_verify(fork_blocks[i].p, fork_blocks[i].n, fork_blocks[i].seed)) _exit(20);
        if (i % 2) free(fork_blocks[i].p);
    }
    /* The child allocates normally, in every size range, and with a thread. */
    th_rng r = { 5 };
    static blk_t mine[3000];
    for (int i = 0; i < 3000; i++) {
        size_t n = th_rand_range(&r, 1, i % 300 == 0 ? 10 * MiB : 5000);
        mine[i] = (blk_t){ alloc_filled(n, (uint64_t)i), n, (uint64_t)i };
        if (!mine[i].p) _exit(21);
    }
    pthread_t th;
    if (pthread_create(&th, NULL, short_thread, (void *)(uintptr_t)777) != 0) _exit(22);
    pthread_join(th, NULL);
    for (int i = 0; i < 3000; i++) {
        if (!th_verify(mine[i].p, mine[i].n, mine[i].seed)) _exit(23);
        free(mine[i].p);
    }
    for (int i = 0; i < 200; i += 2) free(fork_blocks[i].p);
    /* And forks again. */
    pid_t pid = fork();
    if (pid == 0) {
        void *p = malloc(12345);
        if (!p) _exit(1);
        free(p);
        _exit(0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(24);
    _exit(0);
}

static void fill_fork_blocks(void)
{
    th_rng r = { 11 };
    for (int i = 0; i < 200; i++) {
        size_t n = th_rand_range(&r, 1, i % 50 == 0 ? 6 * MiB : 3000);
        fork_blocks[i] = (blk_t){ alloc_filled(n, (uint64_t)i), n, (uint64_t)i };
    }
}

/* fork() in a single-threaded process: the child frees the parent's blocks,
 * allocates in every size range, starts a thread and forks again. */
static void fork_single_threaded(void)
{
    fill_fork_blocks();
    char sb[64];
    int st = th_in_child(fork_child_work, NULL, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s (20 parent's block changed, 21 malloc failed, "
           "22 pthread_create, 23 child's block changed, 24 grandchild)", th_status_str(st, sb, sizeof sb));
    for (int i = 0; i < 200; i++) {
        CHECKF(th_verify(fork_blocks[i].p, fork_blocks[i].n, fork_blocks[i].seed), "parent's block %d changed", i);
        free(fork_blocks[i].p);
    }
}

/* fork() while another thread is alive (idle) with blocks of its own: in the
 * child that thread is gone; its blocks can be freed and memory allocated. */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_state;      /* 0 starting, 1 blocks ready, 2 told to exit */

static void *idle_thread(void *arg)
{
    (void)arg;
    fill_fork_blocks();
    pthread_mutex_lock(&idle_mu);
    idle_state = 1;
    pthread_cond_broadcast(&idle_cv);
    while (idle_state != 2) pthread_cond_wait(&idle_cv, &idle_mu);
    pthread_mutex_unlock(&idle_mu);
    return NULL;
}

static void fork_with_idle_thread(void)
{
    pthread_t th;
    CHECK(pthread_create(&th, NULL, idle_thread, NULL) == 0);
    pthread_mutex_lock(&idle_mu);
    while (idle_state != 1) pthread_cond_wait(&idle_cv, &idle_mu);
    pthread_mutex_unlock(&idle_mu);
    char sb[64];
    int st = th_in_child(fork_child_work, NULL, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s (20 parent's block changed, 21 malloc failed, "
           "22 pthread_create, 23 child's block changed, 24 grandchild)", th_status_str(st, sb, sizeof sb));
    pthread_mutex_lock(&idle_mu);
    idle_state = 2;
    pthread_cond_broadcast(&idle_cv);
    pthread_mutex_unlock(&idle_mu);
    pthread_join(th, NULL);
    for (int i = 0; i < 200; i++) {
        CHECKF(th_verify(fork_blocks[i].p, fork_blocks[i].n, fork_blocks[i].seed), "thread's block %d changed", i);
        free(fork_blocks[i].p);
    }
}

int main(void)
{
    RUN(on_tide);
    RUN(malloc_before_main);
    RUN(destructors);
    RUN(destructor_memory_reused);
    RUN(thread_exit_abandons);
    RUN(heaps_reused);
    RUN(fork_single_threaded);
    RUN(fork_with_idle_thread);
    return th_summary();
}
