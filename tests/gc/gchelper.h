/* gchelper.h — what the GC tests share: the harness, gc.h, helpers that
 * keep stale copies of pointers off the stack (a conservative collector
 * keeps what a dead stack slot still points to), a finalizer that counts,
 * and binary trees of GC_MALLOC'd nodes numbered in order, built and
 * checked. */
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

/* A tree node; value numbers the nodes in the order they were made. */
struct gc_node {
    struct gc_node *left, *right;
    long value;
};

/* A full tree of the given depth (2^(depth+1) - 1 nodes), numbered from
 * *counter on; NULL where an allocation failed. */
static __attribute__((unused)) struct gc_node *gc_make_tree(int depth, long *counter)
{
    struct gc_node *n = GC_MALLOC(sizeof *n);
    if (!n)
        return NULL;
    n->value = (*counter)++;
    if (depth > 0) {
        n->left = gc_make_tree(depth - 1, counter);
        n->right = gc_make_tree(depth - 1, counter);
    }
    return n;
}

/* 0 if n is the tree gc_make_tree(depth, counter) made, intact; -1 if not. */
static __attribute__((unused)) int gc_check_tree(const struct gc_node *n, int depth, long *counter)
{
    if (!n || n->value != (*counter)++)
        return -1;
    if (depth > 0 && (gc_check_tree(n->left, depth - 1, counter) < 0 ||
                      gc_check_tree(n->right, depth - 1, counter) < 0))
        return -1;
    return 0;
}
#endif
