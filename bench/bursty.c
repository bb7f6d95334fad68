/* bursty.c — the RSS of a program whose load comes in bursts, over time.
 *
 * Stresses: giving memory back between bursts, and taking it again.  A few
 * threads allocate, together, about `mb` MiB in the mix of sizes of
 * bench/rss.c (bench_mix_next: mostly small blocks, some medium, large and
 * huge), writing every page; they hold it for hold_ms, free all of it (every
 * other block by a thread other than the one that allocated it), and then
 * sleep, alive and idle, calling neither malloc nor free, until the next
 * burst (its sizes drawn anew) starts, every_ms after the start of this one:
 * the bursts start at the same times under every allocator, and what is
 * left of the interval after a burst is the idle time.  The main thread
 * samples the resident set size every sample_ms (bench_rss_kb: read
 * without allocating) from lead_ms before the first burst until tail_ms
 * after the last; the threads stay alive and idle until then.  An allocator
 * that returns memory only when it is called keeps the peak through every
 * gap; one that returns it at free time, or after a delay from a thread of
 * its own, falls back between bursts.  The picture (bench/bursty.sh) draws
 * one line per allocator.
 *
 * Arguments: threads=<4>  mb=<MiB per burst, 200>  bursts=<4>
 *            every_ms=<from one burst's start to the next, 3000; a burst
 *            that is not over by then delays the next>  hold_ms=<200>
 *            lead_ms=<500>  tail_ms=<3000>  sample_ms=<50>  seed=<1>
 * Prints:    comment lines (#) with the arguments and, for each burst, when
 *            it started, peaked and ended and the RSS at its peak and at the
 *            end of the idle time after it; then one line per sample,
 *              <t_ms> <rss_kb>
 *            with t_ms counted from the first sample.
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define MAX_BURSTS 64
#define MAX_SAMPLES 65536

typedef struct worker {
    pthread_t tid;          /* the thread */
    int index;              /* 0 .. threads-1 */
    unsigned char **blocks; /* the blocks of the current burst (mmap'ed) */
    long n_blocks;          /* entries of blocks in use in the current burst */
    uint64_t checksum;      /* first bytes read back before the frees */
} worker;

static worker workers[256];
static int n_workers, n_bursts;
static long mb, hold_ms, every_ms, lead_ms;
static uint64_t seed;
static uint64_t budget;                  /* bytes per thread per burst */
static double t_zero;                    /* time of the first sample */
static double next_start;                /* of the next burst; written by worker 0 between barriers */
static double burst_start[MAX_BURSTS];   /* times, by worker 0 */
static double burst_peak[MAX_BURSTS];
static double burst_end[MAX_BURSTS];
static atomic_int bursts_done;           /* bursts finished, all blocks freed */
static pthread_barrier_t barrier;        /* the workers */
static pthread_mutex_t quit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t quit_cond = PTHREAD_COND_INITIALIZER;
static int quit;                         /* sampling is over, under quit_lock */

static uint64_t burst_seed(int burst, int t)
{
    return seed * 1000003 + (uint64_t)burst * 1009 + (uint64_t)t;
}

static void *run(void *arg)
{
    worker *w = arg;
    void *warm = bench_check(malloc(64), "malloc"); /* its heap exists before the first burst */
    bench_escape(warm);
    free(warm);
    for (int k = 0; k < n_bursts; k++) {
        if (w->index == 0)
            next_start = t_zero + (double)(lead_ms + k * every_ms) / 1000;
        pthread_barrier_wait(&barrier);
        bench_sleep_until(next_start);
        if (w->index == 0)
            burst_start[k] = bench_now();

        bench_mix m;
        bench_mix_init(&m, burst_seed(k, w->index));
        w->n_blocks = 0;
        while (m.total < budget) {
            size_t size = bench_mix_next(&m);
            unsigned char *p = bench_check(malloc(size), "malloc");
            bench_touch(p, size);
            w->blocks[w->n_blocks++] = p;
        }
        pthread_barrier_wait(&barrier);
        if (w->index == 0)
            burst_peak[k] = bench_now();
        pthread_barrier_wait(&barrier);
        bench_sleep_until(burst_peak[k] + (double)hold_ms / 1000);

        bench_free_every_other(w->blocks, w->n_blocks, 0, &w->checksum);
        pthread_barrier_wait(&barrier);
        worker *next = &workers[(w->index + 1) % n_workers];
        bench_free_every_other(next->blocks, next->n_blocks, 1, &w->checksum);
        pthread_barrier_wait(&barrier);
        if (w->index == 0) {
            burst_end[k] = bench_now();
            atomic_store(&bursts_done, k + 1);
        }
    }
    /* idle until the last sample: a thread that exited would hand its
     * cached memory back to the allocator, which is another matter */
    pthread_mutex_lock(&quit_lock);
    while (!quit)
        pthread_cond_wait(&quit_cond, &quit_lock);
    pthread_mutex_unlock(&quit_lock);
    return NULL;
}

static long t_ms_of(double t)
{
    return (long)((t - t_zero) * 1000 + 0.5);
}

