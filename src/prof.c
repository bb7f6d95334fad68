/* prof.c — the heap profiler's sampler, its table of call stacks, and the
 * profile it writes (docs/profiling.md).
 *
 * Sampling.  Every heap counts down the bytes it hands out (ctr.sample_left,
 * one subtraction on the malloc fast path, which is there anyway: it is
 * also the heap's count of requested bytes).  When the count reaches zero
 * the allocation takes the slow path to tidei_prof_event, which draws the
 * next interval from an exponential distribution of mean prof_sample.  So
 * bytes are sampled as a Poisson process: an allocation of n bytes is
 * sampled with probability 1 - exp(-n/prof_sample), whatever came before,
 * and counting each sample 1/(1 - exp(-n/prof_sample)) times gives unbiased
 * estimates.  With profiling off the countdown is armed at 2^40 bytes:
 * it runs out once per TiB asked for, is armed again, and samples
 * nothing (it stays a countdown: its charge marks the malloc fast path
 * for the scavenger, tidei_fast_charge).
 *
 * Every allocation path charges a countdown (alloc.c): small, large and
 * huge blocks, every entry point; a thread with no heap yet gets one at its
 * first allocation of any size, and a thread whose heap is gone charges the
 * backup heap's, under its lock.  A new heap's first interval starts at its
 * first allocation.  A realloc is a free and an allocation of the new size
 * at the realloc's call site, in place or not (as gperftools and jemalloc
 * count it).
 *
 * A sampled block is served from pages of its own (a large or huge block)
 * and its span remembers the call site: its free takes the large-block path
 * anyway, where one test finds it, so the fast free path of small blocks
 * pays nothing.  A page per sample costs about 4 KiB per 512 KiB allocated.
 * A large or huge block resized in place keeps its pages: the realloc takes
 * its old sample out and marks it again if the sampler picks it.
 *
 * Call stacks come from libgcc's _Unwind_Backtrace (DWARF call frame
 * information, so programs built without frame pointers unwind too),
 * found or loaded at run time (unwind.c): a sample taken before it is
 * there (before tide's constructor, in a process without libgcc_s) has
 * no stack, and is dropped.  It
 * does not call malloc for code whose frame information the loader knows;
 * a malloc from inside it (a JIT's registered frames) is served unsampled,
 * as is any allocation made while the thread takes a sample.
 *
 * leak_check=full records the stack of every allocation instead: the
 * countdown is armed at zero, every malloc comes here, and the block's
 * address is entered in a table with its site (leak.c reads it).  With
 * prof=1 too, profile samples keep their own countdown, prof_left; without
 * it no block is moved to pages of its own.
 *
 * The stack table is append-only: sites live in segments that are never
 * freed, so a profile written from a signal handler can read them without
 * the lock, and a site id stays valid for the life of the process. */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "tide_internal.h"


typedef struct prof_site {
    uint64_t hash;                   /* of the frames */
    uint32_t depth;                  /* frames in pc[] */
    _Atomic uint64_t alloc_w;        /* estimated allocations, in 1/65536 */
    _Atomic uint64_t alloc_b;        /* estimated bytes allocated */
    _Atomic uint64_t live_w;         /* estimated live blocks, in 1/65536 */
    _Atomic uint64_t live_b;         /* estimated live bytes */
    uintptr_t pc[TIDE_PROF_DEPTH];        /* return addresses, innermost first */
} prof_site_t;

/* An entry of the full-mode table: the site of the last allocation made at
 * an address (every allocation overwrites it; frees do not clear it). */
typedef struct prof_addr {
    uintptr_t addr;                  /* block start; 0 = empty slot */
    uint32_t site;                   /* its site */
    uint32_t size;                   /* bytes requested (UINT32_MAX: 4 GiB or more) */
} prof_addr_t;

static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static prof_site_t *prof_seg[TIDE_PROF_SEGS];  /* site id i is prof_seg[i >> 12][i & 4095]; id 0 unused */
static _Atomic uint32_t prof_n_sites;     /* ids handed out, plus one */
static uint32_t *prof_index;              /* open addressing over site ids (prof_lock) */
static size_t prof_index_cap;             /* slots, a power of two */
static prof_addr_t *prof_addrs;           /* full mode: address -> site (prof_lock) */
static size_t prof_addrs_cap, prof_addrs_n;
static _Atomic uint64_t prof_dropped;     /* samples whose stack found no room */
static _Atomic unsigned prof_dumps;       /* profiles written (the %n of prof_file) */
static double prof_mean;                  /* prof_sample, as a double */
static __thread bool prof_inside;         /* the thread is taking a sample */
bool tidei_prof_on;                       /* prof=1 or leak_check: samples are taken */
bool tidei_prof_full;                     /* leak_check=full: every allocation's site */

