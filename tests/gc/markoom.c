/* gc/markoom.c — a collection survives running out of memory for its mark
 * stack.  th-timeout: 600
 *
 * The worker (`markoom worker`) keeps K pairs of nodes reachable from a
 * static array (the roots push K ranges at once: more than the mark stack's
 * first mapping holds, so the stack is mapped, then remapped larger, in the
 * collection), each pair's second node reachable only through the first, with
 * finalizers on reachable nodes, short and long disappearing links to them
 * (held in malloc memory, which is not a root), and unreachable nodes with
 * finalizers.  It collects, churns through new nodes filled with a pattern
 * that is not theirs (a reachable node freed and handed out again would be
 * cleared and overwritten), three times, and checks every reachable node
 * intact, no finalizer run for a reachable node, and every link still set.
 *
 * The driver runs the worker in a fresh process with TIDE_CONF=
 * os_fail_at=N for N = 1, 2, ... until a run makes fewer than N requests
 * to the OS (so every request of the workload has failed once, the mark
 * stack's among them), and checks that every run passes, and that some N
 * did hit the mark stack (the collector says so under verbose=1): without
 * that the test would prove nothing.  A worker with no failure injected
 * also checks that the unreachable nodes' finalizers do run (the checks can
 * see a collection). */
#include "gchelper.h"

#include <sys/wait.h>

#define K 100000
#define MAGIC 0x6d61726b6f6f6dL
#define N_FIN 100
#define MAX_N 3000

struct pair_node {
    struct pair_node *left, *right;
    long value, magic;
};

static struct pair_node *keep[K];
static _Atomic long fin_reachable, fin_garbage;

static void on_fin_reachable(void *obj, void *cd)
{
    (void)obj;
    (void)cd;
    fin_reachable++;
}

static void on_fin_garbage(void *obj, void *cd)
{
    (void)obj;
    (void)cd;
    fin_garbage++;
}

/* A node; an injected failure makes one allocation fail at most, and the
 * collector retries after a collection, so a NULL here is an error. */
static struct pair_node *node(long value, long magic)
{
    struct pair_node *n = NULL;
    for (int i = 0; i < 3 && !n; i++)
        n = GC_MALLOC(sizeof *n);
    if (!n) {
        printf("calls=0 error: GC_MALLOC failed three times\n");
        exit(1);
    }
    n->value = value;
    n->magic = magic;
    return n;
}

static __attribute__((noinline)) void make_garbage(void)
{
    for (int j = 0; j < N_FIN; j++)
        GC_REGISTER_FINALIZER(node(-2, 0), on_fin_garbage, NULL, NULL, NULL);
}

static __attribute__((noinline)) void churn(void)
{
    for (long i = 0; i < 3L * K; i++) {
        struct pair_node *n = node(-1, 0x7777777777777777L);
        n->left = n->right = (struct pair_node *)0x5555555555555555L;
    }
}

static int worker(void)
{
    GC_INIT();
    GC_disable();  /* the first collection is the full one below: the mark stack is mapped there */
    for (long i = 0; i < K; i++) {
        struct pair_node *a = node(i, MAGIC);
        a->left = node(K + i, MAGIC);
        keep[i] = a;
    }
    /* links live in malloc memory: not a root, so they keep nothing alive */
    void **short_links = malloc(N_FIN * sizeof(void *)), **long_links = malloc(N_FIN * sizeof(void *));
    if (!short_links || !long_links) {
        printf("calls=0 error: malloc failed\n");
        return 1;
    }
    for (int j = 0; j < N_FIN; j++) {
        struct pair_node *a = keep[j * (K / N_FIN)];
        GC_REGISTER_FINALIZER(a, on_fin_reachable, NULL, NULL, NULL);
        GC_REGISTER_FINALIZER_NO_ORDER(a->left, on_fin_reachable, NULL, NULL, NULL);
        short_links[j] = a->left;
        long_links[j] = a->left;
        GC_GENERAL_REGISTER_DISAPPEARING_LINK(&short_links[j], a->left);
        GC_register_long_link(&long_links[j], a->left);
    }
    make_garbage();
    for (int round = 0; round < 3; round++) {
        gc_full();
        if (round == 0)
            GC_enable();
        churn();
    }
    gc_full();
    char err[200] = "";
    for (long i = 0; i < K && !err[0]; i++) {
        const struct pair_node *a = keep[i], *b = a->left;
        if (a->value != i || a->magic != MAGIC || !b)
            snprintf(err, sizeof err, "node %ld damaged (value %ld, magic %lx, left %p)", i, a->value,
                     (unsigned long)a->magic, (void *)b);
        else if (b->value != K + i || b->magic != MAGIC)
            snprintf(err, sizeof err, "node %ld's child damaged (value %ld, magic %lx)", i, b->value,
                     (unsigned long)b->magic);
    }
    for (int j = 0; j < N_FIN && !err[0]; j++)
        if (short_links[j] != keep[j * (K / N_FIN)]->left || long_links[j] != keep[j * (K / N_FIN)]->left)
            snprintf(err, sizeof err, "link %d to a reachable node cleared", j);
    if (!err[0] && fin_reachable)
        snprintf(err, sizeof err, "%ld finalizers ran for reachable nodes", (long)fin_reachable);
    unsigned long calls = 0;
#if TH_TIDE
    struct tide_stats st;
    tide_stats_get(&st);  /* the OS requests made */
    calls = (unsigned long)st.n_os_calls;
#endif
    printf("calls=%lu fin_garbage=%ld %s%s\n", calls, (long)fin_garbage,
           err[0] ? "error: " : "ok", err);
    return err[0] ? 1 : 0;
}

