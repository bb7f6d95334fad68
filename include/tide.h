/* tide.h — the public interface of the tide memory allocator.
 *
 * tide replaces the standard allocation functions (malloc, free, calloc,
 * realloc, reallocarray, aligned_alloc, posix_memalign, memalign, valloc,
 * pvalloc, malloc_usable_size, malloc_trim, mallopt, mallinfo2, malloc_stats,
 * malloc_info); they are declared by <stdlib.h> and <malloc.h> as usual.
 * This header declares only what tide adds. Every function here may be called
 * from any thread, before main and after a thread's heap is gone, unless its
 * comment says otherwise.
 */
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIDE_VERSION_MAJOR 0
#define TIDE_VERSION_MINOR 1

/* Process-wide figures about the memory tide holds, in bytes unless the name
 * says otherwise.  Folded from all heaps at the time of the call: exact when
 * no other thread is allocating, approximate (each field a recent value)
 * while they do. */
struct tide_stats {
    size_t mapped_bytes;     /* address space tide holds: chunks plus huge mappings */
    size_t committed_bytes;  /* of mapped_bytes, the part that may be resident (not decommitted) */
    size_t huge_bytes;       /* address space in live huge blocks (each mapped on its own) */
    size_t huge_cached_bytes;/* freed huge mappings kept for reuse */
    size_t n_chunks;         /* chunks (8 MiB each) currently mapped */
    size_t free_run_bytes;   /* pages in chunks that hold no span and no large block */
    size_t n_heaps;          /* thread heaps that exist (live threads, plus ones kept for reuse) */
    size_t n_abandoned_spans;/* spans of exited threads not yet adopted by another */
};

/* Fills *st.  Takes tide's global locks briefly; do not call from a signal
 * handler.  Returns 0, or -1 with errno = EINVAL when st is NULL. */
int tide_stats_get(struct tide_stats *st);

/* Returns every free page tide can give back now: drains the remote frees of
 * abandoned spans, releases empty spans and fully free chunks, and empties
 * the huge-mapping cache.  Returns 1 if any memory went back to the OS, 0
 * otherwise.  malloc_trim(pad) is the same call (pad is ignored). */
int tide_trim(void);

/* The version string, e.g. "tide 0.1". */
const char *tide_version(void);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_H */
