/* misuse/misuse.c — heap misuse is reported and aborts.
 *
 * Each case runs in a forked child with stderr on a pipe.  A misuse case
 * passes when the child dies by SIGABRT and its stderr holds exactly one line
 * starting "tide: " that names the operation (e.g. "free(") and the misused
 * address in hex (0x...), e.g.
 *     tide: free(0x7f0c12345040): double free
 * and says what is wrong.  The "fine" cases (free(NULL), ...) must exit 0
 * and print nothing.  The misuses: free, realloc and malloc_usable_size of
 * stack, static, wild and kernel addresses, of interior pointers (small,
 * large, huge), of freed blocks (double free, also across threads, of blocks
 * not handed out again), and free of a block tide carved but never returned.
 *
 * Run against glibc (TIDE_TESTS_GLIBC=1) every misuse case fails: glibc
 * aborts on some with its own message and silently accepts others, which is
 * what proves these checks can fail. */
#include "testhelper.h"

#include <signal.h>

/* Using a pointer after free is the point of these tests. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static char global_buf[256];          /* a static (non-heap) address */

/* One case: the function publishes the address it is about to misuse (the
 * one the message must name), then misuses it.  If it returns, the child
 * exits 0, which fails the case. */
typedef struct {
    const char *name;
    const char *op;           /* the operation the message must name */
    void (*run)(void);        /* publishes the bad address, then misuses it */
    const char *says;         /* NULL, or what the message must say */
} misuse_case;

static void *volatile sink;
static int publish_fd = -1;   /* in the child: where publish() writes */

/* Tells the parent which address the next call misuses. */
static void publish(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (write(publish_fd, &a, sizeof a) != (ssize_t)sizeof a) _exit(98);
}

/* Double free of a small block, nothing allocated in between. */
static void double_free_small(void)
{
    char *p = malloc(th_opaque(64));
    memset(p, 1, 64);
    free(p);
    publish(p);
    free(th_opaque_ptr(p));
}

/* Double free of a small block with another block freed in between (the
 * freed block is no longer the head of the free list). */
static void double_free_small_not_last(void)
{
    char *p = malloc(th_opaque(64)), *q = malloc(th_opaque(64));
    free(p);
    free(q);
    publish(p);
    free(th_opaque_ptr(p));
}

/* Double free of a small block after a different size class was allocated. */
static void double_free_small_other_class(void)
{
    char *p = malloc(th_opaque(48));
    free(p);
    sink = malloc(th_opaque(1000));
    publish(p);
    free(th_opaque_ptr(p));
}

/* Double free of a large (256 KiB) block. */
static void double_free_large(void)
{
    char *p = malloc(th_opaque(256 * KiB));
    memset(p, 1, 256 * KiB);
    free(p);
    publish(p);
    free(th_opaque_ptr(p));
}

/* Double free of a huge (16 MiB) block (its mapping may be cached or gone). */
static void double_free_huge(void)
{
    char *p = malloc(th_opaque(16 * MiB));
    memset(p, 1, 16 * MiB);
    free(p);
    publish(p);
    free(th_opaque_ptr(p));
}

/* free of a stack address. */
static void free_stack(void)
{
    char buf[128];
    memset(buf, 1, sizeof buf);
    char *p = th_opaque_ptr(buf + 16);
    sink = buf;
    publish(p);
    free(p);
}

/* free of a static (global) address. */
static void free_global(void)
{
    char *p = th_opaque_ptr(global_buf + 32);
    publish(p);
    free(p);
}

/* free of a wild address nobody mapped. */
static void free_wild(void)
{
    void *p = th_opaque_ptr((void *)0x12345678);
    publish(p);
    free(p);
}

/* free of an interior pointer: p+8 of a 64-byte block. */
static void free_interior_small(void)
{
    char *p = malloc(th_opaque(64));
    char *q = th_opaque_ptr(p + 8);
    publish(q);
    free(q);
}

/* free of an interior pointer: p+4096 of a 1 MiB block. */
static void free_interior_large(void)
{
    char *p = malloc(th_opaque(MiB));
    char *q = th_opaque_ptr(p + 4096);
    publish(q);
    free(q);
}

/* free of an interior pointer: p+4096 of a 16 MiB (huge) block. */
static void free_interior_huge(void)
{
    char *p = malloc(th_opaque(16 * MiB));
    char *q = th_opaque_ptr(p + 4096);
    publish(q);
    free(q);
}

