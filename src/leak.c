/* leak.c — the leak checker (leak_check=1|full, tide_leak_check).
 *
 * A leak is a live block that nothing the program can still reach points
 * to.  The check is conservative marking, as a garbage collector's:
 *   1. record every live block (walk.c) and sort them by address;
 *   2. scan the roots: every readable, writable, private mapping of the
 *      process that is not tide's own memory.  That is the data and bss of
 *      every loaded module, every thread's stack (the calling thread's from
 *      its stack pointer up, its registers spilled there first, or at exit
 *      from exit's caller's frame up, with that frame's registers; a stopped
 *      thread's from its handler's frame up, stack_floor), thread-
 *      local storage (static TLS sits in the stacks' mappings or in the
 *      loader's; dynamic TLS blocks are tide blocks reached from the
 *      thread's DTV), and memory other allocators got from mmap (CPython's
 *      object arenas, for one: scanning it is what keeps a Python program
 *      from being reported whole).  Tide's chunks, huge blocks, metadata,
 *      page map and the profiler's tables are skipped: they are the heap
 *      being judged, or tide's bookkeeping, which points at every block;
 *      so is the scavenger's stack (scav.c), whose dead frames hold the
 *      addresses of free ranges since reused for blocks;
 *   3. every aligned word that points into a live block, at its start or
 *      inside it, marks the block, whose words are scanned in turn;
 *   4. an unmarked block is leaked: directly if no other leaked block
 *      points to it, indirectly otherwise (freeing the direct ones would
 *      free those).
 * A word that only looks like a pointer keeps a block alive, so a check can
 * miss a leak; it cannot report a block the program can still reach
 * through an ordinary pointer.
 *
 * Other threads are stopped first, so that the heap holds still and their
 * registers are in memory: each gets a signal (SIGRTMAX-3, unless the
 * program handles it) whose handler waits until the check is over, its
 * registers saved in the signal frame on its stack.  A thread interrupted
 * inside tide is asked again a moment later; one that never answers (it
 * blocks the signal) is left running, and its registers are not seen.
 *
 * The report groups leaked blocks by the stack that allocated them
 * (prof.c: sampled blocks carry one; leak_check=full gives every block
 * one), biggest first, and counts the blocks without one.  Every buffer
 * here is mapped for the purpose and never comes from the heap. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tide_internal.h"

typedef struct leak_range {
    uintptr_t lo, hi;
} leak_range_t;

enum { UNMARKED = 0, REACHABLE = 1, INDIRECT = 2 };

/* The state of one check. */
typedef struct leak {
    tidei_scratch_t blocks;      /* live blocks (walk.c), sorted by address */
    struct tide_block *b;        /* blocks.p */
    size_t n;                    /* blocks.n */
    uint8_t *mark;               /* per block: UNMARKED, REACHABLE, INDIRECT */
    size_t mark_bytes;           /* size of mark's mapping */
    uintptr_t lo, hi;            /* from the first block's start to the last one's end */
    tidei_scratch_t stack;       /* blocks marked, not yet scanned (size_t) */
    tidei_scratch_t skip;        /* tide's own ranges (leak_range_t), sorted */
    uintptr_t maps_guard_end;    /* scan_maps: the end of the last line if it was guard pages */
    int pagemap;                 /* /proc/self/pagemap, or -1: every page is scanned */
    uintptr_t step;              /* scan_words reads a word every step bytes: 8, or 1 in code */
} leak_t;

/* ---- sorting without qsort (which may allocate) ---- */

/* The key each array is sorted by: blocks and ranges by address, groups
 * by bytes, biggest first. */
typedef uint64_t (*sort_key_fn)(const void *e);

static void swap_elems(char *a, char *b, size_t size)
{
    char t[32];  /* the biggest element sorted is 24 bytes */
    tide_debug_assert(size <= sizeof t);
    memcpy(t, a, size);
    memcpy(a, b, size);
    memcpy(b, t, size);
}

