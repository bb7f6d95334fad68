/* gc/api.c — every exported name of the GC heap: Boehm's GC_*
 * (include/gc.h, bdwgc 8.2's API; a program linked against libgc.so.1 runs
 * on them) and tide_gc_* (include/tide.h), each a thin call into the file
 * that does the work; and the set-up that the first call makes
 * (tidei_gc_init_slow), since nothing of the collector exists in a process
 * that never calls it.
 *
 * Locks: init_lock, taken once by the set-up, before every other GC lock
 * (it takes no other GC lock: pools' locks are initialized under it); the
 * thread wrappers take nothing themselves. */
#include <dlfcn.h>

#include "gc_internal.h"

_Atomic int tidei_gc_state;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

/* Boehm's variable: the embedder's root pusher, called during the mark. */
tide_export void (*GC_push_other_roots)(void);

/* ---- set-up ---- */

tide_noinline void tidei_gc_init_slow(void)
{
    tidei_init();
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&tidei_gc_state, acquire) == 2) {
        pthread_mutex_unlock(&init_lock);
        return;
    }
    for (int k = 0; k < GK_N; k++)
        for (int c = 0; c < TIDE_N_CLASSES; c++)
            pthread_mutex_init(&tidei_gc_pools[k][c].lock, NULL);
    if (tidei_opt.gc_max_mb && !tidei_gc_max_heap)
        tidei_gc_max_heap = (size_t)tidei_opt.gc_max_mb << 20;
    tidei_gc_threads_init();
    tidei_gc_roots_init();
    atomic_store_explicit(&tidei_gc_state, 2, release);
    pthread_mutex_unlock(&init_lock);
}

/* GC_INIT: the set-up, and the calling thread registered. */
void tidei_gc_init(void)
{
    tidei_gc_init_once();
    tidei_gc_thread();
}

/* ---- finalizers ---- */

tide_export void GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                       void **ocd)
{
    tidei_gc_fin_register(obj, fn, cd, ofn, ocd, FIN_ORDERED, "GC_register_finalizer");
}

tide_export void GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd,
                                                   GC_finalization_proc *ofn, void **ocd)
{
    tidei_gc_fin_register(obj, fn, cd, ofn, ocd, FIN_IGNORE_SELF, "GC_register_finalizer_ignore_self");
}

tide_export void GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd,
                                                GC_finalization_proc *ofn, void **ocd)
{
    tidei_gc_fin_register(obj, fn, cd, ofn, ocd, FIN_NO_ORDER, "GC_register_finalizer_no_order");
}

tide_export void GC_register_finalizer_unreachable(void *obj, GC_finalization_proc fn, void *cd,
                                                   GC_finalization_proc *ofn, void **ocd)
{
    tidei_gc_fin_register(obj, fn, cd, ofn, ocd, FIN_NO_ORDER, "GC_register_finalizer_unreachable");
}

tide_export int GC_should_invoke_finalizers(void) { return tidei_gc_fin_pending(); }
/* Runs the queued finalizers; returns how many ran. */
tide_export int GC_invoke_finalizers(void) { return tidei_gc_fin_invoke(); }

static int java_fin;
tide_export void GC_set_finalize_on_demand(int v) { tidei_gc_fin_on_demand = v; }
tide_export int GC_get_finalize_on_demand(void) { return tidei_gc_fin_on_demand; }
tide_export void GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn) { tidei_gc_fin_notifier = fn; }
tide_export GC_finalizer_notifier_proc GC_get_finalizer_notifier(void) { return tidei_gc_fin_notifier; }
tide_export void GC_set_java_finalization(int v) { java_fin = v; }
tide_export int GC_get_java_finalization(void) { return java_fin; }

/* ---- disappearing links ---- */

tide_export int GC_general_register_disappearing_link(void **link, const void *obj)
{
    return tidei_gc_link_register(link, obj, false, "GC_general_register_disappearing_link");
}

tide_export int GC_register_disappearing_link(void **link)
{
    return tidei_gc_link_register(link, tidei_gc_base(*link), false, "GC_register_disappearing_link");
}

tide_export int GC_unregister_disappearing_link(void **link)
{
    return tidei_gc_link_unregister(link, false);
}

tide_export int GC_register_long_link(void **link, const void *obj)
{
    return tidei_gc_link_register(link, obj, true, "GC_register_long_link");
}

tide_export int GC_unregister_long_link(void **link)
{
    return tidei_gc_link_unregister(link, true);
}

/* ---- roots ---- */

tide_export void GC_add_roots(void *lo, void *hi)
{
    if ((uintptr_t)hi < (uintptr_t)lo)
        tidei_misuse("GC_add_roots", lo, "inverted range (end %p is below the start)", hi);
    tidei_gc_roots_add((uintptr_t)lo, (uintptr_t)hi);
}

/* Removes the root ranges that lie inside [lo, hi) (Boehm's rule). */
tide_export void GC_remove_roots(void *lo, void *hi)
{
    if ((uintptr_t)hi < (uintptr_t)lo)
        tidei_misuse("GC_remove_roots", lo, "inverted range (end %p is below the start)", hi);
    tidei_gc_roots_remove((uintptr_t)lo, (uintptr_t)hi);
}

tide_export void GC_clear_roots(void) { tidei_gc_roots_clear(); }

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
tide_export int GC_is_init_called(void) { return atomic_load_explicit(&tidei_gc_state, acquire) == 2; }
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
tide_export int GC_is_disabled(void) { return atomic_load_explicit(&tidei_gc_disabled, relaxed) != 0; }

tide_export size_t GC_get_heap_size(void) { return atomic_load_explicit(&tidei_gc_heap_bytes, relaxed); }
tide_export size_t GC_get_total_bytes(void) { return atomic_load_explicit(&tidei_gc_allocd_total, relaxed); }
tide_export size_t GC_get_bytes_since_gc(void) { return atomic_load_explicit(&tidei_gc_allocd_since, relaxed); }
tide_export size_t GC_get_free_bytes(void)
{
    size_t heap = GC_get_heap_size(), used = tidei_gc_live_after + GC_get_bytes_since_gc();
    return heap > used ? heap - used : 0;
}
tide_export size_t GC_get_unmapped_bytes(void) { return 0; }
tide_export size_t GC_get_memory_use(void) { return tidei_gc_live_after + GC_get_bytes_since_gc(); }
tide_export size_t GC_get_gc_no(void) { return atomic_load_explicit(&tidei_gc_no, relaxed); }
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
    tidei_gc_stack_bounds(&lo, &hi);
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
typedef struct gc_start_info {
    void *(*fn)(void *);
    void *arg;
} gc_start_info_t;

static void *created_thread_start(void *p)
{
    gc_start_info_t *si = p;
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
    gc_start_info_t *si = GC_malloc_uncollectable(sizeof *si);
    if (!si)
        return EAGAIN;
    si->fn = fn;
    si->arg = arg;
    int r = pthread_create(th, attr, created_thread_start, si);
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
