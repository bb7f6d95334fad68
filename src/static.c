/* static.c — the unity build: the modules are compiled together, so that
 * the compiler can inline across them (the fast paths in alloc.c/free.c
 * use the page map, classes and heaps of the others). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* Two parts, compiled apart (TIDE_PART 1 and 2) and joined in this order
 * (Makefile): the linker lays out the code of the first before the
 * second's.  The first holds the modules whose code every process runs
 * (set-up, the slow paths of malloc and free, the page allocator, the
 * scavenger), so that a small program keeps one 64 KiB window of the code
 * resident, the fast paths' section next to it (Makefile; api/footprint.sh);
 * the second, the reports, the profiler, the guard and the GC.  What of the
 * second runs in every process (set-up, exit, fork, a thread's start and
 * end, the sampler's event) is marked tide_cold, which puts it at the start of
 * .text with the rest.  Nothing on a path a benchmark times calls from
 * the first part into the second except through the sampler's event.
 * Without TIDE_PART (the unit tests), both. */
#if !defined(TIDE_PART) || TIDE_PART == 1
#include "options.c"
#include "os.c"
#include "pagemap.c"
#include "meta.c"
#include "scratch.c"
#include "arena.c"
#include "huge.c"
#include "span.c"
#include "heap.c"
#include "init.c"
#include "alloc.c"
#include "free.c"
#include "scav.c"
#ifndef TIDE_UNIT  /* unit tests (tests/unit/unit.h) keep glibc's malloc */
#include "override.c"
#endif
#include "glibc.c"
#endif
#if !defined(TIDE_PART) || TIDE_PART == 2
#include "print.c"
#include "stats.c"
#include "walk.c"
#include "layout.c"
#include "prof.c"
#include "guard.c"
#include "crash.c"
#include "symbolize.c"
#include "unwind.c"
#include "leak.c"
/* the GC heap (src/gc/), bottom up */
#include "gc/heap.c"
#include "gc/sweep.c"
#include "gc/threads.c"
#include "gc/mark.c"
#include "gc/roots.c"
#include "gc/finalize.c"
#include "gc/collect.c"
#include "gc/api.c"
#endif
