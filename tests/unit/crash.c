/* unit/crash.c — the crash report's words for an address (crash.c
 * describe) and its list of heaps, without a signal: a live, a freed and a
 * never handed out small block, a large block, a free page run, span
 * descriptors and heaps (metadata), the page map, a guard page and a
 * guarded block, the signal stack, memory that is not the heap; a free list
 * whose links were overwritten (the description must end, and say what it
 * can); and a lock held by another thread, named with its holder. */
#include "unit.h"

static char out[8192];

/* describe(a, sp) into out. */
static const char *words(uintptr_t a, uintptr_t sp)
{
    int p[2];
    if (pipe(p) != 0)
        return "";
    describe(p[1], a, sp);
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof out - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = 0;
    return out;
}

static const char *heaps_words(void)
{
    int p[2];
    if (pipe(p) != 0)
        return "";
    print_heaps(p[1], tidei_os_gettid());
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof out - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = 0;
    return out;
}

#define HAS(a, sp, text) CHECKF(strstr(words((uintptr_t)(a), (uintptr_t)(sp)), text) != NULL, \
                                "describe(%p): '%s' has no '%s'", (void *)(a), out, text)

static void small_blocks(void)
{
    char *keep[8];
    for (int i = 0; i < 8; i++)
        keep[i] = tidei_malloc(48);
    char want[200];
    snprintf(want, sizeof want, "8 bytes into the live 48-byte block at %p (size class 3)", (void *)keep[3]);
    HAS(keep[3] + 8, 0, want);
    tidei_free(keep[3]);
    snprintf(want, sizeof want, "0 bytes into the free 48-byte block at %p (size class 3)", (void *)keep[3]);
    HAS(keep[3], 0, want);
    tide_span_t *s = tidei_pagemap_lookup(keep[0]);
    uintptr_t unbuilt = s->start + (uintptr_t)s->n_built * s->block_size;
    if (s->n_built < s->n_blocks)
        HAS(unbuilt + 1, 0, "free 48-byte block");
    HAS(unbuilt + 1, 0, "of span 0x");
    HAS(keep[0], 0, "heap 1 (thread ");

    /* a free list whose link was overwritten: the walk stops at it */
    tidei_free(keep[5]);
    tide_free_block_t *b = (tide_free_block_t *)keep[5];
    uintptr_t saved = b->link;
    b->link = 0xdead0000beef0;
    tidei_free(keep[6]);  /* keep[6] -> keep[5] -> garbage */
    HAS(keep[6], 0, "free 48-byte block");
    b->link = saved;
    for (int i = 0; i < 8; i++)
        if (i != 3 && i != 5 && i != 6)
            tidei_free(keep[i]);
}

static void large_and_runs(void)
{
    char *big = tidei_malloc(300 * KiB);
    char *next = tidei_malloc(300 * KiB);
    char want[200];
    snprintf(want, sizeof want, "100 bytes into the live large block of %zu bytes at %p", (size_t)300 * KiB,
             (void *)big);
    HAS(big + 100, 0, want);
    tidei_free(big);
    HAS(big + 100, 0, "in a free run of");
    tidei_free(next);
}

static void metadata(void)
{
    void *p = tidei_malloc(64);
    tide_span_t *s = tidei_pagemap_lookup(p);
    HAS(s, 0, "tide's metadata (span descriptors, heaps)");
    HAS(tidei_tls_heap, 0, "tide's metadata (span descriptors, heaps)");
    uintptr_t page = (uintptr_t)p >> TIDE_PAGE_SHIFT;
    tide_span_t **leaf = atomic_load_explicit(&tidei_pagemap[page >> TIDE_MAP_LEAF_BITS], relaxed);
    HAS(leaf + 5, 0, "tide's metadata (the page map)");
    tidei_free(p);
}

static int global_var;

