/* api/basic.c — the standard allocation interface, exactly as a user calls it.
 * th-static: yes
 *
 * Built three ways by tests/run.sh: linked with libtide.so (api/basic), linked
 * with $BUILD/libtide.a (api/basic-static, -DTH_STATIC, asked for by the
 * th-static line above), and with TIDE_TESTS_GLIBC=1
 * against glibc alone (TH_TIDE=0), where the tide-specific tests are skipped
 * and the rest must pass too (they test the standard, not tide's quirks). */
#include "testhelper.h"

#include <limits.h>

static const size_t page = 4096;

/* Every public allocation name resolves to tide's definition: in libtide.so
 * for the shared build, in the executable itself for the static build.  A
 * function left out of override.c would resolve to glibc's. */
static void symbols_are_tide(void)
{
    TIDE_ONLY();
    static const char *const names[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "aligned_alloc",
        "posix_memalign", "memalign", "valloc", "pvalloc", "malloc_usable_size",
        "malloc_trim", "mallopt", "mallinfo", "mallinfo2", "malloc_stats", "malloc_info", "cfree",
        "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
        "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
        "tide_version", "tide_stats_get", "tide_trim", "tide_stats_heaps", "tide_stats_print", "tide_heap_walk",
        "tide_block_info",
    };
#ifdef TH_STATIC
    /* dladdr names the executable as argv[0]-like path; compare with the
     * object that holds main(). */
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s", th_object_of((void *)&th_summary));
#else
    const char *want = "libtide.so";
#endif
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        const char *obj = th_object_of(f);
#ifdef TH_STATIC
        CHECKF(f && strcmp(obj, want) == 0, "%s resolves to %s, not the executable %s", names[i], obj, want);
#else
        CHECKF(f && strstr(obj, want), "%s resolves to %s, not %s", names[i], obj, want);
#endif
    }
    /* The addresses the program itself calls are the same ones. */
    CHECK((void *)&malloc == dlsym(RTLD_DEFAULT, "malloc"));
    CHECK((void *)&free == dlsym(RTLD_DEFAULT, "free"));
    CHECK((void *)&__libc_malloc == dlsym(RTLD_DEFAULT, "__libc_malloc"));
}

static void aliases_child(void *arg)
{
    (void)arg;
    /* Blocks from the glibc aliases are freed by free(), and the reverse: if
     * any alias were glibc's, tide's misuse check (or glibc's) would abort. */
    char *a = __libc_malloc(100);
    if (!a) _exit(10);
    memset(a, 1, 100);
    if (malloc_usable_size(a) < 100) _exit(11);
    free(a);
    char *b = malloc(200);
    memset(b, 2, 200);
    __libc_free(b);
    char *c = __libc_calloc(50, 20);
    if (!c || !th_is_zero(c, 1000)) _exit(12);
    c = __libc_realloc(c, 100000);
    if (!c || !th_is_zero(c, 1000)) _exit(13);
    free(c);
    char *d = __libc_memalign(4096, 5000);
    if (!d || !th_aligned(d, 4096)) _exit(14);
    d = realloc(d, 50);
    __libc_free(d);
    struct tide_stats st;
    if (tide_stats_get(&st) != 0 || st.mapped_bytes == 0) _exit(15);
    _exit(0);
}

/* __libc_malloc and friends (glibc's internal aliases, which some programs
 * call directly) are tide's: their blocks mix freely with malloc/free. */
static void glibc_aliases(void)
{
    TIDE_ONLY();
    char buf[64];
    int st = th_in_child(aliases_child, NULL, -1, -1);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child mixing __libc_* and malloc/free: %s",
           th_status_str(st, buf, sizeof buf));
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* malloc(0) returns a unique, non-NULL, freeable pointer every time. */
static void malloc_zero_unique(void)
{
    enum { N = 2000 };
    void **p = malloc(N * sizeof *p);
    for (int i = 0; i < N; i++) {
        p[i] = malloc(th_opaque(0));
        CHECKF(p[i] != NULL, "malloc(0) #%d returned NULL", i);
    }
    void **s = malloc(N * sizeof *s);
    memcpy(s, p, N * sizeof *s);
    qsort(s, N, sizeof *s, cmp_ptr);
    for (int i = 1; i < N; i++)
        CHECKF(s[i] != s[i - 1], "malloc(0) returned %p twice", s[i]);
    for (int i = 0; i < N; i++) free(p[i]);
    /* calloc(0, x) and calloc(x, 0) too */
    void *c1 = calloc(0, th_opaque(100)), *c2 = calloc(th_opaque(100), 0);
    CHECK(c1 && c2 && c1 != c2);
    free(c1); free(c2);
    free(s); free(p);
}

/* Every block of 16 bytes or more is 16-aligned (max_align_t), whatever its
 * size class; smaller ones at least 8-aligned from 8 bytes on. */
