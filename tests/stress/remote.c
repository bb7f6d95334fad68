/* stress/remote.c — blocks allocated by one thread and freed by another.
 *
 * producer_consumer: two producers fill batches of random-size blocks and
 *   queue them; two consumers verify and free them (remote frees), and send
 *   back an "ack" block of their own that the producers free (remote frees
 *   the other way).  The queue is bounded, so little is live at any time;
 *   gigabytes go through it.  If remote frees were not reused, the mapped
 *   bytes would grow with the total; they must stay under a fixed bound.
 * full_spans: one class at a time, in batches of several spans' worth, so
 *   the producer's spans fill up and go to its full list; every consumer
 *   free of such a span goes through the notify path.  Same bound.
 * ping_pong: two threads swap one block at a time, each freeing the other's
 *   block and allocating a new one: every free is remote, every allocation
 *   must get back a block the other thread freed.
 * All blocks carry a pattern checked before they are freed. */
#include "stress.h"

#include <sched.h>

/* ---- a bounded blocking queue of pointers ---- */

#define QCAP 32

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    void *item[QCAP];
    size_t head, count;
} queue_t;

static void q_init(queue_t *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
}

static void q_destroy(queue_t *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

static void q_push(queue_t *q, void *p)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == QCAP)
        pthread_cond_wait(&q->not_full, &q->mu);
    q->item[(q->head + q->count++) % QCAP] = p;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* Pushes p unless the queue is full; false if it was. */