static void sift(char *base, size_t size, sort_key_fn key, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && key(base + (c + 1) * size) > key(base + c * size))
            c++;
        if (key(base + c * size) <= key(base + i * size))
            return;
        swap_elems(base + i * size, base + c * size, size);
        i = c;
    }
}

/* Heapsort of n elements of size bytes by ascending key. */
static void sort_by(void *base, size_t n, size_t size, sort_key_fn key)
{
    char *b = base;
    for (size_t i = n / 2; i-- > 0;)
        sift(b, size, key, i, n);
    for (size_t end = n; end-- > 1;) {
        swap_elems(b, b + end * size, size);
        sift(b, size, key, 0, end);
    }
}

static uint64_t block_key(const void *e)
{
    return (uintptr_t)((const struct tide_block *)e)->ptr;
}

static uint64_t range_key(const void *e)
{
    return ((const leak_range_t *)e)->lo;
}

/* ---- marking ---- */

/* The index of the live block containing address v, or SIZE_MAX. */
static size_t find_block(const leak_t *l, uintptr_t v)
{
    if (v - l->lo >= l->hi - l->lo)
        return SIZE_MAX;
    size_t lo = 0, hi = l->n;  /* the last block starting at or below v */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)l->b[mid].ptr <= v)
            lo = mid;
        else
            hi = mid;
    }
    uintptr_t start = (uintptr_t)l->b[lo].ptr;
    return v >= start && v - start < l->b[lo].size ? lo : SIZE_MAX;
}

/* Scans [lo, hi) word by word (the words at every l->step bytes): blocks
 * it points to whose mark is `from` get mark `to` (and go on the stack
 * when to is REACHABLE).  `self` is never marked (a block pointing to
 * itself). */
__attribute__((no_sanitize("address", "thread"))) static void scan_words(leak_t *l, uintptr_t lo, uintptr_t hi,
                                                                         uint8_t from, uint8_t to, size_t self)
{
    lo = (lo + l->step - 1) & ~(l->step - 1);
    for (uintptr_t a = lo; a + 8 <= hi; a += l->step) {
        uintptr_t v;
        __builtin_memcpy(&v, (const void *)a, sizeof v);
        size_t i = find_block(l, v);
        if (i == SIZE_MAX || i == self || l->mark[i] != from)
            continue;
        l->mark[i] = to;
        if (to == REACHABLE) {
            size_t *e = tidei_scratch_push(&l->stack);
            if (e)
                *e = i;
        }
    }
}


typedef struct scan_args {
    leak_t *l;
    uint8_t from, to;
    size_t self;
} scan_args_t;

static void scan_run(uintptr_t lo, uintptr_t hi, void *arg)
{
    scan_args_t *a = arg;
    scan_words(a->l, lo, hi, a->from, a->to, a->self);
}

/* scan_words over the pages of [lo, hi) that have been written
 * (tidei_os_each_written).  A program that maps gigabytes and uses a
 * little (the JVM's heap reservation, a sparse table, a huge block from
 * calloc) would otherwise have it all made resident, and wait seconds for
 * it, at the check.  Short ranges are scanned whole. */
static void scan(leak_t *l, uintptr_t lo, uintptr_t hi, uint8_t from, uint8_t to, size_t self)
{
    if (hi - lo < TIDE_SPARSE_MIN)
        return scan_words(l, lo, hi, from, to, self);
    scan_args_t a = { l, from, to, self };
    tidei_os_each_written(l->pagemap, lo, hi, scan_run, &a);
}

/* Marks everything reachable from the blocks on the stack. */
static void drain(leak_t *l)
{
    while (l->stack.n) {
        size_t i = ((size_t *)l->stack.p)[--l->stack.n];
        uintptr_t p = (uintptr_t)l->b[i].ptr;
        scan(l, p, p + l->b[i].size, UNMARKED, REACHABLE, i);
    }
}

