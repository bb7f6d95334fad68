/* override.c — the exported names: the standard allocation interface, the
 * glibc extensions and __libc_* aliases (so that every allocation in a
 * process under tide-run is tide's, libc's own included), C++'s operator
 * new and delete, and the tide_* API.  Nothing else leaves libtide.so
 * (check with nm -D).  Takes no lock itself: each name calls the layer that
 * does the work. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "tide_internal.h"

/* Everything here but malloc and free runs marked busy (scav.c): a reclaim
 * signal that interrupts it leaves the heap alone. */
#define BUSY(expr) ({ tidei_busy_enter(); __typeof__(expr) busy_r_ = (expr); tidei_busy_leave(); busy_r_; })

static bool is_pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* malloc, free and the plain forms of C++'s new and delete are the fast
 * paths themselves (alias names of tidei_malloc, tidei_free, tidei_new,
 * tidei_new_nothrow and tidei_delete, in tide_fast_text), not calls of
 * them.  An operator's extra arguments (std::nothrow, and in release
 * builds a sized or aligned delete's size and alignment) are ignored by
 * the fast path it names, as the calling convention allows. */
#pragma GCC diagnostic ignored "-Wattribute-alias"
#define FAST_ENTRY(type, name, impl) tide_export type name __attribute__((alias(#impl)))

typedef void *alloc_fn(size_t n);
typedef void free_fn(void *p);
FAST_ENTRY(alloc_fn, malloc, tidei_malloc);
FAST_ENTRY(free_fn, free, tidei_free);
void cfree(void *p);
FAST_ENTRY(free_fn, cfree, tidei_free);

tide_export void *calloc(size_t count, size_t size)
{
    return BUSY(tidei_calloc(count, size));
}

tide_export void *realloc(void *p, size_t n)
{
    return BUSY(tidei_realloc(p, n));
}

tide_export void *reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return BUSY(tidei_realloc(p, n));
}

/* aligned_alloc and memalign: any power-of-two alignment; anything else is
 * EINVAL (glibc's memalign rounds a bad alignment up; tide refuses it). */
tide_export void *aligned_alloc(size_t align, size_t n)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return BUSY(tidei_aligned(align, n));
}

tide_export void *memalign(size_t align, size_t n)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return BUSY(tidei_aligned(align, n));
}

