/* override.c — the exported names: the standard allocation interface, the
 * glibc extensions and __libc_* aliases (so that every allocation in a
 * process under tide-run is tide's, libc's own included), and the tide_*
 * API.  Nothing else leaves libtide.so (check with nm -D). */
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

tide_export tide_fast_text void *malloc(size_t n)
{
    return tidei_malloc(n);
}

tide_export tide_fast_text void free(void *p)
{
    tidei_free(p);
}

void cfree(void *p);
tide_export tide_fast_text void cfree(void *p)
{
    tidei_free(p);
}

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
    return BUSY(tidei_aligned(align, n, "aligned_alloc"));
}

tide_export void *memalign(size_t align, size_t n)
{
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return BUSY(tidei_aligned(align, n, "memalign"));
}

tide_export int posix_memalign(void **out, size_t align, size_t n)
{
    if (!is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = BUSY(tidei_aligned(align, n, "posix_memalign"));
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

tide_export void *valloc(size_t n)
{
    return BUSY(tidei_aligned(TIDE_PAGE_SIZE, n, "valloc"));
}

tide_export void *pvalloc(size_t n)
{
    size_t rounded = (n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    if (rounded < n) {
        errno = ENOMEM;
        return NULL;
    }
    return BUSY(tidei_aligned(TIDE_PAGE_SIZE, rounded ? rounded : TIDE_PAGE_SIZE, "pvalloc"));
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
    bool released = tidei_reclaim_all();
    released |= tidei_abandoned_sweep();
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
const tidei_entry_t tidei_entries[] = {
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
const size_t tidei_n_entries = sizeof tidei_entries / sizeof tidei_entries[0];

void *tidei_entry(const char *name)
{
    for (size_t i = 0; i < tidei_n_entries; i++)
        if (strcmp(tidei_entries[i].name, name) == 0)
            return tidei_entries[i].fn;
    return NULL;
}
