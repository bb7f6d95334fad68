/* api/realloc_threads.c — realloc of huge blocks (mremap: grown in place or
 * moved, shrunk in place) while other threads map and unmap blocks of their
 * own: every live block stays a block of this malloc (malloc_usable_size
 * knows it: on tide a lost page-map entry aborts there) and keeps its
 * contents.  Address space one thread gives back is mapped at once by
 * another, so the order in which tide updates its page map and the kernel's
 * mappings matters.  Bounded by a count of resize cycles, not by time. */
#include "testhelper.h"

#include <sched.h>
#include <stdatomic.h>

#define CYCLES 3000
#define RING 8

static atomic_int stop;
static atomic_int errors;
static char first_error[300];

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    if (atomic_fetch_add(&errors, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof first_error, fmt, ap);
        va_end(ap);
    }
}

static void *resizer(void *arg)
{
    (void)arg;
    /* Low priority: preempted often, which widens any window between giving
     * address space back and updating the page map. */
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    size_t n = 6 * MiB;
    char *p = malloc(n);
    if (!p) { report("malloc(6 MiB) failed"); goto out; }
    p[0] = 1; p[n - 1] = 2;
    for (int i = 0; i < CYCLES && !atomic_load(&errors); i++) {
        size_t m = i % 2 ? 6 * MiB : 12 * MiB + (size_t)(i % 5) * 4096;
        char *q = realloc(p, m);
        if (!q) { report("realloc(%zu -> %zu) failed", n, m); break; }
        if (q[0] != 1) report("realloc(%zu -> %zu) lost contents", n, m);
        p = q;
        n = m;
        p[n - 1] = 2;
    }
    free(p);
out:
    atomic_store(&stop, 1);
    return NULL;
}

static void *mapper(void *arg)
{
    unsigned k = (unsigned)(uintptr_t)arg;
    void *ring[RING] = { 0 };
    size_t sz[RING] = { 0 };
    while (!atomic_load(&stop) && !atomic_load(&errors)) {
        unsigned i = k++ % RING;
        free(ring[i]);
        sz[i] = (size_t)(1 + k % 12) * MiB + (k % 3) * 4096;
        ring[i] = malloc(sz[i]);
        if (!ring[i]) { report("malloc(%zu) failed", sz[i]); break; }
        memset(ring[i], (int)(i + 1), 64);
        for (int j = 0; j < RING; j++) {
            if (!ring[j]) continue;
            if (malloc_usable_size(ring[j]) < sz[j]) report("usable size of a live %zu-byte block shrank", sz[j]);
            if (((unsigned char *)ring[j])[0] != j + 1) report("a live %zu-byte block changed", sz[j]);
        }
    }
    for (int j = 0; j < RING; j++) free(ring[j]);
    return NULL;
}

static void run_threads(void *arg)
{
    (void)arg;
    pthread_t r, m[3];
    if (pthread_create(&r, NULL, resizer, NULL) != 0) _exit(3);
    for (int i = 0; i < 3; i++)
        if (pthread_create(&m[i], NULL, mapper, (void *)(uintptr_t)(i * 5)) != 0) _exit(3);
    pthread_join(r, NULL);
    for (int i = 0; i < 3; i++) pthread_join(m[i], NULL);
    if (atomic_load(&errors)) {
        fprintf(stderr, "%d errors, first: %s\n", atomic_load(&errors), first_error);
        _exit(1);
    }
}

/* Runs in a child, so that a misuse abort from tide (a live block it no
 * longer knows) becomes a FAIL line with tide's message. */
static void huge_realloc_while_mapping(void)
{
    FILE *err = tmpfile();
    int st = th_in_child(run_threads, NULL, -1, fileno(err));
    char msg[400] = "", sb[64];
    rewind(err);
    if (!fgets(msg, sizeof msg, err)) msg[0] = 0;
    msg[strcspn(msg, "\n")] = 0;
    fclose(err);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s: %s", th_status_str(st, sb, sizeof sb), msg);
}

int main(void)
{
    RUN(on_tide);
    RUN(huge_realloc_while_mapping);
    return th_summary();
}