/* ---- driver ---- */

typedef struct {
    int st;
    long calls, fin_garbage;
    bool hit;          /* the collector reported the mark stack's failure */
    char out[400];
} run_t;

static const char *self_path;

static run_t run_worker(int n)
{
    run_t r = { .calls = -1, .fin_garbage = -1 };
    int op[2], ep[2];
    if (pipe(op) || pipe(ep)) {
        r.st = -1;
        return r;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char conf[64];
        snprintf(conf, sizeof conf, "os_fail_at=%d,verbose=1", n);
        if (n > 0)
            setenv("TIDE_CONF", conf, 1);
        dup2(op[1], 1);
        dup2(ep[1], 2);
        close(op[0]);
        close(op[1]);
        close(ep[0]);
        close(ep[1]);
        execl(self_path, self_path, "worker", (char *)NULL);
        _exit(127);
    }
    close(op[1]);
    close(ep[1]);
    size_t k = 0;
    ssize_t m;
    while (k + 1 < sizeof r.out && (m = read(op[0], r.out + k, sizeof r.out - 1 - k)) > 0)
        k += (size_t)m;
    r.out[k] = 0;
    static char errbuf[1 << 16];
    size_t ek = 0;
    while ((m = read(ep[0], errbuf + ek, sizeof errbuf - 1 - ek)) > 0 && ek + 1 < sizeof errbuf)
        ek += (size_t)m;
    errbuf[ek] = 0;
    close(op[0]);
    close(ep[0]);
    while (waitpid(pid, &r.st, 0) < 0 && errno == EINTR) {
    }
    r.out[strcspn(r.out, "\n")] = 0;
    r.hit = strstr(errbuf, "no memory for the mark stack") != NULL;
    sscanf(r.out, "calls=%ld fin_garbage=%ld", &r.calls, &r.fin_garbage);
    return r;
}

/* With no failure: the checks pass, and the garbage is finalized. */
static void clean_run(void)
{
    TIDE_ONLY();
    run_t r = run_worker(0);
    CHECKF(WIFEXITED(r.st) && WEXITSTATUS(r.st) == 0, "worker: %s", r.out);
    CHECKF(r.fin_garbage >= N_FIN / 2, "only %ld of %d unreachable nodes finalized: %s", r.fin_garbage, N_FIN, r.out);
    CHECKF(!r.hit, "the mark stack failed with no failure injected");
}

/* Every OS request failing once in turn, the mark stack's among them. */
static void each_request_fails(void)
{
    TIDE_ONLY();
    int n, hits = 0;
    for (n = 1; n <= MAX_N; n++) {
        run_t r = run_worker(n);
        char sb[64];
        if (!(WIFEXITED(r.st) && WEXITSTATUS(r.st) == 0)) {
            FAILF("os_fail_at=%d%s: worker %s: %s", n, r.hit ? " (the mark stack's)" : "",
                  th_status_str(r.st, sb, sizeof sb), r.out);
            break;
        }
        hits += r.hit;
        if (r.calls < n)
            break;  /* the Nth request never came: every one was tried */
    }
    CHECKF(n <= MAX_N, "the workload still made %d requests to the OS: a loop?", MAX_N);
    printf("# os_fail_at: N = 1..%d tried, %d hit the mark stack\n", n, hits);
    CHECKF(hits > 0, "no N made the mark stack's mapping fail: the test proves nothing");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "worker") == 0)
        return worker();
    self_path = "/proc/self/exe";
    static char path[4096];
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k > 0) {
        path[k] = 0;
        self_path = path;
    }
    RUN(clean_run);
    RUN(each_request_fails);
    return th_summary();
}
