/* stress/membarrier_denied.c — idle threads' memory still comes back when
 * the membarrier system call is refused (issue 14).
 * th-timeout: 120
 *
 * tide takes an idle thread's direct spans back with a membarrier
 * handshake; where membarrier is refused (an old kernel, a seccomp filter,
 * gVisor) it must say so once with verbose=1 and still reclaim everything
 * that needs no handshake.  This program runs itself twice, as a child
 * started with execve and TIDE_CONF=decay_ms=50,verbose=1, its stderr going
 * to a memfd the parent reads afterwards:
 *
 *   reclaim_with_membarrier      (printed by the first child) the control
 *       run, with no filter: the same workload; the lines it prints are what
 *       verbose=1 says anyway.
 *   reclaim_without_membarrier   (printed by the second child) the same
 *       under a seccomp filter that makes membarrier fail with EPERM.  The
 *       filter is installed in the forked child just before execve
 *       (PR_SET_NO_NEW_PRIVS, then SECCOMP_SET_MODE_FILTER with a
 *       hand-written BPF program; no libseccomp), so it is in force from the
 *       first instruction of the new image: before ld.so, the sanitizer
 *       runtimes and tide's constructor, before any malloc or thread.  The
 *       child checks that membarrier really fails with EPERM, then twice:
 *       three threads each allocate a third of a burst (40000 blocks of
 *       16..2000 bytes, one in 200 of 70..300 KiB; a quarter of that under
 *       TSan), free the next thread's third (every free remote) and wait on
 *       a condition variable; after 2 s (and at most 2 s more on a loaded
 *       machine) at most 10 % of the burst may still be resident (everything but the direct spans, one per class and
 *       thread, ~3 % here, comes back without a handshake; not checked under
 *       TSan); then the threads wake, allocate and free again (contents
 *       checked) and exit.
 *   both_runs_exit_0   nothing crashed or failed in either child.  SKIP if
 *       no seccomp filter can be installed (the child exits 97).
 *   says_so_once   the denied run's stderr has exactly one line mentioning
 *       membarrier (case-insensitive) that the control run did not print:
 *       said once, not once per round.  The program's own lines there begin
 *       with "test: " and are not counted.  Where membarrier is refused
 *       without the filter too (the control run says so), the denied run
 *       must say it exactly once as well.
 *
 * Before issue 14 tide never calls membarrier: both runs reclaim (with the
 * signal), and says_so_once fails (no line mentions membarrier). */
#include "stress.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "tide.h"

#if defined(__x86_64__)
#define TH_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TH_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define N_BLOCKS (ST_TSAN ? 30000 : 120000)
#define N_THR 3
#define IDLE_MS 2000
#define CHILD_ENV "TH_MEMBARRIER_CHILD"   /* "denied" or "allowed" in the exec'd child */
#define CHILD_CONF "decay_ms=50,verbose=1"
#define NO_FILTER 97                      /* the child's exit status when no filter could be installed */

/* ---- the child: a burst, idle threads, twice ---- */

static st_blk *share[N_THR];
static size_t share_n;
static pthread_barrier_t allocated, go, freed;
static st_gate wake = ST_GATE_INIT;
static int round_no;

static void *worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    th_rng r = { th_mix((uint64_t)(i + 10 * round_no)) | 1 };
    for (size_t k = 0; k < share_n; k++)
        share[i][k] = st_new(th_rand(&r) % 200 == 0 ? th_rand_range(&r, 70 * KiB, 300 * KiB)
                                                    : th_rand_range(&r, 16, 2000));
    pthread_barrier_wait(&allocated);
    pthread_barrier_wait(&go);
    int u = (i + 1) % N_THR;
    for (size_t k = 0; k < share_n; k++)
        st_free(share[u][k], "remote");
    pthread_barrier_wait(&freed);
    st_gate_wait(&wake);
    /* reclaimed without a handshake: the heap still works */
    st_blk b[200];
    for (int k = 0; k < 200; k++)
        b[k] = st_new(th_rand(&r) % 32 == 0 ? th_rand_range(&r, 70 * KiB, 300 * KiB) : th_rand_range(&r, 16, 2000));
    for (int k = 0; k < 200; k++)
        st_free(b[k], "after reclaim");
    return NULL;
}

/* One round; returns the share of the burst still resident IDLE_MS after
 * the frees, or when it fell to 0.10 within IDLE_MS more. */
