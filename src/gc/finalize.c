/* gc/finalize.c — finalization and disappearing links: their tables, how
 * the collector settles them after the mark, and the finalizers run after
 * the world restarts.
 *
 * The tables (finalizers, disappearing links, finalizers ready to run) live
 * in mappings of their own, never in the GC heap, so they are not roots: an
 * object with a finalizer is not kept alive by its entry.  Mutators change
 * them under tables_lock inside crit; the collector reads and settles them
 * with the world stopped.
 *
 * Ordered finalizers follow libgc's rule: an unreachable object with a
 * finalizer that another unreachable finalizable object reaches waits for
 * a later cycle; _ignore_self ignores the object's pointers to itself;
 * _no_order ones run as soon as the object is unreachable.  Objects to
 * finalize are kept (with what they reach) until their finalizer has run.
 * Short disappearing links are cleared before finalization marks, long
 * ones after.
 *
 * Locks: tables_lock, a leaf of the GC's lock order (gc_internal.h), taken
 * inside crit; finalizers and the notifier run with no lock held. */
#include "gc_internal.h"

static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the tables ---- */

/* A finalizer. */
typedef struct gc_fin {
    uintptr_t obj;               /* the object (0: empty slot, 1: deleted) */
    GC_finalization_proc fn;     /* its finalizer */
    void *cd;                    /* the client data */
    int mode;                    /* FIN_* */
} gc_fin_t;

/* A disappearing link. */
typedef struct gc_dlink {
    uintptr_t link;              /* where the link is (0: empty, 1: deleted) */
    uintptr_t obj;               /* the object it points to */
    bool is_long;                /* cleared only when obj is not even reachable from finalizable objects */
} gc_dlink_t;

/* An open-addressing table keyed by the first word of its entries. */
typedef struct gc_table {
    void *e;                     /* entries */
    size_t cap;                  /* slots (a power of two) */
    size_t n;                    /* live entries */
    size_t used;                 /* live + deleted */
    size_t elem;                 /* bytes per entry */
} gc_table_t;

static gc_table_t fins = { .elem = sizeof(gc_fin_t) };
static gc_table_t links = { .elem = sizeof(gc_dlink_t) };

static inline uintptr_t *slot_key(gc_table_t *t, size_t i)
{
    return (uintptr_t *)((char *)t->e + i * t->elem);
}

/* The slot of key k, or NULL. */
static void *gc_table_find(gc_table_t *t, uintptr_t k)
{
    if (!t->cap)
        return NULL;
    for (size_t i = (size_t)tidei_hash_word(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        uintptr_t *s = slot_key(t, i);
        if (*s == k)
            return s;
        if (*s == 0)
            return NULL;
    }
}

static bool gc_table_grow(gc_table_t *t)
{
    size_t cap = t->cap ? (t->n * 4 > t->cap ? t->cap * 2 : t->cap) : 256;
    void *e = tidei_os_map(cap * t->elem);
    if (!e)
        return false;
    gc_table_t old = *t;
    t->e = e;
    t->cap = cap;
    t->n = t->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        uintptr_t *s = (uintptr_t *)((char *)old.e + i * old.elem);
        if (*s > 1) {
            size_t j = (size_t)tidei_hash_word(*s) & (cap - 1);
            while (*slot_key(t, j))
                j = (j + 1) & (cap - 1);
            memcpy(slot_key(t, j), s, t->elem);
            t->n++;
            t->used++;
        }
    }
    if (old.e)
        tidei_os_unmap(old.e, old.cap * old.elem);
    return true;
}

/* A new slot for key k (not present), its key set; NULL if out of memory. */
static void *gc_table_add(gc_table_t *t, uintptr_t k)
{
    if ((t->used + 1) * 4 > t->cap * 3 && !gc_table_grow(t))
        return NULL;
    size_t i = (size_t)tidei_hash_word(k) & (t->cap - 1);
    while (*slot_key(t, i) > 1)
        i = (i + 1) & (t->cap - 1);
    uintptr_t *s = slot_key(t, i);
    if (*s == 0)
        t->used++;
    memset(s, 0, t->elem);
    *s = k;
    t->n++;
    return s;
}

static void gc_table_del(gc_table_t *t, void *slot)
{
    *(uintptr_t *)slot = 1;
    t->n--;
}

