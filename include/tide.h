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

/* Number of small size classes (blocks of up to 64 KiB); larger blocks are
 * "large" (page runs in 8 MiB chunks: up to 4 MiB, and up to 8 MiB when a
 * freed run with its pages still resident holds the block) or "huge" (a
 * mapping each: every block above 8 MiB, and above 4 MiB otherwise). */
#define TIDE_N_CLASSES 81

/* Figures of one small size class. */
struct tide_class_stats {
    size_t block_size;       /* usable bytes of every block of the class */
    size_t live_blocks;      /* blocks handed out and not freed */
    uint64_t n_malloc;       /* blocks ever handed out */
    uint64_t n_free;         /* blocks ever freed (n_malloc - n_free = live_blocks) */
    size_t n_spans;          /* spans of the class owned by thread heaps */
    size_t cached_blocks;    /* free blocks in those spans, ready for their owners' mallocs */
};

/* Figures of the GC heap (all zero while the program has not used it). */
struct tide_gc_stats {
    size_t heap_bytes;           /* bytes of GC spans (small spans and big blocks) */
    size_t live_bytes;           /* bytes the last collection found reachable */
    size_t allocated_since_gc;   /* bytes taken for allocation since the last collection */
    uint64_t allocated_total;    /* bytes ever taken for allocation */
    uint64_t reclaimed_total;    /* bytes ever found dead by the sweeps */
    uint64_t n_collections;      /* collections done */
    uint64_t n_explicit_frees;   /* GC_FREE calls */
    size_t n_threads;            /* threads registered with the collector now */
    uint64_t pause_ns_total;     /* time the world was stopped, all collections */
    uint64_t pause_ns_max;       /* the longest pause */
    uint64_t pause_ns_last;      /* the last pause */
    uint64_t pause_hist[8];      /* pauses under 0.1, 0.3, 1, 3, 10, 30, 100 ms, and longer */
    size_t max_heap_bytes;       /* the heap limit (0: none) */
};

/* Process-wide figures, in bytes unless the name says otherwise.  Folded
 * from per-thread counters at the time of the call: exact when no other
 * thread is allocating or freeing, approximate (each counter a recent value)
 * while they do.  Fields marked "ever" are cumulative since start-up. */
struct tide_stats {
    /* -- live blocks: handed out by malloc & co. and not freed -- */
    size_t live_bytes;       /* usable bytes in live blocks (small + large + huge + guarded) */
    size_t live_blocks;      /* live blocks, all sizes */
    size_t small_live_bytes; /* usable bytes in live small blocks (<= 64 KiB) */
    size_t large_live_bytes; /* bytes in live large blocks (page runs in chunks) */
    size_t n_large;          /* live large blocks */
    size_t huge_bytes;       /* bytes in live huge blocks (each mapped on its own) */
    size_t n_huge;           /* live huge blocks */
    uint64_t n_malloc;       /* blocks ever allocated, all sizes */
    uint64_t n_free;         /* blocks ever freed, all sizes */
    uint64_t requested_bytes;/* bytes ever asked for by those allocations (the live
                                part of it is not tracked: see docs/stats.md) */
    /* -- memory held for reuse -- */
    size_t cached_bytes;     /* free small blocks in spans of thread heaps */
    size_t abandoned_bytes;  /* free small blocks in spans of exited threads */
    size_t pending_remote_frees; /* blocks freed by a thread other than their owner, not yet taken back */
    size_t free_run_bytes;   /* pages in chunks that hold no span and no large block */
    size_t huge_cached_bytes;/* freed huge mappings kept for reuse */
    /* -- spans by state -- */
    size_t n_spans;          /* small spans owned by thread heaps */
    size_t n_full_spans;     /* of those, spans with no free block (on a full list) */
    size_t n_abandoned_spans;/* small spans of exited threads not yet adopted by another */
    /* -- address space and the OS -- */
    size_t mapped_bytes;     /* address space tide holds: chunks, huge mappings and cache */
    size_t committed_bytes;  /* of mapped_bytes, the part that may be resident (not decommitted) */
    size_t returned_bytes;   /* bytes ever given back to the OS (unmapped or decommitted) */
    size_t metadata_bytes;   /* bytes mapped for tide's own metadata (span descriptors, heaps) */
    size_t n_chunks;         /* chunks (8 MiB each) currently mapped */
    size_t n_heaps;          /* thread heaps in use (live threads) */
    size_t n_heaps_total;    /* thread heaps ever made (the rest are pooled for new threads) */
    uint64_t n_os_calls;     /* requests ever made to the OS: mmap, munmap, mremap, madvise, mprotect */
    struct tide_class_stats classes[TIDE_N_CLASSES]; /* per small size class */
    struct tide_gc_stats gc;  /* the GC heap's (its spans are not in the figures above) */
};

