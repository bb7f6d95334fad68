/* api/shared.c — the shared heaps (src/heap.c, docs/stats.md): a thread's
 * first blocks of each size class come from spans every thread shares, so
 * that many threads with a few blocks of many classes do not each pin a
 * page per class (bench/threads.c).  Checked as a user sees it:
 *   - 48 threads with two blocks of each of ~40 classes own no span, and
 *     all of them together use a few spans per class, not one per thread
 *     and class (with TIDE_CONF shared_blocks=0, or before the shared
 *     heaps, it is one per thread and class: the check fails);
 *   - those blocks stay intact and are freed by their thread, by another
 *     thread, and after their thread exited; then every figure is back to
 *     the baseline and tide_trim leaves no span and no pending free;
 *   - past shared_blocks blocks of a class, a thread gets a span of its own;
 *   - so does a thread whose class has a span an exited thread left (it
 *     adopts that span), and a class nobody left a span of is still shared;
 *   - a thread that has stopped sharing 8 classes shares no other;
 *   - a thread that only frees other threads' blocks (it never allocates)
 *     has every free counted, before and after it gets a heap to count in;
 *   - the frees that empty a shared span give it back at once (all but the
 *     last of its class), and blocks of 4 KiB or more are never shared;
 *   - the walk and tide_block_info see shared blocks (heap 0: no thread
 *     heap owns them), and a freed one as free;
 *   - realloc moves a shared block across small, large and huge sizes and
 *     back, keeping its bytes;
 *   - a forked child frees the parent's shared blocks and allocates new
 *     ones, from its main thread and from a new thread;
 *   - a double free of a shared block is reported, and aborts.
 * These run with shared_threads=2, so that threads share from the second
 * on; api/sharethreads.c checks the default threshold.
 * th-conf: shared_threads=2
 * th-static: yes
 * th-timeout: 120 */
#include "testhelper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NT 48            /* threads alive at once */
#define PER 2            /* blocks per class per thread */
#define MAX_CLASSES 64

static size_t sizes[MAX_CLASSES];  /* one request size per class, 16..2000 bytes */
static int n_sizes;
static void *blk[NT][MAX_CLASSES][PER];
static atomic_int tids[NT];
static pthread_barrier_t bar;

static int my_tid(void) { return (int)syscall(SYS_gettid); }

/* fn run by a thread of its own (one that allocates afresh), to its end:
 * its result. */
static intptr_t in_thread(void *(*fn)(void *))
{
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, fn, NULL) != 0 || pthread_join(t, &r) != 0)
        FAILF("could not run a thread");
    return (intptr_t)r;
}

/* The classes with blocks of 16 to 2000 bytes, from tide_stats. */
static void pick_sizes(void)
{
    struct tide_stats st = th_stats();
    n_sizes = 0;
    for (int c = 1; c < TIDE_N_CLASSES && n_sizes < MAX_CLASSES; c++) {
        size_t z = st.classes[c].block_size;
        if (z >= 16 && z <= 2000 && (n_sizes == 0 || z != sizes[n_sizes - 1]))
            sizes[n_sizes++] = z;
    }
}

static struct tide_heap_stats heap_of(int tid, int *found)
{
    static struct tide_heap_stats hs[4096];
    struct tide_heap_stats none;
    memset(&none, 0, sizeof none);
    size_t n = tide_stats_heaps(hs, 4096);
    *found = 0;
    for (size_t i = 0; i < n && i < 4096; i++)
        if (hs[i].tid == tid) {
            none = hs[i];
            ++*found;
        }
    return none;
}

/* Worker t: PER blocks of every class, filled; waits; frees its own copy
 * 1 of the even classes; waits; exits with the rest live. */
