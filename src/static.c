/* static.c — the unity build: one translation unit for the whole library,
 * so that the compiler can inline across modules (the fast paths in
 * alloc.c/free.c use the page map, classes and heaps of the others). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "print.c"
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
#include "stats.c"
#include "walk.c"
#include "layout.c"
#include "prof.c"
#include "guard.c"
#include "crash.c"
#include "symbolize.c"
#include "unwind.c"
#include "leak.c"
#ifndef TIDE_UNIT  /* unit tests (tests/unit/unit.h) keep glibc's malloc */
#include "override.c"
#endif
#include "glibc.c"
/* the GC heap (src/gc/), bottom up */
#include "gc/heap.c"
#include "gc/sweep.c"
#include "gc/threads.c"
#include "gc/mark.c"
#include "gc/roots.c"
#include "gc/finalize.c"
#include "gc/collect.c"
#include "gc/api.c"
