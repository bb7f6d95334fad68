/* api/progs/lastthread_prog.c — the program tests/api/lastthread.sh runs:
 * a process whose first thread calls pthread_exit ends when its last
 * thread does, with glibc's exit(0) (atexit handlers run), although tide's
 * scavenger thread is alive; and the scavenger goes when it has nothing to
 * do and comes back with the next work.
 *
 *   lastthread_prog workers N   main frees blocks of N bytes until the
 *                               scavenger runs, then starts 3 threads that
 *                               allocate and free blocks of N bytes for
 *                               100 ms, and calls pthread_exit
 *   lastthread_prog heapless    the same with blocks of 300000 bytes in
 *                               main, and threads that never allocate
 *   lastthread_prog alone       main calls pthread_exit with no other
 *                               thread of the program
 *   lastthread_prog fork        a thread forks; in the child that thread
 *                               (the child's first) frees blocks until the
 *                               scavenger runs, starts a thread that
 *                               allocates, and both end with pthread_exit;
 *                               the parent prints "child STATUS" once the
 *                               child ended, or "child hangs" after 10 s
 *   lastthread_prog gc          main collects GC_MALLOC'd garbage (the
 *                               collector's helper threads start: one per
 *                               CPU beyond the first), then frees blocks
 *                               until the scavenger runs, and calls
 *                               pthread_exit; prints "helpers N", the
 *                               process's threads during the collection
 *                               beyond main and the scavenger
 *   lastthread_prog nothreads   a seccomp filter refuses new threads (clone,
 *                               clone3: EPERM), as a sandbox does, before
 *                               the scavenger ever ran; then a burst of
 *                               64 MiB of 64 KiB blocks and 8 MiB ones,
 *                               freed: prints "kept KB", the RSS above the
 *                               start 100 ms after the frees, and "burst
 *                               KB" ("filter refused" or "thread made" if
 *                               the filter could not be shown to work)
 *   lastthread_prog linger      frees a burst, waits until no scavenger is
 *                               left, at most 20 s (prints "gone MS", the
 *                               linger is 10 s), frees a second
 *                               burst and prints "returned" once tide says
 *                               it gave its pages back (within 5 s)
 * The first three and gc print "scavenger up" once the scavenger runs, and
 * "atexit" from an atexit handler, which glibc runs when the last thread
 * ends. */
#include "progs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <gc.h>

#include "tide.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        exit(3);
    return p;
}

/* Threads of the process named tide-scavenger.  Allocates nothing: a
 * heap in use is one the scavenger keeps watching. */
static int n_scavengers(void)
{
    int n = 0, dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY);
    char buf[4096];
    long got;
    while (dir >= 0 && (got = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            struct dirent64 *e = (struct dirent64 *)(buf + off);
            off += e->d_reclen;
            char path[300], comm[32] = "";
            snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
            int fd = e->d_name[0] == '.' ? -1 : open(path, O_RDONLY);
            if (fd < 0)
                continue;
            ssize_t r = read(fd, comm, sizeof comm - 1);
            close(fd);
            n += r > 0 && strncmp(comm, "tide-scavenger", 14) == 0;
        }
    }
    if (dir >= 0)
        close(dir);
    return n;
}

/* The start of file path (a file of /proc) in b, as a string ("" if it
 * cannot be read).  Allocates nothing. */
static char *read_small(const char *path, char *b, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, b, size - 1);
    if (fd >= 0)
        close(fd);
    b[n > 0 ? n : 0] = 0;
    return b;
}

/* Threads of the process (the Threads line of /proc/self/status). */
static int n_threads(void)
{
    char b[4096];
    const char *p = strstr(read_small("/proc/self/status", b, sizeof b), "\nThreads:");
    return p ? atoi(p + 9) : -1;
}

/* Allocates and frees blocks of n bytes, writing them, for ms. */
static void churn(size_t n, long ms)
{
    double end = now_s() + (double)ms / 1000;
    do {
        void *p[16];
        for (int i = 0; i < 16; i++)
            memset(p[i] = xmalloc(n), 1, n < 4096 ? n : 4096);
        for (int i = 0; i < 16; i++)
            free(p[i]);
    } while (now_s() < end);
}

/* Frees blocks of n bytes until the scavenger runs (at most 5 s). */
static void start_scavenger(size_t n)
{
    for (int i = 0; i < 500 && n_scavengers() == 0; i++) {
        void *p = xmalloc(n);
        memset(p, 1, n);
        free(p);
        usleep(10000);
    }
    say("scavenger %s\n", n_scavengers() ? "up" : "missing");
}

