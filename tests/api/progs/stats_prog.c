/* api/progs/stats_prog.c — the program tests/api/stats.sh runs with
 * TIDE_CONF's stats options (not a test itself: the runner compiles only
 * tests/<group>/*.c).
 *
 *   stats_prog pattern                  allocates the pattern below, prints
 *                                       "pid N" and exits normally (the
 *                                       blocks stay live: the exit report
 *                                       shows them)
 *   stats_prog print-text|print-json    the pattern, then tide_stats_print
 *                                       to stdout
 *   stats_prog malloc-info              the pattern, then malloc_info(0, stdout)
 *   stats_prog churn READY STOP         four threads allocate and free
 *                                       (small, large, huge; remote frees)
 *                                       until the file STOP exists; READY is
 *                                       created once they run; prints the
 *                                       number of operations
 *
 * The pattern: 1000 x malloc(100) (112-byte blocks), 3 x malloc(100000)
 * (large), 1 x malloc(5 MiB) (huge) in the main thread, and 200 x
 * malloc(1000) by a thread that exits leaving them live. */
#include "testhelper.h"

#include <fcntl.h>
#include <stdatomic.h>

static void *volatile blocks[1000], *volatile big[4], *volatile left[200];

static void *leaving_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) left[i] = malloc(1000);
    return NULL;
}

static void pattern(void)
{
    for (int i = 0; i < 1000; i++) blocks[i] = malloc(100);
    for (int i = 0; i < 3; i++) big[i] = malloc(100000);
    big[3] = malloc(5 * MiB);
    pthread_t t;
    pthread_create(&t, NULL, leaving_thread, NULL);
    pthread_join(t, NULL);
}

/* ---- churn ---------------------------------------------------------------- */

#define SLOTS 2048
static _Atomic(void *) slots[SLOTS];
static atomic_int stop;
static atomic_long n_ops;

static void *churn_thread(void *arg)
{
    th_rng r = { 0x9e3779b9u + (uint64_t)(uintptr_t)arg * 1000003u };
    long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 256; k++) {
            uint64_t x = th_rand(&r) % 10000;
            size_t n = x < 9900 ? 1 + x % 2000 : x < 9995 ? 70000 + x * 10 : 5 * MiB;
            void *p = malloc(n);
            if (!p) { fprintf(stderr, "malloc(%zu) failed\n", n); abort(); }
            memset(p, (int)k, n < 64 ? n : 64);
            free(atomic_exchange(&slots[th_rand(&r) % SLOTS], p));   /* often another thread's */
            ops++;
        }
    }
    atomic_fetch_add(&n_ops, ops);
    return NULL;
}

static int churn(const char *ready, const char *stop_file)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn_thread, (void *)(uintptr_t)i);
    int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(ready); return 2; }
    close(fd);
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    while (access(stop_file, F_OK) != 0)
        nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < SLOTS; i++) free(atomic_exchange(&slots[i], NULL));
    printf("ops %ld\n", atomic_load(&n_ops));
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "pattern") == 0) {
        pattern();
        printf("pid %d\n", (int)getpid());
        return 0;
    }
    if (strcmp(mode, "print-text") == 0 || strcmp(mode, "print-json") == 0) {
        pattern();
        fflush(stdout);
        return tide_stats_print(1, mode[6] == 'j') == 0 ? 0 : 1;
    }
    if (strcmp(mode, "malloc-info") == 0) {
        pattern();
        return malloc_info(0, stdout) == 0 ? 0 : 1;
    }
    if (strcmp(mode, "churn") == 0 && argc == 4)
        return churn(argv[2], argv[3]);
    fprintf(stderr, "usage: stats_prog pattern|print-text|print-json|malloc-info|churn READY STOP\n");
    return 2;
}