static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    atomic_store(&tids[t], my_tid());
    for (int c = 0; c < n_sizes; c++)
        for (int k = 0; k < PER; k++) {
            void *p = malloc(sizes[c]);
            if (p) th_fill(p, sizes[c], TH_SEED(p, sizes[c]));
            blk[t][c][k] = p;
        }
    pthread_barrier_wait(&bar);  /* 1: allocated */
    pthread_barrier_wait(&bar);  /* 2: main looked and freed copy 0 */
    for (int c = 0; c < n_sizes; c += 2) {
        void *p = blk[t][c][1];
        if (p && !th_verify(p, sizes[c], TH_SEED(p, sizes[c])))
            fprintf(stderr, "worker %d: block %p of %zu bytes changed\n", t, p, sizes[c]);
        free(p);
        blk[t][c][1] = NULL;
    }
    pthread_barrier_wait(&bar);  /* 3: own frees done */
    return NULL;
}

static int bad_blocks;

static void check_free(void **pp, size_t n)
{
    void *p = *pp;
    if (!p) return;
    if (!th_verify(p, n, TH_SEED(p, n))) bad_blocks++;
    free(p);
    *pp = NULL;
}

static void many_threads_share_spans(void)
{
    TIDE_ONLY();
    pick_sizes();
    CHECKF(n_sizes >= 30, "only %d classes of 16..2000 bytes", n_sizes);
    tide_trim();
    pthread_barrier_init(&bar, NULL, NT + 1);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    pthread_t th[NT];
    for (int t = 0; t < NT; t++)
        if (pthread_create(&th[t], &a, worker, (void *)(intptr_t)t) != 0) {
            FAILF("pthread_create");
            return;
        }
    pthread_barrier_wait(&bar);  /* 1 */
    struct tide_stats s1 = th_stats();
    size_t own_spans = 0;
    int missing = 0, failed = 0;
    for (int t = 0; t < NT; t++) {
        int found;
        struct tide_heap_stats h = heap_of(atomic_load(&tids[t]), &found);
        if (found != 1) missing++;
        own_spans += h.n_spans;
        for (int c = 0; c < n_sizes; c++)
            for (int k = 0; k < PER; k++)
                failed += blk[t][c][k] == NULL;
    }
    CHECKF(failed == 0, "%d mallocs failed", failed);
    CHECKF(missing == 0, "%d threads without exactly one heap", missing);
    /* a few blocks of each class: all from the shared heaps */
    CHECKF(own_spans == 0, "the %d threads own %zu spans (want 0: their first blocks are shared)", NT, own_spans);
    /* all threads' blocks of a class share spans: about PER * NT blocks per
     * class, a span or two per class and shared heap, far from NT spans per class */
    size_t bound = (size_t)n_sizes * NT / 4;
    CHECKF(s1.n_spans <= bound, "%zu spans for %d threads x %d classes (want <= %zu; one span per thread and "
           "class would be %d)", s1.n_spans, NT, n_sizes, bound, NT * n_sizes);
    /* each block is reported live, by no thread heap */
    int not_live = 0, owned = 0;
    for (int t = 0; t < NT; t += 7)
        for (int c = 0; c < n_sizes; c++) {
            struct tide_block_info bi;
            int r = tide_block_info((char *)blk[t][c][0] + 1, &bi);
            if (r != TIDE_BLOCK_LIVE || bi.block.ptr != blk[t][c][0] || bi.block.size < sizes[c]) not_live++;
            else if (bi.block.heap != 0) owned++;
        }
    CHECKF(not_live == 0, "%d shared blocks not reported live by tide_block_info", not_live);
    CHECKF(owned == 0, "%d shared blocks reported as a thread heap's", owned);
    /* other thread: main frees copy 0 of every block */
    for (int t = 0; t < NT; t++)
        for (int c = 0; c < n_sizes; c++)
            check_free(&blk[t][c][0], sizes[c]);
    pthread_barrier_wait(&bar);  /* 2 */
    pthread_barrier_wait(&bar);  /* 3: workers freed their even classes */
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    /* owner exited: main frees the rest */
    for (int t = 0; t < NT; t++)
        for (int c = 0; c < n_sizes; c++)
            check_free(&blk[t][c][1], sizes[c]);
    CHECKF(bad_blocks == 0, "%d blocks changed while live", bad_blocks);
    pthread_barrier_destroy(&bar);
    tide_trim();
    struct tide_stats s2 = th_stats();
    size_t want = (size_t)NT * n_sizes * PER;
    CHECKF(s2.n_free - s1.n_free == want, "n_free %+lld, want %zu", (long long)(s2.n_free - s1.n_free), want);
    CHECKF(s2.live_blocks + want == s1.live_blocks, "live_blocks %zu -> %zu, want %zu fewer", s1.live_blocks,
           s2.live_blocks, want);
    CHECKF(s2.pending_remote_frees == 0, "%zu remote frees pending after tide_trim", s2.pending_remote_frees);
    CHECKF(s2.n_spans <= (size_t)n_sizes, "%zu spans after every block was freed and tide_trim", s2.n_spans);
}