/* Fills *st.  Takes tide's global locks briefly; do not call from a signal
 * handler.  Returns 0, or -1 with errno = EINVAL when st is NULL. */
int tide_stats_get(struct tide_stats *st);

/* Figures of one thread heap (exact when its thread is not allocating). */
struct tide_heap_stats {
    unsigned id;             /* the heap's number, from 1 in order of creation */
    int tid;                 /* kernel thread id of its thread; 0 if pooled (no thread) */
    size_t n_spans;          /* small spans it owns */
    size_t n_full_spans;     /* of those, with no free block */
    size_t cached_bytes;     /* free blocks in its spans (its cache) */
    size_t used_bytes;       /* blocks out of its spans (live, or freed by other threads and pending) */
    uint64_t n_malloc;       /* blocks its threads ever allocated from it */
    uint64_t n_free;         /* blocks its threads ever freed (into any heap) */
};

/* Copies the figures of up to max thread heaps to out[] and returns how many
 * heaps exist (may exceed max).  Same rules as tide_stats_get. */
size_t tide_stats_heaps(struct tide_heap_stats *out, size_t max);

/* Writes the human-readable report (the one of TIDE_CONF=stats=1 and
 * malloc_stats) to file descriptor fd, or JSON (docs/stats.md gives the
 * schema) when json is non-zero.  Does not allocate.  Returns 0, or -1 when
 * a write failed. */
int tide_stats_print(int fd, int json);

/* ---- heap walk and address lookup ---- */

#define TIDE_CLASS_LARGE (-1)    /* size_class of a large block */
#define TIDE_CLASS_HUGE  (-2)    /* size_class of a huge block */
#define TIDE_CLASS_GUARDED (-3)  /* size_class of a guarded block (TIDE_CONF guard=1); its size
                                    is the size requested */

/* A block, as the heap walk and tide_block_info report it. */
struct tide_block {
    void *ptr;               /* the block's first byte (what malloc returned) */
    size_t size;             /* its usable size */
    int size_class;          /* small class index, TIDE_CLASS_LARGE, TIDE_CLASS_HUGE or
                                TIDE_CLASS_GUARDED */
    unsigned heap;           /* id of the owning thread heap; 0 for large, huge and
                                blocks of exited threads' spans */
};

typedef void (*tide_walk_fn)(const struct tide_block *b, void *arg);

/* Calls fn(block, arg) once for every live block.  It first records every
 * live block (with the allocator's locks held) and then calls fn with no
 * lock held, so fn may allocate and free; blocks it allocates are not
 * visited.  Exact when no other thread allocates or frees during the
 * recording, and only then safe: the free lists of a running thread's heap
 * are read without its cooperation.  Call it from a single-threaded
 * program, with the other threads stopped or waiting, or at exit.  Returns
 * the number of blocks visited, or -1 with errno = ENOMEM when there was no
 * memory for the record. */
long tide_heap_walk(tide_walk_fn fn, void *arg);

enum tide_block_state {
    TIDE_BLOCK_NOT_TIDE = 0, /* not memory tide handed out or holds */
    TIDE_BLOCK_FREE = 1,     /* tide's, not in a live block (a free block or free pages) */
    TIDE_BLOCK_LIVE = 2,     /* inside a live block */
};

/* What the address p is: fills *info (info->block describes the block
 * containing p when the state is LIVE, or the free block or page run when
 * FREE) and returns the state.  Any thread, any time; whether a small block
 * owned by another running thread is free is told by the mark tide leaves
 * in freed blocks (exact unless the program stores that mark itself). */
