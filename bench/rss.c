/* rss.c — how much memory goes back to the OS once a burst of load is over.
 *
 * Stresses: the return of freed memory to the operating system while the
 * program stays alive but idle.  Several threads allocate, in a mix of sizes
 * (bench_mix_next: by bytes 40 % small blocks of 16 B..4 KiB, 20 % medium up
 * to 64 KiB, 25 % large up to 4 MiB, 15 % huge up to 16 MiB), until the
 * process holds about `mb` MiB; every page of every block is written.  Then
 * all of it is freed, half by the thread that allocated it and half by the
 * next thread (a cross-thread free of every other block, so every span has
 * remote frees in it), and every thread then waits on a condition variable:
 * no thread calls malloc or free again until the end.  An allocator that
 * gives memory back only from within malloc or free (on its own thread's
 * next call) keeps it here; one that returns it at free time, or from a
 * thread of its own after a delay, shows it in the samples.
 *
 * The main thread reads the resident set size (bench_rss_kb: /proc/self/
 * statm, read without allocating) at the baseline (threads started, each
 * has made one malloc and free so that its heap exists), at the peak (every
 * block allocated and touched) and at 0, 0.1, 0.5, 1 and 3 s after the last
 * free returned.  What counts is the fraction of the burst still resident:
 *     ratio = (RSS - baseline) / (peak - baseline)
 * 1 means nothing went back, 0 everything; lower is better.  The pointer
 * arrays are mapped with mmap and faulted in before the baseline, so the
 * benchmark's own bookkeeping is the same for every allocator.
 *
 * Arguments: threads=<4>  mb=<peak to reach, MiB, 300>  seed=<1>
 *            last_ms=<3000: the samples after this are skipped (bench/run.sh
 *            QUICK=1 stops at 1000)>
 * Prints:    one line per sample,
 *              RESULT name=rss-recovery metric=rss_kb value=<KiB> at=<baseline|peak|Nms> [ratio=<r>]
 *            then the figure bench/run.sh keeps, the ratio at 1 s (the last
 *            sample if last_ms < 1000), with every ratio on the same line:
 *              RESULT name=rss-recovery metric=ratio value=<r at 1 s> at_ms=1000
 *                     baseline_kb=.. peak_kb=.. r0=.. r100=.. r500=.. r1000=.. r3000=..
 */
#include "bench.h"

#include <pthread.h>
#include <sys/mman.h>

static const long sample_ms[] = {0, 100, 500, 1000, 3000}; /* after the last free */
#define N_SAMPLES (sizeof sample_ms / sizeof sample_ms[0])

typedef struct worker {
    pthread_t tid;          /* the thread */
    int index;              /* 0 .. threads-1 */
    uint64_t seed;          /* of its size sequence */
    uint64_t budget;        /* bytes it allocates, at least */
    unsigned char **blocks; /* its blocks, in allocation order (mmap'ed) */
    long n_blocks;          /* entries in blocks */
    uint64_t bytes;         /* bytes it allocated */
    uint64_t checksum;      /* first bytes read back before the frees */
} worker;

static worker *workers;
static int n_workers;
static pthread_barrier_t ready;  /* workers + main: heaps warmed up, baseline next */
static pthread_barrier_t go;     /* workers + main: baseline taken, burst starts */
static pthread_barrier_t peaked; /* workers + main: every block allocated and touched */
static pthread_barrier_t sampled;/* workers + main: peak sampled, frees start */
static pthread_barrier_t swapped;/* workers: every thread has freed its own half */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int n_freed;              /* workers done freeing, under lock */
static int quit;                 /* main is done sampling, under lock */

