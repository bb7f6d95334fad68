/* guard.c — guarded sampling (TIDE_CONF guard=1, guard_rate=N;
 * docs/hardening.md): a few allocations are served from slots fenced by
 * inaccessible pages, so that an overflow, an underflow or a use after free
 * of one of them faults at once, and crash.c's handler reports it with the
 * stacks that allocated and freed the block.
 *
 * The slots.  One region of address space is reserved at start-up with no
 * access (PROT_NONE, MAP_NORESERVE):
 *
 *     | guard | slot 0: 16 pages | guard | slot 1 | guard | ... | slot S-1 | guard |
 *
 * A guarded block of n <= TIDE_SMALL_MAX bytes gets a slot of its own and
 * only the pages it needs are opened (mprotect read-write); the rest of the
 * region stays inaccessible.  The block is placed, at random, against the
 * end of its slot's pages, as near as its alignment allows (16 bytes, as
 * every block of tide's, or what aligned_alloc asked for), so that an
 * overflow faults at most 15 bytes past it (at the first byte past it when
 * n is a multiple of 16), or against the start, so that the byte before it
 * faults.  The slack left in the opened pages around the block is filled
 * with a pattern that free checks: an overflow or underflow written into
 * it is reported there.
 * A freed block's pages go back to PROT_NONE (their memory back to the OS)
 * and its slot to the tail of a FIFO of free slots, so the slot is used
 * again only after every other free slot was: the quarantine.  A use after
 * free faults until then.  One mapping for every slot means the process's
 * map count grows by at most two entries per live guarded block; the slot
 * count is capped at vm.max_map_count / 16.
 *
 * The page map points every page of the region at one descriptor of kind
 * TIDE_SPAN_GUARD, so free (free.c, its slow path: the descriptor has no
 * heap), realloc and malloc_usable_size find a guarded block in O(1), and
 * the slot is the address's offset in the region divided by the stride.
 *
 * Sampling.  Guarding takes its turns from the profiler's countdown
 * (prof.c: ctr.sample_left, charged with every allocation's size on the
 * malloc fast path), which fires at the earlier of the profiler's next
 * event and the guard's: tidei_prof_event, with guard=1, comes here, keeps
 * both parts (guard_left, guard_prof) and runs the profiler's event when
 * its part runs out.  So the fast path has the same single test with
 * guarding on or off, and none at all is added when it is off.  The
 * guard's intervals are exponential in bytes, of mean B = 16 / -ln(1 - 1/N)
 * (about 16 N): an allocation of n bytes ends one with probability
 * 1 - exp(-n/B), which is at least 1/N from 16 bytes up; it is then
 * guarded with probability (1/N) / (1 - exp(-n/B)), so every allocation of
 * 16 bytes or more is guarded with probability 1/N, whatever its size and
 * whatever came before, and smaller ones proportionally less often.
 * guard_rate=1 guards every allocation.  The backup heap (threads past
 * their heap's end) is never guarded.
 *
 * The stacks.  The allocation's and the free's call stacks are unwound
 * (libgcc, prof.c's tidei_prof_unwind) into the slot, above tide's own frames,
 * when they happen; a report symbolizes them (symbolize.c).  A slot being
 * handed out or freed is marked BUSY meanwhile, and a report says so
 * rather than show a stack that belongs to another block.
 *
 * Lock order: guard_lock is a leaf: taken after the arena lock by the heap
 * walk, never held while another lock is taken.  The fault report reads
 * the slots without it. */
#include <fcntl.h>
#include <unistd.h>

#include "tide_internal.h"

#define SLOT_PAGES (TIDE_SMALL_MAX >> TIDE_PAGE_SHIFT)
#define STRIDE ((SLOT_PAGES + 1) << TIDE_PAGE_SHIFT)  /* a slot and the guard page after it */
#define SLOT_BYTES TIDE_SMALL_MAX
#define MIN_UNIT 16                            /* sizes from which the rate is exact */

enum { SLOT_EMPTY = 0, SLOT_LIVE, SLOT_FREED, SLOT_BUSY };

