/* api/progs/guard_prog.c — the program tests/api/guard.sh runs with
 * TIDE_CONF=guard=1 (not a test itself).  Each command plants one bug and
 * is expected to die of it; it prints what the report must name on stdout
 * first ("block ADDR SIZE", flushed), so the script can check the report.
 *
 *   guard_prog bug KIND SIZE [ENTRY]   one bug on a block of SIZE bytes
 *       KIND: overflow-write (1 byte past the end), overflow-read16 (the
 *       16th byte past the end), underflow-write (the byte before),
 *       uaf-read, uaf-write (in the middle of the freed block), double-free
 *       ENTRY: malloc (default), calloc, realloc (a block grown from 8
 *       bytes), aligned_alloc, posix_memalign, memalign (alignment 16),
 *       valloc, pvalloc (page alignment).  With guard_rate=1 every block is
 *       guarded; the block is allocated again (the others freed) until it
 *       lies against the side the bug needs: the end of its pages (as near
 *       as 16-byte alignment allows) for an overflow, the start for an
 *       underflow (half the blocks are each).  After an overflow or
 *       underflow that did not fault, the block is freed (victim_free).
 *   guard_prog slack SIZE              writes the byte past a block placed
 *       against the start (in the slack after it), then frees it
 *   guard_prog realloc-uaf SIZE        reads a block that realloc moved
 *   guard_prog threads N               N threads overflow at the same moment
 *   guard_prog uaf-loop N SIZE         N times: allocate, fill, free, then
 *       read the freed block; exits 0 if nothing faulted (at the default
 *       rate, one in guard_rate blocks is guarded)
 *   guard_prog info SIZE               a guarded block seen by
 *       malloc_usable_size, tide_block_info, the heap walk and the stats;
 *       prints "ok" or what is wrong
 *   guard_prog sigcgt                  prints the SigCgt mask of the process
 *   guard_prog chain                   (static build) a constructor installs
 *       a SIGSEGV handler before tide starts; an overflow is reported by
 *       tide, then that handler runs ("program handler" on stdout, exit 42)
 *   guard_prog fork SIZE               a guarded block used after free in a
 *       forked child (the child's report, the child dies of SIGSEGV) */
#include "progs.h"

#include <signal.h>

#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

static void *volatile sink;

