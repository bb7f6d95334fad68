/* stress/big_tls.c — the scavenger starts in a program whose static TLS is
 * big (2 MiB of __thread data here), so its memory still goes back.
 * th-conf: decay_ms=100
 * th-timeout: 60
 *
 * glibc carves a new thread's static TLS out of its stack.  The scavenger
 * runs on a 1 MiB stack of tide's, or failing that on glibc's: before,
 * that was 64 KiB, pthread_create refused both with EINVAL, and the freed
 * burst stayed resident for good.
 *   tls_scavenger_runs   a freed burst is back within 3 s (given back to
 *                        the OS, in tide's stats, and out of the RSS),
 *                        and at most one scavenger thread exists;
 *   tls_intact           the main thread's __thread array reads back what
 *                        it wrote (tide touched none of it). */
#include "stress.h"

#include <dirent.h>
#include <fcntl.h>

#include "tide.h"

#define TLS_BYTES ((size_t)2 << 20)
#define BURST (ST_TSAN ? ((size_t)16 << 20) : ((size_t)64 << 20))
#define MAX_BLOCKS 300000

static __thread unsigned char big_tls[TLS_BYTES];

/* Threads of the process named tide-scavenger (/proc/self/task/N/comm). */
static int n_scavengers(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, comm, sizeof comm - 1);
        close(fd);
        n += got > 0 && strncmp(comm, "tide-scavenger", 14) == 0;
    }
    closedir(d);
    return n;
}

static void tls_scavenger_runs(void)
{
    TIDE_ONLY();
    for (size_t i = 0; i < TLS_BYTES; i += 4096)
        big_tls[i] = (unsigned char)(i >> 12);
    struct tide_stats a, b;
    tide_stats_get(&a);
    st_burst_rss m = st_burst_freed(MAX_BLOCKS, BURST, 3, 3000, "big_tls");
    int scavengers = n_scavengers();
    tide_stats_get(&b);
    st_check_errors();
    /* it goes once it has had nothing to do for a while (TIDE_SCAV_LINGER_MS) */
    CHECKF(scavengers <= 1, "%d threads named tide-scavenger 3 s after the frees: want 0 or 1", scavengers);
    CHECKF(b.returned_bytes - a.returned_bytes >= BURST / 2,
           "%zu bytes given back to the OS after freeing a burst of %zu: the scavenger did not run",
           b.returned_bytes - a.returned_bytes, (size_t)BURST);
    if (!ST_TSAN)
        CHECKF(m.after <= m.limit, "RSS %ld KiB 3 s after freeing a burst (before %ld, peak %ld): want <= %ld",
               m.after, m.base, m.peak, m.limit);
}

static void tls_intact(void)
{
    size_t bad = 0;
    for (size_t i = 0; i < TLS_BYTES; i += 4096)
        bad += big_tls[i] != (unsigned char)(i >> 12);
    CHECKF(bad == 0, "%zu pages of the thread's __thread array changed", bad);
}

int main(void)
{
    RUN(on_tide);
    RUN(tls_scavenger_runs);
    RUN(tls_intact);
    return th_summary();
}
