/* api/progs/deepbind.c — plugins loaded with dlopen(RTLD_DEEPBIND), as PHP
 * loads its extensions, allocate and free through tide (built and run by
 * tests/api/deepbind.sh: under tide-run, linked with libtide.so, linked with
 * libtide.a).  Their symbol searches end in libc.so.6, whose allocation
 * names tide makes resolve to itself (src/glibc.c).
 *   deepbind LIBDIR            the tests below, PASS/FAIL lines
 *   deepbind LIBDIR cross OP   a block of tide's given to the plugin's OP
 *                              (free, realloc, reallocarray, usable), then a
 *                              block of the plugin's given to tide's free:
 *                              with libc_alloc=glibc each is a one-line
 *                              report (deepbind.sh checks them) */
#include "testhelper.h"

#include <stdatomic.h>

typedef struct plugin {
    const char *file;            /* libdeep_*.so */
    int mode;                    /* dlopen flags */
    void *h;
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*reallocarray)(void *, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    size_t (*usable_size)(void *);
    char *(*strdup)(const char *);
    void *(**malloc_ptr)(size_t);
    void (**free_ptr)(void *);
    int (*which_shared_name)(void);
} plugin_t;

static plugin_t now = { .file = "libdeep_now.so", .mode = RTLD_NOW | RTLD_DEEPBIND };
static plugin_t lazy = { .file = "libdeep_lazy.so", .mode = RTLD_LAZY | RTLD_DEEPBIND };
static void *own;                /* libdeep_own.so: defines its own allocator */
static const char *libdir;
static bool loaded;
static int (*block_info)(const void *, struct tide_block_info *);

/* The main program's definition of the name the plugins also define
 * (exported with --export-dynamic-symbol). */
int deep_shared_name(void);
int deep_shared_name(void) { return 1; }

static void *open_lib(const char *file, int mode, char *why, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", libdir, file);
    void *h = dlopen(path, mode);
    if (!h) snprintf(why, n, "dlopen(%s): %s", path, dlerror());
    return h;
}

static bool load(plugin_t *p, char *why, size_t n)
{
    if (!(p->h = open_lib(p->file, p->mode, why, n))) return false;
#define SYM(f, name) do { *(void **)&p->f = dlsym(p->h, name); \
        if (!p->f) { snprintf(why, n, "no %s in %s", name, p->file); return false; } } while (0)
    SYM(malloc, "deep_malloc"); SYM(calloc, "deep_calloc"); SYM(realloc, "deep_realloc"); SYM(free, "deep_free");
    SYM(reallocarray, "deep_reallocarray"); SYM(aligned_alloc, "deep_aligned_alloc");
    SYM(memalign, "deep_memalign"); SYM(valloc, "deep_valloc"); SYM(posix_memalign, "deep_posix_memalign");
    SYM(usable_size, "deep_usable_size"); SYM(strdup, "deep_strdup"); SYM(malloc_ptr, "deep_malloc_ptr");
    SYM(free_ptr, "deep_free_ptr"); SYM(which_shared_name, "deep_which_shared_name");
#undef SYM
    return true;
}

/* Whether p is the start of a live block of tide's. */
static bool is_tide(const void *p)
{
    struct tide_block_info bi;
    return p && block_info(p, &bi) == TIDE_BLOCK_LIVE && bi.block.ptr == p;
}

/* The plugins load; tide is in the process (preloaded or linked). */
static void loads(void)
{
    char why[600];
    *(void **)&block_info = dlsym(RTLD_DEFAULT, "tide_block_info");
    CHECKF(block_info, "tide_block_info not found: tide is not in the process");
    bool a = load(&now, why, sizeof why);
    CHECKF(a, "%s", why);
    bool b = a && load(&lazy, why, sizeof why);
    CHECKF(!a || b, "%s", why);
    loaded = a && b && block_info;
}

#define NEED_LOADED() do { if (!loaded) { th_skip("the plugins did not load"); return; } } while (0)

/* Every name of the allocation interface found in libc's table is tide's
 * function, the one the global scope gives (dlsym on libc's handle is what
 * ctypes.CDLL("libc.so.6") does); so are the plugins' own lookups. */
