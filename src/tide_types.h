/* tide_types.h — every internal structure, every field commented. */
#ifndef TIDE_TYPES_H
#define TIDE_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tide_config.h"

/* A free small block.  Every block is at least 16 bytes, so both words
 * exist.  The first word links the free lists, encoded with the span's
 * secret (tidei_link_encode): a program that writes into a free block
 * (a use after free, an overflow from the block before) leaves a link
 * that decodes outside the span, and the next malloc that reaches it
 * reports it instead of following it.  The second word holds the free key
 * while the block is free, its span's (tidei_free_key_of: the descriptor's
 * address, which a program has no way to learn and which free() has at
 * hand): finding it on free() is the cheap hint of a double free.  (The
 * GC heap's free blocks carry the process's tidei_free_key instead.) */
typedef struct tide_free_block {
    uintptr_t link;              /* next free block in the same list, encoded (NULL included) */
    uintptr_t key;               /* tidei_free_key_of(span) while free, 0 once handed out */
} tide_free_block_t;

/* What a span descriptor describes. */
typedef enum tide_span_kind {
    TIDE_SPAN_FREE = 0,          /* a free page run in a chunk (in the free-range index) */
    TIDE_SPAN_SMALL,             /* a run of pages cut into blocks of one size class */
    TIDE_SPAN_LARGE,             /* one large block: a page run in a chunk */
    TIDE_SPAN_HUGE,              /* one huge block, mapped on its own */
    TIDE_SPAN_GUARD,             /* the region of guarded slots (guard.c): one descriptor, every page */
    TIDE_SPAN_GC,                /* blocks of the garbage-collected heap (src/gc/): a run cut into blocks of
                                    one class, or one big block; `gc` holds the collector's data */
} tide_span_kind_t;

/* Notify states, kept in the low two bits of tide_span_t.remote. */
enum {
    TIDE_RS_NORMAL = 0,          /* remote frees just push on the remote list */
    TIDE_RS_USE_NOTIFY = 1,      /* span is full: the next remote free tells the owner heap */
    TIDE_RS_NOTIFYING = 2,       /* a remote free is telling the owner right now */
    TIDE_RS_NEVER = 3,           /* span is abandoned (or being): never notify */
};
#define TIDE_RS_MASK ((uintptr_t)3)
/* The rest of tide_span_t.remote: the list's head in bits 2-47 (blocks
 * are 16-byte aligned, user addresses below 2^47) and how many blocks the
 * list holds in bits 48-63 (a span has fewer than 2^16 blocks), pushed
 * and taken with the head in one compare-exchange, so the owner needs no
 * walk of the list (a cache miss per block another thread freed) to know
 * how many came back. */
#define TIDE_RS_COUNT_SHIFT 48
#define TIDE_RS_ONE ((uintptr_t)1 << TIDE_RS_COUNT_SHIFT)
#define TIDE_RS_PTR_MASK ((TIDE_RS_ONE - 1) & ~TIDE_RS_MASK)

/* tide_span_t.slow_at of the kept last span of a class: its owner's frees
 * never take the slow path, however often they empty it. */
#define TIDE_SLOW_NEVER UINT16_MAX

struct tide_heap;
struct tide_chunk;

/* A span descriptor.  Lives out of band (metadata regions), never in the
 * pages it describes.  Three cache lines, grouped by who writes them: the
 * owner's fast paths (line 0), nobody but the owner's set-up and carving
 * (line 1, which every free reads), other threads' frees (line 2).  A
 * thread freeing into another's span so never reads the line the owner's
 * every malloc writes: with the owner test and the link key on that line,
 * each remote free took it from the owner and the owner's next malloc took
 * it back. */
