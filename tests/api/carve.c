/* api/carve.c — a growing span in a big process takes its next pages in
 * one request (span.c carve_ahead, TIDE_CARVE_AHEAD_PAGES and
 * TIDE_CARVE_AHEAD_CHUNKS in tide_config.h).  A span carves its blocks a
 * page at a time, and each page costs a fault when the carve first writes
 * it; once the process has 4 chunks (32 MiB), a span carved a second time
 * carves 3 pages more and makes them resident with one
 * MADV_POPULATE_WRITE.  Checked with the page faults the CPU took (the
 * kernel's software event, perf_event_open; getrusage's count includes the
 * pages a populate request faults in):
 *   - in a small process, 4 MiB of 64-byte blocks made and written take
 *     about a fault per page (nothing is populated ahead);
 *   - after 40 MiB of 1 MiB blocks, 16 MiB of 64-byte blocks take fewer
 *     than half a fault per page (with the kernel's MADV_POPULATE_WRITE,
 *     5.14 and later; skipped before, and where perf events are not
 *     allowed);
 *   - every block still reads what was written, and all are freed.
 * Against glibc (TIDE_TESTS_GLIBC=1) the second case fails: glibc takes a
 * fault per page of its heap.
 * And a refill takes blocks already freed before it carves (heap.c
 * tidei_heap_find_span): remote_frees_before_carving. */
#include "testhelper.h"

#include <linux/perf_event.h>
#include <semaphore.h>

#pragma weak tide_set_decay_ms
#include <sys/syscall.h>

static int fault_fd = -1;

/* Page faults taken by the CPU in this thread so far (-1: no counter). */
static long minor_faults(void)
{
    if (fault_fd < 0) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_PAGE_FAULTS_MIN;
        fault_fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
        if (fault_fd < 0)
            return -1;
    }
    long long n = 0;
    if (read(fault_fd, &n, sizeof n) != (ssize_t)sizeof n)
        return -1;
    return (long)n;
}

/* Makes bytes of 64-byte blocks, each written whole and linked to the one
 * made before (no array of pointers, whose own pages would fault); the
 * faults taken meanwhile.  *last is the newest block. */
static long make_blocks(size_t bytes, void **last)
{
    long f0 = minor_faults();
    void *prev = NULL;
    for (size_t i = 0; i < bytes / 64; i++) {
        void **b = malloc(th_opaque(64));
        if (!b) { FAILF("malloc(64) failed after %zu blocks", i); break; }
        memset(b, (int)(i & 0xff), 64);
        b[0] = prev;
        prev = b;
    }
    *last = prev;
    return minor_faults() - f0;
}

/* Checks and frees the chain made by make_blocks from its newest block. */
static void free_blocks(void *last, size_t bytes)
{
    size_t i = bytes / 64;
    for (void **b = last; b; i--) {
        void **prev = b[0];
        unsigned char want = (unsigned char)((i - 1) & 0xff);
        const unsigned char *c = (const unsigned char *)b;
        if (c[8] != want || c[63] != want) { FAILF("block %zu lost its bytes", i - 1); return; }
        free(b);
        b = prev;
    }
}

static bool populate_known(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    bool ok = madvise(p, 4096, 23 /* MADV_POPULATE_WRITE */) == 0;
    munmap(p, 4096);
    return ok;
}

static void small_process_faults_per_page(void)
{
    if (minor_faults() < 0) {
        th_skip("no page-fault counter (perf_event_open: %s)", strerror(errno));
        return;
    }
    const size_t bytes = (size_t)4 << 20;
    void *last;
    long f = make_blocks(bytes, &last);
    long pages = (long)(bytes / 4096);
    CHECKF(f >= pages / 2, "%ld faults for %ld pages of small blocks in a small process: pages taken ahead?", f, pages);
    free_blocks(last, bytes);
}