/* The functions the report's stacks must name. */
__attribute__((noinline)) static char *victim_alloc(size_t n, const char *entry)
{
    void *p = NULL;
    if (strcmp(entry, "malloc") == 0) {
        p = malloc(n);
    } else if (strcmp(entry, "calloc") == 0) {
        p = calloc(1, n);
    } else if (strcmp(entry, "realloc") == 0) {
        void *q = malloc(8);
        p = realloc(q, n);
    } else if (strcmp(entry, "aligned_alloc") == 0) {
        p = aligned_alloc(16, n);
    } else if (strcmp(entry, "posix_memalign") == 0) {
        if (posix_memalign(&p, 16, n) != 0)
            p = NULL;
    } else if (strcmp(entry, "memalign") == 0) {
        p = memalign(16, n);
    } else if (strcmp(entry, "valloc") == 0) {
        p = valloc(n);
    } else if (strcmp(entry, "pvalloc") == 0) {
        p = pvalloc(n);
    }
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void victim_free(char *p)
{
    free(p);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void plant_bug(volatile char *p, size_t n, const char *kind)
{
    if (strcmp(kind, "overflow-write") == 0)
        p[n] = 1;
    else if (strcmp(kind, "overflow-read16") == 0)
        sink = (void *)(uintptr_t)p[n + 15];
    else if (strcmp(kind, "underflow-write") == 0)
        p[-1] = 1;
    else if (strcmp(kind, "uaf-read") == 0)
        sink = (void *)(uintptr_t)p[n / 2];
    else if (strcmp(kind, "uaf-write") == 0)
        p[n / 2] = 1;
    __asm__ volatile("" ::: "memory");
}

static bool at_end(const char *p, size_t n)
{
    return (((uintptr_t)p + ((n + 15) & ~(size_t)15)) & 4095) == 0;
}

static bool at_start(const char *p)
{
    return ((uintptr_t)p & 4095) == 0;
}

static int cmd_bug(const char *kind, size_t n, const char *entry)
{
    bool over = strncmp(kind, "overflow", 8) == 0, under = strncmp(kind, "underflow", 9) == 0;
    char *p = NULL;
    size_t size = strcmp(entry, "pvalloc") == 0 ? (n + 4095) & ~(size_t)4095 : n;
    for (int tries = 0; tries < 200; tries++) {
        p = victim_alloc(n, entry);
        if (!p) {
            say("allocation failed\n");
            return 1;
        }
        if ((!over || at_end(p, size)) && (!under || at_start(p)))
            break;
        victim_free(p);  /* to quarantine; try again */
        p = NULL;
    }
    if (!p) {
        say("no block on the side the bug needs in 200 tries\n");
        return 1;
    }
    memset(p, 7, size);
    say("block %p %zu\n", (void *)p, size);
    if (strcmp(kind, "double-free") == 0) {
        victim_free(p);
        victim_free(p);
    } else if (strncmp(kind, "uaf", 3) == 0) {
        victim_free(p);
        plant_bug(p, size, kind);
    } else {
        plant_bug(p, size, kind);
        say("no fault\n");
        victim_free(p);  /* the slack is checked */
    }
    say("survived\n");
    return 0;
}

static int cmd_slack(size_t n)
{
    char *p = NULL;
    for (int tries = 0; tries < 200 && !p; tries++) {
        p = victim_alloc(n, "malloc");
        if (!at_start(p) || (n & 4095) == 0) {
            victim_free(p);
            p = NULL;
        }
    }
    if (!p) {
        say("no block against the start with slack after it\n");
        return 1;
    }
    say("block %p %zu\n", (void *)p, n);
    plant_bug(p, n, "overflow-write");  /* in the slack: no fault */
    say("written\n");
    victim_free(p);
    say("survived\n");
    return 0;
}

__attribute__((noinline)) static char *realloc_victim(char *p, size_t n)
{
    char *q = realloc(p, n);
    __asm__ volatile("" ::: "memory");
    return q;
}

static int cmd_realloc_uaf(size_t n)
{
    char *p = victim_alloc(n, "malloc");
    memset(p, 1, n);
    say("block %p %zu\n", (void *)p, n);
    char *q = realloc_victim(p, n * 2);
    sink = q;
    plant_bug(p, n, "uaf-read");
    say("survived\n");
    return 0;
}

/* ---- threads ---- */

static void *overflow_thread(void *arg)
{
    (void)arg;
    char *p = NULL;
    for (int tries = 0; tries < 200 && !p; tries++) {
        p = victim_alloc(64, "malloc");
        if (!at_end(p, 64)) {
            victim_free(p);
            p = NULL;
        }
    }
    at_once_wait();
    if (p)
        plant_bug(p, 64, "overflow-write");
    return NULL;
}

static int cmd_threads(int n)
{
    at_once(n, overflow_thread);
    say("survived\n");
    return 0;
}

/* ---- sampled ---- */

__attribute__((noinline)) static void use_after_free_once(size_t n)
{
    volatile char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)i;
    free((void *)p);
    sink = (void *)(uintptr_t)p[n / 2];
}

static int cmd_uaf_loop(long n, size_t size)
{
    for (long i = 0; i < n; i++)
        use_after_free_once(size);
    say("not caught\n");
    return 0;
}

/* ---- what else sees a guarded block ---- */

static long walk_found;
static void *walk_want;
static void walk_fn(const struct tide_block *b, void *arg)
{
    (void)arg;
    if (b->ptr == walk_want && b->size_class == TIDE_CLASS_GUARDED)
        walk_found++;
}

static int cmd_info(size_t n)
{
    struct tide_stats before, after;
    tide_stats_get(&before);
    char *p = victim_alloc(n, "malloc");
    tide_stats_get(&after);
    struct tide_block_info bi;
    int st = tide_block_info(p + n / 2, &bi);
    walk_want = p;
    tide_heap_walk(walk_fn, NULL);
    if (malloc_usable_size(p) != n)
        say("malloc_usable_size %zu, want %zu\n", malloc_usable_size(p), n);
    else if (st != TIDE_BLOCK_LIVE || bi.block.ptr != p || bi.block.size != n ||
             bi.block.size_class != TIDE_CLASS_GUARDED)
        say("tide_block_info: state %d ptr %p size %zu class %d\n", st, bi.block.ptr, bi.block.size,
            bi.block.size_class);
    else if (walk_found != 1)
        say("the heap walk saw the block %ld times\n", walk_found);
    else if (after.live_blocks != before.live_blocks + 1 || after.n_malloc != before.n_malloc + 1)
        say("stats: live blocks %zu -> %zu, mallocs %lu -> %lu\n", before.live_blocks, after.live_blocks,
            (unsigned long)before.n_malloc, (unsigned long)after.n_malloc);
    else {
        char *q = realloc(p, n + 10);  /* moves: the old block to quarantine */
        st = tide_block_info(p, &bi);
        if (q == p || st != TIDE_BLOCK_FREE)
            say("realloc: %p -> %p, the old block's state %d\n", (void *)p, (void *)q, st);
        else
            say("ok\n");
        free(q);
    }
    return 0;
}

/* ---- a program handler installed before tide's ---- */

static volatile sig_atomic_t early_installed;

static void program_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    char buf[80];
    int k = snprintf(buf, sizeof buf, "program handler %p\n", si->si_addr);
    if (write(1, buf, (size_t)k) < 0)
        _exit(43);
    _exit(42);
}