/* ---- past the threshold ---- */

static void *many_of_one(void *arg)
{
    (void)arg;
    static void *p[2000];
    int n = 0, ok = 1;
    atomic_store(&tids[0], my_tid());
    /* malloc until the heap owns a span of the class */
    int found;
    for (n = 0; n < 2000; n++) {
        p[n] = malloc(48);
        if (!p[n]) { ok = 0; break; }
        if (heap_of(my_tid(), &found).n_spans > 0) break;
    }
    intptr_t r = ok ? n + 1 : -1;
    for (int i = 0; i < n + 1 && i < 2000; i++) free(p[i]);
    return (void *)r;
}

static void threshold_gives_own_span(void)
{
    TIDE_ONLY();
    long n = (long)in_thread(many_of_one);
    /* the default shared_blocks (docs/stats.md): 256 */
    CHECKF(n == 257, "the thread got a span of its own at its malloc %ld of the class (want 257: after 256 "
           "shared blocks)", n);
}

/* ---- what the shared heaps give back, and what they never hold ---- */

static size_t wave_classes;  /* classes the wave went through */

/* 200 blocks of each class from 256 B to 4 KiB (all shared: under
 * shared_blocks), made, written and freed one class after the other, as
 * strings grown by realloc move from class to class (bench realloc-step).
 * Returns the spans that tide holds after the wave less those before, or
 * -1 if the thread got a span of its own or a malloc failed. */
static void *wave(void *arg)
{
    (void)arg;
    static void *p[200];
    struct tide_stats st = th_stats();
    size_t before = st.n_spans;
    wave_classes = 0;
    for (int c = 1; c < TIDE_N_CLASSES; c++) {
        size_t z = st.classes[c].block_size;
        if (z < 256 || z >= 4096 || z == st.classes[c - 1].block_size)
            continue;
        wave_classes++;
        for (int i = 0; i < 200; i++) {
            p[i] = malloc(z);
            if (!p[i]) return (void *)(intptr_t)-1;
            memset(p[i], i, z);
        }
        for (int i = 0; i < 200; i++) free(p[i]);
    }
    int found;
    if (heap_of(my_tid(), &found).n_spans != 0) return (void *)(intptr_t)-1;
    size_t after = th_stats().n_spans;
    return (void *)(intptr_t)(after > before ? after - before : 0);
}

/* The frees that empty a span of a shared heap give it back at once (the
 * last span of a class excepted), though the shared heap may never need
 * the class again.  Before, every class's spans stayed until the shared
 * heap was idle for decay_ms: realloc-step held 130 MiB for 15 live. */
static void emptied_shared_spans_go_back(void)
{
    TIDE_ONLY();
    long n = (long)in_thread(wave);
    CHECKF(n >= 0, "the wave's blocks did not all come from the shared heaps (or a malloc failed)");
    /* one kept span per class, and as many again should a free find the
     * shared heap's lock taken by the scavenger; holding every span would
     * be about 150 */
    CHECKF(n <= (long)(2 * wave_classes), "%ld spans held after %zu classes of blocks were all freed (want <= %zu)",
           n, wave_classes, 2 * wave_classes);
}