/* One slot.  Written by the thread that hands the block out or frees it
 * (state BUSY meanwhile), read by a report without a lock. */
typedef struct guard_slot {
    _Atomic uint8_t state;       /* SLOT_EMPTY (never used), LIVE, FREED (in quarantine), BUSY */
    uint8_t n_alloc;             /* frames in alloc_pc */
    uint8_t n_free;              /* frames in free_pc */
    uintptr_t block;             /* the block's first byte */
    size_t size;                 /* bytes requested */
    uintptr_t lo, hi;            /* the pages opened for it */
    int alloc_tid;               /* thread that allocated it */
    int free_tid;                /* thread that freed it (FREED) */
    uintptr_t alloc_pc[TIDE_GUARD_DEPTH]; /* the allocation's stack, innermost first */
    uintptr_t free_pc[TIDE_GUARD_DEPTH];  /* the free's */
} guard_slot_t;

bool tidei_guard_on;                           /* the region is set up: events come here */
static uintptr_t guard_base, guard_end;        /* the region: first guard page .. past the last */
static size_t guard_n;                         /* slots */
static guard_slot_t *guard_slots;              /* guard_n slots (a mapping of their own) */
static uint32_t *guard_fifo;                   /* free slots, oldest-freed (or never used) first */
static size_t fifo_head, fifo_count;           /* ring buffer over guard_fifo (guard_lock) */
static size_t guard_meta_bytes;                /* bytes mapped for guard_slots and guard_fifo */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static double guard_mean;                      /* B: mean bytes between draws; 0 = every allocation */
static double guard_q;                         /* 1 / guard_rate */
static _Atomic uint64_t n_guarded;             /* blocks ever guarded */
static _Atomic uint64_t n_guard_freed;         /* of those, freed */
static _Atomic uint64_t guard_live_bytes;      /* bytes requested by live guarded blocks */
static _Atomic uint64_t n_no_slot;             /* samples dropped: every slot was live */
static __thread bool guard_inside;             /* the thread is handing out a guarded block */

tide_inline uintptr_t slot_start(size_t i)
{
    return guard_base + TIDE_PAGE_SIZE + i * STRIDE;
}

/* ---- set-up ---- */

/* vm.max_map_count, or 65530 (the kernel's default) if it cannot be read. */
static long max_map_count(void)
{
    long v = 0;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t r = read(fd, buf, sizeof buf - 1);
        for (ssize_t i = 0; i < r && buf[i] >= '0' && buf[i] <= '9'; i++)
            v = v * 10 + (buf[i] - '0');
        close(fd);
    }
    return v > 0 ? v : 65530;
}

/* Reserves the region and the slot table, points the page map at the
 * region (process init, before any heap exists).  Leaves guarding off,
 * with a warning, if the OS refuses. */
