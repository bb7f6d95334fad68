/* tide_internal.h — internal declarations, grouped by the file that defines
 * them.  Every name here has hidden visibility (the build uses
 * -fvisibility=hidden); only override.c and the tide_* API export symbols.
 *
 * Names follow files: what x.c defines for the others is tidei_x_*, but
 * for the few files that hold several named things, whose header lists
 * them: span.c (tidei_span_*, the classes tidei_class_*, the free-list
 * links tidei_link_*), alloc.c and free.c (the entry points' bodies,
 * tidei_malloc, tidei_free, ...), print.c (tidei_printf, tidei_warn,
 * tidei_fatal, tidei_misuse: the report primitives every file uses), init.c
 * (tidei_init, tidei_busy), heap.c (the registry, tidei_heaps*, and the
 * backup heap, tidei_backup_*).  tide_* names are the public API
 * (include/tide.h) or, for types and macros, internal but shared by all.
 *
 * The layers, bottom up (a file calls only into its own layer or below):
 *   os.c, print.c, options.c, pagemap.c, meta.c, scratch.c  (services)
 *   arena.c, huge.c                  the page allocator
 *   span.c                           size classes and spans
 *   heap.c                           thread heaps, remote frees, abandonment
 *   alloc.c, free.c, init.c          the entry points' bodies, start-up
 *   override.c, glibc.c              the exported names
 *   scav.c                           the scavenger (reclaims heaps, purges)
 *   stats.c, walk.c, leak.c, prof.c, guard.c, crash.c, symbolize.c
 *                                    introspection and hardening
 *   gc/                              the garbage-collected heap
 * Upcalls that a layer cannot avoid are named where they happen: the
 * allocation paths call the profiler through tidei_prof_charge/event/
 * took/free and the guard through tidei_guard_*; heap.c and free.c tell
 * the scavenger of a heap it must watch (tidei_scav_wanted); the page
 * allocator tells it of pages to purge only through the hook init.c sets
 * (tidei_arena_set_on_dirty). */
#ifndef TIDE_INTERNAL_H
#define TIDE_INTERNAL_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unwind.h>

#include "tide_types.h"
#include "list.h"
#include "tide.h"

#define tide_likely(x)    __builtin_expect(!!(x), 1)
#define tide_unlikely(x)  __builtin_expect(!!(x), 0)
#define tide_noinline     __attribute__((noinline))
/* A function whose address the profiler compares with the frames it
 * unwinds (tidei_prof_is_entry_point): GCC must not call a clone of it. */
#if defined(__GNUC__) && !defined(__clang__)
#define tide_noclone      __attribute__((noinline, noclone))
#else
#define tide_noclone      __attribute__((noinline))
#endif
#define tide_inline       static inline __attribute__((always_inline))
/* Code of the later modules of static.c that runs in every process, but
 * seldom: set-up, exit, fork, a thread's start and end, the sampler's event.
 * GCC puts it in .text.unlikely, which the linker puts at the start of
 * .text, in the 64 KiB of code that a small program keeps resident
 * (static.c, Makefile). */
#define tide_cold         __attribute__((cold))
#define tide_export       __attribute__((visibility("default")))
/* The malloc and free fast paths live in a section of their own, so that
 * code that stops a thread with a signal (the GC's stop-the-world, the leak
 * checker, crash reports) can tell from the interrupted program counter
 * whether it is in the middle of one (tidei_interrupted_inside, scav.c).
 * GCC does not split functions with a section attribute into hot and cold
 * parts. */
#define tide_fast_text    __attribute__((section("tide_fast_text")))

#ifndef TIDE_DEBUG
#define TIDE_DEBUG 0
#endif
#ifndef TIDE_SANITIZE
#define TIDE_SANITIZE 0
#endif
static const int tidei_debug = TIDE_DEBUG;

/* Mixes the bits of word k (the finalizer of MurmurHash3): the one hash of
 * tide's open-addressing tables (addresses, call sites, keys). */