static void libc_names_are_tides(void)
{
    NEED_LOADED();
    static const char *const names[] = {
        "malloc", "free", "cfree", "calloc", "realloc", "reallocarray", "aligned_alloc", "memalign",
        "posix_memalign", "valloc", "pvalloc", "malloc_usable_size", "malloc_trim", "mallopt", "mallinfo",
        "mallinfo2", "malloc_stats", "malloc_info", "__libc_malloc", "__libc_free", "__libc_calloc",
        "__libc_realloc", "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
    };
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK(libc != NULL);
    if (!libc) return;
    int found = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *in_libc = dlsym(libc, names[i]);
        void *global = dlsym(RTLD_DEFAULT, names[i]);
        /* not a name this glibc has, or one a program linked with libtide.a
         * does not export (cfree, __posix_memalign: libc has no default
         * version of them) */
        if (!in_libc || !global) continue;
        found++;
        CHECKF(in_libc == global, "dlsym(libc, %s) = %p (in %s), the process's is %p (in %s)", names[i], in_libc,
               th_object_of(in_libc), global, th_object_of(global));
        void *in_plugin = dlsym(now.h, names[i]);
        CHECKF(in_plugin == global, "dlsym(plugin, %s) = %p (in %s)", names[i], in_plugin, th_object_of(in_plugin));
    }
    CHECKF(found >= 20, "only %d of the names found in libc", found);
    dlclose(libc);
}

/* Every allocation function called from inside the plugins returns a block
 * of tide's, in every size range; calloc zeroes, realloc keeps contents. */
static void plugin_blocks_are_tides(void)
{
    NEED_LOADED();
    static const size_t sizes[] = { 0, 1, 100, 5000, 70000, 300 * KiB, 3 * MiB, 20 * MiB };
    plugin_t *ps[] = { &now, &lazy };
    for (int k = 0; k < 2; k++) {
        plugin_t *p = ps[k];
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            char *a = p->malloc(n);
            CHECKF(is_tide(a), "%s: malloc(%zu) = %p is not tide's", p->file, n, (void *)a);
            CHECKF(p->usable_size(a) >= n, "%s: malloc_usable_size", p->file);
            th_fill(a, n, n);
            a = p->realloc(a, n * 2 + 1);
            CHECKF(is_tide(a) && th_verify(a, n, n), "%s: realloc(%zu -> %zu)", p->file, n, n * 2 + 1);
            a = p->reallocarray(a, 3, n + 1);
            CHECKF(is_tide(a) && th_verify(a, n, n), "%s: reallocarray(3, %zu)", p->file, n + 1);
            p->free(a);
            char *z = p->calloc(1, n);
            CHECKF(is_tide(z) && th_is_zero(z, n), "%s: calloc(1, %zu)", p->file, n);
            p->free(z);
            void *al = p->aligned_alloc(4096, n + 1);
            CHECKF(is_tide(al) && th_aligned(al, 4096), "%s: aligned_alloc(4096, %zu)", p->file, n + 1);
            p->free(al);
            void *m = p->memalign(64, n);
            CHECKF(is_tide(m) && th_aligned(m, 64), "%s: memalign(64, %zu)", p->file, n);
            p->free(m);
            void *v = p->valloc(n);
            CHECKF(is_tide(v) && th_aligned(v, 4096), "%s: valloc(%zu)", p->file, n);
            p->free(v);
            void *pm = NULL;
            CHECKF(p->posix_memalign(&pm, 256, n) == 0 && is_tide(pm), "%s: posix_memalign(256, %zu)", p->file, n);
            p->free(pm);
            void *fp = (*p->malloc_ptr)(n);
            CHECKF(is_tide(fp), "%s: malloc through a pointer in data (%zu)", p->file, n);
            (*p->free_ptr)(fp);
        }
    }
}

/* Blocks cross between the program and the plugins both ways, by free and
 * by realloc, in every size range; libc's own allocations (strdup) too. */
