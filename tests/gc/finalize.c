/* gc/finalize.c — finalization and weak pointers: ordered finalizers (an
 * object reachable from another unreachable finalizable object waits a
 * cycle), _no_order and _ignore_self, unregistering, finalize-on-demand
 * with its notifier, short and long disappearing links, the client data
 * kept alive; and pointers held only in a GC_REALLOC'd array. */
#include "gchelper.h"

struct obj {
    struct obj *next;
    long id;
};

static long order[64];
static _Atomic int n_order;
static void record_fin(void *p, void *cd)
{
    (void)cd;
    order[n_order++ % 64] = ((struct obj *)GC_base(p))->id;
}

static __attribute__((noinline)) void make_chain(void)
{
    struct obj *a = GC_MALLOC(sizeof *a), *b = GC_MALLOC(sizeof *b);
    a->id = 1;
    b->id = 2;
    a->next = b;  /* a reaches b */
    GC_REGISTER_FINALIZER(a, record_fin, NULL, NULL, NULL);
    GC_REGISTER_FINALIZER(b, record_fin, NULL, NULL, NULL);
}

static void test_ordered(void)
{
    n_order = 0;
    make_chain();
    for (int i = 0; i < 4 && n_order < 2; i++)
        gc_full();
    CHECKF(n_order == 2, "%d finalizers ran", (int)n_order);
    CHECKF(order[0] == 1 && order[1] == 2, "order %ld then %ld (the reaching object first)", order[0], order[1]);
}

static __attribute__((noinline)) void make_self_cycle(int mode)
{
    struct obj *a = GC_MALLOC(sizeof *a);
    a->id = 10 + mode;
    a->next = a;  /* points to itself */
    if (mode == 0)
        GC_REGISTER_FINALIZER_IGNORE_SELF(a, record_fin, NULL, NULL, NULL);
    else
        GC_REGISTER_FINALIZER_NO_ORDER(a, record_fin, NULL, NULL, NULL);
}

static void test_self_cycle(void)
{
    n_order = 0;
    make_self_cycle(0);
    make_self_cycle(1);
    for (int i = 0; i < 3; i++)
        gc_full();
    CHECKF(n_order == 2, "%d of 2 self-referencing objects finalized", (int)n_order);
}

static __attribute__((noinline)) void make_unregistered(void)
{
    struct obj *a = GC_MALLOC(sizeof *a);
    a->id = 99;
    GC_finalization_proc ofn = NULL;
    GC_REGISTER_FINALIZER(a, record_fin, NULL, NULL, NULL);
    GC_REGISTER_FINALIZER(a, NULL, NULL, &ofn, NULL);
    CHECK(ofn == record_fin);
}

static void test_unregister(void)
{
    n_order = 0;
    make_unregistered();
    gc_full();
    gc_full();
    CHECKF(n_order == 0, "an unregistered finalizer ran");
}

static _Atomic int notified;
static void notifier(void) { notified++; }

static __attribute__((noinline)) void make_garbage_with_fin(int n)
{
    for (int i = 0; i < n; i++) {
        struct obj *a = GC_MALLOC(sizeof *a);
        a->id = 1000 + i;
        GC_REGISTER_FINALIZER_NO_ORDER(a, gc_count_fin, NULL, NULL, NULL);
    }
}

static void test_on_demand(void)
{
    gc_n_finalized = 0;
    GC_set_finalize_on_demand(1);
    GC_set_finalizer_notifier(notifier);
    make_garbage_with_fin(200);
    gc_clear_stack();
    GC_gcollect();
    CHECKF(gc_n_finalized == 0, "finalizers ran without being asked (%ld)", (long)gc_n_finalized);
    CHECK(notified > 0);
    CHECK(GC_should_invoke_finalizers());
    int ran = GC_invoke_finalizers();
    CHECKF(ran >= 180 && gc_n_finalized == ran, "ran %d, counted %ld", ran, (long)gc_n_finalized);
    GC_set_finalize_on_demand(0);
    GC_set_finalizer_notifier(NULL);
}

static void *weak_short, *weak_long, *weak_kept;
static struct obj *strong;

static __attribute__((noinline)) void make_links(void)
{
    struct obj *a = GC_MALLOC(sizeof *a), *b = GC_MALLOC(sizeof *b), *c = GC_MALLOC(sizeof *c);
    a->id = 1;
    b->id = 2;
    c->id = 3;
    weak_short = a;
    weak_long = b;
    weak_kept = c;
    strong = c;
    CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&weak_short, a) == GC_SUCCESS);
    CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&weak_short, a) == GC_DUPLICATE);
    CHECK(GC_REGISTER_LONG_LINK(&weak_long, b) == GC_SUCCESS);
    CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&weak_kept, c) == GC_SUCCESS);
    /* the links are hidden from the collector: */
    weak_short = (void *)GC_HIDE_POINTER(a);
    weak_long = (void *)GC_HIDE_POINTER(b);
    weak_kept = (void *)GC_HIDE_POINTER(c);
}

static void test_links(void)
{
    make_links();
    gc_full();
    gc_full();
    CHECKF(weak_short == NULL, "the short link to a dead object was not cleared");
    CHECKF(weak_long == NULL, "the long link to a dead object was not cleared");
    CHECKF(weak_kept == (void *)GC_HIDE_POINTER(strong), "the link to a live object changed");
    CHECK(GC_unregister_disappearing_link(&weak_kept) == 1);
    CHECK(GC_unregister_disappearing_link(&weak_kept) == 0);
}

/* the client data of a finalizer stays alive until the finalizer runs */
static long cd_value;
static void check_cd(void *p, void *cd)
{
    (void)p;
    cd_value = ((struct obj *)cd)->id;
}

static __attribute__((noinline)) void make_with_cd(void)
{
    struct obj *a = GC_MALLOC(sizeof *a), *cd = GC_MALLOC(sizeof *cd);
    cd->id = 4242;
    GC_REGISTER_FINALIZER(a, check_cd, cd, NULL, NULL);
}

static void test_client_data_kept(void)
{
    make_with_cd();
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 2000; k++)
            GC_MALLOC(64);  /* churn over the client data's space */
        gc_full();
    }
    CHECKF(cd_value == 4242, "client data read %ld", cd_value);
}

/* pointers held only in an array grown with GC_REALLOC */
static void **grown;
static void test_realloc_array_root(void)
{
    size_t n = 0, cap = 4;
    grown = GC_MALLOC(cap * sizeof(void *));
    for (int i = 0; i < 20000; i++) {
        if (n == cap) {
            cap *= 2;
            grown = GC_REALLOC(grown, cap * sizeof(void *));
        }
        long *p = GC_MALLOC_ATOMIC(32);
        p[0] = i;
        p[3] = ~(long)i;
        grown[n++] = p;
        if (i % 5000 == 0)
            gc_full();
    }
    gc_full();
    for (size_t i = 0; i < n; i++) {
        long *p = grown[i];
        if (p[0] != (long)i || p[3] != ~(long)i) {
            FAILF("element %zu damaged", i);
            return;
        }
    }
}

int main(void)
{
    GC_INIT();
    RUN(test_ordered);
    RUN(test_self_cycle);
    RUN(test_unregister);
    RUN(test_on_demand);
    RUN(test_links);
    RUN(test_client_data_kept);
    RUN(test_realloc_array_root);
    return th_summary();
}
