/* api/progs/progs.h — what the programs in tests/api/progs/ share (not a
 * program itself: the scripts compile only the .c files they name).
 *
 *   say(fmt, ...)          printf to stdout and flush at once: the program
 *                          is about to die of a signal, and what it printed
 *                          (the address the report must name) must reach
 *                          the script first
 *   say_sigcgt()           says the SigCgt line of /proc/self/status (the
 *                          signals the process catches)
 *   at_once(n, fn)         runs fn in n threads (at most 64) and joins them;
 *                          each calls at_once_wait() where the n must meet
 *                          (to crash at the same moment)
 *   ALLOC_ENTRY_POINTS(X)  every allocation entry point, as
 *                          X(name, tag, expr): expr allocates n bytes
 *                          (aligned to align where the entry point takes
 *                          one) by that entry point; tag is a distinct
 *                          number per entry point, 10 apart, for programs
 *                          that write one site function per entry point and
 *                          size range and must keep their code different */
#ifndef PROGS_H
#define PROGS_H

#include "testhelper.h"

__attribute__((unused, format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

__attribute__((unused)) static void say_sigcgt(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "SigCgt:", 7) == 0)
            say("%s", line);
    if (f)
        fclose(f);
}

static pthread_barrier_t at_once_barrier;

__attribute__((unused)) static void at_once_wait(void)
{
    pthread_barrier_wait(&at_once_barrier);
}

__attribute__((unused)) static void at_once(int n, void *(*fn)(void *))
{
    pthread_t t[64];
    if (n > 64)
        n = 64;
    pthread_barrier_init(&at_once_barrier, NULL, (unsigned)n);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, fn, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

#define ALLOC_ENTRY_POINTS(X)                                                          \
    X(malloc, 10, malloc(n))                                                           \
    X(calloc, 20, calloc(n / 8, 8))                                                    \
    X(realloc, 30, realloc(NULL, n))                                                   \
    X(aligned_alloc, 40, aligned_alloc(align, n))                                      \
    X(posix_memalign, 50, ({ void *q_; posix_memalign(&q_, align, n) == 0 ? q_ : NULL; })) \
    X(memalign, 60, memalign(align, n))                                                \
    X(valloc, 70, valloc(n))                                                           \
    X(pvalloc, 80, pvalloc(n))

#endif
