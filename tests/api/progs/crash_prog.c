/* api/progs/crash_prog.c — the program tests/api/crash.sh runs with
 * TIDE_CONF=crash_report=1 (not a test itself).  Each command crashes in
 * its own way, after printing on stdout what the report must say ("addr
 * ADDR", "block ADDR SIZE", flushed):
 *
 *   crash_prog null           allocates, then writes at address 0x10
 *   crash_prog small          writes into a live 48-byte block whose page it
 *                             made inaccessible (mprotect)
 *   crash_prog small-shared   the same while a second thread that allocated
 *                             waits (run with shared_threads=2: two threads
 *                             have heaps, so the main thread's first blocks
 *                             of a class come from the shared heaps)
 *   crash_prog large          reads a live 200000-byte block, likewise
 *   crash_prog stack          overflows the main thread's stack (it has
 *                             allocated nothing: no heap)
 *   crash_prog thread-stack   a thread that allocated overflows its stack
 *   crash_prog held           another thread holds tide's heap registry
 *                             lock (stopped in the embedder's suspender
 *                             hook, tide.h) when the main thread crashes
 *   crash_prog threads N      N threads crash at the same moment
 *   crash_prog bus            SIGBUS: reads a page of a file mapped past
 *                             its end
 *   crash_prog handled        (static build) a handler the program installed
 *                             before tide takes every fault: "handled",
 *                             exit 42, no report */
#include "progs.h"

#include <fcntl.h>
#include <signal.h>

static void *volatile sink;

static void protect_page_of(void *p)
{
    mprotect((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, PROT_NONE);
}

__attribute__((noinline)) static int recurse(int depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    return recurse(depth + 1) + buf[0];
}

/* A thread that allocates, then waits for the process to end. */
static pthread_barrier_t allocated;
static void *alloc_thread(void *arg)
{
    void *p = malloc(16);
    sink = p;  /* (a malloc that is only freed is left out by the compiler) */
    free(p);
    pthread_barrier_wait(&allocated);
    for (;;)
        pause();
    return arg;
}

static void *stack_thread(void *arg)
{
    (void)arg;
    sink = malloc(32);  /* gets a heap, and with it a signal stack */
    recurse(0);
    return NULL;
}

/* ---- a lock held: the suspender hook blocks the scavenger ---- */

static int block_fd[2];
static volatile int suspended;

static void *sus_self(void *arg)
{
    (void)arg;
    return (void *)1;
}

static int sus_suspend(void *handle, void *arg)
{
    (void)handle;
    (void)arg;
    suspended = 1;
    char c;
    while (read(block_fd[0], &c, 1) < 0)  /* never: the process dies first */
        ;
    return 0;
}

static void sus_resume(void *handle, void *arg)
{
    (void)handle;
    (void)arg;
}

static void sus_release(void *handle, void *arg)
{
    (void)handle;
    (void)arg;
}

static void *idle_thread(void *arg)
{
    (void)arg;
    void *p[1000];
    for (int i = 0; i < 1000; i++)
        p[i] = malloc(64);
    for (int i = 0; i < 1000; i++)  /* something for the scavenger to take back */
        free(p[i]);
    pause();
    return NULL;
}

static int cmd_held(void)
{
    if (pipe(block_fd) != 0)
        return 1;
    struct tide_thread_suspender sp = { sus_self, sus_suspend, sus_resume, sus_release, NULL };
    tide_set_thread_suspender(&sp);
    pthread_t t;
    pthread_create(&t, NULL, idle_thread, NULL);
    for (int i = 0; i < 1000 && !suspended; i++)
        usleep(10000);
    if (!suspended) {
        say("the scavenger never stopped the idle thread\n");
        return 1;
    }
    say("held\n");
    *(volatile int *)16 = 1;
    return 0;
}

/* ---- several threads at once ---- */

static void *crash_thread(void *arg)
{
    (void)arg;
    sink = malloc(16);
    at_once_wait();
    *(volatile int *)16 = 1;
    return NULL;
}

static int cmd_bus(void)
{
    char path[] = "/tmp/tide-crash-bus.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    unlink(path);
    if (ftruncate(fd, 100) != 0)
        return 1;
    char *m = mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 1;
    say("addr %p\n", (void *)(m + 8192));
    sink = (void *)(uintptr_t)m[8192];
    return 0;
}

/* ---- a handler of the program's, installed before tide ---- */

static volatile sig_atomic_t early_installed;

static void program_handler(int sig)
{
    (void)sig;
    if (write(1, "handled\n", 8) < 0)
        _exit(43);
    _exit(42);
}

#ifdef TH_STATIC
__attribute__((constructor(101))) static void install_early(void)
{
    signal(SIGSEGV, program_handler);
    early_installed = 1;
}
#endif

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *cmd = argv[1];
    if (strcmp(cmd, "null") == 0) {
        sink = malloc(16);
        *(volatile int *)16 = 1;
    } else if (strcmp(cmd, "small") == 0 || strcmp(cmd, "small-shared") == 0) {
        if (strcmp(cmd, "small-shared") == 0) {
            sink = malloc(16);  /* the main thread's heap first */
            pthread_t t;
            pthread_barrier_init(&allocated, NULL, 2);
            pthread_create(&t, NULL, alloc_thread, NULL);
            pthread_barrier_wait(&allocated);
        }
        char *keep[64];
        for (int i = 0; i < 64; i++)
            keep[i] = malloc(48);
        say("block %p 48\n", (void *)keep[32]);
        protect_page_of(keep[32]);
        keep[32][8] = 1;
    } else if (strcmp(cmd, "large") == 0) {
        char *p = malloc(200000);
        say("block %p 200000\n", (void *)p);
        protect_page_of(p);
        sink = (void *)(uintptr_t)p[100];
    } else if (strcmp(cmd, "stack") == 0) {
        recurse(0);
    } else if (strcmp(cmd, "thread-stack") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, stack_thread, NULL);
        pthread_join(t, NULL);
    } else if (strcmp(cmd, "held") == 0) {
        return cmd_held();
    } else if (strcmp(cmd, "threads") == 0 && argc == 3) {
        at_once(atoi(argv[2]), crash_thread);
        return 0;
    } else if (strcmp(cmd, "bus") == 0) {
        return cmd_bus();
    } else if (strcmp(cmd, "handled") == 0) {
        if (!early_installed)
            say("not a static build\n");
        *(volatile int *)16 = 1;
    } else {
        return 2;
    }
    say("survived\n");
    return 0;
}
