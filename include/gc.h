/* gc.h — tide's garbage-collected heap under the names of the Boehm-Demers-
 * Weiser collector's gc.h, so that a program written for it builds
 * unchanged:  cc -Iinclude prog.c -Lbuild -ltide
 *
 * Every function here is served by tide (docs/gc.md says what differs from
 * libgc: incremental mode and time limits are accepted and ignored, every
 * interior pointer is recognised, the kinds are normal, atomic and
 * uncollectable).  Any thread may call them; a thread that allocates is
 * registered on its first allocation, and threads made with
 * GC_pthread_create (pthread_create under GC_THREADS) are registered from
 * their first instruction. */
#ifndef TIDE_GC_H
#define TIDE_GC_H
#define GC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GC_TIDE 1
#define GC_VERSION_MAJOR 8
#define GC_VERSION_MINOR 2
#define GC_VERSION_MICRO 2

typedef uintptr_t GC_word;
typedef intptr_t GC_signed_word;
typedef void *GC_PTR;
#define GC_API extern
#define GC_CALL
#define GC_CALLBACK
#define GC_ATTR_MALLOC
#define GC_ATTR_ALLOC_SIZE(n)
#define GC_ATTR_NONNULL(n)
#define GC_HIDE_POINTER(p) (~(GC_word)(p))
#define GC_REVEAL_POINTER(p) ((void *)GC_HIDE_POINTER(p))
#define HIDE_POINTER(p) GC_HIDE_POINTER(p)
#define REVEAL_POINTER(p) GC_REVEAL_POINTER(p)

#define GC_SUCCESS 0
#define GC_DUPLICATE 1
#define GC_NO_THREADS 2
#define GC_UNIMPLEMENTED 3
#define GC_NOT_FOUND 4
#define GC_NO_MEMORY 5

/* ---- allocation ---- */
void GC_init(void);
int GC_is_init_called(void);
void *GC_malloc(size_t);                       /* cleared, scanned */
void *GC_malloc_atomic(size_t);                /* not cleared, never scanned */
void *GC_malloc_uncollectable(size_t);         /* cleared, scanned, freed only by GC_free */
void *GC_malloc_atomic_uncollectable(size_t);
void *GC_malloc_ignore_off_page(size_t);
void *GC_malloc_atomic_ignore_off_page(size_t);
void *GC_malloc_stubborn(size_t);
void *GC_realloc(void *, size_t);
void GC_free(void *);                          /* misuse (not a GC block, interior, freed) aborts */
void *GC_base(void *);                         /* start of the GC block p points into, or NULL */
int GC_is_heap_ptr(const void *);
size_t GC_size(const void *);                  /* usable bytes of a GC block */
void *GC_memalign(size_t, size_t);
int GC_posix_memalign(void **, size_t, size_t);
char *GC_strdup(const char *);
char *GC_strndup(const char *, size_t);

#define GC_INIT() GC_init()
#define GC_MALLOC(n) GC_malloc(n)
#define GC_MALLOC_ATOMIC(n) GC_malloc_atomic(n)
#define GC_MALLOC_UNCOLLECTABLE(n) GC_malloc_uncollectable(n)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(n) GC_malloc_atomic_uncollectable(n)
#define GC_MALLOC_IGNORE_OFF_PAGE(n) GC_malloc_ignore_off_page(n)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(n) GC_malloc_atomic_ignore_off_page(n)
#define GC_MALLOC_STUBBORN(n) GC_malloc_stubborn(n)
#define GC_REALLOC(p, n) GC_realloc(p, n)
#define GC_FREE(p) GC_free(p)
#define GC_STRDUP(s) GC_strdup(s)
#define GC_STRNDUP(s, n) GC_strndup(s, n)
#define GC_MEMALIGN(a, n) GC_memalign(a, n)
#define GC_POSIX_MEMALIGN(p, a, n) GC_posix_memalign(p, a, n)
#define GC_NEW(t) ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t) ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
#define GC_NEW_UNCOLLECTABLE(t) ((t *)GC_MALLOC_UNCOLLECTABLE(sizeof(t)))
#define GC_END_STUBBORN_CHANGE(p) ((void)(p))
#define GC_PTR_STORE_AND_DIRTY(p, v) (*(void **)(p) = (void *)(v))
#define GC_reachable_here(p) __asm__ __volatile__("" : : "X"(p) : "memory")

/* ---- collection, figures, limits ---- */
typedef int (*GC_stop_func)(void);
typedef void *(*GC_oom_func)(size_t);
typedef void (*GC_warn_proc)(char *, GC_word);
typedef void (*GC_start_callback_proc)(void);
void GC_gcollect(void);
void GC_gcollect_and_unmap(void);
int GC_try_to_collect(GC_stop_func);
int GC_collect_a_little(void);
void GC_disable(void);
void GC_enable(void);
int GC_is_disabled(void);
size_t GC_get_heap_size(void);
size_t GC_get_free_bytes(void);
size_t GC_get_unmapped_bytes(void);
size_t GC_get_bytes_since_gc(void);
size_t GC_get_total_bytes(void);
size_t GC_get_memory_use(void);
size_t GC_get_gc_no(void);
void GC_set_max_heap_size(GC_word);
void GC_set_oom_fn(GC_oom_func);
GC_oom_func GC_get_oom_fn(void);
void GC_set_warn_proc(GC_warn_proc);
GC_warn_proc GC_get_warn_proc(void);
void GC_ignore_warn_proc(char *, GC_word);
void GC_set_start_callback(GC_start_callback_proc);
GC_start_callback_proc GC_get_start_callback(void);
void GC_set_free_space_divisor(GC_word);
void GC_dump(void);
/* accepted, without effect (docs/gc.md) */
void GC_set_all_interior_pointers(int);
int GC_get_all_interior_pointers(void);
void GC_register_displacement(size_t);
void GC_enable_incremental(void);
int GC_is_incremental_mode(void);
void GC_set_time_limit(unsigned long);
unsigned long GC_get_time_limit(void);
void GC_set_dont_expand(int);
void GC_set_full_freq(int);
void GC_set_no_dls(int);
int GC_get_no_dls(void);
void GC_set_find_leak(int);                    /* leak-finding mode is not provided: 0 always */
int GC_get_find_leak(void);
#define GC_REGISTER_DISPLACEMENT(n) GC_register_displacement(n)