static void default_alignment(void)
{
    static void *keep[5000];
    int k = 0;
    for (size_t n = 1; n <= 4096 && !TH_FAILED(); n += (n < 300 ? 1 : 37)) {
        void *p = malloc(th_opaque(n));
        CHECKF(p, "malloc(%zu) = NULL", n);
        if (n >= 16) CHECKF(th_aligned(p, 16), "malloc(%zu) = %p not 16-aligned", n, p);
        else if (n >= 8) CHECKF(th_aligned(p, 8), "malloc(%zu) = %p not 8-aligned", n, p);
        keep[k++] = p;
    }
    static const size_t big[] = { 5000, 20000, 65536, 100000, 262144, 1000000, 3 * MiB + 5, 17 * MiB + 3 };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        void *p = malloc(th_opaque(big[i]));
        CHECKF(p && th_aligned(p, 16), "malloc(%zu) = %p", big[i], p);
        void *c = calloc(1, th_opaque(big[i]));
        CHECKF(c && th_aligned(c, 16), "calloc(1, %zu) = %p", big[i], c);
        void *r = realloc(NULL, th_opaque(big[i]));
        CHECKF(r && th_aligned(r, 16), "realloc(NULL, %zu) = %p", big[i], r);
        free(p); free(c); free(r);
    }
    while (k) free(keep[--k]);
}

/* One aligned allocation: checks the result, writes the whole request. */
static void check_aligned_block(const char *fn, void *p, size_t align, size_t n)
{
    CHECKF(p != NULL, "%s(align %zu, size %zu) = NULL (errno %d)", fn, align, n, errno);
    if (!p) return;
    CHECKF(th_aligned(p, align), "%s(align %zu, size %zu) = %p, misaligned", fn, align, n, p);
    CHECKF(malloc_usable_size(p) >= n, "%s(align %zu, size %zu): usable size %zu", fn, align, n,
           malloc_usable_size(p));
    th_fill(p, n, TH_SEED(p, n));
}

/* aligned_alloc, posix_memalign and memalign honour every power-of-two
 * alignment from 8 to 8 MiB, for sizes below, at and above the alignment;
 * the blocks are writable over the whole request and stay intact. */
static void aligned_allocs(void)
{
    enum { MAXB = 64 * 4 * 3 };
    static void *blk[MAXB];
    static size_t blk_n[MAXB];
    int k = 0;
    for (size_t align = 8; align <= 8 * MiB; align *= 2) {
        size_t sizes[4] = { 1, align / 2 + 1, align, align + 24 };
        for (int s = 0; s < 4; s++) {
            size_t n = sizes[s];
            void *p;
            errno = 0;
            p = aligned_alloc(align, th_opaque(n));
            check_aligned_block("aligned_alloc", p, align, n);
            blk[k] = p; blk_n[k++] = n;
            p = NULL;
            int r = posix_memalign(&p, align, th_opaque(n));
            CHECKF(r == 0, "posix_memalign(align %zu, size %zu) returned %d", align, n, r);
            if (r == 0) check_aligned_block("posix_memalign", p, align, n);
            blk[k] = r == 0 ? p : NULL; blk_n[k++] = n;
            p = memalign(align, th_opaque(n));
            check_aligned_block("memalign", p, align, n);
            blk[k] = p; blk_n[k++] = n;
        }
        /* Keep at most the last few alignment rounds alive to bound memory. */
        if (align >= 512 * KiB) {
            for (int i = 0; i < k; i++) {
                if (blk[i]) CHECKF(th_verify(blk[i], blk_n[i], TH_SEED(blk[i], blk_n[i])),
                                   "aligned block %p (size %zu) corrupted", blk[i], blk_n[i]);
                free(blk[i]);
            }
            k = 0;
        }
    }
    for (int i = 0; i < k; i++) {
        if (blk[i]) CHECKF(th_verify(blk[i], blk_n[i], TH_SEED(blk[i], blk_n[i])),
                           "aligned block %p (size %zu) corrupted", blk[i], blk_n[i]);
        free(blk[i]);
    }
    /* Alignments below sizeof(void*) are valid for aligned_alloc and memalign. */
    for (size_t align = 1; align < 8; align *= 2) {
        void *p = aligned_alloc(align, th_opaque(10));
        check_aligned_block("aligned_alloc", p, align, 10);
        free(p);
        p = memalign(align, th_opaque(10));
        check_aligned_block("memalign", p, align, 10);
        free(p);
    }
    /* Many small aligned blocks in a row do not overlap. */
    void *v[64];
    for (int i = 0; i < 64; i++) {
        v[i] = aligned_alloc(64, 64);
        check_aligned_block("aligned_alloc", v[i], 64, 64);
    }
    for (int i = 0; i < 64; i++) {
        if (v[i]) CHECK(th_verify(v[i], 64, TH_SEED(v[i], 64)));
        free(v[i]);
    }
}

/* valloc is page-aligned; pvalloc is page-aligned with the size rounded up
 * to whole pages (the whole rounded size is usable and writable). */
static void valloc_pvalloc(void)
{
    CHECK(sysconf(_SC_PAGESIZE) == (long)page);
    static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 10000, 300000, 5 * MiB + 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = valloc(th_opaque(n));
        check_aligned_block("valloc", p, page, n);
        free(p);
        size_t rounded = (n + page - 1) & ~(page - 1);
        p = pvalloc(th_opaque(n));
        check_aligned_block("pvalloc", p, page, rounded);
        free(p);
    }
    void *p = pvalloc(th_opaque(0));
    CHECK(p != NULL && th_aligned(p, page));
    free(p);
}