tide_export int posix_memalign(void **out, size_t align, size_t n)
{
    if (!is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = BUSY(tidei_aligned(align, n));
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

tide_export void *valloc(size_t n)
{
    return BUSY(tidei_aligned(TIDE_PAGE_SIZE, n));
}

tide_export void *pvalloc(size_t n)
{
    size_t rounded = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (rounded < n) {
        errno = ENOMEM;
        return NULL;
    }
    return BUSY(tidei_aligned(TIDE_PAGE_SIZE, rounded ? rounded : TIDE_PAGE_SIZE));
}

tide_export size_t malloc_usable_size(void *p)
{
    return p ? BUSY(tidei_usable_size(p, "malloc_usable_size")) : 0;
}

/* Every heap gives back its empty spans (the caller's own here, the
 * others' from their reclaim signal handlers), then the empty spans of
 * exited threads, then every free page. */
static int trim(void)
{
    tidei_init();
    bool released = tidei_scav_reclaim_all();
    released |= tidei_heap_sweep_abandoned();
    released |= tidei_arena_trim();
    return released ? 1 : 0;
}

tide_export int tide_trim(void)
{
    return BUSY(trim());
}

tide_export int malloc_trim(size_t pad)
{
    (void)pad;
    return tide_trim();
}

/* Every glibc tunable is accepted and ignored: tide is tuned by TIDE_CONF. */
tide_export int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

/* glibc's fields, filled with tide's figures: arena = address space of the
 * chunks, uordblks = bytes in live small and large blocks, fordblks = the
 * rest of the chunks (free blocks, free pages), fsmblks = free small blocks
 * cached in heaps, hblks/hblkhd = live huge blocks and their bytes,
 * ordblks = blocks cached in heaps, usmblks = bytes mapped in all. */
tide_export struct mallinfo2 mallinfo2(void)
{
    struct tide_stats st;
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    tide_stats_get(&st);
    size_t cached_blocks = 0;
    for (int c = 0; c < TIDE_N_CLASSES; c++)
        cached_blocks += st.classes[c].cached_blocks;
    mi.arena = st.n_chunks * TIDE_CHUNK_SIZE;
    mi.ordblks = cached_blocks;
    mi.hblks = st.n_huge;
    mi.hblkhd = st.huge_bytes;
    mi.usmblks = st.mapped_bytes;
    mi.fsmblks = st.cached_bytes;
    mi.uordblks = st.small_live_bytes + st.large_live_bytes;
    mi.fordblks = mi.arena > mi.uordblks ? mi.arena - mi.uordblks : 0;
    mi.keepcost = 0;
    return mi;
}

tide_export struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = (int)m2.arena;
    mi.hblkhd = (int)m2.hblkhd;
    mi.uordblks = (int)m2.uordblks;
    mi.fordblks = (int)m2.fordblks;
    return mi;
}

tide_export void malloc_stats(void)
{
    tidei_stats_print(2);
}

/* XML in the shape glibc's malloc_info writes: one <heap> (tide's chunks),
 * whose <sizes> list the free blocks cached per size class, then totals. */
tide_export int malloc_info(int options, FILE *fp)
{
    if (options != 0 || !fp) {
        errno = EINVAL;
        return -1;
    }
    struct tide_stats st;
    tide_stats_get(&st);
    size_t free_count = 0, free_bytes = 0;
    fprintf(fp, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
    for (int c = 1; c < TIDE_N_CLASSES; c++) {
        const struct tide_class_stats *cs = &st.classes[c];
        size_t blocks = cs->cached_blocks + (c == 1 ? st.classes[0].cached_blocks : 0);
        if (!blocks)
            continue;
        size_t from = c == 1 ? 1 : st.classes[c - 1].block_size + 1;
        fprintf(fp, "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n", from, cs->block_size,
                blocks * cs->block_size, blocks);
        free_count += blocks;
        free_bytes += blocks * cs->block_size;
    }
    fprintf(fp, "</sizes>\n");
    fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
    fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", free_count, free_bytes + st.free_run_bytes);
    fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", st.n_chunks * TIDE_CHUNK_SIZE);
    fprintf(fp, "<system type=\"max\" size=\"%zu\"/>\n", st.n_chunks * TIDE_CHUNK_SIZE);
    fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", st.n_chunks * TIDE_CHUNK_SIZE);
    fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", st.n_chunks * TIDE_CHUNK_SIZE);
    fprintf(fp, "</heap>\n");
    fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
    fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", free_count, free_bytes + st.free_run_bytes);
    fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", st.n_huge, st.huge_bytes);
    fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", st.committed_bytes);
    fprintf(fp, "<system type=\"max\" size=\"%zu\"/>\n", st.mapped_bytes);
    fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", st.mapped_bytes);
    fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", st.mapped_bytes);
    fprintf(fp, "</malloc>\n");
    return 0;
}

/* ---- C++: operator new and delete ----
 *
 * Every form libstdc++ exports, by its mangled name (the Itanium C++ ABI):
 * new and new[] (_Znwm, _Znam), their nothrow (RKSt9nothrow_t) and aligned
 * (St11align_val_t, the alignment passed as a size_t) forms, and delete and
 * delete[] plain, nothrow, sized (m: the size as a size_t) and aligned.
 * They are C functions: libtide.so needs no C++ runtime, and a C program is
 * unaffected.  new is malloc's fast path itself, with a slow path of its
 * own (alloc.c); delete is free's (free.c).  Sizes and alignments given to
 * delete are checked against the block in debug builds only.
 *
 * On exhaustion, new does what the standard asks: it calls the program's
 * new handler (std::get_new_handler()) and tries again, and with no handler
 * throws std::bad_alloc.  Both come from libstdc++, found without linking
 * it: weak references, resolved when the process has libstdc++ (every C++
 * program does), else dlsym (a libstdc++ loaded later with dlopen).  An
 * exception cannot be caught in C, so the nothrow forms hand a failure with
 * a handler installed to libstdc++'s own nothrow operator (the next
 * definition after tide's, dlsym RTLD_NEXT), which calls tide's throwing
 * operator inside its own try block and returns NULL when it throws.
 * Without a handler they return NULL at once. */

typedef void (*new_handler_t)(void);
new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));  /* std::get_new_handler() */
void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));  /* std::__throw_bad_alloc() */

/* libstdc++'s function of that name, or NULL. */
static void *cxx_function(void *weak, const char *name)
{
    return weak ? weak : dlsym(RTLD_DEFAULT, name);
}

