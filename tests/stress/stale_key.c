/* stress/stale_key.c — blocks that realloc moved out of recycled pages are
 * not taken for freed ones.
 * th-conf: prof=1,prof_sample=65536,prof_file=/dev/null,decay_ms=-1
 * (decay_ms=-1: freed pages keep their contents, as they do between two
 * scavenger passes; sampling: a sampled small block gets pages of its own)
 *
 * A free small block holds tide's free key in its second word, and a thread
 * that does not own a block's span takes the key there as proof that the
 * block is free (realloc, free and malloc_usable_size report "block already
 * freed" / "double free").  Pages that held a small span go back to the
 * page allocator with a key at the start of many blocks, so a large block,
 * or a sampled small one, cut from them starts with stale keys unless tide
 * clears the word; realloc copies the word along when it moves the block
 * to a small one, which the program never wrote there.  (tests/api/prof.sh
 * aborted about once in 20 runs so, in a key destructor's chain of
 * reallocs.)
 *
 * large_on_small_pages: a thread fills small spans of 16-byte blocks and
 *   frees them all (the spans go back to the page allocator when it exits);
 *   the main thread allocates large blocks until some of them start where
 *   a freed 16-byte block started, reallocs each to 1000 bytes (a move
 *   into a small block of its own heap, the first word written, the second
 *   not) and another thread resizes those in place, asks their usable size
 *   and frees them.  That some large block landed on the freed pages is
 *   checked (else the test would show nothing).
 * sampled_in_key_dtor: late key destructors (the thread's heap is gone:
 *   the backup heap's spans are abandoned at once, so every later call on
 *   their blocks is a non-owner's) allocate small blocks, some of them
 *   sampled, after freeing many 16-byte blocks, and take each through
 *   realloc to a large size, back to a small one, and in place. */
#include "stress.h"

/* ---- large_on_small_pages ---- */

#define FILL_BLOCKS (64 * 4096)      /* 64 spans of 16-byte blocks: 4 MiB */
#define BIG (80 * KiB)               /* large: above TIDE_SMALL_MAX (64 KiB) */
#define MAX_BIG 256

static uintptr_t fill_lo, fill_hi;  /* the freed 16-byte blocks lie in [lo, hi) */

static void *fill_and_free(void *arg)
{
    (void)arg;
    void **v = st_map(FILL_BLOCKS * sizeof *v);
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < FILL_BLOCKS; i++) {
        v[i] = malloc(16);
        if (!v[i]) {
            st_report("malloc(16) failed");
            break;
        }
        *(char *)v[i] = 1;
        uintptr_t a = (uintptr_t)v[i];
        if (a < lo) lo = a;
        if (a + 16 > hi) hi = a + 16;
    }
    for (size_t i = 0; i < FILL_BLOCKS; i++)
        free(v[i]);
    st_unmap(v, FILL_BLOCKS * sizeof *v);
    fill_lo = lo;
    fill_hi = hi;
    return NULL;  /* the thread's exit gives its last empty span back too */
}

static void *small[MAX_BIG];
static size_t n_small;

static void *use_remotely(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < n_small; i++) {
        char *p = small[i];
        if (malloc_usable_size(p) < 1000)
            st_report("malloc_usable_size(%p) < 1000", (void *)p);
        char *q = realloc(p, 1020);  /* in place: one class */
        if (!q || q[0] != (char)(i + 1)) {
            st_report("realloc of small block %zu to 1020 bytes lost it (%p)", i, (void *)q);
            continue;
        }
        free(q);
    }
    return NULL;
}

static void large_on_small_pages(void)
{
    TIDE_ONLY();
    pthread_t t;
    if (!st_spawn(&t, fill_and_free, NULL))
        return;
    st_join(t);
    st_check_errors();
    void *big[MAX_BIG];
    size_t n_big = 0, on_freed = 0;
    while (n_big < MAX_BIG && on_freed < 16) {
        char *p = malloc(BIG);
        if (!p) {
            FAILF("malloc(%zu) failed", BIG);
            break;
        }
        /* a block start of the 16-byte spans: 16-byte aligned, as every block is */
        if ((uintptr_t)p >= fill_lo && (uintptr_t)p < fill_hi)
            on_freed++;
        big[n_big++] = p;
    }
    CHECKF(on_freed > 0, "none of %zu large blocks of %zu bytes landed on the freed 16-byte spans [%#lx, %#lx)",
           n_big, BIG, (unsigned long)fill_lo, (unsigned long)fill_hi);
    /* each to a small block: the first byte written, the second word not */
    for (size_t i = 0; i < n_big; i++) {
        char *p = big[i];
        p[0] = (char)(i + 1);
        char *q = realloc(p, 1000);
        if (!q) {
            FAILF("realloc(%p, 1000) failed", (void *)p);
            for (size_t j = i + 1; j < n_big; j++)
                free(big[j]);
            n_big = i;
            break;
        }
        small[i] = q;
    }
    n_small = n_big;
    if (!st_spawn(&t, use_remotely, NULL))
        return;
    st_join(t);
    st_check_errors();
}

/* ---- sampled_in_key_dtor ---- */

static pthread_key_t late_key;

#define DTOR_THREADS 8

/* Runs after tide's own key destructor: the heap is gone. */
static void late_dtor(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    void **v = st_map(4096 * sizeof *v);
    for (long r = 0; r < rounds && !st_failed(); r++) {
        /* blocks whose pages go back free, with keys in them */
        for (int i = 0; i < 4096; i++)
            v[i] = malloc(16);
        for (int i = 0; i < 4096; i++)
            free(v[i]);
        for (int k = 0; k < 64; k++) {
            char *p = malloc(4000);  /* sampled about once in 17 */
            if (!p) {
                st_report("malloc(4000) failed in a late key destructor");
                break;
            }
            p[0] = 'a';
            char *q = realloc(p, 200000);
            if (q) q = realloc(q, 1000);  /* a move: the second word comes along */
            if (q) q = realloc(q, 1020);  /* in place (or sampled: moved) */
            if (!q || q[0] != 'a') {
                st_report("realloc chain lost the block (%p)", (void *)q);
                free(q);
                break;
            }
            free(q);
        }
    }
    st_unmap(v, 4096 * sizeof *v);
}

static void *dtor_thread(void *arg)
{
    void *volatile p = malloc(16);  /* a heap for tide's destructor to give up */
    free(p);
    pthread_setspecific(late_key, arg);
    return NULL;
}

static void sampled_in_key_dtor(void)
{
    TIDE_ONLY();
    /* created after tide's key (made before the first malloc): runs after it */
    if (pthread_key_create(&late_key, late_dtor) != 0) {
        FAILF("pthread_key_create failed");
        return;
    }
    long rounds = st_ops(20);
    pthread_t t[DTOR_THREADS];
    for (int round = 0; round < 4; round++) {
        int n = 0;
        for (; n < DTOR_THREADS; n++)
            if (!st_spawn(&t[n], dtor_thread, (void *)(intptr_t)rounds))
                break;
        for (int i = 0; i < n; i++)
            st_join(t[i]);
    }
    st_check_errors();
    pthread_key_delete(late_key);
}

int main(void)
{
    RUN(on_tide);
    RUN(large_on_small_pages);
    RUN(sampled_in_key_dtor);
    return th_summary();
}
