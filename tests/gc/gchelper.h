/* gchelper.h — what the GC tests share: the harness, gc.h, and helpers that
 * keep stale copies of pointers off the stack (a conservative collector
 * keeps what a dead stack slot still points to). */
#ifndef GCHELPER_H
#define GCHELPER_H
#include "testhelper.h"
#include <gc.h>

/* Overwrites a good part of the stack below the caller. */
static __attribute__((noinline)) void gc_clear_stack(void)
{
    volatile char buf[64 * 1024];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Collects with a cleared stack, then runs pending finalizers. */
static __attribute__((noinline)) void gc_full(void)
{
    gc_clear_stack();
    GC_gcollect();
    GC_invoke_finalizers();
}

/* Counts the finalizer calls of the objects it is registered on. */
static _Atomic long gc_n_finalized;
static void gc_count_fin(void *obj, void *cd)
{
    (void)obj;
    (void)cd;
    gc_n_finalized++;
}
#endif
