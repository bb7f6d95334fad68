/* gc_api.c — the GC heap's public names: Boehm's GC_* (include/gc.h) and
 * tide_gc_* (include/tide.h), finalization, disappearing links, root
 * ranges and the thread wrappers.  The collector itself is gc.c.
 *
 * The tables (finalizers, disappearing links, root ranges, finalizers
 * ready to run) live in mappings of their own, never in the GC heap, so
 * they are not roots: an object with a finalizer is not kept alive by its
 * entry.  Mutators change them under tables_lock inside crit; the
 * collector reads and settles them with the world stopped.
 *
 * Lock order: see gc.c (tables_lock comes after the pool and big locks). */
#include <dlfcn.h>
#include <signal.h>

#include "tide_internal.h"
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include "gc.h"

static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- a growable array in a mapping of its own ---- */

typedef struct fin_entry {
    uintptr_t obj;               /* the object (0: empty slot, 1: deleted) */
    GC_finalization_proc fn;     /* its finalizer */
    void *cd;                    /* the client data */
    int mode;                    /* FIN_* */
} fin_entry_t;
enum { FIN_ORDERED = 0, FIN_NO_ORDER, FIN_IGNORE_SELF };

typedef struct link_entry {
    uintptr_t link;              /* where the link is (0: empty, 1: deleted) */
    uintptr_t obj;               /* the object it points to */
    bool is_long;                /* cleared only when obj is not even reachable from finalizable objects */
} link_entry_t;

/* An open-addressing table keyed by the first word of its entries. */
typedef struct table {
    void *e;                     /* entries */
    size_t cap;                  /* slots (a power of two) */
    size_t n;                    /* live entries */
    size_t used;                 /* live + deleted */
    size_t elem;                 /* bytes per entry */
} table_t;

static table_t fins = { .elem = sizeof(fin_entry_t) };
static table_t links = { .elem = sizeof(link_entry_t) };

static inline uintptr_t *slot_key(table_t *t, size_t i)
{
    return (uintptr_t *)((char *)t->e + i * t->elem);
}