typedef struct tide_span {
    /* Line 0: what the owner's malloc and free fast paths write. */
    tide_free_block_t *free;          /* SMALL: blocks ready for the owner's malloc, which pops them,
                                    and its free pushes them (a head is never encoded; malloc
                                    checks it is inside the span before use) */
    tide_free_block_t *local_free;    /* SMALL: blocks the owner's slow paths put back since the
                                    last collect (remote frees taken in, checked frees) */
    uint16_t used_rel;           /* SMALL: blocks out (remote frees count until collected),
                                    counted from slow_at: used - slow_at mod 2^16, so that the
                                    owner's free whose decrement reaches 0 takes the slow path
                                    (tidei_span_used gives used; a span holds fewer than
                                    TIDE_SLOW_NEVER blocks).  Only ever read and written
                                    16 bits wide, by malloc's increment and free's decrement
                                    alike: a wider access after the other's narrow store
                                    could not take its value from the store buffer and
                                    would wait for it to reach the cache (a malloc/free pair
                                    of one size 40 % slower, when malloc counted its block
                                    and its malloc with one 64-bit add on this word) */
    uintptr_t start;             /* address of the first page (first block) */
    uint64_t built_bytes;        /* SMALL: n_built * block_size: a free block lies in
                                    [start, start + built_bytes) (0 for any other kind) */
    uint64_t n_malloc;           /* SMALL: blocks its owner handed out since it got it (folded
                                    into the owner's ctr.malloc when the span leaves it);
                                    malloc adds 1 on its fast path */
    uint32_t n_built;            /* SMALL: blocks carved so far (the rest is untouched) */
    uint16_t slow_at;            /* SMALL: the count of blocks out at which that free comes:
                                    0 (the span emptied), used - 1 when it went on the full
                                    list (the first free takes it off), or TIDE_SLOW_NEVER for
                                    the kept last span of a class; the owner changes it
                                    (heap.c, span_set_slow_at), under h->lock */
    uint8_t in_full;             /* SMALL: on the owner's full list, not in a bin */
    uint8_t is_zero;             /* FREE/LARGE/HUGE: every page is known to
                                    read as zero (never touched since mapped, or purged with
                                    MADV_DONTNEED): calloc skips the memset, and a block cut
                                    from it needs no tidei_clear_key_word; merging ANDs it */
    /* Line 1: what every free reads (the owner test, the block-start test,
     * the link key), written only when the span is set up or carved: a
     * thread freeing into another's span reads it without taking the line
     * the owner's mallocs write, and the owner's malloc reads the key from
     * it. */
    _Alignas(64) _Atomic(struct tide_heap *) heap; /* SMALL: owner heap; NULL when abandoned or not SMALL */
    uint64_t blk_mul;            /* SMALL: floor(2^64 / block_size) + 1, for the block-start test */
    uint64_t blk_bound;          /* SMALL: n_built * (blk_mul * block_size mod 2^64): offset off
                                    is a built block's start iff off * blk_mul mod 2^64 < this */
    uint64_t blk_base;           /* SMALL: (start - flat range base) * blk_mul mod 2^64: the free
                                    fast path tests d * blk_mul - blk_base, d = p - flat base,
                                    which is off * blk_mul (tidei_block_ok_flat) */
    uint32_t block_size;         /* SMALL: bytes per block */
    uint32_t n_blocks;           /* SMALL: blocks the span can hold */
    uint8_t kind;                /* tide_span_kind_t */
    uint8_t cls;                 /* SMALL: size class */
    size_t n_pages;              /* length of the page run (HUGE: of the mapping) */
    uintptr_t link_key;          /* SMALL: the secret the span's free-list links are encoded with */
    /* Line 2: the remote-free word, which other threads' frees write, and
     * the fields of the slow paths. */
    _Alignas(64) _Atomic uintptr_t remote;    /* SMALL: remote-free list head | notify state (low 2 bits) */
    struct tide_chunk *chunk;    /* chunk holding the run; NULL for HUGE */
    uint64_t dirty_ms;           /* FREE run / cached huge mapping: when its pages were last
                                    freed (tidei_os_now_ms), which the purge compares with the
                                    decay delay; 0 = nothing to purge; 1 = due at once (an
                                    idle heap's pages, tidei_arena_free_run's due_now); merging
                                    keeps the later time */
    struct tide_span *next;      /* list link: bin, full list, free-range bin, abandoned, cache */
    struct tide_span *prev;      /* list link, back */
    uint32_t prof_site;          /* LARGE/HUGE: site of a sampled block (prof.c); 0 = not sampled */
    size_t prof_size;            /* LARGE/HUGE, sampled: the bytes requested */
    struct tidei_gc_span *gc;    /* GC: the collector's side data (mark and alloc bits; gc/heap.c) */
} tide_span_t;

