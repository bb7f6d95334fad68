/* testhelper.h — the small harness every tide test program uses.
 *
 * A test program is a set of functions run with RUN(fn).  Each prints one line:
 *     PASS name            every CHECK in it held
 *     FAIL name: reason    the first failed CHECK (file:line and expression),
 *                          plus how many more failed
 *     SKIP name: reason    the test does not apply to this build
 * and main() ends with `return th_summary();` (exit status 1 if any failed).
 * tests/run.sh collects these lines.
 *
 * The same sources build two ways:
 *   TH_TIDE=1 (default)  linked with tide (shared, static, or under TSan through
 *                        the redirect below): tide-specific tests run, and
 *                        th_on_tide() must hold.
 *   TH_TIDE=0            linked with nothing but libc (TIDE_TESTS_GLIBC=1 in
 *                        run.sh): checks the tests themselves against glibc's
 *                        malloc; tide-specific tests are skipped.
 * The tide_* symbols are declared weak so that the TH_TIDE=0 build links.
 */
#ifndef TESTHELPER_H
#define TESTHELPER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tide.h"

#ifndef TH_TIDE
#define TH_TIDE 1
#endif

#pragma weak tide_version
#pragma weak tide_stats_get
#pragma weak tide_trim

/* The glibc aliases tide also defines; glibc does not declare them. */
void *__libc_malloc(size_t n);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---- TSan redirect ------------------------------------------------------
 * Under -fsanitize=thread the TSan runtime comes first in the link and its
 * malloc interceptor would serve every malloc: tide's code would never run and
 * the race check would be empty.  With TH_REDIRECT (run.sh sets it for
 * SANITIZE=thread) the calls below go to the functions of libtide.so itself,
 * looked up with dlsym on its handle, so the stress tests drive tide. */