static size_t hash_of(uintptr_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

/* The slot of key k, or NULL. */
static void *table_find(table_t *t, uintptr_t k)
{
    if (!t->cap)
        return NULL;
    for (size_t i = hash_of(k) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        uintptr_t *s = slot_key(t, i);
        if (*s == k)
            return s;
        if (*s == 0)
            return NULL;
    }
}

static bool table_grow(table_t *t)
{
    size_t cap = t->cap ? (t->n * 4 > t->cap ? t->cap * 2 : t->cap) : 256;
    void *e = tidei_os_map(cap * t->elem);
    if (!e)
        return false;
    table_t old = *t;
    t->e = e;
    t->cap = cap;
    t->n = t->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        uintptr_t *s = (uintptr_t *)((char *)old.e + i * old.elem);
        if (*s > 1) {
            size_t j = hash_of(*s) & (cap - 1);
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
static void *table_add(table_t *t, uintptr_t k)
{
    if ((t->used + 1) * 4 > t->cap * 3 && !table_grow(t))
        return NULL;
    size_t i = hash_of(k) & (t->cap - 1);
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

static void table_del(table_t *t, void *slot)
{
    *(uintptr_t *)slot = 1;
    t->n--;
}

/* Finalizers ready to run: a queue in a mapping (scratch). */
typedef struct ready {
    uintptr_t obj;
    GC_finalization_proc fn;
    void *cd;
} ready_t;
static tidei_scratch_t ready = { .elem = sizeof(ready_t) };
static size_t ready_head;        /* first entry not run yet */

/* Root ranges (GC_add_roots). */
static tidei_scratch_t roots = { .elem = sizeof(gc_range_t) };

/* ---- settled by the collector (world stopped) ---- */

/* Marks the finalizers' client data and the objects waiting for their
 * finalizer, clears the short disappearing links to unmarked objects,
 * then finds the finalizable objects nothing reaches: those are marked
 * (with what they reach) and queued.  Ordered finalizers: an object that
 * another unreachable finalizable object reaches waits for a later cycle. */
static void gc_fin_mark(void)
{
    ready_t *r = ready.p;
    for (size_t i = ready_head; i < ready.n; i++) {
        mark_from(r[i].obj);
        mark_from((uintptr_t)r[i].cd);
    }
    for (size_t i = 0; i < fins.cap; i++) {
        fin_entry_t *f = (fin_entry_t *)slot_key(&fins, i);
        if (f->obj > 1)
            mark_from((uintptr_t)f->cd);
    }
    for (size_t i = 0; i < links.cap; i++) {
        link_entry_t *l = (link_entry_t *)slot_key(&links, i);
        if (l->link <= 1)
            continue;
        if (!link_writable(l->link)) {
            if (in_gc_heap(l->link) && !is_marked(l->link))
                table_del(&links, l);  /* its holder is dead (or was freed) */
            continue;
        }
        if (!l->is_long && !is_marked(l->obj)) {
            *(void **)l->link = NULL;
            table_del(&links, l);
        }
    }
    if (!fins.n)
        return;
    /* unreachable finalizable objects: a flag in the mode's high bit */
    for (size_t i = 0; i < fins.cap; i++) {
        fin_entry_t *f = (fin_entry_t *)slot_key(&fins, i);
        if (f->obj > 1 && !is_marked(f->obj))
            f->mode |= 0x100;
    }
    for (size_t i = 0; i < fins.cap; i++) {
        fin_entry_t *f = (fin_entry_t *)slot_key(&fins, i);
        if (f->obj <= 1 || !(f->mode & 0x100) || (f->mode & 0xff) == FIN_NO_ORDER)
            continue;
        if (tidei_gc_kind((void *)f->obj) == GK_ATOMIC)
            continue;
        uintptr_t lo = (uintptr_t)tidei_gc_base((void *)f->obj), hi = lo + tidei_gc_size((void *)lo);
        for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
            uintptr_t w = *(uintptr_t *)p;
            if ((f->mode & 0xff) == FIN_IGNORE_SELF && w >= lo && w < hi)
                continue;
            mark_word(w);
        }
        mark_drain();
    }
    for (size_t i = 0; i < fins.cap; i++) {
        fin_entry_t *f = (fin_entry_t *)slot_key(&fins, i);
        if (f->obj <= 1 || !(f->mode & 0x100))
            continue;
        f->mode &= 0xff;
        if (f->mode != FIN_NO_ORDER && is_marked(f->obj))
            continue;  /* reachable from another finalizable object: later */
        ready_t *q = tidei_scratch_push(&ready);
        if (!q)
            continue;
        q->obj = f->obj;
        q->fn = f->fn;
        q->cd = f->cd;
        mark_from(f->obj);
        table_del(&fins, f);
    }
}

/* After finalization's marking: long links to unmarked objects are
 * cleared, and links that live in dead GC blocks are dropped. */
static void gc_fin_after_mark(void)
{
    for (size_t i = 0; i < links.cap; i++) {
        link_entry_t *l = (link_entry_t *)slot_key(&links, i);
        if (l->link <= 1)
            continue;
        if (!link_writable(l->link)) {
            table_del(&links, l);
        } else if (l->is_long && !is_marked(l->obj)) {
            *(void **)l->link = NULL;
            table_del(&links, l);
        }
    }
}

/* Root ranges: scanned with the world stopped. */
static bool gc_roots_scan(void)
{
    gc_range_t *r = roots.p;
    for (size_t i = 0; i < roots.n; i++)
        scan_range(r[i].lo, r[i].hi);
    return true;
}

/* ---- finalizers ---- */

static GC_finalizer_notifier_proc fin_notifier;
static int fin_on_demand;
static int java_fin;

static gc_thread_t *api_thread(void)
{
    gc_thread_t *t = gc_thread();
    if (!t)
        tidei_fatal("tide: GC: no memory to register a thread\n");
    return t;
}

static void register_fin(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd,
                         int mode, const char *op)
{
    if (ofn)
        *ofn = NULL;
    if (ocd)
        *ocd = NULL;
    if (!obj)
        return;
    /* Memory that is not the GC heap's is never collected, so its
     * finalizer would never run: ignored, as libgc does (ECL registers
     * finalizers on static objects).  An interior pointer stands for its
     * block, and is what the finalizer gets (ECL's tagged pointers). */
    (void)op;
    if (!tidei_gc_base(obj))
        return;
    gc_thread_t *t = api_thread();
    crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    fin_entry_t *f = table_find(&fins, (uintptr_t)obj);
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
            table_del(&fins, f);
        }
    } else if (fn) {
        f = table_add(&fins, (uintptr_t)obj);
        if (f) {
            f->fn = fn;
            f->cd = cd;
            f->mode = mode;
        }
    }
    pthread_mutex_unlock(&tables_lock);
    crit_leave(t);
}

tide_export void GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                       void **ocd)
{
    register_fin(obj, fn, cd, ofn, ocd, FIN_ORDERED, "GC_register_finalizer");
}