/* A chunk: TIDE_CHUNK_SIZE bytes of address space for spans and large
 * blocks.  The descriptor is out of band. */
typedef struct tide_chunk {
    uintptr_t base;              /* first byte of the chunk */
    size_t n_free_pages;         /* pages in free runs */
    struct tide_chunk *next;     /* all chunks, doubly linked */
    struct tide_chunk *prev;     /* back link */
    bool huge;                   /* mapped once the heap was big (TIDE_CONF thp_heap_mb): the whole
                                    chunk asks for transparent huge pages, spans and free runs too,
                                    until pages of it are purged (arena lock; read atomically) */
} tide_chunk_t;

/* A heap's counters, per size class.  Written only by the heap's owner
 * thread (plain increments: no lock, no atomic read-modify-write), read by
 * stats.c, which folds every heap's counters into process-wide figures.
 * The figures are exact when the program is quiescent; while threads run,
 * a reader sees each counter at some recent value (aligned 64-bit loads
 * do not tear on the platforms tide supports).  Counts are cumulative and
 * survive the thread: a pooled heap keeps them for its next owner.  The
 * owner's frees into its own spans are not counted (the free fast path
 * writes no counter), and the mallocs are counted in the spans (n_malloc,
 * next to the `used` the fast path writes anyway): stats.c adds up the
 * spans of the heap (tidei_heap_used) and has
 *   malloc     = ctr.malloc + the spans' n_malloc
 *   free_local = malloc - collected + moved_in - moved_out - used. */
typedef struct tide_heap_counters {
    uint64_t malloc[TIDE_N_CLASSES];      /* blocks handed out by this heap from spans it no longer
                                             owns (the rest: the n_malloc of its spans) */
    uint64_t free_remote[TIDE_N_CLASSES]; /* blocks this thread freed into spans of other heaps (or none) */
    uint64_t collected[TIDE_N_CLASSES];   /* remote frees taken back into this heap's spans */
    uint64_t moved_in[TIDE_N_CLASSES];    /* blocks out of spans this heap adopted, at adoption */
    uint64_t moved_out[TIDE_N_CLASSES];   /* blocks out of spans this heap gave up, at the time */
    uint64_t spans[TIDE_N_CLASSES];       /* SMALL spans owned now */
    uint64_t requested;                   /* bytes asked for by this heap's allocations (every size;
                                             the backup heap's: of threads whose heap is gone), up to
                                             the last sampler event; add sample_armed - sample_left
                                             (tidei_heap_requested) */
    int64_t sample_left;                  /* the sampler's countdown: bytes until the next event
                                             (prof.c); every malloc subtracts its size */
    int64_t sample_armed;                 /* what the countdown was armed with at the last event */
    int64_t fast_left;                    /* not a figure: sample_left's twin, charged by the malloc
                                             fast path on its exit as sample_left is on its entry, by
                                             every other charge at once, and moved with it by every
                                             sampler event; so the fast path is inside while
                                             the two differ, which the scavenger reads after a
                                             membarrier (heap.c, tidei_fast_charge); next to
                                             sample_left, so malloc touches no other line */
    uint64_t n_full;                      /* spans on the full list now */
} tide_heap_counters_t;

/* Counters of work no thread heap owns (slow paths only, so atomics). */
typedef struct tide_global_counters {
    _Atomic uint64_t free_remote[TIDE_N_CLASSES]; /* small frees by threads without a heap */
    _Atomic uint64_t collected[TIDE_N_CLASSES];   /* remote frees taken from spans nobody owns */
    _Atomic uint64_t returned;    /* bytes given back to the OS: unmapped or decommitted */
} tide_global_counters_t;