static void say_atexit(void)
{
    say("atexit\n");
}

static size_t work_size;

static void *worker(void *arg)
{
    (void)arg;
    if (work_size)
        churn(work_size, 100);
    else
        usleep(100000);
    return NULL;
}

static void start_workers(int n, size_t size)
{
    work_size = size;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0)
            exit(3);
        pthread_detach(t);
    }
}

/* The forking thread: in the child, ends as the child's first thread. */
static void *forker(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid < 0)
        exit(3);
    if (pid == 0) {
        start_scavenger(4096);
        start_workers(1, 64);
        pthread_exit(NULL);
    }
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            say("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            return NULL;
        }
        usleep(10000);
    }
    say("child hangs\n");
    kill(pid, SIGKILL);
    return NULL;
}

/* The resident set, in KiB (/proc/self/statm). */
static long rss_kb(void)
{
    char b[128];
    long size = 0, res = 0;
    sscanf(read_small("/proc/self/statm", b, sizeof b), "%ld %ld", &size, &res);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *nothing(void *arg)
{
    return arg;
}

/* New threads refused from here on, as a sandbox does: 0, or why not. */
static const char *deny_threads(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return "filter refused";
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0) {
        pthread_join(t, NULL);
        return "thread made";
    }
    return NULL;
}

/* A burst of n blocks of 64 KiB, written and freed; true once tide's
 * returned_bytes grew by half of it (within 5 s). */
static bool burst_returned(int n)
{
    struct tide_stats a, b;
    tide_stats_get(&a);
    void **p = xmalloc(n * sizeof *p);
    for (int i = 0; i < n; i++)
        memset(p[i] = xmalloc(65536), 1, 65536);
    for (int i = 0; i < n; i++)
        free(p[i]);
    free(p);
    for (int i = 0; i < 500; i++) {
        tide_stats_get(&b);
        if (b.returned_bytes - a.returned_bytes >= (size_t)n * 65536 / 2)
            return true;
        usleep(10000);
    }
    return false;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "linger") == 0) {
        if (!burst_returned(256)) {
            say("first burst not returned\n");
            return 1;
        }
        double t0 = now_s();
        while (n_scavengers() > 0 && now_s() < t0 + 20)
            usleep(10000);
        say("gone %.0f\n", n_scavengers() ? -1.0 : (now_s() - t0) * 1000);
        say("%s\n", burst_returned(256) ? "returned" : "second burst not returned");
        return 0;
    }
    if (strcmp(mode, "nothreads") == 0) {
        const char *why = deny_threads();
        if (why) {
            say("%s\n", why);
            return 0;
        }
        long base = rss_kb();
        enum { N_MID = 1024, N_BIG = 8 };
        void *p[N_MID + N_BIG];
        for (int i = 0; i < N_MID + N_BIG; i++) {
            size_t n = i < N_MID ? 65536 : (size_t)8 << 20;
            memset(p[i] = xmalloc(n), 1, n);
        }
        long peak = rss_kb();
        for (int i = 0; i < N_MID + N_BIG; i++)
            free(p[i]);
        usleep(100000);
        say("burst %ld\nkept %ld\n", peak - base, rss_kb() - base);
        return 0;
    }
    atexit(say_atexit);
    if (strcmp(mode, "workers") == 0 && argc > 2) {
        size_t n = strtoul(argv[2], NULL, 10);
        start_scavenger(n);
        start_workers(3, n);
    } else if (strcmp(mode, "heapless") == 0) {
        start_scavenger(300000);
        start_workers(3, 0);
    } else if (strcmp(mode, "alone") == 0) {
        start_scavenger(4096);
    } else if (strcmp(mode, "gc") == 0) {
        GC_INIT();
        for (int i = 0; i < 200000; i++)
            memset(GC_MALLOC(64), 1, 64);
        GC_gcollect();
        start_scavenger(4096);
        say("helpers %d\n", n_threads() - 1 - n_scavengers());
    } else if (strcmp(mode, "fork") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, forker, NULL) != 0)
            return 3;
        pthread_join(t, NULL);
        return 0;
    } else {
        fprintf(stderr, "usage: lastthread_prog workers N|heapless|alone|gc|fork|nothreads|linger\n");
        return 2;
    }
    pthread_exit(NULL);
}