/* posix_memalign: an alignment that is not a power of two or not a multiple
 * of sizeof(void*) returns EINVAL (and allocates nothing). */
static void bad_alignment_posix_memalign(void)
{
    static const size_t bad[] = { 0, 1, 2, 4, 3, 12, 24, 48, 100, 4097, (size_t)1 << 63 | 8, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1;
        int r = posix_memalign(&p, th_opaque(bad[i]), 64);
        CHECKF(r == EINVAL, "posix_memalign(align %zu) returned %d, not EINVAL", bad[i], r);
        if (r == 0) free(p);
    }
}

/* aligned_alloc and memalign: an alignment that is not a power of two (0
 * included) returns NULL with errno EINVAL.  (glibc 2.36 rounds it up
 * instead, so this is tide's stricter promise.) */
static void bad_alignment_aligned_alloc_memalign(void)
{
    TIDE_ONLY();
    static const size_t bad[] = { 0, 3, 12, 24, 48, 100, 4097, 3 * MiB, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = aligned_alloc(th_opaque(bad[i]), 64);
        CHECKF(p == NULL && errno == EINVAL, "aligned_alloc(align %zu) = %p errno %d", bad[i], p, errno);
        free(p);
        errno = 0;
        p = memalign(th_opaque(bad[i]), 64);
        CHECKF(p == NULL && errno == EINVAL, "memalign(align %zu) = %p errno %d", bad[i], p, errno);
        free(p);
    }
}

#define EXPECT_ENOMEM(call) do { \
        errno = 0; \
        void *r_ = (call); \
        CHECKF(r_ == NULL && errno == ENOMEM, "%s = %p, errno %d (want NULL, ENOMEM)", #call, r_, errno); \
        if (r_) free(r_); \
    } while (0)

/* Sizes that cannot be served, overflow in calloc/reallocarray and in the
 * rounding of pvalloc/aligned sizes: NULL with errno ENOMEM, never a short
 * block. */
static void overflow_enomem(void)
{
    const size_t big = th_opaque(SIZE_MAX), pd = th_opaque((size_t)PTRDIFF_MAX);
    EXPECT_ENOMEM(malloc(big));
    EXPECT_ENOMEM(malloc(pd + 1));
    EXPECT_ENOMEM(malloc(pd));
    EXPECT_ENOMEM(malloc(big - page));
    EXPECT_ENOMEM(calloc(big / 2 + 1, 2));
    EXPECT_ENOMEM(calloc(th_opaque((size_t)1 << 33), th_opaque((size_t)1 << 33)));
    EXPECT_ENOMEM(calloc(th_opaque(1), pd + 1));
    EXPECT_ENOMEM(realloc(NULL, big));
    EXPECT_ENOMEM(reallocarray(NULL, big / 2 + 1, 2));
    EXPECT_ENOMEM(aligned_alloc(16, big));
    EXPECT_ENOMEM(aligned_alloc(4096, big - 100));
    EXPECT_ENOMEM(aligned_alloc(4 * MiB, pd + 1));
    EXPECT_ENOMEM(memalign(4096, big - 5000));
    EXPECT_ENOMEM(memalign(64, pd + 1));
    EXPECT_ENOMEM(valloc(big));
    EXPECT_ENOMEM(valloc(big - 10));
    EXPECT_ENOMEM(pvalloc(big));      /* rounding up to a page wraps to 0 */
    EXPECT_ENOMEM(pvalloc(big - 10));
    void *p = (void *)0x1;
    int r = posix_memalign(&p, 64, big - 100);
    CHECKF(r == ENOMEM, "posix_memalign(64, SIZE_MAX-100) returned %d", r);
    r = posix_memalign(&p, 8 * MiB, pd + 1);
    CHECKF(r == ENOMEM, "posix_memalign(8 MiB, PTRDIFF_MAX+1) returned %d", r);
    /* The process still allocates normally afterwards. */
    void *q = malloc(100);
    CHECK(q != NULL);
    free(q);
}

/* A failed realloc/reallocarray leaves the old block intact, readable and
 * freeable (for a small, a large and a huge block). */
static void failed_realloc_keeps_block(void)
{
    static const size_t sizes[] = { 40, 3000, 300 * KiB, 20 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *p = malloc(n);
        CHECK(p);
        if (!p) continue;
        th_fill(p, n, 77 + n);
        errno = 0;
        void *r = realloc(th_opaque_ptr(p), th_opaque(SIZE_MAX - 4096));
        CHECKF(r == NULL && errno == ENOMEM, "realloc(%zu-byte block, SIZE_MAX-4096) = %p errno %d", n, r, errno);
        errno = 0;
        r = realloc(th_opaque_ptr(p), th_opaque((size_t)PTRDIFF_MAX + 1));
        CHECKF(r == NULL && errno == ENOMEM, "realloc(%zu-byte block, PTRDIFF_MAX+1) = %p errno %d", n, r, errno);
        errno = 0;
        r = reallocarray(th_opaque_ptr(p), th_opaque(SIZE_MAX / 3), 5);
        CHECKF(r == NULL && errno == ENOMEM, "reallocarray(%zu-byte block, overflow) = %p errno %d", n, r, errno);
        CHECKF(th_verify(p, n, 77 + n), "%zu-byte block changed by a failed realloc", n);
        CHECK(malloc_usable_size(p) >= n);
        free(p);
    }
}

