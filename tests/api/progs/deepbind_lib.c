/* api/progs/deepbind_lib.c — a plugin that tests/api/progs/deepbind.c loads
 * with dlopen(RTLD_DEEPBIND) (built by tests/api/deepbind.sh, three ways):
 *   libdeep_now.so    linked -z now, loaded RTLD_NOW: bound at load
 *   libdeep_lazy.so   linked -z lazy, loaded RTLD_LAZY: each call bound at
 *                     its first use
 *   libdeep_own.so    -DOWN_ALLOCATOR: defines malloc, free, calloc and
 *                     realloc itself (a bump allocator), which its own calls
 *                     must keep using
 * Its symbol searches start in itself and its dependencies (libc.so.6), so
 * its malloc and free are the ones libc's symbol table names. */
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>

#ifdef OWN_ALLOCATOR
/* The plugin's own allocator: a bump pointer over a static arena. */
static _Alignas(16) char arena[1 << 20];
static size_t arena_used;
unsigned long deep_own_calls;   /* calls of the functions below */

void *malloc(size_t n)
{
    __atomic_fetch_add(&deep_own_calls, 1, __ATOMIC_RELAXED);
    size_t at = __atomic_fetch_add(&arena_used, (n + 15) & ~(size_t)15, __ATOMIC_RELAXED);
    return at + n <= sizeof arena ? arena + at : NULL;
}
void free(void *p)
{
    (void)p;
    __atomic_fetch_add(&deep_own_calls, 1, __ATOMIC_RELAXED);
}
void *calloc(size_t c, size_t n)
{
    return malloc(c * n);   /* the arena is zero and never reused */
}
void *realloc(void *p, size_t n)
{
    void *q = malloc(n);
    if (q && p)
        memcpy(q, p, n);    /* may read past p's end, inside the arena */
    return q;
}
int deep_in_own_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}
#endif

/* Every allocation call, made from inside the plugin. */
void *deep_malloc(size_t n) { return malloc(n); }
void *deep_calloc(size_t c, size_t n) { return calloc(c, n); }
void *deep_realloc(void *p, size_t n) { return realloc(p, n); }
void deep_free(void *p) { free(p); }
#ifndef OWN_ALLOCATOR
void *deep_reallocarray(void *p, size_t c, size_t n) { return reallocarray(p, c, n); }
void *deep_aligned_alloc(size_t a, size_t n) { return aligned_alloc(a, n); }
void *deep_memalign(size_t a, size_t n) { return memalign(a, n); }
void *deep_valloc(size_t n) { return valloc(n); }
int deep_posix_memalign(void **out, size_t a, size_t n) { return posix_memalign(out, a, n); }
size_t deep_usable_size(void *p) { return malloc_usable_size(p); }
char *deep_strdup(const char *s) { return strdup(s); }   /* libc allocates: through the global scope */

/* Addresses taken in data: relocations other than the PLT's. */
void *(*deep_malloc_ptr)(size_t) = malloc;
void (*deep_free_ptr)(void *) = free;
#endif

/* A name the main program defines too: deep binding gives the plugin its
 * own, and must go on doing so (only the allocation functions change). */
int deep_shared_name(void) { return 2; }
int deep_which_shared_name(void) { return deep_shared_name(); }
