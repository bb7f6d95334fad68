/* introspect/progs/pattern.c — a process with a known heap, for the gdb
 * tooling test (tests/introspect/gdb.sh, which builds and runs it).
 *
 *   pattern [SECONDS]
 *
 * Five threads build this heap, then the program reports what tide itself
 * says about it and waits (SECONDS, default 120, or until killed) with every
 * thread blocked, so that gdb can read it live or from a core file:
 *
 *   main      1000 blocks of 100 bytes (class of 112) and frees 100 of them;
 *             200 of 500 bytes (512); 300 of 1000 bytes (1024), which fill
 *             four spans; 3 of 0 bytes (class 0) and 2 of 10 (16); 6 large
 *             blocks of 100000 bytes; a huge block of 10 MiB.
 *   worker    400 blocks of 200 bytes (208), frees 50 itself; then blocks.
 *   freer     64 blocks of 48 bytes, frees 32; 20 of 16000 bytes (16384,
 *             four to a span: five spans), frees one in three of them; frees 200 of main's 100-byte blocks
 *             and 50 of worker's (remote frees); has 5 of its 48-byte
 *             blocks freed by a thread without a heap (stranger, phase 1);
 *             then exits: its heap is pooled, its spans are abandoned (and
 *             those 5 remote frees collected into the global counters).
 *   stranger  (phase 2) a thread that never allocates (no heap: its frees
 *             go to the global counters): frees 10 of main's 100-byte blocks
 *             and 100 of its 500-byte blocks.
 *   main      150 more blocks of 500 bytes (collecting the stranger's
 *             frees) and one of 16000 bytes (adopting one of freer's spans
 *             of that class; two stay abandoned);
 *             frees 8 of freer's 48-byte blocks (remote frees into an
 *             abandoned span).
 *   stranger  (phase 3, after main's last malloc, which would drain the
 *             notify list) frees main's first two 1000-byte blocks: their
 *             span is full, so one lands on main's notify list, the other
 *             on the span's remote list.
 *   main      frees one large block (a free page run between live ones) and
 *             a huge block of 6 MiB it allocated for the purpose (into the
 *             huge cache).
 *
 * Output on stdout (written with write(2): stdio would allocate):
 *   pid N
 *   block NAME ADDR STATE BASE SIZE CLASS HEAP   tide_block_info(ADDR), for
 *       addresses of every kind; STATE is not_tide, free or live, BASE is 0
 *       when not_tide; NAME ends in _free, _live or _none: what the test
 *       expects STATE to be
 *   stat NAME VALUE                           fields of tide_stats_get()
 *   heap ID TID SPANS FULL CACHED USED MALLOCS FREES   tide_stats_heaps()
 *   report-begin / the text of tide_stats_print(fd, 0) / report-end
 *   ready
 * Exit status 2 when the set-up itself failed (a message on stderr). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"

#define N_A 1000        /* main: 100-byte blocks */
#define N_B 300         /* main: 1000-byte blocks */
#define N_L 6           /* main: 100000-byte (large) blocks */
#define N_D 200         /* main: 500-byte blocks, then N_D2 more */
#define N_D2 150
#define N_W 400         /* worker: 200-byte blocks */
#define N_C 64          /* freer: 48-byte blocks */
#define N_F 20          /* freer: 16000-byte blocks, then main N_F2 more */
#define N_F2 1

static void *a[N_A], *b[N_B], *big[N_L], *huge, *huge2, *d[N_D + N_D2], *z[5];
static void *w[N_W], *c[N_C], *f[N_F + N_F2];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int worker_ready;

/* printf-like output through write(2), without allocating. */
static void out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    for (int off = 0; off < n;) {
        ssize_t k = write(1, buf + off, (size_t)(n - off));
        if (k <= 0)
            exit(2);
        off += (int)k;
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        static const char msg[] = "pattern: malloc failed\n";
        (void)!write(2, msg, sizeof msg - 1);
        exit(2);
    }
    memset(p, 0x5a, n < 4096 ? n : 4096);  /* no accidental free marks */
    return p;
}

static void *worker_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < N_W; i++)
        w[i] = xmalloc(200);
    for (int i = 0; i < 50; i++)
        free(w[i]);
    pthread_mutex_lock(&mu);
    worker_ready = 1;
    pthread_cond_broadcast(&cv);
    for (;;)  /* blocked (holding no tide lock) until the process ends */
        pthread_cond_wait(&cv, &mu);
    return NULL;
}

/* Runs fn(arg) in a new thread and waits for it to end. */
static void run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0) {
        static const char msg[] = "pattern: cannot run a thread\n";
        (void)!write(2, msg, sizeof msg - 1);
        exit(2);
    }
}

/* A thread that never allocates, so it never gets a heap. */
static void *stranger_main(void *arg)
{
    switch ((int)(intptr_t)arg) {
    case 1:  /* freer's blocks, while freer lives */
        for (int i = 40; i < 45; i++)
            free(c[i]);
        break;
    case 2:
        for (int i = 300; i < 310; i++)
            free(a[i]);
        for (int i = 0; i < 100; i++)
            free(d[i]);
        break;
    case 3:
        free(b[0]);  /* its span is full: on main's notify list */
        free(b[1]);  /* same span, after the notify: on its remote list */
        break;
    }
    return NULL;
}

