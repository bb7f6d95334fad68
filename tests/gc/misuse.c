/* gc/misuse.c — misuse of the GC heap gets tide's one-line report and an
 * abort, in a child: GC_FREE of a malloc block, of a stack address, of an
 * interior pointer, of a block already freed (small and big); free() and
 * realloc() of a GC block; GC_REALLOC of a malloc block; a finalizer on a malloc
 * block, on the caller's or another thread's stack, on an interior pointer
 * (small and big block); GC_add_roots with an inverted range.  Fine uses do not
 * abort. */
#include "gchelper.h"

#include <signal.h>

static void *volatile sink;
static void *roots_area[2];
static int pub_fd = -1;      /* in the child: where pub() writes */

/* Tells the parent which address the next call misuses. */
#define pub(p) pub_addr((uintptr_t)(p))
static void pub_addr(uintptr_t p)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%p", (void *)p);
    if (write(pub_fd, buf, (size_t)n) != n)
        _exit(98);
}

static void gc_free_malloc(void) { void *p = malloc(32); pub(p); GC_FREE(p); }
static void gc_free_stack(void) { int x; pub((void *)&x); GC_FREE(&x); }
static void gc_free_interior(void) { char *p = GC_MALLOC(64); pub(p + 8); GC_FREE(p + 8); }
static void gc_free_twice(void) { void *p = GC_MALLOC(64); GC_FREE(p); pub(p); GC_FREE(p); }
static void gc_free_twice_atomic(void) { void *p = GC_MALLOC_ATOMIC(200); GC_FREE(p); pub(p); GC_FREE(p); }
static void gc_free_big_twice(void) { void *p = GC_MALLOC(300000); GC_FREE(p); pub(p); GC_FREE(p); }
static void free_gc_block(void) { void *p = GC_MALLOC(64); pub(p); free(p); }
static void free_gc_big(void) { void *p = GC_MALLOC(1 << 20); pub(p); free(p); }
static void realloc_gc_block(void) { void *p = GC_MALLOC(64); pub(p); sink = realloc(p, 100); }
static void gc_realloc_malloc(void) { void *p = malloc(64); pub(p); sink = GC_REALLOC(p, 100); }
static void fin_malloc(void) { void *p = malloc(32); pub(p); GC_REGISTER_FINALIZER(p, gc_count_fin, NULL, NULL, NULL); }
static void fin_stack(void) { int x; pub((void *)&x); GC_REGISTER_FINALIZER_NO_ORDER(&x, gc_count_fin, NULL, NULL, NULL); }
static void fin_interior(void) { char *p = GC_MALLOC(64); pub(p + 24); GC_REGISTER_FINALIZER(p + 24, gc_count_fin, NULL, NULL, NULL); }
static void fin_big_interior(void)
{
    char *p = GC_MALLOC(300000);
    pub(p + 4096);
    GC_REGISTER_FINALIZER_IGNORE_SELF(p + 4096, gc_count_fin, NULL, NULL, NULL);
}
/* another thread's stack: the registering thread's own bounds do not hold it */
static pthread_mutex_t fin_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fin_cv = PTHREAD_COND_INITIALIZER;
static int *fin_other_addr;
static void *fin_stack_owner(void *arg)
{
    (void)arg;
    int x = 0;
    GC_MALLOC(16);  /* registers this thread */
    pthread_mutex_lock(&fin_mu);
    fin_other_addr = &x;
    pthread_cond_broadcast(&fin_cv);
    for (;;)
        pthread_cond_wait(&fin_cv, &fin_mu);
    return NULL;
}
static void fin_other_stack(void)
{
    pthread_t th;
    pthread_create(&th, NULL, fin_stack_owner, NULL);
    pthread_mutex_lock(&fin_mu);
    while (!fin_other_addr)
        pthread_cond_wait(&fin_cv, &fin_mu);
    int *a = fin_other_addr;
    pthread_mutex_unlock(&fin_mu);
    pub(a);
    GC_REGISTER_FINALIZER_UNREACHABLE(a, gc_count_fin, NULL, NULL, NULL);
}
static void add_roots_inverted(void) { static char area[64]; pub((void *)area); GC_add_roots(area, area - 16); }

/* other thread: the block's span is held by the main thread */
static void *free_twice_worker(void *p) { GC_FREE(p); return NULL; }
static void gc_free_twice_other_thread(void)
{
    void *p = GC_MALLOC(64);
    GC_FREE(p);
    pub(p);
    pthread_t th;
    pthread_create(&th, NULL, free_twice_worker, p);
    pthread_join(th, NULL);
}