/* reallocarray multiplies without overflow and keeps contents. */
static void reallocarray_works(void)
{
    int *a = reallocarray(NULL, 100, sizeof(int));
    CHECK(a);
    if (!a) return;
    for (int i = 0; i < 100; i++) a[i] = i * 7;
    a = reallocarray(a, 100000, sizeof(int));
    CHECK(a);
    if (!a) return;
    for (int i = 0; i < 100; i++) CHECK(a[i] == i * 7);
    a[99999] = 5;
    a = reallocarray(a, 10, sizeof(int));
    CHECK(a && a[9] == 63);
    free(a);
}

/* malloc_usable_size(p) >= the request, the whole usable size is writable
 * without touching neighbours, size classes waste at most 12.5 % (+16 bytes)
 * from 129 bytes to 64 KiB and are 16 bytes apart from 64 to 128 bytes. */
static void usable_size(void)
{
    CHECK(malloc_usable_size(NULL) == 0);
    for (size_t n = 1; n <= 64 * KiB && !TH_FAILED(); n++) {
        void *p = malloc(th_opaque(n));
        size_t u = malloc_usable_size(p);
        CHECKF(p && u >= n, "malloc(%zu): usable size %zu", n, u);
        if (n >= 64 && n <= 128)
            CHECKF(u < n + 16, "malloc(%zu): usable size %zu, classes must be 16 bytes apart up to 128", n, u);
        if (n > 128)
            CHECKF(u <= n + n / 8 + 16, "malloc(%zu): usable size %zu wastes more than 12.5 %%", n, u);
        free(p);
    }
    /* Larger blocks: usable >= request, and at most 12.5 % + a page above it. */
    for (size_t n = 64 * KiB + 1; n <= 64 * MiB; n = n * 5 / 3 + 4093) {
        void *p = malloc(n);
        size_t u = malloc_usable_size(p);
        CHECKF(p && u >= n && u <= n + n / 8 + page, "malloc(%zu): usable size %zu", n, u);
        free(p);
    }
}

/* The whole usable size can be written: blocks of each class filled over
 * their usable size do not overwrite each other. */
static void usable_size_writable(void)
{
    enum { K = 40 };
    static const size_t sizes[] = { 1, 8, 15, 16, 17, 24, 33, 48, 64, 65, 100, 128, 129, 200, 256, 500,
                                    1000, 1024, 1500, 3000, 4096, 5000, 10000, 30000, 65536,
                                    70000, 200000, 262144, 600000, 1000000, 3 * MiB };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        int k = n > 100000 ? 4 : K;
        void *b[K];
        size_t u[K];
        for (int i = 0; i < k; i++) {
            b[i] = malloc(n);
            u[i] = malloc_usable_size(b[i]);
            th_fill(b[i], u[i], TH_SEED(b[i], u[i]));
        }
        for (int i = 0; i < k; i++) {
            CHECKF(th_verify(b[i], u[i], TH_SEED(b[i], u[i])),
                   "malloc(%zu) #%d: usable bytes (%zu) overwritten by a neighbour", n, i, u[i]);
            free(b[i]);
        }
    }
}

/* calloc returns zeroed memory even when it reuses blocks that were freed
 * dirty: small, medium, large and huge, each filled with 0xAA then freed. */
static void calloc_zeroes_reused(void)
{
    static const size_t sizes[] = { 8, 24, 100, 1000, 4000, 20000, 100000, 300000, MiB, 5 * MiB, 20 * MiB };
    enum { NS = sizeof sizes / sizeof sizes[0], K = 16 };
    for (int round = 0; round < 3; round++) {
        for (size_t s = 0; s < NS; s++) {
            size_t n = sizes[s];
            int k = n >= MiB ? 2 : K;
            void *b[K];
            for (int i = 0; i < k; i++) {
                b[i] = malloc(n);
                memset(b[i], 0xAA, malloc_usable_size(b[i]));
            }
            for (int i = 0; i < k; i++) free(b[i]);
            for (int i = 0; i < k; i++) {
                /* vary the factorisation; same total */
                b[i] = (i & 1) ? calloc(n, 1) : calloc(1, n);
                CHECKF(b[i] && th_is_zero(b[i], n), "calloc(%zu) after freeing dirty blocks: not zero", n);
            }
            for (int i = 0; i < k; i++) {
                memset(b[i], 0xAA, n);
                free(b[i]);
            }
        }
    }
    /* A block shrunk in place keeps a dirty tail; a later calloc must not see it. */
    for (int i = 0; i < 50; i++) {
        char *p = malloc(4000);
        memset(p, 0xAA, 4000);
        p = realloc(p, 100);
        free(p);
        char *c = calloc(1, 4000);
        CHECK(c && th_is_zero(c, 4000));
        free(c);
    }
}

/* realloc keeps the contents on grow and shrink, across small -> large ->
 * huge (16 B .. 64 MiB) and back. */