/* Scans [lo, hi) minus tide's own ranges as a root; code (a writable,
 * executable mapping: a JIT's) at every byte, since the address of a block
 * an instruction uses is an immediate at any offset. */
static void scan_root(leak_t *l, uintptr_t lo, uintptr_t hi, bool code)
{
    l->step = code ? 1 : 8;
    const leak_range_t *sk = l->skip.p;
    for (size_t k = 0; k < l->skip.n && lo < hi; k++) {
        if (sk[k].hi <= lo)
            continue;
        if (sk[k].lo >= hi)
            break;
        if (sk[k].lo > lo)
            scan(l, lo, sk[k].lo, UNMARKED, REACHABLE, SIZE_MAX);
        lo = sk[k].hi;
    }
    if (lo < hi)
        scan(l, lo, hi, UNMARKED, REACHABLE, SIZE_MAX);
    l->step = 8;
    drain(l);
}

static void skip_add(leak_t *l, uintptr_t lo, size_t len)
{
    leak_range_t *r = tidei_scratch_push(&l->skip);
    if (r) {
        r->lo = lo;
        r->hi = lo + len;
    }
}

static void skip_mapping(uintptr_t start, size_t bytes, void *l)
{
    skip_add(l, start, bytes);
}

/* Tide's own memory, which is not a root. */
static void collect_skips(leak_t *l)
{
    tidei_arena_each_mapping(skip_mapping, l);
    for (size_t t = 0; t < ((size_t)1 << TIDE_MAP_TOP_BITS); t++) {
        tide_span_t **leaf = atomic_load_explicit(&tidei_pagemap[t], relaxed);
        if (leaf)
            skip_add(l, (uintptr_t)leaf, ((size_t)1 << TIDE_MAP_LEAF_BITS) * sizeof *leaf);
    }
    if (tidei_pagemap_flat.n_pages)
        skip_add(l, (uintptr_t)tidei_pagemap_flat.map, tidei_pagemap_flat.n_pages * sizeof *tidei_pagemap_flat.map);
    uintptr_t glo, ghi;
    if (tidei_scav_stack(&glo, &ghi))
        skip_add(l, glo, ghi - glo);
    tidei_guard_region(&glo, &ghi);
    if (ghi)
        skip_add(l, glo, ghi - glo);
    leak_range_t pr[8];
    int np = tidei_prof_scratch((uintptr_t *)pr, 8);
    for (int i = 0; i < np; i++)
        skip_add(l, pr[i].lo, pr[i].hi - pr[i].lo);
    skip_add(l, (uintptr_t)l->blocks.p, l->blocks.cap * l->blocks.elem);
    skip_add(l, (uintptr_t)l->mark, l->mark_bytes);
    /* the stack and this list grow while they are used: reserve them now */
    for (int i = 0; i < 2; i++) {
        tidei_scratch_t *s = i ? &l->stack : &l->skip;
        size_t n = s->n;
        while (s->cap < (i ? l->n + 1 : s->n + 8) && tidei_scratch_push(s))
            ;
        s->n = n;
    }
    skip_add(l, (uintptr_t)l->stack.p, l->stack.cap * l->stack.elem);
    skip_add(l, (uintptr_t)l->skip.p, l->skip.cap * l->skip.elem);
    sort_by(l->skip.p, l->skip.n, sizeof(leak_range_t), range_key);
}

/* Parses a hex number at *s, moving past it. */
static uintptr_t parse_hex(const char **s)
{
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v * 16 + (uintptr_t)d;
    }
}

static uintptr_t stack_floor(uintptr_t lo, uintptr_t hi);

/* Scans one line of /proc/self/maps as a root if it is readable, writable
 * and private, and not a device.  The mapping holding sp is scanned from
 * sp up (below it lie dead frames); so is a thread's stack from the frame
 * of the handler that stopped it (stack_floor), when the line is one: the
 * main thread's, or one just above guard pages, as glibc maps a thread's.
 * (A stack the program placed inside a bigger mapping of its own is
 * scanned whole: the floor could cut off the data below it.) */
