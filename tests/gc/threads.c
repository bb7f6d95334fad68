/* gc/threads.c — the GC heap with threads: threads that build and drop
 * trees while others collect (each checks a long-lived tree on its stack
 * and one held by a __thread variable), a pointer held only in a
 * callee-saved register of a stopped thread, threads created and exiting
 * during collections, GC_do_blocking, and a forked child that allocates
 * and collects.
 * th-timeout: 240 */
#define GC_THREADS
#include "gchelper.h"

/* Under TSan every scanned word is an instrumented load: smaller runs. */
#if defined(__SANITIZE_THREAD__)
#define SCALE 10
#else
#define SCALE 1
#endif

static __thread struct gc_node *tls_tree;
static _Atomic int n_bad;

static void *tree_worker(void *arg)
{
    long id = (long)arg;
    long c = id * 100000000L;
    struct gc_node *keep = gc_make_tree(12, &c);
    c = id * 100000000L + 50000000L;
    tls_tree = gc_make_tree(10, &c);
    for (int i = 0; i < 300 / SCALE; i++) {
        long g = 0;
        gc_make_tree(9, &g);
        if (i % (100 / SCALE) == 0 && id == 0)
            GC_gcollect();
    }
    c = id * 100000000L;
    if (gc_check_tree(keep, 12, &c) < 0)
        n_bad++;
    c = id * 100000000L + 50000000L;
    if (gc_check_tree(tls_tree, 10, &c) < 0)
        n_bad += 100;
    return NULL;
}

static void test_threads_trees(void)
{
    size_t before = GC_get_gc_no();
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        CHECK(pthread_create(&th[i], NULL, tree_worker, (void *)i) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECKF(n_bad == 0, "%d trees damaged (stack: units, __thread: hundreds)", n_bad);
    CHECKF(GC_get_gc_no() >= before + 3, "only %zu collections", GC_get_gc_no() - before);
}

#if defined(__x86_64__)
static _Atomic int reg_go, reg_ready;
static void *reg_obj_check;

static __attribute__((noinline)) uintptr_t prepare(void)
{
    char *p = GC_MALLOC(64);
    strcpy(p, "held in r12");
    GC_REGISTER_FINALIZER(p, gc_count_fin, NULL, NULL, NULL);
    return (uintptr_t)p ^ 0x1;  /* not a pointer until it is in r12 */
}

static void *reg_holder(void *arg)
{
    (void)arg;
    uintptr_t x = prepare();
    gc_clear_stack();
    reg_ready = 1;
    __asm__ volatile("xor $1, %0\n\t"
                     "mov %0, %%r12\n\t"
                     "xor %0, %0\n"
                     "1:\tpause\n\t"
                     "cmpl $0, %1\n\t"
                     "je 1b\n\t"
                     "mov %%r12, %0\n\t"
                     "xor %%r12, %%r12"
                     : "+&r"(x)
                     : "m"(reg_go)
                     : "r12", "memory");
    reg_obj_check = (void *)x;
    return NULL;
}

static void test_register_root(void)
{
#if defined(__SANITIZE_THREAD__)
    /* TSan delivers a signal only when its thread next enters the runtime,
     * which the spinning holder never does */
    th_skip("the stop signal never reaches a spinning thread under TSan");
    return;
#endif
    gc_n_finalized = 0;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, reg_holder, NULL) == 0);
    while (!reg_ready)
        sched_yield();
    for (int i = 0; i < 5; i++) {
        long c = 0;
        for (int k = 0; k < 20; k++)
            gc_make_tree(8, &c);
        gc_full();
    }
    reg_go = 1;
    pthread_join(th, NULL);
    CHECKF(gc_n_finalized == 0, "the object held in a register was finalized");
    CHECK(reg_obj_check && strcmp(reg_obj_check, "held in r12") == 0);
}
#endif

static void *short_worker(void *arg)
{
    long c = (long)arg;
    struct gc_node *t = gc_make_tree(6, &c);
    for (int i = 0; i < 5; i++) {
        long g = 0;
        gc_make_tree(6, &g);
    }
    c = (long)arg;
    if (gc_check_tree(t, 6, &c) < 0)
        n_bad++;
    return NULL;
}

static void *collector(void *arg)
{
    _Atomic int *stop = arg;
    while (!*stop)
        GC_gcollect();
    return NULL;
}

static void test_thread_churn(void)
{
    n_bad = 0;
    _Atomic int stop = 0;
    pthread_t col;
    CHECK(pthread_create(&col, NULL, collector, &stop) == 0);
    for (int round = 0; round < 100 / SCALE; round++) {
        pthread_t th[3];
        for (long i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, short_worker, (void *)(round * 1000 + i * 100));
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
    }
    stop = 1;
    pthread_join(col, NULL);
    CHECKF(n_bad == 0, "%d trees of short-lived threads damaged", n_bad);
}

static void *blocking_fn(void *arg)
{
    usleep(20000);
    return arg;
}

static void *blocker(void *arg)
{
    long c = 5;
    struct gc_node *t = gc_make_tree(8, &c);
    for (int i = 0; i < 20; i++)
        GC_do_blocking(blocking_fn, NULL);
    c = 5;
    if (gc_check_tree(t, 8, &c) < 0)
        n_bad++;
    return arg;
}

static void test_do_blocking(void)
{
    n_bad = 0;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, blocker, NULL) == 0);
    for (int i = 0; i < 40 / SCALE; i++) {
        long c = 0;
        gc_make_tree(7, &c);
        GC_gcollect();
        usleep(5000);
    }
    pthread_join(th, NULL);
    CHECKF(n_bad == 0, "tree of a thread in GC_do_blocking damaged");
}

static struct gc_node *fork_keep;
static void test_fork(void)
{
    long c = 42;
    fork_keep = gc_make_tree(10, &c);
    _Atomic int stop = 0;
    pthread_t col;
    pthread_create(&col, NULL, collector, &stop);  /* a thread that is gone in the child */
    usleep(10000);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 200 / SCALE; i++) {
            long g = 0;
            gc_make_tree(8, &g);
        }
        GC_gcollect();
        GC_gcollect();
        c = 42;
        _exit(gc_check_tree(fork_keep, 10, &c) == 0 ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    stop = 1;
    pthread_join(col, NULL);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
    c = 42;
    CHECK(gc_check_tree(fork_keep, 10, &c) == 0);
}

int main(void)
{
    GC_INIT();
    RUN(test_threads_trees);
#if defined(__x86_64__)
    RUN(test_register_root);
#endif
    RUN(test_thread_churn);
    RUN(test_do_blocking);
    RUN(test_fork);
    return th_summary();
}