/* The program's new handler, or NULL. */
static new_handler_t new_handler(void)
{
    new_handler_t (*get)(void) = (new_handler_t (*)(void))cxx_function((void *)_ZSt15get_new_handlerv,
                                                                       "_ZSt15get_new_handlerv");
    return get ? get() : NULL;
}

static tide_noinline __attribute__((noreturn)) void throw_bad_alloc(size_t n)
{
    void (*thr)(void) = (void (*)(void))cxx_function((void *)_ZSt17__throw_bad_allocv, "_ZSt17__throw_bad_allocv");
    if (thr)
        thr();
    tidei_fatal("tide: operator new(%zu): out of memory (no std::bad_alloc to throw: no libstdc++)\n", n);
}

/* operator new of n bytes aligned to align (0: new's own alignment) found
 * no memory: the new-handler loop, then std::bad_alloc, or NULL for a
 * nothrow form.  Called with no tide lock held, not busy. */
tide_noinline void *tidei_override_new_failed(size_t n, size_t align, bool nothrow)
{
    if (align && !is_pow2(align)) {  /* what libstdc++ does with a bad alignment */
        if (nothrow)
            return NULL;
        throw_bad_alloc(n);
    }
    for (;;) {
        new_handler_t h = new_handler();
        if (!h) {
            if (nothrow)
                return NULL;
            throw_bad_alloc(n);
        }
        if (nothrow) {
            /* the handler may throw: let libstdc++ catch it */
            static const char tag = 0;
            if (align) {
                void *(*op)(size_t, size_t, const void *) =
                    (void *(*)(size_t, size_t, const void *))dlsym(RTLD_NEXT, "_ZnwmSt11align_val_tRKSt9nothrow_t");
                if (op)
                    return op(n, align, &tag);
            } else {
                void *(*op)(size_t, const void *) = (void *(*)(size_t, const void *))dlsym(RTLD_NEXT,
                                                                                          "_ZnwmRKSt9nothrow_t");
                if (op)
                    return op(n, &tag);
            }
            /* no libstdc++ after tide: a handler that throws ends the program
             * (std::terminate, as any exception out of a noexcept function) */
        }
        h();
        void *p = align ? BUSY(tidei_aligned(align, n)) : tidei_malloc(n);
        if (p)
            return p;
    }
}

static void *aligned_new(size_t n, size_t align, bool nothrow)
{
    void *p = is_pow2(align) ? BUSY(tidei_aligned(align, n)) : NULL;
    return tide_likely(p != NULL) ? p : tidei_override_new_failed(n, align, nothrow);
}

#if TIDE_DEBUG
/* The size of the blocks of the class operator new takes a request of n
 * bytes aligned to align (0: new's own) from, or 0 if it takes pages. */
static size_t new_class_size(size_t n, size_t align)
{
    if (n > TIDE_SMALL_MAX || align > TIDE_PAGE_SIZE)
        return 0;
    int cls = tidei_class_of(n);
    while (align > 16 && cls < TIDE_N_CLASSES && (tidei_class_size[cls] & (align - 1)) != 0)
        cls++;
    return cls < TIDE_N_CLASSES ? tidei_class_size[cls] : 0;
}

/* Debug builds: the size (if sized) and alignment (if not 0) given to a
 * delete of p must be ones operator new could have made p's block for;
 * otherwise the misuse is reported (like free's) and the process aborts. */
static tide_noinline void delete_check(void *p, size_t n, size_t align, bool sized)
{
    if (!p)
        return;
    tidei_busy_enter();
    tide_span_t *s = tidei_free_checked_span(p, "delete");
    if (align && !is_pow2(align))
        tidei_misuse("delete", p, "alignment %zu is not a power of two", align);
    if (align && ((uintptr_t)p & (align - 1)) != 0)
        tidei_misuse("delete", p, "block not aligned to %zu (not from the operator new of that alignment)", align);
    if (sized) {
        size_t usable = s->kind == TIDE_SPAN_SMALL ? s->block_size : s->n_pages << TIDE_PAGE_SHIFT;
        size_t pages = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
        bool ok;
        if (s->kind == TIDE_SPAN_SMALL)
            ok = s->block_size == new_class_size(n, align);
        else if (s->prof_site)  /* a sample: pages of its own */
            ok = n <= usable;
        else if (s->kind == TIDE_SPAN_LARGE)
            ok = pages == usable;
        else  /* huge: the cache may add up to 1/8 (huge.c) */
            ok = pages <= usable && usable - pages <= pages / 8;
        if (!ok)
            tidei_misuse("delete", p, "size %zu given, but the block (%zu bytes) was allocated for another size", n,
                         usable);
    }
    tidei_busy_leave();
}
#endif

