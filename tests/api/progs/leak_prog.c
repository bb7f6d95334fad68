/* api/progs/leak_prog.c — the program tests/api/leak.sh runs with
 * TIDE_CONF=leak_check=... (not a test itself: the runner compiles only the
 * .c files directly in tests/<group>).
 *
 *   leak_prog leaks     leak_here() and keep_here(), then returns from main
 *   leak_prog clean     keep_here() only
 *   leak_prog exit      leak_here() and keep_here(), then exit(0) from a
 *                       function called by main
 *   leak_prog twice     leak_here() and keep_here(), then tide_leak_check()
 *                       twice; prints "check1 N" and "check2 N" (or "check
 *                       missing" when libtide.so has no tide_leak_check)
 *   leak_prog mmap      one block whose only pointer is in an anonymous
 *                       mmap'ed page (tide scans other writable memory)
 *   leak_prog _exit     leak_here(), then _exit(0) (no check then)
 * Each first prints "pid N" and "keep BLOCKS BYTES" (what keep_here keeps).
 *
 * What is leaked (leak_here): 10 blocks of 128 bytes, all pointers dropped;
 * the first of them points to a block of 64 bytes allocated by leak_child(),
 * which is thus leaked indirectly.  1280 bytes in 10 blocks directly, 64 in
 * 1 indirectly: 1344 bytes in 11 blocks.  128 and 64 are size classes of
 * tide, so requested and usable sizes agree.
 *
 * What is kept (keep_here), every block reachable in one way only:
 *   - a global variable                              (g_keep)
 *   - a static local variable                        (keep_here's kept)
 *   - a linked list from a global: three nodes, the third holds a 1 MiB
 *     (large) block, which holds a 6 MiB (huge) block
 *   - a thread-local variable of the main thread     (tls_keep)
 *   - the stack of a thread still blocked (for up to 30 s) at exit
 *   - interior pointers only: into the middle of a 256-byte block and of a
 *     256 KiB (large) block
 * KEEP_BLOCKS blocks of KEEP_BYTES bytes in all.
 *
 * Every block is filled when allocated: tide's free lists run through free
 * blocks, and a stale link left in a kept block could point to a leaked one.
 * Stale copies of the leaked pointers on the stack are wiped (scrub_stack)
 * before the check. */
#include "testhelper.h"

long tide_leak_check(void);
#pragma weak tide_leak_check

#define KEEP_BLOCKS 11
#define KEEP_BYTES (64 + 96 + 3 * 48 + MiB + 6 * MiB + 80 + 112 + 256 + 256 * KiB)

static void *fill(void *p, size_t n)
{
    if (!p) { fprintf(stderr, "malloc(%zu) failed\n", n); abort(); }
    memset(p, 0x5a, n);
    return p;
}

/* ---- leaked ------------------------------------------------------------- */

__attribute__((noinline, noclone)) void *leak_child(void)
{
    void *p = malloc(64);
    return fill(p, 64);
}

__attribute__((noinline, noclone)) void leak_here(void)
{
    for (int i = 0; i < 10; i++) {
        void **p = malloc(128);
        fill(p, 128);
        if (i == 0) p[3] = leak_child();
    }
}

/* ---- kept --------------------------------------------------------------- */

struct node {
    struct node *next;     /* the next node, or NULL */
    void *payload;         /* a block, or NULL */
    char pad[32];
};

void *volatile g_keep;                    /* a global */
struct node *volatile g_list;             /* a list from a global */
char *volatile g_interior_small;          /* 100 bytes into a 256-byte block */
char *volatile g_interior_large;          /* 100 KiB into a 256 KiB block */
static __thread void *volatile tls_keep;  /* thread-local, main thread */

static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int thread_ready;

/* Holds a block in its stack only, and waits up to 30 s (the process exits
 * long before). */
static void *holder_thread(void *arg)
{
    (void)arg;
    void *volatile held = fill(malloc(112), 112);
    pthread_mutex_lock(&ready_lock);
    thread_ready = 1;
    pthread_cond_signal(&ready_cond);
    pthread_mutex_unlock(&ready_lock);
    for (int i = 0; i < 300; i++) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return held;
}

__attribute__((noinline, noclone)) void keep_here(void)
{
    static void *volatile kept;
    g_keep = fill(malloc(64), 64);
    kept = fill(malloc(96), 96);
    struct node *head = NULL;
    for (int i = 0; i < 3; i++) {
        struct node *n = fill(malloc(sizeof *n), sizeof *n);
        n->next = head;
        n->payload = NULL;
        head = n;
    }
    /* the deepest node (the first made) holds the large block, which holds
     * the huge one */
    struct node *last = head->next->next;
    void **large = fill(malloc(MiB), MiB);
    large[1000] = fill(malloc(6 * MiB), 6 * MiB);
    last->payload = large;
    g_list = head;
    tls_keep = fill(malloc(80), 80);
    g_interior_small = (char *)fill(malloc(256), 256) + 100;
    g_interior_large = (char *)fill(malloc(256 * KiB), 256 * KiB) + 100 * KiB;

    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, holder_thread, NULL) != 0) { perror("pthread_create"); abort(); }
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&ready_lock);
    while (!thread_ready) pthread_cond_wait(&ready_cond, &ready_lock);
    pthread_mutex_unlock(&ready_lock);
}

/* Overwrites the stack below the caller's frame, where leak_here's frames
 * were. */
__attribute__((noinline, noclone)) void scrub_stack(void)
{
    volatile char junk[64 * 1024];
    memset((char *)junk, 0, sizeof junk);
}

__attribute__((noinline, noclone)) void mmap_root(void)
{
    void **page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); abort(); }
    page[7] = fill(malloc(128), 128);
}

__attribute__((noinline, noclone)) void exit_now(void)
{
    exit(0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    printf("pid %d\nkeep %d %zu\n", (int)getpid(), KEEP_BLOCKS, (size_t)KEEP_BYTES);
    if (strcmp(mode, "leaks") == 0 || strcmp(mode, "exit") == 0 || strcmp(mode, "twice") == 0) {
        leak_here();
        keep_here();
        scrub_stack();
        if (mode[0] == 'e') exit_now();
        if (mode[0] == 't') {
            if (!tide_leak_check) {
                printf("check missing\n");
                return 0;
            }
            long n = tide_leak_check();
            printf("check1 %ld\n", n);
            scrub_stack();
            n = tide_leak_check();
            printf("check2 %ld\n", n);
        }
        return 0;
    }
    if (strcmp(mode, "clean") == 0) {
        keep_here();
        scrub_stack();
        return 0;
    }
    if (strcmp(mode, "mmap") == 0) {
        mmap_root();
        scrub_stack();
        return 0;
    }
    if (strcmp(mode, "_exit") == 0) {
        leak_here();
        _exit(0);
    }
    fprintf(stderr, "usage: leak_prog leaks|clean|exit|twice|mmap|_exit\n");
    return 2;
}
