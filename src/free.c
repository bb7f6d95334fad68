/* free.c — free, and the checks that catch misuse.  The page map tells, in
 * O(1), whether a pointer is the start of a live tide block; anything else is
 * reported in one line naming the operation and the address, then abort().
 *
 * Double frees: a freed small block carries its span's free key
 * (tidei_free_key_of) in its second word.  Finding the key on free is only a hint (the program may have stored
 * that value); the owner thread confirms it on the span's free lists.
 * Another thread cannot read those lists and takes the key as proof (a
 * handed-out block has its key cleared; docs/misuse.md).  Blocks carved but
 * never handed out carry the key too.  Large and huge blocks are caught
 * exactly until their pages are handed out again. */
#include "tide_internal.h"

static tide_noinline void report_not_ours(const void *p, const char *op)
{
    tidei_misuse_detailed(op, p, tidei_symbolize_describe_foreign, "pointer not allocated by tide (or already freed)");
}

static tide_noinline void report_interior(const void *p, const char *op, tide_span_t *s)
{
    uintptr_t base;
    size_t size;
    if (s->kind == TIDE_SPAN_SMALL) {
        size = s->block_size;
        base = s->start + tidei_block_index(s, (uintptr_t)p) * size;
    } else {
        base = s->start;
        size = s->n_pages << TIDE_PAGE_SHIFT;
    }
    tidei_misuse(op, p, "interior pointer (block %p of %zu bytes)", (void *)base, size);
}

/* Whether p is a handed-out-able block start of small span s. */
tide_inline bool small_block_ok(const tide_span_t *s, const void *p)
{
    /* A remote freer reads the bound while the owner may extend the span:
     * either value covers every block already handed out. */
    return tidei_block_ok(s, (uintptr_t)p - s->start, __atomic_load_n(&s->blk_bound, __ATOMIC_RELAXED));
}

/* Checks that p is a live block for op (realloc, malloc_usable_size, free)
 * and returns its span; reports and aborts otherwise. */
tide_span_t *tidei_free_checked_span(const void *p, const char *op)
{
    tide_span_t *s = tidei_pagemap_lookup(p);
    if (!s)
        report_not_ours(p, op);
    switch (s->kind) {
    case TIDE_SPAN_SMALL: {
        if (!small_block_ok(s, p))
            report_interior(p, op, s);
        const tide_free_block_t *b = p;
        if (b->key == tidei_free_key_of(s)) {
            tide_heap_t *h = tidei_tls_heap;
            bool owner = atomic_load_explicit(&s->heap, relaxed) == h;
            if (owner)  /* the scavenger may be retiring s if b is free */
                tidei_heap_lock(h);
            bool is_free = !owner || atomic_load_explicit(&s->heap, relaxed) != h ||
                           tidei_span_holds_free(s, b, true);
            if (owner)
                tidei_heap_unlock(h);
            if (is_free)
                tidei_misuse(op, p, "block already freed");
        }
        return s;
    }
    case TIDE_SPAN_LARGE:
    case TIDE_SPAN_HUGE:
        if ((uintptr_t)p != s->start)
            report_interior(p, op, s);
        return s;
    case TIDE_SPAN_GUARD:
        tidei_guard_check(p, op);
        return s;
    case TIDE_SPAN_GC:
        tidei_gc_misuse_free(p, op);
    default:
        tidei_misuse(op, p, "block already freed");
    }
}

/* Free by the owner of s of a block that failed the fast checks: an
 * interior pointer, or one that carries the free key.  Under h->lock: the
 * scavenger may have retired s meanwhile, which it does only to a span
 * with no live block, so b was not live. */