#ifdef TH_REDIRECT
struct th_fns {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    size_t (*malloc_usable_size)(void *);
};
static struct th_fns th_fn;
__attribute__((constructor(101))) static void th_redirect_init(void)
{
    void *h = dlopen("libtide.so", RTLD_NOW | RTLD_NOLOAD);
    if (!h) { fprintf(stderr, "th_redirect: libtide.so not loaded: %s\n", dlerror()); abort(); }
#define TH_SYM(name) do { *(void **)&th_fn.name = dlsym(h, #name); \
        if (!th_fn.name) { fprintf(stderr, "th_redirect: no %s in libtide.so\n", #name); abort(); } } while (0)
    TH_SYM(malloc); TH_SYM(free); TH_SYM(calloc); TH_SYM(realloc);
    TH_SYM(posix_memalign); TH_SYM(aligned_alloc); TH_SYM(malloc_usable_size);
#undef TH_SYM
}
#define malloc(n) th_fn.malloc(n)
#define free(p) th_fn.free(p)
#define calloc(n, s) th_fn.calloc(n, s)
#define realloc(p, n) th_fn.realloc(p, n)
#define posix_memalign(r, a, n) th_fn.posix_memalign(r, a, n)
#define aligned_alloc(a, n) th_fn.aligned_alloc(a, n)
#define malloc_usable_size(p) th_fn.malloc_usable_size(p)
#endif

/* ---- harness ------------------------------------------------------------ */

static int th_n_pass, th_n_fail, th_n_skip;
static const char *th_cur;        /* name of the running test */
static int th_cur_fails;          /* failed CHECKs in the running test */
static bool th_cur_skipped;       /* th_skip() was called */
static char th_cur_reason[600];   /* first failure of the running test */

__attribute__((constructor)) static void th_init_stdout(void)
{
    /* Lines reach the runner even if the program dies later. */
    setvbuf(stdout, NULL, _IOLBF, 0);
}

__attribute__((unused, format(printf, 3, 4)))
static void th_fail_at(const char *file, int line, const char *fmt, ...)
{
    if (th_cur_fails++ == 0) {
        int k = snprintf(th_cur_reason, sizeof th_cur_reason, "%s:%d: ", file, line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(th_cur_reason + k, sizeof th_cur_reason - (size_t)k, fmt, ap);
        va_end(ap);
    }
}

/* CHECK(expr): records file:line and the expression when expr is false. */
#define CHECK(expr) do { if (!(expr)) th_fail_at(__FILE__, __LINE__, "CHECK(%s) failed", #expr); } while (0)
/* CHECKF(expr, fmt, ...): the same with the values that explain the failure. */
#define CHECKF(expr, ...) do { if (!(expr)) th_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)
/* FAILF(fmt, ...): an unconditional failure. */
#define FAILF(...) th_fail_at(__FILE__, __LINE__, __VA_ARGS__)
/* The number of failed checks so far in this test (to stop a loop early). */
#define TH_FAILED() (th_cur_fails > 0)

__attribute__((unused, format(printf, 1, 2)))
static void th_skip(const char *fmt, ...)
{
    th_cur_skipped = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(th_cur_reason, sizeof th_cur_reason, fmt, ap);
    va_end(ap);
}

/* Skips the calling test (and returns from it) unless built for tide. */
#define TIDE_ONLY() do { if (!TH_TIDE) { th_skip("tide-specific"); return; } } while (0)

__attribute__((unused))
static void th_run(const char *name, void (*fn)(void))
{
    th_cur = name;
    th_cur_fails = 0;
    th_cur_skipped = false;
    th_cur_reason[0] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("TH_TIMES"))   /* information only: no test depends on time */
        fprintf(stderr, "time %s: %.3f s\n", name,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (th_cur_fails) {
        th_n_fail++;
        if (th_cur_fails > 1)
            printf("FAIL %s: %s (and %d more failed checks)\n", name, th_cur_reason, th_cur_fails - 1);
        else
            printf("FAIL %s: %s\n", name, th_cur_reason);
    } else if (th_cur_skipped) {
        th_n_skip++;
        printf("SKIP %s: %s\n", name, th_cur_reason);
    } else {
        th_n_pass++;
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}
#define RUN(fn) th_run(#fn, fn)

__attribute__((unused))
static int th_summary(void)
{
    fflush(stdout);
    return th_n_fail ? 1 : 0;
}

/* ---- helpers -------------------------------------------------------------- */

/* A deterministic 64-bit mix (splitmix64). */
static inline uint64_t th_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A small per-thread random generator (xorshift64*). */
typedef struct { uint64_t s; } th_rng;
static inline uint64_t th_rand(th_rng *r)
{
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}
static inline size_t th_rand_range(th_rng *r, size_t lo, size_t hi) /* [lo, hi] */
{
    return lo + (size_t)(th_rand(r) % (hi - lo + 1));
}

/* Fills n bytes at p with a pattern derived from seed (tests use the block's
 * address and size as seed, so two blocks that overlap or are swapped show up).
 * Byte i depends only on seed and i, so a prefix of a filled block verifies
 * as a shorter fill with the same seed. */
static inline uint64_t th_word(uint64_t w, size_t i) { return w + (uint64_t)(i >> 3) * 0x100000001b3ull; }
static inline void th_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *c = p;
    uint64_t w = th_mix(seed);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t v = th_word(w, i); memcpy(c + i, &v, 8); }
    for (; i < n; i++) c[i] = (unsigned char)(th_word(w, i) >> (8 * (i & 7)));
}

/* Returns true when p still holds th_fill(p, n, seed). */
static inline bool th_verify(const void *p, size_t n, uint64_t seed)
{
    __asm__ volatile("" : "+r"(p));   /* read what is in memory, not what was stored */
    const unsigned char *c = p;
    uint64_t w = th_mix(seed);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = th_word(w, i), got;
        memcpy(&got, c + i, 8);
        if (got != v) return false;
    }
    for (; i < n; i++)
        if (c[i] != (unsigned char)(th_word(w, i) >> (8 * (i & 7)))) return false;
    return true;
}
#define TH_SEED(p, n) ((uint64_t)(uintptr_t)(p) * 31 + (uint64_t)(n))

static inline bool th_is_zero(const void *p, size_t n)
{
    __asm__ volatile("" : "+r"(p));   /* the compiler must not assume calloc's zeroes: read them */
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) if (c[i]) return false;
    return true;
}

