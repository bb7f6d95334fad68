/* gc/sweep.c — giving dead blocks back: the lazy sweep of one span (its
 * alloc bits &= its mark bits, by the thread about to allocate from it),
 * the pools rebuilt after each mark, and the spans and big blocks with
 * nothing marked, given back to the page allocator after the world
 * restarts.
 *
 * After a mark every span a thread holds counts as swept in this cycle
 * (its blocks allocated since the mark are not marked: it is never swept
 * before the next collection; its dead blocks wait one cycle), spans
 * whose blocks all died go, all free, to their pool's empty list, spans
 * that were already all free (unused for a whole cycle) are set aside to be
 * freed, the others go to the unswept list of their pool.  Dead big blocks
 * leave the big list then, and are freed after the restart too.
 *
 * Locks: none of its own.  The lazy sweep runs on a span the caller owns
 * (taken off its pool); the rebuild with the world stopped and
 * tidei_gc_threads_lock held; the dead spans are given back with no GC lock
 * held (the page allocator takes tidei_heaps_lock and tidei_arena.lock). */
#include "gc_internal.h"

_Atomic uint64_t tidei_gc_reclaimed_total;
_Atomic size_t tidei_gc_empty_bytes;
static gc_span_t *dead_spans;    /* spans to give back after the restart (lnext; tidei_gc_threads_lock) */

/* Sweeps g (owned by the caller: taken off its pool, or world stopped):
 * blocks out but not marked by the last collection are freed.  Returns
 * how many blocks are free now. */
uint32_t tidei_gc_span_sweep(gc_span_t *g)
{
    uint64_t *al = ALLOCS(g);
    uint32_t n_alloc = 0;
    unsigned cur = atomic_load_explicit(&tidei_gc_no, relaxed);
    if (g->swept != cur) {
        uint32_t dead = 0;
        for (uint32_t w = 0; w < g->words; w++) {
            uint64_t m = tidei_gc_marks_word(g, w);
            dead += tidei_gc_popcount(al[w] & ~m);
            al[w] &= m;
        }
        g->swept = cur;
        atomic_fetch_add_explicit(&tidei_gc_reclaimed_total, (uint64_t)dead * g->size, relaxed);
    }
    for (uint32_t w = 0; w < g->words; w++)
        n_alloc += tidei_gc_popcount(al[w]);
    return g->n_blocks - n_alloc;
}

/* Whether small span g has a block out (or not swept since it had). */
static bool span_had_blocks(const gc_span_t *g)
{
    const uint64_t *al = ALLOCS(g);
    for (uint32_t w = 0; w < g->words; w++)
        if (al[w])
            return true;
    return false;
}

/* After the mark: rebuilds the pools and picks what is freed after the
 * restart.  World stopped. */
void tidei_gc_pools_rebuild(void)
{
    for (int k = 0; k < GK_N; k++)
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            tidei_gc_pools[k][c].sweep = tidei_gc_pools[k][c].avail = tidei_gc_pools[k][c].full =
                tidei_gc_pools[k][c].empty = NULL;
    size_t empty_bytes = 0;
    unsigned cur = atomic_load_explicit(&tidei_gc_no, relaxed);
    dead_spans = NULL;
    for (gc_span_t *g = tidei_gc_all_spans, *next; g; g = next) {
        next = g->next;
        if (g->big)
            continue;
        if (g->held) {
            g->swept = cur;
            continue;
        }
        if (g->n_marked == 0 && span_had_blocks(g)) {
            /* all its blocks died: it is kept, all free, on its pool's
             * empty list for this cycle's allocation (before any span with
             * survivors is swept), which saves giving its pages back and
             * taking others while the other threads, restarted, take new
             * chunks; it goes back when a class needs a new span
             * (empties_release) or, still unused, at the next collection */
            uint64_t *al = ALLOCS(g);
            uint32_t dead = 0;
            for (uint32_t w = 0; w < g->words; w++) {
                dead += tidei_gc_popcount(al[w]);
                al[w] = 0;
            }
            atomic_fetch_add_explicit(&tidei_gc_reclaimed_total, (uint64_t)dead * g->size, relaxed);
            g->swept = cur;
            tidei_gc_pool_push(&tidei_gc_pools[g->kind][g->cls].empty, g, GL_EMPTY);
            empty_bytes += g->span->n_pages << TIDE_PAGE_SHIFT;
            continue;
        }
        if (g->n_marked == 0) {
            g->lnext = dead_spans;
            g->list = GL_DEAD;
            dead_spans = g;
            tidei_gc_span_unpublish(g, true);
            continue;
        }
        tidei_gc_pool_push(&tidei_gc_pools[g->kind][g->cls].sweep, g, GL_SWEEP);
    }
    atomic_store_explicit(&tidei_gc_empty_bytes, empty_bytes, relaxed);
    /* big blocks: the dead ones leave now, freed after the restart */
    for (gc_span_t *g = tidei_gc_bigs, *next; g; g = next) {
        next = g->lnext;
        if (g->kind == GK_UNCOLL || MARK_TEST(g, 0) || !BIT_TEST(ALLOCS(g), 0))
            continue;
        tide_list_remove(tidei_gc_bigs, g, lnext, lprev);
        atomic_fetch_add_explicit(&tidei_gc_reclaimed_total, g->size, relaxed);
        g->lnext = dead_spans;
        g->list = GL_DEAD;
        dead_spans = g;
        tidei_gc_span_unpublish(g, true);
    }
}

gc_span_t *tidei_gc_dead_take(void)
{
    gc_span_t *dead = dead_spans;
    dead_spans = NULL;
    return dead;
}

void tidei_gc_dead_free(gc_span_t *dead)
{
    while (dead) {
        gc_span_t *next = dead->lnext;
        tidei_gc_span_pages_free(dead->span, dead->huge);
        tidei_gc_desc_recycle(dead);
        dead = next;
    }
}