static double one_round(void)
{
    share_n = N_BLOCKS / N_THR;
    for (int i = 0; i < N_THR; i++) {
        share[i] = st_map(share_n * sizeof(st_blk));
        memset(share[i], 0, share_n * sizeof(st_blk));
    }
    pthread_barrier_init(&allocated, NULL, N_THR + 1);
    pthread_barrier_init(&go, NULL, N_THR + 1);
    pthread_barrier_init(&freed, NULL, N_THR + 1);
    st_gate_close(&wake);
    long base = st_rss_kb();
    pthread_t th[N_THR];
    for (int i = 0; i < N_THR; i++)
        if (!st_spawn(&th[i], worker, (void *)(intptr_t)i))
            abort();  /* the barriers would never open */
    pthread_barrier_wait(&allocated);
    long peak = st_rss_kb();
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&freed);
    /* IDLE_MS at least, then up to IDLE_MS more for the share to fall to
     * 0.10 (on a loaded machine the scavenger may run late) */
    usleep(IDLE_MS * 1000);
    long r = st_wait_rss_below(base + (peak - base) / 10, IDLE_MS);
    st_gate_open(&wake);
    for (int i = 0; i < N_THR; i++)
        st_join(th[i]);
    for (int i = 0; i < N_THR; i++)
        st_unmap(share[i], share_n * sizeof(st_blk));
    pthread_barrier_destroy(&allocated);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&freed);
    double s = (double)(r - base) / (double)(peak > base ? peak - base : 1);
    fprintf(stderr, "test: round %d: RSS before %ld KiB, peak %ld KiB, %d..%d ms after the frees %ld KiB: share %.3f\n",
            round_no, base, peak, IDLE_MS, 2 * IDLE_MS, r, s);
    return s;
}

static bool child_denied;

static void reclaim_run(void)
{
    long e = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    int err = errno;
    if (child_denied)
        CHECKF(e == -1 && err == EPERM, "the filter is not in force: membarrier(QUERY) returned %ld (%s)", e,
               e < 0 ? strerror(err) : "no error");
    else if (e < 0)
        fprintf(stderr, "test: control: membarrier(QUERY) fails here too (%s)\n", strerror(err));
    if (TH_FAILED())
        return;
    for (round_no = 0; round_no < 2; round_no++) {
        double s = one_round();
        st_check_errors();
        if (!ST_TSAN)
            CHECKF(s <= 0.10, "round %d: %.3f of the burst still resident %d ms after the frees with its threads "
                   "idle: want <= 0.10", round_no, s, 2 * IDLE_MS);
    }
}

static void reclaim_without_membarrier(void)
{
    reclaim_run();
}

static void reclaim_with_membarrier(void)
{
    reclaim_run();
}

static int child_main(const char *mode)
{
    child_denied = strcmp(mode, "denied") == 0;
    if (child_denied)
        RUN(reclaim_without_membarrier);
    else
        RUN(reclaim_with_membarrier);
    return th_summary();
}

/* ---- the parent ---- */

/* Installs the filter: membarrier fails with EPERM, everything else is
 * allowed.  Only async-signal-safe calls (runs between fork and execve). */
static int deny_membarrier(void)
{
#ifdef TH_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TH_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Runs this program again in `mode`, its stderr into a memfd; returns the
 * wait status and the memfd in *err_fd (-1 status on a failure to start). */
static int run_child(const char *mode, int *err_fd)
{
    *err_fd = memfd_create("membarrier-child-stderr", 0);
    if (*err_fd < 0)
        return -1;
    char env_mode[64], env_conf[128];
    snprintf(env_mode, sizeof env_mode, "%s=%s", CHILD_ENV, mode);
    snprintf(env_conf, sizeof env_conf, "TIDE_CONF=%s", CHILD_CONF);
    /* the environment of the child: ours without TIDE_CONF (and TH_TIMES,
     * whose lines name the tests), plus the two */
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = st_map((n + 3) * sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TIDE_CONF=", 10) != 0 && strncmp(environ[i], CHILD_ENV "=", sizeof CHILD_ENV) != 0 &&
            strncmp(environ[i], "TH_TIMES=", 9) != 0)
            envp[k++] = environ[i];
    envp[k++] = env_mode;
    envp[k++] = env_conf;
    envp[k] = NULL;
    char *argv[] = { (char *)"membarrier_denied", NULL };
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(*err_fd, 2);
        if (strcmp(mode, "denied") == 0 && deny_membarrier() != 0) {
            static const char msg[] = "membarrier_denied: could not install the seccomp filter\n";
            ssize_t w = write(2, msg, sizeof msg - 1);
            (void)w;
            _exit(NO_FILTER);
        }
        execve("/proc/self/exe", argv, envp);
        _exit(98);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    st_unmap(envp, (n + 3) * sizeof *envp);
    return st;
}

/* Reads the whole memfd into buf (NUL-terminated, cut at n - 1). */
static void read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    ssize_t r;
    while (got < n - 1 && (r = pread(fd, buf + got, n - 1 - got, (off_t)got)) > 0)
        got += (size_t)r;
    buf[got] = 0;
}