/* Finalizers ready to run: a queue in a mapping (scratch). */
typedef struct gc_ready {
    uintptr_t obj;               /* the object */
    GC_finalization_proc fn;     /* its finalizer */
    void *cd;                    /* the client data */
} gc_ready_t;
static tidei_scratch_t ready = { .elem = sizeof(gc_ready_t) };
static size_t ready_head;        /* first entry not run yet */

/* Whether p is a marked live block (world stopped: during finalization). */
static bool is_marked(uintptr_t p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup((void *)p, &i, &base);
    return !g || MARK_TEST(g, i);
}

/* Whether location p may be written by the collector: not in the GC heap,
 * or in a block that is out and marked (a link inside a dead or free
 * block is never written: the block may be on a free list). */
static bool link_writable(uintptr_t p)
{
    uint32_t i;
    uintptr_t base;
    gc_span_t *g = tidei_gc_lookup((void *)p, &i, &base);
    return !g || (BIT_TEST(ALLOCS(g), i) && MARK_TEST(g, i));
}

/* Whether p is in a GC block (world stopped). */
static bool in_gc_heap(uintptr_t p)
{
    uint32_t i;
    uintptr_t base;
    return tidei_gc_lookup((void *)p, &i, &base) != NULL;
}

/* ---- settled by the collector (world stopped) ---- */

/* Marks the finalizers' client data and the objects waiting for their
 * finalizer, clears the short disappearing links to unmarked objects,
 * then finds the finalizable objects nothing reaches: those are marked
 * (with what they reach) and queued.  Ordered finalizers: an object that
 * another unreachable finalizable object reaches waits for a later cycle. */
void tidei_gc_fin_mark(void)
{
    gc_ready_t *r = ready.p;
    for (size_t i = ready_head; i < ready.n; i++) {
        tidei_gc_mark_from(r[i].obj);
        tidei_gc_mark_from((uintptr_t)r[i].cd);
    }
    for (size_t i = 0; i < fins.cap; i++) {
        gc_fin_t *f = (gc_fin_t *)slot_key(&fins, i);
        if (f->obj > 1)
            tidei_gc_mark_from((uintptr_t)f->cd);
    }
    for (size_t i = 0; i < links.cap; i++) {
        gc_dlink_t *l = (gc_dlink_t *)slot_key(&links, i);
        if (l->link <= 1)
            continue;
        if (!link_writable(l->link)) {
            if (in_gc_heap(l->link) && !is_marked(l->link))
                gc_table_del(&links, l);  /* its holder is dead (or was freed) */
            continue;
        }
        if (!l->is_long && !is_marked(l->obj)) {
            *(void **)l->link = NULL;
            gc_table_del(&links, l);
        }
    }
    if (!fins.n)
        return;
    /* unreachable finalizable objects: a flag in the mode's high bit */
    for (size_t i = 0; i < fins.cap; i++) {
        gc_fin_t *f = (gc_fin_t *)slot_key(&fins, i);
        if (f->obj > 1 && !is_marked(f->obj))
            f->mode |= 0x100;
    }
    for (size_t i = 0; i < fins.cap; i++) {
        gc_fin_t *f = (gc_fin_t *)slot_key(&fins, i);
        if (f->obj <= 1 || !(f->mode & 0x100) || (f->mode & 0xff) == FIN_NO_ORDER)
            continue;
        if (tidei_gc_kind((void *)f->obj) == GK_ATOMIC)
            continue;
        uintptr_t lo = (uintptr_t)tidei_gc_base((void *)f->obj), hi = lo + tidei_gc_size((void *)lo);
        for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
            uintptr_t w = *(uintptr_t *)p;
            if ((f->mode & 0xff) == FIN_IGNORE_SELF && w >= lo && w < hi)
                continue;
            tidei_gc_mark_word(w);
        }
        tidei_gc_mark_drain();
    }
    for (size_t i = 0; i < fins.cap; i++) {
        gc_fin_t *f = (gc_fin_t *)slot_key(&fins, i);
        if (f->obj <= 1 || !(f->mode & 0x100))
            continue;
        f->mode &= 0xff;
        if (f->mode != FIN_NO_ORDER && is_marked(f->obj))
            continue;  /* reachable from another finalizable object: later */
        gc_ready_t *q = tidei_scratch_push(&ready);
        if (!q)
            continue;
        q->obj = f->obj;
        q->fn = f->fn;
        q->cd = f->cd;
        tidei_gc_mark_from(f->obj);
        gc_table_del(&fins, f);
    }
}