static void realloc_keeps_contents(void)
{
    static const size_t chain[] = { 16, 24, 100, 700, 2000, 9000, 40000, 120000, 300000, MiB,
                                    3 * MiB, 9 * MiB, 16 * MiB, 40 * MiB, 64 * MiB };
    enum { NC = sizeof chain / sizeof chain[0] };
    char *p = malloc(16);
    th_fill(p, 16, 1);
    size_t have = 16;   /* bytes known to hold the pattern of seed 1 */
    for (int i = 1; i < NC; i++) {
        char *q = realloc(p, chain[i]);
        CHECKF(q, "realloc(%zu -> %zu) = NULL", chain[i - 1], chain[i]);
        if (!q) { free(p); return; }
        CHECKF(th_verify(q, have, 1), "realloc %zu -> %zu lost contents", chain[i - 1], chain[i]);
        p = q;
        th_fill(p, chain[i], 1);
        have = chain[i];
    }
    for (int i = NC - 2; i >= 0; i--) {
        char *q = realloc(p, chain[i]);
        CHECKF(q, "realloc(%zu -> %zu) = NULL", chain[i + 1], chain[i]);
        if (!q) { free(p); return; }
        CHECKF(th_verify(q, chain[i], 1), "realloc %zu -> %zu lost contents", chain[i + 1], chain[i]);
        p = q;
    }
    free(p);
    /* Grow a huge block in small steps (the mremap path), then shrink it. */
    size_t n = 17 * MiB;
    p = malloc(n);
    th_fill(p, n, 9);
    for (int i = 0; i < 8; i++) {
        size_t m = n + MiB + 12345;
        char *q = realloc(p, m);
        CHECK(q);
        if (!q) break;
        CHECKF(th_verify(q, n, 9), "huge realloc %zu -> %zu lost contents", n, m);
        p = q;
        th_fill(p, m, 9);
        n = m;
    }
    p = realloc(p, 5 * MiB);
    CHECK(p && th_verify(p, 5 * MiB, 9));
    free(p);
}

/* Random realloc sequences over many live blocks with content checks
 * (in-place and moving paths, every class). */
static void realloc_random(void)
{
    enum { N = 256, ITER = 20000 };
    static char *b[N];
    static size_t sz[N];
    th_rng r = { 12345 };
    for (int it = 0; it < ITER && !TH_FAILED(); it++) {
        int i = (int)(th_rand(&r) % N);
        size_t n;
        uint64_t k = th_rand(&r) % 100;
        if (k < 70) n = th_rand_range(&r, 0, 512);
        else if (k < 95) n = th_rand_range(&r, 513, 70000);
        else if (k < 99) n = th_rand_range(&r, 70001, 2 * MiB);
        else n = th_rand_range(&r, 2 * MiB, 8 * MiB);
        char *q = realloc(b[i], n);
        if (n && !q) { FAILF("realloc(%p, %zu) = NULL", (void *)b[i], n); break; }
        if (b[i] && q) {
            size_t keep = sz[i] < n ? sz[i] : n;
            CHECKF(th_verify(q, keep, (uint64_t)i * 1000003 + sz[i]),
                   "realloc(%zu -> %zu) lost contents", sz[i], n);
        }
        if (q) {
            b[i] = q; sz[i] = n;
            th_fill(q, n, (uint64_t)i * 1000003 + n);
        } else {
            b[i] = NULL; sz[i] = 0;  /* realloc(p, 0) freed it */
        }
    }
    for (int i = 0; i < N; i++) {
        if (b[i]) CHECK(th_verify(b[i], sz[i], (uint64_t)i * 1000003 + sz[i]));
        free(b[i]);
        b[i] = NULL;
    }
}

/* realloc(NULL, n) allocates; realloc(p, 0) frees p or returns a minimal
 * block (glibc frees and returns NULL; either way the result is freeable and
 * the heap stays sound). */
static void realloc_null_and_zero(void)
{
    char *p = realloc(NULL, 100);
    CHECK(p && malloc_usable_size(p) >= 100);
    memset(p, 3, 100);
    void *z = realloc(p, th_opaque(0));
    free(z);
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)i * 997 % 300000;
        void *q = malloc(n);
        q = realloc(q, th_opaque(0));
        free(q);
    }
    p = malloc(64);
    CHECK(p);
    free(p);
}

/* malloc_trim(0) and tide_trim() return 0 or 1 and leave the heap working:
 * live blocks keep their contents, freed memory is allocated again.  After
 * freeing 64 MiB of small and medium blocks, tide_trim() returns 1 and
 * committed_bytes falls. */
