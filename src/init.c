/* init.c — process start-up, thread start-up and exit, fork.
 *
 * Process init is lazy (the first malloc, which may come before main, from
 * the dynamic loader or another library's constructor) and also runs from a
 * constructor.  It never allocates, except the registration of the fork
 * handlers (tidei_atfork), which may call malloc: that comes last, after
 * the state says "ready", so the nested call works.
 *
 * Threads get a heap on their first allocation; a pthread key destructor
 * abandons it at exit.  Allocation after that (later key destructors, TLS
 * destructors) goes to the backup heap.
 *
 * Process exit: one destructor runs the reports asked for at exit, in
 * order: the stats, the heap profile, the leak check (which may end the
 * process with leak_exitcode).
 *
 * fork: the prepare handler takes tidei_backup_lock, tidei_heaps_lock, the
 * arena lock and the guard's lock (the lock order); parent and child
 * release them.  In the child only the forking thread runs: the heaps of
 * the other threads keep their spans (their blocks are the child's copies;
 * blocks of them freed in the child are pushed to their remote lists) —
 * see docs/fork.md. */
#include <sys/auxv.h>
#include <unistd.h>

#include "tide_internal.h"

_Atomic int tidei_init_state;        /* TIDE_INIT_NONE, _RUNNING, _READY */
static pthread_key_t thread_key;     /* destructor: thread_done */

enum { THREAD_NEW = 0, THREAD_LIVE = 1, THREAD_DEAD = 2 };
static __thread uint8_t thread_state;
__thread unsigned tidei_busy;

static void thread_done(void *arg)
{
    tide_heap_t *h = arg;
    tidei_busy_enter();
    tidei_tls_heap = &tidei_empty_heap;
    thread_state = THREAD_DEAD;
    tidei_crash_thread_end(h);
    tidei_heap_abandon(h);
    tidei_scav_thread_exits();
    tidei_busy_leave();
}

/* pthread_atfork for tide's handlers.  glibc's pthread_atfork is a stub
 * in libc_nonshared.a, which the linker puts after all of tide's code,
 * outside the 64 KiB window a small program keeps resident (static.c):
 * calling it at start-up would map another window.  The stub passes this
 * library's handle to __register_atfork (glibc 2.3.2 on); so does this. */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso);
extern void *__dso_handle __attribute__((weak, visibility("hidden")));
int tidei_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    return __register_atfork(prepare, parent, child, &__dso_handle == NULL ? NULL : __dso_handle);
}

static void fork_prepare(void)
{
    tidei_busy_enter();
    pthread_mutex_lock(&tidei_backup_lock);
    tidei_heap_shared_lock_all();
    pthread_mutex_lock(&tidei_heaps_lock);
    pthread_mutex_lock(&tidei_arena.lock);
    tidei_guard_fork_prepare();
}

static void fork_parent(void)
{
    tidei_guard_fork_parent();
    pthread_mutex_unlock(&tidei_arena.lock);
    pthread_mutex_unlock(&tidei_heaps_lock);
    tidei_heap_shared_unlock_all();
    pthread_mutex_unlock(&tidei_backup_lock);
    tidei_busy_leave();
}

/* In the child the forking thread is the only thread: it still holds the
 * locks fork_prepare took, and releases them.  The heaps of the parent's
 * other threads have no thread here: they are marked so (tid 0, not in
 * use) but keep their spans (docs/fork.md); the forking thread's heap gets
 * its new tid. */
static void fork_child(void)
{
    for (tide_heap_t *h = tidei_heaps; h; h = h->next_all) {
        if (h == tidei_tls_heap) {
            h->tid = tidei_os_gettid();
        } else {
            h->has_thread = false;
            if (h->in_use) {
                h->in_use = false;
                h->tid = 0;
            }
        }
    }
    tidei_heaps_recount();
    tidei_guard_fork_child();
    pthread_mutex_unlock(&tidei_arena.lock);
    pthread_mutex_unlock(&tidei_heaps_lock);
    tidei_heap_shared_unlock_all();
    pthread_mutex_unlock(&tidei_backup_lock);
    tidei_scav_after_fork_child();
    tidei_busy_leave();
}