/* The countdown armed when nothing samples: it runs out every TiB asked
 * for, and is armed again. */
#define NO_SAMPLE ((int64_t)1 << 40)

/* ---- arithmetic without libm ---- */

/* exp(-x) for x >= 0, to about 1e-9. */
double tidei_prof_exp_neg(double x)
{
    if (x > 700)
        return 0;
    double y = x * 1.4426950408889634;  /* x / ln 2 */
    int k = (int)y;
    double f = (y - k) * 0.6931471805599453;  /* exp(-x) = 2^-k * exp(-f) */
    double term = 1, sum = 1;
    for (int i = 1; i < 14; i++) {
        term *= -f / i;
        sum += term;
    }
    while (k-- > 0)
        sum *= 0.5;
    return sum;
}

/* ln(u) for 0 < u <= 1, to about 1e-9. */
double tidei_prof_log_unit(double u)
{
    uint64_t bits;
    memcpy(&bits, &u, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1022;  /* u = m * 2^e, m in [0.5, 1) */
    bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1022 << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int i = 1; i < 30; i += 2) {
        sum += term / i;
        term *= s2;
    }
    return e * 0.6931471805599453 + 2 * sum;
}

/* The weight of a sample of n bytes: how many allocations of that size it
 * stands for (in 1/65536), and how many bytes. */
static void sample_weight(size_t n, uint64_t *w, uint64_t *b)
{
    double p = n ? 1 - tidei_prof_exp_neg((double)n / prof_mean) : 1;
    if (p <= 0)
        p = 1;
    *w = (uint64_t)(65536 / p + 0.5);
    *b = (uint64_t)((double)n / p + 0.5);
}

/* Next interval between samples: exponential of mean prof_sample, >= 1. */
static int64_t next_interval(tide_heap_t *h)
{
    if (!h->prof_rng)
        h->prof_rng = ((uint64_t)h->id << 32) ^ tidei_os_now_ms() ^ (uintptr_t)h ^ 0x9e3779b97f4a7c15ull;
    double v = -tidei_prof_log_unit(tidei_prof_random_unit(&h->prof_rng)) * prof_mean;
    return v < 1 ? 1 : v > 1e15 ? (int64_t)1e15 : (int64_t)v;
}

/* ---- the sampler ---- */

tide_cold void tidei_prof_init(void)
{
    tidei_prof_on = tidei_opt.prof || tidei_opt.leak_check;
    if (tidei_prof_on)  /* else no store: the page is left alone (issue 13) */
        prof_mean = (double)tidei_opt.prof_sample;
    tidei_prof_full = tidei_opt.leak_check == 2;
    tidei_prof_signal_init();
}

/* The countdown of h reached zero or below with an allocation of n bytes
 * (already charged): folds the bytes into the requested count, arms the
 * next countdown, and says what to do with this allocation.  With guard=1
 * the countdown is shared (tidei_prof_event below), and this runs when the
 * profiler's part of it ran out. */
tide_cold int tidei_prof_event_core(tide_heap_t *h, size_t n)
{
    tide_heap_counters_t *c = &h->ctr;
    c->requested = tidei_heap_requested(c);  /* folds the countdown in; it is re-armed below */
    int what = TIDE_PROF_NONE;
    int64_t next = NO_SAMPLE;
    if (tidei_prof_on) {
        if (tidei_prof_full) {
            /* every block records its site; samples on pages of their own
             * only feed a profile */
            next = 0;
            what = TIDE_PROF_RECORD;
            if (tidei_opt.prof && !h->prof_rng)  /* the heap's first event */
                h->prof_left = next_interval(h);
            if (tidei_opt.prof && (h->prof_left -= (int64_t)n) <= 0) {
                h->prof_left = next_interval(h);
                what = TIDE_PROF_SAMPLE;
            }
        } else if (c->sample_armed != 0) {
            what = TIDE_PROF_SAMPLE;
            next = next_interval(h);
        } else {
            /* a new heap (its countdown was never armed): the first
             * interval starts at this allocation, which is sampled if the
             * interval ends inside it */
            next = next_interval(h);
            if (next <= (int64_t)n) {
                what = TIDE_PROF_SAMPLE;
                next = next_interval(h);
            } else {
                next -= (int64_t)n;
            }
        }
        if (prof_inside)  /* an allocation made while taking a sample */
            what = TIDE_PROF_NONE;
    }
    c->sample_armed = next;
    __atomic_store_n(&c->sample_left, next, __ATOMIC_RELAXED);  /* the scavenger reads it (fast_inside) */
    return what;
}