static void scan_maps_line(leak_t *l, const char *line, uintptr_t sp)
{
    const char *s = line;
    uintptr_t lo = parse_hex(&s);
    if (*s++ != '-')
        return;
    uintptr_t hi = parse_hex(&s);
    if (*s++ != ' ')
        return;
    bool above_guard = l->maps_guard_end == lo;
    l->maps_guard_end = s[0] == '-' && s[1] == '-' && s[2] == '-' ? hi : 0;
    if (s[0] != 'r' || s[1] != 'w' || s[3] != 'p')
        return;
    const char *path = s;
    for (int field = 0; field < 4 && *path; field++) {  /* perms offset dev inode */
        while (*path && *path != ' ')
            path++;
        while (*path == ' ')
            path++;
    }
    if (strncmp(path, "/dev/", 5) == 0 && strncmp(path, "/dev/zero", 9) != 0)
        return;
    if (strncmp(path, "[vvar]", 6) == 0 || strncmp(path, "[vsyscall]", 10) == 0)
        return;
    if (sp >= lo && sp < hi)
        lo = sp & ~(uintptr_t)7;
    else if (above_guard || strncmp(path, "[stack]", 7) == 0)
        lo = stack_floor(lo, hi);
    scan_root(l, lo, hi, s[2] == 'x');
}

/* Scans every root listed in /proc/self/maps. */
static bool scan_maps(leak_t *l, uintptr_t sp)
{
    int fd = tidei_os_open_proc("maps", 0);
    if (fd < 0)
        return false;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = 0;
            scan_maps_line(l, line, sp);
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)  /* a line longer than the buffer: drop it */
            have = 0;
    }
    close(fd);
    return true;
}

/* ---- the report ---- */

typedef struct group {
    uint64_t key;                /* site * 2 + indirect; all ones = empty slot */
    size_t blocks, bytes;
} group_t;

static uint64_t group_key(const void *e)
{
    return ~(uint64_t)((const group_t *)e)->bytes;  /* biggest first */
}

static int open_leak_file(void)
{
    int fd = tidei_open_output(tidei_opt.leak_file, 0, true);
    if (fd < 0)
        tidei_warn("tide: cannot open leak_file %s (errno %d); reporting on stderr\n", tidei_opt.leak_file, errno);
    return fd < 0 ? 2 : fd;
}

static int print_group(int fd, const group_t *g)
{
    uint32_t site = (uint32_t)(g->key >> 1);
    const char *how = g->key & 1 ? "indirectly" : "directly";
    if (!site)
        return tidei_printf(fd, "tide: %zu bytes in %zu blocks leaked %s with no recorded stack%s\n", g->bytes,
                            g->blocks, how,
                            tidei_prof_full ? "" : " (leak_check=full records every stack)");
    int err = tidei_printf(fd, "tide: %zu bytes in %zu blocks leaked %s, allocated at:\n", g->bytes, g->blocks, how);
    int n;
    const uintptr_t *pc = tidei_prof_frames(site, &n);
    for (int i = 0; i < n && !err; i++) {
        char sym[512];
        tidei_symbolize(pc[i] - 1, sym, sizeof sym);  /* in the call, not after it */
        err |= tidei_printf(fd, "    #%d 0x%lx %s\n", i, (unsigned long)pc[i], sym);
    }
    return err;
}

/* Groups the leaked blocks by site and kind and prints the report.
 * Returns the number of leaked blocks. */
