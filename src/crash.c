/* crash.c — the handler of SIGSEGV and SIGBUS, installed only with
 * TIDE_CONF guard=1 or crash_report=1 (docs/hardening.md): a fault in a
 * guarded slot gets guard.c's report (what the access missed, with the
 * block's stacks); any other fault that would kill the process gets a crash
 * report: the faulting address in heap terms (which live or free block,
 * a free page run, a guard page, tide's metadata, or not heap memory) and
 * the thread heaps' state in a few lines.  Then the process dies of the
 * signal, as it would have.
 *
 * What the program had.  The dispositions of SIGSEGV and SIGBUS that tide
 * replaced are kept: a fault outside the guarded slots goes straight to a
 * handler the program installed before tide (it may be a runtime's own use
 * of faults: no report), and after tide's report of a guarded fault the
 * program's handler is called as the kernel would have called it (its mask,
 * SA_SIGINFO, SA_RESETHAND).  Without one the default action is restored
 * and the faulting instruction runs again, so the process dies of the
 * original signal with its core dump.  A handler the program installs
 * after tide replaces tide's, as any handler would.
 *
 * Exactly one report: the first thread to fault takes the report (an
 * atomic exchange); threads that fault meanwhile wait until it is written
 * (at most 30 s), then die or chain the same way, without a word.
 *
 * The crash report never takes a lock and never allocates: it reads the
 * page map, the span descriptors and the heap registry as they are (none
 * of them is ever unmapped), reads block memory only through
 * process_vm_readv (an unreadable address is an error code, never a second
 * fault), and bounds every list it follows, so a thread that holds any
 * tide lock, or a corrupted free list, cannot make it hang.  The guarded
 * report symbolizes its stacks (symbolize.c), which takes the dynamic
 * loader's lock for a moment (dl_iterate_phdr).
 *
 * Its own stack.  A handler for a stack overflow cannot run on the stack
 * that overflowed, and tide cannot give an alternate stack to threads it
 * does not create; so every thread that gets a heap (its first malloc) and
 * has no alternate signal stack of its own is lent one, which belongs to
 * the heap (kept for its next thread when the thread exits) and is taken
 * back when the thread gives the heap up.  A thread that never allocated
 * through tide runs the handler on its faulting stack: every fault but a
 * stack overflow is still reported there. */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "tide_internal.h"


bool tidei_crash_on;                         /* the handler is installed */
static struct sigaction crash_old[2];        /* SIGSEGV's and SIGBUS's before tide's */
static _Atomic int report_tid;               /* the thread writing the one report (0: none yet) */
static _Atomic bool report_done;             /* it has been written */
static char *first_stack;                    /* the signal stack lent to the thread that started tide */

/* ---- one report per process ---- */

/* True if the calling thread is to write the process's one report (then
 * tidei_crash_report_end when done).  False if another thread took it: returns
 * once that one is written (or after 30 s), or at once if the caller is
 * that thread, faulting again inside its report. */
bool tidei_crash_report_begin(void)
{
    int me = tidei_os_gettid(), none = 0;
    if (atomic_compare_exchange_strong_explicit(&report_tid, &none, me, acq_rel, acquire))
        return true;
    if (none == me)
        return false;
    for (int i = 0; i < TIDE_REPORT_WAIT_MS / TIDE_REPORT_POLL_MS && !atomic_load_explicit(&report_done, acquire); i++)
        tidei_os_sleep_ms(TIDE_REPORT_POLL_MS);
    return false;
}

void tidei_crash_report_end(void)
{
    atomic_store_explicit(&report_done, true, release);
}

/* Writes frames pc[0..n) as "    #I SYMBOL", one a line.  The frames are
 * return addresses, looked up one byte back (in the call), except the
 * first when first_exact (a faulting instruction). */