/* realloc of a freed pointer. */
static void realloc_freed(void)
{
    char *p = malloc(th_opaque(64));
    free(p);
    publish(p);
    sink = realloc(th_opaque_ptr(p), 128);
}

/* realloc of a freed large pointer. */
static void realloc_freed_large(void)
{
    char *p = malloc(th_opaque(300 * KiB));
    free(p);
    publish(p);
    sink = realloc(th_opaque_ptr(p), 600 * KiB);
}

/* realloc of a stack address. */
static void realloc_stack(void)
{
    char buf[128];
    memset(buf, 1, sizeof buf);
    char *p = th_opaque_ptr(buf);
    publish(p);
    sink = realloc(p, 256);
}

/* malloc_usable_size of a stack address. */
static void usable_size_stack(void)
{
    char buf[128];
    char *p = th_opaque_ptr(buf + 8);
    publish(p);
    volatile size_t n = malloc_usable_size(p);
    (void)n;
}

/* free of a wild address above the 47-bit user address space. */
static void free_kernel_address(void)
{
    void *p = th_opaque_ptr((void *)0xffff800000001000ull);
    publish(p);
    free(p);
}

/* free of a page inside a free run: the middle of a freed large block. */
static void free_inside_free_run(void)
{
    char *p = malloc(th_opaque(MiB));
    memset(p, 1, MiB);
    free(p);
    char *q = th_opaque_ptr(p + 256 * KiB);
    publish(q);
    free(q);
}

/* free of an unaligned interior pointer: p+1 of a 24-byte block. */
static void free_interior_unaligned(void)
{
    char *p = malloc(th_opaque(24));
    char *q = th_opaque_ptr(p + 1);
    publish(q);
    free(q);
}

/* free of a block start tide never handed out: the block after the only
 * allocated one of a fresh span (carved onto the free list, never returned
 * by malloc). */
static void free_never_allocated(void)
{
    char *p = malloc(th_opaque(3000));    /* a class nothing else in the child uses */
    size_t bs = malloc_usable_size(p);
    char *q = th_opaque_ptr(p + bs);
    publish(q);
    free(q);
}

static void *remote_p;
static void *free_remote_p(void *arg)
{
    (void)arg;
    free(remote_p);
    return NULL;
}

/* Double free from another thread: the block's owner (main) is alive and
 * idle; another thread frees it, then frees it again. */
static void *double_free_thread(void *arg)
{
    (void)arg;
    free(remote_p);
    publish(remote_p);
    free(th_opaque_ptr(remote_p));
    return NULL;
}
static void double_free_remote(void)
{
    remote_p = malloc(th_opaque(64));
    memset(remote_p, 1, 64);
    pthread_t th;
    pthread_create(&th, NULL, double_free_thread, NULL);
    pthread_join(th, NULL);
}

/* Double free: another thread frees the block, then its owner frees it. */
static void double_free_remote_then_owner(void)
{
    remote_p = malloc(th_opaque(64));
    pthread_t th;
    pthread_create(&th, NULL, free_remote_p, NULL);
    pthread_join(th, NULL);
    publish(remote_p);
    free(th_opaque_ptr(remote_p));
}

/* Double free: the owner frees the block, then another thread frees it. */
static void *free_again_thread(void *arg)
{
    (void)arg;
    publish(remote_p);
    free(th_opaque_ptr(remote_p));
    return NULL;
}
static void double_free_owner_then_remote(void)
{
    remote_p = malloc(th_opaque(64));
    free(remote_p);
    pthread_t th;
    pthread_create(&th, NULL, free_again_thread, NULL);
    pthread_join(th, NULL);
}

/* realloc of an interior pointer. */
static void realloc_interior(void)
{
    char *p = malloc(th_opaque(100));
    char *q = th_opaque_ptr(p + 16);
    publish(q);
    sink = realloc(q, 300);
}

/* realloc of a static address. */
static void realloc_global(void)
{
    char *p = th_opaque_ptr(global_buf);
    publish(p);
    sink = realloc(p, 10);
}

/* realloc of a freed huge block. */
static void realloc_freed_huge(void)
{
    char *p = malloc(th_opaque(16 * MiB));
    p[0] = 1;
    free(p);
    publish(p);
    sink = realloc(th_opaque_ptr(p), 32 * MiB);
}

/* malloc_usable_size of a freed small block. */
static void usable_size_freed(void)
{
    char *p = malloc(th_opaque(64));
    free(p);
    publish(p);
    volatile size_t n = malloc_usable_size(th_opaque_ptr(p));
    (void)n;
}