static size_t leak_report(leak_t *l)
{
    size_t leaked = 0, leaked_bytes = 0, direct = 0, kept = 0, kept_bytes = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->mark[i] == REACHABLE) {
            kept++;
            kept_bytes += l->b[i].size;
        } else {
            leaked++;
            direct += l->mark[i] == UNMARKED;
        }
    }
    int fd = open_leak_file();
    if (!leaked) {
        tidei_printf(fd, "tide: leak check: no leaks; %zu bytes in %zu blocks still reachable\n", kept_bytes, kept);
        if (fd != 2)
            close(fd);
        return 0;
    }
    size_t cap = 16;
    while (cap < 2 * leaked)
        cap *= 2;
    group_t *g = tidei_os_map(cap * sizeof *g);
    if (!g) {
        tidei_printf(fd, "tide: leak check: %zu blocks leaked (no memory to group them)\n", leaked);
        if (fd != 2)
            close(fd);
        return leaked;
    }
    memset(g, 0xff, cap * sizeof *g);
    size_t n_groups = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->mark[i] == REACHABLE)
            continue;
        size_t bytes = l->b[i].size;
        uint32_t site = tidei_prof_lookup(l->b[i].ptr, &bytes);
        leaked_bytes += bytes;
        uint64_t key = (uint64_t)site * 2 + (l->mark[i] == INDIRECT);
        size_t k = (size_t)tidei_hash_word(key) & (cap - 1);
        while (g[k].key != UINT64_MAX && g[k].key != key)
            k = (k + 1) & (cap - 1);
        if (g[k].key == UINT64_MAX) {
            g[k].key = key;
            g[k].blocks = g[k].bytes = 0;
            n_groups++;
        }
        g[k].blocks++;
        g[k].bytes += bytes;
    }
    size_t m = 0;
    for (size_t k = 0; k < cap; k++)
        if (g[k].key != UINT64_MAX)
            g[m++] = g[k];
    sort_by(g, m, sizeof *g, group_key);
    int err = tidei_printf(fd, "tide: leak check: %zu bytes leaked in %zu blocks (%zu direct, %zu indirect); "
                               "%zu bytes in %zu blocks still reachable\n",
                           leaked_bytes, leaked, direct, leaked - direct, kept_bytes, kept);
    for (int pass = 0; pass < 2; pass++)  /* direct leaks first */
        for (size_t k = 0; k < m && !err; k++)
            if ((int)(g[k].key & 1) == pass)
                err |= print_group(fd, &g[k]);
    tidei_symbolize_done();
    tidei_scratch_unmap(g, cap * sizeof *g);
    if (fd != 2)
        close(fd);
    return leaked;
}

/* ---- stopping the other threads ---- */

enum { PARK_SENT = 0, PARK_STOPPED, PARK_MISSED };

static struct {
    _Atomic int active;          /* threads must stop (the handler checks it) */
    int sig;                     /* the signal, once installed (0: none) */
    int n;                       /* threads signalled */
    int tid[TIDE_LEAK_PARK_MAX];           /* their ids */
    _Atomic int state[TIDE_LEAK_PARK_MAX]; /* PARK_* */
    uintptr_t floor[TIDE_LEAK_PARK_MAX];   /* a stopped thread's handler frame, below its saved
                                              registers and live frames: the stack under it is
                                              dead (0: unknown; written before PARK_STOPPED) */
    _Atomic int inside;          /* handlers still running */
} park;

static void on_park(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    if (!atomic_load_explicit(&park.active, acquire))
        return;
    int saved = errno;
    atomic_fetch_add_explicit(&park.inside, 1, acq_rel);
    int me = tidei_os_gettid();
    for (int i = 0; i < park.n; i++) {
        if (park.tid[i] != me)
            continue;
        if (tidei_interrupted_inside(ucv)) {  /* the heap may be mid-change: later */
            atomic_store_explicit(&park.state[i], PARK_MISSED, release);
            break;
        }
        /* on an alternate signal stack the thread's own stack is elsewhere:
         * no floor then */
        volatile char here = 0;
        stack_t ss;
        park.floor[i] = sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_ONSTACK) ? (uintptr_t)&here : 0;
        atomic_store_explicit(&park.state[i], PARK_STOPPED, release);
        while (atomic_load_explicit(&park.active, acquire))
            tidei_os_sleep_ms(TIDE_PARK_POLL_MS);
        break;
    }
    atomic_fetch_sub_explicit(&park.inside, 1, acq_rel);
    errno = saved;
}