static void blocks_cross(void)
{
    NEED_LOADED();
    static const size_t sizes[] = { 1, 48, 1000, 20000, 100 * KiB, 1 * MiB, 6 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *m = malloc(n);                 /* the program's */
        th_fill(m, n, 7);
        char *r = now.realloc(m, n + 4096);  /* grown by the plugin */
        CHECKF(r && th_verify(r, n, 7), "plugin realloc of the program's block (%zu)", n);
        r = lazy.realloc(r, n / 2 + 1);      /* shrunk by the other */
        CHECKF(r && th_verify(r, n / 2 + 1, 7), "plugin realloc shrink (%zu)", n);
        now.free(r);                         /* freed by the plugin */
        char *d = lazy.malloc(n);            /* the plugin's */
        th_fill(d, n, 9);
        d = realloc(d, 2 * n);               /* grown by the program */
        CHECKF(d && th_verify(d, n, 9), "program realloc of the plugin's block (%zu)", n);
        free(d);                             /* freed by the program */
    }
    char *s = strdup("from the program's libc call");
    lazy.free(s);
    char *t = now.strdup("from the plugin's libc call");
    CHECK(is_tide(t) && strcmp(t, "from the plugin's libc call") == 0);
    free(t);
    /* What ctypes.CDLL("libc.so.6").free does. */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void (*libc_free)(void *) = (void (*)(void *))dlsym(libc, "free");
    char *(*libc_strdup)(const char *) = (char *(*)(const char *))dlsym(libc, "strdup");
    CHECK(libc_free && libc_strdup);
    if (libc_free && libc_strdup) libc_free(libc_strdup("through libc's handle"));
    dlclose(libc);
}

/* Only the allocation names changed: the plugins still find their own
 * deep_shared_name before the program's (deep binding is kept), and a
 * plugin that defines its own allocator keeps using it. */
static void deep_binding_kept(void)
{
    NEED_LOADED();
    CHECKF(deep_shared_name() == 1, "the program's deep_shared_name");
    CHECKF(now.which_shared_name() == 2, "the RTLD_NOW plugin got the program's deep_shared_name");
    CHECKF(lazy.which_shared_name() == 2, "the RTLD_LAZY plugin got the program's deep_shared_name");
    char why[600];
    own = open_lib("libdeep_own.so", RTLD_NOW | RTLD_DEEPBIND, why, sizeof why);
    CHECKF(own, "%s", why);
    if (!own) return;
    void *(*m)(size_t) = (void *(*)(size_t))dlsym(own, "deep_malloc");
    void (*f)(void *) = (void (*)(void *))dlsym(own, "deep_free");
    int (*in_arena)(const void *) = (int (*)(const void *))dlsym(own, "deep_in_own_arena");
    unsigned long *calls = dlsym(own, "deep_own_calls");
    CHECK(m && f && in_arena && calls);
    if (!(m && f && in_arena && calls)) return;
    unsigned long before = *calls;
    void *p = m(100);
    CHECKF(p && in_arena(p) && !is_tide(p), "the plugin's malloc did not use its own allocator: %p", p);
    f(p);
    CHECKF(*calls == before + 2, "the plugin's own malloc and free ran %lu times, not 2", *calls - before);
    void *q = malloc(100);
    CHECKF(is_tide(q), "the program's malloc is no longer tide's");
    free(q);
}

#define NT 4
#define XN 256
static _Atomic(char *) xchg[XN];
static atomic_int thread_errors;

/* Which side does an operation: the program or one of the plugins. */
static void *side_malloc(int s, size_t n)
{
    switch (s) {
    case 0: return malloc(n);
    case 1: return now.malloc(n);
    case 2: return lazy.calloc(1, n);
    case 3: return (*now.malloc_ptr)(n);
    default: return lazy.realloc(NULL, n);
    }
}
static void *side_realloc(int s, void *p, size_t n)
{
    return s == 0 ? realloc(p, n) : s & 1 ? now.realloc(p, n) : lazy.realloc(p, n);
}
static void side_free(int s, void *p)
{
    switch (s) {
    case 0: free(p); break;
    case 1: now.free(p); break;
    case 2: lazy.free(p); break;
    default: (*lazy.free_ptr)(p); break;
    }
}

/* A block of n >= 16 bytes holds n in its first word, then a pattern
 * (up to byte 64) that depends on n. */
