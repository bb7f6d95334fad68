/* which_malloc.c — prints the shared object that defines malloc in this
 * process.  Not a benchmark: bench/run.sh and bench/instr.sh run it under each
 * LD_PRELOAD setting to check that the allocator they name is really the one
 * in use (a misspelt path makes ld.so ignore the preload with only a warning).
 *
 * Prints: the path of the object, e.g. /usr/lib/x86_64-linux-gnu/libc.so.6
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) {
        fprintf(stderr, "which_malloc: cannot locate malloc\n");
        return 1;
    }
    /* allocate and free once, so a broken allocator fails here, not later */
    void *p = malloc(100);
    if (p == NULL)
        return 1;
    free(p);
    printf("%s\n", info.dli_fname);
    return 0;
}