/* Blocks of 4 KiB or more: sizes, and whether each came from a shared heap. */
static const size_t big_sizes[] = { 3000, 4096, 8000, 60000 };
static int big_shared[4];

static void *alloc_big(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        void *p = malloc(big_sizes[i]);
        struct tide_block_info bi;
        big_shared[i] = !p || tide_block_info(p, &bi) != TIDE_BLOCK_LIVE ? -1 : bi.block.heap == 0;
        free(p);
    }
    return NULL;
}

/* A block of TIDE_SHARED_MAX_SIZE (4 KiB) or more comes from the thread's
 * own span from the first: one is carved at a time, so sharing its span
 * saves nothing. */
static void big_blocks_not_shared(void)
{
    TIDE_ONLY();
    in_thread(alloc_big);
    CHECKF(big_shared[0] == 1, "a thread's first 3000-byte block: shared %d, want 1", big_shared[0]);
    for (int i = 1; i < 4; i++)
        CHECKF(big_shared[i] == 0, "a thread's first %zu-byte block: shared %d, want 0", big_sizes[i], big_shared[i]);
}

/* ---- the walk ---- */

static void *walk_blocks[5];

static void walk_fn(const struct tide_block *b, void *arg)
{
    int *seen = arg;
    for (int i = 0; i < 5; i++)
        if (b->ptr == walk_blocks[i]) seen[b->heap == 0 ? 0 : 1]++;
}

static void *alloc_five(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) walk_blocks[i] = malloc(100 + 200 * i);
    return NULL;
}

static void walk_sees_shared_blocks(void)
{
    TIDE_ONLY();
    pthread_t t;
    pthread_create(&t, NULL, alloc_five, NULL);
    pthread_join(t, NULL);  /* the owner exited: the blocks live on */
    int seen[2] = { 0, 0 };
    long n = tide_heap_walk(walk_fn, seen);
    CHECKF(n > 0, "tide_heap_walk returned %ld", n);
    CHECKF(seen[0] == 5 && seen[1] == 0, "the walk saw %d of 5 shared blocks with heap 0, %d with a heap", seen[0],
           seen[1]);
    for (int i = 0; i < 5; i++) free(walk_blocks[i]);
    struct tide_block_info bi;
    int r = tide_block_info(walk_blocks[2], &bi);
    CHECKF(r == TIDE_BLOCK_FREE, "a freed shared block: tide_block_info says %d, want FREE", r);
}

/* ---- a span an exited thread left comes before the shared heaps ---- */

#define LEFT_N 600       /* past shared_blocks: the thread gets spans of its own */
#define LEFT_SIZE 200
static void *left[LEFT_N];

static void *leave_blocks(void *arg)
{
    (void)arg;
    for (int i = 0; i < LEFT_N; i++) {
        left[i] = malloc(LEFT_SIZE);
        if (left[i]) th_fill(left[i], LEFT_SIZE, TH_SEED(left[i], LEFT_SIZE));
    }
    return NULL;  /* exits with its blocks live: its spans are abandoned */
}

/* The heap (tide_block_info) of a block of n bytes made by a fresh thread
 * and of the blocks after it: 0 if any was shared, else the heap's id. */
static size_t probe_n;
static void *probe(void *arg)
{
    (void)arg;
    intptr_t heap = -1;
    void *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = malloc(probe_n);
        struct tide_block_info bi;
        if (!p[i] || tide_block_info(p[i], &bi) != TIDE_BLOCK_LIVE)
            return (void *)(intptr_t)-2;
        if (heap == -1 || bi.block.heap == 0)
            heap = bi.block.heap;
    }
    for (int i = 0; i < 8; i++) free(p[i]);
    return (void *)heap;
}