tide_export void GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd,
                                                   GC_finalization_proc *ofn, void **ocd)
{
    register_fin(obj, fn, cd, ofn, ocd, FIN_IGNORE_SELF, "GC_register_finalizer_ignore_self");
}

tide_export void GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd,
                                                GC_finalization_proc *ofn, void **ocd)
{
    register_fin(obj, fn, cd, ofn, ocd, FIN_NO_ORDER, "GC_register_finalizer_no_order");
}

tide_export void GC_register_finalizer_unreachable(void *obj, GC_finalization_proc fn, void *cd,
                                                   GC_finalization_proc *ofn, void **ocd)
{
    register_fin(obj, fn, cd, ofn, ocd, FIN_NO_ORDER, "GC_register_finalizer_unreachable");
}

tide_export int GC_should_invoke_finalizers(void)
{
    return __atomic_load_n(&ready.n, __ATOMIC_RELAXED) > __atomic_load_n(&ready_head, __ATOMIC_RELAXED);
}

/* Runs the queued finalizers; returns how many ran. */
tide_export int GC_invoke_finalizers(void)
{
    if (!GC_should_invoke_finalizers())
        return 0;
    gc_thread_t *t = api_thread();
    int n = 0;
    for (;;) {
        crit_enter(t);
        pthread_mutex_lock(&tables_lock);
        ready_t r = { 0, NULL, NULL };
        if (ready_head < ready.n) {
            r = ((ready_t *)ready.p)[ready_head++];
            if (ready_head == ready.n)
                ready_head = ready.n = 0;
        }
        pthread_mutex_unlock(&tables_lock);
        crit_leave(t);
        if (!r.obj)
            break;
        r.fn((void *)r.obj, r.cd);
        n++;
        __asm__ volatile("" : : "r"(&r) : "memory");  /* r stays on the stack until here */
    }
    return n;
}

/* After a collection, outside every lock: the notifier, or the finalizers. */
static void gc_fin_run_pending(void)
{
    if (!GC_should_invoke_finalizers())
        return;
    if (fin_on_demand) {
        if (fin_notifier)
            fin_notifier();
        return;
    }
    int expect = 0;
    if (!atomic_compare_exchange_strong(&fin_running, &expect, 1))
        return;  /* a finalizer allocated: no nesting */
    GC_invoke_finalizers();
    atomic_store(&fin_running, 0);
}

tide_export void GC_set_finalize_on_demand(int v) { fin_on_demand = v; }
tide_export int GC_get_finalize_on_demand(void) { return fin_on_demand; }
tide_export void GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn) { fin_notifier = fn; }
tide_export GC_finalizer_notifier_proc GC_get_finalizer_notifier(void) { return fin_notifier; }
tide_export void GC_set_java_finalization(int v) { java_fin = v; }
tide_export int GC_get_java_finalization(void) { return java_fin; }

/* ---- disappearing links ---- */