/* malloc_usable_size of a freed large block. */
static void usable_size_freed_large(void)
{
    char *p = malloc(th_opaque(200 * KiB));
    free(p);
    publish(p);
    volatile size_t n = malloc_usable_size(th_opaque_ptr(p));
    (void)n;
}

/* malloc_usable_size of an interior pointer. */
static void usable_size_interior(void)
{
    char *p = malloc(th_opaque(500));
    char *q = th_opaque_ptr(p + 32);
    publish(q);
    volatile size_t n = malloc_usable_size(q);
    (void)n;
}

/* malloc_usable_size of a wild address. */
static void usable_size_wild(void)
{
    void *p = th_opaque_ptr((void *)0x7000deadbee0ull);
    publish(p);
    volatile size_t n = malloc_usable_size(p);
    (void)n;
}

/* free of an address outside tide's flat range that a multiple of the
 * range's size separates from a live block of the calling thread: the free
 * fast path masks the page number into the range, so it reads that block's
 * span, whose owner is the caller.  The range is 32 GiB, or a quarter of
 * that, or a quarter again (pagemap.c): one case per size, and each must
 * be reported, whichever is the real one.  The alias is a mapped page, with
 * the block's own two words copied there. */
static void free_alias(uint64_t range)
{
    char *b = malloc(th_opaque(64));
    memset(b, 7, 64);
    char *keep = malloc(th_opaque(64));  /* the span is not emptied */
    sink = keep;
    for (int sign = 1; sign >= -1; sign -= 2) {
        uintptr_t a = (uintptr_t)b + (uintptr_t)(sign * (int64_t)range);
        if (sign < 0 && a > (uintptr_t)b)
            continue;
        uintptr_t pg = a & ~(uintptr_t)4095;
        void *m = mmap((void *)pg, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (m == MAP_FAILED || m != (void *)pg)
            continue;
        memcpy((void *)a, b, 16);
        publish((void *)a);
        free((void *)a);
        return;
    }
    _exit(97);  /* no room at either alias */
}
static void free_alias_32g(void) { free_alias((uint64_t)32 << 30); }
static void free_alias_8g(void) { free_alias((uint64_t)8 << 30); }
static void free_alias_2g(void) { free_alias((uint64_t)2 << 30); }
static void free_alias_512m(void) { free_alias((uint64_t)512 << 20); }

static const misuse_case cases[] = {
    { "double_free_small", "free", double_free_small },
    { "double_free_small_not_last", "free", double_free_small_not_last },
    { "double_free_small_other_class", "free", double_free_small_other_class },
    { "double_free_large", "free", double_free_large },
    { "double_free_huge", "free", double_free_huge },
    { "free_stack", "free", free_stack },
    { "free_global", "free", free_global },
    { "free_wild", "free", free_wild },
    { "free_interior_small", "free", free_interior_small },
    { "free_interior_large", "free", free_interior_large },
    { "free_interior_huge", "free", free_interior_huge },
    { "realloc_freed", "realloc", realloc_freed },
    { "realloc_freed_large", "realloc", realloc_freed_large },
    { "realloc_stack", "realloc", realloc_stack },
    { "usable_size_stack", "malloc_usable_size", usable_size_stack },
    { "free_kernel_address", "free", free_kernel_address },
    { "free_inside_free_run", "free", free_inside_free_run },
    { "free_interior_unaligned", "free", free_interior_unaligned },
    { "free_never_allocated", "free", free_never_allocated },
    { "double_free_remote", "free", double_free_remote },
    { "double_free_remote_then_owner", "free", double_free_remote_then_owner },
    { "double_free_owner_then_remote", "free", double_free_owner_then_remote },
    { "realloc_interior", "realloc", realloc_interior },
    { "realloc_global", "realloc", realloc_global },
    { "realloc_freed_huge", "realloc", realloc_freed_huge },
    { "usable_size_freed", "malloc_usable_size", usable_size_freed },
    { "usable_size_freed_large", "malloc_usable_size", usable_size_freed_large },
    { "usable_size_interior", "malloc_usable_size", usable_size_interior },
    { "usable_size_wild", "malloc_usable_size", usable_size_wild },
    { "free_alias_32g", "free", free_alias_32g, "not allocated by tide" },
    { "free_alias_8g", "free", free_alias_8g, "not allocated by tide" },
    { "free_alias_2g", "free", free_alias_2g, "not allocated by tide" },
    { "free_alias_512m", "free", free_alias_512m, "not allocated by tide" },
};

/* Runs fn in a child with stderr captured into err (NUL-terminated) and
 * the address it published in *addr (0 if none).  Returns the wait status. */
static int run_child(void (*fn)(void), char *err, size_t err_n, uintptr_t *addr)
{
    int ep[2], ap[2];
    if (pipe(ep) || pipe(ap)) return -1;
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(ep[0]); close(ap[0]);
        dup2(ep[1], 2);
        close(ep[1]);
        publish_fd = ap[1];
        signal(SIGABRT, SIG_DFL);
        fn();
        _exit(0);
    }
    close(ep[1]); close(ap[1]);
    size_t k = 0;
    ssize_t m;
    while (k + 1 < err_n && (m = read(ep[0], err + k, err_n - 1 - k)) > 0) k += (size_t)m;
    err[k] = 0;
    if (read(ap[0], addr, sizeof *addr) != (ssize_t)sizeof *addr) *addr = 0;
    close(ep[0]); close(ap[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return -1;
    return st;
}

static const misuse_case *cur_case;

/* The child dies by SIGABRT, with one "tide: " line on stderr naming the
 * operation and the exact address. */
static void check_case(void)
{
    const misuse_case *c = cur_case;
    char err[4096];
    uintptr_t addr = 0;
    int st = run_child(c->run, err, sizeof err, &addr);
    char sb[64];
    for (char *e = err; *e; e++) if (*e == '\n' && e[1]) *e = '|';   /* one line per child */
    size_t el = strlen(err);
    if (el && err[el - 1] == '\n') err[el - 1] = 0;
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)) {
        FAILF("%s(%#lx): child ended with %s, not SIGABRT; stderr: \"%.200s\"", c->op,
              (unsigned long)addr, th_status_str(st, sb, sizeof sb), err);
        return;
    }
    int n_tide = 0;
    const char *line = NULL;
    for (const char *l = err; *l;) {
        if (strncmp(l, "tide: ", 6) == 0) { n_tide++; line = l; }
        const char *nl = strchr(l, '|');
        if (!nl) break;
        l = nl + 1;
    }
    if (n_tide != 1) {
        FAILF("%d stderr lines start with \"tide: \" (want 1); stderr: \"%.300s\"", n_tide, err);
        return;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)strcspn(line, "|"), line);
    char want_op[64];
    snprintf(want_op, sizeof want_op, "%s(", c->op);
    CHECKF(strncmp(msg + 6, want_op, strlen(want_op)) == 0, "message does not start with \"tide: %s\": \"%s\"",
           want_op, msg);
    const char *what = strstr(msg, "): ");
    CHECKF(what && what[3], "message does not say what is wrong after \"): \": \"%s\"", msg);
    if (c->says)
        CHECKF(strstr(msg, c->says) != NULL, "message does not say \"%s\": \"%s\"", c->says, msg);
    /* The first hex number in the message is the misused address. */
    const char *hx = strstr(msg, "0x");
    CHECKF(hx != NULL, "message has no 0x address: \"%s\"", msg);
    CHECKF(addr != 0, "child published no address");
    if (hx && addr) {
        uintptr_t got = (uintptr_t)strtoull(hx, NULL, 16);
        CHECKF(got == addr, "message names %#lx, the misused address is %#lx: \"%s\"", (unsigned long)got,
               (unsigned long)addr, msg);
    }
}

static void fine_child(void)
{
    free(NULL);
    free(th_opaque_ptr(NULL));
    void *p = realloc(NULL, 10);
    free(p);
    if (malloc_usable_size(NULL) != 0) _exit(3);
    /* A block freed, reallocated and freed again is not a double free. */
    for (int i = 0; i < 100; i++) {
        void *a = malloc(64);
        free(a);
        void *b = malloc(64);
        free(b);
    }
}

/* free(NULL) and other legal calls near the misuse cases: exit 0, print nothing. */
static void free_null_is_fine(void)
{
    char err[4096];
    uintptr_t addr;
    char sb[64];
    int st = run_child(fine_child, err, sizeof err, &addr);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "free(NULL) child ended with %s",
           th_status_str(st, sb, sizeof sb));
    CHECKF(err[0] == 0, "free(NULL) child printed \"%.200s\"", err);
}

int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    RUN(on_tide);
    RUN(free_null_is_fine);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cur_case = &cases[i];
        th_run(cases[i].name, check_case);
    }
    return th_summary();
}