/* A thread heap.  Only its owner thread touches it, except `notify` (pushed
 * by other threads) and the registry links (under tidei_heaps_lock). */
typedef struct tide_heap {
    tide_span_t *by_size[TIDE_N_DIRECT]; /* direct[] by requested size, up to TIDE_DIRECT_MAX: read by
                                    the malloc fast path of the heap's thread only (the shared
                                    and backup heaps leave it NULL) */
    tide_span_t *direct[TIDE_N_CLASSES]; /* span malloc takes from, per class: the bin head, or &tidei_empty_span */
    tide_span_t *bins[TIDE_N_CLASSES];   /* spans with (possibly) free blocks, per class */
    tide_span_t *bin_tails[TIDE_N_CLASSES]; /* the last span of each bin */
    tide_span_t *full;           /* spans with no free block, waiting for a notify */
    _Atomic(tide_free_block_t *) notify; /* blocks of full spans freed by other threads */
    struct tide_heap *next_all;  /* registry of every heap (tidei_heaps_lock) */
    struct tide_heap *next_pool; /* pool of unused heaps (tidei_heaps_lock) */
    bool in_use;                 /* owned by a live thread (or it is the backup heap) */
    int tid;                     /* kernel thread id of the owner (0: none, -1: the backup heap) */
    unsigned id;                 /* number of the heap, from 1, in order of creation */
    tide_heap_counters_t ctr;    /* owner-written counters (stats.c) */
    pthread_t thread;            /* the owner thread (valid while has_thread) */
    bool has_thread;             /* thread is a live thread (tidei_heaps_lock) */
    union {                      /* the heap's lock (tidei_heap_lock): */
        pthread_mutex_t mutex;   /* a shared heap's, which threads contend for */
        _Atomic int word;        /* any other heap's: 0, or the thread id of its holder */
    } lock;                      /* taken by the owner's slow paths (refill, the free slow path,
                                    release, give up) and by the scavenger (trylock) that takes
                                    back what an idle heap caches; never by a fast path */
    atomic_int lock_wait;        /* 1 while the owner waits in tidei_heap_lock */
    uint64_t slow_seq;           /* bumped by the owner's slow paths, under `lock`: activity
                                    the scavenger sees when the counters are compiled out */
    uint64_t scav_activity;      /* scavenger only: the heap's activity when last looked at */
    uint64_t scav_since_ms;      /* scavenger only: since when that has not changed */
    bool scav_released;          /* scavenger only: released since the last activity */
    void *sus_handle;            /* the embedder's handle of the owner (tide_set_thread_suspender), or NULL */
    int64_t prof_left;           /* leak_check=full: bytes until the next profile sample */
    uint64_t prof_rng;           /* the sampler's random state (0: not seeded) */
    int64_t guard_left;          /* guard=1: bytes until the guard's next draw (guard.c) */
    int64_t guard_prof;          /* guard=1: bytes until the profiler's own countdown runs out */
    uint64_t guard_rng;          /* guard=1: the guard's random state (0: no event seen yet) */
    bool guard_due;              /* guard=1: the last event chose to guard the allocation */
    char *alt_stack;             /* crash handler: signal stack lent to the owner thread (crash.c), or NULL */
    uint16_t shared_n[TIDE_N_CLASSES]; /* owner only: blocks of each class its thread took from a shared
                                    heap (heap.c); below TIDE_CONF shared_blocks it has no span of the class */
    uint16_t own_classes;        /* owner only: classes it stopped sharing (heap.c tidei_heap_takes_shared) */
    uint8_t n_spare;             /* h->lock: spans in spare[] */
    struct tide_span *spare[TIDE_SPARE_SPANS]; /* h->lock: spans that emptied, kept in their bins, the
                                    one that emptied first first (heap.c span_keep_spare) */
    _Alignas(64) atomic_bool remote_in; /* set by a remote free into one of its spans (a load, and a
                                    store only when clear), cleared by the scavenger: to a shared heap
                                    it is activity (tidei_heap_shared_activity); to a thread heap the
                                    scavenger has released, a reason to look again (scav.c).  On a
                                    line of its own, which the owner's fast paths never touch */
    uint64_t scav_remote_seen;   /* shared heaps, scavenger only: times it found remote_in set */
} tide_heap_t;