void *_Znwm(size_t n);
void *_Znam(size_t n);
void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag);
void *_ZnamRKSt9nothrow_t(size_t n, const void *tag);
void *_ZnwmSt11align_val_t(size_t n, size_t align);
void *_ZnamSt11align_val_t(size_t n, size_t align);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag);
void _ZdlPv(void *p);
void _ZdaPv(void *p);
void _ZdlPvRKSt9nothrow_t(void *p, const void *tag);
void _ZdaPvRKSt9nothrow_t(void *p, const void *tag);
void _ZdlPvm(void *p, size_t n);
void _ZdaPvm(void *p, size_t n);
void _ZdlPvSt11align_val_t(void *p, size_t align);
void _ZdaPvSt11align_val_t(void *p, size_t align);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag);
void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align);
void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align);

typedef void *new_tag_fn(size_t n, const void *tag);
typedef void delete_tag_fn(void *p, const void *tag);
FAST_ENTRY(alloc_fn, _Znwm, tidei_new);
FAST_ENTRY(alloc_fn, _Znam, tidei_new);
FAST_ENTRY(new_tag_fn, _ZnwmRKSt9nothrow_t, tidei_new_nothrow);
FAST_ENTRY(new_tag_fn, _ZnamRKSt9nothrow_t, tidei_new_nothrow);

tide_export void *_ZnwmSt11align_val_t(size_t n, size_t align)
{
    return aligned_new(n, align, false);
}

tide_export void *_ZnamSt11align_val_t(size_t n, size_t align)
{
    return aligned_new(n, align, false);
}

tide_export void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag)
{
    (void)tag;
    return aligned_new(n, align, true);
}

tide_export void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag)
{
    (void)tag;
    return aligned_new(n, align, true);
}

FAST_ENTRY(free_fn, _ZdlPv, tidei_delete);
FAST_ENTRY(free_fn, _ZdaPv, tidei_delete);
FAST_ENTRY(delete_tag_fn, _ZdlPvRKSt9nothrow_t, tidei_delete);
FAST_ENTRY(delete_tag_fn, _ZdaPvRKSt9nothrow_t, tidei_delete);

#if TIDE_DEBUG
/* Debug builds check a sized or aligned delete against the block. */