/* ---- what guard.c shares ---- */

/* The event of h's countdown (see tidei_prof_event_core).  With guard=1
 * the guard takes its samples from the same countdown (guard.c), so that
 * the malloc fast path has one test whatever is on. */
tide_cold int tidei_prof_event(tide_heap_t *h, size_t n)
{
    /* The countdown's twin follows it (tidei_fast_charge): equal, unless
     * this allocation is a signal handler's that interrupted a malloc's
     * fast path, which must still read as inside afterwards. */
    int64_t apart = h->ctr.fast_left - h->ctr.sample_left;
    int what = tide_unlikely(tidei_guard_on) ? tidei_guard_event(h, n) : tidei_prof_event_core(h, n);
    __atomic_store_n(&h->ctr.fast_left, h->ctr.sample_left + apart, __ATOMIC_RELEASE);
    return what;
}

/* The functions through which a program enters tide to allocate: the
 * profiler's stacks start at the caller of the outermost of them. */
bool tidei_prof_is_entry_point(uintptr_t fn)
{
    static void *const entries[] = {
        (void *)malloc, (void *)calloc, (void *)realloc, (void *)reallocarray, (void *)aligned_alloc,
        (void *)memalign, (void *)posix_memalign, (void *)valloc, (void *)pvalloc,
        (void *)tidei_calloc, (void *)tidei_realloc, (void *)tidei_aligned,
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if ((uintptr_t)entries[i] == fn)
            return true;
    return tidei_alloc_is_entry(fn) || tidei_override_is_entry(fn) || tidei_free_is_entry(fn);
}

/* Frames collected by the unwinder: return addresses, and the start of the
 * function each lies in (to find where the program called tide). */
typedef struct unwind_state {
    uintptr_t pc[TIDE_PROF_DEPTH + 16];
    uintptr_t fn[TIDE_PROF_DEPTH + 16];
    int n;
} unwind_state_t;

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    unwind_state_t *u = arg;
    uintptr_t ip = tidei_unwind_ip(ctx);
    if (!ip || u->n == TIDE_PROF_DEPTH + 16)
        return _URC_END_OF_STACK;
    u->pc[u->n] = ip;
    u->fn[u->n] = tidei_unwind_region_start(ctx);
    u->n++;
    return _URC_NO_REASON;
}

/* For guard.c: the calling thread's stack, up to max return addresses
 * into pc[] and the start of the function each lies in into fn[],
 * innermost first (the caller of this function first).  Returns how many. */
int tidei_prof_unwind(uintptr_t *pc, uintptr_t *fn, int max)
{
    unwind_state_t u;
    u.n = 0;
    tidei_unwind_backtrace(unwind_step, &u);
    int n = u.n - 1 < max ? u.n - 1 : max;
    for (int i = 0; i < n; i++) {
        pc[i] = u.pc[i + 1];
        fn[i] = u.fn[i + 1];
    }
    return n > 0 ? n : 0;
}

