/* unit/fastmark.c — the malloc fast path's mark: the sampler's countdown
 * (ctr.sample_left), charged on entry, and its twin (ctr.fast_left),
 * charged on exit, differ while a pop runs (heap.c fast_inside).
 *
 * A malloc in a signal handler may interrupt another's fast path between
 * its entry and its exit.  The outer one must still read as inside when
 * the inner one has left, also when the inner one's charge ran the
 * countdown out: the sampler's event re-arms the countdown, and must move
 * the twin with it by as much as they were apart, not make them equal.
 * The interrupted entry is made by hand (tidei_fast_charge, as the fast
 * path does) and the inner malloc is tidei_malloc itself. */
#include "unit.h"

static bool inside(const tide_heap_t *h)
{
    return h->ctr.sample_left != h->ctr.fast_left;
}

/* The inner malloc takes the fast path, then runs the countdown out. */
static void interrupted_malloc_stays_inside(void)
{
    tidei_init();
    void *warm = tidei_malloc(48);  /* the thread's heap, and a direct span of 48 */
    CHECK(warm != NULL);
    tide_heap_t *h = tidei_tls_heap;
    CHECK(h != &tidei_empty_heap);
    CHECKF(!inside(h), "a thread outside every malloc reads as inside: countdown %lld, twin %lld",
           (long long)h->ctr.sample_left, (long long)h->ctr.fast_left);

    /* the outer malloc's entry, 100 bytes, with 1000 left */
    h->ctr.sample_left = h->ctr.fast_left = 1000;
    CHECK(!tidei_fast_charge(h, 100));
    CHECK(inside(h));

    /* an inner malloc that stays on the fast path */
    void *p = tidei_malloc(48);
    CHECK(p != NULL);
    CHECKF(inside(h), "the outer malloc reads as outside after an inner malloc");
    tidei_free(p);

    /* an inner malloc whose charge runs the countdown out: the event */
    p = tidei_malloc(1000);
    CHECK(p != NULL);
    CHECKF(h->ctr.sample_left > 0, "the countdown was not re-armed: %lld", (long long)h->ctr.sample_left);
    CHECKF(inside(h), "the outer malloc reads as outside after an inner malloc's sampler event");
    tidei_free(p);

    /* the outer malloc's exit */
    tidei_fast_exit(h, 100);
    CHECKF(!inside(h), "the outer malloc reads as inside after its exit: countdown %lld, twin %lld",
           (long long)h->ctr.sample_left, (long long)h->ctr.fast_left);
    tidei_free(warm);
}

/* Charges outside the fast path (a large block, an aligned one, a realloc
 * in place) and their events leave a thread outside. */
static void other_charges_leave_it_outside(void)
{
    tidei_init();
    tide_heap_t *h = tidei_tls_heap;
    void *p = tidei_malloc(300000);
    CHECK(p != NULL);
    CHECK(!inside(h));
    h->ctr.sample_left = h->ctr.fast_left = 100;  /* the next charge runs it out */
    void *q = tidei_malloc(200000);
    CHECK(q != NULL);
    CHECKF(!inside(h) && h->ctr.sample_left > 0, "after a large malloc's event: countdown %lld, twin %lld",
           (long long)h->ctr.sample_left, (long long)h->ctr.fast_left);
    tidei_free(q);
    tidei_free(p);
}

int main(void)
{
    tidei_opt.shared_blocks = 0;
    RUN(interrupted_malloc_stays_inside);
    RUN(other_charges_leave_it_outside);
    return th_summary();
}