tide_export tide_fast_text void _ZdlPvm(void *p, size_t n)
{
    if (tidei_debug)
        delete_check(p, n, 0, true);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdaPvm(void *p, size_t n)
{
    if (tidei_debug)
        delete_check(p, n, 0, true);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdlPvSt11align_val_t(void *p, size_t align)
{
    if (tidei_debug)
        delete_check(p, 0, align, false);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdaPvSt11align_val_t(void *p, size_t align)
{
    if (tidei_debug)
        delete_check(p, 0, align, false);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
    (void)tag;
    if (tidei_debug)
        delete_check(p, 0, align, false);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
    (void)tag;
    if (tidei_debug)
        delete_check(p, 0, align, false);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align)
{
    if (tidei_debug)
        delete_check(p, n, align, true);
    tidei_delete(p);
}

tide_export tide_fast_text void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align)
{
    if (tidei_debug)
        delete_check(p, n, align, true);
    tidei_delete(p);
}
#else
typedef void delete_size_fn(void *p, size_t n);
typedef void delete_size_tag_fn(void *p, size_t n, const void *tag);
typedef void delete_size_align_fn(void *p, size_t n, size_t align);
FAST_ENTRY(delete_size_fn, _ZdlPvm, tidei_delete);
FAST_ENTRY(delete_size_fn, _ZdaPvm, tidei_delete);
FAST_ENTRY(delete_size_fn, _ZdlPvSt11align_val_t, tidei_delete);
FAST_ENTRY(delete_size_fn, _ZdaPvSt11align_val_t, tidei_delete);
FAST_ENTRY(delete_size_tag_fn, _ZdlPvSt11align_val_tRKSt9nothrow_t, tidei_delete);
FAST_ENTRY(delete_size_tag_fn, _ZdaPvSt11align_val_tRKSt9nothrow_t, tidei_delete);
FAST_ENTRY(delete_size_align_fn, _ZdlPvmSt11align_val_t, tidei_delete);
FAST_ENTRY(delete_size_align_fn, _ZdaPvmSt11align_val_t, tidei_delete);
#endif

/* Whether fn is one of the operators above, through which a C++ program
 * enters tide (the profiler's stacks start at their caller: prof.c). */
bool tidei_override_is_entry(uintptr_t fn)
{
    static void *const entries[] = {
        (void *)_Znwm, (void *)_Znam, (void *)_ZnwmRKSt9nothrow_t, (void *)_ZnamRKSt9nothrow_t,
        (void *)_ZnwmSt11align_val_t, (void *)_ZnamSt11align_val_t, (void *)_ZnwmSt11align_val_tRKSt9nothrow_t,
        (void *)_ZnamSt11align_val_tRKSt9nothrow_t, (void *)tidei_override_new_failed,
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if ((uintptr_t)entries[i] == fn)
            return true;
    return false;
}

tide_export const char *tide_version(void)
{
    return "tide 0.1";
}

/* glibc's internal names, used by some programs and by libc itself.  (The
 * aliases do not repeat the targets' attributes from glibc's headers.) */
#pragma GCC diagnostic ignored "-Wmissing-attributes"
tide_export void *__libc_malloc(size_t n) __attribute__((alias("malloc")));
tide_export void __libc_free(void *p) __attribute__((alias("free")));
tide_export void *__libc_calloc(size_t c, size_t n) __attribute__((alias("calloc")));
tide_export void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc")));
tide_export void *__libc_memalign(size_t a, size_t n) __attribute__((alias("memalign")));
tide_export void *__libc_valloc(size_t n) __attribute__((alias("valloc")));
tide_export void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc")));
tide_export int __posix_memalign(void **out, size_t a, size_t n) __attribute__((alias("posix_memalign")));

/* ---- tide's own entry points, by name (glibc.c, and the misuse report
 * that names the caller) ---- */

/* Hidden aliases give the address of tide's own definition; the exported
 * name, taken as an address, is whichever definition the process's symbol
 * search finds first (glibc's, when tide was loaded with dlopen). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  /* mallinfo */
#define OWN(f) extern __typeof__(f) own_##f __attribute__((alias(#f), visibility("hidden")))
OWN(malloc); OWN(free); OWN(cfree); OWN(calloc); OWN(realloc); OWN(reallocarray); OWN(aligned_alloc);
OWN(memalign); OWN(posix_memalign); OWN(valloc); OWN(pvalloc); OWN(malloc_usable_size); OWN(malloc_trim);
OWN(mallopt); OWN(mallinfo); OWN(mallinfo2); OWN(malloc_stats); OWN(malloc_info);
#undef OWN

/* Every standard allocation name libtide.so exports (tests/api/exports.sh
 * checks the list against nm -D).  The glibc aliases point at the same
 * functions as the names they alias. */
const tidei_entry_t tidei_override_entries[] = {
    { "malloc", (void *)own_malloc },
    { "free", (void *)own_free },
    { "cfree", (void *)own_cfree },
    { "calloc", (void *)own_calloc },
    { "realloc", (void *)own_realloc },
    { "reallocarray", (void *)own_reallocarray },
    { "aligned_alloc", (void *)own_aligned_alloc },
    { "memalign", (void *)own_memalign },
    { "posix_memalign", (void *)own_posix_memalign },
    { "valloc", (void *)own_valloc },
    { "pvalloc", (void *)own_pvalloc },
    { "malloc_usable_size", (void *)own_malloc_usable_size },
    { "malloc_trim", (void *)own_malloc_trim },
    { "mallopt", (void *)own_mallopt },
    { "mallinfo", (void *)own_mallinfo },
    { "mallinfo2", (void *)own_mallinfo2 },
    { "malloc_stats", (void *)own_malloc_stats },
    { "malloc_info", (void *)own_malloc_info },
    { "__libc_malloc", (void *)own_malloc },
    { "__libc_free", (void *)own_free },
    { "__libc_calloc", (void *)own_calloc },
    { "__libc_realloc", (void *)own_realloc },
    { "__libc_memalign", (void *)own_memalign },
    { "__libc_valloc", (void *)own_valloc },
    { "__libc_pvalloc", (void *)own_pvalloc },
    { "__posix_memalign", (void *)own_posix_memalign },
};
const size_t tidei_override_n_entries = sizeof tidei_override_entries / sizeof tidei_override_entries[0];

void *tidei_override_entry(const char *name)
{
    for (size_t i = 0; i < tidei_override_n_entries; i++)
        if (strcmp(tidei_override_entries[i].name, name) == 0)
            return tidei_override_entries[i].fn;
    return NULL;
}