static void trim(void)
{
    enum { N = 20000 };
    static char *b[N];
    static size_t sz[N];
    th_rng r = { 99 };
    for (int i = 0; i < N; i++) {
        sz[i] = th_rand_range(&r, 1, 6000);
        b[i] = malloc(sz[i]);
        th_fill(b[i], sz[i], TH_SEED(b[i], sz[i]));
    }
    for (int i = 0; i < N; i += 2) { free(b[i]); b[i] = NULL; }
    int t = malloc_trim(0);
    CHECKF(t == 0 || t == 1, "malloc_trim(0) = %d", t);
    for (int i = 1; i < N; i += 2)
        CHECKF(th_verify(b[i], sz[i], TH_SEED(b[i], sz[i])), "block %d corrupted by malloc_trim", i);
    for (int i = 0; i < N; i += 2) {
        b[i] = malloc(sz[i]);
        th_fill(b[i], sz[i], TH_SEED(b[i], sz[i]));
    }
    if (TH_TIDE) {
        t = tide_trim();
        CHECKF(t == 0 || t == 1, "tide_trim() = %d", t);
    }
    for (int i = 0; i < N; i++) {
        CHECKF(th_verify(b[i], sz[i], TH_SEED(b[i], sz[i])), "block %d corrupted by trim", i);
        free(b[i]);
    }
    if (!TH_TIDE) return;
    /* 64 MiB in small and medium blocks, all freed: by the end of the trim
     * most of it is no longer committed (chunks unmapped as they empty, the
     * cached ones and any dirty free run given back by the trim). */
    enum { M = 64 * 1024 };
    static void *m[M];
    struct tide_stats peak, after;
    tide_trim();
    for (int i = 0; i < M; i++) { m[i] = malloc(i & 1 ? 1500 : 548); memset(m[i], 1, 548); }
    tide_stats_get(&peak);
    CHECKF(peak.committed_bytes >= 64 * MiB, "64 MiB of blocks live, committed_bytes %zu", peak.committed_bytes);
    for (int i = 0; i < M; i++) free(m[i]);
    t = tide_trim();
    tide_stats_get(&after);
    CHECKF(t == 1, "tide_trim() after freeing 64 MiB of blocks returned %d", t);
    CHECKF(after.committed_bytes + 48 * MiB <= peak.committed_bytes,
           "64 MiB freed then tide_trim(): committed_bytes %zu -> %zu", peak.committed_bytes,
           after.committed_bytes);
    /* Nothing left to give back: a second trim says so. */
    t = tide_trim();
    CHECKF(t == 0, "a second tide_trim() in a row returned %d", t);
    void *q = th_opaque_ptr(malloc(1000));
    CHECK(q);
    free(q);
}

/* mallopt, mallinfo2 and malloc_stats exist and behave: mallopt returns 0 or
 * 1, mallinfo2 accounts for live memory (uordblks + hblkhd), malloc_stats
 * writes to stderr (not stdout) without crashing. */
static void mallopt_mallinfo_stats(void)
{
    int r = mallopt(M_TRIM_THRESHOLD, 1 << 20);
    CHECKF(r == 0 || r == 1, "mallopt = %d", r);
    r = mallopt(M_MMAP_THRESHOLD, 1 << 20);
    CHECKF(r == 0 || r == 1, "mallopt = %d", r);
    enum { N = 1000 };
    static void *b[N];
    for (int i = 0; i < N; i++) { b[i] = malloc(10000); memset(b[i], 1, 10000); }
    void *huge = malloc(20 * MiB);
    memset(huge, 1, 20 * MiB);
    struct mallinfo2 mi = mallinfo2();
    size_t live = (size_t)N * 10000 + 20 * MiB;
    CHECKF(mi.uordblks + mi.hblkhd >= live,
           "mallinfo2: uordblks %zu + hblkhd %zu < %zu bytes live", mi.uordblks, mi.hblkhd, live);
    for (int i = 0; i < N; i++) free(b[i]);
    free(huge);

    int out[2], err[2];
    if (pipe(out) || pipe(err)) { FAILF("pipe"); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1); dup2(err[1], 2);
        close(out[0]); close(err[0]);
        void *x = malloc(1000);
        malloc_stats();
        free(x);
        fflush(stdout); fflush(stderr);
        _exit(0);
    }
    close(out[1]); close(err[1]);
    char buf[4096];
    ssize_t no = 0, ne = 0, k;
    while ((k = read(out[0], buf, sizeof buf)) > 0) no += k;
    while ((k = read(err[0], buf, sizeof buf)) > 0) ne += k;
    close(out[0]); close(err[0]);
    int st;
    waitpid(pid, &st, 0);
    char sb[64];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "malloc_stats child: %s", th_status_str(st, sb, sizeof sb));
    CHECKF(no == 0, "malloc_stats wrote %zd bytes to stdout", no);
    CHECKF(ne > 0, "malloc_stats wrote nothing to stderr");

    /* malloc_info(0, fp) writes an XML report; other options are EINVAL. */
    char *xml = NULL;
    size_t xml_n = 0;
    FILE *f = open_memstream(&xml, &xml_n);
    CHECK(f != NULL);
    if (!f) return;
    r = malloc_info(0, f);
    fclose(f);
    CHECKF(r == 0 && xml && strstr(xml, "<malloc") && strstr(xml, "</malloc>"), "malloc_info(0) = %d: \"%.100s\"",
           r, xml ? xml : "");
    free(xml);
    f = fopen("/dev/null", "w");
    errno = 0;
    r = malloc_info(1, f);
    /* The manual says -1 and EINVAL; glibc returns EINVAL itself. */
    if (TH_TIDE) CHECKF(r == -1 && errno == EINVAL, "malloc_info(1, fp) = %d errno %d", r, errno);
    else CHECKF(r != 0, "malloc_info(1, fp) = %d", r);
    fclose(f);
}