static int register_link(void **link, const void *obj, bool is_long, const char *op)
{
    if (((uintptr_t)link & 7) || !link)
        tidei_misuse(op, link, "the link is not an aligned pointer-sized location");
    if (!obj)
        tidei_misuse(op, obj, "the object is NULL");
    gc_thread_t *t = api_thread();
    crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    int r = GC_SUCCESS;
    link_entry_t *l = table_find(&links, (uintptr_t)link);
    if (l) {
        l->obj = (uintptr_t)obj;
        l->is_long = is_long;
        r = GC_DUPLICATE;
    } else {
        l = table_add(&links, (uintptr_t)link);
        if (l) {
            l->obj = (uintptr_t)obj;
            l->is_long = is_long;
        } else {
            r = GC_NO_MEMORY;
        }
    }
    pthread_mutex_unlock(&tables_lock);
    crit_leave(t);
    return r;
}

static int unregister_link(void **link, bool is_long)
{
    gc_thread_t *t = api_thread();
    crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    link_entry_t *l = table_find(&links, (uintptr_t)link);
    int r = 0;
    if (l && l->is_long == is_long) {
        table_del(&links, l);
        r = 1;
    }
    pthread_mutex_unlock(&tables_lock);
    crit_leave(t);
    return r;
}

tide_export int GC_general_register_disappearing_link(void **link, const void *obj)
{
    return register_link(link, obj, false, "GC_general_register_disappearing_link");
}

tide_export int GC_register_disappearing_link(void **link)
{
    return register_link(link, tidei_gc_base(*link), false, "GC_register_disappearing_link");
}

tide_export int GC_unregister_disappearing_link(void **link)
{
    return unregister_link(link, false);
}

tide_export int GC_register_long_link(void **link, const void *obj)
{
    return register_link(link, obj, true, "GC_register_long_link");
}

tide_export int GC_unregister_long_link(void **link)
{
    return unregister_link(link, true);
}

/* ---- roots ---- */

tide_export void GC_add_roots(void *lo, void *hi)
{
    if ((uintptr_t)hi < (uintptr_t)lo)
        tidei_misuse("GC_add_roots", lo, "inverted range (end %p is below the start)", hi);
    gc_thread_t *t = api_thread();
    crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    gc_range_t *r = tidei_scratch_push(&roots);
    if (r)
        *r = (gc_range_t){ (uintptr_t)lo, (uintptr_t)hi };
    pthread_mutex_unlock(&tables_lock);
    crit_leave(t);
}

/* Removes the root ranges that lie inside [lo, hi) (Boehm's rule). */
tide_export void GC_remove_roots(void *lo, void *hi)
{
    if ((uintptr_t)hi < (uintptr_t)lo)
        tidei_misuse("GC_remove_roots", lo, "inverted range (end %p is below the start)", hi);
    gc_thread_t *t = api_thread();
    crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    gc_range_t *r = roots.p;
    size_t k = 0;
    for (size_t i = 0; i < roots.n; i++)
        if (!(r[i].lo >= (uintptr_t)lo && r[i].hi <= (uintptr_t)hi))
            r[k++] = r[i];
    roots.n = k;
    pthread_mutex_unlock(&tables_lock);
    crit_leave(t);
}

tide_export void GC_clear_roots(void)
{
    gc_thread_t *t = api_thread();
    crit_enter(t);
    pthread_mutex_lock(&tables_lock);
    roots.n = 0;
    pthread_mutex_unlock(&tables_lock);
    crit_leave(t);
}

/* Only meaningful inside a push hook (GC_push_other_roots), during the
 * mark: the range is scanned as a root. */
tide_export void GC_push_all(void *lo, void *hi)
{
    tidei_gc_push_range(lo, hi);
}

tide_export void GC_push_all_eager(void *lo, void *hi)
{
    tidei_gc_push_range(lo, hi);
}

tide_export void GC_push_conditional(void *lo, void *hi, int all)
{
    (void)all;
    tidei_gc_push_range(lo, hi);
}