/* ---- finalization and disappearing links ---- */
typedef void (*GC_finalization_proc)(void *obj, void *client_data);
typedef void (*GC_finalizer_notifier_proc)(void);
void GC_register_finalizer(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **);
void GC_register_finalizer_ignore_self(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **);
void GC_register_finalizer_no_order(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **);
void GC_register_finalizer_unreachable(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **);
int GC_should_invoke_finalizers(void);
int GC_invoke_finalizers(void);
void GC_set_finalize_on_demand(int);
int GC_get_finalize_on_demand(void);
void GC_set_finalizer_notifier(GC_finalizer_notifier_proc);
GC_finalizer_notifier_proc GC_get_finalizer_notifier(void);
void GC_set_java_finalization(int);
int GC_get_java_finalization(void);
int GC_register_disappearing_link(void **);
int GC_general_register_disappearing_link(void **, const void *);
int GC_unregister_disappearing_link(void **);
int GC_register_long_link(void **, const void *);
int GC_unregister_long_link(void **);
#define GC_REGISTER_FINALIZER(p, f, d, of, od) GC_register_finalizer(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_IGNORE_SELF(p, f, d, of, od) GC_register_finalizer_ignore_self(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_NO_ORDER(p, f, d, of, od) GC_register_finalizer_no_order(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_UNREACHABLE(p, f, d, of, od) GC_register_finalizer_unreachable(p, f, d, of, od)
#define GC_GENERAL_REGISTER_DISAPPEARING_LINK(l, o) GC_general_register_disappearing_link(l, o)
#define GC_REGISTER_LONG_LINK(l, o) GC_register_long_link(l, o)

/* ---- roots and marking ---- */
typedef void (*GC_push_other_roots_proc)(void);
void GC_add_roots(void *low, void *high_plus_1);     /* misuse: an inverted range */
void GC_remove_roots(void *low, void *high_plus_1);
void GC_clear_roots(void);
void GC_push_all(void *bottom, void *top);           /* inside a push hook only */
void GC_push_all_eager(void *bottom, void *top);
void GC_push_conditional(void *bottom, void *top, int all);
extern void (*GC_push_other_roots)(void);
void GC_set_push_other_roots(GC_push_other_roots_proc);
GC_push_other_roots_proc GC_get_push_other_roots(void);
int GC_is_marked(const void *);
void GC_set_mark_bit(const void *);
void GC_clear_mark_bit(const void *);

/* ---- threads ---- */
struct GC_stack_base {
    void *mem_base;                                  /* the stack's highest address */
};
typedef void *(*GC_fn_type)(void *);
typedef void *(*GC_stack_base_func)(struct GC_stack_base *, void *);
int GC_get_stack_base(struct GC_stack_base *);
void *GC_call_with_stack_base(GC_stack_base_func, void *);
void GC_allow_register_threads(void);
void GC_start_mark_threads(void);               /* the helper markers (gc_markers) start now */
int GC_register_my_thread(const struct GC_stack_base *);
int GC_unregister_my_thread(void);
int GC_thread_is_registered(void);
void *GC_do_blocking(GC_fn_type, void *);
void *GC_call_with_gc_active(GC_fn_type, void *);
void *GC_call_with_alloc_lock(GC_fn_type, void *);
int GC_get_suspend_signal(void);
int GC_get_thr_restart_signal(void);

/* As libgc's configuration on Linux: GC_THREADS means POSIX threads, and
 * programs test GC_PTHREADS (bdwgc's threadkey_test skips itself without
 * it). */
#if defined(GC_THREADS) && !defined(GC_PTHREADS)
#define GC_PTHREADS 1
#endif
#if defined(GC_THREADS) && defined(__linux__) && !defined(GC_LINUX_THREADS)
#define GC_LINUX_THREADS 1
#endif

#if defined(GC_THREADS) || defined(GC_PTHREADS) || defined(GC_LINUX_THREADS)
#include <pthread.h>
#include <signal.h>
#include <dlfcn.h>
int GC_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int GC_pthread_join(pthread_t, void **);
int GC_pthread_detach(pthread_t);
int GC_pthread_cancel(pthread_t);
void GC_pthread_exit(void *) __attribute__((noreturn));
int GC_pthread_sigmask(int, const sigset_t *, sigset_t *);
void *GC_dlopen(const char *, int);
#ifndef GC_NO_THREAD_REDIRECTS
#undef pthread_create
#undef pthread_join
#undef pthread_detach
#undef pthread_cancel
#undef pthread_exit
#undef pthread_sigmask
#undef dlopen
#define pthread_create GC_pthread_create
#define pthread_join GC_pthread_join
#define pthread_detach GC_pthread_detach
#define pthread_cancel GC_pthread_cancel
#define pthread_exit GC_pthread_exit
#define pthread_sigmask GC_pthread_sigmask
#define dlopen GC_dlopen
#endif
#endif

/* GC_DEBUG's forms are the plain ones. */
#define GC_debug_malloc(n, s, i) GC_malloc(n)
#define GC_MALLOC_EXPLICITLY_TYPED(n, d) GC_malloc(n)

#ifdef __cplusplus
}
#endif

#endif /* TIDE_GC_H */