#ifdef TH_STATIC
/* Runs before tide's constructor in a static link (lower priority number,
 * and tide allocates nothing before it). */
__attribute__((constructor(101))) static void install_early(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = program_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    early_installed = 1;
}
#endif

static int cmd_chain(void)
{
    struct sigaction cur;
    sigaction(SIGSEGV, NULL, &cur);
    if (!early_installed || cur.sa_sigaction == program_handler) {
        say("tide did not install its handler after the program's (early %d)\n", (int)early_installed);
        return 1;
    }
    return cmd_bug("overflow-write", 96, "malloc");
}

static int cmd_fork(size_t n)
{
    char *p = victim_alloc(n, "malloc");
    say("block %p %zu\n", (void *)p, n);
    pid_t pid = fork();
    if (pid == 0) {
        victim_free(p);
        plant_bug(p, n, "uaf-write");
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    say("child %s %d\n", WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "bug") == 0)
        return cmd_bug(argv[2], (size_t)atol(argv[3]), argc > 4 ? argv[4] : "malloc");
    if (argc == 3 && strcmp(argv[1], "slack") == 0)
        return cmd_slack((size_t)atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "realloc-uaf") == 0)
        return cmd_realloc_uaf((size_t)atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "threads") == 0)
        return cmd_threads(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "uaf-loop") == 0)
        return cmd_uaf_loop(atol(argv[2]), (size_t)atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "info") == 0)
        return cmd_info((size_t)atol(argv[2]));
    if (argc == 2 && strcmp(argv[1], "sigcgt") == 0) {
        say_sigcgt();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "chain") == 0)
        return cmd_chain();
    if (argc == 3 && strcmp(argv[1], "fork") == 0)
        return cmd_fork((size_t)atol(argv[2]));
    fprintf(stderr, "usage: see the comment at the top of guard_prog.c\n");
    return 2;
}
