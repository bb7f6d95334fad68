/* tide_config.h — compile-time constants.  Everything that sizes a structure,
 * every default and bound of a tunable and every fixed delay lives here, so
 * that the layout of the heap and its timing can be read off one page.
 * (TIDE_N_CLASSES, the number of size classes, is in include/tide.h: the
 * public struct tide_stats has one entry per class.)  tools/gdb reads these
 * from the program's debug info (src/layout.c), never from a copy. */
#ifndef TIDE_CONFIG_H
#define TIDE_CONFIG_H

#include "tide.h"  /* TIDE_N_CLASSES */

/* OS pages.  tide assumes 4 KiB pages (x86-64, most arm64 kernels) and
 * checks it at start-up. */
#define TIDE_PAGE_SHIFT   12
#define TIDE_PAGE_SIZE    ((size_t)1 << TIDE_PAGE_SHIFT)
/* The bytes of n pages. */
#define TIDE_PAGES_BYTES(n) ((size_t)(n) << TIDE_PAGE_SHIFT)

/* Chunks: the unit in which address space is mapped for spans and large
 * blocks.  8 MiB = 2048 pages. */
#define TIDE_CHUNK_SHIFT  23
#define TIDE_CHUNK_SIZE   ((size_t)1 << TIDE_CHUNK_SHIFT)
#define TIDE_CHUNK_PAGES  (TIDE_CHUNK_SIZE >> TIDE_PAGE_SHIFT)

/* Size-class boundaries.  Requests up to TIDE_SMALL_MAX come from spans of
 * one size class; up to TIDE_LARGE_MAX from page runs in chunks; above it
 * each block is mapped on its own (a huge block), except one that fits in
 * a chunk and finds a free run there whose pages are resident: it takes
 * that run as a large block (alloc.c pages_alloc). */
#define TIDE_SMALL_MAX    ((size_t)64 * 1024)
#define TIDE_LARGE_MAX    ((size_t)4 * 1024 * 1024)
#define TIDE_THP_SIZE     ((size_t)2 * 1024 * 1024)   /* an x86-64 transparent huge page */

/* Size classes: 16-byte steps up to 128, then 8 classes per power of two
 * (at most 12.5 % internal waste), up to TIDE_SMALL_MAX.  Class 0 has
 * 16-byte blocks, like class 1, and serves malloc(0) only. */
#define TIDE_CLASS_STEPS  8
/* malloc of up to TIDE_DIRECT_MAX bytes finds its span in a table of the
 * thread's heap indexed by the size itself (tide_heap_t.by_size), with no
 * size class to compute on the way: one load where (size + 15) / 16 took
 * two instructions more.  The table is 8 KiB per heap, of which a program
 * touches the lines of the sizes it asks for. */
#define TIDE_DIRECT_MAX   ((size_t)1024)
#define TIDE_N_DIRECT     (TIDE_DIRECT_MAX + 1)

/* Span sizing: a span holds at least this many bytes (small classes) and at
 * most TIDE_SPAN_MAX_PAGES pages (largest classes), and at least
 * TIDE_SPAN_MIN_BLOCKS blocks.  4 rather than 8 blocks: the spans of the
 * classes above 8 KiB are up to half as long, so fewer of their pages sit
 * free in partly used spans (peak RSS of bench mstress -8 %, realloc-step -10 %;
 * docs/benchmarks.md). */
#define TIDE_SPAN_MIN_BYTES  ((size_t)64 * 1024)
#define TIDE_SPAN_MAX_PAGES  128
/* A span carves its blocks a page at a time, each page faulted in by the
 * carve's first write.  Once the process has TIDE_CARVE_AHEAD_CHUNKS
 * chunks, a span carved a second time (one that keeps growing) carves
 * TIDE_CARVE_AHEAD_PAGES pages more and makes them resident in one
 * request first: in this VM a fault costs microseconds, and a program
 * that grows its heap by 100 MB faults 25 000 times.  The pages a growing
 * span takes ahead are at most that many per span, and processes of under
 * 32 MiB never do it. */
#define TIDE_CARVE_AHEAD_PAGES  3
#define TIDE_CARVE_AHEAD_CHUNKS 4
/* A span on pages used before (not is_zero: likely still resident, so a
 * write costs no fault) carves at least TIDE_CARVE_MIN_BLOCKS blocks at a
 * time, as many as its page holds if that is more: blocks of a few KiB,
 * one per page, would otherwise cost a slow path each (mid-batch, 8-40
 * KiB blocks, took one on 80 % of its mallocs). */
#define TIDE_CARVE_MIN_BLOCKS   4
#define TIDE_SPAN_MIN_BLOCKS 4
/* A thread heap keeps up to TIDE_SPARE_SPANS spans that emptied, of at
 * most TIDE_SPARE_BYTES in all, in their bins rather than give them back
 * at once (heap.c span_keep_spare). */