static void exited_threads_span_before_shared(void)
{
    TIDE_ONLY();
    in_thread(leave_blocks);
    for (int i = 0; i < LEFT_N; i++) CHECK(left[i] != NULL);
    struct tide_stats st = th_stats();
    CHECKF(st.n_abandoned_spans > 0, "the exited thread left no span (%zu abandoned)", st.n_abandoned_spans);
    /* free a few, from here: the span has free blocks, as a pool's new
     * worker finds the blocks of the one it replaced */
    for (int i = 0; i < LEFT_N; i += 7) {
        if (!th_verify(left[i], LEFT_SIZE, TH_SEED(left[i], LEFT_SIZE))) FAILF("block %d changed", i);
        free(left[i]);
        left[i] = NULL;
    }
    probe_n = LEFT_SIZE;
    intptr_t h = in_thread(probe);
    CHECKF(h > 0, "a thread's blocks of a class an exited thread left a span of: heap %ld (want its own; 0 is a "
           "shared heap's)", (long)h);
    probe_n = 1232;  /* a class no test here leaves spans of */
    h = in_thread(probe);
    CHECKF(h == 0, "blocks of a class with no span left by an exited thread: heap %ld (want 0, shared)", (long)h);
    for (int i = 0; i < LEFT_N; i++) {
        if (!left[i]) continue;
        if (!th_verify(left[i], LEFT_SIZE, TH_SEED(left[i], LEFT_SIZE))) FAILF("block %d changed", i);
        free(left[i]);
    }
}

/* ---- a thread that fills spans of its own shares nothing more ---- */

static void *many_classes(void *arg)
{
    (void)arg;
    static void *p[8][300];
    intptr_t heap = -1;
    for (int c = 0; c < 8; c++)
        for (int i = 0; i < 300; i++)
            p[c][i] = malloc(24 + 16 * (size_t)c);
    void *q = malloc(1500);  /* a class this thread has not used */
    struct tide_block_info bi;
    if (q && tide_block_info(q, &bi) == TIDE_BLOCK_LIVE)
        heap = bi.block.heap;
    free(q);
    for (int c = 0; c < 8; c++)
        for (int i = 0; i < 300; i++)
            free(p[c][i]);
    return (void *)heap;
}

static void busy_thread_stops_sharing(void)
{
    TIDE_ONLY();
    intptr_t h = in_thread(many_classes);
    CHECKF(h > 0, "a thread with spans of its own in 8 classes took its first block of a 9th from heap %ld (want "
           "its own; 0 is a shared heap's)", (long)h);
}

/* ---- a thread that frees and never allocates ---- */

#define FREED_N 1000
static void *to_free[FREED_N];
static int consumer_found;

static void *consume(void *arg)
{
    (void)arg;
    for (int i = 0; i < FREED_N; i++) free(to_free[i]);
    heap_of(my_tid(), &consumer_found);
    return NULL;
}

static void heapless_frees_counted(void)
{
    TIDE_ONLY();
    /* small blocks of every range of sizes, with large and huge ones among
     * them; all made here, all freed by a thread that makes nothing */
    static const size_t sz[] = { 16, 48, 200, 1000, 3000, 20000, 100 * 1024, 5 * 1024 * 1024 };
    for (int i = 0; i < FREED_N; i++) {
        to_free[i] = malloc(sz[i % 8]);
        CHECK(to_free[i] != NULL);
    }
    struct tide_stats before = th_stats();
    in_thread(consume);
    struct tide_stats after = th_stats();
    CHECKF(after.n_free - before.n_free == FREED_N, "%llu frees counted of %d",
           (unsigned long long)(after.n_free - before.n_free), FREED_N);
    CHECKF(before.live_blocks - after.live_blocks == FREED_N, "live blocks fell by %zu, want %d",
           before.live_blocks - after.live_blocks, FREED_N);
    /* past its first frees, the thread counted in a heap of its own (a
     * pooled one may be reused: its figures are not the thread's alone) */
    CHECKF(consumer_found == 1, "the thread that only frees has %d heaps (want 1 after %d frees)", consumer_found,
           FREED_N);
    tide_trim();  /* takes in the frees into this thread's spans (a forked child's check below) */
}

/* ---- realloc ---- */