static tide_noclone void free_local_checked(tide_heap_t *h, tide_span_t *s, tide_free_block_t *b, const char *op)
{
    tidei_busy_enter();
    tidei_heap_lock(h);
    if (atomic_load_explicit(&s->heap, relaxed) != h)
        report_not_ours(b, op);
    if (!small_block_ok(s, b))
        report_interior(b, op, s);
    if (b->key == tidei_free_key_of(s) && tidei_span_holds_free(s, b, true))
        tidei_misuse(op, b, "double free");
    b->key = tidei_free_key_of(s);
    b->link = tidei_link_encode(s, s->local_free);
    s->local_free = b;
    s->used_rel--;
    if (s->in_full || tidei_span_used(s) == 0)
        tidei_heap_free_local_slow(h, s);
    tidei_heap_unlock(h);
    tidei_busy_leave();
}

static tide_noinline void free_other(void *p, tide_span_t *s, const char *op);

/* free of an address the flat map does not know: NULL (nothing to do), a
 * block outside the flat range (huge, guarded, in a chunk mapped outside
 * it), or not tide's (reported). */
static tide_noclone void free_unknown(void *p, const char *op)
{
    if (p == NULL)
        return;
    tide_span_t *s = tidei_pagemap_lookup(p);
    if (s == NULL)
        report_not_ours(p, op);
    tide_heap_t *h = tidei_tls_heap;
    if (s->kind == TIDE_SPAN_SMALL && tidei_span_owner(s) == h)
        free_local_checked(h, s, p, op);  /* every check, and the slow path if due */
    else
        free_other(p, s, op);
}

/* Where a thread that has no heap counts its free of another thread's
 * block: in the process's counters (an atomic add) for its first
 * HEAPLESS_FREES, then in a heap of its own, made here.  A thread that
 * only frees (a consumer of blocks other threads make) would otherwise add
 * to the same cache line as every other such thread on each free.  NULL
 * while it stays heapless (exiting, or memory ran out). */
#define HEAPLESS_FREES 64
static tide_noinline tide_heap_t *heapless_counts(void)
{
    static __thread unsigned n_frees;
    if (++n_frees < HEAPLESS_FREES)
        return NULL;
    n_frees = 0;
    return tidei_init_thread();
}

/* Free of a block whose span the calling thread does not own (or a large
 * or huge block); op names the call (free, delete) in a misuse report. */
static void free_other_work(tide_span_t *s, void *p, const char *op)
{
    switch (s->kind) {
    case TIDE_SPAN_SMALL: {
        tide_free_block_t *b = p;
        if (!small_block_ok(s, p))
            report_interior(p, op, s);
        if (b->key == tidei_free_key_of(s) && tidei_span_holds_free(s, b, false))
            tidei_misuse(op, p, "double free");
        b->key = tidei_free_key_of(s);
        int cls = s->cls;  /* read before the push: then the owner may retire s */
        tidei_heap_free_remote(s, b);
        tidei_scav_wanted();  /* the owner may be idle: the scavenger watches it */
        tide_heap_t *h = tidei_tls_heap;
        if (tide_unlikely(h == &tidei_empty_heap))
            h = heapless_counts();
        if (tide_likely(h != NULL))
            h->ctr.free_remote[cls]++;
        else  /* a thread without a heap: before its first malloc, or exiting */
            atomic_fetch_add_explicit(&tidei_global_ctr.free_remote[cls], 1, relaxed);
        return;
    }
    case TIDE_SPAN_LARGE:
        if ((uintptr_t)p != s->start)
            report_interior(p, op, s);
        if (s->prof_site)
            tidei_prof_free(s);
        tidei_arena_free_run(s, false);
        return;
    case TIDE_SPAN_HUGE:
        if ((uintptr_t)p != s->start)
            report_interior(p, op, s);
        if (s->prof_site)
            tidei_prof_free(s);
        tidei_huge_free(s);
        return;
    case TIDE_SPAN_GUARD:
        tidei_guard_free(p);
        return;
    case TIDE_SPAN_GC:
        tidei_gc_misuse_free(p, op);
    default:
        tidei_misuse(op, p, "double free");
    }
}

static tide_noinline void free_other(void *p, tide_span_t *s, const char *op)
{
    if (s == tidei_flat_none())  /* a page of the flat range that no span holds */
        return free_unknown(p, op);
    tidei_busy_enter();
    free_other_work(s, p, op);
    tidei_scav_start();
    tidei_busy_leave();
}