#define TIDE_SPARE_SPANS 8
#define TIDE_SPARE_BYTES ((size_t)512 * 1024)
/* The last span of a class is kept when it empties (so that a malloc/free
 * pair does not make and give back a span each time) for the classes of
 * blocks under TIDE_KEEP_LAST_MAX bytes; the bigger ones' spans go to the
 * spares, whose bound is the heap's, not the class's.  A program that
 * reads files into buffers of their size (python loading its modules)
 * otherwise keeps a span per size with that buffer's pages dirty in it:
 * python -c pass, 14.7 MB peak RSS against 14.3 with this rule (glibc
 * 13.3). */
#define TIDE_KEEP_LAST_MAX 4096

/* Shared heaps (heap.c): a thread's first TIDE_SHARED_BLOCKS blocks of
 * each size class (the default of TIDE_CONF shared_blocks) come from spans
 * shared by every thread, one of TIDE_SHARED_HEAPS heaps used under a lock,
 * so a thread with a few blocks of many classes does not pin a page of a
 * span of its own per class; past that count it gets spans of its own for
 * the class. */
#define TIDE_SHARED_HEAPS   4
#define TIDE_SHARED_BLOCKS  256
/* Threads share only while this many have heaps at once (the default of
 * TIDE_CONF shared_threads): a few threads with spans of their own pin a
 * few pages per class each, while every block of a shared span costs a
 * lock on malloc and a compare-and-swap on free (bench threads-300: its
 * pool of 8 short-lived threads ran 1.4 times faster without sharing). */
#define TIDE_SHARED_THREADS 8
/* Classes of blocks this large or larger are never taken from the shared
 * heaps: a span of the thread's own carves them a block at a time, so it
 * pins no page more than its blocks need, and spans shared by threads that
 * free at random fragmented (bench mstress: 153 MiB peak RSS against 130
 * without them). */
#define TIDE_SHARED_MAX_SIZE ((size_t)4096)
/* A thread that has stopped sharing this many classes (past the count
 * above, or adopting an exited thread's span) shares no class any more. */
#define TIDE_SHARED_OWN_CLASSES 8
/* A free into a shared heap's span takes the span's remote frees in (under
 * the heap's lock) once every this many (heap.c tidei_heap_free_remote). */
#define TIDE_SHARED_TAKE_EVERY 16

/* The page map: a two-level radix tree over a 47-bit address space, one
 * entry per page.  The top level is a static array (in .bss, touched only
 * where tide has memory); each leaf covers 4 GiB and is reserved on demand. */
#define TIDE_VA_BITS        47
#define TIDE_MAP_LEAF_BITS  20
#define TIDE_MAP_TOP_BITS   (TIDE_VA_BITS - TIDE_PAGE_SHIFT - TIDE_MAP_LEAF_BITS)

/* The flat map's range (pagemap.c): at most this many chunks (32 GiB). */
#define TIDE_FLAT_MAX_CHUNKS 4096

/* Metadata is carved from regions of this size. */
#define TIDE_META_REGION  ((size_t)1 << 20)

/* The huge-block cache (huge.c) keeps at most this many free ranges:
 * merging keeps the list short; a longer one is trimmed from the range
 * freed longest ago. */
#define TIDE_HUGE_CACHE_RANGES 64

/* Chunks are mapped aligned to this (a transparent huge page), so that the
 * kernel can back them with huge pages. */
#define TIDE_CHUNK_ALIGN  ((size_t)2 << 20)

/* Scratch arrays (scratch.c) start with this many bytes, then double. */
#define TIDE_SCRATCH_MIN_BYTES ((size_t)64 << 10)

/* The alternate signal stack lent to each thread with a heap when crash
 * reports are on (crash.c), plus a guard page; and how close to the stack
 * pointer a fault must be for the report to suspect a stack overflow. */
#define TIDE_ALT_STACK_BYTES  ((size_t)128 << 10)
#define TIDE_STACK_NEAR_BYTES ((size_t)64 << 10)

/* ---- the scavenger (scav.c) and the purge (arena.c) ---- */

/* TIDE_CONF decay_ms: its default and its largest value (one hour). */
#define TIDE_DECAY_MS_DEFAULT 500
#define TIDE_DECAY_MS_MAX     3600000

/* Bytes purged per hold of the arena lock: the scavenger lets allocating
 * threads in between batches. */
#define TIDE_PURGE_BATCH  ((size_t)8 << 20)

/* At least this long between two rounds of the scavenger (runs falling due
 * together are purged in one round), and the delay after which it purges
 * what an idle heap gave back. */
#define TIDE_SCAV_MIN_WAIT_MS    10
#define TIDE_SCAV_RECLAIMED_MS   20