int main(int argc, char **argv)
{
    n_workers = (int)bench_arg(argc, argv, "threads", 4);
    mb = bench_arg(argc, argv, "mb", 200);
    n_bursts = (int)bench_arg(argc, argv, "bursts", 4);
    every_ms = bench_arg(argc, argv, "every_ms", 3000);
    hold_ms = bench_arg(argc, argv, "hold_ms", 200);
    lead_ms = bench_arg(argc, argv, "lead_ms", 500);
    long tail_ms = bench_arg(argc, argv, "tail_ms", 3000);
    long sample_ms = bench_arg(argc, argv, "sample_ms", 50);
    seed = (uint64_t)bench_arg(argc, argv, "seed", 1);
    if (n_workers < 1 || n_workers > 256 || mb < 1 || n_bursts < 1 || n_bursts > MAX_BURSTS ||
        every_ms < 0 || hold_ms < 0 || lead_ms < 0 || tail_ms < 0 || sample_ms < 1) {
        fprintf(stderr, "bursty: bad arguments\n");
        return 2;
    }
    budget = ((uint64_t)mb << 20) / (uint64_t)n_workers;

    /* Bookkeeping outside the allocator, faulted in before the first sample. */
    for (int t = 0; t < n_workers; t++) {
        long most = 0;
        for (int k = 0; k < n_bursts; k++) {
            long n = bench_mix_count(burst_seed(k, t), budget);
            most = n > most ? n : most;
        }
        workers[t].index = t;
        workers[t].blocks = mmap(NULL, (size_t)most * sizeof(unsigned char *), PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (workers[t].blocks == MAP_FAILED) {
            fprintf(stderr, "bursty: mmap of the block arrays failed\n");
            return 3;
        }
    }
    static long sample_t[MAX_SAMPLES], sample_kb[MAX_SAMPLES];
    bench_escape(sample_t);
    bench_escape(sample_kb);
    memset(sample_t, 0, sizeof sample_t); /* fault the sample arrays in now */
    memset(sample_kb, 0, sizeof sample_kb);

    pthread_barrier_init(&barrier, NULL, (unsigned)n_workers);
    t_zero = bench_now();
    for (int t = 0; t < n_workers; t++) {
        bench_thread(&workers[t].tid, NULL, run, &workers[t]);
    }

    /* Sample until tail_ms after the last burst; no allocation in here. */
    long n = 0;
    double stop = 0;
    for (long k = 0; n < MAX_SAMPLES; k++) {
        double t = t_zero + (double)(k * sample_ms) / 1000;
        bench_sleep_until(t);
        sample_t[n] = t_ms_of(bench_now());
        sample_kb[n] = bench_rss_kb();
        n++;
        if (stop == 0 && atomic_load(&bursts_done) == n_bursts)
            stop = burst_end[n_bursts - 1] + (double)tail_ms / 1000;
        if (stop != 0 && bench_now() >= stop)
            break;
    }

    pthread_mutex_lock(&quit_lock);
    quit = 1;
    pthread_cond_broadcast(&quit_cond);
    pthread_mutex_unlock(&quit_lock);
    uint64_t checksum = 0;
    for (int t = 0; t < n_workers; t++) {
        pthread_join(workers[t].tid, NULL);
        checksum += workers[t].checksum;
    }
    printf("# bursty: threads=%d mb=%ld bursts=%d every_ms=%ld hold_ms=%ld lead_ms=%ld tail_ms=%ld "
           "sample_ms=%ld checksum=%llu\n", n_workers, mb, n_bursts, every_ms, hold_ms, lead_ms, tail_ms,
           sample_ms, (unsigned long long)checksum);
    long baseline_kb = sample_kb[0]; /* the last sample before the first burst */
    for (long i = 0; i < n && t_zero + (double)sample_t[i] / 1000 < burst_start[0]; i++)
        baseline_kb = sample_kb[i];
    printf("# baseline_kb=%ld\n", baseline_kb);
    for (int k = 0; k < n_bursts; k++) {
        /* the RSS at the last sample before the next burst (or the end) */
        double until = k + 1 < n_bursts ? burst_start[k + 1] : 1e300;
        long peak_kb = 0, after_kb = -1;
        for (long i = 0; i < n; i++) {
            double ti = t_zero + (double)sample_t[i] / 1000;
            if (ti >= burst_start[k] && ti < until && sample_kb[i] > peak_kb)
                peak_kb = sample_kb[i];
            if (ti >= burst_end[k] && ti < until)
                after_kb = sample_kb[i];
        }
        printf("# burst %d start_ms=%ld peak_ms=%ld end_ms=%ld peak_kb=%ld idle_end_kb=%ld\n", k + 1,
               t_ms_of(burst_start[k]), t_ms_of(burst_peak[k]), t_ms_of(burst_end[k]), peak_kb, after_kb);
    }
    printf("# t_ms rss_kb\n");
    for (long i = 0; i < n; i++)
        printf("%ld %ld\n", sample_t[i], sample_kb[i]);
    return 0;
}