/* tide_version() names tide and the version of tide.h. */
static void version(void)
{
    TIDE_ONLY();
    char want[64];
    snprintf(want, sizeof want, "tide %d.%d", TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR);
    const char *v = tide_version();
    CHECKF(v && strncmp(v, want, strlen(want)) == 0, "tide_version() = \"%s\", tide.h says %s", v ? v : "(null)",
           want);
}

/* tide_stats_get rejects NULL with EINVAL and its figures are consistent:
 * mapped = chunks + live huge + cached huge, committed <= mapped, free runs
 * fit in the chunks, and a huge block moves huge_bytes by exactly its
 * page-rounded size, up on malloc and down on free. */
static void stats_consistent(void)
{
    TIDE_ONLY();
    errno = 0;
    CHECK(tide_stats_get(NULL) == -1 && errno == EINVAL);
    tide_trim();                      /* empties the huge cache: the next huge block is fresh */
    struct tide_stats a, b, c;
    CHECK(tide_stats_get(&a) == 0);
    CHECKF(a.huge_cached_bytes == 0, "huge_cached_bytes %zu after tide_trim()", a.huge_cached_bytes);
    char *small = th_opaque_ptr(malloc(100));
    size_t hn = 40 * MiB + 1, hround = 40 * MiB + page;
    char *h = th_opaque_ptr(malloc(hn));
    CHECK(small && h);
    h[0] = 1; h[hn - 1] = 2;
    CHECK(tide_stats_get(&b) == 0);
    free(h);
    CHECK(tide_stats_get(&c) == 0);
    struct tide_stats *all[] = { &a, &b, &c };
    for (int i = 0; i < 3; i++) {
        struct tide_stats *st = all[i];
        CHECKF(st->mapped_bytes == st->n_chunks * 8 * MiB + st->huge_bytes + st->huge_cached_bytes,
               "stats %d: mapped %zu != %zu chunks * 8 MiB + huge %zu + cached %zu", i, st->mapped_bytes,
               st->n_chunks, st->huge_bytes, st->huge_cached_bytes);
        CHECKF(st->committed_bytes <= st->mapped_bytes, "stats %d: committed %zu > mapped %zu", i,
               st->committed_bytes, st->mapped_bytes);
        CHECKF(st->free_run_bytes <= st->n_chunks * 8 * MiB, "stats %d: free runs %zu in %zu chunks", i,
               st->free_run_bytes, st->n_chunks);
        CHECKF(st->free_run_bytes % page == 0, "stats %d: free_run_bytes %zu", i, st->free_run_bytes);
        CHECK(st->n_heaps >= 1);
    }
    CHECKF(b.huge_bytes == a.huge_bytes + hround, "malloc(40 MiB + 1): huge_bytes %zu -> %zu (want +%zu)",
           a.huge_bytes, b.huge_bytes, hround);
    CHECKF(b.n_chunks >= 1, "a small block live, n_chunks %zu", b.n_chunks);
    CHECKF(c.huge_bytes == a.huge_bytes, "free(huge): huge_bytes %zu -> %zu (want %zu)", b.huge_bytes,
           c.huge_bytes, a.huge_bytes);
    CHECKF(c.mapped_bytes <= b.mapped_bytes, "free(huge): mapped %zu -> %zu", b.mapped_bytes, c.mapped_bytes);
    free(small);
}

/* realloc shrinks a large block in place, giving back the pages of its tail,
 * and grows it in place into free pages that follow it: 400 KiB shrunk to
 * 200 KiB frees the 50 pages after it, and growing back to 400 KiB takes them
 * again (nothing else allocates in between). */
static void realloc_large_in_place(void)
{
    TIDE_ONLY();
    for (int i = 0; i < 4; i++) {
        size_t n = 400 * KiB;
        char *p = th_opaque_ptr(malloc(n));
        CHECK(p);
        if (!p) return;
        th_fill(p, n, 5);
        uintptr_t pa = (uintptr_t)p;  /* compared as integers: p is indeterminate after realloc */
        char *q = realloc(p, n / 2);
        CHECKF((uintptr_t)q == pa, "realloc(400 KiB -> 200 KiB) moved the block (%#lx -> %p)",
               (unsigned long)pa, (void *)q);
        if (!q) { free(p); return; }
        char *r = realloc(q, n);
        CHECKF((uintptr_t)r == pa, "realloc(200 KiB -> 400 KiB) right after shrinking moved the block "
               "(%#lx -> %p)", (unsigned long)pa, (void *)r);
        if (!r) { free(q); return; }
        CHECKF(th_verify(r, n / 2, 5), "realloc 400 KiB -> 200 KiB -> 400 KiB lost contents");
        CHECK(malloc_usable_size(r) >= n);
        th_fill(r, n, 6);
        free(r);
    }
}

/* realloc of a huge block (64 MiB, only its first and last pages touched, to
 * 96 MiB) moves the pages without copying them (mremap): the old part is not
 * made resident, as a copy would.  (glibc does the same for its mmapped
 * chunks.)  Transparent huge pages may make up to 2 MiB resident per touch. */
