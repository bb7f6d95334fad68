/* api/cxx.c — C++ operator new and delete, from a C program.
 *
 * The program is C; it loads libstdc++ with dlopen and calls the operators
 * by their mangled names, exactly as compiled C++ code would, looked up in
 * the whole process (RTLD_DEFAULT): tide's own, which libtide.so exports
 * (on glibc, libstdc++'s, which call malloc).  A block from operator new
 * must be a tide block: on tide, malloc_usable_size() of a foreign pointer
 * aborts (checked in a child), and a 32 MiB new shows up in
 * tide_stats_get() as a huge block.  tide's operators reach libstdc++'s
 * new handler and std::bad_alloc even when libstdc++ came with dlopen
 * after tide (dlsym): a failed operator new with no handler throws, which
 * a C program cannot catch (std::terminate, checked in a child).  The C++
 * side (handlers, catching, every form from compiled C++) is
 * tests/api/cxx_ops.sh. */
#include "testhelper.h"
#include "api/progs/cxx_operators.h"

#include <signal.h>

typedef void *(*new_fn)(size_t);
typedef void *(*new_al_fn)(size_t, size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void (*del_fn)(void *);
typedef void (*del_sized_fn)(void *, size_t);
typedef void (*del_al_fn)(void *, size_t);

static struct {
    new_fn nw, na;                  /* operator new(size_t), new[](size_t) */
    new_al_fn nw_al;                /* operator new(size_t, align_val_t) */
    new_nothrow_fn nw_nothrow;      /* operator new(size_t, nothrow_t const&) */
    del_fn dl, da;                  /* operator delete(void*), delete[](void*) */
    del_sized_fn dl_sized;          /* operator delete(void*, size_t) */
    del_al_fn dl_al;                /* operator delete(void*, align_val_t) */
    const void *nothrow;            /* std::nothrow */
} cxx;

static bool load_libstdcxx(char *why, size_t n)
{
    void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL);
    if (!h) { snprintf(why, n, "dlopen(libstdc++.so.6): %s", dlerror()); return false; }
    /* RTLD_DEFAULT: the process's definitions, tide's first when it has them */
#define SYM(field, name) do { *(void **)&cxx.field = dlsym(RTLD_DEFAULT, name); \
        if (!cxx.field) { snprintf(why, n, "libstdc++ has no %s", name); return false; } } while (0)
    SYM(nw, "_Znwm");
    SYM(na, "_Znam");
    SYM(nw_al, "_ZnwmSt11align_val_t");
    SYM(nw_nothrow, "_ZnwmRKSt9nothrow_t");
    SYM(dl, "_ZdlPv");
    SYM(da, "_ZdaPv");
    SYM(dl_sized, "_ZdlPvm");
    SYM(dl_al, "_ZdlPvSt11align_val_t");
    SYM(nothrow, "_ZSt7nothrow");
#undef SYM
    return true;
}

static bool loaded;

static void libstdcxx_loads(void)
{
    char why[300];
    loaded = load_libstdcxx(why, sizeof why);
    if (!loaded) th_skip("%s", why);
}

/* In a child: blocks from operator new are blocks of this process's malloc. */
static void new_is_malloc_child(void *arg)
{
    (void)arg;
    static const size_t sizes[] = { 1, 24, 1000, 70000, 300000, 5 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = cxx.nw(sizes[i]);
        memset(p, 1, sizes[i]);
        if (malloc_usable_size(p) < sizes[i]) _exit(10);
        free(p);                     /* new and free: the same allocator underneath */
        char *a = cxx.na(sizes[i]);
        if (malloc_usable_size(a) < sizes[i]) _exit(11);
        cxx.da(a);
        char *q = malloc(sizes[i]);
        cxx.dl(q);                   /* and the other way round */
    }
    _exit(0);
}

/* operator new/new[] return blocks of the program's malloc, which free()
 * accepts, and operator delete accepts malloc's blocks (libstdc++ forwards
 * to malloc/free). */