/* After finalization's marking: long links to unmarked objects are
 * cleared, and links that live in dead GC blocks are dropped. */
void tidei_gc_fin_after_mark(void)
{
    for (size_t i = 0; i < links.cap; i++) {
        gc_dlink_t *l = (gc_dlink_t *)slot_key(&links, i);
        if (l->link <= 1)
            continue;
        if (!link_writable(l->link)) {
            gc_table_del(&links, l);
        } else if (l->is_long && !is_marked(l->obj)) {
            *(void **)l->link = NULL;
            gc_table_del(&links, l);
        }
    }
}

/* ---- finalizers ---- */

GC_finalizer_notifier_proc tidei_gc_fin_notifier;
int tidei_gc_fin_on_demand;
static _Atomic int fin_running;  /* finalizers are running (a finalizer allocated: no nesting) */

/* How far into its block a finalizer's object may point: the low tag bits
 * of a tagged pointer to a block (ECL's conses are the block plus 1).
 * libgc takes any pointer into a block's first granule (16 bytes) for the
 * block, since its mark bits are per granule; a deeper one makes it test
 * another object's mark bit, so it is misuse. */
#define FIN_TAG_BYTES 16

/* Whether [lo, hi) of a registered thread's stack holds p, for a thread
 * other than the caller.  Not inside crit (takes tidei_gc_threads_lock,
 * the caller t counted as stopped while it waits). */
static bool in_other_stack(gc_thread_t *t, uintptr_t p)
{
    bool in = false;
    tidei_gc_lock_threads(t);
    for (gc_thread_t *o = tidei_gc_threads; o && !in; o = o->next)
        in = o != t && o->stack_lo && p >= o->stack_lo && p < o->stack_hi;
    pthread_mutex_unlock(&tidei_gc_threads_lock);
    return in;
}

/* Checks obj, given to op (a GC_register_finalizer form) by thread t (not
 * inside crit).  Returns true when obj is in a GC block: its start, or a
 * pointer into the block's first FIN_TAG_BYTES; false when it is memory
 * the GC heap does not own and that is no thread's stack (static data:
 * never collected, so its finalizer would never run; ignored, as libgc
 * does, since ECL registers finalizers on its static symbols).  Anything
 * else gets the misuse report: a malloc block, free memory, a deeper
 * interior pointer, an address in a thread's stack. */
static bool fin_target_ok(gc_thread_t *t, const void *obj, const char *op)
{
    uintptr_t p = (uintptr_t)obj;
    tide_span_t *s = tidei_pagemap_lookup(obj);
    if (s) {
        if (s->kind == TIDE_SPAN_SMALL || s->kind == TIDE_SPAN_LARGE || s->kind == TIDE_SPAN_HUGE ||
            s->kind == TIDE_SPAN_GUARD)
            tidei_misuse(op, obj, "not a GC block (a malloc block: a finalizer needs a GC_MALLOC'd object)");
        uint32_t i;
        uintptr_t base;
        gc_span_t *g = s->kind == TIDE_SPAN_GC ? tidei_gc_lookup(obj, &i, &base) : NULL;
        if (!g)
            tidei_misuse(op, obj, "not a GC block (memory tide holds free)");
        if (p - base >= FIN_TAG_BYTES)
            tidei_misuse(op, obj, "interior pointer (GC block %p of %zu bytes): a finalizer needs the block's start",
                         (void *)base, g->big ? g->req : g->size);
        return true;
    }
    uintptr_t here = (uintptr_t)&s;
    uintptr_t lo = t->stack_lo ? t->stack_lo : here;
    if ((p >= lo && p < t->stack_hi) || in_other_stack(t, p))
        tidei_misuse_detailed(op, obj, tidei_symbolize_describe_foreign,
                              "not a GC block (an address in a thread's stack)");
    return false;
}

/* Registers fn (NULL: none) as obj's finalizer in mode (FIN_*) for op
 * (the API's name, for a report); the old one and its client data go to
 * *ofn and *ocd. */