tide_cold void tidei_guard_init(void)
{
    if (!tidei_opt.guard)
        return;
    size_t n = (size_t)tidei_opt.guard_slots;
    size_t cap = (size_t)max_map_count() / 16;
    if (n > cap) {
        if (tidei_opt.verbose)
            tidei_warn("tide: guard_slots=%zu capped at %zu (vm.max_map_count / 16)\n", n, cap);
        n = cap ? cap : 1;
    }
    long rate = tidei_opt.guard_rate;
    guard_q = 1.0 / (double)rate;
    guard_mean = rate == 1 ? 0 : MIN_UNIT / -tidei_prof_log_unit(1 - guard_q);
    size_t pages = n * (SLOT_PAGES + 1) + 1;
    size_t region = pages << TIDE_PAGE_SHIFT;
    size_t meta = (n * sizeof(guard_slot_t) + n * sizeof(uint32_t) + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    char *r = tidei_os_reserve_none(region);
    char *m = r ? tidei_os_map(meta) : NULL;
    bool ok = m != NULL;
    tide_span_t *s = NULL;
    if (ok) {
        pthread_mutex_lock(&tidei_arena.lock);
        ok = tidei_pagemap_ensure((uintptr_t)r, pages) && (s = tidei_meta_span_new()) != NULL;
        if (ok) {
            s->kind = TIDE_SPAN_GUARD;
            s->start = (uintptr_t)r;
            s->n_pages = pages;
            tidei_pagemap_set((uintptr_t)r, pages, s);
        }
        pthread_mutex_unlock(&tidei_arena.lock);
    }
    if (!ok) {
        if (m)
            tidei_scratch_unmap(m, meta);
        if (r)
            tidei_scratch_unmap(r, region);
        tidei_warn("tide: guard=1: no memory for %zu guarded slots; guarding is off\n", n);
        return;
    }
    guard_slots = (guard_slot_t *)m;
    guard_fifo = (uint32_t *)(m + n * sizeof(guard_slot_t));
    for (size_t i = 0; i < n; i++)
        guard_fifo[i] = (uint32_t)i;
    fifo_head = 0;
    fifo_count = n;
    guard_n = n;
    guard_meta_bytes = meta;
    guard_base = (uintptr_t)r;
    guard_end = (uintptr_t)r + region;
    tidei_guard_on = true;
}

/* ---- sampling ---- */

/* Bytes to the guard's next draw: exponential of mean B, at least 1 (0
 * when every allocation is guarded). */
static int64_t guard_interval(tide_heap_t *h)
{
    if (guard_mean == 0)
        return 0;
    double v = -tidei_prof_log_unit(tidei_prof_random_unit(&h->guard_rng)) * guard_mean;
    return v < 1 ? 1 : v > 1e15 ? (int64_t)1e15 : (int64_t)v;
}

/* An interval of the guard's ended inside an allocation of n bytes: whether
 * to guard it (see the top of the file). */
static bool guard_accept(tide_heap_t *h, size_t n)
{
    if (guard_mean == 0)
        return true;
    double ended = 1 - tidei_prof_exp_neg((double)n / guard_mean);
    if (ended <= 0)
        return false;
    double p = guard_q / ended;
    return p >= 1 || tidei_prof_random_unit(&h->guard_rng) <= p;
}

/* tidei_prof_event with guard=1: h's countdown ran out with an allocation
 * of n bytes (charged).  The countdown was armed at the earlier of the
 * guard's next draw and the profiler's next event: runs the profiler's
 * event if its part ran out (else only counts the bytes, as it would),
 * draws if the guard's did (setting h->guard_due when this allocation is
 * to be guarded), and arms the countdown again.  Returns the profiler's
 * TIDE_PROF_*.  Owner thread only. */
int tidei_guard_event(tide_heap_t *h, size_t n)
{
    tide_heap_counters_t *c = &h->ctr;
    if (h == &tidei_backup_heap)
        return tidei_prof_event_core(h, n);
    int what = TIDE_PROF_NONE;
    int64_t spent = c->sample_armed - c->sample_left;
    if (!h->guard_rng) {
        /* the heap's first event: the countdown is still the profiler's
         * own; the guard's first interval starts with this allocation */
        what = tidei_prof_event_core(h, n);
        h->guard_prof = c->sample_left;
        h->guard_rng = (((uint64_t)h->id << 32) ^ tidei_os_now_ms() ^ (uintptr_t)h ^ tidei_free_key) | 1;
        h->guard_left = guard_interval(h) - (int64_t)n;
    } else {
        h->guard_left -= spent;
        h->guard_prof -= spent;
        if (h->guard_prof <= 0) {
            /* as if the countdown had been the profiler's alone */
            c->sample_armed = spent + h->guard_prof;
            __atomic_store_n(&c->sample_left, h->guard_prof, __ATOMIC_RELAXED);  /* the scavenger reads it */
            what = tidei_prof_event_core(h, n);
            h->guard_prof = c->sample_left;
        } else {
            c->requested = tidei_heap_requested(c);  /* folds the countdown in */
        }
    }
    if (h->guard_left <= 0) {
        h->guard_left = guard_interval(h);
        /* a profile sample gets pages of its own: the guard passes */
        h->guard_due = what != TIDE_PROF_SAMPLE && guard_accept(h, n);
    }
    int64_t arm = h->guard_left < h->guard_prof ? h->guard_left : h->guard_prof;
    c->sample_armed = arm;
    __atomic_store_n(&c->sample_left, arm, __ATOMIC_RELAXED);  /* the scavenger reads it (fast_inside) */
    return what;
}

/* ---- stacks ---- */

/* The calling thread's stack above tide's entry points (malloc, free, ...)
 * into pc[]; returns the number of frames. */
static int guard_stack(uintptr_t *pc, int max)
{
    uintptr_t p[TIDE_GUARD_DEPTH + 24], f[TIDE_GUARD_DEPTH + 24];
    int n = tidei_prof_unwind(p, f, TIDE_GUARD_DEPTH + 24);
    int from = 0;
    for (int i = 0; i < n; i++)
        if (tidei_prof_is_entry_point(f[i]))
            from = i + 1;
    int k = n - from < max ? n - from : max;
    for (int i = 0; i < k; i++)
        pc[i] = p[from + i];
    return k;
}

/* ---- slots ---- */

/* The slack's pattern byte. */
#define SLACK_BYTE 0xeb
#define SLACK_WORD ((uint64_t)0x0101010101010101ull * SLACK_BYTE)

static void slack_fill(uintptr_t lo, uintptr_t hi)
{
    memset((void *)lo, SLACK_BYTE, hi - lo);
}

/* The byte of [lo, hi) nearest the block (the highest when from_top, else
 * the lowest) that lost its pattern, or 0.  Word by word where it can. */
static uintptr_t slack_broken(uintptr_t lo, uintptr_t hi, bool from_top)
{
    uintptr_t first = 0, last = 0, a = lo;
    while (a < hi) {
        if ((a & 7) == 0 && a + 8 <= hi && *(uint64_t *)a == SLACK_WORD) {
            a += 8;
            continue;
        }
        if (*(uint8_t *)a != SLACK_BYTE) {
            if (!from_top)
                return a;
            if (!first)
                first = a;
            last = a;
        }
        a++;
    }
    return from_top ? last : first;
}

/* Takes the slot at the head of the FIFO (marked BUSY), or returns -1. */
static long slot_take(void)
{
    long i = -1;
    pthread_mutex_lock(&guard_lock);
    if (fifo_count) {
        i = guard_fifo[fifo_head];
        fifo_head = fifo_head + 1 == guard_n ? 0 : fifo_head + 1;
        fifo_count--;
        atomic_store_explicit(&guard_slots[i].state, SLOT_BUSY, relaxed);
    }
    pthread_mutex_unlock(&guard_lock);
    return i;
}

/* Puts slot i at the tail of the FIFO, in state st. */
static void slot_put(size_t i, int st)
{
    pthread_mutex_lock(&guard_lock);
    atomic_store_explicit(&guard_slots[i].state, (uint8_t)st, release);
    size_t tail = fifo_head + fifo_count;
    guard_fifo[tail >= guard_n ? tail - guard_n : tail] = (uint32_t)i;
    fifo_count++;
    pthread_mutex_unlock(&guard_lock);
}

/* A guarded block of n bytes aligned to align (0: as n allows), for the
 * allocation h's event chose (what: the profiler's TIDE_PROF_* for it).
 * NULL when the request cannot be guarded (too big, aligned beyond a page,
 * no free slot, the OS refused, or the thread is inside a guarded
 * allocation already): the caller serves it as usual. */
void *tidei_guard_alloc(tide_heap_t *h, size_t n, size_t align, int what)
{
    h->guard_due = false;
    if (n > SLOT_BYTES || align > TIDE_PAGE_SIZE || guard_inside)
        return NULL;
    long i = slot_take();
    if (i < 0) {
        atomic_fetch_add_explicit(&n_no_slot, 1, relaxed);
        return NULL;
    }
    guard_inside = true;
    guard_slot_t *sl = &guard_slots[i];
    uintptr_t start = slot_start((size_t)i), end = start + SLOT_BYTES;
    bool at_end = tidei_opt.guard_side == 1 || (tidei_opt.guard_side == 0 && (tidei_prof_random(&h->guard_rng) >> 63));
    uintptr_t b, lo, hi;
    if (at_end) {
        size_t a = align > 16 ? align : 16;  /* what tide's other blocks promise */
        b = (end - (n ? n : 1)) & ~(uintptr_t)(a - 1);
        lo = b & ~(TIDE_PAGE_SIZE - 1);
        hi = end;
    } else {
        b = lo = start;
        hi = (start + (n ? n : 1) + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
    }
    void *p = NULL;
    if (tidei_os_protect((void *)lo, hi - lo, true)) {
        slack_fill(lo, b);
        slack_fill(b + n, hi);
        sl->block = b;
        sl->size = n;
        sl->lo = lo;
        sl->hi = hi;
        sl->alloc_tid = h->tid;
        sl->n_alloc = (uint8_t)guard_stack(sl->alloc_pc, TIDE_GUARD_DEPTH);
        sl->n_free = 0;
        sl->free_tid = 0;
        atomic_store_explicit(&sl->state, SLOT_LIVE, release);
        atomic_fetch_add_explicit(&n_guarded, 1, relaxed);
        atomic_fetch_add_explicit(&guard_live_bytes, n, relaxed);
        p = (void *)b;
    } else {
        slot_put((size_t)i, sl->block ? SLOT_FREED : SLOT_EMPTY);
    }
    guard_inside = false;
    if (p && what == TIDE_PROF_RECORD)
        tidei_prof_took(p, n, TIDE_PROF_RECORD);
    return p;
}

/* The slot whose pages hold a (in the region), or -1 for a guard page. */
static long slot_of(uintptr_t a)
{
    if (a < guard_base + TIDE_PAGE_SIZE)
        return -1;
    uintptr_t off = a - guard_base - TIDE_PAGE_SIZE;
    size_t i = off / STRIDE;
    if (i >= guard_n || off - i * STRIDE >= SLOT_BYTES)
        return -1;
    return (long)i;
}

bool tidei_guard_holds(uintptr_t a)
{
    return a - guard_base < guard_end - guard_base;
}

/* ---- reports ---- */

static const char *const kind_names[] = { "heap-buffer-overflow", "heap-buffer-underflow", "use-after-free",
                                          "double-free" };
enum { BUG_OVERFLOW, BUG_UNDERFLOW, BUG_UAF, BUG_DOUBLE_FREE };

/* Prints the stacks of slot sl (a snapshot taken by the caller). */
static void print_slot_stacks(int fd, const guard_slot_t *sl, int state)
{
    if (state == SLOT_BUSY) {
        tidei_printf(fd, "tide: (the slot is being handed out or freed right now: no stacks)\n");
        return;
    }
    tidei_printf(fd, "tide: allocated by thread %d at:\n", sl->alloc_tid);
    tidei_crash_print_stack(fd, sl->alloc_pc, sl->n_alloc, false);
    if (state == SLOT_FREED) {
        tidei_printf(fd, "tide: freed by thread %d at:\n", sl->free_tid);
        tidei_crash_print_stack(fd, sl->free_pc, sl->n_free, false);
    }
}

/* "N bytes after the 100-byte block at 0x..." for address a and slot sl. */
static void print_where(int fd, uintptr_t a, const guard_slot_t *sl, bool freed)
{
    uintptr_t b = sl->block, e = sl->block + sl->size;
    const char *f = freed ? "freed " : "";
    if (a >= e)
        tidei_printf(fd, "%zu byte%s after the %s%zu-byte block at %p", (size_t)(a - e), a - e == 1 ? "" : "s", f,
                     sl->size, (void *)b);
    else if (a < b)
        tidei_printf(fd, "%zu byte%s before the %s%zu-byte block at %p", (size_t)(b - a), b - a == 1 ? "" : "s",
                     f, sl->size, (void *)b);
    else
        tidei_printf(fd, "%zu byte%s into the %s%zu-byte block at %p", (size_t)(a - b), a - b == 1 ? "" : "s", f,
                     sl->size, (void *)b);
}

/* A report made outside a signal handler (at free, realloc or
 * malloc_usable_size): kind, what happened at address a, the stack of the
 * call that found it, the block's stacks; then abort(). */
static __attribute__((noreturn)) void report_and_abort(int kind, const char *what, uintptr_t a, size_t i,
                                                        const char *by)
{
    if (tidei_crash_report_begin()) {
        guard_slot_t sl = guard_slots[i];
        int state = atomic_load_explicit(&guard_slots[i].state, acquire);
        uintptr_t here[TIDE_GUARD_DEPTH];
        int n_here = guard_stack(here, TIDE_GUARD_DEPTH);
        int tid = tidei_os_gettid();
        if (kind == BUG_UAF || kind == BUG_DOUBLE_FREE) {
            tidei_printf(2, "tide: %s: %s(%p) of the freed %zu-byte block at %p (thread %d)\n", kind_names[kind], what,
                         (void *)a, sl.size, (void *)sl.block, tid);
        } else {
            tidei_printf(2, "tide: %s: %s at %p, ", kind_names[kind], what, (void *)a);
            print_where(2, a, &sl, false);
            tidei_printf(2, " (found by free in thread %d)\n", tid);
        }
        tidei_printf(2, "tide: %s, by thread %d, at:\n", by, tid);
        tidei_crash_print_stack(2, here, n_here, false);
        print_slot_stacks(2, &sl, state == SLOT_BUSY ? SLOT_LIVE : state);
        tidei_symbolize_done();
        tidei_crash_report_end();
    }
    abort();
}

/* Checks that p is a live guarded block for op (free, realloc,
 * malloc_usable_size): reports a double free (a use after free for the
 * others) or an invalid pointer and aborts otherwise.  Returns its size. */
size_t tidei_guard_check(const void *p, const char *op)
{
    uintptr_t a = (uintptr_t)p;
    long i = slot_of(a);
    if (i < 0)
        tidei_misuse(op, p, "pointer not allocated by tide (or already freed)");
    guard_slot_t *sl = &guard_slots[i];
    int state = atomic_load_explicit(&sl->state, acquire);
    if (state == SLOT_LIVE && sl->block == a)
        return sl->size;
    if (state == SLOT_FREED && sl->block == a) {
        if (strcmp(op, "free") == 0)
            report_and_abort(BUG_DOUBLE_FREE, "free", a, (size_t)i, "the second free");
        report_and_abort(BUG_UAF, op, a, (size_t)i, op);
    }
    if (state == SLOT_LIVE && a > sl->block && a < sl->block + sl->size)
        tidei_misuse(op, p, "interior pointer (guarded block %p of %zu bytes)", (void *)sl->block, sl->size);
    tidei_misuse(op, p, "pointer not allocated by tide (or already freed)");
}

/* free of a pointer into the region (free.c's slow path). */
void tidei_guard_free(void *p)
{
    uintptr_t a = (uintptr_t)p;
    long i = slot_of(a);
    if (i < 0)
        tidei_misuse("free", p, "pointer not allocated by tide (or already freed)");
    guard_slot_t *sl = &guard_slots[i];
    for (;;) {
        uint8_t live = SLOT_LIVE;
        if (atomic_compare_exchange_strong_explicit(&sl->state, &live, SLOT_BUSY, acquire, relaxed)) {
            if (sl->block == a)
                break;
            atomic_store_explicit(&sl->state, SLOT_LIVE, release);  /* an interior pointer */
        }
        tidei_guard_check(p, "free");  /* reports a double, interior or wild free; else it was live */
    }
    /* the slack: an overflow or underflow written there */
    uintptr_t bad = slack_broken(sl->block + sl->size, sl->hi, false);
    int kind = BUG_OVERFLOW;
    if (!bad) {
        bad = slack_broken(sl->lo, sl->block, true);
        kind = BUG_UNDERFLOW;
    }
    if (bad) {
        atomic_store_explicit(&sl->state, SLOT_LIVE, release);
        report_and_abort(kind, "write", bad, (size_t)i, "the free that found it");
    }
    tide_heap_t *h = tidei_tls_heap;
    sl->free_tid = h != &tidei_empty_heap ? h->tid : tidei_os_gettid();
    guard_inside = true;
    sl->n_free = (uint8_t)guard_stack(sl->free_pc, TIDE_GUARD_DEPTH);
    guard_inside = false;
    if (sl->hi - sl->lo > TIDE_GUARD_KEEP_PAGES * TIDE_PAGE_SIZE)
        tidei_os_decommit((void *)sl->lo, sl->hi - sl->lo);
    if (!tidei_os_protect((void *)sl->lo, sl->hi - sl->lo, false))
        tidei_fatal("tide: internal error: mprotect of a guarded slot failed (errno %d)\n", errno);
    atomic_fetch_add_explicit(&n_guard_freed, 1, relaxed);
    atomic_fetch_sub_explicit(&guard_live_bytes, sl->size, relaxed);
    slot_put((size_t)i, SLOT_FREED);
}

/* realloc of live guarded block p (checked) to n > 0 bytes: always moves,
 * so that the old block goes to quarantine.  NULL (p untouched) when
 * memory ran out. */
void *tidei_guard_realloc(void *p, size_t n)
{
    return tidei_realloc_move(p, n, tidei_guard_check(p, "realloc"));
}

/* The fault handler (crash.c) met a SIGSEGV at a in the region.  Writes the
 * report of the block the access missed (access: 1 write, 0 read, -1
 * unknown) and returns true, or returns false if no block is near a (then
 * the handler's crash report describes the address). */
bool tidei_guard_fault(uintptr_t a, int access, void *ucv)
{
    /* the candidates: the slot holding a, or the two around a guard page */
    long cand[2] = { slot_of(a), -1 };
    if (cand[0] < 0) {
        size_t k = (a - guard_base) / STRIDE;  /* the guard page after slot k - 1, before slot k */
        cand[0] = k > 0 ? (long)k - 1 : -1;
        cand[1] = k < guard_n ? (long)k : -1;
    }
    long best = -1;
    int best_state = 0;
    uintptr_t best_dist = UINTPTR_MAX;
    for (int c = 0; c < 2; c++) {
        if (cand[c] < 0)
            continue;
        guard_slot_t *sl = &guard_slots[cand[c]];
        int st = atomic_load_explicit(&sl->state, acquire);
        if (st == SLOT_EMPTY)
            continue;
        uintptr_t b = sl->block, e = b + sl->size;
        uintptr_t d = a >= e ? a - e : a < b ? b - a : 0;
        if (d < best_dist || (d == best_dist && st == SLOT_LIVE)) {
            best = cand[c];
            best_state = st;
            best_dist = d;
        }
    }
    if (best < 0)
        return false;
    guard_slot_t sl = guard_slots[best];
    bool freed = best_state == SLOT_FREED;
    int kind = a >= sl.block + sl.size ? BUG_OVERFLOW : a < sl.block ? BUG_UNDERFLOW : BUG_UAF;
    int tid = tidei_os_gettid();
    const char *acc = access == 1 ? "write" : access == 0 ? "read" : "read or write";
    tidei_printf(2, "tide: %s: %s at %p, ", kind_names[kind], acc, (void *)a);
    print_where(2, a, &sl, freed);
    tidei_printf(2, " (thread %d)\n", tid);
    /* the access's stack: the frames above the signal frame */
    uintptr_t pc = tidei_os_context_pc(ucv, NULL);
    uintptr_t p[TIDE_GUARD_DEPTH + 24], f[TIDE_GUARD_DEPTH + 24];
    int n = tidei_prof_unwind(p, f, TIDE_GUARD_DEPTH + 24), from = n;
    for (int k = 0; k < n; k++) {
        if (p[k] == pc) {
            from = k;
            break;
        }
    }
    tidei_printf(2, "tide: the %s, by thread %d, at:\n", acc, tid);
    if (from < n)
        tidei_crash_print_stack(2, p + from, n - from < TIDE_GUARD_DEPTH ? n - from : TIDE_GUARD_DEPTH, true);
    else if (pc)
        tidei_crash_print_stack(2, &pc, 1, true);
    print_slot_stacks(2, &sl, best_state);
    return true;
}

/* The crash report's words for address a, if it is the guard's (the
 * region or the slot table): true after printing them. */
bool tidei_guard_describe(int fd, uintptr_t a)
{
    if (!guard_n)
        return false;
    if (a - (uintptr_t)guard_slots < guard_meta_bytes) {
        tidei_printf(fd, "tide's metadata (the table of guarded slots)");
        return true;
    }
    if (!tidei_guard_holds(a))
        return false;
    long i = slot_of(a);
    if (i < 0) {
        tidei_printf(fd, "a guard page of tide's guarded slots");
        return true;
    }
    guard_slot_t *sl = &guard_slots[i];
    int st = atomic_load_explicit(&sl->state, acquire);
    if (st == SLOT_LIVE || st == SLOT_FREED) {
        tidei_printf(fd, "guarded slot %ld: ", i);
        print_where(fd, a, sl, st == SLOT_FREED);
    } else {
        tidei_printf(fd, "guarded slot %ld (%s)", i, st == SLOT_EMPTY ? "never used" : "changing hands");
    }
    return true;
}

/* ---- for the heap walk, the leak checker, the stats, fork ---- */

void tidei_guard_region(uintptr_t *lo, uintptr_t *hi)
{
    *lo = guard_base;
    *hi = guard_end;
}

/* Calls fn for every live guarded block.  Takes guard_lock. */
void tidei_guard_each_live(void (*fn)(void *arg, uintptr_t p, size_t size), void *arg)
{
    if (!guard_n)
        return;
    pthread_mutex_lock(&guard_lock);
    for (size_t i = 0; i < guard_n; i++)
        if (atomic_load_explicit(&guard_slots[i].state, acquire) == SLOT_LIVE)
            fn(arg, guard_slots[i].block, guard_slots[i].size);
    pthread_mutex_unlock(&guard_lock);
}

void tidei_guard_counts(uint64_t *n_malloc, uint64_t *n_free, uint64_t *live_bytes)
{
    *n_malloc = atomic_load_explicit(&n_guarded, relaxed);
    *n_free = atomic_load_explicit(&n_guard_freed, relaxed);
    *live_bytes = atomic_load_explicit(&guard_live_bytes, relaxed);
}

tide_cold void tidei_guard_fork_prepare(void)
{
    pthread_mutex_lock(&guard_lock);
}

tide_cold void tidei_guard_fork_parent(void)
{
    pthread_mutex_unlock(&guard_lock);
}

tide_cold void tidei_guard_fork_child(void)
{
    pthread_mutex_unlock(&guard_lock);
}

/* tide_block_info of address p in the region (walk.c). */
void tidei_guard_block_info(const void *p, struct tide_block_info *out)
{
    long i = slot_of((uintptr_t)p);
    if (i < 0)
        return;  /* a guard page: not a block */
    guard_slot_t *sl = &guard_slots[i];
    int st = atomic_load_explicit(&sl->state, acquire);
    if (st == SLOT_LIVE && (uintptr_t)p - sl->block < sl->size) {
        out->state = TIDE_BLOCK_LIVE;
        out->block.ptr = (void *)sl->block;
        out->block.size = sl->size;
        out->block.size_class = TIDE_CLASS_GUARDED;
    } else if (st == SLOT_FREED && (uintptr_t)p - sl->block < sl->size) {
        out->state = TIDE_BLOCK_FREE;
        out->block.ptr = (void *)sl->block;
        out->block.size = sl->size;
        out->block.size_class = TIDE_CLASS_GUARDED;
    }
}