static uint64_t hash_frames(const uintptr_t *pc, int n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        h ^= pc[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h | 1;
}

tide_inline prof_site_t *site_at(uint32_t id)
{
    return &prof_seg[id >> TIDE_PROF_SEG_SHIFT][id & ((1u << TIDE_PROF_SEG_SHIFT) - 1)];
}

/* Doubles the site index.  prof_lock held. */
static bool index_grow(void)
{
    size_t cap = prof_index_cap ? prof_index_cap * 2 : 4096;
    uint32_t *idx = tidei_os_map(cap * sizeof *idx);
    if (!idx)
        return false;
    uint32_t n = atomic_load_explicit(&prof_n_sites, relaxed);
    for (uint32_t id = 1; id < n; id++) {
        size_t i = site_at(id)->hash & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = id;
    }
    if (prof_index)
        tidei_scratch_unmap(prof_index, prof_index_cap * sizeof *prof_index);
    prof_index = idx;
    prof_index_cap = cap;
    return true;
}

/* The id of the site with these frames, made if new; 0 if out of room. */
static uint32_t site_find(const uintptr_t *pc, int n)
{
    uint64_t hash = hash_frames(pc, n);
    pthread_mutex_lock(&prof_lock);
    uint32_t id = 0;
    uint32_t count = atomic_load_explicit(&prof_n_sites, relaxed);
    if (!count)
        count = 1;
    if ((size_t)count * 2 >= prof_index_cap && !index_grow())
        goto out;
    size_t i = hash & (prof_index_cap - 1);
    for (; prof_index[i]; i = (i + 1) & (prof_index_cap - 1)) {
        prof_site_t *s = site_at(prof_index[i]);
        if (s->hash == hash && s->depth == (uint32_t)n && memcmp(s->pc, pc, n * sizeof *pc) == 0) {
            id = prof_index[i];
            goto out;
        }
    }
    if (count >= (uint32_t)TIDE_PROF_SEGS << TIDE_PROF_SEG_SHIFT)
        goto out;
    if (!prof_seg[count >> TIDE_PROF_SEG_SHIFT]) {
        prof_site_t *seg = tidei_os_map(sizeof(prof_site_t) << TIDE_PROF_SEG_SHIFT);
        if (!seg)
            goto out;
        prof_seg[count >> TIDE_PROF_SEG_SHIFT] = seg;
    }
    prof_site_t *s = site_at(count);
    s->hash = hash;
    s->depth = (uint32_t)n;
    memcpy(s->pc, pc, n * sizeof *pc);
    prof_index[i] = count;
    id = count;
    atomic_store_explicit(&prof_n_sites, count + 1, release);  /* readers see the site filled in */
out:
    pthread_mutex_unlock(&prof_lock);
    return id;
}

/* The site of the calling allocation: the stack above the outermost tide
 * entry point (malloc, calloc, ...) in the frames; 0 if none. */
static uint32_t prof_site_here(void)
{
    if (prof_inside)
        return 0;
    prof_inside = true;
    unwind_state_t u;
    u.n = 0;
    tidei_unwind_backtrace(unwind_step, &u);
    int from = 0;
    for (int i = 0; i < u.n; i++)
        if (tidei_prof_is_entry_point(u.fn[i]))
            from = i + 1;
    int n = u.n - from;
    if (n > TIDE_PROF_DEPTH)
        n = TIDE_PROF_DEPTH;
    uint32_t id = n > 0 ? site_find(u.pc + from, n) : 0;
    if (!id)
        atomic_fetch_add_explicit(&prof_dropped, 1, relaxed);
    prof_inside = false;
    return id;
}

/* Counts a sample of n bytes at site id in (or out of, sign -1) the
 * profile. */
static void site_count(uint32_t id, size_t n, int sign)
{
    prof_site_t *s = site_at(id);
    uint64_t w, b;
    sample_weight(n, &w, &b);
    if (sign > 0) {
        atomic_fetch_add_explicit(&s->alloc_w, w, relaxed);
        atomic_fetch_add_explicit(&s->alloc_b, b, relaxed);
        atomic_fetch_add_explicit(&s->live_w, w, relaxed);
        atomic_fetch_add_explicit(&s->live_b, b, relaxed);
    } else {
        atomic_fetch_sub_explicit(&s->live_w, w, relaxed);
        atomic_fetch_sub_explicit(&s->live_b, b, relaxed);
    }
}

static void prof_record(void *p, size_t n, uint32_t id);

/* Makes the block of large or huge span s (n bytes requested) a sample of
 * site id (nothing if id is 0: no stack): its span remembers the site, which
 * the free path finds (free.c), and the site counts it. */
static void prof_mark(tide_span_t *s, size_t n, uint32_t id)
{
    if (!id)
        return;
    s->prof_site = id;
    s->prof_size = n;
    site_count(id, n, 1);
    if (tidei_prof_full)
        prof_record((void *)s->start, n, id);
}

/* The allocation under way served block p of n bytes after the sampler's
 * event what: TIDE_PROF_SAMPLE (p is a large or huge block with pages of
 * its own, which becomes a sample of the call site) or TIDE_PROF_RECORD
 * (any block; leak_check=full keeps its call site).  With tidei_prof_event
 * and tidei_prof_free, the whole of the profiler that allocation sees. */
void tidei_prof_took(void *p, size_t n, int what)
{
    uint32_t id = prof_site_here();
    if (what == TIDE_PROF_SAMPLE)
        prof_mark(tidei_pagemap_lookup(p), n, id);
    else
        prof_record(p, n, id);
}

/* The sampled block of span s is being freed (or resized: realloc counts
 * it again at its new size if the sampler takes it again). */
void tidei_prof_free(tide_span_t *s)
{
    site_count(s->prof_site, s->prof_size, -1);
    s->prof_site = 0;
}

/* Doubles the full-mode address table.  prof_lock held. */
static bool addrs_grow(void)
{
    size_t cap = prof_addrs_cap ? prof_addrs_cap * 2 : (size_t)1 << 16;
    prof_addr_t *t = tidei_os_map(cap * sizeof *t);
    if (!t)
        return false;
    for (size_t j = 0; j < prof_addrs_cap; j++) {
        if (!prof_addrs[j].addr)
            continue;
        size_t i = tidei_hash_word(prof_addrs[j].addr) & (cap - 1);
        while (t[i].addr)
            i = (i + 1) & (cap - 1);
        t[i] = prof_addrs[j];
    }
    if (prof_addrs)
        tidei_scratch_unmap(prof_addrs, prof_addrs_cap * sizeof *prof_addrs);
    prof_addrs = t;
    prof_addrs_cap = cap;
    return true;
}

/* leak_check=full: block p of n bytes was allocated at site id. */
static void prof_record(void *p, size_t n, uint32_t id)
{
    uintptr_t a = (uintptr_t)p;
    pthread_mutex_lock(&prof_lock);
    if ((prof_addrs_n + 1) * 2 < prof_addrs_cap || addrs_grow()) {
        size_t mask = prof_addrs_cap - 1;
        size_t i = tidei_hash_word(a) & mask;
        while (prof_addrs[i].addr && prof_addrs[i].addr != a)
            i = (i + 1) & mask;
        if (!prof_addrs[i].addr)
            prof_addrs_n++;
        prof_addrs[i].addr = a;
        prof_addrs[i].site = id;
        prof_addrs[i].size = n >= UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    }
    pthread_mutex_unlock(&prof_lock);
}

/* The site and requested size recorded for live block p: from its span if
 * it was sampled, from the full-mode table otherwise.  Returns 0 if none
 * (then *size is left alone). */
uint32_t tidei_prof_lookup(const void *p, size_t *size)
{
    tide_span_t *s = tidei_pagemap_lookup(p);
    if (s && s->kind != TIDE_SPAN_SMALL && s->prof_site && s->start == (uintptr_t)p) {
        *size = s->prof_size;
        return s->prof_site;
    }
    uint32_t id = 0;
    pthread_mutex_lock(&prof_lock);
    if (prof_addrs_cap) {
        uintptr_t a = (uintptr_t)p;
        size_t mask = prof_addrs_cap - 1;
        for (size_t i = tidei_hash_word(a) & mask; prof_addrs[i].addr; i = (i + 1) & mask) {
            if (prof_addrs[i].addr == a) {
                id = prof_addrs[i].site;
                if (prof_addrs[i].size != UINT32_MAX)
                    *size = prof_addrs[i].size;
                break;
            }
        }
    }
    pthread_mutex_unlock(&prof_lock);
    return id;
}

/* The profiler's tables that hold block addresses or are big: [lo, hi)
 * pairs into out (room for max pairs); returns how many. */
int tidei_prof_scratch(uintptr_t *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&prof_lock);
    if (prof_addrs && n < max) {
        out[2 * n] = (uintptr_t)prof_addrs;
        out[2 * n + 1] = (uintptr_t)(prof_addrs + prof_addrs_cap);
        n++;
    }
    if (prof_index && n < max) {
        out[2 * n] = (uintptr_t)prof_index;
        out[2 * n + 1] = (uintptr_t)(prof_index + prof_index_cap);
        n++;
    }
    pthread_mutex_unlock(&prof_lock);
    return n;
}

