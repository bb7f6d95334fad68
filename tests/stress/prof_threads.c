/* stress/prof_threads.c — the heap profiler under threads.
 * th-conf: prof=1,prof_sample=8192,prof_signal=SIGUSR2,prof_file=/dev/null,decay_ms=-1
 * (decay_ms=-1: no scavenger thread, whose start in the middle of a test
 * would allocate its DTV there; see warm_thread_cache)
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
 *   give a standard deviation near 1 %).
 * every_path_under_threads: the same checks with every entry point, realloc
 *   in place and across ranges, threads whose first blocks are large, and
 *   late key destructors that allocate with the heap gone (below). */
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

static void *idle_thread(void *arg)
{
    return arg;
}

/* Creates and joins N_THREADS threads that do nothing, before the first
 * profile: glibc allocates each new thread's DTV (with calloc, sampled like
 * any block) and keeps it with the thread's stack in its cache after the
 * join, so threads made later, which reuse the cached stacks, allocate
 * nothing of glibc's between the two profiles. */
static void warm_thread_cache(void)
{
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        st_spawn(&t[i], idle_thread, NULL);
    for (int i = 0; i < N_THREADS; i++)
        st_join(t[i]);
}

/* The profile before the threads run: the thread cache warmed, a dump to
 * path (a name of its own for this process), and its totals. */
static void totals_before(char path[64], unsigned long *in0, unsigned long *al0)
{
    snprintf(path, 64, "/tmp/tide-prof-threads.%d.heap", (int)getpid());
    warm_thread_cache();
    CHECK(tide_prof_dump(path) == 0);
    CHECK(read_totals(path, in0, al0));
}

/* After the threads are joined: frees the blocks they left in the slots;
 * then the profile's in-use bytes must be back to in0 exactly, and its
 * allocated bytes since al0 within 10 % of bytes_allocated. */
static void check_totals_after(const char *path, unsigned long in0, unsigned long al0)
{
    unsigned long in1, al1;
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

static void sample_under_threads(void)
{
    char path[64];
    unsigned long in0, al0;
    totals_before(path, &in0, &al0);
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
    check_totals_after(path, in0, al0);
}

/* ---- every entry point and thread state ---- */

/* One allocation of about sz bytes by a random entry point, or a realloc
 * of *held (in place or across a size range); what was allocated goes into
 * *held (the old block is freed or realloc'ed) and its size into *mine. */
static void any_alloc(th_rng *r, void **held, long *mine)
{
    size_t sz = st_rand_size(r);
    if (th_rand(r) % 200 == 0)
        sz = 5 * MiB;
    void *p = NULL;
    switch (th_rand(r) % 5) {
    case 0: p = malloc(sz); break;
    case 1: p = calloc(1, sz); break;
    case 2: if (posix_memalign(&p, 64, sz) != 0) p = NULL; break;
    case 3: p = aligned_alloc(4096, sz); break;
    default:
        /* realloc: often the same range (in place), sometimes across */
        if (*held && th_rand(r) % 2)
            sz = malloc_usable_size(*held) - th_rand(r) % 16;
        p = realloc(*held, sz);
        if (p) {
            *held = p;
            *mine += (long)sz;
            return;
        }
        break;
    }
    if (!p) {
        st_report("allocation of %zu failed", sz);
        return;
    }
    memset(p, 0x5a, sz < 64 ? sz : 64);
    *mine += (long)sz;
    void *old = atomic_exchange(&slots[th_rand(r) % N_SLOTS], *held);
    free(old);  /* often another thread's block */
    *held = p;
}

static void any_work(uint64_t seed, long n)
{
    th_rng r = { seed };
    void *held = NULL;
    long mine = 0;
    for (long i = 0; i < n && !st_failed(); i++)
        any_alloc(&r, &held, &mine);
    free(atomic_exchange(&slots[th_rand(&r) % N_SLOTS], held));
    atomic_fetch_add(&bytes_allocated, mine);
}

static pthread_key_t late_key;

/* After tide's own key destructor: the thread's heap is gone. */
static void late_dtor(void *arg)
{
    any_work((uint64_t)(uintptr_t)arg * 104729, n_ops / 4);
}

/* A thread that first allocates only large blocks (it has no heap yet),
 * then anything, then again from its late key destructor. */
static void *any_worker(void *arg)
{
    long mine = 0;
    void *big[8];
    for (int i = 0; i < 8; i++) {
        big[i] = malloc(100 * KiB + (size_t)i * 4096);
        if (!big[i]) { st_report("malloc(large) failed"); return NULL; }
        mine += (long)(100 * KiB + (size_t)i * 4096);
    }
    for (int i = 0; i < 8; i++)
        free(big[i]);
    atomic_fetch_add(&bytes_allocated, mine);
    any_work((uint64_t)(uintptr_t)arg * 7919 + 3, n_ops);
    pthread_setspecific(late_key, arg);
    return NULL;
}

/* every_path_under_threads: as above, with every entry point the TSan
 * redirect serves (malloc, calloc, posix_memalign, aligned_alloc, realloc
 * in place and across ranges), threads that start with large blocks only,
 * and key destructors that allocate after the thread's heap is gone, all
 * at once (the backup heap's sampler under contention).  In-use totals come
 * back exactly; allocated bytes (a realloc counts its new size) within
 * 10 %. */
static void every_path_under_threads(void)
{
    char path[64];
    unsigned long in0, al0;
    CHECK(pthread_key_create(&late_key, late_dtor) == 0);
    totals_before(path, &in0, &al0);
    atomic_store(&bytes_allocated, 0);
    n_ops = st_ops(40000);
    for (int round = 0; round < 3 && !st_failed(); round++) {
        pthread_t t[N_THREADS];
        for (int i = 0; i < N_THREADS; i++)
            st_spawn(&t[i], any_worker, (void *)(uintptr_t)(round * N_THREADS + i + 1));
        for (int i = 0; i < 10; i++) {
            kill(getpid(), SIGUSR2);
            usleep(5000);
        }
        for (int i = 0; i < N_THREADS; i++)
            st_join(t[i]);
    }
    check_totals_after(path, in0, al0);
    pthread_key_delete(late_key);
}

int main(void)
{
    RUN(sample_under_threads);
    RUN(every_path_under_threads);
    return th_summary();
}