static void mark(char *p, size_t n)
{
    memcpy(p, &n, sizeof n);
    th_fill(p + 8, (n < 64 ? n : 64) - 8, n);
}
static bool marked(const char *p, size_t *n)
{
    memcpy(n, p, sizeof *n);
    return *n >= 16 && *n <= 6 * MiB && th_verify(p + 8, (*n < 64 ? *n : 64) - 8, *n);
}

static void *thread_main(void *arg)
{
    th_rng r = { (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull };
    for (int i = 0; i < 30000; i++) {
        size_t n = i % 4999 == 0 ? th_rand_range(&r, 5 * MiB, 6 * MiB)
                 : i % 97 == 0 ? th_rand_range(&r, 64 * KiB, 600 * KiB)
                 : th_rand_range(&r, 16, 2000);
        char *p = side_malloc((int)(th_rand(&r) % 5), n);
        if (!p) { atomic_fetch_add(&thread_errors, 1); continue; }
        mark(p, n);
        char *old = atomic_exchange(&xchg[th_rand(&r) % XN], p);
        if (!old) continue;
        size_t on;
        if (!marked(old, &on)) atomic_fetch_add(&thread_errors, 1);
        if (th_rand(&r) % 3 == 0) {
            size_t nn = th_rand_range(&r, 64, on + 3000);
            char *g = side_realloc((int)(th_rand(&r) % 3), old, nn);
            if (!g) { atomic_fetch_add(&thread_errors, 1); continue; }
            size_t got;
            if (!marked(g, &got) || got != on) atomic_fetch_add(&thread_errors, 1);
            old = g;
        }
        side_free((int)(th_rand(&r) % 4), old);
    }
    return NULL;
}

/* Threads allocate on one side and free or realloc on another, handing
 * blocks to each other (remote frees), and exit. */
static void threads(void)
{
    NEED_LOADED();
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    int leftover_not_tide = 0;
    for (int i = 0; i < XN; i++) {
        char *p = atomic_exchange(&xchg[i], NULL);
        if (p && !is_tide(p)) leftover_not_tide++;
        side_free(i % 4, p);
    }
    CHECKF(atomic_load(&thread_errors) == 0, "%d allocations failed or lost their contents", atomic_load(&thread_errors));
    CHECKF(leftover_not_tide == 0, "%d blocks were not tide's", leftover_not_tide);
}

/* In a forked child the plugins' blocks and the program's still cross. */
static void forked_child(void)
{
    NEED_LOADED();
    char *parents = now.malloc(5000);
    char *big = malloc(8 * MiB);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        lazy.free(parents);
        now.free(big);
        char *c = lazy.malloc(300);
        int ok = is_tide(c);
        free(c);
        _exit(ok ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
    free(parents);
    lazy.free(big);
}

/* ---- cross OP: with libc_alloc=glibc ---- */
static __attribute__((noinline)) int cross(const char *op)  /* the caller the reports name */
{
    char why[600];
    if (!load(&now, why, sizeof why)) { fprintf(stderr, "%s\n", why); return 2; }
    if (strcmp(op, "tide-free") == 0) {
        void *g = now.malloc(100);   /* glibc's, with libc_alloc=glibc */
        free(g);                     /* tide's free reports it */
        return 0;
    }
    void *t = malloc(100);           /* tide's */
    if (strcmp(op, "free") == 0) now.free(t);
    else if (strcmp(op, "realloc") == 0) t = now.realloc(t, 200);
    else if (strcmp(op, "reallocarray") == 0) t = now.reallocarray(t, 2, 200);
    else if (strcmp(op, "usable") == 0) printf("%zu\n", now.usable_size(t));
    else return 2;
    return 0;                        /* not reached when the check works */
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: deepbind LIBDIR [cross OP]\n"); return 2; }
    libdir = argv[1];
    if (argc > 3 && strcmp(argv[2], "cross") == 0) return cross(argv[3]);
    RUN(loads);
    RUN(libc_names_are_tides);
    RUN(plugin_blocks_are_tides);
    RUN(blocks_cross);
    RUN(deep_binding_kept);
    RUN(threads);
    RUN(forked_child);
    return th_summary();
}