/* The frames of site id (innermost first) and their count. */
const uintptr_t *tidei_prof_frames(uint32_t id, int *n)
{
    prof_site_t *s = site_at(id);
    *n = (int)s->depth;
    return s->pc;
}

/* ---- the profile ---- */

/* Copies /proc/self/maps to fd (read and write, no allocation). */
int tidei_prof_copy_maps(int fd)
{
    int in = tidei_os_open_proc("maps", 0);
    if (in < 0)
        return -1;
    char buf[4096];
    int err = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = r < 0 ? -1 : 0;
            break;
        }
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(fd, buf + done, (size_t)(r - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                err = -1;
                goto out;
            }
            done += w;
        }
    }
out:
    close(in);
    return err;
}

/* Writes the profile to fd: gperftools' text heap profile with the
 * estimates already un-sampled ("heapprofile": readers scale nothing). */
static int write_profile(int fd)
{
    uint32_t n = atomic_load_explicit(&prof_n_sites, acquire);
    uint64_t tw = 0, tb = 0, aw = 0, ab = 0;
    for (uint32_t id = 1; id < n; id++) {
        prof_site_t *s = site_at(id);
        tw += atomic_load_explicit(&s->live_w, relaxed);
        tb += atomic_load_explicit(&s->live_b, relaxed);
        aw += atomic_load_explicit(&s->alloc_w, relaxed);
        ab += atomic_load_explicit(&s->alloc_b, relaxed);
    }
    int err = tidei_printf(fd, "heap profile: %lu: %lu [%lu: %lu] @ heapprofile\n", (unsigned long)(tw >> 16),
                           (unsigned long)tb, (unsigned long)(aw >> 16), (unsigned long)ab);
    for (uint32_t id = 1; id < n && !err; id++) {
        prof_site_t *s = site_at(id);
        uint64_t a = atomic_load_explicit(&s->alloc_w, relaxed);
        if (!a)
            continue;
        /* pprof subtracts 1 from every address but the first, to land in
         * the call instruction: the first is done here */
        err |= tidei_printf(fd, "%lu: %lu [%lu: %lu] @",
                            (unsigned long)((atomic_load_explicit(&s->live_w, relaxed) + 32768) >> 16),
                            (unsigned long)atomic_load_explicit(&s->live_b, relaxed),
                            (unsigned long)((a + 32768) >> 16),
                            (unsigned long)atomic_load_explicit(&s->alloc_b, relaxed));
        for (uint32_t i = 0; i < s->depth && !err; i++)
            err |= tidei_printf(fd, " 0x%lx", (unsigned long)(s->pc[i] - (i == 0)));
        err |= tidei_printf(fd, "\n");
    }
    err |= tidei_printf(fd, "\nMAPPED_LIBRARIES:\n");
    err |= tidei_prof_copy_maps(fd);
    return err ? -1 : 0;
}