/* Whether line (len bytes) mentions membarrier, whatever the case. */
static bool mentions_membarrier(const char *line, size_t len)
{
    static const char w[] = "membarrier";
    for (size_t i = 0; i + sizeof w - 1 <= len; i++) {
        size_t j = 0;
        while (j < sizeof w - 1 && (line[i + j] | 0x20) == w[j])
            j++;
        if (j == sizeof w - 1)
            return true;
    }
    return false;
}

/* Whether text holds a line equal to line (len bytes). */
static bool has_line(const char *text, const char *line, size_t len)
{
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && memcmp(p, line, len) == 0)
            return true;
        p = e ? e + 1 : p + l;
    }
    return false;
}

#define ERR_MAX (256 * 1024)
static char *err_control, *err_denied;
static int st_control = -1, st_denied = -1;  /* wait statuses; -1: did not run */

/* Copies a child's stderr to ours, indented (the runner shows it on failure). */
static void echo_stderr(const char *who, const char *text)
{
    fprintf(stderr, "--- stderr of the %s run ---\n", who);
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        fprintf(stderr, "  | %.*s\n", (int)l, p);
        p = e ? e + 1 : p + l;
    }
}

static void both_runs_exit_0(void)
{
    TIDE_ONLY();
    err_control = st_map(ERR_MAX);
    err_denied = st_map(ERR_MAX);
    int fd;
    st_control = run_child("allowed", &fd);
    if (fd >= 0) {
        read_all(fd, err_control, ERR_MAX);
        close(fd);
    }
    echo_stderr("control", err_control);
    st_denied = run_child("denied", &fd);
    if (fd >= 0) {
        read_all(fd, err_denied, ERR_MAX);
        close(fd);
    }
    echo_stderr("denied", err_denied);
    char s1[64], s2[64];
    CHECKF(st_control == 0, "the control run ended with %s", th_status_str(st_control, s1, sizeof s1));
    if (st_denied != -1 && WIFEXITED(st_denied) && WEXITSTATUS(st_denied) == NO_FILTER) {
        th_skip("no seccomp filter can be installed here (already under one that forbids it?)");
        return;
    }
    CHECKF(st_denied == 0, "the run with membarrier denied ended with %s",
           th_status_str(st_denied, s2, sizeof s2));
}

static void says_so_once(void)
{
    TIDE_ONLY();
    if (st_denied == -1) {
        FAILF("the run with membarrier denied did not run");
        return;
    }
    if (WIFEXITED(st_denied) && WEXITSTATUS(st_denied) == NO_FILTER) {
        th_skip("no seccomp filter");
        return;
    }
    /* tide's lines that mention membarrier: all of them, and those the
     * control run did not print (the child's own lines begin with "test: ") */
    int n_all = 0, n_new = 0, n_control = 0;
    char first[300] = "";
    for (const char *p = err_denied; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (mentions_membarrier(p, l) && strncmp(p, "test: ", 6) != 0) {
            n_all++;
            if (!has_line(err_control, p, l) && n_new++ == 0)
                snprintf(first, sizeof first, "%.*s", (int)l, p);
        }
        p = e ? e + 1 : p + l;
    }
    for (const char *p = err_control; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        n_control += mentions_membarrier(p, l) && strncmp(p, "test: ", 6) != 0;
        p = e ? e + 1 : p + l;
    }
    if (n_new == 0 && n_control > 0) {
        /* membarrier is refused here without the filter too (old kernel,
         * gVisor): then the control run said it, and the denied run must
         * have said it once as well */
        CHECKF(n_all == 1, "membarrier is refused here anyway; with verbose=1 the run under the filter printed %d "
               "lines that mention it, want exactly 1", n_all);
        return;
    }
    CHECKF(n_new == 1,
           "with membarrier denied and verbose=1, %d stderr lines mention membarrier (beyond the control run's), "
           "want exactly 1%s%s", n_new, n_new ? "; the first: " : "", first);
}

int main(void)
{
    const char *mode = getenv(CHILD_ENV);
    if (mode)
        return child_main(mode);
    RUN(on_tide);
    RUN(both_runs_exit_0);
    RUN(says_so_once);
    return th_summary();
}
