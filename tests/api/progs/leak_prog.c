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
 *   leak_prog ranges    leaks of every size range and entry point, and of
 *                       blocks realloc'ed in place and across boundaries,
 *                       in every thread state (see leak_ranges below)
 *   leak_prog reused    leaks blocks at addresses the scavenger gave back
 *                       just before (see leak_reused below)
 *   leak_prog one-N     leaks one block of N bytes from a function of its
 *                       own and returns, with no scrub of the stack: the
 *                       plainest leak, whose address lies in the dead frames
 *                       that the exit path's frames overlay
 *   leak_prog dead-N    the same, and the block's address is copied over
 *                       64 KiB of a dead frame first, so that whatever slot
 *                       the exit path leaves unwritten holds it
 *   leak_prog exit-live exit(0) from main with two blocks (100 and 200000
 *                       bytes) that main still holds: one in a variable of
 *                       its frame, one in a callee-saved register only
 *                       (x86-64; elsewhere in a second variable); nothing
 *                       leaks
 *   leak_prog sparse    keeps three blocks (see keep_sparse below) through
 *                       memory that is mostly never written: a 4 GiB
 *                       anonymous mapping, a 1 GiB block from calloc, and
 *                       an unaligned word of a writable, executable mapping
 *                       (a JIT's code); runs tide_leak_check() and prints
 *                       "check N", then "pte_kb GROWTH" and "rss_kb
 *                       GROWTH" (what the check added to VmPTE and VmRSS)
 *   leak_prog parked    leaks blocks whose last pointers are in dead frames
 *                       of threads the check stops (see leak_deep below);
 *                       prints "expect BYTES BLOCKS" and "check N" (the
 *                       count tide_leak_check returned)
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
 * Stale copies of the leaked pointers on the stack are wiped (ctx_scrub_stack, contexts.h)
 * before the check. */
#include "contexts.h"
#include "progs.h"

#include <semaphore.h>
#include <sys/syscall.h>

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


__attribute__((noinline, noclone)) void mmap_root(void)
{
    void **page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); abort(); }
    page[7] = fill(malloc(128), 128);
}

/* ---- sparse: roots and blocks mostly never written ------------------------ */

void **g_sparse_block;  /* the 1 GiB block (not static: a static one, never read, is optimized away) */

/* A line "Name:  N kB" of /proc/self/status, in KiB. */
static long status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t len = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, len) == 0 && line[len] == ':')
            v = strtol(line + len + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Three blocks, each reachable only through one word in memory that is
 * otherwise never written, so the check must scan its written pages (and
 * should scan nothing else: every page it reads, it maps):
 *   - a block whose address is in one page, 3 GiB into a 4 GiB anonymous
 *     mapping;
 *   - a block whose address is 512 MiB into a 1 GiB block from calloc
 *     (huge: a mapping of its own), itself held by a global;
 *   - a block whose address is at byte 3 of a writable, executable page,
 *     as a JIT writes an immediate operand (skipped, "norwx", if the
 *     system refuses such a mapping). */
__attribute__((noinline, noclone)) void keep_sparse(void)
{
    size_t big = (size_t)4 << 30;
    char *m = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); abort(); }
    ((void **)(m + ((size_t)3 << 30)))[3] = fill(malloc(128), 128);
    g_sparse_block = calloc(1, (size_t)1 << 30);
    if (!g_sparse_block) { perror("calloc"); abort(); }
    g_sparse_block[(512 << 20) / sizeof(void *) + 1] = fill(malloc(96), 96);
    char *x = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (x == MAP_FAILED) {
        printf("norwx\n");
        return;
    }
    void *c = fill(malloc(80), 80);
    memset(x, 0x90, 64);
    memcpy(x + 3, &c, sizeof c);
}