static void big_process_takes_pages_ahead(void)
{
    if (minor_faults() < 0) {
        th_skip("no page-fault counter (perf_event_open: %s)", strerror(errno));
        return;
    }
    if (!populate_known()) {
        th_skip("the kernel has no MADV_POPULATE_WRITE");
        return;
    }
    void *big[40];
    for (int i = 0; i < 40; i++) {
        big[i] = malloc(th_opaque((size_t)1 << 20));
        CHECK(big[i] != NULL);
        if (big[i]) memset(big[i], 1, (size_t)1 << 20);
    }
    const size_t bytes = (size_t)16 << 20;
    void *last;
    long f = make_blocks(bytes, &last);
    long pages = (long)(bytes / 4096);
    CHECKF(f < pages / 2, "%ld faults for %ld pages of small blocks in a 56 MiB process", f, pages);
    free_blocks(last, bytes);
    for (int i = 0; i < 40; i++)
        free(big[i]);
}

/* A thread fills a span of 208-byte blocks and starts a second one; another
 * thread frees all but one of the first span's blocks.  The first thread's
 * next mallocs drain what the second span has carved, and then its refill
 * must take the freed blocks back rather than carve the second span's next
 * page: within one carve's worth of blocks (a page, 19 of them) a freed
 * block of the first span comes back.  Before, the second span was carved
 * to its end (315 blocks) while the freed ones waited.  Blocks the thread
 * takes from a shared heap meanwhile (tide_block_info's heap 0) are set
 * aside. */
enum { REUSE_SIZE = 208, REUSE_MAX = 1024, REUSE_LATER = 1024 };
static char *reuse_blocks[REUSE_MAX];
static int reuse_n;
static sem_t reuse_ready, reuse_go;

static void *reuse_freer(void *arg)
{
    free(malloc(th_opaque(32)));  /* a heap of its own: two threads allocate */
    sem_post(&reuse_ready);
    sem_wait(&reuse_go);
    for (int i = 1; i < reuse_n; i++)
        free(reuse_blocks[i]);
    return arg;
}

static bool in_span_of(const char *p, const char *first)
{
    return p >= first && p < first + 64 * 1024;
}

static void remote_frees_before_carving(void)
{
    TIDE_ONLY();
    if (tide_set_decay_ms)
        tide_set_decay_ms(-1);  /* no scavenger between the steps */
    sem_init(&reuse_ready, 0, 0);
    sem_init(&reuse_go, 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reuse_freer, NULL) == 0);
    sem_wait(&reuse_ready);
    /* the thread's first blocks of the class come from a shared heap (heap
     * 0 in tide_block_info); then from its own first span, and p from the
     * second */
    char *first = NULL, *p = NULL;
    for (int i = 0; i < REUSE_MAX; i++) {
        p = malloc(th_opaque(REUSE_SIZE));
        memset(p, 1, REUSE_SIZE);
        struct tide_block_info bi;
        CHECK(tide_block_info(p, &bi) == TIDE_BLOCK_LIVE);
        if (bi.block.heap == 0) {
            free(p);
            continue;
        }
        if (!first)
            first = p;
        if (!in_span_of(p, first))
            break;
        reuse_blocks[reuse_n++] = p;
    }
    sem_post(&reuse_go);
    pthread_join(t, NULL);
    if (!first || in_span_of(p, first)) {
        FAILF("no second span after %d blocks of the first", reuse_n);
        return;
    }
    /* blocks from the shared heap (the freer made two threads allocate)
     * are set aside: the refills of the thread's own spans are the point */
    static char *later[REUSE_LATER];
    int n_later = 0, sequential = 0;
    char *q = NULL;
    while (n_later < REUSE_LATER) {
        q = malloc(th_opaque(REUSE_SIZE));
        struct tide_block_info bi;
        CHECK(tide_block_info(q, &bi) == TIDE_BLOCK_LIVE);
        if (bi.block.heap != 0 && !in_span_of(q, p))
            break;
        sequential += bi.block.heap != 0;
        later[n_later++] = q;
    }
    bool reused = false;
    for (int i = 1; i < reuse_n; i++)
        reused |= q == reuse_blocks[i];
    CHECKF(reused && sequential <= 32,
           "%d blocks carved in the second span before a freed one came back (%s); %d were freed",
           sequential, reused ? "one did" : "none did", reuse_n - 1);
    free(q);
    for (int i = 0; i < n_later; i++)
        free(later[i]);
    free(p);
    free(reuse_blocks[0]);
}

int main(void)
{
    RUN(on_tide);
    RUN(remote_frees_before_carving);
    RUN(small_process_faults_per_page);
    RUN(big_process_takes_pages_ahead);
    return th_summary();
}