static uintptr_t make_key(void)
{
    uintptr_t k = 0;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        memcpy(&k, r + 8, sizeof k);
    k ^= (uintptr_t)&k * 0x9e3779b97f4a7c15ull;
    k |= 1;  /* odd: never a valid pointer into a block */
    return k;
}

/* The cycle counter where there is one (no call into libc: its
 * clock_gettime would bring 40-odd KiB of libc's code into a process
 * that mallocs once, issue 13), else the clock. */
static uint64_t start_time_noise(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_ia32_rdtsc();
#else
    return tidei_os_now_ms();
#endif
}

static uint64_t make_link_secret(void)
{
    uint64_t k = 0;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        memcpy(&k, r, sizeof k);
    return k ^ (start_time_noise() * 0xd6e8feb86659fd93ull) ^ ((uintptr_t)&k >> 4);
}

/* Whether an option takes call stacks (the unwinder is needed). */
static bool stacks_wanted(void)
{
    return tidei_prof_on || tidei_guard_on;
}

void tidei_init_slow(void)
{
    int expected = TIDE_INIT_NONE;
    if (atomic_compare_exchange_strong_explicit(&tidei_init_state, &expected, TIDE_INIT_RUNNING, acq_rel, acquire)) {
        /* the kernel's word for it (sysconf would cost a page fault
         * and its neighbours in libc's code) */
        long page = (long)getauxval(AT_PAGESZ);
        if (page == 0)
            page = sysconf(_SC_PAGESIZE);
        if (page != (long)TIDE_PAGE_SIZE)
            tidei_fatal("tide: this build assumes %zu-byte pages, the system has %ld\n", TIDE_PAGE_SIZE, page);
        tidei_options_init();
        atomic_store_explicit(&tidei_decay_ms, tidei_opt.decay_ms, relaxed);
        tidei_arena_set_on_dirty(tidei_scav_note_dirty);  /* before any page is freed */
        tidei_class_init();
        tidei_pagemap_flat_init();
        tidei_stats_init();
        tidei_prof_init();
        tidei_free_key = make_key();
        tidei_link_secret = make_link_secret();
        tidei_guard_init();
        tidei_crash_init();
        if (pthread_key_create(&thread_key, thread_done) != 0)
            tidei_fatal("tide: pthread_key_create failed\n");
        atomic_store_explicit(&tidei_init_state, TIDE_INIT_READY, release);
        tidei_atfork(fork_prepare, fork_parent, fork_child);
        tidei_glibc_bind();
        tidei_unwind_init(stacks_wanted());  /* no dlopen: we may be inside the loader */
        return;
    }
    while (atomic_load_explicit(&tidei_init_state, acquire) != TIDE_INIT_READY)
        sched_yield();
}

/* Sets up the calling thread's heap.  Returns NULL if the thread has already
 * given its heap up (it is exiting) or memory ran out; the caller then uses
 * the backup heap. */
tide_heap_t *tidei_init_thread(void)
{
    tidei_init();
    if (thread_state == THREAD_DEAD)
        return NULL;
    tide_heap_t *h = tidei_heap_acquire();
    if (!h)
        return NULL;
    tidei_tls_heap = h;
    thread_state = THREAD_LIVE;
    /* May call calloc (glibc, keys >= 32): the heap is already in place. */
    pthread_setspecific(thread_key, h);
    tidei_scav_thread_start(h);
    tidei_crash_thread_start(h);
    return h;
}

/* Also where the unwinder is loaded when an option takes stacks: a
 * constructor runs where dlopen may be called (unwind.c). */
__attribute__((constructor)) static void tide_constructor(void)
{
    tidei_init();
    tidei_unwind_load(stacks_wanted());
}

/* At exit: the stats report (stats=1 or json), the heap profile (prof=1),
 * the leak check (leak_check=1).  libtide's destructors run after the
 * program's own atexit handlers and destructors. */
__attribute__((destructor)) static void process_at_exit(void)
{
    if (atomic_load_explicit(&tidei_init_state, acquire) != TIDE_INIT_READY)
        return;
    tidei_busy_enter();
    tidei_stats_at_exit();
    tidei_prof_at_exit();
    if (tidei_opt.leak_check)
        tidei_leak_check(true);
    tidei_busy_leave();
}