static void leak_sparse(void)
{
    keep_sparse();
    ctx_scrub_stack();
    long pte = status_kb("VmPTE"), rss = status_kb("VmRSS");
    printf("check %ld\n", tide_leak_check());
    printf("pte_kb %ld\nrss_kb %ld\n", status_kb("VmPTE") - pte, status_kb("VmRSS") - rss);
}

/* ---- ranges: leaks of every size, entry point and thread state ----------- */

/* Each leak function allocates one block with one entry point, fills it
 * (no stale word in it may point to another leaked block) and drops it.
 * The tag differs per function, so that no two have the same code. */
#define LEAK_SITE(fn, tag, expr)                                                   \
    __attribute__((noinline, noclone)) void fn(size_t n, size_t align)             \
    {                                                                              \
        (void)align;                                                               \
        char *p = (expr);                                                          \
        if (!p) { fprintf(stderr, #fn "(%zu) failed\n", n); abort(); }            \
        fill(p, malloc_usable_size(p));                                            \
        p[0] = (tag);                                                              \
    }
#define LEAK_SITES(e, tag, expr)                                                   \
    LEAK_SITE(leak_##e##_small, tag, expr) LEAK_SITE(leak_##e##_large, tag + 1, expr) \
    LEAK_SITE(leak_##e##_huge, tag + 2, expr)

ALLOC_ENTRY_POINTS(LEAK_SITES)

#define LEAK_HUGE (4 * MiB + 8192)
typedef void (*leak_fn)(size_t n, size_t align);
static const struct {
    const char *entry;
    leak_fn fn[3];                     /* small, large, huge */
    size_t align[3];
} leak_entries[] = {
#define LE(e, a0, a1, a2) { #e, { leak_##e##_small, leak_##e##_large, leak_##e##_huge }, { a0, a1, a2 } }
    LE(malloc, 0, 0, 0), LE(calloc, 0, 0, 0), LE(realloc, 0, 0, 0),
    LE(aligned_alloc, 64, 16384, 2 * MiB), LE(posix_memalign, 256, 65536, MiB), LE(memalign, 128, 8192, 65536),
    LE(valloc, 0, 0, 0), LE(pvalloc, 0, 0, 0),
#undef LE
};
static const size_t leak_sizes[3] = { 1000, 200000, LEAK_HUGE };
static const char *const leak_range[3] = { "small", "large", "huge" };

/* realloc: the block comes from leak_origin and is leaked by the function
 * that reallocs it, in place or across a boundary: the report must name
 * that function (the last to allocate the block), as valgrind's does. */
__attribute__((noinline, noclone)) void *leak_origin(size_t n)
{
    void *p = malloc(n);
    return fill(p, malloc_usable_size(p));
}
#define LEAK_RESIZE(fn, tag)                                                       \
    __attribute__((noinline, noclone)) void fn(size_t from, size_t to)             \
    {                                                                              \
        char *p = realloc(leak_origin(from), to);                                  \
        if (!p) { fprintf(stderr, #fn "(%zu) failed\n", to); abort(); }          \
        fill(p, malloc_usable_size(p));                                            \
        p[0] = (tag);                                                              \
    }
LEAK_RESIZE(lr_small_inplace, 'a') LEAK_RESIZE(lr_large_shrink, 'b') LEAK_RESIZE(lr_huge_grow, 'c')
LEAK_RESIZE(lr_s2l, 'd') LEAK_RESIZE(lr_l2h, 'e') LEAK_RESIZE(lr_h2s, 'f') LEAK_RESIZE(lr_h2l, 'g')
LEAK_RESIZE(lr_l2s, 'h') LEAK_RESIZE(lr_s2h, 'i')
static const struct {
    const char *test, *name;
    void (*fn)(size_t, size_t);
    size_t from, to;
} leak_resizes[] = {
    { "leak_realloc_in_place", "lr_small_inplace", lr_small_inplace, 1000, 1020 },
    { "leak_realloc_in_place", "lr_large_shrink", lr_large_shrink, 200000, 150000 },
    { "leak_realloc_in_place", "lr_huge_grow", lr_huge_grow, LEAK_HUGE, 6 * MiB },
    { "leak_realloc_across_ranges", "lr_s2l", lr_s2l, 1000, 200000 },
    { "leak_realloc_across_ranges", "lr_l2h", lr_l2h, 200000, LEAK_HUGE },
    { "leak_realloc_across_ranges", "lr_h2s", lr_h2s, LEAK_HUGE, 2000 },
    { "leak_realloc_across_ranges", "lr_h2l", lr_h2l, LEAK_HUGE, 300000 },
    { "leak_realloc_across_ranges", "lr_l2s", lr_l2s, 200000, 1000 },
    { "leak_realloc_across_ranges", "lr_s2h", lr_s2h, 1000, LEAK_HUGE },
};
#define N_LEAK_ENTRIES (sizeof leak_entries / sizeof leak_entries[0])
#define N_LEAK_RESIZES (sizeof leak_resizes / sizeof leak_resizes[0])

/* The leaks whose blocks are all large or huge (arg non-NULL), or the
 * others: in a new thread, the first make it a large-only thread. */
static void leak_ranges_work(int ctx, void *arg)
{
    (void)ctx;
    bool big = arg != NULL;
    for (size_t i = 0; i < N_LEAK_ENTRIES; i++)
        for (int r = 0; r < 3; r++)
            if ((leak_sizes[r] > 64 * KiB) == big)
                leak_entries[i].fn[r](leak_sizes[r], leak_entries[i].align[r]);
    for (size_t i = 0; i < N_LEAK_RESIZES; i++)
        if ((leak_resizes[i].from > 64 * KiB && leak_resizes[i].to > 64 * KiB) == big)
            leak_resizes[i].fn(leak_resizes[i].from, leak_resizes[i].to);
}

/* Leaks one block per leak function in each thread state (contexts.h) and
 * prints one line per function: "expect TEST FUNCTION BYTES BLOCKS". */
static void leak_ranges(void)
{
    static int big;
    for (int ctx = 0; ctx < N_CTX; ctx++) {
        ctx_run(ctx, leak_ranges_work, &big);
        ctx_run(ctx, leak_ranges_work, NULL);
        ctx_scrub_stack();
    }
    for (size_t i = 0; i < N_LEAK_ENTRIES; i++)
        for (int r = 0; r < 3; r++) {
            size_t n = leak_sizes[r];
            if (strcmp(leak_entries[i].entry, "pvalloc") == 0)
                n = (n + 4095) & ~(size_t)4095;  /* pvalloc asks for whole pages */
            printf("expect leak_entry_%s leak_%s_%s %zu %d\n", leak_entries[i].entry, leak_entries[i].entry,
                   leak_range[r], N_CTX * n, N_CTX);
        }
    for (size_t i = 0; i < N_LEAK_RESIZES; i++)
        printf("expect %s %s %zu %d\n", leak_resizes[i].test, leak_resizes[i].name, N_CTX * leak_resizes[i].to, N_CTX);
}

/* ---- reused: blocks at addresses the scavenger handled ------------------ */

/* Frees a block of n bytes, waits until the scavenger (decay_ms=20) has
 * given its range back, then leaks a block of the same size, which the
 * kernel or the arena places at the same address.  The addresses the
 * scavenger handled stay in its dead frames; those are tide's, not the
 * program's, and must not keep the leaked blocks reachable. */
__attribute__((noinline, noclone)) void leak_reused(size_t n)
{
    void *volatile p = fill(malloc(n), n);
    free(p);
    p = NULL;
    struct timespec ts = { 0, 60 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    fill(malloc(n), n);
}

/* Twenty rounds of a huge, a large and a small block (a thread's, the
 * thread gone by the time of the check, so that its span was swept by the
 * scavenger): 60 blocks leaked. */
static void *reused_thread(void *arg)
{
    (void)arg;
    leak_reused(1024);
    ctx_scrub_stack();
    return NULL;
}

static size_t leak_reused_rounds(void)
{
    size_t bytes = 0;
    for (int i = 0; i < 20; i++) {
        leak_reused(6 * MiB);
        leak_reused(300 * KiB);
        pthread_t t;
        if (pthread_create(&t, NULL, reused_thread, NULL) != 0 || pthread_join(t, NULL) != 0) abort();
        bytes += 6 * MiB + 300 * KiB + 1024;
    }
    ctx_scrub_stack();
    return bytes;
}

/* ---- parked: pointers in the dead frames of stopped threads ------------- */

/* Leaks a small, a large and a huge block, their pointers left in the
 * deepest words of a 16 KiB frame: once it returns, the calls the thread
 * makes next (and the signal frame of the check's stop) lie far above
 * them, so they stay in its stack as dead words, as the pointers of a
 * function that returned do. */
#define DEEP_BYTES (192 + 300 * KiB + 6 * MiB)
__attribute__((noinline, noclone)) void leak_deep(void)
{
    void *volatile frame[2048];
    frame[0] = fill(malloc(192), 192);
    frame[1] = fill(malloc(300 * KiB), 300 * KiB);
    frame[2] = fill(malloc(6 * MiB), 6 * MiB);
    for (int i = 3; i < 2048; i++)
        frame[i] = NULL;
#if defined(__x86_64__)
    /* nor in a scratch register, which the stop's signal frame saves */
    __asm__ volatile("xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\txor %%esi, %%esi\n\t"
                     "xor %%edi, %%edi\n\txor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\t"
                     "xor %%r11d, %%r11d"
                     ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
#endif
}

static int parked_pipe[2];
static sem_t parked_ready;
static _Atomic pid_t parked_tids[2];  /* the worker's and main's */

/* Waits until thread tid sleeps in the kernel (its state in
 * /proc/self/task/TID/stat is S): the worker in read(), main in
 * pthread_join().  A thread stopped on its way there, between its post and
 * its call, may still hold a dead pointer in a register. */
static void wait_asleep(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    for (int i = 0; i < 5000; i++) {
        char buf[256] = "";
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
        }
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && rp[2] == 'S')
            return;
        usleep(1000);
    }
}

/* A worker leaks, then blocks in read() until the check is over. */
static void *parked_worker(void *arg)
{
    (void)arg;
    parked_tids[0] = (pid_t)syscall(SYS_gettid);
    leak_deep();
    sem_post(&parked_ready);
    char c;
    while (read(parked_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* The checking thread: both other threads (the worker in read(), main in
 * pthread_join()) are stopped by the check. */
static void *parked_checker(void *arg)
{
    (void)arg;
    sem_wait(&parked_ready);
    wait_asleep(parked_tids[0]);
    wait_asleep(parked_tids[1]);
    printf("check %ld\n", tide_leak_check());
    if (write(parked_pipe[1], "x", 1) != 1) abort();
    return NULL;
}

static void leak_parked(void)
{
    if (!tide_leak_check) {
        printf("check missing\n");
        return;
    }
    if (pipe(parked_pipe) != 0 || sem_init(&parked_ready, 0, 0) != 0) abort();
    pthread_t w, c;
    parked_tids[1] = (pid_t)syscall(SYS_gettid);
    if (pthread_create(&w, NULL, parked_worker, NULL) != 0) abort();
    leak_deep();
    if (pthread_create(&c, NULL, parked_checker, NULL) != 0) abort();
    if (pthread_join(c, NULL) != 0 || pthread_join(w, NULL) != 0) abort();
    printf("expect %zu 6\n", (size_t)2 * DEEP_BYTES);
}

/* Leaks one block of n bytes; returns its address, which the callers drop. */
__attribute__((noinline, noclone)) uintptr_t leak_one(size_t n)
{
    char *p = malloc(n);
    if (!p) abort();
    return (uintptr_t)fill(p, n);
}

/* The same, leaving copies of its address over 64 KiB of stack below the
 * caller's frame. */
__attribute__((noinline, noclone)) void leak_one_dead(size_t n)
{
    uintptr_t p = leak_one(n);
    volatile uintptr_t copies[64 * 1024 / sizeof(uintptr_t)];
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++)
        copies[i] = p;
}

/* exit(0) with a block held in main's frame and one in a register. */
__attribute__((noinline)) static void exit_live(void)
{
    void *volatile in_frame = fill(malloc(100), 100);
    void *in_reg = fill(malloc(200000), 200000);
    ctx_scrub_stack();  /* no stale copy of in_reg below this frame */
    (void)in_frame;
#if defined(__x86_64__)
    /* rbx, callee-saved: exit's frames save it, and only the unwinder's
     * view of this frame says that it holds the block */
    __asm__ volatile("mov %0, %%rbx\n\t"
                     "xor %%edi, %%edi\n\t"
                     "call exit@PLT"
                     :
                     : "r"(in_reg)
                     : "rbx", "rdi", "memory");
#else
    void *volatile in_frame2 = in_reg;
    (void)in_frame2;
#endif
    exit(0);
}

__attribute__((noinline, noclone)) void exit_now(void)
{
    exit(0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    /* stdout's buffer is not a heap block: its end, one past the buffer, is
     * the start of the next block of its class, which it would keep
     * reachable */
    static char out_buf[BUFSIZ];
    setvbuf(stdout, out_buf, _IOLBF, sizeof out_buf);
    printf("pid %d\nkeep %d %zu\n", (int)getpid(), KEEP_BLOCKS, (size_t)KEEP_BYTES);
    if (strcmp(mode, "leaks") == 0 || strcmp(mode, "exit") == 0 || strcmp(mode, "twice") == 0) {
        leak_here();
        keep_here();
        ctx_scrub_stack();
        if (mode[0] == 'e') exit_now();
        if (mode[0] == 't') {
            if (!tide_leak_check) {
                printf("check missing\n");
                return 0;
            }
            long n = tide_leak_check();
            printf("check1 %ld\n", n);
            ctx_scrub_stack();
            n = tide_leak_check();
            printf("check2 %ld\n", n);
        }
        return 0;
    }
    if (strcmp(mode, "clean") == 0) {
        keep_here();
        ctx_scrub_stack();
        return 0;
    }
    if (strcmp(mode, "mmap") == 0) {
        mmap_root();
        ctx_scrub_stack();
        return 0;
    }
    if (strcmp(mode, "_exit") == 0) {
        leak_here();
        _exit(0);
    }
    if (strcmp(mode, "ranges") == 0) {
        leak_ranges();
        ctx_scrub_stack();
        return 0;
    }
    if (strcmp(mode, "reused") == 0) {
        printf("expect %zu 60\n", leak_reused_rounds());
        ctx_scrub_stack();
        return 0;
    }
    if (strncmp(mode, "one-", 4) == 0) {
        leak_one((size_t)strtoul(mode + 4, NULL, 10));
        return 0;
    }
    if (strncmp(mode, "dead-", 5) == 0) {
        leak_one_dead((size_t)strtoul(mode + 5, NULL, 10));
        return 0;
    }
    if (strcmp(mode, "exit-live") == 0)
        exit_live();
    if (strcmp(mode, "parked") == 0) {
        leak_parked();
        return 0;
    }
    if (strcmp(mode, "sparse") == 0) {
        leak_sparse();
        ctx_scrub_stack();
        return 0;
    }
    fprintf(stderr, "usage: leak_prog leaks|clean|exit|twice|mmap|_exit|ranges|reused|one-N|dead-N|exit-live|parked|sparse\n");
    return 2;
}