/* Runs fn in a child; returns its signal (0: it exited) and its stderr. */
static int in_child(void (*fn)(void), char *err, size_t n, char *addr, size_t addr_n)
{
    int pe[2], pa[2];
    if (pipe(pe) || pipe(pa))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pe[1], 2);
        pub_fd = pa[1];
        GC_INIT();
        fn();
        _exit(0);
    }
    close(pe[1]);
    close(pa[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(pe[0], err + got, n - 1 - got)) > 0)
        got += (size_t)r;
    err[got] = 0;
    close(pe[0]);
    got = 0;
    while (got + 1 < addr_n && (r = read(pa[0], addr + got, addr_n - 1 - got)) > 0)
        got += (size_t)r;
    addr[got] = 0;
    close(pa[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

typedef struct {
    const char *name;
    void (*fn)(void);
    const char *op;        /* the operation the message names */
    const char *what;      /* words it must contain */
    bool tide_only;        /* libgc does not catch it */
} mcase;

static const mcase cases[] = {
    { "GC_FREE of a malloc block", gc_free_malloc, "GC_FREE", "not a GC block", true },
    { "GC_FREE of a stack address", gc_free_stack, "GC_FREE", "not allocated by the GC heap", true },
    { "GC_FREE of an interior pointer", gc_free_interior, "GC_FREE", "interior pointer", true },
    { "GC_FREE twice", gc_free_twice, "GC_FREE", "already freed", true },
    { "GC_FREE twice, atomic", gc_free_twice_atomic, "GC_FREE", "already freed", true },
    { "GC_FREE twice, big block", gc_free_big_twice, "GC_FREE", "already freed", true },
    { "GC_FREE twice, from another thread", gc_free_twice_other_thread, "GC_FREE", "already freed", true },
    { "free of a GC block", free_gc_block, "free", "GC heap", true },
    { "free of a big GC block", free_gc_big, "free", "GC heap", true },
    { "realloc of a GC block", realloc_gc_block, "realloc", "GC heap", true },
    { "GC_REALLOC of a malloc block", gc_realloc_malloc, "GC_REALLOC", "not a GC block", true },
    { "finalizer on a malloc block", fin_malloc, "GC_register_finalizer", "a malloc block", true },
    { "finalizer on a stack address", fin_stack, "GC_register_finalizer_no_order", "stack", true },
    { "finalizer on another thread's stack", fin_other_stack, "GC_register_finalizer_unreachable", "stack", true },
    { "finalizer on an interior pointer", fin_interior, "GC_register_finalizer", "interior pointer", true },
    { "finalizer on an interior pointer, big block", fin_big_interior, "GC_register_finalizer_ignore_self",
      "interior pointer", true },
    { "GC_add_roots with an inverted range", add_roots_inverted, "GC_add_roots", "inverted range", true },
};

static void test_misuse_reported(void)
{
    if (!TH_TIDE) {
        th_skip("tide's reports");
        return;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[2048], addr[64];
        int sig = in_child(cases[i].fn, err, sizeof err, addr, sizeof addr);
        CHECKF(sig == SIGABRT, "%s: child ended with signal %d, stderr: %s", cases[i].name, sig, err);
        char head[128];
        snprintf(head, sizeof head, "tide: %s(%s)", cases[i].op, addr);
        CHECKF(strstr(err, head) != NULL, "%s: no '%s' in: %s", cases[i].name, head, err);
        CHECKF(strstr(err, cases[i].what) != NULL, "%s: no '%s' in: %s", cases[i].name, cases[i].what, err);
        int lines = 0;
        for (const char *c = err; *c; c++)
            lines += *c == '\n';
        CHECKF(lines == 1, "%s: %d lines: %s", cases[i].name, lines, err);
    }
}

static void fine_uses(void)
{
    void *p = GC_MALLOC(64);
    GC_FREE(p);
    GC_FREE(NULL);
    p = GC_MALLOC(100000);
    GC_FREE(p);
    p = GC_MALLOC_UNCOLLECTABLE(10);
    GC_FREE(p);
    p = GC_REALLOC(NULL, 10);
    p = GC_REALLOC(p, 1000);
    GC_REGISTER_FINALIZER(p, NULL, NULL, NULL, NULL);
    static int not_gc;  /* libgc ignores a finalizer on memory it does not collect, and so does tide */
    GC_REGISTER_FINALIZER(&not_gc, gc_count_fin, NULL, NULL, NULL);
    char *q = GC_MALLOC(64);  /* a tagged pointer stands for its block (ECL's conses are the block + 1) */
    GC_REGISTER_FINALIZER(q + 1, gc_count_fin, NULL, NULL, NULL);
    q = GC_MALLOC(300000);
    GC_REGISTER_FINALIZER_NO_ORDER(q + 15, gc_count_fin, NULL, NULL, NULL);
    GC_add_roots(roots_area, roots_area + 2);
    GC_add_roots(roots_area, roots_area);
    void *m = malloc(10);
    free(m);
}

static void test_fine_uses_do_not_abort(void)
{
    char err[2048], addr[64];
    int sig = in_child(fine_uses, err, sizeof err, addr, sizeof addr);
    CHECKF(sig == 0 && err[0] == 0, "signal %d, stderr: %s", sig, err);
}

int main(void)
{
    RUN(test_misuse_reported);
    RUN(test_fine_uses_do_not_abort);
    return th_summary();
}
