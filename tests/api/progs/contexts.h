/* api/progs/contexts.h — runs a piece of work in each state a thread can
 * be in when it allocates (prof_prog.c and leak_prog.c use it):
 *   CTX_FRESH  a new thread whose first allocation the work makes: it has
 *              no tide heap yet (and if the work allocates only large and
 *              huge blocks, it is a large-only thread)
 *   CTX_MAIN   the main thread, which has a heap
 *   CTX_GONE   a pthread key destructor that runs after tide's own, in a
 *              thread that had a heap: the heap is gone (exiting thread)
 * Every context returns only when the work is done (the threads are
 * joined), and wipes the stack the work ran on: a stale pointer left in a
 * dead thread's stack (glibc keeps it for the next thread) would keep a
 * leaked block reachable. */
#ifndef CONTEXTS_H
#define CONTEXTS_H

#include "testhelper.h"

enum { CTX_FRESH, CTX_MAIN, CTX_GONE, N_CTX };
static const char *const ctx_name[N_CTX] = { "fresh", "main", "gone" };

typedef void (*ctx_fn)(int ctx, void *arg);

struct ctx_job {
    ctx_fn fn;
    void *arg;
};

/* Overwrites 64 KiB of stack below the caller's frame, a word at a time
 * through a volatile array (a memset of a dead local array is a dead store
 * that GCC deletes). */
__attribute__((noinline, noclone, unused)) static void ctx_scrub_stack(void)
{
    volatile uintptr_t junk[64 * 1024 / sizeof(uintptr_t)];
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        junk[i] = 0;
}

static void *ctx_fresh_thread(void *arg)
{
    struct ctx_job *j = arg;
    j->fn(CTX_FRESH, j->arg);
    ctx_scrub_stack();
    return NULL;
}

static pthread_key_t ctx_key;
static pthread_once_t ctx_key_once = PTHREAD_ONCE_INIT;

static void ctx_gone_dtor(void *arg)
{
    struct ctx_job *j = arg;
    j->fn(CTX_GONE, j->arg);
    ctx_scrub_stack();
}

/* Created after tide's own key (tide made it before the first malloc),
 * so its destructor runs after tide's. */
static void ctx_key_make(void)
{
    if (pthread_key_create(&ctx_key, ctx_gone_dtor) != 0) { perror("pthread_key_create"); exit(2); }
}

static void *ctx_gone_thread(void *arg)
{
    /* a small block first: the thread gets a heap, so tide's destructor
     * has one to give up before ours runs */
    void *volatile p = malloc(16);
    free(p);
    pthread_setspecific(ctx_key, arg);
    return NULL;
}

/* Runs fn(ctx, arg) in context ctx and waits for it. */
static void ctx_run(int ctx, ctx_fn fn, void *arg)
{
    struct ctx_job j = { fn, arg };
    pthread_t t;
    switch (ctx) {
    case CTX_MAIN:
        fn(CTX_MAIN, arg);
        return;
    case CTX_FRESH:
        if (pthread_create(&t, NULL, ctx_fresh_thread, &j) != 0) { perror("pthread_create"); exit(2); }
        break;
    default:
        pthread_once(&ctx_key_once, ctx_key_make);
        if (pthread_create(&t, NULL, ctx_gone_thread, &j) != 0) { perror("pthread_create"); exit(2); }
        break;
    }
    pthread_join(t, NULL);
}

#endif