static void new_delete_use_malloc(void)
{
    if (!loaded) { th_skip("libstdc++ not loaded"); return; }
    char sb[64];
    int st = th_in_child(new_is_malloc_child, NULL, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", th_status_str(st, sb, sizeof sb));
}

/* A 32 MiB operator new is a tide huge block; delete gives it back. */
static void new_is_tide(void)
{
    TIDE_ONLY();
    if (!loaded) { th_skip("libstdc++ not loaded"); return; }
    tide_trim();
    struct tide_stats a, b, c;
    tide_stats_get(&a);
    char *p = cxx.nw(32 * MiB);
    p[0] = 1;
    tide_stats_get(&b);
    cxx.dl_sized(p, 32 * MiB);
    tide_stats_get(&c);
    CHECKF(b.huge_bytes >= a.huge_bytes + 32 * MiB, "operator new(32 MiB): tide huge_bytes %zu -> %zu",
           a.huge_bytes, b.huge_bytes);
    CHECKF(c.huge_bytes == a.huge_bytes, "operator delete(p, 32 MiB): tide huge_bytes %zu -> %zu", b.huge_bytes,
           c.huge_bytes);
}

/* Aligned new (C++17) honours the alignment; nothrow new returns NULL for an
 * impossible size instead of throwing. */
static void aligned_and_nothrow_new(void)
{
    if (!loaded) { th_skip("libstdc++ not loaded"); return; }
    for (size_t al = 32; al <= 2 * MiB; al *= 4) {
        char *p = cxx.nw_al(100, al);
        CHECKF(p && th_aligned(p, al), "operator new(100, align %zu) = %p", al, (void *)p);
        if (p) {
            memset(p, 2, 100);
            CHECK(malloc_usable_size(p) >= 100);
        }
        cxx.dl_al(p, al);
    }
    void *p = cxx.nw_nothrow(th_opaque((size_t)PTRDIFF_MAX - 10), cxx.nothrow);
    CHECKF(p == NULL, "operator new(PTRDIFF_MAX - 10, nothrow) = %p", p);
    p = cxx.nw_nothrow(64, cxx.nothrow);
    CHECK(p != NULL);
    cxx.dl(p);
}

/* Every operator libstdc++ exports is tide's: C++ programs allocate with
 * malloc's fast path, without libstdc++'s wrapper around it. */
static void operators_are_tides(void)
{
    TIDE_ONLY();
    if (!loaded) { th_skip("libstdc++ not loaded"); return; }
    static const char *const names[] = { CXX_OPERATOR_NAMES };
    const char *tide_obj = th_object_of((void *)tide_version);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *obj = th_object_of(dlsym(RTLD_DEFAULT, names[i]));
        CHECKF(strcmp(obj, tide_obj) == 0, "%s comes from %s, tide is %s", names[i], obj, tide_obj);
    }
}

/* In a child: operator new of an impossible size, with no new handler. */
static void impossible_new_child(void *arg)
{
    (void)arg;
    void *p = cxx.nw(th_opaque((size_t)1 << 62));
    printf("returned %p\n", p);
    _exit(0);
}

/* A failed operator new throws std::bad_alloc (found with dlsym: libstdc++
 * came after tide); C cannot catch it, so the child ends in
 * std::terminate, which names the exception. */
static void failed_new_throws(void)
{
    if (!loaded) { th_skip("libstdc++ not loaded"); return; }
    int p[2];
    CHECK(pipe(p) == 0);
    int st = th_in_child(impossible_new_child, NULL, -1, p[1]);
    close(p[1]);
    char buf[512] = "";
    ssize_t k = read(p[0], buf, sizeof buf - 1);
    buf[k > 0 ? k : 0] = 0;
    close(p[0]);
    char sb[64];
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, "std::bad_alloc"),
           "operator new(2^62) with no handler: child %s, stderr \"%s\" (want std::terminate on std::bad_alloc)",
           th_status_str(st, sb, sizeof sb), buf);
}

int main(void)
{
    RUN(on_tide);
    RUN(libstdcxx_loads);
    RUN(operators_are_tides);
    RUN(new_delete_use_malloc);
    RUN(new_is_tide);
    RUN(aligned_and_nothrow_new);
    RUN(failed_new_throws);
    return th_summary();
}
