/* unit/unit.h — the internal modules of tide, compiled into a unit test.
 *
 * A unit test includes this header instead of linking libtide: it gets every
 * module of src/ through src/static.c itself, which leaves override.c out
 * under TIDE_UNIT, so tide does NOT replace malloc in the test: the harness and the test's
 * own bookkeeping use glibc's malloc, and the test drives tide's internal API
 * (tidei_*) directly.  tests/run.sh compiles the unit tests with -Isrc
 * -DTIDE_UNIT and without libtide.  File-static names of the modules (the
 * option table, for instance) are visible to the test. */
#ifndef TIDE_UNIT_H
#define TIDE_UNIT_H

#include "testhelper.h"

#include "../../src/static.c"  /* every module but override.c (TIDE_UNIT) */

/* override.c is left out, so tide exports nothing here: an empty table of
 * its entry points (glibc.c then finds that tide's malloc is not the
 * process's and leaves libc alone). */
const tidei_entry_t tidei_override_entries[1] = { { "", NULL } };
const size_t tidei_override_n_entries = 0;
void *tidei_override_entry(const char *name)
{
    (void)name;
    return NULL;
}

/* What the modules call of override.c, which is left out. */
bool tidei_override_is_entry(uintptr_t fn)
{
    (void)fn;
    return false;
}

void *tidei_override_new_failed(size_t n, size_t align, bool nothrow)
{
    (void)n;
    (void)align;
    (void)nothrow;
    return NULL;
}

/* Runs fn in a child with fd 2 captured; returns the wait status and puts
 * what the child wrote to stderr in buf (NUL-terminated). */
__attribute__((unused))
static int unit_capture_child(void (*fn)(void *), void *arg, char *buf, size_t n)
{
    int p[2];
    if (pipe(p)) return -1;
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t k = 0;
    ssize_t m;
    while (k + 1 < n && (m = read(p[0], buf + k, n - 1 - k)) > 0) k += (size_t)m;
    buf[k] = 0;
    char drain[256];
    while (read(p[0], drain, sizeof drain) > 0) {}
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return -1;
    return st;
}

#endif /* TIDE_UNIT_H */