/* The fast path's one way to the slow ones, with the span its masked
 * lookup read: that is p's span only if p is in the flat range; anything
 * else is looked up in the tree (free_unknown).  The calling thread's own
 * span gets every check (free_local_checked), any other the remote free or
 * the large and huge paths (free_other). */
static tide_noinline void free_flat_slow(void *p, tide_span_t *s, const char *op)
{
    if (tide_unlikely((((uintptr_t)p - tidei_pagemap_flat.base) >> TIDE_PAGE_SHIFT) >= tidei_pagemap_flat.n_pages))
        return free_unknown(p, op);
    tide_heap_t *h = tidei_tls_heap;
    if (tidei_span_owner(s) == h)
        return free_local_checked(h, s, p, op);
    free_other(p, s, op);
}

/* The owner's free emptied s or took it off the full list (or the
 * scavenger did meanwhile, and s is no longer h's). */
static tide_noinline void free_local_slow(tide_heap_t *h, tide_span_t *s)
{
    tidei_busy_enter();
    tidei_heap_lock(h);
    if (atomic_load_explicit(&s->heap, relaxed) == h)
        tidei_heap_free_local_slow(h, s);
    tidei_heap_unlock(h);
    tidei_scav_start();
    tidei_busy_leave();
}

/* The free fast path, shared by free and C++'s operator delete; op names
 * the call in a misuse report (only the slow paths use it). */
tide_inline void free_fast(void *p, const char *op)
{
    /* The page number is masked, not compared with the range's length:
     * an address outside the range (NULL too) reads the entry of some page
     * of it.  Where that is a span of the calling thread, the block-start
     * test, exact for any distance from the span below 2^47
     * (tidei_block_ok_flat), sends it to the slow path; any other span
     * sends it there anyway.  Both slow paths look it up again. */
    uintptr_t d;
    /* a page with no span gives a descriptor that no heap owns */
    tide_span_t *s = tidei_flat_lookup(p, &d);
    tide_heap_t *h = tidei_tls_heap;
    if (tide_likely(tidei_span_owner(s) == h)) {
        tide_free_block_t *b = p;
        uintptr_t key = tidei_free_key_of(s);
        if (tide_unlikely(!tidei_block_ok_flat(s, d, s->blk_bound) || tidei_key_hint(b, s)))
            return free_flat_slow(p, s, op);
        b->key = key;
        b->link = tidei_link_encode(s, s->free);
        s->free = b;
        if (tide_unlikely(tidei_used_dec_hits(s)))
            free_local_slow(h, s);
        return;
    }
    free_flat_slow(p, s, op);
}

/* free: any thread, any time. */
tide_fast_text void tidei_free(void *p)
{
    free_fast(p, "free");
}

/* C++ operator delete (every form: the size and alignment are checked in
 * debug builds only, by override.c): the same as free. */
tide_fast_text void tidei_delete(void *p)
{
    free_fast(p, "delete");
}

/* Whether fn is one of the functions here through which a free (or
 * malloc_usable_size) enters tide (free tail-calls its slow paths):
 * guard.c's stacks start at the caller of the outermost of them. */
bool tidei_free_is_entry(uintptr_t fn)
{
    return fn == (uintptr_t)tidei_free || fn == (uintptr_t)tidei_delete || fn == (uintptr_t)free_other || fn == (uintptr_t)free_local_checked ||
           fn == (uintptr_t)free_flat_slow ||
           fn == (uintptr_t)free_local_slow || fn == (uintptr_t)free_unknown || fn == (uintptr_t)tidei_usable_size;
}

/* The usable size of live block p; misuse is reported as for free. */
size_t tidei_usable_size(const void *p, const char *op)
{
    tide_span_t *s = tidei_free_checked_span(p, op);
    if (s->kind == TIDE_SPAN_SMALL)
        return s->block_size;
    if (s->kind == TIDE_SPAN_GUARD)
        return tidei_guard_check(p, op);
    return s->n_pages << TIDE_PAGE_SHIFT;
}
