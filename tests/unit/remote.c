/* unit/remote.c — the count kept in a span's remote word.
 *
 * Another thread's free pushes the block on the span's remote list and
 * adds one to the count in bits 48-63 of the same word, in one
 * compare-exchange; the owner takes list and count together and needs no
 * walk of the list to know how many blocks came back.  Checked here: the
 * count equals the list's length after remote frees from two threads, the
 * owner's collect lowers the span's count of blocks out by exactly that
 * many and leaves every returned block on a free list of the span (when
 * the span's own list is empty and when it is not), and a second batch
 * taken in while local_free holds the first is joined to it. */
#include "unit.h"

enum { N_BLOCKS = 64 };

typedef struct {
    void **blocks;
    int n;
} batch_t;

static void *free_batch(void *arg)
{
    batch_t *b = arg;
    for (int i = 0; i < b->n; i++)
        tidei_free(b->blocks[i]);
    return NULL;
}

/* Frees blocks[0..n) from a new thread. */
static void free_elsewhere(void **blocks, int n)
{
    batch_t b = { blocks, n };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_batch, &b) == 0);
    pthread_join(t, NULL);
}

/* How many of blocks[0..n) are on list, a free list of s (each link
 * checked), and how long the list is. */
static size_t count_on_list(const tide_span_t *s, const tide_free_block_t *list, void **blocks, int n, size_t *len)
{
    size_t found = 0;
    *len = 0;
    for (; list; list = tidei_link_next(s, list, "test")) {
        (*len)++;
        for (int i = 0; i < n; i++)
            if (blocks[i] == list)
                found++;
    }
    return found;
}

/* n blocks of the calling thread's 48-byte span s, all handed out. */
static tide_span_t *blocks_of_one_span(void **blocks, int n)
{
    tide_span_t *s = NULL;
    int k = 0;
    void *other[4 * N_BLOCKS];
    int n_other = 0;
    while (k < n && n_other < 4 * N_BLOCKS) {
        void *p = tidei_malloc(48);
        CHECK(p != NULL);
        tide_span_t *ps = tidei_pagemap_lookup(p);
        if (!s)
            s = ps;
        if (ps == s)
            blocks[k++] = p;
        else
            other[n_other++] = p;
    }
    CHECKF(k == n, "only %d blocks of one span", k);
    for (int i = 0; i < n_other; i++)
        tidei_free(other[i]);
    return s;
}

static void count_is_the_list(void)
{
    tidei_init();
    void *blocks[N_BLOCKS];
    tide_span_t *s = blocks_of_one_span(blocks, N_BLOCKS);
    if (TH_FAILED())
        return;
    uint32_t used = tidei_span_used(s);
    /* two threads free 20 and 12 */
    free_elsewhere(blocks, 20);
    free_elsewhere(blocks + 20, 12);
    uintptr_t w = atomic_load_explicit(&s->remote, acquire);
    size_t len;
    size_t found = count_on_list(s, (const tide_free_block_t *)(w & TIDE_RS_PTR_MASK), blocks, 32, &len);
    CHECKF(w >> TIDE_RS_COUNT_SHIFT == 32, "count %llu, want 32", (unsigned long long)(w >> TIDE_RS_COUNT_SHIFT));
    CHECKF(len == 32 && found == 32, "list of %zu blocks, %zu of those freed", len, found);
    CHECKF(tidei_span_used(s) == used, "remote frees count as out until taken in: %u, want %u", tidei_span_used(s),
           used);

    /* the owner takes them in: s->free is empty (every block built is
     * out or on the remote list) or not */
    size_t got = tidei_span_collect(s, true);
    CHECKF(got == 32, "collect took %zu, want 32", got);
    CHECKF(tidei_span_used(s) == used - 32, "used %u after the collect, want %u", tidei_span_used(s), used - 32);
    CHECKF((atomic_load_explicit(&s->remote, relaxed) & ~TIDE_RS_MASK) == 0, "remote word %#llx after the collect",
           (unsigned long long)atomic_load_explicit(&s->remote, relaxed));
    size_t len_free, len_local;
    size_t f1 = count_on_list(s, s->free, blocks, 32, &len_free);
    size_t f2 = count_on_list(s, s->local_free, blocks, 32, &len_local);
    CHECKF(f1 + f2 == 32, "%zu of the 32 on the free lists (%zu on free, %zu on local_free)", f1 + f2, f1, f2);

    /* two more batches taken in one after the other, outside malloc: the
     * second is joined to the first on local_free */
    free_elsewhere(blocks + 32, 10);
    size_t t1 = tidei_span_take_remote(s);
    free_elsewhere(blocks + 42, 22);
    size_t t2 = tidei_span_take_remote(s);
    CHECKF(t1 == 10 && t2 == 22, "took %zu then %zu, want 10 then 22", t1, t2);
    CHECKF(tidei_span_used(s) == used - 64, "used %u, want %u", tidei_span_used(s), used - 64);
    f1 = count_on_list(s, s->free, blocks, N_BLOCKS, &len_free);
    f2 = count_on_list(s, s->local_free, blocks, N_BLOCKS, &len_local);
    CHECKF(f1 + f2 == N_BLOCKS, "%zu of the %d on the free lists", f1 + f2, N_BLOCKS);
}

int main(void)
{
    tidei_opt.shared_blocks = 0;  /* the thread's own spans */
    RUN(count_is_the_list);
    return th_summary();
}