void tidei_crash_print_stack(int fd, const uintptr_t *pc, int n, bool first_exact)
{
    char buf[512];
    if (n == 0)
        tidei_printf(fd, "    (no stack)\n");
    for (int i = 0; i < n; i++) {
        tidei_symbolize(pc[i] - (i == 0 && first_exact ? 0 : 1), buf, sizeof buf);
        tidei_printf(fd, "    #%d %p %s\n", i, (void *)pc[i], buf);
    }
}

/* ---- the alternate signal stacks ---- */

/* The calling thread got heap h: lends it h's signal stack (made on first
 * use) unless it has one of its own. */
tide_cold void tidei_crash_thread_start(tide_heap_t *h)
{
    if (!tidei_crash_on)
        return;
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return;
    if (!h->alt_stack) {
        char *m = tidei_os_map(TIDE_ALT_STACK_BYTES + TIDE_PAGE_SIZE);
        if (!m)
            return;
        tidei_os_protect(m, TIDE_PAGE_SIZE, false);  /* an overflow of it faults */
        h->alt_stack = m;
    }
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = h->alt_stack + TIDE_PAGE_SIZE;
    ss.ss_size = TIDE_ALT_STACK_BYTES;
    sigaltstack(&ss, NULL);
}

/* The calling thread gives heap h up: takes h's signal stack back if the
 * thread still uses it (not while running on it). */
tide_cold void tidei_crash_thread_end(tide_heap_t *h)
{
    stack_t cur;
    if (!h->alt_stack || sigaltstack(NULL, &cur) != 0 || cur.ss_sp != h->alt_stack + TIDE_PAGE_SIZE ||
        (cur.ss_flags & SS_ONSTACK))
        return;
    stack_t off;
    memset(&off, 0, sizeof off);
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, NULL);
}

/* ---- reading without faulting ---- */

/* Copies len bytes at a into out; false if they are not readable. */
static bool peek(uintptr_t a, void *out, size_t len)
{
    struct iovec local = { out, len }, remote = { (void *)a, len };
    return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) == (long)len;
}

/* The owner of glibc mutex m (a thread id), or 0 if it is free. */
static int lock_owner(pthread_mutex_t *m)
{
#ifdef __GLIBC__
    return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
#else
    (void)m;
    return 0;
#endif
}

/* ---- the crash report ---- */

/* Writes "(MODULE+0xOFF)" for code address pc from /proc/self/maps (no
 * lock, no allocation), or nothing. */
