/* stress/prof_threads.c — the heap profiler under threads.
 * th-conf: prof=1,prof_sample=8192,prof_signal=SIGUSR2,prof_file=/dev/null
 *
 * sample_under_threads: four threads allocate blocks of mixed sizes (small,
 *   large and huge, so samples of every kind are taken) and hand half of
 *   them to each other through a shared slot array, so sampled blocks are
 *   freed by other threads too; meanwhile the main thread sends SIGUSR2,
 *   whose handler writes a profile (to /dev/null) while the samplers run.
 *   With one sample per 8 KiB there are tens of thousands of samples.
 *   Afterwards every block is freed, and the in-use totals of a profile
 *   must be exactly what they were before: every sampled block's free took
 *   back what its allocation added (a sample whose free is missed, or
 *   counted twice, moves the total).  The allocated totals must have grown
 *   by about what the threads allocated (within 10 %: about 10^4 samples
 *   give a standard deviation near 1 %). */
#include "stress.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#define N_THREADS 4
#define N_SLOTS 256

static _Atomic(void *) slots[N_SLOTS];
static atomic_long bytes_allocated;
static long n_ops;                   /* per thread (st_ops, read once in main) */

static void *worker(void *arg)
{
    th_rng r = { (uint64_t)(uintptr_t)arg * 7919 + 1 };
    long n = n_ops;
    long mine = 0;
    for (long i = 0; i < n && !st_failed(); i++) {
        size_t sz = st_rand_size(&r);
        if (th_rand(&r) % 500 == 0)
            sz = 5 * MiB;  /* a huge block now and then */
        void *p = malloc(sz);
        if (!p) {
            st_report("malloc(%zu) failed", sz);
            break;
        }
        memset(p, 0x5a, sz < 64 ? sz : 64);
        mine += (long)sz;
        if (th_rand(&r) & 1) {
            free(p);
        } else {
            void *old = atomic_exchange(&slots[th_rand(&r) % N_SLOTS], p);
            free(old);  /* often another thread's block */
        }
    }
    atomic_fetch_add(&bytes_allocated, mine);
    return NULL;
}

/* Reads the totals line of a profile written to path: in-use and
 * allocated bytes.  No stdio: its buffers would be allocations too. */
static bool read_totals(const char *path, unsigned long *inuse, unsigned long *alloc)
{
    static char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return false;
    buf[r] = 0;
    unsigned long n1, n2;
    return sscanf(buf, "heap profile: %lu: %lu [%lu: %lu] @ heapprofile", &n1, inuse, &n2, alloc) == 4;
}

static void sample_under_threads(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tide-prof-threads.%d.heap", (int)getpid());
    unsigned long in0, al0, in1, al1;
    CHECK(tide_prof_dump(path) == 0);
    CHECK(read_totals(path, &in0, &al0));
    pthread_t t[N_THREADS];
    n_ops = st_ops(60000);
    for (int i = 0; i < N_THREADS; i++)
        st_spawn(&t[i], worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 40; i++) {  /* profiles from a signal, while they run */
        kill(getpid(), SIGUSR2);
        usleep(5000);
    }
    for (int i = 0; i < N_THREADS; i++)
        st_join(t[i]);
    for (int i = 0; i < N_SLOTS; i++)
        free(atomic_exchange(&slots[i], NULL));
    st_check_errors();
    CHECK(tide_prof_dump(path) == 0);
    CHECK(read_totals(path, &in1, &al1));
    unlink(path);
    CHECKF(in1 == in0, "in-use bytes %lu before the threads, %lu after they freed everything", in0, in1);
    long truth = atomic_load(&bytes_allocated);
    double est = (double)(al1 - al0);
    CHECKF(est > 0.9 * (double)truth && est < 1.1 * (double)truth,
           "allocated bytes estimated %.0f, true %ld", est, truth);
}

int main(void)
{
    RUN(sample_under_threads);
    return th_summary();
}
