/* stress/big_tls.c — the scavenger starts in a program whose static TLS is
 * big (2 MiB of __thread data here), so its memory still goes back.
 * th-conf: decay_ms=100
 * th-timeout: 60
 *
 * glibc carves a new thread's static TLS out of its stack.  The scavenger
 * runs on a 1 MiB stack of tide's, or failing that on glibc's: before,
 * that was 64 KiB, pthread_create refused both with EINVAL, and the freed
 * burst stayed resident for good.
 *   tls_scavenger_runs   a freed burst is back within 3 s, and the
 *                        scavenger thread (tide-scavenger) exists;
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
    st_burst_rss m = st_burst_freed(MAX_BLOCKS, BURST, 3, 3000, "big_tls");
    int scavengers = n_scavengers();
    st_check_errors();
    CHECKF(scavengers == 1, "%d threads named tide-scavenger 3 s after the frees: want 1", scavengers);
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