static int prof_write(const char *path)
{
    if (!tidei_prof_on || !tidei_opt.prof) {
        errno = EINVAL;
        return -1;
    }
    unsigned seq = atomic_fetch_add_explicit(&prof_dumps, 1, relaxed);
    int fd = path ? tidei_open_report(path, false) : tidei_open_output(tidei_opt.prof_file, seq, false);
    if (fd < 0)
        return -1;
    int r = write_profile(fd);
    int e = errno;
    if (close(fd) != 0 && r == 0)
        return -1;
    errno = e;
    return r;
}

tide_export int tide_prof_dump(const char *path)
{
    tidei_init();
    tidei_busy_enter();
    int r = prof_write(path);
    tidei_busy_leave();
    return r;
}

static void on_prof_signal(int sig)
{
    (void)sig;
    int saved = errno;
    tidei_busy_enter();
    prof_write(NULL);
    tidei_busy_leave();
    errno = saved;
}

tide_cold void tidei_prof_signal_init(void)
{
    if (tidei_opt.prof_signal > 0 && tidei_opt.prof)
        tidei_report_on_signal(tidei_opt.prof_signal, on_prof_signal, "prof_signal");
}

/* At exit: the profile (prof=1), then the leak check (leak.c), which may
 * end the process with leak_exitcode. */
tide_cold void tidei_prof_at_exit(void)
{
    if (!tidei_prof_on)
        return;
    if (tidei_opt.prof && prof_write(NULL) != 0)
        tidei_warn("tide: cannot write the heap profile %s (errno %d)\n", tidei_opt.prof_file, errno);
    uint64_t dropped = atomic_load_explicit(&prof_dropped, relaxed);
    if (dropped && tidei_opt.verbose)
        tidei_warn("tide: %lu samples had no stack\n", (unsigned long)dropped);
}
