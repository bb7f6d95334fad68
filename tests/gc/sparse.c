/* gc/sparse.c — roots and blocks that are mostly never written.
 *
 * A program may keep a large static array, a big GC block or a registered
 * root range of which it has written a few pages.  The collector must
 * find the pointers in those pages (at the first and last word of a range
 * too, where a run of written pages is cut), and, with tide, must read no
 * other page: on a kernel that maps a real page for every read of
 * untouched memory (this project's machines do), a collection that read
 * them all made them resident, and read hundreds of MiB at every
 * collection.  (Debian's libgc reads them all: the RSS checks are tide's.)
 *
 *   test_static_array   trees held only by a 256 MiB array in .bss: its
 *                       first word, a word in the middle, its last word
 *   test_big_block      trees held only by a 64 MiB GC_MALLOC block (held
 *                       by a global), a 64 MiB uncollectable block (a root
 *                       of its own) and a 512 MiB GC_add_roots range
 *   test_written_whole  a 1 MiB GC block with every word a pointer: all
 *                       kept (a block written throughout is read whole)
 * Each collects three times, then checks the trees and how much RSS the
 * collections added. */
#include "gchelper.h"

#include <sys/mman.h>

#define BIG_WORDS ((256u << 20) / sizeof(void *))
static struct gc_node *big_bss[BIG_WORDS];  /* in .bss, never written but for three words */

/* VmRSS in KiB. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Three collections with a cleared stack; the RSS added since before
 * (rss_kb() taken before the test's set-up: its allocations may collect
 * too), in KiB. */
static long collect_thrice(long before)
{
    for (int i = 0; i < 3; i++)
        gc_full();
    return rss_kb() - before;
}

static __attribute__((noinline)) void fill_static(void)
{
    long c = 0;
    big_bss[0] = gc_make_tree(6, &c);
    big_bss[BIG_WORDS / 2 + 3] = gc_make_tree(6, &c);
    big_bss[BIG_WORDS - 1] = gc_make_tree(6, &c);
}

static void test_static_array(void)
{
    long before = rss_kb();
    fill_static();
    long added = collect_thrice(before);
    long c = 0;
    CHECKF(gc_check_tree(big_bss[0], 6, &c) == 0, "tree at the array's first word damaged");
    CHECKF(gc_check_tree(big_bss[BIG_WORDS / 2 + 3], 6, &c) == 0, "tree in the array's middle damaged");
    CHECKF(gc_check_tree(big_bss[BIG_WORDS - 1], 6, &c) == 0, "tree at the array's last word damaged");
    if (TH_TIDE)
        CHECKF(added < 32 * 1024, "the set-up and three collections added %ld KiB of RSS (a 256 MiB array mostly unwritten)", added);
}

static struct gc_node **big_block;   /* 64 MiB from GC_MALLOC */
static uintptr_t big_uncoll_hidden;  /* ~address of 64 MiB from GC_MALLOC_UNCOLLECTABLE: no
                                      * root points to it, it is a root of its own */
#define BIG_UNCOLL ((struct gc_node **)~big_uncoll_hidden)
static struct gc_node **root_area;   /* 512 MiB mapping, a GC_add_roots range */
#define AREA_BYTES ((size_t)512 << 20)

/* The blocks and the mapping, with collections off, then *before (the
 * RSS of their set-up, which under TSan includes its metadata for the
 * blocks, is not the collections'), then the trees, whose allocations
 * may collect. */
static __attribute__((noinline)) void fill_big(long *before)
{
    long c = 0;
    GC_disable();
    big_block = GC_MALLOC((size_t)64 << 20);
    struct gc_node **u = GC_MALLOC_UNCOLLECTABLE((size_t)64 << 20);
    big_uncoll_hidden = ~(uintptr_t)u;
    root_area = mmap(NULL, AREA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (root_area != MAP_FAILED)
        GC_add_roots(root_area, (char *)root_area + AREA_BYTES);
    *before = rss_kb();
    GC_enable();
    CHECK(big_block != NULL);
    CHECK(u != NULL);
    CHECK(root_area != MAP_FAILED);
    if (!big_block || !u || root_area == MAP_FAILED)
        return;
    big_block[(40u << 20) / sizeof(void *)] = gc_make_tree(6, &c);
    u[(20u << 20) / sizeof(void *)] = gc_make_tree(6, &c);
    root_area[AREA_BYTES / sizeof(void *) - 1] = gc_make_tree(6, &c);
    root_area[(300u << 20) / sizeof(void *)] = gc_make_tree(6, &c);
}

static void test_big_block(void)
{
    long before = 0;
    fill_big(&before);
    if (!big_block || !big_uncoll_hidden || root_area == MAP_FAILED)
        return;
    long added = collect_thrice(before);
    long c = 0;
    CHECKF(gc_check_tree(big_block[(40u << 20) / sizeof(void *)], 6, &c) == 0, "tree held by the 64 MiB block damaged");
    CHECKF(gc_check_tree(BIG_UNCOLL[(20u << 20) / sizeof(void *)], 6, &c) == 0,
           "tree held by the 64 MiB uncollectable block damaged");
    CHECKF(gc_check_tree(root_area[AREA_BYTES / sizeof(void *) - 1], 6, &c) == 0,
           "tree at the root range's last word damaged");
    CHECKF(gc_check_tree(root_area[(300u << 20) / sizeof(void *)], 6, &c) == 0, "tree in the root range damaged");
    if (TH_TIDE)
        CHECKF(added < 32 * 1024, "the trees and three collections added %ld KiB of RSS (two 64 MiB blocks, 512 MiB roots, mostly unwritten)",
               added);
    GC_remove_roots(root_area, (char *)root_area + AREA_BYTES);
    munmap(root_area, AREA_BYTES);
    GC_FREE(BIG_UNCOLL);
    big_uncoll_hidden = 0;
    big_block = NULL;
}

#define WHOLE_WORDS ((1u << 20) / sizeof(void *))
static void **whole;

static __attribute__((noinline)) void fill_whole(void)
{
    whole = GC_MALLOC(WHOLE_WORDS * sizeof(void *));
    CHECK(whole != NULL);
    for (size_t i = 0; whole && i < WHOLE_WORDS; i++) {
        long *p = GC_MALLOC_ATOMIC(sizeof(long));
        if (p)
            *p = (long)i;
        GC_REGISTER_FINALIZER(p, gc_count_fin, NULL, NULL, NULL);
        whole[i] = p;
    }
}

static void test_written_whole(void)
{
    fill_whole();
    if (!whole)
        return;
    gc_n_finalized = 0;
    collect_thrice(0);
    CHECKF(gc_n_finalized == 0, "%ld objects held by a written 1 MiB block were finalized", (long)gc_n_finalized);
    size_t bad = 0;
    for (size_t i = 0; i < WHOLE_WORDS; i++)
        if (!whole[i] || *(long *)whole[i] != (long)i)
            bad++;
    CHECKF(bad == 0, "%zu of %zu objects held by a written 1 MiB block damaged", bad, (size_t)WHOLE_WORDS);
}

int main(void)
{
    GC_INIT();
    RUN(test_static_array);
    RUN(test_big_block);
    RUN(test_written_whole);
    return th_summary();
}