void tidei_gc_fin_register(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd,
                           int mode, const char *op)
{
    if (ofn)
        *ofn = NULL;
    if (ocd)
        *ocd = NULL;
    if (!obj)
        return;
    /* An interior pointer (a tag) stands for its block, and is what the
     * finalizer gets (ECL's tagged conses). */
    gc_thread_t *t = tidei_gc_thread_or_die();
    if (!fin_target_ok(t, obj, op))
        return;
    tidei_gc_crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    gc_fin_t *f = gc_table_find(&fins, (uintptr_t)obj);
    if (f) {
        if (ofn)
            *ofn = f->fn;
        if (ocd)
            *ocd = f->cd;
        if (fn) {
            f->fn = fn;
            f->cd = cd;
            f->mode = mode;
        } else {
            gc_table_del(&fins, f);
        }
    } else if (fn) {
        f = gc_table_add(&fins, (uintptr_t)obj);
        if (f) {
            f->fn = fn;
            f->cd = cd;
            f->mode = mode;
        }
    }
    pthread_mutex_unlock(&tables_lock);
    tidei_gc_crit_leave(t);
}

/* Whether finalizers are ready to run. */
bool tidei_gc_fin_pending(void)
{
    return __atomic_load_n(&ready.n, __ATOMIC_RELAXED) > __atomic_load_n(&ready_head, __ATOMIC_RELAXED);
}

/* Runs the queued finalizers; returns how many ran. */
int tidei_gc_fin_invoke(void)
{
    if (!tidei_gc_fin_pending())
        return 0;
    gc_thread_t *t = tidei_gc_thread_or_die();
    int n = 0;
    for (;;) {
        tidei_gc_crit_enter(t);
        pthread_mutex_lock(&tables_lock);
        gc_ready_t r = { 0, NULL, NULL };
        if (ready_head < ready.n) {
            r = ((gc_ready_t *)ready.p)[ready_head++];
            if (ready_head == ready.n)
                ready_head = ready.n = 0;
        }
        pthread_mutex_unlock(&tables_lock);
        tidei_gc_crit_leave(t);
        if (!r.obj)
            break;
        r.fn((void *)r.obj, r.cd);
        n++;
        __asm__ volatile("" : : "r"(&r) : "memory");  /* r stays on the stack until here */
    }
    return n;
}

/* After a collection, outside every lock: the notifier, or the finalizers. */
void tidei_gc_fin_run_pending(void)
{
    if (!tidei_gc_fin_pending())
        return;
    if (tidei_gc_fin_on_demand) {
        if (tidei_gc_fin_notifier)
            tidei_gc_fin_notifier();
        return;
    }
    int expect = 0;
    if (!atomic_compare_exchange_strong(&fin_running, &expect, 1))
        return;  /* a finalizer allocated: no nesting */
    tidei_gc_fin_invoke();
    atomic_store(&fin_running, 0);
}

/* ---- disappearing links ---- */

/* Registers the link at link to obj (long: cleared only when obj is not
 * even reachable from finalizable objects); GC_SUCCESS, GC_DUPLICATE (its
 * object replaced) or GC_NO_MEMORY. */
int tidei_gc_link_register(void **link, const void *obj, bool is_long, const char *op)
{
    if (((uintptr_t)link & 7) || !link)
        tidei_misuse(op, link, "the link is not an aligned pointer-sized location");
    if (!obj)
        tidei_misuse(op, obj, "the object is NULL");
    gc_thread_t *t = tidei_gc_thread_or_die();
    tidei_gc_crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    int r = GC_SUCCESS;
    gc_dlink_t *l = gc_table_find(&links, (uintptr_t)link);
    if (l) {
        l->obj = (uintptr_t)obj;
        l->is_long = is_long;
        r = GC_DUPLICATE;
    } else {
        l = gc_table_add(&links, (uintptr_t)link);
        if (l) {
            l->obj = (uintptr_t)obj;
            l->is_long = is_long;
        } else {
            r = GC_NO_MEMORY;
        }
    }
    pthread_mutex_unlock(&tables_lock);
    tidei_gc_crit_leave(t);
    return r;
}

/* Unregisters the link at link (of that length); 1 if it was registered. */
int tidei_gc_link_unregister(void **link, bool is_long)
{
    gc_thread_t *t = tidei_gc_thread_or_die();
    tidei_gc_crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    gc_dlink_t *l = gc_table_find(&links, (uintptr_t)link);
    int r = 0;
    if (l && l->is_long == is_long) {
        gc_table_del(&links, l);
        r = 1;
    }
    pthread_mutex_unlock(&tables_lock);
    tidei_gc_crit_leave(t);
    return r;
}
