/* unit/written.c — tidei_os_each_written (os.c): the runs of a range whose
 * pages were ever written, from /proc/self/pagemap, which the leak check
 * and the GC's mark read instead of whole big ranges.
 *
 *   - runs_match_writes: in a fresh 2048-page mapping, pages written one
 *     by one, in pairs, across the boundaries of the helper's reads (512
 *     entries each: pages 511/512, 1023/1024) and at both ends; the range
 *     asked for starts and ends inside a page.  The runs must be exactly
 *     the written pages, clipped to the range, in order, merged where
 *     adjacent, and each page not written must be absent; errno kept.
 *   - swapped_out_counts: a written page given back with MADV_PAGEOUT
 *     (swap, where the machine has it) is still a run: its bytes are on
 *     disk, not gone.  Skipped where the page stays resident or the
 *     kernel refuses the advice.
 *   - unreadable_means_whole: fd -1, or an fd that reads nothing
 *     (/dev/null), gives [lo, hi) whole in one call, so a process that
 *     cannot read its pagemap scans everything as before.
 *   - untouched_gives_nothing: a range never written gives no call. */
#include "unit.h"

#include <sys/mman.h>

enum { PAGES = 2048, MAX_RUNS = 64 };

typedef struct runs {
    uintptr_t lo[MAX_RUNS], hi[MAX_RUNS];
    int n;
} runs_t;

static void collect(uintptr_t a, uintptr_t b, void *arg)
{
    runs_t *r = arg;
    if (r->n < MAX_RUNS) {
        r->lo[r->n] = a;
        r->hi[r->n] = b;
    }
    r->n++;
}

static char *fresh(size_t pages)
{
    char *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void runs_match_writes(void)
{
    char *m = fresh(PAGES);
    CHECK(m != NULL);
    if (!m)
        return;
    static const int written[] = { 0, 5, 6, 511, 512, 1000, 1023, 1024, 1025, 2047 };
    bool is_w[PAGES] = { false };
    for (size_t i = 0; i < sizeof written / sizeof *written; i++) {
        m[(size_t)written[i] * 4096 + 17] = 1;
        is_w[written[i]] = true;
    }
    int fd = tidei_os_open_proc("pagemap", 0);
    CHECKF(fd >= 0, "cannot open the pagemap");
    uintptr_t lo = (uintptr_t)m + 100, hi = (uintptr_t)m + (uintptr_t)PAGES * 4096 - 100;
    runs_t r = { .n = 0 };
    errno = 1234;
    tidei_os_each_written(fd, lo, hi, collect, &r);
    CHECKF(errno == 1234, "errno changed to %d", errno);
    /* the expected runs: maximal stretches of written pages, clipped */
    runs_t want = { .n = 0 };
    for (int p = 0; p < PAGES;) {
        if (!is_w[p]) {
            p++;
            continue;
        }
        int q = p;
        while (q < PAGES && is_w[q])
            q++;
        uintptr_t a = (uintptr_t)m + (uintptr_t)p * 4096, b = (uintptr_t)m + (uintptr_t)q * 4096;
        collect(a > lo ? a : lo, b < hi ? b : hi, &want);
        p = q;
    }
    CHECKF(r.n == want.n, "%d runs, want %d", r.n, want.n);
    for (int i = 0; i < r.n && i < want.n && i < MAX_RUNS; i++)
        CHECKF(r.lo[i] == want.lo[i] && r.hi[i] == want.hi[i], "run %d: [+%#lx, +%#lx), want [+%#lx, +%#lx)", i,
               (unsigned long)(r.lo[i] - (uintptr_t)m), (unsigned long)(r.hi[i] - (uintptr_t)m),
               (unsigned long)(want.lo[i] - (uintptr_t)m), (unsigned long)(want.hi[i] - (uintptr_t)m));
    if (fd >= 0)
        close(fd);
    munmap(m, (size_t)PAGES * 4096);
}

static void swapped_out_counts(void)
{
#ifdef MADV_PAGEOUT
    char *m = fresh(4);
    CHECK(m != NULL);
    if (!m)
        return;
    memset(m + 4096, 7, 4096);
    if (madvise(m + 4096, 4096, MADV_PAGEOUT) != 0) {
        th_skip("MADV_PAGEOUT refused");
        munmap(m, 4 * 4096);
        return;
    }
    int fd = tidei_os_open_proc("pagemap", 0);
    uint64_t e = 0;
    bool swapped = fd >= 0 && pread(fd, &e, 8, (off_t)((uintptr_t)(m + 4096) / 4096 * 8)) == 8 && (e >> 62) == 1;
    runs_t r = { .n = 0 };
    tidei_os_each_written(fd, (uintptr_t)m, (uintptr_t)m + 4 * 4096, collect, &r);
    if (fd >= 0)
        close(fd);
    if (!swapped) {
        th_skip("the page stayed resident (no swap here)");
    } else {
        CHECKF(r.n == 1 && r.lo[0] == (uintptr_t)m + 4096 && r.hi[0] == (uintptr_t)m + 2 * 4096,
               "a swapped-out page: %d runs", r.n);
        CHECK(m[4096 + 100] == 7);
    }
    munmap(m, 4 * 4096);
#else
    th_skip("no MADV_PAGEOUT");
#endif
}

static void unreadable_means_whole(void)
{
    char *m = fresh(8);
    CHECK(m != NULL);
    if (!m)
        return;
    uintptr_t lo = (uintptr_t)m + 8, hi = (uintptr_t)m + 8 * 4096 - 8;
    runs_t r = { .n = 0 };
    tidei_os_each_written(-1, lo, hi, collect, &r);
    CHECKF(r.n == 1 && r.lo[0] == lo && r.hi[0] == hi, "fd -1: %d runs", r.n);
    int fd = open("/dev/null", O_RDONLY);
    r.n = 0;
    tidei_os_each_written(fd, lo, hi, collect, &r);
    CHECKF(r.n == 1 && r.lo[0] == lo && r.hi[0] == hi, "/dev/null: %d runs", r.n);
    if (fd >= 0)
        close(fd);
    munmap(m, 8 * 4096);
}

static void untouched_gives_nothing(void)
{
    char *m = fresh(PAGES);
    CHECK(m != NULL);
    if (!m)
        return;
    int fd = tidei_os_open_proc("pagemap", 0);
    runs_t r = { .n = 0 };
    tidei_os_each_written(fd, (uintptr_t)m, (uintptr_t)m + (uintptr_t)PAGES * 4096, collect, &r);
    CHECKF(r.n == 0, "%d runs in memory never written", r.n);
    if (fd >= 0)
        close(fd);
    munmap(m, (size_t)PAGES * 4096);
}

int main(void)
{
    RUN(runs_match_writes);
    RUN(swapped_out_counts);
    RUN(unreadable_means_whole);
    RUN(untouched_gives_nothing);
    return th_summary();
}
