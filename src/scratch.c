/* scratch.c — scratch memory: growing arrays in mappings of their own,
 * never in the heap, for the work lists of reports (the heap walk's record,
 * the leak checker's lists, the profiler's tables).  Not heap memory: what
 * it unmaps is not counted as returned to the OS.
 *
 * Owns nothing shared and takes no lock: an array belongs to its caller. */
#include "tide_internal.h"

/* Unmaps scratch memory (a record, a table): not heap memory, so not
 * counted as returned to the OS. */
void tidei_scratch_unmap(void *p, size_t size)
{
    tidei_os_unmap(p, size);
    atomic_fetch_sub_explicit(&tidei_global_ctr.returned, size, relaxed);
}

/* Room for one more element at the end of s (doubling its mapping when
 * full), or NULL when the OS refused memory (then s->failed is set). */
void *tidei_scratch_push(tidei_scratch_t *s)
{
    if (s->failed)
        return NULL;
    if (s->n == s->cap) {
        size_t old = s->cap * s->elem;
        size_t bytes = old ? old * 2 : TIDE_SCRATCH_MIN_BYTES;
        void *p = old ? tidei_os_remap(s->p, old, bytes, true) : tidei_os_map(bytes);
        if (!p) {
            s->failed = true;
            return NULL;
        }
        s->p = p;
        s->cap = bytes / s->elem;
    }
    return (char *)s->p + s->elem * s->n++;
}

void tidei_scratch_free(tidei_scratch_t *s)
{
    if (s->p)
        tidei_scratch_unmap(s->p, s->cap * s->elem);
    s->p = NULL;
    s->n = s->cap = 0;
}