tide_export void GC_set_push_other_roots(GC_push_other_roots_proc fn) { GC_push_other_roots = fn; }
tide_export GC_push_other_roots_proc GC_get_push_other_roots(void) { return GC_push_other_roots; }

tide_export int GC_is_marked(const void *p) { return tidei_gc_mark_bit(p, -1); }
tide_export void GC_set_mark_bit(const void *p) { tidei_gc_mark_bit(p, 1); }
tide_export void GC_clear_mark_bit(const void *p) { tidei_gc_mark_bit(p, 0); }

/* ---- allocation ---- */

tide_export void GC_init(void) { tidei_gc_init(); }
tide_export int GC_is_init_called(void) { return atomic_load_explicit(&gc_state, acquire) == 2; }
tide_export void *GC_malloc(size_t n) { return tidei_gc_malloc(n, GK_NORMAL); }
tide_export void *GC_malloc_atomic(size_t n) { return tidei_gc_malloc(n, GK_ATOMIC); }
tide_export void *GC_malloc_uncollectable(size_t n) { return tidei_gc_malloc(n, GK_UNCOLL); }
tide_export void *GC_malloc_atomic_uncollectable(size_t n) { return tidei_gc_malloc(n, GK_UNCOLL); }
tide_export void *GC_malloc_ignore_off_page(size_t n) { return tidei_gc_malloc(n, GK_NORMAL); }
tide_export void *GC_malloc_atomic_ignore_off_page(size_t n) { return tidei_gc_malloc(n, GK_ATOMIC); }
tide_export void *GC_malloc_stubborn(size_t n) { return tidei_gc_malloc(n, GK_NORMAL); }
tide_export void *GC_realloc(void *p, size_t n) { return tidei_gc_realloc(p, n); }
tide_export void GC_free(void *p) { tidei_gc_free(p, "GC_FREE"); }
tide_export void *GC_base(void *p) { return tidei_gc_base(p); }
tide_export int GC_is_heap_ptr(const void *p) { return tidei_gc_base(p) != NULL; }
tide_export size_t GC_size(const void *p) { return tidei_gc_size(p); }

tide_export void *GC_memalign(size_t align, size_t n)
{
    if (align <= 16)
        return GC_malloc(n);
    if (align & (align - 1)) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= TIDE_PAGE_SIZE && n <= TIDE_SMALL_MAX) {
        /* a class whose block size is a multiple of align: spans start on a page */
        size_t m = n < align ? align : n;
        int cls = (int)tidei_class_of(m);
        while (cls < TIDE_N_CLASSES && (tidei_class_size[cls] & (align - 1)))
            cls++;
        if (cls < TIDE_N_CLASSES)
            return GC_malloc(tidei_class_size[cls]);
    }
    if (align <= TIDE_PAGE_SIZE)
        return GC_malloc(n > TIDE_SMALL_MAX ? n : TIDE_SMALL_MAX + 1);
    errno = EINVAL;
    return NULL;
}

tide_export int GC_posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = GC_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

