/* gc/basic.c — the GC heap through gc.h, one thread: allocation of every
 * size range and kind, GC_base/GC_size, GC_FREE and GC_REALLOC, what a
 * collection keeps (contents checked) and what it reclaims (finalizers
 * tell), roots (module data, GC_add_roots, uncollectable blocks, __thread,
 * registers), and that garbage does not grow the heap. */
#include "gchelper.h"

static void test_alloc_sizes(void)
{
    static const size_t sizes[] = { 0, 1, 8, 16, 24, 100, 1000, 4096, 40000, 65536, 65537, 200000,
                                    5u << 20, 20u << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = GC_MALLOC(n);
        CHECKF(p != NULL, "GC_MALLOC(%zu) failed", n);
        if (!p)
            continue;
        bool zero = true;
        for (size_t k = 0; k < n; k++)
            zero &= p[k] == 0;
        CHECKF(zero, "GC_MALLOC(%zu) not cleared", n);
        CHECKF(((uintptr_t)p & 15) == 0, "GC_MALLOC(%zu) = %p not 16-aligned", n, (void *)p);
        CHECKF(GC_size(p) >= n, "GC_size %zu < %zu", GC_size(p), n);
        CHECK(GC_base(p) == p);
        if (n > 1)
            CHECK(GC_base(p + n - 1) == p);
        memset(p, 0xab, n);
        unsigned char *q = GC_MALLOC_ATOMIC(n);
        CHECK(q != NULL);
        if (q)
            memset(q, 0xcd, n);
        GC_FREE(q);
        GC_FREE(p);
    }
    int local;
    CHECK(GC_base(&local) == NULL);
    void *m = malloc(32);
    CHECK(GC_base(m) == NULL);
    free(m);
}

/* a reused block comes back cleared */
static void test_free_reuse_cleared(void)
{
    for (int round = 0; round < 1000; round++) {
        long *p = GC_MALLOC(48);
        for (int i = 0; i < 6; i++) {
            if (p[i] != 0) {
                FAILF("round %d: word %d of a fresh block is %lx", round, i, (unsigned long)p[i]);
                return;
            }
        }
        for (int i = 0; i < 6; i++)
            p[i] = -1;
        GC_FREE(p);
    }
}

static void test_realloc(void)
{
    char *p = GC_REALLOC(NULL, 10);
    CHECK(p != NULL);
    strcpy(p, "123456789");
    for (size_t n = 20; n < (8u << 20); n = n * 3 / 2 + 7) {
        p = GC_REALLOC(p, n);
        if (!p) {
            FAILF("GC_REALLOC to %zu failed", n);
            return;
        }
        if (strcmp(p, "123456789") != 0) {
            FAILF("contents lost at %zu", n);
            return;
        }
    }
    p = GC_REALLOC(p, 5);
    CHECK(p && memcmp(p, "12345", 5) == 0);
    CHECK(GC_REALLOC(p, 0) == NULL);
}

static struct gc_node *global_root;  /* module data */
static struct gc_node *added_root_area[4];  /* registered with GC_add_roots below... */
static __thread struct gc_node *tls_root;

static __attribute__((noinline)) void build_roots(void)
{
    long c = 0;
    global_root = gc_make_tree(10, &c);
    c = 1000000;
    tls_root = gc_make_tree(8, &c);
}

static void test_roots_survive(void)
{
    build_roots();
    for (int i = 0; i < 5; i++) {
        /* churn: garbage trees */
        for (int k = 0; k < 50; k++) {
            long c = 0;
            gc_make_tree(8, &c);
        }
        gc_full();
    }
    long c = 0;
    CHECKF(gc_check_tree(global_root, 10, &c) == 0, "tree in module data damaged");
    c = 1000000;
    CHECKF(gc_check_tree(tls_root, 8, &c) == 0, "tree held by a __thread variable damaged");
    CHECK(GC_get_gc_no() >= 5);
}

static void test_garbage_reclaimed(void)
{
    gc_n_finalized = 0;
    for (int i = 0; i < 1000; i++) {
        void *p = GC_MALLOC(64);
        GC_REGISTER_FINALIZER(p, gc_count_fin, NULL, NULL, NULL);
    }
    gc_full();
    gc_full();
    CHECKF(gc_n_finalized >= 950, "only %ld of 1000 dropped objects finalized", (long)gc_n_finalized);
}

/* objects reachable only from atomic memory are reclaimed */
static __attribute__((noinline)) void **make_atomic_holder(int n)
{
    void **holder = GC_MALLOC_ATOMIC(n * sizeof(void *));
    for (int i = 0; i < n; i++) {
        holder[i] = GC_MALLOC(32);
        GC_REGISTER_FINALIZER(holder[i], gc_count_fin, NULL, NULL, NULL);
    }
    return holder;
}

static void **atomic_holder;
static void test_atomic_not_scanned(void)
{
    gc_n_finalized = 0;
    atomic_holder = make_atomic_holder(500);
    gc_full();
    gc_full();
    CHECKF(gc_n_finalized >= 475, "only %ld of 500 objects held from atomic memory finalized",
           (long)gc_n_finalized);
    CHECK(GC_base(atomic_holder) == atomic_holder);
}