static void *realloc_thread(void *arg)
{
    (void)arg;
    int bad = 0;
    char *p = malloc(100);
    th_fill(p, 100, 7);
    size_t steps[] = { 1500, 100 * 1024, 5 * 1024 * 1024, 200, 40 };
    size_t have = 100;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *q = realloc(p, steps[i]);
        if (!q) { bad = 100; break; }
        size_t keep = have < steps[i] ? have : steps[i];
        if (!th_verify(q, keep < 100 ? keep : 100, 7)) bad++;
        p = q;
        have = steps[i];
    }
    free(p);
    return (void *)(intptr_t)bad;
}

static void realloc_across_ranges(void)
{
    long r = (long)in_thread(realloc_thread);
    CHECKF(r == 0, "realloc of a shared block: %ld steps lost bytes", r);
}

/* ---- fork ---- */

static void *parent_blocks[8];

static void *child_thread(void *arg)
{
    (void)arg;
    intptr_t bad = 0;
    for (int i = 0; i < 100; i++) {
        void *p = malloc(16 + 19 * i);
        if (!p) bad++;
        memset(p, 1, 16 + 19 * i);
        free(p);
    }
    return (void *)bad;
}

static void fork_child(void *arg)
{
    (void)arg;
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        if (!th_verify(parent_blocks[i], 300 + 100 * i, i)) bad++;
        free(parent_blocks[i]);
    }
    void *q[40];
    for (int i = 0; i < 40; i++) { q[i] = malloc(16 + 48 * i); if (!q[i]) bad++; else memset(q[i], 2, 16 + 48 * i); }
    pthread_t t;
    void *r;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &r) != 0 || r) bad++;
    for (int i = 0; i < 40; i++) free(q[i]);
    tide_trim();
    struct tide_stats s;
    tide_stats_get(&s);
    if (s.pending_remote_frees) bad++;
    _exit(bad ? 1 : 0);
}

static void *fork_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++) {
        parent_blocks[i] = malloc(300 + 100 * i);
        th_fill(parent_blocks[i], 300 + 100 * i, i);
    }
    return (void *)(intptr_t)th_in_child(fork_child, NULL, -1, -1);
}

static void forked_child(void)
{
    int st = (int)in_thread(fork_thread);
    char buf[80];
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child: %s", th_status_str(st, buf, sizeof buf));
    for (int i = 0; i < 8; i++) free(parent_blocks[i]);
}

/* ---- misuse ---- */

static void *malloc_1900(void *arg)
{
    (void)arg;
    return malloc(1900);
}

static void double_free_child(void *arg)
{
    (void)arg;
    /* a thread of the child's (two heaps: shared_threads=2) that has not
     * used this class: a shared block */
    void *p = th_opaque_ptr((void *)in_thread(malloc_1900));
    struct tide_block_info bi;
    if (!p || tide_block_info(p, &bi) != TIDE_BLOCK_LIVE || bi.block.heap != 0)
        _exit(3);
    uintptr_t a = (uintptr_t)p;
    free(p);
    free((void *)th_opaque(a));
    _exit(0);
}

static void double_free_reported(void)
{
    TIDE_ONLY();
    char path[] = "/tmp/tide-shared-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { FAILF("mkstemp"); return; }
    unlink(path);
    int st = th_in_child(double_free_child, NULL, -1, fd);
    char buf[600] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    char sb[80];
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "double free of a shared block: %s, stderr: %s",
           th_status_str(st, sb, sizeof sb), buf);
    CHECKF(strstr(buf, "double free") != NULL, "no \"double free\" in: %s", buf);
}

int main(void)
{
    RUN(on_tide);
    RUN(many_threads_share_spans);
    RUN(threshold_gives_own_span);
    RUN(exited_threads_span_before_shared);
    RUN(heapless_frees_counted);
    RUN(busy_thread_stops_sharing);
    RUN(emptied_shared_spans_go_back);
    RUN(big_blocks_not_shared);
    RUN(walk_sees_shared_blocks);
    RUN(realloc_across_ranges);
    RUN(forked_child);
    RUN(double_free_reported);
    return th_summary();
}
