/* api/progs/dlopen.c — a program NOT linked with tide that loads libtide.so
 * with dlopen and calls its functions through dlsym (built and run by
 * tests/api/dlopen.sh).  The program's own malloc stays glibc's; tide's
 * entry points work next to it, from several threads, with initial-exec TLS
 * in a library loaded late.
 *   dlopen LIBTIDE           the tests below, PASS/FAIL lines
 *   dlopen LIBTIDE unload    dlclose tide while a thread that used it is
 *                            alive, then let that thread exit (exit 0 = fine) */
#include "testhelper.h"

#include <stdatomic.h>

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    size_t (*usable)(void *);
    const char *(*version)(void);
    int (*stats)(struct tide_stats *);
} t;
static void *handle;
static const char *lib_path;

static bool load(char *why, size_t n)
{
    handle = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) { snprintf(why, n, "dlopen(%s): %s", lib_path, dlerror()); return false; }
#define SYM(f, name) do { *(void **)&t.f = dlsym(handle, name); \
        if (!t.f) { snprintf(why, n, "no %s in %s", name, lib_path); return false; } } while (0)
    SYM(malloc, "malloc"); SYM(free, "free"); SYM(calloc, "calloc"); SYM(realloc, "realloc");
    SYM(posix_memalign, "posix_memalign"); SYM(usable, "malloc_usable_size");
    SYM(version, "tide_version"); SYM(stats, "tide_stats_get");
#undef SYM
    return true;
}

static bool loaded;

/* libtide.so loads with dlopen (its TLS is initial-exec: it must fit the
 * static TLS surplus) and is not the program's malloc. */
static void loads(void)
{
    char why[400];
    loaded = load(why, sizeof why);
    CHECKF(loaded, "%s", why);
    if (!loaded) return;
    CHECKF(strncmp(t.version(), "tide", 4) == 0, "tide_version() = %s", t.version());
    CHECKF((void *)t.malloc != dlsym(RTLD_DEFAULT, "malloc"), "the program's malloc is tide's: not a dlopen test");
}

/* tide's functions, called through their pointers, work: every size range,
 * calloc zeroes, realloc keeps contents, alignment; the blocks show in tide's
 * stats, and glibc's malloc (the program's) does not. */
static void calls_work(void)
{
    if (!loaded) { th_skip("not loaded"); return; }
    static const size_t sizes[] = { 0, 1, 100, 5000, 70000, 300 * KiB, 3 * MiB, 20 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *p = t.malloc(n);
        CHECKF(p && t.usable(p) >= n, "tide malloc(%zu) = %p", n, (void *)p);
        if (!p) continue;
        th_fill(p, n, n);
        char *q = t.realloc(p, n * 2 + 1);
        CHECKF(q && th_verify(q, n, n), "tide realloc(%zu -> %zu)", n, n * 2 + 1);
        t.free(q ? q : p);
        char *z = t.calloc(1, n);
        CHECKF(z && th_is_zero(z, n), "tide calloc(%zu)", n);
        t.free(z);
        void *a = NULL;
        CHECK(t.posix_memalign(&a, 4096, n + 1) == 0 && th_aligned(a, 4096));
        t.free(a);
    }
    struct tide_stats a, b, c;
    t.stats(&a);
    char *h = t.malloc(32 * MiB);
    h[0] = 1;
    t.stats(&b);
    char *g = th_opaque_ptr(malloc(th_opaque(32 * MiB)));   /* glibc's */
    g[0] = 1;
    t.stats(&c);
    free(g);
    t.free(h);
    CHECKF(b.huge_bytes >= a.huge_bytes + 32 * MiB, "tide malloc(32 MiB): huge_bytes %zu -> %zu", a.huge_bytes,
           b.huge_bytes);
    CHECKF(c.huge_bytes == b.huge_bytes, "glibc malloc(32 MiB) changed tide's huge_bytes %zu -> %zu", b.huge_bytes,
           c.huge_bytes);
}

#define NT 4
#define XN 512
static _Atomic(void *) xchg[XN];
static atomic_int errors;

static void *thread_main(void *arg)
{
    th_rng r = { (uint64_t)(uintptr_t)arg };
    for (int i = 0; i < 100000; i++) {
        size_t n = th_rand_range(&r, 1, i % 97 == 0 ? 200000 : 1000);
        char *p = t.malloc(n);
        if (!p) { atomic_fetch_add(&errors, 1); continue; }
        p[0] = (char)n; p[n - 1] = (char)n;
        void *old = atomic_exchange(&xchg[th_rand(&r) % XN], p);
        t.free(old);                 /* often another thread's block */
    }
    return NULL;
}

/* Threads allocate with tide and free each other's blocks; they exit (tide's
 * thread-exit destructor runs in a library loaded with dlopen). */
static void threads(void)
{
    if (!loaded) { th_skip("not loaded"); return; }
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < XN; i++) t.free(atomic_exchange(&xchg[i], NULL));
    CHECKF(atomic_load(&errors) == 0, "%d tide mallocs failed in threads", atomic_load(&errors));
    struct tide_stats st;
    t.stats(&st);
    CHECK(st.n_heaps_total >= 2);   /* the threads made heaps (pooled now that they exited) */
}

/* ---- unload mode ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int state;

static void *user_thread(void *arg)
{
    (void)arg;
    void *p = t.malloc(100);         /* gives this thread a tide heap (and a key value) */
    t.free(p);
    pthread_mutex_lock(&mu);
    state = 1;
    pthread_cond_broadcast(&cv);
    while (state != 2) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;                     /* exits after tide was dlclosed */
}

static int unload(void)
{
    char why[400];
    if (!load(why, sizeof why)) { fprintf(stderr, "%s\n", why); return 2; }
    pthread_t th;
    pthread_create(&th, NULL, user_thread, NULL);
    pthread_mutex_lock(&mu);
    while (state != 1) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    dlclose(handle);
    pthread_mutex_lock(&mu);
    state = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: dlopen LIBTIDE [unload]\n"); return 2; }
    lib_path = argv[1];
    if (argc > 2 && strcmp(argv[2], "unload") == 0) return unload();
    RUN(loads);
    RUN(calls_work);
    RUN(threads);
    return th_summary();
}