tide_export char *GC_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = GC_malloc_atomic(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

tide_export char *GC_strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = GC_malloc_atomic(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* ---- collection, figures, limits ---- */

tide_export void GC_gcollect(void) { tidei_gc_collect(); }
tide_export void GC_gcollect_and_unmap(void) { tidei_gc_collect(); tide_trim(); }
tide_export int GC_try_to_collect(GC_stop_func fn) { (void)fn; tidei_gc_collect(); return 1; }
tide_export int GC_collect_a_little(void) { return 0; }
tide_export void GC_disable(void) { tidei_gc_disable(1); }
tide_export void GC_enable(void) { tidei_gc_disable(-1); }
tide_export int GC_is_disabled(void) { return atomic_load_explicit(&gc_disabled, relaxed) != 0; }

tide_export size_t GC_get_heap_size(void) { return atomic_load_explicit(&heap_bytes, relaxed); }
tide_export size_t GC_get_total_bytes(void) { return atomic_load_explicit(&allocd_total, relaxed); }
tide_export size_t GC_get_bytes_since_gc(void) { return atomic_load_explicit(&allocd_since, relaxed); }
tide_export size_t GC_get_free_bytes(void)
{
    size_t heap = GC_get_heap_size(), used = live_after + GC_get_bytes_since_gc();
    return heap > used ? heap - used : 0;
}
tide_export size_t GC_get_unmapped_bytes(void) { return 0; }
tide_export size_t GC_get_memory_use(void) { return live_after + GC_get_bytes_since_gc(); }
tide_export size_t GC_get_gc_no(void) { return atomic_load_explicit(&gc_no, relaxed); }
tide_export void GC_set_max_heap_size(size_t n) { tidei_gc_set_max_heap(n); }
tide_export void GC_set_oom_fn(GC_oom_func fn) { tidei_gc_oom_fn = fn; }
tide_export GC_oom_func GC_get_oom_fn(void) { return tidei_gc_oom_fn; }
tide_export void GC_set_start_callback(GC_start_callback_proc fn) { tidei_gc_start_cb = fn; }
tide_export GC_start_callback_proc GC_get_start_callback(void) { return tidei_gc_start_cb; }
tide_export void GC_set_no_dls(int v) { tidei_gc_no_dls = v != 0; }
tide_export int GC_get_no_dls(void) { return tidei_gc_no_dls; }

/* Accepted, and without effect: every interior pointer is recognised, the
 * collection is not incremental, a pause has no time limit (docs/gc.md). */
static int interior = 1;
static unsigned long time_limit;
tide_export void GC_set_all_interior_pointers(int v) { interior = v; }
tide_export int GC_get_all_interior_pointers(void) { return interior; }
tide_export void GC_register_displacement(size_t n) { (void)n; }
tide_export void GC_enable_incremental(void) {}
tide_export int GC_is_incremental_mode(void) { return 0; }
tide_export void GC_set_time_limit(unsigned long ms) { time_limit = ms; }
tide_export unsigned long GC_get_time_limit(void) { return time_limit; }
/* Boehm collects when a 1/d of the heap was allocated since the last
 * collection: close to gc_percent = 100 / (d - 1) of the live bytes. */
tide_export void GC_set_free_space_divisor(GC_word d)
{
    if (d > 1)
        tidei_opt.gc_percent = (long)(100 / (d - 1)) > 0 ? (long)(100 / (d - 1)) : 1;
}
tide_export void GC_set_dont_expand(int v) { (void)v; }
tide_export void GC_set_find_leak(int v) { (void)v; }
tide_export int GC_get_find_leak(void) { return 0; }
tide_export void GC_set_full_freq(int v) { (void)v; }

static void default_warn(char *msg, GC_word arg)
{
    (void)msg;
    (void)arg;
}
static GC_warn_proc warn_proc = default_warn;
tide_export void GC_set_warn_proc(GC_warn_proc fn) { warn_proc = fn ? fn : default_warn; }
tide_export GC_warn_proc GC_get_warn_proc(void) { return warn_proc; }
tide_export void GC_ignore_warn_proc(char *msg, GC_word arg) { (void)msg; (void)arg; }

tide_export void GC_dump(void)
{
    struct tide_gc_stats st;
    tidei_gc_stats(&st);
    tidei_printf(2, "tide GC: %zu collections, heap %zu bytes, live after the last %zu bytes, allocated %llu bytes\n",
                 (size_t)st.n_collections, st.heap_bytes, st.live_bytes, (unsigned long long)st.allocated_total);
}

/* ---- threads ---- */

tide_export int GC_get_stack_base(struct GC_stack_base *sb)
{
    uintptr_t lo, hi;
    stack_bounds(&lo, &hi);
    sb->mem_base = (void *)hi;
    return hi ? GC_SUCCESS : GC_UNIMPLEMENTED;
}

tide_export void GC_allow_register_threads(void) { tidei_gc_init(); }
tide_export void GC_start_mark_threads(void) { tidei_gc_start_markers(); }

tide_export void *GC_call_with_stack_base(GC_stack_base_func fn, void *arg)
{
    struct GC_stack_base sb;
    GC_get_stack_base(&sb);
    return fn(&sb, arg);
}

tide_export int GC_register_my_thread(const struct GC_stack_base *sb)
{
    int r = tidei_gc_register_thread(sb ? (uintptr_t)sb->mem_base : 0, false);
    return r < 0 ? GC_NO_MEMORY : r;
}

tide_export int GC_unregister_my_thread(void) { return tidei_gc_unregister_thread(); }
tide_export int GC_thread_is_registered(void) { return tidei_gc_thread_registered(); }
tide_export void *GC_do_blocking(GC_fn_type fn, void *cd) { return tidei_gc_do_blocking(fn, cd); }
tide_export void *GC_call_with_gc_active(GC_fn_type fn, void *cd) { return fn(cd); }
tide_export void *GC_call_with_alloc_lock(GC_fn_type fn, void *cd) { return tidei_gc_with_lock(fn, cd); }
tide_export int GC_get_suspend_signal(void) { return tidei_gc_stop_signal(); }
tide_export int GC_get_thr_restart_signal(void) { return tidei_gc_stop_signal(); }

/* What a thread made by GC_pthread_create starts with: uncollectable, so
 * that arg stays reachable until the thread has it on its stack. */
typedef struct start_info {
    void *(*fn)(void *);
    void *arg;
} start_info_t;

static void *thread_start(void *p)
{
    start_info_t *si = p;
    void *(*fn)(void *) = si->fn;
    void *arg = si->arg;
    tidei_gc_register_thread(0, true);
    GC_free(si);
    void *r = fn(arg);
    __asm__ volatile("" : : "r"(arg) : "memory");
    return r;
}

tide_export int GC_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    tidei_gc_init();
    start_info_t *si = GC_malloc_uncollectable(sizeof *si);
    if (!si)
        return EAGAIN;
    si->fn = fn;
    si->arg = arg;
    int r = pthread_create(th, attr, thread_start, si);
    if (r)
        GC_free(si);
    return r;
}

tide_export int GC_pthread_join(pthread_t th, void **ret) { return pthread_join(th, ret); }
tide_export int GC_pthread_detach(pthread_t th) { return pthread_detach(th); }
tide_export int GC_pthread_cancel(pthread_t th) { return pthread_cancel(th); }
tide_export __attribute__((noreturn)) void GC_pthread_exit(void *ret) { pthread_exit(ret); }

/* The stop signal can never be blocked through this call. */
tide_export int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    if (set && how != SIG_UNBLOCK) {
        sigset_t s = *set;
        sigdelset(&s, tidei_gc_stop_signal());
        return pthread_sigmask(how, &s, old);
    }
    return pthread_sigmask(how, set, old);
}

tide_export void *GC_dlopen(const char *path, int mode)
{
    tidei_gc_disable(1);  /* a collection must not miss the new module's data half-loaded */
    void *h = dlopen(path, mode);
    tidei_gc_disable(-1);
    return h;
}

/* ---- tide_gc_* ---- */

tide_export void *tide_gc_malloc(size_t n) { return tidei_gc_malloc(n, GK_NORMAL); }
tide_export void *tide_gc_malloc_atomic(size_t n) { return tidei_gc_malloc(n, GK_ATOMIC); }
tide_export void *tide_gc_malloc_uncollectable(size_t n) { return tidei_gc_malloc(n, GK_UNCOLL); }
tide_export void *tide_gc_realloc(void *p, size_t n) { return tidei_gc_realloc(p, n); }
tide_export void tide_gc_free(void *p) { tidei_gc_free(p, "tide_gc_free"); }
tide_export void tide_gc_collect(void) { tidei_gc_collect(); }
tide_export int tide_gc_stats_get(struct tide_gc_stats *st)
{
    if (!st) {
        errno = EINVAL;
        return -1;
    }
    tidei_gc_stats(st);
    return 0;
}
