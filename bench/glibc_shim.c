/* glibc_shim.c — LD_PRELOAD object that routes the allocation functions to
 * glibc's own malloc.  Not a benchmark.
 *
 * Some real programs are linked against another allocator: Debian's
 * redis-server links libjemalloc.so.2 (dynamically; Debian's jemalloc has no
 * symbol prefix, so it defines malloc, free, ... itself).  Run with no
 * preload, such a program uses jemalloc, not glibc, so the "glibc" column
 * would be wrong.  bench/run.sh preloads this object for the glibc run of
 * any program whose ldd output names jemalloc, tcmalloc or mimalloc: the
 * calls land in glibc's __libc_* entry points, which glibc exports for
 * exactly this purpose.  bench/run.sh then checks, from the dynamic linker's
 * LD_DEBUG=bindings log, that every reference to malloc, free, calloc,
 * realloc and malloc_usable_size in the process (redis-server's, libc's,
 * libjemalloc's own) is bound to this object.
 *
 * What still reaches the linked jemalloc in redis-server, under this shim
 * and under every preloaded allocator alike (tide's run included): mallctl
 * (the allocator figures of INFO memory, refreshed by serverCron, and the
 * background-thread switch at start-up), malloc_stats_print (MEMORY
 * MALLOC-STATS) and nallocx, which sdsResize compares with
 * malloc_usable_size to skip a realloc when the block already has the size
 * jemalloc would give it; that only ever skips a realloc and never assumes
 * more room than malloc_usable_size reports, so it is safe under any
 * allocator.  These calls are cheap and the same for every peer.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

#define EXPORT __attribute__((visibility("default")))

/* glibc's malloc_usable_size, looked up in libc.so.6 itself: the name alone
 * would resolve to the program's linked allocator. */
static size_t (*libc_usable_size)(void *);

__attribute__((constructor)) static void shim_init(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc)
        libc_usable_size = (size_t (*)(void *))dlsym(libc, "malloc_usable_size");
}

EXPORT void *malloc(size_t size) { return __libc_malloc(size); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
EXPORT void *realloc(void *p, size_t size) { return __libc_realloc(p, size); }
EXPORT void *memalign(size_t align, size_t size) { return __libc_memalign(align, size); }
EXPORT void *valloc(size_t size) { return __libc_valloc(size); }
EXPORT void *pvalloc(size_t size) { return __libc_pvalloc(size); }
EXPORT void cfree(void *p) { __libc_free(p); }

EXPORT void *aligned_alloc(size_t align, size_t size)
{
    return __libc_memalign(align, size);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (align == 0 || align % sizeof(void *) != 0 || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, total);
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (libc_usable_size == NULL)
        shim_init();
    return libc_usable_size(p);
}