/* A heap that shows no activity for decay_ms / TIDE_SCAV_IDLE_PARTS is
 * idle: the scavenger takes back what it caches (its empty spans, and the
 * frees other threads made into its spans).  A fifth of the delay: memory
 * that a thread which stopped allocating holds (a main thread that set
 * up the data and waits for its workers, which free it) becomes usable
 * by the threads still running long before it would be purged anyway.
 * While a heap holds spans, the scavenger looks at it at least every
 * decay_ms / TIDE_SCAV_WATCH_STEPS, so a heap that fell idle is reclaimed
 * at most that long after it became idle. */
#define TIDE_SCAV_IDLE_PARTS     5
#define TIDE_SCAV_WATCH_STEPS    10

/* The scavenger's stack: address space reserved by tide (touched pages
 * only are memory), with a guard page below.  glibc keeps the thread's
 * static TLS at its top, which a program's __thread arrays can make big,
 * so it is roomy; the scavenger itself needs a few KiB. */
#define TIDE_SCAV_STACK_BYTES    ((size_t)1 << 20)

/* The scavenger ends after this long with nothing to do, and the next
 * wish starts another, so that an idle process keeps no thread of tide's;
 * after the program's first thread has ended (pthread_exit from main),
 * after TIDE_SCAV_LINGER_GONE_MS: a thread of tide's must not keep such a
 * process alive once its last thread ended without tide seeing it (one
 * that never allocated).  Long enough that a program busy in bursts
 * seconds apart keeps the same thread. */
#define TIDE_SCAV_LINGER_MS      10000
#define TIDE_SCAV_LINGER_GONE_MS 1000
/* After the program's first thread ends, the scavenger looks whether it
 * is alone this many times, 1, 2, 4 ... ms apart, after each thread that
 * ends (the thread is still there when its key destructor runs). */
#define TIDE_SCAV_EXIT_CHECKS    8

/* ---- stopping threads (leak.c) and reports (crash.c) ---- */

/* The leak checker stops threads with this real-time signal, counted down
 * from SIGRTMAX (unless the program handles it), and polls them every
 * TIDE_PARK_POLL_MS. */
#define TIDE_LEAK_SIGNAL_FROM_MAX 3
#define TIDE_PARK_POLL_MS         1

/* A thread that faults while another writes a crash report waits for it,
 * polling every TIDE_REPORT_POLL_MS, at most TIDE_REPORT_WAIT_MS. */
#define TIDE_REPORT_POLL_MS  10
#define TIDE_REPORT_WAIT_MS  30000

/* ---- the GC heap (src/gc/) ---- */

/* The signal that stops threads for a collection, unless TIDE_CONF
 * gc_signal names another (Boehm's collector uses the same). */
#define TIDE_GC_SIGNAL SIGPWR
/* The mark stack starts with this many ranges, then doubles; each helper
 * marker thread gets a stack of TIDE_GC_HELPER_STACK bytes. */
#define TIDE_GC_MARK_STACK_MIN 65536
#define TIDE_GC_HELPER_STACK   ((size_t)256 << 10)
/* A helper marker thread ends after this many seconds without a
 * collection, and the next collection starts it again: no thread of
 * tide's keeps alive a process whose first thread called pthread_exit. */
#define TIDE_GC_HELPER_LINGER_S 1

/* ---- sizes of the reports' and tools' tables ---- */

/* A walk over a list of spans that may change under it (a report at a
 * signal) stops after this many. */
#define TIDE_WALK_MAX 1000000
/* Heaps a crash report lists one by one. */
#define TIDE_CRASH_HEAPS_LISTED 16
/* Libc symbols glibc.c binds to tide at most. */
#define TIDE_GLIBC_MAX_PATCHES 64
/* Frames kept per stack of a guarded block. */
#define TIDE_GUARD_DEPTH 32
/* A freed guarded block's pages stay committed up to this many. */
#define TIDE_GUARD_KEEP_PAGES 2
/* Threads the leak checker stops at most. */
#define TIDE_LEAK_PARK_MAX 4096
/* Report files created in this run that tide remembers (the only ones it truncates). */
#define TIDE_REPORT_FILES 32
/* Frames kept per profiled stack. */
#define TIDE_PROF_DEPTH 48
/* Call sites per segment of the profiler's table: 2^this. */
#define TIDE_PROF_SEG_SHIFT 12
/* Segments of the profiler's table at most (4M sites). */
#define TIDE_PROF_SEGS 1024
/* Heaps the stats report lists; more are summed in the totals only. */
#define TIDE_STATS_REPORT_HEAPS 64
/* Object files the symbolizer keeps mapped at once; the next one replaces the oldest. */
#define TIDE_SYM_FILES 32

#endif /* TIDE_CONFIG_H */