static void *freer_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < N_C; i++)
        c[i] = xmalloc(48);
    for (int i = 0; i < 32; i++)
        free(c[i]);
    for (int i = 0; i < N_F; i++)
        f[i] = xmalloc(16000);
    free(f[0]);   /* one free block in the first, third and fifth of its five spans */
    free(f[10]);
    free(f[17]);
    for (int i = 100; i < 300; i++)
        free(a[i]);
    for (int i = 50; i < 100; i++)
        free(w[i]);
    run_thread(stranger_main, (void *)1);
    return NULL;
}

static void block(const char *name, const void *p)
{
    static const char *const states[] = { "not_tide", "free", "live" };
    struct tide_block_info bi;
    int st = tide_block_info(p, &bi);
    out("block %s %#lx %s %#lx %zu %d %u\n", name, (unsigned long)(uintptr_t)p,
        st >= 0 && st <= 2 ? states[st] : "?", (unsigned long)(uintptr_t)bi.block.ptr,
        bi.block.size, bi.block.size_class, bi.block.heap);
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 120;

    for (int i = 0; i < N_A; i++)
        a[i] = xmalloc(100);
    for (int i = 0; i < N_B; i++)
        b[i] = xmalloc(1000);
    for (int i = 0; i < N_D; i++)
        d[i] = xmalloc(500);
    for (int i = 0; i < 5; i++)
        z[i] = xmalloc(i < 3 ? 0 : 10);
    for (int i = 0; i < N_L; i++)
        big[i] = xmalloc(100000);
    huge = xmalloc((size_t)10 << 20);
    for (int i = 0; i < 100; i++)
        free(a[i]);

    pthread_t tw;
    if (pthread_create(&tw, NULL, worker_main, NULL) != 0)
        return 2;
    pthread_mutex_lock(&mu);
    while (!worker_ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    run_thread(freer_main, NULL);
    run_thread(stranger_main, (void *)2);
    for (int i = N_D; i < N_D + N_D2; i++)
        d[i] = xmalloc(500);
    for (int i = N_F; i < N_F + N_F2; i++)
        f[i] = xmalloc(16000);
    huge2 = xmalloc((size_t)6 << 20);
    for (int i = 32; i < 40; i++)
        free(c[i]);
    run_thread(stranger_main, (void *)3);
    free(big[3]);  /* nothing may reuse its pages before the report */
    free(huge2);

    int local;
    out("pid %d\n", (int)getpid());
    block("a_local_free", a[5]);
    block("a_remote_free", a[150]);
    block("a_stranger_free", a[305]);
    block("a_live", a[500]);
    block("a_interior_live", (char *)a[777] + 57);
    block("a_last_live", a[N_A - 1]);
    block("b_notify_free", b[0]);
    block("b_remote_free", b[1]);
    block("b_live", (char *)b[2] + 1000);
    block("d_collected_live", d[150]);
    block("d_new_live", d[N_D + 7]);
    block("z0_live", z[0]);
    block("z4_live", z[4]);
    block("w_local_free", w[10]);
    block("w_remote_free", w[60]);
    block("w_live", w[200]);
    block("c_abandoned_live", c[50]);
    block("c_abandoned_free", c[35]);
    block("c_collected_free", c[42]);
    block("c_own_free", c[3]);
    block("c_uncarved_free", (char *)c[0] + 1300 * 48);  /* c[0] starts a span of 1365 blocks */
    block("c_tail_free", (char *)c[0] + 1365 * 48 + 4);
    block("f_live", f[5]);
    block("f_other_live", f[12]);
    block("f_main_live", f[N_F]);
    block("large_live", big[0]);
    block("large_interior_live", (char *)big[2] + 5000);
    block("large_freed_free", (char *)big[3] + 8192);
    block("huge_live", huge);
    block("huge_interior_live", (char *)huge + (7 << 20) + 3);
    block("huge_cached_free", (char *)huge2 + 100);
    block("stack_none", &local);
    block("null_none", NULL);

    struct tide_stats st;
    if (tide_stats_get(&st) != 0)
        return 2;
#define S(f) out("stat %s %zu\n", #f, (size_t)st.f)
    S(live_bytes); S(live_blocks); S(small_live_bytes); S(large_live_bytes); S(n_large);
    S(huge_bytes); S(n_huge); S(n_malloc); S(n_free); S(cached_bytes); S(abandoned_bytes);
    S(pending_remote_frees); S(n_spans); S(n_full_spans); S(n_abandoned_spans); S(n_chunks);
    S(n_heaps); S(n_heaps_total); S(mapped_bytes); S(committed_bytes);
#undef S
    for (int k = 0; k < TIDE_N_CLASSES; k++)
        if (st.classes[k].live_blocks)
            out("class %zu %zu\n", st.classes[k].block_size, st.classes[k].live_blocks);
    struct tide_heap_stats hs[16];
    size_t nh = tide_stats_heaps(hs, 16);
    for (size_t i = 0; i < nh && i < 16; i++)
        out("heap %u %d %zu %zu %zu %zu %lu %lu\n", hs[i].id, hs[i].tid, hs[i].n_spans, hs[i].n_full_spans,
            hs[i].cached_bytes, hs[i].used_bytes, (unsigned long)hs[i].n_malloc, (unsigned long)hs[i].n_free);
    out("report-begin\n");
    if (tide_stats_print(1, 0) != 0)
        return 2;
    out("report-end\nready\n");

    for (int i = 0; i < seconds; i++)
        sleep(1);
    return 0;
}