static void print_module(int fd, uintptr_t pc)
{
    int in = tidei_os_open_proc("maps", 0);
    if (in < 0)
        return;
    char buf[4096];
    size_t have = 0;
    bool done = false;
    while (!done) {
        ssize_t r = read(in, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = 0;
        char *line = buf, *nl;
        while (!done && (nl = strchr(line, '\n')) != NULL) {
            *nl = 0;
            /* lo-hi perms offset dev inode path */
            uintptr_t f[3] = { 0, 0, 0 };
            const char *s = line;
            for (int k = 0; k < 3; k++) {
                for (; *s && *s != '-' && *s != ' '; s++) {
                    int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : 0;
                    f[k] = f[k] * 16 + (uintptr_t)d;
                }
                if (k == 1)  /* skip " perms " */
                    for (s++; *s && *s != ' '; s++)
                        ;
                if (*s)
                    s++;
            }
            if (pc >= f[0] && pc < f[1]) {
                const char *path = strchr(line, '/');
                if (path)
                    tidei_printf(fd, " (%s+0x%lx)", path, (unsigned long)(pc - f[0] + f[2]));
                done = true;
            }
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;
    }
    close(in);
}

/* Whether block b of small span s is on one of the span's free lists:
 * 1 yes, 0 no, -1 unreadable.  Every link is checked to lie on a block of
 * s before it is followed, and at most n_blocks are followed per list. */
static int small_on_free_list(const tide_span_t *s, uintptr_t b)
{
    uintptr_t end = s->start + (uintptr_t)s->n_blocks * s->block_size;
    uintptr_t heads[3] = { (uintptr_t)s->free, (uintptr_t)s->local_free,
                           atomic_load_explicit(&((tide_span_t *)s)->remote, relaxed) & TIDE_RS_PTR_MASK };
    for (int l = 0; l < 3; l++) {
        uintptr_t x = heads[l];
        for (uint32_t k = 0; x && k < s->n_blocks; k++) {
            if (x < s->start || x >= end || !tidei_is_block_start(s, (void *)x))
                break;
            if (x == b)
                return 1;
            if (!peek(x, &x, sizeof x))
                return -1;
            x = (uintptr_t)tidei_link_decode(s, x);
        }
    }
    return 0;
}

/* The heap with id (for "owned by heap N, thread T"), or NULL. */
static void print_owner(int fd, const tide_heap_t *h)
{
    if (!h)
        tidei_printf(fd, "no heap (its thread exited)");
    else if (h == &tidei_backup_heap)
        tidei_printf(fd, "the backup heap");
    else if (tidei_heap_is_shared(h))
        tidei_printf(fd, "a shared heap (a thread's first blocks of a class)");
    else
        tidei_printf(fd, "heap %u (thread %d)", h->id, h->tid);
}

/* Describes address a in heap terms (sp: the faulting stack pointer). */
static void describe(int fd, uintptr_t a, uintptr_t sp)
{
    tidei_printf(fd, "tide: %p is ", (void *)a);
    tide_span_t *s = tidei_pagemap_lookup((void *)a);
    if (s && s->kind == TIDE_SPAN_SMALL) {
        uint64_t idx = tidei_block_index(s, a);
        if (idx >= s->n_blocks) {
            tidei_printf(fd, "in the tail of a small span that no block covers");
        } else {
            uintptr_t b = s->start + idx * s->block_size;
            const char *state = "live", *why = "";
            if (idx >= __atomic_load_n(&s->n_built, __ATOMIC_RELAXED)) {
                state = "free";
                why = ", never handed out";
            } else {
                uintptr_t key;
                if (!peek(b + sizeof(void *), &key, sizeof key)) {
                    state = "";
                    why = "; live or free: its memory is unreadable";
                } else if (key == tidei_free_key_of(s)) {
                    int on = small_on_free_list(s, b);
                    state = "free";
                    why = on > 0 ? "" : on == 0 ? ", by its key (freed by another thread, or the key forged)"
                                                : ", by its key (its free list is unreadable)";
                }
            }
            tidei_printf(fd, "%zu byte%s into the %s%s%u-byte block at %p (size class %u%s)", (size_t)(a - b),
                         a - b == 1 ? "" : "s", state, state[0] ? " " : "", s->block_size, (void *)b,
                         (unsigned)s->cls, why);
        }
        tidei_printf(fd, " of span %p-%p, ", (void *)s->start, (void *)(s->start + (s->n_pages << TIDE_PAGE_SHIFT)));
        print_owner(fd, atomic_load_explicit(&s->heap, relaxed));
        tidei_printf(fd, "\n");
        return;
    }
    if (s && (s->kind == TIDE_SPAN_LARGE || s->kind == TIDE_SPAN_HUGE)) {
        tidei_printf(fd, "%zu bytes into the live %s block of %zu bytes at %p\n", (size_t)(a - s->start),
                     s->kind == TIDE_SPAN_LARGE ? "large" : "huge", s->n_pages << TIDE_PAGE_SHIFT, (void *)s->start);
        return;
    }
    if (s && s->kind == TIDE_SPAN_FREE) {
        tidei_printf(fd, "in a free run of %zu pages at %p\n", s->n_pages, (void *)s->start);
        return;
    }
    if (tidei_guard_describe(fd, a)) {
        tidei_printf(fd, "\n");
        return;
    }
    tide_arena_t *ar = &tidei_arena;
    size_t bound = 0;
    for (tide_chunk_t *c = ar->chunks; c && bound < 100000; c = c->next, bound++) {
        if (a - c->base >= TIDE_CHUNK_SIZE)
            continue;
        for (uintptr_t p = c->base; p < c->base + TIDE_CHUNK_SIZE;) {
            tide_span_t *r = tidei_pagemap_lookup((void *)p);
            if (!r || !r->n_pages)
                break;
            if (a < r->start + (r->n_pages << TIDE_PAGE_SHIFT)) {
                tidei_printf(fd, "in a free run of %zu pages at %p\n", r->n_pages, (void *)r->start);
                return;
            }
            p = r->start + (r->n_pages << TIDE_PAGE_SHIFT);
        }
        tidei_printf(fd, "in a chunk of tide's (%p), in pages it is changing\n", (void *)c->base);
        return;
    }
    bound = 0;
    for (tide_span_t *r = ar->huge_cache; r && bound < 1000; r = r->next, bound++) {
        if (a - r->start < (r->n_pages << TIDE_PAGE_SHIFT)) {
            tidei_printf(fd, "in a freed huge block of %zu bytes at %p (cached for reuse)\n",
                         r->n_pages << TIDE_PAGE_SHIFT, (void *)r->start);
            return;
        }
    }
    bound = 0;
    for (tidei_meta_region_t *m = ar->meta_regions; m && bound < 100000; m = m->next, bound++) {
        if (a - (uintptr_t)m < m->size) {
            tidei_printf(fd, "tide's metadata (span descriptors, heaps)\n");
            return;
        }
    }
    for (size_t t = 0; t < ((size_t)1 << TIDE_MAP_TOP_BITS); t++) {
        tide_span_t **leaf = atomic_load_explicit(&tidei_pagemap[t], relaxed);
        if (leaf && a - (uintptr_t)leaf < ((size_t)1 << TIDE_MAP_LEAF_BITS) * sizeof *leaf) {
            tidei_printf(fd, "tide's metadata (the page map)\n");
            return;
        }
    }
    if (first_stack && a - (uintptr_t)first_stack < TIDE_ALT_STACK_BYTES + TIDE_PAGE_SIZE) {
        tidei_printf(fd, "the signal stack tide lent the thread that started it\n");
        return;
    }
    bound = 0;
    for (tide_heap_t *h = __atomic_load_n(&tidei_heaps, __ATOMIC_ACQUIRE); h && bound < 100000;
         h = h->next_all, bound++) {
        if (h->alt_stack && a - (uintptr_t)h->alt_stack < TIDE_ALT_STACK_BYTES + TIDE_PAGE_SIZE) {
            tidei_printf(fd, "a signal stack tide lent heap %u's thread%s\n", h->id,
                         a - (uintptr_t)h->alt_stack < TIDE_PAGE_SIZE ? " (its guard page: it overflowed)" : "");
            return;
        }
    }
    tidei_printf(fd, "not heap memory");
    uintptr_t d = a > sp ? a - sp : sp - a;
    if (sp && d < TIDE_STACK_NEAR_BYTES)
        tidei_printf(fd, " (%zu bytes %s the stack pointer: a stack overflow?)", (size_t)d, a < sp ? "below" : "from");
    tidei_printf(fd, "\n");
}

/* "thread T" for a lock's holder, naming tide's scavenger. */
static void print_holder(int fd, int tid)
{
    tidei_printf(fd, "thread %d%s", tid, tid == atomic_load_explicit(&tidei_scav_tid, relaxed) ? ", tide's scavenger" : "");
}

/* The heaps' state, a line each (the first TIDE_CRASH_HEAPS_LISTED), and the locks
 * held. */
static void print_heaps(int fd, int me)
{
    size_t n = 0, in_use = 0;
    tide_heap_t *heaps = __atomic_load_n(&tidei_heaps, __ATOMIC_ACQUIRE);
    for (tide_heap_t *h = heaps; h && n < 100000; h = h->next_all, n++)
        in_use += h->in_use;
    tide_arena_t *ar = &tidei_arena;
    tidei_printf(fd, "tide: %zu thread heaps in use (%zu made); %zu chunks, %zu free pages, %zu large and %zu huge "
                 "blocks live\n", in_use, n, ar->n_chunks, ar->free_pages, ar->n_large, ar->n_huge);
    size_t k = 0;
    for (tide_heap_t *h = heaps; h && k < n; h = h->next_all, k++) {
        if (k == TIDE_CRASH_HEAPS_LISTED) {
            tidei_printf(fd, "tide:   ... and %zu more heaps\n", n - k);
            break;
        }
        /* the owner's frees into its own spans are counted nowhere: they
         * are what the blocks out of its spans do not account for (stats.c) */
        uint64_t spans = 0, mallocs = 0, frees = 0, used[TIDE_N_CLASSES] = { 0 }, m[TIDE_N_CLASSES] = { 0 };
        tidei_heap_used(h, used, m, NULL, NULL);
        for (int c = 0; c < TIDE_N_CLASSES; c++) {
            spans += h->ctr.spans[c];
            m[c] += h->ctr.malloc[c];
            mallocs += m[c];
            int64_t local = (int64_t)(m[c] - h->ctr.collected[c] + h->ctr.moved_in[c] - h->ctr.moved_out[c] - used[c]);
            frees += h->ctr.free_remote[c] + (local > 0 ? (uint64_t)local : 0);
        }
        tidei_printf(fd, "tide:   heap %u: ", h->id);
        if (h->in_use)
            tidei_printf(fd, "thread %d%s", h->tid, h->tid == me ? " (this one)" : "");
        else
            tidei_printf(fd, "pooled (no thread)");
        tidei_printf(fd, ", %lu spans (%lu full), %lu small blocks allocated, %lu freed",
                     (unsigned long)spans, (unsigned long)h->ctr.n_full, (unsigned long)mallocs, (unsigned long)frees);
        int owner = atomic_load_explicit(&h->lock.word, memory_order_relaxed);  /* (the registry holds no shared heap) */
        if (owner) {
            tidei_printf(fd, "; its lock held by ");
            print_holder(fd, owner);
        }
        tidei_printf(fd, "\n");
    }
    int arena = lock_owner(&ar->lock), heaps_lock = lock_owner(&tidei_heaps_lock);
    int backup = lock_owner(&tidei_backup_lock);
    if (arena || heaps_lock || backup) {
        const char *names[3] = { "the arena lock", "the heap registry's lock", "the backup heap's lock" };
        int holders[3] = { arena, heaps_lock, backup };
        tidei_printf(fd, "tide: held:");
        for (int i = 0, first = 1; i < 3; i++) {
            if (!holders[i])
                continue;
            tidei_printf(fd, "%s %s by ", first ? "" : ";", names[i]);
            print_holder(fd, holders[i]);
            first = 0;
        }
        tidei_printf(fd, "\n");
    }
}

static const char *code_name(int sig, int code)
{
    if (code <= 0)
        return "sent by a process";
    if (sig == SIGSEGV)
        return code == SEGV_MAPERR ? "address not mapped" : code == SEGV_ACCERR ? "no access" : "";
    return code == BUS_ADRALN ? "misaligned" : code == BUS_ADRERR ? "no such memory (a truncated file?)"
         : code == BUS_OBJERR ? "hardware error" : "";
}

/* The fault's access: 1 write, 0 read, 2 instruction fetch, -1 unknown. */
static int fault_access(void *ucv)
{
#if defined(__x86_64__)
    const ucontext_t *uc = ucv;
    if (uc->uc_mcontext.gregs[REG_TRAPNO] != 14)  /* not a page fault */
        return -1;
    long err = uc->uc_mcontext.gregs[REG_ERR];
    return err & 16 ? 2 : err & 2 ? 1 : 0;
#else
    (void)ucv;
    return -1;
#endif
}


static void crash_report(int sig, siginfo_t *si, void *ucv)
{
    int fd = 2, me = tidei_os_gettid();
    uintptr_t sp, pc = tidei_os_context_pc(ucv, &sp);
    int access = fault_access(ucv);
    tidei_printf(fd, "tide: %s on address %p (%s%s%s) in thread %d, pc %p", sig == SIGSEGV ? "SIGSEGV" : "SIGBUS",
                 si->si_addr, access == 1 ? "write, " : access == 0 ? "read, " : access == 2 ? "execute, " : "",
                 code_name(sig, si->si_code), si->si_code <= 0 ? "" : "", me, (void *)pc);
    print_module(fd, pc);
    tidei_printf(fd, "\n");
    describe(fd, (uintptr_t)si->si_addr, sp);
    if (tidei_interrupted_inside(ucv))
        tidei_printf(fd, "tide: the thread was inside tide (malloc, free or their slow paths)\n");
    print_heaps(fd, me);
}

/* ---- the handler ---- */

static void on_fault(int sig, siginfo_t *si, void *ucv);

/* Whether disposition old runs a handler of the program's (not the default,
 * not SIG_IGN, not this one): the one crash.c chains to.  sa_handler shares
 * its storage with sa_sigaction. */
static bool program_handles(const struct sigaction *old)
{
    void (*fn)(int) = old->sa_handler;
    return fn != SIG_DFL && fn != SIG_IGN && (void *)fn != (void *)on_fault;
}

/* Calls the program's handler old as the kernel would have: its mask (and
 * the signal, unless SA_NODEFER) blocked, reset first with SA_RESETHAND. */
static void chain(struct sigaction *old, int sig, siginfo_t *si, void *ucv)
{
    sigset_t mask, prev;
    mask = old->sa_mask;
    if (!(old->sa_flags & SA_NODEFER))
        sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, &prev);
    if (old->sa_flags & SA_NODEFER) {
        sigemptyset(&mask);
        sigaddset(&mask, sig);
        pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
    }
    struct sigaction act = *old;
    if (old->sa_flags & SA_RESETHAND) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        old->sa_handler = SIG_DFL;
        old->sa_flags = 0;
    }
    if (act.sa_flags & SA_SIGINFO)
        act.sa_sigaction(sig, si, ucv);
    else
        act.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    struct sigaction *old = &crash_old[sig == SIGBUS];
    uintptr_t a = (uintptr_t)si->si_addr;
    bool from_kernel = si->si_code > 0;
    bool guarded = from_kernel && sig == SIGSEGV && tidei_guard_on && tidei_guard_holds(a);
    if (!guarded && program_handles(old)) {
        chain(old, sig, si, ucv);
        errno = saved;
        return;
    }
    if (tidei_crash_report_begin()) {
        if (!guarded || !tidei_guard_fault(a, fault_access(ucv), ucv))
            crash_report(sig, si, ucv);
        tidei_crash_report_end();
    }
    if (program_handles(old)) {
        chain(old, sig, si, ucv);
        errno = saved;
        return;
    }
    /* die of it: the default action, and the access again (or the signal
     * again, if a process sent it) */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (!from_kernel)
        syscall(SYS_tgkill, getpid(), tidei_os_gettid(), sig);
    errno = saved;
}

/* Lends the calling thread a signal stack of its own (not a heap's): the
 * thread that starts tide, usually the main thread, which may never
 * allocate. */
static void lend_first_stack(void)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return;
    char *m = tidei_os_map(TIDE_ALT_STACK_BYTES + TIDE_PAGE_SIZE);
    if (!m)
        return;
    tidei_os_protect(m, TIDE_PAGE_SIZE, false);
    first_stack = m;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = m + TIDE_PAGE_SIZE;
    ss.ss_size = TIDE_ALT_STACK_BYTES;
    sigaltstack(&ss, NULL);
}

/* Installs the handler if guard=1 (and guard.c is set up) or
 * crash_report=1: process init. */
tide_cold void tidei_crash_init(void)
{
    if (!tidei_opt.crash_report && !tidei_guard_on)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &crash_old[0]) != 0 || sigaction(SIGBUS, &sa, &crash_old[1]) != 0) {
        tidei_warn("tide: cannot install the SIGSEGV/SIGBUS handler (errno %d)\n", errno);
        return;
    }
    tidei_crash_on = true;
    lend_first_stack();
}