tide_inline uint64_t tidei_hash_word(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* Three tiers of checks (see STYLE.md). */
#define tide_assert(c) \
    do { if (tide_unlikely(!(c))) tidei_assert_fail(#c, __FILE__, __LINE__); } while (0)
#define tide_debug_assert(c) \
    do { if (tidei_debug >= 1 && tide_unlikely(!(c))) tidei_assert_fail(#c, __FILE__, __LINE__); } while (0)
#define tide_expensive_assert(c) \
    do { if (tidei_debug >= 2 && tide_unlikely(!(c))) tidei_assert_fail(#c, __FILE__, __LINE__); } while (0)

#define relaxed memory_order_relaxed
#define acquire memory_order_acquire
#define release memory_order_release
#define acq_rel memory_order_acq_rel
#define seq_cst memory_order_seq_cst

/* Accounting on the fast paths: `make STATS=0` compiles it out, only to
 * measure what it costs (the figures of that build are wrong). */
#ifndef TIDE_STATS
#define TIDE_STATS 1
#endif
#define tidei_count(e) do { if (TIDE_STATS) (void)(e); } while (0)

/* ---- print.c: output that never allocates ---- */
/* Both return 0, or -1 when a write failed. */
int tidei_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tidei_vprintf(int fd, const char *fmt, va_list ap);
__attribute__((noreturn)) void tidei_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void tidei_misuse(const char *op, const void *p, const char *what, ...);
/* Writes into buf (NUL-terminated, at most len bytes) more about misuse op
 * of p, for the end of the report's line. */
typedef void (*tidei_detail_fn)(const char *op, const void *p, char *buf, size_t len);
/* tidei_misuse, and at the end of the line what detail writes. */
__attribute__((noreturn)) void tidei_misuse_detailed(const char *op, const void *p, tidei_detail_fn detail,
                                                     const char *what, ...);
__attribute__((noreturn)) void tidei_assert_fail(const char *expr, const char *file, int line);
void tidei_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tidei_open_output(const char *pattern, unsigned seq, bool append);
int tidei_open_report(const char *path, bool append);
void tidei_report_on_signal(long sig, void (*fn)(int), const char *what);

/* ---- options.c ---- */
#define TIDE_PATH_MAX 256
typedef struct tide_options {
    long os_fail_at;             /* fail the Nth OS request once (testing); 0 = off */
    long os_fail_from;           /* fail the Nth and every later OS request (testing); 0 = off */
    long huge_cache_mb;          /* at most this many MiB of freed huge blocks cached (-1: no bound
                                    but the recent peak; 0: none) */
    long chunk_cache;            /* fully free chunks kept mapped */
    long thp;                    /* madvise(MADV_HUGEPAGE) big blocks (os.c) */
    long thp_heap_mb;            /* chunks mapped once this many MiB are: huge pages throughout (arena.c) */
    long shared_blocks;          /* blocks of a class a thread takes from the shared heaps before it
                                    gets spans of its own (0: none, every thread owns its spans) */
    long shared_threads;         /* threads share only while this many have heaps at once */
    long verbose;                /* print the options at start-up */
    long stats;                  /* report at exit: 0 no, 1 text, 2 JSON */
    char stats_file[TIDE_PATH_MAX]; /* report to this file ("" = stderr; %p = pid) */
    long stats_signal;           /* print the report on this signal (0 = none) */
    long decay_ms;               /* free pages go back to the OS after this long (0 at once, -1 never) */
    long purge;                  /* how: 0 MADV_DONTNEED, 1 MADV_FREE */
    long prof;                   /* sample allocations for a heap profile (0|1) */
    long prof_sample;            /* mean bytes between samples */
    char prof_file[TIDE_PATH_MAX]; /* where profiles go (%p pid, %n dump number) */
    long prof_signal;            /* write a profile on this signal (0 = none) */
    long leak_check;             /* at exit: 0 no, 1 sampled stacks, 2 (full) every stack */
    char leak_file[TIDE_PATH_MAX]; /* leak report to this file ("" = stderr; %p = pid) */
    long leak_exitcode;          /* exit status when something leaked */
    long libc_alloc;             /* what libc.so.6's allocation symbols give: 0 tide's functions,
                                    1 glibc's, checked for tide's blocks, 2 glibc's, untouched (glibc.c) */
    long guard;                  /* guarded sampling (0|1; guard.c) */
    long guard_rate;             /* one eligible allocation in this many is guarded, on average */
    long guard_slots;            /* guarded blocks live or in quarantine at most */
    long guard_side;             /* where a block goes in its slot: 0 at random, 1 the end, 2 the start */
    long crash_report;           /* describe any SIGSEGV/SIGBUS in heap terms (crash.c); on with guard */
    long gc_percent;             /* GC heap: collect after allocating this % of the live bytes (gc/collect.c) */
    long gc_max_mb;              /* GC heap: limit in MiB (0: none) */
    long gc_signal;              /* GC heap: the thread-stop signal (0: SIGPWR) */
    long gc_markers;             /* GC heap: marking threads at most, the collector included (0: one per CPU) */
} tide_options_t;
extern tide_options_t tidei_opt;
/* The process runs with AT_SECURE (setuid, setgid, capabilities): TIDE_CONF
 * is not read and no report file is opened. */
extern bool tidei_secure;
void tidei_options_init(void);

/* ---- os.c: the only file that calls mmap/munmap/madvise/mremap ---- */
void *tidei_os_map(size_t size);
void *tidei_os_map_aligned(size_t size, size_t align);
bool tidei_os_map_at(void *addr, size_t size);
void tidei_os_unmap(void *p, size_t size);
void *tidei_os_remap(void *p, size_t old_size, size_t new_size, bool may_move);
bool tidei_os_move(void *p, size_t size, void *dest);
void *tidei_os_reserve(size_t size);
void *tidei_os_reserve_none(size_t size);
void tidei_os_unreserve(void *p, size_t size);
bool tidei_os_protect(void *p, size_t size, bool rw);
bool tidei_os_decommit(void *p, size_t size);
bool tidei_os_purge(void *p, size_t size, bool dontneed);
void tidei_os_populate(void *p, size_t size);
void tidei_os_huge_pages(void *p, size_t size, bool on);
uint64_t tidei_os_now_ms(void);
void tidei_os_sleep_ms(unsigned ms);
uintptr_t tidei_os_context_pc(const void *ucv, uintptr_t *sp);
int tidei_os_gettid(void);
void *tidei_os_map_file(int fd, size_t size);
int tidei_os_open_proc(const char *name, int flags);
ssize_t tidei_os_readlink_proc(const char *name, char *buf, size_t size);
/* Ranges at least this long are read only where written (tidei_os_each_written:
 * the leak check's and the GC's scans); shorter ones whole. */
#define TIDE_SPARSE_MIN (64 * 1024)
void tidei_os_each_written(int fd, uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg);
void tidei_os_unmap_file(void *p, size_t size);
bool tidei_os_mprotect(void *p, size_t size, int prot);
extern _Atomic size_t tidei_os_calls;
size_t tidei_os_n_requests(void);

/* ---- pagemap.c ---- */
extern _Atomic(tide_span_t **) tidei_pagemap[(size_t)1 << TIDE_MAP_TOP_BITS];
bool tidei_pagemap_ensure(uintptr_t start, size_t n_pages);
void tidei_pagemap_set(uintptr_t start, size_t n_pages, tide_span_t *s);
void tidei_pagemap_set_one(uintptr_t addr, tide_span_t *s);

/* The span whose page holds p, or NULL (not tide's, or inside a free run).
 * O(1): a range check and two loads.  Any thread, any time. */
tide_inline tide_span_t *tidei_pagemap_lookup(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (tide_unlikely(a >> TIDE_VA_BITS))
        return NULL;
    uintptr_t page = a >> TIDE_PAGE_SHIFT;
    tide_span_t **leaf = atomic_load_explicit(&tidei_pagemap[page >> TIDE_MAP_LEAF_BITS], relaxed);
    if (tide_unlikely(leaf == NULL))
        return NULL;
    return __atomic_load_n(&leaf[page & (((uintptr_t)1 << TIDE_MAP_LEAF_BITS) - 1)], __ATOMIC_RELAXED);
}

extern tidei_pagemap_flat_t tidei_pagemap_flat;
void tidei_pagemap_flat_init(void);
void *tidei_pagemap_flat_chunk_map(void);
void tidei_pagemap_flat_chunk_unmapped(uintptr_t base);

/* The flat map's descriptor for a page of the range that no span holds:
 * all zero (TIDE_SPAN_FREE) but its heap, which is no thread's. */
tide_inline tide_span_t *tidei_flat_none(void)
{
    return (tide_span_t *)tidei_pagemap_flat.map;
}
/* The flat map's mask (tidei_pagemap_flat_t.mask), written once at
 * start-up: a plain load, which folds into the and (an atomic one under
 * the sanitizers). */
tide_inline uintptr_t tidei_flat_mask(void)
{
#if !TIDE_SANITIZE
    return tidei_pagemap_flat.mask;
#else
    return __atomic_load_n(&tidei_pagemap_flat.mask, __ATOMIC_RELAXED);
#endif
}
/* The span of page number page of the flat range (below its n_pages):
 * tidei_flat_none() for a page no span holds.  The entry is read with a
 * plain load, which folds into the add (an atomic one under the
 * sanitizers): an aligned word, stored whole by the arena. */
tide_inline tide_span_t *tidei_flat_span(uintptr_t page)
{
    uintptr_t *map = tidei_pagemap_flat.map;
#if !TIDE_SANITIZE
    return (tide_span_t *)((uintptr_t)map + map[page]);
#else
    return (tide_span_t *)((uintptr_t)map + __atomic_load_n(&map[page], __ATOMIC_RELAXED));
#endif
}
/* The span the flat map gives for p, by its page number masked, not
 * compared with the range's length (free's and realloc's fast paths): p's
 * own span only if p is in the flat range; an address outside it (NULL
 * too) reads the entry of some page of it, which the block-start test
 * (tidei_block_ok_flat, exact at any distance below 2^47) then refuses
 * for any span of the caller.  *d is p - the range's base, which that
 * test takes. */
tide_inline tide_span_t *tidei_flat_lookup(const void *p, uintptr_t *d)
{
    *d = (uintptr_t)p - tidei_pagemap_flat.base;
    return tidei_flat_span((*d >> TIDE_PAGE_SHIFT) & tidei_flat_mask());
}

/* ---- span.c: size classes and spans ---- */
extern uint32_t tidei_class_size[TIDE_N_CLASSES];
extern uint16_t tidei_class_pages[TIDE_N_CLASSES];
extern uint64_t tidei_class_mul[TIDE_N_CLASSES];
extern tide_span_t tidei_empty_span;
void tidei_class_init(void);
void tidei_span_init_small(tide_span_t *s, int cls);
size_t tidei_span_collect(tide_span_t *s, bool carve);
size_t tidei_span_take_remote(tide_span_t *s);
bool tidei_span_holds_free(tide_span_t *s, const tide_free_block_t *b, bool owner);
uintptr_t tidei_link_key(uintptr_t start);

/* Size class of a request of n bytes (n <= TIDE_SMALL_MAX), computed:
 * what the slow paths use (any time, before start-up too). */
tide_inline size_t tidei_class_of(size_t n)
{
    if (n <= 128)
        return (n + 15) >> 4;  /* class 0 (16-byte blocks) serves malloc(0) */
    size_t m = n - 1;
    size_t b = 63 - (size_t)__builtin_clzl(m);
    return 8 + ((b - 7) << 3) + ((m >> (b - 3)) & 7) + 1;
}

/* The class of n bytes, at index (n + 15) >> 4, for every n up to
 * TIDE_SMALL_MAX (every class boundary is a multiple of 16): 4 KiB.  All
 * zero (class 0) until start-up fills it, which sends the malloc fast
 * path, the only user, to its slow path anyway (no heap yet). */
extern uint8_t tidei_class_table[TIDE_SMALL_MAX / 16 + 1];

/* Size class of a request of n bytes (n <= TIDE_SMALL_MAX), from the
 * table: the malloc fast path's. */
tide_inline size_t tidei_class_fast(size_t n)
{
    return tidei_class_table[(n + 15) >> 4];
}

/* Index of the block of small span s that holds address a (a inside s's
 * pages; in the tail that no block covers it is n_blocks or more): the
 * high half of off * blk_mul, which is floor(off / block_size) exactly
 * while off * (blk_mul * block_size - 2^64) < 2^64, and that excess is at
 * most block_size (tidei_blk_mul below). */
tide_inline size_t tidei_block_index(const tide_span_t *s, uintptr_t a)
{
    return (size_t)(((unsigned __int128)(a - s->start) * s->blk_mul) >> 64);
}

/* Whether p is the start of a block of small span s (p inside s). */
tide_inline bool tidei_is_block_start(const tide_span_t *s, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return s->start + tidei_block_index(s, a) * s->block_size == a;
}

/* The block-start test with one multiply: off, an offset into small span s,
 * is the start of a built block (a multiple of block_size below
 * n_built * block_size) iff off * blk_mul mod 2^64 < blk_bound.  With
 * size = block_size, m = blk_mul = floor(2^64 / size) + 1 and
 * e = m * size - 2^64 (0 < e <= size): off = k * size maps to k * e, below
 * n_built * e iff k < n_built; off = k * size + r, 0 < r < size, maps to
 * r * m + k * e, at least m > span bytes >= n_built * e (no wrap while
 * span bytes * size^2 < 2^64).  unit/blockstart.c checks it against the
 * division for every class and offset.  bound is s->blk_bound, read by the
 * caller (plainly by the owner, atomically by other threads). */
tide_inline uint64_t tidei_blk_mul(uint32_t size)
{
    /* floor(2^64 / size) + 1, in 64 bits (a 128-bit division would call
     * libgcc's __udivti3, linked at the end of the code: static.c) */
    uint64_t q = UINT64_MAX / size;
    return q + (UINT64_MAX % size == size - 1u) + 1;
}
tide_inline bool tidei_block_ok(const tide_span_t *s, uint64_t off, uint64_t bound)
{
    return off * s->blk_mul < bound;
}
/* The same test for s in the flat range, from d = p - the range's base,
 * which the flat lookup computed: (d - (start - base)) * m is d * m minus
 * the span's blk_base, mod 2^64, so p's copy for the offset is saved. */
tide_inline bool tidei_block_ok_flat(const tide_span_t *s, uint64_t d, uint64_t bound)
{
    return d * s->blk_mul - s->blk_base < bound;
}

/* Free-list links.  A link (the first word of a free block) holds the next
 * block's address xor-ed with the span's secret, byte-swapped: a program's
 * write of any value into it decodes to an address far outside the span
 * (zero decodes to the secret itself, whose top bit is set: never an
 * address), and so does an overflow of any length from the block before,
 * which changes the link's first bytes, the address's highest.  Built for
 * a CPU with MOVBE (make ARCH=haswell), the swap is part of the link's load or
 * store and costs no instruction.  Heads (span->free,
 * local_free, remote, a heap's notify) are out of band and plain. */
tide_inline uintptr_t tidei_link_encode(const tide_span_t *s, const tide_free_block_t *next)
{
    return __builtin_bswap64((uintptr_t)next ^ s->link_key);
}
tide_inline tide_free_block_t *tidei_link_decode(const tide_span_t *s, uintptr_t link)
{
    return (tide_free_block_t *)(__builtin_bswap64(link) ^ s->link_key);
}

/* The value of a span's remote word old with b pushed on its list: b as
 * the head, one block more counted, the notify state kept. */
tide_inline uintptr_t tidei_rs_push(uintptr_t old, const tide_free_block_t *b)
{
    return (uintptr_t)b | ((old & ~TIDE_RS_PTR_MASK) + TIDE_RS_ONE);
}

/* The free key of small span s's free blocks (tide_free_block_t.key). */
tide_inline uintptr_t tidei_free_key_of(const tide_span_t *s)
{
    return (uintptr_t)s;
}

/* Whether b, a block of s, may be free: the low half of its key word is
 * that of the free key (a hint, which the owner's checked path confirms
 * on the whole key and the span's lists).  The half is loaded alone: a
 * program that writes a block's last byte just before it frees it (byte
 * 15 of a 16-byte block) leaves a store that an 8-byte load of bytes 8-15
 * cannot take its value from; that load waits for the store to reach the
 * cache (a malloc/free pair of 16 bytes 45 % slower), the 4-byte load of
 * bytes 8-11 does not.  The low half of a descriptor's address is never
 * 0 (tidei_meta_span_new). */
tide_inline bool tidei_key_hint(const tide_free_block_t *b, const tide_span_t *s)
{
    uint32_t half;
    memcpy(&half, (const char *)&b->key + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 4 : 0), sizeof half);
    return half == (uint32_t)tidei_free_key_of(s);
}

/* Clears the word where a small block keeps the free key (the second) at
 * the start of a large or huge block handed out on pages that are not known
 * to be zero.  Those pages may have held a small span (or a GC heap), whose
 * free blocks carry their free key there; realloc copies the word along when
 * it moves the block, and a small block that got it that way would be taken
 * for a freed one by a thread that does not own its span, which trusts the
 * key (free.c).  So every handed-out block starts with its key word clear,
 * small or not, and only a program that writes the key's value there can
 * leave it in a live block (docs/misuse.md). */
tide_inline void tidei_clear_key_word(void *p)
{
    ((tide_free_block_t *)p)->key = 0;
}

/* Whether p lies among the built blocks of s (false for NULL, and for any
 * address when s is not SMALL): the malloc fast path's test of the block
 * it pops, which is also its test of an empty list. */
tide_inline bool tidei_span_built_has(const tide_span_t *s, const void *p)
{
    return (uintptr_t)p - s->start < s->built_bytes;
}

/* The block after b on a free list of s, decoded and checked (a built
 * block's start, or NULL); a link that fails is reported as corruption of
 * the heap by op, and the process aborts.  Slow paths only. */
tide_free_block_t *tidei_link_next(const tide_span_t *s, const tide_free_block_t *b, const char *op);
/* The same without a report: false when the link of b is bad. */
bool tidei_link_next_ok(const tide_span_t *s, const tide_free_block_t *b, const tide_free_block_t **next);
/* Reports head, the first block of a free list of s, which is outside the
 * span's built blocks (it came from a link that was overwritten). */
__attribute__((noreturn)) void tidei_link_bad_head(const tide_span_t *s, const void *head, const char *op);

/* ---- arena.c: the page allocator (chunks, page runs, free-range index) ---- */
extern tide_arena_t tidei_arena;
tide_span_t *tidei_arena_alloc_run(size_t n_pages, size_t align_pages, tide_span_kind_t kind, bool grow);
tide_span_t *tidei_arena_alloc_run_fit(size_t n_pages, size_t min_pages, tide_span_kind_t kind, bool grow);
tide_span_t *tidei_arena_alloc_run_resident(size_t n_pages, size_t align_pages);
void tidei_arena_free_run(tide_span_t *s, bool due_now);
bool tidei_arena_grow_run(tide_span_t *s, size_t new_pages);
void tidei_arena_shrink_run(tide_span_t *s, size_t new_pages);
void tidei_arena_set_on_dirty(void (*fn)(void));
void tidei_arena_note_dirty(void);
bool tidei_arena_trim(void);
bool tidei_arena_release_caches(void);
void tidei_arena_each_run(void (*fn)(tide_span_t *s, void *arg), void *arg);
tide_span_t *tidei_arena_free_run_at(uintptr_t p);
void tidei_arena_each_mapping(void (*fn)(uintptr_t start, size_t bytes, void *arg), void *arg);
bool tidei_arena_purge(uint64_t now, uint64_t decay, uint64_t *next_ms);
bool tidei_arena_validate(void);

/* ---- huge.c: huge blocks, the cache of freed ones ---- */
void *tidei_huge_alloc(size_t n, size_t align, bool zero);
void tidei_huge_free(tide_span_t *s);
void *tidei_huge_realloc(tide_span_t *s, size_t n);
bool tidei_huge_release_locked(void);
void tidei_huge_give_way_locked(size_t bytes);
bool tidei_huge_purge(uint64_t now, uint64_t decay, uint64_t *next_ms);

/* ---- meta.c: out-of-band metadata (call with the arena lock held) ---- */
void *tidei_meta_alloc(size_t size);
tide_span_t *tidei_meta_span_new(void);
void tidei_meta_span_delete(tide_span_t *s);

/* ---- scratch.c: scratch arrays (no lock) ---- */
void tidei_scratch_unmap(void *p, size_t size);
/* A growing array in a mapping of its own, never in the heap: the heap
 * walk's record, the leak checker's work lists.  Zero it and set elem. */
typedef struct tidei_scratch {
    void *p;                     /* the elements */
    size_t n, cap;               /* elements used, room for */
    size_t elem;                 /* bytes per element */
    bool failed;                 /* the OS refused memory: later pushes are dropped */
} tidei_scratch_t;
void *tidei_scratch_push(tidei_scratch_t *s);
void tidei_scratch_free(tidei_scratch_t *s);

/* ---- heap.c: thread heaps ---- */
extern pthread_mutex_t tidei_heaps_lock;
extern pthread_mutex_t tidei_backup_lock;
extern tide_heap_t tidei_empty_heap;
extern tide_heap_t tidei_backup_heap;
extern tide_heap_t tidei_shared_heaps[TIDE_SHARED_HEAPS];
tide_heap_t *tidei_backup_heap_ready(void);
/* Whether h is one of the shared heaps. */
tide_inline bool tidei_heap_is_shared(const tide_heap_t *h)
{
    return h >= &tidei_shared_heaps[0] && h < &tidei_shared_heaps[TIDE_SHARED_HEAPS];
}
bool tidei_heap_shared_ready(const tide_heap_t *sh);
bool tidei_heap_takes_shared(tide_heap_t *h, int cls);
void tidei_heaps_recount(void);
void *tidei_heap_shared_alloc(tide_heap_t *h, int cls);
bool tidei_heap_reclaim_shared(tide_heap_t *sh);
uint64_t tidei_heap_shared_activity(tide_heap_t *sh);
void tidei_heap_shared_lock_all(void);
void tidei_heap_shared_unlock_all(void);
extern tide_heap_t *tidei_heaps;
extern __thread tide_heap_t *tidei_tls_heap;
tide_heap_t *tidei_heap_acquire(void);
void tidei_heap_abandon(tide_heap_t *h);
void tidei_heap_give_up_spans(tide_heap_t *h);
bool tidei_heap_release(tide_heap_t *h);
bool tidei_heap_reclaim(tide_heap_t *h, bool (*fence)(tide_heap_t *h), int me);
tide_span_t *tidei_heap_find_span(tide_heap_t *h, int cls);
void tidei_heap_free_local_slow(tide_heap_t *h, tide_span_t *s);
void tidei_heap_free_remote(tide_span_t *s, tide_free_block_t *b);
bool tidei_heap_sweep_abandoned(void);
tide_span_t *tidei_heap_new_run(size_t n_pages, size_t align_pages, tide_span_kind_t kind);
uint64_t tidei_heap_activity(const tide_heap_t *h);
uint64_t tidei_heap_n_spans(const tide_heap_t *h);
void tidei_heap_used(const tide_heap_t *h, uint64_t *used, uint64_t *mallocs, uint64_t *spans, uint64_t *blocks);
/* Bytes requested from heap h so far: the count folded in so far and what
 * the sampler's countdown has run down since it was last armed (prof.c).
 * Any thread may read it (stats.c), as the other counters. */
tide_inline uint64_t tidei_heap_requested(const volatile tide_heap_counters_t *c)
{
    return c->requested + (uint64_t)(c->sample_armed - c->sample_left);
}
extern size_t tidei_abandoned_spans[TIDE_N_CLASSES];
extern size_t tidei_abandoned_blocks[TIDE_N_CLASSES];

/* The marks of a pop from a direct span (h->ctr.sample_left and
 * fast_left differ while one runs), which the scavenger reads after a
 * membarrier to know whether the owner may be popping from a direct span
 * (tidei_heap_reclaim).  The malloc fast path's entry is its charge of
 * the sampler's countdown (tidei_fast_charge), a plain subtraction before
 * the load of direct[] that the membarrier orders; its exit charges
 * fast_left the same (tidei_fast_exit), after the pop, published with
 * release (a plain store on x86-64); so a malloc pays for one mark, not
 * for a mark and a countdown.  The other pop (class_pop) marks with
 * fast_left alone: one byte on entry and back on exit.  A malloc from a
 * signal handler that interrupted another leaves them apart by the outer
 * one's size.  Under the sanitizers, which do not see the membarrier,
 * atomic accesses. */
tide_inline void tidei_fast_add(int64_t *c, int64_t d, int order)
{
#if defined(__x86_64__) && !TIDE_SANITIZE
    (void)order;
    *c += d;
#else
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + d, order);
#endif
}
tide_inline void tidei_fast_enter(tide_heap_t *h)
{
    tidei_fast_add(&h->ctr.fast_left, 1, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_seq_cst);
}
tide_inline void tidei_fast_leave(tide_heap_t *h)
{
    atomic_signal_fence(memory_order_seq_cst);
    tidei_fast_add(&h->ctr.fast_left, -1, __ATOMIC_RELEASE);
}
/* The malloc fast path's exit after a pop of n bytes, or its way to the
 * sampler's event (malloc_prof): charges fast_left as the entry charged
 * sample_left. */
tide_inline void tidei_fast_exit(tide_heap_t *h, size_t n)
{
    atomic_signal_fence(memory_order_seq_cst);
    tidei_fast_add(&h->ctr.fast_left, -(int64_t)n, __ATOMIC_RELEASE);
}
/* The malloc fast path's way out with nothing popped (its slow path
 * charges the countdown again): the entry's charge taken back. */
tide_inline void tidei_fast_undo(tide_heap_t *h, size_t n)
{
    atomic_signal_fence(memory_order_seq_cst);
    tidei_fast_add(&h->ctr.sample_left, (int64_t)n, __ATOMIC_RELEASE);
}

/* A heap's lock.  A thread heap's is taken by its owner's slow paths and
 * only now and then by another thread (the scavenger's trylock, the
 * stats), so it is a word of its own: taken with one compare-and-swap,
 * let go with a plain store, no call into libc (mid-batch, whose mallocs
 * and frees take a slow path one time in four, spent a third of its time
 * in pthread_mutex_trylock and _unlock).  Nobody wakes a thread that finds
 * it taken: it polls (tidei_heap_lock_wait).  The word holds the holder's
 * thread id, which the crash report names (the backup heap's user: -1).
 * The shared heaps' locks, which threads do contend for, are glibc
 * mutexes; every function here takes either kind. */
/* Takes h's lock if it is free, as thread me (a thread id, not 0). */
tide_inline bool tidei_heap_trylock_as(tide_heap_t *h, int me)
{
    if (tidei_heap_is_shared(h))
        return pthread_mutex_trylock(&h->lock.mutex) == 0;
    int none = 0;
    return atomic_compare_exchange_strong_explicit(&h->lock.word, &none, me, memory_order_acquire,
                                                   memory_order_relaxed);
}

tide_inline void tidei_heap_unlock(tide_heap_t *h)
{
    if (tidei_heap_is_shared(h))
        pthread_mutex_unlock(&h->lock.mutex);
    else
        atomic_store_explicit(&h->lock.word, 0, memory_order_release);
}

/* Waits for h's lock and takes it as me (heap.c). */
void tidei_heap_lock_wait(tide_heap_t *h, int me);

/* Takes h's lock as thread me, waiting for it (another thread than the
 * owner: the stats). */
tide_inline void tidei_heap_lock_as(tide_heap_t *h, int me)
{
    if (!tidei_heap_trylock_as(h, me))
        tidei_heap_lock_wait(h, me);
}

/* The owner takes its heap's lock (its slow paths; for a shared heap, any
 * thread).  While it waits, lock_wait is 1: a reclaimer that holds the
 * lock and reads 1 knows that the owner is in none of its fast paths and
 * cannot enter one before the unlock, so it needs no fence (and stops no
 * thread that is only waiting for it).  The trylock first keeps the flag
 * off the uncontended path. */
tide_inline void tidei_heap_lock(tide_heap_t *h)
{
    if (tidei_heap_trylock_as(h, h->tid))
        return;
    atomic_store_explicit(&h->lock_wait, 1, memory_order_seq_cst);
    tidei_heap_lock_wait(h, h->tid);
    atomic_store_explicit(&h->lock_wait, 0, memory_order_relaxed);
}

/* The span malloc pops from (read with no lock; the scavenger swaps it). */
tide_inline tide_span_t *tidei_direct(tide_heap_t *h, int cls)
{
    return __atomic_load_n(&h->direct[cls], __ATOMIC_RELAXED);
}

_Static_assert(TIDE_SPAN_MAX_PAGES * TIDE_PAGE_SIZE / 16 < TIDE_SLOW_NEVER, "a span's blocks fit used_rel");

/* The blocks of small span s that are out (remote frees included until
 * collected): its count relative to slow_at, plus slow_at.  Exact for the
 * owner, or under h->lock (slow_at changes only there). */
tide_inline uint16_t tidei_span_used(const tide_span_t *s)
{
    return (uint16_t)(__atomic_load_n(&s->used_rel, __ATOMIC_ACQUIRE) + __atomic_load_n(&s->slow_at, __ATOMIC_RELAXED));
}

/* The owner's changes of `used_rel` outside h->lock, which the scavenger
 * reads (span_quiescent in heap.c).  A free's decrement is published after
 * its push onto the list (x86-64 keeps stores in order, the "memory"
 * clobber keeps the compiler from moving them; a release store elsewhere
 * and under the sanitizers); true when it reached 0: the count of blocks
 * out is now the span's slow_at, and the free takes the slow path. */
tide_inline bool tidei_used_dec_hits(tide_span_t *s)
{
#if defined(__x86_64__) && defined(__GNUC__) && !TIDE_SANITIZE
    __asm__ goto("subw $1, %0\n\tje %l[hit]" : "+m"(s->used_rel) : : "cc", "memory" : hit);
    return false;
hit:
    return true;
#else
    uint16_t u = (uint16_t)(__atomic_load_n(&s->used_rel, __ATOMIC_RELAXED) - 1);
    __atomic_store_n(&s->used_rel, u, __ATOMIC_RELEASE);
    return u == 0;
#endif
}

/* A malloc from small span s by its owner: one block more out (a 16-bit
 * add, as free's decrement is: tide_span_t.used_rel) and one malloc more
 * counted. */
tide_inline void tidei_span_malloc_inc(tide_span_t *s)
{
#if defined(__x86_64__) && defined(__GNUC__) && !TIDE_SANITIZE
    __asm__("addw $1, %0" : "+m"(s->used_rel) : : "cc");
#else
    __atomic_store_n(&s->used_rel, (uint16_t)(__atomic_load_n(&s->used_rel, __ATOMIC_RELAXED) + 1), __ATOMIC_RELAXED);
#endif
    tidei_count(s->n_malloc++);
}

/* The mallocs counted in small span s (read by another thread as well,
 * with no lock: a figure of the moment). */
tide_inline uint64_t tidei_span_mallocs(const volatile tide_span_t *s)
{
    return s->n_malloc;
}

/* The owner heap of span s, read by the free fast path with no lock (the
 * scavenger and adoption write it): a plain load folded into the compare,
 * an atomic one under the sanitizers. */
tide_inline tide_heap_t *tidei_span_owner(const tide_span_t *s)
{
#if !TIDE_SANITIZE
    return *(tide_heap_t *const *)&s->heap;
#else
    return atomic_load_explicit(&((tide_span_t *)s)->heap, relaxed);
#endif
}

/* ---- init.c: process and thread start-up, fork ---- */
extern uintptr_t tidei_free_key;
extern uint64_t tidei_link_secret;
/* tidei_init_state: process init not started, under way, done. */
enum { TIDE_INIT_NONE = 0, TIDE_INIT_RUNNING, TIDE_INIT_READY };
extern _Atomic int tidei_init_state;
void tidei_init_slow(void);
tide_heap_t *tidei_init_thread(void);
int tidei_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
tide_inline void tidei_init(void)
{
    if (tide_unlikely(atomic_load_explicit(&tidei_init_state, acquire) != TIDE_INIT_READY))
        tidei_init_slow();
}

/* ---- alloc.c / free.c: the entry points ---- */
void *tidei_malloc(size_t n);
void *tidei_new(size_t n);
void *tidei_new_nothrow(size_t n);
void *tidei_calloc(size_t count, size_t size);
void *tidei_realloc(void *p, size_t n);
void *tidei_realloc_move(void *p, size_t n, size_t usable);
void *tidei_aligned(size_t align, size_t n);
void tidei_free(void *p);
void tidei_delete(void *p);
size_t tidei_usable_size(const void *p, const char *op);
tide_span_t *tidei_free_checked_span(const void *p, const char *op);
bool tidei_free_is_entry(uintptr_t fn);

/* ---- scav.c: the scavenger ---- */
/* Non-zero while the thread runs tide code other than the malloc/free fast
 * paths (those are told by their program counter): the leak checker's
 * thread stop (leak.c) then waits for it to leave.  Plain TLS stores,
 * compiler barriers. */
extern __thread unsigned tidei_busy;
tide_inline void tidei_busy_enter(void)
{
    tidei_busy++;
    atomic_signal_fence(memory_order_seq_cst);
}
tide_inline void tidei_busy_leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    tidei_busy--;
}
bool tidei_scav_reclaim_all(void);
bool tidei_interrupted_inside(void *ucv);
extern _Atomic int tidei_scav_tid;
extern _Atomic long tidei_decay_ms;
/* The decay delay in force (TIDE_CONF decay_ms, or tide_set_decay_ms). */
tide_inline long tidei_decay(void)
{
    return atomic_load_explicit(&tidei_decay_ms, relaxed);
}
void tidei_scav_thread_start(tide_heap_t *h);
void tidei_scav_thread_end(tide_heap_t *h);
enum { TIDE_SCAV_NONE = 0, TIDE_SCAV_WANTED, TIDE_SCAV_STARTING, TIDE_SCAV_RUNNING, TIDE_SCAV_FAILED };
extern _Atomic int tidei_scav_state;
extern _Atomic bool tidei_scav_asleep;
extern _Atomic bool tidei_scav_poked;
void tidei_scav_wanted_slow(void);
void tidei_scav_note_dirty(void);
void tidei_scav_start_slow(void);
void tidei_scav_after_fork_child(void);
void tidei_scav_thread_exits(void);
bool tidei_scav_stack(uintptr_t *lo, uintptr_t *hi);
/* Whether freed pages go back at free, in the freeing thread: with
 * decay_ms=0, and when no scavenger can run (pthread_create refused it:
 * a sandbox that forbids new threads), rather than never. */
tide_inline bool tidei_purge_at_free(void)
{
    return tidei_decay() == 0 || atomic_load_explicit(&tidei_scav_state, relaxed) == TIDE_SCAV_FAILED;
}

/* Starts the scavenger if something waits for it: only from entry points
 * with no tide lock held and no heap operation under way. */
tide_inline void tidei_scav_start(void)
{
    if (tide_unlikely(atomic_load_explicit(&tidei_scav_state, relaxed) == TIDE_SCAV_WANTED))
        tidei_scav_start_slow();
}

/* Something is left for the scavenger to return: records the wish (the
 * thread starts at the next entry point) or wakes it if it sleeps with
 * nothing due; nothing when decay is 0 or -1 or it is awake already.  Any
 * context, arena lock included. */
tide_inline void tidei_scav_wanted(void)
{
    if (tidei_decay() <= 0)
        return;
    int st = atomic_load_explicit(&tidei_scav_state, relaxed);
    if (st == TIDE_SCAV_RUNNING) {
        /* Dekker with the scavenger going to sleep (scav.c): the poke is
         * stored before asleep is read, and the scavenger stores asleep
         * before it reads the poke, so one of them sees the other */
        if (!atomic_load_explicit(&tidei_scav_poked, relaxed))
            atomic_store_explicit(&tidei_scav_poked, true, seq_cst);
        if (tide_likely(!atomic_load_explicit(&tidei_scav_asleep, seq_cst)))
            return;
    } else if (tide_likely(st != TIDE_SCAV_NONE)) {
        return;
    }
    tidei_scav_wanted_slow();
}

/* ---- prof.c: the sampler, call sites, the heap profile ---- */
enum { TIDE_PROF_NONE = 0, TIDE_PROF_RECORD, TIDE_PROF_SAMPLE };
extern bool tidei_prof_on;
extern bool tidei_prof_full;
void tidei_prof_init(void);
void tidei_prof_signal_init(void);
int tidei_prof_event(tide_heap_t *h, size_t n);
int tidei_prof_event_core(tide_heap_t *h, size_t n);
double tidei_prof_exp_neg(double x);
double tidei_prof_log_unit(double u);

/* A 64-bit random number: a xorshift64* step of *state (a state that is
 * not 0 stays so).  The samplers' random intervals (prof.c, guard.c). */
tide_inline uint64_t tidei_prof_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in (0, 1], from tidei_prof_random. */
tide_inline double tidei_prof_random_unit(uint64_t *state)
{
    return (double)((tidei_prof_random(state) >> 11) + 1) / 9007199254740992.0;
}
int tidei_prof_unwind(uintptr_t *pc, uintptr_t *fn, int max);
void tidei_prof_took(void *p, size_t n, int what);
void tidei_prof_free(tide_span_t *s);
uint32_t tidei_prof_lookup(const void *p, size_t *size);
const uintptr_t *tidei_prof_frames(uint32_t id, int *n);
void tidei_prof_at_exit(void);
int tidei_prof_copy_maps(int fd);
int tidei_prof_scratch(uintptr_t *out, int max);
bool tidei_prof_is_entry_point(uintptr_t fn);
bool tidei_alloc_is_entry(uintptr_t fn);

/* The malloc fast path's entry: charges n bytes to h's sampler countdown,
 * which marks it inside (tidei_fast_exit ends the mark); true when the
 * allocation must go to tidei_prof_event. */
tide_inline bool tidei_fast_charge(tide_heap_t *h, size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__) && !TIDE_SANITIZE
    /* one subtraction from memory and a branch on its flags, which GCC
     * does not produce from the C below (it loads, subtracts, stores and
     * tests: three instructions more on every malloc) */
    __asm__ goto("subq %1, %0\n\tjle %l[due]" : "+m"(h->ctr.sample_left) : "r"((int64_t)n) : "cc", "memory" : due);
    return false;
due:
    return true;
#else
    int64_t left = __atomic_load_n(&h->ctr.sample_left, __ATOMIC_RELAXED) - (int64_t)n;
    __atomic_store_n(&h->ctr.sample_left, left, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_seq_cst);
    return left <= 0;
#endif
}

/* Charges n bytes to h's sampler countdown outside the malloc fast path
 * (fast_left too: no mark); true when the allocation must go to
 * tidei_prof_event. */
tide_inline bool tidei_prof_charge(tide_heap_t *h, size_t n)
{
    tidei_fast_add(&h->ctr.fast_left, -(int64_t)n, __ATOMIC_RELAXED);
    return tidei_fast_charge(h, n);
}


/* ---- guard.c: guarded sampling ---- */
extern bool tidei_guard_on;
void tidei_guard_init(void);
int tidei_guard_event(tide_heap_t *h, size_t n);
void *tidei_guard_alloc(tide_heap_t *h, size_t n, size_t align, int what);
void tidei_guard_free(void *p);
size_t tidei_guard_check(const void *p, const char *op);
void *tidei_guard_realloc(void *p, size_t n);
bool tidei_guard_holds(uintptr_t a);
bool tidei_guard_fault(uintptr_t a, int access, void *ucv);
bool tidei_guard_describe(int fd, uintptr_t a);
void tidei_guard_block_info(const void *p, struct tide_block_info *out);
void tidei_guard_region(uintptr_t *lo, uintptr_t *hi);
void tidei_guard_each_live(void (*fn)(void *arg, uintptr_t p, size_t size), void *arg);
void tidei_guard_counts(uint64_t *n_malloc, uint64_t *n_free, uint64_t *live_bytes);
void tidei_guard_fork_prepare(void);
void tidei_guard_fork_parent(void);
void tidei_guard_fork_child(void);

/* ---- crash.c: the SIGSEGV/SIGBUS handler, one report per process ---- */
extern bool tidei_crash_on;
void tidei_crash_init(void);
void tidei_crash_thread_start(tide_heap_t *h);
void tidei_crash_thread_end(tide_heap_t *h);
bool tidei_crash_report_begin(void);
void tidei_crash_report_end(void);
void tidei_crash_print_stack(int fd, const uintptr_t *pc, int n, bool first_exact);

/* ---- walk.c ---- */
bool tidei_walk_live_blocks(tidei_scratch_t *out);

/* ---- unwind.c: libgcc's unwinder, found at run time ---- */
typedef _Unwind_Reason_Code (*tidei_unwind_backtrace_fn)(_Unwind_Trace_Fn, void *);
typedef _Unwind_Ptr (*tidei_unwind_ctx_fn)(struct _Unwind_Context *);
typedef _Unwind_Word (*tidei_unwind_word_fn)(struct _Unwind_Context *);
typedef _Unwind_Word (*tidei_unwind_reg_fn)(struct _Unwind_Context *, int);
extern _Atomic(tidei_unwind_backtrace_fn) tidei_unwind_bt;   /* _Unwind_Backtrace, or NULL */
extern _Atomic(tidei_unwind_ctx_fn) tidei_unwind_get_ip;     /* _Unwind_GetIP (set before tidei_unwind_bt) */
extern _Atomic(tidei_unwind_ctx_fn) tidei_unwind_get_start;  /* _Unwind_GetRegionStart (likewise) */
extern _Atomic(tidei_unwind_word_fn) tidei_unwind_get_cfa;   /* _Unwind_GetCFA (likewise), or NULL */
extern _Atomic(tidei_unwind_reg_fn) tidei_unwind_get_gr;     /* _Unwind_GetGR (likewise), or NULL */
/* Process init (after "ready"): whether an option takes stacks; if so the
 * unwinder is looked for among what is linked and loaded (no dlopen). */
void tidei_unwind_init(bool wanted);
/* tide's constructor: loads libgcc_s.so.1 with dlopen if stacks are
 * wanted and no unwinder was found. */
void tidei_unwind_load(bool wanted);
/* The misuse report: the unwinder, found or loaded (unless the loader is
 * busy with a change); false if there is none. */
bool tidei_unwind_for_report(void);

/* Walks the calling thread's stack: step is called for every frame, the
 * caller of this function first (inline, so that it adds no frame), as by
 * _Unwind_Backtrace.  Nothing happens (false) when no unwinder has been
 * found.  Never loads one: any thread, at any time an unwind is safe. */
tide_inline bool tidei_unwind_backtrace(_Unwind_Trace_Fn step, void *arg)
{
    tidei_unwind_backtrace_fn bt = atomic_load_explicit(&tidei_unwind_bt, memory_order_acquire);
    if (!bt)
        return false;
    bt(step, arg);
    return true;
}

/* _Unwind_GetIP and _Unwind_GetRegionStart, for a step function. */
tide_inline uintptr_t tidei_unwind_ip(struct _Unwind_Context *ctx)
{
    return atomic_load_explicit(&tidei_unwind_get_ip, memory_order_relaxed)(ctx);
}

tide_inline uintptr_t tidei_unwind_region_start(struct _Unwind_Context *ctx)
{
    return atomic_load_explicit(&tidei_unwind_get_start, memory_order_relaxed)(ctx);
}

/* ---- symbolize.c ---- */
/* Writes a description of code address pc into buf (always NUL-terminated,
 * truncated to len; nothing is written when len is 0):
 * "FUNC+0xOFF (MODULE+0xMODOFF)" when a symbol covers pc, "(MODULE+0xMODOFF)"
 * when only the module is known, "0xPC" otherwise.  MODOFF is what
 * addr2line -e MODULE takes.  Never allocates; not async-signal-safe;
 * callers serialize. */
void tidei_symbolize(uintptr_t pc, char *buf, size_t len);
/* Unmaps every file the symbolizer mapped and empties its cache. */
void tidei_symbolize_done(void);
/* For the report of p, a pointer tide does not own, given to op: writes
 * "; OP called from CALLER; the address is in MAPPING" into buf (NUL-
 * terminated, truncated to len).  CALLER is the code that called tide's
 * outermost entry point on the stack, as tidei_symbolize writes it (left
 * out if the stack cannot be unwound); MAPPING is the line of
 * /proc/self/maps that holds p ("[heap]" is glibc's malloc's heap when
 * tide serves the program), "an anonymous mapping", or the address is "not
 * mapped".  Never allocates; for the misuse path only. */
void tidei_symbolize_describe_foreign(const char *op, const void *p, char *buf, size_t len);

/* ---- override.c: the exported names ---- */
/* Every standard allocation name tide exports, with tide's own function
 * (not whatever the name resolves to in the process). */
extern const tidei_entry_t tidei_override_entries[];
extern const size_t tidei_override_n_entries;
/* Tide's own function exported as name, or NULL. */
void *tidei_override_entry(const char *name);
void *tidei_override_new_failed(size_t n, size_t align, bool nothrow);
bool tidei_override_is_entry(uintptr_t fn);

/* ---- glibc.c ---- */
/* Once, at start-up, after init: makes libc.so.6's allocation symbols
 * resolve to tide (libc_alloc=tide) or to checking wrappers of glibc's
 * (libc_alloc=glibc), if tide's malloc is the process's; nothing with
 * libc_alloc=off. */
void tidei_glibc_bind(void);
/* The function name defined by the loaded object whose DT_SONAME is
 * soname (the first in load order, the main namespace first), or NULL if
 * none is loaded or it defines name more than once (several versions).
 * Read from the object's dynamic symbol table: it enters the loader no
 * further than dl_iterate_phdr (its lock), allocates nothing, and is safe
 * wherever an unwind is (from inside the loader too).  Any thread. */
void *tidei_glibc_loaded_function(const char *soname, const char *name);
/* Whether an object whose DT_SONAME is soname is loaded (as above). */
bool tidei_glibc_loaded(const char *soname);

/* ---- leak.c ---- */
long tidei_leak_check(bool at_exit);

/* ---- gc/: the garbage-collected heap (gc/gc_internal.h for its own) ---- */
/* free/realloc/malloc_usable_size (op) of p, a block of the GC heap:
 * reports the misuse and aborts. */
__attribute__((noreturn)) void tidei_gc_misuse_free(const void *p, const char *op);
/* The GC heap's figures for tide_stats (zeros while it is unused). */
void tidei_gc_stats(struct tide_gc_stats *out);

/* ---- stats.c ---- */
extern tide_global_counters_t tidei_global_ctr;
void tidei_stats_init(void);
void tidei_stats_at_exit(void);
void tidei_stats_print(int fd);

#endif /* TIDE_INTERNAL_H */