static __attribute__((noinline)) void make_uncollectable_chain(void **out)
{
    struct gc_node *u = GC_MALLOC_UNCOLLECTABLE(sizeof *u);
    long c = 77;
    u->left = gc_make_tree(6, &c);
    /* hide the pointer: only GC_FREE can find it again */
    *out = (void *)((uintptr_t)u ^ 0x5555);
}

static void test_uncollectable(void)
{
    void *hidden;
    make_uncollectable_chain(&hidden);
    gc_full();
    gc_full();
    struct gc_node *u = (struct gc_node *)((uintptr_t)hidden ^ 0x5555);
    long c = 77;
    CHECKF(gc_check_tree(u->left, 6, &c) == 0, "tree under an uncollectable object damaged");
    GC_FREE(u);
}

static __attribute__((noinline)) void fill_added_roots(void)
{
    for (int i = 0; i < 4; i++) {
        long c = i * 10000;
        added_root_area[i] = gc_make_tree(5, &c);
    }
}

static void test_add_roots(void)
{
    /* a mapping the collector does not know: only GC_add_roots makes it a root */
    struct gc_node **area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    GC_add_roots(area, area + 4);
    fill_added_roots();
    for (int i = 0; i < 4; i++) {
        area[i] = added_root_area[i];
        added_root_area[i] = NULL;
    }
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 30; j++) {
            long c = 0;
            gc_make_tree(8, &c);
        }
        gc_full();
    }
    for (int i = 0; i < 4; i++) {
        long c = i * 10000;
        CHECKF(gc_check_tree(area[i], 5, &c) == 0, "tree %d held from a GC_add_roots range damaged", i);
    }
    GC_remove_roots(area, area + 4);
    munmap(area, 4096);
}

/* the heap stays bounded while the program makes garbage at a steady rate */
static void test_garbage_bounded(void)
{
    size_t peak = 0, at20 = 0;
    for (int round = 0; round < 40; round++) {
        for (int k = 0; k < 200; k++) {
            long c = 0;
            gc_make_tree(8, &c);  /* 511 nodes of 32 bytes */
            GC_MALLOC_ATOMIC(3000);
            if (k % 50 == 0)
                GC_MALLOC(100000);
        }
        size_t h = GC_get_heap_size();
        if (round >= 10 && h > peak)
            peak = h;
        if (round == 10)
            peak = h;
        if (round == 20)
            at20 = h;
    }
    CHECKF(GC_get_heap_size() < (size_t)200 << 20, "heap grew to %zu bytes", GC_get_heap_size());
    CHECKF(peak < (size_t)128 << 20, "heap peak %zu bytes for ~4 MB of garbage per round", peak);
    CHECKF(GC_get_heap_size() <= at20 + ((size_t)32 << 20), "heap still growing: %zu at round 20, %zu at 40",
           at20, GC_get_heap_size());
}

static void test_interior_pointer_keeps(void)
{
    char *p = GC_MALLOC(1000);
    strcpy(p, "interior");
    char *volatile inner = p + 500;
    p = NULL;
    gc_full();
    char *base = GC_base(inner);
    CHECK(base != NULL && strcmp(base, "interior") == 0);
}

static _Atomic int oom_calls;
static void *oom_handler(size_t n)
{
    (void)n;
    oom_calls++;
    return NULL;
}

/* a heap limit: live data past it gets NULL and ENOMEM after the OOM
 * handler, and what was freed can be allocated again */
static void **limit_keep;
static void test_heap_limit(void)
{
    size_t before = GC_get_heap_size();
    GC_set_max_heap_size(before + (64u << 20));
    GC_set_oom_fn(oom_handler);
    limit_keep = GC_MALLOC(100000 * sizeof(void *));
    int n = 0;
    errno = 0;
    for (; n < 100000; n++) {
        limit_keep[n] = GC_MALLOC_ATOMIC(4096);
        if (!limit_keep[n])
            break;
    }
    CHECKF(n < 100000 && n > 8000, "stopped after %d blocks of 4 KiB under a 64 MiB limit", n);
    CHECK(oom_calls > 0);
    CHECK(GC_get_heap_size() <= before + (64u << 20) + (1u << 20));
    for (int i = 0; i < n; i++)
        limit_keep[i] = NULL;
    gc_full();
    void *p = GC_MALLOC_ATOMIC(4096);
    CHECKF(p != NULL, "no allocation after the live data went away");
    GC_set_oom_fn(NULL);
    GC_set_max_heap_size(0);
    limit_keep = NULL;
}

static void test_stats(void)
{
    CHECK(GC_get_heap_size() > 0);
    CHECK(GC_get_total_bytes() > 0);
    if (!TH_TIDE)
        return;
    struct tide_gc_stats st;
#if TH_TIDE
    CHECK(tide_gc_stats_get(&st) == 0);
    CHECK(st.n_collections == GC_get_gc_no());
    CHECK(st.heap_bytes == GC_get_heap_size());
#endif
}

int main(void)
{
    GC_INIT();
    RUN(test_alloc_sizes);
    RUN(test_free_reuse_cleared);
    RUN(test_realloc);
    RUN(test_roots_survive);
    RUN(test_garbage_reclaimed);
    RUN(test_atomic_not_scanned);
    RUN(test_uncollectable);
    RUN(test_add_roots);
    RUN(test_garbage_bounded);
    RUN(test_interior_pointer_keeps);
    RUN(test_heap_limit);
    RUN(test_stats);
    return th_summary();
}