static void *run(void *arg)
{
    worker *w = arg;
    void *warm = bench_check(malloc(64), "malloc"); /* the thread's heap exists before the baseline */
    bench_escape(warm);
    free(warm);
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&go);

    bench_mix m;
    bench_mix_init(&m, w->seed);
    for (long i = 0; i < w->n_blocks; i++) {
        size_t size = bench_mix_next(&m);
        unsigned char *p = bench_check(malloc(size), "malloc");
        bench_touch(p, size);
        w->blocks[i] = p;
    }
    w->bytes = m.total;
    pthread_barrier_wait(&peaked);
    pthread_barrier_wait(&sampled);

    /* its own even blocks, then the odd blocks of the next thread: every
     * other block is freed by a thread that did not allocate it */
    bench_free_every_other(w->blocks, w->n_blocks, 0, &w->checksum);
    pthread_barrier_wait(&swapped);
    worker *next = &workers[(w->index + 1) % n_workers];
    bench_free_every_other(next->blocks, next->n_blocks, 1, &w->checksum);

    pthread_mutex_lock(&lock);
    n_freed++;
    pthread_cond_broadcast(&cond);
    while (!quit) /* idle: alive, holding whatever the allocator caches for it */
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    n_workers = (int)bench_arg(argc, argv, "threads", 4);
    long mb = bench_arg(argc, argv, "mb", 300);
    uint64_t seed = (uint64_t)bench_arg(argc, argv, "seed", 1);
    long last_ms = bench_arg(argc, argv, "last_ms", 3000);
    if (n_workers < 1 || n_workers > 256 || mb < 1 || last_ms < 0) {
        fprintf(stderr, "rss: bad arguments\n");
        return 2;
    }

    /* Bookkeeping outside the allocator, faulted in now: the same for all. */
    static worker worker_array[256];
    workers = worker_array;
    for (int t = 0; t < n_workers; t++) {
        worker *w = &workers[t];
        w->index = t;
        w->seed = seed * 1000 + (uint64_t)t;
        w->budget = ((uint64_t)mb << 20) / (uint64_t)n_workers;
        w->n_blocks = bench_mix_count(w->seed, w->budget);
        w->blocks = mmap(NULL, (size_t)w->n_blocks * sizeof *w->blocks, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (w->blocks == MAP_FAILED) {
            fprintf(stderr, "rss: mmap of the block arrays failed\n");
            return 3;
        }
    }
    pthread_barrier_init(&ready, NULL, (unsigned)n_workers + 1);
    pthread_barrier_init(&go, NULL, (unsigned)n_workers + 1);
    pthread_barrier_init(&peaked, NULL, (unsigned)n_workers + 1);
    pthread_barrier_init(&sampled, NULL, (unsigned)n_workers + 1);
    pthread_barrier_init(&swapped, NULL, (unsigned)n_workers);
    for (int t = 0; t < n_workers; t++) {
        bench_thread(&workers[t].tid, NULL, run, &workers[t]);
    }
    /* From here until every sample is taken, this thread does not allocate:
     * the figures are printed at the end. */
    pthread_barrier_wait(&ready);
    long baseline = bench_rss_kb();
    double t_burst = bench_now();
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&peaked);
    long peak = bench_rss_kb();
    double t_peak = bench_now();
    pthread_barrier_wait(&sampled);

    pthread_mutex_lock(&lock);
    while (n_freed < n_workers)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    double t_freed = bench_now();

    long rss[N_SAMPLES];
    int n_taken = 0;
    for (size_t s = 0; s < N_SAMPLES && sample_ms[s] <= last_ms; s++) {
        bench_sleep_until(t_freed + (double)sample_ms[s] / 1000);
        rss[s] = bench_rss_kb();
        n_taken++;
    }

    pthread_mutex_lock(&lock);
    quit = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    uint64_t bytes = 0, checksum = 0;
    long n_blocks = 0;
    for (int t = 0; t < n_workers; t++) {
        pthread_join(workers[t].tid, NULL);
        bytes += workers[t].bytes;
        checksum += workers[t].checksum;
        n_blocks += workers[t].n_blocks;
    }
    if (baseline < 0 || peak < 0 || peak <= baseline) {
        fprintf(stderr, "rss: cannot read a sensible RSS (baseline %ld KiB, peak %ld KiB)\n", baseline, peak);
        return 1;
    }

    printf("# rss: %d threads allocated %.1f MiB in %ld blocks in %.3f s, freed them in %.3f s\n",
           n_workers, (double)bytes / (1 << 20), n_blocks, t_peak - t_burst, t_freed - t_peak);
    bench_result("rss-recovery", "rss_kb", (double)baseline, "at=baseline");
    bench_result("rss-recovery", "rss_kb", (double)peak, "at=peak");
    double span = (double)(peak - baseline);
    char curve[256] = "";
    size_t len = 0;
    double main_ratio = 0;
    long main_ms = 0;
    for (int s = 0; s < n_taken; s++) {
        double r = (double)(rss[s] - baseline) / span;
        bench_result("rss-recovery", "rss_kb", (double)rss[s], "at=%ldms ratio=%.4f", sample_ms[s], r);
        len += (size_t)snprintf(curve + len, sizeof curve - len, " r%ld=%.4f", sample_ms[s], r);
        if (sample_ms[s] <= 1000) {
            main_ratio = r;
            main_ms = sample_ms[s];
        }
    }
    bench_result("rss-recovery", "ratio", main_ratio, "at_ms=%ld baseline_kb=%ld peak_kb=%ld%s checksum=%llu",
                 main_ms, baseline, peak, curve, (unsigned long long)checksum);
    return 0;
}