static void not_heap(void)
{
    int local = 0;
    HAS(&global_var, 0, "is not heap memory\n");
    HAS(16, 0, "is not heap memory\n");
    HAS((uintptr_t)&local - 4096, (uintptr_t)&local, "stack pointer: a stack overflow?");
}

static void guarded(void)
{
    /* guard=1 was set before init (main), at a rate that never samples:
     * the block is asked for directly */
    char *p = tidei_guard_alloc(tidei_tls_heap, 100, 0, TIDE_PROF_NONE);
    struct tide_block_info bi;
    memset(&bi, 0, sizeof bi);
    tidei_guard_block_info(p, &bi);
    CHECKF(bi.block.size_class == TIDE_CLASS_GUARDED, "the block of 100 bytes is not guarded (class %d)",
           bi.block.size_class);
    if (bi.block.size_class != TIDE_CLASS_GUARDED)
        return;
    char want[200];
    uintptr_t a = ((uintptr_t)p & 4095) == 0 ? (uintptr_t)p - 1 : ((uintptr_t)p + 100 + 15) & ~(uintptr_t)15;
    long slot = slot_of((uintptr_t)p);
    snprintf(want, sizeof want, "guarded slot %ld: ", slot);
    HAS(((uintptr_t)p & 4095) == 0 ? (uintptr_t)p + 5000 : (uintptr_t)p - 5000, 0, want);
    HAS(a, 0, ((uintptr_t)p & 4095) == 0 ? "a guard page of tide's guarded slots" : "a guard page");
    tidei_free(p);
    snprintf(want, sizeof want, "10 bytes into the freed 100-byte block at %p", (void *)p);
    HAS(p + 10, 0, want);
    HAS(guard_slots, 0, "tide's metadata (the table of guarded slots)");
}

static void signal_stack(void)
{
    tide_heap_t *h = tidei_tls_heap;
    if (!h->alt_stack && !first_stack) {
        CHECKF(0, "no signal stack was lent (crash_report=1)");
        return;
    }
    if (first_stack)
        HAS(first_stack + 8192, 0, "the signal stack tide lent the thread that started it");
    if (h->alt_stack)
        HAS(h->alt_stack + 8192, 0, "signal stack tide lent heap");
}

static void *hold_arena(void *arg)
{
    volatile int *state = arg;
    pthread_mutex_lock(&tidei_arena.lock);
    *state = 1;
    while (*state == 1)
        usleep(1000);
    pthread_mutex_unlock(&tidei_arena.lock);
    return NULL;
}

static void lock_held(void)
{
    char *blk = tidei_malloc(48);  /* before the lock is taken: this may need the arena */
    volatile int state = 0;
    pthread_t t;
    pthread_create(&t, NULL, hold_arena, (void *)&state);
    while (state == 0)
        usleep(1000);
    const char *w = heaps_words();
    CHECKF(strstr(w, "tide: held: the arena lock by thread ") != NULL, "no lock holder in: %s", w);
    CHECKF(strstr(w, "(this one)") != NULL, "the calling thread's heap is not marked: %s", w);
    /* describe takes no lock either */
    HAS(blk, 0, "live 48-byte block");
    state = 2;
    pthread_join(t, NULL);
    tidei_free(blk);
}

int main(void)
{
    /* tide started before main (its constructor): set the two up now */
    tidei_init();
    tidei_opt.guard = 1;
    tidei_opt.guard_rate = 1L << 40;
    tidei_opt.crash_report = 1;
    tidei_opt.shared_blocks = 0;  /* blocks from the thread's own spans: "heap 1 (thread N)" */
    tidei_guard_init();
    tidei_crash_init();
    tidei_free(tidei_malloc(16));  /* the thread's heap, and its signal stack */
    RUN(small_blocks);
    RUN(large_and_runs);
    RUN(metadata);
    RUN(not_heap);
    RUN(guarded);
    RUN(signal_stack);
    RUN(lock_held);
    return th_summary();
}