struct tide_block_info {
    enum tide_block_state state;
    struct tide_block block;
};
int tide_block_info(const void *p, struct tide_block_info *info);

/* Returns every free page tide can give back now: drains the remote frees of
 * abandoned spans, releases empty spans and fully free chunks, and empties
 * the huge-mapping cache.  Returns 1 if any memory went back to the OS, 0
 * otherwise.  malloc_trim(pad) is the same call (pad is ignored). */
int tide_trim(void);

/* ---- giving idle threads' memory back (the scavenger) ---- */

/* Sets the decay delay: free pages go back to the OS after staying free
 * this many milliseconds (0: at once, -1: never; TIDE_CONF decay_ms sets it
 * at start-up, 500 by default).  Returns the previous value, or -2 with
 * errno = EINVAL when ms is not in -1..3600000. */
long tide_set_decay_ms(long ms);

/* How a runtime that already knows how to stop its threads lets tide's
 * scavenger stop them, instead of tide's own reclaim signal.  All callbacks
 * get `arg`.  self() is called by a thread when it gets its tide heap (its
 * first allocation) and returns a handle naming it; suspend(handle) stops
 * that thread and returns 0 once it is stopped (anything else: it could
 * not); resume(handle) lets it go on; release_handle(handle) is called when the
 * thread's heap is given up (the thread exits) and the handle will not be
 * used again.  While a thread is stopped, tide looks at its heap and, if
 * the thread is not inside tide, takes back what the heap caches. */
struct tide_thread_suspender {
    void *(*self)(void *arg);
    int (*suspend)(void *thread, void *arg);
    void (*resume)(void *thread, void *arg);
    void (*release_handle)(void *thread, void *arg);
    void *arg;
};

/* Installs the suspender (copied), or with NULL goes back to tide's own
 * mechanism.  Threads that got their heap before the call keep tide's own
 * mechanism.  Returns 0, or -1 with errno = EINVAL when a callback is
 * missing. */
int tide_set_thread_suspender(const struct tide_thread_suspender *s);

/* ---- heap profile and leak check (docs/profiling.md) ---- */

/* Writes a heap profile (gperftools' text heap profile, which google-pprof
 * reads) of the allocations sampled so far: estimated live and allocated
 * bytes and blocks per call stack.  path NULL: TIDE_CONF prof_file.
 * Returns 0, or -1 with errno set: EINVAL when profiling is off (TIDE_CONF
 * prof=1 turns it on), or why the file could not be written. */
int tide_prof_dump(const char *path);

/* Looks for leaks now: live blocks that nothing reachable points to (the
 * roots are every writable mapping that is not tide's heap: module data,
 * stacks, thread-local storage, other allocators' memory; the calling
 * thread's registers).  Prints the report as leak_check=1 does at exit, to
 * leak_file or stderr, and returns the number of leaked blocks, or -1 with
 * errno = ENOMEM.  Other threads must not allocate or free meanwhile. */
long tide_leak_check(void);

/* ---- the garbage-collected heap (docs/gc.md; Boehm's names in gc.h) ---- */

/* GC allocation: cleared memory the collector reclaims once nothing
 * reachable points into it (tide_gc_malloc_atomic: not cleared, never
 * scanned; _uncollectable: a root, freed only by tide_gc_free).  NULL with
 * errno = ENOMEM on exhaustion (after a full collection).  Any thread. */
void *tide_gc_malloc(size_t n);
void *tide_gc_malloc_atomic(size_t n);
void *tide_gc_malloc_uncollectable(size_t n);
/* Resizes a GC block (moves it unless the size stays in its class). */
void *tide_gc_realloc(void *p, size_t n);
/* Frees a GC block now; anything that is not one is reported as misuse. */
void tide_gc_free(void *p);
/* A full collection now (stops the world). */
void tide_gc_collect(void);
/* Fills *st.  Returns 0, or -1 with errno = EINVAL when st is NULL. */
int tide_gc_stats_get(struct tide_gc_stats *st);

/* The version string, e.g. "tide 0.1". */
const char *tide_version(void);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_H */