/* The flat page map of the chunk range (pagemap.c). */
typedef struct tidei_pagemap_flat {
    uintptr_t base;              /* first byte of the range (the top of the address space: none) */
    size_t n_pages;              /* pages in the range (0: none); a power of two */
    size_t mask;                 /* n_pages - 1 (0: none): the free fast path masks a page
                                    number with it instead of comparing it with n_pages, so
                                    an address outside the range reads some entry of the
                                    range, and the slow path that the block-start test
                                    sends it to looks it up again (free.c) */
    uintptr_t *map;              /* an entry per page of the range, as the tree's, stored as the
                                    span descriptor's address minus the map's: 0 (no span) reads
                                    as the map's start, where a descriptor no thread owns sits
                                    (tidei_flat_none), so the free fast path tests no NULL */
} tidei_pagemap_flat_t;

/* The header of a metadata region (the leak checker skips them). */
typedef struct tidei_meta_region {
    struct tidei_meta_region *next; /* the region mapped before */
    size_t size;                 /* bytes, header included */
} tidei_meta_region_t;

/* The page allocator: free-range index over all chunks, plus the chunks and
 * the huge-block cache.  Everything here is under `lock`. */
typedef struct tide_arena {
    pthread_mutex_t lock;        /* the page allocator's (arena.c, huge.c, meta.c); lock order in heap.c */
    tide_span_t *bins[TIDE_CHUNK_PAGES + 1]; /* free runs by exact length in pages */
    uint64_t bitmap[TIDE_CHUNK_PAGES / 64 + 1]; /* bit n set: bins[n] non-empty */
    uint64_t summary;            /* bit w set: bitmap[w] non-zero */
    tide_chunk_t *chunks;        /* every mapped chunk */
    size_t n_chunks;             /* chunks mapped */
    size_t n_empty_chunks;       /* chunks that are one whole free run */
    size_t free_pages;           /* pages in free runs, all chunks */
    size_t zero_free_pages;      /* of those, pages known zero (never touched or decommitted) */
    size_t huge_bytes;           /* bytes mapped for live huge blocks */
    size_t n_huge;               /* live huge blocks */
    tide_span_t *huge_live;      /* live huge blocks, doubly linked (for the heap walk) */
    uint64_t n_huge_malloc;      /* huge blocks ever allocated */
    size_t large_pages;          /* pages in live large blocks */
    size_t n_large;              /* live large blocks */
    uint64_t n_large_malloc;     /* large blocks ever allocated */
    tide_span_t *huge_cache;     /* free ranges of freed huge blocks kept mapped for reuse (FREE
                                    descriptors, not in the page map), in address order (huge.c) */
    size_t huge_cache_bytes;     /* bytes in huge_cache */
    size_t n_huge_cache;         /* ranges in huge_cache */
    size_t huge_peak_cur;        /* highest huge_bytes in the current decay period */
    size_t huge_peak_prev;       /* highest huge_bytes in the previous decay period */
    uint64_t huge_peak_ms;       /* when the current period began (tidei_os_now_ms) */
    tide_span_t *span_pool;      /* unused span descriptors */
    uintptr_t meta_cur;          /* next free byte of the current metadata region */
    uintptr_t meta_end;          /* end of the current metadata region */
    size_t meta_bytes;           /* bytes mapped for metadata */
    tidei_meta_region_t *meta_regions; /* every metadata region, newest first */
} tide_arena_t;

/* One allocation function tide exports (override.c). */
typedef struct tidei_override_entry {
    const char *name;            /* the exported name, e.g. "malloc" */
    void *fn;                    /* tide's own definition of it */
} tidei_entry_t;

#endif /* TIDE_TYPES_H */
