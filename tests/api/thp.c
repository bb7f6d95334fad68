/* api/thp.c — transparent huge pages for big blocks (TIDE_CONF thp, on by
 * default; os.c tidei_os_huge_pages): the kernel is asked for huge pages
 * (madvise MADV_HUGEPAGE, "hg" in the VmFlags of /proc/self/smaps) in the
 * 2 MiB pages that lie wholly inside a block of 2 MiB or more, and no more
 * once a large block is freed or gives those pages up in a realloc, so that
 * small spans carved there later are faulted 4 KiB at a time.  Checked:
 *   - a large block (4 MiB, in a chunk: a smaller one holds a whole 2 MiB
 *     page only if it happens to be aligned) and huge ones (a mapping of
 *     their own) ask, from malloc, calloc, posix_memalign and realloc;
 *   - a block under 2 MiB does not;
 *   - a freed large block's pages ask no more, nor do those a realloc that
 *     shrinks a large block in place gives back (and growing in place asks
 *     for the new ones);
 *   - a heap grown past thp_heap_mb asks in every chunk mapped after,
 *     until pages of the chunk are purged;
 *   - with TIDE_CONF=thp=0 nothing asks (the test runs itself again so);
 *   - bytes survive every realloc.
 * Whether the kernel then gives huge pages is its business (the system's
 * setting); the advice is what tide controls, and what is checked. */
#include "testhelper.h"


#define HP ((uintptr_t)2 << 20)

static bool thp_off;  /* this run is the one with TIDE_CONF=thp=0 */

/* Whether the mapping holding address a carries the huge-page advice (-1
 * if /proc/self/smaps has no mapping with it). */
static int advised(uintptr_t a)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, r = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {  /* a mapping's first line */
            in = a >= lo && a < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            r = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return r;
}

/* The first 2 MiB-aligned address inside [p, p + n) whose huge page lies
 * wholly inside, or 0. */
static uintptr_t inner_page(void *p, size_t n)
{
    uintptr_t lo = ((uintptr_t)p + HP - 1) & ~(HP - 1);
    return lo + HP <= (uintptr_t)p + n ? lo : 0;
}

static void expect(void *p, size_t n, int want, const char *what)
{
    uintptr_t a = inner_page(p, n);
    if (!a) { FAILF("%s: no whole 2 MiB page inside %p + %zu", what, p, n); return; }
    int got = advised(a);
    CHECKF(got == want, "%s (%p, %zu bytes): huge-page advice %d, want %d", what, p, n, got, want);
}

static void big_blocks_ask(void)
{
    TIDE_ONLY();
    int on = !thp_off;
    void *a = malloc(4 << 20);
    void *b = malloc(9 << 20);
    void *c = calloc(1, 5 << 20);
    void *d = NULL;
    CHECK(posix_memalign(&d, 4096, (size_t)4 << 20) == 0);
    CHECK(a && b && c && d);
    if (TH_FAILED()) return;
    expect(a, 4 << 20, on, "malloc 4 MiB");
    expect(b, 9 << 20, on, "malloc 9 MiB");
    expect(c, 5 << 20, on, "calloc 5 MiB");
    expect(d, 4 << 20, on, "posix_memalign 4 MiB");
    CHECK(th_is_zero(c, 5 << 20));
    free(a); free(b); free(c); free(d);
}

static void small_blocks_do_not(void)
{
    TIDE_ONLY();
    /* 1.5 MiB blocks side by side: none holds a whole huge page, and the
     * chunk's pages around them are not advised */
    void *p[6];
    for (int i = 0; i < 6; i++) p[i] = malloc(((size_t)3 << 20) / 2);
    for (int i = 0; i < 6; i++) {
        CHECK(p[i] != NULL);
        if (!p[i]) return;
        uintptr_t mid = ((uintptr_t)p[i] + (1 << 20)) & ~(uintptr_t)4095;
        CHECKF(advised(mid) == 0, "a 1.5 MiB block's pages carry the huge-page advice");
    }
    for (int i = 0; i < 6; i++) free(p[i]);
}