static bool q_try_push(queue_t *q, void *p)
{
    pthread_mutex_lock(&q->mu);
    bool ok = q->count < QCAP;
    if (ok) {
        q->item[(q->head + q->count++) % QCAP] = p;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

/* Pops an item; waits if wait, else returns false when empty. */
static bool q_pop(queue_t *q, void **out, bool wait)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && wait)
        pthread_cond_wait(&q->not_empty, &q->mu);
    bool got = q->count > 0;
    if (got) {
        *out = q->item[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

/* ---- peak memory, sampled by the producers ---- */

static atomic_size_t peak_mapped;
static atomic_size_t bytes_through;   /* bytes allocated by producers, total */

static void sample_mapped(void)
{
    if (!TH_TIDE)
        return;
    size_t m = th_stats().mapped_bytes;
    size_t old = atomic_load(&peak_mapped);
    while (m > old && !atomic_compare_exchange_weak(&peak_mapped, &old, m))
        ;
}

/* The peak must stay under bound above the start, while the total that went
 * through is many times that (else the check would prove nothing). */
static void check_bounded(size_t start, size_t bound)
{
    if (!TH_TIDE)
        return;
    size_t peak = atomic_load(&peak_mapped), total = atomic_load(&bytes_through);
    if (getenv("STRESS_VERBOSE"))
        fprintf(stderr, "  %zu MB through, mapped %zu MB at start, peak %zu MB\n", total / MiB, start / MiB, peak / MiB);
    CHECKF(total >= 4 * bound, "only %zu MB went through, bound %zu MB: the check is empty",
           total / MiB, bound / MiB);
    CHECKF(peak <= start + bound,
           "mapped bytes peaked at %zu MB (%zu MB at start) after %zu MB went through: remote frees not reused",
           peak / MiB, start / MiB, total / MiB);
}

/* ---- producer / consumer ---- */

#define BATCH_MAX 4096

typedef struct {
    size_t n;                       /* blocks in b */
    st_blk b[];                     /* the blocks */
} batch_t;

typedef struct {
    queue_t work;                   /* batches, producer -> consumer; NULL = stop */
    queue_t acks;                   /* ack blocks (st_blk, boxed), consumer -> producer */
    long rounds;                    /* batches per producer */
    size_t batch;                   /* blocks per batch */
    size_t fixed_size;              /* 0: random sizes; else this size (full_spans) */
} pc_t;

typedef struct { pc_t *pc; uint64_t seed; } pc_arg_t;

static void free_acks(pc_t *pc)
{
    void *p;
    while (q_pop(&pc->acks, &p, false)) {
        st_blk *box = p;
        st_free(*box, "ack");
        free(box);
    }
}

static void *producer(void *arg)
{
    pc_arg_t *a = arg;
    pc_t *pc = a->pc;
    th_rng r = { a->seed };
    for (long i = 0; i < pc->rounds && !st_failed(); i++) {
        batch_t *bt = malloc(sizeof *bt + pc->batch * sizeof(st_blk));
        if (!bt) {
            st_report("malloc of a batch failed");
            break;
        }
        size_t bytes = 0;
        bt->n = pc->batch;
        for (size_t k = 0; k < bt->n; k++) {
            size_t n = pc->fixed_size ? pc->fixed_size + (size_t)(i & 1) * 48 : st_rand_size(&r);
            bt->b[k] = st_new(n);
            bytes += n;
        }
        atomic_fetch_add_explicit(&bytes_through, bytes, memory_order_relaxed);
        q_push(&pc->work, bt);
        free_acks(pc);
        if (i % 256 == 0)
            sample_mapped();
    }
    sample_mapped();
    q_push(&pc->work, NULL);
    return NULL;
}

static void *consumer(void *arg)
{
    pc_arg_t *a = arg;
    pc_t *pc = a->pc;
    th_rng r = { a->seed };
    void *p;
    while (q_pop(&pc->work, &p, true) && p) {
        batch_t *bt = p;
        for (size_t k = 0; k < bt->n; k++)
            st_free(bt->b[k], "consumer");
        free(bt);
        st_blk *box = malloc(sizeof *box);
        if (!box) {
            st_report("malloc of an ack failed");
            continue;
        }
        *box = st_new(th_rand_range(&r, 1, 512));
        /* The ack queue is bounded: when it is full (the producers may
         * be done), the ack is freed here, a local free. */
        if (!q_try_push(&pc->acks, box)) {
            st_free(*box, "ack (local)");
            free(box);
        }
    }
    return NULL;
}

/* n_prod producers and as many consumers over one pair of queues. */
static void run_pc(int n_prod, long rounds, size_t batch, size_t fixed_size, size_t bound)
{
    pc_t pc;
    q_init(&pc.work);
    q_init(&pc.acks);
    pc.rounds = rounds;
    pc.batch = batch;
    pc.fixed_size = fixed_size;
    atomic_store(&bytes_through, 0);
    st_trim();
    size_t start = th_stats().mapped_bytes;
    atomic_store(&peak_mapped, start);

    pthread_t tp[4], tc[4];
    pc_arg_t ap[4], ac[4];
    int np = 0, nc = 0;
    for (int i = 0; i < n_prod; i++) {
        ac[i] = (pc_arg_t){ &pc, th_mix(100 + (uint64_t)i) | 1 };
        if (st_spawn(&tc[nc], consumer, &ac[i]))
            nc++;
    }
    for (int i = 0; i < n_prod && nc > 0; i++) {   /* (no consumer: producers would block) */
        ap[i] = (pc_arg_t){ &pc, th_mix(200 + (uint64_t)i) | 1 };
        if (st_spawn(&tp[np], producer, &ap[i]))
            np++;
    }
    for (int i = 0; i < np; i++)
        st_join(tp[i]);
    for (int i = np; i < nc; i++)     /* consumers without a producer */
        q_push(&pc.work, NULL);
    for (int i = 0; i < nc; i++)
        st_join(tc[i]);
    free_acks(&pc);
    st_check_errors();
    check_bounded(start, bound);
    q_destroy(&pc.work);
    q_destroy(&pc.acks);
}

static void producer_consumer(void)
{
    run_pc(2, st_ops(3000), 64, 0, 96 * MiB);
}

static void full_spans(void)
{
    /* 64- and 112-byte blocks, 4096 per batch: four or more spans each.
     * Not scaled down under TSan: the total must stay well above the bound. */
    run_pc(1, 600, BATCH_MAX, 64, 32 * MiB);
}

/* ---- ping-pong ---- */

typedef struct {
    _Atomic(st_blk *) slot[2];      /* slot[i]: the block thread i receives */
    long rounds;
} pp_t;

static void *pp_thread(void *arg)
{
    pp_t *pp = ((void **)arg)[0];
    int me = (int)(uintptr_t)((void **)arg)[1];
    th_rng r = { th_mix((uint64_t)me + 7) | 1 };
    for (long i = 0; i < pp->rounds && !st_failed(); i++) {
        st_blk *mine;
        long spins = 0;
        while ((mine = atomic_exchange(&pp->slot[me], NULL)) == NULL) {
            if (st_failed())
                return NULL;
            if (++spins % 16 == 0)
                sched_yield();
        }
        st_free(*mine, "ping-pong");
        free(mine);
        st_blk *next = malloc(sizeof *next);
        if (!next) {
            st_report("malloc failed");
            return NULL;
        }
        size_t n = th_rand_range(&r, 1, 4096);
        *next = st_new(n);
        atomic_fetch_add_explicit(&bytes_through, n, memory_order_relaxed);
        if (i % 4096 == 0)
            sample_mapped();
        atomic_store(&pp->slot[1 - me], next);
    }
    return NULL;
}

static void ping_pong(void)
{
    static pp_t pp;
    pp.rounds = st_ops(100000);
    st_trim();
    size_t start = th_stats().mapped_bytes;
    atomic_store(&peak_mapped, start);
    atomic_store(&bytes_through, 0);
    st_blk *first = malloc(sizeof *first);
    *first = st_new(100);
    atomic_store(&pp.slot[0], first);
    void *args[2][2] = { { &pp, (void *)0 }, { &pp, (void *)1 } };
    pthread_t t[2];
    bool ok0 = st_spawn(&t[0], pp_thread, args[0]);
    bool ok1 = ok0 && st_spawn(&t[1], pp_thread, args[1]);
    if (ok1)
        st_join(t[1]);
    if (ok0)
        st_join(t[0]);
    for (int i = 0; i < 2; i++) {
        st_blk *b = atomic_exchange(&pp.slot[i], NULL);
        if (b) {
            st_free(*b, "left over");
            free(b);
        }
    }
    st_check_errors();
    check_bounded(start, 16 * MiB);
}

int main(void)
{
    RUN(on_tide);
    RUN(producer_consumer);
    RUN(full_spans);
    RUN(ping_pong);
    return th_summary();
}