static void realloc_huge_no_copy(void)
{
    /* Huge: 64 MiB, only its first and last pages touched, grown to 96 MiB. */
    size_t n = 64 * MiB, m = 96 * MiB;
    char *p = th_opaque_ptr(malloc(n));
    CHECK(p);
    if (!p) return;
    p[0] = 1; p[n - 1] = 2;
    char *q = realloc(p, m);
    CHECK(q);
    if (!q) { free(p); return; }
    CHECK(q[0] == 1 && q[n - 1] == 2);
    size_t n_pages = n / page;
    unsigned char *vec = calloc(n_pages, 1);
    char *base = (char *)((uintptr_t)q & ~(uintptr_t)(page - 1));   /* glibc's blocks are not page-aligned */
    int r = mincore(base, n, vec);
    CHECKF(r == 0, "mincore: %s", strerror(errno));
    size_t resident = 0;
    for (size_t i = 0; r == 0 && i < n_pages; i++) resident += vec[i] & 1;
    CHECKF(resident < n_pages / 4, "realloc(64 MiB -> 96 MiB) copied the block: %zu of %zu pages resident", resident,
           n_pages);
    free(vec);
    free(q);
}

/* A small block grown by realloc one byte at a time, from 1 byte to 64 KiB
 * (a naive string builder): each move goes to a block with room for a
 * quarter of its power of two more (alloc.c realloc_grow_small), so it
 * moves at most four times per doubling, not at every one of tide's eight
 * classes per doubling.  The contents survive every move, and the stats
 * count each move as one malloc and one free of the size asked for. */
static void realloc_grows_with_room(void)
{
    TIDE_ONLY();
    struct tide_stats s0;
    tide_stats_get(&s0);
    char *p = malloc(1);
    CHECK(p);
    if (!p) return;
    p[0] = 0;
    int moves = 0;
    uintptr_t at = (uintptr_t)p;
    size_t requested = 1;
    for (size_t n = 2; n <= 64 * KiB; n++) {
        size_t had = malloc_usable_size(p);
        char *q = realloc(p, n);
        CHECK(q);
        if (!q) { free(p); return; }
        p = q;
        p[n - 1] = (char)(n * 7);
        if ((uintptr_t)p != at) {
            moves++;
            at = (uintptr_t)p;
            requested += n;
            /* 2^k < n <= 2^(k+1) rounds up to a multiple of 2^k / 4 */
            size_t quarter = ((size_t)1 << (63 - __builtin_clzl(n - 1))) >> 2;
            size_t room = (n + quarter - 1) & ~(quarter - 1);
            /* tide's classes are 16 bytes apart up to 256, then 8 per doubling */
            size_t slack = room <= 256 ? 15 : room / 8;
            CHECKF(malloc_usable_size(p) >= room && malloc_usable_size(p) <= room + slack,
                   "realloc(%zu-byte block, %zu) gave %zu usable bytes, want %zu to %zu", had, n,
                   malloc_usable_size(p), room, room + slack);
        }
    }
    int bad = 0;
    for (size_t i = 1; i < 64 * KiB; i++)
        bad += p[i] != (char)((i + 1) * 7);
    CHECKF(bad == 0, "%d bytes lost across the moves", bad);
    /* 16 B .. 64 KiB is 12 doublings; eight classes per doubling would be ~80 moves */
    CHECKF(moves <= 4 * 12 + 4, "%d moves growing a block from 1 byte to 64 KiB, want at most %d", moves, 4 * 12 + 4);
    struct tide_stats s1;
    tide_stats_get(&s1);
    CHECKF(s1.n_malloc - s0.n_malloc == (uint64_t)moves + 1 && s1.n_free - s0.n_free == (uint64_t)moves,
           "%d moves: n_malloc %+lld, n_free %+lld", moves, (long long)(s1.n_malloc - s0.n_malloc),
           (long long)(s1.n_free - s0.n_free));
    CHECKF(s1.requested_bytes - s0.requested_bytes == requested, "requested_bytes %+lld, want %zu (the sizes asked "
           "for by malloc and by the moving reallocs)", (long long)(s1.requested_bytes - s0.requested_bytes), requested);
    free(p);
}

int main(void)
{
    RUN(on_tide);
    RUN(symbols_are_tide);
    RUN(version);
    RUN(glibc_aliases);
    RUN(malloc_zero_unique);
    RUN(default_alignment);
    RUN(aligned_allocs);
    RUN(valloc_pvalloc);
    RUN(bad_alignment_posix_memalign);
    RUN(bad_alignment_aligned_alloc_memalign);
    RUN(overflow_enomem);
    RUN(failed_realloc_keeps_block);
    RUN(reallocarray_works);
    RUN(usable_size);
    RUN(usable_size_writable);
    RUN(calloc_zeroes_reused);
    RUN(realloc_keeps_contents);
    RUN(realloc_random);
    RUN(realloc_null_and_zero);
    RUN(trim);
    RUN(mallopt_mallinfo_stats);
    RUN(stats_consistent);
    RUN(realloc_large_in_place);
    RUN(realloc_huge_no_copy);
    RUN(realloc_grows_with_room);
    return th_summary();
}