/* Where the scan of a stack mapped at [lo, hi) starts: the lowest floor of
 * a thread stopped there (a single stack holds one; taking the lowest
 * keeps every live frame should two share a mapping), else lo. */
static uintptr_t stack_floor(uintptr_t lo, uintptr_t hi)
{
    uintptr_t from = hi;
    for (int i = 0; i < park.n; i++) {
        if (atomic_load_explicit(&park.state[i], acquire) != PARK_STOPPED)
            continue;
        uintptr_t f = park.floor[i] & ~(uintptr_t)7;
        if (f >= lo && f < from)
            from = f;
    }
    return from < hi ? from : lo;
}

/* Installs the handler on SIGRTMAX - TIDE_LEAK_SIGNAL_FROM_MAX unless the
 * program has one there or ignores it; it stays (a late signal must not
 * meet the default action, which kills). */
static bool park_install(void)
{
    if (park.sig)
        return true;
    int sig = SIGRTMAX - TIDE_LEAK_SIGNAL_FROM_MAX;
    struct sigaction old, sa;
    /* any disposition but the default (a handler, SIG_IGN) is the program's */
    if (sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
        return false;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_park;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0)
        return false;
    park.sig = sig;
    return true;
}

/* Lists the process's other threads (but the scavenger, which blocks every
 * signal and touches no block) from /proc/self/task. */
static void park_list(void)
{
    park.n = 0;
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    int me = tidei_os_gettid(), scav = atomic_load_explicit(&tidei_scav_tid, relaxed);
    char buf[4096];
    for (;;) {
        long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (long off = 0; off < r;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            int tid = 0;
            for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            if (tid > 0 && tid != me && tid != scav && park.n < TIDE_LEAK_PARK_MAX) {
                park.tid[park.n] = tid;
                park.floor[park.n] = 0;
                atomic_store_explicit(&park.state[park.n], PARK_MISSED, relaxed);
                park.n++;
            }
        }
    }
    close(fd);
}

/* Stops every other thread it can within about 200 ms. */
static void park_all(void)
{
    if (!park_install())
        return;
    park_list();
    atomic_store_explicit(&park.active, 1, release);
    pid_t pid = getpid();
    for (int round = 0; round < 200; round++) {
        bool all = true;
        for (int i = 0; i < park.n; i++) {
            int st = atomic_load_explicit(&park.state[i], acquire);
            if (st == PARK_MISSED) {
                atomic_store_explicit(&park.state[i], PARK_SENT, relaxed);
                if (syscall(SYS_tgkill, pid, park.tid[i], park.sig) != 0) {
                    atomic_store_explicit(&park.state[i], PARK_STOPPED, relaxed);  /* gone */
                    continue;
                }
            }
            all &= st == PARK_STOPPED;
        }
        if (all)
            return;
        tidei_os_sleep_ms(TIDE_PARK_POLL_MS);
    }
    if (tidei_opt.verbose)
        tidei_warn("tide: leak check: some threads did not stop; their registers are not scanned\n");
}

/* Lets them go, and waits until they have left the handler. */
static void park_release(void)
{
    if (!park.sig)
        return;
    atomic_store_explicit(&park.active, 0, release);
    for (int i = 0; i < 1000 && atomic_load_explicit(&park.inside, acquire); i++)
        tidei_os_sleep_ms(TIDE_PARK_POLL_MS);
}

/* ---- the check ---- */

/* Clears the stack below the caller's frame.  Before a check, where the
 * check's frames will lie: the scan covers them (from leak_run_with's up),
 * and a local they leave partly unwritten (a buffer, a struct the kernel
 * fills in part, setjmp's mask) would hold words of the program's dead
 * frames.  A clang build, which inlined park_list's 4 KiB buffer into the
 * check, reported no leak for one block leaked from a function.  After a
 * check, where its dead frames lie: the addresses of blocks and chunks it
 * handled there would otherwise keep blocks reachable for a later check
 * whose live frames overlay them (a check at exit after one made from
 * main). */