static inline bool th_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Keeps the compiler from assuming anything about a size (e.g. folding
 * malloc(SIZE_MAX) to NULL). */
static inline size_t th_opaque(size_t n) { volatile size_t v = n; return v; }
static inline void *th_opaque_ptr(void *p) { void *volatile v = p; return v; }

/* The shared object that holds the code at fn, or "?" */
__attribute__((unused))
static const char *th_object_of(void *fn)
{
    Dl_info di;
    if (!fn || !dladdr(fn, &di) || !di.dli_fname) return "?";
    return di.dli_fname;
}

/* tide_stats_get, or zeroes when not linked with tide (TH_TIDE=0). */
__attribute__((unused))
static struct tide_stats th_stats(void)
{
    struct tide_stats s;
    memset(&s, 0, sizeof s);
    if (tide_stats_get)
        tide_stats_get(&s);
    return s;
}

/* True when malloc really is tide's in this process: tide_version() says
 * "tide", and a 32 MiB malloc shows up in tide_stats_get() as a live huge
 * block (and mapped_bytes > 0).  On failure *why says what is wrong. */
__attribute__((unused))
static bool th_on_tide(char *why, size_t why_n)
{
    if (!tide_version || !tide_stats_get) {
        snprintf(why, why_n, "tide_version/tide_stats_get are not linked");
        return false;
    }
    const char *v = tide_version();
    if (!v || strncmp(v, "tide", 4) != 0) {
        snprintf(why, why_n, "tide_version() = \"%s\"", v ? v : "(null)");
        return false;
    }
    struct tide_stats a, b;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b);
    if (tide_stats_get(&a) != 0) { snprintf(why, why_n, "tide_stats_get failed"); return false; }
    size_t n = 32 * MiB;
    char *p = th_opaque_ptr(malloc(th_opaque(n)));   /* opaque: the pair must not be optimised away */
    if (!p) { snprintf(why, why_n, "malloc(32 MiB) failed"); return false; }
    p[0] = 1; p[n - 1] = 2;
    tide_stats_get(&b);
    free(p);
    if (b.mapped_bytes == 0 || b.huge_bytes < a.huge_bytes + n) {
        snprintf(why, why_n, "malloc(32 MiB) not seen by tide_stats_get: mapped_bytes %zu, huge_bytes %zu -> %zu",
                 b.mapped_bytes, a.huge_bytes, b.huge_bytes);
        return false;
    }
    return true;
}

/* A test every program runs first: proves the program runs on tide. */
__attribute__((unused))
static void on_tide(void)
{
    TIDE_ONLY();
    char why[300];
    if (!th_on_tide(why, sizeof why)) FAILF("not running on tide: %s", why);
}

/* Runs fn() in a forked child (stdout/stderr go to the given fds if >= 0) and
 * returns its wait status.  For checks that may crash the process. */
__attribute__((unused))
static int th_in_child(void (*fn)(void *), void *arg, int out_fd, int err_fd)
{
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (out_fd >= 0) dup2(out_fd, 1);
        if (err_fd >= 0) dup2(err_fd, 2);
        fn(arg);
        fflush(stdout); fflush(stderr);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return -1;
    return st;
}

/* Describes a wait status ("exit 0", "signal 6 (Aborted)"). */
__attribute__((unused))
static const char *th_status_str(int st, char *buf, size_t n)
{
    if (st == -1) snprintf(buf, n, "wait failed");
    else if (WIFEXITED(st)) snprintf(buf, n, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, n, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(buf, n, "status 0x%x", st);
    return buf;
}

/* Runs this test's program again with TIDE_CONF=conf and the arguments
 * argv0 arg (tide reads TIDE_CONF before main, so an option can only be
 * tried so), its output going to stderr (its PASS lines are not this
 * run's); returns the wait status, -1 if none. */
__attribute__((unused))
static int th_rerun(const char *conf, const char *argv0, const char *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(2, 1);
        setenv("TIDE_CONF", conf, 1);
        execl("/proc/self/exe", argv0, arg, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return -1;
    return st;
}

#endif /* TESTHELPER_H */
