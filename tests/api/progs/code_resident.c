/* api/progs/code_resident.c — what an ordinary program runs of tide, then
 * how much of libtide.so's code is resident in it (footprint.sh).
 *
 * The work: every entry point (malloc .. pvalloc, realloc across the
 * small, large and huge ranges, malloc_usable_size), blocks of every
 * range, freed by their own thread and by another, in every state a
 * thread allocates in (contexts.h: the main thread, a new thread with no
 * heap yet, a thread whose heap is gone), and a fork whose child
 * allocates too.  Then it prints, from /proc/self/smaps, the mapping of
 * libtide.so's code: `code START END RSS_KIB`. */
#define _GNU_SOURCE
#include "contexts.h"
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_LIVE 256

static void *volatile sink;

/* Blocks of every size range through every entry point; half of them are
 * left in out[] for another thread to free. */
static void work(void **out)
{
    void *keep[N_LIVE];
    for (int i = 0; i < N_LIVE; i++) {
        size_t n = (size_t)(i * 37 % 4096) + 1;  /* the small classes */
        keep[i] = malloc(n);
        memset(keep[i], i, n);
    }
    for (int i = 0; i < N_LIVE; i += 2)
        free(keep[i]);
    for (int i = 0; i < N_LIVE; i += 2)
        keep[i] = calloc(1, (size_t)i + 1);
    void *large = malloc(200 << 10), *huge = malloc(8 << 20);
    memset(large, 1, 200 << 10);
    ((char *)huge)[0] = 1;
    void *p = malloc(24);  /* realloc from small to large, to huge and back */
    p = realloc(p, 100);
    p = realloc(p, 300 << 10);
    p = realloc(p, 6 << 20);
    p = realloc(p, 48);
    sink = p;
    void *a = NULL;
    if (posix_memalign(&a, 4096, 100) != 0)
        abort();
    void *b = aligned_alloc(256, 512), *c = memalign(64, 1000), *d = valloc(5000), *e = pvalloc(100);
    if (!large || !huge || !p || !b || !c || !d || !e || malloc_usable_size(p) < 48)
        abort();
    free(large);
    free(huge);
    free(p);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    for (int i = 0; i < N_LIVE; i++) {
        if (out && (i & 1))
            out[i / 2] = keep[i];
        else
            free(keep[i]);
    }
}

static void work_in(int ctx, void *arg)
{
    (void)ctx;
    work(arg);
}

int main(void)
{
    static void *handed[N_CTX][N_LIVE / 2];
    for (int round = 0; round < 2; round++) {
        for (int c = 0; c < N_CTX; c++)
            ctx_run(c, work_in, handed[c]);
        for (int c = 0; c < N_CTX; c++)  /* by the main thread: for the others, frees of an exited thread's blocks */
            for (int j = 0; j < N_LIVE / 2; j++)
                free(handed[c][j]);
    }
    pid_t pid = fork();
    if (pid == 0) {
        work(NULL);
        _exit(0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        abort();
    work(NULL);

    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        abort();
    char line[512];
    unsigned long lo = 0, hi = 0, rss = 0;
    int in_code = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, z;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &z, perm) == 3 && strchr(line, '/')) {
            in_code = strcmp(perm, "r-xp") == 0 && strstr(line, "/libtide.so\n") != NULL;
            if (in_code)
                lo = a, hi = z, found = 1;
        } else if (in_code && sscanf(line, "Rss: %lu kB", &rss) == 1) {
            in_code = 0;
        }
    }
    fclose(f);
    if (!found)
        return 2;
    printf("code %lx %lx %lu\n", lo, hi, rss);
    return 0;
}