static void freed_pages_ask_no_more(void)
{
    TIDE_ONLY();
    void *a = malloc(4 << 20);
    CHECK(a != NULL);
    if (!a) return;
    uintptr_t in = inner_page(a, 4 << 20);
    free(a);
    CHECKF(advised(in) == 0, "a freed large block's pages still carry the huge-page advice");
}

static void realloc_keeps_bytes_and_advice(void)
{
    TIDE_ONLY();
    int on = !thp_off;
    size_t n = 40000;
    unsigned char *p = malloc(n);
    CHECK(p != NULL);
    if (!p) return;
    th_fill(p, n, 11);
    /* small -> large (moves), large -> bigger large, -> huge, back down */
    static const size_t steps[] = { (size_t)4 << 20, (size_t)9 << 20, (size_t)4 << 20, 100000, (size_t)4 << 20 };
    size_t keep = n;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        unsigned char *q = realloc(p, steps[i]);
        CHECK(q != NULL);
        if (!q) { free(p); return; }
        p = q;
        CHECKF(th_verify(p, keep < steps[i] ? keep : steps[i], 11), "realloc to %zu lost bytes", steps[i]);
        if (steps[i] >= ((size_t)4 << 20))
            expect(p, steps[i], on, "a block grown by realloc");
        th_fill(p, steps[i], 11);
        keep = steps[i];
    }
    free(p);
    /* a large block shrunk in place gives its pages back without the advice */
    unsigned char *a = malloc((size_t)4 << 20);
    CHECK(a != NULL);
    if (!a) return;
    uintptr_t in = inner_page(a, (size_t)4 << 20);
    CHECKF(advised(in) == on, "a 4 MiB block: huge-page advice %d, want %d", advised(in), on);
    unsigned char *b = realloc(a, 1 << 20);
    CHECK(b != NULL);
    if (b == a)  /* in place: no whole huge page is left inside */
        CHECKF(advised(in) == 0, "pages a shrinking realloc gave back still carry the huge-page advice");
    free(b ? b : a);
}

/* A heap that has grown past thp_heap_mb (32 MiB by default): each chunk
 * mapped after asks for huge pages throughout, small spans included, and
 * the first chunks do not.  48 MiB of 4000-byte blocks; the first and the
 * last block lie in chunks mapped before and after the heap reached the
 * threshold. */
static void big_heaps_ask(void)
{
    TIDE_ONLY();
    enum { N = 12288 };
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(4000);
        CHECK(b[i] != NULL);
        if (!b[i]) { while (i--) free(b[i]); return; }
        memset(b[i], i, 16);
    }
    int first = advised((uintptr_t)b[0]), last = advised((uintptr_t)b[N - 1]);
    CHECKF(first == 0, "a small block of the heap's first chunk: huge-page advice %d, want 0", first);
    CHECKF(last == !thp_off, "a small block allocated past 40 MiB of heap: huge-page advice %d, want %d", last,
           !thp_off);
    uintptr_t at = (uintptr_t)b[N - 1];
    for (int i = 0; i < N - 1; i++)
        free(b[i]);
    /* pages given back around the one block left: its chunk asks no more
     * (khugepaged would fill the huge pages the purge split back in) */
    tide_trim();
    CHECKF(advised(at) == 0, "a chunk whose pages tide_trim gave back: huge-page advice %d, want 0", advised(at));
    free(b[N - 1]);
}

/* The whole suite once more, under TIDE_CONF=thp=0. */
static void off_when_asked(void)
{
    TIDE_ONLY();
    int st = th_rerun("thp=0", "thp", "off");
    char buf[80];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the run with thp=0: %s", th_status_str(st, buf, sizeof buf));
}

int main(int argc, char **argv)
{
    thp_off = argc > 1 && strcmp(argv[1], "off") == 0;
    RUN(on_tide);
    RUN(big_blocks_ask);
    RUN(small_blocks_do_not);
    RUN(freed_pages_ask_no_more);
    RUN(realloc_keeps_bytes_and_advice);
    RUN(big_heaps_ask);
    if (!thp_off)
        RUN(off_when_asked);
    return th_summary();
}
