/* unit/heaplock.c — a thread heap's lock, a word holding its holder's
 * thread id (tide_internal.h tidei_heap_trylock_as, heap.c
 * tidei_heap_lock_wait):
 *   - a trylock takes a free lock and refuses a held one, whoever asks;
 *     the word names the holder; an unlock frees it;
 *   - a waiter gets the lock once its holder lets it go, not before, and
 *     finds errno as it left it;
 *   - a thread that would wait for a lock it holds itself (a malloc from a
 *     signal handler that interrupted its own slow path) gets a one-line
 *     report naming the thread and the heap, and an abort, not a hang;
 *   - the shared heaps' locks, which stay mutexes, take the same calls. */
#include "unit.h"

#include <pthread.h>

static tide_heap_t *heap(void)
{
    tidei_init();
    tide_heap_t *h = tidei_heap_acquire();
    CHECK(h != NULL);
    return h;
}

static void trylock_and_unlock(void)
{
    tide_heap_t *h = heap();
    if (!h)
        return;
    int me = tidei_os_gettid();
    CHECK(atomic_load(&h->lock.word) == 0);
    CHECK(tidei_heap_trylock_as(h, me));
    CHECKF(atomic_load(&h->lock.word) == me, "word %d, holder %d", atomic_load(&h->lock.word), me);
    CHECK(!tidei_heap_trylock_as(h, me + 1));
    CHECK(!tidei_heap_trylock_as(h, me));
    tidei_heap_unlock(h);
    CHECK(atomic_load(&h->lock.word) == 0);
    tidei_heap_lock(h);  /* the owner's way: as h->tid */
    CHECKF(atomic_load(&h->lock.word) == h->tid, "word %d, owner %d", atomic_load(&h->lock.word), h->tid);
    tidei_heap_unlock(h);
}

/* The holder thread: takes the lock, says so, keeps it 30 ms, records
 * that it let go, lets go. */
static struct {
    tide_heap_t *h;
    atomic_int taken, released;
} hold;

static void *holder(void *arg)
{
    (void)arg;
    int me = tidei_os_gettid();
    if (!tidei_heap_trylock_as(hold.h, me))
        return NULL;
    atomic_store(&hold.taken, 1);
    struct timespec ts = { 0, 30 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    atomic_store(&hold.released, 1);
    tidei_heap_unlock(hold.h);
    return NULL;
}

static void waiter_gets_it_after_release(void)
{
    hold.h = heap();
    if (!hold.h)
        return;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, holder, NULL) == 0);
    while (!atomic_load(&hold.taken))
        sched_yield();
    int me = tidei_os_gettid();
    errno = 4321;
    tidei_heap_lock_as(hold.h, me);
    CHECKF(errno == 4321, "errno %d after waiting for the lock", errno);
    CHECK(atomic_load(&hold.released) == 1);
    CHECK(atomic_load(&hold.h->lock.word) == me);
    tidei_heap_unlock(hold.h);
    pthread_join(t, NULL);
}

static void self_wait_child(void *arg)
{
    (void)arg;
    alarm(10);  /* a hang (the second lock waiting for the first) ends as SIGALRM */
    tide_heap_t *h = heap();
    if (!h)
        _exit(3);
    tidei_heap_lock(h);
    tidei_heap_lock(h);  /* as a signal handler's malloc would: aborts */
    _exit(4);
}

static void self_wait_aborts(void)
{
    static char err[4096];
    int st = unit_capture_child(self_wait_child, NULL, err, sizeof err);
    char sb[64];
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child: %s, stderr: %.300s", th_status_str(st, sb, sizeof sb),
           err);
    CHECKF(strstr(err, "waits for the lock of its own heap") && strstr(err, "signal handler") && strchr(err, '\n') &&
               strchr(err, '\n')[1] == 0,
           "report: %.300s", err);
}

static void shared_heap_lock(void)
{
    tidei_init();
    tide_heap_t *sh = &tidei_shared_heaps[0];
    int me = tidei_os_gettid();
    CHECK(tidei_heap_trylock_as(sh, me));
    tidei_heap_unlock(sh);
    tidei_heap_lock_as(sh, me);
    tidei_heap_unlock(sh);
}

int main(void)
{
    RUN(trylock_and_unlock);
    RUN(waiter_gets_it_after_release);
    RUN(self_wait_aborts);
    RUN(shared_heap_lock);
    return th_summary();
}