static tide_noinline void scrub_dead_frames(void)
{
    volatile char pad[32 * 1024];
    memset((char *)pad, 0, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
}

/* This thread's roots: its registers (a copy, regs_bytes long) and its
 * stack from sp up. */
typedef struct thread_roots {
    const void *regs;
    size_t regs_bytes;
    uintptr_t sp;
} thread_roots_t;

/* The check, with this thread's roots as t gives them. */
static tide_noinline long leak_run_with(const thread_roots_t *t)
{
    leak_t l;
    memset(&l, 0, sizeof l);
    l.pagemap = -1;
    l.step = 8;
    l.stack.elem = sizeof(size_t);
    l.skip.elem = sizeof(leak_range_t);
    if (!tidei_walk_live_blocks(&l.blocks)) {
        tidei_scratch_free(&l.blocks);
        return -1;
    }
    l.b = l.blocks.p;
    l.n = l.blocks.n;
    long result = -1;
    if (l.n) {
        sort_by(l.b, l.n, sizeof *l.b, block_key);
        l.lo = (uintptr_t)l.b[0].ptr;
        l.hi = (uintptr_t)l.b[l.n - 1].ptr + l.b[l.n - 1].size;
        l.mark_bytes = (l.n + TIDE_PAGE_SIZE - 1) & ~(TIDE_PAGE_SIZE - 1);
        l.mark = tidei_os_map(l.mark_bytes);
        if (!l.mark)
            goto out;
    }
    collect_skips(&l);
    if (l.stack.failed || l.skip.failed)
        goto out;
    l.pagemap = tidei_os_open_proc("pagemap", 0);
    if (l.n) {
        scan_root(&l, (uintptr_t)t->regs, (uintptr_t)t->regs + t->regs_bytes, false);
        if (!scan_maps(&l, t->sp))
            goto out;
    }
    if (l.stack.failed)
        goto out;
    for (size_t i = 0; i < l.n; i++) {  /* leaked blocks that leaked blocks point to */
        if (l.mark[i] != REACHABLE) {
            uintptr_t p = (uintptr_t)l.b[i].ptr;
            scan(&l, p, p + l.b[i].size, UNMARKED, INDIRECT, i);
        }
    }
    /* the report symbolizes, which takes the loader's lock: a stopped
     * thread may hold it */
    park_release();
    result = (long)leak_report(&l);
out:
    if (result < 0)
        errno = ENOMEM;
    if (l.pagemap >= 0)
        close(l.pagemap);
    if (l.mark)
        tidei_scratch_unmap(l.mark, l.mark_bytes);
    tidei_scratch_free(&l.stack);
    tidei_scratch_free(&l.skip);
    tidei_scratch_free(&l.blocks);
    return result;
}

/* At exit, this thread's roots are those of exit's caller: its stack
 * pointer at the call and its callee-saved registers (the DWARF numbers
 * below), found by unwinding.  The frames below it (exit's, its
 * handlers', the loader's destructor pass, this check's) are not the
 * program's, and when main has returned they lie over main's dead frames,
 * whose words stay in the slots they leave unwritten: glibc 2.36's exit
 * path kept the address of a block leaked just before main returned, and
 * the check called that block reachable every time. */
#if defined(__x86_64__)
static const int saved_regs[] = { 3, 6, 12, 13, 14, 15 };  /* rbx rbp r12-r15 */
#elif defined(__aarch64__)
static const int saved_regs[] = { 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29 };  /* x19-x29 */
#else
static const int saved_regs[] = { -1 };  /* unknown: exit's caller is not looked for */
#endif
enum { N_SAVED = sizeof saved_regs / sizeof saved_regs[0], EXIT_MAX_DEPTH = 64 };

typedef struct exit_caller {
    uintptr_t exit_fn;           /* exit's entry */
    int depth;                   /* frames seen */
    bool next;                   /* the next frame is exit's caller */
    bool found;                  /* sp and regs are set */
    uintptr_t sp;                /* exit's caller's stack pointer at the call */
    _Unwind_Word regs[N_SAVED];  /* its callee-saved registers */
} exit_caller_t;

static _Unwind_Reason_Code exit_caller_step(struct _Unwind_Context *ctx, void *arg)
{
    exit_caller_t *e = arg;
    if (e->next) {
        tidei_unwind_reg_fn gr = atomic_load_explicit(&tidei_unwind_get_gr, relaxed);
        for (int i = 0; i < N_SAVED; i++)
            e->regs[i] = gr(ctx, saved_regs[i]);
        e->found = true;
        return _URC_END_OF_STACK;
    }
    if (tidei_unwind_region_start(ctx) == e->exit_fn) {
        e->sp = atomic_load_explicit(&tidei_unwind_get_cfa, relaxed)(ctx);  /* exit's CFA */
        e->next = true;
    }
    return ++e->depth < EXIT_MAX_DEPTH ? _URC_NO_REASON : _URC_END_OF_STACK;
}

/* Finds exit's caller; false if there is none to find (no unwinder that
 * has the two entry points, an architecture not listed above, or no exit
 * among the frames: a check from a destructor that dlclose runs). */
static bool find_exit_caller(exit_caller_t *e)
{
    memset(e, 0, sizeof *e);
    e->exit_fn = (uintptr_t)exit;
    if (saved_regs[0] < 0 || !atomic_load_explicit(&tidei_unwind_get_cfa, relaxed) ||
        !atomic_load_explicit(&tidei_unwind_get_gr, relaxed))
        return false;
    return tidei_unwind_backtrace(exit_caller_step, e) && e->found;
}

/* This thread's registers are a root: setjmp stores the callee-saved ones
 * (the others are dead across this call), here, before any work of the
 * check, while they hold the callers' values.  Taken later, they held the
 * check's own: its lowest block's address kept that block reachable
 * (clang builds, where a huge block was lowest in one run in ten).  At
 * exit, exit's caller's roots replace these when it is found. */
static tide_noinline long leak_run(bool at_exit)
{
    jmp_buf regs;
    setjmp(regs);
    exit_caller_t e;
    if (at_exit && find_exit_caller(&e))
        return leak_run_with(&(thread_roots_t){ e.regs, sizeof e.regs, e.sp });
    return leak_run_with(&(thread_roots_t){ regs, sizeof(jmp_buf), (uintptr_t)__builtin_frame_address(0) });
}

static tide_noinline long leak_check(bool at_exit)
{
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    int saved = errno;  /* the /proc reads may fail on the way (thread-self, pagemap) */
    pthread_mutex_lock(&one_at_a_time);
    park_all();
    long n = leak_run(at_exit);
    park_release();
    scrub_dead_frames();
    pthread_mutex_unlock(&one_at_a_time);
    if (n < 0)
        tidei_warn("tide: leak check: no memory for the check\n");
    else
        errno = saved;
    if (at_exit && n > 0 && tidei_opt.leak_exitcode) {
        fflush(NULL);
        _exit((int)tidei_opt.leak_exitcode);
    }
    return n;
}

/* Runs a check, its frames on a cleared stack (scrub_dead_frames); at
 * exit, ends the process with leak_exitcode if anything leaked (stdio
 * flushed first: the process is past its atexit handlers). */
long tidei_leak_check(bool at_exit)
{
    scrub_dead_frames();
    return leak_check(at_exit);
}

tide_export long tide_leak_check(void)
{
    tidei_init();
    tidei_busy_enter();
    long n = tidei_leak_check(false);
    tidei_busy_leave();
    return n;
}
