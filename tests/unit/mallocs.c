/* unit/mallocs.c — the malloc counts a span keeps for the fast path.
 *
 * malloc counts its block in the span's used_rel (16 bits, as free's
 * decrement) and its malloc in the span's n_malloc, which goes into the
 * heap's figure when the span leaves the heap; the stats add the spans'
 * counts.  The tests drive tidei_malloc and tidei_free directly (unit
 * tests do not replace the process's malloc). */
#include "unit.h"

/* malloc(0) and malloc(1..1024) through the fast path and the slow path:
 * every malloc is counted once, in the heap's figure of its class. */
static void every_malloc_counted(void)
{
    tidei_init();
    tidei_free(tidei_malloc(1));  /* the thread's heap, made by its first malloc */
    tide_heap_t *h = tidei_tls_heap;
    CHECK(h != &tidei_empty_heap);
    size_t sizes[] = { 0, 1, 16, 17, 128, 129, 1000, 1024 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int c = (int)tidei_class_of(n);
        uint64_t m0[TIDE_N_CLASSES] = { 0 };
        tidei_heap_used(h, NULL, m0, NULL, NULL);
        uint64_t before = h->ctr.malloc[c] + m0[c];
        void *p[100];
        for (int i = 0; i < 100; i++) {
            p[i] = tidei_malloc(n);
            CHECK(p[i] != NULL);
        }
        for (int i = 0; i < 100; i++)
            tidei_free(p[i]);
        uint64_t m1[TIDE_N_CLASSES] = { 0 };
        tidei_heap_used(h, NULL, m1, NULL, NULL);
        uint64_t after = h->ctr.malloc[c] + m1[c];
        CHECKF(after - before == 100, "malloc(%zu), class %d: %llu mallocs counted, want 100", n, c,
               (unsigned long long)(after - before));
    }
}

int main(void)
{
    tidei_opt.shared_blocks = 0;  /* the thread's own spans (shared blocks count as moved_in) */
    RUN(every_malloc_counted);
    return th_summary();
}
