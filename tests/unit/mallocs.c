/* unit/mallocs.c — the malloc counts a span keeps for the fast path.
 *
 * malloc counts its block and its malloc with one add to the span's
 * used_mallocs (bits 0-15: the blocks out, relative to slow_at; bits
 * 16-63: mallocs not yet folded into n_malloc).  The 48-bit count must
 * never wrap: it is folded whenever the span becomes direct, on every
 * slow-path malloc, and for the direct spans whenever the sampler's
 * countdown runs out, which it does at least every 2^40 bytes asked for
 * (malloc(0) takes the slow path, so a fast-path malloc asks for one byte
 * at least).  The tests drive tidei_malloc and tidei_free directly (unit
 * tests do not replace the process's malloc) and put a count near the
 * wrap by hand. */
#include "unit.h"

/* The direct span of n-byte blocks of the calling thread's heap, made by
 * a first malloc. */
static tide_span_t *direct_of(size_t n)
{
    void *p = tidei_malloc(n);
    CHECKF(p != NULL, "malloc(%zu)", n);
    tidei_free(p);
    return tidei_direct(tidei_tls_heap, (int)tidei_class_of(n));
}

/* A count 5 short of the wrap on the 48-byte span, then the countdown
 * runs out on a malloc of another class (that malloc's own span is folded
 * by the slow path anyway): the fold of every direct span keeps the
 * 48-byte span's mallocs. */
static void countdown_folds_before_the_wrap(void)
{
    tidei_init();
    tide_span_t *s = direct_of(48);
    tide_heap_t *h = tidei_tls_heap;
    CHECK(s != &tidei_empty_span && s->kind == TIDE_SPAN_SMALL);
    uint64_t before = tidei_span_mallocs(s);
    uint64_t near = (UINT64_C(1) << 48) - 5;
#if TIDE_PACKED_COUNT
    s->used_mallocs = (s->used_mallocs & 0xFFFF) | (near << 16);
#else
    s->n_malloc += near;  /* (counted in n_malloc directly: nothing to wrap) */
#endif
    uint64_t want = before + near;
    CHECKF(tidei_span_mallocs(s) == want, "count set: %llu, want %llu", (unsigned long long)tidei_span_mallocs(s),
           (unsigned long long)want);
    direct_of(200);
    h->ctr.sample_left = 1;  /* the next malloc runs the countdown out */
    void *q = tidei_malloc(200);
    CHECK(q != NULL);
    tidei_free(q);
    for (int i = 0; i < 20; i++) {
        void *p = tidei_malloc(48);
        CHECK(p != NULL);
        tidei_free(p);
    }
    want += 20;
    CHECKF(tidei_direct(h, (int)tidei_class_of(48)) == s, "the direct span changed");
    CHECKF(tidei_span_mallocs(s) == want, "after 20 more mallocs: %llu, want %llu (wrapped?)",
           (unsigned long long)tidei_span_mallocs(s), (unsigned long long)want);
    CHECKF(h->ctr.sample_left > 0 && h->ctr.sample_left <= ((int64_t)1 << 40),
           "countdown re-armed at %lld", (long long)h->ctr.sample_left);
}

/* malloc(0) and malloc(1..1024) through the fast path and the slow path:
 * every malloc is counted once, in the heap's figure of its class. */
static void every_malloc_counted(void)
{
    tidei_init();
    tide_heap_t *h = tidei_tls_heap;
    size_t sizes[] = { 0, 1, 16, 17, 128, 129, 1000, 1024 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int c = (int)tidei_class_of(n);
        uint64_t m0[TIDE_N_CLASSES] = { 0 };
        tidei_heap_used(h, NULL, m0, NULL);
        uint64_t before = h->ctr.malloc[c] + m0[c];
        void *p[100];
        for (int i = 0; i < 100; i++) {
            p[i] = tidei_malloc(n);
            CHECK(p[i] != NULL);
        }
        for (int i = 0; i < 100; i++)
            tidei_free(p[i]);
        uint64_t m1[TIDE_N_CLASSES] = { 0 };
        tidei_heap_used(h, NULL, m1, NULL);
        uint64_t after = h->ctr.malloc[c] + m1[c];
        CHECKF(after - before == 100, "malloc(%zu), class %d: %llu mallocs counted, want 100", n, c,
               (unsigned long long)(after - before));
    }
}

int main(void)
{
    tidei_opt.shared_blocks = 0;  /* the thread's own spans (shared blocks count as moved_in) */
    RUN(countdown_folds_before_the_wrap);
    RUN(every_malloc_counted);
    return th_summary();
}
